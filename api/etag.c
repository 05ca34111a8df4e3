#include "api/etag.h"

#include <stdlib.h>
#include <string.h>

#include "api/json.h"

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A string as json-c writes it with JSON_C_TO_STRING_NOSLASHESCAPE (what
 * api_json_to_string uses), without making a json-c object for it: the
 * ETag of every answer is computed, so this is on the hot path. */
static void append_quoted(GString *out, const char *text, gsize len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *end = (const unsigned char *)text + len;

    g_string_append_c(out, '"');
    for (const unsigned char *p = (const unsigned char *)text; p < end; p++) {
        switch (*p) {
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\b':
            g_string_append(out, "\\b");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        case '\f':
            g_string_append(out, "\\f");
            break;
        default:
            if (*p < ' ') {
                g_string_append(out, "\\u00");
                g_string_append_c(out, hex[*p >> 4]);
                g_string_append_c(out, hex[*p & 0xf]);
            } else {
                g_string_append_c(out, (char)*p);
            }
        }
    }
    g_string_append_c(out, '"');
}

/* JSON with every object's members sorted by key: json-c keeps insertion
 * order, which a refactoring of a model's encoder could change without
 * changing the resource. */
static void append_canonical(GString *out, json_object *value)
{
    if (json_object_is_type(value, json_type_string)) {
        append_quoted(out, json_object_get_string(value), (gsize)json_object_get_string_len(value));
        return;
    }
    if (!json_object_is_type(value, json_type_object) &&
        !json_object_is_type(value, json_type_array)) {
        /* The text belongs to @value: no copy. */
        g_string_append(out, json_object_to_json_string_ext(
                                 value, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        return;
    }
    if (json_object_is_type(value, json_type_array)) {
        g_string_append_c(out, '[');
        for (size_t i = 0; i < json_object_array_length(value); i++) {
            if (i > 0)
                g_string_append_c(out, ',');
            append_canonical(out, json_object_array_get_idx(value, i));
        }
        g_string_append_c(out, ']');
        return;
    }
    gsize count = (gsize)json_object_object_length(value);
    g_autofree const char **keys = g_new(const char *, MAX(count, 1));
    gsize n = 0;
    json_object_object_foreach(value, member_key, member)
    {
        (void)member;
        keys[n++] = member_key;
    }
    qsort(keys, n, sizeof(const char *), compare_keys);
    g_string_append_c(out, '{');
    for (gsize i = 0; i < n; i++) {
        if (i > 0)
            g_string_append_c(out, ',');
        append_quoted(out, keys[i], strlen(keys[i]));
        g_string_append_c(out, ':');
        append_canonical(out, json_object_object_get(value, keys[i]));
    }
    g_string_append_c(out, '}');
}

char *api_etag(json_object *representation)
{
    g_autoptr(GString) canonical = g_string_new(NULL);
    append_canonical(canonical, representation);
    g_autofree char *digest =
        g_compute_checksum_for_string(G_CHECKSUM_SHA256, canonical->str, (gssize)canonical->len);
    return g_strdup_printf("\"%.*s\"", API_ETAG_HEX_LEN, digest);
}
