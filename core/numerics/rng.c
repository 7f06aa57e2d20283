/* rng.c - MT19937 with numpy's legacy RandomState semantics (see rng.h). */
#include "core/numerics/rng.h"

#include <math.h>

static void seed_genrand(struct tm_rng *rng, uint32_t s)
{
    rng->mt[0] = s;
    for (int i = 1; i < TM_RNG_N; i++)
        rng->mt[i] = 1812433253u * (rng->mt[i - 1] ^ (rng->mt[i - 1] >> 30)) + (uint32_t)i;
    rng->pos = TM_RNG_N;
    rng->has_gauss = 0;
    rng->gauss = 0.0;
}

/* Matsumoto and Nishimura's init_by_array. */
static void seed_by_array(struct tm_rng *rng, const uint32_t *key, int len)
{
    seed_genrand(rng, 19650218u);
    int i = 1, j = 0;
    for (int k = TM_RNG_N > len ? TM_RNG_N : len; k; k--) {
        rng->mt[i] = (rng->mt[i] ^ ((rng->mt[i - 1] ^ (rng->mt[i - 1] >> 30)) * 1664525u)) +
                     key[j] + (uint32_t)j;
        i++;
        j++;
        if (i >= TM_RNG_N) {
            rng->mt[0] = rng->mt[TM_RNG_N - 1];
            i = 1;
        }
        if (j >= len)
            j = 0;
    }
    for (int k = TM_RNG_N - 1; k; k--) {
        rng->mt[i] =
            (rng->mt[i] ^ ((rng->mt[i - 1] ^ (rng->mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        i++;
        if (i >= TM_RNG_N) {
            rng->mt[0] = rng->mt[TM_RNG_N - 1];
            i = 1;
        }
    }
    rng->mt[0] = 0x80000000u;
}

void tm_rng_init(struct tm_rng *rng, uint64_t seed)
{
    if (seed <= UINT32_MAX) {
        seed_genrand(rng, (uint32_t)seed);
    } else {
        uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
        seed_by_array(rng, key, 2);
    }
}

static void regenerate(struct tm_rng *rng)
{
    static const uint32_t mag01[2] = {0u, 0x9908b0dfu};
    int i;
    uint32_t y;
    for (i = 0; i < TM_RNG_N - 397; i++) {
        y = (rng->mt[i] & 0x80000000u) | (rng->mt[i + 1] & 0x7fffffffu);
        rng->mt[i] = rng->mt[i + 397] ^ (y >> 1) ^ mag01[y & 1u];
    }
    for (; i < TM_RNG_N - 1; i++) {
        y = (rng->mt[i] & 0x80000000u) | (rng->mt[i + 1] & 0x7fffffffu);
        rng->mt[i] = rng->mt[i + (397 - TM_RNG_N)] ^ (y >> 1) ^ mag01[y & 1u];
    }
    y = (rng->mt[TM_RNG_N - 1] & 0x80000000u) | (rng->mt[0] & 0x7fffffffu);
    rng->mt[TM_RNG_N - 1] = rng->mt[396] ^ (y >> 1) ^ mag01[y & 1u];
    rng->pos = 0;
}

uint32_t tm_rng_u32(struct tm_rng *rng)
{
    if (rng->pos >= TM_RNG_N)
        regenerate(rng);
    uint32_t y = rng->mt[rng->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

double tm_rng_uniform(struct tm_rng *rng)
{
    uint32_t a = tm_rng_u32(rng) >> 5, b = tm_rng_u32(rng) >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
}

double tm_rng_normal(struct tm_rng *rng)
{
    if (rng->has_gauss) {
        rng->has_gauss = 0;
        return rng->gauss;
    }
    double x1, x2, r2;
    do {
        x1 = 2.0 * tm_rng_uniform(rng) - 1.0;
        x2 = 2.0 * tm_rng_uniform(rng) - 1.0;
        r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    double f = sqrt(-2.0 * log(r2) / r2);
    rng->gauss = f * x1;
    rng->has_gauss = 1;
    return f * x2;
}

uint64_t tm_rng_below(struct tm_rng *rng, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    for (;;) {
        uint64_t v = ((uint64_t)tm_rng_u32(rng) << 32) | tm_rng_u32(rng);
        if (v < limit)
            return v % n;
    }
}
