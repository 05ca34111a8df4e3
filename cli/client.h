/* turtled's REST API over libcurl: the UNIX socket or an http(s) URL, with a
 * bearer token when one is given.  Error answers become GErrors that carry
 * the API's own message. */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#define CLIENT_ERROR (client_error_quark())

typedef enum {
    CLIENT_ERROR_UNREACHABLE, /* "cannot reach turtled at TARGET: REASON" */
    CLIENT_ERROR_API,         /* an error answer: the message is the API's, as is */
    CLIENT_ERROR_PROTOCOL,    /* an answer that breaks the contract */
    CLIENT_ERROR_LOCAL,       /* our side failed: reading the file to upload */
    CLIENT_ERROR_CHANGED,     /* 412: If-Match named a version that is no longer current */
} ClientErrorCode;

GQuark client_error_quark(void);

typedef struct Client Client;

/* Exactly one of @socket_path and @url (http:// or https://); @token may be
 * NULL.  @cacert (a PEM file; NULL: the system's store) is the only CA
 * bundle trusted for https://, by every handle the client makes. */
Client *client_new(const char *socket_path, const char *url, const char *token, const char *cacert);
void client_free(Client *client);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Client, client_free)

/* TRUE when @file can be a --cacert: readable, with a PEM certificate in
 * it; else CLIENT_ERROR_LOCAL saying what is wrong (naming the file). */
gboolean client_cacert_check(const char *file, GError **error);

/* The socket path or the URL, for messages. */
const char *client_target(const Client *client);

/* One exchange: @request (may be NULL) goes as a JSON body.  A 2xx answer
 * gives TRUE and *body, the parsed JSON object (NULL when the answer is
 * empty).  @timeout_s bounds the exchange (0: a default for quick calls). */
gboolean client_request(Client *client, const char *method, const char *path, json_object *request,
                        guint timeout_s, json_object **body, GError **error);
/* A GET that gives up after @timeout_ms in all (connecting included), for
 * shell completion, which must never keep the shell waiting on a dead or
 * hung turtled.  The answer is as client_request's. */
gboolean client_get_within(Client *client, const char *path, guint timeout_ms, json_object **body,
                           GError **error);
/* The same for a read-modify-write: @if_match (may be NULL) goes as
 * If-Match, and *@etag (may be NULL) gets the answer's ETag (NULL without
 * one).  An answer 412 is CLIENT_ERROR_CHANGED. */
gboolean client_request_tagged(Client *client, const char *method, const char *path,
                               json_object *request, const char *if_match, char **etag,
                               json_object **body, GError **error);

/* PUT @size bytes read from @fd to @path as application/octet-stream,
 * streamed (never whole in memory), with "Expect: 100-continue" so that a
 * refusal comes before the bytes.  @on_progress (may be NULL) hears of the
 * bytes sent; the answer is as client_request's.  No time limit but for
 * long silence. */
typedef void (*ClientProgressFunc)(gint64 done, gint64 total, gpointer user_data);
gboolean client_upload(Client *client, const char *path, int fd, gint64 size,
                       ClientProgressFunc on_progress, gpointer user_data, json_object **body,
                       GError **error);

/* A stream (GET, no time limit): @on_data gets the body of a 200 answer
 * whose type starts with @accept as it arrives, and returns FALSE to stop
 * (client_stream then returns TRUE).  @silence_s seconds without a byte end
 * it with an error (0: wait for ever).  Returns TRUE when the server ends
 * the stream. */
typedef gboolean (*ClientDataFunc)(const char *data, gsize len, gpointer user_data);
gboolean client_stream(Client *client, const char *path, const char *accept, guint silence_s,
                       ClientDataFunc on_data, gpointer user_data, GError **error);

/* A WebSocket (RFC 6455) on @path: the opening handshake on a connection of
 * the client's own (CURLOPT_CONNECT_ONLY: the UNIX socket, http or https;
 * Debian 12's libcurl has no WebSocket support of its own), then raw bytes
 * both ways through curl_easy_send/_recv, framed by api/websocket.h.  An
 * answer other than 101 is an error with the API's message. */
typedef struct ClientSocket ClientSocket;
ClientSocket *client_websocket(Client *client, const char *path, GError **error);
/* The descriptor to poll for reading. */
int client_socket_fd(const ClientSocket *socket);
/* Bytes that arrived with the 101's head (frames already), taken once. */
GBytes *client_socket_take_early(ClientSocket *socket);
/* Sends all of @len bytes (waiting for the socket as needed). */
gboolean client_socket_send(ClientSocket *socket, const void *data, gsize len, GError **error);
/* Up to @len bytes: the count, 0 at the end of the connection, -2 when
 * nothing is there now, -1 with an error. */
gssize client_socket_recv(ClientSocket *socket, void *buf, gsize len, GError **error);
void client_socket_free(ClientSocket *socket);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ClientSocket, client_socket_free)
