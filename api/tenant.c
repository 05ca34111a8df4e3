#include "api/tenant.h"

#include <string.h>

#include "api/error.h"
#include "api/json.h"

static const char *const tenant_keys[] = {"id", "name", "quota", "created_at", "updated_at", NULL};
static const char *const create_keys[] = {"name", "quota", NULL};
static const char *const patch_keys[] = {"quota", NULL};
static const char *const quota_keys[] = {"stacks",  "vcpus",    "memory_mib", "disk_gib",
                                         "devices", "networks", NULL};
static const char *const token_keys[] = {"id", "secret", "tenant", "created_at", NULL};

/* ---- quota ----------------------------------------------------------------------- */

static void quota_set_defaults(ApiQuota *quota)
{
    quota->stacks = API_QUOTA_DEFAULT_STACKS;
    quota->vcpus = API_QUOTA_DEFAULT_VCPUS;
    quota->memory_mib = API_QUOTA_DEFAULT_MEMORY_MIB;
    quota->disk_gib = API_QUOTA_DEFAULT_DISK_GIB;
    quota->devices = API_QUOTA_DEFAULT_DEVICES;
    quota->networks = API_QUOTA_DEFAULT_NETWORKS;
}

gboolean api_quota_validate(const ApiQuota *quota, GError **error)
{
    g_return_val_if_fail(quota != NULL, FALSE);

    return api_json_check_range("quota.stacks", quota->stacks, 0, API_QUOTA_MAX_STACKS, error) &&
           api_json_check_range("quota.vcpus", quota->vcpus, 0, API_QUOTA_MAX_VCPUS, error) &&
           api_json_check_range("quota.memory_mib", quota->memory_mib, 0, API_QUOTA_MAX_MEMORY_MIB,
                                error) &&
           api_json_check_range("quota.disk_gib", quota->disk_gib, 0, API_QUOTA_MAX_DISK_GIB,
                                error) &&
           api_json_check_range("quota.devices", quota->devices, 0, API_QUOTA_MAX_DEVICES, error) &&
           api_json_check_range("quota.networks", quota->networks, 0, API_QUOTA_MAX_NETWORKS,
                                error);
}

/* Reads the keys of @object (already checked against quota_keys) into
 * @quota; absent keys keep their value unless @flags make them required. */
static gboolean decode_quota(json_object *object, ApiJsonFlags flags, ApiQuota *quota,
                             GError **error)
{
    return api_json_get_int(object, "quota", "stacks", flags, 0, API_QUOTA_MAX_STACKS,
                            &quota->stacks, error) &&
           api_json_get_int(object, "quota", "vcpus", flags, 0, API_QUOTA_MAX_VCPUS, &quota->vcpus,
                            error) &&
           api_json_get_int(object, "quota", "memory_mib", flags, 0, API_QUOTA_MAX_MEMORY_MIB,
                            &quota->memory_mib, error) &&
           api_json_get_int(object, "quota", "disk_gib", flags, 0, API_QUOTA_MAX_DISK_GIB,
                            &quota->disk_gib, error) &&
           api_json_get_int(object, "quota", "devices", flags, 0, API_QUOTA_MAX_DEVICES,
                            &quota->devices, error) &&
           api_json_get_int(object, "quota", "networks", flags, 0, API_QUOTA_MAX_NETWORKS,
                            &quota->networks, error);
}

static json_object *quota_to_json(const ApiQuota *quota)
{
    json_object *object = json_object_new_object();
    json_object_object_add(object, "stacks", json_object_new_int64(quota->stacks));
    json_object_object_add(object, "vcpus", json_object_new_int64(quota->vcpus));
    json_object_object_add(object, "memory_mib", json_object_new_int64(quota->memory_mib));
    json_object_object_add(object, "disk_gib", json_object_new_int64(quota->disk_gib));
    json_object_object_add(object, "devices", json_object_new_int64(quota->devices));
    json_object_object_add(object, "networks", json_object_new_int64(quota->networks));
    return object;
}

/* ---- tenant ---------------------------------------------------------------------- */

ApiTenant *api_tenant_new(void)
{
    ApiTenant *tenant = g_new0(ApiTenant, 1);
    quota_set_defaults(&tenant->quota);
    return tenant;
}

void api_tenant_free(ApiTenant *tenant)
{
    if (!tenant)
        return;
    g_free(tenant->id);
    g_free(tenant->name);
    g_free(tenant->created_at);
    g_free(tenant->updated_at);
    g_free(tenant);
}

json_object *api_tenant_to_json(const ApiTenant *tenant)
{
    g_return_val_if_fail(tenant != NULL, NULL);

    json_object *root = json_object_new_object();
    json_object_object_add(root, "id", api_json_new_string_or_null(tenant->id));
    json_object_object_add(root, "name", api_json_new_string_or_null(tenant->name));
    json_object_object_add(root, "quota", quota_to_json(&tenant->quota));
    json_object_object_add(root, "created_at", api_json_new_string_or_null(tenant->created_at));
    json_object_object_add(root, "updated_at", api_json_new_string_or_null(tenant->updated_at));
    return root;
}

ApiTenant *api_tenant_from_json(json_object *value, GError **error)
{
    const ApiJsonFlags req = API_JSON_REQUIRED;
    g_autoptr(ApiTenant) tenant = api_tenant_new();
    json_object *quota = NULL;

    if (!api_json_check_object(value, "", tenant_keys, error) ||
        !api_json_get_string(value, "", "id", req, &tenant->id, error) ||
        !api_json_get_string(value, "", "name", req, &tenant->name, error) ||
        !api_json_get_object(value, "", "quota", req, quota_keys, &quota, error) ||
        !decode_quota(quota, req, &tenant->quota, error) ||
        !api_json_get_string(value, "", "created_at", req, &tenant->created_at, error) ||
        !api_json_get_string(value, "", "updated_at", req, &tenant->updated_at, error))
        return NULL;

    if (!api_json_check_uuid("id", tenant->id, error) ||
        !api_json_check_name("name", tenant->name, error) ||
        !api_quota_validate(&tenant->quota, error) ||
        !api_json_check_time("created_at", tenant->created_at, error) ||
        !api_json_check_time("updated_at", tenant->updated_at, error))
        return NULL;
    return g_steal_pointer(&tenant);
}

ApiTenant *api_tenant_create_from_json(json_object *value, GError **error)
{
    g_autoptr(ApiTenant) tenant = api_tenant_new();
    json_object *quota = NULL;

    if (!api_json_check_object(value, "", create_keys, error) ||
        !api_json_get_string(value, "", "name", API_JSON_REQUIRED, &tenant->name, error) ||
        !api_json_get_object(value, "", "quota", API_JSON_OPTIONAL, quota_keys, &quota, error) ||
        (quota && !decode_quota(quota, API_JSON_OPTIONAL, &tenant->quota, error)))
        return NULL;

    if (!api_json_check_name("name", tenant->name, error) ||
        !api_quota_validate(&tenant->quota, error))
        return NULL;
    return g_steal_pointer(&tenant);
}

gboolean api_tenant_patch_from_json(json_object *value, ApiQuota *quota, GError **error)
{
    g_return_val_if_fail(quota != NULL, FALSE);

    /* Decoded into a copy so that a bad key leaves the caller's quota whole. */
    ApiQuota patched = *quota;
    json_object *object = NULL;

    if (!api_json_check_object(value, "", patch_keys, error) ||
        !api_json_get_object(value, "", "quota", API_JSON_REQUIRED, quota_keys, &object, error))
        return FALSE;
    if (json_object_object_length(object) == 0) {
        g_autofree char *list = g_strjoinv(", ", (char **)quota_keys);
        api_json_set_invalid(error, "quota", "must contain at least one of %s", list);
        return FALSE;
    }
    if (!decode_quota(object, API_JSON_OPTIONAL, &patched, error) ||
        !api_quota_validate(&patched, error))
        return FALSE;

    *quota = patched;
    return TRUE;
}

/* ---- token ------------------------------------------------------------------------- */

ApiToken *api_token_new(void)
{
    return g_new0(ApiToken, 1);
}

void api_token_free(ApiToken *token)
{
    if (!token)
        return;
    g_free(token->id);
    /* The secret is shown once: do not leave it behind in freed memory. */
    if (token->secret)
        memset(token->secret, 0, strlen(token->secret));
    g_free(token->secret);
    g_free(token->tenant);
    g_free(token->created_at);
    g_free(token);
}

json_object *api_token_to_json(const ApiToken *token)
{
    g_return_val_if_fail(token != NULL, NULL);

    json_object *root = json_object_new_object();
    json_object_object_add(root, "id", api_json_new_string_or_null(token->id));
    if (token->secret)
        json_object_object_add(root, "secret", json_object_new_string(token->secret));
    json_object_object_add(root, "tenant", api_json_new_string_or_null(token->tenant));
    json_object_object_add(root, "created_at", api_json_new_string_or_null(token->created_at));
    return root;
}

ApiToken *api_token_from_json(json_object *value, GError **error)
{
    const ApiJsonFlags req = API_JSON_REQUIRED;
    g_autoptr(ApiToken) token = api_token_new();

    if (!api_json_check_object(value, "", token_keys, error) ||
        !api_json_get_string(value, "", "id", req, &token->id, error) ||
        !api_json_get_string(value, "", "secret", API_JSON_OPTIONAL, &token->secret, error) ||
        !api_json_get_string(value, "", "tenant", req, &token->tenant, error) ||
        !api_json_get_string(value, "", "created_at", req, &token->created_at, error))
        return NULL;

    if (!api_json_check_uuid("id", token->id, error))
        return NULL;
    if (token->secret && !*token->secret) {
        api_json_set_invalid(error, "secret", "must not be empty");
        return NULL;
    }
    if (!api_json_check_name("tenant", token->tenant, error) ||
        !api_json_check_time("created_at", token->created_at, error))
        return NULL;
    return g_steal_pointer(&token);
}

/* ---- lists ------------------------------------------------------------------------- */

json_object *api_tenant_list_to_json(const GPtrArray *tenants, const char *next)
{
    json_object *list = json_object_new_array();
    for (guint i = 0; tenants && i < tenants->len; i++)
        json_object_array_add(list, api_tenant_to_json(g_ptr_array_index(tenants, i)));
    return api_json_page_new("tenants", list, next);
}

static gpointer tenant_item(json_object *item, GError **error)
{
    return api_tenant_from_json(item, error);
}

GPtrArray *api_tenant_list_from_json(json_object *value, char **next, GError **error)
{
    return api_json_page_decode(value, "tenants", tenant_item, (GDestroyNotify)api_tenant_free,
                                next, error);
}

json_object *api_token_list_to_json(const GPtrArray *tokens, const char *next)
{
    json_object *list = json_object_new_array();
    for (guint i = 0; tokens && i < tokens->len; i++) {
        const ApiToken *token = g_ptr_array_index(tokens, i);
        g_return_val_if_fail(token->secret == NULL, NULL);
        json_object_array_add(list, api_token_to_json(token));
    }
    return api_json_page_new("tokens", list, next);
}

static gpointer listed_token(json_object *item, GError **error)
{
    g_autoptr(ApiToken) token = api_token_from_json(item, error);
    if (token != NULL && token->secret != NULL) {
        api_json_set_invalid(error, "secret", "must not be in a list");
        return NULL;
    }
    return g_steal_pointer(&token);
}

GPtrArray *api_token_list_from_json(json_object *value, char **next, GError **error)
{
    return api_json_page_decode(value, "tokens", listed_token, (GDestroyNotify)api_token_free, next,
                                error);
}
