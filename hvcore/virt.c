#define G_LOG_DOMAIN "hv-virt"

#include "hvcore/virt.h"

#include <libvirt-glib/libvirt-glib.h>

#include "hvcore/error.h"
#include "hvcore/libvirt-private.h"

#define DEFAULT_BACKOFF_INITIAL_MS 500
#define DEFAULT_BACKOFF_MAX_MS     10000
/* Remote drivers: a probe every 5 s, given up after 3 unanswered ones, so a
 * silently dead peer is noticed within about 20 s. */
#define KEEPALIVE_INTERVAL_S 5
#define KEEPALIVE_COUNT      3

struct HvVirt {
    char *uri;
    HvLifecycleFunc on_lifecycle;
    HvConnectionFunc on_connection;
    gpointer data;
    /* libvirt-glib dispatches on the default context, so we do too. */
    GMainContext *context;
    guint backoff_initial_ms;
    guint backoff_max_ms;

    GMutex lock;
    /* Guarded by lock: */
    virConnectPtr conn; /* NULL while disconnected */
    virConnectPtr lost; /* dropped from any thread, torn down on the main context */
    char *reason;       /* why we are disconnected */
    GSource *lost_source;
    virConnectPtr opened; /* an attempt thread's result ... */
    char *open_error;     /* ... or why it failed */
    GSource *opened_source;
    guint failed_attempts;

    /* Main context only; the registrations belong to conn or lost. */
    gboolean started;
    int lifecycle_id;
    gboolean close_registered;
    GSource *retry_source;
    guint retry_delay_ms;
    GThread *attempt;
};

static void libvirt_error_to_debug(void *data, virErrorPtr error)
{
    (void)data;
    g_debug("libvirt: %s", error && error->message ? error->message : "unknown error");
}

static gpointer init_once(gpointer data)
{
    (void)data;
    gvir_init(NULL, NULL);
    gvir_event_register();
    /* After gvir_init, which installs a handler of its own. */
    virSetErrorFunc(NULL, libvirt_error_to_debug);
    return NULL;
}

void hv_virt_init_event_loop(void)
{
    static GOnce once = G_ONCE_INIT;

    g_once(&once, init_once, NULL);
}

const char *hv_lifecycle_to_string(HvLifecycle what)
{
    switch (what) {
    case HV_LIFECYCLE_DEFINED:
        return "defined";
    case HV_LIFECYCLE_UNDEFINED:
        return "undefined";
    case HV_LIFECYCLE_STARTED:
        return "started";
    case HV_LIFECYCLE_SUSPENDED:
        return "suspended";
    case HV_LIFECYCLE_RESUMED:
        return "resumed";
    case HV_LIFECYCLE_STOPPED:
        return "stopped";
    case HV_LIFECYCLE_SHUTDOWN:
        return "shutdown";
    case HV_LIFECYCLE_CRASHED:
        return "crashed";
    case HV_LIFECYCLE_PMSUSPENDED:
        return "pmsuspended";
    case HV_LIFECYCLE_MIGRATED_IN:
        return "migrated-in";
    case HV_LIFECYCLE_MIGRATED_OUT:
        return "migrated-out";
    case HV_LIFECYCLE_OTHER:
        break;
    }
    return "other";
}

HvLifecycle hv_lifecycle_from_libvirt(int event, int detail)
{
    switch (event) {
    case VIR_DOMAIN_EVENT_DEFINED:
        return HV_LIFECYCLE_DEFINED;
    case VIR_DOMAIN_EVENT_UNDEFINED:
        return HV_LIFECYCLE_UNDEFINED;
    case VIR_DOMAIN_EVENT_STARTED:
        return detail == VIR_DOMAIN_EVENT_STARTED_MIGRATED ? HV_LIFECYCLE_MIGRATED_IN
                                                           : HV_LIFECYCLE_STARTED;
    case VIR_DOMAIN_EVENT_SUSPENDED:
        return HV_LIFECYCLE_SUSPENDED;
    case VIR_DOMAIN_EVENT_RESUMED:
        return HV_LIFECYCLE_RESUMED;
    case VIR_DOMAIN_EVENT_STOPPED:
        if (detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED)
            return HV_LIFECYCLE_CRASHED;
        if (detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED)
            return HV_LIFECYCLE_MIGRATED_OUT;
        return HV_LIFECYCLE_STOPPED;
    case VIR_DOMAIN_EVENT_SHUTDOWN:
        return HV_LIFECYCLE_SHUTDOWN;
    case VIR_DOMAIN_EVENT_PMSUSPENDED:
        return HV_LIFECYCLE_PMSUSPENDED;
    case VIR_DOMAIN_EVENT_CRASHED:
        return HV_LIFECYCLE_CRASHED;
    default:
        return HV_LIFECYCLE_OTHER;
    }
}

HvStopReason hv_stop_reason_from_libvirt(int event, int detail)
{
    if (event != VIR_DOMAIN_EVENT_STOPPED)
        return HV_STOP_NONE;
    switch (detail) {
    case VIR_DOMAIN_EVENT_STOPPED_CRASHED:
        return HV_STOP_CRASHED;
    case VIR_DOMAIN_EVENT_STOPPED_FAILED:
        return HV_STOP_FAILED;
    default:
        return HV_STOP_OTHER;
    }
}

/* ---- sources on the main context ---------------------------------------- */

static void source_clear(GSource **source)
{
    if (!*source)
        return;
    g_source_destroy(*source);
    g_source_unref(*source);
    *source = NULL;
}

static GSource *source_attach(HvVirt *virt, GSource *source, GSourceFunc func)
{
    g_source_set_callback(source, func, virt, NULL);
    g_source_attach(source, virt->context);
    return source;
}

/* ---- opening and closing ------------------------------------------------ */

static char *last_libvirt_error(void)
{
    const virError *error = virGetLastError();

    return g_strdup(error && error->message ? error->message : "unknown libvirt error");
}

static GError *unreachable_error(const char *uri, const char *reason)
{
    if (reason)
        return g_error_new(HV_ERROR, HV_ERROR_LIBVIRT, "libvirt is unreachable (%s): %s", uri,
                           reason);
    return g_error_new(HV_ERROR, HV_ERROR_LIBVIRT, "libvirt is unreachable (%s)", uri);
}

static void mark_lost(HvVirt *virt, virConnectPtr conn, const char *reason);
static gboolean handle_lost(gpointer data);

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
    HvVirt *virt = opaque;
    const char *why;

    switch (reason) {
    case VIR_CONNECT_CLOSE_REASON_EOF:
        why = "libvirt closed the connection";
        break;
    case VIR_CONNECT_CLOSE_REASON_KEEPALIVE:
        why = "libvirt stopped answering keepalive probes";
        break;
    case VIR_CONNECT_CLOSE_REASON_ERROR:
        why = "I/O error on the libvirt connection";
        break;
    default:
        why = "the libvirt connection was closed";
        break;
    }
    mark_lost(virt, conn, why);
}

static int on_domain_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail,
                               void *opaque)
{
    HvVirt *virt = opaque;
    char uuid[VIR_UUID_STRING_BUFLEN] = "";
    HvLifecycleEvent lifecycle = {
        .domain_name = virDomainGetName(dom),
        .domain_uuid = uuid,
        .what = hv_lifecycle_from_libvirt(event, detail),
        .stop_reason = hv_stop_reason_from_libvirt(event, detail),
        .libvirt_event = event,
        .libvirt_detail = detail,
    };

    (void)conn;
    if (virDomainGetUUIDString(dom, uuid) < 0)
        uuid[0] = '\0';
    g_debug("%s: domain %s %s (%d/%d)", virt->uri, lifecycle.domain_name,
            hv_lifecycle_to_string(lifecycle.what), event, detail);
    if (virt->on_lifecycle)
        virt->on_lifecycle(&lifecycle, virt->data);
    return 0;
}

/* Keepalive, loss notification and lifecycle events for a fresh @conn. */
static gboolean setup_connection(HvVirt *virt, virConnectPtr conn, char **error)
{
    /* Local drivers (test:///) have no keepalive: nothing to do there. */
    if (virConnectSetKeepAlive(conn, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT) < 0)
        g_debug("%s: no keepalive: %s", virt->uri, virGetLastErrorMessage());

    /* Drivers without the notion of a lost connection refuse; the failure
     * reports of callers still cover them. */
    virt->close_registered = virConnectRegisterCloseCallback(conn, on_close, virt, NULL) == 0;
    if (!virt->close_registered)
        g_debug("%s: no close callback: %s", virt->uri, virGetLastErrorMessage());

    virt->lifecycle_id = virConnectDomainEventRegisterAny(
        conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_domain_lifecycle),
        virt, NULL);
    if (virt->lifecycle_id < 0) {
        *error =
            g_strdup_printf("cannot register for lifecycle events: %s", virGetLastErrorMessage());
        if (virt->close_registered)
            virConnectUnregisterCloseCallback(conn, on_close);
        virt->close_registered = FALSE;
        return FALSE;
    }
    return TRUE;
}

/* Errors are expected here: a lost connection refuses the deregistration
 * RPCs, but libvirt drops the callbacks locally all the same. */
static void teardown_connection(HvVirt *virt, virConnectPtr conn)
{
    if (virt->lifecycle_id >= 0 && virConnectDomainEventDeregisterAny(conn, virt->lifecycle_id) < 0)
        g_debug("%s: deregistering lifecycle events: %s", virt->uri, virGetLastErrorMessage());
    virt->lifecycle_id = -1;
    if (virt->close_registered && virConnectUnregisterCloseCallback(conn, on_close) < 0)
        g_debug("%s: unregistering the close callback: %s", virt->uri, virGetLastErrorMessage());
    virt->close_registered = FALSE;
    virConnectClose(conn);
}

/* ---- losing and reconnecting ------------------------------------------- */

/* Any thread, libvirt's close callback included: that one runs with libvirt's
 * locks held, so the teardown waits for the main context. */
static void mark_lost(HvVirt *virt, virConnectPtr conn, const char *reason)
{
    g_mutex_lock(&virt->lock);
    if (conn && conn == virt->conn) {
        g_debug("%s: connection lost: %s", virt->uri, reason);
        virt->lost = g_steal_pointer(&virt->conn);
        g_free(virt->reason);
        virt->reason = g_strdup(reason);
        if (!virt->lost_source)
            virt->lost_source = source_attach(virt, g_idle_source_new(), handle_lost);
    }
    g_mutex_unlock(&virt->lock);
}

static gboolean retry(gpointer data);

static void schedule_retry(HvVirt *virt, guint delay_ms)
{
    source_clear(&virt->retry_source);
    virt->retry_delay_ms = delay_ms;
    g_debug("%s: next connection attempt in %u ms", virt->uri, delay_ms);
    virt->retry_source = source_attach(virt, g_timeout_source_new(delay_ms), retry);
}

static void attempt_failed(HvVirt *virt, char *reason)
{
    g_mutex_lock(&virt->lock);
    virt->failed_attempts++;
    g_free(virt->reason);
    virt->reason = reason;
    g_mutex_unlock(&virt->lock);
}

static void store_connection(HvVirt *virt, virConnectPtr conn)
{
    g_mutex_lock(&virt->lock);
    virt->conn = conn;
    virt->failed_attempts = 0;
    g_clear_pointer(&virt->reason, g_free);
    g_mutex_unlock(&virt->lock);
    virt->retry_delay_ms = virt->backoff_initial_ms;
    /* A loss during the registrations came before conn was ours to drop. */
    if (virConnectIsAlive(conn) != 1)
        mark_lost(virt, conn, "the libvirt connection closed while it was being set up");
}

static gboolean handle_lost(gpointer data)
{
    HvVirt *virt = data;
    virConnectPtr conn;
    g_autofree char *reason = NULL;

    g_mutex_lock(&virt->lock);
    source_clear(&virt->lost_source);
    conn = g_steal_pointer(&virt->lost);
    reason = g_strdup(virt->reason);
    g_mutex_unlock(&virt->lock);

    if (!conn)
        return G_SOURCE_REMOVE;
    teardown_connection(virt, conn);
    schedule_retry(virt, virt->backoff_initial_ms);
    if (virt->on_connection)
        virt->on_connection(FALSE, reason, virt->data);
    return G_SOURCE_REMOVE;
}

static gboolean attempt_done(gpointer data)
{
    HvVirt *virt = data;
    virConnectPtr conn;
    char *error;

    g_mutex_lock(&virt->lock);
    source_clear(&virt->opened_source);
    conn = g_steal_pointer(&virt->opened);
    error = g_steal_pointer(&virt->open_error);
    g_mutex_unlock(&virt->lock);
    g_thread_join(g_steal_pointer(&virt->attempt));

    if (conn && !setup_connection(virt, conn, &error)) {
        virConnectClose(conn);
        conn = NULL;
    }
    if (!conn) {
        g_debug("%s: connection attempt failed: %s", virt->uri, error);
        attempt_failed(virt, error);
        schedule_retry(virt, MIN(virt->retry_delay_ms * 2, virt->backoff_max_ms));
        return G_SOURCE_REMOVE;
    }

    g_debug("%s: connected again", virt->uri);
    store_connection(virt, conn);
    if (virt->on_connection)
        virt->on_connection(TRUE, NULL, virt->data);
    return G_SOURCE_REMOVE;
}

/* virConnectOpen may block for as long as TCP takes to give up on a host. */
static gpointer attempt_thread(gpointer data)
{
    HvVirt *virt = data;
    virConnectPtr conn = virConnectOpen(virt->uri);
    char *error = conn ? NULL : last_libvirt_error();

    g_mutex_lock(&virt->lock);
    virt->opened = conn;
    virt->open_error = error;
    virt->opened_source = source_attach(virt, g_idle_source_new(), attempt_done);
    g_mutex_unlock(&virt->lock);
    return NULL;
}

static gboolean retry(gpointer data)
{
    HvVirt *virt = data;
    g_autoptr(GError) error = NULL;

    source_clear(&virt->retry_source);
    virt->attempt = g_thread_try_new("hv-virt-open", attempt_thread, virt, &error);
    if (!virt->attempt) {
        attempt_failed(virt, g_strdup(error->message));
        schedule_retry(virt, MIN(virt->retry_delay_ms * 2, virt->backoff_max_ms));
    }
    return G_SOURCE_REMOVE;
}

/* ---- public ------------------------------------------------------------- */

HvVirt *hv_virt_new(const char *uri, HvLifecycleFunc on_lifecycle, HvConnectionFunc on_connection,
                    gpointer data)
{
    HvVirt *virt;

    g_return_val_if_fail(uri != NULL, NULL);
    hv_virt_init_event_loop();
    virt = g_new0(HvVirt, 1);
    virt->uri = g_strdup(uri);
    virt->on_lifecycle = on_lifecycle;
    virt->on_connection = on_connection;
    virt->data = data;
    virt->context = g_main_context_ref(g_main_context_default());
    virt->backoff_initial_ms = DEFAULT_BACKOFF_INITIAL_MS;
    virt->backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
    virt->retry_delay_ms = DEFAULT_BACKOFF_INITIAL_MS;
    virt->lifecycle_id = -1;
    g_mutex_init(&virt->lock);
    return virt;
}

void hv_virt_set_backoff(HvVirt *virt, guint initial_ms, guint max_ms)
{
    g_return_if_fail(virt != NULL);
    virt->backoff_initial_ms = MAX(initial_ms, 1);
    virt->backoff_max_ms = MAX(max_ms, virt->backoff_initial_ms);
}

gboolean hv_virt_connect(HvVirt *virt, GError **error)
{
    virConnectPtr conn;
    char *reason = NULL;

    g_return_val_if_fail(virt != NULL, FALSE);
    if (virt->started) {
        g_autoptr(HvConn) current = hv_virt_get_connection(virt, error);

        return current != NULL;
    }
    virt->started = TRUE;

    conn = virConnectOpen(virt->uri);
    if (!conn)
        reason = last_libvirt_error();
    else if (!setup_connection(virt, conn, &reason))
        g_clear_pointer(&conn, virConnectClose);

    if (!conn) {
        g_debug("%s: cannot connect: %s", virt->uri, reason);
        g_propagate_error(error, unreachable_error(virt->uri, reason));
        attempt_failed(virt, reason);
        schedule_retry(virt, virt->backoff_initial_ms);
        return FALSE;
    }
    store_connection(virt, conn);
    return TRUE;
}

gboolean hv_virt_is_connected(HvVirt *virt)
{
    gboolean connected;

    g_return_val_if_fail(virt != NULL, FALSE);
    g_mutex_lock(&virt->lock);
    connected = virt->conn != NULL;
    g_mutex_unlock(&virt->lock);
    return connected;
}

HvConn *hv_virt_get_connection(HvVirt *virt, GError **error)
{
    virConnectPtr conn = NULL;

    g_return_val_if_fail(virt != NULL, NULL);
    g_mutex_lock(&virt->lock);
    if (virt->conn && virConnectRef(virt->conn) == 0)
        conn = virt->conn;
    else
        g_propagate_error(error, unreachable_error(virt->uri, virt->reason));
    g_mutex_unlock(&virt->lock);
    return hv_conn_wrap(conn);
}

gboolean hv_virt_report_failure(HvVirt *virt, HvConn *handle)
{
    virConnectPtr conn = hv_conn_get_libvirt(handle);
    g_autofree char *reason = NULL;

    g_return_val_if_fail(virt != NULL, FALSE);
    if (!conn)
        return FALSE;
    /* Before virConnectIsAlive, which resets the thread's last error. */
    reason =
        g_strdup_printf("a libvirt call failed on a dead connection: %s", virGetLastErrorMessage());
    /* Local for every driver: remote ones look at their socket. */
    if (virConnectIsAlive(conn) == 1)
        return FALSE;
    mark_lost(virt, conn, reason);
    return TRUE;
}

guint hv_virt_get_failed_attempts(HvVirt *virt)
{
    guint attempts;

    g_return_val_if_fail(virt != NULL, 0);
    g_mutex_lock(&virt->lock);
    attempts = virt->failed_attempts;
    g_mutex_unlock(&virt->lock);
    return attempts;
}

const char *hv_virt_get_uri(HvVirt *virt)
{
    g_return_val_if_fail(virt != NULL, NULL);
    return virt->uri;
}

void hv_virt_free(HvVirt *virt)
{
    virConnectPtr opened, lost, conn;

    if (!virt)
        return;
    /* The attempt thread ends by scheduling attempt_done, removed below. */
    if (virt->attempt)
        g_thread_join(g_steal_pointer(&virt->attempt));
    source_clear(&virt->retry_source);

    g_mutex_lock(&virt->lock);
    source_clear(&virt->lost_source);
    source_clear(&virt->opened_source);
    opened = g_steal_pointer(&virt->opened);
    lost = g_steal_pointer(&virt->lost);
    conn = g_steal_pointer(&virt->conn);
    g_mutex_unlock(&virt->lock);

    if (opened)
        virConnectClose(opened);
    if (lost)
        teardown_connection(virt, lost);
    if (conn)
        teardown_connection(virt, conn);

    g_free(virt->open_error);
    g_free(virt->reason);
    g_free(virt->uri);
    g_main_context_unref(virt->context);
    g_mutex_clear(&virt->lock);
    g_free(virt);
}
