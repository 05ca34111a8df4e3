#include "api/spec.h"

#include <string.h>

#include "api/error.h"
#include "api/json.h"

#define CPU_NAMED "named:"

static const char *const spec_keys[] = {"name",    "vcpus", "memory_mib", "boot",       "nesting",
                                        "devices", "nics",  "start",      "cloud_init", NULL};
static const char *const boot_keys[] = {"kernel",   "initrd",      "cmdline", "disk",
                                        "firmware", "secure_boot", NULL};
static const char *const firmware_choices[] = {"bios", "uefi", NULL};
static const char *const nesting_keys[] = {"cpu", "iommu", NULL};
static const char *const iommu_choices[] = {"none", "intel", "virtio", NULL};
static const char *const device_keys[] = {"class", "id", "model", "address", NULL};
static const char *const nic_keys[] = {"network", "mac", "ip", NULL};

ApiStackNic *api_stack_nic_new(const char *network, const char *mac, const char *ip)
{
    ApiStackNic *nic = g_new0(ApiStackNic, 1);
    nic->network = g_strdup(network);
    nic->mac = g_strdup(mac);
    nic->ip = g_strdup(ip);
    return nic;
}

void api_stack_nic_free(ApiStackNic *nic)
{
    if (!nic)
        return;
    g_free(nic->network);
    g_free(nic->mac);
    g_free(nic->ip);
    g_free(nic);
}

gboolean api_stack_nic_check_mac(const char *path, const char *mac, GError **error)
{
    gboolean ok = mac != NULL && strlen(mac) == 17;
    gboolean zero = TRUE;
    for (int i = 0; ok && i < 17; i++) {
        if (i % 3 == 2)
            ok = mac[i] == ':';
        else
            ok = g_ascii_isdigit(mac[i]) || (mac[i] >= 'a' && mac[i] <= 'f');
        if (ok && i % 3 != 2 && mac[i] != '0')
            zero = FALSE;
    }
    if (!ok) {
        api_json_set_invalid(error, path,
                             "must be a MAC address like 52:54:00:12:34:56 "
                             "(lower-case hex)");
        return FALSE;
    }
    if (zero || (g_ascii_xdigit_value(mac[1]) & 1)) {
        api_json_set_invalid(error, path, "must be a unicast address (%s is %s)", mac,
                             zero ? "all zeros" : "multicast");
        return FALSE;
    }
    return TRUE;
}

ApiStackDevice *api_stack_device_new(const char *class_name, const char *id, const char *model,
                                     const char *address)
{
    ApiStackDevice *device = g_new0(ApiStackDevice, 1);
    device->class_name = g_strdup(class_name);
    device->id = g_strdup(id);
    device->model = g_strdup(model);
    device->address = g_strdup(address);
    return device;
}

void api_stack_device_free(ApiStackDevice *device)
{
    if (!device)
        return;
    g_free(device->class_name);
    g_free(device->id);
    g_free(device->model);
    g_free(device->address);
    g_free(device);
}

ApiStackSpec *api_stack_spec_new(void)
{
    ApiStackSpec *spec = g_new0(ApiStackSpec, 1);
    spec->iommu = g_strdup("none");
    spec->firmware = g_strdup("bios");
    spec->devices = g_ptr_array_new_with_free_func((GDestroyNotify)api_stack_device_free);
    spec->nics = g_ptr_array_new_with_free_func((GDestroyNotify)api_stack_nic_free);
    spec->start = TRUE;
    return spec;
}

void api_stack_spec_free(ApiStackSpec *spec)
{
    if (!spec)
        return;
    g_free(spec->name);
    g_free(spec->boot_kernel);
    g_free(spec->boot_initrd);
    g_free(spec->boot_cmdline);
    g_free(spec->boot_disk);
    g_free(spec->firmware);
    api_cloud_init_free(spec->cloud_init);
    g_free(spec->cpu);
    g_free(spec->iommu);
    if (spec->devices)
        g_ptr_array_unref(spec->devices);
    if (spec->nics)
        g_ptr_array_unref(spec->nics);
    g_free(spec);
}

/* ---- value rules ------------------------------------------------------------ */

static gboolean check_boot(const ApiStackSpec *spec, GError **error)
{
    if (!api_json_check_choice("boot.firmware", spec->firmware, firmware_choices, error))
        return FALSE;
    if (spec->secure_boot && g_strcmp0(spec->firmware, "uefi") != 0) {
        api_json_set_invalid(error, "boot.secure_boot",
                             "needs boot.firmware \"uefi\" (BIOS has no secure boot)");
        return FALSE;
    }
    if (spec->boot_kernel && spec->boot_disk) {
        api_json_set_invalid(error, "boot.disk", "cannot be combined with boot.kernel");
        return FALSE;
    }
    if (!spec->boot_kernel && !spec->boot_disk) {
        api_json_set_invalid(error, "boot", "must contain either kernel or disk");
        return FALSE;
    }
    if (spec->boot_disk) {
        if (spec->boot_initrd) {
            api_json_set_invalid(error, "boot.initrd", "is only allowed with boot.kernel");
            return FALSE;
        }
        if (spec->boot_cmdline) {
            api_json_set_invalid(error, "boot.cmdline", "is only allowed with boot.kernel");
            return FALSE;
        }
        return api_json_check_name("boot.disk", spec->boot_disk, error);
    }
    if (!api_json_check_name("boot.kernel", spec->boot_kernel, error))
        return FALSE;
    if (spec->boot_initrd && !api_json_check_name("boot.initrd", spec->boot_initrd, error))
        return FALSE;
    /* What the cmdline may contain is hvcore's rule (hv_stack_spec_validate). */
    return TRUE;
}

/* The shape only: which models a domain can name is hvcore's rule. */
static gboolean check_cpu(const char *cpu, GError **error)
{
    if (!cpu || strcmp(cpu, "host-passthrough") == 0 || strcmp(cpu, "host-model") == 0 ||
        g_str_has_prefix(cpu, CPU_NAMED))
        return TRUE;
    api_json_set_invalid(error, "nesting.cpu",
                         "must be host-passthrough, host-model or named:<model>");
    return FALSE;
}

static gboolean check_device_count(size_t n, GError **error)
{
    if (n > API_SPEC_DEVICES_MAX) {
        api_json_set_invalid(error, "devices", "must have at most %d entries",
                             API_SPEC_DEVICES_MAX);
        return FALSE;
    }
    return TRUE;
}

/* Not too many, each naming a class (a name); which classes exist is the
 * pool's business. */
static gboolean check_devices(const GPtrArray *devices, GError **error)
{
    if (!devices)
        return TRUE;
    if (!check_device_count(devices->len, error))
        return FALSE;
    for (guint i = 0; i < devices->len; i++) {
        const ApiStackDevice *device = g_ptr_array_index(devices, i);
        g_autofree char *path = api_json_path_index("devices", i);
        g_autofree char *class_path = g_strconcat(path, ".class", NULL);
        if (!device) {
            api_json_set_invalid(error, path, "must be an object");
            return FALSE;
        }
        if (!api_json_check_name(class_path, device->class_name, error))
            return FALSE;
    }
    return TRUE;
}

static gboolean check_nic_count(size_t n, GError **error)
{
    if (n > API_SPEC_NICS_MAX) {
        api_json_set_invalid(error, "nics", "must have at most %d entries", API_SPEC_NICS_MAX);
        return FALSE;
    }
    return TRUE;
}

/* Each names a network; a MAC, when given, is a unicast one and appears
 * once.  Which networks exist is the daemon's business. */
static gboolean check_nics(const GPtrArray *nics, GError **error)
{
    if (!nics)
        return TRUE;
    if (!check_nic_count(nics->len, error))
        return FALSE;
    for (guint i = 0; i < nics->len; i++) {
        const ApiStackNic *nic = g_ptr_array_index(nics, i);
        g_autofree char *path = api_json_path_index("nics", i);
        g_autofree char *network_path = g_strconcat(path, ".network", NULL);
        g_autofree char *mac_path = g_strconcat(path, ".mac", NULL);
        if (!nic) {
            api_json_set_invalid(error, path, "must be an object");
            return FALSE;
        }
        if (!api_json_check_name(network_path, nic->network, error) ||
            (nic->mac && !api_stack_nic_check_mac(mac_path, nic->mac, error)))
            return FALSE;
        for (guint j = 0; nic->mac && j < i; j++) {
            const ApiStackNic *other = g_ptr_array_index(nics, j);
            if (other && other->mac && g_str_equal(other->mac, nic->mac)) {
                api_json_set_invalid(error, mac_path, "%s is also nics[%u].mac", nic->mac, j);
                return FALSE;
            }
        }
    }
    return TRUE;
}

gboolean api_stack_spec_validate(const ApiStackSpec *spec, GError **error)
{
    g_return_val_if_fail(spec != NULL, FALSE);

    return api_json_check_name("name", spec->name, error) &&
           api_json_check_range("vcpus", spec->vcpus, 1, API_SPEC_VCPUS_MAX, error) &&
           api_json_check_range("memory_mib", spec->memory_mib, API_SPEC_MEMORY_MIN_MIB,
                                API_SPEC_MEMORY_MAX_MIB, error) &&
           check_boot(spec, error) && check_cpu(spec->cpu, error) &&
           api_json_check_choice("nesting.iommu", spec->iommu, iommu_choices, error) &&
           check_devices(spec->devices, error) && check_nics(spec->nics, error) &&
           (!spec->cloud_init || api_cloud_init_validate(spec->cloud_init, error));
}

/* ---- JSON -------------------------------------------------------------------- */

static gboolean decode_devices(json_object *array, gboolean record, GPtrArray *devices,
                               GError **error)
{
    size_t n = json_object_array_length(array);
    /* The count is a value rule, but refusing early bounds the work. */
    if (!check_device_count(n, error))
        return FALSE;
    for (size_t i = 0; i < n; i++) {
        g_autofree char *path = api_json_path_index("devices", i);
        json_object *entry = json_object_array_get_idx(array, i);
        g_autoptr(ApiStackDevice) device = api_stack_device_new(NULL, NULL, NULL, NULL);
        if (!api_json_check_object(entry, path, device_keys, error) ||
            !api_json_get_string(entry, path, "class", API_JSON_REQUIRED, &device->class_name,
                                 error) ||
            !api_json_get_string(entry, path, "id", API_JSON_OPTIONAL, &device->id, error) ||
            !api_json_get_string(entry, path, "model", API_JSON_OPTIONAL, &device->model, error) ||
            !api_json_get_string(entry, path, "address", API_JSON_OPTIONAL, &device->address,
                                 error))
            return FALSE;
        if (!record && (device->id || device->model || device->address)) {
            g_autofree char *field = g_strconcat(path,
                                                 device->id      ? ".id"
                                                 : device->model ? ".model"
                                                                 : ".address",
                                                 NULL);
            api_json_set_invalid(error, field, "is assigned by the server; name the class only");
            return FALSE;
        }
        g_ptr_array_add(devices, g_steal_pointer(&device));
    }
    return TRUE;
}

static gboolean decode_nics(json_object *array, gboolean record, GPtrArray *nics, GError **error)
{
    size_t n = json_object_array_length(array);
    if (!check_nic_count(n, error))
        return FALSE;
    for (size_t i = 0; i < n; i++) {
        g_autofree char *path = api_json_path_index("nics", i);
        json_object *entry = json_object_array_get_idx(array, i);
        g_autoptr(ApiStackNic) nic = api_stack_nic_new(NULL, NULL, NULL);
        if (!api_json_check_object(entry, path, nic_keys, error) ||
            !api_json_get_string(entry, path, "network", API_JSON_REQUIRED, &nic->network, error) ||
            !api_json_get_string(entry, path, "mac", API_JSON_OPTIONAL, &nic->mac, error) ||
            !api_json_get_string(entry, path, "ip", API_JSON_OPTIONAL | API_JSON_NULLABLE, &nic->ip,
                                 error))
            return FALSE;
        if (!record && nic->ip) {
            g_autofree char *field = g_strconcat(path, ".ip", NULL);
            api_json_set_invalid(error, field, "is assigned by the network's DHCP server");
            return FALSE;
        }
        g_ptr_array_add(nics, g_steal_pointer(&nic));
    }
    return TRUE;
}

static ApiStackSpec *decode_spec(json_object *value, gboolean record, GError **error)
{
    const ApiJsonFlags req = API_JSON_REQUIRED;
    const ApiJsonFlags opt = API_JSON_OPTIONAL;
    g_autoptr(ApiStackSpec) spec = api_stack_spec_new();
    json_object *boot = NULL;
    json_object *nesting = NULL;
    json_object *devices = NULL;
    json_object *nics = NULL;
    json_object *cloud_init = NULL;
    gint64 vcpus = 0;
    gint64 memory = 0;
    g_autofree char *iommu = NULL;

    /* Types here; the integer ranges too, since a value must fit the struct
     * before validate can see it (validate repeats them for C callers). */
    if (!api_json_check_object(value, "", spec_keys, error) ||
        !api_json_get_string(value, "", "name", req, &spec->name, error) ||
        !api_json_get_int(value, "", "vcpus", req, 1, API_SPEC_VCPUS_MAX, &vcpus, error) ||
        !api_json_get_int(value, "", "memory_mib", req, API_SPEC_MEMORY_MIN_MIB,
                          API_SPEC_MEMORY_MAX_MIB, &memory, error) ||
        !api_json_get_object(value, "", "boot", req, boot_keys, &boot, error) ||
        !api_json_get_string(boot, "boot", "kernel", opt, &spec->boot_kernel, error) ||
        !api_json_get_string(boot, "boot", "initrd", opt, &spec->boot_initrd, error) ||
        !api_json_get_string(boot, "boot", "cmdline", opt, &spec->boot_cmdline, error) ||
        !api_json_get_string(boot, "boot", "disk", opt, &spec->boot_disk, error) ||
        !api_json_get_string(boot, "boot", "firmware", opt, &spec->firmware, error) ||
        !api_json_get_bool(boot, "boot", "secure_boot", opt, &spec->secure_boot, error) ||
        !api_json_get_object(value, "", "nesting", opt, nesting_keys, &nesting, error) ||
        (nesting && !api_json_get_string(nesting, "nesting", "cpu", opt, &spec->cpu, error)) ||
        (nesting && !api_json_get_string(nesting, "nesting", "iommu", opt, &iommu, error)) ||
        !api_json_get_array(value, "", "devices", opt, &devices, error) ||
        (devices && !decode_devices(devices, record, spec->devices, error)) ||
        !api_json_get_array(value, "", "nics", opt, &nics, error) ||
        (nics && !decode_nics(nics, record, spec->nics, error)) ||
        !api_json_get_bool(value, "", "start", opt, &spec->start, error) ||
        !api_json_get_object(value, "", "cloud_init", opt, NULL, &cloud_init, error))
        return NULL;
    if (cloud_init) {
        spec->cloud_init = api_cloud_init_from_json(cloud_init, record, error);
        if (!spec->cloud_init)
            return NULL;
    }
    spec->vcpus = (guint)vcpus;
    spec->memory_mib = (guint)memory;
    /* Devices are handed on to L2 through the vIOMMU: they bring one along. */
    g_free(spec->iommu);
    spec->iommu =
        iommu ? g_steal_pointer(&iommu) : g_strdup(spec->devices->len > 0 ? "intel" : "none");

    if (!api_stack_spec_validate(spec, error))
        return NULL;
    return g_steal_pointer(&spec);
}

ApiStackSpec *api_stack_spec_from_json(json_object *value, GError **error)
{
    return decode_spec(value, FALSE, error);
}

ApiStackSpec *api_stack_spec_from_record_json(json_object *value, GError **error)
{
    return decode_spec(value, TRUE, error);
}

ApiStackSpec *api_stack_spec_copy(const ApiStackSpec *spec)
{
    ApiStackSpec *copy = api_stack_spec_new();
    copy->name = g_strdup(spec->name);
    copy->vcpus = spec->vcpus;
    copy->memory_mib = spec->memory_mib;
    copy->boot_kernel = g_strdup(spec->boot_kernel);
    copy->boot_initrd = g_strdup(spec->boot_initrd);
    copy->boot_cmdline = g_strdup(spec->boot_cmdline);
    copy->boot_disk = g_strdup(spec->boot_disk);
    g_free(copy->firmware);
    copy->firmware = g_strdup(spec->firmware);
    copy->secure_boot = spec->secure_boot;
    copy->cloud_init = spec->cloud_init ? api_cloud_init_copy(spec->cloud_init) : NULL;
    copy->cpu = g_strdup(spec->cpu);
    g_free(copy->iommu);
    copy->iommu = g_strdup(spec->iommu);
    for (guint i = 0; spec->devices && i < spec->devices->len; i++) {
        const ApiStackDevice *device = g_ptr_array_index(spec->devices, i);
        g_ptr_array_add(copy->devices, api_stack_device_new(device->class_name, device->id,
                                                            device->model, device->address));
    }
    for (guint i = 0; spec->nics && i < spec->nics->len; i++) {
        const ApiStackNic *nic = g_ptr_array_index(spec->nics, i);
        g_ptr_array_add(copy->nics, api_stack_nic_new(nic->network, nic->mac, nic->ip));
    }
    copy->start = spec->start;
    return copy;
}

static void add_string(json_object *object, const char *key, const char *value)
{
    if (value)
        json_object_object_add(object, key, json_object_new_string(value));
}

static json_object *encode(const ApiStackSpec *spec, gboolean with_user_data)
{

    json_object *boot = json_object_new_object();
    add_string(boot, "kernel", spec->boot_kernel);
    add_string(boot, "initrd", spec->boot_initrd);
    add_string(boot, "cmdline", spec->boot_cmdline);
    add_string(boot, "disk", spec->boot_disk);
    add_string(boot, "firmware", spec->firmware ? spec->firmware : "bios");
    json_object_object_add(boot, "secure_boot", json_object_new_boolean(spec->secure_boot));

    json_object *nesting = json_object_new_object();
    add_string(nesting, "cpu", spec->cpu);
    add_string(nesting, "iommu", spec->iommu ? spec->iommu : "none");

    json_object *devices = json_object_new_array();
    for (guint i = 0; spec->devices && i < spec->devices->len; i++) {
        const ApiStackDevice *device = g_ptr_array_index(spec->devices, i);
        json_object *entry = json_object_new_object();
        add_string(entry, "class", device->class_name);
        add_string(entry, "id", device->id);
        add_string(entry, "model", device->model);
        add_string(entry, "address", device->address);
        json_object_array_add(devices, entry);
    }

    json_object *nics = json_object_new_array();
    for (guint i = 0; spec->nics && i < spec->nics->len; i++) {
        const ApiStackNic *nic = g_ptr_array_index(spec->nics, i);
        json_object *entry = json_object_new_object();
        add_string(entry, "network", nic->network);
        add_string(entry, "mac", nic->mac);
        json_object_object_add(entry, "ip", api_json_new_string_or_null(nic->ip));
        json_object_array_add(nics, entry);
    }

    json_object *root = json_object_new_object();
    add_string(root, "name", spec->name);
    json_object_object_add(root, "vcpus", json_object_new_int64(spec->vcpus));
    json_object_object_add(root, "memory_mib", json_object_new_int64(spec->memory_mib));
    json_object_object_add(root, "boot", boot);
    json_object_object_add(root, "nesting", nesting);
    json_object_object_add(root, "devices", devices);
    json_object_object_add(root, "nics", nics);
    json_object_object_add(root, "start", json_object_new_boolean(spec->start));
    if (spec->cloud_init)
        json_object_object_add(root, "cloud_init",
                               api_cloud_init_to_json(spec->cloud_init, with_user_data));
    return root;
}

json_object *api_stack_spec_to_json(const ApiStackSpec *spec)
{
    g_return_val_if_fail(spec != NULL, NULL);
    return encode(spec, TRUE);
}

json_object *api_stack_spec_to_public_json(const ApiStackSpec *spec)
{
    g_return_val_if_fail(spec != NULL, NULL);
    return encode(spec, FALSE);
}
