/*
 * rng.h - the seeded pseudo-random generator of the factorizations: MT19937
 * with numpy's legacy RandomState semantics (init_genrand seeding,
 * random_sample's 53-bit doubles, the polar Box-Muller gaussian with its
 * cached second value), so for the same seed our random matrices equal
 * scikit-learn's (np.random.RandomState(seed).normal(size=...)).
 * Thread-safety: one owner at a time; generators share nothing.
 */
#ifndef TM_CORE_NUMERICS_RNG_H
#define TM_CORE_NUMERICS_RNG_H

#include <stdint.h>

#define TM_RNG_N 624

struct tm_rng {
    uint32_t mt[TM_RNG_N];
    int pos;
    int has_gauss;
    double gauss;
};

/* Seeds as np.random.RandomState(seed) for seed < 2^32; larger seeds are
 * split into two 32-bit words and seeded with init_by_array (numpy refuses
 * them, so there is nothing to match). */
void tm_rng_init(struct tm_rng *rng, uint64_t seed);

uint32_t tm_rng_u32(struct tm_rng *rng);

/* Uniform in [0, 1), 53 bits: RandomState.random_sample(). */
double tm_rng_uniform(struct tm_rng *rng);

/* Standard normal: RandomState.standard_normal() (legacy gauss). */
double tm_rng_normal(struct tm_rng *rng);

/* Uniform integer in [0, n) by rejection (no modulo bias); n >= 1. Not
 * numpy-compatible (used only where scikit-learn's draws are not matched). */
uint64_t tm_rng_below(struct tm_rng *rng, uint64_t n);

#endif
