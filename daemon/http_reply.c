/* Replies, error bodies, entity tags and wakers of turtled's HTTP layer. */
#include "daemon/http-private.h"

#include "api/error.h"
#include "api/error_body.h"
#include "api/json.h"
#include "daemon/error.h"

#include <stdarg.h>
#include <string.h>

/* ---- wakers ------------------------------------------------------------- */

struct HttpWaker {
    gint
        refs; /* g_atomic_int_*: inline atomics ThreadSanitizer sees (grefcount's are in libglib) */
    GMutex lock;
    HttpServer *server;
    struct MHD_Connection *connection; /* while attached */
    gboolean suspended;                /* by park, until a wake-up */
    gboolean woken;                    /* a wake-up came while running: do not park */
};

static HttpWaker *waker_new(void)
{
    HttpWaker *waker = g_new0(HttpWaker, 1);
    g_atomic_int_set(&waker->refs, 1);
    g_mutex_init(&waker->lock);
    return waker;
}

HttpWaker *http_waker_ref(HttpWaker *waker)
{
    g_atomic_int_inc(&waker->refs);
    return waker;
}

void http_waker_unref(HttpWaker *waker)
{
    if (waker == NULL || !g_atomic_int_dec_and_test(&waker->refs))
        return;
    g_mutex_clear(&waker->lock);
    g_free(waker);
}

void http_waker_wake(HttpWaker *waker)
{
    g_mutex_lock(&waker->lock);
    if (waker->suspended && waker->connection != NULL) {
        waker->suspended = FALSE;
        MHD_resume_connection(waker->connection);
    } else {
        waker->woken = TRUE;
    }
    g_mutex_unlock(&waker->lock);
}

void http_waker_attach(HttpWaker *waker, HttpServer *server, struct MHD_Connection *connection)
{
    g_mutex_lock(&waker->lock);
    waker->server = server;
    waker->connection = connection;
    g_mutex_unlock(&waker->lock);
    g_mutex_lock(&server->lock);
    if (g_hash_table_add(server->wakers, waker))
        http_waker_ref(waker);
    g_mutex_unlock(&server->lock);
}

void http_waker_park(HttpWaker *waker)
{
    g_mutex_lock(&waker->lock);
    if (waker->woken)
        waker->woken = FALSE; /* data came meanwhile: run again at once */
    else if (waker->connection != NULL && !waker->suspended &&
             !http_server_stopping(waker->server)) {
        /* (A stopping server never parks: it must resume everything.) */
        waker->suspended = TRUE;
        MHD_suspend_connection(waker->connection);
    }
    g_mutex_unlock(&waker->lock);
}

void http_waker_detach(HttpWaker *waker)
{
    g_mutex_lock(&waker->lock);
    HttpServer *server = waker->server;
    waker->connection = NULL;
    waker->suspended = FALSE;
    g_mutex_unlock(&waker->lock);
    if (server == NULL)
        return;
    g_mutex_lock(&server->lock);
    gboolean removed = g_hash_table_remove(server->wakers, waker);
    g_mutex_unlock(&server->lock);
    if (removed)
        http_waker_unref(waker);
}

/* ---- replies ------------------------------------------------------------ */

static HttpReply *reply_new(unsigned status, const char *content_type)
{
    HttpReply *reply = g_new0(HttpReply, 1);
    reply->status = status;
    reply->content_type = g_strdup(content_type);
    reply->headers = g_ptr_array_new_with_free_func(g_free);
    return reply;
}

void http_reply_free(HttpReply *reply)
{
    if (reply == NULL)
        return;
    /* A stream that never reached a client still owns its data. */
    if (reply->free_data != NULL)
        reply->free_data(reply->data);
    g_free(reply->content_type);
    g_clear_pointer(&reply->waker, http_waker_unref);
    g_clear_pointer(&reply->body, g_bytes_unref);
    g_ptr_array_unref(reply->headers);
    g_free(reply);
}

HttpReply *http_reply_json(unsigned status, json_object *body)
{
    g_autoptr(json_object) owned = body;
    HttpReply *reply = reply_new(status, "application/json");
    char *text = api_json_to_string(owned);
    reply->body = g_bytes_new_take(text, strlen(text));
    return reply;
}

HttpReply *http_reply_empty(unsigned status)
{
    return reply_new(status, NULL);
}

HttpReply *http_reply_text(unsigned status, const char *content_type, const char *text)
{
    HttpReply *reply = reply_new(status, content_type);
    reply->body = g_bytes_new(text, strlen(text));
    return reply;
}

void http_reply_add_header(HttpReply *reply, const char *name, const char *value)
{
    g_return_if_fail(reply != NULL && name != NULL && value != NULL);
    g_ptr_array_add(reply->headers, g_strdup(name));
    g_ptr_array_add(reply->headers, g_strdup(value));
}

HttpReply *http_reply_stream(unsigned status, const char *content_type, HttpStreamRead read,
                             gpointer data, GDestroyNotify free_data)
{
    g_return_val_if_fail(read != NULL, NULL);
    HttpReply *reply = reply_new(status, content_type);
    reply->read = read;
    reply->data = data;
    reply->free_data = free_data;
    reply->waker = waker_new();
    return reply;
}

HttpReply *http_reply_upgrade(HttpUpgradeStart start, HttpUpgradeStop stop, gpointer data,
                              GDestroyNotify free_data)
{
    g_return_val_if_fail(start != NULL, NULL);
    HttpReply *reply = reply_new(101, NULL);
    reply->upgrade_start = start;
    reply->upgrade_stop = stop;
    reply->data = data;
    reply->free_data = free_data;
    return reply;
}

HttpReply *http_reply_deferred(HttpDeferredPoll poll, gpointer data, GDestroyNotify free_data)
{
    g_return_val_if_fail(poll != NULL, NULL);
    HttpReply *reply = reply_new(0, NULL);
    reply->poll = poll;
    reply->data = data;
    reply->free_data = free_data;
    reply->waker = waker_new();
    return reply;
}

const char *http_reply_header(const HttpReply *reply, const char *name)
{
    for (guint i = 0; i + 1 < reply->headers->len; i += 2)
        if (g_ascii_strcasecmp(reply->headers->pdata[i], name) == 0)
            return reply->headers->pdata[i + 1];
    return NULL;
}

HttpWaker *http_reply_waker(HttpReply *reply)
{
    g_return_val_if_fail(reply != NULL && reply->waker != NULL, NULL);
    return http_waker_ref(reply->waker);
}

/* ---- entity tags ---------------------------------------------------------- */

/* The opaque part of a tag, without "W/"; FALSE when @tag is malformed. */
static gboolean etag_split(const char *tag, gsize len, gboolean *weak, const char **opaque,
                           gsize *opaque_len)
{
    *weak = len >= 2 && tag[0] == 'W' && tag[1] == '/';
    if (*weak) {
        tag += 2;
        len -= 2;
    }
    if (len < 2 || tag[0] != '"' || tag[len - 1] != '"')
        return FALSE;
    *opaque = tag + 1;
    *opaque_len = len - 2;
    return TRUE;
}

gboolean http_etag_list_matches(const char *header, const char *etag, gboolean weak)
{
    gboolean etag_weak;
    const char *want;
    gsize want_len;

    if (header == NULL || etag == NULL ||
        !etag_split(etag, strlen(etag), &etag_weak, &want, &want_len))
        return FALSE;
    g_auto(GStrv) items = g_strsplit(header, ",", -1);
    for (guint i = 0; items[i] != NULL; i++) {
        const char *item = g_strstrip(items[i]);
        gboolean item_weak;
        const char *opaque;
        gsize opaque_len;
        if (strcmp(item, "*") == 0)
            return TRUE;
        if (!etag_split(item, strlen(item), &item_weak, &opaque, &opaque_len))
            continue;
        if (!weak && (item_weak || etag_weak))
            continue; /* the strong comparison never matches a weak tag */
        if (opaque_len == want_len && memcmp(opaque, want, want_len) == 0)
            return TRUE;
    }
    return FALSE;
}

HttpReply *http_request_if_match(const HttpRequest *request, const char *etag)
{
    const char *if_match = http_request_header(request, "if-match");
    if (if_match == NULL || http_etag_list_matches(if_match, etag, FALSE))
        return NULL;
    HttpReply *reply = http_reply_errorf(TD_ERROR_PRECONDITION_FAILED,
                                         "the resource changed: If-Match does not name its "
                                         "current ETag; read it again");
    http_reply_add_header(reply, "ETag", etag);
    return reply;
}

const char *http_request_header(const HttpRequest *request, const char *name)
{
    if (request->headers == NULL)
        return NULL;
    g_autofree char *lower = g_ascii_strdown(name, -1);
    return g_hash_table_lookup(request->headers, lower);
}

/* Status and wire code of each TdErrorCode, in enum order. */
static const struct {
    unsigned status;
    const char *code;
} td_error_wire[] = {
    [TD_ERROR_BAD_REQUEST] = {400, "bad_request"},
    [TD_ERROR_UNAUTHORIZED] = {401, "unauthorized"},
    [TD_ERROR_FORBIDDEN] = {403, "forbidden"},
    [TD_ERROR_QUOTA_EXCEEDED] = {403, "quota_exceeded"},
    [TD_ERROR_NOT_FOUND] = {404, "not_found"},
    [TD_ERROR_METHOD_NOT_ALLOWED] = {405, "method_not_allowed"},
    [TD_ERROR_CONFLICT] = {409, "conflict"},
    [TD_ERROR_NO_CAPACITY] = {409, "no_capacity"},
    [TD_ERROR_PRECONDITION_FAILED] = {412, "precondition_failed"},
    [TD_ERROR_GONE] = {410, "gone"},
    [TD_ERROR_REQUEST_TIMEOUT] = {408, "request_timeout"},
    [TD_ERROR_TOO_MANY_REQUESTS] = {429, "too_many_requests"},
    [TD_ERROR_URI_TOO_LONG] = {414, "uri_too_long"},
    [TD_ERROR_HEADERS_TOO_LARGE] = {431, "headers_too_large"},
    [TD_ERROR_NOT_IMPLEMENTED] = {501, "not_implemented"},
    [TD_ERROR_HTTP_VERSION] = {505, "http_version_not_supported"},
    [TD_ERROR_LENGTH_REQUIRED] = {411, "length_required"},
    [TD_ERROR_PAYLOAD_TOO_LARGE] = {413, "payload_too_large"},
    [TD_ERROR_UNSUPPORTED_MEDIA_TYPE] = {415, "unsupported_media_type"},
    [TD_ERROR_INTERNAL] = {500, "internal"},
    [TD_ERROR_UNAVAILABLE] = {503, "unavailable"},
};

HttpReply *http_reply_error_body(unsigned status, const char *code, const char *message)
{
    HttpReply *reply = http_reply_json(status, api_error_body_to_json((int)status, code, message));
    if (status == 401)
        http_reply_add_header(reply, "WWW-Authenticate", "Bearer");
    return reply;
}

gboolean http_error_wire(int td_error_code, unsigned *status, const char **code)
{
    if (td_error_code < 0 || (gsize)td_error_code >= G_N_ELEMENTS(td_error_wire) ||
        td_error_wire[td_error_code].code == NULL)
        return FALSE;
    *status = td_error_wire[td_error_code].status;
    *code = td_error_wire[td_error_code].code;
    return TRUE;
}

const char *http_reason_phrase(unsigned status)
{
    const char *phrase = MHD_get_reason_phrase_for(status);
    return phrase != NULL && *phrase != '\0' ? phrase : "Error";
}

HttpReply *http_reply_error(const GError *error)
{
    if (error != NULL && error->domain == TD_ERROR && error->code >= 0 &&
        (gsize)error->code < G_N_ELEMENTS(td_error_wire) && td_error_wire[error->code].code) {
        /* Our own 500s say what failed; the operator needs to see them too. */
        if (error->code == TD_ERROR_INTERNAL)
            g_warning("internal error: %s", error->message);
        return http_reply_error_body(td_error_wire[error->code].status,
                                     td_error_wire[error->code].code, error->message);
    }
    if (error != NULL && error->domain == API_ERROR)
        return http_reply_error_body(400, "bad_request", error->message);
    /* Anything else is our bug or the system's: the client learns nothing of it. */
    g_warning("internal error answered as 500: %s (%s %d)", error ? error->message : "no error",
              error ? g_quark_to_string(error->domain) : "-", error ? error->code : 0);
    return http_reply_error_body(500, "internal", "internal error");
}

HttpReply *http_reply_errorf(int td_error_code, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    g_autofree char *message = g_strdup_vprintf(format, args);
    va_end(args);
    g_autoptr(GError) error = g_error_new_literal(TD_ERROR, td_error_code, message);
    return http_reply_error(error);
}
