/* The store's token lookup (tenant and operator tokens share the table, so
 * that one lookup by hash answers whose a token is), its cache, and the
 * operator's own tokens.  A tenant's tokens are listed and revoked in
 * store_tenants.c. */
#include "daemon/store.h"

#include <string.h>

#include "daemon/clock.h"
#include "daemon/error.h"
#include "daemon/store-private.h"

void store_token_free(StoreToken *token)
{
    if (token == NULL)
        return;
    g_free(token->id);
    g_free(token->tenant);
    g_free(token->scope);
    g_free(token);
}

/* Compares every byte whatever the first difference: the time taken says
 * nothing about how much of a guess was right. */
static gboolean hash_equal(const guint8 *a, const guint8 *b)
{
    volatile guint8 diff = 0;

    for (gsize i = 0; i < STORE_TOKEN_HASH_LEN; i++)
        diff |= a[i] ^ b[i];
    return diff == 0;
}

static StoreToken *token_copy(const StoreToken *token)
{
    StoreToken *copy = g_new0(StoreToken, 1);
    copy->id = g_strdup(token->id);
    copy->tenant = g_strdup(token->tenant);
    copy->scope = g_strdup(token->scope);
    return copy;
}

/* ---- the cache ------------------------------------------------------------ */

/* Every authenticated request looks its token up; the answer changes only
 * when a token is revoked or its tenant deleted, and those writes empty the
 * cache when they commit (store_tokens_changed).  Only live tokens are kept,
 * so guessing secrets cannot fill it; when it is full it starts again. */
#define TOKEN_CACHE_MAX 4096

struct StoreTokenCache {
    GMutex lock;
    /* Bumped by every invalidation: a lookup that read the table before
     * one must not put what it read into the cache after it. */
    guint64 generation;
    GHashTable *live; /* hash (STORE_TOKEN_HASH_LEN bytes) -> StoreToken */
};

/* The key is a SHA-256 digest already: any 4 of its bytes are a good hash. */
static guint digest_hash(gconstpointer key)
{
    guint value;
    memcpy(&value, key, sizeof value);
    return value;
}

static gboolean digest_equal(gconstpointer a, gconstpointer b)
{
    return memcmp(a, b, STORE_TOKEN_HASH_LEN) == 0;
}

StoreTokenCache *store_token_cache_new(void)
{
    StoreTokenCache *cache = g_new0(StoreTokenCache, 1);
    g_mutex_init(&cache->lock);
    cache->live =
        g_hash_table_new_full(digest_hash, digest_equal, g_free, (GDestroyNotify)store_token_free);
    return cache;
}

void store_token_cache_free(StoreTokenCache *cache)
{
    if (cache == NULL)
        return;
    g_hash_table_unref(cache->live);
    g_mutex_clear(&cache->lock);
    g_free(cache);
}

void store_token_cache_invalidate(StoreTokenCache *cache)
{
    g_mutex_lock(&cache->lock);
    cache->generation++;
    g_hash_table_remove_all(cache->live);
    g_mutex_unlock(&cache->lock);
}

/* A copy of the cached token, or NULL; *@generation is the cache's
 * generation, for cache_put. */
static StoreToken *cache_get(StoreTokenCache *cache, const guint8 *hash, guint64 *generation)
{
    g_mutex_lock(&cache->lock);
    const StoreToken *cached = g_hash_table_lookup(cache->live, hash);
    StoreToken *token = cached != NULL ? token_copy(cached) : NULL;
    *generation = cache->generation;
    g_mutex_unlock(&cache->lock);
    return token;
}

/* Keeps @token unless the cache was invalidated since @generation. */
static void cache_put(StoreTokenCache *cache, const guint8 *hash, const StoreToken *token,
                      guint64 generation)
{
    g_mutex_lock(&cache->lock);
    if (cache->generation == generation) {
        if (g_hash_table_size(cache->live) >= TOKEN_CACHE_MAX)
            g_hash_table_remove_all(cache->live);
        g_hash_table_replace(cache->live, g_memdup2(hash, STORE_TOKEN_HASH_LEN), token_copy(token));
    }
    g_mutex_unlock(&cache->lock);
}

/* ---- lookup ------------------------------------------------------------- */

/* The live token with @hash, from the table. */
static StoreToken *token_read(Store *store, const guint8 hash[STORE_TOKEN_HASH_LEN])
{
    g_autoptr(GError) error = NULL;
    g_autoptr(sqlite3_stmt) row = NULL;

    if (!store_query_row(store, &row,
                         "SELECT k.hash, k.id, t.name, k.scope FROM tokens k "
                         "LEFT JOIN tenants t ON t.id = k.tenant_id "
                         "WHERE k.hash = ?1 AND k.revoked_at IS NULL",
                         STORE_PARAMS(STORE_HASH(hash)), "looking up a token", &error)) {
        g_debug("%s", error->message);
        return NULL;
    }
    if (row == NULL)
        return NULL;
    /* The index found the row; this check is what the answer rests on. */
    const guint8 *stored = sqlite3_column_blob(row, 0);
    if (stored == NULL || sqlite3_column_bytes(row, 0) != STORE_TOKEN_HASH_LEN ||
        !hash_equal(stored, hash))
        return NULL;
    StoreToken *token = g_new0(StoreToken, 1);
    token->id = store_column_text(row, 1);
    token->tenant = store_column_text(row, 2);
    token->scope = store_column_text(row, 3);
    /* The schema's CHECK makes it one or the other; a row that is neither denies. */
    if ((token->tenant == NULL) == (token->scope == NULL)) {
        store_token_free(token);
        return NULL;
    }
    return token;
}

StoreToken *store_token_find(Store *store, const guint8 hash[STORE_TOKEN_HASH_LEN])
{
    StoreTokenCache *cache = (store->owner != NULL ? store->owner : store)->token_cache;
    /* A transaction of this thread reads its own writes, not the cache, and
     * what it reads is not cached: it may yet roll back. */
    gboolean cacheable = !store_in_own_transaction(store);
    guint64 generation = 0;
    StoreToken *token = cacheable ? cache_get(cache, hash, &generation) : NULL;
    if (token != NULL)
        return token;
    STORE_READ(store);
    token = token_read(store, hash);
    if (token != NULL && cacheable)
        cache_put(cache, hash, token, generation);
    return token;
}

/* ---- operator tokens ------------------------------------------------------ */

gboolean store_operator_token_insert(Store *store, const ApiOperatorToken *token,
                                     const guint8 hash[STORE_TOKEN_HASH_LEN], GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    /* A clashing hash means a broken random source; say so, not which. */
    return store_exec_insert(store,
                             "INSERT INTO tokens (id, scope, description, hash, created_at) "
                             "VALUES (?1, ?2, ?3, ?4, ?5)",
                             STORE_PARAMS(STORE_TEXT(token->id), STORE_TEXT(token->scope),
                                          STORE_TEXT(token->description), STORE_HASH(hash),
                                          STORE_TEXT(token->created_at)),
                             "inserting an operator token", error, "token '%s' already exists",
                             token->id);
}

gboolean store_operator_token_revoke(Store *store, const char *id, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autofree char *now = clock_now_rfc3339();

    /* A tenant's token, or one already revoked, is simply not found. */
    if (!store_exec_changes(store,
                            "UPDATE tokens SET revoked_at = ?2 "
                            "WHERE id = ?1 AND tenant_id IS NULL AND revoked_at IS NULL",
                            STORE_PARAMS(STORE_TEXT(id), STORE_TEXT(now)),
                            "revoking an operator token", error, "token '%s' not found", id))
        return FALSE;
    store_tokens_changed(store);
    return TRUE;
}

static gpointer operator_token_from_row(sqlite3_stmt *stmt, GError **error)
{
    ApiOperatorToken *token = api_operator_token_new();

    (void)error;
    token->id = store_column_text(stmt, 0);
    token->scope = store_column_text(stmt, 1);
    token->description = store_column_text(stmt, 2);
    token->created_at = store_column_text(stmt, 3);
    return token;
}

/* Operator tokens have no owner: their cursors' first part names the listing. */
#define OPERATOR_TOKEN_CURSOR_OWNER "operator-tokens"

GPtrArray *store_operator_token_page(Store *store, int limit, const char *after, char **next,
                                     GError **error)
{
    g_return_val_if_fail(next != NULL, NULL);
    STORE_READ(store);
    g_autofree char *after_id = NULL;

    *next = NULL;
    if (!store_page_start(limit, after, OPERATOR_TOKEN_CURSOR_OWNER, &after_id, error))
        return NULL;
    /* The keyset is (created_at, id): the cursor names the last token, whose
     * row stays, revoked or not. */
    g_autofree char *after_created = NULL;
    if (after_id != NULL) {
        g_autoptr(sqlite3_stmt) row = NULL;
        if (!store_query_row(store, &row,
                             "SELECT created_at FROM tokens WHERE id = ?1 AND tenant_id IS NULL",
                             STORE_PARAMS(STORE_TEXT(after_id)), "reading a cursor's token", error))
            return NULL;
        if (row == NULL) {
            g_set_error_literal(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "after: invalid cursor");
            return NULL;
        }
        after_created = store_column_text(row, 0);
    }
    gboolean more = FALSE;
    g_autoptr(GPtrArray) tokens =
        store_query_page(store,
                         "SELECT id, scope, description, created_at FROM tokens "
                         "WHERE tenant_id IS NULL AND revoked_at IS NULL "
                         "AND (?1 IS NULL OR (created_at, id) > (?1, ?2)) "
                         "ORDER BY created_at, id LIMIT ?3",
                         STORE_PARAMS(STORE_TEXT(after_created), STORE_TEXT(after_id),
                                      STORE_INT64(limit > 0 ? (gint64)limit + 1 : -1)),
                         operator_token_from_row, (GDestroyNotify)api_operator_token_free,
                         (guint)limit, &more, "listing operator tokens", error);
    if (tokens == NULL)
        return NULL;
    if (more) {
        const ApiOperatorToken *last = g_ptr_array_index(tokens, tokens->len - 1);
        *next = store_cursor_encode(OPERATOR_TOKEN_CURSOR_OWNER, last->id);
    }
    return g_steal_pointer(&tokens);
}
