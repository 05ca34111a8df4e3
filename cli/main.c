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
#include "cli/ctl.h"

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(Ctl *ctl, int argc, char **argv);
    CtlUsageFunc usage;
} Noun;

static const Noun nouns[] = {
    {"host", "the host's virtualization capabilities (operator)", cmd_host, cmd_host_usage},
    {"tenant", "tenants and their quotas (operator)", cmd_tenant, cmd_tenant_usage},
    {"token", "tenants' API tokens (operator)", cmd_token, cmd_token_usage},
    {"image", "kernels, initrds and disks to boot stacks from", cmd_image, cmd_image_usage},
    {"stack", "L1 guests: create, act on, watch, delete", cmd_stack, cmd_stack_usage},
    {"operation", "long-running work: show, wait, cancel", cmd_operation, cmd_operation_usage},
    {"event", "the event stream", cmd_event, cmd_event_usage},
    {"peer", "other hosts that stacks migrate to (operator)", cmd_peer, cmd_peer_usage},
    {"device-class", "pools of devices that stacks ask for (operator)", cmd_device_class,
     cmd_device_class_usage},
    {"device", "the devices of the pools and the stacks holding them", cmd_device,
     cmd_device_usage},
    {"network", "networks that stacks' NICs join", cmd_network, cmd_network_usage},
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
        fprintf(out, "  %-13s %s\n", nouns[i].name, nouns[i].summary);
    fputs("\n"
          "  \"turtlectl NOUN --help\" lists a noun's verbs.\n"
          "\n"
          "Global options (before the noun or after the verb):\n"
          "  --socket PATH    turtled's UNIX socket (default $TURTLES_SOCKET, else\n"
          "                   /run/turtles/turtled.sock)\n"
          "  --url URL        turtled over TCP: http://127.0.0.1:8080, https://host:8443\n"
          "  --remote NAME    a remote of ~/.config/turtles/config.ini or\n"
          "                   /etc/turtles/turtlectl.ini ([remote \"NAME\"]: url, socket, token)\n"
          "  --token TOKEN    a tenant token, sent as \"Authorization: Bearer TOKEN\"\n"
          "                   (default $TURTLES_TOKEN, else the remote's token)\n"
          "  --format FORMAT  table, json or yaml (default: table on a terminal, else json)\n"
          "  -h, --help       this help\n"
          "  --version        turtlectl's version\n"
          "\n"
          "Exit status: 0 success, 1 error (the API's message on stderr), 2 usage error.\n"
          "See turtlectl(1).\n",
          out);
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
    const char *noun = argv[next];
    for (guint i = 0; i < G_N_ELEMENTS(nouns); i++) {
        if (strcmp(nouns[i].name, noun) == 0) {
            ctl->noun = nouns[i].name;
            ctl->usage = nouns[i].usage;
            return nouns[i].run(ctl, argc - next - 1, argv + next + 1);
        }
    }
    return ctl_usage_error(ctl, "unknown noun '%s'", noun);
}

int main(int argc, char **argv)
{
    Ctl ctl;

    ctl_init(&ctl);
    ctl.usage = usage;
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
