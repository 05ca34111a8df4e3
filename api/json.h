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
#define API_NAME_RULE "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
/* The same rule in words, for messages: people read these, not regexps. */
#define API_NAME_RULE_WORDS                                                                        \
    "must be 1 to 63 characters of lowercase letters, digits and '-', starting and ending "        \
    "with a letter or digit"
gboolean api_name_is_valid(const char *name);

/* ---- decoding helpers ---------------------------------------------------
 *
 * Every model decodes the same way:
 *
 *   static const char *const keys[] = {"name", "vcpus", NULL};
 *   if (!api_json_check_object(value, "", keys, error)) ...   // type + unknown keys
 *   if (!api_json_get_string(value, "", "name", API_JSON_REQUIRED, &out->name, error)) ...
 *   if (!api_json_get_object(value, "", "boot", API_JSON_REQUIRED, boot_keys, &boot, error)) ...
 *   if (!api_json_get_string(boot, "boot", "kernel", API_JSON_OPTIONAL, &out->kernel, error)) ...
 *
 * then checks value rules (ranges, names, choices) on the decoded struct, so
 * that structs built in C go through the same checks.
 *
 * A path names a field as the client wrote it: "vcpus", "boot.kernel",
 * "devices[1]"; the top-level value is "" (printed as "body").  Every error is
 * API_ERROR_INVALID with a message "<path>: <what is wrong>".
 *
 * Getters look @key up in @object (already checked to be an object):
 * - absent and API_JSON_OPTIONAL: TRUE, *out untouched (preset the default);
 * - absent and API_JSON_REQUIRED: "<path>: is required";
 * - JSON null: refused ("must be a string") unless API_JSON_NULLABLE.
 * Type checks are exact: json-c's own getters would quietly turn "2", 1.5 or
 * true into an integer, these never do. */

typedef enum {
    API_JSON_OPTIONAL = 0,
    API_JSON_REQUIRED = 1 << 0,
    API_JSON_NULLABLE = 1 << 1, /* null gives NULL strings and API_JSON_UNKNOWN numbers */
} ApiJsonFlags;

/* What a nullable integer or a tri-state flag holds after a JSON null. */
#define API_JSON_UNKNOWN (-1)

/* "<parent>.<key>" (or "<key>" at the top level), and "<parent>[<index>]". */
char *api_json_path_member(const char *parent, const char *key);
char *api_json_path_index(const char *parent, size_t index);

/* Sets API_ERROR_INVALID with "<path>: <message>". */
void api_json_set_invalid(GError **error, const char *path, const char *format, ...)
    G_GNUC_PRINTF(3, 4);

/* Value rules shared by decoders and validators. */
gboolean api_json_check_range(const char *path, gint64 value, gint64 min, gint64 max,
                              GError **error);
/* A name of the API: "<path>: is required" for NULL, else "<path>:
 * <API_NAME_RULE_WORDS>". */
gboolean api_json_check_name(const char *path, const char *name, GError **error);
/* "<path>: must be a UUID" */
gboolean api_json_check_uuid(const char *path, const char *value, GError **error);
/* "<path>: must be an RFC 3339 UTC time ..." (full date-time form, UTC only) */
gboolean api_json_check_time(const char *path, const char *value, GError **error);
/* @choices is NULL-terminated; the message lists them. */
gboolean api_json_check_choice(const char *path, const char *value, const char *const *choices,
                               GError **error);
/* A NULL-terminated list of acceptable keys; anything else is "<path>.<key>: unknown field".
 * NULL @keys checks the type only (the caller checks the members). */
gboolean api_json_check_object(json_object *value, const char *path, const char *const *keys,
                               GError **error);

/* Checks one value found at @path (NULL is JSON null).  Strings must not
 * contain NUL (a "\u0000" would otherwise cut a C string short); *out gets a
 * copy, the previous value is freed.  Integers must be JSON integers in
 * [@min, @max]. */
gboolean api_json_value_string(json_object *value, const char *path, ApiJsonFlags flags, char **out,
                               GError **error);
gboolean api_json_value_int(json_object *value, const char *path, ApiJsonFlags flags, gint64 min,
                            gint64 max, gint64 *out, GError **error);
gboolean api_json_value_bool(json_object *value, const char *path, gboolean *out, GError **error);

/* Members of @object, which sits at @path.  *out of get_object/get_array is
 * borrowed from @object (NULL for an accepted null); get_object also checks
 * the member's keys.  get_bool never accepts null: use get_tristate. */
gboolean api_json_get_object(json_object *object, const char *path, const char *key,
                             ApiJsonFlags flags, const char *const *keys, json_object **out,
                             GError **error);
gboolean api_json_get_array(json_object *object, const char *path, const char *key,
                            ApiJsonFlags flags, json_object **out, GError **error);
gboolean api_json_get_string(json_object *object, const char *path, const char *key,
                             ApiJsonFlags flags, char **out, GError **error);
gboolean api_json_get_int(json_object *object, const char *path, const char *key,
                          ApiJsonFlags flags, gint64 min, gint64 max, gint64 *out, GError **error);
gboolean api_json_get_bool(json_object *object, const char *path, const char *key,
                           ApiJsonFlags flags, gboolean *out, GError **error);
/* true -> 1, false -> 0, null -> API_JSON_UNKNOWN (null is always accepted). */
gboolean api_json_get_tristate(json_object *object, const char *path, const char *key,
                               ApiJsonFlags flags, int *out, GError **error);

/* Encoding counterparts of the tri-states: negative values encode as null. */
json_object *api_json_new_tristate(int value);
json_object *api_json_new_int_or_null(gint64 value);
json_object *api_json_new_string_or_null(const char *value);

/* ---- pages of lists -----------------------------------------------------
 *
 * Every list answers {"<member>": [...], "next": CURSOR|null}: next is the
 * opaque cursor of the following page, null on the last. */

/* The body of a page: @items (an array, stolen) under @member, and @next. */
json_object *api_json_page_new(const char *member, json_object *items, const char *next);

/* Decodes one item of a page (the item is an object; errors name fields
 * from the item's own top). */
typedef gpointer (*ApiJsonItemDecode)(json_object *item, GError **error);

/* Reads a page strictly (only @member and "next"; next a non-empty string
 * or null): its items by @decode, in an array that frees them with
 * @free_func, errors naming "<member>[i].<field>"; *@next gets the cursor
 * (NULL on the last page). */
GPtrArray *api_json_page_decode(json_object *value, const char *member, ApiJsonItemDecode decode,
                                GDestroyNotify free_func, char **next, GError **error);
