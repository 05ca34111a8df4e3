#include "daemon/convert.h"

#include "api/device.h"

#include <string.h>

#include "daemon/clock.h"
#include "daemon/error.h"

/* api/ keeps the schema's bounds for its decoder and the CLI; they must be
 * hvcore's exactly, or the API would accept what cannot become a domain. */
G_STATIC_ASSERT(API_SPEC_VCPUS_MAX == HV_SPEC_VCPUS_MAX);
G_STATIC_ASSERT(API_SPEC_MEMORY_MIN_MIB == HV_SPEC_MEMORY_MIN_MIB);
G_STATIC_ASSERT(API_SPEC_MEMORY_MAX_MIB == HV_SPEC_MEMORY_MAX_MIB);
G_STATIC_ASSERT(API_SPEC_DEVICES_MAX == HV_SPEC_DEVICES_MAX);
/* Device ids are "<class>-<n>" with n < 64: two digits and the dash. */
G_STATIC_ASSERT(API_DEVICE_CLASS_CAPACITY_MAX <= 100);
G_STATIC_ASSERT(API_DEVICE_CLASS_NAME_MAX + 3 <= HV_DEVICE_ID_MAX);

ApiHost *convert_host_report(const HvHostReport *report)
{
    ApiHost *host = g_new0(ApiHost, 1);

    host->backend = g_strdup(hv_backend_to_string(report->backend));
    host->reason = g_strdup(report->reason);
    host->cpu_vendor = g_strdup(report->cpu_vendor);
    host->vmx = report->vmx;
    host->svm = report->svm;
    host->hypervisor = report->hypervisor;
    host->kvm_device = report->kvm_device;
    host->kvm_device_opens = report->kvm_device_opens;
    host->kvm_api_version = report->kvm_api_version;
    host->nested_state_size = report->nested_state_size;
    host->kvm_module = g_strdup(report->kvm_module);
    host->nested = report->nested;
    host->ept_npt = report->ept_npt;
    host->shadow_vmcs = report->shadow_vmcs;
    host->apicv_avic = report->apicv_avic;
    host->pvm = report->pvm;
    host->iommu_groups = report->iommu_groups;
    host->vfio = report->vfio;
    return host;
}

/* Anything but the API's keywords becomes a named mode without a model,
 * which hvcore refuses with the API's message. */
static HvCpuMode cpu_mode(const char *cpu, const char **model)
{
    *model = NULL;
    if (cpu == NULL)
        return HV_CPU_DEFAULT;
    if (g_str_equal(cpu, "host-passthrough"))
        return HV_CPU_HOST_PASSTHROUGH;
    if (g_str_equal(cpu, "host-model"))
        return HV_CPU_HOST_MODEL;
    if (g_str_has_prefix(cpu, "named:"))
        *model = cpu + strlen("named:");
    return HV_CPU_NAMED;
}

/* An unknown model maps past the enum, which hvcore refuses. */
static HvIommu iommu_model(const char *iommu)
{
    if (iommu == NULL || g_str_equal(iommu, "none"))
        return HV_IOMMU_NONE;
    if (g_str_equal(iommu, "intel"))
        return HV_IOMMU_INTEL;
    if (g_str_equal(iommu, "virtio"))
        return HV_IOMMU_VIRTIO;
    return (HvIommu)(HV_IOMMU_VIRTIO + 1);
}

/* Past the enum for anything else, which hvcore refuses. */
static HvFirmware firmware_kind(const char *firmware)
{
    if (firmware == NULL || g_str_equal(firmware, "bios"))
        return HV_FIRMWARE_BIOS;
    if (g_str_equal(firmware, "uefi"))
        return HV_FIRMWARE_UEFI;
    return (HvFirmware)(HV_FIRMWARE_UEFI + 1);
}

HvDevice *convert_stack_device(const ApiStackDevice *device, guint index)
{
    HvDeviceModel model = HV_DEVICE_EDU;
    /* Before allocation a device has no id yet: a stand-in keeps the
     * validation of everything else (counts per model, the vIOMMU) whole.
     * The model is the class's, filled in by the caller. */
    g_autofree char *stand_in = g_strdup_printf("device%u", index);
    /* A vfio device's host function is known once claimed: before, a
     * distinct stand-in address (index < 16: slot 00-0f). */
    g_autofree char *stand_in_address = g_strdup_printf("0000:00:%02x.0", index);
    if (device->model == NULL || !hv_device_model_from_string(device->model, &model))
        g_warning("device %s of class %s has no known model (%s)", device->id ? device->id : "?",
                  device->class_name, device->model ? device->model : "none");
    const char *address = device->address;
    if (model == HV_DEVICE_VFIO && device->id == NULL && address == NULL)
        address = stand_in_address;
    return hv_device_new(device->id ? device->id : stand_in, model, address);
}

/* The fields a tenant chooses; the rest is the host's. */
static HvStackSpec *convert_spec_fields(const ApiStackSpec *spec)
{
    HvStackSpec *hv = hv_stack_spec_new();
    const char *model = NULL;

    hv->name = g_strdup(spec->name);
    hv->vcpus = spec->vcpus;
    hv->memory_mib = spec->memory_mib;
    hv->cmdline = g_strdup(spec->boot_cmdline);
    hv->cpu_mode = cpu_mode(spec->cpu, &model);
    hv->cpu_model = g_strdup(model);
    hv->iommu = iommu_model(spec->iommu);
    hv->firmware = firmware_kind(spec->firmware);
    hv->secure_boot = spec->secure_boot;
    for (guint i = 0; spec->devices && i < spec->devices->len; i++)
        g_ptr_array_add(hv->devices, convert_stack_device(g_ptr_array_index(spec->devices, i), i));
    return hv;
}

HvStackSpec *convert_stack_spec(const ApiStack *stack)
{
    HvStackSpec *hv = convert_spec_fields(stack->spec);

    hv->id = g_strdup(stack->id);
    hv->tenant = g_strdup(stack->tenant);
    return hv;
}

gboolean convert_validate_stack_spec(const ApiStackSpec *spec, HvBackend backend,
                                     const HvHostReport *host, GError **error)
{
    g_return_val_if_fail(spec != NULL, FALSE);

    g_autoptr(HvStackSpec) hv = convert_spec_fields(spec);
    g_autoptr(GError) local = NULL;
    if (!hv_stack_spec_validate(hv, backend, host, &local)) {
        g_set_error_literal(error, TD_ERROR, TD_ERROR_BAD_REQUEST, local->message);
        return FALSE;
    }
    return TRUE;
}

HvNetworkSpec *convert_network_to_hv(const ApiNetwork *network)
{
    HvNetworkSpec *spec = hv_network_spec_new();
    spec->id = g_strdup(network->id);
    spec->name = g_strdup(network->name);
    spec->tenant = g_strdup(network->tenant);
    if (!hv_network_mode_from_string(network->mode, &spec->mode))
        g_warning("network %s has an unknown mode '%s'", network->id, network->mode);
    spec->cidr = g_strdup(network->cidr);
    spec->bridge = g_strdup(network->bridge);
    for (guint i = 0; i < network->shared_with->len; i++)
        g_ptr_array_add(spec->shared_with, g_strdup(g_ptr_array_index(network->shared_with, i)));
    return spec;
}

ApiNetwork *convert_network_from_hv(const HvNetworkSpec *spec)
{
    ApiNetwork *network = api_network_new();
    network->id = g_strdup(spec->id);
    network->name = g_strdup(spec->name);
    network->tenant = g_strdup(spec->tenant);
    network->mode = g_strdup(hv_network_mode_to_string(spec->mode));
    network->cidr = g_strdup(spec->cidr);
    network->bridge = g_strdup(spec->bridge);
    for (guint i = 0; i < spec->shared_with->len; i++)
        g_ptr_array_add(network->shared_with, g_strdup(g_ptr_array_index(spec->shared_with, i)));
    network->created_at = clock_now_rfc3339();
    network->updated_at = g_strdup(network->created_at);
    return network;
}
