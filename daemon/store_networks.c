/* The store's networks: a tenant's own and the operator's external ones
 * (with the tenants they serve), and the NICs stacks hold on them. */
#include "daemon/store.h"

#include <string.h>

#include "daemon/error.h"
#include "daemon/store-private.h"

/* The owner's name is '' for external networks, so that one ordering and
 * one cursor cover both. */
#define NETWORK_COLUMNS                                                                            \
    "n.id, ifnull(t.name, ''), n.name, n.mode, n.cidr, n.bridge, n.state, n.created_at, "          \
    "n.updated_at, (SELECT count(*) FROM stack_nics c WHERE c.network_id = n.id), "                \
    "(SELECT group_concat(st.name, ',') FROM network_tenants nt JOIN tenants st "                  \
    "   ON st.id = nt.tenant_id WHERE nt.network_id = n.id)"
#define NETWORK_FROM " FROM networks n LEFT JOIN tenants t ON t.id = n.tenant_id "
/* What @tenant (?1) may use: its own, and external ones shared with it. */
#define NETWORK_VISIBLE                                                                            \
    "(t.name = ?1 OR (n.tenant_id IS NULL AND EXISTS (SELECT 1 FROM network_tenants nt "           \
    "JOIN tenants vt ON vt.id = nt.tenant_id WHERE nt.network_id = n.id AND vt.name = ?1)))"

static const char *const network_states[] = {"creating", "ready", "deleting", NULL};

const char *store_network_state_to_string(StoreNetworkState state)
{
    return state >= 0 && state < (int)G_N_ELEMENTS(network_states) - 1 ? network_states[state]
                                                                       : "unknown";
}

static gpointer network_from_row(sqlite3_stmt *stmt, GError **error)
{
    g_autoptr(StoreNetwork) row = g_new0(StoreNetwork, 1);
    row->network = api_network_new();
    ApiNetwork *network = row->network;
    network->id = store_column_text(stmt, 0);
    network->tenant = store_column_text(stmt, 1);
    if (network->tenant != NULL && network->tenant[0] == '\0')
        g_clear_pointer(&network->tenant, g_free);
    network->name = store_column_text(stmt, 2);
    network->mode = store_column_text(stmt, 3);
    network->cidr = store_column_text(stmt, 4);
    network->bridge = store_column_text(stmt, 5);
    g_autofree char *state = store_column_text(stmt, 6);
    network->created_at = store_column_text(stmt, 7);
    network->updated_at = store_column_text(stmt, 8);
    network->nics = sqlite3_column_int64(stmt, 9);
    g_autofree char *shared = store_column_text(stmt, 10);
    if (shared != NULL) {
        g_auto(GStrv) names = g_strsplit(shared, ",", -1);
        for (char **name = names; *name; name++)
            g_ptr_array_add(network->shared_with, g_strdup(*name));
    }
    gboolean known = FALSE;
    for (int i = 0; network_states[i] != NULL; i++) {
        if (g_strcmp0(state, network_states[i]) == 0) {
            row->state = (StoreNetworkState)i;
            known = TRUE;
        }
    }
    if (!known) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "store: network '%s' has an unknown state",
                    network->id);
        return NULL;
    }
    return g_steal_pointer(&row);
}

void store_network_free(StoreNetwork *row)
{
    if (row == NULL)
        return;
    api_network_free(row->network);
    g_free(row);
}

gboolean store_network_insert(Store *store, const ApiNetwork *network, StoreNetworkState state,
                              GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    if (!store_begin(store, error))
        return FALSE;
    g_autofree char *owner = NULL;
    gboolean ok = TRUE;
    if (network->tenant != NULL) {
        owner = store_tenant_id(store, network->tenant, error);
        ok = owner != NULL;
    }
    ok = ok && store_exec_insert(
                   store,
                   "INSERT INTO networks (id, tenant_id, name, mode, cidr, bridge, "
                   "state, created_at, updated_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                   STORE_PARAMS(STORE_TEXT(network->id), STORE_TEXT(owner),
                                STORE_TEXT(network->name), STORE_TEXT(network->mode),
                                STORE_TEXT(network->cidr), STORE_TEXT(network->bridge),
                                STORE_TEXT(store_network_state_to_string(state)),
                                STORE_TEXT(network->created_at), STORE_TEXT(network->updated_at)),
                   "inserting a network", error, "network '%s' already exists", network->name);
    for (guint i = 0; ok && i < network->shared_with->len; i++) {
        const char *tenant = g_ptr_array_index(network->shared_with, i);
        g_autofree char *tenant_id = store_tenant_id(store, tenant, error);
        ok =
            tenant_id != NULL &&
            store_exec(store, "INSERT INTO network_tenants (network_id, tenant_id) VALUES (?1, ?2)",
                       STORE_PARAMS(STORE_TEXT(network->id), STORE_TEXT(tenant_id)),
                       "sharing a network", error);
    }
    return store_end(store, ok, error);
}

StoreNetwork *store_network_get(Store *store, const char *tenant, const char *name, GError **error)
{
    STORE_READ(store);
    return store_query_one(store,
                           "SELECT " NETWORK_COLUMNS NETWORK_FROM
                           "WHERE ifnull(t.name, '') = ifnull(?1, '') AND n.name = ?2",
                           STORE_PARAMS(STORE_TEXT(tenant), STORE_TEXT(name)), network_from_row,
                           "reading a network", error, "network '%s' not found", name);
}

StoreNetwork *store_network_get_visible(Store *store, const char *tenant, const char *name,
                                        GError **error)
{
    STORE_READ(store);
    /* Its own first: a name is never both (networks_create keeps them apart). */
    return store_query_one(store,
                           "SELECT " NETWORK_COLUMNS NETWORK_FROM "WHERE " NETWORK_VISIBLE
                           " AND n.name = ?2 ORDER BY n.tenant_id IS NULL LIMIT 1",
                           STORE_PARAMS(STORE_TEXT(tenant), STORE_TEXT(name)), network_from_row,
                           "reading a network", error, "network '%s' not found", name);
}

StoreNetwork *store_network_get_by_id(Store *store, const char *id, GError **error)
{
    STORE_READ(store);
    return store_query_one(store, "SELECT " NETWORK_COLUMNS NETWORK_FROM "WHERE n.id = ?1",
                           STORE_PARAMS(STORE_TEXT(id)), network_from_row, "reading a network",
                           error, "network '%s' not found", id);
}

GPtrArray *store_network_list(Store *store, const char *tenant, int limit, const char *after,
                              char **next, GError **error)
{
    g_return_val_if_fail(next != NULL, NULL);
    STORE_READ(store);
    g_autofree char *after_owner = NULL;
    g_autofree char *after_name = NULL;

    *next = NULL;
    if (!store_page_args(limit, after, &after_owner, &after_name, error))
        return NULL;
    gboolean more = FALSE;
    /* External networks sort first (owner ''); the cursor's owner is "-"
     * for them, since a cursor's parts cannot be empty. */
    const char *owner_key = after_owner && g_str_equal(after_owner, "-") ? "" : after_owner;
    g_autoptr(GPtrArray) rows = store_query_page(
        store,
        "SELECT " NETWORK_COLUMNS NETWORK_FROM "WHERE (?1 IS NULL OR " NETWORK_VISIBLE ") "
        "AND (?2 IS NULL OR (ifnull(t.name, ''), n.name) > (?2, ?3)) "
        "ORDER BY ifnull(t.name, ''), n.name LIMIT ?4",
        STORE_PARAMS(STORE_TEXT(tenant), STORE_TEXT(owner_key), STORE_TEXT(after_name),
                     STORE_INT64(limit > 0 ? (gint64)limit + 1 : -1)),
        network_from_row, (GDestroyNotify)store_network_free, (guint)limit, &more,
        "listing networks", error);
    if (rows == NULL)
        return NULL;
    if (more) {
        const StoreNetwork *last = g_ptr_array_index(rows, rows->len - 1);
        *next = store_cursor_encode(last->network->tenant ? last->network->tenant : "-",
                                    last->network->name);
    }
    return g_steal_pointer(&rows);
}

GPtrArray *store_network_list_all(Store *store, GError **error)
{
    STORE_READ(store);
    return store_query_list(store, "SELECT " NETWORK_COLUMNS NETWORK_FROM "ORDER BY n.id",
                            STORE_NO_PARAMS, network_from_row, (GDestroyNotify)store_network_free,
                            "listing networks", error);
}

gboolean store_network_set_state(Store *store, const char *id, StoreNetworkState state,
                                 const char *updated_at, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    return store_exec_changes(
        store, "UPDATE networks SET state = ?2, updated_at = ?3 WHERE id = ?1",
        STORE_PARAMS(STORE_TEXT(id), STORE_TEXT(store_network_state_to_string(state)),
                     STORE_TEXT(updated_at)),
        "updating a network", error, "network '%s' not found", id);
}

gboolean store_network_begin_delete(Store *store, const char *id, const char *updated_at,
                                    GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    if (!store_begin(store, error))
        return FALSE;
    g_autoptr(sqlite3_stmt) row = NULL;
    gboolean ok =
        store_query_row(store, &row,
                        "SELECT s.name, n.name FROM stack_nics c "
                        "JOIN stacks s ON s.id = c.stack_id "
                        "JOIN networks n ON n.id = c.network_id "
                        "WHERE c.network_id = ?1 ORDER BY s.name LIMIT 1",
                        STORE_PARAMS(STORE_TEXT(id)), "checking a network's users", error);
    if (ok && row != NULL) {
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                    "network '%s' is in use by stack '%s': delete the stack (or its NIC) first",
                    (const char *)sqlite3_column_text(row, 1),
                    (const char *)sqlite3_column_text(row, 0));
        ok = FALSE;
    }
    ok = ok && store_exec_changes(store,
                                  "UPDATE networks SET state = 'deleting', updated_at = ?2 "
                                  "WHERE id = ?1 AND state = 'ready'",
                                  STORE_PARAMS(STORE_TEXT(id), STORE_TEXT(updated_at)),
                                  "deleting a network", error,
                                  "network '%s' is being created or deleted", id);
    if (!ok && error && *error && (*error)->code == TD_ERROR_NOT_FOUND)
        (*error)->code = TD_ERROR_CONFLICT;
    return store_end(store, ok, error);
}

gboolean store_network_delete(Store *store, const char *id, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    return store_exec(store, "DELETE FROM networks WHERE id = ?1", STORE_PARAMS(STORE_TEXT(id)),
                      "removing a network", error);
}

gint64 store_tenant_network_count(Store *store, const char *tenant, GError **error)
{
    STORE_READ(store);
    g_autoptr(sqlite3_stmt) row = NULL;
    if (!store_query_row(store, &row,
                         "SELECT count(*) FROM networks n JOIN tenants t ON t.id = n.tenant_id "
                         "WHERE t.name = ?1",
                         STORE_PARAMS(STORE_TEXT(tenant)), "counting networks", error))
        return -1;
    return row != NULL ? sqlite3_column_int64(row, 0) : 0;
}

gboolean store_network_name_taken(Store *store, const char *tenant, const char *name,
                                  gboolean *taken, GError **error)
{
    STORE_READ(store);
    g_autoptr(sqlite3_stmt) row = NULL;
    /* A tenant's name clashes with its own and with an external one it
     * may use; an external one (@tenant NULL) with any network of that
     * name of a tenant it would serve, which the caller checks per tenant. */
    if (!store_query_row(store, &row,
                         "SELECT 1" NETWORK_FROM
                         "WHERE n.name = ?2 AND (?1 IS NULL OR " NETWORK_VISIBLE ") LIMIT 1",
                         STORE_PARAMS(STORE_TEXT(tenant), STORE_TEXT(name)),
                         "checking a network name", error))
        return FALSE;
    *taken = row != NULL;
    return TRUE;
}

/* ---- NICs ----------------------------------------------------------------- */

gboolean store_stack_nics_insert(Store *store, const ApiStack *stack, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    for (guint i = 0; i < stack->spec->nics->len; i++) {
        const ApiStackNic *nic = g_ptr_array_index(stack->spec->nics, i);
        g_autoptr(GError) local = NULL;
        g_autoptr(StoreNetwork) network =
            store_network_get_visible(store, stack->tenant, nic->network, &local);
        if (network == NULL || network->state != STORE_NETWORK_READY) {
            g_set_error(error, TD_ERROR, local ? local->code : TD_ERROR_CONFLICT,
                        "nics[%u].network: %s", i,
                        local ? local->message : "the network is being created or deleted");
            return FALSE;
        }
        if (!store_exec_insert(store,
                               "INSERT INTO stack_nics (stack_id, seq, network_id, mac, ip) "
                               "VALUES (?1, ?2, ?3, ?4, ?5)",
                               STORE_PARAMS(STORE_TEXT(stack->id), STORE_INT64(i),
                                            STORE_TEXT(network->network->id), STORE_TEXT(nic->mac),
                                            STORE_TEXT(nic->ip)),
                               "recording a NIC", error,
                               "nics[%u].mac: %s is taken by another NIC on this host", i,
                               nic->mac))
            return FALSE;
    }
    return TRUE;
}

GPtrArray *store_stack_nic_networks(Store *store, const char *stack_id, GError **error)
{
    STORE_READ(store);
    return store_query_list(store,
                            "SELECT " NETWORK_COLUMNS NETWORK_FROM
                            "JOIN stack_nics c ON c.network_id = n.id WHERE c.stack_id = ?1 "
                            "ORDER BY c.seq",
                            STORE_PARAMS(STORE_TEXT(stack_id)), network_from_row,
                            (GDestroyNotify)store_network_free, "reading a stack's networks",
                            error);
}

gboolean store_stack_nic_set_ip(Store *store, const char *stack_id, const char *mac, const char *ip,
                                gboolean *changed, GError **error)
{
    g_autoptr(GRecMutexLocker) locker = g_rec_mutex_locker_new(&store->lock);
    if (!store_exec(store,
                    "UPDATE stack_nics SET ip = ?3 WHERE stack_id = ?1 AND mac = ?2 "
                    "AND ip IS NOT ?3",
                    STORE_PARAMS(STORE_TEXT(stack_id), STORE_TEXT(mac), STORE_TEXT(ip)),
                    "recording a NIC's address", error))
        return FALSE;
    if (changed)
        *changed = sqlite3_changes(store->db) > 0;
    return TRUE;
}

GPtrArray *store_stacks_with_nics(Store *store, GError **error)
{
    STORE_READ(store);
    return store_query_list(store,
                            "SELECT DISTINCT s.id FROM stacks s JOIN stack_nics c "
                            "ON c.stack_id = s.id WHERE s.state IN ('running', 'paused', "
                            "'migrating') ORDER BY s.id",
                            STORE_NO_PARAMS, store_text_from_row, g_free,
                            "listing stacks with NICs", error);
}
