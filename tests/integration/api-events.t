#!/usr/bin/env bash
# GET /v1/events (Server-Sent Events) through the real server: each caller
# sees only its own operation events (tenant acme never beta's, nor the
# operator's own), the operator sees them all, every event's data is an
# OperationEnvelope, and a stream open at SIGTERM ends cleanly.  A stream
# dropped and resumed (Last-Event-ID, or ?after=) gets every event it may see
# in between exactly once; a cursor older than the ring (event_ring) is 410,
# a malformed one 400.
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

# ---- resuming a dropped stream ---------------------------------------------------------------------
# seen NAME PATTERN: waits (5 s at most) until stream NAME shows PATTERN
seen() {
    local deadline=$(($(now_ms) + 5000))
    until grep -q -- "$2" "$TD_DIR/$1.sse" 2>/dev/null; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}
# kept TENANT FROM: the kept events from id FROM on that TENANT may see (empty:
# the operator, all of them), as "id<TAB>event<TAB>data" like `events`
kept() {
    local who=""
    [ -n "$1" ] && who="AND tenant_id = (SELECT id FROM tenants WHERE name = '$1')"
    td_sql "SELECT id || char(9) || type || char(9) || data FROM events WHERE id >= $2 $who ORDER BY id"
}
# op_done TOKEN: a finished sleep operation of TOKEN's tenant (the operator's: empty); sets OP_ID
op_done() {
    td_sleep_op "$1" 0 || return 1
    td_wait_status "$OP_ID" succeeded
}

stream r1 -H "Authorization: Bearer $A" "http://127.0.0.1:$TD_PORT/v1/events"
live r1 || diag "acme's first stream did not open"
op_done "$A" || bail "acme's operation did not finish"
R1_OP=$OP_ID
seen r1 "$R1_OP.*succeeded" || diag "acme's first stream did not see its operation end"
td_bg_stop r1
LAST=$(events r1 | tail -n1 | cut -f1)
FIRST=$(events r1 | head -n1 | cut -f1)
# While acme is away: two of its own, and beta's and the operator's.
op_done "$A" && AWAY1=$OP_ID
op_done "$B" && AWAY_B=$OP_ID
op_done "" && AWAY_O=$OP_ID
op_done "$A" && AWAY2=$OP_ID
stream r2 -H "Authorization: Bearer $A" -H "Last-Event-ID: $LAST" "http://127.0.0.1:$TD_PORT/v1/events"
live r2 || diag "acme's resumed stream did not open"
op_done "$A" && LIVE_OP=$OP_ID
seen r2 "$LIVE_OP.*succeeded" || diag "acme's resumed stream did not see the live operation end"
td_bg_stop r2
is "$(events r2 | head -n1 | cut -f1)" "$(kept acme $((LAST + 1)) | head -n1 | cut -f1)" \
    "the resumed stream starts at acme's first event after Last-Event-ID $LAST"
is "$(statuses r2 "$AWAY1") / $(statuses r2 "$AWAY2")" "pending running succeeded / pending running succeeded" \
    "... and shows both operations acme ran while it was away, whole"
is "$(events r2 | cut -f3 | grep -c -e "$AWAY_B" -e "$AWAY_O")" 0 \
    "... none of beta's or the operator's"
is "$({ events r1; events r2; } | cut -f1 | sort -n | uniq -d)" "" "no event came twice across the two streams"
is "$({ events r1; events r2; })" "$(kept acme "$FIRST")" \
    "dropped and resumed with Last-Event-ID, acme got each of its events exactly once, in order"

# ?after= for clients that cannot send headers: the operator, on the socket.
stream r3 --unix-socket "$TD_SOCK" "http://localhost/v1/events?after=$LAST"
live r3 || diag "the operator's resumed stream did not open"
op_done "" && LIVE_O=$OP_ID
seen r3 "$LIVE_O.*succeeded" || diag "the operator's resumed stream did not see its operation end"
td_bg_stop r3
is "$(events r3)" "$(kept "" $((LAST + 1)))" \
    "resumed with ?after=$LAST, the operator got every event since, acme's, beta's and its own, once each"

# A tenant's replay is its own: beta from the very start.
stream r4 -H "Authorization: Bearer $B" "http://127.0.0.1:$TD_PORT/v1/events?after=0"
live r4 || diag "beta's replay did not open"
seen r4 "$AWAY_B.*succeeded" || diag "beta's replay did not reach its last operation"
td_bg_stop r4
is "$(events r4)" "$(kept beta 0)" "beta's replay from 0 is beta's events, all of them, and nothing else"
ok "$(events r4 | cut -f3 | grep -q -e "$A_OP" -e "$O_OP" -e "$R1_OP" && echo 1 || echo 0)" \
    "... none of acme's or the operator's among them"

# Both: Last-Event-ID wins (EventSource resends its first URL, ?after= and all).
NEWEST=$(td_sql "SELECT max(id) FROM events")
stream r5 -H "Authorization: Bearer $A" -H "Last-Event-ID: $LAST" \
    "http://127.0.0.1:$TD_PORT/v1/events?after=$NEWEST"
live r5 || diag "the stream with both cursors did not open"
seen r5 "$LIVE_OP.*succeeded" || diag "the stream with both cursors did not replay from Last-Event-ID"
td_bg_stop r5
is "$(events r5)" "$(kept acme $((LAST + 1)))" "with both, the stream resumes from Last-Event-ID, not ?after="

# Malformed cursors: 400 naming the parameter, before any stream.
for bad in abc -1 +1 1.5 0x10 99999999999999999999 $((NEWEST + 1)); do
    api_tn "$A" GET /v1/events -H "Last-Event-ID: $bad" --max-time 5
    is_error 400 bad_request "Last-Event-ID: $bad is 400"
    is "${ERR_MESSAGE%%:*}" "Last-Event-ID" "... naming Last-Event-ID ($ERR_MESSAGE)"
done
api_tn "$A" GET /v1/events -H "Last-Event-ID;" --max-time 5
is_error 400 bad_request "an empty Last-Event-ID is 400"
for bad in abc -1 1e3 $((NEWEST + 1)); do
    api_op GET "/v1/events?after=$bad" --max-time 5
    is_error 400 bad_request "?after=$bad is 400"
    is "${ERR_MESSAGE%%:*}" after "... naming after ($ERR_MESSAGE)"
done
api_op GET "/v1/events?after=0" -H "Last-Event-ID: x" --max-time 5
td_error_fields
is "$STATUS ${ERR_MESSAGE%%:*}" "400 Last-Event-ID" "a malformed Last-Event-ID is refused even beside a good ?after="

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
# Nor its replay: the old gone's events are kept, but as the operator's.
stream newgone_replay -H "Authorization: Bearer $NEW_GONE" "http://127.0.0.1:$TD_PORT/v1/events?after=0"
live newgone_replay || diag "the new gone's replay did not open"
op_done "$NEW_GONE" && NEW_GONE_OP=$OP_ID
seen newgone_replay "$NEW_GONE_OP.*succeeded" || diag "the new gone's replay did not see its own operation"
td_bg_stop newgone_replay
is "$(events newgone_replay | cut -f3 | jq -r .operation.id | sort -u)" "$NEW_GONE_OP" \
    "a replay from 0 by the new 'gone' shows its own operation, none of the deleted 'gone''s"
is "$(kept "" 0 | grep -c "$GONE_OP.*succeeded")" 1 "... which the operator can still replay"

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

# ---- a cursor older than the ring ---------------------------------------------------------------------
# The same state under a ring of 100 (event_ring's least): events go on from
# the last id, and a cursor whose next events were trimmed is 410.
BEFORE=$(td_sql "SELECT max(id) FROM events")
printf '[turtled]\nevent_ring = 100\n' >"$TD_DIR/ring.conf"
td_start --config "$TD_DIR/ring.conf" || bail "turtled did not start with event_ring = 100"
op_done "" || bail "cannot run an operation"
ok "$([ "$(td_sql "SELECT min(id) FROM events WHERE id > $BEFORE")" = $((BEFORE + 1)) ] && echo 0 || echo 1)" \
    "after a restart, event ids go on from the last one ($BEFORE)"
n=0
while [ "$(td_sql "SELECT min(id) FROM events")" -le $((LAST + 1)) ] && [ "$n" -lt 100 ]; do
    op_done "" || break
    n=$((n + 1))
done
is "$(td_sql "SELECT count(*) FROM events")" 100 "the ring keeps the newest 100 events ($n more operations)"
# Plain curl: api/openapi.yaml does not list this 410 (nor the code "gone") yet.
code=$(curl -sS --max-time 5 --unix-socket "$TD_SOCK" -o "$TD_DIR/gone.json" -w '%{http_code}' \
    -H "Last-Event-ID: $LAST" http://localhost/v1/events)
is "$code $(jq -r '"\(.error.status) \(.error.code)"' "$TD_DIR/gone.json")" "410 410 gone" \
    "Last-Event-ID $LAST, older than the ring, is 410 gone"
msg=$(jq -r .error.message "$TD_DIR/gone.json")
ok "$([[ $msg == Last-Event-ID:*resync* ]] && echo 0 || echo 1)" "... telling the client to resync ($msg)"
jq -e '(keys == ["error"]) and (.error | keys == ["code", "message", "status"])' "$TD_DIR/gone.json" >/dev/null
ok $? "... in our error shape"
code=$(curl -sS --max-time 5 -o "$TD_DIR/gone.json" -w '%{http_code}' -H "Authorization: Bearer $A" \
    "http://127.0.0.1:$TD_PORT/v1/events?after=0")
is "$code $(jq -r .error.code "$TD_DIR/gone.json")" "410 gone" "?after=0 once the ring has moved on is 410 gone for a tenant too"
OLDEST=$(td_sql "SELECT min(id) FROM events")
stream edge --unix-socket "$TD_SOCK" "http://localhost/v1/events?after=$((OLDEST - 1))"
live edge || diag "the stream at the ring's edge did not open"
seen edge "^id: $(td_sql "SELECT max(id) FROM events")\$" || diag "the stream at the ring's edge did not reach the newest event"
td_bg_stop edge
is "$(events edge)" "$(kept "" "$OLDEST")" "a cursor just before the oldest kept event replays the whole ring"

td_done
