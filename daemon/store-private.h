/* What the store's files share, and nothing else includes: the connections,
 * the transaction steps, and the statement helpers every entity's file
 * (store_tenants.c, store_operations.c, store_images.c, store_stacks.c,
 * store_peers.c) runs its SQL through.  The daemon uses daemon/store.h only.
 *
 * Two kinds of public store function:
 *   - a write takes store->lock for its whole duration and uses the one
 *     read-write connection (SQLite has one writer at a time anyway);
 *   - a read starts with STORE_READ(store), which points @store at a
 *     read-only connection of a pool for the function's duration: WAL lets
 *     readers run beside each other and beside the writer, each on the last
 *     committed state.  A read made by a thread inside its own transaction
 *     uses the writer instead, so that it sees what the transaction wrote.
 * The helpers here take no lock and work on whichever connection they get. */
#pragma once

#include <sqlite3.h>

#include "daemon/store.h"

/* A statement of store_prepare is given back with store_statement_done,
 * which keeps it for the next store_prepare of the same SQL. */
void store_statement_done(sqlite3_stmt *stmt);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sqlite3_stmt, store_statement_done)

typedef struct StoreTokenCache StoreTokenCache;

struct Store {
    /* Held by every public write for its whole duration, and by
     * store_transaction for the transaction's: recursive, so that store
     * functions called inside a transaction join it. */
    GRecMutex lock;
    sqlite3 *db;
    guint depth; /* open begin()s: BEGIN IMMEDIATE at 0, savepoints inside */
    /* Prepared statements not in use, by SQL text: preparing costs more than
     * running most of our queries.  Used by the connection's one user. */
    GHashTable *statements;
    /* A reader connection points at the store it reads for; the writer's
     * is NULL, and only the writer has the fields below. */
    Store *owner;
    char *path;
    GThread *in_transaction; /* atomic: the thread whose transaction is open */
    gboolean tokens_changed; /* under lock: this transaction wrote tokens */
    GMutex readers_lock;
    GCond reader_returned;
    GPtrArray *idle_readers; /* of Store */
    guint readers;           /* opened, idle or not */
    StoreTokenCache *token_cache;
    struct StoreCheckpointer *checkpointer;
};

/* ---- reading ----------------------------------------------------------- */

typedef struct {
    Store *store;  /* the writer, whose pool @conn goes back to */
    Store *conn;   /* the connection to read with */
    gboolean pool; /* @conn came from the pool (else: the writer, locked, or nothing to undo) */
} StoreRead;

StoreRead store_read_begin(Store *store);
void store_read_end(StoreRead *read);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(StoreRead, store_read_end)
/* The first line of a public read: from here to the end of the function
 * @store is a connection to read with (see the top of this file). */
#define STORE_READ(store)                                                                          \
    g_auto(StoreRead) store##_read = store_read_begin(store);                                      \
    (store) = store##_read.conn

/* Whether this thread is inside a transaction of @store (or of the store
 * @store reads for). */
gboolean store_in_own_transaction(Store *store);

/* ---- the token cache (store_tokens.c) ------------------------------------ */

StoreTokenCache *store_token_cache_new(void);
void store_token_cache_free(StoreTokenCache *cache);
/* Called once a transaction that wrote tokens (a revocation, a tenant's
 * delete) has committed: nothing cached before survives it. */
void store_token_cache_invalidate(StoreTokenCache *cache);
/* A write that changes which tokens are live calls this inside its
 * transaction; the cache is emptied when the transaction commits. */
void store_tokens_changed(Store *store);

/* ---- errors ------------------------------------------------------------ */

/* INTERNAL "store: @what: <SQLite's message>". */
void store_set_internal(Store *store, GError **error, const char *what);
gboolean store_is_unique_violation(Store *store);

/* ---- parameters -------------------------------------------------------- */

typedef enum {
    STORE_PARAM_END = 0, /* zero, so that a zeroed tail ends a list */
    STORE_PARAM_TEXT,    /* NULL binds NULL */
    STORE_PARAM_INT64,
    STORE_PARAM_INT64_OR_NULL, /* negative means unknown: NULL */
    STORE_PARAM_HASH,          /* STORE_TOKEN_HASH_LEN bytes */
} StoreParamKind;

typedef struct {
    StoreParamKind kind;
    const char *text;
    gint64 number;
    const guint8 *hash;
} StoreParam;

#define STORE_TEXT(value)  ((StoreParam){.kind = STORE_PARAM_TEXT, .text = (value)})
#define STORE_INT64(value) ((StoreParam){.kind = STORE_PARAM_INT64, .number = (value)})
#define STORE_INT64_OR_NULL(value)                                                                 \
    ((StoreParam){.kind = STORE_PARAM_INT64_OR_NULL, .number = (value)})
#define STORE_HASH(value) ((StoreParam){.kind = STORE_PARAM_HASH, .hash = (value)})
/* The parameters ?1, ?2, ... of a statement, in order:
 *   STORE_PARAMS(STORE_TEXT(name), STORE_INT64(quota->stacks)) */
#define STORE_PARAMS(...) ((const StoreParam[]){__VA_ARGS__, {.kind = STORE_PARAM_END}})
#define STORE_NO_PARAMS   NULL

/* ---- statements -------------------------------------------------------- */

/* A statement for @sql: a kept one when there is one not in use, else a
 * new one.  Freed (given back) with g_autoptr(sqlite3_stmt). */
sqlite3_stmt *store_prepare(Store *store, const char *sql, GError **error);
/* Binds @params (NULL: none) to ?1, ?2, ...: SQLITE_OK, or the code of the
 * first bind that failed, for store_step to report. */
int store_bind(sqlite3_stmt *stmt, const StoreParam *params);
/* A failed bind has already set the connection's error message. */
int store_step(sqlite3_stmt *stmt, int bound);
char *store_column_text(sqlite3_stmt *stmt, int index);

/* begin/commit/rollback nest: the outermost is the transaction (IMMEDIATE:
 * take the write lock now rather than fail half-way), inner ones are
 * savepoints, so a function that needs a transaction of its own joins its
 * caller's. */
gboolean store_begin(Store *store, GError **error);
gboolean store_commit(Store *store, GError **error);
void store_rollback(Store *store);
/* Ends the store_begin before it: commits when @ok, rolls back when not or
 * when the commit fails.  Returns whether it committed. */
gboolean store_end(Store *store, gboolean ok, GError **error);

/* ---- queries ----------------------------------------------------------- */

/* Makes a value of the row @stmt is on, or NULL with @error set. */
typedef gpointer (*StoreRowFunc)(sqlite3_stmt *stmt, GError **error);

/* A StoreRowFunc: column 0 as a string. */
gpointer store_text_from_row(sqlite3_stmt *stmt, GError **error);

/* Runs @sql with @params to its first row: *@row is the statement on it, or
 * NULL when there is none (no error).  FALSE with INTERNAL "store: @what: ..."
 * when SQLite fails. */
gboolean store_query_row(Store *store, sqlite3_stmt **row, const char *sql,
                         const StoreParam *params, const char *what, GError **error);
/* The value @row makes of the first row; NOT_FOUND with the message of
 * @not_found_format when there is none, INTERNAL "store: @what: ..." when
 * SQLite fails. */
gpointer store_query_one(Store *store, const char *sql, const StoreParam *params, StoreRowFunc row,
                         const char *what, GError **error, const char *not_found_format, ...)
    G_GNUC_PRINTF(7, 8);
/* The values @row makes of every row, in an array that frees them with
 * @free_func; INTERNAL "store: @what: ..." when SQLite fails. */
GPtrArray *store_query_list(Store *store, const char *sql, const StoreParam *params,
                            StoreRowFunc row, GDestroyNotify free_func, const char *what,
                            GError **error);
/* The same, at most @limit rows (0: all); *@more tells whether another row
 * followed them (it is not made into a value).  @sql may stop at @limit + 1
 * rows: more are never read. */
GPtrArray *store_query_page(Store *store, const char *sql, const StoreParam *params,
                            StoreRowFunc row, GDestroyNotify free_func, guint limit, gboolean *more,
                            const char *what, GError **error);

/* Runs a statement that returns no rows; INTERNAL "store: @what: ..." when
 * it fails.  sqlite3_changes(store->db) tells what it changed. */
gboolean store_exec(Store *store, const char *sql, const StoreParam *params, const char *what,
                    GError **error);
/* The same, and NOT_FOUND with the message of @not_found_format when it
 * changed no row. */
gboolean store_exec_changes(Store *store, const char *sql, const StoreParam *params,
                            const char *what, GError **error, const char *not_found_format, ...)
    G_GNUC_PRINTF(6, 7);
/* The same for an INSERT: CONFLICT with the message of @conflict_format when
 * it breaks a UNIQUE or PRIMARY KEY constraint. */
gboolean store_exec_insert(Store *store, const char *sql, const StoreParam *params,
                           const char *what, GError **error, const char *conflict_format, ...)
    G_GNUC_PRINTF(6, 7);

/* "?N, ?N+1, ..." for the states in @mask (bits 0 to 31), to be bound in
 * the same order: the SQL holds only placeholders, the names come from the
 * enum. */
char *store_state_placeholders(guint mask, int first);

/* ---- lookups the entities share ----------------------------------------- */

/* The id of tenant @name, or NOT_FOUND (store_tenants.c). */
char *store_tenant_id(Store *store, const char *name, GError **error);
/* The id of @tenant's image @name, or NOT_FOUND (store_images.c). */
char *store_image_id(Store *store, const char *tenant, const char *name, GError **error);

/* ---- pagination cursors ------------------------------------------------- */

/* A keyset cursor: the unpadded base64url of "<owner>\0<name>", the last
 * row of the page before; opaque to clients. */
char *store_cursor_encode(const char *owner, const char *name);
/* Only what store_cursor_encode writes: BAD_REQUEST "after: invalid cursor"
 * otherwise. */
gboolean store_cursor_decode(const char *cursor, char **owner, char **name, GError **error);
/* The arguments of a page: BAD_REQUEST for a negative @limit; @after (may
 * be NULL) decoded into *@owner and *@name. */
gboolean store_page_args(int limit, const char *after, char **owner, char **name, GError **error);
/* store_page_args for a listing whose cursors all carry @listing as their
 * owner: another's is BAD_REQUEST "after: invalid cursor". */
gboolean store_page_start(int limit, const char *after, const char *listing, char **name,
                          GError **error);
