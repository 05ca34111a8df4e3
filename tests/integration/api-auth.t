#!/usr/bin/env bash
# Who may do what: the tenant-isolation matrix.  Another tenant's resource is
# 404 exactly like a missing one; operator paths are 403 to tenants (over TCP
# and on the socket); no token on TCP is 401 everywhere but GET /v1; bad,
# revoked and orphaned tokens are 401 wherever they are shown.  None of the
# refused requests changes anything.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

td_init
td_start || bail "turtled did not start"

td_tenant acme || bail "cannot create tenant acme"
A=$TOKEN
A_ID=$TOKEN_ID
td_tenant beta || bail "cannot create tenant beta"
B=$TOKEN
B_ID=$TOKEN_ID

# acme's operation runs for the whole test (600 s: a TSan build on a busy machine
# takes minutes over it; stopping turtled cancels it); one of acme's is over; one is the operator's.
td_sleep_op "$A" 600 || bail "cannot start acme's operation"
A_OP=$OP_ID
td_sleep_op "$A" 0 || bail "cannot start acme's short operation"
A_DONE=$OP_ID
td_sleep_op "" 0 || bail "cannot start the operator's operation"
OPER_OP=$OP_ID
if ! td_wait_status "$A_DONE" succeeded || ! td_wait_status "$OPER_OP" succeeded ||
    ! td_wait_status "$A_OP" running; then
    bail "the operations did not reach their states"
fi
MISSING=00000000-0000-4000-8000-000000000000
declare -A OP_NAMES=([$A_OP]="acme's running op" [$A_DONE]="acme's finished op" [$OPER_OP]="operator's op")

snapshot() { # everything a refused request could have changed
    api_op GET /v1/tenants
    echo "$BODY"
    td_sql "SELECT id, tenant_id, revoked_at FROM tokens ORDER BY id"
    td_sql "SELECT id, status, error FROM operations ORDER BY id"
}
before=$(snapshot)

# ---- 1. another tenant's operation answers 404, like one that does not exist ----------
for via in tcp sock; do
    for req in "GET /v1/operations/%s" "GET /v1/operations/%s/wait?timeout=0" "DELETE /v1/operations/%s"; do
        method=${req%% *}
        fmt=${req#* }
        # shellcheck disable=SC2059
        path_missing=$(printf "$fmt" "$MISSING")
        "api_$([ $via = tcp ] && echo tn || echo sock)" "$B" "$method" "$path_missing"
        missing_body=$(jb -c .error | sed "s/$MISSING/ID/")
        for op in "$A_OP" "$A_DONE" "$OPER_OP"; do
            # shellcheck disable=SC2059
            path=$(printf "$fmt" "$op")
            "api_$([ $via = tcp ] && echo tn || echo sock)" "$B" "$method" "$path"
            # shellcheck disable=SC2059
            is "$STATUS $(jb -c .error | sed "s/$op/ID/")" "404 $missing_body" \
                "beta ($via): $method $(printf "$fmt" "{${OP_NAMES[$op]}}") answers like a missing operation"
        done
    done
done
# acme may not reach the operator's own work either.
api_tn "$A" GET "/v1/operations/$OPER_OP"
is_error 404 not_found "acme: the operator's operation is 404"
api_tn "$A" DELETE "/v1/operations/$OPER_OP"
is_error 404 not_found "acme: cancelling the operator's operation is 404"

# What is one's own is there.
api_tn "$A" GET "/v1/operations/$A_OP"
is "$STATUS $(jb .operation.id) $(jb .operation.status)" "200 $A_OP running" "acme sees its own running operation"
api_sock "$A" GET "/v1/operations/$A_DONE"
is "$STATUS $(jb .operation.status)" "200 succeeded" "acme sees its own operation on the socket too"
api_op GET "/v1/operations/$A_OP"
is "$STATUS $(jb .operation.id)" "200 $A_OP" "the operator sees acme's operation"
api_op GET "/v1/operations/$OPER_OP"
is "$STATUS $(jb .operation.status)" "200 succeeded" "the operator sees its own"

# ---- 2. operator paths answer 403 to a tenant, over TCP and on the socket ----------------
operator_requests=(
    "GET /v1/host"
    "GET /metrics"
    "GET /v1/tenants"
    'POST /v1/tenants {"name":"intruder"}'
    "GET /v1/tenants/acme"
    "GET /v1/tenants/beta"
    'PATCH /v1/tenants/acme {"quota":{"vcpus":999}}'
    'PATCH /v1/tenants/beta {"quota":{"vcpus":0}}'
    "DELETE /v1/tenants/acme"
    "DELETE /v1/tenants/beta"
    "POST /v1/tenants/acme/tokens"
    "POST /v1/tenants/beta/tokens"
    "DELETE /v1/tenants/acme/tokens/$A_ID"
    "DELETE /v1/tenants/beta/tokens/$B_ID"
)
for via in tcp sock; do
    for req in "${operator_requests[@]}"; do
        read -r method path json <<<"$req"
        args=()
        [ -n "$json" ] && args=(--json "$json")
        "api_$([ $via = tcp ] && echo tn || echo sock)" "$A" "$method" "$path" "${args[@]}"
        is_error 403 forbidden "acme's token ($via): $method $(sed "s/$A_ID/{acme-token-id}/; s/$B_ID/{beta-token-id}/" <<<"$path") is 403"
    done
done

# ---- 3. no token over TCP: 401 everywhere but GET /v1 -------------------------------------
anonymous_requests=(
    "GET /v1/host"
    "GET /metrics"
    "GET /v1/events"
    "GET /v1/tenants"
    'POST /v1/tenants {"name":"intruder"}'
    "GET /v1/tenants/acme"
    'PATCH /v1/tenants/acme {"quota":{"vcpus":999}}'
    "DELETE /v1/tenants/acme"
    "POST /v1/tenants/acme/tokens"
    "DELETE /v1/tenants/acme/tokens/$A_ID"
    "GET /v1/operations/$A_OP"
    "GET /v1/operations/$A_OP/wait?timeout=0"
    "DELETE /v1/operations/$A_OP"
    'POST /v1/test/sleep {"seconds":0}'
)
for req in "${anonymous_requests[@]}"; do
    read -r method path json <<<"$req"
    args=()
    [ -n "$json" ] && args=(--json "$json")
    api_tn "" "$method" "$path" "${args[@]}"
    is "$STATUS $(jb .error.code) $(hdr WWW-Authenticate)" "401 unauthorized Bearer" \
        "no token over TCP: $method $(sed "s/$A_OP/{op}/; s/$A_ID/{token-id}/" <<<"$path") is 401 with WWW-Authenticate: Bearer"
done
api_tn "" GET /v1
is "$STATUS" 200 "no token over TCP: GET /v1 is 200"

# ---- 4. bad credentials: 401 wherever shown, never a fall-back to the operator -------------
api_op POST /v1/tenants/acme/tokens
REVOKED=$(jb .token.secret)
api_op DELETE "/v1/tenants/acme/tokens/$(jb .token.id)"
is "$STATUS" 204 "a token of acme is issued and revoked"
td_tenant gone || bail "cannot create tenant gone"
ORPHAN=$TOKEN
td_sleep_op "$ORPHAN" 0 || bail "cannot start gone's operation"
GONE_OP=$OP_ID
td_wait_status "$GONE_OP" succeeded || bail "gone's operation did not end"
api_op DELETE /v1/tenants/gone
is "$STATUS" 204 "tenant gone is deleted"
before=$(snapshot) # what the refused requests below must leave alone

# A's token with its last digit changed: well-formed, unknown.
last=${A: -1}
FORGED=${A%?}$([ "$last" = 0 ] && echo 1 || echo 0)
bad_credentials=(
    "revoked token|Bearer $REVOKED"
    "deleted tenant's token|Bearer $ORPHAN"
    "forged token|Bearer $FORGED"
    "token too short|Bearer tt_1234"
    "Basic scheme|Basic YWNtZTpzZWNyZXQ="
    "Bearer without token|Bearer"
    "token with a space inside|Bearer ${A:0:10} ${A:10}"
)
for entry in "${bad_credentials[@]}"; do
    name=${entry%%|*}
    header=${entry#*|}
    for via in tcp sock; do
        for req in "GET /v1" "GET /v1/tenants" "GET /v1/operations/$A_OP" "DELETE /v1/operations/$A_OP"; do
            read -r method path <<<"$req"
            "api_$([ $via = tcp ] && echo tn || echo sock)" "" "$method" "$path" -H "Authorization: $header"
            is "$STATUS $(jb .error.code)" "401 unauthorized" "$name ($via): $method ${path/$A_OP/{op\}} is 401"
        done
    done
done
api_tn "$(tr a-f A-F <<<"$A")" GET "/v1/operations/$A_OP"
is_error 401 unauthorized "acme's token in upper case is another token: 401"
api_tn "" GET "/v1/operations/$A_OP" -H "Authorization: bearer $A"
is "$STATUS" 200 "the scheme is case-insensitive: 'bearer TOKEN' works"

# ---- 5. a tenant made again under a deleted one's name inherits nothing ---------------------
td_tenant gone || bail "cannot create tenant gone again"
api_tn "$TOKEN" GET "/v1/operations/$GONE_OP"
is_error 404 not_found "the new 'gone' cannot see the deleted 'gone''s operation"
api_op GET "/v1/operations/$GONE_OP"
is "$STATUS $(jb .operation.status)" "200 succeeded" "... which the operator still sees"
api_op DELETE /v1/tenants/gone
is "$STATUS" 204 "the new 'gone' is deleted again"

# ---- nothing refused above changed anything -------------------------------------------------
is "$(snapshot)" "$before" "tenants, tokens and operations are as they were before the refused requests"
api_op GET "/v1/operations/$A_OP"
is "$(jb .operation.status)" running "acme's operation still runs: nobody else could cancel it"
for t in A B; do
    api_tn "${!t}" GET "/v1/operations/$MISSING"
    is "$STATUS" 404 "token $t still works"
done
api_op GET /v1/tenants
is "$(jb -c '[.tenants[] | .name + ":" + (.quota.vcpus|tostring)]')" '["acme:8","beta:8"]' \
    "acme and beta exist with their quotas, no intruder"

# ---- 6. token lookups are cached: a revocation or a tenant's delete still ends a token at once ----
# Each token is first used many times over both transports (its lookup is
# then cached in every thread that serves it); the very next request after
# the revocation, on either transport, is 401.
warm() { # warm TOKEN PATH: 20 requests over TCP and 20 over the socket, all 200 or 404
    local i bad=0
    for i in $(seq 1 20); do
        api_tn "$1" GET "$2"
        case $STATUS in 200 | 404) ;; *) bad=$((bad + 1)) ;; esac
        api_sock "$1" GET "$2"
        case $STATUS in 200 | 404) ;; *) bad=$((bad + 1)) ;; esac
    done
    [ "$bad" = 0 ]
}
ends_at_once() { # ends_at_once TOKEN PATH WHAT
    api_tn "$1" GET "$2"
    is "$STATUS $(jb .error.code)" "401 unauthorized" "$3: the next request over TCP is 401"
    api_sock "$1" GET "$2"
    is "$STATUS $(jb .error.code)" "401 unauthorized" "$3: ... and over the socket"
}
api_op POST /v1/tenants/acme/tokens
WARM=$(jb .token.secret)
WARM_ID=$(jb .token.id)
warm "$WARM" "/v1/operations/$A_OP"
ok $? "a new token of acme answers 40 reads in a row"
api_op DELETE "/v1/tenants/acme/tokens/$WARM_ID"
is "$STATUS" 204 "... and is revoked"
ends_at_once "$WARM" "/v1/operations/$A_OP" "acme's revoked token, used just before"

td_tenant short || bail "cannot create tenant short"
SHORT=$TOKEN
warm "$SHORT" "/v1/operations/$MISSING"
ok $? "tenant short's token answers 40 reads in a row"
api_op DELETE /v1/tenants/short
is "$STATUS" 204 "tenant short is deleted"
ends_at_once "$SHORT" "/v1/operations/$MISSING" "deleted tenant short's token, used just before"

api_op POST /v1/operator/tokens --json '{"scope":"admin","description":"cache test"}'
ADMIN=$(jb .token.secret)
ADMIN_ID=$(jb .token.id)
warm "$ADMIN" /v1/tenants
ok $? "an operator token answers 40 reads in a row"
api_op DELETE "/v1/operator/tokens/$ADMIN_ID"
is "$STATUS" 204 "... and is revoked"
ends_at_once "$ADMIN" /v1/tenants "the revoked operator token, used just before"

# acme cancels its own operation, so that the stop below is quick.
api_tn "$A" DELETE "/v1/operations/$A_OP"
is "$STATUS" 202 "acme may cancel its own operation"
td_done
