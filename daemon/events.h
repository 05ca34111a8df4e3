/* The event bus behind GET /v1/events: services publish lifecycle and
 * operation events; each subscriber sees only what it may (a tenant its own,
 * the operator everything) as Server-Sent Events text.  Every event is also
 * kept in the store's ring (store_events.h), whose row id is its SSE id, so
 * that a subscription can resume after the last event a client saw. */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#include "daemon/store.h"

/* A subscriber that falls this far behind is dropped rather than growing. */
#define EVENTS_MAX_BACKLOG 1024
/* Events a resuming subscription reads from the store at a time. */
#define EVENTS_REPLAY_PAGE 100

typedef struct EventBus EventBus;
typedef struct EventSubscription EventSubscription;

/* @store (borrowed, must outlive the bus) keeps the @ring newest events. */
EventBus *event_bus_new(Store *store, guint ring);
/* Ends every subscription (their readers see the end) and frees the bus once
 * the last subscription is gone. */
void event_bus_free(EventBus *bus);

/* @type: "lifecycle" or "operation".  @tenant: the owner, or NULL for events
 * only the operator sees.  @data is borrowed.  Keeps the event in the store
 * and sends it with its row id; when the store cannot keep it, the event is
 * logged and still sent live, without an id (a client's cursor stays on the
 * last event it could resume after). */
void event_bus_publish(EventBus *bus, const char *type, const char *tenant, json_object *data);

/* @tenant NULL subscribes the operator (every event).  @notify (optional)
 * runs, on the publisher's thread and with no lock held, after an event was
 * queued for this subscription or the subscription ended; @notify_data is
 * freed with @notify_free when the subscription is. */
EventSubscription *event_bus_subscribe(EventBus *bus, const char *tenant, GFunc notify,
                                       gpointer notify_data, GDestroyNotify notify_free);
/* Called once, before the first event_subscription_next: the subscription
 * first replays the kept events after @after (an SSE id the client saw) that
 * it may see, oldest first, then goes on with the live ones, none missing
 * and none twice.  BAD_REQUEST when @after is past the newest event, GONE
 * when events after it were trimmed from the ring. */
gboolean event_subscription_resume(EventSubscription *subscription, gint64 after, GError **error);
/* The next event as SSE text ("id: N\nevent: ...\ndata: ...\n\n"), or NULL
 * when none came within @timeout_ms (0: do not wait).  *ended is set when the
 * subscription is over; a replay that fails (the ring overtook it, or the
 * store failed) ends it, and the client resumes again. */
char *event_subscription_next(EventSubscription *subscription, guint timeout_ms, gboolean *ended);
void event_subscription_free(EventSubscription *subscription);
