/*
 * plots.h - a job's result as SVG charts (GET /v1/jobs/{id}/plots/{name}.svg
 * and the report): what the notebook this project grew from plots after
 * each step, drawn by topicd so a web app can put them in an <img>.
 *
 *   singular_values  the scree plot: each singular value, and the
 *                    cumulative explained variance on a second axis (SVD)
 *   error_trace      the reconstruction error at each iteration
 *   topics           each topic's top words as horizontal bars, one small
 *                    panel per topic
 *   document_topics  a heat map of the first documents' topic weights
 *   sweep            a sweep's reconstruction error against k (and its
 *                    coherence on a second axis when measured), the
 *                    suggested k marked (core/sweep.h)
 *
 * Each is 640 px wide, with axes, ticks and labels, Okabe & Ito's colours
 * (a viridis ramp for the heat map), a <title> naming it for screen readers
 * and a <desc> saying what it shows in numbers.
 * Thread-safety: reentrant.
 */
#ifndef TM_API_PLOTS_H
#define TM_API_PLOTS_H

#include <stddef.h>
#include <stdint.h>

#include "api/error.h"

/* The most topics the topics plot draws, and the most documents and topics
 * the heat map does: beyond, the charts stop being readable at 640 px (the
 * description says how many were left out). */
#define TM_PLOT_MAX_TOPICS 60
#define TM_PLOT_MAX_DOCUMENTS 50
#define TM_PLOT_MAX_WORDS 10

/* The first rows of a job's document-topic weights (row-major, n x k, all
 * borrowed), with the documents' ids (ids NULL, or n entries each NULL for
 * none) and the job's total document count. */
struct tm_plot_doc_topics {
    const double *weights;
    const char *const *ids;
    int64_t n, k, n_documents;
};

/* 1 when name is one of the plots above. */
int tm_plot_known(const char *name);

/* The names above, comma-separated, for error messages. */
const char *tm_plot_names(void);

/*
 * Draws plot name from a job's result document (result.h's JSON, len bytes,
 * borrowed). dt: the weights for document_topics (NULL for the others).
 * *svg returned owned (tm_free), NUL-terminated, *svg_len its length.
 * Errors: TM_ENOTFOUND for an unknown name or a plot this result has no data
 * for (an NMF job's singular values), the message saying which; TM_EPARSE
 * when result is not such a document; TM_ENOMEM.
 */
tm_status tm_plot_render(const char *name, const char *result, size_t len,
                         const struct tm_plot_doc_topics *dt, char **svg, size_t *svg_len,
                         struct tm_api_error *e);

#endif
