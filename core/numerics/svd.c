/* svd.c - randomized SVD, IRLBA and the exact dense SVD (see svd.h). */
#include "core/numerics/svd.h"

#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/numerics/rng.h"

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

static tm_status result_alloc(struct tm_svd_result *out, int64_t m, int64_t n, int64_t k, char *err)
{
    out->m = m;
    out->n = n;
    out->k = k;
    out->u = tm_mallocarray((size_t)m * (size_t)k + 1, sizeof(double));
    out->v = tm_mallocarray((size_t)n * (size_t)k + 1, sizeof(double));
    out->s = tm_mallocarray((size_t)k + 1, sizeof(double));
    if (!out->u || !out->v || !out->s)
        return tm_errf(err, TM_ENOMEM, "svd: cannot allocate the %lld-component result",
                       (long long)k);
    return TM_OK;
}

/* NaN and Inf are the doubles with every exponent bit set: adding one unit
 * of exponent to their exponent bits carries into the sign bit, and to no
 * other double's. The check runs over U and V, (m + n) x k, so it tests
 * fixed-size runs with that add (an and, an add and an or an element, no
 * branch) and looks at the verdict once a run. */
#define FINITE_RUN 1024

static int all_finite(const double *x, int64_t n)
{
    const uint64_t exponent = 0x7ff0000000000000u, unit = 0x0010000000000000u;
    int64_t i = 0;
    for (; i + FINITE_RUN <= n; i += FINITE_RUN) {
        uint64_t carries = 0;
        for (int r = 0; r < FINITE_RUN; r++) {
            uint64_t bits;
            memcpy(&bits, x + i + r, sizeof bits);
            carries |= (bits & exponent) + unit;
        }
        if (carries >> 63)
            return 0;
    }
    for (; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* The last step of every truncated SVD, once out holds s, U and V: refuse
 * NaN or Inf, then apply scikit-learn's sign convention. */
static tm_status finite_and_flipped(struct tm_svd_result *out, char *err)
{
    if (!all_finite(out->s, out->k) || !all_finite(out->u, out->m * out->k) ||
        !all_finite(out->v, out->n * out->k))
        return tm_errf(err, TM_ENUMERIC, "svd: the factors contain NaN or Inf");
    tm_svd_flip(out->u, out->m, out->v, out->n, out->k);
    return TM_OK;
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
    return finite_and_flipped(out, err);
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

#define LONG_BLOCK 16 /* columns of the long side's vectors made at a time */

/*
 * dst (len x k, host, column-major, the whole of a tm_malloc'd buffer) =
 * op(X) src, columns scaled by scale (host, k; NULL: by 1), made LONG_BLOCK
 * columns at a time, so that the long side's vectors exist once, in the
 * result: made there where the backend can adopt dst (host memory), else
 * in a block's workspace and downloaded.
 */
static tm_status long_side(const struct tm_backend_ops *ops, void *ctx, const struct tm_bsparse *X,
                           int op, const struct tm_bmat *src, const double *scale, int64_t len,
                           double *dst, char *err)
{
    int64_t k = src->cols, bw = k < LONG_BLOCK ? k : LONG_BLOCK;
    /* in place only where the backend's matrices are host doubles */
    int in_place = ops->mat_adopt && ops->mat_release && ops->elem_size(ctx) == sizeof(double);
    struct tm_bmat lk = {0};
    tm_status st = in_place ? ops->mat_adopt(ctx, dst, len, k, &lk, err)
                            : ops->mat_alloc(ctx, len, bw, &lk, err);
    for (int64_t c0 = 0; st == TM_OK && c0 < k; c0 += bw) {
        int64_t w = k - c0 < bw ? k - c0 : bw;
        struct tm_bmat sb = tm_bmat_cols(src, c0, w), lb = tm_bmat_cols(&lk, in_place ? c0 : 0, w);
        st = ops->spmm(ctx, X, op, 1.0, &sb, 0.0, &lb, err);
        if (st == TM_OK && scale)
            st = ops->scale_cols(ctx, &lb, scale + c0, err);
        if (st == TM_OK && !in_place)
            st = ops->download(ctx, &lb, dst + (size_t)c0 * (size_t)len, len, err);
    }
    if (in_place && lk.data)
        ops->mat_release(ctx, &lk); /* dst again */
    else
        ops->mat_free(ctx, &lk);
    return st;
}

/*
 * The thin SVD of a tall bt (rows x l), its first k triplets, by way of its
 * l x l Gram matrix: bt^T bt = V diag(s^2) V^T (syevd), U_k = bt V_k
 * diag(1/s_k). Both products are tall ones the backend spreads over its
 * threads, where gesdd's QR of bt runs on one (bench/NOTES.md, "Randomized
 * SVD"). Squaring costs s_i about eps s_0^2 / s_i^2
 * of relative accuracy: taken only where s_{k-1}^2 >= 1e-6 s_0^2, so that
 * the s_i are good to about 1e-10 and U_k orthonormal to about as much.
 * *ok stays 0 otherwise, and always in a float32 context, whose epsilon
 * would leave too few digits; the caller then takes svd_small. (For float64
 * the check is a safety net: final_by_gram's rcond >= 1e-4 on Y already
 * keeps s_{l-1} / s_0 near 1e-2 or above.) u2: rows x (k or more), its
 * first k columns written; vt2: l x l, V^T.
 */
static tm_status svd_tall_by_gram(const struct tm_backend_ops *ops, void *ctx,
                                  const struct tm_bmat *bt, int64_t k, const struct tm_bmat *u2,
                                  double *s, const struct tm_bmat *vt2, int *ok, char *err)
{
    const int64_t l = bt->cols;
    *ok = 0;
    if (ops->elem_size(ctx) != sizeof(double))
        return TM_OK; /* float32 would keep too few digits of the squared spectrum */
    struct tm_bmat g = {0}, mk = {0};
    double *h = tm_mallocarray((size_t)l * (size_t)l + 1, sizeof(double));
    double *ev = tm_mallocarray((size_t)l + 1, sizeof(double));
    double *vh = tm_mallocarray((size_t)l * (size_t)l + 1, sizeof(double));
    tm_status st = TM_OK;
    if (!h || !ev || !vh) {
        st = tm_errf(err, TM_ENOMEM, "svd: cannot allocate a %lld x %lld matrix", (long long)l,
                     (long long)l);
        goto out;
    }
    TM_TRY(ops->mat_alloc(ctx, l, l, &g, err));
    TM_TRY(ops->gemm(ctx, TM_TRANS, TM_NOTRANS, 1.0, bt, bt, 0.0, &g, err));
    TM_TRY(ops->download(ctx, &g, h, l, err));
    if (k < 1 || !all_finite(h, l * l) ||
        LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', (lapack_int)l, h, (lapack_int)l, ev) != 0 ||
        !(ev[l - 1] > 0.0) || !(ev[l - k] >= 1e-6 * ev[l - 1]))
        goto out; /* not ok: gesdd */
    /* syevd's eigenpairs ascend; the SVD's descend. */
    for (int64_t i = 0; i < l; i++) {
        s[i] = sqrt(ev[l - 1 - i] > 0.0 ? ev[l - 1 - i] : 0.0);
        for (int64_t j = 0; j < l; j++)
            vh[i + j * l] = h[j + (l - 1 - i) * l];
    }
    TM_TRY(ops->upload(ctx, vh, l, vt2, err));
    for (int64_t i = 0; i < k; i++) /* V_k diag(1/s_k), l x k */
        for (int64_t j = 0; j < l; j++)
            vh[j + i * l] = h[j + (l - 1 - i) * l] / s[i];
    TM_TRY(ops->mat_alloc(ctx, l, k, &mk, err));
    TM_TRY(ops->upload(ctx, vh, l, &mk, err));
    {
        struct tm_bmat u2k = tm_bmat_cols(u2, 0, k);
        TM_TRY(ops->gemm(ctx, TM_NOTRANS, TM_NOTRANS, 1.0, bt, &mk, 0.0, &u2k, err));
    }
    *ok = 1;
out:
    ops->mat_free(ctx, &mk);
    ops->mat_free(ctx, &g);
    tm_free(vh);
    tm_free(ev);
    tm_free(h);
    return st;
}

/*
 * randomized_svd's final stage without the long side's (a x l) Y = A Q:
 * with Q orthonormal and W = A^T A Q (gram_spmm), Y^T Y = Q^T W = R^T R
 * (Cholesky), so Q_f = Y R^-1 is an orthonormal basis of Y's range, B^T =
 * A^T Q_f = W R^-1, and from B^T = U2 S Vt2, U = Q_f Vt2^T = A (Q R^-1
 * Vt2^T): one product of A with a (b x k) matrix, made a few columns at a
 * time into the result (long_side). This is the QR of Y that
 * scikit-learn takes, by way of its Gram matrix, which squares Y's
 * condition number: used only where R's estimated reciprocal condition is
 * at least 1e-4, so the basis is orthonormal to about 1e-8 at worst (1e-15
 * on 20 Newsgroups, where cond(Y) is about 4). *done stays 0 otherwise (a
 * rank-deficient A, say), and the caller forms Y. W (b x l) is freed here,
 * and Q too when done.
 */
static tm_status final_by_gram(const struct tm_backend_ops *ops, void *ctx,
                               const struct tm_bsparse *X, int transpose, int64_t a, int64_t b,
                               int64_t k, int64_t l, struct tm_bmat *q, struct tm_bmat *w,
                               double *s, struct tm_svd_result *out, int *done, char *err)
{
    int ta = transpose ? TM_TRANS : TM_NOTRANS, tat = transpose ? TM_NOTRANS : TM_TRANS;
    struct tm_bmat c = {0}, rinv = {0}, bt = {0}, u2 = {0}, vt2 = {0}, mk = {0}, qm = {0};
    double *h = NULL, rcond = 0.0;
    tm_status st = TM_OK;
    *done = 0;
    TM_TRY(ops->orth_qr(ctx, q, err));
    TM_TRY(ops->gram_spmm(ctx, X, tat, q, w, err));
    TM_TRY(ops->mat_alloc(ctx, l, l, &c, err));
    TM_TRY(ops->gemm(ctx, TM_TRANS, TM_NOTRANS, 1.0, q, w, 0.0, &c, err));
    if (!(h = tm_mallocarray((size_t)l * (size_t)l, sizeof(double)))) {
        st = tm_errf(err, TM_ENOMEM, "svd: cannot allocate a %lld x %lld matrix", (long long)l,
                     (long long)l);
        goto out;
    }
    TM_TRY(ops->download(ctx, &c, h, l, err));
    for (int64_t j = 0; j < l; j++)
        for (int64_t i = 0; i < j; i++) {
            h[i + j * l] = 0.5 * (h[i + j * l] + h[j + i * l]);
            h[j + i * l] = 0.0;
        }
    if (!all_finite(h, l * l) ||
        LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', (lapack_int)l, h, (lapack_int)l) != 0 ||
        LAPACKE_dtrcon(LAPACK_COL_MAJOR, '1', 'U', 'N', (lapack_int)l, h, (lapack_int)l, &rcond) !=
            0 ||
        !(rcond >= 1e-4) ||
        LAPACKE_dtrtri(LAPACK_COL_MAJOR, 'U', 'N', (lapack_int)l, h, (lapack_int)l) != 0)
        goto out; /* not done: the caller takes the long way */
    TM_TRY(ops->upload(ctx, h, l, &c, err));
    rinv = c;
    c = (struct tm_bmat){0};
    TM_TRY(ops->mat_alloc(ctx, b, l, &bt, err));
    TM_TRY(ops->gemm(ctx, TM_NOTRANS, TM_NOTRANS, 1.0, w, &rinv, 0.0, &bt, err));
    ops->mat_free(ctx, w);
    TM_TRY(ops->mat_alloc(ctx, b, l, &u2, err));
    TM_TRY(ops->mat_alloc(ctx, l, l, &vt2, err));
    {
        int by_gram;
        TM_TRY(svd_tall_by_gram(ops, ctx, &bt, k, &u2, s, &vt2, &by_gram, err));
        if (!by_gram)
            TM_TRY(ops->svd_small(ctx, &bt, &u2, s, &vt2, err));
    }
    ops->mat_free(ctx, &bt);
    {
        struct tm_bmat vt2k = tm_bmat_block(&vt2, 0, k, 0, l), u2k = tm_bmat_cols(&u2, 0, k);
        TM_TRY(ops->mat_alloc(ctx, l, k, &mk, err));
        TM_TRY(ops->gemm(ctx, TM_NOTRANS, TM_TRANS, 1.0, &rinv, &vt2k, 0.0, &mk, err));
        TM_TRY(ops->mat_alloc(ctx, b, k, &qm, err));
        TM_TRY(ops->gemm(ctx, TM_NOTRANS, TM_NOTRANS, 1.0, q, &mk, 0.0, &qm, err));
        /* Only u2's first k columns and Q M are left to use; the freed
         * work goes back before the result comes. */
        ops->mat_free(ctx, q);
        ops->mat_free(ctx, &mk);
        ops->mat_free(ctx, &vt2);
        ops->mat_free(ctx, &rinv);
        tm_alloc_trim();
        TM_TRY(result_alloc(out, transpose ? b : a, transpose ? a : b, k, err));
        double *short_vecs = transpose ? out->u : out->v, *long_vecs = transpose ? out->v : out->u;
        TM_TRY(ops->download(ctx, &u2k, short_vecs, b, err));
        TM_TRY(long_side(ops, ctx, X, ta, &qm, NULL, a, long_vecs, err));
        memcpy(out->s, s, (size_t)k * sizeof(double));
        TM_TRY(finite_and_flipped(out, err));
    }
    *done = 1;
out:
    ops->mat_free(ctx, &qm);
    ops->mat_free(ctx, &mk);
    ops->mat_free(ctx, &vt2);
    ops->mat_free(ctx, &u2);
    ops->mat_free(ctx, &bt);
    ops->mat_free(ctx, &rinv);
    ops->mat_free(ctx, &c);
    tm_free(h);
    return st;
}

tm_status tm_svd_randomized(const struct tm_backend_ops *ops, void *ctx, const struct tm_bsparse *X,
                            int64_t m, int64_t n, int64_t k, const struct tm_model_params *params,
                            const struct tm_progress *progress, struct tm_svd_result *out,
                            char *err)
{
    tm_status st = TM_OK;
    struct tm_bmat q = {0}, qn = {0}, y = {0}, u2 = {0}, vt2 = {0}, ua = {0};
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

    /* Q = random_state.normal(size=(b, l)), drawn in C (row) order. The
     * result is allocated at the end, once y and q are gone: peak memory is
     * then the corpus plus the (a + b) x l work matrices, not both. */
    host = tm_mallocarray((size_t)b * (size_t)l + 1, sizeof(double));
    s = tm_mallocarray((size_t)l + 1, sizeof(double));
    if (!host || !s) {
        st = tm_errf(err, TM_ENOMEM, "svd: cannot allocate the %lld x %lld test matrix",
                     (long long)b, (long long)l);
        goto out;
    }
    struct tm_rng rng;
    tm_rng_init(&rng, params->seed);
    for (int64_t i = 0; i < b; i++)
        for (int64_t j = 0; j < l; j++)
            host[i + (size_t)j * b] = tm_rng_normal(&rng);
    TM_TRY(tm_backend_take(ops, ctx, &host, b, l, &q, err));

    /* With gram_spmm, Q <- normalize(A^T A Q) in one pass over X, on the
     * short side only: scikit-learn also normalizes the long side's A Q in
     * between, but that only multiplies it on the right by an invertible
     * l x l matrix (LU: by U^-1), so both give the same subspace in exact
     * arithmetic, and the conditioning the LU after each pass sees is at
     * worst (s_1 / s_l)^2, harmless in float64. The (a x l) Y and its LU
     * factorizations then exist only at the end, and each iteration is one
     * pass over X, not two (bench/NOTES.md, "Randomized SVD"). */
    int fused = ops->gram_spmm != NULL;
    /* A truncated_svd fit, and hals's init, take their power iterations in
     * float32 where the backend offers it: they only find the subspace,
     * which the final stage's products, in the context's type, project
     * onto (svd.h). */
    int power_f32 = params->method == TM_METHOD_TRUNCATED_SVD ||
                    (params->method == TM_METHOD_NMF && params->solver == TM_NMF_HALS);
    tm_status (*power)(void *, const struct tm_bsparse *, int, const struct tm_bmat *,
                       const struct tm_bmat *, char *) =
        power_f32 && ops->gram_spmm_f32 ? ops->gram_spmm_f32 : ops->gram_spmm;
    TM_TRY(ops->mat_alloc(ctx, fused ? b : a, l, fused ? &qn : &y, err));
    for (int64_t it = 0; it < n_iter; it++) {
        if (fused) {
            TM_TRY(power(ctx, X, tat, &q, &qn, err));
            struct tm_bmat swap = q;
            q = qn;
            qn = swap;
        } else {
            TM_TRY(ops->spmm(ctx, X, ta, 1.0, &q, 0.0, &y, err));
            TM_TRY(normalize(ops, ctx, pin, &y, err));
            TM_TRY(ops->spmm(ctx, X, tat, 1.0, &y, 0.0, &q, err));
        }
        TM_TRY(normalize(ops, ctx, pin, &q, err));
        if (cancelled(progress, (double)(it + 1) / (double)(n_iter + 1))) {
            st = tm_errf(err, TM_ECANCELLED, "svd: cancelled after %lld power iterations",
                         (long long)(it + 1));
            goto out;
        }
    }
    if (fused) {
        int done;
        TM_TRY(final_by_gram(ops, ctx, X, transpose, a, b, k, l, &q, &qn, s, out, &done, err));
        if (done) {
            out->n_iter = n_iter;
            goto out;
        }
        /* gram_spmm's freed workspace would otherwise stay in the heap
         * under the final stage's peak (bench/NOTES.md, "Randomized SVD"). */
        ops->mat_free(ctx, &qn);
        tm_alloc_trim();
        TM_TRY(ops->mat_alloc(ctx, a, l, &y, err));
    }
    TM_TRY(ops->spmm(ctx, X, ta, 1.0, &q, 0.0, &y, err));
    TM_TRY(ops->orth_qr(ctx, &y, err));
    /* B = Q^T A is l x b; its transpose A^T Q reuses q. SVD of B^T =
     * U2 S Vt2 gives B = Vt2^T S U2^T: Uhat = Vt2^T, Vt(B) = U2^T. */
    TM_TRY(ops->spmm(ctx, X, tat, 1.0, &y, 0.0, &q, err));
    TM_TRY(ops->mat_alloc(ctx, b, l, &u2, err));
    TM_TRY(ops->mat_alloc(ctx, l, l, &vt2, err));
    TM_TRY(ops->svd_small(ctx, &q, &u2, s, &vt2, err));
    ops->mat_free(ctx, &q); /* destroyed by svd_small */
    TM_TRY(ops->mat_alloc(ctx, a, k, &ua, err));
    {
        struct tm_bmat vt2k = tm_bmat_block(&vt2, 0, k, 0, l), u2k = tm_bmat_cols(&u2, 0, k);
        TM_TRY(ops->gemm(ctx, TM_NOTRANS, TM_TRANS, 1.0, &y, &vt2k, 0.0, &ua, err));
        ops->mat_free(ctx, &y);
        TM_TRY(result_alloc(out, m, n, k, err));
        TM_TRY(finish(ops, ctx, transpose, &ua, &u2k, s, out, err));
    }
    out->n_iter = n_iter;
out:
    ops->mat_free(ctx, &ua);
    ops->mat_free(ctx, &qn);
    ops->mat_free(ctx, &vt2);
    ops->mat_free(ctx, &u2);
    ops->mat_free(ctx, &y);
    ops->mat_free(ctx, &q);
    tm_free(s);
    tm_free(host);
    return st;
}

/* ---- thick-restart block Lanczos on the Gram operator ---- */

struct lanczos {
    const struct tm_backend_ops *ops;
    void *ctx;
    const struct tm_bsparse *x;
    int first, second; /* the two products of the Gram operator: op1 then op2 */
    struct tm_bmat v, av, tmp, z, t1, tm, h;
    struct tm_rng rng;
    double *host; /* d doubles, for random vectors */
};

/* Everything but the basis v (mat_free zeroes what it frees, so twice is
 * harmless). */
static void free_workspace(struct lanczos *lz)
{
    struct tm_bmat *work[] = {&lz->h, &lz->tm, &lz->t1, &lz->z, &lz->tmp, &lz->av};
    for (size_t i = 0; i < sizeof(work) / sizeof(work[0]); i++)
        lz->ops->mat_free(lz->ctx, work[i]);
}

/* av = G v for a block of columns: the Gram operator X X^T or X^T X. */
static tm_status gram_apply(struct lanczos *lz, const struct tm_bmat *v, const struct tm_bmat *av,
                            char *err)
{
    if (lz->ops->gram_spmm)
        return lz->ops->gram_spmm(lz->ctx, lz->x, lz->first == TM_TRANS ? TM_NOTRANS : TM_TRANS, v,
                                  av, err);
    struct tm_bmat t1 = tm_bmat_cols(&lz->t1, 0, v->cols);
    tm_status st = lz->ops->spmm(lz->ctx, lz->x, lz->first, 1.0, v, 0.0, &t1, err);
    if (st == TM_OK)
        st = lz->ops->spmm(lz->ctx, lz->x, lz->second, 1.0, &t1, 0.0, av, err);
    return st;
}

/* z -= basis (basis^T z), one classical Gram-Schmidt pass (BLAS-3). */
static tm_status project_out(struct lanczos *lz, const struct tm_bmat *basis,
                             const struct tm_bmat *z, char *err)
{
    if (basis->cols == 0)
        return TM_OK;
    struct tm_bmat h = tm_bmat_block(&lz->h, 0, basis->cols, 0, z->cols);
    tm_status st = lz->ops->gemm(lz->ctx, TM_TRANS, TM_NOTRANS, 1.0, basis, z, 0.0, &h, err);
    if (st == TM_OK)
        st = lz->ops->gemm(lz->ctx, TM_NOTRANS, TM_NOTRANS, -1.0, basis, &h, 1.0, z, err);
    return st;
}

/*
 * z (d x nb) becomes orthonormal and orthogonal to basis: block classical
 * Gram-Schmidt twice with a QR after each pass (BCGS2, Barlow and
 * Smoktunowicz), the first pass against `first` only, the basis's last
 * columns (the caller's choice; the whole basis when unsure). Columns that
 * the first projection nearly annihilates (an exhausted Krylov space) are
 * replaced by random ones projected against the whole basis.
 */
static tm_status orth_block(struct lanczos *lz, const struct tm_bmat *first,
                            const struct tm_bmat *basis, const struct tm_bmat *z, char *err)
{
    const struct tm_backend_ops *ops = lz->ops;
    tm_status st;
    double before[64], after[64];
    int64_t nb = z->cols;
    if ((st = ops->col_norms(lz->ctx, z, before, err)) != TM_OK)
        return st;
    if ((st = project_out(lz, first, z, err)) != TM_OK)
        return st;
    if ((st = ops->col_norms(lz->ctx, z, after, err)) != TM_OK)
        return st;
    for (int64_t c = 0; c < nb; c++) {
        if (after[c] > 1e-10 * before[c] && after[c] > 0.0)
            continue;
        struct tm_bmat col = tm_bmat_cols(z, c, 1);
        for (int64_t i = 0; i < z->rows; i++)
            lz->host[i] = tm_rng_normal(&lz->rng);
        if ((st = ops->upload(lz->ctx, lz->host, z->rows, &col, err)) != TM_OK)
            return st;
        for (int pass = 0; pass < 2; pass++)
            if ((st = project_out(lz, basis, &col, err)) != TM_OK)
                return st;
    }
    if ((st = ops->orth_qr(lz->ctx, z, err)) != TM_OK ||
        (st = project_out(lz, basis, z, err)) != TM_OK)
        return st;
    return ops->orth_qr(lz->ctx, z, err);
}

/*
 * Where the first Gram-Schmidt pass of G V_b (V_b: the block at column b0)
 * starts: G V_b lies in the span of V_b, the block before it, and the next
 * block (the block three-term recurrence); the first block after a restart
 * (b0 == known) couples to all the kept Ritz vectors, and in the first
 * restart's first block there is nothing before it. The second pass goes
 * against the whole basis, so the basis is read twice a block, not four
 * times: at large k its passes are a large part of the fit (bench/NOTES.md,
 * "Lanczos").
 */
static int64_t near_from(int64_t b0, int64_t known, int64_t bs)
{
    if (b0 <= known)
        return 0;
    return b0 - bs > known ? b0 - bs : known;
}

double tm_svd_lanczos_tol(double tol, size_t elem_size)
{
    double eps = elem_size == sizeof(float) ? FLT_EPSILON : DBL_EPSILON;
    return tol > TM_SVD_TOL_ULPS * eps ? tol : TM_SVD_TOL_ULPS * eps;
}

tm_status tm_svd_lanczos(const struct tm_backend_ops *ops, void *ctx, const struct tm_bsparse *X,
                         int64_t m, int64_t n, int64_t k, const struct tm_model_params *params,
                         const struct tm_progress *progress, struct tm_svd_result *out, char *err)
{
    tm_status st = TM_OK;
    struct lanczos lz = {0};
    double *t = NULL, *ev = NULL, *s = NULL, *theta = NULL, *res = NULL, *scale = NULL;
    memset(out, 0, sizeof(*out));
    lz.ops = ops;
    lz.ctx = ctx;
    lz.x = X;
    /* The Gram operator of the short side: X X^T (vectors of length m) when
     * m <= n, else X^T X; as ARPACK-based svds does. */
    int short_rows = m <= n;
    lz.first = short_rows ? TM_TRANS : TM_NOTRANS;
    lz.second = short_rows ? TM_NOTRANS : TM_TRANS;
    int64_t d = short_rows ? m : n, len = short_rows ? n : m;
    /* Blocks of at most 8 vectors, each restart adding 8 blocks or k
     * vectors, whichever is more: narrow blocks are cheaper to apply per
     * vector on the CPU (gram_spmm's one-pass path), and the longer restarts
     * make up for their slower convergence. Up to k = 16, blocks of 2 that
     * keep 2k Ritz vectors and add 10 blocks a restart converge in fewer
     * vectors than blocks of 3 at about the same cost per vector. Both
     * measured faster: bench/NOTES.md, "Lanczos". */
    int64_t bs, keep, grow;
    if (k <= 16) {
        bs = 2;
        keep = 2 * k;
        grow = 10 * bs;
    } else {
        bs = (k + 3) / 4;
        bs = bs > 8 ? 8 : bs;
        keep = k + bs;
        grow = (k + bs - 1) / bs > 8 ? (k + bs - 1) / bs * bs : 8 * bs;
    }
    if (bs > d)
        bs = d;
    if (keep < k + bs)
        keep = k + bs;
    if (keep > d)
        keep = d;
    int64_t jmax = keep + grow < d ? keep + grow : d;
    double tol =
        tm_svd_lanczos_tol(params->svd_tol > 0 ? params->svd_tol : 1e-6, ops->elem_size(ctx));
    /* Residuals below this many units of theta_0 are rounding: 1e-15 (about
     * 4.5 eps) in float64, as many ulps in float32. */
    const double floor_rel =
        ops->elem_size(ctx) == sizeof(double) ? 1e-15 : 1e-15 * (FLT_EPSILON / DBL_EPSILON);
    int64_t max_restarts = params->svd_max_iter > 0 ? params->svd_max_iter : 1000;

    t = tm_mallocarray((size_t)jmax * (size_t)jmax, sizeof(double));
    s = tm_mallocarray((size_t)jmax * (size_t)keep, sizeof(double));
    ev = tm_mallocarray((size_t)jmax, sizeof(double));
    theta = tm_mallocarray((size_t)jmax, sizeof(double));
    res = tm_mallocarray((size_t)k, sizeof(double));
    scale = tm_mallocarray((size_t)k, sizeof(double));
    lz.host = tm_mallocarray((size_t)d, sizeof(double));
    if (!t || !s || !ev || !theta || !res || !scale || !lz.host) {
        st = tm_errf(err, TM_ENOMEM, "svd: cannot allocate Lanczos workspace");
        goto out;
    }
    TM_TRY(ops->mat_alloc(ctx, d, jmax, &lz.v, err));
    TM_TRY(ops->mat_alloc(ctx, d, jmax, &lz.av, err));
    TM_TRY(ops->mat_alloc(ctx, d, jmax, &lz.tmp, err));
    TM_TRY(ops->mat_alloc(ctx, d, bs, &lz.z, err));
    if (!ops->gram_spmm) /* the intermediate of the two-product form */
        TM_TRY(ops->mat_alloc(ctx, len, bs, &lz.t1, err));
    TM_TRY(ops->mat_alloc(ctx, jmax, jmax, &lz.tm, err));
    TM_TRY(ops->mat_alloc(ctx, jmax, bs, &lz.h, err));
    tm_rng_init(&lz.rng, params->seed);

    /* The start block: Gaussian, orthonormalized. */
    int64_t nv = 0, nb = bs, last = bs, restarts = 0, known = 0;
    {
        struct tm_bmat z0 = tm_bmat_cols(&lz.v, 0, nb), none = tm_bmat_cols(&lz.v, 0, 0);
        for (int64_t c = 0; c < nb; c++) {
            for (int64_t i = 0; i < d; i++)
                lz.host[i] = tm_rng_normal(&lz.rng);
            struct tm_bmat col = tm_bmat_cols(&z0, c, 1);
            TM_TRY(ops->upload(ctx, lz.host, d, &col, err));
        }
        TM_TRY(orth_block(&lz, &none, &none, &z0, err));
    }
    for (;;) {
        /* Expand the block Krylov basis up to jmax columns. */
        for (;;) {
            struct tm_bmat vb = tm_bmat_cols(&lz.v, nv, nb), avb = tm_bmat_cols(&lz.av, nv, nb);
            TM_TRY(gram_apply(&lz, &vb, &avb, err));
            nv += nb;
            last = nb;
            if (nv >= jmax)
                break;
            int64_t nxt = bs < jmax - nv ? bs : jmax - nv;
            if (nxt > last)
                nxt = last;
            /* Only whole blocks, or the block Krylov-Schur relation breaks:
             * part of G V_last would be in neither the basis nor Z. A partial
             * block only completes the whole space (jmax == d). */
            if (nxt < last && jmax < d)
                break;
            int64_t b0 = nv - last, lo = near_from(b0, known, bs);
            struct tm_bmat src = tm_bmat_cols(&lz.av, b0, nxt), dst = tm_bmat_cols(&lz.v, nv, nxt),
                           basis = tm_bmat_cols(&lz.v, 0, nv),
                           near = tm_bmat_cols(&lz.v, lo, nv - lo);
            TM_TRY(ops->copy(ctx, &src, &dst, err));
            TM_TRY(orth_block(&lz, &near, &basis, &dst, err));
            nb = nxt;
        }
        /* Rayleigh-Ritz: T = V^T (G V), T = S diag(theta) S^T. After a
         * restart the first `known` columns are the kept Ritz vectors, and
         * their block of T is diag(theta) (as thick-restart Lanczos takes
         * it): only the columns of the new blocks are multiplied out. */
        struct tm_bmat vall = tm_bmat_cols(&lz.v, 0, nv), avall = tm_bmat_cols(&lz.av, 0, nv),
                       avnew = tm_bmat_cols(&lz.av, known, nv - known),
                       tmb = tm_bmat_block(&lz.tm, 0, nv, known, nv - known);
        TM_TRY(ops->gemm(ctx, TM_TRANS, TM_NOTRANS, 1.0, &vall, &avnew, 0.0, &tmb, err));
        TM_TRY(ops->download(ctx, &tmb, t + known * nv, nv, err));
        for (int64_t j = 0; j < known; j++)
            for (int64_t i = 0; i < known; i++)
                t[i + j * nv] = i == j ? theta[j] : 0.0;
        for (int64_t j = known; j < nv; j++) {
            for (int64_t i = 0; i < known; i++)
                t[j + i * nv] = t[i + j * nv];
            for (int64_t i = known; i < j; i++)
                t[i + j * nv] = t[j + i * nv] = 0.5 * (t[i + j * nv] + t[j + i * nv]);
        }
        lapack_int info =
            LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', (lapack_int)nv, t, (lapack_int)nv, ev);
        if (info != 0) {
            st = info == LAPACK_WORK_MEMORY_ERROR
                     ? tm_errf(err, TM_ENOMEM, "svd: syevd workspace")
                     : tm_errf(err, TM_ELAPACK, "svd: syevd of the projection failed (%d)",
                               (int)info);
            goto out;
        }
        if (!all_finite(ev, nv)) {
            st = tm_errf(err, TM_ENUMERIC, "svd: Lanczos produced NaN or Inf");
            goto out;
        }
        int64_t kk = keep < nv ? keep : nv;
        for (int64_t c = 0; c < kk; c++) { /* descending */
            theta[c] = ev[nv - 1 - c];
            memcpy(s + c * nv, t + (nv - 1 - c) * nv, (size_t)nv * sizeof(double));
        }
        restarts++;
        /* The next block continues the Krylov space: the images of the last
         * block orthogonalized against the whole basis, before it is cut, so
         * that the kept Ritz vectors' residuals lie in its span (the block
         * Krylov-Schur relation G Y = Y diag(theta) + Z E). */
        int64_t nxt = last, lo = near_from(nv - last, known, bs);
        struct tm_bmat zl = tm_bmat_cols(&lz.z, 0, nxt),
                       lastav = tm_bmat_cols(&lz.av, nv - last, nxt),
                       near = tm_bmat_cols(&lz.v, lo, nv - lo);
        if (nv < d) {
            TM_TRY(ops->copy(ctx, &lastav, &zl, err));
            TM_TRY(orth_block(&lz, &near, &vall, &zl, err));
        }
        /* Rotate: V <- V S, G V <- (G V) S (kk columns), each made in tmp,
         * which then trades places with the matrix it replaces: the old
         * columns are not needed again, and no copy is made. */
        struct tm_bmat sb = tm_bmat_block(&lz.tm, 0, nv, 0, kk), tk = tm_bmat_cols(&lz.tmp, 0, kk),
                       swap;
        TM_TRY(ops->upload(ctx, s, nv, &sb, err));
        TM_TRY(ops->gemm(ctx, TM_NOTRANS, TM_NOTRANS, 1.0, &vall, &sb, 0.0, &tk, err));
        swap = lz.v, lz.v = lz.tmp, lz.tmp = swap;
        tk = tm_bmat_cols(&lz.tmp, 0, kk);
        TM_TRY(ops->gemm(ctx, TM_NOTRANS, TM_NOTRANS, 1.0, &avall, &sb, 0.0, &tk, err));
        swap = lz.av, lz.av = lz.tmp, lz.tmp = swap;
        /* Residuals ||G y_i - theta_i y_i|| of the wanted Ritz pairs. */
        struct tm_bmat rk = tm_bmat_cols(&lz.tmp, 0, k), vkk = tm_bmat_cols(&lz.v, 0, k),
                       avkk = tm_bmat_cols(&lz.av, 0, k);
        for (int64_t c = 0; c < k; c++)
            scale[c] = -theta[c];
        TM_TRY(ops->copy(ctx, &vkk, &rk, err));
        TM_TRY(ops->scale_cols(ctx, &rk, scale, err));
        TM_TRY(ops->axpy(ctx, 1.0, &avkk, &rk, err));
        TM_TRY(ops->col_norms(ctx, &rk, res, err));
        /* |theta_i - lambda_i| <= res_i, and sigma = sqrt(theta): a residual
         * below tol * theta_i bounds sigma_i's relative error by tol / 2. */
        int64_t nconv = 0;
        for (int64_t c = 0; c < k; c++)
            nconv += res[c] <= tol * fmax(theta[c], 1e-300) || res[c] <= floor_rel * theta[0];
        int done = nconv == k || nv >= d;
        if (!done && restarts >= max_restarts) {
            st = tm_errf(err, TM_ENUMERIC,
                         "svd: lanczos did not converge in %lld restarts (%lld of %lld "
                         "singular values to tol %g); raise model.max_iter",
                         (long long)restarts, (long long)nconv, (long long)k, tol);
            goto out;
        }
        if (cancelled(progress, done ? 1.0 : 0.99 * (double)nconv / (double)k)) {
            st = tm_errf(err, TM_ECANCELLED, "svd: cancelled after %lld restarts",
                         (long long)restarts);
            goto out;
        }
        if (done)
            break;
        /* Z is orthogonal to the old basis, hence to the Ritz vectors; one
         * more pass against them only cleans rounding (no first pass). */
        nv = kk;
        known = kk;
        nb = nxt;
        struct tm_bmat dst = tm_bmat_cols(&lz.v, nv, nb), basis = tm_bmat_cols(&lz.v, 0, nv),
                       none = tm_bmat_cols(&lz.v, 0, 0);
        TM_TRY(ops->copy(ctx, &zl, &dst, err));
        TM_TRY(orth_block(&lz, &none, &basis, &dst, err));
    }
    /* Only the first k basis vectors are left to use: the rest of the
     * workspace goes before the result comes, and the long side's vectors,
     * op(X) y_i / sigma_i, are made in the result (long_side), so the peak
     * is the basis or the result, never both. The restarts trade the
     * basis's place with tmp's, so the freed workspace can lie below the
     * basis in the heap, where free() keeps it: trimmed, it goes back
     * (bench/NOTES.md, "Lanczos"). */
    free_workspace(&lz);
    tm_alloc_trim();
    TM_TRY(result_alloc(out, m, n, k, err));
    out->n_iter = restarts;
    out->tol = tol;
    for (int64_t c = 0; c < k; c++) {
        out->s[c] = sqrt(theta[c] > 0 ? theta[c] : 0.0);
        scale[c] = out->s[c] > 0 ? 1.0 / out->s[c] : 0.0;
    }
    {
        struct tm_bmat yk = tm_bmat_cols(&lz.v, 0, k);
        double *short_vecs = short_rows ? out->u : out->v,
               *long_vecs = short_rows ? out->v : out->u;
        TM_TRY(ops->download(ctx, &yk, short_vecs, d, err));
        TM_TRY(long_side(ops, ctx, X, lz.first, &yk, scale, len, long_vecs, err));
        TM_TRY(finite_and_flipped(out, err));
    }
out:
    free_workspace(&lz);
    ops->mat_free(ctx, &lz.v);
    tm_free(lz.host);
    tm_free(scale);
    tm_free(res);
    tm_free(theta);
    tm_free(ev);
    tm_free(s);
    tm_free(t);
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
        return tm_errf(err, TM_ETOOBIG,
                       "model.method: full_svd of %lld x %lld needs %.0f MiB, over the "
                       "%.0f MiB cap (max_dense_bytes); use truncated_svd",
                       (long long)m, (long long)n, need / 1048576.0,
                       (double)max_dense_bytes / 1048576.0);
    if (need > (double)SIZE_MAX / 2 || m > INT32_MAX || n > INT32_MAX)
        return tm_errf(err, TM_ETOOBIG, "model.method: full_svd of %lld x %lld is too big",
                       (long long)m, (long long)n);
    TM_TRY(result_alloc(out, m, n, k, err));
    a = tm_calloc((size_t)m * (size_t)n, sizeof(double));
    u = tm_mallocarray((size_t)m * (size_t)p, sizeof(double));
    vt = tm_mallocarray((size_t)p * (size_t)n, sizeof(double));
    s = tm_mallocarray((size_t)p, sizeof(double));
    if (!a || !u || !vt || !s) {
        st = tm_errf(err, TM_ENOMEM, "svd: cannot allocate the dense %lld x %lld matrix",
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
                 ? tm_errf(err, TM_ENOMEM, "svd: gesdd workspace")
                 : tm_errf(err, TM_ELAPACK, "svd: gesdd failed (info %d)", (int)info);
        goto out;
    }
    memcpy(out->u, u, (size_t)m * (size_t)k * sizeof(double));
    for (int64_t j = 0; j < k; j++)
        for (int64_t i = 0; i < n; i++)
            out->v[i + (size_t)j * n] = vt[j + (size_t)i * p];
    memcpy(out->s, s, (size_t)k * sizeof(double));
    if (!all_finite(out->s, k)) {
        st = tm_errf(err, TM_ENUMERIC, "svd: singular values contain NaN or Inf");
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
