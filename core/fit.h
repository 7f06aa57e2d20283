/*
 * fit.h - factorize a document-term matrix into topics: the entry point the
 * CLI and the server's workers call. Dispatches on params->method to the
 * SVD and NMF modules, on the backend chosen by params->device, and fills
 * the top words of each topic.
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
 * X: borrowed, n_documents x n_features, never densified (except full_svd).
 * out: initialised here; release with tm_fit_result_release (also after a
 * failure). Errors: TM_EINVAL / TM_ERANGE naming the parameter (n_topics <= 0
 * or > min(m, n), ...), TM_EEMPTY for an empty matrix, TM_ETOOBIG when
 * full_svd's dense matrix exceeds max_dense_bytes, TM_ENUMERIC on NaN/Inf,
 * TM_ECANCELLED, TM_ENODEV when device is GPU and none is usable.
 */
tm_status tm_fit(const struct tm_csr *X, const struct tm_model_params *params,
                 const struct tm_progress *progress, struct tm_fit_result *out, char *err);

/*
 * Peak bytes a fit of an m x n matrix with nnz non-zeros takes in the memory
 * of backend ops (the corpus matrix, the factors and the algorithm's
 * workspace) for params (method, n_topics, algorithm, solver, ...), with
 * dtype params->dtype. For the GPU scheduler's admission control; an upper
 * bound within a few percent, host-side result arrays not included.
 */
size_t tm_fit_device_bytes(const struct tm_backend_ops *ops, const struct tm_model_params *params,
                           int64_t m, int64_t n, int64_t nnz);

#endif
