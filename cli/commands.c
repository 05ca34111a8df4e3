/* What every noun shares: verb dispatch, argument checks, one request. */
#include "cli/commands.h"

#include <string.h>

int cmd_dispatch(Ctl *ctl, const char *noun, const CmdVerb *verbs, int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    int next = 0;

    /* Global options may sit between the noun and the verb too. */
    if (!args_parse_globals(argc, argv, &ctl->globals, &next, &error))
        return ctl_fail(ctl, error);
    if (ctl->globals.help) {
        ctl->usage(stdout);
        return CTL_EXIT_OK;
    }
    if (next == argc)
        return ctl_usage_error(ctl, "%s: missing verb", noun);
    for (guint i = 0; verbs[i].name != NULL; i++) {
        if (strcmp(verbs[i].name, argv[next]) == 0)
            return verbs[i].run(ctl, argc - next, argv + next);
    }
    return ctl_usage_error(ctl, "%s: unknown verb '%s'", noun, argv[next]);
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
    if (ctl->globals.help) {
        ctl->usage(stdout);
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

/* The paging options of a list verb. */
typedef struct {
    gint64 limit;
    gboolean limit_seen;
    gboolean all;
    const char *after;
    const char *tenant;
} ListFlags;

static char *list_path(const CmdList *list, const ListFlags *flags, const char *after)
{
    GString *path = g_string_new(list->path);
    if (flags->limit_seen)
        g_string_append_printf(path, "?limit=%" G_GINT64_FORMAT, flags->limit);
    cmd_query_append(path, "after", after);
    cmd_query_append(path, "tenant", flags->tenant);
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
    if (!follow && next != NULL)
        fprintf(stderr, "more: turtlectl %s list --limit %" G_GINT64_FORMAT " --after %s\n",
                ctl->noun, flags->limit, next);
    return CTL_EXIT_OK;
}

int cmd_list(Ctl *ctl, const CmdList *list, int argc, char **argv)
{
    ListFlags flags = {0};
    const ArgSpec specs[] = {
        {"--limit", ARG_INT, 1, CMD_LIST_LIMIT_MAX, &flags.limit, &flags.limit_seen},
        {"--after", ARG_STRING, 0, 0, &flags.after, NULL},
        {"--all", ARG_FLAG, 0, 0, &flags.all, NULL},
        {"--tenant", ARG_STRING, 0, 0, &flags.tenant, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "list", argc, argv, specs, NULL, NULL, &status))
        return status;
    return list_pages(ctl, list, &flags);
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
