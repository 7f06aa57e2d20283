/* svd.c - randomized SVD, IRLBA and the exact dense SVD (see svd.h). */
#include "svd.h"

#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "rng.h"

#define TRY(call)                                                                          \
    do {                                                                                   \
        st = (call);                                                                       \
        if (st != TM_OK)                                                                   \
            goto out;                                                                      \
    } while (0)

void tm_svd_result_release(struct tm_svd_result *r)
{
    tm_free(r->u);
    tm_free(r->s);
    tm_free(r->v);
    memset(r, 0, sizeof(*r));
}

void tm_svd_flip(double *u, int64_t m, double *v, int64_t n, int64_t k)
{
    for (int64_t j = 0; j < k; j++) {
        double *uc = u + (size_t)j * m, best = 0.0;
        int64_t arg = 0;
        for (int64_t i = 0; i < m; i++) {
            if (fabs(uc[i]) > best) {
                best = fabs(uc[i]);
                arg = i;
            }
        }
        if (m == 0 || uc[arg] >= 0.0)
            continue;
        for (int64_t i = 0; i < m; i++)
            uc[i] = -uc[i];
        if (v)
            for (int64_t i = 0; i < n; i++)
                v[(size_t)j * n + i] = -v[(size_t)j * n + i];
    }
}

static tm_status result_alloc(struct tm_svd_result *out, int64_t m, int64_t n, int64_t k,
                              char *err)
{
    out->m = m;
    out->n = n;
    out->k = k;
    out->u = tm_mallocarray((size_t)m * (size_t)k + 1, sizeof(double));
    out->v = tm_mallocarray((size_t)n * (size_t)k + 1, sizeof(double));
    out->s = tm_mallocarray((size_t)k + 1, sizeof(double));
    if (!out->u || !out->v || !out->s)
        return tm__errf(err, TM_ENOMEM, "svd: cannot allocate the %lld-component result",
                        (long long)k);
    return TM_OK;
}

static int all_finite(const double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* Fills host-side U and V from the backend matrices of A = X or A = X^T. */
static tm_status finish(const struct tm_backend_ops *ops, void *ctx, int transpose,
                        const struct tm_bmat *ua, const struct tm_bmat *va, const double *s,
                        struct tm_svd_result *out, char *err)
{
    const struct tm_bmat *ux = transpose ? va : ua, *vx = transpose ? ua : va;
    tm_status st = ops->download(ctx, ux, out->u, out->m, err);
    if (st == TM_OK)
        st = ops->download(ctx, vx, out->v, out->n, err);
    if (st != TM_OK)
        return st;
    memcpy(out->s, s, (size_t)out->k * sizeof(double));
    if (!all_finite(out->s, out->k) || !all_finite(out->u, out->m * out->k) ||
        !all_finite(out->v, out->n * out->k))
        return tm__errf(err, TM_ENUMERIC, "svd: the factors contain NaN or Inf");
    tm_svd_flip(out->u, out->m, out->v, out->n, out->k);
    return TM_OK;
}

static tm_status normalize(const struct tm_backend_ops *ops, void *ctx,
                           enum tm_power_normalizer pin, const struct tm_bmat *a, char *err)
{
    switch (pin) {
    case TM_PIN_QR:
        return ops->orth_qr(ctx, a, err);
    case TM_PIN_LU:
        return ops->orth_lu(ctx, a, err);
    default:
        return TM_OK;
    }
}

static int cancelled(const struct tm_progress *progress, double fraction)
{
    return tm_progress_report(progress, "svd", fraction) != 0;
}

tm_status tm_svd_randomized(const struct tm_backend_ops *ops, void *ctx,
                            const struct tm_bsparse *X, int64_t m, int64_t n, int64_t k,
                            const struct tm_model_params *params,
                            const struct tm_progress *progress, struct tm_svd_result *out,
                            char *err)
{
    tm_status st = TM_OK;
    struct tm_bmat q = {0}, y = {0}, u2 = {0}, vt2 = {0}, ua = {0};
    double *host = NULL, *s = NULL;
    memset(out, 0, sizeof(*out));
    int64_t mn = m < n ? m : n;
    /* scikit-learn does not cap l; an l above min(m, n) only adds zero
     * directions, and thin QR needs rows >= columns. */
    int64_t l = k + (params->n_oversamples > 0 ? params->n_oversamples : 0);
    if (l > mn)
        l = mn;
    int64_t n_iter = params->n_iter >= 0 ? params->n_iter : (k < 0.1 * (double)mn ? 7 : 4);
    enum tm_power_normalizer pin = params->power_iteration_normalizer;
    if (pin == TM_PIN_AUTO)
        pin = n_iter <= 2 ? TM_PIN_NONE : TM_PIN_LU;
    /* transpose="auto": work on A = X^T when X is wide, as scikit-learn. */
    int transpose = m < n;
    int ta = transpose ? TM_TRANS : TM_NOTRANS, tat = transpose ? TM_NOTRANS : TM_TRANS;
    int64_t a = transpose ? n : m, b = transpose ? m : n;

    TRY(result_alloc(out, m, n, k, err));
    /* Q = random_state.normal(size=(b, l)), drawn in C (row) order. */
    host = tm_mallocarray((size_t)b * (size_t)l + 1, sizeof(double));
    s = tm_mallocarray((size_t)l + 1, sizeof(double));
    if (!host || !s) {
        st = tm__errf(err, TM_ENOMEM, "svd: cannot allocate the %lld x %lld test matrix",
                      (long long)b, (long long)l);
        goto out;
    }
    struct tm_rng rng;
    tm_rng_init(&rng, params->seed);
    for (int64_t i = 0; i < b; i++)
        for (int64_t j = 0; j < l; j++)
            host[i + (size_t)j * b] = tm_rng_normal(&rng);
    TRY(ops->mat_alloc(ctx, b, l, &q, err));
    TRY(ops->mat_alloc(ctx, a, l, &y, err));
    TRY(ops->upload(ctx, host, b, &q, err));
    tm_free(host);
    host = NULL;

    for (int64_t it = 0; it < n_iter; it++) {
        TRY(ops->spmm(ctx, X, ta, 1.0, &q, 0.0, &y, err));
        TRY(normalize(ops, ctx, pin, &y, err));
        TRY(ops->spmm(ctx, X, tat, 1.0, &y, 0.0, &q, err));
        TRY(normalize(ops, ctx, pin, &q, err));
        if (cancelled(progress, (double)(it + 1) / (double)(n_iter + 1))) {
            st = tm__errf(err, TM_ECANCELLED, "svd: cancelled after %lld power iterations",
                          (long long)(it + 1));
            goto out;
        }
    }
    TRY(ops->spmm(ctx, X, ta, 1.0, &q, 0.0, &y, err));
    TRY(ops->orth_qr(ctx, &y, err));
    /* B = Q^T A is l x b; its transpose A^T Q reuses q. SVD of B^T =
     * U2 S Vt2 gives B = Vt2^T S U2^T: Uhat = Vt2^T, Vt(B) = U2^T. */
    TRY(ops->spmm(ctx, X, tat, 1.0, &y, 0.0, &q, err));
    TRY(ops->mat_alloc(ctx, b, l, &u2, err));
    TRY(ops->mat_alloc(ctx, l, l, &vt2, err));
    TRY(ops->svd_small(ctx, &q, &u2, s, &vt2, err));
    TRY(ops->mat_alloc(ctx, a, k, &ua, err));
    {
        struct tm_bmat vt2k = tm_bmat_block(&vt2, 0, k, 0, l), u2k = tm_bmat_cols(&u2, 0, k);
        TRY(ops->gemm(ctx, TM_NOTRANS, TM_TRANS, 1.0, &y, &vt2k, 0.0, &ua, err));
        TRY(finish(ops, ctx, transpose, &ua, &u2k, s, out, err));
    }
    out->n_iter = n_iter;
out:
    ops->mat_free(ctx, &ua);
    ops->mat_free(ctx, &vt2);
    ops->mat_free(ctx, &u2);
    ops->mat_free(ctx, &y);
    ops->mat_free(ctx, &q);
    tm_free(s);
    tm_free(host);
    return st;
}

/* ---- IRLBA ---- */

struct lanczos {
    const struct tm_backend_ops *ops;
    void *ctx;
    const struct tm_bsparse *x;
    int ta, tat;
    struct tm_bmat v, w, h, f, tmp, small;
    struct tm_rng rng;
    double *host; /* max(a, b) doubles, for random vectors */
};

/* vec -= basis (basis^T vec), twice when the first pass cancelled much of vec
 * (Daniel, Gragg, Kaufman and Stewart's criterion); returns ||vec||. */
static tm_status reorth(struct lanczos *lz, const struct tm_bmat *basis, const struct tm_bmat *vec,
                        double *norm, char *err)
{
    const struct tm_backend_ops *ops = lz->ops;
    tm_status st;
    double before, after;
    if ((st = ops->col_norms(lz->ctx, vec, &before, err)) != TM_OK)
        return st;
    after = before;
    if (basis->cols == 0) {
        *norm = after;
        return TM_OK;
    }
    struct tm_bmat h = tm_bmat_block(&lz->h, 0, basis->cols, 0, 1);
    for (int pass = 0; pass < 2; pass++) {
        if ((st = ops->gemm(lz->ctx, TM_TRANS, TM_NOTRANS, 1.0, basis, vec, 0.0, &h, err)) ||
            (st = ops->gemm(lz->ctx, TM_NOTRANS, TM_NOTRANS, -1.0, basis, &h, 1.0, vec, err)) ||
            (st = ops->col_norms(lz->ctx, vec, &after, err)))
            return st;
        if (after > 0.7071 * before)
            break;
        before = after;
    }
    *norm = after;
    return TM_OK;
}

/* Column j of basis becomes a random unit vector orthogonal to columns 0..j-1
 * (restarting an exhausted Krylov space). */
static tm_status random_column(struct lanczos *lz, const struct tm_bmat *basis, int64_t j,
                               char *err)
{
    tm_status st;
    struct tm_bmat col = tm_bmat_cols(basis, j, 1), prev = tm_bmat_cols(basis, 0, j);
    for (int64_t i = 0; i < basis->rows; i++)
        lz->host[i] = tm_rng_normal(&lz->rng);
    if ((st = lz->ops->upload(lz->ctx, lz->host, basis->rows, &col, err)) != TM_OK)
        return st;
    double nrm = 0.0;
    for (int pass = 0; pass < 2; pass++)
        if ((st = reorth(lz, &prev, &col, &nrm, err)) != TM_OK)
            return st;
    double inv = nrm > 0.0 ? 1.0 / nrm : 0.0;
    return lz->ops->scale_cols(lz->ctx, &col, &inv, err);
}

tm_status tm_svd_lanczos(const struct tm_backend_ops *ops, void *ctx, const struct tm_bsparse *X,
                         int64_t m, int64_t n, int64_t k, const struct tm_model_params *params,
                         const struct tm_progress *progress, struct tm_svd_result *out,
                         char *err)
{
    tm_status st = TM_OK;
    struct lanczos lz = {0};
    double *bm = NULL, *bcopy = NULL, *ub = NULL, *sb = NULL, *vbt = NULL, *res = NULL,
           *proj = NULL;
    memset(out, 0, sizeof(*out));
    lz.ops = ops;
    lz.ctx = ctx;
    lz.x = X;
    /* A = X or X^T so that V (length b) is the shorter side. */
    int transpose = m < n;
    lz.ta = transpose ? TM_TRANS : TM_NOTRANS;
    lz.tat = transpose ? TM_NOTRANS : TM_TRANS;
    int64_t a = transpose ? n : m, b = transpose ? m : n;
    int64_t work = k + (k / 2 > 20 ? k / 2 : 20);
    if (work > b)
        work = b;
    double tol = params->svd_tol > 0 ? params->svd_tol : 1e-6;
    int64_t max_restarts = params->svd_max_iter > 0 ? params->svd_max_iter : 1000;

    TRY(result_alloc(out, m, n, k, err));
    size_t w2 = (size_t)work * (size_t)work;
    bm = tm_calloc(w2, sizeof(double));
    bcopy = tm_mallocarray(w2, sizeof(double));
    ub = tm_mallocarray(w2, sizeof(double));
    vbt = tm_mallocarray(w2, sizeof(double));
    proj = tm_mallocarray(w2, sizeof(double));
    sb = tm_mallocarray((size_t)work, sizeof(double));
    res = tm_mallocarray((size_t)work, sizeof(double));
    lz.host = tm_mallocarray((size_t)a, sizeof(double));
    if (!bm || !bcopy || !ub || !vbt || !proj || !sb || !res || !lz.host) {
        st = tm__errf(err, TM_ENOMEM, "svd: cannot allocate Lanczos workspace");
        goto out;
    }
    TRY(ops->mat_alloc(ctx, b, work, &lz.v, err));
    TRY(ops->mat_alloc(ctx, a, work, &lz.w, err));
    TRY(ops->mat_alloc(ctx, work, 1, &lz.h, err));
    TRY(ops->mat_alloc(ctx, b, 1, &lz.f, err));
    TRY(ops->mat_alloc(ctx, a, work, &lz.tmp, err));
    TRY(ops->mat_alloc(ctx, work, work, &lz.small, err));
    tm_rng_init(&lz.rng, params->seed);
    TRY(random_column(&lz, &lz.v, 0, err));

    int64_t kk = 0, restarts = 0;
    double anorm = 0.0, beta = 0.0;
    for (;;) {
        /* Extend the bidiagonalization from column kk to work. */
        int64_t j = kk;
        double alpha;
        struct tm_bmat vj = tm_bmat_cols(&lz.v, j, 1), wj = tm_bmat_cols(&lz.w, j, 1),
                       wprev = tm_bmat_cols(&lz.w, 0, j);
        TRY(ops->spmm(ctx, X, lz.ta, 1.0, &vj, 0.0, &wj, err));
        TRY(reorth(&lz, &wprev, &wj, &alpha, err));
        anorm = fmax(anorm, alpha);
        if (alpha <= 1e-14 * anorm || alpha == 0.0) {
            alpha = 0.0;
            TRY(random_column(&lz, &lz.w, j, err));
        } else {
            double inv = 1.0 / alpha;
            TRY(ops->scale_cols(ctx, &wj, &inv, err));
        }
        bm[j + j * work] = alpha;
        for (; j < work; j++) {
            struct tm_bmat vjj = tm_bmat_cols(&lz.v, j, 1), wjj = tm_bmat_cols(&lz.w, j, 1),
                           vupto = tm_bmat_cols(&lz.v, 0, j + 1);
            TRY(ops->spmm(ctx, X, lz.tat, 1.0, &wjj, 0.0, &lz.f, err));
            TRY(ops->axpy(ctx, -bm[j + j * work], &vjj, &lz.f, err));
            TRY(reorth(&lz, &vupto, &lz.f, &beta, err));
            anorm = fmax(anorm, beta);
            if (j + 1 >= work)
                break;
            struct tm_bmat vn = tm_bmat_cols(&lz.v, j + 1, 1), wn = tm_bmat_cols(&lz.w, j + 1, 1),
                           wupto = tm_bmat_cols(&lz.w, 0, j + 1);
            if (beta <= 1e-14 * anorm) {
                beta = 0.0;
                TRY(random_column(&lz, &lz.v, j + 1, err));
            } else {
                double inv = 1.0 / beta;
                TRY(ops->copy(ctx, &lz.f, &vn, err));
                TRY(ops->scale_cols(ctx, &vn, &inv, err));
            }
            bm[j + (j + 1) * work] = beta;
            TRY(ops->spmm(ctx, X, lz.ta, 1.0, &vn, 0.0, &wn, err));
            TRY(ops->axpy(ctx, -beta, &wjj, &wn, err));
            TRY(reorth(&lz, &wupto, &wn, &alpha, err));
            anorm = fmax(anorm, alpha);
            if (alpha <= 1e-14 * anorm) {
                alpha = 0.0;
                TRY(random_column(&lz, &lz.w, j + 1, err));
            } else {
                double inv = 1.0 / alpha;
                TRY(ops->scale_cols(ctx, &wn, &inv, err));
            }
            bm[(j + 1) + (j + 1) * work] = alpha;
        }
        /* B = Ub diag(sb) Vb^T; A V = W B, A^T W = V B^T + f e_work^T. */
        memcpy(bcopy, bm, w2 * sizeof(double));
        lapack_int info =
            LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', (lapack_int)work, (lapack_int)work, bcopy,
                           (lapack_int)work, sb, ub, (lapack_int)work, vbt, (lapack_int)work);
        if (info != 0) {
            st = info == LAPACK_WORK_MEMORY_ERROR
                     ? tm__errf(err, TM_ENOMEM, "svd: gesdd workspace")
                     : tm__errf(err, TM_ELAPACK, "svd: gesdd of the bidiagonal failed (%d)",
                                (int)info);
            goto out;
        }
        if (!all_finite(sb, work)) {
            st = tm__errf(err, TM_ENUMERIC, "svd: Lanczos produced NaN or Inf");
            goto out;
        }
        restarts++;
        double smax = sb[0];
        int64_t nconv = 0;
        for (int64_t i = 0; i < work; i++)
            res[i] = beta * ub[(work - 1) + i * work];
        for (int64_t i = 0; i < k; i++)
            nconv += fabs(res[i]) <= tol * smax;
        int done = nconv == k || beta == 0.0;
        if (!done && restarts >= max_restarts) {
            st = tm__errf(err, TM_ENUMERIC,
                          "svd: lanczos did not converge in %lld restarts (%lld of %lld "
                          "singular values to tol %g); raise model.svd_max_iter",
                          (long long)restarts, (long long)nconv, (long long)k, tol);
            goto out;
        }
        if (cancelled(progress, done ? 1.0 : (double)nconv / (double)k * 0.99)) {
            st = tm__errf(err, TM_ECANCELLED, "svd: cancelled after %lld restarts",
                          (long long)restarts);
            goto out;
        }
        /* Keep the wanted Ritz vectors plus some converged extra ones
         * (Baglama and Reichel's adjustment), at least 1 new vector. */
        int64_t keep = done ? k : k + (nconv < (work - k) / 2 ? nconv : (work - k) / 2);
        if (keep > work - 1)
            keep = work - 1;
        if (done && keep < k)
            keep = k;
        /* V(:, :keep) = V Vb(:, :keep); W(:, :keep) = W Ub(:, :keep). */
        struct tm_bmat proj_v = tm_bmat_block(&lz.small, 0, work, 0, keep);
        for (int64_t c = 0; c < keep; c++)
            for (int64_t i = 0; i < work; i++)
                proj[i + c * work] = vbt[c + i * work];
        TRY(ops->upload(ctx, proj, work, &proj_v, err));
        struct tm_bmat tb = tm_bmat_block(&lz.tmp, 0, b, 0, keep),
                       ta = tm_bmat_block(&lz.tmp, 0, a, 0, keep),
                       vk = tm_bmat_cols(&lz.v, 0, keep), wk = tm_bmat_cols(&lz.w, 0, keep);
        TRY(ops->gemm(ctx, TM_NOTRANS, TM_NOTRANS, 1.0, &lz.v, &proj_v, 0.0, &tb, err));
        TRY(ops->copy(ctx, &tb, &vk, err));
        TRY(ops->upload(ctx, ub, work, &proj_v, err));
        TRY(ops->gemm(ctx, TM_NOTRANS, TM_NOTRANS, 1.0, &lz.w, &proj_v, 0.0, &ta, err));
        TRY(ops->copy(ctx, &ta, &wk, err));
        if (done) {
            out->n_iter = restarts;
            TRY(finish(ops, ctx, transpose, &wk, &vk, sb, out, err));
            break;
        }
        struct tm_bmat vkeep = tm_bmat_cols(&lz.v, keep, 1);
        double inv = 1.0 / beta;
        TRY(ops->copy(ctx, &lz.f, &vkeep, err));
        TRY(ops->scale_cols(ctx, &vkeep, &inv, err));
        memset(bm, 0, w2 * sizeof(double));
        for (int64_t i = 0; i < keep; i++) {
            bm[i + i * work] = sb[i];
            bm[i + keep * work] = res[i];
        }
        kk = keep;
    }
out:
    ops->mat_free(ctx, &lz.small);
    ops->mat_free(ctx, &lz.tmp);
    ops->mat_free(ctx, &lz.f);
    ops->mat_free(ctx, &lz.h);
    ops->mat_free(ctx, &lz.w);
    ops->mat_free(ctx, &lz.v);
    tm_free(lz.host);
    tm_free(res);
    tm_free(sb);
    tm_free(proj);
    tm_free(vbt);
    tm_free(ub);
    tm_free(bcopy);
    tm_free(bm);
    return st;
}

/* ---- exact dense SVD ---- */

double tm_svd_full_bytes(int64_t m, int64_t n)
{
    double dm = (double)m, dn = (double)n, p = dm < dn ? dm : dn, mx = dm > dn ? dm : dn;
    /* A, U (m x p), V^T (p x n), gesdd's JOBZ='S' work (4p^2 + 6p + max)
     * and iwork (8p ints). */
    return 8.0 * (dm * dn + dm * p + p * dn + p + 4.0 * p * p + 6.0 * p + mx) + 32.0 * p;
}

tm_status tm_svd_full(const struct tm_csr *X, int64_t k, int64_t max_dense_bytes,
                      struct tm_svd_result *out, char *err)
{
    tm_status st = TM_OK;
    double *a = NULL, *u = NULL, *vt = NULL, *s = NULL;
    int64_t m = X->n_rows, n = X->n_cols, p = m < n ? m : n;
    memset(out, 0, sizeof(*out));
    double need = tm_svd_full_bytes(m, n);
    if (need > (double)max_dense_bytes)
        return tm__errf(err, TM_ETOOBIG,
                        "model.method: full_svd of %lld x %lld needs %.0f MiB, over the "
                        "%.0f MiB cap (max_dense_bytes); use truncated_svd",
                        (long long)m, (long long)n, need / 1048576.0,
                        (double)max_dense_bytes / 1048576.0);
    if (need > (double)SIZE_MAX / 2 || m > INT32_MAX || n > INT32_MAX)
        return tm__errf(err, TM_ETOOBIG, "model.method: full_svd of %lld x %lld is too big",
                        (long long)m, (long long)n);
    TRY(result_alloc(out, m, n, k, err));
    a = tm_calloc((size_t)m * (size_t)n, sizeof(double));
    u = tm_mallocarray((size_t)m * (size_t)p, sizeof(double));
    vt = tm_mallocarray((size_t)p * (size_t)n, sizeof(double));
    s = tm_mallocarray((size_t)p, sizeof(double));
    if (!a || !u || !vt || !s) {
        st = tm__errf(err, TM_ENOMEM, "svd: cannot allocate the dense %lld x %lld matrix",
                      (long long)m, (long long)n);
        goto out;
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t q = X->indptr[i]; q < X->indptr[i + 1]; q++)
            a[i + (size_t)X->indices[q] * m] = X->data[q];
    lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', (lapack_int)m, (lapack_int)n, a,
                                     (lapack_int)m, s, u, (lapack_int)m, vt, (lapack_int)p);
    if (info != 0) {
        st = info == LAPACK_WORK_MEMORY_ERROR
                 ? tm__errf(err, TM_ENOMEM, "svd: gesdd workspace")
                 : tm__errf(err, TM_ELAPACK, "svd: gesdd failed (info %d)", (int)info);
        goto out;
    }
    memcpy(out->u, u, (size_t)m * (size_t)k * sizeof(double));
    for (int64_t j = 0; j < k; j++)
        for (int64_t i = 0; i < n; i++)
            out->v[i + (size_t)j * n] = vt[j + (size_t)i * p];
    memcpy(out->s, s, (size_t)k * sizeof(double));
    if (!all_finite(out->s, k)) {
        st = tm__errf(err, TM_ENUMERIC, "svd: singular values contain NaN or Inf");
        goto out;
    }
    tm_svd_flip(out->u, m, out->v, n, k);
out:
    tm_free(s);
    tm_free(vt);
    tm_free(u);
    tm_free(a);
    return st;
}
