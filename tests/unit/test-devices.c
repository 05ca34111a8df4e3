/* hvcore/devices: libvirt node-device XML of host PCI functions (fixtures
 * under tests/unit/fixtures/nodedev, each valid against libvirt's nodedev
 * schema) and the IOMMU-group rules of hv_pci_check_assignable, with a
 * lookup that serves the fixtures; hv_pci_check_assignable_on against
 * test:///default, which has no PCI devices.
 *
 * The fixture host: IOMMU group 12 holds a GPU 0000:3b:00.0 (on vfio-pci),
 * its audio function 0000:3b:00.1 (snd_hda_intel, or vfio-pci in the
 * "-vfio" variant) and the root port 0000:00:01.0 above them (pcieport, a
 * bridge); group 30 an NVMe drive 0000:5e:00.0 (nvme); 0000:6f:00.0 has no
 * IOMMU group (a host without VT-d); 0000:70:00.0 and 0000:71:00.0 are
 * served a net and a USB node device. */
#include <string.h>

#include "hvcore/devices.h"
#include "hvcore/error.h"
#include "hvcore/libvirt-private.h"

#define GPU    "0000:3b:00.0"
#define AUDIO  "0000:3b:00.1"
#define BRIDGE "0000:00:01.0"
#define NVME   "0000:5e:00.0"
#define NO_MMU "0000:6f:00.0"
#define NET    "0000:70:00.0"
#define USB    "0000:71:00.0"

static void quiet_libvirt(void *data, virErrorPtr error)
{
    (void)data;
    (void)error;
}

static char *fixture_path(const char *file)
{
    const char *srcdir = g_getenv("TURTLES_SRCDIR");

    return g_build_filename(srcdir != NULL ? srcdir : ".", "tests", "unit", "fixtures", "nodedev",
                            file, NULL);
}

static char *read_fixture(const char *file)
{
    g_autofree char *path = fixture_path(file);
    g_autoptr(GError) error = NULL;
    char *xml = NULL;

    if (!g_file_get_contents(path, &xml, NULL, &error))
        g_error("fixture %s: %s", path, error->message);
    return xml;
}

/* A fixture host: PCI address -> fixture file.  Addresses it lacks are
 * NOT_FOUND, as libvirt_lookup reports them. */
typedef struct {
    GHashTable *files;
    guint lookups;
} FakeHost;

static void fake_host_init(FakeHost *host, gboolean audio_on_vfio)
{
    host->files = g_hash_table_new(g_str_hash, g_str_equal);
    host->lookups = 0;
    g_hash_table_insert(host->files, GPU, "pci_0000_3b_00_0.xml");
    g_hash_table_insert(host->files, AUDIO,
                        audio_on_vfio ? "pci_0000_3b_00_1-vfio.xml" : "pci_0000_3b_00_1.xml");
    g_hash_table_insert(host->files, BRIDGE, "pci_0000_00_01_0.xml");
    g_hash_table_insert(host->files, NVME, "pci_0000_5e_00_0.xml");
    g_hash_table_insert(host->files, NO_MMU, "pci_0000_6f_00_0.xml");
    g_hash_table_insert(host->files, NET, "net_eth0.xml");
    g_hash_table_insert(host->files, USB, "usb_1_2.xml");
}

static void fake_host_clear(FakeHost *host)
{
    g_hash_table_unref(host->files);
}

static char *fake_lookup(const char *address, gpointer data, GError **error)
{
    FakeHost *host = data;
    const char *file = g_hash_table_lookup(host->files, address);

    host->lookups++;
    if (!file) {
        g_set_error(error, HV_ERROR, HV_ERROR_NOT_FOUND, "no PCI device %s on this host", address);
        return NULL;
    }
    return read_fixture(file);
}

static void assert_message_has(const GError *error, const char *needle)
{
    if (!strstr(error->message, needle))
        g_error("error message '%s' does not mention '%s'", error->message, needle);
}

/* Refused with @code, the message naming every one of @needles (NULL-ended). */
static void assert_refused(FakeHost *host, const char *const *addresses, gboolean force, int code,
                           ...)
{
    g_autoptr(GError) error = NULL;
    GPtrArray *functions = NULL;
    va_list args;

    g_assert_false(
        hv_pci_check_assignable(addresses, force, fake_lookup, host, &functions, &error));
    g_assert_null(functions);
    g_assert_error(error, HV_ERROR, code);
    g_test_message("refused: %s", error->message);
    va_start(args, code);
    for (const char *needle = va_arg(args, const char *); needle;
         needle = va_arg(args, const char *))
        assert_message_has(error, needle);
    va_end(args);
}

static GPtrArray *assert_accepted(FakeHost *host, const char *const *addresses, gboolean force)
{
    g_autoptr(GError) error = NULL;
    GPtrArray *functions = NULL;

    g_assert_true(hv_pci_check_assignable(addresses, force, fake_lookup, host, &functions, &error));
    g_assert_no_error(error);
    g_assert_nonnull(functions);
    g_assert_cmpuint(functions->len, ==, g_strv_length((char **)addresses));
    for (guint i = 0; i < functions->len; i++) {
        const HvPciFunction *function = g_ptr_array_index(functions, i);
        g_assert_cmpstr(function->address, ==, addresses[i]);
    }
    return functions;
}

/* ---- parsing ----------------------------------------------------------------- */

static void test_parse_endpoint(void)
{
    g_autofree char *xml = read_fixture("pci_0000_3b_00_0.xml");
    g_autoptr(GError) error = NULL;
    g_autoptr(HvPciFunction) gpu = hv_pci_function_parse(xml, &error);

    g_assert_no_error(error);
    g_assert_cmpstr(gpu->address, ==, GPU);
    g_assert_cmpstr(gpu->nodedev_name, ==, "pci_0000_3b_00_0");
    g_assert_cmphex(gpu->vendor_id, ==, 0x10de);
    g_assert_cmphex(gpu->product_id, ==, 0x2204);
    g_assert_cmpstr(gpu->vendor, ==, "NVIDIA Corporation");
    g_assert_cmpstr(gpu->product, ==, "GA102 [GeForce RTX 3090]");
    g_assert_cmpstr(gpu->driver, ==, "vfio-pci");
    g_assert_cmphex(gpu->class_code, ==, 0x030000);
    g_assert_false(gpu->bridge);
    g_assert_cmpint(gpu->iommu_group, ==, 12);
    g_assert_cmpuint(gpu->group_addresses->len, ==, 3);
    g_assert_cmpstr(g_ptr_array_index(gpu->group_addresses, 0), ==, BRIDGE);
    g_assert_cmpstr(g_ptr_array_index(gpu->group_addresses, 1), ==, GPU);
    g_assert_cmpstr(g_ptr_array_index(gpu->group_addresses, 2), ==, AUDIO);
}

static void test_parse_bridge_and_groupless(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *bridge_xml = read_fixture("pci_0000_00_01_0.xml");
    g_autoptr(HvPciFunction) bridge = hv_pci_function_parse(bridge_xml, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(bridge->address, ==, BRIDGE);
    g_assert_true(bridge->bridge);
    g_assert_cmpstr(bridge->driver, ==, "pcieport");

    g_autofree char *nic_xml = read_fixture("pci_0000_6f_00_0.xml");
    g_autoptr(HvPciFunction) nic = hv_pci_function_parse(nic_xml, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(nic->address, ==, NO_MMU);
    g_assert_null(nic->driver);
    g_assert_cmpint(nic->iommu_group, ==, -1);
    g_assert_cmpuint(nic->group_addresses->len, ==, 0);

    /* Names may be missing; the ids are what identifies the hardware. */
    static const char bare[] =
        "<device><name>pci_0001_02_1f_7</name><capability type='pci'>"
        "<domain>1</domain><bus>2</bus><slot>31</slot><function>7</function>"
        "<product id='0xabcd'/><vendor id='0x1af4'/>"
        "<iommuGroup number='0'><address domain='0x0001' bus='0x02' slot='0x1f' "
        "function='0x7'/></iommuGroup></capability></device>";
    g_autoptr(HvPciFunction) minimal = hv_pci_function_parse(bare, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(minimal->address, ==, "0001:02:1f.7");
    g_assert_null(minimal->vendor);
    g_assert_null(minimal->product);
    g_assert_cmphex(minimal->vendor_id, ==, 0x1af4);
    g_assert_cmphex(minimal->product_id, ==, 0xabcd);
    g_assert_cmpint(minimal->iommu_group, ==, 0);
    g_assert_cmpuint(minimal->group_addresses->len, ==, 1);
    g_assert_false(minimal->bridge);
}

static void test_parse_refusals(void)
{
    static const char *const not_pci[] = {"net_eth0.xml", "usb_1_2.xml"};
    for (gsize i = 0; i < G_N_ELEMENTS(not_pci); i++) {
        g_autofree char *xml = read_fixture(not_pci[i]);
        g_autoptr(GError) error = NULL;
        g_assert_null(hv_pci_function_parse(xml, &error));
        g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
        assert_message_has(error, "is not a PCI device");
    }

    static const char *const broken[] = {
        "",
        "<device",
        "<domain/>",
        "<device><name>pci_x</name><capability type='pci'><domain>0</domain><bus>300</bus>"
        "<slot>0</slot><function>0</function></capability></device>",
        "<device><capability type='pci'><domain>0</domain><bus>1</bus><slot>32</slot>"
        "<function>0</function></capability></device>",
        "<device><capability type='pci'><domain>0</domain><bus>1</bus><slot>0</slot>"
        "</capability></device>",
        "<device><capability type='pci'><domain>0</domain><bus>1</bus><slot>0</slot>"
        "<function>0</function><iommuGroup number='3'><address domain='0x0000' bus='0x1ff' "
        "slot='0x00' function='0x0'/></iommuGroup></capability></device>",
        "<!DOCTYPE device [<!ENTITY a 'x'>]><device><name>&a;</name></device>",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(broken); i++) {
        g_autoptr(GError) error = NULL;
        g_assert_null(hv_pci_function_parse(broken[i], &error));
        g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    }
}

/* ---- assignability ------------------------------------------------------------ */

static void test_group_member_outside(void)
{
    FakeHost host;
    fake_host_init(&host, FALSE);

    /* The audio function shares the GPU's group and is on its host driver. */
    const char *const gpu_only[] = {GPU, NULL};
    assert_refused(&host, gpu_only, FALSE, HV_ERROR_UNSUPPORTED, "IOMMU group 12", AUDIO,
                   "snd_hda_intel", "add " AUDIO " to the class", "vfio-pci", NULL);
    /* force is about the functions asked for, not about their group. */
    assert_refused(&host, gpu_only, TRUE, HV_ERROR_UNSUPPORTED, AUDIO, NULL);
    fake_host_clear(&host);
}

static void test_group_member_on_vfio(void)
{
    FakeHost host;
    fake_host_init(&host, TRUE);

    /* The same group with the audio function on vfio-pci; the root port
     * (pcieport) in the group is a bridge and does not count. */
    const char *const gpu_only[] = {GPU, NULL};
    g_autoptr(GPtrArray) functions = assert_accepted(&host, gpu_only, FALSE);
    const HvPciFunction *gpu = g_ptr_array_index(functions, 0);
    g_assert_cmpint(gpu->iommu_group, ==, 12);
    g_assert_cmpstr(gpu->driver, ==, "vfio-pci");
    /* It looked at both other members of the group. */
    g_assert_cmpuint(host.lookups, ==, 3);
    fake_host_clear(&host);
}

static void test_whole_group_in_class(void)
{
    FakeHost host;
    fake_host_init(&host, FALSE);

    /* Both endpoints in the class: the group is whole, but the audio
     * function is still the host's until someone says otherwise. */
    const char *const both[] = {GPU, AUDIO, NULL};
    assert_refused(&host, both, FALSE, HV_ERROR_UNSUPPORTED, AUDIO, "host driver snd_hda_intel",
                   "force", NULL);
    g_autoptr(GPtrArray) functions = assert_accepted(&host, both, TRUE);
    g_assert_cmpstr(((HvPciFunction *)g_ptr_array_index(functions, 1))->driver, ==,
                    "snd_hda_intel");

    /* No functions_out: just the verdict. */
    g_autoptr(GError) error = NULL;
    g_assert_true(hv_pci_check_assignable(both, TRUE, fake_lookup, &host, NULL, &error));
    g_assert_no_error(error);
    fake_host_clear(&host);
}

static void test_host_driver(void)
{
    FakeHost host;
    fake_host_init(&host, FALSE);

    const char *const nvme[] = {NVME, NULL};
    assert_refused(&host, nvme, FALSE, HV_ERROR_UNSUPPORTED, NVME, "host driver nvme",
                   "Bind it to vfio-pci", "use force", NULL);
    g_autoptr(GPtrArray) functions = assert_accepted(&host, nvme, TRUE);
    const HvPciFunction *drive = g_ptr_array_index(functions, 0);
    g_assert_cmpstr(drive->driver, ==, "nvme");
    g_assert_cmpint(drive->iommu_group, ==, 30);
    fake_host_clear(&host);
}

static void test_unknown_not_pci_no_iommu(void)
{
    FakeHost host;
    fake_host_init(&host, TRUE);

    const char *const unknown[] = {GPU, "0000:99:00.0", NULL};
    assert_refused(&host, unknown, TRUE, HV_ERROR_NOT_FOUND, "no PCI device 0000:99:00.0", NULL);

    const char *const net[] = {NET, NULL};
    assert_refused(&host, net, TRUE, HV_ERROR_INVALID, "not a PCI device", NULL);
    const char *const usb[] = {USB, NULL};
    assert_refused(&host, usb, TRUE, HV_ERROR_INVALID, "not a PCI device", NULL);

    const char *const groupless[] = {NO_MMU, NULL};
    assert_refused(&host, groupless, TRUE, HV_ERROR_UNSUPPORTED, NO_MMU, "no IOMMU group", "VT-d",
                   "AMD-Vi", "intel_iommu=on", NULL);

    /* A group member the host cannot describe fails the check too. */
    g_hash_table_remove(host.files, AUDIO);
    const char *const gpu[] = {GPU, NULL};
    assert_refused(&host, gpu, FALSE, HV_ERROR_NOT_FOUND, "IOMMU group 12", AUDIO, NULL);

    /* The lookup answering for another function is the host lying. */
    g_hash_table_insert(host.files, AUDIO, "pci_0000_3b_00_0.xml");
    const char *const audio[] = {AUDIO, NULL};
    assert_refused(&host, audio, TRUE, HV_ERROR_INVALID, AUDIO, GPU, NULL);

    /* Nothing asked for: nothing to refuse. */
    const char *const none[] = {NULL};
    g_autoptr(GPtrArray) functions = assert_accepted(&host, none, FALSE);
    g_assert_cmpuint(functions->len, ==, 0);
    fake_host_clear(&host);
}

/* Through libvirt's node-device API: test:///default has no PCI devices. */
static void test_on_test_driver(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(HvConn) conn = hv_conn_open("test:///default", &error);
    g_assert_no_error(error);

    const char *const missing[] = {GPU, NULL};
    g_assert_false(hv_pci_check_assignable_on(conn, missing, FALSE, NULL, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "no PCI device " GPU " on this host");
    g_clear_error(&error);

    const char *const malformed[] = {"0000:3B:00.0", NULL};
    g_assert_false(hv_pci_check_assignable_on(conn, malformed, FALSE, NULL, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    virSetErrorFunc(NULL, quiet_libvirt);

    g_test_add_func("/devices/parse/endpoint", test_parse_endpoint);
    g_test_add_func("/devices/parse/bridge-and-groupless", test_parse_bridge_and_groupless);
    g_test_add_func("/devices/parse/refusals", test_parse_refusals);
    g_test_add_func("/devices/assignable/group-member-outside", test_group_member_outside);
    g_test_add_func("/devices/assignable/group-member-on-vfio", test_group_member_on_vfio);
    g_test_add_func("/devices/assignable/whole-group", test_whole_group_in_class);
    g_test_add_func("/devices/assignable/host-driver", test_host_driver);
    g_test_add_func("/devices/assignable/unknown-not-pci-no-iommu", test_unknown_not_pci_no_iommu);
    g_test_add_func("/devices/assignable/on-test-driver", test_on_test_driver);
    return g_test_run();
}
