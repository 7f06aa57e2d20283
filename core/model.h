/*
 * model.h - what a fit is asked to do (tm_model_params) and what it gives
 * back (tm_fit_result): the contract between the factorizations in core/,
 * the job spec parser and result renderer in api/, and the server.
 *
 * Names and defaults follow scikit-learn (NMF, TruncatedSVD, randomized_svd).
 * Dense matrices here are column-major with ld == rows.
 * Thread-safety: plain data; one owner at a time.
 */
#ifndef TM_CORE_MODEL_H
#define TM_CORE_MODEL_H

#include <stdint.h>

#include "core/status.h"

enum tm_method { TM_METHOD_NMF, TM_METHOD_TRUNCATED_SVD, TM_METHOD_FULL_SVD };

enum tm_svd_algorithm {
    TM_SVD_RANDOMIZED, /* scikit-learn's randomized_svd */
    TM_SVD_LANCZOS     /* accurate: converges the top k to tol */
};

enum tm_power_normalizer { TM_PIN_AUTO, TM_PIN_LU, TM_PIN_QR, TM_PIN_NONE };

enum tm_nmf_init {
    TM_NMF_INIT_AUTO, /* scikit-learn's None: nndsvda when k <= min(m, n), else random */
    TM_NMF_INIT_NNDSVD,
    TM_NMF_INIT_NNDSVDA,
    TM_NMF_INIT_NNDSVDAR,
    TM_NMF_INIT_RANDOM
};

/* HALS: accelerated HALS, MINIBATCH: scikit-learn's MiniBatchNMF (nmf.h),
 * appended so the others keep their values. */
enum tm_nmf_solver { TM_NMF_CD, TM_NMF_MU, TM_NMF_PGD, TM_NMF_HALS, TM_NMF_MINIBATCH };
enum tm_beta_loss { TM_BETA_FROBENIUS, TM_BETA_KL };
enum tm_device { TM_DEVICE_AUTO, TM_DEVICE_CPU, TM_DEVICE_GPU };
enum tm_dtype { TM_DTYPE_AUTO, TM_DTYPE_FLOAT32, TM_DTYPE_FLOAT64 };

/* Topic coherence measures (core/text/coherence.h), gensim's names; a set
 * of them is a mask of TM_COHERENCE_BIT(m). */
enum tm_coherence_measure {
    TM_COHERENCE_U_MASS,
    TM_COHERENCE_C_UCI,
    TM_COHERENCE_C_NPMI,
    TM_COHERENCE_C_V,
    TM_COHERENCE_N_MEASURES
};
#define TM_COHERENCE_BIT(m) (1u << (m))

struct tm_model_params {
    enum tm_method method; /* NMF */
    int64_t n_topics;      /* 10 */
    int64_t n_top_words;   /* 10 */
    uint64_t seed;         /* 0; every random choice derives from it */
    enum tm_device device; /* AUTO; the caller picks tm_fit's backend by it */
    enum tm_dtype dtype;   /* AUTO: float64 on the CPU, float32 on a GPU */

    /* truncated_svd */
    enum tm_svd_algorithm algorithm; /* RANDOMIZED */
    int64_t n_oversamples;           /* 10 */
    int64_t n_iter;                  /* -1: "auto" (7 if k < 0.1 min(m,n), else 4) */
    /* AUTO (LU) */
    enum tm_power_normalizer power_iteration_normalizer;
    double svd_tol;       /* 1e-6, relative, lanczos */
    int64_t svd_max_iter; /* 0: algorithm's own cap (lanczos restarts) */

    /* full_svd */
    int64_t max_dense_bytes; /* refuse when the dense m x n would exceed; default 2 GiB */

    /* nmf */
    enum tm_nmf_init init;       /* AUTO */
    enum tm_nmf_solver solver;   /* CD */
    enum tm_beta_loss beta_loss; /* FROBENIUS; KL only with MU or MINIBATCH */
    double tol;                  /* 1e-4 */
    int64_t max_iter;            /* 200 */
    double alpha_W;              /* 0 */
    double alpha_H;              /* < 0: "same" as alpha_W (the default) */
    double l1_ratio;             /* 0 */
    int shuffle;                 /* 0; cd and hals only */
    /* pgd: the course notebook's projected gradient descent */
    double learning_rate;       /* 1e-2 */
    double learning_rate_decay; /* 0.0: lr_t = learning_rate / (1 + decay * t) */
    double penalty;             /* 1e3: weight of the negative-entry penalty */
    double penalty_mu;          /* 1e-6: entries below mu are penalised */
    /* minibatch: scikit-learn's MiniBatchNMF (core/numerics/nmf_minibatch.h) */
    int64_t batch_size;              /* 1024 */
    double forget_factor;            /* 0.7, in [0, 1] */
    int fresh_restarts;              /* 0 */
    int64_t fresh_restarts_max_iter; /* 30 */
    int64_t max_no_improvement;      /* 10; 0: None (the rule is off) */
    int64_t transform_max_iter;      /* 0: None (max_iter) */

    /* An execution resource, not part of the job spec (api/ leaves it as
     * tm_model_params_init sets it; the backend is tm_fit's argument):
     * threads for core's own loops on the CPU (sparse products, NMF sweeps);
     * 0: 1. Results do not depend on it. The caller budgets these together
     * with OpenBLAS's threads (set once at start-up, never by core). */
    int n_threads;

    /* Coherence measures to score the topics with (a TM_COHERENCE_BIT mask;
     * 0: none). tm_fit ignores it: the caller, which has the texts, runs
     * core/text/coherence.h after the fit. */
    unsigned coherence;
};

/* A column-major dense matrix owned by a result; ld == rows. */
struct tm_dense_owned {
    int64_t rows, cols;
    double *data;
};

/* One number of topics of a sweep (core/sweep.h). */
struct tm_sweep_point {
    int64_t n_topics;
    double reconstruction_error; /* as tm_fit_result's, for this k */
    double explained_variance;   /* SVD: sum of explained_variance_ratio[0..k); NaN for NMF */
    double coherence;            /* mean coherence (sweep.h says which measure); NaN: none */
    int64_t n_iter;              /* this k's fit; SVD: the one factorization's */
    double seconds;              /* this k's share of the sweep's time (sweep.h) */
};

struct tm_fit_result {
    enum tm_method method;
    int64_t n_documents, n_features, nnz;
    int64_t n_topics;
    /* n_features x n_topics, column-major (topic t's weights contiguous at
     * data + t * n_features): NMF's H^T, or SVD's V, as the fit left them
     * (scikit-learn's components_ transposed; taking them over saves a copy
     * as large as the biggest factor). */
    struct tm_dense_owned components;
    /* n_documents x n_topics: NMF's W, or SVD's U * Sigma (scikit-learn's transform). */
    struct tm_dense_owned document_topics;
    /* n_topics rows of n_top_words: term indices by decreasing weight (-1 pads
     * when a topic has fewer non-zero terms), and their component weights. */
    int64_t n_top_words;
    int64_t *top_terms;
    double *top_weights;
    double *singular_values;          /* n_topics, SVD only, else NULL */
    double *explained_variance_ratio; /* n_topics, SVD only, else NULL */
    double reconstruction_error;      /* ||X - WH||_F or ||X - U S V^T||_F */
    int64_t n_iter;                   /* iterations (power iterations / restarts for SVD) */
    int64_t passes_over_x; /* NMF: products with X or X^T its iterations made (nmf.h); SVD: 0 */
    int64_t n_steps;       /* NMF minibatch: mini-batches processed (n_steps_); else 0 */
    double svd_tol;        /* lanczos: the residual tolerance used where it is not model.tol, raised
                            * for a float32 fit (tm_svd_lanczos_tol); else 0 */
    double *error_trace;   /* n_trace per-iteration errors, may be NULL */
    int64_t n_trace;
    /* static string: "cpu" or the GPU backend's name */
    const char *device_used;
    double seconds_init, seconds_fit;
    /* A sweep over n_topics (core/sweep.h): n_sweep points by increasing k,
     * owned; the fit above is that of the suggested k, chosen by sweep_rule
     * (a static string). NULL, 0 and NULL for a single fit. */
    struct tm_sweep_point *sweep;
    int64_t n_sweep;
    const char *sweep_rule;
    const char *sweep_coherence; /* static: the measure of the points' coherence, or NULL */
    /* Filled by tm_coherence_score_result when model.coherence asks:
     * coherence is the mask of measures scored; coherence_per_topic holds
     * TM_COHERENCE_N_MEASURES rows of n_topics (measure m's at
     * m * n_topics; NaN or Inf where gensim's would be, see coherence.h),
     * rows of unscored measures unset; coherence_mean the arithmetic mean of
     * each measure's finite per-topic scores (NaN when none is finite). */
    unsigned coherence;
    double *coherence_per_topic;
    double coherence_mean[TM_COHERENCE_N_MEASURES];
    double seconds_coherence;
};

/* Defaults as documented above. */
void tm_model_params_init(struct tm_model_params *params);

/* Releases all arrays of a result and zeroes it; safe on a zeroed struct. */
void tm_fit_result_release(struct tm_fit_result *result);

#endif
