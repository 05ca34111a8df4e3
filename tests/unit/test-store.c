/* daemon/store against real SQLite databases, each in a fresh temporary
 * state directory. */
#include "daemon/error.h"
#include "daemon/store.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>

#define T0 "2024-05-01T10:00:00Z"
#define T1 "2024-05-01T11:00:00Z"
#define T2 "2024-05-01T12:00:00Z"

#define THREADS        8
#define OPS_PER_THREAD 200
#define INJECTION_NAME "x'); DROP TABLE tenants;--"
#define UNICODE_NAME   "t\xC3\xA9nant-\xE5\x90\x8D\xE5\x89\x8D \"quoted\" \\ %s %n \xF0\x9F\x90\xA2"

typedef struct {
    char *dir;   /* the temporary directory, removed afterwards */
    char *state; /* dir/state: store_open must create it */
    Store *store;
} Fixture;

static void remove_tree(const char *path)
{
    GDir *dir = g_dir_open(path, 0, NULL);

    if (dir != NULL) {
        const char *name;
        while ((name = g_dir_read_name(dir)) != NULL) {
            g_autofree char *child = g_build_filename(path, name, NULL);
            remove_tree(child);
        }
        g_dir_close(dir);
        g_assert_cmpint(g_rmdir(path), ==, 0);
    } else {
        g_assert_cmpint(g_unlink(path), ==, 0);
    }
}

static void fixture_set_up(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    fixture->dir = g_dir_make_tmp("test-store-XXXXXX", &error);
    g_assert_no_error(error);
    fixture->state = g_build_filename(fixture->dir, "state", NULL);
    fixture->store = store_open(fixture->state, &error);
    g_assert_no_error(error);
    g_assert_nonnull(fixture->store);
}

static void fixture_tear_down(Fixture *fixture, gconstpointer data)
{
    (void)data;
    store_free(fixture->store);
    remove_tree(fixture->dir);
    g_free(fixture->state);
    g_free(fixture->dir);
}

static void reopen(Fixture *fixture)
{
    g_autoptr(GError) error = NULL;

    g_clear_pointer(&fixture->store, store_free);
    fixture->store = store_open(fixture->state, &error);
    g_assert_no_error(error);
    g_assert_nonnull(fixture->store);
}

static char *db_path(Fixture *fixture)
{
    return g_build_filename(fixture->state, STORE_FILE_NAME, NULL);
}

/* A second, raw connection: to look at what the store wrote, or tamper. */
static sqlite3 *raw_open(Fixture *fixture)
{
    g_autofree char *path = db_path(fixture);
    sqlite3 *db = NULL;

    g_assert_cmpint(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static char *raw_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt = NULL;

    g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
    char *text = g_strdup((const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    return text;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    char *message = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &message);
    if (rc != SQLITE_OK)
        g_error("%s: %s", sql, message);
}

static ApiTenant *make_tenant(const char *name)
{
    ApiTenant *tenant = api_tenant_new();

    tenant->id = g_uuid_string_random();
    tenant->name = g_strdup(name);
    tenant->quota.stacks = 3;
    tenant->quota.vcpus = 16;
    tenant->quota.memory_mib = 4096;
    tenant->quota.disk_gib = 20;
    tenant->created_at = g_strdup(T0);
    tenant->updated_at = g_strdup(T0);
    return tenant;
}

static ApiTenant *add_tenant(Store *store, const char *name)
{
    g_autoptr(GError) error = NULL;
    ApiTenant *tenant = make_tenant(name);

    g_assert_true(store_tenant_insert(store, tenant, &error));
    g_assert_no_error(error);
    return tenant;
}

static void fill_hash(guint8 hash[STORE_TOKEN_HASH_LEN], guint8 seed)
{
    for (int i = 0; i < STORE_TOKEN_HASH_LEN; i++)
        hash[i] = (guint8)(seed * 31 + i);
}

static ApiOperation *make_operation(const char *kind, const char *tenant, ApiOperationStatus status)
{
    ApiOperation *operation = api_operation_new();

    operation->id = g_uuid_string_random();
    operation->kind = g_strdup(kind);
    operation->target = g_strdup("stacks/web");
    operation->tenant = g_strdup(tenant);
    operation->status = status;
    operation->created_at = g_strdup(T0);
    operation->updated_at = g_strdup(T0);
    return operation;
}

static void assert_tenant_equal(const ApiTenant *a, const ApiTenant *b)
{
    g_assert_cmpstr(a->id, ==, b->id);
    g_assert_cmpstr(a->name, ==, b->name);
    g_assert_cmpint(a->quota.stacks, ==, b->quota.stacks);
    g_assert_cmpint(a->quota.vcpus, ==, b->quota.vcpus);
    g_assert_cmpint(a->quota.memory_mib, ==, b->quota.memory_mib);
    g_assert_cmpint(a->quota.disk_gib, ==, b->quota.disk_gib);
    g_assert_cmpstr(a->created_at, ==, b->created_at);
    g_assert_cmpstr(a->updated_at, ==, b->updated_at);
}

static void assert_operation_equal(const ApiOperation *a, const ApiOperation *b)
{
    g_assert_cmpstr(a->id, ==, b->id);
    g_assert_cmpstr(a->kind, ==, b->kind);
    g_assert_cmpstr(a->target, ==, b->target);
    g_assert_cmpstr(a->tenant, ==, b->tenant);
    g_assert_cmpint(a->status, ==, b->status);
    g_assert_cmpint(a->progress.percent, ==, b->progress.percent);
    g_assert_cmpstr(a->progress.stage, ==, b->progress.stage);
    g_assert_cmpint(a->progress.bytes_done, ==, b->progress.bytes_done);
    g_assert_cmpint(a->progress.bytes_total, ==, b->progress.bytes_total);
    g_assert_cmpstr(a->error, ==, b->error);
    g_assert_cmpstr(a->created_at, ==, b->created_at);
    g_assert_cmpstr(a->updated_at, ==, b->updated_at);
}

static void assert_mode(const char *path, mode_t mode)
{
    struct stat st;

    g_assert_cmpint(g_stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, mode);
}

/* ---- open and migrations ------------------------------------------------ */

static void test_open_creates(Fixture *fixture, gconstpointer data)
{
    g_autofree char *path = db_path(fixture);
    g_autofree char *wal = g_strconcat(path, "-wal", NULL);

    (void)data;
    assert_mode(fixture->state, 0700);
    assert_mode(path, 0600);
    /* The WAL exists while the store is open and is as private as the db. */
    assert_mode(wal, 0600);
    g_assert_cmpint(store_schema_version(fixture->store), ==, 1);

    sqlite3 *db = raw_open(fixture);
    g_autofree char *mode = raw_text(db, "PRAGMA journal_mode");
    g_assert_cmpstr(mode, ==, "wal");
    g_autofree char *tables =
        raw_text(db, "SELECT group_concat(name, ',') FROM "
                     "(SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name)");
    g_assert_cmpstr(tables, ==, "operations,tenants,tokens");
    sqlite3_close(db);
}

static void test_open_tightens_mode(Fixture *fixture, gconstpointer data)
{
    g_autofree char *path = db_path(fixture);

    (void)data;
    g_clear_pointer(&fixture->store, store_free);
    g_assert_cmpint(g_chmod(path, 0644), ==, 0);
    reopen(fixture);
    assert_mode(path, 0600);
}

static void test_open_bad_dir(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *file = g_build_filename(fixture->dir, "plain-file", NULL);
    g_autofree char *below = g_build_filename(file, "state", NULL);

    (void)data;
    g_assert_true(g_file_set_contents(file, "x", 1, NULL));
    Store *store = store_open(below, &error);
    g_assert_null(store);
    g_assert_error(error, TD_ERROR, TD_ERROR_INTERNAL);
    g_assert_nonnull(strstr(error->message, below));
}

static void test_reopen_keeps_data(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiTenant) tenant = add_tenant(fixture->store, "acme");
    g_autoptr(ApiOperation) operation = make_operation("stack.create", "acme", API_OP_SUCCEEDED);
    guint8 hash[STORE_TOKEN_HASH_LEN];

    (void)data;
    fill_hash(hash, 1);
    g_assert_true(store_token_insert(fixture->store, "tok-1", "acme", hash, T0, &error));
    g_assert_no_error(error);
    operation->progress.percent = 100;
    operation->progress.stage = g_strdup("done");
    g_assert_true(store_operation_insert(fixture->store, operation, &error));
    g_assert_no_error(error);

    reopen(fixture);

    g_autoptr(ApiTenant) tenant2 = store_tenant_get(fixture->store, "acme", &error);
    g_assert_no_error(error);
    assert_tenant_equal(tenant2, tenant);
    g_autofree char *owner = store_token_lookup(fixture->store, hash);
    g_assert_cmpstr(owner, ==, "acme");
    g_autoptr(ApiOperation) operation2 = store_operation_get(fixture->store, operation->id, &error);
    g_assert_no_error(error);
    assert_operation_equal(operation2, operation);
}

static char *schema_text(Fixture *fixture)
{
    sqlite3 *db = raw_open(fixture);
    char *schema = raw_text(db, "SELECT group_concat(name || ':' || ifnull(sql, ''), ';') FROM "
                                "(SELECT name, sql FROM sqlite_master ORDER BY name)");
    sqlite3_close(db);
    return schema;
}

static void test_migration_idempotent(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_autoptr(ApiTenant) tenant = add_tenant(fixture->store, "acme");
    g_autofree char *before = schema_text(fixture);

    for (int i = 0; i < 3; i++) {
        reopen(fixture);
        g_assert_cmpint(store_schema_version(fixture->store), ==, 1);
    }
    g_autofree char *after = schema_text(fixture);
    g_assert_cmpstr(after, ==, before);
    g_assert_nonnull(strstr(after, "operations_status:CREATE INDEX"));

    sqlite3 *db = raw_open(fixture);
    g_autofree char *tenants = raw_text(db, "SELECT count(*) FROM tenants");
    sqlite3_close(db);
    g_assert_cmpstr(tenants, ==, "1");
}

static void test_newer_version_refused(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_clear_pointer(&fixture->store, store_free);
    sqlite3 *db = raw_open(fixture);
    raw_exec(db, "PRAGMA user_version = 99");
    sqlite3_close(db);

    fixture->store = store_open(fixture->state, &error);
    g_assert_null(fixture->store);
    g_assert_error(error, TD_ERROR, TD_ERROR_INTERNAL);
    g_assert_nonnull(strstr(error->message, "schema version 99"));
    g_assert_nonnull(strstr(error->message, "newer"));

    /* Nothing was downgraded. */
    db = raw_open(fixture);
    g_autofree char *version = raw_text(db, "PRAGMA user_version");
    sqlite3_close(db);
    g_assert_cmpstr(version, ==, "99");
}

/* ---- tenants ------------------------------------------------------------- */

static void test_tenant_crud(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_autoptr(ApiTenant) zeta = add_tenant(fixture->store, "zeta");
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiTenant) mid = add_tenant(fixture->store, "mid-1");

    g_autoptr(ApiTenant) got = store_tenant_get(fixture->store, "acme", &error);
    g_assert_no_error(error);
    assert_tenant_equal(got, acme);

    g_autoptr(GPtrArray) list = store_tenant_list(fixture->store, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(list->len, ==, 3);
    assert_tenant_equal(g_ptr_array_index(list, 0), acme);
    assert_tenant_equal(g_ptr_array_index(list, 1), mid);
    assert_tenant_equal(g_ptr_array_index(list, 2), zeta);

    /* Same name, new id: the name is what clashes. */
    g_autoptr(ApiTenant) again = make_tenant("acme");
    g_assert_false(store_tenant_insert(fixture->store, again, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_cmpstr(error->message, ==, "tenant 'acme' already exists");
    g_clear_error(&error);

    /* Same id, new name. */
    g_autoptr(ApiTenant) same_id = make_tenant("other");
    g_free(same_id->id);
    same_id->id = g_strdup(acme->id);
    g_assert_false(store_tenant_insert(fixture->store, same_id, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_clear_error(&error);

    g_assert_null(store_tenant_get(fixture->store, "nobody", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "tenant 'nobody' not found");
    g_clear_error(&error);

    ApiQuota quota = {.stacks = 7, .vcpus = 70, .memory_mib = 7000, .disk_gib = 700};
    g_assert_true(store_tenant_set_quota(fixture->store, "acme", &quota, T1, &error));
    g_assert_no_error(error);
    g_clear_pointer(&got, api_tenant_free);
    got = store_tenant_get(fixture->store, "acme", &error);
    g_assert_no_error(error);
    g_assert_cmpint(got->quota.stacks, ==, 7);
    g_assert_cmpint(got->quota.vcpus, ==, 70);
    g_assert_cmpint(got->quota.memory_mib, ==, 7000);
    g_assert_cmpint(got->quota.disk_gib, ==, 700);
    g_assert_cmpstr(got->created_at, ==, T0);
    g_assert_cmpstr(got->updated_at, ==, T1);
    /* Only acme changed. */
    g_clear_pointer(&got, api_tenant_free);
    got = store_tenant_get(fixture->store, "zeta", &error);
    g_assert_no_error(error);
    assert_tenant_equal(got, zeta);

    g_assert_false(store_tenant_set_quota(fixture->store, "nobody", &quota, T1, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "tenant 'nobody' not found");
    g_clear_error(&error);

    g_assert_true(store_tenant_delete(fixture->store, "mid-1", &error));
    g_assert_no_error(error);
    g_assert_null(store_tenant_get(fixture->store, "mid-1", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(store_tenant_delete(fixture->store, "mid-1", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "tenant 'mid-1' not found");
    g_clear_error(&error);

    g_clear_pointer(&list, g_ptr_array_unref);
    list = store_tenant_list(fixture->store, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(list->len, ==, 2);

    /* The name is free again. */
    g_autoptr(ApiTenant) reborn = add_tenant(fixture->store, "mid-1");
}

/* What the database refuses for other reasons than a clash is INTERNAL. */
static void test_tenant_internal_errors(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiTenant) tenant = make_tenant("acme");

    (void)data;
    tenant->quota.vcpus = -1;
    g_assert_false(store_tenant_insert(fixture->store, tenant, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_INTERNAL);
    g_assert_nonnull(strstr(error->message, "CHECK constraint failed"));
    g_clear_error(&error);

    tenant->quota.vcpus = 1;
    g_clear_pointer(&tenant->created_at, g_free);
    g_assert_false(store_tenant_insert(fixture->store, tenant, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_INTERNAL);
    g_assert_nonnull(strstr(error->message, "tenants.created_at"));
    g_clear_error(&error);

    g_assert_null(store_tenant_get(fixture->store, "acme", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
}

static void test_tenant_delete_cascades_tokens(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    guint8 hash_a[STORE_TOKEN_HASH_LEN], hash_b[STORE_TOKEN_HASH_LEN];

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiTenant) other = add_tenant(fixture->store, "other");
    fill_hash(hash_a, 1);
    fill_hash(hash_b, 2);
    g_assert_true(store_token_insert(fixture->store, "tok-a", "acme", hash_a, T0, &error));
    g_assert_true(store_token_insert(fixture->store, "tok-b", "other", hash_b, T0, &error));
    g_assert_no_error(error);

    g_assert_true(store_tenant_delete(fixture->store, "acme", &error));
    g_assert_no_error(error);
    g_assert_null(store_token_lookup(fixture->store, hash_a));
    g_autofree char *owner = store_token_lookup(fixture->store, hash_b);
    g_assert_cmpstr(owner, ==, "other");

    /* Gone from the table, not merely hidden by the join. */
    sqlite3 *db = raw_open(fixture);
    g_autofree char *count = raw_text(db, "SELECT count(*) FROM tokens");
    sqlite3_close(db);
    g_assert_cmpstr(count, ==, "1");

    /* A new tenant with the old name does not get the old token. */
    g_autoptr(ApiTenant) reborn = add_tenant(fixture->store, "acme");
    g_assert_null(store_token_lookup(fixture->store, hash_a));
}

static void test_names_verbatim(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    const char *names[] = {INJECTION_NAME, UNICODE_NAME, "it's", "a\"b", "%s%s%s", "' OR '1'='1"};

    (void)data;
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autoptr(ApiTenant) tenant = add_tenant(fixture->store, names[i]);
        g_autoptr(ApiTenant) got = store_tenant_get(fixture->store, names[i], &error);
        g_assert_no_error(error);
        assert_tenant_equal(got, tenant);
    }
    /* "' OR '1'='1" finds nothing but itself. */
    g_assert_null(store_tenant_get(fixture->store, "x' OR '1'='1", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);

    reopen(fixture);
    g_autoptr(GPtrArray) list = store_tenant_list(fixture->store, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(list->len, ==, G_N_ELEMENTS(names));
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        gboolean found = FALSE;
        for (guint j = 0; j < list->len; j++)
            found |= g_strcmp0(((ApiTenant *)g_ptr_array_index(list, j))->name, names[i]) == 0;
        g_assert_true(found);
    }

    /* Owner names travel verbatim through tokens and operations too. */
    guint8 hash[STORE_TOKEN_HASH_LEN];
    fill_hash(hash, 9);
    g_assert_true(
        store_token_insert(fixture->store, INJECTION_NAME, UNICODE_NAME, hash, T0, &error));
    g_assert_no_error(error);
    g_autofree char *owner = store_token_lookup(fixture->store, hash);
    g_assert_cmpstr(owner, ==, UNICODE_NAME);

    g_autoptr(ApiOperation) operation =
        make_operation(INJECTION_NAME, INJECTION_NAME, API_OP_RUNNING);
    operation->progress.stage = g_strdup(UNICODE_NAME);
    g_assert_true(store_operation_insert(fixture->store, operation, &error));
    g_assert_no_error(error);
    g_autoptr(ApiOperation) got = store_operation_get(fixture->store, operation->id, &error);
    g_assert_no_error(error);
    assert_operation_equal(got, operation);
}

/* ---- tokens -------------------------------------------------------------- */

static void test_tokens(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    guint8 hash_a[STORE_TOKEN_HASH_LEN], hash_a2[STORE_TOKEN_HASH_LEN];
    guint8 hash_b[STORE_TOKEN_HASH_LEN], near[STORE_TOKEN_HASH_LEN];

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiTenant) other = add_tenant(fixture->store, "other");
    fill_hash(hash_a, 1);
    fill_hash(hash_a2, 2);
    fill_hash(hash_b, 3);

    g_assert_true(store_token_insert(fixture->store, "tok-a", "acme", hash_a, T0, &error));
    g_assert_true(store_token_insert(fixture->store, "tok-a2", "acme", hash_a2, T0, &error));
    g_assert_true(store_token_insert(fixture->store, "tok-b", "other", hash_b, T0, &error));
    g_assert_no_error(error);

    g_autofree char *owner_a = store_token_lookup(fixture->store, hash_a);
    g_autofree char *owner_a2 = store_token_lookup(fixture->store, hash_a2);
    g_autofree char *owner_b = store_token_lookup(fixture->store, hash_b);
    g_assert_cmpstr(owner_a, ==, "acme");
    g_assert_cmpstr(owner_a2, ==, "acme");
    g_assert_cmpstr(owner_b, ==, "other");

    /* One bit off, at either end, is a stranger. */
    memcpy(near, hash_a, sizeof near);
    near[STORE_TOKEN_HASH_LEN - 1] ^= 1;
    g_assert_null(store_token_lookup(fixture->store, near));
    memcpy(near, hash_a, sizeof near);
    near[0] ^= 0x80;
    g_assert_null(store_token_lookup(fixture->store, near));

    /* Unknown tenant, reused id, reused hash. */
    g_assert_false(store_token_insert(fixture->store, "tok-x", "nobody", near, T0, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "tenant 'nobody' not found");
    g_clear_error(&error);
    g_assert_false(store_token_insert(fixture->store, "tok-a", "acme", near, T0, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_clear_error(&error);
    g_assert_false(store_token_insert(fixture->store, "tok-y", "other", hash_a, T0, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_clear_error(&error);
    g_assert_null(store_token_lookup(fixture->store, near));

    /* Another tenant's token is not found, and stays alive. */
    g_assert_false(store_token_revoke(fixture->store, "other", "tok-a", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "token 'tok-a' not found");
    g_clear_error(&error);
    g_clear_pointer(&owner_a, g_free);
    owner_a = store_token_lookup(fixture->store, hash_a);
    g_assert_cmpstr(owner_a, ==, "acme");

    g_assert_false(store_token_revoke(fixture->store, "nobody", "tok-a", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(store_token_revoke(fixture->store, "acme", "tok-missing", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);

    g_assert_true(store_token_revoke(fixture->store, "acme", "tok-a", &error));
    g_assert_no_error(error);
    g_assert_null(store_token_lookup(fixture->store, hash_a));
    g_clear_pointer(&owner_a2, g_free);
    owner_a2 = store_token_lookup(fixture->store, hash_a2);
    g_assert_cmpstr(owner_a2, ==, "acme");

    /* Revoked stays revoked: twice is not found, and across a restart. */
    g_assert_false(store_token_revoke(fixture->store, "acme", "tok-a", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);
    reopen(fixture);
    g_assert_null(store_token_lookup(fixture->store, hash_a));

    sqlite3 *db = raw_open(fixture);
    g_autofree char *revoked = raw_text(db, "SELECT revoked_at FROM tokens WHERE id = 'tok-a'");
    g_autofree char *stored = raw_text(db, "SELECT hex(hash) FROM tokens WHERE id = 'tok-b'");
    sqlite3_close(db);
    g_assert_true(g_str_has_suffix(revoked, "Z"));
    g_autoptr(GDateTime) when = g_date_time_new_from_iso8601(revoked, NULL);
    g_assert_nonnull(when);
    /* Only the hash is stored, as given. */
    g_autoptr(GString) expected = g_string_new(NULL);
    for (int i = 0; i < STORE_TOKEN_HASH_LEN; i++)
        g_string_append_printf(expected, "%02X", hash_b[i]);
    g_assert_cmpstr(stored, ==, expected->str);
}

/* ---- operations ---------------------------------------------------------- */

static void test_operations(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiOperation) mine = make_operation("stack.create", "acme", API_OP_PENDING);
    g_autoptr(ApiOperation) operator= make_operation("image.import", NULL, API_OP_PENDING);

    g_assert_true(store_operation_insert(fixture->store, mine, &error));
    g_assert_true(store_operation_insert(fixture->store, operator, & error));
    g_assert_no_error(error);

    g_autoptr(ApiOperation) got = store_operation_get(fixture->store, mine->id, &error);
    g_assert_no_error(error);
    assert_operation_equal(got, mine);
    g_clear_pointer(&got, api_operation_free);
    got = store_operation_get(fixture->store, operator->id, &error);
    g_assert_no_error(error);
    g_assert_null(got->tenant);
    assert_operation_equal(got, operator);

    /* Update replaces status, progress, error and updated_at only. */
    g_autoptr(ApiOperation) changed = api_operation_copy(mine);
    changed->status = API_OP_FAILED;
    changed->progress.percent = 42;
    changed->progress.stage = g_strdup("copying image");
    changed->progress.bytes_done = G_GINT64_CONSTANT(5000000000);
    changed->progress.bytes_total = G_GINT64_CONSTANT(10000000000);
    changed->error = g_strdup("disk full");
    g_free(changed->updated_at);
    changed->updated_at = g_strdup(T1);
    g_free(changed->kind);
    changed->kind = g_strdup("ignored.kind");
    g_assert_true(store_operation_update(fixture->store, changed, &error));
    g_assert_no_error(error);
    g_clear_pointer(&got, api_operation_free);
    got = store_operation_get(fixture->store, mine->id, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(got->kind, ==, "stack.create");
    g_free(changed->kind);
    changed->kind = g_strdup("stack.create");
    assert_operation_equal(got, changed);

    /* And back: NULL error and stage are stored as NULL. */
    changed->status = API_OP_RUNNING;
    g_clear_pointer(&changed->error, g_free);
    g_clear_pointer(&changed->progress.stage, g_free);
    g_assert_true(store_operation_update(fixture->store, changed, &error));
    g_clear_pointer(&got, api_operation_free);
    got = store_operation_get(fixture->store, mine->id, &error);
    g_assert_no_error(error);
    assert_operation_equal(got, changed);

    /* Missing, duplicate, unknown owner. */
    g_clear_pointer(&got, api_operation_free);
    g_assert_null(store_operation_get(fixture->store, "nope", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "operation 'nope' not found");
    g_clear_error(&error);
    g_autoptr(ApiOperation) ghost = make_operation("stack.delete", NULL, API_OP_RUNNING);
    g_assert_false(store_operation_update(fixture->store, ghost, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(store_operation_insert(fixture->store, mine, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_clear_error(&error);
    g_autoptr(ApiOperation) orphan = make_operation("stack.create", "nobody", API_OP_PENDING);
    g_assert_false(store_operation_insert(fixture->store, orphan, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "tenant 'nobody' not found");
    g_clear_error(&error);
    g_assert_null(store_operation_get(fixture->store, orphan->id, &error));
    g_clear_error(&error);

    /* Bad progress is refused by the schema. */
    changed->progress.percent = 101;
    g_assert_false(store_operation_update(fixture->store, changed, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_INTERNAL);
    g_clear_error(&error);
}

static void test_operation_outlives_tenant(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiOperation) operation = make_operation("stack.delete", "acme", API_OP_RUNNING);
    g_assert_true(store_operation_insert(fixture->store, operation, &error));
    g_assert_no_error(error);

    /* A running operation still acts for its tenant: no delete. */
    g_assert_false(store_tenant_delete(fixture->store, "acme", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_nonnull(strstr(error->message, "operations in progress"));
    g_clear_error(&error);

    operation->status = API_OP_SUCCEEDED;
    g_assert_true(store_operation_update(fixture->store, operation, &error));
    g_assert_no_error(error);
    g_assert_true(store_tenant_delete(fixture->store, "acme", &error));
    g_assert_no_error(error);

    /* A new "acme" is someone else: it does not inherit the operation. */
    g_autoptr(ApiTenant) reborn = add_tenant(fixture->store, "acme");
    g_autoptr(ApiOperation) got = store_operation_get(fixture->store, operation->id, &error);
    g_assert_no_error(error);
    g_assert_null(got->tenant);
    g_assert_cmpint(got->status, ==, API_OP_SUCCEEDED);
}

static void test_fail_interrupted(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    const ApiOperationStatus statuses[] = {API_OP_PENDING, API_OP_RUNNING, API_OP_SUCCEEDED,
                                           API_OP_FAILED, API_OP_CANCELLED};
    ApiOperation *operations[G_N_ELEMENTS(statuses)];

    (void)data;
    for (gsize i = 0; i < G_N_ELEMENTS(statuses); i++) {
        operations[i] = make_operation("stack.create", NULL, statuses[i]);
        operations[i]->progress.percent = 10 * (int)i;
        if (statuses[i] == API_OP_FAILED)
            operations[i]->error = g_strdup("earlier failure");
        g_assert_true(store_operation_insert(fixture->store, operations[i], &error));
        g_assert_no_error(error);
    }

    reopen(fixture);
    g_assert_cmpint(store_operation_fail_interrupted(fixture->store, T2, &error), ==, 2);
    g_assert_no_error(error);

    for (gsize i = 0; i < G_N_ELEMENTS(statuses); i++) {
        g_autoptr(ApiOperation) got =
            store_operation_get(fixture->store, operations[i]->id, &error);
        g_assert_no_error(error);
        if (statuses[i] == API_OP_PENDING || statuses[i] == API_OP_RUNNING) {
            g_assert_cmpint(got->status, ==, API_OP_FAILED);
            g_assert_cmpstr(got->error, ==, "interrupted by daemon restart");
            g_assert_cmpstr(got->updated_at, ==, T2);
            g_assert_cmpint(got->progress.percent, ==, operations[i]->progress.percent);
            g_assert_cmpstr(got->created_at, ==, T0);
        } else {
            assert_operation_equal(got, operations[i]);
        }
        api_operation_free(operations[i]);
    }
    /* Nothing left to fail. */
    g_assert_cmpint(store_operation_fail_interrupted(fixture->store, T2, &error), ==, 0);
    g_assert_no_error(error);
}

static void test_operation_counts(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    const struct {
        const char *kind;
        ApiOperationStatus status;
    } rows[] = {
        {"stack.create", API_OP_SUCCEEDED}, {"stack.create", API_OP_SUCCEEDED},
        {"stack.create", API_OP_FAILED},    {"stack.delete", API_OP_RUNNING},
        {"stack.create", API_OP_SUCCEEDED}, {"image.import", API_OP_PENDING},
    };

    (void)data;
    g_autoptr(GHashTable) empty = store_operation_counts(fixture->store, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(g_hash_table_size(empty), ==, 0);

    for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_autoptr(ApiOperation) operation = make_operation(rows[i].kind, NULL, rows[i].status);
        g_assert_true(store_operation_insert(fixture->store, operation, &error));
        g_assert_no_error(error);
    }
    g_autoptr(GHashTable) counts = store_operation_counts(fixture->store, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(g_hash_table_size(counts), ==, 4);
    g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(counts, "stack.create\tsucceeded")), ==, 3);
    g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(counts, "stack.create\tfailed")), ==, 1);
    g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(counts, "stack.delete\trunning")), ==, 1);
    g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(counts, "image.import\tpending")), ==, 1);
    g_assert_false(g_hash_table_contains(counts, "stack.create\tpending"));
}

/* ---- threads ------------------------------------------------------------- */

typedef struct {
    Store *store;
    int index;
    int failures;
} Worker;

static gpointer worker_run(gpointer data)
{
    Worker *worker = data;
    const char *tenant = worker->index % 2 == 0 ? "acme" : NULL;

    for (int i = 0; i < OPS_PER_THREAD; i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(ApiOperation) operation = make_operation("stack.create", tenant, API_OP_PENDING);
        operation->progress.bytes_total = worker->index * 1000 + i;
        if (!store_operation_insert(worker->store, operation, &error)) {
            worker->failures++;
            continue;
        }
        operation->status = API_OP_SUCCEEDED;
        operation->progress.percent = 100;
        if (!store_operation_update(worker->store, operation, &error)) {
            worker->failures++;
            continue;
        }
        g_autoptr(ApiOperation) got = store_operation_get(worker->store, operation->id, &error);
        if (got == NULL || got->status != API_OP_SUCCEEDED ||
            got->progress.bytes_total != operation->progress.bytes_total ||
            g_strcmp0(got->tenant, tenant) != 0)
            worker->failures++;
        g_autoptr(GPtrArray) list = store_tenant_list(worker->store, &error);
        if (list == NULL || list->len != 1)
            worker->failures++;
    }
    return NULL;
}

static void test_threads(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    GThread *threads[THREADS];
    Worker workers[THREADS];

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (Worker){.store = fixture->store, .index = i};
        threads[i] = g_thread_new("store-worker", worker_run, &workers[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        g_thread_join(threads[i]);
        g_assert_cmpint(workers[i].failures, ==, 0);
    }
    g_autoptr(GHashTable) counts = store_operation_counts(fixture->store, &error);
    g_assert_no_error(error);
    g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(counts, "stack.create\tsucceeded")), ==,
                    THREADS * OPS_PER_THREAD);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
    ADD("/store/open/creates", test_open_creates);
    ADD("/store/open/tightens-mode", test_open_tightens_mode);
    ADD("/store/open/bad-dir", test_open_bad_dir);
    ADD("/store/open/reopen-keeps-data", test_reopen_keeps_data);
    ADD("/store/migrate/idempotent", test_migration_idempotent);
    ADD("/store/migrate/newer-refused", test_newer_version_refused);
    ADD("/store/tenant/crud", test_tenant_crud);
    ADD("/store/tenant/internal-errors", test_tenant_internal_errors);
    ADD("/store/tenant/delete-cascades-tokens", test_tenant_delete_cascades_tokens);
    ADD("/store/tenant/names-verbatim", test_names_verbatim);
    ADD("/store/token/lifecycle", test_tokens);
    ADD("/store/operation/crud", test_operations);
    ADD("/store/operation/outlives-tenant", test_operation_outlives_tenant);
    ADD("/store/operation/fail-interrupted", test_fail_interrupted);
    ADD("/store/operation/counts", test_operation_counts);
    ADD("/store/threads", test_threads);
#undef ADD

    return g_test_run();
}
