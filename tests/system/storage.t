#!/bin/bash
# hvcore/storage against a real libvirtd (a private test host from
# tests/lib/testhost.sh), through tests/tools/volume-upload: the two dir
# pools made, started and autostarted, and refused when they point
# elsewhere; a 50 MiB upload streamed with bounded memory whose SHA-256 and
# size match the file's; an upload aborted half-way that leaves no volume;
# a qcow2 overlay whose backing chain is the image; and the daemon's
# validation step (hvcore/imagecheck) removing a rejected upload.
#
#   TURTLES_BUILD=build tests/system/storage.t

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/testhost.sh
. "$here/../lib/testhost.sh"

tool=$TURTLES_BUILD/tests/tools/volume-upload
[ -x "$tool" ] || skip_all "$tool not built (make test-bins)"
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
command -v libvirtd >/dev/null || skip_all "libvirtd is not installed"
command -v qemu-img >/dev/null || skip_all "qemu-img is not installed"
command -v jq >/dev/null || skip_all "jq is not installed"

# 50 MiB: far more than the uploader may keep in memory.  Its peak RSS is
# compared with that of a 1 MiB upload: libvirt and GLib alone take some
# 20 MiB, so only the growth with the file's size tells whether it buffered.
big_size=$((50 * 1024 * 1024))
small_size=$((1024 * 1024))
max_growth_kib=$((8 * 1024))

plan 29
testhost_install_cleanup_trap

work=$(mktemp -d "${TMPDIR:-/tmp}/turtles-storage.XXXXXX") || bail "mktemp failed"
cleanup() {
    local status=$?
    rm -rf -- "$work"
    return "$status"
}
trap 'cleanup; _testhost_on_exit' EXIT

state=$work/state
images=$state/pools/images
disks=$state/pools/disks

# field NAME FILE: the value of the "NAME value" line the tool printed.
field() {
    sed -n "s/^$1 //p" "$2" | head -n 1
}

# pool_summary POOL: "<state> <autostart> <path>" as libvirt sees it.
pool_summary() {
    local info path
    info=$(testhost_virsh s pool-info "$1" 2>/dev/null)
    path=$(testhost_virsh s pool-dumpxml "$1" 2>/dev/null | sed -n 's:.*<path>\(.*\)</path>.*:\1:p')
    echo "$(echo "$info" | awk '/^State:/ {print $2}') $(echo "$info" | awk '/^Autostart:/ {print $2}') $path"
}

vol_names() {
    testhost_virsh s vol-list --pool "$1" 2>/dev/null | awk 'NR > 0 && $1 != "" {print $1}' | sort | tr '\n' ' '
}

testhost_start s
ok $? "private test host s answers at ${TESTHOST_S_URI:-?}" || bail "no test host"
disown -a
uri=$TESTHOST_S_URI

# ---- pools ------------------------------------------------------------------

"$tool" ensure-pools "$uri" "$state" >"$work/ensure.out" 2>"$work/ensure.err"
ok $? "ensure-pools defines the pools" || diag "$(cat "$work/ensure.err")"
is "$(pool_summary turtles-images)" "running yes $images" "turtles-images: running, autostart, at <state>/pools/images"
is "$(pool_summary turtles-disks)" "running yes $disks" "turtles-disks: running, autostart, at <state>/pools/disks"
[ -d "$images" ] && [ -d "$disks" ]
ok $? "libvirt built both directories"
"$tool" ensure-pools "$uri" "$state/" >/dev/null 2>"$work/ensure.err"
ok $? "ensure-pools again (same dir, trailing slash) changes nothing" || diag "$(cat "$work/ensure.err")"
"$tool" ensure-pools "$uri" "$work/elsewhere" >/dev/null 2>"$work/ensure.err"
status=$?
is "$status:$(cat "$work/ensure.err")" \
    "1:volume-upload: libvirt storage pool 'turtles-images' exists with path '$images', not '$work/elsewhere/pools/images'" \
    "a pool with another path is an error naming both paths"

# ---- a 50 MiB upload --------------------------------------------------------

head -c "$big_size" /dev/urandom >"$work/big.raw" || bail "cannot make the 50 MiB file"
head -c "$small_size" "$work/big.raw" >"$work/small.raw" || bail "cannot make the 1 MiB file"
want_sha=$(sha256sum "$work/big.raw" | cut -d' ' -f1)

# upload_measured NAME FILE OUT: the upload, under /usr/bin/time when there
# is one (its report in OUT.time), with 1 MiB writes (cut in pieces inside).
# A sanitizer build keeps freed memory in quarantine (256 MiB by default),
# which would count every freed stream message as resident: keep it small.
upload_measured() {
    local timer=()
    [ -x /usr/bin/time ] && timer=(/usr/bin/time -v -o "$3.time")
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1" \
        "${timer[@]}" "$tool" upload --chunk 1048576 "$uri" turtles-images "$1" "$2" >"$3" 2>"$3.err"
}
time_rss() {
    sed -n 's/.*Maximum resident set size (kbytes): //p' "$1.time" 2>/dev/null
}

upload_measured t--small.img "$work/small.raw" "$work/small.out"
ok $? "a 1 MiB file streams into turtles-images/t--small.img" || diag "$(cat "$work/small.out.err")"
upload_measured t--big.img "$work/big.raw" "$work/up.out"
ok $? "a 50 MiB file streams into turtles-images/t--big.img" || diag "$(cat "$work/up.out.err")"
is "$(field sha256 "$work/up.out")" "$want_sha" "the SHA-256 computed on the way is sha256sum's"
is "$(field size "$work/up.out")" "$big_size" "the byte count is the file's size"
is "$(field path "$work/up.out")" "$images/t--big.img" "the volume's path is in the images pool"
cmp -s "$work/big.raw" "$images/t--big.img"
ok $? "the volume holds exactly the file's bytes"
is "$(testhost_virsh s vol-info --bytes --pool turtles-images t--big.img 2>/dev/null | awk '/^Capacity:/ {print $2}')" \
    "$big_size" "libvirt sees the volume's full size"
small_hwm=$(field vmhwm_kib "$work/small.out")
hwm=$(field vmhwm_kib "$work/up.out")
note "uploader peak RSS (VmHWM): ${small_hwm:-?} KiB for 1 MiB, ${hwm:-?} KiB for 50 MiB"
[ -n "$hwm" ] && [ -n "$small_hwm" ] && [ $((hwm - small_hwm)) -lt "$max_growth_kib" ]
ok $? "memory stays bounded: VmHWM grows by $((${hwm:-0} - ${small_hwm:-0})) KiB (< $max_growth_kib) for 49 MiB more"
if [ -x /usr/bin/time ]; then
    small_rss=$(time_rss "$work/small.out")
    rss=$(time_rss "$work/up.out")
    note "uploader max RSS (/usr/bin/time -v): ${small_rss:-?} KiB for 1 MiB, ${rss:-?} KiB for 50 MiB"
    [ -n "$rss" ] && [ -n "$small_rss" ] && [ $((rss - small_rss)) -lt "$max_growth_kib" ]
    ok $? "/usr/bin/time agrees: max RSS grows by $((${rss:-0} - ${small_rss:-0})) KiB"
else
    skip "/usr/bin/time is not installed"
fi
is "$(cat "$work/small.out.err" "$work/up.out.err")" "" "nothing on stderr"

# The same name again is refused, and the volume is untouched.
"$tool" upload "$uri" turtles-images t--big.img "$work/big.raw" >/dev/null 2>"$work/again.err"
is "$?:$(cat "$work/again.err")" \
    "1:volume-upload: volume 't--big.img' already exists in storage pool 'turtles-images'" \
    "uploading over an existing volume is refused"
is "$(sha256sum "$images/t--big.img" | cut -d' ' -f1)" "$want_sha" "... and the volume is unchanged"

# ---- abort --------------------------------------------------------------------

"$tool" upload --abort-after $((10 * 1024 * 1024)) "$uri" turtles-images t--partial.img \
    "$work/big.raw" >"$work/abort.out" 2>"$work/abort.err"
ok $? "an upload aborted after 10 MiB: $(cat "$work/abort.out")" || diag "$(cat "$work/abort.err")"
is "$(vol_names turtles-images)" "t--big.img t--small.img " "libvirt lists no volume of the aborted upload"
[ ! -e "$images/t--partial.img" ]
ok $? "and its file is gone from the pool directory"

# ---- overlay ------------------------------------------------------------------

"$tool" overlay "$uri" turtles-disks t--web.qcow2 "$images/t--big.img" raw \
    >"$work/overlay.out" 2>"$work/overlay.err"
ok $? "a qcow2 overlay on the image in turtles-disks" || diag "$(cat "$work/overlay.err")"
is "$(field path "$work/overlay.out")" "$disks/t--web.qcow2" "the overlay's path is in the disks pool"
chain=$(qemu-img info -U --backing-chain --output=json "$disks/t--web.qcow2" 2>&1)
is "$(echo "$chain" | jq -r '[.[] | .format] | join(" ")')" "qcow2 raw" \
    "qemu-img --backing-chain: a qcow2 on a raw image"
is "$(echo "$chain" | jq -r '.[0] | "\(."backing-filename") \(."backing-filename-format") \(."virtual-size")"')" \
    "$images/t--big.img raw $big_size" "the overlay's backing file is the image, raw, with its size"

# ---- validation: what the daemon does before "ready" --------------------------

qemu-img create -q -u -f qcow2 -b /etc/hostname -F raw "$work/evil.qcow2" 1M
"$tool" upload --check qcow2:disk "$uri" turtles-images t--evil.img "$work/evil.qcow2" \
    >"$work/evil.out" 2>"$work/evil.err"
is "$?:$(field rejected "$work/evil.out")" \
    "0:qcow2 image has a backing file '/etc/hostname': not allowed" \
    "an uploaded qcow2 with a backing file is rejected" || diag "$(cat "$work/evil.err")"
is "$(vol_names turtles-images)" "t--big.img t--small.img " "... and removed, not left half-made"

kernel=$TURTLES_BUILD/l1/vmlinuz
if [ -f "$kernel" ]; then
    "$tool" upload --check raw:kernel "$uri" turtles-images t--vmlinuz.img "$kernel" \
        >"$work/kernel.out" 2>"$work/kernel.err"
    is "$?:$(grep '^checked' "$work/kernel.out")" "0:checked ok" \
        "the reference L1 kernel, uploaded, passes as a kernel" || diag "$(cat "$work/kernel.err")"
else
    skip "no reference L1 kernel at $kernel (make l1-image)"
fi
