/* Wall-clock times as the API writes them: RFC 3339, UTC. */
#pragma once

#include <glib.h>

char *clock_now_rfc3339(void);
