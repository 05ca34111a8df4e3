/* stack.migrate: a running stack moves to a peer with its L2 still running.
 *
 * The source drives it: preflight, the boot images the peer lacks copied
 * into its pool, overlays made there on them, then libvirt's peer-to-peer
 * live migration with the domain XML rewritten for the peer.  The stack is
 * "migrating" here meanwhile; the peer's turtled adopts the domain when it
 * arrives (the record travels in <metadata>); this host forgets the stack
 * only after the peer runs it.  On failure the stack keeps running here and
 * what was copied to the peer is removed. */

#include "api/json.h"
#include "api/peer.h"
#include "daemon/clock.h"
#include "daemon/connection.h"
#include "daemon/devices.h"
#include "daemon/error.h"
#include "daemon/log.h"
#include "daemon/networks.h"
#include "daemon/stacks.h"
#include "hvcore/domain.h"
#include "hvcore/error.h"
#include "hvcore/machine.h"
#include "hvcore/migrate.h"
#include "hvcore/storage.h"

/* Where a migration's wall time goes, phase by phase, for one log line
 * (see log_phases): what the breakdown of tests/bench/migrate reads. */
typedef enum {
    PHASE_QUEUED,    /* accepted, waiting for an operation thread */
    PHASE_CONNECT,   /* this host's and the peer's libvirt connections */
    PHASE_PREFLIGHT, /* state, devices, the peer's memory and CPU, networks checked */
    PHASE_PREPARE,   /* volumes listed, copied to the peer, overlays made there */
    PHASE_NETWORKS,  /* the stack's networks created on the peer */
    PHASE_XML,       /* the destination XML, the record, the NIC addresses */
    PHASE_LIBVIRT,   /* libvirt's migration call, from start to return */
    PHASE_RESULT,    /* the rest of hv_migrate_run: the completed job's figures */
    PHASE_FINISH,    /* this host's copies removed, the result recorded and announced */
    N_PHASES
} MigratePhase;

static const char *const phase_names[N_PHASES] = {
    "queued", "connect", "preflight", "prepare", "networks", "xml", "libvirt", "result", "finish",
};

typedef struct {
    gint64 mark;         /* monotonic µs: the end of the last phase */
    gint64 us[N_PHASES]; /* each phase's time */
} PhaseClock;

/* @phase ends now: it gets the time since the last mark. */
static void phase_end(PhaseClock *clock, MigratePhase phase)
{
    gint64 now = g_get_monotonic_time();
    clock->us[phase] += now - clock->mark;
    clock->mark = now;
}

typedef struct {
    App *app;
    char *stack_id;
    ApiPeer *peer;
    ApiStackState previous;
    gboolean started;
    PhaseClock clock; /* from the request's acceptance */
} MigrateJob;

static void job_free(gpointer data)
{
    MigrateJob *job = data;
    if (!job->started) {
        /* Cancelled before it ran: nothing moved. */
        stacks_restore_state(job->app, job->stack_id, STORE_STATE(API_STACK_STATE_MIGRATING),
                             job->previous, NULL);
        stacks_release(job->app, job->stack_id);
    }
    g_free(job->stack_id);
    api_peer_free(job->peer);
    g_free(job);
}

/* What the migration made on the peer, to remove if it fails. */
typedef struct {
    GPtrArray *images;   /* volume names copied into the peer's HV_POOL_IMAGES */
    GPtrArray *overlays; /* volume names created in the peer's HV_POOL_DISKS */
    GPtrArray *wholes;   /* volume names copied whole into the peer's HV_POOL_DISKS */
    GPtrArray *networks; /* ids of the networks defined on the peer for the stack */
} PeerLeftovers;

/* A volume that cannot be removed is logged: the peer's reconcile deletes
 * volumes no image or stack owns once they are old enough. */
static void leftover_remove(HvConn *dst, const char *peer, const char *pool, const char *volume)
{
    g_autoptr(GError) error = NULL;
    if (!hv_volume_delete(dst, pool, volume, &error) &&
        !g_error_matches(error, HV_ERROR, HV_ERROR_NOT_FOUND))
        g_warning("peer %s: volume %s/%s of a failed migration stays until the peer's "
                  "reconcile: %s",
                  peer, pool, volume, error->message);
}

static void leftovers_remove(HvConn *dst, const char *peer, PeerLeftovers *made)
{
    for (guint i = 0; i < made->overlays->len; i++)
        leftover_remove(dst, peer, HV_POOL_DISKS, g_ptr_array_index(made->overlays, i));
    for (guint i = 0; i < made->wholes->len; i++)
        leftover_remove(dst, peer, HV_POOL_DISKS, g_ptr_array_index(made->wholes, i));
    for (guint i = 0; i < made->images->len; i++)
        leftover_remove(dst, peer, HV_POOL_IMAGES, g_ptr_array_index(made->images, i));
    for (guint i = 0; i < made->networks->len; i++) {
        g_autoptr(GError) error = NULL;
        if (!hv_network_remove(dst, g_ptr_array_index(made->networks, i), &error))
            g_warning("peer %s: network %s of a failed migration stays until the peer's "
                      "reconcile: %s",
                      peer, (const char *)g_ptr_array_index(made->networks, i), error->message);
    }
}

typedef struct {
    OperationContext *context;
    const char *what;
} CopyProgress;

static void on_copy_progress(guint64 done, guint64 total, gpointer data)
{
    CopyProgress *copy = data;
    operation_progress(copy->context, 10, copy->what, (gint64)done, (gint64)total);
}

static void on_migrate_progress(const HvMigrateProgress *progress, gpointer data)
{
    /* Memory and disks move between 30 and 95 %. */
    int percent = 30 + progress->percent * 65 / 100;
    operation_progress(data, percent, progress->stage, (gint64)progress->bytes_done,
                       (gint64)progress->bytes_total);
}

/* Copies @volumes of @pool the peer lacks; @made gets those it copied. */
static gboolean copy_volumes(OperationContext *context, HvConn *src, HvConn *dst,
                             const ApiPeer *peer, const char *pool, GPtrArray *volumes,
                             GPtrArray *made, GError **error)
{
    for (guint i = 0; i < volumes->len; i++) {
        const char *volume = g_ptr_array_index(volumes, i);
        g_autofree char *what = g_strdup_printf("copying volume %s to %s", volume, peer->name);
        CopyProgress copy = {context, what};
        gboolean copied = FALSE;
        if (!hv_volume_copy(src, dst, pool, volume, on_copy_progress, &copy,
                            operation_cancellable(context), &copied, error))
            return FALSE;
        if (copied)
            g_ptr_array_add(made, g_strdup(volume));
    }
    return TRUE;
}

/* Copies the boot images the peer lacks and the volumes the stack uses
 * whole (UEFI variables, cloud-init seed), and makes the overlays there. */
static gboolean prepare_peer(OperationContext *context, HvConn *src, HvConn *dst,
                             const ApiStack *stack, const ApiPeer *peer, PeerLeftovers *made,
                             GError **error)
{
    g_autoptr(GPtrArray) images = NULL;
    g_autoptr(GPtrArray) overlays = NULL;
    g_autoptr(GPtrArray) wholes = NULL;
    if (!hv_migrate_list_volumes(src, stack->domain_name, &images, &overlays, &wholes, error) ||
        !copy_volumes(context, src, dst, peer, HV_POOL_IMAGES, images, made->images, error) ||
        !copy_volumes(context, src, dst, peer, HV_POOL_DISKS, wholes, made->wholes, error))
        return FALSE;
    /* A disk boot: overlays are made on the peer over the copied images, and
     * libvirt copies their blocks during the migration. */
    return hv_migrate_create_overlays(src, dst, overlays, made->overlays, error);
}

/* After success: this host's copies of the stack go, the row last. */
static void forget_here(App *app, HvConn *src, const ApiStack *stack)
{
    g_autoptr(GError) error = NULL;
    if (!stacks_remove_everything(app, src, stack, &error))
        g_warning("stack %s migrated, but its local remains stay: %s", stack->id, error->message);
}

static gboolean migrate_steps(OperationContext *context, App *app, HvConn *src, HvConn *dst,
                              const ApiStack *stack, const ApiPeer *peer, PeerLeftovers *made,
                              PhaseClock *clock, HvMigrateResult *result, GError **error)
{
    operation_progress(context, 5, "preflight", 0, 0);
    gboolean nested_state = app->host != NULL && app->host->nested_state_size > 0;
    if (!hv_migrate_preflight(src, dst, stack->domain_name, app->backend, nested_state, error) ||
        !networks_prepare_peer(app, dst, stack, FALSE, NULL, error))
        return FALSE;
    phase_end(clock, PHASE_PREFLIGHT);
    if (!prepare_peer(context, src, dst, stack, peer, made, error))
        return FALSE;
    phase_end(clock, PHASE_PREPARE);
    /* Its networks (same name, subnet, bridge) wait for it on the peer. */
    operation_progress(context, 22, "creating the stack's networks on the peer", 0, 0);
    if (!networks_prepare_peer(app, dst, stack, TRUE, made->networks, error))
        return FALSE;
    phase_end(clock, PHASE_NETWORKS);
    operation_progress(context, 25, "rewriting the domain for the peer", 0, 0);
    g_autofree char *console = NULL;
    g_autofree char *migratable =
        hv_migrate_destination_xml(src, dst, stack->domain_name, &console, error);
    if (migratable == NULL)
        return FALSE;
    /* The record as it is now: the peer adopts the NICs' addresses with it. */
    g_autoptr(json_object) record = api_stack_to_json(stack);
    g_autofree char *recorded = hv_domain_set_record(
        migratable, json_object_to_json_string_ext(record, JSON_C_TO_STRING_PLAIN), error);
    if (recorded == NULL)
        return FALSE;
    /* The peer's NIC filters learn nothing from DHCP until a renewal: they
     * are told the addresses the L1 has. */
    g_autoptr(GHashTable) ips = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < stack->spec->nics->len; i++) {
        const ApiStackNic *nic = g_ptr_array_index(stack->spec->nics, i);
        if (nic->ip != NULL)
            g_hash_table_insert(ips, nic->mac, nic->ip);
    }
    g_autofree char *xml = hv_domain_set_nic_ips(recorded, ips, error);
    if (xml == NULL)
        return FALSE;
    operation_progress(context, 30, "migrating", 0, 0);
    phase_end(clock, PHASE_XML);
    if (!hv_migrate_run(src, dst, stack->domain_name, peer->libvirt_uri, peer->migrate_uri, xml,
                        made->overlays->len > 0, on_migrate_progress, context,
                        operation_cancellable(context), result, error))
        return FALSE;
    /* Split by libvirt's call as hv_migrate_run measured it. */
    gint64 call_us = MIN((gint64)result->call_ms * 1000, g_get_monotonic_time() - clock->mark);
    clock->us[PHASE_LIBVIRT] += call_us;
    clock->mark += call_us;
    phase_end(clock, PHASE_RESULT);
    return TRUE;
}

/* One line at info level (G_MESSAGES_DEBUG=turtled-migrate shows it): each
 * phase's milliseconds and their sum, from the request's acceptance to the
 * end of the operation's work. */
#define PHASES_LOG_DOMAIN "turtled-migrate"

static void log_phases(const PhaseClock *clock, const ApiStack *stack, const char *peer,
                       gboolean ok)
{
    g_autoptr(GString) line = g_string_new(NULL);
    gint64 total = 0;
    for (int i = 0; i < N_PHASES; i++) {
        g_string_append_printf(line, " %s=%.1f", phase_names[i], (double)clock->us[i] / 1000.0);
        total += clock->us[i];
    }
    g_log(PHASES_LOG_DOMAIN, G_LOG_LEVEL_INFO,
          "stack %s/%s migration to %s %s, phases (ms):%s total=%.1f", stack->tenant,
          stack->spec->name, peer, ok ? "succeeded" : "failed", line->str, (double)total / 1000.0);
}

static gboolean migrate_body(OperationContext *context, gpointer data, GError **error)
{
    MigrateJob *job = data;
    App *app = job->app;
    job->started = TRUE;
    phase_end(&job->clock, PHASE_QUEUED);

    g_autoptr(ApiStack) stack = store_stack_get_by_id(app->store, job->stack_id, error);
    g_autoptr(HvConn) src = stack != NULL ? connection_get(app, error) : NULL;
    if (src == NULL) {
        stacks_restore_state(app, job->stack_id, STORE_STATE(API_STACK_STATE_MIGRATING),
                             job->previous, NULL);
        stacks_release(app, job->stack_id);
        return FALSE;
    }
    operation_progress(context, 2, "connecting to the peer", 0, 0);
    g_autoptr(GError) unreachable = NULL;
    HvConn *dst = hv_conn_open(job->peer->libvirt_uri, &unreachable);
    gboolean ok = FALSE;
    PeerLeftovers made = {
        g_ptr_array_new_with_free_func(g_free), g_ptr_array_new_with_free_func(g_free),
        g_ptr_array_new_with_free_func(g_free), g_ptr_array_new_with_free_func(g_free)};
    HvMigrateResult result = {0};
    phase_end(&job->clock, PHASE_CONNECT);
    if (dst == NULL) {
        g_set_error(error, TD_ERROR, TD_ERROR_UNAVAILABLE, "peer '%s' is unreachable (%s): %s",
                    job->peer->name, job->peer->libvirt_uri, unreachable->message);
    } else {
        ok = migrate_steps(context, app, src, dst, stack, job->peer, &made, &job->clock, &result,
                           error);
    }

    if (ok) {
        /* The domain runs on the peer: a cancel that came too late changes
         * nothing of that. */
        operation_passed_point_of_no_return(context, "the stack runs on the peer");
        forget_here(app, src, stack);
        g_autofree char *stage = g_strdup_printf(
            "migrated to %s in %.1f s, downtime %" G_GUINT64_FORMAT " ms, %.1f MiB moved",
            job->peer->name, (double)result.total_ms / 1000.0, result.downtime_ms,
            (double)result.bytes / (1024.0 * 1024.0));
        operation_progress(context, 100, stage, (gint64)result.bytes, (gint64)result.bytes);
        g_autofree char *downtime = g_strdup_printf("%" G_GUINT64_FORMAT, result.downtime_ms);
        const LogExtra figures[] = {
            {"TURTLES_PEER", job->peer->name},
            {"TURTLES_DOWNTIME_MS", downtime},
        };
        LogFields fields = {.message_id = LOG_MESSAGE_STACK_MIGRATED,
                            .tenant = stack->tenant,
                            .stack = stack->spec->name,
                            .extra = figures,
                            .n_extra = G_N_ELEMENTS(figures)};
        log_structured(G_LOG_LEVEL_MESSAGE, &fields, "stack %s/%s %s", stack->tenant,
                       stack->spec->name, stage);
        stack->state = API_STACK_STATE_MIGRATING;
        stacks_publish_lifecycle(app, stack, "migrated-out");
    } else {
        if (dst != NULL)
            leftovers_remove(dst, job->peer->name, &made);
        /* The stack keeps running here: its state is what libvirt says. */
        HvMachineState machine = hv_machine_get_state(src, stack->domain_name, NULL);
        ApiStackState state = machine == HV_MACHINE_PAUSED    ? API_STACK_STATE_PAUSED
                              : machine == HV_MACHINE_RUNNING ? API_STACK_STATE_RUNNING
                                                              : job->previous;
        stacks_restore_state(app, stack->id, STORE_STATE(API_STACK_STATE_MIGRATING), state, NULL);
        if (error != NULL && *error != NULL && (*error)->domain == HV_ERROR &&
            !g_error_matches(*error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            connection_failed(app, src, error);
    }
    hv_conn_unref(dst);
    g_ptr_array_unref(made.images);
    g_ptr_array_unref(made.overlays);
    g_ptr_array_unref(made.wholes);
    g_ptr_array_unref(made.networks);
    stacks_count_migration(app, ok,
                           !ok && g_error_matches(*error, G_IO_ERROR, G_IO_ERROR_CANCELLED),
                           result.downtime_ms);
    stacks_release(app, job->stack_id);
    phase_end(&job->clock, PHASE_FINISH);
    log_phases(&job->clock, stack, job->peer->name, ok);
    return ok;
}

ApiOperation *stacks_migrate(App *app, const char *tenant, const char *name, const char *peer_name,
                             GError **error)
{
    g_autoptr(ApiPeer) peer = store_peer_get(app->store, peer_name, error);
    if (peer == NULL)
        return NULL;
    g_autoptr(ApiStack) stack = stacks_claim(app, tenant, name, error);
    if (stack == NULL)
        return NULL;
    if (stack->state != API_STACK_STATE_RUNNING && stack->state != API_STACK_STATE_PAUSED) {
        stacks_release(app, stack->id);
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                    "cannot migrate a stack that is %s: only a running or paused one moves live",
                    api_stack_state_to_string(stack->state));
        return NULL;
    }
    if (!devices_check_migratable(stack, error)) {
        stacks_release(app, stack->id);
        return NULL;
    }
    MigrateJob *job = g_new0(MigrateJob, 1);
    job->app = app;
    job->stack_id = g_strdup(stack->id);
    job->peer = g_steal_pointer(&peer);
    job->previous = stack->state;
    job->clock.mark = g_get_monotonic_time();
    if (!stacks_set_state(app, stack->id,
                          STORE_STATE(API_STACK_STATE_RUNNING) |
                              STORE_STATE(API_STACK_STATE_PAUSED),
                          API_STACK_STATE_MIGRATING, NULL, error)) {
        job->started = TRUE; /* nothing to undo */
        stacks_release(app, stack->id);
        job_free(job);
        return NULL;
    }
    g_autofree char *target = g_strdup_printf("stacks/%s", name);
    /* A submit that fails frees the job, which puts the state back. */
    return operations_submit(app->operations, "stack.migrate", target, tenant, migrate_body, job,
                             job_free, error);
}
