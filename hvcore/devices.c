#define G_LOG_DOMAIN "hv-devices"

#include "hvcore/devices.h"

#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "hvcore/error.h"
#include "hvcore/libvirt-private.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlParserCtxt, xmlFreeParserCtxt)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathContext, xmlXPathFreeContext)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathObject, xmlXPathFreeObject)

static inline void hv_libvirt_nodedev_free(virNodeDevice *device)
{
    virNodeDeviceFree(device);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virNodeDevice, hv_libvirt_nodedev_free)

/* The host driver that hands a function to guests. */
#define VFIO_DRIVER "vfio-pci"
/* PCI base class 0x06: bridges.  Not endpoints: the kernel's VFIO accepts a
 * group whose bridges stay with their host driver (pcieport). */
#define PCI_CLASS_BRIDGE 0x06

void hv_pci_function_free(HvPciFunction *function)
{
    if (!function)
        return;
    g_free(function->address);
    g_free(function->nodedev_name);
    g_free(function->vendor);
    g_free(function->product);
    g_free(function->driver);
    if (function->group_addresses)
        g_ptr_array_unref(function->group_addresses);
    g_free(function);
}

/* ---- node-device XML -------------------------------------------------------- */

/* Parses libvirt's node-device XML safely: no network, no entities, no DTD. */
static xmlDocPtr read_nodedev(const char *xml, GError **error)
{
    g_autoptr(xmlParserCtxt) parser = xmlNewParserCtxt();
    if (!parser) {
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot allocate an XML parser");
        return NULL;
    }
    xmlDocPtr doc = xmlCtxtReadMemory(parser, xml, (int)strlen(xml), "nodedev.xml", NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError *xml_error = xmlCtxtGetLastError(parser);
        g_autofree char *detail =
            xml_error && xml_error->message ? g_strstrip(g_strdup(xml_error->message)) : NULL;
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "node device XML does not parse: %s",
                    detail ? detail : "unknown error");
        return NULL;
    }
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (doc->intSubset || doc->extSubset || !root || root->ns ||
        !xmlStrEqual(root->name, BAD_CAST "device")) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "XML document is not a node <device>");
        xmlFreeDoc(doc);
        return NULL;
    }
    return doc;
}

/* The string value of @expr relative to the context node; NULL when empty. */
static char *xpath_value(xmlXPathContextPtr ctx, const char *expr)
{
    g_autofree char *wrapped = g_strdup_printf("string(%s)", expr);
    g_autoptr(xmlXPathObject) value = xmlXPathEvalExpression(BAD_CAST wrapped, ctx);

    if (!value || value->type != XPATH_STRING || !value->stringval || !*value->stringval)
        return NULL;
    return g_strstrip(g_strdup((const char *)value->stringval));
}

/* A whole number as libvirt writes it: decimal, or hex with 0x.  FALSE for
 * anything else or anything above @max. */
static gboolean parse_number(const char *text, guint64 max, guint *value)
{
    guint64 v = 0;
    guint base = 10;

    if (!text || !*text)
        return FALSE;
    if (g_str_has_prefix(text, "0x") || g_str_has_prefix(text, "0X")) {
        base = 16;
        text += 2;
    }
    if (!g_ascii_string_to_unsigned(text, base, 0, max, &v, NULL))
        return FALSE;
    *value = (guint)v;
    return TRUE;
}

static gboolean xpath_number(xmlXPathContextPtr ctx, const char *expr, guint64 max, guint *value)
{
    g_autofree char *text = xpath_value(ctx, expr);

    return parse_number(text, max, value);
}

static char *format_address(guint domain, guint bus, guint slot, guint function)
{
    return g_strdup_printf("%04x:%02x:%02x.%x", domain, bus, slot, function);
}

/* The <address domain= bus= slot= function=/> elements of @group. */
static gboolean parse_group(xmlXPathContextPtr ctx, const char *self, GPtrArray *addresses,
                            GError **error)
{
    g_autoptr(xmlXPathObject) nodes = xmlXPathEvalExpression(BAD_CAST "iommuGroup/address", ctx);
    int n = nodes && nodes->nodesetval ? nodes->nodesetval->nodeNr : 0;
    xmlNodePtr saved = ctx->node;

    for (int i = 0; i < n; i++) {
        guint domain, bus, slot, function;
        ctx->node = nodes->nodesetval->nodeTab[i];
        if (!xpath_number(ctx, "@domain", 0xffff, &domain) ||
            !xpath_number(ctx, "@bus", 0xff, &bus) || !xpath_number(ctx, "@slot", 0x1f, &slot) ||
            !xpath_number(ctx, "@function", 7, &function)) {
            ctx->node = saved;
            g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                        "node device %s: an IOMMU group address is malformed", self);
            return FALSE;
        }
        g_ptr_array_add(addresses, format_address(domain, bus, slot, function));
    }
    ctx->node = saved;
    return TRUE;
}

HvPciFunction *hv_pci_function_parse(const char *nodedev_xml, GError **error)
{
    g_return_val_if_fail(nodedev_xml != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    g_autoptr(xmlDoc) doc = read_nodedev(nodedev_xml, error);
    if (!doc)
        return NULL;
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
    if (!ctx) {
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot set up XPath");
        return NULL;
    }
    g_autofree char *name = xpath_value(ctx, "/device/name");
    g_autoptr(xmlXPathObject) caps =
        xmlXPathEvalExpression(BAD_CAST "/device/capability[@type='pci']", ctx);
    if (!caps || !caps->nodesetval || caps->nodesetval->nodeNr != 1) {
        g_autofree char *type = xpath_value(ctx, "/device/capability[1]/@type");
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                    "node device %s is not a PCI device (it is %s): only PCI functions can be "
                    "assigned through VFIO",
                    name ? name : "(unnamed)", type ? type : "of no known kind");
        return NULL;
    }

    g_autoptr(HvPciFunction) function = g_new0(HvPciFunction, 1);
    function->nodedev_name = g_strdup(name);
    function->driver = xpath_value(ctx, "/device/driver/name");
    ctx->node = caps->nodesetval->nodeTab[0];

    guint domain, bus, slot, fn;
    if (!xpath_number(ctx, "domain", 0xffff, &domain) || !xpath_number(ctx, "bus", 0xff, &bus) ||
        !xpath_number(ctx, "slot", 0x1f, &slot) || !xpath_number(ctx, "function", 7, &fn)) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                    "node device %s: its PCI address (domain, bus, slot, function) is missing "
                    "or malformed",
                    name ? name : "(unnamed)");
        return NULL;
    }
    function->address = format_address(domain, bus, slot, fn);
    if (!function->nodedev_name)
        function->nodedev_name = g_strdup_printf("pci_%04x_%02x_%02x_%x", domain, bus, slot, fn);

    /* Older libvirt has no <class>: then nothing counts as a bridge. */
    xpath_number(ctx, "class", 0xffffff, &function->class_code);
    function->bridge = (function->class_code >> 16) == PCI_CLASS_BRIDGE;
    xpath_number(ctx, "vendor/@id", 0xffff, &function->vendor_id);
    xpath_number(ctx, "product/@id", 0xffff, &function->product_id);
    function->vendor = xpath_value(ctx, "vendor");
    function->product = xpath_value(ctx, "product");

    function->group_addresses = g_ptr_array_new_with_free_func(g_free);
    guint group;
    if (xpath_number(ctx, "iommuGroup/@number", G_MAXINT, &group)) {
        function->iommu_group = (gint)group;
        if (!parse_group(ctx, function->address, function->group_addresses, error))
            return NULL;
        if (!g_ptr_array_find_with_equal_func(function->group_addresses, function->address,
                                              g_str_equal, NULL))
            g_ptr_array_insert(function->group_addresses, 0, g_strdup(function->address));
    } else {
        function->iommu_group = -1;
    }
    return g_steal_pointer(&function);
}

/* ---- assignability ------------------------------------------------------------ */

static gboolean in_list(const char *const *addresses, const char *address)
{
    for (gsize i = 0; addresses[i]; i++) {
        if (g_str_equal(addresses[i], address))
            return TRUE;
    }
    return FALSE;
}

/* "0000:3b:00.1 (NVIDIA Corporation GA102 High Definition Audio, driver snd_hda_intel)" */
static char *describe(const HvPciFunction *function)
{
    g_autofree char *what = NULL;

    if (function->vendor || function->product)
        what = g_strjoin(" ", function->vendor ? function->vendor : "",
                         function->product ? function->product : "", NULL);
    else
        what = g_strdup_printf("%04x:%04x", function->vendor_id, function->product_id);
    return g_strdup_printf("%s (%s, %s%s)", function->address, g_strstrip(what),
                           function->driver ? "driver " : "no driver",
                           function->driver ? function->driver : "");
}

static HvPciFunction *look_up(const char *address, HvNodeDeviceLookup lookup, gpointer data,
                              GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autofree char *xml = lookup(address, data, &local);

    if (!xml) {
        if (!local)
            local =
                g_error_new(HV_ERROR, HV_ERROR_NOT_FOUND, "no PCI device %s on this host", address);
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    HvPciFunction *function = hv_pci_function_parse(xml, error);
    if (function && !g_str_equal(function->address, address)) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                    "asked for PCI device %s, the host described %s", address, function->address);
        g_clear_pointer(&function, hv_pci_function_free);
    }
    return function;
}

/* Every other endpoint of @function's group is in @addresses or on vfio-pci. */
static gboolean check_group(const HvPciFunction *function, const char *const *addresses,
                            HvNodeDeviceLookup lookup, gpointer data, GError **error)
{
    for (guint i = 0; i < function->group_addresses->len; i++) {
        const char *member = g_ptr_array_index(function->group_addresses, i);
        if (g_str_equal(member, function->address) || in_list(addresses, member))
            continue;
        g_autoptr(GError) local = NULL;
        g_autoptr(HvPciFunction) other = look_up(member, lookup, data, &local);
        if (!other) {
            g_set_error(error, HV_ERROR, local->code,
                        "PCI device %s: cannot check %s of its IOMMU group %d: %s",
                        function->address, member, function->iommu_group, local->message);
            return FALSE;
        }
        if (other->bridge || g_strcmp0(other->driver, VFIO_DRIVER) == 0)
            continue;
        g_autofree char *who = describe(other);
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "PCI device %s shares IOMMU group %d with %s, which is not in this device "
                    "class: a guest gets a whole group or nothing, so add %s to the class or "
                    "bind it to vfio-pci (driverctl set-override %s vfio-pci)",
                    function->address, function->iommu_group, who, member, member);
        return FALSE;
    }
    return TRUE;
}

static gboolean check_function(const HvPciFunction *function, gboolean force, GError **error)
{
    if (function->iommu_group < 0) {
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "PCI device %s has no IOMMU group: this host runs without an IOMMU. Enable "
                    "VT-d (Intel) or AMD-Vi/IOMMU (AMD) in the firmware setup, boot the host "
                    "with intel_iommu=on (Intel) or amd_iommu=on (AMD) on the kernel command "
                    "line, and check that /sys/kernel/iommu_groups is populated",
                    function->address);
        return FALSE;
    }
    if (function->driver && !g_str_equal(function->driver, VFIO_DRIVER) && !force) {
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "PCI device %s is in use by the host driver %s: giving it to a guest takes "
                    "it away from the host. Bind it to vfio-pci first (driverctl set-override "
                    "%s vfio-pci), or use force to let libvirt detach it from %s when a stack "
                    "starts",
                    function->address, function->driver, function->address, function->driver);
        return FALSE;
    }
    return TRUE;
}

gboolean hv_pci_check_assignable(const char *const *addresses, gboolean force,
                                 HvNodeDeviceLookup lookup, gpointer data,
                                 GPtrArray **functions_out, GError **error)
{
    g_return_val_if_fail(addresses != NULL && lookup != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    g_autoptr(GPtrArray) functions =
        g_ptr_array_new_with_free_func((GDestroyNotify)hv_pci_function_free);
    for (gsize i = 0; addresses[i]; i++) {
        HvPciFunction *function = look_up(addresses[i], lookup, data, error);
        if (!function)
            return FALSE;
        g_ptr_array_add(functions, function);
        if (!check_function(function, force, error) ||
            !check_group(function, addresses, lookup, data, error))
            return FALSE;
    }
    if (functions_out)
        *functions_out = g_steal_pointer(&functions);
    return TRUE;
}

/* ---- through libvirt ------------------------------------------------------------ */

/* Exactly "dddd:bb:ss.f" in lower-case hex, as sysfs spells it. */
static gboolean is_pci_address(const char *text)
{
    static const char shape[] = "xxxx:xx:xx.x";

    if (!text || strlen(text) != sizeof(shape) - 1)
        return FALSE;
    for (gsize i = 0; shape[i]; i++) {
        if (shape[i] == 'x' ? !(g_ascii_isdigit(text[i]) || (text[i] >= 'a' && text[i] <= 'f'))
                            : text[i] != shape[i])
            return FALSE;
    }
    return TRUE;
}

static char *libvirt_lookup(const char *address, gpointer data, GError **error)
{
    virConnectPtr conn = data;

    if (!is_pci_address(address)) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                    "'%s' is not a PCI address like 0000:3b:00.0 (lower-case hex)", address);
        return NULL;
    }
    /* libvirt's name: "pci_" and the address with '_' for ':' and '.'. */
    g_autofree char *name = g_strconcat("pci_", address, NULL);
    g_strdelimit(name, ":.", '_');
    g_autoptr(virNodeDevice) device = virNodeDeviceLookupByName(conn, name);
    if (!device) {
        if (virGetLastErrorCode() == VIR_ERR_NO_NODE_DEVICE)
            g_set_error(error, HV_ERROR, HV_ERROR_NOT_FOUND, "no PCI device %s on this host",
                        address);
        else
            g_set_error(error, HV_ERROR, HV_ERROR_LIBVIRT, "cannot look up PCI device %s: %s",
                        address, virGetLastErrorMessage());
        return NULL;
    }
    char *xml = virNodeDeviceGetXMLDesc(device, 0);
    if (!xml) {
        g_set_error(error, HV_ERROR, HV_ERROR_LIBVIRT, "cannot describe PCI device %s: %s", address,
                    virGetLastErrorMessage());
        return NULL;
    }
    /* libvirt allocates with malloc; hand back GLib memory. */
    char *copy = g_strdup(xml);
    free(xml);
    return copy;
}

gboolean hv_pci_check_assignable_on(HvConn *conn, const char *const *addresses, gboolean force,
                                    GPtrArray **functions_out, GError **error)
{
    virConnectPtr ptr = hv_conn_get_libvirt(conn);

    g_return_val_if_fail(ptr != NULL, FALSE);
    return hv_pci_check_assignable(addresses, force, libvirt_lookup, ptr, functions_out, error);
}
