/* The API's route table: DESIGN.md "REST API v1" and api/openapi.yaml. */
#include "daemon/app.h"

#define ANYONE   HTTP_ACCESS_ANYONE
#define OPERATOR HTTP_ACCESS_OPERATOR
#define TENANT   HTTP_ACCESS_TENANT
#define CALLER   HTTP_ACCESS_CALLER
#define METRICS  HTTP_ACCESS_METRICS
#define LOCAL    HTTP_ACCESS_LOCAL_OPERATOR

/* Designated initializers, so that a field added to HttpRoute needs no edit here. */
#define ROUTE(m, p, a, j, h)                                                                       \
    {                                                                                              \
        .method = m, .pattern = p, .access = a, .json_body = j, .handler = h                       \
    }

/* Same as ROUTE, for a route that takes query parameters @q. */
#define ROUTE_Q(m, p, a, j, h, q)                                                                  \
    {                                                                                              \
        .method = m, .pattern = p, .access = a, .json_body = j, .handler = h, .query = q           \
    }

/* Query parameters, by route. */
static const char *const page_query[] = {"limit", "after", NULL};
static const char *const tenant_page_query[] = {"limit", "after", "tenant", NULL};
static const char *const tenant_query[] = {"tenant", NULL};
static const char *const events_query[] = {"after", NULL};
static const char *const console_query[] = {"tail", "follow", "force", NULL};
static const char *const wait_query[] = {"timeout", NULL};
static const char *const device_page_query[] = {"limit", "after", "class", NULL};
static const char *const operation_page_query[] = {"limit",  "after", "tenant",
                                                   "status", "kind",  NULL};

static const HttpRoute routes[] = {
    ROUTE("GET", "/v1", ANYONE, FALSE, handle_version),
    ROUTE("GET", "/v1/host", OPERATOR, FALSE, handle_host),
    ROUTE("GET", "/metrics", METRICS, FALSE, handle_metrics),
    ROUTE_Q("GET", "/v1/events", CALLER, FALSE, handle_events, events_query),

    ROUTE("POST", "/v1/tenants", OPERATOR, TRUE, handle_tenant_create),
    ROUTE_Q("GET", "/v1/tenants", OPERATOR, FALSE, handle_tenant_list, page_query),
    ROUTE("GET", "/v1/tenants/{name}", OPERATOR, FALSE, handle_tenant_get),
    ROUTE("PATCH", "/v1/tenants/{name}", OPERATOR, TRUE, handle_tenant_patch),
    ROUTE("DELETE", "/v1/tenants/{name}", OPERATOR, FALSE, handle_tenant_delete),
    ROUTE("POST", "/v1/tenants/{name}/tokens", OPERATOR, FALSE, handle_token_create),
    ROUTE_Q("GET", "/v1/tenants/{name}/tokens", OPERATOR, FALSE, handle_token_list, page_query),
    ROUTE("DELETE", "/v1/tenants/{name}/tokens/{id}", OPERATOR, FALSE, handle_token_revoke),

    /* operator tokens: managed on the socket only, never with a token */
    ROUTE("POST", "/v1/operator/tokens", LOCAL, TRUE, handle_operator_token_create),
    ROUTE_Q("GET", "/v1/operator/tokens", LOCAL, FALSE, handle_operator_token_list, page_query),
    ROUTE("DELETE", "/v1/operator/tokens/{id}", LOCAL, FALSE, handle_operator_token_revoke),

    /* images */
    ROUTE("POST", "/v1/images", TENANT, TRUE, handle_image_create),
    ROUTE_Q("GET", "/v1/images", TENANT, FALSE, handle_image_list, page_query),
    ROUTE("GET", "/v1/images/{name}", TENANT, FALSE, handle_image_get),
    ROUTE("DELETE", "/v1/images/{name}", TENANT, FALSE, handle_image_delete),
    {.method = "PUT",
     .pattern = "/v1/images/{name}/data",
     .access = TENANT,
     .upload = &image_data_upload},

    /* stacks */
    ROUTE("POST", "/v1/stacks", TENANT, TRUE, handle_stack_create),
    ROUTE_Q("GET", "/v1/stacks", CALLER, FALSE, handle_stack_list, tenant_page_query),
    ROUTE("GET", "/v1/stacks/{name}", TENANT, FALSE, handle_stack_get),
    ROUTE("DELETE", "/v1/stacks/{name}", TENANT, FALSE, handle_stack_delete),
    ROUTE("POST", "/v1/stacks/{name}/actions", TENANT, TRUE, handle_stack_action),
    ROUTE_Q("GET", "/v1/stacks/{name}/console", TENANT, FALSE, handle_stack_console, console_query),
    ROUTE("GET", "/v1/stacks/{name}/stats", TENANT, FALSE, handle_stack_stats),
    ROUTE("POST", "/v1/stacks/{name}/migrate", TENANT, TRUE, handle_stack_migrate),
    ROUTE("POST", "/v1/stacks/{name}/devices", TENANT, TRUE, handle_stack_device_attach),
    ROUTE("DELETE", "/v1/stacks/{name}/devices/{id}", TENANT, FALSE, handle_stack_device_detach),

    /* networks */
    ROUTE("POST", "/v1/networks", CALLER, TRUE, handle_network_create),
    ROUTE_Q("GET", "/v1/networks", CALLER, FALSE, handle_network_list, tenant_page_query),
    ROUTE_Q("GET", "/v1/networks/{name}", CALLER, FALSE, handle_network_get, tenant_query),
    ROUTE_Q("DELETE", "/v1/networks/{name}", CALLER, FALSE, handle_network_delete, tenant_query),

    /* the device pool */
    ROUTE("POST", "/v1/device-classes", OPERATOR, TRUE, handle_device_class_create),
    ROUTE_Q("GET", "/v1/device-classes", CALLER, FALSE, handle_device_class_list, page_query),
    ROUTE("GET", "/v1/device-classes/{name}", CALLER, FALSE, handle_device_class_get),
    ROUTE("PATCH", "/v1/device-classes/{name}", OPERATOR, TRUE, handle_device_class_patch),
    ROUTE("DELETE", "/v1/device-classes/{name}", OPERATOR, FALSE, handle_device_class_delete),
    ROUTE_Q("GET", "/v1/devices", CALLER, FALSE, handle_device_list, device_page_query),

    /* peers */
    ROUTE("POST", "/v1/peers", OPERATOR, TRUE, handle_peer_create),
    ROUTE_Q("GET", "/v1/peers", OPERATOR, FALSE, handle_peer_list, page_query),
    ROUTE("GET", "/v1/peers/{name}", OPERATOR, FALSE, handle_peer_get),
    ROUTE("DELETE", "/v1/peers/{name}", OPERATOR, FALSE, handle_peer_delete),

    ROUTE_Q("GET", "/v1/operations", CALLER, FALSE, handle_operation_list, operation_page_query),
    ROUTE("GET", "/v1/operations/{id}", CALLER, FALSE, handle_operation_get),
    ROUTE_Q("GET", "/v1/operations/{id}/wait", CALLER, FALSE, handle_operation_wait, wait_query),
    ROUTE("DELETE", "/v1/operations/{id}", CALLER, FALSE, handle_operation_cancel),
};

/* Only with --test-hooks: an operation that just sleeps, so tests can kill
 * turtled while one runs; a hang of what the watchdog watches. */
static const HttpRoute test_routes[] = {
    ROUTE("POST", "/v1/test/sleep", CALLER, TRUE, handle_test_sleep),
    ROUTE("POST", "/v1/test/hang", OPERATOR, TRUE, handle_test_hang),
};

const HttpRoute *routes_table(gsize *n_routes)
{
    *n_routes = G_N_ELEMENTS(routes);
    return routes;
}

const HttpRoute *routes_test_table(gsize *n_routes)
{
    *n_routes = G_N_ELEMENTS(test_routes);
    return test_routes;
}
