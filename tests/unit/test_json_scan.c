/* test_json_scan.c - api/json_scan.h: the strict scanner's acceptance and
 * rejection tables (offsets, lines, columns), its depth limit and value
 * table, the JSON Lines fast path against cJSON, and the streaming splitter
 * at every chunk boundary. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api/json.h"
#include "api/json_scan.h"
#include "core/alloc.h"
#include "harness.h"
#include "testalloc.h"

/* Scans the first len bytes of a copy of exactly len bytes, so that ASan
 * sees any read past the end. */
static tm_status scan_exact(const char *text, size_t len, size_t *n_vals, struct tm_api_error *e)
{
    char *copy = malloc(len ? len : 1);
    memcpy(copy, text, len);
    struct tm__json_val *vals = NULL;
    size_t n = 0;
    tm_status st = tm__json_scan(copy, len, &vals, &n, e);
    tm_free(vals);
    free(copy);
    if (n_vals)
        *n_vals = n;
    return st;
}

TM_TEST(json_scan_accepts)
{
    static const struct {
        const char *json;
        size_t values;
    } cases[] = {
        {"0", 1},
        {"-0", 1},
        {" \t\r\n1.5e+3 \n", 1},
        {"-12.25E-2", 1},
        {"123456789012345678901234567890123456789012345678901234567890123", 1},
        {"true", 1},
        {"false", 1},
        {"null", 1},
        {"\"\"", 1},
        {"\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00\"", 1},
        {"\"raw\tcontrol\x01 bytes \xff allowed\"", 1},
        {"\"\\u0000 as an escape\"", 1},
        {"[]", 1},
        {"{}", 1},
        {"[1,[2,[3]],{\"a\":[]}]", 8},
        {"{\"a\":1,\"b\":{\"c\":null},\"d\":[true,false]}", 7},
        {"{\"a\":1,\"a\":2}", 3}, /* duplicates are the reader's business */
        {"\xEF\xBB\xBF{\"bom\":true}", 2},
        {"[ 1 , 2 ]", 3},
    };
    tm_api_init();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tm_api_error e;
        size_t n = 0;
        const char *j = cases[i].json;
        tm_status st = scan_exact(j, strlen(j), &n, &e);
        if (st != TM_OK || n != cases[i].values)
            tm_test_fail(t, __FILE__, __LINE__, "%s: %s, %zu values (%s)", j, tm_status_name(st), n,
                         e.message);
        /* What the scanner accepts, cJSON parses (else ENOMEM/"internal"). */
        struct tm_json_doc doc;
        CHECK_INT_EQ(tm_json_parse(&doc, j, strlen(j), &e), TM_OK);
        tm_json_release(&doc);
    }
}

TM_TEST(json_scan_rejects)
{
    static const struct {
        const char *json;
        int64_t offset, line, column;
        const char *message;
    } cases[] = {
        {"", 0, 1, 1, "unexpected end of input, expected a value"},
        {"   ", 3, 1, 4, "unexpected end of input, expected a value"},
        {"{", 1, 1, 2, "unexpected end of input, expected a key"},
        {"{\"model\":", 9, 1, 10, "unexpected end of input, expected a value"},
        {"[1", 2, 1, 3, "unexpected end of input, expected ',' or ']'"},
        {"{\"a\":1", 6, 1, 7, "unexpected end of input, expected ',' or '}'"},
        {"{\"a\" 1}", 5, 1, 6, "expected ':'"},
        {"{\"a\":1,}", 7, 1, 8, "expected a string key"},
        {"{1:2}", 1, 1, 2, "expected a string key"},
        {"{\"a\":1 \"b\":2}", 7, 1, 8, "expected ',' or '}'"},
        {"[1 2]", 3, 1, 4, "expected ',' or ']'"},
        {"[1,]", 3, 1, 4, "expected a value"},
        {"{\"a\":01}", 5, 1, 6, "invalid number"},
        {"{\"a\":+1}", 5, 1, 6, "expected a value"},
        {"{\"a\":.5}", 5, 1, 6, "expected a value"},
        {"{\"a\":1.}", 5, 1, 6, "invalid number"},
        {"{\"a\":1e}", 5, 1, 6, "invalid number"},
        {"{\"a\":-}", 5, 1, 6, "invalid number"},
        {"{\"a\":1x}", 6, 1, 7, "expected ',' or '}'"},
        {"{\"a\":tru}", 5, 1, 6, "expected a value"},
        {"{\"a\":nul", 5, 1, 6, "expected a value"},
        {"{\"a\":\"x}", 5, 1, 6, "unterminated string"},
        {"\"ends in a backslash\\", 0, 1, 1, "unterminated string"},
        {"{\"a\":\"\\x\"}", 6, 1, 7, "invalid escape in string"},
        {"{\"a\":\"\\u12\"}", 6, 1, 7, "invalid \\u escape in string"},
        {"{\"a\":\"\\u12g4\"}", 6, 1, 7, "invalid \\u escape in string"},
        {"{\"a\":\"\\ud800\"}", 6, 1, 7, "unpaired UTF-16 surrogate in \\u escape"},
        {"{\"a\":\"\\ud800\\u0041\"}", 6, 1, 7, "unpaired UTF-16 surrogate in \\u escape"},
        {"{\"a\":\"\\udc00\"}", 6, 1, 7, "unpaired UTF-16 surrogate in \\u escape"},
        {"{\"a\\u0000\":1}", 1, 1, 2, "\\u0000 in an object key"},
        {"{} {}", 3, 1, 4, "unexpected data after the JSON value"},
        {"{}x", 2, 1, 3, "unexpected data after the JSON value"},
        {"\xEF\xBB\xBF{\"a\" 1}", 8, 1, 9, "expected ':'"},
        {"{\"a\":1111111111111111111111111111111111111111111111111111111111111111}", 5, 1, 6,
         "number longer than 63 characters"},
        {"'single'", 0, 1, 1, "expected a value"},
        {"NaN", 0, 1, 1, "expected a value"},
        /* Positions count lines and columns from 1; a tab is one column. */
        {"{\n  \"a\": 1,\n\t\"b\": 01\n}", 18, 3, 7, "invalid number"},
        {"[\n\n  1,\n  2\n  3]", 14, 5, 3, "expected ',' or ']'"},
        {"{\"a\":\r\n}", 7, 2, 1, "expected a value"},
    };
    tm_api_init();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *j = cases[i].json;
        struct tm_api_error e;
        char want[300];
        snprintf(want, sizeof(want), "malformed JSON: %s", cases[i].message);
        tm_status st = scan_exact(j, strlen(j), NULL, &e);
        if (st != TM_EPARSE || e.offset != cases[i].offset || strcmp(e.message, want))
            tm_test_fail(t, __FILE__, __LINE__, "scan %zu: %s at %lld \"%s\"", i,
                         tm_status_name(st), (long long)e.offset, e.message);
        /* tm_json_parse words it the same and adds the line and column. */
        struct tm_json_doc doc;
        st = tm_json_parse(&doc, j, strlen(j), &e);
        if (st != TM_EPARSE || e.offset != cases[i].offset || e.line != cases[i].line ||
            e.column != cases[i].column || strcmp(e.message, want) || e.field[0])
            tm_test_fail(t, __FILE__, __LINE__, "parse %zu: %s at %lld (%lld:%lld) \"%s\"", i,
                         tm_status_name(st), (long long)e.offset, (long long)e.line,
                         (long long)e.column, e.message);
        CHECK(doc.root == NULL && doc.vals == NULL);
        tm_json_release(&doc);
    }

    /* A raw NUL inside a string (length-delimited input). */
    struct tm_api_error e;
    CHECK_INT_EQ(scan_exact("{\"s\":\"a\0b\"}", 11, NULL, &e), TM_EPARSE);
    CHECK_INT_EQ(e.offset, 7);
    CHECK_STR_EQ(e.message, "malformed JSON: NUL byte in string");
    /* A NUL outside strings is no whitespace either. */
    CHECK_INT_EQ(scan_exact("[1,\0 2]", 7, NULL, &e), TM_EPARSE);
    CHECK_INT_EQ(e.offset, 3);
}

/* A string's plain bytes are skipped a word at a time: a quote, backslash or
 * NUL at every position of the first words (after plain bytes next to them
 * in value: '!', '#', '[', ']', 0x01, 0xa2, 0xdc, 0xff) is still found. */
TM_TEST(json_scan_string_stops_anywhere)
{
    static const char plain[] = "!#[]\x01\xa2\xdc\xff";
    char buf[64];
    struct tm_api_error e;
    size_t n;
    for (size_t k = 0; k < 24; k++) {
        buf[0] = '"';
        for (size_t i = 0; i < k; i++)
            buf[1 + i] = plain[i % 8];
        /* a raw NUL at k */
        memcpy(buf + 1 + k, "\0abcdefghij\"", 12);
        CHECK_INT_EQ(scan_exact(buf, k + 13, NULL, &e), TM_EPARSE);
        CHECK_INT_EQ(e.offset, (int64_t)(k + 1));
        CHECK_STR_EQ(e.message, "malformed JSON: NUL byte in string");
        /* an invalid escape at k */
        memcpy(buf + 1 + k, "\\xabcdefghij\"", 13);
        CHECK_INT_EQ(scan_exact(buf, k + 14, NULL, &e), TM_EPARSE);
        CHECK_INT_EQ(e.offset, (int64_t)(k + 1));
        CHECK_STR_EQ(e.message, "malformed JSON: invalid escape in string");
        /* no closing quote */
        CHECK_INT_EQ(scan_exact(buf, k + 1, NULL, &e), TM_EPARSE);
        CHECK_INT_EQ(e.offset, 0);
        CHECK_STR_EQ(e.message, "malformed JSON: unterminated string");
        /* an escaped quote at k, then the string ends at k + 3: one more
         * byte would be a second value */
        memcpy(buf + 1 + k, "\\\"\"", 3);
        CHECK_INT_EQ(scan_exact(buf, k + 4, &n, &e), TM_OK);
        CHECK_INT_EQ(n, 1);
        memcpy(buf + 4 + k, "x", 1);
        CHECK_INT_EQ(scan_exact(buf, k + 5, NULL, &e), TM_EPARSE);
        CHECK_INT_EQ(e.offset, (int64_t)(k + 4));
    }
}

/* Nesting of TM_JSON_MAX_DEPTH arrays or objects passes, one more fails at
 * the bracket that is one too deep. */
TM_TEST(json_scan_depth_limit)
{
    size_t cap = 8 * (TM_JSON_MAX_DEPTH + 2);
    char *buf = malloc(cap);
    for (int obj = 0; obj < 2; obj++) {
        for (int depth = TM_JSON_MAX_DEPTH; depth <= TM_JSON_MAX_DEPTH + 1; depth++) {
            size_t n = 0;
            for (int i = 0; i < depth; i++) {
                if (obj) {
                    memcpy(buf + n, "{\"k\":", 5);
                    n += 5;
                } else {
                    buf[n++] = '[';
                }
            }
            buf[n++] = '0';
            for (int i = 0; i < depth; i++)
                buf[n++] = obj ? '}' : ']';
            struct tm_api_error e;
            size_t values = 0;
            tm_status st = scan_exact(buf, n, &values, &e);
            if (depth == TM_JSON_MAX_DEPTH) {
                CHECK_INT_EQ(st, TM_OK);
                CHECK_INT_EQ(values, (size_t)depth + 1);
            } else {
                CHECK_INT_EQ(st, TM_EPARSE);
                CHECK_INT_EQ(e.offset, (int64_t)(obj ? 5 : 1) * TM_JSON_MAX_DEPTH);
                CHECK_STR_EQ(e.message, "malformed JSON: nesting deeper than 256 levels");
            }
        }
    }
    free(buf);
}

/* The value table: offsets, number tokens and flags, in cJSON's order. */
TM_TEST(json_scan_values)
{
    static const char j[] = " {\"a\": [1, -2.5e1, \"x\\u0000\"], \"b\": {\"c\": null}, \"d\": 7}";
    static const struct {
        const char *at; /* the value's text, found in j */
        uint32_t len;
        unsigned flags;
    } want[] = {
        {"{\"a\"", 0, 0},
        {"[1", 0, 0},
        {"1,", 1, 0},
        {"-2.5e1", 6, TM_JSON_NUM_FRACTION},
        {"\"x", 0, TM_JSON_STR_NUL},
        {"{\"c\"", 0, 0},
        {"null", 0, 0},
        {"7}", 1, 0},
    };
    struct tm__json_val *vals;
    size_t n;
    struct tm_api_error e;
    REQUIRE(tm__json_scan(j, strlen(j), &vals, &n, &e) == TM_OK);
    REQUIRE(n == sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < n; i++) {
        CHECK_INT_EQ(vals[i].offset, strstr(j, want[i].at) - j);
        CHECK_INT_EQ(vals[i].len, want[i].len);
        CHECK_INT_EQ(vals[i].flags, want[i].flags);
    }
    tm_free(vals);
}

/* Every failed allocation gives TM_ENOMEM and leaks nothing. */
TM_TEST(json_scan_allocation_failures)
{
    /* More values than the table's first allocation holds. */
    char j[600];
    size_t n = 0;
    j[n++] = '[';
    for (int i = 0; i < 150; i++)
        n += (size_t)snprintf(j + n, sizeof(j) - n, "%s%d", i ? "," : "", i % 10);
    j[n++] = ']';
    for (long k = 1;; k++) {
        struct tm__json_val *vals = NULL;
        size_t count = 0;
        struct tm_api_error e;
        tm_testalloc_fail_at(k);
        tm_status st = tm__json_scan(j, n, &vals, &count, &e);
        tm_free(vals);
        tm_testalloc_reset();
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (st == TM_OK) {
            CHECK_INT_EQ(count, 151);
            CHECK(k > 2); /* the table grew at least once */
            break;
        }
        CHECK_INT_EQ(st, TM_ENOMEM);
        CHECK_INT_EQ(e.status, TM_ENOMEM);
        if (k > 100) {
            tm_test_fail(t, __FILE__, __LINE__, "never succeeded");
            break;
        }
    }
    tm_alloc_set_methods(NULL);
}

/* The JSON Lines fast path decodes exactly as cJSON does, and hands
 * everything unusual to the general path. */
TM_TEST(json_scan_record_fast_matches_cjson)
{
    static const char *records[] = {
        "{\"text\":\"plain\"}",
        "{\"text\":\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t\"}",
        "{\"text\":\"\\u0041\\u00e9\\u07FF\\u0800\\uFFFF\\ud83d\\ude00\\uDBFF\\uDFFF\",\"id\":-12}",
        ("{ \"meta\" : {\"text\": 5, \"x\": [1, 2.5e3, null]} , \"id\" : \"a\\tb\" , \"text\": "
         "\"t\" }"), /* one record: the parentheses tell clang the join is meant */
        "{\"id\":null,\"text\":\"\"}",
        "{\"text\":\"raw \xff\xfe bytes\",\"label\":true}",
    };
    static const char *const keys[] = {"text", "id"};
    tm_api_init();
    for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++) {
        const char *r = records[i];
        struct tm_json_span sp[2];
        struct tm_json_doc doc;
        struct tm_api_error e;
        REQUIRE(tm__json_record_fast(r, strlen(r), keys, 2, sp) == 1);
        REQUIRE(tm_json_parse(&doc, r, strlen(r), &e) == TM_OK);
        const cJSON *text = NULL, *id = NULL;
        for (const cJSON *m = doc.root->child; m; m = m->next) {
            if (!strcmp(m->string, "text"))
                text = m;
            if (!strcmp(m->string, "id"))
                id = m;
        }
        REQUIRE(text && sp[0].present && sp[0].is_string);
        char *buf = malloc(sp[0].len + 1);
        size_t n = tm__json_unescape(sp[0].p, sp[0].len, buf);
        CHECK(n == strlen(text->valuestring) && !memcmp(buf, text->valuestring, n));
        CHECK_INT_EQ(sp[0].offset, tm_json_offset(&doc, text));
        free(buf);
        CHECK_INT_EQ(sp[1].present, id != NULL);
        if (id && cJSON_IsString(id)) {
            buf = malloc(sp[1].len + 1);
            n = tm__json_unescape(sp[1].p, sp[1].len, buf);
            CHECK(n == strlen(id->valuestring) && !memcmp(buf, id->valuestring, n));
            free(buf);
        } else if (id && cJSON_IsNumber(id)) {
            CHECK(sp[1].is_integer && sp[1].len == 3 && !memcmp(sp[1].p, "-12", 3));
        }
        tm_json_release(&doc);
    }
    /* Not for the fast path: the general one words the error or copes. */
    static const char *others[] = {
        "{\"text\":\"a\",\"text\":\"b\"}",
        "{\"te\\u0078t\":\"a\"}",
        "[\"a\"]",
        "{\"text\":\"a\"",
        "{\"text\":\"a\"} x",
        "{\"text\":\"a\\u0000\"}",
        "\xEF\xBB\xBF{\"text\":\"a\"}",
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        struct tm_json_span sp[2];
        const char *r = others[i];
        int fast = tm__json_record_fast(r, strlen(r), keys, 2, sp);
        CHECK(!fast || (sp[0].has_nul));
    }
}

/* ---------------------------------------------------------------------- */
/* The streaming splitter. */

struct element {
    int64_t index, offset;
    char *text; /* "[" element "]" */
    size_t len;
};

struct elements {
    struct element el[32];
    int n;
    int fail_at; /* fn fails on this element index + 1 (0: never) */
};

static tm_status keep(void *ctx, int64_t index, const char *array, size_t len, int64_t offset,
                      struct tm_api_error *e)
{
    struct elements *k = ctx;
    if (k->fail_at && index + 1 == k->fail_at)
        return tm_api_errorf(e, TM_EIO, "store", -1, "disk full");
    if (k->n == 32)
        return tm_api_errorf(e, TM_ETOOBIG, NULL, -1, "too many elements for the test");
    struct element *el = &k->el[k->n++];
    el->index = index;
    el->offset = offset;
    el->len = len;
    el->text = malloc(len + 1);
    memcpy(el->text, array, len);
    el->text[len] = '\0';
    return TM_OK;
}

static void elements_clear(struct elements *k)
{
    for (int i = 0; i < k->n; i++)
        free(k->el[i].text);
    k->n = 0;
}

/* Splits body fed in pieces cut at the given points (sorted, in (0, len)),
 * each piece an exact-size copy; returns feed's or finish's status. */
static tm_status split_pieces(const char *body, size_t len, const size_t *cuts, size_t n_cuts,
                              size_t max_element, struct elements *k, struct tm_api_error *e)
{
    struct tm__json_split *sp;
    tm_status st = tm__json_split_new(&sp, "documents", "document", max_element, keep, k);
    if (st != TM_OK)
        return st;
    size_t from = 0;
    for (size_t c = 0; c <= n_cuts && st == TM_OK; c++) {
        size_t to = c < n_cuts ? cuts[c] : len;
        char *piece = malloc(to - from ? to - from : 1);
        memcpy(piece, body + from, to - from);
        st = tm__json_split_feed(sp, piece, to - from, e);
        free(piece);
        from = to;
    }
    if (st == TM_OK)
        st = tm__json_split_finish(sp, e);
    tm__json_split_free(sp);
    return st;
}

static const char *const split_bodies[] = {
    /* Strings with escapes, quotes and brackets; objects nesting both
     * kinds of bracket; numbers and literals, which end at a delimiter. */
    "[\"plain\", \"say \\\"hi\\\" [x] {y}\",\n {\"id\": 7, \"text\": \"a\\\\\", \"m\": [{}, []]},"
    "\t12.5e3 ,true,null, \"\\u00e9\\ud83d\\ude00\" ,[1,[2]]]",
    " {\"documents\" : [\"a,b\" , {\"text\":\"}]\"} ,-0]}\r\n",
    /* A BOM, and the member named with an escape. */
    "\xEF\xBB\xBF{\"docu\\u006dents\":[\"x\\\\\",2 ]}",
};

/* The elements of split_bodies[b] as one feed gives them. */
static const char *const split_want[][9] = {
    {"[\"plain\"]", "[\"say \\\"hi\\\" [x] {y}\"]",
     "[{\"id\": 7, \"text\": \"a\\\\\", \"m\": [{}, []]}]", "[12.5e3]", "[true]", "[null]",
     "[\"\\u00e9\\ud83d\\ude00\"]", "[[1,[2]]]", NULL},
    {"[\"a,b\"]", "[{\"text\":\"}]\"}]", "[-0]", NULL},
    {"[\"x\\\\\"]", "[2]", NULL},
};

static void check_elements(struct tm_test_ctx *t, const struct elements *k, const char *body,
                           const char *const *want, const char *what)
{
    int n = 0;
    while (want[n])
        n++;
    if (k->n != n) {
        tm_test_fail(t, __FILE__, __LINE__, "%s: %d elements, want %d", what, k->n, n);
        return;
    }
    for (int i = 0; i < n; i++) {
        const struct element *el = &k->el[i];
        /* The element as it stands in the body, at the offset given. */
        size_t inner = strlen(want[i]) - 2;
        if (strcmp(el->text, want[i]) || el->index != i ||
            strncmp(body + el->offset, want[i] + 1, inner))
            tm_test_fail(t, __FILE__, __LINE__, "%s: element %d is %s at %lld, want %s", what, i,
                         el->text, (long long)el->offset, want[i]);
    }
}

/* Every split point of a multi-element body, and one byte at a time, gives
 * the same elements at the same offsets as one feed. */
TM_TEST(json_split_every_split_point)
{
    for (size_t b = 0; b < sizeof(split_bodies) / sizeof(split_bodies[0]); b++) {
        const char *body = split_bodies[b];
        size_t len = strlen(body);
        struct elements k = {.n = 0};
        struct tm_api_error e;
        char what[64];
        CHECK_INT_EQ(split_pieces(body, len, NULL, 0, 1000, &k, &e), TM_OK);
        check_elements(t, &k, body, split_want[b], "one feed");
        elements_clear(&k);
        for (size_t cut = 1; cut < len; cut++) {
            snprintf(what, sizeof(what), "body %zu cut at %zu", b, cut);
            tm_status st = split_pieces(body, len, &cut, 1, 1000, &k, &e);
            if (st != TM_OK)
                tm_test_fail(t, __FILE__, __LINE__, "%s: %s", what, e.message);
            check_elements(t, &k, body, split_want[b], what);
            elements_clear(&k);
        }
        size_t *cuts = malloc(len * sizeof(*cuts));
        for (size_t i = 1; i < len; i++)
            cuts[i - 1] = i;
        snprintf(what, sizeof(what), "body %zu byte by byte", b);
        CHECK_INT_EQ(split_pieces(body, len, cuts, len - 1, 1000, &k, &e), TM_OK);
        check_elements(t, &k, body, split_want[b], what);
        elements_clear(&k);
        free(cuts);
    }
}

/* Outside the elements the splitter reads the scanner's grammar, and
 * words its errors as the scanner does, with the line and column. */
TM_TEST(json_split_errors)
{
    static const struct {
        const char *body;
        tm_status status;
        int64_t offset;
        const char *field;
        const char *message;
        int elements; /* handed to fn before the error */
    } cases[] = {
        {"", TM_EPARSE, 0, "", "malformed JSON: unexpected end of input, expected a value", 0},
        {"  \"a\"", TM_EINVAL, 2, "documents",
         "must be an array of documents, or an object holding one as \"documents\"", 0},
        {"x[]", TM_EPARSE, 0, "", "malformed JSON: expected a value", 0},
        {"]", TM_EPARSE, 0, "", "malformed JSON: expected a value", 0},
        {"\xEF\xBB[]", TM_EPARSE, 0, "", "malformed JSON: expected a value", 0},
        {"[\"a\" \"b\"]", TM_EPARSE, 5, "", "malformed JSON: expected ',' or ']'", 1},
        {"[\"a\"\n  }", TM_EPARSE, 7, "", "malformed JSON: expected ',' or ']'", 1},
        {"[\"a\",,\"b\"]", TM_EPARSE, 5, "", "malformed JSON: expected a value", 1},
        {"[,\"a\"]", TM_EPARSE, 1, "", "malformed JSON: expected a value", 0},
        {"[\"a\",]", TM_EPARSE, 5, "", "malformed JSON: expected a value", 1},
        {"[\"a\"", TM_EPARSE, 4, "", "malformed JSON: unexpected end of input, expected ',' or ']'",
         1},
        {"[\"a\", {\"text\":\n \"b\"", TM_EPARSE, 19, "",
         "malformed JSON: unexpected end of input, expected ',' or '}'", 1},
        {"[\"a\", \"b", TM_EPARSE, 6, "", "malformed JSON: unterminated string", 1},
        {"[5", TM_EPARSE, 2, "", "malformed JSON: unexpected end of input, expected ',' or ']'", 0},
        {"[\"a\"] x", TM_EPARSE, 6, "", "malformed JSON: unexpected data after the JSON value", 1},
        {"[] []", TM_EPARSE, 3, "", "malformed JSON: unexpected data after the JSON value", 0},
        {"{\"documents\":[\"a\"] 5}", TM_EPARSE, 19, "", "malformed JSON: expected ',' or '}'", 1},
        {"{\"documents\":[\"a\"], 5}", TM_EPARSE, 20, "", "malformed JSON: expected a string key",
         1},
        {"{\"documents\" [\"a\"]}", TM_EPARSE, 13, "", "malformed JSON: expected ':'", 0},
        {"{\"docu", TM_EPARSE, 1, "", "malformed JSON: unterminated string", 0},
        {"{\"a\\u0000\": []}", TM_EPARSE, 1, "", "malformed JSON: \\u0000 in an object key", 0},
        {"{\"\\ud800x\": []}", TM_EPARSE, 2, "",
         "malformed JSON: unpaired UTF-16 surrogate in \\u escape", 0},
        {"{\"\\q\": []}", TM_EPARSE, 2, "", "malformed JSON: invalid escape in string", 0},
        {"{\"\\u00\": []}", TM_EPARSE, 2, "", "malformed JSON: invalid \\u escape in string", 0},
        {"{\"docs\": []}", TM_EINVAL, 9, "docs", "unknown field (expected only \"documents\")", 0},
        {"{\"documents\\u0000\": []}", TM_EPARSE, 1, "", "malformed JSON: \\u0000 in an object key",
         0},
        {"{\"docu\\u006dents\": [\"a\"], \"documents\": []}", TM_EINVAL, 39, "documents",
         "duplicate field", 1},
        {"{\"documents\": {}}", TM_EINVAL, 14, "documents", "must be an array of documents", 0},
        {"{\"documents\": \"a\"}", TM_EINVAL, 14, "documents", "must be an array of documents", 0},
        {"{\"documents\": 5}", TM_EINVAL, 14, "documents", "must be an array of documents", 0},
        {"{\"documents\": x}", TM_EPARSE, 14, "", "malformed JSON: expected a value", 0},
        {"\n {}", TM_EINVAL, 2, "documents", "missing", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *body = cases[i].body;
        struct elements k = {.n = 0};
        struct tm_api_error e, at;
        tm_status st = split_pieces(body, strlen(body), NULL, 0, 1000, &k, &e);
        at = e;
        tm_api_error_locate(&at, body, strlen(body));
        if (st != cases[i].status || e.offset != cases[i].offset ||
            strcmp(e.message, cases[i].message) || strcmp(e.field, cases[i].field) ||
            k.n != cases[i].elements || e.line != at.line || e.column != at.column)
            tm_test_fail(t, __FILE__, __LINE__,
                         "case %zu: %s at %lld (%lld:%lld) \"%s: %s\", %d elements", i,
                         tm_status_name(st), (long long)e.offset, (long long)e.line,
                         (long long)e.column, e.field, e.message, k.n);
        elements_clear(&k);
    }
}

/* The element cap, and a failing fn: both stop the split where they occur. */
TM_TEST(json_split_limits)
{
    struct elements k = {.n = 0};
    struct tm_api_error e;
    /* "[" and 8 bytes of element fit in 10 ("[" + element + "]"). */
    const char *ok = "[\"123456\", 12345678]";
    CHECK_INT_EQ(split_pieces(ok, strlen(ok), NULL, 0, 10, &k, &e), TM_OK);
    CHECK_INT_EQ(k.n, 2);
    elements_clear(&k);
    const char *big = "[\"a\", \"1234567\"]";
    CHECK_INT_EQ(split_pieces(big, strlen(big), NULL, 0, 10, &k, &e), TM_ETOOBIG);
    CHECK_INT_EQ(e.offset, 6);
    CHECK_INT_EQ(e.column, 7);
    CHECK_STR_EQ(e.message, "documents[1] exceeds the document size limit");
    CHECK_INT_EQ(k.n, 1);
    elements_clear(&k);

    k.fail_at = 2;
    const char *three = "[\"a\", \"b\", \"c\"]";
    CHECK_INT_EQ(split_pieces(three, strlen(three), NULL, 0, 100, &k, &e), TM_EIO);
    CHECK_STR_EQ(e.field, "store");
    CHECK_INT_EQ(k.n, 1);
    elements_clear(&k);
    /* A scalar element is handed over at its delimiter; fn's error keeps
     * its fields. */
    k.fail_at = 1;
    CHECK_INT_EQ(split_pieces("[5]", 3, NULL, 0, 100, &k, &e), TM_EIO);
    CHECK_INT_EQ(e.offset, -1);
    CHECK_INT_EQ(e.line, 0);
    elements_clear(&k);
}

TM_TEST(json_split_allocation_failures)
{
    const char *body = "{\"documents\": [\"a\", {\"text\": \"b\"}, 3]}";
    for (long n = 1;; n++) {
        struct elements k = {.n = 0};
        struct tm_api_error e;
        tm_testalloc_fail_at(n);
        tm_status st = split_pieces(body, strlen(body), NULL, 0, 1 << 20, &k, &e);
        tm_testalloc_reset();
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        elements_clear(&k);
        if (st == TM_OK)
            break;
        CHECK_INT_EQ(st, TM_ENOMEM);
        if (n > 100) {
            tm_test_fail(t, __FILE__, __LINE__, "never succeeded");
            break;
        }
    }
    tm_alloc_set_methods(NULL);
}
