/* turtlectl's interactive console (stack console on a terminal): the
 * terminal in raw mode, joined to the L1's serial port through turtled's
 * WebSocket, until Ctrl-] (like virsh console), the server's close, or a
 * signal.  The terminal's settings are restored on every way out. */
#pragma once

#include "cli/client.h"

#include <glib.h>

/* The escape byte: Ctrl-] */
#define CONSOLE_ESCAPE 0x1d

/* Runs the session on @socket for @stack with stdin and stdout (terminals).
 * TRUE when the user detached or the server closed normally; FALSE with an
 * error (the server's close reason when it ended the session otherwise). */
gboolean console_interactive(ClientSocket *socket, const char *stack, GError **error);
