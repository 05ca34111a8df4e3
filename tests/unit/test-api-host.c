/* api/host: the host capability report on the wire. */
#include <string.h>

#include "api/error.h"
#include "api/host.h"
#include "api/json.h"

/* A tcg host like our CI machines: kvm_pvm behind /dev/kvm, no module. */
static ApiHost *pvm_host(void)
{
    ApiHost *host = g_new0(ApiHost, 1);
    host->backend = g_strdup("tcg");
    host->reason = g_strdup("/dev/kvm is kvm_pvm: no \"vmx\" or svm");
    host->cpu_vendor = g_strdup("GenuineIntel");
    host->hypervisor = TRUE;
    host->kvm_device = TRUE;
    host->kvm_device_opens = TRUE;
    host->kvm_api_version = 12;
    host->nested_state_size = 0;
    host->kvm_module = NULL;
    host->nested = -1;
    host->ept_npt = -1;
    host->shadow_vmcs = -1;
    host->apicv_avic = -1;
    host->pvm = TRUE;
    host->iommu_groups = 0;
    return host;
}

/* Every figure known, every flag set one way or the other. */
static ApiHost *intel_host(void)
{
    ApiHost *host = g_new0(ApiHost, 1);
    host->backend = g_strdup("kvm");
    host->reason = g_strdup("kvm_intel with nested=Y");
    host->cpu_vendor = g_strdup("GenuineIntel");
    host->vmx = TRUE;
    host->kvm_device = TRUE;
    host->kvm_device_opens = TRUE;
    host->kvm_api_version = 12;
    host->nested_state_size = 16384;
    host->kvm_module = g_strdup("kvm_intel");
    host->nested = 1;
    host->ept_npt = 1;
    host->shadow_vmcs = 0;
    host->apicv_avic = 1;
    host->iommu_groups = 42;
    host->vfio = TRUE;
    return host;
}

/* Nothing could be read. */
static ApiHost *unknown_host(void)
{
    ApiHost *host = pvm_host();
    host->kvm_device = FALSE;
    host->kvm_device_opens = FALSE;
    host->kvm_api_version = -1;
    host->nested_state_size = -1;
    host->pvm = FALSE;
    host->iommu_groups = -1;
    return host;
}

static void assert_hosts_equal(const ApiHost *a, const ApiHost *b)
{
    g_assert_cmpstr(a->backend, ==, b->backend);
    g_assert_cmpstr(a->reason, ==, b->reason);
    g_assert_cmpstr(a->cpu_vendor, ==, b->cpu_vendor);
    g_assert_cmpint(a->vmx, ==, b->vmx);
    g_assert_cmpint(a->svm, ==, b->svm);
    g_assert_cmpint(a->hypervisor, ==, b->hypervisor);
    g_assert_cmpint(a->kvm_device, ==, b->kvm_device);
    g_assert_cmpint(a->kvm_device_opens, ==, b->kvm_device_opens);
    g_assert_cmpint(a->kvm_api_version, ==, b->kvm_api_version);
    g_assert_cmpint(a->nested_state_size, ==, b->nested_state_size);
    g_assert_cmpstr(a->kvm_module, ==, b->kvm_module);
    g_assert_cmpint(a->nested, ==, b->nested);
    g_assert_cmpint(a->ept_npt, ==, b->ept_npt);
    g_assert_cmpint(a->shadow_vmcs, ==, b->shadow_vmcs);
    g_assert_cmpint(a->apicv_avic, ==, b->apicv_avic);
    g_assert_cmpint(a->pvm, ==, b->pvm);
    g_assert_cmpint(a->iommu_groups, ==, b->iommu_groups);
    g_assert_cmpint(a->vfio, ==, b->vfio);
}

static json_type type_at(json_object *root, const char *section, const char *key)
{
    json_object *object = json_object_object_get(root, section);
    json_object *member = NULL;
    g_assert_true(json_object_object_get_ex(object, key, &member));
    return json_object_get_type(member);
}

static void test_encode_exact(void)
{
    g_autoptr(ApiHost) host = pvm_host();
    g_autoptr(json_object) json = api_host_to_json(host);
    g_autofree char *text = api_json_to_string(json);
    g_assert_cmpstr(
        text, ==,
        "{\"backend\":\"tcg\",\"reason\":\"/dev/kvm is kvm_pvm: no \\\"vmx\\\" or svm\","
        "\"cpu\":{\"vendor\":\"GenuineIntel\",\"vmx\":false,\"svm\":false,"
        "\"hypervisor\":true},"
        "\"kvm\":{\"device\":true,\"device_opens\":true,\"api_version\":12,"
        "\"nested_state_size\":0,\"module\":null,\"nested\":null,\"ept_npt\":null,"
        "\"shadow_vmcs\":null,\"apicv_avic\":null,\"pvm\":true},"
        "\"iommu\":{\"groups\":0,\"vfio\":false}}");
}

static void test_encode_types(void)
{
    g_autoptr(ApiHost) unknown = unknown_host();
    g_autoptr(json_object) json = api_host_to_json(unknown);
    /* Unknown (-1) figures and flags are null, never -1 or false. */
    static const char *const null_kvm[] = {"api_version", "nested_state_size", "module",
                                           "nested",      "ept_npt",           "shadow_vmcs",
                                           "apicv_avic"};
    for (size_t i = 0; i < G_N_ELEMENTS(null_kvm); i++) {
        g_test_message("kvm.%s", null_kvm[i]);
        g_assert_cmpint(type_at(json, "kvm", null_kvm[i]), ==, json_type_null);
    }
    g_assert_cmpint(type_at(json, "iommu", "groups"), ==, json_type_null);
    g_assert_cmpint(type_at(json, "kvm", "device"), ==, json_type_boolean);
    g_assert_cmpint(type_at(json, "kvm", "pvm"), ==, json_type_boolean);

    /* Known ones keep their type: tri-state flags are booleans, figures integers. */
    g_autoptr(ApiHost) intel = intel_host();
    g_autoptr(json_object) known = api_host_to_json(intel);
    static const struct {
        const char *key;
        gboolean value;
    } flags[] = {{"nested", TRUE}, {"ept_npt", TRUE}, {"shadow_vmcs", FALSE}, {"apicv_avic", TRUE}};
    for (size_t i = 0; i < G_N_ELEMENTS(flags); i++) {
        g_assert_cmpint(type_at(known, "kvm", flags[i].key), ==, json_type_boolean);
        json_object *kvm = json_object_object_get(known, "kvm");
        g_assert_cmpint(json_object_get_boolean(json_object_object_get(kvm, flags[i].key)), ==,
                        flags[i].value);
    }
    g_assert_cmpint(type_at(known, "kvm", "api_version"), ==, json_type_int);
    g_assert_cmpint(type_at(known, "kvm", "nested_state_size"), ==, json_type_int);
    g_assert_cmpint(type_at(known, "kvm", "module"), ==, json_type_string);
    g_assert_cmpint(type_at(known, "iommu", "groups"), ==, json_type_int);
    json_object *iommu = json_object_object_get(known, "iommu");
    g_assert_cmpint(json_object_get_int64(json_object_object_get(iommu, "groups")), ==, 42);
}

static void test_round_trip(void)
{
    ApiHost *hosts[] = {pvm_host(), intel_host(), unknown_host()};
    for (size_t i = 0; i < G_N_ELEMENTS(hosts); i++) {
        g_autoptr(ApiHost) host = hosts[i];
        g_autoptr(json_object) json = api_host_to_json(host);
        g_autofree char *text = api_json_to_string(json);
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) parsed =
            api_json_parse(text, strlen(text), API_JSON_MAX_DEPTH, &error);
        g_assert_no_error(error);
        g_autoptr(ApiHost) decoded = api_host_from_json(parsed, &error);
        g_assert_no_error(error);
        g_assert_nonnull(decoded);
        assert_hosts_equal(decoded, host);
    }
}

typedef struct {
    const char *section; /* NULL: top level */
    const char *key;
    const char *value; /* JSON; NULL removes the key */
    const char *message;
} Mutation;

static void test_decode_rejects(void)
{
    static const Mutation cases[] = {
        {NULL, "extra", "1", "extra: unknown field"},
        {"cpu", "avx", "true", "cpu.avx: unknown field"},
        {"kvm", "foo", "null", "kvm.foo: unknown field"},
        {"iommu", "mmu", "1", "iommu.mmu: unknown field"},
        {NULL, "backend", NULL, "backend: is required"},
        {NULL, "kvm", NULL, "kvm: is required"},
        {"kvm", "nested", NULL, "kvm.nested: is required"},
        {"iommu", "vfio", NULL, "iommu.vfio: is required"},
        {NULL, "backend", "7", "backend: must be a string"},
        {NULL, "reason", "null", "reason: must be a string"},
        {NULL, "cpu", "[]", "cpu: must be an object"},
        {NULL, "iommu", "null", "iommu: must be an object"},
        {"cpu", "vendor", "null", "cpu.vendor: must be a string"},
        {"cpu", "vmx", "1", "cpu.vmx: must be a boolean"},
        {"cpu", "svm", "\"false\"", "cpu.svm: must be a boolean"},
        {"kvm", "device", "null", "kvm.device: must be a boolean"},
        {"kvm", "api_version", "\"12\"", "kvm.api_version: must be an integer or null"},
        {"kvm", "api_version", "12.0", "kvm.api_version: must be an integer or null"},
        {"kvm", "api_version", "true", "kvm.api_version: must be an integer or null"},
        {"kvm", "api_version", "-1", "kvm.api_version: must be between 0 and 2147483647"},
        {"kvm", "nested_state_size", "2147483648",
         "kvm.nested_state_size: must be between 0 and 2147483647"},
        {"kvm", "module", "5", "kvm.module: must be a string or null"},
        {"kvm", "nested", "1", "kvm.nested: must be a boolean or null"},
        {"kvm", "ept_npt", "\"Y\"", "kvm.ept_npt: must be a boolean or null"},
        {"kvm", "pvm", "0", "kvm.pvm: must be a boolean"},
        {"iommu", "groups", "1.5", "iommu.groups: must be an integer or null"},
        {"iommu", "groups", "-3", "iommu.groups: must be between 0 and 2147483647"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        const Mutation *c = &cases[i];
        g_autoptr(ApiHost) host = intel_host();
        g_autoptr(json_object) json = api_host_to_json(host);
        json_object *target = c->section ? json_object_object_get(json, c->section) : json;
        if (c->value)
            json_object_object_add(target, c->key, json_tokener_parse(c->value));
        else
            json_object_object_del(target, c->key);

        g_autoptr(GError) error = NULL;
        g_autoptr(ApiHost) decoded = api_host_from_json(json, &error);
        g_test_message("case %zu: %s", i, error ? error->message : "(accepted)");
        g_assert_null(decoded);
        g_assert_error(error, API_ERROR, API_ERROR_INVALID);
        g_assert_cmpstr(error->message, ==, c->message);
    }

    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) array = json_object_new_array();
    g_assert_null(api_host_from_json(array, &error));
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "body: must be an object");
}

static void test_free_null(void)
{
    api_host_free(NULL);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/host/encode-exact", test_encode_exact);
    g_test_add_func("/api/host/encode-types", test_encode_types);
    g_test_add_func("/api/host/round-trip", test_round_trip);
    g_test_add_func("/api/host/decode-rejects", test_decode_rejects);
    g_test_add_func("/api/host/free-null", test_free_null);
    return g_test_run();
}
