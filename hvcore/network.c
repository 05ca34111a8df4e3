#define G_LOG_DOMAIN "hv-network"

#include "hvcore/network.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <libxml/xpathInternals.h>

#include "hvcore/error.h"
#include "hvcore/libvirt-private.h"
#include "hvcore/xml-private.h"

/* ---- modes, specs, names -------------------------------------------------- */

static const char *const modes[] = {
    [HV_NETWORK_NAT] = "nat",
    [HV_NETWORK_ISOLATED] = "isolated",
    [HV_NETWORK_EXTERNAL] = "external",
};

const char *hv_network_mode_to_string(HvNetworkMode mode)
{
    return (guint)mode < G_N_ELEMENTS(modes) ? modes[mode] : "unknown";
}

gboolean hv_network_mode_from_string(const char *text, HvNetworkMode *mode)
{
    for (guint i = 0; text && i < G_N_ELEMENTS(modes); i++) {
        if (g_str_equal(text, modes[i])) {
            *mode = (HvNetworkMode)i;
            return TRUE;
        }
    }
    return FALSE;
}

HvNetworkSpec *hv_network_spec_new(void)
{
    HvNetworkSpec *spec = g_new0(HvNetworkSpec, 1);

    spec->shared_with = g_ptr_array_new_with_free_func(g_free);
    return spec;
}

HvNetworkSpec *hv_network_spec_copy(const HvNetworkSpec *spec)
{
    HvNetworkSpec *copy;

    g_return_val_if_fail(spec != NULL, NULL);
    copy = hv_network_spec_new();
    copy->id = g_strdup(spec->id);
    copy->name = g_strdup(spec->name);
    copy->tenant = g_strdup(spec->tenant);
    copy->mode = spec->mode;
    copy->cidr = g_strdup(spec->cidr);
    copy->bridge = g_strdup(spec->bridge);
    for (guint i = 0; spec->shared_with && i < spec->shared_with->len; i++)
        g_ptr_array_add(copy->shared_with, g_strdup(g_ptr_array_index(spec->shared_with, i)));
    return copy;
}

void hv_network_spec_free(HvNetworkSpec *spec)
{
    if (!spec)
        return;
    g_free(spec->id);
    g_free(spec->name);
    g_free(spec->tenant);
    g_free(spec->cidr);
    g_free(spec->bridge);
    if (spec->shared_with)
        g_ptr_array_unref(spec->shared_with);
    g_free(spec);
}

char *hv_network_libvirt_name(const char *network_id)
{
    g_return_val_if_fail(network_id != NULL, NULL);
    return g_strconcat(HV_NETWORK_NAME_PREFIX, network_id, NULL);
}

char *hv_network_bridge_for(const char *network_id)
{
    GString *bridge = g_string_new(HV_NETWORK_BRIDGE_PREFIX);

    g_return_val_if_fail(network_id != NULL, NULL);
    for (const char *p = network_id; *p && bridge->len < strlen(HV_NETWORK_BRIDGE_PREFIX) + 12;
         p++) {
        if (g_ascii_isxdigit(*p))
            g_string_append_c(bridge, g_ascii_tolower(*p));
    }
    return g_string_free(bridge, FALSE);
}

/* ---- IPv4 subnets --------------------------------------------------------- */

static guint32 prefix_mask(guint prefix)
{
    return prefix == 0 ? 0 : G_MAXUINT32 << (32 - prefix);
}

/* A decimal number of at most @digits digits, no sign, no leading zero. */
static gboolean parse_decimal(const char *text, gsize len, guint max, guint *value)
{
    guint n = 0;

    if (len == 0 || len > 3 || (len > 1 && text[0] == '0'))
        return FALSE;
    for (gsize i = 0; i < len; i++) {
        if (!g_ascii_isdigit(text[i]))
            return FALSE;
        n = n * 10 + (guint)(text[i] - '0');
    }
    if (n > max)
        return FALSE;
    *value = n;
    return TRUE;
}

/* Four dots-separated decimal octets and nothing else. */
static gboolean parse_address(const char *text, gsize len, guint32 *address)
{
    guint32 result = 0;
    gsize start = 0;
    guint octets = 0;

    for (gsize i = 0; i <= len; i++) {
        guint octet;

        if (i < len && text[i] != '.')
            continue;
        if (octets == 4 || !parse_decimal(text + start, i - start, 255, &octet))
            return FALSE;
        result = (result << 8) | octet;
        octets++;
        start = i + 1;
    }
    if (octets != 4)
        return FALSE;
    *address = result;
    return TRUE;
}

gboolean hv_ipv4_cidr_parse(const char *cidr, guint32 *address, guint *prefix, GError **error)
{
    const char *slash = cidr ? strchr(cidr, '/') : NULL;
    guint32 addr;
    guint bits;

    if (!slash || !parse_address(cidr, (gsize)(slash - cidr), &addr) ||
        !parse_decimal(slash + 1, strlen(slash + 1), 32, &bits)) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                    "'%s' is not an IPv4 subnet a.b.c.d/p (decimal, 0 <= p <= 32)",
                    cidr ? cidr : "(null)");
        return FALSE;
    }
    if (addr & ~prefix_mask(bits)) {
        g_autofree char *net = hv_ipv4_to_string(addr & prefix_mask(bits));

        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "'%s': host bits set: did you mean %s/%u?",
                    cidr, net, bits);
        return FALSE;
    }
    if (address)
        *address = addr;
    if (prefix)
        *prefix = bits;
    return TRUE;
}

gboolean hv_ipv4_cidr_overlap(guint32 a, guint a_prefix, guint32 b, guint b_prefix)
{
    guint32 mask = prefix_mask(MIN(MIN(a_prefix, b_prefix), 32));

    return (a & mask) == (b & mask);
}

char *hv_ipv4_to_string(guint32 address)
{
    return g_strdup_printf("%u.%u.%u.%u", address >> 24, (address >> 16) & 0xff,
                           (address >> 8) & 0xff, address & 0xff);
}

static char *cidr_to_string(guint32 address, guint prefix)
{
    g_autofree char *text = hv_ipv4_to_string(address & prefix_mask(prefix));

    return g_strdup_printf("%s/%u", text, prefix);
}

/* A tenant subnet needs a gateway and at least one DHCP address. */
#define TENANT_PREFIX_MAX 30

char *hv_network_gateway(const char *cidr)
{
    guint32 address;
    guint prefix;

    if (!hv_ipv4_cidr_parse(cidr, &address, &prefix, NULL) || prefix > TENANT_PREFIX_MAX)
        return NULL;
    return hv_ipv4_to_string(address + 1);
}

/* The prefix length of a contiguous netmask; FALSE for any other. */
static gboolean netmask_prefix(guint32 mask, guint *prefix)
{
    guint bits = (guint)__builtin_popcount(mask);

    if (mask != prefix_mask(bits))
        return FALSE;
    *prefix = bits;
    return TRUE;
}

static void add_unique(GPtrArray *list, char *text)
{
    if (g_ptr_array_find_with_equal_func(list, text, g_str_equal, NULL))
        g_free(text);
    else
        g_ptr_array_add(list, text);
}

GPtrArray *hv_host_ipv4_cidrs(GError **error)
{
    struct ifaddrs *addrs = NULL;
    GPtrArray *list;

    if (getifaddrs(&addrs) < 0) {
        int saved = errno;

        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot list this host's addresses: %s",
                    g_strerror(saved));
        return NULL;
    }
    list = g_ptr_array_new_with_free_func(g_free);
    for (struct ifaddrs *ifa = addrs; ifa; ifa = ifa->ifa_next) {
        guint32 address, mask;
        guint prefix;

        if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != AF_INET || !ifa->ifa_netmask)
            continue;
        address = ntohl(((const struct sockaddr_in *)(const void *)ifa->ifa_addr)->sin_addr.s_addr);
        mask = ntohl(((const struct sockaddr_in *)(const void *)ifa->ifa_netmask)->sin_addr.s_addr);
        if (!netmask_prefix(mask, &prefix))
            continue;
        add_unique(list, cidr_to_string(address, prefix));
    }
    freeifaddrs(addrs);
    return list;
}

/* ---- network XML ---------------------------------------------------------- */

/* XML 1.0 text: libxml2 would write other characters as references that no
 * parser, libvirt's included, accepts. */
static gboolean check_text(const char *field, const char *text, gboolean required, GError **error)
{
    if (!text || !text[0]) {
        if (!required)
            return TRUE;
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "network %s is required", field);
        return FALSE;
    }
    if (g_utf8_validate(text, -1, NULL)) {
        const char *p;

        for (p = text; *p; p = g_utf8_next_char(p)) {
            gunichar c = g_utf8_get_char(p);

            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0xFFFE || c == 0xFFFF)
                break;
        }
        if (!*p)
            return TRUE;
    }
    g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                "network %s is not valid UTF-8 or contains characters XML cannot carry", field);
    return FALSE;
}

/* Linux interface names: 1..15 bytes, no '/', ':' or white space. */
static gboolean is_bridge_name(const char *name)
{
    gsize len = name ? strlen(name) : 0;

    if (len == 0 || len > 15 || g_str_equal(name, ".") || g_str_equal(name, ".."))
        return FALSE;
    for (gsize i = 0; i < len; i++) {
        if (!g_ascii_isalnum(name[i]) && !strchr("-_.", name[i]))
            return FALSE;
    }
    return TRUE;
}

/* The bridge @spec's network uses (free it). */
static char *spec_bridge(const HvNetworkSpec *spec)
{
    if (spec->bridge || spec->mode == HV_NETWORK_EXTERNAL)
        return g_strdup(spec->bridge);
    return hv_network_bridge_for(spec->id);
}

static gboolean check_spec(const HvNetworkSpec *spec, GError **error)
{
    g_autofree char *bridge = NULL;

    if (!spec->id || !g_uuid_string_is_valid(spec->id)) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "network id is not a UUID: '%s'",
                    spec->id ? spec->id : "(null)");
        return FALSE;
    }
    if ((guint)spec->mode >= G_N_ELEMENTS(modes)) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "network mode %d is unknown",
                    (int)spec->mode);
        return FALSE;
    }
    if (!check_text("name", spec->name, TRUE, error) ||
        !check_text("tenant", spec->tenant, spec->mode != HV_NETWORK_EXTERNAL, error))
        return FALSE;
    for (guint i = 0; i < spec->shared_with->len; i++) {
        if (!check_text("shared_with", g_ptr_array_index(spec->shared_with, i), TRUE, error))
            return FALSE;
    }
    if (spec->mode != HV_NETWORK_EXTERNAL) {
        guint prefix;

        if (!hv_ipv4_cidr_parse(spec->cidr, NULL, &prefix, error))
            return FALSE;
        if (prefix > TENANT_PREFIX_MAX) {
            g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                        "network subnet '%s' is too small: at most /%d (a gateway and DHCP)",
                        spec->cidr, TENANT_PREFIX_MAX);
            return FALSE;
        }
    } else if (spec->cidr && !hv_ipv4_cidr_parse(spec->cidr, NULL, NULL, error)) {
        return FALSE;
    }
    bridge = spec_bridge(spec);
    if (!is_bridge_name(bridge)) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                    "network bridge '%s' is not an interface name (1-15 of [A-Za-z0-9_.-])",
                    bridge ? bridge : "(none)");
        return FALSE;
    }
    return TRUE;
}

static void add_metadata(xmlNodePtr network, const HvNetworkSpec *spec)
{
    xmlNodePtr metadata = hv_xml_add(network, NULL, "metadata", NULL);
    xmlNodePtr ours = xmlNewChild(metadata, NULL, BAD_CAST "network", NULL);
    xmlNsPtr ns =
        xmlNewNs(ours, BAD_CAST HV_NETWORK_METADATA_URI, BAD_CAST HV_NETWORK_METADATA_PREFIX);

    xmlSetNs(ours, ns);
    hv_xml_add(ours, ns, "id", spec->id);
    hv_xml_add(ours, ns, "name", spec->name);
    if (spec->tenant)
        hv_xml_add(ours, ns, "tenant", spec->tenant);
    hv_xml_add(ours, ns, "mode", hv_network_mode_to_string(spec->mode));
    if (spec->cidr)
        hv_xml_add(ours, ns, "cidr", spec->cidr);
    if (spec->shared_with->len > 0) {
        xmlNodePtr shared = hv_xml_add(ours, ns, "shared-with", NULL);

        for (guint i = 0; i < spec->shared_with->len; i++)
            hv_xml_add(shared, ns, "tenant", g_ptr_array_index(spec->shared_with, i));
    }
}

/* <ip address='GW' prefix='P'><dhcp><range start='second' end='last but one'/></dhcp></ip> */
static void add_ip(xmlNodePtr network, const char *cidr)
{
    guint32 address = 0, last;
    guint prefix = 0;

    hv_ipv4_cidr_parse(cidr, &address, &prefix, NULL); /* checked already */
    last = address | ~prefix_mask(prefix);
    g_autofree char *gateway = hv_ipv4_to_string(address + 1);
    g_autofree char *start = hv_ipv4_to_string(address + 2);
    g_autofree char *end = hv_ipv4_to_string(last - 1);
    g_autofree char *bits = g_strdup_printf("%u", prefix);
    xmlNodePtr ip = hv_xml_add(network, NULL, "ip", NULL);
    xmlNodePtr range;

    hv_xml_set(ip, "address", gateway);
    hv_xml_set(ip, "prefix", bits);
    range = hv_xml_add(hv_xml_add(ip, NULL, "dhcp", NULL), NULL, "range", NULL);
    hv_xml_set(range, "start", start);
    hv_xml_set(range, "end", end);
}

/* 52:54:00 and three bytes of the id's SHA-256. */
static char *bridge_mac(const char *network_id)
{
    g_autofree char *hash = g_compute_checksum_for_string(G_CHECKSUM_SHA256, network_id, -1);
    return g_strdup_printf("52:54:00:%c%c:%c%c:%c%c", hash[0], hash[1], hash[2], hash[3], hash[4],
                           hash[5]);
}

char *hv_network_build_xml(const HvNetworkSpec *spec, GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;
    g_autofree char *name = NULL;
    g_autofree char *bridge_name = NULL;
    xmlNodePtr network, bridge;

    g_return_val_if_fail(spec != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    if (!check_spec(spec, error))
        return NULL;
    doc = hv_xml_new_doc("network", &network);
    name = hv_network_libvirt_name(spec->id);
    bridge_name = spec_bridge(spec);
    hv_xml_add(network, NULL, "name", name);
    hv_xml_add(network, NULL, "uuid", spec->id);
    add_metadata(network, spec);
    if (spec->mode == HV_NETWORK_NAT)
        hv_xml_set(hv_xml_add(network, NULL, "forward", NULL), "mode", "nat");
    else if (spec->mode == HV_NETWORK_EXTERNAL)
        hv_xml_set(hv_xml_add(network, NULL, "forward", NULL), "mode", "bridge");
    bridge = hv_xml_add(network, NULL, "bridge", NULL);
    hv_xml_set(bridge, "name", bridge_name);
    if (spec->mode == HV_NETWORK_EXTERNAL)
        return hv_xml_serialize(doc, "network", error);
    hv_xml_set(bridge, "stp", "on");
    hv_xml_set(bridge, "delay", "0");
    /* The gateway's MAC follows from the id: the same on every host, so
     * an L1 that migrates keeps reaching its gateway without a new ARP. */
    g_autofree char *mac = bridge_mac(spec->id);
    hv_xml_set(hv_xml_add(network, NULL, "mac", NULL), "address", mac);
    if (spec->mode == HV_NETWORK_ISOLATED)
        hv_xml_set(hv_xml_add(network, NULL, "dns", NULL), "enable", "no");
    add_ip(network, spec->cidr);
    return hv_xml_serialize(doc, "network", error);
}

static xmlXPathContextPtr new_context(xmlDocPtr doc, GError **error)
{
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);

    if (!ctx || xmlXPathRegisterNs(ctx, BAD_CAST "t", BAD_CAST HV_NETWORK_METADATA_URI) != 0) {
        if (ctx)
            xmlXPathFreeContext(ctx);
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot set up XPath");
        return NULL;
    }
    return ctx;
}

HvNetworkSpec *hv_network_parse_xml(const char *network_xml, GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(xmlXPathContext) ctx = NULL;
    g_autoptr(xmlXPathObject) ours = NULL;
    g_autoptr(xmlXPathObject) shared = NULL;
    g_autoptr(HvNetworkSpec) spec = NULL;
    g_autofree char *mode = NULL;

    g_return_val_if_fail(network_xml != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    doc = hv_xml_read(network_xml, "network", "network", error);
    if (!doc)
        return NULL;
    ctx = new_context(doc, error);
    if (!ctx)
        return NULL;
    ours = xmlXPathEvalExpression(BAD_CAST "/network/metadata/t:network", ctx);
    if (!ours || !ours->nodesetval || ours->nodesetval->nodeNr == 0) {
        g_set_error(error, HV_ERROR, HV_ERROR_NOT_FOUND, "network has no %s metadata",
                    HV_NETWORK_METADATA_URI);
        return NULL;
    }
    if (ours->nodesetval->nodeNr > 1) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "network has %d %s metadata elements",
                    ours->nodesetval->nodeNr, HV_NETWORK_METADATA_URI);
        return NULL;
    }
    ctx->node = ours->nodesetval->nodeTab[0];
    spec = hv_network_spec_new();
    spec->id = hv_xml_string(ctx, "string(t:id)");
    spec->name = hv_xml_string(ctx, "string(t:name)");
    spec->tenant = hv_xml_string(ctx, "string(t:tenant)");
    spec->cidr = hv_xml_string(ctx, "string(t:cidr)");
    spec->bridge = hv_xml_string(ctx, "string(/network/bridge/@name)");
    mode = hv_xml_string(ctx, "string(t:mode)");
    if (!spec->id || !spec->name || !hv_network_mode_from_string(mode, &spec->mode)) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                    "network metadata lacks an id, a name or a known mode ('%s')",
                    mode ? mode : "");
        return NULL;
    }
    shared = xmlXPathEvalExpression(BAD_CAST "t:shared-with/t:tenant", ctx);
    for (int i = 0; shared && shared->nodesetval && i < shared->nodesetval->nodeNr; i++) {
        xmlChar *text = xmlNodeGetContent(shared->nodesetval->nodeTab[i]);

        if (text && *text)
            g_ptr_array_add(spec->shared_with, g_strdup((const char *)text));
        xmlFree(text);
    }
    return g_steal_pointer(&spec);
}

/* ---- what a libvirt network is ---------------------------------------------- */

/* What a network's own XML says, metadata aside. */
typedef struct {
    char *forward; /* forward mode; NULL without <forward> */
    char *bridge;
    GPtrArray *cidrs; /* of char *: its IPv4 <ip> subnets */
} NetworkFacts;

static void network_facts_clear(NetworkFacts *facts)
{
    g_free(facts->forward);
    g_free(facts->bridge);
    if (facts->cidrs)
        g_ptr_array_unref(facts->cidrs);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(NetworkFacts, network_facts_clear)

static gboolean parse_facts(const char *xml, NetworkFacts *facts, GError **error)
{
    g_autoptr(xmlDoc) doc = hv_xml_read(xml, "network", "network", error);
    g_autoptr(xmlXPathContext) ctx = NULL;
    g_autoptr(xmlXPathObject) ips = NULL;

    if (!doc)
        return FALSE;
    ctx = new_context(doc, error);
    if (!ctx)
        return FALSE;
    facts->forward = hv_xml_string(ctx, "string(/network/forward/@mode)");
    facts->bridge = hv_xml_string(ctx, "string(/network/bridge/@name)");
    facts->cidrs = g_ptr_array_new_with_free_func(g_free);
    ips = xmlXPathEvalExpression(BAD_CAST "/network/ip[not(@family) or @family='ipv4']", ctx);
    for (int i = 0; ips && ips->nodesetval && i < ips->nodesetval->nodeNr; i++) {
        g_autofree char *address = NULL;
        g_autofree char *prefix_text = NULL;
        g_autofree char *netmask = NULL;
        guint32 addr, mask;
        guint prefix = 0;

        ctx->node = ips->nodesetval->nodeTab[i];
        address = hv_xml_string(ctx, "string(@address)");
        prefix_text = hv_xml_string(ctx, "string(@prefix)");
        netmask = hv_xml_string(ctx, "string(@netmask)");
        if (!address || !parse_address(address, strlen(address), &addr))
            continue;
        if (prefix_text) {
            if (!parse_decimal(prefix_text, strlen(prefix_text), 32, &prefix))
                continue;
        } else if (netmask) {
            if (!parse_address(netmask, strlen(netmask), &mask) || !netmask_prefix(mask, &prefix))
                continue;
        } else {
            continue; /* libvirt always writes one of them */
        }
        add_unique(facts->cidrs, cidr_to_string(addr, prefix));
    }
    return TRUE;
}

/* Why the network defined as @xml with @uuid is not @spec's, or NULL. */
static char *conflict(const HvNetworkSpec *spec, const char *uuid, const char *xml, GError **error)
{
    g_auto(NetworkFacts) facts = {0};
    g_autofree char *bridge = spec_bridge(spec);
    const char *want_forward = spec->mode == HV_NETWORK_NAT        ? "nat"
                               : spec->mode == HV_NETWORK_EXTERNAL ? "bridge"
                                                                   : NULL;

    if (!parse_facts(xml, &facts, error))
        return NULL;
    if (g_ascii_strcasecmp(uuid, spec->id) != 0)
        return g_strdup_printf("its UUID is %s", uuid);
    if (g_strcmp0(facts.forward, want_forward) != 0)
        return g_strdup_printf(
            "its forward mode is '%s', not '%s' (%s)", facts.forward ? facts.forward : "none",
            want_forward ? want_forward : "none", hv_network_mode_to_string(spec->mode));
    if (g_strcmp0(facts.bridge, bridge) != 0)
        return g_strdup_printf("its bridge is '%s', not '%s'", facts.bridge ? facts.bridge : "",
                               bridge);
    if (spec->mode != HV_NETWORK_EXTERNAL &&
        (facts.cidrs->len != 1 || g_strcmp0(g_ptr_array_index(facts.cidrs, 0), spec->cidr) != 0))
        return g_strdup_printf("its subnet is '%s', not '%s'",
                               facts.cidrs->len ? (char *)g_ptr_array_index(facts.cidrs, 0) : "",
                               spec->cidr);
    return g_strdup("");
}

/* The persistent definition of @net, or its live XML where the driver knows
 * no VIR_NETWORK_XML_INACTIVE (test:///default). */
static char *network_xml_desc(virNetworkPtr net)
{
    char *xml = virNetworkGetXMLDesc(net, VIR_NETWORK_XML_INACTIVE);

    if (!xml && virGetLastErrorCode() == VIR_ERR_INVALID_ARG)
        xml = virNetworkGetXMLDesc(net, 0);
    return xml;
}

static char *network_xml(virNetworkPtr net, const char *name, GError **error)
{
    char *xml = network_xml_desc(net);

    if (!xml)
        hv_libvirt_set_error(error, "cannot read the definition of network '%s'", name);
    return xml;
}

/* Whether the defined network @net is @spec's: TRUE when it is; FALSE with
 * @code (naming the network) when it is not, or with libvirt's error. */
static gboolean check_existing(virNetworkPtr net, const HvNetworkSpec *spec, const char *name,
                               int code, GError **error)
{
    char uuid[VIR_UUID_STRING_BUFLEN];
    g_autofree char *xml = NULL;
    g_autofree char *why = NULL;

    if (virNetworkGetUUIDString(net, uuid) < 0) {
        hv_libvirt_set_error(error, "cannot read the UUID of network '%s'", name);
        return FALSE;
    }
    xml = network_xml(net, name, error);
    if (!xml)
        return FALSE;
    why = conflict(spec, uuid, xml, error);
    if (!why)
        return FALSE;
    if (!why[0])
        return TRUE;
    g_set_error(error, HV_ERROR, code,
                "libvirt network '%s' (network '%s') exists with another definition: %s", name,
                spec->name, why);
    return FALSE;
}

/* ---- ensure, remove, list --------------------------------------------------- */

/* Autostart and active; FALSE with libvirt's error. */
static gboolean start_network(virNetworkPtr net, const char *name, GError **error)
{
    int autostart = 0;
    int persistent = virNetworkIsPersistent(net);
    int active = virNetworkIsActive(net);

    if (persistent < 0 || active < 0 || virNetworkGetAutostart(net, &autostart) < 0) {
        hv_libvirt_set_error(error, "cannot read the state of network '%s'", name);
        return FALSE;
    }
    /* A transient network (made by hand) cannot autostart. */
    if (persistent && !autostart && virNetworkSetAutostart(net, 1) < 0) {
        hv_libvirt_set_error(error, "cannot mark network '%s' autostart", name);
        return FALSE;
    }
    if (!active && virNetworkCreate(net) < 0) {
        hv_libvirt_set_error(error, "cannot start network '%s'", name);
        return FALSE;
    }
    return TRUE;
}

gboolean hv_network_ensure(HvConn *conn_handle, const HvNetworkSpec *spec, gboolean *created,
                           GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_autoptr(virNetwork) net = NULL;
    g_autofree char *name = NULL;
    g_autofree char *xml = NULL;
    gboolean defined = FALSE;

    g_return_val_if_fail(conn != NULL && spec != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (created)
        *created = FALSE;
    xml = hv_network_build_xml(spec, error);
    if (!xml)
        return FALSE;
    name = hv_network_libvirt_name(spec->id);
    net = virNetworkLookupByName(conn, name);
    if (net) {
        if (!check_existing(net, spec, name, HV_ERROR_INVALID, error))
            return FALSE;
    } else {
        if (virGetLastErrorCode() != VIR_ERR_NO_NETWORK) {
            hv_libvirt_set_error(error, "cannot look up network '%s'", name);
            return FALSE;
        }
        net = virNetworkDefineXML(conn, xml);
        if (!net) {
            hv_libvirt_set_error(error, "cannot define network '%s' (%s)", name, spec->name);
            return FALSE;
        }
        defined = TRUE;
        g_debug("defined network %s (%s)", name, spec->name);
    }
    if (!start_network(net, name, error)) {
        if (defined && virNetworkUndefine(net) < 0)
            g_warning("cannot undefine network %s again: %s", name, virGetLastErrorMessage());
        return FALSE;
    }
    if (created)
        *created = defined;
    return TRUE;
}

gboolean hv_network_remove(HvConn *conn_handle, const char *network_id, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_autoptr(virNetwork) net = NULL;
    g_autofree char *name = NULL;
    int active, persistent;

    g_return_val_if_fail(conn != NULL && network_id != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    name = hv_network_libvirt_name(network_id);
    net = virNetworkLookupByName(conn, name);
    if (!net) {
        if (virGetLastErrorCode() == VIR_ERR_NO_NETWORK)
            return TRUE;
        hv_libvirt_set_error(error, "cannot look up network '%s'", name);
        return FALSE;
    }
    active = virNetworkIsActive(net);
    persistent = virNetworkIsPersistent(net);
    if (active < 0 || persistent < 0) {
        hv_libvirt_set_error(error, "cannot read the state of network '%s'", name);
        return FALSE;
    }
    if (active && virNetworkDestroy(net) < 0) {
        hv_libvirt_set_error(error, "cannot stop network '%s'", name);
        return FALSE;
    }
    if (persistent && virNetworkUndefine(net) < 0) {
        hv_libvirt_set_error(error, "cannot undefine network '%s'", name);
        return FALSE;
    }
    g_debug("removed network %s", name);
    return TRUE;
}

/* Every network of @conn; frees with free_networks. */
static int all_networks(virConnectPtr conn, virNetworkPtr **nets, GError **error)
{
    int n = virConnectListAllNetworks(conn, nets, 0);

    if (n < 0)
        hv_libvirt_set_error(error, "cannot list libvirt networks");
    return n;
}

static void free_networks(virNetworkPtr *nets, int n)
{
    for (int i = 0; i < n; i++)
        virNetworkFree(nets[i]);
    free(nets);
}

GPtrArray *hv_network_list_ours(HvConn *conn_handle, GPtrArray **active, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    virNetworkPtr *nets = NULL;
    GPtrArray *list, *states;
    int n;

    g_return_val_if_fail(conn != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    n = all_networks(conn, &nets, error);
    if (n < 0)
        return NULL;
    list = g_ptr_array_new_with_free_func((GDestroyNotify)hv_network_spec_free);
    states = g_ptr_array_new();
    for (int i = 0; i < n; i++) {
        const char *name = virNetworkGetName(nets[i]);
        g_autofree char *xml = network_xml_desc(nets[i]);
        g_autoptr(GError) local = NULL;
        HvNetworkSpec *spec;

        /* A network can vanish while we list: skip it, as one not ours. */
        if (!xml) {
            g_debug("cannot read network %s: %s", name, virGetLastErrorMessage());
            continue;
        }
        spec = hv_network_parse_xml(xml, &local);
        if (!spec) {
            if (!g_error_matches(local, HV_ERROR, HV_ERROR_NOT_FOUND))
                g_warning("network %s: %s", name, local->message);
            continue;
        }
        g_ptr_array_add(list, spec);
        g_ptr_array_add(states, GUINT_TO_POINTER(virNetworkIsActive(nets[i]) == 1));
    }
    free_networks(nets, n);
    if (active)
        *active = states;
    else
        g_ptr_array_unref(states);
    return list;
}

/* The IPv4 subnets of every network of @conn but @skip (may be NULL);
 * *@owners gets the network names, in parallel. */
static GPtrArray *network_cidrs(virConnectPtr conn, const char *skip, GPtrArray **owners,
                                GError **error)
{
    virNetworkPtr *nets = NULL;
    g_autoptr(GPtrArray) cidrs = NULL;
    g_autoptr(GPtrArray) names = NULL;
    int n = all_networks(conn, &nets, error);

    if (n < 0)
        return NULL;
    cidrs = g_ptr_array_new_with_free_func(g_free);
    names = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < n; i++) {
        const char *name = virNetworkGetName(nets[i]);
        g_autofree char *xml = NULL;
        g_auto(NetworkFacts) facts = {0};
        g_autoptr(GError) local = NULL;

        if (!name || g_strcmp0(name, skip) == 0)
            continue;
        /* The live XML: what the host routes now, and for an inactive
         * network its definition. */
        xml = virNetworkGetXMLDesc(nets[i], 0);
        if (!xml || !parse_facts(xml, &facts, &local)) {
            g_debug("cannot read network %s: %s", name,
                    local ? local->message : virGetLastErrorMessage());
            continue;
        }
        for (guint j = 0; j < facts.cidrs->len; j++) {
            if (g_ptr_array_find_with_equal_func(cidrs, g_ptr_array_index(facts.cidrs, j),
                                                 g_str_equal, NULL))
                continue;
            g_ptr_array_add(cidrs, g_strdup(g_ptr_array_index(facts.cidrs, j)));
            g_ptr_array_add(names, g_strdup(name));
        }
    }
    free_networks(nets, n);
    if (owners)
        *owners = g_steal_pointer(&names);
    return g_steal_pointer(&cidrs);
}

GPtrArray *hv_network_used_cidrs(HvConn *conn_handle, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);

    g_return_val_if_fail(conn != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);
    return network_cidrs(conn, NULL, NULL, error);
}

/* ---- peers ------------------------------------------------------------------ */

static gboolean check_peer_overlap(virConnectPtr dst, const HvNetworkSpec *spec, const char *name,
                                   GError **error)
{
    g_autoptr(GPtrArray) owners = NULL;
    g_autoptr(GPtrArray) cidrs = network_cidrs(dst, name, &owners, error);
    guint32 address;
    guint prefix;

    if (!cidrs)
        return FALSE;
    hv_ipv4_cidr_parse(spec->cidr, &address, &prefix, NULL); /* checked already */
    for (guint i = 0; i < cidrs->len; i++) {
        guint32 other;
        guint other_prefix;

        if (!hv_ipv4_cidr_parse(g_ptr_array_index(cidrs, i), &other, &other_prefix, NULL) ||
            !hv_ipv4_cidr_overlap(address, prefix, other, other_prefix))
            continue;
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "peer's libvirt network '%s' (%s) overlaps the subnet %s of network '%s'",
                    (char *)g_ptr_array_index(owners, i), (char *)g_ptr_array_index(cidrs, i),
                    spec->cidr, spec->name);
        return FALSE;
    }
    return TRUE;
}

static gboolean check_peer_bridge(virConnectPtr dst, const HvNetworkSpec *spec, GError **error)
{
    g_autoptr(virInterface) iface = virInterfaceLookupByName(dst, spec->bridge);

    if (iface)
        return TRUE;
    if (virGetLastErrorCode() == VIR_ERR_NO_INTERFACE) {
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "peer has no host bridge '%s' for network '%s'", spec->bridge, spec->name);
        return FALSE;
    }
    hv_libvirt_set_error(error, "cannot look up host bridge '%s' on the peer for network '%s'",
                         spec->bridge, spec->name);
    return FALSE;
}

gboolean hv_network_check_peer(HvConn *dst_handle, const HvNetworkSpec *spec, GError **error)
{
    virConnectPtr dst = hv_conn_get_libvirt(dst_handle);
    g_autoptr(virNetwork) net = NULL;
    g_autofree char *name = NULL;

    g_return_val_if_fail(dst != NULL && spec != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (!check_spec(spec, error))
        return FALSE;
    name = hv_network_libvirt_name(spec->id);
    net = virNetworkLookupByName(dst, name);
    if (net) {
        if (!check_existing(net, spec, name, HV_ERROR_UNSUPPORTED, error))
            return FALSE;
    } else if (virGetLastErrorCode() != VIR_ERR_NO_NETWORK) {
        hv_libvirt_set_error(error, "cannot look up network '%s' on the peer", name);
        return FALSE;
    }
    if (spec->mode == HV_NETWORK_EXTERNAL)
        return check_peer_bridge(dst, spec, error);
    return check_peer_overlap(dst, spec, name, error);
}

/* ---- nwfilters -------------------------------------------------------------- */

/* One <rule> of the guard: traffic from the VM (direction 'out') with the
 * <ip> match @attrs (name, value pairs, NULL-terminated). */
static void add_guard_rule(xmlNodePtr filter, const char *action, const char *priority, ...)
{
    xmlNodePtr rule = hv_xml_add(filter, NULL, "rule", NULL);
    xmlNodePtr ip;
    va_list args;
    const char *attr;

    hv_xml_set(rule, "action", action);
    hv_xml_set(rule, "direction", "out");
    hv_xml_set(rule, "priority", priority);
    ip = hv_xml_add(rule, NULL, "ip", NULL);
    va_start(args, priority);
    while ((attr = va_arg(args, const char *)) != NULL)
        hv_xml_set(ip, attr, va_arg(args, const char *));
    va_end(args);
}

/* The guard, in a chain of its own for IPv4 ("ipv4-guard"), run after
 * clean-traffic's no-ip-spoofing (-710) and before its rule that accepts
 * all IPv4 from the VM (-650).  ebtables rules on the NIC's tap: no
 * br_netfilter needed.  'return' goes on to the rest of the filter. */
static char *guard_filter_xml(const char *uuid, GError **error)
{
    xmlNodePtr filter;
    g_autoptr(xmlDoc) doc = hv_xml_new_doc("filter", &filter);

    hv_xml_set(filter, "name", HV_NETWORK_GUARD_FILTER);
    hv_xml_set(filter, "chain", "ipv4-guard");
    hv_xml_set(filter, "priority", "-690");
    if (uuid)
        hv_xml_add(filter, NULL, "uuid", uuid);
    /* DHCP: discovers go to 255.255.255.255. */
    add_guard_rule(filter, "return", "100", "protocol", "udp", "dstportstart", "67", NULL);
    add_guard_rule(filter, "return", "110", "protocol", "udp", "dstipaddr", "$GATEWAY",
                   "dstportstart", "53", NULL);
    add_guard_rule(filter, "return", "120", "protocol", "tcp", "dstipaddr", "$GATEWAY",
                   "dstportstart", "53", NULL);
    add_guard_rule(filter, "return", "130", "protocol", "icmp", "dstipaddr", "$GATEWAY", NULL);
    add_guard_rule(filter, "drop", "200", "dstipaddr", "$GATEWAY", NULL);
    /* Its own subnet (other VMs on the bridge), then nothing else of the pool. */
    add_guard_rule(filter, "return", "300", "dstipaddr", "$OWN_NET", "dstipmask", "$OWN_MASK",
                   NULL);
    add_guard_rule(filter, "drop", "400", "dstipaddr", "$GUARD_NET", "dstipmask", "$GUARD_MASK",
                   NULL);
    return hv_xml_serialize(doc, "nwfilter", error);
}

static char *nic_filter_xml(const char *uuid, GError **error)
{
    xmlNodePtr filter;
    g_autoptr(xmlDoc) doc = hv_xml_new_doc("filter", &filter);

    hv_xml_set(filter, "name", HV_NETWORK_FILTER);
    hv_xml_set(filter, "chain", "root");
    if (uuid)
        hv_xml_add(filter, NULL, "uuid", uuid);
    hv_xml_set(hv_xml_add(filter, NULL, "filterref", NULL), "filter", "clean-traffic");
    hv_xml_set(hv_xml_add(filter, NULL, "filterref", NULL), "filter", HV_NETWORK_GUARD_FILTER);
    return hv_xml_serialize(doc, "nwfilter", error);
}

static gboolean ensure_filter(virConnectPtr conn, const char *name,
                              char *(*build)(const char *uuid, GError **error), GError **error)
{
    g_autoptr(virNWFilter) existing = virNWFilterLookupByName(conn, name);
    g_autoptr(virNWFilter) defined = NULL;
    char uuid[VIR_UUID_STRING_BUFLEN];
    g_autofree char *xml = NULL;

    if (existing) {
        if (virNWFilterGetUUIDString(existing, uuid) < 0) {
            hv_libvirt_set_error(error, "cannot read the UUID of nwfilter '%s'", name);
            return FALSE;
        }
    } else if (virGetLastErrorCode() != VIR_ERR_NO_NWFILTER) {
        hv_libvirt_set_error(error, "cannot look up nwfilter '%s'", name);
        return FALSE;
    }
    xml = build(existing ? uuid : NULL, error);
    if (!xml)
        return FALSE;
    defined = virNWFilterDefineXML(conn, xml);
    if (!defined) {
        hv_libvirt_set_error(error, "cannot define nwfilter '%s'", name);
        return FALSE;
    }
    return TRUE;
}

gboolean hv_network_ensure_filters(HvConn *conn_handle, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);

    g_return_val_if_fail(conn != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    /* The guard first: turtles-nic refers to it. */
    return ensure_filter(conn, HV_NETWORK_GUARD_FILTER, guard_filter_xml, error) &&
           ensure_filter(conn, HV_NETWORK_FILTER, nic_filter_xml, error);
}

/* ---- NICs ------------------------------------------------------------------- */

HvNic *hv_nic_new(void)
{
    return g_new0(HvNic, 1);
}

void hv_nic_free(HvNic *nic)
{
    if (!nic)
        return;
    g_free(nic->network_id);
    g_free(nic->mac);
    g_free(nic->gateway);
    g_free(nic->guard_cidr);
    g_free(nic->own_cidr);
    g_free(nic);
}

char *hv_nic_random_mac(void)
{
    return g_strdup_printf("52:54:00:%02x:%02x:%02x", (guint)g_random_int_range(0, 256),
                           (guint)g_random_int_range(0, 256), (guint)g_random_int_range(0, 256));
}

gboolean hv_nic_mac_is_valid(const char *mac)
{
    guint first = 0;
    gboolean zero = TRUE;

    if (!mac || strlen(mac) != 17)
        return FALSE;
    for (guint i = 0; i < 17; i++) {
        char c = mac[i];

        if (i % 3 == 2) {
            if (c != ':')
                return FALSE;
        } else if (!g_ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) {
            return FALSE;
        } else if (c != '0') {
            zero = FALSE;
        }
    }
    first = (guint)g_ascii_xdigit_value(mac[0]) * 16 + (guint)g_ascii_xdigit_value(mac[1]);
    return !zero && (first & 1) == 0;
}

GHashTable *hv_domain_nic_addresses(HvConn *conn_handle, const char *domain, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(GHashTable) table = NULL;
    virDomainInterfacePtr *ifaces = NULL;
    int active, n;

    g_return_val_if_fail(conn != NULL && domain != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    dom = virDomainLookupByName(conn, domain);
    if (!dom) {
        hv_libvirt_set_error(error, "cannot look up domain '%s'", domain);
        return NULL;
    }
    table = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    active = virDomainIsActive(dom);
    if (active < 0) {
        hv_libvirt_set_error(error, "cannot tell whether domain '%s' runs", domain);
        return NULL;
    }
    if (!active)
        return g_steal_pointer(&table);
    n = virDomainInterfaceAddresses(dom, &ifaces, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0);
    if (n < 0) {
        hv_libvirt_set_error(error, "cannot read the DHCP leases of domain '%s'", domain);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        virDomainInterfacePtr iface = ifaces[i];

        for (guint j = 0; iface->hwaddr && j < iface->naddrs; j++) {
            if (iface->addrs[j].type != VIR_IP_ADDR_TYPE_IPV4 || !iface->addrs[j].addr)
                continue;
            char *mac = g_ascii_strdown(iface->hwaddr, -1);

            if (g_hash_table_contains(table, mac))
                g_free(mac);
            else
                g_hash_table_insert(table, mac, g_strdup(iface->addrs[j].addr));
            break;
        }
        virDomainInterfaceFree(iface);
    }
    free(ifaces);
    return g_steal_pointer(&table);
}
