/* test_sweep.c - core/sweep.h: the knee rule, a planted corpus whose true k
 * the sweep finds (SVD and NMF), the SVD's derived k against separate
 * lanczos fits, NMF's cold sweep against separate fits, warm starts,
 * progress and cancellation, allocation failures without leaks. */
#include <math.h>

#include "core/fit.h"
#include "core/numerics/rng.h"
#include "core/sweep.h"
#include "core/text/coherence.h"
#include "harness.h"
#include "planted.h"
#include "testalloc.h"

/* A corpus of m documents over TRUE_K disjoint blocks of n / TRUE_K terms:
 * document i is mostly topic i % TRUE_K, with a second topic at a fifth of
 * the weight, term weights within a block uniform in [1, 2], and a little
 * noise (0.02 * uniform) on one entry in ten outside the planted pattern.
 * Its true number of topics is TRUE_K. */
#define TRUE_K 5
static void planted_topics(struct tm_csr *x, int64_t m, int64_t n, uint64_t seed)
{
    struct tm_rng g;
    tm_rng_init(&g, seed);
    int64_t block = n / TRUE_K, nnz = 0;
    double h[TRUE_K * 200];
    for (int64_t j = 0; j < n && j < 200 * TRUE_K; j++)
        h[j] = 1.0 + tm_rng_uniform(&g);
    tm_csr_init(x, m, n, m * n, NULL);
    for (int64_t i = 0; i < m; i++) {
        int64_t a = i % TRUE_K, b = (i / TRUE_K + a + 1) % TRUE_K;
        double wa = 1.0 + tm_rng_uniform(&g), wb = 0.2 * tm_rng_uniform(&g);
        for (int64_t j = 0; j < n; j++) {
            int64_t t = j / block;
            double v = t == a ? wa * h[j] : t == b ? wb * h[j] : 0.0;
            double u = tm_rng_uniform(&g);
            if (v == 0.0 && u < 0.1)
                v = 0.02 * tm_rng_uniform(&g);
            if (v == 0.0)
                continue;
            x->indices[nnz] = (int32_t)j;
            x->data[nnz++] = v;
        }
        x->indptr[i + 1] = nnz;
    }
}

TM_TEST(sweep_knee_finds_the_elbow_and_refuses_lines)
{
    const int64_t k[] = {2, 4, 6, 8, 10, 12};
    const double elbow[] = {10.0, 6.0, 2.0, 1.8, 1.6, 1.4};
    CHECK_INT_EQ(tm_sweep_knee(k, elbow, 6), 2);
    const double later[] = {10.0, 9.0, 8.0, 7.0, 1.0, 0.9};
    CHECK_INT_EQ(tm_sweep_knee(k, later, 6), 4);
    const double line[] = {12.0, 10.0, 8.0, 6.0, 4.0, 2.0};
    CHECK_INT_EQ(tm_sweep_knee(k, line, 6), -1);
    const double concave[] = {10.0, 9.9, 9.7, 9.0, 7.0, 1.0};
    CHECK_INT_EQ(tm_sweep_knee(k, concave, 6), -1);
    const double flat[] = {3.0, 3.0, 3.0};
    CHECK_INT_EQ(tm_sweep_knee(k, flat, 3), -1);
    CHECK_INT_EQ(tm_sweep_knee(k, elbow, 2), -1);
    /* Uneven spacing counts: k, not the index, is the x axis (by index
     * the knee would be k = 2). */
    const int64_t uneven[] = {1, 2, 3, 30};
    const double drop[] = {10.0, 5.0, 4.0, 1.0};
    CHECK_INT_EQ(tm_sweep_knee(uneven, drop, 4), 2);
}

static tm_status sweep_with(const struct tm_csr *x, const struct tm_model_params *p,
                            const int64_t *ks, int64_t n, int warm, struct tm_fit_result *r,
                            char *err)
{
    struct tm_sweep_params sw = {ks, n, warm, NULL, 0, 0};
    return tm_sweep_fit(NULL, NULL, x, p, &sw, NULL, r, err);
}

TM_TEST(sweep_suggests_the_planted_number_of_topics)
{
    struct tm_csr x;
    planted_topics(&x, 120, 100, 7);
    const int64_t ks[] = {2, 3, 4, 5, 6, 7, 8, 9, 10};
    const enum tm_method methods[] = {TM_METHOD_TRUNCATED_SVD, TM_METHOD_NMF, TM_METHOD_FULL_SVD};
    for (size_t mi = 0; mi < 3; mi++) {
        struct tm_model_params p;
        tm_model_params_init(&p);
        p.method = methods[mi];
        struct tm_fit_result r;
        char err[TM_ERR_SIZE] = "";
        tm_status st = sweep_with(&x, &p, ks, 9, 0, &r, err);
        CHECK_INT_EQ(st, TM_OK);
        if (st != TM_OK) {
            fprintf(stderr, "%s\n", err);
            continue;
        }
        CHECK_INT_EQ(r.n_topics, TRUE_K);
        CHECK_STR_EQ(r.sweep_rule, "knee");
        CHECK_INT_EQ(r.n_sweep, 9);
        /* The result is an ordinary fit of the suggested k. */
        CHECK_INT_EQ(r.components.cols, TRUE_K);
        CHECK_INT_EQ(r.document_topics.cols, TRUE_K);
        CHECK_INT_EQ(r.document_topics.rows, 120);
        CHECK(r.top_terms != NULL);
        CHECK_NEAR(r.reconstruction_error, r.sweep[TRUE_K - 2].reconstruction_error, 1e-12);
        for (int64_t i = 0; i < r.n_sweep; i++) {
            CHECK_INT_EQ(r.sweep[i].n_topics, ks[i]);
            CHECK(isnan(r.sweep[i].coherence));
            CHECK(isnan(r.sweep[i].explained_variance) == (methods[mi] == TM_METHOD_NMF));
            if (i && methods[mi] != TM_METHOD_NMF) /* NMF: local minima */
                CHECK(r.sweep[i].reconstruction_error <=
                      r.sweep[i - 1].reconstruction_error * (1 + 1e-9));
        }
        tm_fit_result_release(&r);
    }
    tm_csr_release(&x);
}

TM_TEST(sweep_svd_derives_each_k_as_separate_lanczos_fits)
{
    struct tm_csr x;
    tm_test_planted(&x, 90, 70, 0.4, 0, 11);
    struct tm_model_params p;
    tm_model_params_init(&p);
    p.method = TM_METHOD_TRUNCATED_SVD;
    p.algorithm = TM_SVD_LANCZOS;
    p.svd_tol = 1e-10;
    const int64_t ks[] = {1, 3, 4, 8, 15};
    struct tm_fit_result r;
    char err[TM_ERR_SIZE] = "";
    REQUIRE(sweep_with(&x, &p, ks, 5, 0, &r, err) == TM_OK);
    /* One factorization: every derived k reports its iterations, and the
     * time goes to the largest k. */
    for (int64_t i = 0; i < 5; i++) {
        struct tm_fit_result one;
        p.n_topics = ks[i];
        REQUIRE(tm_fit(NULL, NULL, &x, &p, NULL, &one, err) == TM_OK);
        CHECK_NEAR(r.sweep[i].reconstruction_error / one.reconstruction_error, 1.0, 1e-8);
        double ev = 0;
        for (int64_t j = 0; j < ks[i]; j++)
            ev += one.explained_variance_ratio[j];
        CHECK_NEAR(r.sweep[i].explained_variance / ev, 1.0, 1e-8);
        CHECK_INT_EQ(r.sweep[i].n_iter, r.n_iter);
        if (ks[i] == r.n_topics) /* the suggested k's arrays are that fit's */
            for (int64_t j = 0; j < ks[i]; j++) {
                CHECK_NEAR(r.singular_values[j] / one.singular_values[j], 1.0, 1e-8);
                CHECK_INT_EQ(r.top_terms[j * r.n_top_words], one.top_terms[j * one.n_top_words]);
            }
        tm_fit_result_release(&one);
    }
    CHECK(r.sweep[4].seconds >= r.sweep[0].seconds);
    tm_fit_result_release(&r);
    tm_csr_release(&x);
}

TM_TEST(sweep_nmf_cold_fits_are_separate_fits)
{
    struct tm_csr x;
    planted_topics(&x, 80, 60, 3);
    struct tm_model_params p;
    tm_model_params_init(&p);
    const int64_t ks[] = {2, 4, 6};
    struct tm_fit_result r, w;
    char err[TM_ERR_SIZE] = "";
    REQUIRE(sweep_with(&x, &p, ks, 3, 0, &r, err) == TM_OK);
    REQUIRE(sweep_with(&x, &p, ks, 3, 1, &w, err) == TM_OK);
    int warm_differs = 0;
    for (int64_t i = 0; i < 3; i++) {
        struct tm_fit_result one;
        p.n_topics = ks[i];
        REQUIRE(tm_fit(NULL, NULL, &x, &p, NULL, &one, err) == TM_OK);
        CHECK_NEAR(r.sweep[i].reconstruction_error, one.reconstruction_error, 1e-12);
        CHECK_INT_EQ(r.sweep[i].n_iter, one.n_iter);
        /* Warm: the first k is a cold fit; later ones start elsewhere, and
         * still reach an error near the cold fit's. */
        CHECK(isfinite(w.sweep[i].reconstruction_error));
        CHECK(w.sweep[i].reconstruction_error <= 1.2 * one.reconstruction_error);
        if (i == 0)
            CHECK_NEAR(w.sweep[i].reconstruction_error, one.reconstruction_error, 1e-12);
        else
            warm_differs |= w.sweep[i].n_iter != one.n_iter ||
                            w.sweep[i].reconstruction_error != one.reconstruction_error;
        tm_fit_result_release(&one);
    }
    CHECK(warm_differs);
    /* The result's timings are the whole sweep's, not the suggested k's. */
    double sum = 0;
    for (int64_t i = 0; i < 3; i++)
        sum += r.sweep[i].seconds;
    CHECK(r.seconds_init + r.seconds_fit >= sum);
    CHECK(r.seconds_init >= 0 && r.seconds_fit >= 0);
    tm_fit_result_release(&w);
    tm_fit_result_release(&r);
    tm_csr_release(&x);
}

TM_TEST(sweep_rejects_bad_lists_naming_the_field)
{
    struct tm_csr x;
    planted_topics(&x, 30, 20, 1);
    struct tm_model_params p;
    tm_model_params_init(&p);
    struct tm_fit_result r;
    char err[TM_ERR_SIZE];
    const int64_t down[] = {4, 3}, zero[] = {0, 2}, big[] = {2, 25};
    CHECK_INT_EQ(sweep_with(&x, &p, down, 2, 0, &r, err), TM_EINVAL);
    CHECK(strstr(err, "model.n_topics") != NULL);
    CHECK_INT_EQ(sweep_with(&x, &p, zero, 2, 0, &r, err), TM_ERANGE);
    CHECK(strstr(err, "model.n_topics[0]") != NULL);
    CHECK_INT_EQ(sweep_with(&x, &p, big, 2, 0, &r, err), TM_ERANGE);
    CHECK(strstr(err, "model.n_topics") != NULL && strstr(err, "25") != NULL);
    CHECK_INT_EQ(sweep_with(&x, &p, big, 0, 0, &r, err), TM_EINVAL);
    int64_t many[TM_SWEEP_MAX + 1];
    for (int i = 0; i <= TM_SWEEP_MAX; i++)
        many[i] = i + 1;
    CHECK_INT_EQ(sweep_with(&x, &p, many, TM_SWEEP_MAX + 1, 0, &r, err), TM_ERANGE);
    CHECK(strstr(err, "at most 50") != NULL);
    tm_fit_result_release(&r);
    tm_csr_release(&x);
}

struct watch {
    int calls, cancel_at, sweeps, backwards;
    double last;
};

static int watch_report(void *ctx, const char *stage, double f)
{
    struct watch *w = ctx;
    w->calls++;
    w->sweeps += !strcmp(stage, "sweep");
    if (f < w->last - 1e-12)
        w->backwards++;
    w->last = f;
    return w->cancel_at && w->calls >= w->cancel_at;
}

TM_TEST(sweep_progress_covers_the_sweep_and_cancels_mid_way)
{
    struct tm_csr x;
    planted_topics(&x, 60, 50, 5);
    struct tm_model_params p;
    tm_model_params_init(&p);
    const int64_t ks[] = {2, 5, 8};
    struct tm_sweep_params sw = {ks, 3, 0, NULL, 0, 0};
    struct tm_fit_result r;
    char err[TM_ERR_SIZE];
    struct watch w = {0};
    struct tm_progress pr = {watch_report, &w};
    REQUIRE(tm_sweep_fit(NULL, NULL, &x, &p, &sw, &pr, &r, err) == TM_OK);
    CHECK_INT_EQ(w.sweeps, 3); /* as each k starts */
    CHECK_INT_EQ(w.backwards, 0);
    /* The last k's share starts at (2 + 5) / 15 of the sweep. */
    CHECK(w.last >= 7.0 / 15.0 && w.last < 1.0);
    tm_fit_result_release(&r);
    int total = w.calls;
    /* Cancelled half way: inside the second or third fit. */
    struct watch c = {0};
    c.cancel_at = total / 2;
    struct tm_progress pc = {watch_report, &c};
    tm_testalloc_fail_at(0);
    CHECK_INT_EQ(tm_sweep_fit(NULL, NULL, &x, &p, &sw, &pc, &r, err), TM_ECANCELLED);
    CHECK(r.sweep == NULL && r.components.data == NULL);
    tm_testalloc_reset();
    CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
    tm_csr_release(&x);
}

TM_TEST(sweep_allocation_failures_leak_nothing)
{
    struct tm_csr x;
    planted_topics(&x, 30, 25, 9);
    const enum tm_method methods[] = {TM_METHOD_NMF, TM_METHOD_TRUNCATED_SVD};
    const int64_t ks[] = {2, 3};
    for (size_t mi = 0; mi < 2; mi++) {
        struct tm_model_params p;
        tm_model_params_init(&p);
        p.method = methods[mi];
        p.max_iter = 5;
        int ok = 0, bad = 0;
        for (long nth = 1; nth < 5000 && !ok; nth++) {
            struct tm_fit_result r;
            tm_testalloc_fail_at(nth);
            tm_status st = sweep_with(&x, &p, ks, 2, mi == 0, &r, NULL);
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

/* With coherence asked for, each point has its k's mean coherence (the
 * first asked of c_v, c_npmi, c_uci, u_mass) and the best one is the
 * suggestion: on documents drawn from 4 disjoint word sets, k = 4. */
TM_TEST(sweep_best_coherence_scores_each_k_and_picks_the_best)
{
    static const char *const words[4][8] = {
        {"cat", "dog", "pet", "fur", "vet", "leash", "bark", "purr"},
        {"car", "road", "engine", "wheel", "fuel", "drive", "brake", "tire"},
        {"stock", "market", "trade", "price", "share", "bond", "fund", "bank"},
        {"rain", "cloud", "storm", "wind", "snow", "sun", "weather", "fog"}};
    enum { N_DOCS = 80, N_WORDS = 12 };
    static char texts[N_DOCS][N_WORDS * 8];
    struct tm_doc docs[N_DOCS];
    struct tm_rng g;
    tm_rng_init(&g, 4);
    for (int d = 0; d < N_DOCS; d++) {
        size_t at = 0;
        for (int w = 0; w < N_WORDS; w++)
            at += (size_t)snprintf(texts[d] + at, sizeof(texts[d]) - at, "%s%s", w ? " " : "",
                                   words[d % 4][tm_rng_below(&g, 8)]);
        docs[d] = (struct tm_doc){texts[d], at};
    }
    struct tm_vectorizer_params vp;
    tm_vectorizer_params_init(&vp);
    struct tm_vectorized v;
    char err[TM_ERR_SIZE] = "";
    REQUIRE(tm_vectorize(&vp, docs, N_DOCS, NULL, &v, err) == TM_OK);
    struct tm_coherence_corpus *cc = NULL;
    REQUIRE(tm_coherence_corpus_new(&vp, docs, N_DOCS, &v.vocab, &cc, err) == TM_OK);
    const int64_t ks[] = {2, 3, 4, 5, 6};
    const unsigned both =
        TM_COHERENCE_BIT(TM_COHERENCE_U_MASS) | TM_COHERENCE_BIT(TM_COHERENCE_C_V);
    struct tm_sweep_params sw = {ks, 5, 0, cc, both, 1};
    struct tm_model_params p;
    tm_model_params_init(&p);
    struct tm_fit_result r;
    tm_status st = tm_sweep_fit(NULL, NULL, &v.matrix, &p, &sw, NULL, &r, err);
    if (st != TM_OK)
        fprintf(stderr, "  %s\n", err);
    REQUIRE(st == TM_OK);
    CHECK_STR_EQ(r.sweep_rule, "best_coherence");
    CHECK_STR_EQ(r.sweep_coherence, "c_v");
    CHECK_INT_EQ(r.n_topics, 4);
    int64_t best = 0;
    for (int64_t i = 0; i < 5; i++) {
        CHECK(isfinite(r.sweep[i].coherence));
        if (r.sweep[i].coherence > r.sweep[best].coherence)
            best = i;
    }
    CHECK_INT_EQ(ks[best], r.n_topics);
    /* A point's score is its k's fit scored alone. */
    double per[TM_COHERENCE_N_MEASURES * 6], mean[TM_COHERENCE_N_MEASURES];
    REQUIRE(tm_coherence_score(cc, TM_COHERENCE_BIT(TM_COHERENCE_C_V), r.top_terms, r.n_topics,
                               r.n_top_words, 1, per, mean, err) == TM_OK);
    CHECK_NEAR(r.sweep[best].coherence, mean[TM_COHERENCE_C_V], 1e-12);
    tm_fit_result_release(&r);
    /* The same for SVD, whose k's topics are the first k of one fit. */
    p.method = TM_METHOD_TRUNCATED_SVD;
    p.algorithm = TM_SVD_LANCZOS;
    REQUIRE(tm_sweep_fit(NULL, NULL, &v.matrix, &p, &sw, NULL, &r, err) == TM_OK);
    CHECK_STR_EQ(r.sweep_rule, "best_coherence");
    for (int64_t i = 0; i < 5; i++)
        CHECK(isfinite(r.sweep[i].coherence));
    tm_fit_result_release(&r);
    tm_coherence_corpus_free(cc);
    tm_vectorized_release(&v);
}
