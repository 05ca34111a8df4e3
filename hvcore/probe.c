#include "hvcore/probe.h"

#include "hvcore/error.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PVM_CLAUSE  " and /dev/kvm is backed by kvm_pvm, which cannot run a stock guest"
#define TCG_OUTCOME "L1 runs under QEMU TCG with an emulated svm+npt CPU"

static const char *const backend_names[] = {
    [HV_BACKEND_KVM] = "kvm",
    [HV_BACKEND_TCG] = "tcg",
    [HV_BACKEND_TEST] = "test",
};

const char *hv_backend_to_string(HvBackend backend)
{
    if ((guint)backend >= G_N_ELEMENTS(backend_names)) {
        return "unknown";
    }
    return backend_names[backend];
}

gboolean hv_backend_from_string(const char *text, HvBackend *backend)
{
    if (text == NULL) {
        return FALSE;
    }
    for (guint i = 0; i < G_N_ELEMENTS(backend_names); i++) {
        if (g_str_equal(text, backend_names[i])) {
            if (backend != NULL) {
                *backend = (HvBackend)i;
            }
            return TRUE;
        }
    }
    return FALSE;
}

/* ---- the real /dev/kvm ---------------------------------------------------- */

static int system_open_device(const char *path, void *data)
{
    (void)data;
    return open(path, O_RDWR | O_CLOEXEC);
}

static int system_ioctl_int(int fd, unsigned long request, unsigned long arg, void *data)
{
    (void)data;
    return ioctl(fd, request, arg);
}

static void system_close_device(int fd, void *data)
{
    (void)data;
    if (fd >= 0) {
        close(fd);
    }
}

const HvKvmOps hv_kvm_system_ops = {
    .open_device = system_open_device,
    .ioctl_int = system_ioctl_int,
    .close_device = system_close_device,
    .data = NULL,
};

void hv_host_report_free(HvHostReport *report)
{
    if (report == NULL) {
        return;
    }
    g_free(report->cpu_vendor);
    g_free(report->kvm_module);
    g_free(report->reason);
    g_free(report);
}

/* ---- reading the host ----------------------------------------------------- */

typedef struct {
    const char *root;
    const HvKvmOps *kvm;
    int open_errno; /* why /dev/kvm did not open, for the reason */
    HvHostReport *report;
} Probe;

static char *host_path(const Probe *probe, const char *relative)
{
    return g_build_filename(probe->root, relative, NULL);
}

static gboolean host_test(const Probe *probe, const char *relative, GFileTest test)
{
    g_autofree char *path = host_path(probe, relative);
    return g_file_test(path, test);
}

/* Whole words only: "svmx" is not "svm". */
static void parse_flags(const char *value, HvHostReport *report)
{
    g_auto(GStrv) words = g_strsplit_set(value, " \t", -1);
    const char *const *list = (const char *const *)words;

    report->vmx = g_strv_contains(list, "vmx");
    report->svm = g_strv_contains(list, "svm");
    report->hypervisor = g_strv_contains(list, "hypervisor");
}

/* Only the first processor counts: a host does not mix CPU vendors, and
 * "vmx flags" (newer kernels) is a different key from "flags". */
static void parse_cpuinfo(const char *text, HvHostReport *report)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    gboolean have_flags = FALSE;

    for (char **line = lines; *line != NULL; line++) {
        const char *colon = strchr(*line, ':');
        if (colon == NULL) {
            continue;
        }
        g_autofree char *key = g_strstrip(g_strndup(*line, (gsize)(colon - *line)));
        if (report->cpu_vendor == NULL && g_str_equal(key, "vendor_id")) {
            report->cpu_vendor = g_strstrip(g_strdup(colon + 1));
        } else if (!have_flags && g_str_equal(key, "flags")) {
            parse_flags(colon + 1, report);
            have_flags = TRUE;
        }
    }
    if (report->cpu_vendor == NULL || report->cpu_vendor[0] == '\0') {
        g_free(report->cpu_vendor);
        report->cpu_vendor = g_strdup("unknown");
    }
}

static gboolean probe_cpuinfo(Probe *probe, GError **error)
{
    g_autofree char *path = host_path(probe, "proc/cpuinfo");
    g_autofree char *text = NULL;
    g_autoptr(GError) local = NULL;

    if (!g_file_get_contents(path, &text, NULL, &local)) {
        g_set_error(error, HV_ERROR, HV_ERROR_NOT_FOUND, "cannot read CPU information: %s",
                    local->message);
        return FALSE;
    }
    parse_cpuinfo(text, probe->report);
    return TRUE;
}

static void probe_kvm_device(Probe *probe)
{
    HvHostReport *report = probe->report;
    const HvKvmOps *kvm = probe->kvm;
    g_autofree char *path = host_path(probe, "dev/kvm");

    report->kvm_api_version = -1;
    report->nested_state_size = -1;
    report->kvm_device = g_file_test(path, G_FILE_TEST_EXISTS);
    if (!report->kvm_device) {
        return;
    }
    int fd = kvm->open_device(path, kvm->data);
    if (fd < 0) {
        probe->open_errno = errno;
        return;
    }
    report->kvm_device_opens = TRUE;
    int api_version = kvm->ioctl_int(fd, KVM_GET_API_VERSION, 0, kvm->data);
    int nested_state = kvm->ioctl_int(fd, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE, kvm->data);
    /* A failed ioctl reads as -1, like an absent device. */
    report->kvm_api_version = api_version < 0 ? -1 : api_version;
    report->nested_state_size = nested_state < 0 ? -1 : nested_state;
    kvm->close_device(fd, kvm->data);
}

/* Bool parameters read "Y"/"N", older int ones (kvm_amd nested) "1"/"0". */
static int read_param(const Probe *probe, const char *module, const char *param)
{
    g_autofree char *path =
        g_build_filename(probe->root, "sys/module", module, "parameters", param, NULL);
    g_autofree char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return -1;
    }
    g_strstrip(text);
    if (g_str_equal(text, "Y") || g_str_equal(text, "1")) {
        return 1;
    }
    if (g_str_equal(text, "N") || g_str_equal(text, "0")) {
        return 0;
    }
    return -1;
}

static gboolean module_loaded(const Probe *probe, const char *module)
{
    g_autofree char *path = g_build_filename(probe->root, "sys/module", module, NULL);
    return g_file_test(path, G_FILE_TEST_IS_DIR);
}

/* Prefer the module that matches the CPU flag, should both be present. */
static const char *pick_module(const Probe *probe)
{
    gboolean amd_first = probe->report->svm && !probe->report->vmx;
    const char *first = amd_first ? "kvm_amd" : "kvm_intel";
    const char *second = amd_first ? "kvm_intel" : "kvm_amd";

    if (module_loaded(probe, first)) {
        return first;
    }
    if (module_loaded(probe, second)) {
        return second;
    }
    return NULL;
}

static void probe_modules(Probe *probe)
{
    HvHostReport *report = probe->report;
    const char *module = pick_module(probe);
    gboolean intel = g_strcmp0(module, "kvm_intel") == 0;

    report->kvm_module = g_strdup(module);
    report->nested = report->ept_npt = report->shadow_vmcs = report->apicv_avic = -1;
    if (module != NULL) {
        report->nested = read_param(probe, module, "nested");
        report->ept_npt = read_param(probe, module, intel ? "ept" : "npt");
        report->shadow_vmcs = intel ? read_param(probe, module, "enable_shadow_vmcs") : -1;
        report->apicv_avic = read_param(probe, module, intel ? "enable_apicv" : "avic");
    }
    report->pvm = module_loaded(probe, "kvm_pvm");
}

static int count_entries(const char *path)
{
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    int count = 0;

    if (dir == NULL) {
        return 0;
    }
    while (g_dir_read_name(dir) != NULL) {
        count++;
    }
    return count;
}

static void probe_iommu(Probe *probe)
{
    g_autofree char *groups = host_path(probe, "sys/kernel/iommu_groups");

    probe->report->iommu_groups = count_entries(groups);
    probe->report->vfio = host_test(probe, "dev/vfio/vfio", G_FILE_TEST_EXISTS);
}

/* ---- the decision --------------------------------------------------------- */

static char *reason_without_hardware(const HvHostReport *report)
{
    return g_strdup_printf(
        "no vmx or svm in /proc/cpuinfo%s%s: " TCG_OUTCOME,
        report->hypervisor ? " (this host is itself a guest whose hypervisor hides them)" : "",
        report->pvm ? PVM_CLAUSE : "");
}

/* Hardware is there but KVM is not usable: name the first missing piece. */
static char *reason_kvm_unusable(const Probe *probe, const char *flag, const char *module)
{
    const HvHostReport *report = probe->report;

    if (!report->kvm_device) {
        return g_strdup_printf("hardware virtualization (%s) is present but /dev/kvm does not "
                               "exist (is %s loaded?): " TCG_OUTCOME,
                               flag, module);
    }
    if (!report->kvm_device_opens) {
        return g_strdup_printf("hardware virtualization (%s) is present but /dev/kvm cannot be "
                               "opened (%s): " TCG_OUTCOME,
                               flag, g_strerror(probe->open_errno));
    }
    return g_strdup_printf(
        "hardware virtualization (%s) is present but %s is not loaded%s: " TCG_OUTCOME, flag,
        module, report->pvm ? PVM_CLAUSE : "");
}

static char *reason_kvm(const HvHostReport *report, const char *flag)
{
    const char *module = report->kvm_module;

    if (report->nested == 1) {
        return g_strdup_printf("hardware virtualization (%s) with nested=1 in %s", flag, module);
    }
    if (report->nested == 0) {
        return g_strdup_printf("%s is loaded with nested=0: L1 hypervisors cannot run; enable it "
                               "with 'options %s nested=1' in /etc/modprobe.d/kvm.conf and "
                               "reload %s",
                               module, module, module);
    }
    return g_strdup_printf("hardware virtualization (%s) with %s loaded, but its nested parameter "
                           "is unreadable: check /sys/module/%s/parameters/nested",
                           flag, module, module);
}

static void decide_backend(const Probe *probe)
{
    HvHostReport *report = probe->report;
    const char *flag = report->vmx ? "vmx" : "svm";
    const char *expected_module = report->vmx ? "kvm_intel" : "kvm_amd";

    if (!report->vmx && !report->svm) {
        report->backend = HV_BACKEND_TCG;
        report->reason = reason_without_hardware(report);
    } else if (!report->kvm_device_opens || report->kvm_module == NULL) {
        report->backend = HV_BACKEND_TCG;
        report->reason = reason_kvm_unusable(probe, flag, expected_module);
    } else {
        /* With nested off we still say kvm: the hardware is there, and stack
         * creation refuses with this reason until the operator fixes it. */
        report->backend = HV_BACKEND_KVM;
        report->reason = reason_kvm(report, flag);
    }
}

static gboolean check_root(const char *root, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(GDir) dir = g_dir_open(root, 0, &local);

    if (dir == NULL) {
        g_set_error(error, HV_ERROR, HV_ERROR_NOT_FOUND, "cannot read host root: %s",
                    local->message);
        return FALSE;
    }
    return TRUE;
}

HvHostReport *hv_probe_host(const char *root, const HvKvmOps *kvm, GError **error)
{
    g_return_val_if_fail(root != NULL, NULL);
    g_return_val_if_fail(kvm != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    g_autoptr(HvHostReport) report = g_new0(HvHostReport, 1);
    Probe probe = {.root = root, .kvm = kvm, .open_errno = 0, .report = report};

    if (!check_root(root, error) || !probe_cpuinfo(&probe, error)) {
        return NULL;
    }
    probe_kvm_device(&probe);
    probe_modules(&probe);
    probe_iommu(&probe);
    decide_backend(&probe);
    return g_steal_pointer(&report);
}
