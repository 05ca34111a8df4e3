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

/* Runs on a worker thread.  Return FALSE with @error to fail the operation;
 * a body that notices cancellation fails with G_IO_ERROR_CANCELLED. */
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
/* Asks the body to stop (a pending one ends cancelled without running).  CONFLICT
 * when it is already final. */
ApiOperation *operations_cancel(Operations *operations, const char *id, const char *tenant,
                                GError **error);

/* Makes every operations_wait return at once with what it has: turtled is
 * stopping and its long-polls must answer before the server drains. */
void operations_release_waiters(Operations *operations);

/* For bodies. */
void operation_progress(OperationContext *context, int percent, const char *stage,
                        gint64 bytes_done, gint64 bytes_total);
GCancellable *operation_cancellable(OperationContext *context);
const char *operation_id(OperationContext *context);
