/* The store's core: the connection, schema migrations, transactions and the
 * statement helpers of store-private.h.  Each entity's functions live in
 * their own store_<entity>.c. */
#include "daemon/store.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/error.h"
#include "daemon/store-private.h"

#define STORE_BUSY_TIMEOUT_MS 5000
/* Read connections, at most: more than the threads that read at once (HTTP
 * loops, workers, the main loop) gains nothing; each costs a page cache. */
#define STORE_READERS_MAX 8

/* Schema migrations, applied in order: migrations[i] takes user_version from
 * i to i + 1.  Never edit one that has shipped; append a new one.  A table
 * whose rows belong to a tenant (stacks, images) also goes into
 * tenant_owner_checks in store_tenants.c.
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
    /* v5: the device pool.  A class has its devices as rows ("<class>-<n>");
     * a device held by a stack names it, and goes back to the pool with the
     * stack's row (ON DELETE SET NULL), in the same transaction.  A class
     * cannot go while it has devices (no ON DELETE): the delete removes
     * free ones first. */
    "ALTER TABLE tenants ADD COLUMN quota_devices INTEGER NOT NULL DEFAULT 4"
    "  CHECK (quota_devices >= 0);"
    "CREATE TABLE device_classes ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('emulated', 'vfio')),"
    "  model TEXT NOT NULL,"
    "  force INTEGER NOT NULL DEFAULT 0,"
    "  description TEXT,"
    "  created_at TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL"
    ");"
    "CREATE TABLE devices ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  class TEXT NOT NULL REFERENCES device_classes (name),"
    "  seq INTEGER NOT NULL CHECK (seq >= 0),"
    "  address TEXT UNIQUE,"
    "  stack_id TEXT REFERENCES stacks (id) ON DELETE SET NULL,"
    "  UNIQUE (class, seq)"
    ");"
    "CREATE INDEX devices_stack ON devices (stack_id);",
    /* v6: networks.  A tenant's own have its tenant_id; the operator's
     * external ones have none and list the tenants they serve in
     * network_tenants.  state: 'creating' until libvirt has it, 'ready',
     * 'deleting' once a delete began (reconcile finishes both).  A NIC is a
     * stack's seat on a network: it goes with the stack's row; a network
     * with NICs cannot go (no ON DELETE).  ip is the last DHCP lease seen. */
    "ALTER TABLE tenants ADD COLUMN quota_networks INTEGER NOT NULL DEFAULT 4"
    "  CHECK (quota_networks >= 0);"
    "CREATE TABLE networks ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  tenant_id TEXT REFERENCES tenants (id),"
    "  name TEXT NOT NULL,"
    "  mode TEXT NOT NULL CHECK (mode IN ('nat', 'isolated', 'external')),"
    "  cidr TEXT UNIQUE,"
    "  bridge TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('creating', 'ready', 'deleting')),"
    "  created_at TEXT NOT NULL,"
    "  updated_at TEXT NOT NULL,"
    "  CHECK ((mode = 'external') = (tenant_id IS NULL))"
    ");"
    "CREATE UNIQUE INDEX networks_tenant_name ON networks (ifnull(tenant_id, ''), name);"
    "CREATE TABLE network_tenants ("
    "  network_id TEXT NOT NULL REFERENCES networks (id) ON DELETE CASCADE,"
    "  tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,"
    "  PRIMARY KEY (network_id, tenant_id)"
    ");"
    "CREATE TABLE stack_nics ("
    "  stack_id TEXT NOT NULL REFERENCES stacks (id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL CHECK (seq >= 0),"
    "  network_id TEXT NOT NULL REFERENCES networks (id),"
    "  mac TEXT NOT NULL UNIQUE,"
    "  ip TEXT,"
    "  PRIMARY KEY (stack_id, seq)"
    ");"
    "CREATE INDEX stack_nics_network ON stack_nics (network_id);",
    /* v7: the event ring behind resumable GET /v1/events (store_events.c).
     * id is the SSE id: AUTOINCREMENT so that it never goes back, not even
     * when every row is gone (a client's cursor must not name a new event).  tenant_id as in
     * operations: a tenant deleted and created again under the same name must not replay the old
     * one's events, which become the operator's (NULL).  The index serves a tenant's replay and the
     * SET NULL of a tenant's delete. */
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  type TEXT NOT NULL,"
    "  tenant_id TEXT REFERENCES tenants (id) ON DELETE SET NULL,"
    "  data TEXT NOT NULL,"
    "  created_at TEXT NOT NULL"
    ");"
    "CREATE INDEX events_tenant ON events (tenant_id, id);",
    /* v8: operator tokens.  A token is a tenant's (tenant_id set, no scope)
     * or the operator's (no tenant_id, a scope), so that one lookup by hash
     * says whose it is; SQLite cannot drop NOT NULL in place, so the table is
     * copied.  A tenant's delete still takes its own tokens (CASCADE) and
     * cannot reach the operator's (their tenant_id is NULL). */
    "CREATE TABLE tokens_v8 ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  tenant_id TEXT REFERENCES tenants (id) ON DELETE CASCADE,"
    "  scope TEXT CHECK (scope IN ('admin', 'metrics')),"
    "  description TEXT,"
    "  hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),"
    "  created_at TEXT NOT NULL,"
    "  revoked_at TEXT,"
    "  CHECK ((tenant_id IS NULL) = (scope IS NOT NULL))"
    ");"
    "INSERT INTO tokens_v8 (id, tenant_id, hash, created_at, revoked_at)"
    "  SELECT id, tenant_id, hash, created_at, revoked_at FROM tokens;"
    "DROP TABLE tokens;"
    "ALTER TABLE tokens_v8 RENAME TO tokens;"
    "CREATE INDEX tokens_tenant ON tokens (tenant_id);"
    "CREATE INDEX tokens_operator ON tokens (created_at, id) WHERE tenant_id IS NULL;",
    /* v9: GET /v1/operations pages newest first by (created_at, id), a
     * tenant's or everyone's; operations are kept, so without these a page
     * would sort every one.  The tenant's index also serves what
     * operations_tenant did (a tenant's delete, its operations in progress),
     * which goes. */
    "CREATE INDEX operations_tenant_created ON operations (tenant_id, created_at, id);"
    "CREATE INDEX operations_created ON operations (created_at, id);"
    "DROP INDEX operations_tenant;",
};

/* ---- errors ------------------------------------------------------------ */

void store_set_internal(Store *store, GError **error, const char *what)
{
    g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "store: %s: %s", what,
                sqlite3_errmsg(store->db));
}

gboolean store_is_unique_violation(Store *store)
{
    int code = sqlite3_extended_errcode(store->db);
    return code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY;
}

/* ---- statements -------------------------------------------------------- */

/* Which Store each open connection is, for store_statement_done (SQLite 3.40
 * has no client data on a connection). */
G_LOCK_DEFINE_STATIC(connections);
static GHashTable *connections; /* sqlite3 * -> Store * */

static void statement_finalize(gpointer stmt)
{
    sqlite3_finalize(stmt);
}

static void connection_register(Store *store)
{
    store->statements = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, statement_finalize);
    G_LOCK(connections);
    if (connections == NULL)
        connections = g_hash_table_new(g_direct_hash, g_direct_equal);
    g_hash_table_insert(connections, store->db, store);
    G_UNLOCK(connections);
}

/* Finalizes the kept statements and closes the connection. */
static void connection_close(Store *store)
{
    if (store->statements != NULL) {
        G_LOCK(connections);
        g_hash_table_remove(connections, store->db);
        G_UNLOCK(connections);
        g_clear_pointer(&store->statements, g_hash_table_unref);
    }
    /* close_v2 cannot fail with BUSY: every statement is finalized by now, and
     * one that was not would close the handle when it is. */
    sqlite3_close_v2(store->db);
}

sqlite3_stmt *store_prepare(Store *store, const char *sql, GError **error)
{
    sqlite3_stmt *stmt = NULL;
    gpointer kept_sql = NULL;

    /* Out of the table while in use: a nested use of the same SQL prepares
     * another. */
    if (g_hash_table_steal_extended(store->statements, sql, &kept_sql, (gpointer *)&stmt)) {
        g_free(kept_sql);
        return stmt;
    }
    if (sqlite3_prepare_v3(store->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) !=
        SQLITE_OK) {
        store_set_internal(store, error, "prepare");
        return NULL;
    }
    return stmt;
}

void store_statement_done(sqlite3_stmt *stmt)
{
    if (stmt == NULL)
        return;
    G_LOCK(connections);
    Store *store =
        connections != NULL ? g_hash_table_lookup(connections, sqlite3_db_handle(stmt)) : NULL;
    G_UNLOCK(connections);
    const char *sql = sqlite3_sql(stmt);
    if (store == NULL || sql == NULL || g_hash_table_contains(store->statements, sql)) {
        sqlite3_finalize(stmt);
        return;
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    g_hash_table_insert(store->statements, g_strdup(sql), stmt);
}

/* Binders skip once one has failed and keep its code in *@bound, so that a
 * run of binds is checked once, by store_step(). */
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

int store_bind(sqlite3_stmt *stmt, const StoreParam *params)
{
    int bound = SQLITE_OK;

    for (int i = 0; params != NULL && params[i].kind != STORE_PARAM_END; i++) {
        const StoreParam *param = &params[i];
        switch (param->kind) {
        case STORE_PARAM_TEXT:
            bind_text(stmt, &bound, i + 1, param->text);
            break;
        case STORE_PARAM_INT64:
            bind_int64(stmt, &bound, i + 1, param->number);
            break;
        case STORE_PARAM_INT64_OR_NULL:
            bind_int64_or_null(stmt, &bound, i + 1, param->number);
            break;
        case STORE_PARAM_HASH:
            bind_hash(stmt, &bound, i + 1, param->hash);
            break;
        case STORE_PARAM_END:
            break;
        }
    }
    return bound;
}

int store_step(sqlite3_stmt *stmt, int bound)
{
    return bound == SQLITE_OK ? sqlite3_step(stmt) : bound;
}

char *store_column_text(sqlite3_stmt *stmt, int index)
{
    const unsigned char *text = sqlite3_column_text(stmt, index);
    return text != NULL ? g_strdup((const char *)text) : NULL;
}

/* Runs SQL that takes no parameters and returns no rows. */
static gboolean exec_sql(Store *store, const char *sql, GError **error)
{
    if (sqlite3_exec(store->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        store_set_internal(store, error, sql);
        return FALSE;
    }
    return TRUE;
}

/* ---- transactions ------------------------------------------------------ */

gboolean store_begin(Store *store, GError **error)
{
    g_return_val_if_fail(store->owner == NULL, FALSE);
    if (!exec_sql(store, store->depth == 0 ? "BEGIN IMMEDIATE" : "SAVEPOINT nested", error))
        return FALSE;
    if (store->depth == 0)
        g_atomic_pointer_set(&store->in_transaction, g_thread_self());
    store->depth++;
    return TRUE;
}

/* The outermost transaction is over, committed or not. */
static void transaction_ended(Store *store, gboolean committed)
{
    g_atomic_pointer_set(&store->in_transaction, NULL);
    if (committed && store->tokens_changed)
        store_token_cache_invalidate(store->token_cache);
    store->tokens_changed = FALSE;
}

gboolean store_commit(Store *store, GError **error)
{
    g_return_val_if_fail(store->depth > 0, FALSE);
    if (!exec_sql(store, store->depth == 1 ? "COMMIT" : "RELEASE nested", error))
        return FALSE;
    store->depth--;
    if (store->depth == 0)
        transaction_ended(store, TRUE);
    return TRUE;
}

void store_tokens_changed(Store *store)
{
    if (store->depth > 0)
        store->tokens_changed = TRUE;
    else /* a statement of its own: already committed */
        store_token_cache_invalidate(store->token_cache);
}

void store_rollback(Store *store)
{
    g_return_if_fail(store->depth > 0);
    store->depth--;
    if (store->depth == 0)
        transaction_ended(store, FALSE);
    /* Some errors roll back the whole transaction by themselves; then there
     * is nothing left to undo, at any level. */
    if (sqlite3_get_autocommit(store->db))
        return;
    if (store->depth == 0)
        sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
    else
        sqlite3_exec(store->db, "ROLLBACK TO nested; RELEASE nested", NULL, NULL, NULL);
}

gboolean store_end(Store *store, gboolean ok, GError **error)
{
    if (ok && store_commit(store, error))
        return TRUE;
    store_rollback(store);
    return FALSE;
}

gboolean store_transaction(Store *store, StoreTransactionFunc body, gpointer data, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    if (!store_begin(store, error))
        return FALSE;
    return store_end(store, body(store, data, error), error);
}

/* ---- checkpoints ------------------------------------------------------------ */

/* SQLite's automatic checkpoint runs inside the commit that crosses its
 * threshold: copying the log into the database and syncing both, on
 * whichever request or worker thread committed.  Here a thread of its own
 * does that, on its own connection (PASSIVE: it never waits for a reader or
 * the writer); a commit only wakes it.  What is synced and when stays as
 * SQLite's (synchronous = NORMAL): only the thread differs. */
#define CHECKPOINT_PAGES 1000 /* SQLite's own default threshold */
/* A PASSIVE checkpoint cannot rewind the log while readers use it, which a
 * busy pool of readers nearly always does, so the log would only grow.  Past
 * this, the commit itself runs a RESTART: the thread has copied nearly
 * everything already, so it only waits (briefly: reads are short) for the
 * readers to move on, and the next commit starts the log again. */
#define CHECKPOINT_PAGES_RESTART (4 * CHECKPOINT_PAGES)
/* A rewound log's file is cut back to this. */
#define WAL_SIZE_LIMIT "16777216"

typedef struct StoreCheckpointer {
    GThread *thread;
    sqlite3 *db;
    GMutex lock;
    GCond wake;
    int pages; /* the log's size at the last commit that woke the thread */
    gboolean stopping;
} StoreCheckpointer;

static gpointer checkpointer_run(gpointer data)
{
    StoreCheckpointer *checkpointer = data;
    g_mutex_lock(&checkpointer->lock);
    for (;;) {
        while (checkpointer->pages == 0 && !checkpointer->stopping)
            g_cond_wait(&checkpointer->wake, &checkpointer->lock);
        if (checkpointer->stopping)
            break;
        checkpointer->pages = 0;
        g_mutex_unlock(&checkpointer->lock);
        int rc = sqlite3_wal_checkpoint_v2(checkpointer->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
                                           NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            g_debug("store: checkpoint: %s", sqlite3_errmsg(checkpointer->db));
        g_mutex_lock(&checkpointer->lock);
    }
    g_mutex_unlock(&checkpointer->lock);
    return NULL;
}

/* sqlite3_wal_hook: after each commit of the writer, with the log's size,
 * on the committing thread (it holds store->lock: no other commit runs). */
static int on_wal_commit(void *data, sqlite3 *db, const char *name, int pages)
{
    Store *store = data;
    StoreCheckpointer *checkpointer = store->checkpointer;
    if (pages >= CHECKPOINT_PAGES_RESTART || (checkpointer == NULL && pages >= CHECKPOINT_PAGES)) {
        int mode = pages >= CHECKPOINT_PAGES_RESTART ? SQLITE_CHECKPOINT_RESTART
                                                     : SQLITE_CHECKPOINT_PASSIVE;
        /* BUSY: the thread is checkpointing, or a reader held on; next time. */
        int rc = sqlite3_wal_checkpoint_v2(db, name, mode, NULL, NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            g_debug("store: checkpoint: %s", sqlite3_errmsg(db));
    } else if (pages >= CHECKPOINT_PAGES) {
        g_mutex_lock(&checkpointer->lock);
        checkpointer->pages = pages;
        g_cond_signal(&checkpointer->wake);
        g_mutex_unlock(&checkpointer->lock);
    }
    return SQLITE_OK;
}

/* Without a thread (its connection would not open) commits checkpoint as
 * SQLite's automatic checkpoint does; that is logged. */
static void checkpointer_start(Store *store)
{
    sqlite3_wal_hook(store->db, on_wal_commit, store);
    if (sqlite3_exec(store->db, "PRAGMA journal_size_limit = " WAL_SIZE_LIMIT, NULL, NULL, NULL) !=
        SQLITE_OK)
        g_debug("store: journal_size_limit: %s", sqlite3_errmsg(store->db));
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(store->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        g_warning("store: no checkpoint thread (commits checkpoint themselves): %s",
                  db != NULL ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close_v2(db);
        return;
    }
    StoreCheckpointer *checkpointer = g_new0(StoreCheckpointer, 1);
    checkpointer->db = db;
    g_mutex_init(&checkpointer->lock);
    g_cond_init(&checkpointer->wake);
    checkpointer->thread = g_thread_new("store-ckpt", checkpointer_run, checkpointer);
    store->checkpointer = checkpointer;
}

static void checkpointer_stop(Store *store)
{
    StoreCheckpointer *checkpointer = g_steal_pointer(&store->checkpointer);
    if (checkpointer == NULL)
        return;
    g_mutex_lock(&checkpointer->lock);
    checkpointer->stopping = TRUE;
    g_cond_signal(&checkpointer->wake);
    g_mutex_unlock(&checkpointer->lock);
    g_thread_join(checkpointer->thread);
    sqlite3_close_v2(checkpointer->db);
    g_cond_clear(&checkpointer->wake);
    g_mutex_clear(&checkpointer->lock);
    g_free(checkpointer);
}

/* ---- read connections -------------------------------------------------- */

static gboolean configure_connection(Store *store, GError **error);

/* A new read-only connection to the writer's file, or NULL (logged): the
 * writer then serves the read, as it would without a pool. */
static Store *reader_open(Store *store)
{
    Store *reader = g_new0(Store, 1);
    reader->owner = store;
    /* NOMUTEX: a reader is used by one thread at a time, the pool sees to it. */
    int rc =
        sqlite3_open_v2(store->path, &reader->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    g_autoptr(GError) error = NULL;
    if (rc != SQLITE_OK || !configure_connection(reader, &error)) {
        g_warning("store: cannot open a read connection to %s: %s", store->path,
                  error != NULL        ? error->message
                  : reader->db != NULL ? sqlite3_errmsg(reader->db)
                                       : sqlite3_errstr(rc));
        sqlite3_close_v2(reader->db);
        g_free(reader);
        return NULL;
    }
    connection_register(reader);
    return reader;
}

static void reader_close(gpointer data)
{
    Store *reader = data;
    connection_close(reader);
    g_free(reader);
}

/* An idle reader, a new one while there are fewer than STORE_READERS_MAX,
 * or the next one given back. */
static Store *reader_take(Store *store)
{
    g_mutex_lock(&store->readers_lock);
    while (store->idle_readers->len == 0 && store->readers >= STORE_READERS_MAX)
        g_cond_wait(&store->reader_returned, &store->readers_lock);
    Store *reader = NULL;
    if (store->idle_readers->len > 0) {
        reader = g_ptr_array_steal_index_fast(store->idle_readers, store->idle_readers->len - 1);
    } else {
        store->readers++;
        g_mutex_unlock(&store->readers_lock);
        reader = reader_open(store);
        g_mutex_lock(&store->readers_lock);
        if (reader == NULL) {
            store->readers--;
            g_cond_signal(&store->reader_returned);
        }
    }
    g_mutex_unlock(&store->readers_lock);
    return reader;
}

static void reader_give_back(Store *store, Store *reader)
{
    g_mutex_lock(&store->readers_lock);
    g_ptr_array_add(store->idle_readers, reader);
    g_cond_signal(&store->reader_returned);
    g_mutex_unlock(&store->readers_lock);
}

StoreRead store_read_begin(Store *store)
{
    /* A read inside a read: the same connection. */
    if (store->owner != NULL)
        return (StoreRead){.conn = store};
    /* Inside this thread's own transaction: what it wrote must be seen. */
    if (!store_in_own_transaction(store)) {
        Store *reader = reader_take(store);
        if (reader != NULL)
            return (StoreRead){.store = store, .conn = reader, .pool = TRUE};
    }
    g_rec_mutex_lock(&store->lock);
    return (StoreRead){.store = store, .conn = store};
}

void store_read_end(StoreRead *read)
{
    if (read->store == NULL)
        return;
    if (read->pool)
        reader_give_back(read->store, read->conn);
    else
        g_rec_mutex_unlock(&read->store->lock);
}

gboolean store_in_own_transaction(Store *store)
{
    Store *writer = store->owner != NULL ? store->owner : store;
    return g_atomic_pointer_get(&writer->in_transaction) == g_thread_self();
}

/* ---- queries ----------------------------------------------------------- */

static void set_error_valist(GError **error, TdErrorCode code, const char *format, va_list args)
    G_GNUC_PRINTF(3, 0);

static void set_error_valist(GError **error, TdErrorCode code, const char *format, va_list args)
{
    if (error != NULL)
        g_propagate_error(error, g_error_new_valist(TD_ERROR, code, format, args));
}

gpointer store_text_from_row(sqlite3_stmt *stmt, GError **error)
{
    (void)error;
    return store_column_text(stmt, 0);
}

gboolean store_query_row(Store *store, sqlite3_stmt **row, const char *sql,
                         const StoreParam *params, const char *what, GError **error)
{
    *row = NULL;
    g_autoptr(sqlite3_stmt) stmt = store_prepare(store, sql, error);
    if (stmt == NULL)
        return FALSE;
    switch (store_step(stmt, store_bind(stmt, params))) {
    case SQLITE_ROW:
        *row = g_steal_pointer(&stmt);
        return TRUE;
    case SQLITE_DONE:
        return TRUE;
    default:
        store_set_internal(store, error, what);
        return FALSE;
    }
}

gpointer store_query_one(Store *store, const char *sql, const StoreParam *params, StoreRowFunc row,
                         const char *what, GError **error, const char *not_found_format, ...)
{
    g_autoptr(sqlite3_stmt) stmt = NULL;
    if (!store_query_row(store, &stmt, sql, params, what, error))
        return NULL;
    if (stmt == NULL) {
        va_list args;
        va_start(args, not_found_format);
        set_error_valist(error, TD_ERROR_NOT_FOUND, not_found_format, args);
        va_end(args);
        return NULL;
    }
    return row(stmt, error);
}

GPtrArray *store_query_page(Store *store, const char *sql, const StoreParam *params,
                            StoreRowFunc row, GDestroyNotify free_func, guint limit, gboolean *more,
                            const char *what, GError **error)
{
    if (more != NULL)
        *more = FALSE;
    g_autoptr(sqlite3_stmt) stmt = store_prepare(store, sql, error);
    if (stmt == NULL)
        return NULL;
    int bound = store_bind(stmt, params);

    g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func(free_func);
    int rc;
    while ((rc = store_step(stmt, bound)) == SQLITE_ROW) {
        if (limit > 0 && values->len == limit) {
            if (more != NULL)
                *more = TRUE;
            break;
        }
        gpointer value = row(stmt, error);
        if (value == NULL)
            return NULL;
        g_ptr_array_add(values, value);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        store_set_internal(store, error, what);
        return NULL;
    }
    return g_steal_pointer(&values);
}

GPtrArray *store_query_list(Store *store, const char *sql, const StoreParam *params,
                            StoreRowFunc row, GDestroyNotify free_func, const char *what,
                            GError **error)
{
    return store_query_page(store, sql, params, row, free_func, 0, NULL, what, error);
}

gboolean store_exec(Store *store, const char *sql, const StoreParam *params, const char *what,
                    GError **error)
{
    g_autoptr(sqlite3_stmt) stmt = store_prepare(store, sql, error);
    if (stmt == NULL)
        return FALSE;
    if (store_step(stmt, store_bind(stmt, params)) != SQLITE_DONE) {
        store_set_internal(store, error, what);
        return FALSE;
    }
    return TRUE;
}

gboolean store_exec_changes(Store *store, const char *sql, const StoreParam *params,
                            const char *what, GError **error, const char *not_found_format, ...)
{
    if (!store_exec(store, sql, params, what, error))
        return FALSE;
    if (sqlite3_changes(store->db) == 0) {
        va_list args;
        va_start(args, not_found_format);
        set_error_valist(error, TD_ERROR_NOT_FOUND, not_found_format, args);
        va_end(args);
        return FALSE;
    }
    return TRUE;
}

gboolean store_exec_insert(Store *store, const char *sql, const StoreParam *params,
                           const char *what, GError **error, const char *conflict_format, ...)
{
    g_autoptr(sqlite3_stmt) stmt = store_prepare(store, sql, error);
    if (stmt == NULL)
        return FALSE;
    if (store_step(stmt, store_bind(stmt, params)) == SQLITE_DONE)
        return TRUE;
    if (store_is_unique_violation(store)) {
        va_list args;
        va_start(args, conflict_format);
        set_error_valist(error, TD_ERROR_CONFLICT, conflict_format, args);
        va_end(args);
        return FALSE;
    }
    store_set_internal(store, error, what);
    return FALSE;
}

char *store_state_placeholders(guint mask, int first)
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

static int user_version(Store *store, GError **error)
{
    g_autoptr(sqlite3_stmt) stmt = store_prepare(store, "PRAGMA user_version", error);
    if (stmt == NULL)
        return -1;
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        store_set_internal(store, error, "reading the schema version");
        return -1;
    }
    return sqlite3_column_int(stmt, 0);
}

/* ---- open -------------------------------------------------------------- */

static gboolean migrate(Store *store, GError **error)
{
    const int known = (int)G_N_ELEMENTS(migrations);

    for (;;) {
        if (!store_begin(store, error))
            return FALSE;
        /* Read inside the transaction: another process may have migrated. */
        int version = user_version(store, error);
        if (version < 0) {
            store_rollback(store);
            return FALSE;
        }
        if (version > known) {
            store_rollback(store);
            g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL,
                        "store: %s has schema version %d but this turtled knows only up to %d; "
                        "refusing to use a database written by a newer turtled",
                        STORE_FILE_NAME, version, known);
            return FALSE;
        }
        if (version == known) {
            store_rollback(store);
            return TRUE;
        }
        /* PRAGMA takes no parameters; the number comes from this array, never
         * from input. */
        g_autofree char *bump = g_strdup_printf("PRAGMA user_version = %d", version + 1);
        g_autofree char *what = g_strdup_printf("migration to schema version %d", version + 1);
        if (sqlite3_exec(store->db, migrations[version], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(store->db, bump, NULL, NULL, NULL) != SQLITE_OK) {
            store_set_internal(store, error, what);
            store_rollback(store);
            return FALSE;
        }
        if (!store_commit(store, error)) {
            store_rollback(store);
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
    g_mutex_init(&store->readers_lock);
    g_cond_init(&store->reader_returned);
    store->idle_readers = g_ptr_array_new_with_free_func(reader_close);
    store->token_cache = store_token_cache_new();
    store->path = g_strdup(path);
    int rc = sqlite3_open_v2(
        path, &store->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "store: cannot open %s: %s", path,
                    store->db != NULL ? sqlite3_errmsg(store->db) : sqlite3_errstr(rc));
        return NULL;
    }
    connection_register(store);
    /* WAL before anything else: it is what lets the readers run beside the
     * writer, and the file keeps it for every later connection. */
    if (!exec_sql(store, "PRAGMA journal_mode = WAL", error) ||
        !configure_connection(store, error) || !migrate(store, error))
        return NULL;
    checkpointer_start(store);
    return g_steal_pointer(&store);
}

/* What every connection sets; foreign_keys must come before any transaction
 * (it is a no-op inside one). */
static gboolean configure_connection(Store *store, GError **error)
{
    sqlite3_busy_timeout(store->db, STORE_BUSY_TIMEOUT_MS);
    return exec_sql(store, "PRAGMA foreign_keys = ON", error) &&
           exec_sql(store, "PRAGMA synchronous = NORMAL", error);
}

void store_free(Store *store)
{
    if (store == NULL)
        return;
    g_warn_if_fail(store->idle_readers == NULL || store->idle_readers->len == store->readers);
    g_clear_pointer(&store->idle_readers, g_ptr_array_unref);
    checkpointer_stop(store);
    connection_close(store);
    store_token_cache_free(store->token_cache);
    g_cond_clear(&store->reader_returned);
    g_mutex_clear(&store->readers_lock);
    g_rec_mutex_clear(&store->lock);
    g_free(store->path);
    g_free(store);
}

/* On the writer, not a reader: the watchdog asks this to tell whether the
 * store still takes writes (a transaction that never ends blocks them all,
 * while reads would still answer). */
int store_schema_version(Store *store)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    return user_version(store, NULL);
}

/* ---- pagination cursors ------------------------------------------------------- */

/* Far above any real cursor (two names of 63 bytes), far below harm. */
#define STORE_CURSOR_MAX 1024

/* A cursor is the unpadded base64url of "<tenant>\0<name>", the last row of
 * the page before: opaque to clients, and no separator a name could hold. */
char *store_cursor_encode(const char *tenant, const char *name)
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
gboolean store_cursor_decode(const char *cursor, char **tenant, char **name, GError **error)
{
    gsize len = strlen(cursor);
    gboolean ok = len > 0 && len <= STORE_CURSOR_MAX && len % 4 != 1;

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
            g_autofree char *again = store_cursor_encode(*tenant, *name);
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

gboolean store_page_args(int limit, const char *after, char **owner, char **name, GError **error)
{
    if (limit < 0) {
        g_set_error_literal(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "limit: must not be negative");
        return FALSE;
    }
    return after == NULL || store_cursor_decode(after, owner, name, error);
}

gboolean store_page_start(int limit, const char *after, const char *listing, char **name,
                          GError **error)
{
    g_autofree char *owner = NULL;
    if (!store_page_args(limit, after, &owner, name, error))
        return FALSE;
    /* A cursor is tied to the listing that made it. */
    if (owner != NULL && strcmp(owner, listing) != 0) {
        g_clear_pointer(name, g_free);
        g_set_error_literal(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "after: invalid cursor");
        return FALSE;
    }
    return TRUE;
}
