/* test_rng.c - the generator reproduces numpy's legacy RandomState. */
#include "core/numerics/rng.h"
#include "harness.h"

TM_TEST(rng_matches_numpy_randomstate)
{
    struct tm_rng r;
    /* np.random.RandomState(1).standard_normal(5) */
    static const double want[] = {1.62434536, -0.61175641, -0.52817175, -1.07296862, 0.86540763};
    tm_rng_init(&r, 1);
    for (int i = 0; i < 5; i++)
        CHECK_NEAR(tm_rng_normal(&r), want[i], 1e-8);
    /* np.random.RandomState(42).random_sample(2) */
    tm_rng_init(&r, 42);
    CHECK_NEAR(tm_rng_uniform(&r), 0.37454012, 1e-8);
    CHECK_NEAR(tm_rng_uniform(&r), 0.95071431, 1e-8);
}

TM_TEST(rng_is_deterministic_and_bounded)
{
    struct tm_rng a, b;
    tm_rng_init(&a, 0x123456789abcull);
    tm_rng_init(&b, 0x123456789abcull);
    int same = 1;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = tm_rng_below(&a, 7), y = tm_rng_below(&b, 7);
        same &= x == y && x < 7;
    }
    CHECK(same);
    double sum = 0, sq = 0;
    for (int i = 0; i < 20000; i++) {
        double z = tm_rng_normal(&a);
        sum += z;
        sq += z * z;
    }
    CHECK(fabs(sum / 20000) < 0.05);
    CHECK(fabs(sq / 20000 - 1.0) < 0.05);
}
