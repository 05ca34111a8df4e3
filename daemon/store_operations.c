/* The store's operations. */
#include "daemon/store.h"

#include "daemon/error.h"
#include "daemon/store-private.h"

#define STORE_INTERRUPTED "interrupted by daemon restart"

#define OPERATION_COLUMNS                                                                          \
    "o.id, o.kind, o.target, t.name, o.status, o.percent, o.stage, o.bytes_done, "                 \
    "o.bytes_total, o.error, o.created_at, o.updated_at"
#define OPERATION_FROM " FROM operations o LEFT JOIN tenants t ON t.id = o.tenant_id "

/* The owner of the cursors of the listing of everyone's operations (a
 * tenant's listing has the tenant's name): no tenant name is "*". */
#define ALL_OPERATIONS_LISTING "*"

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
    return store_query_one(store, "SELECT " OPERATION_COLUMNS OPERATION_FROM "WHERE o.id = ?1",
                           STORE_PARAMS(STORE_TEXT(id)), operation_from_row, "reading an operation",
                           error, "operation '%s' not found", id);
}

/* The created_at of the operation @id a cursor names, which the listing of
 * the tenant @owner_id (NULL: everyone's) must be able to see: a tenant
 * learns nothing of another's operation ids from its cursors. */
static char *cursor_created_at(Store *store, const char *id, const char *owner_id, GError **error)
{
    g_autoptr(sqlite3_stmt) row = NULL;
    if (!store_query_row(store, &row,
                         "SELECT created_at FROM operations "
                         "WHERE id = ?1 AND (?2 IS NULL OR tenant_id = ?2)",
                         STORE_PARAMS(STORE_TEXT(id), STORE_TEXT(owner_id)),
                         "reading a cursor's operation", error))
        return NULL;
    if (row == NULL) {
        g_set_error_literal(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "after: invalid cursor");
        return NULL;
    }
    return store_column_text(row, 0);
}

/* Newest first, by (created_at, id) rather than updated_at: created_at never
 * changes, so an operation that moves on (pending, running, failed) stays
 * where it was between two pages, and one submitted while a client walks the
 * pages lands before its first page instead of shifting the rest; the UUID
 * orders the ones of the same microsecond.  Each listing seeks its index
 * (operations_tenant_created, operations_created) to the cursor and reads on
 * in order, so a page costs its rows, not a sort of every operation; the
 * unary + keeps SQLite off the status index, which would read every row of
 * a status and sort them.  No cursor: char(1114111), the last code point, is
 * above every time.  Statuses: ?4..?8, NULL for those not wanted. */
#define OPERATION_PAGE_WHERE                                                                       \
    "(o.created_at, o.id) < (ifnull(?2, char(1114111)), ifnull(?3, '')) "                          \
    "AND +o.status IN (?4, ?5, ?6, ?7, ?8) AND (?9 IS NULL OR o.kind = ?9) "                       \
    "ORDER BY o.created_at DESC, o.id DESC LIMIT ?10"

G_STATIC_ASSERT(STORE_OPERATION_ANY_STATUS == 0x1f); /* the five of ?4..?8 */

GPtrArray *store_operation_page(Store *store, const StoreOperationFilter *filter, int limit,
                                const char *after, char **next, GError **error)
{
    g_return_val_if_fail(filter != NULL && next != NULL, NULL);
    STORE_READ(store);
    const char *listing = filter->tenant != NULL ? filter->tenant : ALL_OPERATIONS_LISTING;
    g_autofree char *after_id = NULL;
    g_autofree char *owner_id = NULL;
    g_autofree char *after_created = NULL;

    *next = NULL;
    if (!store_page_start(limit, after, listing, &after_id, error))
        return NULL;
    if (filter->tenant != NULL &&
        (owner_id = store_tenant_id(store, filter->tenant, error)) == NULL)
        return NULL;
    if (after_id != NULL &&
        (after_created = cursor_created_at(store, after_id, owner_id, error)) == NULL)
        return NULL;

    guint wanted = filter->statuses != 0 ? filter->statuses : STORE_OPERATION_ANY_STATUS;
    const char *statuses[API_OP_CANCELLED + 1];
    for (int status = 0; status <= API_OP_CANCELLED; status++)
        statuses[status] = (wanted & STORE_STATE(status)) != 0
                               ? api_operation_status_to_string((ApiOperationStatus)status)
                               : NULL;
    gboolean more = FALSE;
    g_autoptr(GPtrArray) operations = store_query_page(
        store,
        owner_id != NULL ? "SELECT " OPERATION_COLUMNS OPERATION_FROM
                           "WHERE o.tenant_id = ?1 AND " OPERATION_PAGE_WHERE
                         : "SELECT " OPERATION_COLUMNS OPERATION_FROM "WHERE " OPERATION_PAGE_WHERE,
        /* One more than asked tells whether there is a next page; -1 is no limit. */
        STORE_PARAMS(STORE_TEXT(owner_id), STORE_TEXT(after_created), STORE_TEXT(after_id),
                     STORE_TEXT(statuses[0]), STORE_TEXT(statuses[1]), STORE_TEXT(statuses[2]),
                     STORE_TEXT(statuses[3]), STORE_TEXT(statuses[4]), STORE_TEXT(filter->kind),
                     STORE_INT64(limit > 0 ? (gint64)limit + 1 : -1)),
        operation_from_row, (GDestroyNotify)api_operation_free, (guint)limit, &more,
        "listing operations", error);
    if (operations == NULL)
        return NULL;
    if (more) {
        const ApiOperation *last = g_ptr_array_index(operations, operations->len - 1);
        *next = store_cursor_encode(listing, last->id);
    }
    return g_steal_pointer(&operations);
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
