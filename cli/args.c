#include "cli/args.h"

#include <string.h>

#include "cli/output.h"
#include "cli/suggest.h"

#define GLOBAL_SPECS 9

const char args_global_synopsis[] =
    "[--remote REMOTE] [--socket PATH] [--url URL] [--token TOKEN] [--cacert FILE] "
    "[--format table|json|yaml|csv] [--help] [--version]";

gboolean args_usage_error(GError **error, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    g_autofree char *message = g_strdup_vprintf(format, args);
    va_end(args);
    g_set_error_literal(error, CTL_ERROR, CTL_ERROR_USAGE, message);
    return FALSE;
}

/* The global options as a spec table over @globals. */
static void global_specs(CtlGlobals *globals, ArgSpec specs[GLOBAL_SPECS])
{
    const ArgSpec table[] = {
        {"--remote", ARG_STRING, 0, 0, &globals->remote, NULL},
        {"--socket", ARG_STRING, 0, 0, &globals->socket, NULL},
        {"--url", ARG_STRING, 0, 0, &globals->url, NULL},
        {"--token", ARG_STRING, 0, 0, &globals->token, NULL},
        {"--cacert", ARG_STRING, 0, 0, &globals->cacert, NULL},
        {"--format", ARG_STRING, 0, 0, &globals->format, NULL},
        {"--help", ARG_FLAG, 0, 0, &globals->help, NULL},
        {"--version", ARG_FLAG, 0, 0, &globals->version, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    memcpy(specs, table, sizeof(table));
}

static const ArgSpec *find_spec(const ArgSpec *specs, const char *name)
{
    for (guint i = 0; specs != NULL && specs[i].name != NULL; i++) {
        if (strcmp(specs[i].name, name) == 0)
            return &specs[i];
    }
    return NULL;
}

static gboolean store_value(const ArgSpec *spec, const char *value, GError **error)
{
    switch (spec->kind) {
    case ARG_FLAG:
        *(gboolean *)spec->out = TRUE;
        break;
    case ARG_STRING:
        if (*value == '\0')
            return args_usage_error(error, "%s: needs a value", spec->name);
        *(const char **)spec->out = value;
        break;
    case ARG_STRINGS:
        if (*value == '\0')
            return args_usage_error(error, "%s: needs a value", spec->name);
        g_ptr_array_add(spec->out, (gpointer)value);
        break;
    case ARG_INT: {
        gint64 number = 0;
        if (!g_ascii_string_to_signed(value, 10, spec->min, spec->max, &number, NULL))
            return args_usage_error(error,
                                    "%s: must be a whole number between %" G_GINT64_FORMAT
                                    " and %" G_GINT64_FORMAT " (not '%s')",
                                    spec->name, spec->min, spec->max, value);
        *(gint64 *)spec->out = number;
        break;
    }
    }
    if (spec->seen != NULL)
        *spec->seen = TRUE;
    return TRUE;
}

/* "unknown option", with the closest of the verb's and the global options. */
static gboolean unknown_option(const char *name, const ArgSpec *specs, const ArgSpec *globals,
                               GError **error)
{
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    for (guint i = 0; specs != NULL && specs[i].name != NULL; i++)
        g_ptr_array_add(names, (gpointer)specs[i].name);
    for (guint i = 0; globals[i].name != NULL; i++)
        g_ptr_array_add(names, (gpointer)globals[i].name);
    g_ptr_array_add(names, NULL);
    const char *closest = suggest_closest(name, (const char *const *)names->pdata);
    if (closest != NULL)
        return args_usage_error(error, "unknown option '%s'; did you mean '%s'?", name, closest);
    return args_usage_error(error, "unknown option '%s'", name);
}

/* One option at argv[*i]; *i moves past its value. */
static gboolean parse_option(int argc, char **argv, int *i, const ArgSpec *specs,
                             const ArgSpec *globals, GError **error)
{
    const char *arg = argv[*i];
    const char *equals = strchr(arg, '=');
    g_autofree char *name = equals != NULL ? g_strndup(arg, (gsize)(equals - arg)) : g_strdup(arg);

    if (strcmp(name, "-h") == 0) {
        g_free(name);
        name = g_strdup("--help");
    }
    const ArgSpec *spec = find_spec(specs, name);
    if (spec == NULL)
        spec = find_spec(globals, name);
    if (spec == NULL)
        return unknown_option(name, specs, globals, error);

    const char *value = NULL;
    if (spec->kind == ARG_FLAG) {
        if (equals != NULL)
            return args_usage_error(error, "%s takes no value", name);
    } else if (equals != NULL) {
        value = equals + 1;
    } else if (*i + 1 < argc) {
        value = argv[++*i];
    } else {
        return args_usage_error(error, "%s needs a value", name);
    }
    return store_value(spec, value, error);
}

static gboolean check_globals(const CtlGlobals *globals, GError **error)
{
    OutputFormat format;
    if (globals->format != NULL && !output_format_parse(globals->format, &format))
        return args_usage_error(error, "--format: must be table, json, yaml or csv (not '%s')",
                                globals->format);
    return TRUE;
}

static gboolean is_option(const char *arg)
{
    return arg[0] == '-' && arg[1] != '\0';
}

gboolean args_parse(int argc, char **argv, const ArgSpec *specs, CtlGlobals *globals,
                    GPtrArray *positional, GError **error)
{
    ArgSpec global_table[GLOBAL_SPECS];
    global_specs(globals, global_table);

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            for (i++; i < argc; i++)
                g_ptr_array_add(positional, argv[i]);
            break;
        }
        if (!is_option(argv[i])) {
            g_ptr_array_add(positional, argv[i]);
            continue;
        }
        if (!parse_option(argc, argv, &i, specs, global_table, error))
            return FALSE;
    }
    return check_globals(globals, error);
}

gboolean args_parse_globals(int argc, char **argv, CtlGlobals *globals, int *next, GError **error)
{
    ArgSpec global_table[GLOBAL_SPECS];
    global_specs(globals, global_table);

    int i = 0;
    for (; i < argc && is_option(argv[i]); i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (!parse_option(argc, argv, &i, NULL, global_table, error))
            return FALSE;
    }
    *next = i;
    return check_globals(globals, error);
}
