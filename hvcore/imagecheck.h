/* Validation of an uploaded image before it is marked ready.
 *
 * A tenant's bytes end up opened by QEMU on the host, so an image must be
 * exactly what its owner declared: a "raw" that is really qcow2 would make
 * QEMU (or anything probing it later) follow a backing chain into host
 * files, and a qcow2 with a backing file or an external data file points at
 * host files by itself.  The checks:
 *
 *   - the header is read first: a qcow2 declared raw, or a qcow2 with an
 *     external data file, is rejected before qemu-img sees it (qemu-img
 *     info opens a data file, and a VMDK descriptor's extent files, which
 *     could be any host path, a FIFO or a device with side effects on open);
 *   - `qemu-img info --output=json --force-share <path>` without -f: the
 *     format qemu-img probes must be the declared one;
 *   - `qemu-img info --output=json --force-share -f <declared> <path>`:
 *     no backing file, no external data file, not encrypted, not marked
 *     corrupt, a virtual size above zero;
 *   - a kernel must be raw and a bzImage (Linux boot protocol >= 2.00 with
 *     the 0x55AA signature, "HdrS" and LOADED_HIGH, and the setup sectors
 *     present); an initrd must be raw, non-empty, and start like what the
 *     kernel can unpack: a cpio "newc" archive or one compressed with
 *     gzip, bzip2, lzma, xz, lzo, lz4 or zstd (the kernel recognises its
 *     initramfs by exactly these magic numbers; legacy filesystem-image
 *     initrds are refused).
 *
 * qemu-img runs from argv (no shell), with LC_ALL=C, stdin from /dev/null,
 * and is killed after a timeout.  Every verdict against the image is
 * HV_ERROR_INVALID with a message saying what was wrong; HV_ERROR_NOT_FOUND
 * when the file is missing; HV_ERROR_FAILED when the check itself could not
 * run (no qemu-img, timeout).  Callers delete a rejected image.
 *
 * Thread-safe: each call runs its own GMainContext. */
#pragma once

#include <glib.h>

typedef enum {
    HV_IMAGE_KERNEL,
    HV_IMAGE_INITRD,
    HV_IMAGE_DISK,
} HvImageKind;

#define HV_IMAGE_CHECK_TIMEOUT_MS 30000

/* "kernel", "initrd", "disk". */
const char *hv_image_kind_to_string(HvImageKind kind);
/* FALSE for anything else; @kind may be NULL. */
gboolean hv_image_kind_from_string(const char *text, HvImageKind *kind);

/* @path must be absolute; @declared_format "raw" or "qcow2". */
gboolean hv_image_check(const char *path, const char *declared_format, HvImageKind kind,
                        GError **error);

/* The same with another qemu-img (a program name looked up in PATH, or a
 * path) and timeout: for tests. */
gboolean hv_image_check_full(const char *path, const char *declared_format, HvImageKind kind,
                             const char *qemu_img, guint timeout_ms, GError **error);

/* The checks made on the file's first bytes before qemu-img runs (format
 * and kind, empty file, qcow2 and VMDK headers, bzImage, initrd magic):
 * @bytes are the first @len bytes (only the first 64 KiB count) of a file
 * of @file_size bytes.  Exposed for tests and fuzzing: they parse tenant
 * data. */
gboolean hv_image_check_header(const void *bytes, gsize len, guint64 file_size,
                               const char *declared_format, HvImageKind kind, GError **error);

/* The verdict on the output of `qemu-img info --output=json -f
 * <declared_format>` (@json, @len bytes, not necessarily NUL-terminated):
 * the rules of the second qemu-img run above.  @virtual_size may be NULL.
 * Exposed for tests and fuzzing: qemu-img's output describes tenant data. */
gboolean hv_image_check_qemu_info(const char *json, gsize len, const char *declared_format,
                                  guint64 *virtual_size, GError **error);
