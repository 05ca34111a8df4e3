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
    json_object *body = json_object_new_object();
    json_object_object_add(body, "device_class", api_device_class_to_json(device_class));
    return http_reply_json(status, body);
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
    g_autoptr(GPtrArray) classes = store_device_class_list(app->store, &error);
    if (classes == NULL)
        return http_reply_error(error);
    for (guint i = 0; i < classes->len; i++)
        hide_host_details(request, g_ptr_array_index(classes, i));
    return http_reply_json(200, api_device_class_list_to_json(classes));
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

HttpReply *handle_device_class_patch(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    const char *name = class_param(request, &reply);
    if (name == NULL)
        return reply;
    g_autoptr(GError) error = NULL;
    gboolean has_capacity = FALSE, has_description = FALSE;
    gint64 capacity = 0;
    g_autofree char *description = NULL;
    if (!api_device_class_patch_from_json(request->body, &has_capacity, &capacity, &has_description,
                                          &description, &error))
        return http_reply_error(error);
    g_autofree char *now = clock_now_rfc3339();
    if (!store_device_class_update(app->store, name, has_capacity, capacity, has_description,
                                   description, now, &error))
        return http_reply_error(error);
    g_autoptr(ApiDeviceClass) device_class = store_device_class_get(app->store, name, &error);
    return device_class != NULL ? reply_class(200, device_class) : http_reply_error(error);
}

HttpReply *handle_device_class_delete(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    const char *name = class_param(request, &reply);
    if (name == NULL)
        return reply;
    g_autoptr(GError) error = NULL;
    if (!store_device_class_delete(app->store, name, &error))
        return http_reply_error(error);
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
    g_autoptr(GPtrArray) devices =
        store_device_list(app->store, class_name, caller_tenant(request), &error);
    if (devices == NULL)
        return http_reply_error(error);
    return http_reply_json(200, api_device_list_to_json(devices));
}
