/* A libvirt connection as the rest of the tree sees it: an opaque,
 * reference-counted handle, so that no header outside hvcore needs
 * libvirt's types (libvirt is hvcore's business alone).
 *
 * Threads: a handle may be used, referenced and released from any thread;
 * libvirt connections are thread-safe. */
#pragma once

#include <glib.h>

typedef struct HvConn HvConn;

/* Opens a connection to @uri (a peer's libvirt, a test driver), or NULL
 * with HV_ERROR_LIBVIRT carrying libvirt's message.  turtled's own
 * connection comes from hv_virt_get_connection instead, which keeps it
 * alive and reconnects. */
HvConn *hv_conn_open(const char *uri, GError **error);

HvConn *hv_conn_ref(HvConn *conn);
/* Closes the libvirt connection with the last reference.  NULL is fine. */
void hv_conn_unref(HvConn *conn);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvConn, hv_conn_unref)
