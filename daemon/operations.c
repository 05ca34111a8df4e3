#include "daemon/operations.h"

#include "daemon/clock.h"
#include "daemon/error.h"
#include "daemon/log.h"

/* One reference for the pool's queue (dropped by run_job), one for the live
 * table (dropped when the operation ends). */
struct OperationContext {
    gint refs; /* g_atomic_int_*: compiler atomics ThreadSanitizer sees */
    Operations *owner;
    ApiOperation *operation; /* the live copy; guarded by owner->lock */
    OperationBody body;
    gpointer data;
    GDestroyNotify free_data;
    GCancellable *cancellable;
    gboolean abandoned;  /* cancelled while pending: the worker skips it */
    char *no_return_why; /* past the point of no return: why a cancel is too late */
    char *request_id;    /* of the request that submitted it, for its log lines */
};

struct Operations {
    Store *store;
    EventBus *events;
    GThreadPool *pool;
    GMutex lock;
    GCond changed;      /* broadcast whenever an operation ends */
    GHashTable *live;   /* id -> OperationContext, pending or running */
    gboolean releasing; /* operations_wait returns at once */
    gint running;       /* jobs in run_job (atomic) */
    gint taken;         /* jobs run_job has begun since start (atomic, wraps) */
};

static void context_unref(OperationContext *context)
{
    if (!g_atomic_int_dec_and_test(&context->refs))
        return;
    if (context->free_data != NULL)
        context->free_data(context->data);
    g_object_unref(context->cancellable);
    api_operation_free(context->operation);
    g_free(context->no_return_why);
    g_free(context->request_id);
    g_free(context);
}

static void publish(Operations *operations, const ApiOperation *operation)
{
    json_object *event = json_object_new_object();
    json_object_object_add(event, "operation", api_operation_to_json(operation));
    event_bus_publish(operations->events, "operation", operation->tenant, event);
    json_object_put(event);
}

/* Called with owner->lock held: the store and the bus see changes in order. */
static void persist_and_publish(Operations *operations, ApiOperation *operation)
{
    g_autoptr(GError) error = NULL;

    g_free(operation->updated_at);
    operation->updated_at = clock_now_rfc3339();
    if (!store_operation_update(operations->store, operation, &error))
        g_warning("operation %s: cannot persist: %s", operation->id, error->message);
    publish(operations, operation);
}

static void finish(OperationContext *context, const GError *error)
{
    Operations *operations = context->owner;
    ApiOperation *operation = context->operation;

    g_mutex_lock(&operations->lock);
    /* What the body reports is what happened: work that finished succeeded
     * whenever a cancel came, and a body says "cancelled" only once it has
     * undone what it did, which it cannot past the point of no return. */
    if (error == NULL) {
        operation->status = API_OP_SUCCEEDED;
        operation->progress.percent = 100;
    } else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
               context->no_return_why == NULL) {
        operation->status = API_OP_CANCELLED;
    } else {
        operation->status = API_OP_FAILED;
        operation->error = g_strdup(error->message);
        LogFields fields = {.tenant = operation->tenant};
        log_structured(G_LOG_LEVEL_MESSAGE, &fields, "operation %s (%s %s) failed: %s",
                       operation->id, operation->kind, operation->target, error->message);
    }
    persist_and_publish(operations, operation);
    g_hash_table_remove(operations->live, operation->id);
    g_cond_broadcast(&operations->changed);
    g_mutex_unlock(&operations->lock);
    context_unref(context);
}

static void run_job_counted(OperationContext *context, Operations *operations)
{
    g_autoptr(GError) error = NULL;

    g_mutex_lock(&operations->lock);
    if (context->abandoned) {
        g_mutex_unlock(&operations->lock);
        context_unref(context);
        return;
    }
    /* Only operations_free cancels a pending operation without abandoning
     * it: the body never runs and free_data undoes what the request made. */
    gboolean cancelled = g_cancellable_is_cancelled(context->cancellable);
    if (!cancelled) {
        context->operation->status = API_OP_RUNNING;
        persist_and_publish(operations, context->operation);
    }
    g_mutex_unlock(&operations->lock);

    /* Every line the body logs names the operation and its request. */
    log_context_set(context->request_id, context->operation->id);
    if (cancelled)
        g_set_error(&error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
    else if (!context->body(context, context->data, &error) && error == NULL)
        g_set_error(&error, G_IO_ERROR, G_IO_ERROR_FAILED, "failed for an unknown reason");
    finish(context, error);
    log_context_set(NULL, NULL);
    context_unref(context);
}

/* Counted for operations_health: the watchdog tells a busy pool from a
 * wedged one by them. */
static void run_job(gpointer job, gpointer user_data)
{
    Operations *operations = user_data;

    g_atomic_int_inc(&operations->running);
    g_atomic_int_inc(&operations->taken);
    run_job_counted(job, operations);
    g_atomic_int_add(&operations->running, -1);
}

Operations *operations_new(Store *store, EventBus *events, guint workers)
{
    Operations *operations = g_new0(Operations, 1);

    operations->store = store;
    operations->events = events;
    g_mutex_init(&operations->lock);
    g_cond_init(&operations->changed);
    operations->live = g_hash_table_new(g_str_hash, g_str_equal);
    operations->pool = g_thread_pool_new(run_job, operations, (gint)MAX(workers, 1), FALSE, NULL);
    return operations;
}

void operations_free(Operations *operations)
{
    if (operations == NULL)
        return;
    g_mutex_lock(&operations->lock);
    GHashTableIter iter;
    gpointer value;
    g_hash_table_iter_init(&iter, operations->live);
    while (g_hash_table_iter_next(&iter, NULL, &value))
        g_cancellable_cancel(((OperationContext *)value)->cancellable);
    g_mutex_unlock(&operations->lock);
    /* Queued jobs still run: each sees its cancellation and ends at once. */
    g_thread_pool_free(operations->pool, FALSE, TRUE);
    /* Every queued job has finished its operation by now. */
    g_warn_if_fail(g_hash_table_size(operations->live) == 0);
    g_hash_table_destroy(operations->live);
    g_cond_clear(&operations->changed);
    g_mutex_clear(&operations->lock);
    g_free(operations);
}

ApiOperation *operations_submit(Operations *operations, const char *kind, const char *target,
                                const char *tenant, OperationBody body, gpointer data,
                                GDestroyNotify free_data, GError **error)
{
    g_autoptr(ApiOperation) operation = api_operation_new();

    operation->id = g_uuid_string_random();
    operation->kind = g_strdup(kind);
    operation->target = g_strdup(target);
    operation->tenant = g_strdup(tenant);
    operation->status = API_OP_PENDING;
    operation->created_at = clock_now_rfc3339();
    operation->updated_at = g_strdup(operation->created_at);
    if (!store_operation_insert(operations->store, operation, error)) {
        if (free_data != NULL)
            free_data(data);
        return NULL;
    }

    OperationContext *context = g_new0(OperationContext, 1);
    g_atomic_int_set(&context->refs, 2); /* the pool queue's and the live table's */
    context->owner = operations;
    context->operation = api_operation_copy(operation);
    context->body = body;
    context->data = data;
    context->free_data = free_data;
    context->cancellable = g_cancellable_new();
    context->request_id = g_strdup(log_context_request_id());

    g_mutex_lock(&operations->lock);
    g_hash_table_insert(operations->live, context->operation->id, context);
    publish(operations, context->operation);
    g_thread_pool_push(operations->pool, context, NULL);
    g_mutex_unlock(&operations->lock);
    return g_steal_pointer(&operation);
}

ApiOperation *operations_get(Operations *operations, const char *id, const char *tenant,
                             GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(ApiOperation) operation = store_operation_get(operations->store, id, &local);

    /* Another tenant's operation looks exactly like a missing one. */
    if (operation == NULL || (tenant != NULL && g_strcmp0(operation->tenant, tenant) != 0)) {
        if (operation == NULL && !g_error_matches(local, TD_ERROR, TD_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        g_set_error(error, TD_ERROR, TD_ERROR_NOT_FOUND, "operation '%s' not found", id);
        return NULL;
    }
    return g_steal_pointer(&operation);
}

ApiOperation *operations_wait(Operations *operations, const char *id, const char *tenant,
                              guint timeout_s, GError **error)
{
    g_autoptr(ApiOperation) first = operations_get(operations, id, tenant, error);
    if (first == NULL)
        return NULL;

    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
    g_mutex_lock(&operations->lock);
    while (!operations->releasing && g_hash_table_contains(operations->live, id) &&
           g_cond_wait_until(&operations->changed, &operations->lock, deadline))
        ;
    g_mutex_unlock(&operations->lock);
    return operations_get(operations, id, tenant, error);
}

ApiOperation *operations_cancel(Operations *operations, const char *id, const char *tenant,
                                OperationCheck check, gpointer check_data, GError **error)
{
    g_autoptr(ApiOperation) operation = operations_get(operations, id, tenant, error);
    if (operation == NULL)
        return NULL;

    g_mutex_lock(&operations->lock);
    OperationContext *context = g_hash_table_lookup(operations->live, id);
    if (check != NULL &&
        !check(context != NULL ? context->operation : operation, check_data, error)) {
        g_mutex_unlock(&operations->lock);
        return NULL;
    }
    if (context == NULL) {
        g_mutex_unlock(&operations->lock);
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "operation '%s' is already %s", id,
                    api_operation_status_to_string(operation->status));
        return NULL;
    }
    if (context->no_return_why != NULL) {
        g_set_error(error, TD_ERROR, TD_ERROR_CONFLICT, "too late to cancel: %s",
                    context->no_return_why);
        g_mutex_unlock(&operations->lock);
        return NULL;
    }
    g_cancellable_cancel(context->cancellable);
    gboolean abandon = context->operation->status == API_OP_PENDING && !context->abandoned;
    GDestroyNotify undo = NULL;
    gpointer data = NULL;
    if (abandon) {
        /* Not started: it ends now, not when a busy worker reaches it, and
         * what its request made (a stack's name and quota) goes at once. */
        context->abandoned = TRUE;
        undo = g_steal_pointer(&context->free_data);
        data = g_steal_pointer(&context->data);
    }
    g_mutex_unlock(&operations->lock);

    if (abandon) {
        if (undo != NULL)
            undo(data);
        g_mutex_lock(&operations->lock);
        context->operation->status = API_OP_CANCELLED;
        persist_and_publish(operations, context->operation);
        g_hash_table_remove(operations->live, id);
        g_cond_broadcast(&operations->changed);
        g_mutex_unlock(&operations->lock);
        context_unref(context);
    }
    return operations_get(operations, id, tenant, error);
}

void operations_release_waiters(Operations *operations)
{
    g_mutex_lock(&operations->lock);
    operations->releasing = TRUE;
    g_cond_broadcast(&operations->changed);
    g_mutex_unlock(&operations->lock);
}

void operation_progress(OperationContext *context, int percent, const char *stage,
                        gint64 bytes_done, gint64 bytes_total)
{
    Operations *operations = context->owner;
    ApiProgress *progress = &context->operation->progress;

    g_mutex_lock(&operations->lock);
    progress->percent = CLAMP(percent, 0, 100);
    g_free(progress->stage);
    progress->stage = g_strdup(stage);
    progress->bytes_done = bytes_done;
    progress->bytes_total = bytes_total;
    persist_and_publish(operations, context->operation);
    g_mutex_unlock(&operations->lock);
}

gboolean operation_point_of_no_return(OperationContext *context, const char *why, GError **error)
{
    Operations *operations = context->owner;

    g_mutex_lock(&operations->lock);
    gboolean cancelled = g_cancellable_is_cancelled(context->cancellable);
    if (!cancelled && context->no_return_why == NULL)
        context->no_return_why = g_strdup(why);
    g_mutex_unlock(&operations->lock);
    if (cancelled)
        g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
    return !cancelled;
}

void operation_passed_point_of_no_return(OperationContext *context, const char *why)
{
    Operations *operations = context->owner;

    g_mutex_lock(&operations->lock);
    if (context->no_return_why == NULL)
        context->no_return_why = g_strdup(why);
    g_mutex_unlock(&operations->lock);
}

GCancellable *operation_cancellable(OperationContext *context)
{
    return context->cancellable;
}

const char *operation_id(OperationContext *context)
{
    return context->operation->id;
}

void operations_health(Operations *operations, OperationsHealth *health)
{
    g_mutex_lock(&operations->lock);
    health->queued = g_thread_pool_unprocessed(operations->pool);
    health->running = (guint)g_atomic_int_get(&operations->running);
    health->workers = (guint)MAX(g_thread_pool_get_max_threads(operations->pool), 0);
    health->taken = (guint)g_atomic_int_get(&operations->taken);
    g_mutex_unlock(&operations->lock);
}
