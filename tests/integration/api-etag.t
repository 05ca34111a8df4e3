#!/usr/bin/env bash
# Optimistic concurrency: every single resource answers an ETag (the same on
# the write that made it and on the GET after), If-None-Match gets 304 with
# no body, If-Match with a stale tag gets 412 (with the current tag) and
# changes nothing (read back), a matching one applies the change and a new
# tag follows; of two operators who read one tenant and both write, exactly
# one wins.  Tenants, images, peers, device classes, networks, operations.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

td_init
td_start || bail "turtled did not start"
td_tenant acme || bail "no tenant acme"
acme=$TOKEN
created_tag=$(hdr ETag)
etag_re='^"[0-9a-f]{32}"$'

# ---- tenants ---------------------------------------------------------------------------------
like "$created_tag" "$etag_re" "POST /v1/tenants: 201 with a strong ETag"
api_op GET /v1/tenants/acme
tag=$(hdr ETag)
is "$STATUS $tag" "200 $created_tag" "GET /v1/tenants/acme: the same ETag as its create"
api_op GET /v1/tenants/acme
is "$(hdr ETag)" "$tag" "... and the same again while nothing changed"

api_op GET /v1/tenants/acme -H "If-None-Match: $tag"
is "$STATUS ${#BODY} $(hdr ETag)" "304 0 $tag" "If-None-Match with the current tag: 304, no body, the tag"
api_op GET /v1/tenants/acme -H 'If-None-Match: "0123456789abcdef0123456789abcdef"'
is "$STATUS $(jb .tenant.name)" "200 acme" "If-None-Match with another tag: 200 with the tenant"

api_op PATCH /v1/tenants/acme -H 'If-Match: "0123456789abcdef0123456789abcdef"' \
    --json '{"quota":{"stacks":9}}'
is_error 412 precondition_failed "PATCH with a stale If-Match: 412 precondition_failed"
is "$(hdr ETag)" "$tag" "... carrying the current ETag"
api_op GET /v1/tenants/acme
is "$(jb .tenant.quota.stacks) $(hdr ETag)" "4 $tag" "... and nothing changed"

api_op PATCH /v1/tenants/acme -H "If-Match: $tag" --json '{"quota":{"stacks":9}}'
new_tag=$(hdr ETag)
is "$STATUS $(jb .tenant.quota.stacks)" "200 9" "PATCH with the current If-Match: applied"
like "$new_tag" "$etag_re" "... with an ETag"
[ "$new_tag" != "$tag" ]
ok $? "... a new one"
api_op GET /v1/tenants/acme
is "$(jb .tenant.quota.stacks) $(hdr ETag)" "9 $new_tag" "GET shows the change under the new tag"
api_op PATCH /v1/tenants/acme -H "If-Match: $tag" --json '{"quota":{"stacks":1}}'
is_error 412 precondition_failed "the old tag no longer passes: 412"
api_op PATCH /v1/tenants/acme -H "If-Match: \"x\", $new_tag" --json '{"quota":{"vcpus":12}}'
is "$STATUS $(jb .tenant.quota.vcpus)" "200 12" "If-Match with a list that names the current tag: applied"
api_op PATCH /v1/tenants/acme -H 'If-Match: *' --json '{"quota":{"vcpus":10}}'
is "$STATUS $(jb .tenant.quota.vcpus)" "200 10" "If-Match: * : applied"
api_op PATCH /v1/tenants/acme -H "If-Match: W/$(hdr ETag)" --json '{"quota":{"vcpus":11}}'
is_error 412 precondition_failed "a weak tag never matches If-Match (strong comparison): 412"
api_op PATCH /v1/tenants/acme --json '{"quota":{"vcpus":11}}'
is "$STATUS $(jb .tenant.quota.vcpus)" "200 11" "without If-Match a PATCH is unconditional"

# Two operators read the same version, then both write: one wins, one gets 412.
writers=()
api_op GET /v1/tenants/acme
tag=$(hdr ETag)
for who in 1 2; do
    curl -s -o "$TD_DIR/both.$who.body" -w '%{http_code}\n' --unix-socket "$TD_SOCK" -X PATCH \
        -H "If-Match: $tag" --json "{\"quota\":{\"memory_mib\":${who}024}}" \
        http://localhost/v1/tenants/acme >"$TD_DIR/both.$who" &
    writers+=($!)
done
wait "${writers[@]}"
is "$(cat "$TD_DIR"/both.1 "$TD_DIR"/both.2 | sort | paste -sd ' ')" "200 412" \
    "two writers with the same If-Match at once: exactly one 200, one 412"
winner=$(grep -l 200 "$TD_DIR"/both.1 "$TD_DIR"/both.2)
api_op GET /v1/tenants/acme
is "$(jb .tenant.quota.memory_mib)" "$(jq .tenant.quota.memory_mib "$winner.body")" \
    "... and the tenant holds the winner's change"

api_op DELETE /v1/tenants/acme -H "If-Match: $tag"
is_error 412 precondition_failed "DELETE of a tenant with a stale If-Match: 412"
api_op GET /v1/tenants/acme
is "$STATUS" 200 "... and the tenant is still there"

# ---- images ----------------------------------------------------------------------------------
api_tn "$acme" POST /v1/images --json '{"name":"root","kind":"disk","format":"raw"}'
tag=$(hdr ETag)
like "$STATUS $tag" "^201 \"[0-9a-f]{32}\"$" "POST /v1/images: 201 with an ETag"
api_tn "$acme" GET /v1/images/root
is "$(hdr ETag)" "$tag" "GET /v1/images/root: the same ETag"
api_tn "$acme" GET /v1/images/root -H "If-None-Match: W/$tag"
is "$STATUS ${#BODY}" "304 0" "If-None-Match with the weak form of the tag: 304 (weak comparison)"
# (test:///default stores no image data: an upload's answer is tagged the
# same way, by the same helper, but cannot be shown here.)
api_tn "$acme" DELETE /v1/images/root -H 'If-Match: "00000000000000000000000000000000"'
is_error 412 precondition_failed "DELETE of an image with a stale If-Match: 412"
is "$(hdr ETag)" "$tag" "... carrying the current ETag"
api_tn "$acme" GET /v1/images/root
is "$STATUS $(jb .image.state)" "200 pending" "... and it is still there"
api_tn "$acme" DELETE /v1/images/root -H "If-Match: $tag"
is "$STATUS" 204 "DELETE with the current tag: 204"
api_tn "$acme" GET /v1/images/root
is "$STATUS" 404 "... gone"

# ---- peers -----------------------------------------------------------------------------------
api_op POST /v1/peers --json '{"name":"hostb","libvirt_uri":"qemu+tcp://hostb/system"}'
tag=$(hdr ETag)
api_op GET /v1/peers/hostb
is "$STATUS $(hdr ETag)" "200 $tag" "a peer: the same ETag on create and GET"
api_op GET /v1/peers/hostb -H "If-None-Match: $tag"
is "$STATUS ${#BODY}" "304 0" "... If-None-Match: 304"
api_op DELETE /v1/peers/hostb -H 'If-Match: "00000000000000000000000000000000"'
is_error 412 precondition_failed "DELETE of a peer with a stale If-Match: 412"
api_op GET /v1/peers/hostb
is "$STATUS" 200 "... and the peer stays"
api_op DELETE /v1/peers/hostb -H "If-Match: $tag"
is "$STATUS" 204 "... with the current tag: 204"

# ---- device classes --------------------------------------------------------------------------
api_op POST /v1/device-classes --json '{"name":"rng","kind":"emulated","model":"virtio-rng","capacity":2}'
tag=$(hdr ETag)
api_op GET /v1/device-classes/rng
is "$STATUS $(hdr ETag)" "200 $tag" "a device class: the same ETag on create and GET"
api_tn "$acme" GET /v1/device-classes/rng
[ "$(hdr ETag)" != "" ]
ok $? "a tenant reading a class gets an ETag too (of what it sees)"
api_op PATCH /v1/device-classes/rng -H 'If-Match: "00000000000000000000000000000000"' \
    --json '{"capacity":4}'
is_error 412 precondition_failed "PATCH of a device class with a stale If-Match: 412"
is "$(hdr ETag)" "$tag" "... carrying the current ETag"
api_op GET /v1/device-classes/rng
is "$(jb .device_class.capacity)" 2 "... and the capacity stayed"
api_op PATCH /v1/device-classes/rng -H "If-Match: $tag" --json '{"capacity":4}'
new_tag=$(hdr ETag)
is "$STATUS $(jb .device_class.capacity)" "200 4" "... with the current tag: applied"
api_op GET /v1/device-classes/rng
is "$(hdr ETag)" "$new_tag" "... under a new tag, the GET's"
api_op DELETE /v1/device-classes/rng -H "If-Match: $tag"
is_error 412 precondition_failed "DELETE of a device class with the old tag: 412"
api_op DELETE /v1/device-classes/rng -H "If-Match: $new_tag"
is "$STATUS" 204 "... with the current one: 204"

# ---- networks --------------------------------------------------------------------------------
api_tn "$acme" POST /v1/networks --json '{"name":"lab","mode":"isolated"}'
tag=$(hdr ETag)
is "$STATUS" 201 "a network: 201"
api_tn "$acme" GET /v1/networks/lab
is "$(hdr ETag)" "$tag" "... the same ETag on create and GET"
api_tn "$acme" DELETE /v1/networks/lab -H 'If-Match: "00000000000000000000000000000000"'
is_error 412 precondition_failed "DELETE of a network with a stale If-Match: 412"
api_tn "$acme" GET /v1/networks/lab
is "$STATUS" 200 "... and the network stays"
api_tn "$acme" DELETE /v1/networks/lab -H "If-Match: $tag"
is "$STATUS" 204 "... with the current tag: 204"

# ---- operations ------------------------------------------------------------------------------
td_sleep_op "$acme" 0 || bail "no operation"
td_wait_status "$OP_ID" succeeded || bail "the sleep did not end"
api_tn "$acme" GET "/v1/operations/$OP_ID"
tag=$(hdr ETag)
like "$tag" "$etag_re" "GET /v1/operations/{id}: an ETag"
api_tn "$acme" GET "/v1/operations/$OP_ID" -H "If-None-Match: $tag"
is "$STATUS ${#BODY}" "304 0" "... If-None-Match on a finished operation: 304"

# Cancel with If-Match: the operation as it is when the cancel takes effect
# (a running sleep changes every second, as its progress moves).
td_sleep_op "$acme" 600 || bail "no long operation"
long=$OP_ID
td_wait_status "$long" running || bail "the long sleep did not start"
api_tn "$acme" GET "/v1/operations/$long"
stale=$(hdr ETag)
poll_until 10 eval 'api_tn "$acme" GET "/v1/operations/$long"; [ "$(hdr ETag)" != "$stale" ]'
ok $? "a running operation's ETag moves with its progress"
api_tn "$acme" DELETE "/v1/operations/$long" -H "If-Match: $stale"
is "$STATUS $(jb .error.code)" "412 precondition_failed" "DELETE (cancel) with a stale If-Match: 412"
like "$(hdr ETag)" "$etag_re" "... naming the current ETag"
api_tn "$acme" GET "/v1/operations/$long"
is "$(jb .operation.status)" running "... and the operation runs on"
# The tag read and the cancel race the next progress step: a few tries.
cancelled=""
for _ in 1 2 3 4 5; do
    api_tn "$acme" GET "/v1/operations/$long"
    api_tn "$acme" DELETE "/v1/operations/$long" -H "If-Match: $(hdr ETag)"
    [ "$STATUS" = 202 ] && cancelled=1 && break
done
ok "$([ -n "$cancelled" ] && echo 0 || echo 1)" "... with the current ETag: 202"
td_wait_status "$long" cancelled
ok $? "... and it ends cancelled"

td_done
