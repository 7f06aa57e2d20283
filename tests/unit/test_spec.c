/* test_spec.c - the job spec parser: defaults, every field, every error with
 * its field path, malformed and truncated JSON, allocation failures. */
#include <stdlib.h>
#include <string.h>

#include "api/json.h"
#include "api/spec.h"
#include "core/alloc.h"
#include "harness.h"
#include "testalloc.h"

static tm_status parse(struct tm_job_spec *spec, const char *json, struct tm_api_error *e)
{
    tm_api_init();
    tm_job_spec_init(spec);
    return tm_job_spec_parse(spec, json, strlen(json), NULL, e);
}

TM_TEST(spec_defaults)
{
    struct tm_job_spec s;
    struct tm_api_error e;
    REQUIRE(parse(&s, "{}", &e) == TM_OK);
    CHECK(!s.has_model);
    CHECK(!s.has_documents);
    CHECK(!s.return_document_topics);
    CHECK(s.corpus_id == NULL);
    CHECK(s.transform_of == NULL);
    CHECK_INT_EQ(s.vectorizer.weighting, TM_WEIGHTING_TFIDF);
    CHECK_INT_EQ(s.vectorizer.lowercase, 1);
    CHECK_INT_EQ(s.vectorizer.min_df.is_fraction, 0);
    CHECK_NEAR(s.vectorizer.min_df.value, 1.0, 0);
    CHECK_INT_EQ(s.vectorizer.max_df.is_fraction, 1);
    CHECK_NEAR(s.vectorizer.max_df.value, 1.0, 0);
    CHECK_INT_EQ(s.vectorizer.ngram_min, 1);
    CHECK_INT_EQ(s.vectorizer.ngram_max, 1);
    CHECK_INT_EQ(s.model.device, TM_DEVICE_AUTO);
    CHECK_INT_EQ(s.model.n_top_words, 10);
    CHECK_NEAR(s.model.tol, 1e-4, 0);
    CHECK_NEAR(s.model.svd_tol, 1e-6, 0);
    tm_job_spec_release(&s);
}

TM_TEST(spec_full)
{
    const char *json =
        "{\"preprocess\":{\"strip\":[\"headers\",\"footers\",\"quotes\"]},"
        "\"vectorizer\":{\"weighting\":\"tfidf\",\"lowercase\":false,\"strip_accents\":\"unicode\","
        "\"stop_words\":[\"the\",\"caf\\u00e9\"],\"min_df\":2,\"max_df\":0.5,\"max_features\":1000,"
        "\"binary\":true,\"use_idf\":false,\"smooth_idf\":false,\"sublinear_tf\":true,\"norm\":"
        "null,\"ngram_range\":[2,3]},"
        "\"model\":{\"method\":\"nmf\",\"n_topics\":20,\"n_top_words\":7,\"solver\":\"mu\","
        "\"beta_loss\":\"kullback-leibler\",\"init\":\"nndsvdar\",\"tol\":1e-3,\"max_iter\":50,"
        "\"alpha_W\":0.1,\"alpha_H\":\"same\",\"l1_ratio\":0.5,\"dtype\":\"float32\"},"
        "\"return\":{\"document_topics\":true},\"seed\":18446744073709551615,\"device\":\"cpu\","
        "\"documents\":[\"one doc\",{\"id\":\"d2\",\"text\":\"two\"},{\"id\":7,\"text\":\"3\"}]}";
    struct tm_job_spec s;
    struct tm_api_error e;
    tm_status st = parse(&s, json, &e);
    if (st != TM_OK)
        fprintf(stderr, "  %s: %s\n", e.field, e.message);
    REQUIRE(st == TM_OK);
    CHECK_INT_EQ(s.vectorizer.strip, TM_STRIP_HEADERS | TM_STRIP_FOOTERS | TM_STRIP_QUOTES);
    CHECK_INT_EQ(s.vectorizer.lowercase, 0);
    CHECK_INT_EQ(s.vectorizer.strip_accents, TM_ACCENTS_UNICODE);
    CHECK_INT_EQ(s.vectorizer.english_stop_words, 0);
    REQUIRE(s.vectorizer.n_stop_words == 2);
    CHECK_STR_EQ(s.vectorizer.stop_words[0], "the");
    CHECK_STR_EQ(s.vectorizer.stop_words[1], "caf\xc3\xa9");
    CHECK_INT_EQ(s.vectorizer.min_df.is_fraction, 0);
    CHECK_NEAR(s.vectorizer.min_df.value, 2, 0);
    CHECK_INT_EQ(s.vectorizer.max_df.is_fraction, 1);
    CHECK_NEAR(s.vectorizer.max_df.value, 0.5, 0);
    CHECK_INT_EQ(s.vectorizer.max_features, 1000);
    CHECK_INT_EQ(s.vectorizer.binary, 1);
    CHECK_INT_EQ(s.vectorizer.use_idf, 0);
    CHECK_INT_EQ(s.vectorizer.smooth_idf, 0);
    CHECK_INT_EQ(s.vectorizer.sublinear_tf, 1);
    CHECK_INT_EQ(s.vectorizer.norm, TM_NORM_NONE);
    CHECK_INT_EQ(s.vectorizer.ngram_min, 2);
    CHECK_INT_EQ(s.vectorizer.ngram_max, 3);
    CHECK(s.has_model);
    CHECK_INT_EQ(s.model.method, TM_METHOD_NMF);
    CHECK_INT_EQ(s.model.n_topics, 20);
    CHECK_INT_EQ(s.model.n_top_words, 7);
    CHECK_INT_EQ(s.model.solver, TM_NMF_MU);
    CHECK_INT_EQ(s.model.beta_loss, TM_BETA_KL);
    CHECK_INT_EQ(s.model.init, TM_NMF_INIT_NNDSVDAR);
    CHECK_NEAR(s.model.tol, 1e-3, 0);
    CHECK_INT_EQ(s.model.max_iter, 50);
    CHECK_NEAR(s.model.alpha_W, 0.1, 0);
    CHECK(s.model.alpha_H < 0);
    CHECK_NEAR(s.model.l1_ratio, 0.5, 0);
    CHECK_INT_EQ(s.model.dtype, TM_DTYPE_FLOAT32);
    CHECK(s.return_document_topics);
    CHECK(s.model.seed == UINT64_MAX);
    CHECK_INT_EQ(s.model.device, TM_DEVICE_CPU);
    CHECK(s.has_documents);
    REQUIRE(s.documents.n_docs == 3);
    CHECK(s.documents.docs[0].len == 7 && !memcmp(s.documents.docs[0].text, "one doc", 7));
    REQUIRE(s.documents.ids != NULL);
    CHECK(s.documents.ids[0] == NULL);
    CHECK_STR_EQ(s.documents.ids[1], "d2");
    CHECK_STR_EQ(s.documents.ids[2], "7");
    tm_job_spec_release(&s);
}

TM_TEST(spec_svd_params)
{
    struct tm_job_spec s;
    struct tm_api_error e;
    REQUIRE(parse(&s,
                  "{\"model\":{\"method\":\"truncated_svd\",\"n_topics\":3,\"algorithm\":"
                  "\"randomized\",\"n_oversamples\":5,\"n_iter\":2,"
                  "\"power_iteration_normalizer\":\"QR\"}}",
                  &e) == TM_OK);
    CHECK_INT_EQ(s.model.method, TM_METHOD_TRUNCATED_SVD);
    CHECK_INT_EQ(s.model.n_oversamples, 5);
    CHECK_INT_EQ(s.model.n_iter, 2);
    CHECK_INT_EQ(s.model.power_iteration_normalizer, TM_PIN_QR);
    tm_job_spec_release(&s);

    REQUIRE(parse(&s, "{\"model\":{\"method\":\"truncated_svd\",\"n_iter\":\"auto\"}}", &e) ==
            TM_OK);
    CHECK_INT_EQ(s.model.n_iter, -1);
    tm_job_spec_release(&s);

    REQUIRE(parse(&s,
                  "{\"model\":{\"method\":\"truncated_svd\",\"algorithm\":\"lanczos\","
                  "\"tol\":1e-9,\"max_iter\":300}}",
                  &e) == TM_OK);
    CHECK_INT_EQ(s.model.algorithm, TM_SVD_LANCZOS);
    CHECK_NEAR(s.model.svd_tol, 1e-9, 0);
    CHECK_INT_EQ(s.model.svd_max_iter, 300);
    CHECK_NEAR(s.model.tol, 1e-4, 0); /* NMF's untouched */
    tm_job_spec_release(&s);

    REQUIRE(parse(&s, "{\"model\":{\"method\":\"full_svd\",\"max_dense_bytes\":1000}}", &e) ==
            TM_OK);
    CHECK_INT_EQ(s.model.method, TM_METHOD_FULL_SVD);
    CHECK_INT_EQ(s.model.max_dense_bytes, 1000);
    tm_job_spec_release(&s);

    REQUIRE(parse(&s,
                  "{\"model\":{\"solver\":\"pgd\",\"learning_rate\":0.5,"
                  "\"learning_rate_decay\":0.1,\"penalty\":10,\"penalty_mu\":0}}",
                  &e) == TM_OK);
    CHECK_INT_EQ(s.model.solver, TM_NMF_PGD);
    CHECK_NEAR(s.model.learning_rate, 0.5, 0);
    CHECK_NEAR(s.model.penalty, 10, 0);
    tm_job_spec_release(&s);

    REQUIRE(parse(&s, "{\"model\":{\"solver\":\"cd\",\"shuffle\":true,\"init\":null}}", &e) ==
            TM_OK);
    CHECK_INT_EQ(s.model.shuffle, 1);
    CHECK_INT_EQ(s.model.init, TM_NMF_INIT_AUTO);
    tm_job_spec_release(&s);

    /* minibatch takes MiniBatchNMF's parameters, KL and null for None */
    REQUIRE(parse(&s,
                  "{\"model\":{\"solver\":\"minibatch\",\"batch_size\":256,"
                  "\"forget_factor\":0.5,\"fresh_restarts\":true,\"fresh_restarts_max_iter\":5,"
                  "\"max_no_improvement\":null,\"transform_max_iter\":50,"
                  "\"beta_loss\":\"kullback-leibler\",\"alpha_W\":0.1}}",
                  &e) == TM_OK);
    CHECK_INT_EQ(s.model.solver, TM_NMF_MINIBATCH);
    CHECK_INT_EQ(s.model.batch_size, 256);
    CHECK(s.model.forget_factor == 0.5);
    CHECK_INT_EQ(s.model.fresh_restarts, 1);
    CHECK_INT_EQ(s.model.fresh_restarts_max_iter, 5);
    CHECK_INT_EQ(s.model.max_no_improvement, 0);
    CHECK_INT_EQ(s.model.transform_max_iter, 50);
    CHECK_INT_EQ(s.model.beta_loss, TM_BETA_KL);
    tm_job_spec_release(&s);

    /* hals takes cd's parameters, shuffle and regularization included */
    REQUIRE(parse(&s,
                  "{\"model\":{\"solver\":\"hals\",\"shuffle\":true,\"alpha_W\":0.1,"
                  "\"l1_ratio\":0.5,\"max_iter\":50}}",
                  &e) == TM_OK);
    CHECK_INT_EQ(s.model.solver, TM_NMF_HALS);
    CHECK_INT_EQ(s.model.shuffle, 1);
    CHECK_NEAR(s.model.alpha_W, 0.1, 0);
    CHECK_INT_EQ(s.model.max_iter, 50);
    tm_job_spec_release(&s);
}

/* 1 and 1.0 differ, as int and float do in scikit-learn. */
TM_TEST(spec_df_int_vs_float)
{
    static const struct {
        const char *json;
        int min_fraction;
        double min;
        int max_fraction;
        double max;
    } cases[] = {
        {"{\"vectorizer\":{\"min_df\":1}}", 0, 1, 1, 1},
        {"{\"vectorizer\":{\"min_df\":1.0}}", 1, 1, 1, 1},
        {"{\"vectorizer\":{\"min_df\":0}}", 0, 0, 1, 1},
        {"{\"vectorizer\":{\"min_df\":0.0,\"max_df\":1}}", 1, 0, 0, 1},
        {"{\"vectorizer\":{\"max_df\":5}}", 0, 1, 0, 5},
        {"{\"vectorizer\":{\"max_df\":5E-1}}", 0, 1, 1, 0.5},
        {"{\"vectorizer\":{\"max_df\":1e0}}", 0, 1, 1, 1},
        {"{\"vectorizer\":{\"min_df\":0.25,\"max_df\":0.75}}", 1, 0.25, 1, 0.75},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tm_job_spec s;
        struct tm_api_error e;
        tm_status st = parse(&s, cases[i].json, &e);
        CHECK_INT_EQ(st, TM_OK);
        CHECK_INT_EQ(s.vectorizer.min_df.is_fraction, cases[i].min_fraction);
        CHECK_NEAR(s.vectorizer.min_df.value, cases[i].min, 0);
        CHECK_INT_EQ(s.vectorizer.max_df.is_fraction, cases[i].max_fraction);
        CHECK_NEAR(s.vectorizer.max_df.value, cases[i].max, 0);
        tm_job_spec_release(&s);
    }
}

/* Each invalid spec, the status, field and a piece of the message. */
static const struct {
    const char *json;
    tm_status status;
    const char *field;
    const char *message;
} bad[] = {
    {"[]", TM_EINVAL, "", "must be a JSON object"},
    {"{\"foo\":1}", TM_EINVAL, "foo", "unknown field"},
    {"{\"seed\":1,\"seed\":2}", TM_EINVAL, "seed", "duplicate field"},
    {"{\"preprocess\":[]}", TM_EINVAL, "preprocess", "must be an object"},
    {"{\"preprocess\":{\"strip\":\"headers\"}}", TM_EINVAL, "preprocess.strip", "array"},
    {"{\"preprocess\":{\"strip\":[\"headers\",\"sigs\"]}}", TM_EINVAL, "preprocess.strip[1]",
     "must be one of"},
    {"{\"preprocess\":{\"remove\":[]}}", TM_EINVAL, "preprocess.remove", "unknown field"},
    {"{\"vectorizer\":{\"min_df\":-1}}", TM_ERANGE, "vectorizer.min_df", "must be an integer >= 0"},
    {"{\"vectorizer\":{\"min_df\":1.5}}", TM_ERANGE, "vectorizer.min_df", "[0.0, 1.0]"},
    {"{\"vectorizer\":{\"min_df\":-0.5}}", TM_ERANGE, "vectorizer.min_df", "[0.0, 1.0]"},
    {"{\"vectorizer\":{\"min_df\":\"1\"}}", TM_EINVAL, "vectorizer.min_df", "document count"},
    {"{\"vectorizer\":{\"max_df\":0}}", TM_ERANGE, "vectorizer.max_df", "must be an integer >= 1"},
    {"{\"vectorizer\":{\"max_df\":1e400}}", TM_ERANGE, "vectorizer.max_df", "[0.0, 1.0]"},
    {"{\"vectorizer\":{\"min_df\":5,\"max_df\":2}}", TM_EINVAL, "vectorizer.max_df",
     "max_df corresponds to < documents than min_df"},
    {"{\"vectorizer\":{\"min_df\":0.5,\"max_df\":0.2}}", TM_EINVAL, "vectorizer.max_df",
     "< documents than min_df"},
    {"{\"vectorizer\":{\"max_features\":0}}", TM_ERANGE, "vectorizer.max_features", ">= 1"},
    {"{\"vectorizer\":{\"max_features\":10.0}}", TM_EINVAL, "vectorizer.max_features",
     "must be an integer"},
    {"{\"vectorizer\":{\"lowercase\":1}}", TM_EINVAL, "vectorizer.lowercase", "true or false"},
    {"{\"vectorizer\":{\"ngram_range\":[2,1]}}", TM_EINVAL, "vectorizer.ngram_range",
     "min_n must be <= max_n"},
    {"{\"vectorizer\":{\"ngram_range\":[0,2]}}", TM_ERANGE, "vectorizer.ngram_range[0]",
     "integer in [1, 5]"},
    {"{\"vectorizer\":{\"ngram_range\":[1,6]}}", TM_ERANGE, "vectorizer.ngram_range[1]",
     "integer in [1, 5]"},
    {"{\"vectorizer\":{\"ngram_range\":[1,2.5]}}", TM_EINVAL, "vectorizer.ngram_range[1]",
     "integer"},
    {"{\"vectorizer\":{\"ngram_range\":[1]}}", TM_EINVAL, "vectorizer.ngram_range", "two integers"},
    {"{\"vectorizer\":{\"ngram_range\":2}}", TM_EINVAL, "vectorizer.ngram_range", "two integers"},
    {"{\"vectorizer\":{\"ngram_range\":[1,2,3]}}", TM_EINVAL, "vectorizer.ngram_range",
     "two integers"},
    {"{\"vectorizer\":{\"weighting\":\"bm25\"}}", TM_EINVAL, "vectorizer.weighting",
     "\"tfidf\", \"count\""},
    {"{\"vectorizer\":{\"strip_accents\":\"latin\"}}", TM_EINVAL, "vectorizer.strip_accents",
     "null, \"ascii\", \"unicode\""},
    {"{\"vectorizer\":{\"stop_words\":\"french\"}}", TM_EINVAL, "vectorizer.stop_words",
     "\"english\""},
    {"{\"vectorizer\":{\"stop_words\":[\"a\",1]}}", TM_EINVAL, "vectorizer.stop_words[1]",
     "must be a string"},
    {"{\"vectorizer\":{\"stop_words\":[\"a\\u0000b\"]}}", TM_EINVAL, "vectorizer.stop_words[0]",
     "\\u0000"},
    {"{\"vectorizer\":{\"norm\":\"l3\"}}", TM_EINVAL, "vectorizer.norm", "must be one of"},
    {"{\"vectorizer\":{\"weighting\":\"count\",\"norm\":\"l2\"}}", TM_EINVAL, "vectorizer.norm",
     "only used with weighting \"tfidf\""},
    {"{\"vectorizer\":{\"use_idf\":true,\"weighting\":\"count\"}}", TM_EINVAL, "vectorizer.use_idf",
     "only used with weighting"},
    {"{\"vectorizer\":{\"token_pattern\":\"x\"}}", TM_EINVAL, "vectorizer.token_pattern",
     "unknown field"},
    {"{\"model\":5}", TM_EINVAL, "model", "must be an object"},
    {"{\"model\":{\"method\":\"lda\"}}", TM_EINVAL, "model.method",
     "\"nmf\", \"truncated_svd\", \"full_svd\""},
    {"{\"model\":{\"n_topics\":0}}", TM_ERANGE, "model.n_topics", "must be an integer >= 1"},
    {"{\"model\":{\"n_topics\":-3}}", TM_ERANGE, "model.n_topics", "must be an integer >= 1"},
    {"{\"model\":{\"n_topics\":2.5}}", TM_EINVAL, "model.n_topics", "must be an integer >= 1"},
    {"{\"model\":{\"n_topics\":5.0}}", TM_EINVAL, "model.n_topics", "must be an integer"},
    {"{\"model\":{\"n_topics\":\"5\"}}", TM_EINVAL, "model.n_topics", "must be an integer"},
    {"{\"model\":{\"n_topics\":99999999999999999999}}", TM_ERANGE, "model.n_topics", "integer"},
    {"{\"model\":{\"n_top_words\":0}}", TM_ERANGE, "model.n_top_words", "integer in [1,"},
    {"{\"model\":{\"n_components\":5}}", TM_EINVAL, "model.n_components", "unknown field"},
    {"{\"model\":{\"seed\":5}}", TM_EINVAL, "model.seed", "top-level"},
    {"{\"model\":{\"method\":\"truncated_svd\",\"solver\":\"cd\"}}", TM_EINVAL, "model.solver",
     "not a parameter of truncated_svd"},
    {"{\"model\":{\"solver\":\"cd\",\"method\":\"truncated_svd\"}}", TM_EINVAL, "model.solver",
     "not a parameter of truncated_svd"},
    {"{\"model\":{\"method\":\"nmf\",\"algorithm\":\"lanczos\"}}", TM_EINVAL, "model.algorithm",
     "not a parameter of nmf"},
    {"{\"model\":{\"method\":\"full_svd\",\"tol\":1e-3}}", TM_EINVAL, "model.tol",
     "not a parameter of full_svd"},
    {"{\"model\":{\"method\":\"nmf\",\"max_dense_bytes\":5}}", TM_EINVAL, "model.max_dense_bytes",
     "not a parameter of nmf"},
    {"{\"model\":{\"method\":\"truncated_svd\",\"tol\":1e-3}}", TM_EINVAL, "model.tol",
     "only used with algorithm \"lanczos\""},
    {"{\"model\":{\"method\":\"truncated_svd\",\"algorithm\":\"lanczos\",\"n_iter\":3}}", TM_EINVAL,
     "model.n_iter", "only used with algorithm \"randomized\""},
    {"{\"model\":{\"method\":\"truncated_svd\",\"n_iter\":\"many\"}}", TM_EINVAL, "model.n_iter",
     "\"auto\" or an integer"},
    {"{\"model\":{\"method\":\"truncated_svd\",\"n_iter\":-1}}", TM_ERANGE, "model.n_iter", ">= 0"},
    {"{\"model\":{\"method\":\"truncated_svd\",\"power_iteration_normalizer\":\"qr\"}}", TM_EINVAL,
     "model.power_iteration_normalizer", "\"QR\""},
    {"{\"model\":{\"method\":\"truncated_svd\",\"algorithm\":\"arpack\"}}", TM_EINVAL,
     "model.algorithm", "must be one of"},
    {"{\"model\":{\"beta_loss\":\"kullback-leibler\"}}", TM_EINVAL, "model.beta_loss",
     "needs solver \"mu\""},
    {"{\"model\":{\"solver\":\"pgd\",\"beta_loss\":\"kullback-leibler\"}}", TM_EINVAL,
     "model.beta_loss", "needs solver \"mu\""},
    {"{\"model\":{\"batch_size\":64}}", TM_EINVAL, "model.batch_size",
     "only used with solver \"minibatch\""},
    {"{\"model\":{\"solver\":\"hals\",\"forget_factor\":0.5}}", TM_EINVAL, "model.forget_factor",
     "only used with solver \"minibatch\""},
    {"{\"model\":{\"solver\":\"minibatch\",\"batch_size\":0}}", TM_ERANGE, "model.batch_size",
     ">= 1"},
    {"{\"model\":{\"solver\":\"minibatch\",\"batch_size\":1.5}}", TM_EINVAL, "model.batch_size",
     "an integer"},
    {"{\"model\":{\"solver\":\"minibatch\",\"forget_factor\":1.5}}", TM_ERANGE,
     "model.forget_factor", ""},
    {"{\"model\":{\"solver\":\"minibatch\",\"fresh_restarts\":1}}", TM_EINVAL,
     "model.fresh_restarts", "true or false"},
    {"{\"model\":{\"solver\":\"minibatch\",\"max_no_improvement\":0}}", TM_ERANGE,
     "model.max_no_improvement", ">= 1"},
    {"{\"model\":{\"solver\":\"minibatch\",\"shuffle\":true}}", TM_EINVAL, "model.shuffle",
     "only used with solver"},
    {"{\"model\":{\"beta_loss\":\"itakura-saito\",\"solver\":\"mu\"}}", TM_EINVAL,
     "model.beta_loss", "must be one of"},
    {"{\"model\":{\"solver\":\"als\"}}", TM_EINVAL, "model.solver",
     "\"cd\", \"mu\", \"pgd\", \"hals\""},
    {"{\"model\":{\"solver\":\"HALS\"}}", TM_EINVAL, "model.solver", "must be one of"},
    {"{\"model\":{\"solver\":1}}", TM_EINVAL, "model.solver", "must be one of"},
    {"{\"model\":{\"solver\":\"mu\",\"shuffle\":false}}", TM_EINVAL, "model.shuffle",
     "only used with solver \"cd\" or \"hals\""},
    {"{\"model\":{\"solver\":\"hals\",\"beta_loss\":\"kullback-leibler\"}}", TM_EINVAL,
     "model.beta_loss", "solver \"hals\" handles only"},
    {"{\"model\":{\"solver\":\"hals\",\"learning_rate\":0.1}}", TM_EINVAL, "model.learning_rate",
     "only used with solver \"pgd\""},
    {"{\"model\":{\"solver\":\"hals\",\"max_iter\":0}}", TM_ERANGE, "model.max_iter", ">= 1"},
    {"{\"model\":{\"learning_rate\":0.1}}", TM_EINVAL, "model.learning_rate",
     "only used with solver \"pgd\""},
    {"{\"model\":{\"solver\":\"pgd\",\"alpha_W\":0.1}}", TM_EINVAL, "model.alpha_W",
     "only used with solver \"cd\", \"hals\" or \"mu\""},
    {"{\"model\":{\"solver\":\"pgd\",\"learning_rate\":0}}", TM_ERANGE, "model.learning_rate",
     "must be a number > 0"},
    {"{\"model\":{\"init\":\"svd\"}}", TM_EINVAL, "model.init", "null, \"nndsvd\""},
    {"{\"model\":{\"tol\":-1e-4}}", TM_ERANGE, "model.tol", ">= 0"},
    {"{\"model\":{\"tol\":\"small\"}}", TM_EINVAL, "model.tol", "must be a number"},
    {"{\"model\":{\"max_iter\":0}}", TM_ERANGE, "model.max_iter", ">= 1"},
    {"{\"model\":{\"alpha_W\":-1}}", TM_ERANGE, "model.alpha_W", ">= 0"},
    {"{\"model\":{\"alpha_H\":\"different\"}}", TM_EINVAL, "model.alpha_H", "\"same\""},
    {"{\"model\":{\"l1_ratio\":1.5}}", TM_ERANGE, "model.l1_ratio", "[0, 1]"},
    {"{\"model\":{\"shuffle\":\"yes\"}}", TM_EINVAL, "model.shuffle", "true or false"},
    {"{\"model\":{\"dtype\":\"float16\"}}", TM_EINVAL, "model.dtype", "\"float32\""},
    {"{\"return\":{\"document_topics\":1}}", TM_EINVAL, "return.document_topics", "true or false"},
    {"{\"return\":{\"components\":true}}", TM_EINVAL, "return.components", "unknown field"},
    {"{\"seed\":-1}", TM_ERANGE, "seed", "[0, 18446744073709551615]"},
    {"{\"seed\":18446744073709551616}", TM_ERANGE, "seed", "[0, 18446744073709551615]"},
    {"{\"seed\":1.0}", TM_EINVAL, "seed", "integer"},
    {"{\"seed\":null}", TM_EINVAL, "seed", "integer"},
    {"{\"device\":\"tpu\"}", TM_EINVAL, "device", "\"auto\", \"cpu\", \"gpu\""},
    {"{\"corpus_id\":\"\"}", TM_EINVAL, "corpus_id", "non-empty string"},
    {"{\"corpus_id\":5}", TM_EINVAL, "corpus_id", "string"},
    {"{\"corpus_id\":\"c1\",\"documents\":[\"a\"]}", TM_EINVAL, "documents", "not both"},
    {"{\"transform_of\":\"\"}", TM_EINVAL, "transform_of", "non-empty string"},
    {"{\"transform_of\":[\"j_1\"]}", TM_EINVAL, "transform_of", "string"},
    {"{\"documents\":\"a b c\"}", TM_EINVAL, "documents", "must be an array"},
    {"{\"documents\":[\"a\",5]}", TM_EINVAL, "documents[1]", "must be a string or an object"},
    {"{\"documents\":[{\"id\":\"x\"}]}", TM_EINVAL, "documents[0].text", "missing"},
    {"{\"documents\":[{\"text\":5}]}", TM_EINVAL, "documents[0].text", "must be a string"},
    {"{\"documents\":[{\"text\":\"a\",\"id\":true}]}", TM_EINVAL, "documents[0].id",
     "string or an integer"},
    {"{\"documents\":[\"ok\",\"a\\u0000b\"]}", TM_EINVAL, "documents[1]", "\\u0000"},
    {"{\"documents\":[{\"text\":\"a\\u0000\"}]}", TM_EINVAL, "documents[0].text", "\\u0000"},
};

TM_TEST(spec_errors_name_the_field)
{
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tm_job_spec s;
        struct tm_api_error e;
        tm_status st = parse(&s, bad[i].json, &e);
        if (st != bad[i].status || strcmp(e.field, bad[i].field) != 0 ||
            !strstr(e.message, bad[i].message)) {
            tm_test_fail(t, __FILE__, __LINE__, "%s: got %s \"%s: %s\", want %s \"%s: ...%s...\"",
                         bad[i].json, tm_status_name(st), e.field, e.message,
                         tm_status_name(bad[i].status), bad[i].field, bad[i].message);
        }
        CHECK(e.offset >= 0 || !bad[i].field[0]);
        tm_job_spec_release(&s);
    }
}

TM_TEST(spec_error_offsets)
{
    struct tm_job_spec s;
    struct tm_api_error e;
    const char *json = "{\n  \"model\": {\n    \"n_topics\": 0\n  }\n}";
    REQUIRE(parse(&s, json, &e) == TM_ERANGE);
    CHECK_STR_EQ(e.field, "model.n_topics");
    CHECK_INT_EQ(e.offset, strstr(json, "0\n") - json);
    CHECK_INT_EQ(e.line, 3);
    CHECK_INT_EQ(e.column, 17);
    char buf[512];
    CHECK_STR_EQ(tm_api_error_format(&e, buf, sizeof(buf)),
                 "model.n_topics: must be an integer >= 1 (line 3, column 17)");
    tm_job_spec_release(&s);
}

static const char full_spec[] =
    "{\"preprocess\":{\"strip\":[\"headers\",\"quotes\"]},"
    "\"vectorizer\":{\"stop_words\":[\"x\",\"y\\n\"],\"min_df\":0.01,\"max_df\":0.95,"
    "\"norm\":\"l1\"},"
    "\"model\":{\"method\":\"nmf\",\"n_topics\":5,\"solver\":\"cd\",\"alpha_H\":\"same\"},"
    "\"return\":{\"document_topics\":true},\"seed\":42,\"device\":\"auto\","
    "\"documents\":[\"alpha beta\",{\"id\":\"two\",\"text\":\"gamma \\u00e9\"}]}";

/* Every proper prefix of a valid spec is malformed: no crash, no leak. */
TM_TEST(spec_truncated_at_every_offset)
{
    size_t len = strlen(full_spec);
    for (size_t n = 0; n < len; n++) {
        struct tm_job_spec s;
        struct tm_api_error e;
        tm_api_init();
        tm_job_spec_init(&s);
        char *copy = malloc(n ? n : 1); /* exact size: ASan catches over-reads */
        memcpy(copy, full_spec, n);
        tm_status st = tm_job_spec_parse(&s, copy, n, NULL, &e);
        if (st != TM_EPARSE)
            tm_test_fail(t, __FILE__, __LINE__, "prefix %zu: %s", n, tm_status_name(st));
        tm_job_spec_release(&s);
        free(copy);
    }
    struct tm_job_spec s;
    struct tm_api_error e;
    CHECK_INT_EQ(parse(&s, full_spec, &e), TM_OK);
    tm_job_spec_release(&s);
}

/* Every byte of a valid spec flipped to a few troublesome values. */
TM_TEST(spec_mutated_bytes)
{
    static const char repl[] = {'\0', '"', '\\', '{', ']', '9', '.', 'e', '-', ',', ' ', '\xff'};
    size_t len = strlen(full_spec);
    char *copy = malloc(len);
    for (size_t i = 0; i < len; i++) {
        for (size_t r = 0; r < sizeof(repl); r++) {
            struct tm_job_spec s;
            struct tm_api_error e;
            memcpy(copy, full_spec, len);
            copy[i] = repl[r];
            tm_api_init();
            tm_job_spec_init(&s);
            tm_status st = tm_job_spec_parse(&s, copy, len, NULL, &e);
            CHECK(st == TM_OK || st == TM_EPARSE || st == TM_EINVAL || st == TM_ERANGE);
            tm_job_spec_release(&s);
        }
    }
    free(copy);
}

TM_TEST(spec_allocation_failures)
{
    size_t len = strlen(full_spec);
    tm_api_init();
    for (long n = 1;; n++) {
        struct tm_job_spec s;
        struct tm_api_error e;
        tm_testalloc_fail_at(n);
        tm_job_spec_init(&s);
        tm_status st = tm_job_spec_parse(&s, full_spec, len, NULL, &e);
        tm_job_spec_release(&s);
        tm_testalloc_reset();
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (st == TM_OK)
            break;
        if (st != TM_ENOMEM) {
            tm_test_fail(t, __FILE__, __LINE__, "allocation %ld: %s", n, tm_status_name(st));
            break;
        }
        if (n > 10000) {
            tm_test_fail(t, __FILE__, __LINE__, "never succeeded");
            break;
        }
    }
    tm_alloc_set_methods(NULL);
}

TM_TEST(spec_vectorizer_key)
{
    struct tm_job_spec a, b, c;
    struct tm_api_error e;
    char *ka, *kb, *kc;
    size_t la, lb, lc;
    REQUIRE(parse(&a, "{\"vectorizer\":{\"min_df\":1},\"model\":{\"n_topics\":3}}", &e) == TM_OK);
    REQUIRE(parse(&b, "{\"seed\":5,\"vectorizer\":{}}", &e) == TM_OK);
    REQUIRE(parse(&c, "{\"vectorizer\":{\"min_df\":1.0}}", &e) == TM_OK);
    REQUIRE(tm_job_spec_vectorizer_key(&a, &ka, &la) == TM_OK);
    REQUIRE(tm_job_spec_vectorizer_key(&b, &kb, &lb) == TM_OK);
    REQUIRE(tm_job_spec_vectorizer_key(&c, &kc, &lc) == TM_OK);
    CHECK_STR_EQ(ka, kb); /* defaults spelled out or not, model aside: same matrix */
    CHECK(strcmp(ka, kc) != 0);
    CHECK(la == strlen(ka));
    /* ngram_range: [1, 1] is the default's key; any other range its own */
    const char *ranges[] = {"[1,1]", "[1,2]", "[2,2]", "[1,3]"};
    char *kr[4];
    for (int i = 0; i < 4; i++) {
        char json[128];
        struct tm_job_spec r;
        size_t lr;
        snprintf(json, sizeof(json), "{\"vectorizer\":{\"ngram_range\":%s}}", ranges[i]);
        REQUIRE(parse(&r, json, &e) == TM_OK);
        REQUIRE(tm_job_spec_vectorizer_key(&r, &kr[i], &lr) == TM_OK);
        tm_job_spec_release(&r);
    }
    CHECK_STR_EQ(kr[0], kb);
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            CHECK(strcmp(kr[i], kr[j]) != 0);
    for (int i = 0; i < 4; i++)
        tm_free(kr[i]);
    tm_free(ka);
    tm_free(kb);
    tm_free(kc);
    tm_job_spec_release(&a);
    tm_job_spec_release(&b);
    tm_job_spec_release(&c);
}

TM_TEST(spec_error_body)
{
    struct tm_job_spec s;
    struct tm_api_error e;
    REQUIRE(parse(&s, "{\"vectorizer\":{\"min_df\":-1}}", &e) == TM_ERANGE);
    char *body;
    size_t len;
    REQUIRE(tm_api_error_render(&e, &body, &len) == TM_OK);
    CHECK_STR_EQ(body, "{\"error\":{\"code\":\"invalid_spec\",\"message\":\"must be an integer "
                       ">= 0\",\"field\":\"vectorizer.min_df\",\"offset\":24,\"line\":1,"
                       "\"column\":25}}");
    CHECK(len == strlen(body));
    CHECK_INT_EQ(tm_api_error_http_status(e.status), 422);
    tm_free(body);
    tm_job_spec_release(&s);

    REQUIRE(parse(&s, "{\"a\" \"q\"}", &e) == TM_EPARSE);
    REQUIRE(tm_api_error_render(&e, &body, &len) == TM_OK);
    CHECK(strstr(body, "\"code\":\"malformed_input\"") != NULL);
    CHECK(strstr(body, "\"field\"") == NULL);
    CHECK_INT_EQ(tm_api_error_http_status(e.status), 400);
    tm_free(body);
    tm_job_spec_release(&s);
}

TM_TEST(spec_names)
{
    CHECK_STR_EQ(tm_method_name(TM_METHOD_NMF), "nmf");
    CHECK_STR_EQ(tm_method_name(TM_METHOD_TRUNCATED_SVD), "truncated_svd");
    CHECK_STR_EQ(tm_method_name(TM_METHOD_FULL_SVD), "full_svd");
    CHECK_STR_EQ(tm_device_name(TM_DEVICE_GPU), "gpu");
}

/* model.n_topics as a list or a range (core/sweep.h). */
TM_TEST(spec_n_topics_sweeps)
{
    struct tm_job_spec s;
    struct tm_api_error e;
    REQUIRE(parse(&s, "{\"model\":{\"n_topics\":[20,5,10,40]}}", &e) == TM_OK);
    CHECK_INT_EQ(s.n_sweep, 4);
    CHECK_INT_EQ(s.sweep_topics[0], 5);
    CHECK_INT_EQ(s.sweep_topics[3], 40);
    CHECK_INT_EQ(s.model.n_topics, 40); /* the largest, for every size check */
    CHECK_INT_EQ(s.sweep_warm_start, 0);
    tm_job_spec_release(&s);
    REQUIRE(parse(&s, "{\"model\":{\"n_topics\":{\"start\":2,\"stop\":50,\"step\":4}}}", &e) ==
            TM_OK);
    CHECK_INT_EQ(s.n_sweep, 12); /* 2, 6, ..., 46: stop excluded */
    CHECK_INT_EQ(s.sweep_topics[11], 46);
    tm_job_spec_release(&s);
    REQUIRE(parse(&s, "{\"model\":{\"n_topics\":{\"stop\":9,\"start\":8},\"warm_start\":true}}",
                  &e) == TM_OK);
    CHECK_INT_EQ(s.n_sweep, 1);
    CHECK_INT_EQ(s.sweep_topics[0], 8);
    CHECK_INT_EQ(s.sweep_warm_start, 1);
    tm_job_spec_release(&s);
    REQUIRE(parse(&s, "{\"model\":{\"n_topics\":7}}", &e) == TM_OK);
    CHECK_INT_EQ(s.n_sweep, 0);
    CHECK_INT_EQ(s.model.n_topics, 7);
    tm_job_spec_release(&s);

    static const struct {
        const char *json, *field, *message;
        tm_status status;
    } cases[] = {
        {"{\"model\":{\"n_topics\":[]}}", "model.n_topics", "empty", TM_EINVAL},
        {"{\"model\":{\"n_topics\":[3,0]}}", "model.n_topics[1]", ">= 1", TM_ERANGE},
        {"{\"model\":{\"n_topics\":[3,2.5]}}", "model.n_topics[1]", "integer", TM_EINVAL},
        {"{\"model\":{\"n_topics\":[3,\"4\"]}}", "model.n_topics[1]", "integer", TM_EINVAL},
        {"{\"model\":{\"n_topics\":[3,5,3]}}", "model.n_topics", "listed twice", TM_EINVAL},
        {"{\"model\":{\"n_topics\":{\"start\":5,\"stop\":5}}}", "model.n_topics", "empty",
         TM_EINVAL},
        {"{\"model\":{\"n_topics\":{\"start\":0,\"stop\":5}}}", "model.n_topics.start", ">= 1",
         TM_ERANGE},
        {"{\"model\":{\"n_topics\":{\"start\":2,\"stop\":9,\"step\":0}}}", "model.n_topics.step",
         ">= 1", TM_ERANGE},
        {"{\"model\":{\"n_topics\":{\"start\":2,\"stop\":9,\"by\":2}}}", "model.n_topics.by",
         "unknown field", TM_EINVAL},
        {"{\"model\":{\"n_topics\":{\"start\":2}}}", "model.n_topics.stop", "required", TM_EINVAL},
        {"{\"model\":{\"n_topics\":{\"start\":1,\"stop\":200}}}", "model.n_topics",
         "at most 50 values of k, this range has 199", TM_ERANGE},
        {"{\"model\":{\"n_topics\":\"10\"}}", "model.n_topics", "a range", TM_EINVAL},
        {"{\"model\":{\"n_topics\":5,\"warm_start\":true}}", "model.warm_start", "only for a sweep",
         TM_EINVAL},
        {"{\"model\":{\"method\":\"truncated_svd\",\"n_topics\":[2,3],\"warm_start\":true}}",
         "model.warm_start", "not a parameter of truncated_svd", TM_EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tm_status st = parse(&s, cases[i].json, &e);
        if (st != cases[i].status || strcmp(e.field, cases[i].field) != 0 ||
            !strstr(e.message, cases[i].message))
            tm_test_fail(t, __FILE__, __LINE__, "%s: got %s \"%s: %s\"", cases[i].json,
                         tm_status_name(st), e.field, e.message);
        CHECK(e.offset >= 0);
        tm_job_spec_release(&s);
    }
    /* 200 values of k in a list. */
    char json[2048];
    size_t at = (size_t)snprintf(json, sizeof(json), "{\"model\":{\"n_topics\":[");
    for (int k = 1; k <= 200; k++)
        at += (size_t)snprintf(json + at, sizeof(json) - at, "%s%d", k > 1 ? "," : "", k);
    snprintf(json + at, sizeof(json) - at, "]}}");
    CHECK_INT_EQ(parse(&s, json, &e), TM_ERANGE);
    CHECK_STR_EQ(e.field, "model.n_topics");
    CHECK(strstr(e.message, "at most 50 values of k, got 200") != NULL);
    tm_job_spec_release(&s);
}

/* "transform_of": the route's transform jobs (POST /v1/jobs refuses it). */
TM_TEST(spec_transform_of)
{
    struct tm_job_spec s;
    struct tm_api_error e;
    REQUIRE(parse(&s, "{\"transform_of\":\"j_1\",\"corpus_id\":\"c_2\"}", &e) == TM_OK);
    CHECK_STR_EQ(s.transform_of ? s.transform_of : "", "j_1");
    CHECK_STR_EQ(s.corpus_id ? s.corpus_id : "", "c_2");
    CHECK(!s.has_model);
    tm_job_spec_release(&s);
    CHECK(s.transform_of == NULL);
}
