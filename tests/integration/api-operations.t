#!/usr/bin/env bash
# Operations through the real server, with the test hooks' sleep operation:
# 202 + Location, progress, wait?timeout= (long poll), cancel (running and
# pending), 409 once ended, and a kill -9 in the middle: after the restart
# every operation that was pending or running is failed with "interrupted
# by daemon restart", never stuck.  Then GET /v1/operations: each tenant
# walks exactly its own operations a page at a time, newest first; the
# operator walks everyone's or one tenant's; status and kind filter; bad
# status, kind, limit, after and tenant are 400 naming them, an unknown
# tenant 404, as on GET /v1/stacks.
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


# ---- GET /v1/operations ------------------------------------------------------------------------
# After the counts above: what follows adds operations.
td_tenant beta || bail "cannot create tenant beta"
B=$TOKEN
td_tenant gamma || bail "cannot create tenant gamma"
G=$TOKEN
beta_done=()
for _ in 1 2 3; do
    td_sleep_op "$B" 0 && beta_done+=("$OP_ID")
done
# Long enough to be running still when the last check below cancels it.
td_sleep_op "$B" 300 || bail "cannot start beta's long operation"
BETA_LONG=$OP_ID
td_wait_status "$BETA_LONG" running || diag "beta's long operation is not running"
for op in "${beta_done[@]}"; do td_wait_status "$op" succeeded || diag "$op did not succeed"; done
# Another kind: the operator's own test.hang (the pool held for a second;
# plain curl: a test hook's answer is no part of the API contract).
STATUS=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 --unix-socket "$TD_SOCK" \
    -X POST --json '{"what":"workers","seconds":1}' http://localhost/v1/test/hang)
[ "$STATUS" = 204 ] || bail "no test.hang operation: $STATUS"
HANG=$(td_sql "SELECT id FROM operations WHERE kind = 'test.hang'")
td_wait_status "$HANG" succeeded || diag "the test.hang operation did not succeed"

# ask TOKEN PATH: GET as the operator (TOKEN empty) or a tenant.
ask() {
    if [ -z "$1" ]; then api_op GET "$2"; else api_tn "$1" GET "$2"; fi
}

# walk TOKEN QUERY: follows next from GET /v1/operations?limit=3&QUERY as
# TOKEN (the operator when empty).  Sets WALK (the ids, sorted), WALK_PAGES
# and WALK_OK: 0 when every page answered 200, each but the last had 3 and a
# next, and the whole walk is newest first (created_at, then id, descending).
walk() {
    local who=$1 query=$2 after="" all="[]"
    WALK_PAGES=0
    WALK_OK=0
    while :; do
        ask "$who" "/v1/operations?limit=3${query:+&$query}${after:+&after=$after}"
        if [ "$STATUS" != 200 ]; then
            diag "walk $query: $STATUS $BODY"
            WALK_OK=1
            break
        fi
        WALK_PAGES=$((WALK_PAGES + 1))
        all=$(jq -c --argjson page "$(jb -c '[.operations[] | [.created_at, .id]]')" '. + $page' <<<"$all")
        after=$(jb .next)
        [ "$after" = null ] && break
        if [ "$(jb '.operations | length')" != 3 ] || [ "$WALK_PAGES" -ge 50 ]; then
            WALK_OK=1
            break
        fi
    done
    [ "$(jq '. == (sort | reverse)' <<<"$all")" = true ] || WALK_OK=1
    WALK=$(jq -c 'map(.[1]) | sort' <<<"$all")
}

# stored WHERE: the ids (sorted) of the operations the store has that WHERE
# selects (o: operations, t: their tenant, if any).
stored() {
    td_sql "SELECT o.id FROM operations o LEFT JOIN tenants t ON t.id = o.tenant_id WHERE $1" |
        jq -R . | jq -sc sort
}

acme_ops=$(stored "t.name = 'acme'")
acme_n=$(jq length <<<"$acme_ops")
walk "$A" ""
is "$WALK_OK $WALK" "0 $acme_ops" "acme walks exactly its own $acme_n operations, newest first"
is "$WALK_PAGES" "$(((acme_n + 2) / 3))" "... 3 a page: $(((acme_n + 2) / 3)) pages, next null on the last"
api_tn "$A" GET /v1/operations
is "$(jb -c '[.operations[].id] | sort') $(jb .next)" "$acme_ops null" "... the same as one page without a limit"
first=$(td_sql "SELECT o.id FROM operations o JOIN tenants t ON t.id = o.tenant_id WHERE t.name = 'acme' ORDER BY o.created_at DESC LIMIT 1")
is "$(jb -r '.operations[0].id')" "$first" "... the newest first"
walk "$B" ""
is "$WALK_OK $WALK" "0 $(stored "t.name = 'beta'")" "beta walks exactly its own 4 operations"
api_tn "$G" GET /v1/operations
is "$STATUS $(jb -c .operations) $(jb .next)" "200 [] null" "gamma, which has none, gets an empty page"
walk "" ""
is "$WALK_OK $WALK" "0 $(stored 1)" "the operator walks everyone's, its own work included"
[ "$(jq "index(\"$OPER\") != null and index(\"$HANG\") != null" <<<"$WALK")" = true ]
ok $? "... such as its sleep and its test.hang, which no tenant sees"
walk "" "tenant=beta"
is "$WALK_OK $WALK" "0 $(stored "t.name = 'beta'")" "the operator with tenant=beta walks beta's"
walk "" "tenant=gamma"
is "$WALK_OK $WALK" "0 []" "... tenant=gamma: none"

# ---- filters ----
api_tn "$B" GET "/v1/operations?status=running"
is "$STATUS $(jb -c '[.operations[].id]')" "200 [\"$BETA_LONG\"]" "status=running: beta's running one"
walk "$B" "status=succeeded"
is "$WALK_OK $WALK" "0 $(printf '%s\n' "${beta_done[@]}" | jq -R . | jq -sc sort)" "status=succeeded: beta's 3 that ended"
walk "$A" "status=failed"
is "$WALK_OK $WALK" "0 $(stored "t.name = 'acme' AND o.status = 'failed'")" \
    "status=failed: acme's 6 interrupted by the kill"
walk "" "status=pending,running"
is "$WALK_OK $WALK" "0 [\"$BETA_LONG\"]" "status=pending,running (the operator): what is under way"
walk "" "status=cancelled,succeeded&tenant=acme"
is "$WALK_OK $WALK" "0 $(stored "t.name = 'acme' AND o.status IN ('cancelled', 'succeeded')")" \
    "status=cancelled,succeeded&tenant=acme: both statuses, acme's only"
api_op GET "/v1/operations?kind=test.hang"
is "$(jb -c '[.operations[].id]')" "[\"$HANG\"]" "kind=test.hang: the operator's one"
api_tn "$A" GET "/v1/operations?kind=test.hang"
is "$STATUS $(jb -c .operations) $(jb .next)" "200 [] null" "... acme has none"
walk "$B" "kind=test.sleep&status=running"
is "$WALK_OK $WALK" "0 [\"$BETA_LONG\"]" "kind and status together"
api_tn "$A" GET "/v1/operations?kind=stack.force-stop"
is "$STATUS $(jb -c .operations) $(jb .next)" "200 [] null" "a well-formed kind nothing has: an empty page"

# ---- bad parameters, cursors and tenants ----
bad() { # bad WHO QUERY MESSAGE-PREFIX DESCRIPTION
    ask "$1" "/v1/operations?$2"
    td_error_fields
    is "$STATUS $ERR_CODE ${ERR_MESSAGE:0:${#3}}" "400 bad_request $3" "$4"
}
bad "$A" "status=done" "status: 'done' is not one of pending, running, succeeded, failed, cancelled" \
    "status=done: 400 naming status and the choices"
bad "" "status=" "status: '' is not one of" "status= (empty): 400"
bad "$A" "status=pending,,running" "status: '' is not one of" "status=pending,,running: 400"
bad "$A" "status=Running" "status: 'Running'" "status=Running: 400"
bad "$A" "kind=Stack.Create" "kind: must be 1 to 64 of a-z, 0-9, '.' and '-'" "kind=Stack.Create: 400 naming kind"
bad "$A" "kind=" "kind: must be" "kind= (empty): 400"
bad "$A" "kind=stack%20create" "kind: must be" "kind with a space: 400"
bad "" "kind=$(printf 'k%.0s' {1..65})" "kind: must be" "a kind of 65 characters: 400"
bad "$A" "limit=0" "limit: must be a whole number between 1 and 1000" "limit=0: 400 naming limit"
bad "" "limit=1001" "limit: must be a whole number between 1 and 1000" "limit=1001: 400"
forged=$(printf 'acme\0zzz\0x' | base64 -w0 | tr '+/' '-_' | tr -d '=')
bad "$A" "after=$forged" "after: invalid cursor" "a forged cursor: 400 naming after"
api_tn "$B" GET "/v1/operations?limit=1"
beta_cursor=$(jb -r .next)
bad "$A" "after=$beta_cursor" "after: invalid cursor" "beta's cursor given by acme: 400"
bad "" "after=$beta_cursor" "after: invalid cursor" "... or to the operator's list of everyone's: 400"
api_op GET "/v1/operations?tenant=beta&after=$beta_cursor&limit=1"
is "$STATUS $(jb '.operations | length')" "200 1" "... but good for the operator's list of beta's"
bad "" "bogus=1" "unknown query parameter 'bogus'" "an unknown parameter: 400 naming it"

api_tn "$A" GET "/v1/stacks?tenant=beta"
td_error_fields
stacks_answer="$STATUS $ERR_CODE"
api_tn "$A" GET "/v1/operations?tenant=beta"
td_error_fields
is "$STATUS $ERR_CODE $ERR_MESSAGE" "$stacks_answer tenant: only the operator may list another tenant's operations" \
    "a tenant giving tenant=: $stacks_answer, as on stacks"
api_tn "$A" GET "/v1/operations?tenant=acme"
is "$STATUS" 400 "... even its own name"
api_op GET "/v1/stacks?tenant=nosuch"
td_error_fields
stacks_answer="$STATUS $ERR_CODE $ERR_MESSAGE"
api_op GET "/v1/operations?tenant=nosuch"
td_error_fields
is "$STATUS $ERR_CODE $ERR_MESSAGE" "$stacks_answer" "the operator's tenant=nosuch: $stacks_answer, as on stacks"
api_op GET "/v1/operations?tenant=Not_A_Name"
is_error 400 bad_request "the operator's tenant= with a bad name: 400"

api_op DELETE "/v1/operations/$BETA_LONG"
td_wait_status "$BETA_LONG" cancelled 3
ok $? "beta's long operation is cancelled"
api_tn "$B" GET "/v1/operations?status=pending,running"
is "$STATUS $(jb -c .operations)" "200 []" "... and beta has nothing under way any more"

td_done
