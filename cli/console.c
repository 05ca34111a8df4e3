/* The interactive console (see console.h). */
#include "cli/console.h"

#include "api/websocket.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define IO_CHUNK (16 * 1024)
/* What the server may send in one message (it sends 16 KiB frames). */
#define MAX_MESSAGE (1024 * 1024)

/* The self-pipe the signal handler writes to: the session loop ends and
 * restores the terminal itself (no terminal calls in the handler). */
static int signal_pipe[2] = {-1, -1};

static void on_signal(int signo)
{
    int saved = errno;
    char byte = (char)signo;
    (void)!write(signal_pipe[1], &byte, 1);
    errno = saved;
}

typedef struct {
    ClientSocket *socket;
    ApiWsDecoder *decoder;
    gboolean close_sent;
    gboolean done;
    guint16 close_code; /* the server's */
    char *close_reason;
} Session;

static gboolean send_frame(Session *session, ApiWsOpcode opcode, const void *data, gsize len,
                           GError **error)
{
    g_autoptr(GByteArray) frame = g_byte_array_new();
    api_ws_frame_encode(frame, opcode, TRUE, data, len, TRUE);
    return client_socket_send(session->socket, frame->data, frame->len, error);
}

static gboolean send_close(Session *session, guint16 code, const char *reason, GError **error)
{
    if (session->close_sent)
        return TRUE;
    session->close_sent = TRUE;
    g_autoptr(GByteArray) frame = g_byte_array_new();
    api_ws_close_encode(frame, code, reason, TRUE);
    return client_socket_send(session->socket, frame->data, frame->len, error);
}

static gboolean write_all(int fd, const void *data, gsize len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return FALSE;
        p += n;
        len -= (gsize)n;
    }
    return TRUE;
}

/* The server's messages: output, pings, its close. */
static gboolean take_messages(Session *session, GError **error)
{
    ApiWsMessage *message;
    while ((message = api_ws_decoder_pop(session->decoder)) != NULL) {
        g_autoptr(ApiWsMessage) owned = message;
        gsize len = 0;
        const void *payload = g_bytes_get_data(message->payload, &len);
        switch (message->opcode) {
        case API_WS_TEXT:
        case API_WS_BINARY:
            if (!write_all(STDOUT_FILENO, payload, len)) {
                g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_LOCAL,
                            "cannot write the console output: %s", g_strerror(errno));
                return FALSE;
            }
            break;
        case API_WS_PING:
            if (!send_frame(session, API_WS_PONG, payload, len, error))
                return FALSE;
            break;
        case API_WS_CLOSE:
            session->close_code = message->close_code;
            session->close_reason = g_strdup(message->close_reason);
            session->done = TRUE;
            /* Answer with its code; the server closes the connection. */
            return send_close(session, message->close_code == 1005 ? 0 : message->close_code, "",
                              error);
        default:
            break;
        }
    }
    return TRUE;
}

static gboolean take_bytes(Session *session, const void *data, gsize len, GError **error)
{
    g_autoptr(GError) local = NULL;
    gboolean ok = api_ws_decoder_feed(session->decoder, data, len, &local);
    if (!take_messages(session, error))
        return FALSE;
    if (!ok) {
        send_close(session, api_ws_decoder_close_code(session->decoder), local->message, NULL);
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    return TRUE;
}

/* Reads the terminal; FALSE when the user pressed the escape or stdin ended. */
static gboolean take_keys(Session *session, gboolean *detach, GError **error)
{
    char buf[IO_CHUNK];
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return TRUE;
    if (n <= 0) {
        *detach = TRUE;
        return TRUE;
    }
    char *escape = memchr(buf, CONSOLE_ESCAPE, (size_t)n);
    gsize len = escape != NULL ? (gsize)(escape - buf) : (gsize)n;
    if (len > 0 && !send_frame(session, API_WS_BINARY, buf, len, error))
        return FALSE;
    if (escape != NULL)
        *detach = TRUE;
    return TRUE;
}

static gboolean run(Session *session, gboolean *detached, GError **error)
{
    g_autoptr(GBytes) early = client_socket_take_early(session->socket);
    if (early != NULL) {
        gsize len = 0;
        const void *data = g_bytes_get_data(early, &len);
        if (!take_bytes(session, data, len, error))
            return FALSE;
    }
    while (!session->done) {
        /* TLS may hold decrypted bytes the socket no longer shows. */
        char buf[IO_CHUNK];
        gssize n;
        while ((n = client_socket_recv(session->socket, buf, sizeof(buf), error)) > 0)
            if (!take_bytes(session, buf, (gsize)n, error))
                return FALSE;
        if (n == -1)
            return FALSE;
        if (n == 0) {
            if (!session->done)
                g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_UNREACHABLE,
                            "turtled closed the console without a close frame");
            return session->done;
        }
        if (session->done)
            break;
        struct pollfd fds[3] = {
            {.fd = STDIN_FILENO, .events = POLLIN},
            {.fd = client_socket_fd(session->socket), .events = POLLIN},
            {.fd = signal_pipe[0], .events = POLLIN},
        };
        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_LOCAL, "poll: %s", g_strerror(errno));
            return FALSE;
        }
        if (fds[2].revents != 0) {
            char signo = 0;
            (void)!read(signal_pipe[0], &signo, 1);
            send_close(session, API_WS_CLOSE_GOING_AWAY, "turtlectl got a signal", NULL);
            g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_LOCAL, "stopped by signal %d",
                        (int)signo);
            return FALSE;
        }
        if (fds[0].revents != 0) {
            if (!take_keys(session, detached, error))
                return FALSE;
            if (*detached)
                return send_close(session, API_WS_CLOSE_NORMAL, "detached", error);
        }
    }
    return TRUE;
}

gboolean console_interactive(ClientSocket *socket, const char *stack, GError **error)
{
    struct termios saved, raw;
    if (tcgetattr(STDIN_FILENO, &saved) != 0) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_LOCAL,
                    "cannot read the terminal's settings: %s", g_strerror(errno));
        return FALSE;
    }
    if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_LOCAL, "pipe: %s", g_strerror(errno));
        return FALSE;
    }
    static const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    struct sigaction action = {.sa_handler = on_signal}, previous[G_N_ELEMENTS(signals)];
    sigemptyset(&action.sa_mask);
    for (gsize i = 0; i < G_N_ELEMENTS(signals); i++)
        sigaction(signals[i], &action, &previous[i]);

    printf("Connected to stack %s (escape character is ^])\r\n", stack);
    fflush(stdout);
    raw = saved;
    cfmakeraw(&raw);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);

    Session session = {.socket = socket, .decoder = api_ws_decoder_new(FALSE, MAX_MESSAGE)};
    gboolean detached = FALSE;
    g_autoptr(GError) local = NULL;
    gboolean ok = run(&session, &detached, &local);

    /* Every way out passes here: the terminal as it was. */
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    for (gsize i = 0; i < G_N_ELEMENTS(signals); i++)
        sigaction(signals[i], &previous[i], NULL);
    close(signal_pipe[0]);
    close(signal_pipe[1]);
    signal_pipe[0] = signal_pipe[1] = -1;
    api_ws_decoder_free(session.decoder);
    g_autofree char *reason = g_steal_pointer(&session.close_reason);

    printf("\n");
    fflush(stdout);
    if (!ok) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (detached)
        return TRUE;
    if (session.close_code != API_WS_CLOSE_NORMAL) {
        g_set_error(error, CLIENT_ERROR, CLIENT_ERROR_UNREACHABLE,
                    "the console of stack %s was closed by turtled: %s (%u)", stack,
                    reason != NULL && *reason ? reason : "no reason given", session.close_code);
        return FALSE;
    }
    return TRUE;
}
