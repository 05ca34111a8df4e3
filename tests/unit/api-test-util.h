/* Helpers shared by the api/ model tests: parse a literal, mutate a valid
 * document into an invalid one, and check that an error names its field. */
#pragma once

#include <string.h>

#include <glib.h>

#include "api/error.h"
#include "api/json.h"

static inline json_object *parse(const char *text)
{
    g_autoptr(GError) error = NULL;
    json_object *value = api_json_parse(text, strlen(text), API_JSON_MAX_DEPTH, &error);
    g_assert_no_error(error);
    g_assert_nonnull(value);
    return value;
}

/* A change to a valid document: the member at dotted @path is replaced by
 * the JSON @replacement, or removed when @replacement is NULL. */
typedef struct {
    const char *path;
    const char *replacement;
    const char *field; /* what the error message must name */
} Mutation;

static inline json_object *mutate(const char *valid, const Mutation *m)
{
    json_object *root = parse(valid);
    g_auto(GStrv) parts = g_strsplit(m->path, ".", -1);
    json_object *parent = root;
    guint n = g_strv_length(parts);
    for (guint i = 0; i + 1 < n; i++) {
        g_assert_true(json_object_object_get_ex(parent, parts[i], &parent));
        g_assert_true(json_object_is_type(parent, json_type_object));
    }
    if (m->replacement) {
        json_object *replacement = NULL;
        if (strcmp(m->replacement, "null") != 0)
            replacement = parse(m->replacement);
        json_object_object_add(parent, parts[n - 1], replacement);
    } else {
        g_assert_true(json_object_object_get_ex(parent, parts[n - 1], NULL));
        json_object_object_del(parent, parts[n - 1]);
    }
    return root;
}

static inline void assert_invalid(const GError *error, const char *field)
{
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    if (!strstr(error->message, field))
        g_error("message \"%s\" does not name \"%s\"", error->message, field);
}
