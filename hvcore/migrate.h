/* Live migration of a stack's L1 (and the L2 inside it) to a peer host:
 * preflight checks, copying the boot images the peer lacks through libvirt
 * volume streams, the destination XML rewritten for the peer's pools and
 * console dir, and libvirt peer-to-peer live migration with progress.
 *
 * The caller opens both connections: @src (this host's libvirt) and @dst
 * (the peer's, by its libvirt URI); an unreachable peer is its business.
 * The usual order is
 *
 *   hv_migrate_preflight -> hv_migrate_list_volumes -> hv_volume_copy for
 *   each image and each whole volume -> hv_migrate_create_overlays (disk
 *   boot) -> hv_migrate_destination_xml -> hv_migrate_run
 *
 * and on failure the caller deletes on the peer what it copied or created
 * (each step says what it made), so nothing half-made is left there.
 *
 * Peer layout: every host keeps its pools under its turtled state dir,
 * <state>/pools/images (HV_POOL_IMAGES) and <state>/pools/disks
 * (HV_POOL_DISKS), and its console logs in <state>/consoles.  So the peer's
 * console dir is found from @dst alone: the parent of the parent of its
 * turtles-images pool's path, plus "/consoles".  That directory must exist
 * on the peer (its turtled makes it at startup): QEMU opens the log there
 * when the incoming domain starts.
 *
 * Threads: any thread; libvirt connections are thread-safe.  Errors are
 * HV_ERROR (HV_ERROR_UNSUPPORTED for refusals, HV_ERROR_NOT_FOUND for a
 * missing domain or volume, HV_ERROR_LIBVIRT for what libvirt refused) and
 * G_IO_ERROR_CANCELLED. */
#pragma once

#include <gio/gio.h>
#include <glib.h>

#include "hvcore/conn.h"

#include "hvcore/probe.h"

/* Refusals are HV_ERROR_UNSUPPORTED (or HV_ERROR_NOT_FOUND for a missing
 * domain) with the reason:
 *  - the domain is not running or paused here;
 *  - it has VFIO <hostdev> devices ("... VFIO devices attached: ... not
 *    supported");
 *  - @backend kvm and !@src_nested_state (this host's probe says
 *    KVM_CAP_NESTED_STATE is missing);
 *  - not enough free memory on the peer (virNodeGetFreeMemory vs the
 *    domain's maximum memory);
 *  - the peer's CPU cannot run this L1's CPU model:
 *    virConnectCompareHypervisorCPU on @dst with the domain's <cpu> (for
 *    host-passthrough, the source host's CPU from its capabilities),
 *    INCOMPATIBLE -> refused naming the model and libvirt's reason.
 * The local checks come first, so a refusal costs no peer round trip.  A
 * peer whose libvirt cannot compare CPUs at all (no such API in its
 * driver) is not refused for it: libvirt's own migration check still runs. */
gboolean hv_migrate_preflight(HvConn *src, HvConn *dst, const char *domain, HvBackend backend,
                              gboolean src_nested_state, GError **error);

/* The VFIO part of the preflight on a domain XML document (what
 * hv_migrate_preflight reads from libvirt): HV_ERROR_UNSUPPORTED naming
 * the PCI addresses of the <hostdev> devices, HV_ERROR_INVALID when the
 * XML does not parse.  Exposed so that it can be tested on XML. */
gboolean hv_migrate_check_devices(const char *domain_xml, GError **error);

/* Copies volume @name of @pool from @src to @dst through libvirt volume
 * download/upload streams (memory bounded by one 256 KiB piece; same name;
 * the bytes of the file, so the same capacity and format once the peer's
 * pool probes it), unless @dst already has a volume of that name.
 * *@copied (may be NULL) says whether it copied, so that a failed
 * migration can delete what it copied; on failure nothing is left on the
 * peer.  @progress (may be NULL) gets the bytes done and the volume's
 * physical size after every piece, in the calling thread.  @cancellable
 * is checked between pieces: G_IO_ERROR_CANCELLED. */
typedef void (*HvCopyProgress)(guint64 done, guint64 total, gpointer data);
gboolean hv_volume_copy(HvConn *src, HvConn *dst, const char *pool, const char *name,
                        HvCopyProgress progress, gpointer data, GCancellable *cancellable,
                        gboolean *copied, GError **error);

/* What the domain boots from, as volume names (char *, the arrays own
 * them), from one read of its XML: @images in HV_POOL_IMAGES (kernel,
 * initrd, and the backing image of each overlay), @overlays in
 * HV_POOL_DISKS, and @wholes, the volumes of HV_POOL_DISKS it uses whole,
 * with no backing image: its UEFI variables and its cloud-init seed.
 * libvirt's storage copy leaves the wholes alone (the seed is read-only,
 * the variables are no disk): hv_volume_copy brings them to the peer
 * before the memory moves, and QEMU writes the variables' migrated
 * contents over the copy once the domain runs there.  Each output may be
 * NULL.  A kernel, initrd or disk outside those two pools is
 * HV_ERROR_UNSUPPORTED: it could not be found on the peer.  A file the
 * pool does not know yet (libvirt writes the UEFI variables behind its
 * back) costs one refresh of HV_POOL_DISKS; none when all are known.
 * Each name appears once. */
gboolean hv_migrate_list_volumes(HvConn *src, const char *domain, GPtrArray **images,
                                 GPtrArray **overlays, GPtrArray **wholes, GError **error);

/* Disk boot with copy-storage: libvirt cannot pre-create the destination
 * of an incremental (top layer only) copy, so this creates on @dst, for
 * each of @overlays (the names hv_migrate_list_volumes gave), an empty
 * qcow2 overlay of the same name on the peer's copy of the same backing
 * image (which must be there: hv_volume_copy first).  An overlay the peer has already is
 * HV_ERROR_INVALID (it may be another stack's).  @created (an array
 * that frees its elements with g_free) gets the volume names made, also on
 * failure, for the caller to delete.
 * No overlays: TRUE, nothing made. */
gboolean hv_migrate_create_overlays(HvConn *src, HvConn *dst, GPtrArray *overlays,
                                    GPtrArray *created, GError **error);

/* The domain's XML as the peer must run it (libvirt's migratable XML):
 * every path of a volume in the source's two pools rewritten to the same
 * volume's path in the peer's pool (looked up on @dst: the volumes must
 * exist there, HV_ERROR_NOT_FOUND otherwise), and the console log (serial
 * and console <source path>, <log file>) moved into the peer's console
 * dir with the same file name.  *@dst_console_log (may be NULL) gets that
 * path (NULL when the domain has no file console).  Call it after
 * hv_migrate_list_volumes, which makes new UEFI variables a volume. */
char *hv_migrate_destination_xml(HvConn *src, HvConn *dst, const char *domain,
                                 char **dst_console_log, GError **error);

/* The rewrite itself: every attribute value and element text of
 * @domain_xml equal to a key of @paths (char * -> char *) becomes its
 * value.  Exposed for tests. */
char *hv_migrate_rewrite_xml(const char *domain_xml, GHashTable *paths, GError **error);

/* Progress from libvirt's job stats, polled every ~500 ms. */
typedef struct {
    int percent;       /* 0..100, of the current stage */
    const char *stage; /* "setup", "storage" (copy-storage), "memory", "done" */
    guint64 bytes_done, bytes_total, bytes_remaining;
} HvMigrateProgress;
typedef void (*HvMigrateProgressFunc)(const HvMigrateProgress *progress, gpointer data);

typedef struct {
    guint64 total_ms;    /* libvirt's time elapsed for the whole job */
    guint64 downtime_ms; /* the guest's pause at the switch-over */
    guint64 bytes;       /* data processed (memory, and disks with copy-storage) */
    guint64 call_ms;     /* the wall time of libvirt's migration call (the last
                            attempt), measured here: what surrounds it is ours */
} HvMigrateResult;

/* Live peer-to-peer migration of @domain to @dst_uri (the peer's libvirt
 * URI: the source libvirtd itself connects to it), over @migrate_uri (NULL:
 * libvirt's default; on one machine pass "tcp://127.0.0.1": libvirt
 * refuses loopback as a configured migration address), with @dest_xml as
 * both the running and the persistent definition on the peer, the source
 * undefined only after success (VIR_MIGRATE_UNDEFINE_SOURCE).  With
 * @copy_storage the overlay disks' top layer is copied
 * (VIR_MIGRATE_NON_SHARED_INC; hv_migrate_create_overlays first).
 * @progress (may be NULL) is called from the calling thread, which also
 * watches @cancellable: cancelling aborts the libvirt job
 * (virDomainAbortJob) and fails with G_IO_ERROR_CANCELLED.  *@result (may
 * be NULL) from the completed job's stats; a figure libvirt does not give
 * is measured here (total) or left 0.  Those statistics are read on the
 * peer after success (libvirt hands them to the destination): through
 * @dst, the caller's connection to @dst_uri, or (@dst NULL) a connection
 * opened for it.  On failure the domain keeps
 * running on the source (resumed if libvirt left it paused).  A migration
 * the peer's QEMU refuses because the switchover caught the vCPU in the
 * L2 under TCG (a QEMU limitation, see migrate.c), or whose job failed
 * while the peer still answers, is tried again, up to 4 attempts in all. */
gboolean hv_migrate_run(HvConn *src, HvConn *dst, const char *domain, const char *dst_uri,
                        const char *migrate_uri, const char *dest_xml, gboolean copy_storage,
                        HvMigrateProgressFunc progress, gpointer data, GCancellable *cancellable,
                        HvMigrateResult *result, GError **error);
