#!/usr/bin/env bash
# GET /metrics as Prometheus reads it: `promtool check metrics` (Debian's
# prometheus package) finds no error and no lint problem, before and after
# traffic; the request latency histogram counts exactly the requests made,
# by route template and method; stacks and images by state, operations,
# libvirt's connection and the process figures say what is true.
# The test backend cannot create stacks (no volume uploads): their rows are
# written into the store, as a create makes them.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

command -v promtool >/dev/null || bail "promtool is missing (make deps: Debian's prometheus package)"
td_init
td_start || bail "turtled did not start"

# scrape: GET /metrics into $TD_DIR/metrics.txt
scrape() {
    api_op GET /metrics
    [ "$STATUS" = 200 ] || diag "GET /metrics: $STATUS $BODY"
    printf '%s' "$BODY" >"$TD_DIR/metrics.txt"
}
# value SERIES: the value of one series (its name and labels exactly as written), or "absent".
value() {
    awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print "absent" }' \
        "$TD_DIR/metrics.txt"
}
# promcheck DESC: promtool's verdict, errors and lint problems alike.
promcheck() {
    local out rc
    out=$(promtool check metrics <"$TD_DIR/metrics.txt" 2>&1)
    rc=$?
    [ -z "$out" ] || diag "promtool: $out"
    ok "$([ "$rc" = 0 ] && [ -z "$out" ] && echo 0 || echo 1)" "$1"
}
H='turtled_http_request_duration_seconds'

scrape
promcheck "promtool check metrics: clean at start"
is "$(value turtled_libvirt_connected)" 1 "turtled_libvirt_connected 1 on the test backend"
is "$(value "$H"'_count{route="/v1/tenants",method="GET"}')" absent \
    "no latency series for a route nobody asked yet"

# ---- latency histograms ------------------------------------------------------------------
td_tenant acme || bail "no tenant acme"
ACME=$TOKEN
for _ in 1 2 3 4 5; do api_op GET /v1/tenants; done
api_op GET /v1/tenants/acme
api_op GET /v1/tenants/nobody
for _ in 1 2; do api_tn "$ACME" GET /v1/images; done
scrape
is "$(value "$H"'_count{route="/v1/tenants",method="GET"}')" 5 \
    "five GET /v1/tenants: the histogram's count is 5"
is "$(value "$H"'_bucket{route="/v1/tenants",method="GET",le="+Inf"}')" 5 "... and its +Inf bucket"
is "$(value "$H"'_count{route="/v1/tenants",method="POST"}')" 1 "one POST /v1/tenants, apart"
is "$(value "$H"'_count{route="/v1/tenants/{name}",method="GET"}')" 2 \
    "GETs of two tenants (one missing): one series under the route's template"
is "$(value "$H"'_count{route="/v1/images",method="GET"}')" 2 "a tenant's requests over TCP too"
awk -v h="$H" 'index($1, h "_bucket{route=\"/v1/tenants\",method=\"GET\"") == 1 {
        if ($2 < last) bad = 1; last = $2 } END { exit bad }' "$TD_DIR/metrics.txt"
ok $? "its buckets are cumulative (never decrease)"
before=$(value "$H"'_count{route="/v1/tenants",method="GET"}')
for _ in 1 2 3; do api_op GET /v1/tenants; done
scrape
is "$(value "$H"'_count{route="/v1/tenants",method="GET"}')" "$((before + 3))" \
    "three more: the count grows by three"
is "$(value 'turtled_http_requests_total{route="/v1/tenants",status="200"}')" 8 \
    "turtled_http_requests_total counts them by status"

# ---- stacks, images, operations ------------------------------------------------------------
sql_write() { sqlite3 -cmd '.timeout 5000' -cmd 'PRAGMA foreign_keys = ON' "$TD_STATE/turtled.db" "$1"; }
add_stack() { # NAME STATE
    sql_write "INSERT INTO stacks (id, tenant_id, name, spec_json, vcpus, memory_mib, state, created_at, updated_at)
        SELECT '$(cat /proc/sys/kernel/random/uuid)', id, '$1', '{}', 1, 256, '$2', 'now', 'now'
        FROM tenants WHERE name = 'acme'" >/dev/null
}
add_stack web1 running
add_stack web2 running
add_stack db stopped
add_stack broken error
api_tn "$ACME" POST /v1/images --json '{"name":"k1","kind":"kernel","format":"raw"}'
api_tn "$ACME" POST /v1/images --json '{"name":"k2","kind":"kernel","format":"raw"}'
api_tn "$ACME" POST /v1/test/sleep --json '{"seconds":0}'
op=$(jb .operation.id)
td_wait_status "$op" succeeded || diag "the sleep operation did not succeed"
scrape
is "$(value 'turtled_stacks{state="running"}') $(value 'turtled_stacks{state="stopped"}') $(value 'turtled_stacks{state="error"}') $(value 'turtled_stacks{state="paused"}')" \
    "2 1 1 0" "turtled_stacks by state: 2 running, 1 stopped, 1 in error, 0 paused"
is "$(value 'turtled_images{state="pending"}') $(value 'turtled_images{state="ready"}')" "2 0" \
    "turtled_images by state: two pending, none ready"
is "$(value turtled_images_size_bytes)" 0 "... holding no bytes yet"
is "$(value 'turtled_operations{kind="test.sleep",status="succeeded"}')" 1 \
    "turtled_operations by kind and status"
is "$(value 'turtled_migrations_total{result="succeeded"}') $(value turtled_migration_last_downtime_seconds)" \
    "0 absent" "no migration yet: a zero count and no downtime figure"

# ---- the process --------------------------------------------------------------------------
# Its start from /proc, as the kernel counts it: boot time + start ticks / CLK_TCK.
btime=$(awk '$1 == "btime" { print $2 }' /proc/stat)
ticks=$(sed 's/.*) //' "/proc/$TD_PID/stat" | awk '{ print $20 }')
want=$(awk -v b="$btime" -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", b + t / hz }')
is "$(awk -v v="$(value process_start_time_seconds)" 'BEGIN { printf "%.2f", v }')" "$want" \
    "process_start_time_seconds: the process's start, as /proc tells it"
cpu1=$(value process_cpu_seconds_total)
for _ in $(seq 30); do api_op GET /v1/tenants; done
scrape
cpu2=$(value process_cpu_seconds_total)
awk -v a="$cpu1" -v b="$cpu2" 'BEGIN { exit !(a >= 0 && b >= a) }'
ok $? "process_cpu_seconds_total is a counter ($cpu1 then $cpu2)"

promcheck "promtool check metrics: clean after traffic"

# ---- only the operator -----------------------------------------------------------------------
api_tn "$ACME" GET /metrics
is "$STATUS" 403 "a tenant may not read /metrics"

td_done
