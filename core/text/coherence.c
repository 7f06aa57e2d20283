/*
 * coherence.c - token streams and gensim's coherence measures (see
 * coherence.h).
 *
 * Counting by intervals: a top word is present in the windows [start, t)
 * between the step that adds it and the step that drops it, so its
 * virtual-document count grows by t - start when it is dropped, and a pair's
 * by the overlap of the two words' intervals, added when the first of the two
 * is dropped. Each window step costs nothing unless a top word enters or
 * leaves, and only the words of the topics holding that word are looked at.
 */
#include "core/text/coherence.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/text/stopwords.h"
#include "core/text/strmap.h"
#include "core/text/tokenize.h"

#define MAX_THREADS 64
#define TOKEN_BATCH 32
#define TEXTBUF_MAX ((size_t)1 << 32)

/* gensim's direct_confirmation_measure.EPSILON. */
static const double EPS = 1e-12;

struct tm_coherence_corpus {
    int64_t n_docs, n_terms;
    int64_t *doc_end; /* n_docs: end of document d's tokens (start: doc_end[d - 1] or 0) */
    int32_t *tokens;  /* vocabulary index, or -1 */
    int64_t n_tokens;
};

const char *tm_coherence_name(enum tm_coherence_measure m)
{
    static const char *const names[] = {"u_mass", "c_uci", "c_npmi", "c_v"};
    return (unsigned)m < TM_COHERENCE_N_MEASURES ? names[m] : NULL;
}

int64_t tm_coherence_corpus_n_docs(const struct tm_coherence_corpus *c)
{
    return c->n_docs;
}

int64_t tm_coherence_corpus_n_tokens(const struct tm_coherence_corpus *c)
{
    return c->n_tokens;
}

/* ---------------------------------------------------------------------- */
/* Token streams. */

/* A thread's documents [lo, hi) and the tokens it found for them. The map
 * is shared and only read: user word 0 marks a stop word, term + 1 a
 * vocabulary term. */
struct tok_worker {
    const struct tm_vectorizer_params *params;
    const struct tm_doc *docs;
    const struct tm_strmap *map;
    int64_t lo, hi;
    int32_t *tokens;
    int64_t n, cap;
    int64_t *doc_len; /* hi - lo */
    struct tm_textbuf repair, quotes, norm;
    tm_status st;
    char err[TM_ERR_SIZE];
};

static tm_status push_token(struct tok_worker *w, int32_t v)
{
    if (w->n == w->cap) {
        int64_t cap = w->cap ? 2 * w->cap : 4096;
        int32_t *t = tm_reallocarray(w->tokens, (size_t)cap, sizeof(*t));
        if (!t)
            return TM_ENOMEM;
        w->tokens = t;
        w->cap = cap;
    }
    w->tokens[w->n++] = v;
    return TM_OK;
}

/* Appends the tokens of document d, the steps of vectorize.c's tokenize_doc:
 * tm__vectorize_prepare (UTF-8 repair, preprocess, normalisation), tokens,
 * stop words. */
static tm_status tokenize_doc(struct tok_worker *w, int64_t d)
{
    const struct tm_vectorizer_params *p = w->params;
    const char *text = w->docs[d].text;
    size_t len = w->docs[d].len;
    tm_status st;
    if (len && !text)
        return tm_errf(w->err, TM_EINVAL, "document %lld: NULL text", (long long)d);
    if (!len)
        return TM_OK;
    const char *base;
    int ascii;
    st = tm__vectorize_prepare(p, &w->repair, &w->quotes, &w->norm, &text, &len, &base, &ascii);
    if (st != TM_OK)
        goto too_long;
    struct tm_token toks[TOKEN_BATCH];
    size_t pos = 0;
    for (;;) {
        int nb = 0;
        if (ascii) {
            nb = (int)tm_tokenize_ascii(text, len, p->lowercase, &pos, w->norm.data, toks,
                                        TOKEN_BATCH);
        } else {
            while (nb < TOKEN_BATCH &&
                   tm_tokenize_next(text, len, &pos, &toks[nb].start, &toks[nb].len))
                nb++;
        }
        for (int b = 0; b < nb; b++) {
            int64_t id = tm_strmap_find(w->map, base + toks[b].start, toks[b].len);
            int32_t v = -1;
            if (id >= 0) {
                uint64_t u = w->map->user[id];
                if (!u)
                    continue; /* a stop word: not a token at all */
                v = (int32_t)(u - 1);
            }
            if ((st = push_token(w, v)) != TM_OK)
                return st;
        }
        if (nb < TOKEN_BATCH)
            break;
    }
    return TM_OK;
too_long:
    if (st == TM_ETOOBIG)
        return tm_errf(w->err, st, "document %lld is too long (%zu bytes)", (long long)d,
                       w->docs[d].len);
    return st;
}

static void *tokenize_range(void *arg)
{
    struct tok_worker *w = arg;
    tm_status st = TM_OK;
    w->repair.max = w->quotes.max = w->norm.max = TEXTBUF_MAX;
    for (int64_t d = w->lo; d < w->hi; d++) {
        int64_t before = w->n;
        if ((st = tokenize_doc(w, d)) != TM_OK)
            break;
        w->doc_len[d - w->lo] = w->n - before;
    }
    w->st = st;
    tm_textbuf_release(&w->repair);
    tm_textbuf_release(&w->quotes);
    tm_textbuf_release(&w->norm);
    return NULL;
}

/* Runs fn on each of the n args (the first on this thread); a thread that
 * cannot start runs its share here. */
static void run_threads(void *(*fn)(void *), void *args, size_t arg_size, int n)
{
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS];
    for (int t = 1; t < n; t++)
        started[t] = pthread_create(&tid[t], NULL, fn, (char *)args + (size_t)t * arg_size) == 0;
    fn(args);
    for (int t = 1; t < n; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            fn((char *)args + (size_t)t * arg_size);
    }
}

static int clamp_threads(int n_threads, int64_t n_items)
{
    int n = n_threads < 1 ? 1 : n_threads > MAX_THREADS ? MAX_THREADS : n_threads;
    if ((int64_t)n > n_items)
        n = n_items > 0 ? (int)n_items : 1;
    return n;
}

static tm_status build_map(const struct tm_vectorizer_params *p, const struct tm_vocab *vocab,
                           struct tm_strmap *map, char *err)
{
    const char *const *words = p->stop_words;
    size_t n_stop = p->n_stop_words;
    if (p->english_stop_words)
        n_stop = tm_stopwords_english(&words);
    tm_status st = tm_strmap_init(map, (int64_t)n_stop + vocab->n_terms + 1);
    if (st != TM_OK)
        return st;
    for (size_t i = 0; i < n_stop; i++) {
        uint32_t id;
        int added;
        if ((st = tm_strmap_intern(map, words[i], strlen(words[i]), &id, &added)) != TM_OK)
            return st;
    }
    for (int64_t i = 0; i < vocab->n_terms; i++) {
        size_t len;
        const char *s = tm_vocab_term(vocab, i, &len);
        uint32_t id;
        int added;
        if ((st = tm_strmap_intern(map, s, len, &id, &added)) != TM_OK)
            return st;
        /* A stop word never reaches a vocabulary; if a list of terms holds
         * one, or holds a term twice, the first meaning wins. */
        if (added)
            map->user[id] = (uint64_t)i + 1;
    }
    (void)err;
    return TM_OK;
}

tm_status tm_coherence_corpus_new(const struct tm_vectorizer_params *params,
                                  const struct tm_doc *docs, int64_t n_docs,
                                  const struct tm_vocab *vocab, struct tm_coherence_corpus **out,
                                  char *err)
{
    struct tm_strmap map;
    memset(&map, 0, sizeof(map));
    struct tok_worker *ws = NULL;
    struct tm_coherence_corpus *c = NULL;
    tm_status st;
    int n = clamp_threads(params->n_threads, n_docs);
    *out = NULL;
    if (n_docs < 0)
        return tm_errf(err, TM_EINVAL, "coherence: n_docs < 0");
    if (vocab->n_terms >= INT32_MAX)
        return tm_errf(err, TM_ETOOBIG, "coherence: more than 2^31 terms");
    if ((st = build_map(params, vocab, &map, err)) != TM_OK)
        goto fail;
    c = tm_calloc(1, sizeof(*c));
    ws = tm_calloc((size_t)n, sizeof(*ws));
    if (!c || !ws) {
        st = TM_ENOMEM;
        goto fail;
    }
    c->n_docs = n_docs;
    c->n_terms = vocab->n_terms;
    c->doc_end = tm_mallocarray((size_t)(n_docs ? n_docs : 1), sizeof(*c->doc_end));
    if (!c->doc_end) {
        st = TM_ENOMEM;
        goto fail;
    }
    for (int t = 0; t < n; t++) {
        ws[t].params = params;
        ws[t].docs = docs;
        ws[t].map = &map;
        ws[t].lo = n_docs * t / n;
        ws[t].hi = n_docs * (t + 1) / n;
        ws[t].doc_len = c->doc_end + ws[t].lo; /* lengths first, ends below */
    }
    run_threads(tokenize_range, ws, sizeof(*ws), n);
    int64_t total = 0;
    for (int t = 0; t < n; t++) {
        if (ws[t].st != TM_OK) {
            st = ws[t].st;
            if (err && ws[t].err[0])
                tm_errf(err, st, "coherence: %s", ws[t].err);
            goto fail;
        }
        total += ws[t].n;
    }
    c->tokens = tm_mallocarray((size_t)(total ? total : 1), sizeof(*c->tokens));
    if (!c->tokens) {
        st = TM_ENOMEM;
        goto fail;
    }
    int64_t at = 0;
    for (int t = 0; t < n; t++) {
        if (ws[t].n)
            memcpy(c->tokens + at, ws[t].tokens, (size_t)ws[t].n * sizeof(*c->tokens));
        at += ws[t].n;
    }
    c->n_tokens = total;
    for (int64_t d = 0, end = 0; d < n_docs; d++) {
        end += c->doc_end[d];
        c->doc_end[d] = end;
    }
    for (int t = 0; t < n; t++)
        tm_free(ws[t].tokens);
    tm_free(ws);
    tm_strmap_release(&map);
    *out = c;
    return TM_OK;
fail:
    if (ws)
        for (int t = 0; t < n; t++)
            tm_free(ws[t].tokens);
    tm_free(ws);
    tm_strmap_release(&map);
    tm_coherence_corpus_free(c);
    if (err && !err[0])
        tm_errf(err, st, "coherence: %s", tm_strerror(st));
    return st;
}

void tm_coherence_corpus_free(struct tm_coherence_corpus *c)
{
    if (!c)
        return;
    tm_free(c->doc_end);
    tm_free(c->tokens);
    tm_free(c);
}

/* ---------------------------------------------------------------------- */
/* Counting. */

/* The topics as relevant words: rel_of[term] is the word's index or -1;
 * word r sits in topics at slots mem[mem_start[r] .. mem_start[r + 1]),
 * each slot t * n_top + i; topic t's words are tw[t * n_top ..], len[t] of
 * them. */
struct topics {
    int64_t n_topics, n_top, n_rel;
    int32_t *rel_of;
    int64_t *rel_term;
    int64_t *mem_start, *mem;
    int32_t *tw;
    int64_t *len;
};

static void topics_release(struct topics *tp)
{
    tm_free(tp->rel_of);
    tm_free(tp->rel_term);
    tm_free(tp->mem_start);
    tm_free(tp->mem);
    tm_free(tp->tw);
    tm_free(tp->len);
}

static tm_status topics_init(struct topics *tp, int64_t n_terms, const int64_t *top_terms,
                             int64_t n_topics, int64_t n_top, char *err)
{
    memset(tp, 0, sizeof(*tp));
    tp->n_topics = n_topics;
    tp->n_top = n_top;
    size_t cells = (size_t)(n_topics * n_top);
    tp->rel_of = tm_mallocarray((size_t)(n_terms ? n_terms : 1), sizeof(*tp->rel_of));
    tp->rel_term = tm_mallocarray(cells ? cells : 1, sizeof(*tp->rel_term));
    tp->mem_start = tm_calloc(cells + 1, sizeof(*tp->mem_start));
    tp->mem = tm_mallocarray(cells ? cells : 1, sizeof(*tp->mem));
    tp->tw = tm_mallocarray(cells ? cells : 1, sizeof(*tp->tw));
    tp->len = tm_calloc((size_t)(n_topics ? n_topics : 1), sizeof(*tp->len));
    if (!tp->rel_of || !tp->rel_term || !tp->mem_start || !tp->mem || !tp->tw || !tp->len)
        return TM_ENOMEM;
    for (int64_t i = 0; i < n_terms; i++)
        tp->rel_of[i] = -1;
    for (int64_t t = 0; t < n_topics; t++) {
        for (int64_t i = 0; i < n_top; i++) {
            int64_t term = top_terms[t * n_top + i];
            if (term < 0)
                break;
            if (term >= n_terms)
                return tm_errf(err, TM_EINVAL,
                               "coherence: topic %lld: term %lld outside the vocabulary of %lld",
                               (long long)t, (long long)term, (long long)n_terms);
            int32_t r = tp->rel_of[term];
            if (r < 0) {
                r = (int32_t)tp->n_rel++;
                tp->rel_of[term] = r;
                tp->rel_term[r] = term;
            }
            for (int64_t j = 0; j < i; j++)
                if (tp->tw[t * n_top + j] == r)
                    return tm_errf(err, TM_EINVAL, "coherence: topic %lld lists term %lld twice",
                                   (long long)t, (long long)term);
            tp->tw[t * n_top + i] = r;
            tp->len[t] = i + 1;
            tp->mem_start[r + 1]++;
        }
    }
    for (int64_t r = 0; r < tp->n_rel; r++)
        tp->mem_start[r + 1] += tp->mem_start[r];
    int64_t *fill = tm_mallocarray((size_t)(tp->n_rel ? tp->n_rel : 1), sizeof(*fill));
    if (!fill)
        return TM_ENOMEM;
    memcpy(fill, tp->mem_start, (size_t)tp->n_rel * sizeof(*fill));
    for (int64_t t = 0; t < n_topics; t++)
        for (int64_t i = 0; i < tp->len[t]; i++)
            tp->mem[fill[tp->tw[t * n_top + i]]++] = t * n_top + i;
    tm_free(fill);
    return TM_OK;
}

/* One thread's counts over documents [lo, hi) for one window size. co holds
 * n_topics blocks of n_top x n_top; a pair's count is co[i][j] + co[j][i]. */
struct counter {
    const struct tm_coherence_corpus *c;
    const struct topics *tp;
    int64_t window; /* 0: whole documents */
    int64_t lo, hi;
    int64_t n_virtual;
    int64_t *occ, *co, *start;
    unsigned char *present;
    tm_status st;
};

static inline void open_word(struct counter *k, int32_t r, int64_t t)
{
    k->present[r] = 1;
    k->start[r] = t;
}

static void close_word(struct counter *k, int32_t r, int64_t t)
{
    const struct topics *tp = k->tp;
    int64_t sr = k->start[r];
    k->present[r] = 0;
    k->occ[r] += t - sr;
    int64_t n_top = tp->n_top;
    for (int64_t m = tp->mem_start[r]; m < tp->mem_start[r + 1]; m++) {
        int64_t slot = tp->mem[m];
        int64_t topic = slot / n_top, i = slot % n_top;
        const int32_t *words = tp->tw + topic * n_top;
        int64_t *row = k->co + topic * n_top * n_top + i * n_top;
        for (int64_t j = 0; j < tp->len[topic]; j++) {
            int32_t q = words[j];
            if (j != i && k->present[q]) {
                int64_t sq = k->start[q];
                row[j] += t - (sr > sq ? sr : sq);
            }
        }
    }
}

static inline int32_t rel_at(const struct topics *tp, const int32_t *toks, int64_t p)
{
    int32_t v = toks[p];
    return v < 0 ? -1 : tp->rel_of[v];
}

static void *count_range(void *arg)
{
    struct counter *k = arg;
    const struct tm_coherence_corpus *c = k->c;
    const struct topics *tp = k->tp;
    int64_t T = 0;
    for (int64_t d = k->lo; d < k->hi; d++) {
        int64_t b = d ? c->doc_end[d - 1] : 0;
        const int32_t *toks = c->tokens + b;
        int64_t L = c->doc_end[d] - b;
        int64_t w = k->window > 0 ? k->window : L;
        int64_t first = L < w ? L : w;
        int64_t n_win = L >= w && L > 0 ? L - w + 1 : 1;
        for (int64_t p = 0; p < first; p++) {
            int32_t r = rel_at(tp, toks, p);
            if (r >= 0 && !k->present[r])
                open_word(k, r, T);
        }
        for (int64_t s = 1; s < n_win; s++) {
            int32_t out = rel_at(tp, toks, s - 1), in = rel_at(tp, toks, s + w - 1);
            if (out >= 0 && out != in && k->present[out])
                close_word(k, out, T + s);
            if (in >= 0 && !k->present[in])
                open_word(k, in, T + s);
        }
        T += n_win;
        /* What is still present is in the last window. */
        for (int64_t p = L - first; p < L; p++) {
            int32_t r = rel_at(tp, toks, p);
            if (r >= 0 && k->present[r])
                close_word(k, r, T);
        }
    }
    k->n_virtual = T;
    return NULL;
}

/* The counts of one window size over all documents, merged: occ (n_rel),
 * co (symmetric per topic, diagonal = occ), *n_virtual. */
static tm_status count(const struct tm_coherence_corpus *c, const struct topics *tp, int64_t window,
                       int n_threads, int64_t *occ, int64_t *co, int64_t *n_virtual)
{
    int n = clamp_threads(n_threads, c->n_docs);
    size_t n_co = (size_t)(tp->n_topics * tp->n_top * tp->n_top);
    size_t n_rel = (size_t)(tp->n_rel ? tp->n_rel : 1);
    struct counter *ks = tm_calloc((size_t)n, sizeof(*ks));
    tm_status st = TM_OK;
    if (!ks)
        return TM_ENOMEM;
    for (int t = 0; t < n; t++) {
        struct counter *k = &ks[t];
        k->c = c;
        k->tp = tp;
        k->window = window;
        k->lo = c->n_docs * t / n;
        k->hi = c->n_docs * (t + 1) / n;
        k->occ = tm_calloc(n_rel, sizeof(*k->occ));
        k->co = tm_calloc(n_co ? n_co : 1, sizeof(*k->co));
        k->start = tm_calloc(n_rel, sizeof(*k->start));
        k->present = tm_calloc(n_rel, 1);
        if (!k->occ || !k->co || !k->start || !k->present)
            st = TM_ENOMEM;
    }
    if (st == TM_OK) {
        run_threads(count_range, ks, sizeof(*ks), n);
        memset(occ, 0, (size_t)tp->n_rel * sizeof(*occ));
        memset(co, 0, n_co * sizeof(*co));
        *n_virtual = 0;
        for (int t = 0; t < n; t++) {
            for (int64_t r = 0; r < tp->n_rel; r++)
                occ[r] += ks[t].occ[r];
            for (size_t i = 0; i < n_co; i++)
                co[i] += ks[t].co[i];
            *n_virtual += ks[t].n_virtual;
        }
        int64_t m = tp->n_top;
        for (int64_t topic = 0; topic < tp->n_topics; topic++) {
            int64_t *blk = co + topic * m * m;
            for (int64_t i = 0; i < tp->len[topic]; i++) {
                blk[i * m + i] = occ[tp->tw[topic * m + i]];
                for (int64_t j = i + 1; j < tp->len[topic]; j++) {
                    int64_t s = blk[i * m + j] + blk[j * m + i];
                    blk[i * m + j] = blk[j * m + i] = s;
                }
            }
        }
    }
    for (int t = 0; t < n; t++) {
        tm_free(ks[t].occ);
        tm_free(ks[t].co);
        tm_free(ks[t].start);
        tm_free(ks[t].present);
    }
    tm_free(ks);
    return st;
}

/* ---------------------------------------------------------------------- */
/* Confirmation measures, in gensim's order of operations. */

/* log_ratio_measure: PMI, or NPMI when normalize. */
static double log_ratio(double n_ab, double n_a, double n_b, double N, int normalize)
{
    double num = log((n_ab / N + EPS) / ((n_a / N) * (n_b / N)));
    if (!normalize)
        return num;
    return num / -log(n_ab / N + EPS);
}

static double mean_of(const double *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += x[i];
    return s / (double)n; /* NaN for n = 0, as numpy's mean of nothing */
}

static void score_u_mass(const struct topics *tp, const int64_t *occ, const int64_t *co, int64_t N,
                         double *out)
{
    int64_t m = tp->n_top;
    for (int64_t t = 0; t < tp->n_topics; t++) {
        const int64_t *blk = co + t * m * m;
        const int32_t *words = tp->tw + t * m;
        double s = 0;
        int64_t n = 0;
        for (int64_t i = 1; i < tp->len[t]; i++) {
            for (int64_t j = 0; j < i; j++, n++) {
                int64_t n_star = occ[words[j]];
                /* gensim's ZeroDivisionError branch: 0 */
                if (n_star)
                    s += log(((double)blk[i * m + j] / (double)N + EPS) /
                             ((double)n_star / (double)N));
            }
        }
        out[t] = s / (double)n;
    }
}

static void score_pairs(const struct topics *tp, const int64_t *occ, const int64_t *co, int64_t N,
                        int normalize, double *out)
{
    int64_t m = tp->n_top;
    for (int64_t t = 0; t < tp->n_topics; t++) {
        const int64_t *blk = co + t * m * m;
        const int32_t *words = tp->tw + t * m;
        double s = 0;
        int64_t n = 0;
        for (int64_t i = 0; i < tp->len[t]; i++)
            for (int64_t j = 0; j < tp->len[t]; j++)
                if (i != j) {
                    s += log_ratio((double)blk[i * m + j], (double)occ[words[i]],
                                   (double)occ[words[j]], (double)N, normalize);
                    n++;
                }
        out[t] = s / (double)n;
    }
}

static tm_status score_c_v(const struct topics *tp, const int64_t *occ, const int64_t *co,
                           int64_t N, double *out)
{
    int64_t m = tp->n_top;
    double *npmi = tm_mallocarray((size_t)(m * m + m + m), sizeof(double));
    if (!npmi)
        return TM_ENOMEM;
    double *sum = npmi + m * m, *cos = sum + m;
    for (int64_t t = 0; t < tp->n_topics; t++) {
        const int64_t *blk = co + t * m * m;
        const int32_t *words = tp->tw + t * m;
        int64_t n = tp->len[t];
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++)
                npmi[i * m + j] = log_ratio((double)blk[i * m + j], (double)occ[words[i]],
                                            (double)occ[words[j]], (double)N, 1);
        /* The topic's vector: for each w_j, the sum over the segment's
         * words w_i in topic order (ContextVectorComputer._make_seg). */
        double sum_sq = 0;
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t i = 0; i < n; i++)
                s += npmi[i * m + j];
            sum[j] = s;
            sum_sq += s * s;
        }
        for (int64_t i = 0; i < n; i++) {
            double dot = 0, sq = 0;
            for (int64_t j = 0; j < n; j++) {
                dot += npmi[i * m + j] * sum[j];
                sq += npmi[i * m + j] * npmi[i * m + j];
            }
            cos[i] = dot / (sqrt(sq) * sqrt(sum_sq));
        }
        out[t] = mean_of(cos, n);
    }
    tm_free(npmi);
    return TM_OK;
}

tm_status tm_coherence_score(const struct tm_coherence_corpus *c, unsigned measures,
                             const int64_t *top_terms, int64_t n_topics, int64_t n_top,
                             int n_threads, double *per_topic, double *mean, char *err)
{
    struct topics tp;
    int64_t *occ = NULL, *co = NULL;
    tm_status st;
    if (measures & ~((1u << TM_COHERENCE_N_MEASURES) - 1))
        return tm_errf(err, TM_EINVAL, "coherence: unknown measure in mask %#x", measures);
    if (n_top < 1 || n_topics < 0)
        return tm_errf(err, TM_EINVAL, "coherence: n_top must be >= 1");
    if ((st = topics_init(&tp, c->n_terms, top_terms, n_topics, n_top, err)) != TM_OK)
        goto out;
    occ = tm_mallocarray((size_t)(tp.n_rel ? tp.n_rel : 1), sizeof(*occ));
    int64_t n_co = n_topics * n_top * n_top;
    co = tm_mallocarray((size_t)(n_co > 0 ? n_co : 1), sizeof(*co));
    if (!occ || !co) {
        st = TM_ENOMEM;
        goto out;
    }
    int64_t N;
    if (measures & TM_COHERENCE_BIT(TM_COHERENCE_U_MASS)) {
        if ((st = count(c, &tp, 0, n_threads, occ, co, &N)) != TM_OK)
            goto out;
        score_u_mass(&tp, occ, co, N, per_topic + TM_COHERENCE_U_MASS * n_topics);
    }
    unsigned win10 = TM_COHERENCE_BIT(TM_COHERENCE_C_UCI) | TM_COHERENCE_BIT(TM_COHERENCE_C_NPMI);
    if (measures & win10) {
        if ((st = count(c, &tp, TM_COHERENCE_WINDOW_UCI, n_threads, occ, co, &N)) != TM_OK)
            goto out;
        if (measures & TM_COHERENCE_BIT(TM_COHERENCE_C_UCI))
            score_pairs(&tp, occ, co, N, 0, per_topic + TM_COHERENCE_C_UCI * n_topics);
        if (measures & TM_COHERENCE_BIT(TM_COHERENCE_C_NPMI))
            score_pairs(&tp, occ, co, N, 1, per_topic + TM_COHERENCE_C_NPMI * n_topics);
    }
    if (measures & TM_COHERENCE_BIT(TM_COHERENCE_C_V)) {
        if ((st = count(c, &tp, TM_COHERENCE_WINDOW_CV, n_threads, occ, co, &N)) != TM_OK)
            goto out;
        if ((st = score_c_v(&tp, occ, co, N, per_topic + TM_COHERENCE_C_V * n_topics)) != TM_OK)
            goto out;
    }
    for (int m = 0; m < TM_COHERENCE_N_MEASURES; m++) {
        if (!(measures & TM_COHERENCE_BIT(m)))
            continue;
        double s = 0;
        int64_t n = 0;
        for (int64_t t = 0; t < n_topics; t++) {
            double v = per_topic[m * n_topics + t];
            if (isfinite(v)) {
                s += v;
                n++;
            }
        }
        mean[m] = n ? s / (double)n : NAN;
    }
out:
    tm_free(occ);
    tm_free(co);
    topics_release(&tp);
    if (st == TM_ENOMEM)
        tm_errf(err, st, "coherence: out of memory");
    return st;
}

tm_status tm_coherence_score_result(const struct tm_coherence_corpus *c, unsigned measures,
                                    int n_threads, struct tm_fit_result *r, char *err)
{
    double t0 = tm_clock_monotonic();
    int64_t k = r->n_topics;
    double *per = tm_calloc((size_t)(TM_COHERENCE_N_MEASURES * (k ? k : 1)), sizeof(*per));
    if (!per)
        return tm_errf(err, TM_ENOMEM, "coherence: out of memory");
    for (int64_t i = 0; i < TM_COHERENCE_N_MEASURES * k; i++)
        per[i] = NAN;
    double mean[TM_COHERENCE_N_MEASURES];
    for (int m = 0; m < TM_COHERENCE_N_MEASURES; m++)
        mean[m] = NAN;
    tm_status st =
        tm_coherence_score(c, measures, r->top_terms, k, r->n_top_words, n_threads, per, mean, err);
    if (st != TM_OK) {
        tm_free(per);
        return st;
    }
    tm_free(r->coherence_per_topic);
    r->coherence_per_topic = per;
    r->coherence = measures;
    memcpy(r->coherence_mean, mean, sizeof(mean));
    r->seconds_coherence = tm_clock_monotonic() - t0;
    return TM_OK;
}
