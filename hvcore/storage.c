#define G_LOG_DOMAIN "hv-storage"

#include "hvcore/storage.h"

#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>
#include <libxml/xpath.h>

#include "hvcore/error.h"
#include "hvcore/libvirt-private.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlBuffer, xmlBufferFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathContext, xmlXPathFreeContext)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathObject, xmlXPathFreeObject)

/* The size of the stream messages an upload is cut into and gathered up to
 * (libmicrohttpd hands over smaller pieces): 64 KiB, the capacity of the
 * pipe libvirtd writes each message into for its iohelper.  Measured with
 * tests/bench/upload on a quiet machine: 256 KiB messages cost libvirtd
 * twice the CPU (partial pipe writes, a wakeup for each rest) and made the
 * upload 0.6-0.7x virsh vol-upload; 64 KiB ones, 1.0-1.1x. */
#define UPLOAD_PIECE (64 * 1024)

/* ---- errors ------------------------------------------------------------- */

/* The error code for the libvirt error of this thread: the caller's code
 * when it names no better one. */
static HvErrorCode libvirt_code(void)
{
    switch (virGetLastErrorCode()) {
    case VIR_ERR_NO_STORAGE_POOL:
    case VIR_ERR_NO_STORAGE_VOL:
        return HV_ERROR_NOT_FOUND;
    case VIR_ERR_NO_SUPPORT:
        return HV_ERROR_UNSUPPORTED;
    default:
        return HV_ERROR_LIBVIRT;
    }
}

static void set_libvirt_error(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* "<what>: <libvirt's message>" with libvirt_code(). */
static void set_libvirt_error(GError **error, const char *format, ...)
{
    va_list args;
    g_autofree char *what = NULL;
    const char *message = virGetLastErrorMessage();

    va_start(args, format);
    what = g_strdup_vprintf(format, args);
    va_end(args);
    g_set_error(error, HV_ERROR, libvirt_code(), "%s: %s", what,
                message ? message : "unknown libvirt error");
}

/* ---- names and XML ------------------------------------------------------ */

gboolean hv_volume_name_is_valid(const char *name)
{
    gsize i;

    if (!name || !name[0] || strlen(name) > HV_VOLUME_NAME_MAX)
        return FALSE;
    for (i = 0; name[i]; i++) {
        char c = name[i];
        gboolean ok =
            (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '.' || c == '-'));

        if (!ok)
            return FALSE;
    }
    return TRUE;
}

static gboolean check_volume_name(const char *name, GError **error)
{
    if (hv_volume_name_is_valid(name))
        return TRUE;
    g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                "invalid volume name '%s': use [a-z0-9][a-z0-9.-]*, at most %d characters",
                name ? name : "(null)", HV_VOLUME_NAME_MAX);
    return FALSE;
}

static gboolean check_pool_name(const char *pool, GError **error)
{
    if (pool && pool[0])
        return TRUE;
    g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "no storage pool named");
    return FALSE;
}

/* Text goes in through xmlNodeAddContent, which escapes it. */
static xmlNodePtr add_element(xmlNodePtr parent, const char *name, const char *text)
{
    xmlNodePtr node = xmlNewChild(parent, NULL, BAD_CAST name, NULL);

    if (text)
        xmlNodeAddContent(node, BAD_CAST text);
    return node;
}

static xmlNodePtr new_root(xmlDocPtr doc, const char *name)
{
    xmlNodePtr root = xmlNewDocNode(doc, NULL, BAD_CAST name, NULL);

    xmlDocSetRootElement(doc, root);
    return root;
}

static void add_format(xmlNodePtr parent, const char *format)
{
    xmlNodePtr node = add_element(parent, "format", NULL);

    xmlNewProp(node, BAD_CAST "type", BAD_CAST format);
}

static void add_bytes(xmlNodePtr parent, const char *name, guint64 bytes)
{
    g_autofree char *text = g_strdup_printf("%" G_GUINT64_FORMAT, bytes);
    xmlNodePtr node = add_element(parent, name, text);

    xmlNewProp(node, BAD_CAST "unit", BAD_CAST "bytes");
}

static char *serialize(xmlDocPtr doc, GError **error)
{
    g_autoptr(xmlBuffer) buffer = xmlBufferCreate();
    xmlSaveCtxtPtr save = buffer ? xmlSaveToBuffer(buffer, "UTF-8", XML_SAVE_NO_DECL) : NULL;

    if (!save || xmlSaveDoc(save, doc) < 0) {
        if (save)
            xmlSaveClose(save);
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot serialize storage XML");
        return NULL;
    }
    xmlSaveClose(save); /* flushes into the buffer */
    return g_strndup((const char *)xmlBufferContent(buffer), (gsize)xmlBufferLength(buffer));
}

/* libxml2 stores any byte string; libvirt would reject XML that is not
 * UTF-8 or holds characters XML cannot carry, with a less clear message. */
static gboolean check_xml_text(const char *what, const char *text, GError **error)
{
    const char *p;

    if (!g_utf8_validate(text, -1, NULL))
        goto bad;
    for (p = text; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);

        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0xFFFE || c == 0xFFFF)
            goto bad;
    }
    return TRUE;
bad:
    g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                "%s is not valid UTF-8 or contains characters XML cannot carry", what);
    return FALSE;
}

/* ---- pools -------------------------------------------------------------- */

static const char *pool_subdir(const char *pool)
{
    if (g_strcmp0(pool, HV_POOL_IMAGES) == 0)
        return "images";
    if (g_strcmp0(pool, HV_POOL_DISKS) == 0)
        return "disks";
    return NULL;
}

char *hv_storage_pool_dir(const char *state_dir, const char *pool)
{
    const char *subdir = pool_subdir(pool);
    g_autofree char *dir = NULL;

    if (!state_dir || !state_dir[0] || !subdir)
        return NULL;
    dir = g_build_filename(state_dir, "pools", subdir, NULL);
    return g_canonicalize_filename(dir, NULL);
}

static char *pool_define_xml(const char *name, const char *path, GError **error)
{
    g_autoptr(xmlDoc) doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr root = new_root(doc, "pool");
    xmlNodePtr target;

    xmlNewProp(root, BAD_CAST "type", BAD_CAST "dir");
    add_element(root, "name", name);
    target = add_element(root, "target", NULL);
    add_element(target, "path", path);
    return serialize(doc, error);
}

/* The value of @xpath (a string() expression) in @xml, or NULL. */
static char *xml_string(const char *xml, const char *xpath)
{
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(xmlXPathContext) ctx = NULL;
    g_autoptr(xmlXPathObject) obj = NULL;

    doc = xmlReadMemory(xml, (int)strlen(xml), NULL, NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return NULL;
    ctx = xmlXPathNewContext(doc);
    if (!ctx)
        return NULL;
    obj = xmlXPathEvalExpression(BAD_CAST xpath, ctx);
    if (!obj || obj->type != XPATH_STRING || !obj->stringval)
        return NULL;
    return g_strdup((const char *)obj->stringval);
}

/* The pool must be a dir pool at @path: we never take over, or redefine,
 * a pool somebody set up differently. */
static gboolean check_existing_pool(virStoragePoolPtr pool, const char *name, const char *path,
                                    GError **error)
{
    /* The live XML: a dir pool's type and path do not change while it
     * runs, and test:///default knows no VIR_STORAGE_XML_INACTIVE. */
    g_autofree char *xml = virStoragePoolGetXMLDesc(pool, 0);
    g_autofree char *type = NULL;
    g_autofree char *have = NULL;
    g_autofree char *have_canonical = NULL;

    if (!xml) {
        set_libvirt_error(error, "cannot read the definition of storage pool '%s'", name);
        return FALSE;
    }
    type = xml_string(xml, "string(/pool/@type)");
    have = xml_string(xml, "string(/pool/target/path)");
    if (g_strcmp0(type, "dir") != 0) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                    "libvirt storage pool '%s' exists with type '%s', not 'dir' at '%s'", name,
                    type ? type : "?", path);
        return FALSE;
    }
    if (have && have[0])
        have_canonical = g_canonicalize_filename(have, "/");
    if (g_strcmp0(have_canonical, path) != 0) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                    "libvirt storage pool '%s' exists with path '%s', not '%s'", name,
                    have ? have : "", path);
        return FALSE;
    }
    return TRUE;
}

static gboolean ensure_pool(virConnectPtr conn, const char *name, const char *path, GError **error)
{
    g_autoptr(virStoragePool) pool = virStoragePoolLookupByName(conn, name);
    int active, persistent, autostart = 0;

    if (pool) {
        if (!check_existing_pool(pool, name, path, error))
            return FALSE;
    } else {
        g_autofree char *xml = NULL;

        if (virGetLastErrorCode() != VIR_ERR_NO_STORAGE_POOL) {
            set_libvirt_error(error, "cannot look up storage pool '%s'", name);
            return FALSE;
        }
        xml = pool_define_xml(name, path, error);
        if (!xml)
            return FALSE;
        pool = virStoragePoolDefineXML(conn, xml, 0);
        if (!pool) {
            set_libvirt_error(error, "cannot define storage pool '%s' at '%s'", name, path);
            return FALSE;
        }
        g_debug("defined storage pool %s at %s", name, path);
    }

    active = virStoragePoolIsActive(pool);
    if (active < 0) {
        set_libvirt_error(error, "cannot tell whether storage pool '%s' is active", name);
        return FALSE;
    }
    if (!active) {
        /* Build makes the directory (and its parents) when missing. */
        if (virStoragePoolBuild(pool, 0) < 0) {
            set_libvirt_error(error, "cannot build storage pool '%s' at '%s'", name, path);
            return FALSE;
        }
        if (virStoragePoolCreate(pool, 0) < 0) {
            set_libvirt_error(error, "cannot start storage pool '%s'", name);
            return FALSE;
        }
        g_debug("started storage pool %s", name);
    }

    persistent = virStoragePoolIsPersistent(pool);
    if (persistent < 0 || virStoragePoolGetAutostart(pool, &autostart) < 0) {
        set_libvirt_error(error, "cannot read the autostart flag of storage pool '%s'", name);
        return FALSE;
    }
    /* A transient pool (made by hand) cannot autostart; it works until
     * libvirt restarts, and we leave it as it is. */
    if (persistent && !autostart && virStoragePoolSetAutostart(pool, 1) < 0) {
        set_libvirt_error(error, "cannot mark storage pool '%s' autostart", name);
        return FALSE;
    }
    return TRUE;
}

gboolean hv_storage_ensure_pools(HvConn *conn_handle, const char *state_dir, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    static const char *const pools[] = {HV_POOL_IMAGES, HV_POOL_DISKS};
    gsize i;

    g_return_val_if_fail(conn != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (!state_dir || !state_dir[0]) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "no state directory given");
        return FALSE;
    }
    for (i = 0; i < G_N_ELEMENTS(pools); i++) {
        g_autofree char *path = hv_storage_pool_dir(state_dir, pools[i]);

        if (!check_xml_text("the state directory", path, error) ||
            !ensure_pool(conn, pools[i], path, error))
            return FALSE;
    }
    return TRUE;
}

static virStoragePoolPtr lookup_pool(virConnectPtr conn, const char *name, GError **error)
{
    virStoragePoolPtr pool;

    if (!check_pool_name(name, error))
        return NULL;
    pool = virStoragePoolLookupByName(conn, name);
    if (!pool)
        set_libvirt_error(error, "storage pool '%s'", name);
    return pool;
}

static virStorageVolPtr lookup_volume(virConnectPtr conn, const char *pool_name, const char *name,
                                      GError **error)
{
    g_autoptr(virStoragePool) pool = NULL;
    virStorageVolPtr vol;

    if (!check_volume_name(name, error))
        return NULL;
    pool = lookup_pool(conn, pool_name, error);
    if (!pool)
        return NULL;
    vol = virStorageVolLookupByName(pool, name);
    if (!vol)
        set_libvirt_error(error, "volume '%s' in storage pool '%s'", name, pool_name);
    return vol;
}

/* ---- volumes ------------------------------------------------------------ */

gboolean hv_volume_exists(HvConn *conn_handle, const char *pool, const char *name, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_autoptr(virStoragePool) p = NULL;
    g_autoptr(virStorageVol) vol = NULL;

    g_return_val_if_fail(conn != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (!check_volume_name(name, error))
        return FALSE;
    p = lookup_pool(conn, pool, error);
    if (!p)
        return FALSE;
    vol = virStorageVolLookupByName(p, name);
    if (vol)
        return TRUE;
    /* A missing volume is an answer; anything else is not. */
    if (virGetLastErrorCode() == VIR_ERR_NO_STORAGE_VOL)
        return FALSE;
    set_libvirt_error(error, "cannot look up volume '%s' in storage pool '%s'", name, pool);
    return FALSE;
}

char *hv_volume_path(HvConn *conn_handle, const char *pool, const char *name, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_autoptr(virStorageVol) vol = NULL;
    char *path;

    g_return_val_if_fail(conn != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    vol = lookup_volume(conn, pool, name, error);
    if (!vol)
        return NULL;
    path = virStorageVolGetPath(vol);
    if (!path)
        set_libvirt_error(error, "cannot get the path of volume '%s'", name);
    return path;
}

gboolean hv_volume_delete(HvConn *conn_handle, const char *pool, const char *name, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_autoptr(virStorageVol) vol = NULL;

    g_return_val_if_fail(conn != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    vol = lookup_volume(conn, pool, name, error);
    if (!vol)
        return FALSE;
    if (virStorageVolDelete(vol, 0) < 0) {
        set_libvirt_error(error, "cannot delete volume '%s' from storage pool '%s'", name, pool);
        return FALSE;
    }
    g_debug("deleted volume %s/%s", pool, name);
    return TRUE;
}

gboolean hv_pool_refresh(HvConn *conn_handle, const char *pool, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_autoptr(virStoragePool) p = NULL;

    g_return_val_if_fail(conn != NULL, FALSE);
    p = lookup_pool(conn, pool, error);
    if (!p)
        return FALSE;
    if (virStoragePoolRefresh(p, 0) < 0) {
        set_libvirt_error(error, "cannot refresh storage pool '%s'", pool);
        return FALSE;
    }
    return TRUE;
}

void hv_volume_info_free(HvVolumeInfo *info)
{
    if (!info)
        return;
    g_free(info->name);
    g_free(info->path);
    g_free(info);
}

GPtrArray *hv_volume_list(HvConn *conn_handle, const char *pool, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_autoptr(virStoragePool) p = NULL;
    virStorageVolPtr *vols = NULL;
    GPtrArray *list;
    int n;

    g_return_val_if_fail(conn != NULL, NULL);
    p = lookup_pool(conn, pool, error);
    if (!p)
        return NULL;
    n = virStoragePoolListAllVolumes(p, &vols, 0);
    if (n < 0) {
        set_libvirt_error(error, "cannot list the volumes of pool '%s'", pool);
        return NULL;
    }
    list = g_ptr_array_new_with_free_func((GDestroyNotify)hv_volume_info_free);
    for (int i = 0; i < n; i++) {
        const char *name = virStorageVolGetName(vols[i]);
        char *path = name ? virStorageVolGetPath(vols[i]) : NULL;

        if (name) {
            HvVolumeInfo *info = g_new0(HvVolumeInfo, 1);

            info->name = g_strdup(name);
            /* libvirt's string, freed with free(): copied for g_free. */
            info->path = g_strdup(path);
            g_ptr_array_add(list, info);
        }
        free(path);
        virStorageVolFree(vols[i]);
    }
    free(vols);
    return list;
}

/* The virtual size of the volume at @path, when it is one libvirt knows.
 * Without a <capacity>, libvirtd lets qemu-img take the backing image's
 * size by itself, but other drivers (test:///default) insist on one. */
static gboolean backing_capacity(virConnectPtr conn, const char *path, guint64 *capacity)
{
    g_autoptr(virStorageVol) vol = virStorageVolLookupByPath(conn, path);
    virStorageVolInfo info;

    if (!vol) {
        g_debug("backing %s is no volume: %s", path, virGetLastErrorMessage());
        return FALSE;
    }
    /* GetInfo refreshes the volume first: the size is the file's now. */
    if (virStorageVolGetInfo(vol, &info) < 0 || info.capacity == 0) {
        g_debug("no capacity for backing %s: %s", path, virGetLastErrorMessage());
        return FALSE;
    }
    *capacity = info.capacity;
    return TRUE;
}

char *hv_volume_create_overlay(HvConn *conn_handle, const char *pool, const char *overlay_name,
                               const char *backing_path, const char *backing_format, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_autoptr(virStoragePool) p = NULL;
    g_autoptr(virStorageVol) vol = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    g_autofree char *xml = NULL;
    xmlNodePtr root, target, backing;
    guint64 capacity = 0;
    char *path;

    g_return_val_if_fail(conn != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    if (!check_volume_name(overlay_name, error))
        return NULL;
    if (g_strcmp0(backing_format, "raw") != 0 && g_strcmp0(backing_format, "qcow2") != 0) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                    "unknown backing format '%s' (use raw or qcow2)",
                    backing_format ? backing_format : "(null)");
        return NULL;
    }
    /* qemu would take "proto:..." or a relative name as something else. */
    if (!backing_path || !g_path_is_absolute(backing_path)) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "backing path '%s' is not absolute",
                    backing_path ? backing_path : "(null)");
        return NULL;
    }
    if (!check_xml_text("the backing path", backing_path, error))
        return NULL;
    p = lookup_pool(conn, pool, error);
    if (!p)
        return NULL;

    /* compat 1.1 (qcow2 v3) rather than libvirt's default 0.10. */
    doc = xmlNewDoc(BAD_CAST "1.0");
    root = new_root(doc, "volume");
    add_element(root, "name", overlay_name);
    if (backing_capacity(conn, backing_path, &capacity))
        add_bytes(root, "capacity", capacity);
    target = add_element(root, "target", NULL);
    add_format(target, "qcow2");
    add_element(target, "compat", "1.1");
    backing = add_element(root, "backingStore", NULL);
    add_element(backing, "path", backing_path);
    add_format(backing, backing_format);
    xml = serialize(doc, error);
    if (!xml)
        return NULL;

    vol = virStorageVolCreateXML(p, xml, 0);
    if (!vol) {
        set_libvirt_error(error, "cannot create overlay '%s' on '%s' in storage pool '%s'",
                          overlay_name, backing_path, pool);
        return NULL;
    }
    path = virStorageVolGetPath(vol);
    if (!path) {
        set_libvirt_error(error, "cannot get the path of volume '%s'", overlay_name);
        if (virStorageVolDelete(vol, 0) < 0)
            g_debug("cannot delete overlay %s again: %s", overlay_name, virGetLastErrorMessage());
        return NULL;
    }
    g_debug("created overlay %s/%s on %s", pool, overlay_name, backing_path);
    return path;
}

/* ---- uploads ------------------------------------------------------------ */

/* The SHA-256 of an upload, computed on a thread of its own while the
 * piece it hashes is being sent: GLib's SHA-256 runs at ~260 MiB/s here and
 * took half of the upload thread's time when done in line (perf, during
 * tests/bench/upload). */
typedef struct {
    GThread *thread;
    GMutex lock;
    GCond cond;
    GChecksum *sum;
    const guchar *piece; /* being hashed; NULL when idle */
    gsize len;
    gboolean quit;
} Hasher;

struct HvUpload {
    virConnectPtr conn; /* our reference */
    virStorageVolPtr vol;
    virStreamPtr stream; /* NULL once finished or aborted */
    char *pool;
    char *name;
    char *path;
    Hasher *hasher;
    guchar *pending; /* bytes taken but not sent yet, at most UPLOAD_PIECE */
    gsize pending_len;
    guint64 bytes;    /* taken, sent or pending */
    guint64 streamed; /* taken by libvirt */
    gboolean failed;  /* a write failed: only abort is left */
    gboolean done;    /* finished or aborted */
};

static gpointer hasher_run(gpointer data)
{
    Hasher *hasher = data;
    g_mutex_lock(&hasher->lock);
    for (;;) {
        while (hasher->piece == NULL && !hasher->quit)
            g_cond_wait(&hasher->cond, &hasher->lock);
        if (hasher->piece == NULL)
            break;
        /* The piece is the caller's until we say we are done with it. */
        g_mutex_unlock(&hasher->lock);
        g_checksum_update(hasher->sum, hasher->piece, (gssize)hasher->len);
        g_mutex_lock(&hasher->lock);
        hasher->piece = NULL;
        g_cond_broadcast(&hasher->cond);
    }
    g_mutex_unlock(&hasher->lock);
    return NULL;
}

static Hasher *hasher_new(void)
{
    Hasher *hasher = g_new0(Hasher, 1);
    g_mutex_init(&hasher->lock);
    g_cond_init(&hasher->cond);
    hasher->sum = g_checksum_new(G_CHECKSUM_SHA256);
    hasher->thread = g_thread_new("upload-sha256", hasher_run, hasher);
    return hasher;
}

/* Starts hashing @piece, which must stay as it is until hasher_wait.  A
 * NULL hasher (an unhashed upload) does nothing, nor does its wait. */
static void hasher_start(Hasher *hasher, const guchar *piece, gsize len)
{
    if (hasher == NULL)
        return;
    g_mutex_lock(&hasher->lock);
    hasher->piece = piece;
    hasher->len = len;
    g_cond_broadcast(&hasher->cond);
    g_mutex_unlock(&hasher->lock);
}

static void hasher_wait(Hasher *hasher)
{
    if (hasher == NULL)
        return;
    g_mutex_lock(&hasher->lock);
    while (hasher->piece != NULL)
        g_cond_wait(&hasher->cond, &hasher->lock);
    g_mutex_unlock(&hasher->lock);
}

static void hasher_free(Hasher *hasher)
{
    if (hasher == NULL)
        return;
    g_mutex_lock(&hasher->lock);
    hasher->quit = TRUE;
    g_cond_broadcast(&hasher->cond);
    g_mutex_unlock(&hasher->lock);
    g_thread_join(hasher->thread);
    g_checksum_free(hasher->sum);
    g_mutex_clear(&hasher->lock);
    g_cond_clear(&hasher->cond);
    g_free(hasher);
}

static char *raw_volume_xml(const char *name, GError **error)
{
    g_autoptr(xmlDoc) doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr root = new_root(doc, "volume");
    xmlNodePtr target;

    add_element(root, "name", name);
    /* Zero: the file grows as the stream writes it, and is never sparse-
     * preallocated to a size the tenant only claimed. */
    add_bytes(root, "capacity", 0);
    add_bytes(root, "allocation", 0);
    target = add_element(root, "target", NULL);
    add_format(target, "raw");
    return serialize(doc, error);
}

/* The stream is gone (aborted or closed) when this runs. */
static gboolean delete_volume(HvUpload *upload, GError **error)
{
    if (!upload->vol)
        return TRUE;
    if (virStorageVolDelete(upload->vol, 0) < 0) {
        set_libvirt_error(error, "cannot delete the unfinished volume '%s' from storage pool '%s'",
                          upload->name, upload->pool);
        return FALSE;
    }
    g_debug("deleted unfinished volume %s/%s", upload->pool, upload->name);
    virStorageVolFree(upload->vol);
    upload->vol = NULL;
    return TRUE;
}

static void drop_stream(HvUpload *upload, gboolean abort)
{
    if (!upload->stream)
        return;
    if (abort && virStreamAbort(upload->stream) < 0)
        g_debug("aborting the upload of %s: %s", upload->name, virGetLastErrorMessage());
    virStreamFree(upload->stream);
    upload->stream = NULL;
}

static HvUpload *upload_begin(HvConn *conn_handle, const char *pool, const char *vol_name,
                              gboolean hashed, GError **error)
{
    virConnectPtr conn = hv_conn_get_libvirt(conn_handle);
    g_autoptr(virStoragePool) p = NULL;
    g_autoptr(virStorageVol) existing = NULL;
    g_autofree char *xml = NULL;
    g_autoptr(HvUpload) upload = NULL;

    g_return_val_if_fail(conn != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    if (!check_volume_name(vol_name, error))
        return NULL;
    p = lookup_pool(conn, pool, error);
    if (!p)
        return NULL;
    /* Never write over somebody's volume: creating would fail anyway, but
     * the abort path must not delete what is not ours. */
    existing = virStorageVolLookupByName(p, vol_name);
    if (existing) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID,
                    "volume '%s' already exists in storage pool '%s'", vol_name, pool);
        return NULL;
    }
    if (virGetLastErrorCode() != VIR_ERR_NO_STORAGE_VOL) {
        set_libvirt_error(error, "cannot look up volume '%s' in storage pool '%s'", vol_name, pool);
        return NULL;
    }
    xml = raw_volume_xml(vol_name, error);
    if (!xml)
        return NULL;

    upload = g_new0(HvUpload, 1);
    upload->pool = g_strdup(pool);
    upload->name = g_strdup(vol_name);
    upload->vol = virStorageVolCreateXML(p, xml, 0);
    if (!upload->vol) {
        set_libvirt_error(error, "cannot create volume '%s' in storage pool '%s'", vol_name, pool);
        upload->done = TRUE; /* nothing to remove */
        return NULL;
    }
    /* From here on, freeing @upload deletes the volume. */
    upload->conn = conn;
    virConnectRef(conn);
    upload->path = virStorageVolGetPath(upload->vol);
    if (!upload->path) {
        set_libvirt_error(error, "cannot get the path of volume '%s'", vol_name);
        return NULL;
    }
    upload->stream = virStreamNew(conn, 0);
    if (!upload->stream) {
        set_libvirt_error(error, "cannot open a stream for volume '%s'", vol_name);
        return NULL;
    }
    if (virStorageVolUpload(upload->vol, upload->stream, 0, 0, 0) < 0) {
        set_libvirt_error(error, "cannot upload into volume '%s'", vol_name);
        /* A stream libvirt never started has nothing to abort. */
        virStreamFree(upload->stream);
        upload->stream = NULL;
        return NULL;
    }
    upload->pending = g_malloc(UPLOAD_PIECE);
    upload->hasher = hashed ? hasher_new() : NULL;
    g_debug("uploading into %s/%s (%s)", pool, vol_name, upload->path);
    return g_steal_pointer(&upload);
}

HvUpload *hv_volume_upload_begin(HvConn *conn, const char *pool, const char *vol_name,
                                 GError **error)
{
    return upload_begin(conn, pool, vol_name, TRUE, error);
}

HvUpload *hv_volume_upload_begin_unhashed(HvConn *conn, const char *pool, const char *vol_name,
                                          GError **error)
{
    return upload_begin(conn, pool, vol_name, FALSE, error);
}

static gboolean check_writable(HvUpload *upload, GError **error)
{
    if (upload->done || upload->failed || !upload->stream) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "the upload into volume '%s' is %s",
                    upload->name, upload->failed ? "broken by an earlier error" : "over");
        return FALSE;
    }
    return TRUE;
}

/* Sends @len bytes (at most UPLOAD_PIECE) as one stream message, hashing
 * them meanwhile. */
static gboolean send_piece(HvUpload *upload, const char *data, gsize len, GError **error)
{
    gsize sent = 0;

    hasher_start(upload->hasher, (const guchar *)data, len);
    while (sent < len) {
        int n = virStreamSend(upload->stream, data + sent, len - sent);

        /* A blocking stream never answers -2 (would block); 0 is no
         * progress, which must not spin. */
        if (n <= 0) {
            hasher_wait(upload->hasher);
            upload->failed = TRUE;
            set_libvirt_error(error,
                              "cannot stream into volume '%s' after %" G_GUINT64_FORMAT " bytes",
                              upload->name, upload->streamed + sent);
            return FALSE;
        }
        sent += (gsize)n;
    }
    upload->streamed += len;
    hasher_wait(upload->hasher);
    return TRUE;
}

/* Sends what is pending. */
static gboolean flush_pending(HvUpload *upload, GError **error)
{
    gsize len = upload->pending_len;

    if (len == 0)
        return TRUE;
    upload->pending_len = 0;
    return send_piece(upload, (const char *)upload->pending, len, error);
}

gboolean hv_volume_upload_write(HvUpload *upload, const void *buf, gsize len, GError **error)
{
    const char *data = buf;

    g_return_val_if_fail(upload != NULL, FALSE);
    g_return_val_if_fail(buf != NULL || len == 0, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (!check_writable(upload, error))
        return FALSE;
    upload->bytes += len;
    while (len > 0) {
        /* Whole pieces go out as they are; the rest waits for more. */
        if (upload->pending_len == 0 && len >= UPLOAD_PIECE) {
            if (!send_piece(upload, data, UPLOAD_PIECE, error))
                return FALSE;
            data += UPLOAD_PIECE;
            len -= UPLOAD_PIECE;
            continue;
        }
        gsize take = MIN(len, UPLOAD_PIECE - upload->pending_len);
        memcpy(upload->pending + upload->pending_len, data, take);
        upload->pending_len += take;
        data += take;
        len -= take;
        if (upload->pending_len == UPLOAD_PIECE && !flush_pending(upload, error))
            return FALSE;
    }
    return TRUE;
}

guint64 hv_upload_get_size(const HvUpload *upload)
{
    g_return_val_if_fail(upload != NULL, 0);
    return upload->bytes;
}

const char *hv_upload_path(const HvUpload *upload)
{
    g_return_val_if_fail(upload != NULL, NULL);
    return upload->path;
}

gboolean hv_volume_upload_finish(HvUpload *upload, char **sha256_hex, guint64 *size, GError **error)
{
    g_return_val_if_fail(upload != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (!check_writable(upload, error))
        return FALSE;
    if (!flush_pending(upload, error)) {
        hv_volume_upload_abort(upload, NULL);
        return FALSE;
    }
    /* Returns once libvirt's helper has written and closed the file, so the
     * volume is complete when we say so. */
    if (virStreamFinish(upload->stream) < 0) {
        set_libvirt_error(error, "cannot complete the upload into volume '%s'", upload->name);
        upload->failed = TRUE;
        hv_volume_upload_abort(upload, NULL);
        return FALSE;
    }
    drop_stream(upload, FALSE);
    upload->done = TRUE;
    if (sha256_hex)
        *sha256_hex =
            upload->hasher != NULL ? g_strdup(g_checksum_get_string(upload->hasher->sum)) : NULL;
    if (size)
        *size = upload->bytes;
    g_debug("uploaded %" G_GUINT64_FORMAT " bytes into %s/%s", upload->bytes, upload->pool,
            upload->name);
    return TRUE;
}

gboolean hv_volume_upload_abort(HvUpload *upload, GError **error)
{
    g_return_val_if_fail(upload != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (upload->done)
        return TRUE;
    drop_stream(upload, TRUE);
    if (!delete_volume(upload, error))
        return FALSE;
    upload->done = TRUE;
    return TRUE;
}

void hv_upload_free(HvUpload *upload)
{
    if (!upload)
        return;
    if (!upload->done)
        hv_volume_upload_abort(upload, NULL);
    drop_stream(upload, TRUE);
    if (upload->vol)
        virStorageVolFree(upload->vol);
    if (upload->conn)
        virConnectClose(upload->conn);
    hasher_free(upload->hasher);
    g_free(upload->pending);
    g_free(upload->pool);
    g_free(upload->name);
    g_free(upload->path);
    g_free(upload);
}
