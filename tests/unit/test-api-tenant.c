/* api/tenant: tenants, quotas and tokens on the wire. */
#include "api/error.h"
#include "api/json.h"
#include "api/tenant.h"
#include "tests/unit/api-test-util.h"

#include <string.h>

#define TENANT_ID "0b5c3f9e-7a52-4c2b-9d0e-1f2a3b4c5d6e"
#define TOKEN_ID  "6f1e2d3c-4b5a-4987-8a6b-5c4d3e2f1a0b"
#define CREATED   "2024-05-01T12:00:00Z"
#define UPDATED   "2024-05-02T08:30:15.250Z"

#define VALID_TENANT                                                                               \
    "{\"id\":\"" TENANT_ID "\",\"name\":\"web\","                                                  \
    "\"quota\":{\"stacks\":3,\"vcpus\":12,\"memory_mib\":4096,\"disk_gib\":20,\"devices\":2,"      \
    "\"networks\":4},"                                                                             \
    "\"created_at\":\"" CREATED "\",\"updated_at\":\"" UPDATED "\"}"
#define VALID_TOKEN                                                                                \
    "{\"id\":\"" TOKEN_ID "\",\"secret\":\"s3cr3t\",\"tenant\":\"web\","                           \
    "\"created_at\":\"" CREATED "\"}"

static void assert_quota5(const ApiQuota *quota, gint64 stacks, gint64 vcpus, gint64 memory_mib,
                          gint64 disk_gib, gint64 devices)
{
    g_assert_cmpint(quota->stacks, ==, stacks);
    g_assert_cmpint(quota->vcpus, ==, vcpus);
    g_assert_cmpint(quota->memory_mib, ==, memory_mib);
    g_assert_cmpint(quota->disk_gib, ==, disk_gib);
    g_assert_cmpint(quota->devices, ==, devices);
}

/* The four older keys, and devices at its default. */
static void assert_quota(const ApiQuota *quota, gint64 stacks, gint64 vcpus, gint64 memory_mib,
                         gint64 disk_gib)
{
    assert_quota5(quota, stacks, vcpus, memory_mib, disk_gib, API_QUOTA_DEFAULT_DEVICES);
}

/* ---- tenant ------------------------------------------------------------------------ */

static void test_tenant_new_defaults(void)
{
    g_autoptr(ApiTenant) tenant = api_tenant_new();
    assert_quota(&tenant->quota, API_QUOTA_DEFAULT_STACKS, API_QUOTA_DEFAULT_VCPUS,
                 API_QUOTA_DEFAULT_MEMORY_MIB, API_QUOTA_DEFAULT_DISK_GIB);
    g_assert_cmpint(tenant->quota.devices, ==, 4);
    g_assert_null(tenant->id);
    g_assert_null(tenant->name);
    api_tenant_free(NULL);
}

static void test_tenant_round_trip(void)
{
    g_autoptr(ApiTenant) tenant = api_tenant_new();
    tenant->id = g_strdup(TENANT_ID);
    tenant->name = g_strdup("a-b-0");
    tenant->quota = (ApiQuota){.stacks = API_QUOTA_MAX_STACKS,
                               .vcpus = 0,
                               .memory_mib = API_QUOTA_MAX_MEMORY_MIB,
                               .disk_gib = 1,
                               .devices = API_QUOTA_MAX_DEVICES};
    tenant->created_at = g_strdup(CREATED);
    tenant->updated_at = g_strdup(UPDATED);

    /* Through text, as it travels. */
    g_autoptr(json_object) encoded = api_tenant_to_json(tenant);
    g_autofree char *text = api_json_to_string(encoded);
    g_autoptr(json_object) value = parse(text);
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiTenant) decoded = api_tenant_from_json(value, &error);
    g_assert_no_error(error);
    g_assert_nonnull(decoded);
    g_assert_cmpstr(decoded->id, ==, tenant->id);
    g_assert_cmpstr(decoded->name, ==, tenant->name);
    assert_quota5(&decoded->quota, API_QUOTA_MAX_STACKS, 0, API_QUOTA_MAX_MEMORY_MIB, 1,
                  API_QUOTA_MAX_DEVICES);
    g_assert_cmpstr(decoded->created_at, ==, tenant->created_at);
    g_assert_cmpstr(decoded->updated_at, ==, tenant->updated_at);
}

static void test_tenant_to_json_shape(void)
{
    g_autoptr(json_object) value = parse(VALID_TENANT);
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiTenant) tenant = api_tenant_from_json(value, &error);
    g_assert_no_error(error);
    assert_quota5(&tenant->quota, 3, 12, 4096, 20, 2);

    /* Encoding what was decoded gives back the same document. */
    g_autoptr(json_object) encoded = api_tenant_to_json(tenant);
    g_assert_true(json_object_equal(encoded, value));
}

static const Mutation tenant_bad[] = {
    {"extra", "1", "extra"},
    {"quota.extra", "1", "quota.extra"},
    {"id", NULL, "id"},
    {"name", NULL, "name"},
    {"quota", NULL, "quota"},
    {"quota.stacks", NULL, "quota.stacks"},
    {"quota.vcpus", NULL, "quota.vcpus"},
    {"quota.memory_mib", NULL, "quota.memory_mib"},
    {"quota.disk_gib", NULL, "quota.disk_gib"},
    {"quota.devices", NULL, "quota.devices"},
    {"created_at", NULL, "created_at"},
    {"updated_at", NULL, "updated_at"},
    {"id", "7", "id"},
    {"id", "null", "id"},
    {"name", "[]", "name"},
    {"quota", "[]", "quota"},
    {"quota", "null", "quota"},
    {"quota.stacks", "\"3\"", "quota.stacks"},
    {"quota.vcpus", "1.5", "quota.vcpus"},
    {"quota.memory_mib", "true", "quota.memory_mib"},
    {"quota.disk_gib", "null", "quota.disk_gib"},
    {"created_at", "1714564800", "created_at"},
    {"updated_at", "{}", "updated_at"},
    {"quota.stacks", "-1", "quota.stacks"},
    {"quota.vcpus", "100001", "quota.vcpus"},
    {"quota.memory_mib", "1073741825", "quota.memory_mib"},
    {"quota.disk_gib", "1048577", "quota.disk_gib"},
    {"quota.disk_gib", "99999999999999999999999", "quota.disk_gib"},
    {"quota.devices", "-1", "quota.devices"},
    {"quota.devices", "1025", "quota.devices"},
    {"quota.devices", "\"2\"", "quota.devices"},
    {"quota.devices", "null", "quota.devices"},
    {"name", "\"Web_1\"", "name"},
    {"name", "\"\"", "name"},
    {"name", "\"-web\"", "name"},
    {"id", "\"not-a-uuid\"", "id"},
    {"id", "\"0b5c3f9e7a524c2b9d0e1f2a3b4c5d6e\"", "id"},
    {"created_at", "\"yesterday\"", "created_at"},
    {"created_at", "\"2024-05-01\"", "created_at"},
    {"created_at", "\"2024-05-01T12:00:00\"", "created_at"}, /* no zone */
    {"created_at", "\"2024-13-01T12:00:00Z\"", "created_at"},
    {"created_at", "\"20240501T120000Z\"", "created_at"}, /* ISO basic, not RFC 3339 */
    {"created_at", "\"2024-05-01 12:00:00Z\"", "created_at"},
    {"created_at", "\"2024-05-01T12:00:00\\u0000Z\"", "created_at"},
    {"created_at", "\"2023-02-29T12:00:00Z\"", "created_at"},
    {"updated_at", "\"2024-05-01T12:00:00+02:00\"", "updated_at"}, /* not UTC */
};

static void test_tenant_from_json_bad(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(tenant_bad); i++) {
        const Mutation *m = &tenant_bad[i];
        g_test_message("%s <- %s", m->path, m->replacement ? m->replacement : "(removed)");
        g_autoptr(json_object) value = mutate(VALID_TENANT, m);
        g_autoptr(GError) error = NULL;
        g_autoptr(ApiTenant) tenant = api_tenant_from_json(value, &error);
        g_assert_null(tenant);
        assert_invalid(error, m->field);
    }
}

static void test_tenant_from_json_not_object(void)
{
    static const char *const bodies[] = {"[]", "\"web\"", "3"};
    for (gsize i = 0; i < G_N_ELEMENTS(bodies); i++) {
        g_autoptr(json_object) value = parse(bodies[i]);
        g_autoptr(GError) error = NULL;
        g_assert_null(api_tenant_from_json(value, &error));
        assert_invalid(error, "body");
    }
    g_autoptr(GError) error = NULL;
    g_assert_null(api_tenant_from_json(NULL, &error));
    assert_invalid(error, "body");
}

static void test_tenant_times_accepted(void)
{
    static const char *const times[] = {"\"2024-05-01T12:00:00+00:00\"",
                                        "\"2024-02-29T23:59:59.123456Z\""};
    for (gsize i = 0; i < G_N_ELEMENTS(times); i++) {
        Mutation m = {"created_at", times[i], NULL};
        g_autoptr(json_object) value = mutate(VALID_TENANT, &m);
        g_autoptr(GError) error = NULL;
        g_autoptr(ApiTenant) tenant = api_tenant_from_json(value, &error);
        g_assert_no_error(error);
        g_assert_nonnull(tenant);
    }
}

/* ---- create --------------------------------------------------------------------------- */

static void test_create_defaults(void)
{
    g_autoptr(json_object) value = parse("{\"name\":\"web\"}");
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiTenant) tenant = api_tenant_create_from_json(value, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(tenant->name, ==, "web");
    g_assert_null(tenant->id);
    g_assert_null(tenant->created_at);
    assert_quota(&tenant->quota, API_QUOTA_DEFAULT_STACKS, API_QUOTA_DEFAULT_VCPUS,
                 API_QUOTA_DEFAULT_MEMORY_MIB, API_QUOTA_DEFAULT_DISK_GIB);
}

static void test_create_partial_quota(void)
{
    g_autoptr(json_object) value = parse("{\"name\":\"web\",\"quota\":{\"vcpus\":0,\"disk_gib\":"
                                         "1048576}}");
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiTenant) tenant = api_tenant_create_from_json(value, &error);
    g_assert_no_error(error);
    assert_quota(&tenant->quota, API_QUOTA_DEFAULT_STACKS, 0, API_QUOTA_DEFAULT_MEMORY_MIB,
                 API_QUOTA_MAX_DISK_GIB);

    g_autoptr(json_object) full = parse("{\"name\":\"web\",\"quota\":{\"stacks\":1,\"vcpus\":2,"
                                        "\"memory_mib\":3,\"disk_gib\":4}}");
    g_autoptr(ApiTenant) tenant2 = api_tenant_create_from_json(full, &error);
    g_assert_no_error(error);
    assert_quota(&tenant2->quota, 1, 2, 3, 4);

    /* devices alone, at both ends of its range. */
    g_autoptr(json_object) none = parse("{\"name\":\"web\",\"quota\":{\"devices\":0}}");
    g_autoptr(ApiTenant) tenant3 = api_tenant_create_from_json(none, &error);
    g_assert_no_error(error);
    assert_quota5(&tenant3->quota, API_QUOTA_DEFAULT_STACKS, API_QUOTA_DEFAULT_VCPUS,
                  API_QUOTA_DEFAULT_MEMORY_MIB, API_QUOTA_DEFAULT_DISK_GIB, 0);
    g_autoptr(json_object) most = parse("{\"name\":\"web\",\"quota\":{\"devices\":1024}}");
    g_autoptr(ApiTenant) tenant4 = api_tenant_create_from_json(most, &error);
    g_assert_no_error(error);
    g_assert_cmpint(tenant4->quota.devices, ==, API_QUOTA_MAX_DEVICES);
}

#define VALID_CREATE                                                                               \
    "{\"name\":\"web\",\"quota\":{\"stacks\":1,\"vcpus\":2,\"memory_mib\":3,\"disk_gib\":4}}"

static const Mutation create_bad[] = {
    {"id", "\"" TENANT_ID "\"", "id"}, /* server-assigned fields are unknown here */
    {"extra", "true", "extra"},
    {"quota.cpus", "2", "quota.cpus"},
    {"name", NULL, "name"},
    {"name", "null", "name"},
    {"name", "7", "name"},
    {"name", "\"Web_1\"", "name"},
    {"name", "\"web-\"", "name"},
    {"name", "\"a234567890123456789012345678901234567890123456789012345678901234\"", "name"},
    {"quota", "7", "quota"},
    {"quota", "null", "quota"},
    {"quota.stacks", "\"1\"", "quota.stacks"},
    {"quota.vcpus", "2.0", "quota.vcpus"},
    {"quota.memory_mib", "null", "quota.memory_mib"},
    {"quota.disk_gib", "[4]", "quota.disk_gib"},
    {"quota.stacks", "-1", "quota.stacks"},
    {"quota.stacks", "10001", "quota.stacks"},
    {"quota.vcpus", "-1", "quota.vcpus"},
    {"quota.vcpus", "100001", "quota.vcpus"},
    {"quota.memory_mib", "-1", "quota.memory_mib"},
    {"quota.memory_mib", "1073741825", "quota.memory_mib"},
    {"quota.disk_gib", "-1", "quota.disk_gib"},
    {"quota.disk_gib", "1048577", "quota.disk_gib"},
    {"quota.devices", "-1", "quota.devices"},
    {"quota.devices", "1025", "quota.devices"},
    {"quota.devices", "1.5", "quota.devices"},
    {"quota.devices", "true", "quota.devices"},
};

static void test_create_bad(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(create_bad); i++) {
        const Mutation *m = &create_bad[i];
        g_test_message("%s <- %s", m->path, m->replacement ? m->replacement : "(removed)");
        g_autoptr(json_object) value = mutate(VALID_CREATE, m);
        g_autoptr(GError) error = NULL;
        g_autoptr(ApiTenant) tenant = api_tenant_create_from_json(value, &error);
        g_assert_null(tenant);
        assert_invalid(error, m->field);
    }
}

static void test_create_range_message(void)
{
    g_autoptr(json_object) value = parse("{\"name\":\"web\",\"quota\":{\"vcpus\":100001}}");
    g_autoptr(GError) error = NULL;
    g_assert_null(api_tenant_create_from_json(value, &error));
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "quota.vcpus: must be between 0 and 100000");
    g_clear_error(&error);

    g_autoptr(json_object) devices = parse("{\"name\":\"web\",\"quota\":{\"devices\":1025}}");
    g_assert_null(api_tenant_create_from_json(devices, &error));
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "quota.devices: must be between 0 and 1024");
}

/* ---- patch ------------------------------------------------------------------------------ */

static void test_patch_replaces_present_keys(void)
{
    ApiQuota quota = {.stacks = 1, .vcpus = 2, .memory_mib = 3, .disk_gib = 4, .devices = 5};
    g_autoptr(json_object) value = parse("{\"quota\":{\"vcpus\":64,\"disk_gib\":0}}");
    g_autoptr(GError) error = NULL;
    g_assert_true(api_tenant_patch_from_json(value, &quota, &error));
    g_assert_no_error(error);
    assert_quota5(&quota, 1, 64, 3, 0, 5);

    g_autoptr(json_object) devices = parse("{\"quota\":{\"devices\":0}}");
    g_assert_true(api_tenant_patch_from_json(devices, &quota, &error));
    g_assert_no_error(error);
    assert_quota5(&quota, 1, 64, 3, 0, 0);

    g_autoptr(json_object) all = parse("{\"quota\":{\"stacks\":10000,\"vcpus\":100000,"
                                       "\"memory_mib\":1073741824,\"disk_gib\":1048576}}");
    g_assert_true(api_tenant_patch_from_json(all, &quota, &error));
    g_assert_no_error(error);
    assert_quota5(&quota, API_QUOTA_MAX_STACKS, API_QUOTA_MAX_VCPUS, API_QUOTA_MAX_MEMORY_MIB,
                  API_QUOTA_MAX_DISK_GIB, 0);
}

typedef struct {
    const char *body;
    const char *field;
} BadBody;

static const BadBody patch_bad[] = {
    {"{}", "quota"},
    {"{\"quota\":{}}", "quota"},
    {"{\"quota\":null}", "quota"},
    {"{\"quota\":5}", "quota"},
    {"[]", "body"},
    {"{\"name\":\"web\",\"quota\":{\"vcpus\":1}}", "name"},
    /* A valid key before the bad one must not leak into the quota. */
    {"{\"quota\":{\"vcpus\":1,\"gpus\":2}}", "quota.gpus"},
    {"{\"quota\":{\"stacks\":9,\"vcpus\":\"2\"}}", "quota.vcpus"},
    {"{\"quota\":{\"stacks\":9,\"memory_mib\":-1}}", "quota.memory_mib"},
    {"{\"quota\":{\"stacks\":9,\"disk_gib\":1048577}}", "quota.disk_gib"},
    {"{\"quota\":{\"vcpus\":7,\"stacks\":10001}}", "quota.stacks"},
    {"{\"quota\":{\"stacks\":9,\"vcpus\":100001}}", "quota.vcpus"},
    {"{\"quota\":{\"stacks\":9,\"devices\":1025}}", "quota.devices"},
    {"{\"quota\":{\"stacks\":9,\"devices\":-1}}", "quota.devices"},
};

static void test_patch_bad_leaves_quota(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(patch_bad); i++) {
        g_test_message("%s", patch_bad[i].body);
        const ApiQuota before = {
            .stacks = 1, .vcpus = 2, .memory_mib = 3, .disk_gib = 4, .devices = 5};
        ApiQuota quota = before;
        g_autoptr(json_object) value = parse(patch_bad[i].body);
        g_autoptr(GError) error = NULL;
        g_assert_false(api_tenant_patch_from_json(value, &quota, &error));
        assert_invalid(error, patch_bad[i].field);
        assert_quota5(&quota, before.stacks, before.vcpus, before.memory_mib, before.disk_gib,
                      before.devices);
    }
}

static void test_quota_validate(void)
{
    g_autoptr(GError) error = NULL;
    ApiQuota quota = {.stacks = 0, .vcpus = 0, .memory_mib = 0, .disk_gib = 0};
    g_assert_true(api_quota_validate(&quota, &error));
    g_assert_no_error(error);

    quota.memory_mib = API_QUOTA_MAX_MEMORY_MIB + 1;
    g_assert_false(api_quota_validate(&quota, &error));
    assert_invalid(error, "quota.memory_mib");
    g_clear_error(&error);

    quota.memory_mib = 0;
    quota.devices = API_QUOTA_MAX_DEVICES;
    g_assert_true(api_quota_validate(&quota, &error));
    g_assert_no_error(error);
    quota.devices = API_QUOTA_MAX_DEVICES + 1;
    g_assert_false(api_quota_validate(&quota, &error));
    assert_invalid(error, "quota.devices");
    g_clear_error(&error);
    quota.devices = -1;
    g_assert_false(api_quota_validate(&quota, &error));
    assert_invalid(error, "quota.devices");
}

/* ---- token ------------------------------------------------------------------------------- */

static ApiToken *token_fixture(const char *secret)
{
    ApiToken *token = api_token_new();
    token->id = g_strdup(TOKEN_ID);
    token->secret = g_strdup(secret);
    token->tenant = g_strdup("web");
    token->created_at = g_strdup(CREATED);
    return token;
}

static ApiToken *token_round_trip(const ApiToken *token)
{
    g_autoptr(json_object) encoded = api_token_to_json(token);
    g_autofree char *text = api_json_to_string(encoded);
    g_autoptr(json_object) value = parse(text);
    g_autoptr(GError) error = NULL;
    ApiToken *decoded = api_token_from_json(value, &error);
    g_assert_no_error(error);
    g_assert_nonnull(decoded);
    return decoded;
}

static void test_token_round_trip(void)
{
    g_autoptr(ApiToken) token = token_fixture("dGhpcyBpcyBub3QgYSByZWFsIHNlY3JldA");
    g_autoptr(ApiToken) decoded = token_round_trip(token);
    g_assert_cmpstr(decoded->id, ==, token->id);
    g_assert_cmpstr(decoded->secret, ==, token->secret);
    g_assert_cmpstr(decoded->tenant, ==, token->tenant);
    g_assert_cmpstr(decoded->created_at, ==, token->created_at);
}

static void test_token_secret_omitted(void)
{
    g_autoptr(ApiToken) token = token_fixture(NULL);
    g_autoptr(json_object) encoded = api_token_to_json(token);
    g_assert_false(json_object_object_get_ex(encoded, "secret", NULL));
    g_assert_cmpint(json_object_object_length(encoded), ==, 3);

    g_autoptr(ApiToken) decoded = token_round_trip(token);
    g_assert_null(decoded->secret);
    g_assert_cmpstr(decoded->id, ==, TOKEN_ID);
    g_assert_cmpstr(decoded->tenant, ==, "web");
    g_assert_cmpstr(decoded->created_at, ==, CREATED);
    api_token_free(NULL);
}

static const Mutation token_bad[] = {
    {"extra", "1", "extra"},
    {"id", NULL, "id"},
    {"tenant", NULL, "tenant"},
    {"created_at", NULL, "created_at"},
    {"id", "1", "id"},
    {"secret", "1", "secret"},
    {"secret", "null", "secret"},
    {"secret", "\"\"", "secret"},
    {"tenant", "false", "tenant"},
    {"created_at", "null", "created_at"},
    {"id", "\"6f1e2d3c-4b5a-4987-8a6b-5c4d3e2f1a0\"", "id"},
    {"tenant", "\"Web_1\"", "tenant"},
    {"created_at", "\"2024-05-01 noon\"", "created_at"},
};

static void test_token_from_json_bad(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(token_bad); i++) {
        const Mutation *m = &token_bad[i];
        g_test_message("%s <- %s", m->path, m->replacement ? m->replacement : "(removed)");
        g_autoptr(json_object) value = mutate(VALID_TOKEN, m);
        g_autoptr(GError) error = NULL;
        g_autoptr(ApiToken) token = api_token_from_json(value, &error);
        g_assert_null(token);
        assert_invalid(error, m->field);
    }
}

/* A token list shows ids and times; a secret in one is an answer to refuse. */
static void test_token_list(void)
{
    g_autoptr(GPtrArray) tokens = g_ptr_array_new_with_free_func((GDestroyNotify)api_token_free);
    ApiToken *token = api_token_new();
    token->id = g_strdup("0b7c5f0e-6a36-4e52-9d1e-6c1a4f3b2a10");
    token->tenant = g_strdup("acme");
    token->created_at = g_strdup("2024-05-01T12:00:00Z");
    g_ptr_array_add(tokens, token);
    g_autoptr(json_object) value = api_token_list_to_json(tokens, "YWNtZQB4");
    g_autofree char *text = api_json_to_string(value);
    g_assert_cmpstr(text, ==,
                    "{\"tokens\":[{\"id\":\"0b7c5f0e-6a36-4e52-9d1e-6c1a4f3b2a10\","
                    "\"tenant\":\"acme\",\"created_at\":\"2024-05-01T12:00:00Z\"}],"
                    "\"next\":\"YWNtZQB4\"}");
    g_autoptr(GError) error = NULL;
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) back = api_token_list_from_json(value, &next, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(back->len, ==, 1);
    g_assert_cmpstr(((ApiToken *)g_ptr_array_index(back, 0))->id, ==, token->id);
    g_assert_cmpstr(next, ==, "YWNtZQB4");

    g_autoptr(json_object) leaky = parse("{\"tokens\":[{\"id\":\"0b7c5f0e-6a36-4e52-9d1e-"
                                         "6c1a4f3b2a10\",\"secret\":\"tt_x\",\"tenant\":"
                                         "\"acme\",\"created_at\":\"2024-05-01T12:00:00Z\"}],"
                                         "\"next\":null}");
    g_autofree char *cursor = NULL;
    g_assert_null(api_token_list_from_json(leaky, &cursor, &error));
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "tokens[0].secret: must not be in a list");
}

/* Tenants page like every list. */
static void test_tenant_list(void)
{
    g_autoptr(GPtrArray) tenants = g_ptr_array_new_with_free_func((GDestroyNotify)api_tenant_free);
    ApiTenant *tenant = api_tenant_new();
    tenant->id = g_strdup("6a1a7c52-0c1e-4d36-9d1b-2f1d0e7b9a11");
    tenant->name = g_strdup("acme");
    tenant->created_at = g_strdup("2024-05-01T12:00:00Z");
    tenant->updated_at = g_strdup("2024-05-01T12:00:00Z");
    g_ptr_array_add(tenants, tenant);
    g_autoptr(json_object) value = api_tenant_list_to_json(tenants, NULL);
    g_assert_true(json_object_is_type(json_object_object_get(value, "next"), json_type_null));
    g_autoptr(GError) error = NULL;
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) back = api_tenant_list_from_json(value, &next, &error);
    g_assert_no_error(error);
    g_assert_null(next);
    g_assert_cmpuint(back->len, ==, 1);
    g_assert_cmpstr(((ApiTenant *)g_ptr_array_index(back, 0))->name, ==, "acme");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/tenant/new-defaults", test_tenant_new_defaults);
    g_test_add_func("/api/tenant/round-trip", test_tenant_round_trip);
    g_test_add_func("/api/tenant/to-json-shape", test_tenant_to_json_shape);
    g_test_add_func("/api/tenant/from-json-bad", test_tenant_from_json_bad);
    g_test_add_func("/api/tenant/from-json-not-object", test_tenant_from_json_not_object);
    g_test_add_func("/api/tenant/times-accepted", test_tenant_times_accepted);
    g_test_add_func("/api/tenant/create-defaults", test_create_defaults);
    g_test_add_func("/api/tenant/create-partial-quota", test_create_partial_quota);
    g_test_add_func("/api/tenant/create-bad", test_create_bad);
    g_test_add_func("/api/tenant/create-range-message", test_create_range_message);
    g_test_add_func("/api/tenant/patch-replaces-present-keys", test_patch_replaces_present_keys);
    g_test_add_func("/api/tenant/patch-bad-leaves-quota", test_patch_bad_leaves_quota);
    g_test_add_func("/api/tenant/quota-validate", test_quota_validate);
    g_test_add_func("/api/token/round-trip", test_token_round_trip);
    g_test_add_func("/api/token/secret-omitted", test_token_secret_omitted);
    g_test_add_func("/api/token/from-json-bad", test_token_from_json_bad);
    g_test_add_func("/api/token/list", test_token_list);
    g_test_add_func("/api/tenant/list", test_tenant_list);
    return g_test_run();
}
