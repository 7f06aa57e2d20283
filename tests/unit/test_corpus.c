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
 * with the body's byte offset, as tm_corpus_parse does, but no line. */
TM_TEST(corpus_stream_json_errors)
{
    static const struct {
        const char *in;
        tm_status status;
        const char *field;
        int64_t offset;
        const char *message;
    } cases[] = {
        {"[\"a\", {\"text\": 5}]", TM_EINVAL, "documents[1].text", 15, "must be a string"},
        {"[\"a\", 5]", TM_EINVAL, "documents[1]", 6,
         "must be a string or an object with a \"text\" string"},
        {"{\"documents\":[\"a\",\"b\\u0000\"]}", TM_EINVAL, "documents[1]", 18,
         "contains \\u0000, which documents cannot hold"},
        {"[\"a\",\n {\"text\": \"b\" \"id\": 1}]", TM_EPARSE, "documents[1]", 20,
         "malformed JSON: expected ',' or '}'"},
        {"[\"a\", \"0123456789ab\"]", TM_ETOOBIG, "documents[1]", 6,
         "document of 12 bytes exceeds the limit of 10 bytes"},
        {"[\"a\" \"b\"]", TM_EPARSE, "", 5, "expected ',' or ']' between documents (byte 5)"},
        {"\xEF\xBB\xBF[\"a\"]", TM_EPARSE, "", 0, "expected a JSON array or object (byte 0)"},
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
            e.offset != cases[i].offset || strcmp(e.message, cases[i].message) || e.line)
            tm_test_fail(t, __FILE__, __LINE__, "case %zu: %s \"%s: %s\" at %lld line %lld", i,
                         tm_status_name(st), e.field, e.message, (long long)e.offset,
                         (long long)e.line);
        CHECK_INT_EQ(k.c.n_docs, cases[i].status == TM_EPARSE && i == 6 ? 0 : 1);
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
