/* HTTP/1.1 message framing rules (RFC 9112) that turtled enforces itself:
 * what a request head must look like before anything reads its body.  One
 * validator, two feeders: the transport scans a connection's first request
 * from the raw bytes (before libmicrohttpd sees them, so that its HTML
 * answers and its double status line for a bad Content-Length never go out),
 * and the dispatcher checks every later request from libmicrohttpd's parse. */
#pragma once

#include <glib.h>

/* Sizes past which a request is refused before it is looked at. */
#define HTTP_MAX_URI          8192
#define HTTP_MAX_QUERY_ARGS   64
#define HTTP_MAX_HEADER_BYTES (16 * 1024)
#define HTTP_MAX_HEADERS      100
/* What the transport peeks at most: a request line and headers at their limits. */
#define HTTP_MAX_HEAD (HTTP_MAX_URI + HTTP_MAX_HEADER_BYTES + 256)

typedef struct {
    gsize target_length; /* the request target as sent, query included */
    guint target_args;   /* query parameters */
    gboolean http11;     /* HTTP/1.1 (Host required) */
    guint header_count;
    gsize header_bytes;
    gboolean has_host;
    gboolean has_content_length;
    gboolean content_length_bad; /* not digits, too large, or two that differ */
    char *content_length;        /* the first value */
    char *transfer_encoding;     /* all values, joined by ", " */
} HttpHead;

void http_head_init(HttpHead *head, const char *target, const char *version);
void http_head_add(HttpHead *head, const char *name, gsize name_len, const char *value,
                   gsize value_len);
void http_head_clear(HttpHead *head);
/* TRUE when @head may be served; else FALSE with a TD_ERROR (400, 414, 431
 * or 501) whose message says what is wrong. */
gboolean http_head_check(const HttpHead *head, GError **error);

typedef enum {
    HTTP_SCAN_INCOMPLETE, /* more bytes needed */
    HTTP_SCAN_OK,         /* a whole head that passes http_head_check */
    HTTP_SCAN_BAD,        /* refused: see the error */
} HttpScan;

/* Scans the first @len bytes a client sent (the start of a request). */
HttpScan http_head_scan(const char *buf, gsize len, GError **error);
