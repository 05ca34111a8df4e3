#define G_LOG_DOMAIN "hv-imagecheck"

#include "hvcore/imagecheck.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gio.h>
#include <json-c/json.h>

#include "hvcore/error.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_tokener, json_tokener_free)

/* Enough for a qcow2 header and its extensions in the usual 64 KiB first
 * cluster, a bzImage's setup header and qemu's 512-byte probe window. */
#define HEADER_BYTES (64 * 1024)
/* qemu-img info prints a few hundred bytes; more is not qemu-img info. */
#define MAX_QEMU_IMG_OUTPUT (1024 * 1024)
/* Names from the image (backing files, ...) quoted in messages are cut. */
#define MAX_QUOTED 200

/* ---- kinds -------------------------------------------------------------- */

const char *hv_image_kind_to_string(HvImageKind kind)
{
    switch (kind) {
    case HV_IMAGE_KERNEL:
        return "kernel";
    case HV_IMAGE_INITRD:
        return "initrd";
    case HV_IMAGE_DISK:
        return "disk";
    }
    return "unknown";
}

gboolean hv_image_kind_from_string(const char *text, HvImageKind *kind)
{
    static const HvImageKind kinds[] = {HV_IMAGE_KERNEL, HV_IMAGE_INITRD, HV_IMAGE_DISK};
    gsize i;

    for (i = 0; i < G_N_ELEMENTS(kinds); i++) {
        if (g_strcmp0(text, hv_image_kind_to_string(kinds[i])) == 0) {
            if (kind)
                *kind = kinds[i];
            return TRUE;
        }
    }
    return FALSE;
}

/* ---- helpers ------------------------------------------------------------ */

static void reject(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);

static void reject(GError **error, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    g_propagate_error(error, g_error_new_valist(HV_ERROR, HV_ERROR_INVALID, format, args));
    va_end(args);
}

/* Bytes that came from the image or from qemu-img, made safe to quote:
 * valid UTF-8, control characters escaped, cut to MAX_QUOTED characters. */
static char *quote(const char *text, gssize len)
{
    g_autofree char *valid = g_utf8_make_valid(text, len);
    GString *out = g_string_new(NULL);
    const char *p;
    guint n = 0;

    for (p = valid; *p && n < MAX_QUOTED; p = g_utf8_next_char(p), n++) {
        gunichar c = g_utf8_get_char(p);

        if (c < 0x20 || c == 0x7f)
            g_string_append_printf(out, "\\x%02x", c);
        else
            g_string_append_unichar(out, c);
    }
    if (*p)
        g_string_append(out, "...");
    return g_string_free(out, FALSE);
}

static guint16 le16(const guint8 *p)
{
    return (guint16)(p[0] | (p[1] << 8));
}

static guint32 le32(const guint8 *p)
{
    return (guint32)p[0] | ((guint32)p[1] << 8) | ((guint32)p[2] << 16) | ((guint32)p[3] << 24);
}

static guint32 be32(const guint8 *p)
{
    return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | (guint32)p[3];
}

static guint64 be64(const guint8 *p)
{
    return ((guint64)be32(p) << 32) | be32(p + 4);
}

/* ---- the header --------------------------------------------------------- */

typedef struct {
    const guint8 *bytes;
    gsize len;    /* the first bytes of the file, at most HEADER_BYTES of them */
    guint64 size; /* the file's size */
} Header;

/* Reads the first HEADER_BYTES of @path into @buf. */
static gboolean read_header(const char *path, guint8 *buf, Header *header, GError **error)
{
    struct stat st;
    gsize len = 0;
    int fd;

    /* O_NONBLOCK: a FIFO put in place of the file must not hang us. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int saved = errno;

        g_set_error(error, HV_ERROR, saved == ENOENT ? HV_ERROR_NOT_FOUND : HV_ERROR_FAILED,
                    "cannot open image '%s': %s", path, g_strerror(saved));
        return FALSE;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        reject(error, "image '%s' is not a regular file", path);
        return FALSE;
    }
    while (len < HEADER_BYTES) {
        ssize_t n = read(fd, buf + len, HEADER_BYTES - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;

            close(fd);
            g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot read image '%s': %s", path,
                        g_strerror(saved));
            return FALSE;
        }
        if (n == 0)
            break;
        len += (gsize)n;
    }
    close(fd);
    header->bytes = buf;
    header->len = len;
    header->size = (guint64)st.st_size;
    return TRUE;
}

static gboolean is_qcow2(const Header *header)
{
    return header->len >= 4 && memcmp(header->bytes, "QFI\xfb", 4) == 0;
}

/* The name in a qcow2 v3 header extension "DATA" (external data file), or
 * NULL when it is not inside the bytes we read. */
static char *qcow2_data_file_name(const Header *header)
{
    gsize offset = be32(header->bytes + 100); /* header_length */

    while (offset + 8 <= header->len) {
        guint32 type = be32(header->bytes + offset);
        guint32 length = be32(header->bytes + offset + 4);

        if (type == 0) /* end of the extensions */
            return NULL;
        if (length > header->len - offset - 8)
            return NULL;
        if (type == 0x44415441) /* "DATA" */
            return quote((const char *)header->bytes + offset + 8, length);
        offset += 8 + (((gsize)length + 7) & ~(gsize)7);
    }
    return NULL;
}

/* qemu-img info opens a qcow2's external data file, which may name any host
 * path: refuse before it runs.  (It does not open backing files.) */
static gboolean check_qcow2_header(const Header *header, GError **error)
{
    guint32 version;

    if (header->len < 104)
        return TRUE; /* too short for v3: qemu-img will say what it is */
    version = be32(header->bytes + 4);
    /* incompatible_features, bit 2: external data file (v3 only) */
    if (version >= 3 && (be64(header->bytes + 72) & (G_GUINT64_CONSTANT(1) << 2))) {
        g_autofree char *name = qcow2_data_file_name(header);

        if (name)
            reject(error, "qcow2 image has an external data file '%s': not allowed", name);
        else
            reject(error, "qcow2 image has an external data file: not allowed");
        return FALSE;
    }
    return TRUE;
}

/* A superset of qemu's VMDK probe: its magic numbers, or text whose first
 * line that is neither a comment nor blank starts with "version=".  A VMDK
 * descriptor names extent files, which qemu-img info would open. */
static gboolean is_vmdk(const Header *header)
{
    const char *p = (const char *)header->bytes;
    const char *end = p + header->len;

    if (header->len >= 4 &&
        (memcmp(header->bytes, "KDMV", 4) == 0 || memcmp(header->bytes, "COWD", 4) == 0))
        return TRUE;
    while (p < end) {
        const char *eol = memchr(p, '\n', (gsize)(end - p));
        const char *q = p;

        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q < end && *q != '#' && *q != '\n')
            return (gsize)(end - q) >= 8 && memcmp(q, "version=", 8) == 0;
        if (!eol)
            return FALSE;
        p = eol + 1;
    }
    return FALSE;
}

/* ---- kernels and initrds ------------------------------------------------ */

/* The Linux x86 boot protocol (Documentation/arch/x86/boot.rst). */
static gboolean check_bzimage(const Header *header, GError **error)
{
    const guint8 *h = header->bytes;
    guint16 version;
    guint setup_sects;
    guint64 need;

    if (header->len < 0x260) {
        reject(error,
               "image is not a bzImage kernel (%" G_GOFFSET_FORMAT
               " bytes: too short for a boot header)",
               header->size);
        return FALSE;
    }
    if (memcmp(h + 0x202, "HdrS", 4) != 0) {
        reject(error, "image is not a bzImage kernel (no HdrS header)");
        return FALSE;
    }
    if (h[0x1FE] != 0x55 || h[0x1FF] != 0xAA) {
        reject(error, "image is not a bzImage kernel (no 0x55AA boot signature)");
        return FALSE;
    }
    version = le16(h + 0x206);
    if (version < 0x0200) {
        reject(error, "kernel boot protocol %u.%02u is too old (2.00 or later needed)",
               version >> 8, version & 0xff);
        return FALSE;
    }
    if (!(h[0x211] & 0x01)) {
        reject(error, "image is a zImage kernel, not a bzImage (LOADED_HIGH is not set)");
        return FALSE;
    }
    setup_sects = h[0x1F1] ? h[0x1F1] : 4;
    need = ((guint64)setup_sects + 1) * 512;
    /* syssize, in 16-byte paragraphs, is reliable from protocol 2.04 on. */
    if (version >= 0x0204)
        need += (guint64)le32(h + 0x1F4) * 16;
    if (header->size < need) {
        reject(error,
               "kernel is truncated: its boot header needs %" G_GUINT64_FORMAT
               " bytes, the file has %" G_GUINT64_FORMAT,
               need, header->size);
        return FALSE;
    }
    return TRUE;
}

/* What the kernel unpacks as an initramfs: cpio "newc"/"crc" archives, or
 * archives compressed with one of the decompressors it picks by these
 * two-byte magics (lib/decompress.c), after any zero padding. */
static gboolean check_initrd(const Header *header, GError **error)
{
    static const guint8 magics[][2] = {
        {0x1f, 0x8b}, {0x1f, 0x9e}, /* gzip */
        {0x42, 0x5a},               /* bzip2 */
        {0x5d, 0x00},               /* lzma */
        {0xfd, 0x37},               /* xz */
        {0x89, 0x4c},               /* lzo */
        {0x02, 0x21},               /* lz4 */
        {0x28, 0xb5},               /* zstd */
    };
    const guint8 *p = header->bytes;
    const guint8 *end = p + header->len;
    gsize i;

    while (p < end && *p == 0)
        p++;
    if ((gsize)(end - p) >= 6 && (memcmp(p, "070701", 6) == 0 || memcmp(p, "070702", 6) == 0))
        return TRUE;
    for (i = 0; (gsize)(end - p) >= 2 && i < G_N_ELEMENTS(magics); i++) {
        if (p[0] == magics[i][0] && p[1] == magics[i][1])
            return TRUE;
    }
    reject(error, "initrd is neither a cpio archive nor a compressed one "
                  "(gzip, bzip2, lzma, xz, lzo, lz4, zstd)");
    return FALSE;
}

/* ---- qemu-img ----------------------------------------------------------- */

typedef struct {
    GAsyncResult *result;
    gboolean timed_out;
} Wait;

static void on_communicated(GObject *source, GAsyncResult *result, gpointer data)
{
    Wait *wait = data;

    (void)source;
    wait->result = g_object_ref(result);
}

static gboolean on_timeout(gpointer data)
{
    Wait *wait = data;

    wait->timed_out = TRUE;
    return G_SOURCE_REMOVE;
}

/* The first line of qemu-img's complaint, for a message. */
static char *first_line(GBytes *bytes)
{
    gsize len = 0;
    const char *text = bytes ? g_bytes_get_data(bytes, &len) : NULL;
    const char *eol;

    if (!text || len == 0)
        return g_strdup("no message");
    eol = memchr(text, '\n', len);
    return quote(text, eol ? eol - text : (gssize)len);
}

/* Runs @argv, killing it after @timeout_ms; its stdout in @out.  FALSE with
 * HV_ERROR_FAILED when it could not run or did not finish, HV_ERROR_INVALID
 * (carrying its first line of stderr) when it exited with an error. */
static gboolean run_qemu_img(const char *const *argv, guint timeout_ms, GBytes **out,
                             GError **error)
{
    g_autoptr(GMainContext) context = g_main_context_new();
    g_autoptr(GSubprocessLauncher) launcher = NULL;
    g_autoptr(GSubprocess) process = NULL;
    g_autoptr(GCancellable) cancellable = g_cancellable_new();
    g_autoptr(GSource) timeout = NULL;
    g_autoptr(GBytes) stdout_bytes = NULL;
    g_autoptr(GBytes) stderr_bytes = NULL;
    g_autoptr(GError) local = NULL;
    Wait wait = {0};
    gboolean ok = FALSE;

    g_main_context_push_thread_default(context);
    launcher =
        g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
    g_subprocess_launcher_setenv(launcher, "LC_ALL", "C", TRUE);
    process = g_subprocess_launcher_spawnv(launcher, argv, &local);
    if (!process) {
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot run %s: %s", argv[0], local->message);
        goto out;
    }
    g_subprocess_communicate_async(process, NULL, cancellable, on_communicated, &wait);
    timeout = g_timeout_source_new(timeout_ms);
    g_source_set_callback(timeout, on_timeout, &wait, NULL);
    g_source_attach(timeout, context);
    while (!wait.result && !wait.timed_out)
        g_main_context_iteration(context, TRUE);
    if (!wait.result) {
        /* Killing closes its pipes, so communicate completes soon after. */
        g_subprocess_force_exit(process);
        g_cancellable_cancel(cancellable);
        while (!wait.result)
            g_main_context_iteration(context, TRUE);
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "%s info did not finish within %u ms: killed",
                    argv[0], timeout_ms);
        goto out;
    }
    if (!g_subprocess_communicate_finish(process, wait.result, &stdout_bytes, &stderr_bytes,
                                         &local)) {
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot read the output of %s: %s", argv[0],
                    local->message);
        goto out;
    }
    if (!g_subprocess_get_if_exited(process)) {
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "%s info was killed by signal %d", argv[0],
                    g_subprocess_get_term_sig(process));
        goto out;
    }
    if (g_subprocess_get_exit_status(process) != 0) {
        g_autofree char *line = first_line(stderr_bytes);

        reject(error, "qemu-img cannot read the image: %s", line);
        goto out;
    }
    if (g_bytes_get_size(stdout_bytes) > MAX_QEMU_IMG_OUTPUT) {
        reject(error, "qemu-img info printed %" G_GSIZE_FORMAT " bytes: not an image it knows",
               g_bytes_get_size(stdout_bytes));
        goto out;
    }
    *out = g_steal_pointer(&stdout_bytes);
    ok = TRUE;
out:
    if (timeout)
        g_source_destroy(timeout);
    g_clear_object(&wait.result);
    /* The process object may still have sources on our context; let them
     * go before the context does. */
    g_clear_object(&process);
    while (g_main_context_pending(context))
        g_main_context_iteration(context, FALSE);
    g_main_context_pop_thread_default(context);
    return ok;
}

/* A JSON object, strictly: one value, nothing after it but whitespace. */
static json_object *parse_object(const char *json, gsize len, GError **error)
{
    g_autoptr(json_tokener) tokener = json_tokener_new();
    g_autoptr(json_object) obj = NULL;
    gsize end;

    if (len > MAX_QEMU_IMG_OUTPUT || len > G_MAXINT) {
        reject(error, "qemu-img info printed too much");
        return NULL;
    }
    json_tokener_set_flags(tokener, JSON_TOKENER_STRICT);
    obj = json_tokener_parse_ex(tokener, json, (int)len);
    if (!obj || json_tokener_get_error(tokener) != json_tokener_success) {
        reject(error, "qemu-img info printed no JSON object");
        return NULL;
    }
    for (end = json_tokener_get_parse_end(tokener); end < len; end++) {
        if (!g_ascii_isspace(json[end])) {
            reject(error, "qemu-img info printed something after its JSON object");
            return NULL;
        }
    }
    if (!json_object_is_type(obj, json_type_object)) {
        reject(error, "qemu-img info printed no JSON object");
        return NULL;
    }
    return g_steal_pointer(&obj);
}

static const char *get_string(json_object *obj, const char *key)
{
    json_object *value = NULL;

    if (!obj || !json_object_object_get_ex(obj, key, &value) ||
        !json_object_is_type(value, json_type_string))
        return NULL;
    return json_object_get_string(value);
}

static gboolean has_key(json_object *obj, const char *key)
{
    return obj && json_object_object_get_ex(obj, key, NULL);
}

static gboolean get_true(json_object *obj, const char *key)
{
    json_object *value = NULL;

    return obj && json_object_object_get_ex(obj, key, &value) &&
           json_object_is_type(value, json_type_boolean) && json_object_get_boolean(value);
}

/* The quoted value of a string member, or "?" for another type. */
static char *quoted_member(json_object *obj, const char *key)
{
    const char *text = get_string(obj, key);

    return text ? quote(text, -1) : g_strdup("?");
}

gboolean hv_image_check_qemu_info(const char *json, gsize len, const char *declared_format,
                                  guint64 *virtual_size, GError **error)
{
    g_autoptr(json_object) info = NULL;
    json_object *specific = NULL, *data = NULL, *size = NULL;
    const char *format;
    gint64 bytes;

    g_return_val_if_fail(json != NULL || len == 0, FALSE);
    g_return_val_if_fail(declared_format != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    info = parse_object(json ? json : "", len, error);
    if (!info)
        return FALSE;
    format = get_string(info, "format");
    if (g_strcmp0(format, declared_format) != 0) {
        g_autofree char *got = quoted_member(info, "format");

        reject(error, "declared %s but qemu-img reads the image as %s", declared_format, got);
        return FALSE;
    }
    if (has_key(info, "backing-filename") || has_key(info, "full-backing-filename")) {
        g_autofree char *name = quoted_member(
            info, has_key(info, "backing-filename") ? "backing-filename" : "full-backing-filename");

        reject(error, "%s image has a backing file '%s': not allowed", declared_format, name);
        return FALSE;
    }
    if (json_object_object_get_ex(info, "format-specific", &specific) &&
        json_object_is_type(specific, json_type_object) &&
        json_object_object_get_ex(specific, "data", &data) &&
        json_object_is_type(data, json_type_object)) {
        if (has_key(data, "data-file")) {
            g_autofree char *name = quoted_member(data, "data-file");

            reject(error, "%s image has an external data file '%s': not allowed", declared_format,
                   name);
            return FALSE;
        }
        if (get_true(data, "corrupt")) {
            reject(error, "%s image is marked corrupt", declared_format);
            return FALSE;
        }
        if (has_key(data, "encrypt")) {
            reject(error, "image is encrypted: not allowed");
            return FALSE;
        }
    }
    if (get_true(info, "encrypted")) {
        reject(error, "image is encrypted: not allowed");
        return FALSE;
    }
    if (!json_object_object_get_ex(info, "virtual-size", &size) ||
        !json_object_is_type(size, json_type_int)) {
        reject(error, "qemu-img reports no virtual size");
        return FALSE;
    }
    bytes = json_object_get_int64(size);
    if (bytes <= 0) {
        reject(error, "image has a virtual size of %" G_GINT64_FORMAT " bytes", bytes);
        return FALSE;
    }
    if (virtual_size)
        *virtual_size = (guint64)bytes;
    return TRUE;
}

/* The format qemu-img probes, without -f. */
static char *probe_format(const char *qemu_img, const char *path, guint timeout_ms, GError **error)
{
    const char *argv[] = {qemu_img, "info", "--output=json", "--force-share", path, NULL};
    g_autoptr(GBytes) out = NULL;
    g_autoptr(json_object) info = NULL;
    const char *format;
    gsize len;
    const char *text;

    if (!run_qemu_img(argv, timeout_ms, &out, error))
        return NULL;
    text = g_bytes_get_data(out, &len);
    info = parse_object(text ? text : "", len, error);
    if (!info)
        return NULL;
    format = get_string(info, "format");
    if (!format) {
        reject(error, "qemu-img info reports no format");
        return NULL;
    }
    return quote(format, -1);
}

/* ---- the check ---------------------------------------------------------- */

static gboolean check_format_and_kind(const char *declared_format, HvImageKind kind, GError **error)
{
    if (g_strcmp0(declared_format, "raw") != 0 && g_strcmp0(declared_format, "qcow2") != 0) {
        reject(error, "unknown image format '%s' (use raw or qcow2)",
               declared_format ? declared_format : "(null)");
        return FALSE;
    }
    if (kind != HV_IMAGE_KERNEL && kind != HV_IMAGE_INITRD && kind != HV_IMAGE_DISK) {
        reject(error, "unknown image kind %d", (int)kind);
        return FALSE;
    }
    if (kind != HV_IMAGE_DISK && strcmp(declared_format, "raw") != 0) {
        reject(error, "%s must be raw, not %s", kind == HV_IMAGE_KERNEL ? "a kernel" : "an initrd",
               declared_format);
        return FALSE;
    }
    return TRUE;
}

static gboolean check_header(const Header *header, const char *declared_format, HvImageKind kind,
                             GError **error)
{
    if (header->size == 0) {
        reject(error, "%s is empty",
               kind == HV_IMAGE_DISK ? "image" : hv_image_kind_to_string(kind));
        return FALSE;
    }
    /* What must never reach qemu-img. */
    if (is_qcow2(header)) {
        if (strcmp(declared_format, "qcow2") != 0) {
            reject(error, "declared %s but the data is qcow2", declared_format);
            return FALSE;
        }
        if (!check_qcow2_header(header, error))
            return FALSE;
    } else if (is_vmdk(header)) {
        reject(error, "declared %s but the data is vmdk", declared_format);
        return FALSE;
    }
    if (kind == HV_IMAGE_KERNEL)
        return check_bzimage(header, error);
    if (kind == HV_IMAGE_INITRD)
        return check_initrd(header, error);
    return TRUE;
}

gboolean hv_image_check_header(const void *bytes, gsize len, guint64 file_size,
                               const char *declared_format, HvImageKind kind, GError **error)
{
    Header header = {bytes, MIN(len, (gsize)HEADER_BYTES), file_size};

    g_return_val_if_fail(bytes != NULL || len == 0, FALSE);
    g_return_val_if_fail(len <= file_size, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (!check_format_and_kind(declared_format, kind, error))
        return FALSE;
    return check_header(&header, declared_format, kind, error);
}

gboolean hv_image_check_full(const char *path, const char *declared_format, HvImageKind kind,
                             const char *qemu_img, guint timeout_ms, GError **error)
{
    g_autofree guint8 *buf = NULL;
    Header header;
    g_autofree char *probed = NULL;
    g_autoptr(GBytes) out = NULL;
    const char *text;
    gsize len;

    g_return_val_if_fail(qemu_img != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (!check_format_and_kind(declared_format, kind, error))
        return FALSE;
    /* qemu-img reads "proto:..." and "json:{...}" file names as something
     * else; an absolute path is always a file. */
    if (!path || !g_path_is_absolute(path)) {
        reject(error, "image path '%s' is not absolute", path ? path : "(null)");
        return FALSE;
    }
    buf = g_malloc(HEADER_BYTES);
    if (!read_header(path, buf, &header, error))
        return FALSE;
    /* Cheap verdicts before any process runs. */
    if (!check_header(&header, declared_format, kind, error))
        return FALSE;

    /* What the bytes are, whatever the tenant said. */
    probed = probe_format(qemu_img, path, timeout_ms, error);
    if (!probed)
        return FALSE;
    if (strcmp(probed, declared_format) != 0) {
        reject(error, "declared %s but the data is %s", declared_format, probed);
        return FALSE;
    }

    /* Read as declared, as QEMU will. */
    {
        const char *argv[] = {
            qemu_img, "info", "--output=json", "--force-share", "-f", declared_format, path, NULL};

        if (!run_qemu_img(argv, timeout_ms, &out, error))
            return FALSE;
    }
    text = g_bytes_get_data(out, &len);
    return hv_image_check_qemu_info(text, len, declared_format, NULL, error);
}

gboolean hv_image_check(const char *path, const char *declared_format, HvImageKind kind,
                        GError **error)
{
    return hv_image_check_full(path, declared_format, kind, "qemu-img", HV_IMAGE_CHECK_TIMEOUT_MS,
                               error);
}
