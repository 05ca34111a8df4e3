/* turtled's libvirt connection: open, keepalive, lifecycle events, and
 * reconnection by itself when libvirt goes away.
 *
 * Threads: libvirt's events run on the process's default GMainContext
 * through libvirt-glib's event implementation, and so do every callback
 * below.  hv_virt_new, hv_virt_connect, hv_virt_set_backoff and hv_virt_free
 * belong to the thread that runs that context (turtled's main thread); the
 * getters and hv_virt_report_failure may be called from any thread.  A
 * callback must not free its HvVirt. */
#pragma once

#include <glib.h>

#include "hvcore/conn.h"

typedef struct HvVirt HvVirt;

/* What happened to a domain, from libvirt's event type and detail.  The
 * detail stays available in HvLifecycleEvent for finer distinctions. */
typedef enum {
    HV_LIFECYCLE_OTHER,       /* an event type this build does not know */
    HV_LIFECYCLE_DEFINED,     /* persistent config added or changed */
    HV_LIFECYCLE_UNDEFINED,   /* persistent config removed */
    HV_LIFECYCLE_STARTED,     /* booted, restored, woke up */
    HV_LIFECYCLE_SUSPENDED,   /* paused (by an admin, an I/O error, a migration, ...) */
    HV_LIFECYCLE_RESUMED,     /* running again; on a migration's destination, it completed */
    HV_LIFECYCLE_STOPPED,     /* shut down, destroyed, saved or failed */
    HV_LIFECYCLE_SHUTDOWN,    /* the guest is shutting down; STOPPED follows */
    HV_LIFECYCLE_CRASHED,     /* the guest panicked or crashed (stopped or not) */
    HV_LIFECYCLE_PMSUSPENDED, /* the guest suspended itself (S3/S4) */
    /* An incoming migration created the domain on this host, paused:
     * RESUMED follows when it completes, STOPPED when it fails. */
    HV_LIFECYCLE_MIGRATED_IN,
    HV_LIFECYCLE_MIGRATED_OUT, /* the domain left this host for another */
} HvLifecycle;

/* "defined", "started", "migrated-in", ...; "other" for unknown values. */
const char *hv_lifecycle_to_string(HvLifecycle what);
/* Maps a virDomainEventType and its detail. */
HvLifecycle hv_lifecycle_from_libvirt(int event, int detail);

/* Why a domain stopped, for HV_LIFECYCLE_STOPPED (HV_STOP_NONE otherwise). */
typedef enum {
    HV_STOP_NONE,    /* not a stop */
    HV_STOP_OTHER,   /* shut down, destroyed, saved, ... */
    HV_STOP_CRASHED, /* the guest crashed */
    HV_STOP_FAILED,  /* the hypervisor (QEMU) failed */
} HvStopReason;

/* Maps a virDomainEventType and its detail. */
HvStopReason hv_stop_reason_from_libvirt(int event, int detail);

/* Borrowed for the duration of the callback. */
typedef struct {
    const char *domain_name;
    const char *domain_uuid; /* "xxxxxxxx-xxxx-..." */
    HvLifecycle what;
    HvStopReason stop_reason;
    int libvirt_event;  /* virDomainEventType */
    int libvirt_detail; /* its vir*DetailType */
} HvLifecycleEvent;

typedef void (*HvLifecycleFunc)(const HvLifecycleEvent *event, gpointer data);
/* Called when an established connection is lost (@connected FALSE, @reason
 * says why) and when a reconnection succeeds (TRUE, NULL; the caller
 * reconciles then).  Failed reconnection attempts are not reported: see
 * hv_virt_get_failed_attempts. */
typedef void (*HvConnectionFunc)(gboolean connected, const char *reason, gpointer data);

/* Initialises libvirt-glib and registers its event implementation, which
 * dispatches libvirt's events on the default GMainContext; must run before
 * any connection is opened (hv_virt_new calls it).  It also replaces
 * libvirt's default error handler, which prints every error on stderr, with
 * one that only logs at debug level: the handler is process-wide, and our
 * callers report libvirt errors through GError instead.  Idempotent. */
void hv_virt_init_event_loop(void);

/* A connection to @uri, not opened yet.  Either callback may be NULL. */
HvVirt *hv_virt_new(const char *uri, HvLifecycleFunc on_lifecycle, HvConnectionFunc on_connection,
                    gpointer data);

/* Reconnection waits @initial_ms after a loss or a first failure, then
 * doubles up to @max_ms between attempts (defaults 500 ms and 10 s). */
void hv_virt_set_backoff(HvVirt *virt, guint initial_ms, guint max_ms);

/* The first attempt, made synchronously: opens the connection, sets a
 * keepalive (remote drivers) and registers for lifecycle events and for the
 * connection's loss.  On failure (HV_ERROR_LIBVIRT) it keeps trying by
 * itself, in a thread so that the main loop never blocks on an unreachable
 * host, and reports success through on_connection.  The result of this call
 * is reported only by its return value.  Later calls only tell whether the
 * connection is up (FALSE with the error of hv_virt_get_connection). */
gboolean hv_virt_connect(HvVirt *virt, GError **error);

gboolean hv_virt_is_connected(HvVirt *virt);

/* A new reference to the connection (release it with hv_conn_unref, or
 * g_autoptr(HvConn)), or NULL with HV_ERROR_LIBVIRT "libvirt is
 * unreachable (<uri>): <reason>" while disconnected. */
HvConn *hv_virt_get_connection(HvVirt *virt, GError **error);

/* Call right after a libvirt call on @conn (from hv_virt_get_connection)
 * failed, in the thread that made it (any thread).  Returns TRUE when @conn
 * is dead (virConnectIsAlive), that is when the failure means libvirt is
 * unreachable, and then drops @conn and starts reconnecting unless that
 * happened already (libvirt usually reports the loss itself first).  FALSE
 * for an ordinary error on a live connection.  Cheap: no round trip. */
gboolean hv_virt_report_failure(HvVirt *virt, HvConn *conn);

/* Failed connection attempts since the last success (0 while connected). */
guint hv_virt_get_failed_attempts(HvVirt *virt);

const char *hv_virt_get_uri(HvVirt *virt);

/* Deregisters the callbacks, cancels pending attempts and closes the
 * connection; waits for an attempt in progress to return.  NULL is fine. */
void hv_virt_free(HvVirt *virt);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvVirt, hv_virt_free)
