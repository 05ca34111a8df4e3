/* remote add | list | show | remove | switch: the named remotes of
 * turtlectl's config files (cli/remotes.h).  Nothing here connects: these
 * verbs read the files and write the user's. */
#include "cli/commands.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "cli/remotes.h"

static const char *const name_names[] = {"NAME", NULL};

/* Connection options make no sense here; --token least of all for add (a
 * token on the command line lands in the shell's history and in ps).
 * Returns -1 when none was given, else the exit status of the refusal. */
static int refuse_connection_options(Ctl *ctl, const char *verb)
{
    const CtlGlobals *g = &ctl->globals;
    const char *given = g->remote != NULL   ? "--remote"
                        : g->socket != NULL ? "--socket"
                        : g->url != NULL    ? "--url"
                        : g->cacert != NULL ? "--cacert"
                        : g->token != NULL  ? "--token"
                                            : NULL;
    if (given == NULL)
        return -1;
    if (strcmp(given, "--token") == 0 && strcmp(verb, "add") == 0)
        return ctl_usage_error(ctl, "remote add: --token is not stored: a token on the command "
                                    "line lands in the shell's history and in ps; give it with "
                                    "--token-file FILE or --token-stdin");
    return ctl_usage_error(ctl,
                           "remote %s: %s does not apply here (the remote verbs read and write "
                           "the config file; they connect to nothing)",
                           verb, given);
}

/* Parses a remote verb's arguments; FALSE with the exit status in *status. */
static gboolean parse(Ctl *ctl, const char *verb, int argc, char **argv, const ArgSpec *specs,
                      const char *const *names, GPtrArray **positional, int *status)
{
    if (!cmd_parse(ctl, verb, argc, argv, specs, names, positional, status))
        return FALSE;
    int refused = refuse_connection_options(ctl, verb);
    if (refused >= 0) {
        *status = refused;
        return FALSE;
    }
    return TRUE;
}

/* The remotes of the config files, or FALSE after printing the error. */
static gboolean list_remotes(Ctl *ctl, GPtrArray **remotes, char **default_name, int *status)
{
    g_autoptr(GError) error = NULL;
    g_auto(GStrv) files = remotes_default_files();
    if (remotes_list((const char *const *)files, remotes, default_name, &error))
        return TRUE;
    *status = ctl_fail(ctl, error);
    return FALSE;
}

static const Remote *find_remote(GPtrArray *remotes, const char *name)
{
    for (guint i = 0; i < remotes->len; i++) {
        const Remote *remote = g_ptr_array_index(remotes, i);
        if (strcmp(remote->name, name) == 0)
            return remote;
    }
    return NULL;
}

static int no_such_remote(Ctl *ctl, const char *name)
{
    g_autoptr(GError) error = g_error_new(
        CTL_ERROR, CTL_ERROR_CONFIG, "no remote '%s' (turtlectl remote list shows them)", name);
    return ctl_fail(ctl, error);
}

/* The remote NAME of a verb that takes only NAME (show, remove, switch),
 * with the list it is in (*remotes, *default_name); NULL after printing
 * what is wrong, the exit status in *status. */
static const Remote *named_remote(Ctl *ctl, const char *verb, int argc, char **argv,
                                  GPtrArray **remotes, char **default_name, int *status)
{
    g_autoptr(GPtrArray) args = NULL;

    if (!parse(ctl, verb, argc, argv, NULL, name_names, &args, status) ||
        !list_remotes(ctl, remotes, default_name, status))
        return NULL;
    const char *name = g_ptr_array_index(args, 0);
    const Remote *remote = find_remote(*remotes, name);
    if (remote == NULL)
        *status = no_such_remote(ctl, name);
    return remote;
}

static json_object *string_or_null(const char *value)
{
    return value != NULL ? json_object_new_string(value) : NULL;
}

/* A remote as json and yaml show it: whether it has a token, never the token. */
static json_object *remote_to_json(const Remote *remote, gboolean is_default)
{
    json_object *value = json_object_new_object();
    json_object_object_add(value, "name", json_object_new_string(remote->name));
    json_object_object_add(value, "url", string_or_null(remote->url));
    json_object_object_add(value, "socket", string_or_null(remote->socket));
    json_object_object_add(value, "token", json_object_new_boolean(remote->token != NULL));
    json_object_object_add(value, "cacert", string_or_null(remote->cacert));
    json_object_object_add(value, "default", json_object_new_boolean(is_default));
    json_object_object_add(value, "file", json_object_new_string(remote->file));
    return value;
}

static int print_remote(Ctl *ctl, const Remote *remote, gboolean is_default)
{
    g_autoptr(json_object) body = json_object_new_object();
    json_object_object_add(body, "remote", remote_to_json(remote, is_default));
    if (ctl_emit(ctl, body))
        return CTL_EXIT_OK;
    g_autoptr(OutputTable) table = output_table_new(NULL, 2);
    output_table_add(table, "name:", remote->name);
    if (remote->url != NULL)
        output_table_add(table, "url:", remote->url);
    else
        output_table_add(table, "socket:", remote->socket);
    output_table_add(table, "token:", remote->token != NULL ? "yes" : "no");
    output_table_add(table, "cacert:", remote->cacert);
    output_table_add(table, "default:", is_default ? "yes" : "no");
    output_table_add(table, "file:", remote->file);
    output_table_print(table, stdout);
    return CTL_EXIT_OK;
}

/* ---- add --------------------------------------------------------------------------- */

/* Reads a token from @in (a file or stdin), trimmed; NULL with a message
 * naming @option when it is unreadable or no token. */
static char *read_token(FILE *in, const char *option, GError **error)
{
    char buf[4096 + 3];
    size_t len = fread(buf, 1, sizeof(buf) - 1, in);
    if (ferror(in)) {
        g_set_error(error, CTL_ERROR, CTL_ERROR_USAGE, "%s: cannot read: %s", option,
                    g_strerror(errno));
        return NULL;
    }
    buf[len] = '\0';
    g_autofree char *token = g_strstrip(g_strdup(buf));
    explicit_bzero(buf, sizeof(buf));
    if (!remotes_token_valid(token)) {
        explicit_bzero(token, strlen(token));
        g_set_error(error, CTL_ERROR, CTL_ERROR_USAGE,
                    "%s: no token there (one line of 1 to 4096 printable characters without "
                    "spaces)",
                    option);
        return NULL;
    }
    return g_steal_pointer(&token);
}

static char *token_from(const char *file, gboolean from_stdin, GError **error)
{
    if (from_stdin)
        return read_token(stdin, "--token-stdin", error);
    FILE *in = fopen(file, "re");
    if (in == NULL) {
        g_set_error(error, CTL_ERROR, CTL_ERROR_USAGE, "--token-file: cannot read %s: %s", file,
                    g_strerror(errno));
        return NULL;
    }
    char *token = read_token(in, "--token-file", error);
    fclose(in);
    return token;
}

typedef struct {
    const char *url;
    const char *socket;
    const char *token_file;
    gboolean token_stdin;
    const char *cacert;
    gboolean make_default;
} AddFlags;

/* Checks the flags of `remote add NAME` and fills @remote from them. */
static gboolean remote_from_flags(const char *name, const AddFlags *flags, Remote *remote,
                                  GError **error)
{
    if (!remotes_name_valid(name))
        return args_usage_error(error, "NAME: a remote's name is " REMOTES_NAME_RULE " (not '%s')",
                                name);
    if ((flags->url == NULL) == (flags->socket == NULL))
        return args_usage_error(error, "%s", "give --url URL or --socket PATH (one of them)");
    if (flags->url != NULL && !g_str_has_prefix(flags->url, "http://") &&
        !g_str_has_prefix(flags->url, "https://"))
        return args_usage_error(error, "--url: must start with http:// or https:// (not '%s')",
                                flags->url);
    if (flags->token_file != NULL && flags->token_stdin)
        return args_usage_error(error, "%s", "--token-file and --token-stdin exclude each other");
    if (flags->cacert != NULL && (flags->url == NULL || !g_str_has_prefix(flags->url, "https://")))
        return args_usage_error(error, "%s", "--cacert: only for an https:// URL");
    remote->name = g_strdup(name);
    remote->url = g_strdup(flags->url);
    /* turtlectl runs from anywhere: paths are stored absolute. */
    if (flags->socket != NULL)
        remote->socket = g_canonicalize_filename(flags->socket, NULL);
    if (flags->cacert != NULL) {
        remote->cacert = g_canonicalize_filename(flags->cacert, NULL);
        g_autoptr(GError) unusable = NULL;
        if (!client_cacert_check(remote->cacert, &unusable))
            return args_usage_error(error, "--cacert: %s", unusable->message);
    }
    if (flags->token_file != NULL || flags->token_stdin) {
        remote->token = token_from(flags->token_file, flags->token_stdin, error);
        if (remote->token == NULL)
            return FALSE;
    }
    return TRUE;
}

static int remote_add(Ctl *ctl, int argc, char **argv)
{
    AddFlags flags = {0};
    const ArgSpec specs[] = {
        {"--url", ARG_STRING, 0, 0, &flags.url, NULL},
        {"--socket", ARG_STRING, 0, 0, &flags.socket, NULL},
        {"--token-file", ARG_STRING, 0, 0, &flags.token_file, NULL},
        {"--token-stdin", ARG_FLAG, 0, 0, &flags.token_stdin, NULL},
        {"--cacert", ARG_STRING, 0, 0, &flags.cacert, NULL},
        {"--default", ARG_FLAG, 0, 0, &flags.make_default, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(GError) error = NULL;
    int status = CTL_EXIT_OK;

    if (!parse(ctl, "add", argc, argv, specs, name_names, &args, &status))
        return status;
    const char *name = g_ptr_array_index(args, 0);
    g_autoptr(Remote) remote = g_new0(Remote, 1);
    if (!remote_from_flags(name, &flags, remote, &error)) {
        g_prefix_error(&error, "remote add: ");
        return ctl_fail(ctl, error);
    }
    g_autoptr(GPtrArray) remotes = NULL;
    g_autofree char *default_name = NULL;
    if (!list_remotes(ctl, &remotes, &default_name, &status))
        return status;
    const Remote *existing = find_remote(remotes, name);
    if (existing != NULL) {
        error = g_error_new(CTL_ERROR, CTL_ERROR_CONFIG,
                            "remote '%s' already exists in %s (turtlectl remote remove %s first)",
                            name, existing->file, name);
        return ctl_fail(ctl, error);
    }
    remote->file = remotes_user_file();
    if (!remotes_add(remote->file, remote, flags.make_default, &error))
        return ctl_fail(ctl, error);
    return print_remote(ctl, remote,
                        flags.make_default || g_strcmp0(default_name, remote->name) == 0);
}

/* ---- list, show -------------------------------------------------------------------- */

static int remote_list(Ctl *ctl, int argc, char **argv)
{
    static const char *const headers[] = {"NAME",    "URL/SOCKET", "TOKEN", "CACERT",
                                          "DEFAULT", "FILE",       NULL};
    g_autoptr(GPtrArray) remotes = NULL;
    g_autofree char *default_name = NULL;
    int status = CTL_EXIT_OK;

    if (!parse(ctl, "list", argc, argv, NULL, NULL, NULL, &status))
        return status;
    if (!list_remotes(ctl, &remotes, &default_name, &status))
        return status;
    g_autoptr(json_object) body = json_object_new_object();
    json_object *items = json_object_new_array();
    json_object_object_add(body, "remotes", items);
    for (guint i = 0; i < remotes->len; i++) {
        const Remote *remote = g_ptr_array_index(remotes, i);
        json_object_array_add(items,
                              remote_to_json(remote, g_strcmp0(default_name, remote->name) == 0));
    }
    if (ctl_emit(ctl, body))
        return CTL_EXIT_OK;
    g_autoptr(OutputTable) table = output_table_new(headers, 0);
    for (guint i = 0; i < remotes->len; i++) {
        const Remote *remote = g_ptr_array_index(remotes, i);
        output_table_add(table, remote->name, remote->url != NULL ? remote->url : remote->socket,
                         remote->token != NULL ? "yes" : "no", remote->cacert,
                         g_strcmp0(default_name, remote->name) == 0 ? "*" : "", remote->file);
    }
    output_table_print(table, stdout);
    return CTL_EXIT_OK;
}

static int remote_show(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(GPtrArray) remotes = NULL;
    g_autofree char *default_name = NULL;
    int status = CTL_EXIT_OK;

    const Remote *remote = named_remote(ctl, "show", argc, argv, &remotes, &default_name, &status);
    if (remote == NULL)
        return status;
    return print_remote(ctl, remote, g_strcmp0(default_name, remote->name) == 0);
}

/* ---- remove, switch ------------------------------------------------------------------ */

static int remote_remove(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(GPtrArray) remotes = NULL;
    g_autofree char *default_name = NULL;
    g_autoptr(GError) error = NULL;
    int status = CTL_EXIT_OK;

    const Remote *remote =
        named_remote(ctl, "remove", argc, argv, &remotes, &default_name, &status);
    if (remote == NULL)
        return status;
    const char *name = remote->name;
    g_autofree char *user_file = remotes_user_file();
    if (strcmp(remote->file, user_file) != 0) {
        error = g_error_new(CTL_ERROR, CTL_ERROR_CONFIG,
                            "remote '%s' is defined in %s, which turtlectl does not write: "
                            "remove it there (as its owner)",
                            name, remote->file);
        return ctl_fail(ctl, error);
    }
    if (!remotes_remove(user_file, name, &error))
        return ctl_fail(ctl, error);
    ctl_note(ctl, "removed remote %s from %s", name, user_file);
    return CTL_EXIT_OK;
}

static int remote_switch(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(GPtrArray) remotes = NULL;
    g_autofree char *default_name = NULL;
    g_autoptr(GError) error = NULL;
    int status = CTL_EXIT_OK;

    const Remote *remote =
        named_remote(ctl, "switch", argc, argv, &remotes, &default_name, &status);
    if (remote == NULL)
        return status;
    const char *name = remote->name;
    g_autofree char *user_file = remotes_user_file();
    if (!remotes_set_default(user_file, name, &error))
        return ctl_fail(ctl, error);
    ctl_note(ctl, "the default remote is now %s (in %s)", name, user_file);
    return CTL_EXIT_OK;
}

static const CmdVerb remote_verbs[] = {
    {"add", remote_add,
     "NAME --url URL [--token-file FILE | --token-stdin] [--cacert FILE] [--default]\n"
     "NAME --socket PATH [--token-file FILE | --token-stdin] [--default]",
     "name a turtled to talk to",
     "Writes [remote \"NAME\"] to the user's config file\n"
     "(~/.config/turtles/config.ini: mode 0600, replaced whole and at once).\n"
     "NAME is 1 to 63 letters, digits, '-', '_' or '.', starting with a letter\n"
     "or a digit, and new to both the user's and the system's file.\n"
     "\n"
     "Options:\n"
     "  --url URL          turtled over TCP: http://127.0.0.1:8080,\n"
     "                     https://host:8443\n"
     "  --socket PATH      turtled's UNIX socket (stored absolute)\n"
     "  --token-file FILE  the token, read from FILE (one line)\n"
     "  --token-stdin      the token, read from standard input (one line)\n"
     "  --cacert FILE      for https://: trust the CA certificates (PEM) of FILE\n"
     "                     instead of the system's (stored absolute)\n"
     "  --default          make it the default remote too (as remote switch does)\n"
     "\n"
     "--token is refused here: a token on the command line lands in the\n"
     "shell's history and in ps.",
     NULL},
    {"list", remote_list, "", "list the remotes of the config files",
     "Lists the remotes of the user's and the system's config file as turtlectl\n"
     "finds them (the user's hide the system's of the same name): name, URL or\n"
     "socket, whether it has a token (never the token itself, in any format),\n"
     "its CA file, the default (*) and the file that defines it.",
     NULL},
    {"show", remote_show, "NAME", "show one remote",
     "Shows one remote with the fields remote list prints: whether it has a\n"
     "token, never the token.",
     NULL},
    {"remove", remote_remove, "NAME", "forget a remote of the user's config file",
     "Removes the remote from the user's config file, and default-remote when it\n"
     "names it.  A remote of the system file is changed there, by its owner:\n"
     "turtlectl says so and changes nothing.",
     NULL},
    {"switch", remote_switch, "NAME", "make a remote the default",
     "Sets default-remote in the user's config file, so that commands without\n"
     "--remote, --socket or --url use this remote.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

const CmdNoun cmd_remote_noun = {
    "remote",
    "the named turtleds of turtlectl's config files",
    remote_verbs,
    "The user's file (~/.config/turtles/config.ini, under $XDG_CONFIG_HOME when\n"
    "set) comes before the system's (" REMOTES_SYSTEM_FILE ");\n"
    "turtlectl writes the user's only.  A file that holds a token is refused while\n"
    "others may read it: chmod 600 it (the system's: owned by root, 600 or 640).",
};
