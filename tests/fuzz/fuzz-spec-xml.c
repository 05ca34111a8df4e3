/* Stack spec bytes -> api_stack_spec_from_json -> daemon/convert ->
 * hv_domain_build_xml on the tcg and test backends.  Any spec the API
 * accepts must build a domain XML document that libxml2 parses and that
 * gives back, through hvcore's own parsers, the identity, record, boot
 * files and devices that went in.  The devices come from a pretend pool,
 * as the daemon resolves and claims them: class "edu*" holds edu devices,
 * "gpu*" vfio functions, any other virtio-rng. */
#include <libxml/parser.h>
#include <string.h>

#include "api/device.h"
#include "api/json.h"
#include "api/spec.h"
#include "api/stack.h"
#include "daemon/convert.h"
#include "hvcore/domain.h"
#include "tests/fuzz/fuzz-util.h"

#define STACK_ID    "6f1c7a52-3d0e-4b8a-9f57-2c1d0e9b8a11"
#define TENANT      "acme"
#define IMAGES_DIR  "/var/lib/turtles/pools/images/"
#define DISKS_DIR   "/var/lib/turtles/pools/disks/"
#define CONSOLE_LOG "/var/lib/turtles/consoles/" STACK_ID ".log"

/* This host as CI machines see it: /dev/kvm from kvm_pvm, no vmx/svm. */
static const HvHostReport host = {
    .cpu_vendor = (char *)"AuthenticAMD",
    .hypervisor = TRUE,
    .kvm_device = TRUE,
    .kvm_device_opens = TRUE,
    .kvm_api_version = 12,
    .nested = -1,
    .ept_npt = -1,
    .shadow_vmcs = -1,
    .apicv_avic = -1,
    .pvm = TRUE,
    .backend = HV_BACKEND_TCG,
    .reason = (char *)"no hardware virtualization",
};

/* What stacks.c adds to the converted spec: paths of the boot files, the
 * console log and the record for <metadata>. */
static HvStackSpec *host_spec(const ApiStack *stack)
{
    const ApiStackSpec *spec = stack->spec;
    HvStackSpec *hv = convert_stack_spec(stack);

    if (spec->boot_kernel != NULL) {
        hv->kernel_path = g_strconcat(IMAGES_DIR, spec->boot_kernel, NULL);
        if (spec->boot_initrd != NULL)
            hv->initrd_path = g_strconcat(IMAGES_DIR, spec->boot_initrd, NULL);
    } else {
        hv->disk_path = g_strconcat(DISKS_DIR, STACK_ID, ".qcow2", NULL);
        hv->disk_format = g_strdup("qcow2");
    }
    hv->console_log = g_strdup(CONSOLE_LOG);
    g_autoptr(json_object) record = api_stack_to_json(stack);
    hv->record_json = g_strdup(fuzz_json_text(record));
    return hv;
}

/* What devices_resolve_classes fills in before validation; FALSE when a
 * class could not exist (its name too long for a pool class: 400). */
static gboolean resolve_models(ApiStackSpec *spec)
{
    for (guint i = 0; i < spec->devices->len; i++) {
        ApiStackDevice *device = g_ptr_array_index(spec->devices, i);
        if (strlen(device->class_name) > API_DEVICE_CLASS_NAME_MAX)
            return FALSE;
        device->model = g_strdup(g_str_has_prefix(device->class_name, "edu")   ? "edu"
                                 : g_str_has_prefix(device->class_name, "gpu") ? "vfio"
                                                                               : "virtio-rng");
    }
    return TRUE;
}

/* What the claims of the create give each device: an id, and a function. */
static void claim(ApiStackSpec *spec)
{
    for (guint i = 0; i < spec->devices->len; i++) {
        ApiStackDevice *device = g_ptr_array_index(spec->devices, i);
        device->id = g_strdup_printf("%s-%u", device->class_name, i);
        if (g_str_equal(device->model, "vfio"))
            device->address = g_strdup_printf("0000:3b:%02x.%u", i / 8, i % 8);
    }
}

/* The domain XML holds every device under its pool id (the test driver
 * drops QEMU command-line devices, so edu only on tcg). */
static void check_devices(const ApiStack *stack, HvBackend backend, const char *xml)
{
    const char *name = hv_backend_to_string(backend);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) ids = hv_domain_parse_device_ids(xml, &error);
    FUZZ_CHECK(ids != NULL, "%s: device ids do not parse back: %s", name, error->message);
    guint expected = 0;
    for (guint i = 0; i < stack->spec->devices->len; i++) {
        const ApiStackDevice *device = g_ptr_array_index(stack->spec->devices, i);
        if (backend == HV_BACKEND_TEST && g_str_equal(device->model, "edu"))
            continue;
        expected++;
        gboolean found = FALSE;
        for (guint j = 0; j < ids->len && !found; j++)
            found = g_str_equal(g_ptr_array_index(ids, j), device->id);
        FUZZ_CHECK(found, "%s: device %s is not in the domain XML", name, device->id);
    }
    FUZZ_CHECK(ids->len == expected, "%s: %u device ids in the XML, %u expected", name, ids->len,
               expected);
}

/* Whether the daemon would accept @spec for @backend: the validator
 * stacks_create calls before it answers 202. */
static gboolean daemon_accepts(const ApiStackSpec *spec, HvBackend backend)
{
    return convert_validate_stack_spec(spec, backend, &host, NULL);
}

static void check_backend(ApiStack *stack, HvBackend backend)
{
    const char *name = hv_backend_to_string(backend);
    if (!daemon_accepts(stack->spec, backend))
        return;
    g_autoptr(ApiStackSpec) requested = api_stack_spec_copy(stack->spec);
    claim(stack->spec);

    g_autoptr(HvStackSpec) hv = host_spec(stack);
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_domain_build_xml(hv, backend, &host, &error);
    FUZZ_CHECK(xml != NULL, "%s: the API accepted a spec hvcore refuses: %s", name, error->message);

    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    FUZZ_CHECK(doc != NULL, "%s: domain XML does not parse:\n%s", name, xml);
    xmlNodePtr root = xmlDocGetRootElement(doc);
    FUZZ_CHECK(root != NULL && xmlStrEqual(root->name, BAD_CAST "domain"),
               "%s: root is not <domain>", name);
    xmlFreeDoc(doc);

    g_autoptr(HvStackIdentity) identity = hv_domain_parse_identity(xml, &error);
    FUZZ_CHECK(identity != NULL, "%s: identity does not parse back: %s", name, error->message);
    FUZZ_CHECK(g_strcmp0(identity->id, hv->id) == 0, "%s: id differs", name);
    FUZZ_CHECK(g_strcmp0(identity->name, hv->name) == 0, "%s: name '%s' != '%s'", name,
               identity->name, hv->name);
    FUZZ_CHECK(g_strcmp0(identity->tenant, hv->tenant) == 0, "%s: tenant differs", name);
    FUZZ_CHECK(g_strcmp0(identity->record_json, hv->record_json) == 0,
               "%s: record differs:\n%s\n%s", name, identity->record_json, hv->record_json);

    /* The record is what adoption on another host decodes. */
    g_autoptr(json_object) record = api_json_parse(
        identity->record_json, strlen(identity->record_json), API_JSON_MAX_DEPTH, &error);
    FUZZ_CHECK(record != NULL, "%s: record is not JSON: %s", name, error->message);
    g_autoptr(ApiStack) adopted = api_stack_from_json(record, &error);
    FUZZ_CHECK(adopted != NULL, "%s: record does not decode: %s", name, error->message);
    g_autoptr(json_object) original = api_stack_to_json(stack);
    g_autoptr(json_object) readopted = api_stack_to_json(adopted);
    fuzz_check_json_equal("record", original, readopted);

    g_autoptr(HvBootFiles) files = hv_domain_parse_boot_files(xml, &error);
    FUZZ_CHECK(files != NULL, "%s: boot files do not parse back: %s", name, error->message);
    FUZZ_CHECK(g_strcmp0(files->kernel, hv->kernel_path) == 0, "%s: kernel differs", name);
    FUZZ_CHECK(g_strcmp0(files->initrd, hv->initrd_path) == 0, "%s: initrd differs", name);
    FUZZ_CHECK(g_strcmp0(files->disk, hv->disk_path) == 0, "%s: disk differs", name);
    check_devices(stack, backend, xml);

    /* The next backend judges the spec as it was asked for. */
    api_stack_spec_free(stack->spec);
    stack->spec = g_steal_pointer(&requested);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(json_object) value =
        api_json_parse((const char *)data, size, API_JSON_MAX_DEPTH, NULL);
    if (value == NULL)
        return 0;
    ApiStackSpec *spec = api_stack_spec_from_json(value, NULL);
    if (spec == NULL)
        return 0;
    if (!resolve_models(spec)) {
        api_stack_spec_free(spec);
        return 0;
    }

    g_autoptr(ApiStack) stack = api_stack_new(spec);
    stack->id = g_strdup(STACK_ID);
    stack->tenant = g_strdup(TENANT);
    stack->created_at = g_strdup("2026-01-02T03:04:05Z");
    stack->updated_at = g_strdup("2026-01-02T03:04:05Z");

    check_backend(stack, HV_BACKEND_TCG);
    check_backend(stack, HV_BACKEND_TEST);
    return 0;
}
