/* api/device: device classes (the operator's pool) and their devices on the
 * wire: the create and patch bodies decoded strictly, the PCI address form,
 * the attach body, and what a client reads. */
#include "api/device.h"
#include "api/error.h"
#include "api/json.h"

#include <string.h>

#define CREATED "2024-05-01T12:00:00Z"
#define UPDATED "2024-05-02T08:30:15Z"

#define NAME_MESSAGE API_NAME_RULE_WORDS
#define PCI_MESSAGE                                                                                \
    "must be a PCI address like 0000:3b:00.0 (lower-case hex, slot 00-1f, function 0-7)"

/* Test JSON is written with ' for " to stay readable. */
static json_object *parse_dq(const char *text)
{
    g_autofree char *json = g_strdup(text);
    g_strdelimit(json, "'", '"');
    g_autoptr(GError) error = NULL;
    json_object *value = api_json_parse(json, strlen(json), API_JSON_MAX_DEPTH, &error);
    g_assert_no_error(error);
    g_assert_nonnull(value);
    return value;
}

static char *to_text(json_object *value)
{
    return api_json_to_string(value);
}

/* The message is exactly @expected (a 400 naming its field first). */
static void assert_invalid(const GError *error, const char *expected)
{
    g_assert_nonnull(error);
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    if (!g_str_has_prefix(error->message, expected))
        g_error("message \"%s\" does not start with \"%s\"", error->message, expected);
}

static ApiDeviceClass *create_ok(const char *text)
{
    g_autoptr(json_object) value = parse_dq(text);
    g_autoptr(GError) error = NULL;
    ApiDeviceClass *device_class = api_device_class_create_from_json(value, &error);
    g_assert_no_error(error);
    g_assert_nonnull(device_class);
    return device_class;
}

/* ---- PCI addresses ------------------------------------------------------------ */

static void test_pci_address(void)
{
    static const char *const good[] = {"0000:3b:00.0", "ffff:ff:1f.7", "0000:00:00.0",
                                       "abcd:ef:10.3"};
    for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autoptr(GError) error = NULL;
        g_assert_true(api_device_check_pci_address("addresses[0]", good[i], &error));
        g_assert_no_error(error);
    }

    static const char *const bad[] = {
        "0000:3B:00.0",  /* upper case: one device has one spelling */
        "0000:3b:00.8",  /* a function has 3 bits */
        "0000:3b:00.f",  /* ... */
        "0000:3b:20.0",  /* a slot has 5 bits */
        "0000:3b:ff.0",  /* ... */
        "000:3b:00.0",   /* short domain */
        "3b:00.0",       /* no domain */
        "0000:3b:00:0",  /* wrong separator */
        "0000-3b:00.0",  /* ... */
        "0000:3g:00.0",  /* not hex */
        "0000:3b:00.0 ", /* trailing space */
        " 0000:3b:00.0", /* leading space */
        "00000:3b:00.0", /* too long */
        "",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_test_message("'%s'", bad[i]);
        g_assert_false(api_device_check_pci_address("addresses[2]", bad[i], &error));
        g_assert_error(error, API_ERROR, API_ERROR_INVALID);
        g_assert_cmpstr(error->message, ==, "addresses[2]: " PCI_MESSAGE);
    }
    g_autoptr(GError) error = NULL;
    g_assert_false(api_device_check_pci_address("addresses[0]", NULL, &error));
    assert_invalid(error, "addresses[0]: must be a PCI address");
    /* No error wanted: still a plain answer. */
    g_assert_false(api_device_check_pci_address("x", "0000:3b:00.9", NULL));
}

/* ---- create ------------------------------------------------------------------- */

static void test_create_emulated(void)
{
    g_autoptr(ApiDeviceClass) rng = create_ok("{'name':'rng','kind':'emulated','model':"
                                              "'virtio-rng','capacity':4,'description':'entropy'}");
    g_assert_cmpstr(rng->name, ==, "rng");
    g_assert_cmpstr(rng->kind, ==, "emulated");
    g_assert_cmpstr(rng->model, ==, "virtio-rng");
    g_assert_cmpint(rng->capacity, ==, 4);
    g_assert_cmpint(rng->in_use, ==, 0);
    g_assert_nonnull(rng->addresses);
    g_assert_cmpuint(rng->addresses->len, ==, 0);
    g_assert_false(rng->force);
    g_assert_cmpstr(rng->description, ==, "entropy");
    g_assert_null(rng->created_at);

    g_autoptr(ApiDeviceClass) edu =
        create_ok("{'name':'edu','kind':'emulated','model':'edu','capacity':64}");
    g_assert_cmpstr(edu->model, ==, "edu");
    g_assert_cmpint(edu->capacity, ==, API_DEVICE_CLASS_CAPACITY_MAX);
    g_assert_null(edu->description);

    /* force false says nothing, so an emulated class may carry it. */
    g_autoptr(ApiDeviceClass) quiet =
        create_ok("{'name':'e1','kind':'emulated','model':'edu','capacity':1,'force':false}");
    g_assert_cmpint(quiet->capacity, ==, 1);
    g_assert_false(quiet->force);
}

static void test_create_vfio(void)
{
    g_autoptr(ApiDeviceClass) gpu = create_ok(
        "{'name':'gpu','kind':'vfio','addresses':['0000:3b:00.1','0000:3b:00.0'],'force':true}");
    g_assert_cmpstr(gpu->kind, ==, "vfio");
    g_assert_cmpstr(gpu->model, ==, "vfio");
    /* One device per function, in the order given. */
    g_assert_cmpint(gpu->capacity, ==, 2);
    g_assert_cmpuint(gpu->addresses->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(gpu->addresses, 0), ==, "0000:3b:00.1");
    g_assert_cmpstr(g_ptr_array_index(gpu->addresses, 1), ==, "0000:3b:00.0");
    g_assert_true(gpu->force);

    g_autoptr(ApiDeviceClass) named =
        create_ok("{'name':'nic','kind':'vfio','model':'vfio','addresses':['ffff:ff:1f.7']}");
    g_assert_cmpstr(named->model, ==, "vfio");
    g_assert_cmpint(named->capacity, ==, 1);
    g_assert_false(named->force);

    /* The most functions a class may have. */
    g_autoptr(json_object) value = parse_dq("{'name':'many','kind':'vfio'}");
    json_object *addresses = json_object_new_array();
    for (int i = 0; i < API_DEVICE_CLASS_CAPACITY_MAX; i++) {
        g_autofree char *address = g_strdup_printf("0000:%02x:%02x.%d", i / 32, (i / 8) % 4, i % 8);
        json_object_array_add(addresses, json_object_new_string(address));
    }
    json_object_object_add(value, "addresses", addresses);
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiDeviceClass) many = api_device_class_create_from_json(value, &error);
    g_assert_no_error(error);
    g_assert_cmpint(many->capacity, ==, API_DEVICE_CLASS_CAPACITY_MAX);
}

typedef struct {
    const char *body;
    const char *message; /* what the message must start with */
} BadBody;

static const BadBody create_bad[] = {
    /* shape */
    {"[]", "body: must be an object"},
    {"'rng'", "body: must be an object"},
    {"{'name':'rng','kind':'emulated','model':'edu','capacity':1,'extra':1}",
     "extra: unknown field"},
    {"{'name':'rng','kind':'emulated','model':'edu','capacity':1,'Name':'rng'}",
     "Name: unknown field"},
    {"{'name':'rng','kind':'emulated','model':'edu','capacity':1,'in_use':0}",
     "in_use: unknown field"},
    {"{'kind':'emulated','model':'edu','capacity':1}", "name: is required"},
    {"{'name':'Rng','kind':'emulated','model':'edu','capacity':1}", "name: " NAME_MESSAGE},
    {"{'name':'rng-','kind':'emulated','model':'edu','capacity':1}", "name: " NAME_MESSAGE},
    {"{'name':7,'kind':'emulated','model':'edu','capacity':1}", "name: must be a string"},
    {"{'name':'rng','model':'edu','capacity':1}", "kind: is required"},
    {"{'name':'rng','kind':'pci','model':'edu','capacity':1}",
     "kind: must be one of emulated, vfio"},
    {"{'name':'rng','kind':'Emulated','model':'edu','capacity':1}",
     "kind: must be one of emulated, vfio"},
    {"{'name':'rng','kind':null,'model':'edu','capacity':1}", "kind: must be a string"},
    /* emulated: a model and a capacity, no host functions */
    {"{'name':'rng','kind':'emulated','capacity':1}",
     "model: is required for an emulated class (edu or virtio-rng)"},
    {"{'name':'rng','kind':'emulated','model':'vfio','capacity':1}",
     "model: must be one of edu, virtio-rng"},
    {"{'name':'rng','kind':'emulated','model':'virtio-net','capacity':1}",
     "model: must be one of edu, virtio-rng"},
    {"{'name':'rng','kind':'emulated','model':5,'capacity':1}", "model: must be a string"},
    {"{'name':'rng','kind':'emulated','model':'edu'}",
     "capacity: is required for an emulated class"},
    {"{'name':'rng','kind':'emulated','model':'edu','capacity':0}",
     "capacity: must be between 1 and 64"},
    {"{'name':'rng','kind':'emulated','model':'edu','capacity':65}",
     "capacity: must be between 1 and 64"},
    {"{'name':'rng','kind':'emulated','model':'edu','capacity':-1}",
     "capacity: must be between 1 and 64"},
    {"{'name':'rng','kind':'emulated','model':'edu','capacity':'4'}",
     "capacity: must be an integer"},
    {"{'name':'rng','kind':'emulated','model':'edu','capacity':1.5}",
     "capacity: must be an integer"},
    {"{'name':'rng','kind':'emulated','model':'edu','capacity':1,'addresses':['0000:3b:00.0']}",
     "addresses: is only for a vfio class"},
    {"{'name':'rng','kind':'emulated','model':'edu','capacity':1,'force':true}",
     "force: is only for a vfio class"},
    {"{'name':'rng','kind':'emulated','model':'edu','capacity':1,'force':'yes'}",
     "force: must be a boolean"},
    /* vfio: host functions, which are its capacity */
    {"{'name':'gpu','kind':'vfio'}", "addresses: is required for a vfio class"},
    {"{'name':'gpu','kind':'vfio','force':true}", "addresses: is required for a vfio class"},
    {"{'name':'gpu','kind':'vfio','addresses':['0000:3b:00.0'],'capacity':1}",
     "capacity: is the number of addresses for a vfio class"},
    {"{'name':'gpu','kind':'vfio','addresses':['0000:3b:00.0'],'model':'edu'}",
     "model: must be vfio (or left out) for a vfio class"},
    {"{'name':'gpu','kind':'vfio','addresses':[]}", "addresses: must have 1 to 64 entries"},
    {"{'name':'gpu','kind':'vfio','addresses':'0000:3b:00.0'}", "addresses: must be an array"},
    {"{'name':'gpu','kind':'vfio','addresses':null}", "addresses: must be an array"},
    {"{'name':'gpu','kind':'vfio','addresses':[7]}", "addresses[0]: must be a string"},
    {"{'name':'gpu','kind':'vfio','addresses':['0000:3b:00.0',null]}",
     "addresses[1]: must be a string"},
    {"{'name':'gpu','kind':'vfio','addresses':['0000:3B:00.0']}", "addresses[0]: " PCI_MESSAGE},
    {"{'name':'gpu','kind':'vfio','addresses':['0000:3b:00.0','0000:3b:20.0']}",
     "addresses[1]: " PCI_MESSAGE},
    {"{'name':'gpu','kind':'vfio','addresses':['0000:3b:00.8']}", "addresses[0]: " PCI_MESSAGE},
    {"{'name':'gpu','kind':'vfio','addresses':['3b:00.0']}", "addresses[0]: " PCI_MESSAGE},
    {"{'name':'gpu','kind':'vfio','addresses':['']}", "addresses[0]: " PCI_MESSAGE},
    {"{'name':'gpu','kind':'vfio','addresses':['0000:3b:00.0','0000:3b:00.1','0000:3b:00.0']}",
     "addresses[2]: repeats addresses[0]"},
    {"{'name':'gpu','kind':'vfio','addresses':['0000:3b:00.1','0000:3b:00.1']}",
     "addresses[1]: repeats addresses[0]"},
    /* description */
    {"{'name':'rng','kind':'emulated','model':'edu','capacity':1,'description':5}",
     "description: must be a string"},
    {"{'name':'rng','kind':'emulated','model':'edu','capacity':1,'description':null}",
     "description: must be a string"},
};

static void test_create_bad(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(create_bad); i++) {
        g_test_message("%s", create_bad[i].body);
        g_autoptr(json_object) value = parse_dq(create_bad[i].body);
        g_autoptr(GError) error = NULL;
        g_autoptr(ApiDeviceClass) device_class = api_device_class_create_from_json(value, &error);
        g_assert_null(device_class);
        assert_invalid(error, create_bad[i].message);
    }
    g_autoptr(GError) error = NULL;
    g_assert_null(api_device_class_create_from_json(NULL, &error));
    assert_invalid(error, "body: must be an object");
}

static void test_create_limits(void)
{
    /* 65 functions. */
    g_autoptr(json_object) value = parse_dq("{'name':'many','kind':'vfio'}");
    json_object *addresses = json_object_new_array();
    for (int i = 0; i <= API_DEVICE_CLASS_CAPACITY_MAX; i++) {
        g_autofree char *address = g_strdup_printf("0000:%02x:%02x.%d", i / 32, (i / 8) % 4, i % 8);
        json_object_array_add(addresses, json_object_new_string(address));
    }
    json_object_object_add(value, "addresses", addresses);
    g_autoptr(GError) error = NULL;
    g_assert_null(api_device_class_create_from_json(value, &error));
    assert_invalid(error, "addresses: must have 1 to 64 entries");
    g_clear_error(&error);

    /* A class name of 60 characters, not 61: its devices' ids ("<class>-63")
     * must stay within hvcore's 63. */
    g_autofree char *name_60 = g_strnfill(API_DEVICE_CLASS_NAME_MAX, 'c');
    g_autofree char *name_61 = g_strnfill(API_DEVICE_CLASS_NAME_MAX + 1, 'c');
    g_autofree char *body_60 = g_strdup_printf(
        "{\"name\":\"%s\",\"kind\":\"emulated\",\"model\":\"edu\",\"capacity\":64}", name_60);
    g_autofree char *body_61 = g_strdup_printf(
        "{\"name\":\"%s\",\"kind\":\"emulated\",\"model\":\"edu\",\"capacity\":64}", name_61);
    g_autoptr(json_object) value_60 = json_tokener_parse(body_60);
    g_autoptr(json_object) value_61 = json_tokener_parse(body_61);
    g_autoptr(ApiDeviceClass) class_60 = api_device_class_create_from_json(value_60, &error);
    g_assert_no_error(error);
    g_assert_nonnull(class_60);
    g_assert_null(api_device_class_create_from_json(value_61, &error));
    assert_invalid(error, "name: must be at most 60 characters for a device class");
    g_clear_error(&error);

    /* The description: 256 bytes (of UTF-8, counted in bytes) but no more. */
    g_autofree char *most = g_strnfill(API_DEVICE_DESCRIPTION_MAX, 'd');
    g_autofree char *too_long = g_strnfill(API_DEVICE_DESCRIPTION_MAX + 1, 'd');
    GString *accents = g_string_new(NULL);
    for (int i = 0; i < API_DEVICE_DESCRIPTION_MAX / 2 + 1; i++)
        g_string_append(accents, "\xC3\xA9"); /* 2 bytes each: 258 bytes, 129 characters */
    g_autofree char *accented = g_string_free(accents, FALSE);
    struct {
        const char *description;
        gboolean ok;
    } cases[] = {
        {most, TRUE},
        {"", TRUE},
        {"caf\xC3\xA9 \xF0\x9F\x90\xA2", TRUE},
        {too_long, FALSE},
        {accented, FALSE},
        /* Invalid UTF-8 can only come from C: the parser refuses it. */
        {"a\xff", FALSE},
        {"\xC3", FALSE},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(json_object) body =
            parse_dq("{'name':'rng','kind':'emulated','model':'edu','capacity':1}");
        json_object_object_add(body, "description", json_object_new_string(cases[i].description));
        g_autoptr(GError) local = NULL;
        g_autoptr(ApiDeviceClass) device_class = api_device_class_create_from_json(body, &local);
        g_test_message("case %zu", i);
        if (cases[i].ok) {
            g_assert_no_error(local);
            g_assert_cmpstr(device_class->description, ==, cases[i].description);
        } else {
            g_assert_null(device_class);
            g_assert_error(local, API_ERROR, API_ERROR_INVALID);
            g_assert_cmpstr(local->message, ==,
                            "description: must be UTF-8 text of at most 256 bytes");
        }
    }
}

/* ---- patch -------------------------------------------------------------------- */

typedef struct {
    gboolean ok;
    gboolean has_capacity;
    gint64 capacity;
    gboolean has_description;
    char *description;
} Patch;

static Patch patch(const char *text, GError **error)
{
    g_autoptr(json_object) value = parse_dq(text);
    Patch p = {.capacity = -7, .description = NULL};
    p.has_capacity = p.has_description = 99; /* must be set either way */
    p.ok = api_device_class_patch_from_json(value, &p.has_capacity, &p.capacity, &p.has_description,
                                            &p.description, error);
    return p;
}

static void test_patch(void)
{
    g_autoptr(GError) error = NULL;

    Patch p = patch("{'capacity':8}", &error);
    g_assert_no_error(error);
    g_assert_true(p.ok);
    g_assert_true(p.has_capacity);
    g_assert_cmpint(p.capacity, ==, 8);
    g_assert_false(p.has_description);

    /* A class may shrink to nothing, and grow to the most. */
    p = patch("{'capacity':0}", &error);
    g_assert_no_error(error);
    g_assert_true(p.has_capacity);
    g_assert_cmpint(p.capacity, ==, 0);
    p = patch("{'capacity':64}", &error);
    g_assert_no_error(error);
    g_assert_cmpint(p.capacity, ==, API_DEVICE_CLASS_CAPACITY_MAX);

    p = patch("{'description':'spare rngs'}", &error);
    g_assert_no_error(error);
    g_assert_false(p.has_capacity);
    g_assert_true(p.has_description);
    g_assert_cmpstr(p.description, ==, "spare rngs");
    g_free(p.description);

    /* null clears it: present, and NULL. */
    p = patch("{'description':null}", &error);
    g_assert_no_error(error);
    g_assert_true(p.ok);
    g_assert_false(p.has_capacity);
    g_assert_true(p.has_description);
    g_assert_null(p.description);

    p = patch("{'capacity':2,'description':''}", &error);
    g_assert_no_error(error);
    g_assert_true(p.has_capacity);
    g_assert_cmpint(p.capacity, ==, 2);
    g_assert_true(p.has_description);
    g_assert_cmpstr(p.description, ==, "");
    g_free(p.description);
}

static const BadBody patch_bad[] = {
    {"{}", "body: must change capacity or description"},
    {"[]", "body: must be an object"},
    {"{'capacity':65}", "capacity: must be between 0 and 64"},
    {"{'capacity':-1}", "capacity: must be between 0 and 64"},
    {"{'capacity':'2'}", "capacity: must be an integer"},
    {"{'capacity':null}", "capacity: must be an integer"},
    {"{'description':5}", "description: must be a string"},
    {"{'name':'rng2'}", "name: unknown field"},
    {"{'kind':'vfio','capacity':1}", "kind: unknown field"},
    {"{'addresses':['0000:3b:00.0']}", "addresses: unknown field"},
    {"{'model':'edu'}", "model: unknown field"},
    {"{'capacity':1,'force':true}", "force: unknown field"},
};

static void test_patch_bad(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(patch_bad); i++) {
        g_test_message("%s", patch_bad[i].body);
        g_autoptr(GError) error = NULL;
        Patch p = patch(patch_bad[i].body, &error);
        g_assert_false(p.ok);
        g_assert_null(p.description);
        assert_invalid(error, patch_bad[i].message);
    }
    g_autofree char *too_long = g_strnfill(API_DEVICE_DESCRIPTION_MAX + 1, 'd');
    g_autoptr(json_object) value = json_object_new_object();
    json_object_object_add(value, "description", json_object_new_string(too_long));
    gboolean has_capacity = FALSE, has_description = FALSE;
    gint64 capacity = 0;
    char *description = NULL;
    g_autoptr(GError) error = NULL;
    g_assert_false(api_device_class_patch_from_json(value, &has_capacity, &capacity,
                                                    &has_description, &description, &error));
    g_assert_null(description);
    assert_invalid(error, "description: must be UTF-8 text of at most 256 bytes");
}

/* ---- what a client reads ------------------------------------------------------ */

static void test_class_to_json(void)
{
    g_autoptr(ApiDeviceClass) rng = api_device_class_new();
    rng->name = g_strdup("rng");
    rng->kind = g_strdup("emulated");
    rng->model = g_strdup("virtio-rng");
    rng->capacity = 4;
    rng->in_use = 1;
    rng->created_at = g_strdup(CREATED);
    rng->updated_at = g_strdup(UPDATED);
    g_autoptr(json_object) value = api_device_class_to_json(rng);
    g_autofree char *text = to_text(value);
    g_assert_cmpstr(text, ==,
                    "{\"name\":\"rng\",\"kind\":\"emulated\",\"model\":\"virtio-rng\","
                    "\"capacity\":4,\"in_use\":1,\"available\":3,\"addresses\":[],"
                    "\"force\":false,\"description\":null,"
                    "\"created_at\":\"" CREATED "\",\"updated_at\":\"" UPDATED "\"}");

    g_autoptr(ApiDeviceClass) gpu = api_device_class_new();
    gpu->name = g_strdup("gpu");
    gpu->kind = g_strdup("vfio");
    gpu->model = g_strdup("vfio");
    gpu->capacity = 2;
    gpu->in_use = 2;
    g_ptr_array_add(gpu->addresses, g_strdup("0000:3b:00.0"));
    g_ptr_array_add(gpu->addresses, g_strdup("0000:3b:00.1"));
    gpu->force = TRUE;
    gpu->description = g_strdup("two \"halves\"");
    gpu->created_at = g_strdup(CREATED);
    gpu->updated_at = g_strdup(CREATED);
    g_autoptr(json_object) gpu_value = api_device_class_to_json(gpu);
    g_autofree char *gpu_text = to_text(gpu_value);
    g_assert_cmpstr(gpu_text, ==,
                    "{\"name\":\"gpu\",\"kind\":\"vfio\",\"model\":\"vfio\","
                    "\"capacity\":2,\"in_use\":2,\"available\":0,"
                    "\"addresses\":[\"0000:3b:00.0\",\"0000:3b:00.1\"],"
                    "\"force\":true,\"description\":\"two \\\"halves\\\"\","
                    "\"created_at\":\"" CREATED "\",\"updated_at\":\"" CREATED "\"}");

    /* A list keeps its order. */
    g_autoptr(GPtrArray) classes = g_ptr_array_new();
    g_ptr_array_add(classes, gpu);
    g_ptr_array_add(classes, rng);
    g_autoptr(json_object) list = api_device_class_list_to_json(classes, "cursor");
    json_object *array = NULL;
    g_assert_true(json_object_object_get_ex(list, "device_classes", &array));
    g_assert_cmpint(json_object_object_length(list), ==, 2);
    g_assert_cmpstr(json_object_get_string(json_object_object_get(list, "next")), ==, "cursor");
    g_assert_cmpuint(json_object_array_length(array), ==, 2);
    g_assert_true(json_object_equal(json_object_array_get_idx(array, 0), gpu_value));
    g_assert_true(json_object_equal(json_object_array_get_idx(array, 1), value));

    g_autoptr(GPtrArray) none = g_ptr_array_new();
    g_autoptr(json_object) empty = api_device_class_list_to_json(none, NULL);
    g_autofree char *empty_text = to_text(empty);
    g_assert_cmpstr(empty_text, ==, "{\"device_classes\":[],\"next\":null}");
    api_device_class_free(NULL);
}

static void test_device_to_json(void)
{
    g_autoptr(ApiDevice) free_device = api_device_new();
    free_device->id = g_strdup("rng-0");
    free_device->class_name = g_strdup("rng");
    free_device->model = g_strdup("virtio-rng");
    g_autoptr(json_object) free_value = api_device_to_json(free_device);
    g_autofree char *free_text = to_text(free_value);
    g_assert_cmpstr(free_text, ==,
                    "{\"id\":\"rng-0\",\"class\":\"rng\",\"model\":\"virtio-rng\","
                    "\"address\":null,\"stack\":null}");

    g_autoptr(ApiDevice) held = api_device_new();
    held->id = g_strdup("gpu-1");
    held->class_name = g_strdup("gpu");
    held->model = g_strdup("vfio");
    held->address = g_strdup("0000:3b:00.1");
    held->stack_id = g_strdup("1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f");
    held->stack_name = g_strdup("web");
    held->tenant = g_strdup("acme");
    g_autoptr(json_object) held_value = api_device_to_json(held);
    g_autofree char *held_text = to_text(held_value);
    g_assert_cmpstr(held_text, ==,
                    "{\"id\":\"gpu-1\",\"class\":\"gpu\",\"model\":\"vfio\","
                    "\"address\":\"0000:3b:00.1\",\"stack\":{\"id\":"
                    "\"1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f\",\"name\":\"web\","
                    "\"tenant\":\"acme\"}}");

    g_autoptr(GPtrArray) devices = g_ptr_array_new();
    g_ptr_array_add(devices, held);
    g_ptr_array_add(devices, free_device);
    g_autoptr(json_object) list = api_device_list_to_json(devices, NULL);
    json_object *array = NULL;
    g_assert_true(json_object_object_get_ex(list, "devices", &array));
    g_assert_cmpuint(json_object_array_length(array), ==, 2);
    g_assert_true(json_object_equal(json_object_array_get_idx(array, 0), held_value));
    g_assert_true(json_object_equal(json_object_array_get_idx(array, 1), free_value));
    g_assert_true(json_object_is_type(json_object_object_get(list, "next"), json_type_null));
    api_device_free(NULL);
}

/* ---- attach ------------------------------------------------------------------- */

static void test_attach(void)
{
    g_autoptr(json_object) value = parse_dq("{'class':'rng'}");
    g_autoptr(GError) error = NULL;
    g_autofree char *class_name = api_device_attach_from_json(value, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(class_name, ==, "rng");

    static const BadBody bad[] = {
        {"{}", "class: is required"},
        {"{'class':'Rng'}", "class: " NAME_MESSAGE},
        {"{'class':''}", "class: " NAME_MESSAGE},
        {"{'class':5}", "class: must be a string"},
        {"{'class':null}", "class: must be a string"},
        {"{'class':'rng','id':'rng-0'}", "id: unknown field"},
        {"{'class':'rng','count':2}", "count: unknown field"},
        {"{'device':'rng-0'}", "device: unknown field"},
        {"['rng']", "body: must be an object"},
        {"'rng'", "body: must be an object"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_test_message("%s", bad[i].body);
        g_autoptr(json_object) body = parse_dq(bad[i].body);
        g_autoptr(GError) local = NULL;
        g_assert_null(api_device_attach_from_json(body, &local));
        assert_invalid(local, bad[i].message);
    }
    g_autoptr(GError) local = NULL;
    g_assert_null(api_device_attach_from_json(NULL, &local));
    assert_invalid(local, "body: must be an object");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/device/pci-address", test_pci_address);
    g_test_add_func("/api/device/create-emulated", test_create_emulated);
    g_test_add_func("/api/device/create-vfio", test_create_vfio);
    g_test_add_func("/api/device/create-bad", test_create_bad);
    g_test_add_func("/api/device/create-limits", test_create_limits);
    g_test_add_func("/api/device/patch", test_patch);
    g_test_add_func("/api/device/patch-bad", test_patch_bad);
    g_test_add_func("/api/device/class-to-json", test_class_to_json);
    g_test_add_func("/api/device/device-to-json", test_device_to_json);
    g_test_add_func("/api/device/attach", test_attach);
    return g_test_run();
}
