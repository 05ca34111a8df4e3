/* virt-watch: follows a libvirt URI through hvcore/virt and prints one line
 * per connection change and per lifecycle event, flushed at once, so that a
 * test can watch libvirt go away and come back:
 *
 *   connected
 *   unreachable <reason>          the first attempt failed; retrying
 *   disconnected <reason>
 *   event <domain> <what> <libvirt event>/<detail>
 *   after-loss <call> <report>   (--check-after-loss) a call on the lost
 *                                connection: "failed" or "succeeded"; what
 *                                hv_virt_report_failure says: "dead" or "alive"
 *
 * It runs until SIGINT/SIGTERM, --timeout or (--exit-with-parent) the death
 * of its parent, and exits 0 then. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <glib-unix.h>

#include "hvcore/error.h"
#include "hvcore/libvirt-private.h"
#include "hvcore/virt.h"

static void print_line(const char *format, ...) G_GNUC_PRINTF(1, 2);

static void print_line(const char *format, ...)
{
    va_list args;

    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    putchar('\n');
    fflush(stdout);
}

typedef struct {
    HvVirt *virt;
    gboolean check_after_loss;
    HvConn *held; /* --check-after-loss: the connection of the last "connected" */
} Watch;

static void hold_connection(Watch *watch)
{
    if (watch->check_after_loss) {
        g_clear_pointer(&watch->held, hv_conn_unref);
        watch->held = hv_virt_get_connection(watch->virt, NULL);
    }
}

static void on_lifecycle(const HvLifecycleEvent *event, gpointer data)
{
    (void)data;
    print_line("event %s %s %d/%d", event->domain_name, hv_lifecycle_to_string(event->what),
               event->libvirt_event, event->libvirt_detail);
}

static void on_connection(gboolean connected, const char *reason, gpointer data)
{
    Watch *watch = data;
    unsigned long version;
    gboolean failed;

    if (connected) {
        print_line("connected");
        hold_connection(watch);
        return;
    }
    print_line("disconnected %s", reason);
    if (!watch->held)
        return;
    failed = virConnectGetLibVersion(hv_conn_get_libvirt(watch->held), &version) < 0;
    print_line("after-loss %s %s", failed ? "failed" : "succeeded",
               hv_virt_report_failure(watch->virt, watch->held) ? "dead" : "alive");
    g_clear_pointer(&watch->held, hv_conn_unref);
}

static gboolean quit(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
    gint retry_initial_ms = 500, retry_max_ms = 10000, timeout_s = 0;
    gboolean exit_with_parent = FALSE;
    Watch watch = {0};
    GOptionEntry entries[] = {
        {"retry-initial-ms", 0, 0, G_OPTION_ARG_INT, &retry_initial_ms,
         "first reconnection delay (500)", "MS"},
        {"retry-max-ms", 0, 0, G_OPTION_ARG_INT, &retry_max_ms,
         "longest reconnection delay (10000)", "MS"},
        {"timeout", 0, 0, G_OPTION_ARG_INT, &timeout_s, "exit after this many seconds", "S"},
        {"exit-with-parent", 0, 0, G_OPTION_ARG_NONE, &exit_with_parent,
         "exit when the parent process dies", NULL},
        {"check-after-loss", 0, 0, G_OPTION_ARG_NONE, &watch.check_after_loss,
         "call libvirt on a lost connection and print what hv_virt_report_failure says", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) context =
        g_option_context_new("URI - print libvirt lifecycle events");
    g_autoptr(GError) error = NULL;
    g_autoptr(GMainLoop) loop = NULL;
    guint signals[2];

    /* As virsh and turtled do: a libvirtd that dies under a UNIX-socket
     * connection must fail the call (EPIPE), not kill us. */
    signal(SIGPIPE, SIG_IGN);
    g_option_context_add_main_entries(context, entries, NULL);
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        fprintf(stderr, "virt-watch: %s\n", error->message);
        return 2;
    }
    if (argc != 2 || retry_initial_ms < 1 || retry_max_ms < 1 || timeout_s < 0) {
        fprintf(stderr, "usage: virt-watch [OPTION...] URI\n");
        return 2;
    }
    /* A test that dies must not leave us running. */
    if (exit_with_parent) {
        pid_t parent = getppid();

        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0) {
            perror("virt-watch: prctl");
            return 1;
        }
        if (getppid() != parent)
            return 0; /* it died before prctl */
    }

    hv_virt_init_event_loop();
    loop = g_main_loop_new(NULL, FALSE);
    signals[0] = g_unix_signal_add(SIGINT, quit, loop);
    signals[1] = g_unix_signal_add(SIGTERM, quit, loop);
    if (timeout_s > 0)
        g_timeout_add_seconds(timeout_s, quit, loop);

    watch.virt = hv_virt_new(argv[1], on_lifecycle, on_connection, &watch);
    hv_virt_set_backoff(watch.virt, retry_initial_ms, retry_max_ms);
    if (hv_virt_connect(watch.virt, &error)) {
        print_line("connected");
        hold_connection(&watch);
    } else {
        print_line("unreachable %s", error->message);
    }

    g_main_loop_run(loop);
    g_clear_pointer(&watch.held, hv_conn_unref);
    g_clear_pointer(&watch.virt, hv_virt_free);
    g_source_remove(signals[0]);
    g_source_remove(signals[1]);
    return 0;
}
