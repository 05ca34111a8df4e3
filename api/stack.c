#include "api/stack.h"

#include <string.h>

#include "api/enum.h"
#include "api/error.h"
#include "api/json.h"

/* The record's own members; everything else in a stack belongs to the spec,
 * whose decoder then refuses what it does not know. */
static const char *const record_keys[] = {
    "id", "tenant", "state", "host", "backend", "error", "created_at", "updated_at", NULL,
};
static const char *const list_keys[] = {"stacks", "next", NULL};
static const char *const action_keys[] = {"action", NULL};
static const char *const migrate_keys[] = {"peer", "live", NULL};
static const char *const backend_names[] = {API_STACK_BACKENDS, NULL};
static const char *const action_names[] = {API_STACK_ACTIONS, NULL};
static const ApiEnumName state_names[] = {
    {API_STACK_STATE_PROVISIONING, "provisioning"}, {API_STACK_STATE_RUNNING, "running"},
    {API_STACK_STATE_STOPPED, "stopped"},           {API_STACK_STATE_PAUSED, "paused"},
    {API_STACK_STATE_MIGRATING, "migrating"},       {API_STACK_STATE_ERROR, "error"},
    {API_STACK_STATE_DELETING, "deleting"},         {0, NULL},
};

/* ---- states ----------------------------------------------------------------------- */

const char *api_stack_state_to_string(ApiStackState state)
{
    return api_enum_to_string(state_names, state);
}

gboolean api_stack_state_from_string(const char *text, ApiStackState *state)
{
    g_return_val_if_fail(state != NULL, FALSE);
    int value = 0;
    if (!api_enum_from_string(state_names, text, &value))
        return FALSE;
    *state = (ApiStackState)value;
    return TRUE;
}

gboolean api_stack_state_check(const char *path, const char *text, ApiStackState *state,
                               GError **error)
{
    g_return_val_if_fail(state != NULL, FALSE);
    int value = 0;
    if (!api_enum_check(path, state_names, text, &value, error))
        return FALSE;
    *state = (ApiStackState)value;
    return TRUE;
}

/* ---- lifetime --------------------------------------------------------------------- */

ApiStack *api_stack_new(ApiStackSpec *spec)
{
    ApiStack *stack = g_new0(ApiStack, 1);
    stack->spec = spec ? spec : api_stack_spec_new();
    stack->state = API_STACK_STATE_PROVISIONING;
    return stack;
}

ApiStack *api_stack_copy(const ApiStack *stack)
{
    if (!stack)
        return NULL;
    ApiStack *copy = api_stack_new(stack->spec ? api_stack_spec_copy(stack->spec) : NULL);
    copy->id = g_strdup(stack->id);
    copy->tenant = g_strdup(stack->tenant);
    copy->state = stack->state;
    copy->host = g_strdup(stack->host);
    copy->backend = g_strdup(stack->backend);
    copy->created_at = g_strdup(stack->created_at);
    copy->updated_at = g_strdup(stack->updated_at);
    copy->error = g_strdup(stack->error);
    copy->domain_name = g_strdup(stack->domain_name);
    return copy;
}

void api_stack_free(ApiStack *stack)
{
    if (!stack)
        return;
    api_stack_spec_free(stack->spec);
    g_free(stack->id);
    g_free(stack->tenant);
    g_free(stack->host);
    g_free(stack->backend);
    g_free(stack->created_at);
    g_free(stack->updated_at);
    g_free(stack->error);
    g_free(stack->domain_name);
    g_free(stack);
}

/* ---- JSON ------------------------------------------------------------------------- */

json_object *api_stack_to_json(const ApiStack *stack)
{
    g_return_val_if_fail(stack != NULL && stack->spec != NULL, NULL);

    json_object *root = json_object_new_object();
    json_object_object_add(root, "id", api_json_new_string_or_null(stack->id));
    g_autoptr(json_object) spec = api_stack_spec_to_public_json(stack->spec);
    json_object_object_foreach(spec, key, member)
        json_object_object_add(root, key, json_object_get(member));
    json_object_object_add(root, "tenant", api_json_new_string_or_null(stack->tenant));
    json_object_object_add(root, "state",
                           json_object_new_string(api_stack_state_to_string(stack->state)));
    json_object_object_add(root, "host", api_json_new_string_or_null(stack->host));
    json_object_object_add(root, "backend", api_json_new_string_or_null(stack->backend));
    json_object_object_add(root, "error", api_json_new_string_or_null(stack->error));
    json_object_object_add(root, "created_at", api_json_new_string_or_null(stack->created_at));
    json_object_object_add(root, "updated_at", api_json_new_string_or_null(stack->updated_at));
    return root;
}

static gboolean is_record_key(const char *key)
{
    for (guint i = 0; record_keys[i]; i++) {
        if (strcmp(key, record_keys[i]) == 0)
            return TRUE;
    }
    return FALSE;
}

static gboolean check_not_empty(const char *path, const char *value, GError **error)
{
    if (value && !*value) {
        api_json_set_invalid(error, path, "must not be empty");
        return FALSE;
    }
    return TRUE;
}

ApiStack *api_stack_from_json(json_object *value, GError **error)
{
    const ApiJsonFlags req = API_JSON_REQUIRED;
    const ApiJsonFlags req_null = API_JSON_REQUIRED | API_JSON_NULLABLE;
    g_autofree char *state = NULL;

    if (!json_object_is_type(value, json_type_object)) {
        api_json_set_invalid(error, "", "must be an object");
        return NULL;
    }
    /* The spec first: it owns every member but the record's. */
    g_autoptr(json_object) spec_part = json_object_new_object();
    json_object_object_foreach(value, key, member)
    {
        if (!is_record_key(key))
            json_object_object_add(spec_part, key, json_object_get(member));
    }
    ApiStackSpec *spec = api_stack_spec_from_record_json(spec_part, error);
    if (!spec)
        return NULL;
    g_autoptr(ApiStack) stack = api_stack_new(spec);

    if (!api_json_get_string(value, "", "id", req, &stack->id, error) ||
        !api_json_get_string(value, "", "tenant", req, &stack->tenant, error) ||
        !api_json_get_string(value, "", "state", req, &state, error) ||
        !api_json_get_string(value, "", "host", req_null, &stack->host, error) ||
        !api_json_get_string(value, "", "backend", req_null, &stack->backend, error) ||
        !api_json_get_string(value, "", "error", req_null, &stack->error, error) ||
        !api_json_get_string(value, "", "created_at", req, &stack->created_at, error) ||
        !api_json_get_string(value, "", "updated_at", req, &stack->updated_at, error))
        return NULL;

    if (!api_json_check_uuid("id", stack->id, error) ||
        !api_json_check_name("tenant", stack->tenant, error) ||
        !api_stack_state_check("state", state, &stack->state, error) ||
        !check_not_empty("host", stack->host, error) ||
        (stack->backend &&
         !api_json_check_choice("backend", stack->backend, backend_names, error)) ||
        !api_json_check_time("created_at", stack->created_at, error) ||
        !api_json_check_time("updated_at", stack->updated_at, error))
        return NULL;
    return g_steal_pointer(&stack);
}

json_object *api_stack_list_to_json(const GPtrArray *stacks, const char *next)
{
    json_object *list = json_object_new_array();
    for (guint i = 0; stacks && i < stacks->len; i++)
        json_object_array_add(list, api_stack_to_json(g_ptr_array_index(stacks, i)));
    json_object *root = json_object_new_object();
    json_object_object_add(root, "stacks", list);
    json_object_object_add(root, "next", api_json_new_string_or_null(next));
    return root;
}

GPtrArray *api_stack_list_from_json(json_object *value, char **next, GError **error)
{
    g_return_val_if_fail(next != NULL, NULL);
    json_object *list = NULL;
    g_autofree char *cursor = NULL;

    if (!api_json_check_object(value, "", list_keys, error) ||
        !api_json_get_array(value, "", "stacks", API_JSON_REQUIRED, &list, error) ||
        !api_json_get_string(value, "", "next", API_JSON_REQUIRED | API_JSON_NULLABLE, &cursor,
                             error) ||
        !check_not_empty("next", cursor, error))
        return NULL;

    g_autoptr(GPtrArray) stacks = g_ptr_array_new_with_free_func((GDestroyNotify)api_stack_free);
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *item = json_object_array_get_idx(list, i);
        g_autofree char *path = api_json_path_index("stacks", i);
        /* The item decoder names fields from its own top: say where it sits. */
        if (!json_object_is_type(item, json_type_object)) {
            api_json_set_invalid(error, path, "must be an object");
            return NULL;
        }
        ApiStack *stack = api_stack_from_json(item, error);
        if (!stack) {
            g_prefix_error(error, "%s.", path);
            return NULL;
        }
        g_ptr_array_add(stacks, stack);
    }
    *next = g_steal_pointer(&cursor);
    return g_steal_pointer(&stacks);
}

/* ---- actions ---------------------------------------------------------------------- */

char *api_stack_action_from_json(json_object *value, GError **error)
{
    g_autofree char *action = NULL;

    if (!api_json_check_object(value, "", action_keys, error) ||
        !api_json_get_string(value, "", "action", API_JSON_REQUIRED, &action, error) ||
        !api_json_check_choice("action", action, action_names, error))
        return NULL;
    return g_steal_pointer(&action);
}

char *api_stack_migrate_from_json(json_object *value, GError **error)
{
    g_autofree char *peer = NULL;
    gboolean live = TRUE;

    if (!api_json_check_object(value, "", migrate_keys, error) ||
        !api_json_get_string(value, "", "peer", API_JSON_REQUIRED, &peer, error) ||
        !api_json_check_name("peer", peer, error) ||
        !api_json_get_bool(value, "", "live", API_JSON_OPTIONAL, &live, error))
        return NULL;
    if (!live) {
        g_set_error(error, API_ERROR, API_ERROR_INVALID,
                    "live: only live migration is supported (it keeps the L1 and its L2 running)");
        return NULL;
    }
    return g_steal_pointer(&peer);
}

#define STATE_BIT(s) (1u << (s))

/* Which states allow each action, in the order of action_names. */
static const guint action_states[] = {
    /* start */ STATE_BIT(API_STACK_STATE_STOPPED) | STATE_BIT(API_STACK_STATE_ERROR),
    /* stop */ STATE_BIT(API_STACK_STATE_RUNNING) | STATE_BIT(API_STACK_STATE_PAUSED),
    /* force-stop: also what gets a stuck provisioning or broken stack down */
    STATE_BIT(API_STACK_STATE_RUNNING) | STATE_BIT(API_STACK_STATE_PAUSED) |
        STATE_BIT(API_STACK_STATE_PROVISIONING) | STATE_BIT(API_STACK_STATE_ERROR),
    /* reboot */ STATE_BIT(API_STACK_STATE_RUNNING),
    /* pause */ STATE_BIT(API_STACK_STATE_RUNNING),
    /* resume */ STATE_BIT(API_STACK_STATE_PAUSED),
};
G_STATIC_ASSERT(G_N_ELEMENTS(action_states) == G_N_ELEMENTS(action_names) - 1);

gboolean api_stack_action_allowed(ApiStackState state, const char *action, GError **error)
{
    if (!api_json_check_choice("action", action, action_names, error))
        return FALSE;
    for (guint i = 0; action_names[i]; i++) {
        if (strcmp(action, action_names[i]) != 0)
            continue;
        /* Only known states have a bit in action_states; the guard keeps the shift defined. */
        if ((guint)state < 32 && (action_states[i] & STATE_BIT(state)))
            return TRUE;
        break;
    }
    g_set_error(error, API_ERROR, API_ERROR_INVALID, "cannot %s a stack that is %s", action,
                api_stack_state_to_string(state));
    return FALSE;
}
