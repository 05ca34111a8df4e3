#!/bin/bash
# The reference L1 boots from its UEFI disk (make l1-disk) and reads a
# cloud-init seed, under QEMU TCG directly (no libvirt, no turtled: the
# image alone; the API's own test creates a stack with firmware uefi).
#
#  1. OVMF + the disk (a qcow2 overlay) + an ISO 9660 cidata seed (Joliet,
#     Rock Ridge, as turtled writes it) whose meta-data has its top-level keys
#     in another order than turtled's and a tenant's nested object that
#     repeats local-hostname and public-keys: the console shows the firmware
#     (BdsDxe) starting the disk, systemd-boot's entry (the kernel's command
#     line), then exactly one SEED line with the top-level hostname, the number
#     of keys and sha256sum's digest of user-data, before READY with nested=1,
#     then L2 heartbeats.
#  2. The kernel and initrd without any disk: READY, and no SEED line.
#
#   TURTLES_BUILD=build tests/system/l1-seed-boot.t
#
# TURTLES_BOOT_TIMEOUT (s, default 180) bounds each wait for READY.
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.." || exit 1
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. tests/lib/tap.sh

l1=$TURTLES_BUILD/l1
disk=$l1/l1-disk.qcow2
ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd
ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd
boot_timeout=${TURTLES_BOOT_TIMEOUT:-180}
for tool in qemu-system-x86_64 qemu-img xorriso sha256sum; do
    command -v "$tool" >/dev/null || skip_all "$tool is not installed (make deps)"
done
{ [ -f "$ovmf_code" ] && [ -f "$ovmf_vars" ]; } || skip_all "no OVMF firmware (package ovmf, make deps)"
{ [ -f "$disk" ] && [ -f "$l1/vmlinuz" ] && [ -f "$l1/initrd.img" ]; } ||
    skip_all "no reference L1 image and disk in $l1 (make l1-image)"

plan 10

tmp=$(mktemp -d)
qemu_pid=
on_exit() {
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap on_exit EXIT

# qemu_start LOG ARGS...: QEMU TCG with the CPU turtled's tcg backend gives
# an L1 (an EPYC with svm and npt), serial console to LOG.
qemu_start() {
    local log=$1
    shift
    : >"$log"
    qemu-system-x86_64 -accel tcg -cpu EPYC,+svm,+npt -m 1024 -nodefaults -display none \
        -monitor none -no-reboot -serial "file:$log" "$@" 2>>"$tmp/qemu.err" &
    qemu_pid=$!
}
qemu_stop() {
    kill "$qemu_pid" 2>/dev/null
    wait "$qemu_pid" 2>/dev/null
    qemu_pid=
}
# console_has LOG REGEX
console_has() {
    tr -d '\r' <"$1" | grep -aEq "$2"
}

# The seed: user data with bytes of every value, and meta-data as a tenant's
# meta_data could make it (json-c's pretty layout, keys reordered).
head -c 4096 /dev/urandom >"$tmp/user-data"
cat >"$tmp/meta-data" <<'EOF'
{
  "tenant":{
    "local-hostname":"not-this-one",
    "public-keys":[
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINested nested@example"
    ]
  },
  "public-keys":[
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOne1 alice@example",
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQTwo2 bob@example",
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYThree carol@example"
  ],
  "instance-id":"turtles-6f1d",
  "local-hostname":"seed-host-1"
}
EOF
xorriso -as mkisofs -quiet -V cidata -J -R -o "$tmp/seed.iso" "$tmp/user-data" "$tmp/meta-data" \
    2>"$tmp/xorriso.err" || bail "xorriso could not write the seed: $(cat "$tmp/xorriso.err")"
sum=$(sha256sum <"$tmp/user-data")
sum=${sum%% *}
qemu-img create -q -f qcow2 -F qcow2 -b "$(realpath "$disk")" "$tmp/disk.qcow2" || bail "qemu-img create failed"
cp "$ovmf_vars" "$tmp/vars.fd"

log=$tmp/uefi.log
start=$SECONDS
qemu_start "$log" -machine q35 \
    -drive "if=pflash,format=raw,readonly=on,file=$ovmf_code" \
    -drive "if=pflash,format=raw,file=$tmp/vars.fd" \
    -drive "file=$tmp/disk.qcow2,if=virtio,format=qcow2" \
    -drive "file=$tmp/seed.iso,if=virtio,format=raw,readonly=on"
poll_until "$boot_timeout" console_has "$log" '^TURTLES-L1 READY '
ok $? "UEFI disk boot: READY within ${boot_timeout} s (after $((SECONDS - start)) s)" ||
    diag "console:" "$(tr -d '\r' <"$log" | tail -n 30)" "$(cat "$tmp/qemu.err")"
console_has "$log" 'BdsDxe: starting Boot[0-9A-F]+ .*Pci\(0x'
ok $? "... the firmware started the disk (BdsDxe)"
console_has "$log" 'Command line: initrd=\\turtles\\initrd\.img console=ttyS0'
ok $? "... through systemd-boot's entry (initrd= and the entry's options on the kernel's command line)"
seed_lines=$(tr -d '\r' <"$log" | grep -a '^TURTLES-L1 SEED')
is "$seed_lines" "TURTLES-L1 SEED hostname=seed-host-1 keys=3 user_data_sha256=$sum" \
    "... one SEED line: the top-level hostname, 3 keys, the sha256 of user-data"
order=$(tr -d '\r' <"$log" | grep -aoE '^TURTLES-L1 (SEED|READY)' | paste -sd' ')
is "$order" "TURTLES-L1 SEED TURTLES-L1 READY" "... before READY"
like "$(tr -d '\r' <"$log" | grep -a '^TURTLES-L1 READY')" ' nested=1 .*kvm=ok' "... READY with nested=1 and KVM"
poll_until 90 console_has "$log" '^TURTLES-L2 HB 2 '
ok $? "... and the L2 beats"
qemu_stop

log=$tmp/kernel.log
start=$SECONDS
qemu_start "$log" -machine q35 -kernel "$l1/vmlinuz" -initrd "$l1/initrd.img" -append console=ttyS0
poll_until "$boot_timeout" console_has "$log" '^TURTLES-L1 READY '
ok $? "kernel boot without a seed: READY within ${boot_timeout} s (after $((SECONDS - start)) s)" ||
    diag "console:" "$(tr -d '\r' <"$log" | tail -n 30)"
console_has "$log" '^TURTLES-L1 SEED'
ok $((!$?)) "... and no SEED line"
like "$(tr -d '\r' <"$log" | grep -a '^TURTLES-L1 READY')" ' nested=1 ' "... READY with nested=1 as ever"
qemu_stop
