/*
 * transform.h - apply a fitted model to new documents: their document-topic
 * weights under the fit's components, as scikit-learn's
 * model.transform(vectorizer.transform(docs)) after the vectorizer step:
 * NMF's solver with H fixed (tm_nmf_transform, nmf.h), and X V for
 * truncated and full SVD (TruncatedSVD.transform). Runs on the backend the
 * caller hands in, as tm_fit does (fit.h).
 * Thread-safety: reentrant; concurrent transforms share nothing.
 */
#ifndef TM_CORE_TRANSFORM_H
#define TM_CORE_TRANSFORM_H

#include <stdint.h>

#include "core/csr.h"
#include "core/model.h"
#include "core/numerics/backend.h"
#include "core/progress.h"
#include "core/status.h"

struct tm_transform_result {
    /* n_documents x n_topics, column-major (ld rows): NMF's W, or X V. */
    struct tm_dense_owned document_topics;
    int64_t n_iter;              /* NMF: the solver's iterations; SVD: 0 */
    double reconstruction_error; /* NMF: the fit's measure of W H against X; SVD: 0 */
    const char *device_used;     /* static: the backend's name, or "cpu" */
    double seconds;
};

/* Releases the result's arrays and zeroes it; safe on a zeroed struct. */
void tm_transform_result_release(struct tm_transform_result *r);

/*
 * backend, backend_ctx: as tm_fit's (NULL: the CPU backend, and a context
 * made here from params->dtype and params->n_threads). X: borrowed, the new
 * documents' rows over the model's vocabulary (n_features columns, as the
 * fitted vectorizer makes them), any number of rows (0 too). params: the
 * fit's (method, solver, beta_loss, tol, max_iter, alpha_W, l1_ratio,
 * shuffle, seed); n_topics is not read. components: borrowed, n_features x
 * k, column-major (ld n_features), as tm_fit_result's (NMF's H^T, SVD's V).
 * out: initialised here; release with tm_transform_result_release (also
 * after a failure). Rows of X without a non-zero get zero weights.
 * Errors: TM_EINVAL / TM_ERANGE naming what is wrong (k < 1, X's
 * invariants, NaN or Inf in X or the components, negative values for NMF),
 * TM_ENUMERIC, TM_ECANCELLED, and the backend's.
 */
tm_status tm_transform(const struct tm_backend_ops *backend, void *backend_ctx,
                       const struct tm_csr *X, const struct tm_model_params *params,
                       const double *components, int64_t k, const struct tm_progress *progress,
                       struct tm_transform_result *out, char *err);

#endif
