/* Operator tokens on the wire: bearer tokens bound to no tenant, with a
 * scope (admin: what the operator may do; metrics: GET /metrics only). */
#pragma once

#include <glib.h>
#include <json-c/json.h>

/* Longest description accepted, in bytes. */
#define API_OPERATOR_TOKEN_DESCRIPTION_MAX 256

#define API_OPERATOR_SCOPE_ADMIN   "admin"
#define API_OPERATOR_SCOPE_METRICS "metrics"

typedef struct {
    char *id;          /* UUID */
    char *secret;      /* shown once, at creation; NULL afterwards */
    char *scope;       /* "admin" or "metrics" */
    char *description; /* the operator's note; NULL when none */
    char *created_at;
} ApiOperatorToken;

ApiOperatorToken *api_operator_token_new(void);
void api_operator_token_free(ApiOperatorToken *token);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiOperatorToken, api_operator_token_free)

/* "<path>: must be one of admin, metrics" unless @scope is one. */
gboolean api_operator_token_check_scope(const char *path, const char *scope, GError **error);

/* POST /v1/operator/tokens body {"scope", "description"?}: scope required,
 * description optional (UTF-8 without control characters, at most
 * API_OPERATOR_TOKEN_DESCRIPTION_MAX bytes).  Fills those two. */
ApiOperatorToken *api_operator_token_create_from_json(json_object *value, GError **error);

/* {"id","secret"?,"scope","description","created_at"}: secret omitted when
 * NULL, description null when unset. */
json_object *api_operator_token_to_json(const ApiOperatorToken *token);
ApiOperatorToken *api_operator_token_from_json(json_object *value, GError **error);

/* {"tokens":[...],"next":CURSOR|null} and back: a list never carries a
 * secret, and refuses one. */
json_object *api_operator_token_list_to_json(const GPtrArray *tokens, const char *next);
GPtrArray *api_operator_token_list_from_json(json_object *value, char **next, GError **error);
