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
/* The status filter of GET /v1/operations?status=: one status, or several
 * separated by commas ("pending,running": what runs now).  *@statuses gets
 * bit 1 << status of each; INVALID naming "status" for an empty item or
 * anything that is no status. */
gboolean api_operation_statuses_from_string(const char *text, guint *statuses, GError **error);

/* The spelling of an operation kind ("stack.create", "stack.force-stop"):
 * 1 to API_OPERATION_KIND_MAX of a-z, 0-9, '.' and '-', starting with a
 * letter.  INVALID naming "kind" otherwise.  Whether any operation has that
 * kind is not its business: a kind nothing has filters out everything. */
#define API_OPERATION_KIND_MAX 64
gboolean api_operation_kind_check(const char *kind, GError **error);

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

/* A page of GET /v1/operations: {"operations":[...],"next":CURSOR|null};
 * @operations of ApiOperation, @next NULL on the last page. */
json_object *api_operation_list_to_json(const GPtrArray *operations, const char *next);
/* Errors name the item: "operations[2].status: ...".  *@next is NULL on the
 * last page. */
GPtrArray *api_operation_list_from_json(json_object *body, char **next, GError **error);
