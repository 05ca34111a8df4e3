#include "api/cloud_init.h"

#include <string.h>

#include "api/json.h"

#define PATH "cloud_init"

static const char *const request_keys[] = {"user_data", "meta_data", "ssh_authorized_keys", NULL};
static const char *const record_keys[] = {
    "user_data", "meta_data", "ssh_authorized_keys", "user_data_sha256", "user_data_bytes", NULL};

/* The key types OpenSSH's sshd accepts in authorized_keys. */
static const char *const key_types[] = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
    NULL,
};

ApiCloudInit *api_cloud_init_new(void)
{
    ApiCloudInit *cloud_init = g_new0(ApiCloudInit, 1);
    cloud_init->meta_data = json_object_new_object();
    cloud_init->ssh_authorized_keys = g_ptr_array_new_with_free_func(g_free);
    /* No user data is an empty user-data file. */
    api_cloud_init_set_user_data(cloud_init, "");
    return cloud_init;
}

void api_cloud_init_free(ApiCloudInit *cloud_init)
{
    if (!cloud_init)
        return;
    g_free(cloud_init->user_data);
    g_free(cloud_init->user_data_sha256);
    json_object_put(cloud_init->meta_data);
    g_ptr_array_unref(cloud_init->ssh_authorized_keys);
    g_free(cloud_init);
}

ApiCloudInit *api_cloud_init_copy(const ApiCloudInit *cloud_init)
{
    ApiCloudInit *copy = api_cloud_init_new();
    g_free(copy->user_data_sha256);
    g_free(copy->user_data);
    copy->user_data = g_strdup(cloud_init->user_data);
    copy->user_data_sha256 = g_strdup(cloud_init->user_data_sha256);
    copy->user_data_bytes = cloud_init->user_data_bytes;
    json_object_put(copy->meta_data);
    copy->meta_data = NULL;
    json_object_deep_copy(cloud_init->meta_data, &copy->meta_data, NULL);
    for (guint i = 0; i < cloud_init->ssh_authorized_keys->len; i++)
        g_ptr_array_add(copy->ssh_authorized_keys,
                        g_strdup(g_ptr_array_index(cloud_init->ssh_authorized_keys, i)));
    return copy;
}

void api_cloud_init_set_user_data(ApiCloudInit *cloud_init, const char *user_data)
{
    const char *bytes = user_data ? user_data : "";
    g_free(cloud_init->user_data);
    g_free(cloud_init->user_data_sha256);
    cloud_init->user_data = g_strdup(bytes);
    cloud_init->user_data_bytes = (gint64)strlen(bytes);
    cloud_init->user_data_sha256 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, bytes, -1);
}

/* ---- value rules ------------------------------------------------------------- */

gboolean api_cloud_init_hostname_is_valid(const char *name)
{
    if (!name || !*name || strlen(name) > 253)
        return FALSE;
    g_auto(GStrv) labels = g_strsplit(name, ".", -1);
    for (guint i = 0; labels[i]; i++) {
        size_t len = strlen(labels[i]);
        if (len < 1 || len > 63 || labels[i][0] == '-' || labels[i][len - 1] == '-')
            return FALSE;
        for (size_t j = 0; j < len; j++) {
            if (!g_ascii_isalnum(labels[i][j]) && labels[i][j] != '-')
                return FALSE;
        }
    }
    return TRUE;
}

/* Strict base64: g_base64_decode skips characters it does not know. */
static gboolean is_base64(const char *text, size_t len)
{
    if (len == 0 || len % 4 != 0)
        return FALSE;
    size_t pad = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad > 0 || !(g_ascii_isalnum(c) || c == '+' || c == '/'))
            return FALSE;
    }
    return pad <= 2;
}

gboolean api_cloud_init_check_ssh_key(const char *path, const char *key, GError **error)
{
    if (!key || !*key) {
        api_json_set_invalid(error, path, "must be an SSH public key, not empty");
        return FALSE;
    }
    if (strlen(key) > API_CLOUD_INIT_KEY_MAX) {
        api_json_set_invalid(error, path, "must be at most %d bytes", API_CLOUD_INIT_KEY_MAX);
        return FALSE;
    }
    for (const char *p = key; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            api_json_set_invalid(error, path,
                                 "must be one line of an SSH public key, without control "
                                 "characters");
            return FALSE;
        }
    }
    const char *space = strchr(key, ' ');
    g_autofree char *type = space ? g_strndup(key, (gsize)(space - key)) : g_strdup(key);
    if (!g_strv_contains(key_types, type)) {
        api_json_set_invalid(error, path,
                             "must be an SSH public key (\"ssh-ed25519 AAAA... comment\"): "
                             "'%.40s' is not a key type (options before the key are not allowed)",
                             type);
        return FALSE;
    }
    const char *blob = space ? space + 1 : "";
    size_t blob_len = strcspn(blob, " ");
    if (!is_base64(blob, blob_len)) {
        api_json_set_invalid(error, path,
                             "must be an SSH public key: the key after '%s' is not "
                             "base64",
                             type);
        return FALSE;
    }
    /* The blob starts with its own type as an SSH string: a key pasted
     * under the wrong type is refused here rather than by sshd later. */
    g_autofree char *b64 = g_strndup(blob, blob_len);
    gsize len = 0;
    g_autofree guchar *raw = g_base64_decode(b64, &len);
    size_t type_len = strlen(type);
    guint32 named = len >= 4 ? ((guint32)raw[0] << 24 | (guint32)raw[1] << 16 |
                                (guint32)raw[2] << 8 | (guint32)raw[3])
                             : 0;
    if (len < 4 + type_len || named != type_len || memcmp(raw + 4, type, type_len) != 0 ||
        len == 4 + type_len) {
        api_json_set_invalid(error, path,
                             "must be an SSH public key: the base64 data is not a %s key", type);
        return FALSE;
    }
    return TRUE;
}

static gboolean check_meta_data(json_object *meta_data, GError **error)
{
    if (!json_object_is_type(meta_data, json_type_object)) {
        api_json_set_invalid(error, PATH ".meta_data", "must be an object");
        return FALSE;
    }
    const char *text = json_object_to_json_string_ext(meta_data, JSON_C_TO_STRING_PLAIN);
    if (strlen(text) > API_CLOUD_INIT_META_DATA_MAX) {
        api_json_set_invalid(error, PATH ".meta_data", "must be at most %d bytes as JSON",
                             API_CLOUD_INIT_META_DATA_MAX);
        return FALSE;
    }
    if (json_object_object_get_ex(meta_data, API_CLOUD_INIT_INSTANCE_ID, NULL)) {
        api_json_set_invalid(error, PATH ".meta_data." API_CLOUD_INIT_INSTANCE_ID,
                             "is set by the server (the stack's id)");
        return FALSE;
    }
    if (json_object_object_get_ex(meta_data, API_CLOUD_INIT_PUBLIC_KEYS, NULL)) {
        api_json_set_invalid(error, PATH ".meta_data." API_CLOUD_INIT_PUBLIC_KEYS,
                             "is set by the server: give keys in cloud_init.ssh_authorized_keys");
        return FALSE;
    }
    json_object *hostname = NULL;
    if (json_object_object_get_ex(meta_data, API_CLOUD_INIT_HOSTNAME, &hostname) &&
        (!json_object_is_type(hostname, json_type_string) ||
         !api_cloud_init_hostname_is_valid(json_object_get_string(hostname)))) {
        api_json_set_invalid(error, PATH ".meta_data." API_CLOUD_INIT_HOSTNAME,
                             "must be a host name (letters, digits, '-' and '.'; labels of 1-63, "
                             "253 in all)");
        return FALSE;
    }
    return TRUE;
}

gboolean api_cloud_init_validate(const ApiCloudInit *cloud_init, GError **error)
{
    if (cloud_init->user_data && strlen(cloud_init->user_data) > API_CLOUD_INIT_USER_DATA_MAX) {
        api_json_set_invalid(error, PATH ".user_data", "must be at most %d bytes (it has %zu)",
                             API_CLOUD_INIT_USER_DATA_MAX, strlen(cloud_init->user_data));
        return FALSE;
    }
    if (!check_meta_data(cloud_init->meta_data, error))
        return FALSE;
    GPtrArray *keys = cloud_init->ssh_authorized_keys;
    if (keys->len > API_CLOUD_INIT_KEYS_MAX) {
        api_json_set_invalid(error, PATH ".ssh_authorized_keys", "must have at most %d entries",
                             API_CLOUD_INIT_KEYS_MAX);
        return FALSE;
    }
    for (guint i = 0; i < keys->len; i++) {
        g_autofree char *path = api_json_path_index(PATH ".ssh_authorized_keys", i);
        if (!api_cloud_init_check_ssh_key(path, g_ptr_array_index(keys, i), error))
            return FALSE;
    }
    return TRUE;
}

/* ---- JSON ----------------------------------------------------------------------- */

static gboolean is_sha256_hex(const char *text)
{
    if (!text || strlen(text) != 64)
        return FALSE;
    for (int i = 0; i < 64; i++) {
        if (!g_ascii_isdigit(text[i]) && !(text[i] >= 'a' && text[i] <= 'f'))
            return FALSE;
    }
    return TRUE;
}

ApiCloudInit *api_cloud_init_from_json(json_object *value, gboolean record, GError **error)
{
    g_autoptr(ApiCloudInit) cloud_init = api_cloud_init_new();
    g_autofree char *user_data = NULL;
    g_autofree char *sha256 = NULL;
    gint64 bytes = -1;
    json_object *keys = NULL;
    json_object *meta_data = NULL;

    if (!api_json_check_object(value, PATH, record ? record_keys : request_keys, error) ||
        !api_json_get_string(value, PATH, "user_data", API_JSON_OPTIONAL, &user_data, error) ||
        !api_json_get_array(value, PATH, "ssh_authorized_keys", API_JSON_OPTIONAL, &keys, error) ||
        (record && !api_json_get_string(value, PATH, "user_data_sha256", API_JSON_OPTIONAL, &sha256,
                                        error)) ||
        (record && !api_json_get_int(value, PATH, "user_data_bytes", API_JSON_OPTIONAL, 0,
                                     API_CLOUD_INIT_USER_DATA_MAX, &bytes, error)))
        return NULL;
    /* Bounded before the value rules run: a long list costs nothing more. */
    if (keys && json_object_array_length(keys) > API_CLOUD_INIT_KEYS_MAX) {
        api_json_set_invalid(error, PATH ".ssh_authorized_keys", "must have at most %d entries",
                             API_CLOUD_INIT_KEYS_MAX);
        return NULL;
    }
    for (size_t i = 0; keys && i < json_object_array_length(keys); i++) {
        g_autofree char *path = api_json_path_index(PATH ".ssh_authorized_keys", i);
        char *key = NULL;
        if (!api_json_value_string(json_object_array_get_idx(keys, i), path, API_JSON_REQUIRED,
                                   &key, error))
            return NULL;
        g_ptr_array_add(cloud_init->ssh_authorized_keys, key);
    }
    if (json_object_object_get_ex(value, "meta_data", &meta_data)) {
        if (!json_object_is_type(meta_data, json_type_object)) {
            api_json_set_invalid(error, PATH ".meta_data", "must be an object");
            return NULL;
        }
        json_object_put(cloud_init->meta_data);
        cloud_init->meta_data = json_object_get(meta_data);
    }
    if (user_data || !record) {
        api_cloud_init_set_user_data(cloud_init, user_data);
    } else {
        /* A record that carries the digest only. */
        if (!is_sha256_hex(sha256) || bytes < 0) {
            api_json_set_invalid(error, PATH ".user_data_sha256",
                                 "is required (64 lower-case hex digits, with user_data_bytes) "
                                 "when user_data is absent");
            return NULL;
        }
        g_clear_pointer(&cloud_init->user_data, g_free);
        g_free(cloud_init->user_data_sha256);
        cloud_init->user_data_sha256 = g_steal_pointer(&sha256);
        cloud_init->user_data_bytes = bytes;
    }
    if (!api_cloud_init_validate(cloud_init, error))
        return NULL;
    return g_steal_pointer(&cloud_init);
}

json_object *api_cloud_init_to_json(const ApiCloudInit *cloud_init, gboolean with_user_data)
{
    json_object *root = json_object_new_object();
    if (with_user_data && cloud_init->user_data) {
        json_object_object_add(root, "user_data", json_object_new_string(cloud_init->user_data));
    } else {
        json_object_object_add(root, "user_data_sha256",
                               json_object_new_string(cloud_init->user_data_sha256));
        json_object_object_add(root, "user_data_bytes",
                               json_object_new_int64(cloud_init->user_data_bytes));
    }
    json_object_object_add(root, "meta_data", json_object_get(cloud_init->meta_data));
    json_object *keys = json_object_new_array();
    for (guint i = 0; i < cloud_init->ssh_authorized_keys->len; i++)
        json_object_array_add(
            keys, json_object_new_string(g_ptr_array_index(cloud_init->ssh_authorized_keys, i)));
    json_object_object_add(root, "ssh_authorized_keys", keys);
    return root;
}
