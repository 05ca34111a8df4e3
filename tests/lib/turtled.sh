# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables set here are read by the tests
# turtled.sh: a private turtled for integration tests (sourced after tap.sh).
#
# Every test gets a temp dir with the daemon's state dir, its UNIX socket and
# its logs; turtled listens on that socket and on a free loopback port (it
# picks one: --listen 127.0.0.1:0, found again through /proc).  The EXIT trap
# stops whatever is left and removes the dir.
#
#   td_init                  temp dir ($TD_DIR), cleanup trap; call first
#   td_start [ARGS...]       start turtled (the test backend and test hooks,
#                            $TD_STATE, $TD_SOCK, 127.0.0.1:0; ARGS added or,
#                            with TD_NO_DEFAULTS=1, instead) and wait until it
#                            answers on TD_EXPECT_SOCK ($TD_SOCK) and, when
#                            --listen is given or TD_EXPECT_TCP=1, on TCP; sets
#                            TD_PID, TD_PORT (empty without TCP), TD_LOG.
#                            Returns 1 (and shows the log) if it did not come up
#   td_stop [SIGNAL]         signal it (TERM), wait (TD_STOP_TIMEOUT, 20 s; then
#                            KILL), set TD_EXIT; asserts that its log shows no
#                            sanitizer report (one TAP line per stop)
#   td_kill9                 kill -9 and reap; the same sanitizer assertion
#   td_done                  stop what runs, wait for the schema checks and
#                            report them, print the plan (at the end: TAP's
#                            trailing plan, so an early exit has none and fails)
#
#   api_op METHOD PATH [CURL-ARGS...]          the operator: UNIX socket, no token
#   api_tn TOKEN METHOD PATH [CURL-ARGS...]    TCP with "Authorization: Bearer
#                                              TOKEN" (none when TOKEN is empty)
#   api_sock TOKEN METHOD PATH [CURL-ARGS...]  the UNIX socket with a token
#       Each sets STATUS (000 when no answer), BODY, CURL_RC and the files
#       $TD_RESP_HEADERS / $TD_RESP_BODY; `hdr NAME` prints a response header,
#       `jb FILTER` runs jq -r on the body, td_error_fields sets ERR_STATUS,
#       ERR_CODE and ERR_MESSAGE.  Send JSON with curl's own `--json TEXT`
#       (the method is always -X METHOD).  Every response but text/plain and
#       event streams is checked against api/openapi.yaml by
#       tests/lib/openapi-check, beside the test; td_done reports one
#       assertion per response.  A documented route is checked against its
#       METHOD, template and status; anything else (an unknown path or method,
#       the test hooks) against the Error schema, or OperationEnvelope for 202.
#   td_check_body WHAT FILE ARGS...  the same check for a body got another way
#                            (ARGS: openapi-check's, without the file)
#   td_check_schema NAME FILE WHAT   td_check_body against components/schemas/NAME
#   td_tenant, td_sleep_op, td_wait_status   shortcuts: see below
#   td_bg_start NAME CMD...  run CMD in the background (a stream); td_bg_stop
#                            NAME ends it and sets BG_RC; all end at exit
#   td_sql SQL               read-only query on the state database
#   is_error STATUS CODE DESC  STATUS, error.status and error.code of the body
#   now_ms                   the time in milliseconds, for elapsed times
#
# Call td_start, td_stop, api_* in the test's own shell, never inside $(...):
# they set variables the test reads.

TD_BIN=${TD_BIN:-$TURTLES_BUILD/turtled}
TD_OPENAPI_CHECK=${TD_OPENAPI_CHECK:-${TURTLES_SRCDIR:-.}/tests/lib/openapi-check}
TD_DIR=""
TD_PID=""
TD_PORT=""
TD_LOG=""
TD_EXIT=""
TD_STARTS=0
STATUS=""
BODY=""
CURL_RC=0
declare -A TD_BG_PIDS=()
TD_VAL_N=0
declare -A TD_VAL_SEEN=()
TD_BATCH_PID=""

# The routes api/openapi.yaml documents (daemon/routes.c without test hooks),
# as "METHOD TEMPLATE".
TD_DOCUMENTED="GET /v1|GET /v1/host|GET /metrics|GET /v1/events|POST /v1/tenants|GET /v1/tenants|\
GET /v1/tenants/{name}|PATCH /v1/tenants/{name}|DELETE /v1/tenants/{name}|\
POST /v1/tenants/{name}/tokens|GET /v1/tenants/{name}/tokens|DELETE /v1/tenants/{name}/tokens/{id}|\
POST /v1/operator/tokens|GET /v1/operator/tokens|DELETE /v1/operator/tokens/{id}|\
POST /v1/images|GET /v1/images|GET /v1/images/{name}|DELETE /v1/images/{name}|\
PUT /v1/images/{name}/data|\
POST /v1/stacks|GET /v1/stacks|GET /v1/stacks/{name}|DELETE /v1/stacks/{name}|\
POST /v1/stacks/{name}/actions|GET /v1/stacks/{name}/console|GET /v1/stacks/{name}/stats|POST /v1/stacks/{name}/migrate|\
POST /v1/stacks/{name}/devices|DELETE /v1/stacks/{name}/devices/{id}|\
POST /v1/peers|GET /v1/peers|GET /v1/peers/{name}|DELETE /v1/peers/{name}|\
POST /v1/device-classes|GET /v1/device-classes|GET /v1/device-classes/{name}|\
PATCH /v1/device-classes/{name}|DELETE /v1/device-classes/{name}|GET /v1/devices|\
POST /v1/networks|GET /v1/networks|GET /v1/networks/{name}|DELETE /v1/networks/{name}|\
GET /v1/operations|GET /v1/operations/{id}|DELETE /v1/operations/{id}|GET /v1/operations/{id}/wait"

now_ms() {
    local s ns
    read -r s ns < <(date '+%s %N')
    echo $((s * 1000 + 10#$ns / 1000000))
}

td_init() {
    [ -x "$TD_BIN" ] || bail "$TD_BIN is not built (make $TD_BIN)"
    command -v curl >/dev/null || bail "curl is missing (make deps)"
    command -v jq >/dev/null || bail "jq is missing (make deps)"
    command -v sqlite3 >/dev/null || bail "sqlite3 is missing (make deps)"
    # The operator is uid 0 on the socket: without it half of the API is out of reach.
    [ "$(id -u)" = 0 ] || skip_all "the operator is uid 0 on the UNIX socket: run as root"
    TD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/turtled-test.XXXXXX") || bail "mktemp failed"
    TD_STATE=$TD_DIR/state
    TD_SOCK=$TD_DIR/t.sock
    TD_RESP_HEADERS=$TD_DIR/resp.headers
    TD_RESP_BODY=$TD_DIR/resp.body
    mkdir -p "$TD_DIR/val"
    if [ ! -x "$TD_OPENAPI_CHECK" ] || ! command -v node >/dev/null; then
        diag "no $TD_OPENAPI_CHECK (or no node): responses are not checked against api/openapi.yaml"
        TD_OPENAPI_CHECK=""
    fi
    [ -n "$TD_OPENAPI_CHECK" ] && _td_batch_start
    trap _td_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
}

# ---- the daemon ---------------------------------------------------------------

# The port of a listening IPv4 TCP socket of process $1, from /proc.
_td_tcp_port() {
    local pid=$1 fd target inodes=""
    for fd in /proc/"$pid"/fd/*; do
        target=$(readlink "$fd" 2>/dev/null) || continue
        case $target in socket:\[*\]) inodes="$inodes ${target//[!0-9]/}" ;; esac
    done
    [ -n "$inodes" ] || return 1
    local hex
    hex=$(awk -v inodes="$inodes" '
        BEGIN { n = split(inodes, list, " "); for (i = 1; i <= n; i++) want[list[i]] = 1 }
        NR > 1 && $4 == "0A" && ($10 in want) { split($2, a, ":"); print a[2]; exit }
    ' /proc/net/tcp)
    [ -n "$hex" ] && echo $((16#$hex))
}

_td_alive() {
    local state
    [ -n "$1" ] || return 1
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

td_log_tail() {
    [ -n "$TD_LOG" ] && [ -f "$TD_LOG" ] && diag "--- $TD_LOG (last 40 lines) ---" "$(tail -n 40 "$TD_LOG")"
}

td_start() {
    local args=() deadline listen_wanted=0 a
    TD_STARTS=$((TD_STARTS + 1))
    TD_LOG=$TD_DIR/turtled.$TD_STARTS.log
    TD_PORT=""
    if [ "${TD_NO_DEFAULTS:-0}" = 1 ]; then
        args=("$@")
    else
        args=(--state-dir "$TD_STATE" --socket "$TD_SOCK" --listen 127.0.0.1:0 --backend test
            --test-hooks "$@")
    fi
    for a in "${args[@]}"; do
        case $a in --listen | --listen=*) listen_wanted=1 ;; esac
    done
    listen_wanted=${TD_EXPECT_TCP:-$listen_wanted}
    # Append mode: every writer (ASan too) adds at the end, none overwrites.
    : >"$TD_LOG"
    "$TD_BIN" "${args[@]}" >>"$TD_LOG" 2>&1 &
    TD_PID=$!
    local sock=${TD_EXPECT_SOCK:-$TD_SOCK}
    deadline=$(($(now_ms) + ${TD_START_TIMEOUT:-15} * 1000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        if ! _td_alive "$TD_PID"; then
            wait "$TD_PID"
            TD_EXIT=$?
            diag "turtled exited with $TD_EXIT while starting"
            td_log_tail
            TD_PID=""
            return 1
        fi
        if [ -S "$sock" ] &&
            curl -s -o /dev/null --max-time 2 --unix-socket "$sock" http://localhost/v1; then
            if [ "$listen_wanted" = 0 ]; then
                return 0
            fi
            TD_PORT=$(_td_tcp_port "$TD_PID")
            [ -n "$TD_PORT" ] && return 0
        fi
        sleep 0.02
    done
    diag "turtled did not answer within ${TD_START_TIMEOUT:-15} s"
    td_log_tail
    return 1
}

# FALSE when the log shows a sanitizer (ASan, LSan, UBSan) report.
_td_log_clean() {
    ! grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|WARNING: ThreadSanitizer|Sanitizer has encountered a fatal error|runtime error:|SUMMARY: [A-Za-z]*Sanitizer' "$1"
}

_td_assert_log_clean() {
    if _td_log_clean "$TD_LOG"; then
        ok 0 "turtled #$TD_STARTS: its log shows no sanitizer report"
    else
        ok 1 "turtled #$TD_STARTS: its log shows no sanitizer report"
        diag "$(grep -m1 -B2 -A30 -E 'Sanitizer|runtime error:' "$TD_LOG")"
    fi
}

# Waits for $TD_PID to end (not reaped yet: state Z or gone); 1 on timeout.
_td_wait_end() {
    local deadline=$(($(now_ms) + $1 * 1000))
    while _td_alive "$TD_PID"; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.02
    done
}

td_stop() {
    local sig=${1:-TERM} timed_out=0
    TD_EXIT=""
    [ -n "$TD_PID" ] || return 1
    # bash reports a job killed by a signal ("Killed") on stderr: not ours to show.
    {
        kill -"$sig" "$TD_PID"
        if ! _td_wait_end "${TD_STOP_TIMEOUT:-20}"; then
            timed_out=1
            kill -KILL "$TD_PID"
        fi
        wait "$TD_PID"
        TD_EXIT=$?
    } 2>/dev/null
    [ "$timed_out" = 0 ] || diag "turtled did not stop within ${TD_STOP_TIMEOUT:-20} s of SIG$sig: killed it"
    TD_PID=""
    _td_assert_log_clean
}

td_kill9() {
    td_stop KILL
}

# ---- requests -----------------------------------------------------------------

# Sets HDR to response header $1 of the last response (names are
# case-insensitive; the last response's value wins, as after a 100 Continue).
_td_hdr() {
    local line name=${1,,}
    HDR=""
    while IFS= read -r line; do
        line=${line%$'\r'}
        case $line in HTTP/*) HDR="" ;; esac
        local key=${line%%:*}
        if [ "$key" != "$line" ] && [ "${key,,}" = "$name" ]; then
            HDR=${line#*:}
            HDR=${HDR#"${HDR%%[! $'\t']*}"}
        fi
    done <"$TD_RESP_HEADERS"
}

hdr() {
    _td_hdr "$1"
    [ -n "$HDR" ] && printf '%s\n' "$HDR"
}

jb() {
    jq -r "$@" <<<"$BODY" 2>/dev/null
}

# Sets TD_TEMPLATE to the route template of a request path (query dropped).
td_template() {
    local path=${1%%\?*} IFS=/
    # shellcheck disable=SC2206
    local seg=($path)
    TD_TEMPLATE=$path
    case "${#seg[@]}:${seg[1]:-}/${seg[2]:-}" in
    4:v1/tenants) TD_TEMPLATE="/v1/tenants/{name}" ;;
    5:v1/tenants) [ "${seg[4]}" = tokens ] && TD_TEMPLATE="/v1/tenants/{name}/tokens" ;;
    6:v1/tenants) [ "${seg[4]}" = tokens ] && TD_TEMPLATE="/v1/tenants/{name}/tokens/{id}" ;;
    4:v1/operations) TD_TEMPLATE="/v1/operations/{id}" ;;
    5:v1/operations) [ "${seg[4]}" = wait ] && TD_TEMPLATE="/v1/operations/{id}/wait" ;;
    4:v1/images) TD_TEMPLATE="/v1/images/{name}" ;;
    5:v1/images) [ "${seg[4]}" = data ] && TD_TEMPLATE="/v1/images/{name}/data" ;;
    4:v1/peers) TD_TEMPLATE="/v1/peers/{name}" ;;
    5:v1/operator) [ "${seg[3]}" = tokens ] && TD_TEMPLATE="/v1/operator/tokens/{id}" ;;
    4:v1/stacks) TD_TEMPLATE="/v1/stacks/{name}" ;;
    5:v1/stacks) case ${seg[4]} in actions | console | stats | migrate | devices) TD_TEMPLATE="/v1/stacks/{name}/${seg[4]}" ;; esac ;;
    6:v1/stacks) [ "${seg[4]}" = devices ] && TD_TEMPLATE="/v1/stacks/{name}/devices/{id}" ;;
    4:v1/device-classes) TD_TEMPLATE="/v1/device-classes/{name}" ;;
    4:v1/networks) TD_TEMPLATE="/v1/networks/{name}" ;;
    esac
    return 0
}

# openapi-check costs a node start, a YAML parse and module loads: a quarter
# of a second, too much for every response of every test.  One node process
# per test runs it in-process instead, once per queued line, as its command
# line would (process.argv, exit code, stderr): the same checks, ~30 ms each.
# It runs beside the test, reading $TD_DIR/val/queue; td_done waits for it
# and runs openapi-check itself for any line it did not answer.
_td_batch_js='
"use strict";
const fs = require("fs"), path = require("path");
const [script, queue, dir] = process.argv.slice(2, 5).map((p) => path.resolve(p));
const parent = Number(process.argv[5]);
const realExit = process.exit, realWrite = process.stderr.write, started = Date.now();
let offset = 0, pending = "";
function run(n, args) {
    let err = "", code;
    process.argv = [process.argv[0], script, ...args];
    process.exitCode = undefined;
    process.exit = (c) => { throw { batchExit: c === undefined ? 0 : c }; };
    process.stderr.write = (chunk) => { err += chunk; return true; };
    try {
        delete require.cache[script];
        require(script);
        code = process.exitCode === undefined ? 0 : process.exitCode;
    } catch (e) {
        if (e && e.batchExit !== undefined) code = e.batchExit;
        else { code = 3; err += String((e && e.stack) || e); }
    } finally {
        process.exit = realExit;
        process.stderr.write = realWrite;
        process.exitCode = 0;
    }
    fs.writeFileSync(path.join(dir, n + ".err"), err);
    fs.writeFileSync(path.join(dir, n + ".rc"), String(code) + "\n");
}
function poll() {
    try {
        const fd = fs.openSync(queue, "r");
        const size = fs.fstatSync(fd).size;
        if (size > offset) {
            const buf = Buffer.alloc(size - offset);
            fs.readSync(fd, buf, 0, buf.length, offset);
            offset = size;
            pending += buf.toString();
        }
        fs.closeSync(fd);
    } catch (e) {}
    let i;
    while ((i = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, i);
        pending = pending.slice(i + 1);
        if (line === "END") return;
        const [n, ...args] = line.split("\t");
        run(n, args);
    }
    // Gone with the test that started it, however that ended.
    try { process.kill(parent, 0); } catch (e) { return; }
    if (Date.now() - started < 600000) setTimeout(poll, 30);
}
poll();
'

_td_batch_start() {
    : >"$TD_DIR/val/queue"
    printf '%s\n' "$_td_batch_js" >"$TD_DIR/val/batch.js"
    node "$TD_DIR/val/batch.js" "$TD_OPENAPI_CHECK" "$TD_DIR/val/queue" "$TD_DIR/val" "$$" \
        </dev/null >"$TD_DIR/val/batch.log" 2>&1 &
    TD_BATCH_PID=$!
}

# Queues one check (openapi-check's arguments but the file); td_done reports
# it.  Identical bodies for the same route and status share one check.
td_check_body() {
    local what=$1 file=$2
    shift 2
    local key n content=""
    IFS= read -r -d '' -N 16385 content <"$file"
    if [ "${#content}" -le 16384 ]; then
        key="$*|$content"
    else
        key="$*|$(sha1sum <"$file")"
    fi
    TD_VAL_N=$((TD_VAL_N + 1))
    n=$TD_VAL_N
    printf '%s\n' "$what" >"$TD_DIR/val/$n.what"
    if [ -n "${TD_VAL_SEEN[$key]:-}" ]; then
        echo "${TD_VAL_SEEN[$key]}" >"$TD_DIR/val/$n.same"
        return
    fi
    TD_VAL_SEEN[$key]=$n
    cp "$file" "$TD_DIR/val/$n.body"
    printf '%s\t%s\t%s\n' "$n" "$(IFS=$'\t' && echo "$*")" "$TD_DIR/val/$n.body" >>"$TD_DIR/val/queue"
    printf '%s\0' "$@" >"$TD_DIR/val/$n.args"
}

td_check_schema() {
    td_check_body "$3 (schema $1)" "$2" --schema "$1"
}

# Which check a response gets: its documented route and status, else (a path
# no route has, a method the path lacks, the test-only routes) the Error
# schema for errors and OperationEnvelope for the test hooks' 202.
_td_validate_response() {
    local method=$1 path=$2 template
    # Set for answers libmicrohttpd gives itself (414, 431): not our contract.
    [ -n "${TD_SKIP_VALIDATION:-}" ] && return
    _td_hdr Content-Type
    case $HDR in text/plain* | text/event-stream*) return ;; esac
    # Interim answers only (100 Continue, then the connection cut): no body to check.
    case $STATUS in 1??) return ;; esac
    td_template "$path"
    template=$TD_TEMPLATE
    local what="$method ${path:0:120}"
    [ "${#path}" -le 120 ] || what="$what..."
    what="$what -> $STATUS"
    case "|$TD_DOCUMENTED|" in
    *"|$method $template|"*)
        td_check_body "$what" "$TD_RESP_BODY" "$method" "$template" "$STATUS"
        return
        ;;
    esac
    case $STATUS in
    4?? | 5??) td_check_body "$what" "$TD_RESP_BODY" --schema Error ;;
    202) td_check_body "$what" "$TD_RESP_BODY" --schema OperationEnvelope ;;
    *) td_check_body "$what" "$TD_RESP_BODY" --schema "undocumented-$STATUS" ;;
    esac
}

_td_request() {
    local base=$1 token=$2 method=$3 path=$4
    shift 4
    local args=(-sS --max-time "${TD_CURL_TIMEOUT:-30}" -o "$TD_RESP_BODY" -D "$TD_RESP_HEADERS"
        -w '%{http_code}' -X "$method")
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    : >"$TD_RESP_BODY"
    : >"$TD_RESP_HEADERS"
    if [ "$base" = unix ]; then
        STATUS=$(curl "${args[@]}" --unix-socket "$TD_SOCK" "$@" "http://localhost$path" 2>"$TD_DIR/curl.err")
    else
        STATUS=$(curl "${args[@]}" "$@" "http://127.0.0.1:$TD_PORT$path" 2>"$TD_DIR/curl.err")
    fi
    CURL_RC=$?
    BODY=""
    IFS= read -r -d '' BODY <"$TD_RESP_BODY"
    if [ "$CURL_RC" != 0 ]; then
        note "curl $method $path: exit $CURL_RC: $(cat "$TD_DIR/curl.err")"
    fi
    [ "$STATUS" = 000 ] || _td_validate_response "$method" "$path"
}

api_op() { _td_request unix "" "$@"; }
api_tn() { _td_request tcp "$@"; }
api_sock() { _td_request unix "$@"; }

# is_error STATUS CODE DESC: the last response has that status and an error
# body saying the same.
is_error() {
    td_error_fields
    is "$STATUS $ERR_STATUS $ERR_CODE" "$1 $1 $2" "$3"
}

# Sets ERR_STATUS, ERR_CODE and ERR_MESSAGE from the last body (empty when it
# is no error body).  jq costs 20 ms a call; the usual compact body is read
# by a regex, anything else by jq.
td_error_fields() {
    local re='^\{"error":\{"status":([0-9]+),"code":"([a-z_]+)","message":"([^"\\]*)"\}\}$'
    if [[ $BODY =~ $re ]]; then
        ERR_STATUS=${BASH_REMATCH[1]}
        ERR_CODE=${BASH_REMATCH[2]}
        ERR_MESSAGE=${BASH_REMATCH[3]}
        return
    fi
    ERR_STATUS=$(jb '.error.status // empty')
    ERR_CODE=$(jb '.error.code // empty')
    ERR_MESSAGE=$(jb '.error.message // empty')
}

td_sql() {
    sqlite3 -readonly "$TD_STATE/turtled.db" "$1"
}

# ---- background clients ---------------------------------------------------------

td_bg_start() {
    local name=$1
    shift
    "$@" &
    TD_BG_PIDS[$name]=$!
}

# Ends the background command NAME (TERM) and reaps it; BG_RC is its exit
# status.  With "wait" as $2 it is left to finish by itself first (up to $3 s).
td_bg_stop() {
    local name=$1 pid=${TD_BG_PIDS[$1]:-} deadline
    BG_RC=""
    [ -n "$pid" ] || return 1
    if [ "${2:-}" = wait ]; then
        deadline=$(($(now_ms) + ${3:-10} * 1000))
        while kill -0 "$pid" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do
            sleep 0.05
        done
    fi
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"
    BG_RC=$?
    unset "TD_BG_PIDS[$name]"
}

# ---- the end ----------------------------------------------------------------------

_td_report_validations() {
    local n src rc deadline args=()
    if [ -n "$TD_BATCH_PID" ]; then
        echo END >>"$TD_DIR/val/queue"
        deadline=$(($(now_ms) + 60000))
        while kill -0 "$TD_BATCH_PID" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ]; do
            sleep 0.05
        done
        kill "$TD_BATCH_PID" 2>/dev/null
        wait "$TD_BATCH_PID" 2>/dev/null
        TD_BATCH_PID=""
    fi
    for ((n = 1; n <= TD_VAL_N; n++)); do
        src=$n
        [ -f "$TD_DIR/val/$n.same" ] && src=$(cat "$TD_DIR/val/$n.same")
        if [ -z "$TD_OPENAPI_CHECK" ]; then
            skip "openapi-check is not available: $(cat "$TD_DIR/val/$n.what")"
            continue
        fi
        if [ ! -f "$TD_DIR/val/$src.rc" ]; then
            # The batch runner missed it: the plain command line decides.
            mapfile -d '' args <"$TD_DIR/val/$src.args"
            "$TD_OPENAPI_CHECK" "${args[@]}" "$TD_DIR/val/$src.body" >"$TD_DIR/val/$src.err" 2>&1
            echo $? >"$TD_DIR/val/$src.rc"
        fi
        rc=$(cat "$TD_DIR/val/$src.rc")
        if [ "$rc" = 0 ]; then
            ok 0 "openapi: $(cat "$TD_DIR/val/$n.what") matches api/openapi.yaml"
        else
            ok 1 "openapi: $(cat "$TD_DIR/val/$n.what") matches api/openapi.yaml"
            diag "openapi-check exit $rc" "$(cat "$TD_DIR/val/$src.err" 2>/dev/null)" \
                "body: $(head -c 600 "$TD_DIR/val/$src.body")"
        fi
    done
}

td_done() {
    local name
    for name in "${!TD_BG_PIDS[@]}"; do
        td_bg_stop "$name"
    done
    if [ -n "$TD_PID" ]; then
        td_stop TERM
        is "$TD_EXIT" 0 "turtled exits 0 on SIGTERM at the end"
    fi
    _td_report_validations
    plan "$TAP_COUNT"
    TD_DONE=1
}

_td_cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM HUP
    for pid in "${TD_BG_PIDS[@]}" $TD_BATCH_PID; do
        kill -TERM "$pid" 2>/dev/null
    done
    if [ -n "$TD_PID" ]; then
        kill -TERM "$TD_PID" 2>/dev/null
        _td_wait_end 10 || kill -KILL "$TD_PID" 2>/dev/null
        wait "$TD_PID" 2>/dev/null
        TD_PID=""
    fi
    wait 2>/dev/null
    if [ -n "$TD_DIR" ] && [ -d "$TD_DIR" ]; then
        # A sanitizer report after the last assertion still fails the test.
        local log
        for log in "$TD_DIR"/turtled.*.log; do
            [ -f "$log" ] || continue
            if ! _td_log_clean "$log"; then
                diag "sanitizer report in $log:" "$(grep -m1 -A30 -E 'Sanitizer|runtime error:' "$log")"
                rc=1
            fi
        done
        if [ "${TAP_FAILED:-0}" -gt 0 ] || [ "$rc" != 0 ]; then
            for log in "$TD_DIR"/turtled.*.log; do
                [ -f "$log" ] && diag "--- ${log##*/} ---" "$(tail -n 30 "$log")"
            done
        fi
        if [ "${TURTLES_KEEP_LOGS:-0}" = 1 ]; then
            diag "kept $TD_DIR"
        else
            rm -rf "$TD_DIR"
        fi
    fi
    [ "${TD_DONE:-0}" = 1 ] || [ "$rc" != 0 ] || rc=1
    [ "${TAP_FAILED:-0}" -gt 0 ] && [ "$rc" = 0 ] && rc=1
    exit "$rc"
}

# ---- shortcuts --------------------------------------------------------------------

# td_tenant NAME [JSON]: creates a tenant as the operator; sets TOKEN (its
# first secret) and TOKEN_ID; 1 unless turtled answered 201.
td_tenant() {
    local body=${2:-"{\"name\":\"$1\"}"}
    TOKEN=""
    TOKEN_ID=""
    api_op POST /v1/tenants --json "$body"
    [ "$STATUS" = 201 ] || {
        diag "creating tenant $1: $STATUS $BODY"
        return 1
    }
    TOKEN=$(jb .token.secret)
    TOKEN_ID=$(jb .token.id)
}

# td_sleep_op TOKEN SECONDS: starts the test hooks' sleep operation (as the
# operator when TOKEN is empty); sets OP_ID; 1 unless turtled answered 202.
td_sleep_op() {
    OP_ID=""
    if [ -n "$1" ]; then
        api_tn "$1" POST /v1/test/sleep --json "{\"seconds\":$2}"
    else
        api_op POST /v1/test/sleep --json "{\"seconds\":$2}"
    fi
    [ "$STATUS" = 202 ] || {
        diag "starting a sleep operation: $STATUS $BODY"
        return 1
    }
    OP_ID=$(jb .operation.id)
}

# td_wait_status ID STATUS [SECONDS]: polls GET /v1/operations/ID as the
# operator until its status is STATUS (0) or SECONDS (5) pass (1).
td_wait_status() {
    local deadline=$(($(now_ms) + ${3:-5} * 1000))
    while :; do
        api_op GET "/v1/operations/$1"
        [ "$(jb .operation.status)" = "$2" ] && return 0
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}
