#include "api/stats.h"

#include "api/error.h"
#include "api/json.h"
#include "api/spec.h"

static const char *const stats_keys[] = {
    "stack", "state", "collected_at", "cpu", "memory", "block", "last_migration", NULL,
};
static const char *const cpu_keys[] = {"time_ns", "vcpus", NULL};
static const char *const memory_keys[] = {"current_kib", "maximum_kib", "rss_kib", NULL};
static const char *const block_keys[] = {
    "read_bytes", "write_bytes", "read_requests", "write_requests", NULL,
};
static const char *const migration_keys[] = {
    "peer", "finished_at", "total_ms", "downtime_ms", "bytes", NULL,
};
static const char *const body_keys[] = {"stats", NULL};

/* ---- lifetime ----------------------------------------------------------------- */

ApiStackStats *api_stack_stats_new(void)
{
    ApiStackStats *stats = g_new0(ApiStackStats, 1);
    stats->state = API_STACK_STATE_STOPPED;
    stats->memory.rss_kib = -1;
    return stats;
}

ApiStackStats *api_stack_stats_copy(const ApiStackStats *stats)
{
    if (!stats)
        return NULL;
    ApiStackStats *copy = g_new0(ApiStackStats, 1);
    *copy = *stats;
    copy->stack = g_strdup(stats->stack);
    copy->collected_at = g_strdup(stats->collected_at);
    copy->last_migration.peer = g_strdup(stats->last_migration.peer);
    copy->last_migration.finished_at = g_strdup(stats->last_migration.finished_at);
    return copy;
}

void api_stack_stats_free(ApiStackStats *stats)
{
    if (!stats)
        return;
    g_free(stats->stack);
    g_free(stats->collected_at);
    g_free(stats->last_migration.peer);
    g_free(stats->last_migration.finished_at);
    g_free(stats);
}

/* ---- encoding --------------------------------------------------------------------- */

static void add_int(json_object *object, const char *key, gint64 value)
{
    json_object_object_add(object, key, json_object_new_int64(value));
}

json_object *api_stack_stats_to_json(const ApiStackStats *stats)
{
    g_return_val_if_fail(stats != NULL, NULL);

    json_object *root = json_object_new_object();
    json_object_object_add(root, "stack", api_json_new_string_or_null(stats->stack));
    json_object_object_add(root, "state",
                           json_object_new_string(api_stack_state_to_string(stats->state)));
    json_object_object_add(root, "collected_at", api_json_new_string_or_null(stats->collected_at));

    json_object *cpu = NULL;
    if (stats->has_cpu) {
        cpu = json_object_new_object();
        add_int(cpu, "time_ns", stats->cpu.time_ns);
        add_int(cpu, "vcpus", stats->cpu.vcpus);
    }
    json_object_object_add(root, "cpu", cpu);

    json_object *memory = NULL;
    if (stats->has_memory) {
        memory = json_object_new_object();
        add_int(memory, "current_kib", stats->memory.current_kib);
        add_int(memory, "maximum_kib", stats->memory.maximum_kib);
        json_object_object_add(memory, "rss_kib", api_json_new_int_or_null(stats->memory.rss_kib));
    }
    json_object_object_add(root, "memory", memory);

    json_object *block = NULL;
    if (stats->has_block) {
        block = json_object_new_object();
        add_int(block, "read_bytes", stats->block.read_bytes);
        add_int(block, "write_bytes", stats->block.write_bytes);
        add_int(block, "read_requests", stats->block.read_requests);
        add_int(block, "write_requests", stats->block.write_requests);
    }
    json_object_object_add(root, "block", block);

    json_object *migration = NULL;
    if (stats->has_last_migration) {
        const ApiStatsMigration *m = &stats->last_migration;
        migration = json_object_new_object();
        json_object_object_add(migration, "peer", api_json_new_string_or_null(m->peer));
        json_object_object_add(migration, "finished_at",
                               api_json_new_string_or_null(m->finished_at));
        add_int(migration, "total_ms", m->total_ms);
        add_int(migration, "downtime_ms", m->downtime_ms);
        add_int(migration, "bytes", m->bytes);
    }
    json_object_object_add(root, "last_migration", migration);
    return root;
}

json_object *api_stack_stats_body_to_json(const ApiStackStats *stats)
{
    g_return_val_if_fail(stats != NULL, NULL);
    json_object *root = json_object_new_object();
    json_object_object_add(root, "stats", api_stack_stats_to_json(stats));
    return root;
}

/* ---- decoding --------------------------------------------------------------------- */

/* A required counter of @object (at @path): an integer in 0..API_STATS_COUNTER_MAX. */
static gboolean get_counter(json_object *object, const char *path, const char *key,
                            ApiJsonFlags flags, gint64 *out, GError **error)
{
    return api_json_get_int(object, path, key, API_JSON_REQUIRED | flags, 0, API_STATS_COUNTER_MAX,
                            out, error);
}

static gboolean decode_cpu(json_object *cpu, ApiStatsCpu *out, GError **error)
{
    return get_counter(cpu, "cpu", "time_ns", 0, &out->time_ns, error) &&
           api_json_get_int(cpu, "cpu", "vcpus", API_JSON_REQUIRED, 1, API_SPEC_VCPUS_MAX,
                            &out->vcpus, error);
}

static gboolean decode_memory(json_object *memory, ApiStatsMemory *out, GError **error)
{
    return get_counter(memory, "memory", "current_kib", 0, &out->current_kib, error) &&
           get_counter(memory, "memory", "maximum_kib", 0, &out->maximum_kib, error) &&
           get_counter(memory, "memory", "rss_kib", API_JSON_NULLABLE, &out->rss_kib, error);
}

static gboolean decode_block(json_object *block, ApiStatsBlock *out, GError **error)
{
    return get_counter(block, "block", "read_bytes", 0, &out->read_bytes, error) &&
           get_counter(block, "block", "write_bytes", 0, &out->write_bytes, error) &&
           get_counter(block, "block", "read_requests", 0, &out->read_requests, error) &&
           get_counter(block, "block", "write_requests", 0, &out->write_requests, error);
}

static gboolean decode_migration(json_object *migration, ApiStatsMigration *out, GError **error)
{
    const char *path = "last_migration";
    return api_json_get_string(migration, path, "peer", API_JSON_REQUIRED, &out->peer, error) &&
           api_json_get_string(migration, path, "finished_at", API_JSON_REQUIRED, &out->finished_at,
                               error) &&
           get_counter(migration, path, "total_ms", 0, &out->total_ms, error) &&
           get_counter(migration, path, "downtime_ms", 0, &out->downtime_ms, error) &&
           get_counter(migration, path, "bytes", 0, &out->bytes, error) &&
           api_json_check_name("last_migration.peer", out->peer, error) &&
           api_json_check_time("last_migration.finished_at", out->finished_at, error);
}

ApiStackStats *api_stack_stats_from_json(json_object *value, GError **error)
{
    const ApiJsonFlags req = API_JSON_REQUIRED;
    const ApiJsonFlags req_null = API_JSON_REQUIRED | API_JSON_NULLABLE;
    g_autoptr(ApiStackStats) stats = api_stack_stats_new();
    g_autofree char *state = NULL;
    json_object *cpu = NULL;
    json_object *memory = NULL;
    json_object *block = NULL;
    json_object *migration = NULL;

    if (!api_json_check_object(value, "", stats_keys, error) ||
        !api_json_get_string(value, "", "stack", req, &stats->stack, error) ||
        !api_json_get_string(value, "", "state", req, &state, error) ||
        !api_json_get_string(value, "", "collected_at", req, &stats->collected_at, error) ||
        !api_json_get_object(value, "", "cpu", req_null, cpu_keys, &cpu, error) ||
        !api_json_get_object(value, "", "memory", req_null, memory_keys, &memory, error) ||
        !api_json_get_object(value, "", "block", req_null, block_keys, &block, error) ||
        !api_json_get_object(value, "", "last_migration", req_null, migration_keys, &migration,
                             error))
        return NULL;

    if (!api_json_check_name("stack", stats->stack, error) ||
        !api_stack_state_check("state", state, &stats->state, error) ||
        !api_json_check_time("collected_at", stats->collected_at, error))
        return NULL;

    stats->has_cpu = cpu != NULL;
    stats->has_memory = memory != NULL;
    stats->has_block = block != NULL;
    stats->has_last_migration = migration != NULL;
    if ((cpu && !decode_cpu(cpu, &stats->cpu, error)) ||
        (memory && !decode_memory(memory, &stats->memory, error)) ||
        (block && !decode_block(block, &stats->block, error)) ||
        (migration && !decode_migration(migration, &stats->last_migration, error)))
        return NULL;
    return g_steal_pointer(&stats);
}

ApiStackStats *api_stack_stats_body_from_json(json_object *value, GError **error)
{
    json_object *inner = NULL;

    if (!api_json_check_object(value, "", body_keys, error) ||
        !api_json_get_object(value, "", "stats", API_JSON_REQUIRED, stats_keys, &inner, error))
        return NULL;
    ApiStackStats *stats = api_stack_stats_from_json(inner, error);
    if (!stats)
        g_prefix_error(error, "stats.");
    return stats;
}
