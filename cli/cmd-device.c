/* device list: /v1/devices (the operator: every device; a tenant: those its
 * stacks hold). */
#include "cli/commands.h"

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

static gpointer device_item(json_object *item, GError **error)
{
    return device_from_json(item, "", error);
}

static GPtrArray *device_page(json_object *body, char **next, GError **error)
{
    return api_json_page_decode(body, "devices", device_item, (GDestroyNotify)device_free, next,
                                error);
}

static void device_row(OutputTable *table, gpointer item)
{
    const Device *device = item;
    g_autofree char *holder =
        device->stack_name != NULL
            ? g_strdup_printf("%s/%s", device->stack_tenant, device->stack_name)
            : NULL;
    output_table_add(table, device->id, device->class_name, device->model, device->address, holder);
}

static int device_list(Ctl *ctl, int argc, char **argv)
{
    static const char *const headers[] = {"ID", "CLASS", "MODEL", "ADDRESS", "STACK", NULL};
    static const CmdList list = {.path = "/v1/devices",
                                 .member = "devices",
                                 .decode = device_page,
                                 .headers = headers,
                                 .row = device_row,
                                 .filters = {"class"}};
    return cmd_list(ctl, &list, argc, argv);
}

static const CmdVerb device_verbs[] = {
    {"list", device_list, "[--class CLASS] [--limit N [--after CURSOR] [--all]]",
     "list the devices and the stacks that hold them",
     "Lists the devices of every device class, or of --class CLASS only: id,\n"
     "class, model, PCI address (vfio) and the stack that holds it as\n"
     "TENANT/STACK (- when it is free).  Without --limit every page is fetched\n"
     "and printed as one list; with --limit N one page of at most N devices, and\n"
     "in a table the command for the next page on stderr (json and yaml hold it\n"
     "as \"next\").\n"
     "\n"
     "Options:\n"
     "  --class CLASS   the devices of this device class only\n"
     "  --limit N       at most N devices per page (1-1000)\n"
     "  --after CURSOR  the page after CURSOR (the \"next\" of the previous page)\n"
     "  --all           with --limit: every page, N devices at a time\n",
     NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

const CmdNoun cmd_device_noun = {
    "device",
    "the devices of the device classes and who holds them",
    device_verbs,
    "The operator sees every device; a tenant sees only the devices its stacks\n"
    "hold.  Device classes, the pools the devices come from: turtlectl help\n"
    "device-class.\n",
};
