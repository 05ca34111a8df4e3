/* GET /v1, /v1/host, /metrics and /v1/events. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/json.h"
#include "daemon/app.h"
#include "daemon/convert.h"
#include "daemon/tokens.h"

#define EVENTS_POLL_MS      500
#define EVENTS_KEEPALIVE_US (15 * G_USEC_PER_SEC)

HttpReply *handle_version(gpointer app, const HttpRequest *request)
{
    (void)app;
    (void)request;
    json_object *body = json_object_new_object();
    json_object_object_add(body, "api_version", json_object_new_string("1"));
    json_object_object_add(body, "version", json_object_new_string(TURTLES_VERSION));
    return http_reply_json(200, body);
}

HttpReply *handle_host(gpointer data, const HttpRequest *request)
{
    App *app = data;
    (void)request;
    g_autoptr(ApiHost) host = convert_host_report(app->host);
    json_object *body = json_object_new_object();
    json_object_object_add(body, "host", api_host_to_json(host));
    return http_reply_json(200, body);
}

/* ---- /metrics (Prometheus text format 0.0.4) ----------------------------- */

static void append_label_value(GString *out, const char *value)
{
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"')
            g_string_append_c(out, '\\');
        if (*p == '\n')
            g_string_append(out, "\\n");
        else
            g_string_append_c(out, *p);
    }
}

/* @counts maps "a\tb" -> count; each becomes name{label_a="a",label_b="b"} count. */
static void append_family(GString *out, const char *name, const char *type, const char *help,
                          const char *label_a, const char *label_b, GHashTable *counts)
{
    g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    g_autoptr(GList) keys = g_list_sort(g_hash_table_get_keys(counts), (GCompareFunc)strcmp);
    for (GList *l = keys; l != NULL; l = l->next) {
        g_auto(GStrv) parts = g_strsplit(l->data, "\t", 2);
        g_string_append_printf(out, "%s{%s=\"", name, label_a);
        append_label_value(out, parts[0]);
        g_string_append_printf(out, "\",%s=\"", label_b);
        append_label_value(out, parts[1] != NULL ? parts[1] : "");
        g_string_append_printf(out, "\"} %d\n",
                               GPOINTER_TO_INT(g_hash_table_lookup(counts, l->data)));
    }
}

static gsize count_dir_entries(const char *path)
{
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    gsize count = 0;
    while (dir != NULL && g_dir_read_name(dir) != NULL)
        count++;
    return count;
}

static void append_process(GString *out, const App *app)
{
    g_autofree char *statm = NULL;
    unsigned long pages_total = 0, pages_resident = 0;
    if (g_file_get_contents("/proc/self/statm", &statm, NULL, NULL))
        sscanf(statm, "%lu %lu", &pages_total, &pages_resident);
    long page = sysconf(_SC_PAGESIZE);

    g_string_append_printf(
        out,
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %lu\n"
        "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
        "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %lu\n"
        "# HELP process_open_fds Open file descriptors.\n"
        "# TYPE process_open_fds gauge\nprocess_open_fds %zu\n"
        "# HELP process_threads Threads of the process.\n"
        "# TYPE process_threads gauge\nprocess_threads %zu\n"
        "# HELP turtled_uptime_seconds Seconds since turtled started.\n"
        "# TYPE turtled_uptime_seconds gauge\nturtled_uptime_seconds %.3f\n"
        "# HELP turtled_build_info Version of this turtled.\n"
        "# TYPE turtled_build_info gauge\nturtled_build_info{version=\"%s\"} 1\n",
        pages_resident * (unsigned long)page, pages_total * (unsigned long)page,
        count_dir_entries("/proc/self/fd"), count_dir_entries("/proc/self/task"),
        (double)(g_get_monotonic_time() - app->started_at) / G_USEC_PER_SEC, TURTLES_VERSION);
}

HttpReply *handle_metrics(gpointer data, const HttpRequest *request)
{
    App *app = data;
    (void)request;
    g_autoptr(GError) error = NULL;
    g_autoptr(GHashTable) operations = store_operation_counts(app->store, &error);
    if (operations == NULL)
        return http_reply_error(error);
    g_autoptr(GHashTable) requests = http_server_request_counts(app->server);
    g_autoptr(GString) out = g_string_new(NULL);

    append_family(out, "turtled_http_requests_total", "counter",
                  "HTTP requests served, by route and status.", "route", "status", requests);
    /* A gauge: an operation moves from one status to the next. */
    append_family(out, "turtled_operations", "gauge", "Operations, by kind and current status.",
                  "kind", "status", operations);
    append_process(out, app);
    return http_reply_text(200, "text/plain; version=0.0.4; charset=utf-8", out->str);
}

/* ---- /v1/events (Server-Sent Events) --------------------------------------- */

typedef struct {
    Store *store;
    char *token; /* the tenant's token, re-checked while the stream lives */
    char *tenant;
    EventSubscription *subscription;
    GString *pending; /* SSE text not yet handed to the client */
    gsize offset;
    gint64 last_write; /* monotonic µs */
} EventStream;

static void event_stream_free(gpointer data)
{
    EventStream *stream = data;
    event_subscription_free(stream->subscription);
    g_free(stream->token);
    g_free(stream->tenant);
    g_string_free(stream->pending, TRUE);
    g_free(stream);
}

/* A revoked token ends its streams too, not only its next request. */
static gboolean event_stream_authorized(const EventStream *stream)
{
    if (stream->token == NULL)
        return TRUE;
    g_autofree char *tenant = token_lookup(stream->store, stream->token);
    return g_strcmp0(tenant, stream->tenant) == 0;
}

static gssize event_stream_read(gpointer data, char *buf, gsize max)
{
    EventStream *stream = data;

    if (stream->offset == stream->pending->len) {
        gboolean ended = FALSE;
        g_autofree char *text =
            event_subscription_next(stream->subscription, EVENTS_POLL_MS, &ended);
        /* Checked before every write: an event that arrives just after a
         * revocation must not go out. */
        if (ended || !event_stream_authorized(stream))
            return -1;
        g_string_truncate(stream->pending, 0);
        stream->offset = 0;
        if (text != NULL)
            g_string_append(stream->pending, text);
        else if (g_get_monotonic_time() - stream->last_write > EVENTS_KEEPALIVE_US)
            g_string_append(stream->pending, ": keepalive\n\n"); /* proxies drop idle streams */
        else
            return 0;
    }
    gsize n = MIN(max, stream->pending->len - stream->offset);
    memcpy(buf, stream->pending->str + stream->offset, n);
    stream->offset += n;
    stream->last_write = g_get_monotonic_time();
    return (gssize)n;
}

HttpReply *handle_events(gpointer data, const HttpRequest *request)
{
    App *app = data;
    EventStream *stream = g_new0(EventStream, 1);
    const char *tenant =
        request->caller->role == HTTP_CALLER_TENANT ? request->caller->tenant : NULL;

    stream->store = app->store;
    stream->token = g_strdup(request->caller->token);
    stream->tenant = g_strdup(tenant);
    stream->subscription = event_bus_subscribe(app->events, tenant);
    /* The first bytes tell the client the stream is live and how to retry. */
    stream->pending = g_string_new("retry: 3000\n\n");
    stream->last_write = g_get_monotonic_time();
    HttpReply *reply =
        http_reply_stream(200, "text/event-stream", event_stream_read, stream, event_stream_free);
    http_reply_add_header(reply, "Cache-Control", "no-cache");
    return reply;
}
