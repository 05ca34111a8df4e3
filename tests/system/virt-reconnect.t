#!/bin/bash
# hvcore/virt against a real libvirtd that dies and comes back: a private test
# host (tests/lib/testhost.sh) is watched by tests/tools/virt-watch, which
# must see lifecycle events, the loss of the daemon (SIGKILL) (and a call on
# the lost connection must be reported as a loss), its own
# reconnection once the daemon is restarted on the same port and dirs, and
# events again after that, all without a word on stderr.
#
#   TURTLES_BUILD=build tests/integration/virt-reconnect.t

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/testhost.sh
. "$here/../lib/testhost.sh"

watch_bin=$TURTLES_BUILD/tests/tools/virt-watch
[ -x "$watch_bin" ] || skip_all "$watch_bin not built (make test-bins)"
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
command -v libvirtd >/dev/null || skip_all "libvirtd is not installed"
command -v qemu-system-x86_64 >/dev/null || skip_all "qemu-system-x86_64 is not installed"

# Seconds to wait for a line of virt-watch; a restarted libvirtd answers
# within TESTHOST_START_TIMEOUT, then we retry at most every second.
wait_s=15

plan 19
testhost_install_cleanup_trap

work=$(mktemp -d "${TMPDIR:-/tmp}/turtles-virt-reconnect.XXXXXX") || bail "mktemp failed"
out=$work/watch.out
err=$work/watch.err
watch_pid=""

# Our cleanup first, then the harness's; $? is kept for the latter.
cleanup() {
    local status=$?
    [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null
    rm -rf -- "$work"
    return "$status"
}
trap 'cleanup; _testhost_on_exit' EXIT

# The number of lines of virt-watch's output equal to / starting with $1.
count_lines() {
    grep -c -- "$1" "$out" 2>/dev/null
}

# wait_line PATTERN N: until N lines match PATTERN (a grep regex) or wait_s.
wait_line() {
    local pattern=$1 want=${2:-1} deadline=$((SECONDS + wait_s))
    while [ "$SECONDS" -lt "$deadline" ]; do
        [ "$(count_lines "$pattern")" -ge "$want" ] && return 0
        kill -0 "$watch_pid" 2>/dev/null || break
        sleep 0.1
    done
    diag "virt-watch output so far:" "$(cat "$out" 2>/dev/null)"
    diag "its stderr:" "$(cat "$err" 2>/dev/null)"
    return 1
}

# Domain XML for a diskless qemu guest: defining it starts nothing.
domain_xml() {
    cat <<EOF
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
</domain>
EOF
}

define_and_undefine() {
    local name=$1 xml=$work/$1.xml
    domain_xml "$name" >"$xml"
    testhost_virsh w define "$xml" >/dev/null &&
        wait_line "^event $name defined 0/" &&
        testhost_virsh w undefine "$name" >/dev/null &&
        wait_line "^event $name undefined 1/"
}

# kill_daemon SIGNAL: libvirtd dies as a crash would; restart_daemon: it comes back.
kill_daemon() { testhost_kill_daemon w "$1"; }
restart_daemon() { testhost_restart_daemon w; }

testhost_start w
ok $? "private test host w answers at ${TESTHOST_W_URI:-?}" || bail "no test host"
# Its launcher is a job of ours: bash must not announce the death we cause.
disown -a
uri=$TESTHOST_W_URI

"$watch_bin" --retry-initial-ms 200 --retry-max-ms 1000 --timeout 120 --exit-with-parent \
    --check-after-loss "$uri" >"$out" 2>"$err" &
watch_pid=$!
wait_line '^connected$'
ok $? "virt-watch connects to $uri" || bail "virt-watch did not connect"

define_and_undefine before
ok $? "define and undefine give DEFINED then UNDEFINED events"
is "$(grep '^event' "$out" | cut -d' ' -f2-3 | tr '\n' ' ')" "before defined before undefined " \
    "the events came in order, with the domain's name"

kill_daemon KILL
ok $? "libvirtd killed (SIGKILL)"
wait_line '^disconnected '
ok $? "virt-watch reports the loss: $(grep -m1 '^disconnected' "$out")"
wait_line '^after-loss '
is "$(grep -m1 '^after-loss ' "$out")" "after-loss failed dead" \
    "a call on the lost connection fails and hv_virt_report_failure calls it dead"

# While the daemon is down, attempts fail quietly: no 'connected' line.
sleep 1.5
is "$(count_lines '^connected$')" 1 "no reconnection while libvirtd is down"
kill -0 "$watch_pid" 2>/dev/null
ok $? "virt-watch keeps running while libvirtd is down"

restart_daemon
ok $? "libvirtd restarted on the same port and dirs" || bail "could not restart libvirtd"
wait_line '^connected$' 2
ok $? "virt-watch reconnects by itself"

define_and_undefine after
ok $? "events arrive again after the reconnection"

# A clean stop, as a package upgrade does: the same again.
kill_daemon TERM
ok $? "libvirtd stopped (SIGTERM)"
wait_line '^disconnected ' 2
ok $? "virt-watch reports the second loss: $(grep '^disconnected' "$out" | tail -n 1)"
restart_daemon
ok $? "libvirtd restarted again" || bail "could not restart libvirtd"
wait_line '^connected$' 3
ok $? "virt-watch reconnects again"
define_and_undefine again
ok $? "events arrive after the second reconnection"

kill -TERM "$watch_pid"
wait "$watch_pid"
ok $? "virt-watch exits 0 on SIGTERM"
watch_pid=""
is "$(cat "$err")" "" "nothing on stderr: libvirt's error printing is silenced"
