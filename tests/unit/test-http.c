/* daemon/http: a real server with a toy route table, on a temporary UNIX
 * socket and on 127.0.0.1:0, driven by libcurl. */
#include "api/error.h"
#include "api/error_body.h"
#include "api/json.h"
#include "daemon/error.h"
#include "daemon/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_USEC     (5 * G_USEC_PER_SEC)
#define NOBODY_UID    65534
#define TWO_MIB       (2 * 1024 * 1024)
#define DEEP_NESTING  100000
#define FOREVER_CHUNK "tick\n"
#define UPLOAD_SIZE   (20 * 1024 * 1024)
/* Pieces bigger than this would mean the layer gathers the body somewhere. */
#define UPLOAD_MAX_PIECE (1024 * 1024)
/* refuse-write stops the upload once this much has arrived. */
#define UPLOAD_REFUSE_AT (2 * 1024 * 1024)

/* ---- the toy application ------------------------------------------------ */

typedef struct {
    GMutex lock;
    int handler_calls;
    int stream_frees;
    int idle_reads;
    int upload_begins;
    int upload_writes;
    int upload_finishes;
    int upload_aborts;
    int writes_after_refusal;
    int max_piece;
} App;

typedef struct {
    App *app;
    int step;
} ToyStream;

static int app_get(App *app, const int *field)
{
    g_mutex_lock(&app->lock);
    int value = *field;
    g_mutex_unlock(&app->lock);
    return value;
}

static void app_bump(App *app, int *field)
{
    g_mutex_lock(&app->lock);
    (*field)++;
    g_mutex_unlock(&app->lock);
}

/* Waits until *@field reaches @value; FALSE after WAIT_USEC. */
static gboolean app_wait(App *app, const int *field, int value)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_USEC;
    while (app_get(app, field) < value) {
        if (g_get_monotonic_time() > deadline)
            return FALSE;
        g_usleep(10 * 1000);
    }
    return TRUE;
}

static gboolean toy_lookup(gpointer data, const char *token, HttpCaller *caller)
{
    const char *tenant = NULL;
    (void)data;
    if (strcmp(token, "good-token") == 0)
        tenant = "acme";
    else if (strcmp(token, "other+token/with=") == 0)
        tenant = "globex";
    if (tenant == NULL)
        return FALSE; /* unknown, or "revoked-token" after its revocation */
    caller->role = HTTP_CALLER_TENANT;
    caller->tenant = g_strdup(tenant);
    caller->token_id = g_strdup(token);
    return TRUE;
}

static json_object *table_to_json(GHashTable *table)
{
    json_object *object = json_object_new_object();
    GHashTableIter iter;
    gpointer key, value;
    g_hash_table_iter_init(&iter, table);
    while (g_hash_table_iter_next(&iter, &key, &value))
        json_object_object_add(object, key, json_object_new_string(value));
    return object;
}

static const char *role_name(HttpCallerRole role)
{
    switch (role) {
    case HTTP_CALLER_OPERATOR:
        return "operator";
    case HTTP_CALLER_TENANT:
        return "tenant";
    default:
        return "anonymous";
    }
}

/* Answers with everything the layer handed over. */
static HttpReply *toy_echo(gpointer data, const HttpRequest *request)
{
    App *app = data;
    json_object *out = json_object_new_object();

    app_bump(app, &app->handler_calls);
    json_object_object_add(out, "method", json_object_new_string(request->method));
    json_object_object_add(out, "path", json_object_new_string(request->path));
    json_object_object_add(out, "role", json_object_new_string(role_name(request->caller->role)));
    json_object_object_add(out, "tenant", api_json_new_string_or_null(request->caller->tenant));
    json_object_object_add(out, "params", table_to_json(request->params));
    json_object_object_add(out, "query", table_to_json(request->query));
    json_object_object_add(out, "body", json_object_get(request->body));
    return http_reply_json(200, out);
}

static HttpReply *toy_error(gpointer data, const HttpRequest *request)
{
    const char *kind = http_request_param(request, "kind");
    (void)data;

    if (strcmp(kind, "conflict") == 0)
        return http_reply_errorf(TD_ERROR_CONFLICT, "stack '%s' is running", "web");
    if (strcmp(kind, "unavailable") == 0)
        return http_reply_errorf(TD_ERROR_UNAVAILABLE, "libvirt is unreachable");
    if (strcmp(kind, "quota") == 0)
        return http_reply_errorf(TD_ERROR_QUOTA_EXCEEDED, "quota exceeded: vcpus");
    if (strcmp(kind, "null") == 0)
        return NULL;
    g_autoptr(GError) error = NULL;
    if (strcmp(kind, "invalid") == 0)
        error = g_error_new(API_ERROR, API_ERROR_INVALID, "vcpus: must be at least 1");
    else
        error = g_error_new(G_FILE_ERROR, G_FILE_ERROR_IO, "secret disk detail");
    return http_reply_error(error);
}

static void toy_stream_free(gpointer data)
{
    ToyStream *stream = data;
    app_bump(stream->app, &stream->app->stream_frees);
    g_free(stream);
}

static gssize copy_out(char *buf, gsize max, const char *text)
{
    gsize len = MIN(max, strlen(text));
    memcpy(buf, text, len);
    return (gssize)len;
}

/* Three chunks with "nothing yet" in between, then the end. */
static gssize three_read(gpointer data, char *buf, gsize max)
{
    static const char *const chunks[] = {"one\n", NULL, "two\n", NULL, "three\n"};
    ToyStream *stream = data;
    int step = stream->step++;

    if (step >= (int)G_N_ELEMENTS(chunks))
        return -1;
    return chunks[step] != NULL ? copy_out(buf, max, chunks[step]) : 0;
}

static gssize forever_read(gpointer data, char *buf, gsize max)
{
    (void)data;
    g_usleep(20 * 1000);
    return copy_out(buf, max, FOREVER_CHUNK);
}

/* Never has anything: the layer must pace the calls and end it on shutdown. */
static gssize idle_read(gpointer data, char *buf, gsize max)
{
    ToyStream *stream = data;
    (void)buf;
    (void)max;
    app_bump(stream->app, &stream->app->idle_reads);
    return 0;
}

static HttpReply *toy_stream(gpointer data, const HttpRequest *request)
{
    ToyStream *stream = g_new0(ToyStream, 1);
    const char *kind = http_request_param(request, "kind");
    HttpStreamRead read = strcmp(kind, "three") == 0     ? three_read
                          : strcmp(kind, "forever") == 0 ? forever_read
                                                         : idle_read;
    stream->app = data;
    return http_reply_stream(200, "text/plain", read, stream, toy_stream_free);
}

/* An upload that hashes what arrives; its {mode} says when to refuse. */
typedef struct {
    App *app;
    GChecksum *sha256;
    guint64 bytes;
    guint64 declared;
    gboolean refuse_write;
    gboolean refused;
} ToyUpload;

static void toy_upload_free(ToyUpload *upload)
{
    g_checksum_free(upload->sha256);
    g_free(upload);
}

static gpointer toy_upload_begin(gpointer data, const HttpRequest *request, guint64 content_length,
                                 HttpReply **reply)
{
    App *app = data;
    const char *mode = http_request_param(request, "mode");

    app_bump(app, &app->upload_begins);
    g_assert_null(request->body);
    g_assert_cmpint(request->caller->role, ==, HTTP_CALLER_TENANT);
    if (strcmp(mode, "refuse-begin") == 0) {
        *reply =
            http_reply_errorf(TD_ERROR_PAYLOAD_TOO_LARGE,
                              "%" G_GUINT64_FORMAT " bytes would exceed the quota", content_length);
        return NULL;
    }
    ToyUpload *upload = g_new0(ToyUpload, 1);
    upload->app = app;
    upload->sha256 = g_checksum_new(G_CHECKSUM_SHA256);
    upload->declared = content_length;
    upload->refuse_write = strcmp(mode, "refuse-write") == 0;
    return upload;
}

static gboolean toy_upload_write(gpointer data, const char *bytes, gsize len, HttpReply **reply)
{
    ToyUpload *upload = data;
    App *app = upload->app;

    app_bump(app, &app->upload_writes);
    if (upload->refused)
        app_bump(app, &app->writes_after_refusal);
    g_mutex_lock(&app->lock);
    app->max_piece = MAX(app->max_piece, (int)len);
    g_mutex_unlock(&app->lock);
    g_checksum_update(upload->sha256, (const guchar *)bytes, (gssize)len);
    upload->bytes += len;
    if (upload->refuse_write && upload->bytes >= UPLOAD_REFUSE_AT) {
        upload->refused = TRUE;
        *reply = http_reply_errorf(TD_ERROR_CONFLICT, "the pool is gone");
        return FALSE;
    }
    return TRUE;
}

static HttpReply *toy_upload_finish(gpointer data)
{
    ToyUpload *upload = data;
    json_object *out = json_object_new_object();

    app_bump(upload->app, &upload->app->upload_finishes);
    json_object_object_add(out, "sha256",
                           json_object_new_string(g_checksum_get_string(upload->sha256)));
    json_object_object_add(out, "bytes", json_object_new_int64((int64_t)upload->bytes));
    json_object_object_add(out, "declared", json_object_new_int64((int64_t)upload->declared));
    toy_upload_free(upload);
    return http_reply_json(200, out);
}

static void toy_upload_abort(gpointer data)
{
    ToyUpload *upload = data;
    app_bump(upload->app, &upload->app->upload_aborts);
    toy_upload_free(upload);
}

static const HttpUploadHandler toy_upload = {
    .begin = toy_upload_begin,
    .write = toy_upload_write,
    .finish = toy_upload_finish,
    .abort = toy_upload_abort,
};

static const char *const toy_query[] = {"limit", "after", "q", "flag", NULL};

static const HttpRoute toy_routes[] = {
    {"GET", "/v1", HTTP_ACCESS_ANYONE, FALSE, toy_echo, NULL, NULL, NULL},
    {"GET", "/v1/host", HTTP_ACCESS_OPERATOR, FALSE, toy_echo, NULL, NULL, NULL},
    {"GET", "/v1/tenants/{name}", HTTP_ACCESS_CALLER, FALSE, toy_echo, NULL, NULL, toy_query},
    {"DELETE", "/v1/tenants/{name}", HTTP_ACCESS_OPERATOR, FALSE, toy_echo, "tenant-delete", NULL,
     NULL},
    {"GET", "/v1/tenants/{name}/tokens/{id}", HTTP_ACCESS_CALLER, FALSE, toy_echo, NULL, NULL,
     NULL},
    {"GET", "/v1/things", HTTP_ACCESS_TENANT, FALSE, toy_echo, NULL, NULL, NULL},
    {"POST", "/v1/things", HTTP_ACCESS_CALLER, TRUE, toy_echo, NULL, NULL, NULL},
    {"GET", "/v1/streams/{kind}", HTTP_ACCESS_CALLER, FALSE, toy_stream, NULL, NULL, NULL},
    {"GET", "/v1/errors/{kind}", HTTP_ACCESS_ANYONE, FALSE, toy_error, NULL, NULL, NULL},
    {"PUT", "/v1/uploads/{mode}", HTTP_ACCESS_TENANT, FALSE, NULL, NULL, &toy_upload, NULL},
};

/* ---- fixture ------------------------------------------------------------ */

typedef struct {
    App app;
    HttpServer *server;
    char *dir;
    char *socket_path;
    char *tcp_base; /* "http://127.0.0.1:PORT" */
} Fixture;

static HttpServer *toy_server_new(App *app)
{
    return http_server_new(toy_routes, G_N_ELEMENTS(toy_routes), toy_lookup, app);
}

static void fixture_set_up(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    (void)data;

    g_mutex_init(&fixture->app.lock);
    fixture->dir = g_dir_make_tmp("test-http-XXXXXX", &error);
    g_assert_no_error(error);
    fixture->socket_path = g_build_filename(fixture->dir, "turtled.sock", NULL);
    fixture->server = toy_server_new(&fixture->app);
    g_assert_true(http_server_listen_unix(fixture->server, fixture->socket_path, &error));
    g_assert_no_error(error);
    g_assert_true(http_server_listen_tcp(fixture->server, "127.0.0.1:0", NULL, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(http_server_tcp_port(fixture->server), >, 0);
    fixture->tcp_base =
        g_strdup_printf("http://127.0.0.1:%u", http_server_tcp_port(fixture->server));
}

static void fixture_tear_down(Fixture *fixture, gconstpointer data)
{
    (void)data;
    http_server_free(fixture->server);
    /* The socket file goes with the server. */
    g_assert_false(g_file_test(fixture->socket_path, G_FILE_TEST_EXISTS));
    rmdir(fixture->dir);
    g_free(fixture->socket_path);
    g_free(fixture->dir);
    g_free(fixture->tcp_base);
    g_mutex_clear(&fixture->app.lock);
}

/* ---- client ------------------------------------------------------------- */

typedef struct {
    const char *method;
    const char *path;
    const char *socket;        /* UNIX socket, or NULL for TCP to base */
    const char *base;          /* "http://127.0.0.1:PORT"; TCP only */
    const char *authorization; /* the header's whole value */
    const char *content_type;
    const char *body;
    gsize body_len;
    gboolean chunked;  /* send the body with Transfer-Encoding: chunked */
    gsize abort_after; /* hang up once this many body bytes arrived */
    gboolean insecure; /* https with a self-signed certificate */
    long timeout_ms;   /* hang up after this long */
} Call;

typedef struct {
    CURLcode code;
    long status;
    GString *body;
    GPtrArray *headers; /* raw header lines */
    gsize abort_after;
    gsize upload_offset;
    const Call *call;
} Response;

static void response_clear(Response *response)
{
    if (response->body != NULL)
        g_string_free(response->body, TRUE);
    if (response->headers != NULL)
        g_ptr_array_unref(response->headers);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Response, response_clear)

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    Response *response = user;
    g_string_append_len(response->body, data, (gssize)(size * n));
    if (response->abort_after > 0 && response->body->len >= response->abort_after)
        return 0; /* makes curl hang up */
    return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
    Response *response = user;
    g_ptr_array_add(response->headers, g_strstrip(g_strndup(data, size * n)));
    return size * n;
}

/* Feeds the body in small pieces so the server sees several chunks. */
static size_t on_upload(char *buf, size_t size, size_t n, void *user)
{
    Response *response = user;
    gsize left = response->call->body_len - response->upload_offset;
    gsize len = MIN(MIN(left, size * n), 64 * 1024);
    memcpy(buf, response->call->body + response->upload_offset, len);
    response->upload_offset += len;
    return len;
}

static void call_run(const Call *call, Response *response)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    g_autofree char *url =
        g_strconcat(call->socket ? "http://localhost" : call->base, call->path, NULL);

    response->body = g_string_new(NULL);
    response->headers = g_ptr_array_new_with_free_func(g_free);
    response->abort_after = call->abort_after;
    response->call = call;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (call->timeout_ms > 0)
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, call->timeout_ms);
    else
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
    if (call->socket != NULL)
        curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, call->socket);
    if (call->insecure) {
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, call->method ? call->method : "GET");
    if (call->authorization != NULL) {
        g_autofree char *line = g_strdup_printf("Authorization: %s", call->authorization);
        headers = curl_slist_append(headers, line);
    }
    if (call->content_type != NULL) {
        g_autofree char *line = g_strdup_printf("Content-Type: %s", call->content_type);
        headers = curl_slist_append(headers, line);
    }
    if (call->chunked) {
        headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_upload);
        curl_easy_setopt(curl, CURLOPT_READDATA, response);
    } else if (call->body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, call->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, response);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, response);
    response->code = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
}

/* The last value of header @name, or NULL. */
static const char *response_header(const Response *response, const char *name)
{
    const char *found = NULL;
    gsize len = strlen(name);
    for (guint i = 0; i < response->headers->len; i++) {
        const char *line = response->headers->pdata[i];
        if (g_ascii_strncasecmp(line, name, len) == 0 && line[len] == ':') {
            found = line + len + 1;
            while (*found == ' ')
                found++;
        }
    }
    return found;
}

static json_object *response_json(const Response *response)
{
    g_autoptr(GError) error = NULL;
    g_assert_cmpstr(response_header(response, "Content-Type"), ==, "application/json");
    json_object *value =
        api_json_parse(response->body->str, response->body->len, API_JSON_MAX_DEPTH, &error);
    g_assert_no_error(error);
    return value;
}

/* The reply is exactly the contract's error body with @status and @code. */
static void assert_error(const Response *response, long status, const char *code)
{
    g_autoptr(json_object) value = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *wire_code = NULL;
    g_autofree char *message = NULL;
    int wire_status = 0;

    g_assert_cmpint(response->code, ==, CURLE_OK);
    g_assert_cmpint(response->status, ==, status);
    value = response_json(response);
    g_assert_true(api_error_body_from_json(value, &wire_status, &wire_code, &message, &error));
    g_assert_no_error(error);
    g_assert_cmpint(wire_status, ==, status);
    g_assert_cmpstr(wire_code, ==, code);
    g_assert_cmpstr(message, !=, "");
}

static const char *json_string(json_object *object, const char *path)
{
    g_auto(GStrv) keys = g_strsplit(path, ".", -1);
    json_object *value = object;
    for (guint i = 0; keys[i] != NULL; i++)
        g_assert_true(json_object_object_get_ex(value, keys[i], &value));
    return json_object_get_string(value);
}

/* A GET over the UNIX socket, optionally with a token. */
static void get_unix(Fixture *fixture, const char *path, const char *authorization,
                     Response *response)
{
    Call call = {.path = path, .socket = fixture->socket_path, .authorization = authorization};
    call_run(&call, response);
}

static void get_tcp(Fixture *fixture, const char *path, const char *authorization,
                    Response *response)
{
    Call call = {.path = path, .base = fixture->tcp_base, .authorization = authorization};
    call_run(&call, response);
}

/* TRUE when the test must stop: only root is the operator by SO_PEERCRED. */
static gboolean skip_unless_root(void)
{
    if (geteuid() == 0)
        return FALSE;
    g_test_skip("needs uid 0 to be the operator by SO_PEERCRED");
    return TRUE;
}

/* ---- routing ------------------------------------------------------------ */

static void test_not_found(Fixture *fixture, gconstpointer data)
{
    (void)data;
    static const char *const paths[] = {"/nope",           "/v1/",    "/v1/tenants",
                                        "/v1/tenants/a/b", "/v1/%zz", "/v1/ho%00st"};
    for (gsize i = 0; i < G_N_ELEMENTS(paths); i++) {
        g_auto(Response) response = {0};
        get_unix(fixture, paths[i], "Bearer good-token", &response);
        assert_error(&response, 404, "not_found");
    }
    /* 404 comes before authentication. */
    g_auto(Response) response = {0};
    get_tcp(fixture, "/nope", NULL, &response);
    assert_error(&response, 404, "not_found");
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.handler_calls), ==, 0);
}

static void test_method_not_allowed(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_auto(Response) response = {0};
    Call call = {.method = "PUT", .path = "/v1/tenants/acme", .base = fixture->tcp_base};
    call_run(&call, &response);
    /* 405 comes before authentication too. */
    assert_error(&response, 405, "method_not_allowed");
    g_assert_cmpstr(response_header(&response, "Allow"), ==, "GET, DELETE, HEAD");

    g_auto(Response) post = {0};
    Call post_call = {.method = "DELETE", .path = "/v1", .socket = fixture->socket_path};
    call_run(&post_call, &post);
    assert_error(&post, 405, "method_not_allowed");
    g_assert_cmpstr(response_header(&post, "Allow"), ==, "GET, HEAD");
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.handler_calls), ==, 0);
}

static void test_params(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_auto(Response) response = {0};
    get_unix(fixture, "/v1/tenants/caf%C3%A9%20bar/tokens/a%3Fb", "Bearer good-token", &response);
    g_assert_cmpint(response.status, ==, 200);
    g_autoptr(json_object) echo = response_json(&response);
    g_assert_cmpstr(json_string(echo, "params.name"), ==, "caf\xc3\xa9 bar");
    g_assert_cmpstr(json_string(echo, "params.id"), ==, "a?b");
    g_assert_cmpstr(json_string(echo, "method"), ==, "GET");
    g_assert_cmpint(json_object_object_length(json_object_object_get(echo, "query")), ==, 0);

    /* A capture never holds a '/' or nothing. */
    static const char *const no_match[] = {"/v1/tenants/a%2Fb", "/v1/tenants/a%2fb/tokens/1",
                                           "/v1/tenants//tokens/1", "/v1/tenants/"};
    for (gsize i = 0; i < G_N_ELEMENTS(no_match); i++) {
        g_auto(Response) refused = {0};
        get_unix(fixture, no_match[i], "Bearer good-token", &refused);
        assert_error(&refused, 404, "not_found");
    }
}

static void test_query(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_auto(Response) response = {0};
    get_unix(fixture, "/v1/tenants/acme?limit=5&after=a%26b%3Dc&q=x+y&flag&limit=9", NULL,
             &response);
    g_assert_cmpint(response.status, ==, 200);
    g_autoptr(json_object) echo = response_json(&response);
    g_assert_cmpstr(json_string(echo, "query.limit"), ==, "5");
    g_assert_cmpstr(json_string(echo, "query.after"), ==, "a&b=c");
    g_assert_cmpstr(json_string(echo, "query.q"), ==, "x y");
    g_assert_cmpstr(json_string(echo, "query.flag"), ==, "");
    g_assert_cmpstr(json_string(echo, "path"), ==, "/v1/tenants/acme");

    g_auto(Response) bad = {0};
    get_unix(fixture, "/v1/tenants/acme?after=%zz", "Bearer good-token", &bad);
    assert_error(&bad, 400, "bad_request");

    /* A misspelt parameter is named, not ignored. */
    g_auto(Response) unknown = {0};
    get_unix(fixture, "/v1/tenants/acme?limt=5", NULL, &unknown);
    assert_error(&unknown, 400, "bad_request");
    g_autoptr(json_object) unknown_body = response_json(&unknown);
    g_assert_nonnull(strstr(json_string(unknown_body, "error.message"), "'limt'"));
}

/* ---- callers ------------------------------------------------------------ */

static void test_operator_by_uid(Fixture *fixture, gconstpointer data)
{
    (void)data;
    if (skip_unless_root())
        return;
    g_auto(Response) response = {0};
    get_unix(fixture, "/v1/host", NULL, &response);
    g_assert_cmpint(response.status, ==, 200);
    g_autoptr(json_object) echo = response_json(&response);
    g_assert_cmpstr(json_string(echo, "role"), ==, "operator");
    g_assert_null(json_object_object_get(echo, "tenant"));

    /* The same request over TCP has no operator. */
    g_auto(Response) tcp = {0};
    get_tcp(fixture, "/v1/host", NULL, &tcp);
    assert_error(&tcp, 401, "unauthorized");
    g_assert_cmpstr(response_header(&tcp, "WWW-Authenticate"), ==, "Bearer");
}

/* Speaks raw HTTP on @path as uid NOBODY_UID in a child process and returns
 * the child's view: 0 when the status line starts with @expect. */
static int child_request_as_nobody(const char *path, const char *request, const char *expect)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    char reply[64] = {0};
    pid_t pid;
    int status = 0;

    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        /* Only raw system calls here: other threads may hold locks. */
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (setresgid(NOBODY_UID, NOBODY_UID, NOBODY_UID) != 0 ||
            setresuid(NOBODY_UID, NOBODY_UID, NOBODY_UID) != 0)
            _exit(2);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
            _exit(3);
        if (write(fd, request, strlen(request)) != (ssize_t)strlen(request))
            _exit(4);
        gsize got = 0;
        while (got < sizeof(reply) - 1) {
            ssize_t n = read(fd, reply + got, sizeof(reply) - 1 - got);
            if (n <= 0)
                break;
            got += (gsize)n;
        }
        _exit(strncmp(reply, expect, strlen(expect)) == 0 ? 0 : 5);
    }
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_non_root_is_anonymous(Fixture *fixture, gconstpointer data)
{
    (void)data;
    if (skip_unless_root())
        return;
    /* Let uid NOBODY_UID reach the socket at all. */
    g_assert_cmpint(chmod(fixture->dir, 0711), ==, 0);
    g_assert_cmpint(chmod(fixture->socket_path, 0666), ==, 0);
    /* Not the operator, and told so: 403, not a 401 that asks for a token. */
    g_assert_cmpint(child_request_as_nobody(fixture->socket_path, "GET /v1/host HTTP/1.0\r\n\r\n",
                                            "HTTP/1.1 403"),
                    ==, 0);
    g_assert_cmpint(
        child_request_as_nobody(fixture->socket_path, "GET /v1 HTTP/1.0\r\n\r\n", "HTTP/1.1 200"),
        ==, 0);
    g_assert_cmpint(child_request_as_nobody(
                        fixture->socket_path,
                        "GET /v1/things HTTP/1.0\r\nAuthorization: Bearer good-token\r\n\r\n",
                        "HTTP/1.1 200"),
                    ==, 0);
}

static void test_socket_mode(Fixture *fixture, gconstpointer data)
{
    struct stat st;
    (void)data;
    g_assert_cmpint(lstat(fixture->socket_path, &st), ==, 0);
    g_assert_true(S_ISSOCK(st.st_mode));
    g_assert_cmpint(st.st_mode & 07777, ==, 0660);
}

static void test_bearer_tokens(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_auto(Response) good = {0};
    get_tcp(fixture, "/v1/things", "Bearer good-token", &good);
    g_assert_cmpint(good.status, ==, 200);
    g_autoptr(json_object) echo = response_json(&good);
    g_assert_cmpstr(json_string(echo, "role"), ==, "tenant");
    g_assert_cmpstr(json_string(echo, "tenant"), ==, "acme");

    /* token68 characters and a case-insensitive scheme. */
    g_auto(Response) other = {0};
    get_unix(fixture, "/v1/things", "bearer   other+token/with=", &other);
    g_assert_cmpint(other.status, ==, 200);
    g_autoptr(json_object) other_echo = response_json(&other);
    g_assert_cmpstr(json_string(other_echo, "tenant"), ==, "globex");

    /* Unknown, revoked and malformed credentials are 401 even for root on
     * the UNIX socket, and even on a route anyone may call. */
    static const char *const refused[] = {
        "Bearer nope", "Bearer revoked-token", "Basic Zm9vOmJhcg==", "Bearer",
        "Bearer ",     "Bearer a b",           "Bearertoken",        "Bearer good-token,x"};
    for (gsize i = 0; i < G_N_ELEMENTS(refused); i++) {
        g_auto(Response) response = {0};
        get_unix(fixture, "/v1/host", refused[i], &response);
        assert_error(&response, 401, "unauthorized");
        g_assert_cmpstr(response_header(&response, "WWW-Authenticate"), ==, "Bearer");

        g_auto(Response) anyone = {0};
        get_tcp(fixture, "/v1", refused[i], &anyone);
        assert_error(&anyone, 401, "unauthorized");
    }
}

static void test_tcp_needs_token(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_auto(Response) open = {0};
    get_tcp(fixture, "/v1", NULL, &open);
    g_assert_cmpint(open.status, ==, 200);
    g_autoptr(json_object) echo = response_json(&open);
    g_assert_cmpstr(json_string(echo, "role"), ==, "anonymous");

    static const char *const closed[] = {"/v1/host", "/v1/tenants/acme", "/v1/things",
                                         "/v1/streams/three"};
    for (gsize i = 0; i < G_N_ELEMENTS(closed); i++) {
        g_auto(Response) response = {0};
        get_tcp(fixture, closed[i], NULL, &response);
        assert_error(&response, 401, "unauthorized");
    }
    g_auto(Response) with_token = {0};
    get_tcp(fixture, "/v1/tenants/acme", "Bearer good-token", &with_token);
    g_assert_cmpint(with_token.status, ==, 200);
}

static void test_forbidden(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_auto(Response) tenant = {0};
    get_unix(fixture, "/v1/host", "Bearer good-token", &tenant);
    assert_error(&tenant, 403, "forbidden");

    g_auto(Response) tenant_tcp = {0};
    Call call = {.method = "DELETE",
                 .path = "/v1/tenants/acme",
                 .base = fixture->tcp_base,
                 .authorization = "Bearer good-token"};
    call_run(&call, &tenant_tcp);
    assert_error(&tenant_tcp, 403, "forbidden");

    if (!skip_unless_root()) {
        g_auto(Response) operator= {0};
        get_unix(fixture, "/v1/things", NULL, &operator);
        assert_error(&operator, 403, "forbidden");
    }
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.handler_calls), ==, 0);
}

/* ---- bodies ------------------------------------------------------------- */

static void post_things(Fixture *fixture, const char *content_type, const char *body, gsize len,
                        gboolean chunked, Response *response)
{
    Call call = {.method = "POST",
                 .path = "/v1/things",
                 .base = fixture->tcp_base,
                 .authorization = "Bearer good-token",
                 .content_type = content_type,
                 .body = body,
                 .body_len = len,
                 .chunked = chunked};
    call_run(&call, response);
}

static void test_json_body_ok(Fixture *fixture, gconstpointer data)
{
    (void)data;
    static const char *const types[] = {"application/json", "application/json; charset=utf-8",
                                        "Application/JSON;charset=\"UTF-8\""};
    for (gsize i = 0; i < G_N_ELEMENTS(types); i++) {
        g_auto(Response) response = {0};
        const char *body = "{\"name\": \"web\", \"vcpus\": [1, 2]}";
        post_things(fixture, types[i], body, strlen(body), i == 2, &response);
        g_assert_cmpint(response.status, ==, 200);
        g_autoptr(json_object) echo = response_json(&response);
        g_assert_cmpstr(json_string(echo, "body.name"), ==, "web");
        json_object *vcpus = NULL;
        g_assert_true(
            json_object_object_get_ex(json_object_object_get(echo, "body"), "vcpus", &vcpus));
        g_assert_cmpint(json_object_array_length(vcpus), ==, 2);
    }
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.handler_calls), ==, 3);
}

static void test_json_body_media_type(Fixture *fixture, gconstpointer data)
{
    (void)data;
    static const char *const types[] = {"text/plain", "application/x-www-form-urlencoded",
                                        "application/json-patch+json",
                                        "application/json; charset=latin1", NULL};
    for (gsize i = 0; i < G_N_ELEMENTS(types); i++) {
        g_auto(Response) response = {0};
        const char *body = i == 1 ? "name=web&vcpus=2" : "{\"name\": \"web\"}";
        post_things(fixture, types[i], body, strlen(body), FALSE, &response);
        assert_error(&response, 415, "unsupported_media_type");
    }
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.handler_calls), ==, 0);
}

static void assert_healthy(Fixture *fixture)
{
    g_auto(Response) response = {0};
    get_tcp(fixture, "/v1", NULL, &response);
    g_assert_cmpint(response.code, ==, CURLE_OK);
    g_assert_cmpint(response.status, ==, 200);
}

static void test_json_body_too_large(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_autofree char *big = g_malloc(TWO_MIB);
    /* Valid JSON all the way, so only its size is wrong. */
    memset(big, ' ', TWO_MIB);
    big[0] = '[';
    big[TWO_MIB - 1] = ']';

    g_auto(Response) declared = {0};
    post_things(fixture, "application/json", big, TWO_MIB, FALSE, &declared);
    assert_error(&declared, 413, "payload_too_large");
    assert_healthy(fixture);

    /* Chunked: the size only shows while reading. */
    g_auto(Response) chunked = {0};
    post_things(fixture, "application/json", big, TWO_MIB, TRUE, &chunked);
    assert_error(&chunked, 413, "payload_too_large");
    assert_healthy(fixture);

    /* Exactly the cap is fine. */
    g_auto(Response) at_cap = {0};
    post_things(fixture, "application/json", big + TWO_MIB - HTTP_MAX_JSON_BODY, HTTP_MAX_JSON_BODY,
                FALSE, &at_cap);
    assert_error(&at_cap, 400, "bad_request"); /* "  ...]" is not JSON, but it was read */
    /* Only the two health checks reached a handler. */
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.handler_calls), ==, 2);
}

static void test_json_body_bad(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_autofree char *deep = g_malloc(DEEP_NESTING + 1);
    memset(deep, '[', DEEP_NESTING);
    deep[DEEP_NESTING] = '\0';
    const char *bad[] = {deep,      "{\"name\": ", "{\"a\": 1} trailing", "", "   ",
                         "[1, 2,]", "{\"a\" 1}"};

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        for (int chunked = 0; chunked <= 1; chunked++) {
            g_auto(Response) response = {0};
            post_things(fixture, "application/json", bad[i], strlen(bad[i]), chunked, &response);
            assert_error(&response, 400, "bad_request");
        }
    }
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.handler_calls), ==, 0);
}

static void test_body_on_bodyless_route(Fixture *fixture, gconstpointer data)
{
    (void)data;
    for (int chunked = 0; chunked <= 1; chunked++) {
        g_auto(Response) response = {0};
        Call call = {.method = "GET",
                     .path = "/v1/tenants/acme",
                     .base = fixture->tcp_base,
                     .authorization = "Bearer good-token",
                     .content_type = "application/json",
                     .body = "{}",
                     .body_len = 2,
                     .chunked = chunked};
        call_run(&call, &response);
        assert_error(&response, 400, "bad_request");
    }
    /* A declared empty body is no body. */
    g_auto(Response) empty = {0};
    Call call = {.method = "GET",
                 .path = "/v1/tenants/acme",
                 .base = fixture->tcp_base,
                 .authorization = "Bearer good-token",
                 .body = "",
                 .body_len = 0};
    call_run(&call, &empty);
    g_assert_cmpint(empty.status, ==, 200);
}

/* ---- uploads ------------------------------------------------------------ */

static guint count_of(GHashTable *counts, const char *key)
{
    return GPOINTER_TO_UINT(g_hash_table_lookup(counts, key));
}

/* UPLOAD_SIZE bytes no two runs of a piece repeat in. */
static char *upload_body(void)
{
    char *body = g_malloc(UPLOAD_SIZE);
    g_autoptr(GRand) rand = g_rand_new_with_seed(5);
    for (gsize i = 0; i < UPLOAD_SIZE; i += sizeof(guint32)) {
        guint32 value = g_rand_int(rand);
        memcpy(body + i, &value, sizeof(value));
    }
    return body;
}

static void put_upload(Fixture *fixture, const char *mode, const char *authorization,
                       const char *content_type, const char *body, gsize len, Response *response)
{
    g_autofree char *path = g_strdup_printf("/v1/uploads/%s", mode);
    Call call = {.method = "PUT",
                 .path = path,
                 .socket = fixture->socket_path,
                 .authorization = authorization,
                 .content_type = content_type,
                 .body = body,
                 .body_len = len};
    call_run(&call, response);
}

/* A connected client socket on the fixture's UNIX socket, reads time out. */
static int raw_connect(Fixture *fixture)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct timeval timeout = {.tv_sec = 5};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(fd, >=, 0);
    g_strlcpy(addr.sun_path, fixture->socket_path, sizeof(addr.sun_path));
    g_assert_cmpint(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)), ==, 0);
    return fd;
}

static void raw_send(int fd, const char *data, gsize len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        g_assert_cmpint(n, >, 0);
        data += n;
        len -= (gsize)n;
    }
}

/* Everything the server sends until it closes (or reads time out). */
static GString *raw_read_all(int fd)
{
    GString *reply = g_string_new(NULL);
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        g_string_append_len(reply, buf, n);
    return reply;
}

/* Sends what the server takes: it may answer and stop reading before a
 * refused request (a 200 KB line) is all sent. */
static void raw_send_refused(int fd, const char *data, gsize len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
            return;
        g_assert_cmpint(n, >, 0);
        data += n;
        len -= (gsize)n;
    }
}

/* Reads until the server closes; FALSE when it did not within the timeout. */
static gboolean raw_read_to_close(int fd, GString *reply)
{
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        g_string_append_len(reply, buf, n);
    return n == 0;
}

/* Answers follow each other on a kept-alive connection, a status line right
 * after the last body ("HTTP/1.1 NNN"; a message may say "HTTP/1.1"). */
static guint count_status_lines(const char *reply)
{
    guint count = 0;
    for (const char *p = reply; (p = strstr(p, "HTTP/1.1 ")) != NULL; p++)
        if (g_ascii_isdigit(p[9]) && g_ascii_isdigit(p[10]) && g_ascii_isdigit(p[11]))
            count++;
    return count;
}

/* The HTTP corner cases of issue 15, as raw bytes: one status line, our JSON
 * error body, and the connection closed where what follows cannot be trusted. */
static void test_conformance(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_autofree char *many_args = NULL;
    g_autofree char *long_path = NULL;
    g_autofree char *big_header = NULL;
    g_autoptr(GString) args = g_string_new("GET /v1?a=0");
    for (int i = 1; i < 4000; i++)
        g_string_append_printf(args, "&a%d=%d", i, i);
    g_string_append(args, " HTTP/1.1\r\nHost: x\r\n\r\n");
    many_args = g_string_free(g_steal_pointer(&args), FALSE);
    g_autofree char *path = g_strnfill(200 * 1024, 'p');
    long_path = g_strdup_printf("GET /v1/%s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    g_autofree char *filler = g_strnfill(20 * 1024, 'f');
    big_header = g_strdup_printf("GET /v1 HTTP/1.1\r\nHost: x\r\nX-Filler: %s\r\n\r\n", filler);

    const struct {
        const char *what;
        const char *request;
        unsigned status;
        const char *code;
    } cases[] = {
        {"malformed Content-Length",
         "POST /v1/things HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, "bad_request"},
        {"negative Content-Length",
         "POST /v1/things HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "bad_request"},
        {"two different Content-Lengths",
         "POST /v1/things HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
         400, "bad_request"},
        {"Content-Length with chunked (smuggling)",
         "POST /v1/things HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
         "GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n",
         400, "bad_request"},
        {"Transfer-Encoding identity",
         "POST /v1/things HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", 501,
         "not_implemented"},
        {"Transfer-Encoding gzip, chunked",
         "POST /v1/things HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
         "0\r\n\r\n",
         501, "not_implemented"},
        {"HTTP/1.1 without Host", "GET /v1 HTTP/1.1\r\n\r\n", 400, "bad_request"},
        {"4000 query arguments", many_args, 414, "uri_too_long"},
        {"a 200 KB path", long_path, 414, "uri_too_long"},
        {"20 KB of headers", big_header, 431, "headers_too_large"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_test_message("%s", cases[i].what);
        int fd = raw_connect(fixture);
        raw_send_refused(fd, cases[i].request, strlen(cases[i].request));
        g_autoptr(GString) reply = g_string_new(NULL);
        g_assert_true(raw_read_to_close(fd, reply));
        close(fd);
        g_autofree char *status_line = g_strdup_printf("HTTP/1.1 %u ", cases[i].status);
        g_assert_true(g_str_has_prefix(reply->str, status_line));
        g_assert_cmpuint(count_status_lines(reply->str), ==, 1);
        const char *body = strstr(reply->str, "\r\n\r\n");
        g_assert_nonnull(body);
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) json =
            api_json_parse(body + 4, strlen(body + 4), API_JSON_MAX_DEPTH, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(json_string(json, "error.code"), ==, cases[i].code);
        g_assert_cmpuint(strlen(json_string(json, "error.message")), <=, API_ERROR_MESSAGE_MAX + 3);
    }
}

/* A later request on a kept-alive connection is checked too (from
 * libmicrohttpd's parse): the smuggled request after it is never served. */
static void test_conformance_keep_alive(Fixture *fixture, gconstpointer data)
{
    (void)data;
    static const char requests[] =
        "GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /v1/things HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        "GET /v1/host HTTP/1.1\r\nHost: x\r\n\r\n";
    int fd = raw_connect(fixture);
    raw_send(fd, requests, strlen(requests));
    g_autoptr(GString) reply = g_string_new(NULL);
    g_assert_true(raw_read_to_close(fd, reply));
    close(fd);
    g_assert_true(g_str_has_prefix(reply->str, "HTTP/1.1 200 "));
    g_assert_cmpuint(count_status_lines(reply->str), ==, 2);
    g_assert_nonnull(strstr(reply->str, "HTTP/1.1 400 "));
    g_assert_nonnull(strstr(reply->str, "\"bad_request\""));
}

/* HEAD is answered on every GET route: GET's status and headers, no body. */
static void test_head(Fixture *fixture, gconstpointer data)
{
    (void)data;
    static const char request[] = "HEAD /v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int fd = raw_connect(fixture);
    raw_send(fd, request, strlen(request));
    g_autoptr(GString) reply = g_string_new(NULL);
    g_assert_true(raw_read_to_close(fd, reply));
    close(fd);
    g_assert_true(g_str_has_prefix(reply->str, "HTTP/1.1 200 "));
    g_assert_true(g_str_has_suffix(reply->str, "\r\n\r\n"));
    g_assert_nonnull(strstr(reply->str, "application/json"));
}

/* Quoted input is escaped and cut: the body stays valid JSON. */
static void test_error_echo(Fixture *fixture, gconstpointer data)
{
    (void)data;
    static const char request[] =
        "GET /v1/nothing/%ff%fe%1b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int fd = raw_connect(fixture);
    raw_send(fd, request, strlen(request));
    g_autoptr(GString) reply = g_string_new(NULL);
    g_assert_true(raw_read_to_close(fd, reply));
    close(fd);
    g_assert_true(g_str_has_prefix(reply->str, "HTTP/1.1 404 "));
    const char *body = strstr(reply->str, "\r\n\r\n") + 4;
    g_assert_true(g_utf8_validate(body, -1, NULL));
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) json = api_json_parse(body, strlen(body), API_JSON_MAX_DEPTH, &error);
    g_assert_no_error(error);
    g_assert_nonnull(strstr(json_string(json, "error.message"), "%ff%fe%1b"));
}

static void test_upload_streamed(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_autofree char *body = upload_body();
    g_autofree char *expected =
        g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)body, UPLOAD_SIZE);

    g_auto(Response) response = {0};
    put_upload(fixture, "ok", "Bearer good-token", "application/octet-stream", body, UPLOAD_SIZE,
               &response);
    g_assert_cmpint(response.code, ==, CURLE_OK);
    g_assert_cmpint(response.status, ==, 200);
    g_autoptr(json_object) out = response_json(&response);
    /* Whole and in order. */
    g_assert_cmpstr(json_string(out, "sha256"), ==, expected);
    g_assert_cmpstr(json_string(out, "bytes"), ==, "20971520");
    g_assert_cmpstr(json_string(out, "declared"), ==, "20971520");
    /* Handed over as it arrived, in many bounded pieces, never gathered. */
    int writes = app_get(&fixture->app, &fixture->app.upload_writes);
    g_assert_cmpint(writes, >=, UPLOAD_SIZE / UPLOAD_MAX_PIECE);
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.max_piece), <=, UPLOAD_MAX_PIECE);
    g_test_message("%d pieces of at most %d bytes", writes,
                   app_get(&fixture->app, &fixture->app.max_piece));
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_finishes), ==, 1);
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_aborts), ==, 0);

    /* A media type with parameters and an empty body are fine too (over TCP). */
    g_auto(Response) empty = {0};
    Call call = {.method = "PUT",
                 .path = "/v1/uploads/ok",
                 .base = fixture->tcp_base,
                 .authorization = "Bearer good-token",
                 .content_type = "Application/Octet-Stream; x=1",
                 .body = "",
                 .body_len = 0};
    call_run(&call, &empty);
    g_assert_cmpint(empty.status, ==, 200);
    g_autoptr(json_object) empty_out = response_json(&empty);
    g_assert_cmpstr(json_string(empty_out, "bytes"), ==, "0");
    g_assert_cmpstr(json_string(empty_out, "sha256"), ==,
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_finishes), ==, 2);

    g_autoptr(GHashTable) counts = http_server_request_counts(fixture->server);
    g_assert_cmpuint(count_of(counts, "/v1/uploads/{mode}\t200"), ==, 2);
}

static void test_upload_media_type(Fixture *fixture, gconstpointer data)
{
    (void)data;
    static const char *const types[] = {"application/json", "text/plain",
                                        "application/octet-streamx", NULL};
    for (gsize i = 0; i < G_N_ELEMENTS(types); i++) {
        g_auto(Response) response = {0};
        put_upload(fixture, "ok", "Bearer good-token", types[i], "{}", 2, &response);
        assert_error(&response, 415, "unsupported_media_type");
    }
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_begins), ==, 0);
    assert_healthy(fixture);
}

static void test_upload_length_required(Fixture *fixture, gconstpointer data)
{
    (void)data;
    /* Chunked, through curl. */
    g_auto(Response) chunked = {0};
    Call call = {.method = "PUT",
                 .path = "/v1/uploads/ok",
                 .socket = fixture->socket_path,
                 .authorization = "Bearer good-token",
                 .content_type = "application/octet-stream",
                 .body = "hello",
                 .body_len = 5,
                 .chunked = TRUE};
    call_run(&call, &chunked);
    assert_error(&chunked, 411, "length_required");

    /* Raw: chunked with a Content-Length too (ambiguous framing, refused
     * before the route is looked at), and no length at all. */
    static const struct {
        const char *request;
        const char *status_line;
        const char *code;
    } requests[] = {
        {"PUT /v1/uploads/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good-token\r\n"
         "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n"
         "Content-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
         "HTTP/1.1 400", "\"bad_request\""},
        {"PUT /v1/uploads/ok HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good-token\r\n"
         "Content-Type: application/octet-stream\r\n\r\n",
         "HTTP/1.1 411", "\"length_required\""},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(requests); i++) {
        int fd = raw_connect(fixture);
        raw_send(fd, requests[i].request, strlen(requests[i].request));
        g_autoptr(GString) reply = raw_read_all(fd);
        close(fd);
        g_assert_true(g_str_has_prefix(reply->str, requests[i].status_line));
        g_assert_nonnull(strstr(reply->str, requests[i].code));
    }
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_begins), ==, 0);
    g_autoptr(GHashTable) counts = http_server_request_counts(fixture->server);
    g_assert_cmpuint(count_of(counts, "/v1/uploads/{mode}\t411"), ==, 2);
}

static void test_upload_refused_by_begin(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_autofree char *body = upload_body();
    g_auto(Response) response = {0};
    put_upload(fixture, "refuse-begin", "Bearer good-token", "application/octet-stream", body,
               UPLOAD_SIZE, &response);
    assert_error(&response, 413, "payload_too_large");
    g_assert_cmpstr(response_header(&response, "Connection"), ==, "close");
    /* A small body comes without "Expect": it is sent, and still not read. */
    g_auto(Response) small = {0};
    put_upload(fixture, "refuse-begin", "Bearer good-token", "application/octet-stream", body,
               64 * 1024, &small);
    assert_error(&small, 413, "payload_too_large");

    /* The client that asked first is told no before sending anything. */
    int fd = raw_connect(fixture);
    const char *request = "PUT /v1/uploads/refuse-begin HTTP/1.1\r\nHost: x\r\n"
                          "Authorization: Bearer good-token\r\n"
                          "Content-Type: application/octet-stream\r\n"
                          "Content-Length: 1000000000\r\nExpect: 100-continue\r\n\r\n";
    raw_send(fd, request, strlen(request));
    g_autoptr(GString) reply = raw_read_all(fd);
    close(fd);
    g_assert_true(g_str_has_prefix(reply->str, "HTTP/1.1 413"));
    g_assert_null(strstr(reply->str, "100 Continue"));
    g_assert_nonnull(strstr(reply->str, "1000000000 bytes would exceed the quota"));

    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_begins), ==, 3);
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_writes), ==, 0);
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_aborts), ==, 0);
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_finishes), ==, 0);
    assert_healthy(fixture);
}

static void test_upload_refused_by_write(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_autofree char *body = upload_body();
    g_auto(Response) response = {0};
    put_upload(fixture, "refuse-write", "Bearer good-token", "application/octet-stream", body,
               UPLOAD_SIZE, &response);
    assert_error(&response, 409, "conflict");
    g_assert_cmpstr(response_header(&response, "Connection"), ==, "close");
    g_autoptr(json_object) out = response_json(&response);
    g_assert_cmpstr(json_string(out, "error.message"), ==, "the pool is gone");
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.writes_after_refusal), ==, 0);
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_writes), <,
                    UPLOAD_SIZE / app_get(&fixture->app, &fixture->app.max_piece));
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_aborts), ==, 1);
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_finishes), ==, 0);
    assert_healthy(fixture);
}

/* Sends the headers of a 10 MiB upload and @sent bytes of it; returns the socket. */
static int start_partial_upload(Fixture *fixture, gsize sent)
{
    int fd = raw_connect(fixture);
    const char *request = "PUT /v1/uploads/ok HTTP/1.1\r\nHost: x\r\n"
                          "Authorization: Bearer good-token\r\n"
                          "Content-Type: application/octet-stream\r\n"
                          "Content-Length: 10485760\r\n\r\n";
    g_autofree char *zeros = g_malloc0(sent);
    raw_send(fd, request, strlen(request));
    raw_send(fd, zeros, sent);
    return fd;
}

static void test_upload_client_leaves(Fixture *fixture, gconstpointer data)
{
    (void)data;
    int fd = start_partial_upload(fixture, 1024 * 1024);
    g_assert_true(app_wait(&fixture->app, &fixture->app.upload_writes, 1));
    close(fd);
    g_assert_true(app_wait(&fixture->app, &fixture->app.upload_aborts, 1));
    g_usleep(200 * 1000);
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_aborts), ==, 1);
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_finishes), ==, 0);
    assert_healthy(fixture);
}

static void test_upload_server_stops(Fixture *fixture, gconstpointer data)
{
    (void)data;
    int fd = start_partial_upload(fixture, 64 * 1024);
    g_assert_true(app_wait(&fixture->app, &fixture->app.upload_writes, 1));
    /* The client stays, sending nothing: the server must not wait for it. */
    gint64 started = g_get_monotonic_time();
    g_clear_pointer(&fixture->server, http_server_free);
    g_assert_cmpint(g_get_monotonic_time() - started, <, 3 * G_USEC_PER_SEC);
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_aborts), ==, 1);
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_finishes), ==, 0);
    close(fd);
}

static void test_upload_needs_token(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_auto(Response) tcp = {0};
    Call call = {.method = "PUT",
                 .path = "/v1/uploads/ok",
                 .base = fixture->tcp_base,
                 .content_type = "application/octet-stream",
                 .body = "data",
                 .body_len = 4};
    call_run(&call, &tcp);
    assert_error(&tcp, 401, "unauthorized");
    g_auto(Response) revoked = {0};
    put_upload(fixture, "ok", "Bearer revoked-token", "application/octet-stream", "data", 4,
               &revoked);
    assert_error(&revoked, 401, "unauthorized");
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_begins), ==, 0);
    if (geteuid() == 0) {
        /* The operator is no tenant. */
        g_auto(Response) operator= {0};
        put_upload(fixture, "ok", NULL, "application/octet-stream", "data", 4, &operator);
        assert_error(&operator, 403, "forbidden");
    }
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.upload_begins), ==, 0);
}

/* ---- replies ------------------------------------------------------------ */

static void test_error_replies(Fixture *fixture, gconstpointer data)
{
    (void)data;
    static const struct {
        const char *kind;
        long status;
        const char *code;
        const char *message;
    } cases[] = {
        {"conflict", 409, "conflict", "stack 'web' is running"},
        {"unavailable", 503, "unavailable", "libvirt is unreachable"},
        {"quota", 403, "quota_exceeded", "quota exceeded: vcpus"},
        {"invalid", 400, "bad_request", "vcpus: must be at least 1"},
        {"foreign", 500, "internal", "internal error"},
        {"null", 500, "internal", "internal error"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = g_strdup_printf("/v1/errors/%s", cases[i].kind);
        g_auto(Response) response = {0};
        if (cases[i].status == 500)
            g_test_expect_message(NULL, G_LOG_LEVEL_WARNING, "*");
        get_tcp(fixture, path, NULL, &response);
        g_test_assert_expected_messages();
        assert_error(&response, cases[i].status, cases[i].code);
        g_autoptr(json_object) body = response_json(&response);
        g_assert_cmpstr(json_string(body, "error.message"), ==, cases[i].message);
        /* The real cause stays in the log. */
        g_assert_null(strstr(response.body->str, "secret"));
    }
}

static void test_reply_free_stream(void)
{
    App app = {0};
    g_mutex_init(&app.lock);
    ToyStream *stream = g_new0(ToyStream, 1);
    stream->app = &app;
    HttpReply *reply = http_reply_stream(200, "text/plain", three_read, stream, toy_stream_free);
    http_reply_add_header(reply, "X-Test", "1");
    http_reply_free(reply);
    /* A stream never handed to a client still frees its data. */
    g_assert_cmpint(app.stream_frees, ==, 1);
    http_reply_free(NULL);
    g_mutex_clear(&app.lock);
}

static void test_stream_three_chunks(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_auto(Response) response = {0};
    get_tcp(fixture, "/v1/streams/three", "Bearer good-token", &response);
    g_assert_cmpint(response.code, ==, CURLE_OK);
    g_assert_cmpint(response.status, ==, 200);
    g_assert_cmpstr(response.body->str, ==, "one\ntwo\nthree\n");
    g_assert_cmpstr(response_header(&response, "Transfer-Encoding"), ==, "chunked");
    g_assert_cmpstr(response_header(&response, "Connection"), ==, "close");
    g_assert_cmpstr(response_header(&response, "Content-Type"), ==, "text/plain");
    g_assert_true(app_wait(&fixture->app, &fixture->app.stream_frees, 1));
}

static void test_stream_client_leaves(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_auto(Response) response = {0};
    Call call = {.path = "/v1/streams/forever",
                 .socket = fixture->socket_path,
                 .authorization = "Bearer good-token",
                 .abort_after = 3 * strlen(FOREVER_CHUNK)};
    call_run(&call, &response);
    g_assert_cmpint(response.code, ==, CURLE_WRITE_ERROR);
    g_assert_true(g_str_has_prefix(response.body->str, FOREVER_CHUNK FOREVER_CHUNK));
    /* The server notices at its next write and frees the stream. */
    g_assert_true(app_wait(&fixture->app, &fixture->app.stream_frees, 1));
    assert_healthy(fixture);
}

static void test_stream_idle_client_leaves(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_auto(Response) response = {0};
    Call call = {.path = "/v1/streams/idle",
                 .base = fixture->tcp_base,
                 .authorization = "Bearer good-token",
                 .timeout_ms = 600};
    call_run(&call, &response);
    g_assert_cmpint(response.code, ==, CURLE_OPERATION_TIMEDOUT);
    /* Nothing is ever written, yet the server sees the hang-up and lets go. */
    g_assert_true(app_wait(&fixture->app, &fixture->app.stream_frees, 1));
    int reads = app_get(&fixture->app, &fixture->app.idle_reads);
    g_usleep(600 * 1000);
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.idle_reads), ==, reads);
}

static gpointer idle_client(gpointer data)
{
    Fixture *fixture = data;
    Response *response = g_new0(Response, 1);
    get_tcp(fixture, "/v1/streams/idle", "Bearer good-token", response);
    return response;
}

static void test_stream_idle_paced_and_ended_by_free(Fixture *fixture, gconstpointer data)
{
    (void)data;
    GThread *client = g_thread_new("idle-client", idle_client, fixture);
    g_assert_true(app_wait(&fixture->app, &fixture->app.idle_reads, 1));
    g_usleep(G_USEC_PER_SEC);
    /* A reader that never blocks is paced, not spun (~4 calls a second). */
    int reads = app_get(&fixture->app, &fixture->app.idle_reads);
    g_assert_cmpint(reads, <=, 10);
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.stream_frees), ==, 0);

    /* Stopping the server ends the stream cleanly and frees it. */
    gint64 started = g_get_monotonic_time();
    g_clear_pointer(&fixture->server, http_server_free);
    g_assert_cmpint(g_get_monotonic_time() - started, <, 3 * G_USEC_PER_SEC);
    g_assert_cmpint(app_get(&fixture->app, &fixture->app.stream_frees), ==, 1);
    Response *response = g_thread_join(client);
    g_assert_cmpint(response->code, ==, CURLE_OK);
    g_assert_cmpint(response->status, ==, 200);
    g_assert_cmpstr(response->body->str, ==, "");
    response_clear(response);
    g_free(response);
}

/* ---- listeners ---------------------------------------------------------- */

static void test_tcp_refuses_non_loopback(void)
{
    static const char *const open_addresses[] = {"0.0.0.0:0", "192.0.2.10:8080", "[::]:0",
                                                 "[2001:db8::1]:443"};
    g_autoptr(HttpServer) server = http_server_new(toy_routes, 1, toy_lookup, NULL);

    for (gsize i = 0; i < G_N_ELEMENTS(open_addresses); i++) {
        g_autoptr(GError) error = NULL;
        g_assert_false(http_server_listen_tcp(server, open_addresses[i], NULL, NULL, &error));
        g_assert_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST);
        g_assert_nonnull(strstr(error->message, "TLS"));
    }
    static const char *const bad[] = {
        "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",   "127.0.0.1:80x",   "::1:80",
        "[::1]",     "[::1]80",    "[127.0.0.1]:80",  "example.org:80", "127.0.0.1:80:80", ""};
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_assert_false(http_server_listen_tcp(server, bad[i], NULL, NULL, &error));
        g_assert_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST);
    }
    g_autoptr(GError) half = NULL;
    g_assert_false(http_server_listen_tcp(server, "127.0.0.1:0", "cert.pem", NULL, &half));
    g_assert_error(half, TD_ERROR, TD_ERROR_BAD_REQUEST);
    g_autoptr(GError) missing = NULL;
    g_assert_false(http_server_listen_tcp(server, "127.0.0.1:0", "/nonexistent/c", "/nonexistent/k",
                                          &missing));
    g_assert_error(missing, TD_ERROR, TD_ERROR_BAD_REQUEST);
    g_assert_cmpuint(http_server_tcp_port(server), ==, 0);
}

static void test_tcp_port_in_use(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    (void)data;
    g_autofree char *address =
        g_strdup_printf("127.0.0.1:%u", http_server_tcp_port(fixture->server));
    g_autoptr(HttpServer) second = toy_server_new(&fixture->app);
    g_assert_false(http_server_listen_tcp(second, address, NULL, NULL, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    assert_healthy(fixture);
}

static gboolean ipv6_loopback_works(void)
{
    struct sockaddr_in6 addr = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    gboolean ok = fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void test_tcp_ipv6(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    (void)data;
    if (!ipv6_loopback_works()) {
        g_test_skip("no IPv6 loopback here");
        return;
    }
    g_autoptr(HttpServer) server = toy_server_new(&fixture->app);
    g_assert_true(http_server_listen_tcp(server, "[::1]:0", NULL, NULL, &error));
    g_assert_no_error(error);
    g_autofree char *base = g_strdup_printf("http://[::1]:%u", http_server_tcp_port(server));
    g_auto(Response) response = {0};
    Call call = {.path = "/v1", .base = base};
    call_run(&call, &response);
    g_assert_cmpint(response.status, ==, 200);
}

/* A self-signed ECDSA certificate for localhost, as PEM files in @dir. */
static void write_self_signed(const char *dir, char **cert_file, char **key_file)
{
    gnutls_x509_privkey_t key;
    gnutls_x509_crt_t crt;
    gnutls_datum_t key_pem = {0}, crt_pem = {0};
    unsigned char serial = 1;
    time_t now = time(NULL);

    g_assert_cmpint(gnutls_x509_privkey_init(&key), ==, 0);
    g_assert_cmpint(gnutls_x509_privkey_generate(
                        key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                    ==, 0);
    g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_set_version(crt, 3), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_set_serial(crt, &serial, sizeof(serial)), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_set_activation_time(crt, now - 3600), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_set_expiration_time(crt, now + 86400), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "localhost",
                                                  strlen("localhost")),
                    ==, 0);
    g_assert_cmpint(gnutls_x509_crt_set_key(crt, key), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), ==, 0);
    g_assert_cmpint(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &key_pem), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &crt_pem), ==, 0);

    *cert_file = g_build_filename(dir, "cert.pem", NULL);
    *key_file = g_build_filename(dir, "key.pem", NULL);
    g_assert_true(g_file_set_contents(*cert_file, (char *)crt_pem.data, crt_pem.size, NULL));
    g_assert_true(g_file_set_contents(*key_file, (char *)key_pem.data, key_pem.size, NULL));
    gnutls_free(key_pem.data);
    gnutls_free(crt_pem.data);
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
}

static void test_tcp_tls(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *cert = NULL;
    g_autofree char *key = NULL;
    (void)data;

    write_self_signed(fixture->dir, &cert, &key);
    g_autoptr(HttpServer) server = toy_server_new(&fixture->app);
    g_assert_true(http_server_listen_tcp(server, "127.0.0.1:0", cert, key, &error));
    g_assert_no_error(error);
    g_autofree char *base = g_strdup_printf("https://127.0.0.1:%u", http_server_tcp_port(server));
    g_auto(Response) response = {0};
    Call call = {
        .path = "/v1/things", .base = base, .authorization = "Bearer good-token", .insecure = TRUE};
    call_run(&call, &response);
    g_assert_cmpint(response.code, ==, CURLE_OK);
    g_assert_cmpint(response.status, ==, 200);
    g_autoptr(json_object) echo = response_json(&response);
    g_assert_cmpstr(json_string(echo, "tenant"), ==, "acme");

    /* A key that does not parse is refused at listen time. */
    g_autoptr(HttpServer) broken = toy_server_new(&fixture->app);
    g_autoptr(GError) broken_error = NULL;
    g_assert_false(http_server_listen_tcp(broken, "127.0.0.1:0", cert, cert, &broken_error));
    g_assert_error(broken_error, TD_ERROR, TD_ERROR_INTERNAL);

    unlink(cert);
    unlink(key);
}

/* Leaves a socket file behind with nobody listening, like a crashed daemon. */
static void make_stale_socket(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    close(fd);
}

static void test_unix_stale_socket(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    (void)data;
    g_autofree char *path = g_build_filename(fixture->dir, "stale.sock", NULL);
    make_stale_socket(path);
    g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));

    g_autoptr(HttpServer) server = toy_server_new(&fixture->app);
    g_assert_true(http_server_listen_unix(server, path, &error));
    g_assert_no_error(error);
    g_auto(Response) response = {0};
    Call call = {.path = "/v1", .socket = path};
    call_run(&call, &response);
    g_assert_cmpint(response.status, ==, 200);
    g_clear_pointer(&server, http_server_free);
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

static void test_unix_live_socket_refused(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    (void)data;
    g_autoptr(HttpServer) second = toy_server_new(&fixture->app);
    g_assert_false(http_server_listen_unix(second, fixture->socket_path, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_clear_pointer(&second, http_server_free);

    /* The first server still owns and serves its socket. */
    g_auto(Response) response = {0};
    get_unix(fixture, "/v1", NULL, &response);
    g_assert_cmpint(response.status, ==, 200);
}

static void test_unix_not_a_socket(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *contents = NULL;
    (void)data;
    g_autofree char *path = g_build_filename(fixture->dir, "file", NULL);
    g_assert_true(g_file_set_contents(path, "keep me", -1, NULL));

    g_autoptr(HttpServer) server = toy_server_new(&fixture->app);
    g_assert_false(http_server_listen_unix(server, path, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
    g_assert_cmpstr(contents, ==, "keep me");
    unlink(path);
}

/* ---- metrics ------------------------------------------------------------ */

static void test_request_counts(Fixture *fixture, gconstpointer data)
{
    (void)data;
    for (int i = 0; i < 3; i++) {
        g_auto(Response) response = {0};
        get_tcp(fixture, "/v1", NULL, &response);
    }
    g_auto(Response) not_found = {0};
    get_tcp(fixture, "/nope", NULL, &not_found);
    g_auto(Response) unauthorized = {0};
    get_tcp(fixture, "/v1/tenants/acme", NULL, &unauthorized);
    g_auto(Response) not_allowed = {0};
    Call call = {.method = "PATCH", .path = "/v1/tenants/acme", .base = fixture->tcp_base};
    call_run(&call, &not_allowed);
    g_auto(Response) deleted = {0};
    Call delete_call = {.method = "DELETE",
                        .path = "/v1/tenants/acme",
                        .base = fixture->tcp_base,
                        .authorization = "Bearer good-token"};
    call_run(&delete_call, &deleted);

    g_autoptr(GHashTable) counts = http_server_request_counts(fixture->server);
    g_assert_cmpuint(count_of(counts, "/v1\t200"), ==, 3);
    g_assert_cmpuint(count_of(counts, "unmatched\t404"), ==, 1);
    g_assert_cmpuint(count_of(counts, "/v1/tenants/{name}\t401"), ==, 1);
    g_assert_cmpuint(count_of(counts, "/v1/tenants/{name}\t405"), ==, 1);
    g_assert_cmpuint(count_of(counts, "tenant-delete\t403"), ==, 1);
    g_assert_cmpuint(g_hash_table_size(counts), ==, 5);

    /* A snapshot: later requests do not change it. */
    assert_healthy(fixture);
    g_assert_cmpuint(count_of(counts, "/v1\t200"), ==, 3);
    g_autoptr(GHashTable) later = http_server_request_counts(fixture->server);
    g_assert_cmpuint(count_of(later, "/v1\t200"), ==, 4);
}

typedef struct {
    Fixture *fixture;
    int ok;
} Hammer;

static gpointer hammer(gpointer data)
{
    Hammer *hammer_data = data;
    for (int i = 0; i < 20; i++) {
        g_auto(Response) response = {0};
        get_unix(hammer_data->fixture, "/v1/tenants/acme", "Bearer good-token", &response);
        if (response.status == 200)
            hammer_data->ok++;
    }
    return NULL;
}

static void test_concurrent_requests(Fixture *fixture, gconstpointer data)
{
    (void)data;
    Hammer hammers[4] = {{fixture, 0}, {fixture, 0}, {fixture, 0}, {fixture, 0}};
    GThread *threads[G_N_ELEMENTS(hammers)];
    /* A stream that never ends must not hold up the others. */
    GThread *idle = g_thread_new("idle-client", idle_client, fixture);
    g_assert_true(app_wait(&fixture->app, &fixture->app.idle_reads, 1));

    for (gsize i = 0; i < G_N_ELEMENTS(hammers); i++)
        threads[i] = g_thread_new("hammer", hammer, &hammers[i]);
    for (gsize i = 0; i < G_N_ELEMENTS(hammers); i++) {
        g_thread_join(threads[i]);
        g_assert_cmpint(hammers[i].ok, ==, 20);
    }
    g_autoptr(GHashTable) counts = http_server_request_counts(fixture->server);
    g_assert_cmpuint(count_of(counts, "/v1/tenants/{name}\t200"), ==, 80);

    g_clear_pointer(&fixture->server, http_server_free);
    Response *response = g_thread_join(idle);
    response_clear(response);
    g_free(response);
}

#define ADD(name, func)                                                                            \
    g_test_add("/http/" name, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    curl_global_init(CURL_GLOBAL_ALL);
    /* Writes to a client that left must fail, not kill the test. */
    signal(SIGPIPE, SIG_IGN);

    ADD("routing/not-found", test_not_found);
    ADD("routing/method-not-allowed", test_method_not_allowed);
    ADD("routing/params", test_params);
    ADD("routing/query", test_query);
    ADD("callers/operator-by-uid", test_operator_by_uid);
    ADD("callers/non-root-is-anonymous", test_non_root_is_anonymous);
    ADD("callers/socket-mode", test_socket_mode);
    ADD("callers/bearer-tokens", test_bearer_tokens);
    ADD("callers/tcp-needs-token", test_tcp_needs_token);
    ADD("callers/forbidden", test_forbidden);
    ADD("body/json-ok", test_json_body_ok);
    ADD("body/media-type", test_json_body_media_type);
    ADD("body/too-large", test_json_body_too_large);
    ADD("body/bad-json", test_json_body_bad);
    ADD("body/bodyless-route", test_body_on_bodyless_route);
    ADD("upload/streamed", test_upload_streamed);
    ADD("upload/media-type", test_upload_media_type);
    ADD("upload/length-required", test_upload_length_required);
    ADD("upload/refused-by-begin", test_upload_refused_by_begin);
    ADD("upload/refused-by-write", test_upload_refused_by_write);
    ADD("upload/client-leaves", test_upload_client_leaves);
    ADD("upload/server-stops", test_upload_server_stops);
    ADD("upload/needs-token", test_upload_needs_token);
    ADD("replies/errors", test_error_replies);
    ADD("conformance/raw-cases", test_conformance);
    ADD("conformance/keep-alive", test_conformance_keep_alive);
    ADD("conformance/head", test_head);
    ADD("conformance/error-echo", test_error_echo);
    g_test_add_func("/http/replies/free-unsent-stream", test_reply_free_stream);
    ADD("replies/stream-three-chunks", test_stream_three_chunks);
    ADD("replies/stream-client-leaves", test_stream_client_leaves);
    ADD("replies/stream-idle-client-leaves", test_stream_idle_client_leaves);
    ADD("replies/stream-idle-ended-by-free", test_stream_idle_paced_and_ended_by_free);
    g_test_add_func("/http/listen/tcp-refuses-non-loopback", test_tcp_refuses_non_loopback);
    ADD("listen/tcp-port-in-use", test_tcp_port_in_use);
    ADD("listen/tcp-ipv6", test_tcp_ipv6);
    ADD("listen/tcp-tls", test_tcp_tls);
    ADD("listen/unix-stale-socket", test_unix_stale_socket);
    ADD("listen/unix-live-socket-refused", test_unix_live_socket_refused);
    ADD("listen/unix-not-a-socket", test_unix_not_a_socket);
    ADD("metrics/request-counts", test_request_counts);
    ADD("metrics/concurrent", test_concurrent_requests);

    int status = g_test_run();
    curl_global_cleanup();
    return status;
}
