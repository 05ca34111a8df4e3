/* Tenant images: the rows in the store and their volumes in the
 * HV_POOL_IMAGES libvirt pool, kept in step.
 *
 * The one rule: a volume exists only for an image being uploaded or ready.
 * Every step is ordered so that a crash at any point leaves either that, or
 * something images_reconcile puts right (a volume no ready image names is
 * deleted; an image left uploading becomes error).  Errors are TD_ERROR. */
#pragma once

#include <glib.h>

#include "api/image.h"
#include "daemon/app.h"
#include "hvcore/conn.h"

/* Inserts @image (name, kind, format set) for @tenant as pending, filling
 * id, tenant, state, volume and times.  CONFLICT when the name is taken,
 * QUOTA_EXCEEDED when the tenant has config pending_images images not
 * ready yet. */
gboolean images_create(App *app, const char *tenant, ApiImage *image, GError **error);

/* Removes the row (CONFLICT while a stack uses it; nothing when
 * @precondition, may be NULL, does not hold for it), then the volume.  A
 * volume that cannot be removed (libvirt away) is only logged: with its row
 * gone it is an orphan, which images_reconcile deletes. */
gboolean images_delete(App *app, const char *tenant, const char *name,
                       const Precondition *precondition, GError **error);

/* An upload of an image's data, from the first byte to ready. */
typedef struct ImagesUpload ImagesUpload;

/* Checks that @tenant's image @name exists (NOT_FOUND) and may take data
 * (pending or error, else CONFLICT), that @content_length bytes fit in the
 * tenant's disk quota (PAYLOAD_TOO_LARGE, nothing created), creates its
 * volume and marks it uploading, its declared size counted in the quota
 * while it uploads.  UNAVAILABLE when libvirt is unreachable or cannot
 * upload. */
ImagesUpload *images_upload_begin(App *app, const char *tenant, const char *name,
                                  guint64 content_length, GError **error);
/* Streams into the volume; never more than the declared length. */
gboolean images_upload_write(ImagesUpload *upload, const char *data, gsize len, GError **error);
/* Completes the volume and validates it (hvcore/imagecheck): the ready
 * image, or NULL.  A rejected image is deleted from the pool and marked
 * error with the reason, which is also the BAD_REQUEST returned.  Frees
 * @upload. */
ApiImage *images_upload_finish(ImagesUpload *upload, GError **error);
/* Deletes the volume and puts the image back to pending.  Frees @upload. */
void images_upload_abort(ImagesUpload *upload);

/* At start and after every libvirt reconnection: images left uploading
 * become error "upload interrupted by daemon restart", ready images whose
 * volume vanished become error, and volumes of HV_POOL_IMAGES that no
 * uploading or ready image owns are deleted. */
gboolean images_reconcile(App *app, HvConn *conn, GError **error);

/* For stacks: @tenant's image @name, ready and of @kind (NOT_FOUND, or
 * BAD_REQUEST "image 'x' is not ready (state pending)", "image 'x' is a
 * disk, boot.kernel needs a kernel"), and when @path is not NULL its volume's
 * file (UNAVAILABLE when libvirt is unreachable). */
ApiImage *images_get_ready(App *app, const char *tenant, const char *name, ApiImageKind kind,
                           char **path, GError **error);

/* For a stack that arrived from a peer: @tenant's image @name is recorded as
 * ready on the volume @volume that came with it (already in HV_POOL_IMAGES),
 * its size and SHA-256 read from the file.  Nothing to do when @tenant has an
 * image of that name already. */
gboolean images_adopt_volume(App *app, HvConn *conn, const char *tenant, const char *name,
                             ApiImageKind kind, ApiImageFormat format, const char *volume,
                             GError **error);
