/* test_transform.c - applying a fitted model to new documents: agreement with
 * scikit-learn's NMF.transform and TruncatedSVD.transform
 * (tests/fixtures/transform/transform.txt, made by gen.py beside it), and
 * the errors. */
#include <stdlib.h>

#include "core/alloc.h"
#include "core/transform.h"
#include "cpu_ops.h"
#include "fixture.h"
#include "harness.h"

struct tcase {
    char name[32], method[32], solver[16], beta[16];
    double alpha_W, l1_ratio, tol;
    int64_t max_iter, k;
    double *ht;       /* n x k column-major (components_ transposed) */
    double *expected; /* m x k row-major */
};

static int read_case(FILE *f, int64_t m, int64_t n, struct tcase *c)
{
    long long mi, k;
    if (fscanf(f, " case %31s %31s %15s %15s %lf %lf %lf %lld %lld components", c->name, c->method,
               c->solver, c->beta, &c->alpha_W, &c->l1_ratio, &c->tol, &mi, &k) != 9)
        return 0;
    c->max_iter = mi;
    c->k = k;
    c->ht = malloc((size_t)(n * k) * sizeof(double));
    c->expected = malloc((size_t)(m * k) * sizeof(double));
    for (int64_t t = 0; t < k; t++)
        for (int64_t j = 0; j < n; j++)
            if (fscanf(f, "%lf", &c->ht[j + t * n]) != 1)
                return 0;
    if (fscanf(f, " expected") != 0)
        return 0;
    for (int64_t i = 0; i < m * k; i++)
        if (fscanf(f, "%lf", &c->expected[i]) != 1)
            return 0;
    return 1;
}

static void case_params(const struct tcase *c, struct tm_model_params *p)
{
    tm_model_params_init(p);
    p->method = strcmp(c->method, "nmf") == 0 ? TM_METHOD_NMF : TM_METHOD_TRUNCATED_SVD;
    p->solver = strcmp(c->solver, "mu") == 0 ? TM_NMF_MU : TM_NMF_CD;
    p->beta_loss = strcmp(c->beta, "kl") == 0 ? TM_BETA_KL : TM_BETA_FROBENIUS;
    p->alpha_W = c->alpha_W;
    p->l1_ratio = c->l1_ratio;
    if (p->method == TM_METHOD_NMF) {
        p->tol = c->tol;
        p->max_iter = c->max_iter;
    }
    p->n_threads = 2;
}

/* max |W - expected| / max |expected|: entries near zero (a KL weight of
 * 1e-293) are compared on the matrix's scale. */
static double max_rel_diff(const struct tm_transform_result *r, const struct tcase *c)
{
    int64_t m = r->document_topics.rows, k = r->document_topics.cols;
    double d = 0, s = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t t = 0; t < k; t++) {
            double e = c->expected[i * k + t], a = r->document_topics.data[i + t * m];
            d = fmax(d, fabs(a - e));
            s = fmax(s, fabs(e));
        }
    return d / s;
}

TM_TEST(transform_matches_scikit_learn)
{
    FILE *f = fopen(tm_test_fixture("transform/transform.txt"), "r");
    REQUIRE(f);
    int ch;
    while ((ch = fgetc(f)) == '#') /* the header comment */
        while ((ch = fgetc(f)) != '\n' && ch != EOF)
            ;
    ungetc(ch, f);
    struct tm_csr x;
    REQUIRE(tm_test_read_dense_csr(f, &x));
    int n_cases = 0;
    struct tcase c;
    while (memset(&c, 0, sizeof(c)), read_case(f, x.n_rows, x.n_cols, &c)) {
        struct tm_model_params p;
        case_params(&c, &p);
        for (int plain = 0; plain < 2; plain++) {
            struct tm_transform_result r;
            char err[256] = "";
            tm_status st =
                tm_transform(tm_test_cpu_ops(plain), NULL, &x, &p, c.ht, c.k, NULL, &r, err);
            if (st != TM_OK)
                tm_test_fail(t, __FILE__, __LINE__, "%s: %s", c.name, err);
            CHECK_INT_EQ(r.document_topics.rows, x.n_rows);
            CHECK_INT_EQ(r.document_topics.cols, c.k);
            double d = st == TM_OK ? max_rel_diff(&r, &c) : 1;
            if (!(d <= 1e-6))
                tm_test_fail(t, __FILE__, __LINE__, "%s: max relative difference %g", c.name, d);
            tm_transform_result_release(&r);
        }
        n_cases++;
        free(c.ht);
        free(c.expected);
    }
    free(c.ht);
    free(c.expected);
    CHECK_INT_EQ(n_cases, 10);
    fclose(f);
    tm_csr_release(&x);
}

/* A small planted problem: documents that are exact mixtures of k
 * non-negative topics. */
static void planted(struct tm_csr *x, double **ht, int64_t m, int64_t n, int64_t k)
{
    *ht = calloc((size_t)(n * k), sizeof(double));
    for (int64_t t = 0; t < k; t++)
        for (int64_t j = 0; j < n; j++)
            (*ht)[j + t * n] = (j % k == t) ? 1.0 + 0.1 * (double)(j % 5) : 0.0;
    tm_csr_init(x, m, n, m * n, NULL);
    int64_t nnz = 0;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double v = 0;
            for (int64_t t = 0; t < k; t++)
                v += (double)((i + t) % 3) * (*ht)[j + t * n];
            if (v > 0) {
                x->indices[nnz] = (int32_t)j;
                x->data[nnz++] = v;
            }
        }
        x->indptr[i + 1] = nnz;
    }
}

/* hals and pgd run cd's transform; each solver recovers the planted weights. */
TM_TEST(transform_recovers_planted_weights)
{
    struct tm_csr x;
    double *ht;
    const int64_t m = 9, n = 24, k = 3;
    planted(&x, &ht, m, n, k);
    enum tm_nmf_solver solvers[] = {TM_NMF_CD, TM_NMF_MU, TM_NMF_HALS, TM_NMF_PGD};
    for (int s = 0; s < 4; s++) {
        struct tm_model_params p;
        tm_model_params_init(&p);
        p.solver = solvers[s];
        p.tol = 1e-12;
        p.max_iter = 5000;
        struct tm_transform_result r;
        REQUIRE(tm_transform(NULL, NULL, &x, &p, ht, k, NULL, &r, NULL) == TM_OK);
        double d = 0;
        for (int64_t i = 0; i < m; i++)
            for (int64_t q = 0; q < k; q++)
                d = fmax(d, fabs(r.document_topics.data[i + q * m] - (double)((i + q) % 3)));
        CHECK(d < (solvers[s] == TM_NMF_MU ? 1e-3 : 1e-9));
        CHECK(r.reconstruction_error < (solvers[s] == TM_NMF_MU ? 1e-2 : 1e-8));
        CHECK(r.n_iter >= 1);
        tm_transform_result_release(&r);
    }
    free(ht);
    tm_csr_release(&x);
}

/* No rows, or rows without a known word: zero weights, no error. */
TM_TEST(transform_empty_documents)
{
    double ht[6] = {1, 0, 2, 0, 1, 1};
    struct tm_model_params p;
    tm_model_params_init(&p);
    for (int64_t m = 0; m < 3; m += 2) {
        struct tm_csr x;
        tm_csr_init(&x, m, 3, 0, NULL);
        for (int meth = 0; meth < 2; meth++) {
            p.method = meth ? TM_METHOD_TRUNCATED_SVD : TM_METHOD_NMF;
            struct tm_transform_result r;
            REQUIRE(tm_transform(NULL, NULL, &x, &p, ht, 2, NULL, &r, NULL) == TM_OK);
            CHECK_INT_EQ(r.document_topics.rows, m);
            CHECK_INT_EQ(r.document_topics.cols, 2);
            for (int64_t i = 0; i < m * 2; i++)
                CHECK(r.document_topics.data[i] == 0.0);
            tm_transform_result_release(&r);
        }
        tm_csr_release(&x);
    }
}

TM_TEST(transform_rejects_bad_input)
{
    struct tm_csr x;
    double *ht;
    planted(&x, &ht, 4, 6, 2);
    struct tm_model_params p;
    tm_model_params_init(&p);
    struct tm_transform_result r;
    char err[256];
    CHECK(tm_transform(NULL, NULL, &x, &p, ht, 0, NULL, &r, err) == TM_ERANGE);
    ht[3] = -1.0; /* an NMF component must be >= 0; an SVD one may be anything */
    CHECK(tm_transform(NULL, NULL, &x, &p, ht, 2, NULL, &r, err) == TM_EINVAL);
    CHECK(strstr(err, "negative") != NULL);
    p.method = TM_METHOD_TRUNCATED_SVD;
    CHECK(tm_transform(NULL, NULL, &x, &p, ht, 2, NULL, &r, err) == TM_OK);
    tm_transform_result_release(&r);
    ht[3] = NAN;
    CHECK(tm_transform(NULL, NULL, &x, &p, ht, 2, NULL, &r, err) == TM_EINVAL);
    CHECK(strstr(err, "NaN") != NULL);
    ht[3] = 0.0;
    p.method = TM_METHOD_NMF;
    x.data[0] = -0.5;
    CHECK(tm_transform(NULL, NULL, &x, &p, ht, 2, NULL, &r, err) == TM_EINVAL);
    x.data[0] = 1.0;
    p.beta_loss = TM_BETA_KL; /* with cd */
    CHECK(tm_transform(NULL, NULL, &x, &p, ht, 2, NULL, &r, err) == TM_EINVAL);
    CHECK(r.document_topics.data == NULL);
    free(ht);
    tm_csr_release(&x);
}

/* float32, a GPU's default element type (the CPU backend honours it too):
 * the same weights to float32's precision, for each method. */
TM_TEST(transform_float32)
{
    struct tm_csr x;
    double *ht;
    const int64_t m = 9, n = 24, k = 3;
    planted(&x, &ht, m, n, k);
    for (int c = 0; c < 4; c++) {
        struct tm_model_params p;
        tm_model_params_init(&p);
        p.method = c == 3 ? TM_METHOD_TRUNCATED_SVD : TM_METHOD_NMF;
        p.solver = c == 0 ? TM_NMF_CD : TM_NMF_MU;
        p.beta_loss = c == 2 ? TM_BETA_KL : TM_BETA_FROBENIUS;
        p.max_iter = 50;
        p.tol = 0;
        struct tm_transform_result a, b;
        REQUIRE(tm_transform(NULL, NULL, &x, &p, ht, k, NULL, &a, NULL) == TM_OK);
        p.dtype = TM_DTYPE_FLOAT32;
        REQUIRE(tm_transform(NULL, NULL, &x, &p, ht, k, NULL, &b, NULL) == TM_OK);
        double d = 0, s = 0;
        for (int64_t i = 0; i < m * k; i++) {
            d = fmax(d, fabs(a.document_topics.data[i] - b.document_topics.data[i]));
            s = fmax(s, fabs(a.document_topics.data[i]));
        }
        if (!(s > 0 && d <= 1e-4 * s))
            tm_test_fail(t, __FILE__, __LINE__, "case %d: %g of %g", c, d, s);
        tm_transform_result_release(&a);
        tm_transform_result_release(&b);
    }
    free(ht);
    tm_csr_release(&x);
}
