/* host show: GET /v1/host. */
#include "cli/commands.h"

#include "api/host.h"

static const char *yes_no(int value)
{
    return value < 0 ? "unknown" : value ? "yes" : "no";
}

static char *number_or_unknown(int value)
{
    return value < 0 ? g_strdup("unknown") : g_strdup_printf("%d", value);
}

static void host_table(const ApiHost *host, FILE *out)
{
    g_autoptr(OutputTable) table = output_table_new(NULL, 2);
    g_autofree char *api_version = number_or_unknown(host->kvm_api_version);
    g_autofree char *nested_state = number_or_unknown(host->nested_state_size);
    g_autofree char *groups = number_or_unknown(host->iommu_groups);

    output_table_add(table, "backend:", host->backend);
    output_table_add(table, "reason:", host->reason);
    output_table_add(table, "cpu vendor:", host->cpu_vendor);
    output_table_add(table, "vmx:", yes_no(host->vmx));
    output_table_add(table, "svm:", yes_no(host->svm));
    output_table_add(table, "under a hypervisor:", yes_no(host->hypervisor));
    output_table_add(table, "/dev/kvm:", yes_no(host->kvm_device));
    output_table_add(table, "/dev/kvm opens:", yes_no(host->kvm_device_opens));
    output_table_add(table, "kvm api version:", api_version);
    output_table_add(table, "kvm module:", host->kvm_module);
    output_table_add(table, "nested:", yes_no(host->nested));
    output_table_add(table, "ept/npt:", yes_no(host->ept_npt));
    output_table_add(table, "shadow vmcs:", yes_no(host->shadow_vmcs));
    output_table_add(table, "apicv/avic:", yes_no(host->apicv_avic));
    output_table_add(table, "nested state size:", nested_state);
    output_table_add(table, "pvm:", yes_no(host->pvm));
    output_table_add(table, "iommu groups:", groups);
    output_table_add(table, "vfio:", yes_no(host->vfio));
    output_table_print(table, out);
}

static int host_show(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "show", argc, argv, NULL, NULL, NULL, &status) ||
        !cmd_call(ctl, "GET", "/v1/host", NULL, &body, &status))
        return status;
    json_object *member = ctl_member(body, "host", &error);
    g_autoptr(ApiHost) host = member != NULL ? api_host_from_json(member, &error) : NULL;
    if (host == NULL)
        return ctl_fail_answer(ctl, "host", error);
    if (!ctl_emit(ctl, body))
        host_table(host, stdout);
    return CTL_EXIT_OK;
}

static const CmdVerb host_verbs[] = {
    {"show", host_show, "", "show the host's virtualization capabilities",
     "Prints the backend turtled runs stacks with and why; the CPU (vendor,\n"
     "vmx or svm, whether the host itself runs under a hypervisor); KVM\n"
     "(/dev/kvm, its API version, nested virtualization, EPT/NPT, shadow VMCS,\n"
     "APICv/AVIC, the nested state size); PVM; the IOMMU groups and vfio.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

const CmdNoun cmd_host_noun = {
    "host",
    "the host's virtualization capabilities (operator)",
    host_verbs,
    "The operator only: a tenant's token is refused.",
};
