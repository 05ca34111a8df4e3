#include "api/image.h"

#include <string.h>

#include "api/enum.h"
#include "api/error.h"
#include "api/json.h"

static const char *const image_keys[] = {
    "id",   "name",   "tenant", "kind",       "format",     "state",
    "size", "sha256", "error",  "created_at", "updated_at", NULL,
};
static const char *const create_keys[] = {"name", "kind", "format", NULL};
static const ApiEnumName kind_names[] = {
    {API_IMAGE_KIND_KERNEL, "kernel"},
    {API_IMAGE_KIND_INITRD, "initrd"},
    {API_IMAGE_KIND_DISK, "disk"},
    {0, NULL},
};
static const ApiEnumName format_names[] = {
    {API_IMAGE_FORMAT_RAW, "raw"},
    {API_IMAGE_FORMAT_QCOW2, "qcow2"},
    {0, NULL},
};
static const ApiEnumName state_names[] = {
    {API_IMAGE_STATE_PENDING, "pending"},
    {API_IMAGE_STATE_UPLOADING, "uploading"},
    {API_IMAGE_STATE_READY, "ready"},
    {API_IMAGE_STATE_ERROR, "error"},
    {0, NULL},
};

/* ---- enums -------------------------------------------------------------------- */

const char *api_image_kind_to_string(ApiImageKind kind)
{
    return api_enum_to_string(kind_names, kind);
}

gboolean api_image_kind_from_string(const char *text, ApiImageKind *kind)
{
    g_return_val_if_fail(kind != NULL, FALSE);
    int value = 0;
    if (!api_enum_from_string(kind_names, text, &value))
        return FALSE;
    *kind = (ApiImageKind)value;
    return TRUE;
}

const char *api_image_format_to_string(ApiImageFormat format)
{
    return api_enum_to_string(format_names, format);
}

gboolean api_image_format_from_string(const char *text, ApiImageFormat *format)
{
    g_return_val_if_fail(format != NULL, FALSE);
    int value = 0;
    if (!api_enum_from_string(format_names, text, &value))
        return FALSE;
    *format = (ApiImageFormat)value;
    return TRUE;
}

const char *api_image_state_to_string(ApiImageState state)
{
    return api_enum_to_string(state_names, state);
}

gboolean api_image_state_from_string(const char *text, ApiImageState *state)
{
    g_return_val_if_fail(state != NULL, FALSE);
    int value = 0;
    if (!api_enum_from_string(state_names, text, &value))
        return FALSE;
    *state = (ApiImageState)value;
    return TRUE;
}

/* ---- lifetime ----------------------------------------------------------------- */

ApiImage *api_image_new(void)
{
    ApiImage *image = g_new0(ApiImage, 1);
    image->kind = API_IMAGE_KIND_KERNEL;
    image->format = API_IMAGE_FORMAT_RAW;
    image->state = API_IMAGE_STATE_PENDING;
    image->size = -1;
    return image;
}

ApiImage *api_image_copy(const ApiImage *image)
{
    if (!image)
        return NULL;
    ApiImage *copy = g_new0(ApiImage, 1);
    copy->id = g_strdup(image->id);
    copy->name = g_strdup(image->name);
    copy->tenant = g_strdup(image->tenant);
    copy->kind = image->kind;
    copy->format = image->format;
    copy->state = image->state;
    copy->size = image->size;
    copy->sha256 = g_strdup(image->sha256);
    copy->error = g_strdup(image->error);
    copy->created_at = g_strdup(image->created_at);
    copy->updated_at = g_strdup(image->updated_at);
    copy->volume = g_strdup(image->volume);
    return copy;
}

void api_image_free(ApiImage *image)
{
    if (!image)
        return;
    g_free(image->id);
    g_free(image->name);
    g_free(image->tenant);
    g_free(image->sha256);
    g_free(image->error);
    g_free(image->created_at);
    g_free(image->updated_at);
    g_free(image->volume);
    g_free(image);
}

/* ---- value rules ---------------------------------------------------------------- */

/* QEMU takes -kernel and -initrd as plain files: there is no qcow2 reader on
 * that path. */
static gboolean check_kind_format(ApiImageKind kind, ApiImageFormat format, GError **error)
{
    if (kind != API_IMAGE_KIND_DISK && format != API_IMAGE_FORMAT_RAW) {
        api_json_set_invalid(error, "format", "must be raw for kind %s",
                             api_image_kind_to_string(kind));
        return FALSE;
    }
    return TRUE;
}

static gboolean check_sha256(const char *sha256, GError **error)
{
    gboolean ok = strlen(sha256) == API_IMAGE_SHA256_LEN;
    for (const char *p = sha256; ok && *p; p++)
        ok = g_ascii_isdigit(*p) || (*p >= 'a' && *p <= 'f');
    if (!ok) {
        api_json_set_invalid(error, "sha256", "must be %d lower-case hex digits",
                             API_IMAGE_SHA256_LEN);
        return FALSE;
    }
    return TRUE;
}

/* ---- JSON ------------------------------------------------------------------------ */

ApiImage *api_image_create_from_json(json_object *value, GError **error)
{
    const ApiJsonFlags req = API_JSON_REQUIRED;
    g_autoptr(ApiImage) image = api_image_new();
    g_autofree char *kind = NULL;
    g_autofree char *format = NULL;
    int kind_value = 0;
    int format_value = 0;

    if (!api_json_check_object(value, "", create_keys, error) ||
        !api_json_get_string(value, "", "name", req, &image->name, error) ||
        !api_json_get_string(value, "", "kind", req, &kind, error) ||
        !api_json_get_string(value, "", "format", req, &format, error))
        return NULL;

    if (!api_json_check_name("name", image->name, error) ||
        !api_enum_check("kind", kind_names, kind, &kind_value, error) ||
        !api_enum_check("format", format_names, format, &format_value, error) ||
        !check_kind_format((ApiImageKind)kind_value, (ApiImageFormat)format_value, error))
        return NULL;
    image->kind = (ApiImageKind)kind_value;
    image->format = (ApiImageFormat)format_value;
    return g_steal_pointer(&image);
}

json_object *api_image_to_json(const ApiImage *image)
{
    g_return_val_if_fail(image != NULL, NULL);

    json_object *root = json_object_new_object();
    json_object_object_add(root, "id", api_json_new_string_or_null(image->id));
    json_object_object_add(root, "name", api_json_new_string_or_null(image->name));
    json_object_object_add(root, "tenant", api_json_new_string_or_null(image->tenant));
    json_object_object_add(root, "kind",
                           json_object_new_string(api_image_kind_to_string(image->kind)));
    json_object_object_add(root, "format",
                           json_object_new_string(api_image_format_to_string(image->format)));
    json_object_object_add(root, "state",
                           json_object_new_string(api_image_state_to_string(image->state)));
    json_object_object_add(root, "size", api_json_new_int_or_null(image->size));
    json_object_object_add(root, "sha256", api_json_new_string_or_null(image->sha256));
    json_object_object_add(root, "error", api_json_new_string_or_null(image->error));
    json_object_object_add(root, "created_at", api_json_new_string_or_null(image->created_at));
    json_object_object_add(root, "updated_at", api_json_new_string_or_null(image->updated_at));
    return root;
}

ApiImage *api_image_from_json(json_object *value, GError **error)
{
    const ApiJsonFlags req = API_JSON_REQUIRED;
    const ApiJsonFlags req_null = API_JSON_REQUIRED | API_JSON_NULLABLE;
    g_autoptr(ApiImage) image = api_image_new();
    g_autofree char *kind = NULL;
    g_autofree char *format = NULL;
    g_autofree char *state = NULL;
    int kind_value = 0;
    int format_value = 0;
    int state_value = 0;

    if (!api_json_check_object(value, "", image_keys, error) ||
        !api_json_get_string(value, "", "id", req, &image->id, error) ||
        !api_json_get_string(value, "", "name", req, &image->name, error) ||
        !api_json_get_string(value, "", "tenant", req, &image->tenant, error) ||
        !api_json_get_string(value, "", "kind", req, &kind, error) ||
        !api_json_get_string(value, "", "format", req, &format, error) ||
        !api_json_get_string(value, "", "state", req, &state, error) ||
        !api_json_get_int(value, "", "size", req_null, 0, API_IMAGE_SIZE_MAX, &image->size,
                          error) ||
        !api_json_get_string(value, "", "sha256", req_null, &image->sha256, error) ||
        !api_json_get_string(value, "", "error", req_null, &image->error, error) ||
        !api_json_get_string(value, "", "created_at", req, &image->created_at, error) ||
        !api_json_get_string(value, "", "updated_at", req, &image->updated_at, error))
        return NULL;

    if (!api_json_check_uuid("id", image->id, error) ||
        !api_json_check_name("name", image->name, error) ||
        !api_json_check_name("tenant", image->tenant, error) ||
        !api_enum_check("kind", kind_names, kind, &kind_value, error) ||
        !api_enum_check("format", format_names, format, &format_value, error) ||
        !check_kind_format((ApiImageKind)kind_value, (ApiImageFormat)format_value, error) ||
        !api_enum_check("state", state_names, state, &state_value, error) ||
        (image->sha256 && !check_sha256(image->sha256, error)) ||
        !api_json_check_time("created_at", image->created_at, error) ||
        !api_json_check_time("updated_at", image->updated_at, error))
        return NULL;
    image->kind = (ApiImageKind)kind_value;
    image->format = (ApiImageFormat)format_value;
    image->state = (ApiImageState)state_value;
    return g_steal_pointer(&image);
}

json_object *api_image_list_to_json(const GPtrArray *images, const char *next)
{
    json_object *list = json_object_new_array();
    for (guint i = 0; images && i < images->len; i++)
        json_object_array_add(list, api_image_to_json(g_ptr_array_index(images, i)));
    return api_json_page_new("images", list, next);
}

static gpointer image_item(json_object *item, GError **error)
{
    return api_image_from_json(item, error);
}

GPtrArray *api_image_list_from_json(json_object *value, char **next, GError **error)
{
    return api_json_page_decode(value, "images", image_item, (GDestroyNotify)api_image_free, next,
                                error);
}
