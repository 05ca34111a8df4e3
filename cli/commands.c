/* What every noun shares: verb dispatch, argument checks, one request. */
#include "cli/commands.h"

#include <string.h>

int cmd_dispatch(Ctl *ctl, const char *noun, const CmdVerb *verbs, int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    int next = 0;

    /* Global options may sit between the noun and the verb too. */
    if (!args_parse_globals(argc, argv, &ctl->globals, &next, &error))
        return ctl_fail(ctl, error);
    if (ctl->globals.help) {
        ctl->usage(stdout);
        return CTL_EXIT_OK;
    }
    if (next == argc)
        return ctl_usage_error(ctl, "%s: missing verb", noun);
    for (guint i = 0; verbs[i].name != NULL; i++) {
        if (strcmp(verbs[i].name, argv[next]) == 0)
            return verbs[i].run(ctl, argc - next, argv + next);
    }
    return ctl_usage_error(ctl, "%s: unknown verb '%s'", noun, argv[next]);
}

gboolean cmd_parse(Ctl *ctl, const char *verb, int argc, char **argv, const ArgSpec *specs,
                   const char *const *names, GPtrArray **positional, int *status)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    guint most = names != NULL ? g_strv_length((char **)names) : 0;
    guint least = 0;

    while (least < most && names[least][0] != '[')
        least++;
    if (!args_parse(argc - 1, argv + 1, specs, &ctl->globals, args, &error)) {
        g_prefix_error(&error, "%s %s: ", ctl->noun, verb);
        *status = ctl_fail(ctl, error);
        return FALSE;
    }
    if (ctl->globals.help) {
        ctl->usage(stdout);
        *status = CTL_EXIT_OK;
        return FALSE;
    }
    if (args->len < least) {
        *status = ctl_usage_error(ctl, "%s %s: missing %s", ctl->noun, verb, names[args->len]);
        return FALSE;
    }
    if (args->len > most) {
        *status = ctl_usage_error(ctl, "%s %s: unexpected argument '%s'", ctl->noun, verb,
                                  (const char *)g_ptr_array_index(args, most));
        return FALSE;
    }
    if (positional != NULL)
        *positional = g_steal_pointer(&args);
    return TRUE;
}

gboolean cmd_call(Ctl *ctl, const char *method, const char *path, json_object *request,
                  json_object **body, int *status)
{
    g_autoptr(GError) error = NULL;

    if (ctl->client == NULL && !ctl_connect(ctl, &error)) {
        *status = ctl_fail(ctl, error);
        return FALSE;
    }
    if (!ctl_request(ctl, method, path, request, body, &error)) {
        *status = ctl_fail(ctl, error);
        return FALSE;
    }
    return TRUE;
}
