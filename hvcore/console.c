/* Interactive serial consoles (see console.h). */
#include "hvcore/console.h"

#include "hvcore/error.h"
#include "hvcore/libvirt-private.h"

struct HvConsole {
    virStreamPtr stream;
    gboolean watching; /* a libvirt event callback is registered */
    HvConsoleNotify notify;
    gpointer data;
    char *name;
};

static void on_stream_event(virStreamPtr stream, int events, void *opaque)
{
    HvConsole *console = opaque;
    guint mask = 0;
    (void)stream;

    if (events & VIR_STREAM_EVENT_READABLE)
        mask |= HV_CONSOLE_READABLE;
    if (events & VIR_STREAM_EVENT_WRITABLE)
        mask |= HV_CONSOLE_WRITABLE;
    if (events & VIR_STREAM_EVENT_HANGUP)
        mask |= HV_CONSOLE_HANGUP;
    if (events & VIR_STREAM_EVENT_ERROR)
        mask |= HV_CONSOLE_ERROR;
    console->notify(console, mask, console->data);
}

static int to_libvirt_events(guint events)
{
    int mask = VIR_STREAM_EVENT_HANGUP | VIR_STREAM_EVENT_ERROR;
    if (events & HV_CONSOLE_READABLE)
        mask |= VIR_STREAM_EVENT_READABLE;
    if (events & HV_CONSOLE_WRITABLE)
        mask |= VIR_STREAM_EVENT_WRITABLE;
    return mask;
}

HvConsole *hv_console_open(HvConn *conn, const char *name, HvConsoleNotify notify, gpointer data,
                           GError **error)
{
    g_return_val_if_fail(conn != NULL && name != NULL && notify != NULL, NULL);
    virConnectPtr ptr = hv_conn_get_libvirt(conn);
    g_autoptr(virDomain) domain = virDomainLookupByName(ptr, name);
    if (domain == NULL) {
        hv_libvirt_set_error(error, "cannot look up domain '%s'", name);
        return NULL;
    }
    g_autoptr(virStream) stream = virStreamNew(ptr, VIR_STREAM_NONBLOCK);
    if (stream == NULL) {
        hv_libvirt_set_error(error, "cannot make a stream for the console of '%s'", name);
        return NULL;
    }
    /* NULL: the domain's first console, which targets the serial port. */
    /* SAFE, never FORCE: see console.h. */
    if (virDomainOpenConsole(domain, NULL, stream, VIR_DOMAIN_CONSOLE_SAFE) != 0) {
        hv_libvirt_set_error(error, "cannot open the console of '%s'", name);
        return NULL;
    }
    HvConsole *console = g_new0(HvConsole, 1);
    console->notify = notify;
    console->data = data;
    console->name = g_strdup(name);
    /* Registered at once, so that a hang-up is never missed. */
    if (virStreamEventAddCallback(stream, to_libvirt_events(0), on_stream_event, console, NULL) !=
        0) {
        hv_libvirt_set_error(error, "cannot watch the console of '%s'", name);
        virStreamAbort(stream);
        g_free(console->name);
        g_free(console);
        return NULL;
    }
    console->watching = TRUE;
    console->stream = g_steal_pointer(&stream);
    return console;
}

void hv_console_watch(HvConsole *console, guint events)
{
    g_return_if_fail(console != NULL);
    if (console->watching)
        virStreamEventUpdateCallback(console->stream, to_libvirt_events(events));
}

gssize hv_console_read(HvConsole *console, void *buf, gsize len, GError **error)
{
    g_return_val_if_fail(console != NULL && buf != NULL, -1);
    int n = virStreamRecv(console->stream, buf, MIN(len, (gsize)G_MAXINT));
    if (n == -2)
        return HV_CONSOLE_AGAIN;
    if (n < 0) {
        hv_libvirt_set_error(error, "cannot read the console of '%s'", console->name);
        return -1;
    }
    return n;
}

gssize hv_console_write(HvConsole *console, const void *buf, gsize len, GError **error)
{
    g_return_val_if_fail(console != NULL && buf != NULL, -1);
    int n = virStreamSend(console->stream, buf, MIN(len, (gsize)G_MAXINT));
    if (n == -2)
        return HV_CONSOLE_AGAIN;
    if (n < 0) {
        hv_libvirt_set_error(error, "cannot write to the console of '%s'", console->name);
        return -1;
    }
    return n;
}

void hv_console_close(HvConsole *console)
{
    if (console == NULL)
        return;
    if (console->watching)
        virStreamEventRemoveCallback(console->stream);
    /* Abort, not finish: the guest's side never ends on its own, and a
     * finish would wait for it.  A stream that already ended refuses the
     * abort; nothing is left either way. */
    if (virStreamAbort(console->stream) != 0)
        virResetLastError();
    virStreamFree(console->stream);
    g_free(console->name);
    g_free(console);
}
