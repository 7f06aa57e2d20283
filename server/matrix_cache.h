/*
 * matrix_cache.h - vectorized corpora kept in memory per (corpus, vectorizer
 * spec), so a second job on the same corpus and vectorizer skips tokenizing.
 * Bounded by bytes: least recently used entries that no job holds are
 * evicted; an entry larger than the whole budget is handed to its job but
 * not kept. Entries are shared read-only between workers (csr.h allows it).
 * Thread-safety: every function is thread-safe.
 */
#ifndef TM_SERVER_MATRIX_CACHE_H
#define TM_SERVER_MATRIX_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/text/vectorize.h"

struct tm_matrix_cache;
struct tm_matrix_ref; /* a job's hold on an entry */

/* max_bytes 0 disables caching (every put hands the matrix back uncached). */
tm_status tm_matrix_cache_new(struct tm_matrix_cache **out, int64_t max_bytes);
void tm_matrix_cache_free(struct tm_matrix_cache *c);

/*
 * The key of a corpus's matrix under a vectorizer: the corpus id, its
 * document count (an append changes the matrix, and a job that read the
 * corpus before the append keeps its own entry) and vec, vec_len bytes of
 * the vectorizer's spec key (tm_job_spec_vectorizer_key), as
 * "<corpus id>\n<n_documents>\n<vec>". tm_matrix_cache_invalidate finds a
 * corpus's entries by that first line. *key is returned owned (tm_free),
 * NUL-terminated, *key_len bytes before the NUL. Errors: TM_ENOMEM.
 */
tm_status tm_matrix_cache_key(const char *corpus_id, int64_t n_documents, const char *vec,
                              size_t vec_len, char **key, size_t *key_len);

/* The entry for key (borrowed bytes) or NULL; *ref must be released. */
const struct tm_vectorized *tm_matrix_cache_get(struct tm_matrix_cache *c, const char *key,
                                                size_t key_len, struct tm_matrix_ref **ref);

/* Takes v (its arrays; *v is zeroed) and returns the stored copy with a
 * hold on it in *ref. NULL with TM_ENOMEM (v released). */
const struct tm_vectorized *tm_matrix_cache_put(struct tm_matrix_cache *c, const char *key,
                                                size_t key_len, struct tm_vectorized *v,
                                                struct tm_matrix_ref **ref);

void tm_matrix_cache_release(struct tm_matrix_cache *c, struct tm_matrix_ref *ref);

/* Drops every entry of corpus_id, keyed by tm_matrix_cache_key (the corpus
 * was deleted or appended to); entries in use go when released. */
void tm_matrix_cache_invalidate(struct tm_matrix_cache *c, const char *corpus_id);

struct tm_matrix_cache_stats {
    int64_t entries, bytes, hits, misses;
};
void tm_matrix_cache_stats(struct tm_matrix_cache *c, struct tm_matrix_cache_stats *out);

/* Memory held by v's arrays, as the cache counts it. */
int64_t tm_vectorized_bytes(const struct tm_vectorized *v);

#endif
