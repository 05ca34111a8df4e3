/* api/stack: stack records, list pages, actions and the state machine. */
#include "api/error.h"
#include "api/json.h"
#include "api/stack.h"

#include <string.h>

#define STACK_ID "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
#define CREATED  "2024-05-01T12:00:00Z"
#define UPDATED  "2024-05-02T08:30:15.250Z"

/* Test JSON is written with ' for " to stay readable. */
#define VALID_STACK                                                                                \
    "{'id':'" STACK_ID "','name':'web','vcpus':2,'memory_mib':1024,"                               \
    "'boot':{'kernel':'vmlinuz','initrd':'initrd','cmdline':'console=ttyS0','firmware':'bios',"    \
    "'secure_boot':false},"                                                                        \
    "'nesting':{'cpu':'host-model','iommu':'intel'},"                                              \
    "'devices':[{'class':'gpu','id':'gpu-0','model':'vfio','address':'0000:3b:00.0'},"             \
    "{'class':'rng','id':'rng-3','model':'virtio-rng'}],'nics':[],'start':true,"                   \
    "'tenant':'acme','state':'running','host':'host-a','backend':'tcg','error':null,"              \
    "'created_at':'" CREATED "','updated_at':'" UPDATED "'}"

static json_object *parse(const char *text)
{
    g_autofree char *json = g_strdup(text);
    g_strdelimit(json, "'", '"');
    g_autoptr(GError) error = NULL;
    json_object *value = api_json_parse(json, strlen(json), API_JSON_MAX_DEPTH, &error);
    g_assert_no_error(error);
    g_assert_nonnull(value);
    return value;
}

/* Sets (or with @value NULL removes) the member at a dotted @path of @root;
 * @value is JSON text with ' for ", "null" included. */
static void mutate(json_object *root, const char *path, const char *value)
{
    g_auto(GStrv) parts = g_strsplit(path, ".", -1);
    json_object *object = root;
    guint n = g_strv_length(parts);
    for (guint i = 0; i + 1 < n; i++)
        g_assert_true(json_object_object_get_ex(object, parts[i], &object));
    if (!value) {
        g_assert_true(json_object_object_get_ex(object, parts[n - 1], NULL));
        json_object_object_del(object, parts[n - 1]);
        return;
    }
    json_object *member = strcmp(value, "null") == 0 ? NULL : parse(value);
    json_object_object_add(object, parts[n - 1], member);
}

static ApiStackSpec *spec_fixture(void)
{
    ApiStackSpec *spec = api_stack_spec_new();
    spec->name = g_strdup("web");
    spec->vcpus = 2;
    spec->memory_mib = 1024;
    spec->boot_kernel = g_strdup("vmlinuz");
    spec->boot_initrd = g_strdup("initrd");
    spec->boot_cmdline = g_strdup("console=ttyS0");
    spec->cpu = g_strdup("host-model");
    g_free(spec->iommu);
    spec->iommu = g_strdup("intel");
    /* As a record holds them: allocated, with what the pool gave. */
    g_ptr_array_add(spec->devices, api_stack_device_new("gpu", "gpu-0", "vfio", "0000:3b:00.0"));
    g_ptr_array_add(spec->devices, api_stack_device_new("rng", "rng-3", "virtio-rng", NULL));
    return spec;
}

static ApiStack *stack_fixture(void)
{
    ApiStack *stack = api_stack_new(spec_fixture());
    stack->id = g_strdup(STACK_ID);
    stack->tenant = g_strdup("acme");
    stack->state = API_STACK_STATE_RUNNING;
    stack->host = g_strdup("host-a");
    stack->backend = g_strdup("tcg");
    stack->created_at = g_strdup(CREATED);
    stack->updated_at = g_strdup(UPDATED);
    stack->domain_name = g_strdup("turtles-" STACK_ID);
    return stack;
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

static void assert_wire_equal(const ApiStack *a, const ApiStack *b)
{
    assert_specs_equal(a->spec, b->spec);
    g_assert_cmpstr(a->id, ==, b->id);
    g_assert_cmpstr(a->tenant, ==, b->tenant);
    g_assert_cmpint(a->state, ==, b->state);
    g_assert_cmpstr(a->host, ==, b->host);
    g_assert_cmpstr(a->backend, ==, b->backend);
    g_assert_cmpstr(a->created_at, ==, b->created_at);
    g_assert_cmpstr(a->updated_at, ==, b->updated_at);
    g_assert_cmpstr(a->error, ==, b->error);
}

/* encode -> text -> parse -> decode, and the text is stable. */
static ApiStack *round_trip(const ApiStack *stack)
{
    g_autoptr(json_object) encoded = api_stack_to_json(stack);
    g_autofree char *text = api_json_to_string(encoded);
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) value = api_json_parse(text, strlen(text), API_JSON_MAX_DEPTH, &error);
    g_assert_no_error(error);
    ApiStack *decoded = api_stack_from_json(value, &error);
    g_assert_no_error(error);
    g_assert_nonnull(decoded);
    g_autoptr(json_object) again = api_stack_to_json(decoded);
    g_autofree char *text_again = api_json_to_string(again);
    g_assert_cmpstr(text_again, ==, text);
    return decoded;
}

/* ---- states ------------------------------------------------------------------------- */

static const char *const state_texts[] = {
    "provisioning", "running", "stopped", "paused", "migrating", "error", "deleting",
};

static void test_state_strings(void)
{
    for (guint i = 0; i < G_N_ELEMENTS(state_texts); i++) {
        ApiStackState state = API_STACK_STATE_DELETING;
        g_assert_cmpstr(api_stack_state_to_string((ApiStackState)i), ==, state_texts[i]);
        g_assert_true(api_stack_state_from_string(state_texts[i], &state));
        g_assert_cmpint(state, ==, i);
    }
    static const char *const bad[] = {"", "Running", "stopping", "deleted", "running ", NULL};
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        ApiStackState state = API_STACK_STATE_PAUSED;
        g_assert_false(api_stack_state_from_string(bad[i], &state));
        g_assert_cmpint(state, ==, API_STACK_STATE_PAUSED);
    }
    g_assert_cmpstr(api_stack_state_to_string((ApiStackState)7), ==, "unknown");
    g_assert_cmpstr(api_stack_state_to_string((ApiStackState)-1), ==, "unknown");
}

/* ---- lifetime ---------------------------------------------------------------------- */

static void test_new_and_copy(void)
{
    g_autoptr(ApiStack) empty = api_stack_new(NULL);
    g_assert_nonnull(empty->spec);
    g_assert_nonnull(empty->spec->devices);
    g_assert_cmpint(empty->state, ==, API_STACK_STATE_PROVISIONING);
    g_assert_null(empty->error);
    api_stack_free(NULL);
    g_assert_null(api_stack_copy(NULL));

    g_autoptr(ApiStack) stack = stack_fixture();
    stack->error = g_strdup("last migration failed");
    g_autoptr(ApiStack) copy = api_stack_copy(stack);
    assert_wire_equal(copy, stack);
    g_assert_cmpstr(copy->domain_name, ==, stack->domain_name);
    g_assert_true(copy->spec != stack->spec);
    g_assert_true(copy->spec->devices != stack->spec->devices);
    for (guint i = 0; i < stack->spec->devices->len; i++) {
        const ApiStackDevice *mine = g_ptr_array_index(stack->spec->devices, i);
        const ApiStackDevice *theirs = g_ptr_array_index(copy->spec->devices, i);
        g_assert_true(mine != theirs);
        g_assert_true(mine->class_name != theirs->class_name);
        g_assert_true(mine->id != theirs->id);
    }
    g_assert_true(copy->spec->boot_kernel != stack->spec->boot_kernel);
    g_assert_true(copy->domain_name != stack->domain_name);
    /* Freeing the original leaves the copy whole (ASan/valgrind would catch a share). */
    g_clear_pointer(&stack, api_stack_free);
    const ApiStackDevice *device = g_ptr_array_index(copy->spec->devices, 0);
    g_assert_cmpstr(device->class_name, ==, "gpu");
    g_assert_cmpstr(device->id, ==, "gpu-0");
    g_assert_cmpstr(device->model, ==, "vfio");
    g_assert_cmpstr(device->address, ==, "0000:3b:00.0");
    g_assert_cmpstr(copy->spec->iommu, ==, "intel");
}

/* ---- JSON ---------------------------------------------------------------------------- */

static void test_round_trip(void)
{
    g_autoptr(ApiStack) stack = stack_fixture();
    g_autoptr(ApiStack) decoded = round_trip(stack);
    assert_wire_equal(decoded, stack);
    /* The domain is ours, not the client's. */
    g_assert_null(decoded->domain_name);

    /* Every state, a disk boot, and every nullable member null. */
    for (int state = API_STACK_STATE_PROVISIONING; state <= API_STACK_STATE_DELETING; state++) {
        g_autoptr(ApiStack) other = stack_fixture();
        other->state = (ApiStackState)state;
        g_clear_pointer(&other->spec->boot_kernel, g_free);
        g_clear_pointer(&other->spec->boot_initrd, g_free);
        g_clear_pointer(&other->spec->boot_cmdline, g_free);
        g_clear_pointer(&other->spec->cpu, g_free);
        other->spec->boot_disk = g_strdup("debian-12");
        other->spec->start = FALSE;
        g_ptr_array_set_size(other->spec->devices, 0);
        g_clear_pointer(&other->host, g_free);
        g_clear_pointer(&other->backend, g_free);
        if (state == API_STACK_STATE_ERROR)
            other->error = g_strdup("domain 'x' crashed: \"quoted\" \\ \xE5\x90\x8D");
        g_autoptr(ApiStack) back = round_trip(other);
        assert_wire_equal(back, other);
    }
}

static void test_to_json_shape(void)
{
    g_autoptr(ApiStack) stack = stack_fixture();
    g_autoptr(json_object) value = api_stack_to_json(stack);
    g_autofree char *text = api_json_to_string(value);
    g_autofree char *expected = g_strdup(VALID_STACK);
    g_strdelimit(expected, "'", '"');
    /* Flat: the spec's members (in its canonical form) beside the record's. */
    g_assert_cmpstr(text, ==, expected);
    g_assert_false(json_object_object_get_ex(value, "spec", NULL));
    g_assert_false(json_object_object_get_ex(value, "domain_name", NULL));

    /* A spec with defaults comes out canonical: nesting.iommu, devices, start. */
    g_autoptr(ApiStack) minimal = api_stack_new(NULL);
    minimal->spec->name = g_strdup("web");
    minimal->spec->vcpus = 1;
    minimal->spec->memory_mib = 128;
    minimal->spec->boot_disk = g_strdup("d");
    g_autoptr(json_object) min_value = api_stack_to_json(minimal);
    g_autofree char *min_text = api_json_to_string(min_value);
    g_assert_cmpstr(
        min_text, ==,
        "{\"id\":null,\"name\":\"web\",\"vcpus\":1,\"memory_mib\":128,"
        "\"boot\":{\"disk\":\"d\",\"firmware\":\"bios\",\"secure_boot\":false},\"nesting\":{"
        "\"iommu\":\"none\"},\"devices\":[],"
        "\"nics\":[],\"start\":true,\"tenant\":null,\"state\":\"provisioning\",\"host\":null,"
        "\"backend\":null,\"error\":null,\"created_at\":null,\"updated_at\":null}");

    g_autoptr(json_object) valid = parse(VALID_STACK);
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiStack) decoded = api_stack_from_json(valid, &error);
    g_assert_no_error(error);
    assert_wire_equal(decoded, stack);
}

/* A record carries what the pool gave each device (a request may not: see
 * test-api-spec), and a device not yet given one names its class only. */
static void test_record_devices(void)
{
    g_autoptr(json_object) value = parse(VALID_STACK);
    mutate(value, "devices",
           "[{'class':'gpu','id':'gpu-0','model':'vfio','address':'0000:3b:00.0'},"
           "{'class':'edu'}]");
    mutate(value, "nesting.iommu", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiStack) stack = api_stack_from_json(value, &error);
    g_assert_no_error(error);
    g_assert_nonnull(stack);
    g_assert_cmpuint(stack->spec->devices->len, ==, 2);
    const ApiStackDevice *held = g_ptr_array_index(stack->spec->devices, 0);
    g_assert_cmpstr(held->class_name, ==, "gpu");
    g_assert_cmpstr(held->id, ==, "gpu-0");
    g_assert_cmpstr(held->model, ==, "vfio");
    g_assert_cmpstr(held->address, ==, "0000:3b:00.0");
    const ApiStackDevice *wanted = g_ptr_array_index(stack->spec->devices, 1);
    g_assert_cmpstr(wanted->class_name, ==, "edu");
    g_assert_null(wanted->id);
    g_assert_null(wanted->model);
    g_assert_null(wanted->address);
    /* Devices bring a vIOMMU along when the record names none. */
    g_assert_cmpstr(stack->spec->iommu, ==, "intel");

    /* Encoded, the unallocated device stays a class alone. */
    g_autoptr(json_object) encoded = api_stack_to_json(stack);
    json_object *devices = NULL;
    g_assert_true(json_object_object_get_ex(encoded, "devices", &devices));
    g_assert_cmpstr(json_object_to_json_string_ext(json_object_array_get_idx(devices, 1),
                                                   JSON_C_TO_STRING_PLAIN),
                    ==, "{\"class\":\"edu\"}");
    g_autoptr(ApiStack) back = round_trip(stack);
    assert_wire_equal(back, stack);
}

typedef struct {
    const char *path;  /* member of VALID_STACK to change */
    const char *value; /* its new JSON value, NULL to remove it */
    const char *field; /* what the message must start with */
} BadCase;

static const BadCase stack_bad[] = {
    /* unknown fields: the spec's decoder sees everything but the record's */
    {"extra", "1", "extra: unknown field"},
    {"spec", "{}", "spec: unknown field"},
    {"domain_name", "'x'", "domain_name: unknown field"},
    {"boot.foo", "1", "boot.foo: unknown field"},
    /* the spec's rules, named as the spec names them */
    {"name", NULL, "name: is required"},
    {"name", "'Web'", "name: must be 1 to 63 characters"},
    {"vcpus", "0", "vcpus: must be between 1 and 64"},
    {"vcpus", "'2'", "vcpus: must be an integer"},
    {"memory_mib", NULL, "memory_mib: is required"},
    {"boot", NULL, "boot: is required"},
    {"boot.kernel", NULL, "boot: must contain either kernel or disk"},
    {"boot.disk", "'d'", "boot.disk: cannot be combined with boot.kernel"},
    {"nesting.iommu", "'amd'", "nesting.iommu: must be one of none, intel, virtio"},
    /* devices: objects naming their class; a record may hold id, model and
     * address, and what an address may be is hvcore's rule */
    {"devices", "[{'class':'gpu'},7]", "devices[1]: must be an object"},
    {"devices", "['0000:3b:00.0']", "devices[0]: must be an object"},
    {"devices", "[{'id':'gpu-0'}]", "devices[0].class: is required"},
    {"devices", "[{'class':'Gpu'}]", "devices[0].class: must be 1 to 63 characters"},
    {"devices", "[{'class':'gpu','id':7}]", "devices[0].id: must be a string"},
    {"devices", "[{'class':'gpu','model':null}]", "devices[0].model: must be a string"},
    {"devices", "[{'class':'gpu','address':false}]", "devices[0].address: must be a string"},
    {"devices", "[{'class':'gpu','slot':1}]", "devices[0].slot: unknown field"},
    {"start", "1", "start: must be a boolean"},
    /* the record's */
    {"id", NULL, "id: is required"},
    {"id", "null", "id: must be a string"},
    {"id", "'web'", "id: must be a UUID"},
    {"tenant", NULL, "tenant: is required"},
    {"tenant", "'Acme'", "tenant: must be 1 to 63 characters"},
    {"tenant", "3", "tenant: must be a string"},
    {"state", NULL, "state: is required"},
    {"state", "'stopping'",
     "state: must be one of provisioning, running, stopped, paused, "
     "migrating, error, deleting"},
    {"state", "null", "state: must be a string"},
    {"host", NULL, "host: is required"},
    {"host", "''", "host: must not be empty"},
    {"host", "[]", "host: must be a string or null"},
    {"backend", NULL, "backend: is required"},
    {"backend", "'xen'", "backend: must be one of kvm, tcg, test"},
    {"backend", "'KVM'", "backend: must be one of kvm, tcg, test"},
    {"backend", "true", "backend: must be a string or null"},
    {"error", NULL, "error: is required"},
    {"error", "{}", "error: must be a string or null"},
    {"created_at", NULL, "created_at: is required"},
    {"created_at", "'2024-05-01'", "created_at: must be an RFC 3339 UTC time"},
    {"updated_at", "null", "updated_at: must be a string"},
    {"updated_at", "'2024-05-01T12:00:00+02:00'", "updated_at: must be an RFC 3339 UTC time"},
};

static void test_from_json_bad(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(stack_bad); i++) {
        const BadCase *c = &stack_bad[i];
        g_test_message("%s <- %s", c->path, c->value ? c->value : "(removed)");
        g_autoptr(json_object) value = parse(VALID_STACK);
        mutate(value, c->path, c->value);
        g_autoptr(GError) error = NULL;
        g_autoptr(ApiStack) stack = api_stack_from_json(value, &error);
        g_assert_null(stack);
        g_assert_error(error, API_ERROR, API_ERROR_INVALID);
        if (!g_str_has_prefix(error->message, c->field))
            g_error("message \"%s\" does not start with \"%s\"", error->message, c->field);
    }

    static const char *const not_objects[] = {"[]", "'web'", "3", "true"};
    for (gsize i = 0; i < G_N_ELEMENTS(not_objects); i++) {
        g_autoptr(json_object) value = parse(not_objects[i]);
        g_autoptr(GError) error = NULL;
        g_assert_null(api_stack_from_json(value, &error));
        g_assert_error(error, API_ERROR, API_ERROR_INVALID);
        g_assert_cmpstr(error->message, ==, "body: must be an object");
    }
    g_autoptr(GError) error = NULL;
    g_assert_null(api_stack_from_json(NULL, &error));
    g_assert_cmpstr(error->message, ==, "body: must be an object");
}

/* ---- list pages ---------------------------------------------------------------------- */

static void test_list(void)
{
    g_autoptr(GPtrArray) stacks = g_ptr_array_new_with_free_func((GDestroyNotify)api_stack_free);
    g_autoptr(json_object) empty = api_stack_list_to_json(stacks, NULL);
    g_autofree char *empty_text = api_json_to_string(empty);
    g_assert_cmpstr(empty_text, ==, "{\"stacks\":[],\"next\":null}");

    g_ptr_array_add(stacks, stack_fixture());
    ApiStack *second = stack_fixture();
    g_free(second->spec->name);
    second->spec->name = g_strdup("db");
    second->state = API_STACK_STATE_STOPPED;
    g_ptr_array_add(stacks, second);

    g_autoptr(json_object) value = api_stack_list_to_json(stacks, "YWNtZQBkYg");
    g_autofree char *text = api_json_to_string(value);
    g_autoptr(json_object) parsed = parse(text);
    g_autoptr(GError) error = NULL;
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) decoded = api_stack_list_from_json(parsed, &next, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(next, ==, "YWNtZQBkYg");
    g_assert_cmpuint(decoded->len, ==, 2);
    for (guint i = 0; i < decoded->len; i++)
        assert_wire_equal(g_ptr_array_index(decoded, i), g_ptr_array_index(stacks, i));

    /* An out parameter: set to NULL on the last page, whatever it held. */
    static char stale[] = "stale";
    char *last = stale;
    g_clear_pointer(&decoded, g_ptr_array_unref);
    decoded = api_stack_list_from_json(empty, &last, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(decoded->len, ==, 0);
    g_assert_null(last);

    static const struct {
        const char *body;
        const char *message;
    } bad[] = {
        {"{'next':null}", "stacks: is required"},
        {"{'stacks':[]}", "next: is required"},
        {"{'stacks':[],'next':''}", "next: must not be empty"},
        {"{'stacks':[],'next':3}", "next: must be a string or null"},
        {"{'stacks':{},'next':null}", "stacks: must be an array"},
        {"{'stacks':[],'next':null,'total':0}", "total: unknown field"},
        {"{'stacks':[" VALID_STACK ",null],'next':null}", "stacks[1]: must be an object"},
        {"{'stacks':[" VALID_STACK ",{'name':'x','vcpus':0}],'next':null}",
         "stacks[1].vcpus: must be between 1 and 64"},
        {"{'stacks':[{'id':'x'}],'next':null}", "stacks[0].name: is required"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(json_object) body = parse(bad[i].body);
        g_autoptr(GError) local = NULL;
        g_autofree char *cursor = NULL;
        g_assert_null(api_stack_list_from_json(body, &cursor, &local));
        g_assert_error(local, API_ERROR, API_ERROR_INVALID);
        g_assert_cmpstr(local->message, ==, bad[i].message);
        g_assert_null(cursor);
    }
}

/* ---- actions ------------------------------------------------------------------------- */

static const char *const actions[] = {"start", "stop", "force-stop", "reboot", "pause", "resume"};

static void test_action_from_json(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(actions); i++) {
        g_autofree char *body = g_strdup_printf("{'action':'%s'}", actions[i]);
        g_autoptr(json_object) value = parse(body);
        g_autoptr(GError) error = NULL;
        g_autofree char *action = api_stack_action_from_json(value, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(action, ==, actions[i]);
    }

    static const struct {
        const char *body;
        const char *message;
    } bad[] = {
        {"{}", "action: is required"},
        {"{'action':null}", "action: must be a string"},
        {"{'action':1}", "action: must be a string"},
        {"{'action':'Start'}", "action: must be one of start, stop, force-stop, reboot, pause, "
                               "resume"},
        {"{'action':'delete'}", "action: must be one of start, stop, force-stop, reboot, pause, "
                                "resume"},
        {"{'action':'start','force':true}", "force: unknown field"},
        {"['start']", "body: must be an object"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(json_object) value = parse(bad[i].body);
        g_autoptr(GError) error = NULL;
        g_assert_null(api_stack_action_from_json(value, &error));
        g_assert_error(error, API_ERROR, API_ERROR_INVALID);
        g_assert_cmpstr(error->message, ==, bad[i].message);
    }
}

static void test_migrate_from_json(void)
{
    static const char *const good[] = {"{'peer':'hostb'}", "{'peer':'hostb','live':true}"};
    for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autoptr(json_object) value = parse(good[i]);
        g_autoptr(GError) error = NULL;
        g_autofree char *peer = api_stack_migrate_from_json(value, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(peer, ==, "hostb");
    }

    static const struct {
        const char *body;
        const char *prefix;
    } bad[] = {
        {"{}", "peer: is required"},
        {"{'peer':5}", "peer: must be a string"},
        {"{'peer':'Host_B'}", "peer: "},
        {"{'peer':'hostb','live':false}", "live: only live migration is supported"},
        {"{'peer':'hostb','live':'yes'}", "live: must be a boolean"},
        {"{'peer':'hostb','offline':true}", "offline: unknown field"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(json_object) value = parse(bad[i].body);
        g_autoptr(GError) error = NULL;
        g_assert_null(api_stack_migrate_from_json(value, &error));
        g_assert_error(error, API_ERROR, API_ERROR_INVALID);
        g_assert_true(g_str_has_prefix(error->message, bad[i].prefix));
    }
}

static void test_action_allowed_table(void)
{
    /* Rows: states in enum order; columns: actions as above.  Written out in
     * full so that a change to the machine is a change to this table. */
    static const gboolean allowed[7][6] = {
        /*                 start  stop   force  reboot pause  resume */
        /* provisioning */ {FALSE, FALSE, TRUE, FALSE, FALSE, FALSE},
        /* running */ {FALSE, TRUE, TRUE, TRUE, TRUE, FALSE},
        /* stopped */ {TRUE, FALSE, FALSE, FALSE, FALSE, FALSE},
        /* paused */ {FALSE, TRUE, TRUE, FALSE, FALSE, TRUE},
        /* migrating */ {FALSE, FALSE, FALSE, FALSE, FALSE, FALSE},
        /* error */ {TRUE, FALSE, TRUE, FALSE, FALSE, FALSE},
        /* deleting */ {FALSE, FALSE, FALSE, FALSE, FALSE, FALSE},
    };
    G_STATIC_ASSERT(G_N_ELEMENTS(allowed) == G_N_ELEMENTS(state_texts));

    for (guint s = 0; s < G_N_ELEMENTS(allowed); s++) {
        for (guint a = 0; a < G_N_ELEMENTS(actions); a++) {
            g_autoptr(GError) error = NULL;
            gboolean ok = api_stack_action_allowed((ApiStackState)s, actions[a], &error);
            g_test_message("%s in %s", actions[a], state_texts[s]);
            g_assert_cmpint(ok, ==, allowed[s][a]);
            if (ok) {
                g_assert_no_error(error);
                continue;
            }
            g_assert_error(error, API_ERROR, API_ERROR_INVALID);
            g_autofree char *expected =
                g_strdup_printf("cannot %s a stack that is %s", actions[a], state_texts[s]);
            g_assert_cmpstr(error->message, ==, expected);
        }
    }

    g_autoptr(GError) error = NULL;
    g_assert_false(api_stack_action_allowed(API_STACK_STATE_STOPPED, "pause", &error));
    g_assert_cmpstr(error->message, ==, "cannot pause a stack that is stopped");
    g_clear_error(&error);

    /* Unknown actions are refused whatever the state, and say what is known. */
    static const char *const unknown[] = {"delete", "Start", "", "force_stop", NULL};
    for (gsize i = 0; i < G_N_ELEMENTS(unknown); i++) {
        g_assert_false(api_stack_action_allowed(API_STACK_STATE_RUNNING, unknown[i], &error));
        g_assert_error(error, API_ERROR, API_ERROR_INVALID);
        g_assert_cmpstr(error->message, ==,
                        "action: must be one of start, stop, force-stop, reboot, pause, resume");
        g_clear_error(&error);
    }
    /* A state outside the enum allows nothing (and does not shift past the mask). */
    g_assert_false(api_stack_action_allowed((ApiStackState)40, "start", &error));
    g_assert_cmpstr(error->message, ==, "cannot start a stack that is unknown");
    g_clear_error(&error);
    g_assert_false(api_stack_action_allowed((ApiStackState)-1, "stop", NULL));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/stack/state-strings", test_state_strings);
    g_test_add_func("/api/stack/new-and-copy", test_new_and_copy);
    g_test_add_func("/api/stack/round-trip", test_round_trip);
    g_test_add_func("/api/stack/to-json-shape", test_to_json_shape);
    g_test_add_func("/api/stack/from-json-bad", test_from_json_bad);
    g_test_add_func("/api/stack/record-devices", test_record_devices);
    g_test_add_func("/api/stack/list", test_list);
    g_test_add_func("/api/stack/action-from-json", test_action_from_json);
    g_test_add_func("/api/stack/action-allowed-table", test_action_allowed_table);
    g_test_add_func("/api/stack/migrate-from-json", test_migrate_from_json);
    return g_test_run();
}
