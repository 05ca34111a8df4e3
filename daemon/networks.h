/* Networks as the daemon runs them: a tenant's own (nat, isolated) and the
 * operator's external ones; the store keeps them (store_networks.c),
 * libvirt runs them (hvcore/network.h).  A network's row is written
 * before libvirt is touched and reconcile finishes whatever a crash
 * interrupted, so no libvirt network of ours is left without a row. */
#pragma once

#include "daemon/app.h"
#include "hvcore/network.h"

/* POST /v1/networks.  @tenant NULL is the operator (external networks
 * only; FORBIDDEN for others; tenants FORBIDDEN for external).  Quota,
 * name and subnet checks and the row are one transaction; then libvirt
 * defines and starts it; a failure there removes the row again.  Returns
 * the network as GET shows it. */
ApiNetwork *networks_create(App *app, const char *tenant, ApiNetwork *request, GError **error);
/* DELETE: CONFLICT while a stack has a NIC on it; nothing changes when
 * @precondition (may be NULL) does not hold for the network as the
 * transaction that marks it deleting sees it. */
gboolean networks_delete(App *app, const StoreNetwork *row, const Precondition *precondition,
                         GError **error);
/* Fills what GET shows beyond the row (the gateway). */
void networks_fill(ApiNetwork *network);

/* The HvNic of each NIC of @stack (its networks resolved, MACs from the
 * spec), for its domain XML. */
GPtrArray *networks_stack_nics(App *app, const ApiStack *stack, GError **error);
/* Picks a MAC for each NIC of @spec that has none. */
void networks_assign_macs(ApiStackSpec *spec);
/* Checks each NIC of @spec names a network @tenant may use (NOT_FOUND
 * "nics[i].network: network 'x' not found"), before anything is made. */
gboolean networks_check_nics(App *app, const char *tenant, const ApiStackSpec *spec,
                             GError **error);

/* A stack arrived here by migration: the networks its domain joins that
 * this host's store lacks are adopted from their libvirt definitions (the
 * source created them before migrating). */
gboolean networks_adopt_for_domain(App *app, HvConn *conn, const char *domain_xml, GError **error);
/* Migration: whether the peer can serve every network of @stack
 * (UNSUPPORTED with the reason when not); with @apply, defines and starts
 * those it lacks (and our nwfilters), and sets *@created (may be NULL) to
 * the ids it created, for the caller to remove if the migration fails. */
gboolean networks_prepare_peer(App *app, HvConn *dst, const ApiStack *stack, gboolean apply,
                               GPtrArray *created, GError **error);

/* Start-up and reconnection: our nwfilters defined; rows left creating or
 * deleting by a crash finished (removed); ready ones defined and active;
 * libvirt networks of ours without a row removed. */
gboolean networks_reconcile(App *app, HvConn *conn, GError **error);

/* Starts the periodic refresh of NIC addresses from libvirt's DHCP leases. */
void networks_watch_addresses(App *app);
