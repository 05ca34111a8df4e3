/* The nouns of turtlectl and what their verbs share.  Each noun is a table
 * of verbs; each verb takes its arguments (argv[0] is the verb) and returns
 * the exit status. */
#pragma once

#include <stdio.h>

#include <glib.h>
#include <json-c/json.h>

#include "api/json.h"
#include "api/operation.h"
#include "cli/args.h"
#include "cli/ctl.h"

/* A verb of a noun: argv[0] is the verb itself. */
typedef int (*CmdVerbFunc)(Ctl *ctl, int argc, char **argv);

/* What a verb is and does: the one source of its help, of the usage shown
 * with a usage error, of its suggestions and of shell completion (which
 * reads the options, their values and the positional arguments off
 * @synopsis: "NAME --to PEER [--wait]", "--format table|json"; NAME is a
 * name of the noun's own kind, IMAGE, STACK, TENANT... of that kind). */
typedef struct CmdVerb CmdVerb;
struct CmdVerb {
    const char *name;
    CmdVerbFunc run; /* NULL for a verb of sub-verbs ("stack device") */
    /* The arguments after "turtlectl NOUN VERB", one form per line; long
     * forms are wrapped when printed. */
    const char *synopsis;
    const char *summary;  /* one line, for the noun's list of verbs */
    const char *help;     /* what it does in full and its options; may be NULL */
    const CmdVerb *verbs; /* the sub-verbs, ended by a NULL name; else NULL */
};

/* A noun: its verbs (ended by a NULL name) and notes for its help. */
struct CmdNoun {
    const char *name;
    const char *summary;
    const CmdVerb *verbs;
    const char *help; /* may be NULL */
};

extern const CmdNoun cmd_host_noun;
extern const CmdNoun cmd_tenant_noun;
extern const CmdNoun cmd_token_noun;
extern const CmdNoun cmd_image_noun;
extern const CmdNoun cmd_stack_noun;
extern const CmdNoun cmd_operation_noun;
extern const CmdNoun cmd_event_noun;
extern const CmdNoun cmd_peer_noun;
extern const CmdNoun cmd_device_class_noun;
extern const CmdNoun cmd_device_noun;
extern const CmdNoun cmd_network_noun;
extern const CmdNoun cmd_remote_noun;

/* Runs the verb argv[0] of @verbs (after global options), for the noun or
 * verb @words ("stack", "stack device"); handles a missing or unknown verb
 * (with a suggestion) and --help. */
int cmd_dispatch(Ctl *ctl, const char *words, const CmdVerb *verbs, int argc, char **argv);

/* A verb of sub-verbs runs them: its argv[0] is its own name. */
int cmd_run_sub_verbs(Ctl *ctl, int argc, char **argv);

/* Parses a verb's arguments (after the verb) and checks the positional
 * arguments against @names ("NAME", "ID"; trailing ones in brackets,
 * "[NAME]", are optional), which name them in the messages.  On FALSE the exit status is in *status
 * ("--help": 0, else 2, after printing). */
gboolean cmd_parse(Ctl *ctl, const char *verb, int argc, char **argv, const ArgSpec *specs,
                   const char *const *names, GPtrArray **positional, int *status);

/* Connects, sends the request and gives the answer in *body (NULL when
 * empty), or prints the error and gives FALSE with the exit status in *status. */
gboolean cmd_call(Ctl *ctl, const char *method, const char *path, json_object *request,
                  json_object **body, int *status);

/* Appends "?KEY=VALUE" (or "&KEY=VALUE" when @path has a query), VALUE
 * escaped; nothing for a NULL @value. */
void cmd_query_append(GString *path, const char *key, const char *value);

/* Like cmd_call, for the write of a read-modify-write: @if_match (the ETag
 * read; may be NULL) goes as If-Match, *@etag (may be NULL) gets the
 * answer's.  A 412 prints "@what was changed by someone else meanwhile;
 * nothing was written: read it again and retry". */
gboolean cmd_call_tagged(Ctl *ctl, const char *what, const char *method, const char *path,
                         json_object *request, const char *if_match, char **etag,
                         json_object **body, int *status);

/* `NOUN edit NAME`: reads @path, shows the @fields (NULL-terminated) of
 * its @member in $VISUAL or $EDITOR (vi without either) as JSON, and sends
 * what changed as a PATCH with If-Match: the ETag read, so that an edit
 * never overwrites a change someone made meanwhile.  @print shows the
 * answer.  @what names the resource in messages ("tenant acme"). */
int cmd_edit(Ctl *ctl, const char *what, const char *path, const char *member,
             const char *const *fields, int (*print)(Ctl *ctl, json_object *body));

/* ---- paged lists ({"ITEMS":[...],"next":CURSOR|null}) ----------------------------- */

/* Bound of --limit; the API's LIST_LIMIT_MAX. */
#define CMD_LIST_LIMIT_MAX 1000
/* Most filters a list has (operation list: --status, --kind, --tenant). */
#define CMD_LIST_FILTERS 3

typedef struct {
    const char *path;   /* "/v1/stacks"; with @owner the path before OWNER */
    const char *member; /* "stacks": the items' key in the answer */
    /* api_stack_list_from_json and the like: the items, and *next */
    GPtrArray *(*decode)(json_object *body, char **next, GError **error);
    const char *const *headers;                     /* the table's */
    void (*row)(OutputTable *table, gpointer item); /* one item's row */
    /* The list's filters: each --FILTER VALUE sent as ?FILTER=VALUE
     * ("tenant", "class"); up to CMD_LIST_FILTERS, the rest NULL. */
    const char *filters[CMD_LIST_FILTERS];
    /* A list under one resource: its positional argument ("TENANT"), and
     * the path's segment after it ("tokens"): /v1/tenants/OWNER/tokens. */
    const char *owner;
    const char *suffix;
} CmdList;

/* A list verb (argv[0] is "list") with the options [--limit N [--after
 * CURSOR] [--all]] and the list's filter: without --limit (or with --all)
 * every page, merged into one answer {"ITEMS":[...],"next":null}; with
 * --limit one page, the API's answer as is (in a table, its next on
 * stderr).  Returns the exit status. */
int cmd_list(Ctl *ctl, const CmdList *list, int argc, char **argv);

/* What show-like verbs print of an answer {"MEMBER": {...}}: the answer as
 * json or yaml, or the table of @rows ("label:", value) over what @decode
 * (api_peer_from_json and the like) makes of the member, freed with
 * @free_func.  An answer @decode refuses is an error (exit 1). */
int cmd_print_member(Ctl *ctl, json_object *body, const char *member,
                     gpointer (*decode)(json_object *value, GError **error),
                     GDestroyNotify free_func,
                     void (*rows)(OutputTable *table, gconstpointer item));

/* ---- operations (cmd-operation.c), for every async verb --------------------- */

void cmd_operation_table(const ApiOperation *operation, FILE *out);

/* What an async verb does with its 202 answer (which holds "operation"):
 * without @wait prints it and returns 0; with @wait follows the operation
 * (see cmd_operation_wait) and prints the final operation instead. */
int cmd_operation_finish(Ctl *ctl, json_object *body, gboolean wait);

/* Waits for @id (@timeout_s < 0: no limit), prints the last answer and
 * returns 0 when it succeeded; 1 when it failed or was cancelled (with its
 * error on stderr) or is still running at the timeout. */
int cmd_operation_wait(Ctl *ctl, const char *id, gint64 timeout_s);
