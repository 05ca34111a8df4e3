/* Tenants and their tokens (operator only). */
#include "api/json.h"
#include "api/tenant.h"
#include "daemon/app.h"
#include "daemon/clock.h"
#include "daemon/error.h"
#include "daemon/log.h"
#include "daemon/tokens.h"

/* The {name} of the path, or an error reply when it cannot name a tenant. */
static const char *tenant_param(const HttpRequest *request, HttpReply **reply)
{
    const char *name = http_request_param(request, "name");
    if (!api_name_is_valid(name)) {
        *reply = http_reply_errorf(TD_ERROR_NOT_FOUND, "tenant '%s' not found", name);
        return NULL;
    }
    return name;
}

static HttpReply *reply_tenant(unsigned status, const ApiTenant *tenant)
{
    return route_reply_tagged(status, "tenant", api_tenant_to_json(tenant));
}

static json_object *token_json(const char *id, const char *secret, const char *tenant)
{
    g_autoptr(ApiToken) token = api_token_new();
    token->id = g_strdup(id);
    token->secret = g_strdup(secret);
    token->tenant = g_strdup(tenant);
    token->created_at = clock_now_rfc3339();
    return api_token_to_json(token);
}

typedef struct {
    const ApiTenant *tenant;
    char *token_id;
    char *secret;
} NewTenant;

/* A tenant exists only with its first token: a client that never got the
 * secret must not find the name taken by a tenant nobody can use. */
static gboolean insert_tenant_and_token(Store *store, gpointer data, GError **error)
{
    NewTenant *new = data;
    if (!store_tenant_insert(store, new->tenant, error))
        return FALSE;
    new->secret = token_issue(store, new->tenant->name, &new->token_id, error);
    return new->secret != NULL;
}

HttpReply *handle_tenant_create(gpointer data, const HttpRequest *request)
{
    App *app = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiTenant) tenant = api_tenant_create_from_json(request->body, &error);
    if (tenant == NULL)
        return http_reply_error(error);

    tenant->id = g_uuid_string_random();
    tenant->created_at = clock_now_rfc3339();
    tenant->updated_at = g_strdup(tenant->created_at);
    NewTenant new = {tenant, NULL, NULL};
    g_autofree char *token_id = NULL;
    g_autofree char *secret = NULL;
    gboolean ok = store_transaction(app->store, insert_tenant_and_token, &new, &error);
    token_id = new.token_id;
    secret = new.secret;
    if (!ok)
        return http_reply_error(error);
    LogFields fields = {.message_id = LOG_MESSAGE_TENANT_CREATED, .tenant = tenant->name};
    log_structured(G_LOG_LEVEL_MESSAGE, &fields, "tenant %s created", tenant->name);

    json_object *body = json_object_new_object();
    json_object_object_add(body, "tenant", api_tenant_to_json(tenant));
    json_object_object_add(body, "token", token_json(token_id, secret, tenant->name));
    HttpReply *reply = http_reply_json(201, body);
    g_autoptr(json_object) representation = api_tenant_to_json(tenant);
    route_add_etag(reply, representation);
    g_autofree char *location = g_strdup_printf("/v1/tenants/%s", tenant->name);
    http_reply_add_header(reply, "Location", location);
    return reply;
}

HttpReply *handle_tenant_list(gpointer data, const HttpRequest *request)
{
    App *app = data;
    g_autoptr(GError) error = NULL;
    int limit = 0;
    const char *after = NULL;
    if (!route_page_args(request, &limit, &after, &error))
        return http_reply_error(error);
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) tenants = store_tenant_page(app->store, limit, after, &next, &error);
    if (tenants == NULL)
        return http_reply_error(error);
    return http_reply_json(200, api_tenant_list_to_json(tenants, next));
}

HttpReply *handle_tenant_get(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    const char *name = tenant_param(request, &reply);
    if (name == NULL)
        return reply;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiTenant) tenant = store_tenant_get(app->store, name, &error);
    return tenant != NULL ? reply_tenant(200, tenant) : http_reply_error(error);
}

/* The tenant @name as a write's transaction sees it, if If-Match names it. */
static ApiTenant *tenant_if_match(Store *store, const char *name, RouteIfMatch *if_match,
                                  GError **error)
{
    g_autoptr(ApiTenant) tenant = store_tenant_get(store, name, error);
    if (tenant == NULL)
        return NULL;
    g_autoptr(json_object) representation = api_tenant_to_json(tenant);
    if (!route_if_match_check(if_match, representation, error))
        return NULL;
    return g_steal_pointer(&tenant);
}

typedef struct {
    const char *name;
    json_object *body;
    RouteIfMatch if_match;
    ApiTenant *tenant; /* out: as changed */
} TenantWrite;

/* One transaction: the quota read, If-Match, the patch and the write, so
 * that of two operators who read the same tenant only one gets through. */
static gboolean patch_tenant(Store *store, gpointer data, GError **error)
{
    TenantWrite *write = data;
    g_autoptr(ApiTenant) tenant = tenant_if_match(store, write->name, &write->if_match, error);
    if (tenant == NULL || !api_tenant_patch_from_json(write->body, &tenant->quota, error))
        return FALSE;
    g_free(tenant->updated_at);
    tenant->updated_at = clock_now_rfc3339();
    if (!store_tenant_set_quota(store, write->name, &tenant->quota, tenant->updated_at, error))
        return FALSE;
    write->tenant = g_steal_pointer(&tenant);
    return TRUE;
}

static gboolean delete_tenant(Store *store, gpointer data, GError **error)
{
    TenantWrite *write = data;
    g_autoptr(ApiTenant) tenant = tenant_if_match(store, write->name, &write->if_match, error);
    return tenant != NULL && store_tenant_delete(store, write->name, error);
}

/* Runs @body for the tenant of the path; the answer to a failure. */
static HttpReply *tenant_write(App *app, const HttpRequest *request, StoreTransactionFunc body,
                               ApiTenant **tenant)
{
    HttpReply *reply = NULL;
    const char *name = tenant_param(request, &reply);
    if (name == NULL)
        return reply;
    g_autoptr(GError) error = NULL;
    TenantWrite write = {.name = name, .body = request->body};
    route_if_match_init(&write.if_match, request);
    if (!store_transaction(app->store, body, &write, &error))
        reply = route_reply_error(&write.if_match, error);
    route_if_match_clear(&write.if_match);
    *tenant = write.tenant;
    return reply;
}

HttpReply *handle_tenant_patch(gpointer data, const HttpRequest *request)
{
    g_autoptr(ApiTenant) tenant = NULL;
    HttpReply *reply = tenant_write(data, request, patch_tenant, &tenant);
    return reply != NULL ? reply : reply_tenant(200, tenant);
}

HttpReply *handle_tenant_delete(gpointer data, const HttpRequest *request)
{
    g_autoptr(ApiTenant) tenant = NULL;
    HttpReply *reply = tenant_write(data, request, delete_tenant, &tenant);
    if (reply != NULL)
        return reply;
    const char *name = http_request_param(request, "name");
    LogFields fields = {.message_id = LOG_MESSAGE_TENANT_DELETED, .tenant = name};
    log_structured(G_LOG_LEVEL_MESSAGE, &fields, "tenant %s deleted", name);
    return http_reply_empty(204);
}

HttpReply *handle_token_create(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    const char *name = tenant_param(request, &reply);
    if (name == NULL)
        return reply;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiTenant) tenant = store_tenant_get(app->store, name, &error);
    if (tenant == NULL)
        return http_reply_error(error);

    g_autofree char *token_id = NULL;
    g_autofree char *secret = token_issue(app->store, name, &token_id, &error);
    if (secret == NULL)
        return http_reply_error(error);
    json_object *body = json_object_new_object();
    json_object_object_add(body, "token", token_json(token_id, secret, name));
    return http_reply_json(201, body);
}

/* Ids and creation times only: a secret is shown once, when issued. */
HttpReply *handle_token_list(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    const char *name = tenant_param(request, &reply);
    if (name == NULL)
        return reply;
    g_autoptr(GError) error = NULL;
    int limit = 0;
    const char *after = NULL;
    if (!route_page_args(request, &limit, &after, &error))
        return http_reply_error(error);
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) tokens = store_token_page(app->store, name, limit, after, &next, &error);
    if (tokens == NULL)
        return http_reply_error(error);
    return http_reply_json(200, api_token_list_to_json(tokens, next));
}

HttpReply *handle_token_revoke(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    const char *name = tenant_param(request, &reply);
    if (name == NULL)
        return reply;
    const char *id = http_request_param(request, "id");
    if (!g_uuid_string_is_valid(id))
        return http_reply_errorf(TD_ERROR_NOT_FOUND, "token '%s' not found", id);
    g_autoptr(GError) error = NULL;
    if (!store_token_revoke(app->store, name, id, &error))
        return http_reply_error(error);
    const LogExtra token[] = {{"TURTLES_TOKEN_ID", id}};
    LogFields fields = {
        .message_id = LOG_MESSAGE_TOKEN_REVOKED, .tenant = name, .extra = token, .n_extra = 1};
    log_structured(G_LOG_LEVEL_MESSAGE, &fields, "token %s of tenant %s revoked", id, name);
    return http_reply_empty(204);
}
