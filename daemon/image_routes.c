/* Images of the calling tenant: create, list, get, delete, and the streamed
 * data upload. */
#include "api/json.h"
#include "daemon/app.h"
#include "daemon/error.h"
#include "daemon/images.h"

/* The {name} of the path, or an error reply when it cannot name an image. */
static const char *image_param(const HttpRequest *request, HttpReply **reply)
{
    const char *name = http_request_param(request, "name");
    if (!api_name_is_valid(name)) {
        *reply = http_reply_errorf(TD_ERROR_NOT_FOUND, "image '%s' not found", name);
        return NULL;
    }
    return name;
}

static HttpReply *reply_image(unsigned status, const ApiImage *image)
{
    return route_reply_tagged(status, "image", api_image_to_json(image));
}

HttpReply *handle_image_create(gpointer data, const HttpRequest *request)
{
    App *app = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiImage) image = api_image_create_from_json(request->body, &error);
    if (image == NULL || !images_create(app, request->caller->tenant, image, &error))
        return http_reply_error(error);

    HttpReply *reply = reply_image(201, image);
    g_autofree char *location = g_strdup_printf("/v1/images/%s", image->name);
    http_reply_add_header(reply, "Location", location);
    return reply;
}

HttpReply *handle_image_list(gpointer data, const HttpRequest *request)
{
    App *app = data;
    g_autoptr(GError) error = NULL;
    int limit = 0;
    const char *after = NULL;
    if (!route_page_args(request, &limit, &after, &error))
        return http_reply_error(error);
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) images =
        store_image_page(app->store, request->caller->tenant, limit, after, &next, &error);
    if (images == NULL)
        return http_reply_error(error);
    return http_reply_json(200, api_image_list_to_json(images, next));
}

HttpReply *handle_image_get(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    const char *name = image_param(request, &reply);
    if (name == NULL)
        return reply;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiImage) image = store_image_get(app->store, request->caller->tenant, name, &error);
    return image != NULL ? reply_image(200, image) : http_reply_error(error);
}

/* A Precondition: If-Match names the image as it is. */
static gboolean image_matches(gpointer image, gpointer if_match, GError **error)
{
    g_autoptr(json_object) representation = api_image_to_json(image);
    return route_if_match_check(if_match, representation, error);
}

HttpReply *handle_image_delete(gpointer data, const HttpRequest *request)
{
    App *app = data;
    HttpReply *reply = NULL;
    const char *name = image_param(request, &reply);
    if (name == NULL)
        return reply;
    g_autoptr(GError) error = NULL;
    g_auto(RouteIfMatch) if_match;
    route_if_match_init(&if_match, request);
    const Precondition precondition = {image_matches, &if_match};
    if (!images_delete(app, request->caller->tenant, name, &precondition, &error))
        return route_reply_error(&if_match, error);
    return http_reply_empty(204);
}

/* ---- PUT /v1/images/{name}/data ------------------------------------------------ */

static gpointer data_begin(gpointer data, const HttpRequest *request, guint64 content_length,
                           HttpReply **reply)
{
    App *app = data;
    const char *name = image_param(request, reply);
    if (name == NULL)
        return NULL;
    g_autoptr(GError) error = NULL;
    ImagesUpload *upload =
        images_upload_begin(app, request->caller->tenant, name, content_length, &error);
    if (upload == NULL)
        *reply = http_reply_error(error);
    return upload;
}

static gboolean data_write(gpointer upload, const char *data, gsize len, HttpReply **reply)
{
    g_autoptr(GError) error = NULL;
    if (images_upload_write(upload, data, len, &error))
        return TRUE;
    *reply = http_reply_error(error);
    return FALSE;
}

static HttpReply *data_finish(gpointer upload)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiImage) image = images_upload_finish(upload, &error);
    return image != NULL ? reply_image(200, image) : http_reply_error(error);
}

static void data_abort(gpointer upload)
{
    images_upload_abort(upload);
}

const HttpUploadHandler image_data_upload = {
    .begin = data_begin,
    .write = data_write,
    .finish = data_finish,
    .abort = data_abort,
};
