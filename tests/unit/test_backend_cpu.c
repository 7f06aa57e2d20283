/* test_backend_cpu.c - each CPU backend primitive against a naive reference. */
#include <lapacke.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/numerics/backend_cpu.h"
#include "core/numerics/cpu/cpu_internal.h"
#include "core/numerics/rng.h"
#include "harness.h"

/* A random m x n CSR with about density * m * n non-zeros in [0.1, 1.1). */
static void rand_csr(struct tm_csr *x, int64_t m, int64_t n, double density, uint64_t seed)
{
    struct tm_rng r;
    tm_rng_init(&r, seed);
    int64_t cap = m * n, nnz = 0;
    tm_csr_init(x, m, n, cap, NULL);
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            if (tm_rng_uniform(&r) < density) {
                x->indices[nnz] = (int32_t)j;
                x->data[nnz++] = 0.1 + tm_rng_uniform(&r);
            }
        }
        x->indptr[i + 1] = nnz;
    }
}

static double *dense_of(const struct tm_csr *x)
{
    double *d = calloc((size_t)(x->n_rows * x->n_cols), sizeof(double));
    for (int64_t i = 0; i < x->n_rows; i++)
        for (int64_t q = x->indptr[i]; q < x->indptr[i + 1]; q++)
            d[i + x->indices[q] * x->n_rows] = x->data[q];
    return d;
}

static double *rand_dense(int64_t r, int64_t c, uint64_t seed)
{
    struct tm_rng g;
    tm_rng_init(&g, seed);
    double *d = malloc((size_t)(r * c) * sizeof(double));
    for (int64_t i = 0; i < r * c; i++)
        d[i] = tm_rng_normal(&g);
    return d;
}

struct fixture {
    const struct tm_backend_ops *o;
    void *ctx;
};

static int setup(struct fixture *f, int threads)
{
    struct tm_backend_config cfg = {TM_DTYPE_AUTO, 0, threads};
    f->o = tm_backend_cpu();
    return f->o->create(&cfg, &f->ctx, NULL) == TM_OK;
}

static struct tm_bmat up(struct fixture *f, const double *h, int64_t r, int64_t c)
{
    struct tm_bmat m;
    f->o->mat_alloc(f->ctx, r, c, &m, NULL);
    f->o->upload(f->ctx, h, r, &m, NULL);
    return m;
}

static double maxdiff_mat(struct fixture *f, const struct tm_bmat *m, const double *ref)
{
    double *h = malloc((size_t)(m->rows * m->cols + 1) * sizeof(double)), d = 0;
    f->o->download(f->ctx, m, h, m->rows, NULL);
    for (int64_t i = 0; i < m->rows * m->cols; i++)
        d = fmax(d, fabs(h[i] - ref[i]));
    free(h);
    return d;
}

TM_TEST(backend_cpu_spmm_both_orientations_and_paths)
{
    /* A wide and a tall matrix exercise the gather and the scatter kernels. */
    int64_t shapes[2][2] = {{37, 150}, {150, 37}};
    for (int s = 0; s < 2; s++) {
        struct fixture f;
        REQUIRE(setup(&f, 3));
        struct tm_csr x;
        int64_t m = shapes[s][0], n = shapes[s][1], k = 7;
        rand_csr(&x, m, n, 0.1, 5 + s);
        double *xd = dense_of(&x);
        struct tm_bsparse *xb;
        REQUIRE(f.o->sparse_upload(f.ctx, &x, &xb, NULL) == TM_OK);
        for (int trans = 0; trans < 2; trans++) {
            int64_t r = trans ? n : m, c = trans ? m : n;
            for (int64_t kk = 1; kk <= k; kk += k - 1) {
                double *b = rand_dense(c, kk, 1), *c0 = rand_dense(r, kk, 2);
                double *ref = malloc((size_t)(r * kk) * sizeof(double));
                for (int64_t i = 0; i < r; i++)
                    for (int64_t j = 0; j < kk; j++) {
                        double acc = 0;
                        for (int64_t p = 0; p < c; p++)
                            acc += (trans ? xd[p + i * m] : xd[i + p * m]) * b[p + j * c];
                        ref[i + j * r] = 2.0 * acc - 0.5 * c0[i + j * r];
                    }
                struct tm_bmat bm = up(&f, b, c, kk), cm = up(&f, c0, r, kk);
                CHECK(f.o->spmm(f.ctx, xb, trans, 2.0, &bm, -0.5, &cm, NULL) == TM_OK);
                CHECK(maxdiff_mat(&f, &cm, ref) < 1e-12);
                f.o->mat_free(f.ctx, &bm);
                f.o->mat_free(f.ctx, &cm);
                free(b);
                free(c0);
                free(ref);
            }
        }
        f.o->sparse_free(f.ctx, xb);
        f.o->destroy(f.ctx);
        free(xd);
        tm_csr_release(&x);
    }
}

TM_TEST(backend_cpu_dense_ops)
{
    struct fixture f;
    REQUIRE(setup(&f, 1));
    int64_t m = 60, k = 5;
    double *a = rand_dense(m, k, 3), *b = rand_dense(m, k, 4);
    struct tm_bmat am = up(&f, a, m, k), bm = up(&f, b, m, k), g, c;
    f.o->mat_alloc(f.ctx, k, k, &g, NULL);
    f.o->mat_alloc(f.ctx, k, k, &c, NULL);
    /* gram and gemm(T, N) agree with the naive A^T A and A^T B */
    double ref[25], ref2[25];
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double s = 0, s2 = 0;
            for (int64_t p = 0; p < m; p++) {
                s += a[p + i * m] * a[p + j * m];
                s2 += a[p + i * m] * b[p + j * m];
            }
            ref[i + j * k] = s;
            ref2[i + j * k] = s2;
        }
    CHECK(f.o->gram(f.ctx, &am, &g, NULL) == TM_OK);
    CHECK(maxdiff_mat(&f, &g, ref) < 1e-12);
    CHECK(f.o->gemm(f.ctx, TM_TRANS, TM_NOTRANS, 1.0, &am, &bm, 0.0, &c, NULL) == TM_OK);
    CHECK(maxdiff_mat(&f, &c, ref2) < 1e-12);
    double d, norms[5], sums[5];
    CHECK(f.o->dot(f.ctx, &am, &bm, &d, NULL) == TM_OK);
    double tr = 0;
    for (int64_t i = 0; i < k; i++)
        tr += ref2[i + i * k];
    CHECK_NEAR(d, tr, 1e-12);
    f.o->col_norms(f.ctx, &am, norms, NULL);
    f.o->col_sums(f.ctx, &am, sums, NULL);
    for (int64_t j = 0; j < k; j++) {
        double s = 0;
        for (int64_t p = 0; p < m; p++)
            s += a[p + j * m];
        CHECK_NEAR(norms[j], sqrt(ref[j + j * k]), 1e-12);
        CHECK_NEAR(sums[j], s, 1e-12);
    }
    /* axpy, scale_cols, copy, fill on views */
    double scale[5] = {1, 2, 3, 4, 5};
    struct tm_bmat v = tm_bmat_block(&am, 10, 20, 1, 3);
    CHECK(f.o->scale_cols(f.ctx, &v, scale, NULL) == TM_OK);
    CHECK(f.o->axpy(f.ctx, -1.0, &bm, &am, NULL) == TM_OK);
    double *h = malloc((size_t)(m * k) * sizeof(double));
    f.o->download(f.ctx, &am, h, m, NULL);
    CHECK_NEAR(h[15 + 2 * m], a[15 + 2 * m] * 2 - b[15 + 2 * m], 1e-12);
    CHECK_NEAR(h[5 + 2 * m], a[5 + 2 * m] - b[5 + 2 * m], 1e-12);
    CHECK(f.o->fill(f.ctx, &v, 0.25, NULL) == TM_OK);
    CHECK(f.o->copy(f.ctx, &am, &bm, NULL) == TM_OK);
    f.o->download(f.ctx, &bm, h, m, NULL);
    CHECK(h[12 + 3 * m] == 0.25 && h[12] == a[12] - b[12]);
    free(h);
    f.o->mat_free(f.ctx, &am);
    f.o->mat_free(f.ctx, &bm);
    f.o->mat_free(f.ctx, &g);
    f.o->mat_free(f.ctx, &c);
    f.o->destroy(f.ctx);
    free(a);
    free(b);
}

/* max |Q^T Q - I| and the residual of A projected on span(Q). */
static void check_basis(struct tm_test_ctx *t, const double *q, const double *a, int64_t m,
                        int64_t k, double tol)
{
    double orth = 0, resid = 0;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int64_t p = 0; p < m; p++)
                s += q[p + i * m] * q[p + j * m];
            orth = fmax(orth, fabs(s - (i == j)));
        }
    for (int64_t j = 0; j < k; j++) {
        double *r = malloc((size_t)m * sizeof(double));
        for (int64_t p = 0; p < m; p++)
            r[p] = a[p + j * m];
        for (int64_t i = 0; i < k; i++) {
            double s = 0;
            for (int64_t p = 0; p < m; p++)
                s += q[p + i * m] * a[p + j * m];
            for (int64_t p = 0; p < m; p++)
                r[p] -= s * q[p + i * m];
        }
        for (int64_t p = 0; p < m; p++)
            resid = fmax(resid, fabs(r[p]));
        free(r);
    }
    CHECK(orth < tol);
    CHECK(resid < tol * 10);
}

TM_TEST(backend_cpu_qr_lu_and_small_svd)
{
    struct fixture f;
    REQUIRE(setup(&f, 1));
    for (int64_t m = 9; m <= 200; m += 191) { /* Householder and CholQR2 paths */
        int64_t k = 6;
        double *a = rand_dense(m, k, 7), *q = malloc((size_t)(m * k) * sizeof(double));
        struct tm_bmat am = up(&f, a, m, k);
        CHECK(f.o->orth_qr(f.ctx, &am, NULL) == TM_OK);
        f.o->download(f.ctx, &am, q, m, NULL);
        check_basis(t, q, a, m, k, 1e-12);
        /* LU: P L has unit "diagonal" entries, |entries| <= 1, and the span of A */
        f.o->upload(f.ctx, a, m, &am, NULL);
        CHECK(f.o->orth_lu(f.ctx, &am, NULL) == TM_OK);
        f.o->download(f.ctx, &am, q, m, NULL);
        int ones_ok = 1;
        for (int64_t j = 0; j < k; j++) {
            int ones = 0;
            for (int64_t p = 0; p < m; p++) {
                ones += q[p + j * m] == 1.0;
                ones_ok &= fabs(q[p + j * m]) <= 1.0;
            }
            ones_ok &= ones >= 1;
        }
        CHECK(ones_ok);
        f.o->orth_qr(f.ctx, &am, NULL);
        f.o->download(f.ctx, &am, q, m, NULL);
        check_basis(t, q, a, m, k, 1e-10);
        /* small SVD of A^T (k x m, wide): A^T = U S Vt */
        struct tm_bmat at, u, vt;
        f.o->mat_alloc(f.ctx, k, m, &at, NULL);
        f.o->mat_alloc(f.ctx, k, k, &u, NULL);
        f.o->mat_alloc(f.ctx, k, m, &vt, NULL);
        double *ah = malloc((size_t)(m * k) * sizeof(double)), s[6];
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < k; j++)
                ah[j + i * k] = a[i + j * m];
        f.o->upload(f.ctx, ah, k, &at, NULL);
        CHECK(f.o->svd_small(f.ctx, &at, &u, s, &vt, NULL) == TM_OK);
        double *uh = malloc(36 * sizeof(double)), *vh = malloc((size_t)(m * k) * sizeof(double));
        f.o->download(f.ctx, &u, uh, k, NULL);
        f.o->download(f.ctx, &vt, vh, k, NULL);
        double err = 0;
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < m; j++) {
                double r = 0;
                for (int64_t p = 0; p < k; p++)
                    r += uh[i + p * k] * s[p] * vh[p + j * k];
                err = fmax(err, fabs(r - ah[i + j * k]));
            }
        CHECK(err < 1e-11);
        for (int64_t p = 1; p < k; p++)
            CHECK(s[p] <= s[p - 1] && s[p] >= 0);
        f.o->mat_free(f.ctx, &at);
        f.o->mat_free(f.ctx, &u);
        f.o->mat_free(f.ctx, &vt);
        f.o->mat_free(f.ctx, &am);
        free(ah);
        free(uh);
        free(vh);
        free(a);
        free(q);
    }
    f.o->destroy(f.ctx);
}

/* scikit-learn's _update_cdnmf_fast, transcribed. */
static double ref_hals(double *w, const double *hht, const double *xht, int64_t m, int64_t k,
                       double l1, double l2)
{
    double violation = 0;
    for (int64_t t2 = 0; t2 < k; t2++)
        for (int64_t i = 0; i < m; i++) {
            double grad = -(xht[i + t2 * m] - l1);
            for (int64_t r = 0; r < k; r++)
                grad += (hht[t2 + r * k] + (r == t2 ? l2 : 0)) * w[i + r * m];
            double pg = w[i + t2 * m] == 0 ? fmin(grad, 0) : grad;
            violation += fabs(pg);
            double hess = hht[t2 + t2 * k] + l2;
            if (hess != 0)
                w[i + t2 * m] = fmax(w[i + t2 * m] - grad / hess, 0);
        }
    return violation;
}

TM_TEST(backend_cpu_nmf_updates)
{
    int64_t m = 150, k = 4;
    double *w0 = rand_dense(m, k, 11), *xht = rand_dense(m, k, 12), *g0 = rand_dense(k, k, 13);
    for (int64_t i = 0; i < m * k; i++) {
        w0[i] = fabs(w0[i]) * (i % 7 != 0);
        xht[i] = fabs(xht[i]) * 3;
    }
    double g[16];
    for (int64_t i = 0; i < k; i++) /* a symmetric positive definite Gram */
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++)
                s += g0[p + i * k] * g0[p + j * k];
            g[i + j * k] = s + (i == j) * 0.5;
        }
    double *wr = malloc((size_t)(m * k) * sizeof(double));
    memcpy(wr, w0, (size_t)(m * k) * sizeof(double));
    double vref = ref_hals(wr, g, xht, m, k, 0.1, 0.2);
    double *got[2];
    for (int th = 0; th < 2; th++) {
        struct fixture f;
        REQUIRE(setup(&f, th ? 4 : 1));
        struct tm_bmat wm = up(&f, w0, m, k), gm = up(&f, g, k, k), xm = up(&f, xht, m, k);
        double v;
        CHECK(f.o->hals_sweep(f.ctx, &wm, &gm, &xm, 0.1, 0.2, NULL, &v, NULL) == TM_OK);
        CHECK_NEAR(v, vref, 1e-10);
        CHECK(maxdiff_mat(&f, &wm, wr) < 1e-12);
        got[th] = malloc((size_t)(m * k) * sizeof(double));
        f.o->download(f.ctx, &wm, got[th], m, NULL);
        /* mu: M *= numer / (denom + l1 + l2 M), zero below a threshold */
        f.o->upload(f.ctx, w0, m, &wm, NULL);
        double row[4] = {1, 2, 0, 4};
        CHECK(f.o->mu_update(f.ctx, &wm, &xm, NULL, row, 0.5, 0.0, 1e-3, NULL) == TM_OK);
        double *h = malloc((size_t)(m * k) * sizeof(double));
        f.o->download(f.ctx, &wm, h, m, NULL);
        CHECK_NEAR(h[3 + 1 * m], w0[3 + m] * xht[3 + m] / 2.5, 1e-12);
        CHECK_NEAR(h[3 + 2 * m], w0[3 + 2 * m] * xht[3 + 2 * m] / 0.5, 1e-12);
        /* pgd: clamped step with the penalty below mu */
        f.o->upload(f.ctx, w0, m, &wm, NULL);
        CHECK(f.o->pgd_update(f.ctx, &wm, &xm, &xm, 0.1, 10.0, 1e-6, NULL) == TM_OK);
        f.o->download(f.ctx, &wm, h, m, NULL);
        int ok = 1;
        for (int64_t i = 0; i < m * k; i++) {
            double pen = w0[i] >= 1e-6 ? 0 : w0[i] - 1e-6;
            ok &= fabs(h[i] - fmax(w0[i] - 0.1 * 10.0 * pen, 0)) < 1e-12;
        }
        CHECK(ok);
        free(h);
        f.o->mat_free(f.ctx, &wm);
        f.o->mat_free(f.ctx, &gm);
        f.o->mat_free(f.ctx, &xm);
        f.o->destroy(f.ctx);
    }
    CHECK(memcmp(got[0], got[1], (size_t)(m * k) * sizeof(double)) == 0);
    free(got[0]);
    free(got[1]);
    free(wr);
    free(w0);
    free(xht);
    free(g0);
}

TM_TEST(backend_cpu_kl_products)
{
    struct fixture f;
    REQUIRE(setup(&f, 2));
    struct tm_csr x;
    int64_t m = 30, n = 80, k = 3;
    rand_csr(&x, m, n, 0.2, 21);
    double *w = rand_dense(m, k, 22), *ht = rand_dense(n, k, 23);
    for (int64_t i = 0; i < m * k; i++)
        w[i] = fabs(w[i]);
    for (int64_t i = 0; i < n * k; i++)
        ht[i] = fabs(ht[i]);
    ht[0] = ht[n] = ht[2 * n] = 0; /* a zero row of H^T: WH = 0 -> eps */
    struct tm_bsparse *xb;
    REQUIRE(f.o->sparse_upload(f.ctx, &x, &xb, NULL) == TM_OK);
    double *refw = calloc((size_t)(m * k), sizeof(double)), *refh = calloc((size_t)(n * k), 8);
    double refsum = 0, eps = 1e-7;
    for (int64_t i = 0; i < m; i++)
        for (int64_t q = x.indptr[i]; q < x.indptr[i + 1]; q++) {
            int64_t j = x.indices[q];
            double wh = 0;
            for (int64_t r = 0; r < k; r++)
                wh += w[i + r * m] * ht[j + r * n];
            wh = fmax(wh, eps);
            double ratio = x.data[q] / wh;
            for (int64_t r = 0; r < k; r++) {
                refw[i + r * m] += ratio * ht[j + r * n];
                refh[j + r * n] += ratio * w[i + r * m];
            }
            refsum += x.data[q] * log(x.data[q] / wh) - x.data[q];
        }
    struct tm_bmat wm = up(&f, w, m, k), hm = up(&f, ht, n, k), cw, ch;
    f.o->mat_alloc(f.ctx, m, k, &cw, NULL);
    f.o->mat_alloc(f.ctx, n, k, &ch, NULL);
    CHECK(f.o->kl_spmm(f.ctx, xb, TM_NOTRANS, &wm, &hm, eps, &cw, NULL) == TM_OK);
    CHECK(f.o->kl_spmm(f.ctx, xb, TM_TRANS, &hm, &wm, eps, &ch, NULL) == TM_OK);
    CHECK(maxdiff_mat(&f, &cw, refw) < 1e-6);
    CHECK(maxdiff_mat(&f, &ch, refh) < 1e-6);
    double s;
    CHECK(f.o->kl_sum(f.ctx, xb, &wm, &hm, eps, &s, NULL) == TM_OK);
    CHECK_NEAR(s, refsum, 1e-10);
    f.o->mat_free(f.ctx, &wm);
    f.o->mat_free(f.ctx, &hm);
    f.o->mat_free(f.ctx, &cw);
    f.o->mat_free(f.ctx, &ch);
    f.o->sparse_free(f.ctx, xb);
    f.o->destroy(f.ctx);
    tm_csr_release(&x);
    free(w);
    free(ht);
    free(refw);
    free(refh);
}

/* Gram, dot and the HALS sweep (fixed row chunks, per-chunk sums added in
 * order, 16-row tiles with a partial last one) give the same bits for any
 * thread count, and agree with the naive sums, also past GRAM_MAX_K where
 * gram is OpenBLAS's. */
TM_TEST(backend_cpu_reductions_thread_invariant)
{
    const int64_t m = 1003, ks[2] = {20, 130};
    for (int ki = 0; ki < 2; ki++) {
        int64_t k = ks[ki];
        double *a = rand_dense(m, k, 11), *b = rand_dense(m, k, 12);
        double *gref = NULL, dref = 0, *wref = NULL, vref = 0;
        for (int threads = 1; threads <= 3; threads++) {
            struct fixture f;
            REQUIRE(setup(&f, threads));
            struct tm_bmat am = up(&f, a, m, k), bm = up(&f, b, m, k), g;
            f.o->mat_alloc(f.ctx, k, k, &g, NULL);
            double d, v, *gh = malloc((size_t)(k * k) * sizeof(double));
            double *wh = malloc((size_t)(m * k) * sizeof(double));
            CHECK(f.o->gram(f.ctx, &am, &g, NULL) == TM_OK);
            CHECK(f.o->dot(f.ctx, &am, &bm, &d, NULL) == TM_OK);
            f.o->download(f.ctx, &g, gh, k, NULL);
            if (threads == 1) {
                double e = 0;
                for (int64_t i = 0; i < k; i++)
                    for (int64_t j = 0; j < k; j++) {
                        double s = 0;
                        for (int64_t p = 0; p < m; p++)
                            s += a[p + i * m] * a[p + j * m];
                        e = fmax(e, fabs(s - gh[i + j * k]) / (fabs(s) + 1));
                    }
                CHECK(e < 1e-12);
            }
            /* a HALS sweep of |A| against G = A^T A + I, XHt = |B| */
            for (int64_t i = 0; i < m * k; i++) {
                a[i] = fabs(a[i]);
                b[i] = fabs(b[i]);
            }
            struct tm_bmat wm = up(&f, a, m, k), xm = up(&f, b, m, k);
            for (int64_t c = 0; c < k; c++)
                gh[c + c * k] += 1.0;
            struct tm_bmat gm = up(&f, gh, k, k);
            CHECK(f.o->hals_sweep(f.ctx, &wm, &gm, &xm, 0.0, 0.0, NULL, &v, NULL) == TM_OK);
            f.o->download(f.ctx, &wm, wh, m, NULL);
            if (threads == 1) {
                gref = gh;
                wref = wh;
                dref = d;
                vref = v;
            } else {
                CHECK(memcmp(gh, gref, (size_t)(k * k) * sizeof(double)) == 0);
                CHECK(memcmp(wh, wref, (size_t)(m * k) * sizeof(double)) == 0);
                CHECK(d == dref);
                CHECK(v == vref);
                free(gh);
                free(wh);
            }
            /* undo |.| so every thread count starts from the same a, b */
            free(a);
            free(b);
            a = rand_dense(m, k, 11);
            b = rand_dense(m, k, 12);
            f.o->mat_free(f.ctx, &gm);
            f.o->mat_free(f.ctx, &xm);
            f.o->mat_free(f.ctx, &wm);
            f.o->mat_free(f.ctx, &g);
            f.o->mat_free(f.ctx, &bm);
            f.o->mat_free(f.ctx, &am);
            f.o->destroy(f.ctx);
        }
        free(gref);
        free(wref);
        free(a);
        free(b);
    }
}

/* hals_sweep_fused and mu_update_fused against the ops they fuse (spmm,
 * hals_sweep or gemm and mu_update, dot, gram), both halves, on a wide and a
 * tall X, with a permutation and l2, k = 7 with l1 and k = 8 without (the
 * tile's 4-row transposes and the sweep's P shared with <P, M>), for 1 and 3
 * threads: M to rounding, and exactly the same for every thread count;
 * factors that are not whole transposes are refused. */
TM_TEST(backend_cpu_fused_halves_match_unfused)
{
    const int64_t shapes[2][2] = {{70, 301}, {260, 45}};
    const int64_t perms[2][8] = {{3, 0, 6, 1, 5, 2, 4}, {3, 0, 6, 1, 7, 5, 2, 4}};
    for (int si = 0; si < 16; si++) {
        const int64_t k = si < 8 ? 7 : 8, *perm = perms[si / 8];
        const double l1 = si < 8 ? 0.05 : 0.0;
        int64_t m = shapes[si / 4 % 2][0], n = shapes[si / 4 % 2][1];
        int side = si % 2 ? TM_NOTRANS : TM_TRANS, mu = si / 2 % 2;
        /* M is swept, F is the other factor: (Ht, W) for the H half */
        int64_t rm = side == TM_TRANS ? n : m, rf = side == TM_TRANS ? m : n;
        struct tm_csr x;
        rand_csr(&x, m, n, 0.08, 21 + (uint64_t)si);
        double *fh = rand_dense(rf, k, 22), *mh = rand_dense(rm, k, 23), g[64];
        for (int64_t i = 0; i < rf * k; i++)
            fh[i] = fabs(fh[i]);
        for (int64_t i = 0; i < rm * k; i++)
            mh[i] = fabs(mh[i]) * (i % 5 != 0);
        for (int64_t i = 0; i < k; i++) /* F^T F + diagonal, symmetric */
            for (int64_t j = 0; j < k; j++) {
                double sum = 0;
                for (int64_t p = 0; p < rf; p++)
                    sum += fh[p + i * rf] * fh[p + j * rf];
                g[i + j * k] = sum + (i == j) * 0.5;
            }
        double *ref_m = malloc((size_t)(rm * k) * sizeof(double)), ref_gram[64], ref_v, ref_cross;
        double *first_m = malloc((size_t)(rm * k) * sizeof(double)), first_gram[64];
        double *mh_got = malloc((size_t)(rm * k) * sizeof(double));
        double first_v = 0, first_cross = 0;
        for (int threads = 1; threads <= 3; threads += 2) {
            struct fixture f;
            REQUIRE(setup(&f, threads));
            struct tm_bsparse *xb;
            REQUIRE(f.o->sparse_upload(f.ctx, &x, &xb, NULL) == TM_OK);
            struct tm_bmat fm = up(&f, fh, rf, k), mm = up(&f, mh, rm, k), gm = up(&f, g, k, k);
            struct tm_bmat prod, gram;
            f.o->mat_alloc(f.ctx, rm, k, &prod, NULL);
            f.o->mat_alloc(f.ctx, k, k, &gram, NULL);
            if (threads == 1) { /* the unfused reference */
                CHECK(f.o->spmm(f.ctx, xb, side, 1.0, &fm, 0.0, &prod, NULL) == TM_OK);
                if (mu) {
                    struct tm_bmat den;
                    f.o->mat_alloc(f.ctx, rm, k, &den, NULL);
                    CHECK(f.o->gemm(f.ctx, TM_NOTRANS, TM_NOTRANS, 1.0, &mm, &gm, 0.0, &den,
                                    NULL) == TM_OK);
                    CHECK(f.o->mu_update(f.ctx, &mm, &prod, &den, NULL, l1, 0.3, 0.0, NULL) ==
                          TM_OK);
                    f.o->mat_free(f.ctx, &den);
                    ref_v = 0;
                } else {
                    CHECK(f.o->hals_sweep(f.ctx, &mm, &gm, &prod, l1, 0.3, perm, &ref_v, NULL) ==
                          TM_OK);
                }
                CHECK(f.o->dot(f.ctx, &prod, &mm, &ref_cross, NULL) == TM_OK);
                CHECK(f.o->gram(f.ctx, &mm, &gram, NULL) == TM_OK);
                f.o->download(f.ctx, &mm, ref_m, rm, NULL);
                f.o->download(f.ctx, &gram, ref_gram, k, NULL);
                f.o->upload(f.ctx, mh, rm, &mm, NULL);
            }
            /* The fused ops take both factors transposed. */
            double *th = malloc((size_t)(rm > rf ? rm : rf) * (size_t)k * sizeof(double));
            for (int64_t i = 0; i < rf; i++)
                for (int64_t r = 0; r < k; r++)
                    th[r + i * k] = fh[i + r * rf];
            struct tm_bmat ftm = up(&f, th, k, rf);
            for (int64_t i = 0; i < rm; i++)
                for (int64_t r = 0; r < k; r++)
                    th[r + i * k] = mh[i + r * rm];
            struct tm_bmat mtm = up(&f, th, k, rm);
            double v = 0, cross = -1, got_gram[64];
            if (mu)
                REQUIRE(f.o->mu_update_fused(f.ctx, xb, side, &mtm, &ftm, &gm, l1, 0.3, &cross,
                                             &gram, NULL) == TM_OK);
            else
                REQUIRE(f.o->hals_sweep_fused(f.ctx, xb, side, &mtm, &ftm, &gm, l1, 0.3, perm, &v,
                                              &cross, &gram, NULL) == TM_OK);
            f.o->download(f.ctx, &mtm, th, k, NULL);
            for (int64_t i = 0; i < rm; i++)
                for (int64_t r = 0; r < k; r++)
                    mh_got[i + r * rm] = th[r + i * k];
            f.o->upload(f.ctx, mh_got, rm, &mm, NULL);
            /* a view with a larger leading dimension is not a whole Mt */
            struct tm_bmat wide = {0}, part;
            f.o->mat_alloc(f.ctx, k + 1, rm, &wide, NULL);
            part = tm_bmat_block(&wide, 0, k, 0, rm);
            CHECK(f.o->hals_sweep_fused(f.ctx, xb, side, &part, &ftm, &gm, l1, 0.3, perm, &v,
                                        &cross, &gram, NULL) == TM_EINVAL);
            f.o->mat_free(f.ctx, &wide);
            f.o->mat_free(f.ctx, &mtm);
            f.o->mat_free(f.ctx, &ftm);
            free(th);
            f.o->download(f.ctx, &gram, got_gram, k, NULL);
            CHECK(maxdiff_mat(&f, &mm, ref_m) < 1e-12);
            CHECK_NEAR(v, ref_v, 1e-10 * (1 + fabs(ref_v)));
            CHECK_NEAR(cross, ref_cross, 1e-10 * (1 + fabs(ref_cross)));
            double e = 0;
            for (int64_t i = 0; i < k * k; i++)
                e = fmax(e, fabs(got_gram[i] - ref_gram[i]) / (1 + fabs(ref_gram[i])));
            CHECK(e < 1e-12);
            CHECK(got_gram[1] == got_gram[k]); /* both triangles */
            if (threads == 1) {
                f.o->download(f.ctx, &mm, first_m, rm, NULL);
                memcpy(first_gram, got_gram, sizeof(got_gram));
                first_v = v;
                first_cross = cross;
            } else {
                CHECK(maxdiff_mat(&f, &mm, first_m) == 0.0);
                CHECK(memcmp(first_gram, got_gram, (size_t)(k * k) * sizeof(double)) == 0);
                CHECK(v == first_v);
                CHECK(cross == first_cross);
            }
            f.o->mat_free(f.ctx, &gram);
            f.o->mat_free(f.ctx, &prod);
            f.o->mat_free(f.ctx, &gm);
            f.o->mat_free(f.ctx, &mm);
            f.o->mat_free(f.ctx, &fm);
            f.o->sparse_free(f.ctx, xb);
            f.o->destroy(f.ctx);
        }
        free(mh_got);
        free(first_m);
        free(ref_m);
        free(mh);
        free(fh);
        tm_csr_release(&x);
    }
}

/* hals_inner_fused's reference from the ops it fuses: each group of rows of
 * mm (the CPU's tiles: 32 rows from each chunk's start, xo's chunks as
 * the backend makes them) swept on its own (hals_sweep on a view of those
 * rows of mm and P) as the group's rule says (backend.h); returns the
 * first violations summed and counts in hist[q] the groups that took q
 * sweeps. */
static double ref_hals_inner(struct fixture *f, const struct tm_csr *xo, const struct tm_bmat *mm,
                             const struct tm_bmat *gm, const struct tm_bmat *prod, double l1,
                             double l2, const int64_t *perm, int64_t cap, double rho, int64_t *hist)
{
    int64_t bounds[MAX_CHUNKS + 1];
    int nc = tm__cpu_csr_chunks(xo, bounds);
    double total = 0;
    for (int c = 0; c < nc; c++)
        for (int64_t i0 = bounds[c]; i0 < bounds[c + 1]; i0 += 32) {
            int64_t nr = bounds[c + 1] - i0 < 32 ? bounds[c + 1] - i0 : 32;
            struct tm_bmat mi = tm_bmat_block(mm, i0, nr, 0, mm->cols);
            struct tm_bmat pi = tm_bmat_block(prod, i0, nr, 0, mm->cols);
            double first = 0, v = 0;
            int64_t q = 1;
            for (;; q++) {
                f->o->hals_sweep(f->ctx, &mi, gm, &pi, l1, l2, perm, &v, NULL);
                if (q == 1)
                    total += first = v;
                if (q == cap || !(first > 0) || (q >= 2 && !(v > rho * first)))
                    break;
            }
            hist[q]++;
        }
    return total;
}

/* hals_inner_fused against the ops it fuses (spmm, hals_sweep group by
 * group, dot, gram, and the extrapolation on the host), both halves, on a
 * wide and a tall X, k = 7 with l1 and k = 8 without, with and without the
 * extrapolation, 1 and 4 sweeps at most, for 1 and 3 threads: M and Mp to
 * rounding and the same bits for every thread count; groups that stop
 * after different numbers of sweeps (so a rule per matrix would fail); a
 * previous iterate that is not a whole transpose is refused. */
TM_TEST(backend_cpu_hals_inner_fused_matches_unfused)
{
    const int64_t shapes[2][2] = {{70, 301}, {260, 45}};
    const int64_t perms[2][8] = {{3, 0, 6, 1, 5, 2, 4}, {3, 0, 6, 1, 7, 5, 2, 4}};
    const double rho = 0.3, beta = 0.6, l2 = 0.3;
    int64_t hist[5] = {0};
    for (int si = 0; si < 16; si++) {
        const int64_t k = si < 8 ? 7 : 8, *perm = perms[si / 8], cap = si % 3 == 2 ? 1 : 4;
        const double l1 = si < 8 ? 0.05 : 0.0;
        int64_t m = shapes[si / 4 % 2][0], n = shapes[si / 4 % 2][1];
        int side = si % 2 ? TM_NOTRANS : TM_TRANS, extra = si / 2 % 2;
        int64_t rm = side == TM_TRANS ? n : m, rf = side == TM_TRANS ? m : n;
        struct tm_csr x, xt;
        rand_csr(&x, m, n, 0.08, 41 + (uint64_t)si);
        REQUIRE(tm_csr_transpose(&x, &xt, NULL) == TM_OK);
        double *fh = rand_dense(rf, k, 42), *mh = rand_dense(rm, k, 43), g[64];
        double *ph = rand_dense(rm, k, 44);
        for (int64_t i = 0; i < rf * k; i++)
            fh[i] = fabs(fh[i]);
        for (int64_t i = 0; i < rm * k; i++) {
            mh[i] = fabs(mh[i]) * (i % 5 != 0);
            ph[i] = fabs(ph[i]);
        }
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < k; j++) {
                double sum = 0;
                for (int64_t p = 0; p < rf; p++)
                    sum += fh[p + i * rf] * fh[p + j * rf];
                g[i + j * k] = sum + (i == j) * 0.5;
            }
        size_t bytes = (size_t)(rm * k) * sizeof(double);
        double *ref_m = malloc(bytes), *ref_hat = malloc(bytes), *got = malloc(bytes);
        double *th = malloc((size_t)(rm > rf ? rm : rf) * (size_t)k * sizeof(double));
        double ref_gram[64], ref_gram_hat[64], ref_v = 0, ref_cross = 0;
        double first_gram[64], first_v = 0, first_cross = 0;
        uint64_t first_sum[2] = {0, 0};
        for (int threads = 1; threads <= 3; threads += 2) {
            struct fixture f;
            REQUIRE(setup(&f, threads));
            struct tm_bsparse *xb;
            REQUIRE(f.o->sparse_upload(f.ctx, &x, &xb, NULL) == TM_OK);
            struct tm_bmat fm = up(&f, fh, rf, k), mm = up(&f, mh, rm, k), gm = up(&f, g, k, k);
            struct tm_bmat prod, gram, gram_hat;
            f.o->mat_alloc(f.ctx, rm, k, &prod, NULL);
            f.o->mat_alloc(f.ctx, k, k, &gram, NULL);
            f.o->mat_alloc(f.ctx, k, k, &gram_hat, NULL);
            if (threads == 1) { /* the unfused reference */
                CHECK(f.o->spmm(f.ctx, xb, side, 1.0, &fm, 0.0, &prod, NULL) == TM_OK);
                ref_v = ref_hals_inner(&f, side == TM_TRANS ? &xt : &x, &mm, &gm, &prod, l1, l2,
                                       perm, cap, rho, hist);
                CHECK(f.o->dot(f.ctx, &prod, &mm, &ref_cross, NULL) == TM_OK);
                CHECK(f.o->gram(f.ctx, &mm, &gram, NULL) == TM_OK);
                f.o->download(f.ctx, &mm, ref_m, rm, NULL);
                f.o->download(f.ctx, &gram, ref_gram, k, NULL);
                for (int64_t i = 0; i < rm * k; i++) {
                    double v = ref_m[i] + beta * (ref_m[i] - ph[i]);
                    ref_hat[i] = v > 0 ? v : 0;
                }
                f.o->upload(f.ctx, ref_hat, rm, &mm, NULL);
                CHECK(f.o->gram(f.ctx, &mm, &gram, NULL) == TM_OK);
                f.o->download(f.ctx, &gram, ref_gram_hat, k, NULL);
            }
            /* The fused op takes the factors and the previous iterate transposed. */
            for (int64_t i = 0; i < rf; i++)
                for (int64_t r = 0; r < k; r++)
                    th[r + i * k] = fh[i + r * rf];
            struct tm_bmat ftm = up(&f, th, k, rf);
            for (int64_t i = 0; i < rm; i++)
                for (int64_t r = 0; r < k; r++)
                    th[r + i * k] = mh[i + r * rm];
            struct tm_bmat mtm = up(&f, th, k, rm);
            for (int64_t i = 0; i < rm; i++)
                for (int64_t r = 0; r < k; r++)
                    th[r + i * k] = ph[i + r * rm];
            struct tm_bmat ptm = up(&f, th, k, rm);
            double v = -1, cross = -1, got_gram[64], got_gram_hat[64];
            REQUIRE(f.o->hals_inner_fused(f.ctx, xb, side, &mtm, &ftm, &gm, l1, l2, perm, cap, rho,
                                          extra ? &ptm : NULL, beta, &v, &cross, &gram,
                                          extra ? &gram_hat : NULL, NULL) == TM_OK);
            f.o->download(f.ctx, &gram, got_gram, k, NULL);
            f.o->download(f.ctx, &gram_hat, got_gram_hat, k, NULL);
            double e = 0, eh = 0;
            for (int64_t i = 0; i < k * k; i++) {
                e = fmax(e, fabs(got_gram[i] - ref_gram[i]) / (1 + fabs(ref_gram[i])));
                eh =
                    fmax(eh, fabs(got_gram_hat[i] - ref_gram_hat[i]) / (1 + fabs(ref_gram_hat[i])));
            }
            CHECK(e < 1e-12);
            CHECK(!extra || eh < 1e-12);
            CHECK_NEAR(v, ref_v, 1e-10 * (1 + fabs(ref_v)));
            CHECK_NEAR(cross, ref_cross, 1e-10 * (1 + fabs(ref_cross)));
            /* M (extrapolated or swept) and, with the extrapolation, Mp = the swept M */
            for (int which = 0; which < 1 + extra; which++) {
                f.o->download(f.ctx, which ? &ptm : &mtm, th, k, NULL);
                const double *want = which || !extra ? ref_m : ref_hat;
                double d = 0;
                for (int64_t i = 0; i < rm; i++)
                    for (int64_t r = 0; r < k; r++) {
                        got[i + r * rm] = th[r + i * k];
                        d = fmax(d, fabs(got[i + r * rm] - want[i + r * rm]));
                    }
                CHECK(d < 1e-12);
                uint64_t sum = 0; /* a fingerprint of the bits, for the thread check */
                for (int64_t i = 0; i < rm * k; i++) {
                    uint64_t b;
                    memcpy(&b, &got[i], sizeof(b));
                    sum = sum * 31 + b;
                }
                if (threads == 1)
                    first_sum[which] = sum;
                else
                    CHECK(sum == first_sum[which]);
            }
            if (threads == 1) {
                memcpy(first_gram, got_gram, sizeof(got_gram));
                first_v = v;
                first_cross = cross;
            } else {
                CHECK(memcmp(first_gram, got_gram, (size_t)(k * k) * sizeof(double)) == 0);
                CHECK(v == first_v);
                CHECK(cross == first_cross);
            }
            /* a previous iterate with a larger leading dimension is refused */
            struct tm_bmat wide = {0}, part;
            f.o->mat_alloc(f.ctx, k + 1, rm, &wide, NULL);
            part = tm_bmat_block(&wide, 0, k, 0, rm);
            CHECK(f.o->hals_inner_fused(f.ctx, xb, side, &mtm, &ftm, &gm, l1, l2, perm, cap, rho,
                                        &part, beta, &v, NULL, NULL, NULL, NULL) == TM_EINVAL);
            f.o->mat_free(f.ctx, &wide);
            f.o->mat_free(f.ctx, &ptm);
            f.o->mat_free(f.ctx, &mtm);
            f.o->mat_free(f.ctx, &ftm);
            f.o->mat_free(f.ctx, &gram_hat);
            f.o->mat_free(f.ctx, &gram);
            f.o->mat_free(f.ctx, &prod);
            f.o->mat_free(f.ctx, &gm);
            f.o->mat_free(f.ctx, &mm);
            f.o->mat_free(f.ctx, &fm);
            f.o->sparse_free(f.ctx, xb);
            f.o->destroy(f.ctx);
        }
        free(th);
        free(got);
        free(ref_hat);
        free(ref_m);
        free(ph);
        free(mh);
        free(fh);
        tm_csr_release(&xt);
        tm_csr_release(&x);
    }
    /* the groups' inner loops stopped at different sweeps */
    CHECK(hist[1] > 0 && hist[2] > 0 && hist[3] > 0 && hist[4] > 0);
}

/* gram_spmm against the two products it fuses, both sides, on a wide and a
 * tall X, with widths on both sides of the fixed-k kernels; the same bits
 * for every thread count. */
TM_TEST(backend_cpu_gram_spmm_matches_two_products)
{
    /* The third shape has more non-zeros than one block of the phased
     * kernel holds; widths 1 and 5 take the one-pass kernel, 12 and 37 the
     * phased one (fixed and runtime width). */
    const int64_t shapes[3][2] = {{60, 250}, {240, 50}, {300, 4000}}, widths[4] = {1, 5, 12, 37};
    const double density[3] = {0.1, 0.1, 0.05};
    for (int si = 0; si < 3; si++) {
        int64_t m = shapes[si][0], n = shapes[si][1];
        struct tm_csr x;
        rand_csr(&x, m, n, density[si], 31 + (uint64_t)si);
        for (int wi = 0; wi < 4; wi++) {
            int64_t b = widths[wi];
            for (int side = TM_NOTRANS; side <= TM_TRANS; side++) {
                int64_t d = side == TM_NOTRANS ? m : n, len = side == TM_NOTRANS ? n : m;
                double *v = rand_dense(d, b, 32), *ref = malloc((size_t)(d * b) * sizeof(double));
                double *first = malloc((size_t)(d * b) * sizeof(double));
                for (int threads = 1; threads <= 3; threads += 2) {
                    struct fixture f;
                    REQUIRE(setup(&f, threads));
                    struct tm_bsparse *xb;
                    REQUIRE(f.o->sparse_upload(f.ctx, &x, &xb, NULL) == TM_OK);
                    struct tm_bmat vm = up(&f, v, d, b), av, t1;
                    f.o->mat_alloc(f.ctx, d, b, &av, NULL);
                    f.o->mat_alloc(f.ctx, len, b, &t1, NULL);
                    if (threads == 1) {
                        int first_op = side == TM_NOTRANS ? TM_TRANS : TM_NOTRANS;
                        CHECK(f.o->spmm(f.ctx, xb, first_op, 1.0, &vm, 0.0, &t1, NULL) == TM_OK);
                        CHECK(f.o->spmm(f.ctx, xb, !first_op, 1.0, &t1, 0.0, &av, NULL) == TM_OK);
                        f.o->download(f.ctx, &av, ref, d, NULL);
                    }
                    REQUIRE(f.o->gram_spmm(f.ctx, xb, side, &vm, &av, NULL) == TM_OK);
                    double scale = 0;
                    for (int64_t i = 0; i < d * b; i++)
                        scale = fmax(scale, fabs(ref[i]));
                    CHECK(maxdiff_mat(&f, &av, ref) < 1e-13 * (1 + scale));
                    if (threads == 1)
                        f.o->download(f.ctx, &av, first, d, NULL);
                    else
                        CHECK(maxdiff_mat(&f, &av, first) == 0.0);
                    f.o->mat_free(f.ctx, &t1);
                    f.o->mat_free(f.ctx, &av);
                    f.o->mat_free(f.ctx, &vm);
                    f.o->sparse_free(f.ctx, xb);
                    f.o->destroy(f.ctx);
                }
                free(first);
                free(ref);
                free(v);
            }
        }
        tm_csr_release(&x);
    }
}

/* gram_spmm_f32 in a float64 context against gram_spmm: within float32's
 * rounding of it, not float64's (the sums really are float32), the same
 * bits for 1 and 3 threads and on a second call (the kept float copy of
 * X's values), both sides, both kernels of gram_spmm (widths 5 and 20). */
TM_TEST(backend_cpu_gram_spmm_f32_is_gram_spmm_in_float32)
{
    const int64_t m = 300, n = 4000, widths[2] = {5, 20};
    struct tm_csr x;
    rand_csr(&x, m, n, 0.05, 41);
    for (int wi = 0; wi < 2; wi++) {
        int64_t b = widths[wi];
        for (int side = TM_NOTRANS; side <= TM_TRANS; side++) {
            int64_t d = side == TM_NOTRANS ? m : n;
            double *v = rand_dense(d, b, 42), *ref = malloc((size_t)(d * b) * sizeof(double));
            double *first = malloc((size_t)(d * b) * sizeof(double));
            for (int threads = 1; threads <= 3; threads += 2) {
                struct fixture f;
                REQUIRE(setup(&f, threads));
                struct tm_bsparse *xb;
                REQUIRE(f.o->sparse_upload(f.ctx, &x, &xb, NULL) == TM_OK);
                struct tm_bmat vm = up(&f, v, d, b), av;
                f.o->mat_alloc(f.ctx, d, b, &av, NULL);
                REQUIRE(f.o->gram_spmm(f.ctx, xb, side, &vm, &av, NULL) == TM_OK);
                f.o->download(f.ctx, &av, ref, d, NULL);
                double scale = 0;
                for (int64_t i = 0; i < d * b; i++)
                    scale = fmax(scale, fabs(ref[i]));
                for (int call = 0; call < 2; call++) {
                    REQUIRE(f.o->gram_spmm_f32(f.ctx, xb, side, &vm, &av, NULL) == TM_OK);
                    double diff = maxdiff_mat(&f, &av, ref);
                    CHECK(diff < 1e-5 * scale);
                    CHECK(diff > 1e-12 * scale);
                    if (threads == 1 && call == 0)
                        f.o->download(f.ctx, &av, first, d, NULL);
                    else
                        CHECK(maxdiff_mat(&f, &av, first) == 0.0);
                }
                f.o->mat_free(f.ctx, &av);
                f.o->mat_free(f.ctx, &vm);
                f.o->sparse_free(f.ctx, xb);
                f.o->destroy(f.ctx);
            }
            free(first);
            free(ref);
            free(v);
        }
    }
    tm_csr_release(&x);
}

/* The NMF shape of gemm (tall A times a square k x k B, register-blocked in
 * the backend) against the naive product, with row counts that leave
 * partial vectors and tiles and widths on both sides of its 8-column
 * blocks, alpha and beta; the same bits for 1 and 3 threads. */
TM_TEST(backend_cpu_small_gemm_matches_naive)
{
    const int64_t m = 603, ks[4] = {3, 8, 13, 20};
    for (int ki = 0; ki < 4; ki++) {
        int64_t k = ks[ki];
        double *a = rand_dense(m, k, 41), *b = rand_dense(k, k, 42), *c0 = rand_dense(m, k, 43);
        double *ref = malloc((size_t)(m * k) * sizeof(double));
        double *first = malloc((size_t)(m * k) * sizeof(double));
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < k; j++) {
                double sum = 0;
                for (int64_t p = 0; p < k; p++)
                    sum += a[i + p * m] * b[p + j * k];
                ref[i + j * m] = 0.5 * sum + 2.0 * c0[i + j * m];
            }
        for (int threads = 1; threads <= 3; threads += 2) {
            struct fixture f;
            REQUIRE(setup(&f, threads));
            struct tm_bmat am = up(&f, a, m, k), bm = up(&f, b, k, k), cm = up(&f, c0, m, k);
            CHECK(f.o->gemm(f.ctx, TM_NOTRANS, TM_NOTRANS, 0.5, &am, &bm, 2.0, &cm, NULL) == TM_OK);
            CHECK(maxdiff_mat(&f, &cm, ref) < 1e-12);
            if (threads == 1)
                f.o->download(f.ctx, &cm, first, m, NULL);
            else
                CHECK(maxdiff_mat(&f, &cm, first) == 0.0);
            f.o->mat_free(f.ctx, &cm);
            f.o->mat_free(f.ctx, &bm);
            f.o->mat_free(f.ctx, &am);
            f.o->destroy(f.ctx);
        }
        free(first);
        free(ref);
        free(c0);
        free(b);
        free(a);
    }
}

/* orth_qr of a block wide and tall enough for CholQR's steps on the
 * backend's threads (at least 16 columns, 4096 rows), as a view inside a
 * wider matrix: an orthonormal basis of A's span, the columns outside the
 * view untouched, and the same bits for 1 and 3 threads. */
TM_TEST(backend_cpu_orth_qr_tall_block_on_threads)
{
    const int64_t d = 9001, k = 17;
    double *a = rand_dense(d, k, 61), *q = malloc((size_t)(d * k) * sizeof(double));
    double *first = malloc((size_t)(d * k) * sizeof(double));
    double *edge = malloc((size_t)d * sizeof(double));
    for (int threads = 1; threads <= 3; threads += 2) {
        struct fixture f;
        REQUIRE(setup(&f, threads));
        struct tm_bmat big, am;
        f.o->mat_alloc(f.ctx, d, k + 2, &big, NULL);
        am = tm_bmat_cols(&big, 1, k);
        f.o->upload(f.ctx, a, d, &am, NULL);
        CHECK(f.o->orth_qr(f.ctx, &am, NULL) == TM_OK);
        f.o->download(f.ctx, &am, q, d, NULL);
        check_basis(t, q, a, d, k, 1e-12);
        struct tm_bmat last = tm_bmat_cols(&big, k + 1, 1);
        f.o->download(f.ctx, &last, edge, d, NULL);
        int untouched = 1;
        for (int64_t i = 0; i < d; i++)
            untouched &= edge[i] == 0.0;
        CHECK(untouched);
        if (threads == 1)
            memcpy(first, q, (size_t)(d * k) * sizeof(double));
        else
            CHECK(memcmp(first, q, (size_t)(d * k) * sizeof(double)) == 0);
        f.o->mat_free(f.ctx, &big);
        f.o->destroy(f.ctx);
    }
    free(edge);
    free(first);
    free(q);
    free(a);
}

/* Lanczos's shapes of gemm, cut into row chunks on the backend's threads:
 * A^T B (A, B tall; partials added) and A B into a tall C, with alpha and
 * beta and a C that is a view, against the naive products, on row counts
 * below and past the cut (4096) that do not divide evenly; the same bits
 * for 1 and 3 threads. */
TM_TEST(backend_cpu_tall_gemm_matches_naive)
{
    const int64_t ds[2] = {700, 9001}, p = 13, q = 5;
    for (int di = 0; di < 2; di++) {
        int64_t d = ds[di];
        double *a = rand_dense(d, p, 51), *b = rand_dense(d, q, 52), *h = rand_dense(p, q, 53);
        double *c0 = rand_dense(p, q, 54), *z0 = rand_dense(d, q, 55);
        double ref_c[13 * 5], got_c[13 * 5], first_c[13 * 5];
        double *ref_z = malloc((size_t)(d * q) * sizeof(double));
        double *first_z = malloc((size_t)(d * q) * sizeof(double));
        for (int64_t i = 0; i < p; i++)
            for (int64_t j = 0; j < q; j++) {
                double sum = 0;
                for (int64_t r = 0; r < d; r++)
                    sum += a[r + i * d] * b[r + j * d];
                ref_c[i + j * p] = 0.5 * sum + 2.0 * c0[i + j * p];
            }
        for (int64_t r = 0; r < d; r++)
            for (int64_t j = 0; j < q; j++) {
                double sum = 0;
                for (int64_t i = 0; i < p; i++)
                    sum += a[r + i * d] * h[i + j * p];
                ref_z[r + j * d] = z0[r + j * d] - sum;
            }
        for (int threads = 1; threads <= 3; threads += 2) {
            struct fixture f;
            REQUIRE(setup(&f, threads));
            struct tm_bmat am = up(&f, a, d, p), bm = up(&f, b, d, q), hm = up(&f, h, p, q);
            struct tm_bmat cm = up(&f, c0, p, q), zbig, zm;
            /* z is the middle q columns of a wider matrix */
            f.o->mat_alloc(f.ctx, d, q + 2, &zbig, NULL);
            zm = tm_bmat_cols(&zbig, 1, q);
            f.o->upload(f.ctx, z0, d, &zm, NULL);
            CHECK(f.o->gemm(f.ctx, TM_TRANS, TM_NOTRANS, 0.5, &am, &bm, 2.0, &cm, NULL) == TM_OK);
            CHECK(f.o->gemm(f.ctx, TM_NOTRANS, TM_NOTRANS, -1.0, &am, &hm, 1.0, &zm, NULL) ==
                  TM_OK);
            f.o->download(f.ctx, &cm, got_c, p, NULL);
            double e = 0;
            for (int64_t i = 0; i < p * q; i++)
                e = fmax(e, fabs(got_c[i] - ref_c[i]) / (1 + fabs(ref_c[i])));
            CHECK(e < 1e-12);
            double *zh = malloc((size_t)(d * q) * sizeof(double));
            f.o->download(f.ctx, &zm, zh, d, NULL);
            e = 0;
            for (int64_t i = 0; i < d * q; i++)
                e = fmax(e, fabs(zh[i] - ref_z[i]));
            CHECK(e < 1e-12);
            if (threads == 1) {
                memcpy(first_c, got_c, sizeof(got_c));
                memcpy(first_z, zh, (size_t)(d * q) * sizeof(double));
            } else {
                CHECK(memcmp(first_c, got_c, sizeof(got_c)) == 0);
                CHECK(memcmp(first_z, zh, (size_t)(d * q) * sizeof(double)) == 0);
            }
            free(zh);
            f.o->mat_free(f.ctx, &zbig);
            f.o->mat_free(f.ctx, &cm);
            f.o->mat_free(f.ctx, &hm);
            f.o->mat_free(f.ctx, &bm);
            f.o->mat_free(f.ctx, &am);
            f.o->destroy(f.ctx);
        }
        free(first_z);
        free(ref_z);
        free(z0);
        free(c0);
        free(h);
        free(b);
        free(a);
    }
}

/* tm_backend_take and tm_backend_give move a host matrix into the backend
 * and back: by hand-over where the backend adopts host memory (the same
 * buffer, no copy), by upload and download where it does not. */
TM_TEST(backend_take_and_give_round_trip)
{
    struct fixture f;
    REQUIRE(setup(&f, 1));
    struct tm_backend_ops plain = *f.o;
    plain.mat_adopt = NULL;
    plain.mat_release = NULL;
    const struct tm_backend_ops *ops[2] = {f.o, &plain};
    const int64_t r = 9, c = 4;
    double *want = rand_dense(r, c, 31);
    for (int v = 0; v < 2; v++) {
        double *host = tm_mallocarray((size_t)(r * c), sizeof(double)), *first = host;
        memcpy(host, want, (size_t)(r * c) * sizeof(double));
        struct tm_bmat m;
        REQUIRE(tm_backend_take(ops[v], f.ctx, &host, r, c, &m, NULL) == TM_OK);
        CHECK(host == NULL);
        CHECK(m.rows == r && m.cols == c && m.ld == r);
        CHECK((m.data == first) == (v == 0)); /* adopted, or a copy */
        CHECK(maxdiff_mat(&f, &m, want) == 0.0);
        REQUIRE(tm_backend_give(ops[v], f.ctx, &m, &host, NULL) == TM_OK);
        CHECK(m.data == NULL);
        CHECK(memcmp(host, want, (size_t)(r * c) * sizeof(double)) == 0);
        tm_free(host);
    }
    free(want);
    f.o->destroy(f.ctx);
}
