/* http-load: a small closed-loop HTTP/1.1 load client for tests/bench.
 *
 *   http-load (--unix PATH | --tcp HOST:PORT) [--path /v1] [--header 'K: V']...
 *             [--conns N] [--seconds S] [--expect STATUS]
 *
 * N threads, each with one keep-alive connection, send GET PATH one after
 * another for S seconds and time every request from the first byte written to
 * the last byte of the body read.  wrk cannot speak to a UNIX socket, so the
 * benchmark uses this client for both transports to compare like with like.
 * Prints one line:
 *
 *   requests=R errors=E reconnects=C seconds=T rps=X p50_ms=Y p99_ms=Z
 *
 * Only responses with status EXPECT (default 200) are timed; others count as
 * errors.  Exit status: 0, 3 when some responses were errors (the line is
 * still printed), 1 when it could not run, 2 on bad usage. */
#include <errno.h>
#include <glib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tests/tools/sock-util.h"

/* Responses of the routes we measure are small; a bigger one is an error. */
#define MAX_RESPONSE (1024 * 1024)

typedef struct {
    const char *unix_path;
    char *host;
    char *port;
    char *request;
    gsize request_len;
    int expect;

    GMutex lock;
    GCond cond;
    int ready;
    int failed;
    gboolean go;
    gint64 deadline_ns;
} Load;

typedef struct {
    Load *load;
    int fd;
    GByteArray *buf;
    GArray *latencies_ns; /* gint64 */
    guint64 errors;
    guint64 reconnects;
    gint64 end_ns;
    char *failure;
} Worker;

static gint64 now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (gint64)ts.tv_sec * G_GINT64_CONSTANT(1000000000) + ts.tv_nsec;
}

static int connect_tcp(const char *host, const char *port, char **failure)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *list = NULL;
    int rc = getaddrinfo(host, port, &hints, &list);
    if (rc != 0) {
        *failure = g_strdup_printf("cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    int saved = 0;
    for (struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            saved = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(list);
    if (fd < 0) {
        *failure = g_strdup_printf("cannot connect to %s:%s: %s", host, port, g_strerror(saved));
        return -1;
    }
    /* Like wrk: a request is one write, never held back waiting for an ACK. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int load_connect(Load *load, char **failure)
{
    return load->unix_path ? sock_connect_unix(load->unix_path, failure)
                           : connect_tcp(load->host, load->port, failure);
}

static const char *find_header_end(const GByteArray *buf)
{
    const char *data = (const char *)buf->data;
    for (guint i = 0; i + 3 < buf->len; i++)
        if (memcmp(data + i, "\r\n\r\n", 4) == 0)
            return data + i + 4;
    return NULL;
}

/* The value of header NAME in the header block [start, end), or NULL. */
static char *header_value(const char *start, const char *end, const char *name)
{
    gsize name_len = strlen(name);
    const char *line = strstr(start, "\r\n");
    while (line && line + 2 < end) {
        line += 2;
        const char *eol = g_strstr_len(line, end - line, "\r\n");
        if (!eol)
            break;
        if ((gsize)(eol - line) > name_len && line[name_len] == ':' &&
            g_ascii_strncasecmp(line, name, name_len) == 0) {
            const char *value = line + name_len + 1;
            while (value < eol && (*value == ' ' || *value == '\t'))
                value++;
            return g_strndup(value, eol - value);
        }
        line = eol;
    }
    return NULL;
}

/* Reads one response: its status, or -1 when the connection broke or the
 * response cannot be read (then the connection must be reopened).
 * *keep_alive tells whether the server keeps the connection. */
static int read_response(Worker *worker, gboolean *keep_alive)
{
    const char *body = NULL;
    while (!(body = find_header_end(worker->buf))) {
        if (worker->buf->len > MAX_RESPONSE || !sock_recv_some(worker->fd, worker->buf))
            return -1;
    }
    /* NUL-terminate the header block for strstr; the bytes stay in buf. */
    gsize header_len = (gsize)(body - (const char *)worker->buf->data);
    g_autofree char *head = g_strndup((const char *)worker->buf->data, header_len);
    const char *head_end = head + header_len;

    int status = -1;
    if (sscanf(head, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    g_autofree char *length = header_value(head, head_end, "Content-Length");
    g_autofree char *encoding = header_value(head, head_end, "Transfer-Encoding");
    g_autofree char *connection = header_value(head, head_end, "Connection");
    *keep_alive = !(connection && g_ascii_strcasecmp(connection, "close") == 0);

    guint64 content_length = 0;
    if (encoding) {
        /* No route we measure streams; say so rather than misparse it. */
        g_printerr("http-load: chunked responses are not supported\n");
        return -1;
    }
    if (!length ||
        !g_ascii_string_to_unsigned(length, 10, 0, MAX_RESPONSE, &content_length, NULL)) {
        g_printerr("http-load: response without a usable Content-Length\n");
        return -1;
    }
    while (worker->buf->len < header_len + content_length) {
        if (!sock_recv_some(worker->fd, worker->buf))
            return -1;
    }
    g_byte_array_remove_range(worker->buf, 0, (guint)(header_len + content_length));
    return status;
}

static void worker_close(Worker *worker)
{
    if (worker->fd >= 0)
        close(worker->fd);
    worker->fd = -1;
    g_byte_array_set_size(worker->buf, 0);
}

static gpointer worker_run(gpointer data)
{
    Worker *worker = data;
    Load *load = worker->load;

    worker->fd = load_connect(load, &worker->failure);
    g_mutex_lock(&load->lock);
    if (worker->fd < 0)
        load->failed++;
    else
        load->ready++;
    g_cond_broadcast(&load->cond);
    while (!load->go)
        g_cond_wait(&load->cond, &load->lock);
    gint64 deadline = load->deadline_ns;
    g_mutex_unlock(&load->lock);

    if (worker->fd < 0 || deadline == 0) {
        worker->end_ns = now_ns();
        return NULL;
    }

    gint64 t = now_ns();
    while (t < deadline) {
        if (worker->fd < 0) {
            g_clear_pointer(&worker->failure, g_free);
            worker->fd = load_connect(load, &worker->failure);
            if (worker->fd < 0)
                break;
            worker->reconnects++;
        }
        gboolean keep_alive = TRUE;
        int status = -1;
        if (sock_send_all(worker->fd, load->request, load->request_len))
            status = read_response(worker, &keep_alive);
        gint64 done = now_ns();
        if (status == load->expect) {
            gint64 latency = done - t;
            g_array_append_val(worker->latencies_ns, latency);
        } else {
            worker->errors++;
        }
        if (status < 0 || !keep_alive)
            worker_close(worker);
        t = done;
    }
    worker->end_ns = now_ns();
    return NULL;
}

static int compare_gint64(gconstpointer a, gconstpointer b)
{
    gint64 x = *(const gint64 *)a;
    gint64 y = *(const gint64 *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, in milliseconds. */
static double percentile_ms(const GArray *sorted, double p)
{
    if (sorted->len == 0)
        return 0;
    gsize rank = (gsize)(p / 100.0 * sorted->len + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > sorted->len)
        rank = sorted->len;
    return g_array_index(sorted, gint64, rank - 1) / 1e6;
}

int main(int argc, char **argv)
{
    g_autofree char *unix_path = NULL;
    g_autofree char *tcp = NULL;
    g_autofree char *path = NULL;
    g_auto(GStrv) headers = NULL;
    int conns = 1;
    int seconds = 5;
    int expect = 200;
    GOptionEntry entries[] = {
        {"unix", 0, 0, G_OPTION_ARG_FILENAME, &unix_path, "UNIX socket to connect to", "PATH"},
        {"tcp", 0, 0, G_OPTION_ARG_STRING, &tcp, "TCP address to connect to", "HOST:PORT"},
        {"path", 0, 0, G_OPTION_ARG_STRING, &path, "request path (default /v1)", "PATH"},
        {"header", 0, 0, G_OPTION_ARG_STRING_ARRAY, &headers, "extra request header", "'K: V'"},
        {"conns", 0, 0, G_OPTION_ARG_INT, &conns, "concurrent connections (default 1)", "N"},
        {"seconds", 0, 0, G_OPTION_ARG_INT, &seconds, "duration (default 5)", "S"},
        {"expect", 0, 0, G_OPTION_ARG_INT, &expect, "status that counts as success (200)", "N"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) context = g_option_context_new("- HTTP/1.1 keep-alive GET load");
    g_option_context_add_main_entries(context, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        g_printerr("http-load: %s\n", error->message);
        return 2;
    }
    if (!unix_path == !tcp || argc != 1 || conns < 1 || conns > 1024 || seconds < 1 ||
        seconds > 3600) {
        g_printerr("http-load: give exactly one of --unix and --tcp, 1 <= --conns <= 1024, "
                   "1 <= --seconds <= 3600\n");
        return 2;
    }

    Load load = {.unix_path = unix_path, .expect = expect};
    g_autofree char *host = NULL;
    g_autofree char *port = NULL;
    if (tcp) {
        const char *colon = strrchr(tcp, ':');
        if (!colon || colon == tcp || !colon[1]) {
            g_printerr("http-load: --tcp wants HOST:PORT, got '%s'\n", tcp);
            return 2;
        }
        host = g_strndup(tcp, colon - tcp);
        port = g_strdup(colon + 1);
        load.host = host;
        load.port = port;
    }
    g_autoptr(GString) request = g_string_new(NULL);
    g_string_append_printf(request, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: http-load\r\n",
                           path ? path : "/v1", tcp ? tcp : "localhost");
    for (gsize i = 0; headers && headers[i]; i++)
        g_string_append_printf(request, "%s\r\n", headers[i]);
    g_string_append(request, "\r\n");
    load.request = request->str;
    load.request_len = request->len;
    g_mutex_init(&load.lock);
    g_cond_init(&load.cond);

    Worker *workers = g_new0(Worker, conns);
    GThread **threads = g_new0(GThread *, conns);
    for (int i = 0; i < conns; i++) {
        workers[i].load = &load;
        workers[i].fd = -1;
        workers[i].buf = g_byte_array_new();
        workers[i].latencies_ns = g_array_new(FALSE, FALSE, sizeof(gint64));
        threads[i] = g_thread_new("http-load", worker_run, &workers[i]);
    }

    /* Every connection is open before the clock starts. */
    g_mutex_lock(&load.lock);
    while (load.ready + load.failed < conns)
        g_cond_wait(&load.cond, &load.lock);
    gint64 start = now_ns();
    load.deadline_ns = load.failed ? 0 : start + (gint64)seconds * G_GINT64_CONSTANT(1000000000);
    load.go = TRUE;
    g_cond_broadcast(&load.cond);
    g_mutex_unlock(&load.lock);

    g_autoptr(GArray) all = g_array_new(FALSE, FALSE, sizeof(gint64));
    guint64 errors = 0;
    guint64 reconnects = 0;
    gint64 end = start;
    int rc = 0;
    for (int i = 0; i < conns; i++) {
        g_thread_join(threads[i]);
        Worker *worker = &workers[i];
        g_array_append_vals(all, worker->latencies_ns->data, worker->latencies_ns->len);
        errors += worker->errors;
        reconnects += worker->reconnects;
        end = MAX(end, worker->end_ns);
        if (worker->failure && rc == 0) {
            g_printerr("http-load: %s\n", worker->failure);
            rc = 1;
        }
        worker_close(worker);
        g_byte_array_unref(worker->buf);
        g_array_unref(worker->latencies_ns);
        g_free(worker->failure);
    }
    g_free(threads);
    g_free(workers);
    g_mutex_clear(&load.lock);
    g_cond_clear(&load.cond);
    if (rc != 0)
        return rc;

    g_array_sort(all, compare_gint64);
    double elapsed = (double)(end - start) / 1e9;
    printf("requests=%u errors=%" G_GUINT64_FORMAT " reconnects=%" G_GUINT64_FORMAT
           " seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f\n",
           all->len, errors, reconnects, elapsed, elapsed > 0 ? all->len / elapsed : 0.0,
           percentile_ms(all, 50), percentile_ms(all, 99));
    return errors > 0 ? 3 : 0;
}
