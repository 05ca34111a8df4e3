#include "daemon/events.h"

#include <string.h>

#include "api/json.h"
#include "daemon/clock.h"
#include "daemon/error.h"
#include "daemon/store_events.h"

/* Referenced by its owner and by each subscription: a stream that ends
 * after event_bus_free still finds the bus (closed) it was on. */
struct EventBus {
    gint refs; /* g_atomic_int_*: compiler atomics ThreadSanitizer sees */
    GMutex lock;
    GList *subscriptions; /* of EventSubscription */
    gboolean closed;
    Store *store; /* borrowed: the ring */
    guint ring;
};

/* A live event waiting in a subscription's queue: its id (0: the store did
 * not keep it) and its SSE text. */
typedef struct {
    gint64 id;
    char text[];
} QueuedEvent;

/* Referenced by its owner and, briefly, by a publisher notifying it. */
static void bus_unref(EventBus *bus);

struct EventSubscription {
    gint refs;          /* g_atomic_int_*: inline atomics ThreadSanitizer sees */
    EventBus *bus;      /* a reference */
    char *tenant;       /* NULL: the operator */
    GAsyncQueue *queue; /* of QueuedEvent */
    gboolean ended;     /* under bus->lock */
    GFunc notify;
    gpointer notify_data;
    GDestroyNotify notify_free;
    /* A resumed subscription's replay, touched only by its reader. */
    gboolean replaying;
    gboolean replay_more; /* the store may hold more to replay */
    gint64 replay_after;  /* the last id read from the store */
    gint64 replay_until;  /* the newest id when the replay began */
    GQueue replay;        /* of char *: the page being sent */
};

static void subscription_unref(EventSubscription *subscription)
{
    if (!g_atomic_int_dec_and_test(&subscription->refs))
        return;
    if (subscription->notify_free != NULL)
        subscription->notify_free(subscription->notify_data);
    bus_unref(subscription->bus);
    g_async_queue_unref(subscription->queue);
    g_queue_clear_full(&subscription->replay, g_free);
    g_free(subscription->tenant);
    g_free(subscription);
}

/* Runs the notify hooks of @subscriptions (references, dropped here) outside
 * the bus lock: a hook may take locks of its own. */
static void notify_all(GPtrArray *subscriptions)
{
    for (guint i = 0; i < subscriptions->len; i++) {
        EventSubscription *subscription = subscriptions->pdata[i];
        subscription->notify(NULL, subscription->notify_data);
        subscription_unref(subscription);
    }
    g_ptr_array_unref(subscriptions);
}

/* Under bus->lock: remembers @subscription for notify_all. */
static void notify_later(GPtrArray *pending, EventSubscription *subscription)
{
    if (subscription->notify == NULL)
        return;
    g_atomic_int_inc(&subscription->refs);
    g_ptr_array_add(pending, subscription);
}

EventBus *event_bus_new(Store *store, guint ring)
{
    EventBus *bus = g_new0(EventBus, 1);
    g_atomic_int_set(&bus->refs, 1);
    g_mutex_init(&bus->lock);
    bus->store = store;
    bus->ring = ring;
    return bus;
}

static void bus_unref(EventBus *bus)
{
    if (!g_atomic_int_dec_and_test(&bus->refs))
        return;
    g_list_free(bus->subscriptions);
    g_mutex_clear(&bus->lock);
    g_free(bus);
}

void event_bus_free(EventBus *bus)
{
    if (bus == NULL)
        return;
    GPtrArray *pending = g_ptr_array_new();
    g_mutex_lock(&bus->lock);
    bus->closed = TRUE;
    for (GList *l = bus->subscriptions; l != NULL; l = l->next) {
        ((EventSubscription *)l->data)->ended = TRUE;
        notify_later(pending, l->data);
    }
    g_mutex_unlock(&bus->lock);
    notify_all(pending);
    bus_unref(bus);
}

static gboolean subscription_wants(const EventSubscription *subscription, const char *tenant)
{
    return subscription->tenant == NULL || g_strcmp0(subscription->tenant, tenant) == 0;
}

/* The SSE text of an event; @id 0 (not kept) sends none, so that the
 * client's Last-Event-ID stays on an event it can resume after. */
static char *sse_text(gint64 id, const char *type, const char *json)
{
    if (id == 0)
        return g_strdup_printf("event: %s\ndata: %s\n\n", type, json);
    return g_strdup_printf("id: %" G_GINT64_FORMAT "\nevent: %s\ndata: %s\n\n", id, type, json);
}

static QueuedEvent *queued_event_new(gint64 id, const char *text)
{
    gsize len = strlen(text);
    QueuedEvent *event = g_malloc(sizeof(QueuedEvent) + len + 1);
    event->id = id;
    memcpy(event->text, text, len + 1);
    return event;
}

void event_bus_publish(EventBus *bus, const char *type, const char *tenant, json_object *data)
{
    g_autofree char *json = api_json_to_string(data);
    g_autofree char *now = clock_now_rfc3339();
    g_autoptr(GError) error = NULL;
    GPtrArray *pending = g_ptr_array_new();

    /* Kept and queued under one lock: every subscription sees ids in
     * increasing order, which resuming after the last one seen relies on. */
    g_mutex_lock(&bus->lock);
    gint64 id = store_event_append(bus->store, type, tenant, json, now, bus->ring, &error);
    g_autofree char *text = sse_text(id, type, json);
    for (GList *l = bus->subscriptions; l != NULL; l = l->next) {
        EventSubscription *subscription = l->data;
        if (subscription->ended || !subscription_wants(subscription, tenant))
            continue;
        notify_later(pending, subscription);
        if (g_async_queue_length(subscription->queue) >= EVENTS_MAX_BACKLOG) {
            subscription->ended = TRUE; /* a stuck client must not grow us */
            continue;
        }
        g_async_queue_push(subscription->queue, queued_event_new(id, text));
    }
    g_mutex_unlock(&bus->lock);
    if (id == 0)
        g_warning("a %s event could not be kept, so it goes out live only, without an id "
                  "(streams cannot resume at it): %s",
                  type, error->message);
    notify_all(pending);
}

EventSubscription *event_bus_subscribe(EventBus *bus, const char *tenant, GFunc notify,
                                       gpointer notify_data, GDestroyNotify notify_free)
{
    EventSubscription *subscription = g_new0(EventSubscription, 1);

    g_atomic_int_set(&subscription->refs, 1);
    subscription->notify = notify;
    subscription->notify_data = notify_data;
    subscription->notify_free = notify_free;
    g_atomic_int_inc(&bus->refs);
    subscription->bus = bus;
    subscription->tenant = g_strdup(tenant);
    subscription->queue = g_async_queue_new_full(g_free);
    g_mutex_lock(&bus->lock);
    subscription->ended = bus->closed;
    bus->subscriptions = g_list_prepend(bus->subscriptions, subscription);
    g_mutex_unlock(&bus->lock);
    return subscription;
}

static gboolean subscription_ended(EventSubscription *subscription)
{
    EventBus *bus = subscription->bus;
    g_mutex_lock(&bus->lock);
    gboolean ended = subscription->ended;
    g_mutex_unlock(&bus->lock);
    return ended;
}

static void subscription_end(EventSubscription *subscription)
{
    EventBus *bus = subscription->bus;
    g_mutex_lock(&bus->lock);
    subscription->ended = TRUE;
    g_mutex_unlock(&bus->lock);
}

gboolean event_subscription_resume(EventSubscription *subscription, gint64 after, GError **error)
{
    g_return_val_if_fail(after >= 0 && !subscription->replaying, FALSE);
    gint64 newest = 0;
    /* Subscribed first, read after: an event published in between is both
     * queued and in the store, and the live copy is dropped (id <= newest). */
    if (!store_event_check_cursor(subscription->bus->store, after, &newest, error))
        return FALSE;
    subscription->replay_after = after;
    subscription->replay_until = newest;
    subscription->replaying = TRUE;
    subscription->replay_more = TRUE;
    return TRUE;
}

/* Fills the replay queue from the store when it ran dry and more may be
 * there; FALSE when the replay cannot go on. */
static gboolean replay_fill(EventSubscription *subscription)
{
    if (!g_queue_is_empty(&subscription->replay) || !subscription->replay_more)
        return TRUE;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) page =
        store_event_page(subscription->bus->store, subscription->tenant, subscription->replay_after,
                         subscription->replay_until, EVENTS_REPLAY_PAGE, &error);
    if (page == NULL) {
        if (g_error_matches(error, TD_ERROR, TD_ERROR_GONE))
            g_debug("an event stream's replay was overtaken by the ring: %s", error->message);
        else
            g_warning("an event stream cannot replay: %s", error->message);
        return FALSE;
    }
    for (guint i = 0; i < page->len; i++) {
        const StoreEvent *event = page->pdata[i];
        g_queue_push_tail(&subscription->replay, sse_text(event->id, event->type, event->data));
        subscription->replay_after = event->id;
    }
    /* A short page was the last: asking again could only find the ring
     * moved on, and fail for nothing. */
    subscription->replay_more = page->len == EVENTS_REPLAY_PAGE;
    return TRUE;
}

char *event_subscription_next(EventSubscription *subscription, guint timeout_ms, gboolean *ended)
{
    *ended = FALSE;
    if (subscription->replaying) {
        /* Live events wait behind the replay: letting them through after a
         * replay cut short would move the client's cursor past what it
         * missed. */
        if (subscription_ended(subscription) || !replay_fill(subscription)) {
            subscription_end(subscription);
            *ended = TRUE;
            return NULL;
        }
        char *text = g_queue_pop_head(&subscription->replay);
        if (text != NULL)
            return text;
        subscription->replaying = FALSE;
    }
    for (;;) {
        g_autofree QueuedEvent *event =
            timeout_ms == 0
                ? g_async_queue_try_pop(subscription->queue)
                : g_async_queue_timeout_pop(subscription->queue, (guint64)timeout_ms * 1000);
        if (event == NULL) {
            *ended = subscription_ended(subscription);
            return NULL;
        }
        /* Already replayed: it was published between subscribing and resuming. */
        if (event->id > 0 && event->id <= subscription->replay_until)
            continue;
        return g_strdup(event->text);
    }
}

void event_subscription_free(EventSubscription *subscription)
{
    if (subscription == NULL)
        return;
    EventBus *bus = subscription->bus;
    g_mutex_lock(&bus->lock);
    bus->subscriptions = g_list_remove(bus->subscriptions, subscription);
    g_mutex_unlock(&bus->lock);
    subscription_unref(subscription);
}
