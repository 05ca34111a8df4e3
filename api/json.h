/* json-c helpers shared by every model. */
#pragma once

#include <glib.h>
#include <json-c/json.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

/* Nesting deeper than this is refused before it can cost anything. */
#define API_JSON_MAX_DEPTH 32

/* Parses exactly one JSON value from @len bytes of @text (no trailing
 * garbage, depth limited to @max_depth).  API_ERROR_PARSE on failure. */
json_object *api_json_parse(const char *text, size_t len, int max_depth, GError **error);

/* Serializes @value compactly; the caller frees the result. */
char *api_json_to_string(json_object *value);

/* Name rule of the API: ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ */
gboolean api_name_is_valid(const char *name);
