/* turtled: the Turtles host daemon. */
#include <stdio.h>
#include <stdlib.h>

#include "api/json.h"
#include "daemon/convert.h"
#include "hvcore/probe.h"

#define TURTLED_DEFAULT_CONFIG "/etc/turtles/turtled.conf"

typedef struct {
    char *config;
    char *state_dir;
    char *socket;
    char *listen;
    char *libvirt_uri;
    char *backend;
    gboolean probe;
    gboolean version;
} Options;

static void options_clear(Options *options)
{
    g_free(options->config);
    g_free(options->state_dir);
    g_free(options->socket);
    g_free(options->listen);
    g_free(options->libvirt_uri);
    g_free(options->backend);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Options, options_clear)

static int run_probe(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(HvHostReport) report = hv_probe_host("/", &hv_kvm_system_ops, &error);
    if (!report) {
        fprintf(stderr, "turtled: probe failed: %s\n", error->message);
        return 1;
    }
    g_autoptr(ApiHost) host = convert_host_report(report);
    g_autoptr(json_object) json = api_host_to_json(host);
    printf("%s\n", json_object_to_json_string_ext(json, JSON_C_TO_STRING_PRETTY |
                                                            JSON_C_TO_STRING_SPACED |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE));
    return 0;
}

int main(int argc, char **argv)
{
    g_auto(Options) options = {0};
    GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &options.config,
         "configuration file (default " TURTLED_DEFAULT_CONFIG ")", "FILE"},
        {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &options.state_dir, "state directory", "DIR"},
        {"socket", 0, 0, G_OPTION_ARG_FILENAME, &options.socket, "UNIX socket of the API", "PATH"},
        {"listen", 0, 0, G_OPTION_ARG_STRING, &options.listen, "also serve on TCP", "ADDR:PORT"},
        {"libvirt-uri", 0, 0, G_OPTION_ARG_STRING, &options.libvirt_uri, "libvirt connection URI",
         "URI"},
        {"backend", 0, 0, G_OPTION_ARG_STRING, &options.backend, "auto, kvm, tcg or test", "B"},
        {"probe", 0, 0, G_OPTION_ARG_NONE, &options.probe,
         "print the host capability report as JSON and exit", NULL},
        {"version", 0, 0, G_OPTION_ARG_NONE, &options.version, "print the version and exit", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) context = g_option_context_new("- Turtles nested-hypervisor host daemon");
    g_autoptr(GError) error = NULL;

    g_option_context_add_main_entries(context, entries, NULL);
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        fprintf(stderr, "turtled: %s (see turtled --help)\n", error->message);
        return 2;
    }
    if (argc > 1) {
        fprintf(stderr, "turtled: unexpected argument '%s' (see turtled --help)\n", argv[1]);
        return 2;
    }
    if (options.version) {
        printf("turtled %s\n", TURTLES_VERSION);
        return 0;
    }
    if (options.probe)
        return run_probe();

    /* Honest about what is not there yet: the API server is its own issue. */
    fprintf(stderr, "turtled: the API server is not built yet; only --probe and --version work\n");
    return 1;
}
