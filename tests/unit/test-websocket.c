/* api/websocket: RFC 6455's handshake value, its 5.7 example frames, the
 * encoder's output read back by the decoder, fragmentation, arbitrary
 * splits of the byte stream, and every rule a peer's frames must keep. */
#include "api/error.h"
#include "api/websocket.h"

#include <string.h>

/* The decoder over @len bytes of @data fed in pieces of @step bytes. */
static ApiWsDecoder *decode_in_steps(gboolean server, gsize max, const guint8 *data, gsize len,
                                     gsize step, GError **error, gboolean *ok)
{
    ApiWsDecoder *decoder = api_ws_decoder_new(server, max);
    *ok = TRUE;
    for (gsize i = 0; i < len && *ok; i += step)
        *ok = api_ws_decoder_feed(decoder, data + i, MIN(step, len - i), error);
    return decoder;
}

static void assert_message(ApiWsDecoder *decoder, ApiWsOpcode opcode, const void *payload,
                           gsize len)
{
    g_autoptr(ApiWsMessage) message = api_ws_decoder_pop(decoder);
    g_assert_nonnull(message);
    g_assert_cmpint(message->opcode, ==, opcode);
    gsize got = 0;
    const void *data = g_bytes_get_data(message->payload, &got);
    g_assert_cmpmem(data, got, payload, len);
}

/* RFC 6455 1.3's example (the brief quoted a different value; the RFC and
 * every implementation agree on this one). */
static void test_accept(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *accept = api_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(accept, ==, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    static const char *const bad[] = {"",
                                      "dGhlIHNhbXBsZSBub25jZQ=",   /* short */
                                      "dGhlIHNhbXBsZSBub25jZQ===", /* long */
                                      "dGhlIHNhbXBsZSBub25jZ*==",  /* not base64 */
                                      "aGVsbG8gd29ybGQ=",          /* 11 bytes */
                                      "dGhlIHNhbXBsZSBub25jZSE="}; /* 17 bytes */
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) bad_error = NULL;
        g_assert_false(api_ws_key_valid(bad[i]));
        g_assert_null(api_ws_accept(bad[i], &bad_error));
        g_assert_error(bad_error, API_ERROR, API_ERROR_INVALID);
    }
    g_assert_false(api_ws_key_valid(NULL));
    g_autofree char *key = api_ws_key_new();
    g_autofree char *other = api_ws_key_new();
    g_assert_true(api_ws_key_valid(key));
    g_assert_cmpstr(key, !=, other);
}

static const guint8 hello_unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const guint8 hello_masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                      0x7f, 0x9f, 0x4d, 0x51, 0x58};

/* The examples of RFC 6455 5.7, each fed whole and a byte at a time. */
static void test_rfc_examples(void)
{
    for (gsize step = 1; step <= 64; step += 63) {
        g_autoptr(GError) error = NULL;
        gboolean ok;
        g_autoptr(ApiWsDecoder) client = decode_in_steps(FALSE, 1 << 20, hello_unmasked,
                                                         sizeof(hello_unmasked), step, &error, &ok);
        g_assert_no_error(error);
        assert_message(client, API_WS_TEXT, "Hello", 5);
        g_assert_null(api_ws_decoder_pop(client));

        g_autoptr(ApiWsDecoder) server =
            decode_in_steps(TRUE, 1 << 20, hello_masked, sizeof(hello_masked), step, &error, &ok);
        g_assert_no_error(error);
        assert_message(server, API_WS_TEXT, "Hello", 5);

        /* A fragmented unmasked text message, then a ping. */
        static const guint8 fragments[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c,
                                           0x6f, 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
        g_autoptr(ApiWsDecoder) frag =
            decode_in_steps(FALSE, 1 << 20, fragments, sizeof(fragments), step, &error, &ok);
        g_assert_no_error(error);
        assert_message(frag, API_WS_TEXT, "Hello", 5);
        assert_message(frag, API_WS_PING, "Hello", 5);

        /* A masked pong. */
        guint8 pong[sizeof(hello_masked)];
        memcpy(pong, hello_masked, sizeof(pong));
        pong[0] = 0x8a;
        g_autoptr(ApiWsDecoder) pong_decoder =
            decode_in_steps(TRUE, 1 << 20, pong, sizeof(pong), step, &error, &ok);
        g_assert_no_error(error);
        assert_message(pong_decoder, API_WS_PONG, "Hello", 5);

        /* 256 bytes (16-bit length) and 64 KiB (64-bit length), unmasked binary. */
        for (gsize size = 256; size <= 65536; size *= 256) {
            g_autoptr(GByteArray) frame = g_byte_array_new();
            guint8 head16[] = {0x82, 0x7e, 0x01, 0x00};
            guint8 head64[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00};
            if (size == 256)
                g_byte_array_append(frame, head16, sizeof(head16));
            else
                g_byte_array_append(frame, head64, sizeof(head64));
            g_autofree guint8 *payload = g_malloc(size);
            for (gsize i = 0; i < size; i++)
                payload[i] = (guint8)(i * 7);
            g_byte_array_append(frame, payload, (guint)size);
            g_autoptr(ApiWsDecoder) big =
                decode_in_steps(FALSE, 1 << 20, frame->data, frame->len, step * 997, &error, &ok);
            g_assert_no_error(error);
            assert_message(big, API_WS_BINARY, payload, size);

            /* The encoder writes exactly these frames. */
            g_autoptr(GByteArray) encoded = g_byte_array_new();
            api_ws_frame_encode(encoded, API_WS_BINARY, TRUE, payload, size, FALSE);
            g_assert_cmpmem(encoded->data, encoded->len, frame->data, frame->len);
        }
    }
    g_autoptr(GByteArray) encoded = g_byte_array_new();
    api_ws_frame_encode(encoded, API_WS_TEXT, TRUE, "Hello", 5, FALSE);
    g_assert_cmpmem(encoded->data, encoded->len, hello_unmasked, sizeof(hello_unmasked));
}

/* Masked frames decode back to what was encoded, whatever the key; every
 * split of the stream gives the same messages. */
static void test_round_trip(void)
{
    g_autoptr(GByteArray) stream = g_byte_array_new();
    g_autoptr(GByteArray) expected = g_byte_array_new();
    for (guint i = 0; i < 200; i++) {
        g_autofree char *text = g_strdup_printf("line %u: %s", i, i % 3 ? "héllo" : "");
        api_ws_frame_encode(stream, API_WS_TEXT, TRUE, text, strlen(text), TRUE);
    }
    /* A binary message in three fragments with a ping between them. */
    api_ws_frame_encode(stream, API_WS_BINARY, FALSE, "ab", 2, TRUE);
    api_ws_frame_encode(stream, API_WS_CONTINUATION, FALSE, "cd", 2, TRUE);
    api_ws_frame_encode(stream, API_WS_PING, TRUE, "p", 1, TRUE);
    api_ws_frame_encode(stream, API_WS_CONTINUATION, TRUE, "ef", 2, TRUE);
    api_ws_frame_encode(stream, API_WS_BINARY, TRUE, NULL, 0, TRUE);
    api_ws_close_encode(stream, 1000, "bye", TRUE);

    for (gsize step = 1; step < 40; step += 3) {
        g_autoptr(GError) error = NULL;
        gboolean ok;
        g_autoptr(ApiWsDecoder) decoder =
            decode_in_steps(TRUE, 1024, stream->data, stream->len, step, &error, &ok);
        g_assert_no_error(error);
        g_assert_true(ok);
        for (guint i = 0; i < 200; i++) {
            g_autofree char *text = g_strdup_printf("line %u: %s", i, i % 3 ? "héllo" : "");
            assert_message(decoder, API_WS_TEXT, text, strlen(text));
        }
        assert_message(decoder, API_WS_PING, "p", 1);
        assert_message(decoder, API_WS_BINARY, "abcdef", 6);
        assert_message(decoder, API_WS_BINARY, "", 0);
        g_autoptr(ApiWsMessage) close = api_ws_decoder_pop(decoder);
        g_assert_cmpint(close->opcode, ==, API_WS_CLOSE);
        g_assert_cmpuint(close->close_code, ==, 1000);
        g_assert_cmpstr(close->close_reason, ==, "bye");
        g_assert_null(api_ws_decoder_pop(decoder));
        g_assert_cmpuint(api_ws_decoder_pending(decoder), ==, 0);
    }
}

/* A close without a code, and a reason cut at a character boundary. */
static void test_close(void)
{
    g_autoptr(GByteArray) stream = g_byte_array_new();
    api_ws_close_encode(stream, 0, "ignored", FALSE);
    g_assert_cmpuint(stream->len, ==, 2);
    g_autoptr(GString) long_reason = g_string_new(NULL);
    for (int i = 0; i < 100; i++)
        g_string_append(long_reason, "é");
    api_ws_close_encode(stream, 1001, long_reason->str, FALSE);

    g_autoptr(GError) error = NULL;
    g_autoptr(ApiWsDecoder) decoder = api_ws_decoder_new(FALSE, 16);
    g_assert_true(api_ws_decoder_feed(decoder, stream->data, stream->len, &error));
    g_autoptr(ApiWsMessage) none = api_ws_decoder_pop(decoder);
    g_assert_cmpuint(none->close_code, ==, 1005);
    g_assert_cmpstr(none->close_reason, ==, "");
    g_autoptr(ApiWsMessage) cut = api_ws_decoder_pop(decoder);
    g_assert_cmpuint(cut->close_code, ==, 1001);
    g_assert_true(g_utf8_validate(cut->close_reason, -1, NULL));
    g_assert_cmpuint(strlen(cut->close_reason), ==, 122); /* 61 two-byte characters */
}

typedef struct {
    const char *name;
    gboolean server;
    guint8 bytes[16];
    gsize len;
    guint16 code;
} Rejection;

/* Every violation, with the close code RFC 6455 names for it. */
static void test_rejections(void)
{
    static const Rejection cases[] = {
        {"rsv1", FALSE, {0xc1, 0x00}, 2, 1002},
        {"rsv2", FALSE, {0xa1, 0x00}, 2, 1002},
        {"rsv3", FALSE, {0x91, 0x00}, 2, 1002},
        {"opcode 3", FALSE, {0x83, 0x00}, 2, 1002},
        {"opcode 7", FALSE, {0x87, 0x00}, 2, 1002},
        {"opcode B", FALSE, {0x8b, 0x00}, 2, 1002},
        {"opcode F", FALSE, {0x8f, 0x00}, 2, 1002},
        {"unmasked to a server", TRUE, {0x81, 0x00}, 2, 1002},
        {"masked to a client", FALSE, {0x81, 0x80, 1, 2, 3, 4}, 6, 1002},
        {"fragmented ping", FALSE, {0x09, 0x00}, 2, 1002},
        {"fragmented close", FALSE, {0x08, 0x00}, 2, 1002},
        {"ping of 126 bytes", FALSE, {0x89, 0x7e, 0x00, 0x7e}, 4, 1002},
        {"lonely continuation", FALSE, {0x80, 0x00}, 2, 1002},
        {"text inside a message", FALSE, {0x01, 0x00, 0x81, 0x00}, 4, 1002},
        {"binary inside a message", FALSE, {0x02, 0x00, 0x82, 0x00}, 4, 1002},
        {"16-bit length under 126", FALSE, {0x82, 0x7e, 0x00, 0x7d}, 4, 1002},
        {"64-bit length under 65536", FALSE, {0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 10, 1002},
        {"64-bit length top bit", FALSE, {0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0}, 10, 1002},
        {"over the bound", FALSE, {0x82, 0x7f, 0, 0, 0, 0, 0x10, 0, 0, 0}, 10, 1009},
        {"text not UTF-8", FALSE, {0x81, 0x02, 0xc3, 0x28}, 4, 1007},
        {"close of one byte", FALSE, {0x88, 0x01, 0x03}, 3, 1002},
        {"close code 999", FALSE, {0x88, 0x02, 0x03, 0xe7}, 4, 1002},
        {"close code 1005", FALSE, {0x88, 0x02, 0x03, 0xed}, 4, 1002},
        {"close code 1006", FALSE, {0x88, 0x02, 0x03, 0xee}, 4, 1002},
        {"close code 1015", FALSE, {0x88, 0x02, 0x03, 0xf7}, 4, 1002},
        {"close code 2000", FALSE, {0x88, 0x02, 0x07, 0xd0}, 4, 1002},
        {"close code 5000", FALSE, {0x88, 0x02, 0x13, 0x88}, 4, 1002},
        {"close reason not UTF-8", FALSE, {0x88, 0x03, 0x03, 0xe8, 0xff}, 5, 1007},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        const Rejection *c = &cases[i];
        for (gsize step = 1; step <= c->len; step += c->len - 1) {
            g_autoptr(GError) error = NULL;
            gboolean ok;
            g_test_message("%s, in steps of %zu", c->name, step);
            g_autoptr(ApiWsDecoder) decoder =
                decode_in_steps(c->server, 4096, c->bytes, c->len, step, &error, &ok);
            g_assert_false(ok);
            g_assert_error(error, API_ERROR, API_ERROR_INVALID);
            g_assert_cmpuint(api_ws_decoder_close_code(decoder), ==, c->code);
            /* Nothing is accepted afterwards. */
            g_autoptr(GError) after = NULL;
            g_assert_false(api_ws_decoder_feed(decoder, hello_unmasked, 2, &after));
            g_assert_error(after, API_ERROR, API_ERROR_INVALID);
            g_assert_cmpuint(api_ws_decoder_pending(decoder), ==, 0);
        }
    }
    /* Fragments count together against the bound. */
    g_autoptr(ApiWsDecoder) fragments = api_ws_decoder_new(FALSE, 4096);
    g_autoptr(GByteArray) stream = g_byte_array_new();
    g_autofree guint8 *part = g_malloc0(3000);
    api_ws_frame_encode(stream, API_WS_BINARY, FALSE, part, 3000, FALSE);
    api_ws_frame_encode(stream, API_WS_CONTINUATION, TRUE, part, 2000, FALSE);
    g_autoptr(GError) error = NULL;
    g_assert_false(api_ws_decoder_feed(fragments, stream->data, stream->len, &error));
    g_assert_cmpuint(api_ws_decoder_close_code(fragments), ==, 1009);
    g_clear_error(&error);

    /* A message completed before the violation is still handed out. */
    g_autoptr(ApiWsDecoder) decoder = api_ws_decoder_new(FALSE, 64);
    guint8 bytes[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o', 0xc1, 0x00};
    g_assert_false(api_ws_decoder_feed(decoder, bytes, sizeof(bytes), &error));
    assert_message(decoder, API_WS_TEXT, "Hello", 5);
    /* The bound is checked from the header alone: nothing is buffered. */
    g_autoptr(ApiWsDecoder) bounded = api_ws_decoder_new(TRUE, 10);
    guint8 header[] = {0x82, 0x8b, 1, 2, 3, 4};
    g_clear_error(&error);
    g_assert_false(api_ws_decoder_feed(bounded, header, 2, &error));
    g_assert_cmpuint(api_ws_decoder_close_code(bounded), ==, 1009);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/websocket/accept", test_accept);
    g_test_add_func("/websocket/rfc-examples", test_rfc_examples);
    g_test_add_func("/websocket/round-trip", test_round_trip);
    g_test_add_func("/websocket/close", test_close);
    g_test_add_func("/websocket/rejections", test_rejections);
    return g_test_run();
}
