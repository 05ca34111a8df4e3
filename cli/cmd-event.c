/* event monitor: GET /v1/events, one line per event until interrupted. */
#include "cli/commands.h"

#include <string.h>

#include "api/json.h"
#include "cli/sse.h"

void cmd_event_usage(FILE *out)
{
    fputs("usage: turtlectl event monitor\n"
          "\n"
          "  monitor  print the events turtled sends until interrupted (Ctrl-C), one per\n"
          "           line: with --format table the time, type and a summary; with json\n"
          "           each event's data as one JSON line; with yaml a document per event\n"
          "\n"
          "Events are \"operation\" (any change of an operation) and \"lifecycle\"\n"
          "(a stack's state changed).  A tenant sees its own, the operator all.\n"
          "Global options: turtlectl --help.\n",
          out);
}

/* The daemon sends a keepalive every 15 s: this much silence is a dead stream. */
#define EVENT_SILENCE_S 60

typedef struct {
    Ctl *ctl;
    SseParser *parser;
    gboolean too_long;
} Monitor;

static char *now_rfc3339(void)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    return g_date_time_format(now, "%Y-%m-%dT%H:%M:%S.%fZ");
}

/* "test.sleep test/sleep running 50% sleeping (ID)"; NULL when @data is no operation. */
static char *operation_summary(json_object *data, char **time)
{
    json_object *member = NULL;
    if (!json_object_object_get_ex(data, "operation", &member))
        return NULL;
    g_autoptr(ApiOperation) operation = api_operation_from_json(member, NULL);
    if (operation == NULL)
        return NULL;
    g_autofree char *progress = progress_format(operation, FALSE);
    *time = g_strdup(operation->updated_at);
    if (operation->error != NULL)
        return g_strdup_printf("%s %s %s: %s (%s)", operation->kind, operation->target, progress,
                               operation->error, operation->id);
    return g_strdup_printf("%s %s %s (%s)", operation->kind, operation->target, progress,
                           operation->id);
}

static void on_event(const char *type, const char *id, const char *data, gpointer user_data)
{
    Monitor *monitor = user_data;
    g_autoptr(json_object) value = api_json_parse(data, strlen(data), API_JSON_MAX_DEPTH, NULL);
    (void)id;

    switch (monitor->ctl->format) {
    case OUTPUT_JSON:
        if (value != NULL)
            output_json_line(stdout, value);
        else
            puts(data); /* not ours to fix: show it as it came */
        break;
    case OUTPUT_YAML:
        fputs("---\n", stdout);
        if (value != NULL)
            output_yaml(stdout, value);
        else
            printf("%s\n", data);
        break;
    case OUTPUT_TABLE: {
        g_autofree char *time = NULL;
        g_autofree char *summary = value != NULL ? operation_summary(value, &time) : NULL;
        if (summary == NULL)
            summary = value != NULL
                          ? g_strdup(json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN))
                          : g_strdup(data);
        if (time == NULL)
            time = now_rfc3339();
        printf("%-27s  %-9s  %s\n", time, type, summary);
        break;
    }
    }
    /* Someone is watching, or a pipe is: every event goes out at once. */
    fflush(stdout);
}

static gboolean on_data(const char *data, gsize len, gpointer user_data)
{
    Monitor *monitor = user_data;
    if (!sse_parser_feed(monitor->parser, data, len)) {
        monitor->too_long = TRUE;
        return FALSE;
    }
    return TRUE;
}

static int event_monitor(Ctl *ctl, int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "monitor", argc, argv, NULL, NULL, NULL, &status))
        return status;
    if (!ctl_connect(ctl, &error))
        return ctl_fail(ctl, error);

    Monitor monitor = {.ctl = ctl};
    monitor.parser = sse_parser_new(on_event, &monitor);
    if (ctl->format == OUTPUT_TABLE) {
        printf("%-27s  %-9s  %s\n", "TIME", "TYPE", "SUMMARY");
        fflush(stdout);
    }
    gboolean ok = client_stream(ctl->client, "/v1/events", "text/event-stream", EVENT_SILENCE_S,
                                on_data, &monitor, &error);
    sse_parser_free(monitor.parser);
    if (!ok)
        return ctl_fail(ctl, error);
    if (monitor.too_long)
        fprintf(stderr, "turtlectl: the event stream sent a line longer than %d bytes\n",
                SSE_MAX_LINE);
    else
        fprintf(stderr, "turtlectl: turtled at %s ended the event stream\n",
                client_target(ctl->client));
    return CTL_EXIT_ERROR;
}

int cmd_event(Ctl *ctl, int argc, char **argv)
{
    static const CmdVerb verbs[] = {{"monitor", event_monitor}, {NULL, NULL}};
    return cmd_dispatch(ctl, "event", verbs, argc, argv);
}
