/* The store's device pool: device classes and their devices, one row each
 * ("<class>-<n>"), and which stack holds which.  A device goes back to the
 * pool with its stack's row (devices.stack_id ON DELETE SET NULL). */
#include "daemon/store.h"

#include <string.h>

#include "daemon/error.h"
#include "daemon/store-private.h"

/* ---- classes ------------------------------------------------------------ */

#define CLASS_COLUMNS                                                                              \
    "c.name, c.kind, c.model, c.force, c.description, c.created_at, c.updated_at,"                 \
    " (SELECT count(*) FROM devices d WHERE d.class = c.name),"                                    \
    " (SELECT count(*) FROM devices d WHERE d.class = c.name AND d.stack_id IS NOT NULL)"

static gpointer class_from_row(sqlite3_stmt *stmt, GError **error)
{
    ApiDeviceClass *device_class = api_device_class_new();

    (void)error;
    device_class->name = store_column_text(stmt, 0);
    device_class->kind = store_column_text(stmt, 1);
    device_class->model = store_column_text(stmt, 2);
    device_class->force = sqlite3_column_int64(stmt, 3) != 0;
    device_class->description = store_column_text(stmt, 4);
    device_class->created_at = store_column_text(stmt, 5);
    device_class->updated_at = store_column_text(stmt, 6);
    device_class->capacity = sqlite3_column_int64(stmt, 7);
    device_class->in_use = sqlite3_column_int64(stmt, 8);
    return device_class;
}

/* A vfio class's addresses, in device order. */
static gboolean class_add_addresses(Store *store, ApiDeviceClass *device_class, GError **error)
{
    g_autoptr(GPtrArray) addresses = store_query_list(
        store, "SELECT address FROM devices WHERE class = ?1 AND address IS NOT NULL ORDER BY seq",
        STORE_PARAMS(STORE_TEXT(device_class->name)), store_text_from_row, g_free,
        "listing a class's addresses", error);
    if (addresses == NULL)
        return FALSE;
    for (guint i = 0; i < addresses->len; i++)
        g_ptr_array_add(device_class->addresses, g_strdup(g_ptr_array_index(addresses, i)));
    return TRUE;
}

static gboolean add_devices(Store *store, const char *name, gint64 from, gint64 to,
                            const GPtrArray *addresses, GError **error)
{
    for (gint64 seq = from; seq < to; seq++) {
        g_autofree char *id = g_strdup_printf("%s-%" G_GINT64_FORMAT, name, seq);
        const char *address = addresses ? g_ptr_array_index(addresses, seq) : NULL;
        if (!store_exec_insert(
                store, "INSERT INTO devices (id, class, seq, address) VALUES (?1, ?2, ?3, ?4)",
                STORE_PARAMS(STORE_TEXT(id), STORE_TEXT(name), STORE_INT64(seq),
                             STORE_TEXT(address)),
                "adding a device", error,
                address ? "PCI device %s is already in a device class" : "device %s already exists",
                address ? address : id))
            return FALSE;
    }
    return TRUE;
}

gboolean store_device_class_insert(Store *store, const ApiDeviceClass *device_class, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    gboolean vfio = g_str_equal(device_class->kind, "vfio");

    if (!store_begin(store, error))
        return FALSE;
    gboolean ok =
        store_exec_insert(
            store,
            "INSERT INTO device_classes (name, kind, model, force, description, "
            "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            STORE_PARAMS(STORE_TEXT(device_class->name), STORE_TEXT(device_class->kind),
                         STORE_TEXT(device_class->model), STORE_INT64(device_class->force ? 1 : 0),
                         STORE_TEXT(device_class->description),
                         STORE_TEXT(device_class->created_at),
                         STORE_TEXT(device_class->updated_at)),
            "inserting a device class", error, "device class '%s' already exists",
            device_class->name) &&
        add_devices(store, device_class->name, 0,
                    vfio ? device_class->addresses->len : device_class->capacity,
                    vfio ? device_class->addresses : NULL, error);
    return store_end(store, ok, error);
}

ApiDeviceClass *store_device_class_get(Store *store, const char *name, GError **error)
{
    STORE_READ(store);
    g_autoptr(ApiDeviceClass) device_class =
        store_query_one(store, "SELECT " CLASS_COLUMNS " FROM device_classes c WHERE c.name = ?1",
                        STORE_PARAMS(STORE_TEXT(name)), class_from_row, "reading a device class",
                        error, "device class '%s' not found", name);
    if (device_class == NULL || !class_add_addresses(store, device_class, error))
        return NULL;
    return g_steal_pointer(&device_class);
}

GPtrArray *store_device_class_list(Store *store, GError **error)
{
    g_autofree char *next = NULL;
    return store_device_class_page(store, 0, NULL, &next, error);
}

/* Classes have no owner: their cursors' first part names the listing. */
#define CLASS_CURSOR_OWNER "device-classes"

GPtrArray *store_device_class_page(Store *store, int limit, const char *after, char **next,
                                   GError **error)
{
    g_return_val_if_fail(next != NULL, NULL);
    STORE_READ(store);
    g_autofree char *after_name = NULL;

    *next = NULL;
    if (!store_page_start(limit, after, CLASS_CURSOR_OWNER, &after_name, error))
        return NULL;
    gboolean more = FALSE;
    g_autoptr(GPtrArray) classes = store_query_page(
        store,
        "SELECT " CLASS_COLUMNS " FROM device_classes c WHERE (?1 IS NULL OR c.name > ?1) "
        "ORDER BY c.name LIMIT ?2",
        /* One more than asked tells whether there is a next page; -1 is no limit. */
        STORE_PARAMS(STORE_TEXT(after_name), STORE_INT64(limit > 0 ? (gint64)limit + 1 : -1)),
        class_from_row, (GDestroyNotify)api_device_class_free, (guint)limit, &more,
        "listing device classes", error);
    for (guint i = 0; classes != NULL && i < classes->len; i++) {
        if (!class_add_addresses(store, g_ptr_array_index(classes, i), error))
            return NULL;
    }
    if (classes != NULL && more) {
        const ApiDeviceClass *last = g_ptr_array_index(classes, classes->len - 1);
        *next = store_cursor_encode(CLASS_CURSOR_OWNER, last->name);
    }
    return g_steal_pointer(&classes);
}

/* Growing adds free devices at the end; shrinking removes the highest
 * ones, which must be free. */
static gboolean set_capacity(Store *store, const ApiDeviceClass *device_class, gint64 capacity,
                             GError **error)
{
    if (capacity >= device_class->capacity)
        return add_devices(store, device_class->name, device_class->capacity, capacity, NULL,
                           error);
    g_autoptr(sqlite3_stmt) row = NULL;
    if (!store_query_row(store, &row,
                         "SELECT id FROM devices WHERE class = ?1 AND seq >= ?2 AND "
                         "stack_id IS NOT NULL ORDER BY seq LIMIT 1",
                         STORE_PARAMS(STORE_TEXT(device_class->name), STORE_INT64(capacity)),
                         "checking held devices", error))
        return FALSE;
    if (row != NULL) {
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                    "device class '%s' cannot shrink to %" G_GINT64_FORMAT
                    ": device %s is held by a stack (detach it or delete that stack first)",
                    device_class->name, capacity, sqlite3_column_text(row, 0));
        return FALSE;
    }
    return store_exec(store, "DELETE FROM devices WHERE class = ?1 AND seq >= ?2",
                      STORE_PARAMS(STORE_TEXT(device_class->name), STORE_INT64(capacity)),
                      "removing devices", error);
}

gboolean store_device_class_update(Store *store, const char *name, gboolean has_capacity,
                                   gint64 capacity, gboolean has_description,
                                   const char *description, const char *updated_at, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    if (!store_begin(store, error))
        return FALSE;
    g_autoptr(ApiDeviceClass) device_class = store_device_class_get(store, name, error);
    gboolean ok = device_class != NULL;
    if (ok && has_capacity && g_str_equal(device_class->kind, "vfio")) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "capacity: a vfio class has one device per address; create another class "
                    "for other functions");
        ok = FALSE;
    }
    ok = ok && (!has_capacity || set_capacity(store, device_class, capacity, error)) &&
         (!has_description ||
          store_exec(store, "UPDATE device_classes SET description = ?2 WHERE name = ?1",
                     STORE_PARAMS(STORE_TEXT(name), STORE_TEXT(description)),
                     "updating a device class", error)) &&
         store_exec(store, "UPDATE device_classes SET updated_at = ?2 WHERE name = ?1",
                    STORE_PARAMS(STORE_TEXT(name), STORE_TEXT(updated_at)),
                    "updating a device class", error);
    return store_end(store, ok, error);
}

gboolean store_device_class_delete(Store *store, const char *name, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    if (!store_begin(store, error))
        return FALSE;
    g_autoptr(ApiDeviceClass) device_class = store_device_class_get(store, name, error);
    gboolean ok = device_class != NULL;
    if (ok && device_class->in_use > 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                    "device class '%s' has %" G_GINT64_FORMAT
                    " device(s) held by stacks: detach them or delete those stacks first",
                    name, device_class->in_use);
        ok = FALSE;
    }
    ok = ok &&
         store_exec(store, "DELETE FROM devices WHERE class = ?1", STORE_PARAMS(STORE_TEXT(name)),
                    "removing a class's devices", error) &&
         store_exec(store, "DELETE FROM device_classes WHERE name = ?1",
                    STORE_PARAMS(STORE_TEXT(name)), "deleting a device class", error);
    return store_end(store, ok, error);
}

/* ---- devices ------------------------------------------------------------ */

#define DEVICE_COLUMNS "d.id, d.class, c.model, d.address, d.stack_id, s.name, t.name"
#define DEVICE_FROM                                                                                \
    " FROM devices d JOIN device_classes c ON c.name = d.class"                                    \
    " LEFT JOIN stacks s ON s.id = d.stack_id LEFT JOIN tenants t ON t.id = s.tenant_id"

static gpointer device_from_row(sqlite3_stmt *stmt, GError **error)
{
    ApiDevice *device = api_device_new();

    (void)error;
    device->id = store_column_text(stmt, 0);
    device->class_name = store_column_text(stmt, 1);
    device->model = store_column_text(stmt, 2);
    device->address = store_column_text(stmt, 3);
    device->stack_id = store_column_text(stmt, 4);
    device->stack_name = store_column_text(stmt, 5);
    device->tenant = store_column_text(stmt, 6);
    return device;
}

GPtrArray *store_device_list(Store *store, const char *class_name, const char *tenant,
                             GError **error)
{
    g_autofree char *next = NULL;
    return store_device_page(store, class_name, tenant, 0, NULL, &next, error);
}

/* A device's place in the pool's order: its class, and its number there
 * (the digits after the last '-' of its id). */
static gboolean device_seq(const char *id, gint64 *seq)
{
    const char *dash = strrchr(id, '-');
    guint64 value = 0;
    if (dash == NULL || !g_ascii_string_to_unsigned(dash + 1, 10, 0, G_MAXINT64, &value, NULL))
        return FALSE;
    *seq = (gint64)value;
    return TRUE;
}

GPtrArray *store_device_page(Store *store, const char *class_name, const char *tenant, int limit,
                             const char *after, char **next, GError **error)
{
    g_return_val_if_fail(next != NULL, NULL);
    STORE_READ(store);
    g_autofree char *after_class = NULL;
    g_autofree char *after_seq_text = NULL;
    guint64 after_seq = 0;

    *next = NULL;
    if (!store_page_args(limit, after, &after_class, &after_seq_text, error))
        return NULL;
    /* The cursor is (class, number); one of another class's listing is not
     * this one's. */
    if (after_class != NULL &&
        (!g_ascii_string_to_unsigned(after_seq_text, 10, 0, G_MAXINT64, &after_seq, NULL) ||
         (class_name != NULL && strcmp(after_class, class_name) != 0))) {
        g_set_error_literal(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "after: invalid cursor");
        return NULL;
    }
    gboolean more = FALSE;
    g_autoptr(GPtrArray) devices = store_query_page(
        store,
        "SELECT " DEVICE_COLUMNS DEVICE_FROM
        " WHERE (?1 IS NULL OR d.class = ?1) AND (?2 IS NULL OR t.name = ?2)"
        " AND (?3 IS NULL OR (d.class, d.seq) > (?3, ?4)) ORDER BY d.class, d.seq LIMIT ?5",
        STORE_PARAMS(STORE_TEXT(class_name), STORE_TEXT(tenant), STORE_TEXT(after_class),
                     STORE_INT64((gint64)after_seq),
                     STORE_INT64(limit > 0 ? (gint64)limit + 1 : -1)),
        device_from_row, (GDestroyNotify)api_device_free, (guint)limit, &more, "listing devices",
        error);
    if (devices == NULL)
        return NULL;
    gint64 seq = 0;
    if (more) {
        const ApiDevice *last = g_ptr_array_index(devices, devices->len - 1);
        if (!device_seq(last->id, &seq)) {
            g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "store: device '%s' has a bad id",
                        last->id);
            return NULL;
        }
        g_autofree char *seq_text = g_strdup_printf("%" G_GINT64_FORMAT, seq);
        *next = store_cursor_encode(last->class_name, seq_text);
    }
    return g_steal_pointer(&devices);
}

GPtrArray *store_device_list_of_stack(Store *store, const char *stack_id, GError **error)
{
    STORE_READ(store);
    return store_query_list(store,
                            "SELECT " DEVICE_COLUMNS DEVICE_FROM
                            " WHERE d.stack_id = ?1 ORDER BY d.class, d.seq",
                            STORE_PARAMS(STORE_TEXT(stack_id)), device_from_row,
                            (GDestroyNotify)api_device_free, "listing a stack's devices", error);
}

ApiDevice *store_device_claim(Store *store, const char *class_name, const char *stack_id,
                              GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(ApiDeviceClass) device_class = store_device_class_get(store, class_name, error);
    if (device_class == NULL)
        return NULL;
    g_autoptr(ApiDevice) device =
        store_query_one(store,
                        "SELECT " DEVICE_COLUMNS DEVICE_FROM
                        " WHERE d.class = ?1 AND d.stack_id IS NULL ORDER BY d.seq LIMIT 1",
                        STORE_PARAMS(STORE_TEXT(class_name)), device_from_row,
                        "finding a free device", error, "no free device");
    if (device == NULL) {
        if (error != NULL && g_error_matches(*error, TD_ERROR, TD_ERROR_NOT_FOUND)) {
            g_clear_error(error);
            g_set_error(error, TD_ERROR, TD_ERROR_NO_CAPACITY,
                        "device class '%s' has no free device (%" G_GINT64_FORMAT
                        " of %" G_GINT64_FORMAT " in use)",
                        class_name, device_class->in_use, device_class->capacity);
        }
        return NULL;
    }
    if (!store_device_claim_id(store, device->id, stack_id, error))
        return NULL;
    g_free(device->stack_id);
    device->stack_id = g_strdup(stack_id);
    return g_steal_pointer(&device);
}

gboolean store_device_claim_id(Store *store, const char *device_id, const char *stack_id,
                               GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    if (!store_exec(store,
                    "UPDATE devices SET stack_id = ?2 WHERE id = ?1 AND "
                    "(stack_id IS NULL OR stack_id = ?2)",
                    STORE_PARAMS(STORE_TEXT(device_id), STORE_TEXT(stack_id)), "claiming a device",
                    error))
        return FALSE;
    if (sqlite3_changes(store->db) == 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                    "device %s does not exist or is held by another stack", device_id);
        return FALSE;
    }
    return TRUE;
}

gboolean store_device_release(Store *store, const char *device_id, const char *stack_id,
                              GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    return store_exec(store, "UPDATE devices SET stack_id = NULL WHERE id = ?1 AND stack_id = ?2",
                      STORE_PARAMS(STORE_TEXT(device_id), STORE_TEXT(stack_id)),
                      "releasing a device", error);
}

gint64 store_tenant_devices_in_use(Store *store, const char *tenant, GError **error)
{
    STORE_READ(store);
    g_autoptr(sqlite3_stmt) row = NULL;
    if (!store_query_row(store, &row,
                         "SELECT count(*) FROM devices d JOIN stacks s ON s.id = d.stack_id "
                         "JOIN tenants t ON t.id = s.tenant_id WHERE t.name = ?1",
                         STORE_PARAMS(STORE_TEXT(tenant)), "counting a tenant's devices", error))
        return -1;
    return row != NULL ? sqlite3_column_int64(row, 0) : 0;
}
