/* daemon/metrics: the text format's families, samples (label values
 * escaped) and histograms (cumulated buckets, +Inf, sum and count). */
#include "daemon/metrics.h"

#include <string.h>

static void test_sample(void)
{
    g_autoptr(GString) out = g_string_new(NULL);
    metrics_family(out, "turtled_things", "gauge", "Things.");
    const char *const labels[] = {"route", "/v1/\"odd\"\\\n", "method", "GET", NULL};
    metrics_sample(out, "turtled_things", labels, 3);
    metrics_sample(out, "turtled_plain", NULL, 0.25);
    metrics_sample(out, "turtled_big", NULL, 1796607827.35);
    g_assert_cmpstr(out->str, ==,
                    "# HELP turtled_things Things.\n"
                    "# TYPE turtled_things gauge\n"
                    "turtled_things{route=\"/v1/\\\"odd\\\"\\\\\\n\",method=\"GET\"} 3\n"
                    "turtled_plain 0.25\n"
                    "turtled_big 1796607827.35\n");
}

static void test_histogram(void)
{
    MetricsHistogram histogram = {0};
    /* One in the first bucket, two on the bound of 0.1, one past the last. */
    metrics_histogram_observe(&histogram, 0.0005);
    metrics_histogram_observe(&histogram, 0.1);
    metrics_histogram_observe(&histogram, 0.07);
    metrics_histogram_observe(&histogram, 100);
    g_assert_cmpuint(histogram.count, ==, 4);

    g_autoptr(GString) out = g_string_new(NULL);
    const char *const labels[] = {"route", "/v1", NULL};
    metrics_histogram(out, "t_seconds", labels, &histogram);
    g_auto(GStrv) lines = g_strsplit(out->str, "\n", -1);
    g_assert_cmpuint(g_strv_length(lines), ==, METRICS_DURATION_BUCKETS + 3 + 1);
    g_assert_cmpstr(lines[0], ==, "t_seconds_bucket{route=\"/v1\",le=\"0.001\"} 1");
    g_assert_cmpstr(lines[5], ==, "t_seconds_bucket{route=\"/v1\",le=\"0.05\"} 1");
    g_assert_cmpstr(lines[6], ==, "t_seconds_bucket{route=\"/v1\",le=\"0.1\"} 3");
    g_assert_cmpstr(lines[METRICS_DURATION_BUCKETS - 1], ==,
                    "t_seconds_bucket{route=\"/v1\",le=\"30\"} 3");
    g_assert_cmpstr(lines[METRICS_DURATION_BUCKETS], ==,
                    "t_seconds_bucket{route=\"/v1\",le=\"+Inf\"} 4");
    g_assert_cmpstr(lines[METRICS_DURATION_BUCKETS + 1], ==,
                    "t_seconds_sum{route=\"/v1\"} 100.1705");
    g_assert_cmpstr(lines[METRICS_DURATION_BUCKETS + 2], ==, "t_seconds_count{route=\"/v1\"} 4");
    /* Buckets never decrease. */
    for (guint i = 1; i < METRICS_DURATION_BUCKETS; i++)
        g_assert_cmpfloat(metrics_duration_bounds[i], >, metrics_duration_bounds[i - 1]);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/metrics/sample", test_sample);
    g_test_add_func("/metrics/histogram", test_histogram);
    return g_test_run();
}
