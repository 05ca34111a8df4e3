/* Inside turtled's HTTP layer: what its files share.
 *
 *   http_reply.c      replies, error bodies, entity tags, wakers
 *   http_transport.c  sockets: listeners, accept, connection accounting and
 *                     limits, first-request screening, deadlines (the
 *                     reaper), raw answers
 *   http_server.c     libmicrohttpd: event loops, requests, streams and
 *                     deferred replies parked while they wait
 *   http_dispatch.c   one request: HTTP rules, route table, caller, body
 *   http_framing.c    the HTTP/1.1 framing rules both of the above apply
 *
 * Like libvirt's virnetserver/virnetserverclient/virnetdaemon split: the
 * transport knows sockets and limits, not routes; the dispatcher knows routes
 * and callers, not sockets. */
#pragma once

#include "daemon/audit.h"
#include "daemon/http.h"
#include "daemon/http_framing.h"
#include "daemon/metrics.h"

#include <microhttpd.h>
#include <sys/socket.h>
#include <sys/types.h>

#define HTTP_METRIC_UNMATCHED "unmatched"

/* ---- replies (http_reply.c) ---------------------------------------------- */

struct HttpReply {
    unsigned status;
    char *content_type;
    GBytes *body;       /* buffered replies */
    GPtrArray *headers; /* name, value, name, value, ... */
    HttpStreamRead read;
    HttpDeferredPoll poll;
    gpointer data;
    GDestroyNotify free_data;
    HttpWaker *waker;               /* streams and deferred replies */
    HttpUpgradeStart upgrade_start; /* protocol upgrades */
    HttpUpgradeStop upgrade_stop;
};

/* A JSON error body without logging or mapping: @status and wire @code. */
HttpReply *http_reply_error_body(unsigned status, const char *code, const char *message);
const char *http_reply_header(const HttpReply *reply, const char *name);
/* The wire code and reason phrase of @td_error_code (for raw answers). */
gboolean http_error_wire(int td_error_code, unsigned *status, const char **code);
const char *http_reason_phrase(unsigned status);

/* A waker parks the connection of a stream or a deferred reply: suspended in
 * libmicrohttpd until woken (by its data source, the tick or shutdown). */
void http_waker_attach(HttpWaker *waker, HttpServer *server, struct MHD_Connection *connection);
/* Called on the connection's thread when its reader has nothing: suspends
 * the connection unless a wake-up came in since the last call. */
void http_waker_park(HttpWaker *waker);
/* The connection is going away: wake-ups become no-ops. */
void http_waker_detach(HttpWaker *waker);

/* ---- transport (http_transport.c) ---------------------------------------- */

typedef enum {
    HTTP_PHASE_HEADERS,   /* waiting for a request's headers (header deadline) */
    HTTP_PHASE_BODY,      /* receiving a JSON body (body deadline) */
    HTTP_PHASE_BUSY,      /* handling, answering, uploading, streaming */
    HTTP_PHASE_TIMED_OUT, /* answered 408 by the reaper; the request must not run */
} HttpPhase;

typedef struct Listener Listener;

#include <sys/stat.h>

/* One accepted connection, from accept until libmicrohttpd closes it. */
typedef struct {
    Listener *listener;
    int fd;
    char *address;          /* the client's IP address; NULL on the UNIX socket */
    gboolean over_address;  /* past connections_per_address when accepted */
    gboolean over_capacity; /* in the reserve when accepted */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    gboolean started;    /* libmicrohttpd reported it (and will report its end) */
    gboolean lingering;  /* answered by the acceptor, its rest read and dropped */
    gint64 linger_until; /* monotonic µs; under server->lock */
    HttpPhase phase;     /* under server->lock */
    gint64 deadline;     /* monotonic µs, for HEADERS and BODY */
} HttpConn;

struct Listener {
    HttpServer *server;
    int fd;           /* the listening socket */
    gboolean is_unix; /* callers may be the operator only here */
    gboolean tls;
    char *unix_path; /* NULL for a passed socket: its file is not ours to remove */
    dev_t unix_dev;  /* to unlink only the socket file we made */
    ino_t unix_ino;
    guint16 port;
    GThread *acceptor;
    int epoll_fd; /* the listening socket, the stop event, connections being screened */
    int stop_fd;  /* an eventfd: the acceptor ends when it is written */
    gint64 last_warning;
    struct MHD_Daemon **loops; /* event loops the acceptor hands connections to */
    guint n_loops;
    guint next_loop;
};

/* Accounting of connections and streams; all under server->lock. */
typedef struct {
    GHashTable *conns;      /* fd -> HttpConn */
    GHashTable *by_address; /* address -> GUINT count */
    guint tcp_open;         /* TCP connections open */
    GHashTable *streams_by; /* "tenant:NAME" / "token:HASH" -> GUINT count */
    GHashTable *lingering;  /* HttpConn set: answered, being drained (acceptor-owned) */
    guint64 refused[HTTP_REFUSED_COUNT];
    GThread *reaper;
    GCond reaper_cond;
    gboolean reaper_stop;
} HttpTransport;

typedef struct {
    struct sockaddr_storage addr;
    socklen_t len;
    gboolean loopback;
} TcpAddress;

/* Refuses when a server answers on @path, removes a stale socket file, binds
 * and listens (mode 0660); the socket file's identity goes to @st. */
int http_transport_bind_unix(const char *path, struct stat *st, GError **error);
/* "ADDR:PORT" with an IPv4 ADDR, "[IPv6]:PORT", or "localhost:PORT". */
gboolean http_transport_parse_tcp(const char *text, TcpAddress *out, GError **error);
int http_transport_bind_tcp(const char *text, const TcpAddress *address, guint16 *port,
                            GError **error);
/* The address, port and "ADDR:PORT" text of a listening TCP socket made
 * elsewhere (socket activation). */
gboolean http_transport_bound_tcp(int fd, TcpAddress *address, guint16 *port, char **text,
                                  GError **error);

void http_transport_init(HttpServer *server);
/* Stops the reaper; the connections are gone by then. */
void http_transport_clear(HttpServer *server);
/* Starts the acceptor of @listener (its loops are running). */
gboolean http_transport_start(Listener *listener, GError **error);
/* Stops accepting on @listener and joins its acceptor. */
void http_transport_stop(Listener *listener);
/* libmicrohttpd's connection notifications. */
void http_transport_connection_started(Listener *listener, struct MHD_Connection *connection,
                                       void **socket_context);
void http_transport_connection_closed(Listener *listener, void **socket_context);
/* Moves @conn to @phase; FALSE when the reaper timed it out first. */
gboolean http_transport_enter(HttpServer *server, HttpConn *conn, HttpPhase phase);
/* Takes a stream slot for @caller; FALSE (and a 429 in *reply) past a limit. */
gboolean http_transport_stream_acquire(HttpServer *server, const HttpCaller *caller,
                                       HttpReply **reply);
void http_transport_stream_release(HttpServer *server, const HttpCaller *caller);
/* A refusal (ADDRESS or RESERVE) as a reply: JSON, Retry-After, Connection: close. */
HttpReply *http_transport_refusal(HttpServer *server, HttpRefusal kind);
/* Writes a whole JSON error answer on @fd, bypassing libmicrohttpd: for
 * answers it cannot give (before it has parsed a request, or where it has
 * already queued its own HTML one).  Plain sockets only.  @request_id is the
 * X-Request-Id (NULL: a fresh one, for an answer before any request). */
void http_transport_write_raw(int fd, unsigned status, const char *code, const char *message,
                              const char *retry_after, const char *request_id);

/* ---- server (http_server.c) ----------------------------------------------- */

typedef struct {
    const HttpRoute *route;
    char **segments; /* the pattern split at '/'; "{name}" segments capture */
} CompiledRoute;

struct HttpServer {
    CompiledRoute *routes;
    gsize n_routes;
    HttpTokenLookup lookup;
    gpointer app;
    HttpLimits limits;
    GPtrArray *listeners;
    GMutex lock;            /* guards everything below and the transport */
    GCond stop_cond;        /* wakes shutdown when a stream or request ends */
    gint stopping;          /* g_atomic_int_get to read; set under the lock */
    guint streams;          /* streams handed to MHD and not freed yet */
    gint in_flight;         /* requests begun and not completed yet; g_atomic_int_* */
    GHashTable *upload_fds; /* sockets of uploads under way, cut when stopping */
    GHashTable *counts;     /* "metric\tstatus" -> GUINT_TO_POINTER(count) */
    GHashTable *durations;  /* "metric\tmethod" -> MetricsHistogram */
    Audit *audit;           /* owned; NULL: no audit records */
    GHashTable *wakers;     /* parked-or-parkable wakers, for the tick and shutdown */
    GHashTable *upgrades;   /* HttpUpgrade set: started and not closed, for shutdown */
    HttpTransport transport;
    /* The admin group (http_server_set_admin_group); read-only once serving. */
    const char *admin_group; /* interned, so nothing frees it; NULL: unset */
    gboolean has_admin_gid;
    gid_t admin_gid;
};

gboolean http_server_stopping(HttpServer *server);
void http_server_count(HttpServer *server, const char *metric, unsigned status);
/* Wakes every waker (the tick, and shutdown). */
void http_server_wake_all(HttpServer *server);

/* ---- dispatch (http_dispatch.c) -------------------------------------------- */

typedef struct {
    Listener *listener;
    HttpConn *conn;
    const CompiledRoute *route; /* NULL until a route matched path and method */
    const char *metric;
    char *method; /* HEAD is dispatched as GET and answered without a body */
    gboolean is_head;
    GHashTable *params;
    GHashTable *query;
    GHashTable *headers;
    HttpCaller caller;
    char *request_id;   /* set by request_new, see HttpRequest */
    gint64 started_at;  /* monotonic µs: the request line arrived */
    char *path;         /* as sent, without the query (for the audit record) */
    HttpReply *refusal; /* decided before the body is complete */
    gboolean answered;
    gboolean stream_slot; /* holds a stream slot of caller */
    GByteArray *body;     /* json_body routes only, never over the cap */
    gsize discarded;
    guint64 content_length; /* upload routes: as declared, checked by MHD */
    gpointer upload;        /* upload routes: the handler's state from begin to finish/abort */
    int upload_fd;          /* the socket, registered in server->upload_fds, or -1 */
    HttpReply *deferred;    /* a parked deferred reply */
    HttpUpgrade *upgrade; /* a 101 queued: its state, until its handler ran or the request ended */
    gboolean begun;       /* http_dispatch_begin ran */
    HttpHead head;        /* for the framing rules: target (from the URI logger), headers */
} Request;

/* Everything decided from the request line and headers; @request may exist
 * already (from the URI logger). */
void http_dispatch_begin(Request *request, struct MHD_Connection *connection, const char *method,
                         const char *url, const char *version);
gboolean http_dispatch_take_body(Request *request, const char *data, size_t size);
gboolean http_dispatch_take_upload(Request *request, const char *data, size_t size);
/* The answer once the body is in (NULL: a deferred reply is still parked). */
HttpReply *http_dispatch_run(Request *request, const char *url);
HttpReply *http_dispatch_upload_finish(Request *request);
void http_dispatch_upload_abort(Request *request);
void http_dispatch_upload_forget_fd(Request *request);
void http_dispatch_free(Request *request);
