/* hvcore/migrate without a real peer: the VFIO check and the path rewrite
 * on XML, and the preflight's refusals against test:///default (used as
 * both source and peer: its free memory is a few MiB, it starts a domain
 * with a PCI <hostdev> without any device behind it, and it cannot compare
 * CPUs).  Streams, the destination XML on real pools and the migration
 * itself need two libvirtd: tests/system/migrate-hvcore.long. */
#include <string.h>

#include "hvcore/error.h"
#include "hvcore/migrate.h"
#include "hvcore/libvirt-private.h"
#include "hvcore/storage.h"

#define TEST_URI "test:///default"

static void quiet_libvirt(void *data, virErrorPtr error)
{
    (void)data;
    (void)error;
}

static const char vfio_xml[] = "<domain type='test'><name>%s</name><memory unit='KiB'>%u</memory>"
                               "<os><type>hvm</type></os><devices>%s</devices></domain>";

static const char hostdev[] = "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
                              "<address domain='0x0000' bus='0x3b' slot='0x00' function='0x1'/>"
                              "</source></hostdev>";

static char *domain_xml(const char *name, guint memory_kib, const char *devices)
{
    return g_strdup_printf(vfio_xml, name, memory_kib, devices);
}

/* Defines (and starts, when @start) a domain on the test driver. */
static void define(HvConn *conn, const char *xml, gboolean start)
{
    virDomainPtr dom = virDomainDefineXML(hv_conn_get_libvirt(conn), xml);

    g_assert_nonnull(dom);
    if (start)
        g_assert_cmpint(virDomainCreate(dom), ==, 0);
    virDomainFree(dom);
}

static void test_check_devices(void)
{
    g_autofree char *plain = domain_xml("a", 1024, "<serial type='pty'/>");
    g_autofree char *two = NULL;
    g_autofree char *usb = domain_xml(
        "c", 1024,
        "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/></source></hostdev>");
    g_autoptr(GError) error = NULL;
    g_autofree char *devices = g_strdup_printf(
        "%s<hostdev mode='subsystem' type='pci'><source><address domain='0x0001' bus='0x0a' "
        "slot='0x1f' function='0x7'/></source></hostdev>",
        hostdev);

    g_assert_true(hv_migrate_check_devices(plain, &error));
    g_assert_no_error(error);

    two = domain_xml("b", 1024, devices);
    g_assert_false(hv_migrate_check_devices(two, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED);
    g_assert_nonnull(strstr(error->message, "VFIO devices attached (0000:3b:00.1, 0001:0a:1f.7)"));
    g_assert_nonnull(strstr(error->message, "not supported"));
    g_clear_error(&error);

    /* Any host device pins the domain to this host. */
    g_assert_false(hv_migrate_check_devices(usb, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED);
    g_assert_nonnull(strstr(error->message, "a usb host device"));
    g_clear_error(&error);

    g_assert_false(hv_migrate_check_devices("<domain><devices>", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_false(hv_migrate_check_devices(NULL, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
}

static void test_rewrite(void)
{
    static const char xml[] =
        "<domain type='qemu'><name>turtles-x</name>"
        "<metadata><turtles:stack xmlns:turtles='urn:turtles:stack:1'>"
        "<turtles:record>/s/a/pools/images/k</turtles:record></turtles:stack></metadata>"
        "<os><kernel>/s/a/pools/images/k</kernel><initrd>/s/a/pools/images/i</initrd>"
        "<cmdline>root=/s/a/pools/images/k</cmdline></os><devices>"
        "<disk type='file' device='disk'><source file='/s/a/pools/disks/d'/>"
        "<backingStore type='file'><source file='/s/a/pools/images/base'/></backingStore></disk>"
        "<serial type='file'><source path='/s/a/consoles/x.log' append='on'/>"
        "<log file='/s/a/consoles/x.log'/></serial>"
        "<console type='file'><source path='/s/a/consoles/x.log'/></console>"
        "<disk type='file' device='cdrom'><source file='/s/a/pools/images/k2'/></disk>"
        "</devices></domain>";
    g_autoptr(GHashTable) paths = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;

    g_hash_table_insert(paths, "/s/a/pools/images/k", "/s/b&c/pools/images/k");
    g_hash_table_insert(paths, "/s/a/pools/images/i", "/s/b/pools/images/i");
    g_hash_table_insert(paths, "/s/a/pools/disks/d", "/s/b/pools/disks/d");
    g_hash_table_insert(paths, "/s/a/pools/images/base", "/s/b/pools/images/base");
    g_hash_table_insert(paths, "/s/a/consoles/x.log", "/s/b/consoles/x.log");

    out = hv_migrate_rewrite_xml(xml, paths, &error);
    g_assert_no_error(error);
    g_assert_nonnull(out);
    /* Values are escaped on the way out. */
    g_assert_nonnull(strstr(out, "<kernel>/s/b&amp;c/pools/images/k</kernel>"));
    g_assert_nonnull(strstr(out, "<initrd>/s/b/pools/images/i</initrd>"));
    g_assert_nonnull(strstr(out, "<source file=\"/s/b/pools/disks/d\"/>"));
    g_assert_nonnull(strstr(out, "<source file=\"/s/b/pools/images/base\"/>"));
    g_assert_nonnull(strstr(out, "<source path=\"/s/b/consoles/x.log\" append=\"on\"/>"));
    g_assert_nonnull(strstr(out, "<log file=\"/s/b/consoles/x.log\"/>"));
    g_assert_nonnull(strstr(out, "<console type=\"file\"><source path=\"/s/b/consoles/x.log\"/>"));
    /* Only whole values: a path inside other text, or a longer path that
     * starts with a mapped one, stays. */
    g_assert_nonnull(strstr(out, "<cmdline>root=/s/a/pools/images/k</cmdline>"));
    g_assert_nonnull(strstr(out, "<source file=\"/s/a/pools/images/k2\"/>"));
    /* Everything else survives, our metadata namespace included (its
     * text is a whole path here: rewritten like any other). */
    g_assert_nonnull(strstr(out, "<turtles:stack xmlns:turtles=\"urn:turtles:stack:1\">"));
    g_assert_nonnull(strstr(out, "<name>turtles-x</name>"));
    g_assert_null(strstr(out, "<?xml"));

    g_assert_null(hv_migrate_rewrite_xml("<domain>", paths, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
}

static void test_preflight_refusals(void)
{
    g_autoptr(HvConn) conn = hv_conn_open(TEST_URI, NULL);
    g_autoptr(GError) error = NULL;
    g_autofree char *vfio = domain_xml("vfio", 1024, hostdev);
    g_autofree char *off = domain_xml("off", 1024, "");
    g_autofree char *small = domain_xml("small", 1024, "");
    g_autofree char *big = NULL;
    unsigned long long free_kib;

    g_assert_nonnull(conn);
    define(conn, vfio, TRUE);
    define(conn, off, FALSE);
    define(conn, small, TRUE);
    free_kib = virNodeGetFreeMemory(hv_conn_get_libvirt(conn)) / 1024;
    g_assert_cmpuint(free_kib, >, 1024);
    big = domain_xml("big", (guint)free_kib + 1, "");
    define(conn, big, TRUE);

    g_assert_false(hv_migrate_preflight(conn, conn, "nope", HV_BACKEND_TCG, TRUE, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "domain 'nope' not found");
    g_clear_error(&error);

    g_assert_false(hv_migrate_preflight(conn, conn, "off", HV_BACKEND_TCG, TRUE, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED);
    g_assert_nonnull(strstr(error->message, "domain 'off' is shut off"));
    g_clear_error(&error);

    g_assert_false(hv_migrate_preflight(conn, conn, "vfio", HV_BACKEND_TCG, TRUE, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED);
    g_assert_nonnull(strstr(error->message, "VFIO devices attached (0000:3b:00.1)"));
    g_clear_error(&error);

    g_assert_false(hv_migrate_preflight(conn, conn, "small", HV_BACKEND_KVM, FALSE, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED);
    g_assert_nonnull(strstr(error->message, "KVM_CAP_NESTED_STATE"));
    g_clear_error(&error);

    g_assert_false(hv_migrate_preflight(conn, conn, "big", HV_BACKEND_TCG, TRUE, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED);
    g_assert_nonnull(strstr(error->message, "not enough free memory on the peer"));
    g_clear_error(&error);

    /* What passes: running, no devices, fits; kvm with nested state.  The
     * test driver cannot compare CPUs, which is no refusal. */
    g_assert_true(hv_migrate_preflight(conn, conn, "small", HV_BACKEND_TCG, TRUE, &error));
    g_assert_no_error(error);
    g_assert_true(hv_migrate_preflight(conn, conn, "small", HV_BACKEND_KVM, TRUE, &error));
    g_assert_no_error(error);

    /* A paused domain may move too. */
    {
        virDomainPtr dom = virDomainLookupByName(hv_conn_get_libvirt(conn), "small");

        g_assert_cmpint(virDomainSuspend(dom), ==, 0);
        virDomainFree(dom);
    }
    g_assert_true(hv_migrate_preflight(conn, conn, "small", HV_BACKEND_TCG, TRUE, &error));
    g_assert_no_error(error);
}

static void test_list_volumes_outside_pools(void)
{
    g_autoptr(HvConn) conn = hv_conn_open(TEST_URI, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) images = NULL;
    g_autoptr(GPtrArray) overlays = NULL;
    g_autofree char *xml =
        g_strdup("<domain type='test'><name>ext</name><memory unit='KiB'>1024</memory>"
                 "<os><type>hvm</type><kernel>/somewhere/vmlinuz</kernel></os></domain>");
    g_autofree char *plain = domain_xml("plain", 1024, "");

    g_assert_nonnull(conn);
    define(conn, xml, FALSE);
    define(conn, plain, FALSE);

    /* A kernel in no pool of ours could never be found on the peer. */
    g_assert_false(hv_migrate_list_volumes(conn, "ext", &images, &overlays, NULL, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED);
    g_assert_nonnull(strstr(error->message, "'/somewhere/vmlinuz' is no volume"));
    g_assert_null(images);
    g_clear_error(&error);

    g_assert_true(hv_migrate_list_volumes(conn, "plain", &images, &overlays, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(images->len, ==, 0);
    g_assert_cmpuint(overlays->len, ==, 0);

    g_assert_false(hv_migrate_list_volumes(conn, "nope", NULL, NULL, NULL, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_NOT_FOUND);
}

static void create_volume(HvConn *conn, const char *pool_name, const char *xml)
{
    g_autoptr(virStoragePool) pool =
        virStoragePoolLookupByName(hv_conn_get_libvirt(conn), pool_name);
    g_autoptr(virStorageVol) vol = NULL;

    g_assert_nonnull(pool);
    vol = virStorageVolCreateXML(pool, xml, 0);
    g_assert_nonnull(vol);
}

static char *names_of(GPtrArray *names)
{
    g_ptr_array_add(names, NULL);
    char *joined = g_strjoinv(" ", (char **)names->pdata);
    g_ptr_array_remove_index(names, names->len - 1);
    return joined;
}

/* One read of the XML sorts every volume: the kernel and the overlay's
 * backing image are images, the overlay an overlay, the seed (no backing)
 * a whole volume; the lists that are not wanted may be NULL. */
static void test_list_volumes_kinds(void)
{
    g_autoptr(HvConn) conn = hv_conn_open(TEST_URI, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) images = NULL;
    g_autoptr(GPtrArray) overlays = NULL;
    g_autoptr(GPtrArray) wholes = NULL;
    g_autofree char *image_names = NULL, *overlay_names = NULL, *whole_names = NULL;
    static const char xml[] =
        "<domain type='test'><name>kinds</name><memory unit='KiB'>1024</memory>"
        "<os><type>hvm</type><kernel>/srv/mig/pools/images/vmlinuz</kernel></os><devices>"
        "<disk type='file' device='disk'><source file='/srv/mig/pools/disks/ovl'/>"
        "<target dev='vda'/></disk>"
        "<disk type='file' device='cdrom'><source file='/srv/mig/pools/disks/seed'/>"
        "<target dev='hdc'/><readonly/></disk></devices></domain>";

    g_assert_nonnull(conn);
    g_assert_true(hv_storage_ensure_pools(conn, "/srv/mig", &error));
    g_assert_no_error(error);
    create_volume(conn, HV_POOL_IMAGES,
                  "<volume><name>vmlinuz</name><capacity>1024</capacity></volume>");
    create_volume(conn, HV_POOL_IMAGES,
                  "<volume><name>base</name><capacity>4096</capacity></volume>");
    create_volume(conn, HV_POOL_DISKS,
                  "<volume><name>seed</name><capacity>1024</capacity></volume>");
    create_volume(conn, HV_POOL_DISKS,
                  "<volume><name>ovl</name><capacity>4096</capacity>"
                  "<target><format type='qcow2'/></target>"
                  "<backingStore><path>/srv/mig/pools/images/base</path>"
                  "<format type='raw'/></backingStore></volume>");
    define(conn, xml, FALSE);

    g_assert_true(hv_migrate_list_volumes(conn, "kinds", &images, &overlays, &wholes, &error));
    g_assert_no_error(error);
    image_names = names_of(images);
    overlay_names = names_of(overlays);
    whole_names = names_of(wholes);
    g_assert_cmpstr(image_names, ==, "vmlinuz base");
    g_assert_cmpstr(overlay_names, ==, "ovl");
    g_assert_cmpstr(whole_names, ==, "seed");

    g_clear_pointer(&wholes, g_ptr_array_unref);
    g_assert_true(hv_migrate_list_volumes(conn, "kinds", NULL, NULL, &wholes, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(wholes->len, ==, 1);
}

/* A file no pool knows even after the one refresh is refused, naming it. */
static void test_list_volumes_unknown_nvram(void)
{
    g_autoptr(HvConn) conn = hv_conn_open(TEST_URI, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) wholes = NULL;
    static const char xml[] =
        "<domain type='test'><name>vars</name><memory unit='KiB'>1024</memory>"
        "<os><type>hvm</type><loader readonly='yes' type='pflash'>/srv/code.fd</loader>"
        "<nvram>/srv/mig/pools/disks/missing-vars</nvram></os>"
        "</domain>";

    g_assert_nonnull(conn);
    g_assert_true(hv_storage_ensure_pools(conn, "/srv/mig", &error));
    g_assert_no_error(error);
    define(conn, xml, FALSE);
    g_assert_false(hv_migrate_list_volumes(conn, "vars", NULL, NULL, &wholes, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED);
    g_assert_nonnull(strstr(error->message, "'/srv/mig/pools/disks/missing-vars' is no volume"));
    g_assert_null(wholes);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    virSetErrorFunc(NULL, quiet_libvirt);

    g_test_add_func("/migrate/check-devices", test_check_devices);
    g_test_add_func("/migrate/rewrite", test_rewrite);
    g_test_add_func("/migrate/preflight-refusals", test_preflight_refusals);
    g_test_add_func("/migrate/list-volumes/outside-pools", test_list_volumes_outside_pools);
    g_test_add_func("/migrate/list-volumes/kinds", test_list_volumes_kinds);
    g_test_add_func("/migrate/list-volumes/unknown-nvram", test_list_volumes_unknown_nvram);
    return g_test_run();
}
