#include "api/operator_token.h"

#include <string.h>

#include "api/error.h"
#include "api/json.h"

static const char *const token_keys[] = {"id",          "secret",     "scope",
                                         "description", "created_at", NULL};
static const char *const create_keys[] = {"scope", "description", NULL};
static const char *const scopes[] = {API_OPERATOR_SCOPE_ADMIN, API_OPERATOR_SCOPE_METRICS, NULL};

ApiOperatorToken *api_operator_token_new(void)
{
    return g_new0(ApiOperatorToken, 1);
}

void api_operator_token_free(ApiOperatorToken *token)
{
    if (!token)
        return;
    g_free(token->id);
    if (token->secret)
        memset(token->secret, 0, strlen(token->secret));
    g_free(token->secret);
    g_free(token->scope);
    g_free(token->description);
    g_free(token->created_at);
    g_free(token);
}

gboolean api_operator_token_check_scope(const char *path, const char *scope, GError **error)
{
    return api_json_check_choice(path, scope, scopes, error);
}

/* Shown in tables and logs: a newline or an escape sequence would forge lines. */
static gboolean check_description(const char *path, const char *text, GError **error)
{
    if (!text)
        return TRUE;
    gboolean ok =
        strlen(text) <= API_OPERATOR_TOKEN_DESCRIPTION_MAX && g_utf8_validate(text, -1, NULL);
    for (const char *p = text; ok && *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        ok = !g_unichar_iscntrl(c);
    }
    if (!ok)
        api_json_set_invalid(error, path,
                             "must be UTF-8 text without control characters, at most %d bytes",
                             API_OPERATOR_TOKEN_DESCRIPTION_MAX);
    return ok;
}

ApiOperatorToken *api_operator_token_create_from_json(json_object *value, GError **error)
{
    g_autoptr(ApiOperatorToken) token = api_operator_token_new();

    if (!api_json_check_object(value, "", create_keys, error) ||
        !api_json_get_string(value, "", "scope", API_JSON_REQUIRED, &token->scope, error) ||
        !api_json_get_string(value, "", "description", API_JSON_OPTIONAL, &token->description,
                             error) ||
        !api_operator_token_check_scope("scope", token->scope, error) ||
        !check_description("description", token->description, error))
        return NULL;
    return g_steal_pointer(&token);
}

json_object *api_operator_token_to_json(const ApiOperatorToken *token)
{
    g_return_val_if_fail(token != NULL, NULL);

    json_object *root = json_object_new_object();
    json_object_object_add(root, "id", api_json_new_string_or_null(token->id));
    if (token->secret)
        json_object_object_add(root, "secret", json_object_new_string(token->secret));
    json_object_object_add(root, "scope", api_json_new_string_or_null(token->scope));
    json_object_object_add(root, "description", api_json_new_string_or_null(token->description));
    json_object_object_add(root, "created_at", api_json_new_string_or_null(token->created_at));
    return root;
}

ApiOperatorToken *api_operator_token_from_json(json_object *value, GError **error)
{
    const ApiJsonFlags req = API_JSON_REQUIRED;
    g_autoptr(ApiOperatorToken) token = api_operator_token_new();

    if (!api_json_check_object(value, "", token_keys, error) ||
        !api_json_get_string(value, "", "id", req, &token->id, error) ||
        !api_json_get_string(value, "", "secret", API_JSON_OPTIONAL, &token->secret, error) ||
        !api_json_get_string(value, "", "scope", req, &token->scope, error) ||
        !api_json_get_string(value, "", "description", req | API_JSON_NULLABLE, &token->description,
                             error) ||
        !api_json_get_string(value, "", "created_at", req, &token->created_at, error))
        return NULL;
    if (!api_json_check_uuid("id", token->id, error))
        return NULL;
    if (token->secret && !*token->secret) {
        api_json_set_invalid(error, "secret", "must not be empty");
        return NULL;
    }
    if (!api_operator_token_check_scope("scope", token->scope, error) ||
        !check_description("description", token->description, error) ||
        !api_json_check_time("created_at", token->created_at, error))
        return NULL;
    return g_steal_pointer(&token);
}

json_object *api_operator_token_list_to_json(const GPtrArray *tokens, const char *next)
{
    json_object *list = json_object_new_array();
    for (guint i = 0; tokens && i < tokens->len; i++) {
        const ApiOperatorToken *token = g_ptr_array_index(tokens, i);
        g_return_val_if_fail(token->secret == NULL, NULL);
        json_object_array_add(list, api_operator_token_to_json(token));
    }
    return api_json_page_new("tokens", list, next);
}

static gpointer listed_token(json_object *item, GError **error)
{
    g_autoptr(ApiOperatorToken) token = api_operator_token_from_json(item, error);
    if (token != NULL && token->secret != NULL) {
        api_json_set_invalid(error, "secret", "must not be in a list");
        return NULL;
    }
    return g_steal_pointer(&token);
}

GPtrArray *api_operator_token_list_from_json(json_object *value, char **next, GError **error)
{
    return api_json_page_decode(value, "tokens", listed_token,
                                (GDestroyNotify)api_operator_token_free, next, error);
}
