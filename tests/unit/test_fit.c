/* test_fit.c - tm_fit: validation messages (and that every spec field an
 * error names is one the parser reads), the backend it is handed, result
 * contents, allocation failures without leaks, cancellation. */
#include <ctype.h>
#include <glob.h>
#include <stdlib.h>
#include <unistd.h>

#include "api/json.h"
#include "api/spec.h"
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

static size_t sparse_bytes_refused(enum tm_dtype dtype, int64_t rows, int64_t cols, int64_t nnz,
                                   int64_t k)
{
    (void)dtype, (void)rows, (void)cols, (void)nnz, (void)k;
    return SIZE_MAX;
}

static size_t sparse_bytes_nearly_all(enum tm_dtype dtype, int64_t rows, int64_t cols, int64_t nnz,
                                      int64_t k)
{
    (void)dtype, (void)rows, (void)cols, (void)nnz, (void)k;
    return SIZE_MAX - 16;
}

/* A backend that cannot hold the corpus (sparse_bytes SIZE_MAX) makes the
 * whole estimate SIZE_MAX, never a small number wrapped around. */
TM_TEST(fit_device_bytes_say_when_the_backend_cannot)
{
    struct tm_model_params p;
    tm_model_params_init(&p);
    p.n_topics = 20;
    struct tm_backend_ops ops = *tm_backend_cpu();
    ops.sparse_bytes = sparse_bytes_refused;
    CHECK(tm_fit_device_bytes(&ops, &p, 1000, 5000, 20000) == SIZE_MAX);
    ops.sparse_bytes = sparse_bytes_nearly_all;
    CHECK(tm_fit_device_bytes(&ops, &p, 1000, 5000, 20000) == SIZE_MAX);
    p.method = TM_METHOD_TRUNCATED_SVD;
    CHECK(tm_fit_device_bytes(&ops, &p, 1000, 5000, 20000) == SIZE_MAX);
}

/* ------------------------------------------- field names in error messages */

/*
 * Whether the job spec parser reads the field at path ("model.max_iter",
 * "device"): it is known unless the parser calls it an unknown field. A
 * known field may still be refused for its value (null here) or for the
 * method it goes with; that is not the question.
 */
static int spec_knows(const char *path)
{
    char json[256];
    const char *dot = strchr(path, '.');
    struct tm_job_spec spec;
    struct tm_api_error e;
    if (dot)
        snprintf(json, sizeof(json), "{\"%.*s\":{\"%s\":null}}", (int)(dot - path), path, dot + 1);
    else
        snprintf(json, sizeof(json), "{\"%s\":null}", path);
    tm_api_init();
    tm_job_spec_init(&spec);
    memset(&e, 0, sizeof(e));
    tm_status st = tm_job_spec_parse(&spec, json, strlen(json), NULL, &e);
    tm_job_spec_release(&spec);
    return st == TM_OK || strstr(e.message, "unknown field") == NULL;
}

static const char *const spec_objects[] = {"model", "vectorizer", "preprocess", "return"};

/* The spec paths ("model.tol", ...) written in text, each passed to fn;
 * returns how many. */
static int each_spec_path(const char *text, size_t len, void (*fn)(void *, const char *), void *arg)
{
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        for (size_t o = 0; o < sizeof(spec_objects) / sizeof(spec_objects[0]); o++) {
            size_t ol = strlen(spec_objects[o]);
            if (i + ol + 1 >= len || memcmp(text + i, spec_objects[o], ol) != 0 ||
                text[i + ol] != '.' ||
                (i > 0 &&
                 (isalnum((unsigned char)text[i - 1]) || text[i - 1] == '_' || text[i - 1] == '.')))
                continue;
            size_t end = i + ol + 1;
            while (end < len && (isalnum((unsigned char)text[end]) || text[end] == '_'))
                end++;
            if (end == i + ol + 1 || isdigit((unsigned char)text[i + ol + 1]))
                continue;
            char path[96];
            snprintf(path, sizeof(path), "%.*s", (int)(end - i), text + i);
            fn(arg, path);
            n++;
        }
    }
    return n;
}

struct path_check {
    struct tm_test_ctx *t;
    const char *where;
};

static void check_path(void *arg, const char *path)
{
    struct path_check *c = arg;
    if (!spec_knows(path))
        tm_test_fail(c->t, __FILE__, __LINE__, "%s names %s, which the spec parser does not read",
                     c->where, path);
}

/* The checker itself can fail: it knows a field from one that is not. */
TM_TEST(fit_spec_knows_tells_fields_apart)
{
    CHECK(spec_knows("model.max_iter"));
    CHECK(spec_knows("model.max_dense_bytes")); /* not nmf's, but a field */
    CHECK(spec_knows("vectorizer.min_df"));
    CHECK(spec_knows("preprocess.strip"));
    CHECK(spec_knows("device"));
    CHECK(!spec_knows("model.svd_max_iter")); /* tm_model_params' name, not the spec's */
    CHECK(!spec_knows("model.device"));       /* device is top-level */
    CHECK(!spec_knows("vectorizer.n_threads"));
    /* Two paths in this text, both known; sub.model.x and model.3 are none. */
    static const char text[] = "raise model.max_iter; sub.model.x; model.3; vectorizer.norm";
    struct path_check c = {t, "text"};
    CHECK_INT_EQ(each_spec_path(text, sizeof(text) - 1, check_path, &c), 2);
}

/* Failing case i of tm_fit (validate's branches that name a field, full_svd
 * over its cap, Lanczos out of restarts) into *p; 0 past the last. */
static int failing_params(int i, struct tm_model_params *p)
{
    tm_model_params_init(p);
    p->n_topics = 2;
    switch (i) {
    case 0:
        p->n_topics = 0;
        return 1;
    case 1:
        p->n_top_words = -1;
        return 1;
    case 2:
        p->tol = -1;
        return 1;
    case 3:
        p->max_iter = 0;
        return 1;
    case 4:
        p->alpha_W = -1;
        return 1;
    case 5:
        p->l1_ratio = 2;
        return 1;
    case 6:
        p->beta_loss = TM_BETA_KL;
        return 1;
    case 7:
        p->solver = TM_NMF_PGD;
        p->learning_rate = 0;
        return 1;
    case 8:
        p->method = TM_METHOD_FULL_SVD;
        p->max_dense_bytes = 100;
        return 1;
    }
    p->method = TM_METHOD_TRUNCATED_SVD;
    switch (i) {
    case 9:
        p->n_oversamples = -1;
        return 1;
    case 10:
        p->n_iter = -2;
        return 1;
    case 11:
        p->svd_tol = 0;
        return 1;
    case 12:
        p->svd_max_iter = -1;
        return 1;
    case 13: /* its hint names the cap to raise */
        p->algorithm = TM_SVD_LANCZOS;
        p->n_topics = 10;
        p->svd_max_iter = 1;
        p->svd_tol = 1e-15;
        return 1;
    }
    return 0;
}

/*
 * The errors of tm_fit's failing paths, run: each names the parameter as the
 * job spec spells it, so that the user can find it ("model.max_iter", not
 * tm_model_params' svd_max_iter).
 */
TM_TEST(fit_errors_name_fields_the_spec_has)
{
    struct tm_csr x, wide;
    struct tm_model_params p;
    small_matrix(&x, 12, 9, 1);
    small_matrix(&wide, 200, 150, 2);
    int i, named = 0;
    for (i = 0; failing_params(i, &p); i++) {
        struct tm_fit_result r;
        char err[TM_ERR_SIZE] = "", where[64];
        const struct tm_csr *m = p.algorithm == TM_SVD_LANCZOS ? &wide : &x;
        tm_status st = tm_fit(NULL, NULL, m, &p, NULL, &r, err);
        tm_fit_result_release(&r);
        snprintf(where, sizeof(where), "failing fit %d (\"%.30s\")", i, err);
        if (st == TM_OK) {
            tm_test_fail(t, __FILE__, __LINE__, "%s: did not fail", where);
            continue;
        }
        struct path_check c = {t, where};
        int k = each_spec_path(err, strlen(err), check_path, &c);
        if (k == 0)
            tm_test_fail(t, __FILE__, __LINE__, "%s names no spec field: %s", where, err);
        named += k;
    }
    CHECK_INT_EQ(i, 14);
    CHECK(named >= i);
    tm_csr_release(&wide);
    tm_csr_release(&x);
}

/*
 * Every spec path written in a string literal of core/, the spec parser and
 * server/ (error messages, hints, field names for the API's errors) is one
 * the parser reads: the messages that no test above makes fail are checked
 * too. Reads the sources, so it runs from the source tree (as make test does).
 */
TM_TEST(fit_source_strings_name_fields_the_spec_has)
{
    static const char *const patterns[] = {"core/*.[ch]", "core/*/*.[ch]", "core/*/*/*.[ch]",
                                           "api/spec.c", "server/*.c"};
    if (access("core/fit.c", R_OK) != 0)
        SKIP("not run from the source tree");
    int files = 0, paths = 0;
    for (size_t pi = 0; pi < sizeof(patterns) / sizeof(patterns[0]); pi++) {
        glob_t g;
        if (glob(patterns[pi], 0, NULL, &g) != 0)
            continue;
        for (size_t f = 0; f < g.gl_pathc; f++) {
            FILE *fp = fopen(g.gl_pathv[f], "rb");
            if (!fp)
                continue;
            static char src[1 << 20];
            size_t len = fread(src, 1, sizeof(src) - 1, fp);
            fclose(fp);
            src[len] = '\0';
            files++;
            /* String literals only: code such as spec.model.device is not
             * a message. Comments, character literals and #include lines
             * are skipped. */
            for (size_t i = 0; i < len; i++) {
                if (!strncmp(src + i, "#include", 8)) {
                    while (i < len && src[i] != '\n')
                        i++;
                } else if (src[i] == '/' && i + 1 < len && src[i + 1] == '*') {
                    const char *e = strstr(src + i + 2, "*/");
                    i = e ? (size_t)(e - src) + 1 : len;
                } else if (src[i] == '/' && i + 1 < len && src[i + 1] == '/') {
                    while (i < len && src[i] != '\n')
                        i++;
                } else if (src[i] == '\'') {
                    for (i++; i < len && src[i] != '\''; i++)
                        if (src[i] == '\\')
                            i++;
                } else if (src[i] == '"') {
                    size_t start = ++i;
                    for (; i < len && src[i] != '"'; i++)
                        if (src[i] == '\\')
                            i++;
                    char where[160];
                    snprintf(where, sizeof(where), "a string in %s", g.gl_pathv[f]);
                    struct path_check c = {t, where};
                    paths += each_spec_path(src + start, i - start, check_path, &c);
                }
            }
        }
        globfree(&g);
    }
    CHECK(files > 20);
    CHECK(paths > 50); /* api/spec.c alone names every field */
}
