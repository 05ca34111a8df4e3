/* hvcore/imagecheck on fixtures built in a temporary directory at run time
 * (qemu-img create, and bytes written here): every verdict and its message,
 * the reference L1 kernel and initrd when $TURTLES_BUILD/l1 has them, the
 * qemu-img JSON rules on real and crafted output, and a qemu-img that
 * hangs, fails or prints nonsense (fake ones written as shell scripts). */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "hvcore/error.h"
#include "hvcore/imagecheck.h"

typedef struct {
    char *dir;
} Fixture;

static void fixture_setup(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    fx->dir = g_dir_make_tmp("turtles-imagecheck-XXXXXX", &error);
    g_assert_no_error(error);
}

static void remove_tree(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);

        if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK))
            remove_tree(path);
        else
            g_unlink(path);
    }
    g_rmdir(dir);
}

static void fixture_teardown(Fixture *fx, gconstpointer data)
{
    (void)data;
    remove_tree(fx->dir);
    g_free(fx->dir);
}

static char *path_in(Fixture *fx, const char *name)
{
    return g_build_filename(fx->dir, name, NULL);
}

static char *write_file(Fixture *fx, const char *name, const void *data, gsize len)
{
    g_autoptr(GError) error = NULL;
    char *path = path_in(fx, name);

    g_file_set_contents(path, data, (gssize)len, &error);
    g_assert_no_error(error);
    return path;
}

static gboolean have_qemu_img(void)
{
    g_autofree char *found = g_find_program_in_path("qemu-img");

    if (!found)
        g_test_skip("qemu-img is not installed");
    return found != NULL;
}

/* Runs argv (no shell) and asserts it succeeds; its stdout. */
static char *run(const char *const *argv)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *err = NULL;
    char *out = NULL;
    int status = 0;

    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status,
                 &error);
    g_assert_no_error(error);
    if (!g_spawn_check_wait_status(status, NULL))
        g_error("%s failed: %s", argv[0], err);
    return out;
}

static char *qemu_img_create(Fixture *fx, const char *name, const char *format,
                             const char *option_flag, const char *option)
{
    char *path = path_in(fx, name);
    const char *argv[10];
    int n = 0;

    argv[n++] = "qemu-img";
    argv[n++] = "create";
    argv[n++] = "-q";
    argv[n++] = "-f";
    argv[n++] = format;
    if (option_flag) {
        argv[n++] = option_flag;
        argv[n++] = option;
    }
    argv[n++] = path;
    argv[n++] = "1M";
    argv[n] = NULL;
    g_free(run(argv));
    return path;
}

static void assert_ok(const char *path, const char *format, HvImageKind kind)
{
    g_autoptr(GError) error = NULL;
    gboolean ok = hv_image_check(path, format, kind, &error);

    g_assert_no_error(error);
    g_assert_true(ok);
}

static void assert_rejected(const char *path, const char *format, HvImageKind kind, int code,
                            const char *message)
{
    g_autoptr(GError) error = NULL;
    gboolean ok = hv_image_check(path, format, kind, &error);

    g_assert_false(ok);
    g_assert_error(error, HV_ERROR, code);
    g_assert_cmpstr(error->message, ==, message);
}

/* ---- disks -------------------------------------------------------------- */

static void test_qcow2_plain(Fixture *fx, gconstpointer data)
{
    g_autofree char *path = NULL;

    (void)data;
    if (!have_qemu_img())
        return;
    path = qemu_img_create(fx, "plain.qcow2", "qcow2", NULL, NULL);
    assert_ok(path, "qcow2", HV_IMAGE_DISK);
    /* The reverse lie: a qcow2 passed off as raw. */
    assert_rejected(path, "raw", HV_IMAGE_DISK, HV_ERROR_INVALID,
                    "declared raw but the data is qcow2");
}

static void test_qcow2_backing_file(Fixture *fx, gconstpointer data)
{
    g_autofree char *path = NULL;

    (void)data;
    if (!have_qemu_img())
        return;
    /* -u: the backing file need not exist for the header to name it. */
    {
        g_autofree char *p = path_in(fx, "backing.qcow2");
        const char *argv[] = {"qemu-img",      "create", "-q",  "-u", "-f", "qcow2", "-b",
                              "/etc/hostname", "-F",     "raw", p,    "1M", NULL};

        g_free(run(argv));
        path = g_steal_pointer(&p);
    }
    assert_rejected(path, "qcow2", HV_IMAGE_DISK, HV_ERROR_INVALID,
                    "qcow2 image has a backing file '/etc/hostname': not allowed");
    assert_rejected(path, "raw", HV_IMAGE_DISK, HV_ERROR_INVALID,
                    "declared raw but the data is qcow2");
}

static void test_qcow2_data_file(Fixture *fx, gconstpointer data)
{
    g_autofree char *data_path = path_in(fx, "data.raw");
    g_autofree char *option = g_strdup_printf("data_file=%s", data_path);
    g_autofree char *path = NULL;
    g_autofree char *expected = NULL;

    (void)data;
    if (!have_qemu_img())
        return;
    path = qemu_img_create(fx, "datafile.qcow2", "qcow2", "-o", option);
    expected =
        g_strdup_printf("qcow2 image has an external data file '%s': not allowed", data_path);
    assert_rejected(path, "qcow2", HV_IMAGE_DISK, HV_ERROR_INVALID, expected);
    /* The check happens before qemu-img runs: a data file that is a FIFO
     * would otherwise hang it, and one that is missing would change the
     * message into qemu-img's. */
    g_assert_cmpint(g_unlink(data_path), ==, 0);
    g_assert_cmpint(mkfifo(data_path, 0600), ==, 0);
    assert_rejected(path, "qcow2", HV_IMAGE_DISK, HV_ERROR_INVALID, expected);
}

static guint count_open_fds(void)
{
    g_autoptr(GDir) dir = g_dir_open("/proc/self/fd", 0, NULL);
    guint n = 0;

    g_assert_nonnull(dir);
    while (g_dir_read_name(dir))
        n++;
    return n;
}

/* GSubprocess closes a child's pipes in a worker thread, a moment after
 * the call returns: wait (at most 5 s) until at most @n are open. */
static guint wait_open_fds(guint n)
{
    guint now = count_open_fds();
    int i;

    for (i = 0; i < 500 && now > n; i++) {
        g_usleep(10 * 1000);
        now = count_open_fds();
    }
    return now;
}

/* The count once it holds still for 20 ms. */
static guint settled_open_fds(void)
{
    guint before = count_open_fds();
    int i;

    for (i = 0; i < 100; i++) {
        guint now;

        g_usleep(20 * 1000);
        now = count_open_fds();
        if (now == before)
            break;
        before = now;
    }
    return before;
}

static void test_raw(Fixture *fx, gconstpointer data)
{
    guint8 bytes[65536];
    g_autofree char *path = NULL;
    g_autofree char *tiny = NULL;
    guint fds;
    gsize i;

    (void)data;
    if (!have_qemu_img())
        return;
    for (i = 0; i < sizeof(bytes); i++)
        bytes[i] = (guint8)(i * 7 + 3);
    path = write_file(fx, "disk.raw", bytes, sizeof(bytes));
    assert_ok(path, "raw", HV_IMAGE_DISK);
    /* Raw bytes declared qcow2: qemu-img probes raw. */
    assert_rejected(path, "qcow2", HV_IMAGE_DISK, HV_ERROR_INVALID,
                    "declared qcow2 but the data is raw");
    /* Five bytes are a disk of one sector. */
    tiny = write_file(fx, "tiny.raw", "hello", 5);
    assert_ok(tiny, "raw", HV_IMAGE_DISK);

    /* A daemon checks images for months: no descriptor may leak.  The
     * baseline is what is open once the closes above have landed. */
    fds = settled_open_fds();
    for (i = 0; i < 10; i++) {
        assert_ok(path, "raw", HV_IMAGE_DISK);
        assert_rejected(path, "qcow2", HV_IMAGE_DISK, HV_ERROR_INVALID,
                        "declared qcow2 but the data is raw");
    }
    g_assert_cmpuint(wait_open_fds(fds), ==, fds);
}

static void test_other_formats(Fixture *fx, gconstpointer data)
{
    g_autofree char *vdi = NULL;
    g_autofree char *vmdk = NULL;
    g_autofree char *desc = NULL;
    g_autofree char *extent = path_in(fx, "extent");
    g_autofree char *descriptor = NULL;

    (void)data;
    if (!have_qemu_img())
        return;
    /* Found by qemu-img's probe. */
    vdi = qemu_img_create(fx, "disk.vdi", "vdi", NULL, NULL);
    assert_rejected(vdi, "raw", HV_IMAGE_DISK, HV_ERROR_INVALID,
                    "declared raw but the data is vdi");
    assert_rejected(vdi, "qcow2", HV_IMAGE_DISK, HV_ERROR_INVALID,
                    "declared qcow2 but the data is vdi");
    /* Found before qemu-img would open the extents they name. */
    vmdk = qemu_img_create(fx, "disk.vmdk", "vmdk", NULL, NULL);
    assert_rejected(vmdk, "raw", HV_IMAGE_DISK, HV_ERROR_INVALID,
                    "declared raw but the data is vmdk");
    /* An extent that is a FIFO would hang qemu-img: the verdict must come
     * before it runs. */
    g_assert_cmpint(mkfifo(extent, 0600), ==, 0);
    descriptor = g_strdup_printf("# Disk DescriptorFile\n"
                                 "  \n"
                                 "version=1\n"
                                 "CID=fffffffe\n"
                                 "createType=\"monolithicFlat\"\n"
                                 "RW 2048 FLAT \"%s\" 0\n",
                                 extent);
    desc = write_file(fx, "desc.vmdk", descriptor, strlen(descriptor));
    assert_rejected(desc, "raw", HV_IMAGE_DISK, HV_ERROR_INVALID,
                    "declared raw but the data is vmdk");
}

/* ---- kernels ------------------------------------------------------------ */

typedef struct {
    gboolean hdrs;
    gboolean signature;
    guint16 version;
    guint8 loadflags;
    guint32 syssize_extra; /* paragraphs claimed beyond the file */
} FakeKernel;

#define FAKE_KERNEL_SIZE 8192
#define FAKE_SETUP_SECTS 4

/* The fields of the Linux boot protocol's setup header that matter. */
static char *write_fake_kernel(Fixture *fx, const char *name, const FakeKernel *k)
{
    guint8 image[FAKE_KERNEL_SIZE] = {0};
    guint32 syssize = (FAKE_KERNEL_SIZE - (FAKE_SETUP_SECTS + 1) * 512) / 16 + k->syssize_extra;

    image[0x1F1] = FAKE_SETUP_SECTS;
    image[0x1F4] = syssize & 0xff;
    image[0x1F5] = (syssize >> 8) & 0xff;
    image[0x1F6] = (syssize >> 16) & 0xff;
    image[0x1F7] = (syssize >> 24) & 0xff;
    if (k->signature) {
        image[0x1FE] = 0x55;
        image[0x1FF] = 0xAA;
    }
    if (k->hdrs)
        memcpy(image + 0x202, "HdrS", 4);
    image[0x206] = k->version & 0xff;
    image[0x207] = k->version >> 8;
    image[0x211] = k->loadflags;
    return write_file(fx, name, image, sizeof(image));
}

static void test_kernel_fake(Fixture *fx, gconstpointer data)
{
    const FakeKernel good = {TRUE, TRUE, 0x020f, 0x01, 0};
    FakeKernel k;
    g_autofree char *path = NULL;
    g_autofree char *no_hdrs = NULL;
    g_autofree char *no_sig = NULL;
    g_autofree char *old = NULL;
    g_autofree char *zimage = NULL;
    g_autofree char *truncated = NULL;

    (void)data;
    if (!have_qemu_img())
        return;
    path = write_fake_kernel(fx, "bzImage", &good);
    assert_ok(path, "raw", HV_IMAGE_KERNEL);
    assert_rejected(path, "qcow2", HV_IMAGE_KERNEL, HV_ERROR_INVALID,
                    "a kernel must be raw, not qcow2");

    k = good;
    k.hdrs = FALSE;
    no_hdrs = write_fake_kernel(fx, "no-hdrs", &k);
    assert_rejected(no_hdrs, "raw", HV_IMAGE_KERNEL, HV_ERROR_INVALID,
                    "image is not a bzImage kernel (no HdrS header)");
    k = good;
    k.signature = FALSE;
    no_sig = write_fake_kernel(fx, "no-signature", &k);
    assert_rejected(no_sig, "raw", HV_IMAGE_KERNEL, HV_ERROR_INVALID,
                    "image is not a bzImage kernel (no 0x55AA boot signature)");
    k = good;
    k.version = 0x0104;
    old = write_fake_kernel(fx, "old", &k);
    assert_rejected(old, "raw", HV_IMAGE_KERNEL, HV_ERROR_INVALID,
                    "kernel boot protocol 1.04 is too old (2.00 or later needed)");
    k = good;
    k.loadflags = 0;
    zimage = write_fake_kernel(fx, "zImage", &k);
    assert_rejected(zimage, "raw", HV_IMAGE_KERNEL, HV_ERROR_INVALID,
                    "image is a zImage kernel, not a bzImage (LOADED_HIGH is not set)");
    k = good;
    k.syssize_extra = 1;
    truncated = write_fake_kernel(fx, "truncated", &k);
    assert_rejected(truncated, "raw", HV_IMAGE_KERNEL, HV_ERROR_INVALID,
                    "kernel is truncated: its boot header needs 8208 bytes, the file has 8192");
}

static void test_kernel_not_a_kernel(Fixture *fx, gconstpointer data)
{
    static const char text[] = "This is not a kernel, just some text that a tenant uploaded.\n";
    g_autofree char *path = NULL;
    g_autofree char *short_path = NULL;
    g_autofree char *qcow2 = NULL;
    g_autofree char *long_text = g_strnfill(4096, 'x');
    g_autofree char *long_path = NULL;

    (void)data;
    if (!have_qemu_img())
        return;
    short_path = write_file(fx, "short.txt", text, strlen(text));
    assert_rejected(short_path, "raw", HV_IMAGE_KERNEL, HV_ERROR_INVALID,
                    "image is not a bzImage kernel (61 bytes: too short for a boot header)");
    long_path = write_file(fx, "long.txt", long_text, 4096);
    assert_rejected(long_path, "raw", HV_IMAGE_KERNEL, HV_ERROR_INVALID,
                    "image is not a bzImage kernel (no HdrS header)");
    /* Not valid as a disk either way, but what it is comes first. */
    qcow2 = qemu_img_create(fx, "kernel.qcow2", "qcow2", NULL, NULL);
    assert_rejected(qcow2, "raw", HV_IMAGE_KERNEL, HV_ERROR_INVALID,
                    "declared raw but the data is qcow2");
    path = write_file(fx, "empty", "", 0);
    assert_rejected(path, "raw", HV_IMAGE_KERNEL, HV_ERROR_INVALID, "kernel is empty");
}

static char *reference_file(const char *name)
{
    const char *build = g_getenv("TURTLES_BUILD");
    g_autofree char *path = g_build_filename(build ? build : "build", "l1", name, NULL);

    if (!g_file_test(path, G_FILE_TEST_IS_REGULAR))
        return NULL;
    /* The checker wants absolute paths. */
    return g_canonicalize_filename(path, NULL);
}

static void test_reference_l1(void)
{
    g_autofree char *kernel = reference_file("vmlinuz");
    g_autofree char *initrd = reference_file("initrd.img");

    if (!have_qemu_img())
        return;
    if (!kernel || !initrd) {
        g_test_skip("no reference L1 image in $TURTLES_BUILD/l1 (make l1-image)");
        return;
    }
    assert_ok(kernel, "raw", HV_IMAGE_KERNEL);
    assert_ok(initrd, "raw", HV_IMAGE_INITRD);
    /* A kernel is no initrd, and the other way round. */
    assert_rejected(initrd, "raw", HV_IMAGE_KERNEL, HV_ERROR_INVALID,
                    "image is not a bzImage kernel (no HdrS header)");
    assert_rejected(kernel, "raw", HV_IMAGE_INITRD, HV_ERROR_INVALID,
                    "initrd is neither a cpio archive nor a compressed one "
                    "(gzip, bzip2, lzma, xz, lzo, lz4, zstd)");
}

/* ---- initrds ------------------------------------------------------------ */

static void test_initrd(Fixture *fx, gconstpointer data)
{
    /* The first bytes of a cpio "newc" archive's first header. */
    static const char cpio[] = "070701000000010000416d000000000000000000000001";
    static const guint8 gzip[] = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03, 0x03, 0x00};
    static const guint8 zstd[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 0x01, 0x00};
    static const guint8 padded[] = {0, 0, 0, 0, 0xfd, '7', 'z', 'X', 'Z', 0x00, 0, 0};
    static const char text[] = "#!/bin/sh\necho not an initramfs\n";
    g_autofree char *empty = NULL;
    g_autofree char *p_cpio = NULL;
    g_autofree char *p_gzip = NULL;
    g_autofree char *p_zstd = NULL;
    g_autofree char *p_padded = NULL;
    g_autofree char *p_text = NULL;
    g_autofree char *p_zeros = NULL;
    guint8 zeros[4096] = {0};

    (void)data;
    if (!have_qemu_img())
        return;
    empty = write_file(fx, "empty.initrd", "", 0);
    assert_rejected(empty, "raw", HV_IMAGE_INITRD, HV_ERROR_INVALID, "initrd is empty");
    assert_rejected(empty, "qcow2", HV_IMAGE_INITRD, HV_ERROR_INVALID,
                    "an initrd must be raw, not qcow2");
    p_cpio = write_file(fx, "cpio", cpio, strlen(cpio));
    assert_ok(p_cpio, "raw", HV_IMAGE_INITRD);
    p_gzip = write_file(fx, "gzip", gzip, sizeof(gzip));
    assert_ok(p_gzip, "raw", HV_IMAGE_INITRD);
    p_zstd = write_file(fx, "zstd", zstd, sizeof(zstd));
    assert_ok(p_zstd, "raw", HV_IMAGE_INITRD);
    /* The kernel skips zero padding before (and between) archives. */
    p_padded = write_file(fx, "padded-xz", padded, sizeof(padded));
    assert_ok(p_padded, "raw", HV_IMAGE_INITRD);
    p_text = write_file(fx, "script", text, strlen(text));
    assert_rejected(p_text, "raw", HV_IMAGE_INITRD, HV_ERROR_INVALID,
                    "initrd is neither a cpio archive nor a compressed one "
                    "(gzip, bzip2, lzma, xz, lzo, lz4, zstd)");
    p_zeros = write_file(fx, "zeros", zeros, sizeof(zeros));
    assert_rejected(p_zeros, "raw", HV_IMAGE_INITRD, HV_ERROR_INVALID,
                    "initrd is neither a cpio archive nor a compressed one "
                    "(gzip, bzip2, lzma, xz, lzo, lz4, zstd)");
}

/* ---- arguments and files ------------------------------------------------ */

static void test_arguments(Fixture *fx, gconstpointer data)
{
    g_autofree char *path = write_file(fx, "disk", "data", 4);
    g_autofree char *missing = path_in(fx, "missing");
    g_autofree char *fifo = path_in(fx, "fifo");
    g_autoptr(GError) error = NULL;
    HvImageKind kind = HV_IMAGE_DISK;

    (void)data;
    assert_rejected(path, "vmdk", HV_IMAGE_DISK, HV_ERROR_INVALID,
                    "unknown image format 'vmdk' (use raw or qcow2)");
    assert_rejected(path, NULL, HV_IMAGE_DISK, HV_ERROR_INVALID,
                    "unknown image format '(null)' (use raw or qcow2)");
    assert_rejected("disk", "raw", HV_IMAGE_DISK, HV_ERROR_INVALID,
                    "image path 'disk' is not absolute");
    assert_rejected(path, "raw", (HvImageKind)42, HV_ERROR_INVALID, "unknown image kind 42");
    g_assert_false(hv_image_check(missing, "raw", HV_IMAGE_DISK, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(error->message, missing));
    g_clear_error(&error);
    g_assert_false(hv_image_check(fx->dir, "raw", HV_IMAGE_DISK, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_assert_nonnull(strstr(error->message, "is not a regular file"));
    g_clear_error(&error);
    /* Opened without blocking, then refused. */
    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    g_assert_false(hv_image_check(fifo, "raw", HV_IMAGE_DISK, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_clear_error(&error);

    g_assert_cmpstr(hv_image_kind_to_string(HV_IMAGE_KERNEL), ==, "kernel");
    g_assert_cmpstr(hv_image_kind_to_string(HV_IMAGE_INITRD), ==, "initrd");
    g_assert_cmpstr(hv_image_kind_to_string(HV_IMAGE_DISK), ==, "disk");
    g_assert_true(hv_image_kind_from_string("initrd", &kind));
    g_assert_cmpint(kind, ==, HV_IMAGE_INITRD);
    g_assert_true(hv_image_kind_from_string("kernel", NULL));
    g_assert_false(hv_image_kind_from_string("Kernel", &kind));
    g_assert_false(hv_image_kind_from_string(NULL, &kind));
    g_assert_cmpint(kind, ==, HV_IMAGE_INITRD);
}

/* ---- qemu-img's JSON ------------------------------------------------------ */

static void assert_info_rejected(const char *json, const char *format, const char *message)
{
    g_autoptr(GError) error = NULL;
    guint64 size = 7;

    g_assert_false(hv_image_check_qemu_info(json, strlen(json), format, &size, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, message);
    g_assert_cmpuint(size, ==, 7);
}

/* The JSON rules on what qemu-img really prints for the fixtures: the
 * header checks come first in hv_image_check, so this is where the JSON
 * rules meet real output. */
static void test_info_real_output(Fixture *fx, gconstpointer data)
{
    g_autofree char *data_path = path_in(fx, "data.raw");
    g_autofree char *option = g_strdup_printf("data_file=%s", data_path);
    g_autofree char *plain = NULL;
    g_autofree char *with_data = NULL;
    g_autofree char *backing = path_in(fx, "backing.qcow2");
    g_autofree char *out = NULL;
    g_autofree char *expected = NULL;
    g_autoptr(GError) error = NULL;
    guint64 size = 0;

    (void)data;
    if (!have_qemu_img())
        return;
    plain = qemu_img_create(fx, "plain.qcow2", "qcow2", NULL, NULL);
    {
        const char *argv[] = {"qemu-img", "info",  "--output=json", "-U",
                              "-f",       "qcow2", plain,           NULL};

        out = run(argv);
    }
    g_assert_true(hv_image_check_qemu_info(out, strlen(out), "qcow2", &size, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(size, ==, 1024 * 1024);
    assert_info_rejected(out, "raw", "declared raw but qemu-img reads the image as qcow2");
    g_clear_pointer(&out, g_free);

    {
        const char *create[] = {"qemu-img",      "create", "-q",  "-u",    "-f", "qcow2", "-b",
                                "/etc/hostname", "-F",     "raw", backing, "1M", NULL};
        const char *argv[] = {"qemu-img", "info",  "--output=json", "-U",
                              "-f",       "qcow2", backing,         NULL};

        g_free(run(create));
        out = run(argv);
    }
    assert_info_rejected(out, "qcow2",
                         "qcow2 image has a backing file '/etc/hostname': not allowed");
    g_clear_pointer(&out, g_free);

    with_data = qemu_img_create(fx, "datafile.qcow2", "qcow2", "-o", option);
    {
        const char *argv[] = {"qemu-img", "info",  "--output=json", "-U",
                              "-f",       "qcow2", with_data,       NULL};

        out = run(argv);
    }
    expected =
        g_strdup_printf("qcow2 image has an external data file '%s': not allowed", data_path);
    assert_info_rejected(out, "qcow2", expected);
}

static void test_info_crafted(void)
{
    g_autoptr(GError) error = NULL;
    guint64 size = 0;
    static const char good[] = "{\"format\": \"raw\", \"virtual-size\": 4096}\n";

    g_assert_true(hv_image_check_qemu_info(good, strlen(good), "raw", &size, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(size, ==, 4096);
    /* Not NUL-terminated: only len bytes count. */
    g_assert_true(hv_image_check_qemu_info("{\"format\":\"raw\",\"virtual-size\":1}xyz", 33, "raw",
                                           NULL, &error));
    g_assert_no_error(error);
    g_assert_true(hv_image_check_qemu_info(" {\"format\":\"raw\",\"virtual-size\":1}\n\n", 36,
                                           "raw", NULL, &error));
    g_assert_no_error(error);

    assert_info_rejected("", "raw", "qemu-img info printed no JSON object");
    assert_info_rejected("[1, 2]", "raw", "qemu-img info printed no JSON object");
    assert_info_rejected("{\"format\": \"raw\",}", "raw", "qemu-img info printed no JSON object");
    assert_info_rejected("{\"format\": \"raw\", \"virtual-size\": 1} {}", "raw",
                         "qemu-img info printed no JSON object");
    assert_info_rejected("{\"virtual-size\": 1}", "raw",
                         "declared raw but qemu-img reads the image as ?");
    assert_info_rejected("{\"format\": \"raw\"}", "raw", "qemu-img reports no virtual size");
    assert_info_rejected("{\"format\": \"raw\", \"virtual-size\": \"1\"}", "raw",
                         "qemu-img reports no virtual size");
    assert_info_rejected("{\"format\": \"raw\", \"virtual-size\": 0}", "raw",
                         "image has a virtual size of 0 bytes");
    assert_info_rejected("{\"format\": \"raw\", \"virtual-size\": -5}", "raw",
                         "image has a virtual size of -5 bytes");
    assert_info_rejected("{\"format\": \"qcow2\", \"virtual-size\": 1, "
                         "\"full-backing-filename\": \"/etc/shadow\"}",
                         "qcow2", "qcow2 image has a backing file '/etc/shadow': not allowed");
    /* Names from the image are quoted safely. */
    assert_info_rejected("{\"format\": \"qcow2\", \"virtual-size\": 1, "
                         "\"backing-filename\": \"a\\nb\\u0007\"}",
                         "qcow2", "qcow2 image has a backing file 'a\\x0ab\\x07': not allowed");
    assert_info_rejected("{\"format\": \"qcow2\", \"virtual-size\": 1, \"encrypted\": true}",
                         "qcow2", "image is encrypted: not allowed");
    assert_info_rejected("{\"format\": \"qcow2\", \"virtual-size\": 1, \"format-specific\": "
                         "{\"type\": \"qcow2\", \"data\": {\"encrypt\": {\"format\": \"luks\"}}}}",
                         "qcow2", "image is encrypted: not allowed");
    assert_info_rejected("{\"format\": \"qcow2\", \"virtual-size\": 1, \"format-specific\": "
                         "{\"type\": \"qcow2\", \"data\": {\"corrupt\": true}}}",
                         "qcow2", "qcow2 image is marked corrupt");
    assert_info_rejected("{\"format\": \"qcow2\", \"virtual-size\": 1, \"format-specific\": "
                         "{\"type\": \"qcow2\", \"data\": {\"data-file\": 3}}}",
                         "qcow2", "qcow2 image has an external data file '?': not allowed");
}

/* ---- headers, without files ---------------------------------------------- */

static void assert_header_rejected(const void *bytes, gsize len, guint64 size, const char *format,
                                   HvImageKind kind, const char *message)
{
    g_autoptr(GError) error = NULL;

    g_assert_false(hv_image_check_header(bytes, len, size, format, kind, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, message);
}

static void put_be32(guint8 *p, guint32 v)
{
    p[0] = v >> 24;
    p[1] = (v >> 16) & 0xff;
    p[2] = (v >> 8) & 0xff;
    p[3] = v & 0xff;
}

/* A qcow2 v3 header with the external data file bit set, and header
 * extensions that are well-formed, truncated or lying about their length:
 * the walk must stay inside the bytes it was given. */
static void test_header_qcow2_extensions(void)
{
    guint8 h[512] = {0};
    g_autoptr(GError) error = NULL;

    memcpy(h, "QFI\xfb", 4);
    put_be32(h + 4, 3);     /* version */
    h[79] = 0x04;           /* incompatible_features: external data file */
    put_be32(h + 100, 104); /* header_length */
    put_be32(h + 104, 0x44415441);
    put_be32(h + 108, 9);
    memcpy(h + 112, "/dev/sda\x01", 9);
    assert_header_rejected(h, sizeof(h), sizeof(h), "qcow2", HV_IMAGE_DISK,
                           "qcow2 image has an external data file '/dev/sda\\x01': not allowed");
    /* The name runs past the bytes given: no name, same verdict. */
    put_be32(h + 108, 4096);
    assert_header_rejected(h, sizeof(h), sizeof(h), "qcow2", HV_IMAGE_DISK,
                           "qcow2 image has an external data file: not allowed");
    put_be32(h + 108, 0xffffffff);
    assert_header_rejected(h, sizeof(h), sizeof(h), "qcow2", HV_IMAGE_DISK,
                           "qcow2 image has an external data file: not allowed");
    /* header_length far outside. */
    put_be32(h + 100, 0xfffffff0);
    assert_header_rejected(h, sizeof(h), sizeof(h), "qcow2", HV_IMAGE_DISK,
                           "qcow2 image has an external data file: not allowed");
    /* Another extension first, then ours. */
    put_be32(h + 100, 104);
    put_be32(h + 104, 0xe2792aca); /* backing file format name */
    put_be32(h + 108, 3);
    memcpy(h + 112, "raw", 3);
    put_be32(h + 120, 0x44415441);
    put_be32(h + 124, 4);
    memcpy(h + 128, "/etc", 4);
    assert_header_rejected(h, sizeof(h), sizeof(h), "qcow2", HV_IMAGE_DISK,
                           "qcow2 image has an external data file '/etc': not allowed");
    /* Without the bit the header is for qemu-img to judge. */
    h[79] = 0;
    g_assert_true(hv_image_check_header(h, sizeof(h), sizeof(h), "qcow2", HV_IMAGE_DISK, &error));
    g_assert_no_error(error);
    /* A version 2 header has no feature bits: the bit's place is L1 data. */
    h[79] = 0x04;
    put_be32(h + 4, 2);
    g_assert_true(hv_image_check_header(h, sizeof(h), sizeof(h), "qcow2", HV_IMAGE_DISK, &error));
    g_assert_no_error(error);
    /* Any length of a header, however short, is judged without a crash. */
    for (gsize len = 0; len <= sizeof(h); len++) {
        hv_image_check_header(h, len, sizeof(h), "qcow2", HV_IMAGE_DISK, NULL);
        hv_image_check_header(h, len, sizeof(h), "raw", HV_IMAGE_KERNEL, NULL);
        hv_image_check_header(h, len, sizeof(h), "raw", HV_IMAGE_INITRD, NULL);
    }
}

static void test_header_vmdk(void)
{
    static const char crlf[] = "# Disk DescriptorFile\r\n\r\nversion=1\r\n";
    static const char later[] = "# comment\nCID=1\nversion=1\n";
    g_autoptr(GError) error = NULL;

    assert_header_rejected("KDMV\x01\0\0\0", 8, 8, "raw", HV_IMAGE_DISK,
                           "declared raw but the data is vmdk");
    assert_header_rejected("COWD", 4, 4, "qcow2", HV_IMAGE_DISK,
                           "declared qcow2 but the data is vmdk");
    assert_header_rejected(crlf, strlen(crlf), strlen(crlf), "raw", HV_IMAGE_DISK,
                           "declared raw but the data is vmdk");
    /* qemu only takes "version=" as the first line that counts. */
    g_assert_true(
        hv_image_check_header(later, strlen(later), strlen(later), "raw", HV_IMAGE_DISK, &error));
    g_assert_no_error(error);
}

/* ---- a misbehaving qemu-img --------------------------------------------- */

static char *write_script(Fixture *fx, const char *name, const char *body)
{
    g_autofree char *text = g_strdup_printf("#!/bin/sh\n%s\n", body);
    char *path = write_file(fx, name, text, strlen(text));

    g_assert_cmpint(g_chmod(path, 0755), ==, 0);
    return path;
}

static void test_fake_qemu_img(Fixture *fx, gconstpointer data)
{
    g_autofree char *disk = write_file(fx, "disk", "some bytes", 10);
    g_autofree char *hang = write_script(fx, "hang", "exec sleep 60");
    g_autofree char *fail = write_script(fx, "fail",
                                         "echo \"qemu-img: Could not open: boom\" >&2\n"
                                         "echo second line >&2\nexit 1");
    g_autofree char *garbage = write_script(fx, "garbage", "echo 'not json'");
    g_autofree char *no_format = write_script(fx, "noformat", "echo '{}'");
    g_autofree char *args_log = path_in(fx, "args");
    g_autofree char *logging_body =
        g_strdup_printf("printf 'LC_ALL=%%s|' \"$LC_ALL\" >>'%s'\n"
                        "for a in \"$@\"; do printf '%%s|' \"$a\" >>'%s'; done; echo >>'%s'\n"
                        "echo '{\"format\": \"raw\", \"virtual-size\": 10}'",
                        args_log, args_log, args_log);
    g_autofree char *logging = write_script(fx, "logging", logging_body);
    g_autofree char *missing = path_in(fx, "no-such-qemu-img");
    g_autofree char *logged = NULL;
    g_autofree char *expected_log = NULL;
    g_autoptr(GError) error = NULL;
    gint64 start;

    (void)data;
    start = g_get_monotonic_time();
    g_assert_false(hv_image_check_full(disk, "raw", HV_IMAGE_DISK, hang, 300, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_FAILED);
    g_assert_nonnull(strstr(error->message, "did not finish within 300 ms"));
    /* Killed, not waited for. */
    g_assert_cmpint(g_get_monotonic_time() - start, <, 10 * G_USEC_PER_SEC);
    g_clear_error(&error);

    g_assert_false(hv_image_check_full(disk, "raw", HV_IMAGE_DISK, fail, 5000, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==,
                    "qemu-img cannot read the image: qemu-img: Could not open: boom");
    g_clear_error(&error);

    g_assert_false(hv_image_check_full(disk, "raw", HV_IMAGE_DISK, garbage, 5000, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "qemu-img info printed no JSON object");
    g_clear_error(&error);

    g_assert_false(hv_image_check_full(disk, "raw", HV_IMAGE_DISK, no_format, 5000, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "qemu-img info reports no format");
    g_clear_error(&error);

    g_assert_false(hv_image_check_full(disk, "raw", HV_IMAGE_DISK, missing, 5000, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_FAILED);
    g_assert_nonnull(strstr(error->message, "cannot run"));
    g_clear_error(&error);

    /* The exact command lines: probe first, then read as declared. */
    g_assert_true(hv_image_check_full(disk, "raw", HV_IMAGE_DISK, logging, 5000, &error));
    g_assert_no_error(error);
    g_file_get_contents(args_log, &logged, NULL, &error);
    g_assert_no_error(error);
    expected_log = g_strdup_printf("LC_ALL=C|info|--output=json|--force-share|%s|\n"
                                   "LC_ALL=C|info|--output=json|--force-share|-f|raw|%s|\n",
                                   disk, disk);
    g_assert_cmpstr(logged, ==, expected_log);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

#define ADD(name, func)                                                                            \
    g_test_add("/imagecheck/" name, Fixture, NULL, fixture_setup, func, fixture_teardown)
    ADD("qcow2/plain", test_qcow2_plain);
    ADD("qcow2/backing-file", test_qcow2_backing_file);
    ADD("qcow2/data-file", test_qcow2_data_file);
    ADD("raw", test_raw);
    ADD("other-formats", test_other_formats);
    ADD("kernel/fake", test_kernel_fake);
    ADD("kernel/not-a-kernel", test_kernel_not_a_kernel);
    g_test_add_func("/imagecheck/kernel/reference-l1", test_reference_l1);
    ADD("initrd", test_initrd);
    ADD("arguments", test_arguments);
    ADD("info/real-output", test_info_real_output);
    g_test_add_func("/imagecheck/info/crafted", test_info_crafted);
    ADD("fake-qemu-img", test_fake_qemu_img);
    g_test_add_func("/imagecheck/header/qcow2-extensions", test_header_qcow2_extensions);
    g_test_add_func("/imagecheck/header/vmdk", test_header_vmdk);
#undef ADD
    return g_test_run();
}
