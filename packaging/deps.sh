#!/bin/sh
# Installs every Debian package Turtles needs to build, test and run.
# Silent and fast when everything is present; needs root otherwise.
set -eu

# ovmf: UEFI firmware for stacks (libvirt picks it through its firmware
# descriptors); libisofs-dev: turtled writes cloud-init seeds as ISO 9660.
# systemd-boot-efi, dosfstools, mtools, fdisk: the UEFI-bootable L1 disk image
# of the tests (GPT + EFI system partition, written without mounting);
# xorriso reads seeds back in tests; tmux drives turtlectl's interactive console.
# libyaml-dev: turtlectl's YAML output; bash-completion, zsh, fish: the
# completion tests run each shell; openssl: the TLS tests' certificates.
# The last line: make deb and lintian; systemd-analyze and
# systemd-socket-activate (tests, without systemd as init); promtool.
PACKAGES="
build-essential pkg-config git clang-format
libglib2.0-dev libvirt-dev libvirt-glib-1.0-dev libxml2-dev libxml2-utils
libjson-c-dev libmicrohttpd-dev libsqlite3-dev libcurl4-openssl-dev
libsystemd-dev libgnutls28-dev
libtest-harness-perl
clang libclang-rt-14-dev
libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
dnsmasq-base iptables ebtables iproute2
busybox-static cpio xz-utils zstd kmod curl jq sqlite3 wrk
ovmf libisofs-dev systemd-boot-efi dosfstools mtools fdisk xorriso tmux
libyaml-dev bash-completion zsh fish openssl
debhelper dpkg-dev lintian systemd prometheus
"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "make deps: missing packages:$missing" >&2
    echo "make deps: run as root (or: sudo apt-get install$missing)" >&2
    exit 1
fi
echo "make deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Services must not start during install: CI machines have no init system,
# and tests start private daemons of their own.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && created_policy=1
fi
apt-get install -y -qq --no-install-recommends $missing >/dev/null
[ "$created_policy" = 1 ] && rm -f "$policy"
echo "make deps: done"
