#define G_LOG_DOMAIN "hv-seed"

#include "hvcore/seed.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* libisofs.h uses uint32_t and friends without including <stdint.h>; its
 * copy of libburn's struct burn_source is what we read the image from. */
#define LIBISOFS_WITHOUT_LIBBURN 1
#include <libisofs/libisofs.h>

#include "hvcore/error.h"

/* Every timestamp in the image: 2000-01-01 00:00:00 UTC.  Also the volume
 * descriptors' creation and modification times, written from a fixed
 * "uuid" (YYYYMMDDhhmmsscc, GMT) so that no time zone enters the bytes. */
#define SEED_TIME      ((time_t)946684800)
#define SEED_TIME_UUID "2000010100000000"

#define ISO_BLOCK 2048
/* The image is the files plus a few blocks of descriptors and directories
 * per file; anything near this is libisofs gone wrong. */
#define MAX_IMAGE_BYTES (HV_SEED_MAX_BYTES + 16 * 1024 * 1024)

/* The exceptions to "no globals" (DESIGN.md): libisofs's own state is
 * process-wide.  iso_init_with_flag() fills it (message queue, the list of
 * xinfo cloners) without a lock, so it runs once (g_once); iso_finish() would
 * free what every image still in use points at, so it never runs (that small
 * state stays until exit).  Builds hold seed_lock: libisofs's image
 * ids and memory streams' serial numbers are unlocked counters, and the
 * message queue we read errors from is one for the process. */
static GOnce seed_once = G_ONCE_INIT;
static GMutex seed_lock;

static gpointer init_libisofs(gpointer data)
{
    int ret;

    (void)data;
    /* bit0: do not call setlocale(LC_CTYPE, "") behind the daemon's back
     * (not thread-safe, and process-wide); names are ASCII anyway. */
    ret = iso_init_with_flag(1);
    if (ret < 0)
        return GINT_TO_POINTER(ret);
    /* Never print (libraries do not log); queue what fails a write so the
     * error can say why. */
    ret = iso_set_msgs_severities((char *)"SORRY", (char *)"NEVER", (char *)"libisofs: ");
    if (ret <= 0)
        return GINT_TO_POINTER(ret < 0 ? ret : (int)ISO_ERROR);
    return GINT_TO_POINTER(1);
}

static gboolean iso_failed(int ret, const char *what, GError **error)
{
    if (ret >= 0)
        return FALSE;
    g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot build the seed image: %s: %s", what,
                iso_error_to_msg(ret));
    return TRUE;
}

/* Empties libisofs's message queue; with @text, the first message goes
 * there (the first is the cause, the rest its consequences). */
static void take_messages(char **text)
{
    g_autofree char *msg = g_malloc(ISO_MSGS_MESSAGE_LEN);
    char severity[80];
    int code, imgid;

    while (iso_obtain_msgs((char *)"ALL", &code, &imgid, msg, severity) == 1) {
        if (text && !*text)
            *text = g_strdup(msg);
    }
}

/* ---- names ---------------------------------------------------------------- */

static gboolean name_ok(const char *name)
{
    gsize len = 0;
    const char *p;

    if (!name)
        return FALSE;
    for (p = name; *p; p++, len++) {
        if (!g_ascii_isalnum(*p) && *p != '.' && *p != '_' && *p != '-')
            return FALSE;
    }
    return len >= 1 && len <= HV_SEED_MAX_NAME_LEN && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

static gboolean check_files(const HvSeedFile *files, guint n_files, GError **error)
{
    guint64 total = 0;
    guint i, j;

    if (!files || n_files == 0) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "a seed needs at least one file");
        return FALSE;
    }
    if (n_files > HV_SEED_MAX_FILES) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "a seed holds at most %d files, not %u",
                    HV_SEED_MAX_FILES, n_files);
        return FALSE;
    }
    for (i = 0; i < n_files; i++) {
        if (!name_ok(files[i].name)) {
            g_autofree char *shown =
                files[i].name ? g_strescape(files[i].name, NULL) : g_strdup("(null)");

            if (strlen(shown) > 2 * HV_SEED_MAX_NAME_LEN)
                strcpy(shown + 2 * HV_SEED_MAX_NAME_LEN - 3, "...");
            g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                        "seed file name \"%s\" is not 1 to %d of A-Z a-z 0-9 . _ - "
                        "(and not . or ..)",
                        shown, HV_SEED_MAX_NAME_LEN);
            return FALSE;
        }
        for (j = 0; j < i; j++) {
            if (strcmp(files[i].name, files[j].name) == 0) {
                g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "seed file name \"%s\" is repeated",
                            files[i].name);
                return FALSE;
            }
        }
        if (!files[i].data && files[i].len > 0) {
            g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "seed file \"%s\" has no data",
                        files[i].name);
            return FALSE;
        }
        total += files[i].len;
        if (files[i].len > HV_SEED_MAX_BYTES || total > HV_SEED_MAX_BYTES) {
            g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                        "a seed's files hold at most %d bytes together", HV_SEED_MAX_BYTES);
            return FALSE;
        }
    }
    return TRUE;
}

/* The same files in any order give the same image. */
static int compare_by_name(gconstpointer a, gconstpointer b)
{
    const HvSeedFile *const *x = a, *const *y = b;

    return strcmp((*x)->name, (*y)->name);
}

/* ---- the image -------------------------------------------------------------- */

static void set_times(IsoNode *node)
{
    iso_node_set_mtime(node, SEED_TIME);
    iso_node_set_atime(node, SEED_TIME);
    iso_node_set_ctime(node, SEED_TIME);
}

static gboolean add_file(IsoImage *image, const HvSeedFile *file, GError **error)
{
    IsoStream *stream = NULL;
    IsoFile *node = NULL;
    /* The stream owns and free()s its buffer; malloc(0) may be NULL. */
    unsigned char *buf = malloc(file->len ? file->len : 1);
    int ret;

    if (!buf) {
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot build the seed image: out of memory");
        return FALSE;
    }
    if (file->len)
        memcpy(buf, file->data, file->len);
    ret = iso_memory_stream_new(buf, file->len, &stream);
    if (ret < 0) {
        free(buf);
        return !iso_failed(ret, "a file's stream", error);
    }
    ret = iso_image_add_new_file(image, iso_image_get_root(image), file->name, stream, &node);
    if (ret < 0) {
        /* Only a file that was made takes the stream's reference. */
        iso_stream_unref(stream);
        return !iso_failed(ret, file->name, error);
    }
    set_times((IsoNode *)node);
    return TRUE;
}

static gboolean set_options(IsoWriteOpts *opts, GError **error)
{
    char uuid[] = SEED_TIME_UUID;

    /* Level 3: ISO 9660 names up to 31 characters (readers use Rock Ridge's
     * or Joliet's anyway).  Relaxed volume attributes keep "cidata" lower
     * case in the primary descriptor: d-characters would make it "CIDATA",
     * which older cloud-init does not recognise. */
    if (iso_failed(iso_write_opts_set_iso_level(opts, 3), "ISO level", error) ||
        iso_failed(iso_write_opts_set_rockridge(opts, 1), "Rock Ridge", error) ||
        iso_failed(iso_write_opts_set_joliet(opts, 1), "Joliet", error) ||
        iso_failed(iso_write_opts_set_relaxed_vol_atts(opts, 1), "volume id", error))
        return FALSE;
    /* Determinism: owners, modes and times fixed, whoever and whenever
     * builds; no time zone (GMT, and the descriptors' times from a uuid). */
    if (iso_failed(iso_write_opts_set_replace_mode(opts, 2, 2, 2, 2), "modes", error) ||
        iso_failed(iso_write_opts_set_default_dir_mode(opts, S_IFDIR | 0555), "modes", error) ||
        iso_failed(iso_write_opts_set_default_file_mode(opts, S_IFREG | 0444), "modes", error) ||
        iso_failed(iso_write_opts_set_default_uid(opts, 0), "owner", error) ||
        iso_failed(iso_write_opts_set_default_gid(opts, 0), "group", error) ||
        iso_failed(iso_write_opts_set_replace_timestamps(opts, 2), "timestamps", error) ||
        iso_failed(iso_write_opts_set_default_timestamp(opts, SEED_TIME), "timestamps", error) ||
        /* Directory records carry this mtime, not the time of writing, in
         * all three trees (ECMA-119, Joliet, ISO 9660:1999). */
        iso_failed(iso_write_opts_set_dir_rec_mtime(opts, 7), "timestamps", error) ||
        iso_failed(iso_write_opts_set_always_gmt(opts, 1), "timestamps", error) ||
        iso_failed(iso_write_opts_set_pvd_times(opts, SEED_TIME, SEED_TIME, 0, 0, uuid),
                   "volume times", error))
        return FALSE;
    return TRUE;
}

/* Reads the image the writer thread produces.  The ring buffer hands out
 * whole blocks only: a read that asks for more than what is left returns
 * EOF and drops the rest, so one block at a time. */
static gboolean read_image(struct burn_source *bs, GByteArray *out, GError **error)
{
    off_t size = bs->get_size(bs);
    gsize got = 0;
    int n;

    if (size <= 0 || size % ISO_BLOCK != 0 || size > MAX_IMAGE_BYTES) {
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED,
                    "cannot build the seed image: libisofs announced %lld bytes", (long long)size);
        return FALSE;
    }
    g_byte_array_set_size(out, (guint)size);
    for (;;) {
        guint8 *dest = got < (gsize)size ? out->data + got : NULL;
        guint8 spare[ISO_BLOCK];

        /* Past the announced size, read into @spare to see EOF (or to
         * notice that libisofs writes more than it said). */
        if (!dest)
            dest = spare;
        n = bs->read ? bs->read(bs, dest, ISO_BLOCK) : bs->read_xt(bs, dest, ISO_BLOCK);
        if (n == 0)
            break;
        if (n != ISO_BLOCK || dest == spare) {
            g_autofree char *why = NULL;

            take_messages(&why);
            g_set_error(error, HV_ERROR, HV_ERROR_FAILED,
                        "cannot build the seed image: libisofs: %s",
                        why     ? why
                        : n < 0 ? "writing the image failed"
                                : "the image is not the size announced");
            return FALSE;
        }
        got += ISO_BLOCK;
    }
    if (got != (gsize)size) {
        g_autofree char *why = NULL;

        take_messages(&why);
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED,
                    "cannot build the seed image: libisofs: %s (%zu of %lld bytes written)",
                    why ? why : "the image ended early", got, (long long)size);
        return FALSE;
    }
    return TRUE;
}

static GBytes *build_locked(const HvSeedFile *files, guint n_files, GError **error)
{
    g_autoptr(GPtrArray) sorted = g_ptr_array_sized_new(n_files);
    g_autoptr(GByteArray) out = g_byte_array_new();
    IsoImage *image = NULL;
    IsoWriteOpts *opts = NULL;
    struct burn_source *bs = NULL;
    gboolean ok = FALSE;
    guint i;
    int ret;

    for (i = 0; i < n_files; i++)
        g_ptr_array_add(sorted, (gpointer)&files[i]);
    g_ptr_array_sort(sorted, compare_by_name);

    ret = iso_image_new(HV_SEED_VOLUME_ID, &image);
    if (iso_failed(ret, "new image", error))
        return NULL;
    set_times((IsoNode *)iso_image_get_root(image));
    for (i = 0; i < sorted->len; i++) {
        if (!add_file(image, g_ptr_array_index(sorted, i), error))
            goto out;
    }

    ret = iso_write_opts_new(&opts, 0);
    if (iso_failed(ret, "write options", error) || !set_options(opts, error))
        goto out;
    ret = iso_image_create_burn_source(image, opts, &bs);
    if (iso_failed(ret, "writing", error)) {
        bs = NULL;
        goto out;
    }
    ok = read_image(bs, out, error);

out:
    if (bs) {
        /* Stops the writer thread if it still runs, and joins it. */
        bs->free_data(bs);
        free(bs);
    }
    iso_write_opts_free(opts);
    iso_image_unref(image);
    if (!ok)
        return NULL;
    return g_byte_array_free_to_bytes(g_steal_pointer(&out));
}

GBytes *hv_seed_build_iso(const HvSeedFile *files, guint n_files, GError **error)
{
    GBytes *image;
    int init;

    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    if (!check_files(files, n_files, error))
        return NULL;
    init = GPOINTER_TO_INT(g_once(&seed_once, init_libisofs, NULL));
    if (iso_failed(init, "initialising libisofs", error))
        return NULL;

    g_mutex_lock(&seed_lock);
    /* Whatever an earlier build left (warnings of a success) is not ours. */
    take_messages(NULL);
    image = build_locked(files, n_files, error);
    take_messages(NULL);
    g_mutex_unlock(&seed_lock);
    return image;
}
