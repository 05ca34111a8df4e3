#include "daemon/events.h"

#include "api/json.h"

/* Referenced by its owner and by each subscription: a stream that ends
 * after event_bus_free still finds the bus (closed) it was on. */
struct EventBus {
    grefcount refs;
    GMutex lock;
    GList *subscriptions; /* of EventSubscription */
    gboolean closed;
    guint64 next_id;
};

/* Referenced by its owner and, briefly, by a publisher notifying it. */
static void bus_unref(EventBus *bus);

struct EventSubscription {
    grefcount refs;
    EventBus *bus;      /* a reference */
    char *tenant;       /* NULL: the operator */
    GAsyncQueue *queue; /* of char * (SSE text) */
    gboolean ended;     /* under bus->lock */
    GFunc notify;
    gpointer notify_data;
    GDestroyNotify notify_free;
};

static void subscription_unref(EventSubscription *subscription)
{
    if (!g_ref_count_dec(&subscription->refs))
        return;
    if (subscription->notify_free != NULL)
        subscription->notify_free(subscription->notify_data);
    bus_unref(subscription->bus);
    g_async_queue_unref(subscription->queue);
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
    g_ref_count_inc(&subscription->refs);
    g_ptr_array_add(pending, subscription);
}

EventBus *event_bus_new(void)
{
    EventBus *bus = g_new0(EventBus, 1);
    g_atomic_ref_count_init(&bus->refs);
    g_mutex_init(&bus->lock);
    bus->next_id = 1;
    return bus;
}

static void bus_unref(EventBus *bus)
{
    if (!g_atomic_ref_count_dec(&bus->refs))
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

void event_bus_publish(EventBus *bus, const char *type, const char *tenant, json_object *data)
{
    g_autofree char *json = api_json_to_string(data);
    GPtrArray *pending = g_ptr_array_new();

    g_mutex_lock(&bus->lock);
    guint64 id = bus->next_id++;
    for (GList *l = bus->subscriptions; l != NULL; l = l->next) {
        EventSubscription *subscription = l->data;
        if (subscription->ended || !subscription_wants(subscription, tenant))
            continue;
        notify_later(pending, subscription);
        if (g_async_queue_length(subscription->queue) >= EVENTS_MAX_BACKLOG) {
            subscription->ended = TRUE; /* a stuck client must not grow us */
            continue;
        }
        g_async_queue_push(
            subscription->queue,
            g_strdup_printf("id: %" G_GUINT64_FORMAT "\nevent: %s\ndata: %s\n\n", id, type, json));
    }
    g_mutex_unlock(&bus->lock);
    notify_all(pending);
}

EventSubscription *event_bus_subscribe(EventBus *bus, const char *tenant, GFunc notify,
                                       gpointer notify_data, GDestroyNotify notify_free)
{
    EventSubscription *subscription = g_new0(EventSubscription, 1);

    g_ref_count_init(&subscription->refs);
    subscription->notify = notify;
    subscription->notify_data = notify_data;
    subscription->notify_free = notify_free;
    g_atomic_ref_count_inc(&bus->refs);
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

char *event_subscription_next(EventSubscription *subscription, guint timeout_ms, gboolean *ended)
{
    char *text = timeout_ms == 0
                     ? g_async_queue_try_pop(subscription->queue)
                     : g_async_queue_timeout_pop(subscription->queue, (guint64)timeout_ms * 1000);
    *ended = text == NULL && subscription_ended(subscription);
    return text;
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
