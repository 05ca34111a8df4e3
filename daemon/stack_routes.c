/* Stacks (tenants; the operator may list everyone's). */
#include "api/json.h"
#include "api/stats.h"
#include "daemon/app.h"
#include "daemon/clock.h"
#include "daemon/connection.h"
#include "daemon/console.h"
#include "daemon/console_session.h"
#include "daemon/devices.h"
#include "daemon/error.h"
#include "daemon/stacks.h"
#include "daemon/tokens.h"
#include "hvcore/machine.h"

#define CONSOLE_TAIL_MAX 10000

static const char *caller_tenant(const HttpRequest *request)
{
    return request->caller->role == HTTP_CALLER_TENANT ? request->caller->tenant : NULL;
}

/* The caller's stack {name}: another tenant's answers 404 like a missing one. */
static ApiStack *stack_param(App *app, const HttpRequest *request, HttpReply **reply)
{
    const char *name = http_request_param(request, "name");
    g_autoptr(GError) error = NULL;
    ApiStack *stack = NULL;

    if (!api_name_is_valid(name))
        *reply = http_reply_errorf(TD_ERROR_NOT_FOUND, "stack '%s' not found", name);
    else if ((stack = store_stack_get(app->store, caller_tenant(request), name, &error)) == NULL)
        *reply = http_reply_error(error);
    return stack;
}

static HttpReply *reply_accepted(ApiOperation *operation, const ApiStack *stack,
                                 const GError *error)
{
    if (operation == NULL)
        return http_reply_error(error);
    json_object *body = json_object_new_object();
    json_object_object_add(body, "operation", api_operation_to_json(operation));
    if (stack != NULL)
        json_object_object_add(body, "stack", api_stack_to_json(stack));
    HttpReply *reply = http_reply_json(202, body);
    /* The stack's tag, as its GET would show it now. */
    if (stack != NULL) {
        g_autoptr(json_object) representation = api_stack_to_json(stack);
        route_add_etag(reply, representation);
    }
    g_autofree char *location = g_strdup_printf("/v1/operations/%s", operation->id);
    http_reply_add_header(reply, "Location", location);
    api_operation_free(operation);
    return reply;
}

HttpReply *handle_stack_create(gpointer data, const HttpRequest *request)
{
    App *app = data;
    g_autoptr(GError) error = NULL;
    ApiStackSpec *spec = api_stack_spec_from_json(request->body, &error);
    if (spec == NULL)
        return http_reply_error(error);
    g_autoptr(ApiStack) stack = NULL;
    ApiOperation *operation = stacks_create(app, caller_tenant(request), spec, &stack, &error);
    return reply_accepted(operation, stack, error);
}

HttpReply *handle_stack_list(gpointer data, const HttpRequest *request)
{
    App *app = data;
    g_autoptr(GError) error = NULL;
    const char *tenant = caller_tenant(request);
    const char *filter = http_request_query(request, "tenant");
    int limit = 0;
    const char *after = NULL;

    if (filter != NULL && tenant != NULL)
        return http_reply_errorf(TD_ERROR_BAD_REQUEST,
                                 "tenant: only the operator may list another tenant's stacks");
    if (filter != NULL && !api_name_is_valid(filter))
        return http_reply_errorf(TD_ERROR_BAD_REQUEST, "tenant: '%s' is not a valid name", filter);
    if (!route_page_args(request, &limit, &after, &error))
        return http_reply_error(error);
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) stacks =
        store_stack_list(app->store, tenant != NULL ? tenant : filter, limit, after, &next, &error);
    if (stacks == NULL)
        return http_reply_error(error);
    return http_reply_json(200, api_stack_list_to_json(stacks, next));
}

HttpReply *handle_stack_get(gpointer data, const HttpRequest *request)
{
    HttpReply *reply = NULL;
    g_autoptr(ApiStack) stack = stack_param(data, request, &reply);
    if (stack == NULL)
        return reply;
    return route_reply_tagged(200, "stack", api_stack_to_json(stack));
}

/* A Precondition: If-Match names the stack as it is. */
static gboolean stack_matches(gpointer stack, gpointer if_match, GError **error)
{
    g_autoptr(json_object) representation = api_stack_to_json(stack);
    return route_if_match_check(if_match, representation, error);
}

HttpReply *handle_stack_delete(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    g_autoptr(ApiStack) stack = stack_param(app, request, &reply);
    if (stack == NULL)
        return reply;
    g_autoptr(GError) error = NULL;
    g_auto(RouteIfMatch) if_match;
    route_if_match_init(&if_match, request);
    const Precondition precondition = {stack_matches, &if_match};
    ApiOperation *operation =
        stacks_delete(app, stack->tenant, stack->spec->name, &precondition, &error);
    if (operation == NULL)
        return route_reply_error(&if_match, error);
    return reply_accepted(operation, NULL, error);
}

HttpReply *handle_stack_action(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *action = api_stack_action_from_json(request->body, &error);
    if (action == NULL)
        return http_reply_error(error);
    g_autoptr(ApiStack) stack = stack_param(app, request, &reply);
    if (stack == NULL)
        return reply;
    ApiOperation *operation = stacks_action(app, stack->tenant, stack->spec->name, action, &error);
    return reply_accepted(operation, NULL, error);
}

HttpReply *handle_stack_migrate(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *peer = api_stack_migrate_from_json(request->body, &error);
    if (peer == NULL)
        return http_reply_error(error);
    g_autoptr(ApiStack) stack = stack_param(app, request, &reply);
    if (stack == NULL)
        return reply;
    ApiOperation *operation = stacks_migrate(app, stack->tenant, stack->spec->name, peer, &error);
    return reply_accepted(operation, NULL, error);
}

/* ---- devices ------------------------------------------------------------------- */

HttpReply *handle_stack_device_attach(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *class_name = api_device_attach_from_json(request->body, &error);
    if (class_name == NULL)
        return http_reply_error(error);
    g_autoptr(ApiStack) stack = stack_param(app, request, &reply);
    if (stack == NULL)
        return reply;
    ApiOperation *operation =
        devices_attach(app, stack->tenant, stack->spec->name, class_name, &error);
    return reply_accepted(operation, NULL, error);
}

HttpReply *handle_stack_device_detach(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiStack) stack = stack_param(app, request, &reply);
    if (stack == NULL)
        return reply;
    const char *id = http_request_param(request, "id");
    ApiOperation *operation = devices_detach(app, stack->tenant, stack->spec->name, id, &error);
    return reply_accepted(operation, NULL, error);
}

/* ---- console ------------------------------------------------------------------- */

typedef struct {
    App *app;
    char *stack_id;
    char *tenant;
    char *token; /* NULL for the operator */
} ConsoleWatch;

static void console_watch_free(gpointer data)
{
    ConsoleWatch *watch = data;
    g_free(watch->stack_id);
    g_free(watch->tenant);
    g_free(watch->token);
    g_free(watch);
}

/* A follow ends when the stack goes or the token that opened it is revoked. */
static gboolean console_still_allowed(gpointer data)
{
    ConsoleWatch *watch = data;
    g_autoptr(ApiStack) stack = store_stack_get_by_id(watch->app->store, watch->stack_id, NULL);
    if (stack == NULL || stack->state == API_STACK_STATE_DELETING)
        return FALSE;
    if (watch->token == NULL)
        return TRUE;
    g_autofree char *tenant = token_lookup(watch->app->store, watch->token);
    return g_strcmp0(tenant, watch->tenant) == 0;
}

static ConsoleWatch *console_watch_new(App *app, const ApiStack *stack, const HttpRequest *request)
{
    ConsoleWatch *watch = g_new0(ConsoleWatch, 1);
    watch->app = app;
    watch->stack_id = g_strdup(stack->id);
    watch->tenant = g_strdup(stack->tenant);
    if (request->caller->role == HTTP_CALLER_TENANT)
        watch->token = g_strdup(request->caller->token);
    return watch;
}

/* The request asks for a WebSocket: it names the protocol in Upgrade. */
static gboolean console_wants_upgrade(const HttpRequest *request)
{
    return http_request_header(request, "upgrade") != NULL;
}

/* GET .../console with Upgrade: websocket: the interactive console. */
static HttpReply *console_interactive(App *app, const HttpRequest *request, ApiStack *stack,
                                      guint tail, gboolean force, const char *accept)
{
    if (stack->state != API_STACK_STATE_RUNNING && stack->state != API_STACK_STATE_PAUSED)
        return http_reply_errorf(TD_ERROR_CONFLICT,
                                 "stack '%s' is %s: only a running stack has an interactive "
                                 "console",
                                 stack->spec->name, api_stack_state_to_string(stack->state));
    /* libvirt's test driver has no console streams (hvcore says so too, but
     * its domains are not the store's stacks, so it would answer "not
     * found" first). */
    if (app->backend == HV_BACKEND_TEST)
        return http_reply_errorf(TD_ERROR_NOT_IMPLEMENTED,
                                 "stack '%s': the test backend has no interactive console "
                                 "(the read-only console works: omit the Upgrade headers)",
                                 stack->spec->name);
    g_autoptr(GError) error = NULL;
    g_autoptr(HvConn) conn = connection_get(app, &error);
    if (conn == NULL)
        return http_reply_error(error);
    g_autofree char *path = stacks_console_path(app, stack->id);
    ConsoleSessionSpec spec = {
        .stack_id = stack->id,
        .stack_name = stack->spec->name,
        .domain = stack->domain_name,
        .log_path = path,
        .tail = tail,
        .force = force,
        .accept = accept,
        .still_allowed = console_still_allowed,
        .data = console_watch_new(app, stack, request),
        .free_data = console_watch_free,
    };
    return console_session_open(app->consoles, conn, &spec);
}

HttpReply *handle_stack_console(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    const char *tail_text = http_request_query(request, "tail");
    const char *follow_text = http_request_query(request, "follow");
    const char *force_text = http_request_query(request, "force");
    gboolean upgrade = console_wants_upgrade(request);
    guint64 tail = 0;
    g_autofree char *accept = NULL;

    if (tail_text != NULL &&
        !g_ascii_string_to_unsigned(tail_text, 10, 0, CONSOLE_TAIL_MAX, &tail, NULL))
        return http_reply_errorf(TD_ERROR_BAD_REQUEST,
                                 "tail: must be a whole number between 0 and %d", CONSOLE_TAIL_MAX);
    if (follow_text != NULL && !g_str_equal(follow_text, "0") && !g_str_equal(follow_text, "1"))
        return http_reply_errorf(TD_ERROR_BAD_REQUEST, "follow: must be 0 or 1");
    if (force_text != NULL && !g_str_equal(force_text, "0") && !g_str_equal(force_text, "1"))
        return http_reply_errorf(TD_ERROR_BAD_REQUEST, "force: must be 0 or 1");
    if (force_text != NULL && !upgrade)
        return http_reply_errorf(TD_ERROR_BAD_REQUEST,
                                 "force: only for the interactive console (a WebSocket upgrade)");
    if (upgrade && follow_text != NULL)
        return http_reply_errorf(TD_ERROR_BAD_REQUEST,
                                 "follow: not with a WebSocket upgrade, which follows already");
    if (upgrade && (reply = console_session_check_handshake(request, &accept)) != NULL)
        return reply;
    g_autoptr(ApiStack) stack = stack_param(app, request, &reply);
    if (stack == NULL)
        return reply;
    if (upgrade)
        return console_interactive(app, request, stack, (guint)tail,
                                   force_text != NULL && g_str_equal(force_text, "1"), accept);

    g_autofree char *path = stacks_console_path(app, stack->id);
    if (follow_text != NULL && g_str_equal(follow_text, "1"))
        return console_follow(path, (guint)tail, console_still_allowed,
                              console_watch_new(app, stack, request), console_watch_free);
    g_autoptr(GError) error = NULL;
    g_autofree char *text = console_tail(path, (guint)tail, &error);
    if (text == NULL)
        return http_reply_error(error);
    return http_reply_text(200, "text/plain; charset=utf-8", text);
}

/* ---- stats --------------------------------------------------------------------- */

static void fill_stats(ApiStackStats *stats, const HvMachineStats *figures)
{
    stats->has_cpu = TRUE;
    stats->cpu.time_ns = (gint64)figures->cpu_time_ns;
    stats->cpu.vcpus = figures->vcpus;
    stats->has_memory = TRUE;
    stats->memory.current_kib = (gint64)figures->memory_current_kib;
    stats->memory.maximum_kib = (gint64)figures->memory_maximum_kib;
    stats->memory.rss_kib = figures->memory_rss_kib;
    stats->has_block = TRUE;
    stats->block.read_bytes = (gint64)figures->block_read_bytes;
    stats->block.write_bytes = (gint64)figures->block_write_bytes;
    stats->block.read_requests = (gint64)figures->block_read_requests;
    stats->block.write_requests = (gint64)figures->block_write_requests;
}

HttpReply *handle_stack_stats(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    g_autoptr(ApiStack) stack = stack_param(app, request, &reply);
    if (stack == NULL)
        return reply;

    g_autoptr(ApiStackStats) stats = api_stack_stats_new();
    stats->stack = g_strdup(stack->spec->name);
    stats->state = stack->state;
    stats->collected_at = clock_now_rfc3339();
    /* Only a domain with a QEMU behind it has figures. */
    if (stack->state == API_STACK_STATE_RUNNING || stack->state == API_STACK_STATE_PAUSED) {
        g_autoptr(GError) error = NULL;
        g_autoptr(HvConn) conn = connection_get(app, &error);
        HvMachineStats figures = {0};
        if (conn == NULL)
            return http_reply_error(error);
        if (!hv_machine_get_stats(conn, stack->domain_name, &figures, &error)) {
            connection_failed(app, conn, &error);
            return http_reply_error(error);
        }
        if (figures.state == HV_MACHINE_RUNNING || figures.state == HV_MACHINE_PAUSED)
            fill_stats(stats, &figures);
    }
    g_autoptr(GError) error = NULL;
    if (!store_stack_get_last_migration(app->store, stack->id, &stats->last_migration,
                                        &stats->has_last_migration, &error))
        return http_reply_error(error);
    return http_reply_json(200, api_stack_stats_body_to_json(stats));
}
