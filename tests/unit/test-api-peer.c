/* api/peer: peers (migration targets) on the wire, decoded strictly. */
#include "api/error.h"
#include "api/json.h"
#include "api/peer.h"
#include "tests/unit/api-test-util.h"

#include <string.h>

#define CREATED "2024-05-01T12:00:00Z"

#define VALID_PEER                                                                                 \
    "{\"name\":\"hostb\",\"libvirt_uri\":\"qemu+tcp://10.0.0.2/system\","                          \
    "\"migrate_uri\":\"tcp://10.0.0.2:49152\",\"created_at\":\"" CREATED "\"}"
#define VALID_CREATE                                                                               \
    "{\"name\":\"hostb\",\"libvirt_uri\":\"qemu+tcp://10.0.0.2/system\","                          \
    "\"migrate_uri\":\"tcp://10.0.0.2\"}"

/* Stricter than assert_invalid: the message starts with "<field>: ". */
static void assert_invalid_prefix(const GError *error, const char *field)
{
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    g_autofree char *prefix = g_strconcat(field, ": ", NULL);
    if (!g_str_has_prefix(error->message, prefix))
        g_error("message \"%s\" does not start with \"%s\"", error->message, prefix);
}

static ApiPeer *peer_fixture(void)
{
    ApiPeer *peer = api_peer_new();
    peer->name = g_strdup("hostb");
    peer->libvirt_uri = g_strdup("qemu+ssh://root@hostb.example/system?keyfile=/k");
    peer->migrate_uri = g_strdup("tcp://[fd00::2]:49152");
    peer->created_at = g_strdup(CREATED);
    return peer;
}

static void assert_peer_equal(const ApiPeer *a, const ApiPeer *b)
{
    g_assert_cmpstr(a->name, ==, b->name);
    g_assert_cmpstr(a->libvirt_uri, ==, b->libvirt_uri);
    g_assert_cmpstr(a->migrate_uri, ==, b->migrate_uri);
    g_assert_cmpstr(a->created_at, ==, b->created_at);
}

static ApiPeer *round_trip(const ApiPeer *peer)
{
    g_autoptr(json_object) encoded = api_peer_to_json(peer);
    g_autofree char *text = api_json_to_string(encoded);
    g_autoptr(json_object) value = parse(text);
    g_autoptr(GError) error = NULL;
    ApiPeer *decoded = api_peer_from_json(value, &error);
    g_assert_no_error(error);
    g_assert_nonnull(decoded);
    return decoded;
}

/* ---- lifetime --------------------------------------------------------------------------- */

static void test_new_and_copy(void)
{
    g_autoptr(ApiPeer) fresh = api_peer_new();
    g_assert_null(fresh->name);
    g_assert_null(fresh->migrate_uri);
    api_peer_free(NULL);
    g_assert_null(api_peer_copy(NULL));

    g_autoptr(ApiPeer) peer = peer_fixture();
    g_autoptr(ApiPeer) copy = api_peer_copy(peer);
    assert_peer_equal(copy, peer);
    g_assert_true(copy->libvirt_uri != peer->libvirt_uri);
    g_clear_pointer(&peer, api_peer_free);
    g_assert_cmpstr(copy->migrate_uri, ==, "tcp://[fd00::2]:49152");
}

/* ---- URI rules ----------------------------------------------------------------------------- */

static void test_libvirt_uri(void)
{
    static const char *const good[] = {
        "qemu:///system",
        "qemu+tcp://10.0.0.2/system",
        "qemu+tcp://127.0.0.1:16509/system",
        "qemu+tls://hostb.example.com/system",
        "qemu+ssh://root@hostb/system?keyfile=/root/.ssh/id_ed25519",
        "qemu+libssh2://user@[fd00::2]:2222/system?known_hosts=/k",
        "qemu+unix:///system?socket=/run/turtles-b/libvirt-sock",
        "qemu+ext:///system?command=/bin/x",
        "test:///default",
        "qemu+tcp://h/system?name=a%20b",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autoptr(GError) error = NULL;
        g_test_message("good: %s", good[i]);
        g_assert_true(api_peer_check_libvirt_uri("libvirt_uri", good[i], &error));
        g_assert_no_error(error);
    }

    g_autofree char *longest = g_strnfill(API_PEER_URI_MAX, 'a');
    memcpy(longest, "qemu+tcp://h/", strlen("qemu+tcp://h/"));
    g_assert_true(api_peer_check_libvirt_uri("x", longest, NULL));
    g_autofree char *too_long = g_strconcat(longest, "a", NULL);

    static const struct {
        const char *uri;
        const char *what; /* a part of the message */
    } bad[] = {
        {"", "scheme"},
        {"hostb", "scheme"},
        {"//hostb/system", "scheme"},
        {"qemu:system", "with \"//\" after the scheme"},
        {"QEMU:///system", "DRIVER one of qemu, test"},
        {"Qemu+tcp://h/system", "DRIVER"},
        {"qemu+TCP://h/system", "TRANSPORT"},
        {"qemu+http://h/system", "TRANSPORT one of tcp, tls, ssh, libssh, libssh2, unix, ext"},
        {"qemu+://h/system", "TRANSPORT"},
        {"+tcp://h/system", "DRIVER"},
        {"xen+ssh://h/", "DRIVER one of qemu, test"},
        {"https://h/system", "DRIVER"},
        {"qemu+tcp+tls://h/system", "TRANSPORT"},
        {"qemu_x://h/system", "DRIVER"},
        {"qemu+tcp://h /system", "without spaces"},
        {" qemu+tcp://h/system", "without spaces"},
        {"qemu+tcp://h/system\n", "without spaces"},
        {"qemu+tcp://h/syst\tem", "without spaces"},
        {"qemu+tcp://h\xC3\xA9/system", "printable ASCII"},
        {"qemu+tcp://h%zz/system", "must be a URI like qemu+tcp://HOST/system ("},
        {"qemu+tcp://h:abc/system", "must be a URI like"},
        {"qemu+tcp://h:99999/system", "must be a URI like"},
        {"qemu+ssh://root:secret@h/system", "must not carry a password"},
        {"qemu+ssh://root:@h/system", "must not carry a password"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_test_message("bad: %s", bad[i].uri);
        g_assert_false(api_peer_check_libvirt_uri("libvirt_uri", bad[i].uri, &error));
        assert_invalid_prefix(error, "libvirt_uri");
        if (!strstr(error->message, bad[i].what))
            g_error("%s: message \"%s\" lacks \"%s\"", bad[i].uri, error->message, bad[i].what);
    }

    g_autoptr(GError) error = NULL;
    g_assert_false(api_peer_check_libvirt_uri("libvirt_uri", too_long, &error));
    g_assert_cmpstr(error->message, ==, "libvirt_uri: must be at most 1024 characters");
    g_clear_error(&error);
    g_assert_false(api_peer_check_libvirt_uri("libvirt_uri", NULL, &error));
    g_assert_cmpstr(error->message, ==, "libvirt_uri: is required");
}

static void test_migrate_uri(void)
{
    static const char *const good[] = {
        "tcp://10.0.0.2",    "tcp://127.0.0.1:49152",   "tcp://hostb.example.com:1",
        "tcp://[::1]:65535", "rdma://192.168.1.2:4444",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autoptr(GError) error = NULL;
        g_test_message("good: %s", good[i]);
        g_assert_true(api_peer_check_migrate_uri("migrate_uri", good[i], &error));
        g_assert_no_error(error);
    }

    static const char *const bad[] = {
        "",
        "10.0.0.2",
        "tcp:10.0.0.2:49152", /* QEMU's own form: libvirt wants a URI */
        "TCP://10.0.0.2",
        "udp://10.0.0.2",
        "unix:///tmp/x",
        "qemu+tcp://h/system",
        "tcp://",
        "tcp://:49152",
        "tcp://h:0",
        "tcp://h:",
        "tcp://h:65536",
        "tcp://h/",
        "tcp://h/path",
        "tcp://h?x=1",
        "tcp://h#f",
        "tcp://user@h",
        "tcp://h :1",
        "tcp://h%zz",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_test_message("bad: %s", bad[i]);
        g_assert_false(api_peer_check_migrate_uri("migrate_uri", bad[i], &error));
        assert_invalid_prefix(error, "migrate_uri");
    }
    g_autoptr(GError) error = NULL;
    g_assert_false(api_peer_check_migrate_uri("migrate_uri", "udp://h", &error));
    g_assert_cmpstr(error->message, ==,
                    "migrate_uri: must be tcp://HOST[:PORT] or rdma://HOST[:PORT]");
}

/* ---- JSON -------------------------------------------------------------------------------- */

static void test_round_trip(void)
{
    g_autoptr(ApiPeer) peer = peer_fixture();
    g_autoptr(ApiPeer) decoded = round_trip(peer);
    assert_peer_equal(decoded, peer);

    g_clear_pointer(&peer->migrate_uri, g_free);
    g_autoptr(ApiPeer) unset = round_trip(peer);
    assert_peer_equal(unset, peer);
    g_assert_null(unset->migrate_uri);
}

static void test_to_json_shape(void)
{
    g_autoptr(ApiPeer) peer = api_peer_new();
    peer->name = g_strdup("hostb");
    peer->libvirt_uri = g_strdup("qemu+tcp://10.0.0.2/system");
    peer->created_at = g_strdup(CREATED);
    g_autoptr(json_object) value = api_peer_to_json(peer);
    g_autofree char *text = api_json_to_string(value);
    g_assert_cmpstr(text, ==,
                    "{\"name\":\"hostb\",\"libvirt_uri\":\"qemu+tcp://10.0.0.2/system\","
                    "\"migrate_uri\":null,\"created_at\":\"" CREATED "\"}");

    /* A valid document decodes and encodes back to itself. */
    g_autoptr(json_object) valid = parse(VALID_PEER);
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiPeer) decoded = api_peer_from_json(valid, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(decoded->migrate_uri, ==, "tcp://10.0.0.2:49152");
    g_autoptr(json_object) encoded = api_peer_to_json(decoded);
    g_assert_true(json_object_equal(encoded, valid));
}

static const Mutation peer_bad[] = {
    {"extra", "1", "extra"},
    {"id", "\"4e3d2c1b-0a9f-4e8d-8c7b-6a5f4e3d2c1b\"", "id"},
    {"name", NULL, "name"},
    {"libvirt_uri", NULL, "libvirt_uri"},
    {"migrate_uri", NULL, "migrate_uri"}, /* null, but present */
    {"created_at", NULL, "created_at"},
    {"name", "null", "name"},
    {"name", "\"Host_B\"", "name"},
    {"name", "7", "name"},
    {"libvirt_uri", "null", "libvirt_uri"},
    {"libvirt_uri", "\"hostb\"", "libvirt_uri"},
    {"libvirt_uri", "[]", "libvirt_uri"},
    {"migrate_uri", "\"udp://h\"", "migrate_uri"},
    {"migrate_uri", "5", "migrate_uri"},
    {"created_at", "\"yesterday\"", "created_at"},
    {"created_at", "null", "created_at"},
};

static void test_from_json_bad(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(peer_bad); i++) {
        const Mutation *m = &peer_bad[i];
        g_test_message("%s <- %s", m->path, m->replacement ? m->replacement : "(removed)");
        g_autoptr(json_object) value = mutate(VALID_PEER, m);
        g_autoptr(GError) error = NULL;
        g_autoptr(ApiPeer) peer = api_peer_from_json(value, &error);
        g_assert_null(peer);
        assert_invalid_prefix(error, m->field);
    }
    g_autoptr(json_object) array = parse("[]");
    g_autoptr(GError) error = NULL;
    g_assert_null(api_peer_from_json(array, &error));
    assert_invalid_prefix(error, "body");
}

/* ---- create ------------------------------------------------------------------------------- */

static void test_create(void)
{
    static const struct {
        const char *body;
        const char *migrate_uri;
    } good[] = {
        {VALID_CREATE, "tcp://10.0.0.2"},
        {"{\"name\":\"b\",\"libvirt_uri\":\"qemu+tcp://10.0.0.2/system\"}", NULL},
        {"{\"migrate_uri\":null,\"libvirt_uri\":\"qemu+tcp://10.0.0.2/system\",\"name\":\"b\"}",
         NULL},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autoptr(json_object) value = parse(good[i].body);
        g_autoptr(GError) error = NULL;
        g_autoptr(ApiPeer) peer = api_peer_create_from_json(value, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(peer->libvirt_uri, ==, "qemu+tcp://10.0.0.2/system");
        g_assert_cmpstr(peer->migrate_uri, ==, good[i].migrate_uri);
        /* The server's to fill. */
        g_assert_null(peer->created_at);
    }
}

static const Mutation create_bad[] = {
    {"created_at", "\"" CREATED "\"", "created_at"}, /* server-assigned: unknown here */
    {"extra", "true", "extra"},
    {"name", NULL, "name"},
    {"libvirt_uri", NULL, "libvirt_uri"},
    {"name", "null", "name"},
    {"name", "\"hostb-\"", "name"},
    {"name", "\"a234567890123456789012345678901234567890123456789012345678901234\"", "name"},
    {"libvirt_uri", "null", "libvirt_uri"},
    {"libvirt_uri", "\"\"", "libvirt_uri"},
    {"libvirt_uri", "\"qemu+tcp://h /system\"", "libvirt_uri"},
    {"libvirt_uri", "\"https://h/system\"", "libvirt_uri"},
    {"libvirt_uri", "{}", "libvirt_uri"},
    {"migrate_uri", "\"\"", "migrate_uri"},
    {"migrate_uri", "\"tcp://h/x\"", "migrate_uri"},
    {"migrate_uri", "false", "migrate_uri"},
};

static void test_create_bad(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(create_bad); i++) {
        const Mutation *m = &create_bad[i];
        g_test_message("%s <- %s", m->path, m->replacement ? m->replacement : "(removed)");
        g_autoptr(json_object) value = mutate(VALID_CREATE, m);
        g_autoptr(GError) error = NULL;
        g_autoptr(ApiPeer) peer = api_peer_create_from_json(value, &error);
        g_assert_null(peer);
        assert_invalid_prefix(error, m->field);
    }

    static const struct {
        const char *body;
        const char *message;
    } exact[] = {
        {"{\"name\":\"b\"}", "libvirt_uri: is required"},
        {"{\"libvirt_uri\":\"qemu:///system\"}", "name: is required"},
        {"{\"name\":\"b\",\"libvirt_uri\":\"qemu+ssh://u:p@h/system\"}",
         "libvirt_uri: must not carry a password"},
        {"\"hostb\"", "body: must be an object"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(exact); i++) {
        g_autoptr(json_object) value = parse(exact[i].body);
        g_autoptr(GError) error = NULL;
        g_assert_null(api_peer_create_from_json(value, &error));
        g_assert_error(error, API_ERROR, API_ERROR_INVALID);
        g_assert_cmpstr(error->message, ==, exact[i].message);
    }
}

/* ---- list ------------------------------------------------------------------------------------ */

static void test_list(void)
{
    g_autoptr(GPtrArray) peers = g_ptr_array_new_with_free_func((GDestroyNotify)api_peer_free);
    g_autoptr(json_object) empty = api_peer_list_to_json(peers, NULL);
    g_autofree char *empty_text = api_json_to_string(empty);
    g_assert_cmpstr(empty_text, ==, "{\"peers\":[],\"next\":null}");

    g_ptr_array_add(peers, peer_fixture());
    ApiPeer *second = peer_fixture();
    g_free(second->name);
    second->name = g_strdup("hostc");
    g_clear_pointer(&second->migrate_uri, g_free);
    g_ptr_array_add(peers, second);

    /* A page with more after it carries the cursor of the next. */
    g_autoptr(json_object) value = api_peer_list_to_json(peers, "YWNtZQB2bWxpbnV6");
    g_autofree char *text = api_json_to_string(value);
    g_autoptr(json_object) parsed = parse(text);
    g_autoptr(GError) error = NULL;
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) decoded = api_peer_list_from_json(parsed, &next, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(next, ==, "YWNtZQB2bWxpbnV6");
    g_assert_cmpuint(decoded->len, ==, 2);
    for (guint i = 0; i < decoded->len; i++)
        assert_peer_equal(g_ptr_array_index(decoded, i), g_ptr_array_index(peers, i));

    static const struct {
        const char *body;
        const char *message;
    } bad[] = {
        {"{}", "peers: is required"},
        {"{\"peers\":{}}", "peers: must be an array"},
        {"{\"peers\":[]}", "next: is required"},
        {"{\"peers\":[],\"next\":\"\"}", "next: must not be empty"},
        {"{\"peers\":[],\"next\":7}", "next: must be a string or null"},
        {"{\"peers\":[],\"next\":null,\"more\":1}", "more: unknown field"},
        {"{\"next\":null,\"peers\":[" VALID_PEER ",7]}", "peers[1]: must be an object"},
        {"{\"next\":null,\"peers\":[" VALID_PEER ",{\"name\":\"x\"}]}",
         "peers[1].libvirt_uri: is required"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(json_object) body = parse(bad[i].body);
        g_autoptr(GError) local = NULL;
        g_autofree char *cursor = NULL;
        g_assert_null(api_peer_list_from_json(body, &cursor, &local));
        g_assert_error(local, API_ERROR, API_ERROR_INVALID);
        g_assert_cmpstr(local->message, ==, bad[i].message);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/peer/new-and-copy", test_new_and_copy);
    g_test_add_func("/api/peer/libvirt-uri", test_libvirt_uri);
    g_test_add_func("/api/peer/migrate-uri", test_migrate_uri);
    g_test_add_func("/api/peer/round-trip", test_round_trip);
    g_test_add_func("/api/peer/to-json-shape", test_to_json_shape);
    g_test_add_func("/api/peer/from-json-bad", test_from_json_bad);
    g_test_add_func("/api/peer/create", test_create);
    g_test_add_func("/api/peer/create-bad", test_create_bad);
    g_test_add_func("/api/peer/list", test_list);
    return g_test_run();
}
