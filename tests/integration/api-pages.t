#!/usr/bin/env bash
# Every list pages the same way (limit, after, next): tenants, a tenant's
# tokens, images, peers, device classes and devices are walked two items a
# page (no item twice, none missed, next null at the end); limit=0,
# limit=10001, a forged cursor, another listing's cursor and an unknown
# parameter are 400 naming the parameter; the token list never shows a
# secret; and a tenant's images that are not ready are capped
# (pending_images), checked with the insert.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

td_init
printf '[turtled]\npending_images = 4\n' >"$TD_DIR/turtled.conf"
td_start --config "$TD_DIR/turtled.conf" || bail "turtled did not start"

td_tenant acme || bail "no tenant acme"
acme=$TOKEN
td_tenant beta || bail "no tenant beta"
td_tenant gamma || bail "no tenant gamma"
for _ in 1 2; do
    api_op POST /v1/tenants/acme/tokens
    [ "$STATUS" = 201 ] || bail "no second token for acme: $STATUS $BODY"
done
for name in initrd kernel root; do
    api_tn "$acme" POST /v1/images --json "{\"name\":\"$name\",\"kind\":\"disk\",\"format\":\"raw\"}"
    [ "$STATUS" = 201 ] || bail "no image $name: $STATUS $BODY"
done
for name in hosta hostb hostc; do
    api_op POST /v1/peers --json "{\"name\":\"$name\",\"libvirt_uri\":\"qemu+tcp://$name/system\"}"
    [ "$STATUS" = 201 ] || bail "no peer $name: $STATUS $BODY"
done
for name in edu rng zzz; do
    model=edu
    [ "$name" = rng ] && model=virtio-rng
    api_op POST /v1/device-classes --json \
        "{\"name\":\"$name\",\"kind\":\"emulated\",\"model\":\"$model\",\"capacity\":2}"
    [ "$STATUS" = 201 ] || bail "no device class $name: $STATUS $BODY"
done

# ask TOKEN PATH: GET as the operator (TOKEN empty) or a tenant.
ask() {
    if [ -z "$1" ]; then api_op GET "$2"; else api_tn "$1" GET "$2"; fi
}

# walk WHO PATH MEMBER KEY WANT: PATH a page of 2 at a time, following next;
# every page but the last has 2 items and a next, the last has none; the
# keys (jq KEY of each item) of all pages, in order, are WANT (a JSON
# array), the same as one page without a limit.
walk() {
    local who=$1 path=$2 member=$3 key=$4 want=$5 sep='?' after="" all="[]" pages=0 next
    [[ $path == *\?* ]] && sep='&'
    while :; do
        ask "$who" "$path${sep}limit=2${after:+&after=$after}"
        [ "$STATUS" = 200 ] || break
        pages=$((pages + 1))
        all=$(jq -c --argjson page "$(jb -c "[.${member}[] | $key]")" '. + $page' <<<"$all")
        next=$(jb .next)
        if [ "$next" = null ]; then
            break
        fi
        [ "$(jb ".$member | length")" = 2 ] || break
        after=$next
        [ "$pages" -lt 10 ] || break
    done
    local want_pages=$((($(jq length <<<"$want") + 1) / 2))
    is "$STATUS $pages $all" "200 $want_pages $want" \
        "$path: $want_pages page(s) of at most 2, next null on the last: $want"
    is "$(jq -c 'group_by(.) | map(select(length > 1))' <<<"$all")" "[]" "... no item twice"
    ask "$who" "$path"
    is "$(jb -c "[.${member}[] | $key]") $(jb .next)" "$want null" "... the same as one page without a limit"
}

walk "" /v1/tenants tenants .name '["acme","beta","gamma"]'
ids=$(td_sql "SELECT json_group_array(id) FROM (SELECT k.id FROM tokens k JOIN tenants t ON t.id = k.tenant_id WHERE t.name = 'acme' ORDER BY k.created_at, k.id)")
walk "" /v1/tenants/acme/tokens tokens .id "$ids"
walk "$acme" /v1/images images .name '["initrd","kernel","root"]'
walk "" /v1/peers peers .name '["hosta","hostb","hostc"]'
walk "" /v1/device-classes device_classes .name '["edu","rng","zzz"]'
walk "$acme" /v1/device-classes device_classes .name '["edu","rng","zzz"]'
walk "" /v1/devices devices .id '["edu-0","edu-1","rng-0","rng-1","zzz-0","zzz-1"]'
walk "" '/v1/devices?class=rng' devices .id '["rng-0","rng-1"]'

# ---- tokens: never a secret, and revoked ones are gone --------------------------------------
api_op GET /v1/tenants/acme/tokens
is "$(jb -c '[.tokens[] | keys] | unique')" '[["created_at","id","tenant"]]' \
    "the token list shows id, tenant and created_at, never a secret"
last=$(jb -r '.tokens[2].id')
api_op DELETE "/v1/tenants/acme/tokens/$last"
api_op GET /v1/tenants/acme/tokens
is "$(jb '.tokens | length') $(jb -c "[.tokens[].id] | index(\"$last\")")" "2 null" \
    "a revoked token leaves the list"
api_op GET /v1/tenants/nosuch/tokens
is_error 404 not_found "the tokens of a tenant that does not exist: 404"
api_tn "$acme" GET /v1/tenants/acme/tokens
is_error 403 forbidden "a tenant may not list tokens: 403"

# ---- bad page arguments: 400 naming the parameter, for every list ---------------------------
api_op GET /v1/tenants?limit=2
tenant_cursor=$(jb -r .next)
api_op GET /v1/peers?limit=2
peer_cursor=$(jb -r .next)
forged=$(printf 'acme\0zzz\0x' | base64 -w0 | tr '+/' '-_' | tr -d '=')
for list in "|/v1/tenants" "|/v1/tenants/acme/tokens" "$acme|/v1/images" "|/v1/peers" \
    "|/v1/device-classes" "|/v1/devices" "|/v1/devices?class=rng" "|/v1/stacks" "|/v1/networks" \
    "|/v1/operations" "$acme|/v1/operations" "$acme|/v1/operations?status=running"; do
    who=${list%%|*}
    path=${list#*|}
    sep='?'
    [[ $path == *\?* ]] && sep='&'
    ask "$who" "$path${sep}limit=0"
    is "$STATUS $(jb -r .error.message)" "400 limit: must be a whole number between 1 and 1000" \
        "$path limit=0: 400 naming limit"
    ask "$who" "$path${sep}limit=10001"
    is "$STATUS $(jb -r .error.message)" "400 limit: must be a whole number between 1 and 1000" \
        "$path limit=10001: 400 naming limit"
    ask "$who" "$path${sep}limit=two"
    is "$STATUS $(jb -r .error.code)" "400 bad_request" "$path limit=two: 400"
    ask "$who" "$path${sep}after=$forged"
    is "$STATUS $(jb -r .error.message)" "400 after: invalid cursor" "$path a forged cursor: 400 naming after"
    ask "$who" "$path${sep}after=not%20a%20cursor"
    is "$STATUS $(jb -r .error.message)" "400 after: invalid cursor" "$path a cursor that is no base64url: 400"
    ask "$who" "$path${sep}bogus=1"
    is "$STATUS $(jb -r .error.message)" "400 unknown query parameter 'bogus'" \
        "$path an unknown parameter: 400 naming it"
done
api_op GET "/v1/peers?after=$tenant_cursor"
is "$STATUS $(jb -r .error.message)" "400 after: invalid cursor" "a tenants cursor given to the peers list: 400"
api_op GET "/v1/tenants?after=$peer_cursor"
is "$STATUS $(jb -r .error.message)" "400 after: invalid cursor" "a peers cursor given to the tenants list: 400"
api_op GET /v1/devices?limit=2
api_op GET "/v1/devices?class=zzz&after=$(jb -r .next)"
is "$STATUS $(jb -r .error.message)" "400 after: invalid cursor" \
    "a cursor of all devices given to the devices of another class: 400"
api_op GET /v1/tenants/acme/tokens?limit=1
acme_tokens=$(jb -r .next)
api_op GET "/v1/tenants/beta/tokens?after=$acme_tokens"
is "$STATUS $(jb -r .error.message)" "400 after: invalid cursor" "acme's token cursor on beta's tokens: 400"

# ---- images not ready: a cap per tenant, checked with the insert ----------------------------
api_tn "$acme" POST /v1/images --json '{"name":"fourth","kind":"disk","format":"raw"}'
is "$STATUS" 201 "a fourth image not ready yet (pending_images = 4): 201"
api_tn "$acme" POST /v1/images --json '{"name":"fifth","kind":"disk","format":"raw"}'
is_error 403 quota_exceeded "a fifth: 403 quota_exceeded"
like "$(jb -r .error.message)" "^tenant 'acme' has 4 images that are not ready .*: upload their data or delete them" \
    "... saying how many are pending and what to do"
api_tn "$acme" GET /v1/images/fifth
is "$STATUS" 404 "... and nothing was created"
td_tenant delta || bail "no tenant delta"
delta=$TOKEN
api_tn "$delta" POST /v1/images --json '{"name":"fifth","kind":"disk","format":"raw"}'
is "$STATUS" 201 "another tenant's pending images do not count: 201"
api_tn "$acme" DELETE /v1/images/fourth
api_tn "$acme" POST /v1/images --json '{"name":"fifth","kind":"disk","format":"raw"}'
is "$STATUS" 201 "once one is deleted, another may be created"

# Concurrent creates cannot both take the last place.
racers=()
for i in 1 2 3 4 5 6; do
    curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $delta" \
        --json "{\"name\":\"race$i\",\"kind\":\"disk\",\"format\":\"raw\"}" \
        "http://127.0.0.1:$TD_PORT/v1/images" >"$TD_DIR/race.$i" &
    racers+=($!)
done
wait "${racers[@]}" # not turtled, which runs in the background too
is "$(cat "$TD_DIR"/race.* | sort | uniq -c | awk '{print $2 "x" $1}' | paste -sd ' ')" "201x3 403x3" \
    "six concurrent creates with one image pending: exactly three get the three free places"
api_tn "$delta" GET /v1/images
is "$(jb '.images | length')" 4 "... and delta has exactly 4 images"

td_done
