/* Host capability probe: what virtualization this host offers, and which
 * backend (kvm or tcg) turtled should use for L1 guests.
 *
 * Every file is read below a configurable root ("/" on a real host), and the
 * /dev/kvm ioctls go through HvKvmOps, so tests run on fixture hosts. */
#pragma once

#include <glib.h>

typedef enum {
    HV_BACKEND_KVM,  /* L1 under KVM with nested VMX/SVM */
    HV_BACKEND_TCG,  /* L1 under QEMU emulation with an emulated svm+npt CPU */
    HV_BACKEND_TEST, /* libvirt's test:///default driver, for tests only */
} HvBackend;

const char *hv_backend_to_string(HvBackend backend);
gboolean hv_backend_from_string(const char *text, HvBackend *backend);

/* The ioctls the probe issues on /dev/kvm.  hv_kvm_system_ops talks to the
 * real device; tests supply their own. */
typedef struct {
    /* Returns a file descriptor (>= 0) or -1 with errno set. */
    int (*open_device)(const char *path, void *data);
    /* Returns the ioctl's result, or -1 with errno set. */
    int (*ioctl_int)(int fd, unsigned long request, unsigned long arg, void *data);
    void (*close_device)(int fd, void *data);
    void *data;
} HvKvmOps;

extern const HvKvmOps hv_kvm_system_ops;

/* -1 where a value could not be read (module absent, parameter missing). */
typedef struct {
    char *cpu_vendor; /* "GenuineIntel", "AuthenticAMD", ... or "unknown" */
    gboolean vmx;
    gboolean svm;
    gboolean hypervisor; /* we are ourselves a guest */

    gboolean kvm_device;       /* /dev/kvm exists */
    gboolean kvm_device_opens; /* and could be opened */
    int kvm_api_version;       /* KVM_GET_API_VERSION */
    int nested_state_size;     /* KVM_CHECK_EXTENSION(KVM_CAP_NESTED_STATE); 0 = unsupported */

    char *kvm_module; /* "kvm_intel", "kvm_amd" or NULL when neither is loaded */
    int nested;       /* kvm_intel/kvm_amd "nested" */
    int ept_npt;      /* kvm_intel "ept" or kvm_amd "npt" */
    int shadow_vmcs;  /* kvm_intel "enable_shadow_vmcs" (-1 on AMD) */
    int apicv_avic;   /* kvm_intel "enable_apicv" or kvm_amd "avic" */
    gboolean pvm;     /* kvm_pvm loaded: /dev/kvm cannot run a stock guest */

    int iommu_groups; /* entries in /sys/kernel/iommu_groups */
    gboolean vfio;    /* /dev/vfio/vfio present */

    HvBackend backend;
    char *reason; /* one human-readable sentence explaining the backend */
} HvHostReport;

void hv_host_report_free(HvHostReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvHostReport, hv_host_report_free)

/* Probes the host below @root ("/" for the real one).  Fails only when the
 * root itself is unreadable; missing pieces are reported, not errors. */
HvHostReport *hv_probe_host(const char *root, const HvKvmOps *kvm, GError **error);
