/* test_nmf_minibatch.c - solver "minibatch": agreement with scikit-learn's
 * MiniBatchNMF (tests/fixtures/minibatch/minibatch.txt, made by gen.py
 * beside it), on the backend with and without its optional ops and in
 * float32, the transform, cancellation and the parameter checks. */
#include <stdlib.h>
#include <string.h>

#include "core/fit.h"
#include "core/numerics/nmf.h"
#include "cpu_ops.h"
#include "fixture.h"
#include "harness.h"
#include "testalloc.h"

struct mcase {
    char name[32], beta[32];
    int64_t k, batch_size, max_iter, max_no_improvement, n_iter, n_steps;
    int fresh;
    double forget_factor, tol, alpha_W, l1_ratio, error;
    double *components; /* k x n row-major */
    double *transform;  /* m x k row-major */
};

/* The fixture, opened and read up to its cases: X as CSR from its dense
 * rows (zeros dropped), after its comment line. NULL when it cannot be
 * read; the caller closes it and releases x. */
static FILE *open_fixture(struct tm_csr *x)
{
    FILE *f = fopen(tm_test_fixture("minibatch/minibatch.txt"), "r");
    if (f && fscanf(f, " # %*[^\n]") == 0 && tm_test_read_dense_csr(f, x))
        return f;
    if (f)
        fclose(f);
    return NULL;
}

/* The fixture's X alone, for the tests that make their own parameters. */
static int read_fixture_x(struct tm_csr *x)
{
    FILE *f = open_fixture(x);
    if (f)
        fclose(f);
    return f != NULL;
}

static int read_case(FILE *f, int64_t m, int64_t n, struct mcase *c)
{
    long long k, bs, mi, mni, it, steps;
    int fresh;
    if (fscanf(f, " case %31s %lld %31s %lld %lf %d %lld %lf %lf %lf %lld", c->name, &k, c->beta,
               &bs, &c->forget_factor, &fresh, &mi, &c->tol, &c->alpha_W, &c->l1_ratio,
               &mni) != 11 ||
        fscanf(f, " fit %lf %lld %lld", &c->error, &it, &steps) != 3)
        return 0;
    c->k = k;
    c->batch_size = bs;
    c->fresh = fresh;
    c->max_iter = mi;
    c->max_no_improvement = mni;
    c->n_iter = it;
    c->n_steps = steps;
    c->components = malloc((size_t)(n * k) * sizeof(double));
    c->transform = malloc((size_t)(m * k) * sizeof(double));
    if (fscanf(f, " components") != 0)
        return 0;
    for (int64_t i = 0; i < n * k; i++)
        if (fscanf(f, "%lf", &c->components[i]) != 1)
            return 0;
    if (fscanf(f, " transform") != 0)
        return 0;
    for (int64_t i = 0; i < m * k; i++)
        if (fscanf(f, "%lf", &c->transform[i]) != 1)
            return 0;
    return 1;
}

static void case_params(const struct mcase *c, struct tm_model_params *p)
{
    tm_model_params_init(p);
    p->solver = TM_NMF_MINIBATCH;
    p->init = TM_NMF_INIT_NNDSVDA;
    p->n_topics = c->k;
    p->beta_loss = strcmp(c->beta, "kullback-leibler") == 0 ? TM_BETA_KL : TM_BETA_FROBENIUS;
    p->batch_size = c->batch_size;
    p->forget_factor = c->forget_factor;
    p->fresh_restarts = c->fresh;
    p->max_iter = c->max_iter;
    p->tol = c->tol;
    p->alpha_W = c->alpha_W;
    p->l1_ratio = c->l1_ratio;
    p->max_no_improvement = c->max_no_improvement;
}

/* max |a - b| / max |b|; a is column-major rows x cols, b row-major. */
static double max_rel(const double *a, const double *b, int64_t rows, int64_t cols)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            d = fmax(d, fabs(a[i + j * rows] - b[i * cols + j]));
            s = fmax(s, fabs(b[i * cols + j]));
        }
    return d / s;
}

static tm_status run(int without, enum tm_dtype dtype, const struct tm_csr *x,
                     const struct tm_model_params *p, const double *ht,
                     const struct tm_progress *prog, struct tm_nmf_result *r)
{
    const struct tm_backend_ops *o = tm_test_cpu_ops(without);
    struct tm_backend_config cfg = {dtype, 0, 2};
    void *ctx;
    struct tm_bsparse *xb;
    o->create(&cfg, &ctx, NULL);
    o->sparse_upload(ctx, x, &xb, NULL);
    tm_status st = ht ? tm_nmf_transform(o, ctx, x, xb, ht, p->n_topics, p, prog, r, NULL)
                      : tm_nmf_fit(o, ctx, x, xb, p->n_topics, p, prog, r, NULL);
    o->sparse_free(ctx, xb);
    o->destroy(ctx);
    return st;
}

/* The three cases (frobenius to max_iter; kl stopping early; fresh
 * restarts with l1/l2 penalties): scikit-learn's batches and init are
 * replayed, so the error, components and step counts agree to rounding;
 * without the optional ops too (the path a GPU backend takes). The transform
 * of the fixture's components is MiniBatchNMF.transform's. */
TM_TEST(nmf_minibatch_matches_scikit_learn)
{
    struct tm_csr x;
    FILE *f = open_fixture(&x);
    REQUIRE(f);
    int64_t m = x.n_rows, n = x.n_cols, n_cases = 0;
    struct mcase c;
    while (read_case(f, m, n, &c)) {
        struct tm_model_params p;
        case_params(&c, &p);
        for (int without = 0; without < 2; without++) {
            struct tm_nmf_result r;
            REQUIRE(run(without, TM_DTYPE_FLOAT64, &x, &p, NULL, NULL, &r) == TM_OK);
            CHECK_NEAR(r.error, c.error, 1e-8);
            CHECK_INT_EQ(r.n_iter, c.n_iter);
            CHECK_INT_EQ(r.n_steps, c.n_steps);
            /* components_ is H (k x n) row-major: Ht (n x k) column-major
             * is the same array, compared as one row */
            CHECK(max_rel(r.ht, c.components, 1, n * c.k) < 1e-6);
            /* 2 products a batch (3 for KL), and the error's */
            CHECK(r.passes_over_x >= 2 * (r.n_iter - 1) && r.passes_over_x <= 3 * r.n_iter + 1);
            CHECK(r.n_trace == r.n_iter);
            tm_nmf_result_release(&r);
        }
        struct tm_nmf_result tr;
        REQUIRE(run(0, TM_DTYPE_FLOAT64, &x, &p, c.components, NULL, &tr) == TM_OK);
        CHECK(max_rel(tr.w, c.transform, m, c.k) < 1e-6);
        CHECK(tr.n_iter >= 1 && tr.n_iter <= c.max_iter);
        tm_nmf_result_release(&tr);
        free(c.components);
        free(c.transform);
        n_cases++;
    }
    CHECK_INT_EQ(n_cases, 3);
    fclose(f);
    tm_csr_release(&x);
}

/* float32 factors reach about the same error; the counts may move. */
TM_TEST(nmf_minibatch_float32)
{
    struct tm_csr x;
    FILE *f = open_fixture(&x);
    REQUIRE(f);
    struct mcase c;
    REQUIRE(read_case(f, x.n_rows, x.n_cols, &c));
    struct tm_model_params p;
    case_params(&c, &p);
    struct tm_nmf_result r;
    REQUIRE(run(0, TM_DTYPE_FLOAT32, &x, &p, NULL, NULL, &r) == TM_OK);
    CHECK(fabs(r.error - c.error) < 1e-3 * c.error);
    for (int64_t i = 0; i < x.n_cols * c.k; i++)
        CHECK(r.ht[i] >= 0);
    tm_nmf_result_release(&r);
    free(c.components);
    free(c.transform);
    fclose(f);
    tm_csr_release(&x);
}

static int cancel_at_5(void *ctx, const char *stage, double frac)
{
    (void)stage;
    (void)frac;
    return ++*(int *)ctx >= 5;
}

/* One batch of all rows is one step per epoch; tol 0 and no improvement
 * rule run max_iter epochs; progress cancels; fewer rows than batch_size
 * take one batch (scikit-learn's min(batch_size, n_samples)). */
TM_TEST(nmf_minibatch_steps_and_cancel)
{
    struct tm_csr x;
    REQUIRE(read_fixture_x(&x));
    struct tm_model_params p;
    tm_model_params_init(&p);
    p.solver = TM_NMF_MINIBATCH;
    p.n_topics = 3;
    p.tol = 0;
    p.max_no_improvement = 0;
    p.max_iter = 7;
    p.batch_size = 1000;
    struct tm_nmf_result r;
    REQUIRE(run(0, TM_DTYPE_FLOAT64, &x, &p, NULL, NULL, &r) == TM_OK);
    CHECK_INT_EQ(r.n_iter, 7);
    CHECK_INT_EQ(r.n_steps, 7);
    CHECK_INT_EQ(r.passes_over_x, 2 * 7 + 1); /* W and H products, and the error's */
    tm_nmf_result_release(&r);
    p.batch_size = 9; /* 40 rows: 5 batches, the last of 4 */
    REQUIRE(run(0, TM_DTYPE_FLOAT64, &x, &p, NULL, NULL, &r) == TM_OK);
    CHECK_INT_EQ(r.n_iter, 7);
    CHECK_INT_EQ(r.n_steps, 35);
    tm_nmf_result_release(&r);
    int calls = 0;
    struct tm_progress prog = {cancel_at_5, &calls};
    CHECK_INT_EQ(run(0, TM_DTYPE_FLOAT64, &x, &p, NULL, &prog, &r), TM_ECANCELLED);
    CHECK_INT_EQ(calls, 5);
    tm_nmf_result_release(&r);
    tm_csr_release(&x);
}

TM_TEST(nmf_minibatch_validate)
{
    struct tm_csr x;
    REQUIRE(read_fixture_x(&x));
    struct tm_model_params p;
    char err[TM_ERR_SIZE];
    tm_model_params_init(&p);
    p.n_topics = 3;
    p.solver = TM_NMF_MINIBATCH;
    p.beta_loss = TM_BETA_KL;
    CHECK_INT_EQ(tm_fit_validate(&x, &p, err), TM_OK);
    p.batch_size = 0;
    CHECK_INT_EQ(tm_fit_validate(&x, &p, err), TM_ERANGE);
    CHECK(strstr(err, "model.batch_size") != NULL);
    p.batch_size = 10;
    p.forget_factor = 1.5;
    CHECK_INT_EQ(tm_fit_validate(&x, &p, err), TM_ERANGE);
    CHECK(strstr(err, "model.forget_factor") != NULL);
    p.forget_factor = 0.0; /* rho 0: B is the last batch's denominator alone */
    struct tm_nmf_result r;
    p.max_iter = 5;
    CHECK_INT_EQ(run(0, TM_DTYPE_FLOAT64, &x, &p, NULL, NULL, &r), TM_OK);
    CHECK(isfinite(r.error) && r.error > 0);
    tm_nmf_result_release(&r);
    p.fresh_restarts_max_iter = 0;
    CHECK_INT_EQ(tm_fit_validate(&x, &p, err), TM_ERANGE);
    p.fresh_restarts_max_iter = 30;
    p.solver = TM_NMF_CD;
    CHECK_INT_EQ(tm_fit_validate(&x, &p, err), TM_EINVAL); /* kl with cd */
    tm_csr_release(&x);
}

/* Every allocation of a fit (plain, fresh restarts, KL, with l1/l2, so that
 * every branch allocates) and of a transform failing in turn: TM_ENOMEM, nothing leaked,
 * until one succeeds. */
TM_TEST(nmf_minibatch_allocation_failures_leak_nothing)
{
    struct tm_csr x;
    REQUIRE(read_fixture_x(&x));
    const struct tm_backend_ops *o = tm_test_cpu_ops(0);
    struct tm_backend_config cfg = {TM_DTYPE_FLOAT64, 0, 1};
    void *ctx;
    struct tm_bsparse *xb;
    REQUIRE(o->create(&cfg, &ctx, NULL) == TM_OK);
    REQUIRE(o->sparse_upload(ctx, &x, &xb, NULL) == TM_OK);
    double *ht = calloc((size_t)x.n_cols * 3, sizeof(double));
    for (int64_t i = 0; i < x.n_cols * 3; i++)
        ht[i] = 0.1 + 0.01 * (double)(i % 7);
    for (int mode = 0; mode < 4; mode++) { /* fits: plain, fresh restarts, KL; a transform */
        struct tm_model_params p;
        tm_model_params_init(&p);
        p.solver = TM_NMF_MINIBATCH;
        p.n_topics = 3;
        p.max_iter = 2;
        p.batch_size = 9;
        p.fresh_restarts = mode == 1;
        p.beta_loss = mode == 2 ? TM_BETA_KL : TM_BETA_FROBENIUS;
        p.alpha_W = 0.01;
        p.l1_ratio = 0.5;
        int ok = 0, bad = 0;
        for (long nth = 1; nth < 2000 && !ok; nth++) {
            struct tm_nmf_result r;
            tm_testalloc_fail_at(nth);
            tm_status st = mode == 3 ? tm_nmf_transform(o, ctx, &x, xb, ht, 3, &p, NULL, &r, NULL)
                                     : tm_nmf_fit(o, ctx, &x, xb, 3, &p, NULL, &r, NULL);
            tm_nmf_result_release(&r);
            tm_testalloc_reset();
            if (st == TM_OK)
                ok = 1;
            else if (st != TM_ENOMEM)
                bad++;
            if (tm_testalloc_outstanding() != 0)
                bad++;
        }
        CHECK(ok);
        CHECK_INT_EQ(bad, 0);
    }
    free(ht);
    o->sparse_free(ctx, xb);
    o->destroy(ctx);
    tm_csr_release(&x);
}
