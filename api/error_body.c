#include "api/error_body.h"

#include "api/error.h"
#include "api/json.h"

#define STATUS_MIN 400
#define STATUS_MAX 599

static const char *const body_keys[] = {"error", NULL};
static const char *const error_keys[] = {"status", "code", "message", NULL};

char *api_error_message_clean(const char *message)
{
    GString *out = g_string_new(NULL);
    const char *p = message ? message : "";

    while (*p != '\0') {
        if (out->len >= API_ERROR_MESSAGE_MAX) {
            g_string_append(out, "...");
            break;
        }
        gunichar c = g_utf8_get_char_validated(p, -1);
        if (c == (gunichar)-1 || c == (gunichar)-2 ||
            (g_unichar_iscntrl(c) && c != '\n' && c != '\t')) {
            /* json-c would copy invalid UTF-8 through and the body would not
             * be JSON any more (fuzz-http found it); escapes keep it readable. */
            g_string_append_printf(out, "\\x%02X", (guint8)*p);
            p++;
            continue;
        }
        const char *next = g_utf8_next_char(p);
        g_string_append_len(out, p, next - p);
        p = next;
    }
    return g_string_free(out, FALSE);
}

json_object *api_error_body_to_json(int status, const char *code, const char *message)
{
    g_return_val_if_fail(code != NULL, NULL);

    g_autofree char *valid = api_error_message_clean(message);
    json_object *inner = json_object_new_object();
    json_object_object_add(inner, "status", json_object_new_int(status));
    json_object_object_add(inner, "code", json_object_new_string(code));
    json_object_object_add(inner, "message", json_object_new_string(valid));

    json_object *root = json_object_new_object();
    json_object_object_add(root, "error", inner);
    return root;
}

gboolean api_error_body_from_json(json_object *value, int *status, char **code, char **message,
                                  GError **error)
{
    const ApiJsonFlags req = API_JSON_REQUIRED;
    json_object *inner = NULL;
    gint64 number = 0;
    g_autofree char *code_value = NULL;
    g_autofree char *message_value = NULL;

    /* Outputs change only on success, so a caller can keep a fallback. */
    if (!api_json_check_object(value, "", body_keys, error) ||
        !api_json_get_object(value, "", "error", req, error_keys, &inner, error) ||
        !api_json_get_int(inner, "error", "status", req, STATUS_MIN, STATUS_MAX, &number, error) ||
        !api_json_get_string(inner, "error", "code", req, &code_value, error) ||
        !api_json_get_string(inner, "error", "message", req, &message_value, error))
        return FALSE;
    if (!*code_value) {
        api_json_set_invalid(error, "error.code", "must not be empty");
        return FALSE;
    }

    if (status)
        *status = (int)number;
    if (code)
        *code = g_steal_pointer(&code_value);
    if (message)
        *message = g_steal_pointer(&message_value);
    return TRUE;
}
