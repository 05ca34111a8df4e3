#include "daemon/convert.h"

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

static HvCpuMode cpu_mode(const char *cpu, const char **model)
{
    *model = NULL;
    if (cpu == NULL)
        return HV_CPU_DEFAULT;
    if (g_str_equal(cpu, "host-passthrough"))
        return HV_CPU_HOST_PASSTHROUGH;
    if (g_str_equal(cpu, "host-model"))
        return HV_CPU_HOST_MODEL;
    *model = cpu + strlen("named:"); /* the spec's validation allows nothing else */
    return HV_CPU_NAMED;
}

static HvIommu iommu_model(const char *iommu)
{
    if (g_strcmp0(iommu, "intel") == 0)
        return HV_IOMMU_INTEL;
    if (g_strcmp0(iommu, "virtio") == 0)
        return HV_IOMMU_VIRTIO;
    return HV_IOMMU_NONE;
}

HvStackSpec *convert_stack_spec(const ApiStack *stack)
{
    const ApiStackSpec *spec = stack->spec;
    HvStackSpec *hv = hv_stack_spec_new();
    const char *model = NULL;

    hv->id = g_strdup(stack->id);
    hv->name = g_strdup(spec->name);
    hv->tenant = g_strdup(stack->tenant);
    hv->vcpus = spec->vcpus;
    hv->memory_mib = spec->memory_mib;
    hv->cmdline = g_strdup(spec->boot_cmdline);
    hv->cpu_mode = cpu_mode(spec->cpu, &model);
    hv->cpu_model = g_strdup(model);
    hv->iommu = iommu_model(spec->iommu);
    for (guint i = 0; i < spec->devices->len; i++)
        g_ptr_array_add(hv->devices, g_strdup(g_ptr_array_index(spec->devices, i)));
    return hv;
}
