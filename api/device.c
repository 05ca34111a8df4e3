#include "api/device.h"

#include <string.h>

#include "api/error.h"
#include "api/json.h"

static const char *const create_keys[] = {"name",      "kind",  "model",       "capacity",
                                          "addresses", "force", "description", NULL};
static const char *const patch_keys[] = {"capacity", "description", NULL};
static const char *const kinds[] = {"emulated", "vfio", NULL};
static const char *const emulated_models[] = {API_DEVICE_EMULATED_MODELS, NULL};

ApiDeviceClass *api_device_class_new(void)
{
    ApiDeviceClass *device_class = g_new0(ApiDeviceClass, 1);
    device_class->addresses = g_ptr_array_new_with_free_func(g_free);
    return device_class;
}

void api_device_class_free(ApiDeviceClass *device_class)
{
    if (!device_class)
        return;
    g_free(device_class->name);
    g_free(device_class->kind);
    g_free(device_class->model);
    g_ptr_array_unref(device_class->addresses);
    g_free(device_class->description);
    g_free(device_class->created_at);
    g_free(device_class->updated_at);
    g_free(device_class);
}

gboolean api_device_check_pci_address(const char *path, const char *address, GError **error)
{
    static const char shape[] = "xxxx:xx:xx.x";
    gboolean ok = address && strlen(address) == strlen(shape);
    for (size_t i = 0; ok && shape[i]; i++) {
        char c = address[i];
        ok = shape[i] == 'x' ? g_ascii_isxdigit(c) && !g_ascii_isupper(c) : c == shape[i];
    }
    /* A slot has 5 bits, a function 3. */
    ok = ok && g_ascii_xdigit_value(address[8]) <= 1 && g_ascii_xdigit_value(address[11]) <= 7;
    if (!ok)
        api_json_set_invalid(error, path,
                             "must be a PCI address like 0000:3b:00.0 (lower-case hex, slot "
                             "00-1f, function 0-7)");
    return ok;
}

static gboolean check_description(const char *path, const char *text, GError **error)
{
    if (text && (strlen(text) > API_DEVICE_DESCRIPTION_MAX || !g_utf8_validate(text, -1, NULL))) {
        api_json_set_invalid(error, path, "must be UTF-8 text of at most %d bytes",
                             API_DEVICE_DESCRIPTION_MAX);
        return FALSE;
    }
    return TRUE;
}

static gboolean check_class_name_length(const char *name, GError **error)
{
    if (strlen(name) > API_DEVICE_CLASS_NAME_MAX) {
        api_json_set_invalid(error, "name",
                             "must be at most %d characters for a device class (its devices "
                             "are named <class>-<n>)",
                             API_DEVICE_CLASS_NAME_MAX);
        return FALSE;
    }
    return TRUE;
}

static gboolean decode_addresses(json_object *array, GPtrArray *addresses, GError **error)
{
    size_t n = json_object_array_length(array);
    if (n < 1 || n > API_DEVICE_CLASS_CAPACITY_MAX) {
        api_json_set_invalid(error, "addresses", "must have 1 to %d entries",
                             API_DEVICE_CLASS_CAPACITY_MAX);
        return FALSE;
    }
    for (size_t i = 0; i < n; i++) {
        g_autofree char *path = api_json_path_index("addresses", i);
        char *address = NULL;
        if (!api_json_value_string(json_object_array_get_idx(array, i), path, API_JSON_REQUIRED,
                                   &address, error))
            return FALSE;
        g_ptr_array_add(addresses, address);
        if (!api_device_check_pci_address(path, address, error))
            return FALSE;
        for (size_t j = 0; j < i; j++) {
            if (g_str_equal(address, g_ptr_array_index(addresses, j))) {
                api_json_set_invalid(error, path, "repeats addresses[%zu]", j);
                return FALSE;
            }
        }
    }
    return TRUE;
}

ApiDeviceClass *api_device_class_create_from_json(json_object *value, GError **error)
{
    g_autoptr(ApiDeviceClass) device_class = api_device_class_new();
    json_object *addresses = NULL;
    gint64 capacity = -1;

    if (!api_json_check_object(value, "", create_keys, error) ||
        !api_json_get_string(value, "", "name", API_JSON_REQUIRED, &device_class->name, error) ||
        !api_json_check_name("name", device_class->name, error) ||
        !check_class_name_length(device_class->name, error) ||
        !api_json_get_string(value, "", "kind", API_JSON_REQUIRED, &device_class->kind, error) ||
        !api_json_check_choice("kind", device_class->kind, kinds, error) ||
        !api_json_get_string(value, "", "model", API_JSON_OPTIONAL, &device_class->model, error) ||
        !api_json_get_int(value, "", "capacity", API_JSON_OPTIONAL, 1,
                          API_DEVICE_CLASS_CAPACITY_MAX, &capacity, error) ||
        !api_json_get_array(value, "", "addresses", API_JSON_OPTIONAL, &addresses, error) ||
        !api_json_get_bool(value, "", "force", API_JSON_OPTIONAL, &device_class->force, error) ||
        !api_json_get_string(value, "", "description", API_JSON_OPTIONAL,
                             &device_class->description, error) ||
        !check_description("description", device_class->description, error))
        return NULL;

    if (g_str_equal(device_class->kind, "emulated")) {
        if (!device_class->model) {
            api_json_set_invalid(error, "model", "is required for an emulated class (%s)",
                                 "edu or virtio-rng");
            return NULL;
        }
        if (!api_json_check_choice("model", device_class->model, emulated_models, error))
            return NULL;
        if (capacity < 0) {
            api_json_set_invalid(error, "capacity", "is required for an emulated class");
            return NULL;
        }
        if (addresses || device_class->force) {
            api_json_set_invalid(error, addresses ? "addresses" : "force",
                                 "is only for a vfio class");
            return NULL;
        }
        device_class->capacity = capacity;
        return g_steal_pointer(&device_class);
    }
    /* vfio: the functions are the capacity. */
    if (device_class->model && !g_str_equal(device_class->model, "vfio")) {
        api_json_set_invalid(error, "model", "must be vfio (or left out) for a vfio class");
        return NULL;
    }
    if (capacity >= 0) {
        api_json_set_invalid(error, "capacity", "is the number of addresses for a vfio class");
        return NULL;
    }
    if (!addresses) {
        api_json_set_invalid(error, "addresses", "is required for a vfio class");
        return NULL;
    }
    if (!decode_addresses(addresses, device_class->addresses, error))
        return NULL;
    g_free(device_class->model);
    device_class->model = g_strdup("vfio");
    device_class->capacity = device_class->addresses->len;
    return g_steal_pointer(&device_class);
}

gboolean api_device_class_patch_from_json(json_object *value, gboolean *has_capacity,
                                          gint64 *capacity, gboolean *has_description,
                                          char **description, GError **error)
{
    json_object *member = NULL;
    *has_capacity = FALSE;
    *has_description = FALSE;
    if (!api_json_check_object(value, "", patch_keys, error))
        return FALSE;
    if (json_object_object_get_ex(value, "capacity", &member)) {
        if (!api_json_value_int(member, "capacity", API_JSON_REQUIRED, 0,
                                API_DEVICE_CLASS_CAPACITY_MAX, capacity, error))
            return FALSE;
        *has_capacity = TRUE;
    }
    if (json_object_object_get_ex(value, "description", &member)) {
        g_autofree char *text = NULL;
        if (!api_json_value_string(member, "description", API_JSON_NULLABLE, &text, error) ||
            !check_description("description", text, error))
            return FALSE;
        *description = g_steal_pointer(&text);
        *has_description = TRUE;
    }
    if (!*has_capacity && !*has_description) {
        api_json_set_invalid(error, "", "must change capacity or description");
        return FALSE;
    }
    return TRUE;
}

json_object *api_device_class_to_json(const ApiDeviceClass *device_class)
{
    json_object *root = json_object_new_object();
    json_object *addresses = json_object_new_array();
    for (guint i = 0; i < device_class->addresses->len; i++)
        json_object_array_add(
            addresses, json_object_new_string(g_ptr_array_index(device_class->addresses, i)));
    json_object_object_add(root, "name", json_object_new_string(device_class->name));
    json_object_object_add(root, "kind", json_object_new_string(device_class->kind));
    json_object_object_add(root, "model", json_object_new_string(device_class->model));
    json_object_object_add(root, "capacity", json_object_new_int64(device_class->capacity));
    json_object_object_add(root, "in_use", json_object_new_int64(device_class->in_use));
    json_object_object_add(root, "available",
                           json_object_new_int64(device_class->capacity - device_class->in_use));
    json_object_object_add(root, "addresses", addresses);
    json_object_object_add(root, "force", json_object_new_boolean(device_class->force));
    json_object_object_add(root, "description",
                           api_json_new_string_or_null(device_class->description));
    json_object_object_add(root, "created_at", json_object_new_string(device_class->created_at));
    json_object_object_add(root, "updated_at", json_object_new_string(device_class->updated_at));
    return root;
}

json_object *api_device_class_list_to_json(const GPtrArray *classes, const char *next)
{
    json_object *array = json_object_new_array();
    for (guint i = 0; i < classes->len; i++)
        json_object_array_add(array, api_device_class_to_json(g_ptr_array_index(classes, i)));
    return api_json_page_new("device_classes", array, next);
}

ApiDevice *api_device_new(void)
{
    return g_new0(ApiDevice, 1);
}

void api_device_free(ApiDevice *device)
{
    if (!device)
        return;
    g_free(device->id);
    g_free(device->class_name);
    g_free(device->model);
    g_free(device->address);
    g_free(device->stack_id);
    g_free(device->stack_name);
    g_free(device->tenant);
    g_free(device);
}

json_object *api_device_to_json(const ApiDevice *device)
{
    json_object *root = json_object_new_object();
    json_object_object_add(root, "id", json_object_new_string(device->id));
    json_object_object_add(root, "class", json_object_new_string(device->class_name));
    json_object_object_add(root, "model", json_object_new_string(device->model));
    json_object_object_add(root, "address", api_json_new_string_or_null(device->address));
    json_object *stack = NULL;
    if (device->stack_id) {
        stack = json_object_new_object();
        json_object_object_add(stack, "id", json_object_new_string(device->stack_id));
        json_object_object_add(stack, "name", api_json_new_string_or_null(device->stack_name));
        json_object_object_add(stack, "tenant", api_json_new_string_or_null(device->tenant));
    }
    json_object_object_add(root, "stack", stack);
    return root;
}

json_object *api_device_list_to_json(const GPtrArray *devices, const char *next)
{
    json_object *array = json_object_new_array();
    for (guint i = 0; i < devices->len; i++)
        json_object_array_add(array, api_device_to_json(g_ptr_array_index(devices, i)));
    return api_json_page_new("devices", array, next);
}

char *api_device_attach_from_json(json_object *value, GError **error)
{
    static const char *const keys[] = {"class", NULL};
    g_autofree char *class_name = NULL;
    if (!api_json_check_object(value, "", keys, error) ||
        !api_json_get_string(value, "", "class", API_JSON_REQUIRED, &class_name, error) ||
        !api_json_check_name("class", class_name, error))
        return NULL;
    return g_steal_pointer(&class_name);
}
