#!/usr/bin/env bash
# GET /v1/events (Server-Sent Events) through the real server: each caller
# sees only its own operation events (tenant acme never beta's, nor the
# operator's own), the operator sees them all, every event's data is an
# OperationEnvelope, and a stream open at SIGTERM ends cleanly.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

td_init
td_start || bail "turtled did not start"
td_tenant acme || bail "cannot create tenant acme"
A=$TOKEN
td_tenant beta || bail "cannot create tenant beta"
B=$TOKEN

# stream NAME [CURL-ARGS...]: GET /v1/events into $TD_DIR/NAME.sse (headers in NAME.h)
stream() {
    local name=$1
    shift
    td_bg_start "$name" curl -sS -N --max-time 60 -D "$TD_DIR/$name.h" -o "$TD_DIR/$name.sse" "$@"
}
stream operator --unix-socket "$TD_SOCK" http://localhost/v1/events
stream acme -H "Authorization: Bearer $A" "http://127.0.0.1:$TD_PORT/v1/events"
stream beta -H "Authorization: Bearer $B" "http://127.0.0.1:$TD_PORT/v1/events"
stream acme_sock -H "Authorization: Bearer $A" --unix-socket "$TD_SOCK" http://localhost/v1/events

# A stream is subscribed once its first bytes ("retry:") are out.
live() {
    local deadline=$(($(now_ms) + 5000)) name
    for name in "$@"; do
        until grep -q '^retry: 3000' "$TD_DIR/$name.sse" 2>/dev/null; do
            [ "$(now_ms)" -lt "$deadline" ] || return 1
            sleep 0.05
        done
    done
}
live operator acme beta acme_sock
ok $? "four event streams are open (operator, acme over TCP and on the socket, beta)"

for name in operator acme beta; do
    TD_RESP_HEADERS=$TD_DIR/$name.h
    _td_hdr Content-Type
    ctype=$HDR
    _td_hdr Cache-Control
    is "$(head -n1 "$TD_DIR/$name.h" | tr -d '\r' | cut -d' ' -f2) $ctype $HDR" "200 text/event-stream no-cache" \
        "$name's stream: 200, text/event-stream, Cache-Control: no-cache"
done
TD_RESP_HEADERS=$TD_DIR/resp.headers

td_sleep_op "$A" 1 || bail "cannot start acme's operation"
A_OP=$OP_ID
td_sleep_op "$B" 1 || bail "cannot start beta's operation"
B_OP=$OP_ID
td_sleep_op "" 0 || bail "cannot start the operator's operation"
O_OP=$OP_ID
api_tn "$A" GET "/v1/operations/$A_OP/wait?timeout=10"
api_tn "$B" GET "/v1/operations/$B_OP/wait?timeout=10"
td_wait_status "$O_OP" succeeded
# Streams poll their queue every half second: give the last events time to go out.
deadline=$(($(now_ms) + 5000))
until grep -q "$A_OP.*succeeded" "$TD_DIR/acme.sse" && grep -q "$B_OP.*succeeded" "$TD_DIR/beta.sse" &&
    grep -q "$O_OP.*succeeded" "$TD_DIR/operator.sse" && grep -q "$A_OP.*succeeded" "$TD_DIR/acme_sock.sse" ||
    [ "$(now_ms)" -ge "$deadline" ]; do
    sleep 0.1
done
for name in operator acme beta acme_sock; do
    td_bg_stop "$name"
    is "$BG_RC" 143 "$name's stream was still open until the test closed it"
done

# events NAME: "id<TAB>event<TAB>data" per event of the stream
events() {
    awk 'BEGIN { RS = ""; FS = "\n" }
        { id = ""; ev = ""; data = ""
          for (i = 1; i <= NF; i++) {
              if ($i ~ /^id: /) id = substr($i, 5)
              else if ($i ~ /^event: /) ev = substr($i, 8)
              else if ($i ~ /^data: /) data = substr($i, 7)
          }
          if (ev != "" || data != "") print id "\t" ev "\t" data }' "$TD_DIR/$1.sse"
}
# ops NAME: the distinct operation ids in the stream, sorted
ops() { events "$1" | cut -f3 | jq -r .operation.id | sort -u; }
# statuses NAME OP: the statuses of OP's events, in order, on one line
statuses() { events "$1" | cut -f3 | jq -r --arg op "$2" 'select(.operation.id == $op) | .operation.status' | uniq | paste -sd' '; }

is "$(head -c 13 "$TD_DIR/acme.sse")" "$(printf 'retry: 3000\n\n')" "a stream starts with 'retry: 3000'"
is "$(ops acme)" "$A_OP" "acme's stream shows acme's operation and nothing else"
is "$(ops acme_sock)" "$A_OP" "... on the socket too"
is "$(ops beta)" "$B_OP" "beta's stream shows beta's operation and nothing else"
is "$(ops operator)" "$(printf '%s\n' "$A_OP" "$B_OP" "$O_OP" | sort)" \
    "the operator's stream shows acme's, beta's and its own"
is "$(statuses acme "$A_OP")" "pending running succeeded" "acme sees its operation queued, run and succeed, in that order"
is "$(statuses operator "$B_OP")" "pending running succeeded" "the operator sees beta's the same way"
is "$(events acme | cut -f3 | jq -r --arg op "$A_OP" \
    'select(.operation.id == $op and .operation.status == "running") | .operation.progress | "\(.percent) \(.stage)"' | tail -n1)" \
    "100 sleeping" "... with a progress event (100 %, sleeping) before the end"
is "$(events operator | cut -f2 | sort -u | paste -sd' ')" operation "every event so far is an 'operation' event"
skip "lifecycle events: nothing publishes them before stacks exist"

# The same event reaches every subscriber who may see it, with the same id.
missing=$(events acme | grep -vxFf <(events operator))
is "$missing" "" "each of acme's events is in the operator's stream, with the same id and data"
is "$(events acme)" "$(events acme_sock)" "acme's two streams got the same events"
for name in operator acme beta; do
    ids=$(events "$name" | cut -f1)
    [ -n "$ids" ] && [ "$ids" = "$(sort -n -u <<<"$ids")" ]
    ok $? "$name's event ids increase"
done

# Every event's data against the schema of an operation envelope.
n=0
while IFS=$'\t' read -r _ _ data; do
    n=$((n + 1))
    printf '%s' "$data" >"$TD_DIR/event.$n.json"
    td_check_schema OperationEnvelope "$TD_DIR/event.$n.json" "event $n of the operator's stream"
done < <(events operator)

# ---- credentials -----------------------------------------------------------------------------------
api_op POST /v1/tenants/acme/tokens
REVOKED=$(jb .token.secret)
api_op DELETE "/v1/tenants/acme/tokens/$(jb .token.id)"
api_tn "$REVOKED" GET /v1/events --max-time 3
is_error 401 unauthorized "a revoked token gets no stream: 401"
api_tn "" GET /v1/events --max-time 3
is_error 401 unauthorized "no token over TCP gets no stream: 401"

# ---- a revoked token's stream, and a name taken again ------------------------------------------------
# "Revoke: the secret stops working at once" holds for a stream opened before.
api_op POST /v1/tenants/acme/tokens
T2=$(jb .token.secret)
T2_ID=$(jb .token.id)
stream revoked -H "Authorization: Bearer $T2" "http://127.0.0.1:$TD_PORT/v1/events"
live revoked || diag "the stream of the token to revoke did not open"
api_op DELETE "/v1/tenants/acme/tokens/$T2_ID"
td_sleep_op "$A" 0 || bail "cannot start an operation"
AFTER=$OP_ID
api_tn "$A" GET "/v1/operations/$AFTER/wait?timeout=5"
sleep 0.7
td_bg_stop revoked
is "$(grep -c "$AFTER" "$TD_DIR/revoked.sse")" 0 \
    "a stream opened with a token that is then revoked gets no more events"

# A new tenant must never see a deleted one's work: a tenant whose operation
# still runs cannot be deleted, so its name cannot be taken while it runs.
td_tenant gone || bail "cannot create tenant gone"
td_sleep_op "$TOKEN" 2 || bail "cannot start gone's operation"
GONE_OP=$OP_ID
td_wait_status "$GONE_OP" running
api_op DELETE /v1/tenants/gone
is_error 409 conflict "a tenant with a running operation cannot be deleted: 409"
td_wait_status "$GONE_OP" succeeded 5
api_op DELETE /v1/tenants/gone
is "$STATUS" 204 "once its operation has ended, the tenant can be deleted"
td_tenant gone || bail "cannot create tenant gone again"
NEW_GONE=$TOKEN
stream newgone -H "Authorization: Bearer $NEW_GONE" "http://127.0.0.1:$TD_PORT/v1/events"
live newgone || diag "the new gone's stream did not open"
sleep 0.7
td_bg_stop newgone
api_tn "$NEW_GONE" GET "/v1/operations/$GONE_OP"
is_error 404 not_found "the new 'gone' cannot GET the deleted 'gone''s operation"
is "$(grep -c "$GONE_OP" "$TD_DIR/newgone.sse")" 0 \
    "... and its event stream does not show that operation's events either"

# ---- a stream open at SIGTERM ends cleanly -----------------------------------------------------------
stream late -H "Authorization: Bearer $A" "http://127.0.0.1:$TD_PORT/v1/events"
live late || diag "the last stream did not open"
t0=$(now_ms)
td_stop TERM
ms=$(($(now_ms) - t0))
is "$TD_EXIT" 0 "SIGTERM with a stream open: turtled exits 0"
ok "$([ "$ms" -lt 5000 ] && echo 0 || echo 1)" "... within 5 s (${ms} ms)"
td_bg_stop late wait 5
is "$BG_RC" 0 "... and the client saw the stream end properly (curl exits 0)"

td_done
