/*
 * result.h - results to JSON: the job result (`topicd fit`, GET
 * /v1/jobs/{id}/result) and the `topicd vectorize` summary. Defined once
 * here so the CLI and the server print the same document. (The paginated
 * document-topics pages are api/responses.h's.)
 *
 * Job result:
 *   {"n_documents", "n_features", "nnz", "method", "n_topics",
 *    "topics": [{"index", "words": [{"term", "index", "weight"}, ...]}, ...],
 *    "singular_values", "explained_variance_ratio"       (SVD only),
 *    "reconstruction_error", "n_iter", "error_trace": [...],
 *    "sweep": [{"n_topics", "reconstruction_error", "explained_variance" (SVD),
 *               "coherence" (when measured), "n_iter", "seconds"}, ...],
 *    "sweep_rule", "sweep_coherence" (a sweep: the fit above is the suggested k's;
 *                  the measure of the points' coherence, with coherence),
 *    "coherence": {"c_v": {"mean", "per_topic": [...]}, ...}  (when asked for;
 *                  a score gensim would give as NaN or Inf is null),
 *    "document_topics": [[w_0, ..., w_k-1], ...]          (when asked for),
 *    "device", "model_bytes"                           (when a model is kept),
 *    "timings": {"read", "tokenize", "vocabulary", "weighting",
 *                "init", "fit", "coherence", "total"}   (seconds)}
 * "term" is left out when no vocabulary is known (a Matrix Market input).
 * Numbers that are data print with enough digits to read back exactly.
 * NaN and Inf have no JSON form (cJSON would print null): rendering fails
 * with TM_ENUMERIC naming the field ("singular_values[3]") instead.
 * Thread-safety: reentrant; the inputs are only read.
 */
#ifndef TM_API_RESULT_H
#define TM_API_RESULT_H

#include <stddef.h>
#include <stdint.h>

#include "api/error.h"
#include "api/jbuf.h"
#include "api/spec.h"
#include "core/model.h"
#include "core/text/vectorize.h"

/* Timings measured outside core (seconds; < 0 leaves the key out). */
struct tm_result_timings {
    double read;  /* reading and parsing the input */
    double total; /* the whole job */
    /* Not a timing, but likewise known only outside core: the bytes of the
     * model file kept with the job (api/model_file.h), "model_bytes" beside
     * "device"; < 0 leaves it out. */
    int64_t model_bytes;
};

/* Sets both timings and model_bytes to -1 (left out). */
void tm_result_timings_init(struct tm_result_timings *t);

/*
 * r: the fit. v: the vectorization it came from, for the vocabulary and its
 * timings; may be NULL, and its vocabulary may be empty (terms then left
 * out). spec: NULL or the job's spec (return.document_topics). timings: NULL
 * or extra timings. *out is returned owned (tm_free), NUL-terminated.
 * Errors: TM_ENUMERIC (non-finite value, field named), TM_EINVAL (a term
 * index outside the vocabulary), TM_ENOMEM.
 */
tm_status tm_result_render_fit(const struct tm_fit_result *r, const struct tm_vectorized *v,
                               const struct tm_job_spec *spec,
                               const struct tm_result_timings *timings, char **out, size_t *len,
                               struct tm_api_error *e);

/*
 * The `topicd vectorize` summary:
 *   {"n_documents", "n_features", "nnz", "n_pruned_terms",
 *    "vocabulary": [...], "document_frequencies": [...], "idf": [...],
 *    "timings": {...}}
 * With summary set, the three arrays become their first and last 10 entries
 * ("vocabulary_head"/"vocabulary_tail", "document_frequencies_head"/"_tail",
 * "idf_head"/"_tail"). "idf" is left out when v has none (count weighting,
 * use_idf false). Errors: TM_ENUMERIC, TM_ENOMEM.
 */
tm_status tm_result_render_vectorize(const struct tm_vectorized *v, int summary,
                                     const struct tm_result_timings *timings, char **out,
                                     size_t *len, struct tm_api_error *e);

#endif
