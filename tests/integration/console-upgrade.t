#!/usr/bin/env bash
# The interactive console's opening handshake on the test backend: a bad
# handshake is a 400 naming the header (before anything is looked up), the
# same isolation as the read-only console (no token 401, another tenant's
# stack 404, the operator 403), a stack that is not running 409, and the test
# driver, which has no console streams, a clear 501 rather than a crash.
# Without the Upgrade headers the read-only console answers as before.
# (The 101 and the session itself: tests/system/console-interactive.t.)
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

td_init
td_start || bail "turtled did not start"
td_tenant acme || bail "no tenant acme"
ACME=$TOKEN
td_tenant beta || bail "no tenant beta"
BETA=$TOKEN

# Stacks as the store knows them (the test driver boots nothing).
sql_write() { sqlite3 -cmd '.timeout 5000' -cmd 'PRAGMA foreign_keys = ON' "$TD_STATE/turtled.db" "$1"; }
add_stack() { # NAME STATE
    sql_write "INSERT INTO stacks (id, tenant_id, name, spec_json, vcpus, memory_mib, state, created_at, updated_at)
        SELECT '$(cat /proc/sys/kernel/random/uuid)', id, '$1',
            '{\"name\":\"$1\",\"vcpus\":1,\"memory_mib\":256,\"boot\":{\"kernel\":\"k\"}}', 1, 256, '$2', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'
        FROM tenants WHERE name = 'acme'" >/dev/null
}
add_stack web running
add_stack db stopped
api_tn "$ACME" GET /v1/stacks/web
is "$STATUS $(jb .stack.state)" "200 running" "acme's stack web runs"

KEY=dGhlIHNhbXBsZSBub25jZQ==
WS=(-H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13')
# ws TOKEN PATH [CURL-ARGS...]: the handshake, with the RFC's key unless told
ws() {
    local token=$1 path=$2
    shift 2
    api_tn "$token" GET "$path" "${WS[@]}" "$@"
}

# ---- the handshake -----------------------------------------------------------------------------
ws "$ACME" /v1/stacks/web/console
is_error 400 bad_request "no Sec-WebSocket-Key: 400"
like "$ERR_MESSAGE" "^Sec-WebSocket-Key: is required" "... naming the header ($ERR_MESSAGE)"
ws "$ACME" /v1/stacks/web/console -H 'Sec-WebSocket-Key: c2hvcnQ='
is_error 400 bad_request "a key that is not 16 bytes: 400"
like "$ERR_MESSAGE" "^Sec-WebSocket-Key: must be the base64 encoding of 16 bytes" "... naming the header"
api_tn "$ACME" GET /v1/stacks/web/console -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
    -H 'Sec-WebSocket-Version: 8' -H "Sec-WebSocket-Key: $KEY"
is_error 400 bad_request "Sec-WebSocket-Version 8: 400"
like "$ERR_MESSAGE" "^Sec-WebSocket-Version: must be 13" "... naming the header"
is "$(hdr Sec-WebSocket-Version)" 13 "... and saying which version we speak"
api_tn "$ACME" GET /v1/stacks/web/console -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
    -H "Sec-WebSocket-Key: $KEY"
is_error 400 bad_request "Upgrade without Connection: Upgrade: 400"
like "$ERR_MESSAGE" "^Connection: must list 'Upgrade'" "... naming the header"
api_tn "$ACME" GET /v1/stacks/web/console -H 'Connection: Upgrade' -H 'Upgrade: h2c' \
    -H 'Sec-WebSocket-Version: 13' -H "Sec-WebSocket-Key: $KEY"
is_error 400 bad_request "Upgrade: h2c: 400"
like "$ERR_MESSAGE" "^Upgrade: only 'websocket'" "... naming the header"
ws "$ACME" "/v1/stacks/web/console?follow=1" -H "Sec-WebSocket-Key: $KEY"
is_error 400 bad_request "follow with an upgrade: 400"
ws "$ACME" "/v1/stacks/web/console?force=2" -H "Sec-WebSocket-Key: $KEY"
is_error 400 bad_request "force=2: 400"
like "$ERR_MESSAGE" "^force: must be 0 or 1" "... naming force"
api_tn "$ACME" GET "/v1/stacks/web/console?force=1"
is_error 400 bad_request "force without an upgrade: 400"

# ---- who may -----------------------------------------------------------------------------------
curl -sS -o "$TD_DIR/noauth.body" -w '%{http_code}' "${WS[@]}" -H "Sec-WebSocket-Key: $KEY" \
    "http://127.0.0.1:$TD_PORT/v1/stacks/web/console" >"$TD_DIR/noauth.status"
is "$(cat "$TD_DIR/noauth.status") $(jq -r .error.code "$TD_DIR/noauth.body")" "401 unauthorized" \
    "no token: 401, our JSON error"
ws "$BETA" /v1/stacks/web/console -H "Sec-WebSocket-Key: $KEY"
is_error 404 not_found "another tenant's stack: 404"
is "$ERR_MESSAGE" "stack 'web' not found" "... exactly like a missing one"
ws "$ACME" /v1/stacks/nosuch/console -H "Sec-WebSocket-Key: $KEY"
is_error 404 not_found "a missing stack: 404"
api_op GET /v1/stacks/web/console "${WS[@]}" -H "Sec-WebSocket-Key: $KEY"
is_error 403 forbidden "the operator (a tenant route): 403"

# ---- the test driver has no console streams -------------------------------------------------------
ws "$ACME" /v1/stacks/web/console -H "Sec-WebSocket-Key: $KEY"
is_error 501 not_implemented "the test backend: 501"
like "$ERR_MESSAGE" "no interactive console" "... saying so ($ERR_MESSAGE)"
ws "$ACME" "/v1/stacks/web/console?force=1" -H "Sec-WebSocket-Key: $KEY"
is_error 501 not_implemented "... with force=1 too"
api_tn "$ACME" GET /v1/stacks/web
is "$(jb .stack.state)" running "... and the stack runs on"

# ---- without the upgrade, the read-only console is unchanged ----------------------------------------
api_tn "$ACME" GET "/v1/stacks/web/console?tail=5"
is "$STATUS $(hdr Content-Type)" "200 text/plain; charset=utf-8" "the read-only console: 200 text/plain"

# ---- a stack that is not running ---------------------------------------------------------------------
ws "$ACME" /v1/stacks/db/console -H "Sec-WebSocket-Key: $KEY"
is_error 409 conflict "a stopped stack: 409"
like "$ERR_MESSAGE" "stack 'db' is stopped" "... saying why ($ERR_MESSAGE)"

td_done
