/* A stack's figures on the wire (GET /v1/stacks/{name}/stats), strictly
 * decoded like every model. */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#include "api/stack.h"

/* Counters are 0..API_STATS_COUNTER_MAX: json-c clamps numbers past int64 to
 * INT64_MAX, so that value itself is refused rather than taken for a count. */
#define API_STATS_COUNTER_MAX (G_MAXINT64 - 1)

typedef struct {
    gint64 time_ns; /* CPU time used by all vCPUs */
    gint64 vcpus;   /* 1..API_SPEC_VCPUS_MAX */
} ApiStatsCpu;

typedef struct {
    gint64 current_kib;
    gint64 maximum_kib;
    gint64 rss_kib; /* negative (null on the wire) when libvirt does not say */
} ApiStatsMemory;

/* Summed over the stack's disks. */
typedef struct {
    gint64 read_bytes;
    gint64 write_bytes;
    gint64 read_requests;
    gint64 write_requests;
} ApiStatsBlock;

typedef struct {
    char *peer;        /* the host's name it went to or came from */
    char *finished_at; /* RFC 3339 UTC */
    gint64 total_ms;
    gint64 downtime_ms;
    gint64 bytes; /* memory and disk moved */
} ApiStatsMigration;

/* cpu, memory and block are there (has_* TRUE) only while libvirt has figures
 * for the domain, i.e. while it runs or is paused; null otherwise.
 * last_migration is null until the stack has been migrated. */
typedef struct {
    char *stack; /* its name */
    ApiStackState state;
    char *collected_at; /* RFC 3339 UTC */
    gboolean has_cpu;
    ApiStatsCpu cpu;
    gboolean has_memory;
    ApiStatsMemory memory;
    gboolean has_block;
    ApiStatsBlock block;
    gboolean has_last_migration;
    ApiStatsMigration last_migration;
} ApiStackStats;

/* All groups absent, state stopped. */
ApiStackStats *api_stack_stats_new(void);
ApiStackStats *api_stack_stats_copy(const ApiStackStats *stats);
void api_stack_stats_free(ApiStackStats *stats);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiStackStats, api_stack_stats_free)

/* {"stack","state","collected_at",
 *  "cpu":{"time_ns","vcpus"}|null,
 *  "memory":{"current_kib","maximum_kib","rss_kib"|null}|null,
 *  "block":{"read_bytes","write_bytes","read_requests","write_requests"}|null,
 *  "last_migration":{"peer","finished_at","total_ms","downtime_ms","bytes"}|null}
 * Every member is required (null where allowed); unknown members, wrong
 * types and negative numbers are API_ERROR_INVALID naming the field
 * ("memory.rss_kib: ..."). */
json_object *api_stack_stats_to_json(const ApiStackStats *stats);
ApiStackStats *api_stack_stats_from_json(json_object *value, GError **error);

/* The response body {"stats": {...}}; errors name "stats.cpu.vcpus". */
json_object *api_stack_stats_body_to_json(const ApiStackStats *stats);
ApiStackStats *api_stack_stats_body_from_json(json_object *value, GError **error);
