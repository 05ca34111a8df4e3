/* event monitor: GET /v1/events, one line per event until interrupted. */
#include "cli/commands.h"

#include <string.h>

#include "api/json.h"
#include "cli/sse.h"

/* The daemon sends a keepalive every 15 s: this much silence is a dead stream. */
#define EVENT_SILENCE_S 60
/* A dropped stream is resumed this often, this long apart, before giving up
 * (the count starts again once an event came through). */
#define EVENT_RECONNECTS     10
#define EVENT_RECONNECT_WAIT 3

typedef struct {
    Ctl *ctl;
    SseParser *parser;
    gboolean too_long;
    char *last_id; /* of the last event printed: where a reconnect resumes */
    gboolean got_event;
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

/* One line of the monitor's table: aligned as a table, or a CSV record
 * (the events come one at a time, so the columns cannot be measured). */
static void print_event_row(const Ctl *ctl, const char *time, const char *type, const char *summary)
{
    if (ctl->format == OUTPUT_CSV) {
        g_autoptr(OutputTable) row = output_table_new(NULL, 3);
        output_table_add(row, time, type, summary);
        output_table_print(row, stdout);
        return;
    }
    printf("%-27s  %-9s  %s\n", time, type, summary);
}

static void on_event(const char *type, const char *id, const char *data, gpointer user_data)
{
    Monitor *monitor = user_data;
    g_autoptr(json_object) value = api_json_parse(data, strlen(data), API_JSON_MAX_DEPTH, NULL);

    if (id != NULL && *id != '\0') {
        g_free(monitor->last_id);
        monitor->last_id = g_strdup(id);
    }
    monitor->got_event = TRUE;

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
    case OUTPUT_TABLE:
    case OUTPUT_CSV: {
        g_autofree char *time = NULL;
        g_autofree char *summary = value != NULL ? operation_summary(value, &time) : NULL;
        if (summary == NULL)
            summary = value != NULL
                          ? g_strdup(json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN))
                          : g_strdup(data);
        if (time == NULL)
            time = now_rfc3339();
        print_event_row(monitor->ctl, time, type, summary);
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

/* One connection: the stream from after @monitor->last_id (or live). */
static gboolean monitor_stream(Monitor *monitor, GError **error)
{
    g_autoptr(GString) path = g_string_new("/v1/events");
    cmd_query_append(path, "after", monitor->last_id);
    monitor->parser = sse_parser_new(on_event, monitor);
    gboolean ok = client_stream(monitor->ctl->client, path->str, "text/event-stream",
                                EVENT_SILENCE_S, on_data, monitor, error);
    g_clear_pointer(&monitor->parser, sse_parser_free);
    return ok;
}

static int event_monitor(Ctl *ctl, int argc, char **argv)
{
    const char *after = NULL;
    const ArgSpec specs[] = {
        {"--after", ARG_STRING, 0, 0, &after, NULL},
        {NULL, ARG_FLAG, 0, 0, NULL, NULL},
    };
    g_autoptr(GError) error = NULL;
    int status = CTL_EXIT_OK;

    if (!cmd_parse(ctl, "monitor", argc, argv, specs, NULL, NULL, &status))
        return status;
    if (!ctl_connect(ctl, &error))
        return ctl_fail(ctl, error);

    Monitor monitor = {.ctl = ctl, .last_id = g_strdup(after)};
    if (ctl->format == OUTPUT_TABLE || ctl->format == OUTPUT_CSV) {
        print_event_row(ctl, "TIME", "TYPE", "SUMMARY");
        fflush(stdout);
    }
    for (guint tries = 0;; tries++) {
        monitor.got_event = FALSE;
        g_clear_error(&error);
        gboolean ended = monitor_stream(&monitor, &error);
        if (monitor.too_long) {
            fprintf(stderr, "turtlectl: the event stream sent a line longer than %d bytes\n",
                    SSE_MAX_LINE);
            break;
        }
        /* An answer (410: the events after ours are gone; 401: the token
         * was revoked) is final; a stream that ends or a turtled that cannot
         * be reached (it restarts) is resumed. */
        if (!ended && !g_error_matches(error, CLIENT_ERROR, CLIENT_ERROR_UNREACHABLE)) {
            g_free(monitor.last_id);
            return ctl_fail(ctl, error);
        }
        if (monitor.got_event)
            tries = 0;
        if (tries >= EVENT_RECONNECTS) {
            fprintf(stderr, "turtlectl: gave up on the event stream from %s after %d tries%s%s\n",
                    client_target(ctl->client), EVENT_RECONNECTS, error ? ": " : "",
                    error ? error->message : "");
            break;
        }
        fprintf(stderr, "turtlectl: the event stream from %s %s; resuming %s%s in %d s\n",
                client_target(ctl->client), ended ? "ended" : "dropped",
                monitor.last_id ? "after event " : "live", monitor.last_id ? monitor.last_id : "",
                EVENT_RECONNECT_WAIT);
        g_usleep(EVENT_RECONNECT_WAIT * G_USEC_PER_SEC);
    }
    g_free(monitor.last_id);
    return CTL_EXIT_ERROR;
}

static const CmdVerb event_verbs[] = {
    {"monitor", event_monitor, "[--after ID]", "print the events turtled sends until interrupted",
     "Prints each event as it comes, until interrupted (Ctrl-C): with --format\n"
     "table (the default) a line of time, type and summary; with json each\n"
     "event's data as one JSON line; with yaml a document per event.\n"
     "\n"
     "When the stream drops (turtled restarts), monitor says so on stderr,\n"
     "reconnects and resumes after the last event it printed, so that none is\n"
     "lost or shown twice; it gives up after 10 tries 3 s apart with no event\n"
     "(exit 1).  If turtled no longer keeps the events it missed, it says so\n"
     "and exits 1.\n"
     "\n"
     "Options:\n"
     "  --after ID  first replay the events after event ID that turtled still\n"
     "              keeps (its event_ring), then go on live",
     NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

const CmdNoun cmd_event_noun = {
    "event",
    "the event stream",
    event_verbs,
    "Events are \"operation\" (any change of an operation) and \"lifecycle\"\n"
    "(libvirt reported a change of a stack's domain).  A tenant sees its own,\n"
    "the operator all.",
};
