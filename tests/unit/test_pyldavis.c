/* test_pyldavis.c - api/pyldavis.h on a hand-made model: rows normalised
 * to sum 1, all-zero rows made uniform, the arrays in the model's order,
 * and an SVD model, a model without term frequencies and weights of
 * another shape refused by name. */
#include <cjson/cJSON.h>
#include <string.h>

#include "api/pyldavis.h"
#include "core/alloc.h"
#include "harness.h"

/* 3 terms, 2 topics (topic 1 all zero), 3 documents (document 2 all zero). */
struct fixture {
    struct tm_model_file m;
    double comp[6];
    double tf[3];
    int64_t lengths[3];
    int64_t offsets[4];
    char pool[16];
    double w[6];
};

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->m.method = TM_METHOD_NMF;
    f->m.n_documents = 3;
    f->m.n_features = 3;
    f->m.n_topics = 2;
    static const double comp[6] = {1, 3, 4, 0, 0, 0}; /* column-major 3 x 2 */
    memcpy(f->comp, comp, sizeof(comp));
    f->m.components = (struct tm_dense_owned){3, 2, f->comp};
    f->tf[0] = 5;
    f->tf[1] = 2;
    f->tf[2] = 7;
    f->m.term_frequency = f->tf;
    f->lengths[0] = 4;
    f->lengths[1] = 10;
    f->lengths[2] = 0;
    f->m.doc_lengths = f->lengths;
    memcpy(f->pool,
           "caf\xc3\xa9"
           "dogz",
           9);
    int64_t off[4] = {0, 5, 8, 9};
    memcpy(f->offsets, off, sizeof(off));
    f->m.vocab = (struct tm_vocab){3, f->pool, f->offsets};
    static const double w[6] = {1, 1, 0.5, 1.5, 0, 0}; /* row-major 3 x 2 */
    memcpy(f->w, w, sizeof(w));
}

TM_TEST(pyldavis_render)
{
    struct fixture f;
    fixture_init(&f);
    char *out = NULL;
    size_t len = 0;
    struct tm_api_error e;
    REQUIRE(tm_pyldavis_render(&f.m, f.w, 3, 2, &out, &len, &e) == TM_OK);
    cJSON *j = cJSON_Parse(out);
    REQUIRE(j);
    const cJSON *ttd = cJSON_GetObjectItem(j, "topic_term_dists");
    CHECK_NEAR(cJSON_GetArrayItem(cJSON_GetArrayItem(ttd, 0), 0)->valuedouble, 1.0 / 8, 1e-15);
    CHECK_NEAR(cJSON_GetArrayItem(cJSON_GetArrayItem(ttd, 0), 2)->valuedouble, 0.5, 1e-15);
    /* The empty topic is uniform. */
    CHECK_NEAR(cJSON_GetArrayItem(cJSON_GetArrayItem(ttd, 1), 1)->valuedouble, 1.0 / 3, 1e-15);
    const cJSON *dtd = cJSON_GetObjectItem(j, "doc_topic_dists");
    CHECK_NEAR(cJSON_GetArrayItem(cJSON_GetArrayItem(dtd, 1), 0)->valuedouble, 0.25, 1e-15);
    CHECK_NEAR(cJSON_GetArrayItem(cJSON_GetArrayItem(dtd, 2), 1)->valuedouble, 0.5, 1e-15);
    CHECK_STR_EQ(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "vocab"), 0)->valuestring,
                 "caf\xc3\xa9");
    CHECK_STR_EQ(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "vocab"), 2)->valuestring, "z");
    CHECK(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "term_frequency"), 2)->valuedouble == 7);
    CHECK(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "doc_lengths"), 1)->valuedouble == 10);
    CHECK_INT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "doc_lengths")), 3);
    cJSON_Delete(j);
    tm_free(out);
}

TM_TEST(pyldavis_refusals)
{
    struct fixture f;
    char *out = NULL;
    size_t len = 0;
    struct tm_api_error e;
    fixture_init(&f);
    f.m.method = TM_METHOD_TRUNCATED_SVD;
    CHECK(tm_pyldavis_render(&f.m, f.w, 3, 2, &out, &len, &e) == TM_EINVAL);
    CHECK_STR_EQ(e.field, "method");
    CHECK(strstr(e.message, "negative") != NULL);
    fixture_init(&f);
    f.m.term_frequency = NULL;
    CHECK(tm_pyldavis_render(&f.m, f.w, 3, 2, &out, &len, &e) == TM_ENOTFOUND);
    fixture_init(&f);
    CHECK(tm_pyldavis_render(&f.m, f.w, 2, 3, &out, &len, &e) == TM_EINVAL);
    CHECK_STR_EQ(e.field, "document_topics");
    f.w[3] = -1;
    CHECK(tm_pyldavis_render(&f.m, f.w, 3, 2, &out, &len, &e) == TM_EINVAL);
    CHECK(strstr(e.message, "document 1") != NULL);
    fixture_init(&f);
    f.comp[1] = -0.5;
    CHECK(tm_pyldavis_render(&f.m, f.w, 3, 2, &out, &len, &e) == TM_EINVAL);
    CHECK_STR_EQ(e.field, "components");
    CHECK(out == NULL);
}
