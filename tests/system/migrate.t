#!/bin/bash
# Live migration of a whole nested stack between two hosts, over HTTP only:
# two private libvirt hosts (a, b), a turtled on each (tcg backend).  A
# stack whose L2 beats migrates from A to B: on B the heartbeat counter goes
# on past its last value on A (L2 was not restarted, and the L1 did not boot
# again), B's turtled adopted the stack (and its tenant and images), A has
# no domain, disk or console log left; migrating back works.  Failures: an
# unknown peer is 404; a peer whose libvirtd is dead, before or during the
# migration, fails the operation with a reason while the stack keeps running
# on the source with its L2 beating, and nothing is left on the peer; so does
# a migration the tenant cancels while memory moves (status cancelled).
#
#   TURTLES_BUILD=build tests/system/migrate.t

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
# shellcheck source-path=SCRIPTDIR source=../lib/stackhost.sh
. "$here/../lib/stackhost.sh"

sh_init
testhost_start b || bail "cannot start the second private libvirt host"
sh_start || bail "turtled A did not start"
sh_save a
sh_start_on b b || bail "turtled B did not start"
uri_a=$(testhost_uri a)
uri_b=$(testhost_uri b)

# Peers, as each host's operator declares them.  One machine: the memory goes over loopback.
sh_use a
api_op POST /v1/peers --json "{\"name\":\"hostb\",\"libvirt_uri\":\"$uri_b\",\"migrate_uri\":\"tcp://127.0.0.1\"}"
is "$STATUS" 201 "A's operator adds peer hostb"
sh_use b
api_op POST /v1/peers --json "{\"name\":\"hosta\",\"libvirt_uri\":\"$uri_a\",\"migrate_uri\":\"tcp://127.0.0.1\"}"
is "$STATUS" 201 "B's operator adds peer hosta"

sh_use a
td_tenant alice || bail "no tenant"
alice_a=$TOKEN
sh_upload_reference "$alice_a" || bail "cannot upload the reference L1"
api_tn "$alice_a" POST /v1/stacks --json "$(sh_spec web)"
sh_wait_op "$alice_a" "$(jb .operation.id)" 120
is "$OP_STATUS" succeeded "alice's stack runs on A"
api_tn "$alice_a" GET /v1/stacks/web
id=$(jb .stack.id)
domain=turtles-$id

# last_beat TOKEN: the last L2 heartbeat number on the current instance's console.
last_beat() {
    api_tn "$1" GET "/v1/stacks/web/console?tail=50"
    tr -d '\r' <<<"$BODY" | grep -o 'TURTLES-L2 HB [0-9]*' | tail -n 1 | awk '{ print $3 }'
}
# beats_past TOKEN N: waits until a heartbeat greater than N shows; 1 on timeout.
beats_past() {
    local n deadline=$(($(now_ms) + 60000))
    while :; do
        n=$(last_beat "$1")
        [ -n "$n" ] && [ "$n" -gt "$2" ] && return 0
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 1
    done
}
sh_wait_console "$alice_a" web 'TURTLES-L2 HB 3 ' 180
ok $? "L2 beats on A" || diag "$(tail -n 15 <<<"$CONSOLE")"

# ---- refusals --------------------------------------------------------------------
api_tn "$alice_a" POST /v1/stacks/web/migrate --json '{"peer":"nowhere"}'
is_error 404 not_found "an unknown peer"
api_tn "$alice_a" POST /v1/stacks/web/migrate --json '{"peer":"hostb","live":false}'
is_error 400 bad_request "an offline migration"

# ---- the peer's libvirtd dead before the migration -------------------------------
testhost_kill_daemon b KILL
api_tn "$alice_a" POST /v1/stacks/web/migrate --json '{"peer":"hostb"}'
is "$STATUS" 202 "a migration to a dead peer is accepted"
sh_wait_op "$alice_a" "$(jb .operation.id)" 60
is "$OP_STATUS" failed "... and fails"
like "$OP_ERROR" 'unreachable|connect' "with a reason: $OP_ERROR"
api_tn "$alice_a" GET /v1/stacks/web
is "$(jb .stack.state)" running "the stack still runs on A"
n=$(last_beat "$alice_a")
beats_past "$alice_a" "$n"
ok $? "and its L2 still beats (past $n)"
testhost_restart_daemon b || bail "host b's libvirtd did not come back"
# B's turtled reconnects by itself.
sh_use b
for _ in $(seq 1 100); do
    api_op GET /v1/stacks
    [ "$STATUS" = 200 ] && break
    sleep 0.2
done
sh_use a

# ---- the peer's libvirtd dies during the migration --------------------------------
api_tn "$alice_a" POST /v1/stacks/web/migrate --json '{"peer":"hostb"}'
op=$(jb .operation.id)
stage=""
for _ in $(seq 1 300); do
    api_tn "$alice_a" GET "/v1/operations/$op"
    stage=$(jb .operation.progress.stage)
    case "$(jb .operation.status) $stage" in "running migrating"* | "running memory"* | "running setup"* | *" failed"* | succeeded*) break ;; esac
    sleep 0.05
done
testhost_kill_daemon b KILL
note "killed host b's libvirtd at stage '$stage'"
sh_wait_op "$alice_a" "$op" 120
is "$OP_STATUS" failed "a migration whose peer dies midway fails ($OP_ERROR)"
api_tn "$alice_a" GET /v1/stacks/web
is "$(jb .stack.state)" running "the stack still runs on A"
n=$(last_beat "$alice_a")
beats_past "$alice_a" "$n"
ok $? "and its L2 still beats (past $n)"
testhost_restart_daemon b || bail "host b's libvirtd did not come back"
is "$(testhost_virsh b list --all --name | grep -c '^turtles-')" 0 "nothing of the stack is left on B"
sh_use b
for _ in $(seq 1 100); do
    api_op GET /v1/stacks
    [ "$STATUS" = 200 ] && [ "$(jb '.stacks | length')" = 0 ] && break
    sleep 0.2
done
is "$(jb '.stacks | length')" 0 "B's turtled has no stack"
sh_use a

# ---- A -> B ------------------------------------------------------------------------
td_bg_start events curl -sN --max-time 600 -H "Authorization: Bearer $alice_a" \
    "http://127.0.0.1:$TD_PORT/v1/events" -o "$TD_DIR/events-a.txt"
before=$(last_beat "$alice_a")
api_tn "$alice_a" POST /v1/stacks/web/migrate --json '{"peer":"hostb"}'
is "$STATUS" 202 "migrate to hostb answers 202"
op=$(jb .operation.id)
api_tn "$alice_a" GET /v1/stacks/web
is "$(jb .stack.state)" migrating "the stack is migrating"
sh_wait_op "$alice_a" "$op" 300
is "$OP_STATUS" succeeded "stack.migrate succeeds $OP_ERROR"
api_tn "$alice_a" GET "/v1/operations/$op"
final_stage=$(jb .operation.progress.stage)
like "$final_stage" 'migrated to hostb in [0-9.]+ s, downtime [1-9][0-9]* ms' "the operation records time and a non-zero downtime: $final_stage"
ok "$([ "$(jb .operation.progress.bytes_done)" -gt 0 ] && echo 0 || echo 1)" "and the bytes moved ($(jb .operation.progress.bytes_done))"
sleep 0.5
td_bg_stop events
grep -q '"event":"migrated-out"' "$TD_DIR/events-a.txt"
ok $? "A's event stream says the stack migrated out"

api_tn "$alice_a" GET /v1/stacks/web
is "$STATUS" 404 "A forgot the stack"
is "$(testhost_virsh a list --all --name | grep -c '^turtles-')" 0 "A has no domain left"
is "$(sh_files "$TD_STATE/consoles" | wc -l) $(sh_files "$TD_STATE/pools/disks" | wc -l)" "0 0" \
    "nor console log nor disk"

sh_use b
api_op POST /v1/tenants/alice/tokens
is "$STATUS" 201 "B adopted tenant alice (its operator issues her a token)"
alice_b=$(jb .token.secret)
api_tn "$alice_b" GET /v1/stacks/web
is "$STATUS $(jb .stack.state) $(jb .stack.id)" "200 running $id" "B runs the stack, same id"
api_tn "$alice_b" GET /v1/images
is "$(jb '[.images[] | .name + ":" + .state] | join(" ")')" "l1-initrd:ready l1-kernel:ready" \
    "B has alice's boot images, ready"
beats_past "$alice_b" "$before"
ok $? "on B the L2 heartbeat counter goes on past its last value on A ($before)"
api_tn "$alice_b" GET /v1/stacks/web/console
console_b=$(tr -d '\r' <<<"$BODY")
first_b=$(grep -o 'TURTLES-L2 HB [0-9]*' <<<"$console_b" | head -n 1 | awk '{ print $3 }')
ok "$([ -n "$first_b" ] && [ "$first_b" -gt 1 ] && echo 0 || echo 1)" \
    "B's first heartbeat is $first_b, not 1: the L2 was not restarted"
grep -q 'TURTLES-L1 READY' <<<"$console_b"
ok $((!$?)) "and the L1 did not boot again on B"
# B records the figures once libvirt has them, a moment after the resume.
deadline=$(($(now_ms) + 15000))
while api_tn "$alice_b" GET /v1/stacks/web/stats && [ "$(jb .stats.last_migration)" = null ] &&
    [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.2; done
is "$STATUS $(jb .stats.state)" "200 running" "stats on B"
ok "$(jq -e '.stats.last_migration | .total_ms > 0 and .downtime_ms > 0 and .bytes > 0' <<<"$BODY" >/dev/null && echo 0 || echo 1)" \
    "and its last migration: $(jb -c .stats.last_migration)"

# ---- B -> A ------------------------------------------------------------------------
before=$(last_beat "$alice_b")
api_tn "$alice_b" POST /v1/stacks/web/migrate --json '{"peer":"hosta"}'
sh_wait_op "$alice_b" "$(jb .operation.id)" 300
is "$OP_STATUS" succeeded "migrating back to A succeeds $OP_ERROR"
api_tn "$alice_b" GET /v1/stacks/web
is "$STATUS" 404 "B forgot it"
sh_use a
api_tn "$alice_a" GET /v1/stacks/web
is "$STATUS $(jb .stack.state)" "200 running" "A runs it again"
beats_past "$alice_a" "$before"
ok $? "its L2 beats on past $before"

# ---- a migration cancelled while memory moves -------------------------------------
# libvirt's per-domain migration speed, lowered to 8 MiB/s, keeps memory
# moving for several seconds: the cancel lands during the copy, not after it.
testhost_virsh a migrate-setspeed "$domain" 8 >/dev/null
ok $? "A's libvirt slows this domain's migrations to 8 MiB/s"
before=$(last_beat "$alice_a")
api_tn "$alice_a" POST /v1/stacks/web/migrate --json '{"peer":"hostb"}'
is "$STATUS" 202 "migrate to hostb answers 202"
op=$(jb .operation.id)
stage="" deadline=$(($(now_ms) + 120000))
while api_tn "$alice_a" GET "/v1/operations/$op" && [ "$(jb .operation.status)" != succeeded ] &&
    [ "$(jb .operation.status)" != failed ] && [ "$(now_ms)" -lt "$deadline" ]; do
    stage=$(jb .operation.progress.stage)
    [ "$stage" = memory ] && [ "$(jb .operation.progress.bytes_done)" -gt 0 ] && break
    sleep 0.1
done
is "$stage" memory "the migration is moving memory ($(jb .operation.progress.bytes_done) of $(jb .operation.progress.bytes_total) bytes)"
api_tn "$alice_a" DELETE "/v1/operations/$op"
is "$STATUS" 202 "the tenant cancels it: 202"
sh_wait_op "$alice_a" "$op" 60
is "$OP_STATUS" cancelled "the operation ends cancelled ($OP_ERROR)"
api_tn "$alice_a" GET /v1/stacks/web
is "$STATUS $(jb .stack.state)" "200 running" "the stack runs on A"
is "$(testhost_virsh b list --all --name | grep -c '^turtles-')" 0 "no domain of it on B"
sh_use b
api_tn "$alice_b" GET /v1/stacks/web
is "$STATUS" 404 "B's turtled has no stack"
sh_use a
beats_past "$alice_a" "$before"
ok $? "its L2 beats on past $before"
testhost_virsh a migrate-setspeed "$domain" 8796093022207 >/dev/null

api_tn "$alice_a" DELETE /v1/stacks/web
sh_wait_op "$alice_a" "$(jb .operation.id)" 60
is "$OP_STATUS" succeeded "the stack deletes"
is "$(testhost_virsh a list --all --name | grep -c '^turtles-') $(testhost_virsh b list --all --name | grep -c '^turtles-')" \
    "0 0" "no domain of ours on either host"

td_done
