/*
 * cpu_dense.c - the CPU backend's dense products and factorizations: the
 * NMF updates' small GEMM and Gram matrices in its own loops, Lanczos's tall
 * products cut into one-thread GEMMs, and QR (Cholesky QR twice, or
 * Householder), LU and the small SVD through LAPACKE; the code, in
 * cpu_dense_t.h, is compiled here once per element type.
 */
#include "core/numerics/cpu/cpu_internal.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>

#include "core/alloc.h"

#define TALL_GEMM_ROWS 2048 /* rows of a chunk, at least */
#define TALL_GEMM_CHUNKS 8

/* The cut of d rows into chunks (bounds, n_chunks + 1 entries), fixed by d
 * alone; 0 when d is too short to cut, or when OpenBLAS runs threads of its
 * own (a server with fewer workers than cores): then it spreads the one
 * call itself, and it must not be driven from several threads at once
 * (OpenBLAS's FAQ). */
static int tall_chunks(int64_t d, int64_t *bounds)
{
    if (d < 2 * TALL_GEMM_ROWS || openblas_get_num_threads() > 1)
        return 0;
    int nc = (int)(d / TALL_GEMM_ROWS < TALL_GEMM_CHUNKS ? d / TALL_GEMM_ROWS : TALL_GEMM_CHUNKS);
    for (int q = 0; q <= nc; q++)
        bounds[q] = d * q / nc;
    return nc;
}

#define CPU_TEMPLATE "core/numerics/cpu/cpu_dense_t.h"
#include "core/numerics/cpu/cpu_both.h"

tm_status tm__cpu_gemm(void *ctx, int transa, int transb, double alpha, const struct tm_bmat *a,
                       const struct tm_bmat *b, double beta, const struct tm_bmat *c, char *err)
{
    return (cpu_f32(ctx) ? f32_gemm : f64_gemm)(ctx, transa, transb, alpha, a, b, beta, c, err);
}

tm_status tm__cpu_gram(void *ctx, const struct tm_bmat *a, const struct tm_bmat *c, char *err)
{
    return (cpu_f32(ctx) ? f32_gram : f64_gram)(ctx, a, c, err);
}

tm_status tm__cpu_orth_qr(void *ctx, const struct tm_bmat *a, char *err)
{
    return (cpu_f32(ctx) ? f32_orth_qr : f64_orth_qr)(ctx, a, err);
}

tm_status tm__cpu_orth_lu(void *ctx, const struct tm_bmat *a, char *err)
{
    return (cpu_f32(ctx) ? f32_orth_lu : f64_orth_lu)(ctx, a, err);
}

tm_status tm__cpu_svd_small(void *ctx, const struct tm_bmat *a, const struct tm_bmat *u, double *s,
                            const struct tm_bmat *vt, char *err)
{
    return (cpu_f32(ctx) ? f32_svd_small : f64_svd_small)(ctx, a, u, s, vt, err);
}
