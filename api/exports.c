/* exports.c - a result as CSV files (see exports.h). */
#include "api/exports.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/json.h"
#include "core/alloc.h"

void tm_csv_field(struct tm_jbuf *b, const char *s, size_t n)
{
    if (!memchr(s, ',', n) && !memchr(s, '"', n) && !memchr(s, '\r', n) && !memchr(s, '\n', n)) {
        tm_jbuf_put(b, s, n);
        return;
    }
    tm_jbuf_put(b, "\"", 1);
    for (const char *end = s + n; s < end;) {
        const char *q = memchr(s, '"', (size_t)(end - s));
        size_t run = q ? (size_t)(q - s) + 1 : (size_t)(end - s);
        tm_jbuf_put(b, s, run);
        if (q)
            tm_jbuf_put(b, "\"", 1); /* the quote doubled */
        s += run;
    }
    tm_jbuf_put(b, "\"", 1);
}

void tm_csv_double(struct tm_jbuf *b, double v)
{
    if (isnan(v))
        tm_jbuf_puts(b, "nan");
    else if (isinf(v))
        tm_jbuf_puts(b, v > 0 ? "inf" : "-inf");
    else
        tm_jbuf_double(b, v);
}

/* ---------------------------------------------------------------------- */
/* topic-terms.csv */

static tm_status topic_terms_rows(struct tm_jbuf *b, const struct tm_json_doc *doc,
                                  struct tm_api_error *e)
{
    const cJSON *topics = cJSON_GetObjectItemCaseSensitive(doc->root, "topics");
    if (!cJSON_IsArray(topics))
        return tm_api_errorf(e, TM_EPARSE, "topics", -1, "the stored result has no topics");
    const cJSON *t;
    int i = 0;
    cJSON_ArrayForEach(t, topics)
    {
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(t, "index");
        const cJSON *words = cJSON_GetObjectItemCaseSensitive(t, "words");
        if (!cJSON_IsNumber(idx) || !cJSON_IsArray(words))
            return tm_api_errorf(e, TM_EPARSE, "topics", -1,
                                 "stored topic %d has no index or no words", i);
        size_t topic_len;
        const char *topic = tm_json_number_text(doc, idx, &topic_len);
        const cJSON *w;
        int j = 0;
        cJSON_ArrayForEach(w, words)
        {
            const cJSON *term = cJSON_GetObjectItemCaseSensitive(w, "term");
            const cJSON *col = cJSON_GetObjectItemCaseSensitive(w, "index");
            const cJSON *weight = cJSON_GetObjectItemCaseSensitive(w, "weight");
            size_t weight_len = 0, col_len = 0;
            const char *wt =
                cJSON_IsNumber(weight) ? tm_json_number_text(doc, weight, &weight_len) : NULL;
            const char *ct = cJSON_IsNumber(col) ? tm_json_number_text(doc, col, &col_len) : NULL;
            if (!topic || !wt || (!cJSON_IsString(term) && !ct))
                return tm_api_errorf(e, TM_EPARSE, "topics", -1,
                                     "stored topic %d's word %d has no term or no weight", i, j);
            tm_jbuf_put(b, topic, topic_len);
            tm_jbuf_put(b, ",", 1);
            /* The JSON's strings are UTF-8 without NULs (the scanner
             * refuses \u0000), so strlen is the term's length. */
            if (cJSON_IsString(term))
                tm_csv_field(b, term->valuestring, strlen(term->valuestring));
            else
                tm_jbuf_put(b, ct, col_len);
            tm_jbuf_put(b, ",", 1);
            /* The weight as the JSON writes it: the same digits. */
            tm_jbuf_put(b, wt, weight_len);
            tm_jbuf_put(b, "\r\n", 2);
            j++;
        }
        i++;
    }
    return TM_OK;
}

tm_status tm_export_topic_terms(const char *json, size_t len, char **out, size_t *out_len,
                                struct tm_api_error *e)
{
    struct tm_json_doc doc;
    *out = NULL;
    *out_len = 0;
    tm_api_error_clear(e);
    tm_status s = tm_json_parse_stored_object(&doc, json, len, "result", e);
    if (s)
        return s;
    struct tm_jbuf b;
    tm_jbuf_init(&b, 0);
    tm_jbuf_puts(&b, TM_EXPORT_TOPIC_TERMS_HEADER);
    s = topic_terms_rows(&b, &doc, e);
    tm_json_release(&doc);
    if (s) {
        tm_jbuf_release(&b);
        return s;
    }
    *out = tm_jbuf_detach(&b, out_len, &s);
    if (!*out)
        return tm_api_errorf(e, s, NULL, -1, "%s rendering topic-terms.csv", tm_strerror(s));
    return TM_OK;
}

/* ---------------------------------------------------------------------- */
/* document-topics.csv */

struct tm_export_dt {
    tm_export_page_fn page;
    void *ctx;
    int64_t page_rows;
    /* The page in hand: rows [offset, offset + n) of n_documents x k. */
    double *w;
    char **ids;
    int64_t offset, n, k, n_documents;
    int64_t row; /* the next row of the page to render */
    int64_t pages;
    /* Rendered text not yet handed out: text.data[sent, text.len). */
    struct tm_jbuf text;
    size_t sent;
};

static void drop_page(struct tm_export_dt *s)
{
    for (int64_t i = 0; s->ids && i < s->n; i++)
        tm_free(s->ids[i]);
    tm_free(s->ids);
    tm_free(s->w);
    s->ids = NULL;
    s->w = NULL;
    s->offset += s->n;
    s->n = s->row = 0;
}

/* Reads the page at s->offset. Its shape must be the first page's: a job's
 * weights are written once, but a stream that outlives a delete and a new
 * job of the same id must not mix them. */
static tm_status read_page(struct tm_export_dt *s, char *err)
{
    int64_t n = 0, k = 0, total = 0;
    tm_status st = s->page(s->ctx, s->offset, s->page_rows, &s->w, &s->ids, &n, &k, &total, err);
    if (st)
        return st;
    s->pages++;
    s->n = n;
    if (s->pages > 1 && (k != s->k || total != s->n_documents))
        return tm_errf(err, TM_EIO, "the document topics changed while they were read");
    if (n < 0 || k <= 0 || n > s->page_rows || s->offset + n > total ||
        (n == 0 && s->offset < total))
        return tm_errf(err, TM_EIO,
                       "a page of %" PRId64 " rows of %" PRId64 " at %" PRId64 " of %" PRId64
                       " documents is not what was asked",
                       n, k, s->offset, total);
    s->k = k;
    s->n_documents = total;
    return TM_OK;
}

tm_status tm_export_dt_new(struct tm_export_dt **out, tm_export_page_fn page, void *ctx,
                           int64_t page_rows, char *err)
{
    *out = NULL;
    struct tm_export_dt *s = tm_calloc(1, sizeof(*s));
    if (!s)
        return tm_errf(err, TM_ENOMEM, "document-topics.csv");
    s->page = page;
    s->ctx = ctx;
    s->page_rows = page_rows > 0 ? page_rows : 1;
    tm_jbuf_init(&s->text, 0);
    tm_status st = read_page(s, err);
    if (st) {
        tm_export_dt_free(s);
        return st;
    }
    tm_jbuf_puts(&s->text, TM_EXPORT_DOC_TOPICS_HEADER);
    *out = s;
    return TM_OK;
}

/* Renders rows of the page in hand until about want bytes wait in
 * s->text (whole documents, so that a document's k rows are one append
 * each). */
static void render(struct tm_export_dt *s, size_t want)
{
    char index[24];
    while (s->row < s->n && s->text.len < want && s->text.status == TM_OK) {
        const char *id = s->ids ? s->ids[s->row] : NULL;
        size_t id_len;
        if (id) {
            id_len = strlen(id);
        } else {
            id_len = (size_t)snprintf(index, sizeof(index), "%" PRId64, s->offset + s->row);
            id = index;
        }
        const double *w = s->w + s->row * s->k;
        for (int64_t t = 0; t < s->k; t++) {
            tm_csv_field(&s->text, id, id_len);
            tm_jbuf_printf(&s->text, ",%" PRId64 ",", t);
            tm_csv_double(&s->text, w[t]);
            tm_jbuf_put(&s->text, "\r\n", 2);
        }
        s->row++;
    }
}

tm_status tm_export_dt_read(struct tm_export_dt *s, char *buf, size_t max, size_t *got, char *err)
{
    *got = 0;
    while (*got < max) {
        if (s->text.status != TM_OK)
            return tm_errf(err, s->text.status, "document-topics.csv: %s",
                           tm_strerror(s->text.status));
        if (s->sent < s->text.len) {
            size_t n = s->text.len - s->sent;
            if (n > max - *got)
                n = max - *got;
            memcpy(buf + *got, s->text.data + s->sent, n);
            *got += n;
            s->sent += n;
            continue;
        }
        /* All handed out: the next rows start a new text. */
        tm_jbuf_release(&s->text);
        s->sent = 0;
        if (s->row == s->n) {
            if (s->offset + s->n >= s->n_documents)
                break; /* the end */
            drop_page(s);
            tm_status st = read_page(s, err);
            if (st)
                return st;
        }
        render(s, max);
    }
    return TM_OK;
}

int64_t tm_export_dt_pages(const struct tm_export_dt *s)
{
    return s->pages;
}

void tm_export_dt_free(struct tm_export_dt *s)
{
    if (!s)
        return;
    drop_page(s);
    tm_jbuf_release(&s->text);
    tm_free(s);
}
