/* test_fit.c - tm_fit: validation messages, the backend it is handed,
 * result contents, allocation failures without leaks, cancellation. */
#include <stdlib.h>

#include "core/fit.h"
#include "core/numerics/rng.h"
#include "harness.h"
#include "testalloc.h"

/* A small non-negative m x n matrix: a planted rank-3 part on a random
 * pattern, every row and column non-empty. */
static void small_matrix(struct tm_csr *x, int64_t m, int64_t n, uint64_t seed)
{
    struct tm_rng g;
    tm_rng_init(&g, seed);
    int64_t nnz = 0;
    tm_csr_init(x, m, n, m * n, NULL);
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            if (j != i % n && tm_rng_uniform(&g) > 0.35)
                continue;
            x->indices[nnz] = (int32_t)j;
            x->data[nnz++] = 0.2 + (double)((i % 3) == (j % 3)) + 0.5 * tm_rng_uniform(&g);
        }
        x->indptr[i + 1] = nnz;
    }
}

static tm_status fit_with(const struct tm_csr *x, enum tm_method method, int64_t k,
                          struct tm_fit_result *r, char *err)
{
    struct tm_model_params p;
    tm_model_params_init(&p);
    p.method = method;
    p.n_topics = k;
    return tm_fit(NULL, NULL, x, &p, NULL, r, err);
}

TM_TEST(fit_rejects_bad_requests_naming_the_parameter)
{
    struct tm_csr x;
    struct tm_fit_result r;
    char err[TM_ERR_SIZE];
    small_matrix(&x, 12, 9, 1);
    CHECK_INT_EQ(fit_with(&x, TM_METHOD_NMF, 0, &r, err), TM_ERANGE);
    CHECK(strstr(err, "model.n_topics") != NULL);
    CHECK_INT_EQ(fit_with(&x, TM_METHOD_TRUNCATED_SVD, -3, &r, err), TM_ERANGE);
    CHECK_INT_EQ(fit_with(&x, TM_METHOD_TRUNCATED_SVD, 10, &r, err), TM_ERANGE);
    CHECK(strstr(err, "model.n_topics") != NULL && strstr(err, "9") != NULL);
    tm_fit_result_release(&r);

    struct tm_model_params p;
    tm_model_params_init(&p);
    p.n_topics = 2;
    p.solver = TM_NMF_CD;
    p.beta_loss = TM_BETA_KL;
    CHECK_INT_EQ(tm_fit(NULL, NULL, &x, &p, NULL, &r, err), TM_EINVAL);
    CHECK(strstr(err, "model.beta_loss") != NULL);
    tm_model_params_init(&p);
    p.n_topics = 2;
    p.l1_ratio = 2;
    CHECK_INT_EQ(tm_fit(NULL, NULL, &x, &p, NULL, &r, err), TM_ERANGE);
    CHECK(strstr(err, "model.l1_ratio") != NULL);
    tm_model_params_init(&p);
    p.n_topics = 2;
    p.method = TM_METHOD_FULL_SVD;
    p.max_dense_bytes = 100;
    CHECK_INT_EQ(tm_fit(NULL, NULL, &x, &p, NULL, &r, err), TM_ETOOBIG);
    CHECK(strstr(err, "max_dense_bytes") != NULL);
    /* tm_fit_validate refuses what tm_fit refuses, with the same words. */
    tm_model_params_init(&p);
    p.n_topics = 10;
    CHECK_INT_EQ(tm_fit_validate(&x, &p, err), TM_ERANGE);
    CHECK(strstr(err, "model.n_topics") != NULL);
    p.n_topics = 2;
    CHECK_INT_EQ(tm_fit_validate(&x, &p, err), TM_OK);

    x.data[3] = -1.0; /* NMF needs non-negative data */
    CHECK_INT_EQ(fit_with(&x, TM_METHOD_NMF, 2, &r, err), TM_EINVAL);
    x.data[3] = NAN;
    CHECK_INT_EQ(fit_with(&x, TM_METHOD_TRUNCATED_SVD, 2, &r, err), TM_EINVAL);
    tm_csr_release(&x);

    struct tm_csr empty;
    tm_csr_init(&empty, 5, 4, 0, NULL);
    CHECK_INT_EQ(fit_with(&empty, TM_METHOD_NMF, 2, &r, err), TM_EEMPTY);
    tm_csr_release(&empty);
    tm_csr_init(&empty, 0, 4, 0, NULL);
    CHECK_INT_EQ(fit_with(&empty, TM_METHOD_TRUNCATED_SVD, 1, &r, err), TM_EEMPTY);
    tm_csr_release(&empty);
}

TM_TEST(fit_results_of_each_method)
{
    struct tm_csr x;
    small_matrix(&x, 30, 20, 2);
    int64_t m = 30, n = 20, k = 3;
    double *dense = calloc((size_t)(m * n), sizeof(double)), nx2 = 0, total = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t q = x.indptr[i]; q < x.indptr[i + 1]; q++)
            dense[i + x.indices[q] * m] = x.data[q];
    for (int64_t j = 0; j < n; j++) { /* np.var(X, axis=0).sum() */
        double mean = 0, var = 0;
        for (int64_t i = 0; i < m; i++)
            mean += dense[i + j * m] / m;
        for (int64_t i = 0; i < m; i++)
            var += (dense[i + j * m] - mean) * (dense[i + j * m] - mean) / m;
        total += var;
    }
    for (int64_t i = 0; i < m * n; i++)
        nx2 += dense[i] * dense[i];
    enum tm_method methods[] = {TM_METHOD_NMF, TM_METHOD_TRUNCATED_SVD, TM_METHOD_FULL_SVD};
    double svd_err[2] = {0, 0};
    for (int a = 0; a < 4; a++) {
        struct tm_model_params p;
        tm_model_params_init(&p);
        p.method = methods[a < 3 ? a : 1];
        p.algorithm = a == 3 ? TM_SVD_LANCZOS : TM_SVD_RANDOMIZED;
        p.n_topics = k;
        p.n_top_words = 4;
        struct tm_fit_result r;
        char err[TM_ERR_SIZE] = "";
        REQUIRE(tm_fit(NULL, NULL, &x, &p, NULL, &r, err) == TM_OK);
        CHECK_INT_EQ(r.n_documents, m);
        CHECK_INT_EQ(r.n_features, n);
        CHECK_INT_EQ(r.nnz, x.indptr[m]);
        CHECK_INT_EQ(r.components.rows, n);
        CHECK_INT_EQ(r.components.cols, k);
        CHECK_INT_EQ(r.document_topics.rows, m);
        CHECK_INT_EQ(r.document_topics.cols, k);
        CHECK_STR_EQ(r.device_used, "cpu");
        /* reconstruction error against the dense X - doc_topics * components
         * (U S V^T for SVD: document_topics is U S) */
        double e = 0;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double v = 0;
                for (int64_t t2 = 0; t2 < k; t2++)
                    v += r.document_topics.data[i + t2 * m] * r.components.data[j + t2 * n];
                e += (dense[i + j * m] - v) * (dense[i + j * m] - v);
            }
        CHECK(fabs(sqrt(e) - r.reconstruction_error) < 1e-6 * sqrt(nx2));
        /* top words: decreasing weights that are the components' */
        for (int64_t t2 = 0; t2 < k; t2++)
            for (int64_t w = 0; w < 4; w++) {
                int64_t term = r.top_terms[t2 * 4 + w];
                REQUIRE(term >= 0 && term < n);
                CHECK(r.top_weights[t2 * 4 + w] == r.components.data[term + t2 * n]);
                if (w)
                    CHECK(r.top_weights[t2 * 4 + w] <= r.top_weights[t2 * 4 + w - 1]);
            }
        if (p.method == TM_METHOD_NMF) {
            CHECK(r.singular_values == NULL);
            CHECK(r.n_trace == r.n_iter && r.error_trace != NULL);
        } else {
            double sum = 0;
            for (int64_t t2 = 0; t2 < k; t2++) {
                /* explained variance = np.var(U S, axis=0) / total */
                double mean = 0, var = 0;
                for (int64_t i = 0; i < m; i++)
                    mean += r.document_topics.data[i + t2 * m] / m;
                for (int64_t i = 0; i < m; i++) {
                    double d = r.document_topics.data[i + t2 * m] - mean;
                    var += d * d / m;
                }
                CHECK_NEAR(r.explained_variance_ratio[t2], var / total, 1e-10);
                sum += r.explained_variance_ratio[t2];
            }
            CHECK(sum > 0 && sum <= 1);
            if (a >= 2)
                svd_err[a - 2] = r.reconstruction_error;
        }
        tm_fit_result_release(&r);
    }
    CHECK_NEAR(svd_err[0], svd_err[1], 1e-8); /* full and lanczos agree */
    free(dense);
    tm_csr_release(&x);
}

TM_TEST(fit_allocation_failures_release_everything)
{
    struct tm_csr x;
    small_matrix(&x, 24, 18, 3);
    enum tm_method methods[] = {TM_METHOD_NMF, TM_METHOD_NMF, TM_METHOD_TRUNCATED_SVD,
                                TM_METHOD_TRUNCATED_SVD, TM_METHOD_FULL_SVD};
    for (int a = 0; a < 5; a++) {
        struct tm_model_params p;
        tm_model_params_init(&p);
        p.method = methods[a];
        p.solver = a == 1 ? TM_NMF_MU : TM_NMF_CD;
        p.algorithm = a == 3 ? TM_SVD_LANCZOS : TM_SVD_RANDOMIZED;
        p.n_topics = 3;
        p.max_iter = 5;
        int ok = 0, bad = 0;
        for (long nth = 1; nth < 5000 && !ok; nth++) {
            struct tm_fit_result r;
            tm_testalloc_fail_at(nth);
            tm_status st = tm_fit(NULL, NULL, &x, &p, NULL, &r, NULL);
            tm_fit_result_release(&r);
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
    tm_csr_release(&x);
}

static int cancel_now(void *ctx, const char *stage, double f)
{
    (void)ctx;
    (void)stage;
    (void)f;
    return 1;
}

TM_TEST(fit_cancellation_leaves_a_released_result)
{
    struct tm_csr x;
    small_matrix(&x, 20, 15, 4);
    struct tm_progress prog = {cancel_now, NULL};
    enum tm_method methods[] = {TM_METHOD_NMF, TM_METHOD_TRUNCATED_SVD};
    for (int a = 0; a < 2; a++) {
        struct tm_model_params p;
        tm_model_params_init(&p);
        p.method = methods[a];
        p.n_topics = 2;
        struct tm_fit_result r;
        char err[TM_ERR_SIZE];
        CHECK_INT_EQ(tm_fit(NULL, NULL, &x, &p, &prog, &r, err), TM_ECANCELLED);
        CHECK(r.components.data == NULL && r.top_terms == NULL);
        tm_fit_result_release(&r);
    }
    tm_csr_release(&x);
}

/* The backend is the caller's: NULL is the CPU, whatever params->device
 * says (core never reads it); a context the caller made is used and left to
 * the caller, for as many fits as it likes; a context needs its backend. */
TM_TEST(fit_runs_on_the_backend_it_is_given)
{
    struct tm_csr x;
    struct tm_model_params p;
    struct tm_fit_result r, again;
    char err[TM_ERR_SIZE];
    small_matrix(&x, 30, 20, 5);
    tm_model_params_init(&p);
    p.n_topics = 3;
    p.device = TM_DEVICE_GPU;
    REQUIRE(tm_fit(NULL, NULL, &x, &p, NULL, &r, err) == TM_OK);
    CHECK_STR_EQ(r.device_used, "cpu");

    const struct tm_backend_ops *cpu = tm_backend_cpu();
    struct tm_backend_config cfg = {TM_DTYPE_AUTO, 0, 2};
    void *ctx = NULL;
    REQUIRE(cpu->create(&cfg, &ctx, err) == TM_OK);
    for (int i = 0; i < 2; i++) {
        CHECK_INT_EQ(tm_fit(cpu, ctx, &x, &p, NULL, &again, err), TM_OK);
        CHECK_STR_EQ(again.device_used, "cpu");
        /* the same fit, the same numbers, on a context of two threads */
        CHECK(again.reconstruction_error == r.reconstruction_error);
        tm_fit_result_release(&again);
    }
    cpu->destroy(ctx); /* still the caller's: a double free would show here */

    int not_a_context = 0;
    CHECK_INT_EQ(tm_fit(NULL, &not_a_context, &x, &p, NULL, &again, err), TM_EINVAL);
    CHECK(strstr(err, "backend") != NULL);
    tm_fit_result_release(&again);
    tm_fit_result_release(&r);
    tm_csr_release(&x);
}

TM_TEST(fit_device_bytes_grow_with_the_problem)
{
    struct tm_model_params p;
    tm_model_params_init(&p);
    p.n_topics = 20;
    const struct tm_backend_ops *o = tm_backend_cpu();
    size_t small = tm_fit_device_bytes(o, &p, 1000, 5000, 20000);
    size_t big = tm_fit_device_bytes(o, &p, 10000, 50000, 200000);
    CHECK(small > (size_t)(1000 + 5000) * 20 * 8);
    CHECK(big > 9 * small && big < 11 * small);
    p.method = TM_METHOD_TRUNCATED_SVD;
    p.algorithm = TM_SVD_LANCZOS;
    CHECK(tm_fit_device_bytes(o, &p, 1000, 5000, 20000) > 0);
}
