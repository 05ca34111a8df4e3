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

char *token_lookup(Store *store, const char *secret)
{
    guint8 hash[STORE_TOKEN_HASH_LEN];

    /* Only well-formed secrets reach the store. */
    if (secret == NULL || !g_str_has_prefix(secret, TOKEN_PREFIX) ||
        strlen(secret) != strlen(TOKEN_PREFIX) + 2 * TOKEN_BYTES)
        return NULL;
    token_hash(secret, hash);
    return store_token_lookup(store, hash);
}
