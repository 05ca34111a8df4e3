/* api/error_body: {"error":{"status","code","message"}} both ways. */
#include "api/error.h"
#include "api/error_body.h"
#include "api/json.h"

#include <string.h>

static json_object *parse(const char *text)
{
    g_autoptr(GError) error = NULL;
    json_object *value = api_json_parse(text, strlen(text), API_JSON_MAX_DEPTH, &error);
    g_assert_no_error(error);
    g_assert_nonnull(value);
    return value;
}

static void test_to_json_shape(void)
{
    g_autoptr(json_object) value =
        api_error_body_to_json(404, "not_found", "stack 'web' not found");
    g_autofree char *text = api_json_to_string(value);
    g_assert_cmpstr(text, ==,
                    "{\"error\":{\"status\":404,\"code\":\"not_found\","
                    "\"message\":\"stack 'web' not found\"}}");

    g_autoptr(json_object) no_message = api_error_body_to_json(500, "internal", NULL);
    g_autofree char *text2 = api_json_to_string(no_message);
    g_assert_cmpstr(text2, ==,
                    "{\"error\":{\"status\":500,\"code\":\"internal\",\"message\":\"\"}}");
}

/* A message quoting a client's bytes stays JSON: the body must parse. */
static void test_invalid_utf8_message(void)
{
    g_autoptr(json_object) value =
        api_error_body_to_json(404, "not_found", "no such path: /v1/\xff\xfe/x");
    g_autofree char *text = api_json_to_string(value);
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) back = api_json_parse(text, strlen(text), API_JSON_MAX_DEPTH, &error);
    g_assert_no_error(error);
    g_autofree char *message = NULL;
    g_assert_true(api_error_body_from_json(back, NULL, NULL, &message, &error));
    g_assert_cmpstr(message, ==, "no such path: /v1/\\xFF\\xFE/x");
}

/* Terminal escapes are shown, not sent; a huge echo is cut at a character. */
static void test_message_clean(void)
{
    g_autofree char *escaped = api_error_message_clean("bad \x1b[31mname\x7f\n\tok \xc3\xa9");
    g_assert_cmpstr(escaped, ==, "bad \\x1B[31mname\\x7F\n\tok \xc3\xa9");

    g_autofree char *huge = g_strnfill(200 * 1024, 'a');
    g_autofree char *cut = api_error_message_clean(huge);
    g_assert_cmpuint(strlen(cut), ==, API_ERROR_MESSAGE_MAX + 3);
    g_assert_true(g_str_has_suffix(cut, "..."));

    /* Never cut inside a character: 2-byte characters across the limit. */
    g_autoptr(GString) wide = g_string_new("x");
    for (int i = 0; i < API_ERROR_MESSAGE_MAX; i++)
        g_string_append(wide, "\xc3\xa9");
    g_autofree char *wide_cut = api_error_message_clean(wide->str);
    g_assert_true(g_utf8_validate(wide_cut, -1, NULL));
    g_autofree char *empty = api_error_message_clean(NULL);
    g_assert_cmpstr(empty, ==, "");
}

static void test_round_trip(void)
{
    static const struct {
        int status;
        const char *code;
        const char *message;
    } table[] = {
        {400, "bad_request", "quota.vcpus: must be between 0 and 100000"},
        {403, "quota_exceeded", "vcpus: 12 of 8 in use"},
        {404, "not_found", "stack 'web' not found"},
        {409, "conflict", "tenant \"acme\" owns stacks\n\tand images \xc3\xa9"},
        {599, "unavailable", ""},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(table); i++) {
        g_autoptr(json_object) encoded =
            api_error_body_to_json(table[i].status, table[i].code, table[i].message);
        g_autofree char *text = api_json_to_string(encoded);
        g_autoptr(json_object) value = parse(text);
        g_autoptr(GError) error = NULL;
        int status = 0;
        g_autofree char *code = NULL;
        g_autofree char *message = NULL;
        g_assert_true(api_error_body_from_json(value, &status, &code, &message, &error));
        g_assert_no_error(error);
        g_assert_cmpint(status, ==, table[i].status);
        g_assert_cmpstr(code, ==, table[i].code);
        g_assert_cmpstr(message, ==, table[i].message);
    }
}

static void test_outputs_optional(void)
{
    g_autoptr(json_object) value =
        parse("{\"error\":{\"status\":401,\"code\":\"unauthorized\",\"message\":\"no token\"}}");
    g_autoptr(GError) error = NULL;
    int status = 0;
    g_assert_true(api_error_body_from_json(value, &status, NULL, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpint(status, ==, 401);

    g_autofree char *message = NULL;
    g_assert_true(api_error_body_from_json(value, NULL, NULL, &message, &error));
    g_assert_cmpstr(message, ==, "no token");
}

typedef struct {
    const char *body;
    const char *field;
} BadBody;

static const BadBody bad[] = {
    {"[]", "body"},
    {"\"not found\"", "body"},
    {"{}", "error"},
    {"{\"error\":null}", "error"},
    {"{\"error\":\"not_found\"}", "error"},
    {"{\"error\":{\"status\":404,\"code\":\"not_found\",\"message\":\"x\"},\"trace\":1}", "trace"},
    {"{\"error\":{\"status\":404,\"code\":\"not_found\",\"message\":\"x\",\"detail\":1}}",
     "error.detail"},
    {"{\"error\":{\"code\":\"not_found\",\"message\":\"x\"}}", "error.status"},
    {"{\"error\":{\"status\":404,\"message\":\"x\"}}", "error.code"},
    {"{\"error\":{\"status\":404,\"code\":\"not_found\"}}", "error.message"},
    {"{\"error\":{\"status\":\"404\",\"code\":\"not_found\",\"message\":\"x\"}}", "error.status"},
    {"{\"error\":{\"status\":404.0,\"code\":\"not_found\",\"message\":\"x\"}}", "error.status"},
    {"{\"error\":{\"status\":null,\"code\":\"not_found\",\"message\":\"x\"}}", "error.status"},
    {"{\"error\":{\"status\":404,\"code\":7,\"message\":\"x\"}}", "error.code"},
    {"{\"error\":{\"status\":404,\"code\":null,\"message\":\"x\"}}", "error.code"},
    {"{\"error\":{\"status\":404,\"code\":\"\",\"message\":\"x\"}}", "error.code"},
    {"{\"error\":{\"status\":404,\"code\":\"not_found\",\"message\":[]}}", "error.message"},
    {"{\"error\":{\"status\":404,\"code\":\"not_found\",\"message\":null}}", "error.message"},
    {"{\"error\":{\"status\":200,\"code\":\"ok\",\"message\":\"x\"}}", "error.status"},
    {"{\"error\":{\"status\":399,\"code\":\"x\",\"message\":\"x\"}}", "error.status"},
    {"{\"error\":{\"status\":600,\"code\":\"x\",\"message\":\"x\"}}", "error.status"},
    {"{\"error\":{\"status\":-404,\"code\":\"x\",\"message\":\"x\"}}", "error.status"},
    {"{\"error\":{\"status\":4294967700,\"code\":\"x\",\"message\":\"x\"}}", "error.status"},
};

static void test_from_json_bad(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_test_message("%s", bad[i].body);
        g_autoptr(json_object) value = parse(bad[i].body);
        g_autoptr(GError) error = NULL;
        int status = -7;
        char *code = NULL;
        char *message = NULL;
        g_assert_false(api_error_body_from_json(value, &status, &code, &message, &error));
        g_assert_error(error, API_ERROR, API_ERROR_INVALID);
        if (!strstr(error->message, bad[i].field))
            g_error("message \"%s\" does not name \"%s\"", error->message, bad[i].field);
        /* Nothing written on failure. */
        g_assert_cmpint(status, ==, -7);
        g_assert_null(code);
        g_assert_null(message);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/error-body/to-json-shape", test_to_json_shape);
    g_test_add_func("/api/error-body/round-trip", test_round_trip);
    g_test_add_func("/api/error-body/invalid-utf8-message", test_invalid_utf8_message);
    g_test_add_func("/api/error-body/message-clean", test_message_clean);
    g_test_add_func("/api/error-body/outputs-optional", test_outputs_optional);
    g_test_add_func("/api/error-body/from-json-bad", test_from_json_bad);
    return g_test_run();
}
