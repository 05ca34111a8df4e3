/* The test-only hang hook (--test-hooks): wedges what the watchdog watches,
 * so that tests see the pings stop.  Never part of the API. */
#include "api/json.h"
#include "daemon/app.h"
#include "daemon/error.h"

#define HANG_START_TIMEOUT_S 10

typedef struct {
    gint refs; /* g_atomic_int_*: compiler atomics ThreadSanitizer sees */
    App *app;
    gint64 seconds;
    GMutex lock;
    GCond cond;
    gboolean started;
} Hang;

static Hang *hang_ref(Hang *hang)
{
    g_atomic_int_inc(&hang->refs);
    return hang;
}

static void hang_unref(gpointer data)
{
    Hang *hang = data;
    if (!g_atomic_int_dec_and_test(&hang->refs))
        return;
    g_cond_clear(&hang->cond);
    g_mutex_clear(&hang->lock);
    g_free(hang);
}

/* Tells the request that the hang has begun, then hangs. */
static void hang_now(Hang *hang)
{
    g_mutex_lock(&hang->lock);
    hang->started = TRUE;
    gint64 seconds = hang->seconds;
    g_cond_signal(&hang->cond);
    g_mutex_unlock(&hang->lock);
    g_usleep((gulong)seconds * G_USEC_PER_SEC);
}

static gboolean hang_main_loop(gpointer data)
{
    hang_now(data);
    return G_SOURCE_REMOVE;
}

static gboolean hold_store(Store *store, gpointer data, GError **error)
{
    (void)store;
    (void)error;
    hang_now(data);
    return TRUE;
}

static gpointer hang_store(gpointer data)
{
    Hang *hang = data;
    g_autoptr(GError) error = NULL;
    /* The store's lock is held for a whole transaction. */
    if (!store_transaction(hang->app->store, hold_store, hang, &error))
        g_warning("test hang of the store: %s", error->message);
    hang_unref(hang);
    return NULL;
}

static gboolean trivial_body(OperationContext *context, gpointer data, GError **error)
{
    (void)context;
    (void)data;
    (void)error;
    return TRUE;
}

/* A cancel's condition runs under the pool's lock: one that does not return
 * holds the lock the way a deadlocked worker would. */
static gboolean hold_pool(const ApiOperation *operation, gpointer data, GError **error)
{
    (void)operation;
    hang_now(data);
    g_set_error_literal(error, TD_ERROR, TD_ERROR_CONFLICT, "test hang over");
    return FALSE;
}

typedef struct {
    Hang *hang;
    char *operation_id;
} PoolHang;

static gpointer hang_pool(gpointer data)
{
    PoolHang *pool_hang = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(ApiOperation) operation =
        operations_cancel(pool_hang->hang->app->operations, pool_hang->operation_id, NULL,
                          hold_pool, pool_hang->hang, &error);
    hang_unref(pool_hang->hang);
    g_free(pool_hang->operation_id);
    g_free(pool_hang);
    return NULL;
}

static gboolean start_pool_hang(Hang *hang, GError **error)
{
    g_autoptr(ApiOperation) operation = operations_submit(
        hang->app->operations, "test.hang", "test/hang", NULL, trivial_body, NULL, NULL, error);
    if (operation == NULL)
        return FALSE;
    PoolHang *pool_hang = g_new0(PoolHang, 1);
    pool_hang->hang = hang_ref(hang);
    pool_hang->operation_id = g_strdup(operation->id);
    g_thread_unref(g_thread_new("test-hang", hang_pool, pool_hang));
    return TRUE;
}

/* POST /v1/test/hang {"what": "main-loop"|"store"|"workers", "seconds": N}:
 * answers 204 once the hang has begun. */
HttpReply *handle_test_hang(gpointer data, const HttpRequest *request)
{
    static const char *const keys[] = {"what", "seconds", NULL};
    App *app = data;
    g_autoptr(GError) error = NULL;
    g_autofree char *what = NULL;
    gint64 seconds = 0;

    if (!api_json_check_object(request->body, "", keys, &error) ||
        !api_json_get_string(request->body, "", "what", API_JSON_REQUIRED, &what, &error) ||
        !api_json_get_int(request->body, "", "seconds", API_JSON_REQUIRED, 1, 3600, &seconds,
                          &error))
        return http_reply_error(error);

    Hang *hang = g_new0(Hang, 1);
    g_atomic_int_set(&hang->refs, 1);
    g_mutex_init(&hang->lock);
    g_cond_init(&hang->cond);
    /* Under the lock: the hang reads them on another thread. */
    g_mutex_lock(&hang->lock);
    hang->app = app;
    hang->seconds = seconds;
    g_mutex_unlock(&hang->lock);
    if (g_str_equal(what, "main-loop")) {
        g_idle_add_full(G_PRIORITY_DEFAULT, hang_main_loop, hang_ref(hang), hang_unref);
    } else if (g_str_equal(what, "store")) {
        g_thread_unref(g_thread_new("test-hang", hang_store, hang_ref(hang)));
    } else if (g_str_equal(what, "workers")) {
        if (!start_pool_hang(hang, &error)) {
            hang_unref(hang);
            return http_reply_error(error);
        }
    } else {
        hang_unref(hang);
        return http_reply_errorf(TD_ERROR_BAD_REQUEST,
                                 "what: expected main-loop, store or workers, got '%s'", what);
    }

    gint64 deadline = g_get_monotonic_time() + HANG_START_TIMEOUT_S * G_USEC_PER_SEC;
    g_mutex_lock(&hang->lock);
    while (!hang->started && g_cond_wait_until(&hang->cond, &hang->lock, deadline))
        ;
    gboolean started = hang->started;
    g_mutex_unlock(&hang->lock);
    hang_unref(hang);
    if (!started)
        return http_reply_errorf(TD_ERROR_UNAVAILABLE, "the %s hang did not begin within %d s",
                                 what, HANG_START_TIMEOUT_S);
    return http_reply_empty(204);
}
