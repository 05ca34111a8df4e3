/* The store's tenants and their tokens. */
#include "daemon/store.h"

#include <string.h>

#include "daemon/clock.h"
#include "daemon/error.h"
#include "daemon/store-private.h"

/* A tenant cannot be deleted while one of these finds a row; ?1 is the
 * tenant's id.  Adding a table that tenants own is one line here, e.g.
 *   {"stacks", "SELECT 1 FROM stacks WHERE tenant_id = ?1 LIMIT 1"}, */
typedef struct {
    const char *what;
    const char *sql;
} TenantOwnerCheck;

static const TenantOwnerCheck tenant_owner_checks[] = {
    /* A running operation still acts for its tenant. */
    {"operations in progress", "SELECT 1 FROM operations WHERE tenant_id = ?1 AND status IN "
                               "('pending', 'running') LIMIT 1"},
    {"stacks", "SELECT 1 FROM stacks WHERE tenant_id = ?1 LIMIT 1"},
    {"images", "SELECT 1 FROM images WHERE tenant_id = ?1 LIMIT 1"},
    {"networks", "SELECT 1 FROM networks WHERE tenant_id = ?1 LIMIT 1"},
    {NULL, NULL},
};

char *store_tenant_id(Store *store, const char *name, GError **error)
{
    return store_query_one(store, "SELECT id FROM tenants WHERE name = ?1",
                           STORE_PARAMS(STORE_TEXT(name)), store_text_from_row,
                           "looking up a tenant", error, "tenant '%s' not found", name);
}

/* ---- tenants ----------------------------------------------------------- */

#define TENANT_COLUMNS                                                                             \
    "id, name, quota_stacks, quota_vcpus, quota_memory_mib, quota_disk_gib, created_at, "          \
    "updated_at, quota_devices, quota_networks"

static gpointer tenant_from_row(sqlite3_stmt *stmt, GError **error)
{
    ApiTenant *tenant = api_tenant_new();

    (void)error;
    tenant->id = store_column_text(stmt, 0);
    tenant->name = store_column_text(stmt, 1);
    tenant->quota.stacks = sqlite3_column_int64(stmt, 2);
    tenant->quota.vcpus = sqlite3_column_int64(stmt, 3);
    tenant->quota.memory_mib = sqlite3_column_int64(stmt, 4);
    tenant->quota.disk_gib = sqlite3_column_int64(stmt, 5);
    tenant->created_at = store_column_text(stmt, 6);
    tenant->updated_at = store_column_text(stmt, 7);
    tenant->quota.devices = sqlite3_column_int64(stmt, 8);
    tenant->quota.networks = sqlite3_column_int64(stmt, 9);
    return tenant;
}

gboolean store_tenant_insert(Store *store, const ApiTenant *tenant, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(GError) local = NULL;

    if (store_exec_insert(
            store,
            "INSERT INTO tenants (" TENANT_COLUMNS
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            STORE_PARAMS(STORE_TEXT(tenant->id), STORE_TEXT(tenant->name),
                         STORE_INT64(tenant->quota.stacks), STORE_INT64(tenant->quota.vcpus),
                         STORE_INT64(tenant->quota.memory_mib), STORE_INT64(tenant->quota.disk_gib),
                         STORE_TEXT(tenant->created_at), STORE_TEXT(tenant->updated_at),
                         STORE_INT64(tenant->quota.devices), STORE_INT64(tenant->quota.networks)),
            "inserting a tenant", &local, "tenant '%s' already exists", tenant->name))
        return TRUE;
    if (g_error_matches(local, TD_ERROR, TD_ERROR_CONFLICT)) {
        /* The name is what a client chose; a clashing id is a UUID bug. */
        g_autofree char *existing = store_tenant_id(store, tenant->name, NULL);
        if (existing == NULL) {
            g_clear_error(&local);
            g_set_error(&local, TD_ERROR, TD_ERROR_CONFLICT, "tenant id '%s' already exists",
                        tenant->id);
        }
    }
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
}

ApiTenant *store_tenant_get(Store *store, const char *name, GError **error)
{
    STORE_READ(store);
    return store_query_one(store, "SELECT " TENANT_COLUMNS " FROM tenants WHERE name = ?1",
                           STORE_PARAMS(STORE_TEXT(name)), tenant_from_row, "reading a tenant",
                           error, "tenant '%s' not found", name);
}

GPtrArray *store_tenant_list(Store *store, GError **error)
{
    STORE_READ(store);
    return store_query_list(store, "SELECT " TENANT_COLUMNS " FROM tenants ORDER BY name",
                            STORE_NO_PARAMS, tenant_from_row, (GDestroyNotify)api_tenant_free,
                            "listing tenants", error);
}

/* Tenants have no owner: their cursors' first part names the listing. */
#define TENANT_CURSOR_OWNER "tenants"

GPtrArray *store_tenant_page(Store *store, int limit, const char *after, char **next,
                             GError **error)
{
    g_return_val_if_fail(next != NULL, NULL);
    STORE_READ(store);
    g_autofree char *after_name = NULL;

    *next = NULL;
    if (!store_page_start(limit, after, TENANT_CURSOR_OWNER, &after_name, error))
        return NULL;
    gboolean more = FALSE;
    g_autoptr(GPtrArray) tenants = store_query_page(
        store,
        "SELECT " TENANT_COLUMNS " FROM tenants WHERE (?1 IS NULL OR name > ?1) "
        "ORDER BY name LIMIT ?2",
        /* One more than asked tells whether there is a next page; -1 is no limit. */
        STORE_PARAMS(STORE_TEXT(after_name), STORE_INT64(limit > 0 ? (gint64)limit + 1 : -1)),
        tenant_from_row, (GDestroyNotify)api_tenant_free, (guint)limit, &more, "listing tenants",
        error);
    if (tenants == NULL)
        return NULL;
    if (more) {
        const ApiTenant *last = g_ptr_array_index(tenants, tenants->len - 1);
        *next = store_cursor_encode(TENANT_CURSOR_OWNER, last->name);
    }
    return g_steal_pointer(&tenants);
}

gboolean store_tenant_set_quota(Store *store, const char *name, const ApiQuota *quota,
                                const char *updated_at, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    return store_exec_changes(
        store,
        "UPDATE tenants SET quota_stacks = ?2, quota_vcpus = ?3, quota_memory_mib = ?4, "
        "quota_disk_gib = ?5, updated_at = ?6, quota_devices = ?7, quota_networks = ?8 "
        "WHERE name = ?1",
        STORE_PARAMS(STORE_TEXT(name), STORE_INT64(quota->stacks), STORE_INT64(quota->vcpus),
                     STORE_INT64(quota->memory_mib), STORE_INT64(quota->disk_gib),
                     STORE_TEXT(updated_at), STORE_INT64(quota->devices),
                     STORE_INT64(quota->networks)),
        "updating a quota", error, "tenant '%s' not found", name);
}

/* CONFLICT when a tenant_owner_checks query finds a row of @id. */
static gboolean tenant_owns_nothing(Store *store, const char *name, const char *id, GError **error)
{
    for (const TenantOwnerCheck *check = tenant_owner_checks; check->what != NULL; check++) {
        g_autoptr(sqlite3_stmt) row = NULL;
        if (!store_query_row(store, &row, check->sql, STORE_PARAMS(STORE_TEXT(id)),
                             "checking what a tenant owns", error))
            return FALSE;
        if (row != NULL) {
            g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "tenant '%s' still owns %s", name,
                        check->what);
            return FALSE;
        }
    }
    return TRUE;
}

gboolean store_tenant_delete(Store *store, const char *name, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);

    /* One transaction: nothing may become owned between check and delete. */
    if (!store_begin(store, error))
        return FALSE;
    g_autofree char *id = store_tenant_id(store, name, error);
    gboolean ok = id != NULL && tenant_owns_nothing(store, name, id, error) &&
                  store_exec(store, "DELETE FROM tenants WHERE id = ?1",
                             STORE_PARAMS(STORE_TEXT(id)), "deleting a tenant", error);
    /* Its tokens went with it (ON DELETE CASCADE). */
    if (ok)
        store_tokens_changed(store);
    return store_end(store, ok, error);
}

/* ---- tokens ------------------------------------------------------------ */

gboolean store_token_insert(Store *store, const char *id, const char *tenant,
                            const guint8 hash[STORE_TOKEN_HASH_LEN], const char *created_at,
                            GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);

    if (!store_begin(store, error))
        return FALSE;
    g_autofree char *owner = store_tenant_id(store, tenant, error);
    /* A clashing hash means a broken random source; say so, not which. */
    gboolean ok =
        owner != NULL &&
        store_exec_insert(
            store, "INSERT INTO tokens (id, tenant_id, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            STORE_PARAMS(STORE_TEXT(id), STORE_TEXT(owner), STORE_HASH(hash),
                         STORE_TEXT(created_at)),
            "inserting a token", error, "token '%s' already exists", id);
    return store_end(store, ok, error);
}

gboolean store_token_revoke(Store *store, const char *tenant, const char *id, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autofree char *now = clock_now_rfc3339();

    if (!store_begin(store, error))
        return FALSE;
    g_autofree char *owner = store_tenant_id(store, tenant, error);
    /* Another tenant's token, or one already revoked, is simply not found. */
    gboolean ok =
        owner != NULL &&
        store_exec_changes(store,
                           "UPDATE tokens SET revoked_at = ?3 "
                           "WHERE id = ?1 AND tenant_id = ?2 AND revoked_at IS NULL",
                           STORE_PARAMS(STORE_TEXT(id), STORE_TEXT(owner), STORE_TEXT(now)),
                           "revoking a token", error, "token '%s' not found", id);
    if (ok)
        store_tokens_changed(store);
    return store_end(store, ok, error);
}

char *store_token_lookup(Store *store, const guint8 hash[STORE_TOKEN_HASH_LEN])
{
    g_autoptr(StoreToken) token = store_token_find(store, hash);
    return token != NULL ? g_steal_pointer(&token->tenant) : NULL;
}

static gpointer token_from_row(sqlite3_stmt *stmt, GError **error)
{
    ApiToken *token = api_token_new();

    (void)error;
    token->id = store_column_text(stmt, 0);
    token->tenant = store_column_text(stmt, 1);
    token->created_at = store_column_text(stmt, 2);
    return token;
}

GPtrArray *store_token_page(Store *store, const char *tenant, int limit, const char *after,
                            char **next, GError **error)
{
    g_return_val_if_fail(next != NULL, NULL);
    STORE_READ(store);
    g_autofree char *after_tenant = NULL;
    g_autofree char *after_id = NULL;

    *next = NULL;
    if (!store_page_args(limit, after, &after_tenant, &after_id, error))
        return NULL;
    g_autofree char *owner = store_tenant_id(store, tenant, error);
    if (owner == NULL)
        return NULL;
    /* The keyset is (created_at, id): the cursor names the last token, whose
     * row stays (revoked or not) as long as its tenant. */
    g_autofree char *after_created = NULL;
    if (after_id != NULL) {
        g_autoptr(sqlite3_stmt) row = NULL;
        if (!store_query_row(store, &row,
                             "SELECT created_at FROM tokens WHERE id = ?1 AND tenant_id = ?2",
                             STORE_PARAMS(STORE_TEXT(after_id), STORE_TEXT(owner)),
                             "reading a cursor's token", error))
            return NULL;
        if (row == NULL || strcmp(after_tenant, tenant) != 0) {
            g_set_error_literal(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "after: invalid cursor");
            return NULL;
        }
        after_created = store_column_text(row, 0);
    }
    gboolean more = FALSE;
    g_autoptr(GPtrArray) tokens = store_query_page(
        store,
        "SELECT k.id, t.name, k.created_at FROM tokens k JOIN tenants t ON t.id = k.tenant_id "
        "WHERE k.tenant_id = ?1 AND k.revoked_at IS NULL "
        "AND (?2 IS NULL OR (k.created_at, k.id) > (?2, ?3)) "
        "ORDER BY k.created_at, k.id LIMIT ?4",
        STORE_PARAMS(STORE_TEXT(owner), STORE_TEXT(after_created), STORE_TEXT(after_id),
                     STORE_INT64(limit > 0 ? (gint64)limit + 1 : -1)),
        token_from_row, (GDestroyNotify)api_token_free, (guint)limit, &more, "listing tokens",
        error);
    if (tokens == NULL)
        return NULL;
    if (more) {
        const ApiToken *last = g_ptr_array_index(tokens, tokens->len - 1);
        *next = store_cursor_encode(tenant, last->id);
    }
    return g_steal_pointer(&tokens);
}
