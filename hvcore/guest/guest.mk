# Reference L1 image: a Debian kernel with its kvm modules, busybox and
# turtle-vmm in an initrd, and both on a UEFI disk.  Included by the top Makefile.

L1_DIR    = $(BUILD)/l1
L1_VMM    = $(L1_DIR)/turtle-vmm
L1_KERNEL = $(L1_DIR)/vmlinuz
L1_INITRD = $(L1_DIR)/initrd.img
L1_DISK   = $(L1_DIR)/l1-disk.qcow2

# Own flags on purpose: the binary is static (no sanitizers) and runs in the initrd.
L1_VMM_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -O2 -static

# The disk image too: the system tier boots both (tests/system/l1-disk-image.t).
l1-image: $(L1_KERNEL) $(L1_INITRD) $(L1_VMM) $(L1_DISK)
.PHONY: l1-disk

L1_VMM_SRCS = hvcore/guest/turtle-vmm.c hvcore/guest/vfio-dev.c hvcore/guest/edu-payload.S
L1_VMM_HDRS = hvcore/guest/vfio-dev.h hvcore/guest/edu-payload.h

$(L1_VMM): $(L1_VMM_SRCS) $(L1_VMM_HDRS) hvcore/guest/guest.mk
	@mkdir -p $(@D)
	$(CC) $(L1_VMM_CFLAGS) -o $@ $(L1_VMM_SRCS)

# One script run makes both; .deb downloads stay in $(L1_DIR)/cache.
$(L1_KERNEL) $(L1_INITRD) &: hvcore/guest/build-l1-image hvcore/guest/init hvcore/guest/udhcpc-script \
  hvcore/guest/read-seed $(L1_VMM)
	hvcore/guest/build-l1-image $(L1_DIR) $(L1_VMM) hvcore/guest/init hvcore/guest/udhcpc-script \
	  hvcore/guest/read-seed

# The same kernel and initrd on a UEFI-bootable disk (GPT, an EFI system
# partition with systemd-boot), for disk-boot stacks with firmware uefi.
l1-disk: $(L1_DISK)
$(L1_DISK): hvcore/guest/build-l1-disk $(L1_KERNEL) $(L1_INITRD)
	hvcore/guest/build-l1-disk $@ $(L1_KERNEL) $(L1_INITRD)
