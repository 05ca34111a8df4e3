/* GLib synchronization made visible to ThreadSanitizer (TSan builds only).
 *
 * Debian's libglib is not instrumented, and its GMutex, GCond, GRecMutex,
 * GRWLock, GOnce, GAsyncQueue and GThreadPool synchronize with raw futexes
 * and atomics that TSan never sees: every access guarded by a GMutex would
 * look like a race.  This file, linked into every program of a TSAN=1 build,
 * defines those GLib entry points itself.  The executable's definitions win
 * over libglib's for every caller outside libglib (our code, libvirt-glib,
 * GLib's inline helpers such as g_mutex_locker_new); each one calls the real
 * function (dlsym RTLD_NEXT) and tells TSan what it does: lock and unlock
 * through the __tsan_mutex_* annotations (so lock-order inversions are
 * reported too), hand-overs through __tsan_release/__tsan_acquire.
 *
 * Calls inside libglib (it links with -Bsymbolic-functions) do not come
 * here; that is why GThreadPool and GOnce are annotated at their API, not
 * through the locks they use inside. */
#include <dlfcn.h>
#include <glib.h>
#include <pthread.h>
#include <sanitizer/tsan_interface.h>
#include <stdio.h>
#include <stdlib.h>

/* The real function NAME, looked up once; any thread may be first. */
#define REAL(name)                                                                                 \
    static __typeof__(&name) real_##name;                                                          \
    __typeof__(&name) fn_##name = __atomic_load_n(&real_##name, __ATOMIC_ACQUIRE);                 \
    if (!fn_##name) {                                                                              \
        fn_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name);                                    \
        if (!fn_##name) {                                                                          \
            fprintf(stderr, "tsan glib shim: no %s in the libraries loaded\n", #name);             \
            abort();                                                                               \
        }                                                                                          \
        __atomic_store_n(&real_##name, fn_##name, __ATOMIC_RELEASE);                               \
    }

/* ---- g_free ----------------------------------------------------------------- */

/* tests/tsan.supp ignores the mallocs, frees and string functions that
 * libglib and libgio call (called_from_lib): their other loads and stores are
 * invisible, and half a picture gives only false reports (e.g. of GLib's own
 * worker thread behind GSubprocess).  Our g_free calls must stay checked (a
 * free racing with a use is the commonest race): here free is called from
 * instrumented code.  GLib's g_free is free() itself. */
void g_free(gpointer mem)
{
    free(mem);
}

/* ---- GMutex ---------------------------------------------------------------- */

/* No __tsan_mutex_destroy in g_mutex_clear: libgio clears mutexes that
 * GLib's worker thread used, ordered by GLib-internal futexes TSan cannot
 * see, and the destroy would be reported as a race with that use.  TSan
 * drops a mutex's state when its memory is freed. */

void g_mutex_lock(GMutex *mutex)
{
    REAL(g_mutex_lock);
    __tsan_mutex_pre_lock(mutex, 0);
    fn_g_mutex_lock(mutex);
    __tsan_mutex_post_lock(mutex, 0, 0);
}

gboolean g_mutex_trylock(GMutex *mutex)
{
    REAL(g_mutex_trylock);
    __tsan_mutex_pre_lock(mutex, __tsan_mutex_try_lock);
    gboolean locked = fn_g_mutex_trylock(mutex);
    __tsan_mutex_post_lock(mutex,
                           __tsan_mutex_try_lock | (locked ? 0 : __tsan_mutex_try_lock_failed), 0);
    return locked;
}

void g_mutex_unlock(GMutex *mutex)
{
    REAL(g_mutex_unlock);
    __tsan_mutex_pre_unlock(mutex, 0);
    fn_g_mutex_unlock(mutex);
    __tsan_mutex_post_unlock(mutex, 0);
}

/* ---- GRecMutex ------------------------------------------------------------- */

void g_rec_mutex_lock(GRecMutex *mutex)
{
    REAL(g_rec_mutex_lock);
    __tsan_mutex_pre_lock(mutex, __tsan_mutex_write_reentrant);
    fn_g_rec_mutex_lock(mutex);
    __tsan_mutex_post_lock(mutex, __tsan_mutex_write_reentrant, 0);
}

gboolean g_rec_mutex_trylock(GRecMutex *mutex)
{
    REAL(g_rec_mutex_trylock);
    unsigned flags = __tsan_mutex_write_reentrant | __tsan_mutex_try_lock;
    __tsan_mutex_pre_lock(mutex, flags);
    gboolean locked = fn_g_rec_mutex_trylock(mutex);
    __tsan_mutex_post_lock(mutex, flags | (locked ? 0 : __tsan_mutex_try_lock_failed), 0);
    return locked;
}

void g_rec_mutex_unlock(GRecMutex *mutex)
{
    REAL(g_rec_mutex_unlock);
    __tsan_mutex_pre_unlock(mutex, 0);
    fn_g_rec_mutex_unlock(mutex);
    __tsan_mutex_post_unlock(mutex, 0);
}

/* ---- GRWLock --------------------------------------------------------------- */

void g_rw_lock_writer_lock(GRWLock *lock)
{
    REAL(g_rw_lock_writer_lock);
    __tsan_mutex_pre_lock(lock, 0);
    fn_g_rw_lock_writer_lock(lock);
    __tsan_mutex_post_lock(lock, 0, 0);
}

gboolean g_rw_lock_writer_trylock(GRWLock *lock)
{
    REAL(g_rw_lock_writer_trylock);
    __tsan_mutex_pre_lock(lock, __tsan_mutex_try_lock);
    gboolean locked = fn_g_rw_lock_writer_trylock(lock);
    __tsan_mutex_post_lock(lock,
                           __tsan_mutex_try_lock | (locked ? 0 : __tsan_mutex_try_lock_failed), 0);
    return locked;
}

void g_rw_lock_writer_unlock(GRWLock *lock)
{
    REAL(g_rw_lock_writer_unlock);
    __tsan_mutex_pre_unlock(lock, 0);
    fn_g_rw_lock_writer_unlock(lock);
    __tsan_mutex_post_unlock(lock, 0);
}

void g_rw_lock_reader_lock(GRWLock *lock)
{
    REAL(g_rw_lock_reader_lock);
    __tsan_mutex_pre_lock(lock, __tsan_mutex_read_lock);
    fn_g_rw_lock_reader_lock(lock);
    __tsan_mutex_post_lock(lock, __tsan_mutex_read_lock, 0);
}

gboolean g_rw_lock_reader_trylock(GRWLock *lock)
{
    REAL(g_rw_lock_reader_trylock);
    __tsan_mutex_pre_lock(lock, __tsan_mutex_try_read_lock);
    gboolean locked = fn_g_rw_lock_reader_trylock(lock);
    __tsan_mutex_post_lock(
        lock, __tsan_mutex_try_read_lock | (locked ? 0 : __tsan_mutex_try_lock_failed), 0);
    return locked;
}

void g_rw_lock_reader_unlock(GRWLock *lock)
{
    REAL(g_rw_lock_reader_unlock);
    __tsan_mutex_pre_unlock(lock, __tsan_mutex_read_lock);
    fn_g_rw_lock_reader_unlock(lock);
    __tsan_mutex_post_unlock(lock, __tsan_mutex_read_lock);
}

/* ---- GCond: the wait unlocks and relocks the mutex inside libglib ---------- */

void g_cond_wait(GCond *cond, GMutex *mutex)
{
    REAL(g_cond_wait);
    __tsan_mutex_pre_unlock(mutex, 0);
    __tsan_mutex_post_unlock(mutex, 0);
    fn_g_cond_wait(cond, mutex);
    __tsan_mutex_pre_lock(mutex, 0);
    __tsan_mutex_post_lock(mutex, 0, 0);
}

gboolean g_cond_wait_until(GCond *cond, GMutex *mutex, gint64 end_time)
{
    REAL(g_cond_wait_until);
    __tsan_mutex_pre_unlock(mutex, 0);
    __tsan_mutex_post_unlock(mutex, 0);
    gboolean signalled = fn_g_cond_wait_until(cond, mutex, end_time);
    __tsan_mutex_pre_lock(mutex, 0);
    __tsan_mutex_post_lock(mutex, 0, 0);
    return signalled;
}

/* ---- GOnce ----------------------------------------------------------------- */

/* g_once_init_enter's inline fast path reads *location with an (instrumented)
 * acquire load; the release below, before libglib stores the value, is what
 * that load synchronizes with. */
gboolean(g_once_init_enter)(volatile void *location)
{
    REAL(g_once_init_enter);
    gboolean first = fn_g_once_init_enter(location);
    if (!first)
        __tsan_acquire((void *)location);
    return first;
}

void(g_once_init_leave)(volatile void *location, gsize result)
{
    REAL(g_once_init_leave);
    __tsan_release((void *)location);
    fn_g_once_init_leave(location, result);
}

struct once_call {
    GOnce *once;
    GThreadFunc func;
    gpointer arg;
};

static gpointer once_call(gpointer data)
{
    struct once_call *call = data;
    gpointer result = call->func(call->arg);
    /* Before libglib marks it ready: g_once's inline fast path reads the
     * status with an acquire load, which synchronizes with this. */
    __tsan_release((void *)&call->once->status);
    return result;
}

gpointer g_once_impl(GOnce *once, GThreadFunc func, gpointer arg)
{
    REAL(g_once_impl);
    struct once_call call = {once, func, arg};
    gpointer result = fn_g_once_impl(once, once_call, &call);
    __tsan_acquire((void *)&once->status);
    return result;
}

/* ---- GAsyncQueue: a queue behind one mutex --------------------------------- */

void g_async_queue_push(GAsyncQueue *queue, gpointer data)
{
    REAL(g_async_queue_push);
    __tsan_release(queue);
    fn_g_async_queue_push(queue, data);
}

void g_async_queue_push_front(GAsyncQueue *queue, gpointer item)
{
    REAL(g_async_queue_push_front);
    __tsan_release(queue);
    fn_g_async_queue_push_front(queue, item);
}

gpointer g_async_queue_pop(GAsyncQueue *queue)
{
    REAL(g_async_queue_pop);
    gpointer data = fn_g_async_queue_pop(queue);
    __tsan_acquire(queue);
    return data;
}

gpointer g_async_queue_try_pop(GAsyncQueue *queue)
{
    REAL(g_async_queue_try_pop);
    gpointer data = fn_g_async_queue_try_pop(queue);
    __tsan_acquire(queue);
    return data;
}

gpointer g_async_queue_timeout_pop(GAsyncQueue *queue, guint64 timeout)
{
    REAL(g_async_queue_timeout_pop);
    gpointer data = fn_g_async_queue_timeout_pop(queue, timeout);
    __tsan_acquire(queue);
    return data;
}

gint g_async_queue_length(GAsyncQueue *queue)
{
    REAL(g_async_queue_length);
    gint length = fn_g_async_queue_length(queue);
    __tsan_acquire(queue);
    return length;
}

/* The last unref frees the items left with the queue's destroy notify. */
void g_async_queue_unref(GAsyncQueue *queue)
{
    REAL(g_async_queue_unref);
    __tsan_release(queue);
    __tsan_acquire(queue);
    fn_g_async_queue_unref(queue);
}

/* ---- GThreadPool ------------------------------------------------------------ */

/* The pool's function runs through run_pool_job, which acquires what
 * g_thread_pool_push released on the job's data, and releases on the pool's
 * record when the job is done, for g_thread_pool_free(..., wait = TRUE). */
struct pool_record {
    GThreadPool *pool;
    GFunc func;
    gpointer user_data;
    struct pool_record *next;
};

static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pool_record *pools;

static void run_pool_job(gpointer data, gpointer user_data)
{
    struct pool_record *record = user_data;
    __tsan_acquire(data);
    record->func(data, record->user_data);
    __tsan_release(record);
}

static GThreadPool *pool_new(GFunc func, gpointer user_data, GDestroyNotify item_free_func,
                             gint max_threads, gboolean exclusive, GError **error)
{
    REAL(g_thread_pool_new_full);
    struct pool_record *record = calloc(1, sizeof *record);
    if (!record)
        abort();
    record->func = func;
    record->user_data = user_data;
    GThreadPool *pool = fn_g_thread_pool_new_full(run_pool_job, record, item_free_func, max_threads,
                                                  exclusive, error);
    if (!pool) {
        free(record);
        return NULL;
    }
    record->pool = pool;
    pthread_mutex_lock(&pools_lock);
    record->next = pools;
    pools = record;
    pthread_mutex_unlock(&pools_lock);
    return pool;
}

GThreadPool *g_thread_pool_new(GFunc func, gpointer user_data, gint max_threads, gboolean exclusive,
                               GError **error)
{
    return pool_new(func, user_data, NULL, max_threads, exclusive, error);
}

GThreadPool *g_thread_pool_new_full(GFunc func, gpointer user_data, GDestroyNotify item_free_func,
                                    gint max_threads, gboolean exclusive, GError **error)
{
    return pool_new(func, user_data, item_free_func, max_threads, exclusive, error);
}

gboolean g_thread_pool_push(GThreadPool *pool, gpointer data, GError **error)
{
    REAL(g_thread_pool_push);
    __tsan_release(data);
    return fn_g_thread_pool_push(pool, data, error);
}

void g_thread_pool_free(GThreadPool *pool, gboolean immediate, gboolean wait_)
{
    REAL(g_thread_pool_free);
    struct pool_record *record = NULL;
    pthread_mutex_lock(&pools_lock);
    for (struct pool_record **link = &pools; *link; link = &(*link)->next) {
        if ((*link)->pool == pool) {
            record = *link;
            *link = record->next;
            break;
        }
    }
    pthread_mutex_unlock(&pools_lock);
    fn_g_thread_pool_free(pool, immediate, wait_);
    if (record) {
        /* Every job that ran happened before a waiting free returns. */
        if (wait_)
            __tsan_acquire(record);
        /* Without wait a job may still be running: the record stays. */
        if (wait_)
            free(record);
    }
}
