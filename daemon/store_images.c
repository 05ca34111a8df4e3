/* The store's images. */
#include "daemon/store.h"

#include <string.h>

#include "daemon/error.h"
#include "daemon/store-private.h"

#define IMAGE_COLUMNS                                                                              \
    "i.id, i.name, t.name, i.kind, i.format, i.state, i.size, i.sha256, i.error, i.created_at, "   \
    "i.updated_at, i.volume"
#define IMAGE_FROM " FROM images i JOIN tenants t ON t.id = i.tenant_id "

static gpointer image_from_row(sqlite3_stmt *stmt, GError **error)
{
    g_autoptr(ApiImage) image = api_image_new();
    const char *kind = (const char *)sqlite3_column_text(stmt, 3);
    const char *format = (const char *)sqlite3_column_text(stmt, 4);
    const char *state = (const char *)sqlite3_column_text(stmt, 5);

    image->id = store_column_text(stmt, 0);
    /* The schema's CHECKs make these hold unless someone edited the file. */
    if (!api_image_kind_from_string(kind, &image->kind) ||
        !api_image_format_from_string(format, &image->format) ||
        !api_image_state_from_string(state, &image->state)) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL,
                    "store: image '%s' has an unknown kind, format or state", image->id);
        return NULL;
    }
    image->name = store_column_text(stmt, 1);
    image->tenant = store_column_text(stmt, 2);
    image->size = sqlite3_column_type(stmt, 6) == SQLITE_NULL ? -1 : sqlite3_column_int64(stmt, 6);
    image->sha256 = store_column_text(stmt, 7);
    image->error = store_column_text(stmt, 8);
    image->created_at = store_column_text(stmt, 9);
    image->updated_at = store_column_text(stmt, 10);
    image->volume = store_column_text(stmt, 11);
    return g_steal_pointer(&image);
}

char *store_image_id(Store *store, const char *tenant, const char *name, GError **error)
{
    return store_query_one(store, "SELECT i.id" IMAGE_FROM "WHERE t.name = ?1 AND i.name = ?2",
                           STORE_PARAMS(STORE_TEXT(tenant), STORE_TEXT(name)), store_text_from_row,
                           "looking up an image", error, "image '%s' not found", name);
}

/* @tenant's images not ready: pending, uploading, or failed. */
static gboolean count_not_ready(Store *store, const char *owner, gint64 *count, GError **error)
{
    g_autoptr(sqlite3_stmt) row = NULL;
    if (!store_query_row(store, &row,
                         "SELECT count(*) FROM images WHERE tenant_id = ?1 AND state != ?2",
                         STORE_PARAMS(STORE_TEXT(owner),
                                      STORE_TEXT(api_image_state_to_string(API_IMAGE_STATE_READY))),
                         "counting images not ready", error))
        return FALSE;
    *count = row != NULL ? sqlite3_column_int64(row, 0) : 0;
    return TRUE;
}

gboolean store_image_insert_capped(Store *store, const ApiImage *image, gint64 max_not_ready,
                                   GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);

    /* One transaction: two creates cannot both take the last place. */
    if (!store_begin(store, error))
        return FALSE;
    g_autofree char *owner = store_tenant_id(store, image->tenant, error);
    gboolean ok = owner != NULL;
    gint64 not_ready = 0;
    if (ok && max_not_ready > 0) {
        ok = count_not_ready(store, owner, &not_ready, error);
        if (ok && not_ready >= max_not_ready) {
            g_set_error(error, TD_ERROR, TD_ERROR_QUOTA_EXCEEDED,
                        "tenant '%s' has %" G_GINT64_FORMAT " images that are not ready (pending, "
                        "uploading or failed), the most it may have: upload their data or delete "
                        "them before creating another",
                        image->tenant, not_ready);
            ok = FALSE;
        }
    }
    ok = ok && store_exec_insert(
                   store,
                   "INSERT INTO images (id, tenant_id, name, kind, format, state, size, sha256, "
                   "error, volume, created_at, updated_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                   STORE_PARAMS(STORE_TEXT(image->id), STORE_TEXT(owner), STORE_TEXT(image->name),
                                STORE_TEXT(api_image_kind_to_string(image->kind)),
                                STORE_TEXT(api_image_format_to_string(image->format)),
                                STORE_TEXT(api_image_state_to_string(image->state)),
                                STORE_INT64_OR_NULL(image->size), STORE_TEXT(image->sha256),
                                STORE_TEXT(image->error), STORE_TEXT(image->volume),
                                STORE_TEXT(image->created_at), STORE_TEXT(image->updated_at)),
                   "inserting an image", error, "image '%s' already exists", image->name);
    return store_end(store, ok, error);
}

gboolean store_image_insert(Store *store, const ApiImage *image, GError **error)
{
    return store_image_insert_capped(store, image, 0, error);
}

ApiImage *store_image_get(Store *store, const char *tenant, const char *name, GError **error)
{
    STORE_READ(store);
    return store_query_one(store,
                           "SELECT " IMAGE_COLUMNS IMAGE_FROM "WHERE t.name = ?1 AND i.name = ?2",
                           STORE_PARAMS(STORE_TEXT(tenant), STORE_TEXT(name)), image_from_row,
                           "reading an image", error, "image '%s' not found", name);
}

GPtrArray *store_image_list(Store *store, const char *tenant, GError **error)
{
    STORE_READ(store);
    g_autofree char *owner = store_tenant_id(store, tenant, error);
    if (owner == NULL)
        return NULL;
    return store_query_list(
        store, "SELECT " IMAGE_COLUMNS IMAGE_FROM "WHERE i.tenant_id = ?1 ORDER BY i.name",
        STORE_PARAMS(STORE_TEXT(owner)), image_from_row, (GDestroyNotify)api_image_free,
        "listing images", error);
}

GPtrArray *store_image_page(Store *store, const char *tenant, int limit, const char *after,
                            char **next, GError **error)
{
    g_return_val_if_fail(next != NULL, NULL);
    STORE_READ(store);
    g_autofree char *after_name = NULL;

    *next = NULL;
    /* Another tenant's cursor is not this listing's. */
    if (!store_page_start(limit, after, tenant, &after_name, error))
        return NULL;
    g_autofree char *owner = store_tenant_id(store, tenant, error);
    if (owner == NULL)
        return NULL;
    gboolean more = FALSE;
    g_autoptr(GPtrArray) images = store_query_page(
        store,
        "SELECT " IMAGE_COLUMNS IMAGE_FROM "WHERE i.tenant_id = ?1 AND (?2 IS NULL OR i.name > ?2) "
        "ORDER BY i.name LIMIT ?3",
        STORE_PARAMS(STORE_TEXT(owner), STORE_TEXT(after_name),
                     STORE_INT64(limit > 0 ? (gint64)limit + 1 : -1)),
        image_from_row, (GDestroyNotify)api_image_free, (guint)limit, &more, "listing images",
        error);
    if (images == NULL)
        return NULL;
    if (more) {
        const ApiImage *last = g_ptr_array_index(images, images->len - 1);
        *next = store_cursor_encode(tenant, last->name);
    }
    return g_steal_pointer(&images);
}

gboolean store_image_set_state(Store *store, const char *id, guint from, ApiImageState state,
                               gint64 size, const char *sha256, const char *error_message,
                               const char *updated_at, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autofree char *states = store_state_placeholders(from & STORE_IMAGE_ANY_STATE, 7);
    g_autofree char *sql = g_strdup_printf("UPDATE images SET state = ?2, size = ?3, sha256 = ?4, "
                                           "error = ?5, updated_at = ?6 "
                                           "WHERE id = ?1 AND state IN (%s)",
                                           states);
    /* The zeroed tail ends the list after the states of @from. */
    StoreParam params[6 + API_IMAGE_STATE_ERROR + 2] = {
        STORE_TEXT(id),
        STORE_TEXT(api_image_state_to_string(state)),
        STORE_INT64_OR_NULL(size),
        STORE_TEXT(sha256),
        STORE_TEXT(error_message),
        STORE_TEXT(updated_at),
    };
    int index = 6;
    for (int s = 0; s <= API_IMAGE_STATE_ERROR; s++) {
        if (from & (1u << s))
            params[index++] = STORE_TEXT(api_image_state_to_string((ApiImageState)s));
    }
    if (!store_exec(store, sql, params, "updating an image", error))
        return FALSE;
    if (sqlite3_changes(store->db) > 0)
        return TRUE;
    /* Gone, or in a state the caller did not expect. */
    g_autoptr(sqlite3_stmt) row = NULL;
    if (!store_query_row(store, &row, "SELECT i.name, i.state FROM images i WHERE i.id = ?1",
                         STORE_PARAMS(STORE_TEXT(id)), "reading an image", error))
        return FALSE;
    if (row == NULL) {
        g_set_error(error, TD_ERROR, TD_ERROR_NOT_FOUND, "image '%s' not found", id);
        return FALSE;
    }
    g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "image '%s' is %s: it cannot become %s now",
                (const char *)sqlite3_column_text(row, 0),
                (const char *)sqlite3_column_text(row, 1), api_image_state_to_string(state));
    return FALSE;
}

/* The name of a stack using image @id, or NULL with *@failed set on error. */
static char *image_user(Store *store, const char *id, gboolean *failed, GError **error)
{
    g_autoptr(sqlite3_stmt) row = NULL;

    *failed = !store_query_row(store, &row,
                               "SELECT s.name FROM stack_images u "
                               "JOIN stacks s ON s.id = u.stack_id "
                               "WHERE u.image_id = ?1 ORDER BY s.name LIMIT 1",
                               STORE_PARAMS(STORE_TEXT(id)), "checking what uses an image", error);
    return row != NULL ? store_column_text(row, 0) : NULL;
}

gboolean store_image_delete(Store *store, const char *tenant, const char *name, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);

    /* One transaction: no stack may start using it between check and delete. */
    if (!store_begin(store, error))
        return FALSE;
    g_autofree char *id = store_image_id(store, tenant, name, error);
    if (id == NULL)
        return store_end(store, FALSE, error);
    gboolean failed = FALSE;
    g_autofree char *user = image_user(store, id, &failed, error);
    if (failed || user != NULL) {
        if (user != NULL)
            g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "image '%s' is used by stack '%s'",
                        name, user);
        return store_end(store, FALSE, error);
    }
    gboolean ok = store_exec(store, "DELETE FROM images WHERE id = ?1",
                             STORE_PARAMS(STORE_TEXT(id)), "deleting an image", error);
    return store_end(store, ok, error);
}
