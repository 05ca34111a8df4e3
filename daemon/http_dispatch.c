/* One HTTP request, from its headers to its answer: HTTP's framing rules,
 * the connection limits that depend on who calls, the route table, the
 * caller (the operator by SO_PEERCRED on the UNIX socket: uid 0 or the admin
 * group; the operator or a tenant by bearer token), query and body.  Sockets
 * and loops are http_server.c's. */
#include "daemon/http-private.h"

#include "api/json.h"
#include "daemon/error.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

/* A chunked body over the cap is read and dropped so the client gets its 413;
 * past this much we stop being polite and drop the connection. */
#define DISCARD_LIMIT     (4 * HTTP_MAX_JSON_BODY)
#define UPLOAD_MEDIA_TYPE "application/octet-stream"

/* Ends an upload that will not finish; a no-op when there is none (any more). */
void http_dispatch_upload_abort(Request *request)
{
    if (request->upload == NULL)
        return;
    request->route->route->upload->abort(g_steal_pointer(&request->upload));
}

void http_dispatch_upload_forget_fd(Request *request)
{
    HttpServer *server = request->listener->server;
    if (request->upload_fd < 0)
        return;
    g_mutex_lock(&server->lock);
    g_hash_table_remove(server->upload_fds, GINT_TO_POINTER(request->upload_fd));
    g_mutex_unlock(&server->lock);
    request->upload_fd = -1;
}

void http_dispatch_free(Request *request)
{
    /* The client left, timed out, or the server stopped mid-upload. */
    http_dispatch_upload_abort(request);
    http_dispatch_upload_forget_fd(request);
    g_clear_pointer(&request->params, g_hash_table_unref);
    g_clear_pointer(&request->query, g_hash_table_unref);
    g_clear_pointer(&request->headers, g_hash_table_unref);
    http_head_clear(&request->head);
    g_clear_pointer(&request->deferred, http_reply_free);
    if (request->stream_slot)
        http_transport_stream_release(request->listener->server, &request->caller);
    g_free(request->method);
    g_free(request->caller.tenant);
    if (request->caller.token != NULL)
        explicit_bzero(request->caller.token, strlen(request->caller.token));
    g_free(request->caller.token);
    g_free(request->caller.token_id);
    g_free(request->request_id);
    http_reply_free(request->refusal);
    if (request->body != NULL)
        g_byte_array_unref(request->body);
    g_free(request);
}

static void request_refuse(Request *request, HttpReply *reply)
{
    if (request->refusal == NULL)
        request->refusal = reply;
    else
        http_reply_free(reply);
}

const char *http_request_query(const HttpRequest *request, const char *key)
{
    return request->query != NULL ? g_hash_table_lookup(request->query, key) : NULL;
}

const char *http_request_param(const HttpRequest *request, const char *key)
{
    return request->params != NULL ? g_hash_table_lookup(request->params, key) : NULL;
}

static const char *header(struct MHD_Connection *connection, const char *name)
{
    return MHD_lookup_connection_value(connection, MHD_HEADER_KIND, name);
}

/* Path segments, percent-decoded; NULL for a path no route can match (not
 * absolute, a bad escape, an encoded NUL). */
static char **path_segments(const char *path)
{
    if (path[0] != '/')
        return NULL;
    g_auto(GStrv) raw = g_strsplit(path, "/", -1);
    guint n = g_strv_length(raw);
    g_auto(GStrv) decoded = g_new0(char *, n + 1);
    for (guint i = 0; i < n; i++) {
        decoded[i] = g_uri_unescape_string(raw[i], NULL);
        if (decoded[i] == NULL)
            return NULL;
    }
    return g_steal_pointer(&decoded);
}

static gboolean is_capture(const char *segment)
{
    gsize len = strlen(segment);
    return len > 2 && segment[0] == '{' && segment[len - 1] == '}';
}

/* Matches decoded @segments against @route; fills @params when given. */
static gboolean route_matches(const CompiledRoute *route, char **segments, GHashTable *params)
{
    if (g_strv_length(route->segments) != g_strv_length(segments))
        return FALSE;
    for (guint i = 0; segments[i] != NULL; i++) {
        const char *pattern = route->segments[i];
        if (!is_capture(pattern)) {
            if (strcmp(pattern, segments[i]) != 0)
                return FALSE;
            continue;
        }
        /* A capture names one thing: an encoded '/' cannot smuggle in a path. */
        if (segments[i][0] == '\0' || strchr(segments[i], '/') != NULL)
            return FALSE;
        if (params != NULL)
            g_hash_table_insert(params, g_strndup(pattern + 1, strlen(pattern) - 2),
                                g_strdup(segments[i]));
    }
    return TRUE;
}

static const char *route_metric(const CompiledRoute *route)
{
    return route->route->metric_name ? route->route->metric_name : route->route->pattern;
}

static HttpReply *method_not_allowed(const char *method, GPtrArray *allowed)
{
    g_autoptr(GString) allow = g_string_new(NULL);
    for (guint i = 0; i < allowed->len; i++)
        g_string_append_printf(allow, "%s%s", i ? ", " : "", (const char *)allowed->pdata[i]);
    HttpReply *reply =
        http_reply_errorf(TD_ERROR_METHOD_NOT_ALLOWED, "method %s not allowed here", method);
    http_reply_add_header(reply, "Allow", allow->str);
    return reply;
}

/* Finds the route for @method and @url: sets request->route and params, or
 * refuses with 404 (no path matches) or 405 (only other methods do). */
static void request_route(Request *request, const char *method, const char *url)
{
    HttpServer *server = request->listener->server;
    g_auto(GStrv) segments = path_segments(url);
    g_autoptr(GPtrArray) allowed = g_ptr_array_new();

    for (gsize i = 0; segments != NULL && i < server->n_routes; i++) {
        const CompiledRoute *route = &server->routes[i];
        if (!route_matches(route, segments, NULL))
            continue;
        if (allowed->len == 0)
            request->metric = route_metric(route);
        if (strcmp(route->route->method, method) != 0) {
            if (!g_ptr_array_find_with_equal_func(allowed, route->route->method, g_str_equal, NULL))
                g_ptr_array_add(allowed, (gpointer)route->route->method);
            continue;
        }
        request->route = route;
        request->metric = route_metric(route);
        request->params = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        route_matches(route, segments, request->params);
        return;
    }
    if (g_ptr_array_find_with_equal_func(allowed, "GET", g_str_equal, NULL))
        g_ptr_array_add(allowed, (gpointer) "HEAD");
    if (allowed->len > 0)
        request_refuse(request, method_not_allowed(method, allowed));
    else
        request_refuse(request, http_reply_errorf(TD_ERROR_NOT_FOUND, "no such path: %s", url));
}

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59 /* Linux >= 4.13; older headers lack the name */
#endif

void http_server_set_admin_group(HttpServer *server, const char *name, gint64 gid)
{
    server->admin_group = name != NULL ? g_intern_string(name) : NULL;
    server->has_admin_gid = gid >= 0;
    server->admin_gid = gid >= 0 ? (gid_t)gid : 0;
}

/* The socket of @connection, or -1. */
static int connection_fd(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info != NULL ? info->connect_fd : -1;
}

/* The credentials the peer of a UNIX-socket connection had when it
 * connected; FALSE when the kernel does not say. */
static gboolean peer_cred(int fd, struct ucred *cred)
{
    socklen_t len = sizeof(*cred);
    return fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) == 0;
}

/* Whether one of the peer's supplementary groups (as at connect time) is
 * @gid.  A kernel without SO_PEERGROUPS answers FALSE: the primary group
 * still counts. */
static gboolean peer_in_group(int fd, gid_t gid)
{
    gid_t small[32];
    g_autofree gid_t *large = NULL;
    gid_t *groups = small;
    socklen_t len = sizeof small;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, small, &len) != 0) {
        /* ERANGE: len now says how much the list needs. */
        if (errno != ERANGE || len == 0)
            return FALSE;
        large = g_malloc(len);
        groups = large;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, large, &len) != 0)
            return FALSE;
    }
    for (gsize i = 0; i < len / sizeof(gid_t); i++)
        if (groups[i] == gid)
            return TRUE;
    return FALSE;
}

/* Root, or a member of the admin group by its primary or a supplementary group. */
static gboolean peer_is_operator(HttpServer *server, int fd, const struct ucred *cred)
{
    if (cred->uid == 0)
        return TRUE;
    if (!server->has_admin_gid)
        return FALSE;
    return cred->gid == server->admin_gid || peer_in_group(fd, server->admin_gid);
}

/* The token of "Bearer <token68>", or NULL when malformed. */
static const char *bearer_token(const char *authorization)
{
    static const char scheme[] = "Bearer";
    if (g_ascii_strncasecmp(authorization, scheme, strlen(scheme)) != 0)
        return NULL;
    const char *token = authorization + strlen(scheme);
    if (*token != ' ')
        return NULL;
    while (*token == ' ')
        token++;
    gsize len = strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                              "0123456789-._~+/");
    len += strspn(token + len, "=");
    return len > 0 && token[len] == '\0' ? token : NULL;
}

/* Sets request->caller; a presented token must be valid wherever it is
 * presented, and wins over the peer's credentials, so that a revoked token
 * never quietly falls back to uid-based operator rights. */
static void request_authenticate(Request *request, struct MHD_Connection *connection)
{
    HttpServer *server = request->listener->server;
    const char *authorization = header(connection, MHD_HTTP_HEADER_AUTHORIZATION);
    int fd = request->listener->is_unix ? connection_fd(connection) : -1;
    struct ucred cred;
    gboolean have_cred = request->listener->is_unix && peer_cred(fd, &cred);

    request->caller.role = HTTP_CALLER_ANONYMOUS;
    request->caller.scope = HTTP_SCOPE_ADMIN;
    request->caller.uid = have_cred ? (gint64)cred.uid : -1;
    if (authorization == NULL) {
        if (have_cred && peer_is_operator(server, fd, &cred))
            request->caller.role = HTTP_CALLER_OPERATOR;
        return;
    }
    const char *token = bearer_token(authorization);
    if (token == NULL) {
        request_refuse(request,
                       http_reply_errorf(TD_ERROR_UNAUTHORIZED, "malformed Authorization header: "
                                                                "expected 'Bearer <token>'"));
        return;
    }
    if (server->lookup == NULL || !server->lookup(server->app, token, &request->caller)) {
        request_refuse(request,
                       http_reply_errorf(TD_ERROR_UNAUTHORIZED, "invalid or revoked token"));
        return;
    }
    request->caller.token = g_strdup(token);
}

/* A UNIX-socket peer without a token that is not the operator, on a route
 * only the operator may call: 403, and why (401 would send it looking for
 * a token when what it lacks is a group). */
static HttpReply *not_the_operator(const Request *request)
{
    const char *group = request->listener->server->admin_group;
    if (group == NULL)
        return http_reply_errorf(TD_ERROR_FORBIDDEN,
                                 "operator only: uid %" G_GINT64_FORMAT " is not root",
                                 request->caller.uid);
    return http_reply_errorf(TD_ERROR_FORBIDDEN,
                             "operator only: uid %" G_GINT64_FORMAT
                             " is neither root nor in group %s",
                             request->caller.uid, group);
}

static HttpReply *authorization_refusal(const Request *request)
{
    HttpAccess access = request->route->route->access;
    const HttpCaller *caller = &request->caller;
    gboolean operator_only = access == HTTP_ACCESS_OPERATOR || access == HTTP_ACCESS_METRICS ||
                             access == HTTP_ACCESS_LOCAL_OPERATOR;

    if (access == HTTP_ACCESS_ANYONE)
        return NULL;
    if (caller->role == HTTP_CALLER_ANONYMOUS) {
        if (operator_only && caller->uid >= 0)
            return not_the_operator(request);
        return http_reply_errorf(TD_ERROR_UNAUTHORIZED, "authentication required");
    }
    if (caller->role == HTTP_CALLER_OPERATOR && caller->scope == HTTP_SCOPE_METRICS &&
        access != HTTP_ACCESS_METRICS)
        return http_reply_errorf(TD_ERROR_FORBIDDEN, "this token may only read /metrics");
    if (operator_only && caller->role != HTTP_CALLER_OPERATOR)
        return http_reply_errorf(TD_ERROR_FORBIDDEN, "operator only");
    if (access == HTTP_ACCESS_LOCAL_OPERATOR && caller->token_id != NULL)
        return http_reply_errorf(TD_ERROR_FORBIDDEN,
                                 "operator only, on the UNIX socket without a token: "
                                 "a token may not manage operator tokens");
    if (access == HTTP_ACCESS_TENANT && caller->role != HTTP_CALLER_TENANT)
        return http_reply_errorf(TD_ERROR_FORBIDDEN, "tenants only");
    return NULL;
}

static void request_authorize(Request *request)
{
    HttpReply *refusal = authorization_refusal(request);
    if (refusal != NULL)
        request_refuse(request, refusal);
}

/* Query arguments arrive raw (see raw_unescape): '+' is a space, then
 * percent-decoding; FALSE on a bad escape. */
static gboolean query_add(GHashTable *query, const char *key, const char *value)
{
    g_autofree char *key_plus = g_strdelimit(g_strdup(key), "+", ' ');
    g_autofree char *value_plus = g_strdelimit(g_strdup(value ? value : ""), "+", ' ');
    char *decoded_key = g_uri_unescape_string(key_plus, NULL);
    char *decoded_value = g_uri_unescape_string(value_plus, NULL);

    if (decoded_key == NULL || decoded_value == NULL) {
        g_free(decoded_key);
        g_free(decoded_value);
        return FALSE;
    }
    /* The first occurrence wins, like a lookup on the raw string would. */
    if (g_hash_table_contains(query, decoded_key)) {
        g_free(decoded_key);
        g_free(decoded_value);
        return TRUE;
    }
    g_hash_table_insert(query, decoded_key, decoded_value);
    return TRUE;
}

typedef struct {
    GHashTable *query;
    gboolean bad;
} QueryParse;

static enum MHD_Result query_collect(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    QueryParse *parse = cls;
    (void)kind;
    if (!query_add(parse->query, key, value))
        parse->bad = TRUE;
    return MHD_YES;
}

static void request_parse_query(Request *request, struct MHD_Connection *connection)
{
    QueryParse parse = {
        .query = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free),
    };
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, query_collect, &parse);
    request->query = parse.query;
    if (parse.bad) {
        request_refuse(request, http_reply_errorf(TD_ERROR_BAD_REQUEST, "malformed query string"));
        return;
    }
    /* A misspelt parameter must not be silently ignored (?limt=5 would page
     * nothing and look like it worked). */
    const char *const *accepted = request->route->route->query;
    GHashTableIter iter;
    gpointer key;
    g_hash_table_iter_init(&iter, request->query);
    while (g_hash_table_iter_next(&iter, &key, NULL)) {
        if (accepted == NULL || !g_strv_contains(accepted, key)) {
            request_refuse(request,
                           http_reply_errorf(TD_ERROR_BAD_REQUEST, "unknown query parameter '%s'",
                                             (const char *)key));
            return;
        }
    }
}

static enum MHD_Result header_collect(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    Request *request = cls;
    GHashTable *headers = request->headers;
    (void)kind;
    char *name = g_ascii_strdown(key, -1);
    const char *before = g_hash_table_lookup(headers, name);
    http_head_add(&request->head, key, strlen(key), value ? value : "", value ? strlen(value) : 0);
    /* Repeated list headers (If-Match: a, If-Match: b) mean one list. */
    g_hash_table_replace(headers, name,
                         before ? g_strdup_printf("%s, %s", before, value ? value : "")
                                : g_strdup(value ? value : ""));
    return MHD_YES;
}

static void request_collect_headers(Request *request, struct MHD_Connection *connection)
{
    request->headers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    MHD_get_connection_values(connection, MHD_HEADER_KIND, header_collect, request);
}

/* @content_type is @media_type, optionally with parameters. */
static gboolean is_media_type(const char *content_type, const char *media_type)
{
    if (content_type == NULL)
        return FALSE;
    g_autofree char *base = g_strndup(content_type, strcspn(content_type, ";"));
    return g_ascii_strcasecmp(g_strstrip(base), media_type) == 0;
}

/* "application/json", optionally with parameters; a charset must be UTF-8
 * because that is the only encoding JSON has. */
static gboolean is_json_media_type(const char *content_type)
{
    if (!is_media_type(content_type, "application/json"))
        return FALSE;
    g_auto(GStrv) parts = g_strsplit(content_type, ";", -1);
    for (guint i = 1; parts[i] != NULL; i++) {
        char *param = g_strstrip(parts[i]);
        if (g_ascii_strncasecmp(param, "charset=", 8) != 0)
            continue;
        const char *charset = param + 8;
        if (g_ascii_strcasecmp(charset, "utf-8") != 0 &&
            g_ascii_strcasecmp(charset, "\"utf-8\"") != 0)
            return FALSE;
    }
    return TRUE;
}

/* Checks what the headers say about the body, before any of it is read. */
static void request_check_body_headers(Request *request, struct MHD_Connection *connection)
{
    const char *length_header = header(connection, MHD_HTTP_HEADER_CONTENT_LENGTH);
    guint64 length = 0;
    if (length_header != NULL &&
        !g_ascii_string_to_unsigned(length_header, 10, 0, G_MAXUINT64, &length, NULL)) {
        request_refuse(request, http_reply_errorf(TD_ERROR_BAD_REQUEST, "bad Content-Length"));
        return;
    }
    if (request->route->route->upload != NULL) {
        /* Without a length up front, begin could not check it against a quota. */
        if (!is_media_type(header(connection, MHD_HTTP_HEADER_CONTENT_TYPE), UPLOAD_MEDIA_TYPE))
            request_refuse(request, http_reply_errorf(TD_ERROR_UNSUPPORTED_MEDIA_TYPE,
                                                      "the body must be " UPLOAD_MEDIA_TYPE));
        else if (length_header == NULL ||
                 header(connection, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL)
            request_refuse(request,
                           http_reply_errorf(TD_ERROR_LENGTH_REQUIRED,
                                             "an upload needs a Content-Length (and no chunking)"));
        request->content_length = length;
        return;
    }
    if (!request->route->route->json_body) {
        if (length > 0)
            request_refuse(request,
                           http_reply_errorf(TD_ERROR_BAD_REQUEST, "this request takes no body"));
        return;
    }
    if (!is_json_media_type(header(connection, MHD_HTTP_HEADER_CONTENT_TYPE)))
        request_refuse(request, http_reply_errorf(TD_ERROR_UNSUPPORTED_MEDIA_TYPE,
                                                  "the body must be application/json"));
    else if (length > HTTP_MAX_JSON_BODY)
        request_refuse(request, http_reply_errorf(TD_ERROR_PAYLOAD_TOO_LARGE,
                                                  "JSON body over %d bytes", HTTP_MAX_JSON_BODY));
    else
        request->body = g_byte_array_sized_new((guint)length);
}

/* Closing is the only way not to read what the client is still sending. */
static HttpReply *reply_closing(HttpReply *reply)
{
    http_reply_add_header(reply, MHD_HTTP_HEADER_CONNECTION, "close");
    return reply;
}

static void request_upload_begin(Request *request, struct MHD_Connection *connection,
                                 const char *method, const char *url)
{
    HttpServer *server = request->listener->server;
    const HttpUploadHandler *handler = request->route->route->upload;
    HttpRequest http_request = {
        .method = method,
        .path = url,
        .params = request->params,
        .query = request->query,
        .headers = request->headers,
        .caller = &request->caller,
        .request_id = request->request_id,
    };
    HttpReply *reply = NULL;

    request->upload = handler->begin(server->app, &http_request, request->content_length, &reply);
    if (request->upload == NULL) {
        if (reply == NULL) {
            g_warning("upload handler for %s refused without a reply",
                      request->route->route->pattern);
            reply = http_reply_error_body(500, "internal", "internal error");
        }
        request_refuse(request, reply_closing(reply));
        return;
    }
    http_reply_free(reply);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info == NULL)
        return;
    request->upload_fd = info->connect_fd;
    g_mutex_lock(&server->lock);
    g_hash_table_add(server->upload_fds, GINT_TO_POINTER(request->upload_fd));
    g_mutex_unlock(&server->lock);
}

/* HTTP's own framing rules (http_framing.c) for a request libmicrohttpd
 * parsed: every refusal closes the connection, since what follows on it
 * cannot be trusted to start a request. */
static void request_check_framing(Request *request, const char *version)
{
    g_autoptr(GError) error = NULL;
    request->head.http11 = g_strcmp0(version, MHD_HTTP_VERSION_1_1) == 0;
    if (!http_head_check(&request->head, &error))
        request_refuse(request, reply_closing(http_reply_error(error)));
}

/* Past connections_per_address, or in the reserve, only callers who say who
 * they are get served; a flood of anonymous connections gets told so. */
static void request_check_limits(Request *request, struct MHD_Connection *connection)
{
    HttpConn *conn = request->conn;
    if (conn == NULL || (!conn->over_address && !conn->over_capacity) ||
        header(connection, MHD_HTTP_HEADER_AUTHORIZATION) != NULL)
        return;
    request_refuse(request, http_transport_refusal(request->listener->server,
                                                   conn->over_capacity ? HTTP_REFUSED_RESERVE
                                                                       : HTTP_REFUSED_ADDRESS));
}

/* Everything decided from the request line and headers, in this order:
 * HTTP framing (400/414/431/501), connection limits (429/503), route
 * (404/405), caller (401/403), query (400), the body's headers, then an
 * upload's begin. */
void http_dispatch_begin(Request *request, struct MHD_Connection *connection, const char *method,
                         const char *url, const char *version)
{
    request->begun = TRUE;
    request->is_head = strcmp(method, "HEAD") == 0;
    request->method = g_strdup(request->is_head ? "GET" : method);
    request->metric = HTTP_METRIC_UNMATCHED;
    request_collect_headers(request, connection);
    request_check_framing(request, version);
    if (request->refusal == NULL)
        request_check_limits(request, connection);
    if (request->refusal == NULL)
        request_route(request, request->method, url);
    if (request->refusal != NULL)
        return;
    request_authenticate(request, connection);
    if (request->refusal == NULL)
        request_authorize(request);
    if (request->refusal == NULL)
        request_parse_query(request, connection);
    if (request->refusal == NULL)
        request_check_body_headers(request, connection);
    if (request->refusal == NULL && request->route->route->upload != NULL)
        request_upload_begin(request, connection, request->method, url);
}

/* Hands one piece of an upload to its handler; FALSE drops the connection. */
gboolean http_dispatch_take_upload(Request *request, const char *data, size_t size)
{
    const HttpUploadHandler *handler = request->route->route->upload;
    HttpReply *reply = NULL;

    if (request->answered)
        return TRUE;
    /* Refused by write: libmicrohttpd cannot answer in the middle of a body,
     * so the rest (no more than begin accepted) is read and dropped. */
    if (request->upload == NULL)
        return TRUE;
    if (http_server_stopping(request->listener->server)) {
        http_dispatch_upload_abort(request);
        return FALSE;
    }
    if (handler->write(request->upload, data, size, &reply)) {
        http_reply_free(reply);
        return TRUE;
    }
    http_dispatch_upload_abort(request);
    if (reply == NULL) {
        g_warning("upload handler for %s refused a piece without a reply",
                  request->route->route->pattern);
        reply = http_reply_error_body(500, "internal", "internal error");
    }
    request_refuse(request, reply_closing(reply));
    return TRUE;
}

HttpReply *http_dispatch_upload_finish(Request *request)
{
    const HttpUploadHandler *handler = request->route->route->upload;
    HttpReply *reply = handler->finish(g_steal_pointer(&request->upload));
    /* Done with the body: stopping must not cut the answer. */
    http_dispatch_upload_forget_fd(request);
    if (reply == NULL) {
        g_warning("upload handler for %s finished without a reply", request->route->route->pattern);
        return http_reply_error_body(500, "internal", "internal error");
    }
    return reply;
}

/* Takes one piece of the body; FALSE drops the connection. */
gboolean http_dispatch_take_body(Request *request, const char *data, size_t size)
{
    if (request->answered)
        return TRUE;
    if (request->refusal == NULL && request->body == NULL)
        request_refuse(request,
                       http_reply_errorf(TD_ERROR_BAD_REQUEST, "this request takes no body"));
    if (request->refusal == NULL && request->body->len + size > HTTP_MAX_JSON_BODY) {
        /* Free what we have now: nobody gets to make us hold more than the cap. */
        g_clear_pointer(&request->body, g_byte_array_unref);
        request_refuse(request, http_reply_errorf(TD_ERROR_PAYLOAD_TOO_LARGE,
                                                  "JSON body over %d bytes", HTTP_MAX_JSON_BODY));
    }
    if (request->refusal != NULL) {
        request->discarded += size;
        return request->discarded <= DISCARD_LIMIT;
    }
    g_byte_array_append(request->body, (const guint8 *)data, (guint)size);
    return TRUE;
}

/* A 200 to GET whose ETag the client already holds becomes 304 with no body
 * (RFC 9110 13.1.2: weak comparison). */
static HttpReply *reply_not_modified(HttpReply *reply, const HttpRequest *request)
{
    const char *etag = http_reply_header(reply, "ETag");
    const char *if_none_match = http_request_header(request, "if-none-match");
    if (reply->status != 200 || reply->read != NULL || etag == NULL ||
        (strcmp(request->method, "GET") != 0 && strcmp(request->method, "HEAD") != 0) ||
        !http_etag_list_matches(if_none_match, etag, TRUE))
        return reply;
    HttpReply *not_modified = http_reply_empty(304);
    http_reply_add_header(not_modified, "ETag", etag);
    http_reply_free(reply);
    return not_modified;
}

/* What HEAD answers for a reply: the same status and headers, no body (and
 * no stream or long-poll started for nothing). */
static HttpReply *reply_for_head(HttpReply *reply)
{
    if (reply->upgrade_start != NULL) {
        /* A 101 with no upgrade after it would leave the client hanging. */
        http_reply_free(reply);
        return http_reply_errorf(TD_ERROR_BAD_REQUEST, "a protocol upgrade needs GET, not HEAD");
    }
    if (reply->read == NULL)
        return reply; /* libmicrohttpd leaves the body out itself */
    HttpReply *head = http_reply_empty(reply->status);
    if (reply->content_type != NULL)
        http_reply_add_header(head, MHD_HTTP_HEADER_CONTENT_TYPE, reply->content_type);
    http_reply_free(reply);
    return head;
}

HttpReply *http_dispatch_run(Request *request, const char *url)
{
    HttpServer *server = request->listener->server;
    g_autoptr(json_object) body = NULL;

    if (request->body != NULL) {
        g_autoptr(GError) error = NULL;
        if (request->body->len == 0)
            return http_reply_errorf(TD_ERROR_BAD_REQUEST, "a JSON body is required");
        body = api_json_parse((const char *)request->body->data, request->body->len,
                              API_JSON_MAX_DEPTH, &error);
        if (body == NULL)
            return http_reply_error(error);
    }
    HttpRequest http_request = {
        .method = request->method,
        .path = url,
        .params = request->params,
        .query = request->query,
        .headers = request->headers,
        .body = body,
        .caller = &request->caller,
        .request_id = request->request_id,
    };
    HttpReply *reply = request->route->route->handler(server->app, &http_request);
    if (reply == NULL) {
        g_warning("handler for %s %s returned no reply", request->method,
                  request->route->route->pattern);
        return http_reply_error_body(500, "internal", "internal error");
    }
    if (request->is_head)
        reply = reply_for_head(reply);
    if (reply->read != NULL || reply->upgrade_start != NULL) {
        HttpReply *refusal = NULL;
        if (!http_transport_stream_acquire(server, &request->caller, &refusal)) {
            http_reply_free(reply);
            return refusal;
        }
        request->stream_slot = TRUE;
    }
    return reply_not_modified(reply, &http_request);
}
