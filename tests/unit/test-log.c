/* daemon/log: the stderr line with its fields, the thread's context (set on
 * one thread, never seen on another), and the installed writer end to end
 * (stderr captured in a file): unstructured g_message lines too. */
#include "daemon/log.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static char *format(const GLogField *fields, gsize n)
{
    return log_format_line(G_LOG_LEVEL_MESSAGE, fields, n, FALSE);
}

static void test_format_fields(void)
{
    const GLogField fields[] = {
        {"MESSAGE", "stack acme/web created", -1},
        {"PRIORITY", "5", -1},
        {"CODE_FILE", "stacks.c", -1},
        {"MESSAGE_ID", LOG_MESSAGE_STACK_CREATED, -1},
        {LOG_FIELD_TENANT, "acme", -1},
        {LOG_FIELD_STACK, "web", -1},
        {LOG_FIELD_REQUEST_ID, "6f1c1d1e-0000-4000-8000-000000000001", -1},
    };
    g_autofree char *line = format(fields, G_N_ELEMENTS(fields));
    g_assert_nonnull(strstr(line, "stack acme/web created [message_id=" LOG_MESSAGE_STACK_CREATED
                                  " tenant=acme stack=web "
                                  "request_id=6f1c1d1e-0000-4000-8000-000000000001]"));
    /* GLib's own fields stay GLib's business. */
    g_assert_null(strstr(line, "stacks.c"));
    g_assert_null(strstr(line, "priority"));
}

static void test_format_plain(void)
{
    const GLogField fields[] = {{"MESSAGE", "reconciled with libvirt", -1}};
    g_autofree char *line = format(fields, G_N_ELEMENTS(fields));
    g_assert_true(g_str_has_suffix(line, "reconciled with libvirt"));
    g_assert_null(strchr(line, '['));
}

static void test_format_quoting(void)
{
    const GLogField fields[] = {
        {"MESSAGE", "m", -1},
        {"TURTLES_AUDIT_PATH", "/v1/a b]\"", -1},
        {"TURTLES_EMPTY", "", -1},
        {"TURTLES_BINARY", "\x01\x02", 2}, /* not a string field: left out */
    };
    g_autofree char *line = format(fields, G_N_ELEMENTS(fields));
    g_assert_nonnull(strstr(line, " [audit_path=\"/v1/a b]\\\"\" empty=\"\"]"));
    g_assert_null(strstr(line, "binary"));
}

static gpointer other_thread(gpointer data)
{
    (void)data;
    return (gpointer)log_context_request_id();
}

static void test_context(void)
{
    g_assert_null(log_context_request_id());
    log_context_set("req-1", "op-1");
    g_assert_cmpstr(log_context_request_id(), ==, "req-1");
    /* Another thread has a context of its own: none. */
    GThread *thread = g_thread_new("other", other_thread, NULL);
    g_assert_null(g_thread_join(thread));
    log_context_set("req-2", NULL);
    g_assert_cmpstr(log_context_request_id(), ==, "req-2");
    log_context_set(NULL, NULL);
    g_assert_null(log_context_request_id());
}

/* Runs @log with stderr in a file; returns what was written. */
static char *capture(void (*log)(void))
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = NULL;
    int fd = g_file_open_tmp("test-log-XXXXXX", &path, &error);
    g_assert_no_error(error);
    int saved = dup(2);
    g_assert_cmpint(dup2(fd, 2), ==, 2);
    log();
    g_assert_cmpint(dup2(saved, 2), ==, 2);
    close(saved);
    close(fd);
    char *text = NULL;
    g_assert_true(g_file_get_contents(path, &text, NULL, &error));
    g_unlink(path);
    return text;
}

static void log_lines(void)
{
    g_message("an unstructured line");
    log_context_set("req-9", "op-9");
    g_message("inside an operation");
    LogFields fields = {
        .message_id = LOG_MESSAGE_TENANT_DELETED, .tenant = "acme", .request_id = "req-own"};
    log_structured(G_LOG_LEVEL_MESSAGE, &fields, "tenant %s deleted", "acme");
    log_context_set(NULL, NULL);
    g_debug("dropped unless G_MESSAGES_DEBUG says so");
}

static void test_writer(void)
{
    g_autofree char *text = capture(log_lines);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    g_assert_cmpuint(g_strv_length(lines), ==, 4); /* three lines and the empty tail */
    g_assert_true(g_str_has_suffix(lines[0], "an unstructured line"));
    /* The thread's context names the operation and its request. */
    g_assert_true(
        g_str_has_suffix(lines[1], "inside an operation [request_id=req-9 operation=op-9]"));
    /* A line's own request id wins over the context's. */
    g_assert_nonnull(strstr(lines[2], "tenant acme deleted [message_id=" LOG_MESSAGE_TENANT_DELETED
                                      " tenant=acme request_id=req-own operation=op-9]"));
    g_assert_cmpstr(lines[3], ==, "");
}

int main(int argc, char **argv)
{
    g_unsetenv("G_MESSAGES_DEBUG");
    g_unsetenv("JOURNAL_STREAM"); /* the test reads stderr, never the journal */
    log_install();
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/log/format/fields", test_format_fields);
    g_test_add_func("/log/format/plain", test_format_plain);
    g_test_add_func("/log/format/quoting", test_format_quoting);
    g_test_add_func("/log/context", test_context);
    g_test_add_func("/log/writer", test_writer);
    return g_test_run();
}
