/*
 * test_coherence.c - core/text/coherence against gensim's CoherenceModel
 * (tests/fixtures/text/coherence.json, written once by coherence_gen.py with
 * gensim 4.4.0), the window counts against a naive replay of gensim's
 * sliding window, and model.coherence in the spec and the result.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "api/result.h"
#include "api/spec.h"
#include "core/text/coherence.c" /* the statics: count(), struct topics */
#include "fixture.h"
#include "harness.h"

struct fixture {
    cJSON *root;
    struct tm_doc *docs;
    int64_t n_docs;
    struct tm_vocab vocab;
    int64_t *top; /* n_topics x n_top, -1 padded */
    int64_t n_topics, n_top;
    struct tm_vectorizer_params vp;
};

static void fixture_release(struct fixture *f)
{
    cJSON_Delete(f->root);
    free(f->docs);
    free(f->vocab.pool);
    free(f->vocab.offsets);
    free(f->top);
}

static int fixture_load(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    char *text = tm_test_read_fixture("text/coherence.json", NULL);
    if (!text)
        return 0;
    f->root = cJSON_Parse(text);
    free(text);
    if (!f->root)
        return 0;
    const cJSON *docs = cJSON_GetObjectItem(f->root, "documents");
    f->n_docs = cJSON_GetArraySize(docs);
    f->docs = calloc((size_t)f->n_docs, sizeof(*f->docs));
    int64_t i = 0;
    for (const cJSON *d = docs->child; d; d = d->next, i++) {
        f->docs[i].text = d->valuestring;
        f->docs[i].len = strlen(d->valuestring);
    }
    const cJSON *vocab = cJSON_GetObjectItem(f->root, "vocabulary");
    f->vocab.n_terms = cJSON_GetArraySize(vocab);
    f->vocab.offsets = calloc((size_t)f->vocab.n_terms + 1, sizeof(int64_t));
    size_t bytes = 0;
    for (const cJSON *v = vocab->child; v; v = v->next)
        bytes += strlen(v->valuestring);
    f->vocab.pool = malloc(bytes + 1);
    i = 0;
    for (const cJSON *v = vocab->child; v; v = v->next, i++) {
        size_t n = strlen(v->valuestring);
        memcpy(f->vocab.pool + f->vocab.offsets[i], v->valuestring, n);
        f->vocab.offsets[i + 1] = f->vocab.offsets[i] + (int64_t)n;
    }
    const cJSON *topics = cJSON_GetObjectItem(f->root, "topics");
    f->n_topics = cJSON_GetArraySize(topics);
    f->n_top = (int64_t)cJSON_GetObjectItem(f->root, "n_top")->valuedouble;
    f->top = malloc((size_t)(f->n_topics * f->n_top) * sizeof(int64_t));
    int64_t t = 0;
    for (const cJSON *tp = topics->child; tp; tp = tp->next, t++) {
        int64_t j = 0;
        for (const cJSON *w = tp->child; w; w = w->next, j++) {
            int64_t found = -1;
            for (int64_t k = 0; k < f->vocab.n_terms && found < 0; k++) {
                size_t len;
                const char *s = tm_vocab_term(&f->vocab, k, &len);
                if (len == strlen(w->valuestring) && !memcmp(s, w->valuestring, len))
                    found = k;
            }
            f->top[t * f->n_top + j] = found;
        }
        for (; j < f->n_top; j++)
            f->top[t * f->n_top + j] = -1;
    }
    tm_vectorizer_params_init(&f->vp);
    f->vp.english_stop_words = 1;
    return f->n_docs > 0 && f->vocab.n_terms > 0 && f->n_topics > 0;
}

/* gensim's value: a number, or "nan" / "inf" / "-inf". */
static double expected_value(const cJSON *x)
{
    if (cJSON_IsNumber(x))
        return x->valuedouble;
    if (!strcmp(x->valuestring, "nan"))
        return NAN;
    return x->valuestring[0] == '-' ? -INFINITY : INFINITY;
}

static void check_scores(struct tm_test_ctx *t, const struct fixture *f, const double *per,
                         const double *mean)
{
    const cJSON *exp = cJSON_GetObjectItem(f->root, "expected");
    for (int m = 0; m < TM_COHERENCE_N_MEASURES; m++) {
        const cJSON *e = cJSON_GetObjectItem(exp, tm_coherence_name((enum tm_coherence_measure)m));
        const cJSON *pt = cJSON_GetObjectItem(e, "per_topic");
        double s = 0;
        int n = 0;
        for (int64_t k = 0; k < f->n_topics; k++) {
            double want = expected_value(cJSON_GetArrayItem(pt, (int)k));
            double got = per[m * f->n_topics + k];
            if (isfinite(want)) {
                CHECK_NEAR(got, want, 1e-9);
                s += want;
                n++;
            } else if (isnan(want)) {
                CHECK(isnan(got));
            } else {
                CHECK(isinf(got) && (got > 0) == (want > 0));
            }
        }
        CHECK_NEAR(mean[m], s / n, 1e-9);
    }
}

TM_TEST(coherence_fixture_gensim)
{
    struct fixture f;
    REQUIRE(fixture_load(&f));
    for (int threads = 1; threads <= 3; threads += 2) {
        struct tm_coherence_corpus *c = NULL;
        char err[TM_ERR_SIZE] = "";
        f.vp.n_threads = threads;
        tm_status st = tm_coherence_corpus_new(&f.vp, f.docs, f.n_docs, &f.vocab, &c, err);
        CHECK_INT_EQ(st, TM_OK);
        if (st != TM_OK)
            break;
        CHECK_INT_EQ(tm_coherence_corpus_n_docs(c), f.n_docs);
        CHECK_INT_EQ(tm_coherence_corpus_n_tokens(c),
                     (int64_t)cJSON_GetObjectItem(f.root, "n_tokens")->valuedouble);
        double per[TM_COHERENCE_N_MEASURES * 8], mean[TM_COHERENCE_N_MEASURES];
        unsigned all = (1u << TM_COHERENCE_N_MEASURES) - 1;
        st = tm_coherence_score(c, all, f.top, f.n_topics, f.n_top, threads, per, mean, err);
        CHECK_INT_EQ(st, TM_OK);
        if (st == TM_OK)
            check_scores(t, &f, per, mean);
        /* One measure alone gives the same scores and leaves other rows be. */
        double one[TM_COHERENCE_N_MEASURES * 8], one_mean[TM_COHERENCE_N_MEASURES];
        for (int i = 0; i < TM_COHERENCE_N_MEASURES * 8; i++)
            one[i] = 12345;
        st = tm_coherence_score(c, TM_COHERENCE_BIT(TM_COHERENCE_C_NPMI), f.top, f.n_topics,
                                f.n_top, threads, one, one_mean, err);
        CHECK_INT_EQ(st, TM_OK);
        CHECK(one[0] == 12345 && one[TM_COHERENCE_C_V * f.n_topics] == 12345);
        CHECK(one[TM_COHERENCE_C_NPMI * f.n_topics] == per[TM_COHERENCE_C_NPMI * f.n_topics]);
        tm_coherence_corpus_free(c);
    }
    fixture_release(&f);
}

TM_TEST(coherence_bad_topics)
{
    struct fixture f;
    REQUIRE(fixture_load(&f));
    struct tm_coherence_corpus *c = NULL;
    char err[TM_ERR_SIZE] = "";
    REQUIRE(tm_coherence_corpus_new(&f.vp, f.docs, f.n_docs, &f.vocab, &c, err) == TM_OK);
    double per[TM_COHERENCE_N_MEASURES * 2], mean[TM_COHERENCE_N_MEASURES];
    int64_t outside[4] = {0, f.vocab.n_terms, -1, -1};
    CHECK_INT_EQ(tm_coherence_score(c, 1, outside, 1, 4, 1, per, mean, err), TM_EINVAL);
    CHECK(strstr(err, "outside the vocabulary") != NULL);
    int64_t twice[4] = {2, 1, 2, -1};
    CHECK_INT_EQ(tm_coherence_score(c, 1, twice, 1, 4, 1, per, mean, err), TM_EINVAL);
    CHECK(strstr(err, "twice") != NULL);
    CHECK_INT_EQ(tm_coherence_score(c, 1u << 7, twice, 1, 4, 1, per, mean, err), TM_EINVAL);
    tm_coherence_corpus_free(c);
    fixture_release(&f);
}

/* gensim's WordOccurrenceAccumulator replayed window by window: the set of
 * the first window, then drop the leaving token's word and add the
 * entering one's. Counts n(r) and n(a, b) for every pair of words. */
static void naive_counts(const struct tm_coherence_corpus *c, const struct topics *tp,
                         int64_t window, int64_t *occ, int64_t *pair, int64_t *n_virtual)
{
    int64_t R = tp->n_rel;
    unsigned char *in = calloc((size_t)R + 1, 1);
    *n_virtual = 0;
    for (int64_t d = 0; d < c->n_docs; d++) {
        int64_t b = d ? c->doc_end[d - 1] : 0, L = c->doc_end[d] - b;
        const int32_t *toks = c->tokens + b;
        int64_t w = window ? window : L;
        int64_t n_win = L >= w && L > 0 ? L - w + 1 : 1;
        for (int64_t s = 0; s < n_win; s++) {
            if (s == 0) {
                memset(in, 0, (size_t)R);
                for (int64_t p = 0; p < (L < w ? L : w); p++) {
                    int32_t r = rel_at(tp, toks, p);
                    if (r >= 0)
                        in[r] = 1;
                }
            } else {
                int32_t out = rel_at(tp, toks, s - 1), inw = rel_at(tp, toks, s + w - 1);
                if (out >= 0)
                    in[out] = 0;
                if (inw >= 0)
                    in[inw] = 1;
            }
            ++*n_virtual;
            for (int64_t a = 0; a < R; a++) {
                if (!in[a])
                    continue;
                occ[a]++;
                for (int64_t q = 0; q < R; q++)
                    if (in[q] && q != a)
                        pair[a * R + q]++;
            }
        }
    }
    free(in);
}

TM_TEST(coherence_counts_match_naive_windows)
{
    /* Random streams over a small vocabulary, dense with repeats, so the
     * "dropped while another occurrence is inside" case happens often. */
    struct tm_coherence_corpus c;
    memset(&c, 0, sizeof(c));
    c.n_docs = 40;
    c.n_terms = 12;
    c.doc_end = calloc((size_t)c.n_docs, sizeof(int64_t));
    c.tokens = malloc(40 * 300 * sizeof(int32_t));
    uint64_t x = 88172645463325252ull;
    for (int64_t d = 0; d < c.n_docs; d++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t L = d % 7 == 0 ? 0 : (int64_t)(x % 300);
        for (int64_t i = 0; i < L; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            c.tokens[c.n_tokens++] = (int32_t)(x % 14) - 2; /* -2..-1: outside */
            if (c.tokens[c.n_tokens - 1] < 0)
                c.tokens[c.n_tokens - 1] = -1;
        }
        c.doc_end[d] = c.n_tokens;
    }
    int64_t top[3 * 5] = {0, 1, 2, 3, 4, 4, 5, 6, 7, -1, 8, 9, 0, 10, 11};
    struct topics tp;
    char err[TM_ERR_SIZE];
    REQUIRE(topics_init(&tp, c.n_terms, top, 3, 5, err) == TM_OK);
    int64_t R = tp.n_rel;
    int64_t windows[] = {0, 1, 3, 10, 110};
    for (size_t wi = 0; wi < sizeof(windows) / sizeof(windows[0]); wi++) {
        for (int threads = 1; threads <= 4; threads += 3) {
            int64_t occ[16], co[3 * 25], N, nocc[16] = {0}, pair[256] = {0}, nN;
            REQUIRE(count(&c, &tp, windows[wi], threads, occ, co, &N) == TM_OK);
            naive_counts(&c, &tp, windows[wi], nocc, pair, &nN);
            CHECK_INT_EQ(N, nN);
            for (int64_t r = 0; r < R; r++)
                CHECK_INT_EQ(occ[r], nocc[r]);
            for (int64_t k = 0; k < 3; k++)
                for (int64_t i = 0; i < tp.len[k]; i++)
                    for (int64_t j = 0; j < tp.len[k]; j++) {
                        int32_t a = tp.tw[k * 5 + i], b = tp.tw[k * 5 + j];
                        int64_t want = i == j ? nocc[a] : pair[a * R + b];
                        CHECK_INT_EQ(co[k * 25 + i * 5 + j], want);
                    }
        }
    }
    topics_release(&tp);
    free(c.doc_end);
    free(c.tokens);
}

static tm_status parse(const char *json, struct tm_job_spec *spec, struct tm_api_error *e)
{
    tm_job_spec_init(spec);
    return tm_job_spec_parse(spec, json, strlen(json), NULL, e);
}

TM_TEST(coherence_spec)
{
    struct tm_job_spec s;
    struct tm_api_error e;
    CHECK_INT_EQ(parse("{\"model\":{\"coherence\":\"c_v\"}}", &s, &e), TM_OK);
    CHECK_INT_EQ(s.model.coherence, TM_COHERENCE_BIT(TM_COHERENCE_C_V));
    tm_job_spec_release(&s);
    CHECK_INT_EQ(parse("{\"model\":{\"method\":\"truncated_svd\",\"coherence\":[\"u_mass\","
                       "\"c_npmi\"]}}",
                       &s, &e),
                 TM_OK);
    CHECK_INT_EQ(s.model.coherence,
                 TM_COHERENCE_BIT(TM_COHERENCE_U_MASS) | TM_COHERENCE_BIT(TM_COHERENCE_C_NPMI));
    tm_job_spec_release(&s);
    CHECK_INT_EQ(parse("{\"model\":{\"coherence\":[]}}", &s, &e), TM_OK);
    CHECK_INT_EQ(s.model.coherence, 0);
    tm_job_spec_release(&s);
    CHECK_INT_EQ(parse("{\"model\":{\"coherence\":[\"c_v\",\"c_v\"]}}", &s, &e), TM_EINVAL);
    CHECK_STR_EQ(e.field, "model.coherence[1]");
    tm_job_spec_release(&s);
    CHECK_INT_EQ(parse("{\"model\":{\"coherence\":\"c_w2v\"}}", &s, &e), TM_EINVAL);
    CHECK_STR_EQ(e.field, "model.coherence");
    tm_job_spec_release(&s);
    CHECK_INT_EQ(parse("{\"model\":{\"coherence\":[\"u_mass\", 3]}}", &s, &e), TM_EINVAL);
    CHECK_STR_EQ(e.field, "model.coherence[1]");
    tm_job_spec_release(&s);
    CHECK_INT_EQ(parse("{\"model\":{\"coherence\":true}}", &s, &e), TM_EINVAL);
    tm_job_spec_release(&s);
    CHECK_INT_EQ(parse("{\"model\":{\"n_top_words\":1,\"coherence\":\"u_mass\"}}", &s, &e),
                 TM_EINVAL);
    CHECK_STR_EQ(e.field, "model.coherence");
    CHECK(strstr(e.message, "needs n_top_words >= 2") != NULL);
    tm_job_spec_release(&s);
    /* Field order does not matter: n_top_words after coherence. */
    CHECK_INT_EQ(parse("{\"model\":{\"coherence\":\"u_mass\",\"n_top_words\":1}}", &s, &e),
                 TM_EINVAL);
    tm_job_spec_release(&s);
    CHECK_INT_EQ(parse("{\"model\":{\"n_top_words\":5000,\"coherence\":\"c_v\"}}", &s, &e),
                 TM_ERANGE);
    tm_job_spec_release(&s);
}

TM_TEST(coherence_result_json)
{
    struct tm_fit_result r;
    memset(&r, 0, sizeof(r));
    r.method = TM_METHOD_NMF;
    r.n_topics = 2;
    r.n_features = 3;
    r.n_top_words = 2;
    int64_t terms[4] = {0, 1, 2, -1};
    double weights[4] = {1, 0.5, 1, 0};
    r.top_terms = terms;
    r.top_weights = weights;
    double per[TM_COHERENCE_N_MEASURES * 2] = {0};
    per[TM_COHERENCE_U_MASS * 2] = -1.5;
    per[TM_COHERENCE_U_MASS * 2 + 1] = NAN;
    per[TM_COHERENCE_C_V * 2] = 0.25;
    per[TM_COHERENCE_C_V * 2 + 1] = 0.75;
    r.coherence = TM_COHERENCE_BIT(TM_COHERENCE_U_MASS) | TM_COHERENCE_BIT(TM_COHERENCE_C_V);
    r.coherence_per_topic = per;
    r.coherence_mean[TM_COHERENCE_U_MASS] = -1.5;
    r.coherence_mean[TM_COHERENCE_C_V] = 0.5;
    r.seconds_coherence = 0.125;
    char *out = NULL;
    size_t len;
    struct tm_api_error e;
    REQUIRE(tm_result_render_fit(&r, NULL, NULL, NULL, &out, &len, &e) == TM_OK);
    CHECK(strstr(out, "\"coherence\":{\"u_mass\":{\"mean\":-1.5,\"per_topic\":[-1.5,null]},"
                      "\"c_v\":{\"mean\":0.5,\"per_topic\":[0.25,0.75]}}") != NULL);
    CHECK(strstr(out, "\"coherence\":0.125") != NULL);
    tm_free(out);
}

/* Runs "topicd ARGS" in dir; stdout and stderr into dir/out and dir/err.
 * Returns the exit status. */
static int run_topicd(const char *dir, const char *args)
{
    char cmd[8192], bin[4096];
    if (!realpath(tm_test_bindir(), bin))
        return -1;
    snprintf(cmd, sizeof(cmd), "cd '%s' && '%s/topicd' %s >out 2>err", dir, bin, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *read_in(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    if (buf)
        (void)!fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    return buf;
}

TM_TEST(coherence_cli)
{
    char dir[] = "/tmp/tm_coherence_XXXXXX";
    REQUIRE(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof(path), "%s/docs.txt", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs("the shuttle reached orbit\nnasa launch orbit shuttle\nimage graphics render\n"
          "graphics image file format\n",
          f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/x.mtx", dir);
    f = fopen(path, "w");
    REQUIRE(f);
    fputs("%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1.0\n2 2 1.0\n", f);
    fclose(f);
    CHECK_INT_EQ(run_topicd(dir, "fit --quiet --format lines --spec "
                                 "'{\"model\":{\"n_topics\":2,\"n_top_words\":3,"
                                 "\"coherence\":\"c_npmi\"},\"seed\":1}' docs.txt"),
                 0);
    char *out = read_in(dir, "out");
    CHECK(out && strstr(out, "\"coherence\":{\"c_npmi\":{\"mean\":"));
    free(out);
    CHECK_INT_EQ(run_topicd(dir, "fit --quiet --matrix-market-in x.mtx --spec "
                                 "'{\"model\":{\"n_topics\":1,\"coherence\":\"c_v\"}}'"),
                 1);
    char *err = read_in(dir, "err");
    CHECK(err && strstr(err, "model.coherence: needs the documents' texts"));
    free(err);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    (void)!system(cmd);
}
