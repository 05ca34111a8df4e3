/* The HTTP layer on libmicrohttpd: each listener has an acceptor (see
 * http_transport.c) and a few event loops, each an MHD daemon with its own
 * epoll thread and no listening socket of its own.
 *
 * Why not a thread per connection (as before): a thread per idle client let
 * ~260 idle connections lock every TCP client out, and each costs a stack.
 * Here a connection costs a descriptor and libmicrohttpd's buffer; a stream
 * or long-poll with nothing to send is suspended in libmicrohttpd (parked)
 * and costs no thread at all until its data source, the tick or shutdown
 * wakes it.  Handlers run on the loop threads, so they must not wait long:
 * the slow work of the API runs as operations on the worker pool already. */
#include "daemon/http-private.h"

#include "api/error_body.h"
#include "api/json.h"
#include "daemon/error.h"
#include "daemon/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define UNIX_CONNECTIONS  1024
#define STREAM_BLOCK_SIZE (16 * 1024)
#define STOP_GRACE_USEC   (2 * G_TIME_SPAN_SECOND)
#define DRAIN_USEC        (10 * G_TIME_SPAN_SECOND)
/* Per connection; it bounds the read buffer (hence the request line and
 * headers libmicrohttpd can hold, and the pieces an upload arrives in), and
 * what of a body a refused request can have sent before its answer: at 64
 * KiB a 64 KiB upload refused before it is read lost its 413 to a reset
 * (test-http /http/upload/refused-by-begin).  The cost, measured: the pool
 * is zeroed between two requests of a keep-alive connection (about 10 % of a
 * tenant read) and an idle event stream keeps it. */
#define CONNECTION_MEMORY_LIMIT ((size_t)256 * 1024)

void http_limits_init(HttpLimits *limits)
{
    *limits = (HttpLimits){
        .threads = 4,
        .max_connections = 4096,
        .connection_reserve = 256,
        .connections_per_address = 64,
        .streams_per_tenant = 64,
        .streams_per_token = 32,
        .header_timeout = 30,
        .body_timeout = 60,
        .idle_timeout = 120,
    };
}

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
    http_limits_init(&server->limits);
    server->listeners = g_ptr_array_new();
    g_mutex_init(&server->lock);
    g_cond_init(&server->stop_cond);
    server->counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    server->durations = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    server->upload_fds = g_hash_table_new(g_direct_hash, g_direct_equal);
    server->wakers = g_hash_table_new(g_direct_hash, g_direct_equal);
    server->upgrades = g_hash_table_new(g_direct_hash, g_direct_equal);
    http_transport_init(server);
    return server;
}

void http_server_set_limits(HttpServer *server, const HttpLimits *limits)
{
    g_return_if_fail(server != NULL && limits != NULL && server->listeners->len == 0);
    g_mutex_lock(&server->lock);
    server->limits = *limits;
    g_mutex_unlock(&server->lock);
}

gboolean http_server_stopping(HttpServer *server)
{
    return g_atomic_int_get(&server->stopping);
}

void http_server_set_audit(HttpServer *server, Audit *audit)
{
    g_return_if_fail(server != NULL && server->listeners->len == 0);
    audit_free(server->audit);
    server->audit = audit;
}

void http_server_count(HttpServer *server, const char *metric, unsigned status)
{
    char *key = g_strdup_printf("%s\t%u", metric, status);
    g_mutex_lock(&server->lock);
    guint count = GPOINTER_TO_UINT(g_hash_table_lookup(server->counts, key));
    g_hash_table_replace(server->counts, key, GUINT_TO_POINTER(count + 1));
    g_mutex_unlock(&server->lock);
}

static void server_observe(HttpServer *server, const char *metric, const char *method,
                           double seconds)
{
    g_autofree char *key = g_strdup_printf("%s\t%s", metric, method);
    g_mutex_lock(&server->lock);
    MetricsHistogram *histogram = g_hash_table_lookup(server->durations, key);
    if (histogram == NULL) {
        histogram = g_new0(MetricsHistogram, 1);
        g_hash_table_insert(server->durations, g_steal_pointer(&key), histogram);
    }
    metrics_histogram_observe(histogram, seconds);
    g_mutex_unlock(&server->lock);
}

GHashTable *http_server_request_durations(HttpServer *server)
{
    GHashTable *copy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    GHashTableIter iter;
    gpointer key, value;

    g_mutex_lock(&server->lock);
    g_hash_table_iter_init(&iter, server->durations);
    while (g_hash_table_iter_next(&iter, &key, &value))
        g_hash_table_insert(copy, g_strdup(key), g_memdup2(value, sizeof(MetricsHistogram)));
    g_mutex_unlock(&server->lock);
    return copy;
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

void http_server_wake_all(HttpServer *server)
{
    GHashTableIter iter;
    gpointer waker;

    /* Woken outside the server lock: a wake-up takes the waker's lock and
     * libmicrohttpd's. */
    g_autoptr(GPtrArray) wakers = g_ptr_array_new_with_free_func((GDestroyNotify)http_waker_unref);
    g_mutex_lock(&server->lock);
    g_hash_table_iter_init(&iter, server->wakers);
    while (g_hash_table_iter_next(&iter, &waker, NULL))
        g_ptr_array_add(wakers, http_waker_ref(waker));
    g_mutex_unlock(&server->lock);
    for (guint i = 0; i < wakers->len; i++)
        http_waker_wake(wakers->pdata[i]);
}

/* ---- streams ------------------------------------------------------------ */

typedef struct {
    HttpServer *server;
    int fd; /* the client's socket, watched for a hang-up while idle */
    HttpStreamRead read;
    gpointer data;
    GDestroyNotify free_data;
    HttpWaker *waker;
    HttpCaller caller; /* whose stream slot this is (tenant and token copied) */
    gboolean slot;
} Stream;

/* libmicrohttpd notices a client that left only when a write fails, and not
 * at all while the connection is suspended; a peer that closed shows here.
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

    if (http_server_stopping(stream->server))
        return MHD_CONTENT_READER_END_OF_STREAM;
    gssize n = stream->read(stream->data, buf, max);
    if (n < 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n > 0)
        return (ssize_t)MIN((gsize)n, max);
    if (stream_client_gone(stream))
        return MHD_CONTENT_READER_END_WITH_ERROR;
    /* Nothing now: parked until the source, the tick or shutdown wakes it. */
    http_waker_park(stream->waker);
    return 0;
}

static void stream_free(void *cls)
{
    Stream *stream = cls;
    HttpServer *server = stream->server;
    http_waker_detach(stream->waker);
    http_waker_unref(stream->waker);
    if (stream->free_data != NULL)
        stream->free_data(stream->data);
    if (stream->slot)
        http_transport_stream_release(server, &stream->caller);
    g_free(stream->caller.tenant);
    g_free(stream->caller.token);
    g_free(stream);
    g_mutex_lock(&server->lock);
    server->streams--;
    g_cond_broadcast(&server->stop_cond);
    g_mutex_unlock(&server->lock);
}

static struct MHD_Response *response_from_stream(Request *request, HttpReply *reply,
                                                 struct MHD_Connection *connection)
{
    HttpServer *server = request->listener->server;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    Stream *stream = g_new0(Stream, 1);
    stream->server = server;
    stream->fd = info != NULL ? info->connect_fd : -1;
    stream->read = reply->read;
    stream->data = reply->data;
    stream->free_data = reply->free_data;
    stream->waker = g_steal_pointer(&reply->waker);
    /* The slot taken at dispatch now belongs to the stream. */
    stream->slot = request->stream_slot;
    request->stream_slot = FALSE;
    stream->caller.role = request->caller.role;
    stream->caller.tenant = g_strdup(request->caller.tenant);
    stream->caller.token = g_strdup(request->caller.token);
    /* From here the stream owns the data, whatever MHD does with it. */
    reply->free_data = NULL;
    http_waker_attach(stream->waker, server, connection);
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

/* ---- upgrades ------------------------------------------------------------ */

struct HttpUpgrade {
    gint refs; /* g_atomic_int_*, which TSan sees: the request's or the owner's, and a shutdown's */
    HttpServer *server;
    HttpUpgradeStart start;
    HttpUpgradeStop stop;
    gpointer data;
    GDestroyNotify free_data;
    HttpCaller caller; /* whose stream slot this is (tenant and token copied) */
    gboolean slot;
    struct MHD_UpgradeResponseHandle *urh;
    enum { UPGRADE_QUEUED, UPGRADE_STARTED, UPGRADE_ENDED } state; /* under server->lock */
};

static HttpUpgrade *upgrade_ref(HttpUpgrade *upgrade)
{
    g_atomic_int_inc(&upgrade->refs);
    return upgrade;
}

static void upgrade_unref(HttpUpgrade *upgrade)
{
    if (upgrade == NULL || !g_atomic_int_dec_and_test(&upgrade->refs))
        return;
    g_free(upgrade->caller.tenant);
    if (upgrade->caller.token != NULL)
        explicit_bzero(upgrade->caller.token, strlen(upgrade->caller.token));
    g_free(upgrade->caller.token);
    g_free(upgrade);
}

/* What an upgrade holds goes: its data, its stream slot, its count. */
static void upgrade_end(HttpUpgrade *upgrade)
{
    HttpServer *server = upgrade->server;
    if (upgrade->free_data != NULL)
        upgrade->free_data(upgrade->data);
    upgrade->free_data = NULL;
    if (upgrade->slot)
        http_transport_stream_release(server, &upgrade->caller);
    upgrade->slot = FALSE;
    g_mutex_lock(&server->lock);
    server->streams--;
    g_cond_broadcast(&server->stop_cond);
    g_mutex_unlock(&server->lock);
}

/* libmicrohttpd sent the 101: the socket is the owner's from here. */
static void on_upgrade(void *cls, struct MHD_Connection *connection, void *con_cls,
                       const char *extra_in, size_t extra_in_size, MHD_socket sock,
                       struct MHD_UpgradeResponseHandle *urh)
{
    HttpUpgrade *upgrade = cls;
    HttpServer *server = upgrade->server;
    Request *request = con_cls;
    (void)connection;

    g_mutex_lock(&server->lock);
    upgrade->urh = urh;
    upgrade->state = UPGRADE_STARTED;
    /* The set's reference is the one the request held. */
    g_hash_table_add(server->upgrades, upgrade);
    if (request != NULL && request->upgrade == upgrade)
        request->upgrade = NULL;
    g_mutex_unlock(&server->lock);
    int flags = fcntl(sock, F_GETFL);
    if (flags >= 0)
        fcntl(sock, F_SETFL, flags | O_NONBLOCK);
    upgrade->start(upgrade->data, upgrade, sock, extra_in, extra_in_size);
}

void http_upgrade_close(HttpUpgrade *upgrade)
{
    g_return_if_fail(upgrade != NULL);
    HttpServer *server = upgrade->server;
    g_mutex_lock(&server->lock);
    gboolean started = upgrade->state == UPGRADE_STARTED;
    if (started) {
        upgrade->state = UPGRADE_ENDED;
        g_hash_table_remove(server->upgrades, upgrade);
    }
    g_mutex_unlock(&server->lock);
    g_return_if_fail(started);
    MHD_upgrade_action(upgrade->urh, MHD_UPGRADE_ACTION_CLOSE);
    upgrade_end(upgrade);
    upgrade_unref(upgrade);
}

/* A request whose 101 never went out (the client left first). */
static void upgrade_abandon(Request *request)
{
    HttpServer *server = request->listener->server;
    g_mutex_lock(&server->lock);
    HttpUpgrade *upgrade = g_steal_pointer(&request->upgrade);
    gboolean queued = upgrade != NULL && upgrade->state == UPGRADE_QUEUED;
    if (queued)
        upgrade->state = UPGRADE_ENDED;
    g_mutex_unlock(&server->lock);
    if (queued) {
        upgrade_end(upgrade);
        upgrade_unref(upgrade);
    }
}

/* Tells every upgraded connection's owner to end (the server stops). */
static void upgrades_stop(HttpServer *server)
{
    GHashTableIter iter;
    gpointer upgrade;
    g_autoptr(GPtrArray) live = g_ptr_array_new_with_free_func((GDestroyNotify)upgrade_unref);
    g_mutex_lock(&server->lock);
    g_hash_table_iter_init(&iter, server->upgrades);
    while (g_hash_table_iter_next(&iter, &upgrade, NULL))
        g_ptr_array_add(live, upgrade_ref(upgrade));
    g_mutex_unlock(&server->lock);
    for (guint i = 0; i < live->len; i++) {
        HttpUpgrade *one = live->pdata[i];
        if (one->stop != NULL)
            one->stop(one->data);
    }
}

static struct MHD_Response *response_from_upgrade(Request *request, HttpReply *reply)
{
    HttpServer *server = request->listener->server;
    HttpUpgrade *upgrade = g_new0(HttpUpgrade, 1);
    g_atomic_int_set(&upgrade->refs, 1);
    upgrade->server = server;
    upgrade->start = reply->upgrade_start;
    upgrade->stop = reply->upgrade_stop;
    upgrade->data = reply->data;
    upgrade->free_data = reply->free_data;
    reply->free_data = NULL;
    upgrade->slot = request->stream_slot;
    request->stream_slot = FALSE;
    upgrade->caller.role = request->caller.role;
    upgrade->caller.tenant = g_strdup(request->caller.tenant);
    upgrade->caller.token = g_strdup(request->caller.token);
    g_mutex_lock(&server->lock);
    server->streams++;
    g_mutex_unlock(&server->lock);
    request->upgrade = upgrade;
    struct MHD_Response *response = MHD_create_response_for_upgrade(on_upgrade, upgrade);
    if (response == NULL) {
        upgrade_abandon(request);
        return NULL;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
    return response;
}

static struct MHD_Response *response_from_reply(Request *request, HttpReply *reply,
                                                struct MHD_Connection *connection)
{
    struct MHD_Response *response;
    if (reply->upgrade_start != NULL) {
        response = response_from_upgrade(request, reply);
    } else if (reply->read != NULL) {
        response = response_from_stream(request, reply, connection);
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
    MHD_add_response_header(response, "X-Request-Id", request->request_id);
    return response;
}

/* ---- requests ----------------------------------------------------------- */

static Request *request_new(Listener *listener, struct MHD_Connection *connection)
{
    HttpServer *server = listener->server;
    Request *request = g_new0(Request, 1);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    request->listener = listener;
    request->conn = info != NULL ? info->socket_context : NULL;
    request->upload_fd = -1;
    request->request_id = g_uuid_string_random();
    request->started_at = g_get_monotonic_time();
    request->caller.uid = -1;
    g_atomic_int_inc(&server->in_flight);
    return request;
}

/* The UNIX-socket peer's uid, for a request refused before its caller was
 * looked at (-1 on TCP, or when unknown). */
static gint64 request_peer_uid(Request *request)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (request->caller.uid >= 0 || !request->listener->is_unix || request->conn == NULL ||
        getsockopt(request->conn->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return request->caller.uid;
    return cred.uid;
}

/* The audit record of a request (mutating ones only) with its answer's
 * @status (0: none was given). */
static void request_audit(Request *request, unsigned status)
{
    HttpServer *server = request->listener->server;
    static const char *const roles[] = {
        [HTTP_CALLER_ANONYMOUS] = "anonymous",
        [HTTP_CALLER_OPERATOR] = "operator",
        [HTTP_CALLER_TENANT] = "tenant",
    };
    const HttpCaller *caller = &request->caller;
    if (server->audit == NULL || !audit_wanted(request->method))
        return;
    AuditRecord record = {
        .request_id = request->request_id,
        .role = (guint)caller->role < G_N_ELEMENTS(roles) ? roles[caller->role] : "unknown",
        .uid = request_peer_uid(request),
        .tenant = caller->role == HTTP_CALLER_TENANT ? caller->tenant : NULL,
        .token_id = caller->token_id,
        .method = request->method,
        .route = request->route != NULL ? request->route->route->pattern : NULL,
        .path = request->path,
        .params = request->params,
        .status = status,
    };
    audit_record(server->audit, &record);
}

/* The answer is on its way: counted, timed and audited. */
static void request_done(Request *request, unsigned status)
{
    HttpServer *server = request->listener->server;
    const char *metric = request->metric != NULL ? request->metric : HTTP_METRIC_UNMATCHED;
    http_server_count(server, metric, status);
    server_observe(server, metric, request->method != NULL ? request->method : "unknown",
                   (double)(g_get_monotonic_time() - request->started_at) / G_USEC_PER_SEC);
    request_audit(request, status);
}

/* Answers outside libmicrohttpd and closes: for a request libmicrohttpd has
 * already answered itself (with HTML), or cannot answer at all.  On TLS we
 * cannot write, and the connection just closes. */
static enum MHD_Result request_answer_raw(Request *request, struct MHD_Connection *connection,
                                          HttpReply *reply)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    g_autoptr(json_object) body = NULL;
    g_autofree char *code = NULL;
    g_autofree char *message = NULL;

    request->answered = TRUE;
    if (info != NULL && !request->listener->tls && reply->body != NULL) {
        gsize len = 0;
        const char *text = g_bytes_get_data(reply->body, &len);
        body = api_json_parse(text, len, API_JSON_MAX_DEPTH, NULL);
        if (body != NULL && api_error_body_from_json(body, NULL, &code, &message, NULL))
            http_transport_write_raw(info->connect_fd, reply->status, code, message,
                                     http_reply_header(reply, "Retry-After"), request->request_id);
        shutdown(info->connect_fd, SHUT_WR);
    }
    request_done(request, reply->status);
    http_reply_free(reply);
    return MHD_NO;
}

static enum MHD_Result request_answer(Request *request, struct MHD_Connection *connection,
                                      HttpReply *reply)
{
    unsigned status = reply->status;
    gboolean streaming = reply->read != NULL || reply->upgrade_start != NULL;

    request->answered = TRUE;
    struct MHD_Response *response = response_from_reply(request, reply, connection);
    if (response == NULL) {
        request->answered = FALSE; /* audited as never answered */
        http_reply_free(reply);
        return MHD_NO;
    }
    /* A quiet stream is not an idle connection: it ends with the client. */
    if (streaming)
        MHD_set_connection_option(connection, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    enum MHD_Result queued = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    if (queued != MHD_YES && !streaming) {
        /* libmicrohttpd answered this request itself (a malformed header it
         * caught before us): replace its HTML with ours, once. */
        request->answered = FALSE;
        return request_answer_raw(request, connection, reply);
    }
    http_reply_free(reply);
    request_done(request, status);
    return queued;
}

/* Runs a parked deferred reply's poll; NULL while it keeps waiting. */
static HttpReply *request_poll_deferred(Request *request)
{
    HttpServer *server = request->listener->server;
    HttpReply *deferred = request->deferred;
    HttpReply *reply = deferred->poll(deferred->data, http_server_stopping(server));
    if (reply == NULL) {
        http_waker_park(deferred->waker);
        return NULL;
    }
    http_waker_detach(deferred->waker);
    g_clear_pointer(&request->deferred, http_reply_free);
    return reply;
}

/* Parks a fresh deferred reply (or answers a HEAD request at once). */
static HttpReply *request_defer(Request *request, struct MHD_Connection *connection,
                                HttpReply *deferred)
{
    HttpServer *server = request->listener->server;
    if (request->is_head) {
        HttpReply *reply = deferred->poll(deferred->data, TRUE);
        http_reply_free(deferred);
        return reply;
    }
    request->deferred = deferred;
    http_waker_attach(deferred->waker, server, connection);
    return request_poll_deferred(request);
}

static enum MHD_Result request_step(Listener *listener, Request *request,
                                    struct MHD_Connection *connection, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size)
{
    HttpServer *server = listener->server;

    if (!request->begun) {
        if (!http_transport_enter(server, request->conn, HTTP_PHASE_BUSY))
            return MHD_NO; /* the reaper answered 408 already */
        http_dispatch_begin(request, connection, method, url, version);
        /* Refuse before reading the body: a client that sent "Expect:
         * 100-continue" never has to upload it. */
        if (request->refusal != NULL)
            return request_answer(request, connection, g_steal_pointer(&request->refusal));
        if (request->body != NULL && !http_transport_enter(server, request->conn, HTTP_PHASE_BODY))
            return MHD_NO;
        return MHD_YES;
    }
    gboolean upload = request->route != NULL && request->route->route->upload != NULL;
    if (*upload_data_size > 0) {
        gboolean keep = upload ? http_dispatch_take_upload(request, upload_data, *upload_data_size)
                               : http_dispatch_take_body(request, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return keep ? MHD_YES : MHD_NO;
    }
    if (request->answered)
        return MHD_YES;
    if (!http_transport_enter(server, request->conn, HTTP_PHASE_BUSY))
        return MHD_NO; /* the body was too slow: answered 408 already */

    HttpReply *reply;
    if (request->deferred != NULL)
        reply = request_poll_deferred(request);
    else if (request->refusal != NULL)
        reply = g_steal_pointer(&request->refusal);
    else if (upload)
        reply = http_dispatch_upload_finish(request);
    else
        reply = http_dispatch_run(request, url);
    if (reply != NULL && reply->poll != NULL)
        reply = request_defer(request, connection, reply);
    if (reply == NULL)
        return MHD_YES; /* parked; libmicrohttpd calls again once woken */
    return request_answer(request, connection, reply);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    Listener *listener = cls;
    Request *request = *con_cls;

    if (request == NULL)
        *con_cls = request = request_new(listener, connection);
    if (request->path == NULL)
        request->path = g_strdup(url);
    /* Whatever is logged while this thread works on the request names it. */
    log_context_set(request->request_id, NULL);
    enum MHD_Result result = request_step(listener, request, connection, url, method, version,
                                          upload_data, upload_data_size);
    log_context_set(NULL, NULL);
    return result;
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
    if (request->deferred != NULL)
        http_waker_detach(request->deferred->waker);
    upgrade_abandon(request);
    /* A mutating request that got no answer of ours is audited all the same:
     * the reaper answered 408, or the client left first. */
    if (!request->answered && request->begun) {
        gboolean timed_out = FALSE;
        if (request->conn != NULL) {
            g_mutex_lock(&server->lock);
            timed_out = request->conn->phase == HTTP_PHASE_TIMED_OUT;
            g_mutex_unlock(&server->lock);
        }
        request_audit(request, timed_out ? 408 : 0);
    }
    g_free(request->path);
    /* A kept-alive connection waits for its next request's headers. */
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        http_transport_enter(server, request->conn, HTTP_PHASE_HEADERS);
    http_dispatch_free(request);
    *con_cls = NULL;
    g_atomic_int_add(&server->in_flight, -1);
    /* Only a stopping server waits for it (and wakes up on its own too). */
    if (http_server_stopping(server)) {
        g_mutex_lock(&server->lock);
        g_cond_broadcast(&server->stop_cond);
        g_mutex_unlock(&server->lock);
    }
}

/* Sees the request target before libmicrohttpd parses it: its length and
 * argument count decide 414 before anything is stored. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *connection)
{
    Listener *listener = cls;
    Request *request = request_new(listener, connection);
    http_head_init(&request->head, uri, NULL);
    return request;
}

static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    Listener *listener = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        http_transport_connection_started(listener, connection, socket_context);
    else
        http_transport_connection_closed(listener, socket_context);
}

/* Keeps the URL and query arguments as they came: path captures must tell an
 * encoded '/' from a real one, so the dispatcher decodes them itself. */
static size_t raw_unescape(void *cls, struct MHD_Connection *connection, char *s)
{
    (void)cls;
    (void)connection;
    return strlen(s);
}

/* ---- listeners ---------------------------------------------------------- */

static Listener *listener_new(HttpServer *server)
{
    Listener *listener = g_new0(Listener, 1);
    listener->server = server;
    listener->fd = listener->epoll_fd = listener->stop_fd = -1;
    return listener;
}

static void listener_free(Listener *listener)
{
    struct stat st;

    if (listener == NULL)
        return;
    http_transport_stop(listener);
    for (guint i = 0; i < listener->n_loops; i++)
        if (listener->loops[i] != NULL)
            MHD_stop_daemon(listener->loops[i]);
    g_free(listener->loops);
    if (listener->fd >= 0)
        close(listener->fd);
    /* Only our own socket file: another server may have taken the path since. */
    if (listener->unix_path != NULL && lstat(listener->unix_path, &st) == 0 &&
        st.st_dev == listener->unix_dev && st.st_ino == listener->unix_ino)
        unlink(listener->unix_path);
    g_free(listener->unix_path);
    g_free(listener);
}

/* Starts the loops and the acceptor; TLS when @cert and @key (PEM) are given. */
static gboolean listener_start(Listener *listener, const char *cert, const char *key,
                               GError **error)
{
    const HttpLimits *limits = &listener->server->limits;
    /* TURBO: libmicrohttpd reads a connection it is handed before epoll says
     * so.  Without it, a client whose bytes and FIN (a request cut short,
     * then shutdown) were all in when the acceptor handed it over is never
     * read to its end: the edge was spent before the hand-over. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_ALLOW_UPGRADE;
    /* The acceptor enforces the TCP limits; a loop never refuses on its own. */
    unsigned connection_limit = listener->is_unix ? UNIX_CONNECTIONS : limits->max_connections;

    if (cert != NULL)
        flags |= MHD_USE_TLS;
    listener->tls = cert != NULL;
    listener->n_loops = limits->threads;
    listener->loops = g_new0(struct MHD_Daemon *, listener->n_loops);
    for (guint i = 0; i < listener->n_loops; i++) {
        listener->loops[i] = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, listener, MHD_OPTION_CONNECTION_LIMIT,
            connection_limit, MHD_OPTION_CONNECTION_TIMEOUT, limits->idle_timeout,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY_LIMIT,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, listener, MHD_OPTION_NOTIFY_CONNECTION,
            on_connection, listener, MHD_OPTION_URI_LOG_CALLBACK, on_uri, listener,
            MHD_OPTION_UNESCAPE_CALLBACK, raw_unescape, NULL,
            cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert, MHD_OPTION_HTTPS_MEM_KEY, key,
            MHD_OPTION_END);
        if (listener->loops[i] == NULL) {
            g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "cannot start the HTTP server%s",
                        cert ? " (is the TLS certificate and key pair valid?)" : "");
            return FALSE;
        }
    }
    return http_transport_start(listener, error);
}

static gboolean listener_add_unix(HttpServer *server, int fd, const char *path,
                                  const struct stat *st, GError **error)
{
    Listener *listener = listener_new(server);
    listener->fd = fd;
    listener->is_unix = TRUE;
    if (path != NULL) {
        listener->unix_path = g_strdup(path);
        listener->unix_dev = st->st_dev;
        listener->unix_ino = st->st_ino;
    }
    if (!listener_start(listener, NULL, NULL, error)) {
        listener_free(listener);
        return FALSE;
    }
    g_ptr_array_add(server->listeners, listener);
    return TRUE;
}

gboolean http_server_listen_unix(HttpServer *server, const char *path, GError **error)
{
    g_return_val_if_fail(server != NULL && path != NULL, FALSE);
    struct stat st;
    int fd = http_transport_bind_unix(path, &st, error);
    if (fd < 0)
        return FALSE;
    return listener_add_unix(server, fd, path, &st, error);
}

gboolean http_server_adopt_unix(HttpServer *server, int fd, GError **error)
{
    g_return_val_if_fail(server != NULL && fd >= 0, FALSE);
    /* No path: the socket file is its maker's, never removed here. */
    return listener_add_unix(server, fd, NULL, NULL, error);
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

/* The rules of every TCP listener, bound here or passed to us: TLS with both
 * files or neither, and plain HTTP only on loopback.  Reads the PEM files. */
static gboolean tcp_security_check(const char *address, gboolean loopback, const char *cert_file,
                                   const char *key_file, char **cert, char **key, GError **error)
{
    gboolean tls = cert_file != NULL || key_file != NULL;

    if (tls && (cert_file == NULL || key_file == NULL)) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "TLS needs both a certificate and a key file");
        return FALSE;
    }
    if (!tls && !loopback) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "refusing plain HTTP on non-loopback address %s: tokens would travel in "
                    "clear text; configure a TLS certificate and key",
                    address);
        return FALSE;
    }
    return !tls || tls_files_read(cert_file, key_file, cert, key, error);
}

/* Serves on the listening TCP socket @fd (taken, also on failure). */
static gboolean listener_add_tcp(HttpServer *server, int fd, guint16 port, char *cert, char *key,
                                 GError **error)
{
    Listener *listener = listener_new(server);
    listener->fd = fd;
    listener->port = port;
    gboolean ok = listener_start(listener, cert, key, error);
    if (key != NULL)
        explicit_bzero(key, strlen(key)); /* GnuTLS has its own copy now */
    if (!ok) {
        listener_free(listener);
        return FALSE;
    }
    g_ptr_array_add(server->listeners, listener);
    return TRUE;
}

gboolean http_server_listen_tcp(HttpServer *server, const char *address, const char *cert_file,
                                const char *key_file, GError **error)
{
    g_return_val_if_fail(server != NULL && address != NULL, FALSE);
    TcpAddress parsed;
    g_autofree char *cert = NULL;
    g_autofree char *key = NULL;
    guint16 port = 0;

    if (!http_transport_parse_tcp(address, &parsed, error) ||
        !tcp_security_check(address, parsed.loopback, cert_file, key_file, &cert, &key, error))
        return FALSE;
    int fd = http_transport_bind_tcp(address, &parsed, &port, error);
    if (fd < 0) {
        if (key != NULL)
            explicit_bzero(key, strlen(key));
        return FALSE;
    }
    return listener_add_tcp(server, fd, port, cert, key, error);
}

gboolean http_server_adopt_tcp(HttpServer *server, int fd, const char *cert_file,
                               const char *key_file, GError **error)
{
    g_return_val_if_fail(server != NULL && fd >= 0, FALSE);
    TcpAddress bound;
    g_autofree char *cert = NULL;
    g_autofree char *key = NULL;
    g_autofree char *text = NULL;
    guint16 port = 0;

    if (!http_transport_bound_tcp(fd, &bound, &port, &text, error) ||
        !tcp_security_check(text, bound.loopback, cert_file, key_file, &cert, &key, error)) {
        close(fd);
        return FALSE;
    }
    return listener_add_tcp(server, fd, port, cert, key, error);
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

/* ---- stopping ------------------------------------------------------------ */

/* Tells streams and long-polls to end and gives them until STOP_GRACE_USEC
 * to send their last bytes: stopping a loop cuts its connections, and a cut
 * stream looks truncated to its client rather than ended. */
static void server_end_streams(HttpServer *server)
{
    gint64 deadline = g_get_monotonic_time() + STOP_GRACE_USEC;
    GHashTableIter iter;
    gpointer fd;

    g_mutex_lock(&server->lock);
    g_atomic_int_set(&server->stopping, TRUE);
    /* An upload would hold the drain until its client finished or went idle:
     * cutting its socket (MHD still owns and closes it) makes MHD's next read
     * fail, and the upload is aborted at once. */
    g_hash_table_iter_init(&iter, server->upload_fds);
    while (g_hash_table_iter_next(&iter, &fd, NULL))
        shutdown(GPOINTER_TO_INT(fd), SHUT_RDWR);
    g_mutex_unlock(&server->lock);
    http_server_wake_all(server);
    upgrades_stop(server);
    g_mutex_lock(&server->lock);
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
    while (g_atomic_int_get(&server->in_flight) > 0 && g_get_monotonic_time() < deadline) {
        g_mutex_unlock(&server->lock);
        /* Anything parked answers now (it sees the server stopping). */
        http_server_wake_all(server);
        g_mutex_lock(&server->lock);
        g_cond_wait_until(&server->stop_cond, &server->lock,
                          MIN(deadline, g_get_monotonic_time() + 100 * G_TIME_SPAN_MILLISECOND));
    }
    if (g_atomic_int_get(&server->in_flight) > 0)
        g_warning("stopping with %d request(s) still in flight",
                  g_atomic_int_get(&server->in_flight));
    g_mutex_unlock(&server->lock);
}

void http_server_free(HttpServer *server)
{
    if (server == NULL)
        return;
    /* No new connections anywhere first, so nothing starts while we stop. */
    g_mutex_lock(&server->lock);
    g_atomic_int_set(&server->stopping, TRUE);
    g_mutex_unlock(&server->lock);
    for (guint i = 0; i < server->listeners->len; i++)
        http_transport_stop(server->listeners->pdata[i]);
    server_end_streams(server);
    server_drain(server);
    /* Stopping a loop with a suspended connection is not allowed: nothing
     * parks any more (the server is stopping), so one last wake-up empties. */
    http_server_wake_all(server);
    for (guint i = 0; i < server->listeners->len; i++)
        listener_free(server->listeners->pdata[i]);
    g_ptr_array_unref(server->listeners);
    http_transport_clear(server);
    for (gsize i = 0; i < server->n_routes; i++)
        g_strfreev(server->routes[i].segments);
    g_free(server->routes);
    g_hash_table_unref(server->counts);
    g_hash_table_unref(server->durations);
    audit_free(server->audit);
    g_hash_table_unref(server->upload_fds);
    g_hash_table_unref(server->wakers);
    g_hash_table_unref(server->upgrades);
    g_cond_clear(&server->stop_cond);
    g_mutex_clear(&server->lock);
    g_free(server);
}
