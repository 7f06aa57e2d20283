/*
 * test_float32.c - the CPU backend's float32 context against its float64
 * one, fit by fit: every algorithm's float32 route runs here and stays
 * within the tolerances the GPU (float32 by default) is held to in README:
 * singular values within 1e-4 relative, NMF reconstruction error within
 * 0.5%; with the backend whole and without its optional ops (the path a
 * CUDA backend takes).
 */
#include <stdlib.h>

#include "core/fit.h"
#include "core/numerics/backend_cpu.h"
#include "core/numerics/svd.h"
#include "cpu_ops.h"
#include "harness.h"
#include "planted.h"

#define SV_REL_TOL 1e-4  /* README: GPU singular values vs the CPU's */
#define NMF_ERR_TOL 5e-3 /* README: GPU NMF reconstruction error vs the CPU's */

/* p as given, on the CPU backend (whole, or without its optional ops) with
 * dtype; out as tm_fit leaves it. */
static tm_status fit_as(const struct tm_csr *x, struct tm_model_params p, enum tm_dtype dtype,
                        int without_optional_ops, struct tm_fit_result *out)
{
    char err[TM_ERR_SIZE] = "";
    p.dtype = dtype;
    p.n_threads = 2;
    tm_status st = tm_fit(tm_test_cpu_ops(without_optional_ops), NULL, x, &p, NULL, out, err);
    if (st != TM_OK)
        fprintf(stderr, "  fit (dtype %d): %s\n", (int)dtype, err);
    return st;
}

static double max_rel_diff(const double *a, const double *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++)
        d = fmax(d, fabs(a[i] - b[i]) / fabs(b[i]));
    return d;
}

TM_TEST(float32_context_is_float32)
{
    const struct tm_backend_ops *o = tm_backend_cpu();
    struct tm_backend_config cfg = {TM_DTYPE_FLOAT32, 0, 1};
    void *ctx = NULL;
    REQUIRE(o->create(&cfg, &ctx, NULL) == TM_OK);
    CHECK(o->elem_size(ctx) == sizeof(float));
    CHECK(o->mat_bytes(TM_DTYPE_FLOAT32, 10, 3) == 10 * 3 * sizeof(float));
    struct tm_bmat m;
    double h[6] = {1, 2, 3, 4, 5, 1.0 / 3.0}, back[6];
    REQUIRE(o->mat_alloc(ctx, 3, 2, &m, NULL) == TM_OK);
    CHECK(m.elem_size == sizeof(float));
    CHECK(o->upload(ctx, h, 3, &m, NULL) == TM_OK);
    CHECK(o->download(ctx, &m, back, 3, NULL) == TM_OK);
    CHECK(back[4] == 5.0 && back[5] == (double)(float)(1.0 / 3.0));
    o->mat_free(ctx, &m);
    o->destroy(ctx);
    cfg.dtype = (enum tm_dtype)7;
    CHECK(o->create(&cfg, &ctx, NULL) == TM_EINVAL);
}

TM_TEST(float32_svd_matches_float64)
{
    /* both orientations (Gram operator on either side), randomized and
     * Lanczos, the backend whole and without gram_spmm/adopt */
    int64_t shapes[2][2] = {{80, 50}, {50, 100}};
    enum tm_svd_algorithm algs[2] = {TM_SVD_RANDOMIZED, TM_SVD_LANCZOS};
    for (int s = 0; s < 2; s++) {
        struct tm_csr x;
        tm_test_planted(&x, shapes[s][0], shapes[s][1], 0.4, 0, 21 + s);
        for (int a = 0; a < 2; a++)
            for (int plain = 0; plain < 2; plain++) {
                struct tm_model_params p;
                tm_model_params_init(&p);
                p.method = TM_METHOD_TRUNCATED_SVD;
                p.algorithm = algs[a];
                p.n_topics = 9;
                p.seed = 5;
                struct tm_fit_result r64, r32;
                REQUIRE(fit_as(&x, p, TM_DTYPE_FLOAT64, plain, &r64) == TM_OK);
                REQUIRE(fit_as(&x, p, TM_DTYPE_FLOAT32, plain, &r32) == TM_OK);
                double d = max_rel_diff(r32.singular_values, r64.singular_values, 9);
                if (!(d <= SV_REL_TOL))
                    fprintf(stderr, "  shape %d alg %d plain %d: rel diff %g\n", s, a, plain, d);
                CHECK(d <= SV_REL_TOL);
                if (algs[a] == TM_SVD_LANCZOS) {
                    /* float64 converged to tol as asked; float32 to its own, and said so */
                    CHECK(r64.svd_tol == 0.0);
                    CHECK(r32.svd_tol == tm_svd_lanczos_tol(p.svd_tol, sizeof(float)));
                    CHECK(r32.svd_tol > p.svd_tol && r32.svd_tol <= SV_REL_TOL);
                }
                tm_fit_result_release(&r64);
                tm_fit_result_release(&r32);
            }
        tm_csr_release(&x);
    }
}

TM_TEST(float32_nmf_matches_float64)
{
    struct tm_csr x;
    tm_test_planted(&x, 70, 60, 0.5, 1, 31);
    struct {
        enum tm_nmf_solver solver;
        enum tm_beta_loss loss;
    } runs[] = {{TM_NMF_CD, TM_BETA_FROBENIUS},
                {TM_NMF_MU, TM_BETA_FROBENIUS},
                {TM_NMF_MU, TM_BETA_KL},
                {TM_NMF_PGD, TM_BETA_FROBENIUS}};
    for (size_t q = 0; q < sizeof(runs) / sizeof(runs[0]); q++)
        for (int plain = 0; plain < 2; plain++) {
            struct tm_model_params p;
            tm_model_params_init(&p);
            p.method = TM_METHOD_NMF;
            p.n_topics = 6;
            p.solver = runs[q].solver;
            p.beta_loss = runs[q].loss;
            p.max_iter = 100;
            p.tol = 0; /* the same number of iterations in both types */
            p.seed = 3;
            struct tm_fit_result r64, r32;
            REQUIRE(fit_as(&x, p, TM_DTYPE_FLOAT64, plain, &r64) == TM_OK);
            REQUIRE(fit_as(&x, p, TM_DTYPE_FLOAT32, plain, &r32) == TM_OK);
            double d = fabs(r32.reconstruction_error - r64.reconstruction_error) /
                       r64.reconstruction_error;
            if (!(d <= NMF_ERR_TOL))
                fprintf(stderr, "  solver %d loss %d plain %d: rel diff %g\n", (int)runs[q].solver,
                        (int)runs[q].loss, plain, d);
            CHECK(d <= NMF_ERR_TOL);
            CHECK(r32.n_iter == r64.n_iter);
            tm_fit_result_release(&r64);
            tm_fit_result_release(&r32);
        }
    tm_csr_release(&x);
}
