/* libvirt-rpc-bench: libvirt's own RPC under the same closed loop as http-load.
 *
 *   libvirt-rpc-bench --uri URI [--op lib-version|domain-info|list-all]
 *                     [--domain NAME] [--conns N] [--seconds S]
 *
 * N threads, each with its own virConnectPtr to URI, call
 * virConnectGetLibVersion (lib-version), virDomainGetInfo on domain NAME
 * (domain-info) or virConnectListAllDomains (list-all: every domain, active
 * or not, freed again) one after another for S seconds, timing every call.
 * Each is one round trip to the daemon that reads state it holds in memory,
 * like turtled's GET handlers.  Prints the line http-load prints:
 *
 *   requests=R errors=E reconnects=0 seconds=T rps=X p50_ms=Y p99_ms=Z
 *
 * list-all adds " domains=D", the count its last call returned.
 *
 * Exit status: 0, 3 when some calls failed (the line is still printed), 1
 * when it could not run, 2 on bad usage.  Never point it at qemu:///system
 * of a machine you care about: use a private daemon (tests/lib/testhost.sh). */
#include <glib.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef enum {
    OP_LIB_VERSION,
    OP_DOMAIN_INFO,
    OP_LIST_ALL,
} Op;

typedef struct {
    const char *uri;
    const char *domain;
    Op op;

    GMutex lock;
    GCond cond;
    int ready;
    int failed;
    gboolean go;
    gint64 deadline_ns;
    gint listed; /* domains the last list-all call returned */
} Bench;

typedef struct {
    Bench *bench;
    GArray *latencies_ns; /* gint64 */
    guint64 errors;
    gint64 end_ns;
    char *failure;
    char *last_error;
} Worker;

static gint64 now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (gint64)ts.tv_sec * G_GINT64_CONSTANT(1000000000) + ts.tv_nsec;
}

/* libvirt prints every error to stderr by default; we report them ourselves. */
static void quiet_error(void *data, virErrorPtr error)
{
    (void)data;
    (void)error;
}

/* The whole list goes over the wire and every handle is freed again, as a
 * caller that looks at every domain would. */
static gboolean list_all_once(Bench *bench, virConnectPtr conn)
{
    virDomainPtr *domains = NULL;
    int count = virConnectListAllDomains(conn, &domains, 0);
    if (count < 0)
        return FALSE;
    for (int i = 0; i < count; i++)
        virDomainFree(domains[i]);
    free(domains);
    g_atomic_int_set(&bench->listed, count);
    return TRUE;
}

static gboolean call_once(Worker *worker, virConnectPtr conn, virDomainPtr domain)
{
    if (worker->bench->op == OP_LIB_VERSION) {
        unsigned long version = 0;
        return virConnectGetLibVersion(conn, &version) == 0 && version > 0;
    }
    if (worker->bench->op == OP_LIST_ALL)
        return list_all_once(worker->bench, conn);
    virDomainInfo info;
    return virDomainGetInfo(domain, &info) == 0;
}

static gpointer worker_run(gpointer data)
{
    Worker *worker = data;
    Bench *bench = worker->bench;
    virConnectPtr conn = virConnectOpen(bench->uri);
    virDomainPtr domain = NULL;

    if (!conn)
        worker->failure =
            g_strdup_printf("cannot open %s: %s", bench->uri, virGetLastErrorMessage());
    else if (bench->op == OP_DOMAIN_INFO && !(domain = virDomainLookupByName(conn, bench->domain)))
        worker->failure = g_strdup_printf("no domain '%s' on %s: %s", bench->domain, bench->uri,
                                          virGetLastErrorMessage());

    g_mutex_lock(&bench->lock);
    if (worker->failure)
        bench->failed++;
    else
        bench->ready++;
    g_cond_broadcast(&bench->cond);
    while (!bench->go)
        g_cond_wait(&bench->cond, &bench->lock);
    gint64 deadline = bench->deadline_ns;
    g_mutex_unlock(&bench->lock);

    gint64 t = now_ns();
    while (!worker->failure && t < deadline) {
        gboolean ok = call_once(worker, conn, domain);
        gint64 done = now_ns();
        if (ok) {
            gint64 latency = done - t;
            g_array_append_val(worker->latencies_ns, latency);
        } else {
            worker->errors++;
            g_free(worker->last_error);
            worker->last_error = g_strdup(virGetLastErrorMessage());
        }
        t = done;
    }
    worker->end_ns = now_ns();
    if (domain)
        virDomainFree(domain);
    if (conn)
        virConnectClose(conn);
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
    g_autofree char *uri = NULL;
    g_autofree char *op_name = NULL;
    g_autofree char *domain = NULL;
    int conns = 1;
    int seconds = 5;
    GOptionEntry entries[] = {
        {"uri", 0, 0, G_OPTION_ARG_STRING, &uri, "libvirt URI (a private daemon)", "URI"},
        {"op", 0, 0, G_OPTION_ARG_STRING, &op_name,
         "lib-version (default), domain-info or list-all", "OP"},
        {"domain", 0, 0, G_OPTION_ARG_STRING, &domain, "domain for domain-info", "NAME"},
        {"conns", 0, 0, G_OPTION_ARG_INT, &conns, "concurrent connections (default 1)", "N"},
        {"seconds", 0, 0, G_OPTION_ARG_INT, &seconds, "duration (default 5)", "S"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) context = g_option_context_new("- libvirt RPC read load");
    g_option_context_add_main_entries(context, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        g_printerr("libvirt-rpc-bench: %s\n", error->message);
        return 2;
    }
    Bench bench = {.uri = uri, .domain = domain};
    gboolean known_op = TRUE;
    if (!op_name || g_str_equal(op_name, "lib-version"))
        bench.op = OP_LIB_VERSION;
    else if (g_str_equal(op_name, "domain-info"))
        bench.op = OP_DOMAIN_INFO;
    else if (g_str_equal(op_name, "list-all"))
        bench.op = OP_LIST_ALL;
    else
        known_op = FALSE;
    if (!uri || !known_op || argc != 1 || conns < 1 || conns > 1024 || seconds < 1 ||
        seconds > 3600 || (bench.op == OP_DOMAIN_INFO && !domain)) {
        g_printerr("libvirt-rpc-bench: needs --uri, --op lib-version|domain-info|list-all "
                   "(domain-info needs --domain), 1 <= --conns <= 1024, 1 <= --seconds <= 3600\n");
        return 2;
    }

    /* Before any thread: it sets up libvirt's thread-local error state. */
    if (virInitialize() != 0) {
        g_printerr("libvirt-rpc-bench: virInitialize failed\n");
        return 1;
    }
    virSetErrorFunc(NULL, quiet_error);
    g_mutex_init(&bench.lock);
    g_cond_init(&bench.cond);

    Worker *workers = g_new0(Worker, conns);
    GThread **threads = g_new0(GThread *, conns);
    for (int i = 0; i < conns; i++) {
        workers[i].bench = &bench;
        workers[i].latencies_ns = g_array_new(FALSE, FALSE, sizeof(gint64));
        threads[i] = g_thread_new("libvirt-bench", worker_run, &workers[i]);
    }

    /* Every connection is open before the clock starts. */
    g_mutex_lock(&bench.lock);
    while (bench.ready + bench.failed < conns)
        g_cond_wait(&bench.cond, &bench.lock);
    gint64 start = now_ns();
    bench.deadline_ns = bench.failed ? 0 : start + (gint64)seconds * G_GINT64_CONSTANT(1000000000);
    bench.go = TRUE;
    g_cond_broadcast(&bench.cond);
    g_mutex_unlock(&bench.lock);

    g_autoptr(GArray) all = g_array_new(FALSE, FALSE, sizeof(gint64));
    guint64 errors = 0;
    gint64 end = start;
    int rc = 0;
    const char *last_error = NULL;
    for (int i = 0; i < conns; i++)
        g_thread_join(threads[i]);
    for (int i = 0; i < conns; i++) {
        Worker *worker = &workers[i];
        g_array_append_vals(all, worker->latencies_ns->data, worker->latencies_ns->len);
        errors += worker->errors;
        end = MAX(end, worker->end_ns);
        if (worker->last_error)
            last_error = worker->last_error;
        if (worker->failure && rc == 0) {
            g_printerr("libvirt-rpc-bench: %s\n", worker->failure);
            rc = 1;
        }
    }
    if (rc == 0) {
        if (errors > 0)
            g_printerr("libvirt-rpc-bench: %" G_GUINT64_FORMAT " calls failed, last: %s\n", errors,
                       last_error ? last_error : "?");
        g_array_sort(all, compare_gint64);
        double elapsed = (double)(end - start) / 1e9;
        printf("requests=%u errors=%" G_GUINT64_FORMAT " reconnects=0 seconds=%.3f rps=%.1f "
               "p50_ms=%.3f p99_ms=%.3f",
               all->len, errors, elapsed, elapsed > 0 ? all->len / elapsed : 0.0,
               percentile_ms(all, 50), percentile_ms(all, 99));
        if (bench.op == OP_LIST_ALL)
            printf(" domains=%d", g_atomic_int_get(&bench.listed));
        printf("\n");
        rc = errors > 0 ? 3 : 0;
    }
    for (int i = 0; i < conns; i++) {
        g_array_unref(workers[i].latencies_ns);
        g_free(workers[i].failure);
        g_free(workers[i].last_error);
    }
    g_free(threads);
    g_free(workers);
    g_mutex_clear(&bench.lock);
    g_cond_clear(&bench.cond);
    return rc;
}
