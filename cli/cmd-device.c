/* device list: /v1/devices (the operator: every device; a tenant: those its
 * stacks hold). */
#include "cli/commands.h"

void cmd_device_usage(FILE *out)
{
    fputs("usage: turtlectl device list [--class NAME]\n"
          "\n"
          "  list  the devices of every device class (or of --class NAME only) and the\n"
          "        stack that holds each (TENANT/STACK, or - when it is free); a tenant\n"
          "        sees only the devices its stacks hold\n"
          "\n"
          "Options:\n"
          "  --class NAME  one device class only\n"
          "\n"
          "Device classes: turtlectl device-class --help.  Global options: turtlectl --help.\n",
          out);
}

/* A device as the API answers it. */
typedef struct {
    char *id;
    char *class_name;
    char *model;
    char *address;
    char *stack_name;
    char *stack_tenant;
} Device;

static void device_free(Device *device)
{
    if (device == NULL)
        return;
    g_free(device->id);
    g_free(device->class_name);
    g_free(device->model);
    g_free(device->address);
    g_free(device->stack_name);
    g_free(device->stack_tenant);
    g_free(device);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Device, device_free)

static Device *device_from_json(json_object *value, const char *path, GError **error)
{
    static const char *const stack_keys[] = {"id", "name", "tenant", NULL};
    const ApiJsonFlags req = API_JSON_REQUIRED;
    const ApiJsonFlags nullable = API_JSON_OPTIONAL | API_JSON_NULLABLE;
    g_autoptr(Device) device = g_new0(Device, 1);
    json_object *stack = NULL;

    if (!json_object_is_type(value, json_type_object)) {
        api_json_set_invalid(error, path, "must be an object");
        return NULL;
    }
    if (!api_json_get_string(value, path, "id", req, &device->id, error) ||
        !api_json_get_string(value, path, "class", req, &device->class_name, error) ||
        !api_json_get_string(value, path, "model", req, &device->model, error) ||
        !api_json_get_string(value, path, "address", nullable, &device->address, error) ||
        !api_json_get_object(value, path, "stack", nullable, stack_keys, &stack, error))
        return NULL;
    if (stack != NULL) {
        g_autofree char *where = api_json_path_member(path, "stack");
        if (!api_json_get_string(stack, where, "name", req, &device->stack_name, error) ||
            !api_json_get_string(stack, where, "tenant", req, &device->stack_tenant, error))
            return NULL;
    }
    return g_steal_pointer(&device);
}

static int device_list(Ctl *ctl, int argc, char **argv)
{
    static const char *const headers[] = {"ID", "CLASS", "MODEL", "ADDRESS", "STACK", NULL};
    const char *class_name = NULL;
    const ArgSpec specs[] = {
        {"--class", ARG_STRING, 0, 0, &class_name, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(json_object) body = NULL;
    g_autoptr(GError) error = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "list", argc, argv, specs, NULL, NULL, &status))
        return status;
    g_autoptr(GString) path = g_string_new("/v1/devices");
    if (class_name != NULL) {
        g_string_append(path, "?class=");
        g_string_append_uri_escaped(path, class_name, NULL, FALSE);
    }
    if (!cmd_call(ctl, "GET", path->str, NULL, &body, &status))
        return status;
    json_object *list = ctl_member(body, "devices", &error);
    if (list == NULL)
        return ctl_fail(ctl, error);
    if (!json_object_is_type(list, json_type_array)) {
        g_set_error_literal(&error, CLIENT_ERROR, CLIENT_ERROR_PROTOCOL,
                            "unexpected answer from turtled: devices: must be an array");
        return ctl_fail(ctl, error);
    }
    g_autoptr(OutputTable) table = output_table_new(headers, 0);
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        g_autofree char *where = g_strdup_printf("devices[%zu]", i);
        g_autoptr(Device) device =
            device_from_json(json_object_array_get_idx(list, i), where, &error);
        if (device == NULL)
            return ctl_fail_answer(ctl, NULL, error);
        g_autofree char *holder =
            device->stack_name != NULL
                ? g_strdup_printf("%s/%s", device->stack_tenant, device->stack_name)
                : NULL;
        output_table_add(table, device->id, device->class_name, device->model, device->address,
                         holder);
    }
    if (!ctl_emit(ctl, body))
        output_table_print(table, stdout);
    return CTL_EXIT_OK;
}

int cmd_device(Ctl *ctl, int argc, char **argv)
{
    static const CmdVerb verbs[] = {
        {"list", device_list},
        {NULL, NULL},
    };
    return cmd_dispatch(ctl, "device", verbs, argc, argv);
}
