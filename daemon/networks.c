#include "daemon/networks.h"

#include <string.h>

#include "daemon/clock.h"
#include "daemon/connection.h"
#include "daemon/convert.h"
#include "daemon/error.h"
#include "daemon/stacks.h"
#include "hvcore/domain.h"
#include "hvcore/error.h"
#include "hvcore/machine.h"

/* How often NIC addresses are read from libvirt's DHCP leases. */
#define ADDRESS_REFRESH_S 3

void networks_fill(ApiNetwork *network)
{
    g_free(network->gateway);
    network->gateway = network->cidr ? hv_network_gateway(network->cidr) : NULL;
}

/* ---- create -------------------------------------------------------------------- */

typedef struct {
    App *app;
    ApiNetwork *network;   /* cidr filled in by the transaction when the pool picks it */
    GPtrArray *host_cidrs; /* subnets libvirt and the host use, outside our store */
} NewNetwork;

static gboolean cidr_split(const char *cidr, guint32 *address, guint *prefix)
{
    return hv_ipv4_cidr_parse(cidr, address, prefix, NULL);
}

/* The first subnet of @cidrs (char *) that overlaps @address/@prefix, or NULL. */
static const char *first_overlap(GPtrArray *cidrs, guint32 address, guint prefix)
{
    for (guint i = 0; i < cidrs->len; i++) {
        guint32 other = 0;
        guint other_prefix = 0;
        if (cidr_split(g_ptr_array_index(cidrs, i), &other, &other_prefix) &&
            hv_ipv4_cidr_overlap(address, prefix, other, other_prefix))
            return g_ptr_array_index(cidrs, i);
    }
    return NULL;
}

static GPtrArray *store_cidrs(Store *store, GError **error)
{
    g_autoptr(GPtrArray) rows = store_network_list_all(store, error);
    if (rows == NULL)
        return NULL;
    GPtrArray *cidrs = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < rows->len; i++) {
        const StoreNetwork *row = g_ptr_array_index(rows, i);
        if (row->network->cidr != NULL)
            g_ptr_array_add(cidrs, g_strdup(row->network->cidr));
    }
    return cidrs;
}

/* The subnet of a new tenant network: the one asked for, if nothing on
 * the host overlaps it, else the pool's first free one. */
static gboolean choose_cidr(NewNetwork *new, GPtrArray *ours, GError **error)
{
    ApiNetwork *network = new->network;
    if (network->cidr != NULL) {
        guint32 address = 0;
        guint prefix = 0;
        if (!cidr_split(network->cidr, &address, &prefix)) {
            g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "cidr: not a subnet");
            return FALSE;
        }
        if (first_overlap(ours, address, prefix) != NULL) {
            g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                        "cidr: %s overlaps another network on this host", network->cidr);
            return FALSE;
        }
        const char *host = first_overlap(new->host_cidrs, address, prefix);
        if (host != NULL) {
            g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                        "cidr: %s overlaps %s, which the host itself uses", network->cidr, host);
            return FALSE;
        }
        return TRUE;
    }
    const Config *config = new->app->config;
    guint32 pool = 0;
    guint pool_prefix = 0;
    if (!cidr_split(config->network_pool, &pool, &pool_prefix)) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "network_pool is not a subnet");
        return FALSE;
    }
    guint prefix = (guint)config->network_prefix;
    guint64 count = (guint64)1 << (prefix - pool_prefix);
    for (guint64 i = 0; i < count; i++) {
        guint32 address = pool + (guint32)(i << (32 - prefix));
        if (first_overlap(ours, address, prefix) == NULL &&
            first_overlap(new->host_cidrs, address, prefix) == NULL) {
            g_autofree char *text = hv_ipv4_to_string(address);
            network->cidr = g_strdup_printf("%s/%u", text, prefix);
            return TRUE;
        }
    }
    g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                "no free /%u is left in the network pool %s: name a cidr, or ask the operator",
                prefix, config->network_pool);
    return FALSE;
}

static gboolean check_tenant_quota(Store *store, const char *tenant, GError **error)
{
    g_autoptr(ApiTenant) owner = store_tenant_get(store, tenant, error);
    gint64 used = owner ? store_tenant_network_count(store, tenant, error) : -1;
    if (used < 0)
        return FALSE;
    if (used + 1 > owner->quota.networks) {
        g_set_error(error, TD_ERROR, TD_ERROR_QUOTA_EXCEEDED,
                    "quota exceeded: networks would be %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                    " (%" G_GINT64_FORMAT " in use, 1 asked)",
                    used + 1, owner->quota.networks, used);
        return FALSE;
    }
    return TRUE;
}

/* A name a tenant would see twice is refused: its own networks and the
 * external ones it may use share one namespace. */
static gboolean check_name_free(Store *store, const ApiNetwork *network, GError **error)
{
    gboolean taken = FALSE;
    if (network->tenant != NULL) {
        if (!store_network_name_taken(store, network->tenant, network->name, &taken, error))
            return FALSE;
    } else {
        g_autoptr(StoreNetwork) external = store_network_get(store, NULL, network->name, NULL);
        taken = external != NULL;
        for (guint i = 0; !taken && i < network->shared_with->len; i++) {
            const char *tenant = g_ptr_array_index(network->shared_with, i);
            g_autoptr(GError) missing = NULL;
            g_autoptr(ApiTenant) known = store_tenant_get(store, tenant, &missing);
            if (known == NULL) {
                g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                            "shared_with[%u]: tenant '%s' not found", i, tenant);
                return FALSE;
            }
            if (!store_network_name_taken(store, tenant, network->name, &taken, error))
                return FALSE;
            if (taken) {
                g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                            "tenant '%s' already has a network named '%s'", tenant, network->name);
                return FALSE;
            }
        }
    }
    if (taken)
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "network '%s' already exists",
                    network->name);
    return !taken;
}

static gboolean insert_new(Store *store, gpointer data, GError **error)
{
    NewNetwork *new = data;
    ApiNetwork *network = new->network;
    if (network->tenant != NULL && !check_tenant_quota(store, network->tenant, error))
        return FALSE;
    if (!check_name_free(store, network, error))
        return FALSE;
    if (network->tenant != NULL) {
        g_autoptr(GPtrArray) ours = store_cidrs(store, error);
        if (ours == NULL || !choose_cidr(new, ours, error))
            return FALSE;
    }
    return store_network_insert(store, network, STORE_NETWORK_CREATING, error);
}

/* Whether this host can serve an external network: libvirt knows its host
 * bridge.  (For tenant networks libvirt itself refuses a clashing subnet.) */
static gboolean check_external(HvConn *conn, const ApiNetwork *network, GError **error)
{
    g_autoptr(HvNetworkSpec) spec = convert_network_to_hv(network);
    g_autoptr(GError) local = NULL;
    if (hv_network_check_peer(conn, spec, &local))
        return TRUE;
    g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "bridge: %s", local->message);
    return FALSE;
}

static gboolean remove_row(App *app, const char *id)
{
    g_autoptr(GError) error = NULL;
    if (store_network_delete(app->store, id, &error))
        return TRUE;
    g_warning("network %s: its row stays until the next reconcile: %s", id, error->message);
    return FALSE;
}

ApiNetwork *networks_create(App *app, const char *tenant, ApiNetwork *request, GError **error)
{
    g_autoptr(ApiNetwork) network = request;
    gboolean external = g_str_equal(network->mode, "external");
    if (tenant != NULL && external) {
        g_set_error(error, TD_ERROR, TD_ERROR_FORBIDDEN,
                    "mode: external networks are the operator's; create a nat or isolated one");
        return NULL;
    }
    if (tenant == NULL && !external) {
        g_set_error(error, TD_ERROR, TD_ERROR_FORBIDDEN,
                    "mode: nat and isolated networks belong to a tenant, who creates them with "
                    "its token; the operator creates external ones");
        return NULL;
    }
    g_autoptr(HvConn) conn = connection_get(app, error);
    if (conn == NULL)
        return NULL;

    network->id = g_uuid_string_random();
    network->tenant = g_strdup(tenant);
    if (!external)
        network->bridge = hv_network_bridge_for(network->id);
    network->created_at = clock_now_rfc3339();
    network->updated_at = g_strdup(network->created_at);

    g_autoptr(GError) local = NULL;
    g_autoptr(GPtrArray) host_cidrs = NULL;
    if (external) {
        if (!check_external(conn, network, error))
            return NULL;
    } else {
        host_cidrs = hv_network_used_cidrs(conn, &local);
        g_autoptr(GPtrArray) local_cidrs = host_cidrs ? hv_host_ipv4_cidrs(&local) : NULL;
        if (local_cidrs == NULL) {
            connection_failed(app, conn, &local);
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        for (guint i = 0; i < local_cidrs->len; i++)
            g_ptr_array_add(host_cidrs, g_strdup(g_ptr_array_index(local_cidrs, i)));
    }

    NewNetwork new = {app, network, host_cidrs};
    if (!store_transaction(app->store, insert_new, &new, error))
        return NULL;

    g_autoptr(HvNetworkSpec) spec = convert_network_to_hv(network);
    if (!hv_network_ensure(conn, spec, NULL, &local)) {
        connection_failed(app, conn, &local);
        g_autoptr(GError) cleanup = NULL;
        if (hv_network_remove(conn, network->id, &cleanup))
            remove_row(app, network->id);
        else
            g_warning("network %s: left for reconcile: %s", network->id, cleanup->message);
        g_propagate_prefixed_error(error, g_steal_pointer(&local), "network '%s': ", network->name);
        return NULL;
    }
    g_free(network->updated_at);
    network->updated_at = clock_now_rfc3339();
    if (!store_network_set_state(app->store, network->id, STORE_NETWORK_READY, network->updated_at,
                                 error))
        return NULL;
    g_message("network %s/%s (%s, %s) created", tenant ? tenant : "(external)", network->name,
              network->mode, network->cidr ? network->cidr : network->bridge);
    networks_fill(network);
    return g_steal_pointer(&network);
}

/* ---- delete -------------------------------------------------------------------- */

typedef struct {
    const char *id;
    const Precondition *precondition;
} DeleteMark;

/* One transaction: the precondition holds for the network as it turns
 * deleting. */
static gboolean mark_deleting(Store *store, gpointer data, GError **error)
{
    DeleteMark *mark = data;
    g_autoptr(StoreNetwork) current = store_network_get_by_id(store, mark->id, error);
    g_autofree char *now = clock_now_rfc3339();
    return current != NULL && precondition_holds(mark->precondition, current, error) &&
           store_network_begin_delete(store, mark->id, now, error);
}

gboolean networks_delete(App *app, const StoreNetwork *row, const Precondition *precondition,
                         GError **error)
{
    const ApiNetwork *network = row->network;
    DeleteMark mark = {network->id, precondition};
    g_autoptr(HvConn) conn = connection_get(app, error);
    if (conn == NULL || !store_transaction(app->store, mark_deleting, &mark, error))
        return FALSE;
    g_autoptr(GError) local = NULL;
    if (!hv_network_remove(conn, network->id, &local)) {
        connection_failed(app, conn, &local);
        g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                   "network '%s' is being deleted; the rest is left to the next "
                                   "reconcile: ",
                                   network->name);
        return FALSE;
    }
    if (!store_network_delete(app->store, network->id, error))
        return FALSE;
    g_message("network %s/%s deleted", network->tenant ? network->tenant : "(external)",
              network->name);
    return TRUE;
}

/* ---- NICs ----------------------------------------------------------------------- */

void networks_assign_macs(ApiStackSpec *spec)
{
    for (guint i = 0; i < spec->nics->len; i++) {
        ApiStackNic *nic = g_ptr_array_index(spec->nics, i);
        if (nic->mac == NULL)
            nic->mac = hv_nic_random_mac();
    }
}

gboolean networks_check_nics(App *app, const char *tenant, const ApiStackSpec *spec, GError **error)
{
    for (guint i = 0; i < spec->nics->len; i++) {
        const ApiStackNic *nic = g_ptr_array_index(spec->nics, i);
        g_autoptr(GError) local = NULL;
        g_autoptr(StoreNetwork) row =
            store_network_get_visible(app->store, tenant, nic->network, &local);
        if (row == NULL) {
            g_set_error(error, TD_ERROR, local->code, "nics[%u].network: %s", i, local->message);
            return FALSE;
        }
    }
    return TRUE;
}

GPtrArray *networks_stack_nics(App *app, const ApiStack *stack, GError **error)
{
    g_autoptr(GPtrArray) rows = store_stack_nic_networks(app->store, stack->id, error);
    if (rows == NULL)
        return NULL;
    if (rows->len != stack->spec->nics->len) {
        g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL,
                    "stack '%s' has %u NICs in its spec but %u in the store", stack->spec->name,
                    stack->spec->nics->len, rows->len);
        return NULL;
    }
    GPtrArray *nics = g_ptr_array_new_with_free_func((GDestroyNotify)hv_nic_free);
    for (guint i = 0; i < rows->len; i++) {
        const ApiNetwork *network = ((StoreNetwork *)g_ptr_array_index(rows, i))->network;
        const ApiStackNic *wanted = g_ptr_array_index(stack->spec->nics, i);
        HvNic *nic = hv_nic_new();
        nic->network_id = g_strdup(network->id);
        nic->mac = g_strdup(wanted->mac);
        /* libvirt's test driver has no nwfilter: test-backend stacks go without. */
        nic->filter = app->backend != HV_BACKEND_TEST;
        if (network->cidr != NULL) {
            nic->gateway = hv_network_gateway(network->cidr);
            nic->own_cidr = g_strdup(network->cidr);
            nic->guard_cidr = g_strdup(app->config->network_pool);
        }
        g_ptr_array_add(nics, nic);
    }
    return nics;
}

/* ---- migration ------------------------------------------------------------------ */

gboolean networks_adopt_for_domain(App *app, HvConn *conn, const char *domain_xml, GError **error)
{
    g_autoptr(GPtrArray) nics = hv_domain_parse_nics(domain_xml, error);
    if (nics == NULL)
        return FALSE;
    if (nics->len == 0)
        return TRUE;
    g_autoptr(GPtrArray) specs = hv_network_list_ours(conn, NULL, error);
    if (specs == NULL)
        return FALSE;
    for (guint i = 0; i < nics->len; i++) {
        const HvNic *nic = g_ptr_array_index(nics, i);
        g_autoptr(StoreNetwork) known = store_network_get_by_id(app->store, nic->network_id, NULL);
        if (known != NULL)
            continue;
        const HvNetworkSpec *spec = NULL;
        for (guint j = 0; spec == NULL && j < specs->len; j++)
            if (g_strcmp0(((HvNetworkSpec *)g_ptr_array_index(specs, j))->id, nic->network_id) == 0)
                spec = g_ptr_array_index(specs, j);
        if (spec == NULL) {
            g_set_error(error, TD_ERROR, TD_ERROR_NOT_FOUND,
                        "the domain joins network %s, which libvirt here does not define",
                        nic->network_id);
            return FALSE;
        }
        g_autoptr(ApiNetwork) network = convert_network_from_hv(spec);
        /* An external network serves here only the tenants this host knows. */
        for (guint j = network->shared_with->len; j > 0; j--) {
            g_autoptr(ApiTenant) tenant =
                store_tenant_get(app->store, g_ptr_array_index(network->shared_with, j - 1), NULL);
            if (tenant == NULL)
                g_ptr_array_remove_index(network->shared_with, j - 1);
        }
        if (!store_network_insert(app->store, network, STORE_NETWORK_READY, error))
            return FALSE;
        g_message("adopted network %s/%s (%s) that a migrated stack joins",
                  network->tenant ? network->tenant : "(external)", network->name,
                  network->cidr ? network->cidr : network->bridge);
    }
    return TRUE;
}

gboolean networks_prepare_peer(App *app, HvConn *dst, const ApiStack *stack, gboolean apply,
                               GPtrArray *created, GError **error)
{
    g_autoptr(GPtrArray) rows = store_stack_nic_networks(app->store, stack->id, error);
    if (rows == NULL)
        return FALSE;
    if (rows->len == 0)
        return TRUE;
    g_autoptr(GError) local = NULL;
    for (guint i = 0; i < rows->len; i++) {
        const ApiNetwork *network = ((StoreNetwork *)g_ptr_array_index(rows, i))->network;
        g_autoptr(HvNetworkSpec) spec = convert_network_to_hv(network);
        if (!hv_network_check_peer(dst, spec, &local)) {
            g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                       "network '%s' cannot follow the stack: ", network->name);
            return FALSE;
        }
    }
    if (!apply)
        return TRUE;
    if (app->backend != HV_BACKEND_TEST && !hv_network_ensure_filters(dst, &local)) {
        g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                   "the peer cannot take our NIC filters: ");
        return FALSE;
    }
    for (guint i = 0; i < rows->len; i++) {
        const ApiNetwork *network = ((StoreNetwork *)g_ptr_array_index(rows, i))->network;
        g_autoptr(HvNetworkSpec) spec = convert_network_to_hv(network);
        gboolean made = FALSE;
        if (!hv_network_ensure(dst, spec, &made, &local)) {
            g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                       "cannot create network '%s' on the peer: ", network->name);
            return FALSE;
        }
        if (made && created != NULL)
            g_ptr_array_add(created, g_strdup(network->id));
    }
    return TRUE;
}

/* ---- reconcile ------------------------------------------------------------------ */

gboolean networks_reconcile(App *app, HvConn *conn, GError **error)
{
    g_autoptr(GError) local = NULL;
    if (app->backend != HV_BACKEND_TEST && !hv_network_ensure_filters(conn, &local)) {
        /* Domains with NICs cannot start without them: say so, go on. */
        g_warning("cannot define the NIC filters: %s", local->message);
        g_clear_error(&local);
    }
    g_autoptr(GPtrArray) rows = store_network_list_all(app->store, error);
    if (rows == NULL)
        return FALSE;
    g_autoptr(GHashTable) known = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < rows->len; i++) {
        const StoreNetwork *row = g_ptr_array_index(rows, i);
        const ApiNetwork *network = row->network;
        if (row->state == STORE_NETWORK_READY) {
            g_hash_table_add(known, network->id);
            g_autoptr(HvNetworkSpec) spec = convert_network_to_hv(network);
            gboolean made = FALSE;
            if (!hv_network_ensure(conn, spec, &made, &local)) {
                g_warning("network %s (%s): cannot make it active: %s", network->id, network->name,
                          local->message);
                g_clear_error(&local);
            } else if (made) {
                g_message("network %s/%s was missing in libvirt: defined it again",
                          network->tenant ? network->tenant : "(external)", network->name);
            }
            continue;
        }
        /* A create that never answered 201, or a delete under way: gone. */
        if (!hv_network_remove(conn, network->id, &local)) {
            g_warning("network %s (%s): cannot remove it yet: %s", network->id, network->name,
                      local->message);
            g_clear_error(&local);
            continue;
        }
        if (remove_row(app, network->id))
            g_message("network %s/%s, %s when turtled stopped, is removed",
                      network->tenant ? network->tenant : "(external)", network->name,
                      store_network_state_to_string(row->state));
    }
    g_autoptr(GPtrArray) ours = hv_network_list_ours(conn, NULL, error);
    if (ours == NULL)
        return FALSE;
    for (guint i = 0; i < ours->len; i++) {
        const HvNetworkSpec *spec = g_ptr_array_index(ours, i);
        if (g_hash_table_contains(known, spec->id))
            continue;
        if (!hv_network_remove(conn, spec->id, &local)) {
            g_warning("orphan network %s: cannot remove it: %s", spec->id, local->message);
            g_clear_error(&local);
        } else {
            g_message("removed libvirt network %s of ours that no row owns", spec->id);
        }
    }
    return TRUE;
}

/* ---- addresses ------------------------------------------------------------------ */

static void refresh_stack(App *app, HvConn *conn, const char *stack_id)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiStack) stack = store_stack_get_by_id(app->store, stack_id, &error);
    if (stack == NULL)
        return;
    g_autoptr(GHashTable) leases = hv_domain_nic_addresses(conn, stack->domain_name, &error);
    if (leases == NULL)
        return;
    gboolean any = FALSE;
    for (guint i = 0; i < stack->spec->nics->len; i++) {
        const ApiStackNic *nic = g_ptr_array_index(stack->spec->nics, i);
        const char *ip = g_hash_table_lookup(leases, nic->mac);
        gboolean changed = FALSE;
        /* No lease here (yet) keeps the last one seen: a stack that just
         * migrated keeps its address until the L1 renews it with this
         * host's DHCP server. */
        if (ip != NULL &&
            store_stack_nic_set_ip(app->store, stack->id, nic->mac, ip, &changed, &error) &&
            changed)
            any = TRUE;
    }
    if (any) {
        g_autoptr(ApiStack) fresh = store_stack_get_by_id(app->store, stack_id, NULL);
        if (fresh != NULL)
            stacks_publish_lifecycle(app, fresh, "addresses");
    }
}

static gboolean refresh_addresses(gpointer data)
{
    App *app = data;
    if (!hv_virt_is_connected(app->virt))
        return G_SOURCE_CONTINUE;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) ids = store_stacks_with_nics(app->store, &error);
    g_autoptr(HvConn) conn = ids && ids->len > 0 ? connection_get(app, &error) : NULL;
    for (guint i = 0; conn != NULL && i < ids->len; i++)
        refresh_stack(app, conn, g_ptr_array_index(ids, i));
    return G_SOURCE_CONTINUE;
}

void networks_watch_addresses(App *app)
{
    g_timeout_add_seconds(ADDRESS_REFRESH_S, refresh_addresses, app);
}
