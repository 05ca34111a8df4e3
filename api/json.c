#include <math.h>
#include "api/json.h"

#include <stdarg.h>
#include <string.h>

#include "api/error.h"

/* Keys echoed into messages are capped so a hostile key cannot bloat them. */
#define KEY_ECHO_MAX 64

static gboolean is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* json-c reads NaN and Infinity even in strict mode; JSON has neither.  The
 * depth is already bounded by the tokener, so recursion here is too. */
static gboolean has_non_finite(json_object *value)
{
    switch (json_object_get_type(value)) {
    case json_type_double:
        return !isfinite(json_object_get_double(value));
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(value); i++)
            if (has_non_finite(json_object_array_get_idx(value, i)))
                return TRUE;
        return FALSE;
    case json_type_object: {
        json_object_object_foreach(value, key, member)
        {
            (void)key;
            if (has_non_finite(member))
                return TRUE;
        }
        return FALSE;
    }
    default:
        return FALSE;
    }
}

json_object *api_json_parse(const char *text, size_t len, int max_depth, GError **error)
{
    g_return_val_if_fail(text != NULL || len == 0, NULL);
    g_return_val_if_fail(max_depth > 0, NULL);

    /* json-c takes an int length. */
    if (len > G_MAXINT) {
        g_set_error(error, API_ERROR, API_ERROR_PARSE, "invalid JSON: input too large");
        return NULL;
    }
    /* NUL would end json-c's input early, and json-c lets raw control
     * characters through inside strings, which JSON forbids anywhere. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 || is_json_space((char)c))
            continue;
        g_set_error(error, API_ERROR, API_ERROR_PARSE, "invalid JSON at offset %zu: %s", i,
                    c ? "control character" : "NUL byte");
        return NULL;
    }
    size_t start = 0;
    while (start < len && is_json_space(text[start]))
        start++;
    if (start == len) {
        g_set_error(error, API_ERROR, API_ERROR_PARSE, "invalid JSON: empty input");
        return NULL;
    }

    json_tokener *tok = json_tokener_new_ex(max_depth);
    if (!tok) {
        g_set_error(error, API_ERROR, API_ERROR_PARSE, "invalid JSON: cannot allocate a parser");
        return NULL;
    }
    /* Strict: no trailing commas, single quotes or leading zeros. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);

    json_object *value = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue) {
        /* A bare number or literal only ends at a terminator: send one. */
        value = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        end = len;
    }

    gboolean ok = FALSE;
    if (jerr == json_tokener_error_depth) {
        g_set_error(error, API_ERROR, API_ERROR_PARSE, "invalid JSON: nesting deeper than %d",
                    max_depth);
    } else if (jerr != json_tokener_success) {
        g_set_error(error, API_ERROR, API_ERROR_PARSE, "invalid JSON at offset %zu: %s", end,
                    json_tokener_error_desc(jerr));
    } else {
        /* Strict json-c already refuses most trailing data; make sure only
         * whitespace followed, whatever its flags do. */
        while (end < len && is_json_space(text[end]))
            end++;
        if (end < len) {
            g_set_error(error, API_ERROR, API_ERROR_PARSE,
                        "invalid JSON at offset %zu: unexpected data after the value", end);
        } else if (!value) {
            /* A bare `null` parses to NULL, which callers would read as failure. */
            g_set_error(error, API_ERROR, API_ERROR_INVALID, "body: must not be null");
        } else if (has_non_finite(value)) {
            g_set_error(error, API_ERROR, API_ERROR_PARSE,
                        "invalid JSON: NaN and Infinity are not JSON numbers");
        } else {
            ok = TRUE;
        }
    }
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(value);
        return NULL;
    }
    return value;
}

char *api_json_to_string(json_object *value)
{
    return g_strdup(json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
}

static gboolean is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

gboolean api_name_is_valid(const char *name)
{
    if (!name)
        return FALSE;
    size_t len = strlen(name);
    if (len < 1 || len > 63)
        return FALSE;
    if (!is_lower_alnum(name[0]) || !is_lower_alnum(name[len - 1]))
        return FALSE;
    for (size_t i = 1; i + 1 < len; i++) {
        if (!is_lower_alnum(name[i]) && name[i] != '-')
            return FALSE;
    }
    return TRUE;
}

/* ---- paths and errors ---------------------------------------------------- */

char *api_json_path_member(const char *parent, const char *key)
{
    if (!parent || !*parent)
        return g_strdup(key);
    return g_strdup_printf("%s.%s", parent, key);
}

char *api_json_path_index(const char *parent, size_t index)
{
    return g_strdup_printf("%s[%zu]", parent ? parent : "", index);
}

void api_json_set_invalid(GError **error, const char *path, const char *format, ...)
{
    if (!error)
        return;
    va_list args;
    va_start(args, format);
    g_autofree char *message = g_strdup_vprintf(format, args);
    va_end(args);
    g_set_error(error, API_ERROR, API_ERROR_INVALID, "%s: %s", path && *path ? path : "body",
                message);
}

/* ---- value rules ----------------------------------------------------------- */

gboolean api_json_check_range(const char *path, gint64 value, gint64 min, gint64 max,
                              GError **error)
{
    if (value < min || value > max) {
        api_json_set_invalid(
            error, path, "must be between %" G_GINT64_FORMAT " and %" G_GINT64_FORMAT, min, max);
        return FALSE;
    }
    return TRUE;
}

gboolean api_json_check_name(const char *path, const char *name, GError **error)
{
    if (!name) {
        api_json_set_invalid(error, path, "is required");
        return FALSE;
    }
    if (!api_name_is_valid(name)) {
        api_json_set_invalid(error, path, "%s", API_NAME_RULE_WORDS);
        return FALSE;
    }
    return TRUE;
}

gboolean api_json_check_choice(const char *path, const char *value, const char *const *choices,
                               GError **error)
{
    for (const char *const *choice = choices; *choice; choice++) {
        if (value && strcmp(value, *choice) == 0)
            return TRUE;
    }
    g_autofree char *list = g_strjoinv(", ", (char **)choices);
    api_json_set_invalid(error, path, "must be one of %s", list);
    return FALSE;
}

static gboolean key_is_known(const char *key, const char *const *keys)
{
    if (!keys)
        return TRUE; /* the caller checks the members itself */
    for (const char *const *known = keys; *known; known++) {
        if (strcmp(key, *known) == 0)
            return TRUE;
    }
    return FALSE;
}

gboolean api_json_check_object(json_object *value, const char *path, const char *const *keys,
                               GError **error)
{
    if (!json_object_is_type(value, json_type_object)) {
        api_json_set_invalid(error, path, "must be an object");
        return FALSE;
    }
    json_object_object_foreach(value, key, member)
    {
        (void)member;
        if (key_is_known(key, keys))
            continue;
        /* The tokener validated UTF-8, but objects built in C may not be. */
        g_autofree char *shown = g_utf8_make_valid(key, -1);
        if (g_utf8_strlen(shown, -1) > KEY_ECHO_MAX) {
            g_autofree char *cut = g_utf8_substring(shown, 0, KEY_ECHO_MAX);
            g_free(shown);
            shown = g_strconcat(cut, "...", NULL);
        }
        g_autofree char *member_path = api_json_path_member(path, shown);
        api_json_set_invalid(error, member_path, "unknown field");
        return FALSE;
    }
    return TRUE;
}

/* ---- typed values ---------------------------------------------------------- */

static const char *or_null(ApiJsonFlags flags)
{
    return (flags & API_JSON_NULLABLE) ? " or null" : "";
}

gboolean api_json_value_string(json_object *value, const char *path, ApiJsonFlags flags, char **out,
                               GError **error)
{
    if (!value && (flags & API_JSON_NULLABLE)) {
        g_clear_pointer(out, g_free);
        return TRUE;
    }
    if (!json_object_is_type(value, json_type_string)) {
        api_json_set_invalid(error, path, "must be a string%s", or_null(flags));
        return FALSE;
    }
    const char *text = json_object_get_string(value);
    if ((size_t)json_object_get_string_len(value) != strlen(text)) {
        api_json_set_invalid(error, path, "must not contain NUL characters");
        return FALSE;
    }
    g_free(*out);
    *out = g_strdup(text);
    return TRUE;
}

gboolean api_json_value_int(json_object *value, const char *path, ApiJsonFlags flags, gint64 min,
                            gint64 max, gint64 *out, GError **error)
{
    if (!value && (flags & API_JSON_NULLABLE)) {
        *out = API_JSON_UNKNOWN;
        return TRUE;
    }
    if (!json_object_is_type(value, json_type_int)) {
        api_json_set_invalid(error, path, "must be an integer%s", or_null(flags));
        return FALSE;
    }
    /* Values past int64 clamp to its ends, which every real range rejects. */
    gint64 number = json_object_get_int64(value);
    if (!api_json_check_range(path, number, min, max, error))
        return FALSE;
    *out = number;
    return TRUE;
}

gboolean api_json_value_bool(json_object *value, const char *path, gboolean *out, GError **error)
{
    if (!json_object_is_type(value, json_type_boolean)) {
        api_json_set_invalid(error, path, "must be a boolean");
        return FALSE;
    }
    *out = json_object_get_boolean(value) ? TRUE : FALSE;
    return TRUE;
}

/* ---- members ----------------------------------------------------------------- */

/* Looks @key up; FALSE when absent (with an error if it was required). */
static gboolean lookup(json_object *object, const char *path, const char *key, ApiJsonFlags flags,
                       json_object **member, GError **error)
{
    if (json_object_object_get_ex(object, key, member))
        return TRUE;
    if (flags & API_JSON_REQUIRED) {
        g_autofree char *member_path = api_json_path_member(path, key);
        api_json_set_invalid(error, member_path, "is required");
    }
    return FALSE;
}

#define ABSENT_RESULT(flags) (((flags)&API_JSON_REQUIRED) == 0)

gboolean api_json_get_object(json_object *object, const char *path, const char *key,
                             ApiJsonFlags flags, const char *const *keys, json_object **out,
                             GError **error)
{
    json_object *member = NULL;
    if (!lookup(object, path, key, flags, &member, error))
        return ABSENT_RESULT(flags);
    g_autofree char *member_path = api_json_path_member(path, key);
    if (!member && (flags & API_JSON_NULLABLE)) {
        *out = NULL;
        return TRUE;
    }
    if (!member) {
        api_json_set_invalid(error, member_path, "must be an object");
        return FALSE;
    }
    if (!api_json_check_object(member, member_path, keys, error))
        return FALSE;
    *out = member;
    return TRUE;
}

gboolean api_json_get_array(json_object *object, const char *path, const char *key,
                            ApiJsonFlags flags, json_object **out, GError **error)
{
    json_object *member = NULL;
    if (!lookup(object, path, key, flags, &member, error))
        return ABSENT_RESULT(flags);
    if (!member && (flags & API_JSON_NULLABLE)) {
        *out = NULL;
        return TRUE;
    }
    if (!json_object_is_type(member, json_type_array)) {
        g_autofree char *member_path = api_json_path_member(path, key);
        api_json_set_invalid(error, member_path, "must be an array");
        return FALSE;
    }
    *out = member;
    return TRUE;
}

gboolean api_json_get_string(json_object *object, const char *path, const char *key,
                             ApiJsonFlags flags, char **out, GError **error)
{
    json_object *member = NULL;
    if (!lookup(object, path, key, flags, &member, error))
        return ABSENT_RESULT(flags);
    g_autofree char *member_path = api_json_path_member(path, key);
    return api_json_value_string(member, member_path, flags, out, error);
}

gboolean api_json_get_int(json_object *object, const char *path, const char *key,
                          ApiJsonFlags flags, gint64 min, gint64 max, gint64 *out, GError **error)
{
    json_object *member = NULL;
    if (!lookup(object, path, key, flags, &member, error))
        return ABSENT_RESULT(flags);
    g_autofree char *member_path = api_json_path_member(path, key);
    return api_json_value_int(member, member_path, flags, min, max, out, error);
}

gboolean api_json_get_bool(json_object *object, const char *path, const char *key,
                           ApiJsonFlags flags, gboolean *out, GError **error)
{
    json_object *member = NULL;
    if (!lookup(object, path, key, flags, &member, error))
        return ABSENT_RESULT(flags);
    g_autofree char *member_path = api_json_path_member(path, key);
    return api_json_value_bool(member, member_path, out, error);
}

gboolean api_json_get_tristate(json_object *object, const char *path, const char *key,
                               ApiJsonFlags flags, int *out, GError **error)
{
    json_object *member = NULL;
    if (!lookup(object, path, key, flags, &member, error))
        return ABSENT_RESULT(flags);
    if (!member) {
        *out = API_JSON_UNKNOWN;
        return TRUE;
    }
    if (!json_object_is_type(member, json_type_boolean)) {
        g_autofree char *member_path = api_json_path_member(path, key);
        api_json_set_invalid(error, member_path, "must be a boolean or null");
        return FALSE;
    }
    *out = json_object_get_boolean(member) ? 1 : 0;
    return TRUE;
}

/* ---- encoding ------------------------------------------------------------- */

json_object *api_json_new_tristate(int value)
{
    return value < 0 ? NULL : json_object_new_boolean(value != 0);
}

json_object *api_json_new_int_or_null(gint64 value)
{
    return value < 0 ? NULL : json_object_new_int64(value);
}

json_object *api_json_new_string_or_null(const char *value)
{
    return value ? json_object_new_string(value) : NULL;
}

gboolean api_json_check_uuid(const char *path, const char *value, GError **error)
{
    if (!value || !g_uuid_string_is_valid(value)) {
        api_json_set_invalid(error, path, "must be a UUID");
        return FALSE;
    }
    return TRUE;
}

/* RFC 3339 wants the full "YYYY-MM-DDTHH:MM:SS" form, which
 * g_date_time_new_from_iso8601 alone would not insist on (it also takes
 * week dates, basic format and a space for the T), and the contract wants
 * UTC.  Lower-case t/z, legal in RFC 3339, are refused: GLib cannot parse
 * them, and our encoders never write them. */
gboolean api_json_check_time(const char *path, const char *value, GError **error)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    gboolean ok = value && strlen(value) > sizeof(shape) - 1;
    for (size_t i = 0; ok && shape[i]; i++) {
        char c = value[i];
        ok = shape[i] == 'd' ? g_ascii_isdigit(c) : c == shape[i];
    }
    if (ok) {
        g_autoptr(GDateTime) parsed = g_date_time_new_from_iso8601(value, NULL);
        ok = parsed && g_date_time_get_utc_offset(parsed) == 0;
    }
    if (!ok) {
        api_json_set_invalid(error, path, "must be an RFC 3339 UTC time like 2024-05-01T12:00:00Z");
        return FALSE;
    }
    return TRUE;
}

/* ---- pages of lists ------------------------------------------------------------ */

json_object *api_json_page_new(const char *member, json_object *items, const char *next)
{
    json_object *root = json_object_new_object();
    json_object_object_add(root, member, items);
    json_object_object_add(root, "next", api_json_new_string_or_null(next));
    return root;
}

GPtrArray *api_json_page_decode(json_object *value, const char *member, ApiJsonItemDecode decode,
                                GDestroyNotify free_func, char **next, GError **error)
{
    g_return_val_if_fail(next != NULL, NULL);
    const char *const keys[] = {member, "next", NULL};
    json_object *list = NULL;
    g_autofree char *cursor = NULL;

    if (!api_json_check_object(value, "", keys, error) ||
        !api_json_get_array(value, "", member, API_JSON_REQUIRED, &list, error) ||
        !api_json_get_string(value, "", "next", API_JSON_REQUIRED | API_JSON_NULLABLE, &cursor,
                             error))
        return NULL;
    if (cursor != NULL && cursor[0] == '\0') {
        api_json_set_invalid(error, "next", "must not be empty");
        return NULL;
    }
    g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func(free_func);
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *item = json_object_array_get_idx(list, i);
        g_autofree char *path = api_json_path_index(member, i);
        /* The item decoder names fields from its own top: say where it sits. */
        if (!json_object_is_type(item, json_type_object)) {
            api_json_set_invalid(error, path, "must be an object");
            return NULL;
        }
        gpointer decoded = decode(item, error);
        if (decoded == NULL) {
            g_prefix_error(error, "%s.", path);
            return NULL;
        }
        g_ptr_array_add(items, decoded);
    }
    *next = g_steal_pointer(&cursor);
    return g_steal_pointer(&items);
}
