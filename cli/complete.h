/* Shell completion: the hidden verb `turtlectl __complete WORDS... CURRENT`
 * that the bash, zsh and fish scripts of packaging/ call on TAB, as
 * cobra-based CLIs do.  WORDS are the words typed after "turtlectl",
 * CURRENT the word being completed (possibly empty).
 *
 * Everything is read off the command tables (nouns, verbs, sub-verbs, the
 * synopses' options, option values and positional placeholders); names of
 * stacks, images, tenants... come from the live turtled, reached as the
 * global options among WORDS say, within COMPLETE_TIMEOUT_MS.
 *
 * stdout: the candidates that start with CURRENT, one a line, as
 * "CANDIDATE" or "CANDIDATE<TAB>DESCRIPTION", then one directive line:
 *   ":0"  offer these candidates only (maybe none)
 *   ":1"  offer file names instead (the shell's own file completion of
 *         CURRENT, or of what follows its "=" for "--option=...")
 * Nothing else ever goes to stdout, and the exit status is always 0: an
 * unreachable turtled or a refused request just offers no names. */
#pragma once

#include <glib.h>

#include "cli/commands.h"
#include "cli/ctl.h"

/* The bound on one request for names: well inside the 1 s a shell may
 * wait, with room for starting turtlectl and the shell script's work. */
#define COMPLETE_TIMEOUT_MS 600

/* Names asked for at most: the first page, this long. */
#define COMPLETE_LIST_LIMIT 200

#define COMPLETE_DIRECTIVE_WORDS ":0"
#define COMPLETE_DIRECTIVE_FILES ":1"

/* `turtlectl __complete`: @argv are WORDS then CURRENT (argc >= 1; none at
 * all is taken as an empty CURRENT).  Returns 0. */
int complete_run(Ctl *ctl, const CmdNoun *const *nouns, gsize n_nouns, int argc, char **argv);
