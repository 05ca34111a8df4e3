/* Command-line options of turtlectl: the global ones (accepted before the
 * noun and after the verb alike) and each verb's own. */
#pragma once

#include <glib.h>

#include "cli/ctl.h"

typedef enum {
    ARG_FLAG,    /* gboolean *out */
    ARG_STRING,  /* const char **out (borrowed from argv) */
    ARG_INT,     /* gint64 *out, in [min, max] */
    ARG_STRINGS, /* GPtrArray *out: each use appends (borrowed from argv) */
} ArgKind;

typedef struct {
    const char *name; /* "--vcpus"; NULL ends a table */
    ArgKind kind;
    gint64 min;
    gint64 max;
    gpointer out;
    gboolean *seen; /* may be NULL */
} ArgSpec;

/* Sets CTL_ERROR_USAGE with the message; returns FALSE. */
gboolean args_usage_error(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* The global options as a synopsis (for shell completion). */
extern const char args_global_synopsis[];

/* Options of @specs (may be NULL) and the global options, anywhere in
 * @argv, as "--name VALUE" or "--name=VALUE"; the other arguments (all of
 * them after "--") are appended to @positional.  CTL_ERROR_USAGE with a
 * message naming the option on error. */
gboolean args_parse(int argc, char **argv, const ArgSpec *specs, CtlGlobals *globals,
                    GPtrArray *positional, GError **error);

/* The global options before the first other argument; *next is its index
 * (argc when there is none). */
gboolean args_parse_globals(int argc, char **argv, CtlGlobals *globals, int *next, GError **error);
