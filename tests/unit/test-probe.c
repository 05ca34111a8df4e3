/* hvcore/probe against fixture hosts (tests/fixtures/hosts/<name>) and,
 * for consistency only, against this machine. */
#include "hvcore/error.h"
#include "hvcore/probe.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>

#define FAKE_FD 42

/* A fake /dev/kvm whose answers come from the fixture's kvm-ioctls.ini. */
typedef struct {
    GKeyFile *ini;
    char *opened_path;
    int opens;
    int closes;
    int ioctls;
} FakeKvm;

static char *fixture_dir(const char *name)
{
    const char *srcdir = g_getenv("TURTLES_SRCDIR");
    return g_build_filename(srcdir != NULL ? srcdir : ".", "tests", "fixtures", "hosts", name,
                            NULL);
}

static int ini_int(GKeyFile *ini, const char *key, int missing)
{
    g_autoptr(GError) error = NULL;
    int value = g_key_file_get_integer(ini, "kvm", key, &error);
    return error != NULL ? missing : value;
}

static int fake_open(const char *path, void *data)
{
    FakeKvm *fake = data;
    int open_errno = ini_int(fake->ini, "open_errno", 0);

    fake->opens++;
    g_free(fake->opened_path);
    fake->opened_path = g_strdup(path);
    if (open_errno != 0) {
        errno = open_errno;
        return -1;
    }
    return FAKE_FD;
}

static int fake_ioctl(int fd, unsigned long request, unsigned long arg, void *data)
{
    FakeKvm *fake = data;

    fake->ioctls++;
    g_assert_cmpint(fd, ==, FAKE_FD);
    if (request == KVM_GET_API_VERSION) {
        return ini_int(fake->ini, "api_version", -1);
    }
    if (request == KVM_CHECK_EXTENSION && arg == KVM_CAP_NESTED_STATE) {
        return ini_int(fake->ini, "nested_state_size", 0);
    }
    errno = EINVAL;
    return -1;
}

static void fake_close(int fd, void *data)
{
    FakeKvm *fake = data;

    g_assert_cmpint(fd, ==, FAKE_FD);
    fake->closes++;
}

static void fake_kvm_clear(FakeKvm *fake)
{
    g_clear_pointer(&fake->ini, g_key_file_unref);
    g_clear_pointer(&fake->opened_path, g_free);
}

/* Probes fixture @name through the fake; @fake outlives the call so tests
 * can check how the device was used. */
static HvHostReport *probe_fixture(const char *name, FakeKvm *fake)
{
    g_autofree char *root = fixture_dir(name);
    g_autofree char *ini_path = g_build_filename(root, "kvm-ioctls.ini", NULL);
    g_autoptr(GError) error = NULL;
    HvKvmOps ops = {fake_open, fake_ioctl, fake_close, fake};

    fake->ini = g_key_file_new();
    g_key_file_load_from_file(fake->ini, ini_path, G_KEY_FILE_NONE, &error);
    g_assert_no_error(error);

    HvHostReport *report = hv_probe_host(root, &ops, &error);
    g_assert_no_error(error);
    g_assert_nonnull(report);
    g_assert_nonnull(report->reason);
    /* Every device that opened was closed again. */
    g_assert_cmpint(fake->closes, ==, report->kvm_device_opens ? 1 : 0);
    return report;
}

static void assert_opened(const FakeKvm *fake, const char *name)
{
    g_autofree char *root = fixture_dir(name);
    g_autofree char *expected = g_build_filename(root, "dev", "kvm", NULL);

    g_assert_cmpint(fake->opens, ==, 1);
    g_assert_cmpstr(fake->opened_path, ==, expected);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL) {
        g_error("'%s' does not contain '%s'", haystack, needle);
    }
}

static void test_intel_nested(void)
{
    FakeKvm fake = {0};
    g_autoptr(HvHostReport) r = probe_fixture("intel-nested", &fake);

    assert_opened(&fake, "intel-nested");
    g_assert_cmpint(fake.ioctls, ==, 2);
    g_assert_cmpstr(r->cpu_vendor, ==, "GenuineIntel");
    g_assert_true(r->vmx);
    g_assert_false(r->svm);
    g_assert_false(r->hypervisor);
    g_assert_true(r->kvm_device);
    g_assert_true(r->kvm_device_opens);
    g_assert_cmpint(r->kvm_api_version, ==, 12);
    g_assert_cmpint(r->nested_state_size, ==, 8320);
    g_assert_cmpstr(r->kvm_module, ==, "kvm_intel");
    g_assert_cmpint(r->nested, ==, 1);
    g_assert_cmpint(r->ept_npt, ==, 1);
    g_assert_cmpint(r->shadow_vmcs, ==, 1);
    g_assert_cmpint(r->apicv_avic, ==, 1);
    g_assert_false(r->pvm);
    g_assert_cmpint(r->iommu_groups, ==, 3);
    g_assert_true(r->vfio);
    g_assert_cmpint(r->backend, ==, HV_BACKEND_KVM);
    g_assert_cmpstr(r->reason, ==, "hardware virtualization (vmx) with nested=1 in kvm_intel");
    fake_kvm_clear(&fake);
}

static void test_amd_nested(void)
{
    FakeKvm fake = {0};
    g_autoptr(HvHostReport) r = probe_fixture("amd-nested", &fake);

    assert_opened(&fake, "amd-nested");
    g_assert_cmpstr(r->cpu_vendor, ==, "AuthenticAMD");
    g_assert_false(r->vmx);
    g_assert_true(r->svm);
    g_assert_false(r->hypervisor);
    g_assert_true(r->kvm_device);
    g_assert_true(r->kvm_device_opens);
    g_assert_cmpint(r->kvm_api_version, ==, 12);
    g_assert_cmpint(r->nested_state_size, ==, 4224);
    g_assert_cmpstr(r->kvm_module, ==, "kvm_amd");
    g_assert_cmpint(r->nested, ==, 1);
    g_assert_cmpint(r->ept_npt, ==, 1);
    g_assert_cmpint(r->shadow_vmcs, ==, -1);
    g_assert_cmpint(r->apicv_avic, ==, 0);
    g_assert_false(r->pvm);
    g_assert_cmpint(r->iommu_groups, ==, 5);
    g_assert_false(r->vfio);
    g_assert_cmpint(r->backend, ==, HV_BACKEND_KVM);
    g_assert_cmpstr(r->reason, ==, "hardware virtualization (svm) with nested=1 in kvm_amd");
    fake_kvm_clear(&fake);
}

static void test_intel_nested_off(void)
{
    FakeKvm fake = {0};
    g_autoptr(HvHostReport) r = probe_fixture("intel-nested-off", &fake);

    assert_opened(&fake, "intel-nested-off");
    g_assert_cmpstr(r->cpu_vendor, ==, "GenuineIntel");
    g_assert_true(r->vmx);
    g_assert_false(r->svm);
    g_assert_false(r->hypervisor);
    g_assert_true(r->kvm_device);
    g_assert_true(r->kvm_device_opens);
    g_assert_cmpint(r->kvm_api_version, ==, 12);
    g_assert_cmpint(r->nested_state_size, ==, 8320);
    g_assert_cmpstr(r->kvm_module, ==, "kvm_intel");
    g_assert_cmpint(r->nested, ==, 0);
    g_assert_cmpint(r->ept_npt, ==, 1);
    g_assert_cmpint(r->shadow_vmcs, ==, 0);
    g_assert_cmpint(r->apicv_avic, ==, 1);
    g_assert_false(r->pvm);
    g_assert_cmpint(r->iommu_groups, ==, 0);
    g_assert_false(r->vfio);
    /* The hardware is there: stack creation is what refuses, with this reason. */
    g_assert_cmpint(r->backend, ==, HV_BACKEND_KVM);
    assert_contains(r->reason, "kvm_intel is loaded with nested=0");
    assert_contains(r->reason, "'options kvm_intel nested=1'");
    assert_contains(r->reason, "/etc/modprobe.d/");
    assert_contains(r->reason, "reload kvm_intel");
    fake_kvm_clear(&fake);
}

static void test_pvm_no_vmx(void)
{
    FakeKvm fake = {0};
    g_autoptr(HvHostReport) r = probe_fixture("pvm-no-vmx", &fake);

    assert_opened(&fake, "pvm-no-vmx");
    g_assert_cmpstr(r->cpu_vendor, ==, "GenuineIntel");
    g_assert_false(r->vmx);
    g_assert_false(r->svm);
    g_assert_true(r->hypervisor);
    /* /dev/kvm exists and answers, yet must not be trusted. */
    g_assert_true(r->kvm_device);
    g_assert_true(r->kvm_device_opens);
    g_assert_cmpint(r->kvm_api_version, ==, 12);
    g_assert_cmpint(r->nested_state_size, ==, 0);
    g_assert_null(r->kvm_module);
    g_assert_cmpint(r->nested, ==, -1);
    g_assert_cmpint(r->ept_npt, ==, -1);
    g_assert_cmpint(r->shadow_vmcs, ==, -1);
    g_assert_cmpint(r->apicv_avic, ==, -1);
    g_assert_true(r->pvm);
    g_assert_cmpint(r->iommu_groups, ==, 0);
    g_assert_false(r->vfio);
    g_assert_cmpint(r->backend, ==, HV_BACKEND_TCG);
    assert_contains(r->reason, "no vmx or svm in /proc/cpuinfo");
    assert_contains(r->reason, "/dev/kvm is backed by kvm_pvm, which cannot run a stock guest");
    assert_contains(r->reason, "QEMU TCG");
    fake_kvm_clear(&fake);
}

static void test_no_kvm(void)
{
    FakeKvm fake = {0};
    g_autoptr(HvHostReport) r = probe_fixture("no-kvm", &fake);

    g_assert_cmpint(fake.opens, ==, 0);
    g_assert_cmpint(fake.ioctls, ==, 0);
    g_assert_cmpstr(r->cpu_vendor, ==, "GenuineIntel");
    g_assert_true(r->vmx);
    g_assert_false(r->svm);
    g_assert_false(r->hypervisor);
    g_assert_false(r->kvm_device);
    g_assert_false(r->kvm_device_opens);
    g_assert_cmpint(r->kvm_api_version, ==, -1);
    g_assert_cmpint(r->nested_state_size, ==, -1);
    g_assert_null(r->kvm_module);
    g_assert_cmpint(r->nested, ==, -1);
    g_assert_cmpint(r->ept_npt, ==, -1);
    g_assert_cmpint(r->shadow_vmcs, ==, -1);
    g_assert_cmpint(r->apicv_avic, ==, -1);
    g_assert_false(r->pvm);
    g_assert_cmpint(r->iommu_groups, ==, 1);
    g_assert_false(r->vfio);
    g_assert_cmpint(r->backend, ==, HV_BACKEND_TCG);
    assert_contains(r->reason, "(vmx) is present");
    assert_contains(r->reason, "/dev/kvm does not exist");
    assert_contains(r->reason, "kvm_intel");
    assert_contains(r->reason, "QEMU TCG");
    fake_kvm_clear(&fake);
}

static void test_kvm_eacces(void)
{
    FakeKvm fake = {0};
    g_autoptr(HvHostReport) r = probe_fixture("kvm-eacces", &fake);

    assert_opened(&fake, "kvm-eacces");
    g_assert_cmpint(fake.ioctls, ==, 0);
    g_assert_true(r->vmx);
    g_assert_true(r->kvm_device);
    g_assert_false(r->kvm_device_opens);
    g_assert_cmpint(r->kvm_api_version, ==, -1);
    g_assert_cmpint(r->nested_state_size, ==, -1);
    /* Module parameters are still reported although the device is closed to us. */
    g_assert_cmpstr(r->kvm_module, ==, "kvm_intel");
    g_assert_cmpint(r->nested, ==, 1);
    g_assert_cmpint(r->backend, ==, HV_BACKEND_TCG);
    assert_contains(r->reason, "/dev/kvm cannot be opened");
    assert_contains(r->reason, g_strerror(EACCES));
    fake_kvm_clear(&fake);
}

static void test_vmx_no_module(void)
{
    FakeKvm fake = {0};
    g_autoptr(HvHostReport) r = probe_fixture("vmx-no-module", &fake);

    assert_opened(&fake, "vmx-no-module");
    g_assert_true(r->vmx);
    g_assert_true(r->kvm_device_opens);
    g_assert_cmpint(r->nested_state_size, ==, 0);
    g_assert_null(r->kvm_module);
    g_assert_cmpint(r->nested, ==, -1);
    g_assert_false(r->pvm);
    g_assert_cmpint(r->backend, ==, HV_BACKEND_TCG);
    assert_contains(r->reason, "kvm_intel is not loaded");
    g_assert_null(strstr(r->reason, "kvm_pvm"));
    fake_kvm_clear(&fake);
}

/* "svmx", "vmxx", "svm_lock", "hypervisorx" and the "vmx flags" line are not
 * the flags; and only the first processor's block counts (the second one,
 * AuthenticAMD with real vmx/svm, must be ignored). */
static void test_flag_lookalikes(void)
{
    FakeKvm fake = {0};
    g_autoptr(HvHostReport) r = probe_fixture("flag-lookalikes", &fake);

    g_assert_cmpstr(r->cpu_vendor, ==, "GenuineIntel");
    g_assert_false(r->vmx);
    g_assert_false(r->svm);
    g_assert_false(r->hypervisor);
    g_assert_cmpstr(r->kvm_module, ==, "kvm_intel");
    g_assert_cmpint(r->backend, ==, HV_BACKEND_TCG);
    assert_contains(r->reason, "no vmx or svm in /proc/cpuinfo");
    g_assert_null(strstr(r->reason, "kvm_pvm"));
    fake_kvm_clear(&fake);
}

static void assert_probe_fails(const char *root)
{
    g_autoptr(GError) error = NULL;
    FakeKvm fake = {0};
    HvKvmOps ops = {fake_open, fake_ioctl, fake_close, &fake};
    g_autoptr(HvHostReport) r = hv_probe_host(root, &ops, &error);

    g_assert_null(r);
    g_assert_error(error, HV_ERROR, HV_ERROR_NOT_FOUND);
    g_assert_cmpint(fake.opens, ==, 0);
}

static void test_bad_roots(void)
{
    g_autofree char *hosts = fixture_dir("");
    g_autofree char *missing = fixture_dir("no-such-host");
    g_autofree char *intel = fixture_dir("intel-nested");
    g_autofree char *file = g_build_filename(intel, "proc", "cpuinfo", NULL);

    assert_probe_fails(missing);
    /* A regular file is no root. */
    assert_probe_fails(file);
    /* A directory without proc/cpuinfo is no host. */
    assert_probe_fails(hosts);
}

static void test_backend_strings(void)
{
    const HvBackend all[] = {HV_BACKEND_KVM, HV_BACKEND_TCG, HV_BACKEND_TEST};
    const char *const names[] = {"kvm", "tcg", "test"};

    for (guint i = 0; i < G_N_ELEMENTS(all); i++) {
        HvBackend parsed = (HvBackend)-1;
        g_assert_cmpstr(hv_backend_to_string(all[i]), ==, names[i]);
        g_assert_true(hv_backend_from_string(names[i], &parsed));
        g_assert_cmpint(parsed, ==, all[i]);
    }

    HvBackend untouched = HV_BACKEND_TEST;
    g_assert_false(hv_backend_from_string("KVM", &untouched));
    g_assert_false(hv_backend_from_string("auto", &untouched));
    g_assert_false(hv_backend_from_string("", &untouched));
    g_assert_false(hv_backend_from_string("kvm ", &untouched));
    g_assert_false(hv_backend_from_string(NULL, &untouched));
    g_assert_cmpint(untouched, ==, HV_BACKEND_TEST);
    g_assert_cmpstr(hv_backend_to_string((HvBackend)99), ==, "unknown");
}

static void test_report_free_null(void)
{
    hv_host_report_free(NULL);
}

/* An independent reading of the first flags line, to check the probe with. */
static gboolean real_flag(const char *cpuinfo, const char *flag)
{
    g_autofree char *pattern = g_strdup_printf("^flags\\s*:.*\\b%s\\b", flag);
    g_autoptr(GRegex) first_flags = g_regex_new("^flags\\s*:.*$", G_REGEX_MULTILINE, 0, NULL);
    g_autoptr(GMatchInfo) match = NULL;

    if (!g_regex_match(first_flags, cpuinfo, 0, &match)) {
        return FALSE;
    }
    g_autofree char *line = g_match_info_fetch(match, 0);
    return g_regex_match_simple(pattern, line, 0, 0);
}

static void test_real_host(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *cpuinfo = NULL;
    g_autoptr(HvHostReport) r = hv_probe_host("/", &hv_kvm_system_ops, &error);

    g_assert_no_error(error);
    g_assert_nonnull(r);
    g_assert_true(g_file_get_contents("/proc/cpuinfo", &cpuinfo, NULL, NULL));
    g_test_message("real host: backend %s: %s", hv_backend_to_string(r->backend), r->reason);

    g_assert_cmpint(r->vmx, ==, real_flag(cpuinfo, "vmx"));
    g_assert_cmpint(r->svm, ==, real_flag(cpuinfo, "svm"));
    g_assert_cmpint(r->hypervisor, ==, real_flag(cpuinfo, "hypervisor"));
    g_assert_cmpint(r->kvm_device, ==, g_file_test("/dev/kvm", G_FILE_TEST_EXISTS));
    g_assert_cmpint(r->pvm, ==, g_file_test("/sys/module/kvm_pvm", G_FILE_TEST_IS_DIR));
    g_assert_cmpint(r->vfio, ==, g_file_test("/dev/vfio/vfio", G_FILE_TEST_EXISTS));
    g_assert_cmpint(r->iommu_groups, >=, 0);
    g_assert_true(r->kvm_device || !r->kvm_device_opens);
    if (r->kvm_device_opens) {
        /* The one stable KVM API since Linux 2.6.22. */
        g_assert_cmpint(r->kvm_api_version, ==, KVM_API_VERSION);
        g_assert_cmpint(r->nested_state_size, >=, 0);
    } else {
        g_assert_cmpint(r->kvm_api_version, ==, -1);
        g_assert_cmpint(r->nested_state_size, ==, -1);
    }
    if (!r->vmx && !r->svm) {
        g_assert_cmpint(r->backend, ==, HV_BACKEND_TCG);
    }
    if (r->backend == HV_BACKEND_KVM) {
        g_assert_true(r->kvm_device_opens);
        g_assert_nonnull(r->kvm_module);
    }
    if (r->pvm && !r->vmx && !r->svm) {
        assert_contains(r->reason, "kvm_pvm");
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/probe/backend-strings", test_backend_strings);
    g_test_add_func("/probe/report-free-null", test_report_free_null);
    g_test_add_func("/probe/fixture/intel-nested", test_intel_nested);
    g_test_add_func("/probe/fixture/amd-nested", test_amd_nested);
    g_test_add_func("/probe/fixture/intel-nested-off", test_intel_nested_off);
    g_test_add_func("/probe/fixture/pvm-no-vmx", test_pvm_no_vmx);
    g_test_add_func("/probe/fixture/no-kvm", test_no_kvm);
    g_test_add_func("/probe/fixture/kvm-eacces", test_kvm_eacces);
    g_test_add_func("/probe/fixture/vmx-no-module", test_vmx_no_module);
    g_test_add_func("/probe/fixture/flag-lookalikes", test_flag_lookalikes);
    g_test_add_func("/probe/bad-roots", test_bad_roots);
    g_test_add_func("/probe/real-host", test_real_host);
    return g_test_run();
}
