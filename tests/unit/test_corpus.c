/* test_corpus.c - documents from bytes: every format, CRLF, caps, "\u0000",
 * the chunked stream (JSON Lines, lines, JSON) at every split, allocation
 * failures. */
#include <stdlib.h>
#include <string.h>

#include "api/corpus.h"
#include "core/alloc.h"
#include "harness.h"
#include "testalloc.h"

static int doc_is(const struct tm_corpus *c, int64_t i, const char *text)
{
    return i < c->n_docs && c->docs[i].len == strlen(text) &&
           memcmp(c->docs[i].text, text, c->docs[i].len) == 0;
}

static tm_status parse(struct tm_corpus *c, const char *bytes, enum tm_corpus_format f,
                       struct tm_api_error *e)
{
    tm_api_init();
    tm_corpus_init(c, NULL);
    return tm_corpus_parse(c, bytes, strlen(bytes), f, e);
}

TM_TEST(corpus_jsonl)
{
    struct tm_corpus c;
    struct tm_api_error e;
    const char *in = "{\"text\":\"first doc\",\"label\":3}\r\n"
                     "\r\n"
                     "   \n"
                     "{\"id\":\"b\",\"text\":\"caf\\u00e9\\nline\",\"extra\":{\"x\":[1]}}\n"
                     "{\"text\":\"\",\"id\":17}";
    REQUIRE(parse(&c, in, TM_CORPUS_JSONL, &e) == TM_OK);
    REQUIRE(c.n_docs == 3);
    CHECK(doc_is(&c, 0, "first doc"));
    CHECK(doc_is(&c, 1, "caf\xc3\xa9\nline"));
    CHECK(doc_is(&c, 2, ""));
    REQUIRE(c.ids != NULL);
    CHECK(c.ids[0] == NULL);
    CHECK_STR_EQ(c.ids[1], "b");
    CHECK_STR_EQ(c.ids[2], "17");
    CHECK_INT_EQ(c.total_bytes, 9 + 10);
    tm_corpus_release(&c);
}

TM_TEST(corpus_jsonl_errors)
{
    static const struct {
        const char *in;
        tm_status status;
        const char *field;
        const char *message;
        int64_t line;
    } cases[] = {
        {"{\"text\":\"a\"}\n{\"txt\":\"b\"}\n", TM_EINVAL, "line 2: text", "missing", 2},
        {"{\"text\":\"a\"}\n\n[\"b\"]\n", TM_EINVAL, "line 3", "must be a JSON object", 3},
        {"{\"text\":\"a\"}\n{\"text\":\"b\"\n", TM_EPARSE, "line 2", "malformed JSON", 2},
        {"{\"text\":\"a\\u0000b\"}", TM_EINVAL, "line 1: text", "\\u0000", 1},
        {"{\"text\":5}", TM_EINVAL, "line 1: text", "must be a string", 1},
        {"{\"text\":\"a\",\"text\":\"b\"}", TM_EINVAL, "line 1: text", "duplicate", 1},
        {"{\"text\":\"a\",\"id\":[1]}", TM_EINVAL, "line 1: id", "string or an integer", 1},
        {"{\"text\":\"a\",\"id\":1.5}", TM_EINVAL, "line 1: id", "string or an integer", 1},
        {"{\"text\":\"a\",\"id\":\"a\\u0000\"}", TM_EINVAL, "line 1: id", "\\u0000", 1},
        {"{\"text\":\"a\"} x\n", TM_EPARSE, "line 1", "unexpected data", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tm_corpus c;
        struct tm_api_error e;
        tm_status st = parse(&c, cases[i].in, TM_CORPUS_JSONL, &e);
        if (st != cases[i].status || strcmp(e.field, cases[i].field) != 0 ||
            !strstr(e.message, cases[i].message) || e.line != cases[i].line)
            tm_test_fail(t, __FILE__, __LINE__, "case %zu: %s \"%s: %s\" line %lld", i,
                         tm_status_name(st), e.field, e.message, (long long)e.line);
        tm_corpus_release(&c);
    }
    /* The offset points into the input: line 2 starts at byte 13. */
    struct tm_corpus c;
    struct tm_api_error e;
    REQUIRE(parse(&c, "{\"text\":\"a\"}\n{\"text\" 1}", TM_CORPUS_JSONL, &e) == TM_EPARSE);
    CHECK_INT_EQ(e.offset, 13 + 8);
    CHECK_INT_EQ(e.column, 9);
    CHECK_INT_EQ(c.n_docs, 1); /* documents before the bad line stay */
    tm_corpus_release(&c);
}

TM_TEST(corpus_json)
{
    struct tm_corpus c;
    struct tm_api_error e;
    REQUIRE(parse(&c, "[\"a b\", \"c\"]", TM_CORPUS_JSON, &e) == TM_OK);
    CHECK_INT_EQ(c.n_docs, 2);
    CHECK(doc_is(&c, 0, "a b") && doc_is(&c, 1, "c"));
    CHECK(c.ids == NULL);
    tm_corpus_release(&c);

    REQUIRE(parse(&c, "[{\"id\":\"x\",\"text\":\"one\"},{\"text\":\"two\",\"meta\":null}]",
                  TM_CORPUS_JSON, &e) == TM_OK);
    CHECK_INT_EQ(c.n_docs, 2);
    CHECK_STR_EQ(c.ids[0], "x");
    CHECK(c.ids[1] == NULL);
    tm_corpus_release(&c);

    REQUIRE(parse(&c, "{\"documents\":[\"p\",{\"text\":\"q\"}]}", TM_CORPUS_JSON, &e) == TM_OK);
    CHECK_INT_EQ(c.n_docs, 2);
    tm_corpus_release(&c);

    REQUIRE(parse(&c, "[]", TM_CORPUS_JSON, &e) == TM_OK);
    CHECK_INT_EQ(c.n_docs, 0);
    tm_corpus_release(&c);

    static const struct {
        const char *in;
        tm_status status;
        const char *field;
    } bad[] = {
        {"[\"a\",3]", TM_EINVAL, "documents[1]"},
        {"[\"a\",{\"text\":null}]", TM_EINVAL, "documents[1].text"},
        {"{\"docs\":[]}", TM_EINVAL, "docs"},
        {"{}", TM_EINVAL, "documents"},
        {"{\"documents\":[],\"documents\":[]}", TM_EINVAL, "documents"},
        {"{\"documents\":{}}", TM_EINVAL, "documents"},
        {"\"text\"", TM_EINVAL, "documents"},
        {"[\"a\"", TM_EPARSE, ""},
        {"[\"\\u0000\"]", TM_EINVAL, "documents[0]"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tm_status st = parse(&c, bad[i].in, TM_CORPUS_JSON, &e);
        if (st != bad[i].status || strcmp(e.field, bad[i].field) != 0)
            tm_test_fail(t, __FILE__, __LINE__, "%s: %s \"%s: %s\"", bad[i].in, tm_status_name(st),
                         e.field, e.message);
        tm_corpus_release(&c);
    }
}

TM_TEST(corpus_lines)
{
    struct tm_corpus c;
    struct tm_api_error e;
    REQUIRE(parse(&c, "a b\r\nc\n\nd", TM_CORPUS_LINES, &e) == TM_OK);
    REQUIRE(c.n_docs == 4);
    CHECK(doc_is(&c, 0, "a b") && doc_is(&c, 1, "c") && doc_is(&c, 2, "") && doc_is(&c, 3, "d"));
    tm_corpus_release(&c);

    REQUIRE(parse(&c, "x\n", TM_CORPUS_LINES, &e) == TM_OK);
    CHECK_INT_EQ(c.n_docs, 1);
    tm_corpus_release(&c);
    REQUIRE(parse(&c, "", TM_CORPUS_LINES, &e) == TM_OK);
    CHECK_INT_EQ(c.n_docs, 0);
    tm_corpus_release(&c);
    REQUIRE(parse(&c, "\n", TM_CORPUS_LINES, &e) == TM_OK);
    CHECK_INT_EQ(c.n_docs, 1);
    tm_corpus_release(&c);

    /* Raw bytes go through as they are (core/ repairs UTF-8, NUL is a
     * non-word character), except the BOM at the very start. */
    tm_corpus_init(&c, NULL);
    REQUIRE(tm_corpus_parse(&c, "\xEF\xBB\xBF\xff\0z\n", 7, TM_CORPUS_LINES, &e) == TM_OK);
    REQUIRE(c.n_docs == 1);
    CHECK(c.docs[0].len == 3 && !memcmp(c.docs[0].text, "\xff\0z", 3));
    tm_corpus_release(&c);
}

TM_TEST(corpus_auto_format)
{
    static const struct {
        const char *in;
        int64_t n;
    } cases[] = {
        {"[\"a\",\"b\",\"c\"]", 3},
        {"  \n[\"a\"]", 1},
        {"{\"text\":\"a\"}\n{\"text\":\"b\"}\n", 2},
        {"{\"text\":\"a\"}", 1},
        {"{\"documents\":[\"a\",\"b\"]}\n", 2},
        {"{\n  \"documents\": [\"a\", \"b\", \"c\"]\n}\n", 3},
        {"\xEF\xBB\xBF{\"text\":\"a\"}\n{\"text\":\"b\"}", 2},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tm_corpus c;
        struct tm_api_error e;
        tm_status st = parse(&c, cases[i].in, TM_CORPUS_AUTO, &e);
        if (st != TM_OK || c.n_docs != cases[i].n)
            tm_test_fail(t, __FILE__, __LINE__, "case %zu: %s %lld docs (%s: %s)", i,
                         tm_status_name(st), (long long)c.n_docs, e.field, e.message);
        tm_corpus_release(&c);
    }
    CHECK_INT_EQ(tm_corpus_format_from_name("ndjson"), TM_CORPUS_JSONL);
    CHECK_INT_EQ(tm_corpus_format_from_name("lines"), TM_CORPUS_LINES);
    CHECK_INT_EQ(tm_corpus_format_from_name("json"), TM_CORPUS_JSON);
    CHECK_INT_EQ(tm_corpus_format_from_name("csv"), -1);
}

TM_TEST(corpus_limits)
{
    struct tm_corpus_limits lim;
    struct tm_corpus c;
    struct tm_api_error e;
    tm_api_init();

    tm_corpus_limits_init(&lim);
    lim.max_documents = 2;
    tm_corpus_init(&c, &lim);
    CHECK_INT_EQ(tm_corpus_parse(&c, "a\nb\nc\n", 6, TM_CORPUS_LINES, &e), TM_ETOOBIG);
    CHECK_STR_EQ(e.field, "line 3");
    CHECK(strstr(e.message, "more than 2 documents") != NULL);
    tm_corpus_release(&c);

    tm_corpus_init(&c, &lim);
    CHECK_INT_EQ(tm_corpus_parse(&c, "[\"a\",\"b\",\"c\"]", 13, TM_CORPUS_JSON, &e), TM_ETOOBIG);
    CHECK_STR_EQ(e.field, "documents[2]");
    tm_corpus_release(&c);

    tm_corpus_limits_init(&lim);
    lim.max_document_bytes = 3;
    tm_corpus_init(&c, &lim);
    CHECK_INT_EQ(tm_corpus_parse(&c, "abc\nabcd\n", 9, TM_CORPUS_LINES, &e), TM_ETOOBIG);
    CHECK_STR_EQ(e.field, "line 2");
    tm_corpus_release(&c);
    tm_corpus_init(&c, &lim);
    CHECK_INT_EQ(tm_corpus_parse(&c, "{\"text\":\"abcd\"}", 15, TM_CORPUS_JSONL, &e), TM_ETOOBIG);
    CHECK_STR_EQ(e.field, "line 1: text");
    tm_corpus_release(&c);

    tm_corpus_limits_init(&lim);
    lim.max_total_bytes = 5;
    tm_corpus_init(&c, &lim);
    CHECK_INT_EQ(tm_corpus_parse(&c, "abc\nabcd\n", 9, TM_CORPUS_LINES, &e), TM_ETOOBIG);
    tm_corpus_release(&c);

    /* tm_corpus_add on its own. */
    tm_corpus_limits_init(&lim);
    lim.max_total_bytes = 4;
    tm_corpus_init(&c, &lim);
    CHECK_INT_EQ(tm_corpus_add(&c, "abc", 3, NULL, 0, &e), TM_OK);
    CHECK_INT_EQ(tm_corpus_add(&c, "de", 2, NULL, 0, &e), TM_ETOOBIG);
    CHECK_STR_EQ(e.field, "documents[1]");
    CHECK_INT_EQ(tm_corpus_add(&c, "d", 1, "i\0d", 3, &e), TM_EINVAL);
    CHECK_INT_EQ(c.n_docs, 1);
    tm_corpus_release(&c);
}

/* tm_corpus_append_take: documents and ids in order, whichever side has
 * ids, the text moved (the same pointers) and from left empty; limits hold
 * with nothing moved; allocation failures leak nothing. */
TM_TEST(corpus_append_take)
{
    struct tm_corpus a, b, c;
    struct tm_api_error e;
    REQUIRE(parse(&a, "x1\nx2\n", TM_CORPUS_LINES, &e) == TM_OK);
    REQUIRE(parse(&b, "{\"text\":\"y1\",\"id\":\"b1\"}\n{\"text\":\"y2\"}\n", TM_CORPUS_JSONL,
                  &e) == TM_OK);
    const char *moved = b.docs[1].text;
    CHECK_INT_EQ(tm_corpus_append_take(&a, &b, &e), TM_OK);
    REQUIRE(a.n_docs == 4);
    CHECK(doc_is(&a, 0, "x1") && doc_is(&a, 1, "x2") && doc_is(&a, 2, "y1") && doc_is(&a, 3, "y2"));
    CHECK(a.docs[3].text == moved);
    CHECK_INT_EQ(a.total_bytes, 8);
    REQUIRE(a.ids != NULL);
    CHECK(a.ids[0] == NULL && a.ids[1] == NULL && a.ids[3] == NULL);
    CHECK_STR_EQ(a.ids[2], "b1");
    CHECK(b.n_docs == 0 && b.docs == NULL && b.ids == NULL && b.total_bytes == 0);
    /* a has ids, c none; then more text after the merge lands in a's blocks */
    REQUIRE(parse(&c, "z1\n", TM_CORPUS_LINES, &e) == TM_OK);
    CHECK_INT_EQ(tm_corpus_append_take(&a, &c, &e), TM_OK);
    CHECK_INT_EQ(tm_corpus_add(&a, "w1", 2, "i5", 2, &e), TM_OK);
    REQUIRE(a.n_docs == 6);
    CHECK(doc_is(&a, 4, "z1") && doc_is(&a, 5, "w1"));
    CHECK(a.ids[4] == NULL);
    CHECK_STR_EQ(a.ids[5], "i5");
    CHECK(doc_is(&a, 2, "y1"));
    tm_corpus_release(&a);
    tm_corpus_release(&b);
    tm_corpus_release(&c);

    struct tm_corpus_limits lim;
    tm_corpus_limits_init(&lim);
    lim.max_documents = 3;
    tm_corpus_init(&a, &lim);
    REQUIRE(tm_corpus_parse(&a, "a\nb\n", 4, TM_CORPUS_LINES, &e) == TM_OK);
    REQUIRE(parse(&b, "c\nd\n", TM_CORPUS_LINES, &e) == TM_OK);
    CHECK_INT_EQ(tm_corpus_append_take(&a, &b, &e), TM_ETOOBIG);
    CHECK(strstr(e.message, "more than 3 documents") != NULL);
    CHECK(a.n_docs == 2 && b.n_docs == 2 && doc_is(&b, 1, "d"));
    tm_corpus_release(&a);
    tm_corpus_release(&b);
    lim.max_documents = 10;
    lim.max_total_bytes = 4;
    tm_corpus_init(&a, &lim);
    REQUIRE(tm_corpus_parse(&a, "a\nb\n", 4, TM_CORPUS_LINES, &e) == TM_OK);
    REQUIRE(parse(&b, "cde\n", TM_CORPUS_LINES, &e) == TM_OK);
    CHECK_INT_EQ(tm_corpus_append_take(&a, &b, &e), TM_ETOOBIG);
    CHECK(a.n_docs == 2 && b.n_docs == 1);
    tm_corpus_release(&a);
    tm_corpus_release(&b);

    for (long n = 1; n < 100; n++) {
        tm_testalloc_fail_at(0); /* count from here, fail nothing yet */
        REQUIRE(parse(&a, "a\nb\n", TM_CORPUS_LINES, &e) == TM_OK);
        REQUIRE(parse(&b, "{\"text\":\"c\",\"id\":\"i\"}\n", TM_CORPUS_JSONL, &e) == TM_OK);
        for (int k = 0; k < 70; k++) /* past a's 64 slots: its arrays must grow */
            REQUIRE(tm_corpus_add(&b, "d", 1, NULL, 0, &e) == TM_OK);
        tm_testalloc_arm(n);
        tm_status st = tm_corpus_append_take(&a, &b, &e);
        tm_testalloc_reset();
        CHECK(st == TM_OK || st == TM_ENOMEM);
        CHECK_INT_EQ(a.n_docs, st == TM_OK ? 73 : 2);
        tm_corpus_release(&a);
        tm_corpus_release(&b);
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (st == TM_OK)
            break;
    }
    tm_alloc_set_methods(NULL);
}

/* Documents stay where they are while more are added (block storage). */
TM_TEST(corpus_pointers_stable)
{
    struct tm_corpus c;
    struct tm_api_error e;
    tm_api_init();
    tm_corpus_init(&c, NULL);
    char *big = malloc(3 << 20);
    memset(big, 'x', 3 << 20);
    REQUIRE(tm_corpus_add(&c, "first", 5, "id0", 3, &e) == TM_OK);
    const char *first = c.docs[0].text;
    for (int i = 0; i < 1000; i++) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "doc %d", i);
        REQUIRE(tm_corpus_add(&c, buf, (size_t)n, NULL, 0, &e) == TM_OK);
        if (i == 500)
            REQUIRE(tm_corpus_add(&c, big, 3 << 20, "big", 3, &e) == TM_OK);
    }
    CHECK(c.docs[0].text == first);
    CHECK(doc_is(&c, 0, "first"));
    CHECK(doc_is(&c, 1001, "doc 999"));
    CHECK_STR_EQ(c.ids[0], "id0");
    CHECK_STR_EQ(c.ids[502], "big");
    CHECK(c.ids[1] == NULL);
    CHECK(c.docs[502].len == (size_t)3 << 20 && c.docs[502].text[12345] == 'x');
    tm_corpus_release(&c);
    free(big);
}

struct collect {
    struct tm_corpus c;
    int fail_at; /* sink fails on this document index + 1 (0: never) */
};

static tm_status collect_sink(void *ctx, const struct tm_stream_doc *d, struct tm_api_error *e)
{
    struct collect *k = ctx;
    if (k->fail_at && d->index + 1 == k->fail_at)
        return tm_api_errorf(e, TM_EIO, "store", -1, "disk full");
    return tm_corpus_add(&k->c, d->text, d->text_len, d->id, d->id_len, e);
}

static const char stream_input[] = "{\"id\":\"a\",\"text\":\"alpha\"}\r\n"
                                   "{\"text\":\"beta \\\"quoted\\\"\"}\n"
                                   "\n"
                                   "{\"text\":\"\\u00e9t\\u00e9 \\ud83d\\ude00\"}\r\n"
                                   "{\"text\":\"last\"}";

/* Any split of the input gives the same documents as one feed. */
TM_TEST(corpus_stream_every_split)
{
    size_t len = strlen(stream_input);
    tm_api_init();
    for (size_t chunk = 1; chunk <= len; chunk++) {
        struct collect k = {.fail_at = 0};
        struct tm_doc_stream *s;
        struct tm_api_error e;
        tm_corpus_init(&k.c, NULL);
        REQUIRE(tm_doc_stream_new(&s, TM_CORPUS_JSONL, NULL, collect_sink, &k) == TM_OK);
        tm_status st = TM_OK;
        for (size_t off = 0; off < len && st == TM_OK; off += chunk) {
            size_t n = len - off < chunk ? len - off : chunk;
            char *piece = malloc(n); /* exact size: ASan sees over-reads */
            memcpy(piece, stream_input + off, n);
            st = tm_doc_stream_feed(s, piece, n, &e);
            free(piece);
        }
        if (st == TM_OK)
            st = tm_doc_stream_finish(s, &e);
        CHECK_INT_EQ(st, TM_OK);
        CHECK_INT_EQ(tm_doc_stream_count(s), 4);
        CHECK_INT_EQ(tm_doc_stream_bytes(s), (int64_t)len);
        CHECK(doc_is(&k.c, 0, "alpha"));
        CHECK(doc_is(&k.c, 1, "beta \"quoted\""));
        CHECK(doc_is(&k.c, 2, "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80"));
        CHECK(doc_is(&k.c, 3, "last"));
        tm_doc_stream_free(s);
        tm_corpus_release(&k.c);
    }
}

/* A JSON body streamed at every split gives the documents and ids that
 * tm_corpus_parse reads from it whole. */
TM_TEST(corpus_stream_json_every_split)
{
    static const char in[] = "{\"documents\": [\"alpha\", {\"id\": 7, \"text\": \"be\\\"ta ]\"},\n"
                             "{\"text\": \"\\u00e9t\\u00e9\", \"id\": \"x\"}, \"\"]}";
    size_t len = strlen(in);
    struct tm_corpus whole;
    struct tm_api_error e;
    REQUIRE(parse(&whole, in, TM_CORPUS_JSON, &e) == TM_OK);
    REQUIRE(whole.n_docs == 4);
    for (size_t cut = 0; cut <= len; cut++) {
        struct collect k = {.fail_at = 0};
        struct tm_doc_stream *s;
        tm_corpus_init(&k.c, NULL);
        REQUIRE(tm_doc_stream_new(&s, TM_CORPUS_JSON, NULL, collect_sink, &k) == TM_OK);
        char *a = malloc(cut ? cut : 1), *b = malloc(len - cut ? len - cut : 1);
        memcpy(a, in, cut);
        memcpy(b, in + cut, len - cut);
        tm_status st = tm_doc_stream_feed(s, a, cut, &e);
        if (st == TM_OK)
            st = tm_doc_stream_feed(s, b, len - cut, &e);
        if (st == TM_OK)
            st = tm_doc_stream_finish(s, &e);
        free(a);
        free(b);
        CHECK_INT_EQ(st, TM_OK);
        CHECK_INT_EQ(tm_doc_stream_count(s), 4);
        CHECK_INT_EQ(tm_doc_stream_bytes(s), (int64_t)len);
        REQUIRE(k.c.n_docs == 4 && k.c.ids);
        for (int i = 0; i < 4; i++) {
            CHECK(k.c.docs[i].len == whole.docs[i].len &&
                  !memcmp(k.c.docs[i].text, whole.docs[i].text, whole.docs[i].len));
            CHECK((k.c.ids[i] == NULL) == (whole.ids[i] == NULL));
            if (k.c.ids[i] && whole.ids[i])
                CHECK_STR_EQ(k.c.ids[i], whole.ids[i]);
        }
        tm_doc_stream_free(s);
        tm_corpus_release(&k.c);
    }
    tm_corpus_release(&whole);
}

/* A document's error in a JSON stream names its place in the whole body,
 * with the body's byte offset, line and column, as tm_corpus_parse does. */
TM_TEST(corpus_stream_json_errors)
{
    static const struct {
        const char *in;
        tm_status status;
        const char *field;
        int64_t offset;
        const char *message;
        int64_t line, column;
    } cases[] = {
        {"[\"a\", {\"text\": 5}]", TM_EINVAL, "documents[1].text", 15, "must be a string", 1, 16},
        {"[\"a\", 5]", TM_EINVAL, "documents[1]", 6,
         "must be a string or an object with a \"text\" string", 1, 7},
        {"{\"documents\":[\"a\",\"b\\u0000\"]}", TM_EINVAL, "documents[1]", 18,
         "contains \\u0000, which documents cannot hold", 1, 19},
        {"[\"a\",\n {\"text\": \"b\" \"id\": 1}]", TM_EPARSE, "documents[1]", 20,
         "malformed JSON: expected ',' or '}'", 2, 15},
        {"[\"a\",\n\n  \"0123456789ab\"]", TM_ETOOBIG, "documents[1]", 9,
         "document of 12 bytes exceeds the limit of 10 bytes", 3, 3},
        {"[\"a\" \"b\"]", TM_EPARSE, "", 5, "malformed JSON: expected ',' or ']'", 1, 6},
        {"\xEF\xBB\xBF[\"a\" \"b\"]", TM_EPARSE, "", 8, "malformed JSON: expected ',' or ']'", 1,
         9},
    };
    struct tm_corpus_limits lim;
    tm_corpus_limits_init(&lim);
    lim.max_document_bytes = 10;
    tm_api_init();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct collect k = {.fail_at = 0};
        struct tm_doc_stream *s;
        struct tm_api_error e;
        tm_corpus_init(&k.c, NULL);
        REQUIRE(tm_doc_stream_new(&s, TM_CORPUS_JSON, &lim, collect_sink, &k) == TM_OK);
        tm_status st = tm_doc_stream_feed(s, cases[i].in, strlen(cases[i].in), &e);
        if (st == TM_OK)
            st = tm_doc_stream_finish(s, &e);
        if (st != cases[i].status || strcmp(e.field, cases[i].field) ||
            e.offset != cases[i].offset || strcmp(e.message, cases[i].message) ||
            e.line != cases[i].line || e.column != cases[i].column)
            tm_test_fail(t, __FILE__, __LINE__, "case %zu: %s \"%s: %s\" at %lld (%lld:%lld)", i,
                         tm_status_name(st), e.field, e.message, (long long)e.offset,
                         (long long)e.line, (long long)e.column);
        CHECK_INT_EQ(k.c.n_docs, 1);
        /* A failed stream stays failed, with the same error. */
        struct tm_api_error again;
        CHECK_INT_EQ(tm_doc_stream_finish(s, &again), st);
        CHECK_STR_EQ(again.message, e.message);
        tm_doc_stream_free(s);
        tm_corpus_release(&k.c);
    }
}

/* max_documents holds for a JSON stream as for JSON Lines, with the error
 * that tm_corpus_parse gives for the same body. */
TM_TEST(corpus_stream_json_max_documents)
{
    static const char body[] = "[\"a\", {\"text\": \"b\"},\n \"c\", \"d\"]";
    struct tm_corpus_limits lim;
    tm_corpus_limits_init(&lim);
    lim.max_documents = 2;
    tm_api_init();
    struct collect k = {.fail_at = 0};
    struct tm_doc_stream *s;
    struct tm_api_error e, whole;
    tm_corpus_init(&k.c, NULL);
    REQUIRE(tm_doc_stream_new(&s, TM_CORPUS_JSON, &lim, collect_sink, &k) == TM_OK);
    CHECK_INT_EQ(tm_doc_stream_feed(s, body, strlen(body), &e), TM_ETOOBIG);
    CHECK_STR_EQ(e.field, "documents[2]");
    CHECK_STR_EQ(e.message, "more than 2 documents");
    CHECK_INT_EQ(e.offset, 22);
    CHECK_INT_EQ(e.line, 2);
    CHECK_INT_EQ(e.column, 2);
    CHECK_INT_EQ(tm_doc_stream_count(s), 2);
    tm_doc_stream_free(s);
    tm_corpus_release(&k.c);

    struct tm_corpus c;
    tm_corpus_init(&c, &lim);
    CHECK_INT_EQ(tm_corpus_parse(&c, body, strlen(body), TM_CORPUS_JSON, &whole), TM_ETOOBIG);
    CHECK_STR_EQ(whole.field, e.field);
    CHECK_STR_EQ(whole.message, e.message);
    CHECK_INT_EQ(whole.offset, e.offset);
    tm_corpus_release(&c);

    /* JSON Lines words it the same way, naming the line. */
    static const char lines[] = "{\"text\":\"a\"}\n{\"text\":\"b\"}\n{\"text\":\"c\"}\n";
    tm_corpus_init(&c, &lim);
    CHECK_INT_EQ(tm_corpus_parse(&c, lines, strlen(lines), TM_CORPUS_JSONL, &e), TM_ETOOBIG);
    CHECK_STR_EQ(e.field, "line 3");
    CHECK_STR_EQ(e.message, "more than 2 documents");
    tm_corpus_release(&c);
}

TM_TEST(corpus_stream_lines_and_errors)
{
    struct collect k = {.fail_at = 0};
    struct tm_doc_stream *s;
    struct tm_api_error e;
    tm_api_init();
    tm_corpus_init(&k.c, NULL);
    REQUIRE(tm_doc_stream_new(&s, TM_CORPUS_LINES, NULL, collect_sink, &k) == TM_OK);
    /* "\r" and "\n" in different chunks. */
    CHECK_INT_EQ(tm_doc_stream_feed(s, "one\r", 4, &e), TM_OK);
    CHECK_INT_EQ(tm_doc_stream_feed(s, "\ntwo", 4, &e), TM_OK);
    CHECK_INT_EQ(k.c.n_docs, 1);
    CHECK_INT_EQ(tm_doc_stream_finish(s, &e), TM_OK);
    CHECK(doc_is(&k.c, 0, "one") && doc_is(&k.c, 1, "two"));
    tm_doc_stream_free(s);
    tm_corpus_release(&k.c);

    /* The sink's failure stops the stream, and it stays failed. */
    tm_corpus_init(&k.c, NULL);
    k.fail_at = 2;
    REQUIRE(tm_doc_stream_new(&s, TM_CORPUS_LINES, NULL, collect_sink, &k) == TM_OK);
    CHECK_INT_EQ(tm_doc_stream_feed(s, "a\nb\nc\n", 6, &e), TM_EIO);
    CHECK_STR_EQ(e.message, "disk full");
    CHECK_INT_EQ(tm_doc_stream_feed(s, "d\n", 2, &e), TM_EIO);
    CHECK_INT_EQ(tm_doc_stream_finish(s, &e), TM_EIO);
    CHECK_INT_EQ(k.c.n_docs, 1);
    tm_doc_stream_free(s);
    tm_corpus_release(&k.c);

    /* A line longer than the cap fails without buffering all of it. */
    struct tm_corpus_limits lim;
    tm_corpus_limits_init(&lim);
    lim.max_document_bytes = 10;
    tm_corpus_init(&k.c, NULL);
    k.fail_at = 0;
    REQUIRE(tm_doc_stream_new(&s, TM_CORPUS_LINES, &lim, collect_sink, &k) == TM_OK);
    CHECK_INT_EQ(tm_doc_stream_feed(s, "0123456789", 10, &e), TM_OK);
    CHECK_INT_EQ(tm_doc_stream_feed(s, "ab", 2, &e), TM_ETOOBIG);
    CHECK_STR_EQ(e.field, "line 1");
    tm_doc_stream_free(s);
    tm_corpus_release(&k.c);

    CHECK_INT_EQ(tm_doc_stream_new(&s, TM_CORPUS_AUTO, NULL, collect_sink, &k), TM_EINVAL);
    CHECK(s == NULL);
}

TM_TEST(corpus_allocation_failures)
{
    static const struct {
        const char *in;
        enum tm_corpus_format f;
    } inputs[] = {
        {"[\"a\",{\"id\":\"x\",\"text\":\"b\"},\"c\"]", TM_CORPUS_JSON},
        {"{\"id\":1,\"text\":\"a\"}\n{\"text\":\"b\"}\n", TM_CORPUS_JSONL},
        {"a\nb\nc", TM_CORPUS_LINES},
        {"{\"text\":\"a\"}\n", TM_CORPUS_AUTO},
    };
    tm_api_init();
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        for (long n = 1; n < 1000; n++) {
            struct tm_corpus c;
            struct tm_api_error e;
            tm_testalloc_fail_at(n);
            tm_corpus_init(&c, NULL);
            tm_status st = tm_corpus_parse(&c, inputs[i].in, strlen(inputs[i].in), inputs[i].f, &e);
            tm_corpus_release(&c);
            tm_testalloc_reset();
            CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
            if (st == TM_OK)
                break;
            if (st != TM_ENOMEM) {
                tm_test_fail(t, __FILE__, __LINE__, "input %zu allocation %ld: %s (%s)", i, n,
                             tm_status_name(st), e.message);
                break;
            }
        }
    }
    tm_alloc_set_methods(NULL);
}

/* Every prefix of a JSON corpus in every format: no crash, no leak. */
TM_TEST(corpus_truncated_at_every_offset)
{
    static const char in[] = "{\"documents\":[\"a\",{\"id\":7,\"text\":\"b\\u00e9\"}]}";
    size_t len = strlen(in);
    tm_api_init();
    for (size_t n = 0; n <= len; n++) {
        for (int f = TM_CORPUS_AUTO; f <= TM_CORPUS_LINES; f++) {
            struct tm_corpus c;
            struct tm_api_error e;
            char *copy = malloc(n ? n : 1);
            memcpy(copy, in, n);
            tm_corpus_init(&c, NULL);
            tm_status st = tm_corpus_parse(&c, copy, n, (enum tm_corpus_format)f, &e);
            CHECK(st == TM_OK || st == TM_EPARSE || st == TM_EINVAL);
            tm_corpus_release(&c);
            free(copy);
        }
    }
}

/* A key with an escape is no case for the fast path (see test_json_scan.c)
 * but still read, through cJSON. */
TM_TEST(corpus_jsonl_escaped_key)
{
    struct tm_corpus c;
    struct tm_api_error e;
    tm_api_init();
    tm_corpus_init(&c, NULL);
    const char *escaped_key = "{\"te\\u0078t\":\"via cjson\"}\n";
    REQUIRE(tm_corpus_parse(&c, escaped_key, strlen(escaped_key), TM_CORPUS_JSONL, &e) == TM_OK);
    CHECK(doc_is(&c, 0, "via cjson"));
    tm_corpus_release(&c);
}

/* ---------------------------------------------------------------------- */
/* The streamed JSON path against the whole-body one: the server reads a
 * JSON body up to --max-json-bytes with tm_corpus_parse and a larger one
 * with tm_doc_stream, so both must accept the same bodies, with the same
 * documents, and the stream must say what is wrong with the rest. */

struct outcome {
    tm_status st;
    struct tm_api_error e;
    struct tm_corpus c;
};

static void read_whole(const char *body, size_t len, const struct tm_corpus_limits *lim,
                       struct outcome *o)
{
    tm_corpus_init(&o->c, lim);
    o->st = tm_corpus_parse(&o->c, body, len, TM_CORPUS_JSON, &o->e);
}

/* Feeds body cut at cuts[] (sorted, within [0, len]), each piece an
 * exact-size copy so that ASan sees any read past a chunk. */
static void read_streamed(const char *body, size_t len, const size_t *cuts, size_t n_cuts,
                          const struct tm_corpus_limits *lim, struct outcome *o)
{
    struct collect k = {.fail_at = 0};
    struct tm_doc_stream *s;
    tm_corpus_init(&k.c, NULL);
    o->st = tm_doc_stream_new(&s, TM_CORPUS_JSON, lim, collect_sink, &k);
    tm_api_error_clear(&o->e);
    size_t from = 0;
    for (size_t i = 0; i <= n_cuts && o->st == TM_OK; i++) {
        size_t to = i < n_cuts ? cuts[i] : len;
        char *piece = malloc(to - from ? to - from : 1);
        memcpy(piece, body + from, to - from);
        o->st = tm_doc_stream_feed(s, piece, to - from, &o->e);
        free(piece);
        from = to;
    }
    if (o->st == TM_OK)
        o->st = tm_doc_stream_finish(s, &o->e);
    tm_doc_stream_free(s);
    o->c = k.c;
}

static void body_repr(const char *body, size_t len, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 8 < size; i++) {
        unsigned char ch = (unsigned char)body[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", ch);
    }
    out[o] = '\0';
}

/* 0 when the two outcomes agree; else reports why (what names the case). */
static int outcomes_differ(struct tm_test_ctx *t, const char *what, const char *body, size_t len,
                           const struct outcome *w, const struct outcome *s)
{
    char why[160] = "";
    if ((w->st == TM_OK) != (s->st == TM_OK)) {
        snprintf(why, sizeof(why), "whole %s, streamed %s", tm_status_name(w->st),
                 tm_status_name(s->st));
    } else if (w->st == TM_OK) {
        if (w->c.n_docs != s->c.n_docs)
            snprintf(why, sizeof(why), "%lld documents whole, %lld streamed",
                     (long long)w->c.n_docs, (long long)s->c.n_docs);
        for (int64_t i = 0; !why[0] && i < w->c.n_docs; i++) {
            const char *wi = w->c.ids ? w->c.ids[i] : NULL, *si = s->c.ids ? s->c.ids[i] : NULL;
            if (w->c.docs[i].len != s->c.docs[i].len ||
                memcmp(w->c.docs[i].text, s->c.docs[i].text, w->c.docs[i].len) ||
                (wi == NULL) != (si == NULL) || (wi && strcmp(wi, si)))
                snprintf(why, sizeof(why), "document %lld differs", (long long)i);
        }
    } else {
        /* A clear error: a status a client can act on, a message, and a
         * position that is right about the body. */
        struct tm_api_error at = s->e;
        tm_api_error_locate(&at, body, len);
        if (s->st != TM_EPARSE && s->st != TM_EINVAL && s->st != TM_ETOOBIG)
            snprintf(why, sizeof(why), "streamed %s", tm_status_name(s->st));
        else if (!s->e.message[0])
            snprintf(why, sizeof(why), "streamed error without a message");
        else if (s->e.offset > (int64_t)len)
            snprintf(why, sizeof(why), "streamed offset %lld", (long long)s->e.offset);
        else if (s->e.offset >= 0 && (s->e.line != at.line || s->e.column != at.column))
            snprintf(why, sizeof(why), "streamed error at line %lld column %lld, is %lld:%lld",
                     (long long)s->e.line, (long long)s->e.column, (long long)at.line,
                     (long long)at.column);
        /* Malformed JSON is reported where the scanner finds it, by both. */
        else if (w->st == TM_EPARSE && s->st == TM_EPARSE &&
                 (w->e.offset != s->e.offset || strcmp(w->e.message, s->e.message)))
            snprintf(why, sizeof(why), "malformed at %lld whole, %lld streamed",
                     (long long)w->e.offset, (long long)s->e.offset);
    }
    if (!why[0])
        return 0;
    char repr[400];
    body_repr(body, len, repr, sizeof(repr));
    tm_test_fail(t, __FILE__, __LINE__,
                 "%s: %s; body \"%s\"; whole %s \"%s: %s\" at %lld, "
                 "streamed %s \"%s: %s\" at %lld",
                 what, why, repr, tm_status_name(w->st), w->e.field, w->e.message,
                 (long long)w->e.offset, tm_status_name(s->st), s->e.field, s->e.message,
                 (long long)s->e.offset);
    return 1;
}

static uint64_t rng_next(uint64_t *x)
{
    /* splitmix64: a fixed seed gives the same cases on every run. */
    uint64_t z = (*x += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * Reads body whole and streamed: byte by byte, then cut at every point
 * when every_cut is set and it is short, else in a few random patterns.
 * Returns 1 on the first disagreement (reported), 0 otherwise; *accepted
 * says whether the whole-body path took it.
 */
static int check_body(struct tm_test_ctx *t, const char *what, const char *body, size_t len,
                      const struct tm_corpus_limits *lim, int every_cut, uint64_t *rng,
                      int *accepted)
{
    struct outcome w, s;
    read_whole(body, len, lim, &w);
    if (accepted)
        *accepted = w.st == TM_OK;
    size_t *cuts = malloc((len + 8) * sizeof(*cuts)); /* byte by byte, or up to 8 */
    int every = every_cut && len <= 64;
    int n_patterns = every ? (int)len + 2 : 4;
    int differ = 0;
    for (int p = 0; p < n_patterns && !differ; p++) {
        size_t n_cuts = 0;
        if (p == 0) {
            for (size_t i = 1; i < len; i++)
                cuts[n_cuts++] = i; /* byte by byte */
        } else if (every) {
            cuts[n_cuts++] = (size_t)p - 1; /* one cut, 0 to len */
        } else {
            n_cuts = 1 + rng_next(rng) % 8;
            for (size_t i = 0; i < n_cuts; i++)
                cuts[i] = rng_next(rng) % (len + 1);
            qsort(cuts, n_cuts, sizeof(*cuts), cmp_size);
        }
        read_streamed(body, len, cuts, n_cuts, lim, &s);
        char how[200];
        snprintf(how, sizeof(how), "%s, %zu cuts from %zu", what, n_cuts, n_cuts ? cuts[0] : 0);
        differ = outcomes_differ(t, how, body, len, &w, &s);
        tm_corpus_release(&s.c);
    }
    free(cuts);
    tm_corpus_release(&w.c);
    return differ;
}

struct body {
    const char *s;
    size_t len;
};
#define BODY(lit)                                                                                  \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }

/* The first N_ACCEPTED are accepted. */
#define N_ACCEPTED 16
static const struct body json_bodies[] = {
    BODY("[]"),
    BODY(" [ ] "),
    BODY("[\"a\"]"),
    BODY("[\"a\", \"b c\", \"\"]"),
    BODY("[{\"id\": 1, \"text\": \"x\"}, {\"text\": \"y\", \"id\": \"k\"}, {\"text\":\"z\","
         "\"id\":null}]"),
    BODY("{\"documents\": []}"),
    BODY("{\"documents\": [\"a\", {\"text\": \"b\", \"meta\": {\"x\": [1, {\"y\": null}], "
         "\"z\": [[], {}]}}]}"),
    BODY("{\"docu\\u006dents\": [\"escaped key\"]}"),
    BODY("{\"\\u0064ocuments\": [\"a\"]}"),
    BODY("\r\n {\t\"documents\"\n :\r [ \"a\" ,\n\t{ \"text\" : \"b\" } ] \n}\n\t "),
    BODY("[\"\\u00e9t\\u00e9\", \"\\ud83d\\ude00\", \"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"]"),
    BODY("\xEF\xBB\xBF[\"after a BOM\"]"),
    BODY("[\"]\", \"[\", \"}{\", \",:\", \"\\\\\", \"\\\"]\"]"),
    BODY("[{\"text\": \"x\", \"tags\": [\"a\", \"b\"], \"n\": {\"m\": {\"o\": [1.5e3, -0, "
         "true]}}}]"),
    BODY("[{\"text\": \"raw \x01 control and caf\xc3\xa9\"}]"),
    BODY("[\"bad \xff UTF-8: core/ repairs it, the server refuses it\"]"),
    /* Rejected: outside the documents. */
    BODY("[\"a\", :\"b\"]"),
    BODY("[\"a\" : \"b\"]"),
    BODY("[\"a\":\"b\"]"),
    BODY("{\"documents\":[\"a\"] 5}"),
    BODY("{\"documents\":[\"a\"], 5}"),
    BODY("{\"documents\":[\"a\"] \"x\"}"),
    BODY("{\"documents\":[\"a\"]}}"),
    BODY("{\"documents\":[\"a\"]} x"),
    BODY("[\"a\"] [\"b\"]"),
    BODY("[\"a\"]]"),
    BODY(""),
    BODY("   \n"),
    BODY("\xEF\xBB"),
    BODY("\xEF\xBB\xBF"),
    BODY("\xEF\xBB["),
    BODY("[\"a\""),
    BODY("[\"a\","),
    BODY("[\"a"),
    BODY("[1"),
    BODY("[{\"text\": \"a\""),
    BODY("{\"documents\": [\"a\"]"),
    BODY("{\"documents\": [\"a\"],"),
    BODY("{\"documents\""),
    BODY("{\"documents\":"),
    BODY("{\"docu"),
    BODY("{"),
    BODY("{\"documents\": [\"a\", \"b\"], \"documents\": [\"c\"]}"),
    BODY("{\"documents\": [], \"docu\\u006dents\": [\"c\"]}"),
    BODY("{\"documents\": [\"a\"], \"x\": {\"nested\": [1, 2, {\"y\": \"z\"}]}}"),
    BODY("{\"x\": [1, [2, {\"a\": \"b\"}]], \"documents\": [\"a\"]}"),
    BODY("{\"x\": 1, \"documents\": [\"a\"]}"),
    BODY("{\"docu\\u006dent\": []}"),
    BODY("{\"documents\\u0020\": [\"a\"]}"),
    BODY("{\"documents\": \"a\"}"),
    BODY("{\"documents\": {\"text\": \"a\"}}"),
    BODY("{\"documents\": null}"),
    BODY("{}"),
    BODY("{ }"),
    BODY("[\"a\",]"),
    BODY("[,\"a\"]"),
    BODY("[,]"),
    BODY("[\"a\",,\"b\"]"),
    BODY("{\"documents\":[\"a\"],}"),
    BODY("{,\"documents\":[\"a\"]}"),
    BODY("{\"documents\" [\"a\"]}"),
    BODY("{\"documents\"::[\"a\"]}"),
    BODY("{documents: [\"a\"]}"),
    BODY("{\"documents\": [\"a\"]]"),
    BODY("[\"a\"}"),
    BODY("[{\"text\": \"a\"]]"),
    BODY("[{\"text\": \"a\"}}"),
    BODY("{\"docu\\u0000ments\": []}"),
    BODY("{\"do\0c\": []}"),
    BODY("{\"docu\\xments\": []}"),
    BODY("{\"docu\\u006\": []}"),
    BODY("{\"\\ud800\": []}"),
    BODY("{\"\\ud800\\u0041\": []}"),
    BODY("{\"\\udc00\": []}"),
    BODY("{\"a\\"),
    BODY("\"a\""),
    BODY("5"),
    BODY("null"),
    BODY("x"),
    BODY("]"),
    BODY("[]x"),
    /* Rejected: a document. */
    BODY("[1]"),
    BODY("[null]"),
    BODY("[[\"a\"]]"),
    BODY("[1 2]"),
    BODY("[tru]"),
    BODY("[01]"),
    BODY("[\"a\" \"b\"]"),
    BODY("[\"a\\u0000\"]"),
    BODY("[{\"text\": 5}]"),
    BODY("[{\"id\": 1}]"),
    BODY("[{\"text\": \"a\", \"text\": \"b\"}]"),
    BODY("[\"\\x\"]"),
    BODY("[\"a\", {\"text\": \"b\" \"id\": 1}]"),
    BODY("[\"\\ud800\"]"),
    BODY("[\"a\0"
         "b\"]"),
    BODY("[{\"text\": \"a\", \"id\": 1.5}]"),
};

/* A body whose one document nests depth arrays, as the root array's
 * element or in {"documents": [...]}: the scanner's depth limit must fall
 * at the same place streamed. */
static size_t deep_body(char *out, int object, int depth)
{
    size_t n = 0;
    n +=
        (size_t)sprintf(out + n, "%s{\"text\": \"a\", \"m\": ", object ? "{\"documents\": [" : "[");
    for (int i = 0; i < depth; i++)
        out[n++] = '[';
    for (int i = 0; i < depth; i++)
        out[n++] = ']';
    n += (size_t)sprintf(out + n, "}]%s", object ? "}" : "");
    return n;
}

TM_TEST(corpus_stream_json_agrees_with_whole)
{
    struct tm_corpus_limits lims[2];
    tm_corpus_limits_init(&lims[0]);
    tm_corpus_limits_init(&lims[1]);
    lims[1].max_documents = 2; /* and small documents */
    lims[1].max_document_bytes = 3;
    uint64_t rng = 20261207;
    int failed = 0;
    tm_api_init();
    for (int l = 0; l < 2; l++) {
        size_t n_bodies = sizeof(json_bodies) / sizeof(json_bodies[0]);
        for (size_t b = 0; b < n_bodies && failed < 10; b++) {
            char what[64];
            snprintf(what, sizeof(what), "limits %d body %zu", l, b);
            int accepted = 0;
            failed += check_body(t, what, json_bodies[b].s, json_bodies[b].len, &lims[l], 1, &rng,
                                 &accepted);
            if (l == 0 && accepted != (b < N_ACCEPTED))
                tm_test_fail(t, __FILE__, __LINE__, "%s: accepted %d", what, accepted);
        }
    }
    /* The depth limit, around TM_JSON_MAX_DEPTH in both shapes: some are
     * taken, some refused. */
    char *deep = malloc(2 * TM_JSON_MAX_DEPTH + 100);
    int taken = 0, refused = 0;
    for (int object = 0; object < 2; object++) {
        for (int d = TM_JSON_MAX_DEPTH - 4; d <= TM_JSON_MAX_DEPTH; d++) {
            char what[64];
            int accepted = 0;
            snprintf(what, sizeof(what), "depth %d%s", d, object ? " in an object" : "");
            size_t n = deep_body(deep, object, d);
            failed += check_body(t, what, deep, n, &lims[0], 0, &rng, &accepted);
            taken += accepted;
            refused += !accepted;
        }
    }
    free(deep);
    CHECK(taken > 0 && refused > 0);

    /* Seeded random edits of the accepted bodies: a byte deleted, inserted
     * or replaced, one to three times, among the bytes that make JSON's
     * structure and letters. */
    static const char alphabet[] = "[]{}:,\"\\ \nadeotux01";
    char *m = malloc(4096);
    int n_mutants = 0, n_accepted = 0;
    for (int i = 0; i < 600 && failed < 10; i++) {
        size_t b = rng_next(&rng) % N_ACCEPTED;
        size_t len = json_bodies[b].len;
        memcpy(m, json_bodies[b].s, len);
        int edits = 1 + (int)(rng_next(&rng) % 3);
        for (int k = 0; k < edits; k++) {
            size_t at = len ? rng_next(&rng) % (len + 1) : 0;
            char ch = alphabet[rng_next(&rng) % (sizeof(alphabet) - 1)];
            switch (rng_next(&rng) % 3) {
            case 0:
                if (at < len) {
                    memmove(m + at, m + at + 1, len - at - 1);
                    len--;
                }
                break;
            case 1:
                memmove(m + at + 1, m + at, len - at);
                m[at] = ch;
                len++;
                break;
            default:
                if (at < len)
                    m[at] = ch;
                break;
            }
        }
        char what[64];
        int accepted = 0;
        snprintf(what, sizeof(what), "mutant %d of body %zu", i, b);
        failed += check_body(t, what, m, len, &lims[i % 2], 0, &rng, &accepted);
        n_mutants++;
        n_accepted += accepted;
    }
    free(m);
    /* The edits must leave both kinds, or the comparison proves little. */
    CHECK(n_mutants == 600 && n_accepted > 20 && n_accepted < 580);
}
