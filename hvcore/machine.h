/* A stack's libvirt domain: define, lifecycle actions, state, listing the
 * domains that are ours, and statistics.
 *
 * Every function takes a connection from hv_virt_get_connection and a
 * domain name ("turtles-<stack id>", hv_domain_name_for).  Threads: any
 * thread may call any function; libvirt connections are thread-safe.
 *
 * Errors: HV_ERROR_NOT_FOUND "domain 'x' not found" when there is no such
 * domain, HV_ERROR_INVALID when the domain's state forbids the action (a
 * pause of a shut-off domain) or the XML is refused as malformed, and
 * HV_ERROR_LIBVIRT with libvirt's message for anything else libvirt refused
 * (then hv_virt_report_failure tells whether libvirt is unreachable).
 *
 * Actions are idempotent where that is natural: asking for the state the
 * domain is in already succeeds without a libvirt call, and an action that
 * fails because the domain got there meanwhile (the guest, another thread
 * or an operator was quicker) succeeds too. */
#pragma once

#include <gio/gio.h>
#include <glib.h>

#include "hvcore/conn.h"

#include "hvcore/domain.h"

typedef enum {
    HV_MACHINE_ABSENT,  /* no such domain */
    HV_MACHINE_RUNNING, /* running, blocked, or shutting down (still active) */
    HV_MACHINE_PAUSED,  /* paused by us, an admin, an I/O error or a migration */
    HV_MACHINE_SHUTOFF, /* defined, not active (whatever the reason) */
    HV_MACHINE_CRASHED, /* active but crashed (only with on_crash=preserve) */
    HV_MACHINE_OTHER,   /* no state, or suspended by the guest (S3) */
} HvMachineState;

/* "absent", "running", "paused", "shutoff", "crashed", "other". */
const char *hv_machine_state_to_string(HvMachineState state);

/* virDomainDefineXML (with libvirt's schema validation): a persistent
 * domain, not started.  Redefining an existing domain of the same name and
 * UUID replaces its configuration (a running domain gets it on its next
 * start).  XML that libvirt cannot parse or that fails its schema is
 * HV_ERROR_INVALID; another domain's name with this UUID (or the reverse) is
 * HV_ERROR_LIBVIRT "... already exists ...", as libvirt reports it. */
gboolean hv_machine_define(HvConn *conn, const char *xml, GError **error);

/* Boots a shut-off domain.  Already running: TRUE.  Paused:
 * HV_ERROR_INVALID (resume it instead). */
gboolean hv_machine_start(HvConn *conn, const char *name, GError **error);

/* Graceful stop: presses the ACPI power button (a paused domain is resumed
 * first so that its guest can see it), then polls the state until the
 * domain is shut off, for up to @timeout_s seconds.  When the guest ignores
 * the button (the reference L1 has no ACPI daemon, so it always does), it is
 * forced off and *@forced (may be NULL) set to TRUE.  When @cancellable
 * fires while waiting: FALSE with G_IO_ERROR_CANCELLED, the domain left as
 * it is (still shutting down, maybe).  Already shut off: TRUE. */
gboolean hv_machine_stop(HvConn *conn, const char *name, guint timeout_s, GCancellable *cancellable,
                         gboolean *forced, GError **error);

/* Waits until the domain is no longer active, polling its state, for up to
 * @timeout_ms: FALSE with G_IO_ERROR_TIMED_OUT when it still is, or
 * G_IO_ERROR_CANCELLED as soon as @cancellable (may be NULL) fires.  A
 * domain that vanishes meanwhile counts as shut off.  hv_machine_stop's
 * wait, for callers that asked the guest to stop some other way. */
gboolean hv_machine_wait_shutoff(HvConn *conn, const char *name, guint timeout_ms,
                                 GCancellable *cancellable, GError **error);

/* Pulls the plug (virDomainDestroy).  Already shut off: TRUE. */
gboolean hv_machine_force_stop(HvConn *conn, const char *name, GError **error);

/* A hard reset of the running (or paused) L1, like the reset button
 * (virDomainReset): the reference L1 has no ACPI daemon, so a graceful
 * reboot request would never be acted on.  The guest's disks are not synced
 * first.  QEMU keeps running, so the console log simply continues.  Shut
 * off: HV_ERROR_INVALID. */
gboolean hv_machine_reboot(HvConn *conn, const char *name, GError **error);

/* Freezes the vCPUs.  Already paused: TRUE.  Shut off: HV_ERROR_INVALID. */
gboolean hv_machine_pause(HvConn *conn, const char *name, GError **error);

/* Resumes a paused domain.  Already running: TRUE.  Shut off:
 * HV_ERROR_INVALID. */
gboolean hv_machine_resume(HvConn *conn, const char *name, GError **error);

/* Destroys the domain if it is active and undefines it, with its managed
 * save image, snapshot and checkpoint metadata and NVRAM file where the
 * driver has them.  No such domain: TRUE (idempotent, so an interrupted
 * delete can simply be run again). */
gboolean hv_machine_remove(HvConn *conn, const char *name, GError **error);

/* Where a migration out of this host stands for domain @name, as libvirt
 * sees it: whether or not the process that started it is still there. */
typedef enum {
    HV_OUTGOING_NONE,    /* none (or it failed): the domain is here */
    HV_OUTGOING_RUNNING, /* under way: a job, or paused for its switchover */
    HV_OUTGOING_DONE,    /* completed: shut off with reason "migrated", or gone */
} HvOutgoing;

/* HV_OUTGOING_NONE with @error set when libvirt cannot tell. */
HvOutgoing hv_machine_get_outgoing(HvConn *conn, const char *name, GError **error);

/* The domain's state; HV_MACHINE_ABSENT with @error unset when there is no
 * such domain, HV_MACHINE_ABSENT with @error set when it cannot be told. */
HvMachineState hv_machine_get_state(HvConn *conn, const char *name, GError **error);

typedef struct {
    char *name; /* the libvirt domain name */
    HvMachineState state;
    /* FALSE while a migration is still arriving: libvirt keeps the incoming
     * domain transient until the migration finishes (turtled itself only
     * ever defines persistent domains). */
    gboolean persistent;
    HvStackIdentity *identity; /* from its <metadata> */
} HvMachineInfo;

void hv_machine_info_free(HvMachineInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvMachineInfo, hv_machine_info_free)

/* Every domain, active or not, that carries our metadata, as HvMachineInfo
 * (the array frees them).  Domains without it, with broken metadata (logged
 * at debug level) or that vanish while being listed are skipped; any other
 * failure fails the whole call, so that a reconcile never mistakes a
 * libvirt error for a missing domain. */
GPtrArray *hv_machine_list_ours(HvConn *conn, GError **error);

/* The domain's current XML (libvirt's live definition, the <metadata>
 * included): HV_ERROR_NOT_FOUND when there is no such domain. */
char *hv_machine_get_xml(HvConn *conn, const char *name, GError **error);

typedef struct {
    HvMachineState state;
    guint64 cpu_time_ns; /* all vCPUs and QEMU's own threads */
    guint vcpus;         /* current vCPU count */
    guint64 memory_current_kib, memory_maximum_kib;
    gint64 memory_rss_kib; /* QEMU's resident set; -1 unknown (shut off, or not reported) */
    /* Summed over the domain's disks. */
    guint64 block_read_bytes, block_write_bytes, block_read_requests, block_write_requests;
} HvMachineStats;

/* One virDomainListGetStats round trip (groups state, cpu-total, balloon,
 * vcpu and block), without waiting behind a job such as a migration.
 * Whatever the driver does not report stays 0 (memory_rss_kib -1):
 * test:///default reports only the state. */
gboolean hv_machine_get_stats(HvConn *conn, const char *name, HvMachineStats *stats,
                              GError **error);

/* hv_machine_stats_parse (libvirt's typed parameters) is in
 * hvcore/libvirt-private.h. */

/* The completed incoming migration that brought @name here, from libvirt's
 * completed-job statistics on this (the destination) side; found FALSE when
 * its last job was something else, or while a job still runs on the domain
 * (job_running: libvirt keeps a finishing migration's figures until its
 * job ends, a moment after the domain resumed; TRUE too while a migration
 * is still coming in). */
typedef struct {
    gboolean found;
    gboolean job_running;
    guint64 total_ms;
    guint64 downtime_ms;
    guint64 bytes;
} HvMachineMigration;

gboolean hv_machine_get_incoming_migration(HvConn *conn, const char *name,
                                           HvMachineMigration *migration, GError **error);

/* Hot-plug: attaches @device (hv_domain_device_xml) to domain @name, to the
 * running domain and its persistent configuration (only the configuration
 * when it is shut off).  edu: HV_ERROR_UNSUPPORTED. */
gboolean hv_machine_attach_device(HvConn *conn, const char *name, const HvDevice *device,
                                  GError **error);

/* Hot-unplug of the device whose pool id is @device_id (by its alias), from
 * the running domain and its configuration.  A running guest must release
 * it (PCIe hot-unplug: the L1 sees an attention button and lets go within
 * seconds); waits for that up to @timeout_s and fails with HV_ERROR_FAILED
 * when the guest keeps it.  A device the domain does not have: TRUE. */
gboolean hv_machine_detach_device(HvConn *conn, const char *name, const char *device_id,
                                  guint timeout_s, GError **error);
