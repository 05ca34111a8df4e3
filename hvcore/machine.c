#define G_LOG_DOMAIN "hv-machine"

#include "hvcore/machine.h"

#include <stdlib.h>

#include "hvcore/error.h"
#include "hvcore/libvirt-private.h"

/* How often a stop looks at the state: one cheap round trip each time. */
#define POLL_INTERVAL_MS 100

/* ---- errors --------------------------------------------------------------- */

static HvErrorCode libvirt_code(void)
{
    switch (virGetLastErrorCode()) {
    case VIR_ERR_NO_DOMAIN:
        return HV_ERROR_NOT_FOUND;
    case VIR_ERR_XML_ERROR:
    case VIR_ERR_XML_DETAIL:
    case VIR_ERR_XML_INVALID_SCHEMA:
        return HV_ERROR_INVALID;
    default:
        return HV_ERROR_LIBVIRT;
    }
}

/* The error of this thread's last failed libvirt call, taken before another
 * call replaces it: "cannot <verb> domain 'x': <libvirt's message>". */
static GError *libvirt_error(const char *name, const char *verb)
{
    HvErrorCode code = libvirt_code();

    if (code == HV_ERROR_NOT_FOUND)
        return g_error_new(HV_ERROR, code, "domain '%s' not found", name);
    return g_error_new(HV_ERROR, code, "cannot %s domain '%s': %s", verb, name,
                       virGetLastErrorMessage());
}

static void set_libvirt_error(GError **error, const char *name, const char *verb)
{
    g_propagate_error(error, libvirt_error(name, verb));
}

/* ---- states --------------------------------------------------------------- */

const char *hv_machine_state_to_string(HvMachineState state)
{
    switch (state) {
    case HV_MACHINE_ABSENT:
        return "absent";
    case HV_MACHINE_RUNNING:
        return "running";
    case HV_MACHINE_PAUSED:
        return "paused";
    case HV_MACHINE_SHUTOFF:
        return "shutoff";
    case HV_MACHINE_CRASHED:
        return "crashed";
    case HV_MACHINE_OTHER:
        break;
    }
    return "other";
}

static HvMachineState state_from_libvirt(int state)
{
    switch (state) {
    case VIR_DOMAIN_RUNNING:
    case VIR_DOMAIN_BLOCKED:
    case VIR_DOMAIN_SHUTDOWN:
        return HV_MACHINE_RUNNING;
    case VIR_DOMAIN_PAUSED:
        return HV_MACHINE_PAUSED;
    case VIR_DOMAIN_SHUTOFF:
        return HV_MACHINE_SHUTOFF;
    case VIR_DOMAIN_CRASHED:
        return HV_MACHINE_CRASHED;
    default:
        return HV_MACHINE_OTHER;
    }
}

static virDomainPtr lookup(virConnectPtr conn, const char *name, GError **error)
{
    virDomainPtr dom = virDomainLookupByName(conn, name);

    if (!dom)
        set_libvirt_error(error, name, "look up");
    return dom;
}

/* ABSENT with @error set on failure (NOT_FOUND when the domain vanished). */
static HvMachineState domain_state(virDomainPtr dom, GError **error)
{
    int state = -1, reason = -1;

    if (virDomainGetState(dom, &state, &reason, 0) != 0) {
        set_libvirt_error(error, virDomainGetName(dom), "get the state of");
        return HV_MACHINE_ABSENT;
    }
    return state_from_libvirt(state);
}

HvMachineState hv_machine_get_state(HvConn *conn_handle, const char *name, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_autoptr(GError) local = NULL;
    g_autoptr(virDomain) dom = NULL;
    HvMachineState state = HV_MACHINE_ABSENT;

    g_return_val_if_fail(conn != NULL && name != NULL, HV_MACHINE_ABSENT);
    dom = lookup(conn, name, &local);
    if (dom)
        state = domain_state(dom, &local);
    if (local && !g_error_matches(local, HV_ERROR, HV_ERROR_NOT_FOUND))
        g_propagate_error(error, g_steal_pointer(&local));
    return state;
}

HvOutgoing hv_machine_get_outgoing(HvConn *conn_handle, const char *name, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_autoptr(GError) local = NULL;
    g_autoptr(virDomain) dom = NULL;
    int state = -1, reason = -1;
    virDomainJobInfo job = {0};

    g_return_val_if_fail(conn != NULL && name != NULL, HV_OUTGOING_NONE);
    dom = lookup(conn, name, &local);
    if (!dom) {
        /* Undefined after it left (the source's copy goes with the migration). */
        if (g_error_matches(local, HV_ERROR, HV_ERROR_NOT_FOUND))
            return HV_OUTGOING_DONE;
        g_propagate_error(error, g_steal_pointer(&local));
        return HV_OUTGOING_NONE;
    }
    if (virDomainGetState(dom, &state, &reason, 0) != 0) {
        set_libvirt_error(error, name, "get the state of");
        return HV_OUTGOING_NONE;
    }
    if (state == VIR_DOMAIN_SHUTOFF && reason == VIR_DOMAIN_SHUTOFF_MIGRATED)
        return HV_OUTGOING_DONE;
    if (state == VIR_DOMAIN_PAUSED && reason == VIR_DOMAIN_PAUSED_MIGRATION)
        return HV_OUTGOING_RUNNING;
    /* A peer-to-peer migration is libvirtd's job: it goes on without us. */
    if (virDomainGetJobInfo(dom, &job) != 0) {
        /* A driver without jobs (test:///default) migrates nothing. */
        if (virGetLastErrorCode() == VIR_ERR_NO_SUPPORT)
            return HV_OUTGOING_NONE;
        set_libvirt_error(error, name, "get the job of");
        return HV_OUTGOING_NONE;
    }
    return job.type == VIR_DOMAIN_JOB_NONE ? HV_OUTGOING_NONE : HV_OUTGOING_RUNNING;
}

char *hv_machine_get_xml(HvConn *conn_handle, const char *name, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_autoptr(virDomain) dom = NULL;
    char *xml;

    g_return_val_if_fail(conn != NULL && name != NULL, NULL);
    dom = lookup(conn, name, error);
    if (!dom)
        return NULL;
    xml = virDomainGetXMLDesc(dom, 0);
    if (!xml)
        set_libvirt_error(error, name, "read the XML of");
    return xml;
}

/* ---- define --------------------------------------------------------------- */

gboolean hv_machine_define(HvConn *conn_handle, const char *xml, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_return_val_if_fail(conn != NULL && xml != NULL, FALSE);

    /* Validation catches a builder bug as a clear schema error rather than
     * an element libvirt silently ignores. */
    g_autoptr(virDomain) dom = virDomainDefineXMLFlags(conn, xml, VIR_DOMAIN_DEFINE_VALIDATE);
    if (dom)
        return TRUE;
    g_set_error(error, HV_ERROR, libvirt_code(), "cannot define the domain: %s",
                virGetLastErrorMessage());
    return FALSE;
}

/* ---- simple transitions ---------------------------------------------------- */

typedef struct {
    const char *verb;
    int (*call)(virDomainPtr dom);
    HvMachineState target;   /* in it already: nothing to do; ABSENT: none */
    gboolean refuse_shutoff; /* HV_ERROR_INVALID for a shut-off domain */
    gboolean refuse_paused;  /* HV_ERROR_INVALID for a paused domain */
} Transition;

static gboolean refuse(const char *name, const Transition *t, HvMachineState state, GError **error)
{
    if ((state == HV_MACHINE_SHUTOFF && t->refuse_shutoff) ||
        (state == HV_MACHINE_PAUSED && t->refuse_paused)) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "cannot %s domain '%s': it is %s", t->verb,
                    name, state == HV_MACHINE_PAUSED ? "paused" : "shut off");
        return TRUE;
    }
    return FALSE;
}

static gboolean transition(virConnectPtr conn, const char *name, const Transition *t,
                           GError **error)
{
    g_return_val_if_fail(conn != NULL && name != NULL, FALSE);

    g_autoptr(virDomain) dom = lookup(conn, name, error);
    if (!dom)
        return FALSE;
    HvMachineState state = domain_state(dom, error);
    if (state == HV_MACHINE_ABSENT)
        return FALSE;
    if (state == t->target)
        return TRUE;
    if (refuse(name, t, state, error))
        return FALSE;
    if (t->call(dom) == 0)
        return TRUE;

    g_autoptr(GError) failure = libvirt_error(name, t->verb);
    if (t->target != HV_MACHINE_ABSENT && domain_state(dom, NULL) == t->target)
        return TRUE; /* someone else got there first */
    g_propagate_error(error, g_steal_pointer(&failure));
    return FALSE;
}

static int call_reset(virDomainPtr dom)
{
    return virDomainReset(dom, 0);
}

gboolean hv_machine_start(HvConn *conn_handle, const char *name, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    static const Transition t = {"start", virDomainCreate, HV_MACHINE_RUNNING, FALSE, TRUE};
    return transition(conn, name, &t, error);
}

gboolean hv_machine_force_stop(HvConn *conn_handle, const char *name, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    static const Transition t = {"force off", virDomainDestroy, HV_MACHINE_SHUTOFF, FALSE, FALSE};
    return transition(conn, name, &t, error);
}

gboolean hv_machine_reboot(HvConn *conn_handle, const char *name, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    static const Transition t = {"reset", call_reset, HV_MACHINE_ABSENT, TRUE, FALSE};
    return transition(conn, name, &t, error);
}

gboolean hv_machine_pause(HvConn *conn_handle, const char *name, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    static const Transition t = {"pause", virDomainSuspend, HV_MACHINE_PAUSED, TRUE, FALSE};
    return transition(conn, name, &t, error);
}

gboolean hv_machine_resume(HvConn *conn_handle, const char *name, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    static const Transition t = {"resume", virDomainResume, HV_MACHINE_RUNNING, TRUE, FALSE};
    return transition(conn, name, &t, error);
}

/* ---- graceful stop ---------------------------------------------------------- */

/* Sleeps @ms unless @cancellable fires first; FALSE when it has. */
static gboolean sleep_cancellable(GCancellable *cancellable, guint ms)
{
    GPollFD pollfd;

    if (cancellable && g_cancellable_make_pollfd(cancellable, &pollfd)) {
        g_poll(&pollfd, 1, (gint)ms);
        g_cancellable_release_fd(cancellable);
    } else {
        g_usleep((gulong)ms * 1000);
    }
    return !g_cancellable_is_cancelled(cancellable);
}

static gboolean wait_shutoff(virDomainPtr dom, guint timeout_ms, GCancellable *cancellable,
                             GError **error)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    for (;;) {
        g_autoptr(GError) local = NULL;
        HvMachineState state = domain_state(dom, &local);
        if (state == HV_MACHINE_SHUTOFF || g_error_matches(local, HV_ERROR, HV_ERROR_NOT_FOUND))
            return TRUE;
        if (local) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        if (g_cancellable_set_error_if_cancelled(cancellable, error))
            return FALSE;
        gint64 left_us = deadline - g_get_monotonic_time();
        if (left_us <= 0) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                        "domain '%s' is still running after %u ms", virDomainGetName(dom),
                        timeout_ms);
            return FALSE;
        }
        sleep_cancellable(cancellable, (guint)MIN((left_us + 999) / 1000, POLL_INTERVAL_MS));
    }
}

gboolean hv_machine_wait_shutoff(HvConn *conn_handle, const char *name, guint timeout_ms,
                                 GCancellable *cancellable, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_return_val_if_fail(conn != NULL && name != NULL, FALSE);

    g_autoptr(GError) local = NULL;
    g_autoptr(virDomain) dom = lookup(conn, name, &local);
    if (!dom) {
        if (g_error_matches(local, HV_ERROR, HV_ERROR_NOT_FOUND))
            return TRUE;
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    return wait_shutoff(dom, timeout_ms, cancellable, error);
}

/* The ACPI power button.  Drivers without that mode (test:///default) get
 * their default one; for our QEMU domains, which have no guest agent
 * channel, the default is the power button too. */
static gboolean press_power_button(virDomainPtr dom, const char *name, GError **error)
{
    if (virDomainShutdownFlags(dom, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) == 0)
        return TRUE;
    if (virGetLastErrorCode() == VIR_ERR_INVALID_ARG && virDomainShutdown(dom) == 0)
        return TRUE;

    g_autoptr(GError) failure = libvirt_error(name, "shut down");
    if (domain_state(dom, NULL) == HV_MACHINE_SHUTOFF)
        return TRUE;
    g_propagate_error(error, g_steal_pointer(&failure));
    return FALSE;
}

gboolean hv_machine_stop(HvConn *conn_handle, const char *name, guint timeout_s,
                         GCancellable *cancellable, gboolean *forced, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_return_val_if_fail(conn != NULL && name != NULL, FALSE);

    if (forced)
        *forced = FALSE;
    g_autoptr(virDomain) dom = lookup(conn, name, error);
    if (!dom)
        return FALSE;
    HvMachineState state = domain_state(dom, error);
    if (state == HV_MACHINE_ABSENT)
        return FALSE;
    if (state == HV_MACHINE_SHUTOFF)
        return TRUE;
    /* A paused guest cannot see the button; resume it so it can shut down cleanly. */
    if (state == HV_MACHINE_PAUSED && !hv_machine_resume(conn_handle, name, error))
        return FALSE;
    if (!press_power_button(dom, name, error))
        return FALSE;

    g_autoptr(GError) waited = NULL;
    if (wait_shutoff(dom, MIN(timeout_s, G_MAXUINT / 1000) * 1000, cancellable, &waited))
        return TRUE;
    if (!g_error_matches(waited, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
        g_propagate_error(error, g_steal_pointer(&waited));
        return FALSE;
    }
    g_debug("domain '%s' ignored the power button for %u s: forcing it off", name, timeout_s);
    if (!hv_machine_force_stop(conn_handle, name, error))
        return FALSE;
    if (forced)
        *forced = TRUE;
    return TRUE;
}

/* ---- remove ----------------------------------------------------------------- */

static int undefine(virDomainPtr dom)
{
    const unsigned int all = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                             VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                             VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM;

    if (virDomainUndefineFlags(dom, all) == 0)
        return 0;
    /* Drivers refuse flags for things they do not have (test:///default: NVRAM). */
    if (virGetLastErrorCode() != VIR_ERR_INVALID_ARG)
        return -1;
    return virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                                           VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA);
}

gboolean hv_machine_remove(HvConn *conn_handle, const char *name, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_return_val_if_fail(conn != NULL && name != NULL, FALSE);

    g_autoptr(GError) local = NULL;
    g_autoptr(virDomain) dom = lookup(conn, name, &local);
    if (!dom)
        goto failed;
    if (!hv_machine_force_stop(conn_handle, name, &local))
        goto failed;
    /* A transient domain went away with its destruction. */
    if (virDomainIsPersistent(dom) == 0 || undefine(dom) == 0)
        return TRUE;
    local = libvirt_error(name, "undefine");
failed:
    if (g_error_matches(local, HV_ERROR, HV_ERROR_NOT_FOUND))
        return TRUE;
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
}

/* ---- listing ------------------------------------------------------------------ */

void hv_machine_info_free(HvMachineInfo *info)
{
    if (!info)
        return;
    g_free(info->name);
    hv_stack_identity_free(info->identity);
    g_free(info);
}

/* NULL with @error unset for a domain that is not ours or vanished. */
static HvMachineInfo *describe(virDomainPtr dom, GError **error)
{
    const char *name = virDomainGetName(dom);
    g_autoptr(GError) local = NULL;
    g_autoptr(HvStackIdentity) identity = NULL;
    HvMachineState state = HV_MACHINE_ABSENT;
    char *xml = virDomainGetXMLDesc(dom, 0);

    if (!xml) {
        local = libvirt_error(name, "describe");
    } else {
        identity = hv_domain_parse_identity(xml, &local);
        free(xml);
        if (!identity) {
            if (!g_error_matches(local, HV_ERROR, HV_ERROR_NOT_FOUND))
                g_debug("skipping domain '%s': %s", name, local->message);
            return NULL;
        }
        state = domain_state(dom, &local);
    }
    if (local && !g_error_matches(local, HV_ERROR, HV_ERROR_NOT_FOUND)) {
        /* A domain that went between the listing and this look (a migration
         * that just completed undefines its source) may fail with no error
         * set: gone is not a failure of the listing. */
        g_autoptr(GError) again = NULL;
        g_autoptr(virDomain) still = lookup(virDomainGetConnect(dom), name, &again);
        if (still != NULL || !g_error_matches(again, HV_ERROR, HV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        g_debug("skipping domain '%s': it went while being listed", name);
        return NULL;
    }
    if (local)
        return NULL;
    HvMachineInfo *info = g_new0(HvMachineInfo, 1);
    info->name = g_strdup(name);
    info->state = state;
    info->persistent = virDomainIsPersistent(dom) == 1;
    info->identity = g_steal_pointer(&identity);
    return info;
}

GPtrArray *hv_machine_list_ours(HvConn *conn_handle, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    virDomainPtr *doms = NULL;
    g_autoptr(GError) local = NULL;

    g_return_val_if_fail(conn != NULL, NULL);
    int n = virConnectListAllDomains(conn, &doms, 0);
    if (n < 0) {
        g_set_error(error, HV_ERROR, HV_ERROR_LIBVIRT, "cannot list domains: %s",
                    virGetLastErrorMessage());
        return NULL;
    }
    g_autoptr(GPtrArray) infos =
        g_ptr_array_new_with_free_func((GDestroyNotify)hv_machine_info_free);
    for (int i = 0; i < n; i++) {
        if (!local) {
            HvMachineInfo *info = describe(doms[i], &local);
            if (info)
                g_ptr_array_add(infos, info);
        }
        virDomainFree(doms[i]);
    }
    free(doms);
    if (local) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    return g_steal_pointer(&infos);
}

/* ---- statistics ----------------------------------------------------------------- */

static gboolean get_ullong(virTypedParameterPtr params, int nparams, const char *name,
                           guint64 *value)
{
    unsigned long long v = 0;

    if (virTypedParamsGetULLong(params, nparams, name, &v) != 1)
        return FALSE;
    *value = v;
    return TRUE;
}

static guint64 sum_disks(virTypedParameterPtr params, int nparams, guint disks, const char *field)
{
    guint64 total = 0;

    for (guint i = 0; i < disks; i++) {
        g_autofree char *key = g_strdup_printf("block.%u.%s", i, field);
        guint64 value = 0;
        if (get_ullong(params, nparams, key, &value))
            total += value;
    }
    return total;
}

void hv_machine_stats_parse(virTypedParameterPtr params, int nparams, HvMachineStats *stats)
{
    int state = -1;
    unsigned int vcpus = 0, disks = 0;
    guint64 rss = 0;

    g_return_if_fail(stats != NULL);
    *stats = (HvMachineStats){.state = HV_MACHINE_OTHER, .memory_rss_kib = -1};
    if (virTypedParamsGetInt(params, nparams, "state.state", &state) == 1)
        stats->state = state_from_libvirt(state);
    get_ullong(params, nparams, "cpu.time", &stats->cpu_time_ns);
    if (virTypedParamsGetUInt(params, nparams, "vcpu.current", &vcpus) == 1)
        stats->vcpus = vcpus;
    get_ullong(params, nparams, "balloon.current", &stats->memory_current_kib);
    get_ullong(params, nparams, "balloon.maximum", &stats->memory_maximum_kib);
    if (get_ullong(params, nparams, "balloon.rss", &rss))
        stats->memory_rss_kib = (gint64)rss;
    if (virTypedParamsGetUInt(params, nparams, "block.count", &disks) == 1) {
        stats->block_read_bytes = sum_disks(params, nparams, disks, "rd.bytes");
        stats->block_write_bytes = sum_disks(params, nparams, disks, "wr.bytes");
        stats->block_read_requests = sum_disks(params, nparams, disks, "rd.reqs");
        stats->block_write_requests = sum_disks(params, nparams, disks, "wr.reqs");
    }
}

gboolean hv_machine_get_stats(HvConn *conn_handle, const char *name, HvMachineStats *stats,
                              GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    const unsigned int groups = VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL |
                                VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_VCPU |
                                VIR_DOMAIN_STATS_BLOCK;
    virDomainStatsRecordPtr *records = NULL;

    g_return_val_if_fail(conn != NULL && name != NULL && stats != NULL, FALSE);
    g_autoptr(virDomain) dom = lookup(conn, name, error);
    if (!dom)
        return FALSE;
    virDomainPtr doms[] = {dom, NULL};
    /* NOWAIT: a stats request must not queue behind a migration's job. */
    int n = virDomainListGetStats(doms, groups, &records, VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT);
    if (n < 0) {
        set_libvirt_error(error, name, "get statistics of");
        return FALSE;
    }
    if (n == 0) {
        virDomainStatsRecordListFree(records);
        g_set_error(error, HV_ERROR, HV_ERROR_NOT_FOUND, "domain '%s' not found", name);
        return FALSE;
    }
    hv_machine_stats_parse(records[0]->params, records[0]->nparams, stats);
    virDomainStatsRecordListFree(records);
    return TRUE;
}

gboolean hv_machine_get_incoming_migration(HvConn *conn_handle, const char *name,
                                           HvMachineMigration *migration, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    memset(migration, 0, sizeof(*migration));
    virDomainPtr domain = virDomainLookupByName(conn, name);
    if (domain == NULL) {
        g_set_error(error, HV_ERROR, HV_ERROR_NOT_FOUND, "domain '%s' not found", name);
        return FALSE;
    }
    /* The running job first: a job that ends between the two reads has
     * left its completed figures for the second. */
    virDomainJobInfo current;
    if (virDomainGetJobInfo(domain, &current) == 0)
        migration->job_running = current.type != VIR_DOMAIN_JOB_NONE;
    else
        /* libvirt answers "migration statistics are available only on the
         * source host" while a migration is still coming in. */
        migration->job_running = virGetLastErrorCode() == VIR_ERR_OPERATION_UNSUPPORTED;
    int type = 0, n = 0;
    virTypedParameterPtr params = NULL;
    /* KEEP_COMPLETED: the source's turtled reads the same figures for its
     * operation; libvirt would drop them at the first read. */
    int rc =
        virDomainGetJobStats(domain, &type, &params, &n,
                             VIR_DOMAIN_JOB_STATS_COMPLETED | VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED);
    virDomainFree(domain);
    if (rc < 0) {
        g_set_error(error, HV_ERROR, HV_ERROR_LIBVIRT, "domain '%s': %s", name,
                    virGetLastErrorMessage());
        return FALSE;
    }
    int operation = 0;
    unsigned long long value = 0;
    if (type == VIR_DOMAIN_JOB_COMPLETED &&
        virTypedParamsGetInt(params, n, VIR_DOMAIN_JOB_OPERATION, &operation) == 1 &&
        operation == VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN) {
        migration->found = TRUE;
        if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_TIME_ELAPSED, &value) == 1)
            migration->total_ms = value;
        if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_DOWNTIME, &value) == 1)
            migration->downtime_ms = value;
        if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_DATA_PROCESSED, &value) == 1)
            migration->bytes = value;
    }
    virTypedParamsFree(params, n);
    return TRUE;
}

/* ---- hot-plug -------------------------------------------------------------------- */

/* Whether @id is among the devices of @dom's live (@flags 0) or persistent
 * (VIR_DOMAIN_XML_INACTIVE) definition.  FALSE with @error set on failure. */
static gboolean has_device(virDomainPtr dom, const char *id, unsigned int flags, gboolean *has,
                           GError **error)
{
    char *xml = virDomainGetXMLDesc(dom, flags);

    if (!xml) {
        set_libvirt_error(error, virDomainGetName(dom), "read the XML of");
        return FALSE;
    }
    g_autoptr(GPtrArray) ids = hv_domain_parse_device_ids(xml, error);
    free(xml);
    if (!ids)
        return FALSE;
    *has = g_ptr_array_find_with_equal_func(ids, id, g_str_equal, NULL);
    return TRUE;
}

gboolean hv_machine_attach_device(HvConn *conn_handle, const char *name, const HvDevice *device,
                                  GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_return_val_if_fail(conn != NULL && name != NULL && device != NULL, FALSE);

    g_autofree char *xml = hv_domain_device_xml(device, error);
    if (!xml)
        return FALSE;
    g_autoptr(virDomain) dom = lookup(conn, name, error);
    if (!dom)
        return FALSE;
    HvMachineState state = domain_state(dom, error);
    if (state == HV_MACHINE_ABSENT)
        return FALSE;
    gboolean active = state != HV_MACHINE_SHUTOFF;
    /* Attached already (a retried request): nothing to do. */
    gboolean live = FALSE, config = FALSE;
    if (!has_device(dom, device->id, VIR_DOMAIN_XML_INACTIVE, &config, error) ||
        (active && !has_device(dom, device->id, 0, &live, error)))
        return FALSE;
    if (config && (live || !active))
        return TRUE;

    unsigned int flags =
        (config ? 0 : VIR_DOMAIN_AFFECT_CONFIG) | (active && !live ? VIR_DOMAIN_AFFECT_LIVE : 0);
    if (virDomainAttachDeviceFlags(dom, xml, flags) == 0)
        return TRUE;
    g_autofree char *verb = g_strdup_printf("attach device '%s' to", device->id);
    set_libvirt_error(error, name, verb);
    return FALSE;
}

/* Polls the live XML until @id has left it; HV_ERROR_FAILED after @timeout_s. */
static gboolean wait_device_gone(virDomainPtr dom, const char *id, guint timeout_s, GError **error)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;

    for (;;) {
        gboolean has = FALSE;
        if (!has_device(dom, id, 0, &has, error))
            return FALSE;
        if (!has)
            return TRUE;
        if (g_get_monotonic_time() >= deadline) {
            g_set_error(error, HV_ERROR, HV_ERROR_FAILED,
                        "the guest of domain '%s' did not release device '%s' within %u s "
                        "(it may ignore PCIe hot-unplug requests); it is gone from the "
                        "configuration and leaves when the domain stops",
                        virDomainGetName(dom), id, timeout_s);
            return FALSE;
        }
        g_usleep(POLL_INTERVAL_MS * 1000);
    }
}

/* @id is an edu (QEMU passthrough) in the live or the persistent XML. */
static gboolean passthrough(virDomainPtr dom, const char *id)
{
    static const unsigned int flags[] = {0, VIR_DOMAIN_XML_INACTIVE};

    for (gsize i = 0; i < G_N_ELEMENTS(flags); i++) {
        char *xml = virDomainGetXMLDesc(dom, flags[i]);
        gboolean found = xml && hv_domain_device_is_passthrough(xml, id);
        free(xml);
        if (found)
            return TRUE;
    }
    return FALSE;
}

gboolean hv_machine_detach_device(HvConn *conn_handle, const char *name, const char *device_id,
                                  guint timeout_s, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_return_val_if_fail(conn != NULL && name != NULL && device_id != NULL, FALSE);

    g_autoptr(virDomain) dom = lookup(conn, name, error);
    if (!dom)
        return FALSE;
    HvMachineState state = domain_state(dom, error);
    if (state == HV_MACHINE_ABSENT)
        return FALSE;
    gboolean active = state != HV_MACHINE_SHUTOFF;
    gboolean live = FALSE, config = FALSE;
    if (!has_device(dom, device_id, VIR_DOMAIN_XML_INACTIVE, &config, error) ||
        (active && !has_device(dom, device_id, 0, &live, error)))
        return FALSE;
    if (!live && !config)
        return TRUE;

    g_autofree char *alias = g_strconcat(HV_DEVICE_ALIAS_PREFIX, device_id, NULL);
    unsigned int flags =
        (config ? VIR_DOMAIN_AFFECT_CONFIG : 0) | (live ? VIR_DOMAIN_AFFECT_LIVE : 0);
    /* For a live guest this only asks it to let go (libvirt waits a few
     * seconds itself, then returns anyway): the wait below is the answer. */
    if (virDomainDetachDeviceAlias(dom, alias, flags) != 0) {
        /* Taken first: the look below replaces libvirt's last error. */
        g_autofree char *verb = g_strdup_printf("detach device '%s' from", device_id);
        g_autoptr(GError) failure = libvirt_error(name, verb);
        if (passthrough(dom, device_id)) {
            g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                        "device '%s' of domain '%s' entered through QEMU command-line "
                        "passthrough, which libvirt cannot hot-unplug: stop the stack to change "
                        "it",
                        device_id, name);
            return FALSE;
        }
        g_propagate_error(error, g_steal_pointer(&failure));
        return FALSE;
    }
    return !live || wait_device_gone(dom, device_id, timeout_s, error);
}
