/* hvcore/storage against test:///default, whose storage driver keeps dir
 * pools and volumes in memory (and touches no directory): pools made,
 * started, autostarted and checked, volumes looked up, overlaid and
 * deleted, names refused.  The test driver cannot upload
 * (virStorageVolUpload is not supported), so here an upload only fails
 * cleanly; streaming, SHA-256, bounded memory and abort against a real
 * libvirtd are tests/system/storage.t. */
#include <string.h>

#include "hvcore/error.h"
#include "hvcore/storage.h"
#include "hvcore/libvirt-private.h"

#define TEST_URI "test:///default"

/* Every test has a fresh driver: test:///default's state lives as long as
 * one connection to it is open, and each test opens and closes its own. */
static HvConn *open_test_driver(void)
{
    HvConn *conn = hv_conn_open(TEST_URI, NULL);

    g_assert_nonnull(conn);
    return conn;
}

static void quiet_libvirt(void *data, virErrorPtr error)
{
    (void)data;
    (void)error;
}

/* The value of an XPath-free, first <tag>...</tag> in @xml: enough for the
 * simple XML libvirt hands back here. */
static char *xml_element(const char *xml, const char *open_tag, const char *close_tag)
{
    const char *start = strstr(xml, open_tag);
    const char *end;

    if (!start)
        return NULL;
    start += strlen(open_tag);
    end = strstr(start, close_tag);
    return end ? g_strndup(start, (gsize)(end - start)) : NULL;
}

static void assert_pool(HvConn *conn, const char *name, const char *path)
{
    g_autoptr(virStoragePool) pool = virStoragePoolLookupByName(hv_conn_get_libvirt(conn), name);
    g_autofree char *xml = NULL;
    g_autofree char *got = NULL;
    int autostart = 0;

    g_assert_nonnull(pool);
    g_assert_cmpint(virStoragePoolIsActive(pool), ==, 1);
    g_assert_cmpint(virStoragePoolIsPersistent(pool), ==, 1);
    g_assert_cmpint(virStoragePoolGetAutostart(pool, &autostart), ==, 0);
    g_assert_cmpint(autostart, ==, 1);
    xml = virStoragePoolGetXMLDesc(pool, 0);
    g_assert_nonnull(strstr(xml, "<pool type='dir'>") ? xml : NULL);
    got = xml_element(xml, "<path>", "</path>");
    g_assert_cmpstr(got, ==, path);
}

/* A raw volume made directly through libvirt, as an upload would leave it. */
static virStorageVolPtr create_volume(HvConn *conn, const char *pool_name, const char *name,
                                      guint64 capacity)
{
    g_autoptr(virStoragePool) pool =
        virStoragePoolLookupByName(hv_conn_get_libvirt(conn), pool_name);
    g_autofree char *xml = g_strdup_printf("<volume><name>%s</name>"
                                           "<capacity unit='bytes'>%" G_GUINT64_FORMAT "</capacity>"
                                           "<target><format type='raw'/></target></volume>",
                                           name, capacity);
    virStorageVolPtr vol;

    g_assert_nonnull(pool);
    vol = virStorageVolCreateXML(pool, xml, 0);
    g_assert_nonnull(vol);
    return vol;
}

static void test_names(void)
{
    static const char *const good[] = {"a", "0", "tenant--image.img", "a.b-c.9", "web-1.qcow2"};
    static const char *const bad[] = {
        "", "-a", ".a", ".", "..", "A", "a/b", "../etc", "a b", "a_b", "é", "a\nb", "a:b",
    };
    g_autofree char *longest = g_strnfill(HV_VOLUME_NAME_MAX, 'a');
    g_autofree char *too_long = g_strnfill(HV_VOLUME_NAME_MAX + 1, 'a');
    gsize i;

    for (i = 0; i < G_N_ELEMENTS(good); i++)
        g_assert_true(hv_volume_name_is_valid(good[i]));
    for (i = 0; i < G_N_ELEMENTS(bad); i++)
        g_assert_false(hv_volume_name_is_valid(bad[i]));
    g_assert_false(hv_volume_name_is_valid(NULL));
    g_assert_true(hv_volume_name_is_valid(longest));
    g_assert_false(hv_volume_name_is_valid(too_long));
}

static void test_pool_dir(void)
{
    g_autofree char *images = hv_storage_pool_dir("/var/lib/turtles", HV_POOL_IMAGES);
    g_autofree char *disks = hv_storage_pool_dir("/var/lib/turtles/", HV_POOL_DISKS);
    g_autofree char *relative = hv_storage_pool_dir("state", HV_POOL_IMAGES);
    g_autofree char *cwd = g_get_current_dir();
    g_autofree char *expected = g_build_filename(cwd, "state", "pools", "images", NULL);
    g_autofree char *canonical = g_canonicalize_filename(expected, NULL);

    g_assert_cmpstr(images, ==, "/var/lib/turtles/pools/images");
    g_assert_cmpstr(disks, ==, "/var/lib/turtles/pools/disks");
    g_assert_cmpstr(relative, ==, canonical);
    g_assert_null(hv_storage_pool_dir("/x", "default"));
    g_assert_null(hv_storage_pool_dir("", HV_POOL_IMAGES));
    g_assert_null(hv_storage_pool_dir(NULL, HV_POOL_IMAGES));
}

static void test_ensure_pools(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autoptr(GError) error = NULL;
    g_autoptr(virStoragePool) disks = NULL;

    g_assert_true(hv_storage_ensure_pools(conn, "/srv/turtles", &error));
    g_assert_no_error(error);
    assert_pool(conn, HV_POOL_IMAGES, "/srv/turtles/pools/images");
    assert_pool(conn, HV_POOL_DISKS, "/srv/turtles/pools/disks");

    /* Again: nothing to do, nothing breaks; a trailing slash is the same dir. */
    g_assert_true(hv_storage_ensure_pools(conn, "/srv/turtles/", &error));
    g_assert_no_error(error);

    /* A stopped pool that lost its autostart flag is started and marked again. */
    disks = virStoragePoolLookupByName(hv_conn_get_libvirt(conn), HV_POOL_DISKS);
    g_assert_cmpint(virStoragePoolDestroy(disks), ==, 0);
    g_assert_cmpint(virStoragePoolSetAutostart(disks, 0), ==, 0);
    g_assert_cmpint(virStoragePoolIsActive(disks), ==, 0);
    g_assert_true(hv_storage_ensure_pools(conn, "/srv/turtles", &error));
    g_assert_no_error(error);
    assert_pool(conn, HV_POOL_DISKS, "/srv/turtles/pools/disks");

    /* Another state dir: the pools are someone else's; both paths named. */
    g_assert_false(hv_storage_ensure_pools(conn, "/other/state", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==,
                    "libvirt storage pool 'turtles-images' exists with path "
                    "'/srv/turtles/pools/images', not '/other/state/pools/images'");
    g_clear_error(&error);
    assert_pool(conn, HV_POOL_IMAGES, "/srv/turtles/pools/images");

    g_assert_false(hv_storage_ensure_pools(conn, "", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
}

static void test_ensure_pools_other_type(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autoptr(GError) error = NULL;
    g_autoptr(virStoragePool) pool = NULL;
    static const char xml[] = "<pool type='fs'><name>turtles-images</name>"
                              "<source><device path='/dev/vdz'/></source>"
                              "<target><path>/srv/t/pools/images</path></target></pool>";

    pool = virStoragePoolDefineXML(hv_conn_get_libvirt(conn), xml, 0);
    g_assert_nonnull(pool);
    g_assert_false(hv_storage_ensure_pools(conn, "/srv/t", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==,
                    "libvirt storage pool 'turtles-images' exists with type 'fs', "
                    "not 'dir' at '/srv/t/pools/images'");
    /* Left as it was. */
    g_assert_cmpint(virStoragePoolIsActive(pool), ==, 0);
}

/* Markup in the state dir is a path, not XML. */
static void test_ensure_pools_markup(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autoptr(GError) error = NULL;
    g_autoptr(virStoragePool) pool = NULL;
    g_autofree char *xml = NULL;

    g_assert_true(hv_storage_ensure_pools(conn, "/srv/a'b\"<c>&d", &error));
    g_assert_no_error(error);
    pool = virStoragePoolLookupByName(hv_conn_get_libvirt(conn), HV_POOL_IMAGES);
    xml = virStoragePoolGetXMLDesc(pool, 0);
    g_assert_nonnull(strstr(xml, "<path>/srv/a&apos;b&quot;&lt;c&gt;&amp;d/pools/images</path>"));
    /* And the second call recognises the same path. */
    g_assert_true(hv_storage_ensure_pools(conn, "/srv/a'b\"<c>&d", &error));
    g_assert_no_error(error);

    g_assert_false(hv_storage_ensure_pools(conn, "/srv/a\x01", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
}

static void test_volumes(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autoptr(GError) error = NULL;
    g_autofree char *path = NULL;
    g_autofree char *vol_xml = NULL;
    g_autofree char *backing = NULL;
    g_autoptr(virStoragePool) disks = NULL;
    g_autoptr(virStorageVol) vol = NULL;
    g_autoptr(virStorageVol) image = NULL;
    virStorageVolInfo info;

    g_assert_true(hv_storage_ensure_pools(conn, "/srv/turtles", &error));
    g_assert_no_error(error);

    g_assert_false(hv_volume_exists(conn, HV_POOL_DISKS, "web.qcow2", &error));
    g_assert_no_error(error);
    image = create_volume(conn, HV_POOL_IMAGES, "t--img.img", 3 * 1024 * 1024);

    path = hv_volume_create_overlay(conn, HV_POOL_DISKS, "web.qcow2",
                                    "/srv/turtles/pools/images/t--img.img", "raw", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(path, ==, "/srv/turtles/pools/disks/web.qcow2");
    g_assert_true(hv_volume_exists(conn, HV_POOL_DISKS, "web.qcow2", &error));
    g_assert_no_error(error);
    g_clear_pointer(&path, g_free);
    path = hv_volume_path(conn, HV_POOL_DISKS, "web.qcow2", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(path, ==, "/srv/turtles/pools/disks/web.qcow2");

    /* What libvirt was told: a qcow2 whose backing store is the image. */
    disks = virStoragePoolLookupByName(hv_conn_get_libvirt(conn), HV_POOL_DISKS);
    vol = virStorageVolLookupByName(disks, "web.qcow2");
    vol_xml = virStorageVolGetXMLDesc(vol, 0);
    g_assert_nonnull(strstr(vol_xml, "<format type='qcow2'/>"));
    backing = xml_element(vol_xml, "<backingStore>", "</backingStore>");
    g_assert_nonnull(backing);
    g_assert_nonnull(strstr(backing, "<path>/srv/turtles/pools/images/t--img.img</path>"));
    g_assert_nonnull(strstr(backing, "<format type='raw'/>"));
    /* The image's size. */
    g_assert_cmpint(virStorageVolGetInfo(vol, &info), ==, 0);
    g_assert_cmpuint(info.capacity, ==, 3 * 1024 * 1024);

    /* Taken. */
    g_assert_null(
        hv_volume_create_overlay(conn, HV_POOL_DISKS, "web.qcow2", "/x.img", "qcow2", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_LIBVIRT);
    g_clear_error(&error);

    g_assert_true(hv_volume_delete(conn, HV_POOL_DISKS, "web.qcow2", &error));
    g_assert_no_error(error);
    g_assert_false(hv_volume_exists(conn, HV_POOL_DISKS, "web.qcow2", &error));
    g_assert_no_error(error);
    g_assert_false(hv_volume_delete(conn, HV_POOL_DISKS, "web.qcow2", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(error->message, "web.qcow2"));
    g_clear_error(&error);
    g_assert_null(hv_volume_path(conn, HV_POOL_DISKS, "web.qcow2", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_NOT_FOUND);
    g_clear_error(&error);

    /* A missing pool is an error, not "no such volume". */
    g_assert_false(hv_volume_exists(conn, "no-such-pool", "web.qcow2", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(error->message, "no-such-pool"));
    g_clear_error(&error);
}

static void test_bad_arguments(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autoptr(GError) error = NULL;

    g_assert_true(hv_storage_ensure_pools(conn, "/srv/turtles", &error));
    g_assert_no_error(error);

    g_assert_false(hv_volume_exists(conn, HV_POOL_DISKS, "../images/x", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==,
                    "invalid volume name '../images/x': use [a-z0-9][a-z0-9.-]*, at most 255 "
                    "characters");
    g_clear_error(&error);
    g_assert_false(hv_volume_delete(conn, HV_POOL_DISKS, "Web", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_null(hv_volume_path(conn, HV_POOL_DISKS, ".hidden", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_null(hv_volume_upload_begin(conn, HV_POOL_IMAGES, "a/b", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_null(hv_volume_upload_begin(conn, NULL, "a", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_clear_error(&error);

    g_assert_null(
        hv_volume_create_overlay(conn, HV_POOL_DISKS, "o.qcow2", "/srv/i.img", "vmdk", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "unknown backing format 'vmdk' (use raw or qcow2)");
    g_clear_error(&error);
    g_assert_null(
        hv_volume_create_overlay(conn, HV_POOL_DISKS, "o.qcow2", "nbd:host:10809", "raw", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "backing path 'nbd:host:10809' is not absolute");
    g_clear_error(&error);
    g_assert_null(
        hv_volume_create_overlay(conn, HV_POOL_DISKS, "O.qcow2", "/i.img", "raw", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_null(
        hv_volume_create_overlay(conn, "no-such-pool", "o.qcow2", "/i.img", "raw", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(hv_volume_exists(conn, HV_POOL_DISKS, "o.qcow2", &error));
    g_assert_no_error(error);
}

/* The test driver cannot stream: begin must fail and leave no volume. */
static void test_upload_unsupported(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autoptr(GError) error = NULL;
    g_autoptr(HvUpload) upload = NULL;
    g_autoptr(virStorageVol) taken = NULL;

    g_assert_true(hv_storage_ensure_pools(conn, "/srv/turtles", &error));
    g_assert_no_error(error);
    upload = hv_volume_upload_begin(conn, HV_POOL_IMAGES, "t--kernel.img", &error);
    g_assert_null(upload);
    g_assert_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED);
    g_assert_nonnull(strstr(error->message, "t--kernel.img"));
    g_clear_error(&error);
    g_assert_false(hv_volume_exists(conn, HV_POOL_IMAGES, "t--kernel.img", &error));
    g_assert_no_error(error);

    /* An existing volume is refused and left alone. */
    taken = create_volume(conn, HV_POOL_IMAGES, "taken.img", 4096);
    upload = hv_volume_upload_begin(conn, HV_POOL_IMAGES, "taken.img", &error);
    g_assert_null(upload);
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==,
                    "volume 'taken.img' already exists in storage pool 'turtles-images'");
    g_clear_error(&error);
    g_assert_true(hv_volume_exists(conn, HV_POOL_IMAGES, "taken.img", &error));
    g_assert_no_error(error);

    upload = hv_volume_upload_begin(conn, "no-such-pool", "x.img", &error);
    g_assert_null(upload);
    g_assert_error(error, HV_ERROR, HV_ERROR_NOT_FOUND);

    hv_upload_free(NULL);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* libvirt prints every error on stderr by default; ours are expected. */
    virSetErrorFunc(NULL, quiet_libvirt);

    g_test_add_func("/storage/names", test_names);
    g_test_add_func("/storage/pool-dir", test_pool_dir);
    g_test_add_func("/storage/ensure-pools", test_ensure_pools);
    g_test_add_func("/storage/ensure-pools/other-type", test_ensure_pools_other_type);
    g_test_add_func("/storage/ensure-pools/markup", test_ensure_pools_markup);
    g_test_add_func("/storage/volumes", test_volumes);
    g_test_add_func("/storage/bad-arguments", test_bad_arguments);
    g_test_add_func("/storage/upload-unsupported", test_upload_unsupported);
    return g_test_run();
}
