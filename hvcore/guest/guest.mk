# Reference L1 image: a Debian kernel with its kvm modules, busybox and
# turtle-vmm in an initrd.  Included by the top Makefile.

L1_DIR    = $(BUILD)/l1
L1_VMM    = $(L1_DIR)/turtle-vmm
L1_KERNEL = $(L1_DIR)/vmlinuz
L1_INITRD = $(L1_DIR)/initrd.img

# Own flags on purpose: the binary is static (no sanitizers) and runs in the initrd.
L1_VMM_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -O2 -static

l1-image: $(L1_KERNEL) $(L1_INITRD) $(L1_VMM)

L1_VMM_SRCS = hvcore/guest/turtle-vmm.c hvcore/guest/vfio-dev.c hvcore/guest/edu-payload.S
L1_VMM_HDRS = hvcore/guest/vfio-dev.h hvcore/guest/edu-payload.h

$(L1_VMM): $(L1_VMM_SRCS) $(L1_VMM_HDRS) hvcore/guest/guest.mk
	@mkdir -p $(@D)
	$(CC) $(L1_VMM_CFLAGS) -o $@ $(L1_VMM_SRCS)

# One script run makes both; .deb downloads stay in $(L1_DIR)/cache.
$(L1_KERNEL) $(L1_INITRD) &: hvcore/guest/build-l1-image hvcore/guest/init hvcore/guest/udhcpc-script \
  $(L1_VMM)
	hvcore/guest/build-l1-image $(L1_DIR) $(L1_VMM) hvcore/guest/init hvcore/guest/udhcpc-script
