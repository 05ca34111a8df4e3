/* migrate: drives hvcore/migrate between two libvirt URIs, for
 * tests/system/migrate-hvcore.long and benches.
 *
 *   migrate [OPTIONS] preflight SRC_URI DST_URI DOMAIN
 *   migrate [OPTIONS] volumes SRC_URI DOMAIN
 *   migrate [OPTIONS] copy SRC_URI DST_URI POOL NAME
 *   migrate [OPTIONS] dest-xml SRC_URI DST_URI DOMAIN
 *   migrate [OPTIONS] run SRC_URI DST_URI DOMAIN XML_FILE
 *   migrate [OPTIONS] all SRC_URI DST_URI DOMAIN
 *
 * Options: --backend tcg|kvm (tcg), --no-nested-state (this host's probe
 * found no KVM_CAP_NESTED_STATE), --migrate-uri URI, --copy-storage,
 * --cancel-after MS (cancel the run, or the whole of `all`, after MS),
 * --cancel-in-memory (cancel the run as soon as it reports memory moving:
 * stage memory with bytes done, so the cancel lands mid-copy whatever the
 * machine's load; slow the migration down with virsh migrate-setspeed).
 *
 * Output, one fact a line:
 *   preflight ok
 *   image NAME / overlay NAME / whole NAME   (volumes)
 *   copied NAME / present NAME          (copy, all)
 *   overlay-created NAME                (all --copy-storage)
 *   console PATH                        (dest-xml, all; the XML itself goes to
 *                                        stdout for dest-xml, after this line)
 *   progress STAGE PERCENT DONE TOTAL REMAINING   (run, all)
 *   result total_ms=N downtime_ms=N bytes=N       (run, all)
 *   cleanup deleted POOL/NAME           (all, after a failure)
 * `all` is the whole sequence turtled runs: preflight, copy the images and
 * the whole volumes (UEFI variables, seed) the peer lacks, create overlays (with --copy-storage),
 * destination XML, migration; on failure it deletes from the peer what it copied or made. Errors go
 * to stderr as "migrate: [CODE] message" (CODE is the GError code, "cancelled" for a cancellation)
 * with exit status 1; 2 for usage. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "hvcore/error.h"
#include "hvcore/migrate.h"
#include "hvcore/storage.h"
#include "hvcore/libvirt-private.h"

static void quiet_libvirt(void *data, virErrorPtr error)
{
    (void)data;
    (void)error;
}

typedef struct {
    char *backend;
    gboolean no_nested_state;
    char *migrate_uri;
    gboolean copy_storage;
    gint cancel_after_ms;
    gboolean cancel_in_memory;
} Options;

static int fail(const GError *error)
{
    const char *code = "failed";

    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        code = "cancelled";
    else if (error->domain == HV_ERROR) {
        static const char *const codes[] = {"failed", "invalid", "unsupported", "not_found",
                                            "libvirt"};
        if ((guint)error->code < G_N_ELEMENTS(codes))
            code = codes[error->code];
    }
    fprintf(stderr, "migrate: [%s] %s\n", code, error->message);
    return 1;
}

static HvConn *open_uri(const char *uri, GError **error)
{
    HvConn *conn = hv_conn_open(uri, NULL);

    if (!conn)
        g_set_error(error, HV_ERROR, HV_ERROR_LIBVIRT, "cannot connect to %s: %s", uri,
                    virGetLastErrorMessage());
    return conn;
}

/* @data: the cancellable to cancel once memory moves (--cancel-in-memory), or NULL. */
static void print_progress(const HvMigrateProgress *p, gpointer data)
{
    printf("progress %s %d %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT "\n",
           p->stage, p->percent, p->bytes_done, p->bytes_total, p->bytes_remaining);
    fflush(stdout);
    if (data != NULL && g_strcmp0(p->stage, "memory") == 0 && p->bytes_done > 0 &&
        !g_cancellable_is_cancelled(data)) {
        printf("cancelling\n");
        fflush(stdout);
        g_cancellable_cancel(data);
    }
}

static gboolean cancel_now(gpointer data)
{
    g_cancellable_cancel(data);
    return G_SOURCE_REMOVE;
}

/* A thread whose main loop cancels @cancellable after @ms. */
static gpointer cancel_thread(gpointer data)
{
    GMainContext *context = g_main_context_new();
    GCancellable *cancellable = data;
    gint ms = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(cancellable), "ms"));
    GSource *timeout = g_timeout_source_new((guint)ms);

    g_source_set_callback(timeout, cancel_now, cancellable, NULL);
    g_source_attach(timeout, context);
    g_source_unref(timeout);
    while (!g_cancellable_is_cancelled(cancellable))
        g_main_context_iteration(context, TRUE);
    g_main_context_unref(context);
    return NULL;
}

static gboolean preflight(HvConn *src, HvConn *dst, const char *domain, const Options *opts,
                          GError **error)
{
    HvBackend backend;

    if (!hv_backend_from_string(opts->backend, &backend)) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "unknown backend '%s'", opts->backend);
        return FALSE;
    }
    if (!hv_migrate_preflight(src, dst, domain, backend, !opts->no_nested_state, error))
        return FALSE;
    printf("preflight ok\n");
    return TRUE;
}

static gboolean run(HvConn *src, HvConn *dst, const char *dst_uri, const char *domain,
                    const char *xml, const Options *opts, GCancellable *cancellable, GError **error)
{
    HvMigrateResult result = {0};

    if (!hv_migrate_run(src, dst, domain, dst_uri, opts->migrate_uri, xml, opts->copy_storage,
                        print_progress, opts->cancel_in_memory ? cancellable : NULL, cancellable,
                        &result, error))
        return FALSE;
    printf("result total_ms=%" G_GUINT64_FORMAT " downtime_ms=%" G_GUINT64_FORMAT
           " bytes=%" G_GUINT64_FORMAT "\n",
           result.total_ms, result.downtime_ms, result.bytes);
    return TRUE;
}

/* Deletes from the peer what a failed `all` made there. */
static void cleanup(HvConn *dst, const char *pool, GPtrArray *names)
{
    guint i;

    for (i = 0; i < names->len; i++) {
        g_autoptr(GError) error = NULL;
        const char *name = g_ptr_array_index(names, i);

        if (hv_volume_delete(dst, pool, name, &error))
            printf("cleanup deleted %s/%s\n", pool, name);
        else
            fprintf(stderr, "migrate: cannot delete %s/%s from the peer: %s\n", pool, name,
                    error->message);
    }
}

static gboolean all(HvConn *src, HvConn *dst, const char *dst_uri, const char *domain,
                    const Options *opts, GCancellable *cancellable, GError **error)
{
    g_autoptr(GPtrArray) images = NULL;
    g_autoptr(GPtrArray) wholes = NULL;
    g_autoptr(GPtrArray) sources = NULL;
    g_autoptr(GPtrArray) copied = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) copied_wholes = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) overlays = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *xml = NULL;
    g_autofree char *console = NULL;
    guint i;

    if (!preflight(src, dst, domain, opts, error) ||
        !hv_migrate_list_volumes(src, domain, &images, &sources, &wholes, error))
        return FALSE;
    for (i = 0; i < images->len; i++) {
        const char *name = g_ptr_array_index(images, i);
        gboolean did = FALSE;

        if (!hv_volume_copy(src, dst, HV_POOL_IMAGES, name, NULL, NULL, cancellable, &did, error))
            goto failed;
        if (did)
            g_ptr_array_add(copied, g_strdup(name));
        printf("%s %s\n", did ? "copied" : "present", name);
    }
    for (i = 0; i < wholes->len; i++) {
        const char *name = g_ptr_array_index(wholes, i);
        gboolean did = FALSE;

        if (!hv_volume_copy(src, dst, HV_POOL_DISKS, name, NULL, NULL, cancellable, &did, error))
            goto failed;
        if (did)
            g_ptr_array_add(copied_wholes, g_strdup(name));
        printf("%s %s\n", did ? "copied" : "present", name);
    }
    if (opts->copy_storage && !hv_migrate_create_overlays(src, dst, sources, overlays, error))
        goto failed;
    for (i = 0; i < overlays->len; i++)
        printf("overlay-created %s\n", (const char *)g_ptr_array_index(overlays, i));
    xml = hv_migrate_destination_xml(src, dst, domain, &console, error);
    if (!xml)
        goto failed;
    printf("console %s\n", console ? console : "");
    fflush(stdout);
    if (!run(src, dst, dst_uri, domain, xml, opts, cancellable, error))
        goto failed;
    return TRUE;

failed:
    cleanup(dst, HV_POOL_DISKS, overlays);
    cleanup(dst, HV_POOL_DISKS, copied_wholes);
    cleanup(dst, HV_POOL_IMAGES, copied);
    return FALSE;
}

int main(int argc, char **argv)
{
    Options opts = {0};
    GOptionEntry entries[] = {
        {"backend", 0, 0, G_OPTION_ARG_STRING, &opts.backend, "kvm or tcg (tcg)", "B"},
        {"no-nested-state", 0, 0, G_OPTION_ARG_NONE, &opts.no_nested_state,
         "this host lacks KVM_CAP_NESTED_STATE", NULL},
        {"migrate-uri", 0, 0, G_OPTION_ARG_STRING, &opts.migrate_uri, "data connection URI", "URI"},
        {"copy-storage", 0, 0, G_OPTION_ARG_NONE, &opts.copy_storage, "copy overlay disks", NULL},
        {"cancel-after", 0, 0, G_OPTION_ARG_INT, &opts.cancel_after_ms, "cancel after MS", "MS"},
        {"cancel-in-memory", 0, 0, G_OPTION_ARG_NONE, &opts.cancel_in_memory,
         "cancel once memory moves", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) context = g_option_context_new("VERB ARGS... - hvcore/migrate");
    g_autoptr(GError) error = NULL;
    g_autoptr(HvConn) src = NULL;
    g_autoptr(HvConn) dst = NULL;
    g_autoptr(GCancellable) cancellable = g_cancellable_new();
    GThread *canceller = NULL;
    const char *verb;
    gboolean ok = FALSE;

    /* As virsh does: a libvirtd that dies under a UNIX-socket connection
     * must fail the call (EPIPE), not kill us. */
    signal(SIGPIPE, SIG_IGN);
    g_option_context_add_main_entries(context, entries, NULL);
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        fprintf(stderr, "migrate: %s\n", error->message);
        return 2;
    }
    if (!opts.backend)
        opts.backend = g_strdup("tcg");
    if (argc < 3)
        goto usage;
    verb = argv[1];
    virSetErrorFunc(NULL, quiet_libvirt);
    if (opts.cancel_after_ms > 0) {
        g_object_set_data(G_OBJECT(cancellable), "ms", GINT_TO_POINTER(opts.cancel_after_ms));
        canceller = g_thread_new("canceller", cancel_thread, cancellable);
    }

    src = open_uri(argv[2], &error);
    if (!src)
        return fail(error);
    if (g_str_equal(verb, "volumes") && argc == 4) {
        g_autoptr(GPtrArray) images = NULL;
        g_autoptr(GPtrArray) overlays = NULL;
        g_autoptr(GPtrArray) wholes = NULL;
        guint i;

        ok = hv_migrate_list_volumes(src, argv[3], &images, &overlays, &wholes, &error);
        for (i = 0; ok && i < images->len; i++)
            printf("image %s\n", (const char *)g_ptr_array_index(images, i));
        for (i = 0; ok && i < overlays->len; i++)
            printf("overlay %s\n", (const char *)g_ptr_array_index(overlays, i));
        for (i = 0; ok && i < wholes->len; i++)
            printf("whole %s\n", (const char *)g_ptr_array_index(wholes, i));
    } else if (g_str_equal(verb, "run") && argc == 6) {
        /* No connection to the peer of our own: only the source's
         * libvirtd talks to it, as in hv_migrate_run. */
        g_autofree char *xml = NULL;

        ok = g_file_get_contents(argv[5], &xml, NULL, &error) &&
             run(src, NULL, argv[3], argv[4], xml, &opts, cancellable, &error);
    } else if (argc >= 5) {
        dst = open_uri(argv[3], &error);
        if (!dst)
            return fail(error);
        if (g_str_equal(verb, "preflight") && argc == 5) {
            ok = preflight(src, dst, argv[4], &opts, &error);
        } else if (g_str_equal(verb, "copy") && argc == 6) {
            gboolean did = FALSE;

            ok = hv_volume_copy(src, dst, argv[4], argv[5], NULL, NULL, cancellable, &did, &error);
            if (ok)
                printf("%s %s\n", did ? "copied" : "present", argv[5]);
        } else if (g_str_equal(verb, "dest-xml") && argc == 5) {
            g_autofree char *console = NULL;
            g_autofree char *xml = hv_migrate_destination_xml(src, dst, argv[4], &console, &error);

            ok = xml != NULL;
            if (ok)
                printf("console %s\n%s", console ? console : "", xml);
        } else if (g_str_equal(verb, "all") && argc == 5) {
            ok = all(src, dst, argv[3], argv[4], &opts, cancellable, &error);
        } else {
            goto usage;
        }
    } else {
        goto usage;
    }
    if (canceller) {
        g_cancellable_cancel(cancellable);
        g_thread_join(canceller);
    }
    g_free(opts.backend);
    g_free(opts.migrate_uri);
    return ok ? 0 : fail(error);

usage:
    fprintf(stderr, "usage: migrate [OPTIONS] preflight|volumes|copy|dest-xml|run|all ARGS "
                    "(see tests/tools/migrate.c)\n");
    return 2;
}
