/* hvcore/domain: stack spec -> domain XML (checked with XPath, by libvirt's
 * test driver and by libvirt's schema) and identity back from <metadata>. */
#include <stdarg.h>
#include <string.h>

#include <glib/gstdio.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "hvcore/domain.h"
#include "hvcore/error.h"
#include "hvcore/libvirt-private.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathContext, xmlXPathFreeContext)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathObject, xmlXPathFreeObject)

#define SAMPLE_ID  "6f1c3c2e-9a43-4b7e-8d2a-1c2b3c4d5e6f"
#define KERNEL     "/var/lib/turtles/images/vmlinuz"
#define INITRD     "/var/lib/turtles/images/initrd.img"
#define CMDLINE    "console=ttyS0 panic=-1"
#define CONSOLE    "/var/lib/turtles/console/web.log"
#define DISK       "/var/lib/turtles/disks/web.qcow2"
#define RECORD     "{\"name\":\"web\",\"vcpus\":2}"
#define NASTY      "a<b>c&d'e\"f]]>g</turtles:stack><turtles:id>x</turtles:id>&amp;&#60;<!--z-->ü雪"
#define TEST_URI   "test:///default"
#define XML_SCHEMA "virt-xml-validate"

static void silent_libvirt_error(void *data, virErrorPtr err)
{
    (void)data;
    (void)err;
}

static HvStackSpec *sample_spec(const char *id)
{
    HvStackSpec *spec = hv_stack_spec_new();

    spec->id = g_strdup(id);
    spec->name = g_strdup("web");
    spec->tenant = g_strdup("acme");
    spec->vcpus = 2;
    spec->memory_mib = 1024;
    spec->kernel_path = g_strdup(KERNEL);
    spec->initrd_path = g_strdup(INITRD);
    spec->cmdline = g_strdup(CMDLINE);
    spec->iommu = HV_IOMMU_INTEL;
    spec->console_log = g_strdup(CONSOLE);
    spec->record_json = g_strdup(RECORD);
    return spec;
}

static void to_disk_boot(HvStackSpec *spec, const char *format)
{
    g_clear_pointer(&spec->kernel_path, g_free);
    g_clear_pointer(&spec->initrd_path, g_free);
    g_clear_pointer(&spec->cmdline, g_free);
    spec->disk_path = g_strdup(DISK);
    spec->disk_format = g_strdup(format);
}

/* Host reports built by hand, so these tests do not depend on the probe. */
static HvHostReport kvm_host(const char *vendor, const char *module, int nested)
{
    HvHostReport host = {0};

    host.cpu_vendor = (char *)vendor;
    host.vmx = g_strcmp0(vendor, "GenuineIntel") == 0;
    host.svm = g_strcmp0(vendor, "AuthenticAMD") == 0;
    host.kvm_device = host.kvm_device_opens = TRUE;
    host.kvm_api_version = 12;
    host.kvm_module = (char *)module;
    host.nested = nested;
    host.ept_npt = 1;
    host.backend = HV_BACKEND_KVM;
    return host;
}

/* ---- XPath helpers ------------------------------------------------------- */

static xmlDoc *parse_xml(const char *xml)
{
    g_assert_nonnull(xml);
    xmlDoc *doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    g_assert_nonnull(doc);
    return doc;
}

static xmlXPathObject *xp_eval(xmlDoc *doc, const char *expr)
{
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);

    g_assert_nonnull(ctx);
    g_assert_cmpint(xmlXPathRegisterNs(ctx, BAD_CAST "t", BAD_CAST HV_DOMAIN_METADATA_URI), ==, 0);
    g_assert_cmpint(xmlXPathRegisterNs(ctx, BAD_CAST "q", BAD_CAST HV_DOMAIN_QEMU_NS_URI), ==, 0);
    xmlXPathObject *result = xmlXPathEvalExpression(BAD_CAST expr, ctx);
    if (!result)
        g_error("XPath expression does not evaluate: %s", expr);
    return result;
}

static int xp_count(xmlDoc *doc, const char *expr)
{
    g_autofree char *wrapped = g_strdup_printf("count(%s)", expr);
    g_autoptr(xmlXPathObject) result = xp_eval(doc, wrapped);

    g_assert_cmpint(result->type, ==, XPATH_NUMBER);
    return (int)result->floatval;
}

static char *xp_string(xmlDoc *doc, const char *expr)
{
    g_autofree char *wrapped = g_strdup_printf("string(%s)", expr);
    g_autoptr(xmlXPathObject) result = xp_eval(doc, wrapped);

    g_assert_cmpint(result->type, ==, XPATH_STRING);
    return g_strdup((const char *)result->stringval);
}

#define assert_xp_string(doc, expr, expected)                                                      \
    do {                                                                                           \
        g_autofree char *xp_value_ = xp_string((doc), (expr));                                     \
        if (g_strcmp0(xp_value_, (expected)) != 0)                                                 \
            g_error("%s: got '%s', expected '%s'", (expr), xp_value_, (expected));                 \
    } while (0)

#define assert_xp_count(doc, expr, expected)                                                       \
    do {                                                                                           \
        int xp_n_ = xp_count((doc), (expr));                                                       \
        if (xp_n_ != (expected))                                                                   \
            g_error("count(%s): got %d, expected %d", (expr), xp_n_, (expected));                  \
    } while (0)

static xmlDoc *build_doc(const HvStackSpec *spec, HvBackend backend, const HvHostReport *host)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_domain_build_xml(spec, backend, host, &error);

    g_assert_no_error(error);
    return parse_xml(xml);
}

static void assert_build_fails(const HvStackSpec *spec, HvBackend backend, const HvHostReport *host,
                               int code, const char *needle)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_domain_build_xml(spec, backend, host, &error);

    g_assert_null(xml);
    g_assert_error(error, HV_ERROR, code);
    if (!strstr(error->message, needle))
        g_error("error message '%s' does not mention '%s'", error->message, needle);
}

static void assert_identity(const HvStackIdentity *identity, const HvStackSpec *spec)
{
    g_assert_nonnull(identity);
    g_assert_cmpstr(identity->id, ==, spec->id);
    g_assert_cmpstr(identity->name, ==, spec->name);
    g_assert_cmpstr(identity->tenant, ==, spec->tenant);
    g_assert_cmpstr(identity->record_json, ==, spec->record_json);
}

/* Everything a tcg-shaped (tcg or test backend) domain of sample_spec has
 * besides its type attribute. */
static void assert_tcg_shape(xmlDoc *doc, const HvStackSpec *spec)
{
    g_autofree char *name = hv_domain_name_for(spec->id);
    g_autofree char *title = g_strdup_printf("%s/%s", spec->tenant, spec->name);

    assert_xp_count(doc, "/*", 1);
    assert_xp_count(doc, "/domain", 1);
    assert_xp_string(doc, "/domain/name", name);
    assert_xp_string(doc, "/domain/uuid", spec->id);
    assert_xp_string(doc, "/domain/title", title);
    assert_xp_string(doc, "/domain/memory[@unit='MiB']", "1024");
    assert_xp_string(doc, "/domain/vcpu", "2");
    assert_xp_string(doc, "/domain/os/type[@arch='x86_64' and @machine='q35']", "hvm");
    assert_xp_string(doc, "/domain/os/kernel", KERNEL);
    assert_xp_string(doc, "/domain/os/initrd", INITRD);
    /* The Intel vIOMMU is turned on in the L1 kernel. */
    assert_xp_string(doc, "/domain/os/cmdline", CMDLINE " intel_iommu=on");
    assert_xp_count(doc, "/domain/os/boot", 0);

    assert_xp_count(doc, "/domain/features/acpi", 1);
    assert_xp_count(doc, "/domain/features/apic", 1);
    assert_xp_count(doc, "/domain/features/ioapic[@driver='qemu']", 1);

    assert_xp_count(doc, "/domain/cpu", 1);
    assert_xp_count(doc, "/domain/cpu[@mode='custom' and @match='exact' and @check='none']", 1);
    assert_xp_string(doc, "/domain/cpu/model[@fallback='forbid']", HV_TCG_DEFAULT_CPU_MODEL);
    assert_xp_count(doc, "/domain/cpu/feature", 2);
    assert_xp_count(doc, "/domain/cpu/feature[@name='svm' and @policy='require']", 1);
    assert_xp_count(doc, "/domain/cpu/feature[@name='npt' and @policy='require']", 1);

    assert_xp_count(doc, "/domain/devices/iommu", 1);
    assert_xp_count(doc,
                    "/domain/devices/iommu[@model='intel']/driver[@caching_mode='on' and "
                    "@intremap='on' and @iotlb='on']",
                    1);

    assert_xp_count(doc, "/domain/devices/serial", 1);
    /* A pty (interactive through virDomainOpenConsole) that logs to the
     * file the read-only console reads. */
    assert_xp_string(doc, "/domain/devices/serial[@type='pty']/log/@file", CONSOLE);
    assert_xp_count(doc, "/domain/devices/serial/source", 0);
    assert_xp_string(doc, "/domain/devices/serial/target/@port", "0");
    assert_xp_count(doc, "/domain/devices/console", 1);
    assert_xp_string(doc, "/domain/devices/console[@type='pty']/log/@file", CONSOLE);
    assert_xp_count(doc, "/domain/devices/console/target[@type='serial' and @port='0']", 1);
    /* The console log survives QEMU restarts (stop/start, reboot by restart). */
    assert_xp_count(doc, "/domain/devices/serial/log[@append='on']", 1);
    assert_xp_count(doc, "/domain/devices/console/log[@append='on']", 1);
    assert_xp_count(doc, "/domain/devices/graphics", 0);
    assert_xp_count(doc, "/domain/devices/emulator", 0);
    assert_xp_count(doc, "/domain/devices/disk", 0);
    assert_xp_count(doc, "/domain/devices/hostdev", 0);
    assert_xp_count(doc, "/domain/devices/memballoon[@model='none']", 1);
    assert_xp_count(doc, "/domain/memtune", 0);

    assert_xp_string(doc, "/domain/on_poweroff", "destroy");
    assert_xp_string(doc, "/domain/on_reboot", "restart");
    assert_xp_string(doc, "/domain/on_crash", "destroy");

    assert_xp_count(doc, "/domain/metadata/t:stack", 1);
    assert_xp_string(doc, "/domain/metadata/t:stack/t:id", spec->id);
    assert_xp_string(doc, "/domain/metadata/t:stack/t:name", spec->name);
    assert_xp_string(doc, "/domain/metadata/t:stack/t:tenant", spec->tenant);
    assert_xp_string(doc, "/domain/metadata/t:stack/t:record", spec->record_json);
}

static void add_every_model(HvStackSpec *spec);
static void add_three_nics(HvStackSpec *spec);

/* ---- libvirt test driver ------------------------------------------------- */

static HvConn *open_test_driver(void)
{
    HvConn *conn = hv_conn_open(TEST_URI, NULL);

    if (!conn)
        g_error("cannot open %s: %s", TEST_URI, virGetLastErrorMessage());
    return conn;
}

/* Defines and starts @xml on test:///default, checks it runs, and returns
 * the XML libvirt gives back.  The domain is gone again afterwards. */
static char *run_on_test_driver(const char *xml, const char *expected_uuid)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autoptr(virDomain) dom = virDomainDefineXML(hv_conn_get_libvirt(conn), xml);
    if (!dom)
        g_error("test driver refuses the XML: %s", virGetLastErrorMessage());

    char uuid[VIR_UUID_STRING_BUFLEN];
    g_assert_cmpint(virDomainGetUUIDString(dom, uuid), ==, 0);
    g_assert_cmpstr(uuid, ==, expected_uuid);
    g_autofree char *expected_name = hv_domain_name_for(expected_uuid);
    g_assert_cmpstr(virDomainGetName(dom), ==, expected_name);

    if (virDomainCreate(dom) != 0)
        g_error("test driver cannot start the domain: %s", virGetLastErrorMessage());
    int state = -1, reason = -1;
    g_assert_cmpint(virDomainGetState(dom, &state, &reason, 0), ==, 0);
    g_assert_cmpint(state, ==, VIR_DOMAIN_RUNNING);

    char *desc = virDomainGetXMLDesc(dom, 0);
    g_assert_nonnull(desc);
    /* libvirt allocates with malloc; hand back GLib memory. */
    char *copy = g_strdup(desc);
    free(desc);

    g_assert_cmpint(virDomainDestroy(dom), ==, 0);
    g_assert_cmpint(virDomainUndefine(dom), ==, 0);
    g_autoptr(virDomain) gone =
        virDomainLookupByUUIDString(hv_conn_get_libvirt(conn), expected_uuid);
    g_assert_null(gone);
    return copy;
}

/* ---- tests --------------------------------------------------------------- */

static void test_spec_lifecycle(void)
{
    g_autoptr(HvStackSpec) spec = hv_stack_spec_new();

    g_assert_nonnull(spec->devices);
    g_assert_cmpuint(spec->devices->len, ==, 0);
    g_ptr_array_add(spec->devices, hv_device_new("d-0000-3b-00.0", HV_DEVICE_VFIO, "0000:3b:00.0"));
    g_assert_cmpint(spec->cpu_mode, ==, HV_CPU_DEFAULT);
    g_assert_cmpint(spec->iommu, ==, HV_IOMMU_NONE);

    hv_stack_spec_free(NULL);
    hv_stack_identity_free(NULL);

    g_autofree char *name = hv_domain_name_for(SAMPLE_ID);
    g_assert_cmpstr(name, ==, "turtles-" SAMPLE_ID);
    g_assert_true(g_str_has_prefix(name, HV_DOMAIN_NAME_PREFIX));
}

static void test_tcg_sample(void)
{
    g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
    g_autoptr(xmlDoc) doc = build_doc(spec, HV_BACKEND_TCG, NULL);

    assert_xp_string(doc, "/domain/@type", "qemu");
    assert_tcg_shape(doc, spec);
    assert_xp_count(doc, "/domain/cpu/feature[@name='vmx']", 0);
}

static void test_tcg_named_and_refused_modes(void)
{
    g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);

    spec->cpu_mode = HV_CPU_NAMED;
    spec->cpu_model = g_strdup("EPYC-Rome");
    g_autoptr(xmlDoc) doc = build_doc(spec, HV_BACKEND_TCG, NULL);
    assert_xp_string(doc, "/domain/cpu[@mode='custom']/model", "EPYC-Rome");
    assert_xp_count(doc, "/domain/cpu/feature[@name='svm' and @policy='require']", 1);
    assert_xp_count(doc, "/domain/cpu/feature[@name='npt' and @policy='require']", 1);

    g_clear_pointer(&spec->cpu_model, g_free);
    spec->cpu_mode = HV_CPU_HOST_PASSTHROUGH;
    assert_build_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, "host-passthrough");
    assert_build_fails(spec, HV_BACKEND_TEST, NULL, HV_ERROR_INVALID, "hardware virtualization");
    spec->cpu_mode = HV_CPU_HOST_MODEL;
    assert_build_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, "host-model");
}

static void test_test_backend_runs(void)
{
    g_autoptr(HvStackSpec) spec = sample_spec("0b6b1c5e-0d5a-4c7a-9f5e-2a1b3c4d5e01");
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_domain_build_xml(spec, HV_BACKEND_TEST, NULL, &error);
    g_assert_no_error(error);

    g_autoptr(xmlDoc) doc = parse_xml(xml);
    assert_xp_string(doc, "/domain/@type", "test");
    assert_tcg_shape(doc, spec);

    g_autofree char *desc = run_on_test_driver(xml, spec->id);
    g_autoptr(HvStackIdentity) identity = hv_domain_parse_identity(desc, &error);
    g_assert_no_error(error);
    assert_identity(identity, spec);

    /* libvirt kept every nesting element, not just our metadata. */
    g_autoptr(xmlDoc) kept = parse_xml(desc);
    assert_xp_count(kept, "/domain/devices/iommu[@model='intel']/driver[@caching_mode='on']", 1);
    assert_xp_count(kept, "/domain/features/ioapic[@driver='qemu']", 1);
    assert_xp_count(kept, "/domain/cpu/feature[@name='svm' and @policy='require']", 1);
    assert_xp_string(kept, "/domain/devices/serial[@type='pty']/log/@file", CONSOLE);
    assert_xp_string(kept, "/domain/devices/serial/log/@append", "on");
    assert_xp_string(kept, "/domain/os/kernel", KERNEL);
    assert_xp_string(kept, "/domain/os/cmdline", CMDLINE " intel_iommu=on");
}

static void test_iommu_variants(void)
{
    g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);

    spec->iommu = HV_IOMMU_VIRTIO;
    g_autoptr(xmlDoc) virtio = build_doc(spec, HV_BACKEND_TCG, NULL);
    assert_xp_count(virtio, "/domain/devices/iommu", 1);
    assert_xp_count(virtio, "/domain/devices/iommu[@model='virtio']", 1);
    assert_xp_count(virtio, "/domain/devices/iommu/*", 0);
    assert_xp_count(virtio, "/domain/features/ioapic", 0);

    spec->iommu = HV_IOMMU_NONE;
    g_autoptr(xmlDoc) none = build_doc(spec, HV_BACKEND_TCG, NULL);
    assert_xp_count(none, "//iommu", 0);
    assert_xp_count(none, "/domain/features/ioapic", 0);
    assert_xp_count(none, "/domain/features/acpi", 1);

    spec->iommu = (HvIommu)42;
    assert_build_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, "iommu");
}

/* An L1 kernel with an Intel vIOMMU gets intel_iommu=on, unless the tenant
 * said otherwise or it would not fit; without one, the line is the tenant's. */
static void test_intel_iommu_cmdline(void)
{
    static const struct {
        HvIommu iommu;
        const char *given;
        const char *expected;
    } cases[] = {
        {HV_IOMMU_INTEL, "console=ttyS0", "console=ttyS0 intel_iommu=on"},
        {HV_IOMMU_INTEL, "console=ttyS0 intel_iommu=off", "console=ttyS0 intel_iommu=off"},
        {HV_IOMMU_INTEL, "intel_iommu=on,sm_on quiet", "intel_iommu=on,sm_on quiet"},
        {HV_IOMMU_INTEL, "xintel_iommu=on", "xintel_iommu=on intel_iommu=on"},
        {HV_IOMMU_VIRTIO, "console=ttyS0", "console=ttyS0"},
        {HV_IOMMU_NONE, "console=ttyS0", "console=ttyS0"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
        spec->iommu = cases[i].iommu;
        g_free(spec->cmdline);
        spec->cmdline = g_strdup(cases[i].given);
        g_autoptr(xmlDoc) doc = build_doc(spec, HV_BACKEND_TCG, NULL);
        assert_xp_string(doc, "/domain/os/cmdline", cases[i].expected);
    }
    /* A command line already at the limit is left as it is. */
    g_autoptr(HvStackSpec) full = sample_spec(SAMPLE_ID);
    g_free(full->cmdline);
    full->cmdline = g_strnfill(HV_SPEC_CMDLINE_MAX - 3, 'a');
    g_autoptr(xmlDoc) doc = build_doc(full, HV_BACKEND_TCG, NULL);
    assert_xp_string(doc, "/domain/os/cmdline", full->cmdline);
}

static void test_disk_boot(void)
{
    g_autoptr(HvStackSpec) spec = sample_spec("7d4f2b1a-1111-4e2e-8a8a-0123456789ab");
    to_disk_boot(spec, "qcow2");
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_domain_build_xml(spec, HV_BACKEND_TEST, NULL, &error);
    g_assert_no_error(error);
    g_autoptr(xmlDoc) doc = parse_xml(xml);

    assert_xp_count(doc, "/domain/os/boot[@dev='hd']", 1);
    assert_xp_count(doc, "/domain/os/kernel | /domain/os/initrd | /domain/os/cmdline", 0);
    assert_xp_count(doc, "/domain/devices/disk", 1);
    assert_xp_count(doc,
                    "/domain/devices/disk[@type='file' and @device='disk']/driver[@name='qemu' and "
                    "@type='qcow2']",
                    1);
    assert_xp_string(doc, "/domain/devices/disk/source/@file", DISK);
    assert_xp_count(doc, "/domain/devices/disk/target[@dev='vda' and @bus='virtio']", 1);

    g_autofree char *desc = run_on_test_driver(xml, spec->id);
    g_autoptr(xmlDoc) kept = parse_xml(desc);
    assert_xp_string(kept, "/domain/devices/disk/source/@file", DISK);

    g_free(spec->disk_format);
    spec->disk_format = g_strdup("raw");
    g_autoptr(xmlDoc) raw = build_doc(spec, HV_BACKEND_TCG, NULL);
    assert_xp_count(raw, "/domain/devices/disk/driver[@name='qemu' and @type='raw']", 1);
}

static void test_hostdevs_and_memtune(void)
{
    g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
    g_ptr_array_add(spec->devices, hv_device_new("d-0000-3b-00.0", HV_DEVICE_VFIO, "0000:3b:00.0"));
    g_ptr_array_add(spec->devices, hv_device_new("d-0001-af-1f.7", HV_DEVICE_VFIO, "0001:af:1f.7"));

    /* Devices with a vIOMMU: hostdevs and a raised memory lock limit. */
    g_autoptr(xmlDoc) doc = build_doc(spec, HV_BACKEND_TCG, NULL);
    assert_xp_count(doc, "/domain/devices/hostdev", 2);
    assert_xp_count(
        doc, "/domain/devices/hostdev[@mode='subsystem' and @type='pci' and @managed='yes']", 2);
    assert_xp_count(doc,
                    "/domain/devices/hostdev/source/address[@domain='0x0000' and @bus='0x3b' and "
                    "@slot='0x00' and @function='0x0']",
                    1);
    assert_xp_count(doc,
                    "/domain/devices/hostdev/source/address[@domain='0x0001' and @bus='0xaf' and "
                    "@slot='0x1f' and @function='0x7']",
                    1);
    assert_xp_string(doc, "/domain/memtune/hard_limit[@unit='MiB']", "2048");

    spec->iommu = HV_IOMMU_VIRTIO;
    g_autoptr(xmlDoc) virtio = build_doc(spec, HV_BACKEND_TCG, NULL);
    assert_xp_string(virtio, "/domain/memtune/hard_limit[@unit='MiB']", "2048");

    /* libvirt takes hostdevs and the limit as they are. */
    g_autoptr(HvStackSpec) on_test = sample_spec("5e2d8c4b-2222-4f3a-9b7c-abcdef012345");
    g_ptr_array_add(on_test->devices, hv_device_new("d0", HV_DEVICE_VFIO, "0000:3b:00.0"));
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_domain_build_xml(on_test, HV_BACKEND_TEST, NULL, &error);
    g_assert_no_error(error);
    g_autofree char *desc = run_on_test_driver(xml, on_test->id);
    g_autoptr(xmlDoc) kept = parse_xml(desc);
    assert_xp_count(kept, "/domain/devices/hostdev/source/address[@bus='0x3b']", 1);
    assert_xp_string(kept, "/domain/memtune/hard_limit[@unit='KiB']", "2097152");

    /* Devices without a vIOMMU: refused, L1 could not pass them on. */
    spec->iommu = HV_IOMMU_NONE;
    assert_build_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID,
                       "nesting.iommu: none cannot carry devices");

    /* A vIOMMU without devices: nothing to pin. */
    spec->iommu = HV_IOMMU_INTEL;
    g_ptr_array_set_size(spec->devices, 0);
    g_autoptr(xmlDoc) bare = build_doc(spec, HV_BACKEND_TCG, NULL);
    assert_xp_count(bare, "/domain/devices/hostdev", 0);
    assert_xp_count(bare, "/domain/memtune", 0);
}

static void test_bad_pci_addresses(void)
{
    static const char *const bad[] = {
        "",
        "3b:00.0",
        "0000:3b:00",
        "0000:3b:00.8",
        "0000:3b:20.0",
        "000g:3b:00.0",
        "0000:3b:00.0 ",
        " 0000:3b:00.0",
        "0000-3b-00.0",
        "0000:3b:00:0",
        "00000:3b:00.0",
        "0000:3b:0.00",
        "0000:3b:00.0\n",
        "+000:3b:00.0",
        "0000:-1:00.0",
        /* one spelling per device, as sysfs writes it */
        "0000:3B:00.0",
        "0000:3b:00.A",
        /* a PCI slot has 5 bits */
        "0000:3b:ff.0",
        "0000:3b:21.0",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
        g_ptr_array_add(spec->devices,
                        hv_device_new("d-0000-01-00.0", HV_DEVICE_VFIO, "0000:01:00.0"));
        g_ptr_array_add(spec->devices, hv_device_new("d1", HV_DEVICE_VFIO, bad[i]));
        assert_build_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, "devices[1]");
    }

    g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
    g_ptr_array_add(spec->devices, hv_device_new("d-0000-3b-00.0", HV_DEVICE_VFIO, "0000:3b:00.0"));
    g_ptr_array_add(spec->devices, hv_device_new("d-0000-3b-00.1", HV_DEVICE_VFIO, "0000:3b:00.1"));
    g_ptr_array_add(spec->devices, hv_device_new("other", HV_DEVICE_VFIO, "0000:3b:00.0"));
    assert_build_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID,
                       "devices[2]: duplicates devices[0] (PCI function 0000:3b:00.0)");
}

static void test_kvm_cpu(void)
{
    g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
    HvHostReport intel = kvm_host("GenuineIntel", "kvm_intel", 1);
    HvHostReport amd = kvm_host("AuthenticAMD", "kvm_amd", 1);

    g_autoptr(xmlDoc) deflt = build_doc(spec, HV_BACKEND_KVM, &intel);
    assert_xp_string(deflt, "/domain/@type", "kvm");
    assert_xp_count(deflt, "/domain/cpu", 1);
    assert_xp_count(
        deflt, "/domain/cpu[@mode='host-passthrough' and @check='none' and @migratable='on']", 1);
    assert_xp_count(deflt, "/domain/cpu/*", 0);
    assert_xp_string(deflt, "/domain/os/type[@machine='q35']", "hvm");

    spec->cpu_mode = HV_CPU_HOST_PASSTHROUGH;
    g_autoptr(xmlDoc) passthrough = build_doc(spec, HV_BACKEND_KVM, &amd);
    assert_xp_count(passthrough, "/domain/cpu[@mode='host-passthrough']", 1);
    assert_xp_count(passthrough, "/domain/cpu/*", 0);

    spec->cpu_mode = HV_CPU_NAMED;
    spec->cpu_model = g_strdup("EPYC-Rome");
    g_autoptr(xmlDoc) named_amd = build_doc(spec, HV_BACKEND_KVM, &amd);
    assert_xp_string(named_amd, "/domain/cpu[@mode='custom' and @match='exact']/model",
                     "EPYC-Rome");
    assert_xp_count(named_amd, "/domain/cpu/feature", 2);
    assert_xp_count(named_amd, "/domain/cpu/feature[@name='svm' and @policy='require']", 1);
    assert_xp_count(named_amd, "/domain/cpu/feature[@name='npt' and @policy='require']", 1);

    g_free(spec->cpu_model);
    spec->cpu_model = g_strdup("Skylake-Server-IBRS");
    g_autoptr(xmlDoc) named_intel = build_doc(spec, HV_BACKEND_KVM, &intel);
    assert_xp_string(named_intel, "/domain/cpu/model", "Skylake-Server-IBRS");
    assert_xp_count(named_intel, "/domain/cpu/feature", 1);
    assert_xp_count(named_intel, "/domain/cpu/feature[@name='vmx' and @policy='require']", 1);

    g_clear_pointer(&spec->cpu_model, g_free);
    spec->cpu_mode = HV_CPU_HOST_MODEL;
    g_autoptr(xmlDoc) model_intel = build_doc(spec, HV_BACKEND_KVM, &intel);
    assert_xp_count(model_intel, "/domain/cpu[@mode='host-model']", 1);
    assert_xp_count(model_intel, "/domain/cpu/model", 0);
    assert_xp_count(model_intel, "/domain/cpu/feature[@name='vmx' and @policy='require']", 1);
    g_autoptr(xmlDoc) model_amd = build_doc(spec, HV_BACKEND_KVM, &amd);
    assert_xp_count(model_amd, "/domain/cpu/feature[@name='svm' and @policy='require']", 1);
    assert_xp_count(model_amd, "/domain/cpu/feature[@name='npt' and @policy='require']", 1);
    assert_xp_count(model_amd, "/domain/cpu/feature[@name='vmx']", 0);

    /* An unfamiliar vendor string falls back to the loaded module. */
    HvHostReport odd = kvm_host("unknown", "kvm_amd", 1);
    g_autoptr(xmlDoc) model_odd = build_doc(spec, HV_BACKEND_KVM, &odd);
    assert_xp_count(model_odd, "/domain/cpu/feature[@name='svm']", 1);

    /* The rest of the domain does not change with the backend. */
    assert_xp_count(model_amd, "/domain/devices/iommu[@model='intel']/driver[@caching_mode='on']",
                    1);
    assert_xp_string(model_amd, "/domain/metadata/t:stack/t:record", RECORD);
}

static void test_kvm_refusals(void)
{
    g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
    HvHostReport off = kvm_host("GenuineIntel", "kvm_intel", 0);
    HvHostReport off_amd = kvm_host("AuthenticAMD", "kvm_amd", 0);
    HvHostReport unknown = kvm_host("GenuineIntel", "kvm_intel", -1);
    HvHostReport no_module = kvm_host("GenuineIntel", NULL, -1);

    assert_build_fails(spec, HV_BACKEND_KVM, &off, HV_ERROR_UNSUPPORTED, "nested=1");
    assert_build_fails(spec, HV_BACKEND_KVM, &off, HV_ERROR_UNSUPPORTED, "options kvm_intel");
    assert_build_fails(spec, HV_BACKEND_KVM, &off_amd, HV_ERROR_UNSUPPORTED,
                       "options kvm_amd nested=1");
    assert_build_fails(spec, HV_BACKEND_KVM, &unknown, HV_ERROR_UNSUPPORTED, "nested=1");
    assert_build_fails(spec, HV_BACKEND_KVM, &no_module, HV_ERROR_UNSUPPORTED, "nested=1");
    assert_build_fails(spec, HV_BACKEND_KVM, NULL, HV_ERROR_UNSUPPORTED, "probe report");

    /* A bad spec is still reported as such on a host that cannot nest. */
    spec->vcpus = 0;
    assert_build_fails(spec, HV_BACKEND_KVM, &off, HV_ERROR_INVALID, "vcpus");

    spec->vcpus = 1;
    assert_build_fails(spec, (HvBackend)7, NULL, HV_ERROR_INVALID, "backend");
}

typedef void (*SpecMutation)(HvStackSpec *spec);

#define MUTATION(fn_name, body)                                                                    \
    static void fn_name(HvStackSpec *spec)                                                         \
    {                                                                                              \
        body;                                                                                      \
    }

static void replace(char **field, const char *value)
{
    g_free(*field);
    *field = g_strdup(value);
}

MUTATION(no_id, replace(&spec->id, NULL))
MUTATION(empty_id, replace(&spec->id, ""))
MUTATION(bad_id, replace(&spec->id, "not-a-uuid"))
MUTATION(no_name, replace(&spec->name, NULL))
MUTATION(newline_name, replace(&spec->name, "web\nx"))
MUTATION(empty_tenant, replace(&spec->tenant, ""))
MUTATION(no_console, replace(&spec->console_log, NULL))
MUTATION(relative_console, replace(&spec->console_log, "web.log"))
MUTATION(zero_vcpus, spec->vcpus = 0)
MUTATION(tiny_memory, spec->memory_mib = 127)
MUTATION(huge_memory, spec->memory_mib = HV_SPEC_MEMORY_MAX_MIB + 1)
MUTATION(many_vcpus, spec->vcpus = HV_SPEC_VCPUS_MAX + 1)
MUTATION(no_boot, replace(&spec->kernel_path, NULL); replace(&spec->initrd_path, NULL);
         replace(&spec->cmdline, NULL))
MUTATION(two_boots, replace(&spec->disk_path, DISK); replace(&spec->disk_format, "raw"))
MUTATION(disk_with_initrd, to_disk_boot(spec, "raw"); replace(&spec->initrd_path, INITRD))
MUTATION(disk_with_cmdline, to_disk_boot(spec, "raw"); replace(&spec->cmdline, CMDLINE))
MUTATION(bad_format, to_disk_boot(spec, "vmdk"))
MUTATION(no_format, to_disk_boot(spec, NULL))
MUTATION(kernel_with_format, replace(&spec->disk_format, "qcow2"))
MUTATION(named_without_model, spec->cpu_mode = HV_CPU_NAMED)
MUTATION(named_bad_model, spec->cpu_mode = HV_CPU_NAMED; replace(&spec->cpu_model, "EPYC foo"))
MUTATION(model_without_named, replace(&spec->cpu_model, "EPYC"))
MUTATION(bad_utf8_cmdline, replace(&spec->cmdline, "console=ttyS0 \xff"))
MUTATION(control_char_record, replace(&spec->record_json, "{\"a\":\"\x01\"}"))
MUTATION(bad_cpu_mode, spec->cpu_mode = (HvCpuMode)9)
MUTATION(bad_iommu, spec->iommu = (HvIommu)9)

static void test_validation(void)
{
    static const struct {
        SpecMutation mutate;
        const char *field;
    } cases[] = {
        {no_id, "id"},
        {empty_id, "id"},
        {bad_id, "id"},
        {no_name, "name"},
        {newline_name, "name"},
        {empty_tenant, "tenant"},
        {no_console, "console_log"},
        {relative_console, "console_log"},
        {zero_vcpus, "vcpus: must be between 1 and 64"},
        {many_vcpus, "vcpus: must be between 1 and 64"},
        {tiny_memory, "memory_mib: must be between 128 and 1048576"},
        {huge_memory, "memory_mib: must be between 128 and 1048576"},
        {no_boot, "kernel_path"},
        {two_boots, "disk_path"},
        {disk_with_initrd, "initrd_path"},
        {disk_with_cmdline, "cmdline"},
        {bad_format, "disk_format"},
        {no_format, "disk_format"},
        {kernel_with_format, "disk_format"},
        {named_without_model, "nesting.cpu"},
        {named_bad_model, "nesting.cpu: model must match"},
        {model_without_named, "nesting.cpu"},
        {bad_utf8_cmdline, "boot.cmdline: must be valid UTF-8"},
        {control_char_record, "record_json"},
        {bad_cpu_mode, "nesting.cpu"},
        {bad_iommu, "nesting.iommu"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
        cases[i].mutate(spec);
        assert_build_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, cases[i].field);
    }

    /* The boundaries themselves are fine. */
    g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
    spec->memory_mib = HV_SPEC_MEMORY_MIN_MIB;
    spec->vcpus = 1;
    g_clear_pointer(&spec->initrd_path, g_free);
    g_clear_pointer(&spec->cmdline, g_free);
    g_autoptr(xmlDoc) doc = build_doc(spec, HV_BACKEND_TCG, NULL);
    assert_xp_string(doc, "/domain/memory", "128");
    assert_xp_count(doc, "/domain/os/kernel", 1);
    assert_xp_count(doc, "/domain/os/initrd", 0);
    /* No command line of the tenant's: only what the vIOMMU needs. */
    assert_xp_string(doc, "/domain/os/cmdline", "intel_iommu=on");
}

/* ---- hv_stack_spec_validate -------------------------------------------------- */

/* Only what a tenant chooses: what the API has before the stack exists. */
static HvStackSpec *tenant_spec(void)
{
    HvStackSpec *spec = hv_stack_spec_new();

    spec->name = g_strdup("web");
    spec->vcpus = 2;
    spec->memory_mib = 1024;
    spec->cmdline = g_strdup(CMDLINE);
    return spec;
}

static void assert_validate_fails(const HvStackSpec *spec, HvBackend backend,
                                  const HvHostReport *host, int code, const char *prefix)
{
    g_autoptr(GError) error = NULL;

    g_assert_false(hv_stack_spec_validate(spec, backend, host, &error));
    g_assert_error(error, HV_ERROR, code);
    if (!g_str_has_prefix(error->message, prefix))
        g_error("error message '%s' does not start with '%s'", error->message, prefix);
}

static void test_validate_without_host_fields(void)
{
    g_autoptr(HvStackSpec) spec = tenant_spec();
    HvHostReport intel = kvm_host("GenuineIntel", "kvm_intel", 1);
    HvHostReport off = kvm_host("GenuineIntel", "kvm_intel", 0);
    g_autoptr(GError) error = NULL;

    /* No id, tenant, boot path or console log yet, and no image paths. */
    g_assert_true(hv_stack_spec_validate(spec, HV_BACKEND_TCG, NULL, &error));
    g_assert_true(hv_stack_spec_validate(spec, HV_BACKEND_TEST, NULL, &error));
    g_assert_true(hv_stack_spec_validate(spec, HV_BACKEND_KVM, &intel, &error));
    g_assert_no_error(error);

    /* The host's nesting is checked too, after the spec. */
    assert_validate_fails(spec, HV_BACKEND_KVM, &off, HV_ERROR_UNSUPPORTED,
                          "nested virtualization is off");
    assert_validate_fails(spec, HV_BACKEND_KVM, NULL, HV_ERROR_UNSUPPORTED, "the kvm backend");
    spec->vcpus = 65;
    assert_validate_fails(spec, HV_BACKEND_KVM, &off, HV_ERROR_INVALID,
                          "vcpus: must be between 1 and 64");
    assert_validate_fails(spec, (HvBackend)7, NULL, HV_ERROR_INVALID, "backend 7 is unknown");
}

/* Gap (a): characters XML cannot carry used to pass the API and fail at
 * "defining the domain". */
static void test_validate_cmdline(void)
{
    static const struct {
        const char *cmdline;
        const char *prefix;
    } bad[] = {
        {"quiet \xef\xbf\xbe", "boot.cmdline: must not contain U+FFFE (at byte 6)"},
        {"\xef\xbf\xbf", "boot.cmdline: must not contain U+FFFF (at byte 0)"},
        {"a\x01", "boot.cmdline: must not contain control characters (U+0001"},
        {"a\x1f", "boot.cmdline: must not contain control characters (U+001F"},
        {"a\tb", "boot.cmdline: must not contain control characters (U+0009"},
        {"a\nb", "boot.cmdline: must not contain control characters (U+000A"},
        {"a\rb", "boot.cmdline: must not contain control characters (U+000D"},
        {"a\x7f", "boot.cmdline: must not contain control characters (U+007F"},
        {"a\xc2\x85", "boot.cmdline: must not contain control characters (U+0085"},
        {"a\xc2\x9f", "boot.cmdline: must not contain control characters (U+009F"},
        {"a\xff", "boot.cmdline: must be valid UTF-8"},
        {"a\xed\xa0\x80", "boot.cmdline: must be valid UTF-8"}, /* a surrogate */
    };

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
        replace(&spec->cmdline, bad[i].cmdline);
        assert_validate_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, bad[i].prefix);
        assert_build_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, bad[i].prefix);
    }

    /* Length in bytes, not characters: 1024 two-byte characters fit. */
    GString *at_max = g_string_new(NULL);
    for (int i = 0; i < HV_SPEC_CMDLINE_MAX / 2; i++)
        g_string_append(at_max, "\xc3\xa9");
    g_autofree char *max = g_string_free(at_max, FALSE);
    g_autofree char *over = g_strconcat(max, "x", NULL);
    g_autoptr(HvStackSpec) long_spec = sample_spec(SAMPLE_ID);
    replace(&long_spec->cmdline, over);
    assert_build_fails(long_spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID,
                       "boot.cmdline: must be at most 2048 bytes");
    replace(&long_spec->cmdline, max);
    g_autoptr(xmlDoc) long_doc = build_doc(long_spec, HV_BACKEND_TCG, NULL);
    assert_xp_string(long_doc, "/domain/os/cmdline", max);

    /* Right next to the refused ones: the XML is well-formed, carries the
     * text unchanged, and libvirt defines it. */
    static const char *const good[] = {
        "console=ttyS0 \xef\xbf\xbd",      /* U+FFFD */
        "x=\xee\x80\x80",                  /* U+E000 */
        "x=\xf0\x9f\xbf\xbe",              /* U+1FFFE: XML 1.0 allows it */
        "x=\xf4\x8f\xbf\xbf",              /* U+10FFFF */
        "x=\xe2\x80\x8b\xc2\xa0 \xc3\xa9", /* format and space characters */
        "",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autoptr(HvStackSpec) spec = sample_spec("6f1c3c2e-9a43-4b7e-8d2a-000000000001");
        spec->iommu = HV_IOMMU_NONE; /* the tenant's line alone */
        replace(&spec->cmdline, good[i]);
        g_autoptr(GError) error = NULL;
        g_assert_true(hv_stack_spec_validate(spec, HV_BACKEND_TEST, NULL, &error));
        g_assert_no_error(error);
        g_autofree char *xml = hv_domain_build_xml(spec, HV_BACKEND_TEST, NULL, &error);
        g_assert_no_error(error);
        g_assert_null(strstr(xml, "&#x")); /* no character references at all */
        g_autoptr(xmlDoc) doc = parse_xml(xml);
        assert_xp_string(doc, "/domain/os/cmdline", good[i]);
        g_autofree char *desc = run_on_test_driver(xml, spec->id);
        g_autoptr(xmlDoc) kept = parse_xml(desc);
        assert_xp_string(kept, "/domain/os/cmdline", good[i]);
    }
}

/* Gap (b) and the other device rules. */
static void test_validate_devices(void)
{
    g_autoptr(HvStackSpec) spec = tenant_spec();
    g_autoptr(GError) error = NULL;

    spec->iommu = HV_IOMMU_VIRTIO;
    g_ptr_array_add(spec->devices, hv_device_new("d-0000-3b-20.0", HV_DEVICE_VFIO, "0000:3b:20.0"));
    assert_validate_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID,
                          "devices[0]: must be a PCI address like 0000:3b:00.0");
    g_ptr_array_set_size(spec->devices, 0);

    /* The largest of each field, as many as allowed. */
    for (guint i = 0; i < HV_SPEC_DEVICES_MAX; i++) {
        g_autofree char *address = g_strdup_printf("ffff:ff:%02x.%u", 0x1f - i / 8, i % 8);
        g_autofree char *id = g_strdup_printf("d%u", i);
        g_ptr_array_add(spec->devices, hv_device_new(id, HV_DEVICE_VFIO, address));
    }
    g_assert_true(hv_stack_spec_validate(spec, HV_BACKEND_TCG, NULL, &error));
    g_assert_no_error(error);

    g_ptr_array_add(spec->devices, hv_device_new("d-0000-00-00.0", HV_DEVICE_VFIO, "0000:00:00.0"));
    assert_validate_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID,
                          "devices: must have at most 16 entries");
}

static void test_validate_cpu(void)
{
    g_autoptr(HvStackSpec) spec = tenant_spec();
    HvHostReport amd = kvm_host("AuthenticAMD", "kvm_amd", 1);
    g_autoptr(GError) error = NULL;

    spec->cpu_mode = HV_CPU_NAMED;
    spec->cpu_model = g_strnfill(HV_SPEC_CPU_MODEL_MAX, 'M');
    g_assert_true(hv_stack_spec_validate(spec, HV_BACKEND_TCG, NULL, &error));
    g_assert_no_error(error);
    static const char *const bad_models[] = {"",        "-EPYC",     "_x",       ".x",
                                             "EPYC v4", "EPYC,+svm", "a\xc3\xa9"};
    for (gsize i = 0; i < G_N_ELEMENTS(bad_models); i++) {
        replace(&spec->cpu_model, bad_models[i]);
        assert_validate_fails(spec, HV_BACKEND_KVM, &amd, HV_ERROR_INVALID,
                              "nesting.cpu: model must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$");
    }
    g_free(spec->cpu_model);
    spec->cpu_model = g_strnfill(HV_SPEC_CPU_MODEL_MAX + 1, 'M');
    assert_validate_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID,
                          "nesting.cpu: model must match");

    /* Only kvm passes a host CPU through; the API hears it at once. */
    g_clear_pointer(&spec->cpu_model, g_free);
    spec->cpu_mode = HV_CPU_HOST_MODEL;
    g_assert_true(hv_stack_spec_validate(spec, HV_BACKEND_KVM, &amd, &error));
    g_assert_no_error(error);
    assert_validate_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID,
                          "nesting.cpu: host-model needs hardware virtualization");
    spec->cpu_mode = HV_CPU_HOST_PASSTHROUGH;
    assert_validate_fails(spec, HV_BACKEND_TEST, NULL, HV_ERROR_INVALID,
                          "nesting.cpu: host-passthrough needs hardware virtualization");
}

/* Whatever validate says about a full spec, the build says the same. */
MUTATION(cmdline_fffe, replace(&spec->cmdline, "a\xef\xbf\xbe"))
MUTATION(slot_20,
         g_ptr_array_add(spec->devices, hv_device_new("d", HV_DEVICE_VFIO, "0000:3b:20.0")))
MUTATION(upper_hex,
         g_ptr_array_add(spec->devices, hv_device_new("d", HV_DEVICE_VFIO, "0000:3B:00.0")))
MUTATION(seventeen_devices,
         for (guint i = 0; i <= HV_SPEC_DEVICES_MAX; i++)
             g_ptr_array_add(spec->devices, hv_device_new("d", HV_DEVICE_VFIO, "0000:3b:00.0")))
MUTATION(host_model, spec->cpu_mode = HV_CPU_HOST_MODEL)
MUTATION(long_model, spec->cpu_mode = HV_CPU_NAMED;
         spec->cpu_model = g_strnfill(HV_SPEC_CPU_MODEL_MAX + 1, 'M'))
MUTATION(no_change, (void)spec)

static void test_validate_agrees_with_build(void)
{
    static const SpecMutation mutations[] = {
        no_change,  cmdline_fffe, slot_20,         upper_hex,    seventeen_devices,
        host_model, long_model,   many_vcpus,      tiny_memory,  huge_memory,
        zero_vcpus, bad_iommu,    named_bad_model, bad_cpu_mode, model_without_named,
    };
    HvHostReport intel = kvm_host("GenuineIntel", "kvm_intel", 1);
    static const HvBackend backends[] = {HV_BACKEND_KVM, HV_BACKEND_TCG, HV_BACKEND_TEST};

    for (gsize b = 0; b < G_N_ELEMENTS(backends); b++) {
        const HvHostReport *host = backends[b] == HV_BACKEND_KVM ? &intel : NULL;
        for (gsize i = 0; i < G_N_ELEMENTS(mutations); i++) {
            g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
            mutations[i](spec);
            g_autoptr(GError) validate_error = NULL;
            g_autoptr(GError) build_error = NULL;
            gboolean valid = hv_stack_spec_validate(spec, backends[b], host, &validate_error);
            g_autofree char *xml = hv_domain_build_xml(spec, backends[b], host, &build_error);
            g_test_message("backend %d, mutation %zu: %s", (int)backends[b], i,
                           validate_error ? validate_error->message : "valid");
            g_assert_cmpint(valid, ==, xml != NULL);
            if (valid) {
                g_autoptr(xmlDoc) doc = parse_xml(xml);
                assert_xp_count(doc, "/domain", 1);
            } else {
                g_assert_cmpstr(build_error->message, ==, validate_error->message);
            }
        }
    }
    /* And gap (b) is refused by the build itself, not only by validate. */
    g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
    slot_20(spec);
    assert_build_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, "devices[0]");
}

static void test_injection(void)
{
    g_autoptr(HvStackSpec) benign = sample_spec("3c9e7a10-5b6d-4f8e-9a0b-c1d2e3f40516");
    g_autoptr(HvStackSpec) spec = sample_spec("3c9e7a10-5b6d-4f8e-9a0b-c1d2e3f40516");
    replace(&spec->name, "web" NASTY);
    replace(&spec->tenant, NASTY "acme");
    replace(&spec->cmdline, "console=ttyS0 " NASTY);
    replace(&spec->record_json, "{\"note\":\"" NASTY "\"}");
    /* The sample's Intel vIOMMU adds its switch to the tenant's line. */
    const char *expected_cmdline = "console=ttyS0 " NASTY " intel_iommu=on";

    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_domain_build_xml(spec, HV_BACKEND_TEST, NULL, &error);
    g_assert_no_error(error);
    g_autoptr(xmlDoc) doc = parse_xml(xml);
    g_autoptr(xmlDoc) reference = build_doc(benign, HV_BACKEND_TEST, NULL);

    /* The same tree as a benign spec: nothing was added or closed early. */
    assert_xp_count(doc, "/*", 1);
    assert_xp_count(doc, "/domain", 1);
    assert_xp_count(doc, "//comment() | //processing-instruction()", 0);
    int n_reference = xp_count(reference, "//*");
    assert_xp_count(doc, "//*", n_reference);
    assert_xp_count(doc, "//t:*", 5);
    assert_xp_count(doc, "//t:stack", 1);
    assert_xp_count(doc, "//t:id", 1);
    assert_xp_count(doc, "//t:name", 1);
    assert_xp_count(doc, "//t:tenant", 1);
    assert_xp_count(doc, "//t:record", 1);
    assert_xp_count(doc, "/domain/title", 1);
    assert_xp_count(doc, "/domain/os/cmdline", 1);
    assert_xp_count(doc, "//@*", xp_count(reference, "//@*"));

    g_autofree char *title = g_strdup_printf("%s/%s", spec->tenant, spec->name);
    assert_xp_string(doc, "/domain/title", title);
    assert_xp_string(doc, "/domain/os/cmdline", expected_cmdline);
    assert_xp_string(doc, "/domain/metadata/t:stack/t:id", spec->id);
    assert_xp_string(doc, "/domain/metadata/t:stack/t:name", spec->name);
    assert_xp_string(doc, "/domain/metadata/t:stack/t:tenant", spec->tenant);
    assert_xp_string(doc, "/domain/metadata/t:stack/t:record", spec->record_json);

    g_autoptr(HvStackIdentity) direct = hv_domain_parse_identity(xml, &error);
    g_assert_no_error(error);
    assert_identity(direct, spec);

    g_autofree char *desc = run_on_test_driver(xml, spec->id);
    g_autoptr(HvStackIdentity) identity = hv_domain_parse_identity(desc, &error);
    g_assert_no_error(error);
    assert_identity(identity, spec);
    g_autoptr(xmlDoc) kept = parse_xml(desc);
    assert_xp_string(kept, "/domain/title", title);
    assert_xp_string(kept, "/domain/os/cmdline", expected_cmdline);

    /* A migration replaces the record, and only the record. */
    g_autofree char *moved = hv_domain_set_record(desc, "{\"new\":\"<&>\"}", &error);
    g_assert_no_error(error);
    g_autoptr(HvStackIdentity) again = hv_domain_parse_identity(moved, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(again->id, ==, spec->id);
    g_assert_cmpstr(again->record_json, ==, "{\"new\":\"<&>\"}");
    g_autofree char *not_ours =
        hv_domain_set_record("<domain type='qemu'><name>x</name></domain>", "{}", &error);
    g_assert_null(not_ours);
    g_assert_error(error, HV_ERROR, HV_ERROR_NOT_FOUND);
    g_clear_error(&error);
}

#define PLAIN_DOMAIN                                                                               \
    "<domain type='test'><name>plain</name><memory>65536</memory>"                                 \
    "<os><type>hvm</type></os>%s</domain>"

static void assert_parse_fails(const char *xml, int code)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(HvStackIdentity) identity = hv_domain_parse_identity(xml, &error);

    g_assert_null(identity);
    g_assert_error(error, HV_ERROR, code);
}

static void test_parse_identity(void)
{
    g_autoptr(GError) error = NULL;

    /* Not ours: no metadata, someone else's metadata, our names in no namespace. */
    g_autofree char *bare = g_strdup_printf(PLAIN_DOMAIN, "");
    assert_parse_fails(bare, HV_ERROR_NOT_FOUND);
    g_autofree char *foreign = g_strdup_printf(
        PLAIN_DOMAIN, "<metadata><o:stack xmlns:o='urn:other'><o:id>x</o:id></o:stack></metadata>");
    assert_parse_fails(foreign, HV_ERROR_NOT_FOUND);
    g_autofree char *no_ns =
        g_strdup_printf(PLAIN_DOMAIN, "<metadata><stack><id>x</id></stack></metadata>");
    assert_parse_fails(no_ns, HV_ERROR_NOT_FOUND);

    /* Unparseable or not a domain. */
    assert_parse_fails("", HV_ERROR_INVALID);
    assert_parse_fails("this is not XML <", HV_ERROR_INVALID);
    assert_parse_fails("<domain><name>x</name>", HV_ERROR_INVALID);
    assert_parse_fails("<network><name>x</name></network>", HV_ERROR_INVALID);

    /* The namespace counts, not the prefix; the record is optional. */
    g_autofree char *other_prefix =
        g_strdup_printf(PLAIN_DOMAIN, "<metadata><x:stack xmlns:x='" HV_DOMAIN_METADATA_URI "'>"
                                      "<x:id>i</x:id><x:name>n</x:name><x:tenant>t</x:tenant>"
                                      "</x:stack></metadata>");
    g_autoptr(HvStackIdentity) identity = hv_domain_parse_identity(other_prefix, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(identity->id, ==, "i");
    g_assert_cmpstr(identity->name, ==, "n");
    g_assert_cmpstr(identity->tenant, ==, "t");
    g_assert_null(identity->record_json);

    /* Ours but broken: a missing or repeated field, two stacks. */
    g_autofree char *missing =
        g_strdup_printf(PLAIN_DOMAIN, "<metadata><t:stack xmlns:t='" HV_DOMAIN_METADATA_URI "'>"
                                      "<t:id>i</t:id><t:tenant>t</t:tenant></t:stack></metadata>");
    assert_parse_fails(missing, HV_ERROR_INVALID);
    g_autofree char *repeated = g_strdup_printf(
        PLAIN_DOMAIN, "<metadata><t:stack xmlns:t='" HV_DOMAIN_METADATA_URI "'>"
                      "<t:id>i</t:id><t:id>j</t:id><t:name>n</t:name><t:tenant>t</t:tenant>"
                      "</t:stack></metadata>");
    assert_parse_fails(repeated, HV_ERROR_INVALID);
    g_autofree char *two = g_strdup_printf(
        PLAIN_DOMAIN, "<metadata><t:stack xmlns:t='" HV_DOMAIN_METADATA_URI "'>"
                      "<t:id>i</t:id><t:name>n</t:name><t:tenant>t</t:tenant></t:stack>"
                      "<u:stack xmlns:u='" HV_DOMAIN_METADATA_URI "'>"
                      "<u:id>i</u:id><u:name>n</u:name><u:tenant>t</u:tenant></u:stack>"
                      "</metadata>");
    assert_parse_fails(two, HV_ERROR_INVALID);

    /* Entities never reach us: an external one (XXE) and a billion laughs. */
    assert_parse_fails("<!DOCTYPE domain [<!ENTITY x SYSTEM 'file:///etc/hostname'>]>"
                       "<domain><metadata><t:stack xmlns:t='" HV_DOMAIN_METADATA_URI "'>"
                       "<t:id>&x;</t:id><t:name>n</t:name><t:tenant>t</t:tenant>"
                       "</t:stack></metadata></domain>",
                       HV_ERROR_INVALID);
    assert_parse_fails("<!DOCTYPE domain [<!ENTITY a 'aaaaaaaaaa'>"
                       "<!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>"
                       "<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>"
                       "<!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;'>"
                       "<!ENTITY e '&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;'>"
                       "<!ENTITY f '&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;'>"
                       "<!ENTITY g '&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;'>]>"
                       "<domain><metadata><t:stack xmlns:t='" HV_DOMAIN_METADATA_URI "'>"
                       "<t:id>&g;</t:id><t:name>n</t:name><t:tenant>t</t:tenant>"
                       "</t:stack></metadata></domain>",
                       HV_ERROR_INVALID);
}

/* libvirt's own RelaxNG schema, through virt-xml-validate. */
static gboolean schema_accepts(const char *dir, const char *xml)
{
    g_autofree char *path = g_build_filename(dir, "domain.xml", NULL);
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL, *err = NULL;
    int status = -1;

    g_assert_true(g_file_set_contents(path, xml, -1, &error));
    const char *argv[] = {XML_SCHEMA, path, "domain", NULL};
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                               &err, &status, &error));
    g_assert_no_error(error);
    g_test_message("%s: %s%s", XML_SCHEMA, out, err);
    return g_spawn_check_wait_status(status, NULL);
}

/* UEFI by libvirt's firmware auto-selection, the stack's own variables
 * file, SMM for secure boot, and the seed as a read-only second disk. */
static void test_uefi_and_seed(void)
{
    g_autoptr(HvStackSpec) spec = sample_spec("7d4f2b1a-2222-4e2e-8a8a-0123456789ab");
    to_disk_boot(spec, "qcow2");
    spec->firmware = HV_FIRMWARE_UEFI;
    spec->nvram_path = g_strdup("/var/lib/turtles/pools/disks/x.nvram");
    spec->seed_path = g_strdup("/var/lib/turtles/pools/disks/x.seed.iso");
    g_autoptr(xmlDoc) doc = build_doc(spec, HV_BACKEND_TCG, NULL);
    assert_xp_count(doc, "/domain/os[@firmware='efi']", 1);
    assert_xp_count(doc, "/domain/os/firmware/feature[@name='secure-boot' and @enabled='no']", 1);
    assert_xp_count(doc, "/domain/os/firmware/feature[@name='enrolled-keys' and @enabled='no']", 1);
    assert_xp_count(doc, "/domain/os/loader", 0); /* libvirt picks it */
    assert_xp_string(doc, "/domain/os/nvram", spec->nvram_path);
    assert_xp_count(doc, "/domain/features/smm", 0);
    assert_xp_count(doc, "/domain/devices/disk", 2);
    assert_xp_string(doc, "/domain/devices/disk[target/@dev='vdb']/source/@file", spec->seed_path);
    assert_xp_count(doc, "/domain/devices/disk[target/@dev='vdb']/readonly", 1);
    assert_xp_count(doc, "/domain/devices/disk[target/@dev='vdb']/driver[@type='raw']", 1);

    spec->secure_boot = TRUE;
    g_autoptr(xmlDoc) secure = build_doc(spec, HV_BACKEND_TCG, NULL);
    assert_xp_count(secure, "/domain/os/firmware/feature[@enabled='yes']", 2);
    assert_xp_count(secure, "/domain/features/smm[@state='on']", 1);

    /* BIOS: none of it. */
    g_autoptr(HvStackSpec) bios = sample_spec(SAMPLE_ID);
    g_autoptr(xmlDoc) plain = build_doc(bios, HV_BACKEND_TCG, NULL);
    assert_xp_count(plain, "/domain/os/@firmware | /domain/os/nvram | /domain/os/firmware", 0);

    /* Secure boot without UEFI, UEFI without its variables file, a
     * variables file for BIOS: refused. */
    bios->secure_boot = TRUE;
    assert_build_fails(bios, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, "boot.secure_boot: ");
    bios->secure_boot = FALSE;
    bios->nvram_path = g_strdup("/x.nvram");
    assert_build_fails(bios, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, "nvram_path: ");
    g_clear_pointer(&spec->nvram_path, g_free);
    assert_build_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, "nvram_path: ");
    spec->nvram_path = g_strdup("relative.nvram");
    assert_build_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, "nvram_path: ");
    spec->firmware = (HvFirmware)7;
    assert_build_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, "boot.firmware: ");
}

static void test_schema(void)
{
    g_autofree char *tool = g_find_program_in_path(XML_SCHEMA);
    if (!tool) {
        g_test_skip(XML_SCHEMA " (libvirt-clients) is not installed");
        return;
    }
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("test-domain-XXXXXX", &error);
    g_assert_no_error(error);

    /* The schema check itself must be able to fail. */
    g_assert_false(schema_accepts(dir, "<domain type='bogus'><name>x</name></domain>"));

    g_autoptr(HvStackSpec) tcg = sample_spec(SAMPLE_ID);
    g_autofree char *tcg_xml = hv_domain_build_xml(tcg, HV_BACKEND_TCG, NULL, &error);
    g_assert_no_error(error);
    g_assert_true(schema_accepts(dir, tcg_xml));

    g_autoptr(HvStackSpec) kvm = sample_spec(SAMPLE_ID);
    HvHostReport amd = kvm_host("AuthenticAMD", "kvm_amd", 1);
    to_disk_boot(kvm, "qcow2");
    kvm->cpu_mode = HV_CPU_NAMED;
    kvm->cpu_model = g_strdup("EPYC-Rome");
    g_ptr_array_add(kvm->devices, hv_device_new("d0", HV_DEVICE_VFIO, "0000:3b:00.0"));
    g_autofree char *kvm_xml = hv_domain_build_xml(kvm, HV_BACKEND_KVM, &amd, &error);
    g_assert_no_error(error);
    g_assert_true(schema_accepts(dir, kvm_xml));

    kvm->iommu = HV_IOMMU_VIRTIO;
    kvm->cpu_mode = HV_CPU_HOST_MODEL;
    g_clear_pointer(&kvm->cpu_model, g_free);
    g_autofree char *virtio_xml = hv_domain_build_xml(kvm, HV_BACKEND_KVM, &amd, &error);
    g_assert_no_error(error);
    g_assert_true(schema_accepts(dir, virtio_xml));

    /* Every device model, the QEMU passthrough of edu included. */
    g_autoptr(HvStackSpec) devs = sample_spec(SAMPLE_ID);
    add_every_model(devs);
    add_three_nics(devs);
    g_autofree char *devs_xml = hv_domain_build_xml(devs, HV_BACKEND_TCG, NULL, &error);
    g_assert_no_error(error);
    g_assert_true(schema_accepts(dir, devs_xml));

    g_autoptr(HvStackSpec) uefi = sample_spec(SAMPLE_ID);
    uefi->firmware = HV_FIRMWARE_UEFI;
    uefi->secure_boot = TRUE;
    uefi->nvram_path = g_strdup("/var/lib/turtles/pools/disks/x.nvram");
    uefi->seed_path = g_strdup("/var/lib/turtles/pools/disks/x.seed.iso");
    g_autofree char *uefi_xml = hv_domain_build_xml(uefi, HV_BACKEND_TCG, NULL, &error);
    g_assert_no_error(error);
    g_assert_true(schema_accepts(dir, uefi_xml));

    g_autofree char *file = g_build_filename(dir, "domain.xml", NULL);
    g_assert_cmpint(g_remove(file), ==, 0);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* The boot files come back from the XML we build, and from a live XML whose
 * disk has a backing chain (as libvirt reports an overlay). */
static void test_parse_boot_files(void)
{
    g_autoptr(HvStackSpec) spec = sample_spec("6a3c3b49-4c1e-4d6f-9d7e-0b5f1f9e2a10");
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_domain_build_xml(spec, HV_BACKEND_TCG, NULL, &error);
    g_assert_no_error(error);
    g_autoptr(HvBootFiles) files = hv_domain_parse_boot_files(xml, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(files->kernel, ==, KERNEL);
    g_assert_cmpstr(files->initrd, ==, INITRD);
    g_assert_null(files->disk);

    static const char live[] =
        "<domain type='qemu'><name>x</name><os><type>hvm</type></os><devices>"
        "<disk type='file' device='cdrom'><source file='/iso'/></disk>"
        "<disk type='file' device='disk'><source file='/pools/disks/o.qcow2'/>"
        "<backingStore type='file'><format type='raw'/><source file='/pools/images/img'/>"
        "</backingStore></disk></devices></domain>";
    g_autoptr(HvBootFiles) disk = hv_domain_parse_boot_files(live, &error);
    g_assert_no_error(error);
    g_assert_null(disk->kernel);
    g_assert_cmpstr(disk->disk, ==, "/pools/disks/o.qcow2");
    g_assert_cmpstr(disk->disk_backing, ==, "/pools/images/img");
    g_assert_cmpstr(disk->disk_backing_format, ==, "raw");

    g_assert_null(hv_domain_parse_boot_files("<notadomain/>", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
}

/* ---- pool devices ------------------------------------------------------------ */

/* One of each model: vfio "gpu0", virtio-rng "rng0", edu "edu0" and "edu1". */
static void add_every_model(HvStackSpec *spec)
{
    g_ptr_array_add(spec->devices, hv_device_new("gpu0", HV_DEVICE_VFIO, "0000:3b:00.0"));
    g_ptr_array_add(spec->devices, hv_device_new("rng0", HV_DEVICE_VIRTIO_RNG, NULL));
    g_ptr_array_add(spec->devices, hv_device_new("edu0", HV_DEVICE_EDU, NULL));
    g_ptr_array_add(spec->devices, hv_device_new("edu1", HV_DEVICE_EDU, NULL));
}

static void assert_rng(xmlDoc *doc, const char *base, const char *id)
{
    g_autofree char *alias = g_strconcat(HV_DEVICE_ALIAS_PREFIX, id, NULL);
    g_autofree char *rng = g_strdup_printf("%s[alias/@name='%s']", base, alias);
    g_autofree char *backend = g_strconcat(rng, "/backend[@model='random']", NULL);
    g_autofree char *driver = g_strconcat(rng, "/driver[@iommu='on' and @ats='on']", NULL);

    assert_xp_count(doc, rng, 1);
    g_autofree char *model = g_strconcat(rng, "/@model", NULL);
    assert_xp_string(doc, model, "virtio");
    assert_xp_string(doc, backend, "/dev/urandom");
    assert_xp_count(doc, driver, 1);
}

static void test_device_models(void)
{
    g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
    add_every_model(spec);
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_domain_build_xml(spec, HV_BACKEND_TCG, NULL, &error);
    g_assert_no_error(error);
    /* The qemu prefix is declared on the root, by the XML API. */
    g_assert_nonnull(strstr(xml, "xmlns:qemu=\"" HV_DOMAIN_QEMU_NS_URI "\""));
    g_autoptr(xmlDoc) doc = parse_xml(xml);

    /* vfio: a managed hostdev with our alias, and no <driver iommu>
     * (libvirt refuses that on a hostdev). */
    assert_xp_count(doc, "/domain/devices/hostdev", 1);
    assert_xp_count(doc, "/domain/devices/hostdev/alias[@name='ua-turtles-gpu0']", 1);
    assert_xp_count(doc, "/domain/devices/hostdev/driver", 0);
    assert_xp_string(doc, "/domain/memtune/hard_limit[@unit='MiB']", "2048");

    /* virtio-rng behind the vIOMMU. */
    assert_xp_count(doc, "/domain/devices/rng", 1);
    assert_rng(doc, "/domain/devices/rng", "rng0");

    /* edu: QEMU passthrough, fixed slots from HV_EDU_FIRST_SLOT, our id. */
    assert_xp_count(doc, "/domain/q:commandline", 1);
    assert_xp_count(doc, "/domain/q:commandline/q:arg", 4);
    assert_xp_count(doc, "/domain/commandline | /domain/q:commandline/arg", 0);
    assert_xp_string(doc, "/domain/q:commandline/q:arg[1]/@value", "-device");
    assert_xp_string(doc, "/domain/q:commandline/q:arg[2]/@value",
                     "edu,bus=pcie.0,addr=0x10,id=ua-turtles-edu0");
    assert_xp_string(doc, "/domain/q:commandline/q:arg[3]/@value", "-device");
    assert_xp_string(doc, "/domain/q:commandline/q:arg[4]/@value",
                     "edu,bus=pcie.0,addr=0x11,id=ua-turtles-edu1");
    G_STATIC_ASSERT(HV_EDU_FIRST_SLOT == 0x10);

    /* Spare hot-plug ports and the split irqchip intremap needs. */
    assert_xp_count(doc, "/domain/devices/controller", HV_SPARE_ROOT_PORTS + 2);
    /* libvirt's default USB controller would take a spare port. */
    assert_xp_count(doc, "/domain/devices/controller[@type='usb' and @model='none']", 1);
    assert_xp_count(doc, "/domain/devices/controller[@type='pci' and @model='pcie-root-port']",
                    HV_SPARE_ROOT_PORTS);
    /* pcie.0 comes first, or libvirt would number a root port 0. */
    assert_xp_count(doc,
                    "/domain/devices/controller[@type='pci'][1][@index='0' and "
                    "@model='pcie-root']",
                    1);
    assert_xp_count(doc,
                    "/domain/devices/controller[@model='pcie-root-port']/@index | "
                    "/domain/devices/controller/address",
                    0);
    assert_xp_count(doc, "/domain/features/ioapic[@driver='qemu']", 1);

    /* kvm writes the same devices. */
    HvHostReport intel = kvm_host("GenuineIntel", "kvm_intel", 1);
    g_autoptr(xmlDoc) kvm = build_doc(spec, HV_BACKEND_KVM, &intel);
    assert_xp_count(kvm, "/domain/q:commandline/q:arg", 4);
    assert_xp_count(kvm, "/domain/devices/rng/driver[@iommu='on']", 1);

    /* Without VFIO there is nothing to pin: no memtune. */
    g_ptr_array_remove_index(spec->devices, 0);
    g_autoptr(xmlDoc) no_vfio = build_doc(spec, HV_BACKEND_TCG, NULL);
    assert_xp_count(no_vfio, "/domain/memtune", 0);
    assert_xp_count(no_vfio, "/domain/devices/hostdev", 0);

    /* Without edu, no passthrough and no qemu namespace at all. */
    g_ptr_array_set_size(spec->devices, 1);
    g_autofree char *rng_only = hv_domain_build_xml(spec, HV_BACKEND_TCG, NULL, &error);
    g_assert_no_error(error);
    g_assert_null(strstr(rng_only, HV_DOMAIN_QEMU_NS_URI));

    /* virtio vIOMMU: root ports too, no ioapic. */
    spec->iommu = HV_IOMMU_VIRTIO;
    g_autoptr(xmlDoc) virtio = build_doc(spec, HV_BACKEND_TCG, NULL);
    assert_xp_count(virtio, "/domain/devices/controller[@model='pcie-root-port']",
                    HV_SPARE_ROOT_PORTS);
    assert_xp_count(virtio, "/domain/features/ioapic", 0);
    assert_rng(virtio, "/domain/devices/rng", "rng0");

    /* No vIOMMU and no devices: no spare ports. */
    spec->iommu = HV_IOMMU_NONE;
    g_ptr_array_set_size(spec->devices, 0);
    g_autoptr(xmlDoc) none = build_doc(spec, HV_BACKEND_TCG, NULL);
    assert_xp_count(none, "/domain/devices/controller", 0);
}

/* test:///default drops QEMU passthrough: the test backend leaves edu out
 * and still defines; rng and hostdev come back with their aliases. */
static void test_devices_on_test_driver(void)
{
    g_autoptr(HvStackSpec) spec = sample_spec("0c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5");
    add_every_model(spec);
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_domain_build_xml(spec, HV_BACKEND_TEST, NULL, &error);
    g_assert_no_error(error);
    g_assert_null(strstr(xml, HV_DOMAIN_QEMU_NS_URI));

    g_autofree char *desc = run_on_test_driver(xml, spec->id);
    g_autoptr(xmlDoc) kept = parse_xml(desc);
    assert_xp_count(kept, "/domain/devices/hostdev[@managed='yes']/alias[@name='ua-turtles-gpu0']",
                    1);
    assert_xp_count(kept, "/domain/devices/hostdev/source/address[@bus='0x3b']", 1);
    assert_rng(kept, "/domain/devices/rng", "rng0");
    assert_xp_count(kept, "/domain/devices/controller[@model='pcie-root-port']",
                    HV_SPARE_ROOT_PORTS);
    assert_xp_count(kept, "/domain/features/ioapic[@driver='qemu']", 1);

    g_autoptr(GPtrArray) ids = hv_domain_parse_device_ids(desc, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(ids->len, ==, 2);
    g_assert_true(g_ptr_array_find_with_equal_func(ids, "gpu0", g_str_equal, NULL));
    g_assert_true(g_ptr_array_find_with_equal_func(ids, "rng0", g_str_equal, NULL));
}

MUTATION(
    edu_over_max, for (guint i = 0; i <= HV_EDU_MAX; i++) {
        g_autofree char *id = g_strdup_printf("e%u", i);
        g_ptr_array_add(spec->devices, hv_device_new(id, HV_DEVICE_EDU, NULL));
    })
MUTATION(devices_without_iommu, spec->iommu = HV_IOMMU_NONE;
         g_ptr_array_add(spec->devices, hv_device_new("rng0", HV_DEVICE_VIRTIO_RNG, NULL)))
MUTATION(duplicate_ids,
         g_ptr_array_add(spec->devices, hv_device_new("x", HV_DEVICE_VIRTIO_RNG, NULL));
         g_ptr_array_add(spec->devices, hv_device_new("x", HV_DEVICE_EDU, NULL)))
MUTATION(rng_with_address,
         g_ptr_array_add(spec->devices, hv_device_new("r", HV_DEVICE_VIRTIO_RNG, "0000:3b:00.0")))
MUTATION(unknown_model, g_ptr_array_add(spec->devices, hv_device_new("r", (HvDeviceModel)7, NULL)))

static void test_validate_device_rules(void)
{
    static const struct {
        SpecMutation mutate;
        const char *prefix;
    } cases[] = {
        {edu_over_max, "devices[4]: at most 4 edu devices per stack"},
        {devices_without_iommu, "nesting.iommu: none cannot carry devices"},
        {duplicate_ids, "devices[1]: id 'x' duplicates devices[0]"},
        {rng_with_address, "devices[0]: a PCI address is only for vfio devices"},
        {unknown_model, "devices[0]: model 7 is unknown"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
        cases[i].mutate(spec);
        assert_validate_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, cases[i].prefix);
        assert_build_fails(spec, HV_BACKEND_TEST, NULL, HV_ERROR_INVALID, cases[i].prefix);
    }

    static const char *const bad_ids[] = {
        "",    "-a",  ".a",
        "A",   "a_b", "a:b",
        "a,b", "a=b", "a b",
        "é",   "a\n", "x123456789012345678901234567890123456789012345678901234567890123", /* 64 */
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad_ids); i++) {
        g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
        g_ptr_array_add(spec->devices, hv_device_new("ok", HV_DEVICE_EDU, NULL));
        g_ptr_array_add(spec->devices, hv_device_new(bad_ids[i], HV_DEVICE_VIRTIO_RNG, NULL));
        assert_validate_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID,
                              "devices[1]: id must match ^[a-z0-9][a-z0-9.-]{0,62}$");
    }
    g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
    g_ptr_array_add(spec->devices, hv_device_new(NULL, HV_DEVICE_EDU, NULL));
    assert_validate_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, "devices[0]: id must");

    /* The edges that pass: the longest id, HV_EDU_MAX edu devices. */
    g_autoptr(HvStackSpec) edge = sample_spec(SAMPLE_ID);
    g_ptr_array_add(edge->devices,
                    hv_device_new("0123456789012345678901234567890123456789012345678901234567.-z",
                                  HV_DEVICE_VIRTIO_RNG, NULL));
    for (guint i = 0; i < HV_EDU_MAX; i++) {
        g_autofree char *id = g_strdup_printf("e%u", i);
        g_ptr_array_add(edge->devices, hv_device_new(id, HV_DEVICE_EDU, NULL));
    }
    g_autoptr(xmlDoc) doc = build_doc(edge, HV_BACKEND_TCG, NULL);
    assert_xp_string(doc, "/domain/q:commandline/q:arg[8]/@value",
                     "edu,bus=pcie.0,addr=0x13,id=ua-turtles-e3");
}

static xmlDoc *device_doc(const HvDevice *device)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_domain_device_xml(device, &error);

    g_assert_no_error(error);
    g_assert_nonnull(xml);
    xmlDoc *doc = xmlReadMemory(xml, (int)strlen(xml), "device.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    g_assert_nonnull(doc);
    return doc;
}

static void test_device_xml(void)
{
    g_autoptr(HvDevice) rng = hv_device_new("rng-1.a", HV_DEVICE_VIRTIO_RNG, NULL);
    g_autoptr(xmlDoc) rng_doc = device_doc(rng);
    assert_xp_count(rng_doc, "/*", 1);
    assert_rng(rng_doc, "/rng", "rng-1.a");

    g_autoptr(HvDevice) vfio = hv_device_new("gpu0", HV_DEVICE_VFIO, "0000:af:1f.7");
    g_autoptr(xmlDoc) vfio_doc = device_doc(vfio);
    assert_xp_count(vfio_doc, "/*", 1);
    assert_xp_count(vfio_doc, "/hostdev[@mode='subsystem' and @type='pci' and @managed='yes']", 1);
    assert_xp_count(vfio_doc,
                    "/hostdev/source/address[@domain='0x0000' and @bus='0xaf' and @slot='0x1f' "
                    "and @function='0x7']",
                    1);
    assert_xp_string(vfio_doc, "/hostdev/alias/@name", "ua-turtles-gpu0");
    assert_xp_count(vfio_doc, "/hostdev/driver", 0);

    g_autoptr(GError) error = NULL;
    g_autoptr(HvDevice) edu = hv_device_new("edu0", HV_DEVICE_EDU, NULL);
    g_assert_null(hv_domain_device_xml(edu, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED);
    g_assert_nonnull(strstr(error->message, "libvirt cannot hot-plug"));
    g_assert_nonnull(strstr(error->message, "QEMU command-line"));
    g_clear_error(&error);

    g_autoptr(HvDevice) bad_id = hv_device_new("Bad", HV_DEVICE_VIRTIO_RNG, NULL);
    g_assert_null(hv_domain_device_xml(bad_id, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_clear_error(&error);
    g_autoptr(HvDevice) bad_address = hv_device_new("gpu0", HV_DEVICE_VFIO, "0000:3b:20.0");
    g_assert_null(hv_domain_device_xml(bad_address, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_clear_error(&error);

    /* What hot-plug adds is what the full domain holds. */
    g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
    g_ptr_array_add(spec->devices, hv_device_new("rng-1.a", HV_DEVICE_VIRTIO_RNG, NULL));
    g_autoptr(xmlDoc) full = build_doc(spec, HV_BACKEND_TCG, NULL);
    assert_rng(full, "/domain/devices/rng", "rng-1.a");
}

static void assert_ids(GPtrArray *ids, const char *const *expected)
{
    g_assert_nonnull(ids);
    g_assert_cmpuint(ids->len, ==, g_strv_length((char **)expected));
    for (guint i = 0; i < ids->len; i++)
        g_assert_cmpstr(g_ptr_array_index(ids, i), ==, expected[i]);
}

static void test_parse_device_ids(void)
{
    g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
    add_every_model(spec);
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_domain_build_xml(spec, HV_BACKEND_TCG, NULL, &error);
    g_assert_no_error(error);
    g_autoptr(GPtrArray) ids = hv_domain_parse_device_ids(xml, &error);
    g_assert_no_error(error);
    static const char *const all[] = {"gpu0", "rng0", "edu0", "edu1", NULL};
    assert_ids(ids, all);

    g_autoptr(HvStackSpec) bare = sample_spec(SAMPLE_ID);
    g_autofree char *bare_xml = hv_domain_build_xml(bare, HV_BACKEND_TCG, NULL, &error);
    g_autoptr(GPtrArray) none = hv_domain_parse_device_ids(bare_xml, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(none->len, ==, 0);

    /* As libvirt writes a live domain: its own aliases, other user aliases,
     * other QEMU arguments and a repeated alias are not ours or not twice. */
    static const char live[] =
        "<domain type='qemu' xmlns:qemu='" HV_DOMAIN_QEMU_NS_URI "'><name>x</name><devices>"
        "<controller type='pci' index='1' model='pcie-root-port'><alias name='pci.1'/>"
        "</controller>"
        "<hostdev mode='subsystem' type='pci'><alias name='ua-turtles-a'/></hostdev>"
        "<rng model='virtio'><alias name='ua-other-b'/></rng>"
        "<rng model='virtio'><alias name='ua-turtles-c'/></rng>"
        "<interface type='user'><alias name='ua-turtles-d'/></interface>"
        "<rng model='virtio'><alias name='ua-turtles-'/></rng>"
        "<rng model='virtio'><alias name='ua-turtles-a'/></rng>"
        "</devices><qemu:commandline><qemu:arg value='-device'/>"
        "<qemu:arg value='edu,bus=pcie.0,addr=0x10,id=ua-turtles-e'/>"
        "<qemu:arg value='-device'/><qemu:arg value='edu,id=ua-turtles-f,addr=0x11'/>"
        "<qemu:arg value='id=ua-turtles-g'/><qemu:arg value='edu,id=other'/>"
        "</qemu:commandline></domain>";
    g_autoptr(GPtrArray) live_ids = hv_domain_parse_device_ids(live, &error);
    g_assert_no_error(error);
    static const char *const expected[] = {"a", "c", "d", "e", "f", NULL};
    assert_ids(live_ids, expected);

    /* Which of them libvirt can detach by alias. */
    g_assert_true(hv_domain_device_is_passthrough(live, "e"));
    g_assert_true(hv_domain_device_is_passthrough(live, "f"));
    g_assert_false(hv_domain_device_is_passthrough(live, "a"));
    g_assert_false(hv_domain_device_is_passthrough(live, "other"));
    g_assert_false(hv_domain_device_is_passthrough(live, "zzz"));
    g_assert_false(hv_domain_device_is_passthrough("<domain", "e"));
    g_assert_true(hv_domain_device_is_passthrough(xml, "edu1"));
    g_assert_false(hv_domain_device_is_passthrough(xml, "rng0"));

    g_assert_null(hv_domain_parse_device_ids("<domain", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_null(hv_domain_parse_device_ids("<device/>", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
}

/* ---- NICs ------------------------------------------------------------------ */

#define NET_NAT "3b0f9c1e-5d2a-4c8e-9f10-a1b2c3d4e5f6"
#define NET_EXT "7c2d8e4f-1a3b-4c5d-8e9f-0a1b2c3d4e5f"

static HvNic *sample_nic(const char *network_id, const char *mac, gboolean filter,
                         const char *own_cidr)
{
    HvNic *nic = hv_nic_new();

    nic->network_id = g_strdup(network_id);
    nic->mac = g_strdup(mac);
    nic->filter = filter;
    if (own_cidr) {
        nic->own_cidr = g_strdup(own_cidr);
        nic->gateway = hv_network_gateway(own_cidr);
    }
    return nic;
}

/* nics[0] on a nat network (guarded), nics[1] on an external one
 * (clean-traffic alone), nics[2] unfiltered (the test backend's case). */
static void add_three_nics(HvStackSpec *spec)
{
    HvNic *nat = sample_nic(NET_NAT, "52:54:00:00:00:01", TRUE, "10.200.3.0/24");

    nat->guard_cidr = g_strdup("10.200.0.0/16");
    g_ptr_array_add(spec->nics, nat);
    g_ptr_array_add(spec->nics, sample_nic(NET_EXT, "52:54:00:00:00:02", TRUE, NULL));
    g_ptr_array_add(spec->nics, sample_nic(NET_NAT, "52:54:00:00:00:03", FALSE, "10.200.3.0/24"));
}

#define NIC(n)         "/domain/devices/interface[" #n "]"
#define PARAM(n, name) NIC(n) "/filterref/parameter[@name='" name "']/@value"

static void test_nics_xml(void)
{
    g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
    add_three_nics(spec);
    g_autoptr(xmlDoc) doc = build_doc(spec, HV_BACKEND_TCG, NULL);

    assert_xp_count(doc, "/domain/devices/interface", 3);
    assert_xp_count(doc, "/domain/devices/interface[@type='network']", 3);
    assert_xp_string(doc, NIC(1) "/mac/@address", "52:54:00:00:00:01");
    assert_xp_string(doc, NIC(1) "/source/@network", "turtles-net-" NET_NAT);
    assert_xp_string(doc, NIC(2) "/source/@network", "turtles-net-" NET_EXT);
    assert_xp_count(doc, "/domain/devices/interface/model[@type='virtio']", 3);
    /* Behind the Intel vIOMMU, without an iPXE ROM. */
    assert_xp_count(doc, "/domain/devices/interface/driver[@iommu='on' and @ats='on']", 3);
    assert_xp_count(doc, "/domain/devices/interface/rom[@enabled='no']", 3);
    assert_xp_string(doc, NIC(1) "/alias/@name", "ua-turtles-nic0");
    assert_xp_string(doc, NIC(3) "/alias/@name", "ua-turtles-nic2");

    assert_xp_string(doc, NIC(1) "/filterref/@filter", HV_NETWORK_FILTER);
    assert_xp_count(doc, NIC(1) "/filterref/parameter", 7);
    assert_xp_string(doc, PARAM(1, "GATEWAY"), "10.200.3.1");
    assert_xp_string(doc, PARAM(1, "OWN_NET"), "10.200.3.0");
    assert_xp_string(doc, PARAM(1, "OWN_MASK"), "255.255.255.0");
    assert_xp_string(doc, PARAM(1, "GUARD_NET"), "10.200.0.0");
    assert_xp_string(doc, PARAM(1, "GUARD_MASK"), "255.255.0.0");
    assert_xp_string(doc, PARAM(1, "CTRL_IP_LEARNING"), "dhcp");
    assert_xp_string(doc, PARAM(1, "DHCPSERVER"), "10.200.3.1");
    assert_xp_string(doc, NIC(2) "/filterref/@filter", "clean-traffic");
    assert_xp_count(doc, NIC(2) "/filterref/parameter", 1);
    assert_xp_string(doc, PARAM(2, "CTRL_IP_LEARNING"), "dhcp");
    assert_xp_count(doc, NIC(3) "/filterref", 0);

    /* Without a vIOMMU, no driver attributes; the guard covers the own
     * subnet alone when there is no pool. */
    spec->iommu = HV_IOMMU_NONE;
    HvNic *first = g_ptr_array_index(spec->nics, 0);
    g_clear_pointer(&first->guard_cidr, g_free);
    g_autoptr(xmlDoc) plain = build_doc(spec, HV_BACKEND_TCG, NULL);
    assert_xp_count(plain, "/domain/devices/interface", 3);
    assert_xp_count(plain, "/domain/devices/interface/driver", 0);
    assert_xp_string(plain, PARAM(1, "GUARD_NET"), "10.200.3.0");
    assert_xp_string(plain, PARAM(1, "GUARD_MASK"), "255.255.255.0");

    /* NIC aliases name no device of the pool. */
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_domain_build_xml(spec, HV_BACKEND_TCG, NULL, &error);
    g_assert_no_error(error);
    g_autoptr(GPtrArray) ids = hv_domain_parse_device_ids(xml, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(ids->len, ==, 0);
}

static void assert_nic(const HvNic *nic, const char *network_id, const char *mac, gboolean filter,
                       const char *gateway, const char *own, const char *guard)
{
    g_assert_cmpstr(nic->network_id, ==, network_id);
    g_assert_cmpstr(nic->mac, ==, mac);
    g_assert_cmpint(nic->filter, ==, filter);
    g_assert_cmpstr(nic->gateway, ==, gateway);
    g_assert_cmpstr(nic->own_cidr, ==, own);
    g_assert_cmpstr(nic->guard_cidr, ==, guard);
}

static void test_parse_nics(void)
{
    g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
    add_three_nics(spec);
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_domain_build_xml(spec, HV_BACKEND_TCG, NULL, &error);
    g_assert_no_error(error);

    g_autoptr(GPtrArray) nics = hv_domain_parse_nics(xml, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(nics->len, ==, 3);
    assert_nic(g_ptr_array_index(nics, 0), NET_NAT, "52:54:00:00:00:01", TRUE, "10.200.3.1",
               "10.200.3.0/24", "10.200.0.0/16");
    assert_nic(g_ptr_array_index(nics, 1), NET_EXT, "52:54:00:00:00:02", TRUE, NULL, NULL, NULL);
    assert_nic(g_ptr_array_index(nics, 2), NET_NAT, "52:54:00:00:00:03", FALSE, NULL, NULL, NULL);

    /* Interfaces not ours are left out. */
    g_autofree char *foreign = g_strdup_printf(
        PLAIN_DOMAIN, "<devices><interface type='network'><source network='default'/>"
                      "</interface><interface type='bridge'><source bridge='br0'/></interface>"
                      "<interface type='network'><mac address='52:54:00:aa:bb:cc'/>"
                      "<source network='turtles-net-x'/></interface></devices>");
    g_autoptr(GPtrArray) one = hv_domain_parse_nics(foreign, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(one->len, ==, 1);
    assert_nic(g_ptr_array_index(one, 0), "x", "52:54:00:aa:bb:cc", FALSE, NULL, NULL, NULL);

    g_assert_null(hv_domain_parse_nics("<domain", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
}

static void test_validate_nics(void)
{
    g_autoptr(HvStackSpec) spec = sample_spec(SAMPLE_ID);
    g_autoptr(GError) error = NULL;

    for (guint i = 0; i < HV_NETWORK_NICS_MAX; i++)
        g_ptr_array_add(spec->nics, sample_nic(NET_NAT, NULL, FALSE, NULL));
    /* The MACs are the host's to choose: validate takes none, build wants them. */
    g_assert_true(hv_stack_spec_validate(spec, HV_BACKEND_TCG, NULL, &error));
    g_assert_no_error(error);
    assert_build_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, "nics[0]: mac is required");
    g_ptr_array_add(spec->nics, sample_nic(NET_NAT, NULL, FALSE, NULL));
    assert_validate_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, "nics: at most 8");

    g_ptr_array_set_size(spec->nics, 0);
    g_ptr_array_add(spec->nics, sample_nic(NET_NAT, "52:54:00:00:00:01", FALSE, NULL));
    g_ptr_array_add(spec->nics, sample_nic(NET_NAT, "52:54:00:00:00:0G", FALSE, NULL));
    assert_validate_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID,
                          "nics[1]: mac: '52:54:00:00:00:0G'");
    HvNic *second = g_ptr_array_index(spec->nics, 1);
    g_free(second->mac);
    second->mac = g_strdup("52:54:00:00:00:01");
    assert_validate_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID,
                          "nics[1]: mac: 52:54:00:00:00:01 duplicates nics[0]");
    g_free(second->mac);
    second->mac = g_strdup("52:54:00:00:00:02");
    g_clear_pointer(&second->network_id, g_free);
    assert_validate_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID,
                          "nics[1]: network is required");
    second->network_id = g_strdup("lab");
    assert_validate_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID,
                          "nics[1]: network id is not a UUID");
    g_free(second->network_id);
    second->network_id = g_strdup(NET_EXT);
    g_assert_true(hv_stack_spec_validate(spec, HV_BACKEND_TCG, NULL, &error));

    /* A filtered NIC with a gateway needs its own subnet. */
    second->filter = TRUE;
    second->gateway = g_strdup("10.0.0.1");
    assert_build_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, "nics[1]:");
    second->own_cidr = g_strdup("10.0.0.0/24");
    g_autofree char *xml = hv_domain_build_xml(spec, HV_BACKEND_TCG, NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(xml);
    g_free(second->gateway);
    second->gateway = g_strdup("10.0.0.x");
    assert_build_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID, "gateway '10.0.0.x'");

    /* A device may not take a NIC's alias. */
    g_free(second->gateway);
    second->gateway = g_strdup("10.0.0.1");
    g_ptr_array_add(spec->devices, hv_device_new("nic1", HV_DEVICE_VIRTIO_RNG, NULL));
    assert_validate_fails(spec, HV_BACKEND_TCG, NULL, HV_ERROR_INVALID,
                          "devices: id 'nic1' is reserved for NICs");
}

/* test:///default takes the NICs on a network it knows, unfiltered (it has
 * no nwfilter driver), and gives them back. */
static void test_nics_on_test_driver(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autoptr(HvNetworkSpec) net = hv_network_spec_new();
    g_autoptr(GError) error = NULL;

    net->id = g_strdup(NET_NAT);
    net->name = g_strdup("lab");
    net->tenant = g_strdup("acme");
    net->cidr = g_strdup("10.200.3.0/24");
    g_assert_true(hv_network_ensure(conn, net, NULL, &error));
    g_assert_no_error(error);

    g_autoptr(HvStackSpec) spec = sample_spec("1d2e3f4a-5b6c-4d7e-8f90-a1b2c3d4e5f6");
    g_ptr_array_add(spec->nics, sample_nic(NET_NAT, "52:54:00:12:34:56", FALSE, "10.200.3.0/24"));
    g_ptr_array_add(spec->nics, sample_nic(NET_NAT, "52:54:00:12:34:57", FALSE, "10.200.3.0/24"));
    g_autofree char *xml = hv_domain_build_xml(spec, HV_BACKEND_TEST, NULL, &error);
    g_assert_no_error(error);
    g_autofree char *desc = run_on_test_driver(xml, spec->id);
    g_autoptr(xmlDoc) kept = parse_xml(desc);
    assert_xp_count(kept, "/domain/devices/interface[@type='network']", 2);
    assert_xp_string(kept, NIC(2) "/alias/@name", "ua-turtles-nic1");

    g_autoptr(GPtrArray) nics = hv_domain_parse_nics(desc, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(nics->len, ==, 2);
    assert_nic(g_ptr_array_index(nics, 1), NET_NAT, "52:54:00:12:34:57", FALSE, NULL, NULL, NULL);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    virSetErrorFunc(NULL, silent_libvirt_error);

    g_test_add_func("/domain/spec-lifecycle", test_spec_lifecycle);
    g_test_add_func("/domain/parse-boot-files", test_parse_boot_files);
    g_test_add_func("/domain/uefi-and-seed", test_uefi_and_seed);
    g_test_add_func("/domain/tcg/sample", test_tcg_sample);
    g_test_add_func("/domain/tcg/cpu-modes", test_tcg_named_and_refused_modes);
    g_test_add_func("/domain/test-backend/runs", test_test_backend_runs);
    g_test_add_func("/domain/iommu", test_iommu_variants);
    g_test_add_func("/domain/disk-boot", test_disk_boot);
    g_test_add_func("/domain/intel-iommu-cmdline", test_intel_iommu_cmdline);
    g_test_add_func("/domain/hostdevs", test_hostdevs_and_memtune);
    g_test_add_func("/domain/hostdevs/bad-address", test_bad_pci_addresses);
    g_test_add_func("/domain/kvm/cpu", test_kvm_cpu);
    g_test_add_func("/domain/kvm/refusals", test_kvm_refusals);
    g_test_add_func("/domain/validation", test_validation);
    g_test_add_func("/domain/validate/without-host-fields", test_validate_without_host_fields);
    g_test_add_func("/domain/validate/cmdline", test_validate_cmdline);
    g_test_add_func("/domain/validate/devices", test_validate_devices);
    g_test_add_func("/domain/validate/cpu", test_validate_cpu);
    g_test_add_func("/domain/validate/agrees-with-build", test_validate_agrees_with_build);
    g_test_add_func("/domain/injection", test_injection);
    g_test_add_func("/domain/parse-identity", test_parse_identity);
    g_test_add_func("/domain/schema", test_schema);
    g_test_add_func("/domain/devices/models", test_device_models);
    g_test_add_func("/domain/devices/test-driver", test_devices_on_test_driver);
    g_test_add_func("/domain/devices/validate", test_validate_device_rules);
    g_test_add_func("/domain/devices/device-xml", test_device_xml);
    g_test_add_func("/domain/devices/parse-ids", test_parse_device_ids);
    g_test_add_func("/domain/nics/xml", test_nics_xml);
    g_test_add_func("/domain/nics/parse", test_parse_nics);
    g_test_add_func("/domain/nics/validate", test_validate_nics);
    g_test_add_func("/domain/nics/test-driver", test_nics_on_test_driver);
    return g_test_run();
}
