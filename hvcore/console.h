/* A domain's interactive serial console: libvirt's console stream
 * (virDomainOpenConsole) behind an opaque handle, so that no header outside
 * hvcore sees a libvirt type.
 *
 * The stream is non-blocking and driven by libvirt's event loop (turtled's
 * main loop, through libvirt-glib): @notify runs there when the stream can
 * be read or written or has ended, and every function here but
 * hv_console_open must be called on that same thread, which is what makes a
 * close safe against a notification in flight.  A session therefore needs
 * no thread of its own.
 *
 * One console stream per domain: libvirt refuses a second one.  A caller
 * that hands a console over closes the old stream first (hv_console_close
 * returns once libvirtd has let it go) and then opens the new one.  libvirt's
 * VIR_DOMAIN_CONSOLE_FORCE is never used: in libvirt 9.0 a forced open that
 * meets an abort of the same stream deadlocks libvirtd (virChrdevOpen holds
 * the console table's lock and waits for the stream's, while the daemon's
 * event loop aborting that stream holds the stream's and waits for the
 * table's), which froze a whole test host.  Backends without console streams
 * (libvirt's test driver) fail the open with HV_ERROR_UNSUPPORTED. */
#pragma once

#include <glib.h>

#include "hvcore/conn.h"

typedef struct HvConsole HvConsole;

typedef enum {
    HV_CONSOLE_READABLE = 1 << 0,
    HV_CONSOLE_WRITABLE = 1 << 1,
    HV_CONSOLE_HANGUP = 1 << 2, /* the other end closed: the guest's console is gone */
    HV_CONSOLE_ERROR = 1 << 3,
} HvConsoleEvents;

/* hv_console_read/_write: nothing can move now; wait for a notification. */
#define HV_CONSOLE_AGAIN (-2)

typedef void (*HvConsoleNotify)(HvConsole *console, guint events, gpointer data);

/* Opens the serial console of the running domain @name.  @notify starts
 * with no events watched (hv_console_watch).  Errors: NOT_FOUND for no such
 * domain, UNSUPPORTED for a backend without console streams, LIBVIRT with
 * libvirt's message otherwise (a domain that is not running, the console
 * held by another client). */
HvConsole *hv_console_open(HvConn *conn, const char *name, HvConsoleNotify notify, gpointer data,
                           GError **error);
/* The events (HvConsoleEvents; HANGUP and ERROR always) to be told about. */
void hv_console_watch(HvConsole *console, guint events);
/* Up to @len bytes of the guest's output: the count, 0 at the end of the
 * stream, HV_CONSOLE_AGAIN when there is nothing now, -1 with an error. */
gssize hv_console_read(HvConsole *console, void *buf, gsize len, GError **error);
/* Up to @len bytes to the guest's serial port: the count taken,
 * HV_CONSOLE_AGAIN when it can take nothing now, -1 with an error. */
gssize hv_console_write(HvConsole *console, const void *buf, gsize len, GError **error);
/* Stops the notifications, ends the stream and frees.  NULL is fine. */
void hv_console_close(HvConsole *console);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvConsole, hv_console_close)
