/*
 * pyldavis.h - GET /v1/jobs/{id}/pyldavis.json: the arguments
 * pyLDAvis.prepare takes, from a job's kept model (api/model_file.h) and its
 * document-topic weights, so that
 *     pyLDAvis.prepare(**json.load(open("pyldavis.json")))
 * draws the job:
 *   {"topic_term_dists": k rows of n_features, each the topic's components
 *                        row divided by its sum,
 *    "doc_topic_dists":  n_documents rows of k, each the document's stored
 *                        weights divided by their sum,
 *    "doc_lengths":      n_documents tokens kept per document,
 *    "vocab":            n_features terms,
 *    "term_frequency":   n_features raw counts over the corpus}
 * pyLDAvis refuses a row that does not sum to 1: an all-zero row (a
 * document no topic explains, often an empty one; a topic NMF emptied)
 * becomes uniform (1/k, 1/n_features), so rows stay aligned with the job's
 * documents and topics. NMF only: pyLDAvis reads rows as probabilities,
 * and an SVD job's components can be negative.
 * Thread-safety: reentrant.
 */
#ifndef TM_API_PYLDAVIS_H
#define TM_API_PYLDAVIS_H

#include <stddef.h>
#include <stdint.h>

#include "api/error.h"
#include "api/model_file.h"

/* The most bytes of the document (the job's size decides it). */
#define TM_PYLDAVIS_MAX_BYTES ((size_t)1 << 30)

/*
 * m: the job's model (borrowed). doc_topics: n_documents x k weights,
 * row-major (borrowed). *out owned (tm_free). Errors (e says which):
 * TM_EINVAL for a model that is not NMF ("method": "...can be negative")
 * or a negative weight, TM_ENOTFOUND for a model without term_frequency
 * or doc_lengths, TM_EINVAL when the weights' shape is not the model's,
 * TM_ETOOBIG past TM_PYLDAVIS_MAX_BYTES, TM_ENOMEM.
 */
tm_status tm_pyldavis_render(const struct tm_model_file *m, const double *doc_topics,
                             int64_t n_documents, int64_t k, char **out, size_t *len,
                             struct tm_api_error *e);

#endif
