#!/usr/bin/env bash
# Who the operator is, and operator tokens.  On the UNIX socket the operator
# is root or a member of the admin group (primary or supplementary, by
# SO_PEERCRED/SO_PEERGROUPS); anyone else gets 403 saying why.  Operator
# tokens (admin, metrics) work over TCP; a metrics token reads /metrics only;
# only the operator on the socket without a token manages them; a revoked one
# answers 401 at once; a tenant's delete leaves them alone.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

command -v setpriv >/dev/null || skip_all "setpriv (util-linux) is missing"

td_init
# Ids no account has: nothing in /etc/passwd or /etc/group is touched.
ADMIN_GID=4242
OTHER_UID=4343
cat >"$TD_DIR/turtled.conf" <<EOF
[turtled]
admin_group = $ADMIN_GID
EOF
td_start --config "$TD_DIR/turtled.conf" || bail "turtled did not start"

# Let other uids reach the socket at all (the test's own dir is 0700).
chmod 0711 "$TD_DIR"
chmod 0666 "$TD_SOCK"

# as_uid SETPRIV-ARGS -- METHOD PATH: a request on the socket as another
# uid, without a token; sets STATUS and BODY, checks the body against the spec.
as_uid() {
    local args=()
    while [ "$1" != -- ]; do
        args+=("$1")
        shift
    done
    shift
    local method=$1 path=$2 out
    out=$(setpriv "${args[@]}" -- curl -sS --max-time 10 -X "$method" -w '\n%{http_code}' \
        --unix-socket "$TD_SOCK" "http://localhost$path" 2>&1)
    STATUS=${out##*$'\n'}
    BODY=${out%$'\n'*}
    printf '%s' "$BODY" >"$TD_DIR/as_uid.body"
    td_template "$path"
    td_check_body "$method $path as ${args[*]} -> $STATUS" "$TD_DIR/as_uid.body" \
        "$method" "$TD_TEMPLATE" "$STATUS"
}

# ---- 1. the operator on the socket ---------------------------------------------------

as_uid --reuid=$OTHER_UID --regid=$ADMIN_GID --clear-groups -- GET /v1/host
is "$STATUS" 200 "primary group $ADMIN_GID (the admin group): the operator"
as_uid --reuid=$OTHER_UID --regid=$OTHER_UID --groups=100,$ADMIN_GID -- GET /v1/tenants
is "$STATUS" 200 "a supplementary group $ADMIN_GID: the operator"
as_uid --reuid=$OTHER_UID --regid=$OTHER_UID --groups=100 -- GET /v1/host
is_error 403 forbidden "in neither way: 403, not 401"
is "$(jb .error.message)" "operator only: uid $OTHER_UID is neither root nor in group $ADMIN_GID" \
    "... saying why"
as_uid --reuid=$OTHER_UID --regid=$OTHER_UID --clear-groups -- POST /v1/operator/tokens
is_error 403 forbidden "not the operator: no operator token either"
as_uid --reuid=$OTHER_UID --regid=$OTHER_UID --clear-groups -- GET /v1/stacks
is_error 401 unauthorized "a tenant-or-operator route keeps its 401 (a tenant token would do)"
as_uid --reuid=$OTHER_UID --regid=$OTHER_UID --clear-groups -- GET /v1
is "$STATUS" 200 "GET /v1 is anyone's"
api_op GET /v1/host
is "$STATUS" 200 "root: the operator"

# ---- 2. issuing operator tokens --------------------------------------------------------

count_tokens() { td_sql "SELECT count(*) FROM tokens WHERE tenant_id IS NULL"; }

api_op POST /v1/operator/tokens --json '{"scope":"metrics","description":"prometheus on mon1"}'
is "$STATUS" 201 "a metrics token: 201"
M=$(jb .token.secret)
M_ID=$(jb .token.id)
like "$M" '^tt_[0-9a-f]{64}$' "... with a secret like a tenant's"
is "$(jb '[.token.scope, .token.description] | join(",")')" "metrics,prometheus on mon1" \
    "... its scope and description"
api_op POST /v1/operator/tokens --json '{"scope":"admin"}'
is "$STATUS" 201 "an admin token: 201"
A=$(jb .token.secret)
A_ID=$(jb .token.id)
is "$(jb .token.description)" null "... no description: null"
is "$(td_sql "SELECT ifnull(tenant_id, '-') || ' ' || scope FROM tokens WHERE id = '$M_ID'")" \
    "- metrics" "stored with no tenant and its scope"
is "$(td_sql "SELECT count(*) FROM tokens WHERE hash = CAST('$M' AS BLOB)")" 0 \
    "the secret is not what is stored"

n=$(count_tokens)
for bad in '{"scope":"root"}|scope' '{}|scope' '{"scope":"admin","tenant":"x"}|tenant' \
    '{"scope":"admin","description":"a\u0007b"}|description' \
    "{\"scope\":\"admin\",\"description\":\"$(printf 'x%.0s' {1..257})\"}|description" \
    '{"scope":1}|scope'; do
    api_op POST /v1/operator/tokens --json "${bad%|*}"
    is_error 400 bad_request "POST ${bad:0:50}: 400"
    like "$(jb .error.message)" "^${bad##*|}: " "... naming ${bad##*|}"
done
is "$(count_tokens)" "$n" "no bad request created a token"

# ---- 3. a metrics token ------------------------------------------------------------------

api_tn "$M" GET /metrics
is "$STATUS" 200 "metrics token over TCP: GET /metrics 200"
like "$BODY" 'turtled_build_info' "... the metrics"
api_tn "$M" GET /v1/tenants
is_error 403 forbidden "metrics token: GET /v1/tenants 403"
is "$(jb .error.message)" "this token may only read /metrics" "... saying what it may do"
tenants_before=$(td_sql "SELECT count(*) FROM tenants")
api_tn "$M" POST /v1/tenants --json '{"name":"bymetrics"}'
is_error 403 forbidden "metrics token: POST /v1/tenants 403"
is "$(td_sql "SELECT count(*) FROM tenants")" "$tenants_before" "... and no tenant made"
for route in "GET /v1/host" "GET /v1/stacks" "GET /v1/events" "POST /v1/operator/tokens"; do
    api_tn "$M" ${route% *} "${route#* }"
    is_error 403 forbidden "metrics token: $route 403"
done
api_sock "$M" GET /v1/tenants
is_error 403 forbidden "metrics token on the socket as root: still only /metrics (the token wins)"

# ---- 4. an admin token ------------------------------------------------------------------

api_tn "$A" POST /v1/tenants --json '{"name":"viatcp"}'
is "$STATUS" 201 "admin token over TCP creates a tenant"
T=$(jb .token.secret)
T_ID=$(jb .token.id)
api_tn "$A" GET /v1/host
is "$STATUS" 200 "admin token: GET /v1/host"
api_tn "$A" GET /metrics
is "$STATUS" 200 "admin token: GET /metrics"
api_tn "$A" GET /v1/images
is_error 403 forbidden "admin token: a tenant-only route is 403, as for the operator"

# Managing operator tokens needs the socket and no token.
n=$(count_tokens)
api_tn "$A" POST /v1/operator/tokens --json '{"scope":"admin"}'
is_error 403 forbidden "admin token over TCP may not issue operator tokens"
api_sock "$A" POST /v1/operator/tokens --json '{"scope":"admin"}'
is_error 403 forbidden "... nor on the socket as root (the token wins)"
api_tn "$A" GET /v1/operator/tokens
is_error 403 forbidden "... nor list them"
api_tn "$A" DELETE "/v1/operator/tokens/$M_ID"
is_error 403 forbidden "... nor revoke one"
api_tn "$T" POST /v1/operator/tokens --json '{"scope":"admin"}'
is_error 403 forbidden "a tenant token: POST /v1/operator/tokens 403"
api_sock "$T" GET /v1/operator/tokens
is_error 403 forbidden "a tenant token on the socket: GET /v1/operator/tokens 403"
api_tn "$T" DELETE "/v1/operator/tokens/$A_ID"
is_error 403 forbidden "a tenant token: DELETE /v1/operator/tokens/ID 403"
is "$(count_tokens)" "$n" "none of them changed the operator tokens"
api_tn "$M" GET /metrics
is "$STATUS" 200 "... the metrics token still works"

# ---- 5. listing --------------------------------------------------------------------------

for i in 1 2 3; do
    api_op POST /v1/operator/tokens --json "{\"scope\":\"metrics\",\"description\":\"n$i\"}"
    SECRETS+=" $(jb .token.secret)"
done
# Five live operator tokens now: pages of 2, 2 and 1.
ids="" all_bodies="" pages="" after=""
while :; do
    api_op GET "/v1/operator/tokens?limit=2${after:+&after=$after}"
    [ "$STATUS" = 200 ] || break
    pages+="$(jb '.tokens | length') "
    ids+="$(jb '.tokens[].id') "
    all_bodies+=$BODY
    after=$(jb .next)
    [ "$after" != null ] || break
done
is "$pages" "2 2 1 " "the list comes in pages of 2, the last with next null"
is "$(echo $ids | tr ' ' '\n' | sort | xargs)" \
    "$(td_sql "SELECT id FROM tokens WHERE tenant_id IS NULL AND revoked_at IS NULL ORDER BY id" | xargs)" \
    "the pages hold every operator token once, no tenant's"
api_op GET "/v1/operator/tokens?after=bogus"
is_error 400 bad_request "a forged cursor: 400"
leak=0
for s in $M $A $SECRETS; do
    case $all_bodies in *"$s"*) leak=1 ;; esac
done
[[ $all_bodies == *'"secret"'* ]] && leak=1
is "$leak" 0 "no secret in the list output"

# ---- 6. a tenant's delete leaves operator tokens alone ------------------------------------

td_tenant gone || bail "cannot create tenant gone"
api_op DELETE /v1/tenants/gone
is "$STATUS" 204 "a tenant deleted"
api_tn "$A" GET /v1/host
is "$STATUS" 200 "... the admin token still works"
is "$(count_tokens)" 5 "... and every operator token is still there"

# ---- 7. revoking -----------------------------------------------------------------------------

td_bg_start events curl -sS -N -o /dev/null --max-time 30 -H "Authorization: Bearer $A" \
    "http://127.0.0.1:$TD_PORT/v1/events"
sleep 0.3
api_op DELETE "/v1/operator/tokens/$A_ID"
is "$STATUS" 204 "revoke the admin token: 204"
api_tn "$A" GET /v1/host
is_error 401 unauthorized "its next request: 401"
api_sock "$A" GET /v1/host
is_error 401 unauthorized "on the socket as root too: a revoked token never falls back to the uid"
td_bg_stop events wait 10
is "$BG_RC" 0 "its event stream ended by itself (not cut at --max-time)"
api_op DELETE "/v1/operator/tokens/$A_ID"
is_error 404 not_found "revoked twice: 404"
api_op DELETE "/v1/operator/tokens/$T_ID"
is_error 404 not_found "a tenant's token id: 404 here"
api_tn "$T" GET /v1/images
is "$STATUS" 200 "... and that tenant token still works"
api_op DELETE "/v1/operator/tokens/not-a-uuid"
is_error 404 not_found "not a UUID: 404"
api_op DELETE "/v1/operator/tokens/$M_ID"
api_tn "$M" GET /metrics
is_error 401 unauthorized "a revoked metrics token: 401 on /metrics"

# ---- 8. the admin group by name, and a bad one ---------------------------------------------------

td_stop
# gid 1 is "daemon" on Debian: resolved by name at start.
group1=$(getent group 1 | cut -d: -f1)
printf '[turtled]\nadmin_group = %s\n' "$group1" >"$TD_DIR/turtled.conf"
td_start --config "$TD_DIR/turtled.conf" || bail "turtled did not start with admin_group = $group1"
chmod 0666 "$TD_SOCK"
as_uid --reuid=$OTHER_UID --regid=1 --clear-groups -- GET /v1/host
is "$STATUS" 200 "admin_group = $group1 (by name): its members are the operator"
td_stop

printf '[turtled]\nadmin_group = no-such-group-here\n' >"$TD_DIR/turtled.conf"
td_start --config "$TD_DIR/turtled.conf" || bail "turtled did not start with a missing group"
chmod 0666 "$TD_SOCK"
grep -q "admin group 'no-such-group-here' does not exist" "$TD_LOG"
ok $? "a missing admin group is a notice in the log, not an error"
as_uid --reuid=$OTHER_UID --regid=$ADMIN_GID --clear-groups -- GET /v1/host
is_error 403 forbidden "... and then only root is the operator"
td_stop

printf '[turtled]\nadmin_group = bad group!\n' >"$TD_DIR/turtled.conf"
"$TD_BIN" --config "$TD_DIR/turtled.conf" --state-dir "$TD_STATE" --socket "$TD_SOCK" \
    --backend test >"$TD_DIR/bad.log" 2>&1
rc=$?
[ "$rc" != 0 ] && grep -q "admin_group: must be a group name" "$TD_DIR/bad.log"
ok $? "a malformed admin_group: turtled refuses to start, naming the key" ||
    diag "exit $rc: $(cat "$TD_DIR/bad.log")"

td_done
