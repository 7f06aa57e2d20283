/* test_model_file.c - api/model_file.h: a real small fit written and read
 * back (NMF and SVD, float64 and float32), the metadata read by the job
 * spec's parser, and files of another version, damaged or inconsistent
 * refused with a message naming what is wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/model_file.h"
#include "api/npz.h"
#include "api/spec.h"
#include "core/alloc.h"
#include "core/fit.h"
#include "harness.h"
#include "testalloc.h"

static const char *const texts[] = {
    "the cat sat on the mat with another cat",
    "dogs and cats are pets; a dog barks",
    "rockets fly to space and orbit the moon",
    "the moon orbits the earth, space is vast",
    "caf\xc3\xa9 au lait and croissants in the caf\xc3\xa9",
    "pets like a warm mat and a quiet caf\xc3\xa9",
};
#define N_TEXTS ((int64_t)(sizeof(texts) / sizeof(texts[0])))

struct built {
    struct tm_job_spec spec;
    struct tm_vectorized v;
    struct tm_fit_result fit;
};

static tm_status build(struct built *b, const char *spec_json)
{
    struct tm_api_error e;
    char err[TM_ERR_SIZE];
    tm_job_spec_init(&b->spec);
    memset(&b->v, 0, sizeof(b->v));
    memset(&b->fit, 0, sizeof(b->fit));
    tm_status st = tm_job_spec_parse(&b->spec, spec_json, strlen(spec_json), NULL, &e);
    if (st) {
        fprintf(stderr, "spec: %s: %s\n", e.field, e.message);
        return st;
    }
    struct tm_doc docs[N_TEXTS];
    for (int64_t i = 0; i < N_TEXTS; i++) {
        docs[i].text = texts[i];
        docs[i].len = strlen(texts[i]);
    }
    b->spec.vectorizer.n_threads = 1;
    st = tm_vectorize(&b->spec.vectorizer, docs, N_TEXTS, NULL, &b->v, err);
    if (!st)
        st = tm_fit(NULL, NULL, &b->v.matrix, &b->spec.model, NULL, &b->fit, err);
    if (st)
        fprintf(stderr, "build: %s\n", err);
    return st;
}

static void built_release(struct built *b)
{
    tm_fit_result_release(&b->fit);
    tm_vectorized_release(&b->v);
    tm_job_spec_release(&b->spec);
}

static tm_status write_model(const struct built *b, int f32, const double *tf,
                             const int64_t *lengths, unsigned char **out, size_t *len, char *err)
{
    struct tm_model_file_parts p = {&b->fit, &b->v, &b->spec, tf, lengths, f32};
    return tm_model_file_write(&p, out, len, err);
}

static void check_same(struct tm_test_ctx *t, const struct built *b, const struct tm_model_file *m,
                       int f32)
{
    int64_t n = b->fit.n_features, k = b->fit.n_topics;
    CHECK_INT_EQ(m->format_version, TM_MODEL_FILE_VERSION);
    CHECK_INT_EQ(m->method, b->fit.method);
    CHECK_INT_EQ(m->n_features, n);
    CHECK_INT_EQ(m->n_topics, k);
    CHECK_INT_EQ(m->n_documents, N_TEXTS);
    CHECK_INT_EQ(m->vocab.n_terms, n);
    CHECK(!memcmp(m->vocab.offsets, b->v.vocab.offsets, (size_t)(n + 1) * sizeof(int64_t)));
    CHECK(!memcmp(m->vocab.pool, b->v.vocab.pool, (size_t)b->v.vocab.offsets[n]));
    CHECK(!memcmp(m->df, b->v.df, (size_t)n * sizeof(int64_t)));
    if (b->v.idf) {
        REQUIRE(m->idf);
        CHECK(!memcmp(m->idf, b->v.idf, (size_t)n * sizeof(double)));
    } else {
        CHECK(m->idf == NULL);
    }
    for (int64_t i = 0; i < n * k; i++) {
        double want = f32 ? (double)(float)b->fit.components.data[i] : b->fit.components.data[i];
        CHECK(m->components.data[i] == want);
    }
    if (b->fit.singular_values) {
        REQUIRE(m->singular_values);
        for (int64_t i = 0; i < k; i++)
            CHECK(m->singular_values[i] == b->fit.singular_values[i]);
    } else {
        CHECK(m->singular_values == NULL);
    }
    /* The parameters came back through the spec parser. */
    const struct tm_model_params *p = &b->spec.model, *q = &m->params;
    CHECK_INT_EQ(q->method, p->method);
    CHECK_INT_EQ(q->n_topics, p->n_topics);
    CHECK_INT_EQ(q->n_top_words, p->n_top_words);
    CHECK_INT_EQ(q->seed, p->seed);
    CHECK_INT_EQ(q->solver, p->solver);
    CHECK_INT_EQ(q->init, p->init);
    CHECK_INT_EQ(q->beta_loss, p->beta_loss);
    CHECK_INT_EQ(q->max_iter, p->max_iter);
    CHECK(q->tol == p->tol && q->alpha_W == p->alpha_W && q->alpha_H == p->alpha_H &&
          q->l1_ratio == p->l1_ratio);
    CHECK_INT_EQ(q->algorithm, p->algorithm);
    CHECK_INT_EQ(q->n_iter, p->n_iter);
    CHECK_INT_EQ(q->n_oversamples, p->n_oversamples);
    /* The vectorizer: its key is byte for byte the one the spec gives. */
    char *key;
    size_t key_len;
    REQUIRE(tm_job_spec_vectorizer_key(&b->spec, &key, &key_len) == TM_OK);
    CHECK(m->vectorizer_key_len == key_len && !memcmp(m->vectorizer_key, key, key_len));
    tm_free(key);
}

TM_TEST(model_file_round_trip)
{
    const char *specs[] = {
        "{\"model\": {\"method\": \"nmf\", \"n_topics\": 2, \"alpha_W\": 0.01, \"l1_ratio\": 0.5,"
        " \"tol\": 1e-5}, \"seed\": 7, \"vectorizer\": {\"stop_words\": [\"the\", \"and\"],"
        " \"min_df\": 1, \"max_df\": 0.9, \"sublinear_tf\": true}}",
        "{\"model\": {\"method\": \"truncated_svd\", \"n_topics\": 2, \"n_iter\": 3},"
        " \"vectorizer\": {\"stop_words\": \"english\", \"norm\": \"l1\"}}",
        "{\"model\": {\"method\": \"truncated_svd\", \"n_topics\": 2, \"algorithm\": \"lanczos\"},"
        " \"vectorizer\": {\"weighting\": \"count\"}}",
        "{\"model\": {\"method\": \"nmf\", \"n_topics\": 3, \"solver\": \"mu\", \"beta_loss\":"
        " \"kullback-leibler\", \"init\": \"random\", \"max_iter\": 50}}",
    };
    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        for (int f32 = 0; f32 <= 1; f32++) {
            struct built b;
            tm_status st = build(&b, specs[s]);
            REQUIRE(st == TM_OK);
            unsigned char *bytes;
            size_t len;
            char err[TM_ERR_SIZE];
            double tf[64];
            int64_t lengths[N_TEXTS];
            for (int i = 0; i < 64; i++)
                tf[i] = i + 1;
            for (int64_t i = 0; i < N_TEXTS; i++)
                lengths[i] = 3 + i;
            st = write_model(&b, f32, b.fit.n_features <= 64 ? tf : NULL, lengths, &bytes, &len,
                             err);
            if (st)
                fprintf(stderr, "write: %s\n", err);
            REQUIRE(st == TM_OK);
            struct tm_model_file m;
            st = tm_model_file_read(bytes, len, &m, err);
            if (st)
                fprintf(stderr, "spec %zu: %s\n", s, err);
            CHECK(st == TM_OK);
            if (!st) {
                check_same(t, &b, &m, f32);
                if (b.fit.n_features <= 64) {
                    REQUIRE(m.term_frequency);
                    CHECK(m.term_frequency[1] == 2);
                }
                REQUIRE(m.doc_lengths);
                CHECK_INT_EQ(m.doc_lengths[5], 8);
                if (s == 0) {
                    CHECK_INT_EQ(m.vectorizer.n_stop_words, 2);
                    CHECK_STR_EQ(m.vectorizer.stop_words[1], "and");
                    CHECK(m.vectorizer.max_df.is_fraction && m.vectorizer.max_df.value == 0.9);
                    CHECK(m.vectorizer.sublinear_tf);
                }
            }
            tm_model_file_release(&m);
            tm_free(bytes);
            built_release(&b);
        }
    }
}

/* Rewrites an archive with member name replaced by (dtype, ndim, shape,
 * data) or, when data is NULL and ndim < 0, left out. */
static unsigned char *rewrite(const unsigned char *bytes, size_t len, const char *name,
                              enum tm_npz_dtype dtype, int ndim, const int64_t *shape,
                              const void *data, size_t *out_len)
{
    struct tm_npz *z;
    char err[TM_ERR_SIZE];
    if (tm_npz_read(bytes, len, 1 << 24, &z, err))
        return NULL;
    struct tm_npz_writer *w;
    if (tm_npz_writer_new(0, 0, &w, err)) {
        tm_npz_free(z);
        return NULL;
    }
    for (int i = 0; i < tm_npz_count(z); i++) {
        const struct tm_npz_member *m = tm_npz_member_at(z, i);
        int replace = !strcmp(m->name, name);
        if (replace && ndim < 0)
            continue;
        enum tm_npz_dtype d = replace ? dtype : m->dtype;
        const void *p = replace ? data : m->data;
        if (d == TM_NPZ_RAW)
            tm_npz_writer_add_raw(w, m->name, p, replace ? (size_t)shape[0] : (size_t)m->count,
                                  err);
        else
            tm_npz_writer_add(w, m->name, d, replace ? ndim : m->ndim, replace ? shape : m->shape,
                              p, err);
    }
    unsigned char *out = NULL;
    tm_npz_writer_finish(w, &out, out_len, err);
    tm_npz_writer_free(w);
    tm_npz_free(z);
    return out;
}

/* The metadata with the first "from" replaced by "to". */
static unsigned char *edit_metadata(const unsigned char *bytes, size_t len, const char *from,
                                    const char *to, size_t *out_len)
{
    struct tm_npz *z;
    char err[TM_ERR_SIZE];
    if (tm_npz_read(bytes, len, 1 << 24, &z, err))
        return NULL;
    const struct tm_npz_member *m = tm_npz_find(z, "metadata.json");
    char meta[8192];
    size_t n = (size_t)m->count < sizeof(meta) - 1 ? (size_t)m->count : sizeof(meta) - 1;
    memcpy(meta, m->data, n);
    meta[n] = '\0';
    tm_npz_free(z);
    char *at = strstr(meta, from);
    if (!at)
        return NULL;
    char edited[8192];
    snprintf(edited, sizeof(edited), "%.*s%s%s", (int)(at - meta), meta, to, at + strlen(from));
    int64_t shape[1] = {(int64_t)strlen(edited)};
    return rewrite(bytes, len, "metadata.json", TM_NPZ_RAW, 1, shape, edited, out_len);
}

TM_TEST(model_file_refusals)
{
    struct built b;
    REQUIRE(build(&b, "{\"model\": {\"method\": \"truncated_svd\", \"n_topics\": 2}}") == TM_OK);
    unsigned char *bytes;
    size_t len;
    char err[TM_ERR_SIZE];
    REQUIRE(write_model(&b, 0, NULL, NULL, &bytes, &len, err) == TM_OK);
    int64_t n = b.fit.n_features, k = b.fit.n_topics;
    struct {
        const char *from, *to, *want;
        tm_status st;
    } meta_cases[] = {
        {"\"format_version\":1", "\"format_version\":2",
         "model: format version 2, this topicd reads 1", TM_EINVAL},
        {"\"format\":\"topicd-model\"", "\"format\":\"other\"", "format is not", TM_EPARSE},
        {"\"min_df\"", "\"ngram_range\":[1,2],\"min_df\"",
         "vectorizer.ngram_range is unknown to this topicd", TM_EPARSE},
        {"\"norm\":0", "\"norm\":9", "vectorizer.norm is missing or out of range", TM_EPARSE},
        {"\"n_iter\":\"auto\"", "\"n_iter\":-4", "model.n_iter", TM_EPARSE},
        {"\"method\":\"truncated_svd\",\"n_documents\"", "\"method\":\"nmf\",\"n_documents\"",
         "model disagrees with method", TM_EPARSE},
        {"\"n_topics\":2,\"components", "\"n_topics\":3,\"components",
         "model disagrees with method or n_topics", TM_EPARSE},
        {"\"n_features\":", "\"n_features\":1e300,\"x\":", "n_features", TM_EPARSE},
        {"{", "[", "model: metadata.json: malformed JSON", TM_EPARSE},
    };
    for (size_t c = 0; c < sizeof(meta_cases) / sizeof(meta_cases[0]); c++) {
        size_t l2;
        unsigned char *b2 = edit_metadata(bytes, len, meta_cases[c].from, meta_cases[c].to, &l2);
        if (!b2)
            fprintf(stderr, "case %zu: '%s' not in the metadata\n", c, meta_cases[c].from);
        REQUIRE(b2);
        struct tm_model_file m;
        tm_status st = tm_model_file_read(b2, l2, &m, err);
        CHECK_INT_EQ(st, meta_cases[c].st);
        if (!strstr(err, meta_cases[c].want))
            fprintf(stderr, "case %zu: %s\n", c, err);
        CHECK(strstr(err, meta_cases[c].want) != NULL);
        tm_model_file_release(&m);
        tm_free(b2);
    }

    /* Members that disagree with the metadata or hold bad values. */
    double *bad = calloc((size_t)(n * k + n + 2), sizeof(double));
    int64_t *offs = calloc((size_t)(n + 1), sizeof(int64_t));
    REQUIRE(bad && offs);
    int64_t s_kn1[2] = {k, n - 1}, s_kn[2] = {k, n}, s_n1[1] = {n + 1}, s_k[1] = {k};
    bad[3] = 0.0 / 0.0;
    /* Term 0 made empty. */
    memcpy(offs, b.v.vocab.offsets, (size_t)(n + 1) * sizeof(int64_t));
    offs[1] = 0;
    double negative[2] = {1.0, -1.0};
    struct {
        const char *name;
        enum tm_npz_dtype dtype;
        int ndim;
        const int64_t *shape;
        const void *data;
        const char *want;
    } cases[] = {
        {"components", TM_NPZ_F64, 2, s_kn1, bad, "model: npz: components: float64 of shape"},
        {"components", TM_NPZ_F32, 2, s_kn, bad, "float32"},
        {"components", TM_NPZ_F64, 2, s_kn, bad, "components[0][3] is not finite"},
        {"vocabulary_offsets", TM_NPZ_I64, 1, s_n1, offs, "vocabulary term 0 is empty"},
        {"singular_values", TM_NPZ_F64, 1, s_k, negative, "singular_values holds a negative"},
        {"singular_values", TM_NPZ_F64, -1, NULL, NULL, "no member singular_values"},
        {"idf", TM_NPZ_F64, -1, NULL, NULL, "no member idf"},
        {"metadata.json", TM_NPZ_RAW, -1, NULL, NULL, "no metadata.json"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t l2;
        unsigned char *b2 = rewrite(bytes, len, cases[c].name, cases[c].dtype, cases[c].ndim,
                                    cases[c].shape, cases[c].data, &l2);
        REQUIRE(b2);
        struct tm_model_file m;
        tm_status st = tm_model_file_read(b2, l2, &m, err);
        CHECK(st == TM_EPARSE);
        if (!strstr(err, cases[c].want))
            fprintf(stderr, "member case %zu: %s\n", c, err);
        CHECK(strstr(err, cases[c].want) != NULL);
        tm_model_file_release(&m);
        tm_free(b2);
    }
    free(bad);
    free(offs);
    /* Not a zip at all, and every prefix of the file. */
    struct tm_model_file m;
    CHECK(tm_model_file_read("hello", 5, &m, err) == TM_EPARSE);
    tm_model_file_release(&m);
    for (size_t l = 0; l < len; l += 7) {
        CHECK(tm_model_file_read(bytes, l, &m, err) != TM_OK);
        tm_model_file_release(&m);
    }
    tm_free(bytes);
    built_release(&b);
}

TM_TEST(model_file_allocation_failures)
{
    struct built b;
    REQUIRE(build(&b, "{\"model\": {\"method\": \"nmf\", \"n_topics\": 2},"
                      " \"vectorizer\": {\"stop_words\": [\"a\"]}}") == TM_OK);
    char err[TM_ERR_SIZE];
    unsigned char *bytes;
    size_t len;
    REQUIRE(write_model(&b, 1, NULL, NULL, &bytes, &len, err) == TM_OK);
    for (long n = 1; n < 400; n++) {
        tm_testalloc_fail_at(n);
        struct tm_model_file m;
        tm_status st = tm_model_file_read(bytes, len, &m, err);
        tm_model_file_release(&m);
        unsigned char *b2 = NULL;
        size_t l2;
        tm_status st2 = write_model(&b, 1, NULL, NULL, &b2, &l2, err);
        tm_free(b2);
        long calls = tm_testalloc_calls();
        tm_testalloc_reset();
        CHECK(st == TM_OK || st == TM_ENOMEM);
        CHECK(st2 == TM_OK || st2 == TM_ENOMEM);
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (n > calls)
            break;
    }
    tm_free(bytes);
    built_release(&b);
}
