/* test_apply.c - api/apply.h: a transform's body (documents or corpus_id,
 * errors naming the field), its answer, and the run: a model written by
 * api/model_file.h and read back, applied to documents through the fitted
 * vectorizer, gives what core's tm_transform gives on the fit's own matrix
 * (scikit-learn's vectorizer.transform of the training documents is its
 * fit_transform), and unknown words are ignored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/apply.h"
#include "api/spec.h"
#include "core/alloc.h"
#include "core/fit.h"
#include "harness.h"
#include "testalloc.h"

static const char *const texts[] = {
    "From: a@b.c\nSubject: pets\n\nthe cat sat on the mat with another cat",
    "From: a@b.c\nSubject: pets\n\ndogs and cats are pets; a dog barks",
    "From: a@b.c\nSubject: space\n\nrockets fly to space and orbit the moon",
    "From: a@b.c\nSubject: space\n\nthe moon orbits the earth, space is vast",
    "From: a@b.c\nSubject: food\n\ncaf\xc3\xa9 au lait and croissants in the caf\xc3\xa9",
    "From: a@b.c\nSubject: food\n\npets like a warm mat and a quiet caf\xc3\xa9",
};
#define N_TEXTS ((int64_t)(sizeof(texts) / sizeof(texts[0])))

static tm_status parse(struct tm_apply_body *b, const char *json, struct tm_api_error *e)
{
    return tm_apply_body_parse(b, json, strlen(json), NULL, e);
}

TM_TEST(apply_body_parse)
{
    struct tm_apply_body b;
    struct tm_api_error e;
    REQUIRE(parse(&b, "{\"documents\":[\"one text\",{\"id\":\"d2\",\"text\":\"two\"}]}", &e) ==
            TM_OK);
    CHECK(b.has_documents);
    CHECK_INT_EQ(b.documents.n_docs, 2);
    CHECK(b.documents.ids && !b.documents.ids[0]);
    CHECK_STR_EQ(b.documents.ids ? b.documents.ids[1] : NULL, "d2");
    CHECK(!b.corpus_id);
    tm_apply_body_release(&b);
    REQUIRE(parse(&b, "{\"corpus_id\":\"c_1\"}", &e) == TM_OK);
    CHECK_STR_EQ(b.corpus_id, "c_1");
    CHECK(!b.has_documents);
    tm_apply_body_release(&b);
    REQUIRE(parse(&b, "{\"documents\":[]}", &e) == TM_OK);
    CHECK_INT_EQ(b.documents.n_docs, 0);
    tm_apply_body_release(&b);

    struct {
        const char *json;
        tm_status st;
        const char *field;
    } bad[] = {
        {"{\"documents\":[\"a\"", TM_EPARSE, ""},
        {"[\"a\"]", TM_EINVAL, ""},
        {"{}", TM_EINVAL, ""},
        {"{\"documents\":[\"a\"],\"corpus_id\":\"c\"}", TM_EINVAL, "documents"},
        {"{\"documents\":[\"a\"],\"model\":{}}", TM_EINVAL, "model"},
        {"{\"documents\":[\"a\"],\"documents\":[\"b\"]}", TM_EINVAL, "documents"},
        {"{\"documents\":\"a\"}", TM_EINVAL, "documents"},
        {"{\"documents\":[\"a\",{\"id\":\"x\"}]}", TM_EINVAL, "documents[1].text"},
        {"{\"documents\":[\"a\",3]}", TM_EINVAL, "documents[1]"},
        {"{\"corpus_id\":\"\"}", TM_EINVAL, "corpus_id"},
        {"{\"corpus_id\":7}", TM_EINVAL, "corpus_id"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tm_api_error_clear(&e);
        tm_status st = parse(&b, bad[i].json, &e);
        if (st != bad[i].st || strcmp(e.field, bad[i].field))
            tm_test_fail(t, __FILE__, __LINE__, "%s: status %d field '%s' (%s)", bad[i].json,
                         (int)st, e.field, e.message);
        CHECK(e.message[0] != '\0');
        tm_apply_body_release(&b);
    }
    /* the inline documents' limits apply */
    struct tm_corpus_limits lim;
    tm_corpus_limits_init(&lim);
    lim.max_document_bytes = 3;
    const char *big = "{\"documents\":[\"ab\",\"abcd\"]}";
    CHECK(tm_apply_body_parse(&b, big, strlen(big), &lim, &e) == TM_ETOOBIG);
    CHECK(strstr(e.field, "documents") != NULL);
    tm_apply_body_release(&b);
}

TM_TEST(apply_render)
{
    double w[6] = {1, 0.5, 0, 2, 0.25, 3}; /* 3 x 2, column-major */
    struct tm_transform_result r = {{3, 2, w}, 0, 0, "cpu", 0};
    char *json;
    size_t len;
    REQUIRE(tm_apply_render(&r, NULL, &json, &len) == TM_OK);
    CHECK_STR_EQ(json, "{\"n_documents\":3,\"n_topics\":2,\"document_topics\":[[1,2],[0.5,0.25],"
                       "[0,3]]}");
    CHECK_INT_EQ(len, strlen(json));
    tm_free(json);
    const char *ids[3] = {"a", NULL, "c\"q"};
    REQUIRE(tm_apply_render(&r, ids, &json, &len) == TM_OK);
    CHECK(strstr(json, ",\"ids\":[\"a\",null,\"c\\\"q\"]}") != NULL);
    tm_free(json);
    w[4] = NAN;
    CHECK(tm_apply_render(&r, NULL, &json, &len) == TM_ENUMERIC);
}

/* A model of the six texts, as a job keeps it: spec, vectorizer, fit,
 * written to .npz bytes and read back. */
static tm_status kept_model(const char *spec_json, struct tm_model_file *m, struct tm_vectorized *v,
                            struct tm_fit_result *fit)
{
    struct tm_job_spec spec;
    struct tm_api_error e;
    char err[TM_ERR_SIZE] = "";
    unsigned char *bytes = NULL;
    size_t len = 0;
    struct tm_doc docs[N_TEXTS];
    for (int64_t i = 0; i < N_TEXTS; i++)
        docs[i] = (struct tm_doc){texts[i], strlen(texts[i])};
    tm_job_spec_init(&spec);
    memset(m, 0, sizeof(*m));
    tm_status st = tm_job_spec_parse(&spec, spec_json, strlen(spec_json), NULL, &e);
    if (!st) {
        spec.vectorizer.n_threads = 1;
        st = tm_vectorize(&spec.vectorizer, docs, N_TEXTS, NULL, v, err);
    }
    if (!st)
        st = tm_fit(NULL, NULL, &v->matrix, &spec.model, NULL, fit, err);
    if (!st) {
        struct tm_model_file_parts p = {.fit = fit, .v = v, .spec = &spec};
        st = tm_model_file_write(&p, &bytes, &len, err);
    }
    if (!st)
        st = tm_model_file_read(bytes, len, m, err);
    if (st)
        fprintf(stderr, "kept_model: %s %s\n", e.message, err);
    tm_free(bytes);
    tm_job_spec_release(&spec);
    return st;
}

TM_TEST(apply_run_matches_the_fit_matrix)
{
    const char *specs[] = {
        "{\"preprocess\":{\"strip\":[\"headers\"]},\"vectorizer\":{\"stop_words\":\"english\"},"
        "\"model\":{\"method\":\"nmf\",\"n_topics\":3,\"solver\":\"cd\",\"tol\":1e-8}}",
        "{\"preprocess\":{\"strip\":[\"headers\"]},\"vectorizer\":{\"sublinear_tf\":true},"
        "\"model\":{\"method\":\"nmf\",\"n_topics\":2,\"solver\":\"mu\","
        "\"beta_loss\":\"kullback-leibler\"}}",
        "{\"preprocess\":{\"strip\":[\"headers\"]},\"vectorizer\":{\"norm\":\"l1\"},"
        "\"model\":{\"method\":\"truncated_svd\",\"n_topics\":2}}",
    };
    for (size_t c = 0; c < sizeof(specs) / sizeof(specs[0]); c++) {
        struct tm_model_file m;
        struct tm_vectorized v;
        struct tm_fit_result fit;
        memset(&v, 0, sizeof(v));
        memset(&fit, 0, sizeof(fit));
        REQUIRE(kept_model(specs[c], &m, &v, &fit) == TM_OK);
        struct tm_doc docs[N_TEXTS + 1];
        for (int64_t i = 0; i < N_TEXTS; i++)
            docs[i] = (struct tm_doc){texts[i], strlen(texts[i])};
        /* only words the model has never seen: a zero row */
        docs[N_TEXTS] = (struct tm_doc){"zebras quantum xylophone", 24};
        struct tm_transform_result got, want;
        char err[TM_ERR_SIZE] = "";
        tm_status st = tm_apply_run(&m, docs, N_TEXTS + 1, NULL, NULL, 2, NULL, &got, err);
        if (st != TM_OK)
            tm_test_fail(t, __FILE__, __LINE__, "spec %zu: %s", c, err);
        REQUIRE(st == TM_OK);
        REQUIRE(tm_transform(NULL, NULL, &v.matrix, &m.params, m.components.data, m.n_topics, NULL,
                             &want, err) == TM_OK);
        int64_t k = m.n_topics, rows = got.document_topics.rows;
        CHECK_INT_EQ(rows, N_TEXTS + 1);
        CHECK_INT_EQ(got.document_topics.cols, k);
        double d = 0, s = 0;
        for (int64_t i = 0; i < N_TEXTS; i++)
            for (int64_t q = 0; q < k; q++) {
                double a = got.document_topics.data[i + q * rows];
                double b = want.document_topics.data[i + q * N_TEXTS];
                d = fmax(d, fabs(a - b));
                s = fmax(s, fabs(b));
            }
        if (!(s > 0 && d <= 1e-12 * s))
            tm_test_fail(t, __FILE__, __LINE__, "spec %zu: max difference %g of %g", c, d, s);
        for (int64_t q = 0; q < k; q++)
            CHECK(got.document_topics.data[N_TEXTS + q * rows] == 0.0);
        tm_transform_result_release(&got);
        tm_transform_result_release(&want);
        tm_model_file_release(&m);
        tm_fit_result_release(&fit);
        tm_vectorized_release(&v);
    }
}

/* Every allocation of a body's parse, a run and its answer failed in turn:
 * TM_ENOMEM (or success), and nothing leaks. */
TM_TEST(apply_allocation_failures)
{
    struct tm_model_file m;
    struct tm_vectorized v;
    struct tm_fit_result fit;
    memset(&v, 0, sizeof(v));
    memset(&fit, 0, sizeof(fit));
    REQUIRE(kept_model("{\"vectorizer\":{\"stop_words\":\"english\"},\"model\":{\"method\":"
                       "\"nmf\",\"n_topics\":2,\"solver\":\"mu\"}}",
                       &m, &v, &fit) == TM_OK);
    const char *json = "{\"documents\":[\"a cat on a mat\",{\"id\":\"x\",\"text\":\"the moon\"}]}";
    for (long n = 1; n < 2000; n++) {
        tm_testalloc_fail_at(n);
        struct tm_apply_body b;
        struct tm_api_error e;
        struct tm_transform_result r;
        char err[TM_ERR_SIZE], *out = NULL;
        size_t len;
        tm_status s1 = tm_apply_body_parse(&b, json, strlen(json), NULL, &e), s2 = TM_OK,
                  s3 = TM_OK;
        if (!s1)
            s2 = tm_apply_run(&m, b.documents.docs, b.documents.n_docs, NULL, NULL, 1, NULL, &r,
                              err);
        if (!s1 && !s2)
            s3 = tm_apply_render(&r, (const char *const *)b.documents.ids, &out, &len);
        tm_free(out);
        if (!s1 && !s2)
            tm_transform_result_release(&r);
        tm_apply_body_release(&b);
        long calls = tm_testalloc_calls();
        tm_testalloc_reset();
        if ((s1 && s1 != TM_ENOMEM) || (s2 && s2 != TM_ENOMEM) || (s3 && s3 != TM_ENOMEM))
            tm_test_fail(t, __FILE__, __LINE__, "allocation %ld: %d %d %d", n, (int)s1, (int)s2,
                         (int)s3);
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (n > calls)
            break;
    }
    tm_model_file_release(&m);
    tm_fit_result_release(&fit);
    tm_vectorized_release(&v);
}
