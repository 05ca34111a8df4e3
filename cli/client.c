#include "cli/client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "api/error_body.h"
#include "api/json.h"
#include "api/websocket.h"

#define CLIENT_DEFAULT_TIMEOUT_S 60
#define CLIENT_CONNECT_TIMEOUT_S 10
/* Far above any answer of the API: a runaway peer must not eat our memory. */
#define CLIENT_MAX_BODY (64 * 1024 * 1024)
/* An upload's answer comes once turtled has checked the image. */
#define CLIENT_UPLOAD_SILENCE_S 600

struct Client {
    CURL *curl;
    char *socket_path; /* NULL over TCP */
    char *base_url;    /* "http://localhost" on the socket, else the URL without trailing '/' */
    char *target;
    char *authorization; /* "Authorization: Bearer ..." or NULL */
    char *cacert;        /* the CA bundle for https://, or NULL for the system's */
    char errbuf[CURL_ERROR_SIZE];
};

typedef struct {
    Client *client;
    GString *body;
    gboolean too_large;
    /* streams only */
    const char *accept;
    ClientDataFunc on_data;
    gpointer user_data;
    gboolean streaming; /* a 200 answer: chunks go to on_data */
    gboolean checked;
    gboolean stopped; /* on_data asked to stop */
    char *etag;       /* the answer's ETag, when asked for */
} Exchange;

G_DEFINE_QUARK(turtlectl - client - error - quark, client_error)

Client *client_new(const char *socket_path, const char *url, const char *token, const char *cacert)
{
    g_return_val_if_fail((socket_path == NULL) != (url == NULL), NULL);

    Client *client = g_new0(Client, 1);
    client->curl = curl_easy_init();
    if (socket_path != NULL) {
        client->socket_path = g_strdup(socket_path);
        client->base_url = g_strdup("http://localhost");
        client->target = g_strdup(socket_path);
    } else {
        client->base_url = g_strdup(url);
        gsize len = strlen(client->base_url);
        while (len > 0 && client->base_url[len - 1] == '/')
            client->base_url[--len] = '\0';
        client->target = g_strdup(url);
    }
    if (token != NULL && *token != '\0')
        client->authorization = g_strdup_printf("Authorization: Bearer %s", token);
    client->cacert = g_strdup(cacert);
    return client;
}

void client_free(Client *client)
{
    if (client == NULL)
        return;
    if (client->curl != NULL)
        curl_easy_cleanup(client->curl);
    g_free(client->socket_path);
    g_free(client->base_url);
    g_free(client->target);
    if (client->authorization != NULL)
        memset(client->authorization, 0, strlen(client->authorization));
    g_free(client->authorization);
    g_free(client->cacert);
    g_free(client);
}

/* Far above any CA bundle: the system's is about 200 KiB. */
#define CLIENT_CACERT_MAX (16 * 1024 * 1024)

gboolean client_cacert_check(const char *file, GError **error)
{
    FILE *in = fopen(file, "re");
    if (in == NULL) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_LOCAL, "cannot read %s: %s", file,
                    g_strerror(errno));
        return FALSE;
    }
    g_autoptr(GString) contents = g_string_new(NULL);
    char buf[4096];
    size_t n;
    while (contents->len <= CLIENT_CACERT_MAX && (n = fread(buf, 1, sizeof(buf), in)) > 0)
        g_string_append_len(contents, buf, (gssize)n);
    gboolean failed = ferror(in);
    int saved = errno;
    fclose(in);
    if (failed) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_LOCAL, "cannot read %s: %s", file,
                    g_strerror(saved));
        return FALSE;
    }
    if (contents->len > CLIENT_CACERT_MAX ||
        strstr(contents->str, "-----BEGIN CERTIFICATE-----") == NULL) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_LOCAL,
                    "%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", file);
        return FALSE;
    }
    return TRUE;
}

const char *client_target(const Client *client)
{
    return client->target;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *user_data)
{
    Exchange *exchange = user_data;
    size_t len = size * nmemb;

    if (exchange->on_data != NULL && !exchange->checked) {
        long status = 0;
        const char *type = NULL;
        curl_easy_getinfo(exchange->client->curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(exchange->client->curl, CURLINFO_CONTENT_TYPE, &type);
        exchange->streaming =
            status == 200 && type != NULL &&
            g_ascii_strncasecmp(type, exchange->accept, strlen(exchange->accept)) == 0;
        exchange->checked = TRUE;
    }
    if (exchange->streaming) {
        if (!exchange->on_data(data, len, exchange->user_data)) {
            exchange->stopped = TRUE;
            return 0;
        }
        return len;
    }
    if (exchange->body->len + len > CLIENT_MAX_BODY) {
        exchange->too_large = TRUE;
        return 0;
    }
    g_string_append_len(exchange->body, data, (gssize)len);
    return len;
}

/* Keeps the ETag header; a new status line (after "100 Continue") forgets
 * the one before. */
static size_t on_header(char *data, size_t size, size_t nitems, void *user_data)
{
    Exchange *exchange = user_data;
    size_t len = size * nitems;
    g_autofree char *line = g_strndup(data, len);

    if (g_str_has_prefix(line, "HTTP/"))
        g_clear_pointer(&exchange->etag, g_free);
    else if (g_ascii_strncasecmp(line, "etag:", 5) == 0)
        exchange->etag = g_strdup(g_strstrip(line + 5));
    return len;
}

/* Where and how @curl connects: @url over the client's UNIX socket or
 * TCP, HTTP(S) only, the client's CA bundle alone when it has one, no
 * signals, errors into the client's buffer.  Every handle passes here. */
static void set_connection(Client *client, CURL *curl, const char *url)
{
    curl_easy_setopt(curl, CURLOPT_URL, url);
    if (client->socket_path != NULL)
        curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, client->socket_path);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, client->errbuf);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)CLIENT_CONNECT_TIMEOUT_S);
    if (client->cacert != NULL) {
        /* Instead of the system's store, not besides it: no CA path either. */
        curl_easy_setopt(curl, CURLOPT_CAINFO, client->cacert);
        curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
    }
}

static struct curl_slist *prepare(Client *client, Exchange *exchange, const char *method,
                                  const char *path, const char *accept, gboolean expect_continue)
{
    CURL *curl = client->curl;
    g_autofree char *url = g_strconcat(client->base_url, path, NULL);
    g_autofree char *accept_header = g_strdup_printf("Accept: %s", accept);
    struct curl_slist *headers = NULL;

    curl_easy_reset(curl);
    client->errbuf[0] = '\0';
    set_connection(client, curl, url);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "turtlectl/" TURTLES_VERSION);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, exchange);
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);

    headers = curl_slist_append(headers, accept_header);
    /* Small JSON bodies: waiting for "100 Continue" only costs a round trip.
     * Uploads wait for it, so that a refusal (404, quota) comes before the
     * bytes. */
    headers = curl_slist_append(headers, expect_continue ? "Expect: 100-continue" : "Expect:");
    if (client->authorization != NULL)
        headers = curl_slist_append(headers, client->authorization);
    return headers;
}

/* A certificate turtlectl does not trust, said with what to do about it. */
static void set_certificate_error(Client *client, CURLcode code, const char *reason, GError **error)
{
    if (code == CURLE_SSL_CACERT_BADFILE)
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_UNREACHABLE,
                    "cannot use the CA certificates of %s: %s", client->cacert, reason);
    else if (strstr(reason, "subject name") != NULL || strstr(reason, "does not match") != NULL)
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_UNREACHABLE,
                    "the certificate of %s is not for that host name (%s): connect with a name "
                    "it holds",
                    client->target, reason);
    else if (client->cacert != NULL)
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_UNREACHABLE,
                    "the certificate of %s is not trusted by %s (%s): give the CA that signed "
                    "it with --cacert FILE or the remote's cacert",
                    client->target, client->cacert, reason);
    else
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_UNREACHABLE,
                    "the certificate of %s is not trusted (%s): give its CA with --cacert FILE "
                    "or the remote's cacert",
                    client->target, reason);
}

/* Connection-phase failures say "cannot reach"; the errno of a failed
 * connect() ("No such file or directory" for a missing socket) beats
 * libcurl's generic text. */
/* What to do when connect() failed: start turtled or name another one,
 * or join those the socket admits. */
static const char *connect_hint(const Client *client, int os_errno)
{
    if (client->socket_path != NULL && os_errno == EACCES)
        return " (the socket admits root and turtled's admin group, turtles-admin by default: "
               "use sudo, or a token over --url)";
    if (client->socket_path != NULL && (os_errno == ENOENT || os_errno == ECONNREFUSED))
        return " (is turtled running? systemctl start turtled.socket; another turtled: "
               "--socket PATH, --url URL or --remote NAME)";
    if (os_errno == ECONNREFUSED)
        return " (is turtled listening there? its listen setting in turtled.conf)";
    return "";
}

static void set_transport_error(Client *client, CURLcode code, GError **error)
{
    long os_errno = 0;
    const char *reason = client->errbuf[0] != '\0' ? client->errbuf : curl_easy_strerror(code);

    curl_easy_getinfo(client->curl, CURLINFO_OS_ERRNO, &os_errno);
    switch (code) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        set_certificate_error(client, code, reason, error);
        break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        if (code == CURLE_COULDNT_CONNECT && os_errno != 0)
            reason = g_strerror((int)os_errno);
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_UNREACHABLE,
                    "cannot reach turtled at %s: %s%s", client->target, reason,
                    code == CURLE_COULDNT_CONNECT ? connect_hint(client, (int)os_errno) : "");
        break;
    default:
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_UNREACHABLE,
                    "no answer from turtled at %s: %s", client->target, reason);
        break;
    }
}

/* What a 401 adds to the API's message: the ways to give a token. */
#define CLIENT_TOKEN_HINT                                                                          \
    "give a valid token with --token TOKEN, $TURTLES_TOKEN or a remote's token (turtlectl "        \
    "remote add NAME --url URL --token-file FILE); the operator needs none on the UNIX socket as " \
    "root"

/* An error answer: the API's message as is (a 401's with how to give a
 * token), or what we can say about a body that is not the API's (a
 * proxy's page, libmicrohttpd's own 414). */
static void set_answer_error(Client *client, long status, const GString *body, GError **error)
{
    g_autoptr(json_object) value = api_json_parse(body->str, body->len, API_JSON_MAX_DEPTH, NULL);
    g_autofree char *message = NULL;

    if (value != NULL && api_error_body_from_json(value, NULL, NULL, &message, NULL)) {
        if (status == 401) {
            g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_API, "%s: " CLIENT_TOKEN_HINT, message);
            return;
        }
        g_set_error_literal(error, CLIENT_ERROR,
                            status == 412 ? CLIENT_ERROR_CHANGED : CLIENT_ERROR_API, message);
        return;
    }
    g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_PROTOCOL,
                "turtled at %s answered HTTP %ld without an error body", client->target, status);
}

/* The JSON answer of an exchange that ended with @code. */
static gboolean finish_json(Client *client, CURLcode code, const Exchange *exchange,
                            json_object **body, GError **error)
{
    const GString *answer = exchange->body;
    long status = 0;

    if (exchange->too_large) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_PROTOCOL,
                    "turtled at %s sent an answer larger than %d MiB", client->target,
                    CLIENT_MAX_BODY / (1024 * 1024));
        return FALSE;
    }
    curl_easy_getinfo(client->curl, CURLINFO_RESPONSE_CODE, &status);
    /* A server that refuses an upload may answer and close before reading
     * it all: its answer says more than the failed send. */
    if ((code == CURLE_SEND_ERROR || code == CURLE_RECV_ERROR) && status >= 400 &&
        answer->len > 0) {
        set_answer_error(client, status, answer, error);
        return FALSE;
    }
    if (code != CURLE_OK) {
        set_transport_error(client, code, error);
        return FALSE;
    }
    if (status < 200 || status > 299) {
        set_answer_error(client, status, answer, error);
        return FALSE;
    }

    *body = NULL;
    if (answer->len == 0)
        return TRUE;
    g_autoptr(GError) local = NULL;
    g_autoptr(json_object) value =
        api_json_parse(answer->str, answer->len, API_JSON_MAX_DEPTH, &local);
    if (value == NULL || !json_object_is_type(value, json_type_object)) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_PROTOCOL,
                    "turtled at %s sent an answer that is not a JSON object%s%s", client->target,
                    local != NULL ? ": " : "", local != NULL ? local->message : "");
        return FALSE;
    }
    *body = g_steal_pointer(&value);
    return TRUE;
}

/* client_request and client_request_tagged. */
static gboolean request_json(Client *client, const char *method, const char *path,
                             json_object *request, guint timeout_s, const char *if_match,
                             char **etag, json_object **body, GError **error)
{
    g_autoptr(GString) answer = g_string_new(NULL);
    Exchange exchange = {.client = client, .body = answer};
    g_autofree char *payload = NULL;
    g_autofree char *if_match_header = NULL;

    struct curl_slist *headers =
        prepare(client, &exchange, method, path, "application/json", FALSE);
    if (if_match != NULL) {
        if_match_header = g_strdup_printf("If-Match: %s", if_match);
        headers = curl_slist_append(headers, if_match_header);
    }
    if (etag != NULL) {
        curl_easy_setopt(client->curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(client->curl, CURLOPT_HEADERDATA, &exchange);
    }
    if (request != NULL) {
        payload = api_json_to_string(request);
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(client->curl, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(client->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload));
    }
    curl_easy_setopt(client->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(client->curl, CURLOPT_TIMEOUT,
                     (long)(timeout_s > 0 ? timeout_s : CLIENT_DEFAULT_TIMEOUT_S));
    CURLcode code = curl_easy_perform(client->curl);
    curl_slist_free_all(headers);
    gboolean ok = finish_json(client, code, &exchange, body, error);
    if (ok && etag != NULL)
        *etag = g_steal_pointer(&exchange.etag);
    g_free(exchange.etag);
    return ok;
}

gboolean client_request(Client *client, const char *method, const char *path, json_object *request,
                        guint timeout_s, json_object **body, GError **error)
{
    return request_json(client, method, path, request, timeout_s, NULL, NULL, body, error);
}

gboolean client_get_within(Client *client, const char *path, guint timeout_ms, json_object **body,
                           GError **error)
{
    g_autoptr(GString) answer = g_string_new(NULL);
    Exchange exchange = {.client = client, .body = answer};

    struct curl_slist *headers = prepare(client, &exchange, "GET", path, "application/json", FALSE);
    curl_easy_setopt(client->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(client->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(client->curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    CURLcode code = curl_easy_perform(client->curl);
    curl_slist_free_all(headers);
    gboolean ok = finish_json(client, code, &exchange, body, error);
    g_free(exchange.etag);
    return ok;
}

gboolean client_request_tagged(Client *client, const char *method, const char *path,
                               json_object *request, const char *if_match, char **etag,
                               json_object **body, GError **error)
{
    return request_json(client, method, path, request, 0, if_match, etag, body, error);
}

typedef struct {
    int fd;
    int read_errno; /* of a failed read(), else 0 */
    ClientProgressFunc on_progress;
    gpointer user_data;
} Upload;

static size_t on_read(char *buffer, size_t size, size_t nitems, void *user_data)
{
    Upload *upload = user_data;
    for (;;) {
        ssize_t n = read(upload->fd, buffer, size * nitems);
        if (n >= 0)
            return (size_t)n;
        if (errno != EINTR) {
            upload->read_errno = errno;
            return CURL_READFUNC_ABORT;
        }
    }
}

static int on_xferinfo(void *user_data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    Upload *upload = user_data;
    (void)dltotal;
    (void)dlnow;
    if (upload->on_progress != NULL)
        upload->on_progress((gint64)ulnow, (gint64)ultotal, upload->user_data);
    return 0;
}

gboolean client_upload(Client *client, const char *path, int fd, gint64 size,
                       ClientProgressFunc on_progress, gpointer user_data, json_object **body,
                       GError **error)
{
    g_autoptr(GString) answer = g_string_new(NULL);
    Exchange exchange = {.client = client, .body = answer};
    Upload upload = {.fd = fd, .on_progress = on_progress, .user_data = user_data};

    struct curl_slist *headers = prepare(client, &exchange, "PUT", path, "application/json", TRUE);
    headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
    curl_easy_setopt(client->curl, CURLOPT_HTTPHEADER, headers);
    /* CURLOPT_UPLOAD is a PUT with a Content-Length from INFILESIZE: the
     * file streams through on_read, never whole in memory. */
    curl_easy_setopt(client->curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(client->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
    curl_easy_setopt(client->curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(client->curl, CURLOPT_READDATA, &upload);
    curl_easy_setopt(client->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(client->curl, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
    curl_easy_setopt(client->curl, CURLOPT_XFERINFODATA, &upload);
    /* No time limit for the whole (images are big), only for silence:
     * turtled checks the image once it has it all. */
    curl_easy_setopt(client->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(client->curl, CURLOPT_LOW_SPEED_TIME, (long)CLIENT_UPLOAD_SILENCE_S);
    CURLcode code = curl_easy_perform(client->curl);
    curl_slist_free_all(headers);

    if (upload.read_errno != 0) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_LOCAL, "cannot read the upload: %s",
                    g_strerror(upload.read_errno));
        return FALSE;
    }
    return finish_json(client, code, &exchange, body, error);
}

gboolean client_stream(Client *client, const char *path, const char *accept, guint silence_s,
                       ClientDataFunc on_data, gpointer user_data, GError **error)
{
    g_autoptr(GString) answer = g_string_new(NULL);
    Exchange exchange = {
        .client = client,
        .body = answer,
        .accept = accept,
        .on_data = on_data,
        .user_data = user_data,
    };
    long status = 0;

    struct curl_slist *headers = prepare(client, &exchange, "GET", path, accept, FALSE);
    curl_easy_setopt(client->curl, CURLOPT_HTTPHEADER, headers);
    if (silence_s > 0) {
        curl_easy_setopt(client->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(client->curl, CURLOPT_LOW_SPEED_TIME, (long)silence_s);
    }
    CURLcode code = curl_easy_perform(client->curl);
    curl_slist_free_all(headers);

    if (exchange.stopped)
        return TRUE;
    if (exchange.too_large) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_PROTOCOL,
                    "turtled at %s sent an answer larger than %d MiB", client->target,
                    CLIENT_MAX_BODY / (1024 * 1024));
        return FALSE;
    }
    if (code == CURLE_OPERATION_TIMEDOUT && exchange.streaming) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_UNREACHABLE,
                    "the stream from turtled at %s was silent for %u s", client->target, silence_s);
        return FALSE;
    }
    if (code != CURLE_OK) {
        set_transport_error(client, code, error);
        return FALSE;
    }
    curl_easy_getinfo(client->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        set_answer_error(client, status, answer, error);
        return FALSE;
    }
    if (!exchange.streaming && exchange.checked) {
        const char *type = NULL;
        curl_easy_getinfo(client->curl, CURLINFO_CONTENT_TYPE, &type);
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_PROTOCOL,
                    "turtled at %s answered with %s, not %s", client->target,
                    type != NULL ? type : "no Content-Type", accept);
        return FALSE;
    }
    return TRUE;
}

/* ---- WebSocket --------------------------------------------------------------- */

#define HANDSHAKE_HEAD_MAX  (16 * 1024)
#define HANDSHAKE_TIMEOUT_S 30

struct ClientSocket {
    CURL *curl; /* its own handle: the connection is no HTTP connection any more */
    int fd;
    char *target;
    GBytes *early;
};

void client_socket_free(ClientSocket *socket)
{
    if (socket == NULL)
        return;
    if (socket->curl != NULL)
        curl_easy_cleanup(socket->curl);
    g_clear_pointer(&socket->early, g_bytes_unref);
    g_free(socket->target);
    g_free(socket);
}

int client_socket_fd(const ClientSocket *socket)
{
    return socket->fd;
}

GBytes *client_socket_take_early(ClientSocket *socket)
{
    return g_steal_pointer(&socket->early);
}

/* Waits up to @timeout_ms for @fd to be readable (@out FALSE) or writable. */
static gboolean wait_fd(int fd, gboolean out, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = out ? POLLOUT : POLLIN};
    int n;
    do
        n = poll(&pfd, 1, timeout_ms);
    while (n < 0 && errno == EINTR);
    return n > 0;
}

gboolean client_socket_send(ClientSocket *socket, const void *data, gsize len, GError **error)
{
    const char *p = data;
    while (len > 0) {
        size_t sent = 0;
        CURLcode code = curl_easy_send(socket->curl, p, len, &sent);
        if (code == CURLE_AGAIN) {
            if (!wait_fd(socket->fd, TRUE, HANDSHAKE_TIMEOUT_S * 1000)) {
                g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_UNREACHABLE,
                            "turtled at %s takes no more bytes", socket->target);
                return FALSE;
            }
            continue;
        }
        if (code != CURLE_OK) {
            g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_UNREACHABLE,
                        "cannot send to turtled at %s: %s", socket->target,
                        curl_easy_strerror(code));
            return FALSE;
        }
        p += sent;
        len -= sent;
    }
    return TRUE;
}

gssize client_socket_recv(ClientSocket *socket, void *buf, gsize len, GError **error)
{
    size_t got = 0;
    CURLcode code = curl_easy_recv(socket->curl, buf, len, &got);
    if (code == CURLE_AGAIN)
        return -2;
    if (code != CURLE_OK) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_UNREACHABLE,
                    "cannot read from turtled at %s: %s", socket->target, curl_easy_strerror(code));
        return -1;
    }
    return (gssize)got;
}

/* Reads until @answer holds a whole head (and, with @body_len set, that many
 * bytes after it, or the connection's end). */
static gboolean read_until(ClientSocket *socket, GString *answer, gsize want, GError **error)
{
    gint64 deadline = g_get_monotonic_time() + HANDSHAKE_TIMEOUT_S * G_USEC_PER_SEC;
    char buf[4096];
    while (answer->len < want || (want == 0 && strstr(answer->str, "\r\n\r\n") == NULL)) {
        if (answer->len > HANDSHAKE_HEAD_MAX + CLIENT_MAX_BODY / 64) {
            g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_PROTOCOL,
                        "turtled at %s sent an oversized answer to the handshake", socket->target);
            return FALSE;
        }
        gssize n = client_socket_recv(socket, buf, sizeof(buf), error);
        if (n == 0)
            return want > 0; /* a body may end with the connection */
        if (n == -1)
            return FALSE;
        if (n == -2) {
            gint64 left = (deadline - g_get_monotonic_time()) / 1000;
            if (left <= 0 || !wait_fd(socket->fd, FALSE, (int)left)) {
                g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_UNREACHABLE,
                            "turtled at %s did not answer the handshake", socket->target);
                return FALSE;
            }
            continue;
        }
        g_string_append_len(answer, buf, n);
    }
    return TRUE;
}

/* The value of header @name in @head (lines after the status line), or NULL. */
static char *head_header(char **lines, const char *name)
{
    gsize len = strlen(name);
    for (guint i = 1; lines[i] != NULL; i++)
        if (g_ascii_strncasecmp(lines[i], name, len) == 0 && lines[i][len] == ':')
            return g_strstrip(g_strdup(lines[i] + len + 1));
    return NULL;
}

ClientSocket *client_websocket(Client *client, const char *path, GError **error)
{
    g_autofree char *url = g_strconcat(client->base_url, path, NULL);
    g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_ENCODED, NULL);
    if (uri == NULL) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_UNREACHABLE,
                    "cannot reach turtled at %s: "
                    "not a URL",
                    client->target);
        return NULL;
    }
    g_autoptr(ClientSocket) socket = g_new0(ClientSocket, 1);
    socket->target = g_strdup(client->target);
    socket->fd = -1;
    socket->curl = curl_easy_init();
    CURL *curl = socket->curl;
    set_connection(client, curl, url);
    curl_easy_setopt(curl, CURLOPT_CONNECT_ONLY, 1L);
    client->errbuf[0] = '\0';
    CURLcode code = curl_easy_perform(curl);
    if (code != CURLE_OK) {
        CURL *saved = client->curl;
        client->curl = curl; /* set_transport_error reads the failed handle */
        set_transport_error(client, code, error);
        client->curl = saved;
        return NULL;
    }
    curl_socket_t fd = CURL_SOCKET_BAD;
    curl_easy_getinfo(curl, CURLINFO_ACTIVESOCKET, &fd);
    socket->fd = (int)fd;

    g_autofree char *key = api_ws_key_new();
    const char *host = g_uri_get_host(uri);
    int port = g_uri_get_port(uri);
    g_autofree char *host_header = NULL;
    if (host == NULL || client->socket_path != NULL)
        host_header = g_strdup("localhost");
    else if (port > 0)
        host_header = g_strdup_printf(strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    else
        host_header = g_strdup_printf(strchr(host, ':') ? "[%s]" : "%s", host);
    const char *query = g_uri_get_query(uri);
    g_autoptr(GString) request = g_string_new(NULL);
    g_string_append_printf(
        request,
        "GET %s%s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: turtlectl/" TURTLES_VERSION
        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n",
        g_uri_get_path(uri), query ? "?" : "", query ? query : "", host_header, key);
    if (client->authorization != NULL)
        g_string_append_printf(request, "%s\r\n", client->authorization);
    g_string_append(request, "\r\n");
    gboolean sent = client_socket_send(socket, request->str, request->len, error);
    explicit_bzero(request->str, request->len);
    if (!sent)
        return NULL;

    g_autoptr(GString) answer = g_string_new(NULL);
    if (!read_until(socket, answer, 0, error))
        return NULL;
    gsize head_len = (gsize)(strstr(answer->str, "\r\n\r\n") - answer->str) + 4;
    g_autofree char *head = g_strndup(answer->str, head_len - 4);
    g_auto(GStrv) lines = g_strsplit(head, "\r\n", -1);
    guint status = 0;
    if (sscanf(lines[0], "HTTP/1.%*d %u", &status) != 1) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_PROTOCOL,
                    "turtled at %s answered the handshake with '%s'", client->target, lines[0]);
        return NULL;
    }
    if (status != 101) {
        g_autofree char *length_text = head_header(lines, "Content-Length");
        guint64 length = 0;
        if (length_text != NULL)
            g_ascii_string_to_unsigned(length_text, 10, 0, CLIENT_MAX_BODY / 64, &length, NULL);
        if (length > 0 && !read_until(socket, answer, head_len + length, error))
            return NULL;
        g_autoptr(GString) body =
            g_string_new_len(answer->str + head_len, (gssize)(answer->len - head_len));
        set_answer_error(client, status, body, error);
        return NULL;
    }
    g_autofree char *accept = head_header(lines, "Sec-WebSocket-Accept");
    g_autofree char *expected = api_ws_accept(key, NULL);
    if (g_strcmp0(accept, expected) != 0) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_PROTOCOL,
                    "turtled at %s answered the handshake with a wrong Sec-WebSocket-Accept",
                    client->target);
        return NULL;
    }
    if (answer->len > head_len)
        socket->early = g_bytes_new(answer->str + head_len, answer->len - head_len);
    return g_steal_pointer(&socket);
}
