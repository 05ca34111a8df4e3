#!/usr/bin/env bash
# Images through the API on the test backend (test:///default, which cannot
# upload volumes): create, list, get, delete, bad bodies and names, 409 for
# a taken name, 404 for another tenant's image on every route, 403 for the
# operator, the upload's refusals that come before libvirt (404, 409, 413
# over quota) and its clear 503 when libvirt cannot store the data.
# tests/system/api-images.t uploads for real.
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

td_tenant acme || bail "no tenant acme"
acme=$TOKEN
td_tenant beta || bail "no tenant beta"
beta=$TOKEN

# put TOKEN NAME FILE [CURL-ARGS...]: PUT /v1/images/NAME/data with FILE's bytes.
put() {
    local token=$1 name=$2 file=$3
    shift 3
    api_tn "$token" PUT "/v1/images/$name/data" -H 'Content-Type: application/octet-stream' \
        --data-binary "@$file" "$@"
}

# ---- create ------------------------------------------------------------------------
api_tn "$acme" GET /v1/images
is "$STATUS $BODY" '200 {"images":[],"next":null}' "GET /v1/images of a new tenant: an empty list"

api_tn "$acme" POST /v1/images --json '{"name":"vmlinuz","kind":"kernel","format":"raw"}'
is "$STATUS" 201 "POST /v1/images {vmlinuz, kernel, raw}: 201"
is "$(hdr Location)" /v1/images/vmlinuz "... with Location: /v1/images/vmlinuz"
created=$(jb -c .image)
is "$(jb -c '.image | [.name, .tenant, .kind, .format, .state, .size, .sha256, .error]')" \
    '["vmlinuz","acme","kernel","raw","pending",null,null,null]' \
    "... pending, owned by acme, size, sha256 and error null"
matches "$(jb .image.id)" "$uuid_re" && matches "$(jb .image.created_at)" "$time_re" &&
    [ "$(jb .image.created_at)" = "$(jb .image.updated_at)" ]
ok $? "... a UUID id, created_at RFC 3339 and equal to updated_at"
image_id=$(jb .image.id)
is "$(td_sql "SELECT volume FROM images WHERE id = '$image_id'")" "$image_id" \
    "... its volume is named by its id"
jq -e 'has("volume") | not' <<<"$created" >/dev/null
ok $? "... and the volume name is not on the wire"

api_tn "$acme" POST /v1/images --json '{"name":"root","kind":"disk","format":"qcow2"}'
is "$STATUS $(jb .image.kind)/$(jb .image.format)" "201 disk/qcow2" "a qcow2 disk image: 201"
api_tn "$acme" POST /v1/images --json '{"name":"initrd","kind":"initrd","format":"raw"}'
is "$STATUS" 201 "an initrd: 201"

api_tn "$acme" POST /v1/images --json '{"name":"vmlinuz","kind":"disk","format":"raw"}'
is_error 409 conflict "the same name again: 409"
is "$ERR_MESSAGE" "image 'vmlinuz' already exists" "... saying the name is taken"
api_tn "$beta" POST /v1/images --json '{"name":"vmlinuz","kind":"kernel","format":"raw"}'
is "$STATUS $(jb .image.tenant)" "201 beta" "another tenant may use the same name"
beta_id=$(jb .image.id)
[ "$beta_id" != "$image_id" ]
ok $? "... for an image (and volume) of its own"

# ---- bad bodies and names ----------------------------------------------------------------
bad_body() { # JSON DESC
    api_tn "$acme" POST /v1/images --json "$1"
    is_error 400 bad_request "$2"
}
bad_body '{"name":"x","kind":"kernel"}' "no format: 400"
bad_body '{"kind":"kernel","format":"raw"}' "no name: 400"
bad_body '{"name":"x","kind":"floppy","format":"raw"}' "an unknown kind: 400"
bad_body '{"name":"x","kind":"disk","format":"vmdk"}' "an unknown format: 400"
bad_body '{"name":"x","kind":"kernel","format":"qcow2"}' "a qcow2 kernel: 400"
bad_body '{"name":"x","kind":"kernel","format":"raw","size":5}' "an unknown field: 400"
bad_body '{"name":"Bad_Name","kind":"kernel","format":"raw"}' "a name outside [a-z0-9-]: 400"
bad_body '{"name":"-x","kind":"kernel","format":"raw"}' "a name starting with '-': 400"
bad_body '{"name":5,"kind":"kernel","format":"raw"}' "a name that is not a string: 400"
bad_body '["x"]' "an array body: 400"
api_tn "$acme" POST /v1/images -H 'Content-Type: application/json' --data-binary '{"name":'
is_error 400 bad_request "malformed JSON: 400"
api_tn "$acme" GET /v1/images
is "$(jb -c '[.images[].name]')" '["initrd","root","vmlinuz"]' \
    "after the refusals acme has its three images, by name"

api_tn "$acme" GET /v1/images/Bad_Name
is_error 404 not_found "GET of a name that cannot be one: 404"
is "$ERR_MESSAGE" "image 'Bad_Name' not found" "... naming it"

# ---- list and get ----------------------------------------------------------------------------
api_tn "$acme" GET /v1/images/vmlinuz
is "$STATUS $(jb -c .image)" "200 $created" "GET /v1/images/vmlinuz: the image as created"
api_tn "$acme" GET /v1/images/nothing
is_error 404 not_found "GET of an unknown image: 404"
api_tn "$beta" GET /v1/images
is "$STATUS $(jb -c '[.images[] | [.name, .tenant]]')" '200 [["vmlinuz","beta"]]' \
    "beta's list has only beta's image"
api_tn "$beta" GET /v1/images/root
is_error 404 not_found "beta: GET of acme's image root: 404, as if it did not exist"
is "$ERR_MESSAGE" "image 'root' not found" "... with the same message"

# ---- who may call -------------------------------------------------------------------------------
api_op GET /v1/images
is_error 403 forbidden "the operator on GET /v1/images: 403 (tenants only)"
api_op POST /v1/images --json '{"name":"op","kind":"kernel","format":"raw"}'
is_error 403 forbidden "the operator on POST /v1/images: 403"
api_tn "" GET /v1/images
is_error 401 unauthorized "no token: 401"

# ---- upload: the refusals before any byte ----------------------------------------------------------
printf 'not a kernel at all' >"$TD_DIR/small.bin"
put "$beta" root "$TD_DIR/small.bin"
is_error 404 not_found "beta: PUT into acme's image root: 404"
put "$acme" nothing "$TD_DIR/small.bin"
is_error 404 not_found "PUT into an unknown image: 404"
put "$acme" Bad_Name "$TD_DIR/small.bin"
is_error 404 not_found "PUT into a name that cannot be one: 404"
api_op PUT /v1/images/root/data -H 'Content-Type: application/octet-stream' \
    --data-binary "@$TD_DIR/small.bin"
is_error 403 forbidden "the operator on PUT .../data: 403"

api_op PATCH /v1/tenants/acme --json '{"quota":{"disk_gib":1}}'
is "$STATUS" 200 "acme's disk quota set to 1 GiB"
over=$((1024 * 1024 * 1024 + 1))
put "$acme" root "$TD_DIR/small.bin" -H "Content-Length: $over"
is_error 413 payload_too_large "PUT declaring 1 GiB + 1 byte into a 1 GiB quota: 413"
is "$ERR_MESSAGE" \
    "image 'root': $over bytes do not fit in the disk quota of tenant 'acme': 1 GiB (1073741824 bytes), of which 0 bytes are used by images and 1073741824 are free" \
    "... the message gives the numbers"
api_tn "$acme" GET /v1/images/root
is "$(jb -c '.image | [.state, .size, .error]')" '["pending",null,null]' \
    "... and the image is untouched: pending, no size"
api_op PATCH /v1/tenants/acme --json '{"quota":{"disk_gib":0}}'
put "$acme" root "$TD_DIR/small.bin"
is_error 413 payload_too_large "with a quota of 0 GiB even 19 bytes are too many: 413"
api_op PATCH /v1/tenants/acme --json '{"quota":{"disk_gib":50}}'

# test:///default cannot store uploads: a clear 503 and nothing changes.
put "$acme" vmlinuz "$TD_DIR/small.bin"
is_error 503 unavailable "PUT when libvirt cannot store the data (test:///default): 503 unavailable"
matches "$ERR_MESSAGE" "^this host cannot store image data: "
ok $? "... saying the host cannot store image data: $ERR_MESSAGE"
api_tn "$acme" GET /v1/images/vmlinuz
is "$(jb -c '.image | [.state, .size, .sha256]')" '["pending",null,null]' \
    "... and the image stays pending, may be retried"

# ---- delete -----------------------------------------------------------------------------------------
api_op DELETE /v1/tenants/acme
is_error 409 conflict "deleting tenant acme while it owns images: 409"

api_tn "$beta" DELETE /v1/images/root
is_error 404 not_found "beta: DELETE of acme's image root: 404"
api_tn "$acme" GET /v1/images/root
is "$STATUS" 200 "... and acme's root is still there"

api_tn "$acme" DELETE /v1/images/root
is "$STATUS $BODY" "204 " "DELETE /v1/images/root: 204, no body"
api_tn "$acme" GET /v1/images/root
is_error 404 not_found "GET after the delete: 404"
api_tn "$acme" DELETE /v1/images/root
is_error 404 not_found "deleting it again: 404"
api_tn "$acme" DELETE /v1/images/Bad_Name
is_error 404 not_found "DELETE of a name that cannot be one: 404"
api_tn "$acme" POST /v1/images --json '{"name":"root","kind":"disk","format":"raw"}'
is "$STATUS" 201 "the name root can be taken again"
[ "$(jb .image.state)" = pending ] && [ "$(jb .image.format)" = raw ]
ok $? "... by a new pending image with its own format"

for name in root vmlinuz initrd; do
    api_tn "$acme" DELETE "/v1/images/$name"
    [ "$STATUS" = 204 ] || diag "DELETE $name: $STATUS $BODY"
done
api_tn "$acme" GET /v1/images
is "$BODY" '{"images":[],"next":null}' "after deleting all of them acme's list is empty"
api_op DELETE /v1/tenants/acme
is "$STATUS" 204 "and tenant acme can be deleted"
is "$(td_sql "SELECT count(*) FROM images")" 1 "only beta's image is left in the store"

td_done
