/* turtlectl: the Turtles CLI for operators and tenants.  It speaks only HTTP
 * to turtled (api/ decodes the answers); global options, then a noun and
 * its verb. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <glib.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/complete.h"
#include "cli/ctl.h"
#include "cli/help.h"

static const CmdNoun *const nouns[] = {
    &cmd_host_noun,         &cmd_tenant_noun,    &cmd_token_noun,   &cmd_image_noun,
    &cmd_stack_noun,        &cmd_operation_noun, &cmd_event_noun,   &cmd_peer_noun,
    &cmd_device_class_noun, &cmd_device_noun,    &cmd_network_noun, &cmd_remote_noun,
};

static void usage(FILE *out)
{
    fputs("usage: turtlectl [GLOBAL OPTIONS] NOUN VERB [ARGUMENTS]\n"
          "\n"
          "Drives turtled, the Turtles nested-hypervisor host daemon, through its REST API.\n"
          "\n"
          "Nouns:\n",
          out);
    for (guint i = 0; i < G_N_ELEMENTS(nouns); i++)
        fprintf(out, "  %-13s %s\n", nouns[i]->name, nouns[i]->summary);
    fputs("\n"
          "  \"turtlectl help NOUN\" lists a noun's verbs, \"turtlectl help NOUN VERB\" a verb's\n"
          "  options (or \"--help\" after either).\n"
          "\n"
          "Global options (before the noun or after the verb):\n"
          "  --socket PATH    turtled's UNIX socket (default $TURTLES_SOCKET, else\n"
          "                   /run/turtles/turtled.sock)\n"
          "  --url URL        turtled over TCP: http://127.0.0.1:8080, https://host:8443\n"
          "  --remote NAME    a remote (turtlectl remote list; default: the remote\n"
          "                   turtlectl remote switch chose)\n"
          "  --token TOKEN    a tenant or operator token, sent as \"Authorization: Bearer\n"
          "                   TOKEN\" (default $TURTLES_TOKEN, else the remote's token)\n"
          "  --cacert FILE    trust the CA certificates (PEM) of FILE for https:// (a\n"
          "                   self-signed turtled or a private CA; default: the system's)\n"
          "  --format FORMAT  table (the default, on a terminal or not), json, yaml or csv\n"
          "  -h, --help       this help\n"
          "  --version        turtlectl's version\n"
          "\n"
          "Exit status: 0 success, 1 error (the API's message on stderr), 2 usage error.\n"
          "See turtlectl(1).\n",
          out);
}

static const CmdNoun *find_noun(const char *name)
{
    for (guint i = 0; i < G_N_ELEMENTS(nouns); i++) {
        if (strcmp(nouns[i]->name, name) == 0)
            return nouns[i];
    }
    return NULL;
}

static int unknown_noun(Ctl *ctl, const char *name)
{
    const char *names[G_N_ELEMENTS(nouns) + 1] = {NULL};
    for (guint i = 0; i < G_N_ELEMENTS(nouns); i++)
        names[i] = nouns[i]->name;
    return ctl_unknown_word(ctl, "noun", name, names);
}

static void enter_noun(Ctl *ctl, const CmdNoun *noun)
{
    ctl->noun = noun->name;
    ctl->command = noun;
    ctl->words = g_strdup(noun->name);
}

/* turtlectl help [NOUN [VERB [SUB-VERB]]] */
static int help(Ctl *ctl, int argc, char **argv)
{
    if (argc == 0) {
        usage(stdout);
        return CTL_EXIT_OK;
    }
    const CmdNoun *noun = find_noun(argv[0]);
    if (noun == NULL)
        return unknown_noun(ctl, argv[0]);
    enter_noun(ctl, noun);
    const CmdVerb *verbs = noun->verbs;
    for (int i = 1; i < argc; i++) {
        const CmdVerb *verb = verbs != NULL ? help_find_verb(verbs, argv[i]) : NULL;
        if (verb == NULL && verbs == NULL)
            return ctl_usage_error(ctl, "help: '%s' has no verbs", ctl->words);
        if (verb == NULL) {
            g_autofree const char **names = help_verb_names(verbs);
            return ctl_unknown_word(ctl, "verb", argv[i], names);
        }
        ctl_enter_verb(ctl, verb, verb->name);
        verbs = verb->verbs;
    }
    if (ctl->verb != NULL)
        help_verb(stdout, ctl->words, ctl->verb);
    else
        help_verbs(stdout, noun->name, noun->summary, noun->verbs, noun->help);
    return CTL_EXIT_OK;
}

static int run(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    int next = 0;

    if (!args_parse_globals(argc, argv, &ctl->globals, &next, &error))
        return ctl_fail(ctl, error);
    if (ctl->globals.version) {
        printf("turtlectl %s\n", TURTLES_VERSION);
        return CTL_EXIT_OK;
    }
    if (next == argc) {
        if (ctl->globals.help) {
            usage(stdout);
            return CTL_EXIT_OK;
        }
        return ctl_usage_error(ctl, "missing noun");
    }
    const char *word = argv[next];
    if (strcmp(word, "__complete") == 0)
        return complete_run(ctl, nouns, G_N_ELEMENTS(nouns), argc - next - 1, argv + next + 1);
    if (strcmp(word, "help") == 0)
        return help(ctl, argc - next - 1, argv + next + 1);
    const CmdNoun *noun = find_noun(word);
    if (noun == NULL)
        return unknown_noun(ctl, word);
    enter_noun(ctl, noun);
    return cmd_dispatch(ctl, noun->name, noun->verbs, argc - next - 1, argv + next + 1);
}

int main(int argc, char **argv)
{
    Ctl ctl;

    ctl_init(&ctl);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("turtlectl: cannot initialise libcurl\n", stderr);
        return CTL_EXIT_ERROR;
    }
    int status = run(&ctl, argc - 1, argv + 1);
    ctl_clear(&ctl);
    curl_global_cleanup();
    if (fflush(stdout) != 0 && status == CTL_EXIT_OK) {
        fprintf(stderr, "turtlectl: cannot write the output: %s\n", g_strerror(errno));
        status = CTL_EXIT_ERROR;
    }
    return status;
}
