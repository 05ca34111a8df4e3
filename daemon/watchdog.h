/* systemd's watchdog (WatchdogSec=, sd_watchdog_enabled): "WATCHDOG=1" every
 * half period, sent only while the main loop runs its sources, the operation
 * worker pool is not wedged and the store answers, so that a hung turtled is
 * killed and restarted by the service manager.
 *
 * A pinger thread sends the pings and never blocks; each half period it asks
 * the main loop (an idle source on the default main context) and a prober
 * thread (a store read, then the pool's lock and counters) to answer, and
 * pings only when both answered the previous question and the pool is not
 * wedged.  When it withholds a ping it logs once what did not answer, and
 * again when everything answers again. */
#pragma once

#include <glib.h>

#include "daemon/operations.h"
#include "daemon/store.h"

typedef struct Watchdog Watchdog;

/* The period the service manager asks of this process (WATCHDOG_USEC, when
 * WATCHDOG_PID is unset or ours), 0 for none.  Clears both from the
 * environment: call before any thread starts. */
guint64 watchdog_period_from_env(void);

/* Starts watching and pinging; NULL (nothing runs) when @period_usec is 0.
 * The main loop watched is the default GMainContext's. */
Watchdog *watchdog_start(guint64 period_usec, Store *store, Operations *operations);
/* Stops the threads (waits for a prober stuck in the store or the pool). */
void watchdog_free(Watchdog *watchdog);

/* The rule for the worker pool.  Busy is not wedged: workers may run long
 * operations (migrations) for hours while jobs queue behind them.  The pool
 * is wedged when jobs are queued, a worker is free to take one, and no job
 * has been taken for @period_usec: a pool that works takes a queued job
 * within moments of a worker coming free.  (A pool lock that is never free
 * is caught before this: the prober blocks on it.)  @stalled_since keeps the
 * time the pool stopped moving (0 while it moves), @last_taken its count. */
typedef struct {
    gint64 stalled_since;
    guint last_taken;
} WatchdogPoolTrack;

gboolean watchdog_pool_wedged(WatchdogPoolTrack *track, const OperationsHealth *health, gint64 now,
                              gint64 period_usec);
