/* The store's operations. */
#include "daemon/store.h"

#include "daemon/error.h"
#include "daemon/store-private.h"

#define STORE_INTERRUPTED "interrupted by daemon restart"

gboolean store_operation_insert(Store *store, const ApiOperation *operation, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);

    if (!store_begin(store, error))
        return FALSE;
    g_autofree char *owner = NULL;
    if (operation->tenant != NULL) {
        owner = store_tenant_id(store, operation->tenant, error);
        if (owner == NULL)
            return store_end(store, FALSE, error);
    }
    gboolean ok = store_exec_insert(
        store,
        "INSERT INTO operations (id, kind, target, tenant_id, status, percent, stage, "
        "bytes_done, bytes_total, error, created_at, updated_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        STORE_PARAMS(
            STORE_TEXT(operation->id), STORE_TEXT(operation->kind), STORE_TEXT(operation->target),
            STORE_TEXT(owner), STORE_TEXT(api_operation_status_to_string(operation->status)),
            STORE_INT64(operation->progress.percent), STORE_TEXT(operation->progress.stage),
            STORE_INT64(operation->progress.bytes_done),
            STORE_INT64(operation->progress.bytes_total), STORE_TEXT(operation->error),
            STORE_TEXT(operation->created_at), STORE_TEXT(operation->updated_at)),
        "inserting an operation", error, "operation '%s' already exists", operation->id);
    return store_end(store, ok, error);
}

gboolean store_operation_update(Store *store, const ApiOperation *operation, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    return store_exec_changes(
        store,
        "UPDATE operations SET status = ?2, percent = ?3, stage = ?4, bytes_done = ?5, "
        "bytes_total = ?6, error = ?7, updated_at = ?8 WHERE id = ?1",
        STORE_PARAMS(STORE_TEXT(operation->id),
                     STORE_TEXT(api_operation_status_to_string(operation->status)),
                     STORE_INT64(operation->progress.percent),
                     STORE_TEXT(operation->progress.stage),
                     STORE_INT64(operation->progress.bytes_done),
                     STORE_INT64(operation->progress.bytes_total), STORE_TEXT(operation->error),
                     STORE_TEXT(operation->updated_at)),
        "updating an operation", error, "operation '%s' not found", operation->id);
}

static gpointer operation_from_row(sqlite3_stmt *stmt, GError **error)
{
    g_autoptr(ApiOperation) operation = api_operation_new();
    const char *status = (const char *)sqlite3_column_text(stmt, 4);
    if (!api_operation_status_from_string(status, &operation->status)) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL,
                    "store: operation '%s' has an unknown status '%s'",
                    (const char *)sqlite3_column_text(stmt, 0), status);
        return NULL;
    }
    operation->id = store_column_text(stmt, 0);
    operation->kind = store_column_text(stmt, 1);
    operation->target = store_column_text(stmt, 2);
    operation->tenant = store_column_text(stmt, 3);
    operation->progress.percent = sqlite3_column_int(stmt, 5);
    operation->progress.stage = store_column_text(stmt, 6);
    operation->progress.bytes_done = sqlite3_column_int64(stmt, 7);
    operation->progress.bytes_total = sqlite3_column_int64(stmt, 8);
    operation->error = store_column_text(stmt, 9);
    operation->created_at = store_column_text(stmt, 10);
    operation->updated_at = store_column_text(stmt, 11);
    return g_steal_pointer(&operation);
}

ApiOperation *store_operation_get(Store *store, const char *id, GError **error)
{
    STORE_READ(store);
    return store_query_one(
        store,
        "SELECT o.id, o.kind, o.target, t.name, o.status, o.percent, o.stage, "
        "o.bytes_done, o.bytes_total, o.error, o.created_at, o.updated_at "
        "FROM operations o LEFT JOIN tenants t ON t.id = o.tenant_id WHERE o.id = ?1",
        STORE_PARAMS(STORE_TEXT(id)), operation_from_row, "reading an operation", error,
        "operation '%s' not found", id);
}

int store_operation_fail_interrupted(Store *store, const char *now, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    if (!store_exec(store,
                    "UPDATE operations SET status = 'failed', error = ?1, updated_at = ?2 "
                    "WHERE status IN ('pending', 'running')",
                    STORE_PARAMS(STORE_TEXT(STORE_INTERRUPTED), STORE_TEXT(now)),
                    "failing interrupted operations", error))
        return -1;
    return sqlite3_changes(store->db);
}

/* "value\tvalue ... -> count" of a GROUP BY query whose last column is the
 * count and whose others are text; @sum (may be NULL) adds up a second
 * number column after the count. */
static GHashTable *count_groups(Store *store, const char *sql, guint keys, gint64 *sum,
                                const char *what, GError **error)
{
    STORE_READ(store);
    g_autoptr(sqlite3_stmt) stmt = store_prepare(store, sql, error);
    if (stmt == NULL)
        return NULL;

    g_autoptr(GHashTable) counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    int rc;
    if (sum != NULL)
        *sum = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        g_autoptr(GString) key = g_string_new(NULL);
        for (guint i = 0; i < keys; i++)
            g_string_append_printf(key, "%s%s", i ? "\t" : "",
                                   (const char *)sqlite3_column_text(stmt, (int)i));
        g_hash_table_insert(counts, g_string_free(g_steal_pointer(&key), FALSE),
                            GINT_TO_POINTER(sqlite3_column_int(stmt, (int)keys)));
        if (sum != NULL)
            *sum += sqlite3_column_int64(stmt, (int)keys + 1);
    }
    if (rc != SQLITE_DONE) {
        store_set_internal(store, error, what);
        return NULL;
    }
    return g_steal_pointer(&counts);
}

GHashTable *store_stack_counts(Store *store, GError **error)
{
    return count_groups(store, "SELECT state, count(*) FROM stacks GROUP BY state", 1, NULL,
                        "counting stacks", error);
}

GHashTable *store_image_counts(Store *store, gint64 *bytes, GError **error)
{
    return count_groups(store,
                        "SELECT state, count(*), coalesce(sum(size), 0) FROM images GROUP BY state",
                        1, bytes, "counting images", error);
}

GHashTable *store_operation_counts(Store *store, GError **error)
{
    return count_groups(store,
                        "SELECT kind, status, count(*) FROM operations GROUP BY kind, status", 2,
                        NULL, "counting operations", error);
}
