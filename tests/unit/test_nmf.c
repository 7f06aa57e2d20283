/* test_nmf.c - the NMF solvers: non-negativity, error decrease, recovery. */
#include <stdlib.h>

#include "core/numerics/backend_cpu.h"
#include "core/numerics/nmf.h"
#include "core/numerics/rng.h"
#include "cpu_ops.h"
#include "harness.h"
#include "planted.h"

/* X = W0 H0 with sparse non-negative rank-r factors (so X is sparse too). */
static void planted_nn(struct tm_csr *x, int64_t m, int64_t n, int64_t r, uint64_t seed)
{
    struct tm_rng g;
    tm_rng_init(&g, seed);
    double *w = calloc((size_t)(m * r), 8), *h = calloc((size_t)(n * r), 8);
    for (int64_t i = 0; i < m; i++)
        w[i + (i % r) * m] = 0.5 + tm_rng_uniform(&g); /* each row loads one topic... */
    for (int64_t i = 0; i < m * r; i++)
        if (tm_rng_uniform(&g) < 0.2)
            w[i] += tm_rng_uniform(&g); /* ...plus some mixing */
    for (int64_t i = 0; i < n * r; i++)
        if (tm_rng_uniform(&g) < 0.3)
            h[i] = tm_rng_uniform(&g);
    int64_t nnz = 0;
    tm_csr_init(x, m, n, m * n, NULL);
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double v = 0;
            for (int64_t p = 0; p < r; p++)
                v += w[i + p * m] * h[j + p * n];
            if (v > 0) {
                x->indices[nnz] = (int32_t)j;
                x->data[nnz++] = v;
            }
        }
        x->indptr[i + 1] = nnz;
    }
    free(w);
    free(h);
}

/* Set: fit() hands tm_nmf_fit the CPU backend without its optional fused
 * ops, as a backend that lacks them (CUDA) does. */
static int without_optional_ops;
/* The element type of fit()'s context. */
static enum tm_dtype fit_dtype = TM_DTYPE_AUTO;

static tm_status fit(const struct tm_csr *x, int64_t k, const struct tm_model_params *p,
                     const struct tm_progress *prog, struct tm_nmf_result *r)
{
    const struct tm_backend_ops *o = tm_test_cpu_ops(without_optional_ops);
    struct tm_backend_config cfg = {fit_dtype, 0, 2};
    void *ctx;
    struct tm_bsparse *xb;
    o->create(&cfg, &ctx, NULL);
    o->sparse_upload(ctx, x, &xb, NULL);
    tm_status st = tm_nmf_fit(o, ctx, x, xb, k, p, prog, r, NULL);
    o->sparse_free(ctx, xb);
    o->destroy(ctx);
    return st;
}

static double dense_error(const struct tm_csr *x, const struct tm_nmf_result *r)
{
    double e = 0;
    for (int64_t i = 0; i < x->n_rows; i++) {
        int64_t q = x->indptr[i];
        for (int64_t j = 0; j < x->n_cols; j++) {
            double v = 0;
            for (int64_t t = 0; t < r->k; t++)
                v += r->w[i + t * r->m] * r->ht[j + t * r->n];
            double xv = q < x->indptr[i + 1] && x->indices[q] == j ? x->data[q++] : 0.0;
            e += (xv - v) * (xv - v);
        }
    }
    return sqrt(e);
}

static int nonneg(const struct tm_nmf_result *r)
{
    for (int64_t i = 0; i < r->m * r->k; i++)
        if (!(r->w[i] >= 0))
            return 0;
    for (int64_t i = 0; i < r->n * r->k; i++)
        if (!(r->ht[i] >= 0))
            return 0;
    return 1;
}

TM_TEST(nmf_recovers_planted_factorization)
{
    struct tm_csr x;
    planted_nn(&x, 60, 50, 4, 1);
    double nx = sqrt(tm_csr_frobenius_sq(&x));
    enum tm_nmf_solver solvers[] = {TM_NMF_CD, TM_NMF_MU};
    for (int s = 0; s < 2; s++) {
        struct tm_model_params p;
        tm_model_params_init(&p);
        p.solver = solvers[s];
        p.max_iter = 2000;
        p.tol = 1e-10;
        p.init = TM_NMF_INIT_NNDSVDA;
        struct tm_nmf_result r;
        REQUIRE(fit(&x, 4, &p, NULL, &r) == TM_OK);
        CHECK(nonneg(&r));
        CHECK(r.error < (s == 0 ? 1e-3 : 2e-2) * nx);
        /* the sparse error formula agrees with the dense one */
        CHECK(fabs(r.error - dense_error(&x, &r)) < 1e-6 * nx);
        tm_nmf_result_release(&r);
    }
    tm_csr_release(&x);
}

TM_TEST(nmf_mu_error_never_increases)
{
    struct tm_csr x;
    planted_nn(&x, 40, 70, 5, 2);
    for (int kl = 0; kl < 2; kl++) {
        struct tm_model_params p;
        tm_model_params_init(&p);
        p.solver = TM_NMF_MU;
        p.beta_loss = kl ? TM_BETA_KL : TM_BETA_FROBENIUS;
        p.init = TM_NMF_INIT_RANDOM;
        p.seed = 3;
        p.max_iter = 100;
        p.tol = 1e-12; /* KL errors are computed every 10 iterations */
        struct tm_nmf_result r;
        REQUIRE(fit(&x, 3, &p, NULL, &r) == TM_OK);
        CHECK(nonneg(&r));
        CHECK(r.n_trace >= (kl ? 10 : 100));
        int mono = 1;
        for (int64_t i = 1; i < r.n_trace; i++)
            mono &= r.trace[i] <= r.trace[i - 1] * (1 + 1e-12);
        CHECK(mono);
        CHECK(r.error == r.trace[r.n_trace - 1]);
        tm_nmf_result_release(&r);
    }
    tm_csr_release(&x);
}

/* The fused halves (cd, Frobenius mu) and the ops they stand for give the
 * same fit, with and without regularization; at k = 4 and at k = 6, whose
 * last two columns go in and out of the tiles apart from the 4 x 4
 * transposes. */
TM_TEST(nmf_fused_and_unfused_agree)
{
    struct tm_csr x;
    planted_nn(&x, 50, 80, 4, 5);
    for (int c = 0; c < 8; c++) {
        const int64_t k = c / 4 ? 6 : 4;
        struct tm_model_params p;
        tm_model_params_init(&p);
        p.solver = c % 2 ? TM_NMF_MU : TM_NMF_CD;
        p.alpha_W = c / 2 % 2 ? 0.01 : 0.0;
        p.l1_ratio = 0.5;
        p.max_iter = 60;
        p.seed = 7;
        struct tm_nmf_result a, b;
        REQUIRE(fit(&x, k, &p, NULL, &a) == TM_OK);
        without_optional_ops = 1;
        REQUIRE(fit(&x, k, &p, NULL, &b) == TM_OK);
        without_optional_ops = 0;
        CHECK_INT_EQ(a.n_iter, b.n_iter);
        /* the error is sqrt(||X||^2 - 2 <X, WH> + ||WH||^2): its square is
         * good to rounding of ||X||^2, not the (small) error itself */
        CHECK(fabs(a.error * a.error - b.error * b.error) <= 1e-12 * tm_csr_frobenius_sq(&x));
        double dw = 0, dh = 0, sw = 0, sh = 0;
        for (int64_t i = 0; i < a.m * a.k; i++)
            dw = fmax(dw, fabs(a.w[i] - b.w[i])), sw = fmax(sw, fabs(b.w[i]));
        for (int64_t i = 0; i < a.n * a.k; i++)
            dh = fmax(dh, fabs(a.ht[i] - b.ht[i])), sh = fmax(sh, fabs(b.ht[i]));
        CHECK(dw <= 1e-9 * sw && dh <= 1e-9 * sh);
        tm_nmf_result_release(&a);
        tm_nmf_result_release(&b);
    }
    tm_csr_release(&x);
}

TM_TEST(nmf_pgd_and_regularized_cd_stay_nonnegative)
{
    struct tm_csr x;
    planted_nn(&x, 30, 40, 3, 4);
    struct tm_model_params p;
    tm_model_params_init(&p);
    p.solver = TM_NMF_PGD;
    p.learning_rate = 1e-3;
    p.learning_rate_decay = 0.01;
    p.max_iter = 300;
    p.tol = 0;
    struct tm_nmf_result r;
    REQUIRE(fit(&x, 3, &p, NULL, &r) == TM_OK);
    CHECK(nonneg(&r));
    CHECK_INT_EQ(r.n_iter, 300);
    CHECK(r.trace[r.n_trace - 1] < r.trace[0]);
    CHECK(fabs(r.error - dense_error(&x, &r)) < 1e-8 * r.error);
    tm_nmf_result_release(&r);
    tm_model_params_init(&p);
    p.alpha_W = 0.01;
    p.l1_ratio = 0.5;
    p.shuffle = 1;
    REQUIRE(fit(&x, 3, &p, NULL, &r) == TM_OK);
    CHECK(nonneg(&r));
    tm_nmf_result_release(&r);
    tm_csr_release(&x);
}

TM_TEST(nmf_inits_and_determinism)
{
    struct tm_csr x;
    planted_nn(&x, 25, 35, 3, 5);
    enum tm_nmf_init inits[] = {TM_NMF_INIT_NNDSVD, TM_NMF_INIT_NNDSVDA, TM_NMF_INIT_NNDSVDAR,
                                TM_NMF_INIT_RANDOM};
    for (int i = 0; i < 4; i++) {
        struct tm_model_params p;
        tm_model_params_init(&p);
        p.init = inits[i];
        p.seed = 7;
        p.max_iter = 1; /* look at the init plus one sweep */
        struct tm_nmf_result a, b;
        REQUIRE(fit(&x, 3, &p, NULL, &a) == TM_OK);
        REQUIRE(fit(&x, 3, &p, NULL, &b) == TM_OK);
        CHECK(nonneg(&a));
        CHECK(memcmp(a.w, b.w, (size_t)(a.m * a.k) * sizeof(double)) == 0);
        CHECK(memcmp(a.ht, b.ht, (size_t)(a.n * a.k) * sizeof(double)) == 0);
        CHECK(a.error == b.error);
        tm_nmf_result_release(&a);
        tm_nmf_result_release(&b);
    }
    tm_csr_release(&x);
}

static int cancel_at_3(void *ctx, const char *stage, double f)
{
    (void)f;
    (void)stage;
    return ++*(int *)ctx >= 3;
}

TM_TEST(nmf_cancellation)
{
    struct tm_csr x;
    planted_nn(&x, 20, 30, 3, 6);
    struct tm_model_params p;
    tm_model_params_init(&p);
    p.tol = 0;
    int calls = 0;
    struct tm_progress prog = {cancel_at_3, &calls};
    struct tm_nmf_result r;
    CHECK_INT_EQ(fit(&x, 3, &p, &prog, &r), TM_ECANCELLED);
    CHECK_INT_EQ(calls, 3);
    tm_nmf_result_release(&r);
    tm_csr_release(&x);
}

/* hals (cd with several sweeps per product) on planted non-negative
 * matrices, at cd's defaults (nndsvda, tol 1e-4) and max_iter, through
 * hals_inner_fused and through the unfused ops: an error at or below cd's,
 * reached with fewer products with X and never stopping after cd, its
 * warm-up iterations cd's, non-negative factors, and the passes counted
 * as the products made (2 per iteration for both). */
TM_TEST(nmf_hals_reaches_cd_error_in_fewer_passes)
{
    static const struct {
        int64_t m, n, k;
        double density;
        int64_t max_iter;
    } cases[] = {{300, 200, 6, 0.3, 200}, {120, 400, 10, 0.5, 200}, {200, 150, 4, 0.2, 40}};
    for (size_t c2 = 0; c2 < 2 * sizeof(cases) / sizeof(cases[0]); c2++) {
        size_t c = c2 / 2;
        without_optional_ops = c2 % 2;
        struct tm_csr x;
        tm_test_planted(&x, cases[c].m, cases[c].n, cases[c].density, 1, 40 + c);
        struct tm_model_params p;
        tm_model_params_init(&p);
        p.init = TM_NMF_INIT_NNDSVDA;
        p.max_iter = cases[c].max_iter;
        struct tm_nmf_result cd, hals;
        REQUIRE(fit(&x, cases[c].k, &p, NULL, &cd) == TM_OK);
        p.solver = TM_NMF_HALS;
        REQUIRE(fit(&x, cases[c].k, &p, NULL, &hals) == TM_OK);
        /* The first iteration at or below cd's error: where hals reached
         * it, which may be well before its own stop (a tighter rule). */
        int64_t reached = 0;
        while (reached < hals.n_trace && hals.trace[reached] > cd.error)
            reached++;
        if (!(hals.error <= cd.error && 2 * (reached + 1) < cd.passes_over_x))
            fprintf(stderr,
                    "  case %zu%s: cd %.9g in %lld passes, hals %.9g in %lld (reached in %lld)\n",
                    c, without_optional_ops ? " unfused" : "", cd.error,
                    (long long)cd.passes_over_x, hals.error, (long long)hals.passes_over_x,
                    (long long)(2 * (reached + 1)));
        CHECK(hals.error <= cd.error);
        CHECK(2 * (reached + 1) < cd.passes_over_x);
        /* Its first 5 iterations (nmf.c's HALS_WARMUP) are cd's, from an
         * init whose power iterations ran in float32 (svd.h): measured
         * within 7e-8 of cd's errors. */
        for (int64_t i = 0; i < 5 && i < hals.n_trace && i < cd.n_trace; i++)
            CHECK(fabs(hals.trace[i] - cd.trace[i]) <= 1e-6 * cd.trace[i]);
        CHECK(hals.passes_over_x <= cd.passes_over_x);
        CHECK_INT_EQ(cd.passes_over_x, 2 * cd.n_iter);
        CHECK_INT_EQ(hals.passes_over_x, 2 * hals.n_iter);
        CHECK(nonneg(&hals));
        CHECK(fabs(hals.error - dense_error(&x, &hals)) < 1e-8 * hals.error);
        CHECK(hals.error == hals.trace[hals.n_trace - 1]);
        tm_nmf_result_release(&cd);
        tm_nmf_result_release(&hals);
        tm_csr_release(&x);
    }
    without_optional_ops = 0;
}

/* hals stops on its own rule alone: the first iteration past the window
 * (10) where its error fell by less than tol / 1000 of its first error over
 * the last 10 iterations, never earlier on cd's violation rule, which
 * stopped it above cd's error on bench/shapes.py's short shape (nmf.c's
 * HALS_TOL_DIV). Planted matrices of three shapes and two seeds. */
TM_TEST(nmf_hals_stops_on_its_error_window)
{
    static const struct {
        int64_t m, n, k;
        double density;
    } cases[] = {{300, 200, 6, 0.3}, {120, 400, 10, 0.5}, {500, 300, 8, 0.05}};
    int stopped_early = 0;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (uint64_t seed = 0; seed < 2; seed++) {
            struct tm_csr x;
            tm_test_planted(&x, cases[c].m, cases[c].n, cases[c].density, 1, 70 + c);
            struct tm_model_params p;
            tm_model_params_init(&p);
            p.solver = TM_NMF_HALS;
            p.init = TM_NMF_INIT_NNDSVDA;
            p.seed = seed;
            p.max_iter = 400;
            struct tm_nmf_result r;
            REQUIRE(fit(&x, cases[c].k, &p, NULL, &r) == TM_OK);
            REQUIRE(r.n_trace == r.n_iter);
            double limit = p.tol / 1000.0 * r.trace[0];
            for (int64_t it = 11; it <= r.n_iter; it++) {
                int window_met = r.trace[it - 11] - r.trace[it - 1] < limit;
                if (it < r.n_iter && window_met)
                    stopped_early = 1; /* should have stopped here */
                if (it == r.n_iter && r.n_iter < p.max_iter && !window_met) {
                    fprintf(stderr, "  case %zu seed %llu: stopped at %lld, window not met\n", c,
                            (unsigned long long)seed, (long long)it);
                    CHECK(window_met);
                }
            }
            CHECK(r.n_iter < p.max_iter); /* it did stop */
            tm_nmf_result_release(&r);
            tm_csr_release(&x);
        }
    }
    CHECK(!stopped_early);
}

/* hals through hals_inner_fused against the unfused ops, on a matrix so
 * sparse that both halves' inner loops have a cap of one sweep (where the
 * groups' stop rule and the unfused path's global one agree): the same
 * iterations, errors and factors to rounding, so the fused path
 * extrapolates, restarts and stops as the unfused one does; to its stop
 * rule, and to max_iter 12. Further on, where the error no longer moves,
 * rounding decides the restarts and the factors drift apart along
 * directions that leave the error as it is; on some CPUs and builds that
 * begins at 15 (bench/NOTES.md, "The fused/unfused hals test at 15
 * iterations"). */
TM_TEST(nmf_hals_fused_matches_unfused_at_one_sweep)
{
    struct tm_csr x;
    tm_test_planted(&x, 300, 260, 0.002, 1, 9);
    for (int c = 0; c < 2; c++) {
        struct tm_model_params p;
        tm_model_params_init(&p);
        p.solver = TM_NMF_HALS;
        p.init = TM_NMF_INIT_NNDSVDA;
        p.max_iter = c ? 12 : 200;
        p.tol = c ? 0 : 1e-4;
        struct tm_nmf_result a, b;
        REQUIRE(fit(&x, 3, &p, NULL, &a) == TM_OK);
        without_optional_ops = 1;
        tm_status st = fit(&x, 3, &p, NULL, &b);
        without_optional_ops = 0;
        REQUIRE(st == TM_OK);
        CHECK_INT_EQ(a.n_iter, b.n_iter);
        CHECK(c || a.n_iter < p.max_iter); /* stopped by its rule */
        double d = 0, sw = 0, sh = 0, dw = 0, dh = 0;
        for (int64_t i = 0; i < a.n_trace && i < b.n_trace; i++)
            d = fmax(d, fabs(a.trace[i] - b.trace[i]));
        CHECK(d <= 1e-9 * a.trace[0]);
        for (int64_t i = 0; i < a.m * a.k; i++)
            dw = fmax(dw, fabs(a.w[i] - b.w[i])), sw = fmax(sw, fabs(b.w[i]));
        for (int64_t i = 0; i < a.n * a.k; i++)
            dh = fmax(dh, fabs(a.ht[i] - b.ht[i])), sh = fmax(sh, fabs(b.ht[i]));
        CHECK(dw <= 1e-9 * sw && dh <= 1e-9 * sh);
        CHECK(fabs(a.error - dense_error(&x, &a)) < 1e-8 * a.error);
        tm_nmf_result_release(&a);
        tm_nmf_result_release(&b);
    }
    tm_csr_release(&x);
}

/* hals with regularization and shuffle, and in a float32 context, run to
 * max_iter: the factors stay non-negative, the error falls, the reported
 * error is the returned factors' (extrapolation keeps the pair it measured),
 * and float32 lands within rounding of float64. */
TM_TEST(nmf_hals_regularized_shuffled_float32)
{
    struct tm_csr x;
    tm_test_planted(&x, 90, 120, 0.4, 1, 7);
    for (int c = 0; c < 3; c++) {
        struct tm_model_params p;
        tm_model_params_init(&p);
        p.solver = TM_NMF_HALS;
        p.init = TM_NMF_INIT_RANDOM;
        p.seed = 5;
        p.max_iter = 60;
        p.tol = 0;
        if (c == 1) {
            p.alpha_W = 0.002;
            p.l1_ratio = 0.5;
            p.shuffle = 1;
        }
        struct tm_nmf_result r, r32;
        REQUIRE(fit(&x, 5, &p, NULL, &r) == TM_OK);
        CHECK(nonneg(&r));
        CHECK_INT_EQ(r.n_iter, 60);
        CHECK(r.trace[r.n_trace - 1] < r.trace[0]);
        CHECK(fabs(r.error - dense_error(&x, &r)) < 1e-8 * r.error);
        if (c == 2) {
            fit_dtype = TM_DTYPE_FLOAT32;
            tm_status st = fit(&x, 5, &p, NULL, &r32);
            fit_dtype = TM_DTYPE_AUTO;
            REQUIRE(st == TM_OK);
            CHECK(nonneg(&r32));
            CHECK(fabs(r32.error - r.error) <= 1e-4 * r.error);
            tm_nmf_result_release(&r32);
        }
        tm_nmf_result_release(&r);
    }
    tm_csr_release(&x);
}
