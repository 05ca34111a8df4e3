/* turtled's state: SQLite (WAL) in the state directory, with versioned schema
 * migrations.  One connection guarded by a mutex: HTTP threads, workers and the
 * main loop all call in.  Errors use TD_ERROR (CONFLICT, NOT_FOUND, INTERNAL).
 * No secret is stored in clear: tokens are kept as SHA-256 hashes. */
#pragma once

#include <glib.h>

#include "api/operation.h"
#include "api/tenant.h"

#define STORE_FILE_NAME      "turtled.db"
#define STORE_TOKEN_HASH_LEN 32

typedef struct Store Store;

/* Opens (creating if needed) @state_dir/turtled.db, sets WAL and foreign keys,
 * and applies every migration not applied yet, each in its own transaction. */
Store *store_open(const char *state_dir, GError **error);
void store_free(Store *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Store, store_free)

int store_schema_version(Store *store);

/* Tenants.  Insert fails with CONFLICT when the name is taken. */
gboolean store_tenant_insert(Store *store, const ApiTenant *tenant, GError **error);
ApiTenant *store_tenant_get(Store *store, const char *name, GError **error);
GPtrArray *store_tenant_list(Store *store, GError **error); /* of ApiTenant, by name */
gboolean store_tenant_set_quota(Store *store, const char *name, const ApiQuota *quota,
                                const char *updated_at, GError **error);
/* CONFLICT while the tenant owns anything (stacks, images once they exist);
 * its tokens go with it. */
gboolean store_tenant_delete(Store *store, const char *name, GError **error);

/* Tokens: only the hash is kept. */
gboolean store_token_insert(Store *store, const char *id, const char *tenant,
                            const guint8 hash[STORE_TOKEN_HASH_LEN], const char *created_at,
                            GError **error);
/* NOT_FOUND when the token does not exist or belongs to another tenant. */
gboolean store_token_revoke(Store *store, const char *tenant, const char *id, GError **error);
/* The name of the tenant whose live token has this hash, or NULL. */
char *store_token_lookup(Store *store, const guint8 hash[STORE_TOKEN_HASH_LEN]);

/* Operations. */
gboolean store_operation_insert(Store *store, const ApiOperation *operation, GError **error);
/* Replaces status, progress, error and updated_at. */
gboolean store_operation_update(Store *store, const ApiOperation *operation, GError **error);
ApiOperation *store_operation_get(Store *store, const char *id, GError **error);
/* Operations left pending or running by a crash become failed with
 * "interrupted by daemon restart".  Returns how many, or -1 on error. */
int store_operation_fail_interrupted(Store *store, const char *now, GError **error);
/* Counts by kind and status, for /metrics: GHashTable "kind\tstatus" -> count. */
GHashTable *store_operation_counts(Store *store, GError **error);
