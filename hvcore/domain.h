/* Stack spec -> libvirt domain XML, and back from a domain's <metadata>.
 *
 * The XML is built through libxml2 / libvirt-gconfig, never pasted together,
 * so no tenant-supplied value can inject markup. */
#pragma once

#include <glib.h>

#include "hvcore/network.h"
#include "hvcore/probe.h"

/* The namespace of our element inside a domain's <metadata>. */
#define HV_DOMAIN_METADATA_URI    "urn:turtles:stack:1"
#define HV_DOMAIN_METADATA_PREFIX "turtles"
/* Libvirt domain names are "turtles-<stack id>": unique on a host and across hosts. */
#define HV_DOMAIN_NAME_PREFIX "turtles-"
/* The named CPU model the tcg backend emulates when the spec names none. */
#define HV_TCG_DEFAULT_CPU_MODEL "EPYC"

/* What a stack may ask for (hv_stack_spec_validate).  api/spec.h repeats the
 * ones its schema states (vcpus, memory, device count); daemon/convert.c
 * checks at compile time that both agree. */
#define HV_SPEC_VCPUS_MAX      64
#define HV_SPEC_MEMORY_MIN_MIB 128
#define HV_SPEC_MEMORY_MAX_MIB (1024 * 1024)
#define HV_SPEC_CMDLINE_MAX    2048 /* bytes */
#define HV_SPEC_CPU_MODEL_MAX  64
#define HV_SPEC_DEVICES_MAX    16

typedef enum {
    HV_CPU_DEFAULT,          /* backend's choice: host-passthrough (kvm), EPYC (tcg) */
    HV_CPU_HOST_PASSTHROUGH, /* kvm only */
    HV_CPU_HOST_MODEL,       /* kvm only */
    HV_CPU_NAMED,            /* cpu_model names it */
} HvCpuMode;

typedef enum {
    HV_FIRMWARE_BIOS, /* SeaBIOS, QEMU's default */
    HV_FIRMWARE_UEFI, /* OVMF, picked by libvirt from the firmware descriptors */
} HvFirmware;

typedef enum {
    HV_IOMMU_NONE,
    HV_IOMMU_INTEL,
    HV_IOMMU_VIRTIO,
} HvIommu;

/* The device models a stack can hold.  Each comes from the operator's pool
 * (the daemon's device classes) and sits behind the L1's vIOMMU. */
typedef enum {
    HV_DEVICE_VFIO,       /* a host PCI function: <hostdev managed='yes'> (VFIO) */
    HV_DEVICE_EDU,        /* QEMU's edu test device (1234:11e8), QEMU command-line passthrough */
    HV_DEVICE_VIRTIO_RNG, /* virtio-rng-pci with iommu='on': libvirt-native, hot-pluggable */
} HvDeviceModel;

/* At most this many edu devices per stack: each takes a fixed slot on
 * pcie.0 (HV_EDU_FIRST_SLOT + n), which libvirt's own address assignment
 * leaves alone in practice (it fills slots from 1 up). */
#define HV_EDU_MAX        4
#define HV_EDU_FIRST_SLOT 0x10
/* Spare PCIe root ports a stack with a vIOMMU gets, so that devices can be
 * hot-plugged (q35 has no hot-pluggable slot on pcie.0). */
#define HV_SPARE_ROOT_PORTS 4
/* Device ids: [a-z0-9][a-z0-9.-]{0,62}; a device's libvirt alias (and
 * QEMU id) is HV_DEVICE_ALIAS_PREFIX + id. */
#define HV_DEVICE_ID_MAX       63
#define HV_DEVICE_ALIAS_PREFIX "ua-turtles-"
/* libvirt's namespace for QEMU command-line passthrough (edu). */
#define HV_DOMAIN_QEMU_NS_URI "http://libvirt.org/schemas/domain/qemu/1.0"

typedef struct {
    char *id; /* the pool's id for this device */
    HvDeviceModel model;
    char *pci_address; /* HV_DEVICE_VFIO only: the host function, "0000:3b:00.0" */
} HvDevice;

HvDevice *hv_device_new(const char *id, HvDeviceModel model, const char *pci_address);
void hv_device_free(HvDevice *device);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvDevice, hv_device_free)
/* "vfio", "edu", "virtio-rng"; from_string FALSE for anything else. */
const char *hv_device_model_to_string(HvDeviceModel model);
gboolean hv_device_model_from_string(const char *text, HvDeviceModel *model);
/* libvirt can attach and detach it on a running domain (not edu). */
gboolean hv_device_model_hotpluggable(HvDeviceModel model);

/* Everything hvcore needs to know about a stack.  Image names have already
 * been resolved to file paths by the caller. */
typedef struct {
    char *id;     /* stack UUID */
    char *name;   /* stack name */
    char *tenant; /* owning tenant's name */
    guint vcpus;
    guint memory_mib;

    /* Exactly one of kernel_path / disk_path is set. */
    char *kernel_path;
    char *initrd_path; /* optional, kernel boot only */
    char *cmdline;     /* optional, kernel boot only */
    char *disk_path;
    char *disk_format; /* "qcow2" or "raw" */

    HvFirmware firmware;
    gboolean secure_boot; /* HV_FIRMWARE_UEFI only: a secure-boot firmware with keys enrolled */
    char *nvram_path;     /* HV_FIRMWARE_UEFI: the stack's UEFI variables (libvirt fills it
                           * from the firmware's template at first start) */
    char *seed_path;      /* optional: the cloud-init seed, attached read-only */

    HvCpuMode cpu_mode;
    char *cpu_model; /* HV_CPU_NAMED only */
    HvIommu iommu;
    GPtrArray *devices; /* of HvDevice *, owned; a vIOMMU (iommu != NONE) is required */
    GPtrArray *nics;    /* of HvNic *, owned; never NULL; at most HV_NETWORK_NICS_MAX */

    char *console_log; /* the serial console is written here */
    char *record_json; /* the stack record, carried in <metadata> */
} HvStackSpec;

HvStackSpec *hv_stack_spec_new(void);
void hv_stack_spec_free(HvStackSpec *spec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvStackSpec, hv_stack_spec_free)

/* "turtles-<id>" */
char *hv_domain_name_for(const char *stack_id);

/* The one judge of whether what a tenant asked for can become a domain on
 * @backend (and, for kvm, on @host): name, vcpus, memory_mib, cmdline, cpu
 * mode and model, iommu, devices, nics (a NIC's mac may still be NULL).  It reads none of the
 * fields the host fills in later (id, tenant, boot paths, console_log, record_json), so the daemon
 * can call it before accepting a request.  Messages start with the field as the API names it
 * ("vcpus: ...", "boot.cmdline: ...", "nesting.cpu: ...", "devices[2]: ...").  Fails with
 * HV_ERROR_INVALID for a bad spec and HV_ERROR_UNSUPPORTED when the host cannot nest (kvm with
 * nested=0, saying how to turn it on); a bad spec is reported first. */
gboolean hv_stack_spec_validate(const HvStackSpec *spec, HvBackend backend,
                                const HvHostReport *host, GError **error);

/* Builds the domain XML for @spec on @backend.  @host is the probe report of
 * this host; it may be NULL for the tcg and test backends.  Calls
 * hv_stack_spec_validate first, then checks the host-supplied fields; fails
 * with its codes. */
char *hv_domain_build_xml(const HvStackSpec *spec, HvBackend backend, const HvHostReport *host,
                          GError **error);

/* The XML of @device alone (a <devices> child), for hot-plug: virtio-rng
 * and vfio.  edu is HV_ERROR_UNSUPPORTED: it enters through QEMU
 * command-line passthrough, which libvirt cannot hot-plug. */
char *hv_domain_device_xml(const HvDevice *device, GError **error);

/* The pool ids of the devices a domain XML holds: those with an alias
 * HV_DEVICE_ALIAS_PREFIX + id, and edu devices by their QEMU id.  Empty
 * array when none; NULL with HV_ERROR_INVALID when the XML does not parse. */
GPtrArray *hv_domain_parse_device_ids(const char *domain_xml, GError **error);

/* Whether @device_id entered @domain_xml through QEMU command-line
 * passthrough (edu): libvirt has no alias for it and cannot detach it.
 * FALSE too when the XML does not parse. */
gboolean hv_domain_device_is_passthrough(const char *domain_xml, const char *device_id);

/* The NICs of ours a domain XML holds (HvNic *, owned; interfaces on a
 * libvirt network HV_NETWORK_NAME_PREFIX + id), in document order:
 * network_id, mac, and from a filterref's parameters filter, gateway,
 * own_cidr and guard_cidr.  Empty array when none; NULL with
 * HV_ERROR_INVALID when the XML does not parse. */
GPtrArray *hv_domain_parse_nics(const char *domain_xml, GError **error);

/* What a domain carries in its <metadata>: enough to adopt it. */
typedef struct {
    char *id;
    char *name;
    char *tenant;
    char *record_json;
} HvStackIdentity;

void hv_stack_identity_free(HvStackIdentity *identity);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvStackIdentity, hv_stack_identity_free)

/* Reads our <metadata> element from a full domain XML document.  Fails with
 * HV_ERROR_NOT_FOUND when the domain is not one of ours. */
HvStackIdentity *hv_domain_parse_identity(const char *domain_xml, GError **error);

/* @domain_xml with the stack record in our <metadata> replaced by
 * @record_json: a migration carries the record as it is when the memory
 * moves (the NICs' last leases included).  HV_ERROR_NOT_FOUND when the
 * domain is not one of ours. */
char *hv_domain_set_record(const char *domain_xml, const char *record_json, GError **error);

/* @domain_xml with the nwfilter of each NIC whose MAC is a key of @ips
 * (char * -> char *) told that NIC's IPv4 address (parameter IP), so that
 * the filter need not learn it again from DHCP: after a migration, the
 * peer's filter lets the L1's traffic through from the first packet. */
char *hv_domain_set_nic_ips(const char *domain_xml, GHashTable *ips, GError **error);

/* The files a domain boots from, as its (live) XML names them; NULL where it
 * has none.  disk_backing is the image under the first disk's overlay. */
typedef struct {
    char *kernel;
    char *initrd;
    char *disk;
    char *disk_backing;
    char *disk_backing_format;
} HvBootFiles;

void hv_boot_files_free(HvBootFiles *files);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvBootFiles, hv_boot_files_free)

HvBootFiles *hv_domain_parse_boot_files(const char *domain_xml, GError **error);
