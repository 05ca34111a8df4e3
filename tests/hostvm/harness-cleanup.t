#!/bin/bash
# Interrupting a test that runs a host VM must leave nothing behind.  A
# child script boots a host VM (tests/lib/hostvm.sh) and runs a long command
# inside; once that command runs, the child gets
#   - SIGINT to its process group, as Ctrl-C in a terminal sends, and
#   - SIGTERM to the script alone, as a CI timeout or `kill` sends;
# each time it must exit with 128+signal and leave no QEMU, no process
# naming its dir, no mount of it and no dir.
#
#   TURTLES_BUILD=build tests/hostvm/harness-cleanup.t    (make hostvm-image first)

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/hostvm.sh
. "$here/../lib/hostvm.sh"
[ -f "$TURTLES_BUILD/hostvm/initrd.img" ] || bail "no host VM image (make hostvm-image)"

plan 10

# run_interrupted SIGNAL HOW: HOW is "group" (Ctrl-C) or "script".
run_interrupted() {
    local sig=$1 how=$2 work pid deadline status left
    work=$(mktemp -d "${TMPDIR:-/tmp}/turtles-hvcleanup.XXXXXX")
    cat >"$work.child" <<CHILD
. "$here/../lib/tap.sh"
. "$here/../lib/hostvm.sh"
hostvm_install_cleanup_trap
hostvm_start c || exit 3
hostvm_run c 600 'echo running inside; sleep 600'
CHILD
    # Job control: the child gets its own process group, and SIGINT is not
    # ignored as it is for background commands of a non-interactive shell.
    set -m
    HOSTVM_TMPDIR=$work TURTLES_LOG_DIR=$work.logs bash "$work.child" >"$work.out" 2>&1 &
    pid=$!
    set +m

    deadline=$((SECONDS + 240))
    until grep -q '^running inside' "$work.out" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.2
    done
    grep -q '^running inside' "$work.out"
    ok $? "SIG$sig ($how): the host VM runs the child's command" || diag "$(cat "$work.out")"
    [ -n "$(hostvm_pids_marked "$work/")" ]
    ok $? "SIG$sig ($how): its QEMU runs, marked by the child's dir"

    if [ "$how" = group ]; then
        kill -"$sig" -- -"$pid"
    else
        kill -"$sig" "$pid"
    fi
    deadline=$((SECONDS + 90))
    while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$pid" 2>/dev/null; do
        sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL -- -"$pid" 2>/dev/null
    wait "$pid"
    status=$?
    is "$status" "$(($(kill -l "$sig") + 128))" "SIG$sig ($how): the child exits with 128+SIG$sig" ||
        diag "$(cat "$work.out")"
    left=$(hostvm_pids_marked "$work/")
    [ -z "$left" ]
    ok $? "SIG$sig ($how): no QEMU or other process of it is left" ||
        diag "$(ps -o pid,args -p "$(echo "$left" | paste -sd,)")"
    [ -z "$(ls -A "$work")" ] && ! grep -qF "$work" /proc/self/mountinfo
    ok $? "SIG$sig ($how): its private dir is empty and nothing is mounted there" ||
        diag "$(ls -laR "$work" | head -n 20)"
    for p in $left; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$work" "$work.child" "$work.out" "$work.logs"
}

run_interrupted INT group
run_interrupted TERM script
