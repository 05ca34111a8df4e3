/* Operator tokens: bearer tokens bound to no tenant, so that the operator
 * and Prometheus can use TCP.  Managed only by the operator on the UNIX
 * socket by its credentials (HTTP_ACCESS_LOCAL_OPERATOR): a leaked admin
 * token cannot mint itself successors or revoke the tokens meant to
 * replace it. */
#include "api/operator_token.h"
#include "daemon/app.h"
#include "daemon/error.h"
#include "daemon/tokens.h"

HttpReply *handle_operator_token_create(gpointer data, const HttpRequest *request)
{
    App *app = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiOperatorToken) token = api_operator_token_create_from_json(request->body, &error);
    if (token == NULL || !token_issue_operator(app->store, token, &error))
        return http_reply_error(error);
    g_message("operator token %s (scope %s) issued to uid %" G_GINT64_FORMAT, token->id,
              token->scope, request->caller->uid);
    json_object *body = json_object_new_object();
    json_object_object_add(body, "token", api_operator_token_to_json(token));
    return http_reply_json(201, body);
}

/* Ids, scopes, descriptions and creation times: a secret is shown once. */
HttpReply *handle_operator_token_list(gpointer data, const HttpRequest *request)
{
    App *app = data;
    g_autoptr(GError) error = NULL;
    int limit = 0;
    const char *after = NULL;
    if (!route_page_args(request, &limit, &after, &error))
        return http_reply_error(error);
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) tokens =
        store_operator_token_page(app->store, limit, after, &next, &error);
    if (tokens == NULL)
        return http_reply_error(error);
    return http_reply_json(200, api_operator_token_list_to_json(tokens, next));
}

HttpReply *handle_operator_token_revoke(gpointer data, const HttpRequest *request)
{
    App *app = data;
    const char *id = http_request_param(request, "id");
    if (!g_uuid_string_is_valid(id))
        return http_reply_errorf(TD_ERROR_NOT_FOUND, "token '%s' not found", id);
    g_autoptr(GError) error = NULL;
    if (!store_operator_token_revoke(app->store, id, &error))
        return http_reply_error(error);
    g_message("operator token %s revoked by uid %" G_GINT64_FORMAT, id, request->caller->uid);
    return http_reply_empty(204);
}
