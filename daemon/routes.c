/* The API's route table: DESIGN.md "REST API v1" and api/openapi.yaml. */
#include "daemon/app.h"

#define ANYONE   HTTP_ACCESS_ANYONE
#define OPERATOR HTTP_ACCESS_OPERATOR
#define TENANT   HTTP_ACCESS_TENANT
#define CALLER   HTTP_ACCESS_CALLER

static const HttpRoute routes[] = {
    {"GET", "/v1", ANYONE, FALSE, handle_version, NULL},
    {"GET", "/v1/host", OPERATOR, FALSE, handle_host, NULL},
    {"GET", "/metrics", OPERATOR, FALSE, handle_metrics, NULL},
    {"GET", "/v1/events", CALLER, FALSE, handle_events, NULL},

    {"POST", "/v1/tenants", OPERATOR, TRUE, handle_tenant_create, NULL},
    {"GET", "/v1/tenants", OPERATOR, FALSE, handle_tenant_list, NULL},
    {"GET", "/v1/tenants/{name}", OPERATOR, FALSE, handle_tenant_get, NULL},
    {"PATCH", "/v1/tenants/{name}", OPERATOR, TRUE, handle_tenant_patch, NULL},
    {"DELETE", "/v1/tenants/{name}", OPERATOR, FALSE, handle_tenant_delete, NULL},
    {"POST", "/v1/tenants/{name}/tokens", OPERATOR, FALSE, handle_token_create, NULL},
    {"DELETE", "/v1/tenants/{name}/tokens/{id}", OPERATOR, FALSE, handle_token_revoke, NULL},

    {"GET", "/v1/operations/{id}", CALLER, FALSE, handle_operation_get, NULL},
    {"GET", "/v1/operations/{id}/wait", CALLER, FALSE, handle_operation_wait, NULL},
    {"DELETE", "/v1/operations/{id}", CALLER, FALSE, handle_operation_cancel, NULL},
};

/* Only with --test-hooks: an operation that just sleeps, so tests can kill
 * turtled while one runs. */
static const HttpRoute test_routes[] = {
    {"POST", "/v1/test/sleep", CALLER, TRUE, handle_test_sleep, NULL},
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
