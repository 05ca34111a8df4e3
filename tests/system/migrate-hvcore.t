#!/bin/bash
# hvcore/migrate between two private libvirt hosts (tests/lib/testhost.sh),
# through tests/tools/migrate: the reference L1 boots on host a from volumes
# of a's turtles-images pool, as turtled would set it up, and its L2 beats.
# Then: preflight refusals; a cancelled migration and one whose peer libvirtd
# is killed half-way leave the L1 running on a (L2 still beating) and nothing
# on b; the live migration a -> b copies the boot images into b's pool,
# rewrites the XML for b's pools and console dir, and the L2 heartbeat counter
# continues on b past its last value on a (L2 was not restarted); a has no
# domain left; the figures (total, downtime, bytes) are reported; migrating
# back b -> a works; and a migration to a peer whose libvirtd is dead fails
# with the L1 still running on a.
#
#   TURTLES_BUILD=build tests/system/migrate-hvcore.t
#
# TURTLES_BOOT_TIMEOUT (s, default 180) bounds the wait for L1's first L2
# heartbeat.  Layout per host, as turtled's: <state>/pools/{images,disks} and
# <state>/consoles.

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/testhost.sh
. "$here/../lib/testhost.sh"

tool=$TURTLES_BUILD/tests/tools/migrate
upload=$TURTLES_BUILD/tests/tools/volume-upload
stack_xml=$TURTLES_BUILD/tests/tools/stack-xml
kernel=$TURTLES_BUILD/l1/vmlinuz
initrd=$TURTLES_BUILD/l1/initrd.img
for t in "$tool" "$upload" "$stack_xml"; do
    [ -x "$t" ] || skip_all "$t not built (make test-bins)"
done
if [ ! -f "$kernel" ] || [ ! -f "$initrd" ]; then
    skip_all "reference L1 image not built (make l1-image)"
fi
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
command -v libvirtd >/dev/null || skip_all "libvirtd is not installed"

boot_timeout=${TURTLES_BOOT_TIMEOUT:-180}
hb_timeout=90
# 512 MiB of L1 moves in well under a second over the switch; the failure cases
# slow the migration down to this (MiB/s) so that the copy lasts seconds, and
# strike once the migration reports memory moving, not after a guessed time.
slow_mib_s=8
unlimited=8796093022207 # MiB/s: libvirt's largest, i.e. no limit

plan 60
testhost_install_cleanup_trap

work=$(mktemp -d "${TMPDIR:-/tmp}/turtles-migrate.XXXXXX") || bail "mktemp failed"
cleanup() {
    local status=$?
    rm -rf -- "$work"
    return "$status"
}
trap 'cleanup; _testhost_on_exit' EXIT

# ---- helpers ----------------------------------------------------------------

# field NAME FILE: the value of the first "NAME value" line.
field() {
    sed -n "s/^$1 //p" "$2" | head -n 1
}

# heartbeats FILE: the L2 heartbeat numbers in a console log, in order.
heartbeats() {
    tr -d '\r' <"$1" 2>/dev/null | grep -ao 'TURTLES-L2 HB [0-9]*' | awk '{ print $3 }'
}

last_hb() {
    heartbeats "$1" | tail -n 1
}

# wait_hb_above FILE N TIMEOUT: until FILE shows a heartbeat above N.
wait_hb_above() {
    local file=$1 min=$2 deadline=$((SECONDS + $3)) last
    while [ "$SECONDS" -lt "$deadline" ]; do
        last=$(last_hb "$file")
        [ -n "$last" ] && [ "$last" -gt "$min" ] && return 0
        sleep 1
    done
    return 1
}

# Heartbeats strictly increasing (no restart at 1 in between).
increasing() {
    heartbeats "$1" | awk 'NR > 1 && $1 <= prev { bad = 1 } { prev = $1 } END { exit bad }'
}

domstate() {
    testhost_virsh "$1" domstate "$dom" 2>/dev/null | head -n 1
}

domains() {
    testhost_virsh "$1" list --all --name 2>/dev/null | sed '/^$/d' | tr '\n' ' '
}

# The migration's speed limit, kept by libvirt for the domain's next
# migrations (MiB/s).
set_speed() {
    testhost_virsh "$1" migrate-setspeed "$dom" "$2" >/dev/null
}

show_failure() {
    diag "output: $(cat "$1" 2>/dev/null)" "errors: $(cat "$2" 2>/dev/null)"
}

# Every migration case starts from a known state, so that one that goes
# wrong (a migration that completes where it should fail, a peer left dead)
# does not decide the next: home_a puts things back first.  b's libvirtd
# runs (restarted if a case killed it), the L1 runs on a (migrated back from
# b if a case moved it there), no domain is on b (libvirt kills a
# half-received one as it restarts, in the background) nor a console log of
# an earlier stay there, and a's libvirt migrates the L1 at full speed.  When that cannot be done the test stops.
no_domain_on_b() {
    [ -z "$(domains b)" ]
}
memory_moving() {
    grep -q '^progress memory [0-9]* [1-9]' "$1" 2>/dev/null
}
home_a() {
    if ! testhost_daemon_alive b && ! testhost_restart_daemon b; then
        diag "b's libvirtd does not come back"
        return 1
    fi
    if [ "$(domstate a)" != running ] && [ "$(domstate b)" = running ]; then
        diag "the L1 is on b: migrating it back to a"
        "$tool" --migrate-uri "tcp://$addr_a" all "$uri_b" "$uri_a" "$dom" \
            >"$work/home.out" 2>"$work/home.err" || show_failure "$work/home.out" "$work/home.err"
    fi
    if [ "$(domstate a)" != running ]; then
        diag "the L1 is '$(domstate a)' on a"
        return 1
    fi
    if ! poll_until 30 no_domain_on_b; then
        diag "domains left on b: $(domains b)"
        return 1
    fi
    # A console log on b is from a stint there that is over (QEMU appends
    # to it): the next migration's heartbeats on b are read from a fresh one.
    rm -f "$console_b"
    set_speed a "$unlimited"
}

# ---- two hosts, pools, the L1 on a --------------------------------------------

testhost_start a
ok $? "private test host a answers at ${TESTHOST_A_URI:-?}" || bail "no test host a"
testhost_start b
ok $? "private test host b answers at ${TESTHOST_B_URI:-?}" || bail "no test host b"
disown -a
uri_a=$TESTHOST_A_URI
uri_b=$TESTHOST_B_URI
# Where QEMU's migration stream goes: the peer's address on the test's switch.
addr_a=$TESTHOST_A_ADDR
addr_b=$TESTHOST_B_ADDR
state_a=$work/a
state_b=$work/b
mkdir -p "$state_a/consoles" "$state_b/consoles"

"$upload" ensure-pools "$uri_a" "$state_a" >/dev/null 2>"$work/err" &&
    "$upload" ensure-pools "$uri_b" "$state_b" >/dev/null 2>>"$work/err"
ok $? "turtles-images and turtles-disks pools on both hosts" || bail "$(cat "$work/err")"

"$upload" upload "$uri_a" turtles-images l1-vmlinuz "$kernel" >"$work/k.out" 2>"$work/err" &&
    "$upload" upload "$uri_a" turtles-images l1-initrd "$initrd" >"$work/i.out" 2>>"$work/err"
ok $? "kernel and initrd uploaded into a's turtles-images pool" || bail "$(cat "$work/err")"
kernel_a=$(field path "$work/k.out")
initrd_a=$(field path "$work/i.out")

id=$(cat /proc/sys/kernel/random/uuid)
dom=turtles-$id
console_a=$state_a/consoles/$id.log
console_b=$state_b/consoles/$id.log
"$stack_xml" --backend tcg --id "$id" --name mig --tenant test --vcpus 1 --memory-mib 512 \
    --kernel "$kernel_a" --initrd "$initrd_a" --cmdline console=ttyS0 \
    --console-log "$console_a" >"$work/dom.xml" 2>"$work/err"
ok $? "stack-xml builds the L1 domain XML on a's volumes" || bail "$(cat "$work/err")"
testhost_virsh a define "$work/dom.xml" >/dev/null 2>"$work/err" &&
    testhost_virsh a start "$dom" >/dev/null 2>>"$work/err"
ok $? "L1 defined and started on a" || bail "$(cat "$work/err")"

wait_hb_above "$console_a" 0 "$((boot_timeout + hb_timeout))"
if ! ok $? "L2 heartbeats on a's console"; then
    diag "console: $(tr -d '\r' <"$console_a" | tail -n 20)"
    bail "L1/L2 never came up"
fi

# ---- preflight ----------------------------------------------------------------

"$tool" preflight "$uri_a" "$uri_b" "$dom" >"$work/out" 2>"$work/err"
ok $? "preflight a -> b passes for the running tcg L1 (CPU, memory)" || show_failure "$work/out" "$work/err"

"$tool" --backend kvm --no-nested-state preflight "$uri_a" "$uri_b" "$dom" >"$work/out" 2>"$work/err"
status=$?
[ "$status" = 1 ] && grep -q '^migrate: \[unsupported\] .*KVM_CAP_NESTED_STATE' "$work/err"
ok $? "preflight refuses the kvm backend without KVM_CAP_NESTED_STATE" || show_failure "$work/out" "$work/err"

"$tool" preflight "$uri_a" "$uri_b" turtles-no-such-stack >"$work/out" 2>"$work/err"
status=$?
[ "$status" = 1 ] && grep -q "^migrate: \[not_found\] domain 'turtles-no-such-stack' not found" "$work/err"
ok $? "preflight of a missing domain: not_found" || show_failure "$work/out" "$work/err"

# A second, shut-off domain of the same image.
id2=$(cat /proc/sys/kernel/random/uuid)
"$stack_xml" --backend tcg --id "$id2" --name off --tenant test --kernel "$kernel_a" \
    --initrd "$initrd_a" --console-log "$state_a/consoles/$id2.log" >"$work/off.xml" &&
    testhost_virsh a define "$work/off.xml" >/dev/null
"$tool" preflight "$uri_a" "$uri_b" "turtles-$id2" >"$work/out" 2>"$work/err"
status=$?
[ "$status" = 1 ] && grep -q "^migrate: \[unsupported\] domain 'turtles-$id2' is shut off" "$work/err"
ok $? "preflight refuses a shut-off domain" || show_failure "$work/out" "$work/err"
testhost_virsh a undefine "turtles-$id2" >/dev/null

"$tool" volumes "$uri_a" "$dom" >"$work/out" 2>"$work/err"
is "$(tr '\n' ' ' <"$work/out")" "image l1-vmlinuz image l1-initrd " "the L1 boots from two volumes of turtles-images"

"$tool" dest-xml "$uri_a" "$uri_b" "$dom" >"$work/out" 2>"$work/err"
status=$?
[ "$status" = 1 ] && grep -Eq "^migrate: \[not_found\] the peer lacks volume 'l1-(vmlinuz|initrd)'" "$work/err"
ok $? "no destination XML while b lacks the images" || show_failure "$work/out" "$work/err"

# ---- a cancelled migration ------------------------------------------------------

home_a || bail "cannot bring the L1 home to a before the cancel case"
set_speed a "$slow_mib_s"
"$tool" --migrate-uri "tcp://$addr_b" --cancel-in-memory all "$uri_a" "$uri_b" "$dom" \
    >"$work/cancel.out" 2>"$work/cancel.err"
status=$?
[ "$status" = 1 ] && grep -q '^migrate: \[cancelled\]' "$work/cancel.err"
ok $? "a migration cancelled while memory moves fails as cancelled" || show_failure "$work/cancel.out" "$work/cancel.err"
memory_moving "$work/cancel.out" && grep -q '^cancelling$' "$work/cancel.out"
ok $? "it had reported memory progress before the cancel" || show_failure "$work/cancel.out" "$work/cancel.err"
grep -q '^copied l1-vmlinuz' "$work/cancel.out" && grep -q '^cleanup deleted turtles-images/l1-vmlinuz' "$work/cancel.out" &&
    [ -z "$(ls "$state_b/pools/images")" ]
ok $? "the images copied for it were deleted from b again" ||
    diag "$(cat "$work/cancel.out")" "b's images: $(ls "$state_b/pools/images")"
is "$(domstate a) / $(domains b)" "running / " "after the cancel: running on a, no domain on b"
hb=$(last_hb "$console_a")
wait_hb_above "$console_a" "$hb" "$hb_timeout"
ok $? "L2 keeps beating on a after the cancel (past $hb)"

# ---- the peer's libvirtd killed half-way --------------------------------------------

home_a || bail "cannot bring the L1 home to a before the peer-dies-midway case"
set_speed a "$slow_mib_s"
"$tool" --migrate-uri "tcp://$addr_b" all "$uri_a" "$uri_b" "$dom" >"$work/kill.out" 2>"$work/kill.err" &
pid=$!
# The kill lands once memory moves (bytes done), while the copy has seconds to go.
poll_until 120 memory_moving "$work/kill.out"
moving=$?
testhost_kill_daemon b KILL
killed=$?
[ "$moving" = 0 ] && [ "$killed" = 0 ]
ok $? "b's libvirtd killed during the migration's memory copy" ||
    show_failure "$work/kill.out" "$work/kill.err"
wait "$pid"
status=$?
[ "$status" = 1 ] && grep -q '^migrate: \[libvirt\] cannot migrate domain' "$work/kill.err"
ok $? "the migration fails with libvirt's reason" || {
    diag "exit status $status"
    show_failure "$work/kill.out" "$work/kill.err"
}
note "$(cat "$work/kill.err")"
is "$(domstate a)" running "the L1 still runs on a"
hb=$(last_hb "$console_a")
wait_hb_above "$console_a" "$hb" "$hb_timeout"
ok $? "L2 keeps beating on a (past $hb)"
testhost_restart_daemon b
ok $? "b's libvirtd restarted"
# libvirt kills the half-received domain when it finds it on restart.
deadline=$((SECONDS + 30))
until [ -z "$(domains b)" ] || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.5; done
is "$(domains b)" "" "no domain left on b"
# The images were copied before the kill and could not be deleted from a dead
# peer: whatever is there must be whole, never a partial file.
partial=""
for f in "$state_b"/pools/images/*; do
    [ -e "$f" ] || continue
    case ${f##*/} in
    l1-vmlinuz) cmp -s "$f" "$kernel" || partial="$partial ${f##*/}" ;;
    l1-initrd) cmp -s "$f" "$initrd" || partial="$partial ${f##*/}" ;;
    *) partial="$partial ${f##*/}" ;;
    esac
done
is "$partial" "" "b's pool holds no partial image"
# What turtled's cleanup retry does once the peer is back (unless the L1
# runs on b from them: the migration was not stopped).
if [ -z "$(domains b)" ]; then
    for v in l1-vmlinuz l1-initrd; do
        testhost_virsh b vol-delete --pool turtles-images "$v" >/dev/null 2>&1
    done
fi

# ---- the live migration a -> b ------------------------------------------------------

home_a || bail "cannot bring the L1 home to a before the a -> b case"
# It must copy the images: b's pool has none.
for v in l1-vmlinuz l1-initrd; do
    testhost_virsh b vol-delete --pool turtles-images "$v" >/dev/null 2>&1
done
# Unlimited, 512 MiB of L1 move in under 500 ms, before the first progress
# poll; at 50 MiB/s there are a few.
set_speed a 50
hb_before=$(last_hb "$console_a")
"$tool" --migrate-uri "tcp://$addr_b" all "$uri_a" "$uri_b" "$dom" >"$work/mig.out" 2>"$work/mig.err"
ok $? "live migration a -> b succeeds" || show_failure "$work/mig.out" "$work/mig.err"
hb_a=$(last_hb "$console_a")
note "$(grep -v '^progress' "$work/mig.out")" "last heartbeat on a: $hb_a (before: $hb_before)"

grep -q '^copied l1-vmlinuz$' "$work/mig.out" && grep -q '^copied l1-initrd$' "$work/mig.out"
ok $? "both images copied into b's pool"
cmp -s "$kernel" "$state_b/pools/images/l1-vmlinuz" && cmp -s "$initrd" "$state_b/pools/images/l1-initrd"
ok $? "b's copies are byte for byte the images"
is "$(field console "$work/mig.out")" "$console_b" "the console log moves to b's <state>/consoles"
grep -q '^progress memory [0-9]* [1-9][0-9]* [1-9]' "$work/mig.out"
ok $? "memory progress reported with bytes done and total" || diag "$(grep progress "$work/mig.out")"
grep -q '^progress done 100 ' "$work/mig.out"
ok $? "progress ends with done 100"
result=$(field result "$work/mig.out")
[[ $result =~ ^total_ms=([0-9]+)\ downtime_ms=([0-9]+)\ bytes=([0-9]+)$ ]] &&
    [ "${BASH_REMATCH[1]}" -gt 0 ] && [ "${BASH_REMATCH[2]}" -gt 0 ] && [ "${BASH_REMATCH[3]}" -gt 0 ]
ok $? "result has total, downtime and bytes > 0 ($result)"

is "$(domains a)" "" "a has no domain left (undefined after success)"
is "$(domstate b)" running "the L1 runs on b"
testhost_virsh b dominfo "$dom" 2>/dev/null | grep -q '^Persistent: *yes'
ok $? "and is persistent there"
testhost_virsh b dumpxml --inactive "$dom" >"$work/b.xml" 2>/dev/null
grep -q "<kernel>$state_b/pools/images/l1-vmlinuz</kernel>" "$work/b.xml" &&
    grep -q "<initrd>$state_b/pools/images/l1-initrd</initrd>" "$work/b.xml" &&
    grep -q "path='$console_b'" "$work/b.xml" && ! grep -q "$state_a" "$work/b.xml"
ok $? "b's definition names b's volumes and console, nothing of a" || diag "$(grep -E 'kernel|initrd|path=' "$work/b.xml")"

wait_hb_above "$console_b" 0 "$hb_timeout"
ok $? "L2 heartbeats on b's console"
hb_b_first=$(heartbeats "$console_b" | head -n 1)
[ -n "$hb_b_first" ] && [ -n "$hb_a" ] && [ "$hb_b_first" -gt "$hb_a" ]
ok $? "b's first heartbeat ($hb_b_first) follows a's last ($hb_a): L2 was not restarted" ||
    diag "b's console: $(tr -d '\r' <"$console_b" | tail -n 20)"
wait_hb_above "$console_b" "$((hb_b_first + 2))" "$hb_timeout" && increasing "$console_b"
ok $? "and keeps increasing on b" || diag "b's heartbeats: $(heartbeats "$console_b" | tr '\n' ' ')"
! tr -d '\r' <"$console_b" | grep -aq 'TURTLES-L1 READY'
ok $? "L1 did not boot again on b (no READY line)"

# ---- and back b -> a ------------------------------------------------------------------

# Only when the a -> b case left the L1 on b; otherwise its checks are
# skipped (that case failed already) and the next case starts from a.
if [ "$(domstate b)" = running ]; then
    hb_b=$(last_hb "$console_b")
    "$tool" --migrate-uri "tcp://$addr_a" all "$uri_b" "$uri_a" "$dom" >"$work/back.out" 2>"$work/back.err"
    ok $? "live migration b -> a succeeds" || show_failure "$work/back.out" "$work/back.err"
    hb_b=$(last_hb "$console_b")
    grep -q '^present l1-vmlinuz$' "$work/back.out" && grep -q '^present l1-initrd$' "$work/back.out"
    ok $? "a has the images already: nothing copied"
    is "$(domstate a) / $(domains b)" "running / " "running on a again, nothing left on b"
    wait_hb_above "$console_a" "$hb_b" "$hb_timeout"
    ok $? "a's console continues past b's last heartbeat ($hb_b)"
    heartbeats "$console_a" | awk -v b="$hb_b" -v a="$hb_a" '$1 > a && $1 <= b { bad = 1 } END { exit bad }'
    ok $? "a's console has no heartbeat of b's time (a new log is appended to)"
else
    for _ in 1 2 3 4 5; do skip "the L1 does not run on b (the a -> b case failed)"; done
fi

# ---- a dead peer ------------------------------------------------------------------------

home_a || bail "cannot bring the L1 home to a before the dead-peer case"
"$tool" dest-xml "$uri_a" "$uri_b" "$dom" >"$work/dead.xml" 2>"$work/err"
ok $? "destination XML for b" || diag "$(cat "$work/err")"
sed -i 1d "$work/dead.xml" # the "console PATH" line
testhost_kill_daemon b KILL
"$tool" --migrate-uri "tcp://$addr_b" run "$uri_a" "$uri_b" "$dom" "$work/dead.xml" \
    >"$work/out" 2>"$work/err"
status=$?
[ "$status" = 1 ] && grep -q '^migrate: \[libvirt\] cannot migrate domain' "$work/err"
ok $? "migrating to b with its libvirtd dead fails" || show_failure "$work/out" "$work/err"
note "$(cat "$work/err")"
is "$(domstate a)" running "the L1 still runs on a"
hb=$(last_hb "$console_a")
wait_hb_above "$console_a" "$hb" "$hb_timeout"
ok $? "L2 keeps beating on a (past $hb)"

testhost_restart_daemon b
ok $? "b's libvirtd restarted"
"$tool" preflight "$uri_a" "$uri_b" "$dom" >/dev/null 2>&1
ok $? "preflight passes again"

# ---- copy-storage: an overlay disk's top layer moves with the L1 ---------------------

home_a || bail "cannot bring the L1 home to a before the copy-storage case"
# A data disk as turtled gives a disk-boot stack: a qcow2 overlay in
# turtles-disks on an image of turtles-images, with data in its top layer.
head -c $((16 * 1024 * 1024)) /dev/zero >"$work/base.img"
"$upload" upload "$uri_a" turtles-images data-base "$work/base.img" >"$work/base.out" 2>"$work/err" &&
    "$upload" overlay "$uri_a" turtles-disks "data-$id" "$(field path "$work/base.out")" raw \
        >"$work/ovl.out" 2>>"$work/err" &&
    qemu-io -f qcow2 -c 'write -P 0xab 1M 1M' "$(field path "$work/ovl.out")" >/dev/null 2>>"$work/err" &&
    testhost_virsh a attach-disk "$dom" "$(field path "$work/ovl.out")" vdb --driver qemu \
        --subdriver qcow2 --targetbus virtio --live --config >/dev/null 2>>"$work/err"
ok $? "an overlay disk with data in its top layer attached to the L1 on a" || diag "$(cat "$work/err")"
"$tool" volumes "$uri_a" "$dom" >"$work/out" 2>"$work/err"
is "$(tr '\n' ' ' <"$work/out")" "image l1-vmlinuz image l1-initrd image data-base overlay data-$id " \
    "volumes: the images, the overlay's backing image, the overlay"

hb=$(last_hb "$console_a")
"$tool" --migrate-uri "tcp://$addr_b" --copy-storage all "$uri_a" "$uri_b" "$dom" \
    >"$work/cs.out" 2>"$work/cs.err"
ok $? "live migration a -> b with copy-storage succeeds" || show_failure "$work/cs.out" "$work/cs.err"
note "$(grep -v '^progress' "$work/cs.out")"
grep -q '^copied data-base$' "$work/cs.out" && grep -q "^overlay-created data-$id\$" "$work/cs.out"
ok $? "the backing image copied, the overlay pre-created on b"
is "$(domstate b) / $(domains a)" "running / " "the L1 runs on b, nothing left on a"
ovl_b=$state_b/pools/disks/data-$id
qemu-io -U -r -f qcow2 -c 'read -P 0xab 1M 1M' -c 'read -P 0 0 1M' "$ovl_b" >"$work/io.out" 2>&1 &&
    ! grep -q 'Pattern verification failed' "$work/io.out"
ok $? "b's overlay holds the top layer's data over the copied image" || diag "$(cat "$work/io.out")"
is "$(qemu-img info -U --output=json "$ovl_b" | sed -n 's/.*"backing-filename": "\(.*\)".*/\1/p')" \
    "$state_b/pools/images/data-base" "b's overlay is backed by b's copy of the image"
wait_hb_above "$console_b" "$hb" "$hb_timeout"
ok $? "L2 keeps beating on b (past $hb on a)"

testhost_virsh b destroy "$dom" >/dev/null 2>&1
testhost_virsh b undefine "$dom" >/dev/null 2>&1
is "$(domains a)$(domains b)" "" "cleanup leaves no domain on either host"
