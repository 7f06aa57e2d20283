/*
 * model_file.h - a fitted model as a file: what GET /v1/jobs/{id}/model
 * downloads, `topicd fit --save-model` writes and a transform reads back.
 *
 * The file is a NumPy .npz (api/npz.h) that numpy.load opens with
 * allow_pickle=False. Members (k topics, n terms, m training documents):
 *   components          k x n  scikit-learn's components_ (NMF's H, SVD's V^T),
 *                              float64 or float32 (metadata components_dtype)
 *   vocabulary_utf8     uint8  the terms' UTF-8 bytes back to back, in
 *                              vocabulary (code-point) order
 *   vocabulary_offsets  int64  n + 1: term i is bytes [o[i], o[i+1])
 *   document_frequencies int64 n
 *   idf                 float64 n (absent when the vectorizer has none:
 *                              count weighting or use_idf false)
 *   singular_values     float64 k (SVD methods only)
 *   term_frequency      float64 n  raw counts over the corpus (when known)
 *   doc_lengths         int64  m  tokens kept per document (when known)
 *   metadata.json       a JSON object (a plain member: numpy.load gives its
 *                       bytes): {"format": "topicd-model", "format_version",
 *                       "topicd_version", "method", "n_documents",
 *                       "n_features", "n_topics", "components_dtype",
 *                       "vectorizer": the canonical object of
 *                       tm_job_spec_vectorizer_key, "model": the job spec's
 *                       "model" object with every parameter the method uses
 *                       spelled out, "seed", "fit": {"reconstruction_error",
 *                       "n_iter"}}
 * The vocabulary is bytes plus offsets rather than numpy's fixed-width '<U'
 * strings: those take 4 bytes per code point of the longest term for every
 * term, and a term's length has no bound.
 * Thread-safety: reentrant; a struct tm_model_file has one owner at a time.
 */
#ifndef TM_API_MODEL_FILE_H
#define TM_API_MODEL_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "api/spec.h"
#include "core/model.h"
#include "core/text/vectorize.h"

/* The format this topicd writes and reads; any other is refused. */
#define TM_MODEL_FILE_VERSION 1

/* The most bytes a model file's members may inflate to when read. */
#define TM_MODEL_FILE_MAX_BYTES ((size_t)16 << 30)

/* What a model file is made of; all borrowed. */
struct tm_model_file_parts {
    const struct tm_fit_result *fit; /* its components, singular values, sizes */
    const struct tm_vectorized *v;   /* vocabulary, df, idf (n_features terms) */
    const struct tm_job_spec *spec;  /* the vectorizer and model parameters */
    const double *term_frequency;    /* n_features, or NULL */
    const int64_t *doc_lengths;      /* fit->n_documents, or NULL */
    int components_float32;          /* 1: components stored as float32 */
};

/*
 * The .npz bytes of a model: *out owned (tm_free). Errors: TM_EINVAL (the
 * parts disagree: a vocabulary of another size, no vocabulary), TM_ETOOBIG
 * (past 4 GiB), TM_ENOMEM; err says which.
 */
tm_status tm_model_file_write(const struct tm_model_file_parts *parts, unsigned char **out,
                              size_t *len, char *err);

/*
 * A model file read back and checked. Every pointer is owned by the struct
 * (release with tm_model_file_release), never NULL unless said.
 */
struct tm_model_file {
    int format_version;
    char topicd_version[64];
    enum tm_method method;
    int64_t n_documents, n_features, n_topics;
    /* The vectorizer as fitted: its stop_words (if a custom list) point
     * into this struct. n_threads 0, max_terms as saved. */
    struct tm_vectorizer_params vectorizer;
    /* The model parameters (defaults, then the file's "model" and "seed"). */
    struct tm_model_params params;
    /* The vocabulary, n_features terms in code-point order (strictly
     * increasing as bytes, each non-empty valid UTF-8), with its document
     * frequencies and idf (NULL when the vectorizer has none). */
    struct tm_vocab vocab;
    int64_t *df;
    double *idf;
    /* n_features x n_topics, column-major (topic t at data + t *
     * n_features), as struct tm_fit_result's components: components_^T,
     * in float64 whatever the file stored. */
    struct tm_dense_owned components;
    double *singular_values; /* n_topics (SVD methods), else NULL */
    double *term_frequency;  /* n_features, or NULL */
    int64_t *doc_lengths;    /* n_documents, or NULL */
    char *metadata_json;     /* the metadata as stored, NUL-terminated */
    size_t metadata_len;
    char *vectorizer_key; /* the "vectorizer" object as tm_job_spec_vectorizer_key writes it */
    size_t vectorizer_key_len;
    char **stop_words; /* the custom list's storage, or NULL */
};

/*
 * Reads len bytes (borrowed) into out (initialised here; release after
 * success or failure). Errors: TM_EPARSE (not a model file, a damaged one,
 * members that disagree, a value out of range: err names the member or
 * field, "model: ..."), TM_EINVAL (format version N: "model: format version
 * N, this topicd reads 1"), TM_ETOOBIG, TM_ENOMEM.
 */
tm_status tm_model_file_read(const void *bytes, size_t len, struct tm_model_file *out, char *err);

/* tm_model_file_read of a file: the whole file is read first (at most
 * TM_MODEL_FILE_MAX_BYTES). TM_EIO names the path. */
tm_status tm_model_file_load(const char *path, struct tm_model_file *out, char *err);

void tm_model_file_release(struct tm_model_file *m);

/*
 * Reads the canonical vectorizer object of tm_job_spec_vectorizer_key back
 * into params (initialised here with scikit-learn's defaults first); a custom
 * stop-word list is returned in *stop_words (owned: free each entry and the
 * array with tm_free; params->stop_words points into it). A field this
 * topicd does not know is TM_EPARSE naming it.
 */
tm_status tm_model_file_vectorizer_from_key(const char *key, size_t len,
                                            struct tm_vectorizer_params *params, char ***stop_words,
                                            char *err);

#endif
