/* token create | list | revoke: /v1/tenants/{name}/tokens, and with
 * --operator /v1/operator/tokens (operator). */
#include "cli/commands.h"

#include <string.h>

#include "api/operator_token.h"
#include "api/tenant.h"

/* Takes "--operator" out of @argv (up to "--"), which then goes to the
 * operator verbs' own parsers.  TRUE when it was there. */
static gboolean take_operator_flag(int *argc, char **argv)
{
    gboolean found = FALSE;
    int out = 0;
    gboolean options = TRUE;
    for (int i = 0; i < *argc; i++) {
        if (options && strcmp(argv[i], "--") == 0)
            options = FALSE;
        if (options && strcmp(argv[i], "--operator") == 0) {
            found = TRUE;
            continue;
        }
        argv[out++] = argv[i];
    }
    *argc = out;
    return found;
}

static int operator_token_create(Ctl *ctl, int argc, char **argv)
{
    const char *scope = API_OPERATOR_SCOPE_METRICS;
    const char *description = NULL;
    const ArgSpec specs[] = {
        {"--scope", ARG_STRING, 0, 0, &scope, NULL},
        {"--description", ARG_STRING, 0, 0, &description, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    static const char *const names[] = {NULL};
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    g_autoptr(GError) error = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "create", argc, argv, specs, names, &args, &status))
        return status;
    /* turtled judges scope and description: its messages name the field. */
    g_autoptr(json_object) request = json_object_new_object();
    json_object_object_add(request, "scope", json_object_new_string(scope));
    if (description != NULL)
        json_object_object_add(request, "description", json_object_new_string(description));
    if (!cmd_call(ctl, "POST", "/v1/operator/tokens", request, &body, &status))
        return status;
    json_object *member = ctl_member(body, "token", &error);
    g_autoptr(ApiOperatorToken) token =
        member != NULL ? api_operator_token_from_json(member, &error) : NULL;
    if (token == NULL || token->secret == NULL)
        return ctl_fail_answer(ctl, "token", error);
    if (ctl_emit(ctl, body))
        return CTL_EXIT_OK;

    g_autoptr(OutputTable) table = output_table_new(NULL, 2);
    output_table_add(table, "id:", token->id);
    output_table_add(table, "scope:", token->scope);
    if (token->description != NULL)
        output_table_add(table, "description:", token->description);
    output_table_add(table, "token:", token->secret);
    output_table_add(table, "created:", token->created_at);
    output_table_print(table, stdout);
    fputs("The token is shown only once: keep it now.\n", stdout);
    return CTL_EXIT_OK;
}

static void operator_token_row(OutputTable *table, gpointer item)
{
    const ApiOperatorToken *token = item;
    output_table_add(table, token->id, token->scope, token->created_at, token->description);
}

static int operator_token_revoke(Ctl *ctl, int argc, char **argv)
{
    static const char *const names[] = {"ID", NULL};
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "revoke", argc, argv, NULL, names, &args, &status))
        return status;
    const char *id = g_ptr_array_index(args, 0);
    g_autofree char *path = ctl_path("/v1/operator/tokens", id, NULL);
    if (!cmd_call(ctl, "DELETE", path, NULL, &body, &status))
        return status;
    if (!ctl_emit(ctl, body))
        ctl_note(ctl, "revoked operator token %s", id);
    return CTL_EXIT_OK;
}

static int token_create(Ctl *ctl, int argc, char **argv)
{
    if (take_operator_flag(&argc, argv))
        return operator_token_create(ctl, argc, argv);
    /* The operator token's options, known here too so that they are
     * refused for what they are and suggested for a typo ("--operatr"). */
    const char *scope = NULL;
    const char *description = NULL;
    gboolean operator= FALSE;
    const ArgSpec specs[] = {{
        "--operator",
        ARG_FLAG,
        0,
        0,
        &operator,
        NULL },
        {"--scope", ARG_STRING, 0, 0, &scope, NULL},
        {"--description", ARG_STRING, 0, 0, &description, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    static const char *const names[] = {"TENANT", NULL};
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    g_autoptr(GError) error = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "create", argc, argv, specs, names, &args, &status))
        return status;
    if (scope != NULL || description != NULL)
        return ctl_usage_error(ctl,
                               "token create: %s goes with --operator (a tenant's token "
                               "has neither scope nor description)",
                               scope != NULL ? "--scope" : "--description");
    g_autofree char *path = ctl_path("/v1/tenants", g_ptr_array_index(args, 0), "tokens", NULL);
    if (!cmd_call(ctl, "POST", path, NULL, &body, &status))
        return status;
    json_object *member = ctl_member(body, "token", &error);
    g_autoptr(ApiToken) token = member != NULL ? api_token_from_json(member, &error) : NULL;
    if (token == NULL)
        return ctl_fail_answer(ctl, "token", error);
    if (ctl_emit(ctl, body))
        return CTL_EXIT_OK;

    g_autoptr(OutputTable) table = output_table_new(NULL, 2);
    output_table_add(table, "tenant:", token->tenant);
    output_table_add(table, "id:", token->id);
    output_table_add(table, "token:", token->secret);
    output_table_add(table, "created:", token->created_at);
    output_table_print(table, stdout);
    fputs("The token is shown only once: keep it now.\n", stdout);
    return CTL_EXIT_OK;
}

static void token_row(OutputTable *table, gpointer item)
{
    const ApiToken *token = item;
    output_table_add(table, token->id, token->created_at);
}

static int token_list(Ctl *ctl, int argc, char **argv)
{
    if (take_operator_flag(&argc, argv)) {
        static const char *const operator_headers[] = {"ID", "SCOPE", "CREATED", "DESCRIPTION",
                                                       NULL};
        static const CmdList operator_list = {.path = "/v1/operator/tokens",
                                              .member = "tokens",
                                              .decode = api_operator_token_list_from_json,
                                              .headers = operator_headers,
                                              .row = operator_token_row};
        return cmd_list(ctl, &operator_list, argc, argv);
    }
    static const char *const headers[] = {"ID", "CREATED", NULL};
    static const CmdList list = {.path = "/v1/tenants",
                                 .member = "tokens",
                                 .decode = api_token_list_from_json,
                                 .headers = headers,
                                 .row = token_row,
                                 .owner = "TENANT",
                                 .suffix = "tokens"};
    return cmd_list(ctl, &list, argc, argv);
}

static int token_revoke(Ctl *ctl, int argc, char **argv)
{
    if (take_operator_flag(&argc, argv))
        return operator_token_revoke(ctl, argc, argv);
    static const char *const names[] = {"TENANT", "ID", NULL};
    g_autoptr(GPtrArray) args = NULL;
    g_autoptr(json_object) body = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "revoke", argc, argv, NULL, names, &args, &status))
        return status;
    const char *tenant = g_ptr_array_index(args, 0);
    const char *id = g_ptr_array_index(args, 1);
    g_autofree char *path = ctl_path("/v1/tenants", tenant, "tokens", id, NULL);
    if (!cmd_call(ctl, "DELETE", path, NULL, &body, &status))
        return status;
    if (!ctl_emit(ctl, body))
        ctl_note(ctl, "revoked token %s of tenant %s", id, tenant);
    return CTL_EXIT_OK;
}

static const CmdVerb token_verbs[] = {
    {"create", token_create, "TENANT\n--operator [--scope metrics|admin] [--description TEXT]",
     "create an API token for a tenant or the operator",
     "Creates a new API token for TENANT or, with --operator, an operator token\n"
     "(bound to no tenant: for turtled over TCP or a Prometheus scraper).  Its\n"
     "secret is shown only here: keep it now.\n"
     "\n"
     "Options:\n"
     "  --operator             an operator token instead of a tenant's\n"
     "  --scope metrics|admin  with --operator: what the token may do: metrics\n"
     "                         (the default) reads only /metrics; admin does\n"
     "                         everything the operator may but manage operator\n"
     "                         tokens\n"
     "  --description TEXT     with --operator: a note to tell tokens apart (up\n"
     "                         to 256 bytes)\n",
     NULL},
    {"list", token_list,
     "TENANT [--limit N [--after CURSOR] [--all]]\n--operator [--limit N [--after CURSOR] [--all]]",
     "list a tenant's or the operator's live tokens",
     "Lists TENANT's live tokens, oldest first: id and creation time, never the\n"
     "secret.  With --operator, the operator tokens: id, scope, creation time\n"
     "and description.  Without --limit every page is fetched and printed as one\n"
     "list; with --limit N one page of at most N tokens, and in a table the\n"
     "command for the next page on stderr (json and yaml hold it as \"next\").\n"
     "\n"
     "Options:\n"
     "  --operator      the operator tokens instead of a tenant's\n"
     "  --limit N       at most N tokens per page (1-1000)\n"
     "  --after CURSOR  the page after CURSOR (the \"next\" of the previous page)\n"
     "  --all           with --limit: every page, N tokens at a time\n",
     NULL},
    {"revoke", token_revoke, "TENANT ID\n--operator ID", "revoke a token",
     "Revokes the token ID of TENANT or, with --operator, the operator token ID\n"
     "(the ids token list shows): its secret stops working at once and the\n"
     "event streams it opened end.\n"
     "\n"
     "Options:\n"
     "  --operator  an operator token instead of a tenant's\n",
     NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

const CmdNoun cmd_token_noun = {
    "token",
    "API tokens of tenants and of the operator (operator)",
    token_verbs,
    "A tenant's token acts as that tenant; an operator token (--operator) is\n"
    "bound to no tenant and does what its scope allows.  turtled keeps only a\n"
    "hash of each secret, so a lost secret cannot be shown again: create\n"
    "another and revoke the old one.\n"
    "\n"
    "Operator only.  Operator tokens are managed only on the UNIX socket\n"
    "without a token (as root or the admin group), so that a leaked token\n"
    "cannot mint its own successors.\n",
};
