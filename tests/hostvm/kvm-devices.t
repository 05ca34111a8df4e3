#!/bin/bash
# The kvm backend and host-level VFIO on a real KVM host: a host VM
# (tests/lib/hostvm.sh) with an Intel IOMMU and QEMU's edu device runs
# tests/hostvm/inside/kvm-devices, whose TAP this test is: turtled probes
# kvm, the host's edu goes L0 -> vfio-pci -> the tenant's L1 (behind its
# vIOMMU) -> vfio-pci -> L2, shown by the DEV line on the stack's console;
# migration of that stack is refused; with nested=0 stack create is refused.
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

hostvm_install_cleanup_trap
hostvm_start h --edu || bail "the host VM did not come up"
note "host VM: $(tr '\n' ' ' <"$(hostvm_share h)/ready")"
# libvirtd probes QEMU's capabilities under TCG at its first start: slow.
export TESTHOST_START_TIMEOUT=${TESTHOST_START_TIMEOUT:-300}
hostvm_run h "${HOSTVM_TEST_TIMEOUT:-1500}" "$here/inside/kvm-devices"
rc=$?
[ "$rc" = 124 ] && echo "Bail out! timed out inside the host VM"
exit "$rc"
