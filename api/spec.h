/* The stack spec on the wire (POST /v1/stacks), with strict validation:
 * unknown fields, wrong types, out-of-range values and bad names are
 * rejected with API_ERROR_INVALID and a message that starts with the field's
 * path, e.g. "vcpus: must be between 1 and 64". */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#define API_SPEC_VCPUS_MAX      64
#define API_SPEC_MEMORY_MIN_MIB 128
#define API_SPEC_MEMORY_MAX_MIB (1024 * 1024)
#define API_SPEC_CMDLINE_MAX    2048
#define API_SPEC_DEVICES_MAX    16

typedef struct {
    char *name;
    guint vcpus;
    guint memory_mib;
    /* boot: either kernel (+ optional initrd, cmdline) or disk; image names */
    char *boot_kernel;
    char *boot_initrd;
    char *boot_cmdline;
    char *boot_disk;
    /* nesting */
    char *cpu;   /* NULL (backend default), "host-passthrough", "host-model", "named:<model>" */
    char *iommu; /* "none" (default), "intel", "virtio" */
    GPtrArray *devices; /* of char *, PCI addresses like "0000:3b:00.0"; never NULL */
    gboolean start;     /* default TRUE */
} ApiStackSpec;

ApiStackSpec *api_stack_spec_new(void);
void api_stack_spec_free(ApiStackSpec *spec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiStackSpec, api_stack_spec_free)

ApiStackSpec *api_stack_spec_from_json(json_object *value, GError **error);
json_object *api_stack_spec_to_json(const ApiStackSpec *spec);
/* Checks a spec built in C (the CLI builds them from flags). */
gboolean api_stack_spec_validate(const ApiStackSpec *spec, GError **error);
