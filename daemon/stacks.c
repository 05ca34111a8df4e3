/* Stacks on libvirt: operations, lifecycle events, reconcile. */
#include "daemon/stacks.h"

#include <errno.h>
#include <stdlib.h>
#include <glib/gstdio.h>

#include "api/json.h"
#include "daemon/clock.h"
#include "daemon/connection.h"
#include "daemon/convert.h"
#include "daemon/devices.h"
#include "daemon/error.h"
#include "daemon/images.h"
#include "daemon/log.h"
#include "daemon/networks.h"
#include "daemon/seed.h"
#include "hvcore/domain.h"
#include "hvcore/firmware.h"
#include "hvcore/error.h"
#include "hvcore/machine.h"
#include "hvcore/storage.h"

struct Stacks {
    GMutex lock;
    GHashTable *outgoing;        /* stack id -> TRUE while a migration out is watched */
    GHashTable *busy;            /* stack id -> TRUE while an operation works on it */
    StacksMigrations migrations; /* since start, for /metrics */
};

Stacks *stacks_new(App *app)
{
    (void)app;
    Stacks *stacks = g_new0(Stacks, 1);
    g_mutex_init(&stacks->lock);
    stacks->busy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    stacks->outgoing = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return stacks;
}

void stacks_free(Stacks *stacks)
{
    if (stacks == NULL)
        return;
    g_hash_table_destroy(stacks->busy);
    g_hash_table_destroy(stacks->outgoing);
    g_mutex_clear(&stacks->lock);
    g_free(stacks);
}

/* Claims @id for one operation; FALSE when another holds it. */
static gboolean claim(Stacks *stacks, const char *id)
{
    g_mutex_lock(&stacks->lock);
    gboolean free_now = !g_hash_table_contains(stacks->busy, id);
    if (free_now)
        g_hash_table_add(stacks->busy, g_strdup(id));
    g_mutex_unlock(&stacks->lock);
    return free_now;
}

static void release(Stacks *stacks, const char *id)
{
    g_mutex_lock(&stacks->lock);
    g_hash_table_remove(stacks->busy, id);
    g_mutex_unlock(&stacks->lock);
}

void stacks_release(App *app, const char *id)
{
    release(app->stacks, id);
}

void stacks_count_migration(App *app, gboolean ok, gboolean cancelled, guint64 downtime_ms)
{
    StacksMigrations *migrations = &app->stacks->migrations;
    g_mutex_lock(&app->stacks->lock);
    if (ok) {
        migrations->succeeded++;
        migrations->downtime_known = TRUE;
        migrations->last_downtime_seconds = (double)downtime_ms / 1000.0;
    } else if (cancelled) {
        migrations->cancelled++;
    } else {
        migrations->failed++;
    }
    g_mutex_unlock(&app->stacks->lock);
}

void stacks_migrations(App *app, StacksMigrations *migrations)
{
    g_mutex_lock(&app->stacks->lock);
    *migrations = app->stacks->migrations;
    g_mutex_unlock(&app->stacks->lock);
}

char *stacks_console_path(App *app, const char *stack_id)
{
    g_autofree char *file = g_strdup_printf("%s.log", stack_id);
    return g_build_filename(app->console_dir, file, NULL);
}

static char *overlay_name(const char *stack_id)
{
    return g_strdup_printf("%s.qcow2", stack_id);
}

/* The UEFI variables of a stack: libvirt copies the firmware's template
 * there at its first start; a volume of the disks pool from then on. */
static char *nvram_name(const char *stack_id)
{
    return g_strdup_printf("%s.nvram", stack_id);
}

static char *nvram_path(App *app, const char *stack_id)
{
    g_autofree char *dir = hv_storage_pool_dir(app->config->state_dir, HV_POOL_DISKS);
    g_autofree char *name = nvram_name(stack_id);
    return g_build_filename(dir, name, NULL);
}

static gboolean is_uefi(const ApiStackSpec *spec)
{
    return g_strcmp0(spec->firmware, "uefi") == 0;
}

gboolean stacks_set_state(App *app, const char *id, guint from, ApiStackState state,
                          const char *message, GError **error)
{
    g_autofree char *now = clock_now_rfc3339();
    return store_stack_set_state(app->store, id, from, state, message, now, error);
}

void stacks_restore_state(App *app, const char *id, guint from, ApiStackState state,
                          const char *message)
{
    g_autoptr(GError) error = NULL;
    if (!stacks_set_state(app, id, from, state, message, &error))
        g_warning("stack %s: cannot put it back to %s: %s; reconcile sets it from libvirt at the "
                  "next start or reconnection",
                  id, api_stack_state_to_string(state), error->message);
}

void stacks_publish_lifecycle(App *app, const ApiStack *stack, const char *what)
{
    json_object *data = json_object_new_object();
    json_object_object_add(data, "stack", api_stack_to_json(stack));
    json_object_object_add(data, "event", json_object_new_string(what));
    event_bus_publish(app->events, "lifecycle", stack->tenant, data);
    json_object_put(data);
}

/* ---- removal: shared by delete, a failed create, and reconcile ------------------ */

/* Removes the domain, the volumes (overlay, UEFI variables, seed) and the
 * console log of @stack, then its row: each step is idempotent, so an
 * interrupted removal can run again. */
gboolean stacks_remove_everything(App *app, HvConn *conn, const ApiStack *stack, GError **error)
{
    g_autofree char *console = stacks_console_path(app, stack->id);
    char *(*const volume_of[])(const char *) = {overlay_name, nvram_name, seed_volume_name};

    if (!hv_machine_remove(conn, stack->domain_name, error))
        return FALSE;
    /* libvirt writes the UEFI variables behind the pool's back (and keeps
     * them when a migration undefines the domain here): a refresh makes
     * them a volume that can be deleted. */
    g_autoptr(GError) refresh = NULL;
    if (is_uefi(stack->spec) && !hv_pool_refresh(conn, HV_POOL_DISKS, &refresh))
        g_debug("cannot refresh pool %s: %s", HV_POOL_DISKS, refresh->message);
    for (gsize i = 0; i < G_N_ELEMENTS(volume_of); i++) {
        g_autofree char *volume = volume_of[i](stack->id);
        g_autoptr(GError) local = NULL;
        if (!hv_volume_delete(conn, HV_POOL_DISKS, volume, &local) &&
            !g_error_matches(local, HV_ERROR, HV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
    }
    if (g_unlink(console) != 0 && errno != ENOENT) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "cannot remove %s: %s", console,
                    g_strerror(errno));
        return FALSE;
    }
    return store_stack_delete(app->store, stack->id, error);
}

/* ---- create -------------------------------------------------------------------- */

typedef struct {
    App *app;
    char *stack_id;
    char *action;           /* actions only */
    gboolean started;       /* the body ran: free_job must not undo */
    ApiStackState previous; /* delete: the state to go back to if never run */
} StackJob;

static StackJob *job_new(App *app, const char *stack_id, const char *action)
{
    StackJob *job = g_new0(StackJob, 1);
    job->app = app;
    job->stack_id = g_strdup(stack_id);
    job->action = g_strdup(action);
    return job;
}

static void job_free(StackJob *job)
{
    g_free(job->stack_id);
    g_free(job->action);
    g_free(job);
}

static char *image_path(App *app, const ApiStack *stack, const char *name, ApiImageKind kind,
                        GError **error)
{
    char *path = NULL;
    g_autoptr(ApiImage) image = images_get_ready(app, stack->tenant, name, kind, &path, error);
    return image != NULL ? path : NULL;
}

/* The domain XML of @stack, its boot files resolved; @overlay is the disk
 * for a disk boot, @seed the cloud-init seed's volume (or NULL). */
static char *domain_xml(App *app, const ApiStack *stack, const char *overlay, const char *seed,
                        GError **error)
{
    const ApiStackSpec *spec = stack->spec;
    g_autoptr(HvStackSpec) hv = convert_stack_spec(stack);

    if (spec->boot_kernel != NULL) {
        hv->kernel_path = image_path(app, stack, spec->boot_kernel, API_IMAGE_KIND_KERNEL, error);
        if (hv->kernel_path == NULL)
            return NULL;
        if (spec->boot_initrd != NULL) {
            hv->initrd_path =
                image_path(app, stack, spec->boot_initrd, API_IMAGE_KIND_INITRD, error);
            if (hv->initrd_path == NULL)
                return NULL;
        }
    } else {
        hv->disk_path = g_strdup(overlay);
        hv->disk_format = g_strdup("qcow2");
    }
    g_autoptr(GPtrArray) nics = networks_stack_nics(app, stack, error);
    if (nics == NULL)
        return NULL;
    for (guint i = 0; i < nics->len; i++)
        g_ptr_array_add(hv->nics, g_steal_pointer(&g_ptr_array_index(nics, i)));
    if (is_uefi(spec))
        hv->nvram_path = nvram_path(app, stack->id);
    hv->seed_path = g_strdup(seed);
    hv->console_log = stacks_console_path(app, stack->id);
    g_autoptr(json_object) record = api_stack_to_json(stack);
    hv->record_json = g_strdup(json_object_to_json_string_ext(record, JSON_C_TO_STRING_PLAIN));

    g_autoptr(GError) local = NULL;
    char *xml = hv_domain_build_xml(hv, app->backend, app->host, &local);
    if (xml == NULL)
        g_set_error_literal(error, TD_ERROR, TD_ERROR_BAD_REQUEST, local->message);
    return xml;
}

static gboolean check_cancelled(OperationContext *context, GError **error)
{
    return !g_cancellable_set_error_if_cancelled(operation_cancellable(context), error);
}

static gboolean create_steps(OperationContext *context, App *app, HvConn *conn,
                             const ApiStack *stack, GError **error)
{
    g_autofree char *overlay = NULL;

    if (stack->spec->boot_disk != NULL) {
        operation_progress(context, 10, "creating the disk overlay", 0, 0);
        g_autofree char *backing = NULL;
        g_autoptr(ApiImage) image = images_get_ready(app, stack->tenant, stack->spec->boot_disk,
                                                     API_IMAGE_KIND_DISK, &backing, error);
        if (image == NULL)
            return FALSE;
        g_autofree char *name = overlay_name(stack->id);
        overlay = hv_volume_create_overlay(conn, HV_POOL_DISKS, name, backing,
                                           api_image_format_to_string(image->format), error);
        if (overlay == NULL)
            return FALSE;
    }
    g_autofree char *seed = NULL;
    if (stack->spec->cloud_init != NULL) {
        operation_progress(context, 25, "writing the cloud-init seed", 0, 0);
        if (!check_cancelled(context, error) || !seed_create(conn, stack, &seed, error))
            return FALSE;
    }
    if (!check_cancelled(context, error))
        return FALSE;
    operation_progress(context, 40, "defining the domain", 0, 0);
    g_autofree char *xml = domain_xml(app, stack, overlay, seed, error);
    if (xml == NULL || !hv_machine_define(conn, xml, error) || !check_cancelled(context, error))
        return FALSE;
    if (stack->spec->start) {
        operation_progress(context, 70, "starting the L1", 0, 0);
        if (!hv_machine_start(conn, stack->domain_name, error))
            return FALSE;
    }
    /* Up to here a cancel rolls everything back; from here the stack is made. */
    if (!operation_point_of_no_return(context, "the stack is created", error) ||
        !stacks_set_state(app, stack->id, STORE_STATE(API_STACK_STATE_PROVISIONING),
                          stack->spec->start ? API_STACK_STATE_RUNNING : API_STACK_STATE_STOPPED,
                          NULL, error))
        return FALSE;
    operation_progress(context, 100,
                       stack->spec->start ? "the L1 is running" : "defined, not started", 0, 0);
    return TRUE;
}

static gboolean create_body(OperationContext *context, gpointer data, GError **error)
{
    StackJob *job = data;
    App *app = job->app;
    job->started = TRUE;

    g_autoptr(ApiStack) stack = store_stack_get_by_id(app->store, job->stack_id, error);
    g_autoptr(HvConn) conn = stack != NULL ? connection_get(app, error) : NULL;
    gboolean ok = conn != NULL && create_steps(context, app, conn, stack, error);
    if (!ok && conn != NULL) {
        if (error != NULL && *error != NULL && (*error)->domain == HV_ERROR)
            connection_failed(app, conn, error);
        /* A failed or cancelled create leaves nothing: the tenant sees why in
         * the operation.  When that fails, something is left: the operation
         * fails (never "cancelled"), the stack shows error, reconcile retries. */
        g_autoptr(GError) cleanup = NULL;
        if (!stacks_remove_everything(app, conn, stack, &cleanup)) {
            g_warning("stack %s (%s/%s): cannot roll back a failed create, left in error: %s",
                      stack->id, stack->tenant, stack->spec->name, cleanup->message);
            stacks_restore_state(app, stack->id, STORE_STATE(API_STACK_STATE_PROVISIONING),
                                 API_STACK_STATE_ERROR, cleanup->message);
            g_autoptr(GError) cause = g_steal_pointer(error);
            g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL,
                        "%s; rolling back failed, the stack is left in error: %s", cause->message,
                        cleanup->message);
        }
    } else if (!ok && stack != NULL) {
        /* libvirt unreachable: nothing was made there; the row goes. */
        g_autoptr(GError) cleanup = NULL;
        if (!store_stack_delete(app->store, stack->id, &cleanup))
            g_warning("stack %s (%s/%s): its row stays provisioning until the next reconcile: %s",
                      stack->id, stack->tenant, stack->spec->name, cleanup->message);
    }
    if (ok) {
        LogFields fields = {.message_id = LOG_MESSAGE_STACK_CREATED,
                            .tenant = stack->tenant,
                            .stack = stack->spec->name};
        log_structured(G_LOG_LEVEL_MESSAGE, &fields, "stack %s/%s created (%s, %s)", stack->tenant,
                       stack->spec->name, stack->id,
                       stack->spec->start ? "running" : "not started");
    }
    release(app->stacks, job->stack_id);
    return ok;
}

/* A create cancelled before it ran made nothing but the row. */
static void create_job_free(gpointer data)
{
    StackJob *job = data;
    if (!job->started) {
        g_autoptr(GError) error = NULL;
        if (!store_stack_delete(job->app->store, job->stack_id, &error))
            g_warning("stack %s: a cancelled create's row stays provisioning until the next "
                      "reconcile: %s",
                      job->stack_id, error->message);
        release(job->app->stacks, job->stack_id);
    }
    job_free(job);
}

static gboolean check_quota(Store *store, const char *tenant, const ApiStackSpec *spec,
                            GError **error)
{
    gint64 stacks = 0, vcpus = 0, memory = 0, disk = 0;
    g_autoptr(ApiTenant) owner = store_tenant_get(store, tenant, error);
    if (owner == NULL || !store_tenant_usage(store, tenant, &stacks, &vcpus, &memory, &disk, error))
        return FALSE;
    const ApiQuota *quota = &owner->quota;
    const char *what = NULL;
    gint64 used = 0, limit = 0, asked = 0;
    if (stacks + 1 > quota->stacks)
        what = "stacks", used = stacks, limit = quota->stacks, asked = 1;
    else if (vcpus + spec->vcpus > quota->vcpus)
        what = "vcpus", used = vcpus, limit = quota->vcpus, asked = spec->vcpus;
    else if (memory + spec->memory_mib > quota->memory_mib)
        what = "memory_mib", used = memory, limit = quota->memory_mib, asked = spec->memory_mib;
    if (what == NULL && spec->devices->len > 0) {
        gint64 devices = store_tenant_devices_in_use(store, tenant, error);
        if (devices < 0)
            return FALSE;
        if (devices + spec->devices->len > quota->devices)
            what = "devices", used = devices, limit = quota->devices, asked = spec->devices->len;
    }
    if (what == NULL)
        return TRUE;
    g_set_error(error, TD_ERROR, TD_ERROR_QUOTA_EXCEEDED,
                "quota exceeded: %s would be %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                " (%" G_GINT64_FORMAT " in use, %" G_GINT64_FORMAT " asked)",
                what, used + asked, limit, used, asked);
    return FALSE;
}

/* Every image the spec names must be ready and of its kind; answers before
 * anything is persisted. */
static gboolean check_images(App *app, const char *tenant, const ApiStackSpec *spec,
                             GPtrArray *names, GError **error)
{
    const struct {
        const char *field;
        const char *name;
        ApiImageKind kind;
    } wanted[] = {
        {"boot.kernel", spec->boot_kernel, API_IMAGE_KIND_KERNEL},
        {"boot.initrd", spec->boot_initrd, API_IMAGE_KIND_INITRD},
        {"boot.disk", spec->boot_disk, API_IMAGE_KIND_DISK},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(wanted); i++) {
        if (wanted[i].name == NULL)
            continue;
        g_autofree char *path = NULL;
        g_autoptr(GError) local = NULL;
        g_autoptr(ApiImage) image =
            images_get_ready(app, tenant, wanted[i].name, wanted[i].kind, &path, &local);
        if (image == NULL) {
            /* A name in the body that names nothing is a bad request, not a missing URL. */
            int code = g_error_matches(local, TD_ERROR, TD_ERROR_NOT_FOUND) ? TD_ERROR_BAD_REQUEST
                                                                            : local->code;
            g_set_error(error, TD_ERROR, code, "%s: %s", wanted[i].field, local->message);
            return FALSE;
        }
        g_ptr_array_add(names, g_strdup(wanted[i].name));
    }
    g_ptr_array_add(names, NULL);
    return TRUE;
}

/* UEFI (and secure boot) only where this host's QEMU has the firmware. */
static gboolean check_firmware(App *app, const ApiStackSpec *spec, GError **error)
{
    if (!is_uefi(spec))
        return TRUE;
    g_autoptr(HvConn) conn = connection_get(app, error);
    if (conn == NULL)
        return FALSE;
    if (hv_firmware_check(conn, app->backend, HV_FIRMWARE_UEFI, spec->secure_boot, error))
        return TRUE;
    connection_failed(app, conn, error);
    return FALSE;
}

typedef struct {
    ApiStack *stack;
    GPtrArray *images;
} NewStack;

/* The quota check and the row that reserves the stack's share are one
 * transaction: concurrent creates cannot overrun the quota together. */
static gboolean insert_within_quota(Store *store, gpointer data, GError **error)
{
    NewStack *new = data;
    return check_quota(store, new->stack->tenant, new->stack->spec, error) &&
           store_stack_insert(store, new->stack, (const char *const *)new->images->pdata, error) &&
           devices_claim_for_stack(store, new->stack, error);
}

ApiOperation *stacks_create(App *app, const char *tenant, ApiStackSpec *spec, ApiStack **stack_out,
                            GError **error)
{
    g_autoptr(ApiStack) stack = api_stack_new(spec);
    g_autoptr(GPtrArray) images = g_ptr_array_new_with_free_func(g_free);

    /* Everything hvcore would refuse is refused here, before anything is made. */
    networks_assign_macs(stack->spec);
    if (!devices_resolve_classes(app, stack->spec, error) ||
        !convert_validate_stack_spec(stack->spec, app->backend, app->host, error) ||
        !networks_check_nics(app, tenant, stack->spec, error) ||
        !check_firmware(app, stack->spec, error))
        return NULL;
    if (!check_images(app, tenant, stack->spec, images, error))
        return NULL;

    stack->id = g_uuid_string_random();
    stack->tenant = g_strdup(tenant);
    stack->state = API_STACK_STATE_PROVISIONING;
    stack->host = g_strdup(g_get_host_name());
    stack->backend = g_strdup(hv_backend_to_string(app->backend));
    stack->created_at = clock_now_rfc3339();
    stack->updated_at = g_strdup(stack->created_at);
    stack->domain_name = hv_domain_name_for(stack->id);

    NewStack new = {stack, images};
    if (!store_transaction(app->store, insert_within_quota, &new, error))
        return NULL;

    claim(app->stacks, stack->id);
    g_autofree char *target = g_strdup_printf("stacks/%s", stack->spec->name);
    ApiOperation *operation =
        operations_submit(app->operations, "stack.create", target, tenant, create_body,
                          job_new(app, stack->id, NULL), create_job_free, error);
    /* A submit that fails frees the job, which removes the row. */
    if (operation == NULL)
        return NULL;
    *stack_out = g_steal_pointer(&stack);
    return operation;
}

/* ---- delete -------------------------------------------------------------------- */

static gboolean delete_body(OperationContext *context, gpointer data, GError **error)
{
    StackJob *job = data;
    App *app = job->app;
    job->started = TRUE;

    /* Nothing removed can come back: a cancel either comes first and the
     * stack is as it was, or is too late. */
    if (!operation_point_of_no_return(context, "the stack is being removed", error)) {
        stacks_restore_state(app, job->stack_id, STORE_STATE(API_STACK_STATE_DELETING),
                             job->previous, NULL);
        release(app->stacks, job->stack_id);
        return FALSE;
    }
    g_autoptr(ApiStack) stack = store_stack_get_by_id(app->store, job->stack_id, error);
    g_autoptr(HvConn) conn = stack != NULL ? connection_get(app, error) : NULL;
    gboolean ok = FALSE;
    if (conn != NULL) {
        operation_progress(context, 30, "removing the domain, disk and console log", 0, 0);
        ok = stacks_remove_everything(app, conn, stack, error);
        if (ok) {
            operation_progress(context, 100, "removed", 0, 0);
            LogFields fields = {.message_id = LOG_MESSAGE_STACK_DELETED,
                                .tenant = stack->tenant,
                                .stack = stack->spec->name};
            log_structured(G_LOG_LEVEL_MESSAGE, &fields, "stack %s/%s deleted (%s)", stack->tenant,
                           stack->spec->name, stack->id);
        }
        if (!ok && (*error)->domain == HV_ERROR)
            connection_failed(app, conn, error);
    }
    /* A failed delete stays "deleting": the tenant may retry, and the next
     * reconcile finishes it. */
    release(app->stacks, job->stack_id);
    return ok;
}

static void delete_job_free(gpointer data)
{
    StackJob *job = data;
    if (!job->started) {
        stacks_restore_state(job->app, job->stack_id, STORE_STATE(API_STACK_STATE_DELETING),
                             job->previous, NULL);
        release(job->app->stacks, job->stack_id);
    }
    job_free(job);
}

ApiStack *stacks_claim(App *app, const char *tenant, const char *name, GError **error)
{
    g_autoptr(ApiStack) stack = store_stack_get(app->store, tenant, name, error);
    if (stack == NULL)
        return NULL;
    /* Work that needs libvirt is refused while it is away, not queued to fail. */
    g_autoptr(HvConn) conn = connection_get(app, error);
    if (conn == NULL)
        return NULL;
    if (!claim(app->stacks, stack->id)) {
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                    "stack '%s' is busy: another operation is working on it", name);
        return NULL;
    }
    return g_steal_pointer(&stack);
}

typedef struct {
    const char *id;
    const Precondition *precondition;
    ApiStackState previous; /* out: the state it leaves */
} DeleteMark;

/* One transaction: the precondition holds for the stack as it turns
 * deleting (a lifecycle event between a check and the update would change
 * what the caller agreed to delete). */
static gboolean mark_deleting(Store *store, gpointer data, GError **error)
{
    DeleteMark *mark = data;
    g_autoptr(ApiStack) stack = store_stack_get_by_id(store, mark->id, error);
    g_autofree char *now = clock_now_rfc3339();
    if (stack == NULL || !precondition_holds(mark->precondition, stack, error))
        return FALSE;
    mark->previous = stack->state;
    return store_stack_set_state(store, mark->id,
                                 STACKS_SETTLED | STORE_STATE(API_STACK_STATE_DELETING),
                                 API_STACK_STATE_DELETING, NULL, now, error);
}

ApiOperation *stacks_delete(App *app, const char *tenant, const char *name,
                            const Precondition *precondition, GError **error)
{
    g_autoptr(ApiStack) stack = stacks_claim(app, tenant, name, error);
    if (stack == NULL)
        return NULL;
    if (stack->state == API_STACK_STATE_MIGRATING) {
        release(app->stacks, stack->id);
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "cannot delete a stack that is migrating");
        return NULL;
    }
    StackJob *job = job_new(app, stack->id, NULL);
    g_autofree char *target = g_strdup_printf("stacks/%s", name);
    DeleteMark mark = {stack->id, precondition, stack->state};
    gboolean marked = store_transaction(app->store, mark_deleting, &mark, error);
    job->previous = mark.previous;
    if (!marked) {
        job_free(job);
        release(app->stacks, stack->id);
        return NULL;
    }
    /* A submit that fails frees the job, which puts the state back. */
    return operations_submit(app->operations, "stack.delete", target, tenant, delete_body, job,
                             delete_job_free, error);
}

/* ---- actions ------------------------------------------------------------------- */

static gboolean action_steps(OperationContext *context, App *app, HvConn *conn,
                             const ApiStack *stack, const char *action, GError **error)
{
    const char *domain = stack->domain_name;
    ApiStackState target = API_STACK_STATE_RUNNING;
    gboolean ok = FALSE;

    if (g_str_equal(action, "start")) {
        operation_progress(context, 30, "starting the L1", 0, 0);
        ok = hv_machine_start(conn, domain, error);
    } else if (g_str_equal(action, "stop")) {
        g_autofree char *stage = g_strdup_printf(
            "pressed the ACPI power button; waiting up to %u s for the L1 to shut down",
            app->stop_timeout);
        gboolean forced = FALSE;
        operation_progress(context, 30, stage, 0, 0);
        ok = hv_machine_stop(conn, domain, app->stop_timeout, operation_cancellable(context),
                             &forced, error);
        if (ok && forced) {
            g_autofree char *note = g_strdup_printf(
                "forced off: the L1 ignored the ACPI power button for %u s", app->stop_timeout);
            operation_progress(context, 100, note, 0, 0);
        }
        target = API_STACK_STATE_STOPPED;
    } else if (g_str_equal(action, "force-stop")) {
        ok = hv_machine_force_stop(conn, domain, error);
        target = API_STACK_STATE_STOPPED;
    } else if (g_str_equal(action, "reboot")) {
        ok = hv_machine_reboot(conn, domain, error);
    } else if (g_str_equal(action, "pause")) {
        ok = hv_machine_pause(conn, domain, error);
        target = API_STACK_STATE_PAUSED;
    } else if (g_str_equal(action, "resume")) {
        ok = hv_machine_resume(conn, domain, error);
    }
    /* Lifecycle events may have recorded the new state already; an error
     * (a crash meanwhile) is left for them to report. */
    return ok && stacks_set_state(app, stack->id, STACKS_SETTLED, target, NULL, error);
}

static gboolean action_body(OperationContext *context, gpointer data, GError **error)
{
    StackJob *job = data;
    App *app = job->app;
    job->started = TRUE;

    /* A graceful stop waits for the L1 and can be cancelled while it does
     * (the L1 was only asked); every other action is one libvirt call that
     * cannot be undone once made. */
    if (!g_str_equal(job->action, "stop") &&
        !operation_point_of_no_return(context, "the action was sent to libvirt", error)) {
        release(app->stacks, job->stack_id);
        return FALSE;
    }
    g_autoptr(ApiStack) stack = store_stack_get_by_id(app->store, job->stack_id, error);
    g_autoptr(HvConn) conn = stack != NULL ? connection_get(app, error) : NULL;
    gboolean ok = conn != NULL && action_steps(context, app, conn, stack, job->action, error);
    if (!ok && conn != NULL && (*error)->domain == HV_ERROR)
        connection_failed(app, conn, error);
    release(app->stacks, job->stack_id);
    return ok;
}

static void action_job_free(gpointer data)
{
    StackJob *job = data;
    if (!job->started)
        release(job->app->stacks, job->stack_id);
    job_free(job);
}

ApiOperation *stacks_action(App *app, const char *tenant, const char *name, const char *action,
                            GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(ApiStack) stack = stacks_claim(app, tenant, name, error);
    if (stack == NULL)
        return NULL;
    if (!api_stack_action_allowed(stack->state, action, &local)) {
        release(app->stacks, stack->id);
        /* The action was decoded already: what is left is the state's refusal. */
        g_set_error_literal(error, TD_ERROR, TD_ERROR_CONFLICT, local->message);
        return NULL;
    }
    g_autofree char *kind = g_strdup_printf("stack.%s", action);
    g_autofree char *target = g_strdup_printf("stacks/%s", name);
    ApiOperation *operation =
        operations_submit(app->operations, kind, target, tenant, action_body,
                          job_new(app, stack->id, action), action_job_free, error);
    /* A submit that fails frees the job, which releases the stack. */
    return operation;
}

/* ---- lifecycle events ---------------------------------------------------------- */

static void adopt_incoming(App *app, const HvLifecycleEvent *event);
#define LATE_ADOPTION_S 2

/* The state an event puts a stack in; FALSE when it changes nothing.  A
 * crash or a QEMU failure is an error with its reason. */
static gboolean state_for_event(const HvLifecycleEvent *event, ApiStackState *state,
                                const char **reason)
{
    *reason = NULL;
    switch (event->what) {
    case HV_LIFECYCLE_STARTED:
    case HV_LIFECYCLE_RESUMED:
        *state = API_STACK_STATE_RUNNING;
        return TRUE;
    case HV_LIFECYCLE_SUSPENDED:
        *state = API_STACK_STATE_PAUSED;
        return TRUE;
    case HV_LIFECYCLE_STOPPED:
        if (event->stop_reason == HV_STOP_CRASHED) {
            *state = API_STACK_STATE_ERROR;
            *reason = "the L1 crashed";
        } else if (event->stop_reason == HV_STOP_FAILED) {
            *state = API_STACK_STATE_ERROR;
            *reason = "QEMU failed while running the L1";
        } else {
            *state = API_STACK_STATE_STOPPED;
        }
        return TRUE;
    case HV_LIFECYCLE_CRASHED:
        *state = API_STACK_STATE_ERROR;
        *reason = "the L1 crashed (guest panic)";
        return TRUE;
    case HV_LIFECYCLE_UNDEFINED:
        *state = API_STACK_STATE_ERROR;
        *reason = "the domain was undefined outside turtled";
        return TRUE;
    default:
        return FALSE;
    }
}

static char *stack_id_of_domain(const char *domain_name)
{
    if (!g_str_has_prefix(domain_name, HV_DOMAIN_NAME_PREFIX))
        return NULL;
    const char *id = domain_name + strlen(HV_DOMAIN_NAME_PREFIX);
    return g_uuid_string_is_valid(id) ? g_strdup(id) : NULL;
}

void stacks_on_lifecycle(App *app, const HvLifecycleEvent *event)
{
    g_autofree char *id = stack_id_of_domain(event->domain_name);
    if (id == NULL)
        return;
    g_autoptr(GError) missing = NULL;
    g_autoptr(ApiStack) stack = store_stack_get_by_id(app->store, id, &missing);
    if (stack == NULL) {
        /* Only a stack the store does not know can be arriving. */
        if (g_error_matches(missing, TD_ERROR, TD_ERROR_NOT_FOUND))
            adopt_incoming(app, event);
        else
            g_warning("domain %s: event %s not recorded: %s", event->domain_name,
                      hv_lifecycle_to_string(event->what), missing->message);
        return;
    }
    ApiStackState state;
    const char *reason = NULL;
    /* Provisioning, deleting and migrating belong to their operation, which
     * sets the state when it is done: the update is conditional, so an
     * operation that took the stack after the read above keeps it. */
    if (state_for_event(event, &state, &reason) && state != stack->state) {
        g_autoptr(GError) error = NULL;
        if (stacks_set_state(app, id, STACKS_SETTLED, state, reason, &error)) {
            stack->state = state;
            g_free(stack->error);
            stack->error = g_strdup(reason);
        } else if (g_error_matches(error, TD_ERROR, TD_ERROR_CONFLICT) ||
                   g_error_matches(error, TD_ERROR, TD_ERROR_NOT_FOUND)) {
            g_debug("stack %s: event %s left to its operation: %s", id,
                    hv_lifecycle_to_string(event->what), error->message);
        } else {
            g_warning("stack %s: cannot record state %s: %s", id, api_stack_state_to_string(state),
                      error->message);
        }
    }
    stacks_publish_lifecycle(app, stack, hv_lifecycle_to_string(event->what));
}

/* ---- reconcile ----------------------------------------------------------------- */

static ApiStackState state_of_machine(HvMachineState machine, ApiStackState current)
{
    switch (machine) {
    case HV_MACHINE_RUNNING:
        return API_STACK_STATE_RUNNING;
    case HV_MACHINE_PAUSED:
        return API_STACK_STATE_PAUSED;
    case HV_MACHINE_SHUTOFF:
        /* A stack in error whose QEMU is gone stays in error: its reason matters. */
        return current == API_STACK_STATE_ERROR ? current : API_STACK_STATE_STOPPED;
    case HV_MACHINE_CRASHED:
        return API_STACK_STATE_ERROR;
    default:
        return current;
    }
}

/* The migration of @stack completed without the operation that started it
 * (turtled stopped meanwhile): the peer runs it, this host forgets it. */
static void forget_migrated(App *app, HvConn *conn, const ApiStack *stack)
{
    g_autoptr(GError) error = NULL;
    g_message("stack %s (%s/%s): left for a peer while turtled was not watching", stack->id,
              stack->tenant, stack->spec->name);
    if (!stacks_remove_everything(app, conn, stack, &error)) {
        g_warning("stack %s: cannot forget it: %s; the next reconcile tries again", stack->id,
                  error->message);
        return;
    }
    stacks_publish_lifecycle(app, stack, "migrated-out");
}

#define OUTGOING_POLL_S 2

typedef struct {
    App *app;
    char *id;
} OutgoingWatch;

static void outgoing_watch_free(OutgoingWatch *watch)
{
    g_mutex_lock(&watch->app->stacks->lock);
    g_hash_table_remove(watch->app->stacks->outgoing, watch->id);
    g_mutex_unlock(&watch->app->stacks->lock);
    g_free(watch->id);
    g_free(watch);
}

/* One look at a migration out that no operation drives; G_SOURCE_REMOVE
 * once the stack is settled (forgotten, or back to a state of its own). */
static gboolean check_outgoing(gpointer data)
{
    OutgoingWatch *watch = data;
    App *app = watch->app;
    g_autoptr(GError) error = NULL;
    /* libvirt away: the reconcile after the reconnection looks again. */
    g_autoptr(HvConn) conn = hv_virt_get_connection(app->virt, NULL);
    if (conn == NULL)
        return G_SOURCE_REMOVE;
    if (!claim(app->stacks, watch->id))
        return G_SOURCE_CONTINUE;
    gboolean done = TRUE;
    g_autoptr(ApiStack) stack = store_stack_get_by_id(app->store, watch->id, &error);
    if (stack != NULL && stack->state == API_STACK_STATE_MIGRATING) {
        HvOutgoing outgoing = hv_machine_get_outgoing(conn, stack->domain_name, &error);
        if (error != NULL || outgoing == HV_OUTGOING_RUNNING) {
            done = FALSE;
        } else if (outgoing == HV_OUTGOING_DONE) {
            forget_migrated(app, conn, stack);
        } else {
            HvMachineState machine = hv_machine_get_state(conn, stack->domain_name, NULL);
            ApiStackState state = state_of_machine(machine, API_STACK_STATE_RUNNING);
            g_message("stack %s (%s/%s): its migration failed; it stays here, %s", stack->id,
                      stack->tenant, stack->spec->name, api_stack_state_to_string(state));
            stacks_restore_state(app, stack->id, STORE_STATE(API_STACK_STATE_MIGRATING), state,
                                 NULL);
        }
    }
    release(app->stacks, watch->id);
    return done ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

/* Looks at stack @id's migration out every OUTGOING_POLL_S until it ends
 * (once per stack). */
static void watch_outgoing(App *app, const char *id)
{
    g_mutex_lock(&app->stacks->lock);
    gboolean watched = g_hash_table_contains(app->stacks->outgoing, id);
    if (!watched)
        g_hash_table_add(app->stacks->outgoing, g_strdup(id));
    g_mutex_unlock(&app->stacks->lock);
    if (watched)
        return;
    OutgoingWatch *watch = g_new0(OutgoingWatch, 1);
    watch->app = app;
    watch->id = g_strdup(id);
    g_timeout_add_seconds_full(G_PRIORITY_DEFAULT, OUTGOING_POLL_S, check_outgoing, watch,
                               (GDestroyNotify)outgoing_watch_free);
}

static void reconcile_stack(App *app, HvConn *conn, const ApiStack *stack, GHashTable *machines)
{
    g_autoptr(GError) error = NULL;
    HvMachineInfo *machine = g_hash_table_lookup(machines, stack->id);

    if (stack->state == API_STACK_STATE_PROVISIONING || stack->state == API_STACK_STATE_DELETING) {
        const char *why = stack->state == API_STACK_STATE_DELETING ? "finishing the delete"
                                                                   : "rolling back the create";
        g_message("stack %s (%s/%s): interrupted by the last stop, %s", stack->id, stack->tenant,
                  stack->spec->name, why);
        if (!stacks_remove_everything(app, conn, stack, &error))
            g_warning("stack %s: %s failed: %s", stack->id, why, error->message);
        return;
    }
    if (stack->state == API_STACK_STATE_MIGRATING) {
        /* No operation drives it any more (turtled stopped during it), but
         * libvirtd drives a peer-to-peer migration by itself: it may still be
         * under way, or have completed. */
        HvOutgoing outgoing = machine == NULL
                                  ? HV_OUTGOING_DONE
                                  : hv_machine_get_outgoing(conn, stack->domain_name, &error);
        if (error != NULL || outgoing == HV_OUTGOING_RUNNING) {
            g_message("stack %s (%s/%s): its migration is still under way (%s): watching it",
                      stack->id, stack->tenant, stack->spec->name,
                      error != NULL ? error->message : "libvirt's job");
            watch_outgoing(app, stack->id);
            return;
        }
        if (outgoing == HV_OUTGOING_DONE) {
            forget_migrated(app, conn, stack);
            return;
        }
        /* It failed: the stack stays here, in the state libvirt says. */
    }
    ApiStackState state = stack->state;
    const char *reason = stack->error;
    if (machine == NULL) {
        state = API_STACK_STATE_ERROR;
        reason = "the libvirt domain vanished (it was undefined outside turtled)";
    } else {
        state = state_of_machine(machine->state, stack->state);
        if (state != API_STACK_STATE_ERROR)
            reason = NULL;
        else if (machine->state == HV_MACHINE_CRASHED)
            reason = "the L1 crashed";
    }
    if (state != stack->state || g_strcmp0(reason, stack->error) != 0) {
        g_message("stack %s (%s/%s): %s -> %s", stack->id, stack->tenant, stack->spec->name,
                  api_stack_state_to_string(stack->state), api_stack_state_to_string(state));
        /* From the state read at the start only: an event since knows better. */
        if (!stacks_set_state(app, stack->id, STORE_STATE(stack->state), state, reason, &error))
            g_warning("stack %s: not set to %s: %s", stack->id, api_stack_state_to_string(state),
                      error->message);
    }
}

/* The images a stack that came from a peer boots from: their volumes came
 * with it (the source copied them); they become the tenant's images here. */
static gboolean adopt_images(App *app, HvConn *conn, const char *domain, const ApiStack *stack,
                             GError **error)
{
    g_autofree char *xml = hv_machine_get_xml(conn, domain, error);
    g_autoptr(HvBootFiles) files = xml != NULL ? hv_domain_parse_boot_files(xml, error) : NULL;
    if (files == NULL)
        return FALSE;
    const ApiStackSpec *spec = stack->spec;
    const struct {
        const char *name;
        const char *path;
        ApiImageKind kind;
        const char *format;
    } boot[] = {
        {spec->boot_kernel, files->kernel, API_IMAGE_KIND_KERNEL, "raw"},
        {spec->boot_initrd, files->initrd, API_IMAGE_KIND_INITRD, "raw"},
        {spec->boot_disk, files->disk_backing, API_IMAGE_KIND_DISK, files->disk_backing_format},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(boot); i++) {
        if (boot[i].name == NULL || boot[i].path == NULL)
            continue;
        g_autofree char *volume = g_path_get_basename(boot[i].path);
        ApiImageFormat format = API_IMAGE_FORMAT_RAW;
        api_image_format_from_string(boot[i].format, &format);
        if (!images_adopt_volume(app, conn, stack->tenant, boot[i].name, boot[i].kind, format,
                                 volume, error))
            return FALSE;
    }
    return TRUE;
}

/* The figures of the migration that brought a stack here.  libvirt fires
 * the RESUMED event, and lists the domain as persistent and running,
 * before its migration job ends and leaves the figures, so they are looked
 * for again every ARRIVAL_FIGURES_POLL_MS while a job runs on the domain,
 * for at most ARRIVAL_FIGURES_TRIES (a loaded host can take seconds). */
#define ARRIVAL_FIGURES_POLL_MS 250
#define ARRIVAL_FIGURES_TRIES   240

typedef struct {
    App *app;
    char *domain;
    char *stack_id;
    char *came_from;
    int tries;
} ArrivalFigures;

static void arrival_figures_free(ArrivalFigures *arrival)
{
    g_free(arrival->domain);
    g_free(arrival->stack_id);
    g_free(arrival->came_from);
    g_free(arrival);
}

/* TRUE once there is nothing more to wait for: recorded, or no migration
 * brought the domain (no job runs and libvirt has no incoming figures). */
static gboolean record_arrival_figures(ArrivalFigures *arrival)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(HvConn) conn = hv_virt_get_connection(arrival->app->virt, &error);
    HvMachineMigration migration = {0};
    gboolean read = conn != NULL &&
                    hv_machine_get_incoming_migration(conn, arrival->domain, &migration, &error);
    if (!migration.found) {
        /* libvirt unreachable for a moment is worth another try too. */
        gboolean wait = !read || migration.job_running;
        if (wait && ++arrival->tries < ARRIVAL_FIGURES_TRIES)
            return FALSE;
        if (wait)
            g_message("domain %s: no figures of the migration that brought it: %s", arrival->domain,
                      read ? "its job did not end" : error->message);
        return TRUE;
    }
    g_autofree char *now = clock_now_rfc3339();
    ApiStatsMigration last = {arrival->came_from ? arrival->came_from : (char *)"unknown", now,
                              (gint64)migration.total_ms, (gint64)migration.downtime_ms,
                              (gint64)migration.bytes};
    g_clear_error(&error);
    if (!store_stack_set_last_migration(arrival->app->store, arrival->stack_id, &last, &error))
        g_warning("stack %s: cannot record its migration: %s", arrival->stack_id, error->message);
    return TRUE;
}

static gboolean poll_arrival_figures(gpointer data)
{
    if (!record_arrival_figures(data))
        return G_SOURCE_CONTINUE;
    arrival_figures_free(data);
    return G_SOURCE_REMOVE;
}

/* Records the figures of the migration that brought @stack (adopted from
 * @domain, coming from @came_from), now or once libvirt has them.  Every
 * adoption asks: the lifecycle event and a reconcile can each be the first
 * to see an arrived domain. */
static void record_arrival(App *app, const char *domain, const ApiStack *stack,
                           const char *came_from)
{
    ArrivalFigures *arrival = g_new0(ArrivalFigures, 1);
    arrival->app = app;
    arrival->domain = g_strdup(domain);
    arrival->stack_id = g_strdup(stack->id);
    arrival->came_from = g_strdup(came_from);
    if (record_arrival_figures(arrival))
        arrival_figures_free(arrival);
    else
        g_timeout_add(ARRIVAL_FIGURES_POLL_MS, poll_arrival_figures, arrival);
}

/* A domain with our metadata that the store lacks (one that migrated in, or
 * whose row a lost store forgot): its record comes home. */
static ApiStack *adopt(App *app, HvConn *conn, const char *domain, HvMachineState machine_state,
                       const HvStackIdentity *identity)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) record = api_json_parse(
        identity->record_json, strlen(identity->record_json), API_JSON_MAX_DEPTH, &error);
    g_autoptr(ApiStack) stack = record ? api_stack_from_json(record, &error) : NULL;
    if (stack == NULL) {
        g_warning("domain %s: unreadable stack record, left alone: %s", domain, error->message);
        return NULL;
    }
    g_autoptr(ApiTenant) tenant = store_tenant_get(app->store, stack->tenant, &error);
    if (tenant == NULL && !g_error_matches(error, TD_ERROR, TD_ERROR_NOT_FOUND)) {
        g_warning("domain %s: not adopted for now: %s", domain, error->message);
        return NULL;
    }
    g_clear_error(&error);
    if (tenant == NULL) {
        /* A token-less tenant: the operator issues it a token. */
        tenant = api_tenant_new();
        tenant->id = g_uuid_string_random();
        tenant->name = g_strdup(stack->tenant);
        tenant->created_at = clock_now_rfc3339();
        tenant->updated_at = g_strdup(tenant->created_at);
        if (!store_tenant_insert(app->store, tenant, &error)) {
            g_warning("domain %s: cannot create tenant %s: %s", domain, stack->tenant,
                      error->message);
            return NULL;
        }
        LogFields fields = {.message_id = LOG_MESSAGE_TENANT_CREATED, .tenant = stack->tenant};
        log_structured(G_LOG_LEVEL_MESSAGE, &fields,
                       "tenant %s created (no token yet) for the stack of domain %s", stack->tenant,
                       domain);
    }
    g_autofree char *domain_xml = hv_machine_get_xml(conn, domain, &error);
    if (domain_xml == NULL || !networks_adopt_for_domain(app, conn, domain_xml, &error)) {
        g_warning("domain %s: not adopted for now: its networks: %s", domain, error->message);
        return NULL;
    }
    if (!adopt_images(app, conn, domain, stack, &error))
        g_warning("domain %s: its images stay unregistered: %s", domain, error->message);
    g_clear_error(&error);
    g_autofree char *came_from = g_strdup(stack->host);
    stack->state = state_of_machine(machine_state, API_STACK_STATE_STOPPED);
    g_clear_pointer(&stack->error, g_free);
    g_free(stack->domain_name);
    stack->domain_name = g_strdup(domain);
    g_free(stack->host);
    stack->host = g_strdup(g_get_host_name());
    g_free(stack->updated_at);
    stack->updated_at = clock_now_rfc3339();
    if (!store_stack_insert(app->store, stack, NULL, &error)) {
        g_warning("domain %s: cannot adopt stack %s/%s: %s", domain, stack->tenant,
                  stack->spec->name, error->message);
        return NULL;
    }
    g_message("adopted domain %s as stack %s/%s (%s)", domain, stack->tenant, stack->spec->name,
              api_stack_state_to_string(stack->state));
    stacks_publish_lifecycle(app, stack, "adopted");
    /* The operator hears of it too, with the tenant it landed in. */
    json_object *data = json_object_new_object();
    json_object_object_add(data, "stack", api_stack_to_json(stack));
    json_object_object_add(data, "event", json_object_new_string("adopted"));
    event_bus_publish(app->events, "lifecycle", NULL, data);
    json_object_put(data);
    record_arrival(app, domain, stack, came_from);
    return g_steal_pointer(&stack);
}

/* An event about a domain of ours the store lacks: a migration that just
 * completed here (resumed, or defined by the migration's end).  Adopts
 * domain @name if it is ours, unknown here, and running (or paused, when
 * @allow_paused); adopt() records the migration that brought it. */
static void adopt_arrived(App *app, const char *name, gboolean allow_paused)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *id = stack_id_of_domain(name);
    g_autoptr(ApiStack) known = id ? store_stack_get_by_id(app->store, id, &error) : NULL;
    if (id == NULL || known != NULL)
        return;
    /* A store that cannot answer is no reason to adopt a second copy. */
    if (!g_error_matches(error, TD_ERROR, TD_ERROR_NOT_FOUND)) {
        g_warning("domain %s: not adopted for now: %s", name, error->message);
        return;
    }
    g_clear_error(&error);
    g_autoptr(HvConn) conn = hv_virt_get_connection(app->virt, NULL);
    if (conn == NULL)
        return;
    HvMachineState state = hv_machine_get_state(conn, name, NULL);
    if (state != HV_MACHINE_RUNNING && !(allow_paused && state == HV_MACHINE_PAUSED))
        return;
    g_autofree char *xml = hv_machine_get_xml(conn, name, &error);
    g_autoptr(HvStackIdentity) identity = xml ? hv_domain_parse_identity(xml, &error) : NULL;
    g_autoptr(ApiStack) stack = identity ? adopt(app, conn, name, state, identity) : NULL;
}

typedef struct {
    App *app;
    char *name;
    int tries;
} LateAdoption;

/* How long a late adoption waits for an arriving migration to end. */
#define LATE_ADOPTION_TRIES 150

static gboolean adopt_paused_later(gpointer data)
{
    LateAdoption *late = data;
    g_autoptr(HvConn) conn = hv_virt_get_connection(late->app->virt, NULL);
    HvMachineMigration incoming = {0};
    /* Defined is not arrived: libvirt may define the domain before its
     * migration ends, and a failed one takes it away again. */
    if (conn != NULL && ++late->tries < LATE_ADOPTION_TRIES &&
        hv_machine_get_incoming_migration(conn, late->name, &incoming, NULL) &&
        incoming.job_running)
        return G_SOURCE_CONTINUE;
    adopt_arrived(late->app, late->name, TRUE);
    g_free(late->name);
    g_free(late);
    return G_SOURCE_REMOVE;
}

/* A migration ends here with the domain defined (persistent) and resumed; a
 * stack that was paused stays paused, with no resume to tell us: it is
 * adopted a moment after its definition, once the migration has finished. */
static void adopt_incoming(App *app, const HvLifecycleEvent *event)
{
    if (event->what == HV_LIFECYCLE_RESUMED || event->what == HV_LIFECYCLE_STARTED) {
        adopt_arrived(app, event->domain_name, FALSE);
    } else if (event->what == HV_LIFECYCLE_DEFINED) {
        LateAdoption *late = g_new0(LateAdoption, 1);
        late->app = app;
        late->name = g_strdup(event->domain_name);
        g_timeout_add_seconds(LATE_ADOPTION_S, adopt_paused_later, late);
    }
}

/* A file no stack owns that is being written may belong to a stack migrating
 * here (its console log, its overlay), which arrives with its record. */
#define ORPHAN_GRACE_S (15 * 60)

static gboolean file_is_recent(const char *path)
{
    GStatBuf st;
    if (path == NULL || g_stat(path, &st) != 0)
        return TRUE;
    return g_get_real_time() / G_USEC_PER_SEC - (gint64)st.st_mtime < ORPHAN_GRACE_S;
}

/* Overlays and console logs no stack owns, and old enough not to be a
 * migration's arrival, are what something outside turtled left behind. */
static void remove_orphans(App *app, HvConn *conn, GHashTable *known)
{
    g_autoptr(GDir) dir = g_dir_open(app->console_dir, 0, NULL);
    for (const char *file = dir ? g_dir_read_name(dir) : NULL; file != NULL;
         file = g_dir_read_name(dir)) {
        g_autofree char *id = g_strndup(file, strcspn(file, "."));
        g_autofree char *path = g_build_filename(app->console_dir, file, NULL);
        if (g_str_has_suffix(file, ".log") && !g_hash_table_contains(known, id) &&
            !file_is_recent(path)) {
            g_message("removing orphan console log %s", path);
            if (g_unlink(path) != 0 && errno != ENOENT)
                g_warning("orphan console log %s stays until the next reconcile: %s", path,
                          g_strerror(errno));
        }
    }
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) volumes = hv_volume_list(conn, HV_POOL_DISKS, &error);
    if (volumes == NULL) {
        g_warning("cannot look for orphan disks in pool %s: %s", HV_POOL_DISKS, error->message);
        return;
    }
    for (guint i = 0; i < volumes->len; i++) {
        const HvVolumeInfo *volume = g_ptr_array_index(volumes, i);
        const char *name = volume->name;
        g_autofree char *id = g_strndup(name, strcspn(name, "."));
        gboolean recent = file_is_recent(volume->path);
        if (!g_hash_table_contains(known, id) && !recent) {
            g_message("removing orphan disk %s from pool %s", name, HV_POOL_DISKS);
            g_autoptr(GError) failure = NULL;
            if (!hv_volume_delete(conn, HV_POOL_DISKS, name, &failure) &&
                !g_error_matches(failure, HV_ERROR, HV_ERROR_NOT_FOUND))
                g_warning("orphan disk %s/%s stays until the next reconcile: %s", HV_POOL_DISKS,
                          name, failure->message);
        }
    }
}

gboolean stacks_reconcile(App *app, HvConn *conn, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(GPtrArray) list = hv_machine_list_ours(conn, &local);
    if (list == NULL) {
        g_set_error(error, TD_ERROR, TD_ERROR_UNAVAILABLE, "cannot list domains: %s",
                    local->message);
        return FALSE;
    }
    g_autoptr(GHashTable) machines = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < list->len; i++) {
        HvMachineInfo *machine = g_ptr_array_index(list, i);
        g_hash_table_insert(machines, machine->identity->id, machine);
    }
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) stacks = store_stack_list(app->store, NULL, 0, NULL, &next, error);
    if (stacks == NULL)
        return FALSE;
    g_autoptr(GHashTable) known = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < stacks->len; i++) {
        ApiStack *stack = g_ptr_array_index(stacks, i);
        g_hash_table_add(known, stack->id);
        /* Claimed for the time of its check: no operation starts meanwhile. */
        if (claim(app->stacks, stack->id)) {
            reconcile_stack(app, conn, stack, machines);
            /* Every claim is written with the spec that lists it (one
             * transaction): a stack whose spec lists none holds none. */
            if (stack->spec->devices->len > 0)
                devices_reconcile_stack(app, conn, stack);
            release(app->stacks, stack->id);
        }
    }
    for (guint i = 0; i < list->len; i++) {
        HvMachineInfo *machine = g_ptr_array_index(list, i);
        /* A transient domain is a migration still arriving: if it
         * finishes, the lifecycle events adopt it; if it fails, libvirt
         * removes it and there must be nothing of it here. */
        if (!machine->persistent) {
            g_debug("domain %s is still arriving: not adopted yet", machine->name);
            continue;
        }
        if (!g_hash_table_contains(known, machine->identity->id)) {
            /* libvirt may define an arriving domain before its migration
             * ends: the lifecycle events adopt it once it has. */
            HvMachineMigration incoming = {0};
            if (hv_machine_get_incoming_migration(conn, machine->name, &incoming, NULL) &&
                incoming.job_running) {
                g_debug("domain %s is still arriving (its migration runs): not adopted yet",
                        machine->name);
                continue;
            }
            g_autoptr(ApiStack) adopted =
                adopt(app, conn, machine->name, machine->state, machine->identity);
            /* A store that lost the stack lost its claims too. */
            if (adopted != NULL)
                devices_reconcile_stack(app, conn, adopted);
            g_hash_table_add(known, machine->identity->id);
        }
    }
    /* Stacks rolled back above are no longer known: re-read before sweeping. */
    g_autoptr(GHashTable) owned = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autofree char *next_now = NULL;
    g_autoptr(GPtrArray) now = store_stack_list(app->store, NULL, 0, NULL, &next_now, error);
    if (now == NULL)
        return FALSE;
    for (guint i = 0; i < now->len; i++)
        g_hash_table_add(owned, g_strdup(((ApiStack *)g_ptr_array_index(now, i))->id));
    remove_orphans(app, conn, owned);
    return TRUE;
}
