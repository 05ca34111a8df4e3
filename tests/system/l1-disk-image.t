#!/bin/bash
# The reference L1's UEFI disk (make l1-disk, hvcore/guest/build-l1-disk),
# checked without booting it: a 64 MiB qcow2 holding a GPT whose one
# partition is an EFI system partition; on it systemd-boot at the removable
# path and its own, loader.conf booting the turtles entry at once, and that
# entry naming the kernel and initrd that are on the partition, byte for
# byte the ones make l1-image built, with the serial console on the command
# line.  And the initrd's seed reader: the script, its one call from /init
# before READY, and the modules it loads (virtio-blk, isofs, vfat).
# tests/system/uefi-seed.t boots it through the API (and l1-seed-boot.long with QEMU directly).
#
#   TURTLES_BUILD=build tests/system/l1-disk-image.t
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.." || exit 1
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. tests/lib/tap.sh

l1=$TURTLES_BUILD/l1
disk=$l1/l1-disk.qcow2
for tool in qemu-img sfdisk mdir mtype mcopy cpio; do
    command -v "$tool" >/dev/null || skip_all "$tool is not installed (make deps)"
done
[ -f "$disk" ] || skip_all "no $disk (make l1-disk)"
{ [ -f "$l1/vmlinuz" ] && [ -f "$l1/initrd.img" ]; } || skip_all "no reference L1 image in $l1 (make l1-image)"

plan 17

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

info=$(qemu-img info --output=json "$disk")
like "$info" '"format": "qcow2"' "the disk is qcow2"
like "$info" '"virtual-size": 67108864,' "... of 64 MiB"
[[ $info != *backing-filename* ]]
ok $? "... standing alone (no backing file)"

raw=$tmp/disk.raw
qemu-img convert -f qcow2 -O raw "$disk" "$raw" || bail "qemu-img convert to raw failed"
table=$(sfdisk --dump "$raw" 2>&1)
like "$table" $'(^|\n)label: gpt\n' "the partition table is GPT"
parts=$(grep -c ' : start=' <<<"$table")
is "$parts" 1 "... with one partition"
like "$table" ' : start= *2048, size= *[0-9]+, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B' \
    "... an EFI system partition from 1 MiB on"

export MTOOLS_SKIP_CHECK=1
esp="$raw@@$((2048 * 512))"
# mt_get PATH: the file at PATH on the ESP, copied to $tmp/esp/PATH.
mt_get() {
    mkdir -p "$(dirname "$tmp/esp/$1")"
    mcopy -n -i "$esp" "::/$1" "$tmp/esp/$1" 2>/dev/null
}
mt_get EFI/BOOT/BOOTX64.EFI && [ "$(head -c 2 "$tmp/esp/EFI/BOOT/BOOTX64.EFI")" = MZ ]
ok $? "EFI/BOOT/BOOTX64.EFI is on the ESP and is a PE image"
mt_get EFI/systemd/systemd-bootx64.efi && cmp -s "$tmp/esp/EFI/BOOT/BOOTX64.EFI" "$tmp/esp/EFI/systemd/systemd-bootx64.efi"
ok $? "... the same systemd-boot as EFI/systemd/systemd-bootx64.efi"
grep -aq 'systemd-boot' "$tmp/esp/EFI/BOOT/BOOTX64.EFI"
ok $? "... and it is systemd-boot"

loader=$(mtype -i "$esp" ::/loader/loader.conf 2>&1)
like "$loader" $'(^|\n)default +turtles\\.conf(\n|$)' "loader.conf boots the turtles entry by default"
like "$loader" $'(^|\n)timeout +0(\n|$)' "... without waiting (timeout 0)"

entry=$(mtype -i "$esp" ::/loader/entries/turtles.conf 2>&1)
linux=$(awk '$1 == "linux" { print $2 }' <<<"$entry")
initrd=$(awk '$1 == "initrd" { print $2 }' <<<"$entry")
options=$(awk '$1 == "options" { $1 = ""; print substr($0, 2) }' <<<"$entry")
like "$linux $initrd" '^/[^ ]+ /[^ ]+$' "the entry names a kernel and an initrd ($linux, $initrd)"
mt_get "${linux#/}" && cmp -s "$tmp/esp/${linux#/}" "$l1/vmlinuz"
ok $? "... the kernel on the ESP is $l1/vmlinuz"
mt_get "${initrd#/}" && cmp -s "$tmp/esp/${initrd#/}" "$l1/initrd.img"
ok $? "... the initrd on the ESP is $l1/initrd.img"
like " $options " ' console=ttyS0 ' "... the command line has the serial console ($options)"

root=$tmp/initrd
mkdir -p "$root"
(cd "$root" && gzip -dc | cpio -id --quiet) <"$l1/initrd.img" || bail "cannot unpack $l1/initrd.img"
[ -x "$root/bin/turtles-read-seed" ] && cmp -s "$root/bin/turtles-read-seed" hvcore/guest/read-seed &&
    grep -q '^\[ -x /bin/turtles-read-seed \] && /bin/turtles-read-seed' "$root/init" &&
    [ "$(grep -n 'turtles-read-seed' "$root/init" | cut -d: -f1)" -lt "$(grep -n 'echo "TURTLES-L1 READY' "$root/init" | cut -d: -f1)" ]
ok $? "the initrd has the seed reader, run by /init before READY"
missing=
for m in virtio-blk virtio-pci isofs vfat nls-utf8; do
    { [ -f "$root/lib/modules/turtles/$m.ko" ] && grep -qx "$m" "$root/lib/modules/turtles/seed.list"; } ||
        missing="$missing $m"
done
is "$missing" "" "... and the modules it loads (seed.list: virtio-blk, isofs, vfat ...)"
