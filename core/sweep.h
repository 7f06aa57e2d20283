/*
 * sweep.h - choosing the number of topics: one job fits a list of k and
 * suggests one of them (the job spec's model.n_topics as a list or range).
 *
 * Truncated and full SVD make ONE factorization, at the largest k, and
 * derive every smaller k from it: the top k singular triplets of a rank-K
 * factorization are those of a rank-k one, and with U, V orthonormal and
 * u_i^T X v_i = s_i, ||X - U_k S_k V_k^T||_F^2 = ||X||_F^2 - sum_{i<k} s_i^2.
 * That is exact with algorithm lanczos and full_svd (each s_i converged to
 * tol); with randomized it is as accurate as the largest fit, which is more
 * accurate than a separate randomized fit at k (more oversampling), not equal
 * to it. explained_variance is sum_{i<k} explained_variance_ratio[i].
 *
 * NMF fits each k, by increasing k, on one backend context. Cold starts (the
 * default) make every k's fit the one tm_fit makes alone (same init, same
 * iterates). With warm_start, k starts from the previous k's W and H, its
 * init's other columns added (nmf.h's tm_nmf_start); bench/NOTES.md has
 * whether that pays. Every k's factors are kept until the suggestion is
 * made: sum_k (m + n) k doubles, capped by TM_SWEEP_KEEP_BYTES.
 *
 * The suggestion (sweep_rule in the result):
 *   "knee"     the knee of the reconstruction error against k: the point
 *              farthest below the chord from the first to the last point,
 *              both axes scaled to [0, 1] (Kneedle's difference curve,
 *              Satopaa et al. 2011, without its smoothing or threshold);
 *              ties go to the smaller k.
 *   "largest"  when there is no knee (fewer than three values of k, or no
 *              point below the chord: the error falls as fast at the end as
 *              at the start), the largest k, the lowest error.
 *   "best_coherence"  with coherence asked for (sweep->coherence and
 *              measures): the k whose topics have the best mean coherence
 *              (higher is better for all four measures), scored with one
 *              measure, the first asked of c_v, c_npmi, c_uci, u_mass (c_v
 *              agrees best with human judgement, Roder et al. 2015); ties go
 *              to the smaller k. Each point's coherence is that mean. When
 *              no k has a finite score, the knee rule decides.
 *
 * The result's seconds_init and seconds_fit are the whole sweep's (NMF: its
 * inits summed, and the rest), so its timings say what the sweep cost.
 * Progress: the SVD's own ("svd") over the whole sweep; NMF's "nmf" mapped
 * so the sweep goes from 0 to 1, each k's share proportional to k (an
 * iteration costs about k passes' work), and "sweep" as each k starts. A fit
 * that converges early leaves its share short: 1 is the job's end, as with
 * tm_fit. A non-zero answer cancels the sweep (TM_ECANCELLED), between or
 * inside fits.
 * Thread-safety: reentrant, as tm_fit.
 */
#ifndef TM_CORE_SWEEP_H
#define TM_CORE_SWEEP_H

#include <stdint.h>

#include "core/csr.h"
#include "core/model.h"
#include "core/numerics/backend.h"
#include "core/progress.h"
#include "core/status.h"

/* The most values of k one sweep fits. */
#define TM_SWEEP_MAX 50
/* The most bytes an NMF sweep keeps of its fits' factors. */
#define TM_SWEEP_KEEP_BYTES ((int64_t)4 << 30)

struct tm_coherence_corpus;

struct tm_sweep_params {
    const int64_t *n_topics; /* n values, strictly increasing, each >= 1; borrowed */
    int64_t n;               /* 1..TM_SWEEP_MAX */
    int warm_start;          /* NMF: start each k from the previous k's factors */
    /* model.coherence: the documents' token streams (core/text/coherence.h;
     * borrowed, NULL: none), the measures (a TM_COHERENCE_BIT mask) and the
     * threads to score each k's topics with. */
    const struct tm_coherence_corpus *coherence;
    unsigned measures;
    int n_threads;
};

/*
 * Fits params (method, solver, ...; its n_topics is ignored) at each k of
 * sweep on X. backend, backend_ctx, X, progress: as tm_fit. out: the
 * suggested k's ordinary fit, with sweep, n_sweep and sweep_rule set;
 * released with tm_fit_result_release (also after a failure). Errors:
 * TM_EINVAL / TM_ERANGE naming model.n_topics for a bad list (a k above
 * min(m, n) as tm_fit words it), TM_ETOOBIG (NMF factors to keep over
 * TM_SWEEP_KEEP_BYTES), and tm_fit's.
 */
tm_status tm_sweep_fit(const struct tm_backend_ops *backend, void *backend_ctx,
                       const struct tm_csr *X, const struct tm_model_params *params,
                       const struct tm_sweep_params *sweep, const struct tm_progress *progress,
                       struct tm_fit_result *out, char *err);

/*
 * The knee rule above on n points (k strictly increasing, error[i] the
 * error at k[i]; both borrowed): the index of the knee, or -1 when there is
 * none.
 */
int64_t tm_sweep_knee(const int64_t *k, const double *error, int64_t n);

#endif
