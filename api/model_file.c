/*
 * model_file.c - a fitted model as an .npz (see model_file.h): the members
 * written from a fit and read back with every length and value checked.
 */
#include "model_file.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/jbuf.h"
#include "api/json.h"
#include "api/npz.h"
#include "core/alloc.h"
#include "core/text/utf8.h"

#ifndef TM_VERSION
#define TM_VERSION "unknown"
#endif

/* Deflate's level: see bench/NOTES.md, "Kept models". */
#define MODEL_LEVEL 6

/* The most bytes of metadata.json read: a custom stop-word list rides in it
 * (tm_job_spec caps those at TM_SPEC_MAX_STOP_WORDS). */
#define MAX_METADATA ((size_t)64 << 20)

static const char *const solver_names[] = {"cd", "mu", "pgd", "hals", "minibatch"};
static const char *const init_names[] = {NULL, "nndsvd", "nndsvda", "nndsvdar", "random"};
static const char *const pin_names[] = {"auto", "LU", "QR", "none"};

/* The job spec's "model" object with every parameter the method reads
 * spelled out, so tm_job_spec_parse reads it back to the same params. */
static void put_model(struct tm_jbuf *b, const struct tm_model_params *p)
{
    tm_jbuf_puts(b, "{\"method\":");
    tm_jbuf_string(b, tm_method_name(p->method), strlen(tm_method_name(p->method)));
    tm_jbuf_printf(b, ",\"n_topics\":%" PRId64 ",\"n_top_words\":%" PRId64, p->n_topics,
                   p->n_top_words);
    if (p->dtype != TM_DTYPE_AUTO)
        tm_jbuf_printf(b, ",\"dtype\":\"%s\"",
                       p->dtype == TM_DTYPE_FLOAT32 ? "float32" : "float64");
    if (p->method == TM_METHOD_TRUNCATED_SVD) {
        if (p->algorithm == TM_SVD_RANDOMIZED) {
            tm_jbuf_printf(b, ",\"algorithm\":\"randomized\",\"n_oversamples\":%" PRId64,
                           p->n_oversamples);
            if (p->n_iter < 0)
                tm_jbuf_puts(b, ",\"n_iter\":\"auto\"");
            else
                tm_jbuf_printf(b, ",\"n_iter\":%" PRId64, p->n_iter);
            tm_jbuf_printf(b, ",\"power_iteration_normalizer\":\"%s\"",
                           pin_names[(unsigned)p->power_iteration_normalizer % 4]);
        } else {
            tm_jbuf_puts(b, ",\"algorithm\":\"lanczos\",\"tol\":");
            tm_jbuf_double(b, p->svd_tol);
            if (p->svd_max_iter > 0)
                tm_jbuf_printf(b, ",\"max_iter\":%" PRId64, p->svd_max_iter);
        }
    } else if (p->method == TM_METHOD_FULL_SVD) {
        tm_jbuf_printf(b, ",\"max_dense_bytes\":%" PRId64, p->max_dense_bytes);
    } else {
        const char *init = init_names[(unsigned)p->init % 5];
        tm_jbuf_puts(b, ",\"init\":");
        if (init)
            tm_jbuf_printf(b, "\"%s\"", init);
        else
            tm_jbuf_puts(b, "null");
        tm_jbuf_printf(b, ",\"solver\":\"%s\",\"beta_loss\":\"%s\",\"tol\":",
                       solver_names[(unsigned)p->solver % 5],
                       p->beta_loss == TM_BETA_KL ? "kullback-leibler" : "frobenius");
        tm_jbuf_double(b, p->tol);
        tm_jbuf_printf(b, ",\"max_iter\":%" PRId64, p->max_iter);
        if (p->solver != TM_NMF_PGD) {
            tm_jbuf_puts(b, ",\"alpha_W\":");
            tm_jbuf_double(b, p->alpha_W);
            tm_jbuf_puts(b, ",\"alpha_H\":");
            if (p->alpha_H < 0)
                tm_jbuf_puts(b, "\"same\"");
            else
                tm_jbuf_double(b, p->alpha_H);
            tm_jbuf_puts(b, ",\"l1_ratio\":");
            tm_jbuf_double(b, p->l1_ratio);
        }
        if (p->solver == TM_NMF_CD || p->solver == TM_NMF_HALS)
            tm_jbuf_printf(b, ",\"shuffle\":%s", p->shuffle ? "true" : "false");
        if (p->solver == TM_NMF_MINIBATCH) {
            tm_jbuf_printf(b, ",\"batch_size\":%" PRId64 ",\"forget_factor\":", p->batch_size);
            tm_jbuf_double(b, p->forget_factor);
            tm_jbuf_printf(b, ",\"fresh_restarts\":%s,\"fresh_restarts_max_iter\":%" PRId64,
                           p->fresh_restarts ? "true" : "false", p->fresh_restarts_max_iter);
            if (p->max_no_improvement > 0)
                tm_jbuf_printf(b, ",\"max_no_improvement\":%" PRId64, p->max_no_improvement);
            else
                tm_jbuf_puts(b, ",\"max_no_improvement\":null");
            if (p->transform_max_iter > 0)
                tm_jbuf_printf(b, ",\"transform_max_iter\":%" PRId64, p->transform_max_iter);
        }
        if (p->solver == TM_NMF_PGD) {
            tm_jbuf_puts(b, ",\"learning_rate\":");
            tm_jbuf_double(b, p->learning_rate);
            tm_jbuf_puts(b, ",\"learning_rate_decay\":");
            tm_jbuf_double(b, p->learning_rate_decay);
            tm_jbuf_puts(b, ",\"penalty\":");
            tm_jbuf_double(b, p->penalty);
            tm_jbuf_puts(b, ",\"penalty_mu\":");
            tm_jbuf_double(b, p->penalty_mu);
        }
    }
    tm_jbuf_puts(b, "}");
}

static int is_svd(enum tm_method m)
{
    return m == TM_METHOD_TRUNCATED_SVD || m == TM_METHOD_FULL_SVD;
}

tm_status tm_model_file_write(const struct tm_model_file_parts *parts, unsigned char **out,
                              size_t *len, char *err)
{
    const struct tm_fit_result *fit = parts->fit;
    const struct tm_vectorized *v = parts->v;
    const struct tm_job_spec *spec = parts->spec;
    struct tm_npz_writer *w = NULL;
    struct tm_jbuf meta;
    char *key = NULL, *meta_text = NULL;
    size_t key_len = 0, meta_len = 0;
    float *c32 = NULL;
    tm_status st;
    *out = NULL;
    *len = 0;
    tm_jbuf_init(&meta, MAX_METADATA);

    int64_t n = fit->n_features, k = fit->n_topics, m = fit->n_documents;
    if (!v || v->vocab.n_terms <= 0)
        return tm_errf(err, TM_EINVAL, "model: no vocabulary (a Matrix Market input has none)");
    if (v->vocab.n_terms != n || fit->components.rows != n || fit->components.cols != k ||
        !fit->components.data || k < 1)
        return tm_errf(err, TM_EINVAL,
                       "model: the fit (%" PRId64 " terms, %" PRId64
                       " topics) and the vocabulary (%" PRId64 " terms) disagree",
                       n, k, v->vocab.n_terms);
    if (is_svd(fit->method) && !fit->singular_values)
        return tm_errf(err, TM_EINVAL, "model: an SVD fit without singular values");

    TM_TRY(tm_job_spec_vectorizer_key(spec, &key, &key_len));
    tm_jbuf_puts(&meta, "{\"format\":\"topicd-model\",\"format_version\":");
    tm_jbuf_int(&meta, TM_MODEL_FILE_VERSION);
    tm_jbuf_puts(&meta, ",\"topicd_version\":");
    tm_jbuf_string(&meta, TM_VERSION, strlen(TM_VERSION));
    tm_jbuf_printf(&meta,
                   ",\"method\":\"%s\",\"n_documents\":%" PRId64 ",\"n_features\":%" PRId64
                   ",\"n_topics\":%" PRId64 ",\"components_dtype\":\"%s\",\"vectorizer\":",
                   tm_method_name(fit->method), m, n, k,
                   parts->components_float32 ? "float32" : "float64");
    tm_jbuf_put(&meta, key, key_len);
    struct tm_model_params p = spec->model;
    p.method = fit->method;
    p.n_topics = k;
    tm_jbuf_puts(&meta, ",\"model\":");
    put_model(&meta, &p);
    tm_jbuf_printf(&meta, ",\"seed\":%" PRIu64 ",\"fit\":{\"reconstruction_error\":", p.seed);
    if (isfinite(fit->reconstruction_error))
        tm_jbuf_double(&meta, fit->reconstruction_error);
    else
        tm_jbuf_puts(&meta, "null");
    tm_jbuf_printf(&meta, ",\"n_iter\":%" PRId64 "}}", fit->n_iter);
    meta_text = tm_jbuf_detach(&meta, &meta_len, &st);
    if (!meta_text)
        goto out;

    TM_TRY(tm_npz_writer_new(MODEL_LEVEL, parts->max_bytes, &w, err));
    int64_t shape[2] = {k, n};
    /* components_ is k x n row-major: the fit's n x k column-major as it is. */
    if (parts->components_float32) {
        c32 = tm_mallocarray((size_t)(n * k), sizeof(float));
        if (!c32) {
            st = tm_errf(err, TM_ENOMEM, "model: out of memory");
            goto out;
        }
        for (int64_t i = 0; i < n * k; i++)
            c32[i] = (float)fit->components.data[i];
        TM_TRY(tm_npz_writer_add(w, "components", TM_NPZ_F32, 2, shape, c32, err));
        tm_free(c32);
        c32 = NULL;
    } else {
        TM_TRY(tm_npz_writer_add(w, "components", TM_NPZ_F64, 2, shape, fit->components.data, err));
    }
    int64_t pool_len = v->vocab.offsets[n] - v->vocab.offsets[0];
    int64_t s_pool[1] = {pool_len}, s_off[1] = {n + 1}, s_n[1] = {n}, s_k[1] = {k}, s_m[1] = {m};
    TM_TRY(tm_npz_writer_add(w, "vocabulary_utf8", TM_NPZ_U8, 1, s_pool,
                             v->vocab.pool + v->vocab.offsets[0], err));
    if (v->vocab.offsets[0] == 0) {
        TM_TRY(tm_npz_writer_add(w, "vocabulary_offsets", TM_NPZ_I64, 1, s_off, v->vocab.offsets,
                                 err));
    } else {
        int64_t *o = tm_mallocarray((size_t)(n + 1), sizeof(*o));
        if (!o) {
            st = tm_errf(err, TM_ENOMEM, "model: out of memory");
            goto out;
        }
        for (int64_t i = 0; i <= n; i++)
            o[i] = v->vocab.offsets[i] - v->vocab.offsets[0];
        st = tm_npz_writer_add(w, "vocabulary_offsets", TM_NPZ_I64, 1, s_off, o, err);
        tm_free(o);
        if (st)
            goto out;
    }
    if (v->df)
        TM_TRY(tm_npz_writer_add(w, "document_frequencies", TM_NPZ_I64, 1, s_n, v->df, err));
    if (v->idf)
        TM_TRY(tm_npz_writer_add(w, "idf", TM_NPZ_F64, 1, s_n, v->idf, err));
    if (is_svd(fit->method))
        TM_TRY(
            tm_npz_writer_add(w, "singular_values", TM_NPZ_F64, 1, s_k, fit->singular_values, err));
    if (parts->term_frequency)
        TM_TRY(
            tm_npz_writer_add(w, "term_frequency", TM_NPZ_F64, 1, s_n, parts->term_frequency, err));
    if (parts->doc_lengths)
        TM_TRY(tm_npz_writer_add(w, "doc_lengths", TM_NPZ_I64, 1, s_m, parts->doc_lengths, err));
    TM_TRY(tm_npz_writer_add_raw(w, "metadata.json", meta_text, meta_len, err));
    TM_TRY(tm_npz_writer_finish(w, out, len, err));
out:
    if (st == TM_ENOMEM && err && !err[0])
        tm_errf(err, st, "model: out of memory");
    tm_free(c32);
    tm_npz_writer_free(w);
    tm_free(meta_text);
    tm_jbuf_release(&meta);
    tm_free(key);
    return st;
}

/* ---- reading ---- */

void tm_model_file_release(struct tm_model_file *m)
{
    if (!m)
        return;
    tm_free(m->vocab.pool);
    tm_free(m->vocab.offsets);
    tm_free(m->df);
    tm_free(m->idf);
    tm_free(m->components.data);
    tm_free(m->singular_values);
    tm_free(m->term_frequency);
    tm_free(m->doc_lengths);
    tm_free(m->metadata_json);
    tm_free(m->vectorizer_key);
    if (m->stop_words)
        for (size_t i = 0; i < m->vectorizer.n_stop_words; i++)
            tm_free(m->stop_words[i]);
    tm_free(m->stop_words);
    memset(m, 0, sizeof(*m));
}

static const cJSON *field(const cJSON *obj, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

/* An integer-valued JSON number in [lo, hi]. */
static int get_i64(const cJSON *obj, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    const cJSON *it = field(obj, name);
    if (!cJSON_IsNumber(it))
        return 0;
    double d = it->valuedouble;
    if (!(d >= (double)lo && d <= (double)hi) || d != floor(d))
        return 0;
    *out = (int64_t)d;
    return 1;
}

/* The vectorizer key's fields, in the order tm_job_spec_vectorizer_key
 * writes them. */
static const char *const key_fields[] = {
    "strip",       "weighting",  "lowercase",    "strip_accents", "english_stop_words",
    "stop_words",  "min_df",     "max_df",       "max_features",  "binary",
    "use_idf",     "smooth_idf", "sublinear_tf", "norm",          "max_terms",
    "ngram_range",
};

static int get_df(const cJSON *obj, const char *name, struct tm_df_bound *d)
{
    const cJSON *it = field(obj, name);
    if (!cJSON_IsObject(it) || !it->child || it->child->next || !cJSON_IsNumber(it->child))
        return 0;
    double x = it->child->valuedouble;
    if (!strcmp(it->child->string, "fraction")) {
        if (!(x >= 0 && x <= 1))
            return 0;
        d->is_fraction = 1;
    } else if (!strcmp(it->child->string, "count")) {
        if (!(x >= 0 && x <= 9e15) || x != floor(x))
            return 0;
        d->is_fraction = 0;
    } else {
        return 0;
    }
    d->value = x;
    return 1;
}

static void free_words(char **words, size_t n)
{
    if (!words)
        return;
    for (size_t i = 0; i < n; i++)
        tm_free(words[i]);
    tm_free(words);
}

tm_status tm_model_file_vectorizer_from_key(const char *key, size_t len,
                                            struct tm_vectorizer_params *p, char ***stop_words,
                                            char *err)
{
    struct tm_json_doc doc;
    struct tm_api_error e;
    tm_status st;
    char **words = NULL;
    size_t n_words = 0;
    *stop_words = NULL;
    tm_vectorizer_params_init(p);
    p->n_threads = 0;
    st = tm_json_parse_stored_object(&doc, key, len, "vectorizer", &e);
    if (st)
        return tm_errf(err, st, "model: vectorizer: %s", e.message);
    const cJSON *o = doc.root;
    const char *bad = NULL;
    for (const cJSON *it = o->child; it && !bad; it = it->next) {
        size_t i = 0;
        while (i < sizeof(key_fields) / sizeof(key_fields[0]) && strcmp(it->string, key_fields[i]))
            i++;
        if (i == sizeof(key_fields) / sizeof(key_fields[0])) {
            st = tm_errf(err, TM_EPARSE,
                         "model: vectorizer.%.64s is unknown to this topicd (a newer one wrote"
                         " the file?)",
                         it->string);
            goto out;
        }
    }
    int64_t x;
    if (get_i64(o, "strip", 0, 7, &x))
        p->strip = (unsigned)x;
    else
        bad = "strip";
    const cJSON *wt = field(o, "weighting");
    if (!bad && cJSON_IsString(wt) && !strcmp(wt->valuestring, "count"))
        p->weighting = TM_WEIGHTING_COUNT;
    else if (!bad && cJSON_IsString(wt) && !strcmp(wt->valuestring, "tfidf"))
        p->weighting = TM_WEIGHTING_TFIDF;
    else if (!bad)
        bad = "weighting";
#define FLAG(name, dst)                                                                            \
    if (!bad) {                                                                                    \
        if (get_i64(o, name, 0, 1, &x))                                                            \
            dst = (int)x;                                                                          \
        else                                                                                       \
            bad = name;                                                                            \
    }
    FLAG("lowercase", p->lowercase)
    FLAG("english_stop_words", p->english_stop_words)
    FLAG("binary", p->binary)
    FLAG("use_idf", p->use_idf)
    FLAG("smooth_idf", p->smooth_idf)
    FLAG("sublinear_tf", p->sublinear_tf)
#undef FLAG
    if (!bad) {
        if (get_i64(o, "strip_accents", 0, 2, &x))
            p->strip_accents = (enum tm_accents)x;
        else
            bad = "strip_accents";
    }
    if (!bad) {
        if (get_i64(o, "norm", 0, 2, &x))
            p->norm = (enum tm_norm)x;
        else
            bad = "norm";
    }
    if (!bad && !get_i64(o, "max_features", 0, INT64_MAX / 2, &p->max_features))
        bad = "max_features";
    if (!bad && !get_i64(o, "max_terms", 0, INT64_MAX / 2, &p->max_terms))
        bad = "max_terms";
    if (!bad && !get_df(o, "min_df", &p->min_df))
        bad = "min_df";
    if (!bad && !get_df(o, "max_df", &p->max_df))
        bad = "max_df";
    /* Written only when not [1, 1]. */
    const cJSON *ng = field(o, "ngram_range");
    if (!bad && ng) {
        const cJSON *a = cJSON_GetArrayItem(ng, 0), *b = cJSON_GetArrayItem(ng, 1);
        if (!cJSON_IsArray(ng) || cJSON_GetArraySize(ng) != 2 || !cJSON_IsNumber(a) ||
            !cJSON_IsNumber(b) || a->valuedouble != floor(a->valuedouble) ||
            b->valuedouble != floor(b->valuedouble) || !(a->valuedouble >= 1) ||
            !(a->valuedouble <= b->valuedouble) || !(b->valuedouble <= TM_SPEC_MAX_NGRAM)) {
            bad = "ngram_range";
        } else {
            p->ngram_min = (int64_t)a->valuedouble;
            p->ngram_max = (int64_t)b->valuedouble;
        }
    }
    const cJSON *sw = field(o, "stop_words");
    if (!bad && cJSON_IsArray(sw)) {
        int n = cJSON_GetArraySize(sw);
        if (n > TM_SPEC_MAX_STOP_WORDS) {
            bad = "stop_words";
        } else {
            words = tm_calloc((size_t)(n ? n : 1), sizeof(char *));
            if (!words) {
                st = tm_errf(err, TM_ENOMEM, "model: out of memory");
                goto out;
            }
            for (const cJSON *w = sw->child; w; w = w->next) {
                if (!cJSON_IsString(w)) {
                    bad = "stop_words";
                    break;
                }
                words[n_words] = tm_strndup(w->valuestring, strlen(w->valuestring));
                if (!words[n_words]) {
                    st = tm_errf(err, TM_ENOMEM, "model: out of memory");
                    goto out;
                }
                n_words++;
            }
        }
    } else if (!bad && !cJSON_IsNull(sw)) {
        bad = "stop_words";
    }
    if (bad) {
        st = tm_errf(err, TM_EPARSE, "model: vectorizer.%s is missing or out of range", bad);
        goto out;
    }
    if (words) {
        p->stop_words = (const char *const *)words;
        p->n_stop_words = n_words;
        *stop_words = words;
        words = NULL;
    }
out:
    free_words(words, n_words);
    tm_json_release(&doc);
    return st;
}

/* Copies a checked member's data into an owned array of bytes bytes. */
static tm_status copy_out(const struct tm_npz_member *m, size_t elem, void **out, char *err)
{
    size_t bytes = (size_t)m->count * elem;
    *out = tm_malloc(bytes ? bytes : 1);
    if (!*out)
        return tm_errf(err, TM_ENOMEM, "model: out of memory");
    if (bytes)
        memcpy(*out, m->data, bytes);
    return TM_OK;
}

static int all_finite(const double *x, int64_t n, double lo)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || x[i] < lo)
            return 0;
    return 1;
}

/* A required array member of dtype with 1-D length n (n < 0: any). */
static tm_status get1(const struct tm_npz *z, const char *name, enum tm_npz_dtype dtype, int64_t n,
                      const struct tm_npz_member **m, char *err)
{
    int64_t shape[1] = {n};
    char e2[TM_ERR_SIZE];
    tm_status st = tm_npz_get(z, name, dtype, 1, shape, m, e2);
    if (st)
        return tm_errf(err, TM_EPARSE, "model: %s", e2);
    return TM_OK;
}

/* The text of an object or array item of doc (which the strict scanner
 * accepted, so strings and brackets balance): *len bytes from its offset. */
static const char *value_text(const struct tm_json_doc *doc, const cJSON *item, size_t *len)
{
    int64_t start = tm_json_offset(doc, item);
    if (start < 0 || (size_t)start >= doc->len ||
        (doc->text[start] != '{' && doc->text[start] != '['))
        return NULL;
    int depth = 0, in_string = 0;
    for (size_t i = (size_t)start; i < doc->len; i++) {
        char c = doc->text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if ((c == '}' || c == ']') && --depth == 0) {
            *len = i + 1 - (size_t)start;
            return doc->text + start;
        }
    }
    return NULL;
}

static tm_status read_metadata(const struct tm_npz *z, struct tm_model_file *out,
                               struct tm_json_doc *doc, char *err)
{
    const struct tm_npz_member *mm = tm_npz_find(z, "metadata.json");
    struct tm_api_error e;
    if (!mm || mm->dtype != TM_NPZ_RAW)
        return tm_errf(err, TM_EPARSE, "model: no metadata.json member: not a topicd model file");
    if ((size_t)mm->count > MAX_METADATA)
        return tm_errf(err, TM_ETOOBIG, "model: metadata.json is over %zu bytes", MAX_METADATA);
    out->metadata_json = tm_strndup(mm->data ? mm->data : "", (size_t)mm->count);
    if (!out->metadata_json)
        return tm_errf(err, TM_ENOMEM, "model: out of memory");
    out->metadata_len = (size_t)mm->count;
    tm_status st = tm_json_parse_stored_object(doc, out->metadata_json, out->metadata_len,
                                               "metadata.json", &e);
    if (st)
        return tm_errf(err, st == TM_ENOMEM ? st : TM_EPARSE, "model: metadata.json: %s",
                       e.message);
    return TM_OK;
}

tm_status tm_model_file_read(const void *bytes, size_t len, struct tm_model_file *out, char *err)
{
    struct tm_npz *z = NULL;
    struct tm_json_doc doc;
    int have_doc = 0;
    struct tm_job_spec spec;
    struct tm_jbuf sb;
    char *spec_text = NULL;
    tm_status st;
    const struct tm_npz_member *m;
    memset(out, 0, sizeof(*out));
    tm_job_spec_init(&spec);
    tm_jbuf_init(&sb, MAX_METADATA);

    TM_TRY(tm_npz_read(bytes, len, TM_MODEL_FILE_MAX_BYTES, &z, err));
    TM_TRY(read_metadata(z, out, &doc, err));
    have_doc = 1;
    const cJSON *o = doc.root, *it;
    it = field(o, "format");
    if (!cJSON_IsString(it) || strcmp(it->valuestring, "topicd-model")) {
        st = tm_errf(err, TM_EPARSE, "model: metadata.json: format is not \"topicd-model\"");
        goto out;
    }
    int64_t version;
    if (!get_i64(o, "format_version", 0, INT32_MAX, &version)) {
        st = tm_errf(err, TM_EPARSE, "model: metadata.json: no format_version");
        goto out;
    }
    if (version != TM_MODEL_FILE_VERSION) {
        st = tm_errf(err, TM_EINVAL, "model: format version %" PRId64 ", this topicd reads %d",
                     version, TM_MODEL_FILE_VERSION);
        goto out;
    }
    out->format_version = (int)version;
    it = field(o, "topicd_version");
    if (cJSON_IsString(it))
        snprintf(out->topicd_version, sizeof(out->topicd_version), "%s", it->valuestring);
    it = field(o, "method");
    if (cJSON_IsString(it) && !strcmp(it->valuestring, "nmf"))
        out->method = TM_METHOD_NMF;
    else if (cJSON_IsString(it) && !strcmp(it->valuestring, "truncated_svd"))
        out->method = TM_METHOD_TRUNCATED_SVD;
    else if (cJSON_IsString(it) && !strcmp(it->valuestring, "full_svd"))
        out->method = TM_METHOD_FULL_SVD;
    else {
        st = tm_errf(err, TM_EPARSE, "model: metadata.json: unknown method");
        goto out;
    }
    /* Sizes: positive, and small enough that n * k elements fit in memory
     * arithmetic (the members' shapes must then match them exactly). */
    const int64_t cap = (int64_t)1 << 40;
    if (!get_i64(o, "n_documents", 0, cap, &out->n_documents) ||
        !get_i64(o, "n_features", 1, cap, &out->n_features) ||
        !get_i64(o, "n_topics", 1, cap, &out->n_topics)) {
        st = tm_errf(err, TM_EPARSE,
                     "model: metadata.json: n_documents, n_features or n_topics missing or out of"
                     " range");
        goto out;
    }
    int64_t n = out->n_features, k = out->n_topics;
    it = field(o, "components_dtype");
    int f32 = cJSON_IsString(it) && !strcmp(it->valuestring, "float32");
    if (!f32 && !(cJSON_IsString(it) && !strcmp(it->valuestring, "float64"))) {
        st = tm_errf(err, TM_EPARSE,
                     "model: metadata.json: components_dtype is not float32 or"
                     " float64");
        goto out;
    }

    /* The vectorizer, as its canonical key. */
    it = field(o, "vectorizer");
    if (!cJSON_IsObject(it)) {
        st = tm_errf(err, TM_EPARSE, "model: metadata.json: no vectorizer object");
        goto out;
    }
    size_t vlen;
    const char *vtext = value_text(&doc, it, &vlen);
    if (!vtext) {
        st = tm_errf(err, TM_EPARSE, "model: metadata.json: no vectorizer object");
        goto out;
    }
    TM_TRY(tm_model_file_vectorizer_from_key(vtext, vlen, &out->vectorizer, &out->stop_words, err));
    /* The key as this topicd writes it, from what was read. */
    spec.vectorizer = out->vectorizer;
    st = tm_job_spec_vectorizer_key(&spec, &out->vectorizer_key, &out->vectorizer_key_len);
    tm_vectorizer_params_init(&spec.vectorizer);
    if (st) {
        tm_errf(err, st, "model: out of memory");
        goto out;
    }

    /* The model parameters, read by the job spec's own parser. */
    it = field(o, "model");
    const cJSON *seed = field(o, "seed");
    if (!cJSON_IsObject(it) || !cJSON_IsNumber(seed)) {
        st = tm_errf(err, TM_EPARSE, "model: metadata.json: no model object or seed");
        goto out;
    }
    size_t seed_len, model_len;
    const char *seed_tok = tm_json_number_text(&doc, seed, &seed_len);
    const char *model_text = value_text(&doc, it, &model_len);
    if (!model_text || !seed_tok) {
        st = tm_errf(err, TM_EPARSE, "model: metadata.json: no model object or seed");
        goto out;
    }
    tm_jbuf_puts(&sb, "{\"model\":");
    tm_jbuf_put(&sb, model_text, model_len);
    tm_jbuf_puts(&sb, ",\"seed\":");
    tm_jbuf_put(&sb, seed_tok, seed_len);
    tm_jbuf_puts(&sb, "}");
    size_t spec_len;
    spec_text = tm_jbuf_detach(&sb, &spec_len, &st);
    if (!spec_text)
        goto out;
    struct tm_api_error e;
    st = tm_job_spec_parse(&spec, spec_text, spec_len, NULL, &e);
    if (st) {
        st = tm_errf(err, st == TM_ENOMEM ? st : TM_EPARSE, "model: metadata.json: %s%s%s", e.field,
                     e.field[0] ? ": " : "", e.message);
        goto out;
    }
    out->params = spec.model;
    if (out->params.method != out->method || out->params.n_topics != k) {
        st = tm_errf(err, TM_EPARSE,
                     "model: metadata.json: model disagrees with method or"
                     " n_topics");
        goto out;
    }

    /* The arrays. */
    int64_t cshape[2] = {k, n};
    char e2[TM_ERR_SIZE];
    if (tm_npz_get(z, "components", f32 ? TM_NPZ_F32 : TM_NPZ_F64, 2, cshape, &m, e2)) {
        st = tm_errf(err, TM_EPARSE, "model: %s", e2);
        goto out;
    }
    out->components.rows = n;
    out->components.cols = k;
    out->components.data = tm_mallocarray((size_t)m->count, sizeof(double));
    if (!out->components.data) {
        st = tm_errf(err, TM_ENOMEM, "model: out of memory for the components");
        goto out;
    }
    for (int64_t i = 0; i < m->count; i++) {
        double x = f32 ? (double)((const float *)m->data)[i] : ((const double *)m->data)[i];
        if (!isfinite(x)) {
            st = tm_errf(err, TM_EPARSE,
                         "model: components[%" PRId64 "][%" PRId64 "] is not"
                         " finite",
                         i / n, i % n);
            goto out;
        }
        out->components.data[i] = x;
    }

    const struct tm_npz_member *pool, *offs;
    TM_TRY(get1(z, "vocabulary_utf8", TM_NPZ_U8, -1, &pool, err));
    TM_TRY(get1(z, "vocabulary_offsets", TM_NPZ_I64, n + 1, &offs, err));
    const int64_t *o64 = offs->data;
    const char *pb = pool->data;
    if (o64[0] != 0 || o64[n] != pool->count) {
        st = tm_errf(err, TM_EPARSE, "model: vocabulary_offsets do not span vocabulary_utf8");
        goto out;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t a = o64[i], b = o64[i + 1];
        if (b <= a || b > pool->count) {
            st = tm_errf(err, TM_EPARSE,
                         "model: vocabulary term %" PRId64 " is empty or out of"
                         " place",
                         i);
            goto out;
        }
        if (tm_utf8_valid_prefix(pb + a, (size_t)(b - a)) != (size_t)(b - a)) {
            st = tm_errf(err, TM_EPARSE, "model: vocabulary term %" PRId64 " is not UTF-8", i);
            goto out;
        }
        if (i > 0) {
            int64_t pa = o64[i - 1], la = a - pa, lb = b - a;
            int c = memcmp(pb + pa, pb + a, (size_t)(la < lb ? la : lb));
            if (c > 0 || (c == 0 && la >= lb)) {
                st = tm_errf(err, TM_EPARSE, "model: vocabulary term %" PRId64 " is out of order",
                             i);
                goto out;
            }
        }
    }
    out->vocab.n_terms = n;
    out->vocab.pool = tm_malloc((size_t)pool->count + 1);
    if (!out->vocab.pool) {
        st = tm_errf(err, TM_ENOMEM, "model: out of memory");
        goto out;
    }
    memcpy(out->vocab.pool, pb, (size_t)pool->count);
    out->vocab.pool[pool->count] = '\0';
    TM_TRY(copy_out(offs, sizeof(int64_t), (void **)&out->vocab.offsets, err));

    TM_TRY(get1(z, "document_frequencies", TM_NPZ_I64, n, &m, err));
    for (int64_t i = 0; i < n; i++) {
        int64_t d = ((const int64_t *)m->data)[i];
        if (d < 0 || d > out->n_documents) {
            st = tm_errf(err, TM_EPARSE,
                         "model: document_frequencies[%" PRId64 "] is out of"
                         " range",
                         i);
            goto out;
        }
    }
    TM_TRY(copy_out(m, sizeof(int64_t), (void **)&out->df, err));
    int want_idf = out->vectorizer.weighting == TM_WEIGHTING_TFIDF && out->vectorizer.use_idf;
    if (want_idf) {
        TM_TRY(get1(z, "idf", TM_NPZ_F64, n, &m, err));
        if (!all_finite(m->data, n, 0)) {
            st = tm_errf(err, TM_EPARSE, "model: idf holds a negative or non-finite value");
            goto out;
        }
        TM_TRY(copy_out(m, sizeof(double), (void **)&out->idf, err));
    } else if (tm_npz_find(z, "idf")) {
        st = tm_errf(err, TM_EPARSE, "model: an idf member, but the vectorizer uses none");
        goto out;
    }
    if (is_svd(out->method)) {
        TM_TRY(get1(z, "singular_values", TM_NPZ_F64, k, &m, err));
        if (!all_finite(m->data, k, 0)) {
            st = tm_errf(err, TM_EPARSE,
                         "model: singular_values holds a negative or non-finite"
                         " value");
            goto out;
        }
        TM_TRY(copy_out(m, sizeof(double), (void **)&out->singular_values, err));
    }
    if (tm_npz_find(z, "term_frequency")) {
        TM_TRY(get1(z, "term_frequency", TM_NPZ_F64, n, &m, err));
        if (!all_finite(m->data, n, 0)) {
            st = tm_errf(err, TM_EPARSE,
                         "model: term_frequency holds a negative or non-finite"
                         " value");
            goto out;
        }
        TM_TRY(copy_out(m, sizeof(double), (void **)&out->term_frequency, err));
    }
    if (tm_npz_find(z, "doc_lengths")) {
        TM_TRY(get1(z, "doc_lengths", TM_NPZ_I64, out->n_documents, &m, err));
        for (int64_t i = 0; i < out->n_documents; i++)
            if (((const int64_t *)m->data)[i] < 0) {
                st = tm_errf(err, TM_EPARSE, "model: doc_lengths[%" PRId64 "] is negative", i);
                goto out;
            }
        TM_TRY(copy_out(m, sizeof(int64_t), (void **)&out->doc_lengths, err));
    }
out:
    tm_free(spec_text);
    tm_jbuf_release(&sb);
    tm_job_spec_release(&spec);
    if (have_doc)
        tm_json_release(&doc);
    tm_npz_free(z);
    return st;
}

tm_status tm_model_file_load(const char *path, struct tm_model_file *out, char *err)
{
    memset(out, 0, sizeof(*out));
    FILE *f = fopen(path, "rb");
    if (!f)
        return tm_errf(err, TM_EIO, "%s: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t len = 0, alloc = 0;
    tm_status st = TM_OK;
    for (;;) {
        if (len == alloc) {
            size_t want = alloc ? alloc * 2 : (size_t)1 << 20;
            if (alloc >= TM_MODEL_FILE_MAX_BYTES) {
                st = tm_errf(err, TM_ETOOBIG, "%s: over %zu bytes", path, TM_MODEL_FILE_MAX_BYTES);
                goto out;
            }
            unsigned char *p = tm_realloc(buf, want);
            if (!p) {
                st = tm_errf(err, TM_ENOMEM, "%s: out of memory", path);
                goto out;
            }
            buf = p;
            alloc = want;
        }
        size_t got = fread(buf + len, 1, alloc - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                st = tm_errf(err, TM_EIO, "%s: read error", path);
            break;
        }
    }
    if (!st) {
        char e2[TM_ERR_SIZE];
        st = tm_model_file_read(buf, len, out, e2);
        if (st)
            tm_errf(err, st, "%s: %s", path, e2);
    }
out:
    tm_free(buf);
    fclose(f);
    return st;
}
