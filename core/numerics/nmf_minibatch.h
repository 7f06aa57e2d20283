/*
 * nmf_minibatch.h - scikit-learn's MiniBatchNMF (sklearn/decomposition/
 * _nmf.py: _fit_transform, _minibatch_step, _minibatch_convergence,
 * _solve_W), the solver "minibatch" of tm_nmf_fit and tm_nmf_transform
 * (nmf.h), written against the backend interface (backend.h) and never
 * densifying X.
 *
 * The fit, from the init nmf.c made (W, H as NMF's):
 * - Batches are contiguous slices of batch_size rows (the last one shorter)
 *   in X's own order, cycled: scikit-learn's gen_batches, which does not
 *   shuffle, so its batch order is replayed. Each batch's rows are a CSR
 *   view of X, uploaded for its step (sparse_upload) and freed after it:
 *   the backend holds one batch at a time besides X.
 * - A step on batch X_b, W_b: W_b takes one multiplicative update (or, with
 *   fresh_restarts, _solve_W on X_b from the constant start, at most
 *   fresh_restarts_max_iter iterations); the batch cost (loss of X_b, W_b
 *   and the H before its update, plus the penalties, over the batch's rows)
 *   is taken; H takes the online update H = A / B with
 *   A = rho A + (W_b^T X_b) .* H, B = rho B + denominator (A starts at H, B
 *   at ones), rho = forget_factor^(batch_size / n_samples).
 *   Where scikit-learn sets a zero denominator entry to EPSILON before it
 *   adds it to B, B here takes the zero (B stays positive from its start
 *   unless forget_factor is 0, where B is that denominator and the division
 *   floors the zero to EPSILON as scikit-learn does).
 * - Stops (from the second step on) when ||H - H_prev||_F / ||H||_F <= tol,
 *   or when the exponentially weighted average of the batch costs has not
 *   fallen to a new minimum for max_no_improvement steps (0: never), or
 *   after max_iter epochs. n_iter is the epochs started (n_iter_), n_steps
 *   the batches processed (n_steps_).
 * - With fresh_restarts, the returned W is _solve_W on all of X (at most
 *   transform_max_iter iterations, 0: max_iter); without, each row keeps the
 *   W of its batch's last step, as scikit-learn's in-place updates leave it.
 *   error: scikit-learn's reconstruction_err_ on all of X.
 * - Regularization as MiniBatchNMF._compute_regularization on each batch:
 *   l1/l2 of W scale by n_features, those of H by the batch's rows.
 * - beta_loss frobenius or kullback-leibler (gamma 1; KL floors H below
 *   DBL_EPSILON to 0 after each step, as scikit-learn).
 * - trace: per epoch, sqrt(2 n_samples ewa), the error that the smoothed
 *   batch cost stands for (penalties included): an estimate; the exact
 *   error of the returned factors is out->error.
 * - passes_over_x: each product with X_b (and, for KL, each batch loss)
 *   counts nnz(X_b) / nnz(X) of a pass, each product with all of X one; the
 *   sum rounded to the nearest integer.
 * The transform is MiniBatchNMF.transform: _solve_W on the new X with the
 * fixed H (W from sqrt(mean(X) / k), mu updates until
 * ||W - W_prev||_F / ||W||_F <= tol or transform_max_iter iterations).
 * Thread-safety: reentrant; a call owns the backend context it is given.
 */
#ifndef TM_CORE_NUMERICS_NMF_MINIBATCH_H
#define TM_CORE_NUMERICS_NMF_MINIBATCH_H

#include "core/numerics/nmf.h"

/*
 * The fit after the init, for tm_nmf_fit_from: w (m x k) and ht (n x k) are
 * the init on (ops, ctx), borrowed and updated in place (*ht may be
 * replaced by another matrix of the same shape, which the caller then
 * owns and frees as it would have *ht). out: its trace allocated with
 * max_iter + 1 entries; n_iter, n_steps, error, passes_over_x and the trace
 * are filled here.
 */
tm_status tm__nmf_minibatch_fit(const struct tm_backend_ops *ops, void *ctx, const struct tm_csr *X,
                                const struct tm_bsparse *Xb, const struct tm_model_params *params,
                                struct tm_bmat *w, struct tm_bmat *ht,
                                const struct tm_progress *progress, struct tm_nmf_result *out,
                                char *err);

/* tm_nmf_transform for a minibatch model (arguments as there). */
tm_status tm__nmf_minibatch_transform(const struct tm_backend_ops *ops, void *ctx,
                                      const struct tm_csr *X, const struct tm_bsparse *Xb,
                                      const double *ht, int64_t k,
                                      const struct tm_model_params *params,
                                      const struct tm_progress *progress, struct tm_nmf_result *out,
                                      char *err);

#endif
