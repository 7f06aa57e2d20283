/* pyldavis.c - pyLDAvis.prepare's arguments as JSON (see pyldavis.h). */
#include "pyldavis.h"

#include <inttypes.h>
#include <math.h>

#include "api/jbuf.h"

/* Row i of n values x[i * stride_i + j * stride_j], divided by its sum;
 * uniform when the sum is 0. */
static void put_row(struct tm_jbuf *b, const double *x, int64_t n, int64_t step, double sum)
{
    tm_jbuf_puts(b, "[");
    for (int64_t j = 0; j < n; j++) {
        if (j)
            tm_jbuf_puts(b, ",");
        tm_jbuf_double(b, sum > 0 ? x[j * step] / sum : 1.0 / (double)n);
    }
    tm_jbuf_puts(b, "]");
}

tm_status tm_pyldavis_render(const struct tm_model_file *m, const double *doc_topics,
                             int64_t n_documents, int64_t k, char **out, size_t *len,
                             struct tm_api_error *e)
{
    *out = NULL;
    *len = 0;
    tm_api_error_clear(e);
    if (m->method != TM_METHOD_NMF)
        return tm_api_errorf(e, TM_EINVAL, "method", -1,
                             "pyLDAvis reads topics as probability distributions: only an NMF"
                             " job has them (an SVD job's components can be negative)");
    if (!m->term_frequency || !m->doc_lengths)
        return tm_api_errorf(e, TM_ENOTFOUND, NULL, -1,
                             "this job's model has no term frequencies or document lengths");
    if (k != m->n_topics || n_documents != m->n_documents)
        return tm_api_errorf(e, TM_EINVAL, "document_topics", -1,
                             "%" PRId64 " x %" PRId64
                             " document-topic weights for a model of %" PRId64
                             " documents and %" PRId64 " topics",
                             n_documents, k, m->n_documents, m->n_topics);
    int64_t n = m->n_features;
    const double *c = m->components.data; /* n x k, column-major: topic t at c + t * n */
    for (int64_t i = 0; i < n * k; i++)
        if (c[i] < 0)
            return tm_api_errorf(e, TM_EINVAL, "components", -1,
                                 "topic %" PRId64 " has a negative weight", i / n);
    for (int64_t i = 0; i < n_documents * k; i++)
        if (!(doc_topics[i] >= 0) || !isfinite(doc_topics[i]))
            return tm_api_errorf(e, TM_EINVAL, "document_topics", -1,
                                 "document %" PRId64 " has a negative or non-finite weight", i / k);

    struct tm_jbuf b;
    tm_jbuf_init(&b, TM_PYLDAVIS_MAX_BYTES);
    tm_jbuf_puts(&b, "{\"topic_term_dists\":[");
    for (int64_t t = 0; t < k && b.status == TM_OK; t++) {
        double sum = 0;
        for (int64_t j = 0; j < n; j++)
            sum += c[t * n + j];
        if (t)
            tm_jbuf_puts(&b, ",");
        put_row(&b, c + t * n, n, 1, sum);
    }
    tm_jbuf_puts(&b, "],\"doc_topic_dists\":[");
    for (int64_t i = 0; i < n_documents && b.status == TM_OK; i++) {
        double sum = 0;
        for (int64_t t = 0; t < k; t++)
            sum += doc_topics[i * k + t];
        if (i)
            tm_jbuf_puts(&b, ",");
        put_row(&b, doc_topics + i * k, k, 1, sum);
    }
    tm_jbuf_puts(&b, "],\"doc_lengths\":[");
    for (int64_t i = 0; i < n_documents; i++) {
        if (i)
            tm_jbuf_puts(&b, ",");
        tm_jbuf_int(&b, m->doc_lengths[i]);
    }
    tm_jbuf_puts(&b, "],\"vocab\":[");
    for (int64_t j = 0; j < n; j++) {
        size_t tl;
        const char *term = tm_vocab_term(&m->vocab, j, &tl);
        if (j)
            tm_jbuf_puts(&b, ",");
        tm_jbuf_string(&b, term, tl);
    }
    tm_jbuf_puts(&b, "],\"term_frequency\":[");
    for (int64_t j = 0; j < n; j++) {
        if (j)
            tm_jbuf_puts(&b, ",");
        tm_jbuf_double(&b, m->term_frequency[j]);
    }
    tm_jbuf_puts(&b, "]}\n");
    tm_status st;
    *out = tm_jbuf_detach(&b, len, &st);
    if (!*out)
        return tm_api_errorf(e, st, NULL, -1,
                             st == TM_ETOOBIG ? "pyldavis.json would pass its size limit"
                                              : "out of memory");
    return TM_OK;
}
