/* The store's stacks: their rows and the images they use, pagination
 * cursors, the usage quotas are checked against, and the last migration that
 * brought a stack here. */
#include "daemon/store.h"

#include <string.h>

#include "api/json.h"
#include "daemon/error.h"
#include "daemon/store-private.h"

#define STACK_COLUMNS                                                                              \
    "s.id, t.name, s.spec_json, s.state, s.host, s.backend, s.domain_name, s.error, "              \
    "s.created_at, s.updated_at, "                                                                 \
    "(SELECT group_concat(c.mac || '=' || ifnull(c.ip, ''), ',') FROM stack_nics c "               \
    "  WHERE c.stack_id = s.id)"
#define STACK_FROM " FROM stacks s JOIN tenants t ON t.id = s.tenant_id "

static gpointer stack_from_row(sqlite3_stmt *stmt, GError **error)
{
    g_autofree char *id = store_column_text(stmt, 0);
    const char *spec_json = (const char *)sqlite3_column_text(stmt, 2);
    const char *state = (const char *)sqlite3_column_text(stmt, 3);
    g_autoptr(GError) local = NULL;

    /* The spec was validated on its way in; failing here means the file was
     * edited or a newer turtled's spec, neither of which a client caused. */
    g_autoptr(json_object) value = api_json_parse(
        spec_json ? spec_json : "", spec_json ? strlen(spec_json) : 0, API_JSON_MAX_DEPTH, &local);
    ApiStackSpec *spec = value != NULL ? api_stack_spec_from_record_json(value, &local) : NULL;
    if (spec == NULL) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "store: stack '%s' has a bad spec: %s", id,
                    local->message);
        return NULL;
    }
    g_autoptr(ApiStack) stack = api_stack_new(spec);
    if (!api_stack_state_from_string(state, &stack->state)) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "store: stack '%s' has an unknown state",
                    id);
        return NULL;
    }
    stack->id = g_steal_pointer(&id);
    stack->tenant = store_column_text(stmt, 1);
    stack->host = store_column_text(stmt, 4);
    stack->backend = store_column_text(stmt, 5);
    stack->domain_name = store_column_text(stmt, 6);
    stack->error = store_column_text(stmt, 7);
    stack->created_at = store_column_text(stmt, 8);
    stack->updated_at = store_column_text(stmt, 9);
    /* The leases last seen, "mac=ip,mac=" (empty: none yet). */
    g_autofree char *leases = store_column_text(stmt, 10);
    g_auto(GStrv) pairs = g_strsplit(leases ? leases : "", ",", -1);
    for (char **pair = pairs; *pair; pair++) {
        char *eq = strchr(*pair, '=');
        for (guint i = 0; eq && i < stack->spec->nics->len; i++) {
            ApiStackNic *nic = g_ptr_array_index(stack->spec->nics, i);
            if (g_strcmp0(nic->mac, NULL) != 0 && strncmp(nic->mac, *pair, eq - *pair) == 0 &&
                eq[1] != '\0') {
                g_free(nic->ip);
                nic->ip = g_strdup(eq + 1);
            }
        }
    }
    return g_steal_pointer(&stack);
}

/* Records that stack @stack_id uses each of @images, names of @tenant's. */
static gboolean stack_use_images(Store *store, const char *stack_id, const char *tenant,
                                 const char *const *images, GError **error)
{
    /* OR IGNORE: one image may be named twice (a kernel doubling as initrd). */
    g_autoptr(sqlite3_stmt) stmt = store_prepare(
        store, "INSERT OR IGNORE INTO stack_images (stack_id, image_id) VALUES (?1, ?2)", error);
    if (stmt == NULL)
        return FALSE;
    for (gsize i = 0; images != NULL && images[i] != NULL; i++) {
        g_autofree char *id = store_image_id(store, tenant, images[i], error);
        if (id == NULL)
            return FALSE;
        sqlite3_reset(stmt);
        int bound = store_bind(stmt, STORE_PARAMS(STORE_TEXT(stack_id), STORE_TEXT(id)));
        if (store_step(stmt, bound) != SQLITE_DONE) {
            store_set_internal(store, error, "recording the images of a stack");
            return FALSE;
        }
    }
    return TRUE;
}

gboolean store_stack_insert(Store *store, const ApiStack *stack, const char *const *images,
                            GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(GError) invalid = NULL;

    /* A spec the store could not read back would make the stack unreadable. */
    if (!api_stack_spec_validate(stack->spec, &invalid)) {
        g_set_error_literal(error, TD_ERROR, TD_ERROR_BAD_REQUEST, invalid->message);
        return FALSE;
    }
    g_autoptr(json_object) spec = api_stack_spec_to_json(stack->spec);
    g_autofree char *spec_json = api_json_to_string(spec);

    if (!store_begin(store, error))
        return FALSE;
    g_autofree char *owner = store_tenant_id(store, stack->tenant, error);
    gboolean ok =
        owner != NULL &&
        store_exec_insert(
            store,
            "INSERT INTO stacks (id, tenant_id, name, spec_json, vcpus, memory_mib, state, "
            "host, backend, domain_name, error, created_at, updated_at) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            STORE_PARAMS(STORE_TEXT(stack->id), STORE_TEXT(owner), STORE_TEXT(stack->spec->name),
                         STORE_TEXT(spec_json), STORE_INT64(stack->spec->vcpus),
                         STORE_INT64(stack->spec->memory_mib),
                         STORE_TEXT(api_stack_state_to_string(stack->state)),
                         STORE_TEXT(stack->host), STORE_TEXT(stack->backend),
                         STORE_TEXT(stack->domain_name), STORE_TEXT(stack->error),
                         STORE_TEXT(stack->created_at), STORE_TEXT(stack->updated_at)),
            "inserting a stack", error, "stack '%s' already exists", stack->spec->name) &&
        stack_use_images(store, stack->id, stack->tenant, images, error) &&
        store_stack_nics_insert(store, stack, error);
    return store_end(store, ok, error);
}

ApiStack *store_stack_get(Store *store, const char *tenant, const char *name, GError **error)
{
    STORE_READ(store);
    return store_query_one(store,
                           "SELECT " STACK_COLUMNS STACK_FROM "WHERE t.name = ?1 AND s.name = ?2",
                           STORE_PARAMS(STORE_TEXT(tenant), STORE_TEXT(name)), stack_from_row,
                           "reading a stack", error, "stack '%s' not found", name);
}

/* The stack with id @id, or NOT_FOUND. */
static ApiStack *stack_find_by_id(Store *store, const char *id, GError **error)
{
    return store_query_one(store, "SELECT " STACK_COLUMNS STACK_FROM "WHERE s.id = ?1",
                           STORE_PARAMS(STORE_TEXT(id)), stack_from_row, "reading a stack", error,
                           "stack '%s' not found", id);
}

ApiStack *store_stack_get_by_id(Store *store, const char *id, GError **error)
{
    STORE_READ(store);
    return stack_find_by_id(store, id, error);
}

GPtrArray *store_stack_list(Store *store, const char *tenant, int limit, const char *after,
                            char **next, GError **error)
{
    g_return_val_if_fail(next != NULL, NULL);
    STORE_READ(store);
    g_autofree char *after_tenant = NULL;
    g_autofree char *after_name = NULL;

    *next = NULL;
    if (!store_page_args(limit, after, &after_tenant, &after_name, error))
        return NULL;
    /* Another tenant's cursor would only start this listing somewhere odd;
     * refusing it keeps cursors tied to the listing that made them. */
    if (tenant != NULL && after_tenant != NULL && strcmp(after_tenant, tenant) != 0) {
        g_set_error_literal(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "after: invalid cursor");
        return NULL;
    }
    if (tenant != NULL) {
        g_autofree char *owner = store_tenant_id(store, tenant, error);
        if (owner == NULL)
            return NULL;
    }
    gboolean more = FALSE;
    g_autoptr(GPtrArray) stacks = store_query_page(
        store,
        /* Tenants outside (CROSS JOIN keeps SQLite to that order) and by a
         * range of their name index, each one's stacks by theirs: a page
         * seeks to the cursor and reads its rows in order, with no scan
         * and no sort of every stack.  char(1114111), the last code point,
         * is above every name. */
        "SELECT " STACK_COLUMNS " FROM tenants t CROSS JOIN stacks s ON s.tenant_id = t.id "
        "WHERE t.name >= ifnull(?1, ifnull(?2, '')) AND t.name <= ifnull(?1, char(1114111)) "
        "AND (?2 IS NULL OR t.name > ?2 OR s.name > ?3) "
        "ORDER BY t.name, s.name LIMIT ?4",
        /* One more than asked tells whether there is a next page; -1 is no limit. */
        STORE_PARAMS(STORE_TEXT(tenant), STORE_TEXT(after_tenant), STORE_TEXT(after_name),
                     STORE_INT64(limit > 0 ? (gint64)limit + 1 : -1)),
        stack_from_row, (GDestroyNotify)api_stack_free, (guint)limit, &more, "listing stacks",
        error);
    if (stacks == NULL)
        return NULL;
    if (more) {
        const ApiStack *last = g_ptr_array_index(stacks, stacks->len - 1);
        *next = store_cursor_encode(last->tenant, last->spec->name);
    }
    return g_steal_pointer(&stacks);
}

/* After an UPDATE ... WHERE id = @id AND state IN (...) changed nothing:
 * NOT_FOUND when the stack is gone, CONFLICT naming the state it is in. */
static void stack_state_refused(Store *store, const char *id, ApiStackState wanted, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(ApiStack) stack = stack_find_by_id(store, id, &local);
    if (stack == NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return;
    }
    g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "stack '%s' is %s: it cannot become %s now",
                stack->spec->name, api_stack_state_to_string(stack->state),
                api_stack_state_to_string(wanted));
}

gboolean store_stack_set_state(Store *store, const char *id, guint from, ApiStackState state,
                               const char *error_message, const char *updated_at, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autofree char *states = store_state_placeholders(from & STORE_STACK_ANY_STATE, 5);
    g_autofree char *sql = g_strdup_printf(
        "UPDATE stacks SET state = ?2, error = ?3, updated_at = ?4 WHERE id = ?1 AND state IN (%s)",
        states);
    /* The zeroed tail ends the list after the states of @from. */
    StoreParam params[4 + API_STACK_STATE_DELETING + 2] = {
        STORE_TEXT(id),
        STORE_TEXT(api_stack_state_to_string(state)),
        STORE_TEXT(error_message),
        STORE_TEXT(updated_at),
    };
    int index = 4;
    for (int s = 0; s <= API_STACK_STATE_DELETING; s++) {
        if (from & (1u << s))
            params[index++] = STORE_TEXT(api_stack_state_to_string((ApiStackState)s));
    }
    if (!store_exec(store, sql, params, "updating a stack", error))
        return FALSE;
    if (sqlite3_changes(store->db) == 0) {
        stack_state_refused(store, id, state, error);
        return FALSE;
    }
    return TRUE;
}

gboolean store_stack_delete(Store *store, const char *id, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    /* stack_images rows go with it (ON DELETE CASCADE). */
    return store_exec_changes(store, "DELETE FROM stacks WHERE id = ?1",
                              STORE_PARAMS(STORE_TEXT(id)), "deleting a stack", error,
                              "stack '%s' not found", id);
}

gboolean store_stack_set_spec(Store *store, const char *id, const ApiStackSpec *spec,
                              const char *updated_at, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(json_object) json = api_stack_spec_to_json(spec);
    g_autofree char *spec_json = api_json_to_string(json);
    return store_exec_changes(
        store, "UPDATE stacks SET spec_json = ?2, updated_at = ?3 WHERE id = ?1",
        STORE_PARAMS(STORE_TEXT(id), STORE_TEXT(spec_json), STORE_TEXT(updated_at)),
        "updating a stack's spec", error, "stack '%s' not found", id);
}

/* ---- usage ------------------------------------------------------------- */

gboolean store_tenant_usage(Store *store, const char *tenant, gint64 *stacks, gint64 *vcpus,
                            gint64 *memory_mib, gint64 *disk_bytes, GError **error)
{
    STORE_READ(store);
    g_autofree char *owner = store_tenant_id(store, tenant, error);
    if (owner == NULL)
        return FALSE;
    /* One statement: one consistent snapshot of both tables. */
    g_autoptr(sqlite3_stmt) row = NULL;
    if (!store_query_row(store, &row,
                         "SELECT (SELECT count(*) FROM stacks WHERE tenant_id = ?1),"
                         " (SELECT ifnull(sum(vcpus), 0) FROM stacks WHERE tenant_id = ?1),"
                         " (SELECT ifnull(sum(memory_mib), 0) FROM stacks WHERE tenant_id = ?1),"
                         " (SELECT ifnull(sum(size), 0) FROM images WHERE tenant_id = ?1)",
                         STORE_PARAMS(STORE_TEXT(owner)), "summing a tenant's usage", error))
        return FALSE;
    if (row == NULL) {
        store_set_internal(store, error, "summing a tenant's usage");
        return FALSE;
    }
    if (stacks != NULL)
        *stacks = sqlite3_column_int64(row, 0);
    if (vcpus != NULL)
        *vcpus = sqlite3_column_int64(row, 1);
    if (memory_mib != NULL)
        *memory_mib = sqlite3_column_int64(row, 2);
    if (disk_bytes != NULL)
        *disk_bytes = sqlite3_column_int64(row, 3);
    return TRUE;
}

/* ---- migrations of stacks ------------------------------------------------ */

gboolean store_stack_set_last_migration(Store *store, const char *stack_id,
                                        const ApiStatsMigration *migration, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    return store_exec(
        store,
        "INSERT OR REPLACE INTO stack_migrations (stack_id, peer, finished_at, total_ms, "
        "downtime_ms, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        STORE_PARAMS(STORE_TEXT(stack_id), STORE_TEXT(migration->peer),
                     STORE_TEXT(migration->finished_at), STORE_INT64(migration->total_ms),
                     STORE_INT64(migration->downtime_ms), STORE_INT64(migration->bytes)),
        "recording a migration", error);
}

gboolean store_stack_get_last_migration(Store *store, const char *stack_id,
                                        ApiStatsMigration *migration, gboolean *found,
                                        GError **error)
{
    STORE_READ(store);
    g_autoptr(sqlite3_stmt) row = NULL;

    *found = FALSE;
    if (!store_query_row(store, &row,
                         "SELECT peer, finished_at, total_ms, downtime_ms, bytes "
                         "FROM stack_migrations WHERE stack_id = ?1",
                         STORE_PARAMS(STORE_TEXT(stack_id)), "reading a migration", error))
        return FALSE;
    if (row == NULL)
        return TRUE;
    migration->peer = store_column_text(row, 0);
    migration->finished_at = store_column_text(row, 1);
    migration->total_ms = sqlite3_column_int64(row, 2);
    migration->downtime_ms = sqlite3_column_int64(row, 3);
    migration->bytes = sqlite3_column_int64(row, 4);
    *found = TRUE;
    return TRUE;
}
