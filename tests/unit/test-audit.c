/* daemon/audit: who a record names, the JSON line of audit.log, the file
 * (private, appended, one whole line per record from many threads at once),
 * and which methods are audited. */
#include "tests/unit/tree-util.h"
#include "api/json.h"
#include "daemon/audit.h"
#include "daemon/log.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define THREADS 8
#define RECORDS 200

static void test_wanted(void)
{
    g_assert_true(audit_wanted("POST"));
    g_assert_true(audit_wanted("PUT"));
    g_assert_true(audit_wanted("PATCH"));
    g_assert_true(audit_wanted("DELETE"));
    g_assert_false(audit_wanted("GET"));
    g_assert_false(audit_wanted("HEAD"));
    g_assert_false(audit_wanted("OPTIONS"));
    g_assert_false(audit_wanted(NULL));
}

static void test_actor(void)
{
    AuditRecord socket = {.role = "operator", .uid = 0};
    AuditRecord tenant = {.role = "tenant", .uid = -1, .tenant = "acme", .token_id = "t1"};
    AuditRecord operator_token = {.role = "operator", .uid = -1, .token_id = "t2"};
    AuditRecord nobody = {.role = "anonymous", .uid = -1};
    /* Not the operator, or refused before authentication: the peer all the same. */
    AuditRecord stranger = {.role = "anonymous", .uid = 1000};
    const struct {
        const AuditRecord *record;
        const char *actor;
    } cases[] = {
        {&socket, "uid:0"},     {&tenant, "tenant:acme/token:t1"}, {&operator_token, "token:t2"},
        {&nobody, "anonymous"}, {&stranger, "uid:1000"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *actor = audit_actor(cases[i].record);
        g_assert_cmpstr(actor, ==, cases[i].actor);
    }
}

static void test_json(void)
{
    g_autoptr(GHashTable) params = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(params, "name", "acme");
    g_hash_table_insert(params, "id", "5a0b");
    AuditRecord record = {
        .request_id = "r-1",
        .role = "tenant",
        .uid = -1,
        .tenant = "acme",
        .token_id = "t1",
        .method = "DELETE",
        .route = "/v1/tenants/{name}/tokens/{id}",
        .path = "/v1/tenants/acme/tokens/5a0b",
        .params = params,
        .status = 403,
    };
    g_autofree char *line = audit_record_to_json(&record, "2026-01-02T03:04:05.000006Z");
    g_assert_null(strchr(line, '\n'));
    g_autoptr(json_object) json = json_tokener_parse(line);
    g_assert_nonnull(json);
    const struct {
        const char *key;
        const char *value;
    } expect[] = {
        {"time", "2026-01-02T03:04:05.000006Z"},
        {"request_id", "r-1"},
        {"actor", "tenant:acme/token:t1"},
        {"role", "tenant"},
        {"tenant", "acme"},
        {"token_id", "t1"},
        {"method", "DELETE"},
        {"route", "/v1/tenants/{name}/tokens/{id}"},
        {"path", "/v1/tenants/acme/tokens/5a0b"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(expect); i++) {
        json_object *value = NULL;
        g_assert_true(json_object_object_get_ex(json, expect[i].key, &value));
        g_assert_cmpstr(json_object_get_string(value), ==, expect[i].value);
    }
    json_object *value = NULL;
    g_assert_true(json_object_object_get_ex(json, "status", &value));
    g_assert_cmpint(json_object_get_int(value), ==, 403);
    g_assert_true(json_object_object_get_ex(json, "uid", &value));
    g_assert_null(value); /* not on the socket */
    g_assert_true(json_object_object_get_ex(json, "target", &value));
    g_assert_cmpstr(json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN), ==,
                    "{\"id\":\"5a0b\",\"name\":\"acme\"}");
}

typedef struct {
    Audit *audit;
    guint thread;
} Writer;

static gpointer write_records(gpointer data)
{
    Writer *writer = data;
    for (guint i = 0; i < RECORDS; i++) {
        g_autofree char *path = g_strdup_printf("/v1/stacks/s%u-%u", writer->thread, i);
        AuditRecord record = {.request_id = "r",
                              .role = "operator",
                              .uid = 0,
                              .method = "POST",
                              .route = "/v1/stacks",
                              .path = path,
                              .status = 202};
        audit_record(writer->audit, &record);
    }
    return NULL;
}

static void test_file(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("test-audit-XXXXXX", &error);
    g_assert_no_error(error);
    g_autofree char *path = g_build_filename(dir, "audit.log", NULL);
    /* An earlier file, too open: it is kept, appended to, and made private. */
    g_assert_true(g_file_set_contents(path, "{\"earlier\":true}\n", -1, &error));
    g_assert_cmpint(g_chmod(path, 0644), ==, 0);

    Audit *audit = audit_open(dir, FALSE);
    Writer writers[THREADS];
    GThread *threads[THREADS];
    for (guint t = 0; t < THREADS; t++) {
        writers[t] = (Writer){audit, t};
        threads[t] = g_thread_new("audit", write_records, &writers[t]);
    }
    for (guint t = 0; t < THREADS; t++)
        g_thread_join(threads[t]);
    audit_free(audit);

    struct stat st;
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    g_autofree char *text = NULL;
    g_assert_true(g_file_get_contents(path, &text, NULL, &error));
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    g_assert_cmpuint(g_strv_length(lines), ==, 1 + THREADS * RECORDS + 1);
    g_assert_cmpstr(lines[0], ==, "{\"earlier\":true}");
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 1; i <= THREADS * RECORDS; i++) {
        g_autoptr(json_object) json = json_tokener_parse(lines[i]);
        g_assert_nonnull(json); /* whole lines: none cut by another thread's */
        json_object *value = NULL;
        g_assert_true(json_object_object_get_ex(json, "path", &value));
        g_hash_table_add(seen, g_strdup(json_object_get_string(value)));
        g_assert_true(g_hash_table_size(seen) == i); /* each record once */
    }
    g_assert_cmpstr(lines[1 + THREADS * RECORDS], ==, "");
    remove_tree(dir);
}

/* The journal's records, as the log writer shows them on stderr (the test
 * is not under journald): every field there, at a level never dropped. */
static void test_journal_fields(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = NULL;
    int fd = g_file_open_tmp("test-audit-XXXXXX", &path, &error);
    g_assert_no_error(error);
    g_autoptr(GHashTable) params = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(params, "name", "web");
    AuditRecord record = {.request_id = "r-7",
                          .role = "operator",
                          .uid = 0,
                          .method = "DELETE",
                          .route = "/v1/stacks/{name}",
                          .path = "/v1/stacks/web",
                          .params = params,
                          .status = 403};
    Audit *audit = audit_open("/nonexistent", TRUE);
    int saved = dup(2);
    g_assert_cmpint(dup2(fd, 2), ==, 2);
    audit_record(audit, &record);
    g_assert_cmpint(dup2(saved, 2), ==, 2);
    close(saved);
    close(fd);
    audit_free(audit);
    g_assert_false(g_file_test("/nonexistent/audit.log", G_FILE_TEST_EXISTS));

    g_autofree char *text = NULL;
    g_assert_true(g_file_get_contents(path, &text, NULL, &error));
    g_unlink(path);
    g_assert_nonnull(
        strstr(text, "audit: uid:0 DELETE /v1/stacks/web -> 403 [message_id=" LOG_MESSAGE_AUDIT
                     " request_id=r-7 audit=1 audit_actor=uid:0 audit_role=operator"
                     " audit_uid=0 audit_method=DELETE audit_route=/v1/stacks/{name}"
                     " audit_path=/v1/stacks/web audit_target=\"{\\\"name\\\":\\\"web\\\"}\""
                     " audit_status=403]\n"));
}

int main(int argc, char **argv)
{
    g_unsetenv("G_MESSAGES_DEBUG");
    g_unsetenv("JOURNAL_STREAM");
    log_install();
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/audit/journal-fields", test_journal_fields);
    g_test_add_func("/audit/wanted", test_wanted);
    g_test_add_func("/audit/actor", test_actor);
    g_test_add_func("/audit/json", test_json);
    g_test_add_func("/audit/file", test_file);
    return g_test_run();
}
