/* api/operation: statuses, deep copy and the wire form of operations. */
#include "api/error.h"
#include "api/json.h"
#include "api/operation.h"
#include "tests/unit/api-test-util.h"

#include <string.h>

#define OP_ID   "3d2c1b0a-9f8e-4d7c-b6a5-948372615f0e"
#define CREATED "2024-05-01T12:00:00Z"
#define UPDATED "2024-05-01T12:00:07.5Z"

#define VALID_OPERATION                                                                            \
    "{\"id\":\"" OP_ID "\",\"kind\":\"stack.migrate\",\"target\":\"stacks/web\","                  \
    "\"status\":\"running\",\"progress\":{\"percent\":40,\"stage\":\"copying image\","             \
    "\"bytes_done\":4096,\"bytes_total\":10240},\"error\":null,"                                   \
    "\"created_at\":\"" CREATED "\",\"updated_at\":\"" UPDATED "\"}"

static ApiOperation *operation_fixture(void)
{
    ApiOperation *op = api_operation_new();
    op->id = g_strdup(OP_ID);
    op->kind = g_strdup("stack.create");
    op->target = g_strdup("stacks/web");
    op->tenant = g_strdup("acme");
    op->status = API_OP_FAILED;
    op->progress.percent = 100;
    op->progress.stage = g_strdup("defining domain");
    op->progress.bytes_done = G_GINT64_CONSTANT(5000000000);
    op->progress.bytes_total = G_MAXINT64;
    op->error = g_strdup("domain 'web' already exists");
    op->created_at = g_strdup(CREATED);
    op->updated_at = g_strdup(UPDATED);
    return op;
}

/* Every wire field; tenant is compared separately since it is not on the wire. */
static void assert_wire_equal(const ApiOperation *a, const ApiOperation *b)
{
    g_assert_cmpstr(a->id, ==, b->id);
    g_assert_cmpstr(a->kind, ==, b->kind);
    g_assert_cmpstr(a->target, ==, b->target);
    g_assert_cmpint(a->status, ==, b->status);
    g_assert_cmpint(a->progress.percent, ==, b->progress.percent);
    g_assert_cmpstr(a->progress.stage, ==, b->progress.stage);
    g_assert_cmpint(a->progress.bytes_done, ==, b->progress.bytes_done);
    g_assert_cmpint(a->progress.bytes_total, ==, b->progress.bytes_total);
    g_assert_cmpstr(a->error, ==, b->error);
    g_assert_cmpstr(a->created_at, ==, b->created_at);
    g_assert_cmpstr(a->updated_at, ==, b->updated_at);
}

static ApiOperation *round_trip(const ApiOperation *op)
{
    g_autoptr(json_object) encoded = api_operation_to_json(op);
    g_autofree char *text = api_json_to_string(encoded);
    g_autoptr(json_object) value = parse(text);
    g_autoptr(GError) error = NULL;
    ApiOperation *decoded = api_operation_from_json(value, &error);
    g_assert_no_error(error);
    g_assert_nonnull(decoded);
    return decoded;
}

/* ---- status ----------------------------------------------------------------------- */

static void test_status_strings(void)
{
    static const struct {
        ApiOperationStatus status;
        const char *text;
        gboolean final;
    } table[] = {
        {API_OP_PENDING, "pending", FALSE},    {API_OP_RUNNING, "running", FALSE},
        {API_OP_SUCCEEDED, "succeeded", TRUE}, {API_OP_FAILED, "failed", TRUE},
        {API_OP_CANCELLED, "cancelled", TRUE},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(table); i++) {
        ApiOperationStatus parsed = API_OP_PENDING;
        g_assert_cmpstr(api_operation_status_to_string(table[i].status), ==, table[i].text);
        g_assert_true(api_operation_status_from_string(table[i].text, &parsed));
        g_assert_cmpint(parsed, ==, table[i].status);
        g_assert_cmpint(api_operation_status_is_final(table[i].status), ==, table[i].final);
    }

    static const char *const bad[] = {"", "Running", "canceled", "done", "running ", NULL};
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        ApiOperationStatus parsed = API_OP_RUNNING;
        g_assert_false(api_operation_status_from_string(bad[i], &parsed));
        g_assert_cmpint(parsed, ==, API_OP_RUNNING);
    }
    g_assert_cmpstr(api_operation_status_to_string((ApiOperationStatus)99), ==, "unknown");
}

/* ---- lifetime ------------------------------------------------------------------------ */

static void test_new(void)
{
    g_autoptr(ApiOperation) op = api_operation_new();
    g_assert_cmpint(op->status, ==, API_OP_PENDING);
    g_assert_null(op->error);
    g_assert_null(op->progress.stage);
    g_assert_cmpint(op->progress.percent, ==, 0);
    api_operation_free(NULL);
}

static void test_copy_is_deep(void)
{
    g_autoptr(ApiOperation) op = operation_fixture();
    g_autoptr(ApiOperation) copy = api_operation_copy(op);
    assert_wire_equal(copy, op);
    g_assert_cmpstr(copy->tenant, ==, "acme");

    /* No string is shared: each was duplicated. */
    g_assert_true(copy->id != op->id);
    g_assert_true(copy->kind != op->kind);
    g_assert_true(copy->target != op->target);
    g_assert_true(copy->tenant != op->tenant);
    g_assert_true(copy->progress.stage != op->progress.stage);
    g_assert_true(copy->error != op->error);
    g_assert_true(copy->created_at != op->created_at);
    g_assert_true(copy->updated_at != op->updated_at);

    /* Freeing the original leaves the copy whole (ASan/valgrind would catch a share). */
    g_clear_pointer(&op, api_operation_free);
    g_assert_cmpstr(copy->progress.stage, ==, "defining domain");
    g_assert_cmpstr(copy->error, ==, "domain 'web' already exists");

    g_assert_null(api_operation_copy(NULL));
    g_autoptr(ApiOperation) empty = api_operation_new();
    g_autoptr(ApiOperation) empty_copy = api_operation_copy(empty);
    g_assert_null(empty_copy->id);
    g_assert_null(empty_copy->tenant);
}

/* ---- JSON --------------------------------------------------------------------------- */

static void test_round_trip(void)
{
    g_autoptr(ApiOperation) op = operation_fixture();
    g_autoptr(ApiOperation) decoded = round_trip(op);
    assert_wire_equal(decoded, op);
    g_assert_null(decoded->tenant);
}

static void test_round_trip_every_status_and_nulls(void)
{
    for (int status = API_OP_PENDING; status <= API_OP_CANCELLED; status++) {
        g_autoptr(ApiOperation) op = operation_fixture();
        op->status = (ApiOperationStatus)status;
        g_clear_pointer(&op->progress.stage, g_free);
        g_clear_pointer(&op->error, g_free);
        op->progress.percent = 0;
        op->progress.bytes_done = 0;
        op->progress.bytes_total = 0;
        g_autoptr(ApiOperation) decoded = round_trip(op);
        assert_wire_equal(decoded, op);
    }
}

static void test_to_json_shape(void)
{
    g_autoptr(ApiOperation) op = operation_fixture();
    g_clear_pointer(&op->error, g_free);
    g_clear_pointer(&op->progress.stage, g_free);
    g_autoptr(json_object) value = api_operation_to_json(op);

    g_assert_false(json_object_object_get_ex(value, "tenant", NULL));
    g_assert_cmpint(json_object_object_length(value), ==, 8);
    json_object *member = NULL;
    g_assert_true(json_object_object_get_ex(value, "error", &member));
    g_assert_null(member);
    g_assert_true(json_object_object_get_ex(value, "status", &member));
    g_assert_cmpstr(json_object_get_string(member), ==, "failed");
    json_object *progress = NULL;
    g_assert_true(json_object_object_get_ex(value, "progress", &progress));
    g_assert_cmpint(json_object_object_length(progress), ==, 4);
    g_assert_true(json_object_object_get_ex(progress, "stage", &member));
    g_assert_null(member);

    /* A valid document decodes and encodes back to itself. */
    g_autoptr(json_object) valid = parse(VALID_OPERATION);
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiOperation) decoded = api_operation_from_json(valid, &error);
    g_assert_no_error(error);
    g_assert_cmpint(decoded->status, ==, API_OP_RUNNING);
    g_assert_cmpint(decoded->progress.percent, ==, 40);
    g_assert_cmpstr(decoded->progress.stage, ==, "copying image");
    g_assert_null(decoded->error);
    g_autoptr(json_object) encoded = api_operation_to_json(decoded);
    g_assert_true(json_object_equal(encoded, valid));
}

static const Mutation operation_bad[] = {
    {"extra", "1", "extra"},
    {"tenant", "\"acme\"", "tenant"}, /* never on the wire */
    {"progress.eta", "3", "progress.eta"},
    {"id", NULL, "id"},
    {"kind", NULL, "kind"},
    {"target", NULL, "target"},
    {"status", NULL, "status"},
    {"progress", NULL, "progress"},
    {"progress.percent", NULL, "progress.percent"},
    {"progress.stage", NULL, "progress.stage"},
    {"progress.bytes_done", NULL, "progress.bytes_done"},
    {"progress.bytes_total", NULL, "progress.bytes_total"},
    {"error", NULL, "error"},
    {"created_at", NULL, "created_at"},
    {"updated_at", NULL, "updated_at"},
    {"id", "null", "id"},
    {"id", "12", "id"},
    {"kind", "[]", "kind"},
    {"kind", "null", "kind"},
    {"target", "{}", "target"},
    {"status", "1", "status"},
    {"status", "null", "status"},
    {"progress", "40", "progress"},
    {"progress", "null", "progress"},
    {"progress.percent", "\"40\"", "progress.percent"},
    {"progress.percent", "40.5", "progress.percent"},
    {"progress.percent", "null", "progress.percent"},
    {"progress.stage", "3", "progress.stage"},
    {"progress.bytes_done", "true", "progress.bytes_done"},
    {"progress.bytes_total", "\"10240\"", "progress.bytes_total"},
    {"error", "false", "error"},
    {"created_at", "0", "created_at"},
    {"updated_at", "null", "updated_at"},
    {"progress.percent", "-1", "progress.percent"},
    {"progress.percent", "101", "progress.percent"},
    {"progress.bytes_done", "-1", "progress.bytes_done"},
    {"progress.bytes_total", "-1", "progress.bytes_total"},
    {"status", "\"done\"", "status"},
    {"status", "\"Running\"", "status"},
    {"kind", "\"\"", "kind"},
    {"target", "\"\"", "target"},
    {"id", "\"3d2c1b0a-9f8e-4d7c-b6a5-948372615f0g\"", "id"},
    {"id", "\"{3d2c1b0a-9f8e-4d7c-b6a5-948372615f0e}\"", "id"},
    {"created_at", "\"2024-05-01T25:00:00Z\"", "created_at"},
    {"created_at", "\"2024-W18-3T12:00:00Z\"", "created_at"},
    {"updated_at", "\"2024-05-01T12:00:00-05:00\"", "updated_at"},
    {"updated_at", "\"\"", "updated_at"},
};

static void test_from_json_bad(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(operation_bad); i++) {
        const Mutation *m = &operation_bad[i];
        g_test_message("%s <- %s", m->path, m->replacement ? m->replacement : "(removed)");
        g_autoptr(json_object) value = mutate(VALID_OPERATION, m);
        g_autoptr(GError) error = NULL;
        g_autoptr(ApiOperation) op = api_operation_from_json(value, &error);
        g_assert_null(op);
        assert_invalid(error, m->field);
    }

    g_autoptr(json_object) array = parse("[]");
    g_autoptr(GError) error = NULL;
    g_assert_null(api_operation_from_json(array, &error));
    assert_invalid(error, "body");
}

static void test_status_message_lists_choices(void)
{
    Mutation m = {"status", "\"done\"", "status"};
    g_autoptr(json_object) value = mutate(VALID_OPERATION, &m);
    g_autoptr(GError) error = NULL;
    g_assert_null(api_operation_from_json(value, &error));
    g_assert_error(error, API_ERROR, API_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==,
                    "status: must be one of pending, running, succeeded, failed, cancelled");
}

/* ---- the list's query and its page ---------------------------------------------------- */

static void test_statuses_from_string(void)
{
    static const struct {
        const char *text;
        guint statuses;
    } good[] = {
        {"pending", 1u << API_OP_PENDING},
        {"cancelled", 1u << API_OP_CANCELLED},
        {"pending,running", (1u << API_OP_PENDING) | (1u << API_OP_RUNNING)},
        {"failed,succeeded,failed", (1u << API_OP_FAILED) | (1u << API_OP_SUCCEEDED)},
        {"pending,running,succeeded,failed,cancelled", 0x1f},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autoptr(GError) error = NULL;
        guint statuses = 0;
        g_assert_true(api_operation_statuses_from_string(good[i].text, &statuses, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(statuses, ==, good[i].statuses);
    }

    /* Each item is checked: no empty one, no spaces, no other spelling. */
    static const char *const bad[] = {
        "",
        ",",
        "pending,",
        ",running",
        "pending,,running",
        "pending, running",
        "Running",
        "canceled",
        "all",
        "pending;running",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        guint statuses = 0xdead;
        g_test_message("status=%s", bad[i]);
        g_assert_false(api_operation_statuses_from_string(bad[i], &statuses, &error));
        g_assert_cmpuint(statuses, ==, 0xdead);
        g_assert_error(error, API_ERROR, API_ERROR_INVALID);
        g_assert_true(g_str_has_prefix(error->message, "status: "));
    }
    g_autoptr(GError) error = NULL;
    guint statuses = 0;
    g_assert_false(api_operation_statuses_from_string("running,done", &statuses, &error));
    g_assert_cmpstr(error->message, ==,
                    "status: 'done' is not one of pending, running, succeeded, failed, cancelled "
                    "(several may be given, separated by commas)");
}

static void test_kind_check(void)
{
    g_autofree char *longest = g_strnfill(API_OPERATION_KIND_MAX, 'k');
    const char *const good[] = {
        "stack.create", "stack.force-stop", "stack.attach-device", "test.sleep", "x", "image.v2",
        longest};
    for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autoptr(GError) error = NULL;
        g_assert_true(api_operation_kind_check(good[i], &error));
        g_assert_no_error(error);
    }

    g_autofree char *too_long = g_strnfill(API_OPERATION_KIND_MAX + 1, 'k');
    const char *const bad[] = {"",
                               ".create",
                               "-stack",
                               "1stack",
                               "Stack.create",
                               "stack create",
                               "stack_create",
                               "stack/create",
                               "stack.créé",
                               "stack%2e",
                               too_long,
                               NULL};
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_test_message("kind=%s", bad[i] ? bad[i] : "(null)");
        g_assert_false(api_operation_kind_check(bad[i], &error));
        g_assert_error(error, API_ERROR, API_ERROR_INVALID);
        g_assert_cmpstr(error->message, ==,
                        "kind: must be 1 to 64 of a-z, 0-9, '.' and '-', starting with a letter, "
                        "like stack.create");
    }
}

static void test_list(void)
{
    g_autoptr(GPtrArray) operations =
        g_ptr_array_new_with_free_func((GDestroyNotify)api_operation_free);
    g_autoptr(json_object) empty = api_operation_list_to_json(operations, NULL);
    g_autofree char *empty_text = api_json_to_string(empty);
    g_assert_cmpstr(empty_text, ==, "{\"operations\":[],\"next\":null}");

    g_ptr_array_add(operations, operation_fixture());
    ApiOperation *second = operation_fixture();
    g_free(second->id);
    second->id = g_strdup("0f0e0d0c-0b0a-4908-8706-050403020100");
    g_free(second->kind);
    second->kind = g_strdup("stack.migrate");
    second->status = API_OP_RUNNING;
    g_clear_pointer(&second->error, g_free);
    g_ptr_array_add(operations, second);

    /* A page with more after it carries the cursor of the next; the tenant
     * stays off the wire, as on a single operation. */
    g_autoptr(json_object) value = api_operation_list_to_json(operations, "YWNtZQAwZjBl");
    g_autofree char *text = api_json_to_string(value);
    g_assert_null(strstr(text, "acme"));
    g_autoptr(json_object) parsed = parse(text);
    g_autoptr(GError) error = NULL;
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) decoded = api_operation_list_from_json(parsed, &next, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(next, ==, "YWNtZQAwZjBl");
    g_assert_cmpuint(decoded->len, ==, 2);
    for (guint i = 0; i < decoded->len; i++) {
        assert_wire_equal(g_ptr_array_index(decoded, i), g_ptr_array_index(operations, i));
        g_assert_null(((ApiOperation *)g_ptr_array_index(decoded, i))->tenant);
    }

    /* The last page: next null. */
    g_autoptr(json_object) last = parse("{\"operations\":[" VALID_OPERATION "],\"next\":null}");
    g_autofree char *none = NULL;
    g_autoptr(GPtrArray) one = api_operation_list_from_json(last, &none, &error);
    g_assert_no_error(error);
    g_assert_null(none);
    g_assert_cmpuint(one->len, ==, 1);
    g_assert_cmpint(((ApiOperation *)g_ptr_array_index(one, 0))->status, ==, API_OP_RUNNING);

    /* Errors say which item. */
    static const struct {
        const char *body;
        const char *message;
    } bad[] = {
        {"{}", "operations: is required"},
        {"[]", "body: must be an object"},
        {"{\"operations\":{}}", "operations: must be an array"},
        {"{\"operations\":[]}", "next: is required"},
        {"{\"operations\":[],\"next\":\"\"}", "next: must not be empty"},
        {"{\"operations\":[],\"next\":7}", "next: must be a string or null"},
        {"{\"operations\":[],\"next\":null,\"more\":1}", "more: unknown field"},
        {"{\"stacks\":[],\"next\":null}", "stacks: unknown field"},
        {"{\"next\":null,\"operations\":[" VALID_OPERATION ",7]}",
         "operations[1]: must be an object"},
        {"{\"next\":null,\"operations\":[" VALID_OPERATION ",{\"id\":\"" OP_ID "\"}]}",
         "operations[1].kind: is required"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(json_object) body = parse(bad[i].body);
        g_autoptr(GError) local = NULL;
        g_autofree char *cursor = NULL;
        g_test_message("%s", bad[i].body);
        g_assert_null(api_operation_list_from_json(body, &cursor, &local));
        g_assert_null(cursor);
        g_assert_error(local, API_ERROR, API_ERROR_INVALID);
        if (!g_str_has_prefix(local->message, bad[i].message))
            g_error("message \"%s\" is not \"%s...\"", local->message, bad[i].message);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/operation/status-strings", test_status_strings);
    g_test_add_func("/api/operation/new", test_new);
    g_test_add_func("/api/operation/copy-is-deep", test_copy_is_deep);
    g_test_add_func("/api/operation/round-trip", test_round_trip);
    g_test_add_func("/api/operation/round-trip-every-status-and-nulls",
                    test_round_trip_every_status_and_nulls);
    g_test_add_func("/api/operation/to-json-shape", test_to_json_shape);
    g_test_add_func("/api/operation/from-json-bad", test_from_json_bad);
    g_test_add_func("/api/operation/status-message-lists-choices",
                    test_status_message_lists_choices);
    g_test_add_func("/api/operation/statuses-from-string", test_statuses_from_string);
    g_test_add_func("/api/operation/kind-check", test_kind_check);
    g_test_add_func("/api/operation/list", test_list);
    return g_test_run();
}
