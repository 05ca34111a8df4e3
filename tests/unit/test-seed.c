/* hvcore/seed: NoCloud seed images built in memory, written to a temporary
 * file and read back: the volume descriptors' bytes (volume id "cidata" in
 * the primary and the Joliet descriptor), util-linux's blkid (what
 * cloud-init uses to find the seed, an ISO 9660 reader of its own) when it
 * is installed, and libisofs's reader through the Rock Ridge tree and
 * through the Joliet tree: every name as given and every byte identical.
 * Then bad input, determinism (twice at different seconds, in any order)
 * and builds from several threads at once. */
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <glib/gstdio.h>
/* The test reads seeds back with libisofs's own reader. */
#include <libisofs/libisofs.h>

#include "hvcore/error.h"
#include "hvcore/seed.h"

#define BLOCK 2048

typedef struct {
    char *dir;
} Fixture;

static void fixture_setup(Fixture *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    fx->dir = g_dir_make_tmp("turtles-seed-XXXXXX", &error);
    g_assert_no_error(error);
}

static void fixture_teardown(Fixture *fx, gconstpointer data)
{
    g_autoptr(GDir) d = g_dir_open(fx->dir, 0, NULL);
    const char *name;

    (void)data;
    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(fx->dir, name, NULL);

        g_unlink(path);
    }
    g_rmdir(fx->dir);
    g_free(fx->dir);
}

/* ---- the files of a seed ---------------------------------------------------- */

typedef struct {
    GBytes *user_data;
    GBytes *meta_data;
    GBytes *big;
    HvSeedFile files[4];
} Files;

static void files_init(Files *f)
{
    /* Every byte value, NULs and a would-be volume descriptor included. */
    GByteArray *user = g_byte_array_new();
    const char *head = "#cloud-config\nhostname: l1\n";
    g_autoptr(GRand) rand = g_rand_new_with_seed(17);
    guint8 *big = g_malloc(1024 * 1024);
    const char *meta = "instance-id: iid-turtles-1\nlocal-hostname: l1\n";
    guint i;

    g_byte_array_append(user, (const guint8 *)head, strlen(head));
    for (i = 0; i < 3 * 256; i++) {
        guint8 b = (guint8)i;

        g_byte_array_append(user, &b, 1);
    }
    g_byte_array_append(user, (const guint8 *)"\001CD001\001", 7);
    f->user_data = g_byte_array_free_to_bytes(user);
    f->meta_data = g_bytes_new_static(meta, strlen(meta));
    /* 1 MiB plus a partial block. */
    for (i = 0; i < 1024 * 1024; i++)
        big[i] = (guint8)g_rand_int(rand);
    f->big = g_bytes_new_take(big, 1024 * 1024 - 333);

    f->files[0] = (HvSeedFile){"user-data", g_bytes_get_data(f->user_data, NULL),
                               g_bytes_get_size(f->user_data)};
    f->files[1] = (HvSeedFile){"meta-data", g_bytes_get_data(f->meta_data, NULL),
                               g_bytes_get_size(f->meta_data)};
    f->files[2] =
        (HvSeedFile){"Big_File.bin-1", g_bytes_get_data(f->big, NULL), g_bytes_get_size(f->big)};
    /* Empty (NoCloud reads an empty vendor-data as none). */
    f->files[3] = (HvSeedFile){"vendor-data", NULL, 0};
}

static void files_clear(Files *f)
{
    g_bytes_unref(f->user_data);
    g_bytes_unref(f->meta_data);
    g_bytes_unref(f->big);
}

static GBytes *build(const HvSeedFile *files, guint n)
{
    g_autoptr(GError) error = NULL;
    GBytes *iso = hv_seed_build_iso(files, n, &error);

    g_assert_no_error(error);
    g_assert_nonnull(iso);
    return iso;
}

static char *write_iso(Fixture *fx, const char *name, GBytes *iso)
{
    g_autoptr(GError) error = NULL;
    char *path = g_build_filename(fx->dir, name, NULL);

    g_file_set_contents(path, g_bytes_get_data(iso, NULL), (gssize)g_bytes_get_size(iso), &error);
    g_assert_no_error(error);
    return path;
}

/* ---- reading it back ---------------------------------------------------------- */

/* The volume descriptors from block 16 on: the primary one (type 1) holds
 * "cidata" as it is (not "CIDATA"), padded with spaces; a Joliet one (type
 * 2, UCS-2 escape "%/@", "%/C" or "%/E") holds it in UCS-2 big-endian. */
static void check_descriptors(GBytes *iso)
{
    gsize len;
    const guint8 *p = g_bytes_get_data(iso, &len);
    gboolean primary = FALSE, joliet = FALSE;
    gsize off;

    g_assert_cmpuint(len % BLOCK, ==, 0);
    for (off = 16 * BLOCK; off + BLOCK <= len; off += BLOCK) {
        const guint8 *vd = p + off;
        char volume_id[33];

        g_assert_cmpmem(vd + 1, 5, "CD001", 5);
        if (vd[0] == 255)
            break;
        if (vd[0] == 1) {
            memcpy(volume_id, vd + 40, 32);
            volume_id[32] = 0;
            g_assert_cmpstr(volume_id, ==, "cidata                          ");
            primary = TRUE;
        } else if (vd[0] == 2 && vd[88] == '%' && vd[89] == '/' &&
                   (vd[90] == '@' || vd[90] == 'C' || vd[90] == 'E')) {
            static const guint8 ucs2[] = {0, 'c', 0, 'i', 0, 'd', 0, 'a', 0, 't', 0, 'a'};

            g_assert_cmpmem(vd + 40, sizeof ucs2, ucs2, sizeof ucs2);
            joliet = TRUE;
        }
    }
    g_assert_true(primary);
    g_assert_true(joliet);
}

/* util-linux's prober, as cloud-init's `blkid -tLABEL=cidata` sees it. */
static void check_blkid(const char *path)
{
    g_autofree char *blkid = g_find_program_in_path("blkid");
    g_autofree char *out = NULL;
    g_autoptr(GError) error = NULL;
    int status;

    if (!blkid && g_file_test("/usr/sbin/blkid", G_FILE_TEST_IS_EXECUTABLE))
        blkid = g_strdup("/usr/sbin/blkid");
    if (!blkid && g_file_test("/sbin/blkid", G_FILE_TEST_IS_EXECUTABLE))
        blkid = g_strdup("/sbin/blkid");
    if (!blkid) {
        g_test_message("no blkid: label not checked with util-linux");
        return;
    }
    {
        const char *argv[] = {blkid, "-p", "-o", "export", path, NULL};

        g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL,
                     &status, &error);
    }
    g_assert_no_error(error);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    g_assert_nonnull(strstr(out, "\nTYPE=iso9660\n"));
    g_assert_nonnull(strstr(out, "\nLABEL=cidata\n"));
}

/* libisofs is initialised by hv_seed_build_iso, which each test calls first. */
static GHashTable *read_tree(const char *path, gboolean joliet)
{
    GHashTable *files =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_bytes_unref);
    IsoDataSource *src = NULL;
    IsoReadOpts *opts = NULL;
    IsoImage *image = NULL;
    IsoReadImageFeatures *features = NULL;
    IsoDirIter *iter = NULL;
    IsoNode *node;

    g_assert_cmpint(iso_data_source_new_from_file(path, &src), ==, 1);
    g_assert_cmpint(iso_read_opts_new(&opts, 0), ==, 1);
    if (joliet) {
        iso_read_opts_set_no_rockridge(opts, 1);
        iso_read_opts_set_preferjoliet(opts, 1);
    }
    g_assert_cmpint(iso_image_new("reader", &image), ==, 1);
    g_assert_cmpint(iso_image_import(image, src, opts, &features), >=, 0);
    g_assert_true(iso_read_image_features_has_rockridge(features));
    g_assert_true(iso_read_image_features_has_joliet(features));
    g_assert_cmpstr(iso_image_get_volume_id(image), ==, "cidata");

    g_assert_cmpint(iso_dir_get_children(iso_image_get_root(image), &iter), ==, 1);
    while (iso_dir_iter_next(iter, &node) == 1) {
        IsoStream *stream;
        GByteArray *bytes = g_byte_array_new();
        guint8 buf[65536];
        int n;

        g_assert_cmpint(iso_node_get_type(node), ==, LIBISO_FILE);
        stream = iso_file_get_stream((IsoFile *)node);
        g_assert_cmpint(iso_stream_open(stream), ==, 1);
        while ((n = iso_stream_read(stream, buf, sizeof buf)) > 0)
            g_byte_array_append(bytes, buf, (guint)n);
        g_assert_cmpint(n, ==, 0);
        iso_stream_close(stream);
        g_assert_false(g_hash_table_contains(files, iso_node_get_name(node)));
        g_hash_table_insert(files, g_strdup(iso_node_get_name(node)),
                            g_byte_array_free_to_bytes(bytes));
    }
    iso_dir_iter_free(iter);
    iso_read_image_features_destroy(features);
    iso_image_unref(image);
    iso_read_opts_free(opts);
    iso_data_source_unref(src);
    return files;
}

static void check_tree(const char *path, gboolean joliet, const HvSeedFile *files, guint n)
{
    g_autoptr(GHashTable) read = read_tree(path, joliet);
    guint i;

    g_assert_cmpuint(g_hash_table_size(read), ==, n);
    for (i = 0; i < n; i++) {
        GBytes *bytes = g_hash_table_lookup(read, files[i].name);
        gsize len;
        const void *data;

        if (!bytes)
            g_error("%s tree lacks \"%s\"", joliet ? "Joliet" : "Rock Ridge", files[i].name);
        data = g_bytes_get_data(bytes, &len);
        g_assert_cmpmem(data, len, files[i].data, files[i].len);
    }
}

/* ---- tests ---------------------------------------------------------------- */

static void test_round_trip(Fixture *fx, gconstpointer data)
{
    Files f;
    g_autoptr(GBytes) iso = NULL;
    g_autofree char *path = NULL;
    g_autofree char *sha = NULL;

    (void)data;
    files_init(&f);
    iso = build(f.files, G_N_ELEMENTS(f.files));
    g_assert_cmpuint(g_bytes_get_size(iso), >, 1024 * 1024);
    g_assert_cmpuint(g_bytes_get_size(iso), <, 2 * 1024 * 1024);
    sha = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, iso);
    /* To compare runs (other time zones, other users) by hand. */
    g_test_message("seed image: %zu bytes, sha256 %s", g_bytes_get_size(iso), sha);

    check_descriptors(iso);
    path = write_iso(fx, "seed.iso", iso);
    check_blkid(path);
    check_tree(path, FALSE, f.files, G_N_ELEMENTS(f.files));
    check_tree(path, TRUE, f.files, G_N_ELEMENTS(f.files));
    files_clear(&f);
}

/* The NoCloud minimum, and the longest name. */
static void test_small(Fixture *fx, gconstpointer data)
{
    char name[HV_SEED_MAX_NAME_LEN + 1];
    HvSeedFile files[2] = {{"meta-data", "instance-id: a\n", 15}, {name, "x", 1}};
    g_autoptr(GBytes) one = NULL;
    g_autoptr(GBytes) two = NULL;
    g_autofree char *path_one = NULL;
    g_autofree char *path_two = NULL;

    (void)data;
    memset(name, 'n', HV_SEED_MAX_NAME_LEN);
    name[HV_SEED_MAX_NAME_LEN] = 0;
    one = build(files, 1);
    path_one = write_iso(fx, "one.iso", one);
    check_descriptors(one);
    check_tree(path_one, FALSE, files, 1);
    two = build(files, 2);
    path_two = write_iso(fx, "two.iso", two);
    check_tree(path_two, FALSE, files, 2);
    /* Joliet names end at 64 characters; this is 64. */
    check_tree(path_two, TRUE, files, 2);
}

static void expect_invalid(const HvSeedFile *files, guint n, const char *fragment)
{
    g_autoptr(GError) error = NULL;
    GBytes *iso = hv_seed_build_iso(files, n, &error);

    g_assert_null(iso);
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    if (!strstr(error->message, fragment))
        g_error("\"%s\" does not say \"%s\"", error->message, fragment);
}

static void test_invalid(void)
{
    static const char *const bad_names[] = {
        "",
        ".",
        "..",
        "a/b",
        "/user-data",
        "user data",
        "user-data\n",
        "caf\xc3\xa9",
        "a:b",
        "*",
        "name~",
        "a\\b",
        "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", /* 65 */
    };
    HvSeedFile good = {"meta-data", "x", 1};
    HvSeedFile files[2];
    HvSeedFile many[HV_SEED_MAX_FILES + 1];
    char names[HV_SEED_MAX_FILES + 1][16];
    g_autofree guint8 *big = g_malloc0(HV_SEED_MAX_BYTES + 1);
    guint i;

    expect_invalid(NULL, 0, "at least one file");
    expect_invalid(&good, 0, "at least one file");
    expect_invalid(NULL, 1, "at least one file");

    for (i = 0; i < G_N_ELEMENTS(bad_names); i++) {
        HvSeedFile bad = {bad_names[i], "x", 1};

        files[0] = good;
        files[1] = bad;
        expect_invalid(files, 2, "seed file name");
        expect_invalid(&bad, 1, "seed file name");
    }
    files[0] = good;
    files[1] = (HvSeedFile){NULL, "x", 1};
    expect_invalid(files, 2, "(null)");

    /* Repeated, and not folded: "Meta-Data" is another name. */
    files[1] = good;
    expect_invalid(files, 2, "repeated");
    files[1] = (HvSeedFile){"Meta-Data", "y", 1};
    {
        g_autoptr(GBytes) iso = build(files, 2);
    }

    files[1] = (HvSeedFile){"user-data", NULL, 3};
    expect_invalid(files, 2, "no data");

    /* Sizes: one byte over, alone or together. */
    files[0] = (HvSeedFile){"user-data", big, HV_SEED_MAX_BYTES + 1};
    expect_invalid(files, 1, "at most");
    files[0] = (HvSeedFile){"user-data", big, HV_SEED_MAX_BYTES};
    files[1] = (HvSeedFile){"meta-data", big, 1};
    expect_invalid(files, 2, "at most");
    files[0] = (HvSeedFile){"user-data", big, G_MAXSIZE};
    expect_invalid(files, 1, "at most");
    /* Exactly the limit is fine. */
    files[0] = (HvSeedFile){"user-data", big, HV_SEED_MAX_BYTES};
    {
        g_autoptr(GBytes) iso = build(files, 1);
    }

    for (i = 0; i < G_N_ELEMENTS(many); i++) {
        g_snprintf(names[i], sizeof names[i], "f%u", i);
        many[i] = (HvSeedFile){names[i], "", 0};
    }
    expect_invalid(many, G_N_ELEMENTS(many), "at most");
    {
        g_autoptr(GBytes) iso = build(many, HV_SEED_MAX_FILES);
    }
}

/* Waits until the clock shows another second than @since. */
static void next_second(time_t since)
{
    while (time(NULL) == since)
        g_usleep(20 * 1000);
}

static void test_deterministic(void)
{
    Files f;
    HvSeedFile reversed[G_N_ELEMENTS(f.files)];
    g_autoptr(GBytes) first = NULL;
    g_autoptr(GBytes) second = NULL;
    g_autoptr(GBytes) third = NULL;
    g_autoptr(GBytes) other = NULL;
    guint i, n = G_N_ELEMENTS(f.files);

    files_init(&f);
    first = build(f.files, n);
    /* Another second on the clock: a timestamp of "now" anywhere (file,
     * directory record, volume descriptor) would differ. */
    next_second(time(NULL));
    second = build(f.files, n);
    g_assert_true(g_bytes_equal(first, second));

    /* The order of @files does not matter. */
    for (i = 0; i < n; i++)
        reversed[i] = f.files[n - 1 - i];
    third = build(reversed, n);
    g_assert_true(g_bytes_equal(first, third));

    /* But a byte of content does. */
    {
        g_autofree guint8 *copy = g_memdup2(f.files[1].data, f.files[1].len);

        copy[0] ^= 1;
        f.files[1].data = copy;
        other = build(f.files, n);
        g_assert_false(g_bytes_equal(first, other));
    }
    files_clear(&f);
}

typedef struct {
    const HvSeedFile *files;
    guint n;
    GBytes *expected;
} ThreadJob;

static gpointer build_in_thread(gpointer data)
{
    ThreadJob *job = data;
    guint i;

    for (i = 0; i < 3; i++) {
        g_autoptr(GBytes) iso = build(job->files, job->n);

        g_assert_true(g_bytes_equal(iso, job->expected));
    }
    return NULL;
}

/* turtled builds seeds from worker threads. */
static void test_threads(void)
{
    Files f;
    GThread *threads[4];
    ThreadJob job;
    guint i;

    files_init(&f);
    job.files = f.files;
    job.n = G_N_ELEMENTS(f.files);
    job.expected = build(f.files, job.n);
    for (i = 0; i < G_N_ELEMENTS(threads); i++)
        threads[i] = g_thread_new("seed", build_in_thread, &job);
    for (i = 0; i < G_N_ELEMENTS(threads); i++)
        g_thread_join(threads[i]);
    g_bytes_unref(job.expected);
    files_clear(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add("/seed/round-trip", Fixture, NULL, fixture_setup, test_round_trip, fixture_teardown);
    g_test_add("/seed/small", Fixture, NULL, fixture_setup, test_small, fixture_teardown);
    g_test_add_func("/seed/invalid", test_invalid);
    g_test_add_func("/seed/deterministic", test_deterministic);
    g_test_add_func("/seed/threads", test_threads);
    return g_test_run();
}
