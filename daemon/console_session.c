/* Interactive console sessions (see console_session.h). */
#include "daemon/console_session.h"

#include "api/websocket.h"
#include "daemon/console.h"
#include "daemon/error.h"
#include "hvcore/console.h"
#include "hvcore/error.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define IO_CHUNK (16 * 1024)
/* Bytes for the serial port not yet taken by libvirt: past it, the client is
 * not read until the guest catches up. */
#define TO_GUEST_MAX (64 * 1024)
/* How often a session asks still_allowed, and how long a close handshake
 * may wait for a client that does not read. */
#define CHECK_SECONDS       1
#define CLOSE_DEADLINE_USEC (5 * G_TIME_SPAN_SECOND)
/* How long a takeover waits for the main loop to let the old stream go; a
 * main loop that busy means trouble, and the open then fails cleanly. */
#define RELEASE_WAIT_USEC (10 * G_TIME_SPAN_SECOND)

struct ConsoleSessions {
    GMutex lock;
    GCond released;       /* a taken-over session let its console stream go */
    GHashTable *by_stack; /* stack id -> ConsoleSession (borrowed; removed when it ends) */
};

typedef struct {
    gint refs; /* g_atomic_int_*: compiler atomics ThreadSanitizer sees */
    ConsoleSessions *sessions;
    char *stack_id;
    char *stack_name;
    char *log_path;
    guint tail;
    gboolean (*still_allowed)(gpointer data);
    gpointer data;
    GDestroyNotify free_data;
    HvConsole *console;
    gint taken_over;   /* atomic: another session took the stack */
    gint early_hangup; /* atomic: the console ended before the session began */
    gboolean released; /* under sessions->lock: taken over, its stream closed */
    /* Set by the upgrade handler, before the session begins. */
    HttpUpgrade *upgrade;
    int fd;
    GBytes *extra;
    /* The rest belongs to the main loop. */
    gboolean begun;
    gboolean ended;
    gboolean closing; /* our close frame is queued: no more input either way */
    gint64 close_deadline;
    GSource *fd_source;
    gpointer fd_tag;
    GSource *timer;
    ApiWsDecoder *decoder;
    GByteArray *out; /* frames for the client */
    gsize out_pos;
    GByteArray *to_guest;
} ConsoleSession;

typedef struct {
    GSource source;
    ConsoleSession *session;
} FdSource;

ConsoleSessions *console_sessions_new(void)
{
    ConsoleSessions *sessions = g_new0(ConsoleSessions, 1);
    g_mutex_init(&sessions->lock);
    g_cond_init(&sessions->released);
    sessions->by_stack = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return sessions;
}

void console_sessions_free(ConsoleSessions *sessions)
{
    if (sessions == NULL)
        return;
    g_hash_table_unref(sessions->by_stack);
    g_cond_clear(&sessions->released);
    g_mutex_clear(&sessions->lock);
    g_free(sessions);
}

guint console_sessions_count(ConsoleSessions *sessions)
{
    g_mutex_lock(&sessions->lock);
    guint n = g_hash_table_size(sessions->by_stack);
    g_mutex_unlock(&sessions->lock);
    return n;
}

static ConsoleSession *session_ref(ConsoleSession *session)
{
    g_atomic_int_inc(&session->refs);
    return session;
}

static void session_unref(gpointer data)
{
    ConsoleSession *session = data;
    if (session == NULL || !g_atomic_int_dec_and_test(&session->refs))
        return;
    /* session_end has closed the console and the sources by now. */
    if (session->free_data != NULL)
        session->free_data(session->data);
    g_clear_pointer(&session->extra, g_bytes_unref);
    g_clear_pointer(&session->decoder, api_ws_decoder_free);
    g_byte_array_unref(session->out);
    g_byte_array_unref(session->to_guest);
    g_free(session->stack_id);
    g_free(session->stack_name);
    g_free(session->log_path);
    g_free(session);
}

/* Runs @func on the main loop's thread: at once when this thread may own the
 * default context (the main loop itself, or nobody runs it: shutdown), else
 * queued to it.  The session is referenced until @func ran. */
static void on_main(ConsoleSession *session, GSourceFunc func)
{
    g_main_context_invoke_full(NULL, G_PRIORITY_DEFAULT, func, session_ref(session), session_unref);
}

static void session_unregister(ConsoleSession *session)
{
    ConsoleSessions *sessions = session->sessions;
    g_mutex_lock(&sessions->lock);
    if (g_hash_table_lookup(sessions->by_stack, session->stack_id) == session)
        g_hash_table_remove(sessions->by_stack, session->stack_id);
    g_mutex_unlock(&sessions->lock);
}

/* ---- the main loop's side ------------------------------------------------------ */

/* Everything goes: registry entry, watches, console stream, socket. */
static void session_end(ConsoleSession *session)
{
    if (session->ended)
        return;
    session->ended = TRUE;
    session_ref(session);
    session_unregister(session);
    if (session->fd_source != NULL) {
        g_source_destroy(session->fd_source);
        g_clear_pointer(&session->fd_source, g_source_unref);
    }
    if (session->timer != NULL) {
        g_source_destroy(session->timer);
        g_clear_pointer(&session->timer, g_source_unref);
    }
    g_clear_pointer(&session->console, hv_console_close);
    if (session->upgrade != NULL)
        http_upgrade_close(g_steal_pointer(&session->upgrade));
    g_debug("console session of stack %s ended", session->stack_name);
    session_unref(session);
}

static void session_update(ConsoleSession *session)
{
    if (session->ended || !session->begun)
        return;
    gboolean out_pending = session->out->len > session->out_pos;
    GIOCondition cond = G_IO_HUP | G_IO_ERR;
    if (!session->closing && session->to_guest->len < TO_GUEST_MAX)
        cond |= G_IO_IN;
    if (out_pending)
        cond |= G_IO_OUT;
    g_source_modify_unix_fd(session->fd_source, session->fd_tag, cond);
    if (session->console != NULL) {
        guint events = 0;
        if (!session->closing && session->out->len - session->out_pos < CONSOLE_OUT_MAX)
            events |= HV_CONSOLE_READABLE;
        if (session->to_guest->len > 0 && !session->closing)
            events |= HV_CONSOLE_WRITABLE;
        hv_console_watch(session->console, events);
    }
}

/* Queues our close frame; the session ends once it is sent (or the client
 * answers with its own, or the deadline passes). */
static void session_close(ConsoleSession *session, guint16 code, const char *reason)
{
    if (session->closing || session->ended)
        return;
    session->closing = TRUE;
    session->close_deadline = g_get_monotonic_time() + CLOSE_DEADLINE_USEC;
    api_ws_close_encode(session->out, code, reason, FALSE);
    g_debug("console session of stack %s closing: %u %s", session->stack_name, code, reason);
    session_update(session);
}

static void session_close_console_gone(ConsoleSession *session)
{
    if (g_atomic_int_get(&session->taken_over))
        session_close(session, CONSOLE_CLOSE_TAKEN_OVER, "taken over by another client");
    else
        session_close(session, API_WS_CLOSE_GOING_AWAY, "the console closed");
}

/* Output for the client, in frames of at most IO_CHUNK bytes. */
static void session_send(ConsoleSession *session, const char *data, gsize len)
{
    for (gsize done = 0; done < len; done += IO_CHUNK)
        api_ws_frame_encode(session->out, API_WS_BINARY, TRUE, data + done,
                            MIN(IO_CHUNK, len - done), FALSE);
}

/* Hands queued input to libvirt as far as it takes it. */
static void session_flush_to_guest(ConsoleSession *session)
{
    while (session->to_guest->len > 0 && session->console != NULL) {
        g_autoptr(GError) error = NULL;
        gssize n = hv_console_write(session->console, session->to_guest->data,
                                    session->to_guest->len, &error);
        if (n == HV_CONSOLE_AGAIN)
            return;
        if (n < 0) {
            g_debug("console session of stack %s: %s", session->stack_name, error->message);
            session_close(session, API_WS_CLOSE_GOING_AWAY, "the console closed");
            return;
        }
        g_byte_array_remove_range(session->to_guest, 0, (guint)n);
    }
}

static void session_read_console(ConsoleSession *session)
{
    char buf[IO_CHUNK];
    while (!session->closing && session->out->len - session->out_pos < CONSOLE_OUT_MAX) {
        g_autoptr(GError) error = NULL;
        gssize n = hv_console_read(session->console, buf, sizeof(buf), &error);
        if (n == HV_CONSOLE_AGAIN)
            return;
        if (n <= 0) {
            if (n < 0)
                g_debug("console session of stack %s: %s", session->stack_name, error->message);
            session_close_console_gone(session);
            return;
        }
        session_send(session, buf, (gsize)n);
    }
}

static void on_console(HvConsole *console, guint events, gpointer data)
{
    ConsoleSession *session = data;
    (void)console;
    if (!session->begun) {
        /* Only hang-ups are watched before the session begins. */
        if (events & (HV_CONSOLE_HANGUP | HV_CONSOLE_ERROR))
            g_atomic_int_set(&session->early_hangup, TRUE);
        return;
    }
    if (session->ended)
        return;
    if (events & HV_CONSOLE_READABLE)
        session_read_console(session);
    if (events & HV_CONSOLE_WRITABLE)
        session_flush_to_guest(session);
    if (events & (HV_CONSOLE_HANGUP | HV_CONSOLE_ERROR)) {
        /* Nothing more will come: no more notifications either. */
        g_clear_pointer(&session->console, hv_console_close);
        session_close_console_gone(session);
    }
    session_update(session);
}

/* The client's messages: input, pings, its close. */
static void session_take_messages(ConsoleSession *session)
{
    ApiWsMessage *message;
    while ((message = api_ws_decoder_pop(session->decoder)) != NULL) {
        g_autoptr(ApiWsMessage) owned = message;
        gsize len = 0;
        const guint8 *payload = g_bytes_get_data(message->payload, &len);
        switch (message->opcode) {
        case API_WS_TEXT:
        case API_WS_BINARY:
            if (!session->closing)
                g_byte_array_append(session->to_guest, payload, (guint)len);
            break;
        case API_WS_PING:
            if (!session->closing)
                api_ws_frame_encode(session->out, API_WS_PONG, TRUE, payload, len, FALSE);
            break;
        case API_WS_PONG:
            break;
        case API_WS_CLOSE:
            /* Echo its code (RFC 6455 5.5.1); the session ends once sent. */
            if (!session->closing) {
                guint16 code = message->close_code == 1005 ? 0 : message->close_code;
                session->closing = TRUE;
                session->close_deadline = g_get_monotonic_time() + CLOSE_DEADLINE_USEC;
                api_ws_close_encode(session->out, code, "", FALSE);
            } else {
                /* Our close was answered: done. */
                session->out_pos = session->out->len;
            }
            return;
        default:
            break;
        }
    }
}

static void session_take_input(ConsoleSession *session, const void *data, gsize len)
{
    g_autoptr(GError) error = NULL;
    gboolean ok = api_ws_decoder_feed(session->decoder, data, len, &error);
    session_take_messages(session);
    if (!ok) {
        g_debug("console session of stack %s: %s", session->stack_name, error->message);
        session_close(session, api_ws_decoder_close_code(session->decoder), error->message);
    }
    session_flush_to_guest(session);
}

/* FALSE when the session ended. */
static gboolean session_write_out(ConsoleSession *session)
{
    while (session->out->len > session->out_pos) {
        ssize_t n = send(session->fd, session->out->data + session->out_pos,
                         session->out->len - session->out_pos, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return TRUE;
        if (n < 0) {
            session_end(session); /* the client is gone */
            return FALSE;
        }
        session->out_pos += (gsize)n;
    }
    g_byte_array_set_size(session->out, 0);
    session->out_pos = 0;
    if (session->closing) {
        session_end(session);
        return FALSE;
    }
    /* Room again for the guest's output. */
    if (session->console != NULL)
        session_read_console(session);
    return TRUE;
}

static gboolean on_fd(GSource *source, GSourceFunc callback, gpointer user_data)
{
    FdSource *fd_source = (FdSource *)source;
    ConsoleSession *session = fd_source->session;
    (void)callback;
    (void)user_data;
    GIOCondition cond = g_source_query_unix_fd(source, session->fd_tag);

    session_ref(session);
    if (cond & G_IO_IN) {
        char buf[IO_CHUNK];
        ssize_t n = recv(session->fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            /* The client left without a close handshake (or half-closed,
             * which a console client does not do). */
            session_end(session);
        } else if (n > 0) {
            session_take_input(session, buf, (gsize)n);
        }
    } else if (cond & (G_IO_HUP | G_IO_ERR)) {
        session_end(session);
    }
    if (!session->ended && (cond & G_IO_OUT))
        session_write_out(session);
    session_update(session);
    gboolean keep = !session->ended;
    session_unref(session);
    return keep ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static GSourceFuncs fd_source_funcs = {.dispatch = on_fd};

static gboolean on_timer(gpointer data)
{
    ConsoleSession *session = data;
    if (session->closing) {
        if (g_get_monotonic_time() >= session->close_deadline) {
            session_end(session);
            return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
    }
    if (session->still_allowed != NULL && !session->still_allowed(session->data))
        session_close(session, API_WS_CLOSE_POLICY, "the stack is gone or access was revoked");
    return G_SOURCE_CONTINUE;
}

static gboolean session_begin(gpointer data)
{
    ConsoleSession *session = data;
    if (session->ended)
        return G_SOURCE_REMOVE;
    session->begun = TRUE;
    session->decoder = api_ws_decoder_new(TRUE, CONSOLE_MAX_MESSAGE);

    g_autoptr(GError) error = NULL;
    g_autofree char *scrollback = console_tail(session->log_path, session->tail, &error);
    if (scrollback == NULL)
        g_debug("console session of stack %s: no scrollback: %s", session->stack_name,
                error->message);
    else
        session_send(session, scrollback, strlen(scrollback));

    GSource *source = g_source_new(&fd_source_funcs, sizeof(FdSource));
    ((FdSource *)source)->session = session;
    session->fd_tag = g_source_add_unix_fd(source, session->fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
    g_source_attach(source, NULL);
    session->fd_source = source;
    session->timer = g_timeout_source_new_seconds(CHECK_SECONDS);
    g_source_set_callback(session->timer, on_timer, session, NULL);
    g_source_attach(session->timer, NULL);

    if (session->extra != NULL) {
        gsize len = 0;
        const void *extra = g_bytes_get_data(session->extra, &len);
        session_take_input(session, extra, len);
    }
    if (g_atomic_int_get(&session->early_hangup)) {
        g_clear_pointer(&session->console, hv_console_close);
        session_close_console_gone(session);
    } else if (g_atomic_int_get(&session->taken_over)) {
        session_close_console_gone(session);
    } else if (session->console != NULL) {
        session_read_console(session);
    }
    session_update(session);
    return G_SOURCE_REMOVE;
}

static gboolean session_end_on_main(gpointer data)
{
    session_end(data);
    return G_SOURCE_REMOVE;
}

/* The stream goes first, and the taker waits for it (wait_for_release):
 * libvirt lets one stream hold a console. */
static gboolean session_taken_over(gpointer data)
{
    ConsoleSession *session = data;
    g_clear_pointer(&session->console, hv_console_close);
    g_mutex_lock(&session->sessions->lock);
    session->released = TRUE;
    g_cond_broadcast(&session->sessions->released);
    g_mutex_unlock(&session->sessions->lock);
    if (session->begun)
        session_close_console_gone(session);
    return G_SOURCE_REMOVE;
}

/* The server stops (on the thread that frees it; the main loop has ended):
 * a last try at the close frame, then the end. */
static gboolean session_stop_on_main(gpointer data)
{
    ConsoleSession *session = data;
    if (session->begun && !session->ended) {
        session_close(session, API_WS_CLOSE_GOING_AWAY, "turtled is stopping");
        session->closing = TRUE;
        (void)!send(session->fd, session->out->data + session->out_pos,
                    session->out->len - session->out_pos, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    session_end(session);
    return G_SOURCE_REMOVE;
}

/* ---- the HTTP layer's side -------------------------------------------------------- */

static void session_start(gpointer data, HttpUpgrade *upgrade, int fd, const char *extra,
                          gsize extra_len)
{
    ConsoleSession *session = data;
    session->upgrade = upgrade;
    session->fd = fd;
    if (extra_len > 0)
        session->extra = g_bytes_new(extra, extra_len);
    on_main(session, session_begin);
}

static void session_stop(gpointer data)
{
    on_main(data, session_stop_on_main);
}

/* The HTTP layer is done with the session: after http_upgrade_close, or
 * when the 101 never went out. */
static void session_release(gpointer data)
{
    on_main(data, session_end_on_main);
    session_unref(data);
}

/* ---- opening --------------------------------------------------------------------- */

/* Until @previous, taken over, has closed its console stream on the main
 * loop (at once when this thread runs the main loop). */
static void wait_for_release(ConsoleSessions *sessions, ConsoleSession *previous)
{
    gint64 deadline = g_get_monotonic_time() + RELEASE_WAIT_USEC;
    g_mutex_lock(&sessions->lock);
    while (!previous->released && g_cond_wait_until(&sessions->released, &sessions->lock, deadline))
        ;
    g_mutex_unlock(&sessions->lock);
}

/* Whether the comma-separated @list holds @token (any case). */
static gboolean header_has_token(const char *list, const char *token)
{
    if (list == NULL)
        return FALSE;
    g_auto(GStrv) parts = g_strsplit(list, ",", -1);
    for (guint i = 0; parts[i] != NULL; i++)
        if (g_ascii_strcasecmp(g_strstrip(parts[i]), token) == 0)
            return TRUE;
    return FALSE;
}

HttpReply *console_session_check_handshake(const HttpRequest *request, char **accept)
{
    const char *upgrade = http_request_header(request, "upgrade");
    const char *connection = http_request_header(request, "connection");
    const char *version = http_request_header(request, "sec-websocket-version");
    const char *key = http_request_header(request, "sec-websocket-key");

    if (!header_has_token(upgrade, "websocket"))
        return http_reply_errorf(TD_ERROR_BAD_REQUEST, "Upgrade: only 'websocket' is offered");
    if (!header_has_token(connection, "upgrade"))
        return http_reply_errorf(TD_ERROR_BAD_REQUEST,
                                 "Connection: must list 'Upgrade' to open a WebSocket");
    if (version == NULL || strcmp(version, "13") != 0) {
        HttpReply *reply =
            http_reply_errorf(TD_ERROR_BAD_REQUEST, "Sec-WebSocket-Version: must be 13 (RFC 6455)");
        http_reply_add_header(reply, "Sec-WebSocket-Version", "13");
        return reply;
    }
    g_autoptr(GError) error = NULL;
    *accept = api_ws_accept(key, &error);
    if (*accept == NULL)
        return http_reply_errorf(TD_ERROR_BAD_REQUEST, "%s",
                                 key == NULL ? "Sec-WebSocket-Key: is required" : error->message);
    return NULL;
}

static HttpReply *open_error(const ConsoleSessionSpec *spec, const GError *error)
{
    if (g_error_matches(error, HV_ERROR, HV_ERROR_UNSUPPORTED))
        return http_reply_errorf(TD_ERROR_NOT_IMPLEMENTED,
                                 "stack '%s': this host's backend has no interactive console "
                                 "(the read-only console works: omit the Upgrade headers)",
                                 spec->stack_name);
    if (g_error_matches(error, HV_ERROR, HV_ERROR_NOT_FOUND))
        return http_reply_errorf(TD_ERROR_CONFLICT, "stack '%s' is not running here",
                                 spec->stack_name);
    return http_reply_errorf(TD_ERROR_CONFLICT,
                             "the console of stack '%s' cannot be opened (is it running, or "
                             "held by another console client?): %s",
                             spec->stack_name, error->message);
}

HttpReply *console_session_open(ConsoleSessions *sessions, HvConn *conn,
                                const ConsoleSessionSpec *spec)
{
    ConsoleSession *session = g_new0(ConsoleSession, 1);
    g_atomic_int_set(&session->refs, 1);
    session->sessions = sessions;
    session->stack_id = g_strdup(spec->stack_id);
    session->stack_name = g_strdup(spec->stack_name);
    session->log_path = g_strdup(spec->log_path);
    session->tail = spec->tail;
    session->still_allowed = spec->still_allowed;
    session->data = spec->data;
    session->free_data = spec->free_data;
    session->fd = -1;
    session->out = g_byte_array_new();
    session->to_guest = g_byte_array_new();

    /* Check and claim in one step, so two clients cannot both win. */
    ConsoleSession *previous = NULL;
    g_mutex_lock(&sessions->lock);
    ConsoleSession *holder = g_hash_table_lookup(sessions->by_stack, spec->stack_id);
    if (holder != NULL && !spec->force) {
        g_mutex_unlock(&sessions->lock);
        session_unref(session);
        return http_reply_errorf(TD_ERROR_CONFLICT,
                                 "the console of stack '%s' is in use by another client; "
                                 "force=1 takes it over",
                                 spec->stack_name);
    }
    if (holder != NULL) {
        g_atomic_int_set(&holder->taken_over, TRUE);
        previous = session_ref(holder);
    }
    g_hash_table_replace(sessions->by_stack, g_strdup(spec->stack_id), session);
    g_mutex_unlock(&sessions->lock);
    if (previous != NULL) {
        on_main(previous, session_taken_over);
        wait_for_release(sessions, previous);
        session_unref(previous);
    }

    g_autoptr(GError) error = NULL;
    session->console = hv_console_open(conn, spec->domain, on_console, session, &error);
    if (session->console == NULL) {
        session_unregister(session);
        session_unref(session);
        return open_error(spec, error);
    }
    HttpReply *reply = http_reply_upgrade(session_start, session_stop, session, session_release);
    http_reply_add_header(reply, "Upgrade", "websocket");
    http_reply_add_header(reply, "Sec-WebSocket-Accept", spec->accept);
    return reply;
}
