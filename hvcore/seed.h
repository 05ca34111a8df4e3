/* cloud-init NoCloud seeds: the small read-only disk a guest's cloud-init
 * finds by its volume id "cidata" and reads user-data, meta-data (and
 * vendor-data, network-config) from.
 *
 * The image is ISO 9660 with Rock Ridge (Linux reads the files' real
 * names from it) and Joliet (Windows guests' cloudbase-init), written in
 * memory by libisofs (Debian's libisofs6, the library under xorriso; no
 * temporary files, no external program).  It is deterministic: file and
 * volume timestamps, owners and modes are fixed, so the same files give the
 * same bytes on every host and at every time, and a seed can be compared and
 * carried along on migration.  (Across libisofs versions the layout may
 * differ: compare seeds built by the same build of turtled.)
 *
 * Thread-safe: libisofs is initialised once per process and never finished
 * (iso_finish tears down state every live image uses), and builds are
 * serialised (libisofs keeps unsynchronised globals: image ids, its message
 * queue).  A build of the largest seed takes milliseconds. */
#pragma once

#include <glib.h>

/* What hv_seed_build_iso accepts at most: the files' bytes together, and
 * how many files (NoCloud knows four). */
#define HV_SEED_MAX_BYTES    (4 * 1024 * 1024)
#define HV_SEED_MAX_FILES    64
#define HV_SEED_MAX_NAME_LEN 64

/* The volume id cloud-init's NoCloud datasource looks for. */
#define HV_SEED_VOLUME_ID "cidata"

/* A file of a seed: its name in the image's root and its bytes. */
typedef struct {
    const char *name;
    const void *data;
    gsize len;
} HvSeedFile;

/* The image of a NoCloud seed: ISO 9660 + Rock Ridge + Joliet, volume id
 * "cidata", holding @files (n_files >= 1) in its root.  Names are checked:
 * [A-Za-z0-9._-]{1,64}, unique.  Deterministic: the same files give the same
 * bytes (fixed timestamps), so a seed can be compared and carried on migration.
 *
 * Errors: HV_ERROR_INVALID for no files, more than HV_SEED_MAX_FILES, a bad
 * or repeated name ("." and ".." are refused too), NULL data with a length,
 * or more than HV_SEED_MAX_BYTES together; HV_ERROR_FAILED when libisofs
 * fails (its message in ours).  A file may be empty (data NULL, len 0). */
GBytes *hv_seed_build_iso(const HvSeedFile *files, guint n_files, GError **error);
