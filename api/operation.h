/* Operations (long-running work) on the wire. */
#pragma once

#include <glib.h>
#include <json-c/json.h>

typedef enum {
    API_OP_PENDING,
    API_OP_RUNNING,
    API_OP_SUCCEEDED,
    API_OP_FAILED,
    API_OP_CANCELLED,
} ApiOperationStatus;

const char *api_operation_status_to_string(ApiOperationStatus status);
gboolean api_operation_status_from_string(const char *text, ApiOperationStatus *status);
/* succeeded, failed and cancelled are final. */
gboolean api_operation_status_is_final(ApiOperationStatus status);

typedef struct {
    int percent; /* 0..100 */
    char *stage; /* short words: "defining domain", "copying image" */
    gint64 bytes_done;
    gint64 bytes_total;
} ApiProgress;

typedef struct {
    char *id;     /* UUID */
    char *kind;   /* "stack.create", "stack.delete", "stack.migrate", ... */
    char *target; /* what it works on, e.g. "stacks/web" */
    char *tenant; /* owner; NULL for operator work.  Not on the wire. */
    ApiOperationStatus status;
    ApiProgress progress;
    char *error; /* NULL unless failed */
    char *created_at;
    char *updated_at;
} ApiOperation;

ApiOperation *api_operation_new(void);
ApiOperation *api_operation_copy(const ApiOperation *operation);
void api_operation_free(ApiOperation *operation);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiOperation, api_operation_free)

/* {"id","kind","target","status","progress":{"percent","stage","bytes_done","bytes_total"},
 *  "error","created_at","updated_at"} */
json_object *api_operation_to_json(const ApiOperation *operation);
ApiOperation *api_operation_from_json(json_object *value, GError **error);
