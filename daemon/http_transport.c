/* The HTTP layer's transport: listening sockets, an acceptor thread per
 * listener that counts each connection against the limits before handing it
 * to an event loop, the deadlines libmicrohttpd does not have (a whole
 * request's headers, a JSON body), and answers written on the socket itself
 * where libmicrohttpd cannot give ours. */
#include "daemon/http-private.h"

#include "api/error_body.h"
#include "api/json.h"
#include "daemon/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib-unix.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#define LISTEN_BACKLOG       511
#define ACCEPT_RETRY_USEC    (100 * G_TIME_SPAN_MILLISECOND)
#define ACCEPT_EVENTS        64
#define LINGER_USEC          (2 * G_USEC_PER_SEC) /* a refused client's rest is read this long */
#define REAPER_PERIOD_USEC   (250 * G_TIME_SPAN_MILLISECOND)
#define TICK_EVERY           2 /* reaper periods: parked streams are polled twice a second */
#define RETRY_AFTER_CAPACITY "5"
#define RETRY_AFTER_ADDRESS  "5"
#define RETRY_AFTER_STREAMS  "10"

/* ---- sockets ---------------------------------------------------------------- */

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

int http_transport_bind_unix(const char *path, struct stat *st, GError **error)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "socket path too long: %s", path);
        return -1;
    }
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    if (!unix_path_clear(path, error))
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
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

static gboolean is_loopback(const struct sockaddr_storage *addr)
{
    if (addr->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr) >> 24) == 127;
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)addr)->sin6_addr);
}

/* "ADDR:PORT" with an IPv4 ADDR, "[IPv6]:PORT", or "localhost:PORT". */
gboolean http_transport_parse_tcp(const char *text, TcpAddress *out, GError **error)
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
        out->loopback = is_loopback(&out->addr);
        return TRUE;
    }
    if (text[0] == '[' && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((guint16)port);
        out->len = sizeof(*in6);
        out->loopback = is_loopback(&out->addr);
        return TRUE;
    }
bad:
    g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                "bad listen address '%s': expected IPV4:PORT or [IPV6]:PORT", text);
    return FALSE;
}

int http_transport_bind_tcp(const char *text, const TcpAddress *address, guint16 *port,
                            GError **error)
{
    int family = address->addr.ss_family;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
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

gboolean http_transport_bound_tcp(int fd, TcpAddress *address, guint16 *port, char **text,
                                  GError **error)
{
    char host[INET6_ADDRSTRLEN] = "";

    memset(address, 0, sizeof(*address));
    address->len = sizeof(address->addr);
    if (getsockname(fd, (struct sockaddr *)&address->addr, &address->len) != 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "getsockname: %s", g_strerror(errno));
        return FALSE;
    }
    gboolean v6 = address->addr.ss_family == AF_INET6;
    const void *raw = v6 ? (const void *)&((struct sockaddr_in6 *)&address->addr)->sin6_addr
                         : (const void *)&((struct sockaddr_in *)&address->addr)->sin_addr;
    if ((!v6 && address->addr.ss_family != AF_INET) ||
        inet_ntop(address->addr.ss_family, raw, host, sizeof(host)) == NULL) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "not an IPv4 or IPv6 socket");
        return FALSE;
    }
    *port = ntohs(v6 ? ((struct sockaddr_in6 *)&address->addr)->sin6_port
                     : ((struct sockaddr_in *)&address->addr)->sin_port);
    address->loopback = is_loopback(&address->addr);
    *text = v6 ? g_strdup_printf("[%s]:%u", host, *port) : g_strdup_printf("%s:%u", host, *port);
    return TRUE;
}

/* ---- connections ----------------------------------------------------------- */

static void conn_free(HttpConn *conn)
{
    g_free(conn->address);
    g_free(conn);
}

/* Under server->lock: gives back what @conn counted against. */
static void conn_release(HttpServer *server, HttpConn *conn)
{
    HttpTransport *transport = &server->transport;
    if (conn->address == NULL)
        return;
    transport->tcp_open--;
    guint count = GPOINTER_TO_UINT(g_hash_table_lookup(transport->by_address, conn->address));
    if (count <= 1)
        g_hash_table_remove(transport->by_address, conn->address);
    else
        g_hash_table_insert(transport->by_address, g_strdup(conn->address),
                            GUINT_TO_POINTER(count - 1));
}

static char *address_text(const struct sockaddr_storage *addr)
{
    char text[INET6_ADDRSTRLEN] = "";
    if (addr->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, text, sizeof(text));
    else if (addr->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr, text, sizeof(text));
    return g_strdup(text);
}

void http_transport_write_raw(int fd, unsigned status, const char *code, const char *message,
                              const char *retry_after, const char *request_id)
{
    g_autoptr(json_object) body = api_error_body_to_json((int)status, code, message);
    g_autofree char *json = api_json_to_string(body);
    g_autofree char *fresh_id = request_id == NULL ? g_uuid_string_random() : NULL;
    g_autofree char *answer = g_strdup_printf(
        "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
        "Connection: close\r\nX-Request-Id: %s\r\n%s%s%s\r\n%s",
        status, http_reason_phrase(status), strlen(json), request_id ? request_id : fresh_id,
        retry_after ? "Retry-After: " : "", retry_after ? retry_after : "",
        retry_after ? "\r\n" : "", json);
    /* Small enough for any socket buffer; a client that does not read loses it. */
    if (send(fd, answer, strlen(answer), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        g_debug("raw %u answer not sent: %s", status, g_strerror(errno));
}

/* Past max_connections even the reserve is full: answer without libmicrohttpd
 * (which would cost a slot) and close.  TLS would need a handshake first, so
 * a TLS client just sees the connection closed. */
static void refuse_at_accept(Listener *listener, int fd)
{
    char drain[4096];
    if (!listener->tls) {
        http_transport_write_raw(fd, 503, "unavailable",
                                 "the server is at its connection limit; try again later",
                                 RETRY_AFTER_CAPACITY, NULL);
        shutdown(fd, SHUT_WR);
        /* What the client already sent would turn our close into a reset,
         * which can destroy the answer before it is read. */
        while (recv(fd, drain, sizeof(drain), MSG_DONTWAIT) > 0)
            ;
    }
    close(fd);
}

/* Under server->lock: forgets a connection that never reached libmicrohttpd. */
static void conn_forget(HttpServer *server, HttpConn *conn)
{
    if (g_hash_table_lookup(server->transport.conns, GINT_TO_POINTER(conn->fd)) == conn)
        g_hash_table_remove(server->transport.conns, GINT_TO_POINTER(conn->fd));
    conn_release(server, conn);
}

/* Closes a connection the acceptor still holds; with @error, answers it
 * first (plain sockets). */
/* Reads and drops what a lingering connection sends; closes it at its end
 * (or when the reaper cut it, past LINGER_USEC). */
static void linger_drain(Listener *listener, HttpConn *conn)
{
    HttpServer *server = listener->server;
    char drain[4096];
    ssize_t n;

    while ((n = recv(conn->fd, drain, sizeof(drain), MSG_DONTWAIT)) > 0)
        ;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    epoll_ctl(listener->epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL);
    g_mutex_lock(&server->lock);
    g_hash_table_remove(server->transport.lingering, conn);
    g_mutex_unlock(&server->lock);
    close(conn->fd);
    conn_free(conn);
}

/* Closes a connection the acceptor still holds; with @error, answers it
 * first (plain sockets) and lingers: the client may still be sending what we
 * refused (a 200 KB request line), and closing with unread bytes resets the
 * connection, which can destroy the answer before the client reads it. */
static void pending_close(Listener *listener, HttpConn *conn, const GError *error)
{
    HttpServer *server = listener->server;

    g_mutex_lock(&server->lock);
    conn_forget(server, conn);
    gboolean answered = g_atomic_int_get(&conn->phase) == HTTP_PHASE_TIMED_OUT; /* by the reaper */
    if (error != NULL && !answered) {
        conn->linger_until = g_get_monotonic_time() + LINGER_USEC;
        g_hash_table_add(server->transport.lingering, conn);
    }
    g_mutex_unlock(&server->lock);
    if (error == NULL || answered) {
        epoll_ctl(listener->epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL);
        close(conn->fd);
        conn_free(conn);
        return;
    }
    unsigned status = 500;
    const char *code = "internal";
    http_error_wire(error->code, &status, &code);
    http_transport_write_raw(conn->fd, status, code, error->message, NULL, NULL);
    shutdown(conn->fd, SHUT_WR);
    conn->lingering = TRUE;
    linger_drain(listener, conn);
}

/* Hands a connection whose first request head passed to an event loop. */
static void pending_hand_over(Listener *listener, HttpConn *conn)
{
    HttpServer *server = listener->server;

    epoll_ctl(listener->epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL);
    /* Round robin: connections cost the loops alike while they wait. */
    struct MHD_Daemon *loop = listener->loops[listener->next_loop++ % listener->n_loops];
    struct sockaddr_storage addr = conn->peer;
    if (MHD_add_connection(loop, conn->fd, (const struct sockaddr *)&addr, conn->peer_len) ==
        MHD_YES)
        return;
    /* libmicrohttpd closed the socket; unless it reported the connection
     * (and will report its end), forget it here. */
    g_mutex_lock(&server->lock);
    gboolean started = conn->started;
    if (!started)
        conn_forget(server, conn);
    g_mutex_unlock(&server->lock);
    if (!started)
        conn_free(conn);
}

/* Looks at what a waiting connection sent so far (without taking it from
 * the socket, so that libmicrohttpd reads it all again); @events are
 * epoll's for it (0: none yet). */
static void pending_screen(Listener *listener, HttpConn *conn, guint32 events)
{
    if (conn->lingering) {
        linger_drain(listener, conn);
        return;
    }
    g_autofree char *buf = g_malloc(HTTP_MAX_HEAD);
    g_autoptr(GError) error = NULL;

    ssize_t n = recv(conn->fd, buf, HTTP_MAX_HEAD, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        pending_close(listener, conn, NULL); /* gone, or cut by the reaper */
        return;
    }
    switch (http_head_scan(buf, (gsize)n, &error)) {
    case HTTP_SCAN_INCOMPLETE:
        /* A client that shut its side can never finish the head: closed
         * without an answer, as libmicrohttpd does. */
        if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            pending_close(listener, conn, NULL);
        return; /* else the next bytes bring another edge */
    case HTTP_SCAN_BAD:
        pending_close(listener, conn, error);
        return;
    case HTTP_SCAN_OK:
        pending_hand_over(listener, conn);
        return;
    }
}

static void accept_one(Listener *listener, int fd, const struct sockaddr_storage *addr,
                       socklen_t len)
{
    HttpServer *server = listener->server;
    HttpTransport *transport = &server->transport;
    const HttpLimits *limits = &server->limits;
    HttpConn *conn = g_new0(HttpConn, 1);

    conn->listener = listener;
    conn->fd = fd;
    conn->peer = *addr;
    conn->peer_len = len;
    conn->phase = HTTP_PHASE_HEADERS;
    conn->deadline = g_get_monotonic_time() + (gint64)limits->header_timeout * G_USEC_PER_SEC;
    if (!listener->is_unix)
        conn->address = address_text(addr);

    g_mutex_lock(&server->lock);
    if (conn->address != NULL) {
        if (transport->tcp_open >= limits->max_connections) {
            transport->refused[HTTP_REFUSED_CAPACITY]++;
            g_mutex_unlock(&server->lock);
            refuse_at_accept(listener, fd);
            conn_free(conn);
            return;
        }
        transport->tcp_open++;
        guint count =
            GPOINTER_TO_UINT(g_hash_table_lookup(transport->by_address, conn->address)) + 1;
        g_hash_table_insert(transport->by_address, g_strdup(conn->address),
                            GUINT_TO_POINTER(count));
        conn->over_address = count > limits->connections_per_address;
        conn->over_capacity =
            transport->tcp_open > limits->max_connections - limits->connection_reserve;
    }
    g_hash_table_insert(transport->conns, GINT_TO_POINTER(fd), conn);
    g_mutex_unlock(&server->lock);

    /* TLS bytes cannot be screened before the handshake: libmicrohttpd's
     * own parse (and the dispatcher's checks) apply there. */
    if (listener->tls) {
        pending_hand_over(listener, conn);
        return;
    }
    /* Until its first request head is in, a connection costs the acceptor a
     * descriptor in its epoll set and nothing in libmicrohttpd. */
    struct epoll_event event = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = conn};
    if (epoll_ctl(listener->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
        g_warning("epoll_ctl: %s", g_strerror(errno));
        pending_close(listener, conn, NULL);
        return;
    }
    pending_screen(listener, conn, 0); /* bytes may have come with the connection */
}

/* Accepts until the backlog is empty; FALSE when the listener is done. */
static gboolean accept_all(Listener *listener)
{
    for (;;) {
        struct sockaddr_storage addr;
        socklen_t len = sizeof(addr);
        int fd =
            accept4(listener->fd, (struct sockaddr *)&addr, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            accept_one(listener, fd, &addr, len);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return TRUE;
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EINVAL || errno == EBADF)
            return FALSE;
        /* Out of descriptors or memory: the kernel keeps the connection in
         * the backlog; try again soon rather than spin. */
        if (g_get_monotonic_time() - listener->last_warning > 10 * G_USEC_PER_SEC) {
            g_warning("accept: %s", g_strerror(errno));
            listener->last_warning = g_get_monotonic_time();
        }
        g_usleep(ACCEPT_RETRY_USEC);
        return TRUE;
    }
}

static gpointer acceptor_run(gpointer data)
{
    Listener *listener = data;
    HttpServer *server = listener->server;
    struct epoll_event events[ACCEPT_EVENTS];
    gboolean running = TRUE;

    while (running) {
        int n = epoll_wait(listener->epoll_fd, events, ACCEPT_EVENTS, -1);
        if (n < 0 && errno != EINTR) {
            g_warning("epoll_wait: %s", g_strerror(errno));
            break;
        }
        for (int i = 0; i < n && running; i++) {
            if (events[i].data.ptr == &listener->stop_fd)
                running = FALSE;
            else if (events[i].data.ptr == listener)
                running = accept_all(listener);
            else
                pending_screen(listener, events[i].data.ptr, events[i].events);
        }
    }
    /* What never reached libmicrohttpd is closed here. */
    g_autoptr(GPtrArray) pending = g_ptr_array_new();
    GHashTableIter iter;
    gpointer value;
    g_mutex_lock(&server->lock);
    g_hash_table_iter_init(&iter, server->transport.conns);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        HttpConn *conn = value;
        if (conn->listener == listener && !conn->started && !listener->tls)
            g_ptr_array_add(pending, conn);
    }
    g_mutex_unlock(&server->lock);
    for (guint i = 0; i < pending->len; i++)
        pending_close(listener, pending->pdata[i], NULL);
    g_autoptr(GPtrArray) lingering = g_ptr_array_new();
    g_mutex_lock(&server->lock);
    g_hash_table_iter_init(&iter, server->transport.lingering);
    while (g_hash_table_iter_next(&iter, &value, NULL))
        if (((HttpConn *)value)->listener == listener) {
            g_ptr_array_add(lingering, value);
            g_hash_table_iter_remove(&iter);
        }
    g_mutex_unlock(&server->lock);
    for (guint i = 0; i < lingering->len; i++) {
        HttpConn *conn = lingering->pdata[i];
        close(conn->fd);
        conn_free(conn);
    }
    return NULL;
}

gboolean http_transport_start(Listener *listener, GError **error)
{
    struct epoll_event accept_event = {.events = EPOLLIN, .data.ptr = listener};
    struct epoll_event stop_event = {.events = EPOLLIN, .data.ptr = &listener->stop_fd};

    listener->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    listener->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (listener->epoll_fd < 0 || listener->stop_fd < 0 ||
        !g_unix_set_fd_nonblocking(listener->fd, TRUE, NULL) ||
        epoll_ctl(listener->epoll_fd, EPOLL_CTL_ADD, listener->fd, &accept_event) != 0 ||
        epoll_ctl(listener->epoll_fd, EPOLL_CTL_ADD, listener->stop_fd, &stop_event) != 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "cannot set up the HTTP acceptor: %s",
                    g_strerror(errno));
        return FALSE;
    }
    listener->acceptor = g_thread_try_new("http-accept", acceptor_run, listener, NULL);
    if (listener->acceptor == NULL) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "cannot start the HTTP acceptor");
        return FALSE;
    }
    return TRUE;
}

void http_transport_stop(Listener *listener)
{
    if (listener->acceptor != NULL) {
        guint64 one = 1;
        if (write(listener->stop_fd, &one, sizeof(one)) != sizeof(one))
            g_warning("cannot stop the HTTP acceptor: %s", g_strerror(errno));
        g_thread_join(g_steal_pointer(&listener->acceptor));
    }
    if (listener->epoll_fd >= 0)
        close(listener->epoll_fd);
    if (listener->stop_fd >= 0)
        close(listener->stop_fd);
    listener->epoll_fd = listener->stop_fd = -1;
}

void http_transport_connection_started(Listener *listener, struct MHD_Connection *connection,
                                       void **socket_context)
{
    HttpServer *server = listener->server;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info == NULL)
        return;
    g_mutex_lock(&server->lock);
    HttpConn *conn =
        g_hash_table_lookup(server->transport.conns, GINT_TO_POINTER(info->connect_fd));
    if (conn != NULL) {
        conn->started = TRUE;
        *socket_context = conn;
    }
    g_mutex_unlock(&server->lock);
}

void http_transport_connection_closed(Listener *listener, void **socket_context)
{
    HttpServer *server = listener->server;
    HttpConn *conn = *socket_context;
    if (conn == NULL)
        return;
    *socket_context = NULL;
    g_mutex_lock(&server->lock);
    if (g_hash_table_lookup(server->transport.conns, GINT_TO_POINTER(conn->fd)) == conn)
        g_hash_table_remove(server->transport.conns, GINT_TO_POINTER(conn->fd));
    conn_release(server, conn);
    g_mutex_unlock(&server->lock);
    conn_free(conn);
}

gboolean http_transport_enter(HttpServer *server, HttpConn *conn, HttpPhase phase)
{
    const HttpLimits *limits = &server->limits;
    if (conn == NULL)
        return TRUE;
    /* No lock: this runs several times per request on every loop.  The
     * deadline goes first; the reaper reads it only after the phase. */
    if (phase == HTTP_PHASE_HEADERS || phase == HTTP_PHASE_BODY) {
        guint seconds = phase == HTTP_PHASE_BODY ? limits->body_timeout : limits->header_timeout;
        __atomic_store_n(&conn->deadline, g_get_monotonic_time() + (gint64)seconds * G_USEC_PER_SEC,
                         __ATOMIC_RELEASE);
    }
    for (;;) {
        gint old = g_atomic_int_get(&conn->phase);
        if (old == HTTP_PHASE_TIMED_OUT)
            return FALSE;
        if (g_atomic_int_compare_and_exchange(&conn->phase, old, (gint)phase))
            return TRUE;
    }
}

/* ---- the reaper: deadlines and the tick ---------------------------------- */

/* Under server->lock, which keeps libmicrohttpd from closing (and the kernel
 * from reusing) the descriptor meanwhile: the close notification waits. */
static void reap(HttpServer *server, gint64 now)
{
    GHashTableIter iter;
    gpointer value;

    /* Lingering answers that the client keeps feeding end here: the
     * acceptor sees the shutdown and closes. */
    g_hash_table_iter_init(&iter, server->transport.lingering);
    while (g_hash_table_iter_next(&iter, &value, NULL)) {
        HttpConn *conn = value;
        if (now >= conn->linger_until)
            shutdown(conn->fd, SHUT_RDWR);
    }

    g_hash_table_iter_init(&iter, server->transport.conns);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        HttpConn *conn = value;
        gint phase = g_atomic_int_get(&conn->phase);
        if ((phase != HTTP_PHASE_HEADERS && phase != HTTP_PHASE_BODY) ||
            now < __atomic_load_n(&conn->deadline, __ATOMIC_ACQUIRE) ||
            !g_atomic_int_compare_and_exchange(&conn->phase, phase, HTTP_PHASE_TIMED_OUT))
            continue;
        const char *what = phase == HTTP_PHASE_HEADERS ? "headers" : "body";
        if (!conn->listener->tls) {
            g_autofree char *message =
                g_strdup_printf("the request %s did not arrive within %u seconds", what,
                                g_str_equal(what, "body") ? server->limits.body_timeout
                                                          : server->limits.header_timeout);
            http_transport_write_raw(conn->fd, 408, "request_timeout", message, NULL, NULL);
        }
        /* libmicrohttpd sees the end at its next read and closes. */
        shutdown(conn->fd, SHUT_RDWR);
    }
}

static gpointer reaper_run(gpointer data)
{
    HttpServer *server = data;
    HttpTransport *transport = &server->transport;
    guint ticks = 0;

    g_mutex_lock(&server->lock);
    while (!transport->reaper_stop) {
        gint64 now = g_get_monotonic_time();
        reap(server, now);
        g_cond_wait_until(&transport->reaper_cond, &server->lock, now + REAPER_PERIOD_USEC);
        if (++ticks % TICK_EVERY == 0 && !transport->reaper_stop) {
            g_mutex_unlock(&server->lock);
            /* Parked streams look at their source, their client and the
             * server's state at least this often. */
            http_server_wake_all(server);
            g_mutex_lock(&server->lock);
        }
    }
    g_mutex_unlock(&server->lock);
    return NULL;
}

void http_transport_init(HttpServer *server)
{
    HttpTransport *transport = &server->transport;
    transport->conns = g_hash_table_new(g_direct_hash, g_direct_equal);
    transport->by_address = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    transport->streams_by = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    transport->lingering = g_hash_table_new(g_direct_hash, g_direct_equal);
    g_cond_init(&transport->reaper_cond);
    transport->reaper = g_thread_new("http-reaper", reaper_run, server);
}

void http_transport_clear(HttpServer *server)
{
    HttpTransport *transport = &server->transport;
    g_mutex_lock(&server->lock);
    transport->reaper_stop = TRUE;
    g_cond_broadcast(&transport->reaper_cond);
    g_mutex_unlock(&server->lock);
    g_thread_join(transport->reaper);
    g_cond_clear(&transport->reaper_cond);
    /* Every connection was closed (and reported) when its loop stopped. */
    g_hash_table_unref(transport->conns);
    g_hash_table_unref(transport->by_address);
    g_hash_table_unref(transport->streams_by);
    g_hash_table_unref(transport->lingering);
}

/* ---- refusals and stream slots --------------------------------------------- */

HttpReply *http_transport_refusal(HttpServer *server, HttpRefusal kind)
{
    const HttpLimits *limits = &server->limits;
    HttpReply *reply;

    g_return_val_if_fail(kind == HTTP_REFUSED_ADDRESS || kind == HTTP_REFUSED_RESERVE, NULL);
    g_mutex_lock(&server->lock);
    server->transport.refused[kind]++;
    g_mutex_unlock(&server->lock);
    if (kind == HTTP_REFUSED_ADDRESS) {
        reply = http_reply_errorf(TD_ERROR_TOO_MANY_REQUESTS,
                                  "too many connections from this address (more than %u); "
                                  "only authenticated requests are served on the others",
                                  limits->connections_per_address);
        http_reply_add_header(reply, "Retry-After", RETRY_AFTER_ADDRESS);
    } else {
        reply = http_reply_errorf(TD_ERROR_UNAVAILABLE,
                                  "the server is near its connection limit (%u); only "
                                  "authenticated requests are served now",
                                  limits->max_connections);
        http_reply_add_header(reply, "Retry-After", RETRY_AFTER_CAPACITY);
    }
    http_reply_add_header(reply, MHD_HTTP_HEADER_CONNECTION, "close");
    return reply;
}

/* The keys a caller's streams are counted under: a tenant's name (none for
 * an operator token) and the token (hashed: the table outlives requests and
 * need not hold secrets). */
static void stream_keys(const HttpCaller *caller, char **tenant_key, char **token_key)
{
    g_autofree char *hash = g_compute_checksum_for_string(G_CHECKSUM_SHA256, caller->token, -1);
    *tenant_key =
        caller->role == HTTP_CALLER_TENANT ? g_strconcat("tenant:", caller->tenant, NULL) : NULL;
    *token_key = g_strconcat("token:", hash, NULL);
}

static guint counter_add(GHashTable *table, const char *key, int delta)
{
    guint count = GPOINTER_TO_UINT(g_hash_table_lookup(table, key));
    count = (guint)((int)count + delta);
    if (count == 0)
        g_hash_table_remove(table, key);
    else
        g_hash_table_insert(table, g_strdup(key), GUINT_TO_POINTER(count));
    return count;
}

gboolean http_transport_stream_acquire(HttpServer *server, const HttpCaller *caller,
                                       HttpReply **reply)
{
    const HttpLimits *limits = &server->limits;
    g_autofree char *tenant_key = NULL;
    g_autofree char *token_key = NULL;

    /* The operator on the socket is one trusted caller, not limited; a
     * token (an operator's too: it may leak into a runaway script) is. */
    if (caller->token == NULL)
        return TRUE;
    stream_keys(caller, &tenant_key, &token_key);
    g_mutex_lock(&server->lock);
    GHashTable *table = server->transport.streams_by;
    guint by_tenant =
        tenant_key != NULL ? GPOINTER_TO_UINT(g_hash_table_lookup(table, tenant_key)) : 0;
    guint by_token = GPOINTER_TO_UINT(g_hash_table_lookup(table, token_key));
    gboolean ok = (tenant_key == NULL || by_tenant < limits->streams_per_tenant) &&
                  by_token < limits->streams_per_token;
    if (ok) {
        if (tenant_key != NULL)
            counter_add(table, tenant_key, 1);
        counter_add(table, token_key, 1);
    } else {
        server->transport.refused[HTTP_REFUSED_STREAMS]++;
    }
    g_mutex_unlock(&server->lock);
    if (ok)
        return TRUE;
    *reply = tenant_key != NULL && by_tenant >= limits->streams_per_tenant
                 ? http_reply_errorf(TD_ERROR_TOO_MANY_REQUESTS,
                                     "too many streams open for tenant '%s' (%u); close one first",
                                     caller->tenant, limits->streams_per_tenant)
                 : http_reply_errorf(TD_ERROR_TOO_MANY_REQUESTS,
                                     "too many streams open with this token (%u); close one first",
                                     limits->streams_per_token);
    http_reply_add_header(*reply, "Retry-After", RETRY_AFTER_STREAMS);
    return FALSE;
}

void http_transport_stream_release(HttpServer *server, const HttpCaller *caller)
{
    g_autofree char *tenant_key = NULL;
    g_autofree char *token_key = NULL;

    if (caller->token == NULL)
        return;
    stream_keys(caller, &tenant_key, &token_key);
    g_mutex_lock(&server->lock);
    if (tenant_key != NULL)
        counter_add(server->transport.streams_by, tenant_key, -1);
    counter_add(server->transport.streams_by, token_key, -1);
    g_mutex_unlock(&server->lock);
}

void http_server_stats(HttpServer *server, HttpServerStats *stats)
{
    g_mutex_lock(&server->lock);
    stats->connections = g_hash_table_size(server->transport.conns);
    stats->tcp_connections = server->transport.tcp_open;
    stats->streams = server->streams;
    for (guint i = 0; i < HTTP_REFUSED_COUNT; i++)
        stats->refused[i] = server->transport.refused[i];
    g_mutex_unlock(&server->lock);
}
