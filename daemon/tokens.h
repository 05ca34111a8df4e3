/* Bearer tokens, a tenant's or the operator's: 256 random bits, shown once,
 * kept only as SHA-256. */
#pragma once

#include <glib.h>

#include "api/operator_token.h"
#include "daemon/http.h"
#include "daemon/store.h"

/* "tt_" + 64 hex digits. */
#define TOKEN_PREFIX "tt_"

/* A new secret from the kernel's CSPRNG. */
char *token_new_secret(GError **error);
void token_hash(const char *secret, guint8 hash[STORE_TOKEN_HASH_LEN]);
/* Issues a token for @tenant: stores its hash, returns the secret (shown once)
 * and its id in *id. */
char *token_issue(Store *store, const char *tenant, char **id, GError **error);
/* The tenant @secret belongs to, or NULL when unknown or revoked. */
char *token_lookup(Store *store, const char *secret);
/* The live token @secret is, or NULL (malformed, unknown or revoked). */
StoreToken *token_find(Store *store, const char *secret);
/* Whether @secret is still a live token of @tenant (NULL: an operator's):
 * for streams, which outlive the request that authenticated them. */
gboolean token_still_valid(Store *store, const char *secret, const char *tenant);
/* The HttpTokenLookup of turtled: fills @caller from the live token @secret
 * (role, token_id, and the tenant or the operator's scope); FALSE and
 * @caller untouched when there is none. */
gboolean token_authenticate(Store *store, const char *secret, HttpCaller *caller);
/* Issues an operator token with @token's scope and description: fills its
 * id, created_at and secret (shown once), stores the hash. */
gboolean token_issue_operator(Store *store, ApiOperatorToken *token, GError **error);
