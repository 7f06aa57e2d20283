/* test_svd.c - randomized, Lanczos and full SVD: properties and LAPACK agreement. */
#include <lapacke.h>
#include <stdlib.h>

#include "core/numerics/backend_cpu.h"
#include "core/numerics/rng.h"
#include "core/numerics/svd.h"
#include "cpu_ops.h"
#include "harness.h"
#include "planted.h"

/* A sparse m x n matrix with a decaying spectrum (planted.h). */
static void planted(struct tm_csr *x, int64_t m, int64_t n, double density, uint64_t seed)
{
    tm_test_planted(x, m, n, density, 0, seed);
}

/* All singular values of x by LAPACK on the dense copy. */
static double *exact_sv(const struct tm_csr *x)
{
    int64_t m = x->n_rows, n = x->n_cols, p = m < n ? m : n;
    double *d = calloc((size_t)(m * n), sizeof(double)), *s = malloc((size_t)p * 8);
    for (int64_t i = 0; i < m; i++)
        for (int64_t q = x->indptr[i]; q < x->indptr[i + 1]; q++)
            d[i + x->indices[q] * m] = x->data[q];
    LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', (lapack_int)m, (lapack_int)n, d, (lapack_int)m, s, NULL,
                   1, NULL, 1);
    free(d);
    return s;
}

static double orth_err(const double *u, int64_t m, int64_t k)
{
    double e = 0;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int64_t p = 0; p < m; p++)
                s += u[p + i * m] * u[p + j * m];
            e = fmax(e, fabs(s - (i == j)));
        }
    return e;
}

/* max_i ||X v_i - s_i u_i|| / s_1 */
static double triplet_err(const struct tm_csr *x, const struct tm_svd_result *r)
{
    double e = 0;
    for (int64_t t = 0; t < r->k; t++) {
        double res = 0;
        for (int64_t i = 0; i < x->n_rows; i++) {
            double v = 0;
            for (int64_t q = x->indptr[i]; q < x->indptr[i + 1]; q++)
                v += x->data[q] * r->v[x->indices[q] + t * r->n];
            v -= r->s[t] * r->u[i + t * r->m];
            res += v * v;
        }
        e = fmax(e, sqrt(res) / r->s[0]);
    }
    return e;
}

static void check_props(struct tm_test_ctx *t, const struct tm_csr *x,
                        const struct tm_svd_result *r, double tol)
{
    CHECK(orth_err(r->u, r->m, r->k) < tol);
    CHECK(orth_err(r->v, r->n, r->k) < tol);
    for (int64_t i = 0; i < r->k; i++) {
        CHECK(r->s[i] >= 0);
        if (i)
            CHECK(r->s[i] <= r->s[i - 1]);
        /* svd_flip: the largest |u| of each column is positive */
        double best = 0, val = 0;
        for (int64_t p = 0; p < r->m; p++)
            if (fabs(r->u[p + i * r->m]) > best) {
                best = fabs(r->u[p + i * r->m]);
                val = r->u[p + i * r->m];
            }
        CHECK(val > 0);
    }
    CHECK(triplet_err(x, r) < tol * 100);
}

typedef tm_status (*svd_fn)(const struct tm_backend_ops *, void *, const struct tm_bsparse *,
                            int64_t, int64_t, int64_t, const struct tm_model_params *,
                            const struct tm_progress *, struct tm_svd_result *, char *);

/* Set: run() hands the algorithms the CPU backend without its optional
 * ops (fused products, adopting host memory), as a backend that lacks them
 * (CUDA) does. */
static int without_optional_ops;
/* Set: run() hands the algorithms these ops instead. */
static const struct tm_backend_ops *ops_instead;

static tm_status run(svd_fn fn, const struct tm_csr *x, int64_t k, const struct tm_model_params *p,
                     const struct tm_progress *prog, struct tm_svd_result *r, char *err)
{
    const struct tm_backend_ops *o =
        ops_instead ? ops_instead : tm_test_cpu_ops(without_optional_ops);
    struct tm_backend_config cfg = {TM_DTYPE_AUTO, 0, 2};
    void *ctx;
    struct tm_bsparse *xb;
    o->create(&cfg, &ctx, NULL);
    o->sparse_upload(ctx, x, &xb, NULL);
    tm_status st = fn(o, ctx, xb, x->n_rows, x->n_cols, k, p, prog, r, err);
    o->sparse_free(ctx, xb);
    o->destroy(ctx);
    return st;
}

TM_TEST(svd_lanczos_matches_lapack_both_orientations)
{
    int64_t shapes[2][2] = {{70, 45}, {45, 90}};
    for (int s = 0; s < 2; s++) {
        struct tm_csr x;
        planted(&x, shapes[s][0], shapes[s][1], 0.3, 3 + s);
        double *ref = exact_sv(&x);
        struct tm_model_params p;
        tm_model_params_init(&p);
        p.svd_tol = 1e-12;
        for (int64_t k = 1; k <= 9; k += 8) {
            struct tm_svd_result r;
            char err[TM_ERR_SIZE] = "";
            CHECK(run(tm_svd_lanczos, &x, k, &p, NULL, &r, err) == TM_OK);
            for (int64_t i = 0; i < k; i++)
                CHECK(fabs(r.s[i] - ref[i]) <= 1e-8 * ref[i]);
            check_props(t, &x, &r, 1e-8);
            tm_svd_result_release(&r);
        }
        free(ref);
        tm_csr_release(&x);
    }
}

TM_TEST(svd_randomized_accuracy_normalizers_and_determinism)
{
    struct tm_csr x;
    planted(&x, 60, 120, 0.4, 8);
    double *ref = exact_sv(&x);
    enum tm_power_normalizer pins[] = {TM_PIN_AUTO, TM_PIN_QR, TM_PIN_NONE};
    for (int q = 0; q < 3; q++) {
        struct tm_model_params p;
        tm_model_params_init(&p);
        p.power_iteration_normalizer = pins[q];
        p.seed = 42;
        struct tm_svd_result r, r2, r3;
        REQUIRE(run(tm_svd_randomized, &x, 7, &p, NULL, &r, NULL) == TM_OK);
        CHECK_INT_EQ(r.n_iter, 4); /* k = 7 >= 0.1 * 60: "auto" gives 4 */
        for (int64_t i = 0; i < 7; i++)
            CHECK(fabs(r.s[i] - ref[i]) <= (i < 3 ? 1e-6 : 1e-3) * ref[i]);
        check_props(t, &x, &r, 1e-10);
        REQUIRE(run(tm_svd_randomized, &x, 7, &p, NULL, &r2, NULL) == TM_OK);
        CHECK(memcmp(r.u, r2.u, 60 * 7 * sizeof(double)) == 0);
        CHECK(memcmp(r.s, r2.s, 7 * sizeof(double)) == 0);
        /* Normalizing the long side too (no gram_spmm) spans the same
         * subspaces: the same answer to rounding. */
        without_optional_ops = 1;
        REQUIRE(run(tm_svd_randomized, &x, 7, &p, NULL, &r3, NULL) == TM_OK);
        without_optional_ops = 0;
        for (int64_t i = 0; i < 7; i++)
            CHECK(fabs(r3.s[i] - r.s[i]) <= 1e-12 * r.s[0]);
        check_props(t, &x, &r3, 1e-10);
        tm_svd_result_release(&r);
        tm_svd_result_release(&r2);
        tm_svd_result_release(&r3);
    }
    free(ref);
    tm_csr_release(&x);
}

/* A truncated_svd fit's power iterations in float32 (gram_spmm_f32): the
 * singular values within 1e-7 of the float64 route's, not its bits (the
 * float32 route is taken), the factors as orthonormal; NMF's init (any
 * other method) keeps the float64 route, bit for bit as without the op. */
TM_TEST(svd_randomized_power_in_float32_for_truncated_svd)
{
    struct tm_csr x;
    planted(&x, 150, 400, 0.2, 9);
    struct tm_backend_ops no_f32 = *tm_backend_cpu();
    no_f32.gram_spmm_f32 = NULL;
    struct tm_model_params p;
    tm_model_params_init(&p);
    p.seed = 5;
    struct tm_svd_result r64, r32, rn, rn64;
    p.method = TM_METHOD_TRUNCATED_SVD;
    ops_instead = &no_f32;
    REQUIRE(run(tm_svd_randomized, &x, 10, &p, NULL, &r64, NULL) == TM_OK);
    ops_instead = NULL;
    REQUIRE(run(tm_svd_randomized, &x, 10, &p, NULL, &r32, NULL) == TM_OK);
    CHECK_INT_EQ(r32.n_iter, 7);
    CHECK(memcmp(r32.s, r64.s, 10 * sizeof(double)) != 0);
    for (int64_t i = 0; i < 10; i++)
        CHECK(fabs(r32.s[i] - r64.s[i]) <= 1e-7 * r64.s[i]);
    check_props(t, &x, &r32, 1e-10);
    p.method = TM_METHOD_NMF;
    REQUIRE(run(tm_svd_randomized, &x, 10, &p, NULL, &rn, NULL) == TM_OK);
    CHECK(memcmp(rn.s, r64.s, 10 * sizeof(double)) == 0);
    CHECK(memcmp(rn.u, r64.u, (size_t)(rn.m * 10) * sizeof(double)) == 0);
    ops_instead = &no_f32;
    REQUIRE(run(tm_svd_randomized, &x, 10, &p, NULL, &rn64, NULL) == TM_OK);
    ops_instead = NULL;
    CHECK(memcmp(rn.v, rn64.v, (size_t)(rn.n * 10) * sizeof(double)) == 0);
    tm_svd_result_release(&r64);
    tm_svd_result_release(&r32);
    tm_svd_result_release(&rn);
    tm_svd_result_release(&rn64);
    tm_csr_release(&x);
}

/* More singular vectors than the long side makes at a time (16): each
 * block of them lands in its own columns, made in the result's memory or
 * downloaded into it (a backend that cannot adopt host memory), for both
 * algorithms and both orientations. */
TM_TEST(svd_long_side_in_blocks)
{
    int64_t shapes[2][2] = {{45, 100}, {100, 45}};
    struct tm_backend_ops no_adopt = *tm_backend_cpu();
    no_adopt.mat_adopt = NULL;
    no_adopt.mat_release = NULL;
    for (int sh = 0; sh < 2; sh++) {
        struct tm_csr x;
        planted(&x, shapes[sh][0], shapes[sh][1], 0.5, 11 + sh);
        for (int a = 0; a < 2; a++) {
            struct tm_model_params p;
            tm_model_params_init(&p);
            p.seed = 3;
            svd_fn fn = a ? tm_svd_lanczos : tm_svd_randomized;
            struct tm_svd_result r, r2;
            REQUIRE(run(fn, &x, 21, &p, NULL, &r, NULL) == TM_OK);
            ops_instead = &no_adopt;
            REQUIRE(run(fn, &x, 21, &p, NULL, &r2, NULL) == TM_OK);
            ops_instead = NULL;
            /* every column orthonormal, and the same bits either way */
            CHECK(orth_err(r.u, r.m, r.k) < 1e-8 && orth_err(r.v, r.n, r.k) < 1e-8);
            CHECK(memcmp(r.u, r2.u, (size_t)(r.m * r.k) * sizeof(double)) == 0);
            CHECK(memcmp(r.v, r2.v, (size_t)(r.n * r.k) * sizeof(double)) == 0);
            CHECK(memcmp(r.s, r2.s, (size_t)r.k * sizeof(double)) == 0);
            tm_svd_result_release(&r);
            tm_svd_result_release(&r2);
        }
        tm_csr_release(&x);
    }
}

/* A matrix of rank 4 asked for k = 7 (l = 17): the Gram route of the final
 * stage sees a singular Y^T Y and leaves it to the QR of Y, which must give
 * the same answer as the backend without gram_spmm. */
TM_TEST(svd_randomized_rank_deficient)
{
    struct tm_csr x;
    struct tm_rng g;
    tm_rng_init(&g, 5);
    int64_t m = 30, n = 40, nnz = 0;
    tm_csr_init(&x, m, n, 4 * n, NULL);
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n && i < 4; j++) {
            x.indices[nnz] = (int32_t)j;
            x.data[nnz++] = tm_rng_normal(&g);
        }
        x.indptr[i + 1] = nnz;
    }
    double *ref = exact_sv(&x);
    struct tm_model_params p;
    tm_model_params_init(&p);
    struct tm_svd_result r, r2;
    REQUIRE(run(tm_svd_randomized, &x, 7, &p, NULL, &r, NULL) == TM_OK);
    without_optional_ops = 1;
    REQUIRE(run(tm_svd_randomized, &x, 7, &p, NULL, &r2, NULL) == TM_OK);
    without_optional_ops = 0;
    for (int64_t i = 0; i < 7; i++) {
        CHECK(fabs(r.s[i] - (i < 4 ? ref[i] : 0.0)) <= 1e-10 * ref[0]);
        CHECK(fabs(r.s[i] - r2.s[i]) <= 1e-12 * ref[0]);
    }
    check_props(t, &x, &r, 1e-8);
    tm_svd_result_release(&r);
    tm_svd_result_release(&r2);
    free(ref);
    tm_csr_release(&x);
}

TM_TEST(svd_full_matches_and_refuses_over_cap)
{
    struct tm_csr x;
    planted(&x, 30, 50, 0.5, 9);
    double *ref = exact_sv(&x);
    struct tm_svd_result r;
    char err[TM_ERR_SIZE];
    REQUIRE(tm_svd_full(&x, 4, 1 << 30, &r, err) == TM_OK);
    for (int64_t i = 0; i < 4; i++)
        CHECK_NEAR(r.s[i], ref[i], 1e-12);
    check_props(t, &x, &r, 1e-12);
    tm_svd_result_release(&r);
    CHECK_INT_EQ(tm_svd_full(&x, 4, 1000, &r, err), TM_ETOOBIG);
    CHECK(strstr(err, "max_dense_bytes") != NULL);
    tm_svd_result_release(&r);
    free(ref);
    tm_csr_release(&x);
}

static int cancel_at_2(void *ctx, const char *stage, double f)
{
    (void)stage;
    (void)f;
    return ++*(int *)ctx >= 2;
}

TM_TEST(svd_cancellation)
{
    struct tm_csr x;
    planted(&x, 40, 60, 0.3, 10);
    struct tm_model_params p;
    tm_model_params_init(&p);
    p.svd_tol = 1e-14;
    int calls = 0;
    struct tm_progress prog = {cancel_at_2, &calls};
    struct tm_svd_result r;
    CHECK_INT_EQ(run(tm_svd_randomized, &x, 3, &p, &prog, &r, NULL), TM_ECANCELLED);
    tm_svd_result_release(&r);
    calls = 0;
    p.svd_max_iter = 0;
    tm_status st = run(tm_svd_lanczos, &x, 3, &p, &prog, &r, NULL);
    /* Lanczos may converge on its first restart here; else it is cancelled. */
    CHECK(st == TM_ECANCELLED || (st == TM_OK && calls == 1));
    tm_svd_result_release(&r);
    tm_csr_release(&x);
}
