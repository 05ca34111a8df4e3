#include "cli/remotes.h"

#include <string.h>

#include "cli/ctl.h"

#define GROUP_SETTINGS "turtlectl"
#define REMOTE_PREFIX  "remote \""

static const char *const settings_keys[] = {"default-remote", NULL};
static const char *const remote_keys[] = {"url", "socket", "token", NULL};

void remote_free(Remote *remote)
{
    if (remote == NULL)
        return;
    g_free(remote->name);
    g_free(remote->url);
    g_free(remote->socket);
    if (remote->token != NULL)
        memset(remote->token, 0, strlen(remote->token));
    g_free(remote->token);
    g_free(remote->file);
    g_free(remote);
}

GStrv remotes_default_files(void)
{
    g_autoptr(GStrvBuilder) files = g_strv_builder_new();
    g_autofree char *user =
        g_build_filename(g_get_user_config_dir(), "turtles", "config.ini", NULL);
    g_strv_builder_add(files, user);
    g_strv_builder_add(files, REMOTES_SYSTEM_FILE);
    return g_strv_builder_end(files);
}

/* `remote "NAME"` -> NAME (new), or NULL for any other group. */
static char *remote_group_name(const char *group)
{
    gsize len = strlen(group);
    if (!g_str_has_prefix(group, REMOTE_PREFIX) || len < strlen(REMOTE_PREFIX) + 2 ||
        group[len - 1] != '"')
        return NULL;
    return g_strndup(group + strlen(REMOTE_PREFIX), len - strlen(REMOTE_PREFIX) - 1);
}

static gboolean check_keys(GKeyFile *keys, const char *file, const char *group,
                           const char *const *allowed, GError **error)
{
    g_auto(GStrv) names = g_key_file_get_keys(keys, group, NULL, NULL);
    for (guint i = 0; names != NULL && names[i] != NULL; i++) {
        if (!g_strv_contains(allowed, names[i])) {
            g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG, "%s: [%s]: unknown key '%s'", file,
                        group, names[i]);
            return FALSE;
        }
    }
    return TRUE;
}

/* Loads @file and checks its groups and keys; NULL (no error) when missing. */
static GKeyFile *load(const char *file, GError **error)
{
    g_autoptr(GKeyFile) keys = g_key_file_new();
    g_autoptr(GError) local = NULL;

    if (!g_key_file_load_from_file(keys, file, G_KEY_FILE_NONE, &local)) {
        if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return NULL;
        g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG, "%s: %s", file, local->message);
        return NULL;
    }
    g_auto(GStrv) groups = g_key_file_get_groups(keys, NULL);
    for (guint i = 0; groups[i] != NULL; i++) {
        g_autofree char *name = remote_group_name(groups[i]);
        if (strcmp(groups[i], GROUP_SETTINGS) == 0) {
            if (!check_keys(keys, file, groups[i], settings_keys, error))
                return NULL;
        } else if (name != NULL) {
            if (!check_keys(keys, file, groups[i], remote_keys, error))
                return NULL;
        } else {
            g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG,
                        "%s: unknown group [%s] (expected [%s] or [remote \"NAME\"])", file,
                        groups[i], GROUP_SETTINGS);
            return NULL;
        }
    }
    return g_steal_pointer(&keys);
}

static char *get_value(GKeyFile *keys, const char *group, const char *key)
{
    g_autofree char *value = g_key_file_get_string(keys, group, key, NULL);
    if (value != NULL)
        g_strstrip(value);
    return value != NULL && *value != '\0' ? g_steal_pointer(&value) : NULL;
}

static Remote *read_remote(GKeyFile *keys, const char *file, const char *name, GError **error)
{
    g_autofree char *group = g_strdup_printf(REMOTE_PREFIX "%s\"", name);
    g_autoptr(Remote) remote = g_new0(Remote, 1);

    remote->name = g_strdup(name);
    remote->file = g_strdup(file);
    remote->url = get_value(keys, group, "url");
    remote->socket = get_value(keys, group, "socket");
    remote->token = get_value(keys, group, "token");
    if ((remote->url == NULL) == (remote->socket == NULL)) {
        g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG,
                    "%s: remote '%s' needs either url or socket (exactly one)", file, name);
        return NULL;
    }
    if (remote->url != NULL && !g_str_has_prefix(remote->url, "http://") &&
        !g_str_has_prefix(remote->url, "https://")) {
        g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG,
                    "%s: remote '%s': url must start with http:// or https://", file, name);
        return NULL;
    }
    return g_steal_pointer(&remote);
}

gboolean remotes_lookup(const char *const *files, const char *name, Remote **out, GError **error)
{
    g_autoptr(GPtrArray) loaded = g_ptr_array_new_with_free_func((GDestroyNotify)g_key_file_unref);
    g_autoptr(GPtrArray) paths = g_ptr_array_new();
    g_autofree char *wanted = g_strdup(name);
    const char *default_from = NULL;

    *out = NULL;
    for (guint i = 0; files[i] != NULL; i++) {
        g_autoptr(GError) local = NULL;
        GKeyFile *keys = load(files[i], &local);
        if (local != NULL) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        if (keys == NULL)
            continue;
        g_ptr_array_add(loaded, keys);
        g_ptr_array_add(paths, (gpointer)files[i]);
        if (wanted == NULL) {
            wanted = get_value(keys, GROUP_SETTINGS, "default-remote");
            default_from = files[i];
        }
    }
    if (wanted == NULL)
        return TRUE;

    g_autofree char *group = g_strdup_printf(REMOTE_PREFIX "%s\"", wanted);
    for (guint i = 0; i < loaded->len; i++) {
        GKeyFile *keys = g_ptr_array_index(loaded, i);
        if (g_key_file_has_group(keys, group)) {
            *out = read_remote(keys, g_ptr_array_index(paths, i), wanted, error);
            return *out != NULL;
        }
    }
    g_autofree char *tried = g_strjoinv(" or ", (char **)files);
    if (name == NULL)
        g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG,
                    "%s: default-remote '%s' is not defined in %s", default_from, wanted, tried);
    else
        g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG, "no remote '%s' in %s", wanted, tried);
    return FALSE;
}
