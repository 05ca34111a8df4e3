/* api/cloud_init: the seed part of a stack spec, its bounds and what is
 * shown of it. */
#include <glib.h>
#include <string.h>

#include "api/cloud_init.h"
#include "api/error.h"
#include "api/json.h"
#include "api/spec.h"

/* "<type> <base64 of an SSH blob naming @blob_type> <comment>" */
static char *make_key(const char *type, const char *blob_type, gsize key_bytes)
{
    g_autoptr(GByteArray) blob = g_byte_array_new();
    guint32 len = GUINT32_TO_BE((guint32)strlen(blob_type));
    g_byte_array_append(blob, (const guint8 *)&len, 4);
    g_byte_array_append(blob, (const guint8 *)blob_type, strlen(blob_type));
    guint32 key_len = GUINT32_TO_BE((guint32)key_bytes);
    g_byte_array_append(blob, (const guint8 *)&key_len, 4);
    for (gsize i = 0; i < key_bytes; i++) {
        guint8 b = (guint8)(i * 7 + 1);
        g_byte_array_append(blob, &b, 1);
    }
    g_autofree char *b64 = g_base64_encode(blob->data, blob->len);
    return g_strdup_printf("%s %s alice@laptop", type, b64);
}

static ApiCloudInit *decode(const char *json, gboolean record, GError **error)
{
    g_autoptr(json_object) value = api_json_parse(json, strlen(json), API_JSON_MAX_DEPTH, NULL);
    g_assert_nonnull(value);
    return api_cloud_init_from_json(value, record, error);
}

static void assert_refused(const char *json, const char *message_prefix)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiCloudInit) ci = decode(json, FALSE, &error);
    g_assert_null(ci);
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    if (!g_str_has_prefix(error->message, message_prefix))
        g_error("want '%s...', got '%s'", message_prefix, error->message);
}

static void test_ssh_keys(void)
{
    static const char *const types[] = {"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256",
                                        "sk-ssh-ed25519@openssh.com"};
    for (guint i = 0; i < G_N_ELEMENTS(types); i++) {
        g_autofree char *key = make_key(types[i], types[i], 32);
        g_autoptr(GError) error = NULL;
        g_assert_true(api_cloud_init_check_ssh_key("k", key, &error));
        g_assert_no_error(error);
    }
    g_autofree char *good = make_key("ssh-ed25519", "ssh-ed25519", 32);
    g_autofree char *no_comment = g_strndup(good, strrchr(good, ' ') - good);
    g_assert_true(api_cloud_init_check_ssh_key("k", no_comment, NULL));

    /* A key under another type's name, options first, not base64, two lines. */
    g_autofree char *wrong_type = make_key("ssh-rsa", "ssh-ed25519", 32);
    g_autofree char *options = g_strconcat("no-pty ", good, NULL);
    g_autofree char *two_lines = g_strconcat(good, "\n", good, NULL);
    const char *bad[] = {
        wrong_type,
        options,
        two_lines,
        "",
        "ssh-ed25519",
        "ssh-ed25519 ",
        "ssh-ed25519 AAAA$$$$",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", /* only the type, no key */
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "hello world",
    };
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_assert_false(
            api_cloud_init_check_ssh_key("cloud_init.ssh_authorized_keys[0]", bad[i], &error));
        g_assert_error(error, API_ERROR, API_ERROR_INVALID);
        g_assert_true(g_str_has_prefix(error->message, "cloud_init.ssh_authorized_keys[0]: "));
    }
}

static void test_hostnames(void)
{
    const char *good[] = {"web", "web-1", "a.b.example", "x", "A1"};
    const char *bad[] = {"", "-web", "web-", "a..b", "under_score", "sp ace", "é"};
    for (guint i = 0; i < G_N_ELEMENTS(good); i++)
        g_assert_true(api_cloud_init_hostname_is_valid(good[i]));
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
        g_assert_false(api_cloud_init_hostname_is_valid(bad[i]));
    g_autofree char *long_label = g_strnfill(64, 'a');
    g_assert_false(api_cloud_init_hostname_is_valid(long_label));
}

static void test_decode_and_show(void)
{
    g_autofree char *key = make_key("ssh-ed25519", "ssh-ed25519", 32);
    g_autofree char *json = g_strdup_printf(
        "{\"user_data\":\"#cloud-config\\nhostname: x\\n\",\"meta_data\":{\"local-hostname\":"
        "\"l1.example\",\"zone\":{\"a\":1}},\"ssh_authorized_keys\":[\"%s\"]}",
        key);
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiCloudInit) ci = decode(json, FALSE, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(ci->user_data, ==, "#cloud-config\nhostname: x\n");
    g_autofree char *sha =
        g_compute_checksum_for_string(G_CHECKSUM_SHA256, "#cloud-config\nhostname: x\n", -1);
    g_assert_cmpstr(ci->user_data_sha256, ==, sha);
    g_assert_cmpint(ci->user_data_bytes, ==, 26);
    g_assert_cmpuint(ci->ssh_authorized_keys->len, ==, 1);

    /* Shown: the digest, never the bytes; stored: the bytes. */
    g_autoptr(json_object) shown = api_cloud_init_to_json(ci, FALSE);
    g_assert_false(json_object_object_get_ex(shown, "user_data", NULL));
    json_object *digest = NULL;
    g_assert_true(json_object_object_get_ex(shown, "user_data_sha256", &digest));
    g_assert_cmpstr(json_object_get_string(digest), ==, sha);
    g_autoptr(json_object) stored = api_cloud_init_to_json(ci, TRUE);
    g_assert_true(json_object_object_get_ex(stored, "user_data", NULL));

    /* Both read back as records; a shown one keeps the digest. */
    g_autoptr(ApiCloudInit) from_shown = api_cloud_init_from_json(shown, TRUE, &error);
    g_assert_no_error(error);
    g_assert_null(from_shown->user_data);
    g_assert_cmpstr(from_shown->user_data_sha256, ==, sha);
    g_assert_cmpint(from_shown->user_data_bytes, ==, 26);
    g_autoptr(ApiCloudInit) from_stored = api_cloud_init_from_json(stored, TRUE, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(from_stored->user_data, ==, ci->user_data);
    g_autoptr(ApiCloudInit) copy = api_cloud_init_copy(ci);
    g_assert_cmpstr(copy->user_data_sha256, ==, sha);
    g_assert_true(json_object_equal(copy->meta_data, ci->meta_data));

    /* Without user data: an empty file, and its digest. */
    g_autoptr(ApiCloudInit) empty = decode("{}", FALSE, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(empty->user_data_sha256, ==,
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_refusals(void)
{
    g_autofree char *big = g_strnfill(API_CLOUD_INIT_USER_DATA_MAX + 1, 'x');
    g_autofree char *big_json = g_strdup_printf("{\"user_data\":\"%s\"}", big);
    assert_refused(big_json, "cloud_init.user_data: must be at most 65536 bytes");
    g_autofree char *max = g_strnfill(API_CLOUD_INIT_USER_DATA_MAX, 'x');
    g_autofree char *max_json = g_strdup_printf("{\"user_data\":\"%s\"}", max);
    g_autoptr(ApiCloudInit) at_max = decode(max_json, FALSE, NULL);
    g_assert_nonnull(at_max);

    assert_refused("{\"ssh_authorized_keys\":[\"not a key\"]}",
                   "cloud_init.ssh_authorized_keys[0]: must be an SSH public key");
    assert_refused("{\"ssh_authorized_keys\":\"ssh-ed25519 AAAA\"}",
                   "cloud_init.ssh_authorized_keys: must be an array");
    assert_refused("{\"ssh_authorized_keys\":[1]}", "cloud_init.ssh_authorized_keys[0]: must be");
    assert_refused("{\"meta_data\":[]}", "cloud_init.meta_data: must be an object");
    assert_refused("{\"meta_data\":{\"instance-id\":\"x\"}}",
                   "cloud_init.meta_data.instance-id: is set by the server");
    assert_refused("{\"meta_data\":{\"public-keys\":[]}}",
                   "cloud_init.meta_data.public-keys: is set by the server");
    assert_refused("{\"meta_data\":{\"local-hostname\":\"bad_name\"}}",
                   "cloud_init.meta_data.local-hostname: must be a host name");
    assert_refused("{\"user_data_sha256\":\"00\"}", "cloud_init.user_data_sha256: unknown field");
    assert_refused("{\"userdata\":\"x\"}", "cloud_init.userdata: unknown field");
    g_autofree char *big_meta = g_strnfill(API_CLOUD_INIT_META_DATA_MAX, 'm');
    g_autofree char *big_meta_json = g_strdup_printf("{\"meta_data\":{\"k\":\"%s\"}}", big_meta);
    assert_refused(big_meta_json, "cloud_init.meta_data: must be at most 16384 bytes");

    g_autoptr(GString) many = g_string_new("{\"ssh_authorized_keys\":[");
    g_autofree char *key = make_key("ssh-ed25519", "ssh-ed25519", 32);
    for (int i = 0; i <= API_CLOUD_INIT_KEYS_MAX; i++)
        g_string_append_printf(many, "%s\"%s\"", i ? "," : "", key);
    g_string_append(many, "]}");
    assert_refused(many->str, "cloud_init.ssh_authorized_keys: must have at most 32 entries");

    /* A record without user data must carry a well-formed digest. */
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiCloudInit) bad_record = decode("{\"user_data_sha256\":\"xyz\"}", TRUE, &error);
    g_assert_null(bad_record);
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
}

/* The spec's boot.firmware / boot.secure_boot and its cloud_init member. */
static void test_spec_members(void)
{
    const char *uefi = "{\"name\":\"a\",\"vcpus\":1,\"memory_mib\":256,\"boot\":{\"disk\":\"d\","
                       "\"firmware\":\"uefi\",\"secure_boot\":true},\"cloud_init\":{"
                       "\"user_data\":\"hi\"}}";
    g_autoptr(json_object) value = api_json_parse(uefi, strlen(uefi), API_JSON_MAX_DEPTH, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiStackSpec) spec = api_stack_spec_from_json(value, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(spec->firmware, ==, "uefi");
    g_assert_true(spec->secure_boot);
    g_assert_cmpstr(spec->cloud_init->user_data, ==, "hi");
    g_autoptr(ApiStackSpec) copy = api_stack_spec_copy(spec);
    g_assert_cmpstr(copy->cloud_init->user_data, ==, "hi");
    g_autoptr(json_object) shown = api_stack_spec_to_public_json(spec);
    g_assert_null(strstr(json_object_to_json_string(shown), "\"hi\""));
    g_autoptr(json_object) full = api_stack_spec_to_json(spec);
    g_autofree char *full_text = api_json_to_string(full);
    g_assert_nonnull(strstr(full_text, "\"user_data\":\"hi\""));

    const struct {
        const char *boot;
        const char *message;
    } bad[] = {
        {"{\"disk\":\"d\",\"firmware\":\"coreboot\"}", "boot.firmware: must be one of"},
        {"{\"disk\":\"d\",\"secure_boot\":true}", "boot.secure_boot: needs boot.firmware"},
        {"{\"disk\":\"d\",\"firmware\":\"bios\",\"secure_boot\":true}",
         "boot.secure_boot: needs boot.firmware"},
        {"{\"disk\":\"d\",\"secure_boot\":\"yes\"}", "boot.secure_boot: must be a boolean"},
    };
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *json = g_strdup_printf(
            "{\"name\":\"a\",\"vcpus\":1,\"memory_mib\":256,\"boot\":%s}", bad[i].boot);
        g_autoptr(json_object) v = api_json_parse(json, strlen(json), API_JSON_MAX_DEPTH, NULL);
        g_autoptr(GError) e = NULL;
        g_autoptr(ApiStackSpec) s = api_stack_spec_from_json(v, &e);
        g_assert_null(s);
        g_assert_error(e, API_ERROR, API_ERROR_INVALID);
        if (!g_str_has_prefix(e->message, bad[i].message))
            g_error("want '%s...', got '%s'", bad[i].message, e->message);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/cloud-init/ssh-keys", test_ssh_keys);
    g_test_add_func("/api/cloud-init/hostnames", test_hostnames);
    g_test_add_func("/api/cloud-init/decode-and-show", test_decode_and_show);
    g_test_add_func("/api/cloud-init/refusals", test_refusals);
    g_test_add_func("/api/cloud-init/spec-members", test_spec_members);
    return g_test_run();
}
