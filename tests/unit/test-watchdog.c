/* daemon/watchdog.c: the worker pool rule (busy is not wedged), sample by
 * sample as the prober sees the pool each half period. */
#include "daemon/watchdog.h"

#define PERIOD ((gint64)30 * G_USEC_PER_SEC)
#define HALF   (PERIOD / 2)
#define T0     ((gint64)1000 * G_USEC_PER_SEC)

static OperationsHealth health(guint queued, guint running, guint workers, guint taken)
{
    return (OperationsHealth){
        .queued = queued, .running = running, .workers = workers, .taken = taken};
}

/* Samples @h every half period from T0 for @samples; TRUE as soon as one says wedged. */
static gboolean wedged_within(WatchdogPoolTrack *track, OperationsHealth h, int samples)
{
    for (int i = 0; i < samples; i++)
        if (watchdog_pool_wedged(track, &h, T0 + i * HALF, PERIOD))
            return TRUE;
    return FALSE;
}

static void test_busy_is_not_wedged(void)
{
    WatchdogPoolTrack track = {0};
    /* Every worker runs a long job (a migration) and jobs queue behind
     * them for an hour: nothing moves, and that is fine. */
    g_assert_false(wedged_within(&track, health(5, 4, 4, 7), 240));
    /* Idle and empty. */
    g_assert_false(wedged_within(&track, health(0, 0, 4, 7), 240));
    /* A worker is free and nothing is queued while others run. */
    g_assert_false(wedged_within(&track, health(0, 3, 4, 7), 240));
}

static void test_queue_stuck_with_free_workers(void)
{
    WatchdogPoolTrack track = {0};
    OperationsHealth h = health(2, 1, 4, 9);

    /* The first sample only learns the count. */
    g_assert_false(watchdog_pool_wedged(&track, &h, T0 - HALF, PERIOD));
    /* Stuck from the next: not yet at it, nor a half period on... */
    g_assert_false(watchdog_pool_wedged(&track, &h, T0, PERIOD));
    g_assert_false(watchdog_pool_wedged(&track, &h, T0 + HALF, PERIOD));
    /* ...but once the queue has not moved for a whole period. */
    g_assert_true(watchdog_pool_wedged(&track, &h, T0 + PERIOD, PERIOD));
    g_assert_cmpint(track.stalled_since, ==, T0);
}

static void test_progress_resets(void)
{
    WatchdogPoolTrack track = {.last_taken = 9};
    OperationsHealth h = health(2, 0, 4, 9);

    g_assert_false(watchdog_pool_wedged(&track, &h, T0, PERIOD));
    g_assert_false(watchdog_pool_wedged(&track, &h, T0 + HALF, PERIOD));
    /* A job was taken: the clock starts again from here. */
    h.taken++;
    g_assert_false(watchdog_pool_wedged(&track, &h, T0 + PERIOD, PERIOD));
    g_assert_cmpint(track.stalled_since, ==, 0);
    g_assert_false(watchdog_pool_wedged(&track, &h, T0 + PERIOD + HALF, PERIOD));
    g_assert_false(watchdog_pool_wedged(&track, &h, T0 + 2 * PERIOD, PERIOD));
    g_assert_true(watchdog_pool_wedged(&track, &h, T0 + 2 * PERIOD + HALF, PERIOD));
    /* The queue emptied: not wedged any more. */
    h.queued = 0;
    g_assert_false(watchdog_pool_wedged(&track, &h, T0 + 3 * PERIOD, PERIOD));
    g_assert_cmpint(track.stalled_since, ==, 0);
}

static void test_counter_wraps(void)
{
    WatchdogPoolTrack track = {.last_taken = G_MAXUINT};
    OperationsHealth h = health(1, 0, 1, 0); /* taken wrapped from G_MAXUINT to 0: it moved */

    g_assert_false(watchdog_pool_wedged(&track, &h, T0, PERIOD));
    g_assert_cmpint(track.stalled_since, ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/watchdog/busy-is-not-wedged", test_busy_is_not_wedged);
    g_test_add_func("/watchdog/queue-stuck-with-free-workers", test_queue_stuck_with_free_workers);
    g_test_add_func("/watchdog/progress-resets", test_progress_resets);
    g_test_add_func("/watchdog/counter-wraps", test_counter_wraps);
    return g_test_run();
}
