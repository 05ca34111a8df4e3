/* turtlectl's help, all drawn from the noun and verb tables: a noun's list
 * of verbs, a verb's usage and options, and the short usage that follows a
 * usage error. */
#pragma once

#include <stdio.h>

#include "cli/commands.h"

/* "usage: turtlectl WORDS SYNOPSIS", one line per form of @verb (of each
 * sub-verb for a verb of sub-verbs), long forms wrapped under themselves.
 * @words is the command up to and with the verb ("stack create"). */
void help_usage(FILE *out, const char *words, const CmdVerb *verb, gboolean first);

/* The usage lines of every verb of @verbs, under "usage:" (@words: the noun,
 * "stack", or the verb of sub-verbs, "stack device"). */
void help_usage_all(FILE *out, const char *words, const CmdVerb *verbs);

/* The whole help of a noun or of a verb of sub-verbs: its usage lines, its
 * verbs with their summaries, @notes (may be NULL). */
void help_verbs(FILE *out, const char *words, const char *summary, const CmdVerb *verbs,
                const char *notes);

/* The whole help of one verb: usage, summary, help. */
void help_verb(FILE *out, const char *words, const CmdVerb *verb);

/* The verb of @verbs named @name, or NULL. */
const CmdVerb *help_find_verb(const CmdVerb *verbs, const char *name);

/* The names of @verbs, NULL-terminated (for suggestions); free the array only. */
const char **help_verb_names(const CmdVerb *verbs);
