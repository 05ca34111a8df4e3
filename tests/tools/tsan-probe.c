/* tsan-probe MODE: one small threaded scenario, for tests/integration/tsan.t.
 *
 * In a TSAN=1 build, "race" and "free-race" must draw a data race report, "inversion" a
 * lock-order-inversion report (the shim's lock annotations at work); every
 * other mode hands data between threads through one GLib primitive and must
 * draw none (without tests/tsan/glib-annotations.c each of them does).
 * `tsan-probe --is-tsan` says whether this binary was built with TSan. */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#define ROUNDS 1000

struct shared {
    GMutex lock;
    GRecMutex rec_lock;
    GRWLock rw_lock;
    GCond cond;
    gboolean ready;
    long counter;  /* what the threads race on, or not */
    char text[64]; /* written outside any lock, before a hand-over */
};

static gpointer bump_unlocked(gpointer data)
{
    struct shared *shared = data;
    for (int i = 0; i < ROUNDS; i++)
        shared->counter++;
    return NULL;
}

static gpointer bump_gmutex(gpointer data)
{
    struct shared *shared = data;
    for (int i = 0; i < ROUNDS; i++) {
        if (i % 2) {
            g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&shared->lock);
            shared->counter++;
        } else {
            while (!g_mutex_trylock(&shared->lock))
                g_thread_yield();
            shared->counter++;
            g_mutex_unlock(&shared->lock);
        }
    }
    return NULL;
}

static gpointer bump_rec_mutex(gpointer data)
{
    struct shared *shared = data;
    for (int i = 0; i < ROUNDS; i++) {
        g_rec_mutex_lock(&shared->rec_lock);
        g_rec_mutex_lock(&shared->rec_lock);
        shared->counter++;
        g_rec_mutex_unlock(&shared->rec_lock);
        g_rec_mutex_unlock(&shared->rec_lock);
    }
    return NULL;
}

static gpointer bump_rw_lock(gpointer data)
{
    struct shared *shared = data;
    for (int i = 0; i < ROUNDS; i++) {
        g_rw_lock_writer_lock(&shared->rw_lock);
        shared->counter++;
        g_rw_lock_writer_unlock(&shared->rw_lock);
        g_rw_lock_reader_lock(&shared->rw_lock);
        long seen = shared->counter;
        g_rw_lock_reader_unlock(&shared->rw_lock);
        (void)seen;
    }
    return NULL;
}

static int two_threads(GThreadFunc func, struct shared *shared)
{
    GThread *a = g_thread_new("probe-a", func, shared);
    GThread *b = g_thread_new("probe-b", func, shared);
    g_thread_join(a);
    g_thread_join(b);
    return 0;
}

/* A g_free racing with a write: still seen with ignore_noninstrumented_modules. */
static gpointer write_buffer(gpointer data)
{
    char *buffer = data;
    buffer[0] = 'x';
    return NULL;
}

static gpointer free_buffer(gpointer data)
{
    g_usleep(20000);
    g_free(data);
    return NULL;
}

static int free_race_mode(void)
{
    char *buffer = g_malloc0(16);
    GThread *a = g_thread_new("writer", write_buffer, buffer);
    GThread *b = g_thread_new("freer", free_buffer, buffer);
    g_thread_join(a);
    g_thread_join(b);
    return 0;
}

/* GCond: the payload is written before the flag, outside the lock. */
static gpointer produce(gpointer data)
{
    struct shared *shared = data;
    g_usleep(10000); /* let the consumer wait first */
    g_strlcpy(shared->text, "hello", sizeof shared->text);
    g_mutex_lock(&shared->lock);
    shared->ready = TRUE;
    g_cond_broadcast(&shared->cond);
    g_mutex_unlock(&shared->lock);
    return NULL;
}

static int cond_mode(struct shared *shared, gboolean until)
{
    GThread *producer = g_thread_new("producer", produce, shared);
    g_mutex_lock(&shared->lock);
    while (!shared->ready) {
        if (until)
            g_cond_wait_until(&shared->cond, &shared->lock, g_get_monotonic_time() + 1000);
        else
            g_cond_wait(&shared->cond, &shared->lock);
    }
    g_mutex_unlock(&shared->lock);
    /* Read before the join, which would order it anyway. */
    int rc = strcmp(shared->text, "hello") != 0;
    g_thread_join(producer);
    return rc;
}

/* GAsyncQueue: items built by one thread, read and freed by another. */
static gpointer queue_producer(gpointer data)
{
    GAsyncQueue *queue = data;
    for (int i = 0; i < 100; i++) {
        long *item = g_new(long, 1);
        *item = i;
        g_async_queue_push(queue, item);
    }
    return NULL;
}

static int queue_mode(void)
{
    GAsyncQueue *queue = g_async_queue_new_full(g_free);
    GThread *producer = g_thread_new("queue-producer", queue_producer, queue);
    long sum = 0;
    for (int i = 0; i < 50; i++) {
        long *item = g_async_queue_timeout_pop(queue, 5 * G_USEC_PER_SEC);
        if (item == NULL)
            return 1;
        sum += *item;
        g_free(item);
    }
    /* The rest is freed by the last unref, here, before the join. */
    g_async_queue_unref(queue);
    g_thread_join(producer);
    return sum != 49 * 50 / 2;
}

/* GThreadPool: jobs built by the pusher, changed by workers, read after free(wait). */
static void pool_job(gpointer data, gpointer user_data)
{
    long *job = data;
    (void)user_data;
    *job *= 2;
}

static int pool_mode(void)
{
    enum { JOBS = 64 };
    long *jobs[JOBS];
    GThreadPool *pool = g_thread_pool_new(pool_job, NULL, 3, FALSE, NULL);
    for (int i = 0; i < JOBS; i++) {
        jobs[i] = g_new(long, 1);
        *jobs[i] = i;
        g_thread_pool_push(pool, jobs[i], NULL);
    }
    g_thread_pool_free(pool, FALSE, TRUE);
    long sum = 0;
    for (int i = 0; i < JOBS; i++) {
        sum += *jobs[i];
        g_free(jobs[i]);
    }
    return sum != 2 * (JOBS - 1) * JOBS / 2;
}

/* GOnce and g_once_init_enter/leave: the initialized data read by every thread. */
static char once_text[16];
static gsize once_init_value;

static gpointer init_text(gpointer data)
{
    (void)data;
    g_strlcpy(once_text, "ready", sizeof once_text);
    return once_text;
}

static gpointer use_once(gpointer data)
{
    static GOnce once = G_ONCE_INIT;
    int *bad = data;
    const char *text = g_once(&once, init_text, NULL);
    if (strcmp(text, "ready") != 0)
        *bad = 1;
    static char *init_text_2;
    if (g_once_init_enter(&once_init_value)) {
        init_text_2 = g_strdup("set");
        g_once_init_leave(&once_init_value, 1);
    }
    if (strcmp(init_text_2, "set") != 0)
        *bad = 1;
    return NULL;
}

static int once_mode(void)
{
    int bad_a = 0, bad_b = 0;
    GThread *a = g_thread_new("once-a", use_once, &bad_a);
    GThread *b = g_thread_new("once-b", use_once, &bad_b);
    g_thread_join(a);
    g_thread_join(b);
    return bad_a || bad_b;
}

/* Two GMutexes taken in both orders, by one thread: never a deadlock here,
 * but TSan reports the inversion only if it sees the locks. */
static int inversion_mode(void)
{
    GMutex a, b;
    g_mutex_init(&a);
    g_mutex_init(&b);
    g_mutex_lock(&a);
    g_mutex_lock(&b);
    g_mutex_unlock(&b);
    g_mutex_unlock(&a);
    g_mutex_lock(&b);
    g_mutex_lock(&a);
    g_mutex_unlock(&a);
    g_mutex_unlock(&b);
    g_mutex_clear(&a);
    g_mutex_clear(&b);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr,
                "usage: tsan-probe --is-tsan | race | free-race | gmutex | rec-mutex | rw-lock | "
                "cond | cond-until | queue | pool | once | inversion\n");
        return 2;
    }
    const char *mode = argv[1];
    struct shared shared;
    memset(&shared, 0, sizeof shared);
    g_mutex_init(&shared.lock);
    g_rec_mutex_init(&shared.rec_lock);
    g_rw_lock_init(&shared.rw_lock);
    g_cond_init(&shared.cond);
    int rc = 2;

    if (strcmp(mode, "--is-tsan") == 0) {
#if defined(__SANITIZE_THREAD__)
        puts("yes");
#else
        puts("no");
#endif
        rc = 0;
    } else if (strcmp(mode, "race") == 0)
        rc = two_threads(bump_unlocked, &shared);
    else if (strcmp(mode, "free-race") == 0)
        rc = free_race_mode();
    else if (strcmp(mode, "gmutex") == 0)
        rc = two_threads(bump_gmutex, &shared) || shared.counter != 2 * ROUNDS;
    else if (strcmp(mode, "rec-mutex") == 0)
        rc = two_threads(bump_rec_mutex, &shared) || shared.counter != 2 * ROUNDS;
    else if (strcmp(mode, "rw-lock") == 0)
        rc = two_threads(bump_rw_lock, &shared) || shared.counter != 2 * ROUNDS;
    else if (strcmp(mode, "cond") == 0)
        rc = cond_mode(&shared, FALSE);
    else if (strcmp(mode, "cond-until") == 0)
        rc = cond_mode(&shared, TRUE);
    else if (strcmp(mode, "queue") == 0)
        rc = queue_mode();
    else if (strcmp(mode, "pool") == 0)
        rc = pool_mode();
    else if (strcmp(mode, "once") == 0)
        rc = once_mode();
    else if (strcmp(mode, "inversion") == 0)
        rc = inversion_mode();
    else
        fprintf(stderr, "tsan-probe: unknown mode '%s'\n", mode);

    g_cond_clear(&shared.cond);
    g_rw_lock_clear(&shared.rw_lock);
    g_rec_mutex_clear(&shared.rec_lock);
    g_mutex_clear(&shared.lock);
    return rc;
}
