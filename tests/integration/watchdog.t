#!/usr/bin/env bash
# The systemd watchdog (WatchdogSec=): with WATCHDOG_USEC set, turtled sends
# WATCHDOG=1 to NOTIFY_SOCKET every half period while the main loop, the
# worker pool and the store answer, and stops when one of them hangs (the
# test hook POST /v1/test/hang wedges each), so that systemd restarts it.  A
# pool busy with long operations is not hung.  A datagram socket stands in
# for systemd's notify socket: a small listener writes each message to a file.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

command -v python3 >/dev/null || skip_all "python3 is missing"

PERIOD_S=1  # WATCHDOG_USEC: pings every half second
SETTLE_S=2  # after a hang began, a ping already decided may still go out
WATCH_S=4   # then none may come for this long (four periods)

td_init

notify_sock=$TD_DIR/notify.sock
notify_log=$TD_DIR/notify.log
: >"$notify_log"
td_bg_start notify python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536).replace(b"\n", b" ") + b"\n")
' "$notify_sock" "$notify_log"
poll_until 60 test -S "$notify_sock" || bail "the notify listener did not start"

pings() { grep -c '^WATCHDOG=1' "$notify_log"; }
pings_above() { [ "$(pings)" -gt "$1" ]; }

# start_watched [TURTLED-ARGS...]: a turtled with the watchdog on; waits for
# READY=1 and two pings after it.
start_watched() {
    local before
    before=$(pings)
    export NOTIFY_SOCKET=$notify_sock WATCHDOG_USEC=$((PERIOD_S * 1000000))
    td_start "$@" || bail "turtled did not start"
    unset NOTIFY_SOCKET WATCHDOG_USEC
    poll_until 30 grep -q "^READY=1" "$notify_log" || bail "no READY=1"
    poll_until 30 pings_above $((before + 1))
}

# hang WHAT: the hook, as the operator; 204 once the hang has begun (sets
# STATUS; plain curl: a test hook's answer is no part of the API contract).
hang() {
    STATUS=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 --unix-socket "$TD_SOCK" \
        -X POST --json "{\"what\":\"$1\",\"seconds\":600}" http://localhost/v1/test/hang)
}

# Asserts that no ping comes for WATCH_S seconds (after SETTLE_S) and that
# turtled is still alive, then that its log names what hangs.
assert_silent() {
    local what=$1 logged=$2 mark
    sleep "$SETTLE_S"
    mark=$(pings)
    sleep "$WATCH_S"
    is "$(pings)" "$mark" "$what: no WATCHDOG=1 in the ${WATCH_S} s after the hang began"
    _td_alive "$TD_PID"
    ok $? "$what: turtled is still running (the service manager is the one to kill it)"
    like "$(grep 'withholding WATCHDOG=1' "$TD_LOG")" "$logged" \
        "$what: the log names what did not answer"
    # Once per change of what is silent (the main loop may wait for the
    # store too), not at every tick (there were a dozen).
    [ "$(grep -c 'withholding WATCHDOG=1' "$TD_LOG")" -le 2 ]
    ok $? "$what: ... once or twice, not at every tick"
}

# ---- a healthy turtled pings -----------------------------------------------------------
start_watched
ok $? "READY=1, then WATCHDOG=1 repeatedly"
is "$(grep -m1 '^READY=1' "$notify_log")" "READY=1 STATUS=serving on $TD_SOCK, backend test" \
    "READY=1 comes with STATUS naming the API socket"

# ---- a pool busy with long operations is not hung ------------------------------------
# One worker, a queue behind it: no job moves for longer than the period.
td_kill9
printf '[turtled]\nworkers = 1\n' >"$TD_DIR/one-worker.conf"
start_watched --config "$TD_DIR/one-worker.conf"
td_sleep_op "" 60 || bail "no sleep operation"
first=$OP_ID
td_sleep_op "" 60 || bail "no sleep operation"
second=$OP_ID
td_wait_status "$first" running 10 || bail "the first sleep did not start"
mark=$(pings)
poll_until 30 pings_above $((mark + 2 * PERIOD_S + 1))
ok $? "a worker busy for longer than the period with a job queued: the pings go on"
api_op GET "/v1/operations/$second"
is "$(jb .operation.status)" pending "(the second operation was still queued meanwhile)"

# ---- hangs ------------------------------------------------------------------------------
td_kill9
start_watched
hang main-loop
is "$STATUS" 204 "the main-loop hang begins"
assert_silent "main loop" "the main loop has not run its sources"
td_kill9

start_watched
hang store
is "$STATUS" 204 "the store hang begins"
assert_silent "store" "the store has not answered"
td_kill9

start_watched
hang workers
is "$STATUS" 204 "the worker pool hang begins (its lock held)"
assert_silent "worker pool" "the operation worker pool's lock has not been free"
td_kill9

# ---- not asked for: nothing runs ----------------------------------------------------------
before=$(pings)
export NOTIFY_SOCKET=$notify_sock
td_start || bail "turtled did not start"
unset NOTIFY_SOCKET
poll_until 30 grep -q "^READY=1" "$notify_log" || bail "no READY=1"
sleep "$WATCH_S"
is "$(pings)" "$before" "without WATCHDOG_USEC no WATCHDOG=1 in ${WATCH_S} s"
td_stop TERM
is "$TD_EXIT" 0 "turtled exits 0 on SIGTERM"
grep -q "^STOPPING=1" "$notify_log"
ok $? "STOPPING=1 on SIGTERM"

before=$(pings)
export NOTIFY_SOCKET=$notify_sock WATCHDOG_USEC=$((PERIOD_S * 1000000)) WATCHDOG_PID=1
td_start || bail "turtled did not start"
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID
sleep "$WATCH_S"
is "$(pings)" "$before" "WATCHDOG_PID of another process: no WATCHDOG=1 in ${WATCH_S} s"

td_done
