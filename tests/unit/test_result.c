/* test_result.c - result JSON from hand-built fit results: fields, exact
 * round trip of numbers, NaN/Inf refused by name, vectorize summary and
 * allocation failures. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "api/json.h"
#include "api/result.h"
#include "api/spec.h"
#include "core/alloc.h"
#include "harness.h"
#include "testalloc.h"

/* A 4-document, 5-term, 2-topic NMF result with a hand-made vocabulary. */
struct fixture {
    struct tm_fit_result r;
    struct tm_vectorized v;
    int64_t top_terms[6];
    double top_weights[6];
    double w[8];
    double trace[3];
    int64_t offsets[6];
    int64_t df[5];
    double idf[5];
    char pool[64];
};

static void fixture_init(struct fixture *f)
{
    static const char *terms[] = {"alpha", "beta", "caf\xc3\xa9", "d\"q", "tab\there"};
    memset(f, 0, sizeof(*f));
    size_t off = 0;
    for (int i = 0; i < 5; i++) {
        f->offsets[i] = (int64_t)off;
        memcpy(f->pool + off, terms[i], strlen(terms[i]));
        off += strlen(terms[i]);
        f->df[i] = i + 1;
        f->idf[i] = 1.0 + i / 3.0;
    }
    f->offsets[5] = (int64_t)off;
    f->v.vocab.n_terms = 5;
    f->v.vocab.pool = f->pool;
    f->v.vocab.offsets = f->offsets;
    f->v.df = f->df;
    f->v.idf = f->idf;
    f->v.matrix.n_rows = 4;
    f->v.matrix.n_cols = 5;
    f->v.seconds_tokenize = 0.25;
    f->v.seconds_vocabulary = 0.125;
    f->v.seconds_weighting = 0.5;

    struct tm_fit_result *r = &f->r;
    r->method = TM_METHOD_NMF;
    r->n_documents = 4;
    r->n_features = 5;
    r->nnz = 9;
    r->n_topics = 2;
    r->n_top_words = 3;
    int64_t tt[6] = {2, 0, 4, 1, -1, -1};
    double tw[6] = {0.1, 1.0 / 3.0, 1e-300, 2.5, 0, 0};
    memcpy(f->top_terms, tt, sizeof(tt));
    memcpy(f->top_weights, tw, sizeof(tw));
    r->top_terms = f->top_terms;
    r->top_weights = f->top_weights;
    for (int i = 0; i < 8; i++)
        f->w[i] = i * 0.1 + 1.0 / 7.0;
    r->document_topics.rows = 4;
    r->document_topics.cols = 2;
    r->document_topics.data = f->w;
    r->reconstruction_error = 43.71;
    r->n_iter = 3;
    r->passes_over_x = 6;
    f->trace[0] = 50.0;
    f->trace[1] = 45.0;
    f->trace[2] = 43.71;
    r->error_trace = f->trace;
    r->n_trace = 3;
    r->device_used = "cpu";
    r->seconds_init = 0.01;
    r->seconds_fit = 0.02;
}

static cJSON *render(struct tm_test_ctx *t, struct fixture *f, int document_topics)
{
    struct tm_job_spec spec;
    struct tm_api_error e;
    char *json;
    size_t len;
    tm_api_init();
    tm_job_spec_init(&spec);
    spec.return_document_topics = document_topics;
    tm_status st = tm_result_render_fit(&f->r, &f->v, &spec, NULL, &json, &len, &e);
    tm_job_spec_release(&spec);
    if (st != TM_OK) {
        tm_test_fail(t, __FILE__, __LINE__, "render: %s %s: %s", tm_status_name(st), e.field,
                     e.message);
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root)
        tm_test_fail(t, __FILE__, __LINE__, "not JSON: %s", json);
    tm_free(json);
    return root;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return it ? it->valuedouble : NAN;
}

TM_TEST(result_fit_fields)
{
    struct fixture f;
    fixture_init(&f);
    cJSON *root = render(t, &f, 0);
    REQUIRE(root);
    CHECK_NEAR(num(root, "n_documents"), 4, 0);
    CHECK_NEAR(num(root, "n_features"), 5, 0);
    CHECK_NEAR(num(root, "nnz"), 9, 0);
    CHECK_NEAR(num(root, "n_topics"), 2, 0);
    CHECK_STR_EQ(cJSON_GetObjectItem(root, "method")->valuestring, "nmf");
    CHECK_STR_EQ(cJSON_GetObjectItem(root, "device")->valuestring, "cpu");
    CHECK_NEAR(num(root, "reconstruction_error"), 43.71, 0);
    CHECK_NEAR(num(root, "n_iter"), 3, 0);
    CHECK_NEAR(num(root, "passes_over_x"), 6, 0);
    CHECK(cJSON_GetObjectItem(root, "singular_values") == NULL);
    CHECK(cJSON_GetObjectItem(root, "document_topics") == NULL);
    CHECK_INT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(root, "error_trace")), 3);

    const cJSON *topics = cJSON_GetObjectItem(root, "topics");
    REQUIRE(cJSON_GetArraySize(topics) == 2);
    const cJSON *w0 = cJSON_GetObjectItem(cJSON_GetArrayItem(topics, 0), "words");
    REQUIRE(cJSON_GetArraySize(w0) == 3);
    CHECK_STR_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(w0, 0), "term")->valuestring,
                 "caf\xc3\xa9");
    CHECK_STR_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(w0, 2), "term")->valuestring, "tab\there");
    CHECK_NEAR(num(cJSON_GetArrayItem(w0, 0), "index"), 2, 0);
    /* Data round-trips exactly. */
    CHECK(num(cJSON_GetArrayItem(w0, 1), "weight") == 1.0 / 3.0);
    CHECK(num(cJSON_GetArrayItem(w0, 2), "weight") == 1e-300);
    /* Padding (-1) ends a topic's list. */
    const cJSON *w1 = cJSON_GetObjectItem(cJSON_GetArrayItem(topics, 1), "words");
    REQUIRE(cJSON_GetArraySize(w1) == 1);
    CHECK_STR_EQ(cJSON_GetObjectItem(cJSON_GetArrayItem(w1, 0), "term")->valuestring, "beta");

    const cJSON *tm = cJSON_GetObjectItem(root, "timings");
    CHECK_NEAR(num(tm, "tokenize"), 0.25, 0);
    CHECK_NEAR(num(tm, "fit"), 0.02, 0);
    CHECK(cJSON_GetObjectItem(tm, "read") == NULL);
    cJSON_Delete(root);
}

TM_TEST(result_fit_svd_and_document_topics)
{
    struct fixture f;
    double sv[2] = {3.5, 1.25}, evr[2] = {0.6, 0.1};
    fixture_init(&f);
    f.r.method = TM_METHOD_TRUNCATED_SVD;
    f.r.singular_values = sv;
    f.r.explained_variance_ratio = evr;
    cJSON *root = render(t, &f, 1);
    REQUIRE(root);
    CHECK_STR_EQ(cJSON_GetObjectItem(root, "method")->valuestring, "truncated_svd");
    const cJSON *s = cJSON_GetObjectItem(root, "singular_values");
    REQUIRE(cJSON_GetArraySize(s) == 2);
    CHECK(cJSON_GetArrayItem(s, 1)->valuedouble == 1.25);
    CHECK(
        cJSON_GetArrayItem(cJSON_GetObjectItem(root, "explained_variance_ratio"), 0)->valuedouble ==
        0.6);
    const cJSON *dt = cJSON_GetObjectItem(root, "document_topics");
    REQUIRE(cJSON_GetArraySize(dt) == 4);
    for (int d = 0; d < 4; d++)
        for (int k = 0; k < 2; k++)
            CHECK(cJSON_GetArrayItem(cJSON_GetArrayItem(dt, d), k)->valuedouble == f.w[d + k * 4]);
    cJSON_Delete(root);

    /* Asked for, but the fit has none. */
    struct tm_job_spec spec;
    struct tm_api_error e;
    char *json = (char *)1;
    size_t len;
    tm_job_spec_init(&spec);
    spec.return_document_topics = 1;
    f.r.document_topics.data = NULL;
    CHECK_INT_EQ(tm_result_render_fit(&f.r, &f.v, &spec, NULL, &json, &len, &e), TM_EINVAL);
    CHECK(json == NULL);
    CHECK_STR_EQ(e.field, "document_topics");
    tm_job_spec_release(&spec);
}

TM_TEST(result_fit_without_vocabulary)
{
    struct fixture f;
    struct tm_api_error e;
    char *json;
    size_t len;
    struct tm_result_timings tt;
    fixture_init(&f);
    tm_result_timings_init(&tt);
    tt.read = 1.5;
    tt.total = 2.0;
    REQUIRE(tm_result_render_fit(&f.r, NULL, NULL, &tt, &json, &len, &e) == TM_OK);
    CHECK(strstr(json, "\"term\"") == NULL);
    CHECK(strstr(json, "{\"index\":2,\"weight\":0.1}") != NULL);
    CHECK(strstr(json, "\"timings\":{\"read\":1.5,\"init\":0.01,\"fit\":0.02,\"total\":2}") !=
          NULL);
    tm_free(json);

    /* A term index outside the vocabulary is a bug upstream: refused. */
    f.top_terms[1] = 5;
    CHECK_INT_EQ(tm_result_render_fit(&f.r, &f.v, NULL, NULL, &json, &len, &e), TM_EINVAL);
    CHECK_STR_EQ(e.field, "topics[0].words[1]");
}

TM_TEST(result_nonfinite_is_an_error)
{
    struct fixture f;
    struct tm_job_spec spec;
    struct tm_api_error e;
    char *json;
    size_t len;
    double sv[2] = {1, NAN}, evr[2] = {0.5, 0.5};
    tm_job_spec_init(&spec);
    spec.return_document_topics = 1;

    fixture_init(&f);
    f.top_weights[1] = INFINITY;
    CHECK_INT_EQ(tm_result_render_fit(&f.r, &f.v, &spec, NULL, &json, &len, &e), TM_ENUMERIC);
    CHECK_STR_EQ(e.field, "topics[0].words[1].weight");
    CHECK(strstr(e.message, "infinite") != NULL);

    fixture_init(&f);
    f.r.singular_values = sv;
    f.r.explained_variance_ratio = evr;
    CHECK_INT_EQ(tm_result_render_fit(&f.r, &f.v, &spec, NULL, &json, &len, &e), TM_ENUMERIC);
    CHECK_STR_EQ(e.field, "singular_values[1]");
    CHECK(strstr(e.message, "NaN") != NULL);

    fixture_init(&f);
    f.r.reconstruction_error = -INFINITY;
    CHECK_INT_EQ(tm_result_render_fit(&f.r, &f.v, &spec, NULL, &json, &len, &e), TM_ENUMERIC);
    CHECK_STR_EQ(e.field, "reconstruction_error");

    fixture_init(&f);
    f.trace[2] = NAN;
    CHECK_INT_EQ(tm_result_render_fit(&f.r, &f.v, &spec, NULL, &json, &len, &e), TM_ENUMERIC);
    CHECK_STR_EQ(e.field, "error_trace[2]");

    fixture_init(&f);
    f.w[5] = NAN; /* document 1, topic 1 */
    CHECK_INT_EQ(tm_result_render_fit(&f.r, &f.v, &spec, NULL, &json, &len, &e), TM_ENUMERIC);
    CHECK_STR_EQ(e.field, "document_topics[1][1]");
    spec.return_document_topics = 0; /* not rendered, not checked */
    CHECK_INT_EQ(tm_result_render_fit(&f.r, &f.v, &spec, NULL, &json, &len, &e), TM_OK);
    tm_free(json);

    fixture_init(&f);
    f.r.seconds_fit = NAN;
    CHECK_INT_EQ(tm_result_render_fit(&f.r, &f.v, &spec, NULL, &json, &len, &e), TM_ENUMERIC);
    CHECK_STR_EQ(e.field, "timings.fit");
    tm_job_spec_release(&spec);
}

TM_TEST(result_vectorize)
{
    struct fixture f;
    struct tm_api_error e;
    char *json;
    size_t len;
    fixture_init(&f);
    tm_api_init();
    REQUIRE(tm_result_render_vectorize(&f.v, 0, NULL, &json, &len, &e) == TM_OK);
    cJSON *root = cJSON_Parse(json);
    REQUIRE(root);
    CHECK_NEAR(num(root, "n_documents"), 4, 0);
    CHECK_NEAR(num(root, "n_features"), 5, 0);
    const cJSON *vocab = cJSON_GetObjectItem(root, "vocabulary");
    REQUIRE(cJSON_GetArraySize(vocab) == 5);
    CHECK_STR_EQ(cJSON_GetArrayItem(vocab, 3)->valuestring, "d\"q");
    CHECK(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "idf"), 1)->valuedouble == 1.0 + 1 / 3.0);
    CHECK_NEAR(
        cJSON_GetArrayItem(cJSON_GetObjectItem(root, "document_frequencies"), 4)->valuedouble, 5,
        0);
    cJSON_Delete(root);
    tm_free(json);

    f.v.idf = NULL; /* count weighting: no idf key at all */
    REQUIRE(tm_result_render_vectorize(&f.v, 1, NULL, &json, &len, &e) == TM_OK);
    CHECK(strstr(json, "idf") == NULL);
    CHECK(strstr(json, "\"vocabulary_head\":[\"alpha\",\"beta\",\"caf\xc3\xa9\",\"d\\\"q\","
                       "\"tab\\there\"]") != NULL);
    tm_free(json);
}

TM_TEST(result_vectorize_summary_head_tail)
{
    /* 25 terms t00..t24: head t00..t09, tail t15..t24. */
    char pool[25 * 3];
    int64_t offsets[26], df[25];
    double idf[25];
    struct tm_vectorized v;
    memset(&v, 0, sizeof(v));
    for (int i = 0; i < 25; i++) {
        char buf[4];
        snprintf(buf, sizeof(buf), "t%02d", i);
        memcpy(pool + 3 * i, buf, 3);
        offsets[i] = 3 * i;
        df[i] = 100 + i;
        idf[i] = i + 0.5;
    }
    offsets[25] = 75;
    v.vocab.n_terms = 25;
    v.vocab.pool = pool;
    v.vocab.offsets = offsets;
    v.df = df;
    v.idf = idf;
    struct tm_api_error e;
    char *json;
    size_t len;
    tm_api_init();
    REQUIRE(tm_result_render_vectorize(&v, 1, NULL, &json, &len, &e) == TM_OK);
    cJSON *root = cJSON_Parse(json);
    REQUIRE(root);
    const cJSON *head = cJSON_GetObjectItem(root, "vocabulary_head");
    const cJSON *tail = cJSON_GetObjectItem(root, "vocabulary_tail");
    REQUIRE(cJSON_GetArraySize(head) == 10 && cJSON_GetArraySize(tail) == 10);
    CHECK_STR_EQ(cJSON_GetArrayItem(head, 9)->valuestring, "t09");
    CHECK_STR_EQ(cJSON_GetArrayItem(tail, 0)->valuestring, "t15");
    CHECK_NEAR(
        cJSON_GetArrayItem(cJSON_GetObjectItem(root, "document_frequencies_tail"), 9)->valuedouble,
        124, 0);
    CHECK_NEAR(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "idf_head"), 2)->valuedouble, 2.5, 0);
    CHECK(cJSON_GetObjectItem(root, "vocabulary") == NULL);
    cJSON_Delete(root);
    tm_free(json);

    /* Fewer than 10 terms: head and tail are the whole vocabulary. */
    v.vocab.n_terms = 3;
    REQUIRE(tm_result_render_vectorize(&v, 1, NULL, &json, &len, &e) == TM_OK);
    CHECK(strstr(json, "\"vocabulary_tail\":[\"t00\",\"t01\",\"t02\"]") != NULL);
    tm_free(json);
    idf[1] = NAN;
    CHECK_INT_EQ(tm_result_render_vectorize(&v, 0, NULL, &json, &len, &e), TM_ENUMERIC);
    CHECK_STR_EQ(e.field, "idf[1]");
}

TM_TEST(result_allocation_failures)
{
    struct fixture f;
    struct tm_job_spec spec;
    struct tm_api_error e;
    tm_api_init();
    fixture_init(&f);
    tm_job_spec_init(&spec);
    spec.return_document_topics = 1;
    for (long n = 1; n < 1000; n++) {
        char *json = NULL;
        size_t len;
        tm_testalloc_fail_at(n);
        tm_status st = tm_result_render_fit(&f.r, &f.v, &spec, NULL, &json, &len, &e);
        tm_free(json);
        tm_testalloc_reset();
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (st == TM_OK)
            break;
        CHECK_INT_EQ(st, TM_ENOMEM);
    }
    for (long n = 1; n < 1000; n++) {
        char *json = NULL;
        size_t len;
        tm_testalloc_fail_at(n);
        tm_status st = tm_result_render_vectorize(&f.v, 0, NULL, &json, &len, &e);
        tm_free(json);
        tm_testalloc_reset();
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (st == TM_OK)
            break;
        CHECK_INT_EQ(st, TM_ENOMEM);
    }
    tm_alloc_set_methods(NULL);
    tm_job_spec_release(&spec);
}

/* A sweep's points and rule (core/sweep.h); unmeasured members left out,
 * a non-finite error refused by name. */
TM_TEST(result_sweep_points_and_rule)
{
    struct fixture f;
    fixture_init(&f);
    struct tm_sweep_point pts[2] = {{1, 3.5, 0.25, NAN, 7, 0.5}, {2, 2.0, NAN, 0.125, 9, 1.5}};
    f.r.sweep = pts;
    f.r.n_sweep = 2;
    f.r.sweep_rule = "knee";
    cJSON *root = render(t, &f, 0);
    REQUIRE(root != NULL);
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(root, "sweep");
    REQUIRE(cJSON_IsArray(sw) && cJSON_GetArraySize(sw) == 2);
    const cJSON *p0 = cJSON_GetArrayItem(sw, 0), *p1 = cJSON_GetArrayItem(sw, 1);
    CHECK_NEAR(num(p0, "n_topics"), 1, 0);
    CHECK_NEAR(num(p0, "reconstruction_error"), 3.5, 0);
    CHECK_NEAR(num(p0, "explained_variance"), 0.25, 0);
    CHECK(!cJSON_GetObjectItemCaseSensitive(p0, "coherence"));
    CHECK(!cJSON_GetObjectItemCaseSensitive(p1, "explained_variance"));
    CHECK_NEAR(num(p1, "coherence"), 0.125, 0);
    CHECK_NEAR(num(p1, "n_iter"), 9, 0);
    CHECK_NEAR(num(p1, "seconds"), 1.5, 0);
    CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "sweep_rule")),
                 "knee");
    cJSON_Delete(root);
    /* No sweep: no members. */
    f.r.sweep = NULL;
    f.r.n_sweep = 0;
    root = render(t, &f, 0);
    REQUIRE(root != NULL);
    CHECK(!cJSON_GetObjectItemCaseSensitive(root, "sweep"));
    CHECK(!cJSON_GetObjectItemCaseSensitive(root, "sweep_rule"));
    cJSON_Delete(root);
    f.r.sweep = pts;
    f.r.n_sweep = 2;
    pts[1].reconstruction_error = NAN;
    char *json = NULL;
    size_t len;
    struct tm_api_error e;
    CHECK_INT_EQ(tm_result_render_fit(&f.r, &f.v, NULL, NULL, &json, &len, &e), TM_ENUMERIC);
    CHECK_STR_EQ(e.field, "sweep[1].reconstruction_error");
    CHECK(json == NULL);
}
