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
};

/* Where each team member's range of output rows starts in every row of a
 * CSR (gram_spmm's scatter phase): splits[r * (size - 1) + t - 1] for
 * members t = 1..size-1; made on first use, for one team size. */
struct row_splits {
    int size;
    int64_t *at;
};

struct tm_bsparse {
    const struct tm_csr *x; /* borrowed */
    struct tm_csr xt;       /* owned */
    struct row_splits split_x, split_xt;
};

#define AT(m, i, j) (((double *)(m)->data)[(i) + (size_t)(j) * (m)->ld])

/* Element `at` of n_chunks per-chunk partial matrices (each `stride`
 * doubles), added in chunk order: the order that makes a parallel sum the
 * same for any thread count. */
static inline double chunk_sum(const double *partial, int n_chunks, size_t stride, size_t at)
{
    double sum = 0.0;
    for (int q = 0; q < n_chunks; q++)
        sum += partial[(size_t)q * stride + at];
    return sum;
}

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
#define HOT_KERNEL(name)                                                                           \
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

/* 4 doubles in a vector register (GCC/clang vector extension; on the
 * baseline target it becomes SSE2 pairs). Loads and stores go through memcpy,
 * so nothing needs more than double alignment. */
typedef double v4d __attribute__((vector_size(32)));
typedef int64_t v4i __attribute__((vector_size(32)));

#define LOAD4(v, p) memcpy(&(v), (p), sizeof(v))
#define STORE4(p, v) memcpy((p), &(v), sizeof(v))

#if defined(__clang__)
#define SHUFFLE4(a, b, i, j, k, l) __builtin_shufflevector((a), (b), i, j, k, l)
#else
#define SHUFFLE4(a, b, i, j, k, l) __builtin_shuffle((a), (b), (v4i){i, j, k, l})
#endif

/* Software prefetch of the operand row that non-zero p will touch: the rows
 * are gathered (or scattered) in index order, which no hardware prefetcher
 * follows, and the operand outgrows L2. Only a hint: results are unchanged. */
#define PF_DIST 12
HOT_BODY void prefetch_row(const double *base, const int32_t *indices, int64_t p, int64_t pend,
                           int64_t k)
{
    if (p < pend) {
        const char *row = (const char *)(base + (size_t)indices[p] * k);
        for (int64_t o = 0; o < k * (int64_t)sizeof(double); o += 64)
            __builtin_prefetch(row + o, 0, 3);
        __builtin_prefetch(row + k * (int64_t)sizeof(double) - 1, 0, 3);
    }
}

/* row += v * d (k doubles), as explicit 4-wide vectors: GCC keeps the plain
 * loop scalar when it cannot rule out that row and d overlap (it does not
 * trust restrict on locals), and the scatter kernels are those loops. Each
 * element is one fused multiply-add either way. */
HOT_BODY void axpy_row(double *row, double v, const double *d, const int64_t k)
{
    const v4d vv = {v, v, v, v};
    int64_t c = 0;
    for (; c + 4 <= k; c += 4) {
        v4d a, b;
        LOAD4(a, row + c);
        LOAD4(b, d + c);
        a += vv * b;
        STORE4(row + c, a);
    }
    for (; c < k; c++)
        row[c] += v * d[c];
}

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

/* acc (k) = row i of x times the row-major b, as spmm_rows sums it. */
HOT_BODY void gather_row_k(const struct tm_csr *x, int64_t i, const double *restrict b,
                           int64_t pend_all, double *restrict acc, const int64_t k)
{
    double sums[FIXED_K_MAX];
    double *restrict s = k <= FIXED_K_MAX ? sums : acc;
    for (int64_t r = 0; r < k; r++)
        s[r] = 0.0;
    const int64_t pend = x->indptr[i + 1];
    for (int64_t p = x->indptr[i]; p < pend; p++) {
        const double v = x->data[p];
        const double *restrict brow = b + (size_t)x->indices[p] * k;
        prefetch_row(b, x->indices, p + PF_DIST, pend_all, k);
        for (int64_t r = 0; r < k; r++)
            s[r] += v * brow[r];
    }
    /* Through s, not by the name sums: s is restrict, so every access to
     * the sums it wrote goes through it. */
    if (k <= FIXED_K_MAX)
        memcpy(acc, s, (size_t)k * sizeof(double));
}

#define GATHER_ROW_CASE(K)                                                                         \
    case K:                                                                                        \
        gather_row_k(x, i, b, pend_all, acc, K);                                                   \
        return;

HOT_BODY void gather_row(const struct tm_csr *x, int64_t i, const double *restrict b,
                         int64_t pend_all, double *restrict acc, const int64_t k)
{
    switch (k) {
        FIXED_K_CASES(GATHER_ROW_CASE)
    default:
        gather_row_k(x, i, b, pend_all, acc, k);
    }
}

/* sum over rows [lo, hi) of x[i] * y[i], 4 lanes then in order */
HOT_BODY double dot_range(const double *x, const double *y, int64_t lo, int64_t hi)
{
    v4d s0 = {0, 0, 0, 0}, s1 = s0, a, b;
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        LOAD4(a, x + i);
        LOAD4(b, y + i);
        s0 += a * b;
        LOAD4(a, x + i + 4);
        LOAD4(b, y + i + 4);
        s1 += a * b;
    }
    s0 += s1;
    double sum = ((s0[0] + s0[1]) + (s0[2] + s0[3]));
    for (; i < hi; i++)
        sum += x[i] * y[i];
    return sum;
}

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
/* Row-major copy of A (rows x k) into dst (rows * k). */
void tm__cpu_pack_rows(const struct tm_bmat *a, double *dst);

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
