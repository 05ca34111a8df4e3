/* The stack spec on the wire (POST /v1/stacks), with strict checks of its
 * shape: unknown fields, wrong types, out-of-range integers, bad names, the
 * boot combination and the nesting.cpu/iommu keywords are rejected with
 * API_ERROR_INVALID and a message that starts with the field's path, e.g.
 * "vcpus: must be between 1 and 64".
 *
 * Whether the spec can become a domain (cmdline characters and length, CPU
 * model names, device counts per model, CPU modes per backend, a vIOMMU
 * for devices) is hvcore's hv_stack_spec_validate alone; the daemon calls it through
 * convert_validate_stack_spec before it accepts a request. */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#include "api/cloud_init.h"

/* The schema's bounds (openapi.yaml), for the decoder and the CLI's flags;
 * daemon/convert.c checks at compile time that hvcore's are the same. */
#define API_SPEC_VCPUS_MAX      64
#define API_SPEC_MEMORY_MIN_MIB 128
#define API_SPEC_MEMORY_MAX_MIB (1024 * 1024)
#define API_SPEC_DEVICES_MAX    16
#define API_SPEC_NICS_MAX       8

/* A device a stack asks for (by class) and, once the pool gave it one, the
 * device it holds.  A request names the class only. */
typedef struct {
    char *class_name; /* "class" on the wire */
    char *id;         /* NULL until allocated */
    char *model;      /* NULL until allocated: "edu", "virtio-rng", "vfio" */
    char *address;    /* vfio: the host function it is, once allocated */
} ApiStackDevice;

ApiStackDevice *api_stack_device_new(const char *class_name, const char *id, const char *model,
                                     const char *address);
void api_stack_device_free(ApiStackDevice *device);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiStackDevice, api_stack_device_free)

/* A NIC: the network it joins (the tenant's own, or an external one
 * shared with it), its MAC (kept for the stack's life; the server picks
 * one unless the request gives it) and the IPv4 address libvirt's DHCP
 * leased it (reported, never stored in the spec). */
typedef struct {
    char *network;
    char *mac; /* "52:54:00:12:34:56", lower-case */
    char *ip;  /* NULL until a lease is known */
} ApiStackNic;

ApiStackNic *api_stack_nic_new(const char *network, const char *mac, const char *ip);
void api_stack_nic_free(ApiStackNic *nic);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiStackNic, api_stack_nic_free)
/* "xx:xx:xx:xx:xx:xx", lower-case hex, a unicast address (the first
 * octet's lowest bit clear), not all zeros. */
gboolean api_stack_nic_check_mac(const char *path, const char *mac, GError **error);

typedef struct {
    char *name;
    guint vcpus;
    guint memory_mib;
    /* boot: either kernel (+ optional initrd, cmdline) or disk; image names */
    char *boot_kernel;
    char *boot_initrd;
    char *boot_cmdline;
    char *boot_disk;
    char *firmware;       /* "bios" (the default) or "uefi" */
    gboolean secure_boot; /* uefi only; default FALSE */
    /* nesting */
    char *cpu;   /* NULL (backend default), "host-passthrough", "host-model", "named:<model>" */
    char *iommu; /* "none", "intel", "virtio"; decoders default to intel with devices, else none */
    GPtrArray *devices;       /* of ApiStackDevice *; never NULL */
    GPtrArray *nics;          /* of ApiStackNic *; never NULL */
    gboolean start;           /* default TRUE */
    ApiCloudInit *cloud_init; /* NULL: no seed */
} ApiStackSpec;

ApiStackSpec *api_stack_spec_new(void);
void api_stack_spec_free(ApiStackSpec *spec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiStackSpec, api_stack_spec_free)

/* A request: devices name their class only ("devices[0].id: is assigned by
 * the server" otherwise); NICs name their network and may give a MAC, never
 * an ip. */
ApiStackSpec *api_stack_spec_from_json(json_object *value, GError **error);
/* A stored record: devices may carry the id and model they hold. */
ApiStackSpec *api_stack_spec_from_record_json(json_object *value, GError **error);
ApiStackSpec *api_stack_spec_copy(const ApiStackSpec *spec);
/* The whole spec: a request, and the store's record (cloud_init's user
 * data included). */
json_object *api_stack_spec_to_json(const ApiStackSpec *spec);
/* As shown to clients and carried in a domain's <metadata>: cloud_init's
 * user data only as its digest and size. */
json_object *api_stack_spec_to_public_json(const ApiStackSpec *spec);
/* Checks the shape of a spec built in C (the CLI builds them from flags). */
gboolean api_stack_spec_validate(const ApiStackSpec *spec, GError **error);
