/* Interactive console sessions: GET /v1/stacks/{name}/console upgraded to a
 * WebSocket (RFC 6455, api/websocket.h) that joins the client to the L1's
 * serial port through libvirt's console stream (hvcore/console.h).
 *
 * The client gets the scrollback first (the last ?tail lines of the console
 * log, daemon/console.h), then the live output, as binary frames; its text
 * and binary frames go to the serial port.  Pings are answered, the close
 * handshake is kept, and a session ends when either side closes, the client
 * vanishes, the console stream ends (the stack stopped, was migrated away,
 * or another client took over), or @still_allowed says no (the stack is
 * being deleted, the token was revoked).
 *
 * One writer per stack: a second session is refused (409) unless it takes
 * over (force), which ends the first with close code
 * CONSOLE_CLOSE_TAKEN_OVER: the first's console stream is closed before the
 * second's is opened.  A console held outside turtled (an operator's virsh
 * console) is not taken: the open answers 409 (see hvcore/console.h for why
 * libvirt's forced open is never used).
 *
 * Threads: a session has none of its own.  Its socket and its console stream
 * are watched by turtled's main loop (where libvirt's events run), non-blocking
 * with bounded buffers, so a slow or hostile client only ever stalls itself.
 * Starting and ending are handed to the main loop (g_main_context_invoke),
 * which runs them at once when the loop is not running (shutdown). */
#pragma once

#include "daemon/http.h"
#include "hvcore/conn.h"

#include <glib.h>

/* A private-use close code (RFC 6455 7.4.2): another client took over. */
#define CONSOLE_CLOSE_TAKEN_OVER 4409
/* Bounds: a client's message, and what waits for either side. */
#define CONSOLE_MAX_MESSAGE (64 * 1024)
#define CONSOLE_OUT_MAX     (256 * 1024)

typedef struct ConsoleSessions ConsoleSessions;

ConsoleSessions *console_sessions_new(void);
/* After the HTTP server is gone (it ends every session first). */
void console_sessions_free(ConsoleSessions *sessions);
/* Sessions open now (for tests and metrics). */
guint console_sessions_count(ConsoleSessions *sessions);

/* NULL when @request is a valid WebSocket opening handshake (RFC 6455 4.2.1:
 * Upgrade: websocket, Connection: Upgrade, Sec-WebSocket-Version: 13, a
 * valid Sec-WebSocket-Key), with its Sec-WebSocket-Accept in *@accept; else
 * the 400 reply naming the header. */
HttpReply *console_session_check_handshake(const HttpRequest *request, char **accept);

typedef struct {
    const char *stack_id;
    const char *stack_name;
    const char *domain;   /* the libvirt domain */
    const char *log_path; /* the console log, for the scrollback */
    guint tail;           /* lines of scrollback (0: all, bounded as console_tail) */
    gboolean force;       /* take over from another session */
    const char *accept;   /* Sec-WebSocket-Accept */
    gboolean (*still_allowed)(gpointer data);
    gpointer data;
    GDestroyNotify free_data; /* frees @data when the session ends (also on failure) */
} ConsoleSessionSpec;

/* Opens the stack's console and answers the 101 that starts the session, or
 * an error reply: 409 while another session holds the stack (without
 * force) or libvirt's console is busy, 501 on a backend without console
 * streams (the test driver), 503 when libvirt is unreachable. */
HttpReply *console_session_open(ConsoleSessions *sessions, HvConn *conn,
                                const ConsoleSessionSpec *spec);
