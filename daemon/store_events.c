/* The store's event ring (store_events.h). */
#include "daemon/store_events.h"

#include "daemon/error.h"
#include "daemon/store-private.h"

void store_event_free(StoreEvent *event)
{
    if (event == NULL)
        return;
    g_free(event->type);
    g_free(event->data);
    g_free(event);
}

gint64 store_event_append(Store *store, const char *type, const char *tenant, const char *data,
                          const char *created_at, guint ring, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);

    if (store->depth > 0) {
        g_set_error_literal(error, TD_ERROR, TD_ERROR_INTERNAL,
                            "store: an event cannot join an open transaction");
        return 0;
    }
    if (!store_begin(store, error))
        return 0;
    /* An unknown name leaves the event to the operator rather than failing it. */
    gboolean ok = store_exec(store,
                             "INSERT INTO events (type, tenant_id, data, created_at) "
                             "VALUES (?1, (SELECT id FROM tenants WHERE name = ?2), ?3, ?4)",
                             STORE_PARAMS(STORE_TEXT(type), STORE_TEXT(tenant), STORE_TEXT(data),
                                          STORE_TEXT(created_at)),
                             "keeping an event", error);
    gint64 id = ok ? sqlite3_last_insert_rowid(store->db) : 0;
    /* Ids are consecutive (AUTOINCREMENT, one writer under the lock): the
     * newest @ring are those above id - ring, a range of the primary key. */
    ok = ok &&
         store_exec(store, "DELETE FROM events WHERE id <= ?1",
                    STORE_PARAMS(STORE_INT64(id - (gint64)ring)), "trimming the events", error);
    return store_end(store, ok, error) ? id : 0;
}

/* The ring's bounds: *@newest the highest id ever given (0: none yet),
 * *@oldest the lowest id still kept (newest + 1 when none is). */
static gboolean ring_bounds(Store *store, gint64 *oldest, gint64 *newest, GError **error)
{
    g_autoptr(sqlite3_stmt) row = NULL;
    if (!store_query_row(
            store, &row,
            "SELECT ifnull((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), "
            "(SELECT min(id) FROM events)",
            STORE_NO_PARAMS, "reading the event ring's bounds", error))
        return FALSE;
    *newest = sqlite3_column_int64(row, 0);
    *oldest =
        sqlite3_column_type(row, 1) == SQLITE_NULL ? *newest + 1 : sqlite3_column_int64(row, 1);
    return TRUE;
}

static gboolean check_cursor(Store *store, gint64 after, gint64 *newest, GError **error)
{
    gint64 oldest = 0, last = 0;
    if (!ring_bounds(store, &oldest, &last, error))
        return FALSE;
    if (newest != NULL)
        *newest = last;
    if (after > last) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "event %" G_GINT64_FORMAT " does not exist: the newest is %" G_GINT64_FORMAT,
                    after, last);
        return FALSE;
    }
    /* Ids are consecutive: anything between the cursor and the oldest kept
     * was trimmed, whoever it belonged to. */
    if (after + 1 < oldest) {
        g_set_error(error, TD_ERROR, TD_ERROR_GONE,
                    "the events after %" G_GINT64_FORMAT
                    " are no longer kept (the oldest is %" G_GINT64_FORMAT
                    "): list the resources again to resync, and follow the "
                    "stream without a cursor",
                    after, oldest);
        return FALSE;
    }
    return TRUE;
}

gboolean store_event_check_cursor(Store *store, gint64 after, gint64 *newest, GError **error)
{
    STORE_READ(store);
    return check_cursor(store, after, newest, error);
}

static gpointer event_from_row(sqlite3_stmt *stmt, GError **error)
{
    StoreEvent *event = g_new0(StoreEvent, 1);

    (void)error;
    event->id = sqlite3_column_int64(stmt, 0);
    event->type = store_column_text(stmt, 1);
    event->data = store_column_text(stmt, 2);
    return event;
}

GPtrArray *store_event_page(Store *store, const char *tenant, gint64 after, gint64 until,
                            guint limit, GError **error)
{
    STORE_READ(store);

    if (!check_cursor(store, after, NULL, error))
        return NULL;
    /* A tenant's by its id, not its name: a namesake must not see them. */
    const char *sql = tenant != NULL
                          ? "SELECT id, type, data FROM events "
                            "WHERE tenant_id = (SELECT id FROM tenants WHERE name = ?1) "
                            "AND id > ?2 AND id <= ?3 ORDER BY id LIMIT ?4"
                          : "SELECT id, type, data FROM events "
                            "WHERE id > ?2 AND id <= ?3 ORDER BY id LIMIT ?4"; /* ?1 unused */
    return store_query_list(store, sql,
                            STORE_PARAMS(STORE_TEXT(tenant), STORE_INT64(after), STORE_INT64(until),
                                         STORE_INT64(limit)),
                            event_from_row, (GDestroyNotify)store_event_free, "reading the events",
                            error);
}
