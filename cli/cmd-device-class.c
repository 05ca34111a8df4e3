/* device-class create | list | show | set | delete: /v1/device-classes
 * (operator writes; tenants may read). */
#include "cli/commands.h"

#include <string.h>

/* Bounds of flags the API bounds too; the API has the last word. */
#define CLASS_CAPACITY_MAX  64
#define CLASS_ADDRESSES_MAX 64

/* ---- the answer ---------------------------------------------------------------- */

/* A class as the API answers it (the fields turtlectl prints). */
typedef struct {
    char *name;
    char *kind;
    char *model;
    gint64 capacity;
    gint64 in_use;
    gint64 available;
    GPtrArray *addresses; /* of char * */
    gboolean force;
    char *description;
    char *created_at;
    char *updated_at;
} DeviceClass;

static void device_class_free(DeviceClass *dc)
{
    if (dc == NULL)
        return;
    g_free(dc->name);
    g_free(dc->kind);
    g_free(dc->model);
    g_ptr_array_unref(dc->addresses);
    g_free(dc->description);
    g_free(dc->created_at);
    g_free(dc->updated_at);
    g_free(dc);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DeviceClass, device_class_free)

static DeviceClass *device_class_from_json(json_object *value, const char *path, GError **error)
{
    const ApiJsonFlags req = API_JSON_REQUIRED;
    const ApiJsonFlags opt = API_JSON_OPTIONAL;
    g_autoptr(DeviceClass) dc = g_new0(DeviceClass, 1);
    json_object *addresses = NULL;

    dc->addresses = g_ptr_array_new_with_free_func(g_free);
    if (!json_object_is_type(value, json_type_object)) {
        api_json_set_invalid(error, path, "must be an object");
        return NULL;
    }
    if (!api_json_get_string(value, path, "name", req, &dc->name, error) ||
        !api_json_get_string(value, path, "kind", req, &dc->kind, error) ||
        !api_json_get_string(value, path, "model", req, &dc->model, error) ||
        !api_json_get_int(value, path, "capacity", req, 0, G_MAXINT64, &dc->capacity, error) ||
        !api_json_get_int(value, path, "in_use", req, 0, G_MAXINT64, &dc->in_use, error) ||
        !api_json_get_int(value, path, "available", req, 0, G_MAXINT64, &dc->available, error) ||
        !api_json_get_array(value, path, "addresses", opt | API_JSON_NULLABLE, &addresses, error) ||
        !api_json_get_bool(value, path, "force", opt, &dc->force, error) ||
        !api_json_get_string(value, path, "description", opt | API_JSON_NULLABLE, &dc->description,
                             error) ||
        !api_json_get_string(value, path, "created_at", opt | API_JSON_NULLABLE, &dc->created_at,
                             error) ||
        !api_json_get_string(value, path, "updated_at", opt | API_JSON_NULLABLE, &dc->updated_at,
                             error))
        return NULL;
    for (size_t i = 0; addresses != NULL && i < json_object_array_length(addresses); i++) {
        g_autofree char *where = api_json_path_member(path, "addresses");
        g_autofree char *item_path = api_json_path_index(where, i);
        char *address = NULL;
        if (!api_json_value_string(json_object_array_get_idx(addresses, i), item_path, req,
                                   &address, error))
            return NULL;
        g_ptr_array_add(dc->addresses, address);
    }
    return g_steal_pointer(&dc);
}

static char *count_text(gint64 value)
{
    return g_strdup_printf("%" G_GINT64_FORMAT, value);
}

static void class_rows(OutputTable *table, const DeviceClass *dc)
{
    g_autofree char *capacity = count_text(dc->capacity);
    g_autofree char *in_use = count_text(dc->in_use);
    g_autofree char *available = count_text(dc->available);
    g_autoptr(GString) addresses = g_string_new(NULL);
    for (guint i = 0; i < dc->addresses->len; i++)
        g_string_append_printf(addresses, "%s%s", i > 0 ? ", " : "",
                               (const char *)g_ptr_array_index(dc->addresses, i));

    output_table_add(table, "name:", dc->name);
    output_table_add(table, "kind:", dc->kind);
    output_table_add(table, "model:", dc->model);
    output_table_add(table, "capacity:", capacity);
    output_table_add(table, "in use:", in_use);
    output_table_add(table, "available:", available);
    if (g_strcmp0(dc->kind, "vfio") == 0) {
        output_table_add(table, "addresses:", addresses->str);
        output_table_add(table, "force:", dc->force ? "yes" : "no");
    }
    output_table_add(table, "description:", dc->description);
    output_table_add(table, "created:", dc->created_at);
    output_table_add(table, "updated:", dc->updated_at);
}

/* create, show and set answer {"device_class": {...}}. */
static int print_class(Ctl *ctl, json_object *body)
{
    g_autoptr(GError) error = NULL;
    json_object *member = ctl_member(body, "device_class", &error);
    g_autoptr(DeviceClass) dc = member != NULL ? device_class_from_json(member, "", &error) : NULL;
    if (dc == NULL)
        return ctl_fail_answer(ctl, "device_class", error);
    if (!ctl_emit(ctl, body)) {
        g_autoptr(OutputTable) table = output_table_new(NULL, 2);
        class_rows(table, dc);
        output_table_print(table, stdout);
    }
    return CTL_EXIT_OK;
}

static const char *const name_names[] = {"NAME", NULL};

/* ---- verbs ------------------------------------------------------------------------ */

static int class_create(Ctl *ctl, int argc, char **argv)
{
    static const char *const kinds[] = {"emulated", "vfio", NULL};
    static const char *const models[] = {"edu", "virtio-rng", NULL};
    const char *kind = NULL;
    const char *model = NULL;
    const char *description = NULL;
    gint64 capacity = 0;
    gboolean capacity_seen = FALSE;
    gboolean force = FALSE;
    g_autoptr(GPtrArray) addresses = g_ptr_array_new();
    const ArgSpec specs[] = {
        {"--kind", ARG_STRING, 0, 0, &kind, NULL},
        {"--model", ARG_STRING, 0, 0, &model, NULL},
        {"--capacity", ARG_INT, 1, CLASS_CAPACITY_MAX, &capacity, &capacity_seen},
        {"--address", ARG_STRINGS, 0, 0, addresses, NULL},
        {"--force", ARG_FLAG, 0, 0, &force, NULL},
        {"--description", ARG_STRING, 0, 0, &description, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "create", argc, argv, specs, name_names, &args, &status))
        return status;
    if (kind == NULL)
        return ctl_usage_error(ctl, "device-class create: missing --kind (emulated or vfio)");
    if (!g_strv_contains(kinds, kind))
        return ctl_usage_error(
            ctl, "device-class create: --kind: must be emulated or vfio (not '%s')", kind);

    g_autoptr(json_object) request = json_object_new_object();
    json_object_object_add(request, "name", json_object_new_string(g_ptr_array_index(args, 0)));
    json_object_object_add(request, "kind", json_object_new_string(kind));
    if (strcmp(kind, "emulated") == 0) {
        if (addresses->len > 0 || force)
            return ctl_usage_error(
                ctl, "device-class create: --address and --force go with --kind vfio");
        if (model == NULL)
            return ctl_usage_error(
                ctl,
                "device-class create: missing --model (edu or virtio-rng) for --kind emulated");
        if (!g_strv_contains(models, model))
            return ctl_usage_error(
                ctl, "device-class create: --model: must be edu or virtio-rng (not '%s')", model);
        if (!capacity_seen)
            return ctl_usage_error(ctl,
                                   "device-class create: missing --capacity N for --kind emulated");
        json_object_object_add(request, "model", json_object_new_string(model));
        json_object_object_add(request, "capacity", json_object_new_int64(capacity));
    } else {
        if (model != NULL || capacity_seen)
            return ctl_usage_error(ctl, "device-class create: --model and --capacity go with "
                                        "--kind emulated (a vfio class has one device per "
                                        "--address)");
        if (addresses->len == 0)
            return ctl_usage_error(
                ctl, "device-class create: missing --address PCI (0000:3b:00.0) for --kind vfio");
        if (addresses->len > CLASS_ADDRESSES_MAX)
            return ctl_usage_error(ctl, "device-class create: at most %d --address options",
                                   CLASS_ADDRESSES_MAX);
        /* The form of an address is the API's to judge: its message names the field. */
        json_object *list = json_object_new_array();
        for (guint i = 0; i < addresses->len; i++)
            json_object_array_add(list, json_object_new_string(g_ptr_array_index(addresses, i)));
        json_object_object_add(request, "addresses", list);
        if (force)
            json_object_object_add(request, "force", json_object_new_boolean(TRUE));
    }
    if (description != NULL)
        json_object_object_add(request, "description", json_object_new_string(description));
    if (!cmd_call(ctl, "POST", "/v1/device-classes", request, &body, &status))
        return status;
    return print_class(ctl, body);
}

static gpointer class_item(json_object *item, GError **error)
{
    return device_class_from_json(item, "", error);
}

static GPtrArray *class_page(json_object *body, char **next, GError **error)
{
    return api_json_page_decode(body, "device_classes", class_item,
                                (GDestroyNotify)device_class_free, next, error);
}

static void class_row(OutputTable *table, gpointer item)
{
    const DeviceClass *dc = item;
    g_autofree char *capacity = count_text(dc->capacity);
    g_autofree char *in_use = count_text(dc->in_use);
    g_autofree char *available = count_text(dc->available);
    output_table_add(table, dc->name, dc->kind, dc->model, capacity, in_use, available,
                     dc->description);
}

static int class_list(Ctl *ctl, int argc, char **argv)
{
    static const char *const headers[] = {"NAME",   "KIND",      "MODEL",       "CAPACITY",
                                          "IN-USE", "AVAILABLE", "DESCRIPTION", NULL};
    static const CmdList list = {.path = "/v1/device-classes",
                                 .member = "device_classes",
                                 .decode = class_page,
                                 .headers = headers,
                                 .row = class_row};
    return cmd_list(ctl, &list, argc, argv);
}

static int class_show(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "show", argc, argv, NULL, name_names, &args, &status))
        return status;
    g_autofree char *path = ctl_path("/v1/device-classes", g_ptr_array_index(args, 0), NULL);
    if (!cmd_call(ctl, "GET", path, NULL, &body, &status))
        return status;
    return print_class(ctl, body);
}

static int class_set(Ctl *ctl, int argc, char **argv)
{
    gint64 capacity = 0;
    gboolean capacity_seen = FALSE;
    const char *description = NULL;
    const ArgSpec specs[] = {
        {"--capacity", ARG_INT, 1, CLASS_CAPACITY_MAX, &capacity, &capacity_seen},
        {"--description", ARG_STRING, 0, 0, &description, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "set", argc, argv, specs, name_names, &args, &status))
        return status;
    if (!capacity_seen && description == NULL)
        return ctl_usage_error(
            ctl, "device-class set: nothing to change (give --capacity or --description)");
    g_autoptr(json_object) request = json_object_new_object();
    if (capacity_seen)
        json_object_object_add(request, "capacity", json_object_new_int64(capacity));
    if (description != NULL)
        json_object_object_add(request, "description", json_object_new_string(description));
    g_autofree char *path = ctl_path("/v1/device-classes", g_ptr_array_index(args, 0), NULL);
    if (!cmd_call(ctl, "PATCH", path, request, &body, &status))
        return status;
    return print_class(ctl, body);
}

/* Capacity and description in an editor; written back only if nobody
 * changed the class meanwhile (If-Match). */
static int class_edit(Ctl *ctl, int argc, char **argv)
{
    static const char *const fields[] = {"capacity", "description", NULL};
    g_autoptr(GPtrArray) args = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "edit", argc, argv, NULL, name_names, &args, &status))
        return status;
    const char *name = g_ptr_array_index(args, 0);
    g_autofree char *path = ctl_path("/v1/device-classes", name, NULL);
    g_autofree char *what = g_strdup_printf("device class %s", name);
    return cmd_edit(ctl, what, path, "device_class", fields, print_class);
}

static int class_delete(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "delete", argc, argv, NULL, name_names, &args, &status))
        return status;
    const char *name = g_ptr_array_index(args, 0);
    g_autofree char *path = ctl_path("/v1/device-classes", name, NULL);
    if (!cmd_call(ctl, "DELETE", path, NULL, &body, &status))
        return status;
    if (!ctl_emit(ctl, body))
        ctl_note(ctl, "deleted device class %s", name);
    return CTL_EXIT_OK;
}

static const CmdVerb device_class_verbs[] = {
    {"create", class_create,
     "NAME --model edu|virtio-rng --capacity N --kind emulated [--description TEXT]\n"
     "NAME --kind vfio --address PCI [--address PCI]... [--force] [--description TEXT]",
     "create a class of emulated or passed-through devices",
     "Creates the device class NAME, which stacks ask for by name (stack create\n"
     "--device NAME, stack device attach STACK NAME): either N emulated devices,\n"
     "QEMU models behind L1's vIOMMU, or host PCI functions passed through with\n"
     "VFIO, one device per --address.\n"
     "\n"
     "Options:\n"
     "  --kind emulated|vfio    emulated devices or host PCI functions (required)\n"
     "  --model edu|virtio-rng  emulated: the QEMU model (edu is QEMU's test\n"
     "                          device)\n"
     "  --capacity N            emulated: how many devices the class has (1-64)\n"
     "  --address PCI           vfio: a host PCI function, 0000:3b:00.0; repeat for\n"
     "                          more (up to 64).  Its whole IOMMU group must be\n"
     "                          assignable\n"
     "  --force                 vfio: take functions bound to a host driver too\n"
     "  --description TEXT      what the class is, for people (up to 256 bytes)\n",
     NULL},
    {"list", class_list, "[--limit N [--after CURSOR] [--all]]",
     "list the classes and how many devices each has free",
     "Lists the device classes by name: kind, model, capacity, how many devices\n"
     "are in use and how many available, description.  Without --limit every\n"
     "page is fetched and printed as one list; with --limit N one page of at\n"
     "most N classes, and in a table the command for the next page on stderr\n"
     "(json and yaml hold it as \"next\").\n"
     "\n"
     "Options:\n"
     "  --limit N       at most N classes per page (1-1000)\n"
     "  --after CURSOR  the page after CURSOR (the \"next\" of the previous page)\n"
     "  --all           with --limit: every page, N classes at a time\n",
     NULL},
    {"show", class_show, "NAME", "show a class",
     "Shows the device class NAME: kind, model, capacity, devices in use and\n"
     "available, description, and for a vfio class its PCI addresses and\n"
     "whether --force was given.\n",
     NULL},
    {"set", class_set, "NAME [--capacity N] [--description TEXT]",
     "change a class's capacity or description",
     "Changes what the options give; the rest stays as it is.  Give at least one\n"
     "option.  Only an emulated class has a capacity to change, and never below\n"
     "the devices in use.\n"
     "\n"
     "Options:\n"
     "  --capacity N        emulated: how many devices the class has (1-64)\n"
     "  --description TEXT  what the class is, for people (up to 256 bytes)\n",
     NULL},
    {"edit", class_edit, "NAME", "edit a class's capacity and description in an editor",
     "Opens NAME's capacity and description as JSON in $VISUAL (else $EDITOR,\n"
     "else vi) and sends what you changed.  If someone changed the class between\n"
     "the read and the write, nothing is written: run it again.\n",
     NULL},
    {"delete", class_delete, "NAME", "delete a class and its devices",
     "Deletes the device class NAME and its devices.  Refused while a stack\n"
     "holds one of them: detach it (stack device detach) or delete the stack\n"
     "first.\n",
     NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

const CmdNoun cmd_device_class_noun = {
    "device-class",
    "pools of devices that stacks ask for (operator)",
    device_class_verbs,
    "A device class is a pool of devices of one kind; a stack that asks for the\n"
    "class gets one of them for itself until it gives it back.  turtlectl device\n"
    "list shows each device and the stack that holds it.\n"
    "\n"
    "Operator only, but tenants may list and show the classes.\n",
};
