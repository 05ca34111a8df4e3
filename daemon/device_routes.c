/* The device pool: device classes (the operator's; tenants may read them to
 * know what to ask for, without the host's PCI addresses) and the devices
 * they hold. */
#include "api/device.h"
#include "api/json.h"
#include "daemon/app.h"
#include "daemon/clock.h"
#include "daemon/devices.h"
#include "daemon/error.h"

static const char *caller_tenant(const HttpRequest *request)
{
    return request->caller->role == HTTP_CALLER_TENANT ? request->caller->tenant : NULL;
}

/* The {name} of the path, or an error reply when it cannot name a class. */
static const char *class_param(const HttpRequest *request, HttpReply **reply)
{
    const char *name = http_request_param(request, "name");
    if (!api_name_is_valid(name)) {
        *reply = http_reply_errorf(TD_ERROR_NOT_FOUND, "device class '%s' not found", name);
        return NULL;
    }
    return name;
}

/* Tenants learn what they may ask for, not the host's PCI layout. */
static void hide_host_details(const HttpRequest *request, ApiDeviceClass *device_class)
{
    if (caller_tenant(request) == NULL)
        return;
    g_ptr_array_set_size(device_class->addresses, 0);
    device_class->force = FALSE;
}

static HttpReply *reply_class(unsigned status, const ApiDeviceClass *device_class)
{
    return route_reply_tagged(status, "device_class", api_device_class_to_json(device_class));
}

HttpReply *handle_device_class_create(gpointer data, const HttpRequest *request)
{
    App *app = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiDeviceClass) device_class =
        api_device_class_create_from_json(request->body, &error);
    if (device_class == NULL || !devices_class_create(app, device_class, &error))
        return http_reply_error(error);
    g_autoptr(ApiDeviceClass) created =
        store_device_class_get(app->store, device_class->name, &error);
    if (created == NULL)
        return http_reply_error(error);
    HttpReply *reply = reply_class(201, created);
    g_autofree char *location = g_strdup_printf("/v1/device-classes/%s", created->name);
    http_reply_add_header(reply, "Location", location);
    return reply;
}

HttpReply *handle_device_class_list(gpointer data, const HttpRequest *request)
{
    App *app = data;
    g_autoptr(GError) error = NULL;
    int limit = 0;
    const char *after = NULL;
    if (!route_page_args(request, &limit, &after, &error))
        return http_reply_error(error);
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) classes = store_device_class_page(app->store, limit, after, &next, &error);
    if (classes == NULL)
        return http_reply_error(error);
    for (guint i = 0; i < classes->len; i++)
        hide_host_details(request, g_ptr_array_index(classes, i));
    return http_reply_json(200, api_device_class_list_to_json(classes, next));
}

HttpReply *handle_device_class_get(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    const char *name = class_param(request, &reply);
    if (name == NULL)
        return reply;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiDeviceClass) device_class = store_device_class_get(app->store, name, &error);
    if (device_class == NULL)
        return http_reply_error(error);
    hide_host_details(request, device_class);
    return reply_class(200, device_class);
}

typedef struct {
    const HttpRequest *request;
    const char *name;
    RouteIfMatch if_match;
    /* PATCH only: what changes */
    gboolean has_capacity, has_description;
    gint64 capacity;
    char *description;
    ApiDeviceClass *device_class; /* out: as changed */
} ClassWrite;

/* If-Match on the class as the write's transaction sees it. */
static gboolean class_matches(Store *store, ClassWrite *write, GError **error)
{
    g_autoptr(ApiDeviceClass) device_class = store_device_class_get(store, write->name, error);
    if (device_class == NULL)
        return FALSE;
    hide_host_details(write->request, device_class);
    g_autoptr(json_object) representation = api_device_class_to_json(device_class);
    return route_if_match_check(&write->if_match, representation, error);
}

static gboolean patch_class(Store *store, gpointer data, GError **error)
{
    ClassWrite *write = data;
    g_autofree char *now = clock_now_rfc3339();
    if (!class_matches(store, write, error) ||
        !store_device_class_update(store, write->name, write->has_capacity, write->capacity,
                                   write->has_description, write->description, now, error))
        return FALSE;
    write->device_class = store_device_class_get(store, write->name, error);
    return write->device_class != NULL;
}

static gboolean delete_class(Store *store, gpointer data, GError **error)
{
    ClassWrite *write = data;
    return class_matches(store, write, error) &&
           store_device_class_delete(store, write->name, error);
}

static void class_write_clear(ClassWrite *write)
{
    route_if_match_clear(&write->if_match);
    g_free(write->description);
    api_device_class_free(write->device_class);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ClassWrite, class_write_clear)

HttpReply *handle_device_class_patch(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    const char *name = class_param(request, &reply);
    if (name == NULL)
        return reply;
    g_autoptr(GError) error = NULL;
    g_auto(ClassWrite) write = {.request = request, .name = name};
    route_if_match_init(&write.if_match, request);
    if (!api_device_class_patch_from_json(request->body, &write.has_capacity, &write.capacity,
                                          &write.has_description, &write.description, &error))
        return http_reply_error(error);
    if (!store_transaction(app->store, patch_class, &write, &error))
        return route_reply_error(&write.if_match, error);
    hide_host_details(request, write.device_class);
    return reply_class(200, write.device_class);
}

HttpReply *handle_device_class_delete(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    const char *name = class_param(request, &reply);
    if (name == NULL)
        return reply;
    g_autoptr(GError) error = NULL;
    g_auto(ClassWrite) write = {.request = request, .name = name};
    route_if_match_init(&write.if_match, request);
    if (!store_transaction(app->store, delete_class, &write, &error))
        return route_reply_error(&write.if_match, error);
    return http_reply_empty(204);
}

/* Every device for the operator; a tenant sees those its stacks hold. */
HttpReply *handle_device_list(gpointer data, const HttpRequest *request)
{
    App *app = data;
    const char *class_name = http_request_query(request, "class");
    if (class_name != NULL && !api_name_is_valid(class_name))
        return http_reply_errorf(TD_ERROR_BAD_REQUEST,
                                 "class: must be a device class name (a lower-case name)");
    g_autoptr(GError) error = NULL;
    int limit = 0;
    const char *after = NULL;
    if (!route_page_args(request, &limit, &after, &error))
        return http_reply_error(error);
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) devices = store_device_page(app->store, class_name, caller_tenant(request),
                                                     limit, after, &next, &error);
    if (devices == NULL)
        return http_reply_error(error);
    return http_reply_json(200, api_device_list_to_json(devices, next));
}
