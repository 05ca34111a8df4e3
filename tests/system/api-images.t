#!/bin/bash
# Images end to end over HTTP, against a private libvirtd (tests/lib/
# testhost.sh) and turtled on the tcg backend: the reference L1 kernel and
# initrd uploaded and ready with sha256sum's digest and their size; bad
# images (a qcow2 backed by a host file, raw bytes declared qcow2, a "kernel"
# that is not one) each 400, left in error with the reason and nothing in the
# pool; a retry after an error; the quota (413, nothing created); delete
# removing the volume; and turtled killed with -9 mid-upload, whose restart
# marks the image error and leaves no volume, deletes an old orphan volume (keeps a new one: grace period) and
# notices a ready image whose volume vanished.
#
#   TURTLES_BUILD=build tests/system/api-images.t
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.." || exit 1
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. tests/lib/tap.sh
# shellcheck source-path=SCRIPTDIR source=../lib/testhost.sh
. tests/lib/testhost.sh
# shellcheck source-path=SCRIPTDIR source=../lib/turtled.sh
. tests/lib/turtled.sh

kernel=$TURTLES_BUILD/l1/vmlinuz
initrd=$TURTLES_BUILD/l1/initrd.img
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
command -v libvirtd >/dev/null || skip_all "libvirtd is not installed"
command -v qemu-img >/dev/null || skip_all "qemu-img is not installed"
{ [ -f "$kernel" ] && [ -f "$initrd" ]; } || skip_all "no reference L1 image in $TURTLES_BUILD/l1 (make l1-image)"

td_init
# turtled first (it holds a connection to the host), then the host.
on_exit() {
    local status=$?
    [ -n "$TD_PID" ] && kill -KILL "$TD_PID" 2>/dev/null
    testhost_stop_all || diag "test hosts not fully stopped"
    (exit "$status")
    _td_cleanup
}
trap on_exit EXIT

testhost_start a || bail "private libvirtd did not start"
uri=$(testhost_uri a)
pool=$TD_STATE/pools/images

start_turtled() {
    TD_NO_DEFAULTS=1 td_start --backend tcg --libvirt-uri "$uri" --state-dir "$TD_STATE" \
        --socket "$TD_SOCK" --listen 127.0.0.1:0
}
start_turtled || bail "turtled did not start"
[ -d "$pool" ]
ok $? "turtled made the images pool at <state>/pools/images" || bail "no images pool"

# pool_files: the files in the pool directory, sorted, space-separated.
pool_files() {
    find "$pool" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | paste -sd' '
}
# pool_vols: the volumes libvirt lists in turtles-images.
pool_vols() {
    testhost_virsh a pool-refresh turtles-images >/dev/null 2>&1
    testhost_virsh a vol-list --pool turtles-images 2>/dev/null | awk '$1 != "" {print $1}' | sort |
        paste -sd' '
}
# put TOKEN NAME FILE [CURL-ARGS...]
put() {
    local token=$1 name=$2 file=$3
    shift 3
    api_tn "$token" PUT "/v1/images/$name/data" -H 'Content-Type: application/octet-stream' \
        --data-binary "@$file" "$@"
}
# image TOKEN NAME KIND FORMAT: creates it; sets IMAGE_ID.
image() {
    api_tn "$1" POST /v1/images --json "{\"name\":\"$2\",\"kind\":\"$3\",\"format\":\"$4\"}"
    IMAGE_ID=$(jb .image.id)
    [ "$STATUS" = 201 ] || diag "creating image $2: $STATUS $BODY"
}
# state_of TOKEN NAME: "state|error" of the image.
state_of() {
    api_tn "$1" GET "/v1/images/$2"
    STATE="$(jb .image.state)|$(jb '.image.error // ""')"
}

td_tenant acme || bail "no tenant"
acme=$TOKEN

# ---- bad images: each 400, error with the reason, nothing in the pool -------------
work=$TD_DIR/files
mkdir -p "$work"
qemu-img create -q -f qcow2 -b /etc/hostname -F raw "$work/evil.qcow2" 1M || bail "qemu-img create failed"
head -c 1048576 /dev/urandom >"$work/random.bin"
qemu-img create -q -f qcow2 "$work/good.qcow2" 1M || bail "qemu-img create failed"

image "$acme" evil disk qcow2
put "$acme" evil "$work/evil.qcow2"
is_error 400 bad_request "a qcow2 whose backing file is a host file: 400"
is "$ERR_MESSAGE" "image 'evil' rejected: qcow2 image has a backing file '/etc/hostname': not allowed" \
    "... saying why"
state_of "$acme" evil
is "$STATE" "error|qcow2 image has a backing file '/etc/hostname': not allowed" \
    "... the image is error, with the reason"
is "$(pool_files)" "" "... and nothing is left in the pool directory"

image "$acme" fake disk qcow2
put "$acme" fake "$work/random.bin"
is_error 400 bad_request "raw bytes declared qcow2: 400"
is "$ERR_MESSAGE" "image 'fake' rejected: declared qcow2 but the data is raw" "... saying why"
state_of "$acme" fake
[ "${STATE%%|*}" = error ] && [ -n "${STATE#*|}" ]
ok $? "... the image is error with a reason: ${STATE#*|}"
is "$(pool_files)" "" "... and nothing is left in the pool directory"

image "$acme" notakernel kernel raw
put "$acme" notakernel "$work/random.bin"
is_error 400 bad_request "a kernel that is no bzImage: 400"
[[ $ERR_MESSAGE == "image 'notakernel' rejected: image is not a bzImage kernel"* ]]
ok $? "... saying it is no bzImage: $ERR_MESSAGE"
state_of "$acme" notakernel
[[ $STATE == "error|image is not a bzImage kernel"* ]]
ok $? "... the image is error with that reason"
is "$(pool_files)|$(pool_vols)" "|" "... nothing in the pool directory, no volume in libvirt"

# An image in error takes a new upload.
put "$acme" fake "$work/good.qcow2"
is "$STATUS $(jb .image.state) $(jb '.image.error')" "200 ready null" \
    "a valid qcow2 into the image that was error: 200, ready, error cleared"
fake_id=$(jb .image.id)

# ---- the reference kernel and initrd ------------------------------------------------
image "$acme" vmlinuz kernel raw
kernel_id=$IMAGE_ID
put "$acme" vmlinuz "$kernel"
is "$STATUS $(jb .image.state)" "200 ready" "PUT the reference L1 kernel: 200, ready"
is "$(jb .image.sha256) $(jb .image.size)" \
    "$(sha256sum "$kernel" | cut -d' ' -f1) $(stat -c %s "$kernel")" \
    "... its sha256 is sha256sum's and its size the file's"
cmp -s "$kernel" "$pool/$kernel_id"
ok $? "... the volume <pool>/<image id> holds exactly the kernel"

image "$acme" initrd initrd raw
initrd_id=$IMAGE_ID
put "$acme" initrd "$initrd"
is "$STATUS $(jb .image.state) $(jb .image.sha256) $(jb .image.size)" \
    "200 ready $(sha256sum "$initrd" | cut -d' ' -f1) $(stat -c %s "$initrd")" \
    "PUT the reference initrd: 200, ready, sha256 and size right"

api_tn "$acme" GET /v1/images
is "$(jb -c '[.images[] | select(.state == "ready") | .name]')" '["fake","initrd","vmlinuz"]' \
    "GET /v1/images lists the three ready images"
put "$acme" vmlinuz "$kernel"
is_error 409 conflict "PUT into a ready image: 409"
is "$ERR_MESSAGE" "image 'vmlinuz' is ready; images are immutable, delete and create it again" \
    "... saying images are immutable"

# ---- quota -------------------------------------------------------------------------------
used=$(($(stat -c %s "$kernel") + $(stat -c %s "$initrd") + $(stat -c %s "$work/good.qcow2")))
api_op PATCH /v1/tenants/acme --json '{"quota":{"disk_gib":1}}'
is "$STATUS" 200 "acme's disk quota lowered to 1 GiB"
image "$acme" big disk raw
files_before=$(pool_files)
free=$((1073741824 - used))
# With "Expect: 100-continue" curl waits for the answer before sending the body, as a
# client that declares a length should.  Without it, curl may already be sending when
# turtled answers 413 and closes, and the kernel's reset (data left unread) can beat the
# answer to curl (status 000): libmicrohttpd closes without draining (issue 15's work).
put "$acme" big "$work/random.bin" -H "Content-Length: $((free + 1))" -H 'Expect: 100-continue'
is_error 413 payload_too_large "an upload declaring 1 byte more than the quota leaves: 413"
is "$ERR_MESSAGE" \
    "image 'big': $((free + 1)) bytes do not fit in the disk quota of tenant 'acme': 1 GiB (1073741824 bytes), of which $used bytes are used by images and $free are free" \
    "... counting the ready images' bytes"
state_of "$acme" big
is "$STATE|$(pool_files)" "pending||$files_before" "... nothing created: the image is pending, the pool unchanged"
api_op PATCH /v1/tenants/acme --json '{"quota":{"disk_gib":50}}'

# ---- delete ----------------------------------------------------------------------------------
api_tn "$acme" DELETE /v1/images/fake
is "$STATUS" 204 "DELETE a ready image: 204"
[ ! -e "$pool/$fake_id" ]
ok $? "... its volume file is gone"
is "$(pool_vols)" "$(printf '%s\n' "$initrd_id" "$kernel_id" | sort | paste -sd' ')" \
    "... and libvirt lists only the kernel's and the initrd's volumes"

# ---- a client that leaves early -------------------------------------------------------------
head -c $((8 * 1024 * 1024)) /dev/urandom >"$work/slow.bin"
image "$acme" early disk raw
early_id=$IMAGE_ID
curl -sS -o /dev/null --max-time 1 --limit-rate 256k -X PUT -H "Authorization: Bearer $acme" \
    -H 'Content-Type: application/octet-stream' --data-binary "@$work/slow.bin" \
    "http://127.0.0.1:$TD_PORT/v1/images/early/data" 2>/dev/null
is "$?" 28 "a client that gives up after 1 s of a slow upload (curl: timeout)"
deadline=$((SECONDS + 10))
while [ "$SECONDS" -lt "$deadline" ]; do
    state_of "$acme" early
    [ "$STATE" != "uploading|" ] && break
    sleep 0.1
done
is "$STATE" "pending|upload interrupted" "... leaves the image pending: upload interrupted"
[ ! -e "$pool/$early_id" ]
ok $? "... and no volume file"

# ---- kill -9 mid-upload ---------------------------------------------------------------------------
image "$acme" slow disk raw
slow_id=$IMAGE_ID
td_bg_start slow curl -sS -o /dev/null --max-time 60 --limit-rate 256k -X PUT \
    -H "Authorization: Bearer $acme" -H 'Content-Type: application/octet-stream' \
    --data-binary "@$work/slow.bin" "http://127.0.0.1:$TD_PORT/v1/images/slow/data"
deadline=$((SECONDS + 15))
while [ "$SECONDS" -lt "$deadline" ]; do
    state_of "$acme" slow
    [ "${STATE%%|*}" = uploading ] && [ -s "$pool/$slow_id" ] && break
    sleep 0.1
done
is "${STATE%%|*}" uploading "a slow upload is under way (state uploading, bytes in its volume)"
td_kill9
td_bg_stop slow

# While turtled is down: two orphan volumes, one an hour old (a leftover)
# and one just written (maybe a peer's copy for a stack migrating here,
# kept for 15 minutes), and a ready image's file removed.
testhost_virsh a vol-create-as turtles-images orphan-vol 1M --format raw >/dev/null 2>&1 &&
    touch -d '1 hour ago' "$pool/orphan-vol"
testhost_virsh a vol-create-as turtles-images arriving-vol 1M --format raw >/dev/null 2>&1
[ -e "$pool/orphan-vol" ] && [ -e "$pool/arriving-vol" ]
ok $? "orphan volumes made behind turtled's back (one an hour old, one new)"
rm -f "$pool/$initrd_id"

start_turtled || bail "turtled did not restart"
state_of "$acme" slow
is "$STATE" "error|upload interrupted by daemon restart" \
    "after kill -9 and restart the interrupted image is error: upload interrupted by daemon restart"
is "$(jb .image.size)" null "... with no size"
[ ! -e "$pool/$slow_id" ] && [ ! -e "$pool/orphan-vol" ]
ok $? "... its volume and the hour-old orphan volume are gone from the pool directory"
state_of "$acme" initrd
is "$STATE" "error|volume missing from pool turtles-images" \
    "the ready image whose file vanished is error: volume missing from pool turtles-images"
state_of "$acme" vmlinuz
is "${STATE%%|*}" ready "the kernel is still ready"
expected=$(printf '%s\n' "$kernel_id" arriving-vol | sort | paste -sd ' ')
is "$(pool_files)|$(pool_vols)" \
    "$expected|$expected" "the pool holds the kernel's volume and the new orphan (grace period), nothing else"

put "$acme" slow "$work/good.qcow2"
is_error 400 bad_request "the interrupted raw image takes a new upload (a qcow2 declared raw: 400)"
put "$acme" initrd "$initrd"
is "$STATUS $(jb .image.state)" "200 ready" "the image whose volume vanished can be uploaded again"

td_done
