/* The libvirt connection as handlers and operation bodies use it: a
 * reference, or turtled's 503 "unavailable" while libvirt is away. */
#pragma once

#include <glib.h>

#include "daemon/app.h"
#include "hvcore/conn.h"

/* A new reference (g_autoptr(HvConn)), or NULL with TD_ERROR_UNAVAILABLE
 * "libvirt is unreachable (<uri>): <reason>". */
HvConn *connection_get(App *app, GError **error);

/* After a call on @conn failed with *@error (HV_ERROR): when the connection is
 * dead, replaces *@error with TD_ERROR_UNAVAILABLE (and reconnection starts);
 * otherwise maps hvcore's code onto turtled's (INVALID -> BAD_REQUEST,
 * NOT_FOUND -> NOT_FOUND, UNSUPPORTED -> BAD_REQUEST, the rest -> INTERNAL),
 * keeping the message.  Returns TRUE when libvirt was unreachable. */
gboolean connection_failed(App *app, HvConn *conn, GError **error);
