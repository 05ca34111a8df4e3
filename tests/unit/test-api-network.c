/* api/network: networks on the wire, decoded strictly; the cidr rules; the
 * NICs of a stack spec. */
#include "api/error.h"
#include "api/json.h"
#include "api/network.h"
#include "api/spec.h"
#include "tests/unit/api-test-util.h"

#include <string.h>

static json_object *parse_text(const char *text)
{
    g_autoptr(GError) error = NULL;
    json_object *value = api_json_parse(text, strlen(text), API_JSON_MAX_DEPTH, &error);
    g_assert_no_error(error);
    return value;
}

/* The message starts with "<field>: ". */
static void assert_invalid_prefix(const GError *error, const char *field)
{
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    g_autofree char *prefix = g_strconcat(field, ": ", NULL);
    if (!g_str_has_prefix(error->message, prefix))
        g_error("message \"%s\" does not start with \"%s\"", error->message, prefix);
}

static void test_cidr(void)
{
    const char *good[] = {"10.200.3.0/24", "10.0.0.0/16",   "192.168.5.8/29",
                          "172.16.0.0/20", "100.64.0.0/24", NULL};
    for (int i = 0; good[i]; i++) {
        g_autoptr(GError) error = NULL;
        if (!api_network_check_cidr("cidr", good[i], &error))
            g_error("%s refused: %s", good[i], error->message);
    }
    const struct {
        const char *cidr;
        const char *says;
    } bad[] = {
        {"10.200.3.0/31", "out of range"}, {"10.200.3.0/30", "out of range"},
        {"10.0.0.0/8", "out of range"},    {"10.200.3.1/24", "did you mean 10.200.3.0/24?"},
        {"127.0.0.0/24", "loopback"},      {"169.254.1.0/24", "link-local"},
        {"224.0.0.0/24", "multicast"},     {"0.1.0.0/24", "this host"},
        {"10.200.3.0", "IPv4 subnet"},     {"10.200.3/24", "IPv4 subnet"},
        {"10.200.03.0/24", "IPv4 subnet"}, {"10.256.3.0/24", "IPv4 subnet"},
        {"10.200.3.0/24 ", "IPv4 subnet"}, {"10.200.3.0/024", "IPv4 subnet"},
        {" 10.200.3.0/24", "IPv4 subnet"}, {"10.200.3.0/33", "IPv4 subnet"},
        {"fd00::/64", "IPv4 subnet"},      {"", "IPv4 subnet"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_assert_false(api_network_check_cidr("cidr", bad[i].cidr, &error));
        assert_invalid_prefix(error, "cidr");
        if (strstr(error->message, bad[i].says) == NULL)
            g_error("%s: \"%s\" does not say \"%s\"", bad[i].cidr, error->message, bad[i].says);
    }
}

static void test_create(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) nat = parse_text("{\"name\":\"lab\",\"mode\":\"nat\"}");
    g_autoptr(ApiNetwork) lab = api_network_create_from_json(nat, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(lab->name, ==, "lab");
    g_assert_cmpstr(lab->mode, ==, "nat");
    g_assert_null(lab->cidr);
    g_assert_null(lab->bridge);

    g_autoptr(json_object) ext = parse_text("{\"name\":\"public\",\"mode\":\"external\","
                                            "\"bridge\":\"br0\",\"shared_with\":[\"a\",\"b\"]}");
    g_autoptr(ApiNetwork) public = api_network_create_from_json(ext, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(public->bridge, ==, "br0");
    g_assert_cmpuint(public->shared_with->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(public->shared_with, 1), ==, "b");
}

static void test_create_bad(void)
{
    const struct {
        const char *json;
        const char *field;
    } cases[] = {
        {"{\"mode\":\"nat\"}", "name"},
        {"{\"name\":\"Lab\",\"mode\":\"nat\"}", "name"},
        {"{\"name\":\"lab\"}", "mode"},
        {"{\"name\":\"lab\",\"mode\":\"routed\"}", "mode"},
        {"{\"name\":\"lab\",\"mode\":\"nat\",\"cidr\":\"10.0.0.1/24\"}", "cidr"},
        {"{\"name\":\"lab\",\"mode\":\"nat\",\"cidr\":7}", "cidr"},
        {"{\"name\":\"lab\",\"mode\":\"isolated\",\"bridge\":\"br0\"}", "bridge"},
        {"{\"name\":\"lab\",\"mode\":\"nat\",\"shared_with\":[\"a\"]}", "shared_with"},
        {"{\"name\":\"lab\",\"mode\":\"external\"}", "bridge"},
        {"{\"name\":\"lab\",\"mode\":\"external\",\"bridge\":\"br0\",\"cidr\":\"10.0.0.0/24\"}",
         "cidr"},
        {"{\"name\":\"lab\",\"mode\":\"external\",\"bridge\":\"a-very-long-bridge\"}", "bridge"},
        {"{\"name\":\"lab\",\"mode\":\"external\",\"bridge\":\"br/0\"}", "bridge"},
        {"{\"name\":\"lab\",\"mode\":\"external\",\"bridge\":\"..\"}", "bridge"},
        {"{\"name\":\"lab\",\"mode\":\"external\",\"bridge\":\"br0\",\"shared_with\":[\"a\",\"a\"]"
         "}",
         "shared_with[1]"},
        {"{\"name\":\"lab\",\"mode\":\"external\",\"bridge\":\"br0\",\"shared_with\":[\"A\"]}",
         "shared_with[0]"},
        {"{\"name\":\"lab\",\"mode\":\"nat\",\"extra\":true}", "extra"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) value = parse_text(cases[i].json);
        g_autoptr(ApiNetwork) network = api_network_create_from_json(value, &error);
        g_assert_null(network);
        assert_invalid_prefix(error, cases[i].field);
    }
}

static void test_round_trip(void)
{
    g_autoptr(ApiNetwork) network = api_network_new();
    network->id = g_strdup("3f1c2a4e-8b9d-4e7f-a1b2-c3d4e5f60718");
    network->name = g_strdup("public");
    network->mode = g_strdup("external");
    network->bridge = g_strdup("br0");
    g_ptr_array_add(network->shared_with, g_strdup("acme"));
    network->nics = 3;
    network->created_at = g_strdup("2024-05-01T12:00:00Z");
    network->updated_at = g_strdup("2024-05-01T12:00:00Z");
    g_autoptr(GPtrArray) list = g_ptr_array_new();
    g_ptr_array_add(list, network);
    g_autoptr(json_object) value = api_network_list_to_json(list, "abc");
    g_autofree char *text = api_json_to_string(value);
    g_assert_cmpstr(text, ==,
                    "{\"networks\":[{\"id\":\"3f1c2a4e-8b9d-4e7f-a1b2-c3d4e5f60718\","
                    "\"name\":\"public\",\"tenant\":null,\"mode\":\"external\",\"cidr\":null,"
                    "\"gateway\":null,\"bridge\":\"br0\",\"shared_with\":[\"acme\"],\"nics\":3,"
                    "\"created_at\":\"2024-05-01T12:00:00Z\","
                    "\"updated_at\":\"2024-05-01T12:00:00Z\"}],\"next\":\"abc\"}");
    g_autoptr(GError) error = NULL;
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) back = api_network_list_from_json(value, &next, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(next, ==, "abc");
    g_assert_cmpuint(back->len, ==, 1);
    ApiNetwork *decoded = g_ptr_array_index(back, 0);
    g_assert_null(decoded->tenant);
    g_assert_cmpint(decoded->nics, ==, 3);
    g_assert_cmpstr(g_ptr_array_index(decoded->shared_with, 0), ==, "acme");
}

static void test_spec_nics(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) value =
        parse_text("{\"name\":\"web\",\"vcpus\":1,\"memory_mib\":256,\"boot\":{\"disk\":\"d\"},"
                   "\"nics\":[{\"network\":\"lab\"},{\"network\":\"public\","
                   "\"mac\":\"52:54:00:aa:bb:cc\"}]}");
    g_autoptr(ApiStackSpec) spec = api_stack_spec_from_json(value, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(spec->nics->len, ==, 2);
    ApiStackNic *second = g_ptr_array_index(spec->nics, 1);
    g_assert_cmpstr(second->network, ==, "public");
    g_assert_cmpstr(second->mac, ==, "52:54:00:aa:bb:cc");

    const struct {
        const char *nics;
        const char *field;
    } bad[] = {
        {"[{}]", "nics[0].network"},
        {"[{\"network\":\"Lab\"}]", "nics[0].network"},
        {"[{\"network\":\"lab\",\"ip\":\"10.0.0.5\"}]", "nics[0].ip"},
        {"[{\"network\":\"lab\",\"mac\":\"52:54:00:AA:BB:CC\"}]", "nics[0].mac"},
        {"[{\"network\":\"lab\",\"mac\":\"01:00:5e:00:00:01\"}]", "nics[0].mac"},
        {"[{\"network\":\"lab\",\"mac\":\"00:00:00:00:00:00\"}]", "nics[0].mac"},
        {"[{\"network\":\"lab\",\"mac\":\"52:54:00:aa:bb\"}]", "nics[0].mac"},
        {"[{\"network\":\"a\",\"mac\":\"52:54:00:aa:bb:cc\"},"
         "{\"network\":\"b\",\"mac\":\"52:54:00:aa:bb:cc\"}]",
         "nics[1].mac"},
        {"[{\"network\":\"lab\",\"model\":\"e1000\"}]", "nics[0].model"},
        {"[1,2,3,4,5,6,7,8,9]", "nics"},
        {"{}", "nics"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *json = g_strdup_printf(
            "{\"name\":\"web\",\"vcpus\":1,\"memory_mib\":256,\"boot\":{\"disk\":\"d\"},"
            "\"nics\":%s}",
            bad[i].nics);
        g_autoptr(GError) local = NULL;
        g_autoptr(json_object) spec_json = parse_text(json);
        g_autoptr(ApiStackSpec) refused = api_stack_spec_from_json(spec_json, &local);
        g_assert_null(refused);
        assert_invalid_prefix(local, bad[i].field);
    }

    /* A stored record may carry the address last leased. */
    g_autoptr(json_object) record =
        parse_text("{\"name\":\"web\",\"vcpus\":1,\"memory_mib\":256,\"boot\":{\"disk\":\"d\"},"
                   "\"nics\":[{\"network\":\"lab\",\"mac\":\"52:54:00:aa:bb:cc\","
                   "\"ip\":\"10.200.0.7\"}]}");
    g_autoptr(ApiStackSpec) stored = api_stack_spec_from_record_json(record, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(((ApiStackNic *)g_ptr_array_index(stored->nics, 0))->ip, ==, "10.200.0.7");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/network/cidr", test_cidr);
    g_test_add_func("/api/network/create", test_create);
    g_test_add_func("/api/network/create-bad", test_create_bad);
    g_test_add_func("/api/network/round-trip", test_round_trip);
    g_test_add_func("/api/network/spec-nics", test_spec_nics);
    return g_test_run();
}
