/* apply.c - a transform's body, run and answer (see apply.h). */
#include "api/apply.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "api/jbuf.h"
#include "api/spec.h"
#include "core/alloc.h"

void tm_apply_body_release(struct tm_apply_body *body)
{
    tm_corpus_release(&body->documents);
    tm_free(body->corpus_id);
    memset(body, 0, sizeof(*body));
}

tm_status tm_apply_body_parse(struct tm_apply_body *body, const char *json, size_t len,
                              const struct tm_corpus_limits *limits, struct tm_api_error *e)
{
    struct tm_json_doc doc;
    const cJSON *docs = NULL, *cid = NULL;
    memset(body, 0, sizeof(*body));
    tm_corpus_init(&body->documents, limits);
    tm_status st = tm_json_parse(&doc, json, len, e);
    if (st != TM_OK)
        goto out;
    if (!cJSON_IsObject(doc.root)) {
        st = tm_api_errorf(e, TM_EINVAL, NULL, tm_json_offset(&doc, doc.root),
                           "the body must be a JSON object: {\"documents\": [...]} or "
                           "{\"corpus_id\": \"...\"}");
        goto out;
    }
    for (const cJSON *it = doc.root->child; it; it = it->next) {
        const cJSON **slot = !strcmp(it->string, "documents")   ? &docs
                             : !strcmp(it->string, "corpus_id") ? &cid
                                                                : NULL;
        if (!slot) {
            st = tm_api_errorf(e, TM_EINVAL, it->string, tm_json_offset(&doc, it),
                               "unknown member; a transform takes \"documents\" or "
                               "\"corpus_id\" (the job's model and vectorizer do the rest)");
            goto out;
        }
        if (*slot) {
            st = tm_api_errorf(e, TM_EINVAL, it->string, tm_json_offset(&doc, it), "given twice");
            goto out;
        }
        *slot = it;
    }
    if (!docs == !cid) {
        st = tm_api_errorf(
            e, TM_EINVAL, docs ? "documents" : NULL, docs ? tm_json_offset(&doc, docs) : -1,
            "give either \"documents\" or \"corpus_id\"%s", docs ? ", not both" : "");
        goto out;
    }
    if (cid) {
        if (!cJSON_IsString(cid) || !cid->valuestring[0] ||
            (tm_json_flags(&doc, cid) & TM_JSON_STR_NUL) ||
            strlen(cid->valuestring) > TM_SPEC_MAX_ID_BYTES) {
            st = tm_api_errorf(e, TM_EINVAL, "corpus_id", tm_json_offset(&doc, cid),
                               "must be a non-empty string of at most %d bytes",
                               TM_SPEC_MAX_ID_BYTES);
            goto out;
        }
        body->corpus_id = tm_strndup(cid->valuestring, strlen(cid->valuestring));
        if (!body->corpus_id)
            st = tm_api_errorf(e, TM_ENOMEM, "corpus_id", -1, "out of memory");
        goto out;
    }
    body->has_documents = 1;
    st = tm_corpus_add_json_array(&body->documents, &doc, docs, e);
    if (st != TM_OK)
        tm_api_error_prefix(e, "documents");
out:
    if (st != TM_OK && e)
        tm_api_error_locate(e, json, len);
    tm_json_release(&doc);
    return st;
}

tm_status tm_apply_run(const struct tm_model_file *model, const struct tm_doc *docs, int64_t n_docs,
                       const struct tm_backend_ops *backend, void *ctx, int n_threads,
                       const struct tm_progress *progress, struct tm_transform_result *out,
                       char *err)
{
    struct tm_vectorizer_params vp = model->vectorizer;
    struct tm_model_params mp = model->params;
    struct tm_csr x;
    char sub[TM_ERR_SIZE] = "";
    memset(out, 0, sizeof(*out));
    vp.n_threads = n_threads > 0 ? n_threads : 1;
    mp.n_threads = n_threads;
    tm_status st =
        tm_vectorize_fixed(&vp, &model->vocab, model->idf, docs, n_docs, progress, &x, sub);
    if (st != TM_OK)
        return tm_errf(err, st, "vectorizer: %s", sub[0] ? sub : tm_strerror(st));
    st = tm_transform(backend, ctx, &x, &mp, model->components.data, model->n_topics, progress, out,
                      sub);
    tm_csr_release(&x);
    if (st != TM_OK)
        return tm_errf(err, st, "%s", sub[0] ? sub : tm_strerror(st));
    return TM_OK;
}

tm_status tm_apply_render(const struct tm_transform_result *r, const char *const *ids, char **out,
                          size_t *len)
{
    struct tm_jbuf b;
    tm_status st;
    int64_t m = r->document_topics.rows, k = r->document_topics.cols;
    const double *w = r->document_topics.data;
    *out = NULL;
    tm_jbuf_init(&b, 0);
    tm_jbuf_printf(
        &b, "{\"n_documents\":%" PRId64 ",\"n_topics\":%" PRId64 ",\"document_topics\":[", m, k);
    for (int64_t i = 0; i < m; i++) {
        tm_jbuf_puts(&b, i ? ",[" : "[");
        for (int64_t t = 0; t < k; t++) {
            double v = w[i + t * m];
            if (!isfinite(v)) {
                tm_jbuf_release(&b);
                return TM_ENUMERIC;
            }
            if (t)
                tm_jbuf_put(&b, ",", 1);
            tm_jbuf_double(&b, v);
        }
        tm_jbuf_puts(&b, "]");
    }
    tm_jbuf_puts(&b, "]");
    if (ids) {
        tm_jbuf_puts(&b, ",\"ids\":[");
        for (int64_t i = 0; i < m; i++) {
            if (i)
                tm_jbuf_put(&b, ",", 1);
            if (ids[i])
                tm_jbuf_string(&b, ids[i], strlen(ids[i]));
            else
                tm_jbuf_puts(&b, "null");
        }
        tm_jbuf_puts(&b, "]");
    }
    tm_jbuf_puts(&b, "}");
    *out = tm_jbuf_detach(&b, len, &st);
    return *out ? TM_OK : st;
}

tm_status tm_apply_render_job(const char *source, const struct tm_model_file *model,
                              const struct tm_transform_result *r, double read_s, double total_s,
                              char **out, size_t *len)
{
    struct tm_jbuf b;
    tm_status st;
    *out = NULL;
    if (!isfinite(r->reconstruction_error) || !isfinite(r->seconds) || !isfinite(read_s) ||
        !isfinite(total_s))
        return TM_ENUMERIC;
    tm_jbuf_init(&b, 0);
    tm_jbuf_puts(&b, "{\"transform_of\":");
    tm_jbuf_string(&b, source, strlen(source));
    tm_jbuf_printf(&b,
                   ",\"method\":\"%s\",\"n_documents\":%" PRId64 ",\"n_features\":%" PRId64
                   ",\"n_topics\":%" PRId64 ",\"n_iter\":%" PRId64 ",\"reconstruction_error\":",
                   tm_method_name(model->method), r->document_topics.rows, model->n_features,
                   model->n_topics, r->n_iter);
    tm_jbuf_double(&b, r->reconstruction_error);
    tm_jbuf_puts(&b, ",\"device_used\":");
    const char *dev = r->device_used ? r->device_used : "cpu";
    tm_jbuf_string(&b, dev, strlen(dev));
    tm_jbuf_puts(&b, ",\"timings\":{\"read\":");
    tm_jbuf_double(&b, read_s);
    tm_jbuf_puts(&b, ",\"transform\":");
    tm_jbuf_double(&b, r->seconds);
    tm_jbuf_puts(&b, ",\"total\":");
    tm_jbuf_double(&b, total_s);
    tm_jbuf_puts(&b, "}}");
    *out = tm_jbuf_detach(&b, len, &st);
    return *out ? TM_OK : st;
}

int tm_apply_is_job_result(const char *json, size_t len)
{
    static const char head[] = "{\"transform_of\":";
    return len >= sizeof(head) - 1 && !memcmp(json, head, sizeof(head) - 1);
}
