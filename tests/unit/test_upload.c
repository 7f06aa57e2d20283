/* test_upload.c - server/upload.h against a SQLite store: JSON Lines, plain
 * lines and JSON (parsed whole, and split as it arrives past max_json_bytes)
 * at every chunk boundary, the format chosen late (multipart), appends,
 * batches, limits, and failed uploads leaving nothing behind. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "harness.h"
#include "server/upload.h"
#include "tmpstore.h"

static const struct tm_upload_limits default_limits = {
    .max_body_bytes = 1 << 20, .max_json_bytes = 1 << 20, .max_doc_bytes = 1 << 16};

/* Uploads body cut at cut (0: one piece) with the format given; on success
 * *out is the corpus as committed. Pieces are exact-size copies. */
static tm_status upload(struct tm_store *store, const char *target, enum tm_corpus_format f,
                        const struct tm_upload_limits *lim, const char *body, size_t len,
                        size_t cut, struct tm_corpus_record *out, struct tm_api_error *e)
{
    struct tm_upload *u;
    tm_api_error_clear(e);
    tm_status st = tm_upload_new(&u, store, target, NULL, f, lim, e);
    if (st != TM_OK)
        return st;
    size_t bounds[3] = {0, cut, len};
    for (int i = 0; i < 2 && st == TM_OK; i++) {
        size_t n = bounds[i + 1] - bounds[i];
        if (!n)
            continue;
        char *piece = malloc(n);
        memcpy(piece, body + bounds[i], n);
        st = tm_upload_feed(u, piece, n, e);
        free(piece);
    }
    if (st == TM_OK)
        st = tm_upload_finish(u, out, e);
    tm_upload_free(u);
    return st;
}

/* 1 when corpus id holds exactly the texts want[] (NULL-ended) with the ids
 * ids[] (NULL entries: none; ids itself NULL: no document has one). */
static int corpus_is(struct tm_test_ctx *t, struct tm_store *store, const char *id,
                     const char *const *want, const char *const *ids)
{
    struct tm_store_docs d;
    char err[TM_ERR_SIZE];
    if (store->m->corpus_load(store->ctx, id, &d, err) != TM_OK) {
        tm_test_fail(t, __FILE__, __LINE__, "load %s: %s", id, err);
        return 0;
    }
    int ok = 1;
    int64_t n = 0;
    while (want[n])
        n++;
    ok = d.n == n;
    for (int64_t i = 0; ok && i < n; i++) {
        size_t len = (size_t)(d.offsets[i + 1] - d.offsets[i]);
        ok = len == strlen(want[i]) && !memcmp(d.pool + d.offsets[i], want[i], len);
        const char *got = d.ids ? d.ids[i] : NULL;
        const char *exp = ids ? ids[i] : NULL;
        ok = ok && (got == NULL) == (exp == NULL) && (!got || !strcmp(got, exp));
    }
    tm_store_docs_release(&d);
    return ok;
}

/* Visible corpora in the store. */
static int n_corpora(struct tm_store *store)
{
    struct tm_corpus_record rec[16];
    int n = -1;
    char err[TM_ERR_SIZE];
    store->m->corpus_list(store->ctx, NULL, 0, 16, rec, &n, err);
    return n;
}

static const char *const want_texts[] = {"alpha", "be \"ta\" [x]", "\xc3\xa9t\xc3\xa9", "", NULL};
static const char *const want_ids[] = {"a", NULL, "7", NULL};

static const struct {
    enum tm_corpus_format f;
    const char *body;
    int split; /* JSON past max_json_bytes */
} bodies[] = {
    {TM_CORPUS_JSONL,
     "{\"id\":\"a\",\"text\":\"alpha\"}\r\n{\"text\":\"be \\\"ta\\\" [x]\"}\n\n"
     "{\"text\":\"\\u00e9t\\u00e9\",\"id\":7}\n{\"text\":\"\"}",
     0},
    {TM_CORPUS_JSON,
     "[{\"id\":\"a\",\"text\":\"alpha\"}, \"be \\\"ta\\\" [x]\",\n"
     "{\"id\":7,\"text\":\"\\u00e9t\\u00e9\"},\"\"]",
     0},
    {TM_CORPUS_JSON,
     "{\"documents\": [{\"id\":\"a\",\"text\":\"alpha\"}, \"be \\\"ta\\\" [x]\",\n"
     "{\"id\":7,\"text\":\"\\u00e9t\\u00e9\"},\"\"]}",
     1},
};

/* Every format, cut at every byte boundary, stores the same documents. */
TM_TEST(upload_every_split)
{
    struct tm_tmpstore ts;
    REQUIRE(tm_tmpstore_open(&ts, "upload") == 0);
    for (size_t b = 0; b < sizeof(bodies) / sizeof(bodies[0]); b++) {
        struct tm_upload_limits lim = default_limits;
        if (bodies[b].split)
            lim.max_json_bytes = 8;
        const char *body = bodies[b].body;
        size_t len = strlen(body);
        for (size_t cut = 0; cut < len; cut++) {
            struct tm_corpus_record c;
            struct tm_api_error e;
            tm_status st = upload(&ts.store, NULL, bodies[b].f, &lim, body, len, cut, &c, &e);
            if (st != TM_OK) {
                tm_test_fail(t, __FILE__, __LINE__, "body %zu cut %zu: %s", b, cut, e.message);
                continue;
            }
            CHECK_INT_EQ(c.n_documents, 4);
            CHECK_INT_EQ(c.bytes, 5 + 11 + 5);
            if (!corpus_is(t, &ts.store, c.id, want_texts, want_ids))
                tm_test_fail(t, __FILE__, __LINE__, "body %zu cut %zu: documents differ", b, cut);
        }
    }
    /* Plain lines: every line a document, ids none. */
    static const char *const lines[] = {"alpha", "", "be \"ta\"", "last", NULL};
    const char *text = "alpha\n\r\nbe \"ta\"\r\nlast";
    for (size_t cut = 0; cut < strlen(text); cut++) {
        struct tm_corpus_record c;
        struct tm_api_error e;
        REQUIRE(upload(&ts.store, NULL, TM_CORPUS_LINES, &default_limits, text, strlen(text), cut,
                       &c, &e) == TM_OK);
        if (!corpus_is(t, &ts.store, c.id, lines, NULL))
            tm_test_fail(t, __FILE__, __LINE__, "lines cut %zu: documents differ", cut);
    }
    tm_tmpstore_close(&ts);
}

/* The format chosen after the upload began (a multipart part's type). */
TM_TEST(upload_format_chosen_late)
{
    struct tm_tmpstore ts;
    struct tm_upload *u;
    struct tm_api_error e;
    struct tm_corpus_record c;
    REQUIRE(tm_tmpstore_open(&ts, "upload") == 0);
    REQUIRE(tm_upload_new(&u, &ts.store, NULL, NULL, TM_CORPUS_AUTO, &default_limits, &e) == TM_OK);
    CHECK_INT_EQ(tm_upload_feed(u, "x\n", 2, &e), TM_EINVAL);
    CHECK_STR_EQ(e.message, "no format chosen for the upload");
    CHECK_INT_EQ(tm_upload_finish(u, &c, &e), TM_EINVAL);
    CHECK_STR_EQ(e.message, "the upload holds no file");
    tm_upload_free(u);

    REQUIRE(tm_upload_new(&u, &ts.store, NULL, NULL, TM_CORPUS_AUTO, &default_limits, &e) == TM_OK);
    REQUIRE(tm_upload_set_format(u, TM_CORPUS_JSONL, &e) == TM_OK);
    CHECK_INT_EQ(tm_upload_feed(u, "{\"text\":\"one\"}\n{\"te", 19, &e), TM_OK);
    CHECK_INT_EQ(tm_upload_feed(u, "xt\":\"two\"}", 10, &e), TM_OK);
    REQUIRE(tm_upload_finish(u, &c, &e) == TM_OK);
    tm_upload_free(u);
    static const char *const two[] = {"one", "two", NULL};
    CHECK(corpus_is(t, &ts.store, c.id, two, NULL));
    tm_tmpstore_close(&ts);
}

/* An append lands in the target in one go; the staging corpus is gone. */
TM_TEST(upload_append)
{
    struct tm_tmpstore ts;
    struct tm_api_error e;
    struct tm_corpus_record c;
    REQUIRE(tm_tmpstore_open(&ts, "upload") == 0);
    int before = n_corpora(&ts.store);
    REQUIRE(upload(&ts.store, "c_1", TM_CORPUS_LINES, &default_limits, "a\nb\n", 4, 1, &c, &e) ==
            TM_OK);
    CHECK_STR_EQ(c.id, "c_1");
    CHECK_INT_EQ(c.n_documents, 2);
    const char *json = "[\"c\", {\"text\": \"d\", \"id\": \"x\"}]";
    struct tm_upload_limits lim = default_limits;
    lim.max_json_bytes = 4;
    REQUIRE(upload(&ts.store, "c_1", TM_CORPUS_JSON, &lim, json, strlen(json), 10, &c, &e) ==
            TM_OK);
    CHECK_INT_EQ(c.n_documents, 4);
    static const char *const all[] = {"a", "b", "c", "d", NULL};
    static const char *const ids[] = {NULL, NULL, NULL, "x"};
    CHECK(corpus_is(t, &ts.store, "c_1", all, ids));
    CHECK_INT_EQ(n_corpora(&ts.store), before);
    /* An unknown target: nothing created. */
    CHECK_INT_EQ(upload(&ts.store, "c_nope", TM_CORPUS_LINES, &default_limits, "a", 1, 0, &c, &e),
                 TM_ENOTFOUND);
    CHECK_INT_EQ(n_corpora(&ts.store), before);
    tm_tmpstore_close(&ts);
}

/* More documents than one batch holds: all stored, in order. */
TM_TEST(upload_batches)
{
    struct tm_tmpstore ts;
    struct tm_api_error e;
    struct tm_corpus_record c;
    REQUIRE(tm_tmpstore_open(&ts, "upload") == 0);
    int n = 10000;
    char *body = malloc((size_t)n * 8);
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(body + len, 8, "d%d\n", i);
    REQUIRE(upload(&ts.store, NULL, TM_CORPUS_LINES, &default_limits, body, len, len / 3, &c, &e) ==
            TM_OK);
    CHECK_INT_EQ(c.n_documents, n);
    struct tm_store_docs d;
    char err[TM_ERR_SIZE];
    REQUIRE(ts.store.m->corpus_load(ts.store.ctx, c.id, &d, err) == TM_OK);
    REQUIRE(d.n == n);
    for (int i = 0; i < n; i += 997) {
        char want[8];
        int wl = snprintf(want, sizeof(want), "d%d", i);
        CHECK(d.offsets[i + 1] - d.offsets[i] == wl &&
              !memcmp(d.pool + d.offsets[i], want, (size_t)wl));
    }
    tm_store_docs_release(&d);
    free(body);
    tm_tmpstore_close(&ts);
}

/* Limits and bad input: the status, the field naming the document, and no
 * corpus left behind. */
TM_TEST(upload_errors)
{
    static const struct {
        enum tm_corpus_format f;
        int64_t max_json; /* 0: default (parsed whole) */
        const char *body;
        tm_status status;
        const char *field;
        const char *message;
    } cases[] = {
        {TM_CORPUS_LINES, 0, "ok\n0123456789abcdefX\n", TM_ETOOBIG, "line 2",
         "document of 17 bytes exceeds the limit of 16 bytes"},
        {TM_CORPUS_LINES, 0, "ok\nbad \xc3\x28\n", TM_EPARSE, "line 2",
         "text is not valid UTF-8 (byte 4 of the document)"},
        {TM_CORPUS_JSONL, 0, "{\"text\":\"ok\"}\n{\"text\":\"0123456789abcdefX\"}", TM_ETOOBIG,
         "line 2: text", "document of 17 bytes exceeds the limit of 16 bytes"},
        {TM_CORPUS_JSONL, 0, "{\"text\":\"ok\"}\n{\"text\":5}\n", TM_EINVAL, "line 2: text",
         "must be a string"},
        {TM_CORPUS_JSONL, 0, "{\"text\":\"ok\",\"id\":\"\xff\"}\n", TM_EPARSE, "line 1",
         "id is not valid UTF-8"},
        {TM_CORPUS_JSON, 0, "[\"ok\", \"0123456789abcdefX\"]", TM_ETOOBIG, "documents[1]",
         "document of 17 bytes exceeds the limit of 16 bytes"},
        {TM_CORPUS_JSON, 8, "[\"ok\", \"0123456789abcdefX\"]", TM_ETOOBIG, "documents[1]",
         "document of 17 bytes exceeds the limit of 16 bytes"},
        {TM_CORPUS_JSON, 0, "[\"ok\", {\"text\": 5}]", TM_EINVAL, "documents[1].text",
         "must be a string"},
        {TM_CORPUS_JSON, 8, "[\"ok\", {\"text\": 5}]", TM_EINVAL, "documents[1].text",
         "must be a string"},
        {TM_CORPUS_JSON, 0, "[\"ok\", \"bad \xff\"]", TM_EPARSE, "documents[1]",
         "text is not valid UTF-8 (byte 4 of the document)"},
        {TM_CORPUS_JSON, 8, "[\"ok\", \"bad \xff\"]", TM_EPARSE, "documents[1]",
         "text is not valid UTF-8 (byte 4 of the document)"},
        /* Parsed whole or split, the same error. */
        {TM_CORPUS_JSON, 0, "[\"ok\" \"no comma\"]", TM_EPARSE, "",
         "malformed JSON: expected ',' or ']'"},
        {TM_CORPUS_JSON, 8, "[\"ok\" \"no comma\"]", TM_EPARSE, "",
         "malformed JSON: expected ',' or ']'"},
        {TM_CORPUS_JSON, 0, "{\"docs\": []}", TM_EINVAL, "docs",
         "unknown field (expected only \"documents\")"},
        {TM_CORPUS_JSON, 8, "{\"docs\": []}", TM_EINVAL, "docs",
         "unknown field (expected only \"documents\")"},
        {TM_CORPUS_JSON, 0, "{\"documents\": [\"a\"]} 5", TM_EPARSE, "",
         "malformed JSON: unexpected data after the JSON value"},
        {TM_CORPUS_JSON, 8, "{\"documents\": [\"a\"]} 5", TM_EPARSE, "",
         "malformed JSON: unexpected data after the JSON value"},
        {TM_CORPUS_JSON, 8, "[\"ok\", 1]", TM_EINVAL, "documents[1]",
         "must be a string or an object with a \"text\" string"},
    };
    struct tm_tmpstore ts;
    REQUIRE(tm_tmpstore_open(&ts, "upload") == 0);
    int before = n_corpora(&ts.store);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tm_upload_limits lim = default_limits;
        lim.max_doc_bytes = 16;
        if (cases[i].max_json)
            lim.max_json_bytes = cases[i].max_json;
        struct tm_corpus_record c;
        struct tm_api_error e;
        const char *body = cases[i].body;
        for (size_t cut = 0; cut < strlen(body); cut += 5) {
            tm_status st =
                upload(&ts.store, NULL, cases[i].f, &lim, body, strlen(body), cut, &c, &e);
            if (st != cases[i].status || strcmp(e.field, cases[i].field) ||
                strcmp(e.message, cases[i].message))
                tm_test_fail(t, __FILE__, __LINE__, "case %zu cut %zu: %s \"%s: %s\"", i, cut,
                             tm_status_name(st), e.field, e.message);
        }
    }
    CHECK_INT_EQ(n_corpora(&ts.store), before);

    /* The body cap, counted over every feed whatever the format. */
    struct tm_upload_limits lim = default_limits;
    lim.max_body_bytes = 10;
    for (int f = TM_CORPUS_JSONL; f <= TM_CORPUS_LINES; f++) {
        struct tm_upload *u;
        struct tm_api_error e;
        REQUIRE(tm_upload_new(&u, &ts.store, NULL, NULL, (enum tm_corpus_format)f, &lim, &e) ==
                TM_OK);
        CHECK_INT_EQ(tm_upload_feed(u, "[\"123", 5, &e), TM_OK);
        CHECK_INT_EQ(tm_upload_feed(u, "45\"", 3, &e), TM_OK);
        CHECK_INT_EQ(tm_upload_feed(u, ",\"6\"", 4, &e), TM_ETOOBIG);
        CHECK_STR_EQ(e.message, "the body exceeds the limit of 10 bytes");
        tm_upload_free(u);
    }
    CHECK_INT_EQ(n_corpora(&ts.store), before);
    tm_tmpstore_close(&ts);
}
