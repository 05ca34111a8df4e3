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
# Faults strike when the operation reports memory moving, in a migration
# slowed down (virsh migrate-setspeed) to last seconds, never after a sleep;
# each case first puts the two hosts back in a known state (home_a), so that
# one that goes wrong cannot fail the cases after it.
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

# Peers, as each host's operator declares them: libvirt through the peer's UNIX
# socket, the memory to its address on the test's switch.
sh_use a
api_op POST /v1/peers --json "{\"name\":\"hostb\",\"libvirt_uri\":\"$uri_b\",\"migrate_uri\":\"tcp://$TESTHOST_B_ADDR\"}"
is "$STATUS" 201 "A's operator adds peer hostb"
sh_use b
api_op POST /v1/peers --json "{\"name\":\"hosta\",\"libvirt_uri\":\"$uri_a\",\"migrate_uri\":\"tcp://$TESTHOST_A_ADDR\"}"
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

# last_beat TOKEN, beats_past TOKEN N: the stack's heartbeats (stackhost.sh).
last_beat() { sh_last_beat "$1" web; }
beats_past() { sh_beats_past "$1" web "$2"; }
sh_wait_console "$alice_a" web 'TURTLES-L2 HB 3 ' 180
ok $? "L2 beats on A" || diag "$(tail -n 15 <<<"$CONSOLE")"

# ---- every case starts from a known state --------------------------------------------
# A case that goes wrong (a migration that succeeds where it should fail, a
# peer left dead, a cancel that comes too late) must not decide the cases
# after it.  home_a puts things back first: host b's libvirtd runs (restarted
# if a case killed it) and B's turtled is back on it; the stack runs on A
# (migrated back from B if it went there); no domain of ours is on b; A's
# libvirt migrates the domain at full speed.  When that cannot be done the
# test stops, rather than failing every case after it.
# Faults strike while memory moves, not after a sleep: the failure cases slow
# the migration down with libvirt's per-domain speed (virsh migrate-setspeed)
# so that the copy lasts seconds, wait until the operation reports memory
# moving, and only then kill the peer or cancel.
unlimited=8796093022207 # MiB/s: libvirt's largest, i.e. no limit

# td_log_of LABEL: the log of turtled instance LABEL.
td_log_of() {
    local log
    read -r _ _ _ _ log <<<"${SH_INSTANCES[$1]}"
    echo "$log"
}
# backs LABEL: how often that turtled found its libvirt back after losing it.
backs() {
    grep -c 'libvirt (.*) is back' "$(td_log_of "$1")"
}
backs_above() {
    [ "$(backs "$1")" -gt "$2" ]
}
ours_on() {
    testhost_virsh "$1" list --all --name 2>/dev/null | grep -c '^turtles-'
}
none_on() {
    [ "$(ours_on "$1")" = 0 ]
}
# slow_a MIB: A's libvirt migrates the stack's domain at MIB MiB/s from now
# on (libvirt keeps it for the domain's QEMU on A).
slow_a() {
    testhost_virsh a migrate-setspeed "$domain" "$1" >/dev/null
}
# revive_b: host b's libvirtd runs, restarted if a case killed it, and B's
# turtled has found it back (it reconnects by itself).
revive_b() {
    local n
    testhost_daemon_alive b && return 0
    n=$(backs b)
    testhost_restart_daemon b || {
        diag "host b's libvirtd does not come back"
        return 1
    }
    poll_until 60 backs_above b "$n" || {
        diag "B's turtled did not find host b's libvirtd back"
        return 1
    }
}
# settled_a: the stack is running on A, or A no longer has it (it went to B).
settled_a() {
    api_tn "$alice_a" GET /v1/stacks/web
    [ "$STATUS" = 404 ] || [ "$STATUS $(jb .stack.state)" = "200 running" ]
}
running_on() { # TOKEN
    api_tn "$1" GET /v1/stacks/web
    [ "$STATUS $(jb .stack.state)" = "200 running" ]
}
# alice_token_b: alice's token on B ($alice_b), once B's turtled has adopted her (on
# the "migrated in" event, a moment after A's operation ends).
alice_b=""
tenant_on_b() {
    api_op GET /v1/tenants/alice
    [ "$STATUS" = 200 ]
}
# It leaves B's turtled the current instance.
alice_token_b() {
    sh_use b
    [ -n "$alice_b" ] && return 0
    poll_until 60 tenant_on_b || return 1
    api_op POST /v1/tenants/alice/tokens
    [ "$STATUS" = 201 ] || return 1
    alice_b=$(jb .token.secret)
}
home_a() {
    revive_b || return 1
    sh_use a
    poll_until 300 settled_a || {
        diag "the stack stays $(jb .stack.state) on A"
        return 1
    }
    if [ "$STATUS" = 404 ]; then
        diag "the stack is not on A: bringing it back from B"
        if ! { alice_token_b && poll_until 60 running_on "$alice_b"; }; then
            diag "nor does it run on B: $STATUS $BODY"
            sh_use a
            return 1
        fi
        api_tn "$alice_b" POST /v1/stacks/web/migrate --json '{"peer":"hosta"}'
        sh_wait_op "$alice_b" "$(jb .operation.id)" 300
        sh_use a
        if [ "$OP_STATUS" != succeeded ] || ! poll_until 60 running_on "$alice_a"; then
            diag "cannot migrate it back to A: $OP_STATUS $OP_ERROR"
            return 1
        fi
    fi
    poll_until 60 none_on b || {
        diag "domains left on b: $(testhost_virsh b list --all --name)"
        return 1
    }
    slow_a "$unlimited" || return 1
}
# moving_memory OP: polls A's operation OP until libvirt is copying memory
# (stage "memory", bytes moved); 1 when the operation ends first or after
# 120 s.  The last answer stays in $BODY.
moving_memory() {
    local deadline=$(($(now_ms) + 120000))
    while :; do
        api_tn "$alice_a" GET "/v1/operations/$1"
        case $(jb .operation.status) in succeeded | failed | cancelled) return 1 ;; esac
        [ "$(jb .operation.progress.stage)" = memory ] &&
            [ "$(jb .operation.progress.bytes_done)" -gt 0 ] && return 0
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}
# b_has_no_stack: B's turtled lists no stack.
b_has_no_stack() {
    api_op GET /v1/stacks
    [ "$STATUS" = 200 ] && [ "$(jb '.stacks | length')" = 0 ]
}

# ---- refusals --------------------------------------------------------------------
api_tn "$alice_a" POST /v1/stacks/web/migrate --json '{"peer":"nowhere"}'
is_error 404 not_found "an unknown peer"
api_tn "$alice_a" POST /v1/stacks/web/migrate --json '{"peer":"hostb","live":false}'
is_error 400 bad_request "an offline migration"

# ---- the peer's libvirtd dead before the migration -------------------------------
home_a || bail "cannot bring the stack home to A before the dead-peer case"
testhost_kill_daemon b KILL
ok $? "host b's libvirtd is killed"
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

# ---- the peer's libvirtd dies during the migration --------------------------------
home_a || bail "cannot bring the stack home to A before the peer-dies-midway case"
slow_a 8
ok $? "A's libvirt slows this domain's migrations to 8 MiB/s"
api_tn "$alice_a" POST /v1/stacks/web/migrate --json '{"peer":"hostb"}'
is "$STATUS" 202 "migrate to hostb answers 202"
op=$(jb .operation.id)
moving_memory "$op"
ok $? "the migration is moving memory ($(jb .operation.progress.bytes_done) of $(jb .operation.progress.bytes_total) bytes, $(jb .operation.status) $(jb .operation.progress.stage))"
testhost_kill_daemon b KILL
ok $? "host b's libvirtd is killed while memory moves"
sh_wait_op "$alice_a" "$op" 120
is "$OP_STATUS" failed "a migration whose peer dies midway fails ($OP_ERROR)"
api_tn "$alice_a" GET /v1/stacks/web
is "$(jb .stack.state)" running "the stack still runs on A"
n=$(last_beat "$alice_a")
beats_past "$alice_a" "$n"
ok $? "and its L2 still beats (past $n)"
revive_b || bail "host b's libvirtd did not come back"
# libvirt kills the half-received domain as it restarts, in the background.
poll_until 60 none_on b
ok $? "nothing of the stack is left on B ($(ours_on b) domains)"
sh_use b
poll_until 20 b_has_no_stack
is "$(jb '.stacks | length')" 0 "B's turtled has no stack"
sh_use a

# ---- A -> B ------------------------------------------------------------------------
home_a || bail "cannot bring the stack home to A before the A -> B case"
# 50 MiB/s: the copy lasts a few seconds, long enough to be seen under way.
slow_a 50
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
migrated_out() { grep -q '"event":"migrated-out"' "$TD_DIR/events-a.txt" 2>/dev/null; }
poll_until 15 migrated_out
ok $? "A's event stream says the stack migrated out"
td_bg_stop events

api_tn "$alice_a" GET /v1/stacks/web
is "$STATUS" 404 "A forgot the stack"
is "$(testhost_virsh a list --all --name | grep -c '^turtles-')" 0 "A has no domain left"
is "$(sh_files "$TD_STATE/consoles" | wc -l) $(sh_files "$TD_STATE/pools/disks" | wc -l)" "0 0" \
    "nor console log nor disk"

alice_token_b
ok $? "B adopted tenant alice (its operator issues her a token)"
poll_until 30 running_on "$alice_b"
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
# B records the figures once libvirt has them: when the migration job ends,
# a moment (seconds on a loaded host) after the resume.
deadline=$(($(now_ms) + 60000))
while api_tn "$alice_b" GET /v1/stacks/web/stats && [ "$(jb .stats.last_migration)" = null ] &&
    [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.2; done
is "$STATUS $(jb .stats.state)" "200 running" "stats on B"
ok "$(jq -e '.stats.last_migration | .total_ms > 0 and .downtime_ms > 0 and .bytes > 0' <<<"$BODY" >/dev/null && echo 0 || echo 1)" \
    "and its last migration: $(jb -c .stats.last_migration)" ||
    diag "$(grep -i 'figures\|adopt' "$(td_log_of b)" | tail -n 5)"

# ---- B -> A ------------------------------------------------------------------------
# From wherever the A -> B case left the stack: home_a brings it back when
# that case failed, and this one then has nothing to move.
if alice_token_b && running_on "$alice_b"; then
    before=$(last_beat "$alice_b")
    api_tn "$alice_b" POST /v1/stacks/web/migrate --json '{"peer":"hosta"}'
    sh_wait_op "$alice_b" "$(jb .operation.id)" 300
    is "$OP_STATUS" succeeded "migrating back to A succeeds $OP_ERROR"
    api_tn "$alice_b" GET /v1/stacks/web
    is "$STATUS" 404 "B forgot it"
    sh_use a
    # A adopts it on the "migrated in" event, a moment after B's operation ends.
    poll_until 30 running_on "$alice_a"
    is "$STATUS $(jb .stack.state)" "200 running" "A runs it again"
    beats_past "$alice_a" "$before"
    ok $? "its L2 beats on past $before"
else
    sh_use a
    ok 1 "the stack runs on B, to migrate back to A ($STATUS $(jb .stack.state))"
fi

# ---- a migration cancelled while memory moves -------------------------------------
home_a || bail "cannot bring the stack home to A before the cancel case"
# Slowed to 8 MiB/s, memory moves for several seconds: the cancel lands
# during the copy, not after it.
slow_a 8
ok $? "A's libvirt slows this domain's migrations to 8 MiB/s"
before=$(last_beat "$alice_a")
api_tn "$alice_a" POST /v1/stacks/web/migrate --json '{"peer":"hostb"}'
is "$STATUS" 202 "migrate to hostb answers 202"
op=$(jb .operation.id)
moving_memory "$op"
ok $? "the migration is moving memory ($(jb .operation.progress.bytes_done) of $(jb .operation.progress.bytes_total) bytes, $(jb .operation.status) $(jb .operation.progress.stage))"
api_tn "$alice_a" DELETE "/v1/operations/$op"
is "$STATUS" 202 "the tenant cancels it: 202"
sh_wait_op "$alice_a" "$op" 60
is "$OP_STATUS" cancelled "the operation ends cancelled ($OP_ERROR)"
api_tn "$alice_a" GET /v1/stacks/web
is "$STATUS $(jb .stack.state)" "200 running" "the stack runs on A"
poll_until 30 none_on b
is "$(ours_on b)" 0 "no domain of it on B"
sh_use b
api_op GET /v1/stacks
is "$STATUS $(jb '.stacks | length')" "200 0" "B's turtled has no stack"
sh_use a
beats_past "$alice_a" "$before"
ok $? "its L2 beats on past $before"

home_a || bail "cannot bring the stack home to A to delete it"
api_tn "$alice_a" DELETE /v1/stacks/web
sh_wait_op "$alice_a" "$(jb .operation.id)" 60
is "$OP_STATUS" succeeded "the stack deletes"
is "$(testhost_virsh a list --all --name | grep -c '^turtles-') $(testhost_virsh b list --all --name | grep -c '^turtles-')" \
    "0 0" "no domain of ours on either host"

td_done
