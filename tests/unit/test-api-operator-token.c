/* api/operator_token: operator tokens on the wire, decoded strictly. */
#include "api/operator_token.h"
#include "tests/unit/api-test-util.h"

#define VALID_TOKEN                                                                                \
    "{\"id\":\"0b7e4c1a-2f3d-4e5b-8a6c-7d8e9f0a1b2c\",\"scope\":\"metrics\","                      \
    "\"description\":\"prometheus\",\"created_at\":\"2024-05-01T12:00:00Z\"}"
#define VALID_CREATE "{\"scope\":\"admin\",\"description\":\"ops laptop\"}"
#define SECRET       "tt_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_create(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) body = parse(VALID_CREATE);
    g_autoptr(ApiOperatorToken) token = api_operator_token_create_from_json(body, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(token->scope, ==, "admin");
    g_assert_cmpstr(token->description, ==, "ops laptop");
    g_assert_null(token->id);

    g_autoptr(json_object) bare = parse("{\"scope\":\"metrics\"}");
    g_autoptr(ApiOperatorToken) plain = api_operator_token_create_from_json(bare, &error);
    g_assert_no_error(error);
    g_assert_null(plain->description);
}

static const Mutation create_bad[] = {
    {"scope", NULL, "scope"},
    {"scope", "\"root\"", "scope"},
    {"scope", "\"Admin\"", "scope"},
    {"scope", "1", "scope"},
    {"scope", "null", "scope"},
    {"description", "3", "description"},
    {"description", "null", "description"},
    {"description", "\"line\\nbreak\"", "description"},
    {"description", "\"esc\\u001b[2J\"", "description"},
    {"tenant", "\"acme\"", "tenant"},
};

static void test_create_bad(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(create_bad); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) body = mutate(VALID_CREATE, &create_bad[i]);
        g_assert_null(api_operator_token_create_from_json(body, &error));
        assert_invalid(error, create_bad[i].field);
    }
    /* 256 bytes is the limit, in bytes: 128 two-byte characters fit, one more does not. */
    g_autoptr(GString) text = g_string_new("{\"scope\":\"admin\",\"description\":\"");
    for (int i = 0; i < 128; i++)
        g_string_append(text, "\xC3\xA9");
    g_autofree char *fits = g_strconcat(text->str, "\"}", NULL);
    g_autofree char *over = g_strconcat(text->str, "x\"}", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) fits_body = parse(fits);
    g_autoptr(ApiOperatorToken) ok = api_operator_token_create_from_json(fits_body, &error);
    g_assert_no_error(error);
    g_autoptr(json_object) over_body = parse(over);
    g_assert_null(api_operator_token_create_from_json(over_body, &error));
    assert_invalid(error, "description");
}

static void test_round_trip(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) body = parse(VALID_TOKEN);
    g_autoptr(ApiOperatorToken) token = api_operator_token_from_json(body, &error);
    g_assert_no_error(error);
    token->secret = g_strdup(SECRET);
    g_autoptr(json_object) encoded = api_operator_token_to_json(token);
    g_autoptr(ApiOperatorToken) back = api_operator_token_from_json(encoded, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(back->id, ==, token->id);
    g_assert_cmpstr(back->secret, ==, SECRET);
    g_assert_cmpstr(back->scope, ==, "metrics");
    g_assert_cmpstr(back->description, ==, "prometheus");
    g_assert_cmpstr(back->created_at, ==, token->created_at);

    /* No description: null on the wire, not left out. */
    g_clear_pointer(&token->description, g_free);
    g_autoptr(json_object) none = api_operator_token_to_json(token);
    json_object *description = NULL;
    g_assert_true(json_object_object_get_ex(none, "description", &description));
    g_assert_null(description);
}

static void test_list_refuses_secrets(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) page = parse("{\"tokens\":[" VALID_TOKEN "],\"next\":\"abc\"}");
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) tokens = api_operator_token_list_from_json(page, &next, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(tokens->len, ==, 1);
    g_assert_cmpstr(next, ==, "abc");

    g_autoptr(json_object) leaky = parse("{\"tokens\":[{\"id\":\"0b7e4c1a-2f3d-4e5b-8a6c-"
                                         "7d8e9f0a1b2c\",\"secret\":\"" SECRET "\",\"scope\":"
                                         "\"admin\",\"description\":null,\"created_at\":"
                                         "\"2024-05-01T12:00:00Z\"}],\"next\":null}");
    g_autofree char *next2 = NULL;
    g_assert_null(api_operator_token_list_from_json(leaky, &next2, &error));
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    g_assert_nonnull(strstr(error->message, "secret"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/operator-token/create", test_create);
    g_test_add_func("/api/operator-token/create-bad", test_create_bad);
    g_test_add_func("/api/operator-token/round-trip", test_round_trip);
    g_test_add_func("/api/operator-token/list-refuses-secrets", test_list_refuses_secrets);
    return g_test_run();
}
