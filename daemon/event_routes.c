/* GET /v1/events: Server-Sent Events, each caller seeing what it may. */
#include <string.h>

#include "daemon/app.h"
#include "daemon/error.h"
#include "daemon/events.h"
#include "daemon/tokens.h"

#define EVENTS_KEEPALIVE_US (15 * G_USEC_PER_SEC)

typedef struct {
    Store *store;
    char *token; /* the tenant's token, re-checked while the stream lives */
    char *tenant;
    EventSubscription *subscription;
    GString *pending; /* SSE text not yet handed to the client */
    gsize offset;
    gint64 last_write; /* monotonic µs */
} EventStream;

static void event_stream_free(gpointer data)
{
    EventStream *stream = data;
    event_subscription_free(stream->subscription);
    g_free(stream->token);
    g_free(stream->tenant);
    g_string_free(stream->pending, TRUE);
    g_free(stream);
}

/* A revoked token ends its streams too, not only its next request. */
static gboolean event_stream_authorized(const EventStream *stream)
{
    if (stream->token == NULL)
        return TRUE;
    return token_still_valid(stream->store, stream->token, stream->tenant);
}

static gssize event_stream_read(gpointer data, char *buf, gsize max)
{
    EventStream *stream = data;

    if (stream->offset == stream->pending->len) {
        gboolean ended = FALSE;
        g_autofree char *text = event_subscription_next(stream->subscription, 0, &ended);
        /* Checked before every write: an event that arrives just after a
         * revocation must not go out. */
        if (ended || !event_stream_authorized(stream))
            return -1;
        g_string_truncate(stream->pending, 0);
        stream->offset = 0;
        if (text != NULL)
            g_string_append(stream->pending, text);
        else if (g_get_monotonic_time() - stream->last_write > EVENTS_KEEPALIVE_US)
            g_string_append(stream->pending, ": keepalive\n\n"); /* proxies drop idle streams */
        else
            return 0;
    }
    gsize n = MIN(max, stream->pending->len - stream->offset);
    memcpy(buf, stream->pending->str + stream->offset, n);
    stream->offset += n;
    stream->last_write = g_get_monotonic_time();
    return (gssize)n;
}

static void wake_stream(gpointer unused, gpointer waker)
{
    (void)unused;
    http_waker_wake(waker);
}

/* An event id as a client sends it back: decimal digits only. */
static gboolean parse_cursor(const char *name, const char *text, gint64 *cursor, GError **error)
{
    gsize len = strlen(text);
    gboolean ok = len > 0 && len <= 19; /* G_MAXINT64 has 19 digits */

    for (gsize i = 0; ok && i < len; i++)
        ok = g_ascii_isdigit(text[i]);
    guint64 value = ok ? g_ascii_strtoull(text, NULL, 10) : 0;
    if (!ok || value > G_MAXINT64) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "%s: must be the id of an event (a non-negative integer)", name);
        return FALSE;
    }
    *cursor = (gint64)value;
    return TRUE;
}

/* Where the stream resumes: *@name is NULL without a cursor.  Both are
 * checked when both are given, and the header wins: a browser's EventSource
 * reconnects to the URL it was given, ?after= and all, and says in
 * Last-Event-ID where it really is. */
static gboolean events_cursor(const HttpRequest *request, const char **name, gint64 *cursor,
                              GError **error)
{
    const char *header = http_request_header(request, "Last-Event-ID");
    const char *after = http_request_query(request, "after");

    *name = NULL;
    if (after != NULL) {
        if (!parse_cursor("after", after, cursor, error))
            return FALSE;
        *name = "after";
    }
    if (header != NULL) {
        if (!parse_cursor("Last-Event-ID", header, cursor, error))
            return FALSE;
        *name = "Last-Event-ID";
    }
    return TRUE;
}

HttpReply *handle_events(gpointer data, const HttpRequest *request)
{
    App *app = data;
    g_autoptr(GError) error = NULL;
    const char *cursor_name = NULL;
    gint64 cursor = 0;
    if (!events_cursor(request, &cursor_name, &cursor, &error))
        return http_reply_error(error);

    EventStream *stream = g_new0(EventStream, 1);
    const char *tenant =
        request->caller->role == HTTP_CALLER_TENANT ? request->caller->tenant : NULL;

    stream->store = app->store;
    stream->token = g_strdup(request->caller->token);
    stream->tenant = g_strdup(tenant);
    /* The first bytes tell the client the stream is live and how to retry. */
    stream->pending = g_string_new("retry: 3000\n\n");
    stream->last_write = g_get_monotonic_time();
    HttpReply *reply =
        http_reply_stream(200, "text/event-stream", event_stream_read, stream, event_stream_free);
    /* A published event wakes the stream, which waits for nothing itself. */
    stream->subscription =
        event_bus_subscribe(app->events, tenant, (GFunc)wake_stream, http_reply_waker(reply),
                            (GDestroyNotify)http_waker_unref);
    /* Refused before the stream starts: once it has, only a status line
     * could say "resync", and there is none left to send. */
    if (cursor_name != NULL && !event_subscription_resume(stream->subscription, cursor, &error)) {
        http_reply_free(reply);
        g_prefix_error(&error, "%s: ", cursor_name);
        return http_reply_error(error);
    }
    http_reply_add_header(reply, "Cache-Control", "no-cache");
    return reply;
}
