#include "api/host.h"

#include "api/error.h"
#include "api/json.h"

void api_host_free(ApiHost *host)
{
    if (!host)
        return;
    g_free(host->backend);
    g_free(host->reason);
    g_free(host->cpu_vendor);
    g_free(host->kvm_module);
    g_free(host);
}

json_object *api_host_to_json(const ApiHost *host)
{
    g_return_val_if_fail(host != NULL, NULL);

    json_object *cpu = json_object_new_object();
    json_object_object_add(cpu, "vendor", api_json_new_string_or_null(host->cpu_vendor));
    json_object_object_add(cpu, "vmx", json_object_new_boolean(host->vmx));
    json_object_object_add(cpu, "svm", json_object_new_boolean(host->svm));
    json_object_object_add(cpu, "hypervisor", json_object_new_boolean(host->hypervisor));

    json_object *kvm = json_object_new_object();
    json_object_object_add(kvm, "device", json_object_new_boolean(host->kvm_device));
    json_object_object_add(kvm, "device_opens", json_object_new_boolean(host->kvm_device_opens));
    json_object_object_add(kvm, "api_version", api_json_new_int_or_null(host->kvm_api_version));
    json_object_object_add(kvm, "nested_state_size",
                           api_json_new_int_or_null(host->nested_state_size));
    json_object_object_add(kvm, "module", api_json_new_string_or_null(host->kvm_module));
    json_object_object_add(kvm, "nested", api_json_new_tristate(host->nested));
    json_object_object_add(kvm, "ept_npt", api_json_new_tristate(host->ept_npt));
    json_object_object_add(kvm, "shadow_vmcs", api_json_new_tristate(host->shadow_vmcs));
    json_object_object_add(kvm, "apicv_avic", api_json_new_tristate(host->apicv_avic));
    json_object_object_add(kvm, "pvm", json_object_new_boolean(host->pvm));

    json_object *iommu = json_object_new_object();
    json_object_object_add(iommu, "groups", api_json_new_int_or_null(host->iommu_groups));
    json_object_object_add(iommu, "vfio", json_object_new_boolean(host->vfio));

    json_object *root = json_object_new_object();
    json_object_object_add(root, "backend", api_json_new_string_or_null(host->backend));
    json_object_object_add(root, "reason", api_json_new_string_or_null(host->reason));
    json_object_object_add(root, "cpu", cpu);
    json_object_object_add(root, "kvm", kvm);
    json_object_object_add(root, "iommu", iommu);
    return root;
}

static const char *const host_keys[] = {"backend", "reason", "cpu", "kvm", "iommu", NULL};
static const char *const cpu_keys[] = {"vendor", "vmx", "svm", "hypervisor", NULL};
static const char *const kvm_keys[] = {
    "device",     "device_opens", "api_version", "nested_state_size",
    "module",     "nested",       "ept_npt",     "shadow_vmcs",
    "apicv_avic", "pvm",          NULL,
};
static const char *const iommu_keys[] = {"groups", "vfio", NULL};

/* A count that is unknown (null) or fits an int. */
static gboolean get_count(json_object *object, const char *path, const char *key, int *out,
                          GError **error)
{
    gint64 value = API_JSON_UNKNOWN;
    if (!api_json_get_int(object, path, key, API_JSON_REQUIRED | API_JSON_NULLABLE, 0, G_MAXINT,
                          &value, error))
        return FALSE;
    *out = (int)value;
    return TRUE;
}

ApiHost *api_host_from_json(json_object *value, GError **error)
{
    const ApiJsonFlags req = API_JSON_REQUIRED;
    const ApiJsonFlags req_null = API_JSON_REQUIRED | API_JSON_NULLABLE;
    g_autoptr(ApiHost) host = g_new0(ApiHost, 1);
    json_object *cpu = NULL;
    json_object *kvm = NULL;
    json_object *iommu = NULL;

    if (!api_json_check_object(value, "", host_keys, error) ||
        !api_json_get_string(value, "", "backend", req, &host->backend, error) ||
        !api_json_get_string(value, "", "reason", req, &host->reason, error) ||
        !api_json_get_object(value, "", "cpu", req, cpu_keys, &cpu, error) ||
        !api_json_get_object(value, "", "kvm", req, kvm_keys, &kvm, error) ||
        !api_json_get_object(value, "", "iommu", req, iommu_keys, &iommu, error))
        return NULL;

    if (!api_json_get_string(cpu, "cpu", "vendor", req, &host->cpu_vendor, error) ||
        !api_json_get_bool(cpu, "cpu", "vmx", req, &host->vmx, error) ||
        !api_json_get_bool(cpu, "cpu", "svm", req, &host->svm, error) ||
        !api_json_get_bool(cpu, "cpu", "hypervisor", req, &host->hypervisor, error))
        return NULL;

    if (!api_json_get_bool(kvm, "kvm", "device", req, &host->kvm_device, error) ||
        !api_json_get_bool(kvm, "kvm", "device_opens", req, &host->kvm_device_opens, error) ||
        !get_count(kvm, "kvm", "api_version", &host->kvm_api_version, error) ||
        !get_count(kvm, "kvm", "nested_state_size", &host->nested_state_size, error) ||
        !api_json_get_string(kvm, "kvm", "module", req_null, &host->kvm_module, error) ||
        !api_json_get_tristate(kvm, "kvm", "nested", req, &host->nested, error) ||
        !api_json_get_tristate(kvm, "kvm", "ept_npt", req, &host->ept_npt, error) ||
        !api_json_get_tristate(kvm, "kvm", "shadow_vmcs", req, &host->shadow_vmcs, error) ||
        !api_json_get_tristate(kvm, "kvm", "apicv_avic", req, &host->apicv_avic, error) ||
        !api_json_get_bool(kvm, "kvm", "pvm", req, &host->pvm, error))
        return NULL;

    if (!get_count(iommu, "iommu", "groups", &host->iommu_groups, error) ||
        !api_json_get_bool(iommu, "iommu", "vfio", req, &host->vfio, error))
        return NULL;

    return g_steal_pointer(&host);
}
