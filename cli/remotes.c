#include "cli/remotes.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "cli/ctl.h"

#define GROUP_SETTINGS "turtlectl"
#define REMOTE_PREFIX  "remote \""
#define KEY_DEFAULT    "default-remote"
/* Far above any config file: a runaway file must not eat our memory. */
#define CONFIG_MAX   (1024 * 1024)
#define TOKEN_MAX    4096
#define NAME_MAX_LEN 63

static const char *const settings_keys[] = {KEY_DEFAULT, NULL};
static const char *const remote_keys[] = {"url", "socket", "token", "cacert", NULL};

void remote_free(Remote *remote)
{
    if (remote == NULL)
        return;
    g_free(remote->name);
    g_free(remote->url);
    g_free(remote->socket);
    if (remote->token != NULL)
        explicit_bzero(remote->token, strlen(remote->token));
    g_free(remote->token);
    g_free(remote->cacert);
    g_free(remote->file);
    g_free(remote);
}

char *remotes_user_file(void)
{
    return g_build_filename(g_get_user_config_dir(), "turtles", "config.ini", NULL);
}

GStrv remotes_default_files(void)
{
    g_autoptr(GStrvBuilder) files = g_strv_builder_new();
    g_autofree char *user = remotes_user_file();
    g_strv_builder_add(files, user);
    g_strv_builder_add(files, REMOTES_SYSTEM_FILE);
    return g_strv_builder_end(files);
}

gboolean remotes_name_valid(const char *name)
{
    gsize len = strlen(name);
    if (len == 0 || len > NAME_MAX_LEN || !g_ascii_isalnum(name[0]))
        return FALSE;
    for (gsize i = 0; i < len; i++) {
        if (!g_ascii_isalnum(name[i]) && strchr("-_.", name[i]) == NULL)
            return FALSE;
    }
    return TRUE;
}

gboolean remotes_token_valid(const char *token)
{
    gsize len = strlen(token);
    if (len == 0 || len > TOKEN_MAX)
        return FALSE;
    for (gsize i = 0; i < len; i++) {
        if (token[i] <= ' ' || token[i] > '~')
            return FALSE;
    }
    return TRUE;
}

static char *group_of(const char *name)
{
    return g_strdup_printf(REMOTE_PREFIX "%s\"", name);
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

static gboolean check_groups(GKeyFile *keys, const char *file, GError **error)
{
    g_auto(GStrv) groups = g_key_file_get_groups(keys, NULL);
    for (guint i = 0; groups[i] != NULL; i++) {
        g_autofree char *name = remote_group_name(groups[i]);
        if (strcmp(groups[i], GROUP_SETTINGS) == 0) {
            if (!check_keys(keys, file, groups[i], settings_keys, error))
                return FALSE;
        } else if (name != NULL) {
            if (!remotes_name_valid(name)) {
                g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG,
                            "%s: [%s]: a remote's name is " REMOTES_NAME_RULE, file, groups[i]);
                return FALSE;
            }
            if (!check_keys(keys, file, groups[i], remote_keys, error))
                return FALSE;
        } else {
            g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG,
                        "%s: unknown group [%s] (expected [%s] or [remote \"NAME\"])", file,
                        groups[i], GROUP_SETTINGS);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean holds_token(GKeyFile *keys)
{
    g_auto(GStrv) groups = g_key_file_get_groups(keys, NULL);
    for (guint i = 0; groups[i] != NULL; i++) {
        if (g_key_file_has_key(keys, groups[i], "token", NULL))
            return TRUE;
    }
    return FALSE;
}

static const char *access_word(mode_t mode)
{
    if (mode & 044)
        return "readable";
    return mode & 022 ? "writable" : "accessible";
}

/* A file holding a token must be its owner's alone (see remotes.h). */
static gboolean check_private(const char *file, const struct stat *st, GError **error)
{
    mode_t mode = st->st_mode & 07777;

    if (strcmp(file, REMOTES_SYSTEM_FILE) == 0) {
        if (st->st_uid != 0) {
            g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG,
                        "%s holds a token and is owned by uid %u, not root: chown root %s", file,
                        (unsigned)st->st_uid, file);
            return FALSE;
        }
        if (mode & 027) {
            g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG,
                        "%s holds a token and is %s by others (mode %04o): chmod 600 %s (or 640 "
                        "for a group of operators)",
                        file, access_word(mode & 027), (unsigned)mode, file);
            return FALSE;
        }
        return TRUE;
    }
    uid_t me = getuid();
    if (st->st_uid != me && st->st_uid != 0) {
        g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG,
                    "%s holds a token and is owned by uid %u, not by you (uid %u): chown %u %s",
                    file, (unsigned)st->st_uid, (unsigned)me, (unsigned)me, file);
        return FALSE;
    }
    if (mode & 077) {
        g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG,
                    "%s holds a token and is %s by others (mode %04o): chmod 600 %s", file,
                    access_word(mode & 077), (unsigned)mode, file);
        return FALSE;
    }
    return TRUE;
}

/* Reads @file through one descriptor, so that what was read is what
 * fstat() judged.  FALSE without an error when it does not exist. */
static gboolean read_config(const char *file, GString *contents, struct stat *st, GError **error)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int saved = errno;
        if (saved != ENOENT)
            g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG, "%s: %s", file, g_strerror(saved));
        return FALSE;
    }
    gboolean ok = fstat(fd, st) == 0;
    if (!ok)
        g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG, "%s: %s", file, g_strerror(errno));
    else if (!S_ISREG(st->st_mode)) {
        g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG, "%s: not a regular file", file);
        ok = FALSE;
    }
    char buf[4096];
    while (ok) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG, "%s: %s", file, g_strerror(errno));
            ok = FALSE;
        } else if (n == 0) {
            break;
        } else if (contents->len + (gsize)n > CONFIG_MAX) {
            g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG, "%s: larger than %d KiB", file,
                        CONFIG_MAX / 1024);
            ok = FALSE;
        } else {
            g_string_append_len(contents, buf, n);
        }
    }
    explicit_bzero(buf, sizeof(buf));
    close(fd);
    return ok;
}

/* Loads @file and checks its groups, keys and (when it holds a token) its
 * owner and mode; NULL (no error) when missing. */
static GKeyFile *load(const char *file, GKeyFileFlags flags, GError **error)
{
    g_autoptr(GString) contents = g_string_new(NULL);
    g_autoptr(GKeyFile) keys = g_key_file_new();
    g_autoptr(GError) local = NULL;
    struct stat st;

    gboolean read = read_config(file, contents, &st, error);
    gboolean parsed =
        read && g_key_file_load_from_data(keys, contents->str, contents->len, flags, &local);
    explicit_bzero(contents->str, contents->len);
    if (!read)
        return NULL;
    if (!parsed) {
        g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG, "%s: %s", file, local->message);
        return NULL;
    }
    if (!check_groups(keys, file, error))
        return NULL;
    if (holds_token(keys) && !check_private(file, &st, error))
        return NULL;
    return g_steal_pointer(&keys);
}

static char *get_value(GKeyFile *keys, const char *group, const char *key)
{
    g_autofree char *value = g_key_file_get_string(keys, group, key, NULL);
    if (value != NULL)
        g_strstrip(value);
    return value != NULL && *value != '\0' ? g_steal_pointer(&value) : NULL;
}

static gboolean remote_error(GError **error, const char *file, const char *name,
                             const char *message)
{
    g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG, "%s: remote '%s': %s", file, name, message);
    return FALSE;
}

static gboolean check_remote(const Remote *remote, GError **error)
{
    const char *file = remote->file;
    const char *name = remote->name;
    if ((remote->url == NULL) == (remote->socket == NULL)) {
        g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG,
                    "%s: remote '%s' needs either url or socket (exactly one)", file, name);
        return FALSE;
    }
    if (remote->url != NULL && !g_str_has_prefix(remote->url, "http://") &&
        !g_str_has_prefix(remote->url, "https://"))
        return remote_error(error, file, name, "url must start with http:// or https://");
    if (remote->token != NULL && !remotes_token_valid(remote->token))
        return remote_error(error, file, name,
                            "token must be 1 to 4096 printable characters without spaces");
    if (remote->cacert != NULL &&
        (remote->url == NULL || !g_str_has_prefix(remote->url, "https://")))
        return remote_error(error, file, name, "cacert is only for an https:// url");
    if (remote->cacert != NULL && !g_path_is_absolute(remote->cacert))
        return remote_error(error, file, name, "cacert must be an absolute path");
    return TRUE;
}

static Remote *read_remote(GKeyFile *keys, const char *file, const char *name, GError **error)
{
    g_autofree char *group = group_of(name);
    g_autoptr(Remote) remote = g_new0(Remote, 1);

    remote->name = g_strdup(name);
    remote->file = g_strdup(file);
    remote->url = get_value(keys, group, "url");
    remote->socket = get_value(keys, group, "socket");
    remote->token = get_value(keys, group, "token");
    remote->cacert = get_value(keys, group, "cacert");
    if (!check_remote(remote, error))
        return NULL;
    return g_steal_pointer(&remote);
}

/* The files of @files that exist, loaded (KeyFiles, and their paths). */
static gboolean load_all(const char *const *files, GPtrArray *loaded, GPtrArray *paths,
                         GError **error)
{
    for (guint i = 0; files[i] != NULL; i++) {
        g_autoptr(GError) local = NULL;
        GKeyFile *keys = load(files[i], G_KEY_FILE_NONE, &local);
        if (local != NULL) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        if (keys == NULL)
            continue;
        g_ptr_array_add(loaded, keys);
        g_ptr_array_add(paths, (gpointer)files[i]);
    }
    return TRUE;
}

/* The first default-remote of @loaded, and the file that names it. */
static char *first_default(GPtrArray *loaded, GPtrArray *paths, const char **from)
{
    for (guint i = 0; i < loaded->len; i++) {
        char *name = get_value(g_ptr_array_index(loaded, i), GROUP_SETTINGS, KEY_DEFAULT);
        if (name != NULL) {
            *from = g_ptr_array_index(paths, i);
            return name;
        }
    }
    return NULL;
}

gboolean remotes_lookup(const char *const *files, const char *name, Remote **out, GError **error)
{
    g_autoptr(GPtrArray) loaded = g_ptr_array_new_with_free_func((GDestroyNotify)g_key_file_unref);
    g_autoptr(GPtrArray) paths = g_ptr_array_new();
    const char *default_from = NULL;

    *out = NULL;
    if (!load_all(files, loaded, paths, error))
        return FALSE;
    g_autofree char *wanted =
        name != NULL ? g_strdup(name) : first_default(loaded, paths, &default_from);
    if (wanted == NULL)
        return TRUE;

    g_autofree char *group = group_of(wanted);
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

gboolean remotes_list(const char *const *files, GPtrArray **remotes, char **default_name,
                      GError **error)
{
    g_autoptr(GPtrArray) loaded = g_ptr_array_new_with_free_func((GDestroyNotify)g_key_file_unref);
    g_autoptr(GPtrArray) paths = g_ptr_array_new();
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func((GDestroyNotify)remote_free);
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    const char *default_from = NULL;

    if (!load_all(files, loaded, paths, error))
        return FALSE;
    for (guint i = 0; i < loaded->len; i++) {
        GKeyFile *keys = g_ptr_array_index(loaded, i);
        g_auto(GStrv) groups = g_key_file_get_groups(keys, NULL);
        for (guint j = 0; groups[j] != NULL; j++) {
            g_autofree char *name = remote_group_name(groups[j]);
            if (name == NULL || g_hash_table_contains(seen, name))
                continue;
            Remote *remote = read_remote(keys, g_ptr_array_index(paths, i), name, error);
            if (remote == NULL)
                return FALSE;
            g_ptr_array_add(found, remote);
            g_hash_table_add(seen, g_steal_pointer(&name));
        }
    }
    *default_name = first_default(loaded, paths, &default_from);
    *remotes = g_steal_pointer(&found);
    return TRUE;
}

/* ---- writing the user's file ------------------------------------------------------ */

/* The user's file with its comments, or an empty one when it is missing. */
static GKeyFile *load_for_writing(const char *file, GError **error)
{
    g_autoptr(GError) local = NULL;
    GKeyFile *keys = load(file, G_KEY_FILE_KEEP_COMMENTS | G_KEY_FILE_KEEP_TRANSLATIONS, &local);
    if (local != NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    return keys != NULL ? keys : g_key_file_new();
}

/* Replaces @file at once (a temporary file of mode 0600 in its directory,
 * fsync, rename): a crash leaves the old file or the new, and the token
 * is never readable by others, not even for a moment. */
static gboolean save(const char *file, GKeyFile *keys, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(file);
    if (g_mkdir_with_parents(dir, 0700) != 0) {
        g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG, "cannot create %s: %s", dir,
                    g_strerror(errno));
        return FALSE;
    }
    gsize len = 0;
    g_autofree char *data = g_key_file_to_data(keys, &len, NULL);
    g_autoptr(GError) local = NULL;
    gboolean ok = g_file_set_contents_full(file, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT,
                                           0600, &local);
    explicit_bzero(data, len);
    if (!ok)
        g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG, "cannot write %s: %s", file,
                    local->message);
    return ok;
}

static void set_optional(GKeyFile *keys, const char *group, const char *key, const char *value)
{
    if (value != NULL)
        g_key_file_set_string(keys, group, key, value);
}

gboolean remotes_add(const char *file, const Remote *remote, gboolean make_default, GError **error)
{
    g_autoptr(GKeyFile) keys = load_for_writing(file, error);
    if (keys == NULL)
        return FALSE;
    g_autofree char *group = group_of(remote->name);
    if (g_key_file_has_group(keys, group)) {
        g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG, "remote '%s' already exists in %s",
                    remote->name, file);
        return FALSE;
    }
    set_optional(keys, group, "url", remote->url);
    set_optional(keys, group, "socket", remote->socket);
    set_optional(keys, group, "token", remote->token);
    set_optional(keys, group, "cacert", remote->cacert);
    if (make_default)
        g_key_file_set_string(keys, GROUP_SETTINGS, KEY_DEFAULT, remote->name);
    return save(file, keys, error);
}

gboolean remotes_remove(const char *file, const char *name, GError **error)
{
    g_autoptr(GKeyFile) keys = load_for_writing(file, error);
    if (keys == NULL)
        return FALSE;
    g_autofree char *group = group_of(name);
    if (!g_key_file_remove_group(keys, group, NULL)) {
        g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG, "no remote '%s' in %s", name, file);
        return FALSE;
    }
    /* A default that names nothing would break every command after this one. */
    g_autofree char *current = get_value(keys, GROUP_SETTINGS, KEY_DEFAULT);
    if (g_strcmp0(current, name) == 0)
        g_key_file_remove_key(keys, GROUP_SETTINGS, KEY_DEFAULT, NULL);
    g_auto(GStrv) left = g_key_file_get_keys(keys, GROUP_SETTINGS, NULL, NULL);
    if (left != NULL && left[0] == NULL)
        g_key_file_remove_group(keys, GROUP_SETTINGS, NULL);
    return save(file, keys, error);
}

gboolean remotes_set_default(const char *file, const char *name, GError **error)
{
    g_autoptr(GKeyFile) keys = load_for_writing(file, error);
    if (keys == NULL)
        return FALSE;
    g_key_file_set_string(keys, GROUP_SETTINGS, KEY_DEFAULT, name);
    return save(file, keys, error);
}
