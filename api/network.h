/* Networks on the wire: a tenant's own ("nat", "isolated") and the
 * operator's "external" ones, shared with the tenants it names.
 * docs/api.md "Networks". */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#define API_NETWORK_MODES "nat", "isolated", "external"
/* The prefixes a tenant subnet may have: a /29 leaves a gateway and five
 * DHCP addresses; smaller ones (/30, /31, /32) leave no room. */
#define API_NETWORK_PREFIX_MIN 16
#define API_NETWORK_PREFIX_MAX 29
/* A host bridge's name is a Linux interface name: 1..15 bytes. */
#define API_NETWORK_BRIDGE_MAX 15
#define API_NETWORK_SHARED_MAX 256

typedef struct {
    char *id;
    char *name;
    char *tenant;           /* owner; NULL for external networks */
    char *mode;             /* "nat", "isolated", "external" */
    char *cidr;             /* NULL for external */
    char *gateway;          /* NULL for external (reported) */
    char *bridge;           /* the host bridge (external), or the one libvirt made (reported) */
    GPtrArray *shared_with; /* external: tenant names (char *); never NULL */
    gint64 nics;            /* NICs of stacks on it (reported) */
    char *created_at;
    char *updated_at;
} ApiNetwork;

ApiNetwork *api_network_new(void);
void api_network_free(ApiNetwork *network);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiNetwork, api_network_free)

/* POST /v1/networks: {"name","mode":"nat"|"isolated","cidr"?} (a tenant's)
 * or {"name","mode":"external","bridge","shared_with":[tenant names]} (the
 * operator's).  Checks shape and values: the mode's fields only, the
 * cidr's form (api_network_check_cidr), the bridge's name, tenant names
 * without repeats.  Who may create which mode is the caller's rule. */
ApiNetwork *api_network_create_from_json(json_object *value, GError **error);

/* "a.b.c.d/p": four decimal octets, API_NETWORK_PREFIX_MIN <= p <=
 * API_NETWORK_PREFIX_MAX, no host bits set, not in a range no tenant
 * subnet may take (0/8, loopback 127/8, link-local 169.254/16, multicast
 * and reserved 224/3).  Messages start with @path. */
gboolean api_network_check_cidr(const char *path, const char *cidr, GError **error);

/* {"id","name","tenant","mode","cidr","gateway","bridge","shared_with",
 * "nics","created_at","updated_at"} */
json_object *api_network_to_json(const ApiNetwork *network);
/* {"networks":[...],"next":CURSOR|null} */
json_object *api_network_list_to_json(const GPtrArray *networks, const char *next);
ApiNetwork *api_network_from_json(json_object *value, GError **error);
GPtrArray *api_network_list_from_json(json_object *value, char **next, GError **error);
