/* Prometheus text exposition format 0.0.4: families, samples, histograms.
 * Only the writing; what is measured lives with what measures it (the HTTP
 * layer's latencies, the store's counts) and /metrics (system_routes.c)
 * puts it together. */
#pragma once

#include <glib.h>

/* Upper bounds (seconds) of the request latency buckets; +Inf is implied. */
#define METRICS_DURATION_BUCKETS 12
extern const double metrics_duration_bounds[METRICS_DURATION_BUCKETS];

typedef struct {
    guint64 buckets[METRICS_DURATION_BUCKETS]; /* observations <= bound, not cumulated */
    guint64 count;                             /* all observations (+Inf) */
    double sum;
} MetricsHistogram;

void metrics_histogram_observe(MetricsHistogram *histogram, double seconds);

/* "# HELP name help\n# TYPE name type\n" */
void metrics_family(GString *out, const char *name, const char *type, const char *help);
/* name{label="value",...} value\n; @labels is name, value, ..., NULL (may be NULL). */
void metrics_sample(GString *out, const char *name, const char *const *labels, double value);
/* name_bucket{labels,le="..."} ..., name_sum, name_count. */
void metrics_histogram(GString *out, const char *name, const char *const *labels,
                       const MetricsHistogram *histogram);
