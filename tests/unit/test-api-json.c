/* api/json: the strict parser, the name rule and the decoding helpers every
 * wire model is built on. */
#include <string.h>

#include "api/error.h"
#include "api/json.h"

/* Test JSON is written with ' for " to stay readable. */
static char *dq(const char *text)
{
    char *copy = g_strdup(text);
    g_strdelimit(copy, "'", '"');
    return copy;
}

static json_object *parse_ok(const char *text)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *json = dq(text);
    json_object *value = api_json_parse(json, strlen(json), API_JSON_MAX_DEPTH, &error);
    g_assert_no_error(error);
    g_assert_nonnull(value);
    return value;
}

/* ---- api_json_parse ------------------------------------------------------- */

typedef struct {
    const char *text;
    size_t len; /* 0: strlen(text) */
    int code;
    const char *message; /* a substring the message must contain */
} BadParse;

static void test_parse_rejects(void)
{
    static const BadParse cases[] = {
        {"{", 0, API_ERROR_PARSE, "unexpected end of data"},
        {"{\"a\":}", 0, API_ERROR_PARSE, "offset"},
        {"{\"a\" 1}", 0, API_ERROR_PARSE, "offset"},
        {"[1,]", 0, API_ERROR_PARSE, "unexpected character"},
        {"{\"a\":1,}", 0, API_ERROR_PARSE, "unexpected character"},
        {"['a']", 0, API_ERROR_PARSE, "unexpected character"},
        {"tru", 0, API_ERROR_PARSE, "unexpected end of data"},
        {"True", 0, API_ERROR_PARSE, "invalid JSON"},
        {"01", 0, API_ERROR_PARSE, "invalid JSON"},
        {"+1", 0, API_ERROR_PARSE, "invalid JSON"},
        {"\"abc", 0, API_ERROR_PARSE, "unexpected end of data"},
        {"\"\xff\"", 0, API_ERROR_PARSE, "utf-8"},
        {"\"\x01\"", 0, API_ERROR_PARSE, "offset 1: control character"},
        {"{\"a\":\x1b}", 0, API_ERROR_PARSE, "offset 5: control character"},
        /* trailing garbage */
        {"{} x", 0, API_ERROR_PARSE, "offset 3"},
        {"{}{}", 0, API_ERROR_PARSE, "offset 2"},
        {"[1]]", 0, API_ERROR_PARSE, "offset 3"},
        {"1 2", 0, API_ERROR_PARSE, "offset 2"},
        {"true false", 0, API_ERROR_PARSE, "offset 5"},
        /* embedded NUL, inside and after the value */
        {"{}\0", 3, API_ERROR_PARSE, "offset 2: NUL byte"},
        {"{\"a\":\0 1}", 9, API_ERROR_PARSE, "offset 5: NUL byte"},
        {"\0{}", 3, API_ERROR_PARSE, "offset 0: NUL byte"},
        {"\"a\0b\"", 5, API_ERROR_PARSE, "NUL byte"},
        /* empty */
        {"", 0, API_ERROR_PARSE, "empty input"},
        {" \n\t\r ", 0, API_ERROR_PARSE, "empty input"},
        /* valid JSON, but no value to hand back */
        {"null", 0, API_ERROR_INVALID, "body: must not be null"},
        {" null ", 0, API_ERROR_INVALID, "body: must not be null"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        const BadParse *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->text);
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) value = api_json_parse(c->text, len, API_JSON_MAX_DEPTH, &error);
        g_test_message("case %zu: %s", i, error ? error->message : "(accepted)");
        g_assert_null(value);
        g_assert_error(error, API_ERROR, c->code);
        g_assert_nonnull(strstr(error->message, c->message));
    }
}

static void test_parse_accepts(void)
{
    static const struct {
        const char *text;
        json_type type;
        const char *canonical;
    } cases[] = {
        {"{}", json_type_object, "{}"},
        {"  {\"a\" : [1, true, null, \"x\"]}\n", json_type_object, "{\"a\":[1,true,null,\"x\"]}"},
        {"123", json_type_int, "123"},
        {" -7 ", json_type_int, "-7"},
        {"1.5", json_type_double, "1.5"},
        {"true", json_type_boolean, "true"},
        {"\"x\"", json_type_string, "\"x\""},
        {"[]\r\n\t ", json_type_array, "[]"},
        {"\"\xc3\xa9\"", json_type_string, "\"\xc3\xa9\""},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) value =
            api_json_parse(cases[i].text, strlen(cases[i].text), API_JSON_MAX_DEPTH, &error);
        g_assert_no_error(error);
        g_assert_cmpint(json_object_get_type(value), ==, cases[i].type);
        g_autofree char *text = api_json_to_string(value);
        g_assert_cmpstr(text, ==, cases[i].canonical);
    }
}

static void test_parse_exact_length(void)
{
    /* Only @len bytes count: what follows them is not input. */
    const char *buffer = "{\"a\":1}GARBAGE";
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) value = api_json_parse(buffer, 7, API_JSON_MAX_DEPTH, &error);
    g_assert_no_error(error);
    g_assert_true(json_object_is_type(value, json_type_object));

    /* A number cut short by @len is the number so far. */
    g_autoptr(json_object) number = api_json_parse("12345", 3, API_JSON_MAX_DEPTH, &error);
    g_assert_no_error(error);
    g_assert_cmpint(json_object_get_int64(number), ==, 123);

    g_autoptr(json_object) cut = api_json_parse("{\"a\":1}", 6, API_JSON_MAX_DEPTH, &error);
    g_assert_null(cut);
    g_assert_error(error, API_ERROR, API_ERROR_PARSE);
}

static char *nested_arrays(size_t depth, gboolean closed)
{
    GString *text = g_string_sized_new(2 * depth);
    for (size_t i = 0; i < depth; i++)
        g_string_append_c(text, '[');
    for (size_t i = 0; closed && i < depth; i++)
        g_string_append_c(text, ']');
    return g_string_free(text, FALSE);
}

static void test_parse_depth(void)
{
    /* Exactly at the limit is fine. */
    for (int limit = 1; limit <= API_JSON_MAX_DEPTH; limit += API_JSON_MAX_DEPTH - 1) {
        g_autofree char *text = nested_arrays(limit, TRUE);
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) value = api_json_parse(text, strlen(text), limit, &error);
        g_assert_no_error(error);
        g_assert_true(json_object_is_type(value, json_type_array));
    }
    {
        g_autofree char *text = nested_arrays(API_JSON_MAX_DEPTH, FALSE);
        g_autofree char *obj = g_strconcat(text, "{\"a\":1", NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(json_object) value = api_json_parse(obj, strlen(obj), API_JSON_MAX_DEPTH, &error);
        g_assert_null(value);
        g_assert_error(error, API_ERROR, API_ERROR_PARSE);
        g_assert_cmpstr(error->message, ==, "invalid JSON: nesting deeper than 32");
    }
    /* One past the limit, and far past it (no recursion, no stack overflow). */
    static const size_t depths[] = {API_JSON_MAX_DEPTH + 1, 100000};
    for (size_t i = 0; i < G_N_ELEMENTS(depths); i++) {
        for (int closed = 0; closed <= 1; closed++) {
            g_autofree char *text = nested_arrays(depths[i], closed);
            g_autoptr(GError) error = NULL;
            g_autoptr(json_object) value =
                api_json_parse(text, strlen(text), API_JSON_MAX_DEPTH, &error);
            g_assert_null(value);
            g_assert_error(error, API_ERROR, API_ERROR_PARSE);
            g_assert_cmpstr(error->message, ==, "invalid JSON: nesting deeper than 32");
        }
    }
}

static void test_to_string(void)
{
    g_autoptr(json_object) value = parse_ok("{ 'b' : [ 1 , null , 'x/y' ] , 'a' : { } }");
    g_autofree char *text = api_json_to_string(value);
    g_assert_cmpstr(text, ==, "{\"b\":[1,null,\"x/y\"],\"a\":{}}");
    g_autofree char *null_text = api_json_to_string(NULL);
    g_assert_cmpstr(null_text, ==, "null");
}

/* ---- names ------------------------------------------------------------------ */

static void test_name_rule(void)
{
    g_autofree char *max = g_strnfill(63, 'a');
    g_autofree char *too_long = g_strnfill(64, 'a');
    const char *good[] = {"a", "0", "web", "web-1", "1-2-3", "a--b", max};
    const char *bad[] = {NULL, "",    "Web_1", "web_1", "Web",      "-web",  "web-",
                         "-",  "a.b", "a b",   "a/b",   "\xc3\xa9", "web\n", too_long};
    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        g_test_message("good %s", good[i]);
        g_assert_true(api_name_is_valid(good[i]));
    }
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_test_message("bad %zu", i);
        g_assert_false(api_name_is_valid(bad[i]));
    }
}

/* ---- decoding helpers --------------------------------------------------------- */

static void assert_invalid(GError *error, const char *message)
{
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, message);
}

static void test_paths(void)
{
    g_autofree char *top = api_json_path_member("", "vcpus");
    g_autofree char *top_null = api_json_path_member(NULL, "vcpus");
    g_autofree char *nested = api_json_path_member("boot", "kernel");
    g_autofree char *index = api_json_path_index("devices", 3);
    g_autofree char *deep = api_json_path_member(index, "x");
    g_assert_cmpstr(top, ==, "vcpus");
    g_assert_cmpstr(top_null, ==, "vcpus");
    g_assert_cmpstr(nested, ==, "boot.kernel");
    g_assert_cmpstr(index, ==, "devices[3]");
    g_assert_cmpstr(deep, ==, "devices[3].x");

    g_autoptr(GError) error = NULL;
    api_json_set_invalid(&error, "", "must be an %s", "object");
    assert_invalid(error, "body: must be an object");
    api_json_set_invalid(NULL, "x", "ignored"); /* no error wanted: no crash */
}

static void test_get_int(void)
{
    g_autoptr(json_object) obj = parse_ok("{'ok':5,'neg':-3,'str':'2','dbl':1.5,'whole':2.0,"
                                          "'bool':true,'null':null,'big':1099511627776,"
                                          "'u64':18446744073709551615,'arr':[1],'obj':{}}");
    static const struct {
        const char *key;
        const char *message;
    } bad[] = {
        {"str", "x.str: must be an integer"},
        {"dbl", "x.dbl: must be an integer"},
        {"whole", "x.whole: must be an integer"},
        {"bool", "x.bool: must be an integer"},
        {"null", "x.null: must be an integer"},
        {"arr", "x.arr: must be an integer"},
        {"obj", "x.obj: must be an integer"},
        {"neg", "x.neg: must be between 0 and 2147483647"},
        {"big", "x.big: must be between 0 and 2147483647"},
        {"u64", "x.u64: must be between 0 and 2147483647"},
        {"missing", "x.missing: is required"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        gint64 out = 42;
        g_assert_false(
            api_json_get_int(obj, "x", bad[i].key, API_JSON_REQUIRED, 0, G_MAXINT, &out, &error));
        assert_invalid(error, bad[i].message);
        g_assert_cmpint(out, ==, 42);
    }

    g_autoptr(GError) error = NULL;
    gint64 out = 42;
    g_assert_true(api_json_get_int(obj, "", "ok", API_JSON_REQUIRED, 5, 5, &out, &error));
    g_assert_cmpint(out, ==, 5);
    g_assert_true(api_json_get_int(obj, "", "big", API_JSON_REQUIRED, 0, G_MAXINT64, &out, &error));
    g_assert_cmpint(out, ==, G_GINT64_CONSTANT(1) << 40);
    g_assert_true(api_json_get_int(obj, "", "neg", API_JSON_REQUIRED, -3, 0, &out, &error));
    g_assert_cmpint(out, ==, -3);
    /* Absent and optional: the preset default stays. */
    out = 42;
    g_assert_true(api_json_get_int(obj, "", "missing", API_JSON_OPTIONAL, 0, 9, &out, &error));
    g_assert_cmpint(out, ==, 42);
    /* Nullable: null is "unknown", which the message also offers. */
    g_assert_true(api_json_get_int(obj, "", "null", API_JSON_NULLABLE, 0, 9, &out, &error));
    g_assert_cmpint(out, ==, API_JSON_UNKNOWN);
    g_assert_no_error(error);
    g_assert_false(api_json_get_int(obj, "", "str", API_JSON_NULLABLE, 0, 9, &out, &error));
    assert_invalid(error, "str: must be an integer or null");
    g_clear_error(&error);
    /* Range edges. */
    g_assert_false(api_json_get_int(obj, "", "ok", API_JSON_REQUIRED, 6, 9, &out, &error));
    assert_invalid(error, "ok: must be between 6 and 9");
    g_clear_error(&error);
    g_assert_false(api_json_get_int(obj, "", "ok", API_JSON_REQUIRED, 0, 4, &out, &error));
    assert_invalid(error, "ok: must be between 0 and 4");
}

static void test_get_string(void)
{
    g_autoptr(json_object) obj =
        parse_ok("{'s':'text','empty':'','nul':'a\\u0000b','num':1,'null':null,'arr':[]}");
    g_autoptr(GError) error = NULL;
    g_autofree char *out = g_strdup("default");

    g_assert_true(api_json_get_string(obj, "", "missing", API_JSON_OPTIONAL, &out, &error));
    g_assert_cmpstr(out, ==, "default");
    g_assert_true(api_json_get_string(obj, "", "s", API_JSON_REQUIRED, &out, &error));
    g_assert_cmpstr(out, ==, "text");
    g_assert_true(api_json_get_string(obj, "", "empty", API_JSON_REQUIRED, &out, &error));
    g_assert_cmpstr(out, ==, "");
    g_assert_true(api_json_get_string(obj, "", "null", API_JSON_NULLABLE, &out, &error));
    g_assert_null(out);
    g_assert_no_error(error);

    static const struct {
        const char *key;
        ApiJsonFlags flags;
        const char *message;
    } bad[] = {
        {"num", API_JSON_REQUIRED, "p.num: must be a string"},
        {"arr", API_JSON_NULLABLE, "p.arr: must be a string or null"},
        {"null", API_JSON_REQUIRED, "p.null: must be a string"},
        {"nul", API_JSON_REQUIRED, "p.nul: must not contain NUL characters"},
        {"missing", API_JSON_REQUIRED, "p.missing: is required"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        g_autofree char *value = g_strdup("kept");
        g_assert_false(api_json_get_string(obj, "p", bad[i].key, bad[i].flags, &value, &err));
        assert_invalid(err, bad[i].message);
        g_assert_cmpstr(value, ==, "kept");
    }
}

static void test_get_bool_and_tristate(void)
{
    g_autoptr(json_object) obj =
        parse_ok("{'t':true,'f':false,'null':null,'one':1,'zero':0,'str':'true'}");
    g_autoptr(GError) error = NULL;
    gboolean flag = FALSE;
    int tri = 7;

    g_assert_true(api_json_get_bool(obj, "", "t", API_JSON_REQUIRED, &flag, &error));
    g_assert_true(flag);
    g_assert_true(api_json_get_bool(obj, "", "f", API_JSON_REQUIRED, &flag, &error));
    g_assert_false(flag);
    g_assert_true(api_json_get_tristate(obj, "", "t", API_JSON_REQUIRED, &tri, &error));
    g_assert_cmpint(tri, ==, 1);
    g_assert_true(api_json_get_tristate(obj, "", "f", API_JSON_REQUIRED, &tri, &error));
    g_assert_cmpint(tri, ==, 0);
    g_assert_true(api_json_get_tristate(obj, "", "null", API_JSON_REQUIRED, &tri, &error));
    g_assert_cmpint(tri, ==, API_JSON_UNKNOWN);
    tri = 7;
    g_assert_true(api_json_get_tristate(obj, "", "missing", API_JSON_OPTIONAL, &tri, &error));
    g_assert_cmpint(tri, ==, 7);
    g_assert_no_error(error);

    static const char *const not_bool[] = {"null", "one", "zero", "str"};
    for (size_t i = 0; i < G_N_ELEMENTS(not_bool); i++) {
        g_autoptr(GError) err = NULL;
        g_autofree char *expect = g_strdup_printf("%s: must be a boolean", not_bool[i]);
        flag = TRUE;
        g_assert_false(api_json_get_bool(obj, "", not_bool[i], API_JSON_REQUIRED, &flag, &err));
        assert_invalid(err, expect);
        g_assert_true(flag);
    }
    static const char *const not_tri[] = {"one", "zero", "str"};
    for (size_t i = 0; i < G_N_ELEMENTS(not_tri); i++) {
        g_autoptr(GError) err = NULL;
        g_autofree char *expect = g_strdup_printf("k.%s: must be a boolean or null", not_tri[i]);
        g_assert_false(api_json_get_tristate(obj, "k", not_tri[i], API_JSON_REQUIRED, &tri, &err));
        assert_invalid(err, expect);
    }
    g_autoptr(GError) err = NULL;
    g_assert_false(api_json_get_tristate(obj, "k", "missing", API_JSON_REQUIRED, &tri, &err));
    assert_invalid(err, "k.missing: is required");
}

static void test_objects_and_arrays(void)
{
    static const char *const keys[] = {"a", "b", NULL};
    static const char *const none[] = {NULL};
    g_autoptr(json_object) obj =
        parse_ok("{'sub':{'a':1},'bad':{'a':1,'zz':2},'arr':[1,2],'str':'x','null':null}");
    g_autoptr(GError) error = NULL;
    json_object *out = NULL;

    g_assert_true(api_json_get_object(obj, "", "sub", API_JSON_REQUIRED, keys, &out, &error));
    g_assert_true(out == json_object_object_get(obj, "sub"));
    out = NULL;
    g_assert_true(api_json_get_object(obj, "", "missing", API_JSON_OPTIONAL, keys, &out, &error));
    g_assert_null(out);
    g_assert_true(api_json_get_array(obj, "", "arr", API_JSON_REQUIRED, &out, &error));
    g_assert_cmpint(json_object_array_length(out), ==, 2);
    out = obj;
    g_assert_true(api_json_get_object(obj, "", "null", API_JSON_NULLABLE, keys, &out, &error));
    g_assert_null(out);
    g_assert_no_error(error);

    g_assert_false(api_json_get_object(obj, "top", "bad", API_JSON_REQUIRED, keys, &out, &error));
    assert_invalid(error, "top.bad.zz: unknown field");
    g_clear_error(&error);
    g_assert_false(api_json_get_object(obj, "", "arr", API_JSON_REQUIRED, keys, &out, &error));
    assert_invalid(error, "arr: must be an object");
    g_clear_error(&error);
    g_assert_false(api_json_get_object(obj, "", "null", API_JSON_REQUIRED, keys, &out, &error));
    assert_invalid(error, "null: must be an object");
    g_clear_error(&error);
    g_assert_false(api_json_get_object(obj, "", "gone", API_JSON_REQUIRED, keys, &out, &error));
    assert_invalid(error, "gone: is required");
    g_clear_error(&error);
    g_assert_false(api_json_get_array(obj, "", "sub", API_JSON_REQUIRED, &out, &error));
    assert_invalid(error, "sub: must be an array");
    g_clear_error(&error);
    g_assert_false(api_json_get_array(obj, "", "null", API_JSON_REQUIRED, &out, &error));
    assert_invalid(error, "null: must be an array");
    g_clear_error(&error);

    /* The top level itself. */
    g_autoptr(json_object) arr = parse_ok("[]");
    g_assert_false(api_json_check_object(arr, "", keys, &error));
    assert_invalid(error, "body: must be an object");
    g_clear_error(&error);
    g_assert_false(api_json_check_object(NULL, "", keys, &error));
    assert_invalid(error, "body: must be an object");
    g_clear_error(&error);
    g_assert_false(api_json_check_object(obj, "", none, &error));
    assert_invalid(error, "sub: unknown field");
    g_clear_error(&error);

    /* A hostile key is cut short in the message. */
    g_autofree char *long_key = g_strnfill(1000, 'k');
    g_autoptr(json_object) hostile = json_object_new_object();
    json_object_object_add(hostile, long_key, NULL);
    g_assert_false(api_json_check_object(hostile, "", keys, &error));
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    g_assert_true(g_str_has_prefix(error->message, "kkkk"));
    g_assert_nonnull(strstr(error->message, "...: unknown field"));
    g_assert_cmpuint(strlen(error->message), <, 100);
}

static void test_value_rules(void)
{
    static const char *const choices[] = {"none", "intel", "virtio", NULL};
    g_autoptr(GError) error = NULL;

    g_assert_true(api_json_check_choice("iommu", "intel", choices, &error));
    g_assert_false(api_json_check_choice("iommu", "Intel", choices, &error));
    assert_invalid(error, "iommu: must be one of none, intel, virtio");
    g_clear_error(&error);
    g_assert_false(api_json_check_choice("iommu", NULL, choices, &error));
    assert_invalid(error, "iommu: must be one of none, intel, virtio");
    g_clear_error(&error);

    g_assert_true(api_json_check_range("n", 1, 1, 64, &error));
    g_assert_true(api_json_check_range("n", 64, 1, 64, &error));
    g_assert_false(api_json_check_range("n", 0, 1, 64, &error));
    assert_invalid(error, "n: must be between 1 and 64");
    g_clear_error(&error);
    g_assert_false(api_json_check_range("n", 65, 1, 64, &error));
    assert_invalid(error, "n: must be between 1 and 64");
}

static void test_encoders(void)
{
    g_assert_null(api_json_new_tristate(-1));
    g_assert_null(api_json_new_int_or_null(-1));
    g_assert_null(api_json_new_string_or_null(NULL));

    g_autoptr(json_object) yes = api_json_new_tristate(1);
    g_autoptr(json_object) no = api_json_new_tristate(0);
    g_autoptr(json_object) zero = api_json_new_int_or_null(0);
    g_autoptr(json_object) text = api_json_new_string_or_null("x");
    g_assert_true(json_object_is_type(yes, json_type_boolean) && json_object_get_boolean(yes));
    g_assert_true(json_object_is_type(no, json_type_boolean) && !json_object_get_boolean(no));
    g_assert_true(json_object_is_type(zero, json_type_int));
    g_assert_cmpint(json_object_get_int64(zero), ==, 0);
    g_assert_cmpstr(json_object_get_string(text), ==, "x");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/json/parse/rejects", test_parse_rejects);
    g_test_add_func("/api/json/parse/accepts", test_parse_accepts);
    g_test_add_func("/api/json/parse/exact-length", test_parse_exact_length);
    g_test_add_func("/api/json/parse/depth", test_parse_depth);
    g_test_add_func("/api/json/to-string", test_to_string);
    g_test_add_func("/api/json/name-rule", test_name_rule);
    g_test_add_func("/api/json/paths", test_paths);
    g_test_add_func("/api/json/get-int", test_get_int);
    g_test_add_func("/api/json/get-string", test_get_string);
    g_test_add_func("/api/json/get-bool-tristate", test_get_bool_and_tristate);
    g_test_add_func("/api/json/objects-arrays", test_objects_and_arrays);
    g_test_add_func("/api/json/value-rules", test_value_rules);
    g_test_add_func("/api/json/encoders", test_encoders);
    return g_test_run();
}
