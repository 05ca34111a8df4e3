/* daemon/events: the bus on a real store (a fresh temporary state directory
 * per test): what each subscriber gets live, the notify hook, and replays
 * after a cursor, filtered as the live events are, with nothing lost or
 * repeated between the two. */
#include "tests/unit/tree-util.h"
#include "daemon/error.h"
#include "daemon/events.h"
#include "daemon/store_events.h"

#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>

typedef struct {
    char *dir;
    Store *store;
    EventBus *bus;
} Fixture;

static void add_tenant(Store *store, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiTenant) tenant = api_tenant_new();

    tenant->id = g_uuid_string_random();
    tenant->name = g_strdup(name);
    tenant->created_at = g_strdup("2024-05-01T10:00:00Z");
    tenant->updated_at = g_strdup("2024-05-01T10:00:00Z");
    g_assert_true(store_tenant_insert(store, tenant, &error));
    g_assert_no_error(error);
}

/* @data: the ring's size, as GUINT_TO_POINTER. */
static void fixture_set_up(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    fixture->dir = g_dir_make_tmp("test-events-XXXXXX", &error);
    g_assert_no_error(error);
    g_autofree char *state = g_build_filename(fixture->dir, "state", NULL);
    fixture->store = store_open(state, &error);
    g_assert_no_error(error);
    add_tenant(fixture->store, "acme");
    add_tenant(fixture->store, "beta");
    fixture->bus = event_bus_new(fixture->store, GPOINTER_TO_UINT(data));
}

static void fixture_tear_down(Fixture *fixture, gconstpointer data)
{
    (void)data;
    event_bus_free(fixture->bus);
    store_free(fixture->store);
    remove_tree(fixture->dir);
    g_free(fixture->dir);
}

/* Publishes {"n": @n} as an operation event of @tenant. */
static void publish(Fixture *fixture, const char *tenant, int n)
{
    json_object *data = json_object_new_object();
    json_object_object_add(data, "n", json_object_new_int(n));
    event_bus_publish(fixture->bus, "operation", tenant, data);
    json_object_put(data);
}

/* What the subscription has now, as "<id>:<n>" per event ("-" for an event
 * without an id), comma-separated; each event's text is checked whole. */
static char *drain(EventSubscription *subscription, gboolean *ended)
{
    g_autoptr(GString) seen = g_string_new(NULL);
    char *text;

    while ((text = event_subscription_next(subscription, 0, ended)) != NULL) {
        g_autofree char *owned = text;
        gint64 id = 0;
        int n = -1;
        const char *rest = owned;
        if (g_str_has_prefix(rest, "id: ")) {
            id = g_ascii_strtoll(rest + 4, NULL, 10);
            rest = strchr(rest, '\n') + 1;
        }
        g_assert_true(sscanf(rest, "event: operation\ndata: {\"n\":%d}\n\n", &n) == 1);
        g_autofree char *expected = g_strdup_printf("event: operation\ndata: {\"n\":%d}\n\n", n);
        g_assert_cmpstr(rest, ==, expected);
        if (id > 0)
            g_string_append_printf(seen, "%s%" G_GINT64_FORMAT ":%d", seen->len ? "," : "", id, n);
        else
            g_string_append_printf(seen, "%s-:%d", seen->len ? "," : "", n);
    }
    return g_string_free(g_steal_pointer(&seen), FALSE);
}

static void count_notify(gpointer unused, gpointer data)
{
    (void)unused;
    g_atomic_int_inc((gint *)data);
}

static void test_live_filtered(Fixture *fixture, gconstpointer data)
{
    gboolean ended = TRUE;
    gint acme_calls = 0, beta_calls = 0;

    (void)data;
    EventSubscription *op = event_bus_subscribe(fixture->bus, NULL, NULL, NULL, NULL);
    EventSubscription *acme =
        event_bus_subscribe(fixture->bus, "acme", count_notify, &acme_calls, NULL);
    EventSubscription *beta =
        event_bus_subscribe(fixture->bus, "beta", count_notify, &beta_calls, NULL);
    g_autofree char *nothing = drain(acme, &ended);
    g_assert_cmpstr(nothing, ==, "");
    g_assert_false(ended);

    publish(fixture, "acme", 1);
    publish(fixture, "beta", 2);
    publish(fixture, NULL, 3);
    publish(fixture, "acme", 4);
    /* The hook runs after each event queued for its subscription, only then. */
    g_assert_cmpint(g_atomic_int_get(&acme_calls), ==, 2);
    g_assert_cmpint(g_atomic_int_get(&beta_calls), ==, 1);

    /* Ids are the store's row ids: the same event has the same id for all. */
    g_autofree char *all = drain(op, &ended);
    g_assert_cmpstr(all, ==, "1:1,2:2,3:3,4:4");
    g_autofree char *mine = drain(acme, &ended);
    g_assert_cmpstr(mine, ==, "1:1,4:4");
    g_autofree char *theirs = drain(beta, &ended);
    g_assert_cmpstr(theirs, ==, "2:2");
    g_assert_false(ended);

    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) kept = store_event_page(fixture->store, NULL, 0, 4, 100, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(kept->len, ==, 4);
    g_assert_cmpstr(((StoreEvent *)kept->pdata[3])->data, ==, "{\"n\":4}");

    event_subscription_free(op);
    event_subscription_free(acme);
    event_subscription_free(beta);
}

static void test_bus_free_ends(Fixture *fixture, gconstpointer data)
{
    gboolean ended = FALSE;
    gint calls = 0;

    (void)data;
    EventSubscription *subscription =
        event_bus_subscribe(fixture->bus, "acme", count_notify, &calls, NULL);
    publish(fixture, "acme", 1);
    g_clear_pointer(&fixture->bus, event_bus_free);
    /* Told, and what was queued still comes out before the end. */
    g_assert_cmpint(g_atomic_int_get(&calls), ==, 2);
    g_autofree char *seen = drain(subscription, &ended);
    g_assert_cmpstr(seen, ==, "1:1");
    g_assert_true(ended);
    event_subscription_free(subscription);
}

static void test_replay_filtered(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    gboolean ended = TRUE;

    (void)data;
    publish(fixture, "acme", 1);
    publish(fixture, "beta", 2);
    publish(fixture, NULL, 3);
    publish(fixture, "acme", 4);
    publish(fixture, "beta", 5);

    EventSubscription *acme = event_bus_subscribe(fixture->bus, "acme", NULL, NULL, NULL);
    g_assert_true(event_subscription_resume(acme, 1, &error));
    g_assert_no_error(error);
    EventSubscription *beta = event_bus_subscribe(fixture->bus, "beta", NULL, NULL, NULL);
    g_assert_true(event_subscription_resume(beta, 0, &error));
    EventSubscription *op = event_bus_subscribe(fixture->bus, NULL, NULL, NULL, NULL);
    g_assert_true(event_subscription_resume(op, 2, &error));
    /* Nothing missed: resuming at the newest goes straight to live. */
    EventSubscription *current = event_bus_subscribe(fixture->bus, "acme", NULL, NULL, NULL);
    g_assert_true(event_subscription_resume(current, 5, &error));
    publish(fixture, "acme", 6);

    /* Each its own, after its cursor, oldest first, then live. */
    g_autofree char *a = drain(acme, &ended);
    g_assert_cmpstr(a, ==, "4:4,6:6");
    g_assert_false(ended);
    g_autofree char *b = drain(beta, &ended);
    g_assert_cmpstr(b, ==, "2:2,5:5");
    g_autofree char *o = drain(op, &ended);
    g_assert_cmpstr(o, ==, "3:3,4:4,5:5,6:6");
    g_autofree char *c = drain(current, &ended);
    g_assert_cmpstr(c, ==, "6:6");

    event_subscription_free(acme);
    event_subscription_free(beta);
    event_subscription_free(op);
    event_subscription_free(current);
}

static void test_replay_no_gap_no_duplicate(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    gboolean ended = TRUE;

    (void)data;
    publish(fixture, "acme", 1);
    EventSubscription *acme = event_bus_subscribe(fixture->bus, "acme", NULL, NULL, NULL);
    /* Between subscribing and resuming: both queued live and in the store. */
    publish(fixture, "acme", 2);
    publish(fixture, "beta", 3);
    g_assert_true(event_subscription_resume(acme, 0, &error));
    g_assert_no_error(error);
    /* And during the replay: after it, once. */
    g_autofree char *first = event_subscription_next(acme, 0, &ended);
    g_assert_true(g_str_has_prefix(first, "id: 1\n"));
    publish(fixture, "acme", 4);
    g_autofree char *rest = drain(acme, &ended);
    g_assert_cmpstr(rest, ==, "2:2,4:4");
    g_assert_false(ended);
    event_subscription_free(acme);
}

static void test_replay_pages(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GString) expected = g_string_new(NULL);
    gboolean ended = TRUE;
    const int count = EVENTS_REPLAY_PAGE * 2 + 50;

    (void)data;
    for (int i = 1; i <= count; i++) {
        publish(fixture, i % 3 == 0 ? "beta" : "acme", i);
        if (i % 3 != 0)
            g_string_append_printf(expected, "%s%d:%d", expected->len ? "," : "", i, i);
    }
    /* Read a page at a time, in order across page boundaries. */
    EventSubscription *acme = event_bus_subscribe(fixture->bus, "acme", NULL, NULL, NULL);
    g_assert_true(event_subscription_resume(acme, 0, &error));
    g_assert_no_error(error);
    g_autofree char *seen = drain(acme, &ended);
    g_assert_cmpstr(seen, ==, expected->str);
    g_assert_false(ended);
    event_subscription_free(acme);
}

static void test_resume_refused(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    for (int i = 1; i <= 8; i++)
        publish(fixture, "acme", i); /* a ring of 5 keeps 4..8 */
    EventSubscription *acme = event_bus_subscribe(fixture->bus, "acme", NULL, NULL, NULL);
    g_assert_false(event_subscription_resume(acme, 9, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST);
    g_clear_error(&error);
    g_assert_false(event_subscription_resume(acme, 2, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_GONE);
    g_clear_error(&error);
    /* The oldest kept is 4: a client that saw 3 missed nothing. */
    gboolean ended = TRUE;
    g_assert_true(event_subscription_resume(acme, 3, &error));
    g_assert_no_error(error);
    g_autofree char *seen = drain(acme, &ended);
    g_assert_cmpstr(seen, ==, "4:4,5:5,6:6,7:7,8:8");
    event_subscription_free(acme);
}

static void test_replay_overtaken(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    gboolean ended = TRUE;
    const int ring = EVENTS_REPLAY_PAGE + 50;

    (void)data;
    for (int i = 1; i <= ring; i++)
        publish(fixture, NULL, i);
    EventSubscription *op = event_bus_subscribe(fixture->bus, NULL, NULL, NULL, NULL);
    g_assert_true(event_subscription_resume(op, 0, &error));
    g_assert_no_error(error);
    for (int i = 1; i <= EVENTS_REPLAY_PAGE; i++)
        g_free(event_subscription_next(op, 0, &ended));
    /* Trimmed past 100 while the stream held its first page: the rest of the
     * replay is gone, and the stream ends instead of skipping to live. */
    for (int i = ring + 1; i <= ring + EVENTS_REPLAY_PAGE + 1; i++)
        publish(fixture, NULL, i);
    char *text = event_subscription_next(op, 0, &ended);
    g_assert_null(text);
    g_assert_true(ended);
    g_assert_null(event_subscription_next(op, 0, &ended));
    g_assert_true(ended);
    event_subscription_free(op);
}

static void test_store_fails_live_only(Fixture *fixture, gconstpointer data)
{
    gboolean ended = TRUE;

    (void)data;
    EventSubscription *acme = event_bus_subscribe(fixture->bus, "acme", NULL, NULL, NULL);
    publish(fixture, "acme", 1);
    /* The store cannot keep events any more. */
    g_autofree char *path = g_build_filename(fixture->dir, "state", STORE_FILE_NAME, NULL);
    sqlite3 *db = NULL;
    g_assert_cmpint(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_exec(db, "DROP TABLE events", NULL, NULL, NULL), ==, SQLITE_OK);
    sqlite3_close(db);

    g_test_expect_message(NULL, G_LOG_LEVEL_WARNING, "*could not be kept*no such table*");
    publish(fixture, "acme", 2);
    g_test_assert_expected_messages();
    /* Still sent, without an id: the client's cursor stays on event 1. */
    g_autofree char *seen = drain(acme, &ended);
    g_assert_cmpstr(seen, ==, "1:1,-:2");
    g_assert_false(ended);
    event_subscription_free(acme);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

#define ADD(path, ring, func)                                                                      \
    g_test_add(path, Fixture, GUINT_TO_POINTER(ring), fixture_set_up, func, fixture_tear_down)
    ADD("/events/live/filtered", 100, test_live_filtered);
    ADD("/events/live/bus-free-ends", 100, test_bus_free_ends);
    ADD("/events/replay/filtered", 100, test_replay_filtered);
    ADD("/events/replay/no-gap-no-duplicate", 100, test_replay_no_gap_no_duplicate);
    ADD("/events/replay/pages", 1000, test_replay_pages);
    ADD("/events/replay/refused", 5, test_resume_refused);
    ADD("/events/replay/overtaken", EVENTS_REPLAY_PAGE + 50, test_replay_overtaken);
    ADD("/events/store-fails-live-only", 100, test_store_fails_live_only);
#undef ADD

    return g_test_run();
}
