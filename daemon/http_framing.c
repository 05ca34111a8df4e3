#include "daemon/http_framing.h"

#include "daemon/error.h"

#include <string.h>

static guint count_args(const char *target, gsize len)
{
    const char *query = memchr(target, '?', len);
    if (query == NULL)
        return 0;
    guint args = 1;
    for (const char *p = query; p < target + len; p++)
        args += *p == '&';
    return args;
}

void http_head_init(HttpHead *head, const char *target, const char *version)
{
    memset(head, 0, sizeof(*head));
    head->target_length = target ? strlen(target) : 0;
    head->target_args = target ? count_args(target, head->target_length) : 0;
    head->http11 = g_strcmp0(version, "HTTP/1.1") == 0;
}

static gboolean is_digits(const char *text)
{
    guint64 value;
    return g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT64, &value, NULL);
}

void http_head_add(HttpHead *head, const char *name, gsize name_len, const char *value,
                   gsize value_len)
{
    g_autofree char *trimmed = g_strstrip(g_strndup(value, value_len));

    head->header_count++;
    head->header_bytes += name_len + value_len + 4;
    if (name_len == 4 && g_ascii_strncasecmp(name, "Host", 4) == 0) {
        head->has_host = TRUE;
    } else if (name_len == 14 && g_ascii_strncasecmp(name, "Content-Length", 14) == 0) {
        /* Two lengths that differ: which one frames the body is anyone's guess. */
        if (head->has_content_length && g_strcmp0(head->content_length, trimmed) != 0)
            head->content_length_bad = TRUE;
        if (!is_digits(trimmed))
            head->content_length_bad = TRUE;
        if (!head->has_content_length)
            head->content_length = g_strdup(trimmed);
        head->has_content_length = TRUE;
    } else if (name_len == 17 && g_ascii_strncasecmp(name, "Transfer-Encoding", 17) == 0) {
        char *joined = head->transfer_encoding
                           ? g_strdup_printf("%s, %s", head->transfer_encoding, trimmed)
                           : g_strdup(trimmed);
        g_free(head->transfer_encoding);
        head->transfer_encoding = joined;
    }
}

void http_head_clear(HttpHead *head)
{
    g_free(head->content_length);
    g_free(head->transfer_encoding);
    memset(head, 0, sizeof(*head));
}

gboolean http_head_check(const HttpHead *head, GError **error)
{
    if (head->target_length > HTTP_MAX_URI) {
        g_set_error(error, TD_ERROR, TD_ERROR_URI_TOO_LONG, "the request target is over %d bytes",
                    HTTP_MAX_URI);
        return FALSE;
    }
    if (head->target_args > HTTP_MAX_QUERY_ARGS) {
        g_set_error(error, TD_ERROR, TD_ERROR_URI_TOO_LONG, "more than %d query parameters",
                    HTTP_MAX_QUERY_ARGS);
        return FALSE;
    }
    if (head->header_bytes > HTTP_MAX_HEADER_BYTES || head->header_count > HTTP_MAX_HEADERS) {
        g_set_error(error, TD_ERROR, TD_ERROR_HEADERS_TOO_LARGE,
                    "the request headers are over %d bytes or %d fields", HTTP_MAX_HEADER_BYTES,
                    HTTP_MAX_HEADERS);
        return FALSE;
    }
    if (head->http11 && !head->has_host) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "an HTTP/1.1 request needs a Host header");
        return FALSE;
    }
    /* RFC 9112 6.3: a proxy in front of us may frame the body by the other
     * header, and what follows it would be read as a second request. */
    if (head->transfer_encoding != NULL && head->has_content_length) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "Content-Length and Transfer-Encoding together: the body's length is "
                    "ambiguous");
        return FALSE;
    }
    if (head->transfer_encoding != NULL &&
        g_ascii_strcasecmp(head->transfer_encoding, "chunked") != 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_NOT_IMPLEMENTED,
                    "unsupported Transfer-Encoding '%s': only chunked is", head->transfer_encoding);
        return FALSE;
    }
    if (head->content_length_bad) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "bad Content-Length: one whole number of bytes expected");
        return FALSE;
    }
    return TRUE;
}

/* The end of the line starting at @p (its '\n'), or NULL. */
static const char *line_end(const char *p, const char *end)
{
    return memchr(p, '\n', (gsize)(end - p));
}

/* Without its '\r' (and the '\n' at @eol). */
static gsize line_length(const char *p, const char *eol)
{
    gsize len = (gsize)(eol - p);
    return len > 0 && p[len - 1] == '\r' ? len - 1 : len;
}

/* Bytes no request line or header field may hold (RFC 9110 5.5: CTLs but
 * tab; libmicrohttpd would answer them with its own HTML). */
static gboolean has_control(const char *p, gsize len)
{
    for (gsize i = 0; i < len; i++)
        if (((guchar)p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
            return TRUE;
    return FALSE;
}

HttpScan http_head_scan(const char *buf, gsize len, GError **error)
{
    const char *end = buf + len;
    const char *p = buf;
    HttpHead head;

    /* RFC 9112 2.2: empty lines before a request are ignored. */
    while (p < end && (*p == '\r' || *p == '\n'))
        p++;
    const char *eol = line_end(p, end);
    if (eol == NULL) {
        if ((gsize)(end - p) > HTTP_MAX_URI + 32) {
            g_set_error(error, TD_ERROR, TD_ERROR_URI_TOO_LONG,
                        "the request target is over %d bytes", HTTP_MAX_URI);
            return HTTP_SCAN_BAD;
        }
        return HTTP_SCAN_INCOMPLETE;
    }
    gsize line_len = line_length(p, eol);
    g_autofree char *line = g_strndup(p, line_len);
    g_auto(GStrv) parts = g_strsplit(line, " ", -1);
    if (has_control(p, line_len) || g_strv_length(parts) != 3 || parts[0][0] == '\0' ||
        parts[1][0] == '\0' || !g_str_has_prefix(parts[2], "HTTP/")) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "malformed request line: expected METHOD TARGET HTTP/1.1");
        return HTTP_SCAN_BAD;
    }
    if (!g_str_equal(parts[2], "HTTP/1.1") && !g_str_equal(parts[2], "HTTP/1.0")) {
        g_set_error(error, TD_ERROR, TD_ERROR_HTTP_VERSION,
                    "only HTTP/1.1 and HTTP/1.0 are served");
        return HTTP_SCAN_BAD;
    }
    http_head_init(&head, parts[1], parts[2]);
    gboolean complete = FALSE;
    for (p = eol + 1; p < end; p = eol + 1) {
        eol = line_end(p, end);
        if (eol == NULL)
            break;
        gsize n = line_length(p, eol);
        if (n == 0) {
            complete = TRUE;
            break;
        }
        const char *colon = memchr(p, ':', n);
        /* A line starting with a blank folds onto the previous one (obsolete,
         * RFC 9112 5.2): refused, like a name with blanks in it. */
        if (colon == NULL || colon == p || has_control(p, n) || g_ascii_isspace(*p) ||
            memchr(p, ' ', (gsize)(colon - p)) != NULL || memchr(p, '\t', (gsize)(colon - p))) {
            http_head_clear(&head);
            g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "malformed header line");
            return HTTP_SCAN_BAD;
        }
        http_head_add(&head, p, (gsize)(colon - p), colon + 1, n - (gsize)(colon + 1 - p));
    }
    /* Checked on a partial head too, for what is already wrong in it (sizes
     * past the limits, conflicting framing); Host only once all is in. */
    if (!complete)
        head.has_host = TRUE;
    gboolean ok = http_head_check(&head, error);
    http_head_clear(&head);
    if (!ok)
        return HTTP_SCAN_BAD;
    if (!complete && len >= HTTP_MAX_HEAD) {
        g_set_error(error, TD_ERROR, TD_ERROR_HEADERS_TOO_LARGE,
                    "the request headers are over %d bytes", HTTP_MAX_HEADER_BYTES);
        return HTTP_SCAN_BAD;
    }
    return complete ? HTTP_SCAN_OK : HTTP_SCAN_INCOMPLETE;
}
