/* Images and stack disks in libvirt storage pools: the two dir pools under
 * the state dir, streamed uploads into volumes (SHA-256 on the way, nothing
 * buffered whole), qcow2 overlays, and removal.
 *
 * Going through libvirt's storage API rather than plain files is what lets
 * libvirt move the volumes between hosts (volume streams, copy-storage
 * migration).  Pool and volume XML is built with libxml2, never pasted.
 *
 * Threads: every function may be called from any thread; one HvUpload is
 * used by one thread at a time.  Failures are HV_ERROR_INVALID (a bad name
 * or argument, a pool that conflicts), HV_ERROR_NOT_FOUND (no such pool or
 * volume), HV_ERROR_UNSUPPORTED (the libvirt driver cannot do it, as
 * test:///default cannot upload) and HV_ERROR_LIBVIRT (anything else libvirt
 * refused, or libvirt unreachable). */
#pragma once

#include <glib.h>

#include "hvcore/conn.h"

/* Tenant images (kernels, initrds, disk images), in <state>/pools/images. */
#define HV_POOL_IMAGES "turtles-images"
/* Stack disks (qcow2 overlays on images), in <state>/pools/disks. */
#define HV_POOL_DISKS "turtles-disks"

/* Volume names are file names in a pool's directory: [a-z0-9][a-z0-9.-]*,
 * at most HV_VOLUME_NAME_MAX bytes.  No '/', no leading '.'. */
#define HV_VOLUME_NAME_MAX 255

gboolean hv_volume_name_is_valid(const char *name);

/* <state_dir>/pools/<images|disks>, absolute (a relative @state_dir is
 * taken from the current directory). */
char *hv_storage_pool_dir(const char *state_dir, const char *pool);

/* Makes sure HV_POOL_IMAGES and HV_POOL_DISKS exist as persistent dir pools
 * under @state_dir, built, active and autostarted.  A missing pool is
 * defined, built (libvirt creates the directory) and started; an inactive
 * one is built and started.  An existing pool with another type or another
 * path is HV_ERROR_INVALID naming both paths: we never redefine what an
 * operator may have set up by hand.  Idempotent. */
gboolean hv_storage_ensure_pools(HvConn *conn, const char *state_dir, GError **error);

/* ---- uploads ------------------------------------------------------------ */

typedef struct HvUpload HvUpload;

/* Creates volume @vol_name in @pool (raw, capacity and allocation 0) and
 * opens a libvirt upload stream into it.  An existing volume of that name
 * is HV_ERROR_INVALID and is left alone.  On failure nothing is left behind:
 * the volume is deleted again.  Holds its own reference to @conn. */
HvUpload *hv_volume_upload_begin(HvConn *conn, const char *pool, const char *vol_name,
                                 GError **error);
/* The same for a caller that hashes the data itself (turtled uses GnuTLS's
 * SHA-256, several times GLib's, which hvcore does not link): writes are
 * not hashed and finish gives no SHA-256 (*@sha256_hex is NULL). */
HvUpload *hv_volume_upload_begin_unhashed(HvConn *conn, const char *pool, const char *vol_name,
                                          GError **error);

/* Streams @len bytes (any size: they are cut into and gathered up to 64 KiB
 * stream messages) and adds them to the SHA-256 and the byte count; returns
 * once libvirt has taken all but at most 64 KiB, which wait for the next
 * write or the finish, so that memory stays bounded whatever the file's
 * size (a send error may therefore show one call later).  After a failure
 * the upload is dead: abort it (or free it, which aborts). */
gboolean hv_volume_upload_write(HvUpload *upload, const void *buf, gsize len, GError **error);

/* Bytes written so far: callers check a quota as the data arrives. */
guint64 hv_upload_get_size(const HvUpload *upload);

/* Closes the stream and waits until libvirt has written everything.
 * @sha256_hex (lower-case hex, free it) and @size may be NULL.  On failure
 * the volume is deleted, as by hv_volume_upload_abort. */
gboolean hv_volume_upload_finish(HvUpload *upload, char **sha256_hex, guint64 *size,
                                 GError **error);

/* Aborts the stream and deletes the volume: nothing half-made is left.
 * FALSE (with @error, may be NULL) only when the volume could not be
 * deleted; its name is in the message so a later cleanup can retry.  Does
 * nothing after a successful finish or an earlier abort. */
gboolean hv_volume_upload_abort(HvUpload *upload, GError **error);

/* The volume's file, known from begin on; valid until hv_upload_free. */
const char *hv_upload_path(const HvUpload *upload);

/* Aborts an upload that was neither finished nor aborted (so a g_autoptr
 * going out of scope on an error path removes the volume), then frees.
 * NULL is fine. */
void hv_upload_free(HvUpload *upload);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvUpload, hv_upload_free)

/* ---- volumes ------------------------------------------------------------ */

/* HV_ERROR_NOT_FOUND when there is no such volume (callers that only want
 * it gone may ignore that code). */
gboolean hv_volume_delete(HvConn *conn, const char *pool, const char *name, GError **error);

/* Makes libvirt look at the pool's directory again: a dir pool lists what
 * it saw at its last refresh, so files removed behind libvirt's back only
 * disappear with one.  libvirt refuses while a volume of the pool is being
 * uploaded (HV_ERROR_LIBVIRT); HV_ERROR_NOT_FOUND for no such pool. */
gboolean hv_pool_refresh(HvConn *conn, const char *pool, GError **error);

typedef struct {
    char *name;
    char *path; /* its file; NULL when libvirt could not tell */
} HvVolumeInfo;

void hv_volume_info_free(HvVolumeInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvVolumeInfo, hv_volume_info_free)

/* The volumes of @pool as libvirt last saw them (hv_pool_refresh first to
 * see the directory as it is now), as HvVolumeInfo (the array frees them).
 * HV_ERROR_NOT_FOUND "storage pool 'x': ..." for no such pool. */
GPtrArray *hv_volume_list(HvConn *conn, const char *pool, GError **error);

/* The volume's file path, or NULL (HV_ERROR_NOT_FOUND when it is missing). */
char *hv_volume_path(HvConn *conn, const char *pool, const char *name, GError **error);

/* TRUE when the volume exists; FALSE with @error unset when it does not;
 * FALSE with @error set when that cannot be told (bad name, no such pool,
 * libvirt unreachable). */
gboolean hv_volume_exists(HvConn *conn, const char *pool, const char *name, GError **error);

/* Creates a qcow2 (v3) volume @overlay_name in @pool whose backing store is
 * @backing_path (absolute) in @backing_format ("raw" or "qcow2"), with the
 * backing image's virtual size.  Returns the overlay's path. */
char *hv_volume_create_overlay(HvConn *conn, const char *pool, const char *overlay_name,
                               const char *backing_path, const char *backing_format,
                               GError **error);
