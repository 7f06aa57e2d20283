/*
 * test_exports.c - api/exports.h's CSV files, read back by an RFC 4180
 * reader of the test's own: quoting round-trips (commas, quotes, line
 * breaks, any UTF-8), numbers read back exactly, topic-terms.csv holds every
 * word of the result's topics in order, and document-topics.csv streams
 * every row of thousands of documents through a page at a time in bounded
 * memory (pages read, blocks outstanding, text buffered), failing visibly
 * when a page cannot be read. exports.c is included to reach its state.
 */
#include "api/exports.c"

#include <math.h>

#include "csvread.h"
#include "harness.h"
#include "testalloc.h"

struct rows {
    struct tm_csvrow rows[16];
    int n;
};

static int collect_row(void *ctx, const struct tm_csvrow *r)
{
    struct rows *c = ctx;
    if (c->n == 16)
        return -1;
    c->rows[c->n++] = *r;
    return 0;
}

TM_TEST(exports_csv_field_quotes_only_what_it_must)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "plain"},
        {"", ""},
        {"naïve 日本語 ✓", "naïve 日本語 ✓"},
        {"a,b", "\"a,b\""},
        {"say \"hi\"", "\"say \"\"hi\"\"\""},
        {"\"", "\"\"\"\""},
        {"two\nlines", "\"two\nlines\""},
        {"cr\rlf", "\"cr\rlf\""},
        {" spaced ", " spaced "},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tm_jbuf b;
        tm_jbuf_init(&b, 0);
        tm_csv_field(&b, cases[i].in, strlen(cases[i].in));
        size_t len;
        tm_status st;
        char *s = tm_jbuf_detach(&b, &len, &st);
        REQUIRE(s);
        CHECK_STR_EQ(s, cases[i].out);
        /* and it reads back as one field */
        char *line = malloc(len + 3);
        memcpy(line, s, len);
        memcpy(line + len, "\r\n", 3);
        struct rows c = {.n = 0};
        CHECK_INT_EQ(tm_csvread(line, len + 2, collect_row, &c), 1);
        CHECK_INT_EQ(c.rows[0].n, 1);
        CHECK_STR_EQ(c.rows[0].f[0], cases[i].in);
        free(line);
        tm_free(s);
    }
}

TM_TEST(exports_csv_double_reads_back)
{
    static const double v[] = {0.0,   -0.0, 0.1, 1.0 / 3, -2.5e-300, 1e300, 123456789.123456789,
                               5e-324};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        struct tm_jbuf b;
        tm_jbuf_init(&b, 0);
        tm_csv_double(&b, v[i]);
        size_t len;
        tm_status st;
        char *s = tm_jbuf_detach(&b, &len, &st);
        REQUIRE(s);
        CHECK(strtod(s, NULL) == v[i]);
        tm_free(s);
    }
    static const struct {
        double v;
        const char *text;
    } odd[] = {{NAN, "nan"}, {INFINITY, "inf"}, {-INFINITY, "-inf"}};
    for (size_t i = 0; i < 3; i++) {
        struct tm_jbuf b;
        tm_jbuf_init(&b, 0);
        tm_csv_double(&b, odd[i].v);
        tm_status st;
        char *s = tm_jbuf_detach(&b, NULL, &st);
        REQUIRE(s);
        CHECK_STR_EQ(s, odd[i].text);
        tm_free(s);
    }
}

/* ---------------------------------------------------------------------- */
/* topic-terms.csv */

/* A result as api/result.c writes one, with terms that need quoting. */
static const char result_json[] =
    "{\"n_documents\":4,\"n_features\":9,\"method\":\"nmf\",\"n_topics\":2,\"topics\":["
    "{\"index\":0,\"words\":[{\"term\":\"a,b\",\"index\":3,\"weight\":0.30000000000000004},"
    "{\"term\":\"say \\\"hi\\\"\",\"index\":1,\"weight\":0.25},"
    "{\"term\":\"two\\nlines\",\"index\":7,\"weight\":1e-310}]},"
    "{\"index\":1,\"words\":[{\"term\":\"na\\u00efve \xe6\x97\xa5\xe6\x9c\xac\",\"index\":0,"
    "\"weight\":-1.5},{\"term\":\"plain\",\"index\":2,\"weight\":2}]}],"
    "\"reconstruction_error\":1.25,\"n_iter\":10}";

TM_TEST(exports_topic_terms_round_trip)
{
    tm_api_init();
    char *csv = NULL;
    size_t len = 0;
    struct tm_api_error e;
    REQUIRE(tm_export_topic_terms(result_json, strlen(result_json), &csv, &len, &e) == TM_OK);
    CHECK_INT_EQ(len, strlen(csv));
    CHECK(!strncmp(csv, "topic,term,weight\r\n", 19));
    struct rows c = {.n = 0};
    REQUIRE(tm_csvread(csv, len, collect_row, &c) == 6);
    static const char *const want[6][3] = {
        {"topic", "term", "weight"}, {"0", "a,b", "0.30000000000000004"},
        {"0", "say \"hi\"", "0.25"}, {"0", "two\nlines", "1e-310"},
        {"1", "naïve 日本", "-1.5"}, {"1", "plain", "2"},
    };
    for (int i = 0; i < 6; i++) {
        CHECK_INT_EQ(c.rows[i].n, 3);
        for (int f = 0; f < 3; f++)
            CHECK_STR_EQ(c.rows[i].f[f], want[i][f]);
    }
    tm_free(csv);
}

TM_TEST(exports_topic_terms_without_vocabulary_uses_columns)
{
    tm_api_init();
    static const char json[] = "{\"topics\":[{\"index\":0,\"words\":[{\"index\":42,\"weight\":1.5},"
                               "{\"index\":7,\"weight\":0.5}]}]}";
    char *csv = NULL;
    size_t len = 0;
    struct tm_api_error e;
    REQUIRE(tm_export_topic_terms(json, strlen(json), &csv, &len, &e) == TM_OK);
    CHECK_STR_EQ(csv, "topic,term,weight\r\n0,42,1.5\r\n0,7,0.5\r\n");
    tm_free(csv);
}

TM_TEST(exports_topic_terms_refuses_what_is_no_result)
{
    tm_api_init();
    static const char *const bad[] = {"[1,2]", "{\"n_topics\":2}", "{\"topics\":[{\"words\":[]}]}",
                                      "{\"topics\":[{\"index\":0,\"words\":[{\"term\":\"x\"}]}]}",
                                      "{\"topics\":"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *csv = (char *)1;
        size_t len = 1;
        struct tm_api_error e;
        CHECK_INT_EQ(tm_export_topic_terms(bad[i], strlen(bad[i]), &csv, &len, &e), TM_EPARSE);
        CHECK(csv == NULL && len == 0 && e.message[0]);
    }
}

TM_TEST(exports_topic_terms_allocation_failures_fail_cleanly)
{
    tm_api_init();
    for (long n = 1; n < 10000; n++) {
        char *csv = NULL;
        size_t len;
        struct tm_api_error e;
        tm_testalloc_fail_at(n);
        tm_status st = tm_export_topic_terms(result_json, strlen(result_json), &csv, &len, &e);
        tm_free(csv);
        tm_testalloc_reset();
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (st == TM_OK)
            break;
        CHECK_INT_EQ(st, TM_ENOMEM);
    }
    tm_alloc_set_methods(NULL);
}

/* ---------------------------------------------------------------------- */
/* document-topics.csv over a pager of the test's own. */

struct pager {
    int64_t n_docs, k;
    int ids;          /* 1: documents have ids (every fourth has none) */
    int calls;        /* pages asked for */
    int fail_at;      /* this call fails (TM_EIO); 0: none */
    int reshape_at;   /* this call answers another k; 0: none */
    long max_blocks;  /* tm_testalloc_outstanding() at its most, seen per call */
    size_t max_text;  /* the stream's buffered text at its most */
    int64_t max_rows; /* the most rows a call asked for */
};

static double weight(int64_t i, int64_t t)
{
    /* Values whose shortest form needs 1 to 17 digits, signs, tiny ones. */
    double v = (double)(i * 31 + t * 7 + 1) / 7.0 * pow(10.0, (double)((i + t) % 9) - 4);
    return (i + t) % 5 == 0 ? -v : (i + t) % 11 == 0 ? 0.0 : v;
}

static void doc_id(int64_t i, char *out, size_t size)
{
    switch (i % 4) {
    case 1:
        snprintf(out, size, "doc,%lld", (long long)i);
        break;
    case 2:
        snprintf(out, size, "say \"%lld\"", (long long)i);
        break;
    case 3:
        snprintf(out, size, "l\xc3\xadnea\r\n%lld \xe2\x9c\x93", (long long)i);
        break;
    default:
        out[0] = 0; /* none: the index */
    }
}

static tm_status fake_page(void *ctx, int64_t offset, int64_t limit, double **w, char ***ids,
                           int64_t *n, int64_t *k, int64_t *total, char *err)
{
    struct pager *p = ctx;
    p->calls++;
    *w = NULL;
    *ids = NULL;
    if (p->fail_at == p->calls)
        return tm_errf(err, TM_EIO, "the store went away");
    *k = p->reshape_at == p->calls ? p->k + 1 : p->k;
    *total = p->n_docs;
    *n = offset < p->n_docs ? (p->n_docs - offset < limit ? p->n_docs - offset : limit) : 0;
    if (limit > p->max_rows)
        p->max_rows = limit;
    *w = tm_mallocarray((size_t)(*n ? *n * *k : 1), sizeof(double));
    if (!*w)
        return tm_errf(err, TM_ENOMEM, "page");
    for (int64_t i = 0; i < *n; i++)
        for (int64_t t = 0; t < *k; t++)
            (*w)[i * *k + t] = weight(offset + i, t);
    if (!p->ids || !*n)
        return TM_OK;
    tm_status st = (*ids = tm_calloc((size_t)*n, sizeof(char *))) ? TM_OK : TM_ENOMEM;
    for (int64_t i = 0; !st && i < *n; i++) {
        char id[64];
        doc_id(offset + i, id, sizeof(id));
        if (id[0] && !((*ids)[i] = tm_strndup(id, strlen(id))))
            st = TM_ENOMEM;
    }
    if (st) { /* nothing is left owned */
        for (int64_t i = 0; *ids && i < *n; i++)
            tm_free((*ids)[i]);
        tm_free(*ids);
        tm_free(*w);
        *ids = NULL;
        *w = NULL;
        return tm_errf(err, st, "page ids");
    }
    return TM_OK;
}

/* Checks each row against the pager's documents, in order. */
struct check {
    struct tm_test_ctx *t;
    const struct pager *p;
    int64_t row; /* rows seen, the header included */
    int bad;
};

static int check_row(void *ctx, const struct tm_csvrow *r)
{
    struct check *c = ctx;
    int64_t at = c->row++;
    if (at == 0) {
        if (r->n != 3 || strcmp(r->f[0], "document_id") || strcmp(r->f[1], "topic") ||
            strcmp(r->f[2], "weight"))
            c->bad++;
        return 0;
    }
    int64_t i = (at - 1) / c->p->k, t = (at - 1) % c->p->k;
    char id[64];
    if (c->p->ids)
        doc_id(i, id, sizeof(id));
    else
        id[0] = 0;
    if (!id[0])
        snprintf(id, sizeof(id), "%lld", (long long)i);
    char topic[24];
    snprintf(topic, sizeof(topic), "%lld", (long long)t);
    char *end;
    double v = strtod(r->f[2], &end);
    if (r->n != 3 || strcmp(r->f[0], id) || strcmp(r->f[1], topic) || *end || v != weight(i, t) ||
        signbit(v) != signbit(weight(i, t))) {
        if (c->bad++ < 3)
            tm_test_fail(c->t, __FILE__, __LINE__, "row %lld: %s,%s,%s", (long long)at, r->f[0],
                         r->f[1], r->f[2]);
    }
    return 0;
}

/* Streams the whole CSV through reads of at most chunk bytes into *text
 * (malloc'ed, *len bytes), noting the most blocks outstanding and text
 * buffered after each read; the stream's final status. */
static tm_status stream_all(struct pager *p, int64_t page_rows, size_t chunk, char **text,
                            size_t *len, int64_t *pages)
{
    char err[TM_ERR_SIZE] = "";
    struct tm_export_dt *s = NULL;
    *text = NULL;
    *len = 0;
    tm_status st = tm_export_dt_new(&s, fake_page, p, page_rows, err);
    if (st)
        return st;
    size_t cap = 1 << 16;
    *text = malloc(cap);
    char *buf = malloc(chunk);
    for (;;) {
        size_t got = 0;
        st = tm_export_dt_read(s, buf, chunk, &got, err);
        long blocks = tm_testalloc_outstanding();
        p->max_blocks = blocks > p->max_blocks ? blocks : p->max_blocks;
        p->max_text = s->text.alloc > p->max_text ? s->text.alloc : p->max_text;
        if (st || !got)
            break;
        while (*len + got > cap)
            *text = realloc(*text, cap *= 2);
        memcpy(*text + *len, buf, got);
        *len += got;
    }
    *pages = tm_export_dt_pages(s);
    free(buf);
    tm_export_dt_free(s);
    return st;
}

TM_TEST(exports_doc_topics_every_row_any_read_size)
{
    static const size_t chunks[] = {1, 7, 4096, 1 << 20};
    for (int ids = 0; ids < 2; ids++)
        for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
            struct pager p = {.n_docs = c == 0 ? 300 : 3000, .k = 3, .ids = ids};
            char *text;
            size_t len;
            int64_t pages;
            REQUIRE(stream_all(&p, 256 /* the store's TM_STORE_DT_CHUNK */, chunks[c], &text, &len,
                               &pages) == TM_OK);
            struct check ck = {t, &p, 0, 0};
            CHECK_INT_EQ(tm_csvread(text, len, check_row, &ck), 1 + p.n_docs * p.k);
            CHECK_INT_EQ(ck.bad, 0);
            /* One read of each page, in pages of the rows asked for. */
            int64_t want_pages = (p.n_docs + 255) / 256;
            CHECK_INT_EQ(pages, want_pages);
            CHECK_INT_EQ(p.calls, want_pages);
            CHECK_INT_EQ(p.max_rows, 256);
            free(text);
        }
}

/* Memory does not grow with the job: 600 and 6000 documents (3 and 24
 * pages) peak at the same number of blocks (one page's) and the same text
 * buffered (about one read's). */
TM_TEST(exports_doc_topics_memory_is_bounded)
{
    long blocks[2];
    size_t text_max[2];
    static const int64_t docs[2] = {600, 6000};
    for (int r = 0; r < 2; r++) {
        struct pager p = {.n_docs = docs[r], .k = 20, .ids = 1};
        char *text;
        size_t len;
        int64_t pages;
        tm_testalloc_fail_at(0); /* count, never fail */
        tm_status st = stream_all(&p, 256, 16384, &text, &len, &pages);
        tm_testalloc_reset();
        CHECK_INT_EQ(st, TM_OK);
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        struct check ck = {t, &p, 0, 0};
        CHECK_INT_EQ(tm_csvread(text, len, check_row, &ck), 1 + docs[r] * 20);
        CHECK_INT_EQ(ck.bad, 0);
        blocks[r] = p.max_blocks;
        text_max[r] = p.max_text;
        free(text);
    }
    tm_alloc_set_methods(NULL);
    /* the stream, its text, one page: weights, the ids array, 192 ids */
    CHECK(blocks[0] > 0 && blocks[0] <= 3 + 2 + 256);
    CHECK_INT_EQ(blocks[1], blocks[0]);
    /* a read's 16 KiB and one document's 20 rows, doubled by the growth */
    CHECK(text_max[0] <= 2 * (16384 + 20 * 64));
    CHECK_INT_EQ(text_max[1], text_max[0]);
}

TM_TEST(exports_doc_topics_failures_are_visible)
{
    char *text;
    size_t len;
    int64_t pages;
    /* No weights at all: known before a byte is sent. */
    struct pager none = {.n_docs = 10, .k = 2, .fail_at = 1};
    CHECK_INT_EQ(stream_all(&none, 256, 4096, &text, &len, &pages), TM_EIO);
    CHECK(text == NULL);
    /* A later page that cannot be read ends the stream with its status. */
    struct pager late = {.n_docs = 2000, .k = 2, .fail_at = 3};
    CHECK_INT_EQ(stream_all(&late, 256, 4096, &text, &len, &pages), TM_EIO);
    CHECK(len < 1 + 2000 * 2 * 10);
    free(text);
    /* Weights of another shape mid-way (a job deleted, another made). */
    struct pager reshaped = {.n_docs = 2000, .k = 2, .reshape_at = 2};
    CHECK_INT_EQ(stream_all(&reshaped, 256, 4096, &text, &len, &pages), TM_EIO);
    free(text);
    /* No documents: the header alone. */
    struct pager empty = {.n_docs = 0, .k = 2};
    CHECK_INT_EQ(stream_all(&empty, 256, 4096, &text, &len, &pages), TM_OK);
    CHECK_INT_EQ(len, strlen(TM_EXPORT_DOC_TOPICS_HEADER));
    CHECK(!memcmp(text, TM_EXPORT_DOC_TOPICS_HEADER, len));
    free(text);
}

TM_TEST(exports_doc_topics_allocation_failures_fail_cleanly)
{
    for (long n = 1; n < 100000; n++) {
        struct pager p = {.n_docs = 600, .k = 2, .ids = 1};
        char *text;
        size_t len;
        int64_t pages;
        tm_testalloc_fail_at(n);
        tm_status st = stream_all(&p, 256, 4096, &text, &len, &pages);
        tm_testalloc_reset();
        free(text);
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (st == TM_OK)
            break;
        CHECK_INT_EQ(st, TM_ENOMEM);
    }
    tm_alloc_set_methods(NULL);
}
