/* api/etag: the strong tag of a resource's representation, which clients
 * hold on to between a read and a write (If-Match) or two reads
 * (If-None-Match). */
#include "api/etag.h"
#include "api/tenant.h"
#include "tests/unit/api-test-util.h"

#include <string.h>

static char *etag_of(const char *json)
{
    g_autoptr(json_object) value = parse(json);
    return api_etag(value);
}

/* A quoted strong tag: no W/, 32 lower-case hex digits between quotes. */
static void test_shape(void)
{
    g_autofree char *tag = etag_of("{\"name\":\"acme\"}");
    g_assert_cmpuint(strlen(tag), ==, API_ETAG_HEX_LEN + 2);
    g_assert_true(tag[0] == '"' && tag[API_ETAG_HEX_LEN + 1] == '"');
    for (int i = 1; i <= API_ETAG_HEX_LEN; i++)
        g_assert_true(g_ascii_isxdigit(tag[i]) && !g_ascii_isupper(tag[i]));
    /* The first 128 bits of the SHA-256 of the canonical text. */
    g_autofree char *digest =
        g_compute_checksum_for_string(G_CHECKSUM_SHA256, "{\"name\":\"acme\"}", -1);
    g_assert_cmpint(strncmp(tag + 1, digest, API_ETAG_HEX_LEN), ==, 0);
}

/* Member order is how the encoder happened to write them, not the resource. */
static void test_key_order(void)
{
    g_autofree char *a = etag_of("{\"a\":1,\"b\":{\"x\":[1,{\"p\":null,\"q\":\"s\"}],\"y\":true}}");
    g_autofree char *b = etag_of("{\"b\":{\"y\":true,\"x\":[1,{\"q\":\"s\",\"p\":null}]},\"a\":1}");
    g_assert_cmpstr(a, ==, b);
}

/* Any change of a value, of array order, or of a member's presence changes
 * the tag. */
static void test_changes(void)
{
    static const char *const variants[] = {
        "{\"a\":1,\"b\":[1,2]}",     "{\"a\":2,\"b\":[1,2]}",
        "{\"a\":1,\"b\":[2,1]}",     "{\"a\":1}",
        "{\"a\":\"1\",\"b\":[1,2]}", "{\"a\":1,\"b\":[1,2],\"c\":null}",
        "{\"a\":1,\"b\":[1,2,3]}",
    };
    g_autoptr(GPtrArray) tags = g_ptr_array_new_with_free_func(g_free);
    for (gsize i = 0; i < G_N_ELEMENTS(variants); i++) {
        char *tag = etag_of(variants[i]);
        for (guint j = 0; j < tags->len; j++)
            g_assert_cmpstr(tag, !=, g_ptr_array_index(tags, j));
        g_ptr_array_add(tags, tag);
    }
}

/* What handlers do: a tenant's tag follows its quota and times. */
/* ETags outlive a turtled: a client's If-Match from before an upgrade must
 * still match.  These are the values of the canonical form as json-c writes
 * it (no slash escapes, lower-case \u00xx, NUL kept), pinned. */
static void test_stable(void)
{
    static const struct {
        const char *json;
        const char *etag;
    } cases[] = {
        {"{\"b\":1,\"a\":\"x/y\\\"z\\\\\\n\\t\\r\\b\\f\\u0001\\u001f\\u007f \xC3\xA9 "
         "\xF0\x9F\x90\xA2\","
         "\"c\":[1,2.5,-3e10,true,false,null,{\"z\":{},\"y\":[]}],\"\\u0000k\\\"/\":\"v\\u0000w\"}",
         "\"e1a229bf161e4f304707cb7009a4cb4c\""},
        {"{\"quota\":{\"stacks\":10,\"memory_mib\":8192},\"name\":\"a b\"}",
         "\"702fae38b4dbe62bd8f446cbb6385795\""},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(json_object) value = json_tokener_parse(cases[i].json);
        g_assert_nonnull(value);
        g_autofree char *etag = api_etag(value);
        g_assert_cmpstr(etag, ==, cases[i].etag);
    }
}

static void test_tenant(void)
{
    g_autoptr(ApiTenant) tenant = api_tenant_new();
    tenant->id = g_strdup("6a1a7c52-0c1e-4d36-9d1b-2f1d0e7b9a11");
    tenant->name = g_strdup("acme");
    tenant->created_at = g_strdup("2024-05-01T12:00:00Z");
    tenant->updated_at = g_strdup("2024-05-01T12:00:00Z");
    g_autoptr(json_object) first = api_tenant_to_json(tenant);
    g_autoptr(json_object) again = api_tenant_to_json(tenant);
    g_autofree char *before = api_etag(first);
    g_autofree char *same = api_etag(again);
    g_assert_cmpstr(before, ==, same);

    tenant->quota.stacks++;
    g_autoptr(json_object) changed = api_tenant_to_json(tenant);
    g_autofree char *after = api_etag(changed);
    g_assert_cmpstr(before, !=, after);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/etag/shape", test_shape);
    g_test_add_func("/api/etag/key-order", test_key_order);
    g_test_add_func("/api/etag/changes", test_changes);
    g_test_add_func("/api/etag/tenant", test_tenant);
    g_test_add_func("/api/etag/stable", test_stable);
    return g_test_run();
}
