/* hvcore/virt: the libvirt connection against test:///default (connect,
 * lifecycle events in order, references for other threads) and against an
 * unreachable URI (errors naming it, retries by itself, clean free).  The
 * loss and reconnection of a real daemon is tests/integration/virt-reconnect.t. */
#include <string.h>

#include "hvcore/error.h"
#include "hvcore/virt.h"
#include "hvcore/libvirt-private.h"

#define TEST_URI        "test:///default"
#define UNREACHABLE_URI "qemu+tcp://127.0.0.1:1/system"
#define DOMAIN_NAME     "hv-virt-test"
/* Every wait is bounded: a missing event fails the test instead of hanging it. */
#define EVENT_TIMEOUT_MS 5000

static const char domain_xml[] = "<domain type='test'>"
                                 "  <name>" DOMAIN_NAME "</name>"
                                 "  <memory unit='MiB'>64</memory>"
                                 "  <os><type>hvm</type></os>"
                                 "</domain>";

typedef struct {
    char *name;
    char *uuid;
    HvLifecycle what;
    int event;
    int detail;
} SeenEvent;

typedef struct {
    GArray *events; /* of SeenEvent */
    guint connected;
    guint disconnected;
    char *last_reason;
} Recorder;

static void seen_event_clear(gpointer data)
{
    SeenEvent *seen = data;

    g_free(seen->name);
    g_free(seen->uuid);
}

static void recorder_init(Recorder *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->events = g_array_new(FALSE, TRUE, sizeof(SeenEvent));
    g_array_set_clear_func(rec->events, seen_event_clear);
}

static void recorder_clear(Recorder *rec)
{
    g_array_unref(rec->events);
    g_free(rec->last_reason);
}

static void record_lifecycle(const HvLifecycleEvent *event, gpointer data)
{
    Recorder *rec = data;
    SeenEvent seen = {
        .name = g_strdup(event->domain_name),
        .uuid = g_strdup(event->domain_uuid),
        .what = event->what,
        .event = event->libvirt_event,
        .detail = event->libvirt_detail,
    };

    g_array_append_val(rec->events, seen);
}

static void record_connection(gboolean connected, const char *reason, gpointer data)
{
    Recorder *rec = data;

    if (connected) {
        rec->connected++;
    } else {
        rec->disconnected++;
        g_free(rec->last_reason);
        rec->last_reason = g_strdup(reason);
    }
}

static gboolean set_flag(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

/* Runs the default context until @rec holds @count events or @timeout_ms
 * passed; TRUE in the first case. */
static gboolean wait_for_events(Recorder *rec, guint count, guint timeout_ms)
{
    gboolean timed_out = FALSE;
    guint id = g_timeout_add(timeout_ms, set_flag, &timed_out);

    while (rec->events->len < count && !timed_out)
        g_main_context_iteration(NULL, TRUE);
    if (!timed_out)
        g_source_remove(id);
    return rec->events->len >= count;
}

/* Runs the default context for @ms, whatever happens. */
static void run_for(guint ms)
{
    gboolean done = FALSE;

    g_timeout_add(ms, set_flag, &done);
    while (!done)
        g_main_context_iteration(NULL, TRUE);
}

/* libvirt-glib frees removed handles and timers from idle callbacks. */
static void drain(void)
{
    for (int i = 0; i < 100 && g_main_context_iteration(NULL, FALSE); i++)
        ;
}

static void test_lifecycle_mapping(void)
{
    static const struct {
        int event, detail;
        HvLifecycle what;
        const char *text;
    } cases[] = {
        {VIR_DOMAIN_EVENT_DEFINED, VIR_DOMAIN_EVENT_DEFINED_ADDED, HV_LIFECYCLE_DEFINED, "defined"},
        {VIR_DOMAIN_EVENT_DEFINED, VIR_DOMAIN_EVENT_DEFINED_UPDATED, HV_LIFECYCLE_DEFINED,
         "defined"},
        {VIR_DOMAIN_EVENT_UNDEFINED, VIR_DOMAIN_EVENT_UNDEFINED_REMOVED, HV_LIFECYCLE_UNDEFINED,
         "undefined"},
        {VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_BOOTED, HV_LIFECYCLE_STARTED,
         "started"},
        {VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_RESTORED, HV_LIFECYCLE_STARTED,
         "started"},
        {VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_MIGRATED, HV_LIFECYCLE_MIGRATED_IN,
         "migrated-in"},
        {VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_PAUSED, HV_LIFECYCLE_SUSPENDED,
         "suspended"},
        {VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED, HV_LIFECYCLE_SUSPENDED,
         "suspended"},
        {VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_UNPAUSED, HV_LIFECYCLE_RESUMED,
         "resumed"},
        {VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_MIGRATED, HV_LIFECYCLE_RESUMED,
         "resumed"},
        {VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_DESTROYED, HV_LIFECYCLE_STOPPED,
         "stopped"},
        {VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN, HV_LIFECYCLE_STOPPED,
         "stopped"},
        {VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_FAILED, HV_LIFECYCLE_STOPPED,
         "stopped"},
        {VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_CRASHED, HV_LIFECYCLE_CRASHED,
         "crashed"},
        {VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED, HV_LIFECYCLE_MIGRATED_OUT,
         "migrated-out"},
        {VIR_DOMAIN_EVENT_SHUTDOWN, VIR_DOMAIN_EVENT_SHUTDOWN_GUEST, HV_LIFECYCLE_SHUTDOWN,
         "shutdown"},
        {VIR_DOMAIN_EVENT_PMSUSPENDED, VIR_DOMAIN_EVENT_PMSUSPENDED_MEMORY,
         HV_LIFECYCLE_PMSUSPENDED, "pmsuspended"},
        {VIR_DOMAIN_EVENT_CRASHED, VIR_DOMAIN_EVENT_CRASHED_PANICKED, HV_LIFECYCLE_CRASHED,
         "crashed"},
        {4242, 0, HV_LIFECYCLE_OTHER, "other"},
        {-1, 0, HV_LIFECYCLE_OTHER, "other"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        HvLifecycle what = hv_lifecycle_from_libvirt(cases[i].event, cases[i].detail);

        g_assert_cmpint(what, ==, cases[i].what);
        g_assert_cmpstr(hv_lifecycle_to_string(what), ==, cases[i].text);
    }
    g_assert_cmpstr(hv_lifecycle_to_string((HvLifecycle)999), ==, "other");
}

static void test_connect(void)
{
    g_autoptr(GError) error = NULL;
    Recorder rec;
    HvVirt *virt;
    HvConn *conn;
    virDomainPtr missing;
    g_autoptr(virDomain) running = NULL;
    g_autofree char *uri = NULL;

    recorder_init(&rec);
    virt = hv_virt_new(TEST_URI, record_lifecycle, record_connection, &rec);
    g_assert_nonnull(virt);
    g_assert_cmpstr(hv_virt_get_uri(virt), ==, TEST_URI);
    g_assert_false(hv_virt_is_connected(virt));
    g_assert_null(hv_virt_get_connection(virt, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_LIBVIRT);
    g_clear_error(&error);

    g_assert_true(hv_virt_connect(virt, &error));
    g_assert_no_error(error);
    g_assert_true(hv_virt_is_connected(virt));
    g_assert_cmpuint(hv_virt_get_failed_attempts(virt), ==, 0);
    /* A second call reports the state and opens nothing new. */
    g_assert_true(hv_virt_connect(virt, &error));
    g_assert_no_error(error);

    conn = hv_virt_get_connection(virt, &error);
    g_assert_no_error(error);
    g_assert_nonnull(conn);
    uri = virConnectGetURI(hv_conn_get_libvirt(conn));
    g_assert_cmpstr(uri, ==, TEST_URI);
    /* test:///default comes with one running domain, "test". */
    g_assert_cmpint(virConnectNumOfDomains(hv_conn_get_libvirt(conn)), >=, 1);

    /* Ordinary failures on a live connection are not losses: a missing
     * domain, and a system error of the kind a lost connection also gives. */
    missing = virDomainLookupByName(hv_conn_get_libvirt(conn), "no-such-domain");
    g_assert_null(missing);
    g_assert_false(hv_virt_report_failure(virt, conn));
    g_assert_true(hv_virt_is_connected(virt));
    running = virDomainLookupByName(hv_conn_get_libvirt(conn), "test");
    g_assert_nonnull(running);
    g_assert_cmpint(virDomainSave(running, "/nonexistent-turtles-dir/save"), <, 0);
    g_assert_cmpint(virGetLastErrorCode(), ==, VIR_ERR_SYSTEM_ERROR);
    g_assert_false(hv_virt_report_failure(virt, conn));
    g_assert_true(hv_virt_is_connected(virt));
    g_assert_cmpint(virDomainIsActive(running), ==, 1);
    g_clear_pointer(&running, hv_libvirt_domain_free);
    g_assert_false(hv_virt_report_failure(virt, NULL));

    /* Our reference outlives the HvVirt. */
    hv_virt_free(virt);
    g_assert_cmpint(virConnectNumOfDomains(hv_conn_get_libvirt(conn)), >=, 1);
    /* ... and is the last one: libvirt's count drops to 0 when it goes. */
    virConnectPtr raw = hv_conn_get_libvirt(conn);
    virConnectRef(raw);
    hv_conn_unref(conn);
    g_assert_cmpint(virConnectClose(raw), ==, 0);

    drain();
    g_assert_cmpuint(rec.connected, ==, 0);
    g_assert_cmpuint(rec.disconnected, ==, 0);
    recorder_clear(&rec);
}

static void assert_event(Recorder *rec, guint index, HvLifecycle what, int event, const char *uuid)
{
    SeenEvent *seen = &g_array_index(rec->events, SeenEvent, index);

    g_test_message("event %u: %s %s (%d/%d)", index, seen->name, hv_lifecycle_to_string(seen->what),
                   seen->event, seen->detail);
    g_assert_cmpstr(seen->name, ==, DOMAIN_NAME);
    g_assert_cmpstr(seen->uuid, ==, uuid);
    g_assert_cmpstr(hv_lifecycle_to_string(seen->what), ==, hv_lifecycle_to_string(what));
    g_assert_cmpint(seen->event, ==, event);
}

static void test_lifecycle_events(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(HvConn) conn = NULL;
    g_autoptr(virDomain) dom = NULL;
    char uuid[VIR_UUID_STRING_BUFLEN];
    Recorder rec;
    HvVirt *virt;

    recorder_init(&rec);
    virt = hv_virt_new(TEST_URI, record_lifecycle, record_connection, &rec);
    g_assert_true(hv_virt_connect(virt, &error));
    g_assert_no_error(error);
    conn = hv_virt_get_connection(virt, &error);
    g_assert_no_error(error);

    dom = virDomainDefineXML(hv_conn_get_libvirt(conn), domain_xml);
    g_assert_nonnull(dom);
    g_assert_cmpint(virDomainGetUUIDString(dom, uuid), ==, 0);
    g_assert_true(wait_for_events(&rec, 1, EVENT_TIMEOUT_MS));
    g_assert_cmpint(virDomainCreate(dom), ==, 0);
    g_assert_true(wait_for_events(&rec, 2, EVENT_TIMEOUT_MS));
    g_assert_cmpint(virDomainSuspend(dom), ==, 0);
    g_assert_true(wait_for_events(&rec, 3, EVENT_TIMEOUT_MS));
    g_assert_cmpint(virDomainResume(dom), ==, 0);
    g_assert_true(wait_for_events(&rec, 4, EVENT_TIMEOUT_MS));
    g_assert_cmpint(virDomainDestroy(dom), ==, 0);
    g_assert_true(wait_for_events(&rec, 5, EVENT_TIMEOUT_MS));
    g_assert_cmpint(virDomainUndefine(dom), ==, 0);
    g_assert_true(wait_for_events(&rec, 6, EVENT_TIMEOUT_MS));
    /* Nothing more is pending. */
    run_for(100);
    g_assert_cmpuint(rec.events->len, ==, 6);

    assert_event(&rec, 0, HV_LIFECYCLE_DEFINED, VIR_DOMAIN_EVENT_DEFINED, uuid);
    assert_event(&rec, 1, HV_LIFECYCLE_STARTED, VIR_DOMAIN_EVENT_STARTED, uuid);
    assert_event(&rec, 2, HV_LIFECYCLE_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED, uuid);
    assert_event(&rec, 3, HV_LIFECYCLE_RESUMED, VIR_DOMAIN_EVENT_RESUMED, uuid);
    assert_event(&rec, 4, HV_LIFECYCLE_STOPPED, VIR_DOMAIN_EVENT_STOPPED, uuid);
    assert_event(&rec, 5, HV_LIFECYCLE_UNDEFINED, VIR_DOMAIN_EVENT_UNDEFINED, uuid);
    g_assert_cmpint(g_array_index(rec.events, SeenEvent, 4).detail, ==,
                    VIR_DOMAIN_EVENT_STOPPED_DESTROYED);

    /* After free, no callback fires for changes made on our reference. */
    hv_virt_free(virt);
    g_clear_pointer(&dom, hv_libvirt_domain_free);
    dom = virDomainDefineXML(hv_conn_get_libvirt(conn), domain_xml);
    g_assert_nonnull(dom);
    run_for(200);
    g_assert_cmpuint(rec.events->len, ==, 6);
    g_assert_cmpint(virDomainUndefine(dom), ==, 0);

    g_assert_cmpuint(rec.connected, ==, 0);
    g_assert_cmpuint(rec.disconnected, ==, 0);
    g_clear_pointer(&dom, hv_libvirt_domain_free);
    g_clear_pointer(&conn, hv_conn_unref);
    drain();
    recorder_clear(&rec);
}

/* Other threads take references while the main thread serves events. */
static gpointer take_references(gpointer data)
{
    HvVirt *virt = data;

    for (int i = 0; i < 500; i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(HvConn) conn = hv_virt_get_connection(virt, &error);

        if (!conn || !hv_virt_is_connected(virt) ||
            virConnectIsAlive(hv_conn_get_libvirt(conn)) != 1)
            return GINT_TO_POINTER(FALSE);
    }
    return GINT_TO_POINTER(TRUE);
}

static void test_threads(void)
{
    g_autoptr(GError) error = NULL;
    GThread *threads[4];
    HvVirt *virt = hv_virt_new(TEST_URI, NULL, NULL, NULL);

    g_assert_true(hv_virt_connect(virt, &error));
    g_assert_no_error(error);
    for (gsize i = 0; i < G_N_ELEMENTS(threads); i++)
        threads[i] = g_thread_new("refs", take_references, virt);
    run_for(50);
    for (gsize i = 0; i < G_N_ELEMENTS(threads); i++)
        g_assert_true(GPOINTER_TO_INT(g_thread_join(threads[i])));
    hv_virt_free(virt);
    drain();
}

static void test_unreachable(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *expected = NULL;
    Recorder rec;
    HvVirt *virt;
    guint attempts;

    recorder_init(&rec);
    virt = hv_virt_new(UNREACHABLE_URI, record_lifecycle, record_connection, &rec);
    hv_virt_set_backoff(virt, 50, 200);

    g_assert_false(hv_virt_connect(virt, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_LIBVIRT);
    expected = g_strdup_printf("libvirt is unreachable (%s)", UNREACHABLE_URI);
    g_assert_true(g_str_has_prefix(error->message, expected));
    g_test_message("connect: %s", error->message);
    g_clear_error(&error);
    g_assert_false(hv_virt_is_connected(virt));
    g_assert_cmpuint(hv_virt_get_failed_attempts(virt), ==, 1);

    g_assert_null(hv_virt_get_connection(virt, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_LIBVIRT);
    g_assert_true(g_str_has_prefix(error->message, expected));
    g_clear_error(&error);
    /* Later calls do not block on a new attempt: they report the state. */
    g_assert_false(hv_virt_connect(virt, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_LIBVIRT);
    g_clear_error(&error);

    /* Retries at 50, 100, 200, 200, ... ms: several within a second. */
    run_for(1000);
    attempts = hv_virt_get_failed_attempts(virt);
    g_test_message("%u failed attempts after 1 s", attempts);
    g_assert_cmpuint(attempts, >=, 3);
    g_assert_false(hv_virt_is_connected(virt));
    g_assert_cmpuint(rec.connected, ==, 0);
    /* Never connected, so never lost either. */
    g_assert_cmpuint(rec.disconnected, ==, 0);
    g_assert_cmpuint(rec.events->len, ==, 0);

    /* Freed with a retry pending or an attempt under way. */
    hv_virt_free(virt);
    run_for(100);
    g_assert_cmpuint(rec.connected, ==, 0);
    recorder_clear(&rec);
    hv_virt_free(NULL);
}

/* Free right after the failed first attempt, and right as a retry starts. */
static void test_free_while_retrying(void)
{
    for (guint delay = 0; delay <= 30; delay += 10) {
        g_autoptr(GError) error = NULL;
        HvVirt *virt = hv_virt_new(UNREACHABLE_URI, NULL, NULL, NULL);

        hv_virt_set_backoff(virt, 10, 10);
        g_assert_false(hv_virt_connect(virt, &error));
        if (delay)
            run_for(delay);
        hv_virt_free(virt);
    }
    run_for(50);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    hv_virt_init_event_loop();
    hv_virt_init_event_loop(); /* idempotent */

    g_test_add_func("/virt/lifecycle-mapping", test_lifecycle_mapping);
    g_test_add_func("/virt/connect", test_connect);
    g_test_add_func("/virt/lifecycle-events", test_lifecycle_events);
    g_test_add_func("/virt/threads", test_threads);
    g_test_add_func("/virt/unreachable", test_unreachable);
    g_test_add_func("/virt/free-while-retrying", test_free_while_retrying);
    return g_test_run();
}
