/* turtled's HTTP layer on libmicrohttpd: listeners (UNIX socket, optional TCP
 * with TLS), a route table instead of if-chains, request bodies (JSON with a
 * 1 MiB cap and a depth-limited parse, or raw uploads handed over piece by
 * piece), callers (the operator by SO_PEERCRED on the UNIX socket: uid 0 or a
 * member of the admin group; the operator or a tenant by bearer token), and
 * replies: JSON, empty, plain text, streams (Server-Sent
 * Events, console follow).  Handlers never touch libmicrohttpd; only this
 * layer turns a GError into a status and error body. */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#define HTTP_MAX_JSON_BODY (1024 * 1024)

typedef enum {
    HTTP_CALLER_ANONYMOUS, /* no credentials (only GET /v1 allows it) */
    HTTP_CALLER_OPERATOR,  /* root or the admin group on the UNIX socket without a
                            * token, or an operator token */
    HTTP_CALLER_TENANT,    /* a tenant's bearer token */
} HttpCallerRole;

/* What an operator may do: all of it, or read /metrics only (a scrape
 * token).  Without a token the operator's scope is admin. */
typedef enum {
    HTTP_SCOPE_ADMIN,
    HTTP_SCOPE_METRICS,
} HttpScope;

typedef struct {
    HttpCallerRole role;
    HttpScope scope; /* HTTP_CALLER_OPERATOR: its token's scope (admin without one) */
    char *tenant;    /* HTTP_CALLER_TENANT: the tenant's name */
    char *token;     /* the token presented (tenant or operator), so that long-lived
                      * streams can notice its revocation */
    char *token_id;  /* the id of the token presented (tenant or operator), or NULL */
    gint64 uid;      /* the UNIX-socket peer's uid (SO_PEERCRED), -1 on TCP */
} HttpCaller;

/* Who may call a route.  Checked before the handler runs: a tenant on an
 * operator route gets 403, no credentials 401 (403 on the UNIX socket for
 * a peer that is not the operator, saying why). */
typedef enum {
    HTTP_ACCESS_ANYONE,
    HTTP_ACCESS_OPERATOR,       /* the operator, with an admin token or none */
    HTTP_ACCESS_TENANT,         /* tenants only */
    HTTP_ACCESS_CALLER,         /* tenant or operator (admin) */
    HTTP_ACCESS_METRICS,        /* the operator, a metrics token too (GET /metrics) */
    HTTP_ACCESS_LOCAL_OPERATOR, /* the operator on the UNIX socket by its
                                 * credentials, no token: what mints tokens
                                 * must not be reachable with one */
} HttpAccess;

typedef struct {
    const char *method;
    const char *path;    /* without the query string, as sent (not percent-decoded) */
    GHashTable *params;  /* "{name}" captures of the route pattern, decoded */
    GHashTable *query;   /* query string arguments (only those the route accepts) */
    GHashTable *headers; /* request headers, names lower-cased; a repeated one joined by ", " */
    json_object *body;   /* the parsed JSON body, or NULL when there was none */
    const HttpCaller *caller;
    const char *request_id; /* a UUID per request, sent back as X-Request-Id */
} HttpRequest;

/* The request header @name (any case), or NULL. */
const char *http_request_header(const HttpRequest *request, const char *name);

/* The query argument @key, or NULL. */
const char *http_request_query(const HttpRequest *request, const char *key);
/* The capture {key} of the route pattern (always present for a matched route). */
const char *http_request_param(const HttpRequest *request, const char *key);

typedef struct HttpReply HttpReply;

/* @body is stolen. */
HttpReply *http_reply_json(unsigned status, json_object *body);
HttpReply *http_reply_empty(unsigned status);
HttpReply *http_reply_text(unsigned status, const char *content_type, const char *text);
/* Status and error body from a GError of TD_ERROR (API_ERROR -> 400 bad_request,
 * anything else -> 500 internal, logged, its message not leaked). */
HttpReply *http_reply_error(const GError *error);
/* Like http_reply_error for a TD_ERROR code and a printf message. */
HttpReply *http_reply_errorf(int td_error_code, const char *format, ...) G_GNUC_PRINTF(2, 3);
void http_reply_add_header(HttpReply *reply, const char *name, const char *value);

/* Entity tags (RFC 9110 8.8.3).  An ETag header on a 200 answer to GET makes
 * the layer answer a matching If-None-Match with 304 by itself.  If-Match is
 * for handlers to check against the resource's current tag, in the same
 * transaction as the change: http_request_if_match answers NULL when the
 * request may go on (no If-Match, "*", or a listed tag equal to @etag by the
 * strong comparison), else a 412 reply.  @etag is a quoted tag ("\"...\""). */
HttpReply *http_request_if_match(const HttpRequest *request, const char *etag);
/* TRUE when the If-None-Match / If-Match list @header names @etag; @weak
 * selects the weak comparison (If-None-Match) over the strong (If-Match). */
gboolean http_etag_list_matches(const char *header, const char *etag, gboolean weak);
/* Only for a reply that is not returned to this layer (which frees what
 * handlers return); frees a stream's data too. */
void http_reply_free(HttpReply *reply);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HttpReply, http_reply_free)

/* A streamed reply (chunked).  @read is called from an HTTP thread whenever the
 * client can take more: it fills up to @max bytes into @buf and returns the
 * count, 0 when it has nothing now (it must not wait: the connection is
 * parked until its waker is woken or the next tick), or -1 to end the stream.
 * @free_data runs once when the client leaves or the stream ends.  Streams
 * have no idle timeout, but count against streams_per_tenant/_token: a client
 * that leaves is noticed at the next write or tick.  When the server stops, a
 * stream ends at its next read.  @read never runs concurrently with itself. */
typedef gssize (*HttpStreamRead)(gpointer data, char *buf, gsize max);
HttpReply *http_reply_stream(unsigned status, const char *content_type, HttpStreamRead read,
                             gpointer data, GDestroyNotify free_data);

/* A deferred reply (a long-poll): the connection is parked until woken, then
 * @poll runs on an HTTP thread and returns the reply, or NULL to keep
 * waiting.  With @final TRUE (the server stops) it must return a reply.
 * Wake it through http_reply_waker; the layer also polls it on a short tick,
 * so a deadline of its own needs no timer. */
typedef HttpReply *(*HttpDeferredPoll)(gpointer data, gboolean final);
HttpReply *http_reply_deferred(HttpDeferredPoll poll, gpointer data, GDestroyNotify free_data);

/* A stream's reader should not wait for data: it returns 0 and the layer
 * calls it again when woken, or at the latest after a short tick.  The data
 * source wakes it through the stream's waker (thread-safe, refcounted; a wake
 * after the stream ended does nothing). */
typedef struct HttpWaker HttpWaker;
/* A new reference to @reply's waker (streams and deferred replies). */
HttpWaker *http_reply_waker(HttpReply *reply);
void http_waker_wake(HttpWaker *waker);
HttpWaker *http_waker_ref(HttpWaker *waker);
void http_waker_unref(HttpWaker *waker);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HttpWaker, http_waker_unref)

/* A protocol upgrade (101 Switching Protocols: a WebSocket).  The handler
 * checks the request and adds the 101's headers (Upgrade,
 * Sec-WebSocket-Accept) to the reply; the layer adds "Connection: Upgrade".
 * Once the 101 is sent, @start runs on an HTTP thread (it must not wait)
 * with the connection's socket @fd (non-blocking; on TLS a socket pair
 * libmicrohttpd relays through) and the bytes the client sent after its
 * headers; from then on the owner does the socket's I/O, without a thread of
 * the layer's, and calls http_upgrade_close exactly once when it is done
 * (never close(@fd) itself).  @stop (may be NULL) runs when the server
 * stops, on the thread that frees it: the owner must close soon after (the
 * layer waits a short grace).  @free_data runs once, after http_upgrade_close
 * or, when the 101 never went out (the client left first), when the request
 * ends.  An upgraded connection holds a stream slot (streams_per_tenant /
 * _token) until it is closed. */
typedef struct HttpUpgrade HttpUpgrade;
typedef void (*HttpUpgradeStart)(gpointer data, HttpUpgrade *upgrade, int fd, const char *extra,
                                 gsize extra_len);
typedef void (*HttpUpgradeStop)(gpointer data);
HttpReply *http_reply_upgrade(HttpUpgradeStart start, HttpUpgradeStop stop, gpointer data,
                              GDestroyNotify free_data);
/* Ends an upgraded connection: libmicrohttpd closes its socket, its stream
 * slot is released, and @free_data runs.  Any thread. */
void http_upgrade_close(HttpUpgrade *upgrade);

typedef HttpReply *(*HttpHandler)(gpointer app, const HttpRequest *request);

/* A route that takes a raw body (PUT /v1/images/{name}/data): the bytes are
 * handed over as they arrive, never held whole.  The request must carry
 * "Content-Type: application/octet-stream" (else 415) and a Content-Length
 * (else 411 length_required; chunked bodies are refused).
 *
 * begin runs once the headers are in, after authentication and authorization
 * (request->body is NULL), and returns the upload's state, or NULL with
 * *reply set to refuse it: the layer then answers at once without reading the
 * body (no "100 Continue" is sent) and closes the connection.  write gets each
 * piece in order; FALSE with *reply set stops the upload: write is not called
 * again, abort runs at once, and the layer answers *reply and closes the
 * connection once the rest of the declared body has arrived (libmicrohttpd
 * 0.9.75 cannot answer in the middle of a body; the rest is read and dropped,
 * no more than begin accepted).  After a successful begin exactly one of
 * finish and abort runs and frees the state: finish after the last byte (it
 * returns the reply), abort when the client left early, when write refused
 * (after it), or when the server stops mid-upload (its socket is cut then).
 * All run on the connection's thread, never concurrently, and may block. */
typedef struct {
    gpointer (*begin)(gpointer app, const HttpRequest *request, guint64 content_length,
                      HttpReply **reply);
    gboolean (*write)(gpointer upload, const char *data, gsize len, HttpReply **reply);
    HttpReply *(*finish)(gpointer upload);
    void (*abort)(gpointer upload);
} HttpUploadHandler;

typedef struct {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/v1/tenants/{name}/tokens/{id}" */
    HttpAccess access;
    gboolean json_body; /* requires an application/json body of at most 1 MiB */
    HttpHandler handler;
    const char *metric_name; /* label for /metrics, e.g. "/v1/tenants/{name}"; pattern if NULL */
    /* Set for a streamed raw body instead of @handler (which is then NULL);
     * json_body must be FALSE. */
    const HttpUploadHandler *upload;
    /* The query parameters the route accepts (NULL-terminated; NULL: none).
     * Any other is answered 400 naming it. */
    const char *const *query;
} HttpRoute;

/* Resolves a bearer token: fills @caller's role, token_id, and tenant (a
 * tenant's token, g_malloc'd) or scope (an operator token); FALSE when the
 * token is unknown or revoked.  Called from HTTP threads concurrently. */
typedef gboolean (*HttpTokenLookup)(gpointer app, const char *token, HttpCaller *caller);

typedef struct HttpServer HttpServer;

/* The front end's limits (the config file's keys of the same names). */
typedef struct {
    guint threads;                 /* event loops of each listener */
    guint max_connections;         /* TCP connections at once; past it 503 at accept */
    guint connection_reserve;      /* the last slots serve authenticated callers only (503) */
    guint connections_per_address; /* past it, authenticated callers only (429) */
    guint streams_per_tenant;      /* streams open at once (429) */
    guint streams_per_token;
    guint header_timeout; /* seconds for a request's headers, from accept or the last answer */
    guint body_timeout;   /* seconds for a JSON body */
    guint idle_timeout;   /* seconds with no bytes moving during a request */
} HttpLimits;

void http_limits_init(HttpLimits *limits);

/* @routes (usually a static table) must outlive the server. */
HttpServer *http_server_new(const HttpRoute *routes, gsize n_routes, HttpTokenLookup lookup,
                            gpointer app);
/* Before the first listen call; http_server_new starts from http_limits_init. */
void http_server_set_limits(HttpServer *server, const HttpLimits *limits);
/* The admin group: a UNIX-socket peer whose primary or supplementary group
 * is @gid is the operator, like root.  @name is for messages; @gid < 0: the
 * group does not exist, only root is.  Before the first listen call. */
void http_server_set_admin_group(HttpServer *server, const char *name, gint64 gid);
/* Creates the socket (mode 0660, replacing a stale one) and serves on it.
 * Refuses (TD_ERROR_CONFLICT) when a server answers on @path or @path is not
 * a socket.  Handlers run on HTTP threads: a few event loops per listener,
 * so a handler must not wait long (streams and long-polls park instead). */
gboolean http_server_listen_unix(HttpServer *server, const char *path, GError **error);
/* "ADDR:PORT" (port 0 picks a free one; http_server_tcp_port tells which).
 * Without @cert_file/@key_file only loopback addresses are accepted
 * (TD_ERROR_BAD_REQUEST); with them the listener speaks only TLS. */
gboolean http_server_listen_tcp(HttpServer *server, const char *address, const char *cert_file,
                                const char *key_file, GError **error);
/* Serve on listening sockets made by someone else (systemd's socket
 * activation): an AF_UNIX stream socket (the operator's and tenants' socket,
 * as http_server_listen_unix's) or a TCP one (the rules of
 * http_server_listen_tcp apply).  @fd is the server's from the call on, even
 * when it fails; it is never bound or listened again, and a UNIX socket's
 * file is never removed. */
gboolean http_server_adopt_unix(HttpServer *server, int fd, GError **error);
gboolean http_server_adopt_tcp(HttpServer *server, int fd, const char *cert_file,
                               const char *key_file, GError **error);
guint16 http_server_tcp_port(HttpServer *server);
/* Stops accepting, lets in-flight requests finish (streams are ended), frees. */
void http_server_free(HttpServer *server);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HttpServer, http_server_free)

/* Why connections or requests were refused by the limits. */
typedef enum {
    HTTP_REFUSED_CAPACITY, /* 503 at accept: max_connections reached */
    HTTP_REFUSED_ADDRESS,  /* 429: past connections_per_address, not authenticated */
    HTTP_REFUSED_RESERVE,  /* 503: in the reserve, not authenticated */
    HTTP_REFUSED_STREAMS,  /* 429: past streams_per_tenant or _token */
    HTTP_REFUSED_COUNT
} HttpRefusal;

typedef struct {
    guint connections;     /* open, all listeners */
    guint tcp_connections; /* open on TCP listeners */
    guint streams;
    guint64 refused[HTTP_REFUSED_COUNT]; /* since start */
} HttpServerStats;

void http_server_stats(HttpServer *server, HttpServerStats *stats);

/* Requests served so far, by route metric name and status: "route\tstatus" ->
 * GUINT_TO_POINTER(count); a path no route matches counts as "unmatched".
 * A new table (free with g_hash_table_unref); callable from any thread. */
GHashTable *http_server_request_counts(HttpServer *server);

/* Request latencies, by route metric name and method: "route\tmethod" ->
 * MetricsHistogram (daemon/metrics.h), from the request line to the answer
 * queued: a stream's to its headers (its first byte), a long-poll's with its
 * wait.  A new table (free with g_hash_table_unref). */
GHashTable *http_server_request_durations(HttpServer *server);

typedef struct Audit Audit;
/* Every mutating request gets an audit record (daemon/audit.h); the server
 * takes @audit and frees it last.  Before the first listen call. */
void http_server_set_audit(HttpServer *server, Audit *audit);
