/* turtlectl: the Turtles CLI for operators and tenants.  It speaks only HTTP
 * to turtled; the verbs arrive with the API they drive. */
#include <stdio.h>
#include <string.h>

#include <glib.h>

static void usage(FILE *out)
{
    fputs("usage: turtlectl [--version] [--help]\n"
          "\n"
          "turtlectl drives turtled's REST API.  The nouns (host, tenant, token, image, stack,\n"
          "operation, event, peer) are not built yet: they land with the API server.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("turtlectl %s\n", TURTLES_VERSION);
        return 0;
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
