/* operation show | wait | cancel: /v1/operations/{id}; and the --wait of
 * every async verb. */
#include "cli/commands.h"

#include <string.h>

/* Far beyond any operation; the flag only needs a bound. */
#define WAIT_TIMEOUT_MAX_S (7LL * 24 * 3600)

void cmd_operation_table(const ApiOperation *operation, FILE *out)
{
    g_autoptr(OutputTable) table = output_table_new(NULL, 2);
    g_autofree char *progress = progress_format(operation, FALSE);
    /* The status leads progress_format's line; the table has its own row. */
    const char *progress_only = strchr(progress, ' ') != NULL ? strchr(progress, ' ') + 1 : "";
    g_autofree char *bytes =
        operation->progress.bytes_total > 0
            ? g_strdup_printf("%" G_GINT64_FORMAT " of %" G_GINT64_FORMAT,
                              operation->progress.bytes_done, operation->progress.bytes_total)
            : NULL;

    output_table_add(table, "id:", operation->id);
    output_table_add(table, "kind:", operation->kind);
    output_table_add(table, "target:", operation->target);
    output_table_add(table, "status:", api_operation_status_to_string(operation->status));
    output_table_add(table, "progress:", progress_only);
    if (bytes != NULL)
        output_table_add(table, "bytes:", bytes);
    output_table_add(table, "error:", operation->error);
    output_table_add(table, "created:", operation->created_at);
    output_table_add(table, "updated:", operation->updated_at);
    output_table_print(table, out);
}

/* Decodes body.operation; prints the failure and gives NULL. */
static ApiOperation *decode_operation(Ctl *ctl, json_object *body, int *status)
{
    g_autoptr(GError) error = NULL;
    json_object *member = ctl_member(body, "operation", &error);
    ApiOperation *operation = member != NULL ? api_operation_from_json(member, &error) : NULL;
    if (operation == NULL)
        *status = ctl_fail_answer(ctl, "operation", error);
    return operation;
}

static void print_operation(Ctl *ctl, json_object *body, const ApiOperation *operation)
{
    if (!ctl_emit(ctl, body))
        cmd_operation_table(operation, stdout);
}

int cmd_operation_wait(Ctl *ctl, const char *id, gint64 timeout_s)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) body = NULL;
    g_autoptr(ApiOperation) operation = NULL;

    if (ctl->client == NULL && !ctl_connect(ctl, &error))
        return ctl_fail(ctl, error);
    if (!progress_wait(ctl->client, id, timeout_s, ctl_progress_style(ctl), stderr, &body,
                       &operation, &error))
        return ctl_fail(ctl, error);
    print_operation(ctl, body, operation);
    fflush(stdout);

    const char *status = api_operation_status_to_string(operation->status);
    switch (operation->status) {
    case API_OP_SUCCEEDED:
        return CTL_EXIT_OK;
    case API_OP_FAILED:
    case API_OP_CANCELLED:
        /* "cancelled: cancelled" says nothing twice. */
        if (operation->error != NULL && strcmp(operation->error, status) != 0)
            fprintf(stderr, "turtlectl: operation %s %s: %s\n", operation->id, status,
                    operation->error);
        else
            fprintf(stderr, "turtlectl: operation %s %s\n", operation->id, status);
        return CTL_EXIT_ERROR;
    case API_OP_PENDING:
    case API_OP_RUNNING:
        break;
    }
    fprintf(stderr, "turtlectl: operation %s is still %s after %" G_GINT64_FORMAT " s\n",
            operation->id, status, timeout_s);
    return CTL_EXIT_ERROR;
}

int cmd_operation_finish(Ctl *ctl, json_object *body, gboolean wait)
{
    int status = CTL_EXIT_OK;
    g_autoptr(ApiOperation) operation = decode_operation(ctl, body, &status);
    if (operation == NULL)
        return status;
    if (!wait) {
        print_operation(ctl, body, operation);
        return CTL_EXIT_OK;
    }
    return cmd_operation_wait(ctl, operation->id, -1);
}

static const char *const id_names[] = {"ID", NULL};

static int operation_show(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "show", argc, argv, NULL, id_names, &args, &status))
        return status;
    g_autofree char *path = ctl_path("/v1/operations", g_ptr_array_index(args, 0), NULL);
    if (!cmd_call(ctl, "GET", path, NULL, &body, &status))
        return status;
    g_autoptr(ApiOperation) operation = decode_operation(ctl, body, &status);
    if (operation == NULL)
        return status;
    print_operation(ctl, body, operation);
    return CTL_EXIT_OK;
}

static int operation_wait(Ctl *ctl, int argc, char **argv)
{
    gint64 timeout = -1;
    const ArgSpec specs[] = {
        {"--timeout", ARG_INT, 0, WAIT_TIMEOUT_MAX_S, &timeout, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(GPtrArray) args = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "wait", argc, argv, specs, id_names, &args, &status))
        return status;
    return cmd_operation_wait(ctl, g_ptr_array_index(args, 0), timeout);
}

static int operation_cancel(Ctl *ctl, int argc, char **argv)
{
    gboolean wait = FALSE;
    gint64 timeout = -1;
    gboolean timeout_seen = FALSE;
    const ArgSpec specs[] = {
        {"--wait", ARG_FLAG, 0, 0, &wait, NULL},
        {"--timeout", ARG_INT, 0, WAIT_TIMEOUT_MAX_S, &timeout, &timeout_seen},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "cancel", argc, argv, specs, id_names, &args, &status))
        return status;
    if (timeout_seen && !wait)
        return ctl_usage_error(ctl, "operation cancel: --timeout goes with --wait");
    g_autofree char *path = ctl_path("/v1/operations", g_ptr_array_index(args, 0), NULL);
    if (!cmd_call(ctl, "DELETE", path, NULL, &body, &status))
        return status;
    if (!wait)
        return cmd_operation_finish(ctl, body, FALSE);
    g_autoptr(ApiOperation) operation = decode_operation(ctl, body, &status);
    if (operation == NULL)
        return status;
    return cmd_operation_wait(ctl, operation->id, timeout);
}

/* ---- list ------------------------------------------------------------------ */

static const char *const list_headers[] = {"ID",       "KIND",    "TARGET", "STATUS",
                                           "PROGRESS", "CREATED", NULL};

static void list_row(OutputTable *table, gpointer item)
{
    const ApiOperation *operation = item;
    g_autofree char *progress =
        operation->progress.stage != NULL
            ? g_strdup_printf("%d%% %s", operation->progress.percent, operation->progress.stage)
            : g_strdup_printf("%d%%", operation->progress.percent);
    output_table_add(table, operation->id, operation->kind, operation->target,
                     api_operation_status_to_string(operation->status), progress,
                     operation->created_at);
}

static int operation_list(Ctl *ctl, int argc, char **argv)
{
    static const CmdList list = {
        .path = "/v1/operations",
        .member = "operations",
        .decode = api_operation_list_from_json,
        .headers = list_headers,
        .row = list_row,
        .filters = {"status", "kind", "tenant"},
    };
    return cmd_list(ctl, &list, argc, argv);
}

static const CmdVerb operation_verbs[] = {
    {"list", operation_list,
     "[--status STATUS[,STATUS]...] [--kind KIND] [--tenant TENANT] [--limit N [--after CURSOR] "
     "[--all]]",
     "list the operations, newest first",
     "Lists the operations the caller may see, newest first: id, kind, target,\n"
     "status, progress and creation time.  Without --limit, every page.\n"
     "\n"
     "Options:\n"
     "  --status STATUS   only operations in this status: pending, running,\n"
     "                    succeeded, failed or cancelled; several separated by\n"
     "                    commas (pending,running: what is under way)\n"
     "  --kind KIND       only operations of this kind (stack.create,\n"
     "                    stack.delete, stack.migrate, ...)\n"
     "  --tenant TENANT   the operator: only this tenant's operations\n"
     "  --limit N         operations per page (1-1000); one page only\n"
     "  --after CURSOR    the page after CURSOR (the \"next\" of the previous one)\n"
     "  --all             with --limit: every page, N at a time",
     NULL},
    {"show", operation_show, "ID", "show an operation and its progress",
     "Prints the operation's kind, target, status, progress (stage, percent,\n"
     "bytes), error and times.",
     NULL},
    {"wait", operation_wait, "ID [--timeout SECONDS]", "wait until an operation ends",
     "Follows the operation, showing its progress on stderr (a bar on a\n"
     "terminal, else a line at each change), and prints it once it ends or at\n"
     "the timeout.  The exit status is 0 if it succeeded; 1 if it failed or was\n"
     "cancelled (its error on stderr) or is still running at the timeout.\n"
     "\n"
     "Options:\n"
     "  --timeout SECONDS  give up after SECONDS (0-604800; default: no limit)",
     NULL},
    {"cancel", operation_cancel, "ID [--wait [--timeout SECONDS]]", "ask an operation to stop",
     "Asks a pending or running operation to stop.  A pending one ends\n"
     "cancelled at once; a running one ends cancelled only if what it did can\n"
     "be rolled back: past its point of no return turtled refuses (\"too late\n"
     "to cancel\", exit 1) and it runs to its end.  An operation that has\n"
     "ended cannot be cancelled.  Without --wait, prints the operation as it\n"
     "is now.\n"
     "\n"
     "Options:\n"
     "  --wait             then wait for its end as operation wait does (exit 1\n"
     "                     once it is cancelled)\n"
     "  --timeout SECONDS  with --wait: give up after SECONDS (0-604800;\n"
     "                     default: no limit)",
     NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

const CmdNoun cmd_operation_noun = {
    "operation",
    "long-running work: list it, follow it, wait for it, cancel it",
    operation_verbs,
    "Verbs that take a while (stack create, start, delete, migrate, ...) start\n"
    "an operation and print it: its id is the ID these verbs take.  A tenant\n"
    "sees its own operations, the operator all.",
};
