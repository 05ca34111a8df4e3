/* RFC 6455 WebSocket framing, shared by turtled (the server side of the
 * interactive console) and turtlectl (its client side): the opening
 * handshake's key and accept value, a frame encoder and an incremental
 * decoder that takes bytes in any chunks and hands out whole messages.
 * No extensions and no subprotocols are ever negotiated, so every reserved
 * bit and opcode is a protocol error.  Errors are API_ERROR_INVALID with the
 * close code RFC 6455 7.4.1 names for them (api_ws_decoder_close_code). */
#pragma once

#include <glib.h>

/* The GUID of RFC 6455 1.3 the accept value is derived with. */
#define API_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* Control frames carry at most this many payload bytes (RFC 6455 5.5). */
#define API_WS_CONTROL_MAX 125

typedef enum {
    API_WS_CONTINUATION = 0x0,
    API_WS_TEXT = 0x1,
    API_WS_BINARY = 0x2,
    API_WS_CLOSE = 0x8,
    API_WS_PING = 0x9,
    API_WS_PONG = 0xA,
} ApiWsOpcode;

/* Close codes (RFC 6455 7.4.1) this tree sends. */
typedef enum {
    API_WS_CLOSE_NORMAL = 1000,
    API_WS_CLOSE_GOING_AWAY = 1001,
    API_WS_CLOSE_PROTOCOL_ERROR = 1002,
    API_WS_CLOSE_INVALID_DATA = 1007,
    API_WS_CLOSE_POLICY = 1008,
    API_WS_CLOSE_TOO_BIG = 1009,
    API_WS_CLOSE_INTERNAL = 1011,
} ApiWsCloseCode;

/* TRUE when @key is a valid Sec-WebSocket-Key: the base64 of 16 bytes. */
gboolean api_ws_key_valid(const char *key);
/* The Sec-WebSocket-Accept value for @key: base64(SHA-1(key + GUID)); NULL
 * with an error when the key is not valid. */
char *api_ws_accept(const char *key, GError **error);
/* A fresh random Sec-WebSocket-Key (a client's). */
char *api_ws_key_new(void);

/* Appends one frame to @out.  @masked: a client's frame, masked with a fresh
 * random key (RFC 6455 5.3); a server never masks.  Control frames must be
 * final and carry at most API_WS_CONTROL_MAX bytes (checked by assertion:
 * that is the caller's bug, not input). */
void api_ws_frame_encode(GByteArray *out, ApiWsOpcode opcode, gboolean fin, const void *payload,
                         gsize len, gboolean masked);
/* A close frame: @code (0: none, then @reason is ignored) and @reason, which
 * is cut at a character boundary to fit the control frame. */
void api_ws_close_encode(GByteArray *out, guint16 code, const char *reason, gboolean masked);

typedef struct {
    ApiWsOpcode opcode; /* TEXT, BINARY (a whole message), CLOSE, PING or PONG */
    GBytes *payload;
    guint16 close_code; /* CLOSE: the code sent, 1005 (none) when it had none */
    char *close_reason; /* CLOSE: the reason sent (valid UTF-8), "" when none */
} ApiWsMessage;

void api_ws_message_free(ApiWsMessage *message);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiWsMessage, api_ws_message_free)

typedef struct ApiWsDecoder ApiWsDecoder;

/* @server: the decoder reads a client's frames, which must be masked (a
 * client reads a server's, which must not be).  @max_message bounds a
 * message's payload, fragments together: more is close code 1009, known
 * from a frame's header before its payload is buffered.  The decoder holds
 * at most @max_message bytes plus one chunk fed. */
ApiWsDecoder *api_ws_decoder_new(gboolean server, gsize max_message);
void api_ws_decoder_free(ApiWsDecoder *decoder);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiWsDecoder, api_ws_decoder_free)

/* Takes the next @len bytes of the stream.  FALSE with an error (and
 * api_ws_decoder_close_code telling which close code to send) on the first
 * protocol violation; the decoder refuses everything after it.  Messages
 * completed before the violation can still be taken. */
gboolean api_ws_decoder_feed(ApiWsDecoder *decoder, const void *data, gsize len, GError **error);
/* The next complete message, or NULL. */
ApiWsMessage *api_ws_decoder_pop(ApiWsDecoder *decoder);
/* The close code of the failure (0 while there is none). */
guint16 api_ws_decoder_close_code(const ApiWsDecoder *decoder);
/* Bytes taken but not yet part of a handed-out message. */
gsize api_ws_decoder_pending(const ApiWsDecoder *decoder);
