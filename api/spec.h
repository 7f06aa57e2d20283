/*
 * spec.h - the job spec: JSON in, validated core parameters out.
 *
 *   {
 *     "preprocess": {"strip": ["headers", "footers", "quotes"]},
 *     "vectorizer": {"weighting": "tfidf", "lowercase": true, "strip_accents": null,
 *                    "stop_words": null | "english" | ["..."], "min_df": 1,
 *                    "max_df": 1.0, "max_features": null, "binary": false,
 *                    "use_idf": true, "smooth_idf": true, "sublinear_tf": false,
 *                    "norm": "l2" | "l1" | null},
 *     "model": {"method": "nmf" | "truncated_svd" | "full_svd",
 *               "n_topics": 10 | [5, 10, 20] | {"start": 2, "stop": 50, "step": 4},
 *               "n_top_words": 10, "dtype": "float32" | "float64",
 *               "coherence": "c_v" | ["u_mass", "c_uci", "c_npmi", "c_v"],
 *               ...the method's parameters, flat (see below)},
 *     "return": {"document_topics": false},
 *     "seed": 0, "device": "auto" | "cpu" | "gpu",
 *     "corpus_id": "...",                    (server)
 *     "transform_of": "<job id>",            (server: a transform job, no model)
 *     "documents": ["...", {"id": "...", "text": "..."}, ...]   (server, small corpora)
 *   }
 *
 * Names and defaults are scikit-learn's. min_df/max_df: a JSON integer is a
 * document count (min_df >= 0, max_df >= 1), a number written with '.', 'e'
 * or 'E' is a fraction in [0, 1]: 1 and 1.0 differ, as int and float do in
 * Python. Method parameters:
 *   truncated_svd: algorithm ("randomized" | "lanczos"); with randomized:
 *                  n_oversamples, n_iter ("auto" | int >= 0),
 *                  power_iteration_normalizer ("auto" | "LU" | "QR" | "none");
 *                  with lanczos: tol (1e-6), max_iter
 *   full_svd:      max_dense_bytes
 *   nmf:           init (null | "nndsvd" | "nndsvda" | "nndsvdar" | "random"),
 *                  solver ("cd" | "mu" | "pgd"), beta_loss ("frobenius" |
 *                  "kullback-leibler", the latter with mu only), tol (1e-4),
 *                  max_iter, alpha_W, alpha_H (number | "same"), l1_ratio
 *                  (cd and mu); shuffle (cd); learning_rate,
 *                  learning_rate_decay, penalty, penalty_mu (pgd)
 * n_topics as a list (any order, sorted here; no duplicates) or a range
 * (Python's range: stop excluded, step 1 by default, start >= 1): a sweep of
 * 1 to TM_SWEEP_MAX values of k, each >= 1; warm_start (false; nmf with a
 * sweep only) starts each k from the last (core/sweep.h).
 * Every unknown field, duplicate field, wrong type, out-of-range value and
 * parameter that the chosen method/solver/algorithm does not use is an
 * error naming the field: "model.solver: not a parameter of truncated_svd".
 * Thread-safety: one owner at a time; parsing is reentrant.
 */
#ifndef TM_API_SPEC_H
#define TM_API_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "api/corpus.h"
#include "api/error.h"
#include "core/model.h"
#include "core/sweep.h"
#include "core/text/vectorize.h"

/* Caps on what a spec may carry besides inline documents. */
#define TM_SPEC_MAX_STOP_WORDS 100000
#define TM_SPEC_MAX_ID_BYTES 256
/* vectorizer.ngram_range's largest max_n (why: api/spec.c, parse_ngram_range). */
#define TM_SPEC_MAX_NGRAM 5

struct tm_job_spec {
    /* Resolved vectorizer parameters; stop_words points into owned storage
     * below when a custom list was given. */
    struct tm_vectorizer_params vectorizer;
    char **stop_words; /* owned, vectorizer.n_stop_words entries, or NULL */

    int has_model; /* 0: no "model" (vectorize only) */
    /* Defaults from tm_model_params_init, then the spec; seed and device are
     * copied in from the top level even without "model". */
    struct tm_model_params model;

    int return_document_topics; /* "return": {"document_topics": true} */

    /* model.n_topics as a list or a range (core/sweep.h): n_sweep values of
     * k, increasing; model.n_topics then holds the largest. 0: one k. */
    int64_t n_sweep;
    int64_t sweep_topics[TM_SWEEP_MAX];
    int sweep_warm_start; /* model.warm_start */

    char *corpus_id; /* owned, or NULL */
    /* A transform job's source job (POST /v1/jobs/{id}:transform makes it;
     * POST /v1/jobs refuses it): owned, or NULL. */
    char *transform_of;
    int has_documents;          /* "documents" was present (possibly empty) */
    struct tm_corpus documents; /* inline documents; initialised always */
};

/* Defaults, no model, no documents. Always pair with tm_job_spec_release. */
void tm_job_spec_init(struct tm_job_spec *spec);

/*
 * Parses and validates len bytes of JSON (borrowed) into spec, which must be
 * freshly initialised. limits: caps for inline "documents" (NULL for
 * defaults). On failure e says what and where: TM_EPARSE (malformed JSON,
 * with offset/line/column), TM_EINVAL (unknown field, wrong type,
 * disallowed combination), TM_ERANGE (value out of range), TM_ETOOBIG,
 * TM_ENOMEM; spec then holds partial values and must still be released.
 */
tm_status tm_job_spec_parse(struct tm_job_spec *spec, const char *json, size_t len,
                            const struct tm_corpus_limits *limits, struct tm_api_error *e);

void tm_job_spec_release(struct tm_job_spec *spec);

/*
 * A canonical JSON text of everything that determines the vectorized matrix
 * (preprocess + resolved vectorizer parameters, defaults filled in, keys in a
 * fixed order; n_threads excluded since it does not change the result): the
 * server's cache key per (corpus, vectorizer spec). *out owned (tm_free).
 */
tm_status tm_job_spec_vectorizer_key(const struct tm_job_spec *spec, char **out, size_t *len);

/* Names as in the spec ("nmf", "truncated_svd", ...), for results and logs. */
const char *tm_method_name(enum tm_method method);
const char *tm_device_name(enum tm_device device);

#endif
