#!/bin/bash
# make demo stops everything it started.  Runs tests/demo/demo three times,
# each with its private dirs (its own, its libvirt host's) under a dir of
# this test, which marks every process it starts (turtled and QEMU name it on
# their command line, the private libvirtd and its helpers in their mounts):
#   - to the end: it exits 0 and the L2 beat;
#   - Ctrl-C (SIGINT to its process group) once the L1's QEMU runs and the
#     demo follows its console;
#   - SIGTERM to the script alone at the same point, as a CI timeout
#     or `kill` does;
# and checks each time that no process of its own and no private dir remain.
#
#   TURTLES_BUILD=build tests/system/demo.t

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/testhost.sh
. "$here/../lib/testhost.sh"

build=$(cd "$TURTLES_BUILD" && pwd)
for f in turtled turtlectl l1/vmlinuz l1/initrd.img; do
    [ -e "$build/$f" ] || skip_all "$TURTLES_BUILD/$f is missing (make all l1-image)"
done
[ "$(id -u)" = 0 ] || skip_all "the demo runs as root"

plan 12

# Processes (not this test's) whose command line or mounts name MARKER.
marked() {
    local marker=$1 p
    # The grep that reads every command line names MARKER itself: only
    # processes still there once it is done count.
    for p in $({
        grep -laF -- "$marker" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3
        testhost_pids_marked "$marker"
    } | sort -un); do
        [ "$p" != "$$" ] && [ "$p" != "$BASHPID" ] && [ -e "/proc/$p" ] && echo "$p"
    done
}

describe() {
    [ -n "$1" ] && ps -o pid,args -p "$(echo "$1" | paste -sd,)"
}

# The L1's QEMU, once libvirt runs it: a qemu-system naming MARKER (its
# kernel comes from turtled's pool under the demo's dir).
qemu_of() {
    local p
    for p in $(marked "$1"); do
        { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q '^[^ ]*qemu-system.* -name guest=' && echo "$p"
    done
}

# check_clean WHAT WORK: nothing of the run remains.
check_clean() {
    local what=$1 work=$2 left
    left=$(marked "/${work##*/}/")
    [ -z "$left" ]
    ok $? "$what: no process of its own remains (turtled, turtlectl, libvirtd, QEMU, namespace holders)" ||
        diag "left:" "$(describe "$left")"
    left=$(find "$work" -mindepth 1 -maxdepth 1 2>/dev/null)
    [ -z "$left" ]
    ok $? "$what: no private dir remains" || diag "left: $left"
    # Whatever failed must not leak into the next run or the machine.
    left=$(marked "/${work##*/}/")
    # shellcheck disable=SC2086
    [ -n "$left" ] && kill -KILL $left 2>/dev/null
    rm -rf -- "$work"
}

# exec: started with &, the pid is the demo's own, not a subshell's that a
# SIGTERM would end while the demo ran on.  env gives the demo SIGINT back
# when whoever started this test ignored it (nohup, a script's background
# job): bash cannot trap a signal that was ignored on entry.
run_demo() {
    TMPDIR=$1 TESTHOST_TMPDIR=$1 TURTLES_SRCDIR=$src TURTLES_BUILD=$build DEMO_HEARTBEATS=2 \
        exec env --default-signal=INT "$src/tests/demo/demo"
}

child=""
# If this test itself is interrupted, its child gets the same treatment.
trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- to the end --------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/turtles-demo-test.XXXXXX")
out=$work.out
(run_demo "$work") >"$out" 2>&1
status=$?
is "$status" 0 "the demo finishes" || diag "demo output (last 40 lines):" "$(tail -n 40 "$out")"
grep -q 'TURTLES-L2 HB' "$out" && grep -q '^Demo finished' "$out"
ok $? "its L1 came up and its L2 beat" || diag "demo output (last 40 lines):" "$(tail -n 40 "$out")"
check_clean "finished" "$work"
rm -f -- "$out"

# ---- interrupted -------------------------------------------------------------
# run_interrupted SIGNAL HOW: HOW is "group" (Ctrl-C) or "script".
run_interrupted() {
    local sig=$1 how=$2 work out pid qemu="" deadline status
    work=$(mktemp -d "${TMPDIR:-/tmp}/turtles-demo-test.XXXXXX")
    out=$work.out
    # Job control gives the demo its own process group (what a terminal's
    # Ctrl-C goes to) and keeps SIGINT from being ignored, as it is for
    # background commands of a non-interactive shell.
    set -m
    run_demo "$work" >"$out" 2>&1 &
    pid=$!
    set +m
    child=$pid

    deadline=$((SECONDS + 180))
    while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$pid" 2>/dev/null; do
        # While the demo follows the console (step 6) it waits in `wait`,
        # where a signal runs its trap at once; in later steps a foreground
        # child that survives the signal would make bash drop it.
        grep -q '==> \[6\]' "$out" && qemu=$(qemu_of "/${work##*/}/")
        [ -n "$qemu" ] && break
        sleep 0.2
    done
    [ -n "$qemu" ]
    ok $? "SIG$sig ($how): the demo's L1 QEMU runs" || diag "demo output:" "$(tail -n 40 "$out")"

    if [ "$how" = group ]; then
        kill -"$sig" -- -"$pid"
    else
        kill -"$sig" "$pid"
    fi
    # The demo's cleanup waits up to 30 s for turtled, then its host's stop.
    deadline=$((SECONDS + 120))
    while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$pid" 2>/dev/null; do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        diag "the demo still runs 120 s after SIG$sig; killing it"
        kill -KILL -- -"$pid" 2>/dev/null
    fi
    wait "$pid"
    status=$?
    child=""
    is "$status" "$(($(kill -l "$sig") + 128))" "SIG$sig ($how): the demo exits with 128+SIG$sig" ||
        diag "demo output:" "$(tail -n 40 "$out")"
    check_clean "SIG$sig ($how)" "$work"
    rm -f -- "$out"
}

run_interrupted INT group
run_interrupted TERM script
