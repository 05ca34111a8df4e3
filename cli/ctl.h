/* The state of one turtlectl run: global options, the connection (made once
 * a verb has parsed its arguments, so global options may follow the verb),
 * the output format, and the helpers every verb uses to report. */
#pragma once

#include <stdio.h>

#include <glib.h>
#include <json-c/json.h>

#include "cli/client.h"
#include "cli/output.h"
#include "cli/progress.h"

/* Exit status of turtlectl (turtlectl(1), EXIT STATUS). */
#define CTL_EXIT_OK    0
#define CTL_EXIT_ERROR 1
#define CTL_EXIT_USAGE 2

#define CTL_ERROR (ctl_error_quark())

typedef enum {
    CTL_ERROR_USAGE,   /* bad command line: exit 2 with the verb's (or noun's) usage */
    CTL_ERROR_UNKNOWN, /* an unknown noun or verb: exit 2 with a pointer to the help */
    CTL_ERROR_CONFIG,  /* a remote that does not exist or is incomplete */
} CtlErrorCode;

GQuark ctl_error_quark(void);

/* The global options; strings are borrowed from argv. */
typedef struct {
    const char *remote;
    const char *socket;
    const char *url;
    const char *token;
    const char *cacert;
    const char *format;
    gboolean help;
    gboolean version;
} CtlGlobals;

typedef struct CmdNoun CmdNoun;
typedef struct CmdVerb CmdVerb;

typedef struct {
    CtlGlobals globals;
    const char *noun;       /* its name, once chosen */
    const CmdNoun *command; /* the noun, once chosen */
    const CmdVerb *verb;    /* the verb (a sub-verb: the innermost), once chosen */
    char *words;            /* the command so far, "stack device attach", for help */
    OutputFormat format;
    gboolean stdout_tty;
    gboolean stderr_tty;
    Client *client; /* NULL until ctl_connect */
} Ctl;

void ctl_init(Ctl *ctl);
void ctl_clear(Ctl *ctl);

/* Resolves the connection (flags, environment, config files) and the output
 * format.  CTL_ERROR_USAGE for conflicting flags. */
gboolean ctl_connect(Ctl *ctl, GError **error);

/* Prints "turtlectl: MESSAGE" and returns the exit status that fits the
 * error: 2 for usage errors (after the usage of the verb or noun at hand,
 * or, for an unknown word, where to find help), else 1. */
int ctl_fail(Ctl *ctl, const GError *error);
int ctl_usage_error(Ctl *ctl, const char *format, ...) G_GNUC_PRINTF(2, 3);
/* "unknown WHAT 'WORD'; did you mean 'CANDIDATE'?" (when one of
 * @candidates, NULL-terminated, is close) and where the help is: exit 2. */
int ctl_unknown_word(Ctl *ctl, const char *what, const char *word, const char *const *candidates);

/* Enters the verb @verb named @name: the words and usage of what follows. */
void ctl_enter_verb(Ctl *ctl, const CmdVerb *verb, const char *name);

/* A request whose answer must be a JSON object (or nothing, for 204).
 * *body gets the parsed answer (NULL for an empty one). */
gboolean ctl_request(Ctl *ctl, const char *method, const char *path, json_object *request,
                     json_object **body, GError **error);

/* The member @key of an answer's envelope ({"tenant": {...}}), borrowed. */
json_object *ctl_member(json_object *body, const char *key, GError **error);

/* "/v1/tenants/acme/tokens": @prefix, then each segment escaped, up to NULL. */
char *ctl_path(const char *prefix, ...) G_GNUC_NULL_TERMINATED;

/* Applies --format (once the options are parsed: cmd_parse does it). */
void ctl_use_format(Ctl *ctl);

/* Prints @body as json or yaml and returns TRUE; FALSE for table and csv
 * (the caller draws the table, which prints as CSV for csv). */
gboolean ctl_emit(Ctl *ctl, json_object *body);

/* Prints @message in table mode only: confirmations of verbs without an answer. */
void ctl_note(Ctl *ctl, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* ctl_fail for an answer that ctl_member or a model (API_ERROR) refused:
 * "unexpected answer from turtled: MEMBER.FIELD: ..."; a NULL @member for
 * models that decode the whole body and name the fields themselves. */
int ctl_fail_answer(Ctl *ctl, const char *member, const GError *error);

/* How --wait shows progress: a bar on a terminal (stderr), lines otherwise. */
ProgressStyle ctl_progress_style(const Ctl *ctl);
