/*
 * test_vectorize.c - tm_vectorize against scikit-learn on small corpora
 * (tests/fixtures/text/vectorize.txt, written by tests/fixtures/text/gen.py
 * from TfidfVectorizer / CountVectorizer: matrices, raw term frequencies and
 * document lengths, and the fitted transform of new documents, checked with
 * tm_vectorize_fixed), and the properties sklearn does not
 * have: identical results for any thread count, progress and cancellation,
 * caps, and clean failure at every allocation.
 */
#include <stdlib.h>

#include "core/alloc.h"
#include "core/text/vectorize.h"
#include "fixture.h"
#include "harness.h"
#include "testalloc.h"

static int same_vectorized(const struct tm_vectorized *a, const struct tm_vectorized *b)
{
    int64_t nnz = tm_csr_nnz(&a->matrix);
    return a->matrix.n_rows == b->matrix.n_rows && a->matrix.n_cols == b->matrix.n_cols &&
           nnz == tm_csr_nnz(&b->matrix) &&
           memcmp(a->matrix.indptr, b->matrix.indptr,
                  sizeof(int64_t) * (size_t)(a->matrix.n_rows + 1)) == 0 &&
           memcmp(a->matrix.indices, b->matrix.indices, sizeof(int32_t) * (size_t)nnz) == 0 &&
           memcmp(a->matrix.data, b->matrix.data, sizeof(double) * (size_t)nnz) == 0 &&
           a->vocab.n_terms == b->vocab.n_terms &&
           memcmp(a->vocab.offsets, b->vocab.offsets,
                  sizeof(int64_t) * (size_t)(a->vocab.n_terms + 1)) == 0 &&
           memcmp(a->vocab.pool, b->vocab.pool, (size_t)a->vocab.offsets[a->vocab.n_terms]) == 0 &&
           memcmp(a->df, b->df, sizeof(int64_t) * (size_t)a->vocab.n_terms) == 0;
}

struct fcase {
    char name[64];
    struct tm_vectorizer_params params;
    char **stop;
    struct tm_doc docs[16];
    int n_docs;
    struct tm_doc new_docs[16];
    int n_new;
};

static void parse_df(const char *v, struct tm_df_bound *b)
{
    b->value = strtod(v, (char **)&v);
    b->is_fraction = *v == 'f';
}

static void parse_params(const char *p, struct fcase *c)
{
    tm_vectorizer_params_init(&c->params);
    while (*p && *p != '\n') {
        while (*p == ' ')
            p++;
        if (*p == '\n' || !*p)
            break;
        const char *eq = strchr(p, '=');
        size_t klen = (size_t)(eq - p);
        const char *v = eq + 1;
        struct tm_vectorizer_params *q = &c->params;
#define KEY(k) (klen == strlen(k) && strncmp(p, k, klen) == 0)
        if (KEY("weighting"))
            q->weighting = strncmp(v, "count", 5) == 0 ? TM_WEIGHTING_COUNT : TM_WEIGHTING_TFIDF;
        else if (KEY("lowercase"))
            q->lowercase = atoi(v);
        else if (KEY("strip_accents"))
            q->strip_accents = strncmp(v, "unicode", 7) == 0 ? TM_ACCENTS_UNICODE
                               : strncmp(v, "ascii", 5) == 0 ? TM_ACCENTS_ASCII
                                                             : TM_ACCENTS_NONE;
        else if (KEY("stop_words") && strncmp(v, "english", 7) == 0)
            q->english_stop_words = 1;
        else if (KEY("stop_words")) {
            const char *s = v + 5; /* list: */
            c->stop = calloc(16, sizeof(char *));
            while (*s && *s != ' ' && *s != '\n' && q->n_stop_words < 16) {
                size_t l;
                c->stop[q->n_stop_words++] = tm_test_unhex(&s, " ,", &l);
            }
            q->stop_words = (const char *const *)c->stop;
        } else if (KEY("min_df"))
            parse_df(v, &q->min_df);
        else if (KEY("max_df"))
            parse_df(v, &q->max_df);
        else if (KEY("max_features"))
            q->max_features = atoll(v);
        else if (KEY("binary"))
            q->binary = atoi(v);
        else if (KEY("use_idf"))
            q->use_idf = atoi(v);
        else if (KEY("smooth_idf"))
            q->smooth_idf = atoi(v);
        else if (KEY("sublinear_tf"))
            q->sublinear_tf = atoi(v);
        else if (KEY("norm"))
            q->norm = strncmp(v, "l1", 2) == 0   ? TM_NORM_L1
                      : strncmp(v, "l2", 2) == 0 ? TM_NORM_L2
                                                 : TM_NORM_NONE;
        else if (KEY("strip"))
            q->strip = (unsigned)atoi(v);
#undef KEY
        p = v + strcspn(v, " \n");
    }
}

static void free_case(struct fcase *c)
{
    for (int i = 0; i < c->n_docs; i++)
        free((char *)c->docs[i].text);
    for (int i = 0; i < c->n_new; i++)
        free((char *)c->new_docs[i].text);
    for (size_t i = 0; c->stop && i < c->params.n_stop_words; i++)
        free(c->stop[i]);
    free(c->stop);
    memset(c, 0, sizeof(*c));
}

static int same_csr(const struct tm_csr *a, const struct tm_csr *b)
{
    int64_t nnz = tm_csr_nnz(a);
    return a->n_rows == b->n_rows && a->n_cols == b->n_cols && nnz == tm_csr_nnz(b) &&
           memcmp(a->indptr, b->indptr, sizeof(int64_t) * (size_t)(a->n_rows + 1)) == 0 &&
           memcmp(a->indices, b->indices, sizeof(int32_t) * (size_t)nnz) == 0 &&
           memcmp(a->data, b->data, sizeof(double) * (size_t)nnz) == 0;
}

/* Checks the fixture's "<tag><i> <col>:<value> ..." lines at p against m;
 * returns p past them. */
static const char *check_rows(struct tm_test_ctx *t, const char *name, const char *tag,
                              const struct tm_csr *m, const char *p)
{
    size_t tl = strlen(tag);
    while (strncmp(p, tag, tl) == 0) {
        char *e;
        long r = strtol(p + tl, &e, 10);
        p = e;
        int64_t start = r < m->n_rows ? m->indptr[r] : 0;
        int64_t k = start, end = r < m->n_rows ? m->indptr[r + 1] : 0;
        while (*p == ' ') {
            long col = strtol(p + 1, &e, 10);
            double val = strtod(e + 1, &e);
            p = e;
            if (k >= end || m->indices[k] != col) {
                tm_test_fail(t, __FILE__, __LINE__, "%s: %s%ld lacks column %ld", name, tag, r,
                             col);
            } else {
                CHECK_NEAR(m->data[k], val, 1e-12);
            }
            k++;
        }
        if (k != end)
            tm_test_fail(t, __FILE__, __LINE__, "%s: %s%ld has %lld entries, want %lld", name, tag,
                         r, (long long)(end - start), (long long)(k - start));
        p++;
    }
    return p;
}

/* Checks one fixture case whose expectations start at *pp; moves past "end". */
static void check_case(struct tm_test_ctx *t, struct fcase *c, const char **pp)
{
    const char *p = *pp;
    while (*p == '#') /* a note from the generator */
        p = strchr(p, '\n') + 1;
    struct tm_vectorized v1, v3;
    char err[TM_ERR_SIZE];
    c->params.n_threads = 1;
    tm_status st = tm_vectorize(&c->params, c->docs, c->n_docs, NULL, &v1, err);
    c->params.n_threads = 3;
    tm_status st3 = tm_vectorize(&c->params, c->docs, c->n_docs, NULL, &v3, NULL);
    CHECK_INT_EQ(st3, st);
    if (strncmp(p, "error ", 6) == 0) {
        p += 6;
        size_t nl = strcspn(p, " ");
        if (st == TM_OK || strncmp(tm_status_name(st), p, nl) != 0 ||
            nl != strlen(tm_status_name(st)))
            tm_test_fail(t, __FILE__, __LINE__, "%s: got %s, want error %.*s", c->name,
                         tm_status_name(st), (int)nl, p);
        p += nl;
        size_t ml;
        char *msg = tm_test_unhex(&p, " ,", &ml);
        if (st != TM_OK && !strstr(err, msg))
            tm_test_fail(t, __FILE__, __LINE__, "%s: message \"%s\" lacks \"%s\"", c->name, err,
                         msg);
        free(msg);
        tm_vectorized_release(&v1);
        tm_vectorized_release(&v3);
        *pp = strstr(p, "\nend\n") + 5;
        return;
    }
    if (st != TM_OK) {
        tm_test_fail(t, __FILE__, __LINE__, "%s: %s %s", c->name, tm_status_name(st), err);
        *pp = strstr(p, "\nend\n") + 5;
        return;
    }
    CHECK(same_vectorized(&v1, &v3));
    CHECK_INT_EQ(tm_csr_validate(&v1.matrix, NULL), TM_OK);
    long rows, cols;
    REQUIRE(sscanf(p, "shape %ld %ld", &rows, &cols) == 2);
    if (v1.matrix.n_rows != rows || v1.matrix.n_cols != cols)
        tm_test_fail(t, __FILE__, __LINE__, "%s: shape %lld x %lld, want %ld x %ld", c->name,
                     (long long)v1.matrix.n_rows, (long long)v1.matrix.n_cols, rows, cols);
    p = strchr(p, '\n') + 1;
    for (int64_t i = 0; strncmp(p, "term ", 5) == 0; i++) {
        p += 5;
        size_t tl, gl;
        char *term = tm_test_unhex(&p, " ,", &tl);
        long df = strtol(p, (char **)&p, 10);
        if (i < v1.vocab.n_terms) {
            const char *got = tm_vocab_term(&v1.vocab, i, &gl);
            if (gl != tl || memcmp(got, term, tl) != 0 || v1.df[i] != df)
                tm_test_fail(t, __FILE__, __LINE__,
                             "%s: term %lld is \"%.*s\" (df %lld), want \"%s\" (df %ld)", c->name,
                             (long long)i, (int)gl, got, (long long)v1.df[i], term, df);
        }
        free(term);
        p = strchr(p, '\n') + 1;
    }
    p = check_rows(t, c->name, "row ", &v1.matrix, p);
    /* tm_vectorize_fixed over the fitted vocabulary gives the same matrix */
    struct tm_csr fx;
    c->params.n_threads = 2;
    CHECK_INT_EQ(
        tm_vectorize_fixed(&c->params, &v1.vocab, v1.idf, c->docs, c->n_docs, NULL, &fx, err),
        TM_OK);
    CHECK(same_csr(&v1.matrix, &fx));
    tm_csr_release(&fx);
    REQUIRE(strncmp(p, "tfreq", 5) == 0);
    p += 5;
    for (int64_t i = 0; *p == ' '; i++) {
        double want = strtod(p, (char **)&p);
        if (i >= v1.vocab.n_terms || v1.term_frequency[i] != want)
            tm_test_fail(t, __FILE__, __LINE__, "%s: term_frequency[%lld] is %g, want %g", c->name,
                         (long long)i, i < v1.vocab.n_terms ? v1.term_frequency[i] : -1, want);
    }
    REQUIRE(strncmp(p, "\ndlen", 5) == 0);
    p += 5;
    for (int64_t i = 0; *p == ' '; i++) {
        long long want = strtoll(p, (char **)&p, 10);
        if (i >= c->n_docs || v1.doc_lengths[i] != want)
            tm_test_fail(t, __FILE__, __LINE__, "%s: doc_lengths[%lld] is %lld, want %lld", c->name,
                         (long long)i, i < c->n_docs ? (long long)v1.doc_lengths[i] : -1, want);
    }
    p++;
    while (strncmp(p, "newdoc ", 7) == 0 && c->n_new < 16) {
        p += 7;
        size_t len;
        c->new_docs[c->n_new].text = tm_test_unhex(&p, " ,", &len);
        c->new_docs[c->n_new++].len = len;
        p = strchr(p, '\n') + 1;
    }
    if (c->n_new) {
        c->params.n_threads = 1;
        CHECK_INT_EQ(tm_vectorize_fixed(&c->params, &v1.vocab, v1.idf, c->new_docs, c->n_new, NULL,
                                        &fx, err),
                     TM_OK);
        CHECK_INT_EQ(fx.n_rows, c->n_new);
        CHECK_INT_EQ(fx.n_cols, v1.vocab.n_terms);
        CHECK_INT_EQ(tm_csr_validate(&fx, NULL), TM_OK);
        p = check_rows(t, c->name, "trow ", &fx, p);
        tm_csr_release(&fx);
    }
    if (c->params.weighting == TM_WEIGHTING_TFIDF && c->params.use_idf)
        CHECK(v1.idf != NULL);
    else
        CHECK(v1.idf == NULL);
    tm_vectorized_release(&v1);
    tm_vectorized_release(&v3);
    REQUIRE(strncmp(p, "end\n", 4) == 0);
    *pp = p + 4;
}

TM_TEST(vectorize_matches_sklearn_fixture)
{
    char *text = tm_test_read_fixture("text/vectorize.txt", NULL);
    REQUIRE(text);
    int cases = 0;
    const char *p = text;
    while ((p = strstr(p, "\ncase ")) != NULL) {
        struct fcase c;
        memset(&c, 0, sizeof(c));
        p += 6;
        size_t nl = strcspn(p, "\n");
        snprintf(c.name, sizeof(c.name), "%.*s", (int)nl, p);
        p += nl + 1;
        REQUIRE(strncmp(p, "params", 6) == 0);
        parse_params(p + 6, &c);
        p = strchr(p, '\n') + 1;
        while (strncmp(p, "doc ", 4) == 0 && c.n_docs < 16) {
            p += 4;
            size_t len;
            char *d = tm_test_unhex(&p, " ,", &len);
            c.docs[c.n_docs].text = d;
            c.docs[c.n_docs++].len = len;
            p = strchr(p, '\n') + 1;
        }
        check_case(t, &c, &p);
        free_case(&c);
        cases++;
        p--; /* back onto the "\n" before the next case */
    }
    CHECK(cases >= 40);
    free(text);
}

/* A corpus with some of everything: Unicode, invalid bytes, empty docs. */
static const char *const mixed[] = {
    "From: a\n\nThe quick brown fox\r\njumps over the lazy dog\n\n--\nsig",
    "\xce\x95\xce\xbb\xce\xbb\xce\xb7\xce\xbd\xce\xb9\xce\xba\xce\xac caf\xc3\xa9 bad\xff bytes",
    "",
    "From: b\n\nIn article <x> y writes:\n> quoted fox\nreal dog text text text",
    "the and of",
    "x\xc2\xb2 \xd9\xa1\xd9\xa2 \xe4\xb8\xad\xe6\x96\x87 under_score don't",
    "fox fox fox dog dog cat",
    "no header here",
    "From: c\n\nlast one with fox",
};
#define N_MIXED (sizeof(mixed) / sizeof(mixed[0]))

static void mixed_docs(struct tm_doc *docs)
{
    for (size_t i = 0; i < N_MIXED; i++) {
        docs[i].text = mixed[i];
        docs[i].len = strlen(mixed[i]);
    }
}

TM_TEST(vectorize_same_result_for_any_thread_count)
{
    struct tm_doc docs[N_MIXED];
    mixed_docs(docs);
    struct tm_vectorizer_params p;
    tm_vectorizer_params_init(&p);
    p.strip = TM_STRIP_HEADERS | TM_STRIP_FOOTERS | TM_STRIP_QUOTES;
    p.english_stop_words = 1;
    p.sublinear_tf = 1;
    struct tm_vectorized ref, v;
    p.n_threads = 1;
    REQUIRE(tm_vectorize(&p, docs, N_MIXED, NULL, &ref, NULL) == TM_OK);
    int counts[] = {2, 7, 0, 64};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        p.n_threads = counts[i];
        REQUIRE(tm_vectorize(&p, docs, N_MIXED, NULL, &v, NULL) == TM_OK);
        CHECK(same_vectorized(&ref, &v));
        tm_vectorized_release(&v);
    }
    tm_vectorized_release(&ref);
}

struct progress_log {
    int calls;
    int cancel_at; /* 0: never */
    int bad;       /* fraction out of [0, 1] or unknown stage */
};

static int on_progress(void *ctx, const char *stage, double fraction)
{
    struct progress_log *log = ctx;
    log->calls++;
    if (fraction < 0 || fraction > 1 ||
        (strcmp(stage, "tokenize") && strcmp(stage, "vocabulary") && strcmp(stage, "weighting")))
        log->bad++;
    return log->cancel_at && log->calls >= log->cancel_at;
}

/* n documents of a few words each, in one malloc'd block (free docs[0].text). */
static struct tm_doc *many_docs(int n)
{
    struct tm_doc *docs = malloc(sizeof(*docs) * (size_t)n);
    char *buf = malloc((size_t)n * 32);
    for (int i = 0; i < n; i++) {
        int len = snprintf(buf + 32 * i, 32, "word%d common w%d", i % 97, i % 13);
        docs[i].text = buf + 32 * i;
        docs[i].len = (size_t)len;
    }
    return docs;
}

TM_TEST(vectorize_progress_and_cancellation)
{
    int n = 2000;
    struct tm_doc *docs = many_docs(n);
    struct tm_vectorizer_params p;
    tm_vectorizer_params_init(&p);
    p.n_threads = 2;
    struct progress_log log = {0};
    struct tm_progress prog = {on_progress, &log};
    struct tm_vectorized v;
    CHECK_INT_EQ(tm_vectorize(&p, docs, n, &prog, &v, NULL), TM_OK);
    CHECK(log.calls >= 4);
    CHECK_INT_EQ(log.bad, 0);
    tm_vectorized_release(&v);
    for (int at = 1; at <= 6; at++) {
        char err[TM_ERR_SIZE];
        log = (struct progress_log){.cancel_at = at};
        CHECK_INT_EQ(tm_vectorize(&p, docs, n, &prog, &v, err), TM_ECANCELLED);
        CHECK(v.matrix.indptr == NULL && v.vocab.pool == NULL);
        CHECK(strstr(err, "cancelled") != NULL);
    }
    free((char *)docs[0].text);
    free(docs);
}

TM_TEST(vectorize_errors)
{
    struct tm_doc docs[N_MIXED];
    mixed_docs(docs);
    struct tm_vectorizer_params p;
    struct tm_vectorized v;
    char err[TM_ERR_SIZE];
    tm_vectorizer_params_init(&p);
    CHECK_INT_EQ(tm_vectorize(&p, docs, 0, NULL, &v, err), TM_EEMPTY);
    p.max_terms = 5;
    CHECK_INT_EQ(tm_vectorize(&p, docs, N_MIXED, NULL, &v, err), TM_ETOOBIG);
    CHECK(strstr(err, "more than 5 distinct terms") != NULL);
    p.n_threads = 3;
    CHECK_INT_EQ(tm_vectorize(&p, docs, N_MIXED, NULL, &v, err), TM_ETOOBIG);
    tm_vectorizer_params_init(&p);
    p.min_df.value = -1;
    CHECK_INT_EQ(tm_vectorize(&p, docs, N_MIXED, NULL, &v, err), TM_EINVAL);
    CHECK(strstr(err, "min_df") != NULL);
    tm_vectorizer_params_init(&p);
    p.max_df.value = 1.5; /* a fraction above 1 */
    CHECK_INT_EQ(tm_vectorize(&p, docs, N_MIXED, NULL, &v, err), TM_EINVAL);
    tm_vectorizer_params_init(&p);
    p.max_features = -1;
    CHECK_INT_EQ(tm_vectorize(&p, docs, N_MIXED, NULL, &v, err), TM_EINVAL);
    /* every document empty */
    struct tm_doc empty[3] = {{"", 0}, {NULL, 0}, {"a", 1}};
    tm_vectorizer_params_init(&p);
    CHECK_INT_EQ(tm_vectorize(&p, empty, 3, NULL, &v, err), TM_ENOTERMS);
    CHECK(strstr(err, "empty vocabulary; perhaps the documents only contain stop words") != NULL);
}

TM_TEST(vectorize_fixed_errors_and_edges)
{
    struct tm_doc docs[N_MIXED];
    mixed_docs(docs);
    struct tm_vectorizer_params p;
    tm_vectorizer_params_init(&p);
    struct tm_vectorized v;
    struct tm_csr m;
    char err[TM_ERR_SIZE];
    REQUIRE(tm_vectorize(&p, docs, N_MIXED, NULL, &v, err) == TM_OK);
    CHECK_INT_EQ(tm_vectorize_fixed(&p, NULL, v.idf, docs, N_MIXED, NULL, &m, err), TM_EINVAL);
    CHECK(strstr(err, "vocabulary") != NULL);
    CHECK_INT_EQ(tm_vectorize_fixed(&p, &v.vocab, NULL, docs, N_MIXED, NULL, &m, err), TM_EINVAL);
    CHECK(strstr(err, "idf") != NULL);
    /* no documents: a 0-row matrix, as sklearn's transform([]) */
    CHECK_INT_EQ(tm_vectorize_fixed(&p, &v.vocab, v.idf, docs, 0, NULL, &m, err), TM_OK);
    CHECK_INT_EQ(m.n_rows, 0);
    CHECK_INT_EQ(m.n_cols, v.vocab.n_terms);
    CHECK_INT_EQ(tm_csr_nnz(&m), 0);
    tm_csr_release(&m);
    /* counts need no idf */
    p.weighting = TM_WEIGHTING_COUNT;
    CHECK_INT_EQ(tm_vectorize_fixed(&p, &v.vocab, NULL, docs, 2, NULL, &m, err), TM_OK);
    tm_csr_release(&m);
    /* a repeated term */
    char pool[] = "aabbaa";
    int64_t offs[] = {0, 2, 4, 6};
    struct tm_vocab dup = {3, pool, offs};
    CHECK_INT_EQ(tm_vectorize_fixed(&p, &dup, NULL, docs, 2, NULL, &m, err), TM_EINVAL);
    CHECK(strstr(err, "vocabulary: term 2 repeats term 0") != NULL);
    /* a vocabulary that shares nothing with the documents: empty rows */
    struct tm_vocab other = {2, pool, offs};
    p.max_terms = 3; /* caps the distinct tokens seen, known or not */
    CHECK_INT_EQ(tm_vectorize_fixed(&p, &other, NULL, docs, N_MIXED, NULL, &m, err), TM_ETOOBIG);
    p.max_terms = 0;
    CHECK_INT_EQ(tm_vectorize_fixed(&p, &other, NULL, docs, N_MIXED, NULL, &m, err), TM_OK);
    CHECK_INT_EQ(tm_csr_nnz(&m), 0);
    tm_csr_release(&m);
    tm_vectorized_release(&v);
}

TM_TEST(vectorize_one_megabyte_document)
{
    /* 1 MiB of "w0 w1 ... w999 " repeated, plus a second short document;
     * invalid bytes and NULs sprinkled in count as separators. */
    size_t cap = (size_t)1 << 20;
    char *big = malloc(cap);
    size_t n = 0;
    long reps = 0;
    while (n + 6000 < cap) {
        for (int i = 0; i < 1000; i++)
            n += (size_t)snprintf(big + n, cap - n, "w%d%c", i,
                                  i % 7 == 0    ? '\0'
                                  : i % 11 == 0 ? '\xff'
                                                : ' ');
        reps++;
    }
    memset(big + n, ' ', cap - n);
    struct tm_doc docs[2] = {{big, cap}, {"w1 w1 other", 11}};
    struct tm_vectorizer_params p;
    tm_vectorizer_params_init(&p);
    p.weighting = TM_WEIGHTING_COUNT;
    p.n_threads = 2;
    struct tm_vectorized v;
    REQUIRE(tm_vectorize(&p, docs, 2, NULL, &v, NULL) == TM_OK);
    CHECK_INT_EQ(v.matrix.n_cols, 1001);
    /* w0..w9 are tokens too ("w0" has two characters); only "other" is extra */
    size_t len;
    const char *last = tm_vocab_term(&v.vocab, v.vocab.n_terms - 1, &len);
    CHECK(len == 4 && memcmp(last, "w999", 4) == 0);
    CHECK_INT_EQ(v.matrix.indptr[1], v.matrix.n_cols - 1);
    for (int64_t k = 0; k < v.matrix.indptr[1]; k++)
        CHECK(v.matrix.data[k] == (double)reps);
    tm_vectorized_release(&v);

    /* one token of a mebibyte, twice (the two must meet in the hash table) */
    memset(big, 'x', cap);
    struct tm_doc one[3] = {{big, cap}, {"xx", 2}, {big, cap}};
    REQUIRE(tm_vectorize(&p, one, 3, NULL, &v, NULL) == TM_OK);
    CHECK_INT_EQ(v.vocab.n_terms, 2);
    CHECK_INT_EQ(v.vocab.offsets[2] - v.vocab.offsets[1], cap);
    CHECK_INT_EQ(v.df[1], 2);
    tm_vectorized_release(&v);
    free(big);
}

/* Fails allocation 1, 2, ... N of a small vectorization: each must report
 * TM_ENOMEM (never crash) and leave nothing allocated. */
static void fail_every_allocation(struct tm_test_ctx *t, int n_threads)
{
    struct tm_doc docs[N_MIXED];
    mixed_docs(docs);
    struct tm_vectorizer_params p;
    tm_vectorizer_params_init(&p);
    p.strip = TM_STRIP_HEADERS | TM_STRIP_FOOTERS | TM_STRIP_QUOTES;
    p.english_stop_words = 1;
    p.max_features = 5;
    p.strip_accents = TM_ACCENTS_UNICODE;
    p.n_threads = n_threads;
    int ok = 0;
    long n;
    for (n = 1; n < 10000 && !ok; n++) {
        struct tm_vectorized v;
        char err[TM_ERR_SIZE];
        tm_testalloc_fail_at(n);
        tm_status st = tm_vectorize(&p, docs, N_MIXED, NULL, &v, err);
        tm_testalloc_reset();
        if (st == TM_OK) {
            ok = 1;
            CHECK_INT_EQ(v.vocab.n_terms, 5);
        } else if (st != TM_ENOMEM) {
            tm_test_fail(t, __FILE__, __LINE__, "allocation %ld: %s (%s)", n, tm_status_name(st),
                         err);
        }
        tm_vectorized_release(&v);
        if (tm_testalloc_outstanding() != 0) {
            tm_test_fail(t, __FILE__, __LINE__, "allocation %ld: %ld blocks leaked", n,
                         tm_testalloc_outstanding());
            break;
        }
    }
    tm_alloc_set_methods(NULL);
    CHECK(ok);
    CHECK(n > 20);

    /* the same for tm_vectorize_fixed over the fitted vocabulary (fitted
     * with the plain allocator, and released with it after the loop) */
    struct tm_vectorized fit;
    REQUIRE(tm_vectorize(&p, docs, N_MIXED, NULL, &fit, NULL) == TM_OK);
    ok = 0;
    for (n = 1; n < 10000 && !ok; n++) {
        struct tm_csr m;
        char err[TM_ERR_SIZE];
        tm_testalloc_fail_at(n);
        tm_status st = tm_vectorize_fixed(&p, &fit.vocab, fit.idf, docs, N_MIXED, NULL, &m, err);
        tm_testalloc_reset();
        if (st == TM_OK) {
            ok = 1;
            CHECK(same_csr(&m, &fit.matrix));
        } else if (st != TM_ENOMEM) {
            tm_test_fail(t, __FILE__, __LINE__, "fixed, allocation %ld: %s (%s)", n,
                         tm_status_name(st), err);
        }
        tm_csr_release(&m);
        if (tm_testalloc_outstanding() != 0) {
            tm_test_fail(t, __FILE__, __LINE__, "fixed, allocation %ld: %ld blocks leaked", n,
                         tm_testalloc_outstanding());
            break;
        }
    }
    tm_alloc_set_methods(NULL);
    CHECK(ok);
    CHECK(n > 10);
    tm_vectorized_release(&fit);
}

TM_TEST(vectorize_fails_cleanly_at_every_allocation)
{
    fail_every_allocation(t, 1);
    fail_every_allocation(t, 3);
}

TM_TEST(vectorize_row_fill_paths_agree)
{
    /* 64 documents of 300 distinct terms each (shuffled, repeated): one
     * thread fills rows by column buckets, 64 threads have far more columns
     * than entries each and sort their rows instead. Both must agree. */
    enum { N = 64, TERMS = 300 };
    struct tm_doc docs[N];
    char *buf = malloc((size_t)N * TERMS * 24);
    size_t off = 0;
    for (int d = 0; d < N; d++) {
        docs[d].text = buf + off;
        for (int i = 0; i < TERMS; i++) {
            int j = (i * 7919 + d * 31) % TERMS; /* a permutation of 0..TERMS-1 */
            off += (size_t)sprintf(buf + off, "t%dx%d %s", d, j, i % 5 ? "" : "shared ");
        }
        docs[d].len = (size_t)(buf + off - docs[d].text);
    }
    struct tm_vectorizer_params p;
    tm_vectorizer_params_init(&p);
    p.sublinear_tf = 1;
    struct tm_vectorized a, b;
    p.n_threads = 1;
    REQUIRE(tm_vectorize(&p, docs, N, NULL, &a, NULL) == TM_OK);
    p.n_threads = N;
    REQUIRE(tm_vectorize(&p, docs, N, NULL, &b, NULL) == TM_OK);
    CHECK_INT_EQ(a.matrix.n_cols, N * TERMS + 1);
    CHECK(same_vectorized(&a, &b));
    CHECK_INT_EQ(tm_csr_validate(&b.matrix, NULL), TM_OK);
    tm_vectorized_release(&a);
    tm_vectorized_release(&b);
    free(buf);
}
