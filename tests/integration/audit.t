#!/usr/bin/env bash
# The audit log, request ids and the key events' log lines (turtled not
# under journald: records in <state>/audit.log).  Mutating requests from
# every kind of caller, answered or refused, each leave one JSON line with
# who, what and the status, under the request id its answer carried in
# X-Request-Id; GETs leave none; no token secret reaches the audit log or
# turtled's log; the file is private and survives a restart.  The log lines
# of the key events carry MESSAGE_ID and the objects as fields.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

uuid_re='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
td_init
td_start || bail "turtled did not start"
AUDIT=$TD_STATE/audit.log
SECRETS=()
EXPECTED=() # "METHOD ROUTE PATH STATUS ACTOR ROLE REQUEST_ID", one per mutating request

# expect ROUTE ACTOR ROLE: the last request should be audited so.
expect() {
    local id
    id=$(hdr X-Request-Id | tr -d '\r')
    EXPECTED+=("$LAST_METHOD $1 $LAST_PATH $STATUS $2 $3 $id")
}
# req api_op METHOD PATH ARGS... | req api_tn|api_sock TOKEN METHOD PATH ARGS...:
# the request, remembering what was asked.
req() {
    local fn=$1
    shift
    if [ "$fn" = api_op ]; then
        LAST_METHOD=$1 LAST_PATH=$2
    else
        LAST_METHOD=$2 LAST_PATH=$3
    fi
    "$fn" "$@"
}

# ---- requests of every kind of caller -----------------------------------------------------
req api_op POST /v1/tenants --json '{"name":"acme"}'
is "$STATUS" 201 "the operator creates acme"
expect /v1/tenants uid:0 operator
ACME=$(jb .token.secret)
ACME_ID=$(jb .token.id)
SECRETS+=("$ACME")
create_id=$(hdr X-Request-Id | tr -d '\r')
like "$create_id" "$uuid_re" "the answer carries X-Request-Id, a UUID"

req api_op POST /v1/tenants/acme/tokens
is "$STATUS" 201 "the operator issues acme a second token"
expect "/v1/tenants/{name}/tokens" uid:0 operator
SECOND=$(jb .token.secret)
SECOND_ID=$(jb .token.id)
SECRETS+=("$SECOND")

req api_tn "$ACME" POST /v1/images --json '{"name":"vmlinuz","kind":"kernel","format":"raw"}'
is "$STATUS" 201 "acme creates an image over TCP"
expect /v1/images "tenant:acme/token:$ACME_ID" tenant

req api_tn "$ACME" POST /v1/tenants --json '{"name":"evil"}'
is "$STATUS" 403 "acme may not create tenants: 403"
expect /v1/tenants "tenant:acme/token:$ACME_ID" tenant

req api_tn "" POST /v1/images --json '{"name":"x","kind":"kernel","format":"raw"}'
is "$STATUS" 401 "no token over TCP: 401"
expect /v1/images anonymous anonymous

req api_tn "tt_$(printf '0%.0s' {1..64})" DELETE /v1/images/vmlinuz
is "$STATUS" 401 "an unknown token: 401"
expect "/v1/images/{name}" anonymous anonymous

req api_op DELETE /v1/tenants/nope
is "$STATUS" 404 "deleting a tenant that does not exist: 404"
expect "/v1/tenants/{name}" uid:0 operator

req api_op PATCH /v1/tenants/acme --json '{"quota":{"stacks":5}}'
is "$STATUS" 200 "the operator changes acme's quota"
expect "/v1/tenants/{name}" uid:0 operator

req api_op POST /v1/nothing/here --json '{}'
is "$STATUS" 404 "a path no route has: 404"
expect null uid:0 anonymous # refused before authentication: the peer's uid, no role

req api_tn "$ACME" POST /v1/images -H 'Content-Type: application/json' --data-binary '{"name":'
is "$STATUS" 400 "malformed JSON: 400"
expect /v1/images "tenant:acme/token:$ACME_ID" tenant

req api_tn "$ACME" PUT /v1/images/missing/data -H 'Content-Type: application/octet-stream' \
    --data-binary 'bytes'
is "$STATUS" 404 "an upload to a missing image: 404"
expect "/v1/images/{name}/data" "tenant:acme/token:$ACME_ID" tenant

req api_sock "$SECOND" POST /v1/test/sleep --json '{"seconds":0}'
is "$STATUS" 202 "acme's second token on the UNIX socket (uid 0): a test operation"
expect /v1/test/sleep "tenant:acme/token:$SECOND_ID" tenant

req api_op DELETE "/v1/tenants/acme/tokens/$SECOND_ID"
is "$STATUS" 204 "the operator revokes the second token"
expect "/v1/tenants/{name}/tokens/{id}" uid:0 operator
revoke_id=$(hdr X-Request-Id | tr -d '\r')

# GETs and HEADs are not audited.
api_op GET /v1/tenants
api_op GET /v1/tenants/acme
api_tn "$ACME" GET /v1/images
api_tn "" GET /v1
api_op GET /metrics
api_op GET /v1/nothing
ids=()
for _ in 1 2 3; do
    api_op GET /v1
    ids+=("$(hdr X-Request-Id | tr -d '\r')")
done
[ "${ids[0]}" != "${ids[1]}" ] && [ "${ids[1]}" != "${ids[2]}" ] && [[ ${ids[0]} =~ $uuid_re ]]
ok $? "every answer has its own X-Request-Id"
api_op GET /v1/nothing
like "$(hdr X-Request-Id | tr -d '\r')" "$uuid_re" "... an error answer too"
api_op GET /v1/tenants/acme
etag=$(hdr ETag | tr -d '\r')
api_op GET /v1/tenants/acme -H "If-None-Match: $etag"
is "$STATUS" 304 "a conditional GET: 304"
like "$(hdr X-Request-Id | tr -d '\r')" "$uuid_re" "... with X-Request-Id"

# A head the acceptor refuses is answered outside libmicrohttpd: with an id too.
exec 3<>"/dev/tcp/127.0.0.1/$TD_PORT" || bail "cannot connect to $TD_PORT"
printf 'GET /v1 HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nConnection: close\r\n\r\n' >&3
raw=$(timeout 5 cat <&3)
exec 3<&-
like "$(head -n1 <<<"$raw" | tr -d '\r')" '^HTTP/1.1 400 ' "a malformed Content-Length: 400 from the acceptor"
like "$(grep -i '^X-Request-Id:' <<<"$raw" | tr -d '\r')" "^X-Request-Id: ${uuid_re:1:-1}$" \
    "... with X-Request-Id"

# ---- the records ---------------------------------------------------------------------
n=${#EXPECTED[@]}
is "$(wc -l <"$AUDIT")" "$n" "audit.log: one line per mutating request ($n), none for GETs"
is "$(stat -c %a "$AUDIT")" 600 "audit.log is private (0600)"
jq -e . "$AUDIT" >/dev/null
ok $? "every line is a JSON object"

i=0
while IFS= read -r line; do
    read -r method route path status actor role id <<<"${EXPECTED[$i]}"
    got=$(jq -r '[.method, (.route // "null"), .path, .status, .actor, .role, .request_id] | join(" ")' <<<"$line")
    want="$method $route $path $status $actor $role $id"
    is "$got" "$want" "record $((i + 1)): $method $path -> $status by $actor"
    i=$((i + 1))
done <"$AUDIT"

is "$(jq -c 'select(.method == "DELETE" and .path == "/v1/tenants/nope") | .target' "$AUDIT")" \
    '{"name":"nope"}' "the target: the route's captures"
is "$(jq -r 'select(.role == "operator") | .uid' "$AUDIT" | sort -u)" 0 \
    "the operator on the socket: uid 0"
is "$(jq -r 'select(.path == "/v1/test/sleep") | "\(.uid) \(.tenant)"' "$AUDIT")" "0 acme" \
    "a tenant token on the socket: the tenant, and the peer's uid"
is "$(jq -r 'select(.role == "tenant" and .path == "/v1/images" and .status == 201) | .uid' "$AUDIT")" \
    null "a tenant over TCP: no uid"
like "$(jq -r '.time' "$AUDIT" | head -1)" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' "records carry an RFC 3339 time"

leaked=0
for secret in "${SECRETS[@]}"; do
    grep -qF "$secret" "$AUDIT" "$TD_LOG" && leaked=1
    grep -qF "${secret#tt_}" "$AUDIT" "$TD_LOG" && leaked=1
done
is "$leaked" 0 "no token secret in audit.log or turtled's log"

# ---- key events in turtled's log, with their request ids ------------------------------
created=$(grep 'tenant acme created' "$TD_LOG")
like "$created" "\[message_id=020a04a1e46b45d89cf66052ddb93508 tenant=acme request_id=$create_id\]$" \
    "tenant created: MESSAGE_ID, tenant and the request id of its X-Request-Id"
revoked=$(grep "token $SECOND_ID of tenant acme revoked" "$TD_LOG")
like "$revoked" "message_id=2ef077c1daa74b8baec5d534e258b07d tenant=acme token_id=$SECOND_ID request_id=$revoke_id" \
    "token revoked: MESSAGE_ID, tenant, token id and request id"
api_op DELETE /v1/images/vmlinuz # the operator may not; acme's image stays, acme too (409)
api_tn "$ACME" DELETE /v1/images/vmlinuz
is "$STATUS" 204 "acme deletes its image"
api_op DELETE /v1/tenants/acme
is "$STATUS" 204 "the operator deletes acme"
deleted_id=$(hdr X-Request-Id | tr -d '\r')
like "$(grep 'tenant acme deleted' "$TD_LOG")" \
    "message_id=4c2463589ac34884bbe2c6c97a638c2e tenant=acme request_id=$deleted_id" \
    "tenant deleted: MESSAGE_ID, tenant and request id"
before=$(wc -l <"$AUDIT")
is "$before" "$((n + 3))" "three more records"

# ---- a restart appends -------------------------------------------------------------------
td_stop
td_start || bail "turtled did not start again"
api_op POST /v1/tenants --json '{"name":"beta"}'
SECRETS+=("$(jb .token.secret)")
is "$(wc -l <"$AUDIT")" "$((before + 1))" "after a restart, records are appended to the same file"
is "$(tail -n1 "$AUDIT" | jq -r '"\(.method) \(.path) \(.status)"')" "POST /v1/tenants 201" \
    "... the new one last"
grep -qF "$(jb .token.secret)" "$AUDIT"
is $? 1 "... without its secret"

td_done
