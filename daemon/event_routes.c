/* GET /v1/events: Server-Sent Events, each caller seeing what it may. */
#include <string.h>

#include "daemon/app.h"
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
    g_autofree char *tenant = token_lookup(stream->store, stream->token);
    return g_strcmp0(tenant, stream->tenant) == 0;
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

HttpReply *handle_events(gpointer data, const HttpRequest *request)
{
    App *app = data;
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
    http_reply_add_header(reply, "Cache-Control", "no-cache");
    return reply;
}
