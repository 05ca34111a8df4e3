/* GET /v1, /v1/host and /metrics. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/json.h"
#include "daemon/app.h"
#include "daemon/convert.h"
#include "daemon/tokens.h"

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

/* The front end's connections and what its limits refused. */
static void append_http(GString *out, HttpServer *server)
{
    static const char *const reasons[HTTP_REFUSED_COUNT] = {
        [HTTP_REFUSED_CAPACITY] = "capacity",
        [HTTP_REFUSED_ADDRESS] = "address",
        [HTTP_REFUSED_RESERVE] = "reserve",
        [HTTP_REFUSED_STREAMS] = "streams",
    };
    HttpServerStats stats;
    http_server_stats(server, &stats);
    g_string_append_printf(out,
                           "# HELP turtled_http_connections Open HTTP connections.\n"
                           "# TYPE turtled_http_connections gauge\nturtled_http_connections %u\n"
                           "# HELP turtled_http_streams Open event and console streams.\n"
                           "# TYPE turtled_http_streams gauge\nturtled_http_streams %u\n"
                           "# HELP turtled_http_refused_total Connections and requests refused "
                           "by the limits, by reason.\n"
                           "# TYPE turtled_http_refused_total counter\n",
                           stats.connections, stats.streams);
    for (guint i = 0; i < HTTP_REFUSED_COUNT; i++)
        g_string_append_printf(out,
                               "turtled_http_refused_total{reason=\"%s\"} %" G_GUINT64_FORMAT "\n",
                               reasons[i], stats.refused[i]);
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
    append_http(out, app->server);
    append_process(out, app);
    return http_reply_text(200, "text/plain; version=0.0.4; charset=utf-8", out->str);
}
