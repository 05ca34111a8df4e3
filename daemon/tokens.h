/* Tenant bearer tokens: 256 random bits, shown once, kept only as SHA-256. */
#pragma once

#include <glib.h>

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
