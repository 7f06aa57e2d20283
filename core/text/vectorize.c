/*
 * vectorize.c - documents to the CSR TF-IDF matrix of vectorize.h.
 *
 * Three parallel passes over contiguous chunks of documents, one thread per
 * chunk, with sequential steps between them on the calling thread:
 *   1. tokenize: repair UTF-8, strip newsgroup parts, normalise, tokenize;
 *      each thread interns terms in its own hash table (local ids), counts
 *      (local id, count) pairs per document, then sorts its local terms.
 *   -  merge: a k-way merge of the sorted local vocabularies gives the global
 *      vocabulary in byte (= code point) order, its document and term
 *      frequencies, and each thread's local -> global id map. Pruning then
 *      decides the column of each global term.
 *   2. count the kept entries of each row and column; - prefix sums give
 *      row offsets;
 *   3. fill the rows with increasing columns (a counting sort by column),
 *      weight and normalise them.
 * Nothing depends on which thread saw a document first, so the result is
 * byte-identical for any number of threads.
 */
#include "core/text/vectorize.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/text/preprocess.h"
#include "core/text/stopwords.h"
#include "core/text/strmap.h"
#include "core/text/tokenize.h"
#include "core/text/utf8.h"

#define DEFAULT_MAX_TERMS (16 * 1024 * 1024)
#define MAX_THREADS 256
/* Documents (or rows) between two progress reports / cancellation checks of
 * one thread; a 1 MB document alone takes a few milliseconds. */
#define REPORT_EVERY 64
/* Tokens hashed and prefetched together (see tokenize_doc). */
#define TOKEN_BATCH 32
/* Bytes readable past an ASCII document's normalised text: a token's
 * padded hash reads up to 7 past its end. */
#define TOKEN_PAD 8
/* Scratch text buffers are capped so that one pathological document (NFKD
 * expands some code points 18-fold) fails with TM_ETOOBIG, not by swapping.
 * Every token lies in such a buffer (or in a document no longer than one),
 * so its length fits the uint32_t of struct sort_key and struct gterm. */
#define TEXTBUF_MAX ((size_t)1 << 32)

static const char EMPTY_VOCAB_MSG[] =
    "empty vocabulary; perhaps the documents only contain stop words";
static const char NO_TERMS_MSG[] =
    "After pruning, no terms remain. Try a lower min_df or a higher max_df.";

void tm_vectorizer_params_init(struct tm_vectorizer_params *p)
{
    memset(p, 0, sizeof(*p));
    p->weighting = TM_WEIGHTING_TFIDF;
    p->lowercase = 1;
    p->strip_accents = TM_ACCENTS_NONE;
    p->min_df.is_fraction = 0;
    p->min_df.value = 1;
    p->max_df.is_fraction = 1;
    p->max_df.value = 1.0;
    p->use_idf = 1;
    p->smooth_idf = 1;
    p->norm = TM_NORM_L2;
    p->ngram_min = 1;
    p->ngram_max = 1;
}

/* A local term in sort order: first 8 bytes big-endian, then the rest. */
struct sort_key {
    uint64_t prefix;
    const char *key;
    uint32_t len;
    uint32_t id;
};

/* A kept entry: in its column's bucket, row - lo and count; in a row being
 * sorted, column and count. */
struct bucket_entry {
    int32_t row;
    int32_t count;
};

/*
 * Sorting. glibc's qsort (a merge sort through a function pointer) was a
 * sixth of the run time, so both sorts are an inlined introsort: quicksort
 * with median-of-three, insertion sort below 16 elements, heap sort when the
 * recursion gets too deep. SORT_LESS(a, b) defines the order.
 */
#define DEFINE_INTROSORT(name, T, LESS)                                                            \
    static void name##_insertion(T *a, int64_t n)                                                  \
    {                                                                                              \
        for (int64_t i = 1; i < n; i++) {                                                          \
            T v = a[i];                                                                            \
            int64_t j = i;                                                                         \
            for (; j > 0 && LESS(&v, &a[j - 1]); j--)                                              \
                a[j] = a[j - 1];                                                                   \
            a[j] = v;                                                                              \
        }                                                                                          \
    }                                                                                              \
    static void name##_sift(T *a, int64_t root, int64_t n)                                         \
    {                                                                                              \
        for (;;) {                                                                                 \
            int64_t c = 2 * root + 1;                                                              \
            if (c >= n)                                                                            \
                return;                                                                            \
            if (c + 1 < n && LESS(&a[c], &a[c + 1]))                                               \
                c++;                                                                               \
            if (!LESS(&a[root], &a[c]))                                                            \
                return;                                                                            \
            T t = a[root];                                                                         \
            a[root] = a[c];                                                                        \
            a[c] = t;                                                                              \
            root = c;                                                                              \
        }                                                                                          \
    }                                                                                              \
    static void name##_rec(T *a, int64_t n, int depth)                                             \
    {                                                                                              \
        while (n > 16) {                                                                           \
            if (depth-- == 0) {                                                                    \
                for (int64_t i = n / 2 - 1; i >= 0; i--)                                           \
                    name##_sift(a, i, n);                                                          \
                for (int64_t i = n - 1; i > 0; i--) {                                              \
                    T t = a[0];                                                                    \
                    a[0] = a[i];                                                                   \
                    a[i] = t;                                                                      \
                    name##_sift(a, 0, i);                                                          \
                }                                                                                  \
                return;                                                                            \
            }                                                                                      \
            T *x = &a[0], *y = &a[n / 2], *z = &a[n - 1], *m;                                      \
            if (LESS(x, y))                                                                        \
                m = LESS(y, z) ? y : (LESS(x, z) ? z : x);                                         \
            else                                                                                   \
                m = LESS(x, z) ? x : (LESS(y, z) ? z : y);                                         \
            T pivot = *m;                                                                          \
            int64_t i = 0, j = n - 1;                                                              \
            for (;;) {                                                                             \
                while (LESS(&a[i], &pivot))                                                        \
                    i++;                                                                           \
                while (LESS(&pivot, &a[j]))                                                        \
                    j--;                                                                           \
                if (i >= j)                                                                        \
                    break;                                                                         \
                T t = a[i];                                                                        \
                a[i] = a[j];                                                                       \
                a[j] = t;                                                                          \
                i++;                                                                               \
                j--;                                                                               \
            }                                                                                      \
            /* a[0..j] <= pivot <= a[j+1..n): recurse into the smaller part */                     \
            if (j + 1 < n - j - 1) {                                                               \
                name##_rec(a, j + 1, depth);                                                       \
                a += j + 1;                                                                        \
                n -= j + 1;                                                                        \
            } else {                                                                               \
                name##_rec(a + j + 1, n - j - 1, depth);                                           \
                n = j + 1;                                                                         \
            }                                                                                      \
        }                                                                                          \
        name##_insertion(a, n);                                                                    \
    }                                                                                              \
    static void name(T *a, int64_t n)                                                              \
    {                                                                                              \
        int depth = 2;                                                                             \
        for (int64_t k = n; k > 1; k >>= 1)                                                        \
            depth += 2;                                                                            \
        name##_rec(a, n, depth);                                                                   \
    }

struct shared {
    const struct tm_vectorizer_params *params;
    const struct tm_doc *docs;
    int64_t n_docs;
    int64_t max_terms;
    int64_t max_keys; /* per thread: max_terms + the length of the stop list */
    const struct tm_progress *progress;
    pthread_mutex_t lock;
    atomic_int cancelled;
    int64_t done; /* under lock: documents or rows finished in this pass */
    int fixed;    /* tm_vectorize_fixed: no term ranks, no sorted local terms */
    /* passes 2 and 3 */
    const int32_t *col_of; /* global term -> column, or -1 when pruned */
    const double *idf;
    struct tm_csr *matrix;
    int64_t *doc_lengths; /* tm_vectorize only: pass 2 fills it, and raw_tf */
};

struct worker {
    struct shared *sh;
    int64_t lo, hi; /* documents [lo, hi) */
    int64_t n_stop; /* local ids below this are stop words (the same in every worker) */
    tm_status st;
    char err[TM_ERR_SIZE];
    struct tm_strmap map;
    /* Per local id: document and term frequencies (tf only for
     * max_features). Which document last counted a term, and where, is in
     * its user word (map.user[id]), (document - lo + 1) << 32 | entry - row start,
     * so that counting a repeated token touches nothing but its slot. */
    int64_t *df, *tf;
    int64_t df_cap;
    uint32_t *ent_id; /* local ids; pass 2 rewrites them to columns */
    int32_t *ent_count;
    int64_t n_ent, ent_cap;
    int64_t *row_end; /* hi - lo: end of each document's entries */
    struct tm_textbuf repair, quotes, norm;
    /* n-grams: a document's kept tokens joined by single spaces, and where
     * each starts (one more entry: the end + 1) */
    struct tm_textbuf joined, starts;
    struct sort_key *order; /* sorted non-stop local terms */
    int64_t n_order;
    int32_t *to_global; /* local id -> global term */
    int64_t n_kept;     /* pass 2: entries whose term is kept */
    uint32_t *col;      /* pass 2: local id -> column, UINT32_MAX when pruned */
    int64_t *raw_tf;    /* pass 2, with doc_lengths: raw count per local id */
    /* Pass 3 fills rows either by buckets (col_end: kept entries per column,
     * then bucket ends; bucket: the entries by column) or, when columns far
     * outnumber this thread's entries, by sorting each row (bucket holds one
     * row as (column, count)). */
    int use_buckets;
    int64_t *col_end;
    struct bucket_entry *bucket;
};

/* Adds delta finished items of total to the pass's count and reports; a
 * non-zero answer from the callback cancels every thread. */
static void report(struct shared *sh, const char *stage, int64_t delta, int64_t total)
{
    if (!sh->progress || !sh->progress->report) {
        return;
    }
    pthread_mutex_lock(&sh->lock);
    sh->done += delta;
    double f = total > 0 ? (double)sh->done / (double)total : 1.0;
    if (f > 1.0)
        f = 1.0;
    if (!atomic_load(&sh->cancelled) && tm_progress_report(sh->progress, stage, f))
        atomic_store(&sh->cancelled, 1);
    pthread_mutex_unlock(&sh->lock);
}

static tm_status grow_df(struct worker *w, int64_t need)
{
    if (need <= w->df_cap)
        return TM_OK;
    int64_t cap = w->df_cap ? w->df_cap * 2 : 4096;
    while (cap < need)
        cap *= 2;
    int64_t *df = tm_reallocarray(w->df, (size_t)cap, sizeof(*df));
    if (!df)
        return TM_ENOMEM;
    w->df = df;
    w->df_cap = cap;
    return TM_OK;
}

static tm_status grow_entries(struct worker *w)
{
    int64_t cap = w->ent_cap ? w->ent_cap * 2 : 4096;
    uint32_t *id = tm_reallocarray(w->ent_id, (size_t)cap, sizeof(*id));
    if (!id)
        return TM_ENOMEM;
    w->ent_id = id;
    int32_t *count = tm_reallocarray(w->ent_count, (size_t)cap, sizeof(*count));
    if (!count)
        return TM_ENOMEM;
    w->ent_count = count;
    w->ent_cap = cap;
    return TM_OK;
}

/* Interns the stop words so that one lookup per token tells both. sklearn
 * compares tokens with the list as given (no lower-casing of the list). */
static tm_status intern_stop_words(struct worker *w)
{
    const struct tm_vectorizer_params *p = w->sh->params;
    const char *const *words = p->stop_words;
    size_t n = p->n_stop_words;
    if (p->english_stop_words)
        n = tm_stopwords_english(&words);
    for (size_t i = 0; i < n; i++) {
        uint32_t id;
        int added;
        /* No token holds a space, so such a stop word never matches one;
         * interned, it would hide the n-gram of the same spelling, which
         * scikit-learn keeps (it removes stop words from tokens only). */
        if (strchr(words[i], ' '))
            continue;
        tm_status st = tm_strmap_intern(&w->map, words[i], strlen(words[i]), &id, &added);
        if (st != TM_OK)
            return st;
    }
    return TM_OK;
}

static int key_cmp(const struct sort_key *a, const struct sort_key *b)
{
    if (a->prefix != b->prefix)
        return a->prefix < b->prefix ? -1 : 1;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->key, b->key, n);
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

#define KEY_LESS(a, b) (key_cmp((a), (b)) < 0)
DEFINE_INTROSORT(sort_keys, struct sort_key, KEY_LESS)

static uint64_t be_prefix(const char *s, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = (v << 8) | (i < len ? (unsigned char)s[i] : 0);
    return v;
}

static tm_status sort_local_terms(struct worker *w)
{
    int64_t n_stop = w->n_stop;
    w->n_order = w->map.n - n_stop;
    w->order = tm_mallocarray((size_t)w->n_order + 1, sizeof(*w->order));
    if (!w->order)
        return TM_ENOMEM;
    for (int64_t i = 0; i < w->n_order; i++) {
        size_t len;
        const char *k = tm_strmap_key(&w->map, n_stop + i, &len);
        w->order[i] =
            (struct sort_key){be_prefix(k, len), k, (uint32_t)len, (uint32_t)(n_stop + i)};
    }
    sort_keys(w->order, w->n_order);
    return TM_OK;
}

/* Counts one occurrence of local term id (not a stop word) in the current
 * document (doc_tag, its entries from row_start): one more of its entry, or
 * a new entry (see struct worker). */
static inline tm_status count_term(struct worker *w, uint32_t id, int added, uint64_t doc_tag,
                                   int64_t row_start)
{
    uint64_t *user = &w->map.user[id];
    if ((*user & 0xFFFFFFFF00000000ull) == doc_tag) {
        w->ent_count[row_start + (int64_t)(*user & 0xFFFFFFFFull)]++;
        return TM_OK;
    }
    tm_status st;
    if (added && (st = grow_df(w, (int64_t)id + 1)) != TM_OK)
        return st;
    if (w->n_ent == w->ent_cap && (st = grow_entries(w)) != TM_OK)
        return st;
    if (added)
        w->df[id] = 0;
    w->df[id]++;
    *user = doc_tag | (uint64_t)(w->n_ent - row_start);
    w->ent_id[w->n_ent] = id;
    w->ent_count[w->n_ent] = 1;
    w->n_ent++;
    return TM_OK;
}

/* Up to TOKEN_BATCH next tokens of a normalised document (tokenize_doc's
 * text, len and ascii), from *pos; fewer means the document is done. */
static inline int next_tokens(struct worker *w, int ascii, const char *text, size_t len,
                              size_t *pos, struct tm_token *toks)
{
    if (ascii)
        return (int)tm_tokenize_ascii(text, len, w->sh->params->lowercase, pos, w->norm.data, toks,
                                      TOKEN_BATCH);
    int nb = 0;
    while (nb < TOKEN_BATCH && tm_tokenize_next(text, len, pos, &toks[nb].start, &toks[nb].len))
        nb++;
    return nb;
}

static tm_status too_many_terms(struct worker *w)
{
    return tm_errf(w->err, TM_ETOOBIG, "more than %lld distinct terms",
                   (long long)w->sh->max_terms);
}

/*
 * scikit-learn's _word_ngrams for one normalised document: the tokens that
 * are not stop words, joined by single spaces into w->joined, so that the
 * n-gram of tokens i .. i+n-1 is one slice of it (no copy per n-gram);
 * with ngram_min == 1 the tokens are counted as they come, then the n-grams
 * of each n >= 2, hashed and prefetched in batches as tokens are. Never
 * inlined: it would only grow tokenize_doc, whose unigram loop is the hot
 * one (see tm_strmap_intern_hashed's always_inline).
 */
static __attribute__((noinline)) tm_status tokenize_ngrams(struct worker *w, int64_t d, int ascii,
                                                           const char *text, size_t len,
                                                           const char *base)
{
    const struct tm_vectorizer_params *p = w->sh->params;
    int64_t n_stop = w->n_stop;
    uint64_t doc_tag = (uint64_t)(d - w->lo + 1) << 32;
    int64_t row_start = w->n_ent;
    int unigrams = p->ngram_min == 1;
    /* Tokens are at least two bytes with a byte between them: at most
     * len / 2 + 1 of them, and the joined text is at most 1.5 len + 1. */
    size_t max_tokens = len / 2 + 2;
    tm_status st;
    if ((st = tm_textbuf_reserve(&w->joined, len + max_tokens)) != TM_OK ||
        (st = tm_textbuf_reserve(&w->starts, max_tokens * sizeof(size_t))) != TM_OK) {
        if (st == TM_ETOOBIG)
            return tm_errf(w->err, st, "document %lld is too long (%zu bytes)", (long long)d,
                           w->sh->docs[d].len);
        return st;
    }
    char *joined = w->joined.data;
    size_t *starts = (size_t *)(void *)w->starts.data;
    size_t jlen = 0;
    int64_t nt = 0;
    struct tm_token toks[TOKEN_BATCH];
    uint64_t hash[TOKEN_BATCH];
    size_t pos = 0;
    for (;;) {
        int nb = next_tokens(w, ascii, text, len, &pos, toks);
        for (int b = 0; b < nb; b++) {
            hash[b] = tm_strmap_hash(base + toks[b].start, toks[b].len);
            TM_STRMAP_PREFETCH(&w->map, hash[b]);
        }
        for (int b = 0; b < nb; b++) {
            const char *tok = base + toks[b].start;
            size_t tlen = toks[b].len;
            if (unigrams) {
                uint32_t id;
                int added;
                st = tm_strmap_intern_hashed(&w->map, tok, tlen, hash[b], &id, &added);
                if (st == TM_ETOOBIG)
                    return too_many_terms(w);
                if (st != TM_OK)
                    return st;
                if (id < n_stop)
                    continue;
                if ((st = count_term(w, id, added, doc_tag, row_start)) != TM_OK)
                    return st;
            } else {
                /* the map holds stop words and n-grams, which have a space */
                int64_t id = tm_strmap_find(&w->map, tok, tlen);
                if (id >= 0 && id < n_stop)
                    continue;
            }
            starts[nt++] = jlen;
            memcpy(joined + jlen, tok, tlen);
            jlen += tlen;
            joined[jlen++] = ' ';
        }
        if (nb < TOKEN_BATCH)
            break;
    }
    starts[nt] = jlen; /* n-gram i .. i+n-1 is joined[starts[i] .. starts[i+n] - 1) */
    for (int64_t n = p->ngram_min > 2 ? p->ngram_min : 2; n <= p->ngram_max; n++) {
        for (int64_t i0 = 0; i0 + n <= nt; i0 += TOKEN_BATCH) {
            int nb = (int)(nt - n + 1 - i0 < TOKEN_BATCH ? nt - n + 1 - i0 : TOKEN_BATCH);
            for (int b = 0; b < nb; b++) {
                size_t at = starts[i0 + b];
                hash[b] = tm_strmap_hash(joined + at, starts[i0 + b + n] - 1 - at);
                TM_STRMAP_PREFETCH(&w->map, hash[b]);
            }
            for (int b = 0; b < nb; b++)
                TM_STRMAP_PREFETCH_ID(&w->map, hash[b]);
            for (int b = 0; b < nb; b++) {
                size_t at = starts[i0 + b];
                uint32_t id;
                int added;
                st = tm_strmap_intern_hashed(&w->map, joined + at, starts[i0 + b + n] - 1 - at,
                                             hash[b], &id, &added);
                if (st == TM_ETOOBIG)
                    return too_many_terms(w);
                if (st != TM_OK)
                    return st;
                if ((st = count_term(w, id, added, doc_tag, row_start)) != TM_OK)
                    return st;
            }
        }
    }
    w->row_end[d - w->lo] = w->n_ent;
    return TM_OK;
}

tm_status tm__vectorize_prepare(const struct tm_vectorizer_params *p, struct tm_textbuf *repair,
                                struct tm_textbuf *quotes, struct tm_textbuf *norm,
                                const char **text, size_t *len, const char **base, int *ascii)
{
    tm_status st;
    if (!*len)
        *text = ""; /* a NULL empty document must not reach memchr and friends */
    if (tm_utf8_valid_prefix_ascii(*text, *len, ascii) < *len) {
        if ((st = tm_textbuf_reserve(repair, tm_utf8_repair_bound(*len))) != TM_OK)
            return st;
        *len = tm_utf8_repair(*text, *len, repair->data);
        *text = repair->data;
    }
    if (p->strip) {
        if ((p->strip & TM_STRIP_QUOTES) && (st = tm_textbuf_reserve(quotes, *len + 1)) != TM_OK)
            return st;
        *len = tm_preprocess(p->strip, *text, *len, quotes->data, text);
    }
    /* Pure ASCII, most documents, takes the one-pass path; anything else is
     * normalised (lower-case, accents) first and then tokenized. */
    if (!*ascii) /* stripping may have left only ASCII */
        *ascii = tm_utf8_is_ascii(*text, *len);
    if (*ascii) {
        /* + TOKEN_PAD: the hash's padded reads past a token (see below) */
        if ((st = tm_textbuf_reserve(norm, *len + TOKEN_PAD)) != TM_OK)
            return st;
        memset(norm->data + *len, 0, TOKEN_PAD);
        *base = norm->data;
        return TM_OK;
    }
    st = tm_tokenize_normalize(p->lowercase, p->strip_accents, *text, *len, norm, text, len);
    *base = *text;
    return st;
}

static tm_status tokenize_doc(struct worker *w, int64_t d)
{
    const struct tm_vectorizer_params *p = w->sh->params;
    const char *text = w->sh->docs[d].text;
    size_t len = w->sh->docs[d].len;
    tm_status st;
    if (len && !text)
        return tm_errf(w->err, TM_EINVAL, "document %lld: NULL text", (long long)d);
    const char *base; /* the tokens' bytes are base[start .. start + len) */
    int ascii;
    st = tm__vectorize_prepare(p, &w->repair, &w->quotes, &w->norm, &text, &len, &base, &ascii);
    if (st != TM_OK)
        goto too_long;

    if (p->ngram_max > 1)
        return tokenize_ngrams(w, d, ascii, text, len, base);
    int64_t n_stop = w->n_stop;
    uint64_t doc_tag = (uint64_t)(d - w->lo + 1) << 32;
    int64_t row_start = w->n_ent;
    /* Tokens go in batches: hash and prefetch the slots of a whole batch,
     * then count them in order (the same order, so the same local ids). */
    struct tm_token toks[TOKEN_BATCH];
    uint64_t hash[TOKEN_BATCH];
    size_t pos = 0;
    for (;;) {
        int nb = next_tokens(w, ascii, text, len, &pos, toks);
        /* An ASCII document's tokens lie in w->norm, padded past its end,
         * so the map reads each key's first 8 bytes in one load (the
         * padded hash and intern), not by a branch on the token's length. */
        for (int b = 0; b < nb; b++) {
            const char *tok = base + toks[b].start;
            hash[b] =
                ascii ? tm_strmap_hash_padded(tok, toks[b].len) : tm_strmap_hash(tok, toks[b].len);
            TM_STRMAP_PREFETCH(&w->map, hash[b]);
        }
        for (int b = 0; b < nb; b++)
            TM_STRMAP_PREFETCH_ID(&w->map, hash[b]);
        for (int b = 0; b < nb; b++) {
            const char *tok = base + toks[b].start;
            uint32_t id;
            int added;
            st = ascii ? tm_strmap_intern_padded(&w->map, tok, toks[b].len, hash[b], &id, &added)
                       : tm_strmap_intern_hashed(&w->map, tok, toks[b].len, hash[b], &id, &added);
            if (st == TM_ETOOBIG)
                return too_many_terms(w);
            if (st != TM_OK)
                return st;
            if (id < n_stop)
                continue;
            if ((st = count_term(w, id, added, doc_tag, row_start)) != TM_OK)
                return st;
        }
        if (nb < TOKEN_BATCH)
            break;
    }
    w->row_end[d - w->lo] = w->n_ent;
    return TM_OK;
too_long:
    if (st == TM_ETOOBIG)
        return tm_errf(w->err, st, "document %lld is too long (%zu bytes)", (long long)d,
                       w->sh->docs[d].len);
    return st;
}

static void *pass_tokenize(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    tm_status st;
    if ((st = tm_strmap_init(&w->map, sh->max_keys)) != TM_OK)
        goto done;
    w->repair.max = w->quotes.max = w->norm.max = w->joined.max = w->starts.max = TEXTBUF_MAX;
    w->row_end = tm_mallocarray((size_t)(w->hi - w->lo) + 1, sizeof(*w->row_end));
    if (!w->row_end) {
        st = TM_ENOMEM;
        goto done;
    }
    if ((st = intern_stop_words(w)) != TM_OK)
        goto done;
    /* A custom list may hold duplicates: the map counts them once. */
    w->n_stop = w->map.n;
    int64_t since = 0;
    for (int64_t d = w->lo; d < w->hi; d++) {
        if (atomic_load_explicit(&sh->cancelled, memory_order_relaxed)) {
            st = TM_ECANCELLED;
            goto done;
        }
        if ((st = tokenize_doc(w, d)) != TM_OK)
            goto done;
        if (++since == REPORT_EVERY) {
            report(sh, "tokenize", since, sh->n_docs);
            since = 0;
        }
    }
    report(sh, "tokenize", since, sh->n_docs);
    if (sh->fixed) {
        st = TM_OK;
        goto done;
    }
    if (sh->params->max_features > 0) {
        /* Total counts rank terms for max_features; binary ranks by df. */
        w->tf = tm_calloc((size_t)w->map.n + 1, sizeof(*w->tf));
        if (!w->tf) {
            st = TM_ENOMEM;
            goto done;
        }
        for (int64_t k = 0; k < w->n_ent; k++)
            w->tf[w->ent_id[k]] += sh->params->binary ? 1 : w->ent_count[k];
    }
    st = sort_local_terms(w);
done:
    w->st = st;
    return NULL;
}

/* Pass 2: rewrites the entries' local ids to columns (UINT32_MAX when
 * pruned), puts the number of kept entries of row d in indptr[d + 1], and
 * counts this thread's kept entries of each column. */
static void *pass_count(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    int64_t *indptr = sh->matrix->indptr;
    /* local id -> column, through a table of this thread's size, so the
     * loop over entries makes one lookup in a cache-sized array */
    uint32_t *col = w->col = tm_mallocarray((size_t)w->map.n + 1, sizeof(*col));
    if (!col) {
        w->st = TM_ENOMEM;
        return NULL;
    }
    if (sh->doc_lengths) {
        w->raw_tf = tm_calloc((size_t)w->map.n + 1, sizeof(*w->raw_tf));
        if (!w->raw_tf) {
            w->st = TM_ENOMEM;
            return NULL;
        }
    }
    for (int64_t i = w->n_stop; i < w->map.n; i++) {
        int32_t c = sh->col_of[w->to_global[i]];
        col[i] = c >= 0 ? (uint32_t)c : UINT32_MAX;
    }
    int64_t k = 0, longest = 0;
    w->n_kept = 0;
    for (int64_t d = w->lo; d < w->hi; d++) {
        int64_t n = 0;
        int64_t end = w->row_end[d - w->lo];
        if (w->raw_tf) {
            int64_t len = 0;
            for (int64_t j = k; j < end; j++) {
                if (col[w->ent_id[j]] != UINT32_MAX) {
                    w->raw_tf[w->ent_id[j]] += w->ent_count[j];
                    len += w->ent_count[j];
                }
            }
            sh->doc_lengths[d] = len;
        }
        for (; k < end; k++) {
            uint32_t c = col[w->ent_id[k]];
            w->ent_id[k] = c;
            n += c != UINT32_MAX;
        }
        indptr[d + 1] = n;
        w->n_kept += n;
        if (n > longest)
            longest = n;
    }
    /* Buckets cost memory and time per column: with a huge vocabulary and
     * few entries per thread, sort rows instead. */
    int64_t n_cols = sh->matrix->n_cols;
    w->use_buckets = n_cols <= 4 * w->n_kept + 4096;
    if (w->use_buckets) {
        w->col_end = tm_calloc((size_t)n_cols + 1, sizeof(*w->col_end));
        if (!w->col_end) {
            w->st = TM_ENOMEM;
            return NULL;
        }
        for (k = 0; k < w->n_ent; k++)
            if (w->ent_id[k] != UINT32_MAX)
                w->col_end[w->ent_id[k]]++;
    }
    int64_t n_bucket = w->use_buckets ? w->n_kept : longest;
    w->bucket = tm_mallocarray((size_t)n_bucket + 1, sizeof(*w->bucket));
    w->st = w->bucket ? TM_OK : TM_ENOMEM;
    return NULL;
}

#define ROW_LESS(a, b) ((a)->row < (b)->row)
DEFINE_INTROSORT(sort_row, struct bucket_entry, ROW_LESS)

/* Fills each row from its entries sorted by column (bucket.row holds the
 * column here). */
static void fill_by_sorting(struct worker *w, struct tm_csr *m, int binary)
{
    int64_t k = 0;
    for (int64_t d = w->lo; d < w->hi; d++) {
        int64_t n = 0;
        for (int64_t end = w->row_end[d - w->lo]; k < end; k++)
            if (w->ent_id[k] != UINT32_MAX)
                w->bucket[n++] = (struct bucket_entry){(int32_t)w->ent_id[k], w->ent_count[k]};
        sort_row(w->bucket, n);
        for (int64_t i = 0, base = m->indptr[d]; i < n; i++) {
            m->indices[base + i] = w->bucket[i].row;
            m->data[base + i] = binary ? 1.0 : (double)w->bucket[i].count;
        }
    }
}

/* Fills the rows by dealing the column buckets back to them (see pass_fill). */
static void fill_by_buckets(struct worker *w, struct tm_csr *m, int binary)
{
    int64_t acc = 0;
    for (int64_t c = 0; c < m->n_cols; c++) {
        int64_t n = w->col_end[c];
        w->col_end[c] = acc; /* bucket start, becoming its end below */
        acc += n;
    }
    int64_t k = 0;
    for (int64_t d = w->lo; d < w->hi; d++)
        for (int64_t end = w->row_end[d - w->lo]; k < end; k++)
            if (w->ent_id[k] != UINT32_MAX)
                w->bucket[w->col_end[w->ent_id[k]]++] =
                    (struct bucket_entry){(int32_t)(d - w->lo), w->ent_count[k]};
    /* row_end becomes each row's write cursor */
    for (int64_t d = w->lo; d < w->hi; d++)
        w->row_end[d - w->lo] = m->indptr[d];
    k = 0;
    for (int64_t c = 0; c < m->n_cols; c++) {
        for (int64_t end = w->col_end[c]; k < end; k++) {
            int64_t i = w->row_end[w->bucket[k].row]++;
            m->indices[i] = (int32_t)c;
            m->data[i] = binary ? 1.0 : (double)w->bucket[k].count;
        }
    }
}

/*
 * Pass 3: fills the rows with columns in increasing order, then weights and
 * normalises them (sklearn's TfidfTransformer.transform and normalize(), in
 * their order). A row's entries come in order of first occurrence; instead
 * of sorting every row (a sixth of the run time), the thread's entries are
 * bucketed by column (a counting sort) and dealt back to their rows column by
 * column, which leaves every row sorted: two linear passes. With far more
 * columns than entries, rows are sorted after all (fill_by_sorting).
 */
static void *pass_fill(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    const struct tm_vectorizer_params *p = sh->params;
    struct tm_csr *m = sh->matrix;
    int tfidf = p->weighting == TM_WEIGHTING_TFIDF;
    if (w->use_buckets)
        fill_by_buckets(w, m, p->binary);
    else
        fill_by_sorting(w, m, p->binary);
    if (atomic_load_explicit(&sh->cancelled, memory_order_relaxed)) {
        w->st = TM_ECANCELLED;
        return NULL;
    }
    int64_t since = 0;
    for (int64_t d = w->lo; tfidf && d < w->hi; d++) {
        int64_t lo = m->indptr[d], hi = m->indptr[d + 1];
        double sum = 0.0;
        for (int64_t i = lo; i < hi; i++) {
            double v = m->data[i];
            if (p->sublinear_tf)
                v = log(v) + 1.0;
            if (sh->idf)
                v *= sh->idf[m->indices[i]];
            sum += p->norm == TM_NORM_L2 ? v * v : fabs(v);
            m->data[i] = v;
        }
        if (p->norm != TM_NORM_NONE) {
            if (p->norm == TM_NORM_L2)
                sum = sqrt(sum);
            if (sum != 0.0)
                for (int64_t i = lo; i < hi; i++)
                    m->data[i] /= sum;
        }
        if (++since == REPORT_EVERY) {
            if (atomic_load_explicit(&sh->cancelled, memory_order_relaxed)) {
                w->st = TM_ECANCELLED;
                return NULL;
            }
            report(sh, "weighting", since, sh->n_docs);
            since = 0;
        }
    }
    report(sh, "weighting", tfidf ? since : w->hi - w->lo, sh->n_docs);
    w->st = TM_OK;
    return NULL;
}

/* Runs fn on every worker: worker 0 on this thread, the others on new ones
 * (inline too when a thread cannot be created). Returns the first failure in
 * worker order, so the reported error does not depend on timing. */
static tm_status run_pass(struct worker *ws, int n, void *(*fn)(void *), char *err)
{
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS];
    for (int t = 1; t < n; t++)
        started[t] = pthread_create(&tid[t], NULL, fn, &ws[t]) == 0;
    fn(&ws[0]);
    for (int t = 1; t < n; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            fn(&ws[t]);
    }
    tm_status first = TM_OK, cancelled = TM_OK;
    for (int t = 0; t < n; t++) {
        if (ws[t].st == TM_ECANCELLED) {
            cancelled = TM_ECANCELLED;
        } else if (ws[t].st != TM_OK && first == TM_OK) {
            first = ws[t].st;
            tm_errf(err, first, "vectorize: %s", ws[t].err[0] ? ws[t].err : tm_strerror(first));
        }
    }
    if (first == TM_OK && cancelled != TM_OK)
        return tm_errf(err, TM_ECANCELLED, "vectorize: cancelled");
    return first;
}

/* scikit-learn's parameter constraints: a fraction in [0, 1] or an integer
 * count >= 1. */
static int bad_df(const struct tm_df_bound *b)
{
    if (!isfinite(b->value))
        return 1;
    if (b->is_fraction)
        return b->value < 0 || b->value > 1;
    return b->value < 1 || b->value != floor(b->value);
}

static tm_status check_params(const struct tm_vectorizer_params *p, char *err)
{
    if (bad_df(&p->min_df))
        return tm_errf(err, TM_EINVAL, "min_df: must be a fraction in [0, 1] or a count >= 1");
    if (bad_df(&p->max_df))
        return tm_errf(err, TM_EINVAL, "max_df: must be a fraction in [0, 1] or a count >= 1");
    if (p->max_features < 0)
        return tm_errf(err, TM_EINVAL, "max_features: must be >= 0");
    if (p->n_threads < 0)
        return tm_errf(err, TM_EINVAL, "vectorize: n_threads must be >= 0");
    if (p->max_terms < 0)
        return tm_errf(err, TM_EINVAL, "vectorize: max_terms must be >= 0");
    if (p->ngram_min < 1)
        return tm_errf(err, TM_EINVAL, "ngram_range: min_n must be >= 1");
    if (p->ngram_min > p->ngram_max)
        return tm_errf(err, TM_EINVAL, "ngram_range: min_n must be <= max_n");
    if (p->n_stop_words && !p->stop_words)
        return tm_errf(err, TM_EINVAL, "stop_words: NULL list");
    for (size_t i = 0; i < p->n_stop_words; i++)
        if (!p->stop_words[i])
            return tm_errf(err, TM_EINVAL, "stop_words: NULL word");
    return TM_OK;
}

/* Splits [0, n_docs) into n chunks of about equal bytes. */
static void split_docs(struct worker *ws, int n, const struct tm_doc *docs, int64_t n_docs)
{
    double total = 0;
    for (int64_t d = 0; d < n_docs; d++)
        total += (double)docs[d].len + 16.0;
    double acc = 0;
    int t = 0;
    ws[0].lo = 0;
    for (int64_t d = 0; d < n_docs && t < n - 1; d++) {
        acc += (double)docs[d].len + 16.0;
        /* Leave at least one document for each later chunk. */
        if ((acc >= total * (t + 1) / n || n_docs - (d + 1) == n - 1 - t) && d + 1 < n_docs) {
            ws[t].hi = d + 1;
            ws[++t].lo = d + 1;
        }
    }
    ws[t].hi = n_docs;
    for (int u = t + 1; u < n; u++)
        ws[u].lo = ws[u].hi = n_docs;
}

/* Global terms in merge order, pointing at one thread's copy of the key. */
struct gterm {
    const char *key;
    uint32_t len;
    int64_t df, tf;
};

struct tf_rank {
    int64_t tf;
    int64_t index;
};

static int tf_rank_cmp(const void *a, const void *b)
{
    const struct tf_rank *x = a, *y = b;
    if (x->tf != y->tf)
        return x->tf > y->tf ? -1 : 1; /* larger totals first */
    return (x->index > y->index) - (x->index < y->index);
}

/* The k-way merge of the sorted local vocabularies. */
static tm_status merge_vocab(struct worker *ws, int n, int64_t max_terms, struct gterm **out,
                             int64_t *n_out, char *err)
{
    int64_t total = 0;
    int64_t head[MAX_THREADS];
    for (int t = 0; t < n; t++) {
        total += ws[t].n_order;
        head[t] = 0;
        ws[t].to_global = tm_mallocarray((size_t)ws[t].map.n + 1, sizeof(*ws[t].to_global));
        if (!ws[t].to_global)
            return tm_errf(err, TM_ENOMEM, "vectorize: cannot allocate term maps");
    }
    struct gterm *g = tm_mallocarray((size_t)total + 1, sizeof(*g));
    if (!g)
        return tm_errf(err, TM_ENOMEM, "vectorize: cannot allocate %lld terms", (long long)total);
    int64_t ng = 0;
    for (;;) {
        const struct sort_key *min = NULL;
        for (int t = 0; t < n; t++)
            if (head[t] < ws[t].n_order && (!min || key_cmp(&ws[t].order[head[t]], min) < 0))
                min = &ws[t].order[head[t]];
        if (!min)
            break;
        if (ng >= max_terms || ng >= INT32_MAX) {
            tm_free(g);
            return tm_errf(err, TM_ETOOBIG, "more than %lld distinct terms",
                           (long long)(max_terms < INT32_MAX ? max_terms : INT32_MAX));
        }
        struct gterm *gt = &g[ng];
        *gt = (struct gterm){min->key, min->len, 0, 0};
        for (int t = 0; t < n; t++) {
            const struct sort_key *k = &ws[t].order[head[t]];
            if (head[t] < ws[t].n_order && (k == min || key_cmp(k, min) == 0)) {
                ws[t].to_global[k->id] = (int32_t)ng;
                gt->df += ws[t].df[k->id];
                if (ws[t].tf)
                    gt->tf += ws[t].tf[k->id];
                head[t]++;
            }
        }
        ng++;
    }
    *out = g;
    *n_out = ng;
    return TM_OK;
}

/* sklearn's _limit_features: col_of[g] = column of term g or -1. */
static tm_status prune(const struct tm_vectorizer_params *p, int64_t n_docs, const struct gterm *g,
                       int64_t ng, int32_t *col_of, int64_t *n_kept, char *err)
{
    double max_count = p->max_df.is_fraction ? p->max_df.value * (double)n_docs : p->max_df.value;
    double min_count = p->min_df.is_fraction ? p->min_df.value * (double)n_docs : p->min_df.value;
    if (max_count < min_count)
        return tm_errf(err, TM_EINVAL, "max_df corresponds to < documents than min_df");
    int64_t kept = 0;
    for (int64_t i = 0; i < ng; i++) {
        double df = (double)g[i].df;
        col_of[i] = df <= max_count && df >= min_count ? 0 : -1;
        kept += col_of[i] == 0;
    }
    if (p->max_features > 0 && kept > p->max_features) {
        /* The most frequent by total count (after binary), ties to the
         * earlier term: a stable order, which numpy's default argsort does
         * not promise (see vectorize.h). */
        struct tf_rank *r = tm_mallocarray((size_t)kept, sizeof(*r));
        if (!r)
            return tm_errf(err, TM_ENOMEM, "vectorize: cannot allocate max_features ranks");
        int64_t j = 0;
        for (int64_t i = 0; i < ng; i++)
            if (col_of[i] == 0)
                r[j++] = (struct tf_rank){g[i].tf, i};
        qsort(r, (size_t)kept, sizeof(*r), tf_rank_cmp);
        for (int64_t i = p->max_features; i < kept; i++)
            col_of[r[i].index] = -1;
        tm_free(r);
        kept = p->max_features;
    }
    int64_t c = 0;
    for (int64_t i = 0; i < ng; i++)
        if (col_of[i] == 0)
            col_of[i] = (int32_t)c++;
    *n_kept = kept;
    if (kept == 0)
        return tm_errf(err, TM_ENOTERMS, "%s", NO_TERMS_MSG);
    return TM_OK;
}

static void release_workers(struct worker *ws, int n)
{
    for (int t = 0; t < n; t++) {
        struct worker *w = &ws[t];
        tm_strmap_release(&w->map);
        tm_free(w->df);
        tm_free(w->tf);
        tm_free(w->ent_id);
        tm_free(w->ent_count);
        tm_free(w->row_end);
        tm_textbuf_release(&w->repair);
        tm_textbuf_release(&w->quotes);
        tm_textbuf_release(&w->norm);
        tm_textbuf_release(&w->joined);
        tm_textbuf_release(&w->starts);
        tm_free(w->order);
        tm_free(w->to_global);
        tm_free(w->col);
        tm_free(w->raw_tf);
        tm_free(w->col_end);
        tm_free(w->bucket);
    }
    tm_free(ws);
}

/* What tm_vectorize and tm_vectorize_fixed share: the documents' split into
 * threads and the state of the passes. */
struct run {
    struct shared sh;
    struct worker *ws;
    int n;
    int lock_ok;
};

/* Checks the common arguments (n_docs >= 1 here) and splits the documents;
 * run_end releases r also after a failure. */
static tm_status run_begin(struct run *r, const struct tm_vectorizer_params *params,
                           const struct tm_doc *docs, int64_t n_docs,
                           const struct tm_progress *progress, char *err)
{
    memset(r, 0, sizeof(*r));
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t n_threads = params->n_threads > 0 ? params->n_threads : (cpus > 0 ? cpus : 1);
    if (n_threads > MAX_THREADS)
        n_threads = MAX_THREADS;
    if (n_threads > n_docs)
        n_threads = n_docs;
    r->n = (int)n_threads;

    struct shared *sh = &r->sh;
    sh->params = params;
    sh->docs = docs;
    sh->n_docs = n_docs;
    sh->progress = progress;
    const char *const *sw = NULL;
    int64_t n_listed =
        (int64_t)(params->english_stop_words ? tm_stopwords_english(&sw) : params->n_stop_words);
    sh->max_terms = params->max_terms > 0 ? params->max_terms : DEFAULT_MAX_TERMS;
    sh->max_keys = sh->max_terms + n_listed;
    atomic_init(&sh->cancelled, 0);
    r->lock_ok = pthread_mutex_init(&sh->lock, NULL) == 0;
    if (!r->lock_ok)
        return tm_errf(err, TM_ENOMEM, "vectorize: cannot create a mutex");
    r->ws = tm_calloc((size_t)r->n, sizeof(*r->ws));
    if (!r->ws)
        return tm_errf(err, TM_ENOMEM, "vectorize: cannot allocate %d workers", r->n);
    for (int t = 0; t < r->n; t++)
        r->ws[t].sh = sh;
    split_docs(r->ws, r->n, docs, n_docs);
    return TM_OK;
}

static void run_end(struct run *r)
{
    if (r->ws)
        release_workers(r->ws, r->n);
    if (r->lock_ok)
        pthread_mutex_destroy(&r->sh.lock);
    r->ws = NULL;
    r->lock_ok = 0;
}

/* Pass 1, with its progress report and cancellation check. */
static tm_status run_tokenize(struct run *r, char *err)
{
    if (tm_progress_report(r->sh.progress, "tokenize", 0.0))
        return tm_errf(err, TM_ECANCELLED, "vectorize: cancelled");
    return run_pass(r->ws, r->n, pass_tokenize, err);
}

/* Passes 2 and 3, once sh.col_of and sh.idf are set and every worker's
 * to_global is filled: the matrix into m (initialised here, n_cols wide). */
static tm_status run_matrix(struct run *r, int64_t n_cols, struct tm_csr *m, char *err)
{
    struct shared *sh = &r->sh;
    int64_t n_docs = sh->n_docs;
    tm_status st = tm_csr_init(m, n_docs, n_cols, 0, err);
    if (st != TM_OK)
        return st;
    sh->matrix = m;
    if ((st = run_pass(r->ws, r->n, pass_count, err)) != TM_OK)
        return st;
    for (int64_t d = 0; d < n_docs; d++)
        m->indptr[d + 1] += m->indptr[d];
    int64_t nnz = m->indptr[n_docs];
    tm_free(m->indices);
    tm_free(m->data);
    m->indices = tm_mallocarray((size_t)nnz + 1, sizeof(*m->indices));
    m->data = tm_mallocarray((size_t)nnz + 1, sizeof(*m->data));
    if (!m->indices || !m->data)
        return tm_errf(err, TM_ENOMEM, "vectorize: cannot allocate %lld non-zeros", (long long)nnz);
    sh->done = 0;
    return run_pass(r->ws, r->n, pass_fill, err);
}

static tm_status check_docs(const struct tm_doc *docs, int64_t n_docs, char *err)
{
    if (n_docs < 0 || (n_docs > 0 && !docs))
        return tm_errf(err, TM_EINVAL, "vectorize: bad document list");
    if (n_docs > INT32_MAX)
        return tm_errf(err, TM_ETOOBIG, "vectorize: more than %d documents", INT32_MAX);
    return TM_OK;
}

tm_status tm_vectorize(const struct tm_vectorizer_params *params, const struct tm_doc *docs,
                       int64_t n_docs, const struct tm_progress *progress,
                       struct tm_vectorized *out, char *err)
{
    memset(out, 0, sizeof(*out));
    if (err)
        err[0] = '\0';
    tm_status st = check_params(params, err);
    if (st == TM_OK)
        st = check_docs(docs, n_docs, err);
    if (st != TM_OK)
        return st;
    if (n_docs == 0)
        return tm_errf(err, TM_EEMPTY, "vectorize: no documents");

    double t0 = tm_clock_monotonic();
    struct run r;
    struct gterm *g = NULL;
    int32_t *col_of = NULL;
    double *idf = NULL;
    if ((st = run_begin(&r, params, docs, n_docs, progress, err)) != TM_OK)
        goto done;
    int n = r.n;
    struct worker *ws = r.ws;

    /* 1. tokenize and count */
    if ((st = run_tokenize(&r, err)) != TM_OK)
        goto done;
    double t1 = tm_clock_monotonic();
    out->seconds_tokenize = t1 - t0;

    /* merge and prune */
    if (tm_progress_report(progress, "vocabulary", 0.0)) {
        st = tm_errf(err, TM_ECANCELLED, "vectorize: cancelled");
        goto done;
    }
    int64_t ng = 0, kept = 0;
    if ((st = merge_vocab(ws, n, r.sh.max_terms, &g, &ng, err)) != TM_OK)
        goto done;
    if (ng == 0) {
        st = tm_errf(err, TM_ENOTERMS, "%s", EMPTY_VOCAB_MSG);
        goto done;
    }
    col_of = tm_mallocarray((size_t)ng, sizeof(*col_of));
    if (!col_of) {
        st = tm_errf(err, TM_ENOMEM, "vectorize: cannot allocate the column map");
        goto done;
    }
    if ((st = prune(params, n_docs, g, ng, col_of, &kept, err)) != TM_OK)
        goto done;
    out->n_pruned_terms = ng - kept;

    /* The vocabulary and document frequencies of the kept terms. */
    size_t pool_len = 0;
    for (int64_t i = 0; i < ng; i++)
        if (col_of[i] >= 0)
            pool_len += g[i].len;
    out->vocab.pool = tm_malloc(pool_len + 1);
    out->vocab.offsets = tm_mallocarray((size_t)kept + 1, sizeof(*out->vocab.offsets));
    out->df = tm_mallocarray((size_t)kept, sizeof(*out->df));
    out->term_frequency = tm_calloc((size_t)kept, sizeof(*out->term_frequency));
    out->doc_lengths = tm_mallocarray((size_t)n_docs, sizeof(*out->doc_lengths));
    if (!out->vocab.pool || !out->vocab.offsets || !out->df || !out->term_frequency ||
        !out->doc_lengths) {
        st = tm_errf(err, TM_ENOMEM, "vectorize: cannot allocate the vocabulary");
        goto done;
    }
    out->vocab.n_terms = kept;
    out->vocab.offsets[0] = 0;
    for (int64_t i = 0, c = 0; i < ng; i++) {
        if (col_of[i] < 0)
            continue;
        memcpy(out->vocab.pool + out->vocab.offsets[c], g[i].key, g[i].len);
        out->vocab.offsets[c + 1] = out->vocab.offsets[c] + g[i].len;
        out->df[c++] = g[i].df;
    }
    out->vocab.pool[pool_len] = '\0';
    if (params->weighting == TM_WEIGHTING_TFIDF && params->use_idf) {
        /* TfidfTransformer.fit: idf = ln((n + s) / (df + s)) + 1, s = smooth_idf,
         * computed in float64 as numpy does (divide, log, add). */
        idf = tm_mallocarray((size_t)kept, sizeof(*idf));
        if (!idf) {
            st = tm_errf(err, TM_ENOMEM, "vectorize: cannot allocate idf");
            goto done;
        }
        double s = params->smooth_idf ? 1.0 : 0.0;
        for (int64_t c = 0; c < kept; c++)
            idf[c] = log(((double)n_docs + s) / ((double)out->df[c] + s)) + 1.0;
    }
    double t2 = tm_clock_monotonic();
    out->seconds_vocabulary = t2 - t1;
    if (tm_progress_report(progress, "vocabulary", 1.0)) {
        st = tm_errf(err, TM_ECANCELLED, "vectorize: cancelled");
        goto done;
    }

    /* 2. row lengths, 3. rows */
    r.sh.col_of = col_of;
    r.sh.idf = idf;
    r.sh.doc_lengths = out->doc_lengths;
    if ((st = run_matrix(&r, kept, &out->matrix, err)) != TM_OK)
        goto done;
    /* The corpus counts of the kept terms, from each thread's local counts
     * (pass 2): one add per local term rather than per entry. */
    for (int t = 0; t < n; t++)
        for (int64_t i = ws[t].n_stop; i < ws[t].map.n; i++)
            if (ws[t].col[i] != UINT32_MAX)
                out->term_frequency[ws[t].col[i]] += (double)ws[t].raw_tf[i];
    out->idf = idf;
    idf = NULL;
    out->seconds_weighting = tm_clock_monotonic() - t2;

done:
    tm_free(idf);
    tm_free(col_of);
    tm_free(g);
    run_end(&r);
    if (st != TM_OK)
        tm_vectorized_release(out);
    return st;
}

void tm_vectorized_release(struct tm_vectorized *v)
{
    tm_csr_release(&v->matrix);
    tm_free(v->vocab.pool);
    tm_free(v->vocab.offsets);
    tm_free(v->df);
    tm_free(v->idf);
    tm_free(v->term_frequency);
    tm_free(v->doc_lengths);
    memset(v, 0, sizeof(*v));
}

/* Maps every thread's local terms to their column in vocab (through a hash
 * of the vocabulary), or to n_terms, whose col_of entry is -1, when the term
 * is not in it. */
static tm_status map_to_vocab(struct run *r, const struct tm_vocab *vocab, char *err)
{
    struct tm_strmap vm;
    int64_t n_terms = vocab->n_terms;
    tm_status st = tm_strmap_init(&vm, n_terms > 0 ? n_terms : 1);
    if (st != TM_OK) {
        st = tm_errf(err, st, "vectorize: cannot allocate the vocabulary map");
        goto done;
    }
    for (int64_t i = 0; i < n_terms; i++) {
        size_t len;
        const char *term = tm_vocab_term(vocab, i, &len);
        uint32_t id;
        int added;
        if ((st = tm_strmap_intern(&vm, term, len, &id, &added)) != TM_OK) {
            st = tm_errf(err, st, "vectorize: cannot allocate the vocabulary map");
            goto done;
        }
        if (!added) {
            st = tm_errf(err, TM_EINVAL, "vocabulary: term %lld repeats term %lu", (long long)i,
                         (unsigned long)id);
            goto done;
        }
    }
    for (int t = 0; t < r->n; t++) {
        struct worker *w = &r->ws[t];
        w->to_global = tm_mallocarray((size_t)w->map.n + 1, sizeof(*w->to_global));
        if (!w->to_global) {
            st = tm_errf(err, TM_ENOMEM, "vectorize: cannot allocate term maps");
            goto done;
        }
        for (int64_t i = w->n_stop; i < w->map.n; i++) {
            size_t len;
            const char *key = tm_strmap_key(&w->map, i, &len);
            int64_t id = tm_strmap_find(&vm, key, len);
            w->to_global[i] = (int32_t)(id >= 0 ? id : n_terms);
        }
    }
done:
    tm_strmap_release(&vm);
    return st;
}

tm_status tm_vectorize_fixed(const struct tm_vectorizer_params *params,
                             const struct tm_vocab *vocab, const double *idf,
                             const struct tm_doc *docs, int64_t n_docs,
                             const struct tm_progress *progress, struct tm_csr *out, char *err)
{
    memset(out, 0, sizeof(*out));
    if (err)
        err[0] = '\0';
    tm_status st = check_params(params, err);
    if (st == TM_OK)
        st = check_docs(docs, n_docs, err);
    if (st != TM_OK)
        return st;
    if (!vocab || vocab->n_terms < 0 || (vocab->n_terms > 0 && (!vocab->pool || !vocab->offsets)))
        return tm_errf(err, TM_EINVAL, "vocabulary: missing");
    if (vocab->n_terms > INT32_MAX)
        return tm_errf(err, TM_ETOOBIG, "vocabulary: more than %d terms", INT32_MAX);
    int use_idf = params->weighting == TM_WEIGHTING_TFIDF && params->use_idf;
    if (use_idf && !idf && vocab->n_terms > 0)
        return tm_errf(err, TM_EINVAL, "idf: missing for a TF-IDF vectorizer");
    if (n_docs == 0)
        return tm_csr_init(out, 0, vocab->n_terms, 0, err);

    struct run r;
    int32_t *col_of = NULL;
    if ((st = run_begin(&r, params, docs, n_docs, progress, err)) != TM_OK)
        goto done;
    r.sh.fixed = 1;
    if ((st = run_tokenize(&r, err)) != TM_OK)
        goto done;
    if ((st = map_to_vocab(&r, vocab, err)) != TM_OK)
        goto done;
    col_of = tm_mallocarray((size_t)vocab->n_terms + 1, sizeof(*col_of));
    if (!col_of) {
        st = tm_errf(err, TM_ENOMEM, "vectorize: cannot allocate the column map");
        goto done;
    }
    for (int64_t i = 0; i < vocab->n_terms; i++)
        col_of[i] = (int32_t)i;
    col_of[vocab->n_terms] = -1;
    r.sh.col_of = col_of;
    r.sh.idf = use_idf ? idf : NULL;
    st = run_matrix(&r, vocab->n_terms, out, err);
done:
    tm_free(col_of);
    run_end(&r);
    if (st != TM_OK)
        tm_csr_release(out);
    return st;
}
