/* stack-fill: creates many stacks through turtled's API, for tests/bench/scale.
 *
 *   stack-fill --unix PATH --tokens FILE --per-tenant K --spec JSON
 *              [--conns N] [--wait-timeout S]
 *
 * FILE has one tenant token a line.  Stack j of tenant t is named "s<j>"; the
 * spec is JSON with "%s" where the name goes.  N threads, each with one
 * keep-alive connection, take the next (tenant, stack) pair, POST /v1/stacks
 * with that tenant's token (202 expected) and keep the operation; the pairs go
 * round the tenants, so every tenant fills up at the same pace.  When all are
 * posted, the same threads wait for every operation (GET
 * /v1/operations/{id}/wait) and count the ones that succeeded.  Prints one
 * line:
 *
 *   stacks=N accepted=A succeeded=S failed=F post_s=T total_s=U
 *   post_rate=X create_rate=Y post_p50_ms=P post_p99_ms=Q
 *
 * create_rate is succeeded stacks per second from the first POST until the
 * last operation was seen to end.  Exit status: 0 when every stack was
 * created, 3 when some were not (the line is still printed, the first
 * failures on stderr), 1 when it could not run, 2 on bad usage. */
#include <errno.h>
#include <glib.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tests/tools/sock-util.h"

#define MAX_RESPONSE          (1024 * 1024)
#define MAX_REPORTED_FAILURES 5

typedef struct {
    const char *socket_path;
    char **tokens;
    guint tenants;
    guint per_tenant;
    const char *spec;
    int wait_timeout_s;

    gint next_post;
    gint next_wait;
    char **operation_ids; /* one per stack, NULL when the POST failed */
    gint failures_reported;
} Fill;

typedef struct {
    Fill *fill;
    int fd;
    GByteArray *buf;
    GArray *post_ns; /* gint64 */
    guint accepted;
    guint succeeded;
} Worker;

static gint64 now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (gint64)ts.tv_sec * G_GINT64_CONSTANT(1000000000) + ts.tv_nsec;
}

static void report_failure(Fill *fill, const char *what, int status, const GByteArray *body)
{
    if (g_atomic_int_add(&fill->failures_reported, 1) >= MAX_REPORTED_FAILURES)
        return;
    g_printerr("stack-fill: %s: status %d: %.*s\n", what, status,
               body ? (int)MIN(body->len, 300) : 0, body ? (const char *)body->data : "");
}

/* The socket, or -1 with the reason printed. */
static int connect_unix(const char *path)
{
    g_autofree char *failure = NULL;
    int fd = sock_connect_unix(path, &failure);
    if (fd < 0)
        g_printerr("stack-fill: %s\n", failure);
    return fd;
}

static gssize header_block_length(const GByteArray *buf)
{
    for (guint i = 0; i + 3 < buf->len; i++)
        if (memcmp(buf->data + i, "\r\n\r\n", 4) == 0)
            return i + 4;
    return -1;
}

/* Content-Length of the header block @head (NUL-terminated), or -1. */
static gint64 content_length(const char *head)
{
    for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        if (g_ascii_strncasecmp(line + 2, "content-length:", 15) == 0)
            return g_ascii_strtoll(line + 17, NULL, 10);
    }
    return -1;
}

/* Reads one answer on the worker's connection: its status, with the body in
 * @body, or -1 when it cannot be read. */
static int read_answer(Worker *worker, GByteArray *body)
{
    gssize head_len;
    while ((head_len = header_block_length(worker->buf)) < 0)
        if (worker->buf->len > MAX_RESPONSE || !sock_recv_some(worker->fd, worker->buf))
            return -1;
    g_autofree char *head = g_strndup((const char *)worker->buf->data, (gsize)head_len);
    int status = -1;
    gint64 length = content_length(head);
    if (sscanf(head, "HTTP/1.%*d %d", &status) != 1 || length < 0 || length > MAX_RESPONSE)
        return -1;
    while (worker->buf->len < (guint)head_len + (guint)length)
        if (!sock_recv_some(worker->fd, worker->buf))
            return -1;
    g_byte_array_append(body, worker->buf->data + head_len, (guint)length);
    g_byte_array_append(body, (const guint8 *)"", 1);
    return status;
}

/* Sends @request and reads the answer: its status, or -1 when the connection
 * broke (the worker reconnects for the next one). */
static int exchange(Worker *worker, const char *request, GByteArray *body)
{
    if (worker->fd < 0 && (worker->fd = connect_unix(worker->fill->socket_path)) < 0)
        return -1;
    g_byte_array_set_size(worker->buf, 0);
    g_byte_array_set_size(body, 0);
    int status =
        sock_send_all(worker->fd, request, strlen(request)) ? read_answer(worker, body) : -1;
    if (status < 0) {
        close(worker->fd);
        worker->fd = -1;
    }
    return status;
}

/* The operation id in a 202 body, or NULL. */
static char *operation_id_of(const GByteArray *body)
{
    json_object *root = json_tokener_parse((const char *)body->data);
    json_object *operation = NULL, *id = NULL;
    char *result = NULL;
    if (root && json_object_object_get_ex(root, "operation", &operation) &&
        json_object_object_get_ex(operation, "id", &id))
        result = g_strdup(json_object_get_string(id));
    json_object_put(root);
    return result;
}

static const char *status_of_operation(json_object *root)
{
    json_object *operation = NULL, *status = NULL;
    if (root && json_object_object_get_ex(root, "operation", &operation) &&
        json_object_object_get_ex(operation, "status", &status))
        return json_object_get_string(status);
    return NULL;
}

static void post_one(Worker *worker, guint index, GByteArray *body)
{
    Fill *fill = worker->fill;
    guint tenant = index % fill->tenants;
    g_autofree char *name = g_strdup_printf("s%u", index / fill->tenants);
    g_autoptr(GString) spec = g_string_new(fill->spec);
    g_string_replace(spec, "%s", name, 1);
    g_autofree char *request = g_strdup_printf(
        "POST /v1/stacks HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
        "Content-Type: application/json\r\nContent-Length: %" G_GSIZE_FORMAT "\r\n\r\n%s",
        fill->tokens[tenant], spec->len, spec->str);
    gint64 start = now_ns();
    int status = exchange(worker, request, body);
    gint64 took = now_ns() - start;
    if (status != 202) {
        g_autofree char *what = g_strdup_printf("POST stack %s of tenant #%u", name, tenant);
        report_failure(fill, what, status, status > 0 ? body : NULL);
        return;
    }
    g_array_append_val(worker->post_ns, took);
    fill->operation_ids[index] = operation_id_of(body);
    worker->accepted++;
}

/* Waits for operation @index to end; TRUE when it succeeded. */
static gboolean wait_one(Worker *worker, guint index, GByteArray *body)
{
    Fill *fill = worker->fill;
    const char *id = fill->operation_ids[index];
    g_autofree char *request =
        g_strdup_printf("GET /v1/operations/%s/wait?timeout=%d HTTP/1.1\r\nHost: localhost\r\n"
                        "Authorization: Bearer %s\r\n\r\n",
                        id, fill->wait_timeout_s, fill->tokens[index % fill->tenants]);
    int status = exchange(worker, request, body);
    json_object *root = status == 200 ? json_tokener_parse((const char *)body->data) : NULL;
    const char *state = status_of_operation(root);
    gboolean ok = g_strcmp0(state, "succeeded") == 0;
    if (!ok) {
        g_autofree char *what = g_strdup_printf("operation %s ended %s", id, state ? state : "?");
        report_failure(fill, what, status, status > 0 ? body : NULL);
    }
    json_object_put(root);
    return ok;
}

static gpointer post_all(gpointer data)
{
    Worker *worker = data;
    Fill *fill = worker->fill;
    g_autoptr(GByteArray) body = g_byte_array_new();
    guint total = fill->tenants * fill->per_tenant;
    for (guint i; (i = (guint)g_atomic_int_add(&fill->next_post, 1)) < total;)
        post_one(worker, i, body);
    return NULL;
}

static gpointer wait_all(gpointer data)
{
    Worker *worker = data;
    Fill *fill = worker->fill;
    g_autoptr(GByteArray) body = g_byte_array_new();
    guint total = fill->tenants * fill->per_tenant;
    for (guint i; (i = (guint)g_atomic_int_add(&fill->next_wait, 1)) < total;)
        if (fill->operation_ids[i] != NULL && wait_one(worker, i, body))
            worker->succeeded++;
    return NULL;
}

static void run_phase(Worker *workers, guint conns, GThreadFunc phase)
{
    g_autofree GThread **threads = g_new0(GThread *, conns);
    for (guint i = 0; i < conns; i++)
        threads[i] = g_thread_new("stack-fill", phase, &workers[i]);
    for (guint i = 0; i < conns; i++)
        g_thread_join(threads[i]);
}

static int compare_gint64(gconstpointer a, gconstpointer b)
{
    gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
    return (x > y) - (x < y);
}

static double percentile_ms(const GArray *sorted, double p)
{
    if (sorted->len == 0)
        return 0;
    guint i = (guint)(p * (sorted->len - 1) + 0.5);
    return g_array_index(sorted, gint64, i) / 1e6;
}

static char **read_tokens(const char *path, guint *count)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;
    if (!g_file_get_contents(path, &text, NULL, &error)) {
        g_printerr("stack-fill: %s\n", error->message);
        return NULL;
    }
    g_auto(GStrv) lines = g_strsplit(g_strstrip(text), "\n", -1);
    GPtrArray *tokens = g_ptr_array_new();
    for (char **line = lines; *line; line++)
        if (**line != '\0')
            g_ptr_array_add(tokens, g_strdup(g_strstrip(*line)));
    *count = tokens->len;
    g_ptr_array_add(tokens, NULL);
    return (char **)g_ptr_array_free(tokens, FALSE);
}

int main(int argc, char **argv)
{
    char *socket_path = NULL, *tokens_path = NULL, *spec = NULL;
    int per_tenant = 0, conns = 4, wait_timeout = 120;
    GOptionEntry entries[] = {
        {"unix", 0, 0, G_OPTION_ARG_FILENAME, &socket_path, "turtled's UNIX socket", "PATH"},
        {"tokens", 0, 0, G_OPTION_ARG_FILENAME, &tokens_path, "tenant tokens, one a line", "FILE"},
        {"per-tenant", 0, 0, G_OPTION_ARG_INT, &per_tenant, "stacks per tenant", "K"},
        {"spec", 0, 0, G_OPTION_ARG_STRING, &spec, "stack spec JSON, %s for the name", "JSON"},
        {"conns", 0, 0, G_OPTION_ARG_INT, &conns, "concurrent connections (4)", "N"},
        {"wait-timeout", 0, 0, G_OPTION_ARG_INT, &wait_timeout, "seconds per wait (120)", "S"},
        {NULL},
    };
    g_autoptr(GOptionContext) context = g_option_context_new("- create stacks through turtled");
    g_option_context_add_main_entries(context, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        g_printerr("stack-fill: %s\n", error->message);
        return 2;
    }
    if (!socket_path || !tokens_path || !spec || !strstr(spec, "%s") || per_tenant < 1 ||
        conns < 1 || conns > 256 || wait_timeout < 1) {
        g_printerr("stack-fill: need --unix, --tokens, --per-tenant >= 1, --spec with %%s, "
                   "--conns 1..256, --wait-timeout >= 1\n");
        return 2;
    }
    Fill fill = {.socket_path = socket_path,
                 .spec = spec,
                 .per_tenant = (guint)per_tenant,
                 .wait_timeout_s = wait_timeout};
    fill.tokens = read_tokens(tokens_path, &fill.tenants);
    if (fill.tokens == NULL || fill.tenants == 0) {
        g_printerr("stack-fill: no tokens in %s\n", tokens_path);
        return 1;
    }
    guint total = fill.tenants * fill.per_tenant;
    fill.operation_ids = g_new0(char *, total);

    g_autofree Worker *workers = g_new0(Worker, conns);
    for (int i = 0; i < conns; i++)
        workers[i] = (Worker){.fill = &fill,
                              .fd = -1,
                              .buf = g_byte_array_new(),
                              .post_ns = g_array_new(FALSE, FALSE, sizeof(gint64))};
    gint64 start = now_ns();
    run_phase(workers, (guint)conns, post_all);
    gint64 posted = now_ns();
    run_phase(workers, (guint)conns, wait_all);
    gint64 end = now_ns();

    g_autoptr(GArray) post_ns = g_array_new(FALSE, FALSE, sizeof(gint64));
    guint accepted = 0, succeeded = 0;
    for (int i = 0; i < conns; i++) {
        g_array_append_vals(post_ns, workers[i].post_ns->data, workers[i].post_ns->len);
        accepted += workers[i].accepted;
        succeeded += workers[i].succeeded;
        if (workers[i].fd >= 0)
            close(workers[i].fd);
        g_byte_array_unref(workers[i].buf);
        g_array_unref(workers[i].post_ns);
    }
    g_array_sort(post_ns, compare_gint64);
    double post_s = (posted - start) / 1e9, total_s = (end - start) / 1e9;
    printf("stacks=%u accepted=%u succeeded=%u failed=%u post_s=%.2f total_s=%.2f "
           "post_rate=%.1f create_rate=%.1f post_p50_ms=%.3f post_p99_ms=%.3f\n",
           total, accepted, succeeded, total - succeeded, post_s, total_s, accepted / post_s,
           succeeded / total_s, percentile_ms(post_ns, 0.50), percentile_ms(post_ns, 0.99));
    for (guint i = 0; i < total; i++)
        g_free(fill.operation_ids[i]);
    g_free(fill.operation_ids);
    g_strfreev(fill.tokens);
    return succeeded == total ? 0 : 3;
}
