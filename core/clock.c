/* clock.c - wall-clock and monotonic seconds (see clock.h). */
#include "core/clock.h"

#include <time.h>

static double seconds_on(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double tm_clock_unix(void)
{
    return seconds_on(CLOCK_REALTIME);
}

double tm_clock_monotonic(void)
{
    return seconds_on(CLOCK_MONOTONIC);
}
