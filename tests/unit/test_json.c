/* test_json.c - api/json.h: cJSON's tree matched to the scanner's value
 * table (offsets, flags, number tokens), a BOM, items from elsewhere, and
 * allocation failures. The grammar itself: test_json_scan.c. */
#include <string.h>

#include <cjson/cJSON.h>

#include "api/json.h"
#include "core/alloc.h"
#include "harness.h"
#include "testalloc.h"

TM_TEST(json_positions)
{
    static const char j[] = "{\"n\": 1.0, \"i\": -7, \"s\": \"a\\u0000b\",\n"
                            " \"list\": [true, {\"deep\": 12e3}], \"nil\": null}";
    struct tm_json_doc doc;
    struct tm_api_error e;
    tm_api_init();
    REQUIRE(tm_json_parse(&doc, j, strlen(j), &e) == TM_OK);
    CHECK_INT_EQ(doc.n_values, 9);
    CHECK(doc.text == j && doc.len == strlen(j));
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(doc.root, "n");
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(doc.root, "i");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(doc.root, "s");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc.root, "list");
    const cJSON *deep = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, 1), "deep");
    const cJSON *nil = cJSON_GetObjectItemCaseSensitive(doc.root, "nil");
    REQUIRE(n && i && s && list && deep && nil);

    CHECK_INT_EQ(tm_json_offset(&doc, doc.root), 0);
    CHECK_INT_EQ(tm_json_offset(&doc, n), strstr(j, "1.0") - j);
    CHECK_INT_EQ(tm_json_offset(&doc, s), strstr(j, "\"a") - j);
    CHECK_INT_EQ(tm_json_offset(&doc, list), strstr(j, "[true") - j);
    CHECK_INT_EQ(tm_json_offset(&doc, deep), strstr(j, "12e3") - j);
    CHECK_INT_EQ(tm_json_offset(&doc, nil), strstr(j, "null") - j);

    /* 1.0 and -7 are told apart by their tokens, which cJSON loses. */
    CHECK_INT_EQ(tm_json_flags(&doc, n), TM_JSON_NUM_FRACTION);
    CHECK_INT_EQ(tm_json_flags(&doc, i), 0);
    CHECK_INT_EQ(tm_json_flags(&doc, deep), TM_JSON_NUM_FRACTION);
    CHECK_INT_EQ(tm_json_flags(&doc, s), TM_JSON_STR_NUL);
    size_t len = 0;
    const char *tok = tm_json_number_text(&doc, n, &len);
    CHECK(tok && len == 3 && !memcmp(tok, "1.0", 3));
    tok = tm_json_number_text(&doc, i, &len);
    CHECK(tok && len == 2 && !memcmp(tok, "-7", 2));
    CHECK(tm_json_number_text(&doc, s, &len) == NULL);
    CHECK(tm_json_number_text(&doc, list, &len) == NULL);

    /* Items of another document, or none, are not in doc. */
    cJSON *other = cJSON_CreateNumber(1);
    CHECK_INT_EQ(tm_json_offset(&doc, other), -1);
    CHECK_INT_EQ(tm_json_flags(&doc, other), 0);
    CHECK(tm_json_number_text(&doc, other, &len) == NULL);
    CHECK_INT_EQ(tm_json_offset(&doc, NULL), -1);
    cJSON_Delete(other);
    tm_json_release(&doc);
    CHECK(doc.root == NULL && doc.vals == NULL && doc.refs == NULL);
    tm_json_release(&doc); /* twice is harmless */
    tm_json_release(NULL);
}

/* A UTF-8 BOM is skipped; offsets still count it. */
TM_TEST(json_bom)
{
    static const char j[] = "\xEF\xBB\xBF[\"x\", 2]";
    struct tm_json_doc doc;
    struct tm_api_error e;
    tm_api_init();
    REQUIRE(tm_json_parse(&doc, j, strlen(j), &e) == TM_OK);
    CHECK(cJSON_IsArray(doc.root));
    CHECK_INT_EQ(tm_json_offset(&doc, doc.root), 3);
    CHECK_INT_EQ(tm_json_offset(&doc, cJSON_GetArrayItem(doc.root, 1)), 9);
    tm_json_release(&doc);
}

/* On failure the document is empty but keeps the text, and e is located. */
TM_TEST(json_failure_leaves_empty_doc)
{
    static const char j[] = "{\"a\":\n [1,,2]}";
    struct tm_json_doc doc;
    struct tm_api_error e;
    tm_api_init();
    REQUIRE(tm_json_parse(&doc, j, strlen(j), &e) == TM_EPARSE);
    CHECK(doc.root == NULL && doc.n_values == 0 && doc.text == j && doc.len == strlen(j));
    CHECK_INT_EQ(e.offset, 10);
    CHECK(e.line == 2 && e.column == 5);
    tm_json_release(&doc);
    /* The error pointer may be NULL. */
    CHECK_INT_EQ(tm_json_parse(&doc, j, strlen(j), NULL), TM_EPARSE);
    tm_json_release(&doc);
}

TM_TEST(json_allocation_failures)
{
    static const char j[] = "{\"documents\":[\"a\",{\"id\":7,\"text\":\"b\\u00e9\"}],\"seed\":1.5}";
    tm_api_init();
    for (long n = 1;; n++) {
        struct tm_json_doc doc;
        struct tm_api_error e;
        tm_testalloc_fail_at(n);
        tm_status st = tm_json_parse(&doc, j, strlen(j), &e);
        tm_json_release(&doc);
        tm_testalloc_reset();
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (st == TM_OK)
            break;
        CHECK_INT_EQ(st, TM_ENOMEM);
        CHECK_INT_EQ(e.status, TM_ENOMEM);
        if (n > 1000) {
            tm_test_fail(t, __FILE__, __LINE__, "never succeeded");
            break;
        }
    }
    tm_alloc_set_methods(NULL);
}
