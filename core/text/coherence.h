/*
 * coherence.h - topic coherence as gensim's CoherenceModel defines it
 * (u_mass, c_uci, c_npmi, c_v), over the vectorizer's own tokens.
 *
 * Two steps, so that a sweep over k tokenizes once:
 *   tm_coherence_corpus_new   the documents' token streams: scikit-learn's
 *                             analyzer output (preprocess strip, lower-case,
 *                             accents, tokens of >= 2 word characters, stop
 *                             words removed; unigrams), each token stored as
 *                             its vocabulary index, or -1 for a token the
 *                             vocabulary pruned (min_df, max_df,
 *                             max_features): it keeps its place in a window
 *                             but is never a top word;
 *   tm_coherence_score        any set of topics (top-word lists) against
 *                             those streams, any number of times.
 *
 * The measures, exactly as gensim 4 computes them (coherencemodel.py and
 * topic_coherence/), with N virtual documents, n(w) the virtual documents
 * holding w, n(a, b) those holding both, EPS = 1e-12, log natural:
 *   u_mass  virtual documents = the documents ("boolean_document"); pairs
 *           (w_i, w_j), j < i, in top-word order ("one_pre");
 *           log((n(w_i, w_j)/N + EPS) / (n(w_j)/N)), 0 when n(w_j) = 0.
 *   c_uci   virtual documents = sliding windows of 10 tokens
 *           ("boolean_sliding_window"); every ordered pair i != j;
 *           PMI = log((n(a, b)/N + EPS) / ((n(a)/N) (n(b)/N))).
 *   c_npmi  as c_uci with NPMI = PMI / -log(n(a, b)/N + EPS).
 *   c_v     windows of 110 tokens; for each top word w_i, the cosine
 *           between its NPMI vector (NPMI(w_i, w_j) over the topic's words
 *           w_j, itself included) and the topic's (the sum of its words'
 *           vectors) ("one_set", indirect cosine, gamma 1).
 * A topic's score is the mean over its pairs (c_v: its words); the model's
 * is the mean over topics.
 * Windows, as gensim's WordOccurrenceAccumulator slides them: a document
 * of L >= w tokens gives L - w + 1 windows, one of L < w tokens (empty ones
 * included) one window holding all of it, and each counts in N. The first
 * window holds its distinct words; each step then drops the word of the
 * token leaving and adds the word of the token entering, so a word whose
 * earlier occurrence leaves counts as absent until it enters again even
 * when another occurrence is still inside (gensim's accounting, kept here
 * so that the scores agree).
 * Edge cases, as gensim gives them: a top word that never occurs makes
 * u_mass's pairs with it as w_j 0, and c_uci/c_npmi +Inf and c_v NaN for
 * its topic; a topic with fewer than two words has NaN for u_mass, c_uci
 * and c_npmi (the mean of no pairs); a word in every window makes NPMI's
 * denominator 0 only when n(a, b)/N + EPS rounds to 1, giving gensim's
 * +-Inf or NaN. The model mean here skips non-finite topic scores (gensim's
 * would be NaN or Inf).
 * Counting touches only pairs of words in the same topic: one pass per
 * window size over the streams, O(tokens + events x topic length), where an
 * event is a top word entering or leaving the window.
 * Thread-safety: a corpus is read-only once made; tm_coherence_score may
 * run on it from several threads at once.
 */
#ifndef TM_CORE_TEXT_COHERENCE_H
#define TM_CORE_TEXT_COHERENCE_H

#include <stdint.h>

#include "core/model.h"
#include "core/status.h"
#include "core/text/vectorize.h"

/* gensim's default window sizes (SLIDING_WINDOW_SIZES); 0 for u_mass. */
#define TM_COHERENCE_WINDOW_UCI 10
#define TM_COHERENCE_WINDOW_NPMI 10
#define TM_COHERENCE_WINDOW_CV 110

struct tm_coherence_corpus;

/*
 * The token streams of docs (borrowed, n_docs >= 0) under params's
 * preprocess/lower-case/accents/stop words (borrowed; the pruning and
 * weighting fields do not matter; n_threads threads, 0: 1), each token
 * mapped to its index in vocab (borrowed; the vocabulary these documents
 * were vectorized into, or any list of terms). The texts and vocab may be
 * freed afterwards. *out: returned owned, tm_coherence_corpus_free.
 * Errors: TM_EINVAL (a NULL text with a length), TM_ETOOBIG (a document
 * past 4 GiB, or more than 2^31 terms), TM_ENOMEM.
 */
tm_status tm_coherence_corpus_new(const struct tm_vectorizer_params *params,
                                  const struct tm_doc *docs, int64_t n_docs,
                                  const struct tm_vocab *vocab, struct tm_coherence_corpus **out,
                                  char *err);

void tm_coherence_corpus_free(struct tm_coherence_corpus *c);

/* Documents and tokens held (for logs and tests). */
int64_t tm_coherence_corpus_n_docs(const struct tm_coherence_corpus *c);
int64_t tm_coherence_corpus_n_tokens(const struct tm_coherence_corpus *c);

/*
 * Scores n_topics topics for each measure in the mask measures
 * (TM_COHERENCE_BIT). top_terms: borrowed, n_topics rows of n_top
 * vocabulary indices (the fit result's top_terms layout): a topic's words
 * are its row up to the first negative entry, in order (a topic's first
 * words weigh most, which u_mass's pairs depend on). per_topic: caller's,
 * TM_COHERENCE_N_MEASURES * n_topics doubles; measure m's scores go to
 * per_topic[m * n_topics + t], rows of unasked measures are left alone.
 * mean: caller's, TM_COHERENCE_N_MEASURES doubles, the same way.
 * n_threads: 0 or 1 for one, more split the documents.
 * Errors: TM_EINVAL (a term index outside the vocabulary, a word twice in
 * one topic, n_top < 1, an unknown measure bit), TM_ENOMEM.
 */
tm_status tm_coherence_score(const struct tm_coherence_corpus *c, unsigned measures,
                             const int64_t *top_terms, int64_t n_topics, int64_t n_top,
                             int n_threads, double *per_topic, double *mean, char *err);

/*
 * tm_coherence_score on a fit result's top words for the measures in
 * mask measures, filling r's coherence fields (allocating
 * r->coherence_per_topic, freed by tm_fit_result_release) and
 * r->seconds_coherence. Errors as tm_coherence_score's.
 */
tm_status tm_coherence_score_result(const struct tm_coherence_corpus *c, unsigned measures,
                                    int n_threads, struct tm_fit_result *r, char *err);

/* "u_mass", "c_uci", "c_npmi", "c_v"; NULL for anything else. */
const char *tm_coherence_name(enum tm_coherence_measure m);

#endif
