/*
 * apply.h - a kept model applied to new documents (#17): the body of POST
 * /v1/jobs/{id}:transform, the run (the model's fitted vectorizer, then
 * core's tm_transform: scikit-learn's
 * model.transform(vectorizer.transform(docs))), and the answer
 * {"document_topics": [[...], ...], "ids": [...]} that the route and
 * `topicd transform` print.
 * Thread-safety: reentrant; a struct tm_apply_body has one owner at a time.
 */
#ifndef TM_API_APPLY_H
#define TM_API_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "api/corpus.h"
#include "api/error.h"
#include "api/model_file.h"
#include "core/transform.h"

/* Inline documents a transform answers at once (more become a job). */
#define TM_APPLY_MAX_INLINE 1000

struct tm_apply_body {
    int has_documents;
    struct tm_corpus documents; /* the inline documents, with their ids */
    char *corpus_id;            /* owned, or NULL */
};

/*
 * Parses {"documents": [strings or {"id","text"}]} or {"corpus_id": "..."}
 * (exactly one; no other member) from len bytes (borrowed). limits: the
 * corpus limits of the inline documents (copied; NULL: defaults). body:
 * initialised here; release with tm_apply_body_release (also after a
 * failure). Errors name the field and place: TM_EPARSE malformed JSON,
 * TM_EINVAL a wrong shape ("documents[3].text", "corpus_id", an unknown
 * member), TM_ETOOBIG past a limit, TM_ENOMEM.
 */
tm_status tm_apply_body_parse(struct tm_apply_body *body, const char *json, size_t len,
                              const struct tm_corpus_limits *limits, struct tm_api_error *e);
void tm_apply_body_release(struct tm_apply_body *body);

/*
 * The document-topic weights of docs (borrowed, n_docs >= 0) under model
 * (borrowed): the model's vectorizer with its vocabulary and idf (words
 * outside the vocabulary are ignored, as scikit-learn ignores them), then
 * tm_transform with its parameters and components. backend, ctx: as
 * tm_transform's (NULL, NULL: the CPU). n_threads: core's threads (0: 1).
 * out: as tm_transform's. Errors: the vectorizer's and tm_transform's, err
 * saying which ("vectorizer: ...", "transform: ...").
 */
tm_status tm_apply_run(const struct tm_model_file *model, const struct tm_doc *docs, int64_t n_docs,
                       const struct tm_backend_ops *backend, void *ctx, int n_threads,
                       const struct tm_progress *progress, struct tm_transform_result *out,
                       char *err);

/*
 * {"n_documents": m, "n_topics": k, "document_topics": [[k weights], ... m
 * rows], "ids": [id or null, ...]} (ids only when ids is not NULL), rows in
 * the documents' order. *out owned (tm_free). TM_ENUMERIC for a NaN or Inf
 * weight, TM_ENOMEM.
 */
tm_status tm_apply_render(const struct tm_transform_result *r, const char *const *ids, char **out,
                          size_t *len);

/*
 * The result of a transform job (POST /v1/jobs/{id}:transform past
 * TM_APPLY_MAX_INLINE documents, or of a corpus), whose weights go to the
 * document-topics pages as a fit's do: {"transform_of": source (borrowed),
 * "method": model's, "n_documents": m, "n_features", "n_topics": k,
 * "n_iter", "reconstruction_error", "device_used", "timings": {"read",
 * "transform", "total"}} (seconds). *out owned (tm_free). TM_ENUMERIC for
 * a NaN or Inf, TM_ENOMEM.
 */
tm_status tm_apply_render_job(const char *source, const struct tm_model_file *model,
                              const struct tm_transform_result *r, double read_s, double total_s,
                              char **out, size_t *len);

/* Whether a stored result (len bytes, borrowed) is tm_apply_render_job's,
 * which begins with "transform_of": one without topics of its own. */
int tm_apply_is_job_result(const char *json, size_t len);

#endif
