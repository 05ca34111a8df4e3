/* turtled's HTTP layer on libmicrohttpd (see http.h).
 *
 * Threading: every listener is one MHD daemon in thread-per-connection mode.
 * Stream readers (events, console follow) block up to about a second waiting
 * for data, and a stream lasts as long as its client; with a fixed pool of N
 * threads, N open streams would stall every other request behind them.  A
 * thread per connection keeps streams from starving short requests; the
 * connection limit bounds the thread count. */
#include "daemon/http.h"

#include "api/error.h"
#include "api/error_body.h"
#include "api/json.h"
#include "daemon/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define LISTEN_BACKLOG     64
#define CONNECTION_LIMIT   256
#define CONNECTION_TIMEOUT 60 /* seconds a connection may sit idle */
#define STREAM_BLOCK_SIZE  (16 * 1024)
#define STREAM_IDLE_USEC   (250 * G_TIME_SPAN_MILLISECOND)
#define STOP_GRACE_USEC    (2 * G_TIME_SPAN_SECOND)
#define DRAIN_USEC         (10 * G_TIME_SPAN_SECOND)
/* A chunked body over the cap is read and dropped so the client gets its 413;
 * past this much we stop being polite and drop the connection. */
#define DISCARD_LIMIT    (4 * HTTP_MAX_JSON_BODY)
#define METRIC_UNMATCHED "unmatched"
/* Per connection; it bounds the read buffer, hence the size of the pieces an
 * upload arrives in: about 16 KiB with the default 32 KiB, 64 KiB or more with
 * this, a fifth of the calls into the handler. */
#define CONNECTION_MEMORY_LIMIT ((size_t)256 * 1024)
#define UPLOAD_MEDIA_TYPE       "application/octet-stream"

/* ---- wakers ------------------------------------------------------------- */

struct HttpWaker {
    grefcount refs;
};

static HttpWaker *waker_new(void)
{
    HttpWaker *waker = g_new0(HttpWaker, 1);
    g_ref_count_init(&waker->refs);
    return waker;
}

HttpWaker *http_waker_ref(HttpWaker *waker)
{
    g_ref_count_inc(&waker->refs);
    return waker;
}

void http_waker_unref(HttpWaker *waker)
{
    if (waker != NULL && g_ref_count_dec(&waker->refs))
        g_free(waker);
}

void http_waker_wake(HttpWaker *waker)
{
    /* This layer polls idle streams; the wake-up only matters to a layer
     * that parks them. */
    (void)waker;
}

/* ---- replies ------------------------------------------------------------ */

struct HttpReply {
    unsigned status;
    char *content_type;
    GBytes *body;       /* buffered replies */
    GPtrArray *headers; /* name, value, name, value, ... */
    HttpStreamRead read;
    gpointer data;
    GDestroyNotify free_data;
    HttpWaker *waker; /* streams only */
};

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
    [TD_ERROR_LENGTH_REQUIRED] = {411, "length_required"},
    [TD_ERROR_PAYLOAD_TOO_LARGE] = {413, "payload_too_large"},
    [TD_ERROR_UNSUPPORTED_MEDIA_TYPE] = {415, "unsupported_media_type"},
    [TD_ERROR_INTERNAL] = {500, "internal"},
    [TD_ERROR_UNAVAILABLE] = {503, "unavailable"},
};

static HttpReply *reply_error_body(unsigned status, const char *code, const char *message)
{
    HttpReply *reply = http_reply_json(status, api_error_body_to_json((int)status, code, message));
    if (status == 401)
        http_reply_add_header(reply, "WWW-Authenticate", "Bearer");
    return reply;
}

HttpReply *http_reply_error(const GError *error)
{
    if (error != NULL && error->domain == TD_ERROR && error->code >= 0 &&
        (gsize)error->code < G_N_ELEMENTS(td_error_wire) && td_error_wire[error->code].code) {
        /* Our own 500s say what failed; the operator needs to see them too. */
        if (error->code == TD_ERROR_INTERNAL)
            g_warning("internal error: %s", error->message);
        return reply_error_body(td_error_wire[error->code].status, td_error_wire[error->code].code,
                                error->message);
    }
    if (error != NULL && error->domain == API_ERROR)
        return reply_error_body(400, "bad_request", error->message);
    /* Anything else is our bug or the system's: the client learns nothing of it. */
    g_warning("internal error answered as 500: %s (%s %d)", error ? error->message : "no error",
              error ? g_quark_to_string(error->domain) : "-", error ? error->code : 0);
    return reply_error_body(500, "internal", "internal error");
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

/* ---- server ------------------------------------------------------------- */

typedef struct {
    const HttpRoute *route;
    char **segments; /* the pattern split at '/'; "{name}" segments capture */
} CompiledRoute;

typedef struct {
    HttpServer *server;
    struct MHD_Daemon *daemon;
    int fd;           /* the listening socket while it is ours (not MHD's) to close */
    gboolean is_unix; /* callers may be the operator only here */
    char *unix_path;
    dev_t unix_dev; /* to unlink only the socket file we made */
    ino_t unix_ino;
    guint16 port;
} Listener;

struct HttpServer {
    CompiledRoute *routes;
    gsize n_routes;
    HttpTokenLookup lookup;
    gpointer app;
    GPtrArray *listeners;
    GMutex lock;     /* guards counts, stopping and streams */
    GCond stop_cond; /* wakes idle streams at shutdown, and shutdown when one ends */
    gboolean stopping;
    guint streams;          /* streams handed to MHD and not freed yet */
    guint in_flight;        /* requests begun and not completed (answer sent) yet */
    GHashTable *upload_fds; /* sockets of uploads under way, cut when stopping */
    GHashTable *counts;     /* "metric\tstatus" -> GUINT_TO_POINTER(count) */
};

HttpServer *http_server_new(const HttpRoute *routes, gsize n_routes, HttpTokenLookup lookup,
                            gpointer app)
{
    g_return_val_if_fail(routes != NULL || n_routes == 0, NULL);
    HttpServer *server = g_new0(HttpServer, 1);
    server->routes = g_new0(CompiledRoute, n_routes);
    server->n_routes = n_routes;
    for (gsize i = 0; i < n_routes; i++) {
        server->routes[i].route = &routes[i];
        server->routes[i].segments = g_strsplit(routes[i].pattern, "/", -1);
    }
    server->lookup = lookup;
    server->app = app;
    server->listeners = g_ptr_array_new();
    g_mutex_init(&server->lock);
    g_cond_init(&server->stop_cond);
    server->counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    server->upload_fds = g_hash_table_new(g_direct_hash, g_direct_equal);
    return server;
}

static gboolean server_stopping(HttpServer *server)
{
    g_mutex_lock(&server->lock);
    gboolean stopping = server->stopping;
    g_mutex_unlock(&server->lock);
    return stopping;
}

static void server_count(HttpServer *server, const char *metric, unsigned status)
{
    char *key = g_strdup_printf("%s\t%u", metric, status);
    g_mutex_lock(&server->lock);
    guint count = GPOINTER_TO_UINT(g_hash_table_lookup(server->counts, key));
    g_hash_table_replace(server->counts, key, GUINT_TO_POINTER(count + 1));
    g_mutex_unlock(&server->lock);
}

GHashTable *http_server_request_counts(HttpServer *server)
{
    GHashTable *copy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTableIter iter;
    gpointer key, value;

    g_mutex_lock(&server->lock);
    g_hash_table_iter_init(&iter, server->counts);
    while (g_hash_table_iter_next(&iter, &key, &value))
        g_hash_table_insert(copy, g_strdup(key), value);
    g_mutex_unlock(&server->lock);
    return copy;
}

/* ---- streams ------------------------------------------------------------ */

typedef struct {
    HttpServer *server;
    int fd; /* the client's socket, watched for a hang-up while idle */
    HttpStreamRead read;
    gpointer data;
    GDestroyNotify free_data;
} Stream;

/* Waits until @deadline or until the server stops, whichever comes first. */
static void stream_idle_wait(HttpServer *server, gint64 deadline)
{
    g_mutex_lock(&server->lock);
    while (!server->stopping && g_get_monotonic_time() < deadline)
        g_cond_wait_until(&server->stop_cond, &server->lock, deadline);
    g_mutex_unlock(&server->lock);
}

/* MHD only notices a client that left when a write fails, so a quiet stream
 * would hold its thread forever; a peer that closed (FIN or RST) shows here.
 * A client that only half-closes loses its stream too: HTTP clients don't. */
static gboolean stream_client_gone(const Stream *stream)
{
    struct pollfd pfd = {.fd = stream->fd, .events = POLLRDHUP};
    if (stream->fd < 0 || poll(&pfd, 1, 0) <= 0)
        return FALSE;
    return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    Stream *stream = cls;
    (void)pos;

    if (server_stopping(stream->server))
        return MHD_CONTENT_READER_END_OF_STREAM;
    gint64 started = g_get_monotonic_time();
    gssize n = stream->read(stream->data, buf, max);
    if (n < 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n > 0)
        return (ssize_t)MIN((gsize)n, max);
    /* MHD calls again at once after a 0: a reader that returned quickly
     * would make this thread spin, so pace it (and wake up on shutdown). */
    stream_idle_wait(stream->server, started + STREAM_IDLE_USEC);
    if (stream_client_gone(stream))
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return server_stopping(stream->server) ? MHD_CONTENT_READER_END_OF_STREAM : 0;
}

static void stream_free(void *cls)
{
    Stream *stream = cls;
    HttpServer *server = stream->server;
    if (stream->free_data != NULL)
        stream->free_data(stream->data);
    g_free(stream);
    g_mutex_lock(&server->lock);
    server->streams--;
    g_cond_broadcast(&server->stop_cond);
    g_mutex_unlock(&server->lock);
}

/* Tells streams to end and gives them until STOP_GRACE_USEC to send their
 * last chunk: MHD_stop_daemon cuts connections, and a cut stream looks
 * truncated to its client rather than ended. */
static void server_end_streams(HttpServer *server)
{
    gint64 deadline = g_get_monotonic_time() + STOP_GRACE_USEC;
    GHashTableIter iter;
    gpointer fd;

    g_mutex_lock(&server->lock);
    server->stopping = TRUE;
    g_cond_broadcast(&server->stop_cond);
    /* An upload would hold the drain until its client finished or went idle
     * for CONNECTION_TIMEOUT: cutting its socket (MHD still owns and closes
     * it) makes MHD's next read fail, and the upload is aborted at once. */
    g_hash_table_iter_init(&iter, server->upload_fds);
    while (g_hash_table_iter_next(&iter, &fd, NULL))
        shutdown(GPOINTER_TO_INT(fd), SHUT_RDWR);
    while (server->streams > 0 && g_get_monotonic_time() < deadline)
        g_cond_wait_until(&server->stop_cond, &server->lock, deadline);
    g_mutex_unlock(&server->lock);
}

/* Lets requests in flight finish and send their answers (SIGTERM drains),
 * for at most DRAIN_USEC: a handler that never returns must not hang us. */
static void server_drain(HttpServer *server)
{
    gint64 deadline = g_get_monotonic_time() + DRAIN_USEC;
    g_mutex_lock(&server->lock);
    while (server->in_flight > 0 && g_get_monotonic_time() < deadline)
        g_cond_wait_until(&server->stop_cond, &server->lock, deadline);
    if (server->in_flight > 0)
        g_warning("stopping with %u request(s) still in flight", server->in_flight);
    g_mutex_unlock(&server->lock);
}

/* ---- replies to MHD ----------------------------------------------------- */

static struct MHD_Response *response_from_stream(HttpServer *server, HttpReply *reply,
                                                 struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    Stream *stream = g_new0(Stream, 1);
    stream->server = server;
    stream->fd = info != NULL ? info->connect_fd : -1;
    stream->read = reply->read;
    stream->data = reply->data;
    stream->free_data = reply->free_data;
    /* From here the stream owns the data, whatever MHD does with it. */
    reply->free_data = NULL;
    g_mutex_lock(&server->lock);
    server->streams++;
    g_mutex_unlock(&server->lock);
    struct MHD_Response *response = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, STREAM_BLOCK_SIZE, stream_read, stream, stream_free);
    if (response == NULL) {
        stream_free(stream);
        return NULL;
    }
    /* The connection had its idle timeout lifted for the stream: it must not
     * linger as a keep-alive connection without one afterwards. */
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
    return response;
}

static struct MHD_Response *response_from_reply(HttpServer *server, HttpReply *reply,
                                                struct MHD_Connection *connection)
{
    struct MHD_Response *response;
    if (reply->read != NULL) {
        response = response_from_stream(server, reply, connection);
    } else {
        gsize len = 0;
        const void *data = reply->body ? g_bytes_get_data(reply->body, &len) : NULL;
        response = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    }
    if (response == NULL)
        return NULL;
    if (reply->content_type != NULL)
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, reply->content_type);
    for (guint i = 0; i + 1 < reply->headers->len; i += 2)
        MHD_add_response_header(response, reply->headers->pdata[i], reply->headers->pdata[i + 1]);
    return response;
}

/* ---- requests ----------------------------------------------------------- */

typedef struct {
    Listener *listener;
    const CompiledRoute *route; /* NULL until a route matched path and method */
    const char *metric;
    GHashTable *params;
    GHashTable *query;
    GHashTable *headers;
    HttpCaller caller;
    HttpReply *refusal; /* decided before the body is complete */
    gboolean answered;
    GByteArray *body; /* json_body routes only, never over the cap */
    gsize discarded;
    guint64 content_length; /* upload routes: as declared, checked by MHD */
    gpointer upload;        /* upload routes: the handler's state from begin to finish/abort */
    int upload_fd;          /* the socket, registered in server->upload_fds, or -1 */
} Request;

/* Ends an upload that will not finish; a no-op when there is none (any more). */
static void request_upload_abort(Request *request)
{
    if (request->upload == NULL)
        return;
    request->route->route->upload->abort(g_steal_pointer(&request->upload));
}

static void request_upload_forget_fd(Request *request)
{
    HttpServer *server = request->listener->server;
    if (request->upload_fd < 0)
        return;
    g_mutex_lock(&server->lock);
    g_hash_table_remove(server->upload_fds, GINT_TO_POINTER(request->upload_fd));
    g_mutex_unlock(&server->lock);
    request->upload_fd = -1;
}

static void request_free(Request *request)
{
    /* The client left, timed out, or the server stopped mid-upload. */
    request_upload_abort(request);
    request_upload_forget_fd(request);
    g_clear_pointer(&request->params, g_hash_table_unref);
    g_clear_pointer(&request->query, g_hash_table_unref);
    g_clear_pointer(&request->headers, g_hash_table_unref);
    g_free(request->caller.tenant);
    if (request->caller.token != NULL)
        explicit_bzero(request->caller.token, strlen(request->caller.token));
    g_free(request->caller.token);
    http_reply_free(request->refusal);
    if (request->body != NULL)
        g_byte_array_unref(request->body);
    g_free(request);
}

static void request_refuse(Request *request, HttpReply *reply)
{
    if (request->refusal == NULL)
        request->refusal = reply;
    else
        http_reply_free(reply);
}

const char *http_request_query(const HttpRequest *request, const char *key)
{
    return request->query != NULL ? g_hash_table_lookup(request->query, key) : NULL;
}

const char *http_request_param(const HttpRequest *request, const char *key)
{
    return request->params != NULL ? g_hash_table_lookup(request->params, key) : NULL;
}

static const char *header(struct MHD_Connection *connection, const char *name)
{
    return MHD_lookup_connection_value(connection, MHD_HEADER_KIND, name);
}

/* Path segments, percent-decoded; NULL for a path no route can match (not
 * absolute, a bad escape, an encoded NUL). */
static char **path_segments(const char *path)
{
    if (path[0] != '/')
        return NULL;
    g_auto(GStrv) raw = g_strsplit(path, "/", -1);
    guint n = g_strv_length(raw);
    g_auto(GStrv) decoded = g_new0(char *, n + 1);
    for (guint i = 0; i < n; i++) {
        decoded[i] = g_uri_unescape_string(raw[i], NULL);
        if (decoded[i] == NULL)
            return NULL;
    }
    return g_steal_pointer(&decoded);
}

static gboolean is_capture(const char *segment)
{
    gsize len = strlen(segment);
    return len > 2 && segment[0] == '{' && segment[len - 1] == '}';
}

/* Matches decoded @segments against @route; fills @params when given. */
static gboolean route_matches(const CompiledRoute *route, char **segments, GHashTable *params)
{
    if (g_strv_length(route->segments) != g_strv_length(segments))
        return FALSE;
    for (guint i = 0; segments[i] != NULL; i++) {
        const char *pattern = route->segments[i];
        if (!is_capture(pattern)) {
            if (strcmp(pattern, segments[i]) != 0)
                return FALSE;
            continue;
        }
        /* A capture names one thing: an encoded '/' cannot smuggle in a path. */
        if (segments[i][0] == '\0' || strchr(segments[i], '/') != NULL)
            return FALSE;
        if (params != NULL)
            g_hash_table_insert(params, g_strndup(pattern + 1, strlen(pattern) - 2),
                                g_strdup(segments[i]));
    }
    return TRUE;
}

static const char *route_metric(const CompiledRoute *route)
{
    return route->route->metric_name ? route->route->metric_name : route->route->pattern;
}

static HttpReply *method_not_allowed(const char *method, GPtrArray *allowed)
{
    g_autoptr(GString) allow = g_string_new(NULL);
    for (guint i = 0; i < allowed->len; i++)
        g_string_append_printf(allow, "%s%s", i ? ", " : "", (const char *)allowed->pdata[i]);
    HttpReply *reply =
        http_reply_errorf(TD_ERROR_METHOD_NOT_ALLOWED, "method %s not allowed here", method);
    http_reply_add_header(reply, "Allow", allow->str);
    return reply;
}

/* Finds the route for @method and @url: sets request->route and params, or
 * refuses with 404 (no path matches) or 405 (only other methods do). */
static void request_route(Request *request, const char *method, const char *url)
{
    HttpServer *server = request->listener->server;
    g_auto(GStrv) segments = path_segments(url);
    g_autoptr(GPtrArray) allowed = g_ptr_array_new();

    request->metric = METRIC_UNMATCHED;
    for (gsize i = 0; segments != NULL && i < server->n_routes; i++) {
        const CompiledRoute *route = &server->routes[i];
        if (!route_matches(route, segments, NULL))
            continue;
        if (allowed->len == 0)
            request->metric = route_metric(route);
        if (strcmp(route->route->method, method) != 0) {
            if (!g_ptr_array_find_with_equal_func(allowed, route->route->method, g_str_equal, NULL))
                g_ptr_array_add(allowed, (gpointer)route->route->method);
            continue;
        }
        request->route = route;
        request->metric = route_metric(route);
        request->params = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        route_matches(route, segments, request->params);
        return;
    }
    if (allowed->len > 0)
        request_refuse(request, method_not_allowed(method, allowed));
    else
        request_refuse(request, http_reply_errorf(TD_ERROR_NOT_FOUND, "no such path: %s", url));
}

/* The uid of the peer of a UNIX-socket connection, or -1. */
static gint64 peer_uid(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (info == NULL || getsockopt(info->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return -1;
    return cred.uid;
}

/* The token of "Bearer <token68>", or NULL when malformed. */
static const char *bearer_token(const char *authorization)
{
    static const char scheme[] = "Bearer";
    if (g_ascii_strncasecmp(authorization, scheme, strlen(scheme)) != 0)
        return NULL;
    const char *token = authorization + strlen(scheme);
    if (*token != ' ')
        return NULL;
    while (*token == ' ')
        token++;
    gsize len = strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                              "0123456789-._~+/");
    len += strspn(token + len, "=");
    return len > 0 && token[len] == '\0' ? token : NULL;
}

/* Sets request->caller; a presented token must be valid wherever it is
 * presented, so that a revoked token never quietly falls back to uid-based
 * operator rights. */
static void request_authenticate(Request *request, struct MHD_Connection *connection)
{
    HttpServer *server = request->listener->server;
    const char *authorization = header(connection, MHD_HTTP_HEADER_AUTHORIZATION);

    request->caller.role = HTTP_CALLER_ANONYMOUS;
    if (authorization == NULL) {
        if (request->listener->is_unix && peer_uid(connection) == 0)
            request->caller.role = HTTP_CALLER_OPERATOR;
        return;
    }
    const char *token = bearer_token(authorization);
    if (token == NULL) {
        request_refuse(request,
                       http_reply_errorf(TD_ERROR_UNAUTHORIZED, "malformed Authorization header: "
                                                                "expected 'Bearer <token>'"));
        return;
    }
    char *tenant = server->lookup != NULL ? server->lookup(server->app, token) : NULL;
    if (tenant == NULL) {
        request_refuse(request,
                       http_reply_errorf(TD_ERROR_UNAUTHORIZED, "invalid or revoked token"));
        return;
    }
    request->caller.role = HTTP_CALLER_TENANT;
    request->caller.tenant = tenant;
    request->caller.token = g_strdup(token);
}

static void request_authorize(Request *request)
{
    HttpAccess access = request->route->route->access;
    HttpCallerRole role = request->caller.role;

    if (access == HTTP_ACCESS_ANYONE)
        return;
    if (role == HTTP_CALLER_ANONYMOUS)
        request_refuse(request,
                       http_reply_errorf(TD_ERROR_UNAUTHORIZED, "authentication required"));
    else if (access == HTTP_ACCESS_OPERATOR && role != HTTP_CALLER_OPERATOR)
        request_refuse(request, http_reply_errorf(TD_ERROR_FORBIDDEN, "operator only"));
    else if (access == HTTP_ACCESS_TENANT && role != HTTP_CALLER_TENANT)
        request_refuse(request, http_reply_errorf(TD_ERROR_FORBIDDEN, "tenants only"));
}

/* Query arguments arrive raw (see raw_unescape): '+' is a space, then
 * percent-decoding; FALSE on a bad escape. */
static gboolean query_add(GHashTable *query, const char *key, const char *value)
{
    g_autofree char *key_plus = g_strdelimit(g_strdup(key), "+", ' ');
    g_autofree char *value_plus = g_strdelimit(g_strdup(value ? value : ""), "+", ' ');
    char *decoded_key = g_uri_unescape_string(key_plus, NULL);
    char *decoded_value = g_uri_unescape_string(value_plus, NULL);

    if (decoded_key == NULL || decoded_value == NULL) {
        g_free(decoded_key);
        g_free(decoded_value);
        return FALSE;
    }
    /* The first occurrence wins, like a lookup on the raw string would. */
    if (g_hash_table_contains(query, decoded_key)) {
        g_free(decoded_key);
        g_free(decoded_value);
        return TRUE;
    }
    g_hash_table_insert(query, decoded_key, decoded_value);
    return TRUE;
}

typedef struct {
    GHashTable *query;
    gboolean bad;
} QueryParse;

static enum MHD_Result query_collect(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    QueryParse *parse = cls;
    (void)kind;
    if (!query_add(parse->query, key, value))
        parse->bad = TRUE;
    return MHD_YES;
}

static void request_parse_query(Request *request, struct MHD_Connection *connection)
{
    QueryParse parse = {
        .query = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free),
    };
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, query_collect, &parse);
    request->query = parse.query;
    if (parse.bad) {
        request_refuse(request, http_reply_errorf(TD_ERROR_BAD_REQUEST, "malformed query string"));
        return;
    }
    /* A misspelt parameter must not be silently ignored (?limt=5 would page
     * nothing and look like it worked). */
    const char *const *accepted = request->route->route->query;
    GHashTableIter iter;
    gpointer key;
    g_hash_table_iter_init(&iter, request->query);
    while (g_hash_table_iter_next(&iter, &key, NULL)) {
        if (accepted == NULL || !g_strv_contains(accepted, key)) {
            request_refuse(request,
                           http_reply_errorf(TD_ERROR_BAD_REQUEST, "unknown query parameter '%s'",
                                             (const char *)key));
            return;
        }
    }
}

static enum MHD_Result header_collect(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    GHashTable *headers = cls;
    (void)kind;
    char *name = g_ascii_strdown(key, -1);
    const char *before = g_hash_table_lookup(headers, name);
    /* Repeated list headers (If-Match: a, If-Match: b) mean one list. */
    g_hash_table_replace(headers, name,
                         before ? g_strdup_printf("%s, %s", before, value ? value : "")
                                : g_strdup(value ? value : ""));
    return MHD_YES;
}

static void request_collect_headers(Request *request, struct MHD_Connection *connection)
{
    request->headers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    MHD_get_connection_values(connection, MHD_HEADER_KIND, header_collect, request->headers);
}

/* @content_type is @media_type, optionally with parameters. */
static gboolean is_media_type(const char *content_type, const char *media_type)
{
    if (content_type == NULL)
        return FALSE;
    g_autofree char *base = g_strndup(content_type, strcspn(content_type, ";"));
    return g_ascii_strcasecmp(g_strstrip(base), media_type) == 0;
}

/* "application/json", optionally with parameters; a charset must be UTF-8
 * because that is the only encoding JSON has. */
static gboolean is_json_media_type(const char *content_type)
{
    if (!is_media_type(content_type, "application/json"))
        return FALSE;
    g_auto(GStrv) parts = g_strsplit(content_type, ";", -1);
    for (guint i = 1; parts[i] != NULL; i++) {
        char *param = g_strstrip(parts[i]);
        if (g_ascii_strncasecmp(param, "charset=", 8) != 0)
            continue;
        const char *charset = param + 8;
        if (g_ascii_strcasecmp(charset, "utf-8") != 0 &&
            g_ascii_strcasecmp(charset, "\"utf-8\"") != 0)
            return FALSE;
    }
    return TRUE;
}

/* Checks what the headers say about the body, before any of it is read. */
static void request_check_body_headers(Request *request, struct MHD_Connection *connection)
{
    const char *length_header = header(connection, MHD_HTTP_HEADER_CONTENT_LENGTH);
    guint64 length = 0;
    if (length_header != NULL &&
        !g_ascii_string_to_unsigned(length_header, 10, 0, G_MAXUINT64, &length, NULL)) {
        request_refuse(request, http_reply_errorf(TD_ERROR_BAD_REQUEST, "bad Content-Length"));
        return;
    }
    if (request->route->route->upload != NULL) {
        /* Without a length up front, begin could not check it against a quota. */
        if (!is_media_type(header(connection, MHD_HTTP_HEADER_CONTENT_TYPE), UPLOAD_MEDIA_TYPE))
            request_refuse(request, http_reply_errorf(TD_ERROR_UNSUPPORTED_MEDIA_TYPE,
                                                      "the body must be " UPLOAD_MEDIA_TYPE));
        else if (length_header == NULL ||
                 header(connection, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL)
            request_refuse(request,
                           http_reply_errorf(TD_ERROR_LENGTH_REQUIRED,
                                             "an upload needs a Content-Length (and no chunking)"));
        request->content_length = length;
        return;
    }
    if (!request->route->route->json_body) {
        if (length > 0)
            request_refuse(request,
                           http_reply_errorf(TD_ERROR_BAD_REQUEST, "this request takes no body"));
        return;
    }
    if (!is_json_media_type(header(connection, MHD_HTTP_HEADER_CONTENT_TYPE)))
        request_refuse(request, http_reply_errorf(TD_ERROR_UNSUPPORTED_MEDIA_TYPE,
                                                  "the body must be application/json"));
    else if (length > HTTP_MAX_JSON_BODY)
        request_refuse(request, http_reply_errorf(TD_ERROR_PAYLOAD_TOO_LARGE,
                                                  "JSON body over %d bytes", HTTP_MAX_JSON_BODY));
    else
        request->body = g_byte_array_sized_new((guint)length);
}

/* Closing is the only way not to read what the client is still sending. */
static HttpReply *reply_closing(HttpReply *reply)
{
    http_reply_add_header(reply, MHD_HTTP_HEADER_CONNECTION, "close");
    return reply;
}

static void request_upload_begin(Request *request, struct MHD_Connection *connection,
                                 const char *method, const char *url)
{
    HttpServer *server = request->listener->server;
    const HttpUploadHandler *handler = request->route->route->upload;
    HttpRequest http_request = {
        .method = method,
        .path = url,
        .params = request->params,
        .query = request->query,
        .headers = request->headers,
        .caller = &request->caller,
    };
    HttpReply *reply = NULL;

    request->upload = handler->begin(server->app, &http_request, request->content_length, &reply);
    if (request->upload == NULL) {
        if (reply == NULL) {
            g_warning("upload handler for %s refused without a reply",
                      request->route->route->pattern);
            reply = reply_error_body(500, "internal", "internal error");
        }
        request_refuse(request, reply_closing(reply));
        return;
    }
    http_reply_free(reply);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info == NULL)
        return;
    request->upload_fd = info->connect_fd;
    g_mutex_lock(&server->lock);
    g_hash_table_add(server->upload_fds, GINT_TO_POINTER(request->upload_fd));
    g_mutex_unlock(&server->lock);
}

/* Everything decided from the request line and headers, in the contract's
 * order: route (404/405), caller (401/403), the body's headers, then an
 * upload's begin. */
static Request *request_begin(Listener *listener, struct MHD_Connection *connection,
                              const char *method, const char *url)
{
    Request *request = g_new0(Request, 1);
    request->listener = listener;
    request->upload_fd = -1;
    g_mutex_lock(&listener->server->lock);
    listener->server->in_flight++;
    g_mutex_unlock(&listener->server->lock);
    request_route(request, method, url);
    if (request->refusal != NULL)
        return request;
    request_collect_headers(request, connection);
    request_authenticate(request, connection);
    if (request->refusal == NULL)
        request_authorize(request);
    if (request->refusal == NULL)
        request_parse_query(request, connection);
    if (request->refusal == NULL)
        request_check_body_headers(request, connection);
    if (request->refusal == NULL && request->route->route->upload != NULL)
        request_upload_begin(request, connection, method, url);
    return request;
}

/* Hands one piece of an upload to its handler; FALSE drops the connection. */
static gboolean request_take_upload(Request *request, const char *data, size_t size)
{
    const HttpUploadHandler *handler = request->route->route->upload;
    HttpReply *reply = NULL;

    if (request->answered)
        return TRUE;
    /* Refused by write: libmicrohttpd cannot answer in the middle of a body,
     * so the rest (no more than begin accepted) is read and dropped. */
    if (request->upload == NULL)
        return TRUE;
    if (server_stopping(request->listener->server)) {
        request_upload_abort(request);
        return FALSE;
    }
    if (handler->write(request->upload, data, size, &reply)) {
        http_reply_free(reply);
        return TRUE;
    }
    request_upload_abort(request);
    if (reply == NULL) {
        g_warning("upload handler for %s refused a piece without a reply",
                  request->route->route->pattern);
        reply = reply_error_body(500, "internal", "internal error");
    }
    request_refuse(request, reply_closing(reply));
    return TRUE;
}

static HttpReply *request_upload_finish(Request *request)
{
    const HttpUploadHandler *handler = request->route->route->upload;
    HttpReply *reply = handler->finish(g_steal_pointer(&request->upload));
    /* Done with the body: stopping must not cut the answer. */
    request_upload_forget_fd(request);
    if (reply == NULL) {
        g_warning("upload handler for %s finished without a reply", request->route->route->pattern);
        return reply_error_body(500, "internal", "internal error");
    }
    return reply;
}

/* Takes one piece of the body; FALSE drops the connection. */
static gboolean request_take_body(Request *request, const char *data, size_t size)
{
    if (request->answered)
        return TRUE;
    if (request->refusal == NULL && request->body == NULL)
        request_refuse(request,
                       http_reply_errorf(TD_ERROR_BAD_REQUEST, "this request takes no body"));
    if (request->refusal == NULL && request->body->len + size > HTTP_MAX_JSON_BODY) {
        /* Free what we have now: nobody gets to make us hold more than the cap. */
        g_clear_pointer(&request->body, g_byte_array_unref);
        request_refuse(request, http_reply_errorf(TD_ERROR_PAYLOAD_TOO_LARGE,
                                                  "JSON body over %d bytes", HTTP_MAX_JSON_BODY));
    }
    if (request->refusal != NULL) {
        request->discarded += size;
        return request->discarded <= DISCARD_LIMIT;
    }
    g_byte_array_append(request->body, (const guint8 *)data, (guint)size);
    return TRUE;
}

static const char *reply_header(const HttpReply *reply, const char *name)
{
    for (guint i = 0; i + 1 < reply->headers->len; i += 2)
        if (g_ascii_strcasecmp(reply->headers->pdata[i], name) == 0)
            return reply->headers->pdata[i + 1];
    return NULL;
}

/* A 200 to GET whose ETag the client already holds becomes 304 with no body
 * (RFC 9110 13.1.2: weak comparison). */
static HttpReply *reply_not_modified(HttpReply *reply, const HttpRequest *request)
{
    const char *etag = reply_header(reply, "ETag");
    const char *if_none_match = http_request_header(request, "if-none-match");
    if (reply->status != 200 || reply->read != NULL || etag == NULL ||
        (strcmp(request->method, "GET") != 0 && strcmp(request->method, "HEAD") != 0) ||
        !http_etag_list_matches(if_none_match, etag, TRUE))
        return reply;
    HttpReply *not_modified = http_reply_empty(304);
    http_reply_add_header(not_modified, "ETag", etag);
    http_reply_free(reply);
    return not_modified;
}

static HttpReply *request_run(Request *request, const char *method, const char *url)
{
    HttpServer *server = request->listener->server;
    g_autoptr(json_object) body = NULL;

    if (request->body != NULL) {
        g_autoptr(GError) error = NULL;
        if (request->body->len == 0)
            return http_reply_errorf(TD_ERROR_BAD_REQUEST, "a JSON body is required");
        body = api_json_parse((const char *)request->body->data, request->body->len,
                              API_JSON_MAX_DEPTH, &error);
        if (body == NULL)
            return http_reply_error(error);
    }
    HttpRequest http_request = {
        .method = method,
        .path = url,
        .params = request->params,
        .query = request->query,
        .headers = request->headers,
        .body = body,
        .caller = &request->caller,
    };
    HttpReply *reply = request->route->route->handler(server->app, &http_request);
    if (reply == NULL) {
        g_warning("handler for %s %s returned no reply", method, request->route->route->pattern);
        return reply_error_body(500, "internal", "internal error");
    }
    return reply_not_modified(reply, &http_request);
}

static enum MHD_Result request_answer(Request *request, struct MHD_Connection *connection,
                                      HttpReply *reply)
{
    HttpServer *server = request->listener->server;
    unsigned status = reply->status;
    request->answered = TRUE;
    gboolean streaming = reply->read != NULL;
    struct MHD_Response *response = response_from_reply(server, reply, connection);
    http_reply_free(reply);
    if (response == NULL)
        return MHD_NO;
    /* A quiet stream is not an idle connection: it ends with the client. */
    if (streaming)
        MHD_set_connection_option(connection, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    enum MHD_Result queued = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    server_count(server, request->metric, status);
    return queued;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    Listener *listener = cls;
    Request *request = *con_cls;
    (void)version;

    if (request == NULL) {
        request = request_begin(listener, connection, method, url);
        *con_cls = request;
        /* Refuse before reading the body: a client that sent "Expect:
         * 100-continue" never has to upload it. */
        if (request->refusal != NULL)
            return request_answer(request, connection, g_steal_pointer(&request->refusal));
        return MHD_YES;
    }
    gboolean upload = request->route != NULL && request->route->route->upload != NULL;
    if (*upload_data_size > 0) {
        gboolean keep = upload ? request_take_upload(request, upload_data, *upload_data_size)
                               : request_take_body(request, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return keep ? MHD_YES : MHD_NO;
    }
    if (request->answered)
        return MHD_YES;
    HttpReply *reply = request->refusal != NULL ? g_steal_pointer(&request->refusal)
                       : upload                 ? request_upload_finish(request)
                                                : request_run(request, method, url);
    return request_answer(request, connection, reply);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    Listener *listener = cls;
    HttpServer *server = listener->server;
    Request *request = *con_cls;
    (void)connection;
    if (request == NULL)
        return;
    if (request->upload != NULL)
        g_debug("upload to %s ended before its body did (termination code %d)",
                request->route->route->pattern, (int)toe);
    request_free(*con_cls);
    *con_cls = NULL;
    g_mutex_lock(&server->lock);
    server->in_flight--;
    g_cond_broadcast(&server->stop_cond);
    g_mutex_unlock(&server->lock);
}

/* Keeps the URL and query arguments as they came: path captures must tell an
 * encoded '/' from a real one, so this layer decodes them itself. */
static size_t raw_unescape(void *cls, struct MHD_Connection *connection, char *s)
{
    (void)cls;
    (void)connection;
    return strlen(s);
}

/* ---- listeners ---------------------------------------------------------- */

static void listener_free(Listener *listener)
{
    struct stat st;

    if (listener == NULL)
        return;
    if (listener->daemon != NULL)
        MHD_stop_daemon(listener->daemon);
    if (listener->fd >= 0)
        close(listener->fd);
    /* Only our own socket file: another server may have taken the path since. */
    if (listener->unix_path != NULL && lstat(listener->unix_path, &st) == 0 &&
        st.st_dev == listener->unix_dev && st.st_ino == listener->unix_ino)
        unlink(listener->unix_path);
    g_free(listener->unix_path);
    g_free(listener);
}

/* Starts MHD on @listener->fd; TLS when @cert and @key (PEM text) are given. */
static gboolean listener_start(Listener *listener, const char *cert, const char *key,
                               GError **error)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ITC;
    if (cert != NULL)
        flags |= MHD_USE_TLS;
    /* MHD takes the socket; it gives it back at MHD_quiesce_daemon. */
    listener->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, listener, MHD_OPTION_LISTEN_SOCKET, listener->fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)CONNECTION_TIMEOUT, MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY_LIMIT,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, listener, MHD_OPTION_UNESCAPE_CALLBACK,
        raw_unescape, NULL, cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert,
        MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_END);
    /* MHD owns the socket now, and closes it itself when it fails to start. */
    listener->fd = -1;
    if (listener->daemon == NULL) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "cannot start the HTTP server%s",
                    cert ? " (is the TLS certificate and key pair valid?)" : "");
        return FALSE;
    }
    return TRUE;
}

/* Refuses when a server answers on @path; removes a stale socket file. */
static gboolean unix_path_clear(const char *path, GError **error)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return TRUE;
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "%s: %s", path, g_strerror(errno));
        return FALSE;
    }
    if (!S_ISSOCK(st.st_mode)) {
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "%s exists and is not a socket", path);
        return FALSE;
    }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "socket: %s", g_strerror(errno));
        return FALSE;
    }
    int rc = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
    int saved = errno;
    close(fd);
    if (rc == 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "another server is already listening on %s",
                    path);
        return FALSE;
    }
    if (saved != ECONNREFUSED) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "cannot check %s: %s", path,
                    g_strerror(saved));
        return FALSE;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "cannot remove stale %s: %s", path,
                    g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

static int unix_socket_bind(const char *path, struct stat *st, GError **error)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "socket path too long: %s", path);
        return -1;
    }
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    if (!unix_path_clear(path, error))
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "socket: %s", g_strerror(errno));
        return -1;
    }
    /* chmod after bind leaves a moment with umask permissions; the socket's
     * directory (0750 under /run/turtles) is what keeps strangers out then. */
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || chmod(path, 0660) != 0 ||
        lstat(path, st) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "cannot listen on %s: %s", path,
                    g_strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

gboolean http_server_listen_unix(HttpServer *server, const char *path, GError **error)
{
    g_return_val_if_fail(server != NULL && path != NULL, FALSE);
    struct stat st;
    int fd = unix_socket_bind(path, &st, error);
    if (fd < 0)
        return FALSE;

    Listener *listener = g_new0(Listener, 1);
    listener->server = server;
    listener->fd = fd;
    listener->is_unix = TRUE;
    listener->unix_path = g_strdup(path);
    listener->unix_dev = st.st_dev;
    listener->unix_ino = st.st_ino;
    if (!listener_start(listener, NULL, NULL, error)) {
        listener_free(listener);
        return FALSE;
    }
    g_ptr_array_add(server->listeners, listener);
    return TRUE;
}

typedef struct {
    struct sockaddr_storage addr;
    socklen_t len;
    gboolean loopback;
} TcpAddress;

/* "ADDR:PORT" with an IPv4 ADDR, "[IPv6]:PORT", or "localhost:PORT". */
static gboolean tcp_address_parse(const char *text, TcpAddress *out, GError **error)
{
    g_autofree char *host = NULL;
    const char *port_text;
    const char *colon = strrchr(text, ':');

    if (text[0] == '[') {
        const char *close_bracket = strchr(text, ']');
        if (close_bracket == NULL || close_bracket[1] != ':')
            goto bad;
        host = g_strndup(text + 1, close_bracket - text - 1);
        port_text = close_bracket + 2;
    } else {
        if (colon == NULL || memchr(text, ':', colon - text) != NULL)
            goto bad;
        host = g_strndup(text, colon - text);
        port_text = colon + 1;
    }
    guint64 port;
    if (!g_ascii_string_to_unsigned(port_text, 10, 0, 65535, &port, NULL))
        goto bad;

    memset(out, 0, sizeof(*out));
    struct sockaddr_in *in4 = (struct sockaddr_in *)&out->addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->addr;
    if (text[0] != '[' && g_ascii_strcasecmp(host, "localhost") == 0) {
        g_free(host);
        host = g_strdup("127.0.0.1");
    }
    if (text[0] != '[' && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((guint16)port);
        out->len = sizeof(*in4);
        out->loopback = (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
        return TRUE;
    }
    if (text[0] == '[' && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((guint16)port);
        out->len = sizeof(*in6);
        out->loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
        return TRUE;
    }
bad:
    g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                "bad listen address '%s': expected IPV4:PORT or [IPV6]:PORT", text);
    return FALSE;
}

static int tcp_socket_bind(const char *text, const TcpAddress *address, guint16 *port,
                           GError **error)
{
    int family = address->addr.ss_family;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int on = 1;
    struct sockaddr_storage bound;
    socklen_t len = sizeof(bound);

    if (fd < 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "socket: %s", g_strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    if (bind(fd, (const struct sockaddr *)&address->addr, address->len) != 0 ||
        listen(fd, LISTEN_BACKLOG) != 0 || getsockname(fd, (struct sockaddr *)&bound, &len) != 0) {
        int saved = errno;
        g_set_error(error, TD_ERROR, saved == EADDRINUSE ? TD_ERROR_CONFLICT : TD_ERROR_INTERNAL,
                    "cannot listen on %s: %s", text, g_strerror(saved));
        close(fd);
        return -1;
    }
    *port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                     : ((struct sockaddr_in *)&bound)->sin_port);
    return fd;
}

/* Reads the PEM files; FALSE with an error naming the file. */
static gboolean tls_files_read(const char *cert_file, const char *key_file, char **cert, char **key,
                               GError **error)
{
    g_autoptr(GError) local = NULL;
    if (!g_file_get_contents(cert_file, cert, NULL, &local) ||
        !g_file_get_contents(key_file, key, NULL, &local)) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "cannot read TLS files: %s",
                    local->message);
        g_clear_pointer(cert, g_free);
        return FALSE;
    }
    return TRUE;
}

gboolean http_server_listen_tcp(HttpServer *server, const char *address, const char *cert_file,
                                const char *key_file, GError **error)
{
    g_return_val_if_fail(server != NULL && address != NULL, FALSE);
    TcpAddress parsed;
    g_autofree char *cert = NULL;
    g_autofree char *key = NULL;
    gboolean tls = cert_file != NULL || key_file != NULL;

    if (!tcp_address_parse(address, &parsed, error))
        return FALSE;
    if (tls && (cert_file == NULL || key_file == NULL)) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "TLS needs both a certificate and a key file");
        return FALSE;
    }
    if (!tls && !parsed.loopback) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "refusing plain HTTP on non-loopback address %s: tokens would travel in "
                    "clear text; configure a TLS certificate and key",
                    address);
        return FALSE;
    }
    if (tls && !tls_files_read(cert_file, key_file, &cert, &key, error))
        return FALSE;

    Listener *listener = g_new0(Listener, 1);
    listener->server = server;
    listener->fd = tcp_socket_bind(address, &parsed, &listener->port, error);
    gboolean ok = listener->fd >= 0 && listener_start(listener, cert, key, error);
    if (key != NULL)
        explicit_bzero(key, strlen(key)); /* GnuTLS has its own copy now */
    if (!ok) {
        listener_free(listener);
        return FALSE;
    }
    g_ptr_array_add(server->listeners, listener);
    return TRUE;
}

guint16 http_server_tcp_port(HttpServer *server)
{
    g_return_val_if_fail(server != NULL, 0);
    for (guint i = 0; i < server->listeners->len; i++) {
        Listener *listener = server->listeners->pdata[i];
        if (!listener->is_unix)
            return listener->port;
    }
    return 0;
}

void http_server_free(HttpServer *server)
{
    if (server == NULL)
        return;
    /* No new connections anywhere first, so nothing starts while we stop. */
    for (guint i = 0; i < server->listeners->len; i++) {
        Listener *listener = server->listeners->pdata[i];
        MHD_socket fd = MHD_quiesce_daemon(listener->daemon);
        if (fd != MHD_INVALID_SOCKET)
            listener->fd = fd; /* ours again; closed after MHD_stop_daemon */
        else
            listener->fd = -1; /* MHD still owns it and closes it */
    }
    server_end_streams(server);
    server_drain(server);
    /* MHD_stop_daemon waits for handlers but cuts connections: by now every
     * answer has been sent, or the drain gave up on it. */
    for (guint i = 0; i < server->listeners->len; i++)
        listener_free(server->listeners->pdata[i]);
    g_ptr_array_unref(server->listeners);
    for (gsize i = 0; i < server->n_routes; i++)
        g_strfreev(server->routes[i].segments);
    g_free(server->routes);
    g_hash_table_unref(server->counts);
    g_hash_table_unref(server->upload_fds);
    g_cond_clear(&server->stop_cond);
    g_mutex_clear(&server->lock);
    g_free(server);
}
