/*
 * svd.h - truncated SVD of the sparse corpus matrix, written once against the
 * backend interface (backend.h): scikit-learn's randomized_svd, an accurate
 * thick-restart block Lanczos method, and the exact dense SVD (gesdd on the
 * densified matrix, the one place core densifies X).
 *
 * Every result follows one sign convention, scikit-learn's svd_flip with
 * u_based_decision: in each column of U the entry of largest magnitude (the
 * first such) is positive.
 * Thread-safety: reentrant; a call owns the backend context it is given.
 */
#ifndef TM_CORE_NUMERICS_SVD_H
#define TM_CORE_NUMERICS_SVD_H

#include <stdint.h>

#include "core/csr.h"
#include "core/model.h"
#include "core/numerics/backend.h"
#include "core/progress.h"
#include "core/status.h"

/* X ~= U diag(s) V^T on the host: U m x k, V n x k, column-major (ld = rows),
 * s descending, all tm_malloc'd and owned by the result. */
struct tm_svd_result {
    int64_t m, n, k;
    double *u, *s, *v;
    int64_t n_iter; /* power iterations (randomized) or restarts (lanczos) */
    double tol;     /* lanczos: the residual tolerance it used (tm_svd_lanczos_tol); else 0 */
};

void tm_svd_result_release(struct tm_svd_result *r);

/*
 * scikit-learn's randomized_svd(X, k, n_oversamples, n_iter,
 * power_iteration_normalizer, transpose="auto", flip_sign=True,
 * random_state=seed), from params (n_oversamples, n_iter, the normalizer,
 * seed); the Gaussian test matrix is the one numpy's RandomState(seed) draws.
 * X: borrowed handle of an m x n matrix uploaded to (ops, ctx). out: filled
 * here, release with tm_svd_result_release (also after a failure).
 * progress: called after each power iteration ("svd"); non-zero cancels.
 * For a truncated_svd fit (params->method) the power iterations run
 * through the backend's gram_spmm_f32 where it has one: they only find the
 * subspace, which the final stage (in the context's type) projects onto,
 * so the singular values move by about float32's rounding (1e-7 relative
 * or less), far inside the method's own error against the exact ones.
 * So does NMF's nndsvd* init for the hals solver, which is held to cd's
 * error, not to cd's iterates. The other solvers' init keeps the context's
 * type throughout: cd and mu replay scikit-learn's iterations.
 */
tm_status tm_svd_randomized(const struct tm_backend_ops *ops, void *ctx, const struct tm_bsparse *X,
                            int64_t m, int64_t n, int64_t k, const struct tm_model_params *params,
                            const struct tm_progress *progress, struct tm_svd_result *out,
                            char *err);

/*
 * The top k singular triplets, accurately: thick-restart block Lanczos with
 * explicit Rayleigh-Ritz (block Krylov-Schur) on the Gram operator of the
 * short side (X X^T when m <= n, else X^T X, as ARPACK-based svds does),
 * BCGS2 reorthogonalisation (each new block's first pass against its
 * neighbouring blocks, as the block three-term recurrence allows, the
 * second against the whole basis). Up to k = 16: blocks of 2, 2k Ritz
 * vectors kept, 10 blocks added between restarts; above: blocks of
 * bs = min(ceil(k / 4), 8) vectors, k + bs Ritz vectors kept over a basis
 * that grows by max(8 bs, k) (k rounded up to whole blocks) between
 * restarts. Stops when every Ritz residual ||G y_i - theta_i y_i|| <=
 * tol * theta_i, which bounds each |sigma_i - sigma_i(exact)| / sigma_i by
 * tol / 2, tol = tm_svd_lanczos_tol(params->svd_tol, the context's element
 * size), or when a residual is at the rounding floor (about 4.5 eps
 * theta_0); after params->svd_max_iter restarts (0: 1000) it
 * fails with TM_ENUMERIC. The long-side vectors are op(X) y_i / sigma_i.
 * Memory: 3 short-side blocks of as many vectors as the basis holds (at
 * most 2 k + 10 bs + 1) plus (m + n) k, never m * n. The start block comes
 * from params->seed. n_iter counts restarts. Arguments as tm_svd_randomized.
 */
tm_status tm_svd_lanczos(const struct tm_backend_ops *ops, void *ctx, const struct tm_bsparse *X,
                         int64_t m, int64_t n, int64_t k, const struct tm_model_params *params,
                         const struct tm_progress *progress, struct tm_svd_result *out, char *err);

/*
 * Lanczos's residual tolerance for a requested one and an element size (4 or
 * 8): tol, raised to TM_SVD_TOL_ULPS units of the element type's epsilon.
 * The residuals are computed in that type, so they cannot go much below
 * eps * theta_0; 512 eps leaves them room for a theta_0 / theta_i of a few
 * hundred, and in float32 it is 6.1e-5, a relative error of the singular
 * values of at most 3.1e-5, inside the 1e-4 of float32 against float64 that
 * README promises for the GPU. In float64 (1.1e-13) it is below any
 * tolerance a fit asks for in practice (the default is 1e-6).
 */
#define TM_SVD_TOL_ULPS 512.0
double tm_svd_lanczos_tol(double tol, size_t elem_size);

/*
 * Bytes tm_svd_full needs on the host for an m x n matrix: the dense copy,
 * U, V^T and gesdd's workspace.
 */
double tm_svd_full_bytes(int64_t m, int64_t n);

/*
 * Exact SVD of the densified X by LAPACKE_dgesdd, keeping the top k
 * triplets (out->k == k; s holds them). TM_ETOOBIG, with the sizes in err,
 * when tm_svd_full_bytes(m, n) > max_dense_bytes. X: borrowed.
 */
tm_status tm_svd_full(const struct tm_csr *X, int64_t k, int64_t max_dense_bytes,
                      struct tm_svd_result *out, char *err);

/* svd_flip(u_based_decision=True) on host U (m x k) and V (n x k). */
void tm_svd_flip(double *u, int64_t m, double *v, int64_t n, int64_t k);

#endif
