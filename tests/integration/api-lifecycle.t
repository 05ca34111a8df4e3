#!/usr/bin/env bash
# turtled as a process: its socket's mode, tenants and tokens across restarts
# (SIGTERM and kill -9), SIGTERM while a long poll is in flight (drain),
# sd_notify on NOTIFY_SOCKET, the config file and the flags over it, and
# refusals at start (bad config, a busy socket, plain HTTP off loopback).
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

NOTIFY_LISTEN=$TURTLES_BUILD/tests/tools/notify-listen
[ -x "$NOTIFY_LISTEN" ] || bail "$NOTIFY_LISTEN is not built (make $NOTIFY_LISTEN)"
td_init

# ---- sd_notify, and the socket's mode ------------------------------------------------------------
td_bg_start notify "$NOTIFY_LISTEN" "$TD_DIR/notify.sock" 60 >"$TD_DIR/notify.out"
for _ in $(seq 100); do [ -S "$TD_DIR/notify.sock" ] && break; sleep 0.02; done
[ -S "$TD_DIR/notify.sock" ] || bail "notify-listen did not start"
saved_umask=$(umask)
umask 000 # the socket's mode must not depend on the umask
NOTIFY_SOCKET=$TD_DIR/notify.sock td_start || bail "turtled did not start"
umask "$saved_umask"
# notified NEEDLE: waits (2 s) for a line of the notify output
notified() {
    local deadline=$(($(now_ms) + 2000))
    until grep -qxF "$1" "$TD_DIR/notify.out"; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.02
    done
}
notified READY=1
ok $? "sd_notify: READY=1 once serving"
notified "STATUS=serving on $TD_SOCK, backend test"
ok $? "sd_notify: STATUS=serving on the socket, backend test"
is "$(grep -c STOPPING "$TD_DIR/notify.out")" 0 "sd_notify: no STOPPING=1 while serving"
is "$(stat -c '%a %F' "$TD_SOCK")" "660 socket" "the socket is mode 0660 under umask 000"

# ---- tenants and tokens survive a restart --------------------------------------------------------------
td_tenant acme '{"name":"acme","quota":{"stacks":3}}' || bail "cannot create acme"
A1=$TOKEN
td_tenant beta || bail "cannot create beta"
B=$TOKEN
td_tenant gamma || bail "cannot create gamma"
G=$TOKEN
api_op PATCH /v1/tenants/acme --json '{"quota":{"vcpus":12,"disk_gib":7}}'
api_op POST /v1/tenants/acme/tokens
A2=$(jb .token.secret)
api_op POST /v1/tenants/acme/tokens
A3=$(jb .token.secret)
api_op DELETE "/v1/tenants/acme/tokens/$(jb .token.id)"
is "$STATUS" 204 "acme has three tokens, one of them revoked"
api_op DELETE /v1/tenants/gamma
is "$STATUS" 204 "gamma is deleted"
api_op GET /v1/tenants
tenants_before=$BODY

# works TOKEN: 0 when the token authenticates (an unknown operation is 404)
works() {
    api_tn "$1" GET /v1/operations/00000000-0000-4000-8000-000000000000
    [ "$STATUS" = 404 ]
}

td_stop TERM
is "$TD_EXIT" 0 "SIGTERM: turtled exits 0"
notified STOPPING=1
ok $? "sd_notify: STOPPING=1 at SIGTERM"
notified "STATUS=draining requests"
ok $? "sd_notify: STATUS=draining requests"
is "$(grep -xE 'READY=1|STOPPING=1' "$TD_DIR/notify.out" | paste -sd' ')" "READY=1 STOPPING=1" \
    "sd_notify: READY=1 once, then STOPPING=1 once, in that order"
td_bg_stop notify
is "$BG_RC" 0 "notify-listen ends cleanly"
[ ! -e "$TD_SOCK" ]
ok $? "a clean stop removes the socket file"

umask 077
td_start || bail "turtled did not start again"
umask "$saved_umask"
is "$(stat -c %a "$TD_SOCK")" 660 "the socket is mode 0660 under umask 077 too"
api_op GET /v1/tenants
is "$BODY" "$tenants_before" "after a restart the tenants are the same (ids, quotas, times)"
works "$A1"
ok $? "acme's first token works after the restart"
works "$A2"
ok $? "acme's second token works after the restart"
works "$A3"
is "$STATUS" 401 "the revoked token stays revoked"
works "$G"
is "$STATUS" 401 "the deleted tenant's token stays dead"
works "$B"
ok $? "beta's token works"

# kill -9 right after a write: the store has it.
td_tenant delta || bail "cannot create delta"
D=$TOKEN
api_op GET /v1/tenants/delta
delta=$BODY
td_kill9
td_start || bail "turtled did not start after kill -9"
api_op GET /v1/tenants/delta
is "$BODY" "$delta" "a tenant created just before a kill -9 is there after the restart"
works "$D"
ok $? "... and its token works"

# ---- SIGTERM while a long poll is in flight: drain --------------------------------------------------------
td_sleep_op "$A1" 20 || bail "cannot start a long operation"
OP=$OP_ID
td_wait_status "$OP" running || diag "the operation is not running"
td_bg_start waiter curl -sS --max-time 20 -o "$TD_DIR/wait.body" -w '%{http_code}' \
    -H "Authorization: Bearer $A1" "http://127.0.0.1:$TD_PORT/v1/operations/$OP/wait?timeout=4" \
    >"$TD_DIR/wait.status" 2>"$TD_DIR/wait.err"
sleep 0.5 # the request is in the handler, waiting
t0=$(now_ms)
td_stop TERM
ms=$(($(now_ms) - t0))
is "$TD_EXIT" 0 "SIGTERM with a wait in flight: turtled exits 0"
ok "$([ "$ms" -lt 7000 ] && echo 0 || echo 1)" "... within 7 s (${ms} ms): never stuck"
td_bg_stop waiter wait 10
is "$BG_RC $(cat "$TD_DIR/wait.status")" "0 200" \
    "the waiting client got a complete 200 response (curl: $(cat "$TD_DIR/wait.err"))"
jq -e '.operation.id' "$TD_DIR/wait.body" >/dev/null 2>&1
ok $? "... whose body is the operation"
[ -s "$TD_DIR/wait.body" ] && td_check_body "the drained wait's body" "$TD_DIR/wait.body" \
    GET "/v1/operations/{id}/wait" 200

td_start || bail "turtled did not start after the drain"
api_op GET "/v1/operations/$OP"
case $(jb .operation.status) in cancelled | failed) r=0 ;; *) r=1 ;; esac
ok $r "the operation running at SIGTERM has ended after the restart ($(jb .operation.status)), not stuck"

# ---- a second turtled on the same socket is refused -----------------------------------------------------
"$TD_BIN" --state-dir "$TD_DIR/other" --socket "$TD_SOCK" --backend test >"$TD_DIR/second.log" 2>&1 &
second=$!
for _ in $(seq 250); do _td_alive "$second" || break; sleep 0.02; done
if _td_alive "$second"; then kill "$second"; fi
wait "$second"
rc=$?
ok "$([ "$rc" != 0 ] && grep -q "another server is already listening on $TD_SOCK" "$TD_DIR/second.log" && echo 0 || echo 1)" \
    "a second turtled on the same socket exits non-zero: another server is listening (exit $rc)"
api_op GET /v1
is "$STATUS" 200 "... and the first one still answers on it"
td_stop TERM
is "$TD_EXIT" 0 "turtled stops"

# ---- the config file, and flags over it --------------------------------------------------------------------
cat >"$TD_DIR/turtled.conf" <<EOF
# the file's values, none on the command line
[turtled]
state_dir = $TD_DIR/cstate
socket = $TD_DIR/run/c.sock
listen = 127.0.0.1:0
backend = test
workers = 1
EOF
TD_NO_DEFAULTS=1 TD_EXPECT_SOCK=$TD_DIR/run/c.sock TD_EXPECT_TCP=1 \
    td_start --config "$TD_DIR/turtled.conf" --test-hooks || bail "turtled did not start from its config file"
ok 0 "turtled starts from a config file alone"
is "$(stat -c '%a %F' "$TD_DIR/run/c.sock")" "660 socket" "... serving on the file's socket (mode 0660, its dir made)"
[ -f "$TD_DIR/cstate/turtled.db" ] && [ ! -e "$TD_SOCK" ]
ok $? "... with its state in the file's state_dir"
[ -n "$TD_PORT" ]
ok $? "... and the file's TCP listener (port $TD_PORT)"
grep -q "(backend test, state $TD_DIR/cstate)" "$TD_LOG"
ok $? "... and the file's backend (test)"
TD_SOCK=$TD_DIR/run/c.sock
td_sleep_op "" 2 && first=$OP_ID
td_sleep_op "" 2 && second_op=$OP_ID
td_wait_status "$first" running
api_op GET "/v1/operations/$second_op"
is "$(jb .operation.status)" pending "workers = 1: a second operation waits while the first runs"
api_op DELETE "/v1/operations/$first"
td_stop TERM
is "$TD_EXIT" 0 "turtled stops"

# The same file with backend = tcg: --test-hooks is refused by the file's value...
sed -i 's/^backend = test$/backend = tcg/' "$TD_DIR/turtled.conf"
timeout 10 "$TD_BIN" --config "$TD_DIR/turtled.conf" --test-hooks >/dev/null 2>"$TD_DIR/err"
rc=$?
ok "$([ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q -- "--test-hooks needs --backend test" "$TD_DIR/err" && echo 0 || echo 1)" \
    "the file's backend = tcg is used: --test-hooks is refused (exit $rc: $(head -c 200 "$TD_DIR/err"))"
# ... and flags override the file: backend, socket, state dir (listen stays the file's).
TD_NO_DEFAULTS=1 TD_EXPECT_SOCK=$TD_DIR/f.sock TD_EXPECT_TCP=1 \
    td_start --config "$TD_DIR/turtled.conf" --backend test --test-hooks \
    --socket "$TD_DIR/f.sock" --state-dir "$TD_DIR/fstate" || bail "turtled did not start with flags over its file"
ok 0 "flags override the file: --backend test makes --test-hooks acceptable"
[ -S "$TD_DIR/f.sock" ] && [ ! -e "$TD_DIR/run/c.sock" ] && [ -f "$TD_DIR/fstate/turtled.db" ]
ok $? "... --socket and --state-dir win over the file's socket and state_dir"
[ -n "$TD_PORT" ]
ok $? "... and the file's listen still applies"
TD_SOCK=$TD_DIR/f.sock
api_op GET /v1/tenants
is "$BODY" '{"tenants":[],"next":null}' "... on a state of its own"
td_stop TERM
is "$TD_EXIT" 0 "turtled stops"

# ---- refusals at start --------------------------------------------------------------------------------------
# refused DESC NEEDLE CONFIG-TEXT [FLAGS...]: turtled exits non-zero, saying NEEDLE, serving nothing
refused() {
    local desc=$1 needle=$2 text=$3 rc
    shift 3
    printf '%s\n' "$text" >"$TD_DIR/bad.conf"
    rm -f "$TD_DIR/bad.sock"
    timeout 10 "$TD_BIN" --config "$TD_DIR/bad.conf" --socket "$TD_DIR/bad.sock" \
        --state-dir "$TD_DIR/badstate" "$@" >/dev/null 2>"$TD_DIR/err"
    rc=$?
    if [ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -qF -- "$needle" "$TD_DIR/err" && [ ! -e "$TD_DIR/bad.sock" ]; then
        ok 0 "$desc: exit $rc, says \"$needle\""
    else
        ok 1 "$desc: exit $rc, says \"$needle\""
        diag "stderr: $(cat "$TD_DIR/err")"
    fi
}
refused "an unknown key" "unknown key 'colour'" $'[turtled]\nbackend = test\ncolour = blue'
refused "an unknown group" "unknown group [turtle]" $'[turtle]\nbackend = test'
refused "workers not a number" "workers" $'[turtled]\nworkers = many'
refused "workers 0" "workers: must be between 1 and 64" $'[turtled]\nworkers = 0'
refused "an unknown backend" "backend: must be auto, kvm, tcg or test, not 'fast'" $'[turtled]\nbackend = fast'
refused "a relative state_dir" "state_dir and socket: must be absolute paths" $'[turtled]\nbackend = test\nstate_dir = relative/dir' \
    --state-dir relative/dir
refused "tls_cert without tls_key" "tls_cert and tls_key" $'[turtled]\nbackend = test\ntls_cert = /nonexistent.pem'
refused "not a key file" "bad.conf" 'this is not a key file'
refused "plain HTTP on a non-loopback address" "refusing plain HTTP on non-loopback address" \
    $'[turtled]\nbackend = test' --listen 0.0.0.0:0
refused "a bad listen address" "bad listen address" $'[turtled]\nbackend = test' --listen nowhere
timeout 10 "$TD_BIN" --config "$TD_DIR/missing.conf" --socket "$TD_DIR/bad.sock" --state-dir "$TD_DIR/badstate" \
    --backend test >/dev/null 2>"$TD_DIR/err"
rc=$?
ok "$([ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -qF "$TD_DIR/missing.conf" "$TD_DIR/err" && echo 0 || echo 1)" \
    "a --config file that does not exist: exit $rc, naming it"
timeout 10 "$TD_BIN" --no-such-flag >/dev/null 2>"$TD_DIR/err"
rc=$?
ok "$([ "$rc" = 2 ] && grep -qF -- "--no-such-flag" "$TD_DIR/err" && echo 0 || echo 1)" \
    "an unknown flag: exit 2, naming it (exit $rc)"

td_done
