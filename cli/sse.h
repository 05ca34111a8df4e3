/* A Server-Sent Events parser (the WHATWG event-stream format): fed chunks
 * as they arrive, it calls back once per complete event. */
#pragma once

#include <glib.h>

/* Lines longer than this end the stream: nothing of ours is near it. */
#define SSE_MAX_LINE (4 * 1024 * 1024)

/* @type is "message" unless the event named one; @id may be NULL; @data is
 * the data lines joined by "\n".  Events without data are not reported. */
typedef void (*SseEventFunc)(const char *type, const char *id, const char *data,
                             gpointer user_data);

typedef struct SseParser SseParser;

SseParser *sse_parser_new(SseEventFunc on_event, gpointer user_data);
void sse_parser_free(SseParser *parser);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SseParser, sse_parser_free)

/* FALSE once a line grew past SSE_MAX_LINE (the rest is ignored). */
gboolean sse_parser_feed(SseParser *parser, const char *data, gsize len);
