#!/bin/bash
# The interactive console end to end: turtled (tcg backend) on a private
# libvirt host boots the reference L1, whose init offers a shell on the
# serial port after READY.  A WebSocket client that is not our code (the
# `ws` npm package, tests/tools/ws-console.mjs) types a command into that
# shell and reads its output; a second writer gets 409; ?force=1 takes over
# and the first client gets a close frame saying so; another tenant gets
# 404; a client killed with SIGKILL leaves turtled with the threads and
# descriptors it had before; and turtlectl under tmux is interactive (raw
# mode), detaches on Ctrl-] and leaves the terminal sane.  One stack serves
# every check, to keep the wall time small.
#
#   TURTLES_BUILD=build tests/system/console-interactive.t

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
command -v node >/dev/null || skip_all "node is not installed (make deps)"
command -v tmux >/dev/null || skip_all "tmux is not installed (make deps)"
WS_CLIENT=$here/../tools/ws-console.mjs
[ -d "$here/../../node_modules/ws" ] || skip_all "the ws package is not installed (make deps)"
# shellcheck source-path=SCRIPTDIR source=../lib/stackhost.sh
. "$here/../lib/stackhost.sh"
CTL=$(realpath "$TURTLES_BUILD/turtlectl")

sh_init
sh_start || bail "turtled did not start"
td_tenant alice || bail "no tenant"
alice=$TOKEN
td_tenant bob || bail "no tenant"
bob=$TOKEN
sh_upload_reference "$alice"
ok $? "alice uploads the reference L1 kernel and initrd"

api_tn "$alice" POST /v1/stacks --json "$(sh_spec web)"
sh_wait_op "$alice" "$(jb .operation.id)" 120
is "$OP_STATUS" succeeded "stack web is created and started ($OP_ERROR)"
sh_wait_console "$alice" web 'TURTLES-L1 SHELL ready' 240
ok $? "the L1 boots (READY) and offers its shell on the serial console" ||
    bail "no shell: $(tail -n 20 <<<"$CONSOLE")"
like "$(grep -o 'TURTLES-L1 READY.*' <<<"$CONSOLE" | head -n 1)" 'nested=1' "... with nested=1"

WS_URL=ws://127.0.0.1:$TD_PORT/v1/stacks/web/console
# ws NAME MODE [ARGS...]: the client in the background, its events in $TD_DIR/NAME.out
ws_bg() {
    local name=$1
    shift
    : >"$TD_DIR/$name.out"
    td_bg_start "$name" node "$WS_CLIENT" "$@" >>"$TD_DIR/$name.out"
}
# waits (30 s) for a line matching REGEX in client NAME's events
ws_wait() {
    local deadline=$(($(now_ms) + ${3:-30000}))
    until grep -qE "$2" "$TD_DIR/$1.out"; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}
counts() {
    local threads fds
    threads=$(cat /proc/"$TD_PID"/task/*/comm 2>/dev/null | grep -cv '^pool-')
    fds=$(find "/proc/$TD_PID/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' |
        grep -cvE '/turtled\.db(-wal|-shm)?$')
    echo "fds=$fds threads=$threads"
}
# settled: (10 s at most) turtled has no more fds and threads than at the
# baseline.  Threads of GLib's worker pools ("pool-...") are not counted:
# they run operations (the delete below starts one) and come and go with
# that work, never with a session.  Nor are the store's files: its pool of
# read connections opens one more when reads overlap and keeps it idle, so
# it grows with concurrent requests (the delete's polling), never with a
# session.  No more, rather than as many: a stream slot or an idle
# connection may have gone meanwhile.
settled() {
    local fds threads
    for _ in $(seq 1 100); do
        read -r fds threads <<<"$(counts | tr -dc '0-9 \n')"
        [ "$fds" -le "$base_fds" ] && [ "$threads" -le "$base_threads" ] && return 0
        sleep 0.1
    done
    diag "baseline fds=$base_fds threads=$base_threads, now $(counts)"
    diag "$(ls -l "/proc/$TD_PID/fd")"
    return 1
}
read -r base_fds base_threads <<<"$(counts | tr -dc '0-9 \n')"

# ---- type into the L1's shell -------------------------------------------------------------
out=$(WS_TIMEOUT=60 node "$WS_CLIENT" "$WS_URL?tail=5" "$alice" type 'echo TURTLES-$((6*7))' 'TURTLES-42')
grep -qx MATCH <<<"$out"
ok $? "a ws client types 'echo TURTLES-\$((6*7))' and reads TURTLES-42 back" || diag "$out"
like "$(grep '^CLOSE' <<<"$out")" '^CLOSE 1000' "... and closes normally (the server echoes 1000)"

# ---- one writer at a time ----------------------------------------------------------------------
ws_bg first "$WS_URL" "$alice" hold
ws_wait first '^OPEN'
ok $? "a first client holds the console"
out=$(node "$WS_CLIENT" "$WS_URL" "$alice" status)
like "$out" '^STATUS 409 .*"code":"conflict"' "a second writer gets 409 with our JSON error"
out=$(node "$WS_CLIENT" "$WS_URL" "$bob" status)
like "$out" '^STATUS 404 .*stack .web. not found' "another tenant gets 404"
out=$(node "$WS_CLIENT" "$WS_URL" "" status)
like "$out" '^STATUS 401 ' "no token gets 401"
ws_bg second "$WS_URL?force=1" "$alice" hold
ws_wait second '^OPEN'
ok $? "force=1 takes the console over"
ws_wait first '^CLOSE'
like "$(grep '^CLOSE' "$TD_DIR/first.out")" '^CLOSE 4409 taken over by another client' \
    "the first client gets a close frame: 4409 taken over by another client"

# ---- a client that vanishes ------------------------------------------------------------------
kill -9 "${TD_BG_PIDS[second]}"
wait "${TD_BG_PIDS[second]}" 2>/dev/null
settled
ok $? "after kill -9 of a client turtled has no more fds and threads than before the sessions"
# The session is gone: a new one opens (not 409).
ws_bg third "$WS_URL" "$alice" hold
ws_wait third '^OPEN'
ok $? "... and its session is gone: a new client opens without force"
td_bg_stop third
settled
ok $? "a client that is stopped (SIGTERM) leaves none behind either"

# ---- turtlectl in a terminal ---------------------------------------------------------------------
TMUX_SOCK=turtles-console-$$
tmux_() { tmux -L "$TMUX_SOCK" "$@"; }
pane() { tmux_ capture-pane -p -t console -S -200 2>/dev/null; }
pane_wait() {
    local deadline=$(($(now_ms) + ${2:-30000}))
    until pane | grep -qE "$1"; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}
tmux_ new-session -d -s console -x 160 -y 50 \
    "'$CTL' --url http://127.0.0.1:$TD_PORT --token $alice stack console web --tail 1; echo TURTLECTL-EXIT=\$?; stty -a | tr ' ' '\\n' | grep -xE -- '-?(icanon|echo)' | paste -sd, | sed 's/^/STTY=/'; sleep 60"
pane_wait 'Connected to stack web \(escape character is \^\]\)'
ok $? "turtlectl stack console says it is connected, and how to leave" || diag "$(pane)"
tmux_ send-keys -t console 'echo TURTLES-$((7*8))' Enter
pane_wait 'TURTLES-56'
ok $? "a command typed in turtlectl runs in the L1 and its output shows" || diag "$(pane)"
tmux_ send-keys -t console 'C-]'
pane_wait 'TURTLECTL-EXIT='
is "$(pane | grep -o 'TURTLECTL-EXIT=[0-9]*')" "TURTLECTL-EXIT=0" "Ctrl-] detaches: exit 0" || diag "$(pane)"
pane_wait 'STTY='
is "$(pane | grep -o 'STTY=.*')" "STTY=icanon,echo" "the terminal is sane again (canonical mode, echo)"
tmux_ kill-server 2>/dev/null

# ---- the read-only console is still there -----------------------------------------------------
api_tn "$alice" GET "/v1/stacks/web/console"
grep -q 'TURTLES-42' <<<"$BODY"
ok $? "the console log keeps what was typed and printed (scrollback)"
settled
ok $? "after turtlectl detached turtled has no more fds and threads than before the sessions"

# ---- turtled stops under a session -------------------------------------------------------------
ws_bg stopper "$WS_URL" "$alice" hold
ws_wait stopper '^OPEN'
ok $? "a client holds the console when turtled gets SIGTERM"
td_stop TERM
is "$TD_EXIT" 0 "turtled stops with a session open and exits 0"
ws_wait stopper '^CLOSE' 10000
like "$(grep '^CLOSE' "$TD_DIR/stopper.out")" '^CLOSE 1001 turtled is stopping' \
    "... and the client gets a close frame: 1001 turtled is stopping"
sh_start || bail "turtled did not start again"
WS_URL=ws://127.0.0.1:$TD_PORT/v1/stacks/web/console
read -r base_fds base_threads <<<"$(counts | tr -dc '0-9 \n')"

# ---- the stack goes away under a session ----------------------------------------------------
ws_bg last "$WS_URL" "$alice" hold
ws_wait last '^OPEN'
ok $? "a client holds the console while the stack is deleted"
api_tn "$alice" DELETE /v1/stacks/web
sh_wait_op "$alice" "$(jb .operation.id)" 60
is "$OP_STATUS" succeeded "stack web is deleted"
ws_wait last '^CLOSE'
like "$(grep '^CLOSE' "$TD_DIR/last.out")" '^CLOSE 10(01|08) ' \
    "... and the session ends with a close frame ($(grep '^CLOSE' "$TD_DIR/last.out"))"
settled
ok $? "... leaving no fd or thread behind"
td_done
