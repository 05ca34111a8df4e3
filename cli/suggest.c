#include "cli/suggest.h"

#include <string.h>

guint suggest_distance(const char *a, const char *b)
{
    gsize n = strlen(a), m = strlen(b);
    /* Three rows of the optimal-string-alignment table. */
    g_autofree guint *before = g_new(guint, m + 1);
    g_autofree guint *previous = g_new(guint, m + 1);
    g_autofree guint *current = g_new(guint, m + 1);

    for (gsize j = 0; j <= m; j++)
        previous[j] = (guint)j;
    for (gsize i = 1; i <= n; i++) {
        current[0] = (guint)i;
        for (gsize j = 1; j <= m; j++) {
            guint cost = a[i - 1] == b[j - 1] ? 0 : 1;
            guint best = MIN(previous[j] + 1, current[j - 1] + 1);
            best = MIN(best, previous[j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                best = MIN(best, before[j - 2] + 1);
            current[j] = best;
        }
        guint *spare = before;
        before = previous;
        previous = current;
        current = spare;
    }
    return previous[m];
}

static guint allowed_distance(const char *word)
{
    gsize len = strlen(word);
    return len <= 4 ? 1 : len <= 8 ? 2 : 3;
}

const char *suggest_closest(const char *word, const char *const *candidates)
{
    const char *closest = NULL;
    guint closest_distance = allowed_distance(word) + 1;
    const char *prefixed = NULL;
    guint prefixes = 0;

    for (guint i = 0; candidates[i] != NULL; i++) {
        guint distance = suggest_distance(word, candidates[i]);
        if (distance < closest_distance) {
            closest = candidates[i];
            closest_distance = distance;
        }
        if (strlen(word) >= 2 && g_str_has_prefix(candidates[i], word)) {
            prefixed = candidates[i];
            prefixes++;
        }
    }
    if (closest != NULL)
        return closest;
    return prefixes == 1 ? prefixed : NULL;
}
