/*
 * result.c - the job result and the vectorize summary as JSON (see
 * result.h). Written straight into a tm_jbuf rather
 * than through a cJSON tree: a result with document_topics for 20,000
 * documents holds hundreds of thousands of numbers, and a tree would cost
 * ~64 bytes per number on top of the text.
 */
#include "api/result.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/text/coherence.h"

void tm_result_timings_init(struct tm_result_timings *t)
{
    t->read = -1.0;
    t->total = -1.0;
    t->model_bytes = -1;
}

/* Appends v, or fails the render naming field (a printf-style path). */
static tm_status put_num(struct tm_jbuf *b, double v, struct tm_api_error *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static tm_status put_num(struct tm_jbuf *b, double v, struct tm_api_error *e, const char *fmt, ...)
{
    if (isfinite(v)) {
        tm_jbuf_double(b, v);
        return TM_OK;
    }
    char field[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(field, sizeof(field), fmt, ap);
    va_end(ap);
    return tm_api_errorf(e, TM_ENUMERIC, field, -1, "is %s, which JSON cannot represent",
                         isnan(v) ? "NaN" : "infinite");
}

static tm_status put_array(struct tm_jbuf *b, const char *key, const double *x, int64_t n,
                           struct tm_api_error *e)
{
    tm_jbuf_printf(b, ",\"%s\":[", key);
    for (int64_t i = 0; i < n; i++) {
        if (i)
            tm_jbuf_put(b, ",", 1);
        tm_status st = put_num(b, x[i], e, "%s[%" PRId64 "]", key, i);
        if (st != TM_OK)
            return st;
    }
    tm_jbuf_put(b, "]", 1);
    return TM_OK;
}

static tm_status finish(struct tm_jbuf *b, tm_status st, char **out, size_t *len,
                        struct tm_api_error *e)
{
    *out = NULL;
    if (st != TM_OK) {
        tm_jbuf_release(b);
        return st;
    }
    *out = tm_jbuf_detach(b, len, &st);
    if (st != TM_OK)
        return tm_api_errorf(e, st, NULL, -1, "%s rendering the result", tm_strerror(st));
    return TM_OK;
}

/* A coherence score: null where gensim's would be NaN or Inf (a topic of
 * fewer than two words, a top word that never occurs; see
 * core/text/coherence.h), which JSON cannot hold. */
static void put_score(struct tm_jbuf *b, double v)
{
    if (isfinite(v))
        tm_jbuf_double(b, v);
    else
        tm_jbuf_puts(b, "null");
}

/* "coherence": {"u_mass": {"mean": x, "per_topic": [...]}, ...} for the
 * measures scored, in measure order. */
static void put_coherence(struct tm_jbuf *b, const struct tm_fit_result *r)
{
    int first = 1;
    tm_jbuf_puts(b, ",\"coherence\":{");
    for (int m = 0; m < TM_COHERENCE_N_MEASURES; m++) {
        if (!(r->coherence & TM_COHERENCE_BIT(m)))
            continue;
        tm_jbuf_printf(b, "%s\"%s\":{\"mean\":", first ? "" : ",",
                       tm_coherence_name((enum tm_coherence_measure)m));
        first = 0;
        put_score(b, r->coherence_mean[m]);
        tm_jbuf_puts(b, ",\"per_topic\":[");
        for (int64_t t = 0; t < r->n_topics; t++) {
            if (t)
                tm_jbuf_put(b, ",", 1);
            put_score(b, r->coherence_per_topic[m * r->n_topics + t]);
        }
        tm_jbuf_puts(b, "]}");
    }
    tm_jbuf_put(b, "}", 1);
}

/* The "timings" object; the first key has no comma before it. */
static tm_status put_timings(struct tm_jbuf *b, const struct tm_vectorized *v,
                             const struct tm_fit_result *r, const struct tm_result_timings *t,
                             struct tm_api_error *e)
{
    struct {
        const char *name;
        double value;
        int present;
    } rows[] = {
        {"read", t ? t->read : -1, t && t->read >= 0},
        {"tokenize", v ? v->seconds_tokenize : 0, v != NULL},
        {"vocabulary", v ? v->seconds_vocabulary : 0, v != NULL},
        {"weighting", v ? v->seconds_weighting : 0, v != NULL},
        {"init", r ? r->seconds_init : 0, r != NULL},
        {"fit", r ? r->seconds_fit : 0, r != NULL},
        {"coherence", r ? r->seconds_coherence : 0, r && r->coherence},
        {"total", t ? t->total : -1, t && t->total >= 0},
    };
    int first = 1;
    tm_jbuf_puts(b, ",\"timings\":{");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (!rows[i].present)
            continue;
        tm_jbuf_printf(b, "%s\"%s\":", first ? "" : ",", rows[i].name);
        first = 0;
        if (!isfinite(rows[i].value))
            return put_num(b, rows[i].value, e, "timings.%s", rows[i].name);
        /* Timings are measurements, not data: microseconds are plenty. */
        tm_jbuf_printf(b, "%.6g", rows[i].value);
    }
    tm_jbuf_put(b, "}", 1);
    return TM_OK;
}

/* "sweep": one object per k (core/sweep.h), NaN members (not measured)
 * left out; "sweep_rule". */
static tm_status put_sweep(struct tm_jbuf *b, const struct tm_fit_result *r, struct tm_api_error *e)
{
    tm_status st;
    tm_jbuf_puts(b, ",\"sweep\":[");
    for (int64_t i = 0; i < r->n_sweep; i++) {
        const struct tm_sweep_point *p = &r->sweep[i];
        tm_jbuf_printf(b, "%s{\"n_topics\":%" PRId64 ",\"reconstruction_error\":", i ? "," : "",
                       p->n_topics);
        if ((st = put_num(b, p->reconstruction_error, e, "sweep[%" PRId64 "].reconstruction_error",
                          i)) != TM_OK)
            return st;
        if (!isnan(p->explained_variance)) {
            tm_jbuf_puts(b, ",\"explained_variance\":");
            if ((st = put_num(b, p->explained_variance, e, "sweep[%" PRId64 "].explained_variance",
                              i)) != TM_OK)
                return st;
        }
        if (!isnan(p->coherence)) {
            tm_jbuf_puts(b, ",\"coherence\":");
            if ((st = put_num(b, p->coherence, e, "sweep[%" PRId64 "].coherence", i)) != TM_OK)
                return st;
        }
        tm_jbuf_printf(b, ",\"n_iter\":%" PRId64 ",\"seconds\":", p->n_iter);
        if (!isfinite(p->seconds))
            return put_num(b, p->seconds, e, "sweep[%" PRId64 "].seconds", i);
        tm_jbuf_printf(b, "%.6g}", p->seconds);
    }
    tm_jbuf_puts(b, "],\"sweep_rule\":");
    const char *rule = r->sweep_rule ? r->sweep_rule : "";
    tm_jbuf_string(b, rule, strlen(rule));
    if (r->sweep_coherence) { /* the measure of the points' coherence */
        tm_jbuf_puts(b, ",\"sweep_coherence\":");
        tm_jbuf_string(b, r->sweep_coherence, strlen(r->sweep_coherence));
    }
    return TM_OK;
}

tm_status tm_result_render_fit(const struct tm_fit_result *r, const struct tm_vectorized *v,
                               const struct tm_job_spec *spec,
                               const struct tm_result_timings *timings, char **out, size_t *len,
                               struct tm_api_error *e)
{
    struct tm_jbuf b;
    tm_status st = TM_OK;
    const struct tm_vocab *vocab = v && v->vocab.n_terms > 0 ? &v->vocab : NULL;
    tm_api_error_clear(e);
    tm_jbuf_init(&b, 0);

    tm_jbuf_printf(&b,
                   "{\"n_documents\":%" PRId64 ",\"n_features\":%" PRId64 ",\"nnz\":%" PRId64
                   ",\"method\":\"%s\",\"n_topics\":%" PRId64 ",\"topics\":[",
                   r->n_documents, r->n_features, r->nnz, tm_method_name(r->method), r->n_topics);
    for (int64_t t = 0; t < r->n_topics; t++) {
        tm_jbuf_printf(&b, "%s{\"index\":%" PRId64 ",\"words\":[", t ? "," : "", t);
        for (int64_t j = 0; j < r->n_top_words && r->top_terms; j++) {
            int64_t term = r->top_terms[t * r->n_top_words + j];
            if (term < 0)
                break; /* padding: the topic has fewer non-zero terms */
            if (term >= r->n_features || (vocab && term >= vocab->n_terms)) {
                char field[96];
                snprintf(field, sizeof(field), "topics[%" PRId64 "].words[%" PRId64 "]", t, j);
                st = tm_api_errorf(e, TM_EINVAL, field, -1,
                                   "term index %" PRId64 " outside the vocabulary", term);
                return finish(&b, st, out, len, e);
            }
            tm_jbuf_puts(&b, j ? ",{" : "{");
            if (vocab) {
                size_t tlen;
                const char *s = tm_vocab_term(vocab, term, &tlen);
                tm_jbuf_puts(&b, "\"term\":");
                tm_jbuf_string(&b, s, tlen);
                tm_jbuf_put(&b, ",", 1);
            }
            tm_jbuf_printf(&b, "\"index\":%" PRId64 ",\"weight\":", term);
            st = put_num(&b, r->top_weights[t * r->n_top_words + j], e,
                         "topics[%" PRId64 "].words[%" PRId64 "].weight", t, j);
            if (st != TM_OK)
                return finish(&b, st, out, len, e);
            tm_jbuf_put(&b, "}", 1);
        }
        tm_jbuf_puts(&b, "]}");
    }
    tm_jbuf_put(&b, "]", 1);

    if (r->singular_values &&
        (st = put_array(&b, "singular_values", r->singular_values, r->n_topics, e)) != TM_OK)
        return finish(&b, st, out, len, e);
    if (r->explained_variance_ratio &&
        (st = put_array(&b, "explained_variance_ratio", r->explained_variance_ratio, r->n_topics,
                        e)) != TM_OK)
        return finish(&b, st, out, len, e);
    tm_jbuf_puts(&b, ",\"reconstruction_error\":");
    if ((st = put_num(&b, r->reconstruction_error, e, "reconstruction_error")) != TM_OK)
        return finish(&b, st, out, len, e);
    tm_jbuf_printf(&b, ",\"n_iter\":%" PRId64, r->n_iter);
    if (r->passes_over_x > 0) /* NMF only */
        tm_jbuf_printf(&b, ",\"passes_over_x\":%" PRId64, r->passes_over_x);
    if (r->n_steps > 0) /* NMF minibatch */
        tm_jbuf_printf(&b, ",\"n_steps\":%" PRId64, r->n_steps);
    if (r->svd_tol > 0) {
        tm_jbuf_puts(&b, ",\"svd_tol\":");
        if ((st = put_num(&b, r->svd_tol, e, "svd_tol")) != TM_OK)
            return finish(&b, st, out, len, e);
    }
    if ((st = put_array(&b, "error_trace", r->error_trace, r->error_trace ? r->n_trace : 0, e)))
        return finish(&b, st, out, len, e);
    if (r->coherence && r->coherence_per_topic)
        put_coherence(&b, r);

    if (r->sweep && (st = put_sweep(&b, r, e)) != TM_OK)
        return finish(&b, st, out, len, e);

    if (spec && spec->return_document_topics) {
        const struct tm_dense_owned *w = &r->document_topics;
        if (!w->data || w->rows != r->n_documents || w->cols != r->n_topics) {
            st = tm_api_errorf(e, TM_EINVAL, "document_topics", -1,
                               "the fit has no %" PRId64 " x %" PRId64 " document-topic matrix",
                               r->n_documents, r->n_topics);
            return finish(&b, st, out, len, e);
        }
        tm_jbuf_puts(&b, ",\"document_topics\":[");
        for (int64_t d = 0; d < w->rows; d++) {
            tm_jbuf_puts(&b, d ? ",[" : "[");
            for (int64_t k = 0; k < w->cols; k++) {
                if (k)
                    tm_jbuf_put(&b, ",", 1);
                st = put_num(&b, w->data[d + k * w->rows], e,
                             "document_topics[%" PRId64 "][%" PRId64 "]", d, k);
                if (st != TM_OK)
                    return finish(&b, st, out, len, e);
            }
            tm_jbuf_put(&b, "]", 1);
        }
        tm_jbuf_put(&b, "]", 1);
    }

    tm_jbuf_puts(&b, ",\"device\":");
    const char *dev = r->device_used ? r->device_used : "cpu";
    tm_jbuf_string(&b, dev, strlen(dev));
    if (timings && timings->model_bytes >= 0)
        tm_jbuf_printf(&b, ",\"model_bytes\":%" PRId64, timings->model_bytes);
    if ((st = put_timings(&b, v, r, timings, e)) != TM_OK)
        return finish(&b, st, out, len, e);
    tm_jbuf_puts(&b, "}\n");
    return finish(&b, TM_OK, out, len, e);
}

static void put_terms(struct tm_jbuf *b, const struct tm_vocab *vocab, int64_t from, int64_t to)
{
    for (int64_t i = from; i < to; i++) {
        size_t tlen;
        const char *s = tm_vocab_term(vocab, i, &tlen);
        if (i > from)
            tm_jbuf_put(b, ",", 1);
        tm_jbuf_string(b, s, tlen);
    }
}

static void put_ints(struct tm_jbuf *b, const int64_t *x, int64_t from, int64_t to)
{
    for (int64_t i = from; i < to; i++) {
        if (i > from)
            tm_jbuf_put(b, ",", 1);
        tm_jbuf_int(b, x[i]);
    }
}

static tm_status put_doubles(struct tm_jbuf *b, const char *key, const double *x, int64_t from,
                             int64_t to, struct tm_api_error *e)
{
    struct tm_jbuf_dcache cache;
    memset(&cache, 0, sizeof(cache));
    for (int64_t i = from; i < to; i++) {
        if (i > from)
            tm_jbuf_put(b, ",", 1);
        if (isfinite(x[i])) {
            tm_jbuf_double_cached(b, x[i], &cache);
            continue;
        }
        return put_num(b, x[i], e, "%s[%" PRId64 "]", key, i);
    }
    return TM_OK;
}

#define SUMMARY_TERMS 10

tm_status tm_result_render_vectorize(const struct tm_vectorized *v, int summary,
                                     const struct tm_result_timings *timings, char **out,
                                     size_t *len, struct tm_api_error *e)
{
    struct tm_jbuf b;
    tm_status st;
    int64_t n = v->vocab.n_terms;
    tm_api_error_clear(e);
    tm_jbuf_init(&b, 0);
    tm_jbuf_printf(&b,
                   "{\"n_documents\":%" PRId64 ",\"n_features\":%" PRId64 ",\"nnz\":%" PRId64
                   ",\"n_pruned_terms\":%" PRId64,
                   v->matrix.n_rows, v->matrix.n_cols, tm_csr_nnz(&v->matrix), v->n_pruned_terms);
    if (!summary) {
        tm_jbuf_puts(&b, ",\"vocabulary\":[");
        put_terms(&b, &v->vocab, 0, n);
        tm_jbuf_puts(&b, "],\"document_frequencies\":[");
        if (v->df)
            put_ints(&b, v->df, 0, n);
        tm_jbuf_put(&b, "]", 1);
        if (v->idf) {
            tm_jbuf_puts(&b, ",\"idf\":[");
            if ((st = put_doubles(&b, "idf", v->idf, 0, n, e)) != TM_OK)
                return finish(&b, st, out, len, e);
            tm_jbuf_put(&b, "]", 1);
        }
    } else {
        int64_t head = n < SUMMARY_TERMS ? n : SUMMARY_TERMS;
        int64_t tail = n - SUMMARY_TERMS > 0 ? n - SUMMARY_TERMS : 0;
        tm_jbuf_puts(&b, ",\"vocabulary_head\":[");
        put_terms(&b, &v->vocab, 0, head);
        tm_jbuf_puts(&b, "],\"vocabulary_tail\":[");
        put_terms(&b, &v->vocab, tail, n);
        tm_jbuf_put(&b, "]", 1);
        if (v->df) {
            tm_jbuf_puts(&b, ",\"document_frequencies_head\":[");
            put_ints(&b, v->df, 0, head);
            tm_jbuf_puts(&b, "],\"document_frequencies_tail\":[");
            put_ints(&b, v->df, tail, n);
            tm_jbuf_put(&b, "]", 1);
        }
        if (v->idf) {
            tm_jbuf_puts(&b, ",\"idf_head\":[");
            if ((st = put_doubles(&b, "idf", v->idf, 0, head, e)) != TM_OK)
                return finish(&b, st, out, len, e);
            tm_jbuf_puts(&b, "],\"idf_tail\":[");
            if ((st = put_doubles(&b, "idf", v->idf, tail, n, e)) != TM_OK)
                return finish(&b, st, out, len, e);
            tm_jbuf_put(&b, "]", 1);
        }
    }
    if ((st = put_timings(&b, v, NULL, timings, e)) != TM_OK)
        return finish(&b, st, out, len, e);
    tm_jbuf_puts(&b, "}\n");
    return finish(&b, TM_OK, out, len, e);
}
