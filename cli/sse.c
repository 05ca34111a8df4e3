#include "cli/sse.h"

#include <string.h>

struct SseParser {
    SseEventFunc on_event;
    gpointer user_data;
    GString *line;
    GString *data;
    char *type;
    char *id;
    gboolean after_cr; /* a "\r\n" may straddle two chunks */
    gboolean broken;
};

SseParser *sse_parser_new(SseEventFunc on_event, gpointer user_data)
{
    SseParser *parser = g_new0(SseParser, 1);
    parser->on_event = on_event;
    parser->user_data = user_data;
    parser->line = g_string_new(NULL);
    parser->data = g_string_new(NULL);
    return parser;
}

void sse_parser_free(SseParser *parser)
{
    if (parser == NULL)
        return;
    g_string_free(parser->line, TRUE);
    g_string_free(parser->data, TRUE);
    g_free(parser->type);
    g_free(parser->id);
    g_free(parser);
}

static void dispatch(SseParser *parser)
{
    if (parser->data->len > 0) {
        g_string_truncate(parser->data, parser->data->len - 1); /* the last "\n" */
        parser->on_event(parser->type != NULL ? parser->type : "message", parser->id,
                         parser->data->str, parser->user_data);
    }
    g_string_truncate(parser->data, 0);
    g_clear_pointer(&parser->type, g_free);
    /* The id stays: it is the stream's last event id, not the event's. */
}

static void process_line(SseParser *parser, const char *line)
{
    if (*line == '\0') {
        dispatch(parser);
        return;
    }
    if (*line == ':') /* a comment: keepalives */
        return;
    const char *colon = strchr(line, ':');
    g_autofree char *field =
        colon != NULL ? g_strndup(line, (gsize)(colon - line)) : g_strdup(line);
    const char *value = colon != NULL ? colon + 1 : "";
    if (*value == ' ')
        value++;

    if (strcmp(field, "data") == 0) {
        g_string_append(parser->data, value);
        g_string_append_c(parser->data, '\n');
    } else if (strcmp(field, "event") == 0) {
        g_free(parser->type);
        parser->type = g_strdup(value);
    } else if (strcmp(field, "id") == 0) {
        g_free(parser->id);
        parser->id = g_strdup(value);
    }
    /* "retry" and unknown fields: nothing for us to do. */
}

gboolean sse_parser_feed(SseParser *parser, const char *data, gsize len)
{
    for (gsize i = 0; i < len && !parser->broken; i++) {
        char c = data[i];
        if (c == '\n' && parser->after_cr) {
            parser->after_cr = FALSE;
            continue;
        }
        parser->after_cr = c == '\r';
        if (c == '\r' || c == '\n') {
            process_line(parser, parser->line->str);
            g_string_truncate(parser->line, 0);
        } else if (parser->line->len >= SSE_MAX_LINE) {
            parser->broken = TRUE;
        } else {
            g_string_append_c(parser->line, c);
        }
    }
    return !parser->broken;
}
