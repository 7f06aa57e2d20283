/* transform.c - validation, the backend context and dispatch of a transform (see transform.h). */
#include "core/transform.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/numerics/nmf.h"

void tm_transform_result_release(struct tm_transform_result *r)
{
    tm_free(r->document_topics.data);
    memset(r, 0, sizeof(*r));
}

static tm_status validate(const struct tm_csr *x, const struct tm_model_params *p,
                          const double *components, int64_t k, char *err)
{
    if (!x || !p || !components)
        return tm_errf(err, TM_EINVAL, "transform: no matrix, parameters or components");
    if (k < 1)
        return tm_errf(err, TM_ERANGE, "transform: the model has %lld topics", (long long)k);
    if (x->n_cols < 1)
        return tm_errf(err, TM_EINVAL, "transform: the model has no terms");
    tm_status st = tm_csr_validate(x, err);
    if (st != TM_OK)
        return st;
    const int nmf = p->method == TM_METHOD_NMF;
    int64_t nnz = tm_csr_nnz(x);
    for (int64_t q = 0; q < nnz; q++) {
        if (!isfinite(x->data[q]))
            return tm_errf(err, TM_EINVAL, "transform: the matrix holds NaN or Inf (value %lld)",
                           (long long)q);
        if (nmf && x->data[q] < 0)
            return tm_errf(err, TM_EINVAL,
                           "transform: nmf needs a non-negative matrix (value %lld is %g)",
                           (long long)q, x->data[q]);
    }
    size_t len = (size_t)x->n_cols * (size_t)k;
    for (size_t i = 0; i < len; i++)
        if (!isfinite(components[i]) || (nmf && components[i] < 0))
            return tm_errf(err, TM_EINVAL,
                           "transform: the model's components hold %s (term %lld, topic %lld)",
                           isfinite(components[i]) ? "a negative value" : "NaN or Inf",
                           (long long)(i % (size_t)x->n_cols), (long long)(i / (size_t)x->n_cols));
    if (nmf && !(p->tol >= 0 && p->max_iter >= 1 && p->alpha_W >= 0 && p->l1_ratio >= 0 &&
                 p->l1_ratio <= 1))
        return tm_errf(err, TM_ERANGE, "transform: the model's nmf settings are out of range");
    if (nmf && p->beta_loss == TM_BETA_KL && p->solver != TM_NMF_MU &&
        p->solver != TM_NMF_MINIBATCH)
        return tm_errf(err, TM_EINVAL, "transform: kullback-leibler needs solver \"mu\"");
    if (nmf && p->solver == TM_NMF_MINIBATCH && p->transform_max_iter < 0)
        return tm_errf(err, TM_ERANGE, "transform: the model's transform_max_iter is negative");
    return TM_OK;
}

/* X V on the backend: TruncatedSVD.transform. */
static tm_status svd_transform(const struct tm_backend_ops *ops, void *ctx,
                               const struct tm_bsparse *xb, int64_t m, int64_t n, const double *v,
                               int64_t k, double **xv, char *err)
{
    struct tm_bmat vb = {0}, out = {0};
    tm_status st = TM_OK;
    TM_TRY(ops->mat_alloc(ctx, n, k, &vb, err));
    TM_TRY(ops->upload(ctx, v, n, &vb, err));
    TM_TRY(ops->mat_alloc(ctx, m, k, &out, err));
    TM_TRY(ops->spmm(ctx, xb, TM_NOTRANS, 1.0, &vb, 0.0, &out, err));
    TM_TRY(tm_backend_give(ops, ctx, &out, xv, err));
out:
    ops->mat_free(ctx, &out);
    ops->mat_free(ctx, &vb);
    return st;
}

tm_status tm_transform(const struct tm_backend_ops *backend, void *backend_ctx,
                       const struct tm_csr *X, const struct tm_model_params *params,
                       const double *components, int64_t k, const struct tm_progress *progress,
                       struct tm_transform_result *out, char *err)
{
    tm_status st;
    const struct tm_backend_ops *ops = backend ? backend : tm_backend_cpu();
    void *ctx = backend_ctx;
    int owned = 0;
    struct tm_bsparse *xb = NULL;
    struct tm_nmf_result nmf = {0};
    double t0 = tm_clock_monotonic();
    memset(out, 0, sizeof(*out));
    out->device_used = "cpu";
    if (!backend && backend_ctx)
        return tm_errf(err, TM_EINVAL, "transform: a backend context without its backend");
    if ((st = validate(X, params, components, k, err)) != TM_OK)
        return st;
    int64_t m = X->n_rows, n = X->n_cols;
    out->document_topics.rows = m;
    out->document_topics.cols = k;
    if (tm_csr_nnz(X) == 0) {
        /* No known word in any document: scikit-learn's W and X V are
         * zeros (its cd stops at once; its mu starts from zero and stays). */
        out->document_topics.data = tm_calloc((size_t)m * (size_t)k + 1, sizeof(double));
        if (!out->document_topics.data)
            return tm_errf(err, TM_ENOMEM, "transform: cannot allocate the document topics");
        out->seconds = tm_clock_monotonic() - t0;
        return TM_OK;
    }
    if (!ctx) {
        struct tm_backend_config cfg = {params->dtype, 0, params->n_threads};
        if ((st = ops->create(&cfg, &ctx, err)) != TM_OK)
            goto out;
        owned = 1;
    }
    out->device_used = ops->name;
    TM_TRY(ops->sparse_upload(ctx, X, &xb, err));
    if (params->method == TM_METHOD_NMF) {
        TM_TRY(tm_nmf_transform(ops, ctx, X, xb, components, k, params, progress, &nmf, err));
        out->document_topics.data = nmf.w;
        nmf.w = NULL;
        out->n_iter = nmf.n_iter;
        out->reconstruction_error = nmf.error;
    } else {
        TM_TRY(svd_transform(ops, ctx, xb, m, n, components, k, &out->document_topics.data, err));
    }
    TM_TRY(ops->sync(ctx, err));
    out->seconds = tm_clock_monotonic() - t0;
out:
    tm_nmf_result_release(&nmf);
    if (xb)
        ops->sparse_free(ctx, xb);
    if (owned)
        ops->destroy(ctx);
    if (st != TM_OK) {
        const char *dev = out->device_used;
        tm_transform_result_release(out);
        out->device_used = dev;
    }
    return st;
}
