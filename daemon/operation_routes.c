/* Operations: list, get, long-poll wait, cancel; and the test-only sleep. */
#include <stdlib.h>

#include "api/json.h"
#include "daemon/app.h"
#include "daemon/error.h"
#include "daemon/events.h"

#define WAIT_DEFAULT_S 30
#define WAIT_MAX_S     300

/* Operator sees every operation; a tenant only its own. */
static const char *caller_tenant(const HttpRequest *request)
{
    return request->caller->role == HTTP_CALLER_TENANT ? request->caller->tenant : NULL;
}

/* 200 {"operation": ...} with its ETag, or the error; 202 for answers to
 * async requests. */
static HttpReply *reply_operation(unsigned status, ApiOperation *operation, const GError *error)
{
    if (operation == NULL)
        return http_reply_error(error);
    HttpReply *reply = route_reply_tagged(status, "operation", api_operation_to_json(operation));
    if (status == 202) {
        g_autofree char *location = g_strdup_printf("/v1/operations/%s", operation->id);
        http_reply_add_header(reply, "Location", location);
    }
    return reply;
}

/* ?tenant= (operator only, as on GET /v1/stacks), ?status=, ?kind=: what
 * the caller's listing holds.  The caller's own tenant scopes a tenant. */
static gboolean list_filter(const HttpRequest *request, StoreOperationFilter *filter,
                            GError **error)
{
    const char *tenant = caller_tenant(request);
    const char *named = http_request_query(request, "tenant");
    const char *statuses = http_request_query(request, "status");

    if (named != NULL && tenant != NULL) {
        g_set_error_literal(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                            "tenant: only the operator may list another tenant's operations");
        return FALSE;
    }
    if (named != NULL && !api_name_is_valid(named)) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "tenant: '%s' is not a valid name",
                    named);
        return FALSE;
    }
    filter->tenant = tenant != NULL ? tenant : named;
    filter->statuses = 0;
    filter->kind = http_request_query(request, "kind");
    return (statuses == NULL ||
            api_operation_statuses_from_string(statuses, &filter->statuses, error)) &&
           (filter->kind == NULL || api_operation_kind_check(filter->kind, error));
}

HttpReply *handle_operation_list(gpointer data, const HttpRequest *request)
{
    App *app = data;
    g_autoptr(GError) error = NULL;
    StoreOperationFilter filter;
    int limit = 0;
    const char *after = NULL;

    if (!list_filter(request, &filter, &error) || !route_page_args(request, &limit, &after, &error))
        return http_reply_error(error);
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) operations =
        store_operation_page(app->store, &filter, limit, after, &next, &error);
    if (operations == NULL)
        return http_reply_error(error);
    return http_reply_json(200, api_operation_list_to_json(operations, next));
}

static const char *operation_param(const HttpRequest *request, HttpReply **reply)
{
    const char *id = http_request_param(request, "id");
    if (!g_uuid_string_is_valid(id)) {
        *reply = http_reply_errorf(TD_ERROR_NOT_FOUND, "operation '%s' not found", id);
        return NULL;
    }
    return id;
}

HttpReply *handle_operation_get(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    const char *id = operation_param(request, &reply);
    if (id == NULL)
        return reply;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiOperation) operation =
        operations_get(app->operations, id, caller_tenant(request), &error);
    return reply_operation(200, operation, error);
}

/* ?timeout=S, whole seconds in [0, WAIT_MAX_S]. */
static gboolean parse_timeout(const char *text, guint *timeout, GError **error)
{
    guint64 value = WAIT_DEFAULT_S;
    if (text != NULL && !g_ascii_string_to_unsigned(text, 10, 0, WAIT_MAX_S, &value, NULL)) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "timeout: must be whole seconds between 0 and %d", WAIT_MAX_S);
        return FALSE;
    }
    *timeout = (guint)value;
    return TRUE;
}

/* A long-poll parked in the HTTP layer: woken by any event its caller sees
 * (operations publish every change), answered once the operation is final,
 * the timeout passed or turtled stops.  No thread waits meanwhile. */
typedef struct {
    App *app;
    char *id;
    char *tenant;
    gint64 deadline; /* monotonic µs */
    EventSubscription *subscription;
} OperationWait;

static void operation_wait_free(gpointer data)
{
    OperationWait *wait = data;
    event_subscription_free(wait->subscription);
    g_free(wait->id);
    g_free(wait->tenant);
    g_free(wait);
}

static HttpReply *operation_wait_poll(gpointer data, gboolean final)
{
    OperationWait *wait = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiOperation) operation =
        operations_get(wait->app->operations, wait->id, wait->tenant, &error);
    if (operation != NULL && !final && !api_operation_status_is_final(operation->status) &&
        g_get_monotonic_time() < wait->deadline)
        return NULL;
    return reply_operation(200, operation, error);
}

static void operation_wait_wake(gpointer unused, gpointer waker)
{
    (void)unused;
    http_waker_wake(waker);
}

HttpReply *handle_operation_wait(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    const char *id = operation_param(request, &reply);
    if (id == NULL)
        return reply;
    g_autoptr(GError) error = NULL;
    guint timeout = 0;
    if (!parse_timeout(http_request_query(request, "timeout"), &timeout, &error))
        return http_reply_error(error);
    g_autoptr(ApiOperation) operation =
        operations_get(app->operations, id, caller_tenant(request), &error);
    if (operation == NULL || timeout == 0 || api_operation_status_is_final(operation->status))
        return reply_operation(200, operation, error);

    OperationWait *wait = g_new0(OperationWait, 1);
    wait->app = app;
    wait->id = g_strdup(id);
    wait->tenant = g_strdup(caller_tenant(request));
    wait->deadline = g_get_monotonic_time() + (gint64)timeout * G_USEC_PER_SEC;
    reply = http_reply_deferred(operation_wait_poll, wait, operation_wait_free);
    /* Subscribed after the first look: a change in between is caught by the
     * first poll, which runs right after this returns. */
    wait->subscription =
        event_bus_subscribe(app->events, wait->tenant, operation_wait_wake, http_reply_waker(reply),
                            (GDestroyNotify)http_waker_unref);
    return reply;
}

/* If-Match names the operation as it is when the cancel takes effect. */
static gboolean operation_matches(const ApiOperation *operation, gpointer if_match, GError **error)
{
    g_autoptr(json_object) representation = api_operation_to_json(operation);
    return route_if_match_check(if_match, representation, error);
}

HttpReply *handle_operation_cancel(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    const char *id = operation_param(request, &reply);
    if (id == NULL)
        return reply;
    g_autoptr(GError) error = NULL;
    g_auto(RouteIfMatch) if_match;
    route_if_match_init(&if_match, request);
    g_autoptr(ApiOperation) operation = operations_cancel(
        app->operations, id, caller_tenant(request), operation_matches, &if_match, &error);
    if (operation == NULL)
        return route_reply_error(&if_match, error);
    return reply_operation(202, operation, NULL);
}

/* ---- test hooks ------------------------------------------------------------ */

static gboolean sleep_body(OperationContext *context, gpointer data, GError **error)
{
    gint64 tenths = GPOINTER_TO_INT(data) * 10;
    GCancellable *cancellable = operation_cancellable(context);

    for (gint64 i = 0; i < tenths; i++) {
        if (g_cancellable_set_error_if_cancelled(cancellable, error))
            return FALSE;
        g_usleep(G_USEC_PER_SEC / 10);
        if ((i + 1) % 10 == 0)
            operation_progress(context, (int)((i + 1) * 100 / tenths), "sleeping", i + 1, tenths);
    }
    return TRUE;
}

HttpReply *handle_test_sleep(gpointer data, const HttpRequest *request)
{
    static const char *const keys[] = {"seconds", NULL};
    App *app = data;
    g_autoptr(GError) error = NULL;
    gint64 seconds = 0;

    if (!api_json_check_object(request->body, "", keys, &error) ||
        !api_json_get_int(request->body, "", "seconds", API_JSON_REQUIRED, 0, 600, &seconds,
                          &error))
        return http_reply_error(error);
    g_autoptr(ApiOperation) operation =
        operations_submit(app->operations, "test.sleep", "test/sleep", caller_tenant(request),
                          sleep_body, GINT_TO_POINTER((int)seconds), NULL, &error);
    return reply_operation(202, operation, error);
}
