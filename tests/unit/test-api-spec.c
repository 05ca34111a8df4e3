/* api/spec: the stack spec of POST /v1/stacks, decoded and validated strictly,
 * and the API's whole path to a 202: decode, then hvcore's rules through
 * convert_validate_stack_spec, which must refuse exactly what the domain
 * build refuses. */
#include <string.h>

#include <libxml/parser.h>

#include "api/error.h"
#include "api/json.h"
#include "api/spec.h"
#include "api/stack.h"
#include "daemon/convert.h"
#include "daemon/error.h"
#include "hvcore/domain.h"
#include "hvcore/error.h"

#define NAME_MESSAGE API_NAME_RULE_WORDS

static const char base_spec[] = "{'name':'web','vcpus':2,'memory_mib':1024,"
                                "'boot':{'kernel':'vmlinuz','initrd':'initrd','cmdline':'quiet'},"
                                "'nesting':{'cpu':'host-model','iommu':'intel'},"
                                "'devices':[{'class':'rng'}],'start':false}";

/* A kvm host that nests, so that every cpu mode is open. */
static HvHostReport nesting_host(void)
{
    HvHostReport host = {0};

    host.backend = HV_BACKEND_KVM;
    host.cpu_vendor = (char *)"GenuineIntel";
    host.vmx = TRUE;
    host.kvm_module = (char *)"kvm_intel";
    host.nested = 1;
    return host;
}

/* The pool these tests pretend to have: class "edu" holds edu devices,
 * every other class virtio-rng ones.  The daemon fills each device's model
 * from its class (devices_resolve_classes) before hvcore judges the spec;
 * this does the same to a copy. */
static ApiStackSpec *resolved(const ApiStackSpec *spec)
{
    ApiStackSpec *copy = api_stack_spec_copy(spec);
    for (guint i = 0; i < copy->devices->len; i++) {
        ApiStackDevice *device = g_ptr_array_index(copy->devices, i);
        if (device->model == NULL)
            device->model =
                g_strdup(g_strcmp0(device->class_name, "edu") == 0 ? "edu" : "virtio-rng");
    }
    return copy;
}

/* What POST /v1/stacks runs before it answers 202; the spec as the request
 * named it. */
static ApiStackSpec *api_accept(json_object *value, HvBackend backend, GError **error)
{
    HvHostReport host = nesting_host();
    g_autoptr(ApiStackSpec) spec = api_stack_spec_from_json(value, error);
    if (!spec)
        return NULL;
    g_autoptr(ApiStackSpec) with_models = resolved(spec);
    if (!convert_validate_stack_spec(with_models, backend, &host, error))
        return NULL;
    return g_steal_pointer(&spec);
}

/* A 400 from either step, its message starting with @prefix. */
static void assert_bad_request(const GError *error, const char *prefix)
{
    g_assert_nonnull(error);
    g_assert_true(g_error_matches(error, API_ERROR, API_ERROR_INVALID) ||
                  g_error_matches(error, TD_ERROR, TD_ERROR_BAD_REQUEST));
    if (!g_str_has_prefix(error->message, prefix))
        g_error("error message '%s' does not start with '%s'", error->message, prefix);
}

/* The domain XML the daemon would build for an accepted @spec, with the
 * host's fields filled in the way daemon/stacks.c fills them. */
static char *build_domain(const ApiStackSpec *accepted, HvBackend backend, GError **error)
{
    HvHostReport host = nesting_host();
    g_autoptr(json_object) json = api_stack_spec_to_json(accepted);
    g_autoptr(ApiStack) stack = api_stack_new(api_stack_spec_from_record_json(json, NULL));
    g_assert_nonnull(stack->spec->name);
    stack->id = g_strdup("6f1c3c2e-9a43-4b7e-8d2a-1c2b3c4d5e6f");
    stack->tenant = g_strdup("acme");

    g_autoptr(HvStackSpec) hv = convert_stack_spec(stack);
    if (stack->spec->boot_kernel) {
        hv->kernel_path = g_strconcat("/srv/images/", stack->spec->boot_kernel, NULL);
        if (stack->spec->boot_initrd)
            hv->initrd_path = g_strconcat("/srv/images/", stack->spec->boot_initrd, NULL);
    } else {
        hv->disk_path = g_strdup("/srv/disks/overlay.qcow2");
        hv->disk_format = g_strdup("qcow2");
    }
    hv->console_log = g_strdup("/srv/consoles/web.log");
    g_autoptr(json_object) record = api_stack_to_json(stack);
    hv->record_json = g_strdup(json_object_to_json_string_ext(record, JSON_C_TO_STRING_PLAIN));
    return hv_domain_build_xml(hv, backend, &host, error);
}

/* For a body the decoder takes: the API accepts it on @backend exactly when
 * the domain builds, with the same message, and what builds is well-formed
 * XML. */
static void assert_api_agrees_with_domain(json_object *value, HvBackend backend)
{
    g_autoptr(GError) decode_error = NULL;
    g_autoptr(ApiStackSpec) decoded = api_stack_spec_from_json(value, &decode_error);
    if (!decoded)
        return; /* a shape error: the domain build is never reached */

    g_autoptr(GError) api_error = NULL;
    g_autoptr(GError) build_error = NULL;
    HvHostReport host = nesting_host();
    g_autoptr(ApiStackSpec) with_models = resolved(decoded);
    gboolean accepted = convert_validate_stack_spec(with_models, backend, &host, &api_error);
    g_autofree char *xml = build_domain(with_models, backend, &build_error);
    g_test_message("backend %d: API %s, build %s", (int)backend,
                   api_error ? api_error->message : "accepts",
                   build_error ? build_error->message : "builds");
    g_assert_cmpint(accepted, ==, xml != NULL);
    if (!accepted) {
        g_assert_error(api_error, TD_ERROR, TD_ERROR_BAD_REQUEST);
        g_assert_cmpstr(api_error->message, ==, build_error->message);
        return;
    }
    xmlDoc *doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    g_assert_nonnull(doc);
    xmlFreeDoc(doc);
}

/* Test JSON is written with ' for " to stay readable. */
static json_object *parse_dq(const char *text)
{
    g_autofree char *json = g_strdup(text);
    g_strdelimit(json, "'", '"');
    g_autoptr(GError) error = NULL;
    json_object *value = api_json_parse(json, strlen(json), API_JSON_MAX_DEPTH, &error);
    g_assert_no_error(error);
    return value;
}

/* Sets (or with @value NULL removes) the member at a dotted @path of @root;
 * @value is JSON text, "null" included. */
static void mutate(json_object *root, const char *path, const char *value)
{
    g_auto(GStrv) parts = g_strsplit(path, ".", -1);
    json_object *object = root;
    guint n = g_strv_length(parts);
    for (guint i = 0; i + 1 < n; i++) {
        json_object *next = NULL;
        if (!json_object_object_get_ex(object, parts[i], &next) || !next) {
            next = json_object_new_object();
            json_object_object_add(object, parts[i], next);
        }
        object = next;
    }
    if (!value) {
        json_object_object_del(object, parts[n - 1]);
        return;
    }
    g_autofree char *json = g_strdup(value);
    g_strdelimit(json, "'", '"');
    json_object *member = json_tokener_parse(json);
    g_assert_true(member || strcmp(json, "null") == 0);
    json_object_object_add(object, parts[n - 1], member);
}

static void assert_specs_equal(const ApiStackSpec *a, const ApiStackSpec *b)
{
    g_assert_cmpstr(a->name, ==, b->name);
    g_assert_cmpuint(a->vcpus, ==, b->vcpus);
    g_assert_cmpuint(a->memory_mib, ==, b->memory_mib);
    g_assert_cmpstr(a->boot_kernel, ==, b->boot_kernel);
    g_assert_cmpstr(a->boot_initrd, ==, b->boot_initrd);
    g_assert_cmpstr(a->boot_cmdline, ==, b->boot_cmdline);
    g_assert_cmpstr(a->boot_disk, ==, b->boot_disk);
    g_assert_cmpstr(a->cpu, ==, b->cpu);
    g_assert_cmpstr(a->iommu, ==, b->iommu);
    g_assert_cmpuint(a->devices->len, ==, b->devices->len);
    for (guint i = 0; i < a->devices->len; i++) {
        const ApiStackDevice *da = g_ptr_array_index(a->devices, i);
        const ApiStackDevice *db = g_ptr_array_index(b->devices, i);
        g_assert_cmpstr(da->class_name, ==, db->class_name);
        g_assert_cmpstr(da->id, ==, db->id);
        g_assert_cmpstr(da->model, ==, db->model);
        g_assert_cmpstr(da->address, ==, db->address);
    }
    g_assert_cmpint(a->start, ==, b->start);
}

/* Whether a device of @spec carries what only the server assigns. */
static gboolean has_allocations(const ApiStackSpec *spec)
{
    for (guint i = 0; i < spec->devices->len; i++) {
        const ApiStackDevice *device = g_ptr_array_index(spec->devices, i);
        if (device->id || device->model || device->address)
            return TRUE;
    }
    return FALSE;
}

/* encode -> text -> parse -> decode gives @spec back, and the text is stable;
 * a request's decoder for a spec a request could be, a record's otherwise. */
static void assert_round_trip(const ApiStackSpec *spec)
{
    g_autoptr(json_object) json = api_stack_spec_to_json(spec);
    g_autofree char *text = api_json_to_string(json);
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) parsed = api_json_parse(text, strlen(text), API_JSON_MAX_DEPTH, &error);
    g_assert_no_error(error);
    g_autoptr(ApiStackSpec) decoded = has_allocations(spec)
                                          ? api_stack_spec_from_record_json(parsed, &error)
                                          : api_stack_spec_from_json(parsed, &error);
    g_assert_no_error(error);
    g_assert_nonnull(decoded);
    assert_specs_equal(decoded, spec);
    g_autoptr(json_object) again = api_stack_spec_to_json(decoded);
    g_autofree char *text_again = api_json_to_string(again);
    g_assert_cmpstr(text_again, ==, text);
}

/* [{"class":@class_name}] @n times. */
static json_object *devices_of(const char *class_name, int n)
{
    json_object *devices = json_object_new_array();
    for (int i = 0; i < n; i++) {
        json_object *device = json_object_new_object();
        json_object_object_add(device, "class", json_object_new_string(class_name));
        json_object_array_add(devices, device);
    }
    return devices;
}

/* ---- rejected inputs -------------------------------------------------------- */

typedef struct {
    const char *path;  /* member of the base spec to change */
    const char *value; /* its new JSON value, NULL to remove it */
    const char *field; /* the field the message must start with */
} BadCase;

static const BadCase bad_cases[] = {
    /* unknown fields, at every level */
    {"extra", "1", "extra: unknown field"},
    {"Name", "'web'", "Name: unknown field"},
    {"boot.foo", "1", "boot.foo: unknown field"},
    {"nesting.foo", "'x'", "nesting.foo: unknown field"},
    {"nesting.CPU", "'host-model'", "nesting.CPU: unknown field"},
    /* missing required fields */
    {"name", NULL, "name: is required"},
    {"vcpus", NULL, "vcpus: is required"},
    {"memory_mib", NULL, "memory_mib: is required"},
    {"boot", NULL, "boot: is required"},
    /* name */
    {"name", "'Web_1'", "name: " NAME_MESSAGE},
    {"name", "''", "name: " NAME_MESSAGE},
    {"name", "'-web'", "name: " NAME_MESSAGE},
    {"name", "'web-'", "name: " NAME_MESSAGE},
    {"name", "'web.1'", "name: " NAME_MESSAGE},
    {"name", "'web\\u0000x'", "name: must not contain NUL characters"},
    {"name", "1", "name: must be a string"},
    {"name", "null", "name: must be a string"},
    {"name", "true", "name: must be a string"},
    {"name", "['web']", "name: must be a string"},
    {"name", "{}", "name: must be a string"},
    /* vcpus */
    {"vcpus", "0", "vcpus: must be between 1 and 64"},
    {"vcpus", "65", "vcpus: must be between 1 and 64"},
    {"vcpus", "-1", "vcpus: must be between 1 and 64"},
    {"vcpus", "1099511627776", "vcpus: must be between 1 and 64"},
    {"vcpus", "4294967297", "vcpus: must be between 1 and 64"}, /* would wrap a guint to 1 */
    {"vcpus", "18446744073709551615", "vcpus: must be between 1 and 64"},
    {"vcpus", "1.5", "vcpus: must be an integer"},
    {"vcpus", "2.0", "vcpus: must be an integer"},
    {"vcpus", "'2'", "vcpus: must be an integer"},
    {"vcpus", "true", "vcpus: must be an integer"},
    {"vcpus", "null", "vcpus: must be an integer"},
    {"vcpus", "[2]", "vcpus: must be an integer"},
    /* memory_mib */
    {"memory_mib", "127", "memory_mib: must be between 128 and 1048576"},
    {"memory_mib", "1048577", "memory_mib: must be between 128 and 1048576"},
    {"memory_mib", "0", "memory_mib: must be between 128 and 1048576"},
    {"memory_mib", "4294968320", "memory_mib: must be between 128 and 1048576"},
    {"memory_mib", "'1024'", "memory_mib: must be an integer"},
    {"memory_mib", "1024.5", "memory_mib: must be an integer"},
    {"memory_mib", "false", "memory_mib: must be an integer"},
    /* boot */
    {"boot", "'vmlinuz'", "boot: must be an object"},
    {"boot", "[]", "boot: must be an object"},
    {"boot", "null", "boot: must be an object"},
    {"boot", "{}", "boot: must contain either kernel or disk"},
    {"boot", "{'initrd':'initrd'}", "boot: must contain either kernel or disk"},
    {"boot", "{'cmdline':'quiet'}", "boot: must contain either kernel or disk"},
    {"boot", "{'kernel':'vmlinuz','disk':'root'}",
     "boot.disk: cannot be combined with boot.kernel"},
    {"boot", "{'disk':'root','initrd':'initrd'}", "boot.initrd: is only allowed with boot.kernel"},
    {"boot", "{'disk':'root','cmdline':'quiet'}", "boot.cmdline: is only allowed with boot.kernel"},
    {"boot", "{'disk':'Root'}", "boot.disk: " NAME_MESSAGE},
    {"boot", "{'disk':7}", "boot.disk: must be a string"},
    {"boot.kernel", "'vmlinuz_6'", "boot.kernel: " NAME_MESSAGE},
    {"boot.kernel", "''", "boot.kernel: " NAME_MESSAGE},
    {"boot.kernel", "5", "boot.kernel: must be a string"},
    {"boot.kernel", "null", "boot.kernel: must be a string"},
    {"boot.initrd", "'initrd.img'", "boot.initrd: " NAME_MESSAGE},
    {"boot.initrd", "false", "boot.initrd: must be a string"},
    {"boot.cmdline", "5", "boot.cmdline: must be a string"},
    {"boot.cmdline", "['quiet']", "boot.cmdline: must be a string"},
    {"boot.cmdline", "'quiet\\nroot=/dev/sda'",
     "boot.cmdline: must not contain control characters"},
    {"boot.cmdline", "'a\\tb'", "boot.cmdline: must not contain control characters"},
    {"boot.cmdline", "'\\u001b[31m'", "boot.cmdline: must not contain control characters"},
    {"boot.cmdline", "'a\\u007f'", "boot.cmdline: must not contain control characters"},
    {"boot.cmdline", "'a\\u0085'", "boot.cmdline: must not contain control characters"},
    {"boot.cmdline", "'a\\u0000b'", "boot.cmdline: must not contain NUL characters"},
    /* characters XML cannot carry: they used to pass and fail at define */
    {"boot.cmdline", "'quiet \\ufffe'", "boot.cmdline: must not contain U+FFFE (at byte 6)"},
    {"boot.cmdline", "'\\uffff'", "boot.cmdline: must not contain U+FFFF (at byte 0)"},
    /* nesting */
    {"nesting", "'host-model'", "nesting: must be an object"},
    {"nesting", "null", "nesting: must be an object"},
    {"nesting.cpu", "'host'", "nesting.cpu: must be host-passthrough, host-model or named:<model>"},
    {"nesting.cpu", "'Host-Model'",
     "nesting.cpu: must be host-passthrough, host-model or named:<model>"},
    {"nesting.cpu", "''", "nesting.cpu: must be host-passthrough, host-model or named:<model>"},
    {"nesting.cpu", "'EPYC'", "nesting.cpu: must be host-passthrough, host-model or named:<model>"},
    {"nesting.cpu", "'named:'", "nesting.cpu: model must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
    {"nesting.cpu", "'named:-EPYC'",
     "nesting.cpu: model must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
    {"nesting.cpu", "'named:EPYC v4'",
     "nesting.cpu: model must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
    {"nesting.cpu", "'named:EPYC,+svm'",
     "nesting.cpu: model must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
    {"nesting.cpu", "'named:a\\u00e9'",
     "nesting.cpu: model must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
    {"nesting.cpu", "5", "nesting.cpu: must be a string"},
    {"nesting.cpu", "null", "nesting.cpu: must be a string"},
    {"nesting.iommu", "'amd'", "nesting.iommu: must be one of none, intel, virtio"},
    {"nesting.iommu", "''", "nesting.iommu: must be one of none, intel, virtio"},
    {"nesting.iommu", "'Intel'", "nesting.iommu: must be one of none, intel, virtio"},
    {"nesting.iommu", "true", "nesting.iommu: must be a string"},
    {"nesting.iommu", "null", "nesting.iommu: must be a string"},
    /* devices: objects naming a class; the pool assigns the rest */
    {"devices", "'rng'", "devices: must be an array"},
    {"devices", "{}", "devices: must be an array"},
    {"devices", "null", "devices: must be an array"},
    {"devices", "{'class':'rng'}", "devices: must be an array"},
    {"devices", "[1]", "devices[0]: must be an object"},
    {"devices", "['rng']", "devices[0]: must be an object"},
    {"devices", "['0000:3b:00.0']", "devices[0]: must be an object"},
    {"devices", "[{'class':'rng'},null]", "devices[1]: must be an object"},
    {"devices", "[[{'class':'rng'}]]", "devices[0]: must be an object"},
    {"devices", "[{}]", "devices[0].class: is required"},
    {"devices", "[{'class':'rng'},{'model':'edu'}]", "devices[1].class: is required"},
    {"devices", "[{'class':5}]", "devices[0].class: must be a string"},
    {"devices", "[{'class':null}]", "devices[0].class: must be a string"},
    {"devices", "[{'class':['rng']}]", "devices[0].class: must be a string"},
    {"devices", "[{'class':'Rng'}]", "devices[0].class: " NAME_MESSAGE},
    {"devices", "[{'class':''}]", "devices[0].class: " NAME_MESSAGE},
    {"devices", "[{'class':'rng-'}]", "devices[0].class: " NAME_MESSAGE},
    {"devices", "[{'class':'rng_1'}]", "devices[0].class: " NAME_MESSAGE},
    {"devices", "[{'class':'rng','Class':'rng'}]", "devices[0].Class: unknown field"},
    {"devices", "[{'class':'rng','count':2}]", "devices[0].count: unknown field"},
    /* what the server assigns is refused in a request */
    {"devices", "[{'class':'rng','id':'rng-0'}]",
     "devices[0].id: is assigned by the server; name the class only"},
    {"devices", "[{'class':'rng','model':'virtio-rng'}]",
     "devices[0].model: is assigned by the server; name the class only"},
    {"devices", "[{'class':'gpu','address':'0000:3b:00.0'}]",
     "devices[0].address: is assigned by the server; name the class only"},
    {"devices", "[{'class':'rng'},{'class':'edu','id':'edu-1','model':'edu'}]",
     "devices[1].id: is assigned by the server; name the class only"},
    {"devices", "[{'class':'rng','id':7}]", "devices[0].id: must be a string"},
    /* start */
    {"start", "1", "start: must be a boolean"},
    {"start", "'true'", "start: must be a boolean"},
    {"start", "null", "start: must be a boolean"},
};

static void assert_rejected(json_object *value, const char *expected)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiStackSpec) spec = api_accept(value, HV_BACKEND_KVM, &error);
    g_test_message("want '%s', got '%s'", expected, error ? error->message : "(accepted)");
    g_assert_null(spec);
    /* A 400 whose message starts with the field's path. */
    assert_bad_request(error, expected);
}

static void test_rejects(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        g_autoptr(json_object) value = parse_dq(base_spec);
        mutate(value, bad_cases[i].path, bad_cases[i].value);
        assert_rejected(value, bad_cases[i].field);
    }
}

static void test_rejects_built(void)
{
    /* Cases whose inputs are easier to build than to write. */
    g_autofree char *long_name = g_strnfill(64, 'a');
    g_autofree char *long_model = g_strnfill(65, 'M');
    g_autofree char *long_cmdline = g_strnfill(HV_SPEC_CMDLINE_MAX + 1, 'x');
    struct {
        const char *path;
        json_object *value;
        const char *field;
    } cases[] = {
        {"name", json_object_new_string(long_name), "name: " NAME_MESSAGE},
        {"boot.kernel", json_object_new_string(long_name), "boot.kernel: " NAME_MESSAGE},
        {"nesting.cpu", json_object_new_string_len("named:", 6), "nesting.cpu: model"},
        {"boot.cmdline", json_object_new_string(long_cmdline),
         "boot.cmdline: must be at most 2048 bytes"},
        /* Invalid UTF-8 can only come from C: the parser refuses it. */
        {"boot.cmdline", json_object_new_string("a\xff"), "boot.cmdline: must be valid UTF-8"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(json_object) value = parse_dq(base_spec);
        g_auto(GStrv) parts = g_strsplit(cases[i].path, ".", 2);
        json_object *target = parts[1] ? json_object_object_get(value, parts[0]) : value;
        json_object_object_add(target, parts[1] ? parts[1] : parts[0], cases[i].value);
        assert_rejected(value, cases[i].field);
    }
    {
        g_autofree char *cpu = g_strconcat("named:", long_model, NULL);
        g_autoptr(json_object) value = parse_dq(base_spec);
        json_object_object_add(json_object_object_get(value, "nesting"), "cpu",
                               json_object_new_string(cpu));
        assert_rejected(value, "nesting.cpu: model must match");
    }
    {
        /* One device too many. */
        g_autoptr(json_object) value = parse_dq(base_spec);
        json_object_object_add(value, "devices", devices_of("rng", API_SPEC_DEVICES_MAX + 1));
        assert_rejected(value, "devices: must have at most 16 entries");
    }
    {
        /* A class name one longer than a name may be. */
        g_autoptr(json_object) value = parse_dq(base_spec);
        json_object_object_add(value, "devices", devices_of(long_name, 1));
        assert_rejected(value, "devices[0].class: " NAME_MESSAGE);
    }

    /* Not an object at all. */
    static const char *const bodies[] = {"[]", "'spec'", "42", "true"};
    for (size_t i = 0; i < G_N_ELEMENTS(bodies); i++) {
        g_autoptr(json_object) value = parse_dq(bodies[i]);
        assert_rejected(value, "body: must be an object");
    }
    assert_rejected(NULL, "body: must be an object");
}

/* ---- accepted inputs ------------------------------------------------------- */

static ApiStackSpec *decode_ok(json_object *value)
{
    g_autoptr(GError) error = NULL;
    ApiStackSpec *spec = api_accept(value, HV_BACKEND_KVM, &error);
    if (error)
        g_test_message("%s -> %s", json_object_to_json_string(value), error->message);
    g_assert_no_error(error);
    g_assert_nonnull(spec);
    return spec;
}

static void test_decode_full(void)
{
    g_autoptr(json_object) value = parse_dq(base_spec);
    g_autoptr(ApiStackSpec) spec = decode_ok(value);
    g_assert_cmpstr(spec->name, ==, "web");
    g_assert_cmpuint(spec->vcpus, ==, 2);
    g_assert_cmpuint(spec->memory_mib, ==, 1024);
    g_assert_cmpstr(spec->boot_kernel, ==, "vmlinuz");
    g_assert_cmpstr(spec->boot_initrd, ==, "initrd");
    g_assert_cmpstr(spec->boot_cmdline, ==, "quiet");
    g_assert_null(spec->boot_disk);
    g_assert_cmpstr(spec->cpu, ==, "host-model");
    g_assert_cmpstr(spec->iommu, ==, "intel");
    g_assert_cmpuint(spec->devices->len, ==, 1);
    const ApiStackDevice *device = g_ptr_array_index(spec->devices, 0);
    g_assert_cmpstr(device->class_name, ==, "rng");
    /* Nothing allocated yet: the pool fills these in at create. */
    g_assert_null(device->id);
    g_assert_null(device->model);
    g_assert_null(device->address);
    g_assert_false(spec->start);
    assert_round_trip(spec);
}

static void test_decode_defaults(void)
{
    g_autoptr(json_object) value =
        parse_dq("{'name':'db','vcpus':1,'memory_mib':128,'boot':{'disk':'debian'}}");
    g_autoptr(ApiStackSpec) spec = decode_ok(value);
    g_assert_cmpstr(spec->boot_disk, ==, "debian");
    g_assert_null(spec->boot_kernel);
    g_assert_null(spec->boot_initrd);
    g_assert_null(spec->boot_cmdline);
    g_assert_null(spec->cpu);
    g_assert_cmpstr(spec->iommu, ==, "none");
    g_assert_nonnull(spec->devices);
    g_assert_cmpuint(spec->devices->len, ==, 0);
    g_assert_true(spec->start);

    /* The canonical form spells the defaults out, and leaves cpu out. */
    g_autoptr(json_object) json = api_stack_spec_to_json(spec);
    g_autofree char *text = api_json_to_string(json);
    g_assert_cmpstr(text, ==,
                    "{\"name\":\"db\",\"vcpus\":1,\"memory_mib\":128,"
                    "\"boot\":{\"disk\":\"debian\",\"firmware\":\"bios\",\"secure_boot\":false},"
                    "\"nesting\":{\"iommu\":\"none\"},"
                    "\"devices\":[],\"nics\":[],\"start\":true}");
    assert_round_trip(spec);

    /* An empty nesting object means the defaults too. */
    g_autoptr(json_object) empty_nesting =
        parse_dq("{'name':'db','vcpus':1,'memory_mib':128,'boot':{'disk':'debian'},'nesting':{}}");
    g_autoptr(ApiStackSpec) same = decode_ok(empty_nesting);
    assert_specs_equal(same, spec);
}

static void test_encode_canonical(void)
{
    g_autoptr(ApiStackSpec) spec = api_stack_spec_new();
    spec->name = g_strdup("web");
    spec->vcpus = 4;
    spec->memory_mib = 2048;
    spec->boot_kernel = g_strdup("vmlinuz");
    spec->boot_cmdline = g_strdup("console=ttyS0 \"quoted\"");
    spec->cpu = g_strdup("named:EPYC-v4");
    g_free(spec->iommu);
    spec->iommu = g_strdup("virtio");
    g_ptr_array_add(spec->devices, api_stack_device_new("rng", NULL, NULL, NULL));
    g_ptr_array_add(spec->devices, api_stack_device_new("edu", NULL, NULL, NULL));
    g_autoptr(GError) error = NULL;
    g_assert_true(api_stack_spec_validate(spec, &error));
    g_assert_no_error(error);

    g_autoptr(json_object) json = api_stack_spec_to_json(spec);
    g_autofree char *text = api_json_to_string(json);
    g_assert_cmpstr(
        text, ==,
        "{\"name\":\"web\",\"vcpus\":4,\"memory_mib\":2048,"
        "\"boot\":{\"kernel\":\"vmlinuz\",\"cmdline\":\"console=ttyS0 \\\"quoted\\\"\","
        "\"firmware\":\"bios\",\"secure_boot\":false},"
        "\"nesting\":{\"cpu\":\"named:EPYC-v4\",\"iommu\":\"virtio\"},"
        "\"devices\":[{\"class\":\"rng\"},{\"class\":\"edu\"}],\"nics\":[],\"start\":true}");
    assert_round_trip(spec);

    /* Allocated devices spell out what they hold, in a fixed order. */
    g_ptr_array_set_size(spec->devices, 0);
    g_ptr_array_add(spec->devices, api_stack_device_new("gpu", "gpu-0", "vfio", "0000:3b:00.0"));
    g_ptr_array_add(spec->devices, api_stack_device_new("rng", "rng-2", "virtio-rng", NULL));
    g_autoptr(json_object) held = api_stack_spec_to_json(spec);
    json_object *devices = NULL;
    g_assert_true(json_object_object_get_ex(held, "devices", &devices));
    g_autofree char *devices_text = api_json_to_string(devices);
    g_assert_cmpstr(devices_text, ==,
                    "[{\"class\":\"gpu\",\"id\":\"gpu-0\",\"model\":\"vfio\","
                    "\"address\":\"0000:3b:00.0\"},"
                    "{\"class\":\"rng\",\"id\":\"rng-2\",\"model\":\"virtio-rng\"}]");
    assert_round_trip(spec);
}

typedef struct {
    const char *path;
    const char *value;
} GoodCase;

static void test_accepts_edges(void)
{
    static const GoodCase cases[] = {
        {"vcpus", "1"},
        {"vcpus", "64"},
        {"memory_mib", "128"},
        {"memory_mib", "1048576"},
        {"name", "'a'"},
        {"name", "'0'"},
        {"name", "'web-1-2'"},
        {"boot", "{'kernel':'vmlinuz'}"},
        {"boot", "{'kernel':'vmlinuz','initrd':'initrd'}"},
        {"boot", "{'kernel':'vmlinuz','cmdline':''}"},
        {"boot", "{'disk':'debian-12'}"},
        {"boot.cmdline", "'console=ttyS0 root=/dev/vda \\u00e9t\\u00e9'"},
        /* next to U+FFFE: U+FFFD, U+E000 and U+1FFFE are XML characters */
        {"boot.cmdline", "'a\\ufffd \\ue000 \\ud83f\\udffe'"},
        {"nesting", NULL},
        {"nesting.cpu", NULL},
        {"nesting.iommu", NULL},
        {"nesting.cpu", "'host-passthrough'"},
        {"nesting.cpu", "'named:EPYC'"},
        {"nesting.cpu", "'named:Skylake-Server-v4'"},
        {"nesting.cpu", "'named:qemu64'"},
        {"nesting.cpu", "'named:a_b.c-d'"},
        {"nesting.iommu", "'virtio'"},
        {"devices", "[]"},
        {"devices", NULL},
        /* one class twice: two devices of it */
        {"devices", "[{'class':'rng'},{'class':'rng'}]"},
        {"devices", "[{'class':'edu'},{'class':'rng'}]"},
        {"devices", "[{'class':'a'}]"},
        {"devices", "[{'class':'0-gpu-9'}]"},
        {"start", "true"},
        {"start", NULL},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(json_object) value = parse_dq(base_spec);
        mutate(value, cases[i].path, cases[i].value);
        g_autoptr(ApiStackSpec) spec = decode_ok(value);
        assert_round_trip(spec);
    }

    /* Longest accepted values. */
    g_autofree char *name = g_strnfill(63, 'a');
    g_autofree char *model = g_strnfill(64, 'M');
    g_autofree char *cpu = g_strconcat("named:", model, NULL);
    g_autofree char *cmdline = g_strnfill(HV_SPEC_CMDLINE_MAX, 'x');
    g_autoptr(json_object) value = parse_dq(base_spec);
    json_object_object_add(value, "name", json_object_new_string(name));
    json_object *boot = json_object_object_get(value, "boot");
    json_object_object_add(boot, "kernel", json_object_new_string(name));
    json_object_object_add(boot, "cmdline", json_object_new_string(cmdline));
    json_object_object_add(json_object_object_get(value, "nesting"), "cpu",
                           json_object_new_string(cpu));
    json_object_object_add(value, "devices", devices_of(name, API_SPEC_DEVICES_MAX));
    g_autoptr(ApiStackSpec) spec = decode_ok(value);
    g_assert_cmpuint(strlen(spec->boot_cmdline), ==, HV_SPEC_CMDLINE_MAX);
    g_assert_cmpuint(spec->devices->len, ==, API_SPEC_DEVICES_MAX);
    assert_round_trip(spec);
}

/* ---- devices ------------------------------------------------------------------ */

/* Decodes @text with the request's decoder (no hvcore): iommu as decoded. */
static char *decoded_iommu(const char *text, gboolean record)
{
    g_autoptr(json_object) value = parse_dq(text);
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiStackSpec) spec = record ? api_stack_spec_from_record_json(value, &error)
                                          : api_stack_spec_from_json(value, &error);
    g_assert_no_error(error);
    g_assert_nonnull(spec);
    return g_strdup(spec->iommu);
}

#define SPEC_HEAD "{'name':'web','vcpus':1,'memory_mib':128,'boot':{'disk':'debian'}"

/* Devices reach L2 through a vIOMMU: they bring an intel one along unless
 * the request names one; without devices the default is none.  Whether
 * "none" with devices can become a domain is hvcore's rule, not the
 * decoder's: it keeps what was asked for. */
static void test_devices_iommu_default(void)
{
    for (int record = 0; record <= 1; record++) {
        g_autofree char *with = decoded_iommu(SPEC_HEAD ",'devices':[{'class':'rng'}]}", record);
        g_assert_cmpstr(with, ==, "intel");
        g_autofree char *empty_nesting = decoded_iommu(
            SPEC_HEAD ",'nesting':{'cpu':'host-model'},'devices':[{'class':'rng'}]}", record);
        g_assert_cmpstr(empty_nesting, ==, "intel");
        g_autofree char *without = decoded_iommu(SPEC_HEAD "}", record);
        g_assert_cmpstr(without, ==, "none");
        g_autofree char *no_devices = decoded_iommu(SPEC_HEAD ",'devices':[]}", record);
        g_assert_cmpstr(no_devices, ==, "none");
        g_autofree char *virtio = decoded_iommu(
            SPEC_HEAD ",'nesting':{'iommu':'virtio'},'devices':[{'class':'rng'}]}", record);
        g_assert_cmpstr(virtio, ==, "virtio");
        g_autofree char *none = decoded_iommu(
            SPEC_HEAD ",'nesting':{'iommu':'none'},'devices':[{'class':'rng'}]}", record);
        g_assert_cmpstr(none, ==, "none");
        g_autofree char *intel_alone =
            decoded_iommu(SPEC_HEAD ",'nesting':{'iommu':'intel'}}", record);
        g_assert_cmpstr(intel_alone, ==, "intel");
    }

    /* The default is spelled out, so a stored spec keeps it. */
    g_autoptr(json_object) value = parse_dq(SPEC_HEAD ",'devices':[{'class':'rng'}]}");
    g_autoptr(ApiStackSpec) spec = decode_ok(value);
    g_autoptr(json_object) json = api_stack_spec_to_json(spec);
    json_object *nesting = NULL;
    g_assert_true(json_object_object_get_ex(json, "nesting", &nesting));
    g_assert_cmpstr(json_object_get_string(json_object_object_get(nesting, "iommu")), ==, "intel");

    /* Asked for explicitly, none with devices decodes but cannot become a
     * domain: the L1 would have no vIOMMU to hand them on through. */
    g_autoptr(json_object) none =
        parse_dq(SPEC_HEAD ",'nesting':{'iommu':'none'},'devices':[{'class':'rng'}]}");
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiStackSpec) refused = api_accept(none, HV_BACKEND_KVM, &error);
    g_assert_null(refused);
    g_assert_nonnull(error);
    g_assert_true(g_str_has_prefix(error->message, "nesting.iommu: none cannot carry devices"));
}

/* A stored record may carry what the pool gave a device; a request may not. */
static void test_devices_record(void)
{
    static const char record[] =
        SPEC_HEAD ",'devices':[{'class':'gpu','id':'gpu-0','model':'vfio',"
                  "'address':'0000:3b:00.0'},{'class':'rng','id':'rng-1','model':'virtio-rng'},"
                  "{'class':'edu'}]}";
    g_autoptr(json_object) value = parse_dq(record);
    g_autoptr(GError) error = NULL;

    g_assert_null(api_stack_spec_from_json(value, &error));
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==,
                    "devices[0].id: is assigned by the server; name the class only");
    g_clear_error(&error);

    g_autoptr(ApiStackSpec) spec = api_stack_spec_from_record_json(value, &error);
    g_assert_no_error(error);
    g_assert_nonnull(spec);
    g_assert_cmpuint(spec->devices->len, ==, 3);
    const ApiStackDevice *gpu = g_ptr_array_index(spec->devices, 0);
    g_assert_cmpstr(gpu->class_name, ==, "gpu");
    g_assert_cmpstr(gpu->id, ==, "gpu-0");
    g_assert_cmpstr(gpu->model, ==, "vfio");
    g_assert_cmpstr(gpu->address, ==, "0000:3b:00.0");
    const ApiStackDevice *rng = g_ptr_array_index(spec->devices, 1);
    g_assert_cmpstr(rng->id, ==, "rng-1");
    g_assert_cmpstr(rng->model, ==, "virtio-rng");
    g_assert_null(rng->address);
    const ApiStackDevice *edu = g_ptr_array_index(spec->devices, 2);
    g_assert_cmpstr(edu->class_name, ==, "edu");
    g_assert_null(edu->id);
    g_assert_null(edu->model);
    assert_round_trip(spec);

    /* The record's other rules are the request's. */
    static const BadCase record_bad[] = {
        {"devices", "[{'id':'gpu-0','model':'vfio'}]", "devices[0].class: is required"},
        {"devices", "[{'class':'gpu','id':0}]", "devices[0].id: must be a string"},
        {"devices", "[{'class':'gpu','address':null}]", "devices[0].address: must be a string"},
        {"devices", "[{'class':'gpu','host':'a'}]", "devices[0].host: unknown field"},
        {"devices", "['0000:3b:00.0']", "devices[0]: must be an object"},
        {"devices", "[{'class':'GPU','id':'gpu-0'}]", "devices[0].class: " NAME_MESSAGE},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(record_bad); i++) {
        g_autoptr(json_object) bad = parse_dq(record);
        mutate(bad, record_bad[i].path, record_bad[i].value);
        g_autoptr(GError) bad_error = NULL;
        g_assert_null(api_stack_spec_from_record_json(bad, &bad_error));
        assert_bad_request(bad_error, record_bad[i].field);
    }
    g_autoptr(json_object) too_many = parse_dq(SPEC_HEAD "}");
    json_object_object_add(too_many, "devices", devices_of("rng", API_SPEC_DEVICES_MAX + 1));
    g_assert_null(api_stack_spec_from_record_json(too_many, &error));
    assert_bad_request(error, "devices: must have at most 16 entries");
}

/* A copy shares nothing with its original. */
static void test_spec_copy(void)
{
    g_autoptr(json_object) value =
        parse_dq(SPEC_HEAD ",'nesting':{'cpu':'named:EPYC','iommu':'virtio'},'start':false,"
                           "'devices':[{'class':'gpu','id':'gpu-0','model':'vfio',"
                           "'address':'0000:3b:00.0'},{'class':'rng'}]}");
    g_autoptr(GError) error = NULL;
    ApiStackSpec *spec = api_stack_spec_from_record_json(value, &error);
    g_assert_no_error(error);
    g_autoptr(ApiStackSpec) copy = api_stack_spec_copy(spec);
    assert_specs_equal(copy, spec);
    g_assert_true(copy->devices != spec->devices);
    g_assert_true(g_ptr_array_index(copy->devices, 0) != g_ptr_array_index(spec->devices, 0));
    api_stack_spec_free(spec);
    const ApiStackDevice *gpu = g_ptr_array_index(copy->devices, 0);
    g_assert_cmpstr(gpu->class_name, ==, "gpu");
    g_assert_cmpstr(gpu->address, ==, "0000:3b:00.0");
    g_assert_cmpstr(copy->iommu, ==, "virtio");
    g_assert_cmpstr(copy->cpu, ==, "named:EPYC");
    g_assert_false(copy->start);
}

/* ---- specs built in C --------------------------------------------------------- */

static ApiStackSpec *valid_spec(void)
{
    ApiStackSpec *spec = api_stack_spec_new();
    spec->name = g_strdup("web");
    spec->vcpus = 2;
    spec->memory_mib = 512;
    spec->boot_disk = g_strdup("debian");
    return spec;
}

static void test_new_defaults(void)
{
    g_autoptr(ApiStackSpec) spec = api_stack_spec_new();
    g_assert_null(spec->name);
    g_assert_null(spec->cpu);
    g_assert_cmpstr(spec->iommu, ==, "none");
    g_assert_nonnull(spec->devices);
    g_assert_cmpuint(spec->devices->len, ==, 0);
    g_assert_true(spec->start);
    api_stack_spec_free(NULL);
}

static void test_validate(void)
{
    {
        g_autoptr(ApiStackSpec) spec = valid_spec();
        g_autoptr(GError) error = NULL;
        g_assert_true(api_stack_spec_validate(spec, &error));
        g_assert_no_error(error);
        assert_round_trip(spec);
    }

    static const char *const fields[] = {
        "name: is required",
        "name: " NAME_MESSAGE,
        "vcpus: must be between 1 and 64",
        "vcpus: must be between 1 and 64",
        "memory_mib: must be between 128 and 1048576",
        "boot: must contain either kernel or disk",
        "boot.disk: cannot be combined with boot.kernel",
        "boot.initrd: is only allowed with boot.kernel",
        "boot.initrd: " NAME_MESSAGE,
        "boot.cmdline: must not contain control characters",
        "nesting.cpu: must be host-passthrough, host-model or named:<model>",
        "nesting.iommu: must be one of none, intel, virtio",
        "nesting.iommu: must be one of none, intel, virtio",
        "devices[1].class: is required",
        "devices[0]: must be an object",
        "boot.cmdline: must not contain U+FFFE",
        "devices[0].class: " NAME_MESSAGE,
        "devices: must have at most 16 entries",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(fields); i++) {
        g_autoptr(ApiStackSpec) spec = valid_spec();
        switch (i) {
        case 0:
            g_clear_pointer(&spec->name, g_free);
            break;
        case 1:
            g_free(spec->name);
            spec->name = g_strdup("Web_1");
            break;
        case 2:
            spec->vcpus = 0;
            break;
        case 3:
            spec->vcpus = 65;
            break;
        case 4:
            spec->memory_mib = G_MAXUINT;
            break;
        case 5:
            g_clear_pointer(&spec->boot_disk, g_free);
            break;
        case 6:
            spec->boot_kernel = g_strdup("vmlinuz");
            break;
        case 7:
            spec->boot_initrd = g_strdup("initrd");
            break;
        case 8:
            g_clear_pointer(&spec->boot_disk, g_free);
            spec->boot_kernel = g_strdup("vmlinuz");
            spec->boot_initrd = g_strdup("Initrd");
            break;
        case 9:
            g_clear_pointer(&spec->boot_disk, g_free);
            spec->boot_kernel = g_strdup("vmlinuz");
            spec->boot_cmdline = g_strdup("quiet\r");
            break;
        case 10:
            spec->cpu = g_strdup("max");
            break;
        case 11:
            g_clear_pointer(&spec->iommu, g_free);
            break;
        case 12:
            g_free(spec->iommu);
            spec->iommu = g_strdup("smmuv3");
            break;
        case 13:
            g_ptr_array_add(spec->devices, api_stack_device_new("rng", NULL, NULL, NULL));
            g_ptr_array_add(spec->devices, api_stack_device_new(NULL, NULL, NULL, NULL));
            break;
        case 14:
            g_ptr_array_add(spec->devices, NULL);
            break;
        case 15:
            g_clear_pointer(&spec->boot_disk, g_free);
            spec->boot_kernel = g_strdup("vmlinuz");
            spec->boot_cmdline = g_strdup("quiet \xef\xbf\xbe");
            break;
        case 16:
            g_ptr_array_add(spec->devices, api_stack_device_new("Rng", NULL, NULL, NULL));
            break;
        case 17:
            for (int d = 0; d <= API_SPEC_DEVICES_MAX; d++)
                g_ptr_array_add(spec->devices, api_stack_device_new("rng", NULL, NULL, NULL));
            break;
        }
        g_autoptr(GError) error = NULL;
        HvHostReport host = nesting_host();
        g_test_message("case %zu: %s", i, fields[i]);
        /* The CLI checks the shape; the daemon adds hvcore's rules. */
        g_assert_false(api_stack_spec_validate(spec, &error) &&
                       convert_validate_stack_spec(spec, HV_BACKEND_KVM, &host, &error));
        assert_bad_request(error, fields[i]);
    }
}

/* ---- the API's path and the domain build agree ------------------------------ */

static const GoodCase edge_cases[] = {
    {"nesting.cpu", NULL},
    {"nesting.cpu", "'host-passthrough'"},
    {"nesting.cpu", "'named:EPYC-Rome'"},
    {"nesting.cpu", "'named:'"},
    {"nesting.cpu", "'named:-x'"},
    {"nesting.iommu", "'none'"},
    {"nesting.iommu", "'virtio'"},
    {"boot", "{'disk':'debian'}"},
    {"boot", "{'kernel':'vmlinuz','cmdline':''}"},
    {"boot.cmdline", "'a\\ufffd \\ue000 \\ud83f\\udffe'"},
    {"boot.cmdline", "'a\\ufffe'"},
    {"boot.cmdline", "'a\\uffff'"},
    {"boot.cmdline", "'a\\u0085'"},
    {"boot.cmdline", "'a\\tb'"},
    {"devices", "[]"},
    {"devices", "[{'class':'edu'}]"},
    {"devices", "[{'class':'edu'},{'class':'edu'},{'class':'edu'},{'class':'edu'}]"},
    {"devices",
     "[{'class':'edu'},{'class':'edu'},{'class':'edu'},{'class':'edu'},{'class':'edu'}]"},
    {"devices", "[{'class':'rng'},{'class':'edu'}]"},
    {"vcpus", "64"},
    {"vcpus", "65"},
    {"memory_mib", "128"},
    {"memory_mib", "127"},
    {"memory_mib", "1048576"},
};

/* base_spec, without its host-model where the backend emulates the CPU, so
 * that the other rules get their turn there too. */
static json_object *base_for(HvBackend backend)
{
    json_object *value = parse_dq(base_spec);
    if (backend != HV_BACKEND_KVM)
        mutate(value, "nesting.cpu", NULL);
    return value;
}

static void test_agrees_with_domain(void)
{
    static const HvBackend backends[] = {HV_BACKEND_KVM, HV_BACKEND_TCG, HV_BACKEND_TEST};

    for (gsize b = 0; b < G_N_ELEMENTS(backends); b++) {
        for (gsize i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
            g_autoptr(json_object) value = base_for(backends[b]);
            mutate(value, bad_cases[i].path, bad_cases[i].value);
            assert_api_agrees_with_domain(value, backends[b]);
        }
        for (gsize i = 0; i < G_N_ELEMENTS(edge_cases); i++) {
            g_autoptr(json_object) value = base_for(backends[b]);
            mutate(value, edge_cases[i].path, edge_cases[i].value);
            assert_api_agrees_with_domain(value, backends[b]);
        }
        /* The longest of everything. */
        g_autoptr(json_object) value = base_for(backends[b]);
        g_autofree char *cmdline = g_strnfill(HV_SPEC_CMDLINE_MAX, 'x');
        json_object_object_add(json_object_object_get(value, "boot"), "cmdline",
                               json_object_new_string(cmdline));
        json_object_object_add(value, "devices", devices_of("rng", API_SPEC_DEVICES_MAX));
        assert_api_agrees_with_domain(value, backends[b]);
    }
}

/* The rules that depend on the host: a 400 at once, not a failed operation. */
static void test_backend_rules(void)
{
    g_autoptr(json_object) value = parse_dq(base_spec);
    g_autoptr(GError) error = NULL;

    /* base_spec asks for host-model: kvm only. */
    g_autoptr(ApiStackSpec) on_kvm = api_accept(value, HV_BACKEND_KVM, &error);
    g_assert_no_error(error);
    g_assert_nonnull(on_kvm);
    g_assert_null(api_accept(value, HV_BACKEND_TCG, &error));
    assert_bad_request(error, "nesting.cpu: host-model needs hardware virtualization");
    g_clear_error(&error);
    g_assert_null(api_accept(value, HV_BACKEND_TEST, &error));
    assert_bad_request(error, "nesting.cpu: host-model needs hardware virtualization");
    g_clear_error(&error);

    /* A kvm host with nesting off, or unprobed: the message says what to do. */
    g_autoptr(ApiStackSpec) with_models = resolved(on_kvm);
    HvHostReport off = nesting_host();
    off.nested = 0;
    g_assert_false(convert_validate_stack_spec(with_models, HV_BACKEND_KVM, &off, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST);
    g_assert_nonnull(strstr(error->message, "options kvm_intel nested=1"));
    g_clear_error(&error);
    g_assert_false(convert_validate_stack_spec(with_models, HV_BACKEND_KVM, NULL, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST);
    g_clear_error(&error);

    /* A spec built in C with values the decoder never lets through. */
    g_autoptr(ApiStackSpec) odd = api_stack_spec_new();
    odd->name = g_strdup("web");
    odd->vcpus = 1;
    odd->memory_mib = 128;
    odd->boot_disk = g_strdup("debian");
    odd->cpu = g_strdup("max");
    g_assert_false(convert_validate_stack_spec(odd, HV_BACKEND_TCG, NULL, &error));
    assert_bad_request(error, "nesting.cpu: must be host-passthrough, host-model or named:<model>");
    g_clear_error(&error);
    g_clear_pointer(&odd->cpu, g_free);
    g_free(odd->iommu);
    odd->iommu = g_strdup("amd");
    g_assert_false(convert_validate_stack_spec(odd, HV_BACKEND_TCG, NULL, &error));
    assert_bad_request(error, "nesting.iommu: must be one of none, intel, virtio");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/spec/rejects", test_rejects);
    g_test_add_func("/api/spec/rejects-built", test_rejects_built);
    g_test_add_func("/api/spec/decode-full", test_decode_full);
    g_test_add_func("/api/spec/decode-defaults", test_decode_defaults);
    g_test_add_func("/api/spec/encode-canonical", test_encode_canonical);
    g_test_add_func("/api/spec/accepts-edges", test_accepts_edges);
    g_test_add_func("/api/spec/devices-iommu-default", test_devices_iommu_default);
    g_test_add_func("/api/spec/devices-record", test_devices_record);
    g_test_add_func("/api/spec/copy", test_spec_copy);
    g_test_add_func("/api/spec/new-defaults", test_new_defaults);
    g_test_add_func("/api/spec/validate", test_validate);
    g_test_add_func("/api/spec/agrees-with-domain", test_agrees_with_domain);
    g_test_add_func("/api/spec/backend-rules", test_backend_rules);
    return g_test_run();
}
