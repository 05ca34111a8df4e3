/* RFC 6455 framing (see websocket.h). */
#include "api/websocket.h"

#include "api/error.h"

#include <string.h>
#include <sys/random.h>

#define KEY_BYTES 16

/* Masking keys and handshake keys need not be secret, but RFC 6455 10.3
 * wants them unpredictable to an attacker: the kernel's generator, with
 * GLib's as a last resort (getrandom does not fail on Linux >= 3.17 for
 * small requests, but it may be interrupted). */
static void random_bytes(guint8 *buf, gsize len)
{
    gsize got = 0;
    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n <= 0)
            break;
        got += (gsize)n;
    }
    for (; got < len; got++)
        buf[got] = (guint8)g_random_int_range(0, 256);
}

gboolean api_ws_key_valid(const char *key)
{
    /* base64 of 16 bytes: 22 characters and "==" */
    if (key == NULL || strlen(key) != 24 || key[22] != '=' || key[23] != '=')
        return FALSE;
    for (int i = 0; i < 22; i++)
        if (!g_ascii_isalnum(key[i]) && key[i] != '+' && key[i] != '/')
            return FALSE;
    gsize len = 0;
    g_autofree guchar *raw = g_base64_decode(key, &len);
    return len == KEY_BYTES;
}

char *api_ws_accept(const char *key, GError **error)
{
    if (!api_ws_key_valid(key)) {
        g_set_error(error, API_ERROR, API_ERROR_INVALID,
                    "Sec-WebSocket-Key: must be the base64 encoding of 16 bytes");
        return NULL;
    }
    g_autoptr(GChecksum) sha1 = g_checksum_new(G_CHECKSUM_SHA1);
    guint8 digest[20];
    gsize digest_len = sizeof(digest);
    g_checksum_update(sha1, (const guchar *)key, (gssize)strlen(key));
    g_checksum_update(sha1, (const guchar *)API_WS_GUID, (gssize)strlen(API_WS_GUID));
    g_checksum_get_digest(sha1, digest, &digest_len);
    return g_base64_encode(digest, digest_len);
}

char *api_ws_key_new(void)
{
    guint8 raw[KEY_BYTES];
    random_bytes(raw, sizeof(raw));
    return g_base64_encode(raw, sizeof(raw));
}

static gboolean opcode_is_control(guint opcode)
{
    return (opcode & 0x8) != 0;
}

void api_ws_frame_encode(GByteArray *out, ApiWsOpcode opcode, gboolean fin, const void *payload,
                         gsize len, gboolean masked)
{
    g_return_if_fail(out != NULL && (payload != NULL || len == 0));
    g_return_if_fail(!opcode_is_control(opcode) || (fin && len <= API_WS_CONTROL_MAX));
    guint8 header[14];
    gsize n = 0;

    header[n++] = (guint8)((fin ? 0x80 : 0) | (opcode & 0x0f));
    guint8 mask_bit = masked ? 0x80 : 0;
    if (len <= 125) {
        header[n++] = mask_bit | (guint8)len;
    } else if (len <= 0xffff) {
        header[n++] = mask_bit | 126;
        header[n++] = (guint8)(len >> 8);
        header[n++] = (guint8)len;
    } else {
        header[n++] = mask_bit | 127;
        for (int shift = 56; shift >= 0; shift -= 8)
            header[n++] = (guint8)((guint64)len >> shift);
    }
    guint8 key[4] = {0};
    if (masked) {
        random_bytes(key, sizeof(key));
        memcpy(header + n, key, sizeof(key));
        n += sizeof(key);
    }
    g_byte_array_append(out, header, (guint)n);
    guint start = out->len;
    g_byte_array_append(out, payload, (guint)len);
    if (masked)
        for (gsize i = 0; i < len; i++)
            out->data[start + i] ^= key[i & 3];
}

void api_ws_close_encode(GByteArray *out, guint16 code, const char *reason, gboolean masked)
{
    guint8 payload[API_WS_CONTROL_MAX];
    gsize len = 0;
    if (code != 0) {
        payload[len++] = (guint8)(code >> 8);
        payload[len++] = (guint8)code;
        if (reason != NULL) {
            gsize room = sizeof(payload) - len;
            gsize take = strlen(reason);
            if (take > room) {
                /* Back to the start of the character that does not fit. */
                take = room;
                while (take > 0 && ((guint8)reason[take] & 0xc0) == 0x80)
                    take--;
            }
            memcpy(payload + len, reason, take);
            len += take;
        }
    }
    api_ws_frame_encode(out, API_WS_CLOSE, TRUE, payload, len, masked);
}

void api_ws_message_free(ApiWsMessage *message)
{
    if (message == NULL)
        return;
    if (message->payload != NULL)
        g_bytes_unref(message->payload);
    g_free(message->close_reason);
    g_free(message);
}

/* ---- decoder ------------------------------------------------------------ */

struct ApiWsDecoder {
    gboolean server;
    gsize max_message;
    GByteArray *in;       /* bytes of the frame being read, header first */
    GByteArray *message;  /* the fragments of a data message so far */
    guint message_opcode; /* TEXT or BINARY while a message is open, else 0 */
    GQueue ready;         /* ApiWsMessage */
    guint16 close_code;   /* the failure's, 0 while there is none */
    char *failure;
};

ApiWsDecoder *api_ws_decoder_new(gboolean server, gsize max_message)
{
    ApiWsDecoder *decoder = g_new0(ApiWsDecoder, 1);
    decoder->server = server;
    decoder->max_message = max_message;
    decoder->in = g_byte_array_new();
    decoder->message = g_byte_array_new();
    g_queue_init(&decoder->ready);
    return decoder;
}

void api_ws_decoder_free(ApiWsDecoder *decoder)
{
    if (decoder == NULL)
        return;
    g_byte_array_unref(decoder->in);
    g_byte_array_unref(decoder->message);
    g_queue_clear_full(&decoder->ready, (GDestroyNotify)api_ws_message_free);
    g_free(decoder->failure);
    g_free(decoder);
}

guint16 api_ws_decoder_close_code(const ApiWsDecoder *decoder)
{
    return decoder->close_code;
}

gsize api_ws_decoder_pending(const ApiWsDecoder *decoder)
{
    return decoder->in->len + decoder->message->len;
}

ApiWsMessage *api_ws_decoder_pop(ApiWsDecoder *decoder)
{
    return g_queue_pop_head(&decoder->ready);
}

static gboolean fail(ApiWsDecoder *decoder, guint16 code, GError **error, const char *format, ...)
    G_GNUC_PRINTF(4, 5);

static gboolean fail(ApiWsDecoder *decoder, guint16 code, GError **error, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    decoder->failure = g_strdup_vprintf(format, args);
    va_end(args);
    decoder->close_code = code;
    g_byte_array_set_size(decoder->in, 0);
    g_byte_array_set_size(decoder->message, 0);
    g_set_error(error, API_ERROR, API_ERROR_INVALID, "websocket: %s", decoder->failure);
    return FALSE;
}

/* Close codes a peer may send (RFC 6455 7.4.1-7.4.2): 1000-1003, 1007-1011,
 * and the registered/private 3000-4999. */
/* fail() for take_frame, which answers -1 on a violation. */
#define refuse(...) (fail(__VA_ARGS__) ? -1 : -1)

static gboolean close_code_valid(guint code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

static void push(ApiWsDecoder *decoder, ApiWsMessage *message)
{
    g_queue_push_tail(&decoder->ready, message);
}

static gboolean take_control(ApiWsDecoder *decoder, guint opcode, const guint8 *payload, gsize len,
                             GError **error)
{
    ApiWsMessage *message = g_new0(ApiWsMessage, 1);
    message->opcode = opcode;
    message->payload = g_bytes_new(payload, len);
    if (opcode == API_WS_CLOSE) {
        message->close_code = 1005;
        message->close_reason = g_strdup("");
        if (len == 1) {
            api_ws_message_free(message);
            return fail(decoder, API_WS_CLOSE_PROTOCOL_ERROR, error,
                        "a close frame's payload has one byte");
        }
        if (len >= 2) {
            guint code = ((guint)payload[0] << 8) | payload[1];
            if (!close_code_valid(code)) {
                api_ws_message_free(message);
                return fail(decoder, API_WS_CLOSE_PROTOCOL_ERROR, error,
                            "close code %u is not allowed on the wire", code);
            }
            if (!g_utf8_validate_len((const char *)payload + 2, len - 2, NULL)) {
                api_ws_message_free(message);
                return fail(decoder, API_WS_CLOSE_INVALID_DATA, error,
                            "a close reason is not UTF-8");
            }
            message->close_code = (guint16)code;
            g_free(message->close_reason);
            message->close_reason = g_strndup((const char *)payload + 2, len - 2);
        }
    }
    push(decoder, message);
    return TRUE;
}

static gboolean take_data(ApiWsDecoder *decoder, gboolean fin, const guint8 *payload, gsize len,
                          GError **error)
{
    g_byte_array_append(decoder->message, payload, (guint)len);
    if (!fin)
        return TRUE;
    if (decoder->message_opcode == API_WS_TEXT &&
        !g_utf8_validate_len((const char *)decoder->message->data, decoder->message->len, NULL))
        return fail(decoder, API_WS_CLOSE_INVALID_DATA, error, "a text message is not UTF-8");
    ApiWsMessage *message = g_new0(ApiWsMessage, 1);
    message->opcode = decoder->message_opcode;
    guint size = decoder->message->len;
    message->payload = g_byte_array_free_to_bytes(decoder->message);
    decoder->message = g_byte_array_sized_new(MIN(size, 4096));
    decoder->message_opcode = 0;
    push(decoder, message);
    return TRUE;
}

/* Parses the frame at offset *used of decoder->in, if it is all there: 1 when
 * one was taken, 0 when more bytes are needed, -1 on a violation.  The
 * header is checked as soon as it is complete, before its payload arrives,
 * so that a frame over the bound is refused without buffering it. */
static int take_frame(ApiWsDecoder *decoder, gsize *used, GError **error)
{
    const guint8 *p = decoder->in->data + *used;
    gsize avail = decoder->in->len - *used;
    if (avail < 2)
        return 0;
    gboolean fin = (p[0] & 0x80) != 0;
    guint rsv = p[0] & 0x70;
    guint opcode = p[0] & 0x0f;
    gboolean masked = (p[1] & 0x80) != 0;
    guint64 len = p[1] & 0x7f;
    gsize header = 2;

    if (rsv != 0)
        return refuse(decoder, API_WS_CLOSE_PROTOCOL_ERROR, error,
                      "reserved bits set without a negotiated extension");
    if ((opcode >= 0x3 && opcode <= 0x7) || opcode >= 0xB)
        return refuse(decoder, API_WS_CLOSE_PROTOCOL_ERROR, error, "reserved opcode 0x%x", opcode);
    if (masked != decoder->server)
        return refuse(decoder, API_WS_CLOSE_PROTOCOL_ERROR, error,
                      decoder->server ? "a client's frame is not masked"
                                      : "a server's frame is masked");
    if (opcode_is_control(opcode) && (!fin || len > API_WS_CONTROL_MAX))
        return refuse(decoder, API_WS_CLOSE_PROTOCOL_ERROR, error,
                      !fin ? "a control frame is fragmented"
                           : "a control frame carries more than 125 bytes");
    if (opcode == API_WS_CONTINUATION && decoder->message_opcode == 0)
        return refuse(decoder, API_WS_CLOSE_PROTOCOL_ERROR, error,
                      "a continuation frame without a message to continue");
    if ((opcode == API_WS_TEXT || opcode == API_WS_BINARY) && decoder->message_opcode != 0)
        return refuse(decoder, API_WS_CLOSE_PROTOCOL_ERROR, error,
                      "a new message before the last one was finished");
    if (len == 126) {
        if (avail < 4)
            return 0;
        len = ((guint64)p[2] << 8) | p[3];
        header = 4;
        if (len < 126)
            return refuse(decoder, API_WS_CLOSE_PROTOCOL_ERROR, error,
                          "a 16-bit length that fits in 7 bits");
    } else if (len == 127) {
        if (avail < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | p[2 + i];
        header = 10;
        if (len >> 63)
            return refuse(decoder, API_WS_CLOSE_PROTOCOL_ERROR, error,
                          "a 64-bit length with its top bit set");
        if (len <= 0xffff)
            return refuse(decoder, API_WS_CLOSE_PROTOCOL_ERROR, error,
                          "a 64-bit length that fits in 16 bits");
    }
    if (!opcode_is_control(opcode) && len > decoder->max_message - decoder->message->len)
        return refuse(decoder, API_WS_CLOSE_TOO_BIG, error,
                      "a message of more than %" G_GSIZE_FORMAT " bytes", decoder->max_message);
    if (masked)
        header += 4;
    if (avail < header + len)
        return 0;

    guint8 *payload = decoder->in->data + *used + header;
    if (masked) {
        const guint8 *key = payload - 4;
        for (guint64 i = 0; i < len; i++)
            payload[i] ^= key[i & 3];
    }
    if (opcode == API_WS_TEXT || opcode == API_WS_BINARY)
        decoder->message_opcode = opcode;
    gboolean ok = opcode_is_control(opcode)
                      ? take_control(decoder, opcode, payload, (gsize)len, error)
                      : take_data(decoder, fin, payload, (gsize)len, error);
    if (!ok)
        return -1;
    *used += header + (gsize)len;
    return 1;
}

gboolean api_ws_decoder_feed(ApiWsDecoder *decoder, const void *data, gsize len, GError **error)
{
    g_return_val_if_fail(decoder != NULL && (data != NULL || len == 0), FALSE);
    if (decoder->close_code != 0) {
        g_set_error(error, API_ERROR, API_ERROR_INVALID, "websocket: %s", decoder->failure);
        return FALSE;
    }
    g_byte_array_append(decoder->in, data, (guint)len);
    gsize used = 0;
    int r;
    while ((r = take_frame(decoder, &used, error)) == 1)
        ;
    if (r < 0)
        return FALSE;
    /* Once per chunk: many small frames in one read cost no quadratic moves. */
    g_byte_array_remove_range(decoder->in, 0, (guint)used);
    return TRUE;
}
