/*
 * vectorize.h - documents to a sparse TF-IDF (or count) matrix, exact to
 * scikit-learn's TfidfVectorizer / CountVectorizer.
 *
 * Pipeline: optional newsgroup cleanup (preprocess.h), lower-casing and
 * accent stripping, tokens = maximal runs of >= 2 Unicode word characters
 * (Python's (?u)\b\w\w+\b), stop words, word n-grams (scikit-learn's
 * _word_ngrams: made after stop-word removal), vocabulary in code-point
 * order, min_df / max_df / max_features pruning (over the n-grams), then
 * tf-idf weighting and row normalisation. Documents are split across threads and merged so that the
 * result is identical for any thread count.
 *
 * Text is UTF-8. Invalid sequences are replaced by U+FFFD (as Python's
 * bytes.decode(errors="replace") does), which is not a word character; NUL
 * is an ordinary non-word character. Empty documents give empty rows.
 *
 * Where topicd knowingly differs from scikit-learn (everything else is
 * checked against it: tests/fixtures/text/, bench/conformance_text.py):
 * - max_features ties: terms tied on total count at the cut are kept in term
 *   order. scikit-learn uses numpy's default argsort, which is not stable
 *   (a SIMD sort on x86), so its choice among tied terms is arbitrary.
 * - Unicode version: classes, case and NFKD come from utf8proc (2.8:
 *   Unicode 15), Python 3.11 uses Unicode 14; the few thousand code points
 *   assigned in only one of them are letters to one and not the other.
 * - Python's Final_Sigma rule (a capital sigma ending a word lower-cases to
 *   U+03C2) is implemented with Cased / Case_Ignorable approximated from
 *   general categories (tokenize.c); U+0130 lower-cases to "i" U+0307 as in
 *   Python.
 * Progress stages (progress.h): "tokenize" (0..1 by documents),
 * "vocabulary" (0 and 1), "weighting" (0..1 by rows).
 * Thread-safety: tm_vectorize and tm_vectorize_fixed are reentrant; each
 * starts and joins its own threads and shares nothing between calls.
 */
#ifndef TM_CORE_TEXT_VECTORIZE_H
#define TM_CORE_TEXT_VECTORIZE_H

#include <stddef.h>
#include <stdint.h>

#include "core/csr.h"
#include "core/progress.h"
#include "core/status.h"

/* preprocess.strip flags, applied in this order (scikit-learn's). */
enum {
    TM_STRIP_HEADERS = 1 << 0,
    TM_STRIP_FOOTERS = 1 << 1,
    TM_STRIP_QUOTES = 1 << 2,
};

enum tm_weighting { TM_WEIGHTING_TFIDF, TM_WEIGHTING_COUNT };
enum tm_norm { TM_NORM_L2, TM_NORM_L1, TM_NORM_NONE };
enum tm_accents { TM_ACCENTS_NONE, TM_ACCENTS_ASCII, TM_ACCENTS_UNICODE };

/* scikit-learn's int-or-float document-frequency bounds. */
struct tm_df_bound {
    int is_fraction; /* 1: value is a fraction of documents in [0, 1]; 0: an integer count >= 1 */
    double value;
};

struct tm_vectorizer_params {
    unsigned strip;                /* TM_STRIP_* flags; default 0 */
    enum tm_weighting weighting;   /* TFIDF */
    int lowercase;                 /* 1 */
    enum tm_accents strip_accents; /* NONE */
    int english_stop_words;        /* 0; 1 = scikit-learn's 318-word list */
    const char *const *stop_words; /* borrowed custom list (UTF-8, NUL-terminated), or NULL */
    size_t n_stop_words;
    struct tm_df_bound min_df; /* count 1 */
    struct tm_df_bound max_df; /* fraction 1.0 */
    int64_t max_features;      /* 0: no limit */
    int binary;                /* 0 */
    int use_idf;               /* 1 */
    int smooth_idf;            /* 1 */
    int sublinear_tf;          /* 0 */
    enum tm_norm norm;         /* L2 */
    int n_threads;             /* 0: one per online CPU; at most 256, and at most n_docs */
    int64_t max_terms;         /* cap on distinct terms seen before pruning; 0: 16M */
    /* scikit-learn's ngram_range: terms are the runs of ngram_min ..
     * ngram_max consecutive tokens left after stop-word removal, joined by
     * one space; 1 <= ngram_min <= ngram_max. Default 1, 1. */
    int64_t ngram_min, ngram_max;
};

/* A document: borrowed bytes, not NUL-terminated. */
struct tm_doc {
    const char *text;
    size_t len;
};

/* Terms in one pool: term i is pool[offsets[i] .. offsets[i+1]). */
struct tm_vocab {
    int64_t n_terms;
    char *pool;
    int64_t *offsets; /* n_terms + 1 */
};

struct tm_vectorized {
    struct tm_csr matrix; /* n_docs x n_terms */
    struct tm_vocab vocab;
    int64_t *df; /* n_terms document frequencies */
    double *idf; /* n_terms, or NULL when weighting is count or use_idf is 0 */
    /* Raw counts, whatever the weighting and binary say (pyLDAvis's inputs):
     * each kept term's occurrences over the corpus (n_terms), and each
     * document's occurrences of kept terms (n_docs), i.e. the column and
     * row sums of CountVectorizer(binary=False) over the same vocabulary. */
    double *term_frequency;
    int64_t *doc_lengths;
    int64_t n_pruned_terms;    /* terms removed by min_df/max_df/max_features */
    double seconds_tokenize;   /* preprocessing + tokenizing + counting */
    double seconds_vocabulary; /* merge, sort, prune */
    double seconds_weighting;  /* matrix build, idf, normalisation */
};

/* scikit-learn's defaults. */
void tm_vectorizer_params_init(struct tm_vectorizer_params *params);

/*
 * docs: borrowed, n_docs of them (text may be NULL when len is 0). out:
 * initialised here, release with tm_vectorized_release (also safe after a
 * failure). progress: borrowed, may be NULL. err: NULL or TM_ERR_SIZE bytes.
 * Errors: TM_EEMPTY for no documents; TM_EINVAL for a parameter out of
 * scikit-learn's range (err names it: "min_df: ..."), and with scikit-learn's
 * message "max_df corresponds to < documents than min_df"; TM_ENOTERMS with
 * scikit-learn's messages when the vocabulary is empty ("empty vocabulary;
 * perhaps the documents only contain stop words") or pruning leaves nothing
 * ("After pruning, no terms remain. Try a lower min_df or a higher max_df.");
 * TM_ETOOBIG past max_terms ("more than N distinct terms"); TM_ECANCELLED;
 * TM_ENOMEM.
 */
tm_status tm_vectorize(const struct tm_vectorizer_params *params, const struct tm_doc *docs,
                       int64_t n_docs, const struct tm_progress *progress,
                       struct tm_vectorized *out, char *err);

void tm_vectorized_release(struct tm_vectorized *v);

struct tm_textbuf;

/*
 * For core/text's own modules (coherence.c), so that they see a document's
 * tokens as tm_vectorize does: the steps before the tokens. In: *text,
 * *len the document (*text may be NULL when *len is 0). UTF-8 repair (into
 * repair), params->strip (into quotes), then, unless the text is ASCII,
 * lower-casing and accents (into norm). Out: *text, *len what to tokenize;
 * *base what the tokens' starts count from; *ascii set when the one-pass
 * tm_tokenize_ascii applies (it lower-cases into norm, reserved here with
 * 8 zero bytes past the text, which the padded hash may read).
 * Errors: TM_ETOOBIG when a buffer would pass its max.
 */
tm_status tm__vectorize_prepare(const struct tm_vectorizer_params *params,
                                struct tm_textbuf *repair, struct tm_textbuf *quotes,
                                struct tm_textbuf *norm, const char **text, size_t *len,
                                const char **base, int *ascii);

/*
 * scikit-learn's fitted vectorizer.transform(docs): the rows of docs over a
 * fixed vocabulary (sorted as tm_vectorize leaves it), counted, weighted with
 * idf (n_terms entries, or NULL when the fit had none) and params' weighting,
 * binary, sublinear_tf and norm; tokens (and n-grams) not in vocab are
 * ignored, as scikit-learn ignores them. out: n_docs x vocab->n_terms,
 * initialised here, release with tm_csr_release (also after a failure).
 * params' min_df, max_df and max_features do not apply; max_terms caps the
 * distinct tokens seen (known or not) per thread. idf is used only when
 * params ask for TF-IDF with use_idf (and must then be given). n_docs may
 * be 0 (a 0-row matrix). Errors: TM_EINVAL (bad params, a NULL vocabulary or
 * one with a repeated term, a missing idf), TM_ETOOBIG, TM_ECANCELLED,
 * TM_ENOMEM.
 * Progress stages: "tokenize" and "weighting", as tm_vectorize's.
 */
tm_status tm_vectorize_fixed(const struct tm_vectorizer_params *params,
                             const struct tm_vocab *vocab, const double *idf,
                             const struct tm_doc *docs, int64_t n_docs,
                             const struct tm_progress *progress, struct tm_csr *out, char *err);

/* Term i as a pointer and length into the pool (not NUL-terminated). */
static inline const char *tm_vocab_term(const struct tm_vocab *v, int64_t i, size_t *len)
{
    *len = (size_t)(v->offsets[i + 1] - v->offsets[i]);
    return v->pool + v->offsets[i];
}

#endif
