#include "daemon/store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/json.h"
#include "daemon/clock.h"
#include "daemon/error.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sqlite3_stmt, sqlite3_finalize)

#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_INTERRUPTED     "interrupted by daemon restart"

struct Store {
    /* Held by every public function for its whole duration, and by
     * store_transaction for the transaction's: recursive, so that store
     * functions called inside a transaction join it. */
    GRecMutex lock;
    sqlite3 *db;
    guint depth; /* open begin()s: BEGIN IMMEDIATE at 0, savepoints inside */
};

/* Schema migrations, applied in order: migrations[i] takes user_version from
 * i to i + 1.  Never edit one that has shipped; append a new one.  A table
 * whose rows belong to a tenant (stacks, images) also goes into
 * tenant_owner_checks below.
 *
 * operations.tenant_id refers to the tenant's id, not its name, with ON DELETE
 * SET NULL: a tenant deleted and created again under the same name must not
 * inherit the old one's operations, while the history itself (and /metrics
 * counts) survive the tenant and a worker still finishing one can persist it.
 * A NULL owner is operator work, which only the operator sees. */
static const char *const migrations[] = {
    /* v1 */
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
    "CREATE INDEX operations_status ON operations (status);",
    /* v2: images and stacks.  Their tenant_id has no ON DELETE: a tenant that
     * owns any cannot go (tenant_owner_checks says so first; the key is the
     * backstop).  stack_images.image_id has none either, so an image a stack
     * uses cannot go, while a stack takes its uses with it.  vcpus and
     * memory_mib repeat the spec so that SQL can sum them for quotas. */
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
    "CREATE INDEX stack_images_image ON stack_images (image_id);",
    /* v3: peers, the hosts stacks may migrate to.  The operator's, not a
     * tenant's; the name is the key. */
    "CREATE TABLE peers ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  libvirt_uri TEXT NOT NULL,"
    "  migrate_uri TEXT,"
    "  created_at TEXT NOT NULL"
    ");",
    /* v4: the last migration of a stack that arrived here, for its stats. */
    "CREATE TABLE stack_migrations ("
    "  stack_id TEXT PRIMARY KEY NOT NULL REFERENCES stacks (id) ON DELETE CASCADE,"
    "  peer TEXT NOT NULL,"
    "  finished_at TEXT NOT NULL,"
    "  total_ms INTEGER NOT NULL CHECK (total_ms >= 0),"
    "  downtime_ms INTEGER NOT NULL CHECK (downtime_ms >= 0),"
    "  bytes INTEGER NOT NULL CHECK (bytes >= 0)"
    ");",
};

/* A tenant cannot be deleted while one of these finds a row; ?1 is the
 * tenant's id.  Adding a table that tenants own is one line here, e.g.
 *   {"stacks", "SELECT 1 FROM stacks WHERE tenant_id = ?1 LIMIT 1"}, */
typedef struct {
    const char *what;
    const char *sql;
} TenantOwnerCheck;

static const TenantOwnerCheck tenant_owner_checks[] = {
    /* A running operation still acts for its tenant. */
    {"operations in progress", "SELECT 1 FROM operations WHERE tenant_id = ?1 AND status IN "
                               "('pending', 'running') LIMIT 1"},
    {"stacks", "SELECT 1 FROM stacks WHERE tenant_id = ?1 LIMIT 1"},
    {"images", "SELECT 1 FROM images WHERE tenant_id = ?1 LIMIT 1"},
    {NULL, NULL},
};

/* ---- errors ------------------------------------------------------------ */

static void set_internal(Store *store, GError **error, const char *what)
{
    g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "store: %s: %s", what,
                sqlite3_errmsg(store->db));
}

static gboolean is_unique_violation(Store *store)
{
    int code = sqlite3_extended_errcode(store->db);
    return code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY;
}

/* ---- statements -------------------------------------------------------- */

static sqlite3_stmt *prepare(Store *store, const char *sql, GError **error)
{
    sqlite3_stmt *stmt = NULL;

    if (sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        set_internal(store, error, "prepare");
        return NULL;
    }
    return stmt;
}

/* Binders skip once one has failed and keep its code in *@bound, so that a
 * run of binds is checked once, by step(). */
static void bind_text(sqlite3_stmt *stmt, int *bound, int index, const char *value)
{
    if (*bound == SQLITE_OK)
        *bound = sqlite3_bind_text(stmt, index, value, -1, SQLITE_TRANSIENT);
}

static void bind_int64(sqlite3_stmt *stmt, int *bound, int index, gint64 value)
{
    if (*bound == SQLITE_OK)
        *bound = sqlite3_bind_int64(stmt, index, value);
}

/* Negative means unknown: NULL. */
static void bind_int64_or_null(sqlite3_stmt *stmt, int *bound, int index, gint64 value)
{
    if (*bound == SQLITE_OK)
        *bound =
            value < 0 ? sqlite3_bind_null(stmt, index) : sqlite3_bind_int64(stmt, index, value);
}

static void bind_hash(sqlite3_stmt *stmt, int *bound, int index,
                      const guint8 hash[STORE_TOKEN_HASH_LEN])
{
    if (*bound == SQLITE_OK)
        *bound = sqlite3_bind_blob(stmt, index, hash, STORE_TOKEN_HASH_LEN, SQLITE_TRANSIENT);
}

/* A failed bind has already set the connection's error message. */
static int step(sqlite3_stmt *stmt, int bound)
{
    return bound == SQLITE_OK ? sqlite3_step(stmt) : bound;
}

static char *column_text(sqlite3_stmt *stmt, int index)
{
    const unsigned char *text = sqlite3_column_text(stmt, index);
    return text != NULL ? g_strdup((const char *)text) : NULL;
}

/* Runs SQL that takes no parameters and returns no rows. */
static gboolean exec(Store *store, const char *sql, GError **error)
{
    if (sqlite3_exec(store->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        set_internal(store, error, sql);
        return FALSE;
    }
    return TRUE;
}

/* begin/commit/rollback nest: the outermost is the transaction (IMMEDIATE:
 * take the write lock now rather than fail half-way), inner ones are
 * savepoints, so a function that needs a transaction of its own joins its
 * caller's. */
static gboolean begin(Store *store, GError **error)
{
    if (!exec(store, store->depth == 0 ? "BEGIN IMMEDIATE" : "SAVEPOINT nested", error))
        return FALSE;
    store->depth++;
    return TRUE;
}

static gboolean commit(Store *store, GError **error)
{
    g_return_val_if_fail(store->depth > 0, FALSE);
    if (!exec(store, store->depth == 1 ? "COMMIT" : "RELEASE nested", error))
        return FALSE;
    store->depth--;
    return TRUE;
}

static void rollback(Store *store)
{
    g_return_if_fail(store->depth > 0);
    store->depth--;
    /* Some errors roll back the whole transaction by themselves; then there
     * is nothing left to undo, at any level. */
    if (sqlite3_get_autocommit(store->db))
        return;
    if (store->depth == 0)
        sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
    else
        sqlite3_exec(store->db, "ROLLBACK TO nested; RELEASE nested", NULL, NULL, NULL);
}

gboolean store_transaction(Store *store, StoreTransactionFunc body, gpointer data, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    if (!begin(store, error))
        return FALSE;
    if (!body(store, data, error)) {
        rollback(store);
        return FALSE;
    }
    if (!commit(store, error)) {
        rollback(store);
        return FALSE;
    }
    return TRUE;
}

static int user_version(Store *store, GError **error)
{
    g_autoptr(sqlite3_stmt) stmt = prepare(store, "PRAGMA user_version", error);
    if (stmt == NULL)
        return -1;
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        set_internal(store, error, "reading the schema version");
        return -1;
    }
    return sqlite3_column_int(stmt, 0);
}

/* The id of tenant @name, or NOT_FOUND. */
static char *tenant_id(Store *store, const char *name, GError **error)
{
    g_autoptr(sqlite3_stmt) stmt = prepare(store, "SELECT id FROM tenants WHERE name = ?1", error);
    if (stmt == NULL)
        return NULL;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, name);
    switch (step(stmt, bound)) {
    case SQLITE_ROW:
        return column_text(stmt, 0);
    case SQLITE_DONE:
        g_set_error(error, TD_ERROR, TD_ERROR_NOT_FOUND, "tenant '%s' not found", name);
        return NULL;
    default:
        set_internal(store, error, "looking up a tenant");
        return NULL;
    }
}

/* ---- open -------------------------------------------------------------- */

static gboolean migrate(Store *store, GError **error)
{
    const int known = (int)G_N_ELEMENTS(migrations);

    for (;;) {
        if (!begin(store, error))
            return FALSE;
        /* Read inside the transaction: another process may have migrated. */
        int version = user_version(store, error);
        if (version < 0) {
            rollback(store);
            return FALSE;
        }
        if (version > known) {
            rollback(store);
            g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL,
                        "store: %s has schema version %d but this turtled knows only up to %d; "
                        "refusing to use a database written by a newer turtled",
                        STORE_FILE_NAME, version, known);
            return FALSE;
        }
        if (version == known) {
            rollback(store);
            return TRUE;
        }
        /* PRAGMA takes no parameters; the number comes from this array, never
         * from input. */
        g_autofree char *bump = g_strdup_printf("PRAGMA user_version = %d", version + 1);
        g_autofree char *what = g_strdup_printf("migration to schema version %d", version + 1);
        if (sqlite3_exec(store->db, migrations[version], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(store->db, bump, NULL, NULL, NULL) != SQLITE_OK) {
            set_internal(store, error, what);
            rollback(store);
            return FALSE;
        }
        if (!commit(store, error)) {
            rollback(store);
            return FALSE;
        }
    }
}

/* Creates the file 0600 before SQLite sees it: SQLite would create it 0644,
 * and gives its -wal and -shm files the mode of the database. */
static gboolean create_private_file(const char *path, GError **error)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "store: cannot create %s: %s", path,
                    g_strerror(saved));
        return FALSE;
    }
    close(fd);
    return TRUE;
}

Store *store_open(const char *state_dir, GError **error)
{
    if (g_mkdir_with_parents(state_dir, 0700) != 0) {
        int saved = errno;
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "store: cannot create %s: %s", state_dir,
                    g_strerror(saved));
        return NULL;
    }
    g_autofree char *path = g_build_filename(state_dir, STORE_FILE_NAME, NULL);
    if (!create_private_file(path, error))
        return NULL;

    g_autoptr(Store) store = g_new0(Store, 1);
    g_rec_mutex_init(&store->lock);
    int rc = sqlite3_open_v2(
        path, &store->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "store: cannot open %s: %s", path,
                    store->db != NULL ? sqlite3_errmsg(store->db) : sqlite3_errstr(rc));
        return NULL;
    }
    sqlite3_busy_timeout(store->db, STORE_BUSY_TIMEOUT_MS);
    /* Connection settings first: foreign_keys is a no-op inside a transaction. */
    if (!exec(store, "PRAGMA journal_mode = WAL", error) ||
        !exec(store, "PRAGMA foreign_keys = ON", error) ||
        !exec(store, "PRAGMA synchronous = NORMAL", error) || !migrate(store, error))
        return NULL;
    return g_steal_pointer(&store);
}

void store_free(Store *store)
{
    if (store == NULL)
        return;
    /* close_v2 cannot fail with BUSY: every statement is finalized by now, and
     * one that was not would close the handle when it is. */
    sqlite3_close_v2(store->db);
    g_rec_mutex_clear(&store->lock);
    g_free(store);
}

int store_schema_version(Store *store)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    return user_version(store, NULL);
}

/* ---- tenants ----------------------------------------------------------- */

#define TENANT_COLUMNS                                                                             \
    "id, name, quota_stacks, quota_vcpus, quota_memory_mib, quota_disk_gib, created_at, "          \
    "updated_at"

static ApiTenant *tenant_from_row(sqlite3_stmt *stmt)
{
    ApiTenant *tenant = api_tenant_new();

    tenant->id = column_text(stmt, 0);
    tenant->name = column_text(stmt, 1);
    tenant->quota.stacks = sqlite3_column_int64(stmt, 2);
    tenant->quota.vcpus = sqlite3_column_int64(stmt, 3);
    tenant->quota.memory_mib = sqlite3_column_int64(stmt, 4);
    tenant->quota.disk_gib = sqlite3_column_int64(stmt, 5);
    tenant->created_at = column_text(stmt, 6);
    tenant->updated_at = column_text(stmt, 7);
    return tenant;
}

gboolean store_tenant_insert(Store *store, const ApiTenant *tenant, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(sqlite3_stmt) stmt = prepare(
        store, "INSERT INTO tenants (" TENANT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        error);
    if (stmt == NULL)
        return FALSE;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, tenant->id);
    bind_text(stmt, &bound, 2, tenant->name);
    bind_int64(stmt, &bound, 3, tenant->quota.stacks);
    bind_int64(stmt, &bound, 4, tenant->quota.vcpus);
    bind_int64(stmt, &bound, 5, tenant->quota.memory_mib);
    bind_int64(stmt, &bound, 6, tenant->quota.disk_gib);
    bind_text(stmt, &bound, 7, tenant->created_at);
    bind_text(stmt, &bound, 8, tenant->updated_at);
    if (step(stmt, bound) == SQLITE_DONE)
        return TRUE;
    if (is_unique_violation(store)) {
        /* The name is what a client chose; a clashing id is a UUID bug. */
        g_autofree char *existing = tenant_id(store, tenant->name, NULL);
        if (existing != NULL)
            g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "tenant '%s' already exists",
                        tenant->name);
        else
            g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "tenant id '%s' already exists",
                        tenant->id);
        return FALSE;
    }
    set_internal(store, error, "inserting a tenant");
    return FALSE;
}

ApiTenant *store_tenant_get(Store *store, const char *name, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store, "SELECT " TENANT_COLUMNS " FROM tenants WHERE name = ?1", error);
    if (stmt == NULL)
        return NULL;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, name);
    switch (step(stmt, bound)) {
    case SQLITE_ROW:
        return tenant_from_row(stmt);
    case SQLITE_DONE:
        g_set_error(error, TD_ERROR, TD_ERROR_NOT_FOUND, "tenant '%s' not found", name);
        return NULL;
    default:
        set_internal(store, error, "reading a tenant");
        return NULL;
    }
}

GPtrArray *store_tenant_list(Store *store, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store, "SELECT " TENANT_COLUMNS " FROM tenants ORDER BY name", error);
    if (stmt == NULL)
        return NULL;

    g_autoptr(GPtrArray) tenants = g_ptr_array_new_with_free_func((GDestroyNotify)api_tenant_free);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        g_ptr_array_add(tenants, tenant_from_row(stmt));
    if (rc != SQLITE_DONE) {
        set_internal(store, error, "listing tenants");
        return NULL;
    }
    return g_steal_pointer(&tenants);
}

gboolean store_tenant_set_quota(Store *store, const char *name, const ApiQuota *quota,
                                const char *updated_at, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store,
                "UPDATE tenants SET quota_stacks = ?2, quota_vcpus = ?3, quota_memory_mib = ?4, "
                "quota_disk_gib = ?5, updated_at = ?6 WHERE name = ?1",
                error);
    if (stmt == NULL)
        return FALSE;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, name);
    bind_int64(stmt, &bound, 2, quota->stacks);
    bind_int64(stmt, &bound, 3, quota->vcpus);
    bind_int64(stmt, &bound, 4, quota->memory_mib);
    bind_int64(stmt, &bound, 5, quota->disk_gib);
    bind_text(stmt, &bound, 6, updated_at);
    if (step(stmt, bound) != SQLITE_DONE) {
        set_internal(store, error, "updating a quota");
        return FALSE;
    }
    if (sqlite3_changes(store->db) == 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_NOT_FOUND, "tenant '%s' not found", name);
        return FALSE;
    }
    return TRUE;
}

/* CONFLICT when a tenant_owner_checks query finds a row of @id. */
static gboolean tenant_owns_nothing(Store *store, const char *name, const char *id, GError **error)
{
    for (const TenantOwnerCheck *check = tenant_owner_checks; check->what != NULL; check++) {
        g_autoptr(sqlite3_stmt) stmt = prepare(store, check->sql, error);
        if (stmt == NULL)
            return FALSE;
        int bound = SQLITE_OK;
        bind_text(stmt, &bound, 1, id);
        switch (step(stmt, bound)) {
        case SQLITE_ROW:
            g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "tenant '%s' still owns %s", name,
                        check->what);
            return FALSE;
        case SQLITE_DONE:
            break;
        default:
            set_internal(store, error, "checking what a tenant owns");
            return FALSE;
        }
    }
    return TRUE;
}

/* Runs a one-parameter DELETE (?1 = @id); transactions stay with the caller. */
static gboolean delete_by_id(Store *store, const char *sql, const char *id, const char *what,
                             GError **error)
{
    g_autoptr(sqlite3_stmt) stmt = prepare(store, sql, error);
    if (stmt == NULL)
        return FALSE;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, id);
    if (step(stmt, bound) != SQLITE_DONE) {
        set_internal(store, error, what);
        return FALSE;
    }
    return TRUE;
}

gboolean store_tenant_delete(Store *store, const char *name, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);

    /* One transaction: nothing may become owned between check and delete. */
    if (!begin(store, error))
        return FALSE;
    g_autofree char *id = tenant_id(store, name, error);
    if (id == NULL || !tenant_owns_nothing(store, name, id, error)) {
        rollback(store);
        return FALSE;
    }
    if (!delete_by_id(store, "DELETE FROM tenants WHERE id = ?1", id, "deleting a tenant", error) ||
        !commit(store, error)) {
        rollback(store);
        return FALSE;
    }
    return TRUE;
}

/* ---- tokens ------------------------------------------------------------ */

gboolean store_token_insert(Store *store, const char *id, const char *tenant,
                            const guint8 hash[STORE_TOKEN_HASH_LEN], const char *created_at,
                            GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);

    if (!begin(store, error))
        return FALSE;
    g_autofree char *owner = tenant_id(store, tenant, error);
    if (owner == NULL) {
        rollback(store);
        return FALSE;
    }
    g_autoptr(sqlite3_stmt) stmt = prepare(
        store, "INSERT INTO tokens (id, tenant_id, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        error);
    if (stmt == NULL) {
        rollback(store);
        return FALSE;
    }
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, id);
    bind_text(stmt, &bound, 2, owner);
    bind_hash(stmt, &bound, 3, hash);
    bind_text(stmt, &bound, 4, created_at);
    if (step(stmt, bound) != SQLITE_DONE) {
        /* A clashing hash means a broken random source; say so, not which. */
        if (is_unique_violation(store))
            g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "token '%s' already exists", id);
        else
            set_internal(store, error, "inserting a token");
        rollback(store);
        return FALSE;
    }
    if (!commit(store, error)) {
        rollback(store);
        return FALSE;
    }
    return TRUE;
}

gboolean store_token_revoke(Store *store, const char *tenant, const char *id, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autofree char *now = clock_now_rfc3339();

    if (!begin(store, error))
        return FALSE;
    g_autofree char *owner = tenant_id(store, tenant, error);
    if (owner == NULL) {
        rollback(store);
        return FALSE;
    }
    /* Another tenant's token, or one already revoked, is simply not found. */
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store,
                "UPDATE tokens SET revoked_at = ?3 "
                "WHERE id = ?1 AND tenant_id = ?2 AND revoked_at IS NULL",
                error);
    if (stmt == NULL) {
        rollback(store);
        return FALSE;
    }
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, id);
    bind_text(stmt, &bound, 2, owner);
    bind_text(stmt, &bound, 3, now);
    if (step(stmt, bound) != SQLITE_DONE) {
        set_internal(store, error, "revoking a token");
        rollback(store);
        return FALSE;
    }
    if (sqlite3_changes(store->db) == 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_NOT_FOUND, "token '%s' not found", id);
        rollback(store);
        return FALSE;
    }
    if (!commit(store, error)) {
        rollback(store);
        return FALSE;
    }
    return TRUE;
}

/* Compares every byte whatever the first difference: the time taken says
 * nothing about how much of a guess was right. */
static gboolean hash_equal(const guint8 *a, const guint8 *b)
{
    volatile guint8 diff = 0;

    for (gsize i = 0; i < STORE_TOKEN_HASH_LEN; i++)
        diff |= a[i] ^ b[i];
    return diff == 0;
}

char *store_token_lookup(Store *store, const guint8 hash[STORE_TOKEN_HASH_LEN])
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(GError) error = NULL;
    g_autoptr(sqlite3_stmt) stmt = prepare(store,
                                           "SELECT tokens.hash, tenants.name FROM tokens "
                                           "JOIN tenants ON tenants.id = tokens.tenant_id "
                                           "WHERE tokens.hash = ?1 AND tokens.revoked_at IS NULL",
                                           &error);
    if (stmt == NULL) {
        g_debug("%s", error->message);
        return NULL;
    }
    int bound = SQLITE_OK;
    bind_hash(stmt, &bound, 1, hash);
    int rc = step(stmt, bound);
    if (rc != SQLITE_ROW) {
        if (rc != SQLITE_DONE)
            g_debug("store: looking up a token: %s", sqlite3_errmsg(store->db));
        return NULL;
    }
    /* The index found the row; this check is what the answer rests on. */
    const guint8 *stored = sqlite3_column_blob(stmt, 0);
    if (stored == NULL || sqlite3_column_bytes(stmt, 0) != STORE_TOKEN_HASH_LEN ||
        !hash_equal(stored, hash))
        return NULL;
    return column_text(stmt, 1);
}

/* ---- operations -------------------------------------------------------- */

gboolean store_operation_insert(Store *store, const ApiOperation *operation, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);

    if (!begin(store, error))
        return FALSE;
    g_autofree char *owner = NULL;
    if (operation->tenant != NULL) {
        owner = tenant_id(store, operation->tenant, error);
        if (owner == NULL) {
            rollback(store);
            return FALSE;
        }
    }
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store,
                "INSERT INTO operations (id, kind, target, tenant_id, status, percent, stage, "
                "bytes_done, bytes_total, error, created_at, updated_at) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                error);
    if (stmt == NULL) {
        rollback(store);
        return FALSE;
    }
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, operation->id);
    bind_text(stmt, &bound, 2, operation->kind);
    bind_text(stmt, &bound, 3, operation->target);
    bind_text(stmt, &bound, 4, owner);
    bind_text(stmt, &bound, 5, api_operation_status_to_string(operation->status));
    bind_int64(stmt, &bound, 6, operation->progress.percent);
    bind_text(stmt, &bound, 7, operation->progress.stage);
    bind_int64(stmt, &bound, 8, operation->progress.bytes_done);
    bind_int64(stmt, &bound, 9, operation->progress.bytes_total);
    bind_text(stmt, &bound, 10, operation->error);
    bind_text(stmt, &bound, 11, operation->created_at);
    bind_text(stmt, &bound, 12, operation->updated_at);
    if (step(stmt, bound) != SQLITE_DONE) {
        if (is_unique_violation(store))
            g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "operation '%s' already exists",
                        operation->id);
        else
            set_internal(store, error, "inserting an operation");
        rollback(store);
        return FALSE;
    }
    if (!commit(store, error)) {
        rollback(store);
        return FALSE;
    }
    return TRUE;
}

gboolean store_operation_update(Store *store, const ApiOperation *operation, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store,
                "UPDATE operations SET status = ?2, percent = ?3, stage = ?4, bytes_done = ?5, "
                "bytes_total = ?6, error = ?7, updated_at = ?8 WHERE id = ?1",
                error);
    if (stmt == NULL)
        return FALSE;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, operation->id);
    bind_text(stmt, &bound, 2, api_operation_status_to_string(operation->status));
    bind_int64(stmt, &bound, 3, operation->progress.percent);
    bind_text(stmt, &bound, 4, operation->progress.stage);
    bind_int64(stmt, &bound, 5, operation->progress.bytes_done);
    bind_int64(stmt, &bound, 6, operation->progress.bytes_total);
    bind_text(stmt, &bound, 7, operation->error);
    bind_text(stmt, &bound, 8, operation->updated_at);
    if (step(stmt, bound) != SQLITE_DONE) {
        set_internal(store, error, "updating an operation");
        return FALSE;
    }
    if (sqlite3_changes(store->db) == 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_NOT_FOUND, "operation '%s' not found", operation->id);
        return FALSE;
    }
    return TRUE;
}

ApiOperation *store_operation_get(Store *store, const char *id, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store,
                "SELECT o.id, o.kind, o.target, t.name, o.status, o.percent, o.stage, "
                "o.bytes_done, o.bytes_total, o.error, o.created_at, o.updated_at "
                "FROM operations o LEFT JOIN tenants t ON t.id = o.tenant_id WHERE o.id = ?1",
                error);
    if (stmt == NULL)
        return NULL;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, id);
    int rc = step(stmt, bound);
    if (rc == SQLITE_DONE) {
        g_set_error(error, TD_ERROR, TD_ERROR_NOT_FOUND, "operation '%s' not found", id);
        return NULL;
    }
    if (rc != SQLITE_ROW) {
        set_internal(store, error, "reading an operation");
        return NULL;
    }

    g_autoptr(ApiOperation) operation = api_operation_new();
    const char *status = (const char *)sqlite3_column_text(stmt, 4);
    if (!api_operation_status_from_string(status, &operation->status)) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL,
                    "store: operation '%s' has an unknown status '%s'", id, status);
        return NULL;
    }
    operation->id = column_text(stmt, 0);
    operation->kind = column_text(stmt, 1);
    operation->target = column_text(stmt, 2);
    operation->tenant = column_text(stmt, 3);
    operation->progress.percent = sqlite3_column_int(stmt, 5);
    operation->progress.stage = column_text(stmt, 6);
    operation->progress.bytes_done = sqlite3_column_int64(stmt, 7);
    operation->progress.bytes_total = sqlite3_column_int64(stmt, 8);
    operation->error = column_text(stmt, 9);
    operation->created_at = column_text(stmt, 10);
    operation->updated_at = column_text(stmt, 11);
    return g_steal_pointer(&operation);
}

int store_operation_fail_interrupted(Store *store, const char *now, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store,
                "UPDATE operations SET status = 'failed', error = ?1, updated_at = ?2 "
                "WHERE status IN ('pending', 'running')",
                error);
    if (stmt == NULL)
        return -1;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, STORE_INTERRUPTED);
    bind_text(stmt, &bound, 2, now);
    if (step(stmt, bound) != SQLITE_DONE) {
        set_internal(store, error, "failing interrupted operations");
        return -1;
    }
    return sqlite3_changes(store->db);
}

GHashTable *store_operation_counts(Store *store, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(sqlite3_stmt) stmt = prepare(
        store, "SELECT kind, status, count(*) FROM operations GROUP BY kind, status", error);
    if (stmt == NULL)
        return NULL;

    g_autoptr(GHashTable) counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        char *key = g_strdup_printf("%s\t%s", (const char *)sqlite3_column_text(stmt, 0),
                                    (const char *)sqlite3_column_text(stmt, 1));
        g_hash_table_insert(counts, key, GINT_TO_POINTER(sqlite3_column_int(stmt, 2)));
    }
    if (rc != SQLITE_DONE) {
        set_internal(store, error, "counting operations");
        return NULL;
    }
    return g_steal_pointer(&counts);
}

/* "?N, ?N+1, ..." for the states in @mask, bound by bind_states: the SQL
 * holds only placeholders, the names come from the enum. */
static char *state_placeholders(guint mask, int first)
{
    g_autoptr(GString) sql = g_string_new(NULL);
    int count = 0;
    for (int state = 0; state < 32; state++) {
        if (mask & (1u << state)) {
            g_string_append_printf(sql, "%s?%d", count > 0 ? ", " : "", first + count);
            count++;
        }
    }
    return g_string_free(g_steal_pointer(&sql), FALSE);
}

/* ---- images ------------------------------------------------------------ */

#define IMAGE_COLUMNS                                                                              \
    "i.id, i.name, t.name, i.kind, i.format, i.state, i.size, i.sha256, i.error, i.created_at, "   \
    "i.updated_at, i.volume"
#define IMAGE_FROM " FROM images i JOIN tenants t ON t.id = i.tenant_id "

static ApiImage *image_from_row(sqlite3_stmt *stmt, GError **error)
{
    g_autoptr(ApiImage) image = api_image_new();
    const char *kind = (const char *)sqlite3_column_text(stmt, 3);
    const char *format = (const char *)sqlite3_column_text(stmt, 4);
    const char *state = (const char *)sqlite3_column_text(stmt, 5);

    image->id = column_text(stmt, 0);
    /* The schema's CHECKs make these hold unless someone edited the file. */
    if (!api_image_kind_from_string(kind, &image->kind) ||
        !api_image_format_from_string(format, &image->format) ||
        !api_image_state_from_string(state, &image->state)) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL,
                    "store: image '%s' has an unknown kind, format or state", image->id);
        return NULL;
    }
    image->name = column_text(stmt, 1);
    image->tenant = column_text(stmt, 2);
    image->size = sqlite3_column_type(stmt, 6) == SQLITE_NULL ? -1 : sqlite3_column_int64(stmt, 6);
    image->sha256 = column_text(stmt, 7);
    image->error = column_text(stmt, 8);
    image->created_at = column_text(stmt, 9);
    image->updated_at = column_text(stmt, 10);
    image->volume = column_text(stmt, 11);
    return g_steal_pointer(&image);
}

gboolean store_image_insert(Store *store, const ApiImage *image, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);

    if (!begin(store, error))
        return FALSE;
    g_autofree char *owner = tenant_id(store, image->tenant, error);
    if (owner == NULL) {
        rollback(store);
        return FALSE;
    }
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store,
                "INSERT INTO images (id, tenant_id, name, kind, format, state, size, sha256, "
                "error, volume, created_at, updated_at) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                error);
    if (stmt == NULL) {
        rollback(store);
        return FALSE;
    }
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, image->id);
    bind_text(stmt, &bound, 2, owner);
    bind_text(stmt, &bound, 3, image->name);
    bind_text(stmt, &bound, 4, api_image_kind_to_string(image->kind));
    bind_text(stmt, &bound, 5, api_image_format_to_string(image->format));
    bind_text(stmt, &bound, 6, api_image_state_to_string(image->state));
    bind_int64_or_null(stmt, &bound, 7, image->size);
    bind_text(stmt, &bound, 8, image->sha256);
    bind_text(stmt, &bound, 9, image->error);
    bind_text(stmt, &bound, 10, image->volume);
    bind_text(stmt, &bound, 11, image->created_at);
    bind_text(stmt, &bound, 12, image->updated_at);
    if (step(stmt, bound) != SQLITE_DONE) {
        if (is_unique_violation(store))
            g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "image '%s' already exists",
                        image->name);
        else
            set_internal(store, error, "inserting an image");
        rollback(store);
        return FALSE;
    }
    if (!commit(store, error)) {
        rollback(store);
        return FALSE;
    }
    return TRUE;
}

ApiImage *store_image_get(Store *store, const char *tenant, const char *name, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(sqlite3_stmt) stmt = prepare(
        store, "SELECT " IMAGE_COLUMNS IMAGE_FROM "WHERE t.name = ?1 AND i.name = ?2", error);
    if (stmt == NULL)
        return NULL;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, tenant);
    bind_text(stmt, &bound, 2, name);
    switch (step(stmt, bound)) {
    case SQLITE_ROW:
        return image_from_row(stmt, error);
    case SQLITE_DONE:
        g_set_error(error, TD_ERROR, TD_ERROR_NOT_FOUND, "image '%s' not found", name);
        return NULL;
    default:
        set_internal(store, error, "reading an image");
        return NULL;
    }
}

GPtrArray *store_image_list(Store *store, const char *tenant, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autofree char *owner = tenant_id(store, tenant, error);
    if (owner == NULL)
        return NULL;
    g_autoptr(sqlite3_stmt) stmt = prepare(
        store, "SELECT " IMAGE_COLUMNS IMAGE_FROM "WHERE i.tenant_id = ?1 ORDER BY i.name", error);
    if (stmt == NULL)
        return NULL;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, owner);

    g_autoptr(GPtrArray) images = g_ptr_array_new_with_free_func((GDestroyNotify)api_image_free);
    int rc;
    while ((rc = step(stmt, bound)) == SQLITE_ROW) {
        ApiImage *image = image_from_row(stmt, error);
        if (image == NULL)
            return NULL;
        g_ptr_array_add(images, image);
    }
    if (rc != SQLITE_DONE) {
        set_internal(store, error, "listing images");
        return NULL;
    }
    return g_steal_pointer(&images);
}

gboolean store_image_set_state(Store *store, const char *id, guint from, ApiImageState state,
                               gint64 size, const char *sha256, const char *error_message,
                               const char *updated_at, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autofree char *states = state_placeholders(from & STORE_IMAGE_ANY_STATE, 7);
    g_autofree char *sql = g_strdup_printf("UPDATE images SET state = ?2, size = ?3, sha256 = ?4, "
                                           "error = ?5, updated_at = ?6 "
                                           "WHERE id = ?1 AND state IN (%s)",
                                           states);
    g_autoptr(sqlite3_stmt) stmt = prepare(store, sql, error);
    if (stmt == NULL)
        return FALSE;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, id);
    bind_text(stmt, &bound, 2, api_image_state_to_string(state));
    bind_int64_or_null(stmt, &bound, 3, size);
    bind_text(stmt, &bound, 4, sha256);
    bind_text(stmt, &bound, 5, error_message);
    bind_text(stmt, &bound, 6, updated_at);
    int index = 7;
    for (int s = 0; s <= API_IMAGE_STATE_ERROR; s++) {
        if (from & (1u << s))
            bind_text(stmt, &bound, index++, api_image_state_to_string((ApiImageState)s));
    }
    if (step(stmt, bound) != SQLITE_DONE) {
        set_internal(store, error, "updating an image");
        return FALSE;
    }
    if (sqlite3_changes(store->db) > 0)
        return TRUE;
    /* Gone, or in a state the caller did not expect. */
    g_autoptr(sqlite3_stmt) check =
        prepare(store, "SELECT i.name, i.state FROM images i WHERE i.id = ?1", error);
    if (check == NULL)
        return FALSE;
    bound = SQLITE_OK;
    bind_text(check, &bound, 1, id);
    switch (step(check, bound)) {
    case SQLITE_ROW:
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "image '%s' is %s: it cannot become %s now",
                    (const char *)sqlite3_column_text(check, 0),
                    (const char *)sqlite3_column_text(check, 1), api_image_state_to_string(state));
        return FALSE;
    case SQLITE_DONE:
        g_set_error(error, TD_ERROR, TD_ERROR_NOT_FOUND, "image '%s' not found", id);
        return FALSE;
    default:
        set_internal(store, error, "reading an image");
        return FALSE;
    }
}

/* The name of a stack using image @id, or NULL with *@failed set on error. */
static char *image_user(Store *store, const char *id, gboolean *failed, GError **error)
{
    g_autoptr(sqlite3_stmt) stmt = prepare(store,
                                           "SELECT s.name FROM stack_images u "
                                           "JOIN stacks s ON s.id = u.stack_id "
                                           "WHERE u.image_id = ?1 ORDER BY s.name LIMIT 1",
                                           error);
    *failed = TRUE;
    if (stmt == NULL)
        return NULL;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, id);
    switch (step(stmt, bound)) {
    case SQLITE_ROW:
        *failed = FALSE;
        return column_text(stmt, 0);
    case SQLITE_DONE:
        *failed = FALSE;
        return NULL;
    default:
        set_internal(store, error, "checking what uses an image");
        return NULL;
    }
}

/* The id of @tenant's image @name, or NOT_FOUND. */
static char *image_id(Store *store, const char *tenant, const char *name, GError **error)
{
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store, "SELECT i.id" IMAGE_FROM "WHERE t.name = ?1 AND i.name = ?2", error);
    if (stmt == NULL)
        return NULL;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, tenant);
    bind_text(stmt, &bound, 2, name);
    switch (step(stmt, bound)) {
    case SQLITE_ROW:
        return column_text(stmt, 0);
    case SQLITE_DONE:
        g_set_error(error, TD_ERROR, TD_ERROR_NOT_FOUND, "image '%s' not found", name);
        return NULL;
    default:
        set_internal(store, error, "looking up an image");
        return NULL;
    }
}

gboolean store_image_delete(Store *store, const char *tenant, const char *name, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);

    /* One transaction: no stack may start using it between check and delete. */
    if (!begin(store, error))
        return FALSE;
    g_autofree char *id = image_id(store, tenant, name, error);
    if (id == NULL) {
        rollback(store);
        return FALSE;
    }
    gboolean failed = FALSE;
    g_autofree char *user = image_user(store, id, &failed, error);
    if (failed || user != NULL) {
        if (user != NULL)
            g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "image '%s' is used by stack '%s'",
                        name, user);
        rollback(store);
        return FALSE;
    }
    if (!delete_by_id(store, "DELETE FROM images WHERE id = ?1", id, "deleting an image", error) ||
        !commit(store, error)) {
        rollback(store);
        return FALSE;
    }
    return TRUE;
}

/* ---- stacks ------------------------------------------------------------ */

#define STACK_COLUMNS                                                                              \
    "s.id, t.name, s.spec_json, s.state, s.host, s.backend, s.domain_name, s.error, "              \
    "s.created_at, s.updated_at"
#define STACK_FROM " FROM stacks s JOIN tenants t ON t.id = s.tenant_id "
/* Far above any real cursor (two names of 63 bytes), far below harm. */
#define STACK_CURSOR_MAX 1024

static ApiStack *stack_from_row(sqlite3_stmt *stmt, GError **error)
{
    g_autofree char *id = column_text(stmt, 0);
    const char *spec_json = (const char *)sqlite3_column_text(stmt, 2);
    const char *state = (const char *)sqlite3_column_text(stmt, 3);
    g_autoptr(GError) local = NULL;

    /* The spec was validated on its way in; failing here means the file was
     * edited or a newer turtled's spec, neither of which a client caused. */
    g_autoptr(json_object) value = api_json_parse(
        spec_json ? spec_json : "", spec_json ? strlen(spec_json) : 0, API_JSON_MAX_DEPTH, &local);
    ApiStackSpec *spec = value != NULL ? api_stack_spec_from_json(value, &local) : NULL;
    if (spec == NULL) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "store: stack '%s' has a bad spec: %s", id,
                    local->message);
        return NULL;
    }
    g_autoptr(ApiStack) stack = api_stack_new(spec);
    if (!api_stack_state_from_string(state, &stack->state)) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "store: stack '%s' has an unknown state",
                    id);
        return NULL;
    }
    stack->id = g_steal_pointer(&id);
    stack->tenant = column_text(stmt, 1);
    stack->host = column_text(stmt, 4);
    stack->backend = column_text(stmt, 5);
    stack->domain_name = column_text(stmt, 6);
    stack->error = column_text(stmt, 7);
    stack->created_at = column_text(stmt, 8);
    stack->updated_at = column_text(stmt, 9);
    return g_steal_pointer(&stack);
}

/* Records that stack @stack_id uses each of @images, names of @tenant's. */
static gboolean stack_use_images(Store *store, const char *stack_id, const char *tenant,
                                 const char *const *images, GError **error)
{
    /* OR IGNORE: one image may be named twice (a kernel doubling as initrd). */
    g_autoptr(sqlite3_stmt) stmt = prepare(
        store, "INSERT OR IGNORE INTO stack_images (stack_id, image_id) VALUES (?1, ?2)", error);
    if (stmt == NULL)
        return FALSE;
    for (gsize i = 0; images != NULL && images[i] != NULL; i++) {
        g_autofree char *id = image_id(store, tenant, images[i], error);
        if (id == NULL)
            return FALSE;
        int bound = SQLITE_OK;
        sqlite3_reset(stmt);
        bind_text(stmt, &bound, 1, stack_id);
        bind_text(stmt, &bound, 2, id);
        if (step(stmt, bound) != SQLITE_DONE) {
            set_internal(store, error, "recording the images of a stack");
            return FALSE;
        }
    }
    return TRUE;
}

gboolean store_stack_insert(Store *store, const ApiStack *stack, const char *const *images,
                            GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(GError) invalid = NULL;

    /* A spec the store could not read back would make the stack unreadable. */
    if (!api_stack_spec_validate(stack->spec, &invalid)) {
        g_set_error_literal(error, TD_ERROR, TD_ERROR_BAD_REQUEST, invalid->message);
        return FALSE;
    }
    g_autoptr(json_object) spec = api_stack_spec_to_json(stack->spec);
    g_autofree char *spec_json = api_json_to_string(spec);

    if (!begin(store, error))
        return FALSE;
    g_autofree char *owner = tenant_id(store, stack->tenant, error);
    if (owner == NULL) {
        rollback(store);
        return FALSE;
    }
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store,
                "INSERT INTO stacks (id, tenant_id, name, spec_json, vcpus, memory_mib, state, "
                "host, backend, domain_name, error, created_at, updated_at) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                error);
    if (stmt == NULL) {
        rollback(store);
        return FALSE;
    }
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, stack->id);
    bind_text(stmt, &bound, 2, owner);
    bind_text(stmt, &bound, 3, stack->spec->name);
    bind_text(stmt, &bound, 4, spec_json);
    bind_int64(stmt, &bound, 5, stack->spec->vcpus);
    bind_int64(stmt, &bound, 6, stack->spec->memory_mib);
    bind_text(stmt, &bound, 7, api_stack_state_to_string(stack->state));
    bind_text(stmt, &bound, 8, stack->host);
    bind_text(stmt, &bound, 9, stack->backend);
    bind_text(stmt, &bound, 10, stack->domain_name);
    bind_text(stmt, &bound, 11, stack->error);
    bind_text(stmt, &bound, 12, stack->created_at);
    bind_text(stmt, &bound, 13, stack->updated_at);
    if (step(stmt, bound) != SQLITE_DONE) {
        if (is_unique_violation(store))
            g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "stack '%s' already exists",
                        stack->spec->name);
        else
            set_internal(store, error, "inserting a stack");
        rollback(store);
        return FALSE;
    }
    if (!stack_use_images(store, stack->id, stack->tenant, images, error)) {
        rollback(store);
        return FALSE;
    }
    if (!commit(store, error)) {
        rollback(store);
        return FALSE;
    }
    return TRUE;
}

/* The one stack @sql finds with ?1 = @a and ?2 = @b (if not NULL); NOT_FOUND
 * names it @shown. */
static ApiStack *stack_find(Store *store, const char *sql, const char *a, const char *b,
                            const char *shown, GError **error)
{
    g_autoptr(sqlite3_stmt) stmt = prepare(store, sql, error);
    if (stmt == NULL)
        return NULL;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, a);
    if (b != NULL)
        bind_text(stmt, &bound, 2, b);
    switch (step(stmt, bound)) {
    case SQLITE_ROW:
        return stack_from_row(stmt, error);
    case SQLITE_DONE:
        g_set_error(error, TD_ERROR, TD_ERROR_NOT_FOUND, "stack '%s' not found", shown);
        return NULL;
    default:
        set_internal(store, error, "reading a stack");
        return NULL;
    }
}

ApiStack *store_stack_get(Store *store, const char *tenant, const char *name, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    return stack_find(store, "SELECT " STACK_COLUMNS STACK_FROM "WHERE t.name = ?1 AND s.name = ?2",
                      tenant, name, name, error);
}

ApiStack *store_stack_get_by_id(Store *store, const char *id, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    return stack_find(store, "SELECT " STACK_COLUMNS STACK_FROM "WHERE s.id = ?1", id, NULL, id,
                      error);
}

/* A cursor is the unpadded base64url of "<tenant>\0<name>", the last row of
 * the page before: opaque to clients, and no separator a name could hold. */
static char *cursor_encode(const char *tenant, const char *name)
{
    gsize tenant_len = strlen(tenant);
    gsize name_len = strlen(name);
    g_autofree guchar *raw = g_malloc(tenant_len + 1 + name_len);

    memcpy(raw, tenant, tenant_len);
    raw[tenant_len] = '\0';
    memcpy(raw + tenant_len + 1, name, name_len);
    char *text = g_base64_encode(raw, tenant_len + 1 + name_len);
    g_strdelimit(text, "+", '-');
    g_strdelimit(text, "/", '_');
    char *pad = strchr(text, '=');
    if (pad != NULL)
        *pad = '\0';
    return text;
}

/* Only what cursor_encode writes: anything else would make the keyset
 * comparison quietly skip or repeat rows. */
static gboolean cursor_decode(const char *cursor, char **tenant, char **name, GError **error)
{
    gsize len = strlen(cursor);
    gboolean ok = len > 0 && len <= STACK_CURSOR_MAX && len % 4 != 1;

    for (gsize i = 0; ok && i < len; i++)
        ok = g_ascii_isalnum(cursor[i]) || cursor[i] == '-' || cursor[i] == '_';
    if (ok) {
        g_autofree char *padded = g_strnfill(len + (4 - len % 4) % 4, '=');
        memcpy(padded, cursor, len);
        g_strdelimit(padded, "-", '+');
        g_strdelimit(padded, "_", '/');
        gsize raw_len = 0;
        g_autofree guchar *raw = g_base64_decode(padded, &raw_len);
        const guchar *nul = raw != NULL ? memchr(raw, '\0', raw_len) : NULL;
        /* Exactly one NUL, with something on either side. */
        ok = nul != NULL && nul != raw && nul + 1 < raw + raw_len &&
             memchr(nul + 1, '\0', raw + raw_len - (nul + 1)) == NULL;
        if (ok) {
            *tenant = g_strndup((const char *)raw, nul - raw);
            *name = g_strndup((const char *)nul + 1, raw + raw_len - (nul + 1));
            /* Non-canonical spellings of the same bytes are not ours either. */
            g_autofree char *again = cursor_encode(*tenant, *name);
            ok = strcmp(again, cursor) == 0;
            if (!ok) {
                g_clear_pointer(tenant, g_free);
                g_clear_pointer(name, g_free);
            }
        }
    }
    if (!ok)
        g_set_error_literal(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "after: invalid cursor");
    return ok;
}

GPtrArray *store_stack_list(Store *store, const char *tenant, int limit, const char *after,
                            char **next, GError **error)
{
    g_return_val_if_fail(next != NULL, NULL);
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autofree char *after_tenant = NULL;
    g_autofree char *after_name = NULL;

    *next = NULL;
    if (limit < 0) {
        g_set_error_literal(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "limit: must not be negative");
        return NULL;
    }
    if (after != NULL && !cursor_decode(after, &after_tenant, &after_name, error))
        return NULL;
    /* Another tenant's cursor would only start this listing somewhere odd;
     * refusing it keeps cursors tied to the listing that made them. */
    if (tenant != NULL && after_tenant != NULL && strcmp(after_tenant, tenant) != 0) {
        g_set_error_literal(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "after: invalid cursor");
        return NULL;
    }
    if (tenant != NULL) {
        g_autofree char *owner = tenant_id(store, tenant, error);
        if (owner == NULL)
            return NULL;
    }
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store,
                "SELECT " STACK_COLUMNS STACK_FROM
                "WHERE (?1 IS NULL OR t.name = ?1) AND (?2 IS NULL OR (t.name, s.name) > (?2, ?3)) "
                "ORDER BY t.name, s.name LIMIT ?4",
                error);
    if (stmt == NULL)
        return NULL;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, tenant);
    bind_text(stmt, &bound, 2, after_tenant);
    bind_text(stmt, &bound, 3, after_name);
    /* One more than asked tells whether there is a next page; -1 is no limit. */
    bind_int64(stmt, &bound, 4, limit > 0 ? (gint64)limit + 1 : -1);

    g_autoptr(GPtrArray) stacks = g_ptr_array_new_with_free_func((GDestroyNotify)api_stack_free);
    int rc;
    while ((rc = step(stmt, bound)) == SQLITE_ROW) {
        if (limit > 0 && stacks->len == (guint)limit) {
            const ApiStack *last = g_ptr_array_index(stacks, stacks->len - 1);
            *next = cursor_encode(last->tenant, last->spec->name);
            break;
        }
        ApiStack *stack = stack_from_row(stmt, error);
        if (stack == NULL)
            return NULL;
        g_ptr_array_add(stacks, stack);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        set_internal(store, error, "listing stacks");
        return NULL;
    }
    return g_steal_pointer(&stacks);
}

static void bind_stack_states(sqlite3_stmt *stmt, int *bound, int first, guint mask)
{
    int index = first;
    for (int state = 0; state <= API_STACK_STATE_DELETING; state++) {
        if (mask & (1u << state))
            bind_text(stmt, bound, index++, api_stack_state_to_string((ApiStackState)state));
    }
}

/* After an UPDATE ... WHERE id = @id AND state IN (...) changed nothing:
 * NOT_FOUND when the stack is gone, CONFLICT naming the state it is in. */
static void stack_state_refused(Store *store, const char *id, ApiStackState wanted, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(ApiStack) stack = stack_find(
        store, "SELECT " STACK_COLUMNS STACK_FROM "WHERE s.id = ?1", id, NULL, id, &local);
    if (stack == NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        return;
    }
    g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "stack '%s' is %s: it cannot become %s now",
                stack->spec->name, api_stack_state_to_string(stack->state),
                api_stack_state_to_string(wanted));
}

gboolean store_stack_set_state(Store *store, const char *id, guint from, ApiStackState state,
                               const char *error_message, const char *updated_at, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autofree char *states = state_placeholders(from & STORE_STACK_ANY_STATE, 5);
    g_autofree char *sql = g_strdup_printf(
        "UPDATE stacks SET state = ?2, error = ?3, updated_at = ?4 WHERE id = ?1 AND state IN (%s)",
        states);
    g_autoptr(sqlite3_stmt) stmt = prepare(store, sql, error);
    if (stmt == NULL)
        return FALSE;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, id);
    bind_text(stmt, &bound, 2, api_stack_state_to_string(state));
    bind_text(stmt, &bound, 3, error_message);
    bind_text(stmt, &bound, 4, updated_at);
    bind_stack_states(stmt, &bound, 5, from);
    if (step(stmt, bound) != SQLITE_DONE) {
        set_internal(store, error, "updating a stack");
        return FALSE;
    }
    if (sqlite3_changes(store->db) == 0) {
        stack_state_refused(store, id, state, error);
        return FALSE;
    }
    return TRUE;
}

gboolean store_stack_delete(Store *store, const char *id, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    /* stack_images rows go with it (ON DELETE CASCADE). */
    if (!delete_by_id(store, "DELETE FROM stacks WHERE id = ?1", id, "deleting a stack", error))
        return FALSE;
    if (sqlite3_changes(store->db) == 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_NOT_FOUND, "stack '%s' not found", id);
        return FALSE;
    }
    return TRUE;
}

/* ---- usage ------------------------------------------------------------- */

gboolean store_tenant_usage(Store *store, const char *tenant, gint64 *stacks, gint64 *vcpus,
                            gint64 *memory_mib, gint64 *disk_bytes, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autofree char *owner = tenant_id(store, tenant, error);
    if (owner == NULL)
        return FALSE;
    /* One statement: one consistent snapshot of both tables. */
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store,
                "SELECT (SELECT count(*) FROM stacks WHERE tenant_id = ?1),"
                " (SELECT ifnull(sum(vcpus), 0) FROM stacks WHERE tenant_id = ?1),"
                " (SELECT ifnull(sum(memory_mib), 0) FROM stacks WHERE tenant_id = ?1),"
                " (SELECT ifnull(sum(size), 0) FROM images WHERE tenant_id = ?1)",
                error);
    if (stmt == NULL)
        return FALSE;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, owner);
    if (step(stmt, bound) != SQLITE_ROW) {
        set_internal(store, error, "summing a tenant's usage");
        return FALSE;
    }
    if (stacks != NULL)
        *stacks = sqlite3_column_int64(stmt, 0);
    if (vcpus != NULL)
        *vcpus = sqlite3_column_int64(stmt, 1);
    if (memory_mib != NULL)
        *memory_mib = sqlite3_column_int64(stmt, 2);
    if (disk_bytes != NULL)
        *disk_bytes = sqlite3_column_int64(stmt, 3);
    return TRUE;
}

/* ---- peers ------------------------------------------------------------- */

#define PEER_COLUMNS "name, libvirt_uri, migrate_uri, created_at"

static ApiPeer *peer_from_row(sqlite3_stmt *stmt)
{
    ApiPeer *peer = api_peer_new();

    peer->name = column_text(stmt, 0);
    peer->libvirt_uri = column_text(stmt, 1);
    peer->migrate_uri = column_text(stmt, 2);
    peer->created_at = column_text(stmt, 3);
    return peer;
}

gboolean store_peer_insert(Store *store, const ApiPeer *peer, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store, "INSERT INTO peers (" PEER_COLUMNS ") VALUES (?1, ?2, ?3, ?4)", error);
    if (stmt == NULL)
        return FALSE;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, peer->name);
    bind_text(stmt, &bound, 2, peer->libvirt_uri);
    bind_text(stmt, &bound, 3, peer->migrate_uri); /* NULL binds NULL */
    bind_text(stmt, &bound, 4, peer->created_at);
    if (step(stmt, bound) == SQLITE_DONE)
        return TRUE;
    if (is_unique_violation(store)) {
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "peer '%s' already exists", peer->name);
        return FALSE;
    }
    set_internal(store, error, "inserting a peer");
    return FALSE;
}

ApiPeer *store_peer_get(Store *store, const char *name, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store, "SELECT " PEER_COLUMNS " FROM peers WHERE name = ?1", error);
    if (stmt == NULL)
        return NULL;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, name);
    switch (step(stmt, bound)) {
    case SQLITE_ROW:
        return peer_from_row(stmt);
    case SQLITE_DONE:
        g_set_error(error, TD_ERROR, TD_ERROR_NOT_FOUND, "peer '%s' not found", name);
        return NULL;
    default:
        set_internal(store, error, "reading a peer");
        return NULL;
    }
}

GPtrArray *store_peer_list(Store *store, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store, "SELECT " PEER_COLUMNS " FROM peers ORDER BY name", error);
    if (stmt == NULL)
        return NULL;

    g_autoptr(GPtrArray) peers = g_ptr_array_new_with_free_func((GDestroyNotify)api_peer_free);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        g_ptr_array_add(peers, peer_from_row(stmt));
    if (rc != SQLITE_DONE) {
        set_internal(store, error, "listing peers");
        return NULL;
    }
    return g_steal_pointer(&peers);
}

gboolean store_peer_delete(Store *store, const char *name, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    if (!delete_by_id(store, "DELETE FROM peers WHERE name = ?1", name, "deleting a peer", error))
        return FALSE;
    if (sqlite3_changes(store->db) == 0) {
        g_set_error(error, TD_ERROR, TD_ERROR_NOT_FOUND, "peer '%s' not found", name);
        return FALSE;
    }
    return TRUE;
}

/* ---- migrations of stacks ------------------------------------------------ */

gboolean store_stack_set_last_migration(Store *store, const char *stack_id,
                                        const ApiStatsMigration *migration, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store,
                "INSERT OR REPLACE INTO stack_migrations (stack_id, peer, finished_at, total_ms, "
                "downtime_ms, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                error);
    if (stmt == NULL)
        return FALSE;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, stack_id);
    bind_text(stmt, &bound, 2, migration->peer);
    bind_text(stmt, &bound, 3, migration->finished_at);
    bind_int64(stmt, &bound, 4, migration->total_ms);
    bind_int64(stmt, &bound, 5, migration->downtime_ms);
    bind_int64(stmt, &bound, 6, migration->bytes);
    if (step(stmt, bound) == SQLITE_DONE)
        return TRUE;
    set_internal(store, error, "recording a migration");
    return FALSE;
}

gboolean store_stack_get_last_migration(Store *store, const char *stack_id,
                                        ApiStatsMigration *migration, gboolean *found,
                                        GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    g_autoptr(sqlite3_stmt) stmt =
        prepare(store,
                "SELECT peer, finished_at, total_ms, downtime_ms, bytes FROM stack_migrations "
                "WHERE stack_id = ?1",
                error);
    if (stmt == NULL)
        return FALSE;
    int bound = SQLITE_OK;
    bind_text(stmt, &bound, 1, stack_id);
    *found = FALSE;
    switch (step(stmt, bound)) {
    case SQLITE_ROW:
        migration->peer = column_text(stmt, 0);
        migration->finished_at = column_text(stmt, 1);
        migration->total_ms = sqlite3_column_int64(stmt, 2);
        migration->downtime_ms = sqlite3_column_int64(stmt, 3);
        migration->bytes = sqlite3_column_int64(stmt, 4);
        *found = TRUE;
        return TRUE;
    case SQLITE_DONE:
        return TRUE;
    default:
        set_internal(store, error, "reading a migration");
        return FALSE;
    }
}
