#!/usr/bin/env bash
# A hostile client cannot lock others out (issue 15): 2,000 idle TCP
# connections from one address plus 300 event streams from one tenant token.
# Meanwhile a new client of the same tenant, another tenant and the operator
# socket are each answered (times printed); the offender's extra streams and
# its anonymous request are refused with 429 and our JSON body; threads stay
# bounded; once it leaves, RSS comes back near where it started.  A client
# that drips its headers is cut with 408 at the header deadline.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

IDLE=2000
STREAMS=300

td_init
# Defaults but a header deadline the test can wait out quickly at the end;
# the idle flood itself must outlive the checks, so it is not too short.
cat >"$TD_DIR/limits.conf" <<'EOF'
[turtled]
header_timeout = 20
EOF
td_start --config "$TD_DIR/limits.conf" || bail "turtled did not start"
td_tenant acme || bail "cannot create tenant acme"
A=$TOKEN
td_tenant beta || bail "cannot create tenant beta"
B=$TOKEN

proc_field() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$TD_PID/status"; }
threads_before=$(proc_field Threads)
rss_before=$(proc_field VmRSS)
note "before: $threads_before threads, RSS $rss_before kB"

# ---- the flood -------------------------------------------------------------
exec {to_flood}> >(tests/lib/http-flood "$TD_PORT" "$A" "$IDLE" "$STREAMS" "$TD_DIR/flood.json" \
    >"$TD_DIR/flood.out" 2>&1)
flood_pid=$!
poll_until 180 grep -q READY "$TD_DIR/flood.out" || {
    diag "$(cat "$TD_DIR/flood.out")"
    bail "the flood did not get its connections up"
}
flood=$(cat "$TD_DIR/flood.json")
fj() { jq -r "$1" <<<"$flood"; }

streams_ok=$(fj .streams_ok)
ok "$([ "$streams_ok" -ge 1 ] && [ "$streams_ok" -le 64 ] && echo 0 || echo 1)" \
    "the tenant got some streams, but no more than its limit ($streams_ok of $STREAMS)"
is "$(fj '.refusal_codes | unique | join(",")')" "429 too_many_requests" \
    "the streams past the limit are refused with 429 too_many_requests ($(fj .streams_refused))"
is "$(fj .retry_after)" true "... each with Retry-After"
is "$(fj .anonymous)" "429 too_many_requests" \
    "an anonymous request past connections_per_address is refused with 429 and our JSON"
is "$(fj .anonymous_retry_after)" true "... with Retry-After"

# ---- everyone else is still served ---------------------------------------
timed() { # timed DESC CURL-ARGS...: the status, with the time taken in the description
    local desc=$1 out
    shift
    out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 "$@")
    is "${out% *}" 200 "$desc (${out#* } s)"
}
timed "a new client of the same tenant over TCP" \
    -H "Authorization: Bearer $A" "http://127.0.0.1:$TD_PORT/v1/stacks"
timed "another tenant over TCP" -H "Authorization: Bearer $B" "http://127.0.0.1:$TD_PORT/v1/images"
timed "the operator on the socket" --unix-socket "$TD_SOCK" http://localhost/v1/tenants

threads_during=$(proc_field Threads)
rss_during=$(proc_field VmRSS)
note "with $IDLE idle connections and $streams_ok streams: $threads_during threads, RSS $rss_during kB"
ok "$([ "$threads_during" -le $((threads_before + 4)) ] && echo 0 || echo 1)" \
    "threads stay bounded ($threads_before before, $threads_during during)"

# /metrics shows the refusals.
api_op GET /metrics
like "$BODY" 'turtled_http_refused_total\{reason="streams"\} [1-9]' "/metrics counts refused streams"
like "$BODY" 'turtled_http_connections [0-9]{4}' "/metrics shows the open connections"

# ---- the offender leaves ---------------------------------------------------
exec {to_flood}>&-
wait "$flood_pid" 2>/dev/null
poll_until 30 eval '[ "$(curl -s --unix-socket "$TD_SOCK" http://localhost/metrics |
    awk "/^turtled_http_connections /{print \$2}")" -le 2 ]'
ok $? "the connections are gone from turtled"
rss_after=$(proc_field VmRSS)
note "after: RSS $rss_after kB (before $rss_before kB)"
if ldd "$TD_BIN" | grep -qE 'lib(t|a)san'; then
    # A sanitizer's shadow memory and quarantine keep what turtled frees.
    skip "RSS after the flood: not meaningful in a sanitizer build"
else
    ok "$([ "$rss_after" -le $((rss_before * 110 / 100)) ] && echo 0 || echo 1)" \
        "RSS is back within 10 % of where it started ($rss_before -> $rss_during -> $rss_after kB)"
fi

# ---- slowloris --------------------------------------------------------------
slow=$(python3 - "$TD_PORT" <<'EOF'
import socket, sys, time
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60)
started = time.monotonic()
answer = b""
try:
    for byte in b"GET /v1 HTTP/1.1\r\nHost: turtled\r\nX-Slow: " + b"a" * 100:
        sock.send(bytes([byte]))
        time.sleep(1)
except OSError:
    pass
try:
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
except OSError:
    pass
print("%d %s" % (round(time.monotonic() - started), answer.split(b"\r\n")[0].decode()))
print(answer.split(b"\r\n\r\n", 1)[-1].decode())
EOF
)
like "$(head -n1 <<<"$slow")" '^(19|20|21|22) HTTP/1.1 408 ' \
    "a client sending one header byte a second is cut at the 20 s header deadline with 408"
is "$(tail -n1 <<<"$slow" | jq -r .error.code)" request_timeout "... and our JSON error body"

td_stop
td_done
