/* Stacks (a tenant's L1 with its spec) on the wire, their states and the
 * actions each state allows. */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#include "api/spec.h"

typedef enum {
    API_STACK_STATE_PROVISIONING,
    API_STACK_STATE_RUNNING,
    API_STACK_STATE_STOPPED,
    API_STACK_STATE_PAUSED,
    API_STACK_STATE_MIGRATING,
    API_STACK_STATE_ERROR,
    API_STACK_STATE_DELETING,
} ApiStackState;

/* "unknown" outside the enum; from_string takes only the exact wire names
 * and leaves *state alone otherwise. */
const char *api_stack_state_to_string(ApiStackState state);
gboolean api_stack_state_from_string(const char *text, ApiStackState *state);
/* api_stack_state_from_string for a decoder: otherwise API_ERROR_INVALID
 * "<path>: must be one of provisioning, running, ...". */
gboolean api_stack_state_check(const char *path, const char *text, ApiStackState *state,
                               GError **error);

/* Backends a stack may run under (hvcore's names). */
#define API_STACK_BACKENDS "kvm", "tcg", "test"

typedef struct {
    ApiStackSpec *spec; /* never NULL; its name is the stack's name */
    char *id;           /* UUID */
    char *tenant;       /* owner's name */
    ApiStackState state;
    char *host;    /* the host it runs on; NULL before it is placed */
    char *backend; /* kvm, tcg, test; NULL before it is placed */
    char *created_at;
    char *updated_at;
    char *error;       /* NULL unless the stack is in error */
    char *domain_name; /* the libvirt domain's name.  Not on the wire. */
} ApiStack;

/* Takes @spec (NULL: an empty one); state provisioning. */
ApiStack *api_stack_new(ApiStackSpec *spec);
ApiStack *api_stack_copy(const ApiStack *stack);
void api_stack_free(ApiStack *stack);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiStack, api_stack_free)

/* The spec's members as api_stack_spec_to_json writes them, plus "id",
 * "tenant", "state", "host", "backend", "error", "created_at", "updated_at"
 * (host, backend and error may be null). */
json_object *api_stack_to_json(const ApiStack *stack);
/* Strict: the spec's rules (messages name the spec's own fields, "vcpus",
 * "boot.kernel") plus the record's. */
ApiStack *api_stack_from_json(json_object *value, GError **error);

/* A page of GET /v1/stacks: {"stacks":[...],"next":CURSOR|null}; @stacks of
 * ApiStack, @next NULL on the last page. */
json_object *api_stack_list_to_json(const GPtrArray *stacks, const char *next);
/* Errors name the item: "stacks[2].vcpus: ...".  *@next is NULL on the last page. */
GPtrArray *api_stack_list_from_json(json_object *value, char **next, GError **error);

/* ---- actions -------------------------------------------------------------------- */

/* POST /v1/stacks/{name}/actions */
#define API_STACK_ACTIONS "start", "stop", "force-stop", "reboot", "pause", "resume"

/* {"action": "..."}: returns the action, one of API_STACK_ACTIONS. */
char *api_stack_action_from_json(json_object *value, GError **error);

/* POST /v1/stacks/{name}/migrate {"peer": NAME, "live": true}: returns the
 * peer's name.  "live" defaults to true; false is refused, since only a live
 * migration keeps the L1 and its L2 running. */
char *api_stack_migrate_from_json(json_object *value, GError **error);

/* Whether a stack in @state may take @action:
 *   start       stopped, error
 *   stop        running, paused
 *   force-stop  running, paused, provisioning, error
 *   reboot      running        pause  running        resume  paused
 * and nothing while migrating or deleting.  An unknown action is
 * API_ERROR_INVALID "action: must be one of ...".  A known action the state
 * forbids is also API_ERROR_INVALID, "cannot pause a stack that is stopped":
 * api/error.h has no conflict code, so the caller, which answers 409 for it,
 * tells the two apart by having decoded the action first. */
gboolean api_stack_action_allowed(ApiStackState state, const char *action, GError **error);
