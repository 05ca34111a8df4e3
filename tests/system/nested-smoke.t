#!/bin/bash
# System smoke test of the whole nesting chain: a private libvirt daemon boots
# the reference L1 image under QEMU TCG with the domain XML hvcore/domain
# builds (through tests/tools/stack-xml), L1's KVM comes up with nested SVM and
# NPT, and the L2 that L1 runs keeps beating.
#
#   TURTLES_BUILD=build tests/system/nested-smoke.t
#
# TURTLES_TEST_BACKEND=kvm builds the domain for the kvm backend (on a real
# KVM host, such as a host VM: tests/hostvm/stacks-kvm.long).
# TURTLES_BOOT_TIMEOUT (s, default 180) bounds the wait for L1's READY line;
# the three L2 heartbeats must then come within 90 s.

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/testhost.sh
. "$here/../lib/testhost.sh"

stack_xml=$TURTLES_BUILD/tests/tools/stack-xml
kernel=$TURTLES_BUILD/l1/vmlinuz
initrd=$TURTLES_BUILD/l1/initrd.img
[ -x "$stack_xml" ] || skip_all "$stack_xml not built (make test-bins)"
if [ ! -f "$kernel" ] || [ ! -f "$initrd" ]; then
    skip_all "reference L1 image not built (make l1-image)"
fi
# libvirt wants absolute paths, and TURTLES_BUILD is usually relative.
kernel=$(realpath "$kernel")
initrd=$(realpath "$initrd")

boot_timeout=${TURTLES_BOOT_TIMEOUT:-180}
hb_timeout=90

plan 10
testhost_install_cleanup_trap

# Lines of the console log without the serial console's CRs.
console() {
    tr -d '\r' <"$console_log" 2>/dev/null
}

# The last console lines and the domain state, to explain a failure.
diag_console() {
    diag "last lines of the console ($console_log):"
    diag "$(console | tail -n 25)"
    diag "domain state: $(testhost_virsh l0 domstate "$dom" 2>&1)"
}

testhost_start l0
ok $? "private test host l0 answers at ${TESTHOST_L0_URI:-?} with its own host UUID" ||
    bail "no test host"

id=$(cat /proc/sys/kernel/random/uuid)
console_log=$TESTHOST_L0_CONSOLE_DIR/smoke.log
xml=$("$stack_xml" --backend "${TURTLES_TEST_BACKEND:-tcg}" --id "$id" --name smoke --tenant test \
    --vcpus 1 --memory-mib 1024 --kernel "$kernel" --initrd "$initrd" \
    --cmdline 'console=ttyS0' --console-log "$console_log" 2>&1)
rc=$?
ok $rc "stack-xml builds the L1 domain XML" || bail "stack-xml failed: $xml"
dom=$(printf '%s\n' "$xml" | sed -n 's:.*<name>\(.*\)</name>.*:\1:p' | head -n 1)

out=$(printf '%s\n' "$xml" | testhost_virsh l0 define /dev/stdin 2>&1)
ok $? "virsh define $dom" || bail "define failed: $out"

out=$(testhost_virsh l0 start "$dom" 2>&1)
ok $? "virsh start $dom" || bail "start failed: $out"

# L1 prints READY once its kvm_amd is loaded; under TCG this takes a while.
ready=""
deadline=$((SECONDS + boot_timeout))
while [ "$SECONDS" -lt "$deadline" ]; do
    ready=$(console | grep -o 'TURTLES-L1 READY.*' | head -n 1)
    [ -n "$ready" ] && break
    [ "$(testhost_virsh l0 domstate "$dom" 2>/dev/null)" = running ] || break
    sleep 1
done
[ -n "$ready" ]
if ! ok $? "L1 boots and prints READY within ${boot_timeout} s"; then
    diag_console
    bail "L1 never became ready"
fi
note "$ready"

# The fields that prove L1 got hardware-style virtualization from L0.
has_field() {
    case " $ready " in *" $1 "*) return 0 ;; esac
    return 1
}
has_field nested=1
ok $? "L1 reports nested=1 (kvm_amd loaded with nesting)" || diag "READY line: $ready"
has_field virt=svm && has_field npt=Y && has_field kvm=ok
ok $? "L1 reports virt=svm npt=Y kvm=ok (L2 runs on NPT, not shadow paging)" ||
    diag "READY line: $ready" "$(console | grep -o 'TURTLES-L1 REASON.*')"

# L2 heartbeats counted from READY on: at least three, each number higher
# than the one before.
heartbeats() {
    console | sed -n '/TURTLES-L1 READY/,$p' | grep -o 'TURTLES-L2 HB [0-9]*' | awk '{ print $3 }'
}
deadline=$((SECONDS + hb_timeout))
count=0
while [ "$SECONDS" -lt "$deadline" ]; do
    count=$(heartbeats | wc -l)
    [ "$count" -ge 3 ] && break
    sleep 1
done
increasing=$(heartbeats | awk 'NR > 1 && $1 <= prev { bad = 1 } { prev = $1 } END { print bad ? "no" : "yes" }')
[ "$count" -ge 3 ] && [ "$increasing" = yes ]
if ok $? "at least 3 strictly increasing L2 heartbeats within ${hb_timeout} s"; then
    note "$(console | grep -o 'TURTLES-L2 HB.*' | tail -n 1)"
else
    diag "heartbeats seen: $(heartbeats | tr '\n' ' ')(strictly increasing: $increasing)"
    diag_console
fi

testhost_virsh l0 destroy "$dom" >/dev/null 2>&1
out=$(testhost_virsh l0 undefine "$dom" 2>&1)
rc=$?
left=$(testhost_virsh l0 list --all --name 2>&1)
[ "$rc" -eq 0 ] && [ -z "$left" ]
ok $? "destroy + undefine leave no domain on l0" ||
    diag "undefine: $out" "domains left: $left"

# Stopping must leave nothing behind: no process in the host's namespace
# (which takes its bind mounts with it) and no private dir.
dir=$(testhost_dir l0)
testhost_stop l0
rc=$?
left=$(testhost_pids l0)
[ "$rc" -eq 0 ] && [ -z "$left" ] && { [ ! -e "$dir" ] || [ "${TURTLES_KEEP_LOGS:-0}" = 1 ]; }
ok $? "testhost_stop leaves no process, mount or dir of l0" ||
    diag "stop status $rc; processes left: ${left:-none}; dir left: $([ -e "$dir" ] && echo "$dir")"
