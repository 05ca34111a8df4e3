/* Serial console logs (see console.h).  Plain reads at an offset: the file
 * belongs to QEMU, which only appends, except when a domain restart truncates
 * or recreates it; both show as a smaller size or another inode. */
#include "daemon/console.h"

#include "daemon/error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONSOLE_CONTENT_TYPE "text/plain; charset=utf-8"
#define CONSOLE_READ_CHUNK   (64 * 1024)
/* How often a follow looks at the file, and how long one read may wait for
 * new bytes before it lets the HTTP layer check on the client. */
#define CONSOLE_CHECK_USEC G_TIME_SPAN_SECOND
#define REPLACEMENT_CHAR   "\xEF\xBF\xBD"

/* Appends @len bytes to @carry, then moves the valid UTF-8 of @carry to @out,
 * with U+FFFD for each invalid byte.  An incomplete sequence at the end stays
 * in @carry (the next read may complete it) unless @flush. */
static void utf8_take(GByteArray *carry, const char *data, gsize len, gboolean flush, GString *out)
{
    g_byte_array_append(carry, (const guint8 *)data, (guint)len);
    const char *p = (const char *)carry->data;
    gsize left = carry->len;
    while (left > 0) {
        const char *end = NULL;
        if (g_utf8_validate_len(p, left, &end)) {
            g_string_append_len(out, p, (gssize)left);
            left = 0;
            break;
        }
        gsize valid = (gsize)(end - p);
        g_string_append_len(out, p, (gssize)valid);
        p += valid;
        left -= valid;
        if (!flush && g_utf8_get_char_validated(p, (gssize)left) == (gunichar)-2)
            break;
        g_string_append(out, REPLACEMENT_CHAR);
        p++;
        left--;
    }
    g_byte_array_remove_range(carry, 0, carry->len - (guint)left);
}

/* Where the last @lines lines of @data start (0 for all). */
static gsize tail_start(const char *data, gsize len, guint lines)
{
    if (lines == 0 || len == 0)
        return 0;
    /* A final newline ends the last line; it does not start another. */
    gsize i = data[len - 1] == '\n' ? len - 1 : len;
    guint seen = 0;
    while (i > 0) {
        if (data[i - 1] == '\n' && ++seen == lines)
            return i;
        i--;
    }
    return 0;
}

/* The raw tail of the open @fd of @size bytes into @out. */
static gboolean tail_read(int fd, const char *path, goffset size, guint lines, GByteArray *out,
                          GError **error)
{
    gsize want = (gsize)MIN(size, (goffset)CONSOLE_TAIL_MAX_BYTES);
    g_autofree char *buf = g_malloc(want + 1);
    gsize got = 0;
    while (got < want) {
        ssize_t n = pread(fd, buf + got, want - got, size - (goffset)want + (goffset)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "cannot read %s: %s", path,
                        g_strerror(errno));
            return FALSE;
        }
        if (n == 0)
            break; /* truncated meanwhile: what we have is the tail */
        got += (gsize)n;
    }
    gsize start = tail_start(buf, got, lines);
    g_byte_array_append(out, (const guint8 *)buf + start, (guint)(got - start));
    return TRUE;
}

/* Opens @path; -1 with errno ENOENT when it does not exist yet. */
static int console_open(const char *path, struct stat *st, GError **error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno != ENOENT)
            g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "cannot open %s: %s", path,
                        g_strerror(errno));
        return -1;
    }
    const char *problem = fstat(fd, st) != 0      ? g_strerror(errno)
                          : !S_ISREG(st->st_mode) ? "not a regular file"
                                                  : NULL;
    if (problem != NULL) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "%s: %s", path, problem);
        close(fd);
        return -1;
    }
    return fd;
}

char *console_tail(const char *path, guint lines, GError **error)
{
    g_return_val_if_fail(path != NULL, NULL);
    struct stat st;
    g_autoptr(GError) local = NULL;
    int fd = console_open(path, &st, &local);
    if (fd < 0) {
        if (local == NULL)
            return g_strdup("");
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    g_autoptr(GByteArray) raw = g_byte_array_new();
    gboolean ok = tail_read(fd, path, st.st_size, lines, raw, error);
    close(fd);
    if (!ok)
        return NULL;
    g_autoptr(GByteArray) carry = g_byte_array_new();
    GString *text = g_string_sized_new(raw->len + 1);
    utf8_take(carry, (const char *)raw->data, raw->len, TRUE, text);
    return g_string_free(text, FALSE);
}

/* ---- follow --------------------------------------------------------------- */

typedef struct {
    char *path;
    guint lines;
    gboolean (*still_allowed)(gpointer data);
    gpointer data;
    GDestroyNotify free_data;
    gboolean started; /* the tail was read */
    int fd;           /* the file being followed, or -1 while there is none */
    dev_t dev;
    ino_t ino;
    goffset offset; /* bytes of fd read so far */
    GByteArray *carry;
    GString *pending; /* text not handed out yet */
    gsize pending_pos;
    gint64 next_check; /* when to ask still_allowed next */
    gboolean failed;
} ConsoleFollow;

static void follow_close(ConsoleFollow *follow)
{
    if (follow->fd >= 0)
        close(follow->fd);
    follow->fd = -1;
    follow->offset = 0;
    g_byte_array_set_size(follow->carry, 0);
}

static void follow_free(gpointer data)
{
    ConsoleFollow *follow = data;
    if (follow == NULL)
        return;
    follow_close(follow);
    if (follow->free_data != NULL)
        follow->free_data(follow->data);
    g_byte_array_unref(follow->carry);
    g_string_free(follow->pending, TRUE);
    g_free(follow->path);
    g_free(follow);
}

/* Opens the file when there is none or another one took its path (rotated
 * or recreated); FALSE when there is no file to read (yet). */
static gboolean follow_reopen(ConsoleFollow *follow)
{
    struct stat st;
    if (stat(follow->path, &st) != 0)
        return follow->fd >= 0; /* removed: what was written to it still counts */
    if (follow->fd >= 0 && st.st_dev == follow->dev && st.st_ino == follow->ino)
        return TRUE;
    g_autoptr(GError) error = NULL;
    int fd = console_open(follow->path, &st, &error);
    if (fd < 0) {
        if (error != NULL) {
            g_debug("console follow: %s", error->message);
            follow->failed = TRUE;
        }
        return follow->fd >= 0;
    }
    follow_close(follow);
    follow->fd = fd;
    follow->dev = st.st_dev;
    follow->ino = st.st_ino;
    return TRUE;
}

/* Reads what was appended since the last read into pending; FALSE when there
 * was nothing new. */
static gboolean follow_poll(ConsoleFollow *follow)
{
    struct stat st;
    if (!follow_reopen(follow) || fstat(follow->fd, &st) != 0)
        return FALSE;
    if (st.st_size < follow->offset) {
        /* Truncated by a restart: the new output starts at 0. */
        follow->offset = 0;
        g_byte_array_set_size(follow->carry, 0);
    }
    if (st.st_size == follow->offset)
        return FALSE;
    gsize want = (gsize)MIN(st.st_size - follow->offset, (goffset)CONSOLE_READ_CHUNK);
    g_autofree char *buf = g_malloc(want);
    ssize_t n = pread(follow->fd, buf, want, follow->offset);
    if (n <= 0) {
        if (n < 0 && errno != EINTR) {
            g_debug("console follow: cannot read %s: %s", follow->path, g_strerror(errno));
            follow->failed = TRUE;
        }
        return FALSE;
    }
    follow->offset += n;
    utf8_take(follow->carry, buf, (gsize)n, FALSE, follow->pending);
    return follow->pending->len > follow->pending_pos;
}

static gssize follow_hand_out(ConsoleFollow *follow, char *buf, gsize max)
{
    gsize len = MIN(max, follow->pending->len - follow->pending_pos);
    memcpy(buf, follow->pending->str + follow->pending_pos, len);
    follow->pending_pos += len;
    if (follow->pending_pos == follow->pending->len) {
        g_string_truncate(follow->pending, 0);
        follow->pending_pos = 0;
    }
    return (gssize)len;
}

/* The tail, read from the same open file the follow goes on with, so that
 * nothing is lost or repeated between the two. */
static void follow_start(ConsoleFollow *follow)
{
    follow->started = TRUE;
    if (!follow_reopen(follow))
        return;
    struct stat st;
    g_autoptr(GError) error = NULL;
    g_autoptr(GByteArray) raw = g_byte_array_new();
    if (fstat(follow->fd, &st) != 0 ||
        !tail_read(follow->fd, follow->path, st.st_size, follow->lines, raw, &error)) {
        g_debug("console follow: %s", error ? error->message : g_strerror(errno));
        follow->failed = TRUE;
        return;
    }
    follow->offset = st.st_size;
    utf8_take(follow->carry, (const char *)raw->data, raw->len, FALSE, follow->pending);
}

static gssize follow_read(gpointer data, char *buf, gsize max)
{
    ConsoleFollow *follow = data;
    gint64 now = g_get_monotonic_time();

    if (!follow->started)
        follow_start(follow);
    if (follow->pending->len > follow->pending_pos)
        return follow_hand_out(follow, buf, max);
    if (follow->failed)
        return -1;
    /* One look per call: the HTTP layer parks the stream in between. */
    if (now >= follow->next_check) {
        if (follow->still_allowed != NULL && !follow->still_allowed(follow->data))
            return -1;
        follow->next_check = now + CONSOLE_CHECK_USEC;
    }
    if (follow_poll(follow))
        return follow_hand_out(follow, buf, max);
    return follow->failed ? -1 : 0;
}

HttpReply *console_follow(const char *path, guint lines, gboolean (*still_allowed)(gpointer data),
                          gpointer data, GDestroyNotify free_data)
{
    g_return_val_if_fail(path != NULL, NULL);
    ConsoleFollow *follow = g_new0(ConsoleFollow, 1);
    follow->path = g_strdup(path);
    follow->lines = lines;
    follow->still_allowed = still_allowed;
    follow->data = data;
    follow->free_data = free_data;
    follow->fd = -1;
    follow->carry = g_byte_array_new();
    follow->pending = g_string_new(NULL);
    follow->next_check = g_get_monotonic_time() + CONSOLE_CHECK_USEC;
    return http_reply_stream(200, CONSOLE_CONTENT_TYPE, follow_read, follow, follow_free);
}
