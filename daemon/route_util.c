/* What the resource handlers share: the page arguments of lists, entity
 * tags on answers, and If-Match checked on the resource as the write's own
 * transaction sees it (so that two writers who read the same version cannot
 * both win). */
#include "api/etag.h"
#include "api/json.h"
#include "daemon/app.h"
#include "daemon/error.h"

#define LIST_LIMIT_DEFAULT 100
#define LIST_LIMIT_MAX     1000

/* ?limit=N in [1, LIST_LIMIT_MAX] */
gboolean route_parse_limit(const char *text, int *limit, GError **error)
{
    guint64 value = LIST_LIMIT_DEFAULT;
    if (text != NULL && !g_ascii_string_to_unsigned(text, 10, 1, LIST_LIMIT_MAX, &value, NULL)) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "limit: must be a whole number between 1 and %d", LIST_LIMIT_MAX);
        return FALSE;
    }
    *limit = (int)value;
    return TRUE;
}

gboolean route_page_args(const HttpRequest *request, int *limit, const char **after, GError **error)
{
    *after = http_request_query(request, "after");
    return route_parse_limit(http_request_query(request, "limit"), limit, error);
}

void route_add_etag(HttpReply *reply, json_object *representation)
{
    g_autofree char *etag = api_etag(representation);
    http_reply_add_header(reply, "ETag", etag);
}

HttpReply *route_reply_tagged(unsigned status, const char *member, json_object *representation)
{
    /* Before the reply takes the body: it may serialize and free it. */
    g_autofree char *etag = api_etag(representation);
    json_object *body = json_object_new_object();
    json_object_object_add(body, member, representation);
    HttpReply *reply = http_reply_json(status, body);
    http_reply_add_header(reply, "ETag", etag);
    return reply;
}

void route_if_match_init(RouteIfMatch *if_match, const HttpRequest *request)
{
    if_match->header = http_request_header(request, "if-match");
    if_match->current = NULL;
}

void route_if_match_clear(RouteIfMatch *if_match)
{
    g_clear_pointer(&if_match->current, g_free);
}

gboolean route_if_match_check(RouteIfMatch *if_match, json_object *representation, GError **error)
{
    if (if_match->header == NULL)
        return TRUE;
    g_autofree char *etag = api_etag(representation);
    if (http_etag_list_matches(if_match->header, etag, FALSE))
        return TRUE;
    g_free(if_match->current);
    if_match->current = g_steal_pointer(&etag);
    g_set_error_literal(error, TD_ERROR, TD_ERROR_PRECONDITION_FAILED,
                        "If-Match: the resource was changed by someone else since it was read "
                        "(its ETag is no longer the one given): read it again and retry");
    return FALSE;
}

HttpReply *route_reply_error(const RouteIfMatch *if_match, const GError *error)
{
    HttpReply *reply = http_reply_error(error);
    if (if_match->current != NULL && g_error_matches(error, TD_ERROR, TD_ERROR_PRECONDITION_FAILED))
        http_reply_add_header(reply, "ETag", if_match->current);
    return reply;
}

gboolean precondition_holds(const Precondition *precondition, gpointer resource, GError **error)
{
    return precondition == NULL || precondition->holds(resource, precondition->data, error);
}
