/* Stack spec bytes -> api_stack_spec_from_json -> daemon/convert ->
 * hv_domain_build_xml on the tcg and test backends.  Any spec the API
 * accepts must build a domain XML document that libxml2 parses and that
 * gives back, through hvcore's own parsers, the identity, record and boot
 * files that went in. */
#include <libxml/parser.h>
#include <string.h>

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

/* Whether the daemon would accept @spec for @backend: the validator
 * stacks_create calls before it answers 202. */
static gboolean daemon_accepts(const ApiStackSpec *spec, HvBackend backend)
{
    return convert_validate_stack_spec(spec, backend, &host, NULL);
}

static void check_backend(const ApiStack *stack, HvBackend backend)
{
    const char *name = hv_backend_to_string(backend);
    if (!daemon_accepts(stack->spec, backend))
        return;

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

    g_autoptr(ApiStack) stack = api_stack_new(spec);
    stack->id = g_strdup(STACK_ID);
    stack->tenant = g_strdup(TENANT);
    stack->created_at = g_strdup("2026-01-02T03:04:05Z");
    stack->updated_at = g_strdup("2026-01-02T03:04:05Z");

    check_backend(stack, HV_BACKEND_TCG);
    check_backend(stack, HV_BACKEND_TEST);
    return 0;
}
