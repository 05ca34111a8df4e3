/* The store's peers: the hosts stacks may migrate to. */
#include "daemon/store.h"

#include <string.h>

#include "daemon/error.h"
#include "daemon/store-private.h"

#define PEER_COLUMNS "name, libvirt_uri, migrate_uri, created_at"

static gpointer peer_from_row(sqlite3_stmt *stmt, GError **error)
{
    ApiPeer *peer = api_peer_new();

    (void)error;
    peer->name = store_column_text(stmt, 0);
    peer->libvirt_uri = store_column_text(stmt, 1);
    peer->migrate_uri = store_column_text(stmt, 2);
    peer->created_at = store_column_text(stmt, 3);
    return peer;
}

gboolean store_peer_insert(Store *store, const ApiPeer *peer, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    return store_exec_insert(store, "INSERT INTO peers (" PEER_COLUMNS ") VALUES (?1, ?2, ?3, ?4)",
                             STORE_PARAMS(STORE_TEXT(peer->name), STORE_TEXT(peer->libvirt_uri),
                                          STORE_TEXT(peer->migrate_uri), /* NULL binds NULL */
                                          STORE_TEXT(peer->created_at)),
                             "inserting a peer", error, "peer '%s' already exists", peer->name);
}

ApiPeer *store_peer_get(Store *store, const char *name, GError **error)
{
    STORE_READ(store);
    return store_query_one(store, "SELECT " PEER_COLUMNS " FROM peers WHERE name = ?1",
                           STORE_PARAMS(STORE_TEXT(name)), peer_from_row, "reading a peer", error,
                           "peer '%s' not found", name);
}

GPtrArray *store_peer_list(Store *store, GError **error)
{
    STORE_READ(store);
    return store_query_list(store, "SELECT " PEER_COLUMNS " FROM peers ORDER BY name",
                            STORE_NO_PARAMS, peer_from_row, (GDestroyNotify)api_peer_free,
                            "listing peers", error);
}

/* Peers have no owner: their cursors' first part names the listing. */
#define PEER_CURSOR_OWNER "peers"

GPtrArray *store_peer_page(Store *store, int limit, const char *after, char **next, GError **error)
{
    g_return_val_if_fail(next != NULL, NULL);
    STORE_READ(store);
    g_autofree char *after_name = NULL;

    *next = NULL;
    if (!store_page_start(limit, after, PEER_CURSOR_OWNER, &after_name, error))
        return NULL;
    gboolean more = FALSE;
    g_autoptr(GPtrArray) peers = store_query_page(
        store,
        "SELECT " PEER_COLUMNS " FROM peers WHERE (?1 IS NULL OR name > ?1) "
        "ORDER BY name LIMIT ?2",
        STORE_PARAMS(STORE_TEXT(after_name), STORE_INT64(limit > 0 ? (gint64)limit + 1 : -1)),
        peer_from_row, (GDestroyNotify)api_peer_free, (guint)limit, &more, "listing peers", error);
    if (peers == NULL)
        return NULL;
    if (more) {
        const ApiPeer *last = g_ptr_array_index(peers, peers->len - 1);
        *next = store_cursor_encode(PEER_CURSOR_OWNER, last->name);
    }
    return g_steal_pointer(&peers);
}

gboolean store_peer_delete(Store *store, const char *name, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    return store_exec_changes(store, "DELETE FROM peers WHERE name = ?1",
                              STORE_PARAMS(STORE_TEXT(name)), "deleting a peer", error,
                              "peer '%s' not found", name);
}
