/* api/stats: a stack's figures on the wire, decoded strictly. */
#include "api/error.h"
#include "api/json.h"
#include "api/stats.h"
#include "tests/unit/api-test-util.h"

#include <string.h>

#define COLLECTED "2024-05-01T12:00:05.125Z"
#define MIGRATED  "2024-05-01T11:58:00Z"

#define VALID_CPU    "{\"time_ns\":81234567890,\"vcpus\":2}"
#define VALID_MEMORY "{\"current_kib\":1048576,\"maximum_kib\":1048576,\"rss_kib\":262144}"
#define VALID_BLOCK                                                                                \
    "{\"read_bytes\":10485760,\"write_bytes\":4096,\"read_requests\":320,\"write_requests\":1}"
#define VALID_MIGRATION                                                                            \
    "{\"peer\":\"hostb\",\"finished_at\":\"" MIGRATED "\",\"total_ms\":2150,\"downtime_ms\":42,"   \
    "\"bytes\":1210000000}"
#define VALID_STATS                                                                                \
    "{\"stack\":\"web\",\"state\":\"running\",\"collected_at\":\"" COLLECTED "\","                 \
    "\"cpu\":" VALID_CPU ",\"memory\":" VALID_MEMORY ",\"block\":" VALID_BLOCK ","                 \
    "\"last_migration\":" VALID_MIGRATION "}"
#define STOPPED_STATS                                                                              \
    "{\"stack\":\"web\",\"state\":\"stopped\",\"collected_at\":\"" COLLECTED "\","                 \
    "\"cpu\":null,\"memory\":null,\"block\":null,\"last_migration\":null}"

/* Stricter than assert_invalid: the message starts with "<field>: ". */
static void assert_invalid_prefix(const GError *error, const char *field)
{
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    g_autofree char *prefix = g_strconcat(field, ": ", NULL);
    if (!g_str_has_prefix(error->message, prefix))
        g_error("message \"%s\" does not start with \"%s\"", error->message, prefix);
}

static ApiStackStats *stats_fixture(void)
{
    ApiStackStats *stats = api_stack_stats_new();
    stats->stack = g_strdup("web");
    stats->state = API_STACK_STATE_RUNNING;
    stats->collected_at = g_strdup(COLLECTED);
    stats->has_cpu = TRUE;
    stats->cpu.time_ns = G_GINT64_CONSTANT(81234567890);
    stats->cpu.vcpus = 2;
    stats->has_memory = TRUE;
    stats->memory.current_kib = 1048576;
    stats->memory.maximum_kib = 1048576;
    stats->memory.rss_kib = 262144;
    stats->has_block = TRUE;
    stats->block.read_bytes = 10485760;
    stats->block.write_bytes = 4096;
    stats->block.read_requests = 320;
    stats->block.write_requests = 1;
    stats->has_last_migration = TRUE;
    stats->last_migration.peer = g_strdup("hostb");
    stats->last_migration.finished_at = g_strdup(MIGRATED);
    stats->last_migration.total_ms = 2150;
    stats->last_migration.downtime_ms = 42;
    stats->last_migration.bytes = 1210000000;
    return stats;
}

/* Compares what the wire carries: groups that are absent compare equal
 * whatever their (meaningless) figures. */
static void assert_wire_equal(const ApiStackStats *a, const ApiStackStats *b)
{
    g_assert_cmpstr(a->stack, ==, b->stack);
    g_assert_cmpint(a->state, ==, b->state);
    g_assert_cmpstr(a->collected_at, ==, b->collected_at);
    g_assert_cmpint(a->has_cpu, ==, b->has_cpu);
    if (a->has_cpu) {
        g_assert_cmpint(a->cpu.time_ns, ==, b->cpu.time_ns);
        g_assert_cmpint(a->cpu.vcpus, ==, b->cpu.vcpus);
    }
    g_assert_cmpint(a->has_memory, ==, b->has_memory);
    if (a->has_memory) {
        g_assert_cmpint(a->memory.current_kib, ==, b->memory.current_kib);
        g_assert_cmpint(a->memory.maximum_kib, ==, b->memory.maximum_kib);
        g_assert_cmpint(a->memory.rss_kib < 0 ? -1 : a->memory.rss_kib, ==,
                        b->memory.rss_kib < 0 ? -1 : b->memory.rss_kib);
    }
    g_assert_cmpint(a->has_block, ==, b->has_block);
    if (a->has_block) {
        g_assert_cmpint(a->block.read_bytes, ==, b->block.read_bytes);
        g_assert_cmpint(a->block.write_bytes, ==, b->block.write_bytes);
        g_assert_cmpint(a->block.read_requests, ==, b->block.read_requests);
        g_assert_cmpint(a->block.write_requests, ==, b->block.write_requests);
    }
    g_assert_cmpint(a->has_last_migration, ==, b->has_last_migration);
    if (a->has_last_migration) {
        g_assert_cmpstr(a->last_migration.peer, ==, b->last_migration.peer);
        g_assert_cmpstr(a->last_migration.finished_at, ==, b->last_migration.finished_at);
        g_assert_cmpint(a->last_migration.total_ms, ==, b->last_migration.total_ms);
        g_assert_cmpint(a->last_migration.downtime_ms, ==, b->last_migration.downtime_ms);
        g_assert_cmpint(a->last_migration.bytes, ==, b->last_migration.bytes);
    }
}

/* Encodes, serializes, parses and decodes @stats, as a client would see it. */
static ApiStackStats *round_trip(const ApiStackStats *stats)
{
    g_autoptr(json_object) value = api_stack_stats_body_to_json(stats);
    g_autofree char *text = api_json_to_string(value);
    g_autoptr(json_object) parsed = parse(text);
    g_autoptr(GError) error = NULL;
    ApiStackStats *decoded = api_stack_stats_body_from_json(parsed, &error);
    g_assert_no_error(error);
    g_assert_nonnull(decoded);
    return decoded;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

static void test_new_and_copy(void)
{
    g_autoptr(ApiStackStats) fresh = api_stack_stats_new();
    g_assert_cmpint(fresh->state, ==, API_STACK_STATE_STOPPED);
    g_assert_false(fresh->has_cpu || fresh->has_memory || fresh->has_block ||
                   fresh->has_last_migration);
    g_assert_cmpint(fresh->memory.rss_kib, <, 0);
    api_stack_stats_free(NULL);
    g_assert_null(api_stack_stats_copy(NULL));

    g_autoptr(ApiStackStats) stats = stats_fixture();
    g_autoptr(ApiStackStats) copy = api_stack_stats_copy(stats);
    assert_wire_equal(copy, stats);
    g_assert_true(copy->stack != stats->stack);
    g_assert_true(copy->last_migration.peer != stats->last_migration.peer);
    /* Freeing the original leaves the copy whole (ASan/valgrind would catch a share). */
    g_clear_pointer(&stats, api_stack_stats_free);
    g_assert_cmpstr(copy->last_migration.finished_at, ==, MIGRATED);
    g_assert_cmpstr(copy->collected_at, ==, COLLECTED);
}

/* ---- JSON -------------------------------------------------------------------------------- */

static void test_shape(void)
{
    g_autoptr(ApiStackStats) stats = api_stack_stats_new();
    stats->stack = g_strdup("web");
    stats->collected_at = g_strdup(COLLECTED);
    g_autoptr(json_object) value = api_stack_stats_to_json(stats);
    g_autofree char *text = api_json_to_string(value);
    g_assert_cmpstr(text, ==, STOPPED_STATS);

    g_autoptr(json_object) body = api_stack_stats_body_to_json(stats);
    g_autofree char *body_text = api_json_to_string(body);
    g_assert_cmpstr(body_text, ==, "{\"stats\":" STOPPED_STATS "}");

    /* A full document decodes and encodes back to itself, member for member. */
    g_autoptr(json_object) valid = parse(VALID_STATS);
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiStackStats) decoded = api_stack_stats_from_json(valid, &error);
    g_assert_no_error(error);
    g_assert_cmpint(decoded->state, ==, API_STACK_STATE_RUNNING);
    g_assert_true(decoded->has_cpu && decoded->has_memory && decoded->has_block &&
                  decoded->has_last_migration);
    g_assert_cmpint(decoded->cpu.time_ns, ==, G_GINT64_CONSTANT(81234567890));
    g_assert_cmpint(decoded->memory.rss_kib, ==, 262144);
    g_assert_cmpint(decoded->block.read_requests, ==, 320);
    g_assert_cmpstr(decoded->last_migration.peer, ==, "hostb");
    g_assert_cmpint(decoded->last_migration.downtime_ms, ==, 42);
    g_autoptr(json_object) encoded = api_stack_stats_to_json(decoded);
    g_assert_true(json_object_equal(encoded, valid));
}

static void test_round_trip(void)
{
    g_autoptr(ApiStackStats) stats = stats_fixture();
    g_autoptr(ApiStackStats) back = round_trip(stats);
    assert_wire_equal(back, stats);

    /* Each group on its own, every state, an unknown rss, and the largest counters. */
    for (int mask = 0; mask < 16; mask++) {
        g_autoptr(ApiStackStats) other = stats_fixture();
        other->state = (ApiStackState)(mask % (API_STACK_STATE_DELETING + 1));
        other->has_cpu = (mask & 1) != 0;
        other->has_memory = (mask & 2) != 0;
        other->has_block = (mask & 4) != 0;
        other->has_last_migration = (mask & 8) != 0;
        other->memory.rss_kib = mask & 1 ? -1 : 0;
        other->cpu.time_ns = API_STATS_COUNTER_MAX;
        other->cpu.vcpus = mask & 1 ? 1 : 64;
        other->block.write_bytes = API_STATS_COUNTER_MAX;
        other->last_migration.bytes = 0;
        g_autoptr(ApiStackStats) decoded = round_trip(other);
        assert_wire_equal(decoded, other);
    }

    /* An unknown rss is null on the wire, not -1. */
    g_autoptr(ApiStackStats) no_rss = stats_fixture();
    no_rss->memory.rss_kib = -1;
    g_autoptr(json_object) value = api_stack_stats_to_json(no_rss);
    json_object *memory = NULL;
    json_object *rss = NULL;
    g_assert_true(json_object_object_get_ex(value, "memory", &memory));
    g_assert_true(json_object_object_get_ex(memory, "rss_kib", &rss));
    g_assert_null(rss);
}

static const Mutation stats_bad[] = {
    /* unknown fields, at every level */
    {"extra", "1", "extra"},
    {"cpu.steal_ns", "0", "cpu.steal_ns"},
    {"memory.swap_kib", "0", "memory.swap_kib"},
    {"block.flush_requests", "0", "block.flush_requests"},
    {"last_migration.live", "true", "last_migration.live"},
    /* every member is required */
    {"stack", NULL, "stack"},
    {"state", NULL, "state"},
    {"collected_at", NULL, "collected_at"},
    {"cpu", NULL, "cpu"},
    {"memory", NULL, "memory"},
    {"block", NULL, "block"},
    {"last_migration", NULL, "last_migration"},
    {"cpu.time_ns", NULL, "cpu.time_ns"},
    {"cpu.vcpus", NULL, "cpu.vcpus"},
    {"memory.current_kib", NULL, "memory.current_kib"},
    {"memory.maximum_kib", NULL, "memory.maximum_kib"},
    {"memory.rss_kib", NULL, "memory.rss_kib"},
    {"block.read_bytes", NULL, "block.read_bytes"},
    {"block.write_bytes", NULL, "block.write_bytes"},
    {"block.read_requests", NULL, "block.read_requests"},
    {"block.write_requests", NULL, "block.write_requests"},
    {"last_migration.peer", NULL, "last_migration.peer"},
    {"last_migration.finished_at", NULL, "last_migration.finished_at"},
    {"last_migration.total_ms", NULL, "last_migration.total_ms"},
    {"last_migration.downtime_ms", NULL, "last_migration.downtime_ms"},
    {"last_migration.bytes", NULL, "last_migration.bytes"},
    /* wrong types */
    {"stack", "7", "stack"},
    {"stack", "null", "stack"},
    {"state", "1", "state"},
    {"collected_at", "null", "collected_at"},
    {"cpu", "[]", "cpu"},
    {"cpu", "0", "cpu"},
    {"memory", "\"1G\"", "memory"},
    {"block", "true", "block"},
    {"last_migration", "[]", "last_migration"},
    {"cpu.time_ns", "\"81234567890\"", "cpu.time_ns"},
    {"cpu.time_ns", "1.5", "cpu.time_ns"},
    {"cpu.time_ns", "null", "cpu.time_ns"},
    {"cpu.vcpus", "true", "cpu.vcpus"},
    {"memory.current_kib", "null", "memory.current_kib"},
    {"memory.rss_kib", "\"262144\"", "memory.rss_kib"},
    {"block.read_bytes", "1e3", "block.read_bytes"},
    {"last_migration.peer", "null", "last_migration.peer"},
    {"last_migration.bytes", "null", "last_migration.bytes"},
    /* negative and out-of-range numbers */
    {"cpu.time_ns", "-1", "cpu.time_ns"},
    {"cpu.time_ns", "99999999999999999999999", "cpu.time_ns"}, /* clamped by json-c */
    {"cpu.time_ns", "9223372036854775807", "cpu.time_ns"},
    {"cpu.vcpus", "0", "cpu.vcpus"},
    {"cpu.vcpus", "65", "cpu.vcpus"},
    {"memory.current_kib", "-1024", "memory.current_kib"},
    {"memory.maximum_kib", "-1", "memory.maximum_kib"},
    {"memory.rss_kib", "-1", "memory.rss_kib"}, /* unknown is null, never -1 */
    {"block.read_bytes", "-1", "block.read_bytes"},
    {"block.write_bytes", "-4096", "block.write_bytes"},
    {"block.read_requests", "-1", "block.read_requests"},
    {"block.write_requests", "-1", "block.write_requests"},
    {"last_migration.total_ms", "-1", "last_migration.total_ms"},
    {"last_migration.downtime_ms", "-5", "last_migration.downtime_ms"},
    {"last_migration.bytes", "-1", "last_migration.bytes"},
    /* bad values */
    {"stack", "\"Web\"", "stack"},
    {"stack", "\"\"", "stack"},
    {"state", "\"exploded\"", "state"},
    {"state", "\"Running\"", "state"},
    {"collected_at", "\"yesterday\"", "collected_at"},
    {"collected_at", "\"2024-05-01T12:00:00+02:00\"", "collected_at"},
    {"last_migration.peer", "\"host_b\"", "last_migration.peer"},
    {"last_migration.finished_at", "\"2024-05-01\"", "last_migration.finished_at"},
};

static void test_from_json_bad(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(stats_bad); i++) {
        const Mutation *m = &stats_bad[i];
        g_test_message("%s <- %s", m->path, m->replacement ? m->replacement : "(removed)");
        g_autoptr(json_object) value = mutate(VALID_STATS, m);
        g_autoptr(GError) error = NULL;
        g_autoptr(ApiStackStats) stats = api_stack_stats_from_json(value, &error);
        g_assert_null(stats);
        assert_invalid_prefix(error, m->field);

        /* Inside the body the same error names the field from the top. */
        g_autoptr(json_object) body = json_object_new_object();
        json_object_object_add(body, "stats", json_object_get(value));
        g_autoptr(GError) body_error = NULL;
        g_autoptr(ApiStackStats) from_body = api_stack_stats_body_from_json(body, &body_error);
        g_assert_null(from_body);
        g_autofree char *field = g_strconcat("stats.", m->field, NULL);
        assert_invalid_prefix(body_error, field);
    }

    static const struct {
        const char *body;
        const char *message;
    } exact[] = {
        {"[]", "body: must be an object"},
        {"{\"stats\":" VALID_STATS ",\"next\":null}", "next: unknown field"},
        {"{}", "stats: is required"},
        {"{\"stats\":null}", "stats: must be an object"},
        {"{\"stats\":[" VALID_STATS "]}", "stats: must be an object"},
        {"{\"stats\":{\"stack\":\"web\",\"bogus\":1}}", "stats.bogus: unknown field"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(exact); i++) {
        g_autoptr(json_object) value = parse(exact[i].body);
        g_autoptr(GError) error = NULL;
        g_assert_null(api_stack_stats_body_from_json(value, &error));
        g_assert_error(error, API_ERROR, API_ERROR_INVALID);
        g_assert_cmpstr(error->message, ==, exact[i].message);
    }

    /* The state message lists the stack states. */
    g_autoptr(json_object) value = parse(VALID_STATS);
    json_object_object_add(value, "state", json_object_new_string("on"));
    g_autoptr(GError) error = NULL;
    g_assert_null(api_stack_stats_from_json(value, &error));
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==,
                    "state: must be one of provisioning, running, stopped, paused, migrating, "
                    "error, deleting");
}

static void test_nulls_accepted(void)
{
    /* A stopped stack: no figures, no migration. */
    g_autoptr(json_object) value = parse(STOPPED_STATS);
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiStackStats) stats = api_stack_stats_from_json(value, &error);
    g_assert_no_error(error);
    g_assert_cmpint(stats->state, ==, API_STACK_STATE_STOPPED);
    g_assert_false(stats->has_cpu || stats->has_memory || stats->has_block ||
                   stats->has_last_migration);

    /* rss may be unknown while the rest is there. */
    g_autoptr(json_object) no_rss = parse(VALID_STATS);
    json_object *memory = NULL;
    g_assert_true(json_object_object_get_ex(no_rss, "memory", &memory));
    json_object_object_add(memory, "rss_kib", NULL);
    g_autoptr(ApiStackStats) decoded = api_stack_stats_from_json(no_rss, &error);
    g_assert_no_error(error);
    g_assert_true(decoded->has_memory);
    g_assert_cmpint(decoded->memory.rss_kib, <, 0);
    g_assert_cmpint(decoded->memory.current_kib, ==, 1048576);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/stats/new-and-copy", test_new_and_copy);
    g_test_add_func("/api/stats/shape", test_shape);
    g_test_add_func("/api/stats/round-trip", test_round_trip);
    g_test_add_func("/api/stats/from-json-bad", test_from_json_bad);
    g_test_add_func("/api/stats/nulls-accepted", test_nulls_accepted);
    return g_test_run();
}
