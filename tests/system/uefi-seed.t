#!/bin/bash
# A tenant's own hypervisor disk, as tenants bring them: the reference L1 as
# a UEFI disk image (GPT, EFI system partition, systemd-boot; make l1-disk)
# uploaded as qcow2, booted with firmware uefi and a cloud-init seed.  Over
# HTTP only: the console shows the firmware boot, then the SEED line (the
# seed's host name, key count and the SHA-256 of the user data sent), READY
# with nested=1 and L2 heartbeats; the stack shows the user data only as
# its digest; the stack's NVRAM and seed are volumes of the disks pool; over
# the interactive console the L1's shell answers with the seed's host name.
# Secure boot: taken where the host's firmware can do it (A: Debian's ovmf),
# a 400 naming boot.secure_boot where it cannot (B offers only the plain
# OVMF descriptor).  Migration A -> B: NVRAM and seed arrive (the seed
# byte for byte), nothing stays on A, and L2 keeps beating.  kill -9 while
# such a stack is created, once the seed and once the NVRAM exists: after
# the restart no file of it is left.
#
#   TURTLES_BUILD=build tests/system/uefi-seed.t

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
# shellcheck source-path=SCRIPTDIR source=../lib/stackhost.sh
. "$here/../lib/stackhost.sh"
DISK_IMAGE=$TURTLES_BUILD/l1/l1-disk.qcow2
[ -f "$DISK_IMAGE" ] || bail "$DISK_IMAGE is missing (make l1-disk)"
[ -f /usr/share/qemu/firmware/60-edk2-x86_64.json ] || bail "no OVMF descriptors (make deps installs ovmf)"

sh_init
# Host b: UEFI firmware without secure boot.
plain_fw=$(mktemp -d)
cp /usr/share/qemu/firmware/60-edk2-x86_64.json "$plain_fw/"
TESTHOST_QEMU_FIRMWARE=$plain_fw testhost_start b || bail "cannot start the second private libvirt host"
rm -rf "$plain_fw"
sh_start || bail "turtled A did not start"
sh_save a
disks_a=$TD_STATE/pools/disks
sh_start_on b b || bail "turtled B did not start"
disks_b=$TD_STATE/pools/disks
api_op POST /v1/peers --json "{\"name\":\"hosta\",\"libvirt_uri\":\"$(testhost_uri a)\",\"migrate_uri\":\"tcp://$TESTHOST_A_ADDR\"}"
sh_use a
api_op POST /v1/peers --json "{\"name\":\"hostb\",\"libvirt_uri\":\"$(testhost_uri b)\",\"migrate_uri\":\"tcp://$TESTHOST_B_ADDR\"}"
is "$STATUS" 201 "A's operator adds peer hostb"

td_tenant alice || bail "no tenant"
alice=$TOKEN
td_tenant bob || bail "no tenant"
bob=$TOKEN
sh_upload "$alice" hvdisk disk "$DISK_IMAGE" qcow2
ok $? "alice uploads the UEFI disk image as qcow2"

# An OpenSSH ed25519 public key line (the blob: its type, then 32 key bytes).
mkkey() {
    printf 'ssh-ed25519 %s %s\n' \
        "$({ printf '\0\0\0\013ssh-ed25519\0\0\0\040'; head -c 32 /dev/urandom; } | base64 -w0)" "$1"
}
user_data=$'#cloud-config\nhostname: from-user-data\nruncmd:\n  - [sh, -c, "echo \'quoted\' & more"]\n'
user_data_sha=$(printf '%s' "$user_data" | sha256sum | cut -d' ' -f1)
# spec NAME [SECURE-BOOT]
spec() {
    jq -cn --arg name "$1" --argjson secure "${2:-false}" --arg ud "$user_data" \
        --arg k1 "$(mkkey alice@laptop)" --arg k2 "$(mkkey ops@bastion)" \
        '{name: $name, vcpus: 1, memory_mib: 512,
          boot: {disk: "hvdisk", firmware: "uefi", secure_boot: $secure},
          cloud_init: {user_data: $ud, meta_data: {"local-hostname": ($name + ".l1.example"),
                       zone: {region: "eu", "local-hostname": "not-this-one"}},
                       ssh_authorized_keys: [$k1, $k2]}}'
}

# ---- create: firmware, seed, READY and heartbeats ---------------------------------------
api_tn "$alice" POST /v1/stacks --json "$(spec hv)"
is "$STATUS" 202 "a UEFI stack with a seed is accepted"
sh_wait_op "$alice" "$(jb .operation.id)" 180
is "$OP_STATUS" succeeded "stack.create succeeds ($OP_ERROR)"
api_tn "$alice" GET /v1/stacks/hv
id=$(jb .stack.id)
is "$(jb .stack.boot.firmware) $(jb .stack.boot.secure_boot)" "uefi false" "the stack boots UEFI without secure boot"
is "$(jb .stack.cloud_init.user_data_sha256) $(jb .stack.cloud_init.user_data_bytes)" \
    "$user_data_sha ${#user_data}" "it shows the user data's SHA-256 and size"
is "$(jb '.stack.cloud_init | has("user_data")')" false "... never the user data itself"
is "$(jb -c '.stack.cloud_init.ssh_authorized_keys | length')" 2 "... and its two keys"
[ -f "$disks_a/$id.nvram" ] && [ -f "$disks_a/$id.seed.iso" ]
ok $? "its NVRAM and seed are in A's disks pool"
is "$(testhost_virsh a dumpxml "turtles-$id" | grep -c "<nvram[^>]*>$disks_a/$id.nvram</nvram>")" 1 \
    "the domain keeps its UEFI variables in the pool"

sh_wait_console "$alice" hv 'TURTLES-L2 HB 2 ' 300
ok $? "the L1 boots from its disk to L2 heartbeats" || diag "$(tail -n 20 <<<"$CONSOLE")"
like "$CONSOLE" 'BdsDxe: (loading|starting) Boot' "the console shows the firmware's boot manager"
fw_line=$(grep -n 'BdsDxe: starting' <<<"$CONSOLE" | head -n 1 | cut -d: -f1)
seed_line=$(grep -n 'TURTLES-L1 SEED' <<<"$CONSOLE" | head -n 1 | cut -d: -f1)
ok "$([ -n "$fw_line" ] && [ -n "$seed_line" ] && [ "$fw_line" -lt "$seed_line" ] && echo 0 || echo 1)" \
    "... before the L1 reads its seed"
is "$(grep -o 'TURTLES-L1 SEED .*' <<<"$CONSOLE" | head -n 1)" \
    "TURTLES-L1 SEED hostname=hv.l1.example keys=2 user_data_sha256=$user_data_sha" \
    "the L1 reads the seed: its host name, two keys, and the user data sent (by its SHA-256)"
like "$CONSOLE" 'TURTLES-L1 READY virt=svm nested=1 ' "READY with nested=1"
api_tn "$bob" GET /v1/stacks/hv
is "$STATUS" 404 "another tenant does not see it"
# The tenant logs in to its own L1: the shell on the serial console, over
# the interactive console (WebSocket, the ws package's client).
sh_wait_console "$alice" hv 'TURTLES-L1 SHELL ready' 60
out=$(WS_TIMEOUT=60 node "$here/../tools/ws-console.mjs" "ws://127.0.0.1:$TD_PORT/v1/stacks/hv/console?tail=1" \
    "$alice" type 'echo "name=$(hostname)"' 'name=hv\.l1\.example')
like "$out" 'MATCH' "over the interactive console the L1's shell says the host name the seed gave it"

# ---- secure boot: where the firmware can (A) and where it cannot (B) -----------------------
api_tn "$alice" POST /v1/stacks --json "$(spec sb true)"
is "$STATUS" 202 "secure boot on A (its ovmf has a secure-boot build) is accepted"
sh_wait_op "$alice" "$(jb .operation.id)" 180
is "$OP_STATUS" succeeded "... and created ($OP_ERROR)"
api_tn "$alice" GET /v1/stacks/sb
sb_xml=$(testhost_virsh a dumpxml "turtles-$(jb .stack.id)")
like "$sb_xml" "<loader [^>]*secure='yes'" "libvirt picked a secure-boot firmware"
like "$sb_xml" "<smm state='on'/>" "... with SMM on"
api_tn "$alice" DELETE /v1/stacks/sb
sh_wait_op "$alice" "$(jb .operation.id)" 120
is "$OP_STATUS" succeeded "the secure-boot stack is deleted"

sh_use b
td_tenant carol || bail "no tenant on B"
carol=$TOKEN
api_tn "$carol" POST /v1/stacks --json "$(spec sb true)"
is "$STATUS $(jb .error.code)" "400 bad_request" "secure boot on B (no secure-boot firmware) is refused"
like "$(jb .error.message)" '^boot\.secure_boot: ' "... naming boot.secure_boot: $(jb .error.message)"
api_op GET /v1/stacks
is "$STATUS $(jb '.stacks | length')" "200 0" "... and nothing is created"

# ---- migration: NVRAM and seed arrive, L2 keeps beating --------------------------------------
sh_use a
seed_sum=$(sha256sum <"$disks_a/$id.seed.iso")
before=$(sh_last_beat "$alice" hv)
api_tn "$alice" POST /v1/stacks/hv/migrate --json '{"peer":"hostb"}'
is "$STATUS" 202 "migrating the UEFI stack to hostb is accepted"
sh_wait_op "$alice" "$(jb .operation.id)" 600
is "$OP_STATUS" succeeded "... and succeeds ($OP_ERROR)"
[ -f "$disks_b/$id.nvram" ] && [ -f "$disks_b/$id.seed.iso" ]
ok $? "NVRAM and seed are on B"
is "$(sha256sum <"$disks_b/$id.seed.iso")" "$seed_sum" "the seed arrived byte for byte"
ls "$disks_a/$id".* >/dev/null 2>&1
ok $((!$?)) "nothing of the stack stays in A's pool"
sh_use b
tenant_on_b() { api_op GET /v1/tenants/alice && [ "$STATUS" = 200 ]; }
poll_until 60 tenant_on_b || bail "B did not adopt alice"
api_op POST /v1/tenants/alice/tokens
alice_b=$(jb .token.secret)
sh_beats_past "$alice_b" hv "${before:-0}" 120
ok $? "L2 keeps beating on B (past $before, the last beat seen on A before the move)"
is "$(testhost_virsh b dumpxml "turtles-$id" | grep -c "<nvram[^>]*>$disks_b/$id.nvram</nvram>")" 1 \
    "on B the domain keeps its variables in B's pool"
api_tn "$alice_b" DELETE /v1/stacks/hv
sh_wait_op "$alice_b" "$(jb .operation.id)" 120
ls "$disks_b/$id".* >/dev/null 2>&1
ok $((!$?)) "deleting it on B removes its NVRAM and seed"

# ---- kill -9 while such a stack is created ----------------------------------------------------
sh_use a
td_start_again() {
    TD_NO_DEFAULTS=1 td_start --config "$TD_DIR/turtled.conf" --state-dir "$TD_STATE" \
        --socket "$TD_SOCK" --listen 127.0.0.1:0 --backend "$SH_BACKEND" --libvirt-uri "$(testhost_uri a)"
}
# crash WHICH: creates a stack and kills turtled as soon as its WHICH file
# (seed.iso or nvram) exists; 0 when the kill came before the create
# finished (the stack is then gone after the restart), 2 when too late.
crash() {
    local name=crash-${1%%.*} file deadline stack_id
    api_tn "$alice" POST /v1/stacks --json "$(spec "$name")"
    [ "$STATUS" = 202 ] || bail "cannot create $name: $STATUS $BODY"
    stack_id=$(jb .stack.id)
    file=$disks_a/$stack_id.$1
    deadline=$(($(now_ms) + 60000))
    until [ -e "$file" ] || [ "$(now_ms)" -gt "$deadline" ]; do sleep 0.01; done
    td_kill9
    td_start_again || bail "turtled A did not restart"
    api_tn "$alice" GET "/v1/stacks/$name"
    if [ "$STATUS" = 200 ]; then
        api_tn "$alice" DELETE "/v1/stacks/$name"
        sh_wait_op "$alice" "$(jb .operation.id)" 120
        return 2
    fi
    leftovers() { ! ls "$disks_a/$stack_id".* >/dev/null 2>&1; }
    poll_until 30 leftovers || diag "left: $(ls "$disks_a/$stack_id".* 2>&1)"
    leftovers
}
for which in seed.iso nvram; do
    rc=2
    for _ in 1 2 3 4 5; do
        crash "$which"
        rc=$?
        [ "$rc" = 2 ] || break
    done
    if [ "$rc" = 2 ]; then
        skip "the create finished before every kill ($which)"
    else
        ok "$rc" "kill -9 once its $which exists: after the restart no NVRAM or seed of it is left"
    fi
done

td_done
