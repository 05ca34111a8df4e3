#!/usr/bin/env bash
# Socket activation (turtled.socket): turtled serves on the sockets the
# service manager passes (sd_listen_fds) instead of making its own.
# systemd-socket-activate stands in for systemd: it listens, and on the first
# connection execs turtled with the sockets (LISTEN_FDS), as a socket unit
# with Accept=no does.  Checked: the request that started turtled is
# answered; the operator on the passed UNIX socket and a tenant on the passed
# TCP socket; passed sockets win over --socket/--listen; the socket file
# outlives turtled (it is the activator's); a descriptor turtled does not
# serve (a datagram socket, a second UNIX socket) stops it with a message.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

command -v systemd-socket-activate >/dev/null ||
    skip_all "systemd-socket-activate is missing (package systemd)"
command -v python3 >/dev/null || skip_all "python3 is missing"

td_init

# A free loopback port (the activator cannot take port 0).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Ports process $1 listens on over TCP (IPv4), from /proc.
listening_ports() {
    local fd target inodes=""
    for fd in /proc/"$1"/fd/*; do
        target=$(readlink "$fd" 2>/dev/null) || continue
        case $target in socket:\[*\]) inodes="$inodes ${target//[!0-9]/}" ;; esac
    done
    awk -v inodes="$inodes" '
        BEGIN { n = split(inodes, list, " "); for (i = 1; i <= n; i++) want[list[i]] = 1 }
        NR > 1 && $4 == "0A" && ($10 in want) { split($2, a, ":"); print a[2] }
    ' /proc/net/tcp | while read -r hex; do echo $((16#$hex)); done | sort -n | tr '\n' ' '
}

# activate LOG ACTIVATOR-ARGS... -- TURTLED-ARGS...: starts the activator in
# the background (TD_PID: it becomes turtled once it execs).
activate() {
    local log=$1 args=()
    shift
    while [ "$1" != -- ]; do
        args+=("$1")
        shift
    done
    shift
    TD_STARTS=$((TD_STARTS + 1))
    TD_LOG=$log
    : >"$TD_LOG"
    # The activator hands its child only LISTEN_* and what --setenv names:
    # the sanitizers' options (their suppressions) must be named to get through.
    local var
    for var in TSAN_OPTIONS ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
        [ -n "${!var+set}" ] && args+=("--setenv=$var")
    done
    systemd-socket-activate "${args[@]}" "$TD_BIN" "$@" >>"$TD_LOG" 2>&1 &
    TD_PID=$!
}

td_gone() { ! _td_alive "$TD_PID"; }

# Waits for the activated process to end; sets TD_EXIT.
wait_exit() {
    if poll_until 30 td_gone; then
        wait "$TD_PID"
        TD_EXIT=$?
    else
        kill -KILL "$TD_PID" 2>/dev/null
        wait "$TD_PID" 2>/dev/null
        TD_EXIT=timeout
    fi
    TD_PID=""
}

# ---- the first request starts turtled and is answered -----------------------------
port=$(free_port)
api_sock=$TD_DIR/api.sock
activate "$TD_DIR/turtled.1.log" -l "$api_sock" -l "127.0.0.1:$port" --fdname=api:http -- \
    --backend test --test-hooks --state-dir "$TD_STATE" --socket "$TD_DIR/own.sock" \
    --listen 127.0.0.1:0
poll_until 30 test -S "$api_sock" || bail "the activator did not make $api_sock"
! grep -q Execing "$TD_LOG"
ok $? "turtled has not started before the first request"
first=$(curl -sS --max-time 60 --unix-socket "$api_sock" -w ' %{http_code}' http://localhost/v1 2>&1)
is "$first" '{"api_version":"1","version":"'"$("$TD_BIN" --version | awk '{print $2}')"'"} 200' \
    "the connection that started turtled is answered (GET /v1 -> 200)"
like "$(cat "$TD_LOG")" "Execing" "the activator started turtled on that connection"
like "$(cat "$TD_LOG")" "serving the API on the UNIX socket the service manager passed, api \\($api_sock\\)" \
    "turtled says it serves on the passed UNIX socket, by name and path"

# ---- operator on the passed UNIX socket, tenant on the passed TCP socket -------------
TD_SOCK=$api_sock
TD_PORT=$port
td_tenant acme
is "$STATUS" 201 "the operator (uid 0, no token) creates a tenant on the passed UNIX socket"
api_tn "$TOKEN" GET /v1/images
is "$STATUS $(jb '.images | length')" "200 0" "a tenant's token works on the passed TCP socket"
api_tn "" GET /v1/images
is_error 401 unauthorized "the passed TCP socket asks for a token like any TCP listener"

# ---- passed sockets win over --socket and --listen --------------------------------
[ ! -e "$TD_DIR/own.sock" ]
ok $? "no socket of its own at --socket while one was passed"
is "$(listening_ports "$TD_PID")" "$port " "the only TCP port it listens on is the passed one (not --listen)"
like "$(cat "$TD_LOG")" "the listen setting \\(127.0.0.1:0\\) is not used" \
    "the log says --listen is not used"

# ---- the socket file stays: it is the activator's ----------------------------------
td_stop TERM
is "$TD_EXIT" 0 "turtled exits 0 on SIGTERM"
[ -S "$api_sock" ]
ok $? "the passed socket's file is still there after turtled stopped"

# ---- descriptors turtled does not serve ------------------------------------------------
port=$(free_port)
activate "$TD_DIR/turtled.2.log" --datagram -l "127.0.0.1:$port" -- \
    --backend test --state-dir "$TD_STATE" --socket "$TD_DIR/own.sock"
poll_until 30 grep -q "Listening on" "$TD_LOG" || bail "the datagram activator did not start"
printf 'x' >"/dev/udp/127.0.0.1/$port"
wait_exit
[ "$TD_EXIT" != 0 ] && [ "$TD_EXIT" != timeout ]
ok $? "a passed datagram socket: turtled exits non-zero (exit $TD_EXIT)"
like "$(cat "$TD_LOG")" "turtled: the service manager passed descriptor 3, .*which is a datagram socket" \
    "... saying which descriptor it is and what it is"
[ ! -e "$TD_DIR/own.sock" ]
ok $? "... without serving a socket of its own instead"
_td_assert_log_clean

activate "$TD_DIR/turtled.3.log" -l "$TD_DIR/a.sock" -l "$TD_DIR/b.sock" --fdname=api:other -- \
    --backend test --state-dir "$TD_STATE" --socket "$TD_DIR/own.sock"
poll_until 30 test -S "$TD_DIR/b.sock" || bail "the activator did not make its sockets"
curl -s -o /dev/null --max-time 30 --unix-socket "$TD_DIR/a.sock" http://localhost/v1
wait_exit
[ "$TD_EXIT" != 0 ] && [ "$TD_EXIT" != timeout ]
ok $? "two passed UNIX sockets: turtled exits non-zero (exit $TD_EXIT)"
like "$(cat "$TD_LOG")" "a second UNIX socket, other \\($TD_DIR/b.sock\\), besides api" \
    "... naming both"
_td_assert_log_clean

td_done
