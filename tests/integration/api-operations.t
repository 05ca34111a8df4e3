#!/usr/bin/env bash
# Operations through the real server, with the test hooks' sleep operation:
# 202 + Location, progress, wait?timeout= (long poll), cancel (running and
# pending), 409 once ended, and a kill -9 in the middle: after the restart
# every operation that was pending or running is failed with "interrupted
# by daemon restart", never stuck.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

uuid_re='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'

td_init
td_start || bail "turtled did not start"
td_tenant acme || bail "cannot create tenant acme"
A=$TOKEN

elapsed_since() { echo $(($(now_ms) - $1)); }
# within MS LOW HIGH: LOW <= MS <= HIGH
within() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }

# ---- submit: 202, Location, the operation as it starts ---------------------------------------
api_tn "$A" POST /v1/test/sleep --json '{"seconds":2}'
is "$STATUS" 202 "POST /v1/test/sleep answers 202"
OP=$(jb .operation.id)
[[ $OP =~ $uuid_re ]]
ok $? "... with an operation whose id is a UUID"
is "$(hdr Location)" "/v1/operations/$OP" "... and Location: /v1/operations/{id}"
is "$(jb '[.operation.kind, .operation.target, .operation.error, .operation.progress.percent] | @tsv')" \
    "$(printf 'test.sleep\ttest/sleep\t\t0')" "... kind test.sleep, target test/sleep, no error, 0 %"
case $(jb .operation.status) in pending | running) r=0 ;; *) r=1 ;; esac
ok $r "... status pending or running ($(jb .operation.status))"

t0=$(now_ms)
api_tn "$A" GET "/v1/operations/$OP/wait?timeout=0"
is "$STATUS $(jb .operation.status)" "200 running" "wait?timeout=0 answers at once: still running"
ok "$(within "$(elapsed_since "$t0")" 0 800 && echo 0 || echo 1)" "... within 0.8 s"

# Progress: the sleep reports each second (10 of 20 tenths after 1 s).
deadline=$(($(now_ms) + 3000))
while api_tn "$A" GET "/v1/operations/$OP" && [ "$(jb .operation.progress.percent)" -lt 50 ] &&
    [ "$(now_ms)" -lt "$deadline" ]; do
    sleep 0.1
done
is "$(jb -c .operation.progress)" '{"percent":50,"stage":"sleeping","bytes_done":10,"bytes_total":20}' \
    "GET shows the progress after a second: 50 %, stage, done/total"
[[ "$(jb .operation.updated_at)" > "$(jb .operation.created_at)" ]]
ok $? "... and updated_at moved past created_at"

t0=$(now_ms)
api_tn "$A" GET "/v1/operations/$OP/wait?timeout=10"
ms=$(elapsed_since "$t0")
is "$STATUS $(jb .operation.status) $(jb .operation.progress.percent)" "200 succeeded 100" \
    "wait?timeout=10 answers when it ends: succeeded, 100 %"
ok "$(within "$ms" 0 2500 && echo 0 || echo 1)" "... as soon as it ended, not at the timeout (${ms} ms)"
is "$(jb .operation.error)" null "... with no error"

t0=$(now_ms)
api_tn "$A" GET "/v1/operations/$OP/wait"
is "$STATUS $(jb .operation.status)" "200 succeeded" "wait (default timeout) on an ended operation answers it"
ok "$(within "$(elapsed_since "$t0")" 0 800 && echo 0 || echo 1)" "... at once"

api_tn "$A" DELETE "/v1/operations/$OP"
is_error 409 conflict "cancelling an ended operation: 409"
is "$(jb .error.message)" "operation '$OP' is already succeeded" "... the message says why"
api_op GET "/v1/operations/$OP"
is "$(jb .operation.status)" succeeded "... and it stays succeeded"

# ---- wait times out while it runs ----------------------------------------------------------------
td_sleep_op "$A" 30 || bail "cannot start a long operation"
LONG=$OP_ID
td_wait_status "$LONG" running || diag "the long operation is not running"
t0=$(now_ms)
api_tn "$A" GET "/v1/operations/$LONG/wait?timeout=1"
ms=$(elapsed_since "$t0")
is "$STATUS $(jb .operation.status)" "200 running" "wait?timeout=1 on a running operation: 200, still running"
ok "$(within "$ms" 900 2500 && echo 0 || echo 1)" "... after about a second (${ms} ms)"

# ---- cancel -------------------------------------------------------------------------------------------
t0=$(now_ms)
api_tn "$A" DELETE "/v1/operations/$LONG"
is "$STATUS $(hdr Location)" "202 /v1/operations/$LONG" "DELETE of a running operation: 202 with Location"
case $(jb .operation.status) in running | cancelled) r=0 ;; *) r=1 ;; esac
ok $r "... the operation as it is now ($(jb .operation.status))"
api_tn "$A" GET "/v1/operations/$LONG/wait?timeout=5"
ms=$(elapsed_since "$t0")
is "$(jb .operation.status) $(jb .operation.error)" "cancelled null" "... it ends cancelled, with no error"
ok "$(within "$ms" 0 1500 && echo 0 || echo 1)" "... within 1.5 s of the cancel (${ms} ms), not after 30 s"
api_tn "$A" DELETE "/v1/operations/$LONG"
is_error 409 conflict "cancelling it again: 409"

# A pending one: the default 4 workers are all busy, the 5th waits.
busy=()
for _ in 1 2 3 4; do
    td_sleep_op "$A" 30 && busy+=("$OP_ID")
done
td_sleep_op "$A" 30 || bail "cannot queue an operation"
QUEUED=$OP_ID
for op in "${busy[@]}"; do td_wait_status "$op" running; done
api_op GET "/v1/operations/$QUEUED"
is "$(jb .operation.status)" pending "with 4 workers busy, a 5th operation is pending"
api_op DELETE "/v1/operations/$QUEUED"
is "$STATUS $(jb .operation.status)" "202 cancelled" "the operator cancels acme's pending operation: 202, cancelled at once"
# It never started: nothing has to stop, so it should end at once, not
# whenever a worker comes free (which may take as long as the longest
# operation in front of it).
td_wait_status "$QUEUED" cancelled 2
ok $? "... it ends cancelled within 2 s, while the 4 workers are still busy (got $(jb .operation.status))"
for op in "${busy[@]}"; do
    api_op DELETE "/v1/operations/$op"
done
for op in "${busy[@]}"; do td_wait_status "$op" cancelled 3 || break; done
ok $? "the operator cancels the 4 running ones: all cancelled"
td_wait_status "$QUEUED" cancelled 3
is "$(jb .operation.status) $(jb .operation.progress.percent)" "cancelled 0" \
    "once the workers are free the pending one is cancelled, never having run"

api_op POST /v1/test/sleep --json '{"seconds":0}'
is "$STATUS" 202 "the operator may start operations too"
OPER=$(jb .operation.id)
td_wait_status "$OPER" succeeded
ok $? "... which succeed"
api_tn "$A" GET "/v1/operations/$OPER"
is_error 404 not_found "... and which acme cannot see"

# ---- kill -9 in the middle ---------------------------------------------------------------------------
running=()
for _ in 1 2 3 4; do
    td_sleep_op "$A" 60 && running+=("$OP_ID")
done
pending=()
for _ in 1 2; do
    td_sleep_op "$A" 60 && pending+=("$OP_ID")
done
for op in "${running[@]}"; do td_wait_status "$op" running; done
api_op GET "/v1/operations/${pending[0]}"
before=$(jb .operation.updated_at)
is "$(jb .operation.status)" pending "4 operations run and 2 wait when turtled is killed"
td_kill9
is "$TD_EXIT" 137 "kill -9: turtled dies at once"
[ -S "$TD_SOCK" ]
ok $? "... leaving its socket file behind"

t0=$(now_ms)
td_start || bail "turtled did not start again after kill -9 (over its stale socket)"
ok 0 "turtled starts again over the stale socket"
grep -q "6 operation(s) interrupted by the last stop are now failed" "$TD_LOG"
ok $? "... and logs that 6 operations were interrupted"
all_ok=0
for op in "${running[@]}" "${pending[@]}"; do
    api_tn "$A" GET "/v1/operations/$op"
    if [ "$(jb '.operation.status + "|" + .operation.error')" != "failed|interrupted by daemon restart" ]; then
        all_ok=1
        diag "operation $op: $BODY"
    fi
done
ok $all_ok "all 6 (running and pending) are failed: \"interrupted by daemon restart\""
api_tn "$A" GET "/v1/operations/${pending[0]}"
[[ "$(jb .operation.updated_at)" > "$before" ]]
ok $? "... with updated_at moved to the restart"
t0=$(now_ms)
api_tn "$A" GET "/v1/operations/${running[0]}/wait?timeout=30"
is "$STATUS $(jb .operation.status)" "200 failed" "wait on one answers failed"
ok "$(within "$(elapsed_since "$t0")" 0 800 && echo 0 || echo 1)" "... at once: nothing is left waiting for it"
api_tn "$A" DELETE "/v1/operations/${running[1]}"
is_error 409 conflict "cancelling one: 409, it has ended"
api_op GET "/v1/operations/${running[2]}"
after_restart="$(jb .operation.status) $(jb .operation.progress.percent) $(jb .operation.updated_at)"
sleep 1.2
api_op GET "/v1/operations/${running[2]}"
# Its progress is what it had reached when killed (0 or 1 % of a sleep).
is "$(jb .operation.status) $(jb .operation.progress.percent) $(jb .operation.updated_at)" \
    "$after_restart" "a second later it is still failed, unchanged: no worker took it up again"

td_sleep_op "$A" 0 || bail "cannot start an operation after the restart"
td_wait_status "$OP_ID" succeeded
ok $? "new operations run after the restart"

api_op GET /metrics
failed=$(awk '$1 == "turtled_operations{kind=\"test.sleep\",status=\"failed\"}" { print $2 }' <<<"$BODY")
cancelled=$(awk '$1 == "turtled_operations{kind=\"test.sleep\",status=\"cancelled\"}" { print $2 }' <<<"$BODY")
succeeded=$(awk '$1 == "turtled_operations{kind=\"test.sleep\",status=\"succeeded\"}" { print $2 }' <<<"$BODY")
is "${failed:-0}/${cancelled:-0}/${succeeded:-0}" "6/6/3" "/metrics counts the operations by status: 6 failed, 6 cancelled, 3 succeeded"

td_done
