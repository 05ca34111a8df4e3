/* sse-fanout: how long one event takes to reach many open event streams.
 *
 *   sse-fanout --unix PATH [--token T] --streams N --rounds R
 *              --trigger-token T --trigger-body JSON --marker TEXT
 *              [--trigger-path /v1/stacks] [--timeout S]
 *
 * Opens N streams on GET /v1/events (with "Authorization: Bearer T" when
 * --token is given, else as whoever the socket says the caller is) and waits
 * until every one has answered 200.  Then, R times: notes the time, POSTs the
 * trigger body (every "%d" in it is the round number) to the trigger path
 * with the trigger token on a connection of its own (202 expected), and
 * watches all N streams with epoll until each has received the marker (its
 * "%d" is the round number too) or S seconds pass.  One latency per stream
 * and round: from just before the trigger was written to the read that
 * completed the marker on that stream.  Prints one line:
 *
 *   streams=N connect_ms=C rounds=R samples=K missed=M p50_ms=X p99_ms=Y max_ms=Z
 *   first_p50_ms=F spread_p50_ms=A spread_p99_ms=B
 *
 * first_* is the latency of the first stream of each round (the trigger's
 * own cost: the request, and the event made and kept); spread_* is each
 * stream's latency minus its round's first, what the fan-out itself adds.
 *
 * Exit status: 0 when every stream saw every round's event, 3 when some
 * missed one (the line is still printed), 1 when it could not run, 2 on bad
 * usage. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tests/tools/sock-util.h"

#define MAX_HEADER 16384

typedef struct {
    int fd;
    GString *pending; /* headers until they are in, then the unmatched tail */
    gboolean streaming;
    gboolean matched; /* in this round */
} Stream;

typedef struct {
    const char *socket_path;
    const char *token;
    const char *trigger_path;
    const char *trigger_token;
    const char *trigger_body;
    const char *marker;
    int timeout_s;
} Options;

static gint64 now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (gint64)ts.tv_sec * G_GINT64_CONSTANT(1000000000) + ts.tv_nsec;
}

/* 1,000 streams need more descriptors than the usual soft limit of 1024. */
static gboolean raise_fd_limit(guint streams)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return FALSE;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur < streams + 16) {
        g_printerr("sse-fanout: %u streams need %u descriptors; the limit is %llu\n", streams,
                   streams + 16, (unsigned long long)limit.rlim_cur);
        return FALSE;
    }
    return TRUE;
}

/* The socket, or -1 with the reason printed. */
static int connect_unix(const char *path)
{
    g_autofree char *failure = NULL;
    int fd = sock_connect_unix(path, &failure);
    if (fd < 0)
        g_printerr("sse-fanout: %s\n", failure);
    return fd;
}

static gboolean open_stream(Stream *stream, const Options *options, int epoll_fd)
{
    stream->fd = connect_unix(options->socket_path);
    if (stream->fd < 0)
        return FALSE;
    g_autofree char *auth = options->token
                                ? g_strdup_printf("Authorization: Bearer %s\r\n", options->token)
                                : g_strdup("");
    g_autofree char *request = g_strdup_printf(
        "GET /v1/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n%s\r\n", auth);
    if (!sock_send_all(stream->fd, request, strlen(request))) {
        g_printerr("sse-fanout: cannot send the stream request: %s\n", g_strerror(errno));
        return FALSE;
    }
    fcntl(stream->fd, F_SETFL, fcntl(stream->fd, F_GETFL) | O_NONBLOCK);
    stream->pending = g_string_new(NULL);
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = stream};
    return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, stream->fd, &event) == 0;
}

/* Headers complete: TRUE when they are a 200; the rest stays pending. */
static gboolean take_headers(Stream *stream)
{
    const char *end = strstr(stream->pending->str, "\r\n\r\n");
    if (end == NULL)
        return stream->pending->len < MAX_HEADER;
    int status = 0;
    if (sscanf(stream->pending->str, "HTTP/1.%*d %d", &status) != 1 || status != 200) {
        g_printerr("sse-fanout: a stream answered: %.*s\n",
                   (int)strcspn(stream->pending->str, "\r"), stream->pending->str);
        return FALSE;
    }
    g_string_erase(stream->pending, 0, end + 4 - stream->pending->str);
    stream->streaming = TRUE;
    return TRUE;
}

/* Reads what the stream has; FALSE when it closed or failed. */
static gboolean read_stream(Stream *stream)
{
    char chunk[16384];
    for (;;) {
        ssize_t n = recv(stream->fd, chunk, sizeof(chunk), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return TRUE;
        if (n <= 0) {
            g_printerr("sse-fanout: a stream %s\n", n == 0 ? "closed" : g_strerror(errno));
            return FALSE;
        }
        g_string_append_len(stream->pending, chunk, n);
    }
}

/* Looks for @marker in what the stream has received since the round began;
 * keeps only a tail that may hold the start of a marker split by a read. */
static gboolean check_marker(Stream *stream, const char *marker)
{
    if (strstr(stream->pending->str, marker) != NULL) {
        g_string_truncate(stream->pending, 0);
        return TRUE;
    }
    gsize keep = strlen(marker);
    if (stream->pending->len > keep)
        g_string_erase(stream->pending, 0, stream->pending->len - keep);
    return FALSE;
}

static gboolean wait_connected(guint count, int epoll_fd, int timeout_s)
{
    guint connected = 0;
    gint64 deadline = now_ns() + (gint64)timeout_s * 1000000000;
    struct epoll_event events[256];
    while (connected < count) {
        int left_ms = (int)((deadline - now_ns()) / 1000000);
        int n = left_ms > 0 ? epoll_wait(epoll_fd, events, G_N_ELEMENTS(events), left_ms) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            g_printerr("sse-fanout: %u of %u streams answered within %d s\n", connected, count,
                       timeout_s);
            return FALSE;
        }
        for (int i = 0; i < n; i++) {
            Stream *stream = events[i].data.ptr;
            if (!read_stream(stream))
                return FALSE;
            if (!stream->streaming) {
                if (!take_headers(stream))
                    return FALSE;
                connected += stream->streaming;
            }
        }
    }
    return TRUE;
}

/* POSTs the trigger; its answer is read after the round (it is not timed). */
static int send_trigger(const Options *options, int round)
{
    g_autoptr(GString) body = g_string_new(options->trigger_body);
    g_autofree char *number = g_strdup_printf("%d", round);
    g_string_replace(body, "%d", number, 0);
    g_autofree char *request = g_strdup_printf(
        "POST %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
        "Content-Type: application/json\r\nConnection: close\r\nContent-Length: %" G_GSIZE_FORMAT
        "\r\n\r\n%s",
        options->trigger_path, options->trigger_token, body->len, body->str);
    int fd = connect_unix(options->socket_path);
    if (fd >= 0 && !sock_send_all(fd, request, strlen(request))) {
        g_printerr("sse-fanout: cannot send the trigger: %s\n", g_strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static gboolean trigger_accepted(int fd)
{
    char answer[512] = "";
    ssize_t n = recv(fd, answer, sizeof(answer) - 1, MSG_WAITALL);
    close(fd);
    int status = 0;
    if (n <= 0 || sscanf(answer, "HTTP/1.%*d %d", &status) != 1 || status != 202) {
        g_printerr("sse-fanout: the trigger answered: %.*s\n", (int)strcspn(answer, "\r"), answer);
        return FALSE;
    }
    return TRUE;
}

/* One round: every stream's latency in ms goes to @latencies; the count of
 * streams that missed the marker is returned, -1 when a stream failed. */
static int run_round(Stream *streams, guint count, int epoll_fd, const Options *options, int round,
                     GArray *latencies, GArray *firsts, GArray *spreads)
{
    double first = -1;
    g_autoptr(GString) marker = g_string_new(options->marker);
    g_autofree char *number = g_strdup_printf("%d", round);
    g_string_replace(marker, "%d", number, 0);
    for (guint i = 0; i < count; i++) {
        streams[i].matched = FALSE;
        g_string_truncate(streams[i].pending, 0);
    }
    gint64 start = now_ns();
    int trigger = send_trigger(options, round);
    if (trigger < 0)
        return -1;
    guint matched = 0;
    gint64 deadline = start + (gint64)options->timeout_s * 1000000000;
    struct epoll_event events[256];
    while (matched < count) {
        int left_ms = (int)((deadline - now_ns()) / 1000000);
        if (left_ms <= 0)
            break;
        int n = epoll_wait(epoll_fd, events, G_N_ELEMENTS(events), left_ms);
        for (int i = 0; i < n; i++) {
            Stream *stream = events[i].data.ptr;
            if (!read_stream(stream)) {
                close(trigger);
                return -1;
            }
            if (!stream->matched && check_marker(stream, marker->str)) {
                double ms = (now_ns() - start) / 1e6;
                if (first < 0) {
                    first = ms;
                    g_array_append_val(firsts, first);
                }
                double spread = ms - first;
                g_array_append_val(latencies, ms);
                g_array_append_val(spreads, spread);
                stream->matched = TRUE;
                matched++;
            }
        }
    }
    if (!trigger_accepted(trigger))
        return -1;
    return (int)(count - matched);
}

static int compare_double(gconstpointer a, gconstpointer b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const GArray *sorted, double p)
{
    if (sorted->len == 0)
        return 0;
    return g_array_index(sorted, double, (guint)(p * (sorted->len - 1) + 0.5));
}

int main(int argc, char **argv)
{
    Options options = {.trigger_path = "/v1/stacks", .timeout_s = 30};
    char *socket_path = NULL, *token = NULL, *trigger_path = NULL, *trigger_token = NULL;
    char *trigger_body = NULL, *marker = NULL;
    int streams_wanted = 0, rounds = 0;
    GOptionEntry entries[] = {
        {"unix", 0, 0, G_OPTION_ARG_FILENAME, &socket_path, "turtled's UNIX socket", "PATH"},
        {"token", 0, 0, G_OPTION_ARG_STRING, &token, "the streams' token (none: operator)", "T"},
        {"streams", 0, 0, G_OPTION_ARG_INT, &streams_wanted, "streams to open", "N"},
        {"rounds", 0, 0, G_OPTION_ARG_INT, &rounds, "events to trigger", "R"},
        {"trigger-path", 0, 0, G_OPTION_ARG_STRING, &trigger_path, "POST path", "PATH"},
        {"trigger-token", 0, 0, G_OPTION_ARG_STRING, &trigger_token, "the trigger's token", "T"},
        {"trigger-body", 0, 0, G_OPTION_ARG_STRING, &trigger_body, "JSON, %d: round", "JSON"},
        {"marker", 0, 0, G_OPTION_ARG_STRING, &marker, "text the event has, %d: round", "TEXT"},
        {"timeout", 0, 0, G_OPTION_ARG_INT, &options.timeout_s, "seconds per round (30)", "S"},
        {NULL},
    };
    g_autoptr(GOptionContext) context = g_option_context_new("- event stream fan-out latency");
    g_option_context_add_main_entries(context, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        g_printerr("sse-fanout: %s\n", error->message);
        return 2;
    }
    if (!socket_path || streams_wanted < 1 || streams_wanted > 100000 || rounds < 1 ||
        !trigger_token || !trigger_body || !marker || options.timeout_s < 1) {
        g_printerr("sse-fanout: need --unix, --streams 1..100000, --rounds >= 1, "
                   "--trigger-token, --trigger-body, --marker, --timeout >= 1\n");
        return 2;
    }
    options.socket_path = socket_path;
    options.token = token;
    options.trigger_token = trigger_token;
    options.trigger_body = trigger_body;
    options.marker = marker;
    if (trigger_path)
        options.trigger_path = trigger_path;
    guint count = (guint)streams_wanted;
    if (!raise_fd_limit(count))
        return 1;

    int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    g_autofree Stream *streams = g_new0(Stream, count);
    gint64 start = now_ns();
    for (guint i = 0; i < count; i++)
        if (!open_stream(&streams[i], &options, epoll_fd))
            return 1;
    if (!wait_connected(count, epoll_fd, options.timeout_s))
        return 1;
    double connect_ms = (now_ns() - start) / 1e6;

    g_autoptr(GArray) latencies = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) firsts = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) spreads = g_array_new(FALSE, FALSE, sizeof(double));
    int missed = 0;
    for (int round = 1; round <= rounds; round++) {
        int round_missed =
            run_round(streams, count, epoll_fd, &options, round, latencies, firsts, spreads);
        if (round_missed < 0)
            return 1;
        missed += round_missed;
    }
    g_array_sort(latencies, compare_double);
    g_array_sort(firsts, compare_double);
    g_array_sort(spreads, compare_double);
    printf("streams=%u connect_ms=%.1f rounds=%d samples=%u missed=%d p50_ms=%.3f p99_ms=%.3f "
           "max_ms=%.3f first_p50_ms=%.3f spread_p50_ms=%.3f spread_p99_ms=%.3f\n",
           count, connect_ms, rounds, latencies->len, missed, percentile(latencies, 0.50),
           percentile(latencies, 0.99), percentile(latencies, 1.0), percentile(firsts, 0.50),
           percentile(spreads, 0.50), percentile(spreads, 0.99));
    for (guint i = 0; i < count; i++) {
        close(streams[i].fd);
        g_string_free(streams[i].pending, TRUE);
    }
    close(epoll_fd);
    return missed == 0 ? 0 : 3;
}
