/* What every noun shares: verb dispatch, argument checks, one request. */
#include "cli/commands.h"

#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "cli/help.h"

int cmd_dispatch(Ctl *ctl, const char *words, const CmdVerb *verbs, int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    int next = 0;

    /* Global options may sit between the noun and the verb too. */
    if (!args_parse_globals(argc, argv, &ctl->globals, &next, &error))
        return ctl_fail(ctl, error);
    const char *summary = ctl->verb != NULL ? ctl->verb->summary : ctl->command->summary;
    const char *notes = ctl->verb != NULL ? ctl->verb->help : ctl->command->help;
    if (ctl->globals.help) {
        help_verbs(stdout, words, summary, verbs, notes);
        return CTL_EXIT_OK;
    }
    if (next == argc)
        return ctl_usage_error(ctl, "%s: missing verb", words);
    const CmdVerb *verb = help_find_verb(verbs, argv[next]);
    if (verb == NULL) {
        g_autofree const char **names = help_verb_names(verbs);
        return ctl_unknown_word(ctl, "verb", argv[next], names);
    }
    ctl_enter_verb(ctl, verb, verb->name);
    if (verb->run == NULL)
        return cmd_run_sub_verbs(ctl, argc - next, argv + next);
    return verb->run(ctl, argc - next, argv + next);
}

int cmd_run_sub_verbs(Ctl *ctl, int argc, char **argv)
{
    return cmd_dispatch(ctl, ctl->words, ctl->verb->verbs, argc - 1, argv + 1);
}

gboolean cmd_parse(Ctl *ctl, const char *verb, int argc, char **argv, const ArgSpec *specs,
                   const char *const *names, GPtrArray **positional, int *status)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    guint most = names != NULL ? g_strv_length((char **)names) : 0;
    guint least = 0;

    while (least < most && names[least][0] != '[')
        least++;
    if (!args_parse(argc - 1, argv + 1, specs, &ctl->globals, args, &error)) {
        g_prefix_error(&error, "%s %s: ", ctl->noun, verb);
        *status = ctl_fail(ctl, error);
        return FALSE;
    }
    ctl_use_format(ctl);
    if (ctl->globals.help) {
        help_verb(stdout, ctl->words, ctl->verb);
        *status = CTL_EXIT_OK;
        return FALSE;
    }
    if (args->len < least) {
        *status = ctl_usage_error(ctl, "%s %s: missing %s", ctl->noun, verb, names[args->len]);
        return FALSE;
    }
    if (args->len > most) {
        *status = ctl_usage_error(ctl, "%s %s: unexpected argument '%s'", ctl->noun, verb,
                                  (const char *)g_ptr_array_index(args, most));
        return FALSE;
    }
    if (positional != NULL)
        *positional = g_steal_pointer(&args);
    return TRUE;
}

gboolean cmd_call(Ctl *ctl, const char *method, const char *path, json_object *request,
                  json_object **body, int *status)
{
    g_autoptr(GError) error = NULL;

    if (ctl->client == NULL && !ctl_connect(ctl, &error)) {
        *status = ctl_fail(ctl, error);
        return FALSE;
    }
    if (!ctl_request(ctl, method, path, request, body, &error)) {
        *status = ctl_fail(ctl, error);
        return FALSE;
    }
    return TRUE;
}

void cmd_query_append(GString *path, const char *key, const char *value)
{
    if (value == NULL)
        return;
    g_string_append_printf(path, "%c%s=", strchr(path->str, '?') != NULL ? '&' : '?', key);
    g_string_append_uri_escaped(path, value, NULL, FALSE);
}

gboolean cmd_call_tagged(Ctl *ctl, const char *what, const char *method, const char *path,
                         json_object *request, const char *if_match, char **etag,
                         json_object **body, int *status)
{
    g_autoptr(GError) error = NULL;

    if (ctl->client == NULL && !ctl_connect(ctl, &error)) {
        *status = ctl_fail(ctl, error);
        return FALSE;
    }
    if (client_request_tagged(ctl->client, method, path, request, if_match, etag, body, &error))
        return TRUE;
    if (g_error_matches(error, CLIENT_ERROR, CLIENT_ERROR_CHANGED)) {
        g_autoptr(GError) changed =
            g_error_new(CLIENT_ERROR, CLIENT_ERROR_CHANGED,
                        "%s was changed by someone else meanwhile; nothing was written: read it "
                        "again and retry",
                        what);
        *status = ctl_fail(ctl, changed);
        return FALSE;
    }
    *status = ctl_fail(ctl, error);
    return FALSE;
}

/* The paging options of a list verb. */
typedef struct {
    gint64 limit;
    gboolean limit_seen;
    gboolean all;
    const char *after;
    const char *filters[CMD_LIST_FILTERS]; /* the values of the list's --FILTERs */
    char *base;                            /* the list's path, without the query */
    const char *owner;                     /* the value of OWNER */
} ListFlags;

static char *list_path(const CmdList *list, const ListFlags *flags, const char *after)
{
    GString *path = g_string_new(flags->base);
    if (flags->limit_seen)
        g_string_append_printf(path, "?limit=%" G_GINT64_FORMAT, flags->limit);
    cmd_query_append(path, "after", after);
    for (guint i = 0; i < CMD_LIST_FILTERS && list->filters[i] != NULL; i++)
        cmd_query_append(path, list->filters[i], flags->filters[i]);
    return g_string_free(path, FALSE);
}

/* The pages of a list, once its options are parsed. */
static int list_pages(Ctl *ctl, const CmdList *list, const ListFlags *flags)
{
    g_autoptr(GError) error = NULL;
    int status = CTL_EXIT_OK;
    gboolean follow = !flags->limit_seen || flags->all;

    /* Every page's items (the decoded batches, and the JSON in one list);
     * the last answer's "next". */
    g_autoptr(json_object) items = json_object_new_array();
    g_autoptr(GPtrArray) batches =
        g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
    g_autofree char *cursor = g_strdup(flags->after);
    g_autofree char *next = NULL;
    g_autoptr(json_object) first = NULL;
    for (guint page = 0;; page++) {
        g_autoptr(json_object) body = NULL;
        g_autofree char *path = list_path(list, flags, cursor);
        if (!cmd_call(ctl, "GET", path, NULL, &body, &status))
            return status;
        g_clear_pointer(&next, g_free);
        GPtrArray *batch = list->decode(body, &next, &error);
        if (batch == NULL)
            return ctl_fail_answer(ctl, NULL, error);
        g_ptr_array_add(batches, batch);
        json_object *array = NULL;
        json_object_object_get_ex(body, list->member, &array);
        for (guint i = 0; i < batch->len; i++)
            json_object_array_add(items, json_object_get(json_object_array_get_idx(array, i)));
        if (page == 0)
            first = json_object_get(body);
        if (!follow || next == NULL)
            break;
        if (g_strcmp0(next, cursor) == 0) {
            g_set_error(&error, CLIENT_ERROR, CLIENT_ERROR_PROTOCOL,
                        "unexpected answer from turtled: the page after '%s' is '%s' again", cursor,
                        next);
            return ctl_fail(ctl, error);
        }
        g_free(cursor);
        cursor = g_strdup(next);
    }

    /* One page: the API's answer as is; several: their items as one page. */
    g_autoptr(json_object) merged = NULL;
    if (follow) {
        merged = json_object_new_object();
        json_object_object_add(merged, list->member, json_object_get(items));
        json_object_object_add(merged, "next", NULL);
    }
    if (ctl_emit(ctl, follow ? merged : first))
        return CTL_EXIT_OK;

    g_autoptr(OutputTable) table = output_table_new(list->headers, 0);
    for (guint b = 0; b < batches->len; b++) {
        GPtrArray *batch = g_ptr_array_index(batches, b);
        for (guint i = 0; i < batch->len; i++)
            list->row(table, g_ptr_array_index(batch, i));
    }
    output_table_print(table, stdout);
    if (!follow && next != NULL) {
        g_autoptr(GString) again = g_string_new(NULL);
        if (flags->owner != NULL)
            g_string_append_printf(again, " %s", flags->owner);
        for (guint i = 0; i < CMD_LIST_FILTERS && list->filters[i] != NULL; i++) {
            if (flags->filters[i] != NULL)
                g_string_append_printf(again, " --%s %s", list->filters[i], flags->filters[i]);
        }
        fprintf(stderr, "more: turtlectl %s list%s --limit %" G_GINT64_FORMAT " --after %s\n",
                ctl->noun, again->str, flags->limit, next);
    }
    return CTL_EXIT_OK;
}

int cmd_list(Ctl *ctl, const CmdList *list, int argc, char **argv)
{
    ListFlags flags = {0};
    g_autoptr(GPtrArray) filter_options = g_ptr_array_new_with_free_func(g_free);
    ArgSpec specs[4 + CMD_LIST_FILTERS] = {
        {"--limit", ARG_INT, 1, CMD_LIST_LIMIT_MAX, &flags.limit, &flags.limit_seen},
        {"--after", ARG_STRING, 0, 0, &flags.after, NULL},
        {"--all", ARG_FLAG, 0, 0, &flags.all, NULL},
    };
    /* Then the filters; the zeroed rest ends the table. */
    for (guint i = 0; i < CMD_LIST_FILTERS && list->filters[i] != NULL; i++) {
        char *option = g_strconcat("--", list->filters[i], NULL);
        g_ptr_array_add(filter_options, option);
        specs[3 + i] = (ArgSpec){option, ARG_STRING, 0, 0, &flags.filters[i], NULL};
    }
    const char *const names[] = {list->owner, NULL};
    g_autoptr(GPtrArray) args = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "list", argc, argv, specs, list->owner != NULL ? names : NULL, &args,
                   &status))
        return status;
    if (list->owner != NULL) {
        flags.owner = g_ptr_array_index(args, 0);
        flags.base = ctl_path(list->path, flags.owner, list->suffix, NULL);
    } else {
        flags.base = g_strdup(list->path);
    }
    status = list_pages(ctl, list, &flags);
    g_free(flags.base);
    return status;
}

int cmd_print_member(Ctl *ctl, json_object *body, const char *member,
                     gpointer (*decode)(json_object *value, GError **error),
                     GDestroyNotify free_func, void (*rows)(OutputTable *table, gconstpointer item))
{
    g_autoptr(GError) error = NULL;
    json_object *value = ctl_member(body, member, &error);
    gpointer item = value != NULL ? decode(value, &error) : NULL;
    if (item == NULL)
        return ctl_fail_answer(ctl, member, error);
    if (!ctl_emit(ctl, body)) {
        g_autoptr(OutputTable) table = output_table_new(NULL, 2);
        rows(table, item);
        output_table_print(table, stdout);
    }
    free_func(item);
    return CTL_EXIT_OK;
}

/* ---- edit: a read-modify-write ------------------------------------------------------ */

/* The members of @edited that differ from @original, recursing into objects
 * both have: a PATCH of what the user changed, so that what they left alone
 * is not written back. */
static json_object *edit_changes(json_object *original, json_object *edited)
{
    json_object *changes = json_object_new_object();
    json_object_object_foreach(edited, key, value)
    {
        json_object *before = NULL;
        gboolean had = json_object_object_get_ex(original, key, &before);
        if (had && json_object_is_type(before, json_type_object) &&
            json_object_is_type(value, json_type_object)) {
            json_object *inner = edit_changes(before, value);
            if (json_object_object_length(inner) > 0)
                json_object_object_add(changes, key, inner);
            else
                json_object_put(inner);
        } else if (!had || !json_object_equal(before, value)) {
            json_object_object_add(changes, key, json_object_get(value));
        }
    }
    return changes;
}

/* Runs $VISUAL or $EDITOR (a command line: "code --wait" works) on @file. */
static gboolean run_editor(const char *file, GError **error)
{
    const char *editor = g_getenv("VISUAL");
    if (editor == NULL || *editor == '\0')
        editor = g_getenv("EDITOR");
    if (editor == NULL || *editor == '\0')
        editor = "vi";
    g_autofree char *script = g_strdup_printf("%s \"$1\"", editor);
    const char *argv[] = {"/bin/sh", "-c", script, "sh", file, NULL};
    int wait_status = 0;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, NULL,
                      NULL, &wait_status, error))
        return FALSE;
    if (!g_spawn_check_wait_status(wait_status, NULL)) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_LOCAL,
                    "the editor (%s) failed; nothing was changed", editor);
        return FALSE;
    }
    return TRUE;
}

/* The document to edit: the @fields of @member. */
static json_object *edit_document(json_object *member, const char *const *fields)
{
    json_object *document = json_object_new_object();
    for (guint i = 0; fields[i] != NULL; i++) {
        json_object *value = NULL;
        if (json_object_object_get_ex(member, fields[i], &value))
            json_object_object_add(document, fields[i], json_object_get(value));
    }
    return document;
}

/* Writes @document to a new temporary file, lets the user edit it, and
 * reads it back: NULL with the reason when that fails or it is not a JSON
 * object. */
static json_object *edit_in_editor(json_object *document, GError **error)
{
    g_autofree char *file = NULL;
    int fd = g_file_open_tmp("turtlectl-edit-XXXXXX.json", &file, error);
    if (fd < 0)
        return NULL;
    close(fd);
    g_autofree char *text = g_strconcat(
        json_object_to_json_string_ext(document, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                     JSON_C_TO_STRING_NOSLASHESCAPE),
        "\n", NULL);
    g_autofree char *edited = NULL;
    gsize len = 0;
    gboolean ok = g_file_set_contents(file, text, -1, error) && run_editor(file, error) &&
                  g_file_get_contents(file, &edited, &len, error);
    g_unlink(file);
    if (!ok)
        return NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(json_object) value = api_json_parse(edited, len, API_JSON_MAX_DEPTH, &local);
    if (value == NULL || !json_object_is_type(value, json_type_object)) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_LOCAL,
                    "the edited text is not a JSON object%s%s; nothing was changed",
                    local != NULL ? ": " : "", local != NULL ? local->message : "");
        return NULL;
    }
    return g_steal_pointer(&value);
}

int cmd_edit(Ctl *ctl, const char *what, const char *path, const char *member,
             const char *const *fields, int (*print)(Ctl *ctl, json_object *body))
{
    g_autoptr(json_object) body = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *etag = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_call_tagged(ctl, what, "GET", path, NULL, NULL, &etag, &body, &status))
        return status;
    json_object *current = ctl_member(body, member, &error);
    if (current == NULL)
        return ctl_fail(ctl, error);
    if (etag == NULL) {
        g_set_error(&error, CLIENT_ERROR, CLIENT_ERROR_PROTOCOL,
                    "turtled sent %s without an ETag: it cannot be edited safely", what);
        return ctl_fail(ctl, error);
    }
    g_autoptr(json_object) document = edit_document(current, fields);
    g_autoptr(json_object) edited = edit_in_editor(document, &error);
    if (edited == NULL)
        return ctl_fail(ctl, error);
    g_autoptr(json_object) changes = edit_changes(document, edited);
    if (json_object_object_length(changes) == 0) {
        ctl_note(ctl, "%s: nothing changed", what);
        return CTL_EXIT_OK;
    }
    g_autoptr(json_object) answer = NULL;
    if (!cmd_call_tagged(ctl, what, "PATCH", path, changes, etag, NULL, &answer, &status))
        return status;
    return print(ctl, answer);
}
