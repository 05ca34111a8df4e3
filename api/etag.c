#include "api/etag.h"

#include <stdlib.h>
#include <string.h>

#include "api/json.h"

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* JSON with every object's members sorted by key: json-c keeps insertion
 * order, which a refactoring of a model's encoder could change without
 * changing the resource. */
static void append_canonical(GString *out, json_object *value)
{
    if (!json_object_is_type(value, json_type_object) &&
        !json_object_is_type(value, json_type_array)) {
        g_autofree char *text = api_json_to_string(value);
        g_string_append(out, text);
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
    g_autoptr(GPtrArray) keys = g_ptr_array_new();
    json_object_object_foreach(value, member_key, member)
    {
        (void)member;
        g_ptr_array_add(keys, member_key);
    }
    qsort(keys->pdata, keys->len, sizeof(gpointer), compare_keys);
    g_string_append_c(out, '{');
    for (guint i = 0; i < keys->len; i++) {
        const char *key = g_ptr_array_index(keys, i);
        g_autoptr(json_object) name = json_object_new_string(key);
        g_autofree char *quoted = api_json_to_string(name);
        if (i > 0)
            g_string_append_c(out, ',');
        g_string_append_printf(out, "%s:", quoted);
        append_canonical(out, json_object_object_get(value, key));
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
