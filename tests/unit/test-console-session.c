/* daemon/console_session: the WebSocket handshake checks (RFC 6455 4.2.1),
 * and opening on a backend without console streams (libvirt's test
 * driver): a clear 501 that leaves no session claimed and frees the
 * caller's data.  The sessions themselves (101, I/O, takeover, a client
 * that vanishes) run against a real L1 in tests/system/console-interactive.t. */
#include "daemon/console_session.h"
#include "daemon/http-private.h"
#include "hvcore/conn.h"

#include <string.h>

static HttpReply *check(const char *const *pairs, char **accept)
{
    g_autoptr(GHashTable) headers = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; pairs[i] != NULL; i += 2)
        g_hash_table_insert(headers, (gpointer)pairs[i], (gpointer)pairs[i + 1]);
    HttpCaller caller = {.role = HTTP_CALLER_TENANT};
    HttpRequest request = {.method = "GET", .headers = headers, .caller = &caller};
    return console_session_check_handshake(&request, accept);
}

static char *error_message(HttpReply *reply)
{
    gsize len = 0;
    const char *body = g_bytes_get_data(reply->body, &len);
    return g_strndup(body, len);
}

static void test_handshake(void)
{
    g_autofree char *accept = NULL;
    const char *const good[] = {"upgrade",
                                "websocket",
                                "connection",
                                "keep-alive, Upgrade",
                                "sec-websocket-version",
                                "13",
                                "sec-websocket-key",
                                "dGhlIHNhbXBsZSBub25jZQ==",
                                NULL};
    g_assert_null(check(good, &accept));
    g_assert_cmpstr(accept, ==, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    static const struct {
        const char *name, *value, *message;
    } bad[] = {
        {"upgrade", "h2c", "Upgrade: only 'websocket'"},
        {"connection", "keep-alive", "Connection: must list 'Upgrade'"},
        {"sec-websocket-version", "8", "Sec-WebSocket-Version: must be 13"},
        {"sec-websocket-key", "c2hvcnQ=", "Sec-WebSocket-Key: must be the base64"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        const char *pairs[G_N_ELEMENTS(good)];
        memcpy(pairs, good, sizeof(good));
        for (guint j = 0; pairs[j] != NULL; j += 2)
            if (strcmp(pairs[j], bad[i].name) == 0)
                pairs[j + 1] = bad[i].value;
        g_autofree char *none = NULL;
        g_autoptr(HttpReply) reply = check(pairs, &none);
        g_assert_nonnull(reply);
        g_assert_cmpuint(reply->status, ==, 400);
        g_autofree char *body = error_message(reply);
        g_assert_nonnull(strstr(body, bad[i].message));
        g_assert_null(none);
    }
    /* No key at all. */
    const char *const keyless[] = {
        "upgrade", "websocket", "connection", "Upgrade", "sec-websocket-version", "13", NULL};
    g_autofree char *none = NULL;
    g_autoptr(HttpReply) reply = check(keyless, &none);
    g_assert_cmpuint(reply->status, ==, 400);
    g_autofree char *body = error_message(reply);
    g_assert_nonnull(strstr(body, "Sec-WebSocket-Key: is required"));
}

static gboolean always(gpointer data)
{
    (void)data;
    return TRUE;
}

static void count_free(gpointer data)
{
    (*(int *)data)++;
}

static void test_unsupported_backend(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(HvConn) conn = hv_conn_open("test:///default", &error);
    g_assert_no_error(error);
    ConsoleSessions *sessions = console_sessions_new();
    int freed = 0;
    ConsoleSessionSpec spec = {
        .stack_id = "11111111-1111-4111-8111-111111111111",
        .stack_name = "web",
        .domain = "test", /* the test driver's running domain */
        .log_path = "/nonexistent/console.log",
        .accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        .still_allowed = always,
        .data = &freed,
        .free_data = count_free,
    };
    g_autoptr(HttpReply) reply = console_session_open(sessions, conn, &spec);
    g_assert_cmpuint(reply->status, ==, 501);
    g_autofree char *body = error_message(reply);
    g_assert_nonnull(strstr(body, "no interactive console"));
    g_assert_cmpint(freed, ==, 1);
    g_assert_cmpuint(console_sessions_count(sessions), ==, 0);

    /* A missing domain: the stack is not running here. */
    spec.domain = "nosuch";
    g_autoptr(HttpReply) missing = console_session_open(sessions, conn, &spec);
    g_assert_cmpuint(missing->status, ==, 409);
    g_assert_cmpint(freed, ==, 2);
    g_assert_cmpuint(console_sessions_count(sessions), ==, 0);
    console_sessions_free(sessions);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/console-session/handshake", test_handshake);
    g_test_add_func("/console-session/unsupported-backend", test_unsupported_backend);
    return g_test_run();
}
