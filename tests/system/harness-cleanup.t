#!/bin/bash
# Interrupting a system test must leave nothing behind.  Runs nested-smoke.t,
# waits until its L1 qemu runs (mid-boot), then
#   - sends SIGINT to its process group, as Ctrl-C in a terminal does, and
#   - sends SIGTERM to the script alone, as a CI timeout or `kill` does,
# and checks each time that it exits with 128+signal and leaves no libvirtd,
# no qemu, no holder of a network namespace (its host's, the switch), no
# private dir, no mount of its dirs and no interface in this machine's
# network namespace.
#
#   TURTLES_BUILD=build tests/system/harness-cleanup.t

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/testhost.sh
. "$here/../lib/testhost.sh"

smoke=$here/nested-smoke.t
[ -x "$TURTLES_BUILD/tests/tools/stack-xml" ] ||
    skip_all "$TURTLES_BUILD/tests/tools/stack-xml not built (make test-bins)"
if [ ! -f "$TURTLES_BUILD/l1/vmlinuz" ] || [ ! -f "$TURTLES_BUILD/l1/initrd.img" ]; then
    skip_all "reference L1 image not built (make l1-image)"
fi

plan 16

# libvirtd and qemu processes of the whole machine, the system's included:
# the before/after difference is what a run started.
daemons_and_qemu() {
    { pgrep -x libvirtd; pgrep qemu-system; } | sort -n
}

# This machine's network interfaces, by name.
root_links() {
    ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
}

# "pid:start-time" (field 22 of /proc/PID/stat), so that a recycled pid is
# not mistaken for the process we saw.
identity() {
    local pid=$1 stat
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo "$pid:${20}"
}

still_alive() {
    local id pid
    for id in "$@"; do
        pid=${id%%:*}
        [ "$(identity "$pid")" = "$id" ] && echo "$pid($(cat "/proc/$pid/comm" 2>/dev/null))"
    done
}

# run_interrupted SIGNAL HOW: HOW is "group" (Ctrl-C) or "script".
run_interrupted() {
    local sig=$1 how=$2 work out marker before pid deadline qemu ids="" p status
    # The child's private dirs go under $work, so that everything it creates
    # is marked by this name; its output and saved logs go beside it.
    work=$(mktemp -d "${TMPDIR:-/tmp}/turtles-cleanup.XXXXXX")
    out=$work.out
    marker="/${work##*/}/"
    before=$(daemons_and_qemu)
    links_before=$(root_links)

    # Job control gives the child its own process group (what a terminal's
    # Ctrl-C is sent to) and keeps SIGINT from being ignored, as it is for
    # background commands of a non-interactive shell.  env resets it too
    # when whoever started this test ignored it (nohup, a script's
    # background job): bash cannot trap a signal that was ignored on entry.
    set -m
    TESTHOST_TMPDIR=$work TURTLES_LOG_DIR=$work.logs env --default-signal=INT "$smoke" >"$out" 2>&1 &
    pid=$!
    set +m
    child=$pid

    # Mid-boot: as soon as the child's host runs the domain's qemu (not one
    # of the short-lived qemu that libvirt runs to probe capabilities).
    deadline=$((SECONDS + 120))
    qemu=""
    while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$pid" 2>/dev/null; do
        # Not while `virsh start` runs: virsh survives a SIGINT (it ends
        # with an error of its own), and bash then drops the signal.
        grep -q '^ok [0-9]* - virsh start' "$out" || { sleep 0.2; continue; }
        for p in $(testhost_pids_marked "$marker"); do
            tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q 'qemu-system.* -name guest=' && qemu=$p
        done
        [ -n "$qemu" ] && break
        sleep 0.2
    done
    [ -n "$qemu" ]
    ok $? "SIG$sig ($how): nested-smoke's L1 qemu is running" ||
        diag "nested-smoke output:" "$(cat "$out")"
    for p in $(testhost_pids_marked "$marker"); do
        ids="$ids $(identity "$p")"
    done
    note "sending SIG$sig to the $how; its processes (pid:start time):$ids"

    if [ "$how" = group ]; then
        kill -"$sig" -- -"$pid"
    else
        kill -"$sig" "$pid"
    fi
    deadline=$((SECONDS + 90))
    while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$pid" 2>/dev/null; do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        diag "nested-smoke still runs 90 s after SIG$sig; killing it"
        kill -KILL -- -"$pid" 2>/dev/null
    fi
    wait "$pid"
    status=$?
    is "$status" "$(($(kill -l "$sig") + 128))" "SIG$sig ($how): nested-smoke exits with 128+SIG$sig" ||
        diag "nested-smoke output:" "$(cat "$out")"

    local left new ours=""
    # shellcheck disable=SC2086
    left=$(still_alive $ids)
    [ -z "$left" ]
    ok $? "SIG$sig ($how): none of its libvirtd/qemu processes survives" || diag "alive: $left"

    # Anything new since the start that is ours: in a namespace with our
    # mounts, or naming our dir on its command line (a qemu gone astray).
    new=$(comm -13 <(echo "$before") <(daemons_and_qemu))
    [ -n "$new" ] && note "new since the start, ours or not:" "$(ps -o pid,stat,lstart,args -p "$(echo "$new" | paste -sd,)")"
    for p in $new; do
        if testhost_pids_marked "$marker" | grep -qx "$p" ||
            tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$marker"; then
            ours="$ours $p($(cat "/proc/$p/comm" 2>/dev/null))"
        fi
    done
    [ -z "$ours" ]
    ok $? "SIG$sig ($how): no libvirtd/qemu started by it remains" ||
        diag "ours:$ours"

    # The holders of its network namespaces name its dir on their command line.
    left=$(_testhost_pids_from_paths "$(grep -laF -- "$marker" /proc/[0-9]*/cmdline 2>/dev/null)")
    [ -z "$left" ]
    ok $? "SIG$sig ($how): no process naming its dirs remains (network namespaces, switch)" ||
        diag "left: $(ps -o pid,args -p "$(echo "$left" | paste -sd,)")"

    is "$(root_links)" "$links_before" "SIG$sig ($how): this machine's interfaces are as before"

    left=$(find "$work" -mindepth 1 -maxdepth 1 2>/dev/null)
    [ -z "$left" ]
    ok $? "SIG$sig ($how): no private dir remains" || diag "left: $left"

    left=$(grep -F "$marker" /proc/self/mountinfo; testhost_pids_marked "$marker")
    [ -z "$left" ]
    ok $? "SIG$sig ($how): no mount of its dirs in any mount namespace" || diag "left: $left"

    # Whatever failed above must not leak into the next run or the machine.
    # shellcheck disable=SC2046
    kill -KILL $(testhost_pids_marked "$marker") 2>/dev/null
    rm -rf -- "$work" "$out" "$work.logs"
    child=""
}

# If this test itself is interrupted, its child gets the same treatment.
child=""
trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

run_interrupted INT group
run_interrupted TERM script
