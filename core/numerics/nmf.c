/* nmf.c - NMF by HALS (cd, hals), multiplicative updates (mu) and pgd (see nmf.h). */
#include "core/numerics/nmf.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/numerics/nmf_minibatch.h"
#include "core/numerics/rng.h"
#include "core/numerics/svd.h"
#include "core/numerics/transpose.h"

void tm_nmf_result_release(struct tm_nmf_result *r)
{
    tm_free(r->w);
    tm_free(r->ht);
    tm_free(r->trace);
    memset(r, 0, sizeof(*r));
}

static double x_mean(const struct tm_csr *x)
{
    double sum = 0.0;
    int64_t nnz = tm_csr_nnz(x);
    for (int64_t q = 0; q < nnz; q++)
        sum += x->data[q];
    return sum / ((double)x->n_rows * (double)x->n_cols);
}

/* The norms of x's positive and of its negative part (as sqrt of sums in
 * index order); branch-free, as the signs of singular vectors are a coin
 * toss for the branch predictor. */
static void split_norms(const double *x, int64_t len, double *pos, double *neg)
{
    double p = 0.0, q = 0.0;
    for (int64_t i = 0; i < len; i++) {
        double sq = x[i] * x[i];
        p += x[i] > 0 ? sq : 0.0;
        q += x[i] > 0 ? 0.0 : sq;
    }
    *pos = sqrt(p);
    *neg = sqrt(q);
}

/* a[i] = fill where !(a[i] >= 1e-6) (NaN included), branch-free. */
static void floor_to(double *a, size_t len, double fill)
{
    for (size_t i = 0; i < len; i++)
        a[i] = a[i] >= 1e-6 ? a[i] : fill;
}

static tm_status alloc_factors(int64_t m, int64_t n, int64_t k, double **w, double **ht, char *err)
{
    *w = tm_mallocarray((size_t)m * (size_t)k + 1, sizeof(double));
    *ht = tm_mallocarray((size_t)n * (size_t)k + 1, sizeof(double));
    if (!*w || !*ht)
        return tm_errf(err, TM_ENOMEM, "nmf: cannot allocate the %lld-topic factors", (long long)k);
    return TM_OK;
}

/*
 * scikit-learn's _initialize_nmf into host *w_out (m x k) and *ht_out (n x k),
 * returned owned (tm_free; also on failure, where either may be NULL). The
 * nndsvd* inits make them in the buffers of their SVD's U and V, after the
 * SVD has freed its work matrices: the peak holds one copy of each.
 */
static tm_status nmf_init(const struct tm_backend_ops *ops, void *ctx, const struct tm_csr *x,
                          const struct tm_bsparse *xb, int64_t k,
                          const struct tm_model_params *params, double **w_out, double **ht_out,
                          char *err)
{
    double *w, *ht;
    tm_status st;
    int64_t m = x->n_rows, n = x->n_cols, mn = m < n ? m : n;
    enum tm_nmf_init init = params->init;
    struct tm_rng rng;
    tm_rng_init(&rng, params->seed);
    if (init == TM_NMF_INIT_AUTO)
        init = k <= mn ? TM_NMF_INIT_NNDSVDA : TM_NMF_INIT_RANDOM;
    if (init != TM_NMF_INIT_RANDOM && k > mn)
        return tm_errf(err, TM_ERANGE,
                       "model.init: nndsvd* needs n_topics <= min(n_documents, n_features)");
    double mean = x_mean(x);
    if (init == TM_NMF_INIT_RANDOM) {
        if ((st = alloc_factors(m, n, k, w_out, ht_out, err)) != TM_OK)
            return st;
        w = *w_out;
        ht = *ht_out;
        double avg = sqrt(mean / (double)k);
        /* H (k x n) first, then W (m x k), each in C order. */
        for (int64_t t = 0; t < k; t++)
            for (int64_t j = 0; j < n; j++)
                ht[j + (size_t)t * n] = fabs(avg * tm_rng_normal(&rng));
        for (int64_t i = 0; i < m; i++)
            for (int64_t t = 0; t < k; t++)
                w[i + (size_t)t * m] = fabs(avg * tm_rng_normal(&rng));
        return TM_OK;
    }
    struct tm_model_params sp = *params;
    sp.n_oversamples = 10;
    sp.n_iter = -1;
    sp.power_iteration_normalizer = TM_PIN_AUTO;
    struct tm_svd_result svd;
    st = tm_svd_randomized(ops, ctx, xb, m, n, k, &sp, NULL, &svd, err);
    if (st != TM_OK) {
        tm_svd_result_release(&svd);
        return st;
    }
    /* Each column of W and Ht comes from the same column of U or V alone
     * (and its norms, taken first): made in U's and V's place. */
    w = *w_out = svd.u;
    ht = *ht_out = svd.v;
    svd.u = svd.v = NULL;
    for (int64_t j = 0; j < k; j++) {
        double *wc = w + (size_t)j * m, *hc = ht + (size_t)j * n;
        const double *xv = wc, *yv = hc; /* read before written, element by element */
        if (j == 0) {
            double r = sqrt(svd.s[0]);
            for (int64_t i = 0; i < m; i++)
                wc[i] = r * fabs(xv[i]);
            for (int64_t i = 0; i < n; i++)
                hc[i] = r * fabs(yv[i]);
            continue;
        }
        double xp, xn, yp, yn;
        split_norms(xv, m, &xp, &xn);
        split_norms(yv, n, &yp, &yn);
        double mp = xp * yp, mneg = xn * yn;
        int pos = mp > mneg;
        double sigma = pos ? mp : mneg, lbd = sqrt(svd.s[j] * sigma);
        double xs = pos ? xp : xn, ys = pos ? yp : yn;
        for (int64_t i = 0; i < m; i++) {
            double v = pos ? (xv[i] > 0 ? xv[i] : 0) : (xv[i] < 0 ? -xv[i] : 0);
            wc[i] = lbd * (v / xs); /* scikit-learn's lbd * u, u = x_p / x_p_nrm */
        }
        for (int64_t i = 0; i < n; i++) {
            double v = pos ? (yv[i] > 0 ? yv[i] : 0) : (yv[i] < 0 ? -yv[i] : 0);
            hc[i] = lbd * (v / ys);
        }
    }
    tm_svd_result_release(&svd);
    /* W[W < eps] = 0 (also the NaNs of a 0/0 above, which compare false);
     * nndsvda then fills the zeros with the mean. */
    const double fill = init == TM_NMF_INIT_NNDSVDA ? mean : 0.0;
    floor_to(w, (size_t)m * (size_t)k, fill);
    floor_to(ht, (size_t)n * (size_t)k, fill);
    if (init == TM_NMF_INIT_NNDSVDAR) {
        /* A fresh RandomState(seed), zeros of W then of H in C order. */
        tm_rng_init(&rng, params->seed);
        for (int64_t i = 0; i < m; i++)
            for (int64_t t = 0; t < k; t++)
                if (w[i + (size_t)t * m] == 0.0)
                    w[i + (size_t)t * m] = fabs(mean * tm_rng_normal(&rng) / 100.0);
        for (int64_t t = 0; t < k; t++)
            for (int64_t j = 0; j < n; j++)
                if (ht[j + (size_t)t * n] == 0.0)
                    ht[j + (size_t)t * n] = fabs(mean * tm_rng_normal(&rng) / 100.0);
    }
    return TM_OK;
}

struct nmf_state {
    const struct tm_backend_ops *ops;
    void *ctx;
    const struct tm_bsparse *xb;
    double norm_x2;
    struct tm_bmat w, ht, gh, gw, xht, xtw, dm, dn;
    /* The fused halves' factors: W and Ht transposed, which take the place
     * of w and ht (turn) while those halves run. */
    struct tm_bmat wt, htt;
    /* hals's extrapolation: the last iterates before extrapolation (with
     * hals_inner_fused, transposed as wt and htt are), and the Gram matrix
     * of the extrapolated Ht that hals_inner_fused makes beside gh */
    struct tm_bmat wp, htp, gh_hat;
    double *betas;  /* k host values, scale_cols's argument */
    int64_t passes; /* products with X or X^T so far (tm_nmf_result's passes_over_x) */
};

/* What a fit and a transform start from: out zeroed with its sizes, s on
 * (ops, ctx) with X's squared norm, and k host scalars for the sweeps'
 * scales (*sw, *sh) and order (*perm), owned by the caller (tm_free). */
static tm_status nmf_begin(struct nmf_state *s, struct tm_nmf_result *out,
                           const struct tm_backend_ops *ops, void *ctx, const struct tm_csr *X,
                           const struct tm_bsparse *Xb, int64_t k, double **sw, double **sh,
                           int64_t **perm)
{
    memset(out, 0, sizeof(*out));
    out->m = X->n_rows;
    out->n = X->n_cols;
    out->k = k;
    s->ops = ops;
    s->ctx = ctx;
    s->xb = Xb;
    s->norm_x2 = tm_csr_frobenius_sq(X);
    *sw = tm_mallocarray((size_t)k, sizeof(double));
    *sh = tm_mallocarray((size_t)k, sizeof(double));
    *perm = tm_mallocarray((size_t)k, sizeof(int64_t));
    return *sw && *sh && *perm ? TM_OK : TM_ENOMEM;
}

/* sqrt(max(||X||^2 - 2 cross + <W^T W, Ht^T Ht>, 0)), cross = <X^T W, Ht>,
 * from cross, gw and gh. */
static tm_status frob_error_cross(struct nmf_state *s, double cross, double *error, char *err)
{
    double wh;
    tm_status st = s->ops->dot(s->ctx, &s->gw, &s->gh, &wh, err);
    if (st != TM_OK)
        return st;
    double r = s->norm_x2 - 2.0 * cross + wh;
    *error = sqrt(r > 0.0 ? r : 0.0);
    if (!isfinite(*error) || !isfinite(r))
        return tm_errf(err, TM_ENUMERIC, "nmf: the reconstruction error became NaN or Inf");
    return TM_OK;
}

/* The same from xtw, gw and gh. */
static tm_status frob_error(struct nmf_state *s, double *error, char *err)
{
    double cross;
    tm_status st = s->ops->dot(s->ctx, &s->xtw, &s->ht, &cross, err);
    return st != TM_OK ? st : frob_error_cross(s, cross, error, err);
}

/* Full Frobenius error of the current W, Ht: recomputes X^T W and the grams. */
static tm_status frob_error_fresh(struct nmf_state *s, double *error, char *err)
{
    tm_status st;
    s->passes++;
    if ((st = s->ops->spmm(s->ctx, s->xb, TM_TRANS, 1.0, &s->w, 0.0, &s->xtw, err)) ||
        (st = s->ops->gram(s->ctx, &s->w, &s->gw, err)) ||
        (st = s->ops->gram(s->ctx, &s->ht, &s->gh, err)))
        return st;
    return frob_error(s, error, err);
}

#define CROSS_BLOCK 8 /* columns of X^T W made at a time by cross_by_columns */

/* <X^T W, Ht> without the n x k X^T W, CROSS_BLOCK columns at a time. */
static tm_status cross_by_columns(struct nmf_state *s, double *cross, char *err)
{
    int64_t n = s->ht.rows, k = s->ht.cols, bw = k < CROSS_BLOCK ? k : CROSS_BLOCK;
    struct tm_bmat p = {0};
    tm_status st = s->ops->mat_alloc(s->ctx, n, bw, &p, err);
    *cross = 0.0;
    for (int64_t c0 = 0; st == TM_OK && c0 < k; c0 += bw) {
        int64_t w = k - c0 < bw ? k - c0 : bw;
        struct tm_bmat wb = tm_bmat_cols(&s->w, c0, w), pb = tm_bmat_cols(&p, 0, w),
                       hb = tm_bmat_cols(&s->ht, c0, w);
        double part = 0.0;
        s->passes++;
        st = s->ops->spmm(s->ctx, s->xb, TM_TRANS, 1.0, &wb, 0.0, &pb, err);
        if (st == TM_OK)
            st = s->ops->dot(s->ctx, &pb, &hb, &part, err);
        *cross += part;
    }
    s->ops->mat_free(s->ctx, &p);
    return st;
}

/* *from (rows x cols) becomes *to (cols x rows, its transpose), turned in
 * place on the host: the factor is never in memory twice. */
static tm_status turn(struct nmf_state *s, struct tm_bmat *from, struct tm_bmat *to, char *err)
{
    int64_t rows = from->rows, cols = from->cols;
    double *host = NULL;
    tm_status st = tm_backend_give(s->ops, s->ctx, from, &host, err);
    if (st == TM_OK)
        st = tm_transpose_inplace(host, rows, cols, err);
    if (st == TM_OK)
        st = tm_backend_take(s->ops, s->ctx, &host, cols, rows, to, err);
    tm_free(host);
    return st;
}

/* sqrt(2 * generalized KL(X, W H)), scikit-learn's _beta_divergence(beta=1). */
static tm_status kl_error(struct nmf_state *s, double *sw, double *sh, double *error, char *err)
{
    double part, sum_wh = 0.0;
    int64_t k = s->w.cols;
    tm_status st;
    s->passes++;
    if ((st = s->ops->kl_sum(s->ctx, s->xb, &s->w, &s->ht, TM_NMF_EPSILON, &part, err)) ||
        (st = s->ops->col_sums(s->ctx, &s->w, sw, err)) ||
        (st = s->ops->col_sums(s->ctx, &s->ht, sh, err)))
        return st;
    for (int64_t t = 0; t < k; t++)
        sum_wh += sw[t] * sh[t];
    double r = part + sum_wh;
    *error = sqrt(2.0 * (r > 0.0 ? r : 0.0));
    if (!isfinite(*error) || !isfinite(r))
        return tm_errf(err, TM_ENUMERIC, "nmf: the KL divergence became NaN or Inf");
    return TM_OK;
}

/* hals's inner loop (Gillis & Glineur 2012): the cap on the sweeps of a half
 * is 1 + alpha rho, with rho = 1 + (nnz + other k) / (rows (k + 1)), their
 * cost of the product and Gram (X Ht and H H^T for W) over a sweep's, so that
 * sweeps never cost much more than the product they reuse; the loop stops
 * earlier once a sweep's violation falls to HALS_INNER_RHO of the first's.
 * Both values were measured on 20 Newsgroups (bench/NOTES.md, "accelerated
 * HALS"). */
#define HALS_INNER_ALPHA 0.5
#define HALS_INNER_RHO 0.1

/* hals stops when its error fell by less than tol / HALS_TOL_DIV times its
 * first iteration's over the last HALS_WINDOW iterations (scikit-learn's mu
 * rule, checked every iteration and tighter): it reaches cd's error in a
 * fraction of cd's iterations and then creeps. Where both converge to one
 * minimum, tol / 100 stopped up to 4e-7 (relative) above cd's error, tol /
 * 1000 below it in every case measured (bench/NOTES.md, "hals follows cd's
 * minimum"). cd's violation rule does not stop hals: the extrapolated
 * sweeps bring the violation down to tol before the error settles, and it
 * stopped hals 1.7e-9 above cd's error on the short shape (bench/NOTES.md,
 * "hals stops on its own rule"). */
#define HALS_WINDOW 10
#define HALS_TOL_DIV 1000.0

/* hals's first HALS_WARMUP iterations are cd's (one sweep a half, no
 * extrapolation): the sweeps and the extrapolation of the first iterations,
 * where the factors move most, took hals into another local minimum than
 * cd's from the same init, above it on some corpora and seeds (up to 2e-4),
 * below on others. After 5 of cd's iterations it converged to cd's minimum
 * on every corpus and seed measured (bench/NOTES.md, "hals follows cd's
 * minimum"), so that hals is the fastest route to scikit-learn's answer. */
#define HALS_WARMUP 5

/* Ang & Gillis's extrapolation parameters (their recommended values): the
 * first beta, its cut on a restart (eta), its growth after a step that
 * lowered the error (gamma) and its cap's growth (gamma_bar, cap <= 1). */
#define EXTRA_BETA0 0.5
#define EXTRA_ETA 1.5
#define EXTRA_GAMMA 1.01
#define EXTRA_GAMMA_BAR 1.005

static int64_t hals_inner_cap(int64_t nnz, int64_t rows, int64_t other, int64_t k)
{
    double rho = 1.0 + ((double)nnz + (double)other * (double)k) / ((double)rows * (double)(k + 1));
    return 1 + (int64_t)(HALS_INNER_ALPHA * rho);
}

/*
 * Up to cap HALS sweeps of m against the same g and p (cd: cap 1, one sweep
 * per product). A sweep's violation is its projected gradient's at the
 * sweep's start, so *first, the first sweep's, is the half's violation at
 * its start point, as cd reports it; after sweep q > 1 the loop stops when
 * q's violation is within HALS_INNER_RHO of the first's: the subproblem is
 * nearly solved and more sweeps would not pay for themselves.
 */
static tm_status hals_sweeps(struct nmf_state *s, const struct tm_bmat *m, const struct tm_bmat *g,
                             const struct tm_bmat *p, double l1, double l2, const int64_t *perm,
                             int64_t cap, double *first, char *err)
{
    for (int64_t q = 0; q < cap; q++) {
        double v;
        tm_status st = s->ops->hals_sweep(s->ctx, m, g, p, l1, l2, perm, &v, err);
        if (st != TM_OK)
            return st;
        if (q == 0)
            *first = v;
        else if (!(v > HALS_INNER_RHO * *first)) /* NaN stops too: the caller checks first */
            break;
    }
    return TM_OK;
}

/*
 * Extrapolation between outer iterations (Ang & Gillis 2019): on entry m
 * holds the new iterate M_n and mp the previous M_{n-1}; on return
 * m = max(M_n + beta (M_n - M_{n-1}), 0) (projected, so that every error
 * hals reports is a non-negative factorization's) and mp = M_n, exactly (the
 * buffers swap, not a copy). The clamp is pgd_update with lr 0 (M = max(M -
 * 0 g, 0), g finite), rather than a new backend op.
 */
static tm_status extrapolate(struct nmf_state *s, struct tm_bmat *m, struct tm_bmat *mp,
                             double beta, char *err)
{
    tm_status st;
    int64_t k = m->cols;
    for (int64_t t = 0; t < k; t++)
        s->betas[t] = -beta;
    if ((st = s->ops->axpy(s->ctx, -1.0, m, mp, err)) != TM_OK) /* mp = -(M_n - M_{n-1}) */
        return st;
    struct tm_bmat tmp = *m;
    *m = *mp;
    *mp = tmp;
    if ((st = s->ops->scale_cols(s->ctx, m, s->betas, err)) ||
        (st = s->ops->axpy(s->ctx, 1.0, mp, m, err)))
        return st;
    return s->ops->pgd_update(s->ctx, m, mp, mp, 0.0, 0.0, 0.0, err);
}

static tm_status check_progress(const struct tm_progress *progress, int64_t it, int64_t max_iter,
                                char *err)
{
    if (tm_progress_report(progress, "nmf", (double)it / (double)max_iter) != 0)
        return tm_errf(err, TM_ECANCELLED, "nmf: cancelled after %lld iterations", (long long)it);
    return TM_OK;
}

tm_status tm_nmf_fit(const struct tm_backend_ops *ops, void *ctx, const struct tm_csr *X,
                     const struct tm_bsparse *Xb, int64_t k, const struct tm_model_params *params,
                     const struct tm_progress *progress, struct tm_nmf_result *out, char *err)
{
    return tm_nmf_fit_from(ops, ctx, X, Xb, k, params, NULL, progress, out, err);
}

tm_status tm_nmf_fit_from(const struct tm_backend_ops *ops, void *ctx, const struct tm_csr *X,
                          const struct tm_bsparse *Xb, int64_t k,
                          const struct tm_model_params *params, const struct tm_nmf_start *start,
                          const struct tm_progress *progress, struct tm_nmf_result *out, char *err)
{
    tm_status st = TM_OK;
    struct nmf_state s = {0};
    int64_t m = X->n_rows, n = X->n_cols;
    double *sw = NULL, *sh = NULL;
    int64_t *perm = NULL;
    double t0 = tm_clock_monotonic();
    tm_status began = nmf_begin(&s, out, ops, ctx, X, Xb, k, &sw, &sh, &perm);
    int64_t max_iter = params->max_iter > 0 ? params->max_iter : 200;
    double tol = params->tol;
    double alpha_w = params->alpha_W, alpha_h = params->alpha_H < 0 ? alpha_w : params->alpha_H;
    double l1w = (double)n * alpha_w * params->l1_ratio;
    double l1h = (double)m * alpha_h * params->l1_ratio;
    double l2w = (double)n * alpha_w * (1.0 - params->l1_ratio);
    double l2h = (double)m * alpha_h * (1.0 - params->l1_ratio);
    int kl = params->solver == TM_NMF_MU && params->beta_loss == TM_BETA_KL;
    /* hals: cd with several sweeps per product, fused where the backend
     * has hals_inner_fused (which also extrapolates). */
    const int hals = params->solver == TM_NMF_HALS, cd = params->solver == TM_NMF_CD || hals;
    const int64_t nnz = tm_csr_nnz(X);
    const int64_t cap_w = hals ? hals_inner_cap(nnz, m, n, k) : 1;
    const int64_t cap_h = hals ? hals_inner_cap(nnz, n, m, k) : 1;

    out->trace = tm_mallocarray((size_t)max_iter + 1, sizeof(double));
    if (!out->trace || began != TM_OK) {
        st = tm_errf(err, TM_ENOMEM, "nmf: cannot allocate the %lld-topic factors", (long long)k);
        goto out;
    }
    if (start && (start->k < 1 || start->k >= k || !start->w || !start->ht)) {
        st = tm_errf(err, TM_EINVAL, "nmf: a warm start of %lld topics for %lld",
                     (long long)start->k, (long long)k);
        goto out;
    }
    TM_TRY(nmf_init(ops, ctx, X, Xb, k, params, &out->w, &out->ht, err));
    if (start) { /* column-major: the first k0 columns are one block */
        memcpy(out->w, start->w, (size_t)m * (size_t)start->k * sizeof(double));
        memcpy(out->ht, start->ht, (size_t)n * (size_t)start->k * sizeof(double));
    }
    /* The host factors become the backend's (handed over where the
     * backend's memory is the host's, else uploaded and freed): peak memory
     * is the backend's factors and workspace, not both. */
    TM_TRY(tm_backend_take(ops, ctx, &out->w, m, k, &s.w, err));
    TM_TRY(tm_backend_take(ops, ctx, &out->ht, n, k, &s.ht, err));
    if (params->solver == TM_NMF_MINIBATCH) {
        out->seconds_init = tm_clock_monotonic() - t0;
        TM_TRY(tm__nmf_minibatch_fit(ops, ctx, X, Xb, params, &s.w, &s.ht, progress, out, err));
        TM_TRY(tm_backend_give(ops, ctx, &s.w, &out->w, err));
        TM_TRY(tm_backend_give(ops, ctx, &s.ht, &out->ht, err));
        goto out;
    }
    TM_TRY(ops->mat_alloc(ctx, k, k, &s.gh, err));
    TM_TRY(ops->mat_alloc(ctx, k, k, &s.gw, err));
    /* cd's and Frobenius mu's halves, fused where the backend can, never
     * store X Ht or X^T W (the latter the largest matrix of the fit after X,
     * when terms outnumber documents), nor mu's denominators W HHt, Ht WtW. */
    const int fused = params->solver == TM_NMF_CD && ops->hals_sweep_fused;
    const int fused_mu = params->solver == TM_NMF_MU && !kl && ops->mu_update_fused;
    const int fused_hals = hals && ops->hals_inner_fused;
    const int turned = fused || fused_mu || fused_hals;
    if (!turned) {
        TM_TRY(ops->mat_alloc(ctx, m, k, &s.xht, err));
        TM_TRY(ops->mat_alloc(ctx, n, k, &s.xtw, err));
    }
    if (!cd && !fused_mu) {
        TM_TRY(ops->mat_alloc(ctx, m, k, &s.dm, err));
        TM_TRY(ops->mat_alloc(ctx, n, k, &s.dn, err));
    }
    const int extra = hals;
    double beta = EXTRA_BETA0, beta_bar = 1.0, previous_hals = 0.0;
    if (extra) {
        s.betas = tm_mallocarray((size_t)k, sizeof(double));
        if (!s.betas) {
            st = tm_errf(err, TM_ENOMEM, "nmf: cannot allocate the %lld-topic factors",
                         (long long)k);
            goto out;
        }
        if (!fused_hals) { /* else after the turn below */
            TM_TRY(ops->mat_alloc(ctx, m, k, &s.wp, err));
            TM_TRY(ops->mat_alloc(ctx, n, k, &s.htp, err));
            TM_TRY(ops->copy(ctx, &s.w, &s.wp, err));
            TM_TRY(ops->copy(ctx, &s.ht, &s.htp, err));
        }
    }
    out->seconds_init = tm_clock_monotonic() - t0;

    struct tm_rng rng;
    tm_rng_init(&rng, params->seed);
    double error = 0.0, error_init = 0.0, previous = 0.0, violation_init = 0.0;
    int64_t it = 0;
    TM_TRY(ops->gram(ctx, &s.ht, &s.gh, err));
    if (params->solver == TM_NMF_MU) {
        if (kl) {
            TM_TRY(kl_error(&s, sw, sh, &error_init, err));
        } else if (fused_mu) {
            double cross;
            TM_TRY(cross_by_columns(&s, &cross, err));
            TM_TRY(ops->gram(ctx, &s.w, &s.gw, err));
            TM_TRY(frob_error_cross(&s, cross, &error_init, err));
        } else {
            TM_TRY(frob_error_fresh(&s, &error_init, err));
        }
        previous = error_init;
    }
    if (params->solver == TM_NMF_PGD) {
        TM_TRY(frob_error_fresh(&s, &error_init, err));
        previous = error_init;
    }
    if (turned) {
        TM_TRY(turn(&s, &s.w, &s.wt, err));
        TM_TRY(turn(&s, &s.ht, &s.htt, err));
    }
    if (fused_hals) {
        TM_TRY(ops->mat_alloc(ctx, k, m, &s.wp, err));
        TM_TRY(ops->mat_alloc(ctx, k, n, &s.htp, err));
        TM_TRY(ops->mat_alloc(ctx, k, k, &s.gh_hat, err));
        TM_TRY(ops->copy(ctx, &s.wt, &s.wp, err));
        TM_TRY(ops->copy(ctx, &s.htt, &s.htp, err));
    }
    for (it = 1; it <= max_iter; it++) {
        int stop = 0;
        /* hals's warm-up: cd's iterations (HALS_WARMUP) */
        const int warm = hals && it <= HALS_WARMUP;
        const int64_t sweeps_w = warm ? 1 : cap_w, sweeps_h = warm ? 1 : cap_h;
        const double step = warm ? 0.0 : beta;
        if (cd) {
            double v1, v2;
            for (int64_t t = 0; t < k; t++)
                perm[t] = t;
            if (params->shuffle) /* Fisher-Yates; not numpy's permutation draws */
                for (int64_t t = k - 1; t > 0; t--) {
                    int64_t r = (int64_t)tm_rng_below(&rng, (uint64_t)t + 1), tmp = perm[t];
                    perm[t] = perm[r];
                    perm[r] = tmp;
                }
            double cross;
            s.passes++;
            if (fused) {
                TM_TRY(ops->hals_sweep_fused(ctx, Xb, TM_NOTRANS, &s.wt, &s.htt, &s.gh, l1w, l2w,
                                             perm, &v1, &cross, &s.gw, err));
            } else if (fused_hals) { /* W's sweeps, its extrapolation and gw in one pass */
                TM_TRY(ops->hals_inner_fused(ctx, Xb, TM_NOTRANS, &s.wt, &s.htt, &s.gh, l1w, l2w,
                                             perm, sweeps_w, HALS_INNER_RHO, &s.wp, step, &v1, NULL,
                                             NULL, &s.gw, err));
            } else {
                TM_TRY(ops->spmm(ctx, Xb, TM_NOTRANS, 1.0, &s.ht, 0.0, &s.xht, err));
                TM_TRY(hals_sweeps(&s, &s.w, &s.gh, &s.xht, l1w, l2w, perm, sweeps_w, &v1, err));
                if (extra)
                    TM_TRY(extrapolate(&s, &s.w, &s.wp, step, err));
                TM_TRY(ops->gram(ctx, &s.w, &s.gw, err));
            }
            if (params->shuffle)
                for (int64_t t = k - 1; t > 0; t--) {
                    int64_t r = (int64_t)tm_rng_below(&rng, (uint64_t)t + 1), tmp = perm[t];
                    perm[t] = perm[r];
                    perm[r] = tmp;
                }
            s.passes++;
            if (fused) {
                TM_TRY(ops->hals_sweep_fused(ctx, Xb, TM_TRANS, &s.htt, &s.wt, &s.gw, l1h, l2h,
                                             perm, &v2, &cross, &s.gh, err));
                TM_TRY(frob_error_cross(&s, cross, &error, err));
            } else if (fused_hals) {
                /* Ht extrapolated too, unless this is the last iteration:
                 * where the loop stops or restarts below, that is undone;
                 * the error is (W extrapolated, Ht swept)'s, from gh. */
                TM_TRY(ops->hals_inner_fused(ctx, Xb, TM_TRANS, &s.htt, &s.wt, &s.gw, l1h, l2h,
                                             perm, sweeps_h, HALS_INNER_RHO,
                                             it < max_iter ? &s.htp : NULL, step, &v2, &cross,
                                             &s.gh, &s.gh_hat, err));
                TM_TRY(frob_error_cross(&s, cross, &error, err));
            } else {
                TM_TRY(ops->spmm(ctx, Xb, TM_TRANS, 1.0, &s.w, 0.0, &s.xtw, err));
                TM_TRY(hals_sweeps(&s, &s.ht, &s.gw, &s.xtw, l1h, l2h, perm, sweeps_h, &v2, err));
                TM_TRY(ops->gram(ctx, &s.ht, &s.gh, err));
                TM_TRY(frob_error(&s, &error, err));
            }
            double violation = v1 + v2;
            if (!isfinite(violation)) {
                st = tm_errf(err, TM_ENUMERIC, "nmf: the cd violation became NaN or Inf");
                goto out;
            }
            if (it == 1)
                violation_init = violation;
            /* hals stops on its own rule alone (HALS_TOL_DIV) */
            if (violation_init == 0.0 || (!hals && violation / violation_init <= tol))
                stop = 1;
        } else if (fused_mu) {
            /* gh = Ht^T Ht is current here. */
            double cross;
            s.passes += 2;
            TM_TRY(ops->mu_update_fused(ctx, Xb, TM_NOTRANS, &s.wt, &s.htt, &s.gh, l1w, l2w, &cross,
                                        &s.gw, err));
            TM_TRY(ops->mu_update_fused(ctx, Xb, TM_TRANS, &s.htt, &s.wt, &s.gw, l1h, l2h, &cross,
                                        &s.gh, err));
            TM_TRY(frob_error_cross(&s, cross, &error, err));
        } else if (params->solver == TM_NMF_MU && !kl) {
            s.passes += 2;
            TM_TRY(ops->spmm(ctx, Xb, TM_NOTRANS, 1.0, &s.ht, 0.0, &s.xht, err));
            TM_TRY(ops->gemm(ctx, TM_NOTRANS, TM_NOTRANS, 1.0, &s.w, &s.gh, 0.0, &s.dm, err));
            TM_TRY(ops->mu_update(ctx, &s.w, &s.xht, &s.dm, NULL, l1w, l2w, 0.0, err));
            TM_TRY(ops->gram(ctx, &s.w, &s.gw, err));
            TM_TRY(ops->spmm(ctx, Xb, TM_TRANS, 1.0, &s.w, 0.0, &s.xtw, err));
            TM_TRY(ops->gemm(ctx, TM_NOTRANS, TM_NOTRANS, 1.0, &s.ht, &s.gw, 0.0, &s.dn, err));
            TM_TRY(ops->mu_update(ctx, &s.ht, &s.xtw, &s.dn, NULL, l1h, l2h, 0.0, err));
            TM_TRY(ops->gram(ctx, &s.ht, &s.gh, err));
            TM_TRY(frob_error(&s, &error, err));
        } else if (kl) {
            s.passes += 2;
            TM_TRY(ops->col_sums(ctx, &s.ht, sh, err));
            TM_TRY(ops->kl_spmm(ctx, Xb, TM_NOTRANS, &s.w, &s.ht, TM_NMF_EPSILON, &s.xht, err));
            TM_TRY(ops->mu_update(ctx, &s.w, &s.xht, NULL, sh, l1w, l2w, 0.0, err));
            TM_TRY(ops->col_sums(ctx, &s.w, sw, err));
            for (int64_t t = 0; t < k; t++)
                if (sw[t] == 0.0)
                    sw[t] = 1.0;
            TM_TRY(ops->kl_spmm(ctx, Xb, TM_TRANS, &s.ht, &s.w, TM_NMF_EPSILON, &s.xtw, err));
            TM_TRY(ops->mu_update(ctx, &s.ht, &s.xtw, NULL, sw, l1h, l2h, DBL_EPSILON, err));
            if (tol > 0 && it % 10 == 0)
                TM_TRY(kl_error(&s, sw, sh, &error, err));
        } else { /* pgd */
            s.passes += 2;
            double lr = params->learning_rate / (1.0 + params->learning_rate_decay * (it - 1));
            TM_TRY(ops->spmm(ctx, Xb, TM_NOTRANS, 1.0, &s.ht, 0.0, &s.xht, err));
            TM_TRY(ops->gemm(ctx, TM_NOTRANS, TM_NOTRANS, 1.0, &s.w, &s.gh, 0.0, &s.dm, err));
            TM_TRY(ops->gram(ctx, &s.w, &s.gw, err));
            TM_TRY(ops->spmm(ctx, Xb, TM_TRANS, 1.0, &s.w, 0.0, &s.xtw, err));
            TM_TRY(ops->gemm(ctx, TM_NOTRANS, TM_NOTRANS, 1.0, &s.ht, &s.gw, 0.0, &s.dn, err));
            TM_TRY(ops->pgd_update(ctx, &s.w, &s.dm, &s.xht, lr, params->penalty,
                                   params->penalty_mu, err));
            TM_TRY(ops->pgd_update(ctx, &s.ht, &s.dn, &s.xtw, lr, params->penalty,
                                   params->penalty_mu, err));
            TM_TRY(frob_error_fresh(&s, &error, err));
        }
        if (!kl || (tol > 0 && it % 10 == 0))
            out->trace[out->n_trace++] = error;
        if (hals && tol > 0 && it > HALS_WINDOW &&
            (out->trace[it - 1 - HALS_WINDOW] - error) / out->trace[0] < tol / HALS_TOL_DIV)
            stop = 1;
        /* The error is (W extrapolated, Ht swept)'s, the pair returned when
         * the loop ends here: Ht is extrapolated only when it goes on. */
        if (extra && it < max_iter) {
            const int restart = !stop && !warm && it > 1 && error > previous_hals;
            if (fused_hals && (stop || restart)) /* Ht = the swept Ht (= htp) */
                TM_TRY(ops->copy(ctx, &s.htp, &s.htt, err));
            if (restart) { /* restart from the last iterates */
                if (fused_hals) {
                    TM_TRY(ops->copy(ctx, &s.wp, &s.wt, err));
                } else {
                    TM_TRY(ops->copy(ctx, &s.wp, &s.w, err));
                    TM_TRY(ops->copy(ctx, &s.ht, &s.htp, err));
                }
                beta_bar = beta;
                beta /= EXTRA_ETA;
            } else if (!stop) {
                if (fused_hals) { /* gh becomes the extrapolated Ht's */
                    struct tm_bmat tmp = s.gh;
                    s.gh = s.gh_hat;
                    s.gh_hat = tmp;
                } else {
                    TM_TRY(extrapolate(&s, &s.ht, &s.htp, step, err));
                    TM_TRY(ops->gram(ctx, &s.ht, &s.gh, err));
                }
                if (!warm) {
                    beta = fmin(beta_bar, EXTRA_GAMMA * beta);
                    beta_bar = fmin(1.0, EXTRA_GAMMA_BAR * beta_bar);
                }
            }
            previous_hals = error;
        }
        if (!cd && tol > 0 && it % 10 == 0) {
            if ((previous - error) / error_init < tol)
                stop = 1;
            previous = error;
        }
        TM_TRY(check_progress(progress, it, max_iter, err));
        if (stop)
            break;
    }
    out->n_iter = it > max_iter ? max_iter : it;
    if (kl) {
        TM_TRY(kl_error(&s, sw, sh, &error, err));
        if (out->n_trace == 0 || out->n_iter % 10 != 0)
            out->trace[out->n_trace++] = error;
    }
    out->error = error;
    out->passes_over_x = s.passes;
    ops->mat_free(ctx, &s.dn);
    ops->mat_free(ctx, &s.dm);
    ops->mat_free(ctx, &s.xtw);
    ops->mat_free(ctx, &s.xht);
    if (turned) {
        TM_TRY(turn(&s, &s.wt, &s.w, err));
        TM_TRY(turn(&s, &s.htt, &s.ht, err));
    }
    TM_TRY(tm_backend_give(ops, ctx, &s.w, &out->w, err));
    TM_TRY(tm_backend_give(ops, ctx, &s.ht, &out->ht, err));
out:
    tm_free(s.betas);
    ops->mat_free(ctx, &s.gh_hat);
    ops->mat_free(ctx, &s.htp);
    ops->mat_free(ctx, &s.wp);
    ops->mat_free(ctx, &s.htt);
    ops->mat_free(ctx, &s.wt);
    ops->mat_free(ctx, &s.dn);
    ops->mat_free(ctx, &s.dm);
    ops->mat_free(ctx, &s.xtw);
    ops->mat_free(ctx, &s.xht);
    ops->mat_free(ctx, &s.gw);
    ops->mat_free(ctx, &s.gh);
    ops->mat_free(ctx, &s.ht);
    ops->mat_free(ctx, &s.w);
    tm_free(perm);
    tm_free(sh);
    tm_free(sw);
    return st;
}

/* W's error with the fixed H (the fit's measure) into *error: Frobenius from
 * xht (X Ht, made once) and the grams, KL by a pass over X. */
static tm_status transform_error(struct nmf_state *s, int kl, double *sw, double *sh, double *error,
                                 char *err)
{
    if (kl)
        return kl_error(s, sw, sh, error, err);
    double cross;
    tm_status st;
    if ((st = s->ops->dot(s->ctx, &s->xht, &s->w, &cross, err)) ||
        (st = s->ops->gram(s->ctx, &s->w, &s->gw, err)))
        return st;
    return frob_error_cross(s, cross, error, err);
}

tm_status tm_nmf_transform(const struct tm_backend_ops *ops, void *ctx, const struct tm_csr *X,
                           const struct tm_bsparse *Xb, const double *ht, int64_t k,
                           const struct tm_model_params *params, const struct tm_progress *progress,
                           struct tm_nmf_result *out, char *err)
{
    if (params->solver == TM_NMF_MINIBATCH)
        return tm__nmf_minibatch_transform(ops, ctx, X, Xb, ht, k, params, progress, out, err);
    tm_status st = TM_OK;
    struct nmf_state s = {0};
    int64_t m = X->n_rows, n = X->n_cols;
    double *sw = NULL, *sh = NULL;
    int64_t *perm = NULL;
    tm_status began = nmf_begin(&s, out, ops, ctx, X, Xb, k, &sw, &sh, &perm);
    int64_t max_iter = params->max_iter > 0 ? params->max_iter : 200;
    double tol = params->tol;
    double l1w = (double)n * params->alpha_W * params->l1_ratio;
    double l2w = (double)n * params->alpha_W * (1.0 - params->l1_ratio);
    const int mu = params->solver == TM_NMF_MU, kl = mu && params->beta_loss == TM_BETA_KL;

    out->w = tm_mallocarray((size_t)m * (size_t)k + 1, sizeof(double));
    if (began != TM_OK || !out->w) {
        st = tm_errf(err, TM_ENOMEM, "nmf: cannot allocate the %lld-topic transform", (long long)k);
        goto out;
    }
    /* scikit-learn's _check_w_h with update_H=False: zeros, except for mu,
     * which a zero W would leave at zero. */
    double w0 = mu ? sqrt(x_mean(X) / (double)k) : 0.0;
    for (size_t i = 0; i < (size_t)m * (size_t)k; i++)
        out->w[i] = w0;
    TM_TRY(tm_backend_take(ops, ctx, &out->w, m, k, &s.w, err));
    TM_TRY(ops->mat_alloc(ctx, n, k, &s.ht, err));
    TM_TRY(ops->upload(ctx, ht, n, &s.ht, err));
    TM_TRY(ops->mat_alloc(ctx, k, k, &s.gh, err));
    TM_TRY(ops->mat_alloc(ctx, k, k, &s.gw, err));
    TM_TRY(ops->mat_alloc(ctx, m, k, &s.xht, err));
    TM_TRY(ops->gram(ctx, &s.ht, &s.gh, err));
    if (!kl) {
        s.passes++;
        TM_TRY(ops->spmm(ctx, Xb, TM_NOTRANS, 1.0, &s.ht, 0.0, &s.xht, err));
    }
    if (mu && !kl)
        TM_TRY(ops->mat_alloc(ctx, m, k, &s.dm, err));
    if (kl)
        TM_TRY(ops->col_sums(ctx, &s.ht, sh, err));

    struct tm_rng rng;
    tm_rng_init(&rng, params->seed);
    double error = 0.0, error_init = 0.0, previous = 0.0, violation_init = 0.0;
    if (mu) {
        TM_TRY(transform_error(&s, kl, sw, sh, &error_init, err));
        previous = error_init;
    }
    int64_t it;
    for (it = 1; it <= max_iter; it++) {
        int stop = 0;
        if (!mu) {
            double v;
            for (int64_t t = 0; t < k; t++)
                perm[t] = t;
            if (params->shuffle)
                for (int64_t t = k - 1; t > 0; t--) {
                    int64_t r = (int64_t)tm_rng_below(&rng, (uint64_t)t + 1), tmp = perm[t];
                    perm[t] = perm[r];
                    perm[r] = tmp;
                }
            TM_TRY(ops->hals_sweep(ctx, &s.w, &s.gh, &s.xht, l1w, l2w, perm, &v, err));
            if (!isfinite(v)) {
                st = tm_errf(err, TM_ENUMERIC, "nmf: the cd violation became NaN or Inf");
                goto out;
            }
            if (it == 1)
                violation_init = v;
            if (violation_init == 0.0 || v / violation_init <= tol)
                stop = 1;
        } else if (!kl) {
            TM_TRY(ops->gemm(ctx, TM_NOTRANS, TM_NOTRANS, 1.0, &s.w, &s.gh, 0.0, &s.dm, err));
            TM_TRY(ops->mu_update(ctx, &s.w, &s.xht, &s.dm, NULL, l1w, l2w, 0.0, err));
        } else {
            s.passes++;
            TM_TRY(ops->kl_spmm(ctx, Xb, TM_NOTRANS, &s.w, &s.ht, TM_NMF_EPSILON, &s.xht, err));
            TM_TRY(ops->mu_update(ctx, &s.w, &s.xht, NULL, sh, l1w, l2w, 0.0, err));
        }
        if (mu && tol > 0 && it % 10 == 0) {
            TM_TRY(transform_error(&s, kl, sw, sh, &error, err));
            if ((previous - error) / error_init < tol)
                stop = 1;
            previous = error;
        }
        TM_TRY(check_progress(progress, it, max_iter, err));
        if (stop)
            break;
    }
    out->n_iter = it > max_iter ? max_iter : it;
    TM_TRY(transform_error(&s, kl, sw, sh, &error, err));
    out->error = error;
    out->passes_over_x = s.passes;
    TM_TRY(tm_backend_give(ops, ctx, &s.w, &out->w, err));
out:
    ops->mat_free(ctx, &s.dm);
    ops->mat_free(ctx, &s.xht);
    ops->mat_free(ctx, &s.gw);
    ops->mat_free(ctx, &s.gh);
    ops->mat_free(ctx, &s.ht);
    ops->mat_free(ctx, &s.w);
    tm_free(perm);
    tm_free(sh);
    tm_free(sw);
    return st;
}
