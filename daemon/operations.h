/* Long-running work.  A request submits a body; a worker pool runs it; every
 * change (status, progress) is persisted in the store and published on the
 * event bus.  Cancel reaches the body through its GCancellable. */
#pragma once

#include <gio/gio.h>
#include <glib.h>

#include "api/operation.h"
#include "daemon/events.h"
#include "daemon/store.h"

typedef struct Operations Operations;
typedef struct OperationContext OperationContext;

/* Runs on a worker thread.  Return TRUE when the work is done (the operation
 * succeeds, whether or not a cancel came meanwhile), FALSE with @error to
 * fail it.  A body that notices cancellation undoes what it did and fails
 * with G_IO_ERROR_CANCELLED: the operation ends "cancelled" only then, and
 * only before operation_point_of_no_return. */
typedef gboolean (*OperationBody)(OperationContext *context, gpointer data, GError **error);

Operations *operations_new(Store *store, EventBus *events, guint workers);
/* Cancels what runs, waits for the workers, frees. */
void operations_free(Operations *operations);

/* Persists a pending operation and queues @body.  Returns the operation as
 * persisted (the caller answers 202 with it). */
ApiOperation *operations_submit(Operations *operations, const char *kind, const char *target,
                                const char *tenant, OperationBody body, gpointer data,
                                GDestroyNotify free_data, GError **error);

/* The operation @id as @tenant may see it (NULL: the operator sees all);
 * another tenant's operation is NOT_FOUND. */
ApiOperation *operations_get(Operations *operations, const char *id, const char *tenant,
                             GError **error);
/* Like operations_get, but waits up to @timeout_s for a final status. */
ApiOperation *operations_wait(Operations *operations, const char *id, const char *tenant,
                              guint timeout_s, GError **error);
/* Asks the body to stop.  A pending operation ends cancelled at once, without
 * running: its free_data runs now, so what the request made (a stack row,
 * its name and quota) goes at once.  CONFLICT when it is already final, and
 * "too late to cancel: ..." once the body passed its point of no return. */
/* A condition cancel checks on the operation as it is, under the lock the
 * cancel takes (If-Match): FALSE with an error refuses and nothing changes. */
typedef gboolean (*OperationCheck)(const ApiOperation *operation, gpointer data, GError **error);
ApiOperation *operations_cancel(Operations *operations, const char *id, const char *tenant,
                                OperationCheck check, gpointer check_data, GError **error);

/* Makes every operations_wait return at once with what it has: turtled is
 * stopping and its long-polls must answer before the server drains. */
void operations_release_waiters(Operations *operations);

/* How the worker pool is doing, for the watchdog. */
typedef struct {
    guint queued;  /* jobs no worker has taken yet */
    guint running; /* jobs workers are running */
    guint workers; /* the pool's size */
    guint taken;   /* jobs workers have taken since start (wraps) */
} OperationsHealth;

/* Takes the pool's lock, so a lock held forever blocks the caller here (the
 * watchdog's prober, which watches for exactly that). */
void operations_health(Operations *operations, OperationsHealth *health);

/* For bodies. */
void operation_progress(OperationContext *context, int percent, const char *stage,
                        gint64 bytes_done, gint64 bytes_total);
GCancellable *operation_cancellable(OperationContext *context);
/* From here the body cannot undo its work: the operation will end succeeded
 * or failed, and a cancel is refused with CONFLICT "too late to cancel:
 * @why".  FALSE with G_IO_ERROR_CANCELLED when a cancel came first (checked
 * and set in one step, under the same lock as operations_cancel). */
gboolean operation_point_of_no_return(OperationContext *context, const char *why, GError **error);
/* For work that a cancel may or may not have stopped in time (a live
 * migration whose abort came too late): it happened, whatever the cancel
 * asked; later cancels are refused as above. */
void operation_passed_point_of_no_return(OperationContext *context, const char *why);
const char *operation_id(OperationContext *context);
