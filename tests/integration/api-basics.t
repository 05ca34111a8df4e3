#!/usr/bin/env bash
# turtled's API through the real HTTP server, endpoint by endpoint: version,
# host, tenants (create/list/get/patch/delete), tokens (issue/revoke),
# /metrics and its counters, unknown paths and methods.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

uuid_re='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
time_re='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$'
matches() { [[ $1 =~ $2 ]]; }

td_init
td_start || bail "turtled did not start"

# ---- GET /v1 -------------------------------------------------------------------
version=$("$TD_BIN" --version | awk '{print $2}')
api_op GET /v1
is "$STATUS $(jb .api_version) $(jb .version)" "200 1 $version" \
    "GET /v1 on the socket: api_version 1 and turtled's own version"
is "$(hdr Content-Type)" application/json "GET /v1 answers application/json"
api_tn "" GET /v1
is "$STATUS $(jb .api_version)" "200 1" "GET /v1 over TCP needs no token"
api_tn "tt_$(printf '0%.0s' {1..64})" GET /v1
is_error 401 unauthorized "GET /v1 with an unknown token: 401 (a token shown must be valid)"
is "$(hdr WWW-Authenticate)" Bearer "the 401 says WWW-Authenticate: Bearer"

# ---- GET /v1/host ----------------------------------------------------------------
probe=$("$TD_BIN" --probe)
api_op GET /v1/host
is "$STATUS" 200 "GET /v1/host as the operator: 200"
is "$(jb .host.backend)/$(jb .host.cpu.vendor)/$(jb .host.kvm.device)" \
    "$(jq -r '.backend + "/" + .cpu.vendor + "/" + (.kvm.device|tostring)' <<<"$probe")" \
    "GET /v1/host reports what turtled --probe finds (backend, vendor, /dev/kvm)"
is "$(jq -S . <<<"$BODY" | jq -S .host)" "$(jq -S . <<<"$probe")" \
    "GET /v1/host is turtled --probe's report wrapped in \"host\""

# ---- metrics before: the counters must move from here --------------------------
metric() { # NAME-WITH-LABELS: its value in the last /metrics body, or 0
    awk -v m="$1" '$1 == m { v = $2 } END { print (v == "" ? 0 : v) }' <<<"$BODY"
}
api_op GET /metrics
created_before=$(metric 'turtled_http_requests_total{route="/v1/tenants",status="201"}')
conflict_before=$(metric 'turtled_http_requests_total{route="/v1/tenants",status="409"}')

# ---- tenants -------------------------------------------------------------------------
api_op GET /v1/tenants
is "$STATUS $BODY" '200 {"tenants":[],"next":null}' "GET /v1/tenants on a new state dir: an empty list"

api_op POST /v1/tenants --json '{"name":"acme"}'
is "$STATUS" 201 "POST /v1/tenants {name} answers 201"
is "$(hdr Location)" /v1/tenants/acme "... with Location: /v1/tenants/acme"
acme=$BODY
acme_token=$(jb .token.secret)
acme_token_id=$(jb .token.id)
is "$(jb .tenant.name)" acme "... the tenant is named acme"
is "$(jb -c .tenant.quota)" '{"stacks":4,"vcpus":8,"memory_mib":8192,"disk_gib":50,"devices":4,"networks":4}' \
    "... with the default quota"
matches "$(jb .tenant.id)" "$uuid_re"
ok $? "... its id is a UUID"
matches "$(jb .tenant.created_at)" "$time_re" && [ "$(jb .tenant.created_at)" = "$(jb .tenant.updated_at)" ]
ok $? "... created_at is RFC 3339 UTC and equals updated_at"
matches "$acme_token" '^tt_[0-9a-f]{64}$'
ok $? "... its first token's secret is tt_ and 64 hex digits"
matches "$acme_token_id" "$uuid_re" && [ "$(jb .token.tenant)" = acme ]
ok $? "... the token has a UUID and names its tenant"

api_op POST /v1/tenants --json '{"name":"beta","quota":{"stacks":1,"vcpus":2,"memory_mib":1024,"disk_gib":5,"devices":2}}'
is "$STATUS $(jb -c .tenant.quota)" '201 {"stacks":1,"vcpus":2,"memory_mib":1024,"disk_gib":5,"devices":2,"networks":4}' \
    "POST /v1/tenants with a full quota keeps it"
beta_token=$(jb .token.secret)
[ "$beta_token" != "$acme_token" ]
ok $? "each tenant gets its own secret"

api_op POST /v1/tenants --json '{"name":"gamma","quota":{"vcpus":3}}'
is "$STATUS $(jb -c .tenant.quota)" '201 {"stacks":4,"vcpus":3,"memory_mib":8192,"disk_gib":50,"devices":4,"networks":4}' \
    "a partial quota takes the defaults for the keys not given"

api_op POST /v1/tenants --json '{"name":"acme","quota":{"vcpus":1}}'
is_error 409 conflict "POST /v1/tenants with a taken name: 409 conflict"
api_op GET /v1/tenants/acme
is "$(jb -c .tenant)" "$(jq -c .tenant <<<"$acme")" "... and acme is unchanged"

# Six clients race for one name: exactly one wins.
race_pids=()
for i in 1 2 3 4 5 6; do
    curl -sS --max-time 10 --unix-socket "$TD_SOCK" -o "$TD_DIR/race.$i.json" -w '%{http_code}' \
        --json '{"name":"race"}' http://localhost/v1/tenants >"$TD_DIR/race.$i.status" &
    race_pids+=($!)
done
wait "${race_pids[@]}"
is "$(for f in "$TD_DIR"/race.*.status; do cat "$f"; echo; done | sort | uniq -c | awk '{print $2 "x" $1}' | paste -sd' ')" "201x1 409x5" \
    "six concurrent creates of one name: one 201, five 409"
for i in 1 2 3 4 5 6; do
    td_check_body "concurrent POST /v1/tenants -> $(cat "$TD_DIR/race.$i.status")" "$TD_DIR/race.$i.json" \
        POST /v1/tenants "$(cat "$TD_DIR/race.$i.status")"
done
api_op DELETE /v1/tenants/race
is "$STATUS" 204 "... and the one tenant race is deleted again"

api_op GET /v1/tenants
is "$STATUS $(jb -c '[.tenants[].name]')" '200 ["acme","beta","gamma"]' \
    "GET /v1/tenants lists the three tenants by name"
is "$(jb -c '.tenants[] | select(.name == "acme")')" "$(jq -c .tenant <<<"$acme")" \
    "... each as it was created"

api_op GET /v1/tenants/acme
is "$STATUS $(jb -c .tenant)" "200 $(jq -c .tenant <<<"$acme")" "GET /v1/tenants/acme answers the tenant"
api_op GET /v1/tenants/nobody
is_error 404 not_found "GET /v1/tenants/nobody: 404"
is "$(jb .error.message)" "tenant 'nobody' not found" "... the message names it"

sleep 0.01 # updated_at has sub-second digits; make sure it can differ
api_op PATCH /v1/tenants/acme --json '{"quota":{"vcpus":16}}'
is "$STATUS $(jb -c .tenant.quota)" '200 {"stacks":4,"vcpus":16,"memory_mib":8192,"disk_gib":50,"devices":4,"networks":4}' \
    "PATCH /v1/tenants/acme {quota:{vcpus:16}} changes vcpus only"
patched=$BODY
[ "$(jb .tenant.created_at)" = "$(jq -r .tenant.created_at <<<"$acme")" ] &&
    [[ "$(jb .tenant.updated_at)" > "$(jb .tenant.created_at)" ]] &&
    [ "$(jb .tenant.id)" = "$(jq -r .tenant.id <<<"$acme")" ]
ok $? "... keeps id and created_at, moves updated_at forward"
api_op GET /v1/tenants/acme
is "$(jb -c .tenant)" "$(jq -c .tenant <<<"$patched")" "GET after PATCH shows the new quota"
api_op PATCH /v1/tenants/acme --json '{"quota":{"stacks":0,"disk_gib":1048576}}'
is "$STATUS $(jb -c .tenant.quota)" '200 {"stacks":0,"vcpus":16,"memory_mib":8192,"disk_gib":1048576,"devices":4,"networks":4}' \
    "PATCH takes 0 and the largest disk_gib"
api_op PATCH /v1/tenants/nobody --json '{"quota":{"vcpus":1}}'
is_error 404 not_found "PATCH /v1/tenants/nobody: 404"

# ---- tokens ----------------------------------------------------------------------------
# A tenant call that proves a token works: an unknown operation is 404 for a
# valid token, 401 for a bad one.
probe_op=/v1/operations/00000000-0000-4000-8000-000000000000
api_tn "$acme_token" GET "$probe_op"
is "$STATUS" 404 "acme's first token works over TCP (404 for an unknown operation, not 401)"

api_op POST /v1/tenants/acme/tokens
is "$STATUS" 201 "POST /v1/tenants/acme/tokens answers 201"
token2=$(jb .token.secret)
token2_id=$(jb .token.id)
matches "$token2" '^tt_[0-9a-f]{64}$' && [ "$token2" != "$acme_token" ] && [ "$(jb .token.tenant)" = acme ]
ok $? "... a new secret for acme"
api_tn "$token2" GET "$probe_op"
is "$STATUS" 404 "the new token works"
api_op POST /v1/tenants/nobody/tokens
is_error 404 not_found "POST /v1/tenants/nobody/tokens: 404"

api_op DELETE "/v1/tenants/acme/tokens/$token2_id"
is "$STATUS" 204 "DELETE /v1/tenants/acme/tokens/ID revokes it: 204"
is "$BODY" "" "... with no body"
api_tn "$token2" GET "$probe_op"
is_error 401 unauthorized "the revoked token answers 401 at once"
api_tn "$acme_token" GET "$probe_op"
is "$STATUS" 404 "acme's other token still works"
api_op DELETE "/v1/tenants/acme/tokens/$token2_id"
is_error 404 not_found "revoking it again: 404"
api_op DELETE "/v1/tenants/beta/tokens/$acme_token_id"
is_error 404 not_found "revoking acme's token under beta's name: 404"
api_tn "$acme_token" GET "$probe_op"
is "$STATUS" 404 "... and acme's token still works"
api_op DELETE /v1/tenants/acme/tokens/00000000-0000-4000-8000-000000000000
is_error 404 not_found "revoking an unknown token id: 404"

# ---- delete ------------------------------------------------------------------------------
api_op DELETE /v1/tenants/beta
is "$STATUS $BODY" "204 " "DELETE /v1/tenants/beta: 204, no body"
api_op GET /v1/tenants/beta
is_error 404 not_found "GET /v1/tenants/beta after the delete: 404"
api_tn "$beta_token" GET "$probe_op"
is_error 401 unauthorized "the deleted tenant's token answers 401"
api_op GET /v1/tenants
is "$(jb -c '[.tenants[].name]')" '["acme","gamma"]' "the list no longer has beta"
api_op DELETE /v1/tenants/beta
is_error 404 not_found "deleting it again: 404"
api_op POST /v1/tenants --json '{"name":"beta"}'
is "$STATUS" 201 "the name beta can be taken again"
[ "$(jb .tenant.id)" != "" ] && [ "$(jb -c .tenant.quota)" = '{"stacks":4,"vcpus":8,"memory_mib":8192,"disk_gib":50,"devices":4,"networks":4}' ]
ok $? "... by a new tenant with the default quota, not the old one's"
api_tn "$beta_token" GET "$probe_op"
is_error 401 unauthorized "the old beta's token does not work for the new beta"
# Nothing can own anything yet (stacks and images come later), so the 409 of
# DELETE while a tenant owns something cannot be reached through the API.
skip "DELETE /v1/tenants/{name} answering 409 while the tenant owns stacks or images: nothing can own anything yet"

# ---- unknown paths and methods ----------------------------------------------------------
api_op GET /v1/nothing-here
is_error 404 not_found "GET /v1/nothing-here: 404"
api_op PATCH /v1/tenants/acme/tokens --json '{}'
is_error 405 method_not_allowed "PATCH /v1/tenants/acme/tokens (only GET and POST there): 405"
is "$(hdr Allow | tr -d ' ' | tr ',' '\n' | sort | paste -sd,)" GET,HEAD,POST \
    "... with Allow: GET, HEAD, POST (HEAD with every GET)"
api_op PUT /v1/tenants/acme
is_error 405 method_not_allowed "PUT /v1/tenants/acme: 405"
is "$(hdr Allow | tr -d ' ' | tr ',' '\n' | sort | paste -sd,)" DELETE,GET,HEAD,PATCH \
    "... with Allow: GET, HEAD, PATCH, DELETE"
api_tn "" DELETE /v1
is_error 405 method_not_allowed "DELETE /v1 over TCP without a token: 405 (route before credentials)"

# ---- /metrics -----------------------------------------------------------------------------
api_op GET /metrics
is "$STATUS" 200 "GET /metrics as the operator: 200"
is "$(hdr Content-Type)" "text/plain; version=0.0.4; charset=utf-8" "... Prometheus text format 0.0.4"
bad_lines=$(grep -vE '^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$|^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.e+-]+$' <<<"$BODY")
is "$bad_lines" "" "every line is a HELP/TYPE comment or a sample"
# (A histogram's samples are its name with _bucket, _sum and _count.)
undeclared=$(awk '/^# TYPE/ { t[$3] = $4; next } /^#/ { next } { n = $1; sub(/\{.*/, "", n); h = n
    sub(/_(bucket|sum|count)$/, "", h); if (!(n in t) && t[h] != "histogram") print n }' <<<"$BODY" | sort -u)
is "$undeclared" "" "every sample's family has a # TYPE line before it"
is "$(metric 'turtled_http_requests_total{route="/v1/tenants",status="201"}')" "$((created_before + 5))" \
    "turtled_http_requests_total{route=/v1/tenants,status=201} moved by the 5 tenants created"
is "$(metric 'turtled_http_requests_total{route="/v1/tenants",status="409"}')" "$((conflict_before + 6))" \
    "... and status=409 by the 6 creates of a taken name"
is "$(metric 'turtled_http_requests_total{route="/v1/tenants/{name}/tokens/{id}",status="204"}')" 1 \
    "the revoke counts under its route pattern, not its path"
is "$(metric 'turtled_http_requests_total{route="unmatched",status="404"}')" 1 \
    "a path no route has counts as route=unmatched"
is "$(metric 'turtled_build_info{version="'"$version"'"}')" 1 "turtled_build_info carries the version"
uptime1=$(metric turtled_uptime_seconds)
metrics_ok_before=$(metric 'turtled_http_requests_total{route="/metrics",status="200"}')
sleep 0.2
api_op GET /metrics
is "$(metric 'turtled_http_requests_total{route="/metrics",status="200"}')" "$((metrics_ok_before + 1))" \
    "reading /metrics counts itself"
awk -v a="$uptime1" -v b="$(metric turtled_uptime_seconds)" 'BEGIN { exit !(b > a && a > 0) }'
ok $? "turtled_uptime_seconds grows ($uptime1 -> $(metric turtled_uptime_seconds))"
[ "$(metric process_threads)" -gt 0 ] && [ "$(metric process_open_fds)" -gt 0 ] &&
    [ "$(metric process_resident_memory_bytes)" -gt 0 ]
ok $? "process_threads, process_open_fds and process_resident_memory_bytes are there"

td_done
