#include "cli/ctl.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/error.h"
#include "cli/help.h"
#include "cli/remotes.h"
#include "cli/suggest.h"

#define CTL_DEFAULT_SOCKET "/run/turtles/turtled.sock"

G_DEFINE_QUARK(turtlectl - error - quark, ctl_error)

void ctl_init(Ctl *ctl)
{
    memset(ctl, 0, sizeof(*ctl));
    ctl->stdout_tty = isatty(STDOUT_FILENO);
    ctl->stderr_tty = isatty(STDERR_FILENO);
    /* Tables in a pipe too, as virsh and incus print them: scripts ask
     * for --format json. */
    ctl->format = OUTPUT_TABLE;
}

void ctl_clear(Ctl *ctl)
{
    g_clear_pointer(&ctl->client, client_free);
    g_clear_pointer(&ctl->words, g_free);
}

void ctl_enter_verb(Ctl *ctl, const CmdVerb *verb, const char *name)
{
    char *words = ctl->words != NULL ? g_strdup_printf("%s %s", ctl->words, name) : g_strdup(name);
    g_free(ctl->words);
    ctl->words = words;
    ctl->verb = verb;
}

static const char *env_value(const char *name)
{
    const char *value = g_getenv(name);
    return value != NULL && *value != '\0' ? value : NULL;
}

static gboolean is_http_url(const char *url)
{
    return g_str_has_prefix(url, "http://") || g_str_has_prefix(url, "https://");
}

gboolean ctl_connect(Ctl *ctl, GError **error)
{
    const CtlGlobals *g = &ctl->globals;

    if ((g->remote != NULL) + (g->socket != NULL) + (g->url != NULL) > 1) {
        g_set_error_literal(error, CTL_ERROR, CTL_ERROR_USAGE,
                            "--remote, --socket and --url exclude each other");
        return FALSE;
    }
    if (g->url != NULL && !is_http_url(g->url)) {
        g_set_error(error, CTL_ERROR, CTL_ERROR_USAGE,
                    "--url: must start with http:// or https:// (not '%s')", g->url);
        return FALSE;
    }

    /* Flags, then the environment, then the config files, then the default socket. */
    const char *token = g->token != NULL ? g->token : env_value("TURTLES_TOKEN");
    const char *socket = g->socket;
    const char *url = g->url;
    g_autoptr(Remote) remote = NULL;
    if (socket == NULL && url == NULL && g->remote == NULL)
        socket = env_value("TURTLES_SOCKET");
    if (socket == NULL && url == NULL) {
        g_auto(GStrv) files = remotes_default_files();
        if (!remotes_lookup((const char *const *)files, g->remote, &remote, error))
            return FALSE;
        socket = remote != NULL ? remote->socket : CTL_DEFAULT_SOCKET;
        url = remote != NULL ? remote->url : NULL;
        if (token == NULL && remote != NULL)
            token = remote->token;
    }

    /* A CA bundle is for https:// only, and must be usable before we connect. */
    if (g->cacert != NULL && (url == NULL || !g_str_has_prefix(url, "https://"))) {
        g_set_error(error, CTL_ERROR, CTL_ERROR_USAGE,
                    "--cacert: only for an https:// URL (not %s)", url != NULL ? url : socket);
        return FALSE;
    }
    const char *cacert = g->cacert != NULL ? g->cacert : remote != NULL ? remote->cacert : NULL;
    g_autoptr(GError) unusable = NULL;
    if (cacert != NULL && !client_cacert_check(cacert, &unusable)) {
        if (g->cacert != NULL)
            g_set_error(error, CTL_ERROR, CTL_ERROR_USAGE, "--cacert: %s", unusable->message);
        else
            g_set_error(error, CTL_ERROR, CTL_ERROR_CONFIG, "%s: remote '%s': cacert: %s",
                        remote->file, remote->name, unusable->message);
        return FALSE;
    }
    ctl->client = client_new(socket, url, token, cacert);
    return TRUE;
}

/* The usage of what the command line has reached, short: the forms of the
 * verb, or of the noun's verbs, and where the whole help is. */
static void print_short_usage(const Ctl *ctl, FILE *out)
{
    if (ctl->verb != NULL && ctl->verb->verbs == NULL)
        help_usage(out, ctl->words, ctl->verb, TRUE);
    else if (ctl->verb != NULL)
        help_usage_all(out, ctl->words, ctl->verb->verbs);
    else if (ctl->command != NULL)
        help_usage_all(out, ctl->words, ctl->command->verbs);
    else
        fputs("usage: turtlectl [GLOBAL OPTIONS] NOUN VERB [ARGUMENTS]\n", out);
    fprintf(out, "Run 'turtlectl help%s%s' for more.\n", ctl->words != NULL ? " " : "",
            ctl->words != NULL ? ctl->words : "");
}

int ctl_fail(Ctl *ctl, const GError *error)
{
    fflush(stdout);
    fprintf(stderr, "turtlectl: %s\n", error->message);
    if (g_error_matches(error, CTL_ERROR, CTL_ERROR_USAGE)) {
        fputc('\n', stderr);
        print_short_usage(ctl, stderr);
        return CTL_EXIT_USAGE;
    }
    if (g_error_matches(error, CTL_ERROR, CTL_ERROR_UNKNOWN)) {
        fprintf(stderr, "Run 'turtlectl help%s%s' for the list.\n", ctl->words != NULL ? " " : "",
                ctl->words != NULL ? ctl->words : "");
        return CTL_EXIT_USAGE;
    }
    return CTL_EXIT_ERROR;
}

int ctl_unknown_word(Ctl *ctl, const char *what, const char *word, const char *const *candidates)
{
    const char *closest = suggest_closest(word, candidates);
    g_autoptr(GError) error = NULL;
    g_autofree char *where =
        ctl->words != NULL ? g_strconcat(ctl->words, ": ", NULL) : g_strdup("");
    if (closest != NULL)
        error = g_error_new(CTL_ERROR, CTL_ERROR_UNKNOWN, "%sunknown %s '%s'; did you mean '%s'?",
                            where, what, word, closest);
    else
        error = g_error_new(CTL_ERROR, CTL_ERROR_UNKNOWN, "%sunknown %s '%s'", where, what, word);
    return ctl_fail(ctl, error);
}

int ctl_usage_error(Ctl *ctl, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    g_autofree char *message = g_strdup_vprintf(format, args);
    va_end(args);
    g_autoptr(GError) error = g_error_new_literal(CTL_ERROR, CTL_ERROR_USAGE, message);
    return ctl_fail(ctl, error);
}

gboolean ctl_request(Ctl *ctl, const char *method, const char *path, json_object *request,
                     json_object **body, GError **error)
{
    return client_request(ctl->client, method, path, request, 0, body, error);
}

int ctl_fail_answer(Ctl *ctl, const char *member, const GError *error)
{
    if (error->domain != API_ERROR)
        return ctl_fail(ctl, error);
    fflush(stdout);
    if (member == NULL) {
        /* The list models name their items themselves ("stacks[2].vcpus"). */
        fprintf(stderr, "turtlectl: unexpected answer from turtled: %s\n", error->message);
        return CTL_EXIT_ERROR;
    }
    /* The models name the top level "body". */
    gboolean top = g_str_has_prefix(error->message, "body:");
    fprintf(stderr, "turtlectl: unexpected answer from turtled: %s%s%s\n", member, top ? "" : ".",
            top ? error->message + strlen("body:") : error->message);
    return CTL_EXIT_ERROR;
}

json_object *ctl_member(json_object *body, const char *key, GError **error)
{
    json_object *member = NULL;
    if (body == NULL || !json_object_object_get_ex(body, key, &member)) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_PROTOCOL,
                    "unexpected answer from turtled: no \"%s\"", key);
        return NULL;
    }
    return member;
}

char *ctl_path(const char *prefix, ...)
{
    va_list args;
    GString *path = g_string_new(prefix);

    va_start(args, prefix);
    for (const char *segment = va_arg(args, const char *); segment != NULL;
         segment = va_arg(args, const char *)) {
        g_string_append_c(path, '/');
        g_string_append_uri_escaped(path, segment, NULL, FALSE);
    }
    va_end(args);
    return g_string_free(path, FALSE);
}

void ctl_use_format(Ctl *ctl)
{
    /* args_parse checked it. */
    if (ctl->globals.format != NULL)
        output_format_parse(ctl->globals.format, &ctl->format);
    output_tables_as_csv(ctl->format == OUTPUT_CSV);
}

gboolean ctl_emit(Ctl *ctl, json_object *body)
{
    switch (ctl->format) {
    case OUTPUT_JSON:
        if (body != NULL)
            output_json(stdout, body);
        return TRUE;
    case OUTPUT_YAML:
        if (body != NULL)
            output_yaml(stdout, body);
        return TRUE;
    case OUTPUT_TABLE:
    case OUTPUT_CSV:
        break;
    }
    return FALSE;
}

void ctl_note(Ctl *ctl, const char *format, ...)
{
    if (ctl->format != OUTPUT_TABLE)
        return;
    va_list args;
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    putchar('\n');
}

ProgressStyle ctl_progress_style(const Ctl *ctl)
{
    return ctl->stderr_tty ? PROGRESS_BAR : PROGRESS_LINES;
}
