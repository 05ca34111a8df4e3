/* The event bus behind GET /v1/events: services publish lifecycle and
 * operation events; each subscriber sees only what it may (a tenant its own,
 * the operator everything) as Server-Sent Events text. */
#pragma once

#include <glib.h>
#include <json-c/json.h>

/* A subscriber that falls this far behind is dropped rather than growing. */
#define EVENTS_MAX_BACKLOG 1024

typedef struct EventBus EventBus;
typedef struct EventSubscription EventSubscription;

EventBus *event_bus_new(void);
/* Ends every subscription (their readers see the end) and frees the bus once
 * the last subscription is gone. */
void event_bus_free(EventBus *bus);

/* @type: "lifecycle" or "operation".  @tenant: the owner, or NULL for events
 * only the operator sees.  @data is borrowed. */
void event_bus_publish(EventBus *bus, const char *type, const char *tenant, json_object *data);

/* @tenant NULL subscribes the operator (every event).  @notify (optional)
 * runs, on the publisher's thread and with no lock held, after an event was
 * queued for this subscription or the subscription ended; @notify_data is
 * freed with @notify_free when the subscription is. */
EventSubscription *event_bus_subscribe(EventBus *bus, const char *tenant, GFunc notify,
                                       gpointer notify_data, GDestroyNotify notify_free);
/* The next event as SSE text ("event: ...\ndata: ...\n\n"), or NULL when none
 * came within @timeout_ms (0: do not wait).  *ended is set when the
 * subscription is over. */
char *event_subscription_next(EventSubscription *subscription, guint timeout_ms, gboolean *ended);
void event_subscription_free(EventSubscription *subscription);
