#!/usr/bin/env bash
# turtlectl stack migrate between two private libvirt hosts (a, b), each
# with its turtled (tcg backend, the reference L1 image), through turtlectl
# only (the harness aside): the operators add the peers with `peer add`,
# the tenant creates a stack (`stack create --wait`) and waits for its L2
# heartbeats (`stack console --tail`).  Refusals first: no --to and a bad
# peer name exit 2 with the usage, an unknown peer exits 1 with the API's
# message.  `stack migrate web --to hostb --wait` exits 0 after progress
# lines on stderr; its json is the succeeded operation with the final stage
# (time, downtime, bytes); A forgot the stack; on B (whose operator issues
# alice a token) the stack runs, same id, and the L2 heartbeat counter goes
# on past A's last.  Back to A without --wait on a terminal (script(1)):
# the operation table, then `operation wait`; then a progress bar.
#
#   TURTLES_BUILD=build tests/system/cli-migrate.t
#
# TURTLES_BOOT_TIMEOUT (s, default 120) bounds the wait for L2's heartbeats.
# shellcheck disable=SC2119,SC2153 # sh_start takes optional arguments; td_start sets TD_PORT
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
command -v libvirtd >/dev/null || skip_all "libvirtd is not installed"
. tests/lib/stackhost.sh
. tests/lib/turtlectl.sh

boot_timeout=${TURTLES_BOOT_TIMEOUT:-120}

sh_init
cli_init
testhost_start b || bail "cannot start the second private libvirt host"
sh_start || bail "turtled A did not start"
sh_save a
port_a=$TD_PORT
sh_start_on b b || bail "turtled B did not start"
port_b=$TD_PORT
uri_a=$(testhost_uri a)
uri_b=$(testhost_uri b)

# ---- the operators: peers, a tenant ------------------------------------------------------------
# libvirt through the peer's UNIX socket, the memory to its address on the test's switch.
sh_use a
op peer add hostb --libvirt-uri "$uri_b" --migrate-uri "tcp://$TESTHOST_B_ADDR"
is "$RC $(jq -r .peer.name <<<"$OUT")" "0 hostb" "A's operator: peer add hostb" || diag "$ERR"
sh_use b
op peer add hosta --libvirt-uri "$uri_a" --migrate-uri "tcp://$TESTHOST_A_ADDR"
is "$RC $(jq -r .peer.name <<<"$OUT")" "0 hosta" "B's operator: peer add hosta" || diag "$ERR"
sh_use a
op tenant create alice
alice_a=$(jq -r .token.secret <<<"$OUT")
is "$RC" 0 "A's operator: tenant create alice" || bail "no tenant: $ERR"

# The tenant over TCP, to each host.
ta() { ctl --url "http://127.0.0.1:$port_a" --token "$alice_a" "$@"; }
tb() { ctl --url "http://127.0.0.1:$port_b" --token "$alice_b" "$@"; }

# last_beat RUNNER: the last L2 heartbeat number on that host's console.
last_beat() {
    "$1" stack console web --tail 50
    tr -d '\r' <<<"$OUT" | grep -o 'TURTLES-L2 HB [0-9]*' | tail -n 1 | awk '{ print $3 }'
}
# beats_past RUNNER N SECONDS: waits until a heartbeat greater than N shows; 1 on timeout.
beats_past() {
    local n deadline=$(($(now_ms) + $3 * 1000))
    while :; do
        n=$(last_beat "$1")
        [ -n "$n" ] && [ "$n" -gt "$2" ] && return 0
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 1
    done
}

# ---- the tenant's stack on A -------------------------------------------------------------------
ta image create l1-kernel --kind kernel --file "$SH_KERNEL"
r=$RC
ta image create l1-initrd --kind initrd --file "$SH_INITRD"
is "$r $RC $(jq -r .image.state <<<"$OUT")" "0 0 ready" "alice uploads the reference L1 to A" ||
    bail "no images: $ERR"
ta stack create web --vcpus 1 --memory 512 --kernel l1-kernel --initrd l1-initrd \
    --cmdline console=ttyS0 --wait
is "$RC $(jq -r .operation.status <<<"$OUT")" "0 succeeded" "stack create web --wait on A" ||
    bail "no stack: $ERR"
ta stack show web
id=$(jq -r .stack.id <<<"$OUT")
beats_past ta 2 "$boot_timeout"
ok $? "its L2 beats on A (stack console --tail)" || bail "no heartbeat: $(tail -n 5 <<<"$OUT")"

# ---- refusals ----------------------------------------------------------------------------------
ta stack migrate web
is "$RC $(head -n 1 <<<"$ERR")" "2 turtlectl: stack migrate: missing --to PEER" \
    "stack migrate without --to: exit 2"
grep -q '^usage: turtlectl stack ' <<<"$ERR" && grep -q '^ *turtlectl stack migrate NAME --to PEER \[--wait\]$' <<<"$ERR"
ok $? "... with the stack usage" || diag "$ERR"
ta stack migrate web --to hostB
is "$RC $(head -n 1 <<<"$ERR")" \
    "2 turtlectl: stack migrate: --to: must be a peer name: 1-63 lowercase letters, digits and '-' (not 'hostB')" \
    "stack migrate --to a bad name: exit 2"
ta stack migrate web --to nowhere --wait
is "$RC $ERR" "1 turtlectl: peer 'nowhere' not found" "stack migrate --to nowhere: exit 1, the API's 404 message"
ta stack show web
is "$(jq -r .stack.state <<<"$OUT")" running "... and the stack still runs on A"

# The peer's turtled adopts the stack on libvirt's "migrated in" event, a
# moment after the source's operation ends: the checks on the peer wait for
# that (polling turtlectl), never for a guessed time.
# adopted RUNNER: that host's turtled shows the stack running.
adopted() {
    "$1" stack show web
    [ "$RC $(jq -r .stack.state <<<"$OUT" 2>/dev/null)" = "0 running" ]
}
tenant_on_b() {
    op tenant show alice
    [ "$RC" = 0 ]
}

# ---- A -> B, --wait ----------------------------------------------------------------------------
# Slowed to 50 MiB/s (A's libvirt keeps the speed for the domain), the copy
# lasts a few seconds, so --wait shows it under way whatever the machine's load.
testhost_virsh a migrate-setspeed "turtles-$id" 50 >/dev/null
ok $? "A's libvirt slows this domain's migrations to 50 MiB/s"
before=$(last_beat ta)
ta stack migrate web --to hostb --wait
is "$RC" 0 "stack migrate web --to hostb --wait: exit 0" || diag "$ERR"
MIGRATED=$OUT
MIGRATE_ERR=$ERR
is "$(jq -r '[.operation.kind, .operation.status, .operation.progress.percent] | @tsv' <<<"$MIGRATED")" \
    "$(printf 'stack.migrate\tsucceeded\t100')" "... its json: the stack.migrate operation, succeeded, 100%"
final_stage=$(jq -r .operation.progress.stage <<<"$MIGRATED")
like "$final_stage" '^migrated to hostb in [0-9.]+ s, downtime [1-9][0-9]* ms, [0-9.]+ MiB moved$' \
    "... with the final stage: $final_stage"
ok "$([ "$(jq -r .operation.progress.bytes_done <<<"$MIGRATED")" -gt 0 ] && echo 0 || echo 1)" \
    "... and the bytes moved ($(jq -r .operation.progress.bytes_done <<<"$MIGRATED"))"
op_id=$(jq -r .operation.id <<<"$MIGRATED")
ta operation show "$op_id"
same_json "$MIGRATED" "$OUT" "... the operation as A's turtled has it"
# Not a terminal: a line per change, the last the final one.
progress=$(grep "^operation $op_id: " <<<"$MIGRATE_ERR")
ok "$([ "$(grep -c . <<<"$progress")" -ge 2 ] && echo 0 || echo 1)" \
    "progress lines on stderr ($(grep -c . <<<"$progress"))" || diag "$MIGRATE_ERR"
is "$(tail -n 1 <<<"$progress")" "operation $op_id: succeeded 100% $final_stage" "... the last one final"

ta stack show web
is "$RC $ERR" "1 turtlectl: stack 'web' not found" "A forgot the stack"
is "$(testhost_virsh a list --all --name | grep -c '^turtles-')" 0 "A has no domain left"

sh_use b
poll_until 60 tenant_on_b
op token create alice
alice_b=$(jq -r .token.secret <<<"$OUT")
is "$RC" 0 "B's operator: token create alice (B adopted the tenant)" || diag "$ERR"
poll_until 30 adopted tb
is "$RC $(jq -r '[.stack.state, .stack.id] | @tsv' <<<"$OUT")" "0 $(printf 'running\t%s' "$id")" \
    "on B: stack show web says running, same id"
beats_past tb "$before" 60
ok $? "on B the L2 heartbeat counter goes on past A's last ($before)"
tb stack console web
first_b=$(tr -d '\r' <<<"$OUT" | grep -o 'TURTLES-L2 HB [0-9]*' | head -n 1 | awk '{ print $3 }')
ok "$([ -n "$first_b" ] && [ "$first_b" -gt 1 ] && ! grep -q 'TURTLES-L1 READY' <<<"$OUT" && echo 0 || echo 1)" \
    "B's console starts at heartbeat $first_b, without an L1 boot: nothing restarted"

# ---- B -> A: no --wait, then on a terminal -----------------------------------------------------
before=$(last_beat tb)
tb --format table stack migrate web --to hosta
is "$RC" 0 "stack migrate web --to hosta (table, no --wait): exit 0" || diag "$ERR"
grep -Eq '^kind: +stack\.migrate$' <<<"$OUT" && grep -Eq '^target: +stacks/web$' <<<"$OUT"
ok $? "... the operation's table: stack.migrate of web" || diag "$OUT"
back=$(sed -n 's/^id: *//p' <<<"$OUT")
tb operation wait "$back"
is "$RC $(jq -r .operation.status <<<"$OUT")" "0 succeeded" "operation wait: it succeeds" || diag "$ERR"
poll_until 30 adopted ta
is "$RC $(jq -r .stack.state <<<"$OUT")" "0 running" "A runs the stack again"
beats_past ta "$before" 60
ok $? "its L2 beats on past B's last ($before)"

if command -v script >/dev/null; then
    script -qec "$CTL --url http://127.0.0.1:$port_a --token $alice_a stack migrate web --to hostb --wait" \
        /dev/null >"$TD_DIR/tty.out" 2>&1
    tr '\r' '\n' <"$TD_DIR/tty.out" >"$TD_DIR/tty.lines"
    grep -Eq '^\[#{30}\] 100% migrated to hostb in .* \(succeeded\)' "$TD_DIR/tty.lines" &&
        grep -Eq '^status: +succeeded$' "$TD_DIR/tty.lines"
    ok $? "on a terminal: a progress bar ending at 100% migrated, then the table" ||
        diag "$(tail -n 5 "$TD_DIR/tty.lines")"
else
    skip "no script(1) to give turtlectl a terminal"
fi
poll_until 30 adopted tb
ok $? "B runs the stack again" || diag "$OUT $ERR"
tb stack delete web --wait
is "$RC $(jq -r .operation.status <<<"$OUT")" "0 succeeded" "stack delete web --wait on B"
is "$(testhost_virsh a list --all --name | grep -c '^turtles-') $(testhost_virsh b list --all --name | grep -c '^turtles-')" \
    "0 0" "no domain of ours on either host"

cli_done
td_done
