#!/bin/bash
# The kvm backend and host-level VFIO on a real KVM host: a host VM
# (tests/lib/hostvm.sh) with an Intel IOMMU and QEMU's edu device runs
# tests/hostvm/inside/kvm-devices, whose TAP lines are shown indented:
# turtled probes kvm, the host's edu goes L0 -> vfio-pci -> the tenant's L1
# (behind its vIOMMU) -> vfio-pci -> L2, shown by the DEV line on the stack's
# console; migration of that stack is refused; with nested=0 stack create is
# refused with the fix.  The host VM's kernel stalling or panicking (emulated
# SVM under TCG, below what runs inside; seen now and then) gets one more try
# in a fresh host VM; its logs are kept.
#
#   TURTLES_BUILD=build tests/hostvm/kvm-devices.t      (make hostvm-image first)
#
# HOSTVM_TEST_TIMEOUT bounds the run inside (1500 s).

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
# shellcheck source-path=SCRIPTDIR source=../lib/hostvm.sh
. "$here/../lib/hostvm.sh"
[ -f "$TURTLES_BUILD/hostvm/initrd.img" ] || bail "no host VM image (make hostvm-image)"

plan 1
hostvm_install_cleanup_trap
# libvirtd probes QEMU's capabilities under TCG at its first start: slow.
export TESTHOST_START_TIMEOUT=${TESTHOST_START_TIMEOUT:-300}
hostvm_prove_in_new h --edu "${HOSTVM_TEST_TIMEOUT:-1500}" "$here/inside/kvm-devices"
