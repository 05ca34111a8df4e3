/* api/websocket's decoder, the parser of every byte a console client (or,
 * for turtlectl, a server) sends after the upgrade.  The first input byte
 * picks the side and how the rest is split into chunks; the same stream
 * must decode to the same messages and the same verdict whatever the
 * split, every message must respect the bounds, and a message handed out
 * must encode back to frames that decode to it again. */
#include <string.h>

#include "api/websocket.h"
#include "tests/fuzz/fuzz-util.h"

#define MAX_MESSAGE 4096

typedef struct {
    GPtrArray *messages; /* ApiWsMessage */
    gboolean ok;
    guint16 close_code;
} Outcome;

static Outcome decode(gboolean server, const guint8 *data, gsize size, gsize step)
{
    g_autoptr(ApiWsDecoder) decoder = api_ws_decoder_new(server, MAX_MESSAGE);
    Outcome outcome = {g_ptr_array_new_with_free_func((GDestroyNotify)api_ws_message_free), TRUE,
                       0};
    for (gsize i = 0; i < size && outcome.ok; i += step) {
        outcome.ok = api_ws_decoder_feed(decoder, data + i, MIN(step, size - i), NULL);
        ApiWsMessage *message;
        while ((message = api_ws_decoder_pop(decoder)) != NULL)
            g_ptr_array_add(outcome.messages, message);
        FUZZ_CHECK(api_ws_decoder_pending(decoder) <= MAX_MESSAGE + step + 14,
                   "the decoder holds %zu bytes", api_ws_decoder_pending(decoder));
    }
    outcome.close_code = api_ws_decoder_close_code(decoder);
    FUZZ_CHECK(outcome.ok == (outcome.close_code == 0), "verdict and close code disagree");
    return outcome;
}

static void check_message(const ApiWsMessage *message)
{
    gsize len = g_bytes_get_size(message->payload);
    switch (message->opcode) {
    case API_WS_TEXT:
        FUZZ_CHECK(g_utf8_validate_len(g_bytes_get_data(message->payload, NULL), len, NULL),
                   "a text message that is not UTF-8");
        /* fall through */
    case API_WS_BINARY:
        FUZZ_CHECK(len <= MAX_MESSAGE, "a message of %zu bytes", len);
        break;
    case API_WS_CLOSE:
    case API_WS_PING:
    case API_WS_PONG:
        FUZZ_CHECK(len <= API_WS_CONTROL_MAX, "a control frame of %zu bytes", len);
        break;
    default:
        FUZZ_FAIL("opcode %d handed out", message->opcode);
    }
}

/* A message encoded by the other side decodes to itself. */
static void check_round_trip(gboolean server, const ApiWsMessage *message)
{
    gsize len = 0;
    const guint8 *payload = g_bytes_get_data(message->payload, &len);
    g_autoptr(GByteArray) frames = g_byte_array_new();
    api_ws_frame_encode(frames, message->opcode, TRUE, payload, len, server);
    g_autoptr(ApiWsDecoder) decoder = api_ws_decoder_new(server, MAX_MESSAGE);
    FUZZ_CHECK(api_ws_decoder_feed(decoder, frames->data, frames->len, NULL),
               "the decoder refuses the encoder's frame");
    g_autoptr(ApiWsMessage) again = api_ws_decoder_pop(decoder);
    FUZZ_CHECK(again != NULL && again->opcode == message->opcode &&
                   g_bytes_equal(again->payload, message->payload),
               "a message does not survive encode -> decode");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    gboolean server = (data[0] & 0x80) != 0;
    gsize step = (data[0] & 0x7f) + 1;
    data++;
    size--;

    Outcome whole = decode(server, data, size, size > 0 ? size : 1);
    Outcome split = decode(server, data, size, step);
    FUZZ_CHECK(whole.ok == split.ok && whole.close_code == split.close_code,
               "the verdict depends on the split (%u vs %u)", whole.close_code, split.close_code);
    FUZZ_CHECK(whole.messages->len == split.messages->len,
               "the split changes the message count (%u vs %u)", whole.messages->len,
               split.messages->len);
    for (guint i = 0; i < whole.messages->len; i++) {
        const ApiWsMessage *a = whole.messages->pdata[i];
        const ApiWsMessage *b = split.messages->pdata[i];
        FUZZ_CHECK(a->opcode == b->opcode && g_bytes_equal(a->payload, b->payload) &&
                       a->close_code == b->close_code,
                   "message %u depends on the split", i);
        check_message(a);
        check_round_trip(server, a);
    }
    g_ptr_array_unref(whole.messages);
    g_ptr_array_unref(split.messages);
    return 0;
}
