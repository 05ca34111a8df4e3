#include "api/network.h"

#include <string.h>

#include "api/error.h"
#include "api/json.h"

static const char *const network_keys[] = {"id",   "name",       "tenant",     "mode",
                                           "cidr", "gateway",    "bridge",     "shared_with",
                                           "nics", "created_at", "updated_at", NULL};
static const char *const create_keys[] = {"name", "mode", "cidr", "bridge", "shared_with", NULL};
static const char *const list_keys[] = {"networks", "next", NULL};
static const char *const modes[] = {API_NETWORK_MODES, NULL};

/* ---- lifetime ----------------------------------------------------------------- */

ApiNetwork *api_network_new(void)
{
    ApiNetwork *network = g_new0(ApiNetwork, 1);
    network->shared_with = g_ptr_array_new_with_free_func(g_free);
    return network;
}

void api_network_free(ApiNetwork *network)
{
    if (!network)
        return;
    g_free(network->id);
    g_free(network->name);
    g_free(network->tenant);
    g_free(network->mode);
    g_free(network->cidr);
    g_free(network->gateway);
    g_free(network->bridge);
    g_ptr_array_unref(network->shared_with);
    g_free(network->created_at);
    g_free(network->updated_at);
    g_free(network);
}

/* ---- value rules ---------------------------------------------------------------- */

/* One decimal octet: 1-3 digits, no leading zero (which some parsers read
 * as octal), at most 255.  Advances *@text past it. */
static gboolean parse_octet(const char **text, guint32 *octet)
{
    const char *p = *text;
    guint value = 0;
    int digits = 0;
    while (g_ascii_isdigit(*p) && digits < 4) {
        value = value * 10 + (guint)(*p - '0');
        p++;
        digits++;
    }
    if (digits == 0 || digits > 3 || value > 255 || (digits > 1 && **text == '0'))
        return FALSE;
    *octet = value;
    *text = p;
    return TRUE;
}

gboolean api_network_check_cidr(const char *path, const char *cidr, GError **error)
{
    const char *p = cidr;
    guint32 address = 0;
    for (int i = 0; i < 4; i++) {
        guint32 octet = 0;
        if (!parse_octet(&p, &octet) || *p != (i < 3 ? '.' : '/')) {
            api_json_set_invalid(error, path, "must be an IPv4 subnet like 10.200.3.0/24");
            return FALSE;
        }
        address = address << 8 | octet;
        p++;
    }
    guint32 prefix = 0;
    if (!parse_octet(&p, &prefix) || *p != '\0' || prefix > 32) {
        api_json_set_invalid(error, path, "must be an IPv4 subnet like 10.200.3.0/24");
        return FALSE;
    }
    if (prefix < API_NETWORK_PREFIX_MIN || prefix > API_NETWORK_PREFIX_MAX) {
        api_json_set_invalid(error, path,
                             "prefix /%u is out of range: a tenant subnet is /%d to /%d (a /%d "
                             "leaves a gateway and five addresses; smaller ones leave no room "
                             "for DHCP)",
                             prefix, API_NETWORK_PREFIX_MIN, API_NETWORK_PREFIX_MAX,
                             API_NETWORK_PREFIX_MAX);
        return FALSE;
    }
    guint32 mask = 0xffffffffu << (32 - prefix);
    if ((address & ~mask) != 0) {
        guint32 base = address & mask;
        api_json_set_invalid(error, path, "host bits are set: did you mean %u.%u.%u.%u/%u?",
                             base >> 24, (base >> 16) & 0xff, (base >> 8) & 0xff, base & 0xff,
                             prefix);
        return FALSE;
    }
    const struct {
        guint32 net;
        guint prefix;
        const char *what;
    } reserved[] = {
        {0x00000000u, 8, "0.0.0.0/8 (this host)"},
        {0x7f000000u, 8, "127.0.0.0/8 (loopback)"},
        {0xa9fe0000u, 16, "169.254.0.0/16 (link-local)"},
        {0xe0000000u, 3, "224.0.0.0/3 (multicast and reserved)"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(reserved); i++) {
        guint shorter = MIN(prefix, reserved[i].prefix);
        guint32 m = 0xffffffffu << (32 - shorter);
        if ((address & m) == (reserved[i].net & m)) {
            api_json_set_invalid(error, path, "overlaps %s", reserved[i].what);
            return FALSE;
        }
    }
    return TRUE;
}

/* A Linux interface name: 1..15 bytes, no '/', no whitespace, not "." or
 * "..".  Kept to letters, digits and "_.-" so it is safe in any message. */
static gboolean check_bridge(const char *path, const char *bridge, GError **error)
{
    gsize len = strlen(bridge);
    gboolean ok = len > 0 && len <= API_NETWORK_BRIDGE_MAX && !g_str_equal(bridge, ".") &&
                  !g_str_equal(bridge, "..");
    for (const char *p = bridge; ok && *p; p++)
        ok = g_ascii_isalnum(*p) || *p == '_' || *p == '.' || *p == '-';
    if (!ok)
        api_json_set_invalid(error, path,
                             "must be a host interface name: 1 to %d letters, digits, '_', '.' "
                             "or '-'",
                             API_NETWORK_BRIDGE_MAX);
    return ok;
}

static gboolean decode_names(json_object *array, const char *path, GPtrArray *names, GError **error)
{
    size_t n = json_object_array_length(array);
    if (n > API_NETWORK_SHARED_MAX) {
        api_json_set_invalid(error, path, "must have at most %d entries", API_NETWORK_SHARED_MAX);
        return FALSE;
    }
    for (size_t i = 0; i < n; i++) {
        g_autofree char *item_path = api_json_path_index(path, i);
        g_autofree char *name = NULL;
        if (!api_json_value_string(json_object_array_get_idx(array, i), item_path,
                                   API_JSON_REQUIRED, &name, error) ||
            !api_json_check_name(item_path, name, error))
            return FALSE;
        for (guint j = 0; j < names->len; j++) {
            if (g_str_equal(g_ptr_array_index(names, j), name)) {
                api_json_set_invalid(error, item_path, "'%s' is named twice", name);
                return FALSE;
            }
        }
        g_ptr_array_add(names, g_steal_pointer(&name));
    }
    return TRUE;
}

/* ---- JSON ------------------------------------------------------------------------ */

ApiNetwork *api_network_create_from_json(json_object *value, GError **error)
{
    const ApiJsonFlags opt = API_JSON_OPTIONAL;
    g_autoptr(ApiNetwork) network = api_network_new();
    json_object *shared = NULL;

    if (!api_json_check_object(value, "", create_keys, error) ||
        !api_json_get_string(value, "", "name", API_JSON_REQUIRED, &network->name, error) ||
        !api_json_check_name("name", network->name, error) ||
        !api_json_get_string(value, "", "mode", API_JSON_REQUIRED, &network->mode, error) ||
        !api_json_check_choice("mode", network->mode, modes, error) ||
        !api_json_get_string(value, "", "cidr", opt, &network->cidr, error) ||
        !api_json_get_string(value, "", "bridge", opt, &network->bridge, error) ||
        !api_json_get_array(value, "", "shared_with", opt, &shared, error))
        return NULL;

    if (g_str_equal(network->mode, "external")) {
        if (network->cidr) {
            api_json_set_invalid(error, "cidr",
                                 "an external network has no subnet of ours: its host bridge's "
                                 "network decides addresses");
            return NULL;
        }
        if (!network->bridge) {
            api_json_set_invalid(error, "bridge",
                                 "is required for an external network (the host bridge)");
            return NULL;
        }
        if (!check_bridge("bridge", network->bridge, error) ||
            (shared && !decode_names(shared, "shared_with", network->shared_with, error)))
            return NULL;
        return g_steal_pointer(&network);
    }
    if (network->bridge || shared) {
        api_json_set_invalid(error, network->bridge ? "bridge" : "shared_with",
                             "is only for external networks; a %s network gets a bridge of "
                             "its own",
                             network->mode);
        return NULL;
    }
    if (network->cidr && !api_network_check_cidr("cidr", network->cidr, error))
        return NULL;
    return g_steal_pointer(&network);
}

json_object *api_network_to_json(const ApiNetwork *network)
{
    g_return_val_if_fail(network != NULL, NULL);

    json_object *shared = json_object_new_array();
    for (guint i = 0; i < network->shared_with->len; i++)
        json_object_array_add(shared,
                              json_object_new_string(g_ptr_array_index(network->shared_with, i)));
    json_object *root = json_object_new_object();
    json_object_object_add(root, "id", api_json_new_string_or_null(network->id));
    json_object_object_add(root, "name", api_json_new_string_or_null(network->name));
    json_object_object_add(root, "tenant", api_json_new_string_or_null(network->tenant));
    json_object_object_add(root, "mode", api_json_new_string_or_null(network->mode));
    json_object_object_add(root, "cidr", api_json_new_string_or_null(network->cidr));
    json_object_object_add(root, "gateway", api_json_new_string_or_null(network->gateway));
    json_object_object_add(root, "bridge", api_json_new_string_or_null(network->bridge));
    json_object_object_add(root, "shared_with", shared);
    json_object_object_add(root, "nics", json_object_new_int64(network->nics));
    json_object_object_add(root, "created_at", api_json_new_string_or_null(network->created_at));
    json_object_object_add(root, "updated_at", api_json_new_string_or_null(network->updated_at));
    return root;
}

json_object *api_network_list_to_json(const GPtrArray *networks, const char *next)
{
    json_object *list = json_object_new_array();
    for (guint i = 0; networks && i < networks->len; i++)
        json_object_array_add(list, api_network_to_json(g_ptr_array_index(networks, i)));
    json_object *root = json_object_new_object();
    json_object_object_add(root, "networks", list);
    json_object_object_add(root, "next", api_json_new_string_or_null(next));
    return root;
}

ApiNetwork *api_network_from_json(json_object *value, GError **error)
{
    const ApiJsonFlags req = API_JSON_REQUIRED;
    const ApiJsonFlags null = API_JSON_REQUIRED | API_JSON_NULLABLE;
    g_autoptr(ApiNetwork) network = api_network_new();
    json_object *shared = NULL;

    if (!api_json_check_object(value, "", network_keys, error) ||
        !api_json_get_string(value, "", "id", req, &network->id, error) ||
        !api_json_check_uuid("id", network->id, error) ||
        !api_json_get_string(value, "", "name", req, &network->name, error) ||
        !api_json_check_name("name", network->name, error) ||
        !api_json_get_string(value, "", "tenant", null, &network->tenant, error) ||
        !api_json_get_string(value, "", "mode", req, &network->mode, error) ||
        !api_json_check_choice("mode", network->mode, modes, error) ||
        !api_json_get_string(value, "", "cidr", null, &network->cidr, error) ||
        !api_json_get_string(value, "", "gateway", null, &network->gateway, error) ||
        !api_json_get_string(value, "", "bridge", null, &network->bridge, error) ||
        !api_json_get_array(value, "", "shared_with", req, &shared, error) ||
        !decode_names(shared, "shared_with", network->shared_with, error) ||
        !api_json_get_int(value, "", "nics", req, 0, G_MAXINT32, &network->nics, error) ||
        !api_json_get_string(value, "", "created_at", req, &network->created_at, error) ||
        !api_json_check_time("created_at", network->created_at, error) ||
        !api_json_get_string(value, "", "updated_at", req, &network->updated_at, error) ||
        !api_json_check_time("updated_at", network->updated_at, error))
        return NULL;
    return g_steal_pointer(&network);
}

GPtrArray *api_network_list_from_json(json_object *value, char **next, GError **error)
{
    g_return_val_if_fail(next != NULL, NULL);
    json_object *list = NULL;
    g_autofree char *cursor = NULL;

    if (!api_json_check_object(value, "", list_keys, error) ||
        !api_json_get_array(value, "", "networks", API_JSON_REQUIRED, &list, error) ||
        !api_json_get_string(value, "", "next", API_JSON_REQUIRED | API_JSON_NULLABLE, &cursor,
                             error))
        return NULL;

    g_autoptr(GPtrArray) networks =
        g_ptr_array_new_with_free_func((GDestroyNotify)api_network_free);
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *item = json_object_array_get_idx(list, i);
        g_autofree char *path = api_json_path_index("networks", i);
        if (!json_object_is_type(item, json_type_object)) {
            api_json_set_invalid(error, path, "must be an object");
            return NULL;
        }
        ApiNetwork *network = api_network_from_json(item, error);
        if (!network) {
            g_prefix_error(error, "%s.", path);
            return NULL;
        }
        g_ptr_array_add(networks, network);
    }
    *next = g_steal_pointer(&cursor);
    return g_steal_pointer(&networks);
}
