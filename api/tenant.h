/* Tenants and their tokens on the wire. */
#pragma once

#include <glib.h>
#include <json-c/json.h>

/* Defaults for a tenant created without an explicit quota. */
#define API_QUOTA_DEFAULT_STACKS     4
#define API_QUOTA_DEFAULT_VCPUS      8
#define API_QUOTA_DEFAULT_MEMORY_MIB 8192
#define API_QUOTA_DEFAULT_DISK_GIB   50
#define API_QUOTA_DEFAULT_DEVICES    4
#define API_QUOTA_DEFAULT_NETWORKS   4
/* Upper bounds, so nonsense does not reach the store. */
#define API_QUOTA_MAX_STACKS     10000
#define API_QUOTA_MAX_VCPUS      100000
#define API_QUOTA_MAX_MEMORY_MIB (1024LL * 1024 * 1024)
#define API_QUOTA_MAX_DISK_GIB   (1024LL * 1024)
#define API_QUOTA_MAX_DEVICES    1024
#define API_QUOTA_MAX_NETWORKS   1024

typedef struct {
    gint64 stacks;
    gint64 vcpus;
    gint64 memory_mib;
    gint64 disk_gib;
    gint64 devices;  /* pool devices its stacks may hold */
    gint64 networks; /* networks of its own (nat, isolated) */
} ApiQuota;

/* Each value in [0, API_QUOTA_MAX_*]; messages name "quota.<key>".  For
 * quotas built in C; the decoders below apply it too. */
gboolean api_quota_validate(const ApiQuota *quota, GError **error);

typedef struct {
    char *id; /* UUID */
    char *name;
    ApiQuota quota;
    char *created_at; /* RFC 3339 UTC */
    char *updated_at;
} ApiTenant;

/* The quota starts at the defaults above. */
ApiTenant *api_tenant_new(void);
void api_tenant_free(ApiTenant *tenant);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiTenant, api_tenant_free)

/* {"id","name","quota":{"stacks","vcpus","memory_mib","disk_gib","devices","networks"},"created_at","updated_at"}
 */
json_object *api_tenant_to_json(const ApiTenant *tenant);
ApiTenant *api_tenant_from_json(json_object *value, GError **error);
/* {"tenants":[...],"next":CURSOR|null} and back (of ApiTenant). */
json_object *api_tenant_list_to_json(const GPtrArray *tenants, const char *next);
GPtrArray *api_tenant_list_from_json(json_object *value, char **next, GError **error);

/* POST /v1/tenants body {"name", "quota": {...}}: name required, quota and each
 * of its keys optional (defaults above).  Fills name and quota only. */
ApiTenant *api_tenant_create_from_json(json_object *value, GError **error);
/* PATCH /v1/tenants/{name} body {"quota": {...}}: the keys present replace
 * those in @quota; nothing changes on error. */
gboolean api_tenant_patch_from_json(json_object *value, ApiQuota *quota, GError **error);

typedef struct {
    char *id;     /* UUID */
    char *secret; /* shown once, at creation; NULL afterwards */
    char *tenant;
    char *created_at;
} ApiToken;

ApiToken *api_token_new(void);
void api_token_free(ApiToken *token);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiToken, api_token_free)

/* {"id","secret"?,"tenant","created_at"} (secret omitted when NULL) */
json_object *api_token_to_json(const ApiToken *token);
ApiToken *api_token_from_json(json_object *value, GError **error);
/* {"tokens":[...],"next":CURSOR|null} and back (of ApiToken): a list never
 * carries a secret, and refuses one. */
json_object *api_token_list_to_json(const GPtrArray *tokens, const char *next);
GPtrArray *api_token_list_from_json(json_object *value, char **next, GError **error);
