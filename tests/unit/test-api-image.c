/* api/image: images on the wire, decoded strictly. */
#include "api/error.h"
#include "api/image.h"
#include "api/json.h"
#include "tests/unit/api-test-util.h"

#include <string.h>

#define IMAGE_ID "4e3d2c1b-0a9f-4e8d-8c7b-6a5f4e3d2c1b"
#define CREATED  "2024-05-01T12:00:00Z"
#define UPDATED  "2024-05-02T08:30:15.250Z"
#define SHA256   "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

#define VALID_IMAGE                                                                                \
    "{\"id\":\"" IMAGE_ID "\",\"name\":\"debian-12\",\"tenant\":\"acme\",\"kind\":\"disk\","       \
    "\"format\":\"qcow2\",\"state\":\"ready\",\"size\":1073741824,\"sha256\":\"" SHA256 "\","      \
    "\"error\":null,\"created_at\":\"" CREATED "\",\"updated_at\":\"" UPDATED "\"}"
#define VALID_CREATE "{\"name\":\"vmlinuz\",\"kind\":\"kernel\",\"format\":\"raw\"}"

/* Stricter than assert_invalid: the message starts with "<field>: ". */
static void assert_invalid_prefix(const GError *error, const char *field)
{
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    g_autofree char *prefix = g_strconcat(field, ": ", NULL);
    if (!g_str_has_prefix(error->message, prefix))
        g_error("message \"%s\" does not start with \"%s\"", error->message, prefix);
}

static ApiImage *image_fixture(void)
{
    ApiImage *image = api_image_new();
    image->id = g_strdup(IMAGE_ID);
    image->name = g_strdup("debian-12");
    image->tenant = g_strdup("acme");
    image->kind = API_IMAGE_KIND_DISK;
    image->format = API_IMAGE_FORMAT_QCOW2;
    image->state = API_IMAGE_STATE_ERROR;
    image->size = 4096;
    image->sha256 = g_strdup(SHA256);
    image->error = g_strdup("upload ended after 4096 bytes");
    image->created_at = g_strdup(CREATED);
    image->updated_at = g_strdup(UPDATED);
    image->volume = g_strdup("acme-debian-12.qcow2");
    return image;
}

static void assert_wire_equal(const ApiImage *a, const ApiImage *b)
{
    g_assert_cmpstr(a->id, ==, b->id);
    g_assert_cmpstr(a->name, ==, b->name);
    g_assert_cmpstr(a->tenant, ==, b->tenant);
    g_assert_cmpint(a->kind, ==, b->kind);
    g_assert_cmpint(a->format, ==, b->format);
    g_assert_cmpint(a->state, ==, b->state);
    g_assert_cmpint(a->size, ==, b->size);
    g_assert_cmpstr(a->sha256, ==, b->sha256);
    g_assert_cmpstr(a->error, ==, b->error);
    g_assert_cmpstr(a->created_at, ==, b->created_at);
    g_assert_cmpstr(a->updated_at, ==, b->updated_at);
}

static ApiImage *round_trip(const ApiImage *image)
{
    g_autoptr(json_object) encoded = api_image_to_json(image);
    g_autofree char *text = api_json_to_string(encoded);
    g_autoptr(json_object) value = parse(text);
    g_autoptr(GError) error = NULL;
    ApiImage *decoded = api_image_from_json(value, &error);
    g_assert_no_error(error);
    g_assert_nonnull(decoded);
    return decoded;
}

/* ---- enums ----------------------------------------------------------------------------- */

static void test_enum_strings(void)
{
    static const char *const kinds[] = {"kernel", "initrd", "disk"};
    static const char *const formats[] = {"raw", "qcow2"};
    static const char *const states[] = {"pending", "uploading", "ready", "error"};

    for (guint i = 0; i < G_N_ELEMENTS(kinds); i++) {
        ApiImageKind kind = API_IMAGE_KIND_DISK;
        g_assert_cmpstr(api_image_kind_to_string((ApiImageKind)i), ==, kinds[i]);
        g_assert_true(api_image_kind_from_string(kinds[i], &kind));
        g_assert_cmpint(kind, ==, i);
    }
    for (guint i = 0; i < G_N_ELEMENTS(formats); i++) {
        ApiImageFormat format = API_IMAGE_FORMAT_QCOW2;
        g_assert_cmpstr(api_image_format_to_string((ApiImageFormat)i), ==, formats[i]);
        g_assert_true(api_image_format_from_string(formats[i], &format));
        g_assert_cmpint(format, ==, i);
    }
    for (guint i = 0; i < G_N_ELEMENTS(states); i++) {
        ApiImageState state = API_IMAGE_STATE_ERROR;
        g_assert_cmpstr(api_image_state_to_string((ApiImageState)i), ==, states[i]);
        g_assert_true(api_image_state_from_string(states[i], &state));
        g_assert_cmpint(state, ==, i);
    }

    static const char *const bad[] = {"", "Kernel", "RAW", "done", "ready ", "qcow", NULL};
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        ApiImageKind kind = API_IMAGE_KIND_INITRD;
        ApiImageFormat format = API_IMAGE_FORMAT_QCOW2;
        ApiImageState state = API_IMAGE_STATE_UPLOADING;
        g_assert_false(api_image_kind_from_string(bad[i], &kind));
        g_assert_false(api_image_format_from_string(bad[i], &format));
        g_assert_false(api_image_state_from_string(bad[i], &state));
        g_assert_cmpint(kind, ==, API_IMAGE_KIND_INITRD);
        g_assert_cmpint(format, ==, API_IMAGE_FORMAT_QCOW2);
        g_assert_cmpint(state, ==, API_IMAGE_STATE_UPLOADING);
    }
    g_assert_cmpstr(api_image_kind_to_string((ApiImageKind)3), ==, "unknown");
    g_assert_cmpstr(api_image_format_to_string((ApiImageFormat)2), ==, "unknown");
    g_assert_cmpstr(api_image_state_to_string((ApiImageState)4), ==, "unknown");
    g_assert_cmpstr(api_image_state_to_string((ApiImageState)-1), ==, "unknown");
}

/* ---- lifetime --------------------------------------------------------------------------- */

static void test_new_and_copy(void)
{
    g_autoptr(ApiImage) fresh = api_image_new();
    g_assert_cmpint(fresh->state, ==, API_IMAGE_STATE_PENDING);
    g_assert_cmpint(fresh->size, <, 0);
    g_assert_null(fresh->sha256);
    api_image_free(NULL);
    g_assert_null(api_image_copy(NULL));

    g_autoptr(ApiImage) image = image_fixture();
    g_autoptr(ApiImage) copy = api_image_copy(image);
    assert_wire_equal(copy, image);
    g_assert_cmpstr(copy->volume, ==, "acme-debian-12.qcow2");
    g_assert_true(copy->volume != image->volume);
    g_assert_true(copy->sha256 != image->sha256);
    /* Freeing the original leaves the copy whole (ASan/valgrind would catch a share). */
    g_clear_pointer(&image, api_image_free);
    g_assert_cmpstr(copy->error, ==, "upload ended after 4096 bytes");
}

/* ---- JSON -------------------------------------------------------------------------------- */

static void test_round_trip(void)
{
    g_autoptr(ApiImage) image = image_fixture();
    g_autoptr(ApiImage) decoded = round_trip(image);
    assert_wire_equal(decoded, image);
    /* The volume is ours, not the client's. */
    g_assert_null(decoded->volume);

    /* Every kind/format pair the rule allows, every state, and the nulls. */
    for (int state = API_IMAGE_STATE_PENDING; state <= API_IMAGE_STATE_ERROR; state++) {
        for (int kind = API_IMAGE_KIND_KERNEL; kind <= API_IMAGE_KIND_DISK; kind++) {
            g_autoptr(ApiImage) other = image_fixture();
            other->state = (ApiImageState)state;
            other->kind = (ApiImageKind)kind;
            other->format =
                kind == API_IMAGE_KIND_DISK ? API_IMAGE_FORMAT_QCOW2 : API_IMAGE_FORMAT_RAW;
            other->size = -1;
            g_clear_pointer(&other->sha256, g_free);
            g_clear_pointer(&other->error, g_free);
            g_autoptr(ApiImage) back = round_trip(other);
            assert_wire_equal(back, other);
        }
    }
}

static void test_to_json_shape(void)
{
    g_autoptr(ApiImage) image = api_image_new();
    image->id = g_strdup(IMAGE_ID);
    image->name = g_strdup("vmlinuz");
    image->tenant = g_strdup("acme");
    image->created_at = g_strdup(CREATED);
    image->updated_at = g_strdup(CREATED);
    g_autoptr(json_object) value = api_image_to_json(image);
    g_autofree char *text = api_json_to_string(value);
    g_assert_cmpstr(text, ==,
                    "{\"id\":\"" IMAGE_ID "\",\"name\":\"vmlinuz\",\"tenant\":\"acme\","
                    "\"kind\":\"kernel\",\"format\":\"raw\",\"state\":\"pending\",\"size\":null,"
                    "\"sha256\":null,\"error\":null,\"created_at\":\"" CREATED "\","
                    "\"updated_at\":\"" CREATED "\"}");

    /* A valid document decodes and encodes back to itself. */
    g_autoptr(json_object) valid = parse(VALID_IMAGE);
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiImage) decoded = api_image_from_json(valid, &error);
    g_assert_no_error(error);
    g_assert_cmpint(decoded->kind, ==, API_IMAGE_KIND_DISK);
    g_assert_cmpint(decoded->format, ==, API_IMAGE_FORMAT_QCOW2);
    g_assert_cmpint(decoded->state, ==, API_IMAGE_STATE_READY);
    g_assert_cmpint(decoded->size, ==, 1073741824);
    g_assert_null(decoded->error);
    g_autoptr(json_object) encoded = api_image_to_json(decoded);
    g_assert_true(json_object_equal(encoded, valid));
}

static const Mutation image_bad[] = {
    {"extra", "1", "extra"},
    {"volume", "\"v\"", "volume"}, /* never on the wire */
    {"id", NULL, "id"},
    {"name", NULL, "name"},
    {"tenant", NULL, "tenant"},
    {"kind", NULL, "kind"},
    {"format", NULL, "format"},
    {"state", NULL, "state"},
    {"size", NULL, "size"},
    {"sha256", NULL, "sha256"},
    {"error", NULL, "error"},
    {"created_at", NULL, "created_at"},
    {"updated_at", NULL, "updated_at"},
    {"id", "null", "id"},
    {"id", "\"not-a-uuid\"", "id"},
    {"name", "7", "name"},
    {"name", "\"Debian_12\"", "name"},
    {"name", "\"\"", "name"},
    {"tenant", "\"ACME\"", "tenant"},
    {"tenant", "null", "tenant"},
    {"kind", "\"iso\"", "kind"},
    {"kind", "\"Disk\"", "kind"},
    {"kind", "null", "kind"},
    {"kind", "0", "kind"},
    {"format", "\"vmdk\"", "format"},
    {"format", "[]", "format"},
    {"state", "\"done\"", "state"},
    {"state", "true", "state"},
    {"size", "-1", "size"},
    {"size", "\"1024\"", "size"},
    {"size", "1.5", "size"},
    {"size", "99999999999999999999999", "size"},
    {"size", "1125899906842625", "size"}, /* 1 PiB + 1 */
    {"sha256", "\"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\"", "sha256"},
    {"sha256", "\"9f86d081\"", "sha256"},
    {"sha256", "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g\"", "sha256"},
    {"sha256", "\"\"", "sha256"},
    {"sha256", "1", "sha256"},
    {"error", "{}", "error"},
    {"created_at", "\"yesterday\"", "created_at"},
    {"updated_at", "\"2024-05-01T12:00:00+02:00\"", "updated_at"},
    {"updated_at", "null", "updated_at"},
};

static void test_from_json_bad(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(image_bad); i++) {
        const Mutation *m = &image_bad[i];
        g_test_message("%s <- %s", m->path, m->replacement ? m->replacement : "(removed)");
        g_autoptr(json_object) value = mutate(VALID_IMAGE, m);
        g_autoptr(GError) error = NULL;
        g_autoptr(ApiImage) image = api_image_from_json(value, &error);
        g_assert_null(image);
        assert_invalid_prefix(error, m->field);
    }

    /* A qcow2 kernel is not an image this API can have made. */
    g_autoptr(json_object) value = parse(VALID_IMAGE);
    json_object_object_add(value, "kind", json_object_new_string("kernel"));
    g_autoptr(GError) error = NULL;
    g_assert_null(api_image_from_json(value, &error));
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "format: must be raw for kind kernel");
    g_clear_error(&error);

    g_autoptr(json_object) array = parse("[]");
    g_assert_null(api_image_from_json(array, &error));
    assert_invalid_prefix(error, "body");
}

/* ---- create ------------------------------------------------------------------------------- */

static void test_create(void)
{
    static const struct {
        const char *body;
        ApiImageKind kind;
        ApiImageFormat format;
    } good[] = {
        {"{\"name\":\"vmlinuz\",\"kind\":\"kernel\",\"format\":\"raw\"}", API_IMAGE_KIND_KERNEL,
         API_IMAGE_FORMAT_RAW},
        {"{\"format\":\"raw\",\"name\":\"initrd-6-1\",\"kind\":\"initrd\"}", API_IMAGE_KIND_INITRD,
         API_IMAGE_FORMAT_RAW},
        {"{\"name\":\"d\",\"kind\":\"disk\",\"format\":\"raw\"}", API_IMAGE_KIND_DISK,
         API_IMAGE_FORMAT_RAW},
        {"{\"name\":\"debian-12\",\"kind\":\"disk\",\"format\":\"qcow2\"}", API_IMAGE_KIND_DISK,
         API_IMAGE_FORMAT_QCOW2},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autoptr(json_object) value = parse(good[i].body);
        g_autoptr(GError) error = NULL;
        g_autoptr(ApiImage) image = api_image_create_from_json(value, &error);
        g_assert_no_error(error);
        g_assert_cmpint(image->kind, ==, good[i].kind);
        g_assert_cmpint(image->format, ==, good[i].format);
        /* Everything else is the server's to fill. */
        g_assert_cmpint(image->state, ==, API_IMAGE_STATE_PENDING);
        g_assert_null(image->id);
        g_assert_null(image->tenant);
        g_assert_null(image->created_at);
        g_assert_cmpint(image->size, <, 0);
    }
}

static const Mutation create_bad[] = {
    {"id", "\"" IMAGE_ID "\"", "id"}, /* server-assigned fields are unknown here */
    {"state", "\"ready\"", "state"},
    {"tenant", "\"acme\"", "tenant"},
    {"size", "10", "size"},
    {"extra", "true", "extra"},
    {"name", NULL, "name"},
    {"kind", NULL, "kind"},
    {"format", NULL, "format"},
    {"name", "null", "name"},
    {"name", "1", "name"},
    {"name", "\"Vmlinuz\"", "name"},
    {"name", "\"vmlinuz-\"", "name"},
    {"name", "\"a234567890123456789012345678901234567890123456789012345678901234\"", "name"},
    {"kind", "\"iso\"", "kind"},
    {"kind", "null", "kind"},
    {"kind", "[\"kernel\"]", "kind"},
    {"format", "\"vmdk\"", "format"},
    {"format", "\"qcow2\"", "format"}, /* for a kernel */
    {"format", "false", "format"},
};

static void test_create_bad(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(create_bad); i++) {
        const Mutation *m = &create_bad[i];
        g_test_message("%s <- %s", m->path, m->replacement ? m->replacement : "(removed)");
        g_autoptr(json_object) value = mutate(VALID_CREATE, m);
        g_autoptr(GError) error = NULL;
        g_autoptr(ApiImage) image = api_image_create_from_json(value, &error);
        g_assert_null(image);
        assert_invalid_prefix(error, m->field);
    }

    static const struct {
        const char *body;
        const char *message;
    } exact[] = {
        {"{\"name\":\"i\",\"kind\":\"initrd\",\"format\":\"qcow2\"}",
         "format: must be raw for kind initrd"},
        {"{\"name\":\"k\",\"kind\":\"kernel\",\"format\":\"qcow2\"}",
         "format: must be raw for kind kernel"},
        {"{\"name\":\"k\",\"kind\":\"iso\",\"format\":\"raw\"}",
         "kind: must be one of kernel, initrd, disk"},
        {"{\"name\":\"k\",\"kind\":\"disk\",\"format\":\"vmdk\"}",
         "format: must be one of raw, qcow2"},
        {"\"vmlinuz\"", "body: must be an object"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(exact); i++) {
        g_autoptr(json_object) value = parse(exact[i].body);
        g_autoptr(GError) error = NULL;
        g_assert_null(api_image_create_from_json(value, &error));
        g_assert_error(error, API_ERROR, API_ERROR_INVALID);
        g_assert_cmpstr(error->message, ==, exact[i].message);
    }
}

/* ---- list ------------------------------------------------------------------------------------ */

static void test_list(void)
{
    g_autoptr(GPtrArray) images = g_ptr_array_new_with_free_func((GDestroyNotify)api_image_free);
    g_autoptr(json_object) empty = api_image_list_to_json(images, NULL);
    g_autofree char *empty_text = api_json_to_string(empty);
    g_assert_cmpstr(empty_text, ==, "{\"images\":[],\"next\":null}");

    g_ptr_array_add(images, image_fixture());
    ApiImage *second = image_fixture();
    g_free(second->name);
    second->name = g_strdup("vmlinuz");
    second->kind = API_IMAGE_KIND_KERNEL;
    second->format = API_IMAGE_FORMAT_RAW;
    g_ptr_array_add(images, second);

    /* A page with more after it carries the cursor of the next. */
    g_autoptr(json_object) value = api_image_list_to_json(images, "YWNtZQB2bWxpbnV6");
    g_autofree char *text = api_json_to_string(value);
    g_autoptr(json_object) parsed = parse(text);
    g_autoptr(GError) error = NULL;
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) decoded = api_image_list_from_json(parsed, &next, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(next, ==, "YWNtZQB2bWxpbnV6");
    g_assert_cmpuint(decoded->len, ==, 2);
    for (guint i = 0; i < decoded->len; i++)
        assert_wire_equal(g_ptr_array_index(decoded, i), g_ptr_array_index(images, i));

    /* Errors say which item. */
    static const struct {
        const char *body;
        const char *message;
    } bad[] = {
        {"{}", "images: is required"},
        {"{\"images\":{}}", "images: must be an array"},
        {"{\"images\":[]}", "next: is required"},
        {"{\"images\":[],\"next\":\"\"}", "next: must not be empty"},
        {"{\"images\":[],\"next\":7}", "next: must be a string or null"},
        {"{\"images\":[],\"next\":null,\"more\":1}", "more: unknown field"},
        {"{\"next\":null,\"images\":[" VALID_IMAGE ",7]}", "images[1]: must be an object"},
        {"{\"next\":null,\"images\":[" VALID_IMAGE ",{\"id\":\"x\"}]}",
         "images[1].name: is required"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(json_object) body = parse(bad[i].body);
        g_autoptr(GError) local = NULL;
        g_autofree char *cursor = NULL;
        g_assert_null(api_image_list_from_json(body, &cursor, &local));
        g_assert_error(local, API_ERROR, API_ERROR_INVALID);
        g_assert_cmpstr(local->message, ==, bad[i].message);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/image/enum-strings", test_enum_strings);
    g_test_add_func("/api/image/new-and-copy", test_new_and_copy);
    g_test_add_func("/api/image/round-trip", test_round_trip);
    g_test_add_func("/api/image/to-json-shape", test_to_json_shape);
    g_test_add_func("/api/image/from-json-bad", test_from_json_bad);
    g_test_add_func("/api/image/create", test_create);
    g_test_add_func("/api/image/create-bad", test_create_bad);
    g_test_add_func("/api/image/list", test_list);
    return g_test_run();
}
