#!/usr/bin/env bash
# Tenants under races and crashes: a tenant and its first token are one
# transaction.  POST and DELETE of one name racing answer only 201, 204,
# 404 or 409, and the answers add up (creates - deletes = exists); kill -9
# in the middle of bursts of tenant creates leaves no tenant without a
# token, and every tenant whose 201 reached its client exists with a token
# that works.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

ROUNDS=${RACE_ROUNDS:-40}
KILLS=${RACE_KILLS:-6}
CLIENTS=4

td_init
td_start || bail "turtled did not start"

# One raw request on the socket, for background clients: prints the status
# (000 when the connection broke).
req() {
    curl -s --max-time 10 -o "$3" -w '%{http_code}' -X "$1" --unix-socket "$TD_SOCK" \
        ${4:+--json "$4"} "http://localhost$2" 2>/dev/null
}

# ---- POST and DELETE of one name racing ------------------------------------------------
bad=0
unbalanced=0
orphan=0
for round in $(seq "$ROUNDS"); do
    dir=$TD_DIR/race$round
    mkdir -p "$dir"
    pids=()
    for c in $(seq 3); do
        (echo "$(req POST /v1/tenants "$dir/p$c.body" '{"name":"racer"}')" >"$dir/p$c.status") &
        pids+=($!)
        (echo "$(req DELETE /v1/tenants/racer "$dir/d$c.body")" >"$dir/d$c.status") &
        pids+=($!)
    done
    wait "${pids[@]}"
    statuses=$(cat "$dir"/*.status | sort | uniq -c | tr -s ' ' | tr '\n' ',')
    created=$(cat "$dir"/p*.status | grep -c '^201$')
    deleted=$(cat "$dir"/d*.status | grep -c '^204$')
    for f in "$dir"/p*.status; do
        case $(cat "$f") in 201 | 409) ;; *) bad=$((bad + 1)) && diag "round $round: POST answered $(cat "$f"): $(cat "${f%.status}.body")" ;; esac
    done
    for f in "$dir"/d*.status; do
        case $(cat "$f") in 204 | 404 | 409) ;; *) bad=$((bad + 1)) && diag "round $round: DELETE answered $(cat "$f"): $(cat "${f%.status}.body")" ;; esac
    done
    api_op GET /v1/tenants/racer
    exists=0
    [ "$STATUS" = 200 ] && exists=1
    if [ $((created - deleted)) != "$exists" ]; then
        unbalanced=$((unbalanced + 1))
        diag "round $round: $created created, $deleted deleted, exists=$exists ($statuses)"
    fi
    if [ "$exists" = 1 ]; then
        # The last 201's token must work: it is the live tenant's.
        works=0
        for f in "$dir"/p*.status; do
            [ "$(cat "$f")" = 201 ] || continue
            secret=$(jq -r .token.secret "${f%.status}.body")
            api_tn "$secret" GET /v1/images
            [ "$STATUS" = 200 ] && works=1
        done
        [ "$works" = 1 ] || {
            orphan=$((orphan + 1))
            diag "round $round: tenant racer exists but no token a client got works"
        }
        api_op DELETE /v1/tenants/racer
    fi
done
is "$bad" 0 "$ROUNDS rounds of 3 POST + 3 DELETE of one name: only 201/409 and 204/404/409"
is "$unbalanced" 0 "... and in every round creates - deletes = whether the tenant exists"
is "$orphan" 0 "... and a tenant left existing has a token its client got"

# ---- kill -9 during bursts of tenant creates ---------------------------------------------
# burst CLIENT: creates tenants k<kill>-c<client>-<n> until turtled is gone;
# each acknowledged one is written to acked.<client> with its secret.
burst() {
    local client=$1 n=0 status
    while :; do
        n=$((n + 1))
        name="k$kill-c$client-$n"
        status=$(req POST /v1/tenants "$TD_DIR/burst.$client.body" "{\"name\":\"$name\"}")
        case $status in
        201) echo "$name $(jq -r .token.secret "$TD_DIR/burst.$client.body")" >>"$TD_DIR/acked.$client" ;;
        000) return ;;
        esac
    done
}

total_acked=0
lost=0
dead_tokens=0
tokenless=0
for kill in $(seq "$KILLS"); do
    pids=()
    for c in $(seq $CLIENTS); do
        burst "$c" &
        pids+=($!)
    done
    # A point somewhere in the burst, different each time.
    sleep "$((RANDOM % 2)).$((RANDOM % 10))"
    td_kill9
    wait "${pids[@]}" 2>/dev/null
    td_start || bail "turtled did not start after kill -9 #$kill"
    n=$(td_sql "SELECT count(*) FROM tenants t WHERE NOT EXISTS (SELECT 1 FROM tokens k WHERE k.tenant_id = t.id)")
    tokenless=$((tokenless + n))
    for c in $(seq $CLIENTS); do
        [ -f "$TD_DIR/acked.$c" ] || continue
        while read -r name secret; do
            total_acked=$((total_acked + 1))
            api_op GET "/v1/tenants/$name"
            [ "$STATUS" = 200 ] || {
                lost=$((lost + 1))
                diag "kill $kill: tenant $name was acknowledged but is gone"
                continue
            }
            api_tn "$secret" GET /v1/images
            [ "$STATUS" = 200 ] || {
                dead_tokens=$((dead_tokens + 1))
                diag "kill $kill: the token of tenant $name answers $STATUS"
            }
        done <"$TD_DIR/acked.$c"
        rm -f "$TD_DIR/acked.$c"
    done
done
all=$(td_sql "SELECT count(*) FROM tenants")
note "$KILLS kill -9 during bursts of $CLIENTS clients: $total_acked creates acknowledged, $all tenants exist"
ok "$([ "$total_acked" -gt 0 ] && echo 0 || echo 1)" "the bursts created tenants ($total_acked acknowledged)"
is "$tokenless" 0 "after each kill -9 no tenant exists without a token"
is "$lost" 0 "every acknowledged tenant survived the kills"
is "$dead_tokens" 0 "... and the token its client got works"

td_done
