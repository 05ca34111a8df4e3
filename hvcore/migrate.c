#define G_LOG_DOMAIN "hv-migrate"

#include "hvcore/migrate.h"

#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>
#include <libxml/xpath.h>

#include "hvcore/error.h"
#include "hvcore/libvirt-private.h"
#include "hvcore/storage.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlBuffer, xmlBufferFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathContext, xmlXPathFreeContext)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathObject, xmlXPathFreeObject)

/* One stream message of libvirt's remote driver. */
#define COPY_PIECE (256 * 1024)
/* How often a running migration's job stats are read. */
#define POLL_INTERVAL_MS 500

/* ---- errors ------------------------------------------------------------- */

static void set_libvirt_error(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* "<what>: <libvirt's message>"; a missing domain, pool or volume is
 * HV_ERROR_NOT_FOUND, anything else HV_ERROR_LIBVIRT. */
static void set_libvirt_error(GError **error, const char *format, ...)
{
    va_list args;
    g_autofree char *what = NULL;
    const char *message = virGetLastErrorMessage();
    HvErrorCode code = HV_ERROR_LIBVIRT;

    switch (virGetLastErrorCode()) {
    case VIR_ERR_NO_DOMAIN:
    case VIR_ERR_NO_STORAGE_POOL:
    case VIR_ERR_NO_STORAGE_VOL:
        code = HV_ERROR_NOT_FOUND;
        break;
    default:
        break;
    }
    va_start(args, format);
    what = g_strdup_vprintf(format, args);
    va_end(args);
    g_set_error(error, HV_ERROR, code, "%s: %s", what, message ? message : "unknown libvirt error");
}

static virDomainPtr lookup_domain(virConnectPtr conn, const char *name, GError **error)
{
    virDomainPtr dom;

    if (!name || !name[0]) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "no domain named");
        return NULL;
    }
    dom = virDomainLookupByName(conn, name);
    if (dom)
        return dom;
    if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
        g_set_error(error, HV_ERROR, HV_ERROR_NOT_FOUND, "domain '%s' not found", name);
    else
        set_libvirt_error(error, "cannot look up domain '%s'", name);
    return NULL;
}

/* ---- XML ---------------------------------------------------------------- */

static xmlDocPtr parse_xml(const char *xml, const char *what, GError **error)
{
    xmlDocPtr doc = NULL;

    if (xml)
        doc = xmlReadMemory(xml, (int)strlen(xml), NULL, NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "cannot parse the %s XML", what);
    return doc;
}

static char *serialize(xmlDocPtr doc, GError **error)
{
    g_autoptr(xmlBuffer) buffer = xmlBufferCreate();
    xmlSaveCtxtPtr save = buffer ? xmlSaveToBuffer(buffer, "UTF-8", XML_SAVE_NO_DECL) : NULL;

    if (!save || xmlSaveDoc(save, doc) < 0) {
        if (save)
            xmlSaveClose(save);
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot serialize the domain XML");
        return NULL;
    }
    xmlSaveClose(save);
    return g_strndup((const char *)xmlBufferContent(buffer), (gsize)xmlBufferLength(buffer));
}

/* The string values of the nodes @xpath selects in @doc (attributes,
 * elements' text), in document order, empty ones skipped. */
static GPtrArray *xpath_strings(xmlDocPtr doc, const char *xpath)
{
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
    g_autoptr(xmlXPathObject) obj = NULL;
    GPtrArray *values = g_ptr_array_new_with_free_func(g_free);
    int i;

    if (!ctx)
        return values;
    obj = xmlXPathEvalExpression(BAD_CAST xpath, ctx);
    if (!obj || obj->type != XPATH_NODESET || !obj->nodesetval)
        return values;
    for (i = 0; i < obj->nodesetval->nodeNr; i++) {
        xmlChar *text = xmlNodeGetContent(obj->nodesetval->nodeTab[i]);

        if (text && text[0])
            g_ptr_array_add(values, g_strdup((const char *)text));
        xmlFree(text);
    }
    return values;
}

/* The first value of xpath_strings, or NULL. */
static char *xpath_string(xmlDocPtr doc, const char *xpath)
{
    g_autoptr(GPtrArray) values = xpath_strings(doc, xpath);

    return values->len ? g_strdup(g_ptr_array_index(values, 0)) : NULL;
}

/* The first node @xpath selects, serialized, or NULL. */
static char *xpath_node_xml(xmlDocPtr doc, const char *xpath)
{
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
    g_autoptr(xmlXPathObject) obj = NULL;
    g_autoptr(xmlBuffer) buffer = NULL;

    if (!ctx)
        return NULL;
    obj = xmlXPathEvalExpression(BAD_CAST xpath, ctx);
    if (!obj || obj->type != XPATH_NODESET || !obj->nodesetval || obj->nodesetval->nodeNr < 1)
        return NULL;
    buffer = xmlBufferCreate();
    if (!buffer || xmlNodeDump(buffer, doc, obj->nodesetval->nodeTab[0], 0, 0) < 0)
        return NULL;
    return g_strndup((const char *)xmlBufferContent(buffer), (gsize)xmlBufferLength(buffer));
}

static gboolean ptr_array_has(GPtrArray *array, const char *text)
{
    guint i;

    for (i = 0; i < array->len; i++)
        if (g_strcmp0(g_ptr_array_index(array, i), text) == 0)
            return TRUE;
    return FALSE;
}

static void add_unique(GPtrArray *array, const char *text)
{
    if (!ptr_array_has(array, text))
        g_ptr_array_add(array, g_strdup(text));
}

/* ---- preflight ---------------------------------------------------------- */

/* @parent's first child element called @name, or NULL (also for a NULL
 * @parent). */
static xmlNodePtr child_element(xmlNodePtr parent, const char *name)
{
    xmlNodePtr child;

    for (child = parent ? parent->children : NULL; child; child = child->next)
        if (child->type == XML_ELEMENT_NODE && xmlStrEqual(child->name, BAD_CAST name))
            return child;
    return NULL;
}

/* An attribute as GLib memory (libxml2's must go to xmlFree). */
static char *prop(xmlNodePtr node, const char *name)
{
    xmlChar *value = xmlGetProp(node, BAD_CAST name);
    char *copy = g_strdup((const char *)value);

    xmlFree(value);
    return copy;
}

gboolean hv_migrate_check_devices(const char *domain_xml, GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(xmlXPathContext) ctx = NULL;
    g_autoptr(xmlXPathObject) obj = NULL;
    g_autoptr(GString) names = g_string_new(NULL);
    int i, count;

    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    doc = parse_xml(domain_xml, "domain", error);
    if (!doc)
        return FALSE;
    ctx = xmlXPathNewContext(doc);
    obj = ctx ? xmlXPathEvalExpression(BAD_CAST "/domain/devices/hostdev", ctx) : NULL;
    count = obj && obj->nodesetval ? obj->nodesetval->nodeNr : 0;
    if (count == 0)
        return TRUE;
    for (i = 0; i < count; i++) {
        xmlNodePtr node = obj->nodesetval->nodeTab[i];
        xmlNodePtr address = child_element(child_element(node, "source"), "address");
        g_autofree char *domain = NULL, *bus = NULL, *slot = NULL, *function = NULL;

        if (names->len)
            g_string_append(names, ", ");
        if (address) {
            domain = prop(address, "domain");
            bus = prop(address, "bus");
            slot = prop(address, "slot");
            function = prop(address, "function");
        }
        if (bus && slot && function) {
            /* libvirt writes them as 0x.. hex numbers. */
            g_string_append_printf(
                names, "%04x:%02x:%02x.%x", domain ? (guint)g_ascii_strtoull(domain, NULL, 0) : 0,
                (guint)g_ascii_strtoull(bus, NULL, 0), (guint)g_ascii_strtoull(slot, NULL, 0),
                (guint)g_ascii_strtoull(function, NULL, 0));
        } else {
            g_autofree char *type = prop(node, "type");

            g_string_append_printf(names, "a %s host device", type ? type : "");
        }
    }
    g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                "live migration with VFIO devices attached (%s) is not supported: "
                "their state cannot be moved to another host",
                names->str);
    return FALSE;
}

static const char *domain_state_name(int state)
{
    switch (state) {
    case VIR_DOMAIN_SHUTOFF:
        return "shut off";
    case VIR_DOMAIN_CRASHED:
        return "crashed";
    case VIR_DOMAIN_PMSUSPENDED:
        return "suspended by its guest";
    case VIR_DOMAIN_SHUTDOWN:
        return "shutting down";
    default:
        return "in no state";
    }
}

static gboolean check_peer_memory(virDomainPtr dom, virConnectPtr dst, const char *name,
                                  GError **error)
{
    unsigned long max_kib = virDomainGetMaxMemory(dom);
    unsigned long long free_bytes;

    if (max_kib == 0) {
        set_libvirt_error(error, "cannot read the memory size of domain '%s'", name);
        return FALSE;
    }
    virResetLastError();
    free_bytes = virNodeGetFreeMemory(dst);
    if (free_bytes == 0 && virGetLastErrorCode() != VIR_ERR_OK) {
        set_libvirt_error(error, "cannot read the peer's free memory");
        return FALSE;
    }
    if (free_bytes / 1024 < max_kib) {
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "not enough free memory on the peer: domain '%s' needs %lu MiB, the peer "
                    "has %llu MiB free",
                    name, max_kib / 1024, free_bytes / (1024 * 1024));
        return FALSE;
    }
    return TRUE;
}

/* The CPU that this host's hypervisor gives a guest with the host's CPU
 * (host-passthrough): the host-model of its domain capabilities, as a <cpu>
 * element that a peer can be asked about.  Not the host CPU of
 * virConnectGetCapabilities: that one lists features no hypervisor passes on
 * to a guest (monitor, ht, osxsave), which every peer would then "lack".
 * NULL with *unsupported set when this host cannot say. */
static char *host_model_cpu(virConnectPtr conn, const char *arch, const char *machine,
                            const char *virttype, char **model, gboolean *unsupported,
                            GError **error)
{
    g_autofree char *caps = virConnectGetDomainCapabilities(conn, NULL, arch, machine, virttype, 0);
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(xmlXPathContext) ctx = NULL;
    g_autoptr(xmlXPathObject) obj = NULL;
    g_autoptr(xmlBuffer) buffer = NULL;
    xmlNodePtr node;

    *unsupported = FALSE;
    if (!caps) {
        if (virGetLastErrorCode() == VIR_ERR_NO_SUPPORT) {
            *unsupported = TRUE;
            return NULL;
        }
        set_libvirt_error(error, "cannot read this host's domain capabilities");
        return NULL;
    }
    doc = parse_xml(caps, "domain capabilities", error);
    if (!doc)
        return NULL;
    ctx = xmlXPathNewContext(doc);
    obj = ctx ? xmlXPathEvalExpression(
                    BAD_CAST "/domainCapabilities/cpu/mode[@name='host-model'][@supported='yes']",
                    ctx)
              : NULL;
    if (!obj || obj->type != XPATH_NODESET || !obj->nodesetval || obj->nodesetval->nodeNr < 1) {
        *unsupported = TRUE;
        return NULL;
    }
    /* <mode name='host-model' supported='yes'><model/><vendor/><feature/>...
     * becomes <cpu mode='custom' match='exact'> with the same children. */
    node = obj->nodesetval->nodeTab[0];
    xmlNodeSetName(node, BAD_CAST "cpu");
    xmlUnsetProp(node, BAD_CAST "name");
    xmlUnsetProp(node, BAD_CAST "supported");
    xmlSetProp(node, BAD_CAST "mode", BAD_CAST "custom");
    xmlSetProp(node, BAD_CAST "match", BAD_CAST "exact");
    *model = xpath_string(doc, "/domainCapabilities/cpu/cpu/model");
    buffer = xmlBufferCreate();
    if (!buffer || xmlNodeDump(buffer, doc, node, 0, 0) < 0) {
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot serialize this host's CPU");
        return NULL;
    }
    return g_strndup((const char *)xmlBufferContent(buffer), (gsize)xmlBufferLength(buffer));
}

static gboolean check_peer_cpu(virConnectPtr src, virConnectPtr dst, const char *name,
                               xmlDocPtr doc, GError **error)
{
    g_autofree char *mode = xpath_string(doc, "/domain/cpu/@mode");
    g_autofree char *virttype = xpath_string(doc, "/domain/@type");
    g_autofree char *arch = xpath_string(doc, "/domain/os/type/@arch");
    g_autofree char *machine = xpath_string(doc, "/domain/os/type/@machine");
    g_autofree char *cpu_xml = NULL;
    g_autofree char *model = NULL;
    int result;

    if (g_strcmp0(mode, "host-passthrough") == 0 || g_strcmp0(mode, "maximum") == 0) {
        /* The L1 sees this host's CPU: the peer must be able to offer it. */
        gboolean unsupported = FALSE;

        cpu_xml = host_model_cpu(src, arch, machine, virttype, &model, &unsupported, error);
        if (!cpu_xml && !unsupported)
            return FALSE;
        if (cpu_xml && !model)
            model = g_strdup("this host's CPU");
    } else {
        cpu_xml = xpath_node_xml(doc, "/domain/cpu");
        model = xpath_string(doc, "/domain/cpu/model");
    }
    if (!cpu_xml || !model) {
        g_debug("domain %s has no CPU model to compare", name);
        return TRUE; /* the hypervisor's default CPU: any peer of ours has it */
    }
    result = virConnectCompareHypervisorCPU(dst, NULL, arch, machine, virttype, cpu_xml,
                                            VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE);
    if (result == VIR_CPU_COMPARE_INCOMPATIBLE ||
        (result < 0 && virGetLastErrorCode() == VIR_ERR_CPU_INCOMPATIBLE)) {
        const char *reason = result < 0 ? virGetLastErrorMessage() : NULL;

        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "the peer cannot run CPU model '%s' of domain '%s': %s", model, name,
                    reason ? reason : "libvirt says it is incompatible");
        return FALSE;
    }
    if (result < 0) {
        if (virGetLastErrorCode() == VIR_ERR_NO_SUPPORT) {
            g_debug("the peer cannot compare CPUs: %s", virGetLastErrorMessage());
            return TRUE;
        }
        set_libvirt_error(error, "cannot compare CPU model '%s' with the peer's", model);
        return FALSE;
    }
    g_debug("peer CPU check for %s (%s): %d", name, model, result);
    return TRUE;
}

gboolean hv_migrate_preflight(HvConn *src_handle, HvConn *dst_handle, const char *domain,
                              HvBackend backend, gboolean src_nested_state, GError **error)
{
    virConnectPtr src = hv_conn_get_libvirt(src_handle);
    virConnectPtr dst = hv_conn_get_libvirt(dst_handle);
    g_autoptr(virDomain) dom = NULL;
    g_autofree char *xml = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    int state = VIR_DOMAIN_NOSTATE, reason = 0;

    g_return_val_if_fail(src != NULL && dst != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    dom = lookup_domain(src, domain, error);
    if (!dom)
        return FALSE;
    if (virDomainGetState(dom, &state, &reason, 0) < 0) {
        set_libvirt_error(error, "cannot read the state of domain '%s'", domain);
        return FALSE;
    }
    if (state != VIR_DOMAIN_RUNNING && state != VIR_DOMAIN_PAUSED && state != VIR_DOMAIN_BLOCKED) {
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "domain '%s' is %s: only a running or paused domain can be live-migrated",
                    domain, domain_state_name(state));
        return FALSE;
    }
    xml = virDomainGetXMLDesc(dom, 0);
    if (!xml) {
        set_libvirt_error(error, "cannot read the XML of domain '%s'", domain);
        return FALSE;
    }
    if (!hv_migrate_check_devices(xml, error))
        return FALSE;
    if (backend == HV_BACKEND_KVM && !src_nested_state) {
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "this host's KVM lacks KVM_CAP_NESTED_STATE: the state of the L2 guests "
                    "running inside domain '%s' could not be migrated",
                    domain);
        return FALSE;
    }
    doc = parse_xml(xml, "domain", error);
    if (!doc)
        return FALSE;
    return check_peer_memory(dom, dst, domain, error) &&
           check_peer_cpu(src, dst, domain, doc, error);
}

/* ---- volumes ------------------------------------------------------------ */

/* A volume of ours that a domain path names. */
typedef struct {
    char *pool;
    char *name;
} VolRef;

static void vol_ref_free(gpointer data)
{
    VolRef *ref = data;

    g_free(ref->pool);
    g_free(ref->name);
    g_free(ref);
}

static virStorageVolPtr lookup_volume(virConnectPtr conn, const char *pool_name, const char *name,
                                      GError **error)
{
    g_autoptr(virStoragePool) pool = virStoragePoolLookupByName(conn, pool_name);
    virStorageVolPtr vol;

    if (!pool) {
        set_libvirt_error(error, "storage pool '%s'", pool_name);
        return NULL;
    }
    vol = virStorageVolLookupByName(pool, name);
    if (!vol)
        set_libvirt_error(error, "volume '%s' in storage pool '%s'", name, pool_name);
    return vol;
}

/* The volume at @path, which must be in one of our two pools: anything
 * else could not be found on the peer. */
static gboolean resolve_path(virConnectPtr conn, const char *path, VolRef **ref, GError **error)
{
    g_autoptr(virStorageVol) vol = virStorageVolLookupByPath(conn, path);
    g_autoptr(virStoragePool) pool = NULL;
    const char *pool_name, *name;

    if (!vol) {
        if (virGetLastErrorCode() != VIR_ERR_NO_STORAGE_VOL) {
            set_libvirt_error(error, "cannot look up the volume at '%s'", path);
            return FALSE;
        }
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "'%s' is no volume of storage pool '%s' or '%s': the peer could not get it",
                    path, HV_POOL_IMAGES, HV_POOL_DISKS);
        return FALSE;
    }
    pool = virStoragePoolLookupByVolume(vol);
    pool_name = pool ? virStoragePoolGetName(pool) : NULL;
    name = virStorageVolGetName(vol);
    if (!pool_name || !name) {
        set_libvirt_error(error, "cannot tell the storage pool of '%s'", path);
        return FALSE;
    }
    if (g_strcmp0(pool_name, HV_POOL_IMAGES) != 0 && g_strcmp0(pool_name, HV_POOL_DISKS) != 0) {
        g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                    "'%s' is in storage pool '%s', not '%s' or '%s': the peer could not get it",
                    path, pool_name, HV_POOL_IMAGES, HV_POOL_DISKS);
        return FALSE;
    }
    *ref = g_new0(VolRef, 1);
    (*ref)->pool = g_strdup(pool_name);
    (*ref)->name = g_strdup(name);
    return TRUE;
}

/* The backing file of overlay @name in HV_POOL_DISKS (*@path NULL when it
 * has none) and its format. */
static gboolean overlay_backing(virConnectPtr conn, const char *name, char **path, char **format,
                                GError **error)
{
    g_autoptr(virStorageVol) vol = lookup_volume(conn, HV_POOL_DISKS, name, error);
    g_autofree char *xml = NULL;
    g_autoptr(xmlDoc) doc = NULL;

    if (!vol)
        return FALSE;
    xml = virStorageVolGetXMLDesc(vol, 0);
    if (!xml) {
        set_libvirt_error(error, "cannot read the definition of volume '%s'", name);
        return FALSE;
    }
    doc = parse_xml(xml, "volume", error);
    if (!doc)
        return FALSE;
    *path = xpath_string(doc, "/volume/backingStore/path");
    if (format)
        *format = xpath_string(doc, "/volume/backingStore/format/@type");
    return TRUE;
}

/* resolve_path, but a path of a file the pool has not seen yet (libvirt
 * writes the UEFI variables behind the pool's back) gets one refresh of
 * HV_POOL_DISKS and another look; *@refreshed says that refresh was done,
 * so that a domain costs one refresh at most, and none when every file is
 * a known volume. */
static gboolean resolve_path_refreshing(virConnectPtr conn, const char *path, gboolean *refreshed,
                                        VolRef **ref, GError **error)
{
    GError *local = NULL;

    if (resolve_path(conn, path, ref, &local))
        return TRUE;
    if (*refreshed || !g_error_matches(local, HV_ERROR, HV_ERROR_UNSUPPORTED)) {
        g_propagate_error(error, local);
        return FALSE;
    }
    g_clear_error(&local);
    *refreshed = TRUE;
    {
        g_autoptr(virStoragePool) pool = virStoragePoolLookupByName(conn, HV_POOL_DISKS);

        if (!pool || virStoragePoolRefresh(pool, 0) < 0)
            g_debug("cannot refresh pool %s: %s", HV_POOL_DISKS, virGetLastErrorMessage());
    }
    return resolve_path(conn, path, ref, error);
}

/* Every path of the domain in our pools: @refs (path -> VolRef) and the
 * volume names by kind: @images (HV_POOL_IMAGES), @overlays (HV_POOL_DISKS,
 * over a backing image) and @wholes (HV_POOL_DISKS, standing alone: the
 * UEFI variables, the cloud-init seed).  The lists may be NULL. */
static gboolean collect_volumes(virConnectPtr src, xmlDocPtr doc, GPtrArray *images,
                                GPtrArray *overlays, GPtrArray *wholes, GHashTable *refs,
                                GError **error)
{
    g_autoptr(GPtrArray) paths =
        xpath_strings(doc, "/domain/os/kernel | /domain/os/initrd | /domain/os/nvram"
                           " | /domain/devices/disk/source/@file");
    gboolean refreshed = FALSE;
    guint i;

    for (i = 0; i < paths->len; i++) {
        const char *path = g_ptr_array_index(paths, i);
        g_autofree char *backing = NULL;
        VolRef *ref = NULL;
        VolRef *backing_ref = NULL;

        if (!resolve_path_refreshing(src, path, &refreshed, &ref, error))
            return FALSE;
        g_hash_table_replace(refs, g_strdup(path), ref);
        if (g_strcmp0(ref->pool, HV_POOL_IMAGES) == 0) {
            if (images)
                add_unique(images, ref->name);
            continue;
        }
        if (!overlay_backing(src, ref->name, &backing, NULL, error))
            return FALSE;
        if (!backing) {
            if (wholes)
                add_unique(wholes, ref->name);
            continue;
        }
        if (overlays)
            add_unique(overlays, ref->name);
        if (!resolve_path(src, backing, &backing_ref, error))
            return FALSE;
        if (g_strcmp0(backing_ref->pool, HV_POOL_IMAGES) != 0) {
            g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                        "overlay '%s' is backed by '%s', not by an image of storage pool '%s'",
                        ref->name, backing, HV_POOL_IMAGES);
            vol_ref_free(backing_ref);
            return FALSE;
        }
        if (images)
            add_unique(images, backing_ref->name);
        /* The live XML names the backing file too (<backingStore>). */
        g_hash_table_replace(refs, g_steal_pointer(&backing), backing_ref);
    }
    return TRUE;
}

static GHashTable *new_ref_table(void)
{
    return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, vol_ref_free);
}

/* The domain's XML (@flags for virDomainGetXMLDesc), parsed. */
static xmlDocPtr domain_doc(virConnectPtr conn, const char *domain, unsigned int flags,
                            char **xml_out, GError **error)
{
    g_autoptr(virDomain) dom = lookup_domain(conn, domain, error);
    g_autofree char *xml = NULL;
    xmlDocPtr doc;

    if (!dom)
        return NULL;
    xml = virDomainGetXMLDesc(dom, flags);
    if (!xml) {
        set_libvirt_error(error, "cannot read the XML of domain '%s'", domain);
        return NULL;
    }
    doc = parse_xml(xml, "domain", error);
    if (doc && xml_out)
        *xml_out = g_steal_pointer(&xml);
    return doc;
}

gboolean hv_migrate_list_volumes(HvConn *src_handle, const char *domain, GPtrArray **images,
                                 GPtrArray **overlays, GPtrArray **wholes, GError **error)
{
    virConnectPtr src = hv_conn_get_libvirt(src_handle);
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(GHashTable) refs = new_ref_table();
    g_autoptr(GPtrArray) image_names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) overlay_names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) whole_names = g_ptr_array_new_with_free_func(g_free);

    g_return_val_if_fail(src != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    doc = domain_doc(src, domain, 0, NULL, error);
    if (!doc || !collect_volumes(src, doc, image_names, overlay_names, whole_names, refs, error))
        return FALSE;
    if (images)
        *images = g_steal_pointer(&image_names);
    if (overlays)
        *overlays = g_steal_pointer(&overlay_names);
    if (wholes)
        *wholes = g_steal_pointer(&whole_names);
    return TRUE;
}

gboolean hv_migrate_create_overlays(HvConn *src_handle, HvConn *dst_handle, GPtrArray *overlays,
                                    GPtrArray *created, GError **error)
{
    virConnectPtr src = hv_conn_get_libvirt(src_handle);
    virConnectPtr dst = hv_conn_get_libvirt(dst_handle);
    guint i;

    g_return_val_if_fail(src != NULL && dst != NULL && overlays != NULL && created != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    for (i = 0; i < overlays->len; i++) {
        const char *name = g_ptr_array_index(overlays, i);
        g_autofree char *backing = NULL, *format = NULL, *dst_backing = NULL, *path = NULL;
        VolRef *ref = NULL;
        gboolean exists;
        GError *local = NULL;

        if (!overlay_backing(src, name, &backing, &format, error))
            return FALSE;
        if (!backing || !format) {
            g_set_error(error, HV_ERROR, HV_ERROR_UNSUPPORTED,
                        "volume '%s' has no backing image of known format: only its top layer "
                        "could be copied",
                        name);
            return FALSE;
        }
        if (!resolve_path(src, backing, &ref, error))
            return FALSE;
        dst_backing = hv_volume_path(dst_handle, HV_POOL_IMAGES, ref->name, &local);
        vol_ref_free(ref);
        if (!dst_backing) {
            g_propagate_prefixed_error(error, local,
                                       "the peer lacks the backing image of '%s': ", name);
            return FALSE;
        }
        exists = hv_volume_exists(dst_handle, HV_POOL_DISKS, name, &local);
        if (local) {
            g_propagate_prefixed_error(error, local, "on the peer: ");
            return FALSE;
        }
        if (exists) {
            g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                        "the peer has a volume '%s' in storage pool '%s' already", name,
                        HV_POOL_DISKS);
            return FALSE;
        }
        path =
            hv_volume_create_overlay(dst_handle, HV_POOL_DISKS, name, dst_backing, format, error);
        if (!path)
            return FALSE;
        g_ptr_array_add(created, g_strdup(name));
    }
    return TRUE;
}

/* ---- volume copy -------------------------------------------------------- */

gboolean hv_volume_copy(HvConn *src_handle, HvConn *dst_handle, const char *pool, const char *name,
                        HvCopyProgress progress, gpointer data, GCancellable *cancellable,
                        gboolean *copied, GError **error)
{
    virConnectPtr src = hv_conn_get_libvirt(src_handle);
    virConnectPtr dst = hv_conn_get_libvirt(dst_handle);
    g_autoptr(virStorageVol) vol = NULL;
    g_autoptr(virStream) stream = NULL;
    g_autoptr(HvUpload) upload = NULL;
    g_autofree char *buf = NULL;
    virStorageVolInfo info;
    guint64 total = 0, done = 0, size = 0;
    gboolean exact = FALSE, exists;
    GError *local = NULL;

    g_return_val_if_fail(src != NULL && dst != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (copied)
        *copied = FALSE;
    exists = hv_volume_exists(dst_handle, pool, name, &local);
    if (local) {
        g_propagate_prefixed_error(error, local, "on the peer: ");
        return FALSE;
    }
    if (exists) {
        g_debug("the peer has %s/%s already", pool, name);
        return TRUE;
    }
    vol = lookup_volume(src, pool, name, error);
    if (!vol)
        return FALSE;
    /* The file's size (what a download sends), not the virtual size. */
    if (virStorageVolGetInfoFlags(vol, &info, VIR_STORAGE_VOL_GET_PHYSICAL) == 0) {
        total = info.allocation;
        exact = TRUE;
    } else if (virStorageVolGetInfo(vol, &info) == 0) {
        total = info.capacity;
    } else {
        set_libvirt_error(error, "cannot read the size of volume '%s'", name);
        return FALSE;
    }

    upload = hv_volume_upload_begin_unhashed(dst_handle, pool, name, &local);
    if (!upload) {
        g_propagate_prefixed_error(error, local, "on the peer: ");
        return FALSE;
    }
    stream = virStreamNew(src, 0);
    if (!stream || virStorageVolDownload(vol, stream, 0, 0, 0) < 0) {
        set_libvirt_error(error, "cannot download volume '%s'", name);
        return FALSE; /* freeing the upload deletes the peer's volume */
    }
    buf = g_malloc(COPY_PIECE);
    for (;;) {
        int n;

        if (g_cancellable_set_error_if_cancelled(cancellable, error)) {
            virStreamAbort(stream);
            return FALSE;
        }
        n = virStreamRecv(stream, buf, COPY_PIECE);
        if (n < 0) {
            set_libvirt_error(
                error, "cannot download volume '%s' after %" G_GUINT64_FORMAT " bytes", name, done);
            virStreamAbort(stream);
            return FALSE;
        }
        if (n == 0)
            break;
        if (!hv_volume_upload_write(upload, buf, (gsize)n, &local)) {
            g_propagate_prefixed_error(error, local, "on the peer: ");
            virStreamAbort(stream);
            return FALSE;
        }
        done += (guint64)n;
        if (progress)
            progress(done, MAX(total, done), data);
    }
    if (virStreamFinish(stream) < 0) {
        set_libvirt_error(error, "cannot complete the download of volume '%s'", name);
        return FALSE;
    }
    if (!hv_volume_upload_finish(upload, NULL, &size, &local)) {
        g_propagate_prefixed_error(error, local, "on the peer: ");
        return FALSE;
    }
    if (exact && size != total) {
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED,
                    "copied %" G_GUINT64_FORMAT
                    " bytes of volume '%s', which has %" G_GUINT64_FORMAT,
                    size, name, total);
        if (!hv_volume_delete(dst_handle, pool, name, &local)) {
            g_debug("cannot delete the short copy: %s", local->message);
            g_clear_error(&local);
        }
        return FALSE;
    }
    {
        /* The upload made a raw volume; a refresh lets libvirt probe the
         * format (a qcow2 image) as it would have on the source. */
        g_autoptr(virStoragePool) p = virStoragePoolLookupByName(dst, pool);

        if (!p || virStoragePoolRefresh(p, 0) < 0)
            g_debug("cannot refresh the peer's pool %s: %s", pool, virGetLastErrorMessage());
    }
    g_debug("copied %s/%s to the peer (%" G_GUINT64_FORMAT " bytes)", pool, name, size);
    if (copied)
        *copied = TRUE;
    return TRUE;
}

/* ---- destination XML ---------------------------------------------------- */

static void rewrite_node(xmlNodePtr node, GHashTable *paths)
{
    for (; node; node = node->next) {
        if (node->type == XML_ELEMENT_NODE) {
            xmlAttrPtr attr;

            for (attr = node->properties; attr; attr = attr->next) {
                xmlChar *value = xmlNodeGetContent((xmlNodePtr)attr);
                const char *to = value ? g_hash_table_lookup(paths, (const char *)value) : NULL;

                if (to)
                    xmlSetNsProp(node, attr->ns, attr->name, BAD_CAST to);
                xmlFree(value);
            }
            rewrite_node(node->children, paths);
        } else if (node->type == XML_TEXT_NODE && node->content) {
            const char *to = g_hash_table_lookup(paths, (const char *)node->content);

            /* A text node's content is stored as is and escaped on output. */
            if (to)
                xmlNodeSetContent(node, BAD_CAST to);
        }
    }
}

char *hv_migrate_rewrite_xml(const char *domain_xml, GHashTable *paths, GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;

    g_return_val_if_fail(paths != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    doc = parse_xml(domain_xml, "domain", error);
    if (!doc)
        return NULL;
    rewrite_node(xmlDocGetRootElement(doc), paths);
    return serialize(doc, error);
}

/* <state>/consoles of the peer, from its images pool at
 * <state>/pools/images. */
static char *peer_console_dir(virConnectPtr dst, GError **error)
{
    g_autoptr(virStoragePool) pool = virStoragePoolLookupByName(dst, HV_POOL_IMAGES);
    g_autofree char *xml = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    g_autofree char *path = NULL, *pools = NULL, *pools_name = NULL, *state = NULL;

    if (!pool) {
        set_libvirt_error(error, "the peer's storage pool '%s'", HV_POOL_IMAGES);
        return NULL;
    }
    xml = virStoragePoolGetXMLDesc(pool, 0);
    if (!xml) {
        set_libvirt_error(error, "cannot read the peer's storage pool '%s'", HV_POOL_IMAGES);
        return NULL;
    }
    doc = parse_xml(xml, "storage pool", error);
    if (!doc)
        return NULL;
    path = xpath_string(doc, "/pool/target/path");
    if (path) {
        g_autofree char *canonical = g_canonicalize_filename(path, "/");

        pools = g_path_get_dirname(canonical);
        pools_name = g_path_get_basename(pools);
        state = g_path_get_dirname(pools);
    }
    if (!path || g_strcmp0(pools_name, "pools") != 0) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                    "the peer's storage pool '%s' is at '%s', not <state>/pools/images: its "
                    "console dir is unknown",
                    HV_POOL_IMAGES, path ? path : "");
        return NULL;
    }
    return g_build_filename(state, "consoles", NULL);
}

char *hv_migrate_destination_xml(HvConn *src_handle, HvConn *dst_handle, const char *domain,
                                 char **dst_console_log, GError **error)
{
    virConnectPtr src = hv_conn_get_libvirt(src_handle);
    virConnectPtr dst = hv_conn_get_libvirt(dst_handle);
    g_autofree char *xml = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(GHashTable) refs = new_ref_table();
    g_autoptr(GHashTable) paths = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GPtrArray) consoles = NULL;
    g_autofree char *console_log = NULL;
    GHashTableIter iter;
    gpointer key, value;
    char *out;

    g_return_val_if_fail(src != NULL && dst != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    /* What libvirt itself would send: no runtime-only elements. */
    doc = domain_doc(src, domain, VIR_DOMAIN_XML_MIGRATABLE | VIR_DOMAIN_XML_SECURE, &xml, error);
    if (!doc || !collect_volumes(src, doc, NULL, NULL, NULL, refs, error))
        return NULL;
    g_hash_table_iter_init(&iter, refs);
    while (g_hash_table_iter_next(&iter, &key, &value)) {
        const VolRef *ref = value;
        GError *local = NULL;
        char *dst_path = hv_volume_path(dst_handle, ref->pool, ref->name, &local);

        if (!dst_path) {
            g_propagate_prefixed_error(
                error, local, "the peer lacks volume '%s' of '%s': ", ref->name, ref->pool);
            return NULL;
        }
        g_hash_table_replace(paths, g_strdup(key), dst_path);
    }

    consoles = xpath_strings(doc, "/domain/devices/serial[@type='file']/source/@path"
                                  " | /domain/devices/console[@type='file']/source/@path"
                                  " | /domain/devices/*/log/@file");
    if (consoles->len) {
        g_autofree char *dir = peer_console_dir(dst, error);
        guint i;

        if (!dir)
            return NULL;
        for (i = 0; i < consoles->len; i++) {
            const char *path = g_ptr_array_index(consoles, i);
            g_autofree char *base = g_path_get_basename(path);

            if (!g_hash_table_contains(paths, path))
                g_hash_table_replace(paths, g_strdup(path), g_build_filename(dir, base, NULL));
        }
        console_log = g_strdup(g_hash_table_lookup(paths, g_ptr_array_index(consoles, 0)));
    }

    out = hv_migrate_rewrite_xml(xml, paths, error);
    if (out && dst_console_log)
        *dst_console_log = g_steal_pointer(&console_log);
    return out;
}

/* ---- migration ---------------------------------------------------------- */

/* virDomainMigrateToURI3 blocks for the whole migration: it runs in a
 * thread of its own while the caller's thread polls the job. */
typedef struct {
    virDomainPtr dom;
    char *dst_uri;
    virTypedParameterPtr params;
    int nparams;
    unsigned int flags;

    GMutex lock;
    GCond cond;
    gboolean done;
    int ret;
    virErrorPtr err; /* the migration thread's libvirt error */
} MigrateJob;

static gpointer migrate_thread(gpointer data)
{
    MigrateJob *job = data;
    int ret = virDomainMigrateToURI3(job->dom, job->dst_uri, job->params,
                                     (unsigned int)job->nparams, job->flags);
    virErrorPtr err = ret < 0 ? virSaveLastError() : NULL;

    g_mutex_lock(&job->lock);
    job->ret = ret;
    job->err = err;
    job->done = TRUE;
    g_cond_signal(&job->cond);
    g_mutex_unlock(&job->lock);
    return NULL;
}

static guint64 param_ull(virTypedParameterPtr params, int nparams, const char *name)
{
    unsigned long long value = 0;

    if (virTypedParamsGetULLong(params, nparams, name, &value) != 1)
        return 0;
    return value;
}

static int percent_of(guint64 done, guint64 total)
{
    if (total == 0)
        return 0;
    return (int)MIN((guint64)100, done * 100 / total);
}

/* One look at the running job.  Copy-storage mirrors the disks before the
 * memory moves, so while disks remain that is the stage. */
static gboolean poll_job(virDomainPtr dom, HvMigrateProgress *progress)
{
    virTypedParameterPtr params = NULL;
    int nparams = 0, type = VIR_DOMAIN_JOB_NONE;
    guint64 disk_total, disk_remaining;

    if (virDomainGetJobStats(dom, &type, &params, &nparams, 0) < 0) {
        g_debug("cannot read the migration job: %s", virGetLastErrorMessage());
        return FALSE;
    }
    memset(progress, 0, sizeof(*progress));
    progress->stage = "setup";
    disk_total = param_ull(params, nparams, VIR_DOMAIN_JOB_DISK_TOTAL);
    disk_remaining = param_ull(params, nparams, VIR_DOMAIN_JOB_DISK_REMAINING);
    if (type == VIR_DOMAIN_JOB_NONE) {
        /* not started yet, or over */
    } else if (disk_total > 0 && disk_remaining > 0) {
        progress->stage = "storage";
        progress->bytes_total = disk_total;
        progress->bytes_remaining = disk_remaining;
        progress->bytes_done = param_ull(params, nparams, VIR_DOMAIN_JOB_DISK_PROCESSED);
    } else if (param_ull(params, nparams, VIR_DOMAIN_JOB_DATA_TOTAL) > 0) {
        progress->stage = "memory";
        progress->bytes_total = param_ull(params, nparams, VIR_DOMAIN_JOB_DATA_TOTAL);
        progress->bytes_remaining = param_ull(params, nparams, VIR_DOMAIN_JOB_DATA_REMAINING);
        progress->bytes_done = param_ull(params, nparams, VIR_DOMAIN_JOB_DATA_PROCESSED);
    }
    /* Remaining, not processed: dirtied pages are sent again, so processed
     * can exceed the total. */
    if (progress->bytes_total > 0)
        progress->percent = percent_of(progress->bytes_total -
                                           MIN(progress->bytes_remaining, progress->bytes_total),
                                       progress->bytes_total);
    virTypedParamsFree(params, nparams);
    return TRUE;
}

/* The completed job's figures: libvirt hands them to the destination with
 * the domain (the source's domain object is gone after UNDEFINE_SOURCE).
 * KEEP_COMPLETED: the peer's turtled reads them too, for its stats, and
 * libvirt would otherwise drop them at the first read. */
static gboolean completed_stats(virConnectPtr dst, const char *dst_uri, const char *domain,
                                HvMigrateResult *result)
{
    /* The caller's connection to the peer when it has one: opening another
     * costs a round of handshakes after the guest already runs there. */
    g_autoptr(virConnect) opened = dst ? NULL : virConnectOpen(dst_uri);
    virConnectPtr conn = dst ? dst : opened;
    g_autoptr(virDomain) dom = NULL;
    virTypedParameterPtr params = NULL;
    int nparams = 0, type = VIR_DOMAIN_JOB_NONE;
    guint64 bytes;

    if (conn)
        dom = virDomainLookupByName(conn, domain);
    if (!dom || virDomainGetJobStats(dom, &type, &params, &nparams,
                                     VIR_DOMAIN_JOB_STATS_COMPLETED |
                                         VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED) < 0) {
        g_debug("no completed job stats on the peer: %s", virGetLastErrorMessage());
        return FALSE;
    }
    result->total_ms = param_ull(params, nparams, VIR_DOMAIN_JOB_TIME_ELAPSED);
    result->downtime_ms = param_ull(params, nparams, VIR_DOMAIN_JOB_DOWNTIME);
    bytes = param_ull(params, nparams, VIR_DOMAIN_JOB_DATA_PROCESSED);
    if (bytes == 0)
        bytes = param_ull(params, nparams, VIR_DOMAIN_JOB_MEMORY_PROCESSED) +
                param_ull(params, nparams, VIR_DOMAIN_JOB_DISK_PROCESSED);
    result->bytes = bytes;
    virTypedParamsFree(params, nparams);
    return type == VIR_DOMAIN_JOB_COMPLETED;
}

static gboolean add_string_param(virTypedParameterPtr *params, int *nparams, int *max,
                                 const char *name, const char *value, GError **error)
{
    if (virTypedParamsAddString(params, nparams, max, name, value) == 0)
        return TRUE;
    set_libvirt_error(error, "cannot set migration parameter '%s'", name);
    return FALSE;
}

/* libvirt normally resumes the source after a failed migration; a domain
 * left paused by it (not by its owner) is resumed here. */
static void keep_running(virDomainPtr dom, const char *name, int state_before)
{
    int state = VIR_DOMAIN_NOSTATE, reason = 0;

    if (state_before != VIR_DOMAIN_RUNNING || virDomainGetState(dom, &state, &reason, 0) < 0 ||
        state != VIR_DOMAIN_PAUSED)
        return;
    if (virDomainResume(dom) < 0)
        g_debug("cannot resume %s after the failed migration: %s", name, virGetLastErrorMessage());
    else
        g_debug("resumed %s, left paused (reason %d) by the failed migration", name, reason);
}

static gboolean run_once(virConnectPtr src, virConnectPtr dst, const char *domain,
                         const char *dst_uri, const char *migrate_uri, const char *dest_xml,
                         gboolean copy_storage, HvMigrateProgressFunc progress, gpointer data,
                         GCancellable *cancellable, HvMigrateResult *result, GError **error)
{
    g_autoptr(virDomain) dom = NULL;
    virTypedParameterPtr params = NULL;
    int nparams = 0, max = 0;
    int state_before = VIR_DOMAIN_NOSTATE, reason = 0;
    MigrateJob job = {0};
    GThread *thread;
    HvMigrateProgress last = {0, "setup", 0, 0, 0};
    gboolean aborted = FALSE, cancelled = FALSE;
    gint64 started = g_get_monotonic_time();
    gint64 returned;
    HvMigrateResult figures = {0};

    g_return_val_if_fail(src != NULL && dst_uri != NULL && dest_xml != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (g_cancellable_set_error_if_cancelled(cancellable, error))
        return FALSE;
    dom = lookup_domain(src, domain, error);
    if (!dom)
        return FALSE;
    if (virDomainGetState(dom, &state_before, &reason, 0) < 0) {
        set_libvirt_error(error, "cannot read the state of domain '%s'", domain);
        return FALSE;
    }
    if ((migrate_uri &&
         !add_string_param(&params, &nparams, &max, VIR_MIGRATE_PARAM_URI, migrate_uri, error)) ||
        !add_string_param(&params, &nparams, &max, VIR_MIGRATE_PARAM_DEST_XML, dest_xml, error) ||
        /* Without it the peer would persist the source's definition, with
         * the source's paths. */
        !add_string_param(&params, &nparams, &max, VIR_MIGRATE_PARAM_PERSIST_XML, dest_xml,
                          error)) {
        virTypedParamsFree(params, nparams);
        return FALSE;
    }

    job.dom = dom;
    job.dst_uri = g_strdup(dst_uri);
    job.params = params;
    job.nparams = nparams;
    job.flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST |
                VIR_MIGRATE_UNDEFINE_SOURCE | VIR_MIGRATE_ABORT_ON_ERROR;
    if (copy_storage)
        job.flags |= VIR_MIGRATE_NON_SHARED_INC;
    g_mutex_init(&job.lock);
    g_cond_init(&job.cond);
    g_debug("migrating %s to %s (data over %s, copy-storage %d)", domain, dst_uri,
            migrate_uri ? migrate_uri : "libvirt's default", copy_storage);
    thread = g_thread_new("hv-migrate", migrate_thread, &job);

    g_mutex_lock(&job.lock);
    while (!job.done) {
        gint64 deadline = g_get_monotonic_time() + POLL_INTERVAL_MS * G_TIME_SPAN_MILLISECOND;

        while (!job.done && g_cond_wait_until(&job.cond, &job.lock, deadline))
            ;
        if (job.done)
            break;
        g_mutex_unlock(&job.lock);
        if (g_cancellable_is_cancelled(cancellable)) {
            cancelled = TRUE;
            /* Before the job exists there is nothing to abort: try again
             * on the next tick. */
            if (!aborted) {
                if (virDomainAbortJob(dom) == 0)
                    aborted = TRUE;
                else
                    g_debug("cannot abort the migration of %s yet: %s", domain,
                            virGetLastErrorMessage());
            }
        } else if (poll_job(dom, &last) && progress) {
            progress(&last, data);
        }
        g_mutex_lock(&job.lock);
    }
    g_mutex_unlock(&job.lock);
    returned = g_get_monotonic_time();
    g_thread_join(thread);
    g_mutex_clear(&job.lock);
    g_cond_clear(&job.cond);
    g_free(job.dst_uri);
    virTypedParamsFree(params, nparams);

    if (job.ret < 0) {
        if (cancelled) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                        "the migration of domain '%s' was cancelled", domain);
        } else {
            g_set_error(error, HV_ERROR, HV_ERROR_LIBVIRT, "cannot migrate domain '%s' to %s: %s",
                        domain, dst_uri,
                        job.err && job.err->message ? job.err->message : "unknown libvirt error");
        }
        virFreeError(job.err);
        keep_running(dom, domain, state_before);
        return FALSE;
    }
    /* A cancel that came too late: the domain runs on the peer, and
     * that is what the caller must hear. */
    if (cancelled)
        g_debug("the migration of %s completed before it could be aborted", domain);

    if (!completed_stats(dst, dst_uri, domain, &figures)) {
        figures.bytes = last.bytes_done;
    }
    figures.call_ms = (guint64)((returned - started) / 1000);
    if (figures.total_ms == 0)
        figures.total_ms = (guint64)((g_get_monotonic_time() - started) / 1000);
    if (result)
        *result = figures;
    if (progress) {
        HvMigrateProgress final = {100, "done", figures.bytes, MAX(last.bytes_total, figures.bytes),
                                   0};

        progress(&final, data);
    }
    g_debug("migrated %s to %s in %" G_GUINT64_FORMAT " ms, downtime %" G_GUINT64_FORMAT " ms",
            domain, dst_uri, figures.total_ms, figures.downtime_ms);
    return TRUE;
}

/* QEMU (7.2, as in Debian 12) under TCG saves a vCPU that is running the L2
 * (SVM guest mode) but carries no nested state for it (that exists only
 * under KVM), and the destination then refuses the stream ("vCPU set in
 * guest-mode inconsistent with migrated kernel nested state").  Where the
 * switchover catches the vCPU is chance (2 of about 30 migrations in our
 * test runs, with an L2 beating) and the source keeps running, so another
 * attempt is the cure.  The source does not always hear the reason: it may
 * only see its job fail when the destination hangs up, so that failure is
 * tried again too, as long as the peer still answers (a dead peer is not
 * worth another attempt). */
#define NESTED_GUEST_MODE_REFUSAL "guest-mode inconsistent with migrated kernel nested state"
#define JOB_FAILED                "job 'migration out' unexpectedly failed"
#define MIGRATE_ATTEMPTS          4

static gboolean worth_another_attempt(const GError *error, const char *dst_uri)
{
    if (strstr(error->message, NESTED_GUEST_MODE_REFUSAL) == NULL &&
        strstr(error->message, JOB_FAILED) == NULL)
        return FALSE;
    /* A connection of its own: the question is whether the peer answers
     * now, after a failure that may have broken an older one. */
    g_autoptr(virConnect) peer = virConnectOpen(dst_uri);
    return peer != NULL && virConnectIsAlive(peer) == 1;
}

gboolean hv_migrate_run(HvConn *src_handle, HvConn *dst_handle, const char *domain,
                        const char *dst_uri, const char *migrate_uri, const char *dest_xml,
                        gboolean copy_storage, HvMigrateProgressFunc progress, gpointer data,
                        GCancellable *cancellable, HvMigrateResult *result, GError **error)
{
    virConnectPtr src = hv_conn_get_libvirt(src_handle);
    virConnectPtr dst = dst_handle ? hv_conn_get_libvirt(dst_handle) : NULL;
    for (int attempt = 1;; attempt++) {
        g_autoptr(GError) local = NULL;
        if (run_once(src, dst, domain, dst_uri, migrate_uri, dest_xml, copy_storage, progress, data,
                     cancellable, result, &local))
            return TRUE;
        if (attempt == MIGRATE_ATTEMPTS || g_cancellable_is_cancelled(cancellable) ||
            !worth_another_attempt(local, dst_uri)) {
            if (attempt > 1)
                g_prefix_error(&local, "attempt %d of %d: ", attempt, MIGRATE_ATTEMPTS);
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        g_message("migration of %s, attempt %d of %d failed (%s); trying again", domain, attempt,
                  MIGRATE_ATTEMPTS, local->message);
        if (progress) {
            HvMigrateProgress retry = {0, "retrying after a failed switchover", 0, 0, 0};
            progress(&retry, data);
        }
        /* The peer tears its half down first. */
        g_usleep(G_USEC_PER_SEC);
    }
}
