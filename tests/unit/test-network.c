/* hvcore/network: IPv4 subnets, the network XML of each mode (checked with
 * XPath) and its metadata back, and networks ensured, removed, listed and
 * checked for a peer against test:///default (which keeps networks in
 * memory and has no nwfilter driver).  Guard filters instantiated for a
 * running domain are tests/system territory (a real libvirtd in a network
 * namespace of its own). */
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "hvcore/error.h"
#include "hvcore/libvirt-private.h"
#include "hvcore/network.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathContext, xmlXPathFreeContext)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathObject, xmlXPathFreeObject)

#define TEST_URI "test:///default"
#define NET_ID   "3b0f9c1e-5d2a-4c8e-9f10-a1b2c3d4e5f6"
#define NET_ID2  "7c2d8e4f-1a3b-4c5d-8e9f-0a1b2c3d4e5f"

static void quiet_libvirt(void *data, virErrorPtr error)
{
    (void)data;
    (void)error;
}

static HvConn *open_test_driver(void)
{
    HvConn *conn = hv_conn_open(TEST_URI, NULL);

    g_assert_nonnull(conn);
    return conn;
}

static HvNetworkSpec *sample_spec(const char *id, HvNetworkMode mode, const char *cidr)
{
    HvNetworkSpec *spec = hv_network_spec_new();

    spec->id = g_strdup(id);
    spec->name = g_strdup("lab");
    spec->mode = mode;
    if (mode == HV_NETWORK_EXTERNAL) {
        spec->bridge = g_strdup("eth1"); /* test:///default's one interface */
        g_ptr_array_add(spec->shared_with, g_strdup("acme"));
        g_ptr_array_add(spec->shared_with, g_strdup("globex"));
    } else {
        spec->tenant = g_strdup("acme");
        spec->cidr = g_strdup(cidr);
        spec->bridge = hv_network_bridge_for(id);
    }
    return spec;
}

/* ---- XPath helpers --------------------------------------------------------- */

static xmlDoc *parse_xml(const char *xml)
{
    xmlDoc *doc;

    g_assert_nonnull(xml);
    doc = xmlReadMemory(xml, (int)strlen(xml), "network.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    g_assert_nonnull(doc);
    return doc;
}

static char *xp_string(xmlDoc *doc, const char *expr)
{
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
    g_autofree char *wrapped = g_strdup_printf("string(%s)", expr);
    g_autoptr(xmlXPathObject) result = NULL;

    g_assert_cmpint(xmlXPathRegisterNs(ctx, BAD_CAST "t", BAD_CAST HV_NETWORK_METADATA_URI), ==, 0);
    result = xmlXPathEvalExpression(BAD_CAST wrapped, ctx);
    g_assert_nonnull(result);
    return g_strdup((const char *)result->stringval);
}

static int xp_count(xmlDoc *doc, const char *expr)
{
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
    g_autofree char *wrapped = g_strdup_printf("count(%s)", expr);
    g_autoptr(xmlXPathObject) result = NULL;

    g_assert_cmpint(xmlXPathRegisterNs(ctx, BAD_CAST "t", BAD_CAST HV_NETWORK_METADATA_URI), ==, 0);
    result = xmlXPathEvalExpression(BAD_CAST wrapped, ctx);
    g_assert_nonnull(result);
    return (int)result->floatval;
}

#define assert_xp(doc, expr, expected)                                                             \
    do {                                                                                           \
        g_autofree char *xp_value_ = xp_string((doc), (expr));                                     \
        if (g_strcmp0(xp_value_, (expected)) != 0)                                                 \
            g_error("%s: got '%s', expected '%s'", (expr), xp_value_, (expected));                 \
    } while (0)

static void assert_error_mentions(const GError *error, int code, const char *needle)
{
    g_assert_error(error, HV_ERROR, code);
    if (!strstr(error->message, needle))
        g_error("error message '%s' does not mention '%s'", error->message, needle);
}

static void assert_same_spec(const HvNetworkSpec *a, const HvNetworkSpec *b)
{
    g_assert_cmpstr(a->id, ==, b->id);
    g_assert_cmpstr(a->name, ==, b->name);
    g_assert_cmpstr(a->tenant, ==, b->tenant);
    g_assert_cmpint(a->mode, ==, b->mode);
    g_assert_cmpstr(a->cidr, ==, b->cidr);
    g_assert_cmpstr(a->bridge, ==, b->bridge);
    g_assert_cmpuint(a->shared_with->len, ==, b->shared_with->len);
    for (guint i = 0; i < a->shared_with->len; i++)
        g_assert_cmpstr(g_ptr_array_index(a->shared_with, i), ==,
                        g_ptr_array_index(b->shared_with, i));
}

static gboolean contains(const GPtrArray *list, const char *text)
{
    return g_ptr_array_find_with_equal_func((GPtrArray *)list, text, g_str_equal, NULL);
}

/* ---- names, modes, specs ---------------------------------------------------- */

static void test_names(void)
{
    HvNetworkMode mode = HV_NETWORK_NAT;
    g_autofree char *name = hv_network_libvirt_name(NET_ID);
    g_autofree char *bridge = hv_network_bridge_for(NET_ID);
    g_autofree char *upper = hv_network_bridge_for("3B0F9C1E-5D2A-4C8E-9F10-A1B2C3D4E5F6");

    g_assert_cmpstr(name, ==, "turtles-net-" NET_ID);
    g_assert_cmpstr(bridge, ==, "tn3b0f9c1e5d2a");
    g_assert_cmpuint(strlen(bridge), ==, 14);
    g_assert_cmpstr(upper, ==, bridge);

    for (int m = HV_NETWORK_NAT; m <= HV_NETWORK_EXTERNAL; m++) {
        g_assert_true(hv_network_mode_from_string(hv_network_mode_to_string(m), &mode));
        g_assert_cmpint(mode, ==, m);
    }
    g_assert_cmpstr(hv_network_mode_to_string(HV_NETWORK_ISOLATED), ==, "isolated");
    g_assert_false(hv_network_mode_from_string("NAT", &mode));
    g_assert_false(hv_network_mode_from_string(NULL, &mode));
    g_assert_cmpstr(hv_network_mode_to_string((HvNetworkMode)7), ==, "unknown");
}

static void test_spec_copy(void)
{
    g_autoptr(HvNetworkSpec) spec = sample_spec(NET_ID, HV_NETWORK_EXTERNAL, NULL);
    g_autoptr(HvNetworkSpec) copy = hv_network_spec_copy(spec);
    g_autoptr(HvNetworkSpec) empty = hv_network_spec_new();

    assert_same_spec(spec, copy);
    g_assert_true(copy->shared_with != spec->shared_with);
    g_assert_nonnull(empty->shared_with);
    hv_network_spec_free(NULL);
}

/* ---- IPv4 ------------------------------------------------------------------- */

static void test_ipv4_parse(void)
{
    static const struct {
        const char *cidr;
        guint32 address;
        guint prefix;
    } good[] = {
        {"10.200.3.0/24", 0x0ac80300, 24},      {"0.0.0.0/0", 0, 0},
        {"255.255.255.255/32", 0xffffffff, 32}, {"192.168.0.0/16", 0xc0a80000, 16},
        {"10.0.0.4/30", 0x0a000004, 30},        {"172.16.0.0/12", 0xac100000, 12},
    };
    static const char *const bad[] = {
        "",
        "/",
        "10.0.0.0",
        "10.0.0.0/",
        "10.0.0/24",
        "10.0.0.0.0/24",
        "010.0.0.0/8",
        "10.0.0.256/32",
        "10.0.0.0/33",
        "10.0.0.0/024",
        " 10.0.0.0/8",
        "10.0.0.0/8 ",
        "10.0.0.-1/32",
        "+1.0.0.0/8",
        "a.b.c.d/8",
        "10..0.0/8",
        "10.0.0.0/8/8",
        "10.0.0.0/-1",
        "1000.0.0.0/8",
        "0x0a.0.0.0/8",
        "10.0.0.0/3a",
        "10.0.0.0./8",
        ".10.0.0.0/8",
        "10.0.0.0/+8",
        "10.0.0.00/32",
    };
    g_autoptr(GError) error = NULL;
    guint32 address;
    guint prefix;

    for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
        g_assert_true(hv_ipv4_cidr_parse(good[i].cidr, &address, &prefix, &error));
        g_assert_no_error(error);
        g_assert_cmphex(address, ==, good[i].address);
        g_assert_cmpuint(prefix, ==, good[i].prefix);
    }
    g_assert_true(hv_ipv4_cidr_parse("10.0.0.0/8", NULL, NULL, NULL));
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        if (hv_ipv4_cidr_parse(bad[i], &address, &prefix, &error))
            g_error("'%s' parses", bad[i]);
        g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
        g_clear_error(&error);
    }
    g_assert_false(hv_ipv4_cidr_parse(NULL, &address, &prefix, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_clear_error(&error);

    g_assert_false(hv_ipv4_cidr_parse("10.200.3.7/24", &address, &prefix, &error));
    assert_error_mentions(error, HV_ERROR_INVALID, "host bits set: did you mean 10.200.3.0/24?");
    g_clear_error(&error);
    g_assert_false(hv_ipv4_cidr_parse("1.2.3.4/0", NULL, NULL, &error));
    assert_error_mentions(error, HV_ERROR_INVALID, "did you mean 0.0.0.0/0?");
}

static void test_ipv4_helpers(void)
{
    g_autofree char *text = hv_ipv4_to_string(0x0ac80301);
    g_autofree char *zero = hv_ipv4_to_string(0);
    g_autofree char *ones = hv_ipv4_to_string(0xffffffff);
    g_autofree char *gateway = hv_network_gateway("10.200.3.0/24");
    g_autofree char *small = hv_network_gateway("10.0.0.4/30");

    g_assert_cmpstr(text, ==, "10.200.3.1");
    g_assert_cmpstr(zero, ==, "0.0.0.0");
    g_assert_cmpstr(ones, ==, "255.255.255.255");
    g_assert_cmpstr(gateway, ==, "10.200.3.1");
    g_assert_cmpstr(small, ==, "10.0.0.5");
    g_assert_null(hv_network_gateway("10.0.0.4/31"));
    g_assert_null(hv_network_gateway("10.0.0.1/24"));
    g_assert_null(hv_network_gateway(NULL));

    /* 10.0.0.0/8 holds 10.200.3.0/24, whichever comes first. */
    g_assert_true(hv_ipv4_cidr_overlap(0x0a000000, 8, 0x0ac80300, 24));
    g_assert_true(hv_ipv4_cidr_overlap(0x0ac80300, 24, 0x0a000000, 8));
    g_assert_true(hv_ipv4_cidr_overlap(0x0ac80300, 24, 0x0ac80300, 24));
    g_assert_false(hv_ipv4_cidr_overlap(0x0ac80300, 24, 0x0ac80400, 24));
    g_assert_false(hv_ipv4_cidr_overlap(0x0ac80300, 25, 0x0ac80380, 25));
    g_assert_true(hv_ipv4_cidr_overlap(0, 0, 0xc0a87a00, 24));
    g_assert_true(hv_ipv4_cidr_overlap(0x0a000001, 32, 0x0a000000, 30));
    g_assert_false(hv_ipv4_cidr_overlap(0x0a000001, 32, 0x0a000002, 32));
}

static void test_host_cidrs(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) cidrs = hv_host_ipv4_cidrs(&error);

    g_assert_no_error(error);
    g_assert_nonnull(cidrs);
    g_assert_true(contains(cidrs, "127.0.0.0/8"));
    for (guint i = 0; i < cidrs->len; i++)
        g_assert_true(hv_ipv4_cidr_parse(g_ptr_array_index(cidrs, i), NULL, NULL, NULL));
}

/* ---- XML -------------------------------------------------------------------- */

static void assert_metadata(xmlDoc *doc, const HvNetworkSpec *spec)
{
    assert_xp(doc, "/network/name", "turtles-net-" NET_ID);
    assert_xp(doc, "/network/uuid", spec->id);
    g_assert_cmpint(xp_count(doc, "/network/metadata/t:network"), ==, 1);
    assert_xp(doc, "/network/metadata/t:network/t:id", spec->id);
    assert_xp(doc, "/network/metadata/t:network/t:name", spec->name);
    assert_xp(doc, "/network/metadata/t:network/t:tenant", spec->tenant ? spec->tenant : "");
    assert_xp(doc, "/network/metadata/t:network/t:mode", hv_network_mode_to_string(spec->mode));
    assert_xp(doc, "/network/metadata/t:network/t:cidr", spec->cidr ? spec->cidr : "");
    g_assert_cmpint(xp_count(doc, "/network/metadata/t:network/t:shared-with/t:tenant"), ==,
                    (int)spec->shared_with->len);
}

static void round_trip(const char *xml, const HvNetworkSpec *spec)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(HvNetworkSpec) back = hv_network_parse_xml(xml, &error);

    g_assert_no_error(error);
    assert_same_spec(back, spec);
}

/* The XML of @spec, checked to build, to carry its metadata and to parse
 * back to the same spec. */
static xmlDoc *build_checked(const HvNetworkSpec *spec)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_network_build_xml(spec, &error);
    xmlDoc *doc;

    g_assert_no_error(error);
    doc = parse_xml(xml);
    assert_metadata(doc, spec);
    round_trip(xml, spec);
    return doc;
}

static void test_xml_nat(void)
{
    g_autoptr(HvNetworkSpec) spec = sample_spec(NET_ID, HV_NETWORK_NAT, "10.200.3.0/24");
    g_autoptr(xmlDoc) doc = build_checked(spec);
    g_assert_cmpint(xp_count(doc, "/network/forward"), ==, 1);
    assert_xp(doc, "/network/forward/@mode", "nat");
    assert_xp(doc, "/network/bridge/@name", "tn3b0f9c1e5d2a");
    assert_xp(doc, "/network/bridge/@stp", "on");
    assert_xp(doc, "/network/bridge/@delay", "0");
    g_assert_cmpint(xp_count(doc, "/network/ip"), ==, 1);
    assert_xp(doc, "/network/ip/@address", "10.200.3.1");
    assert_xp(doc, "/network/ip/@prefix", "24");
    assert_xp(doc, "/network/ip/dhcp/range/@start", "10.200.3.2");
    assert_xp(doc, "/network/ip/dhcp/range/@end", "10.200.3.254");
    g_assert_cmpint(xp_count(doc, "/network/dns"), ==, 0);

    /* The bridge follows from the id when the spec names none. */
    g_clear_pointer(&spec->bridge, g_free);
    g_autofree char *derived = hv_network_build_xml(spec, NULL);
    g_autoptr(xmlDoc) derived_doc = parse_xml(derived);
    assert_xp(derived_doc, "/network/bridge/@name", "tn3b0f9c1e5d2a");
}

static void test_xml_isolated(void)
{
    g_autoptr(HvNetworkSpec) spec = sample_spec(NET_ID, HV_NETWORK_ISOLATED, "172.16.8.0/22");
    g_autoptr(xmlDoc) doc = build_checked(spec);
    g_assert_cmpint(xp_count(doc, "/network/forward"), ==, 0);
    assert_xp(doc, "/network/dns/@enable", "no");
    assert_xp(doc, "/network/bridge/@name", "tn3b0f9c1e5d2a");
    assert_xp(doc, "/network/ip/@address", "172.16.8.1");
    assert_xp(doc, "/network/ip/@prefix", "22");
    assert_xp(doc, "/network/ip/dhcp/range/@start", "172.16.8.2");
    assert_xp(doc, "/network/ip/dhcp/range/@end", "172.16.11.254");
}

static void test_xml_external(void)
{
    g_autoptr(HvNetworkSpec) spec = sample_spec(NET_ID, HV_NETWORK_EXTERNAL, NULL);
    g_autoptr(xmlDoc) doc = NULL;

    g_free(spec->bridge);
    spec->bridge = g_strdup("br0");
    doc = build_checked(spec);
    assert_xp(doc, "/network/forward/@mode", "bridge");
    assert_xp(doc, "/network/bridge/@name", "br0");
    g_assert_cmpint(xp_count(doc, "/network/bridge/@stp"), ==, 0);
    g_assert_cmpint(xp_count(doc, "/network/ip"), ==, 0);
    assert_xp(doc, "/network/metadata/t:network/t:shared-with/t:tenant[2]", "globex");
}

static void assert_build_fails(const HvNetworkSpec *spec, const char *needle)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = hv_network_build_xml(spec, &error);

    g_assert_null(xml);
    assert_error_mentions(error, HV_ERROR_INVALID, needle);
}

static void test_xml_refused(void)
{
    g_autoptr(HvNetworkSpec) spec = sample_spec(NET_ID, HV_NETWORK_NAT, "10.0.0.0/24");

    g_free(spec->cidr);
    spec->cidr = g_strdup("10.0.0.0/31");
    assert_build_fails(spec, "too small");
    g_free(spec->cidr);
    spec->cidr = g_strdup("10.0.0.9/24");
    assert_build_fails(spec, "host bits set");
    g_clear_pointer(&spec->cidr, g_free);
    assert_build_fails(spec, "is not an IPv4 subnet");
    spec->cidr = g_strdup("10.0.0.0/24");
    g_clear_pointer(&spec->tenant, g_free);
    assert_build_fails(spec, "tenant is required");
    spec->tenant = g_strdup("ac\x01me");
    assert_build_fails(spec, "characters XML cannot carry");
    g_free(spec->tenant);
    spec->tenant = g_strdup("acme");
    g_free(spec->bridge);
    spec->bridge = g_strdup("a-bridge-name-too-long");
    assert_build_fails(spec, "not an interface name");
    g_free(spec->bridge);
    spec->bridge = g_strdup("br/0");
    assert_build_fails(spec, "not an interface name");
    g_free(spec->id);
    spec->id = g_strdup("lab");
    assert_build_fails(spec, "not a UUID");

    g_autoptr(HvNetworkSpec) external = sample_spec(NET_ID, HV_NETWORK_EXTERNAL, NULL);
    g_clear_pointer(&external->bridge, g_free);
    assert_build_fails(external, "not an interface name");
}

/* Markup in names stays text. */
static void test_xml_markup(void)
{
    g_autoptr(HvNetworkSpec) spec = sample_spec(NET_ID, HV_NETWORK_NAT, "10.0.0.0/24");
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = NULL;

    g_free(spec->name);
    spec->name = g_strdup("a<b>&c'd\"</turtles:name><turtles:mode>external</turtles:mode>");
    xml = hv_network_build_xml(spec, &error);
    g_assert_no_error(error);
    round_trip(xml, spec);
}

static void test_parse_not_ours(void)
{
    g_autoptr(GError) error = NULL;

    g_assert_null(hv_network_parse_xml("<network><name>default</name></network>", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_null(hv_network_parse_xml("<network", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_null(hv_network_parse_xml("<domain/>", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_null(hv_network_parse_xml(
        "<network><metadata><n:network xmlns:n='" HV_NETWORK_METADATA_URI
        "'><n:id>x</n:id><n:name>y</n:name><n:mode>bogus</n:mode></n:network></metadata>"
        "</network>",
        &error));
    assert_error_mentions(error, HV_ERROR_INVALID, "bogus");
}

/* ---- libvirt ---------------------------------------------------------------- */

static void assert_network_runs(HvConn *conn, const char *id)
{
    g_autofree char *name = hv_network_libvirt_name(id);
    g_autoptr(virNetwork) net = virNetworkLookupByName(hv_conn_get_libvirt(conn), name);
    int autostart = 0;

    g_assert_nonnull(net);
    g_assert_cmpint(virNetworkIsActive(net), ==, 1);
    g_assert_cmpint(virNetworkIsPersistent(net), ==, 1);
    g_assert_cmpint(virNetworkGetAutostart(net, &autostart), ==, 0);
    g_assert_cmpint(autostart, ==, 1);
}

static void test_ensure_remove(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autoptr(HvNetworkSpec) nat = sample_spec(NET_ID, HV_NETWORK_NAT, "10.200.3.0/24");
    g_autoptr(HvNetworkSpec) ext = sample_spec(NET_ID2, HV_NETWORK_EXTERNAL, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) active = NULL;
    g_autoptr(GPtrArray) ours = NULL;
    gboolean created = FALSE;

    g_assert_true(hv_network_ensure(conn, nat, &created, &error));
    g_assert_no_error(error);
    g_assert_true(created);
    assert_network_runs(conn, NET_ID);
    /* Idempotent. */
    g_assert_true(hv_network_ensure(conn, nat, &created, &error));
    g_assert_no_error(error);
    g_assert_false(created);
    g_assert_true(hv_network_ensure(conn, ext, NULL, &error));
    g_assert_no_error(error);
    assert_network_runs(conn, NET_ID2);

    /* A stopped network is started again, and the autostart flag restored. */
    {
        g_autoptr(virNetwork) net =
            virNetworkLookupByName(hv_conn_get_libvirt(conn), "turtles-net-" NET_ID);
        g_assert_cmpint(virNetworkDestroy(net), ==, 0);
        g_assert_cmpint(virNetworkSetAutostart(net, 0), ==, 0);
    }
    g_assert_true(hv_network_ensure(conn, nat, &created, &error));
    g_assert_no_error(error);
    g_assert_false(created);
    assert_network_runs(conn, NET_ID);

    /* Listed: ours only (not test:///default's "default"). */
    ours = hv_network_list_ours(conn, &active, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(ours->len, ==, 2);
    g_assert_cmpuint(active->len, ==, 2);
    for (guint i = 0; i < ours->len; i++) {
        const HvNetworkSpec *spec = g_ptr_array_index(ours, i);

        g_assert_true(GPOINTER_TO_UINT(g_ptr_array_index(active, i)));
        assert_same_spec(spec, g_str_equal(spec->id, NET_ID) ? nat : ext);
    }

    g_assert_true(hv_network_remove(conn, NET_ID, &error));
    g_assert_no_error(error);
    g_assert_true(hv_network_remove(conn, NET_ID, &error));
    g_assert_no_error(error);
    {
        g_autoptr(virNetwork) gone =
            virNetworkLookupByName(hv_conn_get_libvirt(conn), "turtles-net-" NET_ID);
        g_assert_null(gone);
    }
    g_clear_pointer(&ours, g_ptr_array_unref);
    ours = hv_network_list_ours(conn, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(ours->len, ==, 1);
}

static void test_ensure_conflicts(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autoptr(HvNetworkSpec) nat = sample_spec(NET_ID, HV_NETWORK_NAT, "10.200.3.0/24");
    g_autoptr(HvNetworkSpec) other = NULL;
    g_autoptr(GError) error = NULL;
    gboolean created = TRUE;

    g_assert_true(hv_network_ensure(conn, nat, NULL, &error));
    g_assert_no_error(error);

    other = hv_network_spec_copy(nat);
    g_free(other->cidr);
    other->cidr = g_strdup("10.200.4.0/24");
    g_assert_false(hv_network_ensure(conn, other, &created, &error));
    g_assert_false(created);
    assert_error_mentions(error, HV_ERROR_INVALID, "its subnet is '10.200.3.0/24'");
    g_clear_error(&error);

    other->mode = HV_NETWORK_ISOLATED;
    g_free(other->cidr);
    other->cidr = g_strdup(nat->cidr);
    g_assert_false(hv_network_ensure(conn, other, NULL, &error));
    assert_error_mentions(error, HV_ERROR_INVALID, "forward mode is 'nat'");
    g_clear_error(&error);

    other->mode = HV_NETWORK_NAT;
    g_free(other->bridge);
    other->bridge = g_strdup("virbr9");
    g_assert_false(hv_network_ensure(conn, other, NULL, &error));
    assert_error_mentions(error, HV_ERROR_INVALID, "its bridge is 'tn3b0f9c1e5d2a'");
    g_clear_error(&error);

    /* The same name with another UUID: a network made by somebody else. */
    {
        g_autoptr(HvNetworkSpec) foreign = hv_network_spec_copy(nat);
        g_autofree char *xml = NULL;
        g_autoptr(virNetwork) net = NULL;

        g_free(foreign->id);
        foreign->id = g_strdup(NET_ID2);
        g_free(foreign->bridge);
        foreign->bridge = g_strdup("virbr7");
        g_free(foreign->cidr);
        foreign->cidr = g_strdup("10.9.0.0/24");
        xml = hv_network_build_xml(foreign, &error);
        g_assert_no_error(error);
        /* Renamed to NET_ID's libvirt name by hand. */
        char *at = strstr(xml, "turtles-net-" NET_ID2);
        g_assert_nonnull(at);
        memcpy(at + strlen("turtles-net-"), NET_ID, strlen(NET_ID));
        g_assert_true(hv_network_remove(conn, NET_ID, &error));
        net = virNetworkDefineXML(hv_conn_get_libvirt(conn), xml);
        g_assert_nonnull(net);
    }
    g_assert_false(hv_network_ensure(conn, nat, NULL, &error));
    assert_error_mentions(error, HV_ERROR_INVALID, "its UUID is " NET_ID2);
    g_clear_error(&error);

    /* A spec that does not build never reaches libvirt. */
    g_free(other->cidr);
    other->cidr = g_strdup("10.0.0.1/24");
    g_assert_false(hv_network_ensure(conn, other, NULL, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_INVALID);
}

static void test_used_cidrs(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autoptr(HvNetworkSpec) nat = sample_spec(NET_ID, HV_NETWORK_NAT, "10.200.3.0/24");
    g_autoptr(HvNetworkSpec) isolated = sample_spec(NET_ID2, HV_NETWORK_ISOLATED, "10.77.0.0/16");
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) cidrs = NULL;
    g_autoptr(virNetwork) masked = NULL;

    g_assert_true(hv_network_ensure(conn, nat, NULL, &error));
    g_assert_true(hv_network_ensure(conn, isolated, NULL, &error));
    g_assert_no_error(error);
    /* Somebody's network with a netmask, defined and not started. */
    masked = virNetworkDefineXML(hv_conn_get_libvirt(conn),
                                 "<network><name>other</name><bridge name='virbr5'/>"
                                 "<ip address='172.20.1.9' netmask='255.255.252.0'/></network>");
    g_assert_nonnull(masked);

    cidrs = hv_network_used_cidrs(conn, &error);
    g_assert_no_error(error);
    g_assert_true(contains(cidrs, "10.200.3.0/24"));
    g_assert_true(contains(cidrs, "10.77.0.0/16"));
    g_assert_true(contains(cidrs, "172.20.0.0/22"));
    /* test:///default's own "default" network. */
    g_assert_true(contains(cidrs, "192.168.122.0/24"));
    g_assert_cmpuint(cidrs->len, ==, 4);
}

static void test_check_peer(void)
{
    g_autoptr(HvConn) dst = open_test_driver();
    g_autoptr(HvNetworkSpec) nat = sample_spec(NET_ID, HV_NETWORK_NAT, "10.200.3.0/24");
    g_autoptr(HvNetworkSpec) ext = sample_spec(NET_ID2, HV_NETWORK_EXTERNAL, NULL);
    g_autoptr(HvNetworkSpec) clash = NULL;
    g_autoptr(GError) error = NULL;

    /* Absent: it will be created. */
    g_assert_true(hv_network_check_peer(dst, nat, &error));
    g_assert_no_error(error);
    /* Defined the same way. */
    g_assert_true(hv_network_ensure(dst, nat, NULL, &error));
    g_assert_true(hv_network_check_peer(dst, nat, &error));
    g_assert_no_error(error);
    /* Defined otherwise. */
    clash = hv_network_spec_copy(nat);
    g_free(clash->cidr);
    clash->cidr = g_strdup("10.200.0.0/16");
    g_assert_false(hv_network_check_peer(dst, clash, &error));
    assert_error_mentions(error, HV_ERROR_UNSUPPORTED, "its subnet is");
    g_clear_error(&error);

    /* Another network there overlaps its subnet. */
    g_free(clash->id);
    clash->id = g_strdup(NET_ID2);
    g_clear_pointer(&clash->bridge, g_free);
    g_assert_false(hv_network_check_peer(dst, clash, &error));
    assert_error_mentions(error, HV_ERROR_UNSUPPORTED, "overlaps the subnet 10.200.0.0/16");
    g_clear_error(&error);
    g_free(clash->cidr);
    clash->cidr = g_strdup("192.168.0.0/16");
    g_assert_false(hv_network_check_peer(dst, clash, &error));
    assert_error_mentions(error, HV_ERROR_UNSUPPORTED, "'default'");
    g_clear_error(&error);
    g_free(clash->cidr);
    clash->cidr = g_strdup("10.201.0.0/16");
    g_assert_true(hv_network_check_peer(dst, clash, &error));
    g_assert_no_error(error);

    /* External: the peer must have the host bridge. */
    g_assert_true(hv_network_check_peer(dst, ext, &error));
    g_assert_no_error(error);
    g_free(ext->bridge);
    ext->bridge = g_strdup("br0");
    g_assert_false(hv_network_check_peer(dst, ext, &error));
    assert_error_mentions(error, HV_ERROR_UNSUPPORTED,
                          "peer has no host bridge 'br0' for network 'lab'");
}

static void test_filters_unsupported(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autoptr(GError) error = NULL;

    g_assert_false(hv_network_ensure_filters(conn, &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED);
}

/* ---- NICs ------------------------------------------------------------------- */

static void test_macs(void)
{
    static const char *const bad[] = {
        "",
        "52:54:00:12:34",
        "52:54:00:12:34:5",
        "52:54:00:12:34:567",
        "52-54-00-12-34-56",
        "52:54:00:12:34:5G",
        "52:54:00:AB:cd:ef",
        "53:54:00:12:34:56", /* multicast */
        "ff:ff:ff:ff:ff:ff",
        "00:00:00:00:00:00",
        "52:54:00:12:34:56 ",
    };
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    g_assert_true(hv_nic_mac_is_valid("52:54:00:ab:cd:ef"));
    g_assert_true(hv_nic_mac_is_valid("02:00:00:00:00:01"));
    g_assert_false(hv_nic_mac_is_valid(NULL));
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        if (hv_nic_mac_is_valid(bad[i]))
            g_error("'%s' is a valid MAC", bad[i]);
    }
    for (int i = 0; i < 64; i++) {
        char *mac = hv_nic_random_mac();

        g_assert_true(g_str_has_prefix(mac, "52:54:00:"));
        g_assert_true(hv_nic_mac_is_valid(mac));
        g_hash_table_add(seen, mac);
    }
    g_assert_cmpuint(g_hash_table_size(seen), >, 32);

    g_autoptr(HvNic) nic = hv_nic_new();
    g_assert_null(nic->mac);
    g_assert_false(nic->filter);
    hv_nic_free(NULL);
}

static void test_nic_addresses(void)
{
    g_autoptr(HvConn) conn = open_test_driver();
    g_autoptr(GError) error = NULL;
    g_autoptr(GHashTable) running = NULL;
    g_autoptr(virDomain) dom = NULL;

    g_assert_null(hv_domain_nic_addresses(conn, "no-such-domain", &error));
    g_assert_error(error, HV_ERROR, HV_ERROR_NOT_FOUND);
    g_clear_error(&error);

    /* test:///default's "test" domain runs; once stopped it has none. */
    running = hv_domain_nic_addresses(conn, "test", &error);
    if (!running) {
        g_assert_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED);
        g_clear_error(&error);
    }
    dom = virDomainLookupByName(hv_conn_get_libvirt(conn), "test");
    g_assert_nonnull(dom);
    g_assert_cmpint(virDomainDestroy(dom), ==, 0);
    g_autoptr(GHashTable) stopped = hv_domain_nic_addresses(conn, "test", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(g_hash_table_size(stopped), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    virSetErrorFunc(NULL, quiet_libvirt);

    g_test_add_func("/network/names", test_names);
    g_test_add_func("/network/spec-copy", test_spec_copy);
    g_test_add_func("/network/ipv4/parse", test_ipv4_parse);
    g_test_add_func("/network/ipv4/helpers", test_ipv4_helpers);
    g_test_add_func("/network/ipv4/host", test_host_cidrs);
    g_test_add_func("/network/xml/nat", test_xml_nat);
    g_test_add_func("/network/xml/isolated", test_xml_isolated);
    g_test_add_func("/network/xml/external", test_xml_external);
    g_test_add_func("/network/xml/refused", test_xml_refused);
    g_test_add_func("/network/xml/markup", test_xml_markup);
    g_test_add_func("/network/xml/not-ours", test_parse_not_ours);
    g_test_add_func("/network/libvirt/ensure-remove", test_ensure_remove);
    g_test_add_func("/network/libvirt/conflicts", test_ensure_conflicts);
    g_test_add_func("/network/libvirt/used-cidrs", test_used_cidrs);
    g_test_add_func("/network/libvirt/check-peer", test_check_peer);
    g_test_add_func("/network/libvirt/filters-unsupported", test_filters_unsupported);
    g_test_add_func("/network/nic/macs", test_macs);
    g_test_add_func("/network/nic/addresses", test_nic_addresses);
    return g_test_run();
}
