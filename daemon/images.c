/* Tenant images: store rows and HV_POOL_IMAGES volumes in step. */
#include "daemon/images.h"

#include <gnutls/crypto.h>

#include <glib/gstdio.h>

#include "api/tenant.h"
#include "daemon/clock.h"
#include "daemon/connection.h"
#include "daemon/error.h"
#include "hvcore/error.h"
#include "hvcore/imagecheck.h"
#include "hvcore/storage.h"

#define GIB (G_GINT64_CONSTANT(1) << 30)

/* connection_get, also before main.c has a connection object at all. */
static HvConn *images_connection(App *app, GError **error)
{
    if (app->virt == NULL) {
        g_set_error_literal(error, TD_ERROR, TD_ERROR_UNAVAILABLE,
                            "libvirt is unreachable: turtled has no libvirt connection");
        return NULL;
    }
    return connection_get(app, error);
}

static HvImageKind hv_kind(ApiImageKind kind)
{
    switch (kind) {
    case API_IMAGE_KIND_KERNEL:
        return HV_IMAGE_KERNEL;
    case API_IMAGE_KIND_INITRD:
        return HV_IMAGE_INITRD;
    case API_IMAGE_KIND_DISK:
        break;
    }
    return HV_IMAGE_DISK;
}

/* Sets the state of an image being uploaded, logging a failure: for paths
 * that already fail otherwise or that reconcile puts right.  Only from
 * "uploading": an image deleted meanwhile stays deleted. */
static void set_state_or_log(Store *store, const ApiImage *image, ApiImageState state,
                             const char *message)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *now = clock_now_rfc3339();
    if (!store_image_set_state(store, image->id, STORE_STATE(API_IMAGE_STATE_UPLOADING), state, -1,
                               NULL, message, now, &error) &&
        !g_error_matches(error, TD_ERROR, TD_ERROR_NOT_FOUND))
        g_warning("image %s/%s: cannot mark it %s: %s", image->tenant, image->name,
                  api_image_state_to_string(state), error->message);
}

/* Deletes an image's volume, logging a failure: what is left is an orphan
 * that reconcile deletes.  A missing volume is fine. */
static void delete_volume_or_log(App *app, HvConn *conn, const ApiImage *image)
{
    g_autoptr(GError) error = NULL;
    if (hv_volume_delete(conn, HV_POOL_IMAGES, image->volume, &error) ||
        g_error_matches(error, HV_ERROR, HV_ERROR_NOT_FOUND))
        return;
    connection_failed(app, conn, &error);
    g_warning("image %s/%s: volume %s stays in pool %s until the next reconcile: %s", image->tenant,
              image->name, image->volume, HV_POOL_IMAGES, error->message);
}

gboolean images_create(App *app, const char *tenant, ApiImage *image, GError **error)
{
    g_return_val_if_fail(image != NULL && image->name != NULL, FALSE);

    g_free(image->id);
    image->id = g_uuid_string_random();
    g_free(image->tenant);
    image->tenant = g_strdup(tenant);
    image->state = API_IMAGE_STATE_PENDING;
    image->size = -1;
    g_clear_pointer(&image->sha256, g_free);
    g_clear_pointer(&image->error, g_free);
    /* A UUID is a valid volume name, unique across tenants. */
    g_free(image->volume);
    image->volume = g_strdup(image->id);
    g_free(image->created_at);
    image->created_at = clock_now_rfc3339();
    g_free(image->updated_at);
    image->updated_at = g_strdup(image->created_at);
    return store_image_insert_capped(app->store, image, app->config->pending_images, error);
}

typedef struct {
    const char *tenant;
    const char *name;
    const Precondition *precondition;
    ApiImage *image; /* out: the image deleted */
} ImageRemoval;

/* One transaction: the precondition holds for the row that goes. */
static gboolean remove_row(Store *store, gpointer data, GError **error)
{
    ImageRemoval *removal = data;
    g_autoptr(ApiImage) image = store_image_get(store, removal->tenant, removal->name, error);
    if (image == NULL || !precondition_holds(removal->precondition, image, error) ||
        !store_image_delete(store, removal->tenant, removal->name, error))
        return FALSE;
    removal->image = g_steal_pointer(&image);
    return TRUE;
}

gboolean images_delete(App *app, const char *tenant, const char *name,
                       const Precondition *precondition, GError **error)
{
    ImageRemoval removal = {tenant, name, precondition, NULL};
    /* Row first: a crash after it leaves an orphan volume, which reconcile
     * deletes; the other order would leave a ready image without data. */
    gboolean ok = store_transaction(app->store, remove_row, &removal, error);
    g_autoptr(ApiImage) image = removal.image;
    if (!ok)
        return FALSE;

    g_autoptr(GError) local = NULL;
    g_autoptr(HvConn) conn = images_connection(app, &local);
    if (conn == NULL) {
        g_warning("image %s/%s deleted; its volume %s stays until the next reconcile: %s", tenant,
                  name, image->volume, local->message);
        return TRUE;
    }
    delete_volume_or_log(app, conn, image);
    return TRUE;
}

/* ---- uploads -------------------------------------------------------------- */

struct ImagesUpload {
    App *app;
    ApiImage *image;
    HvConn *conn;
    HvUpload *hv;
    /* The image's SHA-256, on the data as it arrives: GnuTLS's, which uses
     * the CPU's SHA extensions (~5x GLib's, which would bound an upload). */
    gnutls_hash_hd_t sha256;
    guint64 declared; /* Content-Length */
};

/* The digest so far, in lower-case hex (the form the API shows). */
static char *sha256_hex(gnutls_hash_hd_t sha256)
{
    guint8 digest[32];
    gnutls_hash_output(sha256, digest);
    GString *hex = g_string_sized_new(2 * sizeof digest);
    for (gsize i = 0; i < sizeof digest; i++)
        g_string_append_printf(hex, "%02x", digest[i]);
    return g_string_free(hex, FALSE);
}

static void upload_free(ImagesUpload *upload)
{
    if (upload == NULL)
        return;
    if (upload->sha256 != NULL)
        gnutls_hash_deinit(upload->sha256, NULL);
    hv_upload_free(upload->hv); /* deletes the volume unless finished */
    hv_conn_unref(upload->conn);
    api_image_free(upload->image);
    g_free(upload);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImagesUpload, upload_free)

typedef struct {
    const char *tenant;
    const char *name;
    guint64 content_length;
    ApiImage *image; /* out: the image, now uploading */
} UploadReservation;

static gboolean check_quota(Store *store, const ApiImage *image, guint64 content_length,
                            GError **error)
{
    g_autoptr(ApiTenant) tenant = store_tenant_get(store, image->tenant, error);
    gint64 used = 0;
    if (tenant == NULL || !store_tenant_usage(store, image->tenant, NULL, NULL, NULL, &used, error))
        return FALSE;
    gint64 limit = tenant->quota.disk_gib * GIB;
    gint64 available = MAX(limit - used, 0);
    if (content_length > (guint64)available) {
        g_set_error(error, TD_ERROR, TD_ERROR_PAYLOAD_TOO_LARGE,
                    "image '%s': %" G_GUINT64_FORMAT " bytes do not fit in the disk quota of "
                    "tenant '%s': %" G_GINT64_FORMAT " GiB (%" G_GINT64_FORMAT " bytes), of which "
                    "%" G_GINT64_FORMAT " bytes are used by images and %" G_GINT64_FORMAT
                    " are free",
                    image->name, content_length, image->tenant, tenant->quota.disk_gib, limit, used,
                    available);
        return FALSE;
    }
    return TRUE;
}

/* One transaction: the quota check and the reservation of the declared size
 * (the image turns "uploading" with that size, which counts in the quota
 * while the data arrives), so that concurrent uploads cannot overrun the
 * quota together, and of two PUTs of one image only one gets through. */
static gboolean reserve_upload(Store *store, gpointer data, GError **error)
{
    UploadReservation *reservation = data;
    g_autoptr(ApiImage) image =
        store_image_get(store, reservation->tenant, reservation->name, error);
    if (image == NULL)
        return FALSE;
    switch (image->state) {
    case API_IMAGE_STATE_READY:
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                    "image '%s' is ready; images are immutable, delete and create it again",
                    image->name);
        return FALSE;
    case API_IMAGE_STATE_UPLOADING:
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "image '%s' is being uploaded already",
                    image->name);
        return FALSE;
    case API_IMAGE_STATE_PENDING:
    case API_IMAGE_STATE_ERROR:
        break;
    }
    if (!check_quota(store, image, reservation->content_length, error))
        return FALSE;
    g_autofree char *now = clock_now_rfc3339();
    if (!store_image_set_state(
            store, image->id,
            STORE_STATE(API_IMAGE_STATE_PENDING) | STORE_STATE(API_IMAGE_STATE_ERROR),
            API_IMAGE_STATE_UPLOADING, (gint64)reservation->content_length, NULL, NULL, now, error))
        return FALSE;
    image->state = API_IMAGE_STATE_UPLOADING;
    reservation->image = g_steal_pointer(&image);
    return TRUE;
}

ImagesUpload *images_upload_begin(App *app, const char *tenant, const char *name,
                                  guint64 content_length, GError **error)
{
    UploadReservation reservation = {tenant, name, content_length, NULL};
    if (!store_transaction(app->store, reserve_upload, &reservation, error))
        return NULL;

    g_autoptr(ImagesUpload) upload = g_new0(ImagesUpload, 1);
    upload->app = app;
    upload->declared = content_length;
    upload->image = reservation.image;
    if (gnutls_hash_init(&upload->sha256, GNUTLS_DIG_SHA256) < 0) {
        upload->sha256 = NULL;
        set_state_or_log(app->store, upload->image, API_IMAGE_STATE_PENDING, NULL);
        g_set_error_literal(error, TD_ERROR, TD_ERROR_INTERNAL, "cannot start a SHA-256");
        return NULL;
    }
    upload->conn = images_connection(app, error);
    g_autoptr(GError) local = NULL;
    if (upload->conn != NULL)
        upload->hv = hv_volume_upload_begin_unhashed(upload->conn, HV_POOL_IMAGES,
                                                     upload->image->volume, &local);
    if (upload->hv == NULL) {
        /* Nothing arrived: the reservation goes, the image is as it was. */
        set_state_or_log(app->store, upload->image, API_IMAGE_STATE_PENDING, NULL);
        if (upload->conn == NULL)
            return NULL;
        int code = local->code;
        if (connection_failed(app, upload->conn, &local)) {
            g_propagate_error(error, g_steal_pointer(&local));
        } else if (code == HV_ERROR_INVALID) {
            /* A volume of that name exists: an earlier upload's, which
             * reconcile removes. */
            g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                        "image '%s' still has data from an interrupted upload; try again later",
                        name);
        } else {
            g_set_error(error, TD_ERROR, TD_ERROR_UNAVAILABLE,
                        "this host cannot store image data: %s", local->message);
        }
        return NULL;
    }
    return g_steal_pointer(&upload);
}

gboolean images_upload_write(ImagesUpload *upload, const char *data, gsize len, GError **error)
{
    guint64 done = hv_upload_get_size(upload->hv);
    /* The HTTP layer enforces Content-Length; the quota was checked against
     * it, so this is the quota check too. */
    if (len > upload->declared - done) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "image '%s': more data than the %" G_GUINT64_FORMAT " bytes of Content-Length",
                    upload->image->name, upload->declared);
        return FALSE;
    }
    g_autoptr(GError) local = NULL;
    gnutls_hash(upload->sha256, data, len);
    if (hv_volume_upload_write(upload->hv, data, len, &local))
        return TRUE;
    if (!connection_failed(upload->app, upload->conn, &local))
        g_prefix_error(&local, "image '%s': ", upload->image->name);
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
}

/* After the volume was complete: the image failed (@message for the
 * tenant), its volume goes. */
static void reject(ImagesUpload *upload, const char *message)
{
    delete_volume_or_log(upload->app, upload->conn, upload->image);
    set_state_or_log(upload->app->store, upload->image, API_IMAGE_STATE_ERROR, message);
}

ApiImage *images_upload_finish(ImagesUpload *owned, GError **error)
{
    g_autoptr(ImagesUpload) upload = owned;
    ApiImage *image = upload->image;
    g_autoptr(GError) local = NULL;

    if (hv_upload_get_size(upload->hv) != upload->declared) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST,
                    "image '%s': %" G_GUINT64_FORMAT
                    " bytes arrived, Content-Length said %" G_GUINT64_FORMAT,
                    image->name, hv_upload_get_size(upload->hv), upload->declared);
        images_upload_abort(g_steal_pointer(&upload));
        return NULL;
    }
    guint64 size = 0;
    if (!hv_volume_upload_finish(upload->hv, NULL, &size, &local)) {
        /* hvcore deleted the volume. */
        connection_failed(upload->app, upload->conn, &local);
        g_autofree char *message = g_strdup_printf("upload failed: %s", local->message);
        set_state_or_log(upload->app->store, image, API_IMAGE_STATE_ERROR, message);
        g_propagate_prefixed_error(error, g_steal_pointer(&local), "image '%s': ", image->name);
        return NULL;
    }

    if (!hv_image_check(hv_upload_path(upload->hv), api_image_format_to_string(image->format),
                        hv_kind(image->kind), &local)) {
        if (g_error_matches(local, HV_ERROR, HV_ERROR_INVALID)) {
            reject(upload, local->message);
            g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "image '%s' rejected: %s",
                        image->name, local->message);
        } else {
            reject(upload, "the image could not be checked on the host; upload it again");
            g_set_error(error, TD_ERROR, TD_ERROR_INTERNAL, "image '%s': checking it failed: %s",
                        image->name, local->message);
        }
        return NULL;
    }

    g_autofree char *sha256 = sha256_hex(upload->sha256);
    g_autofree char *now = clock_now_rfc3339();
    if (!store_image_set_state(upload->app->store, image->id,
                               STORE_STATE(API_IMAGE_STATE_UPLOADING), API_IMAGE_STATE_READY,
                               (gint64)size, sha256, NULL, now, error)) {
        /* Deleted meanwhile, or the store failed: no ready row, no volume. */
        delete_volume_or_log(upload->app, upload->conn, image);
        return NULL;
    }
    image->state = API_IMAGE_STATE_READY;
    image->size = (gint64)size;
    image->sha256 = g_steal_pointer(&sha256);
    g_clear_pointer(&image->error, g_free);
    g_free(image->updated_at);
    image->updated_at = g_steal_pointer(&now);
    return g_steal_pointer(&upload->image);
}

void images_upload_abort(ImagesUpload *owned)
{
    g_autoptr(ImagesUpload) upload = owned;
    if (upload == NULL)
        return;
    g_autoptr(GError) local = NULL;
    if (!hv_volume_upload_abort(upload->hv, &local)) {
        connection_failed(upload->app, upload->conn, &local);
        g_warning("image %s/%s: the aborted upload's volume %s stays until the next reconcile: %s",
                  upload->image->tenant, upload->image->name, upload->image->volume,
                  local->message);
    }
    set_state_or_log(upload->app->store, upload->image, API_IMAGE_STATE_PENDING,
                     "upload interrupted");
}

/* ---- reconcile ------------------------------------------------------------- */

/* Every image of every tenant. */
static GPtrArray *all_images(Store *store, GError **error)
{
    g_autoptr(GPtrArray) tenants = store_tenant_list(store, error);
    if (tenants == NULL)
        return NULL;
    g_autoptr(GPtrArray) images = g_ptr_array_new_with_free_func((GDestroyNotify)api_image_free);
    for (guint i = 0; i < tenants->len; i++) {
        const ApiTenant *tenant = g_ptr_array_index(tenants, i);
        g_autoptr(GPtrArray) some = store_image_list(store, tenant->name, error);
        if (some == NULL)
            return NULL;
        for (guint j = 0; j < some->len; j++)
            g_ptr_array_add(images, api_image_copy(g_ptr_array_index(some, j)));
    }
    return g_steal_pointer(&images);
}

/* The names of the volumes in HV_POOL_IMAGES, as a set. */
static GHashTable *pool_volumes(App *app, HvConn *conn, GError **error)
{
    /* A dir pool lists what it saw at its last refresh: files removed behind
     * libvirt's back only disappear with one.  It fails while an upload runs;
     * the list is then still right for everything libvirt did itself. */
    g_autoptr(GError) refresh = NULL;
    if (!hv_pool_refresh(conn, HV_POOL_IMAGES, &refresh)) {
        if (g_error_matches(refresh, HV_ERROR, HV_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&refresh));
            connection_failed(app, conn, error);
            return NULL;
        }
        g_debug("reconcile: cannot refresh pool %s: %s", HV_POOL_IMAGES, refresh->message);
    }
    g_autoptr(GPtrArray) vols = hv_volume_list(conn, HV_POOL_IMAGES, error);
    if (vols == NULL) {
        connection_failed(app, conn, error);
        return NULL;
    }
    GHashTable *names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 0; i < vols->len; i++)
        g_hash_table_add(names, g_strdup(((HvVolumeInfo *)g_ptr_array_index(vols, i))->name));
    return names;
}

#define ORPHAN_GRACE_S (15 * 60)

/* Written within ORPHAN_GRACE_S (or not statable: better kept than lost). */
static gboolean volume_is_recent(HvConn *conn, const char *name)
{
    g_autofree char *path = hv_volume_path(conn, HV_POOL_IMAGES, name, NULL);
    GStatBuf st;
    if (path == NULL || g_stat(path, &st) != 0)
        return TRUE;
    gint64 age = g_get_real_time() / G_USEC_PER_SEC - (gint64)st.st_mtime;
    if (age < ORPHAN_GRACE_S)
        g_debug("reconcile: volume %s/%s has no image yet; kept (%" G_GINT64_FORMAT " s old)",
                HV_POOL_IMAGES, name, age);
    return age < ORPHAN_GRACE_S;
}

gboolean images_reconcile(App *app, HvConn *conn, GError **error)
{
    g_autoptr(GPtrArray) images = all_images(app->store, error);
    if (images == NULL)
        return FALSE;
    g_autoptr(GHashTable) volumes = pool_volumes(app, conn, error);
    if (volumes == NULL)
        return FALSE;

    /* Only ready images own a volume; any other is a crash's leftover. */
    g_autoptr(GHashTable) owned = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) named = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < images->len; i++) {
        const ApiImage *image = g_ptr_array_index(images, i);
        if (image->volume != NULL)
            g_hash_table_add(named, image->volume);
        if (image->state == API_IMAGE_STATE_READY && image->volume != NULL &&
            g_hash_table_contains(volumes, image->volume))
            g_hash_table_add(owned, image->volume);
    }
    gboolean failed = FALSE;
    GHashTableIter iter;
    gpointer key;
    g_hash_table_iter_init(&iter, volumes);
    while (g_hash_table_iter_next(&iter, &key, NULL)) {
        const char *name = key;
        if (g_hash_table_contains(owned, name))
            continue;
        /* A volume no image names may be a peer's copy for a stack migrating
         * here, which becomes an image when the stack arrives: only an old
         * one is a leftover. */
        if (!g_hash_table_contains(named, name) && volume_is_recent(conn, name))
            continue;
        g_autoptr(GError) local = NULL;
        if (hv_volume_delete(conn, HV_POOL_IMAGES, name, &local) ||
            g_error_matches(local, HV_ERROR, HV_ERROR_NOT_FOUND)) {
            g_message("reconcile: deleted volume %s/%s, which no ready image owns", HV_POOL_IMAGES,
                      name);
            continue;
        }
        if (connection_failed(app, conn, &local)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        g_warning("reconcile: cannot delete volume %s/%s: %s", HV_POOL_IMAGES, name,
                  local->message);
        if (!failed)
            g_propagate_error(error, g_steal_pointer(&local));
        failed = TRUE;
    }

    for (guint i = 0; i < images->len; i++) {
        const ApiImage *image = g_ptr_array_index(images, i);
        const char *message = NULL;
        if (image->state == API_IMAGE_STATE_UPLOADING)
            message = "upload interrupted by daemon restart";
        else if (image->state == API_IMAGE_STATE_READY &&
                 !g_hash_table_contains(owned, image->volume))
            message = "volume missing from pool " HV_POOL_IMAGES;
        if (message == NULL)
            continue;
        g_message("reconcile: image %s/%s is now error: %s", image->tenant, image->name, message);
        g_autoptr(GError) local = NULL;
        g_autofree char *now = clock_now_rfc3339();
        /* Only from the state read above: a request that changed it since
         * (a delete, a new upload) knows better. */
        if (!store_image_set_state(app->store, image->id, STORE_STATE(image->state),
                                   API_IMAGE_STATE_ERROR, -1, NULL, message, now, &local) &&
            !g_error_matches(local, TD_ERROR, TD_ERROR_NOT_FOUND) &&
            !g_error_matches(local, TD_ERROR, TD_ERROR_CONFLICT)) {
            if (!failed)
                g_propagate_error(error, g_steal_pointer(&local));
            failed = TRUE;
        }
    }
    return !failed;
}

/* ---- for stacks -------------------------------------------------------------- */

static const char *boot_field(ApiImageKind kind)
{
    switch (kind) {
    case API_IMAGE_KIND_KERNEL:
        return "boot.kernel";
    case API_IMAGE_KIND_INITRD:
        return "boot.initrd";
    case API_IMAGE_KIND_DISK:
        break;
    }
    return "boot.disk";
}

static const char *with_article(ApiImageKind kind)
{
    switch (kind) {
    case API_IMAGE_KIND_KERNEL:
        return "a kernel";
    case API_IMAGE_KIND_INITRD:
        return "an initrd";
    case API_IMAGE_KIND_DISK:
        break;
    }
    return "a disk";
}

ApiImage *images_get_ready(App *app, const char *tenant, const char *name, ApiImageKind kind,
                           char **path, GError **error)
{
    g_autoptr(ApiImage) image = store_image_get(app->store, tenant, name, error);
    if (image == NULL)
        return NULL;
    if (image->state != API_IMAGE_STATE_READY) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "image '%s' is not ready (state %s)",
                    name, api_image_state_to_string(image->state));
        return NULL;
    }
    if (image->kind != kind) {
        g_set_error(error, TD_ERROR, TD_ERROR_BAD_REQUEST, "image '%s' is %s, %s needs %s", name,
                    with_article(image->kind), boot_field(kind), with_article(kind));
        return NULL;
    }
    if (path == NULL)
        return g_steal_pointer(&image);

    g_autoptr(HvConn) conn = images_connection(app, error);
    if (conn == NULL)
        return NULL;
    g_autoptr(GError) local = NULL;
    *path = hv_volume_path(conn, HV_POOL_IMAGES, image->volume, &local);
    if (*path == NULL) {
        gboolean missing = g_error_matches(local, HV_ERROR, HV_ERROR_NOT_FOUND);
        if (!connection_failed(app, conn, &local) && missing) {
            g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT,
                        "image '%s' has no volume in pool %s (%s); delete it and upload it again",
                        name, HV_POOL_IMAGES, local->message);
            return NULL;
        }
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    return g_steal_pointer(&image);
}

/* SHA-256 of a file, streamed. */
static char *file_sha256(const char *path, gint64 *size, GError **error)
{
    g_autoptr(GFile) file = g_file_new_for_path(path);
    g_autoptr(GFileInputStream) in = g_file_read(file, NULL, error);
    if (in == NULL)
        return NULL;
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_autofree guint8 *buf = g_malloc(1 << 20);
    gssize n;
    *size = 0;
    while ((n = g_input_stream_read(G_INPUT_STREAM(in), buf, 1 << 20, NULL, error)) > 0) {
        g_checksum_update(sum, buf, n);
        *size += n;
    }
    return n < 0 ? NULL : g_strdup(g_checksum_get_string(sum));
}

gboolean images_adopt_volume(App *app, HvConn *conn, const char *tenant, const char *name,
                             ApiImageKind kind, ApiImageFormat format, const char *volume,
                             GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(ApiImage) existing = store_image_get(app->store, tenant, name, &local);
    if (existing != NULL)
        return TRUE;
    if (!g_error_matches(local, TD_ERROR, TD_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    g_autofree char *path = hv_volume_path(conn, HV_POOL_IMAGES, volume, error);
    if (path == NULL)
        return FALSE;
    gint64 size = -1;
    g_autofree char *sha256 = file_sha256(path, &size, error);
    if (sha256 == NULL)
        return FALSE;
    g_autoptr(ApiImage) image = api_image_new();
    image->id = g_uuid_string_random();
    image->name = g_strdup(name);
    image->tenant = g_strdup(tenant);
    image->kind = kind;
    image->format = format;
    image->state = API_IMAGE_STATE_READY;
    image->size = size;
    image->sha256 = g_steal_pointer(&sha256);
    /* The volume came with the stack and keeps its name (the source's image id). */
    image->volume = g_strdup(volume);
    image->created_at = clock_now_rfc3339();
    image->updated_at = g_strdup(image->created_at);
    return store_image_insert(app->store, image, error);
}
