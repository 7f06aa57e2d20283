/*
 * cpu_internal.h - what the files of the CPU backend (core/numerics/cpu/)
 * share, and nothing else includes: the context, the sparse handle, the
 * parallel loop and its chunking (cpu_threads.c), the hot kernels' compile
 * and SIMD machinery, the always-inline helpers several files' kernels
 * inline (the row gather, the prefetch, the 4-wide dot), and the ops that
 * backend_cpu.c's table points at, each defined in the file of its kind:
 *   cpu_threads.c      the parallel-for, row chunks, row-major packing
 *   cpu_sparse.c       X^T at upload, X B, X^T B and the Gram product X X^T V
 *   cpu_dense.c        dense products (small and tall GEMM, Gram) and the
 *                      factorizations (QR, LU, small SVD)
 *   cpu_elementwise.c  fill, copy, scale, axpy, dot and column reductions
 *   cpu_nmf.c          the NMF updates: HALS, mu, pgd, the fused halves, KL
 * Each file's typed code is a template (cpu_<kind>_t.h; the helpers':
 * cpu_inline_t.h) that cpu_both.h compiles for float64 and float32, and the
 * ops dispatch on the context's element size (cpu_f32).
 * Helpers that run inside a kernel's inner loop are `static inline` here
 * (HOT_BODY: always inlined, into each kernel's AVX2 and baseline copies),
 * never calls across files.
 * Thread-safety: as backend.h (a context has one owner at a time).
 */
#ifndef TM_CORE_NUMERICS_CPU_CPU_INTERNAL_H
#define TM_CORE_NUMERICS_CPU_CPU_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "core/csr.h"
#include "core/numerics/backend.h"
#include "core/numerics/team.h"

/*
 * Rows are cut into at most this many chunks of about equal work, the same
 * for any thread count, and per-chunk partial sums are added in chunk order:
 * that is what makes the returned scalars independent of n_threads.
 */
#define MAX_CHUNKS 64
#define MAX_THREADS 64 /* a context's team, at most */

struct cpu_ctx {
    int n_threads; /* the team's size */
    struct tm_team *team;
    size_t es; /* element size: 8 (float64) or 4 (float32) */
};

/* Whether a context's matrices are float32. */
static inline int cpu_f32(const void *ctx)
{
    return ((const struct cpu_ctx *)ctx)->es == sizeof(float);
}

/* Where each team member's range of output rows starts in every row of a
 * CSR (gram_spmm's scatter phase): splits[r * (size - 1) + t - 1] for
 * members t = 1..size-1; made on first use, for one team size. */
struct row_splits {
    int size;
    int64_t *at;
};

/*
 * The kernels read the values of x and xt as the context's element type:
 * in a float64 context x is the caller's X and xt's values are double; in a
 * float32 context x points at x32, which shares X's indptr and indices, and
 * the data pointers of x32 and xt hold floats (owned here), read through
 * CSR_VALS only.
 */
struct tm_bsparse {
    const struct tm_csr *x; /* borrowed (float64), or &x32 */
    struct tm_csr xt;       /* owned */
    struct tm_csr x32;      /* float32: X's arrays, its own float values */
    struct row_splits split_x, split_xt;
    /* float64 context, gram_spmm_f32: float copies of X's and X^T's
     * values (owned), each made on first use */
    float *x_f32, *xt_f32;
};

/* A CSR's values as the element type of the code that reads them. */
#define CSR_VALS(x) ((const real_t *)(const void *)(x)->data)

/* Element (i, j) of a tm_bmat, as the element type of the code at hand. */
#define AT(m, i, j) (((real_t *)(m)->data)[(i) + (size_t)(j) * (m)->ld])

/*
 * The kernels (the sparse products first) are the CPU path's hot loops:
 * compiled at -O3 (the build's -O2 does not vectorize loops of unknown trip
 * count), and twice: for AVX2+FMA and for the baseline, picked per call by
 * cpuid (HOT_KERNEL(name) defines name_avx2, name_base and the dispatcher
 * name around an always-inline name_body).
 */
#if defined(__clang__) /* no optimize attribute; clang contracts a*b+c by default */
#define HOT_OPT(...)
#else
#define HOT_OPT(...) __attribute__((optimize(__VA_ARGS__)))
#endif
#define HOT_BODY static inline __attribute__((always_inline))
/* Through a second macro, so that a name made by R() is expanded before it
 * is pasted. */
#define HOT_KERNEL(name) HOT_KERNEL_(name)
#define HOT_KERNEL_(name)                                                                          \
    HOT_OPT("O3", "fp-contract=fast")                                                              \
    __attribute__((target("avx2,fma"))) static void name##_avx2(void *arg, int chunk, double *buf) \
    {                                                                                              \
        name##_body(arg, chunk, buf);                                                              \
    }                                                                                              \
    HOT_OPT("O3") static void name##_base(void *arg, int chunk, double *buf)                       \
    {                                                                                              \
        name##_body(arg, chunk, buf);                                                              \
    }                                                                                              \
    static void name(void *arg, int chunk, double *buf)                                            \
    {                                                                                              \
        if (have_avx2_fma())                                                                       \
            name##_avx2(arg, chunk, buf);                                                          \
        else                                                                                       \
            name##_base(arg, chunk, buf);                                                          \
    }

static inline int have_avx2_fma(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* 4 doubles (or floats) in a vector register (GCC/clang vector extension;
 * on the baseline target it becomes SSE2 pairs). Loads and stores go through
 * memcpy, so nothing needs more than element alignment. */
typedef double v4d __attribute__((vector_size(32)));
typedef int64_t v4i __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4fi __attribute__((vector_size(16)));

#define LOAD4(v, p) memcpy(&(v), (p), sizeof(v))
#define STORE4(p, v) memcpy((p), &(v), sizeof(v))

#if defined(__clang__)
#define SHUFFLE4(a, b, i, j, k, l) __builtin_shufflevector((a), (b), i, j, k, l)
#else
#define SHUFFLE4(a, b, i, j, k, l) __builtin_shuffle((a), (b), (vmask){i, j, k, l})
#endif

/* Prefetch distance, in non-zeros, of prefetch_row (cpu_inline_t.h). */
#define PF_DIST 12

/*
 * The kernels below take k as an argument of an always-inline body, and each
 * kernel's dispatcher calls that body with a literal k for every k up to
 * FIXED_K_MAX (the widths the Lanczos blocks, randomized SVD's k + 10 and
 * NMF's topics usually have): with k known, the k sums live in registers
 * and the loop over them unrolls (2-3x faster at k = 3; bench/NOTES.md,
 * "Fixed k"). Wider products keep a runtime k. Every width computes the
 * same sums in the same order.
 */
#define FIXED_K_MAX 32
/* Kept by hand: clang-format would make a staircase of the cases. */
/* clang-format off */
#define FIXED_K_CASES(CALL)                                                                        \
    CALL(1) CALL(2) CALL(3) CALL(4) CALL(5) CALL(6) CALL(7) CALL(8) CALL(9) CALL(10) CALL(11)      \
    CALL(12) CALL(13) CALL(14) CALL(15) CALL(16) CALL(17) CALL(18) CALL(19) CALL(20) CALL(21)      \
    CALL(22) CALL(23) CALL(24) CALL(25) CALL(26) CALL(27) CALL(28) CALL(29) CALL(30) CALL(31)      \
    CALL(32)
/* clang-format on */

/* The typed helpers the kernels of several files inline (the row gather,
 * the prefetch, the 4-wide dot), once per element type. */
#define CPU_TEMPLATE "core/numerics/cpu/cpu_inline_t.h"
#include "core/numerics/cpu/cpu_both.h"

/* ---- cpu_threads.c ---- */

/* Runs fn on chunks 0..n_chunks-1 with per-thread scratch of scratch_len
 * doubles; TM_ENOMEM when the scratch cannot be had. Which member runs a
 * chunk never changes what the chunk computes. */
tm_status tm__cpu_par_for(const struct cpu_ctx *c, int n_chunks, size_t scratch_len,
                          void (*fn)(void *, int, double *), void *arg, char *err);
/* Chunk boundaries (at most MAX_CHUNKS + 1 entries) over the rows of a CSR,
 * balanced by non-zeros plus rows; the number of chunks. */
int tm__cpu_csr_chunks(const struct tm_csr *x, int64_t *bounds);
/* The same over n rows of equal work. */
int tm__cpu_row_chunks(int64_t n, int64_t *bounds);
/* Row-major copy of A (rows x k) into dst (rows * k elements of A's type). */
void tm__cpu_pack_rows(const struct tm_bmat *a, void *dst);

/* ---- the ops, as backend.h describes them ---- */

/* backend_cpu.c */
tm_status tm__cpu_mat_alloc(void *ctx, int64_t rows, int64_t cols, struct tm_bmat *out, char *err);
void tm__cpu_mat_free(void *ctx, struct tm_bmat *m);

/* cpu_sparse.c */
tm_status tm__cpu_sparse_upload(void *ctx, const struct tm_csr *x, struct tm_bsparse **out,
                                char *err);
void tm__cpu_sparse_free(void *ctx, struct tm_bsparse *s);
tm_status tm__cpu_spmm(void *ctx, const struct tm_bsparse *s, int trans, double alpha,
                       const struct tm_bmat *b, double beta, const struct tm_bmat *c, char *err);
tm_status tm__cpu_gram_spmm(void *ctx, const struct tm_bsparse *s, int side,
                            const struct tm_bmat *v, const struct tm_bmat *av, char *err);
tm_status tm__cpu_gram_spmm_f32(void *ctx, const struct tm_bsparse *s, int side,
                                const struct tm_bmat *v, const struct tm_bmat *av, char *err);

/* cpu_dense.c */
tm_status tm__cpu_gemm(void *ctx, int transa, int transb, double alpha, const struct tm_bmat *a,
                       const struct tm_bmat *b, double beta, const struct tm_bmat *c, char *err);
tm_status tm__cpu_gram(void *ctx, const struct tm_bmat *a, const struct tm_bmat *c, char *err);
tm_status tm__cpu_orth_qr(void *ctx, const struct tm_bmat *a, char *err);
tm_status tm__cpu_orth_lu(void *ctx, const struct tm_bmat *a, char *err);
tm_status tm__cpu_svd_small(void *ctx, const struct tm_bmat *a, const struct tm_bmat *u, double *s,
                            const struct tm_bmat *vt, char *err);

/* cpu_elementwise.c */
tm_status tm__cpu_fill(void *ctx, const struct tm_bmat *a, double value, char *err);
tm_status tm__cpu_copy(void *ctx, const struct tm_bmat *src, const struct tm_bmat *dst, char *err);
tm_status tm__cpu_scale_cols(void *ctx, const struct tm_bmat *a, const double *scale, char *err);
tm_status tm__cpu_axpy(void *ctx, double alpha, const struct tm_bmat *x, const struct tm_bmat *y,
                       char *err);
tm_status tm__cpu_dot(void *ctx, const struct tm_bmat *a, const struct tm_bmat *b, double *out,
                      char *err);
tm_status tm__cpu_col_norms(void *ctx, const struct tm_bmat *a, double *out, char *err);
tm_status tm__cpu_col_sums(void *ctx, const struct tm_bmat *a, double *out, char *err);

/* cpu_nmf.c */
tm_status tm__cpu_hals_sweep(void *ctx, const struct tm_bmat *m, const struct tm_bmat *g,
                             const struct tm_bmat *xht, double l1, double l2, const int64_t *perm,
                             double *violation, char *err);
tm_status tm__cpu_hals_sweep_fused(void *ctx, const struct tm_bsparse *s, int side,
                                   const struct tm_bmat *mt, const struct tm_bmat *ft,
                                   const struct tm_bmat *g, double l1, double l2,
                                   const int64_t *perm, double *violation, double *cross,
                                   const struct tm_bmat *gram, char *err);
tm_status tm__cpu_hals_inner_fused(void *ctx, const struct tm_bsparse *s, int side,
                                   const struct tm_bmat *mt, const struct tm_bmat *ft,
                                   const struct tm_bmat *g, double l1, double l2,
                                   const int64_t *perm, int64_t cap, double rho,
                                   const struct tm_bmat *mpt, double beta, double *violation,
                                   double *cross, const struct tm_bmat *gram,
                                   const struct tm_bmat *gram_hat, char *err);
tm_status tm__cpu_mu_update(void *ctx, const struct tm_bmat *m, const struct tm_bmat *numer,
                            const struct tm_bmat *denom, const double *denom_row, double l1,
                            double l2, double zero_below, char *err);
tm_status tm__cpu_mu_update_fused(void *ctx, const struct tm_bsparse *s, int side,
                                  const struct tm_bmat *mt, const struct tm_bmat *ft,
                                  const struct tm_bmat *g, double l1, double l2, double *cross,
                                  const struct tm_bmat *gram, char *err);
tm_status tm__cpu_pgd_update(void *ctx, const struct tm_bmat *m, const struct tm_bmat *mg,
                             const struct tm_bmat *xht, double lr, double penalty, double mu,
                             char *err);
tm_status tm__cpu_kl_spmm(void *ctx, const struct tm_bsparse *s, int trans, const struct tm_bmat *p,
                          const struct tm_bmat *q, double eps, const struct tm_bmat *c, char *err);
tm_status tm__cpu_kl_sum(void *ctx, const struct tm_bsparse *s, const struct tm_bmat *w,
                         const struct tm_bmat *ht, double eps, double *out, char *err);

#endif
