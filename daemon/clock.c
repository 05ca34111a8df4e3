#include "daemon/clock.h"

char *clock_now_rfc3339(void)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    /* Microseconds: enough to order events. */
    return g_date_time_format(now, "%Y-%m-%dT%H:%M:%S.%fZ");
}
