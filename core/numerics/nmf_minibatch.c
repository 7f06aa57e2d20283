/* nmf_minibatch.c - scikit-learn's MiniBatchNMF on the backend (see nmf_minibatch.h). */
#include "core/numerics/nmf_minibatch.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"

/* What every W solve and step reads: the backend, the sizes, the W
 * penalties (scaled by n_features alone, the same for every batch), and H's
 * Gram and row sums, kept current by the caller. */
struct mb {
    const struct tm_backend_ops *ops;
    void *ctx;
    int64_t k;
    int kl;
    double l1w, l2w, tol;
    double passes;     /* in passes over X: products with a batch count their share */
    struct tm_bmat gh; /* k x k: H H^T */
    double *sh;        /* k host values: H's row sums (KL) */
};

static tm_status numeric(char *err, const char *what)
{
    return tm_errf(err, TM_ENUMERIC, "nmf: the minibatch %s became NaN or Inf", what);
}

/* Sum and sum of squares of rows [r0, r0 + rows) of x. */
static void row_sums(const struct tm_csr *x, int64_t r0, int64_t rows, double *sum, double *sq)
{
    double s = 0.0, q = 0.0;
    for (int64_t i = x->indptr[r0]; i < x->indptr[r0 + rows]; i++) {
        s += x->data[i];
        q += x->data[i] * x->data[i];
    }
    *sum = s;
    *sq = q;
}

/*
 * _solve_W: w (rows x k, may be a view) from the constant sqrt(mean / k),
 * multiplicative updates against xs (rows of X, whose values' mean is mean)
 * with H fixed (ht, and s->gh, s->sh current) until
 * ||W - W_prev||_F / ||W||_F <= s->tol (when tol > 0) or max_iter updates.
 * p, d, e: rows x k workspace; on return p holds X Ht (frobenius). share:
 * the part of a pass one product with xs is. *n_iter: the updates made.
 * progress: reported per update (NULL: none).
 */
static tm_status solve_w(struct mb *s, const struct tm_bsparse *xs, double share, double mean,
                         const struct tm_bmat *ht, const struct tm_bmat *w, const struct tm_bmat *p,
                         const struct tm_bmat *d, const struct tm_bmat *e, int64_t max_iter,
                         const struct tm_progress *progress, int64_t *n_iter, char *err)
{
    const struct tm_backend_ops *ops = s->ops;
    tm_status st = ops->fill(s->ctx, w, sqrt(mean / (double)s->k), err);
    if (st == TM_OK && !s->kl) {
        s->passes += share;
        st = ops->spmm(s->ctx, xs, TM_NOTRANS, 1.0, ht, 0.0, p, err);
    }
    int64_t it;
    for (it = 0; st == TM_OK && it < max_iter; it++) {
        double diff2 = 0.0, norm2 = 0.0;
        st = ops->copy(s->ctx, w, e, err);
        if (st == TM_OK && s->kl) {
            s->passes += share;
            st = ops->kl_spmm(s->ctx, xs, TM_NOTRANS, w, ht, TM_NMF_EPSILON, p, err);
            if (st == TM_OK)
                st = ops->mu_update(s->ctx, w, p, NULL, s->sh, s->l1w, s->l2w, 0.0, err);
        } else if (st == TM_OK) {
            st = ops->gemm(s->ctx, TM_NOTRANS, TM_NOTRANS, 1.0, w, &s->gh, 0.0, d, err);
            if (st == TM_OK)
                st = ops->mu_update(s->ctx, w, p, d, NULL, s->l1w, s->l2w, 0.0, err);
        }
        if (st == TM_OK)
            st = ops->axpy(s->ctx, -1.0, w, e, err); /* e = W_prev - W */
        if (st == TM_OK)
            st = ops->dot(s->ctx, e, e, &diff2, err);
        if (st == TM_OK)
            st = ops->dot(s->ctx, w, w, &norm2, err);
        if (st != TM_OK)
            break;
        if (!isfinite(diff2) || !isfinite(norm2))
            return numeric(err, "W");
        if (tm_progress_report(progress, "nmf", (double)(it + 1) / (double)max_iter) != 0)
            return tm_errf(err, TM_ECANCELLED, "nmf: cancelled after %lld iterations",
                           (long long)(it + 1));
        /* A zero W gives 0 / 0, which is not <= tol: scikit-learn goes on too. */
        if (s->tol > 0 && sqrt(diff2) / sqrt(norm2) <= s->tol) {
            it++;
            break;
        }
    }
    *n_iter = it;
    return st;
}

/* The error of w, ht on all of X (reconstruction_err_): frobenius from
 * p = X Ht (m x k), KL by a pass. s->gh and s->sh are ht's. */
static tm_status full_error(struct mb *s, const struct tm_bsparse *xb, double norm_x2,
                            const struct tm_bmat *w, const struct tm_bmat *ht,
                            const struct tm_bmat *p, const struct tm_bmat *gw, double *sw,
                            double *error, char *err)
{
    const struct tm_backend_ops *ops = s->ops;
    tm_status st;
    double r;
    if (s->kl) {
        double part, sum_wh = 0.0;
        s->passes += 1.0;
        if ((st = ops->kl_sum(s->ctx, xb, w, ht, TM_NMF_EPSILON, &part, err)) ||
            (st = ops->col_sums(s->ctx, w, sw, err)))
            return st;
        for (int64_t t = 0; t < s->k; t++)
            sum_wh += sw[t] * s->sh[t];
        r = 2.0 * (part + sum_wh);
    } else {
        double cross, wh;
        if ((st = ops->dot(s->ctx, p, w, &cross, err)) || (st = ops->gram(s->ctx, w, gw, err)) ||
            (st = ops->dot(s->ctx, gw, &s->gh, &wh, err)))
            return st;
        r = norm_x2 + wh - 2.0 * cross;
    }
    *error = sqrt(r > 0.0 ? r : 0.0);
    return isfinite(*error) && isfinite(r) ? TM_OK : numeric(err, "error");
}

/* H's Gram (and row sums for KL) into s. */
static tm_status h_stats(struct mb *s, const struct tm_bmat *ht, char *err)
{
    tm_status st = s->ops->gram(s->ctx, ht, &s->gh, err);
    if (st == TM_OK && s->kl)
        st = s->ops->col_sums(s->ctx, ht, s->sh, err);
    return st;
}

/* The penalties of the batch cost: l1 * sum + l2 * sum of squares of W_b
 * and of H, the sums of squares as the traces of their Grams (gw: W_b's). */
static tm_status penalties(struct mb *s, const struct tm_bmat *wb, const struct tm_bmat *ht,
                           const struct tm_bmat *gw, double l1h, double l2h, double *host,
                           double *out, char *err)
{
    const struct tm_backend_ops *ops = s->ops;
    int64_t k = s->k;
    double ws = 0.0, hs = 0.0, w2 = 0.0, h2 = 0.0;
    tm_status st;
    if ((st = ops->col_sums(s->ctx, wb, host, err)))
        return st;
    for (int64_t t = 0; t < k; t++)
        ws += host[t];
    if ((st = ops->col_sums(s->ctx, ht, host, err)))
        return st;
    for (int64_t t = 0; t < k; t++)
        hs += host[t];
    if ((st = ops->download(s->ctx, gw, host, k, err)))
        return st;
    for (int64_t t = 0; t < k; t++)
        w2 += host[t + t * k];
    if ((st = ops->download(s->ctx, &s->gh, host, k, err)))
        return st;
    for (int64_t t = 0; t < k; t++)
        h2 += host[t + t * k];
    *out = s->l1w * ws + l1h * hs + s->l2w * w2 + l2h * h2;
    return TM_OK;
}

tm_status tm__nmf_minibatch_fit(const struct tm_backend_ops *ops, void *ctx, const struct tm_csr *X,
                                const struct tm_bsparse *Xb, const struct tm_model_params *params,
                                struct tm_bmat *w, struct tm_bmat *ht,
                                const struct tm_progress *progress, struct tm_nmf_result *out,
                                char *err)
{
    tm_status st = TM_OK;
    const int64_t m = X->n_rows, n = X->n_cols, k = w->cols, nnz = tm_csr_nnz(X);
    const int64_t bs = params->batch_size > 0 && params->batch_size < m ? params->batch_size : m;
    const int64_t per_epoch = (m + bs - 1) / bs;
    const int64_t max_iter = params->max_iter > 0 ? params->max_iter : 200;
    const int64_t max_steps = max_iter > INT64_MAX / per_epoch ? INT64_MAX : max_iter * per_epoch;
    const double rho = pow(params->forget_factor, (double)bs / (double)m);
    const double alpha_h = params->alpha_H < 0 ? params->alpha_W : params->alpha_H;
    const double l1_ratio = params->l1_ratio;
    const int kl = params->beta_loss == TM_BETA_KL;
    struct mb s = {ops,
                   ctx,
                   k,
                   kl,
                   (double)n * params->alpha_W * l1_ratio,
                   (double)n * params->alpha_W * (1.0 - l1_ratio),
                   params->tol,
                   0.0,
                   {0},
                   NULL};
    struct tm_bmat a = {0}, b = {0}, num = {0}, gw = {0}, p = {0}, d = {0}, e = {0}, ones = {0},
                   row = {0};
    struct tm_bsparse *xs = NULL;
    struct tm_csr xbatch = {0};
    /* host scalars: rho per column, ones, a row to add, W_b's and H's sums,
     * and a k x k Gram */
    double *host = tm_mallocarray((size_t)k * (size_t)(k + 5), sizeof(double));
    int64_t *indptr = tm_mallocarray((size_t)bs + 1, sizeof(int64_t));
    if (!host || !indptr) {
        st = tm_errf(err, TM_ENOMEM, "nmf: cannot allocate the minibatch workspace");
        goto out;
    }
    double *rhos = host, *onesk = host + k, *rowv = host + 2 * k, *sw = host + 3 * k;
    double *gk = host + 5 * k;
    s.sh = host + 4 * k;
    for (int64_t t = 0; t < k; t++) {
        rhos[t] = rho;
        onesk[t] = 1.0;
    }
    TM_TRY(ops->mat_alloc(ctx, k, k, &s.gh, err));
    TM_TRY(ops->mat_alloc(ctx, k, k, &gw, err));
    TM_TRY(ops->mat_alloc(ctx, n, k, &a, err));
    TM_TRY(ops->mat_alloc(ctx, n, k, &b, err));
    TM_TRY(ops->mat_alloc(ctx, n, k, &num, err));
    TM_TRY(ops->mat_alloc(ctx, bs, k, &p, err));
    TM_TRY(ops->mat_alloc(ctx, bs, k, &d, err));
    if (params->fresh_restarts)
        TM_TRY(ops->mat_alloc(ctx, bs, k, &e, err));
    if (kl || (alpha_h > 0 && l1_ratio > 0)) { /* B += a row, as ones (n x 1) times row (1 x k) */
        TM_TRY(ops->mat_alloc(ctx, n, 1, &ones, err));
        TM_TRY(ops->mat_alloc(ctx, 1, k, &row, err));
        TM_TRY(ops->fill(ctx, &ones, 1.0, err));
    }
    TM_TRY(ops->copy(ctx, ht, &a, err)); /* _components_numerator = H.copy() */
    TM_TRY(ops->fill(ctx, &b, 1.0, err));

    double ewa = 0.0, ewa_min = 0.0;
    int have_ewa = 0, have_min = 0;
    int64_t no_improvement = 0, step;
    for (step = 0; step < max_steps;) {
        const int64_t r0 = (step % per_epoch) * bs, rows = m - r0 < bs ? m - r0 : bs;
        const int64_t off = X->indptr[r0];
        for (int64_t i = 0; i <= rows; i++)
            indptr[i] = X->indptr[r0 + i] - off;
        xbatch.n_rows = rows;
        xbatch.n_cols = n;
        xbatch.indptr = indptr;
        xbatch.indices = X->indices + off;
        xbatch.data = X->data + off;
        const double share = nnz > 0 ? (double)indptr[rows] / (double)nnz : 0.0;
        const double l1h = (double)rows * alpha_h * l1_ratio;
        const double l2h = (double)rows * alpha_h * (1.0 - l1_ratio);
        struct tm_bmat wb = tm_bmat_block(w, r0, rows, 0, k), pb = tm_bmat_block(&p, 0, rows, 0, k),
                       db = tm_bmat_block(&d, 0, rows, 0, k);
        double xsum, xsq, loss, cost;
        row_sums(X, r0, rows, &xsum, &xsq);
        TM_TRY(ops->sparse_upload(ctx, &xbatch, &xs, err));
        TM_TRY(h_stats(&s, ht, err));

        /* W_b */
        if (params->fresh_restarts) {
            struct tm_bmat eb = tm_bmat_block(&e, 0, rows, 0, k);
            int64_t used;
            TM_TRY(solve_w(&s, xs, share, xsum / ((double)rows * (double)n), ht, &wb, &pb, &db, &eb,
                           params->fresh_restarts_max_iter, NULL, &used, err));
        } else if (kl) {
            s.passes += share;
            TM_TRY(ops->kl_spmm(ctx, xs, TM_NOTRANS, &wb, ht, TM_NMF_EPSILON, &pb, err));
            TM_TRY(ops->mu_update(ctx, &wb, &pb, NULL, s.sh, s.l1w, s.l2w, 0.0, err));
        } else {
            s.passes += share;
            TM_TRY(ops->spmm(ctx, xs, TM_NOTRANS, 1.0, ht, 0.0, &pb, err));
            TM_TRY(ops->gemm(ctx, TM_NOTRANS, TM_NOTRANS, 1.0, &wb, &s.gh, 0.0, &db, err));
            TM_TRY(ops->mu_update(ctx, &wb, &pb, &db, NULL, s.l1w, s.l2w, 0.0, err));
        }

        /* The batch cost: new W_b, H before its update. */
        TM_TRY(ops->gram(ctx, &wb, &gw, err));
        if (kl) {
            double part, sum_wh = 0.0;
            s.passes += share;
            TM_TRY(ops->kl_sum(ctx, xs, &wb, ht, TM_NMF_EPSILON, &part, err));
            TM_TRY(ops->col_sums(ctx, &wb, sw, err));
            for (int64_t t = 0; t < k; t++)
                sum_wh += sw[t] * s.sh[t];
            loss = part + sum_wh;
        } else {
            double cross, wh;
            TM_TRY(ops->dot(ctx, &pb, &wb, &cross, err));
            TM_TRY(ops->dot(ctx, &gw, &s.gh, &wh, err));
            loss = (xsq + wh - 2.0 * cross) / 2.0;
        }
        if (s.l1w > 0 || s.l2w > 0 || l1h > 0 || l2h > 0) {
            double pen;
            TM_TRY(penalties(&s, &wb, ht, &gw, l1h, l2h, gk, &pen, err));
            loss += pen;
        }
        cost = loss / (double)rows;
        if (!isfinite(cost)) {
            st = numeric(err, "batch cost");
            goto out;
        }

        /* H = A / B, A = rho A + numerator .* H, B = rho B + denominator */
        s.passes += share;
        if (kl) {
            TM_TRY(ops->kl_spmm(ctx, xs, TM_TRANS, ht, &wb, TM_NMF_EPSILON, &num, err));
            for (int64_t t = 0; t < k; t++)
                rowv[t] = (sw[t] == 0.0 ? 1.0 : sw[t]) + (l1h > 0 ? l1h : 0.0);
        } else {
            TM_TRY(ops->spmm(ctx, xs, TM_TRANS, 1.0, &wb, 0.0, &num, err));
            for (int64_t t = 0; t < k; t++)
                rowv[t] = l1h;
        }
        ops->sparse_free(ctx, xs);
        xs = NULL;
        TM_TRY(ops->mu_update(ctx, &num, ht, NULL, onesk, 0.0, 0.0, 0.0, err)); /* num .*= H */
        TM_TRY(ops->scale_cols(ctx, &a, rhos, err));
        TM_TRY(ops->axpy(ctx, 1.0, &num, &a, err));
        TM_TRY(ops->scale_cols(ctx, &b, rhos, err));
        if (!kl) /* B += H^T (W_b^T W_b), kept transposed: Ht gw */
            TM_TRY(ops->gemm(ctx, TM_NOTRANS, TM_NOTRANS, 1.0, ht, &gw, 1.0, &b, err));
        if (kl || l1h > 0) {
            TM_TRY(ops->upload(ctx, rowv, 1, &row, err));
            TM_TRY(ops->gemm(ctx, TM_NOTRANS, TM_NOTRANS, 1.0, &ones, &row, 1.0, &b, err));
        }
        if (l2h > 0)
            TM_TRY(ops->axpy(ctx, l2h, ht, &b, err));
        /* num, added into A, is free: it takes the new H */
        TM_TRY(ops->fill(ctx, &num, 1.0, err));
        TM_TRY(ops->mu_update(ctx, &num, &a, &b, NULL, 0.0, 0.0, kl ? DBL_EPSILON : 0.0, err));

        /* _minibatch_convergence, from the second step on */
        int stop = 0;
        if (step > 0) {
            double alpha = (double)rows / ((double)m + 1.0), diff2, norm2;
            alpha = alpha < 1.0 ? alpha : 1.0;
            ewa = have_ewa ? ewa * (1.0 - alpha) + cost * alpha : cost;
            have_ewa = 1;
            TM_TRY(ops->axpy(ctx, -1.0, &num, ht, err)); /* ht = H_prev - H */
            TM_TRY(ops->dot(ctx, ht, ht, &diff2, err));
            TM_TRY(ops->dot(ctx, &num, &num, &norm2, err));
            if (!isfinite(diff2) || !isfinite(norm2)) {
                st = numeric(err, "H");
                goto out;
            }
            if (s.tol > 0 && sqrt(diff2) / sqrt(norm2) <= s.tol) {
                stop = 1;
            } else {
                if (!have_min || ewa < ewa_min) {
                    no_improvement = 0;
                    ewa_min = ewa;
                    have_min = 1;
                } else {
                    no_improvement++;
                }
                if (params->max_no_improvement > 0 && no_improvement >= params->max_no_improvement)
                    stop = 1;
            }
        }
        struct tm_bmat tmp = *ht; /* the new H becomes ht; num is the next step's room */
        *ht = num;
        num = tmp;
        step++;
        if (step % per_epoch == 0 || stop || step == max_steps) {
            double r = 2.0 * (double)m * (have_ewa ? ewa : cost);
            out->trace[out->n_trace++] = sqrt(r > 0.0 ? r : 0.0);
        }
        if (tm_progress_report(progress, "nmf", (double)step / (double)max_steps) != 0) {
            st = tm_errf(err, TM_ECANCELLED, "nmf: cancelled after %lld minibatch steps",
                         (long long)step);
            goto out;
        }
        if (stop)
            break;
    }
    out->n_steps = step;
    out->n_iter = (step + per_epoch - 1) / per_epoch;

    /* The factors as scikit-learn returns them, and its error on all of X. */
    ops->mat_free(ctx, &e);
    ops->mat_free(ctx, &d);
    ops->mat_free(ctx, &p);
    ops->mat_free(ctx, &num);
    ops->mat_free(ctx, &b);
    ops->mat_free(ctx, &a);
    TM_TRY(h_stats(&s, ht, err));
    if (!kl || params->fresh_restarts)
        TM_TRY(ops->mat_alloc(ctx, m, k, &p, err));
    if (params->fresh_restarts) {
        int64_t used, tmax = params->transform_max_iter > 0 ? params->transform_max_iter : max_iter;
        double xsum, xsq;
        row_sums(X, 0, m, &xsum, &xsq);
        TM_TRY(ops->mat_alloc(ctx, m, k, &d, err));
        TM_TRY(ops->mat_alloc(ctx, m, k, &e, err));
        TM_TRY(solve_w(&s, Xb, 1.0, xsum / ((double)m * (double)n), ht, w, &p, &d, &e, tmax, NULL,
                       &used, err));
        ops->mat_free(ctx, &e);
        ops->mat_free(ctx, &d);
        if (kl)
            ops->mat_free(ctx, &p);
    } else if (!kl) {
        s.passes += 1.0;
        TM_TRY(ops->spmm(ctx, Xb, TM_NOTRANS, 1.0, ht, 0.0, &p, err));
    }
    TM_TRY(full_error(&s, Xb, tm_csr_frobenius_sq(X), w, ht, &p, &gw, sw, &out->error, err));
    out->passes_over_x = (int64_t)llround(s.passes);
out:
    if (xs)
        ops->sparse_free(ctx, xs);
    ops->mat_free(ctx, &row);
    ops->mat_free(ctx, &ones);
    ops->mat_free(ctx, &e);
    ops->mat_free(ctx, &d);
    ops->mat_free(ctx, &p);
    ops->mat_free(ctx, &num);
    ops->mat_free(ctx, &b);
    ops->mat_free(ctx, &a);
    ops->mat_free(ctx, &gw);
    ops->mat_free(ctx, &s.gh);
    tm_free(indptr);
    tm_free(host);
    return st;
}

tm_status tm__nmf_minibatch_transform(const struct tm_backend_ops *ops, void *ctx,
                                      const struct tm_csr *X, const struct tm_bsparse *Xb,
                                      const double *ht, int64_t k,
                                      const struct tm_model_params *params,
                                      const struct tm_progress *progress, struct tm_nmf_result *out,
                                      char *err)
{
    tm_status st = TM_OK;
    const int64_t m = X->n_rows, n = X->n_cols;
    const int64_t max_iter = params->max_iter > 0 ? params->max_iter : 200;
    const int64_t tmax = params->transform_max_iter > 0 ? params->transform_max_iter : max_iter;
    struct mb s = {ops,
                   ctx,
                   k,
                   params->beta_loss == TM_BETA_KL,
                   (double)n * params->alpha_W * params->l1_ratio,
                   (double)n * params->alpha_W * (1.0 - params->l1_ratio),
                   params->tol,
                   0.0,
                   {0},
                   NULL};
    struct tm_bmat w = {0}, h = {0}, p = {0}, d = {0}, e = {0}, gw = {0};
    double *host = tm_mallocarray((size_t)k * 2, sizeof(double));
    double xsum, xsq;
    memset(out, 0, sizeof(*out));
    out->m = m;
    out->n = n;
    out->k = k;
    if (!host) {
        st = tm_errf(err, TM_ENOMEM, "nmf: cannot allocate the %lld-topic transform", (long long)k);
        goto out;
    }
    s.sh = host;
    TM_TRY(ops->mat_alloc(ctx, n, k, &h, err));
    TM_TRY(ops->upload(ctx, ht, n, &h, err));
    TM_TRY(ops->mat_alloc(ctx, k, k, &s.gh, err));
    TM_TRY(ops->mat_alloc(ctx, k, k, &gw, err));
    TM_TRY(ops->mat_alloc(ctx, m, k, &w, err));
    TM_TRY(ops->mat_alloc(ctx, m, k, &p, err));
    TM_TRY(ops->mat_alloc(ctx, m, k, &d, err));
    TM_TRY(ops->mat_alloc(ctx, m, k, &e, err));
    TM_TRY(h_stats(&s, &h, err));
    row_sums(X, 0, m, &xsum, &xsq);
    TM_TRY(solve_w(&s, Xb, 1.0, xsum / ((double)m * (double)n), &h, &w, &p, &d, &e, tmax, progress,
                   &out->n_iter, err));
    ops->mat_free(ctx, &e);
    ops->mat_free(ctx, &d);
    TM_TRY(full_error(&s, Xb, xsq, &w, &h, &p, &gw, host + k, &out->error, err));
    out->passes_over_x = (int64_t)llround(s.passes);
    TM_TRY(tm_backend_give(ops, ctx, &w, &out->w, err));
out:
    ops->mat_free(ctx, &e);
    ops->mat_free(ctx, &d);
    ops->mat_free(ctx, &p);
    ops->mat_free(ctx, &w);
    ops->mat_free(ctx, &gw);
    ops->mat_free(ctx, &s.gh);
    ops->mat_free(ctx, &h);
    tm_free(host);
    return st;
}
