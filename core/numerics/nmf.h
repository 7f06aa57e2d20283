/*
 * nmf.h - non-negative matrix factorization X ~= W H, scikit-learn's
 * sklearn.decomposition.NMF (init, solvers "cd" and "mu", the same stopping
 * rules and regularization scaling) plus "hals", cd accelerated, and "pgd",
 * the projected gradient descent of the fast.ai course notebook, all written
 * once against the backend interface (backend.h), never densifying X.
 *
 * Solvers (params->solver):
 * - cd: HALS coordinate descent, _fit_coordinate_descent: W then H each
 *   iteration; stops when violation / violation_at_iteration_1 <= tol.
 * - hals: accelerated HALS (Gillis & Glineur 2012) with extrapolation (Ang &
 *   Gillis 2019): after 5 of cd's iterations, cd with up to several sweeps
 *   of W (then of H) per product with X, the inner loop stopping when a
 *   sweep's violation falls to a fraction of the first's, each half's new
 *   iterate then pushed along its last step (projected on >= 0; undone,
 *   with a smaller step, when the error rose). Stops on cd's violation
 *   rule, or when the error fell by less than tol / 1000 of the first
 *   iteration's over the last 10 (nmf.c); cd's regularization and shuffle.
 *   Not scikit-learn's iterates, but its local minimum in fewer products:
 *   the warm-up keeps hals in the basin cd's path takes (bench/NOTES.md).
 * - mu: multiplicative update, _fit_multiplicative_update, beta_loss
 *   frobenius or kullback-leibler; every 10 iterations stops when
 *   (previous_error - error) / error_at_init < tol.
 * - pgd: W -= lr_t (W (H H^T) - X H^T + penalty * pen(W)) and H likewise,
 *   both from the same iterate (as the notebook), with
 *   pen(M) = M - mu where M < mu else 0, lr_t = learning_rate /
 *   (1 + learning_rate_decay * t), then clamped at 0 (the notebook does not
 *   clamp and relies on the penalty alone, which leaves small negative
 *   entries; clamping makes W, H non-negative as the other solvers').
 *   Stops by the mu rule on the Frobenius error, or at max_iter.
 * - minibatch: scikit-learn's MiniBatchNMF, batch by batch, beta_loss
 *   frobenius or kullback-leibler (nmf_minibatch.h); the init as the others'.
 * Regularization: l1_reg_W = n_features * alpha_W * l1_ratio, l2_reg_W =
 * n_features * alpha_W * (1 - l1_ratio), and with n_samples and alpha_H
 * (alpha_H < 0: same as alpha_W) for H, as NMF._compute_regularization.
 * Init: auto (nndsvda when k <= min(m, n), else random), nndsvd (SVD by
 * tm_svd_randomized with scikit-learn's defaults and seed), nndsvda,
 * nndsvdar, random (sqrt(X.mean() / k) * |normal|), with numpy's
 * RandomState(seed) draws, in scikit-learn's order. The init runs on the
 * host ((m + n) k values) and is uploaded once.
 * Thread-safety: reentrant; a call owns the backend context it is given.
 */
#ifndef TM_CORE_NUMERICS_NMF_H
#define TM_CORE_NUMERICS_NMF_H

#include <stdint.h>

#include "core/csr.h"
#include "core/model.h"
#include "core/numerics/backend.h"
#include "core/progress.h"
#include "core/status.h"

struct tm_nmf_result {
    int64_t m, n, k;
    double *w;  /* m x k, column-major (ld m): document-topic weights */
    double *ht; /* n x k, column-major (ld n): H transposed */
    int64_t n_iter;
    /* ||X - W H||_F, or sqrt(2 * generalized KL divergence) for KL (as
     * scikit-learn's reconstruction_err_). */
    double error;
    /* Errors by iteration (after the update): every iteration for
     * frobenius, every 10th for KL (where it costs a pass over X). */
    double *trace;
    int64_t n_trace;
    /* Products with X or X^T (each a pass over its non-zeros) that the
     * iterations and the error checks made, the init's SVD not counted:
     * cd, hals 2 per iteration; mu 2 (KL: 2, and 1 per error); pgd 3;
     * minibatch: each product with a batch of rows counts its share of X's
     * non-zeros, the sum rounded to the nearest pass (nmf_minibatch.h). */
    int64_t passes_over_x;
    /* minibatch: mini-batches processed (scikit-learn's n_steps_), n_iter
     * being the epochs it started (n_iter_); 0 for the other solvers. */
    int64_t n_steps;
    double seconds_init;
};

void tm_nmf_result_release(struct tm_nmf_result *r);

/*
 * X: the host matrix (borrowed; read for the init), Xb: the same matrix
 * uploaded to (ops, ctx). Non-negative data is the caller's contract
 * (tm_fit checks it). out: filled here, release with tm_nmf_result_release
 * (also after a failure). progress: "nmf" after each iteration; non-zero
 * cancels (TM_ECANCELLED). TM_ENUMERIC when an error becomes NaN or Inf.
 */
tm_status tm_nmf_fit(const struct tm_backend_ops *ops, void *ctx, const struct tm_csr *X,
                     const struct tm_bsparse *Xb, int64_t k, const struct tm_model_params *params,
                     const struct tm_progress *progress, struct tm_nmf_result *out, char *err);

/*
 * The document-topic weights W (m x k) of new documents X under fixed
 * components: scikit-learn's NMF.transform, _fit_transform(X,
 * H=components_, update_H=False), on the backend:
 * - cd: W starts at zeros and takes one HALS sweep per iteration against
 *   X Ht and H H^T, made once (H does not move); stops when the sweep's
 *   violation / the first sweep's <= tol (or the first is 0), or at
 *   max_iter. With shuffle, a permutation per sweep from seed, as the fit's
 *   (not numpy's draws).
 * - mu: W starts at the constant sqrt(mean(X) / k) (mean of the new X);
 *   scikit-learn's W update (X Ht once for frobenius; the KL numerator
 *   each iteration); every 10 iterations stops when (previous - error) /
 *   error_at_init < tol, with the fit's errors.
 * - minibatch: MiniBatchNMF.transform, its _solve_W (nmf_minibatch.h).
 * - hals and pgd, which scikit-learn lacks: cd's transform. Both fits
 *   minimise the Frobenius loss (pgd's penalty only pushes entries to >= 0,
 *   which the transform's W is by construction), and with H fixed that is a
 *   convex non-negative least squares problem in each row of W, whose
 *   optimum cd reaches to tol; hals would reach the same one.
 * Regularisation as the fit's W half: l1 = n_features * alpha_W * l1_ratio,
 * l2 = n_features * alpha_W * (1 - l1_ratio) (scikit-learn scales by the
 * new X's n_features, which are the model's).
 * X: the host matrix (borrowed; read for its mean and norm), Xb: the same
 * matrix uploaded to (ops, ctx), n_features == the model's. ht: the fit's
 * components (n x k, column-major, ld n; borrowed, uploaded here), non-negative.
 * out: out->w (m x k, ld m), n_iter, error (the fit's measure of W with the
 * fixed H), passes_over_x; ht and trace stay NULL. Release with
 * tm_nmf_result_release (also after a failure). progress: "nmf" after each
 * iteration; non-zero cancels (TM_ECANCELLED).
 */
tm_status tm_nmf_transform(const struct tm_backend_ops *ops, void *ctx, const struct tm_csr *X,
                           const struct tm_bsparse *Xb, const double *ht, int64_t k,
                           const struct tm_model_params *params, const struct tm_progress *progress,
                           struct tm_nmf_result *out, char *err);

/*
 * A warm start: w (m x k0) and ht (n x k0), column-major, borrowed, a fit
 * with fewer topics k0 < k (core/sweep.h). They replace the first k0 columns
 * of the init params->init makes for k; its other columns stay.
 */
struct tm_nmf_start {
    const double *w, *ht;
    int64_t k;
};

/* tm_nmf_fit from start (NULL: tm_nmf_fit itself); TM_EINVAL when start->k
 * is not in [1, k). */
tm_status tm_nmf_fit_from(const struct tm_backend_ops *ops, void *ctx, const struct tm_csr *X,
                          const struct tm_bsparse *Xb, int64_t k,
                          const struct tm_model_params *params, const struct tm_nmf_start *start,
                          const struct tm_progress *progress, struct tm_nmf_result *out, char *err);

#endif
