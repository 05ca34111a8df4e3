#include "daemon/watchdog.h"

#include <systemd/sd-daemon.h>

/* What did not answer; a new set is logged once. */
enum {
    SILENT_MAIN_LOOP = 1 << 0,
    SILENT_STORE = 1 << 1,
    SILENT_POOL_LOCK = 1 << 2,
    WEDGED_POOL = 1 << 3,
};

typedef enum { PROBE_IDLE, PROBE_STORE, PROBE_POOL } ProbeStep;

struct Watchdog {
    gint64 period; /* µs */
    Store *store;
    Operations *operations;
    GThread *pinger;
    GThread *prober;
    GMutex lock;
    GCond cond; /* a question for the prober, its answer, or stop */
    gboolean stop;

    /* The pinger's own. */
    GSource *main_question; /* the idle source the main loop answers */
    gint64 main_asked;
    gint64 probe_asked;
    guint silent; /* what was missing at the last withheld ping; 0 after a ping */

    gint main_answered; /* atomic */

    /* Under lock: the prober answers question number @asked by setting
     * @answered to it; @step says where it is meanwhile. */
    guint asked;
    guint answered;
    ProbeStep step;
    gboolean pool_wedged;
    OperationsHealth health;
    gint64 stalled_since;
    WatchdogPoolTrack track; /* the prober's own */
};

guint64 watchdog_period_from_env(void)
{
    uint64_t usec = 0;
    return sd_watchdog_enabled(1, &usec) > 0 ? usec : 0;
}

gboolean watchdog_pool_wedged(WatchdogPoolTrack *track, const OperationsHealth *health, gint64 now,
                              gint64 period_usec)
{
    gboolean stuck = health->queued > 0 && health->running < health->workers &&
                     health->taken == track->last_taken;

    track->last_taken = health->taken;
    if (!stuck) {
        track->stalled_since = 0;
        return FALSE;
    }
    if (track->stalled_since == 0)
        track->stalled_since = now;
    return now - track->stalled_since >= period_usec;
}

/* ---- the prober ------------------------------------------------------------ */

static gpointer prober_run(gpointer data)
{
    Watchdog *watchdog = data;

    g_mutex_lock(&watchdog->lock);
    for (;;) {
        while (!watchdog->stop && watchdog->answered == watchdog->asked)
            g_cond_wait(&watchdog->cond, &watchdog->lock);
        if (watchdog->stop)
            break;
        guint question = watchdog->asked;
        watchdog->step = PROBE_STORE;
        g_mutex_unlock(&watchdog->lock);

        /* Any answer will do, an error too: what kills turtled is a store
         * that never returns (its lock held forever). */
        store_schema_version(watchdog->store);
        g_mutex_lock(&watchdog->lock);
        watchdog->step = PROBE_POOL;
        g_mutex_unlock(&watchdog->lock);

        OperationsHealth health;
        operations_health(watchdog->operations, &health);
        gboolean wedged = watchdog_pool_wedged(&watchdog->track, &health, g_get_monotonic_time(),
                                               watchdog->period);
        g_mutex_lock(&watchdog->lock);
        watchdog->step = PROBE_IDLE;
        watchdog->pool_wedged = wedged;
        watchdog->health = health;
        watchdog->stalled_since = watchdog->track.stalled_since;
        watchdog->answered = question;
        g_cond_broadcast(&watchdog->cond);
    }
    g_mutex_unlock(&watchdog->lock);
    return NULL;
}

/* ---- the pinger ------------------------------------------------------------ */

static gboolean main_loop_answers(gpointer data)
{
    Watchdog *watchdog = data;
    g_atomic_int_set(&watchdog->main_answered, TRUE);
    return G_SOURCE_REMOVE;
}

/* An idle source at default priority: it runs only when the main loop
 * dispatches sources, and is not starved by the loop's ordinary work. */
static void ask_main_loop(Watchdog *watchdog)
{
    g_atomic_int_set(&watchdog->main_answered, FALSE);
    if (watchdog->main_question != NULL)
        g_source_unref(watchdog->main_question);
    watchdog->main_question = g_idle_source_new();
    g_source_set_priority(watchdog->main_question, G_PRIORITY_DEFAULT);
    g_source_set_callback(watchdog->main_question, main_loop_answers, watchdog, NULL);
    g_source_set_static_name(watchdog->main_question, "watchdog");
    g_source_attach(watchdog->main_question, NULL);
    watchdog->main_asked = g_get_monotonic_time();
}

static double seconds_since(gint64 then)
{
    return (double)(g_get_monotonic_time() - then) / G_USEC_PER_SEC;
}

/* One half period: collects the answers, asks again whoever answered, and
 * pings when everything answered. */
static void pinger_tick(Watchdog *watchdog)
{
    g_autoptr(GString) why = g_string_new(NULL);
    guint silent = 0;

    if (!g_atomic_int_get(&watchdog->main_answered)) {
        silent |= SILENT_MAIN_LOOP;
        g_string_append_printf(why, "; the main loop has not run its sources for %.0f s",
                               seconds_since(watchdog->main_asked));
    } else {
        ask_main_loop(watchdog);
    }

    g_mutex_lock(&watchdog->lock);
    if (watchdog->answered != watchdog->asked) {
        gboolean store = watchdog->step == PROBE_STORE;
        silent |= store ? SILENT_STORE : SILENT_POOL_LOCK;
        g_string_append_printf(why, "; %s for %.0f s",
                               store ? "the store has not answered"
                                     : "the operation worker pool's lock has not been free",
                               seconds_since(watchdog->probe_asked));
    } else {
        if (watchdog->pool_wedged) {
            const OperationsHealth *health = &watchdog->health;
            silent |= WEDGED_POOL;
            g_string_append_printf(why,
                                   "; the operation worker pool has %u queued job(s) and %u of "
                                   "%u workers free, but has taken no job for %.0f s",
                                   health->queued, health->workers - health->running,
                                   health->workers, seconds_since(watchdog->stalled_since));
        }
        watchdog->asked++;
        watchdog->probe_asked = g_get_monotonic_time();
        g_cond_broadcast(&watchdog->cond);
    }
    g_mutex_unlock(&watchdog->lock);

    if (silent == 0) {
        sd_notify(0, "WATCHDOG=1");
        if (watchdog->silent != 0)
            g_message("watchdog: everything answers again; pinging the service manager again");
    } else if (silent != watchdog->silent) {
        g_warning("watchdog: withholding WATCHDOG=1 (the service manager restarts turtled "
                  "after %.0f s without one)%s",
                  (double)watchdog->period / G_USEC_PER_SEC, why->str);
    }
    watchdog->silent = silent;
}

static gpointer pinger_run(gpointer data)
{
    Watchdog *watchdog = data;
    gint64 next = g_get_monotonic_time() + watchdog->period / 2;

    g_mutex_lock(&watchdog->lock);
    for (;;) {
        /* Woken by the prober's answers too: only the time or stop counts. */
        while (!watchdog->stop && g_get_monotonic_time() < next)
            g_cond_wait_until(&watchdog->cond, &watchdog->lock, next);
        if (watchdog->stop)
            break;
        g_mutex_unlock(&watchdog->lock);
        pinger_tick(watchdog);
        next += watchdog->period / 2;
        /* After a stall of our own (a stopped process), tick from now. */
        next = MAX(next, g_get_monotonic_time());
        g_mutex_lock(&watchdog->lock);
    }
    g_mutex_unlock(&watchdog->lock);
    return NULL;
}

Watchdog *watchdog_start(guint64 period_usec, Store *store, Operations *operations)
{
    if (period_usec == 0)
        return NULL;
    Watchdog *watchdog = g_new0(Watchdog, 1);
    watchdog->period = (gint64)MIN(period_usec, (guint64)G_MAXINT64);
    watchdog->store = store;
    watchdog->operations = operations;
    g_mutex_init(&watchdog->lock);
    g_cond_init(&watchdog->cond);

    ask_main_loop(watchdog);
    watchdog->asked = 1;
    watchdog->probe_asked = g_get_monotonic_time();
    watchdog->prober = g_thread_new("watchdog-probe", prober_run, watchdog);
    watchdog->pinger = g_thread_new("watchdog", pinger_run, watchdog);
    /* Alive and serving: the first interval starts now. */
    sd_notify(0, "WATCHDOG=1");
    g_message("watchdog: pinging the service manager every %.1f s while the main loop, the "
              "worker pool and the store answer",
              (double)watchdog->period / 2 / G_USEC_PER_SEC);
    return watchdog;
}

void watchdog_free(Watchdog *watchdog)
{
    if (watchdog == NULL)
        return;
    g_mutex_lock(&watchdog->lock);
    watchdog->stop = TRUE;
    g_cond_broadcast(&watchdog->cond);
    g_mutex_unlock(&watchdog->lock);
    g_thread_join(watchdog->pinger);
    g_thread_join(watchdog->prober);
    if (watchdog->main_question != NULL) {
        g_source_destroy(watchdog->main_question);
        g_source_unref(watchdog->main_question);
    }
    g_cond_clear(&watchdog->cond);
    g_mutex_clear(&watchdog->lock);
    g_free(watchdog);
}
