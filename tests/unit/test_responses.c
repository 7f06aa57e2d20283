/* test_responses.c - the HTTP bodies of api/responses.h: the document-topics
 * page (exact bytes, ids, escaping, empty pages, NaN/Inf refused,
 * allocation failures). */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "api/json.h"
#include "api/responses.h"
#include "core/alloc.h"
#include "harness.h"
#include "testalloc.h"

/* Documents 1 and 2 of 4, 2 topics, row-major as the store returns them. */
static const double page_w[4] = {0.5, 0.25, 1.0 / 3.0, 0};

TM_TEST(responses_document_topics_bytes)
{
    char *json;
    size_t len;
    REQUIRE(tm_render_document_topics(4, 2, 1, 2, 2, page_w, NULL, &json, &len) == TM_OK);
    const char *want = "{\"n_documents\":4,\"n_topics\":2,\"offset\":1,\"limit\":2,\"documents\":["
                       "{\"index\":1,\"id\":null,\"weights\":[0.5,0.25]},"
                       "{\"index\":2,\"id\":null,\"weights\":[0.3333333333333333,0]}]}";
    CHECK_STR_EQ(json, want);
    CHECK_INT_EQ(len, strlen(want));
    tm_free(json);

    /* Past the end: an empty page that still says where it is. */
    REQUIRE(tm_render_document_topics(4, 2, 10, 5, 0, NULL, NULL, &json, &len) == TM_OK);
    CHECK_STR_EQ(json, "{\"n_documents\":4,\"n_topics\":2,\"offset\":10,\"limit\":5,"
                       "\"documents\":[]}");
    tm_free(json);
}

TM_TEST(responses_document_topics_ids)
{
    char *json;
    size_t len;
    const char *ids[2] = {"c\"\n", NULL};
    tm_api_init();
    REQUIRE(tm_render_document_topics(4, 2, 1, 2, 2, page_w, ids, &json, &len) == TM_OK);
    cJSON *root = cJSON_Parse(json);
    REQUIRE(root);
    const cJSON *docs = cJSON_GetObjectItem(root, "documents");
    REQUIRE(cJSON_GetArraySize(docs) == 2);
    const cJSON *d0 = cJSON_GetArrayItem(docs, 0), *d1 = cJSON_GetArrayItem(docs, 1);
    CHECK_INT_EQ(cJSON_GetObjectItem(d0, "index")->valueint, 1);
    CHECK_STR_EQ(cJSON_GetObjectItem(d0, "id")->valuestring, "c\"\n");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(d1, "id")));
    /* Every weight reads back exactly. */
    CHECK(cJSON_GetArrayItem(cJSON_GetObjectItem(d1, "weights"), 0)->valuedouble == page_w[2]);
    cJSON_Delete(root);
    tm_free(json);
}

TM_TEST(responses_document_topics_nonfinite)
{
    double w[4] = {0.5, 0.25, 0.125, INFINITY};
    char *json = (char *)"untouched";
    size_t len;
    CHECK_INT_EQ(tm_render_document_topics(4, 2, 0, 2, 2, w, NULL, &json, &len), TM_ENUMERIC);
    CHECK(json == NULL);
    w[3] = NAN;
    CHECK_INT_EQ(tm_render_document_topics(4, 2, 0, 2, 2, w, NULL, &json, &len), TM_ENUMERIC);
    /* A page that stops before the bad row renders. */
    CHECK_INT_EQ(tm_render_document_topics(4, 2, 0, 2, 1, w, NULL, &json, &len), TM_OK);
    tm_free(json);
}

TM_TEST(responses_document_topics_allocation_failures)
{
    const char *ids[2] = {"a", "b"};
    long failed = 0;
    for (long n = 1; n < 100; n++) {
        char *json = NULL;
        size_t len;
        tm_testalloc_fail_at(n);
        tm_status st = tm_render_document_topics(4, 2, 1, 2, 2, page_w, ids, &json, &len);
        tm_free(json);
        tm_testalloc_reset();
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (st == TM_OK)
            break;
        CHECK_INT_EQ(st, TM_ENOMEM);
        failed++;
    }
    CHECK(failed > 0);
    tm_alloc_set_methods(NULL);
}
