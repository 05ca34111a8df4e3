/* Prometheus text exposition format (see metrics.h). */
#include "daemon/metrics.h"

/* From a quick GET answered from the store (a millisecond) to a slow
 * upload or a long-poll (seconds to a minute). */
const double metrics_duration_bounds[METRICS_DURATION_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30,
};

void metrics_histogram_observe(MetricsHistogram *histogram, double seconds)
{
    for (guint i = 0; i < METRICS_DURATION_BUCKETS; i++)
        if (seconds <= metrics_duration_bounds[i]) {
            histogram->buckets[i]++;
            break;
        }
    histogram->count++;
    histogram->sum += seconds;
}

void metrics_family(GString *out, const char *name, const char *type, const char *help)
{
    g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void append_label_value(GString *out, const char *value)
{
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\n')
            g_string_append(out, "\\n");
        else if (*p == '\\' || *p == '"')
            g_string_append_printf(out, "\\%c", *p);
        else
            g_string_append_c(out, *p);
    }
}

static void append_labels(GString *out, const char *const *labels, const char *le)
{
    gboolean any = FALSE;
    for (guint i = 0; labels != NULL && labels[i] != NULL; i += 2) {
        g_string_append_printf(out, "%s%s=\"", any ? "," : "{", labels[i]);
        append_label_value(out, labels[i + 1] != NULL ? labels[i + 1] : "");
        g_string_append_c(out, '"');
        any = TRUE;
    }
    if (le != NULL) {
        g_string_append_printf(out, "%sle=\"%s\"", any ? "," : "{", le);
        any = TRUE;
    }
    if (any)
        g_string_append_c(out, '}');
}

/* 15 significant digits: counts stay exact up to 10^15, times read well
 * (0.000507, not 0.00050699999999999996); the C locale's decimal point. */
static const char *format_value(char *text, gsize size, double value)
{
    return g_ascii_formatd(text, (gint)size, "%.15g", value);
}

static void append_value(GString *out, double value)
{
    char text[G_ASCII_DTOSTR_BUF_SIZE];
    g_string_append_printf(out, " %s\n", format_value(text, sizeof(text), value));
}

void metrics_sample(GString *out, const char *name, const char *const *labels, double value)
{
    g_string_append(out, name);
    append_labels(out, labels, NULL);
    append_value(out, value);
}

void metrics_histogram(GString *out, const char *name, const char *const *labels,
                       const MetricsHistogram *histogram)
{
    g_autofree char *bucket = g_strconcat(name, "_bucket", NULL);
    g_autofree char *sum = g_strconcat(name, "_sum", NULL);
    g_autofree char *count = g_strconcat(name, "_count", NULL);
    guint64 cumulated = 0;
    char le[G_ASCII_DTOSTR_BUF_SIZE];

    for (guint i = 0; i < METRICS_DURATION_BUCKETS; i++) {
        cumulated += histogram->buckets[i];
        g_string_append(out, bucket);
        append_labels(out, labels, format_value(le, sizeof(le), metrics_duration_bounds[i]));
        append_value(out, (double)cumulated);
    }
    g_string_append(out, bucket);
    append_labels(out, labels, "+Inf");
    append_value(out, (double)histogram->count);
    g_string_append(out, sum);
    append_labels(out, labels, NULL);
    append_value(out, histogram->sum);
    g_string_append(out, count);
    append_labels(out, labels, NULL);
    append_value(out, (double)histogram->count);
}
