/* daemon/http_framing.c: the request-head rules, from raw bytes and field by field. */
#include "daemon/error.h"
#include "daemon/http_framing.h"

#include <string.h>

static HttpScan scan(const char *text, GError **error)
{
    return http_head_scan(text, strlen(text), error);
}

static void test_scan_ok_and_incomplete(void)
{
    static const char *const complete[] = {
        "GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1 HTTP/1.0\r\n\r\n",
        "\r\nGET /v1?a=1&b=2 HTTP/1.1\r\nhost: x\r\n\r\n",
        "POST /v1/stacks HTTP/1.1\nHost: x\nContent-Length: 2\n\n{}",
        "PUT /v1/images/a/data HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n",
    };
    static const char *const partial[] = {
        "",
        "GET /v1 HTT",
        "GET /v1 HTTP/1.1\r\n",
        "GET /v1 HTTP/1.1\r\nHost: x\r\n",
        /* Host may still come: not refused yet. */
        "GET /v1 HTTP/1.1\r\nAccept: */*\r\n",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(complete); i++) {
        g_autoptr(GError) error = NULL;
        g_assert_cmpint(scan(complete[i], &error), ==, HTTP_SCAN_OK);
        g_assert_no_error(error);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(partial); i++) {
        g_autoptr(GError) error = NULL;
        g_assert_cmpint(scan(partial[i], &error), ==, HTTP_SCAN_INCOMPLETE);
        g_assert_no_error(error);
    }
}

static void test_scan_bad(void)
{
    g_autofree char *filler = g_strnfill(HTTP_MAX_HEADER_BYTES, 'f');
    g_autofree char *big_header = g_strdup_printf("GET / HTTP/1.1\r\nX: %s\r\n", filler);
    g_autofree char *path = g_strnfill(HTTP_MAX_URI + 100, 'p');
    g_autofree char *long_line = g_strdup_printf("GET /%s", path); /* no line end yet */
    g_autoptr(GString) args = g_string_new("GET /v1?a=0");
    for (int i = 1; i <= HTTP_MAX_QUERY_ARGS; i++)
        g_string_append_printf(args, "&a%d=1", i);
    g_string_append(args, " HTTP/1.1\r\n");
    g_autoptr(GString) fields = g_string_new("GET / HTTP/1.1\r\n");
    for (int i = 0; i <= HTTP_MAX_HEADERS; i++)
        g_string_append_printf(fields, "X-%d: 1\r\n", i);

    const struct {
        const char *text;
        int code;
    } cases[] = {
        {"GET /v1 HTTP/1.1\r\n\r\n", TD_ERROR_BAD_REQUEST},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", TD_ERROR_BAD_REQUEST},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", TD_ERROR_BAD_REQUEST},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
         TD_ERROR_BAD_REQUEST},
        /* Already wrong before the head is complete. */
        {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n", TD_ERROR_BAD_REQUEST},
        {"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n",
         TD_ERROR_BAD_REQUEST},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
         TD_ERROR_NOT_IMPLEMENTED},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
         "\r\n",
         TD_ERROR_NOT_IMPLEMENTED},
        {"GARBAGE\r\n\r\n", TD_ERROR_BAD_REQUEST},
        {"GET /v1 HTTP/2.0\r\nHost: x\r\n\r\n", TD_ERROR_HTTP_VERSION},
        {"GET /v1 HTTP/1.1\x1b[0m\r\nHost: x\r\n\r\n", TD_ERROR_BAD_REQUEST},
        {"GET /v1 HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", TD_ERROR_BAD_REQUEST},
        {"GET /v1 HTTP/1.1\r\nHost : x\r\n\r\n", TD_ERROR_BAD_REQUEST},
        {"GET /v1 HTTP/1.1\r\nHost: x\ry\r\n\r\n", TD_ERROR_BAD_REQUEST},
        {"GET /v1 HTTP/1.1\r\nno colon here\r\n\r\n", TD_ERROR_BAD_REQUEST},
        {long_line, TD_ERROR_URI_TOO_LONG},
        {args->str, TD_ERROR_URI_TOO_LONG},
        {big_header, TD_ERROR_HEADERS_TOO_LARGE},
        {fields->str, TD_ERROR_HEADERS_TOO_LARGE},
    };
    /* A NUL in the request line (found by fuzz-http). */
    static const char nul[] = "GET\0\0 /v1 HTTP/1.1\r\nHost: x\r\n\r\n";
    g_autoptr(GError) nul_error = NULL;
    g_assert_cmpint(http_head_scan(nul, sizeof(nul) - 1, &nul_error), ==, HTTP_SCAN_BAD);
    g_assert_error(nul_error, TD_ERROR, TD_ERROR_BAD_REQUEST);

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_test_message("case %zu", i);
        g_assert_cmpint(scan(cases[i].text, &error), ==, HTTP_SCAN_BAD);
        g_assert_error(error, TD_ERROR, cases[i].code);
    }
}

/* Same rules field by field (the dispatcher's feeder). */
static void test_fields(void)
{
    HttpHead head;
    g_autoptr(GError) error = NULL;

    http_head_init(&head, "/v1?x=1", "HTTP/1.1");
    http_head_add(&head, "Host", 4, "x", 1);
    http_head_add(&head, "Content-Length", 14, " 12 ", 4);
    http_head_add(&head, "content-length", 14, "12", 2); /* the same again is fine */
    g_assert_true(http_head_check(&head, &error));
    g_assert_cmpstr(head.content_length, ==, "12");
    g_assert_cmpuint(head.target_args, ==, 1);
    http_head_add(&head, "TRANSFER-ENCODING", 17, "chunked", 7);
    g_assert_false(http_head_check(&head, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST);
    http_head_clear(&head);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/http-framing/scan-ok-and-incomplete", test_scan_ok_and_incomplete);
    g_test_add_func("/http-framing/scan-bad", test_scan_bad);
    g_test_add_func("/http-framing/fields", test_fields);
    return g_test_run();
}
