/* Tenant networks as libvirt networks, and the NICs that join them.
 *
 * A tenant network ("nat" or "isolated") is a persistent, autostarted
 * libvirt network with its own bridge and libvirt's dnsmasq for DHCP (and
 * DNS for nat).  An "external" network is the operator's: a libvirt network
 * in bridge mode over an existing host bridge.  Each carries its identity
 * in its <metadata> (HV_NETWORK_METADATA_URI), so a network found in
 * libvirt (after a crash, or created on this host by a peer for a stack
 * that migrates here) can be adopted.
 *
 * Every NIC of ours gets the nwfilter HV_NETWORK_FILTER: libvirt's
 * clean-traffic (no MAC, IP or ARP spoofing; its IP is learnt from DHCP),
 * and on nat/isolated networks a guard that lets the L1 reach the host
 * (its gateway) only for DHCP, DNS and ICMP (ebtables cannot tell echo
 * from other ICMP), and nothing in the operator's pool of tenant subnets
 * outside its own subnet.  Traffic between two tenant networks is also
 * refused by the firewall rules libvirt installs for each network
 * (forwarding into a nat bridge only for established connections; none for
 * isolated ones).  NICs on external networks get clean-traffic alone.
 *
 * XML is built with libxml2, never pasted.  Threads: any thread.  Errors are
 * HV_ERROR: HV_ERROR_INVALID (bad argument, a definition that conflicts),
 * HV_ERROR_NOT_FOUND, HV_ERROR_UNSUPPORTED (a peer cannot serve a network,
 * with the reason), HV_ERROR_LIBVIRT (anything else libvirt refused). */
#pragma once

#include <glib.h>

#include "hvcore/conn.h"

#define HV_NETWORK_METADATA_URI    "urn:turtles:network:1"
#define HV_NETWORK_METADATA_PREFIX "turtles"
/* libvirt network names are HV_NETWORK_NAME_PREFIX + network id (a UUID). */
#define HV_NETWORK_NAME_PREFIX "turtles-net-"
/* The nwfilter every NIC of ours carries (and the guard it includes). */
#define HV_NETWORK_FILTER       "turtles-nic"
#define HV_NETWORK_GUARD_FILTER "turtles-host-guard"
/* Bridges of tenant networks: "tn" + the first 12 hex digits of the id
 * (14 bytes; the kernel allows 15). */
#define HV_NETWORK_BRIDGE_PREFIX "tn"
#define HV_NETWORK_NICS_MAX      8

typedef enum {
    HV_NETWORK_NAT,      /* outbound through the host (masquerade), DHCP + DNS */
    HV_NETWORK_ISOLATED, /* DHCP only, no forwarding, no DNS */
    HV_NETWORK_EXTERNAL, /* the operator's: bridged onto an existing host bridge */
} HvNetworkMode;

/* "nat", "isolated", "external"; from_string FALSE for anything else. */
const char *hv_network_mode_to_string(HvNetworkMode mode);
gboolean hv_network_mode_from_string(const char *text, HvNetworkMode *mode);

typedef struct {
    char *id;     /* UUID; also the libvirt network's UUID */
    char *name;   /* the API name ("lab") */
    char *tenant; /* owner; NULL for external networks */
    HvNetworkMode mode;
    char *cidr;             /* "10.200.3.0/24", network address; NULL for external */
    char *bridge;           /* nat/isolated: hv_network_bridge_for(id); external: the host bridge */
    GPtrArray *shared_with; /* of char *: tenants an external network serves; never NULL */
} HvNetworkSpec;

HvNetworkSpec *hv_network_spec_new(void);
HvNetworkSpec *hv_network_spec_copy(const HvNetworkSpec *spec);
void hv_network_spec_free(HvNetworkSpec *spec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvNetworkSpec, hv_network_spec_free)

/* HV_NETWORK_NAME_PREFIX + id */
char *hv_network_libvirt_name(const char *network_id);
/* HV_NETWORK_BRIDGE_PREFIX + first 12 hex digits of the id (dashes dropped) */
char *hv_network_bridge_for(const char *network_id);

/* ---- IPv4 subnets -------------------------------------------------------- */

/* "a.b.c.d/p" with 0 <= p <= 32 and no host bits set -> address (host
 * order) and prefix.  HV_ERROR_INVALID otherwise (the message says why,
 * e.g. "host bits set: did you mean 10.0.0.0/24?"). */
gboolean hv_ipv4_cidr_parse(const char *cidr, guint32 *address, guint *prefix, GError **error);
/* Whether two subnets share an address. */
gboolean hv_ipv4_cidr_overlap(guint32 a, guint a_prefix, guint32 b, guint b_prefix);
/* Dotted quad of a host-order address (free it). */
char *hv_ipv4_to_string(guint32 address);
/* The gateway of a tenant subnet: its first address ("10.200.3.1"). */
char *hv_network_gateway(const char *cidr);

/* The subnets in use where @conn's host could route them: each libvirt
 * network's <ip> (ours and anybody's: "default" 192.168.122.0/24 too), as
 * "a.b.c.d/p" strings with host bits cleared.  Never NULL on success. */
GPtrArray *hv_network_used_cidrs(HvConn *conn, GError **error);
/* The IPv4 subnets of this process's own interfaces (getifaddrs), as
 * "a.b.c.d/p" with host bits cleared, loopback included. */
GPtrArray *hv_host_ipv4_cidrs(GError **error);

/* ---- libvirt network definitions ----------------------------------------- */

/* The network XML for @spec: nat -> <forward mode='nat'/>, DHCP over the
 * subnet (gateway = first address, range second .. last but one), DNS;
 * isolated -> no <forward>, DHCP, <dns enable='no'/>; external -> <forward
 * mode='bridge'/> onto spec->bridge, no <ip>.  Persistent identity (id,
 * name, tenant, mode, cidr, shared_with) goes into <metadata>. */
char *hv_network_build_xml(const HvNetworkSpec *spec, GError **error);
/* The spec from a network XML's <metadata>: HV_ERROR_NOT_FOUND when the
 * network is not ours, HV_ERROR_INVALID when the XML does not parse. */
HvNetworkSpec *hv_network_parse_xml(const char *network_xml, GError **error);

/* Makes sure the network of @spec is defined (by its libvirt name), set to
 * autostart and active.  An existing definition with another UUID, mode,
 * subnet or bridge is HV_ERROR_INVALID and left alone.  Idempotent; what
 * this call defined is undefined again when starting it fails.
 * *@created (may be NULL) says whether it defined the network. */
gboolean hv_network_ensure(HvConn *conn, const HvNetworkSpec *spec, gboolean *created,
                           GError **error);
/* Stops and undefines the network of @network_id; an absent one is fine. */
gboolean hv_network_remove(HvConn *conn, const char *network_id, GError **error);
/* Every libvirt network of ours on @conn (HvNetworkSpec *, owned), active
 * or not; *@active (may be NULL) gets a parallel array of gboolean as
 * GUINT_TO_POINTER. */
GPtrArray *hv_network_list_ours(HvConn *conn, GPtrArray **active, GError **error);

/* Defines (or updates to the current rules) HV_NETWORK_FILTER and
 * HV_NETWORK_GUARD_FILTER.  Called at start-up and on a peer before a
 * migration.  HV_ERROR_UNSUPPORTED when @conn's driver has no nwfilter
 * support (test:///default): callers on the test backend skip filters. */
gboolean hv_network_ensure_filters(HvConn *conn, GError **error);

/* Whether @dst can serve @spec for a stack that migrates there, without
 * changing anything: absent (it will be created) or defined the same way;
 * HV_ERROR_UNSUPPORTED, naming the network, when @dst defines it otherwise,
 * when another network there overlaps its subnet, or (external) when @dst
 * has no host bridge spec->bridge (virInterfaceLookupByName). */
gboolean hv_network_check_peer(HvConn *dst, const HvNetworkSpec *spec, GError **error);

/* ---- NICs ----------------------------------------------------------------- */

typedef struct {
    char *network_id; /* joins libvirt network hv_network_libvirt_name(network_id) */
    char *mac;        /* "52:54:00:xx:xx:xx" */
    char *gateway;    /* nat/isolated: the guard's gateway; NULL on external networks */
    /* nat/isolated: the operator's pool of tenant subnets to keep out of;
     * NULL: own_cidr alone */
    char *guard_cidr;
    char *own_cidr;  /* nat/isolated: the NIC's own subnet */
    gboolean filter; /* FALSE only on drivers without nwfilter (test backend) */
} HvNic;

HvNic *hv_nic_new(void);
void hv_nic_free(HvNic *nic);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvNic, hv_nic_free)

/* A random MAC in QEMU's 52:54:00 range (free it). */
char *hv_nic_random_mac(void);
/* Whether @mac is "xx:xx:xx:xx:xx:xx", lower-case hex, unicast. */
gboolean hv_nic_mac_is_valid(const char *mac);

/* The IPv4 address (dotted quad, owned) of each of the domain's NICs as
 * libvirt's DHCP leases know them (virDomainInterfaceAddresses, lease
 * source), keyed by MAC.  An inactive domain or a NIC without a lease is
 * simply absent. */
GHashTable *hv_domain_nic_addresses(HvConn *conn, const char *domain, GError **error);
