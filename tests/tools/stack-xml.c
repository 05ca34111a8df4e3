/* stack-xml: prints the libvirt domain XML hvcore/domain builds for a stack
 * given on the command line.  System tests and benches use it to boot the
 * reference L1 exactly as turtled would, without the daemon. */
#include <stdio.h>
#include <stdlib.h>

#include "hvcore/domain.h"
#include "hvcore/error.h"

static gboolean parse_iommu(const char *text, HvIommu *iommu)
{
    if (g_strcmp0(text, "none") == 0)
        *iommu = HV_IOMMU_NONE;
    else if (g_strcmp0(text, "intel") == 0)
        *iommu = HV_IOMMU_INTEL;
    else if (g_strcmp0(text, "virtio") == 0)
        *iommu = HV_IOMMU_VIRTIO;
    else
        return FALSE;
    return TRUE;
}

int main(int argc, char **argv)
{
    g_autofree char *backend_text = g_strdup("tcg");
    g_autofree char *iommu_text = g_strdup("none");
    g_autofree char *cpu_model = NULL;
    g_autoptr(HvStackSpec) spec = hv_stack_spec_new();
    gint vcpus = 1, memory_mib = 512;
    GOptionEntry entries[] = {
        {"backend", 0, 0, G_OPTION_ARG_STRING, &backend_text, "kvm, tcg or test", "B"},
        {"id", 0, 0, G_OPTION_ARG_STRING, &spec->id, "stack UUID", "UUID"},
        {"name", 0, 0, G_OPTION_ARG_STRING, &spec->name, "stack name", "NAME"},
        {"tenant", 0, 0, G_OPTION_ARG_STRING, &spec->tenant, "tenant name", "NAME"},
        {"vcpus", 0, 0, G_OPTION_ARG_INT, &vcpus, "vCPUs (1)", "N"},
        {"memory-mib", 0, 0, G_OPTION_ARG_INT, &memory_mib, "memory in MiB (512)", "M"},
        {"kernel", 0, 0, G_OPTION_ARG_FILENAME, &spec->kernel_path, "kernel image", "PATH"},
        {"initrd", 0, 0, G_OPTION_ARG_FILENAME, &spec->initrd_path, "initrd image", "PATH"},
        {"cmdline", 0, 0, G_OPTION_ARG_STRING, &spec->cmdline, "kernel command line", "TEXT"},
        {"disk", 0, 0, G_OPTION_ARG_FILENAME, &spec->disk_path, "boot disk", "PATH"},
        {"disk-format", 0, 0, G_OPTION_ARG_STRING, &spec->disk_format, "qcow2 or raw", "F"},
        {"cpu-model", 0, 0, G_OPTION_ARG_STRING, &cpu_model, "named CPU model", "MODEL"},
        {"iommu", 0, 0, G_OPTION_ARG_STRING, &iommu_text, "none, intel or virtio", "I"},
        {"console-log", 0, 0, G_OPTION_ARG_FILENAME, &spec->console_log, "serial log", "PATH"},
        {"record", 0, 0, G_OPTION_ARG_STRING, &spec->record_json, "stack record JSON", "JSON"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) context = g_option_context_new("- print a stack's domain XML");
    g_autoptr(GError) error = NULL;
    HvBackend backend;

    g_option_context_add_main_entries(context, entries, NULL);
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        fprintf(stderr, "stack-xml: %s\n", error->message);
        return 2;
    }
    if (!hv_backend_from_string(backend_text, &backend) || !parse_iommu(iommu_text, &spec->iommu) ||
        vcpus < 1 || memory_mib < 1) {
        fprintf(stderr, "stack-xml: bad --backend, --iommu, --vcpus or --memory-mib\n");
        return 2;
    }
    spec->vcpus = (guint)vcpus;
    spec->memory_mib = (guint)memory_mib;
    if (cpu_model) {
        spec->cpu_mode = HV_CPU_NAMED;
        spec->cpu_model = g_steal_pointer(&cpu_model);
    }
    if (!spec->record_json)
        spec->record_json = g_strdup("{}");

    g_autoptr(HvHostReport) host = NULL;
    if (backend == HV_BACKEND_KVM) {
        host = hv_probe_host("/", &hv_kvm_system_ops, &error);
        if (!host) {
            fprintf(stderr, "stack-xml: %s\n", error->message);
            return 1;
        }
    }
    g_autofree char *xml = hv_domain_build_xml(spec, backend, host, &error);
    if (!xml) {
        fprintf(stderr, "stack-xml: %s\n", error->message);
        return 1;
    }
    fputs(xml, stdout);
    return 0;
}
