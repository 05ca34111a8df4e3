#include "daemon/devices.h"

#include "daemon/clock.h"
#include "daemon/connection.h"
#include "daemon/convert.h"
#include "daemon/error.h"
#include "daemon/stacks.h"
#include "hvcore/devices.h"
#include "hvcore/domain.h"
#include "hvcore/error.h"
#include "hvcore/machine.h"

/* Seconds a hot-unplug waits for the L1 to let the device go (PCIe
 * hot-unplug blinks the attention button for 5 s first). */
#define DETACH_TIMEOUT_S 60

/* ---- classes -------------------------------------------------------------- */

/* hvcore's verdict on a vfio class, in the API's codes: the host cannot do
 * it (no IOMMU, a group not whole, a busy driver) is a conflict with the
 * host's state, not a malformed request. */
static void map_pci_error(GError **error)
{
    if (error == NULL || *error == NULL || (*error)->domain != HV_ERROR)
        return;
    int code = TD_ERROR_INTERNAL;
    switch ((HvErrorCode)(*error)->code) {
    case HV_ERROR_NOT_FOUND:
        code = TD_ERROR_NOT_FOUND;
        break;
    case HV_ERROR_INVALID:
        code = TD_ERROR_BAD_REQUEST;
        break;
    case HV_ERROR_UNSUPPORTED:
        code = TD_ERROR_CONFLICT;
        break;
    case HV_ERROR_FAILED:
    case HV_ERROR_LIBVIRT:
        break;
    }
    GError *mapped = g_error_new_literal(TD_ERROR, code, (*error)->message);
    g_clear_error(error);
    *error = mapped;
}

static gboolean check_vfio_class(App *app, const ApiDeviceClass *device_class, GError **error)
{
    /* The probe counted /sys/kernel/iommu_groups at start: without any,
     * no function can be assigned, whatever libvirt would say of each. */
    if (app->host == NULL || app->host->iommu_groups == 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                    "this host has no IOMMU groups, so no PCI function can be assigned through "
                    "VFIO: enable VT-d (Intel) or AMD-Vi (AMD) in the firmware, boot the host "
                    "with intel_iommu=on (Intel) and restart turtled; emulated classes work "
                    "without");
        return FALSE;
    }
    g_autoptr(HvConn) conn = connection_get(app, error);
    if (conn == NULL)
        return FALSE;
    g_ptr_array_add(device_class->addresses, NULL);
    gboolean ok =
        hv_pci_check_assignable_on(conn, (const char *const *)device_class->addresses->pdata,
                                   device_class->force, NULL, error);
    g_ptr_array_remove_index(device_class->addresses, device_class->addresses->len - 1);
    if (!ok && (*error)->domain == HV_ERROR && (*error)->code == HV_ERROR_LIBVIRT)
        connection_failed(app, conn, error);
    map_pci_error(error);
    return ok;
}

gboolean devices_class_create(App *app, ApiDeviceClass *device_class, GError **error)
{
    if (g_str_equal(device_class->kind, "vfio") && !check_vfio_class(app, device_class, error))
        return FALSE;
    device_class->created_at = clock_now_rfc3339();
    device_class->updated_at = g_strdup(device_class->created_at);
    return store_device_class_insert(app->store, device_class, error);
}

gboolean devices_resolve_classes(App *app, ApiStackSpec *spec, GError **error)
{
    for (guint i = 0; i < spec->devices->len; i++) {
        ApiStackDevice *device = g_ptr_array_index(spec->devices, i);
        g_autoptr(GError) local = NULL;
        g_autoptr(ApiDeviceClass) device_class =
            store_device_class_get(app->store, device->class_name, &local);
        if (device_class == NULL) {
            int code = g_error_matches(local, TD_ERROR, TD_ERROR_NOT_FOUND) ? TD_ERROR_BAD_REQUEST
                                                                            : local->code;
            g_set_error(error, TD_ERROR, code, "devices[%u].class: %s", i, local->message);
            return FALSE;
        }
        g_free(device->model);
        device->model = g_strdup(device_class->model);
    }
    return TRUE;
}

/* ---- claims ----------------------------------------------------------------- */

static void hold(ApiStackDevice *entry, const ApiDevice *device)
{
    g_free(entry->id);
    entry->id = g_strdup(device->id);
    g_free(entry->model);
    entry->model = g_strdup(device->model);
    g_free(entry->address);
    entry->address = g_strdup(device->address);
}

gboolean devices_claim_for_stack(Store *store, ApiStack *stack, GError **error)
{
    if (stack->spec->devices->len == 0)
        return TRUE;
    for (guint i = 0; i < stack->spec->devices->len; i++) {
        ApiStackDevice *entry = g_ptr_array_index(stack->spec->devices, i);
        g_autoptr(ApiDevice) device =
            store_device_claim(store, entry->class_name, stack->id, error);
        if (device == NULL)
            return FALSE;
        hold(entry, device);
    }
    return store_stack_set_spec(store, stack->id, stack->spec, stack->updated_at, error);
}

/* The tenant's device quota and the claim, in one transaction. */
typedef struct {
    ApiStack *stack;
    const char *class_name;
    ApiDevice *device; /* out */
} Claim;

static gboolean claim_within_quota(Store *store, gpointer data, GError **error)
{
    Claim *claim = data;
    g_autoptr(ApiTenant) owner = store_tenant_get(store, claim->stack->tenant, error);
    gint64 used = owner ? store_tenant_devices_in_use(store, claim->stack->tenant, error) : -1;
    if (used < 0)
        return FALSE;
    if (used + 1 > owner->quota.devices) {
        g_set_error(error, TD_ERROR, TD_ERROR_QUOTA_EXCEEDED,
                    "quota exceeded: devices would be %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                    " (%" G_GINT64_FORMAT " in use, 1 asked)",
                    used + 1, owner->quota.devices, used);
        return FALSE;
    }
    claim->device = store_device_claim(store, claim->class_name, claim->stack->id, error);
    if (claim->device == NULL)
        return FALSE;
    ApiStackDevice *entry = api_stack_device_new(claim->class_name, NULL, NULL, NULL);
    hold(entry, claim->device);
    g_ptr_array_add(claim->stack->spec->devices, entry);
    g_autofree char *now = clock_now_rfc3339();
    return store_stack_set_spec(store, claim->stack->id, claim->stack->spec, now, error);
}

/* Drops device @id from @stack's spec and returns it to the pool. */
typedef struct {
    ApiStack *stack;
    const char *device_id;
} Return;

static gboolean return_device(Store *store, gpointer data, GError **error)
{
    Return *ret = data;
    GPtrArray *devices = ret->stack->spec->devices;
    for (guint i = 0; i < devices->len; i++) {
        const ApiStackDevice *entry = g_ptr_array_index(devices, i);
        if (g_strcmp0(entry->id, ret->device_id) == 0) {
            g_ptr_array_remove_index(devices, i);
            break;
        }
    }
    g_autofree char *now = clock_now_rfc3339();
    return store_device_release(store, ret->device_id, ret->stack->id, error) &&
           store_stack_set_spec(store, ret->stack->id, ret->stack->spec, now, error);
}

/* ---- hot-plug ----------------------------------------------------------------- */

typedef struct {
    App *app;
    ApiStack *stack;
    char *device_id;
    gboolean started;
    gboolean attach; /* an attach whose body never ran gives its claim back */
} DeviceJob;

static void device_job_free(gpointer data)
{
    DeviceJob *job = data;
    if (!job->started) {
        if (job->attach) {
            g_autoptr(GError) error = NULL;
            Return ret = {job->stack, job->device_id};
            if (!store_transaction(job->app->store, return_device, &ret, &error))
                g_warning("stack %s: device %s stays claimed until the next reconcile: %s",
                          job->stack->id, job->device_id, error->message);
        }
        stacks_release(job->app, job->stack->id);
    }
    api_stack_free(job->stack);
    g_free(job->device_id);
    g_free(job);
}

static const ApiStackDevice *held_device(const ApiStack *stack, const char *device_id)
{
    for (guint i = 0; i < stack->spec->devices->len; i++) {
        const ApiStackDevice *entry = g_ptr_array_index(stack->spec->devices, i);
        if (g_strcmp0(entry->id, device_id) == 0)
            return entry;
    }
    return NULL;
}

static gboolean attach_body(OperationContext *context, gpointer data, GError **error)
{
    DeviceJob *job = data;
    App *app = job->app;
    job->started = TRUE;
    gboolean ok = operation_point_of_no_return(context, "the device is being attached", error);
    g_autoptr(HvConn) conn = ok ? connection_get(app, error) : NULL;
    if (conn != NULL) {
        operation_progress(context, 30, "attaching the device", 0, 0);
        guint index = job->stack->spec->devices->len - 1;
        g_autoptr(HvDevice) device =
            convert_stack_device(held_device(job->stack, job->device_id), index);
        ok = hv_machine_attach_device(conn, job->stack->domain_name, device, error);
        if (!ok && (*error)->domain == HV_ERROR)
            connection_failed(app, conn, error);
    } else {
        ok = FALSE;
    }
    if (ok) {
        g_autofree char *stage = g_strdup_printf("attached %s", job->device_id);
        operation_progress(context, 100, stage, 0, 0);
    } else {
        g_autoptr(GError) local = NULL;
        Return ret = {job->stack, job->device_id};
        if (!store_transaction(app->store, return_device, &ret, &local))
            g_warning("stack %s: device %s stays claimed until the next reconcile: %s",
                      job->stack->id, job->device_id, local->message);
    }
    stacks_release(app, job->stack->id);
    return ok;
}

static gboolean detach_body(OperationContext *context, gpointer data, GError **error)
{
    DeviceJob *job = data;
    App *app = job->app;
    job->started = TRUE;
    gboolean ok = operation_point_of_no_return(context, "the device is being detached", error);
    g_autoptr(HvConn) conn = ok ? connection_get(app, error) : NULL;
    if (conn != NULL) {
        operation_progress(context, 30, "waiting for the L1 to release the device", 0, 0);
        ok = hv_machine_detach_device(conn, job->stack->domain_name, job->device_id,
                                      DETACH_TIMEOUT_S, error);
        if (!ok && (*error)->domain == HV_ERROR)
            connection_failed(app, conn, error);
    } else {
        ok = FALSE;
    }
    /* Back to the pool only once the domain let it go. */
    Return ret = {job->stack, job->device_id};
    ok = ok && store_transaction(app->store, return_device, &ret, error);
    if (ok) {
        g_autofree char *stage = g_strdup_printf("detached %s", job->device_id);
        operation_progress(context, 100, stage, 0, 0);
    }
    stacks_release(app, job->stack->id);
    return ok;
}

static gboolean check_hotplug_target(const ApiStack *stack, GError **error)
{
    if (g_strcmp0(stack->spec->iommu, "none") == 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                    "stack '%s' has no vIOMMU (nesting.iommu none): its L1 could not hand a "
                    "device on to an L2; create it with devices or nesting.iommu intel",
                    stack->spec->name);
        return FALSE;
    }
    guint allowed = STORE_STATE(API_STACK_STATE_RUNNING) | STORE_STATE(API_STACK_STATE_STOPPED) |
                    STORE_STATE(API_STACK_STATE_PAUSED);
    if (!(allowed & STORE_STATE(stack->state))) {
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                    "stack '%s' is %s: devices change on a running, paused or stopped stack",
                    stack->spec->name, api_stack_state_to_string(stack->state));
        return FALSE;
    }
    return TRUE;
}

static ApiOperation *submit(App *app, const char *kind, const char *tenant, DeviceJob *job,
                            OperationBody body, GError **error)
{
    g_autofree char *target = g_strdup_printf("stacks/%s", job->stack->spec->name);
    return operations_submit(app->operations, kind, target, tenant, body, job, device_job_free,
                             error);
}

ApiOperation *devices_attach(App *app, const char *tenant, const char *stack_name,
                             const char *class_name, GError **error)
{
    g_autoptr(ApiDeviceClass) device_class = store_device_class_get(app->store, class_name, error);
    if (device_class == NULL)
        return NULL;
    HvDeviceModel model = HV_DEVICE_EDU;
    if (hv_device_model_from_string(device_class->model, &model) &&
        !hv_device_model_hotpluggable(model)) {
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                    "device class '%s' (%s) cannot be hot-plugged: the edu test device enters "
                    "through QEMU's command line, which libvirt cannot attach to a running "
                    "domain; ask for it when the stack is created",
                    class_name, device_class->model);
        return NULL;
    }
    ApiStack *stack = stacks_claim(app, tenant, stack_name, error);
    if (stack == NULL)
        return NULL;
    DeviceJob *job = g_new0(DeviceJob, 1);
    job->app = app;
    job->stack = stack;
    job->attach = TRUE;
    Claim claim = {stack, class_name, NULL};
    if (!check_hotplug_target(stack, error) ||
        !store_transaction(app->store, claim_within_quota, &claim, error)) {
        job->started = FALSE;
        job->attach = FALSE; /* nothing claimed to give back */
        device_job_free(job);
        return NULL;
    }
    job->device_id = g_strdup(claim.device->id);
    api_device_free(claim.device);
    return submit(app, "stack.attach-device", tenant, job, attach_body, error);
}

ApiOperation *devices_detach(App *app, const char *tenant, const char *stack_name,
                             const char *device_id, GError **error)
{
    ApiStack *stack = stacks_claim(app, tenant, stack_name, error);
    if (stack == NULL)
        return NULL;
    DeviceJob *job = g_new0(DeviceJob, 1);
    job->app = app;
    job->stack = stack;
    job->device_id = g_strdup(device_id);
    const ApiStackDevice *entry = held_device(stack, device_id);
    if (entry == NULL) {
        g_set_error(error, TD_ERROR, TD_ERROR_NOT_FOUND, "stack '%s' holds no device '%s'",
                    stack_name, device_id);
    } else if (check_hotplug_target(stack, error)) {
        HvDeviceModel model = HV_DEVICE_EDU;
        if (hv_device_model_from_string(entry->model, &model) &&
            hv_device_model_hotpluggable(model))
            return submit(app, "stack.detach-device", tenant, job, detach_body, error);
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                    "device '%s' (%s) cannot be hot-unplugged: it entered through QEMU's command "
                    "line, which libvirt cannot detach; it goes back to the pool with the stack",
                    device_id, entry->model);
    }
    device_job_free(job);
    return NULL;
}

/* ---- reconcile ------------------------------------------------------------------ */

typedef struct {
    const ApiStack *stack;
    GPtrArray *in_domain; /* of char *: pool ids the domain holds */
} Reconcile;

static gboolean in_list(GPtrArray *ids, const char *id)
{
    for (guint i = 0; i < ids->len; i++) {
        if (g_str_equal(g_ptr_array_index(ids, i), id))
            return TRUE;
    }
    return FALSE;
}

/* One transaction: the claims and the spec's device list become what the
 * domain holds. */
static gboolean follow_domain(Store *store, gpointer data, GError **error)
{
    Reconcile *rec = data;
    g_autoptr(ApiStack) stack = api_stack_copy(rec->stack);
    g_autoptr(GPtrArray) claimed = store_device_list_of_stack(store, stack->id, error);
    if (claimed == NULL)
        return FALSE;
    gboolean changed = FALSE;
    for (guint i = 0; i < claimed->len; i++) {
        const ApiDevice *device = g_ptr_array_index(claimed, i);
        if (in_list(rec->in_domain, device->id))
            continue;
        g_message("stack %s: device %s is not in its domain: back to the pool", stack->id,
                  device->id);
        if (!store_device_release(store, device->id, stack->id, error))
            return FALSE;
        changed = TRUE;
    }
    g_autoptr(GPtrArray) all = store_device_list(store, NULL, NULL, error);
    if (all == NULL)
        return FALSE;
    g_ptr_array_set_size(stack->spec->devices, 0);
    for (guint i = 0; i < all->len; i++) {
        const ApiDevice *device = g_ptr_array_index(all, i);
        if (!in_list(rec->in_domain, device->id))
            continue;
        if (g_strcmp0(device->stack_id, stack->id) != 0) {
            if (device->stack_id != NULL) {
                g_warning("stack %s: its domain holds device %s, which the pool gives to stack "
                          "%s: left as it is",
                          stack->id, device->id, device->stack_id);
                continue;
            }
            g_message("stack %s: its domain holds device %s: claimed again", stack->id, device->id);
            if (!store_device_claim_id(store, device->id, stack->id, error))
                return FALSE;
            changed = TRUE;
        }
        ApiStackDevice *entry = api_stack_device_new(device->class_name, NULL, NULL, NULL);
        hold(entry, device);
        g_ptr_array_add(stack->spec->devices, entry);
    }
    /* The spec lists what is held, whatever the order claims were made in. */
    if (stack->spec->devices->len != rec->stack->spec->devices->len)
        changed = TRUE;
    if (!changed)
        return TRUE;
    g_autofree char *now = clock_now_rfc3339();
    return store_stack_set_spec(store, stack->id, stack->spec, now, error);
}

void devices_reconcile_stack(App *app, HvConn *conn, const ApiStack *stack)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_machine_get_xml(conn, stack->domain_name, &error);
    if (xml == NULL) {
        /* No domain: the stack's own reconcile decides its fate, and its
         * devices go with its row. */
        return;
    }
    g_autoptr(GPtrArray) in_domain = hv_domain_parse_device_ids(xml, &error);
    Reconcile rec = {stack, in_domain};
    if (in_domain == NULL || !store_transaction(app->store, follow_domain, &rec, &error))
        g_warning("stack %s: its devices were not reconciled: %s", stack->id, error->message);
}

/* ---- migration ------------------------------------------------------------------ */

gboolean devices_check_migratable(const ApiStack *stack, GError **error)
{
    for (guint i = 0; i < stack->spec->devices->len; i++) {
        const ApiStackDevice *entry = g_ptr_array_index(stack->spec->devices, i);
        const char *why =
            g_strcmp0(entry->model, "vfio") == 0
                ? "a host PCI function assigned through VFIO cannot migrate (its state lives in "
                  "the hardware)"
            : g_strcmp0(entry->model, "edu") == 0
                ? "QEMU's edu test device has no migration state (QEMU would drop its registers "
                  "and DMA buffer silently), so turtled refuses"
                : "the peer's device pool cannot be reserved from here (peers share no pool); "
                  "detach it, migrate, and attach one from the peer's pool";
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                    "stack '%s' holds device %s (class %s, %s): %s", stack->spec->name,
                    entry->id ? entry->id : "?", entry->class_name,
                    entry->model ? entry->model : "?", why);
        return FALSE;
    }
    return TRUE;
}
