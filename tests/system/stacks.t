#!/bin/bash
# Stacks end to end, over HTTP only: turtled (tcg backend) on a private
# libvirt host; a tenant uploads the reference L1 image, creates a stack,
# and the console API shows READY with nested=1 and increasing L2
# heartbeats; pause, resume, stop, start and reboot each reach their state
# (and libvirt agrees); a state that forbids an action answers 409; stats
# come from libvirt; lifecycle events reach /v1/events; an L1 that powers
# itself off becomes stopped and a QEMU that dies becomes error; another
# tenant gets 404 on all of it; over quota answers 403 and creates nothing;
# a disk-boot stack gets a qcow2 overlay; delete leaves no domain, volume
# or file behind.
#
#   TURTLES_BUILD=build tests/system/stacks.t

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
# shellcheck source-path=SCRIPTDIR source=../lib/stackhost.sh
. "$here/../lib/stackhost.sh"

sh_init
sh_start || bail "turtled did not start"
disks=$TD_STATE/pools/disks
consoles=$TD_STATE/consoles

td_tenant alice || bail "no tenant"
alice=$TOKEN
td_tenant bob || bail "no tenant"
bob=$TOKEN
sh_upload_reference "$alice"
ok $? "alice uploads the reference L1 kernel and initrd"

td_bg_start events curl -sN --max-time 600 -H "Authorization: Bearer $alice" \
    "http://127.0.0.1:$TD_PORT/v1/events" -o "$TD_DIR/events.txt"

# ---- create ---------------------------------------------------------------------
api_tn "$alice" POST /v1/stacks --json "$(sh_spec web)"
is "$STATUS" 202 "POST /v1/stacks answers 202"
is "$(jb .stack.state)" provisioning "the new stack is provisioning"
is "$(hdr Location)" "/v1/operations/$(jb .operation.id)" "Location names the operation"
op=$(jb .operation.id)
id=$(jb .stack.id)
domain=turtles-$id
sh_wait_op "$alice" "$op" 120
is "$OP_STATUS" succeeded "stack.create succeeds ($OP_ERROR)"
api_tn "$alice" GET /v1/operations/"$op"
is "$(jb .operation.kind) $(jb .operation.target)" "stack.create stacks/web" "the operation names its kind and target"
api_tn "$alice" GET /v1/stacks/web
is "$(jb .stack.state) $(jb .stack.backend)" "running $SH_BACKEND" "the stack runs on the $SH_BACKEND backend"
grep -qx "$domain" <<<"$(sh_domains)"
ok $? "libvirt has its domain $domain"

sh_wait_console "$alice" web 'TURTLES-L2 HB 3 ' 180
ok $? "the console shows three L2 heartbeats" || diag "$(tail -n 20 <<<"$CONSOLE")"
ready=$(grep -o 'TURTLES-L1 READY.*' <<<"$CONSOLE" | head -n 1)
like "$ready" 'nested=1' "READY says nested=1: $ready"
like "$ready" 'kvm=ok' "the L1's KVM works"
beats=$(sh_heartbeats | tr '\n' ' ')
increasing=$(sh_heartbeats | awk 'NR > 1 && $1 <= prev { bad = 1 } { prev = $1 } END { print (NR >= 3 && !bad) ? "yes" : "no" }')
is "$increasing" yes "at least 3 increasing heartbeats: $beats"
api_tn "$alice" GET "/v1/stacks/web/console?tail=2"
# Empty lines count: the L1's serial shell writes some (prompts, echoes).
is "$(printf '%s' "$BODY" | awk 'END { print NR }')" 2 "console?tail=2 gives two lines" ||
    diag "$(printf '%s' "$BODY" | od -c | tail -n 12)"

# ---- stats ----------------------------------------------------------------------
api_tn "$alice" GET /v1/stacks/web/stats
is "$STATUS" 200 "stats answer 200"
ok "$([ "$(jb .stats.cpu.time_ns)" -gt 0 ] 2>/dev/null; echo $?)" "cpu time is counted ($(jb .stats.cpu.time_ns) ns)"
is "$(jb .stats.cpu.vcpus) $(jb .stats.memory.maximum_kib)" "1 524288" "vCPUs and memory as the spec says"

# ---- actions --------------------------------------------------------------------
# act ACTION STATE VIRSH_STATE: the action's operation succeeds, the stack
# reaches STATE and libvirt says VIRSH_STATE.
act() {
    api_tn "$alice" POST /v1/stacks/web/actions --json "{\"action\":\"$1\"}"
    is "$STATUS" 202 "$1 answers 202"
    sh_wait_op "$alice" "$(jb .operation.id)" 60
    is "$OP_STATUS" succeeded "stack.$1 succeeds $OP_ERROR"
    api_tn "$alice" GET /v1/stacks/web
    is "$(jb .stack.state)" "$2" "after $1 the stack is $2"
    is "$(testhost_virsh a domstate "$domain" 2>/dev/null | head -n 1)" "$3" "libvirt agrees: $3"
}
act pause paused paused
api_tn "$alice" POST /v1/stacks/web/actions --json '{"action":"pause"}'
is_error 409 conflict "pausing a paused stack"
like "$(jb .error.message)" 'cannot pause' "the message says why: $(jb .error.message)"
act resume running running
act stop stopped "shut off"
api_tn "$alice" POST /v1/stacks/web/actions --json '{"action":"reboot"}'
is_error 409 conflict "rebooting a stopped stack"
api_tn "$alice" GET /v1/stacks/web/stats
is "$(jb .stats.state) $(jb .stats.cpu)" "stopped null" "a stopped stack has no cpu figures"
act start running running
# readies_at_least N: the console shows N READY lines (a restart appends).
readies_at_least() {
    local deadline=$(($(now_ms) + 120000))
    until [ "$(grep -c 'TURTLES-L1 READY' <<<"$CONSOLE")" -ge "$1" ]; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 1
        api_tn "$alice" GET /v1/stacks/web/console
        CONSOLE=$(tr -d '\r' <<<"$BODY")
    done
}
readies_at_least 2
ok $? "the console log kept the first boot and shows the second READY"
act reboot running running
readies_at_least 3
ok $? "after the reboot a third READY appears"
api_tn "$alice" POST /v1/stacks/web/actions --json '{"action":"fly"}'
is_error 400 bad_request "an unknown action"

# ---- state from libvirt's own events --------------------------------------------
qemu_pid=$(testhost_pids a | while read -r p; do
    grep -q "$domain" "/proc/$p/cmdline" 2>/dev/null && echo "$p"
done | head -n 1)
[ -n "$qemu_pid" ] && kill -9 "$qemu_pid"
state=""
for _ in $(seq 1 100); do
    api_tn "$alice" GET /v1/stacks/web
    state=$(jb .stack.state)
    [ "$state" = error ] && break
    sleep 0.1
done
is "$state" error "a QEMU killed under the stack puts it in error"
like "$(jb .stack.error)" 'QEMU|crash' "with the reason: $(jb .stack.error)"
act start running running

api_tn "$alice" POST /v1/stacks --json "$(sh_spec bench | sed 's/console=ttyS0/console=ttyS0 turtles.mode=bench turtles.count=1000/')"
is "$STATUS" 202 "a stack whose L1 runs the bench and powers off"
sh_wait_op "$alice" "$(jb .operation.id)" 120
state=""
for _ in $(seq 1 180); do
    api_tn "$alice" GET /v1/stacks/bench
    state=$(jb .stack.state)
    [ "$state" = stopped ] && break
    sleep 1
done
is "$state" stopped "an L1 that powers itself off becomes stopped"

sleep 1
td_bg_stop events
grep -q '"event":"stopped"' "$TD_DIR/events.txt" && grep -q '"event":"started"' "$TD_DIR/events.txt"
ok $? "lifecycle events (started, stopped) reached alice's /v1/events"
grep -q '"tenant":"bob"' "$TD_DIR/events.txt"
ok $((!$?)) "and none of bob's"

# ---- isolation ------------------------------------------------------------------
for req in "GET /v1/stacks/web" "GET /v1/stacks/web/console" "GET /v1/stacks/web/stats" \
    "DELETE /v1/stacks/web" "GET /v1/images/l1-kernel" "DELETE /v1/images/l1-kernel"; do
    read -r method path <<<"$req"
    api_tn "$bob" "$method" "$path"
    is_error 404 not_found "bob: $req"
done
api_tn "$bob" POST /v1/stacks/web/actions --json '{"action":"stop"}'
is_error 404 not_found "bob: POST /v1/stacks/web/actions"
api_tn "$bob" GET /v1/stacks
is "$(jb '.stacks | length')" 0 "bob lists no stacks"
api_tn "$bob" POST /v1/stacks --json "$(sh_spec web)"
is_error 400 bad_request "bob cannot boot alice's images"

# ---- quota ----------------------------------------------------------------------
api_op PATCH /v1/tenants/alice --json '{"quota":{"vcpus":2}}'
domains_before=$(sh_domains | sort | tr '\n' ' ')
api_tn "$alice" POST /v1/stacks --json "$(sh_spec web3)"
is_error 403 quota_exceeded "a third vCPU is over alice's quota"
like "$(jb .error.message)" vcpus "the message names the quota: $(jb .error.message)"
api_tn "$alice" GET /v1/stacks/web3
is "$STATUS" 404 "the refused stack does not exist"
is "$(sh_domains | sort | tr '\n' ' ')" "$domains_before" "and libvirt has no new domain"
api_op PATCH /v1/tenants/alice --json '{"quota":{"vcpus":8}}'

# ---- disk boot: a qcow2 overlay on the image ------------------------------------
head -c 1048576 /dev/zero >"$TD_DIR/blank.raw"
sh_upload "$alice" blank disk "$TD_DIR/blank.raw"
ok $? "a raw disk image uploads"
api_tn "$alice" POST /v1/stacks --json '{"name":"disky","vcpus":1,"memory_mib":256,"boot":{"disk":"blank"},"start":false}'
sh_wait_op "$alice" "$(jb .operation.id)" 60
is "$OP_STATUS" succeeded "a disk-boot stack is created (not started)"
api_tn "$alice" GET /v1/stacks/disky
is "$(jb .stack.state)" stopped "start:false leaves it stopped"
disky=$(jb .stack.id)
is "$(sh_files "$disks" | xargs -n1 basename 2>/dev/null)" "$disky.qcow2" "its overlay is in turtles-disks"
api_tn "$alice" DELETE /v1/images/blank
is_error 409 conflict "an image a stack uses cannot be deleted"

# ---- delete ---------------------------------------------------------------------
for name in web bench disky; do
    api_tn "$alice" DELETE "/v1/stacks/$name"
    is "$STATUS" 202 "DELETE $name answers 202"
    sh_wait_op "$alice" "$(jb .operation.id)" 60
    is "$OP_STATUS" succeeded "stack.delete of $name succeeds $OP_ERROR"
    api_tn "$alice" GET "/v1/stacks/$name"
    is "$STATUS" 404 "$name is gone"
done
is "$(sh_domains | grep -c '^turtles-')" 0 "libvirt has no domain of ours left"
is "$(sh_files "$disks" | wc -l)" 0 "no disk is left in turtles-disks"
is "$(sh_files "$consoles" | wc -l)" 0 "no console log is left"
is "$(testhost_virsh a vol-list turtles-disks 2>/dev/null | grep -c qcow2)" 0 "libvirt lists no volume in turtles-disks"
api_tn "$alice" DELETE /v1/images/blank
is "$STATUS" 204 "the image is free again and deletes"

td_done
