/* test_error.c - api/error.h: filling and nesting an error, its line and
 * column, its one-line form, and its HTTP status, code and body for every
 * status. */
#include <string.h>

#include "api/error.h"
#include "core/alloc.h"
#include "harness.h"
#include "testalloc.h"

TM_TEST(error_fill_and_clear)
{
    struct tm_api_error e;
    CHECK_INT_EQ(tm_api_errorf(&e, TM_EINVAL, "model.k", 12, "must be %s %d", "at least", 1),
                 TM_EINVAL);
    CHECK_INT_EQ(e.status, TM_EINVAL);
    CHECK_STR_EQ(e.field, "model.k");
    CHECK_STR_EQ(e.message, "must be at least 1");
    CHECK_INT_EQ(e.offset, 12);
    CHECK(e.line == 0 && e.column == 0);

    /* A NULL error still returns the status; a NULL field is empty. */
    CHECK_INT_EQ(tm_api_errorf(NULL, TM_ENOMEM, "x", -1, "out of memory"), TM_ENOMEM);
    tm_api_errorf(&e, TM_EPARSE, NULL, -1, "bad");
    CHECK_STR_EQ(e.field, "");

    /* Long fields and messages are cut, NUL-terminated. */
    char long_text[400];
    memset(long_text, 'f', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    tm_api_errorf(&e, TM_EINVAL, long_text, -1, "%s", long_text);
    CHECK_INT_EQ(strlen(e.field), sizeof(e.field) - 1);
    CHECK_INT_EQ(strlen(e.message), sizeof(e.message) - 1);

    tm_api_error_clear(&e);
    CHECK_INT_EQ(e.status, TM_OK);
    CHECK(!e.field[0] && !e.message[0] && e.offset == -1 && e.line == 0 && e.column == 0);
    tm_api_error_clear(NULL);
}

TM_TEST(error_locate)
{
    static const char text[] = "ab\ncd\n\nef";
    static const struct {
        int64_t offset, line, column;
    } cases[] = {
        {0, 1, 1}, {2, 1, 3}, {3, 2, 1}, {4, 2, 2},
        {6, 3, 1}, {7, 4, 1}, {9, 4, 3}, {100, 4, 3}, /* past the end: the end */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tm_api_error e;
        tm_api_errorf(&e, TM_EPARSE, NULL, cases[i].offset, "x");
        tm_api_error_locate(&e, text, strlen(text));
        if (e.line != cases[i].line || e.column != cases[i].column)
            tm_test_fail(t, __FILE__, __LINE__, "offset %lld: line %lld column %lld",
                         (long long)cases[i].offset, (long long)e.line, (long long)e.column);
    }
    /* No position, no text: nothing to locate. */
    struct tm_api_error e;
    tm_api_errorf(&e, TM_EPARSE, NULL, -1, "x");
    tm_api_error_locate(&e, text, strlen(text));
    CHECK(e.line == 0 && e.column == 0);
    tm_api_errorf(&e, TM_EPARSE, NULL, 3, "x");
    tm_api_error_locate(&e, NULL, 0);
    CHECK(e.line == 0 && e.column == 0);
    tm_api_error_locate(NULL, text, 1);
}

TM_TEST(error_prefix)
{
    static const struct {
        const char *field, *prefix, *out;
    } cases[] = {
        {"min_df", "vectorizer", "vectorizer.min_df"},
        {"", "documents", "documents"},
        {"[3].text", "documents", "documents[3].text"},
        {"text", "[3]", "[3].text"},
        {"a", "", "a"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tm_api_error e;
        tm_api_errorf(&e, TM_EINVAL, cases[i].field, -1, "x");
        tm_api_error_prefix(&e, cases[i].prefix);
        CHECK_STR_EQ(e.field, cases[i].out);
    }
    struct tm_api_error e;
    tm_api_errorf(&e, TM_EINVAL, "kept", -1, "x");
    tm_api_error_prefix(&e, NULL);
    CHECK_STR_EQ(e.field, "kept");
    tm_api_error_prefix(NULL, "x");
    /* Too long for the field: cut, still NUL-terminated. */
    char prefix[200];
    memset(prefix, 'p', sizeof(prefix) - 1);
    prefix[sizeof(prefix) - 1] = '\0';
    tm_api_error_prefix(&e, prefix);
    CHECK_INT_EQ(strlen(e.field), sizeof(e.field) - 1);
    CHECK(!strncmp(e.field, prefix, sizeof(e.field) - 1));
}

TM_TEST(error_format)
{
    static const struct {
        tm_status status;
        const char *field, *message;
        int64_t line, column;
        const char *out;
    } cases[] = {
        {TM_ERANGE, "model.n_topics", "must be an integer >= 1", 3, 17,
         "model.n_topics: must be an integer >= 1 (line 3, column 17)"},
        {TM_EPARSE, "", "malformed JSON: expected ':'", 1, 6,
         "malformed JSON: expected ':' (line 1, column 6)"},
        {TM_EPARSE, "", "truncated", 4, 0, "truncated (line 4)"},
        {TM_EINVAL, "seed", "must be an integer", 0, 0, "seed: must be an integer"},
        /* A field that names the line gets only the column. */
        {TM_EPARSE, "line 7", "malformed JSON", 7, 3, "line 7: malformed JSON (column 3)"},
        {TM_EINVAL, "line 7: text", "missing", 7, 0, "line 7: text: missing"},
        /* No message: the status's own words. */
        {TM_ENOMEM, "", "", 0, 0, "out of memory"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tm_api_error e;
        char buf[200];
        tm_api_errorf(&e, cases[i].status, cases[i].field, -1, "%s", cases[i].message);
        e.line = cases[i].line;
        e.column = cases[i].column;
        CHECK_STR_EQ(tm_api_error_format(&e, buf, sizeof(buf)), cases[i].out);
    }
    /* A short buffer is cut; size 0 writes nothing. */
    struct tm_api_error e;
    char small[8] = "unused";
    tm_api_errorf(&e, TM_EINVAL, "vectorizer.min_df", -1, "must be >= 0");
    e.line = 2;
    e.column = 5;
    CHECK_STR_EQ(tm_api_error_format(&e, small, sizeof(small)), "vectori");
    CHECK(tm_api_error_format(&e, small, 0) == small);
}

/* Every status has a code and an HTTP status; unknown codes are internal. */
TM_TEST(error_codes_and_http_status)
{
    static const struct {
        tm_status status;
        const char *code;
        int http;
    } cases[] = {
        {TM_OK, "ok", 200},
        {TM_ENOMEM, "out_of_memory", 503},
        {TM_EINVAL, "invalid_spec", 422},
        {TM_ERANGE, "invalid_spec", 422},
        {TM_EEMPTY, "empty_corpus", 422},
        {TM_ENOTERMS, "no_terms", 422},
        {TM_ETOOBIG, "too_large", 413},
        {TM_ECANCELLED, "cancelled", 500},
        {TM_ENOTBUILT, "not_built", 422},
        {TM_ENODEV, "no_device", 422},
        {TM_ENUMERIC, "numerical_failure", 422},
        {TM_ELAPACK, "linear_algebra_failure", 500},
        {TM_EIO, "io_error", 500},
        {TM_EPARSE, "malformed_input", 400},
        {TM_ENOTFOUND, "not_found", 404},
        {TM_EBUSY, "busy", 409},
        {TM_EDEVICE, "device_failure", 500},
        {(tm_status)9999, "internal_error", 500},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_STR_EQ(tm_api_error_code(cases[i].status), cases[i].code);
        CHECK_INT_EQ(tm_api_error_http_status(cases[i].status), cases[i].http);
    }
}

TM_TEST(error_render)
{
    static const struct {
        tm_status status;
        const char *field, *message;
        int64_t offset, line, column;
        const char *body;
    } cases[] = {
        {TM_ERANGE, "vectorizer.min_df", "must be an integer >= 0", 24, 1, 25,
         "{\"error\":{\"code\":\"invalid_spec\",\"message\":\"must be an integer >= 0\","
         "\"field\":\"vectorizer.min_df\",\"offset\":24,\"line\":1,\"column\":25}}"},
        {TM_EPARSE, "", "malformed JSON: \"x\"\n", 7, 0, 0,
         "{\"error\":{\"code\":\"malformed_input\",\"message\":\"malformed JSON: \\\"x\\\"\\n\","
         "\"offset\":7}}"},
        {TM_EPARSE, "", "empty", 0, 1, 1,
         "{\"error\":{\"code\":\"malformed_input\",\"message\":\"empty\",\"offset\":0,"
         "\"line\":1,\"column\":1}}"},
        {TM_ETOOBIG, "documents[3]", "too big", -1, 0, 0,
         "{\"error\":{\"code\":\"too_large\",\"message\":\"too big\",\"field\":\"documents[3]\"}}"},
        {TM_ENOMEM, "", "", -1, 0, 0,
         "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tm_api_error e;
        char *body = NULL;
        size_t len = 0;
        tm_api_errorf(&e, cases[i].status, cases[i].field, cases[i].offset, "%s", cases[i].message);
        e.line = cases[i].line;
        e.column = cases[i].column;
        CHECK_INT_EQ(tm_api_error_render(&e, &body, &len), TM_OK);
        CHECK_STR_EQ(body, cases[i].body);
        CHECK(body && len == strlen(body));
        tm_free(body);
    }
    /* Out of memory: TM_ENOMEM, nothing returned, nothing leaked. */
    struct tm_api_error e;
    tm_api_errorf(&e, TM_EINVAL, "f", 3, "m");
    for (long n = 1;; n++) {
        char *body = NULL;
        size_t len;
        tm_testalloc_fail_at(n);
        tm_status st = tm_api_error_render(&e, &body, &len);
        tm_free(body);
        tm_testalloc_reset();
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (st == TM_OK)
            break;
        CHECK_INT_EQ(st, TM_ENOMEM);
        CHECK(body == NULL);
        if (n > 10) {
            tm_test_fail(t, __FILE__, __LINE__, "never succeeded");
            break;
        }
    }
    tm_alloc_set_methods(NULL);
}
