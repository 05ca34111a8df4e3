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
