#include "hvcore/domain.h"

#include <stdarg.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "hvcore/error.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlParserCtxt, xmlFreeParserCtxt)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathContext, xmlXPathFreeContext)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathObject, xmlXPathFreeObject)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlBuffer, xmlBufferFree)

HvStackSpec *hv_stack_spec_new(void)
{
    HvStackSpec *spec = g_new0(HvStackSpec, 1);

    spec->devices = g_ptr_array_new_with_free_func((GDestroyNotify)hv_device_free);
    spec->nics = g_ptr_array_new_with_free_func((GDestroyNotify)hv_nic_free);
    return spec;
}

HvDevice *hv_device_new(const char *id, HvDeviceModel model, const char *pci_address)
{
    HvDevice *device = g_new0(HvDevice, 1);
    device->id = g_strdup(id);
    device->model = model;
    device->pci_address = g_strdup(pci_address);
    return device;
}

void hv_device_free(HvDevice *device)
{
    if (!device)
        return;
    g_free(device->id);
    g_free(device->pci_address);
    g_free(device);
}

static const char *const device_models[] = {
    [HV_DEVICE_VFIO] = "vfio",
    [HV_DEVICE_EDU] = "edu",
    [HV_DEVICE_VIRTIO_RNG] = "virtio-rng",
};

const char *hv_device_model_to_string(HvDeviceModel model)
{
    return (guint)model < G_N_ELEMENTS(device_models) ? device_models[model] : "unknown";
}

gboolean hv_device_model_from_string(const char *text, HvDeviceModel *model)
{
    for (guint i = 0; text && i < G_N_ELEMENTS(device_models); i++) {
        if (g_str_equal(text, device_models[i])) {
            *model = (HvDeviceModel)i;
            return TRUE;
        }
    }
    return FALSE;
}

gboolean hv_device_model_hotpluggable(HvDeviceModel model)
{
    return model != HV_DEVICE_EDU;
}

void hv_stack_spec_free(HvStackSpec *spec)
{
    if (!spec)
        return;
    g_free(spec->id);
    g_free(spec->name);
    g_free(spec->tenant);
    g_free(spec->kernel_path);
    g_free(spec->initrd_path);
    g_free(spec->cmdline);
    g_free(spec->disk_path);
    g_free(spec->disk_format);
    g_free(spec->nvram_path);
    g_free(spec->seed_path);
    g_free(spec->cpu_model);
    if (spec->devices)
        g_ptr_array_unref(spec->devices);
    if (spec->nics)
        g_ptr_array_unref(spec->nics);
    g_free(spec->console_log);
    g_free(spec->record_json);
    g_free(spec);
}

void hv_stack_identity_free(HvStackIdentity *identity)
{
    if (!identity)
        return;
    g_free(identity->id);
    g_free(identity->name);
    g_free(identity->tenant);
    g_free(identity->record_json);
    g_free(identity);
}

char *hv_domain_name_for(const char *stack_id)
{
    g_return_val_if_fail(stack_id != NULL, NULL);
    return g_strconcat(HV_DOMAIN_NAME_PREFIX, stack_id, NULL);
}

/* ---- validation ---------------------------------------------------------- */

/* Messages start with the field as the API names it: the daemon passes them
 * to tenants as they are. */
static gboolean set_invalid(GError **error, const char *field, const char *format, ...)
    G_GNUC_PRINTF(3, 4);

static gboolean set_invalid(GError **error, const char *field, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    g_autofree char *message = g_strdup_vprintf(format, args);
    va_end(args);
    g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "%s: %s", field, message);
    return FALSE;
}

/* XML 1.0's Char production (surrogates cannot come out of valid UTF-8).
 * The XML API escapes markup, but libxml2 would write any other character as
 * a character reference that no parser, libvirt's included, accepts. */
static gboolean is_xml_char(gunichar c)
{
    if (c < 0x20)
        return c == '\t' || c == '\n' || c == '\r';
    return c != 0xFFFE && c != 0xFFFF;
}

static gboolean is_xml_text(const char *text)
{
    if (!g_utf8_validate(text, -1, NULL))
        return FALSE;
    for (const char *p = text; *p; p = g_utf8_next_char(p)) {
        if (!is_xml_char(g_utf8_get_char(p)))
            return FALSE;
    }
    return TRUE;
}

static gboolean has_control_chars(const char *text)
{
    for (const char *p = text; *p; p = g_utf8_next_char(p)) {
        if (g_unichar_iscntrl(g_utf8_get_char(p)))
            return TRUE;
    }
    return FALSE;
}

static gboolean check_text(const char *field, const char *value, GError **error)
{
    if (value && !is_xml_text(value))
        return set_invalid(error, field,
                           "is not valid UTF-8 or contains characters XML cannot carry");
    return TRUE;
}

static gboolean check_required(const char *field, const char *value, GError **error)
{
    if (!value || !*value)
        return set_invalid(error, field, "is required");
    return check_text(field, value, error);
}

/* A one-line label: libvirt refuses titles with newlines, and a name with
 * control characters is a bug upstream of us. */
static gboolean check_label(const char *field, const char *value, GError **error)
{
    if (!check_required(field, value, error))
        return FALSE;
    if (has_control_chars(value))
        return set_invalid(error, field, "must not contain control characters");
    return TRUE;
}

/* libvirt resolves relative paths against its own working directory. */
static gboolean check_path(const char *field, const char *value, GError **error)
{
    if (!value)
        return TRUE;
    if (!check_label(field, value, error))
        return FALSE;
    if (!g_path_is_absolute(value))
        return set_invalid(error, field, "must be an absolute path: '%s'", value);
    return TRUE;
}

static gboolean check_range(const char *field, guint value, guint min, guint max, GError **error)
{
    if (value < min || value > max)
        return set_invalid(error, field, "must be between %u and %u", min, max);
    return TRUE;
}

/* It goes into <cmdline> and from there onto the L1 kernel's command line:
 * one line, no escapes, and only what XML can carry. */
static gboolean check_cmdline(const char *cmdline, GError **error)
{
    if (!cmdline)
        return TRUE;
    if (strlen(cmdline) > HV_SPEC_CMDLINE_MAX)
        return set_invalid(error, "boot.cmdline", "must be at most %d bytes", HV_SPEC_CMDLINE_MAX);
    if (!g_utf8_validate(cmdline, -1, NULL))
        return set_invalid(error, "boot.cmdline", "must be valid UTF-8");
    for (const char *p = cmdline; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (g_unichar_iscntrl(c))
            return set_invalid(error, "boot.cmdline",
                               "must not contain control characters (U+%04X at byte %td)", c,
                               p - cmdline);
        if (!is_xml_char(c))
            return set_invalid(error, "boot.cmdline",
                               "must not contain U+%04X (at byte %td): XML cannot carry it", c,
                               p - cmdline);
    }
    return TRUE;
}

#define CPU_MODEL_RULE "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
G_STATIC_ASSERT(HV_SPEC_CPU_MODEL_MAX == 64); /* CPU_MODEL_RULE says so */

static gboolean is_cpu_model_name(const char *model)
{
    size_t len = strlen(model);

    if (len < 1 || len > HV_SPEC_CPU_MODEL_MAX || !g_ascii_isalnum(model[0]))
        return FALSE;
    for (const char *p = model; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
            return FALSE;
    }
    return TRUE;
}

static gboolean check_cpu(const HvStackSpec *spec, HvBackend backend, GError **error)
{
    switch (spec->cpu_mode) {
    case HV_CPU_NAMED:
        if (!spec->cpu_model)
            return set_invalid(error, "nesting.cpu",
                               "must be host-passthrough, host-model or named:<model>");
        if (!is_cpu_model_name(spec->cpu_model))
            return set_invalid(error, "nesting.cpu", "model must match " CPU_MODEL_RULE);
        return TRUE;
    case HV_CPU_HOST_PASSTHROUGH:
    case HV_CPU_HOST_MODEL:
        /* Only KVM has a host CPU to pass through; tcg (and test, which
         * stands in for it) emulate one. */
        if (backend != HV_BACKEND_KVM)
            return set_invalid(error, "nesting.cpu",
                               "%s needs hardware virtualization (the kvm backend); this host "
                               "emulates the CPU, so use the default or a named model",
                               spec->cpu_mode == HV_CPU_HOST_MODEL ? "host-model"
                                                                   : "host-passthrough");
        /* fall through */
    case HV_CPU_DEFAULT:
        if (spec->cpu_model)
            return set_invalid(error, "nesting.cpu", "a model is only valid with named:<model>");
        return TRUE;
    }
    return set_invalid(error, "nesting.cpu", "mode %d is unknown", (int)spec->cpu_mode);
}

typedef struct {
    guint domain, bus, slot, function;
} PciAddress;

/* Lower-case only, as sysfs and libvirt's node device names spell it, so
 * that one device has one spelling and duplicates are plain string matches. */
static gboolean parse_hex_field(const char *text, gsize digits, guint *value)
{
    guint v = 0;

    for (gsize i = 0; i < digits; i++) {
        if (!g_ascii_isdigit(text[i]) && !(text[i] >= 'a' && text[i] <= 'f'))
            return FALSE;
        v = v * 16 + (guint)g_ascii_xdigit_value(text[i]);
    }
    *value = v;
    return TRUE;
}

/* Exactly the sysfs form "dddd:bb:ss.f"; a PCI slot is 5 bits, a function 3. */
static gboolean parse_pci_address(const char *text, PciAddress *addr)
{
    if (!text || strlen(text) != 12 || text[4] != ':' || text[7] != ':' || text[10] != '.')
        return FALSE;
    if (!parse_hex_field(text, 4, &addr->domain) || !parse_hex_field(text + 5, 2, &addr->bus) ||
        !parse_hex_field(text + 8, 2, &addr->slot) ||
        !parse_hex_field(text + 11, 1, &addr->function))
        return FALSE;
    return addr->slot <= 0x1f && addr->function <= 7;
}

#define DEVICE_ID_RULE "^[a-z0-9][a-z0-9.-]{0,62}$"
G_STATIC_ASSERT(HV_DEVICE_ID_MAX == 63); /* DEVICE_ID_RULE says so */

/* It becomes part of a libvirt alias and a QEMU id (HV_DEVICE_ALIAS_PREFIX +
 * id): nothing QEMU's option syntax (',' '=') or XML would read as markup. */
static gboolean is_device_id(const char *id)
{
    size_t len = id ? strlen(id) : 0;

    if (len < 1 || len > HV_DEVICE_ID_MAX || !(g_ascii_isdigit(id[0]) || g_ascii_islower(id[0])))
        return FALSE;
    for (const char *p = id; *p; p++) {
        if (!g_ascii_isdigit(*p) && !g_ascii_islower(*p) && *p != '.' && *p != '-')
            return FALSE;
    }
    return TRUE;
}

/* One device on its own: id, model, and the host function of a vfio one. */
static gboolean check_device(const char *field, const HvDevice *device, PciAddress *addr,
                             GError **error)
{
    if (!is_device_id(device->id))
        return set_invalid(error, field, "id must match " DEVICE_ID_RULE);
    switch (device->model) {
    case HV_DEVICE_VFIO:
        if (!parse_pci_address(device->pci_address, addr))
            return set_invalid(error, field,
                               "must be a PCI address like 0000:3b:00.0 (lower-case hex, "
                               "slot 00-1f, function 0-7)");
        return TRUE;
    case HV_DEVICE_EDU:
    case HV_DEVICE_VIRTIO_RNG:
        if (device->pci_address)
            return set_invalid(error, field, "a PCI address is only for vfio devices, not %s",
                               hv_device_model_to_string(device->model));
        return TRUE;
    }
    return set_invalid(error, field, "model %d is unknown (vfio, edu or virtio-rng)",
                       (int)device->model);
}

static gboolean check_devices(const GPtrArray *devices, HvIommu iommu, GError **error)
{
    guint edu = 0;

    if (!devices || devices->len == 0)
        return TRUE;
    if (devices->len > HV_SPEC_DEVICES_MAX)
        return set_invalid(error, "devices", "must have at most %d entries", HV_SPEC_DEVICES_MAX);
    for (guint i = 0; i < devices->len; i++) {
        const HvDevice *device = g_ptr_array_index(devices, i);
        g_autofree char *field = g_strdup_printf("devices[%u]", i);
        PciAddress addr;
        if (!check_device(field, device, &addr, error))
            return FALSE;
        /* At most 16 entries: quadratic is cheaper than a hash table. */
        for (guint j = 0; j < i; j++) {
            const HvDevice *other = g_ptr_array_index(devices, j);
            if (g_str_equal(device->id, other->id))
                return set_invalid(error, field, "id '%s' duplicates devices[%u]", device->id, j);
            if (device->model == HV_DEVICE_VFIO && other->model == HV_DEVICE_VFIO &&
                g_str_equal(device->pci_address, other->pci_address))
                return set_invalid(error, field, "duplicates devices[%u] (PCI function %s)", j,
                                   device->pci_address);
        }
        if (device->model == HV_DEVICE_EDU && ++edu > HV_EDU_MAX)
            return set_invalid(error, field,
                               "at most %d edu devices per stack (each takes a fixed PCI slot)",
                               HV_EDU_MAX);
    }
    /* L1 passes its devices on to L2 through its own IOMMU: without one it
     * could only keep them. */
    if (iommu == HV_IOMMU_NONE)
        return set_invalid(error, "nesting.iommu",
                           "none cannot carry devices: the L1 needs a vIOMMU to pass them on "
                           "to its guests; use intel or virtio");
    return TRUE;
}

/* "nic<N>": the alias a NIC takes (HV_DEVICE_ALIAS_PREFIX "nic<N>"). */
static gboolean is_nic_alias_id(const char *id)
{
    if (!g_str_has_prefix(id, "nic") || !id[3])
        return FALSE;
    for (const char *p = id + 3; *p; p++) {
        if (!g_ascii_isdigit(*p))
            return FALSE;
    }
    return TRUE;
}

/* What the tenant gives (the network) and, when set already, the MAC the
 * host chose. */
static gboolean check_nics(const HvStackSpec *spec, GError **error)
{
    const GPtrArray *nics = spec->nics;

    if (!nics || nics->len == 0)
        return TRUE;
    if (nics->len > HV_NETWORK_NICS_MAX)
        return set_invalid(error, "nics", "at most %d", HV_NETWORK_NICS_MAX);
    for (guint i = 0; i < nics->len; i++) {
        const HvNic *nic = g_ptr_array_index(nics, i);
        g_autofree char *field = g_strdup_printf("nics[%u]", i);

        if (!nic->network_id || !nic->network_id[0])
            return set_invalid(error, field, "network is required");
        if (!g_uuid_string_is_valid(nic->network_id))
            return set_invalid(error, field, "network id is not a UUID: '%s'", nic->network_id);
        if (nic->mac && !hv_nic_mac_is_valid(nic->mac))
            return set_invalid(error, field,
                               "mac: '%s' is not a unicast MAC xx:xx:xx:xx:xx:xx (lower-case hex)",
                               nic->mac);
        for (guint j = 0; nic->mac && j < i; j++) {
            const HvNic *other = g_ptr_array_index(nics, j);
            if (g_strcmp0(nic->mac, other->mac) == 0)
                return set_invalid(error, field, "mac: %s duplicates nics[%u]", nic->mac, j);
        }
    }
    /* A device id "nic<N>" would take a NIC's alias. */
    for (guint i = 0; spec->devices && i < spec->devices->len; i++) {
        const HvDevice *device = g_ptr_array_index(spec->devices, i);
        if (device->id && is_nic_alias_id(device->id))
            return set_invalid(error, "devices",
                               "id '%s' is reserved for NICs (nic<N>) when a stack has nics",
                               device->id);
    }
    return TRUE;
}

/* What the host fills in for each NIC: the MAC, and the guard's
 * parameters when it filters a NIC on a nat/isolated network. */
static gboolean check_nic_host_fields(const GPtrArray *nics, GError **error)
{
    for (guint i = 0; nics && i < nics->len; i++) {
        const HvNic *nic = g_ptr_array_index(nics, i);
        g_autofree char *field = g_strdup_printf("nics[%u]", i);

        if (!nic->mac)
            return set_invalid(error, field, "mac is required");
        if (!nic->filter || !nic->gateway)
            continue;
        guint32 gateway;
        g_autofree char *gateway_cidr = g_strconcat(nic->gateway, "/32", NULL);
        g_autoptr(GError) local = NULL;
        if (!hv_ipv4_cidr_parse(gateway_cidr, &gateway, NULL, &local))
            return set_invalid(error, field, "gateway '%s' is not an IPv4 address", nic->gateway);
        if (!hv_ipv4_cidr_parse(nic->own_cidr, NULL, NULL, &local) ||
            (nic->guard_cidr && !hv_ipv4_cidr_parse(nic->guard_cidr, NULL, NULL, &local)))
            return set_invalid(error, field, "%s", local->message);
    }
    return TRUE;
}

/* What a tenant asked for; hv_stack_spec_validate adds the host. */
static gboolean check_tenant_fields(const HvStackSpec *spec, HvBackend backend, GError **error)
{
    if (!check_label("name", spec->name, error) ||
        !check_range("vcpus", spec->vcpus, 1, HV_SPEC_VCPUS_MAX, error) ||
        !check_range("memory_mib", spec->memory_mib, HV_SPEC_MEMORY_MIN_MIB, HV_SPEC_MEMORY_MAX_MIB,
                     error) ||
        !check_cmdline(spec->cmdline, error) || !check_cpu(spec, backend, error))
        return FALSE;
    if (spec->iommu != HV_IOMMU_NONE && spec->iommu != HV_IOMMU_INTEL &&
        spec->iommu != HV_IOMMU_VIRTIO)
        return set_invalid(error, "nesting.iommu", "must be one of none, intel, virtio");
    if (spec->firmware != HV_FIRMWARE_BIOS && spec->firmware != HV_FIRMWARE_UEFI)
        return set_invalid(error, "boot.firmware", "must be bios or uefi");
    if (spec->secure_boot && spec->firmware != HV_FIRMWARE_UEFI)
        return set_invalid(error, "boot.secure_boot", "needs UEFI firmware");
    return check_devices(spec->devices, spec->iommu, error) && check_nics(spec, error);
}

/* What the daemon fills in after accepting the request. */
static gboolean check_host_fields(const HvStackSpec *spec, GError **error)
{
    if (!check_required("id", spec->id, error))
        return FALSE;
    /* The id becomes the domain's <uuid>. */
    if (!g_uuid_string_is_valid(spec->id))
        return set_invalid(error, "id", "is not a UUID: '%s'", spec->id);
    if (!check_label("tenant", spec->tenant, error))
        return FALSE;

    if (!!spec->kernel_path == !!spec->disk_path)
        return set_invalid(error, "kernel_path",
                           "exactly one of kernel_path and disk_path must be set");
    if (!check_path("kernel_path", spec->kernel_path, error) ||
        !check_path("initrd_path", spec->initrd_path, error) ||
        !check_path("disk_path", spec->disk_path, error))
        return FALSE;
    if (spec->disk_path) {
        if (spec->initrd_path)
            return set_invalid(error, "initrd_path",
                               "is only valid with kernel boot (kernel_path)");
        if (spec->cmdline)
            return set_invalid(error, "boot.cmdline",
                               "is only valid with kernel boot (kernel_path)");
        if (g_strcmp0(spec->disk_format, "qcow2") != 0 && g_strcmp0(spec->disk_format, "raw") != 0)
            return set_invalid(error, "disk_format", "must be 'qcow2' or 'raw' for disk boot");
    } else if (spec->disk_format) {
        return set_invalid(error, "disk_format", "is only valid with disk boot (disk_path)");
    }

    if ((spec->firmware == HV_FIRMWARE_UEFI) != (spec->nvram_path != NULL))
        return set_invalid(error, "nvram_path", "must be set exactly for UEFI firmware");
    if (!check_path("nvram_path", spec->nvram_path, error) ||
        !check_path("seed_path", spec->seed_path, error))
        return FALSE;

    if (!spec->console_log)
        return set_invalid(error, "console_log", "is required");
    if (!check_path("console_log", spec->console_log, error) ||
        !check_nic_host_fields(spec->nics, error))
        return FALSE;
    return check_text("record_json", spec->record_json, error);
}

/* ---- XML helpers ------------------------------------------------------------ */

/* Text goes in through xmlNodeAddContent: xmlNewChild's content argument is
 * parsed for entity references, so a '&' from a tenant would be markup. */
static xmlNodePtr add_element(xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *text)
{
    xmlNodePtr node = xmlNewChild(parent, ns, BAD_CAST name, NULL);

    if (text)
        xmlNodeAddContent(node, BAD_CAST text);
    return node;
}

static xmlNodePtr add_element_uint(xmlNodePtr parent, const char *name, guint64 value)
{
    g_autofree char *text = g_strdup_printf("%" G_GUINT64_FORMAT, value);

    return add_element(parent, NULL, name, text);
}

/* xmlNewProp stores the value as literal text (unlike xmlNewDocProp). */
static void set_attr(xmlNodePtr node, const char *name, const char *value)
{
    xmlNewProp(node, BAD_CAST name, BAD_CAST value);
}

static void add_feature(xmlNodePtr cpu, const char *name)
{
    xmlNodePtr feature = add_element(cpu, NULL, "feature", NULL);

    set_attr(feature, "policy", "require");
    set_attr(feature, "name", name);
}

/* ---- CPU ----------------------------------------------------------------- */

typedef enum {
    VENDOR_INTEL,
    VENDOR_AMD,
} Vendor;

static gboolean host_vendor(const HvHostReport *host, Vendor *vendor)
{
    if (g_strcmp0(host->cpu_vendor, "GenuineIntel") == 0)
        *vendor = VENDOR_INTEL;
    else if (g_strcmp0(host->cpu_vendor, "AuthenticAMD") == 0 ||
             g_strcmp0(host->cpu_vendor, "HygonGenuine") == 0)
        *vendor = VENDOR_AMD;
    /* An unfamiliar vendor string: the loaded kvm module still says which
     * extension L0 nests. */
    else if (g_strcmp0(host->kvm_module, "kvm_intel") == 0)
        *vendor = VENDOR_INTEL;
    else if (g_strcmp0(host->kvm_module, "kvm_amd") == 0)
        *vendor = VENDOR_AMD;
    else
        return FALSE;
    return TRUE;
}

/* Refuses hosts that cannot run an L1 hypervisor under KVM, saying how to
 * fix them: a stack created there would boot but its hypervisor would not. */
static gboolean check_kvm_host(const HvHostReport *host, Vendor *vendor, GError **error)
{
    if (!host) {
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "the kvm backend needs this host's probe report to check that nested "
                    "virtualization is on");
        return FALSE;
    }
    if (!host->kvm_module) {
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "no kvm_intel or kvm_amd module is loaded: load it with nesting on "
                    "('modprobe kvm_intel nested=1' on Intel, 'modprobe kvm_amd nested=1' on AMD)");
        return FALSE;
    }
    if (host->nested == 0) {
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "nested virtualization is off in %s: add 'options %s nested=1' to "
                    "/etc/modprobe.d/kvm.conf and reload %s",
                    host->kvm_module, host->kvm_module, host->kvm_module);
        return FALSE;
    }
    if (host->nested < 0) {
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "cannot tell whether nested virtualization is on: "
                    "/sys/module/%s/parameters/nested is unreadable; load %s with nested=1",
                    host->kvm_module, host->kvm_module);
        return FALSE;
    }
    if (!host_vendor(host, vendor)) {
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "cannot tell whether to expose vmx or svm: unknown CPU vendor '%s' and "
                    "kvm module '%s'",
                    host->cpu_vendor ? host->cpu_vendor : "(none)", host->kvm_module);
        return FALSE;
    }
    return TRUE;
}

gboolean hv_stack_spec_validate(const HvStackSpec *spec, HvBackend backend,
                                const HvHostReport *host, GError **error)
{
    Vendor vendor;

    g_return_val_if_fail(spec != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (backend != HV_BACKEND_KVM && backend != HV_BACKEND_TCG && backend != HV_BACKEND_TEST) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "backend %d is unknown", (int)backend);
        return FALSE;
    }
    if (!check_tenant_fields(spec, backend, error))
        return FALSE;
    return backend != HV_BACKEND_KVM || check_kvm_host(host, &vendor, error);
}

static void add_nesting_features(xmlNodePtr cpu, Vendor vendor)
{
    if (vendor == VENDOR_INTEL) {
        add_feature(cpu, "vmx");
    } else {
        add_feature(cpu, "svm");
        add_feature(cpu, "npt");
    }
}

static xmlNodePtr add_named_cpu(xmlNodePtr domain, const char *model)
{
    xmlNodePtr cpu = add_element(domain, NULL, "cpu", NULL);

    set_attr(cpu, "mode", "custom");
    set_attr(cpu, "match", "exact");
    xmlNodePtr model_node = add_element(cpu, NULL, "model", model);
    /* Never let libvirt quietly substitute a model without the nesting features. */
    set_attr(model_node, "fallback", "forbid");
    return cpu;
}

static gboolean add_kvm_cpu(xmlNodePtr domain, const HvStackSpec *spec, Vendor vendor,
                            GError **error)
{
    xmlNodePtr cpu;

    switch (spec->cpu_mode) {
    case HV_CPU_DEFAULT:
    case HV_CPU_HOST_PASSTHROUGH:
        cpu = add_element(domain, NULL, "cpu", NULL);
        set_attr(cpu, "mode", "host-passthrough");
        set_attr(cpu, "check", "none");
        set_attr(cpu, "migratable", "on");
        return TRUE;
    case HV_CPU_HOST_MODEL:
        cpu = add_element(domain, NULL, "cpu", NULL);
        set_attr(cpu, "mode", "host-model");
        add_nesting_features(cpu, vendor);
        return TRUE;
    case HV_CPU_NAMED:
        cpu = add_named_cpu(domain, spec->cpu_model);
        add_nesting_features(cpu, vendor);
        return TRUE;
    }
    g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "cpu_mode %d is unknown", (int)spec->cpu_mode);
    return FALSE;
}

/* Emulated: an AMD model, because QEMU's TCG emulates svm+npt, not vmx/ept. */
static gboolean add_tcg_cpu(xmlNodePtr domain, const HvStackSpec *spec, GError **error)
{
    const char *model;

    switch (spec->cpu_mode) {
    case HV_CPU_DEFAULT:
        model = HV_TCG_DEFAULT_CPU_MODEL;
        break;
    case HV_CPU_NAMED:
        model = spec->cpu_model;
        break;
    case HV_CPU_HOST_PASSTHROUGH:
    case HV_CPU_HOST_MODEL:
    default:
        /* check_cpu refuses these first; this only keeps the switch whole. */
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "nesting.cpu: mode %d is not for tcg",
                    (int)spec->cpu_mode);
        return FALSE;
    }
    xmlNodePtr cpu = add_named_cpu(domain, model);
    /* check='none': libvirt cannot compare an emulated CPU against the host's. */
    set_attr(cpu, "check", "none");
    add_feature(cpu, "svm");
    add_feature(cpu, "npt");
    return TRUE;
}

/* ---- kernel command line ------------------------------------------------------ */

/* An L1 kernel leaves an Intel vIOMMU off unless told (Debian's and most
 * distributions' kernels do not default it on), and then its devices have
 * no IOMMU group to hand on: a kernel boot with one gets intel_iommu=on,
 * unless the tenant's command line already says intel_iommu= or the word
 * would not fit. */
#define INTEL_IOMMU_ON "intel_iommu=on"

static gboolean cmdline_has_word_prefix(const char *cmdline, const char *prefix)
{
    g_auto(GStrv) words = g_strsplit_set(cmdline, " \t", -1);
    for (char **word = words; *word; word++) {
        if (g_str_has_prefix(*word, prefix))
            return TRUE;
    }
    return FALSE;
}

static char *kernel_cmdline(const HvStackSpec *spec)
{
    const char *given = spec->cmdline ? spec->cmdline : "";
    if (spec->iommu != HV_IOMMU_INTEL || cmdline_has_word_prefix(given, "intel_iommu=") ||
        strlen(given) + 1 + strlen(INTEL_IOMMU_ON) > HV_SPEC_CMDLINE_MAX)
        return g_strdup(spec->cmdline);
    return *given ? g_strconcat(given, " " INTEL_IOMMU_ON, NULL) : g_strdup(INTEL_IOMMU_ON);
}

/* ---- devices --------------------------------------------------------------- */

static void add_chardev_file(xmlNodePtr devices, const char *kind, const char *path)
{
    xmlNodePtr dev = add_element(devices, NULL, kind, NULL);

    /* A pty, so that the console can be interactive (virDomainOpenConsole
     * streams it); its <log> keeps writing everything the guest prints to
     * the file the read-only console reads.  The console is the serial port
     * itself, described the same way, as libvirt wants them to match. */
    set_attr(dev, "type", "pty");
    xmlNodePtr log = add_element(dev, NULL, "log", NULL);
    set_attr(log, "file", path);
    /* QEMU truncates a chardev log each time it starts: appending keeps a
     * stack's console history across stop/start and host-side restarts. */
    set_attr(log, "append", "on");
    xmlNodePtr target = add_element(dev, NULL, "target", NULL);
    if (g_str_equal(kind, "console"))
        set_attr(target, "type", "serial");
    set_attr(target, "port", "0");
}

/* <alias name='ua-turtles-ID'/>: libvirt keeps user aliases ("ua-") as they
 * are, and detaches a device by it. */
static void add_alias(xmlNodePtr dev, const char *id)
{
    g_autofree char *alias = g_strconcat(HV_DEVICE_ALIAS_PREFIX, id, NULL);

    set_attr(add_element(dev, NULL, "alias", NULL), "name", alias);
}

/* No <driver iommu='on'/> here: libvirt refuses it on a hostdev, and an
 * assigned function sits behind the vIOMMU anyway. */
static xmlNodePtr add_hostdev(xmlNodePtr devices, const char *id, const PciAddress *addr)
{
    xmlNodePtr hostdev = add_element(devices, NULL, "hostdev", NULL);

    set_attr(hostdev, "mode", "subsystem");
    set_attr(hostdev, "type", "pci");
    set_attr(hostdev, "managed", "yes");
    xmlNodePtr address =
        add_element(add_element(hostdev, NULL, "source", NULL), NULL, "address", NULL);
    g_autofree char *domain = g_strdup_printf("0x%04x", addr->domain);
    g_autofree char *bus = g_strdup_printf("0x%02x", addr->bus);
    g_autofree char *slot = g_strdup_printf("0x%02x", addr->slot);
    g_autofree char *function = g_strdup_printf("0x%x", addr->function);
    set_attr(address, "domain", domain);
    set_attr(address, "bus", bus);
    set_attr(address, "slot", slot);
    set_attr(address, "function", function);
    add_alias(hostdev, id);
    return hostdev;
}

/* virtio-rng-pci behind the vIOMMU: iommu='on' makes it use DMA through
 * the IOMMU (VIRTIO_F_ACCESS_PLATFORM), ats='on' gives it a device TLB. */
static xmlNodePtr add_rng(xmlNodePtr devices, const char *id)
{
    xmlNodePtr rng = add_element(devices, NULL, "rng", NULL);

    set_attr(rng, "model", "virtio");
    set_attr(add_element(rng, NULL, "backend", "/dev/urandom"), "model", "random");
    xmlNodePtr driver = add_element(rng, NULL, "driver", NULL);
    set_attr(driver, "iommu", "on");
    set_attr(driver, "ats", "on");
    add_alias(rng, id);
    return rng;
}

/* The libvirt-native devices (vfio, virtio-rng); NULL for edu. */
static xmlNodePtr add_native_device(xmlNodePtr devices, const HvDevice *device)
{
    PciAddress addr;

    switch (device->model) {
    case HV_DEVICE_VFIO:
        /* Validated already: the address parses. */
        return parse_pci_address(device->pci_address, &addr)
                   ? add_hostdev(devices, device->id, &addr)
                   : NULL;
    case HV_DEVICE_VIRTIO_RNG:
        return add_rng(devices, device->id);
    case HV_DEVICE_EDU:
        break;
    }
    return NULL;
}

/* <parameter name= value=/> of a <filterref>. */
static void add_filter_param(xmlNodePtr filterref, const char *name, const char *value)
{
    xmlNodePtr param = add_element(filterref, NULL, "parameter", NULL);

    set_attr(param, "name", name);
    set_attr(param, "value", value);
}

/* NAME_NET and NAME_MASK (dotted quads) for the subnet @cidr (valid). */
static void add_subnet_params(xmlNodePtr filterref, const char *name, const char *cidr)
{
    guint32 address = 0;
    guint prefix = 0;

    hv_ipv4_cidr_parse(cidr, &address, &prefix, NULL);
    g_autofree char *net_name = g_strconcat(name, "_NET", NULL);
    g_autofree char *mask_name = g_strconcat(name, "_MASK", NULL);
    g_autofree char *net = hv_ipv4_to_string(address);
    g_autofree char *mask = hv_ipv4_to_string(prefix == 0 ? 0 : G_MAXUINT32 << (32 - prefix));
    add_filter_param(filterref, net_name, net);
    add_filter_param(filterref, mask_name, mask);
}

/* HV_NETWORK_FILTER with the guard's parameters on a nat/isolated network
 * (the NIC has a gateway), clean-traffic alone on an external one.  The
 * NIC's IP is learnt from DHCP replies of its network's server only. */
static void add_nic_filter(xmlNodePtr interface, const HvNic *nic)
{
    xmlNodePtr filterref = add_element(interface, NULL, "filterref", NULL);

    if (!nic->gateway) {
        set_attr(filterref, "filter", "clean-traffic");
        add_filter_param(filterref, "CTRL_IP_LEARNING", "dhcp");
        return;
    }
    set_attr(filterref, "filter", HV_NETWORK_FILTER);
    add_filter_param(filterref, "GATEWAY", nic->gateway);
    add_subnet_params(filterref, "OWN", nic->own_cidr);
    add_subnet_params(filterref, "GUARD", nic->guard_cidr ? nic->guard_cidr : nic->own_cidr);
    add_filter_param(filterref, "CTRL_IP_LEARNING", "dhcp");
    add_filter_param(filterref, "DHCPSERVER", nic->gateway);
}

/* A virtio NIC on the libvirt network of nic->network_id, behind the
 * vIOMMU when the stack has one, without an iPXE ROM (L1s boot a kernel or
 * a disk), aliased HV_DEVICE_ALIAS_PREFIX "nic<N>". */
static void add_nic(xmlNodePtr devices, const HvNic *nic, guint index, HvIommu iommu)
{
    xmlNodePtr interface = add_element(devices, NULL, "interface", NULL);
    g_autofree char *network = hv_network_libvirt_name(nic->network_id);
    g_autofree char *id = g_strdup_printf("nic%u", index);

    set_attr(interface, "type", "network");
    set_attr(add_element(interface, NULL, "mac", NULL), "address", nic->mac);
    set_attr(add_element(interface, NULL, "source", NULL), "network", network);
    set_attr(add_element(interface, NULL, "model", NULL), "type", "virtio");
    if (iommu != HV_IOMMU_NONE) {
        xmlNodePtr driver = add_element(interface, NULL, "driver", NULL);
        set_attr(driver, "iommu", "on");
        set_attr(driver, "ats", "on");
    }
    set_attr(add_element(interface, NULL, "rom", NULL), "enabled", "no");
    if (nic->filter)
        add_nic_filter(interface, nic);
    add_alias(interface, id);
}

/* A file-backed virtio disk, vda for the boot disk, vdb for the seed. */
static void add_disk(xmlNodePtr devices, const char *path, const char *format, const char *dev,
                     gboolean readonly)
{
    xmlNodePtr disk = add_element(devices, NULL, "disk", NULL);
    set_attr(disk, "type", "file");
    set_attr(disk, "device", "disk");
    xmlNodePtr driver = add_element(disk, NULL, "driver", NULL);
    set_attr(driver, "name", "qemu");
    set_attr(driver, "type", format);
    set_attr(add_element(disk, NULL, "source", NULL), "file", path);
    xmlNodePtr target = add_element(disk, NULL, "target", NULL);
    set_attr(target, "dev", dev);
    set_attr(target, "bus", "virtio");
    if (readonly)
        add_element(disk, NULL, "readonly", NULL);
}

static gboolean has_model(const HvStackSpec *spec, HvDeviceModel model)
{
    for (guint i = 0; spec->devices && i < spec->devices->len; i++) {
        const HvDevice *device = g_ptr_array_index(spec->devices, i);
        if (device->model == model)
            return TRUE;
    }
    return FALSE;
}

static void add_devices(xmlNodePtr domain, const HvStackSpec *spec)
{
    xmlNodePtr devices = add_element(domain, NULL, "devices", NULL);

    if (spec->disk_path)
        add_disk(devices, spec->disk_path, spec->disk_format, "vda", FALSE);
    /* The seed: a virtio disk, not a CD-ROM (cloud-init finds its "cidata"
     * label on any block device, and virtio needs no SATA controller in the
     * L1); its bytes never change after create. */
    if (spec->seed_path)
        add_disk(devices, spec->seed_path, "raw", "vdb", TRUE);

    for (guint i = 0; spec->nics && i < spec->nics->len; i++)
        add_nic(devices, g_ptr_array_index(spec->nics, i), i, spec->iommu);
    for (guint i = 0; spec->devices && i < spec->devices->len; i++)
        add_native_device(devices, g_ptr_array_index(spec->devices, i));

    add_chardev_file(devices, "serial", spec->console_log);
    add_chardev_file(devices, "console", spec->console_log);

    if (spec->iommu != HV_IOMMU_NONE) {
        /* q35's pcie.0 has no hot-pluggable slot: devices attached later go
         * into empty root ports.  libvirt numbers and places them, but it
         * gives the first PCI controller without an index index 0, the
         * place of pcie.0, before it adds pcie.0 itself: so pcie.0 first,
         * as libvirt writes it. */
        /* Nor may libvirt's default USB controller take one of them: the
         * L1 has no use for USB. */
        xmlNodePtr usb = add_element(devices, NULL, "controller", NULL);
        set_attr(usb, "type", "usb");
        set_attr(usb, "model", "none");
        xmlNodePtr root = add_element(devices, NULL, "controller", NULL);
        set_attr(root, "type", "pci");
        set_attr(root, "index", "0");
        set_attr(root, "model", "pcie-root");
        for (guint i = 0; i < HV_SPARE_ROOT_PORTS; i++) {
            xmlNodePtr port = add_element(devices, NULL, "controller", NULL);
            set_attr(port, "type", "pci");
            set_attr(port, "model", "pcie-root-port");
        }
    }

    if (spec->iommu == HV_IOMMU_INTEL) {
        xmlNodePtr iommu = add_element(devices, NULL, "iommu", NULL);
        set_attr(iommu, "model", "intel");
        xmlNodePtr driver = add_element(iommu, NULL, "driver", NULL);
        set_attr(driver, "intremap", "on");
        /* caching_mode makes QEMU see L1's IOMMU map changes, which VFIO
         * assignment from L1 to L2 depends on. */
        set_attr(driver, "caching_mode", "on");
        set_attr(driver, "iotlb", "on");
    } else if (spec->iommu == HV_IOMMU_VIRTIO) {
        set_attr(add_element(devices, NULL, "iommu", NULL), "model", "virtio");
    }

    set_attr(add_element(devices, NULL, "memballoon", NULL), "model", "none");
}

/* edu has no libvirt element: it enters as "-device edu,..." through QEMU
 * command-line passthrough, at a fixed slot of pcie.0 so that its guest
 * address stays the same across restarts and migrations. */
static void add_qemu_commandline(xmlNodePtr domain, const HvStackSpec *spec)
{
    xmlNodePtr commandline = NULL;
    xmlNsPtr ns = NULL;
    guint n = 0;

    for (guint i = 0; spec->devices && i < spec->devices->len; i++) {
        const HvDevice *device = g_ptr_array_index(spec->devices, i);
        if (device->model != HV_DEVICE_EDU)
            continue;
        if (!commandline) {
            ns = xmlNewNs(domain, BAD_CAST HV_DOMAIN_QEMU_NS_URI, BAD_CAST "qemu");
            commandline = xmlNewChild(domain, ns, BAD_CAST "commandline", NULL);
        }
        /* The id is [a-z0-9.-]: nothing QEMU's option syntax would split. */
        g_autofree char *value =
            g_strdup_printf("edu,bus=pcie.0,addr=0x%02x,id=%s%s", HV_EDU_FIRST_SLOT + n++,
                            HV_DEVICE_ALIAS_PREFIX, device->id);
        set_attr(xmlNewChild(commandline, ns, BAD_CAST "arg", NULL), "value", "-device");
        set_attr(xmlNewChild(commandline, ns, BAD_CAST "arg", NULL), "value", value);
    }
}

/* libvirt picks the firmware from QEMU's descriptors (Debian's ovmf
 * package): by the features asked for, never a path of ours. */
static void add_uefi(xmlNodePtr os, const HvStackSpec *spec)
{
    const char *secure = spec->secure_boot ? "yes" : "no";

    set_attr(os, "firmware", "efi");
    xmlNodePtr firmware = add_element(os, NULL, "firmware", NULL);
    xmlNodePtr feature = add_element(firmware, NULL, "feature", NULL);
    set_attr(feature, "enabled", secure);
    set_attr(feature, "name", "secure-boot");
    feature = add_element(firmware, NULL, "feature", NULL);
    set_attr(feature, "enabled", secure);
    set_attr(feature, "name", "enrolled-keys");
    add_element(os, NULL, "nvram", spec->nvram_path);
}

static void add_metadata(xmlNodePtr domain, const HvStackSpec *spec)
{
    xmlNodePtr metadata = add_element(domain, NULL, "metadata", NULL);
    xmlNodePtr stack = xmlNewChild(metadata, NULL, BAD_CAST "stack", NULL);
    xmlNsPtr ns =
        xmlNewNs(stack, BAD_CAST HV_DOMAIN_METADATA_URI, BAD_CAST HV_DOMAIN_METADATA_PREFIX);

    xmlSetNs(stack, ns);
    add_element(stack, ns, "id", spec->id);
    add_element(stack, ns, "name", spec->name);
    add_element(stack, ns, "tenant", spec->tenant);
    if (spec->record_json)
        add_element(stack, ns, "record", spec->record_json);
}

static const char *domain_type(HvBackend backend)
{
    switch (backend) {
    case HV_BACKEND_KVM:
        return "kvm";
    case HV_BACKEND_TCG:
        return "qemu";
    case HV_BACKEND_TEST:
        /* test:///default only knows type 'test'; otherwise the XML is tcg's. */
        return "test";
    }
    return NULL;
}

static char *serialize(xmlDocPtr doc, GError **error)
{
    g_autoptr(xmlBuffer) buffer = xmlBufferCreate();
    xmlSaveCtxtPtr save = xmlSaveToBuffer(buffer, "UTF-8", XML_SAVE_FORMAT | XML_SAVE_NO_DECL);

    if (!buffer || !save || xmlSaveDoc(save, doc) < 0) {
        if (save)
            xmlSaveClose(save);
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot serialize the domain XML");
        return NULL;
    }
    /* Closing flushes into the buffer. */
    xmlSaveClose(save);
    return g_strndup((const char *)xmlBufferContent(buffer), (gsize)xmlBufferLength(buffer));
}

char *hv_domain_build_xml(const HvStackSpec *spec, HvBackend backend, const HvHostReport *host,
                          GError **error)
{
    Vendor vendor = VENDOR_INTEL;
    const char *type = domain_type(backend);

    g_return_val_if_fail(spec != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    if (!hv_stack_spec_validate(spec, backend, host, error) || !check_host_fields(spec, error))
        return NULL;
    /* Again only for the vendor: validate cannot hand it out. */
    if (backend == HV_BACKEND_KVM && !check_kvm_host(host, &vendor, error))
        return NULL;

    g_autoptr(xmlDoc) doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr domain = xmlNewDocNode(doc, NULL, BAD_CAST "domain", NULL);
    xmlDocSetRootElement(doc, domain);
    set_attr(domain, "type", type);

    g_autofree char *name = hv_domain_name_for(spec->id);
    g_autofree char *title = g_strdup_printf("%s/%s", spec->tenant, spec->name);
    add_element(domain, NULL, "name", name);
    add_element(domain, NULL, "uuid", spec->id);
    add_element(domain, NULL, "title", title);
    add_metadata(domain, spec);

    set_attr(add_element_uint(domain, "memory", spec->memory_mib), "unit", "MiB");
    if (has_model(spec, HV_DEVICE_VFIO) && spec->iommu != HV_IOMMU_NONE) {
        /* VFIO pins guest RAM and a vIOMMU makes QEMU map more of it; without
         * an explicit hard_limit QEMU can hit its memlock limit and fail to
         * start.  libvirt derives the memlock limit from hard_limit. */
        xmlNodePtr memtune = add_element(domain, NULL, "memtune", NULL);
        set_attr(add_element_uint(memtune, "hard_limit", (guint64)spec->memory_mib + 1024), "unit",
                 "MiB");
    }
    add_element_uint(domain, "vcpu", spec->vcpus);

    xmlNodePtr os = add_element(domain, NULL, "os", NULL);
    xmlNodePtr os_type = add_element(os, NULL, "type", "hvm");
    set_attr(os_type, "arch", "x86_64");
    set_attr(os_type, "machine", "q35");
    if (spec->kernel_path) {
        add_element(os, NULL, "kernel", spec->kernel_path);
        if (spec->initrd_path)
            add_element(os, NULL, "initrd", spec->initrd_path);
        g_autofree char *cmdline = kernel_cmdline(spec);
        if (cmdline)
            add_element(os, NULL, "cmdline", cmdline);
    } else {
        set_attr(add_element(os, NULL, "boot", NULL), "dev", "hd");
    }
    if (spec->firmware == HV_FIRMWARE_UEFI)
        add_uefi(os, spec);

    xmlNodePtr features = add_element(domain, NULL, "features", NULL);
    add_element(features, NULL, "acpi", NULL);
    add_element(features, NULL, "apic", NULL);
    /* Secure-boot OVMF keeps its variables safe from the OS in SMM. */
    if (spec->secure_boot)
        set_attr(add_element(features, NULL, "smm", NULL), "state", "on");
    /* Intel's interrupt remapping needs the split irqchip. */
    if (spec->iommu == HV_IOMMU_INTEL)
        set_attr(add_element(features, NULL, "ioapic", NULL), "driver", "qemu");

    gboolean cpu_ok = backend == HV_BACKEND_KVM ? add_kvm_cpu(domain, spec, vendor, error)
                                                : add_tcg_cpu(domain, spec, error);
    if (!cpu_ok)
        return NULL;

    add_element(domain, NULL, "on_poweroff", "destroy");
    add_element(domain, NULL, "on_reboot", "restart");
    add_element(domain, NULL, "on_crash", "destroy");
    add_devices(domain, spec);
    /* test:///default drops QEMU passthrough silently: leave it out there. */
    if (backend != HV_BACKEND_TEST)
        add_qemu_commandline(domain, spec);

    return serialize(doc, error);
}

/* ---- one device, for hot-plug ------------------------------------------------- */

char *hv_domain_device_xml(const HvDevice *device, GError **error)
{
    PciAddress addr;

    g_return_val_if_fail(device != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    if (!check_device("device", device, &addr, error))
        return NULL;
    if (!hv_device_model_hotpluggable(device->model)) {
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "device '%s': %s devices enter through QEMU command-line passthrough, which "
                    "libvirt cannot hot-plug; stop the stack to change them",
                    device->id, hv_device_model_to_string(device->model));
        return NULL;
    }

    g_autoptr(xmlDoc) doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr devices = xmlNewDocNode(doc, NULL, BAD_CAST "devices", NULL);
    xmlDocSetRootElement(doc, devices);
    xmlNodePtr node = add_native_device(devices, device);
    if (!node) {
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "device '%s': cannot build its XML",
                    device->id);
        return NULL;
    }
    xmlUnlinkNode(node);
    xmlFreeNode(xmlDocSetRootElement(doc, node));
    return serialize(doc, error);
}

/* ---- identity -------------------------------------------------------------- */

static char *xpath_string(xmlXPathContextPtr ctx, const char *expr, int *count)
{
    g_autoptr(xmlXPathObject) result = xmlXPathEvalExpression(BAD_CAST expr, ctx);

    *count = 0;
    if (!result || result->type != XPATH_NODESET || !result->nodesetval)
        return NULL;
    *count = result->nodesetval->nodeNr;
    if (*count != 1)
        return NULL;
    xmlChar *content = xmlNodeGetContent(result->nodesetval->nodeTab[0]);
    char *text = g_strdup(content ? (const char *)content : "");
    xmlFree(content);
    return text;
}

/* Parses a domain XML document from libvirt safely: no network, no entities,
 * no DTD.  NULL with HV_ERROR_INVALID when it is not a <domain>. */
static xmlDocPtr read_domain(const char *domain_xml, GError **error)
{
    g_autoptr(xmlParserCtxt) parser = xmlNewParserCtxt();
    if (!parser) {
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot allocate an XML parser");
        return NULL;
    }
    /* No network, no entity substitution, no DTD loading, and no noise on stderr. */
    xmlDocPtr doc =
        xmlCtxtReadMemory(parser, domain_xml, (int)strlen(domain_xml), "domain.xml", NULL,
                          XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError *xml_error = xmlCtxtGetLastError(parser);
        g_autofree char *detail =
            xml_error && xml_error->message ? g_strstrip(g_strdup(xml_error->message)) : NULL;
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "domain XML does not parse: %s",
                    detail ? detail : "unknown error");
        return NULL;
    }
    /* libvirt never writes a DTD; one here could only be declaring entities. */
    if (doc->intSubset || doc->extSubset) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "domain XML must not have a DTD");
        xmlFreeDoc(doc);
        return NULL;
    }
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!root || root->ns || !xmlStrEqual(root->name, BAD_CAST "domain")) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "XML document is not a <domain>");
        xmlFreeDoc(doc);
        return NULL;
    }

    return doc;
}

/* An XPath context on our one <t:stack> element of @doc's <metadata>
 * (prefix "t"): HV_ERROR_NOT_FOUND when there is none, HV_ERROR_INVALID
 * when there are several. */
static xmlXPathContextPtr stack_metadata(xmlDocPtr doc, GError **error)
{
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
    if (!ctx || xmlXPathRegisterNs(ctx, BAD_CAST "t", BAD_CAST HV_DOMAIN_METADATA_URI) != 0) {
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot set up XPath");
        return NULL;
    }
    g_autoptr(xmlXPathObject) stacks =
        xmlXPathEvalExpression(BAD_CAST "/domain/metadata/t:stack", ctx);
    int n_stacks = stacks && stacks->nodesetval ? stacks->nodesetval->nodeNr : 0;
    if (n_stacks == 0) {
        g_set_error(error, HV_ERROR, HV_ERROR_NOT_FOUND, "domain has no %s metadata",
                    HV_DOMAIN_METADATA_URI);
        return NULL;
    }
    if (n_stacks > 1) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "domain has %d %s metadata elements",
                    n_stacks, HV_DOMAIN_METADATA_URI);
        return NULL;
    }
    ctx->node = stacks->nodesetval->nodeTab[0];
    return g_steal_pointer(&ctx);
}

HvStackIdentity *hv_domain_parse_identity(const char *domain_xml, GError **error)
{
    g_return_val_if_fail(domain_xml != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    g_autoptr(xmlDoc) doc = read_domain(domain_xml, error);
    g_autoptr(xmlXPathContext) ctx = doc ? stack_metadata(doc, error) : NULL;
    if (!ctx)
        return NULL;

    g_autoptr(HvStackIdentity) identity = g_new0(HvStackIdentity, 1);
    static const struct {
        const char *element;
        gboolean required;
        gsize offset;
    } fields[] = {
        {"id", TRUE, G_STRUCT_OFFSET(HvStackIdentity, id)},
        {"name", TRUE, G_STRUCT_OFFSET(HvStackIdentity, name)},
        {"tenant", TRUE, G_STRUCT_OFFSET(HvStackIdentity, tenant)},
        {"record", FALSE, G_STRUCT_OFFSET(HvStackIdentity, record_json)},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(fields); i++) {
        g_autofree char *expr = g_strconcat("t:", fields[i].element, NULL);
        int count;
        char *value = xpath_string(ctx, expr, &count);
        if (count > 1 || (count == 0 && fields[i].required)) {
            g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                        "domain metadata has %d <%s:%s> elements, expected one", count,
                        HV_DOMAIN_METADATA_PREFIX, fields[i].element);
            return NULL;
        }
        G_STRUCT_MEMBER(char *, identity, fields[i].offset) = value;
    }
    return g_steal_pointer(&identity);
}

char *hv_domain_set_record(const char *domain_xml, const char *record_json, GError **error)
{
    g_return_val_if_fail(domain_xml != NULL && record_json != NULL, NULL);

    g_autoptr(xmlDoc) doc = read_domain(domain_xml, error);
    g_autoptr(xmlXPathContext) ctx = doc ? stack_metadata(doc, error) : NULL;
    if (!ctx)
        return NULL;
    xmlNodePtr stack = ctx->node;
    /* The old record goes; the new one takes its place, text escaped by libxml2. */
    for (xmlNodePtr child = stack->children, next = NULL; child; child = next) {
        next = child->next;
        if (child->type == XML_ELEMENT_NODE && xmlStrEqual(child->name, BAD_CAST "record")) {
            xmlUnlinkNode(child);
            xmlFreeNode(child);
        }
    }
    add_element(stack, stack->ns, "record", record_json);
    return serialize(doc, error);
}

char *hv_domain_set_nic_ips(const char *domain_xml, GHashTable *ips, GError **error)
{
    g_return_val_if_fail(domain_xml != NULL && ips != NULL, NULL);

    g_autoptr(xmlDoc) doc = read_domain(domain_xml, error);
    if (!doc)
        return NULL;
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
    g_autoptr(xmlXPathObject) refs =
        ctx ? xmlXPathEvalExpression(BAD_CAST "/domain/devices/interface/filterref", ctx) : NULL;
    if (!refs) {
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot set up XPath");
        return NULL;
    }
    for (int i = 0; refs->nodesetval && i < refs->nodesetval->nodeNr; i++) {
        xmlNodePtr filterref = refs->nodesetval->nodeTab[i];
        const char *ip = NULL;
        for (xmlNodePtr sib = filterref->parent->children; sib; sib = sib->next) {
            if (sib->type != XML_ELEMENT_NODE || !xmlStrEqual(sib->name, BAD_CAST "mac"))
                continue;
            g_autofree xmlChar *mac = xmlGetProp(sib, BAD_CAST "address");
            if (mac)
                ip = g_hash_table_lookup(ips, (const char *)mac);
        }
        if (ip == NULL)
            continue;
        for (xmlNodePtr param = filterref->children, next = NULL; param; param = next) {
            next = param->next;
            g_autofree xmlChar *name =
                param->type == XML_ELEMENT_NODE ? xmlGetProp(param, BAD_CAST "name") : NULL;
            if (name && xmlStrEqual(name, BAD_CAST "IP")) {
                xmlUnlinkNode(param);
                xmlFreeNode(param);
            }
        }
        add_filter_param(filterref, "IP", ip);
    }
    return serialize(doc, error);
}

void hv_boot_files_free(HvBootFiles *files)
{
    if (files == NULL)
        return;
    g_free(files->kernel);
    g_free(files->initrd);
    g_free(files->disk);
    g_free(files->disk_backing);
    g_free(files->disk_backing_format);
    g_free(files);
}

/* The string value of @expr, or NULL when empty. */
static char *xpath_value(xmlXPathContextPtr ctx, const char *expr)
{
    g_autoptr(xmlXPathObject) value = xmlXPathEvalExpression(BAD_CAST expr, ctx);
    if (!value || value->type != XPATH_STRING || !value->stringval || !*value->stringval)
        return NULL;
    return g_strdup((const char *)value->stringval);
}

HvBootFiles *hv_domain_parse_boot_files(const char *domain_xml, GError **error)
{
    g_return_val_if_fail(domain_xml != NULL, NULL);

    g_autoptr(xmlDoc) doc = read_domain(domain_xml, error);
    if (!doc)
        return NULL;
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
    if (!ctx) {
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot set up XPath");
        return NULL;
    }
    HvBootFiles *files = g_new0(HvBootFiles, 1);
    files->kernel = xpath_value(ctx, "string(/domain/os/kernel)");
    files->initrd = xpath_value(ctx, "string(/domain/os/initrd)");
    files->disk = xpath_value(ctx, "string(/domain/devices/disk[@device='disk'][1]/source/@file)");
    files->disk_backing = xpath_value(
        ctx, "string(/domain/devices/disk[@device='disk'][1]/backingStore/source/@file)");
    files->disk_backing_format = xpath_value(
        ctx, "string(/domain/devices/disk[@device='disk'][1]/backingStore/format/@type)");
    return files;
}

/* ---- device ids ---------------------------------------------------------------- */

static void add_device_id(GPtrArray *ids, const char *alias)
{
    if (!alias || !g_str_has_prefix(alias, HV_DEVICE_ALIAS_PREFIX))
        return;
    const char *id = alias + strlen(HV_DEVICE_ALIAS_PREFIX);
    if (!is_device_id(id))
        return;
    for (guint i = 0; i < ids->len; i++) {
        if (g_str_equal(g_ptr_array_index(ids, i), id))
            return;
    }
    g_ptr_array_add(ids, g_strdup(id));
}

/* "edu,bus=pcie.0,addr=0x10,id=ua-turtles-e0": the id= option, if any. */
static void add_qemu_arg_id(GPtrArray *ids, const char *value)
{
    g_auto(GStrv) options = g_strsplit(value, ",", -1);

    for (guint i = 1; options[0] && options[i]; i++) {
        if (g_str_has_prefix(options[i], "id="))
            add_device_id(ids, options[i] + 3);
    }
}

/* The string values of the nodes @expr selects, in document order. */
static GPtrArray *xpath_strings(xmlXPathContextPtr ctx, const char *expr)
{
    GPtrArray *values = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(xmlXPathObject) result = xmlXPathEvalExpression(BAD_CAST expr, ctx);

    if (!result || result->type != XPATH_NODESET || !result->nodesetval)
        return values;
    for (int i = 0; i < result->nodesetval->nodeNr; i++) {
        xmlChar *content = xmlNodeGetContent(result->nodesetval->nodeTab[i]);
        g_ptr_array_add(values, g_strdup(content ? (const char *)content : ""));
        xmlFree(content);
    }
    return values;
}

/* The ids of @doc's devices: libvirt aliases when @aliases, QEMU
 * passthrough ids when @passthrough. */
static GPtrArray *device_ids(xmlDocPtr doc, gboolean aliases, gboolean passthrough, GError **error)
{
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
    if (!ctx || xmlXPathRegisterNs(ctx, BAD_CAST "q", BAD_CAST HV_DOMAIN_QEMU_NS_URI) != 0) {
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot set up XPath");
        return NULL;
    }
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    if (aliases) {
        g_autoptr(GPtrArray) names = xpath_strings(ctx, "/domain/devices/*/alias/@name");
        /* A NIC's alias (ua-turtles-nic<N>) names no device of the pool. */
        g_autoptr(GPtrArray) nics = xpath_strings(ctx, "/domain/devices/interface/alias/@name");
        for (guint i = 0; i < names->len; i++) {
            const char *name = g_ptr_array_index(names, i);
            if (!g_ptr_array_find_with_equal_func(nics, name, g_str_equal, NULL) ||
                !g_str_has_prefix(name, HV_DEVICE_ALIAS_PREFIX) ||
                !is_nic_alias_id(name + strlen(HV_DEVICE_ALIAS_PREFIX)))
                add_device_id(ids, name);
        }
    }
    if (passthrough) {
        g_autoptr(GPtrArray) args = xpath_strings(ctx, "/domain/q:commandline/q:arg/@value");
        for (guint i = 0; i < args->len; i++)
            add_qemu_arg_id(ids, g_ptr_array_index(args, i));
    }
    return ids;
}

gboolean hv_domain_device_is_passthrough(const char *domain_xml, const char *device_id)
{
    g_return_val_if_fail(domain_xml != NULL && device_id != NULL, FALSE);

    g_autoptr(xmlDoc) doc = read_domain(domain_xml, NULL);
    if (!doc)
        return FALSE;
    g_autoptr(GPtrArray) native = device_ids(doc, TRUE, FALSE, NULL);
    g_autoptr(GPtrArray) passthrough = device_ids(doc, FALSE, TRUE, NULL);
    return native && passthrough &&
           !g_ptr_array_find_with_equal_func(native, device_id, g_str_equal, NULL) &&
           g_ptr_array_find_with_equal_func(passthrough, device_id, g_str_equal, NULL);
}

GPtrArray *hv_domain_parse_device_ids(const char *domain_xml, GError **error)
{
    g_return_val_if_fail(domain_xml != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    g_autoptr(xmlDoc) doc = read_domain(domain_xml, error);
    if (!doc)
        return NULL;
    return device_ids(doc, TRUE, TRUE, error);
}

/* ---- NICs ---------------------------------------------------------------------- */

/* The parameter @name of the filterref at @ctx's node, or NULL. */
static char *filter_param(xmlXPathContextPtr ctx, const char *name)
{
    g_autofree char *expr = g_strdup_printf("string(filterref/parameter[@name='%s']/@value)", name);

    return xpath_value(ctx, expr);
}

/* "a.b.c.d/p" from the parameters NAME_NET and NAME_MASK, or NULL. */
static char *filter_subnet(xmlXPathContextPtr ctx, const char *name)
{
    g_autofree char *net_name = g_strconcat(name, "_NET", NULL);
    g_autofree char *mask_name = g_strconcat(name, "_MASK", NULL);
    g_autofree char *net = filter_param(ctx, net_name);
    g_autofree char *mask = filter_param(ctx, mask_name);
    g_autofree char *mask_cidr = mask ? g_strconcat(mask, "/32", NULL) : NULL;
    guint32 bits;

    if (!net || !mask_cidr || !hv_ipv4_cidr_parse(mask_cidr, &bits, NULL, NULL))
        return NULL;
    guint prefix = (guint)__builtin_popcount(bits);
    g_autofree char *cidr = g_strdup_printf("%s/%u", net, prefix);
    return hv_ipv4_cidr_parse(cidr, NULL, NULL, NULL) ? g_steal_pointer(&cidr) : NULL;
}

GPtrArray *hv_domain_parse_nics(const char *domain_xml, GError **error)
{
    g_return_val_if_fail(domain_xml != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    g_autoptr(xmlDoc) doc = read_domain(domain_xml, error);
    if (!doc)
        return NULL;
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
    g_autoptr(xmlXPathObject) interfaces =
        ctx ? xmlXPathEvalExpression(BAD_CAST "/domain/devices/interface[@type='network']", ctx)
            : NULL;
    if (!interfaces) {
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot set up XPath");
        return NULL;
    }
    GPtrArray *nics = g_ptr_array_new_with_free_func((GDestroyNotify)hv_nic_free);
    for (int i = 0; interfaces->nodesetval && i < interfaces->nodesetval->nodeNr; i++) {
        ctx->node = interfaces->nodesetval->nodeTab[i];
        g_autofree char *network = xpath_value(ctx, "string(source/@network)");
        if (!network || !g_str_has_prefix(network, HV_NETWORK_NAME_PREFIX) ||
            !network[strlen(HV_NETWORK_NAME_PREFIX)])
            continue;
        HvNic *nic = hv_nic_new();
        nic->network_id = g_strdup(network + strlen(HV_NETWORK_NAME_PREFIX));
        nic->mac = xpath_value(ctx, "string(mac/@address)");
        g_autofree char *filter = xpath_value(ctx, "string(filterref/@filter)");
        nic->filter = filter != NULL;
        nic->gateway = filter_param(ctx, "GATEWAY");
        nic->own_cidr = filter_subnet(ctx, "OWN");
        nic->guard_cidr = filter_subnet(ctx, "GUARD");
        g_ptr_array_add(nics, nic);
    }
    return nics;
}
