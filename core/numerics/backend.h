/*
 * backend.h - the compute backend interface: the primitives that randomized
 * SVD, Lanczos bidiagonalization and the three NMF solvers (cd/HALS, mu, pgd)
 * are written against, once (core/numerics/svd.c, core/numerics/nmf.c).
 * core/numerics/cpu/ implements it with OpenBLAS + LAPACKE; gpu/
 * implements it with CUDA (cuSPARSE, cuBLAS, cuSOLVER and its own kernels),
 * as SQLite's sqlite3_mem_methods or ggml's backend interface: a struct of
 * function pointers plus an opaque context. Core never picks a backend:
 * tm_fit (core/fit.h) runs on the one its caller hands in, so core knows
 * nothing of gpu/.
 *
 * Data model
 * - A context (void *ctx) is one stream of work on one device, with one
 *   element type (float32 or float64, fixed at create). Host-side values
 *   (uploads, downloads, scalars) are always double; the backend converts.
 * - Dense matrices (struct tm_bmat) are column-major with a leading dimension,
 *   in backend memory that core never dereferences. A view (tm_bmat_block) is
 *   a tm_bmat over part of another; only what mat_alloc filled is passed to
 *   mat_free, never a view.
 * - The corpus matrix is uploaded once (sparse_upload) as CSR of X and of X^T,
 *   so X*B and X^T*B are both row-parallel products.
 * - Matrices stay in the backend for the whole fit. Only scalars needed for
 *   convergence (norms, dots, violations: k values at most) and the small
 *   (k+p) bidiagonal/SVD factors come back to the host per iteration.
 *
 * Contracts common to every op
 * - ctx comes first; every op returns TM_OK or a status with detail in err
 *   (NULL or TM_ERR_SIZE bytes). Shapes are checked by the caller (core/);
 *   a backend may assert them.
 * - Outputs never alias inputs unless an op says "in place".
 * - Ops may run asynchronously, queued in order on the context's stream.
 *   Ops that return host data (download, dot, col_norms, col_sums, svd_small,
 *   hals_sweep, kl_sum) wait for everything queued before them. An error of
 *   an asynchronous op may be reported by a later op or by sync.
 * - Nothing here prints, aborts on bad data or touches global state; NaN and
 *   Inf propagate (core checks the returned scalars and fails with
 *   TM_ENUMERIC).
 *
 * Thread-safety: an ops table is immutable and shared; a context has one
 * owner at a time (one worker thread); contexts share nothing.
 */
#ifndef TM_CORE_NUMERICS_BACKEND_H
#define TM_CORE_NUMERICS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "core/csr.h"
#include "core/model.h"
#include "core/status.h"

/* A dense column-major matrix in backend memory: element (i, j) lives at
 * data + (i + j * ld) * elem_size. Fields are public so core can take views. */
struct tm_bmat {
    int64_t rows, cols, ld;
    size_t elem_size; /* 4 or 8, as the context's dtype */
    void *data;       /* backend memory, NULL for an empty matrix */
};

/* A view of rows [r0, r0 + nr) x columns [c0, c0 + nc) of m; borrowed from m,
 * never freed. */
static inline struct tm_bmat tm_bmat_block(const struct tm_bmat *m, int64_t r0, int64_t nr,
                                           int64_t c0, int64_t nc)
{
    struct tm_bmat v = {nr, nc, m->ld, m->elem_size,
                        (char *)m->data + (size_t)(r0 + c0 * m->ld) * m->elem_size};
    return v;
}

/* Columns [c0, c0 + nc) of m, all rows. */
static inline struct tm_bmat tm_bmat_cols(const struct tm_bmat *m, int64_t c0, int64_t nc)
{
    return tm_bmat_block(m, 0, m->rows, c0, nc);
}

/* The uploaded corpus matrix: opaque, owned by the backend context. */
struct tm_bsparse;

struct tm_backend_config {
    enum tm_dtype dtype; /* AUTO: the backend's default (cpu: float64, cuda: float32) */
    int device;          /* device index for GPU backends; 0 */
    int n_threads;       /* cpu: threads of its own sparse/elementwise loops
                          * (OpenBLAS's are the caller's, see backend_cpu.h);
                          * 0 or 1: the calling thread only */
};

/* transa/transb/trans arguments */
enum { TM_NOTRANS = 0, TM_TRANS = 1 };

/*
 * scikit-learn's EPSILON in sklearn/decomposition/_nmf.py,
 * np.finfo(np.float32).eps: the mu update's floor for a zero denominator
 * and the KL loss's floor for a zero model value. Every backend and the NMF
 * driver use this one value, whatever their element type.
 */
#define TM_NMF_EPSILON 1.1920928955078125e-07

struct tm_backend_ops {
    const char *name; /* static: "cpu", "cuda" */

    /* ---- lifecycle ---- */
    /* *ctx: returned owned, release with destroy. TM_ENODEV when the device is
     * not usable, TM_EINVAL for a dtype the backend does not support. */
    tm_status (*create)(const struct tm_backend_config *cfg, void **ctx, char *err);
    /* Frees the context and everything still allocated in it. NULL-safe. */
    void (*destroy)(void *ctx);
    /* Waits for queued work; returns the first deferred error. */
    tm_status (*sync)(void *ctx, char *err);
    /* Element size (4 or 8) of the context's matrices: the dtype it was
     * created with (cpu and cuda both honour float32 and float64). */
    size_t (*elem_size)(void *ctx);

    /* ---- footprint queries (no context: the GPU scheduler asks before it
     * admits a job; see tm_fit_device_bytes in fit.h for a whole fit) ---- */
    /* Bytes mat_alloc takes for rows x cols of dtype. */
    size_t (*mat_bytes)(enum tm_dtype dtype, int64_t rows, int64_t cols);
    /* Bytes sparse_upload takes for a rows x cols matrix with nnz non-zeros
     * (both X and X^T, plus the position map the KL ops need, plus any
     * library workspace such as cuSPARSE's SpMM buffers for k columns);
     * SIZE_MAX when the backend cannot hold such a matrix at all (its index
     * width), so that a scheduler never admits a fit sparse_upload refuses. */
    size_t (*sparse_bytes)(enum tm_dtype dtype, int64_t rows, int64_t cols, int64_t nnz, int64_t k);

    /* ---- memory ---- */
    /* out: filled here (ld == rows), contents zeroed; release with mat_free.
     * rows or cols may be 0. TM_ENOMEM (host) or TM_EDEVICE/TM_ENOMEM (device). */
    tm_status (*mat_alloc)(void *ctx, int64_t rows, int64_t cols, struct tm_bmat *out, char *err);
    /* Frees what mat_alloc returned and zeroes *m; NULL data is a no-op. */
    void (*mat_free)(void *ctx, struct tm_bmat *m);
    /* dst (may be a view) = host column-major src with leading dimension ld_src.
     * src is read before the call returns (it may be freed right after). */
    tm_status (*upload)(void *ctx, const double *src, int64_t ld_src, const struct tm_bmat *dst,
                        char *err);
    /* host dst (column-major, ld_dst) = src; synchronous. */
    tm_status (*download)(void *ctx, const struct tm_bmat *src, double *dst, int64_t ld_dst,
                          char *err);
    /*
     * Optional, for a backend whose matrices are host memory (cpu; NULL
     * elsewhere, and core then uploads and downloads through tm_backend_take
     * and tm_backend_give): mat_adopt makes *out (rows x cols, ld rows) of
     * the tm_malloc'd host buffer itself, which the matrix then owns, without
     * a copy; mat_release takes a mat_alloc'd or adopted matrix's buffer back
     * (owned by the caller, column-major, ld m->ld) and zeroes *m, or returns
     * NULL and leaves *m as it was where the buffer does not hold doubles (a
     * float32 context): core then downloads instead.
     */
    tm_status (*mat_adopt)(void *ctx, double *host, int64_t rows, int64_t cols, struct tm_bmat *out,
                           char *err);
    double *(*mat_release)(void *ctx, struct tm_bmat *m);
    /* *out: returned owned, release with sparse_free (before destroy). X is
     * borrowed and must stay unchanged while *out lives (the CPU backend reads
     * it in place and builds only X^T). */
    tm_status (*sparse_upload)(void *ctx, const struct tm_csr *X, struct tm_bsparse **out,
                               char *err);
    void (*sparse_free)(void *ctx, struct tm_bsparse *X);

    /* ---- products ---- */
    /* C = alpha * op(X) * B + beta * C, op(X) = X (m x n) or X^T (n x m).
     * B: op(X).cols x k, C: op(X).rows x k. beta == 0 ignores C's contents. */
    tm_status (*spmm)(void *ctx, const struct tm_bsparse *X, int trans, double alpha,
                      const struct tm_bmat *B, double beta, const struct tm_bmat *C, char *err);
    /* Optional (NULL: two spmm calls): AV = X X^T V (side TM_NOTRANS, V:
     * m x b) or X^T X V (TM_TRANS, V: n x b), the Gram operator of Lanczos,
     * without storing the intermediate product. */
    tm_status (*gram_spmm)(void *ctx, const struct tm_bsparse *X, int side, const struct tm_bmat *V,
                           const struct tm_bmat *AV, char *err);
    /* Optional (NULL: gram_spmm): gram_spmm with V and X's values rounded
     * to float32 and the sums made in float32, whatever the context's
     * element type (V and AV are of that type): for randomized SVD's power
     * iterations, whose output only spans a subspace that the final stage,
     * in the context's type, projects onto. */
    tm_status (*gram_spmm_f32)(void *ctx, const struct tm_bsparse *X, int side,
                               const struct tm_bmat *V, const struct tm_bmat *AV, char *err);
    /* C = alpha * op(A) * op(B) + beta * C (BLAS dgemm). beta == 0 ignores C. */
    tm_status (*gemm)(void *ctx, int transa, int transb, double alpha, const struct tm_bmat *A,
                      const struct tm_bmat *B, double beta, const struct tm_bmat *C, char *err);
    /* C (k x k) = A^T A, both triangles filled (SYRK + symmetrize). */
    tm_status (*gram)(void *ctx, const struct tm_bmat *A, const struct tm_bmat *C, char *err);

    /* ---- factorizations ---- */
    /* In place, A (m x k, m >= k, ld may exceed m): A <- Q of a thin QR,
     * A = Q R with R upper triangular (scipy.linalg.qr(mode="economic")'s Q
     * up to column signs, which every caller absorbs): Householder
     * (geqrf + orgqr) or Cholesky QR twice where A is well conditioned. */
    tm_status (*orth_qr)(void *ctx, const struct tm_bmat *A, char *err);
    /* In place, A (m x k, m >= k): A <- P * L of A = P L U (getrf), L unit
     * lower trapezoidal m x k: scipy.linalg.lu(A, permute_l=True)[0]. */
    tm_status (*orth_lu)(void *ctx, const struct tm_bmat *A, char *err);
    /* Thin SVD of A (r x c), p = min(r, c): A = U diag(s) Vt, s descending.
     * A is destroyed; U: r x p, Vt: p x c (either may be NULL when not
     * wanted); s: host array of p. LAPACK gesdd (divide and conquer).
     * TM_ELAPACK when it does not converge. Synchronous. */
    tm_status (*svd_small)(void *ctx, const struct tm_bmat *A, const struct tm_bmat *U, double *s,
                           const struct tm_bmat *Vt, char *err);

    /* ---- elementwise and reductions ---- */
    tm_status (*fill)(void *ctx, const struct tm_bmat *A, double value, char *err);
    /* dst = src, same shape (either may be a view). */
    tm_status (*copy)(void *ctx, const struct tm_bmat *src, const struct tm_bmat *dst, char *err);
    /* In place: A[:, j] *= scale[j]; scale: host array of A->cols. */
    tm_status (*scale_cols)(void *ctx, const struct tm_bmat *A, const double *scale, char *err);
    /* In place: Y += alpha * X, same shape. */
    tm_status (*axpy)(void *ctx, double alpha, const struct tm_bmat *X, const struct tm_bmat *Y,
                      char *err);
    /* *out = sum_ij A_ij * B_ij (Frobenius inner product), same shape. Sync. */
    tm_status (*dot)(void *ctx, const struct tm_bmat *A, const struct tm_bmat *B, double *out,
                     char *err);
    /* out[j] = ||A[:, j]||_2, host array of A->cols. Synchronous. */
    tm_status (*col_norms)(void *ctx, const struct tm_bmat *A, double *out, char *err);
    /* out[j] = sum_i A_ij, host array of A->cols. Synchronous. */
    tm_status (*col_sums)(void *ctx, const struct tm_bmat *A, double *out, char *err);

    /* ---- NMF updates. W (m x k) and Ht (n x k, H transposed) are stored the
     * same way, so every update below serves both halves: the H half passes
     * Ht for M and the products with X^T. ---- */

    /*
     * One HALS coordinate-descent sweep over the columns of M (rows x k),
     * exactly scikit-learn's _update_cdnmf_fast on (HHt + l2 I, XHt - l1):
     *   for t in perm (k entries, host; NULL: 0..k-1), for each row i:
     *     grad = sum_r G[t,r] M[i,r] + l2 M[i,t] - (XHt[i,t] - l1)
     *     pg = (M[i,t] == 0) ? min(grad, 0) : grad;  violation += |pg|
     *     hess = G[t,t] + l2;  if hess != 0: M[i,t] = max(M[i,t] - grad/hess, 0)
     * Rows are independent, so any row order/parallelism gives the same M;
     * *violation (host) is summed in any order. G (k x k), XHt (rows x k) are
     * read only. Synchronous (returns the violation).
     */
    tm_status (*hals_sweep)(void *ctx, const struct tm_bmat *M, const struct tm_bmat *G,
                            const struct tm_bmat *XHt, double l1, double l2, const int64_t *perm,
                            double *violation, char *err);
    /*
     * Optional (NULL: core runs spmm, hals_sweep, gram and dot instead): one
     * half of a cd iteration fused into one pass over M, so that the product
     * with X is never stored, on the factors kept transposed (each row of M
     * and F contiguous: the layout that a pass over rows reads and the
     * product's gathers want). side TM_TRANS, the H half: M = Ht, F = W,
     * P = X^T W; side TM_NOTRANS, the W half: M = W, F = Ht, P = X Ht. With
     * Mt (k x rows, whole: ld k) updated in place and Ft (k x F's rows,
     * whole) read:
     *   hals_sweep(M, G, P, l1, l2, perm, violation);
     *   *cross = <P, M> (with the swept M);  gram (k x k) = M^T M.
     * M as the unfused ops leave it (to rounding, or exactly); violation,
     * cross and gram summed in any fixed order. Synchronous.
     */
    tm_status (*hals_sweep_fused)(void *ctx, const struct tm_bsparse *X, int side,
                                  const struct tm_bmat *Mt, const struct tm_bmat *Ft,
                                  const struct tm_bmat *G, double l1, double l2,
                                  const int64_t *perm, double *violation, double *cross,
                                  const struct tm_bmat *gram, char *err);
    /*
     * Optional (NULL: core runs spmm, hals_sweep, axpy, scale_cols,
     * pgd_update, gram and dot instead): one half of a hals iteration
     * (core/numerics/nmf.c) in one pass over M, as hals_sweep_fused (same
     * side, Mt, Ft and P), with several sweeps and the extrapolation. Rows of
     * M are NNLS problems of their own for fixed G and P, so the inner loop
     * runs per group of consecutive rows (the backend's tile; on the CPU at
     * most 32 rows, within a chunk of rows): a group is swept (hals_sweep's
     * arithmetic, perm's order every time) until sweep q where q == cap
     * (>= 1), or its first sweep's violation v(1) (its rows' summed) is not
     * > 0 (a fixed point), or q >= 2 and !(v(q) > rho v(1)). With M_n the
     * swept M:
     *   *violation = the first sweeps' violations summed (what one
     *                hals_sweep returns);
     *   *cross = <P, M_n>, gram = M_n^T M_n (either NULL: not made);
     *   Mpt NULL: M = M_n. Else (k x rows, whole, as Mt; the previous
     *   iterate) Ang & Gillis's extrapolation: M = max(M_n + beta (M_n -
     *   Mp), 0), Mp = M_n, and gram_hat = M^T M (NULL: not made).
     * M and Mp as the unfused ops leave them group by group (to rounding),
     * the sums in a fixed order that the thread count does not change.
     * Synchronous.
     */
    tm_status (*hals_inner_fused)(void *ctx, const struct tm_bsparse *X, int side,
                                  const struct tm_bmat *Mt, const struct tm_bmat *Ft,
                                  const struct tm_bmat *G, double l1, double l2,
                                  const int64_t *perm, int64_t cap, double rho,
                                  const struct tm_bmat *Mpt, double beta, double *violation,
                                  double *cross, const struct tm_bmat *gram,
                                  const struct tm_bmat *gram_hat, char *err);
    /*
     * Optional (NULL: core runs spmm, gemm, mu_update and gram instead): one
     * half of a Frobenius mu iteration fused into one pass over M, as
     * hals_sweep_fused does for cd (same sides, Mt, Ft and P): with
     * D = M G (the old M),
     *   mu_update(M, P, D, NULL, l1, l2, zero_below 0);
     *   *cross = <P, M> (with the updated M);  gram (k x k) = M^T M.
     * M as the unfused ops leave it (to rounding, or exactly); cross and
     * gram summed in a fixed order. Synchronous.
     */
    tm_status (*mu_update_fused)(void *ctx, const struct tm_bsparse *X, int side,
                                 const struct tm_bmat *Mt, const struct tm_bmat *Ft,
                                 const struct tm_bmat *G, double l1, double l2, double *cross,
                                 const struct tm_bmat *gram, char *err);
    /*
     * Multiplicative update in place, scikit-learn's _multiplicative_update_w/h
     * for beta in {1, 2} (gamma == 1):
     *   den = (denom ? denom[i,j] : denom_row[j]) + l1 + l2 * M[i,j]
     *         (l1 added only if > 0, l2 term only if > 0)
     *   den == 0 -> TM_NMF_EPSILON
     *   M[i,j] *= numer[i,j] / den;  then M[i,j] = 0 if M[i,j] < zero_below
     * Exactly one of denom (rows x k, backend) and denom_row (host, k) is set.
     */
    tm_status (*mu_update)(void *ctx, const struct tm_bmat *M, const struct tm_bmat *numer,
                           const struct tm_bmat *denom, const double *denom_row, double l1,
                           double l2, double zero_below, char *err);
    /*
     * Projected gradient step in place (the course notebook's NMF by SGD, on
     * the whole matrix): with MG = M * G (the caller's gemm) and XHt,
     *   g = MG - XHt + penalty * (M[i,j] >= mu ? 0 : M[i,j] - mu)
     *   M[i,j] = max(M[i,j] - lr * g, 0)
     * lr == 0 with finite MG and XHt is the projection M = max(M, 0) (NaN
     * and -0 become +0), which hals's extrapolation uses; a backend may then
     * skip reading MG and XHt.
     */
    tm_status (*pgd_update)(void *ctx, const struct tm_bmat *M, const struct tm_bmat *MG,
                            const struct tm_bmat *XHt, double lr, double penalty, double mu,
                            char *err);
    /*
     * The KL numerator, without densifying: with Xo = op(X) (rows r x c),
     *   R[i,j] = Xo[i,j] / max(P[i,:] . Q[j,:], eps) on the non-zeros of Xo
     *   C (r x k) = R * Q
     * P: r x k, Q: c x k. trans = 0: P = W, Q = Ht gives the W numerator;
     * trans = 1: P = Ht, Q = W gives the Ht numerator (W^T R)^T.
     */
    tm_status (*kl_spmm)(void *ctx, const struct tm_bsparse *X, int trans, const struct tm_bmat *P,
                         const struct tm_bmat *Q, double eps, const struct tm_bmat *C, char *err);
    /*
     * *out = sum over non-zeros with X_ij > eps of
     *        X_ij * log(X_ij / max(W[i,:] . Ht[j,:], eps)) - X_ij
     * (scikit-learn's _beta_divergence for beta = 1 without the sum(WH)
     * term, which core adds from col_sums). Synchronous.
     */
    tm_status (*kl_sum)(void *ctx, const struct tm_bsparse *X, const struct tm_bmat *W,
                        const struct tm_bmat *Ht, double eps, double *out, char *err);
};

/*
 * A host matrix into the backend and back, through mat_adopt/mat_release
 * where the backend has them (no copy, so no second copy in the peak),
 * else through mat_alloc + upload / download + mat_free (core/numerics/backend.c).
 * take: *host (tm_malloc'd, rows x cols, column-major, ld rows) becomes *out;
 * *host is consumed (freed or adopted, and set NULL) on success and left to
 * the caller on failure. give: *m becomes *host (returned owned, ld
 * m->rows), and *m is freed on success and left on failure.
 */
tm_status tm_backend_take(const struct tm_backend_ops *ops, void *ctx, double **host, int64_t rows,
                          int64_t cols, struct tm_bmat *out, char *err);
tm_status tm_backend_give(const struct tm_backend_ops *ops, void *ctx, struct tm_bmat *m,
                          double **host, char *err);

/* The CPU backend (backend_cpu.h, core/numerics/cpu/): always available. */
const struct tm_backend_ops *tm_backend_cpu(void);

#endif
