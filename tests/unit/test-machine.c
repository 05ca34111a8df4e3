/* hvcore/machine against test:///default: define, every lifecycle action
 * and its state, idempotence, refusals, NOT_FOUND, listing ours among
 * foreign domains, statistics, and stop's wait (timeout, cancellation).
 *
 * The test driver acts at once: a shutdown request shuts the domain off
 * immediately, so stop's forced path (a guest that ignores the power
 * button) needs a real guest; it was checked by hand against a private
 * libvirtd and the reference L1, which has no ACPI daemon. */
#include <string.h>

#include "hvcore/error.h"
#include "hvcore/machine.h"
#include "hvcore/libvirt-private.h"

#define TEST_URI "test:///default"

static void quiet_libvirt(void *data, virErrorPtr error)
{
    (void)data;
    (void)error;
}

/* test:///default's state lives while a connection to it is open: each
 * test opens its own, and uses its own domain names anyway. */
static HvConn *open_test_driver(void)
{
    HvConn *conn = hv_conn_open(TEST_URI, NULL);

    if (!conn)
        g_error("cannot open %s: %s", TEST_URI, virGetLastErrorMessage());
    return conn;
}

static HvStackSpec *sample_spec(const char *id, const char *name)
{
    HvStackSpec *spec = hv_stack_spec_new();

    spec->id = g_strdup(id);
    spec->name = g_strdup(name);
    spec->tenant = g_strdup("acme");
    spec->vcpus = 2;
    spec->memory_mib = 256;
    spec->kernel_path = g_strdup("/var/lib/turtles/images/vmlinuz");
    spec->console_log = g_strdup("/var/lib/turtles/console/x.log");
    spec->record_json = g_strdup("{\"name\":\"x\"}");
    return spec;
}

/* Defines a stack domain for @id and returns its libvirt name. */
static char *define_stack(HvConn *conn, const char *id, const char *name)
{
    g_autoptr(HvStackSpec) spec = sample_spec(id, name);
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_domain_build_xml(spec, HV_BACKEND_TEST, NULL, &error);

    g_assert_no_error(error);
    g_assert_true(hv_machine_define(conn, xml, &error));
    g_assert_no_error(error);
    return hv_domain_name_for(id);
}

static void assert_state(HvConn *conn, const char *name, HvMachineState expected)
{
    g_autoptr(GError) error = NULL;
    HvMachineState state = hv_machine_get_state(conn, name, &error);

    g_assert_no_error(error);
    if (state != expected)
        g_error("domain %s is %s, expected %s", name, hv_machine_state_to_string(state),
                hv_machine_state_to_string(expected));
}

#define assert_ok(call)                                                                            \
    do {                                                                                           \
        g_autoptr(GError) ok_error_ = NULL;                                                        \
        gboolean ok_ = (call);                                                                     \
        g_assert_no_error(ok_error_);                                                              \
        g_assert_true(ok_);                                                                        \
    } while (0)

/* @call uses `ok_error_` as its GError **. */
#define assert_fails(call, code, needle)                                                           \
    do {                                                                                           \
        g_autoptr(GError) ok_error_ = NULL;                                                        \
        gboolean ok_ = (call);                                                                     \
        g_assert_false(ok_);                                                                       \
        g_assert_error(ok_error_, HV_ERROR, (code));                                               \
        if (!strstr(ok_error_->message, (needle)))                                                 \
            g_error("'%s' does not mention '%s'", ok_error_->message, (needle));                   \
    } while (0)

/* ---- tests ----------------------------------------------------------------- */

static void test_state_strings(void)
{
    g_assert_cmpstr(hv_machine_state_to_string(HV_MACHINE_ABSENT), ==, "absent");
    g_assert_cmpstr(hv_machine_state_to_string(HV_MACHINE_RUNNING), ==, "running");
    g_assert_cmpstr(hv_machine_state_to_string(HV_MACHINE_PAUSED), ==, "paused");
    g_assert_cmpstr(hv_machine_state_to_string(HV_MACHINE_SHUTOFF), ==, "shutoff");
    g_assert_cmpstr(hv_machine_state_to_string(HV_MACHINE_CRASHED), ==, "crashed");
    g_assert_cmpstr(hv_machine_state_to_string(HV_MACHINE_OTHER), ==, "other");
    g_assert_cmpstr(hv_machine_state_to_string((HvMachineState)99), ==, "other");
    hv_machine_info_free(NULL);
}

static void test_lifecycle(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autofree char *name = define_stack(conn, "a1000000-0000-4000-8000-000000000001", "life");

    assert_state(conn, name, HV_MACHINE_SHUTOFF);
    /* Defined, not started; and defining it again is fine. */
    g_autofree char *again = define_stack(conn, "a1000000-0000-4000-8000-000000000001", "life");
    g_assert_cmpstr(again, ==, name);
    assert_state(conn, name, HV_MACHINE_SHUTOFF);

    /* Shut off: the actions that need a running guest are refused. */
    assert_fails(hv_machine_pause(conn, name, &ok_error_), HV_ERROR_INVALID, "shut off");
    assert_fails(hv_machine_resume(conn, name, &ok_error_), HV_ERROR_INVALID, "shut off");
    assert_fails(hv_machine_reboot(conn, name, &ok_error_), HV_ERROR_INVALID, "shut off");
    assert_state(conn, name, HV_MACHINE_SHUTOFF);

    assert_ok(hv_machine_start(conn, name, &ok_error_));
    assert_state(conn, name, HV_MACHINE_RUNNING);
    assert_ok(hv_machine_start(conn, name, &ok_error_));
    assert_state(conn, name, HV_MACHINE_RUNNING);

    assert_ok(hv_machine_pause(conn, name, &ok_error_));
    assert_state(conn, name, HV_MACHINE_PAUSED);
    assert_ok(hv_machine_pause(conn, name, &ok_error_));
    assert_state(conn, name, HV_MACHINE_PAUSED);
    assert_fails(hv_machine_start(conn, name, &ok_error_), HV_ERROR_INVALID, "paused");
    assert_state(conn, name, HV_MACHINE_PAUSED);

    assert_ok(hv_machine_resume(conn, name, &ok_error_));
    assert_state(conn, name, HV_MACHINE_RUNNING);
    assert_ok(hv_machine_resume(conn, name, &ok_error_));
    assert_state(conn, name, HV_MACHINE_RUNNING);

    assert_ok(hv_machine_reboot(conn, name, &ok_error_));
    assert_state(conn, name, HV_MACHINE_RUNNING);

    assert_ok(hv_machine_force_stop(conn, name, &ok_error_));
    assert_state(conn, name, HV_MACHINE_SHUTOFF);
    assert_ok(hv_machine_force_stop(conn, name, &ok_error_));
    assert_state(conn, name, HV_MACHINE_SHUTOFF);

    /* Remove destroys a running domain and undefines it; twice is fine. */
    assert_ok(hv_machine_start(conn, name, &ok_error_));
    assert_ok(hv_machine_remove(conn, name, &ok_error_));
    assert_state(conn, name, HV_MACHINE_ABSENT);
    g_autoptr(virDomain) gone = virDomainLookupByName(hv_conn_get_libvirt(conn), name);
    g_assert_null(gone);
    assert_ok(hv_machine_remove(conn, name, &ok_error_));

    /* A shut-off one too. */
    g_autofree char *off = define_stack(conn, "a1000000-0000-4000-8000-000000000002", "off");
    assert_ok(hv_machine_remove(conn, off, &ok_error_));
    assert_state(conn, off, HV_MACHINE_ABSENT);
}

static void test_remove_transient(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autoptr(HvStackSpec) spec = sample_spec("a1000000-0000-4000-8000-000000000003", "tr");
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_domain_build_xml(spec, HV_BACKEND_TEST, NULL, &error);
    g_assert_no_error(error);
    g_autoptr(virDomain) dom = virDomainCreateXML(hv_conn_get_libvirt(conn), xml, 0);
    g_assert_nonnull(dom);
    g_autofree char *name = hv_domain_name_for(spec->id);

    assert_state(conn, name, HV_MACHINE_RUNNING);
    assert_ok(hv_machine_remove(conn, name, &ok_error_));
    assert_state(conn, name, HV_MACHINE_ABSENT);
}

static void test_not_found(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    const char *name = "turtles-00000000-0000-4000-8000-00000000dead";
    const char *needle = "domain 'turtles-00000000-0000-4000-8000-00000000dead' not found";
    HvMachineStats stats;
    gboolean forced = TRUE;

    assert_fails(hv_machine_start(conn, name, &ok_error_), HV_ERROR_NOT_FOUND, needle);
    assert_fails(hv_machine_stop(conn, name, 1, NULL, &forced, &ok_error_), HV_ERROR_NOT_FOUND,
                 needle);
    g_assert_false(forced);
    assert_fails(hv_machine_force_stop(conn, name, &ok_error_), HV_ERROR_NOT_FOUND, needle);
    assert_fails(hv_machine_reboot(conn, name, &ok_error_), HV_ERROR_NOT_FOUND, needle);
    assert_fails(hv_machine_pause(conn, name, &ok_error_), HV_ERROR_NOT_FOUND, needle);
    assert_fails(hv_machine_resume(conn, name, &ok_error_), HV_ERROR_NOT_FOUND, needle);
    assert_fails(hv_machine_get_stats(conn, name, &stats, &ok_error_), HV_ERROR_NOT_FOUND, needle);

    /* Absent is an answer, not an error; so is "gone" for remove and wait. */
    assert_state(conn, name, HV_MACHINE_ABSENT);
    assert_ok(hv_machine_remove(conn, name, &ok_error_));
    assert_ok(hv_machine_wait_shutoff(conn, name, 1000, NULL, &ok_error_));
}

static void test_define_refused(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autofree char *name = define_stack(conn, "a2000000-0000-4000-8000-000000000001", "def");

    assert_fails(hv_machine_define(conn, "<domain", &ok_error_), HV_ERROR_INVALID,
                 "cannot define the domain");
    /* libvirt's schema validation is on: an unknown element is refused. */
    assert_fails(hv_machine_define(conn,
                                   "<domain type='test'><name>x</name><memory>65536</memory>"
                                   "<os><type>hvm</type></os><bogus/></domain>",
                                   &ok_error_),
                 HV_ERROR_INVALID, "cannot define the domain");
    /* Our name with another UUID. */
    g_autofree char *clash = g_strdup_printf("<domain type='test'><name>%s</name>"
                                             "<uuid>a2000000-0000-4000-8000-0000000000ff</uuid>"
                                             "<memory>65536</memory><os><type>hvm</type></os>"
                                             "</domain>",
                                             name);
    assert_fails(hv_machine_define(conn, clash, &ok_error_), HV_ERROR_LIBVIRT, "already exists");
    assert_state(conn, name, HV_MACHINE_SHUTOFF);
    assert_ok(hv_machine_remove(conn, name, &ok_error_));
}

static const HvMachineInfo *find_info(GPtrArray *infos, const char *name)
{
    for (guint i = 0; i < infos->len; i++) {
        const HvMachineInfo *info = g_ptr_array_index(infos, i);
        if (g_strcmp0(info->name, name) == 0)
            return info;
    }
    return NULL;
}

static void test_list_ours(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    const char *run_id = "a3000000-0000-4000-8000-000000000001";
    const char *off_id = "a3000000-0000-4000-8000-000000000002";
    g_autofree char *running = define_stack(conn, run_id, "web");
    g_autofree char *off = define_stack(conn, off_id, "db");
    assert_ok(hv_machine_start(conn, running, &ok_error_));

    /* Foreign: no metadata, even with our name prefix. */
    g_autoptr(virDomain) foreign =
        virDomainDefineXML(hv_conn_get_libvirt(conn),
                           "<domain type='test'><name>turtles-foreign</name><memory>65536</memory>"
                           "<os><type>hvm</type></os></domain>");
    g_assert_nonnull(foreign);
    /* Our namespace but no stack name: broken, skipped rather than adopted. */
    g_autoptr(virDomain) broken = virDomainDefineXML(
        hv_conn_get_libvirt(conn),
        "<domain type='test'><name>turtles-broken</name><memory>65536</memory>"
        "<os><type>hvm</type></os><metadata><t:stack xmlns:t='" HV_DOMAIN_METADATA_URI
        "'><t:id>x</t:id><t:tenant>acme</t:tenant></t:stack></metadata></domain>");
    g_assert_nonnull(broken);

    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) infos = hv_machine_list_ours(conn, &error);
    g_assert_no_error(error);
    g_assert_nonnull(infos);
    /* test:///default comes with its own domain "test": not ours either. */
    g_assert_cmpuint(infos->len, ==, 2);
    g_assert_null(find_info(infos, "turtles-foreign"));
    g_assert_null(find_info(infos, "test"));
    g_assert_null(find_info(infos, "turtles-broken"));

    const HvMachineInfo *web = find_info(infos, running);
    g_assert_nonnull(web);
    g_assert_cmpint(web->state, ==, HV_MACHINE_RUNNING);
    g_assert_cmpstr(web->identity->id, ==, run_id);
    g_assert_cmpstr(web->identity->name, ==, "web");
    g_assert_cmpstr(web->identity->tenant, ==, "acme");
    g_assert_cmpstr(web->identity->record_json, ==, "{\"name\":\"x\"}");
    const HvMachineInfo *db = find_info(infos, off);
    g_assert_nonnull(db);
    g_assert_cmpint(db->state, ==, HV_MACHINE_SHUTOFF);
    g_assert_cmpstr(db->identity->id, ==, off_id);
    g_assert_cmpstr(db->identity->name, ==, "db");
    g_assert_true(web->persistent);
    g_assert_true(db->persistent);

    /* A transient domain of ours (what an arriving migration is until it
     * finishes) is listed as not persistent, so that reconcile leaves it be. */
    const char *arriving_id = "a3000000-0000-4000-8000-000000000003";
    g_autoptr(HvStackSpec) spec = sample_spec(arriving_id, "arriving");
    g_autofree char *xml = hv_domain_build_xml(spec, HV_BACKEND_TEST, NULL, &error);
    g_assert_no_error(error);
    g_autoptr(virDomain) arriving = virDomainCreateXML(hv_conn_get_libvirt(conn), xml, 0);
    g_assert_nonnull(arriving);
    g_autoptr(GPtrArray) with_arriving = hv_machine_list_ours(conn, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(with_arriving->len, ==, 3);
    g_autofree char *arriving_name = hv_domain_name_for(arriving_id);
    const HvMachineInfo *transient = find_info(with_arriving, arriving_name);
    g_assert_nonnull(transient);
    g_assert_false(transient->persistent);
    g_assert_cmpint(transient->state, ==, HV_MACHINE_RUNNING);
    g_assert_cmpint(virDomainDestroy(arriving), ==, 0);

    /* Removed ones drop out. */
    assert_ok(hv_machine_remove(conn, running, &ok_error_));
    g_autoptr(GPtrArray) after = hv_machine_list_ours(conn, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(after->len, ==, 1);
    g_assert_nonnull(find_info(after, off));
    assert_ok(hv_machine_remove(conn, off, &ok_error_));
    g_assert_cmpint(virDomainUndefine(foreign), ==, 0);
    g_assert_cmpint(virDomainUndefine(broken), ==, 0);
}

/* Where a migration out stands: none for a domain that is just here
 * (defined, running, paused by an admin), done once it is gone. */
static void test_outgoing(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autofree char *name = define_stack(conn, "a1000000-0000-4000-8000-0000000000f1", "out");
    g_autoptr(GError) error = NULL;

    g_assert_cmpint(hv_machine_get_outgoing(conn, name, &error), ==, HV_OUTGOING_NONE);
    g_assert_no_error(error);
    assert_ok(hv_machine_start(conn, name, &ok_error_));
    g_assert_cmpint(hv_machine_get_outgoing(conn, name, &error), ==, HV_OUTGOING_NONE);
    assert_ok(hv_machine_pause(conn, name, &ok_error_));
    g_assert_cmpint(hv_machine_get_outgoing(conn, name, &error), ==, HV_OUTGOING_NONE);
    g_assert_no_error(error);
    assert_ok(hv_machine_remove(conn, name, &ok_error_));
    g_assert_cmpint(hv_machine_get_outgoing(conn, name, &error), ==, HV_OUTGOING_DONE);
    g_assert_no_error(error);
}

static void test_stats(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autofree char *name = define_stack(conn, "a4000000-0000-4000-8000-000000000001", "st");
    HvMachineStats stats;

    /* The test driver reports the state group only: the rest stays unknown. */
    memset(&stats, 0xa5, sizeof stats);
    assert_ok(hv_machine_get_stats(conn, name, &stats, &ok_error_));
    g_assert_cmpint(stats.state, ==, HV_MACHINE_SHUTOFF);
    g_assert_cmpint(stats.memory_rss_kib, ==, -1);
    g_assert_cmpuint(stats.cpu_time_ns, ==, 0);
    g_assert_cmpuint(stats.block_read_bytes, ==, 0);

    assert_ok(hv_machine_start(conn, name, &ok_error_));
    assert_ok(hv_machine_get_stats(conn, name, &stats, &ok_error_));
    g_assert_cmpint(stats.state, ==, HV_MACHINE_RUNNING);
    assert_ok(hv_machine_pause(conn, name, &ok_error_));
    assert_ok(hv_machine_get_stats(conn, name, &stats, &ok_error_));
    g_assert_cmpint(stats.state, ==, HV_MACHINE_PAUSED);
    assert_ok(hv_machine_remove(conn, name, &ok_error_));
}

/* What QEMU reports, as virDomainListGetStats hands it over. */
static void test_stats_parse(void)
{
    virTypedParameterPtr params = NULL;
    int n = 0, max = 0;
    HvMachineStats stats;

    g_assert_cmpint(virTypedParamsAddInt(&params, &n, &max, "state.state", VIR_DOMAIN_RUNNING), ==,
                    0);
    g_assert_cmpint(virTypedParamsAddULLong(&params, &n, &max, "cpu.time", 123456789ULL), ==, 0);
    g_assert_cmpint(virTypedParamsAddUInt(&params, &n, &max, "vcpu.current", 2), ==, 0);
    g_assert_cmpint(virTypedParamsAddULLong(&params, &n, &max, "balloon.current", 262144), ==, 0);
    g_assert_cmpint(virTypedParamsAddULLong(&params, &n, &max, "balloon.maximum", 524288), ==, 0);
    g_assert_cmpint(virTypedParamsAddUInt(&params, &n, &max, "block.count", 2), ==, 0);
    static const struct {
        const char *key;
        unsigned long long value;
    } block[] = {
        {"block.0.rd.bytes", 1000},
        {"block.0.wr.bytes", 200},
        {"block.0.rd.reqs", 10},
        {"block.0.wr.reqs", 2},
        {"block.1.rd.bytes", 24},
        {"block.1.wr.bytes", 5},
        {"block.1.rd.reqs", 1},
        {"block.1.wr.reqs", 3},
        /* Beyond block.count: a backing image, not counted. */
        {"block.2.rd.bytes", 1ULL << 40},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(block); i++)
        g_assert_cmpint(virTypedParamsAddULLong(&params, &n, &max, block[i].key, block[i].value),
                        ==, 0);

    hv_machine_stats_parse(params, n, &stats);
    g_assert_cmpint(stats.state, ==, HV_MACHINE_RUNNING);
    g_assert_cmpuint(stats.cpu_time_ns, ==, 123456789ULL);
    g_assert_cmpuint(stats.vcpus, ==, 2);
    g_assert_cmpuint(stats.memory_current_kib, ==, 262144);
    g_assert_cmpuint(stats.memory_maximum_kib, ==, 524288);
    g_assert_cmpint(stats.memory_rss_kib, ==, -1);
    g_assert_cmpuint(stats.block_read_bytes, ==, 1024);
    g_assert_cmpuint(stats.block_write_bytes, ==, 205);
    g_assert_cmpuint(stats.block_read_requests, ==, 11);
    g_assert_cmpuint(stats.block_write_requests, ==, 5);

    g_assert_cmpint(virTypedParamsAddULLong(&params, &n, &max, "balloon.rss", 180000), ==, 0);
    hv_machine_stats_parse(params, n, &stats);
    g_assert_cmpint(stats.memory_rss_kib, ==, 180000);
    virTypedParamsFree(params, n);

    /* Nothing reported at all. */
    hv_machine_stats_parse(NULL, 0, &stats);
    g_assert_cmpint(stats.state, ==, HV_MACHINE_OTHER);
    g_assert_cmpuint(stats.cpu_time_ns, ==, 0);
    g_assert_cmpint(stats.memory_rss_kib, ==, -1);
}

static void test_stop(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autofree char *name = define_stack(conn, "a5000000-0000-4000-8000-000000000001", "stop");
    gboolean forced = TRUE;

    /* Shut off already: nothing to do. */
    assert_ok(hv_machine_stop(conn, name, 5, NULL, &forced, &ok_error_));
    g_assert_false(forced);

    /* The test driver obeys the power button at once: never forced. */
    assert_ok(hv_machine_start(conn, name, &ok_error_));
    forced = TRUE;
    assert_ok(hv_machine_stop(conn, name, 5, NULL, &forced, &ok_error_));
    g_assert_false(forced);
    assert_state(conn, name, HV_MACHINE_SHUTOFF);

    /* A paused one is resumed, then stopped; @forced may be NULL. */
    assert_ok(hv_machine_start(conn, name, &ok_error_));
    assert_ok(hv_machine_pause(conn, name, &ok_error_));
    assert_ok(hv_machine_stop(conn, name, 5, NULL, NULL, &ok_error_));
    assert_state(conn, name, HV_MACHINE_SHUTOFF);

    /* A cancellable that fired already does not hide a domain that is off. */
    g_autoptr(GCancellable) cancelled = g_cancellable_new();
    g_cancellable_cancel(cancelled);
    assert_ok(hv_machine_start(conn, name, &ok_error_));
    assert_ok(hv_machine_stop(conn, name, 5, cancelled, &forced, &ok_error_));
    g_assert_false(forced);
    assert_state(conn, name, HV_MACHINE_SHUTOFF);
    assert_ok(hv_machine_remove(conn, name, &ok_error_));
}

typedef struct {
    HvConn *conn;
    const char *name;
    GCancellable *cancellable; /* cancel it, or else destroy the domain */
} Later;

static gpointer act_later(gpointer data)
{
    Later *later = data;

    g_usleep(300 * G_TIME_SPAN_MILLISECOND);
    if (later->cancellable)
        g_cancellable_cancel(later->cancellable);
    else
        g_assert_true(hv_machine_force_stop(later->conn, later->name, NULL));
    return NULL;
}

static gint64 elapsed_ms(gint64 start)
{
    return (g_get_monotonic_time() - start) / 1000;
}

static void test_wait_shutoff(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autofree char *name = define_stack(conn, "a6000000-0000-4000-8000-000000000001", "wait");
    g_autoptr(GError) error = NULL;

    assert_ok(hv_machine_wait_shutoff(conn, name, 0, NULL, &ok_error_));
    assert_ok(hv_machine_start(conn, name, &ok_error_));

    /* Still running when the time is up. */
    gint64 start = g_get_monotonic_time();
    g_assert_false(hv_machine_wait_shutoff(conn, name, 400, NULL, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    g_assert_nonnull(strstr(error->message, name));
    g_assert_cmpint(elapsed_ms(start), >=, 400);
    g_assert_cmpint(elapsed_ms(start), <, 5000);
    g_clear_error(&error);
    assert_state(conn, name, HV_MACHINE_RUNNING);

    /* Cancelled from another thread: it returns without waiting the time out. */
    g_autoptr(GCancellable) cancellable = g_cancellable_new();
    Later cancel = {conn, name, cancellable};
    start = g_get_monotonic_time();
    GThread *thread = g_thread_new("cancel", act_later, &cancel);
    g_assert_false(hv_machine_wait_shutoff(conn, name, 60000, cancellable, &error));
    g_thread_join(thread);
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_assert_cmpint(elapsed_ms(start), >=, 300);
    g_assert_cmpint(elapsed_ms(start), <, 10000);
    g_clear_error(&error);
    assert_state(conn, name, HV_MACHINE_RUNNING);

    /* Stopped by someone else while waiting. */
    Later destroy = {conn, name, NULL};
    start = g_get_monotonic_time();
    thread = g_thread_new("destroy", act_later, &destroy);
    assert_ok(hv_machine_wait_shutoff(conn, name, 60000, NULL, &ok_error_));
    g_thread_join(thread);
    g_assert_cmpint(elapsed_ms(start), >=, 300);
    g_assert_cmpint(elapsed_ms(start), <, 10000);
    assert_state(conn, name, HV_MACHINE_SHUTOFF);
    assert_ok(hv_machine_remove(conn, name, &ok_error_));
}

/* Hot-plug against test:///default.  libvirt 9.0's test driver implements
 * neither virDomainAttachDeviceFlags nor virDomainDetachDeviceAlias
 * ("this function is not supported by the connection driver"), so what is
 * checked here is everything around the libvirt call: refusals before it,
 * the idempotent paths that need none, and libvirt's refusal passed on.
 * The real attach and detach were checked by hand on a private libvirtd
 * with a TCG guest (a virtio-rng attached and detached live). */
static char *define_with_devices(HvConn *conn, const char *id)
{
    g_autoptr(HvStackSpec) spec = sample_spec(id, "devs");
    g_autoptr(GError) error = NULL;

    spec->iommu = HV_IOMMU_INTEL;
    g_ptr_array_add(spec->devices, hv_device_new("rng0", HV_DEVICE_VIRTIO_RNG, NULL));
    g_ptr_array_add(spec->devices, hv_device_new("gpu0", HV_DEVICE_VFIO, "0000:3b:00.0"));
    g_autofree char *xml = hv_domain_build_xml(spec, HV_BACKEND_TEST, NULL, &error);
    g_assert_no_error(error);
    g_assert_true(hv_machine_define(conn, xml, &error));
    g_assert_no_error(error);
    return hv_domain_name_for(id);
}

static void test_hotplug(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autofree char *name = define_with_devices(conn, "a1000000-0000-4000-8000-0000000000d1");
    g_autoptr(HvDevice) rng0 = hv_device_new("rng0", HV_DEVICE_VIRTIO_RNG, NULL);
    g_autoptr(HvDevice) gpu0 = hv_device_new("gpu0", HV_DEVICE_VFIO, "0000:3b:00.0");
    g_autoptr(HvDevice) rng1 = hv_device_new("rng1", HV_DEVICE_VIRTIO_RNG, NULL);
    g_autoptr(HvDevice) edu = hv_device_new("edu0", HV_DEVICE_EDU, NULL);
    g_autoptr(HvDevice) bad = hv_device_new("Bad", HV_DEVICE_VIRTIO_RNG, NULL);

    for (int round = 0; round < 2; round++) {
        /* Shut off, then running: each refusal and no-op holds in both. */
        assert_state(conn, name, round == 0 ? HV_MACHINE_SHUTOFF : HV_MACHINE_RUNNING);

        /* Refused before libvirt is asked. */
        assert_fails(hv_machine_attach_device(conn, name, edu, &ok_error_), HV_ERROR_UNSUPPORTED,
                     "libvirt cannot hot-plug");
        assert_fails(hv_machine_attach_device(conn, name, bad, &ok_error_), HV_ERROR_INVALID,
                     "id must match");
        assert_fails(hv_machine_attach_device(conn, "turtles-nope", rng1, &ok_error_),
                     HV_ERROR_NOT_FOUND, "domain 'turtles-nope' not found");
        assert_fails(hv_machine_detach_device(conn, "turtles-nope", "rng0", 1, &ok_error_),
                     HV_ERROR_NOT_FOUND, "domain 'turtles-nope' not found");

        /* Attached already: nothing to do. */
        assert_ok(hv_machine_attach_device(conn, name, rng0, &ok_error_));
        assert_ok(hv_machine_attach_device(conn, name, gpu0, &ok_error_));
        /* Not there: nothing to detach. */
        assert_ok(hv_machine_detach_device(conn, name, "rng1", 1, &ok_error_));
        assert_ok(hv_machine_detach_device(conn, name, "edu0", 1, &ok_error_));

        /* The real calls: the test driver has neither; its refusal comes
         * back as HV_ERROR_LIBVIRT naming the device. */
        assert_fails(hv_machine_attach_device(conn, name, rng1, &ok_error_), HV_ERROR_LIBVIRT,
                     "cannot attach device 'rng1' to domain");
        assert_fails(hv_machine_detach_device(conn, name, "rng0", 1, &ok_error_), HV_ERROR_LIBVIRT,
                     "cannot detach device 'rng0' from domain");

        g_autofree char *xml = hv_machine_get_xml(conn, name, NULL);
        g_autoptr(GPtrArray) ids = hv_domain_parse_device_ids(xml, NULL);
        g_assert_nonnull(ids);
        g_assert_cmpuint(ids->len, ==, 2);

        if (round == 0)
            assert_ok(hv_machine_start(conn, name, &ok_error_));
    }
    assert_ok(hv_machine_remove(conn, name, &ok_error_));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    virSetErrorFunc(NULL, quiet_libvirt);

    g_test_add_func("/machine/state-strings", test_state_strings);
    g_test_add_func("/machine/lifecycle", test_lifecycle);
    g_test_add_func("/machine/remove-transient", test_remove_transient);
    g_test_add_func("/machine/not-found", test_not_found);
    g_test_add_func("/machine/define-refused", test_define_refused);
    g_test_add_func("/machine/list-ours", test_list_ours);
    g_test_add_func("/machine/outgoing", test_outgoing);
    g_test_add_func("/machine/stats", test_stats);
    g_test_add_func("/machine/stats-parse", test_stats_parse);
    g_test_add_func("/machine/stop", test_stop);
    g_test_add_func("/machine/wait-shutoff", test_wait_shutoff);
    g_test_add_func("/machine/hotplug", test_hotplug);
    return g_test_run();
}
