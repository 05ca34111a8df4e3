/* The host capability report on the wire (GET /v1/host, turtled --probe). */
#pragma once

#include <glib.h>
#include <json-c/json.h>

/* Tri-state figures use -1 for "unknown" and encode as JSON null. */
typedef struct {
    char *backend; /* "kvm" | "tcg" | "test" */
    char *reason;
    char *cpu_vendor;
    gboolean vmx;
    gboolean svm;
    gboolean hypervisor;
    gboolean kvm_device;
    gboolean kvm_device_opens;
    int kvm_api_version;
    int nested_state_size;
    char *kvm_module; /* NULL encodes as null */
    int nested;
    int ept_npt;
    int shadow_vmcs;
    int apicv_avic;
    gboolean pvm;
    int iommu_groups;
    gboolean vfio;
} ApiHost;

void api_host_free(ApiHost *host);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiHost, api_host_free)

/* {"backend":..., "reason":..., "cpu": {...}, "kvm": {...}, "iommu": {...}} */
json_object *api_host_to_json(const ApiHost *host);
/* The reverse, for turtlectl; strict: unknown fields and wrong types fail. */
ApiHost *api_host_from_json(json_object *value, GError **error);
