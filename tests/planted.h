/*
 * planted.h - the sparse test matrices with a planted decaying spectrum that
 * the SVD and float32 tests share.
 * Thread-safety: none needed (pure functions of their arguments).
 */
#ifndef TM_TESTS_PLANTED_H
#define TM_TESTS_PLANTED_H

#include <math.h>
#include <stdlib.h>

#include "core/csr.h"
#include "core/numerics/rng.h"

/* A sparse m x n matrix with a decaying spectrum: a planted rank-12 part
 * (singular values about 10 * 0.7^i) sampled on a random pattern of about
 * density * m * n entries; with nonneg, of |a| and |b| (non-negative, still
 * decaying: a matrix NMF can fit). x: initialised here, tm_csr_release. */
static inline void tm_test_planted(struct tm_csr *x, int64_t m, int64_t n, double density,
                                   int nonneg, uint64_t seed)
{
    struct tm_rng g;
    tm_rng_init(&g, seed);
    int64_t r = 12, nnz = 0;
    double *a = malloc((size_t)(m * r) * sizeof(double));
    double *b = malloc((size_t)(n * r) * sizeof(double));
    for (int64_t i = 0; i < m * r; i++)
        a[i] = nonneg ? fabs(tm_rng_normal(&g)) : tm_rng_normal(&g);
    for (int64_t i = 0; i < n * r; i++)
        b[i] = nonneg ? fabs(tm_rng_normal(&g)) : tm_rng_normal(&g);
    tm_csr_init(x, m, n, m * n, NULL);
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            if (tm_rng_uniform(&g) >= density)
                continue;
            double v = 0, w = 1;
            for (int64_t p = 0; p < r; p++, w *= 0.7)
                v += w * a[i + p * m] * b[j + p * n];
            x->indices[nnz] = (int32_t)j;
            x->data[nnz++] = v;
        }
        x->indptr[i + 1] = nnz;
    }
    free(a);
    free(b);
}

#endif
