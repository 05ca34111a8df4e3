/* Networks: a tenant's own (nat, isolated) and the operator's external
 * ones.  A tenant sees its own and the external ones shared with it; the
 * operator sees all, and names a tenant's network with ?tenant=. */
#include "api/json.h"
#include "api/network.h"
#include "daemon/app.h"
#include "daemon/error.h"
#include "daemon/networks.h"

static const char *caller_tenant(const HttpRequest *request)
{
    return request->caller->role == HTTP_CALLER_TENANT ? request->caller->tenant : NULL;
}

static HttpReply *reply_network(unsigned status, ApiNetwork *network)
{
    networks_fill(network);
    return route_reply_tagged(status, "network", api_network_to_json(network));
}

/* A Precondition: If-Match names the network (a StoreNetwork) as GET shows it. */
static gboolean network_matches(gpointer row, gpointer if_match, GError **error)
{
    ApiNetwork *network = ((StoreNetwork *)row)->network;
    networks_fill(network);
    g_autoptr(json_object) representation = api_network_to_json(network);
    return route_if_match_check(if_match, representation, error);
}

/* The network {name} the caller means: a tenant's own or one shared with
 * it; the operator's external one, or ?tenant='s.  Another tenant's
 * answers 404 like a missing one. */
static StoreNetwork *network_param(App *app, const HttpRequest *request, HttpReply **reply)
{
    const char *name = http_request_param(request, "name");
    const char *owner = http_request_query(request, "tenant");
    g_autoptr(GError) error = NULL;
    StoreNetwork *row = NULL;

    if (!api_name_is_valid(name)) {
        *reply = http_reply_errorf(TD_ERROR_NOT_FOUND, "network '%s' not found", name);
        return NULL;
    }
    if (caller_tenant(request) != NULL) {
        if (owner != NULL) {
            *reply = http_reply_errorf(TD_ERROR_FORBIDDEN,
                                       "tenant: only the operator names a network's owner");
            return NULL;
        }
        row = store_network_get_visible(app->store, caller_tenant(request), name, &error);
    } else {
        if (owner != NULL && !api_name_is_valid(owner)) {
            *reply = http_reply_errorf(TD_ERROR_BAD_REQUEST, "tenant: not a valid tenant name");
            return NULL;
        }
        row = store_network_get(app->store, owner, name, &error);
    }
    if (row == NULL)
        *reply = http_reply_error(error);
    return row;
}

HttpReply *handle_network_create(gpointer data, const HttpRequest *request)
{
    App *app = data;
    g_autoptr(GError) error = NULL;
    ApiNetwork *wanted = api_network_create_from_json(request->body, &error);
    if (wanted == NULL)
        return http_reply_error(error);
    g_autoptr(ApiNetwork) network = networks_create(app, caller_tenant(request), wanted, &error);
    if (network == NULL)
        return http_reply_error(error);
    HttpReply *reply = reply_network(201, network);
    g_autofree char *location =
        network->tenant != NULL && caller_tenant(request) == NULL
            ? g_strdup_printf("/v1/networks/%s?tenant=%s", network->name, network->tenant)
            : g_strdup_printf("/v1/networks/%s", network->name);
    http_reply_add_header(reply, "Location", location);
    return reply;
}

HttpReply *handle_network_list(gpointer data, const HttpRequest *request)
{
    App *app = data;
    g_autoptr(GError) error = NULL;
    const char *tenant = caller_tenant(request);
    const char *filter = http_request_query(request, "tenant");
    if (tenant != NULL && filter != NULL)
        return http_reply_errorf(TD_ERROR_FORBIDDEN, "tenant: only the operator filters by tenant");
    if (filter != NULL && !api_name_is_valid(filter))
        return http_reply_errorf(TD_ERROR_BAD_REQUEST, "tenant: not a valid tenant name");
    int limit = 0;
    const char *after = NULL;
    if (!route_page_args(request, &limit, &after, &error))
        return http_reply_error(error);
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) rows =
        store_network_list(app->store, tenant ? tenant : filter, limit, after, &next, &error);
    if (rows == NULL)
        return http_reply_error(error);
    g_autoptr(GPtrArray) networks = g_ptr_array_new();
    for (guint i = 0; i < rows->len; i++) {
        ApiNetwork *network = ((StoreNetwork *)g_ptr_array_index(rows, i))->network;
        networks_fill(network);
        g_ptr_array_add(networks, network);
    }
    return http_reply_json(200, api_network_list_to_json(networks, next));
}

HttpReply *handle_network_get(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    g_autoptr(StoreNetwork) row = network_param(app, request, &reply);
    if (row == NULL)
        return reply;
    return reply_network(200, row->network);
}

HttpReply *handle_network_delete(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    g_autoptr(StoreNetwork) row = network_param(app, request, &reply);
    if (row == NULL)
        return reply;
    /* A tenant may use an external network, not remove it. */
    if (caller_tenant(request) != NULL && row->network->tenant == NULL)
        return http_reply_errorf(TD_ERROR_FORBIDDEN,
                                 "network '%s' is the operator's: only the operator deletes it",
                                 row->network->name);
    g_autoptr(GError) error = NULL;
    g_auto(RouteIfMatch) if_match;
    route_if_match_init(&if_match, request);
    const Precondition precondition = {network_matches, &if_match};
    if (!networks_delete(app, row, &precondition, &error))
        return route_reply_error(&if_match, error);
    return http_reply_empty(204);
}
