#include "daemon/config.h"

#include <errno.h>
#include <grp.h>
#include <unistd.h>

#include "api/network.h"
#include "daemon/error.h"
#include "hvcore/network.h"

#define GROUP "turtled"

static const char *const string_keys[] = {"state_dir",   "socket",      "listen",  "tls_cert",
                                          "tls_key",     "libvirt_uri", "backend", "network_pool",
                                          "admin_group", NULL};

Config *config_new_defaults(void)
{
    Config *config = g_new0(Config, 1);

    config->state_dir = g_strdup(CONFIG_DEFAULT_STATE_DIR);
    config->socket = g_strdup(CONFIG_DEFAULT_SOCKET);
    config->backend = g_strdup("auto");
    config->workers = CONFIG_DEFAULT_WORKERS;
    config->stop_timeout = CONFIG_DEFAULT_STOP_TIMEOUT;
    config->network_pool = g_strdup(CONFIG_DEFAULT_NETWORK_POOL);
    config->admin_group = g_strdup(CONFIG_DEFAULT_ADMIN_GROUP);
    config->network_prefix = CONFIG_DEFAULT_NETWORK_PREFIX;
    config->http_threads = CONFIG_DEFAULT_HTTP_THREADS;
    config->max_connections = CONFIG_DEFAULT_MAX_CONNECTIONS;
    config->connection_reserve = CONFIG_DEFAULT_CONNECTION_RESERVE;
    config->connections_per_address = CONFIG_DEFAULT_CONNECTIONS_PER_ADDRESS;
    config->streams_per_tenant = CONFIG_DEFAULT_STREAMS_PER_TENANT;
    config->streams_per_token = CONFIG_DEFAULT_STREAMS_PER_TOKEN;
    config->header_timeout = CONFIG_DEFAULT_HEADER_TIMEOUT;
    config->body_timeout = CONFIG_DEFAULT_BODY_TIMEOUT;
    config->idle_timeout = CONFIG_DEFAULT_IDLE_TIMEOUT;
    config->event_ring = CONFIG_DEFAULT_EVENT_RING;
    config->pending_images = CONFIG_DEFAULT_PENDING_IMAGES;
    return config;
}

void config_free(Config *config)
{
    if (config == NULL)
        return;
    g_free(config->state_dir);
    g_free(config->socket);
    g_free(config->listen);
    g_free(config->tls_cert);
    g_free(config->tls_key);
    g_free(config->libvirt_uri);
    g_free(config->backend);
    g_free(config->network_pool);
    g_free(config->admin_group);
    g_free(config);
}

/* Integer keys with their bounds, checked when the file is read. */
static const struct {
    const char *key;
    gsize offset;
    int min, max;
    const char *unit;
} int_keys[] = {
    {"workers", G_STRUCT_OFFSET(Config, workers), 1, 64, ""},
    {"stop_timeout", G_STRUCT_OFFSET(Config, stop_timeout), 1, 3600, " seconds"},
    {"network_prefix", G_STRUCT_OFFSET(Config, network_prefix), 0, 32, ""},
    {"http_threads", G_STRUCT_OFFSET(Config, http_threads), 1, 64, ""},
    {"max_connections", G_STRUCT_OFFSET(Config, max_connections), 16, 1000000, ""},
    {"connection_reserve", G_STRUCT_OFFSET(Config, connection_reserve), 0, 1000000, ""},
    {"connections_per_address", G_STRUCT_OFFSET(Config, connections_per_address), 1, 1000000, ""},
    {"streams_per_tenant", G_STRUCT_OFFSET(Config, streams_per_tenant), 1, 100000, ""},
    {"streams_per_token", G_STRUCT_OFFSET(Config, streams_per_token), 1, 100000, ""},
    {"header_timeout", G_STRUCT_OFFSET(Config, header_timeout), 1, 3600, " seconds"},
    {"body_timeout", G_STRUCT_OFFSET(Config, body_timeout), 1, 3600, " seconds"},
    {"idle_timeout", G_STRUCT_OFFSET(Config, idle_timeout), 1, 86400, " seconds"},
    {"event_ring", G_STRUCT_OFFSET(Config, event_ring), 100, 10000000, ""},
    {"pending_images", G_STRUCT_OFFSET(Config, pending_images), 1, 10000, ""},
};

static gboolean is_int_key(const char *key)
{
    for (gsize i = 0; i < G_N_ELEMENTS(int_keys); i++)
        if (g_str_equal(key, int_keys[i].key))
            return TRUE;
    return FALSE;
}

static char **string_field(Config *config, const char *key)
{
    char **fields[] = {&config->state_dir, &config->socket,       &config->listen,
                       &config->tls_cert,  &config->tls_key,      &config->libvirt_uri,
                       &config->backend,   &config->network_pool, &config->admin_group};
    for (gsize i = 0; string_keys[i] != NULL; i++)
        if (g_str_equal(key, string_keys[i]))
            return fields[i];
    return NULL;
}

static gboolean check_keys(GKeyFile *file, const char *path, GError **error)
{
    g_auto(GStrv) groups = g_key_file_get_groups(file, NULL);
    for (char **group = groups; *group != NULL; group++) {
        if (!g_str_equal(*group, GROUP)) {
            g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "%s: unknown group [%s]", path,
                        *group);
            return FALSE;
        }
    }
    g_auto(GStrv) keys = g_key_file_get_keys(file, GROUP, NULL, NULL);
    for (char **key = keys; keys != NULL && *key != NULL; key++) {
        if (!is_int_key(*key) && !g_strv_contains(string_keys, *key)) {
            g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "%s: unknown key '%s'", path, *key);
            return FALSE;
        }
    }
    return TRUE;
}

gboolean config_load_file(Config *config, const char *path, gboolean required, GError **error)
{
    g_autoptr(GKeyFile) file = g_key_file_new();
    g_autoptr(GError) local = NULL;

    if (!g_key_file_load_from_file(file, path, G_KEY_FILE_NONE, &local)) {
        if (!required && g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return TRUE;
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "%s: %s", path, local->message);
        return FALSE;
    }
    if (!check_keys(file, path, error))
        return FALSE;
    for (gsize i = 0; string_keys[i] != NULL; i++) {
        char *value = g_key_file_get_string(file, GROUP, string_keys[i], NULL);
        if (value != NULL) {
            char **field = string_field(config, string_keys[i]);
            g_free(*field);
            *field = value;
        }
    }
    for (gsize i = 0; i < G_N_ELEMENTS(int_keys); i++) {
        if (!g_key_file_has_key(file, GROUP, int_keys[i].key, NULL))
            continue;
        int value = g_key_file_get_integer(file, GROUP, int_keys[i].key, &local);
        if (local != NULL) {
            g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "%s: %s: %s", path, int_keys[i].key,
                        local->message);
            return FALSE;
        }
        if (value < int_keys[i].min || value > int_keys[i].max) {
            g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                        "%s: %s: must be between %d and %d%s, not %d", path, int_keys[i].key,
                        int_keys[i].min, int_keys[i].max, int_keys[i].unit, value);
            return FALSE;
        }
        *(int *)G_STRUCT_MEMBER_P(config, int_keys[i].offset) = value;
    }
    return TRUE;
}

/* A numeric gid, else a group name as useradd/groupadd accept it. */
static gboolean parse_gid(const char *text, gid_t *gid)
{
    guint64 value = 0;
    if (!g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT32 - 1, &value, NULL))
        return FALSE;
    *gid = (gid_t)value;
    return TRUE;
}

static gboolean check_admin_group(const char *group, GError **error)
{
    gid_t gid;
    if (group != NULL && parse_gid(group, &gid))
        return TRUE;
    if (group != NULL && g_regex_match_simple("^[A-Za-z_][A-Za-z0-9_.-]{0,30}[$]?$", group, 0, 0))
        return TRUE;
    g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                "admin_group: must be a group name (letters, digits, '_', '.', '-', at most "
                "32 characters) or a numeric gid, not '%s'",
                group != NULL ? group : "");
    return FALSE;
}

gint64 config_admin_gid(const Config *config)
{
    gid_t gid;
    if (parse_gid(config->admin_group, &gid))
        return gid;

    struct group entry, *found = NULL;
    long size = sysconf(_SC_GETGR_R_SIZE_MAX);
    g_autofree char *buf = NULL;
    int rc;
    /* A group with many members needs more than sysconf's guess. */
    for (gsize len = size > 0 ? (gsize)size : 4096;; len *= 2) {
        g_free(buf);
        buf = g_malloc(len);
        rc = getgrnam_r(config->admin_group, &entry, buf, len, &found);
        if (rc != ERANGE || len > 16 * 1024 * 1024)
            break;
    }
    if (found == NULL) {
        g_message("admin group '%s' %s: only root is the operator on the socket",
                  config->admin_group, rc == 0 ? "does not exist" : g_strerror(rc));
        return -1;
    }
    return found->gr_gid;
}

gboolean config_validate(const Config *config, GError **error)
{
    static const char *const backends[] = {"auto", "kvm", "tcg", "test", NULL};

    if (!g_strv_contains(backends, config->backend)) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "backend: must be auto, kvm, tcg or test, not '%s'", config->backend);
        return FALSE;
    }
    if (config->workers < 1 || config->workers > 64) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "workers: must be between 1 and 64");
        return FALSE;
    }
    if (config->connection_reserve >= config->max_connections) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "connection_reserve: must be below max_connections (%d)",
                    config->max_connections);
        return FALSE;
    }
    if (config->streams_per_token > config->streams_per_tenant) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "streams_per_token: must not exceed streams_per_tenant (%d)",
                    config->streams_per_tenant);
        return FALSE;
    }
    if ((config->tls_cert == NULL) != (config->tls_key == NULL)) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "tls_cert and tls_key: give both or neither");
        return FALSE;
    }
    if (!g_path_is_absolute(config->state_dir) || !g_path_is_absolute(config->socket)) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "state_dir and socket: must be absolute paths");
        return FALSE;
    }
    if (config->stop_timeout < 1 || config->stop_timeout > 3600) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "stop_timeout: must be between 1 and 3600 seconds");
        return FALSE;
    }
    guint32 pool = 0;
    guint pool_prefix = 0;
    g_autoptr(GError) local = NULL;
    if (!hv_ipv4_cidr_parse(config->network_pool, &pool, &pool_prefix, &local)) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "network_pool: %s", local->message);
        return FALSE;
    }
    if (config->network_prefix < (int)MAX(pool_prefix, API_NETWORK_PREFIX_MIN) ||
        config->network_prefix > API_NETWORK_PREFIX_MAX) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "network_prefix: must be between %u (the pool's) and %d",
                    MAX(pool_prefix, API_NETWORK_PREFIX_MIN), API_NETWORK_PREFIX_MAX);
        return FALSE;
    }
    if (!check_admin_group(config->admin_group, error))
        return FALSE;
    if (config->libvirt_uri != NULL && config->libvirt_uri[0] == '\0') {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "libvirt_uri: must not be empty");
        return FALSE;
    }
    return TRUE;
}

const char *config_libvirt_uri(const Config *config)
{
    if (config->libvirt_uri != NULL)
        return config->libvirt_uri;
    /* The test backend builds domains only test:///default accepts. */
    return g_str_equal(config->backend, "test") ? CONFIG_TEST_LIBVIRT : CONFIG_DEFAULT_LIBVIRT;
}
