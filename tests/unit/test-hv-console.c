/* hvcore/console on libvirt's test driver, which has no console streams:
 * the open must fail with HV_ERROR_UNSUPPORTED (turtled's clear 501), a
 * missing domain with HV_ERROR_NOT_FOUND, and nothing may be left open.
 * (A real stream is exercised by tests/system/console-interactive.t.) */
#include "hvcore/conn.h"
#include "hvcore/console.h"
#include "hvcore/error.h"

#include <string.h>

static void on_event(HvConsole *console, guint events, gpointer data)
{
    (void)console;
    (void)events;
    (void)data;
    g_assert_not_reached();
}

static void test_unsupported(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(HvConn) conn = hv_conn_open("test:///default", &error);
    g_assert_no_error(error);
    /* "test" is the driver's own running domain. */
    g_autoptr(HvConsole) console = hv_console_open(conn, "test", on_event, NULL, &error);
    g_assert_null(console);
    g_assert_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED);
    g_assert_nonnull(strstr(error->message, "console"));
}

static void test_missing(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(HvConn) conn = hv_conn_open("test:///default", &error);
    g_assert_no_error(error);
    g_autoptr(HvConsole) console = hv_console_open(conn, "nosuch", on_event, NULL, &error);
    g_assert_null(console);
    g_assert_error(error, HV_ERROR, HV_ERROR_NOT_FOUND);
    hv_console_close(NULL); /* NULL is fine */
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/hv-console/unsupported", test_unsupported);
    g_test_add_func("/hv-console/missing", test_missing);
    return g_test_run();
}
