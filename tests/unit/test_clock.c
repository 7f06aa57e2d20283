/* test_clock.c - the wall clock and the monotonic clock. */
#include <time.h>

#include "core/clock.h"
#include "harness.h"

TM_TEST(clock_unix_is_the_wall_clock)
{
    double before = (double)time(NULL);
    double now = tm_clock_unix();
    double after = (double)time(NULL);
    CHECK(now >= before && now < after + 1.0);
    CHECK(now > 1.7e9); /* after 2023: seconds, not milliseconds or a monotonic origin */
}

TM_TEST(clock_monotonic_measures_durations)
{
    double t0 = tm_clock_monotonic();
    struct timespec nap = {0, 20 * 1000 * 1000};
    nanosleep(&nap, NULL);
    double t1 = tm_clock_monotonic();
    CHECK(t1 - t0 >= 0.019);
    CHECK(t1 - t0 < 5.0);
    double prev = t1;
    for (int i = 0; i < 10000; i++) {
        double next = tm_clock_monotonic();
        CHECK(next >= prev);
        if (next < prev)
            break;
        prev = next;
    }
}
