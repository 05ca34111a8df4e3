#!/bin/bash
# Multi-level device assignment through the API, on a private libvirt host
# (tcg backend): the operator offers QEMU's edu test device (capacity 1) and
# a virtio-rng class; a tenant's stack asks for the edu, gets a vIOMMU, and
# its reference L1 reports the IOMMU and hands the edu on to an L2 that
# reads its ID, computes a factorial on it and does DMA through the L1's
# IOMMU, with 0 exits to the L1's VMM per access when the BAR is mapped
# into the L2 and one per access when it is trapped.  A second stack asking
# for the edu gets 409 no_capacity with nothing created, and succeeds once
# the first is deleted.  A virtio-rng hot-plugged into the running stack
# shows up in the L1 in an IOMMU group and goes again on detach; the edu
# cannot be hot-plugged; migration of a stack holding the edu is refused
# with the reason.  kill -9 of turtled during creates and hot-plugs: after
# a restart no device is held by a stack that does not exist and no stack
# lost a device its domain has.
#
#   TURTLES_BUILD=build tests/system/devices.t

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
# shellcheck source-path=SCRIPTDIR source=../lib/stackhost.sh
. "$here/../lib/stackhost.sh"

CRASH_ROUNDS=${CRASH_ROUNDS:-3}

sh_init
sh_start || bail "turtled did not start"
api_op POST /v1/device-classes --json '{"name":"test-edu","kind":"emulated","model":"edu","capacity":1}'
is "$STATUS" 201 "the operator offers one edu (class test-edu, capacity 1)"
api_op POST /v1/device-classes --json '{"name":"rng","kind":"emulated","model":"virtio-rng","capacity":16}'
is "$STATUS" 201 "and 16 virtio-rng devices (class rng)"
td_tenant alice '{"name":"alice","quota":{"stacks":8,"devices":32}}' || bail "no tenant"
alice=$TOKEN
sh_upload_reference "$alice" || bail "cannot upload the reference L1"

# dev_spec NAME CLASS: the reference L1 as any stack boots it: turtled turns
# the Intel vIOMMU on in its kernel (intel_iommu=on), and the image hands an
# edu it finds on to its L2 by itself.
dev_spec() {
    printf '{"name":"%s","vcpus":1,"memory_mib":512,"boot":{"kernel":"l1-kernel","initrd":"l1-initrd","cmdline":"console=ttyS0"},"devices":[{"class":"%s"}]}' "$1" "$2"
}
field() { # field NAME LINE: the value of NAME=... in LINE
    grep -o "$1=[^ ]*" <<<"$2" | head -n 1 | cut -d= -f2
}

# ---- a stack with the edu -----------------------------------------------------------------
api_tn "$alice" POST /v1/stacks --json "$(dev_spec one test-edu)"
is "$STATUS" 202 "a stack asking for test-edu is accepted"
is "$(jb -c '.stack | [.nesting.iommu, .devices[0].class, .devices[0].id, .devices[0].model]')" \
    '["intel","test-edu","test-edu-0","edu"]' "it holds test-edu-0 and got an Intel vIOMMU by default"
sh_wait_op "$alice" "$(jb .operation.id)" 180
is "$OP_STATUS" succeeded "the stack is created $OP_ERROR"
api_tn "$alice" GET /v1/stacks/one
one_id=$(jb .stack.id)
is "$(jb .stack.boot.cmdline)" console=ttyS0 "the stack's command line is the tenant's"
like "$(testhost_virsh a dumpxml "turtles-$one_id" | grep -o '<cmdline>.*</cmdline>')" \
    '<cmdline>console=ttyS0 intel_iommu=on</cmdline>' "... and its L1 kernel gets intel_iommu=on for the vIOMMU"

sh_wait_console "$alice" one 'TURTLES-L2 DEV ' 420
ok $? "the L1 reports the device's trip to its L2" || diag "$(tail -n 30 <<<"$CONSOLE")"
ready=$(grep -m 1 'TURTLES-L1 READY' <<<"$CONSOLE")
is "$(field iommu "$ready")" intel "READY says iommu=intel ($ready)"
groups=$(field groups "$ready")
ok "$([ "${groups:-0}" -ge 1 ] && echo 0 || echo 1)" "and at least one IOMMU group (groups=$groups)"
dev=$(grep -m 1 'TURTLES-L2 DEV ' <<<"$CONSOLE")
diag "$dev"
is "$(field id "$dev")" 0x010000ed "L2 read the edu's ID register"
is "$(field fact "$dev")" 3628800 "the edu computed 10! for L2"
is "$(field dma "$dev")" ok "L2's DMA went through the L1's IOMMU and came back intact"
is "$(field exits_direct "$dev")" 0 "with the BAR mapped into L2: 0 exits to the L1's VMM"
accesses=$(field accesses "$dev")
ok "$([ "${accesses:-0}" -gt 0 ] && echo 0 || echo 1)" "the trapped run made $accesses BAR accesses"
is "$(field exits_trapped "$dev")" "$accesses" "trapped: one exit to the L1's VMM per access"

api_op GET /v1/devices
is "$(jb -c '.devices[] | select(.id == "test-edu-0") | [.stack.name, .stack.tenant]')" '["one","alice"]' \
    "GET /v1/devices: test-edu-0 is held by alice/one"

# ---- no capacity ----------------------------------------------------------------------------------
stacks_before=$(api_tn "$alice" GET /v1/stacks >/dev/null; jb -c '[.stacks[].name]')
domains_before=$(sh_domains | wc -l)
api_tn "$alice" POST /v1/stacks --json "$(dev_spec two test-edu)"
is_error 409 no_capacity "a second stack asking for test-edu: 409 no_capacity"
like "$ERR_MESSAGE" "test-edu" "... naming the class ($ERR_MESSAGE)"
api_tn "$alice" GET /v1/stacks
is "$(jb -c '[.stacks[].name]') $(sh_domains | wc -l)" "$stacks_before $domains_before" \
    "... and nothing was created: no stack, no domain"

# ---- hot-plug ---------------------------------------------------------------------------------------
api_tn "$alice" POST /v1/stacks/one/devices --json '{"class":"test-edu"}'
is_error 409 conflict "the edu cannot be hot-plugged: 409"
like "$ERR_MESSAGE" "command line" "... because it enters through QEMU's command line"
api_tn "$alice" POST /v1/stacks/one/devices --json '{"class":"rng"}'
is "$STATUS" 202 "a virtio-rng is hot-plugged into the running stack"
sh_wait_op "$alice" "$(jb .operation.id)" 120
is "$OP_STATUS" succeeded "the attach succeeds $OP_ERROR"
api_tn "$alice" GET /v1/stacks/one
rng=$(jb '.stack.devices[] | select(.class == "rng") | .id')
is "$rng" rng-0 "the stack now holds rng-0"
sh_wait_console "$alice" one 'TURTLES-L1 PCI add [0-9a-f:.]+ 1af4:[0-9a-f]+ group=[0-9]+' 120
ok $? "the L1 sees it arrive, in an IOMMU group" || diag "$(tail -n 10 <<<"$CONSOLE")"
diag "$(grep 'TURTLES-L1 PCI add' <<<"$CONSOLE" | tail -n 1)"
grep -q "ua-turtles-$rng" <<<"$(testhost_virsh a dumpxml "turtles-$one_id")"
ok $? "libvirt's domain has it (alias ua-turtles-$rng)"

api_tn "$alice" DELETE "/v1/stacks/one/devices/$rng"
is "$STATUS" 202 "detach answers 202"
sh_wait_op "$alice" "$(jb .operation.id)" 120
is "$OP_STATUS" succeeded "the detach succeeds $OP_ERROR"
sh_wait_console "$alice" one 'TURTLES-L1 PCI remove' 60
ok $? "the L1 sees it go"
api_op GET /v1/devices
is "$(jb -c ".devices[] | select(.id == \"$rng\") | .stack")" null "rng-0 is back in the pool"
grep -q "ua-turtles-$rng" <<<"$(testhost_virsh a dumpxml --inactive "turtles-$one_id")"
ok $((!$?)) "and gone from the domain's configuration"

# ---- migration ----------------------------------------------------------------------------------------
api_op POST /v1/peers --json '{"name":"hostb","libvirt_uri":"qemu+tcp://192.0.2.1/system"}'
api_tn "$alice" POST /v1/stacks/one/migrate --json '{"peer":"hostb"}'
is_error 409 conflict "migrating a stack holding the edu: 409"
like "$ERR_MESSAGE" "edu.*no migration state" "... with the reason ($ERR_MESSAGE)"
api_tn "$alice" GET /v1/stacks/one
is "$(jb .stack.state)" running "and the stack keeps running"

# ---- the edu comes back with the delete -----------------------------------------------------------------
api_tn "$alice" DELETE /v1/stacks/one
sh_wait_op "$alice" "$(jb .operation.id)" 120
is "$OP_STATUS" succeeded "the first stack is deleted"
api_tn "$alice" POST /v1/stacks --json "$(dev_spec two test-edu)"
is "$STATUS $(jb .stack.devices[0].id)" "202 test-edu-0" "now the second stack gets test-edu-0"
sh_wait_op "$alice" "$(jb .operation.id)" 180
is "$OP_STATUS" succeeded "and is created $OP_ERROR"

# ---- kill -9 during creates and hot-plugs -------------------------------------------------------------
# consistent WHAT: every held device's stack exists and its domain has the
# device; every device a stack's domain has is held by that stack.  Quiet
# unless VERBOSE=1 (the restarted turtled reconciles in the background, so
# it is polled first).
say() { [ "${VERBOSE:-0}" = 1 ] && diag "$@"; }
consistent() {
    local bad=0 id stack sid xml
    api_op GET /v1/devices
    local devices=$BODY
    api_op GET /v1/stacks
    local stacks=$BODY
    while read -r id sid; do
        [ -n "$id" ] || continue
        if ! jq -e --arg s "$sid" '.stacks[] | select(.id == $s)' <<<"$stacks" >/dev/null; then
            say "$1: $id is held by stack $sid, which does not exist"
            bad=1
            continue
        fi
        xml=$(testhost_virsh a dumpxml --inactive "turtles-$sid" 2>/dev/null)
        grep -q "ua-turtles-$id" <<<"$xml" || {
            say "$1: $id is held by stack $sid, whose domain lacks it"
            bad=1
        }
    done < <(jq -r '.devices[] | select(.stack != null) | "\(.id) \(.stack.id)"' <<<"$devices")
    for stack in $(jq -r '.stacks[].id' <<<"$stacks"); do
        xml=$(testhost_virsh a dumpxml --inactive "turtles-$stack" 2>/dev/null)
        for id in $(grep -o 'ua-turtles-[a-z0-9.-]*' <<<"$xml" | sed 's/^ua-turtles-//' | sort -u); do
            [ "$(jq -r --arg d "$id" '.devices[] | select(.id == $d) | .stack.id // empty' <<<"$devices")" = "$stack" ] || {
                say "$1: the domain of stack $stack has $id, which the pool does not give it"
                bad=1
            }
        done
    done
    return $bad
}
kill_after() { # MS
    sleep "$(awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }')"
    td_kill9
    sh_start || bail "turtled did not come back after kill -9"
}
settle() { # waits until no operation of alice's runs
    local deadline=$(($(now_ms) + 120000))
    while api_tn "$alice" GET /v1/stacks && jq -e '.stacks[] | select(.state == "provisioning" or .state == "deleting")' <<<"$BODY" >/dev/null; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 1
    done
}
for round in $(seq "$CRASH_ROUNDS"); do
    delay=$((RANDOM % 1500))
    api_tn "$alice" POST /v1/stacks --json "$(dev_spec "crash$round" rng)"
    kill_after "$delay"
    settle
    what="create round $round (kill -9 after $delay ms)"
    poll_until 60 consistent "$what" || VERBOSE=1 consistent "$what"
    ok $? "kill -9 $delay ms into a create with a device: pool and domains agree"
    # The next round needs the CPU more than this L1 does.
    api_tn "$alice" DELETE "/v1/stacks/crash$round"
    [ "$STATUS" = 202 ] && sh_wait_op "$alice" "$(jb .operation.id)" 120
    delay=$((RANDOM % 1500))
    api_tn "$alice" POST /v1/stacks/two/devices --json '{"class":"rng"}'
    kill_after "$delay"
    what="hot-plug round $round (kill -9 after $delay ms)"
    poll_until 60 consistent "$what" || VERBOSE=1 consistent "$what"
    ok $? "kill -9 $delay ms into a hot-plug: pool and domains agree"
done
api_op GET /v1/devices
diag "after the crashes: $(jb -c '[.devices[] | select(.stack != null) | .id + "@" + .stack.name]')"

td_done
