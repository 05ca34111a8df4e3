/* The event ring: the newest events of GET /v1/events kept in the store, so
 * that a client that reconnects with the id of the last event it saw
 * (Last-Event-ID) gets what it missed.  Ids are the SSE ids: they increase
 * across restarts and are never reused. */
#pragma once

#include <glib.h>

#include "daemon/store.h"

typedef struct {
    gint64 id;
    char *type; /* "lifecycle", "operation" */
    char *data; /* the event's JSON text */
} StoreEvent;

void store_event_free(StoreEvent *event);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreEvent, store_event_free)

/* Keeps an event of @tenant (NULL, or a name no tenant has: the operator's
 * only) and trims the ring to its @ring newest, in one short transaction of
 * its own; INTERNAL when called inside an open transaction, which could
 * still roll the event back after its id went out.  Returns the event's id,
 * or 0 on error. */
gint64 store_event_append(Store *store, const char *type, const char *tenant, const char *data,
                          const char *created_at, guint ring, GError **error);

/* Checks a client's cursor @after (the id of the last event it saw):
 * BAD_REQUEST past the newest event ever kept, GONE when events after it
 * were trimmed already (the client has to resync).  *@newest (may be NULL)
 * is the newest id, 0 before the first event. */
gboolean store_event_check_cursor(Store *store, gint64 after, gint64 *newest, GError **error);

/* Of StoreEvent, oldest first: at most @limit events with an id in
 * (@after, @until] that @tenant may see (its own; NULL: the operator, all).
 * GONE as store_event_check_cursor, checked in the same step, so that a
 * replay the ring overtakes fails instead of skipping events. */
GPtrArray *store_event_page(Store *store, const char *tenant, gint64 after, gint64 until,
                            guint limit, GError **error);
