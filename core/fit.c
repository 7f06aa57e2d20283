/* fit.c - validation, the backend context, dispatch and result filling (see fit.h). */
#include "core/fit.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/numerics/nmf.h"
#include "core/numerics/svd.h"
#include "core/numerics/topwords.h"

tm_status tm_fit_validate(const struct tm_csr *x, const struct tm_model_params *p, char *err)
{
    if (!x || !p)
        return tm_errf(err, TM_EINVAL, "fit: no matrix or no parameters");
    int64_t m = x->n_rows, n = x->n_cols, nnz = tm_csr_nnz(x);
    if (m <= 0 || n <= 0 || nnz == 0)
        return tm_errf(err, TM_EEMPTY,
                       "fit: the document-term matrix is empty (%lld documents x %lld terms, "
                       "%lld non-zeros)",
                       (long long)m, (long long)n, (long long)nnz);
    tm_status st = tm_csr_validate(x, err);
    if (st != TM_OK)
        return st;
    int64_t mn = m < n ? m : n;
    if (p->n_topics <= 0)
        return tm_errf(err, TM_ERANGE, "model.n_topics: must be at least 1, got %lld",
                       (long long)p->n_topics);
    if (p->n_topics > mn)
        return tm_errf(err, TM_ERANGE,
                       "model.n_topics: %lld exceeds min(n_documents, n_features) = %lld",
                       (long long)p->n_topics, (long long)mn);
    if (p->n_top_words < 0)
        return tm_errf(err, TM_ERANGE, "model.n_top_words: must be >= 0, got %lld",
                       (long long)p->n_top_words);
    for (int64_t q = 0; q < nnz; q++) {
        if (!isfinite(x->data[q]))
            return tm_errf(err, TM_EINVAL, "fit: the matrix holds NaN or Inf (value %lld)",
                           (long long)q);
        if (p->method == TM_METHOD_NMF && x->data[q] < 0)
            return tm_errf(err, TM_EINVAL,
                           "model.method: nmf needs a non-negative matrix (value %lld is %g)",
                           (long long)q, x->data[q]);
    }
    if (p->method == TM_METHOD_TRUNCATED_SVD) {
        if (p->n_oversamples < 0)
            return tm_errf(err, TM_ERANGE, "model.n_oversamples: must be >= 0");
        if (p->n_iter < -1)
            return tm_errf(err, TM_ERANGE, "model.n_iter: must be >= 0 (or -1: auto)");
        if (!(p->svd_tol > 0 && p->svd_tol < 1))
            return tm_errf(err, TM_ERANGE, "model.tol: the SVD tolerance must be in (0, 1)");
        if (p->svd_max_iter < 0)
            return tm_errf(err, TM_ERANGE, "model.max_iter: must be >= 0");
    }
    if (p->method == TM_METHOD_NMF) {
        if (!(p->tol >= 0))
            return tm_errf(err, TM_ERANGE, "model.tol: must be >= 0, got %g", p->tol);
        if (p->max_iter <= 0)
            return tm_errf(err, TM_ERANGE, "model.max_iter: must be >= 1, got %lld",
                           (long long)p->max_iter);
        if (!(p->alpha_W >= 0))
            return tm_errf(err, TM_ERANGE, "model.alpha_W: must be >= 0");
        if (!(p->l1_ratio >= 0 && p->l1_ratio <= 1))
            return tm_errf(err, TM_ERANGE, "model.l1_ratio: must be in [0, 1]");
        if (p->beta_loss == TM_BETA_KL && p->solver != TM_NMF_MU && p->solver != TM_NMF_MINIBATCH)
            return tm_errf(
                err, TM_EINVAL,
                "model.beta_loss: kullback-leibler needs solver \"mu\" or \"minibatch\"");
        if (p->solver == TM_NMF_MINIBATCH) {
            if (p->batch_size < 1)
                return tm_errf(err, TM_ERANGE, "model.batch_size: must be >= 1");
            if (!(p->forget_factor >= 0 && p->forget_factor <= 1))
                return tm_errf(err, TM_ERANGE, "model.forget_factor: must be in [0, 1]");
            if (p->fresh_restarts_max_iter < 1)
                return tm_errf(err, TM_ERANGE, "model.fresh_restarts_max_iter: must be >= 1");
            if (p->max_no_improvement < 0 || p->transform_max_iter < 0)
                return tm_errf(err, TM_ERANGE,
                               "model.max_no_improvement, transform_max_iter: must be >= 0");
        }
        if (p->solver == TM_NMF_PGD && !(p->learning_rate > 0 && p->learning_rate_decay >= 0 &&
                                         p->penalty >= 0 && isfinite(p->penalty_mu)))
            return tm_errf(err, TM_ERANGE,
                           "model.learning_rate: pgd needs learning_rate > 0, "
                           "learning_rate_decay >= 0 and penalty >= 0");
    }
    return TM_OK;
}

/*
 * *colsum (n, returned owned) = X^T 1. On a float64 backend its product sums
 * each row of X^T (in parallel on the CPU, documents in increasing order,
 * each term times 1 exact: the bits of the scatter below, which is bound by
 * the latency of its random adds, one at a time); without a backend, or on a
 * float32 one, the host scatters, so the sums stay float64.
 */
static tm_status column_sums(const struct tm_backend_ops *ops, void *ctx,
                             const struct tm_bsparse *xb, const struct tm_csr *x, double **colsum,
                             char *err)
{
    int64_t m = x->n_rows, n = x->n_cols;
    if (!ops || ops->elem_size(ctx) != sizeof(double)) {
        double *sums = tm_calloc((size_t)n + 1, sizeof(double));
        if (!sums)
            return tm_errf(err, TM_ENOMEM, "fit: cannot allocate the column sums");
        int64_t nnz = tm_csr_nnz(x);
        for (int64_t q = 0; q < nnz; q++)
            sums[x->indices[q]] += x->data[q];
        *colsum = sums;
        return TM_OK;
    }
    struct tm_bmat ones = {0}, sums = {0};
    double *host_ones = tm_mallocarray((size_t)m + 1, sizeof(double));
    if (!host_ones)
        return tm_errf(err, TM_ENOMEM, "fit: cannot allocate the column sums' operand");
    for (int64_t i = 0; i < m; i++)
        host_ones[i] = 1.0;
    tm_status st = tm_backend_take(ops, ctx, &host_ones, m, 1, &ones, err);
    if (st == TM_OK)
        st = ops->mat_alloc(ctx, n, 1, &sums, err);
    if (st == TM_OK)
        st = ops->spmm(ctx, xb, TM_TRANS, 1.0, &ones, 0.0, &sums, err);
    if (st == TM_OK)
        st = tm_backend_give(ops, ctx, &sums, colsum, err);
    ops->mat_free(ctx, &sums);
    ops->mat_free(ctx, &ones);
    tm_free(host_ones);
    return st;
}

/* ops, ctx and xb: the backend that made svd, or NULL (full_svd). */
static tm_status fill_svd(const struct tm_backend_ops *ops, void *ctx, const struct tm_bsparse *xb,
                          const struct tm_csr *x, struct tm_svd_result *svd,
                          struct tm_fit_result *out, char *err)
{
    int64_t m = x->n_rows, n = x->n_cols, k = svd->k;
    double *colsum = NULL;
    out->components.data = svd->v;
    svd->v = NULL;
    out->singular_values = tm_mallocarray((size_t)k, sizeof(double));
    out->explained_variance_ratio = tm_mallocarray((size_t)k, sizeof(double));
    if (!out->components.data || !out->singular_values || !out->explained_variance_ratio)
        return tm_errf(err, TM_ENOMEM, "fit: cannot allocate the SVD result");
    out->components.rows = n;
    out->components.cols = k;
    memcpy(out->singular_values, svd->s, (size_t)k * sizeof(double));
    /* document_topics = U diag(s) (TruncatedSVD.transform), taking U over. */
    for (int64_t t = 0; t < k; t++)
        for (int64_t i = 0; i < m; i++)
            svd->u[i + (size_t)t * m] *= svd->s[t];
    out->document_topics.rows = m;
    out->document_topics.cols = k;
    out->document_topics.data = svd->u;
    svd->u = NULL;
    /* explained_variance_ratio: np.var(U S, axis=0) / np.var(X, axis=0).sum(),
     * the total from sums and squares of X's columns (never densified). */
    double nx2 = tm_csr_frobenius_sq(x), total = nx2 / (double)m, ss = 0.0;
    tm_status st = column_sums(ops, ctx, xb, x, &colsum, err);
    if (st != TM_OK)
        return st;
    for (int64_t j = 0; j < n; j++)
        total -= (colsum[j] / (double)m) * (colsum[j] / (double)m);
    tm_free(colsum);
    for (int64_t t = 0; t < k; t++) {
        const double *c = out->document_topics.data + (size_t)t * m;
        double mean = 0.0, var = 0.0;
        for (int64_t i = 0; i < m; i++)
            mean += c[i];
        mean /= (double)m;
        for (int64_t i = 0; i < m; i++)
            var += (c[i] - mean) * (c[i] - mean);
        var /= (double)m;
        out->explained_variance_ratio[t] = total > 0 ? var / total : 0.0;
        ss += svd->s[t] * svd->s[t];
    }
    /* U, V orthonormal and u_i^T X v_i = s_i for all three algorithms, so
     * ||X - U S V^T||^2 = ||X||^2 - sum s_i^2. */
    out->reconstruction_error = sqrt(nx2 - ss > 0 ? nx2 - ss : 0.0);
    out->n_iter = svd->n_iter;
    return TM_OK;
}

static tm_status fill_nmf(struct tm_nmf_result *nmf, struct tm_fit_result *out, char *err)
{
    (void)err;
    out->components.data = nmf->ht;
    nmf->ht = NULL;
    out->components.rows = nmf->n;
    out->components.cols = nmf->k;
    out->document_topics.rows = nmf->m;
    out->document_topics.cols = nmf->k;
    out->document_topics.data = nmf->w;
    nmf->w = NULL;
    out->error_trace = nmf->trace;
    out->n_trace = nmf->n_trace;
    nmf->trace = NULL;
    out->reconstruction_error = nmf->error;
    out->n_iter = nmf->n_iter;
    out->passes_over_x = nmf->passes_over_x;
    out->n_steps = nmf->n_steps;
    out->seconds_init = nmf->seconds_init;
    return TM_OK;
}

/* ctx: the caller's context of ops, or NULL: *ctx is then one made here
 * for this fit (*owned set), from the params' dtype and threads. */
static tm_status open_context(const struct tm_backend_ops *ops, void *caller_ctx,
                              const struct tm_model_params *p, void **ctx, int *owned, char *err)
{
    *owned = 0;
    *ctx = caller_ctx;
    if (caller_ctx)
        return TM_OK;
    struct tm_backend_config cfg = {p->dtype, 0, p->n_threads};
    tm_status st = ops->create(&cfg, ctx, err);
    if (st == TM_OK)
        *owned = 1;
    return st;
}

tm_status tm_fit(const struct tm_backend_ops *backend, void *backend_ctx, const struct tm_csr *X,
                 const struct tm_model_params *params, const struct tm_progress *progress,
                 struct tm_fit_result *out, char *err)
{
    return tm__fit_from(backend, backend_ctx, X, params, NULL, progress, out, err);
}

tm_status tm__fit_from(const struct tm_backend_ops *backend, void *backend_ctx,
                       const struct tm_csr *X, const struct tm_model_params *params,
                       const struct tm_nmf_start *start, const struct tm_progress *progress,
                       struct tm_fit_result *out, char *err)
{
    tm_status st;
    const struct tm_backend_ops *ops = backend ? backend : tm_backend_cpu();
    void *ctx = NULL;
    int owned = 0;
    struct tm_bsparse *xb = NULL;
    struct tm_svd_result svd = {0};
    struct tm_nmf_result nmf = {0};
    double t0 = tm_clock_monotonic();
    memset(out, 0, sizeof(*out));
    if (!backend && backend_ctx)
        return tm_errf(err, TM_EINVAL, "fit: a backend context without its backend");
    if ((st = tm_fit_validate(X, params, err)) != TM_OK)
        return st;
    int64_t k = params->n_topics, n = X->n_cols;
    out->method = params->method;
    out->n_documents = X->n_rows;
    out->n_features = n;
    out->nnz = tm_csr_nnz(X);
    out->n_topics = k;
    out->device_used = "cpu";

    if (params->method == TM_METHOD_FULL_SVD) {
        st = tm_svd_full(X, k, params->max_dense_bytes, &svd, err);
        out->seconds_init = 0.0;
        if (st == TM_OK)
            st = fill_svd(NULL, NULL, NULL, X, &svd, out, err);
    } else {
        if ((st = open_context(ops, backend_ctx, params, &ctx, &owned, err)) != TM_OK)
            goto out;
        out->device_used = ops->name;
        if ((st = ops->sparse_upload(ctx, X, &xb, err)) != TM_OK)
            goto out;
        if (params->method == TM_METHOD_TRUNCATED_SVD) {
            out->seconds_init = tm_clock_monotonic() - t0;
            if (params->algorithm == TM_SVD_LANCZOS)
                st = tm_svd_lanczos(ops, ctx, xb, X->n_rows, n, k, params, progress, &svd, err);
            else
                st = tm_svd_randomized(ops, ctx, xb, X->n_rows, n, k, params, progress, &svd, err);
            if (st == TM_OK)
                st = fill_svd(ops, ctx, xb, X, &svd, out, err);
            if (st == TM_OK && svd.tol != params->svd_tol)
                out->svd_tol = svd.tol; /* raised for the element type */
        } else {
            st = tm_nmf_fit_from(ops, ctx, X, xb, k, params, start, progress, &nmf, err);
            if (st == TM_OK)
                st = fill_nmf(&nmf, out, err);
        }
        if (st == TM_OK)
            st = ops->sync(ctx, err);
    }
    if (st != TM_OK)
        goto out;

    int64_t ntw = params->n_top_words < n ? params->n_top_words : n;
    out->n_top_words = ntw;
    if (ntw > 0) {
        out->top_terms = tm_mallocarray((size_t)(k * ntw), sizeof(int64_t));
        out->top_weights = tm_mallocarray((size_t)(k * ntw), sizeof(double));
        if (!out->top_terms || !out->top_weights) {
            st = tm_errf(err, TM_ENOMEM, "fit: cannot allocate the top words");
            goto out;
        }
        tm_top_words(out->components.data, k, n, ntw, out->top_terms, out->top_weights);
    }
    out->seconds_fit = tm_clock_monotonic() - t0 - out->seconds_init;
out:
    tm_nmf_result_release(&nmf);
    tm_svd_result_release(&svd);
    if (xb)
        ops->sparse_free(ctx, xb);
    if (owned)
        ops->destroy(ctx);
    if (st != TM_OK) {
        const char *dev = out->device_used;
        tm_fit_result_release(out);
        out->device_used = dev;
    }
    return st;
}

static size_t mats(const struct tm_backend_ops *ops, enum tm_dtype dt, int64_t r, int64_t c)
{
    return ops->mat_bytes(dt, r, c);
}

size_t tm_fit_device_bytes(const struct tm_backend_ops *ops, const struct tm_model_params *p,
                           int64_t m, int64_t n, int64_t nnz)
{
    enum tm_dtype dt = p->dtype;
    int64_t k = p->n_topics, mn = m < n ? m : n, a = m > n ? m : n, b = mn;
    if (p->method == TM_METHOD_FULL_SVD)
        return 0; /* host only: tm_svd_full_bytes */
    int64_t l = k + (p->n_oversamples > 0 ? p->n_oversamples : 0);
    if (l > mn)
        l = mn;
    size_t rsvd =
        mats(ops, dt, b, l) * 2 + mats(ops, dt, a, l) + mats(ops, dt, l, l) + mats(ops, dt, a, k);
    size_t body;
    if (p->method == TM_METHOD_TRUNCATED_SVD && p->algorithm == TM_SVD_LANCZOS) {
        int64_t bs = (k + 3) / 4 < 3 ? 3 : (k + 3) / 4 > 16 ? 16 : (k + 3) / 4;
        int64_t work = k + 7 * bs < b ? k + 7 * bs : b;
        body = 3 * mats(ops, dt, b, work) + mats(ops, dt, b, bs) + mats(ops, dt, a, bs) +
               mats(ops, dt, work, work) + mats(ops, dt, work, bs) + mats(ops, dt, a, k);
        l = bs > k ? bs : k;
    } else if (p->method == TM_METHOD_TRUNCATED_SVD) {
        body = rsvd;
    } else {
        body = 2 * mats(ops, dt, m, k) + 2 * mats(ops, dt, n, k) + 2 * mats(ops, dt, k, k);
        /* mu, pgd: their denominators; hals: its last iterates (extrapolation) */
        if (p->solver != TM_NMF_CD)
            body += mats(ops, dt, m, k) + mats(ops, dt, n, k);
        /* minibatch: A, B and the numerator (n x k each), W_b's products,
         * and a batch of X (at most X's non-zeros) */
        if (p->solver == TM_NMF_MINIBATCH) {
            int64_t bs = p->batch_size < m ? p->batch_size : m;
            body += 2 * mats(ops, dt, n, k) + 3 * mats(ops, dt, bs, k) + mats(ops, dt, n, 1);
            size_t batch = ops->sparse_bytes(dt, bs, n, nnz, k);
            if (batch == SIZE_MAX || batch > SIZE_MAX - body)
                return SIZE_MAX;
            body += batch;
        }
        int random = p->init == TM_NMF_INIT_RANDOM || (p->init == TM_NMF_INIT_AUTO && k > mn);
        if (!random && rsvd > body)
            body = rsvd;
        l = k > l ? k : l;
    }
    size_t corpus = ops->sparse_bytes(dt, m, n, nnz, l);
    if (corpus == SIZE_MAX || corpus > SIZE_MAX - body)
        return SIZE_MAX;
    return corpus + body;
}
