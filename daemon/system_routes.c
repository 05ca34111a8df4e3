/* GET /v1, /v1/host and /metrics. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api/json.h"
#include "daemon/app.h"
#include "daemon/convert.h"
#include "daemon/metrics.h"
#include "daemon/stacks.h"
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

static gsize count_dir_entries(const char *path)
{
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    gsize count = 0;
    while (dir != NULL && g_dir_read_name(dir) != NULL)
        count++;
    return count;
}

/* Seconds since the epoch when this process started: its start in clock
 * ticks after boot (/proc/self/stat) plus the boot time (/proc/stat). */
static gboolean process_start_time(double *seconds)
{
    g_autofree char *stat = NULL;
    g_autofree char *system = NULL;
    if (!g_file_get_contents("/proc/self/stat", &stat, NULL, NULL) ||
        !g_file_get_contents("/proc/stat", &system, NULL, NULL))
        return FALSE;
    /* The command name may hold spaces and parentheses: fields follow its last ')'. */
    const char *rest = strrchr(stat, ')');
    const char *boot = strstr(system, "\nbtime ");
    g_auto(GStrv) fields = rest != NULL ? g_strsplit(rest + 1, " ", 0) : NULL;
    /* After ')': "", state (field 3), ..., starttime (field 22). */
    if (fields == NULL || g_strv_length(fields) < 21 || boot == NULL)
        return FALSE;
    guint64 ticks = g_ascii_strtoull(fields[20], NULL, 10);
    guint64 boot_time = g_ascii_strtoull(boot + strlen("\nbtime "), NULL, 10);
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0 || boot_time == 0)
        return FALSE;
    *seconds = (double)boot_time + (double)ticks / (double)hz;
    return TRUE;
}

static void gauge(GString *out, const char *name, const char *help, double value)
{
    metrics_family(out, name, "gauge", help);
    metrics_sample(out, name, NULL, value);
}

static void append_process(GString *out, const App *app)
{
    g_autofree char *statm = NULL;
    unsigned long pages_total = 0, pages_resident = 0;
    if (g_file_get_contents("/proc/self/statm", &statm, NULL, NULL))
        sscanf(statm, "%lu %lu", &pages_total, &pages_resident);
    double page = (double)sysconf(_SC_PAGESIZE);
    struct rusage usage;
    struct rlimit files;
    double started = 0;

    if (getrusage(RUSAGE_SELF, &usage) == 0) {
        metrics_family(out, "process_cpu_seconds_total", "counter",
                       "Total user and system CPU time spent in seconds.");
        metrics_sample(out, "process_cpu_seconds_total", NULL,
                       (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                           (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6);
    }
    if (process_start_time(&started))
        gauge(out, "process_start_time_seconds",
              "Start time of the process since unix epoch in seconds.", started);
    gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.",
          (double)pages_resident * page);
    gauge(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
          (double)pages_total * page);
    gauge(out, "process_open_fds", "Number of open file descriptors.",
          (double)count_dir_entries("/proc/self/fd"));
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY)
        gauge(out, "process_max_fds", "Maximum number of open file descriptors.",
              (double)files.rlim_cur);
    gauge(out, "process_threads", "Threads of the process.",
          (double)count_dir_entries("/proc/self/task"));
    gauge(out, "turtled_uptime_seconds", "Seconds since turtled started.",
          (double)(g_get_monotonic_time() - app->started_at) / G_USEC_PER_SEC);
    metrics_family(out, "turtled_build_info", "gauge", "Version of this turtled.");
    const char *const version[] = {"version", TURTLES_VERSION, NULL};
    metrics_sample(out, "turtled_build_info", version, 1);
}

/* @counts maps "a\tb" -> count; each becomes name{label_a="a",label_b="b"} count. */
static void append_pairs(GString *out, const char *name, const char *label_a, const char *label_b,
                         GHashTable *counts)
{
    g_autoptr(GList) keys = g_list_sort(g_hash_table_get_keys(counts), (GCompareFunc)strcmp);
    for (GList *l = keys; l != NULL; l = l->next) {
        g_auto(GStrv) parts = g_strsplit(l->data, "\t", 2);
        const char *const labels[] = {label_a, parts[0], label_b, parts[1] ? parts[1] : "", NULL};
        metrics_sample(out, name, labels,
                       (double)GPOINTER_TO_UINT(g_hash_table_lookup(counts, l->data)));
    }
}

/* The front end: requests, their latencies, connections and refusals. */
static void append_http(GString *out, HttpServer *server)
{
    static const char *const reasons[HTTP_REFUSED_COUNT] = {
        [HTTP_REFUSED_CAPACITY] = "capacity",
        [HTTP_REFUSED_ADDRESS] = "address",
        [HTTP_REFUSED_RESERVE] = "reserve",
        [HTTP_REFUSED_STREAMS] = "streams",
    };
    g_autoptr(GHashTable) requests = http_server_request_counts(server);
    g_autoptr(GHashTable) durations = http_server_request_durations(server);
    HttpServerStats stats;
    http_server_stats(server, &stats);

    metrics_family(out, "turtled_http_requests_total", "counter",
                   "HTTP requests answered, by route and status.");
    append_pairs(out, "turtled_http_requests_total", "route", "status", requests);

    const char *name = "turtled_http_request_duration_seconds";
    metrics_family(out, name, "histogram",
                   "Time from a request's first line to its answer queued (a stream: to its "
                   "first byte; a long-poll: with its wait), by route and method.");
    g_autoptr(GList) keys = g_list_sort(g_hash_table_get_keys(durations), (GCompareFunc)strcmp);
    for (GList *l = keys; l != NULL; l = l->next) {
        g_auto(GStrv) parts = g_strsplit(l->data, "\t", 2);
        const char *const labels[] = {"route", parts[0], "method", parts[1] ? parts[1] : "", NULL};
        metrics_histogram(out, name, labels, g_hash_table_lookup(durations, l->data));
    }

    gauge(out, "turtled_http_connections", "Open HTTP connections.", stats.connections);
    gauge(out, "turtled_http_streams", "Open event and console streams.", stats.streams);
    metrics_family(out, "turtled_http_refused_total", "counter",
                   "Connections and requests refused by the limits, by reason.");
    for (guint i = 0; i < HTTP_REFUSED_COUNT; i++) {
        const char *const labels[] = {"reason", reasons[i], NULL};
        metrics_sample(out, "turtled_http_refused_total", labels, (double)stats.refused[i]);
    }
}

/* Every state, 0 for those nothing is in: a series must not vanish. */
static void append_states(GString *out, const char *name, const char *help, GHashTable *counts,
                          const char *(*state_name)(int), int n_states)
{
    metrics_family(out, name, "gauge", help);
    for (int state = 0; state < n_states; state++) {
        const char *const labels[] = {"state", state_name(state), NULL};
        metrics_sample(out, name, labels,
                       (double)GPOINTER_TO_INT(g_hash_table_lookup(counts, state_name(state))));
    }
}

static const char *stack_state_name(int state)
{
    return api_stack_state_to_string((ApiStackState)state);
}

static const char *image_state_name(int state)
{
    return api_image_state_to_string((ApiImageState)state);
}

static void append_migrations(GString *out, App *app)
{
    StacksMigrations migrations;
    stacks_migrations(app, &migrations);
    const struct {
        const char *result;
        guint64 count;
    } results[] = {
        {"succeeded", migrations.succeeded},
        {"failed", migrations.failed},
        {"cancelled", migrations.cancelled},
    };
    metrics_family(out, "turtled_migrations_total", "counter",
                   "Live migrations of stacks out of this host since turtled started, by result.");
    for (gsize i = 0; i < G_N_ELEMENTS(results); i++) {
        const char *const labels[] = {"result", results[i].result, NULL};
        metrics_sample(out, "turtled_migrations_total", labels, (double)results[i].count);
    }
    /* Only a figure libvirt reported: none until a migration succeeded. */
    if (migrations.downtime_known)
        gauge(out, "turtled_migration_last_downtime_seconds",
              "The guest's pause at the switch-over of the last live migration that succeeded.",
              migrations.last_downtime_seconds);
}

HttpReply *handle_metrics(gpointer data, const HttpRequest *request)
{
    App *app = data;
    (void)request;
    g_autoptr(GError) error = NULL;
    gint64 image_bytes = 0;
    g_autoptr(GHashTable) operations = store_operation_counts(app->store, &error);
    g_autoptr(GHashTable) stacks = operations ? store_stack_counts(app->store, &error) : NULL;
    g_autoptr(GHashTable) images =
        stacks ? store_image_counts(app->store, &image_bytes, &error) : NULL;
    if (images == NULL)
        return http_reply_error(error);
    g_autoptr(GString) out = g_string_new(NULL);

    append_http(out, app->server);
    append_states(out, "turtled_stacks", "Stacks, by state.", stacks, stack_state_name,
                  API_STACK_STATE_DELETING + 1);
    append_states(out, "turtled_images", "Images, by state.", images, image_state_name,
                  API_IMAGE_STATE_ERROR + 1);
    gauge(out, "turtled_images_size_bytes", "Bytes of all images with data.", (double)image_bytes);
    /* A gauge: an operation moves from one status to the next. */
    metrics_family(out, "turtled_operations", "gauge", "Operations, by kind and current status.");
    append_pairs(out, "turtled_operations", "kind", "status", operations);
    append_migrations(out, app);
    gauge(out, "turtled_libvirt_connected", "1 while turtled's libvirt connection is up, else 0.",
          hv_virt_is_connected(app->virt) ? 1 : 0);
    append_process(out, app);
    return http_reply_text(200, "text/plain; version=0.0.4; charset=utf-8", out->str);
}
