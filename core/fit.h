/*
 * fit.h - factorize a document-term matrix into topics: the entry point the
 * CLI and the server's workers call. Dispatches on params->method to the
 * SVD and NMF modules, on the backend the caller hands in, and fills the top
 * words of each topic.
 * Thread-safety: reentrant; concurrent fits share nothing.
 */
#ifndef TM_CORE_FIT_H
#define TM_CORE_FIT_H

#include <stddef.h>
#include <stdint.h>

#include "core/csr.h"
#include "core/model.h"
#include "core/numerics/backend.h"
#include "core/progress.h"
#include "core/status.h"

/*
 * backend: the backend to fit on (static, borrowed); NULL: the CPU one,
 * tm_backend_cpu(). The caller turns params->device into a backend (the
 * server's GPU manager, the CLI through gpu/gpu.h): core never reads device.
 * backend_ctx: a context of backend that the caller created and keeps
 * (borrowed), such as a GPU worker's stream and handles reused across jobs;
 * NULL: tm_fit creates one for this fit from params->dtype and
 * params->n_threads, and destroys it before it returns. A context needs its
 * backend (TM_EINVAL otherwise). full_svd is dense LAPACK on the host,
 * whatever the backend.
 * X: borrowed, n_documents x n_features, never densified (except full_svd).
 * out: initialised here; release with tm_fit_result_release (also after a
 * failure). Errors: those of tm_fit_validate, first; TM_ETOOBIG when
 * full_svd's dense matrix exceeds max_dense_bytes, TM_ENUMERIC on NaN/Inf,
 * TM_ECANCELLED, and whatever the backend's create and ops return.
 */
tm_status tm_fit(const struct tm_backend_ops *backend, void *backend_ctx, const struct tm_csr *X,
                 const struct tm_model_params *params, const struct tm_progress *progress,
                 struct tm_fit_result *out, char *err);

/*
 * tm_fit, for core/sweep.c: an NMF fit started from start (nmf.h's warm
 * start; NULL: tm_fit). start is ignored by the SVD methods.
 */
struct tm_nmf_start;
tm_status tm__fit_from(const struct tm_backend_ops *backend, void *backend_ctx,
                       const struct tm_csr *X, const struct tm_model_params *params,
                       const struct tm_nmf_start *start, const struct tm_progress *progress,
                       struct tm_fit_result *out, char *err);

/*
 * The checks tm_fit makes before anything else, with the same errors:
 * TM_EINVAL / TM_ERANGE naming the parameter (n_topics <= 0 or > min(m, n),
 * ...), TM_EEMPTY for an empty matrix. For a caller that has its own reason
 * to refuse a fit (no GPU for device "gpu") and reports a bad spec first,
 * as a fit would. X and params: borrowed.
 */
tm_status tm_fit_validate(const struct tm_csr *X, const struct tm_model_params *params, char *err);

/*
 * Peak bytes a fit of an m x n matrix with nnz non-zeros takes in the memory
 * of backend ops (the corpus matrix, the factors and the algorithm's
 * workspace) for params (method, n_topics, algorithm, solver, ...), with
 * dtype params->dtype. For the GPU scheduler's admission control; an upper
 * bound within a few percent, host-side result arrays not included.
 * SIZE_MAX when the backend cannot hold the matrix at all (sparse_bytes).
 */
size_t tm_fit_device_bytes(const struct tm_backend_ops *ops, const struct tm_model_params *params,
                           int64_t m, int64_t n, int64_t nnz);

#endif
