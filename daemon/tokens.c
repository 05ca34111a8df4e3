#include "daemon/tokens.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "daemon/clock.h"
#include "daemon/error.h"

#define TOKEN_BYTES 32

char *token_new_secret(GError **error)
{
    guint8 bytes[TOKEN_BYTES];

    if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "no random bytes: %s", g_strerror(errno));
        return NULL;
    }
    GString *secret = g_string_new(TOKEN_PREFIX);
    for (gsize i = 0; i < sizeof bytes; i++)
        g_string_append_printf(secret, "%02x", bytes[i]);
    explicit_bzero(bytes, sizeof bytes);
    return g_string_free(secret, FALSE);
}

void token_hash(const char *secret, guint8 hash[STORE_TOKEN_HASH_LEN])
{
    g_autoptr(GChecksum) checksum = g_checksum_new(G_CHECKSUM_SHA256);
    gsize len = STORE_TOKEN_HASH_LEN;

    g_checksum_update(checksum, (const guchar *)secret, (gssize)strlen(secret));
    g_checksum_get_digest(checksum, hash, &len);
}

char *token_issue(Store *store, const char *tenant, char **id, GError **error)
{
    g_autofree char *secret = token_new_secret(error);
    if (secret == NULL)
        return NULL;

    guint8 hash[STORE_TOKEN_HASH_LEN];
    g_autofree char *token_id = g_uuid_string_random();
    g_autofree char *now = clock_now_rfc3339();
    token_hash(secret, hash);
    if (!store_token_insert(store, token_id, tenant, hash, now, error))
        return NULL;
    *id = g_steal_pointer(&token_id);
    return g_steal_pointer(&secret);
}

/* Only well-formed secrets reach the store. */
static gboolean secret_hash(const char *secret, guint8 hash[STORE_TOKEN_HASH_LEN])
{
    if (secret == NULL || !g_str_has_prefix(secret, TOKEN_PREFIX) ||
        strlen(secret) != strlen(TOKEN_PREFIX) + 2 * TOKEN_BYTES)
        return FALSE;
    token_hash(secret, hash);
    return TRUE;
}

char *token_lookup(Store *store, const char *secret)
{
    guint8 hash[STORE_TOKEN_HASH_LEN];

    if (!secret_hash(secret, hash))
        return NULL;
    return store_token_lookup(store, hash);
}

StoreToken *token_find(Store *store, const char *secret)
{
    guint8 hash[STORE_TOKEN_HASH_LEN];

    if (!secret_hash(secret, hash))
        return NULL;
    return store_token_find(store, hash);
}

gboolean token_still_valid(Store *store, const char *secret, const char *tenant)
{
    g_autoptr(StoreToken) token = token_find(store, secret);
    return token != NULL && g_strcmp0(token->tenant, tenant) == 0;
}

gboolean token_authenticate(Store *store, const char *secret, HttpCaller *caller)
{
    g_autoptr(StoreToken) token = token_find(store, secret);
    if (token == NULL)
        return FALSE;
    if (token->tenant != NULL) {
        caller->role = HTTP_CALLER_TENANT;
        caller->tenant = g_steal_pointer(&token->tenant);
    } else {
        caller->role = HTTP_CALLER_OPERATOR;
        /* Anything but admin gets the least: a scope added to the schema
         * and not here must not grant everything. */
        caller->scope = g_strcmp0(token->scope, API_OPERATOR_SCOPE_ADMIN) == 0 ? HTTP_SCOPE_ADMIN
                                                                               : HTTP_SCOPE_METRICS;
    }
    caller->token_id = g_steal_pointer(&token->id);
    return TRUE;
}

gboolean token_issue_operator(Store *store, ApiOperatorToken *token, GError **error)
{
    g_autofree char *secret = token_new_secret(error);
    if (secret == NULL)
        return FALSE;

    guint8 hash[STORE_TOKEN_HASH_LEN];
    token_hash(secret, hash);
    g_free(token->id);
    token->id = g_uuid_string_random();
    g_free(token->created_at);
    token->created_at = clock_now_rfc3339();
    if (!store_operator_token_insert(store, token, hash, error))
        return FALSE;
    token->secret = g_steal_pointer(&secret);
    return TRUE;
}
