/* daemon/store against real SQLite databases, each in a fresh temporary
 * state directory. */
#include "tests/unit/tree-util.h"
#include "api/json.h"
#include "daemon/error.h"
#include "daemon/store.h"
#include "daemon/store_events.h"

#include <errno.h>
#include <stdarg.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>

#define T0 "2024-05-01T10:00:00Z"
#define T1 "2024-05-01T11:00:00Z"
#define T2 "2024-05-01T12:00:00Z"

/* What this turtled writes; a new migration changes it and the table list. */
#define SCHEMA_VERSION 9

#define THREADS        8
#define OPS_PER_THREAD 200
#define INJECTION_NAME "x'); DROP TABLE tenants;--"
#define UNICODE_NAME   "t\xC3\xA9nant-\xE5\x90\x8D\xE5\x89\x8D \"quoted\" \\ %s %n \xF0\x9F\x90\xA2"

typedef struct {
    char *dir;   /* the temporary directory, removed afterwards */
    char *state; /* dir/state: store_open must create it */
    Store *store;
} Fixture;

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
    tenant->quota.devices = 2;
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
    g_assert_cmpint(a->quota.devices, ==, b->quota.devices);
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
    g_assert_cmpint(store_schema_version(fixture->store), ==, SCHEMA_VERSION);

    sqlite3 *db = raw_open(fixture);
    g_autofree char *mode = raw_text(db, "PRAGMA journal_mode");
    g_assert_cmpstr(mode, ==, "wal");
    g_autofree char *tables =
        raw_text(db, "SELECT group_concat(name, ',') FROM "
                     "(SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name)");
    g_assert_cmpstr(tables, ==,
                    "device_classes,devices,events,images,network_tenants,networks,operations,"
                    "peers,sqlite_sequence,stack_images,stack_migrations,stack_nics,stacks,"
                    "tenants,tokens");
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
        g_assert_cmpint(store_schema_version(fixture->store), ==, SCHEMA_VERSION);
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

    ApiQuota quota = {
        .stacks = 7, .vcpus = 70, .memory_mib = 7000, .disk_gib = 700, .devices = 1024};
    g_assert_true(store_tenant_set_quota(fixture->store, "acme", &quota, T1, &error));
    g_assert_no_error(error);
    g_clear_pointer(&got, api_tenant_free);
    got = store_tenant_get(fixture->store, "acme", &error);
    g_assert_no_error(error);
    g_assert_cmpint(got->quota.stacks, ==, 7);
    g_assert_cmpint(got->quota.vcpus, ==, 70);
    g_assert_cmpint(got->quota.memory_mib, ==, 7000);
    g_assert_cmpint(got->quota.disk_gib, ==, 700);
    g_assert_cmpint(got->quota.devices, ==, 1024);
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

/* ---- the operations list ------------------------------------------------------ */

static ApiOperation *add_operation(Store *store, const char *tenant, const char *kind,
                                   ApiOperationStatus status, int second)
{
    g_autoptr(GError) error = NULL;
    ApiOperation *operation = make_operation(kind, tenant, status);

    g_free(operation->created_at);
    operation->created_at = g_strdup_printf("2024-05-01T10:00:%02d.000000Z", second);
    g_assert_true(store_operation_insert(store, operation, &error));
    g_assert_no_error(error);
    return operation;
}

/* Newest first: created_at, then id, both descending. */
static gint newest_first(gconstpointer a, gconstpointer b)
{
    const ApiOperation *x = *(ApiOperation *const *)a;
    const ApiOperation *y = *(ApiOperation *const *)b;
    int by_time = strcmp(y->created_at, x->created_at);
    return by_time != 0 ? by_time : strcmp(y->id, x->id);
}

static gboolean operation_selected(const ApiOperation *operation,
                                   const StoreOperationFilter *filter)
{
    return (filter->tenant == NULL || g_strcmp0(operation->tenant, filter->tenant) == 0) &&
           (filter->statuses == 0 || (filter->statuses & STORE_STATE(operation->status)) != 0) &&
           (filter->kind == NULL || strcmp(operation->kind, filter->kind) == 0);
}

/* "id,id,...": the ids of @operations from @first on. */
static char *operation_ids(const GPtrArray *operations, guint first)
{
    g_autoptr(GString) ids = g_string_new(NULL);
    for (guint i = first; i < operations->len; i++)
        g_string_append_printf(ids, "%s%s", i > first ? "," : "",
                               ((const ApiOperation *)g_ptr_array_index(operations, i))->id);
    return g_string_free(g_steal_pointer(&ids), FALSE);
}

/* The ids a listing of @filter must show, in its order, from what was inserted. */
static char *expected_ids(const GPtrArray *inserted, const StoreOperationFilter *filter)
{
    g_autoptr(GPtrArray) selected = g_ptr_array_new();
    for (guint i = 0; i < inserted->len; i++)
        if (operation_selected(g_ptr_array_index(inserted, i), filter))
            g_ptr_array_add(selected, g_ptr_array_index(inserted, i));
    g_ptr_array_sort(selected, newest_first);
    return operation_ids(selected, 0);
}

/* A copy of one item of a page (api_stack_copy and the like). */
typedef gpointer (*ItemCopy)(gconstpointer item);

/* One page of a paged store list, for walk_pages. */
typedef GPtrArray *(*PageFetch)(Store *store, gconstpointer query, int limit, const char *after,
                                char **next, GError **error);

/* Every page from @after, @limit at a time, following next: copies of
 * their items in order (freed with @item_free), the page count in *pages.
 * Only the last page may be short, and it has no next. */
static GPtrArray *walk_pages(Store *store, PageFetch fetch, gconstpointer query, int limit,
                             const char *after, ItemCopy copy, GDestroyNotify item_free,
                             guint *pages)
{
    g_autoptr(GError) error = NULL;
    GPtrArray *all = g_ptr_array_new_with_free_func(item_free);
    g_autofree char *cursor = g_strdup(after);

    *pages = 0;
    do {
        g_autofree char *next = NULL;
        g_autoptr(GPtrArray) page = fetch(store, query, limit, cursor, &next, &error);
        g_assert_no_error(error);
        g_assert_nonnull(page);
        (*pages)++;
        g_assert_cmpuint(page->len, <=, (guint)limit);
        if (next != NULL)
            g_assert_cmpuint(page->len, ==, (guint)limit);
        for (guint i = 0; i < page->len; i++)
            g_ptr_array_add(all, copy(g_ptr_array_index(page, i)));
        g_free(cursor);
        cursor = g_steal_pointer(&next);
        g_assert_cmpuint(*pages, <, 100);
    } while (cursor != NULL);
    return all;
}

static GPtrArray *fetch_operations(Store *store, gconstpointer filter, int limit, const char *after,
                                   char **next, GError **error)
{
    return store_operation_page(store, filter, limit, after, next, error);
}

/* Every page of @filter, @limit at a time from @after, following next. */
static GPtrArray *operation_pages(Store *store, const StoreOperationFilter *filter, int limit,
                                  const char *after, guint *pages)
{
    return walk_pages(store, fetch_operations, filter, limit, after, (ItemCopy)api_operation_copy,
                      (GDestroyNotify)api_operation_free, pages);
}

/* Walks @filter @limit at a time and checks it shows exactly what it must,
 * in @pages pages. */
static void assert_walk(Store *store, const GPtrArray *inserted, const StoreOperationFilter *filter,
                        int limit, guint pages)
{
    guint walked = 0;
    g_autoptr(GPtrArray) all = operation_pages(store, filter, limit, NULL, &walked);
    g_autofree char *got = operation_ids(all, 0);
    g_autofree char *want = expected_ids(inserted, filter);
    g_assert_cmpstr(got, ==, want);
    g_assert_cmpuint(walked, ==, pages);
}

/* A cursor as the store writes them: base64url of "<listing>\0<id>", unpadded. */
static char *forge_cursor(const char *listing, const char *id)
{
    g_autofree char *raw = g_strdup_printf("%s%c%s", listing, '\0', id);
    gsize len = strlen(listing) + 1 + strlen(id);
    char *text = g_base64_encode((const guchar *)raw, len);
    g_strdelimit(text, "+", '-');
    g_strdelimit(text, "/", '_');
    char *pad = strchr(text, '=');
    if (pad != NULL)
        *pad = '\0';
    return text;
}

static void assert_page_refused(Store *store, const StoreOperationFilter *filter, int limit,
                                const char *after, int code, const char *message)
{
    g_autoptr(GError) error = NULL;
    /* Not ours to free: the store sets *next to NULL before anything else. */
    char *next = (char *)"untouched";
    g_test_message("after=%s limit=%d", after ? after : "(none)", limit);
    g_assert_null(store_operation_page(store, filter, limit, after, &next, &error));
    g_assert_error(error, TD_ERROR, code);
    g_assert_cmpstr(error->message, ==, message);
    g_assert_null(next);
}

static void test_operation_page(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) inserted =
        g_ptr_array_new_with_free_func((GDestroyNotify)api_operation_free);
    /* Inserted out of time order, two of acme's in the same microsecond: the
     * order must come from created_at, then id. */
    const struct {
        const char *tenant;
        const char *kind;
        ApiOperationStatus status;
        int second;
    } rows[] = {
        {"acme", "stack.create", API_OP_SUCCEEDED, 5},
        {"acme", "stack.migrate", API_OP_RUNNING, 1},
        {"beta", "stack.create", API_OP_FAILED, 4},
        {"acme", "stack.create", API_OP_FAILED, 9},
        {NULL, "test.hang", API_OP_SUCCEEDED, 0},
        {"acme", "stack.delete", API_OP_PENDING, 3},
        {"acme", "stack.migrate", API_OP_PENDING, 9},
        {"beta", "stack.migrate", API_OP_RUNNING, 6},
        {"acme", "stack.create", API_OP_CANCELLED, 7},
        {NULL, "test.sleep", API_OP_RUNNING, 10},
        {"acme", "stack.force-stop", API_OP_FAILED, 2},
        {"beta", "stack.start", API_OP_SUCCEEDED, 9},
        {"acme", "stack.create", API_OP_SUCCEEDED, 8},
    };

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiTenant) beta = add_tenant(fixture->store, "beta");
    g_autoptr(ApiTenant) idle = add_tenant(fixture->store, "idle");
    for (gsize i = 0; i < G_N_ELEMENTS(rows); i++)
        g_ptr_array_add(inserted, add_operation(fixture->store, rows[i].tenant, rows[i].kind,
                                                rows[i].status, rows[i].second));

    /* A tenant's 8, 3 at a time; everyone's 13 (the operator's own work
     * too), 4 at a time; a page that ends at the end has no next. */
    const StoreOperationFilter acme_all = {.tenant = "acme"};
    const StoreOperationFilter everyone = {0};
    const StoreOperationFilter beta_all = {.tenant = "beta"};
    assert_walk(fixture->store, inserted, &acme_all, 3, 3);
    assert_walk(fixture->store, inserted, &everyone, 4, 4);
    assert_walk(fixture->store, inserted, &beta_all, 3, 1);
    assert_walk(fixture->store, inserted, &acme_all, 1, 8);

    /* Filters, alone and together, with and without a tenant. */
    const StoreOperationFilter under_way = {
        .tenant = "acme", .statuses = STORE_STATE(API_OP_PENDING) | STORE_STATE(API_OP_RUNNING)};
    assert_walk(fixture->store, inserted, &under_way, 2, 2);
    const StoreOperationFilter migrations = {.kind = "stack.migrate"};
    assert_walk(fixture->store, inserted, &migrations, 1, 3);
    const StoreOperationFilter failed_creates = {
        .tenant = "acme", .statuses = STORE_STATE(API_OP_FAILED), .kind = "stack.create"};
    assert_walk(fixture->store, inserted, &failed_creates, 5, 1);
    const StoreOperationFilter running_anywhere = {.statuses = STORE_STATE(API_OP_RUNNING)};
    assert_walk(fixture->store, inserted, &running_anywhere, 2, 2);
    const StoreOperationFilter every_status = {.tenant = "acme",
                                               .statuses = STORE_OPERATION_ANY_STATUS};
    assert_walk(fixture->store, inserted, &every_status, 3, 3);
    g_autofree char *under_way_ids = expected_ids(inserted, &under_way);
    g_assert_cmpuint(strlen(under_way_ids), ==, 3 * 36 + 2); /* the filters do select */

    /* Nothing to show: an empty page without next. */
    const StoreOperationFilter nothing[] = {
        {.kind = "no.such-kind"},
        {.tenant = "idle"},
        {.tenant = "beta", .statuses = STORE_STATE(API_OP_CANCELLED)},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(nothing); i++) {
        g_autofree char *next = NULL;
        g_autoptr(GPtrArray) page =
            store_operation_page(fixture->store, &nothing[i], 10, NULL, &next, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(page->len, ==, 0);
        g_assert_null(next);
    }
    /* No limit: everything at once. */
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) unlimited =
        store_operation_page(fixture->store, &everyone, 0, NULL, &next, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(unlimited->len, ==, G_N_ELEMENTS(rows));
    g_assert_null(next);
    /* The operator's own work has no tenant. */
    g_assert_null(((ApiOperation *)g_ptr_array_index(unlimited, 0))->tenant);
    g_assert_cmpstr(((ApiOperation *)g_ptr_array_index(unlimited, 0))->kind, ==, "test.sleep");

    /* Stable: an operation submitted meanwhile comes before the first page,
     * and one that moves on stays where it was; the walk goes on from its
     * cursor, every operation of the start once. */
    g_autofree char *acme_before = expected_ids(inserted, &acme_all);
    g_autoptr(GPtrArray) first =
        store_operation_page(fixture->store, &acme_all, 3, NULL, &next, &error);
    g_assert_no_error(error);
    g_autoptr(ApiOperation) newest =
        add_operation(fixture->store, "acme", "stack.stop", API_OP_PENDING, 59);
    for (guint i = 0; i < inserted->len; i++) {
        ApiOperation *operation = g_ptr_array_index(inserted, i);
        if (g_strcmp0(operation->tenant, "acme") == 0 && operation->status == API_OP_PENDING) {
            operation->status = API_OP_FAILED;
            g_free(operation->updated_at);
            operation->updated_at = g_strdup(T2);
            g_assert_true(store_operation_update(fixture->store, operation, &error));
            g_assert_no_error(error);
        }
    }
    guint pages = 0;
    g_autoptr(GPtrArray) rest = operation_pages(fixture->store, &acme_all, 3, next, &pages);
    g_autofree char *first_ids = operation_ids(first, 0);
    g_autofree char *rest_ids = operation_ids(rest, 0);
    g_autofree char *walked = g_strdup_printf("%s,%s", first_ids, rest_ids);
    g_assert_cmpstr(walked, ==, acme_before);
    g_assert_cmpuint(pages, ==, 2);
    g_clear_pointer(&next, g_free);

    /* A cursor is a place in the order, whatever the filters: acme's cursor
     * after 3 gives the failed ones older than the third. */
    g_autoptr(GPtrArray) page =
        store_operation_page(fixture->store, &acme_all, 3, NULL, &next, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(((ApiOperation *)g_ptr_array_index(page, 0))->id, ==, newest->id);
    const StoreOperationFilter acme_failed = {.tenant = "acme",
                                              .statuses = STORE_STATE(API_OP_FAILED)};
    g_autoptr(GPtrArray) older_failed =
        operation_pages(fixture->store, &acme_failed, 10, next, &pages);
    const ApiOperation *third = g_ptr_array_index(page, 2);
    for (guint i = 0; i < older_failed->len; i++) {
        const ApiOperation *operation = g_ptr_array_index(older_failed, i);
        g_assert_cmpint(operation->status, ==, API_OP_FAILED);
        g_assert_cmpint(newest_first(&third, &operation), <, 0);
    }
    /* The page was 59 s and both of 9 s; then 3 s (was pending) and 2 s. */
    g_assert_cmpuint(older_failed->len, ==, 2);

    /* Cursors are tied to whose operations are listed. */
    const char *invalid = "after: invalid cursor";
    g_autofree char *everyone_next = NULL;
    g_autoptr(GPtrArray) everyone_page =
        store_operation_page(fixture->store, &everyone, 2, NULL, &everyone_next, &error);
    g_assert_no_error(error);
    assert_page_refused(fixture->store, &beta_all, 3, next, TD_ERROR_BAD_REQUEST, invalid);
    assert_page_refused(fixture->store, &everyone, 3, next, TD_ERROR_BAD_REQUEST, invalid);
    assert_page_refused(fixture->store, &acme_all, 3, everyone_next, TD_ERROR_BAD_REQUEST, invalid);
    /* One naming another tenant's operation, or none, is not one of ours. */
    const ApiOperation *betas = g_ptr_array_index(inserted, 2);
    g_assert_cmpstr(betas->tenant, ==, "beta");
    g_autofree char *foreign = forge_cursor("acme", betas->id);
    assert_page_refused(fixture->store, &acme_all, 3, foreign, TD_ERROR_BAD_REQUEST, invalid);
    g_autofree char *ghost = forge_cursor("*", "00000000-0000-4000-8000-000000000000");
    assert_page_refused(fixture->store, &everyone, 3, ghost, TD_ERROR_BAD_REQUEST, invalid);
    /* The same forged for beta's own listing is a cursor like any other. */
    g_autofree char *own = forge_cursor("beta", betas->id);
    g_clear_pointer(&next, g_free);
    g_autoptr(GPtrArray) after_own =
        store_operation_page(fixture->store, &beta_all, 3, own, &next, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(after_own->len, ==, 0); /* beta's oldest */
    assert_page_refused(fixture->store, &acme_all, 3, "not a cursor", TD_ERROR_BAD_REQUEST,
                        invalid);
    assert_page_refused(fixture->store, &acme_all, -1, NULL, TD_ERROR_BAD_REQUEST,
                        "limit: must not be negative");
    const StoreOperationFilter nobody = {.tenant = "nobody"};
    assert_page_refused(fixture->store, &nobody, 3, NULL, TD_ERROR_NOT_FOUND,
                        "tenant 'nobody' not found");
}

static void test_migrate_from_v8(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiOperation) older =
        add_operation(fixture->store, "acme", "stack.create", API_OP_SUCCEEDED, 1);
    g_autoptr(ApiOperation) newer =
        add_operation(fixture->store, "acme", "stack.delete", API_OP_RUNNING, 2);
    g_autoptr(ApiOperation) operator=
        add_operation(fixture->store, NULL, "test.hang", API_OP_SUCCEEDED, 3);
    /* Back to v8's indexes on operations. */
    g_clear_pointer(&fixture->store, store_free);
    sqlite3 *db = raw_open(fixture);
    raw_exec(db, "BEGIN;"
                 "DROP INDEX operations_tenant_created;"
                 "DROP INDEX operations_created;"
                 "CREATE INDEX operations_tenant ON operations (tenant_id);"
                 "PRAGMA user_version = 8;"
                 "COMMIT");
    sqlite3_close(db);

    reopen(fixture);
    g_assert_cmpint(store_schema_version(fixture->store), ==, SCHEMA_VERSION);
    db = raw_open(fixture);
    g_autofree char *indexes =
        raw_text(db, "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master "
                     "WHERE type = 'index' AND tbl_name = 'operations' AND sql IS NOT NULL "
                     "ORDER BY name)");
    sqlite3_close(db);
    g_assert_cmpstr(indexes, ==, "operations_created,operations_status,operations_tenant_created");

    /* The operations of v8 list, newest first. */
    const StoreOperationFilter mine = {.tenant = "acme"};
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) page =
        store_operation_page(fixture->store, &mine, 10, NULL, &next, &error);
    g_assert_no_error(error);
    g_autofree char *ids = operation_ids(page, 0);
    g_autofree char *want = g_strdup_printf("%s,%s", newer->id, older->id);
    g_assert_cmpstr(ids, ==, want);
    g_assert_null(next);
    /* A tenant's delete still finds its operations in progress. */
    g_assert_false(store_tenant_delete(fixture->store, "acme", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
}

/* ---- migration from v1 ---------------------------------------------------- */

/* The v1 schema exactly as it shipped: databases in the field look like this.
 * A copy on purpose, so that editing the migration in store.c cannot move it. */
static const char v1_schema[] =
    "CREATE TABLE tenants ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  name TEXT NOT NULL UNIQUE,"
    "  quota_stacks INTEGER NOT NULL CHECK (quota_stacks >= 0),"
    "  quota_vcpus INTEGER NOT NULL CHECK (quota_vcpus >= 0),"
    "  quota_memory_mib INTEGER NOT NULL CHECK (quota_memory_mib >= 0),"
    "  quota_disk_gib INTEGER NOT NULL CHECK (quota_disk_gib >= 0),"
    "  created_at TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL"
    ");"
    "CREATE TABLE tokens ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,"
    "  hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),"
    "  created_at TEXT NOT NULL,"
    "  revoked_at TEXT"
    ");"
    "CREATE INDEX tokens_tenant ON tokens (tenant_id);"
    "CREATE TABLE operations ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  target TEXT NOT NULL,"
    "  tenant_id TEXT REFERENCES tenants (id) ON DELETE SET NULL,"
    "  status TEXT NOT NULL"
    "    CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),"
    "  percent INTEGER NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),"
    "  stage TEXT,"
    "  bytes_done INTEGER NOT NULL DEFAULT 0,"
    "  bytes_total INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT,"
    "  created_at TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL"
    ");"
    "CREATE INDEX operations_tenant ON operations (tenant_id);"
    "CREATE INDEX operations_status ON operations (status);";

static void test_migrate_from_v1(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = db_path(fixture);
    guint8 hash[STORE_TOKEN_HASH_LEN];

    (void)data;
    /* Replace the fresh database with one a v1 turtled left behind. */
    g_clear_pointer(&fixture->store, store_free);
    g_autoptr(GDir) dir = g_dir_open(fixture->state, 0, &error);
    g_assert_no_error(error);
    const char *name;
    while ((name = g_dir_read_name(dir)) != NULL) {
        g_autofree char *file = g_build_filename(fixture->state, name, NULL);
        g_assert_cmpint(g_unlink(file), ==, 0);
    }
    sqlite3 *db = NULL;
    g_assert_cmpint(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                    ==, SQLITE_OK);
    g_assert_cmpint(g_chmod(path, 0600), ==, 0);
    raw_exec(db, "PRAGMA journal_mode = WAL");
    raw_exec(db, "BEGIN");
    raw_exec(db, v1_schema);
    raw_exec(db, "INSERT INTO tenants VALUES ('3f1e0c6a-0d4b-4e5f-9a8b-7c6d5e4f3a2b', 'acme', "
                 "2, 8, 4096, 50, '" T0 "', '" T1 "')");
    raw_exec(db, "INSERT INTO tokens VALUES ('tok-1', '3f1e0c6a-0d4b-4e5f-9a8b-7c6d5e4f3a2b', "
                 "X'0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20', '" T0
                 "', NULL)");
    raw_exec(db, "INSERT INTO operations (id, kind, target, tenant_id, status, created_at, "
                 "updated_at) VALUES ('op-1', 'stack.create', 'stacks/web', "
                 "'3f1e0c6a-0d4b-4e5f-9a8b-7c6d5e4f3a2b', 'succeeded', '" T0 "', '" T0 "')");
    raw_exec(db, "PRAGMA user_version = 1");
    raw_exec(db, "COMMIT");
    sqlite3_close(db);

    reopen(fixture);
    g_assert_cmpint(store_schema_version(fixture->store), ==, SCHEMA_VERSION);

    /* What v1 held is still there and still works. */
    g_autoptr(ApiTenant) acme = store_tenant_get(fixture->store, "acme", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(acme->id, ==, "3f1e0c6a-0d4b-4e5f-9a8b-7c6d5e4f3a2b");
    g_assert_cmpint(acme->quota.stacks, ==, 2);
    g_assert_cmpint(acme->quota.memory_mib, ==, 4096);
    /* A tenant from before the device pool gets the default device quota. */
    g_assert_cmpint(acme->quota.devices, ==, API_QUOTA_DEFAULT_DEVICES);
    g_assert_cmpstr(acme->updated_at, ==, T1);
    for (int i = 0; i < STORE_TOKEN_HASH_LEN; i++)
        hash[i] = (guint8)(i + 1);
    g_autofree char *owner = store_token_lookup(fixture->store, hash);
    g_assert_cmpstr(owner, ==, "acme");
    g_autoptr(ApiOperation) operation = store_operation_get(fixture->store, "op-1", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(operation->tenant, ==, "acme");

    /* And the new tables are usable at once. */
    g_autofree char *schema = schema_text(fixture);
    g_assert_nonnull(strstr(schema, "stacks:CREATE TABLE stacks"));
    g_assert_nonnull(strstr(schema, "images:CREATE TABLE images"));
    g_assert_nonnull(strstr(schema, "stack_images_image:CREATE INDEX"));
    gint64 stacks = -1, vcpus = -1, memory = -1, disk = -1;
    g_assert_true(
        store_tenant_usage(fixture->store, "acme", &stacks, &vcpus, &memory, &disk, &error));
    g_assert_no_error(error);
    g_assert_cmpint(stacks + vcpus + memory + disk, ==, 0);

    /* Once only: a second open changes nothing. */
    reopen(fixture);
    g_autofree char *again = schema_text(fixture);
    g_assert_cmpstr(again, ==, schema);
}

/* ---- migration from v2 ---------------------------------------------------- */

/* What v2 added, exactly as it shipped (see v1_schema for why a copy). */
static const char v2_schema[] =
    "CREATE TABLE images ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  tenant_id TEXT NOT NULL REFERENCES tenants (id),"
    "  name TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('kernel', 'initrd', 'disk')),"
    "  format TEXT NOT NULL CHECK (format IN ('raw', 'qcow2')),"
    "  state TEXT NOT NULL CHECK (state IN ('pending', 'uploading', 'ready', 'error')),"
    "  size INTEGER CHECK (size >= 0),"
    "  sha256 TEXT CHECK (length(sha256) = 64),"
    "  error TEXT,"
    "  volume TEXT UNIQUE,"
    "  created_at TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL,"
    "  UNIQUE (tenant_id, name)"
    ");"
    "CREATE TABLE stacks ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  tenant_id TEXT NOT NULL REFERENCES tenants (id),"
    "  name TEXT NOT NULL,"
    "  spec_json TEXT NOT NULL,"
    "  vcpus INTEGER NOT NULL CHECK (vcpus >= 0),"
    "  memory_mib INTEGER NOT NULL CHECK (memory_mib >= 0),"
    "  state TEXT NOT NULL CHECK (state IN ('provisioning', 'running', 'stopped', 'paused',"
    "    'migrating', 'error', 'deleting')),"
    "  host TEXT,"
    "  backend TEXT,"
    "  domain_name TEXT UNIQUE,"
    "  error TEXT,"
    "  created_at TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL,"
    "  UNIQUE (tenant_id, name)"
    ");"
    "CREATE TABLE stack_images ("
    "  stack_id TEXT NOT NULL REFERENCES stacks (id) ON DELETE CASCADE,"
    "  image_id TEXT NOT NULL REFERENCES images (id),"
    "  PRIMARY KEY (stack_id, image_id)"
    ");"
    "CREATE INDEX stack_images_image ON stack_images (image_id);";

static void test_migrate_from_v2(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = db_path(fixture);

    (void)data;
    /* Replace the fresh database with one a v2 turtled left behind. */
    g_clear_pointer(&fixture->store, store_free);
    g_autoptr(GDir) dir = g_dir_open(fixture->state, 0, &error);
    g_assert_no_error(error);
    const char *name;
    while ((name = g_dir_read_name(dir)) != NULL) {
        g_autofree char *file = g_build_filename(fixture->state, name, NULL);
        g_assert_cmpint(g_unlink(file), ==, 0);
    }
    sqlite3 *db = NULL;
    g_assert_cmpint(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                    ==, SQLITE_OK);
    g_assert_cmpint(g_chmod(path, 0600), ==, 0);
    raw_exec(db, "PRAGMA journal_mode = WAL");
    raw_exec(db, "BEGIN");
    raw_exec(db, v1_schema);
    raw_exec(db, v2_schema);
    raw_exec(db, "INSERT INTO tenants VALUES ('3f1e0c6a-0d4b-4e5f-9a8b-7c6d5e4f3a2b', 'acme', "
                 "2, 8, 4096, 50, '" T0 "', '" T1 "')");
    raw_exec(db, "INSERT INTO images VALUES ('9d3c2b1a-0f9e-4d8c-8b7a-6f5e4d3c2b1a', "
                 "'3f1e0c6a-0d4b-4e5f-9a8b-7c6d5e4f3a2b', 'vmlinuz', 'kernel', 'raw', 'ready', "
                 "4096, '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', "
                 "NULL, 'vol-1', '" T0 "', '" T1 "')");
    raw_exec(db, "PRAGMA user_version = 2");
    raw_exec(db, "COMMIT");
    sqlite3_close(db);

    reopen(fixture);
    g_assert_cmpint(store_schema_version(fixture->store), ==, SCHEMA_VERSION);

    /* What v2 held is still there. */
    g_autoptr(ApiImage) image = store_image_get(fixture->store, "acme", "vmlinuz", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(image->id, ==, "9d3c2b1a-0f9e-4d8c-8b7a-6f5e4d3c2b1a");
    g_assert_cmpint(image->size, ==, 4096);
    g_assert_cmpstr(image->volume, ==, "vol-1");

    /* The peers table is new, empty and usable at once. */
    g_autofree char *schema = schema_text(fixture);
    g_assert_nonnull(strstr(schema, "peers:CREATE TABLE peers"));
    g_autoptr(GPtrArray) none = store_peer_list(fixture->store, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(none->len, ==, 0);
    g_autoptr(ApiPeer) peer = api_peer_new();
    peer->name = g_strdup("hostb");
    peer->libvirt_uri = g_strdup("qemu+tcp://10.0.0.2/system");
    peer->created_at = g_strdup(T2);
    g_assert_true(store_peer_insert(fixture->store, peer, &error));
    g_assert_no_error(error);

    /* Once only: a second open changes nothing and keeps the peer. */
    reopen(fixture);
    g_autofree char *again = schema_text(fixture);
    g_assert_cmpstr(again, ==, schema);
    g_autoptr(ApiPeer) back = store_peer_get(fixture->store, "hostb", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(back->created_at, ==, T2);
}

/* v8 rebuilt only the tokens table: a current database with v7's tokens
 * table and version is what a v7 turtled left behind. */
static void test_migrate_from_v7(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    guint8 live[STORE_TOKEN_HASH_LEN], revoked[STORE_TOKEN_HASH_LEN];

    (void)data;
    fill_hash(live, 1);
    fill_hash(revoked, 2);
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_clear_pointer(&fixture->store, store_free);
    sqlite3 *db = raw_open(fixture);
    raw_exec(db, "BEGIN");
    raw_exec(db, "DROP TABLE tokens");
    raw_exec(db, "CREATE TABLE tokens ("
                 "  id TEXT PRIMARY KEY NOT NULL,"
                 "  tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,"
                 "  hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),"
                 "  created_at TEXT NOT NULL,"
                 "  revoked_at TEXT"
                 ");"
                 "CREATE INDEX tokens_tenant ON tokens (tenant_id);");
    /* And operations' indexes as v7 had them (v9 changed them). */
    raw_exec(db, "DROP INDEX operations_tenant_created;"
                 "DROP INDEX operations_created;"
                 "CREATE INDEX operations_tenant ON operations (tenant_id);");
    sqlite3_stmt *stmt = NULL;
    g_assert_cmpint(sqlite3_prepare_v2(db, "INSERT INTO tokens VALUES (?1, ?2, ?3, '" T0 "', ?4)",
                                       -1, &stmt, NULL),
                    ==, SQLITE_OK);
    const struct {
        const char *id;
        const guint8 *hash;
        const char *revoked_at;
    } rows[] = {{"tok-live", live, NULL}, {"tok-revoked", revoked, T1}};
    for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
        sqlite3_bind_text(stmt, 1, rows[i].id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, acme->id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(stmt, 3, rows[i].hash, STORE_TOKEN_HASH_LEN, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, rows[i].revoked_at, -1, SQLITE_STATIC);
        g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_DONE);
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    raw_exec(db, "PRAGMA user_version = 7");
    raw_exec(db, "COMMIT");
    sqlite3_close(db);

    reopen(fixture);
    g_assert_cmpint(store_schema_version(fixture->store), ==, SCHEMA_VERSION);

    /* The tenant's tokens are still its own, revoked ones still revoked. */
    g_autoptr(StoreToken) found = store_token_find(fixture->store, live);
    g_assert_nonnull(found);
    g_assert_cmpstr(found->id, ==, "tok-live");
    g_assert_cmpstr(found->tenant, ==, "acme");
    g_assert_null(found->scope);
    g_assert_null(store_token_find(fixture->store, revoked));
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) page = store_token_page(fixture->store, "acme", 0, NULL, &next, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(page->len, ==, 1);

    /* The new columns work at once, and the old cascade still does. */
    g_autoptr(ApiOperatorToken) token = api_operator_token_new();
    token->id = g_strdup("op-tok");
    token->scope = g_strdup("metrics");
    token->created_at = g_strdup(T2);
    guint8 operator_hash[STORE_TOKEN_HASH_LEN];
    fill_hash(operator_hash, 3);
    g_assert_true(store_operator_token_insert(fixture->store, token, operator_hash, &error));
    g_assert_no_error(error);
    g_assert_true(store_tenant_delete(fixture->store, "acme", &error));
    g_assert_no_error(error);
    db = raw_open(fixture);
    g_autofree char *left = raw_text(db, "SELECT group_concat(id) FROM tokens");
    /* Exactly one of each: a token can no longer be both, or neither. */
    g_assert_cmpint(sqlite3_exec(db,
                                 "INSERT INTO tokens (id, hash, created_at) VALUES ('x', "
                                 "zeroblob(32), '" T0 "')",
                                 NULL, NULL, NULL),
                    ==, SQLITE_CONSTRAINT);
    sqlite3_close(db);
    g_assert_cmpstr(left, ==, "op-tok");

    /* Once only. */
    g_autofree char *schema = schema_text(fixture);
    reopen(fixture);
    g_autofree char *again = schema_text(fixture);
    g_assert_cmpstr(again, ==, schema);
}

static ApiOperatorToken *add_operator_token(Store *store, const char *id, const char *scope,
                                            const char *created_at, guint8 seed)
{
    g_autoptr(GError) error = NULL;
    guint8 hash[STORE_TOKEN_HASH_LEN];
    ApiOperatorToken *token = api_operator_token_new();

    token->id = g_strdup(id);
    token->scope = g_strdup(scope);
    token->description = g_strdup_printf("for %s", id);
    token->created_at = g_strdup(created_at);
    fill_hash(hash, seed);
    g_assert_true(store_operator_token_insert(store, token, hash, &error));
    g_assert_no_error(error);
    return token;
}

static void test_operator_tokens(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    guint8 hash[STORE_TOKEN_HASH_LEN];

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    fill_hash(hash, 9);
    g_assert_true(store_token_insert(fixture->store, "tenant-tok", "acme", hash, T0, &error));
    g_autoptr(ApiOperatorToken) admin = add_operator_token(fixture->store, "a", "admin", T1, 1);
    g_autoptr(ApiOperatorToken) metrics = add_operator_token(fixture->store, "b", "metrics", T1, 2);
    g_autoptr(ApiOperatorToken) late = add_operator_token(fixture->store, "c", "admin", T2, 3);

    /* One lookup says whose a token is. */
    fill_hash(hash, 2);
    g_autoptr(StoreToken) found = store_token_find(fixture->store, hash);
    g_assert_nonnull(found);
    g_assert_cmpstr(found->id, ==, "b");
    g_assert_null(found->tenant);
    g_assert_cmpstr(found->scope, ==, "metrics");
    g_assert_null(store_token_lookup(fixture->store, hash)); /* not a tenant's */

    /* Reused id or hash: CONFLICT, nothing stored. */
    g_autoptr(ApiOperatorToken) clash = api_operator_token_new();
    clash->id = g_strdup("a");
    clash->scope = g_strdup("admin");
    clash->created_at = g_strdup(T0);
    fill_hash(hash, 4);
    g_assert_false(store_operator_token_insert(fixture->store, clash, hash, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_clear_error(&error);
    g_assert_null(store_token_find(fixture->store, hash));

    /* Pages, oldest first, never a tenant's token. */
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) first = store_operator_token_page(fixture->store, 2, NULL, &next, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(first->len, ==, 2);
    g_assert_cmpstr(((ApiOperatorToken *)first->pdata[0])->id, ==, "a");
    g_assert_cmpstr(((ApiOperatorToken *)first->pdata[0])->description, ==, "for a");
    g_assert_null(((ApiOperatorToken *)first->pdata[0])->secret);
    g_assert_cmpstr(((ApiOperatorToken *)first->pdata[1])->scope, ==, "metrics");
    g_assert_nonnull(next);
    g_autofree char *last_next = NULL;
    g_autoptr(GPtrArray) second =
        store_operator_token_page(fixture->store, 2, next, &last_next, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(second->len, ==, 1);
    g_assert_cmpstr(((ApiOperatorToken *)second->pdata[0])->id, ==, "c");
    g_assert_null(last_next);
    /* Another listing's cursor is refused. */
    g_autofree char *tenant_next = NULL;
    g_autoptr(GPtrArray) none =
        store_operator_token_page(fixture->store, 1, "dGVuYW50cwBhY21l", &tenant_next, &error);
    g_assert_null(none);
    g_assert_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST);
    g_clear_error(&error);

    /* Revoking: a tenant's token is not an operator token, nor the reverse. */
    g_assert_false(store_operator_token_revoke(fixture->store, "tenant-tok", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(store_token_revoke(fixture->store, "acme", "a", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_true(store_operator_token_revoke(fixture->store, "a", &error));
    g_assert_no_error(error);
    fill_hash(hash, 1);
    g_assert_null(store_token_find(fixture->store, hash));
    g_assert_false(store_operator_token_revoke(fixture->store, "a", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);

    /* A tenant's delete takes its tokens, never the operator's. */
    g_assert_true(store_tenant_delete(fixture->store, "acme", &error));
    g_assert_no_error(error);
    fill_hash(hash, 2);
    g_autoptr(StoreToken) still = store_token_find(fixture->store, hash);
    g_assert_nonnull(still);
    g_clear_pointer(&next, g_free);
    g_autoptr(GPtrArray) after_delete =
        store_operator_token_page(fixture->store, 0, NULL, &next, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(after_delete->len, ==, 2);
}

/* ---- peers -------------------------------------------------------------------- */

static ApiPeer *make_peer(const char *name, const char *migrate_uri)
{
    ApiPeer *peer = api_peer_new();

    peer->name = g_strdup(name);
    peer->libvirt_uri = g_strdup_printf("qemu+tcp://%s.example/system", name);
    peer->migrate_uri = g_strdup(migrate_uri);
    peer->created_at = g_strdup(T0);
    return peer;
}

static void assert_peer_equal(const ApiPeer *a, const ApiPeer *b)
{
    g_assert_cmpstr(a->name, ==, b->name);
    g_assert_cmpstr(a->libvirt_uri, ==, b->libvirt_uri);
    g_assert_cmpstr(a->migrate_uri, ==, b->migrate_uri);
    g_assert_cmpstr(a->created_at, ==, b->created_at);
}

static void test_peer_crud(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiPeer) hostc = make_peer("hostc", NULL);
    g_autoptr(ApiPeer) hostb = make_peer("hostb", "tcp://10.0.0.2:49152");

    (void)data;
    g_autoptr(GPtrArray) empty = store_peer_list(fixture->store, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(empty->len, ==, 0);

    g_assert_true(store_peer_insert(fixture->store, hostc, &error));
    g_assert_no_error(error);
    g_assert_true(store_peer_insert(fixture->store, hostb, &error));
    g_assert_no_error(error);

    g_autoptr(ApiPeer) got = store_peer_get(fixture->store, "hostb", &error);
    g_assert_no_error(error);
    assert_peer_equal(got, hostb);
    g_autoptr(ApiPeer) got_c = store_peer_get(fixture->store, "hostc", &error);
    g_assert_no_error(error);
    assert_peer_equal(got_c, hostc);
    g_assert_null(got_c->migrate_uri); /* NULL stays NULL, not "" */

    /* Taken: CONFLICT naming it, and the first record is untouched. */
    g_autoptr(ApiPeer) clash = make_peer("hostb", NULL);
    g_free(clash->libvirt_uri);
    clash->libvirt_uri = g_strdup("qemu+ssh://elsewhere/system");
    g_assert_false(store_peer_insert(fixture->store, clash, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_cmpstr(error->message, ==, "peer 'hostb' already exists");
    g_clear_error(&error);
    g_autoptr(ApiPeer) still = store_peer_get(fixture->store, "hostb", &error);
    g_assert_no_error(error);
    assert_peer_equal(still, hostb);

    /* By name. */
    g_autoptr(GPtrArray) peers = store_peer_list(fixture->store, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(peers->len, ==, 2);
    assert_peer_equal(g_ptr_array_index(peers, 0), hostb);
    assert_peer_equal(g_ptr_array_index(peers, 1), hostc);

    g_assert_true(store_peer_delete(fixture->store, "hostb", &error));
    g_assert_no_error(error);
    g_assert_null(store_peer_get(fixture->store, "hostb", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "peer 'hostb' not found");
    g_clear_error(&error);
    g_assert_false(store_peer_delete(fixture->store, "hostb", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "peer 'hostb' not found");
    g_clear_error(&error);

    /* The name is free again; and what is left survives a reopen. */
    g_assert_true(store_peer_insert(fixture->store, hostb, &error));
    g_assert_no_error(error);
    reopen(fixture);
    g_autoptr(GPtrArray) after = store_peer_list(fixture->store, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(after->len, ==, 2);
    assert_peer_equal(g_ptr_array_index(after, 0), hostb);
}

static void test_peer_names_verbatim(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    /* The store takes what it is given (the API checks names): no SQL
     * injection, no mangling of quotes or format characters. */
    g_autoptr(ApiPeer) odd = make_peer(INJECTION_NAME, "tcp://h:1");
    g_free(odd->libvirt_uri);
    odd->libvirt_uri = g_strdup(UNICODE_NAME);

    (void)data;
    g_assert_true(store_peer_insert(fixture->store, odd, &error));
    g_assert_no_error(error);
    g_autoptr(ApiPeer) back = store_peer_get(fixture->store, INJECTION_NAME, &error);
    g_assert_no_error(error);
    assert_peer_equal(back, odd);
    g_autoptr(GPtrArray) peers = store_peer_list(fixture->store, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(peers->len, ==, 1);
    g_assert_null(store_peer_get(fixture->store, "x", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
}

static void test_peer_internal_errors(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiPeer) peer = make_peer("hostb", NULL);

    (void)data;
    /* A NULL libvirt_uri breaks NOT NULL: an internal error, not a conflict. */
    g_clear_pointer(&peer->libvirt_uri, g_free);
    g_assert_false(store_peer_insert(fixture->store, peer, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_INTERNAL);
    g_assert_nonnull(strstr(error->message, "inserting a peer"));
    g_clear_error(&error);

    /* The table gone under the store: every call says so. */
    sqlite3 *db = raw_open(fixture);
    raw_exec(db, "DROP TABLE peers");
    sqlite3_close(db);
    g_assert_null(store_peer_list(fixture->store, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_INTERNAL);
    g_clear_error(&error);
    g_assert_null(store_peer_get(fixture->store, "hostb", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_INTERNAL);
    g_clear_error(&error);
    g_assert_false(store_peer_delete(fixture->store, "hostb", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_INTERNAL);
}

/* ---- images ---------------------------------------------------------------- */

#define SHA_A "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static ApiImage *make_image(const char *tenant, const char *name, ApiImageKind kind)
{
    ApiImage *image = api_image_new();

    image->id = g_uuid_string_random();
    image->name = g_strdup(name);
    image->tenant = g_strdup(tenant);
    image->kind = kind;
    image->format = kind == API_IMAGE_KIND_DISK ? API_IMAGE_FORMAT_QCOW2 : API_IMAGE_FORMAT_RAW;
    image->created_at = g_strdup(T0);
    image->updated_at = g_strdup(T0);
    image->volume = g_strdup_printf("%s.img", image->id);
    return image;
}

static ApiImage *add_image(Store *store, const char *tenant, const char *name, ApiImageKind kind,
                           gint64 size)
{
    g_autoptr(GError) error = NULL;
    ApiImage *image = make_image(tenant, name, kind);

    image->size = size;
    if (size >= 0) {
        image->state = API_IMAGE_STATE_READY;
        image->sha256 = g_strdup(SHA_A);
    }
    g_assert_true(store_image_insert(store, image, &error));
    g_assert_no_error(error);
    return image;
}

static void assert_image_equal(const ApiImage *a, const ApiImage *b)
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
    g_assert_cmpstr(a->volume, ==, b->volume);
}

static void test_image_crud(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiTenant) other = add_tenant(fixture->store, "other");
    g_autoptr(ApiImage) kernel =
        add_image(fixture->store, "acme", "vmlinuz", API_IMAGE_KIND_KERNEL, -1);
    g_autoptr(ApiImage) disk = add_image(fixture->store, "acme", "debian", API_IMAGE_KIND_DISK,
                                         G_GINT64_CONSTANT(5000000000));
    /* Names are per tenant: other may have its own "vmlinuz". */
    g_autoptr(ApiImage) theirs =
        add_image(fixture->store, "other", "vmlinuz", API_IMAGE_KIND_INITRD, 10);

    g_autoptr(ApiImage) got = store_image_get(fixture->store, "acme", "vmlinuz", &error);
    g_assert_no_error(error);
    assert_image_equal(got, kernel);
    g_assert_cmpint(got->size, ==, -1);
    g_assert_null(got->sha256);
    g_clear_pointer(&got, api_image_free);
    got = store_image_get(fixture->store, "other", "vmlinuz", &error);
    g_assert_no_error(error);
    assert_image_equal(got, theirs);

    g_autoptr(GPtrArray) list = store_image_list(fixture->store, "acme", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(list->len, ==, 2);
    assert_image_equal(g_ptr_array_index(list, 0), disk); /* by name */
    assert_image_equal(g_ptr_array_index(list, 1), kernel);

    /* Another tenant's image is simply not there. */
    g_clear_pointer(&got, api_image_free);
    g_assert_null(store_image_get(fixture->store, "other", "debian", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "image 'debian' not found");
    g_clear_error(&error);
    g_assert_false(store_image_delete(fixture->store, "other", "debian", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);

    /* Taken name, unknown tenant. */
    g_autoptr(ApiImage) again = make_image("acme", "vmlinuz", API_IMAGE_KIND_KERNEL);
    g_assert_false(store_image_insert(fixture->store, again, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_cmpstr(error->message, ==, "image 'vmlinuz' already exists");
    g_clear_error(&error);
    g_autoptr(ApiImage) orphan = make_image("nobody", "x", API_IMAGE_KIND_KERNEL);
    g_assert_false(store_image_insert(fixture->store, orphan, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "tenant 'nobody' not found");
    g_clear_error(&error);
    g_assert_null(store_image_list(fixture->store, "nobody", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);

    /* Upload: uploading, then ready with size and hash, then back to error. */
    g_assert_true(store_image_set_state(fixture->store, kernel->id, STORE_IMAGE_ANY_STATE,
                                        API_IMAGE_STATE_UPLOADING, -1, NULL, NULL, T1, &error));
    g_assert_no_error(error);
    g_assert_true(store_image_set_state(fixture->store, kernel->id, STORE_IMAGE_ANY_STATE,
                                        API_IMAGE_STATE_READY, 0, SHA_A, NULL, T2, &error));
    g_assert_no_error(error);
    got = store_image_get(fixture->store, "acme", "vmlinuz", &error);
    g_assert_no_error(error);
    g_assert_cmpint(got->state, ==, API_IMAGE_STATE_READY);
    g_assert_cmpint(got->size, ==, 0);
    g_assert_cmpstr(got->sha256, ==, SHA_A);
    g_assert_null(got->error);
    g_assert_cmpstr(got->created_at, ==, T0);
    g_assert_cmpstr(got->updated_at, ==, T2);
    g_assert_cmpstr(got->volume, ==, kernel->volume);
    g_clear_pointer(&got, api_image_free);
    g_assert_true(store_image_set_state(fixture->store, kernel->id, STORE_IMAGE_ANY_STATE,
                                        API_IMAGE_STATE_ERROR, -1, NULL, "short read", T2, &error));
    got = store_image_get(fixture->store, "acme", "vmlinuz", &error);
    g_assert_no_error(error);
    g_assert_cmpint(got->state, ==, API_IMAGE_STATE_ERROR);
    g_assert_cmpint(got->size, ==, -1);
    g_assert_null(got->sha256);
    g_assert_cmpstr(got->error, ==, "short read");

    g_assert_false(store_image_set_state(fixture->store, "no-such-id", STORE_IMAGE_ANY_STATE,
                                         API_IMAGE_STATE_READY, 1, SHA_A, NULL, T2, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);
    /* The schema refuses a hash that is not one. */
    g_assert_false(store_image_set_state(fixture->store, kernel->id, STORE_IMAGE_ANY_STATE,
                                         API_IMAGE_STATE_READY, 1, "abc", NULL, T2, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_INTERNAL);
    g_clear_error(&error);

    g_assert_true(store_image_delete(fixture->store, "acme", "vmlinuz", &error));
    g_assert_no_error(error);
    g_assert_false(store_image_delete(fixture->store, "acme", "vmlinuz", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "image 'vmlinuz' not found");
    g_clear_error(&error);
    /* Only acme's went. */
    g_clear_pointer(&got, api_image_free);
    got = store_image_get(fixture->store, "other", "vmlinuz", &error);
    g_assert_no_error(error);
    g_clear_pointer(&list, g_ptr_array_unref);
    list = store_image_list(fixture->store, "acme", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(list->len, ==, 1);
    /* The name is free again. */
    g_autoptr(ApiImage) reborn =
        add_image(fixture->store, "acme", "vmlinuz", API_IMAGE_KIND_KERNEL, -1);
}

/* ---- stacks ---------------------------------------------------------------- */

static ApiStack *make_stack(const char *tenant, const char *name, guint vcpus, guint memory_mib,
                            const char *kernel, const char *initrd)
{
    ApiStackSpec *spec = api_stack_spec_new();
    spec->name = g_strdup(name);
    spec->vcpus = vcpus;
    spec->memory_mib = memory_mib;
    spec->boot_kernel = g_strdup(kernel);
    spec->boot_initrd = g_strdup(initrd);
    spec->boot_cmdline = g_strdup("console=ttyS0 quiet");
    ApiStack *stack = api_stack_new(spec);
    stack->id = g_uuid_string_random();
    stack->tenant = g_strdup(tenant);
    stack->host = g_strdup("host-a");
    stack->backend = g_strdup("tcg");
    stack->domain_name = g_strdup_printf("turtles-%s", stack->id);
    stack->created_at = g_strdup(T0);
    stack->updated_at = g_strdup(T0);
    return stack;
}

static ApiStack *add_stack(Store *store, const char *tenant, const char *name, guint vcpus,
                           guint memory_mib)
{
    g_autoptr(GError) error = NULL;
    ApiStack *stack = make_stack(tenant, name, vcpus, memory_mib, "vmlinuz", NULL);

    g_assert_true(store_stack_insert(store, stack, NULL, &error));
    g_assert_no_error(error);
    return stack;
}

static void assert_stack_equal(const ApiStack *a, const ApiStack *b)
{
    g_autoptr(json_object) spec_a = api_stack_spec_to_json(a->spec);
    g_autoptr(json_object) spec_b = api_stack_spec_to_json(b->spec);
    g_autofree char *text_a = api_json_to_string(spec_a);
    g_autofree char *text_b = api_json_to_string(spec_b);

    g_assert_cmpstr(text_a, ==, text_b);
    g_assert_cmpstr(a->id, ==, b->id);
    g_assert_cmpstr(a->tenant, ==, b->tenant);
    g_assert_cmpint(a->state, ==, b->state);
    g_assert_cmpstr(a->host, ==, b->host);
    g_assert_cmpstr(a->backend, ==, b->backend);
    g_assert_cmpstr(a->domain_name, ==, b->domain_name);
    g_assert_cmpstr(a->error, ==, b->error);
    g_assert_cmpstr(a->created_at, ==, b->created_at);
    g_assert_cmpstr(a->updated_at, ==, b->updated_at);
}

static void test_stack_crud(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    const char *const uses[] = {"vmlinuz", "initrd", NULL};

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiTenant) other = add_tenant(fixture->store, "other");
    g_autoptr(ApiImage) kernel =
        add_image(fixture->store, "acme", "vmlinuz", API_IMAGE_KIND_KERNEL, 100);
    g_autoptr(ApiImage) initrd =
        add_image(fixture->store, "acme", "initrd", API_IMAGE_KIND_INITRD, 50);
    g_autoptr(ApiImage) their_kernel =
        add_image(fixture->store, "other", "vmlinuz", API_IMAGE_KIND_KERNEL, 100);

    g_autoptr(ApiStack) web = make_stack("acme", "web", 2, 1024, "vmlinuz", "initrd");
    g_ptr_array_add(web->spec->devices,
                    api_stack_device_new("gpu", "gpu-0", "vfio", "0000:3b:00.0"));
    g_ptr_array_add(web->spec->devices, api_stack_device_new("rng", NULL, NULL, NULL));
    web->spec->cpu = g_strdup("named:EPYC-Rome");
    web->spec->start = FALSE;
    g_clear_pointer(&web->host, g_free);
    g_clear_pointer(&web->backend, g_free);
    g_assert_true(store_stack_insert(fixture->store, web, uses, &error));
    g_assert_no_error(error);

    g_autoptr(ApiStack) got = store_stack_get(fixture->store, "acme", "web", &error);
    g_assert_no_error(error);
    assert_stack_equal(got, web);
    g_assert_null(got->host);
    g_assert_cmpuint(got->spec->devices->len, ==, 2);
    const ApiStackDevice *gpu = g_ptr_array_index(got->spec->devices, 0);
    g_assert_cmpstr(gpu->class_name, ==, "gpu");
    g_assert_cmpstr(gpu->id, ==, "gpu-0");
    g_assert_cmpstr(gpu->model, ==, "vfio");
    g_assert_cmpstr(gpu->address, ==, "0000:3b:00.0");
    const ApiStackDevice *rng = g_ptr_array_index(got->spec->devices, 1);
    g_assert_cmpstr(rng->class_name, ==, "rng");
    g_assert_null(rng->id);
    /* The iommu it was stored with, not the decoder's default. */
    g_assert_cmpstr(got->spec->iommu, ==, "none");
    g_clear_pointer(&got, api_stack_free);
    got = store_stack_get_by_id(fixture->store, web->id, &error);
    g_assert_no_error(error);
    assert_stack_equal(got, web);

    /* Stored as the canonical spec, with vcpus and memory beside it for SQL. */
    sqlite3 *db = raw_open(fixture);
    g_autofree char *spec_json = raw_text(db, "SELECT spec_json FROM stacks WHERE name = 'web'");
    g_autofree char *columns =
        raw_text(db, "SELECT vcpus || '/' || memory_mib FROM stacks WHERE name = 'web'");
    g_autofree char *used =
        raw_text(db, "SELECT count(*) FROM stack_images u JOIN stacks s ON s.id = u.stack_id "
                     "WHERE s.name = 'web'");
    sqlite3_close(db);
    g_autoptr(json_object) canonical = api_stack_spec_to_json(web->spec);
    g_autofree char *expected = api_json_to_string(canonical);
    g_assert_cmpstr(spec_json, ==, expected);
    g_assert_cmpstr(columns, ==, "2/1024");
    g_assert_cmpstr(used, ==, "2");

    /* The same name is another tenant's business, not a clash. */
    g_autoptr(ApiStack) their_web = make_stack("other", "web", 1, 256, "vmlinuz", NULL);
    const char *const their_uses[] = {"vmlinuz", NULL};
    g_assert_true(store_stack_insert(fixture->store, their_web, their_uses, &error));
    g_assert_no_error(error);
    g_clear_pointer(&got, api_stack_free);
    got = store_stack_get(fixture->store, "other", "web", &error);
    g_assert_no_error(error);
    assert_stack_equal(got, their_web);

    /* Clashes: the name within a tenant, the id. */
    g_autoptr(ApiStack) again = make_stack("acme", "web", 1, 256, "vmlinuz", NULL);
    g_assert_false(store_stack_insert(fixture->store, again, NULL, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_cmpstr(error->message, ==, "stack 'web' already exists");
    g_clear_error(&error);
    g_autoptr(ApiStack) same_id = make_stack("acme", "db", 1, 256, "vmlinuz", NULL);
    g_free(same_id->id);
    same_id->id = g_strdup(web->id);
    g_assert_false(store_stack_insert(fixture->store, same_id, NULL, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_clear_error(&error);

    /* A missing image, or another tenant's, leaves nothing behind. */
    g_autoptr(ApiStack) broken = make_stack("acme", "db", 1, 256, "vmlinuz", "nope");
    const char *const missing[] = {"vmlinuz", "nope", NULL};
    g_assert_false(store_stack_insert(fixture->store, broken, missing, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "image 'nope' not found");
    g_clear_error(&error);
    g_autoptr(ApiImage) their_only =
        add_image(fixture->store, "other", "theirs", API_IMAGE_KIND_DISK, 1);
    const char *const foreign[] = {"theirs", NULL};
    g_assert_false(store_stack_insert(fixture->store, broken, foreign, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_null(store_stack_get(fixture->store, "acme", "db", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "stack 'db' not found");
    g_clear_error(&error);
    /* ... and the name stays free; one image named twice is one use. */
    const char *const twice[] = {"vmlinuz", "vmlinuz", NULL};
    g_assert_true(store_stack_insert(fixture->store, broken, twice, &error));
    g_assert_no_error(error);

    g_autoptr(ApiStack) orphan = make_stack("nobody", "web", 1, 256, "vmlinuz", NULL);
    g_assert_false(store_stack_insert(fixture->store, orphan, NULL, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "tenant 'nobody' not found");
    g_clear_error(&error);

    /* Other tenants' stacks are not found by name. */
    g_assert_null(store_stack_get(fixture->store, "other", "db", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);

    /* State changes touch state, error and updated_at only. */
    g_assert_true(store_stack_set_state(fixture->store, web->id, STORE_STACK_ANY_STATE,
                                        API_STACK_STATE_ERROR, "domain crashed", T1, &error));
    g_assert_no_error(error);
    g_clear_pointer(&got, api_stack_free);
    got = store_stack_get(fixture->store, "acme", "web", &error);
    g_assert_no_error(error);
    web->state = API_STACK_STATE_ERROR;
    web->error = g_strdup("domain crashed");
    g_free(web->updated_at);
    web->updated_at = g_strdup(T1);
    assert_stack_equal(got, web);
    g_assert_true(store_stack_set_state(fixture->store, web->id, STORE_STACK_ANY_STATE,
                                        API_STACK_STATE_RUNNING, NULL, T2, &error));
    g_clear_pointer(&got, api_stack_free);
    got = store_stack_get_by_id(fixture->store, web->id, &error);
    g_assert_no_error(error);
    g_assert_cmpint(got->state, ==, API_STACK_STATE_RUNNING);
    g_assert_null(got->error);
    g_assert_false(store_stack_set_state(fixture->store, "no-such-id", STORE_STACK_ANY_STATE,
                                         API_STACK_STATE_RUNNING, NULL, T2, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);

    g_assert_true(store_stack_delete(fixture->store, web->id, &error));
    g_assert_no_error(error);
    g_clear_pointer(&got, api_stack_free);
    g_assert_null(store_stack_get_by_id(fixture->store, web->id, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_autofree char *not_found = g_strdup_printf("stack '%s' not found", web->id);
    g_assert_cmpstr(error->message, ==, not_found);
    g_clear_error(&error);
    g_assert_false(store_stack_delete(fixture->store, web->id, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);
    /* Its uses went with it; other's "web" is untouched. */
    db = raw_open(fixture);
    g_autofree char *left = raw_text(db, "SELECT count(*) FROM stack_images");
    sqlite3_close(db);
    g_assert_cmpstr(left, ==, "2"); /* db's vmlinuz, other's web's vmlinuz */
    got = store_stack_get(fixture->store, "other", "web", &error);
    g_assert_no_error(error);
}

static void test_image_in_use(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    const char *const uses[] = {"vmlinuz", "initrd", NULL};

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiImage) kernel =
        add_image(fixture->store, "acme", "vmlinuz", API_IMAGE_KIND_KERNEL, 100);
    g_autoptr(ApiImage) initrd =
        add_image(fixture->store, "acme", "initrd", API_IMAGE_KIND_INITRD, 50);
    g_autoptr(ApiStack) web = make_stack("acme", "web", 1, 256, "vmlinuz", "initrd");
    g_autoptr(ApiStack) api = make_stack("acme", "api", 1, 256, "vmlinuz", NULL);
    g_assert_true(store_stack_insert(fixture->store, web, uses, &error));
    g_assert_true(store_stack_insert(fixture->store, api, uses, &error));
    g_assert_no_error(error);

    /* The first user by name is the one named. */
    g_assert_false(store_image_delete(fixture->store, "acme", "vmlinuz", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_cmpstr(error->message, ==, "image 'vmlinuz' is used by stack 'api'");
    g_clear_error(&error);
    g_assert_true(store_stack_delete(fixture->store, api->id, &error));
    g_assert_false(store_image_delete(fixture->store, "acme", "vmlinuz", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_cmpstr(error->message, ==, "image 'vmlinuz' is used by stack 'web'");
    g_clear_error(&error);
    g_assert_false(store_image_delete(fixture->store, "acme", "initrd", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_clear_error(&error);
    /* Still there after the refusals. */
    g_autoptr(ApiImage) got = store_image_get(fixture->store, "acme", "vmlinuz", &error);
    g_assert_no_error(error);

    /* The schema holds the line too, should anyone go around the store. */
    sqlite3 *db = raw_open(fixture);
    raw_exec(db, "PRAGMA foreign_keys = ON");
    g_autofree char *sql = g_strdup_printf("DELETE FROM images WHERE id = '%s'", kernel->id);
    g_assert_cmpint(sqlite3_exec(db, sql, NULL, NULL, NULL), ==, SQLITE_CONSTRAINT);
    sqlite3_close(db);

    g_assert_true(store_stack_delete(fixture->store, web->id, &error));
    g_assert_true(store_image_delete(fixture->store, "acme", "vmlinuz", &error));
    g_assert_true(store_image_delete(fixture->store, "acme", "initrd", &error));
    g_assert_no_error(error);
}

static void test_tenant_owns_stacks_and_images(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiImage) image =
        add_image(fixture->store, "acme", "vmlinuz", API_IMAGE_KIND_KERNEL, -1);
    g_assert_false(store_tenant_delete(fixture->store, "acme", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_cmpstr(error->message, ==, "tenant 'acme' still owns images");
    g_clear_error(&error);

    g_autoptr(ApiStack) web = add_stack(fixture->store, "acme", "web", 1, 256);
    g_assert_false(store_tenant_delete(fixture->store, "acme", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_cmpstr(error->message, ==, "tenant 'acme' still owns stacks");
    g_clear_error(&error);

    g_assert_true(store_image_delete(fixture->store, "acme", "vmlinuz", &error));
    g_assert_false(store_tenant_delete(fixture->store, "acme", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_cmpstr(error->message, ==, "tenant 'acme' still owns stacks");
    g_clear_error(&error);
    /* Nothing was half-deleted. */
    g_autoptr(ApiTenant) still = store_tenant_get(fixture->store, "acme", &error);
    g_assert_no_error(error);

    g_assert_true(store_stack_delete(fixture->store, web->id, &error));
    g_assert_true(store_tenant_delete(fixture->store, "acme", &error));
    g_assert_no_error(error);
}

/* ---- pagination ------------------------------------------------------------ */

#define ACME_STACKS 25

static GPtrArray *fetch_stacks(Store *store, gconstpointer tenant, int limit, const char *after,
                               char **next, GError **error)
{
    return store_stack_list(store, tenant, limit, after, next, error);
}

/* Every page of @tenant's (or everyone's) stacks, @limit at a time. */
static GPtrArray *list_all_pages(Store *store, const char *tenant, int limit, guint *pages)
{
    return walk_pages(store, fetch_stacks, tenant, limit, NULL, (ItemCopy)api_stack_copy,
                      (GDestroyNotify)api_stack_free, pages);
}

static char *stack_key(const ApiStack *stack)
{
    return g_strdup_printf("%s/%s", stack->tenant, stack->spec->name);
}

static void test_stack_pagination(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func((GDestroyNotify)api_stack_free);

    (void)data;
    g_autoptr(ApiTenant) zeta = add_tenant(fixture->store, "zeta");
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiTenant) mid = add_tenant(fixture->store, "mid");
    g_autoptr(ApiTenant) idle = add_tenant(fixture->store, "idle");
    /* Inserted out of order (7 is prime to 25): order must come from names. */
    for (int i = 0; i < ACME_STACKS; i++) {
        g_autofree char *name = g_strdup_printf("s-%02d", (i * 7) % ACME_STACKS);
        g_ptr_array_add(keep, add_stack(fixture->store, "acme", name, 1, 128));
    }
    for (int i = 0; i < 5; i++) {
        g_autofree char *name = g_strdup_printf("z-%d", 4 - i);
        g_ptr_array_add(keep, add_stack(fixture->store, "zeta", name, 1, 128));
    }
    g_ptr_array_add(keep, add_stack(fixture->store, "mid", "only", 1, 128));

    /* A tenant's 25 stacks, 10 at a time: 3 pages, all of them, in order. */
    guint pages = 0;
    g_autoptr(GPtrArray) mine = list_all_pages(fixture->store, "acme", 10, &pages);
    g_assert_cmpuint(pages, ==, 3);
    g_assert_cmpuint(mine->len, ==, ACME_STACKS);
    for (guint i = 0; i < mine->len; i++) {
        const ApiStack *stack = g_ptr_array_index(mine, i);
        g_autofree char *expected = g_strdup_printf("s-%02u", i);
        g_assert_cmpstr(stack->spec->name, ==, expected);
        g_assert_cmpstr(stack->tenant, ==, "acme");
    }

    /* A page that ends exactly at the end has no next. */
    g_autofree char *next = NULL;
    g_autoptr(GPtrArray) exact = store_stack_list(fixture->store, "zeta", 5, NULL, &next, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(exact->len, ==, 5);
    g_assert_null(next);
    g_autoptr(GPtrArray) none = store_stack_list(fixture->store, "idle", 10, NULL, &next, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(none->len, ==, 0);
    g_assert_null(next);

    /* The operator's listing crosses tenants, ordered by tenant then name. */
    g_autoptr(GPtrArray) everyone = list_all_pages(fixture->store, NULL, 10, &pages);
    g_assert_cmpuint(pages, ==, 4);
    g_assert_cmpuint(everyone->len, ==, ACME_STACKS + 5 + 1);
    for (guint i = 1; i < everyone->len; i++) {
        g_autofree char *before = stack_key(g_ptr_array_index(everyone, i - 1));
        g_autofree char *after = stack_key(g_ptr_array_index(everyone, i));
        g_assert_cmpint(strcmp(before, after), <, 0); /* sorted, hence no duplicates */
    }
    g_assert_cmpstr(((ApiStack *)g_ptr_array_index(everyone, ACME_STACKS))->tenant, ==, "mid");
    g_assert_cmpstr(((ApiStack *)g_ptr_array_index(everyone, ACME_STACKS + 1))->spec->name, ==,
                    "z-0");
    /* No limit: everything at once. */
    g_autoptr(GPtrArray) unlimited = store_stack_list(fixture->store, NULL, 0, NULL, &next, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(unlimited->len, ==, everyone->len);
    g_assert_null(next);

    /* Keyset, not offset: deleting the row a cursor points at skips nothing. */
    g_autoptr(GPtrArray) first = store_stack_list(fixture->store, "acme", 10, NULL, &next, &error);
    g_assert_no_error(error);
    g_assert_nonnull(next);
    const ApiStack *last = g_ptr_array_index(first, 9);
    g_assert_cmpstr(last->spec->name, ==, "s-09");
    g_assert_true(store_stack_delete(fixture->store, last->id, &error));
    g_assert_true(
        store_stack_delete(fixture->store, ((ApiStack *)g_ptr_array_index(first, 0))->id, &error));
    g_autofree char *next2 = NULL;
    g_autoptr(GPtrArray) second =
        store_stack_list(fixture->store, "acme", 10, next, &next2, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(second->len, ==, 10);
    g_assert_cmpstr(((ApiStack *)g_ptr_array_index(second, 0))->spec->name, ==, "s-10");
    g_assert_cmpstr(((ApiStack *)g_ptr_array_index(second, 9))->spec->name, ==, "s-19");
    g_assert_nonnull(next2);
    /* Out parameters are overwritten, not freed: the rest only wants NULL. */
    g_clear_pointer(&next2, g_free);

    /* Cursors: another tenant's, or anything we did not write, is a bad request. */
    g_autofree char *zeta_next = NULL;
    g_autoptr(GPtrArray) zeta_page =
        store_stack_list(fixture->store, "zeta", 2, NULL, &zeta_next, &error);
    g_assert_no_error(error);
    g_assert_nonnull(zeta_next);
    g_autofree char *padded = g_strconcat(next, "=", NULL);
    g_autofree char *plus = g_strdup(next);
    plus[0] = '+';
    g_autofree char *tampered = g_strdup(next);
    tampered[strlen(tampered) - 1] = tampered[strlen(tampered) - 1] == 'A' ? 'B' : 'A';
    g_autofree char *huge = g_strnfill(4000, 'A');
    g_autofree char *no_nul = g_base64_encode((const guchar *)"acmes-10", 8);
    g_autofree char *two_nuls = g_base64_encode((const guchar *)"acme\0s\0x", 8);
    g_autofree char *empty_name = g_base64_encode((const guchar *)"acme\0", 5);
    g_strdelimit(no_nul, "=", '\0');
    g_strdelimit(two_nuls, "=", '\0');
    g_strdelimit(empty_name, "=", '\0');
    const char *const bad[] = {
        zeta_next, "", "!!!!", "YWNtZQ", padded, plus, huge, no_nul, two_nuls, empty_name, "A",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *bad_next = NULL;
        g_test_message("cursor %.40s", bad[i]);
        g_assert_null(store_stack_list(fixture->store, "acme", 10, bad[i], &bad_next, &error));
        g_assert_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST);
        g_assert_cmpstr(error->message, ==, "after: invalid cursor");
        g_assert_null(bad_next);
        g_clear_error(&error);
    }
    /* A tampered last character may still decode to a cursor, just not the
     * same one: then it is refused, or lists a valid, different page. */
    g_autofree char *t_next = NULL;
    g_autoptr(GPtrArray) t_page =
        store_stack_list(fixture->store, "acme", 10, tampered, &t_next, &error);
    g_assert_true(t_page != NULL || g_error_matches(error, TD_ERROR, TD_ERROR_BAD_REQUEST));
    g_clear_error(&error);
    /* "ab\0c" is YWIAYw; YWIAYx decodes to the same bytes through bits
     * base64 drops, and is not ours. */
    g_autoptr(GPtrArray) canonical =
        store_stack_list(fixture->store, NULL, 0, "YWIAYw", &next2, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(canonical->len, ==, everyone->len - 2); /* two acme stacks deleted */
    g_assert_null(store_stack_list(fixture->store, NULL, 0, "YWIAYx", &next2, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST);
    g_clear_error(&error);
    /* The operator may follow any tenant's cursor in the global listing. */
    g_autoptr(GPtrArray) from_zeta =
        store_stack_list(fixture->store, NULL, 10, zeta_next, &next2, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(from_zeta->len, ==, 3);
    g_assert_cmpstr(((ApiStack *)g_ptr_array_index(from_zeta, 0))->spec->name, ==, "z-2");

    g_assert_null(store_stack_list(fixture->store, "acme", -1, NULL, &next2, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST);
    g_clear_error(&error);
    g_assert_null(store_stack_list(fixture->store, "nobody", 10, NULL, &next2, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);
}

/* ---- usage and bad specs --------------------------------------------------- */

static void test_tenant_usage(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    gint64 stacks = -1, vcpus = -1, memory = -1, disk = -1;

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiTenant) other = add_tenant(fixture->store, "other");
    g_assert_true(
        store_tenant_usage(fixture->store, "acme", &stacks, &vcpus, &memory, &disk, &error));
    g_assert_no_error(error);
    g_assert_cmpint(stacks, ==, 0);
    g_assert_cmpint(vcpus, ==, 0);
    g_assert_cmpint(memory, ==, 0);
    g_assert_cmpint(disk, ==, 0);

    g_autoptr(ApiImage) a =
        add_image(fixture->store, "acme", "a", API_IMAGE_KIND_DISK, G_GINT64_CONSTANT(10737418240));
    g_autoptr(ApiImage) b = add_image(fixture->store, "acme", "b", API_IMAGE_KIND_KERNEL, 1000);
    g_autoptr(ApiImage) c = add_image(fixture->store, "acme", "c", API_IMAGE_KIND_KERNEL, -1);
    g_autoptr(ApiImage) d = add_image(fixture->store, "other", "a", API_IMAGE_KIND_DISK, 77);
    g_autoptr(ApiStack) s1 = add_stack(fixture->store, "acme", "one", 2, 1024);
    g_autoptr(ApiStack) s2 = add_stack(fixture->store, "acme", "two", 64, 1024 * 1024);
    g_autoptr(ApiStack) s3 = add_stack(fixture->store, "other", "one", 3, 333);
    /* Stopped or in error, a stack still holds its quota. */
    g_assert_true(store_stack_set_state(fixture->store, s1->id, STORE_STACK_ANY_STATE,
                                        API_STACK_STATE_STOPPED, NULL, T1, &error));

    g_assert_true(
        store_tenant_usage(fixture->store, "acme", &stacks, &vcpus, &memory, &disk, &error));
    g_assert_no_error(error);
    g_assert_cmpint(stacks, ==, 2);
    g_assert_cmpint(vcpus, ==, 66);
    g_assert_cmpint(memory, ==, 1024 + 1024 * 1024);
    g_assert_cmpint(disk, ==, G_GINT64_CONSTANT(10737418240) + 1000);
    g_assert_true(
        store_tenant_usage(fixture->store, "other", &stacks, &vcpus, &memory, &disk, &error));
    g_assert_cmpint(stacks, ==, 1);
    g_assert_cmpint(vcpus, ==, 3);
    g_assert_cmpint(memory, ==, 333);
    g_assert_cmpint(disk, ==, 77);

    /* Uploads and deletes show at once. */
    g_assert_true(store_image_set_state(fixture->store, c->id, STORE_IMAGE_ANY_STATE,
                                        API_IMAGE_STATE_READY, 5, SHA_A, NULL, T1, &error));
    g_assert_true(store_stack_delete(fixture->store, s2->id, &error));
    g_assert_true(store_tenant_usage(fixture->store, "acme", &stacks, NULL, &memory, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpint(stacks, ==, 1);
    g_assert_cmpint(memory, ==, 1024);
    g_assert_true(store_tenant_usage(fixture->store, "acme", NULL, &vcpus, NULL, &disk, &error));
    g_assert_cmpint(vcpus, ==, 2);
    g_assert_cmpint(disk, ==, G_GINT64_CONSTANT(10737418240) + 1005);

    g_assert_false(
        store_tenant_usage(fixture->store, "nobody", &stacks, &vcpus, &memory, &disk, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
}

static void test_stack_bad_spec(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    /* A spec the store could not read back is refused on the way in. */
    g_autoptr(ApiStack) bad = make_stack("acme", "web", 0, 256, "vmlinuz", NULL);
    g_assert_false(store_stack_insert(fixture->store, bad, NULL, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST);
    g_assert_cmpstr(error->message, ==, "vcpus: must be between 1 and 64");
    g_clear_error(&error);

    /* One edited behind the store's back is an internal error, not a crash,
     * for a get and for a listing that meets it. */
    g_autoptr(ApiStack) web = add_stack(fixture->store, "acme", "web", 1, 256);
    sqlite3 *db = raw_open(fixture);
    raw_exec(db, "UPDATE stacks SET spec_json = '{\"name\":\"web\"' WHERE name = 'web'");
    sqlite3_close(db);
    g_assert_null(store_stack_get(fixture->store, "acme", "web", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_INTERNAL);
    g_assert_nonnull(strstr(error->message, "bad spec"));
    g_clear_error(&error);
    g_autofree char *next = NULL;
    g_assert_null(store_stack_list(fixture->store, NULL, 10, NULL, &next, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_INTERNAL);
    g_clear_error(&error);

    db = raw_open(fixture);
    raw_exec(db, "UPDATE stacks SET spec_json = '{\"name\":\"web\",\"vcpus\":1,"
                 "\"memory_mib\":256,\"boot\":{\"disk\":\"d\"}}' WHERE name = 'web'");
    sqlite3_close(db);
    g_autoptr(ApiStack) got = store_stack_get(fixture->store, "acme", "web", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(got->spec->boot_disk, ==, "d");
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

/* ---- transactions and conditional updates -------------------------------------------- */

typedef struct {
    const char *first;
    const char *second;
} TwoTenants;

static gboolean insert_two(Store *store, gpointer data, GError **error)
{
    TwoTenants *two = data;
    g_autoptr(ApiTenant) a = make_tenant(two->first);
    g_autoptr(ApiTenant) b = make_tenant(two->second);
    return store_tenant_insert(store, a, error) && store_tenant_insert(store, b, error);
}

/* All or nothing: a body that fails half-way leaves no row; one that joins
 * a function with a transaction of its own (tenant delete) nests. */
static void test_transaction(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiTenant) taken = add_tenant(fixture->store, "taken");

    TwoTenants clash = {"fresh", "taken"};
    g_assert_false(store_transaction(fixture->store, insert_two, &clash, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_cmpstr(error->message, ==, "tenant 'taken' already exists");
    g_clear_error(&error);
    g_assert_null(store_tenant_get(fixture->store, "fresh", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);

    TwoTenants fine = {"one", "two"};
    g_assert_true(store_transaction(fixture->store, insert_two, &fine, &error));
    g_assert_no_error(error);
    reopen(fixture);
    g_autoptr(ApiTenant) one = store_tenant_get(fixture->store, "one", &error);
    g_autoptr(ApiTenant) two = store_tenant_get(fixture->store, "two", &error);
    g_assert_no_error(error);
    g_assert_nonnull(one);
    g_assert_nonnull(two);

    /* Functions with a transaction of their own still work alone afterwards. */
    g_assert_true(store_tenant_delete(fixture->store, "one", &error));
    g_assert_no_error(error);
    g_assert_false(store_tenant_delete(fixture->store, "one", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);
}

static gboolean insert_then_fail_nested(Store *store, gpointer data, GError **error)
{
    (void)data;
    g_autoptr(ApiTenant) kept = make_tenant("kept");
    g_autoptr(GError) inner = NULL;
    /* store_token_revoke runs its own (nested) transaction and fails. */
    if (!store_tenant_insert(store, kept, error))
        return FALSE;
    g_assert_false(store_token_revoke(store, "kept", "no-such-token", &inner));
    g_assert_error(inner, TD_ERROR, TD_ERROR_NOT_FOUND);
    return TRUE;
}

static void test_transaction_nested(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_autoptr(GError) error = NULL;
    g_assert_true(store_transaction(fixture->store, insert_then_fail_nested, NULL, &error));
    g_assert_no_error(error);
    g_autoptr(ApiTenant) kept = store_tenant_get(fixture->store, "kept", &error);
    g_assert_no_error(error);
    g_assert_nonnull(kept);
}

/* ---- reads beside the writer, and the token cache ----------------------------------------- */

typedef struct {
    Store *store;
    const char *tenant;
    const guint8 *hash;
    gboolean found;
} ReadAside;

static gpointer read_aside(gpointer data)
{
    ReadAside *read = data;
    if (read->hash != NULL) {
        g_autoptr(StoreToken) token = store_token_find(read->store, read->hash);
        read->found = token != NULL;
    } else {
        g_autoptr(GError) error = NULL;
        g_autoptr(ApiTenant) tenant = store_tenant_get(read->store, read->tenant, &error);
        read->found = tenant != NULL;
    }
    return NULL;
}

/* Another thread's read, for a thread that may be in a transaction. */
static gboolean tenant_seen_elsewhere(Store *store, const char *tenant)
{
    ReadAside read = {.store = store, .tenant = tenant};
    g_thread_join(g_thread_new("store-reader", read_aside, &read));
    return read.found;
}

static gboolean token_seen_elsewhere(Store *store, const guint8 *hash)
{
    ReadAside read = {.store = store, .hash = hash};
    g_thread_join(g_thread_new("store-reader", read_aside, &read));
    return read.found;
}

static gboolean insert_and_look(Store *store, gpointer data, GError **error)
{
    (void)data;
    g_autoptr(ApiTenant) fresh = make_tenant("fresh");
    if (!store_tenant_insert(store, fresh, error))
        return FALSE;
    /* This thread reads what its transaction wrote... */
    g_autoptr(ApiTenant) mine = store_tenant_get(store, "fresh", error);
    g_assert_nonnull(mine);
    /* ...another thread is not held up by the open transaction (the join
     * would hang if reads took the writer's lock) and reads the last
     * committed state: no "fresh" yet, "old" still there. */
    g_assert_false(tenant_seen_elsewhere(store, "fresh"));
    g_assert_true(tenant_seen_elsewhere(store, "old"));
    return TRUE;
}

static void test_reads_beside_transaction(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiTenant) old = add_tenant(fixture->store, "old");
    g_assert_true(store_transaction(fixture->store, insert_and_look, NULL, &error));
    g_assert_no_error(error);
    /* Committed: every reader sees it at once. */
    g_assert_true(tenant_seen_elsewhere(fixture->store, "fresh"));
}

typedef struct {
    const guint8 *hash;
    gboolean fail;
} RevokeInside;

static gboolean revoke_inside(Store *store, gpointer data, GError **error)
{
    RevokeInside *revoke = data;
    if (!store_token_revoke(store, "acme", "tok", error))
        return FALSE;
    /* Not committed yet: this thread sees the token gone; another still
     * finds it live, and may cache it, which must not outlive the commit. */
    g_autoptr(StoreToken) mine = store_token_find(store, revoke->hash);
    g_assert_null(mine);
    g_assert_true(token_seen_elsewhere(store, revoke->hash));
    if (revoke->fail) {
        g_set_error_literal(error, TD_ERROR, TD_ERROR_INTERNAL, "rolled back on purpose");
        return FALSE;
    }
    return TRUE;
}

/* Lookups are cached; a revocation, an operator token's revocation and a
 * tenant's delete end a cached token at once, a rolled-back one does not. */
static void test_token_cache(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_autoptr(GError) error = NULL;
    guint8 hash[STORE_TOKEN_HASH_LEN], other[STORE_TOKEN_HASH_LEN], admin[STORE_TOKEN_HASH_LEN];
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiTenant) gone = add_tenant(fixture->store, "gone");
    fill_hash(hash, 1);
    fill_hash(other, 2);
    g_assert_true(store_token_insert(fixture->store, "tok", "acme", hash, T0, &error));
    g_assert_true(store_token_insert(fixture->store, "tok-gone", "gone", other, T0, &error));
    g_autoptr(ApiOperatorToken) op = add_operator_token(fixture->store, "op", "admin", T0, 3);
    fill_hash(admin, 3);
    g_assert_no_error(error);

    /* Warm: found twice, from this thread and another. */
    for (int i = 0; i < 2; i++) {
        g_assert_true(token_seen_elsewhere(fixture->store, hash));
        g_assert_true(token_seen_elsewhere(fixture->store, other));
        g_assert_true(token_seen_elsewhere(fixture->store, admin));
    }

    /* A revocation rolled back changes nothing. */
    RevokeInside failing = {.hash = hash, .fail = TRUE};
    g_assert_false(store_transaction(fixture->store, revoke_inside, &failing, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_INTERNAL);
    g_clear_error(&error);
    g_assert_true(token_seen_elsewhere(fixture->store, hash));

    /* Committed (inside a transaction, as a route would), with the token
     * re-cached by another thread meanwhile: gone for every thread. */
    RevokeInside committing = {.hash = hash};
    g_assert_true(store_transaction(fixture->store, revoke_inside, &committing, &error));
    g_assert_no_error(error);
    g_assert_false(token_seen_elsewhere(fixture->store, hash));
    g_autoptr(StoreToken) revoked = store_token_find(fixture->store, hash);
    g_assert_null(revoked);

    /* On its own, an operator token's revocation. */
    g_assert_true(store_operator_token_revoke(fixture->store, "op", &error));
    g_assert_no_error(error);
    g_assert_false(token_seen_elsewhere(fixture->store, admin));

    /* A tenant's delete takes its tokens, cached ones included. */
    g_assert_true(store_tenant_delete(fixture->store, "gone", &error));
    g_assert_no_error(error);
    g_assert_false(token_seen_elsewhere(fixture->store, other));
}

/* A writer that read a state another has changed since fails visibly. */
static void test_stack_conditional_state(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiImage) kernel =
        add_image(fixture->store, "acme", "vmlinuz", API_IMAGE_KIND_KERNEL, 1);
    g_autoptr(ApiStack) web = add_stack(fixture->store, "acme", "web", 1, 256);

    g_assert_true(store_stack_set_state(fixture->store, web->id,
                                        STORE_STATE(API_STACK_STATE_PROVISIONING),
                                        API_STACK_STATE_DELETING, NULL, T1, &error));
    g_assert_no_error(error);
    /* A lifecycle event that read "running" before the delete took it. */
    g_assert_false(store_stack_set_state(fixture->store, web->id,
                                         STORE_STATE(API_STACK_STATE_RUNNING) |
                                             STORE_STATE(API_STACK_STATE_STOPPED),
                                         API_STACK_STATE_STOPPED, NULL, T2, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_cmpstr(error->message, ==, "stack 'web' is deleting: it cannot become stopped now");
    g_clear_error(&error);
    g_autoptr(ApiStack) got = store_stack_get_by_id(fixture->store, web->id, &error);
    g_assert_cmpint(got->state, ==, API_STACK_STATE_DELETING);
    g_assert_cmpstr(got->updated_at, ==, T1);

    /* Gone: NOT_FOUND, whatever the states asked. */
    g_assert_true(store_stack_delete(fixture->store, web->id, &error));
    g_assert_false(store_stack_set_state(fixture->store, web->id, STORE_STACK_ANY_STATE,
                                         API_STACK_STATE_RUNNING, NULL, T2, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);
}

static void test_image_conditional_state(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiImage) image = make_image("acme", "disk", API_IMAGE_KIND_DISK);
    g_assert_true(store_image_insert(fixture->store, image, &error));
    g_assert_no_error(error);

    guint startable = STORE_STATE(API_IMAGE_STATE_PENDING) | STORE_STATE(API_IMAGE_STATE_ERROR);
    g_assert_true(store_image_set_state(fixture->store, image->id, startable,
                                        API_IMAGE_STATE_UPLOADING, 100, NULL, NULL, T1, &error));
    g_assert_no_error(error);
    /* The second of two uploads of one image. */
    g_assert_false(store_image_set_state(fixture->store, image->id, startable,
                                         API_IMAGE_STATE_UPLOADING, 100, NULL, NULL, T1, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_cmpstr(error->message, ==,
                    "image 'disk' is uploading: it cannot become uploading now");
    g_clear_error(&error);
}

/* Quota check + reserve in one transaction, from many threads at once: never
 * more than the quota, whatever the interleaving. */
#define QUOTA_THREADS 8
#define QUOTA_STACKS  5

typedef struct {
    Store *store;
    int index;
    int created;
} QuotaWorker;

static gboolean insert_if_room(Store *store, gpointer data, GError **error)
{
    QuotaWorker *worker = data;
    gint64 stacks = 0;
    if (!store_tenant_usage(store, "acme", &stacks, NULL, NULL, NULL, error))
        return FALSE;
    if (stacks >= QUOTA_STACKS) {
        g_set_error_literal(error, TD_ERROR, TD_ERROR_QUOTA_EXCEEDED, "full");
        return FALSE;
    }
    g_usleep(1000); /* widen the window a check-then-act would lose in */
    g_autofree char *name = g_strdup_printf("s%d-%d", worker->index, worker->created);
    g_autoptr(ApiStack) stack = make_stack("acme", name, 1, 256, "vmlinuz", NULL);
    return store_stack_insert(store, stack, NULL, error);
}

static gpointer quota_worker_run(gpointer data)
{
    QuotaWorker *worker = data;
    for (int i = 0; i < QUOTA_STACKS; i++) {
        g_autoptr(GError) error = NULL;
        if (store_transaction(worker->store, insert_if_room, worker, &error))
            worker->created++;
        else
            g_assert_error(error, TD_ERROR, TD_ERROR_QUOTA_EXCEEDED);
    }
    return NULL;
}

static void test_transaction_quota_race(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    GThread *threads[QUOTA_THREADS];
    QuotaWorker workers[QUOTA_THREADS];
    for (int i = 0; i < QUOTA_THREADS; i++) {
        workers[i] = (QuotaWorker){.store = fixture->store, .index = i};
        threads[i] = g_thread_new("quota-worker", quota_worker_run, &workers[i]);
    }
    int created = 0;
    for (int i = 0; i < QUOTA_THREADS; i++) {
        g_thread_join(threads[i]);
        created += workers[i].created;
    }
    gint64 stacks = 0;
    g_assert_true(store_tenant_usage(fixture->store, "acme", &stacks, NULL, NULL, NULL, &error));
    g_assert_cmpint(created, ==, QUOTA_STACKS);
    g_assert_cmpint(stacks, ==, QUOTA_STACKS);
}

/* A stack's last migration survives a reopen, is replaced by the next, and
 * goes with the stack. */
static void test_stack_last_migration(Fixture *fixture, gconstpointer data)
{
    (void)data;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiTenant) tenant = add_tenant(fixture->store, "acme");
    g_autoptr(ApiStack) stack = add_stack(fixture->store, "acme", "web", 1, 512);
    ApiStatsMigration got = {0};
    gboolean found = TRUE;

    g_assert_true(store_stack_get_last_migration(fixture->store, stack->id, &got, &found, &error));
    g_assert_false(found);

    ApiStatsMigration first = {"hosta", (char *)T0, 1200, 45, 94601025};
    ApiStatsMigration second = {"hostb", (char *)T0, 900, 30, 1000};
    g_assert_true(store_stack_set_last_migration(fixture->store, stack->id, &first, &error));
    reopen(fixture);
    g_assert_true(store_stack_get_last_migration(fixture->store, stack->id, &got, &found, &error));
    g_assert_true(found);
    g_assert_cmpstr(got.peer, ==, "hosta");
    g_assert_cmpint(got.total_ms, ==, 1200);
    g_assert_cmpint(got.downtime_ms, ==, 45);
    g_assert_cmpint(got.bytes, ==, 94601025);
    g_free(got.peer);
    g_free(got.finished_at);

    g_assert_true(store_stack_set_last_migration(fixture->store, stack->id, &second, &error));
    g_assert_true(store_stack_get_last_migration(fixture->store, stack->id, &got, &found, &error));
    g_assert_cmpstr(got.peer, ==, "hostb");
    g_free(got.peer);
    g_free(got.finished_at);

    g_assert_true(store_stack_delete(fixture->store, stack->id, &error));
    g_assert_true(store_stack_get_last_migration(fixture->store, stack->id, &got, &found, &error));
    g_assert_false(found);
    /* Only a stack that exists has one. */
    g_assert_false(store_stack_set_last_migration(fixture->store, stack->id, &first, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_INTERNAL);
}

/* ---- the device pool ----------------------------------------------------------------- */

static ApiDeviceClass *make_emulated(const char *name, const char *model, gint64 capacity)
{
    ApiDeviceClass *device_class = api_device_class_new();

    device_class->name = g_strdup(name);
    device_class->kind = g_strdup("emulated");
    device_class->model = g_strdup(model);
    device_class->capacity = capacity;
    device_class->created_at = g_strdup(T0);
    device_class->updated_at = g_strdup(T0);
    return device_class;
}

/* A vfio class of the NULL-terminated addresses. */
static ApiDeviceClass *make_vfio(const char *name, ...)
{
    ApiDeviceClass *device_class = api_device_class_new();
    va_list args;

    device_class->name = g_strdup(name);
    device_class->kind = g_strdup("vfio");
    device_class->model = g_strdup("vfio");
    va_start(args, name);
    for (const char *address = va_arg(args, const char *); address != NULL;
         address = va_arg(args, const char *))
        g_ptr_array_add(device_class->addresses, g_strdup(address));
    va_end(args);
    device_class->capacity = device_class->addresses->len;
    device_class->created_at = g_strdup(T0);
    device_class->updated_at = g_strdup(T0);
    return device_class;
}

static void add_class(Store *store, ApiDeviceClass *device_class)
{
    g_autoptr(GError) error = NULL;

    g_assert_true(store_device_class_insert(store, device_class, &error));
    g_assert_no_error(error);
}

static ApiDeviceClass *get_class(Store *store, const char *name)
{
    g_autoptr(GError) error = NULL;
    ApiDeviceClass *device_class = store_device_class_get(store, name, &error);

    g_assert_no_error(error);
    g_assert_nonnull(device_class);
    return device_class;
}

/* The ids of the devices store_device_list gives, "id@holder" for held ones
 * ("id" alone for free ones), joined with ",". */
static char *pool_text(Store *store, const char *class_name, const char *tenant)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) devices = store_device_list(store, class_name, tenant, &error);
    g_autoptr(GString) text = g_string_new(NULL);

    g_assert_no_error(error);
    g_assert_nonnull(devices);
    for (guint i = 0; i < devices->len; i++) {
        const ApiDevice *device = g_ptr_array_index(devices, i);
        if (i > 0)
            g_string_append_c(text, ',');
        g_string_append(text, device->id);
        if (device->stack_id)
            g_string_append_printf(text, "@%s/%s", device->tenant, device->stack_name);
    }
    return g_string_free(g_steal_pointer(&text), FALSE);
}

static char *claim_id(Store *store, const char *class_name, const char *stack_id)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiDevice) device = store_device_claim(store, class_name, stack_id, &error);

    g_assert_no_error(error);
    g_assert_nonnull(device);
    g_assert_cmpstr(device->class_name, ==, class_name);
    g_assert_cmpstr(device->stack_id, ==, stack_id);
    return g_strdup(device->id);
}

static void test_device_class_insert(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_autoptr(ApiDeviceClass) rng = make_emulated("rng", "virtio-rng", 3);
    rng->description = g_strdup("entropy");
    add_class(fixture->store, rng);
    g_autoptr(ApiDeviceClass) gpu = make_vfio("gpu", "0000:3b:00.1", "0000:3b:00.0", NULL);
    gpu->force = TRUE;
    add_class(fixture->store, gpu);

    /* A class has its capacity in devices "<class>-<n>", free. */
    g_autofree char *rngs = pool_text(fixture->store, "rng", NULL);
    g_assert_cmpstr(rngs, ==, "rng-0,rng-1,rng-2");
    g_autoptr(GPtrArray) devices = store_device_list(fixture->store, "rng", NULL, &error);
    g_assert_no_error(error);
    for (guint i = 0; i < devices->len; i++) {
        const ApiDevice *device = g_ptr_array_index(devices, i);
        g_assert_cmpstr(device->class_name, ==, "rng");
        g_assert_cmpstr(device->model, ==, "virtio-rng");
        g_assert_null(device->address);
        g_assert_null(device->stack_id);
        g_assert_null(device->stack_name);
        g_assert_null(device->tenant);
    }
    /* A vfio class one per address, in the order given. */
    g_autoptr(GPtrArray) gpus = store_device_list(fixture->store, "gpu", NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(gpus->len, ==, 2);
    const ApiDevice *gpu0 = g_ptr_array_index(gpus, 0);
    const ApiDevice *gpu1 = g_ptr_array_index(gpus, 1);
    g_assert_cmpstr(gpu0->id, ==, "gpu-0");
    g_assert_cmpstr(gpu0->address, ==, "0000:3b:00.1");
    g_assert_cmpstr(gpu0->model, ==, "vfio");
    g_assert_cmpstr(gpu1->id, ==, "gpu-1");
    g_assert_cmpstr(gpu1->address, ==, "0000:3b:00.0");

    g_autoptr(ApiDeviceClass) got = get_class(fixture->store, "rng");
    g_assert_cmpstr(got->kind, ==, "emulated");
    g_assert_cmpstr(got->model, ==, "virtio-rng");
    g_assert_cmpint(got->capacity, ==, 3);
    g_assert_cmpint(got->in_use, ==, 0);
    g_assert_cmpuint(got->addresses->len, ==, 0);
    g_assert_false(got->force);
    g_assert_cmpstr(got->description, ==, "entropy");
    g_assert_cmpstr(got->created_at, ==, T0);
    g_assert_cmpstr(got->updated_at, ==, T0);
    g_autoptr(ApiDeviceClass) got_gpu = get_class(fixture->store, "gpu");
    g_assert_cmpstr(got_gpu->kind, ==, "vfio");
    g_assert_cmpint(got_gpu->capacity, ==, 2);
    g_assert_true(got_gpu->force);
    g_assert_null(got_gpu->description);
    g_assert_cmpuint(got_gpu->addresses->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(got_gpu->addresses, 0), ==, "0000:3b:00.1");
    g_assert_cmpstr(g_ptr_array_index(got_gpu->addresses, 1), ==, "0000:3b:00.0");

    /* Listed by name, with the same fields. */
    g_autoptr(GPtrArray) classes = store_device_class_list(fixture->store, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(classes->len, ==, 2);
    const ApiDeviceClass *first = g_ptr_array_index(classes, 0);
    g_assert_cmpstr(first->name, ==, "gpu");
    g_assert_cmpuint(first->addresses->len, ==, 2);
    g_assert_cmpint(((const ApiDeviceClass *)g_ptr_array_index(classes, 1))->capacity, ==, 3);

    /* The name is taken: nothing of the second one stays. */
    g_autoptr(ApiDeviceClass) again = make_emulated("rng", "edu", 5);
    g_assert_false(store_device_class_insert(fixture->store, again, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_cmpstr(error->message, ==, "device class 'rng' already exists");
    g_clear_error(&error);
    g_clear_pointer(&got, api_device_class_free);
    got = get_class(fixture->store, "rng");
    g_assert_cmpstr(got->model, ==, "virtio-rng");
    g_assert_cmpint(got->capacity, ==, 3);

    g_assert_null(store_device_class_get(fixture->store, "nope", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "device class 'nope' not found");
    g_clear_error(&error);

    /* It all survives a restart. */
    reopen(fixture);
    g_autofree char *after = pool_text(fixture->store, NULL, NULL);
    g_assert_cmpstr(after, ==, "gpu-0,gpu-1,rng-0,rng-1,rng-2");
}

/* A host function is in one class at most; a class that would take one
 * already taken is not created at all. */
static void test_device_class_address_taken(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_autoptr(ApiDeviceClass) gpu = make_vfio("gpu", "0000:3b:00.0", NULL);
    add_class(fixture->store, gpu);

    g_autoptr(ApiDeviceClass) nic = make_vfio("nic", "0000:3b:00.1", "0000:3b:00.0", NULL);
    g_assert_false(store_device_class_insert(fixture->store, nic, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_nonnull(strstr(error->message, "0000:3b:00.0"));
    g_clear_error(&error);

    g_assert_null(store_device_class_get(fixture->store, "nic", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_autofree char *pool = pool_text(fixture->store, NULL, NULL);
    g_assert_cmpstr(pool, ==, "gpu-0");

    /* The function it did not get to is free for another class. */
    g_autoptr(ApiDeviceClass) other = make_vfio("nic", "0000:3b:00.1", NULL);
    add_class(fixture->store, other);
    g_autofree char *after = pool_text(fixture->store, "nic", NULL);
    g_assert_cmpstr(after, ==, "nic-0");
}

static void test_device_claim(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiStack) web = add_stack(fixture->store, "acme", "web", 1, 128);
    g_autoptr(ApiStack) db = add_stack(fixture->store, "acme", "db", 1, 128);
    g_autoptr(ApiDeviceClass) rng = make_emulated("rng", "virtio-rng", 2);
    add_class(fixture->store, rng);

    /* The lowest free device, each time. */
    g_autoptr(ApiDevice) first = store_device_claim(fixture->store, "rng", web->id, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(first->id, ==, "rng-0");
    g_assert_cmpstr(first->model, ==, "virtio-rng");
    g_assert_cmpstr(first->stack_id, ==, web->id);
    g_autofree char *second = claim_id(fixture->store, "rng", db->id);
    g_assert_cmpstr(second, ==, "rng-1");
    g_autofree char *held = pool_text(fixture->store, "rng", NULL);
    g_assert_cmpstr(held, ==, "rng-0@acme/web,rng-1@acme/db");
    g_autoptr(ApiDeviceClass) full = get_class(fixture->store, "rng");
    g_assert_cmpint(full->in_use, ==, 2);
    g_assert_cmpint(full->capacity, ==, 2);

    /* None left: NO_CAPACITY, naming the class. */
    g_assert_null(store_device_claim(fixture->store, "rng", web->id, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NO_CAPACITY);
    g_assert_nonnull(strstr(error->message, "'rng'"));
    g_clear_error(&error);
    g_assert_null(store_device_claim(fixture->store, "gpu", web->id, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "device class 'gpu' not found");
    g_clear_error(&error);

    /* Release frees only what the stack holds. */
    g_assert_true(store_device_release(fixture->store, "rng-0", db->id, &error));
    g_assert_no_error(error);
    g_autofree char *unchanged = pool_text(fixture->store, "rng", NULL);
    g_assert_cmpstr(unchanged, ==, "rng-0@acme/web,rng-1@acme/db");
    g_assert_true(store_device_release(fixture->store, "rng-0", web->id, &error));
    g_assert_no_error(error);
    g_autofree char *freed = pool_text(fixture->store, "rng", NULL);
    g_assert_cmpstr(freed, ==, "rng-0,rng-1@acme/db");

    /* Claiming by id: free or already the stack's, else CONFLICT. */
    g_assert_true(store_device_claim_id(fixture->store, "rng-1", db->id, &error));
    g_assert_no_error(error);
    g_assert_false(store_device_claim_id(fixture->store, "rng-1", web->id, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_clear_error(&error);
    g_assert_false(store_device_claim_id(fixture->store, "rng-7", web->id, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_clear_error(&error);
    g_assert_true(store_device_claim_id(fixture->store, "rng-0", db->id, &error));
    g_assert_no_error(error);
    g_autofree char *both = pool_text(fixture->store, "rng", NULL);
    g_assert_cmpstr(both, ==, "rng-0@acme/db,rng-1@acme/db");

    /* Held devices stay held across a restart. */
    reopen(fixture);
    g_autofree char *after = pool_text(fixture->store, "rng", NULL);
    g_assert_cmpstr(after, ==, "rng-0@acme/db,rng-1@acme/db");
}

typedef struct {
    const char *stack_id;
    gboolean fail;
} ClaimThen;

static gboolean claim_then(Store *store, gpointer data, GError **error)
{
    ClaimThen *claim = data;
    g_autoptr(ApiDevice) device = store_device_claim(store, "rng", claim->stack_id, error);
    if (device == NULL)
        return FALSE;
    if (claim->fail) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "the create failed after the claim");
        return FALSE;
    }
    return TRUE;
}

/* A create claims its devices with its row: a failure after the claim
 * leaves the device free. */
static void test_device_claim_rolled_back(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiStack) web = add_stack(fixture->store, "acme", "web", 1, 128);
    g_autoptr(ApiDeviceClass) rng = make_emulated("rng", "virtio-rng", 1);
    add_class(fixture->store, rng);

    ClaimThen failing = {web->id, TRUE};
    g_assert_false(store_transaction(fixture->store, claim_then, &failing, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_INTERNAL);
    g_clear_error(&error);
    g_autofree char *free_again = pool_text(fixture->store, "rng", NULL);
    g_assert_cmpstr(free_again, ==, "rng-0");
    g_autoptr(ApiDeviceClass) got = get_class(fixture->store, "rng");
    g_assert_cmpint(got->in_use, ==, 0);

    ClaimThen fine = {web->id, FALSE};
    g_assert_true(store_transaction(fixture->store, claim_then, &fine, &error));
    g_assert_no_error(error);
    g_autofree char *claimed = pool_text(fixture->store, "rng", NULL);
    g_assert_cmpstr(claimed, ==, "rng-0@acme/web");

    /* NO_CAPACITY inside a transaction fails it, and leaves the claim made before. */
    g_assert_false(store_transaction(fixture->store, claim_then, &fine, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NO_CAPACITY);
    g_autofree char *still = pool_text(fixture->store, "rng", NULL);
    g_assert_cmpstr(still, ==, "rng-0@acme/web");
}

/* A stack's devices go back to the pool with its row. */
static void test_device_freed_with_stack(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiStack) web = add_stack(fixture->store, "acme", "web", 1, 128);
    g_autoptr(ApiStack) db = add_stack(fixture->store, "acme", "db", 1, 128);
    g_autoptr(ApiDeviceClass) rng = make_emulated("rng", "virtio-rng", 3);
    add_class(fixture->store, rng);
    g_autoptr(ApiDeviceClass) gpu = make_vfio("gpu", "0000:3b:00.0", NULL);
    add_class(fixture->store, gpu);
    g_autofree char *a = claim_id(fixture->store, "rng", web->id);
    g_autofree char *b = claim_id(fixture->store, "gpu", web->id);
    g_autofree char *c = claim_id(fixture->store, "rng", db->id);
    g_autofree char *d = claim_id(fixture->store, "rng", web->id);

    g_assert_true(store_stack_delete(fixture->store, web->id, &error));
    g_assert_no_error(error);
    g_autofree char *pool = pool_text(fixture->store, NULL, NULL);
    g_assert_cmpstr(pool, ==, "gpu-0,rng-0,rng-1@acme/db,rng-2");
    g_autoptr(GPtrArray) left = store_device_list_of_stack(fixture->store, web->id, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(left->len, ==, 0);
    g_autoptr(ApiDeviceClass) got = get_class(fixture->store, "rng");
    g_assert_cmpint(got->in_use, ==, 1);
    g_assert_cmpint(store_tenant_devices_in_use(fixture->store, "acme", &error), ==, 1);
    g_assert_no_error(error);

    /* And another stack can have them. */
    g_autofree char *again = claim_id(fixture->store, "gpu", db->id);
    g_assert_cmpstr(again, ==, "gpu-0");
}

static void test_device_class_capacity(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiStack) web = add_stack(fixture->store, "acme", "web", 1, 128);
    g_autoptr(ApiDeviceClass) rng = make_emulated("rng", "virtio-rng", 2);
    rng->description = g_strdup("before");
    add_class(fixture->store, rng);

    /* Growing adds free devices at the end. */
    g_assert_true(
        store_device_class_update(fixture->store, "rng", TRUE, 4, FALSE, NULL, T1, &error));
    g_assert_no_error(error);
    g_autofree char *grown = pool_text(fixture->store, "rng", NULL);
    g_assert_cmpstr(grown, ==, "rng-0,rng-1,rng-2,rng-3");
    g_autoptr(ApiDeviceClass) got = get_class(fixture->store, "rng");
    g_assert_cmpint(got->capacity, ==, 4);
    g_assert_cmpstr(got->description, ==, "before");
    g_assert_cmpstr(got->updated_at, ==, T1);
    g_assert_cmpstr(got->created_at, ==, T0);

    g_autofree char *d0 = claim_id(fixture->store, "rng", web->id);
    g_autofree char *d1 = claim_id(fixture->store, "rng", web->id);
    g_autofree char *d2 = claim_id(fixture->store, "rng", web->id);
    g_assert_cmpstr(d2, ==, "rng-2");

    /* Shrinking below a held device: CONFLICT naming it, and nothing changes
     * (neither the description asked for with it, nor updated_at). */
    g_assert_false(
        store_device_class_update(fixture->store, "rng", TRUE, 2, TRUE, "after", T2, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_nonnull(strstr(error->message, "rng-2"));
    g_clear_error(&error);
    g_autofree char *kept = pool_text(fixture->store, "rng", NULL);
    g_assert_cmpstr(kept, ==, "rng-0@acme/web,rng-1@acme/web,rng-2@acme/web,rng-3");
    g_clear_pointer(&got, api_device_class_free);
    got = get_class(fixture->store, "rng");
    g_assert_cmpint(got->capacity, ==, 4);
    g_assert_cmpint(got->in_use, ==, 3);
    g_assert_cmpstr(got->description, ==, "before");
    g_assert_cmpstr(got->updated_at, ==, T1);

    /* Shrinking removes the highest ones once they are free. */
    g_assert_true(store_device_release(fixture->store, "rng-2", web->id, &error));
    g_assert_true(
        store_device_class_update(fixture->store, "rng", TRUE, 2, TRUE, "after", T2, &error));
    g_assert_no_error(error);
    g_autofree char *shrunk = pool_text(fixture->store, "rng", NULL);
    g_assert_cmpstr(shrunk, ==, "rng-0@acme/web,rng-1@acme/web");
    g_clear_pointer(&got, api_device_class_free);
    got = get_class(fixture->store, "rng");
    g_assert_cmpint(got->capacity, ==, 2);
    g_assert_cmpstr(got->description, ==, "after");
    g_assert_cmpstr(got->updated_at, ==, T2);

    /* Growing again reuses the numbers, free. */
    g_assert_true(
        store_device_class_update(fixture->store, "rng", TRUE, 3, FALSE, NULL, T2, &error));
    g_assert_no_error(error);
    g_autofree char *regrown = pool_text(fixture->store, "rng", NULL);
    g_assert_cmpstr(regrown, ==, "rng-0@acme/web,rng-1@acme/web,rng-2");

    /* The description alone; NULL clears it. */
    g_assert_true(
        store_device_class_update(fixture->store, "rng", FALSE, 0, TRUE, NULL, T2, &error));
    g_assert_no_error(error);
    g_clear_pointer(&got, api_device_class_free);
    got = get_class(fixture->store, "rng");
    g_assert_null(got->description);
    g_assert_cmpint(got->capacity, ==, 3);

    /* To nothing, once every device is free: then no claim succeeds. */
    g_assert_true(store_device_release(fixture->store, "rng-0", web->id, &error));
    g_assert_true(store_device_release(fixture->store, "rng-1", web->id, &error));
    g_assert_true(
        store_device_class_update(fixture->store, "rng", TRUE, 0, FALSE, NULL, T2, &error));
    g_assert_no_error(error);
    g_autofree char *empty = pool_text(fixture->store, "rng", NULL);
    g_assert_cmpstr(empty, ==, "");
    g_assert_null(store_device_claim(fixture->store, "rng", web->id, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NO_CAPACITY);
    g_clear_error(&error);

    /* A vfio class's capacity is its functions. */
    g_autoptr(ApiDeviceClass) gpu = make_vfio("gpu", "0000:3b:00.0", NULL);
    add_class(fixture->store, gpu);
    g_assert_false(
        store_device_class_update(fixture->store, "gpu", TRUE, 2, FALSE, NULL, T2, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST);
    g_clear_error(&error);
    g_autofree char *gpus = pool_text(fixture->store, "gpu", NULL);
    g_assert_cmpstr(gpus, ==, "gpu-0");

    g_assert_false(
        store_device_class_update(fixture->store, "nope", TRUE, 2, FALSE, NULL, T2, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
}

static void test_device_class_delete(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiStack) web = add_stack(fixture->store, "acme", "web", 1, 128);
    g_autoptr(ApiDeviceClass) gpu = make_vfio("gpu", "0000:3b:00.0", "0000:3b:00.1", NULL);
    add_class(fixture->store, gpu);
    g_autoptr(ApiDeviceClass) rng = make_emulated("rng", "virtio-rng", 1);
    add_class(fixture->store, rng);
    g_autofree char *held = claim_id(fixture->store, "gpu", web->id);

    g_assert_false(store_device_class_delete(fixture->store, "gpu", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_CONFLICT);
    g_assert_nonnull(strstr(error->message, "'gpu'"));
    g_clear_error(&error);
    g_autofree char *kept = pool_text(fixture->store, "gpu", NULL);
    g_assert_cmpstr(kept, ==, "gpu-0@acme/web,gpu-1");

    g_assert_true(store_device_release(fixture->store, held, web->id, &error));
    g_assert_true(store_device_class_delete(fixture->store, "gpu", &error));
    g_assert_no_error(error);
    g_assert_null(store_device_class_get(fixture->store, "gpu", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_autofree char *pool = pool_text(fixture->store, NULL, NULL);
    g_assert_cmpstr(pool, ==, "rng-0");
    g_assert_false(store_device_class_delete(fixture->store, "gpu", &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
    g_clear_error(&error);

    /* Its functions and its name are free again. */
    g_autoptr(ApiDeviceClass) reborn = make_vfio("gpu", "0000:3b:00.1", NULL);
    add_class(fixture->store, reborn);
    g_autoptr(ApiDeviceClass) nic = make_vfio("nic", "0000:3b:00.0", NULL);
    add_class(fixture->store, nic);
    g_autofree char *after = pool_text(fixture->store, NULL, NULL);
    g_assert_cmpstr(after, ==, "gpu-0,nic-0,rng-0");
}

static void test_device_list(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiTenant) other = add_tenant(fixture->store, "other");
    g_autoptr(ApiStack) web = add_stack(fixture->store, "acme", "web", 1, 128);
    g_autoptr(ApiStack) db = add_stack(fixture->store, "other", "db", 1, 128);
    /* Numbered past 9: ordered by number, not by text. */
    g_autoptr(ApiDeviceClass) edu = make_emulated("edu", "edu", 11);
    add_class(fixture->store, edu);
    g_autoptr(ApiDeviceClass) gpu = make_vfio("gpu", "0000:3b:00.0", NULL);
    add_class(fixture->store, gpu);

    g_autofree char *all_free = pool_text(fixture->store, "edu", NULL);
    g_assert_cmpstr(all_free, ==,
                    "edu-0,edu-1,edu-2,edu-3,edu-4,edu-5,edu-6,edu-7,edu-8,edu-9,edu-10");
    for (int i = 0; i < 10; i++)
        g_free(claim_id(fixture->store, "edu", i % 2 ? web->id : db->id));
    g_autofree char *tenth = claim_id(fixture->store, "edu", web->id);
    g_assert_cmpstr(tenth, ==, "edu-10");
    g_assert_true(store_device_release(fixture->store, "edu-1", web->id, &error));
    g_autofree char *gpu0 = claim_id(fixture->store, "gpu", db->id);

    /* By tenant: only what its stacks hold, naming the stack. */
    g_autofree char *of_acme = pool_text(fixture->store, NULL, "acme");
    g_assert_cmpstr(of_acme, ==,
                    "edu-3@acme/web,edu-5@acme/web,edu-7@acme/web,edu-9@acme/web,edu-10@acme/web");
    g_autofree char *of_other = pool_text(fixture->store, NULL, "other");
    g_assert_cmpstr(of_other, ==,
                    "edu-0@other/db,edu-2@other/db,edu-4@other/db,edu-6@other/db,"
                    "edu-8@other/db,gpu-0@other/db");
    g_autofree char *gpu_of_acme = pool_text(fixture->store, "gpu", "acme");
    g_assert_cmpstr(gpu_of_acme, ==, "");
    g_autofree char *gpu_of_other = pool_text(fixture->store, "gpu", "other");
    g_assert_cmpstr(gpu_of_other, ==, "gpu-0@other/db");
    g_autofree char *of_nobody = pool_text(fixture->store, NULL, "nobody");
    g_assert_cmpstr(of_nobody, ==, "");
    g_autofree char *no_class = pool_text(fixture->store, "nope", NULL);
    g_assert_cmpstr(no_class, ==, "");

    /* A held device names its stack's id, name and tenant. */
    g_autoptr(GPtrArray) gpus = store_device_list(fixture->store, "gpu", NULL, &error);
    g_assert_no_error(error);
    const ApiDevice *held = g_ptr_array_index(gpus, 0);
    g_assert_cmpstr(held->stack_id, ==, db->id);
    g_assert_cmpstr(held->stack_name, ==, "db");
    g_assert_cmpstr(held->tenant, ==, "other");
    g_assert_cmpstr(held->address, ==, "0000:3b:00.0");

    g_autoptr(GPtrArray) of_web = store_device_list_of_stack(fixture->store, web->id, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(of_web->len, ==, 5);
    g_assert_cmpstr(((const ApiDevice *)g_ptr_array_index(of_web, 4))->id, ==, "edu-10");

    g_assert_cmpint(store_tenant_devices_in_use(fixture->store, "acme", &error), ==, 5);
    g_assert_cmpint(store_tenant_devices_in_use(fixture->store, "other", &error), ==, 6);
    g_assert_cmpint(store_tenant_devices_in_use(fixture->store, "nobody", &error), ==, 0);
    g_assert_no_error(error);
    g_autoptr(ApiDeviceClass) edu_class = get_class(fixture->store, "edu");
    g_assert_cmpint(edu_class->in_use, ==, 10);
}

static void test_stack_set_spec(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiStack) web = add_stack(fixture->store, "acme", "web", 2, 256);
    g_autoptr(ApiDeviceClass) rng = make_emulated("rng", "virtio-rng", 2);
    add_class(fixture->store, rng);
    g_autoptr(ApiDevice) device = store_device_claim(fixture->store, "rng", web->id, &error);
    g_assert_no_error(error);

    g_autoptr(ApiStackSpec) spec = api_stack_spec_copy(web->spec);
    g_free(spec->iommu);
    spec->iommu = g_strdup("intel");
    g_ptr_array_add(spec->devices,
                    api_stack_device_new("rng", device->id, device->model, device->address));
    g_ptr_array_add(spec->devices, api_stack_device_new("gpu", "gpu-3", "vfio", "0000:3b:00.0"));
    g_assert_true(store_stack_set_spec(fixture->store, web->id, spec, T1, &error));
    g_assert_no_error(error);

    reopen(fixture);
    g_autoptr(ApiStack) got = store_stack_get(fixture->store, "acme", "web", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(got->updated_at, ==, T1);
    g_assert_cmpstr(got->created_at, ==, T0);
    g_assert_cmpstr(got->spec->iommu, ==, "intel");
    g_assert_cmpuint(got->spec->vcpus, ==, 2);
    g_assert_cmpuint(got->spec->devices->len, ==, 2);
    const ApiStackDevice *first = g_ptr_array_index(got->spec->devices, 0);
    g_assert_cmpstr(first->class_name, ==, "rng");
    g_assert_cmpstr(first->id, ==, "rng-0");
    g_assert_cmpstr(first->model, ==, "virtio-rng");
    g_assert_null(first->address);
    const ApiStackDevice *second = g_ptr_array_index(got->spec->devices, 1);
    g_assert_cmpstr(second->id, ==, "gpu-3");
    g_assert_cmpstr(second->address, ==, "0000:3b:00.0");

    g_autofree char *missing = g_uuid_string_random();
    g_assert_false(store_stack_set_spec(fixture->store, missing, spec, T2, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_NOT_FOUND);
}

/* ---- the event ring ---------------------------------------------------------- */

static gint64 append_event(Store *store, const char *tenant, const char *data, guint ring)
{
    g_autoptr(GError) error = NULL;
    gint64 id = store_event_append(store, "operation", tenant, data, T0, ring, &error);
    g_assert_no_error(error);
    g_assert_cmpint(id, >, 0);
    return id;
}

/* "id:data,..." of a page, for whole-sequence comparisons. */
static char *page_text(Store *store, const char *tenant, gint64 after, gint64 until, guint limit)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) page = store_event_page(store, tenant, after, until, limit, &error);
    g_assert_no_error(error);
    g_assert_nonnull(page);
    g_autoptr(GString) text = g_string_new(NULL);
    for (guint i = 0; i < page->len; i++) {
        const StoreEvent *event = page->pdata[i];
        g_assert_cmpstr(event->type, ==, "operation");
        g_string_append_printf(text, "%s%" G_GINT64_FORMAT ":%s", i > 0 ? "," : "", event->id,
                               event->data);
    }
    return g_string_free(g_steal_pointer(&text), FALSE);
}

static gint64 raw_count(Fixture *fixture, const char *sql)
{
    sqlite3 *db = raw_open(fixture);
    g_autofree char *text = raw_text(db, sql);
    sqlite3_close(db);
    return g_ascii_strtoll(text, NULL, 10);
}

static void test_event_ring_trims(Fixture *fixture, gconstpointer data)
{
    (void)data;
    for (gint64 i = 1; i <= 12; i++) {
        g_autofree char *json = g_strdup_printf("%" G_GINT64_FORMAT, i);
        /* Ids increase one by one from 1: they are the SSE ids. */
        g_assert_cmpint(append_event(fixture->store, NULL, json, 5), ==, i);
    }
    /* The five newest, and only those, are kept. */
    g_assert_cmpint(raw_count(fixture, "SELECT count(*) FROM events"), ==, 5);
    g_autofree char *all = page_text(fixture->store, NULL, 7, 12, 100);
    g_assert_cmpstr(all, ==, "8:8,9:9,10:10,11:11,12:12");
    g_assert_cmpint(raw_count(fixture, "SELECT min(id) FROM events"), ==, 8);

    /* A larger ring after a restart keeps more from then on; a smaller one
     * trims at the next event. */
    reopen(fixture);
    g_assert_cmpint(append_event(fixture->store, NULL, "13", 100), ==, 13);
    g_assert_cmpint(raw_count(fixture, "SELECT count(*) FROM events"), ==, 6);
    g_assert_cmpint(append_event(fixture->store, NULL, "14", 2), ==, 14);
    g_autofree char *two = page_text(fixture->store, NULL, 12, 14, 100);
    g_assert_cmpstr(two, ==, "13:13,14:14");
}

static void test_event_ids_never_go_back(Fixture *fixture, gconstpointer data)
{
    (void)data;
    for (int i = 0; i < 3; i++)
        append_event(fixture->store, NULL, "{}", 10);
    /* Even with every row gone (AUTOINCREMENT, not max(id) + 1), and
     * across a restart: a client's old cursor must not name a new event. */
    sqlite3 *db = raw_open(fixture);
    raw_exec(db, "DELETE FROM events");
    sqlite3_close(db);
    reopen(fixture);
    g_assert_cmpint(append_event(fixture->store, NULL, "{}", 10), ==, 4);
}

static void test_event_cursor(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    gint64 newest = -1;

    (void)data;
    /* Before any event, 0 is the only cursor there is. */
    g_assert_true(store_event_check_cursor(fixture->store, 0, &newest, &error));
    g_assert_no_error(error);
    g_assert_cmpint(newest, ==, 0);
    g_assert_false(store_event_check_cursor(fixture->store, 1, NULL, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST);
    g_assert_nonnull(strstr(error->message, "the newest is 0"));
    g_clear_error(&error);

    for (int i = 0; i < 10; i++)
        append_event(fixture->store, NULL, "{}", 4); /* keeps 7..10 */
    g_assert_true(store_event_check_cursor(fixture->store, 10, &newest, &error));
    g_assert_cmpint(newest, ==, 10);
    /* The oldest kept is 7: a client that saw 6 missed nothing. */
    g_assert_true(store_event_check_cursor(fixture->store, 6, NULL, &error));
    g_assert_no_error(error);
    g_assert_false(store_event_check_cursor(fixture->store, 5, NULL, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_GONE);
    g_assert_nonnull(strstr(error->message, "resync"));
    g_clear_error(&error);
    g_assert_false(store_event_check_cursor(fixture->store, 0, NULL, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_GONE);
    g_clear_error(&error);
    g_assert_false(store_event_check_cursor(fixture->store, 11, NULL, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST);
    g_clear_error(&error);
    /* A page is refused the same way: a replay the ring overtook must not
     * quietly skip what was trimmed. */
    g_autoptr(GPtrArray) page = store_event_page(fixture->store, NULL, 5, 10, 100, &error);
    g_assert_null(page);
    g_assert_error(error, TD_ERROR, TD_ERROR_GONE);
}

static void test_event_page_filters(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    g_autoptr(ApiTenant) acme = add_tenant(fixture->store, "acme");
    g_autoptr(ApiTenant) beta = add_tenant(fixture->store, "beta");
    append_event(fixture->store, "acme", "a1", 100);      /* 1 */
    append_event(fixture->store, "beta", "b1", 100);      /* 2 */
    append_event(fixture->store, NULL, "o1", 100);        /* 3 */
    append_event(fixture->store, "acme", "a2", 100);      /* 4 */
    append_event(fixture->store, "nobody", "n1", 100);    /* 5: no such tenant: the operator's */
    append_event(fixture->store, "acme", "a3", 100);      /* 6 */
    append_event(fixture->store, UNICODE_NAME, "u", 100); /* 7 */

    g_autofree char *a = page_text(fixture->store, "acme", 0, 7, 100);
    g_assert_cmpstr(a, ==, "1:a1,4:a2,6:a3");
    g_autofree char *b = page_text(fixture->store, "beta", 0, 7, 100);
    g_assert_cmpstr(b, ==, "2:b1");
    g_autofree char *nobody = page_text(fixture->store, "nobody", 0, 7, 100);
    g_assert_cmpstr(nobody, ==, "");
    g_autofree char *all = page_text(fixture->store, NULL, 0, 7, 100);
    g_assert_cmpstr(all, ==, "1:a1,2:b1,3:o1,4:a2,5:n1,6:a3,7:u");
    /* (after, until], oldest first, at most limit. */
    g_autofree char *window = page_text(fixture->store, NULL, 2, 5, 100);
    g_assert_cmpstr(window, ==, "3:o1,4:a2,5:n1");
    g_autofree char *limited = page_text(fixture->store, "acme", 1, 7, 1);
    g_assert_cmpstr(limited, ==, "4:a2");

    /* A tenant deleted and created again under its name does not replay the
     * old one's events; they stay the operator's. */
    g_assert_true(store_tenant_delete(fixture->store, "acme", &error));
    g_assert_no_error(error);
    g_autoptr(ApiTenant) again = add_tenant(fixture->store, "acme");
    append_event(fixture->store, "acme", "new", 100); /* 8 */
    g_autofree char *namesake = page_text(fixture->store, "acme", 0, 8, 100);
    g_assert_cmpstr(namesake, ==, "8:new");
    g_autofree char *operator= page_text(fixture->store, NULL, 0, 8, 100);
    g_assert_cmpstr(operator, ==, "1:a1,2:b1,3:o1,4:a2,5:n1,6:a3,7:u,8:new");
}

static gboolean append_inside(Store *store, gpointer data, GError **error)
{
    (void)data;
    return store_event_append(store, "operation", NULL, "{}", T0, 10, error) > 0;
}

static void test_event_not_in_transaction(Fixture *fixture, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    /* Its id goes out live at once: a transaction that rolled it back
     * would hand the same id to the next event. */
    g_assert_false(store_transaction(fixture->store, append_inside, NULL, &error));
    g_assert_error(error, TD_ERROR, TD_ERROR_INTERNAL);
    g_assert_nonnull(strstr(error->message, "open transaction"));
    g_assert_cmpint(raw_count(fixture, "SELECT count(*) FROM events"), ==, 0);
    g_assert_cmpint(append_event(fixture->store, NULL, "{}", 10), ==, 1);
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
    ADD("/store/operation/page", test_operation_page);
    ADD("/store/migrate/from-v1", test_migrate_from_v1);
    ADD("/store/migrate/from-v2", test_migrate_from_v2);
    ADD("/store/migrate/from-v7", test_migrate_from_v7);
    ADD("/store/migrate/from-v8", test_migrate_from_v8);
    ADD("/store/token/operator", test_operator_tokens);
    ADD("/store/peer/crud", test_peer_crud);
    ADD("/store/peer/names-verbatim", test_peer_names_verbatim);
    ADD("/store/peer/internal-errors", test_peer_internal_errors);
    ADD("/store/image/crud", test_image_crud);
    ADD("/store/image/in-use", test_image_in_use);
    ADD("/store/stack/crud", test_stack_crud);
    ADD("/store/stack/pagination", test_stack_pagination);
    ADD("/store/stack/bad-spec", test_stack_bad_spec);
    ADD("/store/stack/last-migration", test_stack_last_migration);
    ADD("/store/tenant/owns-stacks-and-images", test_tenant_owns_stacks_and_images);
    ADD("/store/tenant/usage", test_tenant_usage);
    ADD("/store/threads", test_threads);
    ADD("/store/transaction/all-or-nothing", test_transaction);
    ADD("/store/transaction/nested", test_transaction_nested);
    ADD("/store/transaction/reads-beside", test_reads_beside_transaction);
    ADD("/store/tokens/cache", test_token_cache);
    ADD("/store/transaction/quota-race", test_transaction_quota_race);
    ADD("/store/stack/conditional-state", test_stack_conditional_state);
    ADD("/store/image/conditional-state", test_image_conditional_state);
    ADD("/store/device/class-insert", test_device_class_insert);
    ADD("/store/device/class-address-taken", test_device_class_address_taken);
    ADD("/store/device/claim", test_device_claim);
    ADD("/store/device/claim-rolled-back", test_device_claim_rolled_back);
    ADD("/store/device/freed-with-stack", test_device_freed_with_stack);
    ADD("/store/device/class-capacity", test_device_class_capacity);
    ADD("/store/device/class-delete", test_device_class_delete);
    ADD("/store/device/list", test_device_list);
    ADD("/store/stack/set-spec", test_stack_set_spec);
    ADD("/store/event/ring-trims", test_event_ring_trims);
    ADD("/store/event/ids-never-go-back", test_event_ids_never_go_back);
    ADD("/store/event/cursor", test_event_cursor);
    ADD("/store/event/page-filters", test_event_page_filters);
    ADD("/store/event/not-in-transaction", test_event_not_in_transaction);
#undef ADD

    return g_test_run();
}
