#include "api/operation.h"

#include <string.h>

#include "api/enum.h"
#include "api/error.h"
#include "api/json.h"

static const char *const operation_keys[] = {
    "id", "kind", "target", "status", "progress", "error", "created_at", "updated_at", NULL,
};
static const char *const progress_keys[] = {"percent", "stage", "bytes_done", "bytes_total", NULL};
static const ApiEnumName status_names[] = {
    {API_OP_PENDING, "pending"}, {API_OP_RUNNING, "running"},     {API_OP_SUCCEEDED, "succeeded"},
    {API_OP_FAILED, "failed"},   {API_OP_CANCELLED, "cancelled"}, {0, NULL},
};

const char *api_operation_status_to_string(ApiOperationStatus status)
{
    return api_enum_to_string(status_names, status);
}

gboolean api_operation_status_from_string(const char *text, ApiOperationStatus *status)
{
    g_return_val_if_fail(status != NULL, FALSE);
    int value = 0;
    if (!api_enum_from_string(status_names, text, &value))
        return FALSE;
    *status = (ApiOperationStatus)value;
    return TRUE;
}

gboolean api_operation_status_is_final(ApiOperationStatus status)
{
    return status == API_OP_SUCCEEDED || status == API_OP_FAILED || status == API_OP_CANCELLED;
}

gboolean api_operation_statuses_from_string(const char *text, guint *statuses, GError **error)
{
    g_return_val_if_fail(text != NULL && statuses != NULL, FALSE);
    /* g_strsplit makes nothing of "": an empty filter is an empty item. */
    g_auto(GStrv) items = g_strsplit(text, ",", -1);
    const char *const empty[] = {"", NULL};
    guint wanted = 0;

    for (const char *const *item = items[0] != NULL ? (const char *const *)items : empty;
         *item != NULL; item++) {
        ApiOperationStatus status = API_OP_PENDING;
        if (!api_operation_status_from_string(*item, &status)) {
            api_json_set_invalid(error, "status",
                                 "'%s' is not one of pending, running, succeeded, failed, "
                                 "cancelled (several may be given, separated by commas)",
                                 *item);
            return FALSE;
        }
        wanted |= 1u << status;
    }
    *statuses = wanted;
    return TRUE;
}

gboolean api_operation_kind_check(const char *kind, GError **error)
{
    gsize len = kind != NULL ? strlen(kind) : 0;
    gboolean ok = len > 0 && len <= API_OPERATION_KIND_MAX && g_ascii_islower(kind[0]);

    for (gsize i = 1; ok && i < len; i++)
        ok = g_ascii_islower(kind[i]) || g_ascii_isdigit(kind[i]) || kind[i] == '.' ||
             kind[i] == '-';
    if (!ok)
        api_json_set_invalid(error, "kind",
                             "must be 1 to %d of a-z, 0-9, '.' and '-', starting with a letter, "
                             "like stack.create",
                             API_OPERATION_KIND_MAX);
    return ok;
}

static gboolean check_not_empty(const char *path, const char *value, GError **error)
{
    if (!value || !*value) {
        api_json_set_invalid(error, path, "must not be empty");
        return FALSE;
    }
    return TRUE;
}

/* ---- lifetime ------------------------------------------------------------------- */

ApiOperation *api_operation_new(void)
{
    ApiOperation *operation = g_new0(ApiOperation, 1);
    operation->status = API_OP_PENDING;
    return operation;
}

ApiOperation *api_operation_copy(const ApiOperation *operation)
{
    if (!operation)
        return NULL;
    ApiOperation *copy = g_new0(ApiOperation, 1);
    copy->id = g_strdup(operation->id);
    copy->kind = g_strdup(operation->kind);
    copy->target = g_strdup(operation->target);
    copy->tenant = g_strdup(operation->tenant);
    copy->status = operation->status;
    copy->progress.percent = operation->progress.percent;
    copy->progress.stage = g_strdup(operation->progress.stage);
    copy->progress.bytes_done = operation->progress.bytes_done;
    copy->progress.bytes_total = operation->progress.bytes_total;
    copy->error = g_strdup(operation->error);
    copy->created_at = g_strdup(operation->created_at);
    copy->updated_at = g_strdup(operation->updated_at);
    return copy;
}

void api_operation_free(ApiOperation *operation)
{
    if (!operation)
        return;
    g_free(operation->id);
    g_free(operation->kind);
    g_free(operation->target);
    g_free(operation->tenant);
    g_free(operation->progress.stage);
    g_free(operation->error);
    g_free(operation->created_at);
    g_free(operation->updated_at);
    g_free(operation);
}

/* ---- JSON ------------------------------------------------------------------------- */

json_object *api_operation_to_json(const ApiOperation *operation)
{
    g_return_val_if_fail(operation != NULL, NULL);

    const ApiProgress *p = &operation->progress;
    json_object *progress = json_object_new_object();
    json_object_object_add(progress, "percent", json_object_new_int(p->percent));
    json_object_object_add(progress, "stage", api_json_new_string_or_null(p->stage));
    json_object_object_add(progress, "bytes_done", json_object_new_int64(p->bytes_done));
    json_object_object_add(progress, "bytes_total", json_object_new_int64(p->bytes_total));

    /* tenant stays off the wire: a caller only ever sees its own operations. */
    json_object *root = json_object_new_object();
    json_object_object_add(root, "id", api_json_new_string_or_null(operation->id));
    json_object_object_add(root, "kind", api_json_new_string_or_null(operation->kind));
    json_object_object_add(root, "target", api_json_new_string_or_null(operation->target));
    json_object_object_add(
        root, "status", json_object_new_string(api_operation_status_to_string(operation->status)));
    json_object_object_add(root, "progress", progress);
    json_object_object_add(root, "error", api_json_new_string_or_null(operation->error));
    json_object_object_add(root, "created_at", api_json_new_string_or_null(operation->created_at));
    json_object_object_add(root, "updated_at", api_json_new_string_or_null(operation->updated_at));
    return root;
}

ApiOperation *api_operation_from_json(json_object *value, GError **error)
{
    const ApiJsonFlags req = API_JSON_REQUIRED;
    const ApiJsonFlags req_null = API_JSON_REQUIRED | API_JSON_NULLABLE;
    g_autoptr(ApiOperation) operation = api_operation_new();
    g_autofree char *status = NULL;
    json_object *progress = NULL;
    gint64 percent = 0;

    if (!api_json_check_object(value, "", operation_keys, error) ||
        !api_json_get_string(value, "", "id", req, &operation->id, error) ||
        !api_json_get_string(value, "", "kind", req, &operation->kind, error) ||
        !api_json_get_string(value, "", "target", req, &operation->target, error) ||
        !api_json_get_string(value, "", "status", req, &status, error) ||
        !api_json_get_object(value, "", "progress", req, progress_keys, &progress, error) ||
        !api_json_get_int(progress, "progress", "percent", req, 0, 100, &percent, error) ||
        !api_json_get_string(progress, "progress", "stage", req_null, &operation->progress.stage,
                             error) ||
        !api_json_get_int(progress, "progress", "bytes_done", req, 0, G_MAXINT64,
                          &operation->progress.bytes_done, error) ||
        !api_json_get_int(progress, "progress", "bytes_total", req, 0, G_MAXINT64,
                          &operation->progress.bytes_total, error) ||
        !api_json_get_string(value, "", "error", req_null, &operation->error, error) ||
        !api_json_get_string(value, "", "created_at", req, &operation->created_at, error) ||
        !api_json_get_string(value, "", "updated_at", req, &operation->updated_at, error))
        return NULL;
    operation->progress.percent = (int)percent;

    int status_value = 0;
    if (!api_enum_check("status", status_names, status, &status_value, error))
        return NULL;
    operation->status = (ApiOperationStatus)status_value;
    if (!api_json_check_uuid("id", operation->id, error) ||
        !check_not_empty("kind", operation->kind, error) ||
        !check_not_empty("target", operation->target, error) ||
        !api_json_check_time("created_at", operation->created_at, error) ||
        !api_json_check_time("updated_at", operation->updated_at, error))
        return NULL;
    return g_steal_pointer(&operation);
}

json_object *api_operation_list_to_json(const GPtrArray *operations, const char *next)
{
    json_object *list = json_object_new_array();
    for (guint i = 0; operations && i < operations->len; i++)
        json_object_array_add(list, api_operation_to_json(g_ptr_array_index(operations, i)));
    return api_json_page_new("operations", list, next);
}

static gpointer operation_item(json_object *item, GError **error)
{
    return api_operation_from_json(item, error);
}

GPtrArray *api_operation_list_from_json(json_object *body, char **next, GError **error)
{
    return api_json_page_decode(body, "operations", operation_item,
                                (GDestroyNotify)api_operation_free, next, error);
}
