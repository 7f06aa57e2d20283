/*
 * spec.c - the job spec parser and validator (see spec.h for the format).
 *
 * Every object is read the same way: its fields are first matched against a
 * table (unknown and duplicate fields are errors, in document order), then
 * validated in a fixed order, so that a field's meaning can depend on an
 * earlier one (solver before shuffle, weighting before norm).
 */
#include "api/spec.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/jbuf.h"
#include "api/json.h"
#include "core/alloc.h"

struct pctx {
    const struct tm_json_doc *doc;
    struct tm_api_error *e;
};

static tm_status fail(struct pctx *c, tm_status st, const char *field, const cJSON *item,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static tm_status fail(struct pctx *c, tm_status st, const char *field, const cJSON *item,
                      const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int64_t off = item ? tm_json_offset(c->doc, item) : -1;
    tm_api_errorf(c->e, st, field, off, "%s", msg);
    if (c->e)
        tm_api_error_locate(c->e, c->doc->text, c->doc->len);
    return st;
}

/* ---------------------------------------------------------------------- */
/* Fields and values. */

struct field {
    const char *name;
    const cJSON *item;
};

/* Matches obj's members to fields[] (NULL-terminated names). */
static tm_status collect(struct pctx *c, const cJSON *obj, const char *path, struct field *fields,
                         const char *hint)
{
    char where[128];
    if (!cJSON_IsObject(obj))
        return fail(c, TM_EINVAL, path, obj, "must be an object");
    for (const cJSON *m = obj->child; m; m = m->next) {
        struct field *f = fields;
        while (f->name && strcmp(f->name, m->string) != 0)
            f++;
        if (path[0])
            snprintf(where, sizeof(where), "%s.%s", path, m->string);
        else
            snprintf(where, sizeof(where), "%s", m->string);
        if (!f->name)
            return fail(c, TM_EINVAL, where, m, "unknown field%s", hint ? hint : "");
        if (f->item)
            return fail(c, TM_EINVAL, where, m, "duplicate field");
        f->item = m;
    }
    return TM_OK;
}

static const cJSON *get(const struct field *fields, const char *name)
{
    for (; fields->name; fields++)
        if (!strcmp(fields->name, name))
            return fields->item;
    return NULL;
}

static tm_status get_bool(struct pctx *c, const char *field, const cJSON *item, int *out)
{
    if (!cJSON_IsBool(item))
        return fail(c, TM_EINVAL, field, item, "must be true or false");
    *out = cJSON_IsTrue(item) ? 1 : 0;
    return TM_OK;
}

static int is_integer_token(struct pctx *c, const cJSON *item)
{
    return cJSON_IsNumber(item) && !(tm_json_flags(c->doc, item) & TM_JSON_NUM_FRACTION);
}

/* An integer written as one (no '.', 'e', 'E') in [min, max]. */
static tm_status get_int(struct pctx *c, const char *field, const cJSON *item, int64_t min,
                         int64_t max, int64_t *out)
{
    char want[96];
    if (max == INT64_MAX)
        snprintf(want, sizeof(want), "must be an integer >= %" PRId64, min);
    else
        snprintf(want, sizeof(want), "must be an integer in [%" PRId64 ", %" PRId64 "]", min, max);
    if (!is_integer_token(c, item))
        return fail(c, TM_EINVAL, field, item, "%s", want);
    size_t len;
    const char *tok = tm_json_number_text(c->doc, item, &len);
    char buf[72];
    if (!tok || len >= sizeof(buf))
        return fail(c, TM_ERANGE, field, item, "%s", want);
    memcpy(buf, tok, len);
    buf[len] = '\0';
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE || v < min || v > max)
        return fail(c, TM_ERANGE, field, item, "%s", want);
    *out = (int64_t)v;
    return TM_OK;
}

enum { CLOSED = 0, OPEN_LOW = 1 };

/* Any finite JSON number >= min (> min with OPEN_LOW) and <= max. */
static tm_status get_number(struct pctx *c, const char *field, const cJSON *item, double min,
                            double max, int bounds, double *out)
{
    char want[96];
    const char *op = bounds & OPEN_LOW ? ">" : ">=";
    if (isinf(max))
        snprintf(want, sizeof(want), "must be a number %s %g", op, min);
    else
        snprintf(want, sizeof(want), "must be a number in %s%g, %g]", bounds & OPEN_LOW ? "(" : "[",
                 min, max);
    if (!cJSON_IsNumber(item))
        return fail(c, TM_EINVAL, field, item, "%s", want);
    double v = item->valuedouble;
    if (!isfinite(v) || v < min || v > max || ((bounds & OPEN_LOW) && v == min))
        return fail(c, TM_ERANGE, field, item, "%s", want);
    *out = v;
    return TM_OK;
}

/* A string out of names[] (NULL-terminated); its index in *out. With
 * null_value >= 0, JSON null is accepted as that value. */
static tm_status get_enum(struct pctx *c, const char *field, const cJSON *item,
                          const char *const *names, int null_value, int *out)
{
    if (null_value >= 0 && cJSON_IsNull(item)) {
        *out = null_value;
        return TM_OK;
    }
    if (cJSON_IsString(item)) {
        for (int i = 0; names[i]; i++) {
            if (!strcmp(names[i], item->valuestring)) {
                *out = i;
                return TM_OK;
            }
        }
    }
    char list[192];
    size_t n = 0;
    list[0] = '\0';
    if (null_value >= 0)
        n += (size_t)snprintf(list, sizeof(list), "null");
    for (int i = 0; names[i] && n < sizeof(list); i++)
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s\"%s\"", n ? ", " : "", names[i]);
    return fail(c, TM_EINVAL, field, item, "must be one of %s", list);
}

/* ---------------------------------------------------------------------- */
/* preprocess */

static tm_status parse_preprocess(struct pctx *c, struct tm_job_spec *spec, const cJSON *obj)
{
    struct field f[] = {{"strip", NULL}, {NULL, NULL}};
    tm_status st = collect(c, obj, "preprocess", f, NULL);
    if (st != TM_OK)
        return st;
    const cJSON *strip = f[0].item;
    spec->vectorizer.strip = 0;
    if (!strip || cJSON_IsNull(strip))
        return TM_OK;
    if (!cJSON_IsArray(strip))
        return fail(c, TM_EINVAL, "preprocess.strip", strip,
                    "must be an array of \"headers\", \"footers\", \"quotes\"");
    static const char *const names[] = {"headers", "footers", "quotes", NULL};
    static const unsigned flags[] = {TM_STRIP_HEADERS, TM_STRIP_FOOTERS, TM_STRIP_QUOTES};
    int i = 0;
    for (const cJSON *el = strip->child; el; el = el->next, i++) {
        char where[64];
        int which;
        snprintf(where, sizeof(where), "preprocess.strip[%d]", i);
        st = get_enum(c, where, el, names, -1, &which);
        if (st != TM_OK)
            return st;
        spec->vectorizer.strip |= flags[which];
    }
    return TM_OK;
}

/* ---------------------------------------------------------------------- */
/* vectorizer */

static tm_status parse_df(struct pctx *c, const char *field, const cJSON *item, int64_t min_count,
                          struct tm_df_bound *out)
{
    if (!cJSON_IsNumber(item))
        return fail(c, TM_EINVAL, field, item,
                    "must be an integer >= %" PRId64
                    " (a document count) or a number in [0.0, 1.0] (a fraction)",
                    min_count);
    if (is_integer_token(c, item)) {
        int64_t v;
        tm_status st = get_int(c, field, item, min_count, INT64_MAX, &v);
        if (st != TM_OK)
            return st;
        out->is_fraction = 0;
        out->value = (double)v;
        return TM_OK;
    }
    double v = item->valuedouble;
    if (!isfinite(v) || v < 0.0 || v > 1.0)
        return fail(c, TM_ERANGE, field, item,
                    "a fraction must be in [0.0, 1.0] (an integer is a document count)");
    out->is_fraction = 1;
    out->value = v;
    return TM_OK;
}

static tm_status parse_stop_words(struct pctx *c, struct tm_job_spec *spec, const cJSON *item)
{
    struct tm_vectorizer_params *v = &spec->vectorizer;
    const char *field = "vectorizer.stop_words";
    if (cJSON_IsNull(item))
        return TM_OK;
    if (cJSON_IsString(item)) {
        if (strcmp(item->valuestring, "english") != 0)
            return fail(c, TM_EINVAL, field, item,
                        "must be null, \"english\" or an array of strings");
        v->english_stop_words = 1;
        return TM_OK;
    }
    if (!cJSON_IsArray(item))
        return fail(c, TM_EINVAL, field, item, "must be null, \"english\" or an array of strings");
    size_t n = 0, bytes = 0;
    for (const cJSON *el = item->child; el; el = el->next, n++) {
        char where[64];
        snprintf(where, sizeof(where), "%s[%zu]", field, n);
        if (!cJSON_IsString(el))
            return fail(c, TM_EINVAL, where, el, "must be a string");
        if (tm_json_flags(c->doc, el) & TM_JSON_STR_NUL)
            return fail(c, TM_EINVAL, where, el, "must not contain \\u0000");
        if (n >= TM_SPEC_MAX_STOP_WORDS)
            return fail(c, TM_ETOOBIG, field, item, "more than %d stop words",
                        TM_SPEC_MAX_STOP_WORDS);
        bytes += strlen(el->valuestring) + 1;
    }
    /* One block: the pointer array, then the strings. */
    char **words = tm_malloc(n * sizeof(char *) + bytes);
    if (!words)
        return fail(c, TM_ENOMEM, field, NULL, "out of memory");
    char *pool = (char *)(words + n);
    size_t i = 0;
    for (const cJSON *el = item->child; el; el = el->next, i++) {
        size_t len = strlen(el->valuestring) + 1;
        memcpy(pool, el->valuestring, len);
        words[i] = pool;
        pool += len;
    }
    spec->stop_words = words;
    v->stop_words = (const char *const *)words;
    v->n_stop_words = n;
    return TM_OK;
}

/*
 * vectorizer.ngram_range: [min_n, max_n], 1 <= min_n <= max_n <=
 * TM_SPEC_MAX_NGRAM. scikit-learn sets no upper bound; topicd does because
 * every n adds about one term per token of the corpus (a corpus of T tokens
 * holds up to T * (max_n - min_n + 1) distinct n-grams), and past five
 * tokens nearly every n-gram occurs once: the vocabulary grows towards the
 * max_terms cap while adding nothing a topic model can use.
 */
static tm_status parse_ngram_range(struct pctx *c, const cJSON *item,
                                   struct tm_vectorizer_params *v)
{
    const char *field = "vectorizer.ngram_range";
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != 2)
        return fail(c, TM_EINVAL, field, item, "must be an array of two integers [min_n, max_n]");
    int64_t n[2] = {0, 0};
    int i = 0;
    for (const cJSON *el = item->child; el; el = el->next, i++) {
        char where[64];
        snprintf(where, sizeof(where), "%s[%d]", field, i);
        tm_status st = get_int(c, where, el, 1, TM_SPEC_MAX_NGRAM, &n[i]);
        if (st != TM_OK)
            return st;
    }
    if (n[0] > n[1])
        return fail(c, TM_EINVAL, field, item, "min_n must be <= max_n");
    v->ngram_min = n[0];
    v->ngram_max = n[1];
    return TM_OK;
}

static tm_status parse_vectorizer(struct pctx *c, struct tm_job_spec *spec, const cJSON *obj)
{
    struct field f[] = {
        {"weighting", NULL},   {"lowercase", NULL},  {"strip_accents", NULL}, {"stop_words", NULL},
        {"min_df", NULL},      {"max_df", NULL},     {"max_features", NULL},  {"binary", NULL},
        {"use_idf", NULL},     {"smooth_idf", NULL}, {"sublinear_tf", NULL},  {"norm", NULL},
        {"ngram_range", NULL}, {NULL, NULL}};
    struct tm_vectorizer_params *v = &spec->vectorizer;
    tm_status st = collect(c, obj, "vectorizer", f, NULL);
    const cJSON *it;
    int e;
    if (st != TM_OK)
        return st;

    if ((it = get(f, "weighting"))) {
        static const char *const names[] = {"tfidf", "count", NULL};
        if ((st = get_enum(c, "vectorizer.weighting", it, names, -1, &e)) != TM_OK)
            return st;
        v->weighting = e == 0 ? TM_WEIGHTING_TFIDF : TM_WEIGHTING_COUNT;
    }
    if ((it = get(f, "lowercase")) && (st = get_bool(c, "vectorizer.lowercase", it, &v->lowercase)))
        return st;
    if ((it = get(f, "strip_accents"))) {
        static const char *const names[] = {"ascii", "unicode", NULL};
        if ((st = get_enum(c, "vectorizer.strip_accents", it, names, 2, &e)) != TM_OK)
            return st;
        v->strip_accents = e == 0   ? TM_ACCENTS_ASCII
                           : e == 1 ? TM_ACCENTS_UNICODE
                                    : TM_ACCENTS_NONE;
    }
    if ((it = get(f, "stop_words")) && (st = parse_stop_words(c, spec, it)) != TM_OK)
        return st;
    if ((it = get(f, "min_df")) && (st = parse_df(c, "vectorizer.min_df", it, 0, &v->min_df)))
        return st;
    if ((it = get(f, "max_df")) && (st = parse_df(c, "vectorizer.max_df", it, 1, &v->max_df)))
        return st;
    /* Bounds of the same kind can be compared now; mixed ones need the
     * document count, and tm_vectorize checks them. */
    if (v->min_df.is_fraction == v->max_df.is_fraction && v->max_df.value < v->min_df.value)
        return fail(c, TM_EINVAL, "vectorizer.max_df", get(f, "max_df"),
                    "max_df corresponds to < documents than min_df");
    if ((it = get(f, "max_features"))) {
        if (cJSON_IsNull(it))
            v->max_features = 0;
        else if ((st = get_int(c, "vectorizer.max_features", it, 1, INT64_MAX, &v->max_features)))
            return st;
    }
    if ((it = get(f, "binary")) && (st = get_bool(c, "vectorizer.binary", it, &v->binary)))
        return st;

    /* CountVectorizer has no idf and no normalisation: refuse rather than
     * ignore them. */
    static const char *const tfidf_only[] = {"use_idf", "smooth_idf", "sublinear_tf", "norm"};
    if (v->weighting == TM_WEIGHTING_COUNT) {
        const cJSON *first = NULL;
        for (const cJSON *m = obj->child; m && !first; m = m->next)
            for (size_t i = 0; i < 4; i++)
                if (!strcmp(m->string, tfidf_only[i]))
                    first = m;
        if (first) {
            char where[64];
            snprintf(where, sizeof(where), "vectorizer.%s", first->string);
            return fail(c, TM_EINVAL, where, first, "only used with weighting \"tfidf\"");
        }
    }
    if ((it = get(f, "use_idf")) && (st = get_bool(c, "vectorizer.use_idf", it, &v->use_idf)))
        return st;
    if ((it = get(f, "smooth_idf")) &&
        (st = get_bool(c, "vectorizer.smooth_idf", it, &v->smooth_idf)))
        return st;
    if ((it = get(f, "sublinear_tf")) &&
        (st = get_bool(c, "vectorizer.sublinear_tf", it, &v->sublinear_tf)))
        return st;
    if ((it = get(f, "norm"))) {
        static const char *const names[] = {"l2", "l1", NULL};
        if ((st = get_enum(c, "vectorizer.norm", it, names, 2, &e)) != TM_OK)
            return st;
        v->norm = e == 0 ? TM_NORM_L2 : e == 1 ? TM_NORM_L1 : TM_NORM_NONE;
    }
    if ((it = get(f, "ngram_range")) && (st = parse_ngram_range(c, it, v)) != TM_OK)
        return st;
    return TM_OK;
}

/* ---------------------------------------------------------------------- */
/* model */

enum { M_NMF = 1, M_TSVD = 2, M_FSVD = 4, M_ALL = 7 };

struct model_field {
    const char *name;
    unsigned methods;
};

/* The minibatch rows would break clang-format's two columns. */
/* clang-format off */
static const struct model_field model_fields[] = {
    {"method", M_ALL},           {"n_topics", M_ALL},
    {"n_top_words", M_ALL},      {"dtype", M_ALL},
    {"algorithm", M_TSVD},       {"n_oversamples", M_TSVD},
    {"n_iter", M_TSVD},          {"power_iteration_normalizer", M_TSVD},
    {"tol", M_TSVD | M_NMF},     {"max_iter", M_TSVD | M_NMF},
    {"max_dense_bytes", M_FSVD}, {"init", M_NMF},
    {"solver", M_NMF},           {"beta_loss", M_NMF},
    {"alpha_W", M_NMF},          {"alpha_H", M_NMF},
    {"l1_ratio", M_NMF},         {"shuffle", M_NMF},
    {"learning_rate", M_NMF},    {"learning_rate_decay", M_NMF},
    {"penalty", M_NMF},          {"penalty_mu", M_NMF},
    {"warm_start", M_NMF},       {"coherence", M_ALL},
    {"batch_size", M_NMF},       {"forget_factor", M_NMF},
    {"fresh_restarts", M_NMF},   {"fresh_restarts_max_iter", M_NMF},
    {"max_no_improvement", M_NMF}, {"transform_max_iter", M_NMF},
};
/* clang-format on */
#define N_MODEL_FIELDS (sizeof(model_fields) / sizeof(model_fields[0]))

/* Refuses the first of names[] present in obj (document order) with msg. */
static tm_status refuse_any(struct pctx *c, const cJSON *obj, const char *const *names,
                            const char *msg)
{
    for (const cJSON *m = obj->child; m; m = m->next) {
        for (size_t i = 0; names[i]; i++) {
            if (!strcmp(m->string, names[i])) {
                char where[96];
                snprintf(where, sizeof(where), "model.%s", m->string);
                return fail(c, TM_EINVAL, where, m, "%s", msg);
            }
        }
    }
    return TM_OK;
}

#define MODEL_PATH(name) "model." name

static int cmp_k(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* model.n_topics: an integer, a list of them or a range object. */
static tm_status parse_n_topics(struct pctx *c, struct tm_job_spec *spec, const cJSON *it)
{
    const char *field = "model.n_topics";
    char where[48];
    tm_status st;
    int64_t *ks = spec->sweep_topics, n = 0;
    if (cJSON_IsNumber(it))
        return get_int(c, field, it, 1, INT64_MAX, &spec->model.n_topics);
    if (cJSON_IsArray(it)) {
        const cJSON *x;
        cJSON_ArrayForEach(x, it)
        {
            snprintf(where, sizeof(where), "model.n_topics[%lld]", (long long)n);
            if (n == TM_SWEEP_MAX)
                return fail(c, TM_ERANGE, field, it, "at most %d values of k, got %d", TM_SWEEP_MAX,
                            cJSON_GetArraySize(it));
            if ((st = get_int(c, where, x, 1, INT64_MAX, &ks[n])) != TM_OK)
                return st;
            n++;
        }
        if (n == 0)
            return fail(c, TM_EINVAL, field, it, "the list of k is empty");
        qsort(ks, (size_t)n, sizeof(*ks), cmp_k);
        for (int64_t i = 1; i < n; i++)
            if (ks[i] == ks[i - 1])
                return fail(c, TM_EINVAL, field, it, "k = %lld is listed twice", (long long)ks[i]);
    } else if (cJSON_IsObject(it)) {
        struct field f[] = {{"start", NULL}, {"stop", NULL}, {"step", NULL}, {NULL, NULL}};
        int64_t start, stop, step = 1;
        if ((st = collect(c, it, field, f, " (a range has start, stop and step)")) != TM_OK)
            return st;
        if (!f[0].item || !f[1].item)
            return fail(c, TM_EINVAL, !f[0].item ? "model.n_topics.start" : "model.n_topics.stop",
                        it, "required in a range");
        if ((st = get_int(c, "model.n_topics.start", f[0].item, 1, INT64_MAX, &start)) ||
            (st = get_int(c, "model.n_topics.stop", f[1].item, 1, INT64_MAX, &stop)) ||
            (f[2].item && (st = get_int(c, "model.n_topics.step", f[2].item, 1, INT64_MAX, &step))))
            return st;
        if (stop <= start)
            return fail(c, TM_EINVAL, field, it,
                        "the range is empty (stop %lld is excluded, start %lld)", (long long)stop,
                        (long long)start);
        int64_t count = (stop - start - 1) / step + 1;
        if (count > TM_SWEEP_MAX)
            return fail(c, TM_ERANGE, field, it, "at most %d values of k, this range has %lld",
                        TM_SWEEP_MAX, (long long)count);
        for (int64_t k = start; k < stop && n < count; k += step)
            ks[n++] = k;
    } else {
        return fail(c, TM_EINVAL, field, it,
                    "must be an integer >= 1, a list of them, or a range "
                    "{\"start\", \"stop\", \"step\"}");
    }
    spec->n_sweep = n;
    spec->model.n_topics = ks[n - 1];
    return TM_OK;
}

/* Largest n_top_words coherence takes: its counts grow as n_topics x
 * n_top_words^2, and gensim's scores are read at 5 to 20 words. */
#define COHERENCE_MAX_TOP_WORDS 1000

/* "coherence": a measure's name or an array of distinct names. Checked
 * against n_top_words, so called after it is parsed. */
static tm_status parse_coherence(struct pctx *c, struct tm_model_params *p, const cJSON *item)
{
    static const char *const names[] = {"u_mass", "c_uci", "c_npmi", "c_v", NULL};
    const char *field = "model.coherence";
    char where[64];
    unsigned mask = 0;
    int e;
    tm_status st;
    if (cJSON_IsString(item)) {
        if ((st = get_enum(c, field, item, names, -1, &e)) != TM_OK)
            return st;
        mask = TM_COHERENCE_BIT(e);
    } else if (cJSON_IsArray(item)) {
        size_t i = 0;
        for (const cJSON *el = item->child; el; el = el->next, i++) {
            snprintf(where, sizeof(where), "%s[%zu]", field, i);
            if ((st = get_enum(c, where, el, names, -1, &e)) != TM_OK)
                return st;
            if (mask & TM_COHERENCE_BIT(e))
                return fail(c, TM_EINVAL, where, el, "\"%s\" is listed twice", names[e]);
            mask |= TM_COHERENCE_BIT(e);
        }
    } else {
        return fail(c, TM_EINVAL, field, item,
                    "must be one of \"u_mass\", \"c_uci\", \"c_npmi\", \"c_v\" or an array "
                    "of them");
    }
    if (mask && p->n_top_words < 2)
        return fail(c, TM_EINVAL, field, item, "needs n_top_words >= 2");
    if (mask && p->n_top_words > COHERENCE_MAX_TOP_WORDS)
        return fail(c, TM_ERANGE, field, item, "needs n_top_words <= %d", COHERENCE_MAX_TOP_WORDS);
    p->coherence = mask;
    return TM_OK;
}

static tm_status parse_model(struct pctx *c, struct tm_job_spec *spec, const cJSON *obj)
{
    struct field f[N_MODEL_FIELDS + 1];
    struct tm_model_params *p = &spec->model;
    const cJSON *it;
    tm_status st;
    int e;
    for (size_t i = 0; i < N_MODEL_FIELDS; i++) {
        f[i].name = model_fields[i].name;
        f[i].item = NULL;
    }
    f[N_MODEL_FIELDS].name = NULL;
    f[N_MODEL_FIELDS].item = NULL;
    if (cJSON_IsObject(obj)) {
        /* A friendlier word for the two top-level fields people put here. */
        for (const cJSON *m = obj->child; m; m = m->next)
            if (!strcmp(m->string, "seed") || !strcmp(m->string, "device")) {
                char where[64];
                snprintf(where, sizeof(where), "model.%s", m->string);
                return fail(c, TM_EINVAL, where, m,
                            "unknown field (seed and device are top-level fields)");
            }
    }
    if ((st = collect(c, obj, "model", f, NULL)) != TM_OK)
        return st;
    spec->has_model = 1;

    static const char *const methods[] = {"nmf", "truncated_svd", "full_svd", NULL};
    static const enum tm_method method_of[] = {TM_METHOD_NMF, TM_METHOD_TRUNCATED_SVD,
                                               TM_METHOD_FULL_SVD};
    static const unsigned mask_of[] = {M_NMF, M_TSVD, M_FSVD};
    int mi = 0;
    if ((it = get(f, "method")) && (st = get_enum(c, "model.method", it, methods, -1, &mi)))
        return st;
    p->method = method_of[mi];
    for (const cJSON *m = obj->child; m; m = m->next) {
        for (size_t i = 0; i < N_MODEL_FIELDS; i++) {
            if (!strcmp(m->string, model_fields[i].name) &&
                !(model_fields[i].methods & mask_of[mi])) {
                char where[96];
                snprintf(where, sizeof(where), "model.%s", m->string);
                return fail(c, TM_EINVAL, where, m, "not a parameter of %s", methods[mi]);
            }
        }
    }

    if ((it = get(f, "n_topics")) && (st = parse_n_topics(c, spec, it)))
        return st;
    if ((it = get(f, "warm_start"))) {
        if ((st = get_bool(c, "model.warm_start", it, &spec->sweep_warm_start)) != TM_OK)
            return st;
        if (!spec->n_sweep)
            return fail(c, TM_EINVAL, "model.warm_start", it,
                        "only for a sweep: n_topics a list or a range");
    }
    if ((it = get(f, "n_top_words")) &&
        (st = get_int(c, "model.n_top_words", it, 1, 1000000, &p->n_top_words)))
        return st;
    if ((it = get(f, "dtype"))) {
        static const char *const names[] = {"float32", "float64", NULL};
        if ((st = get_enum(c, "model.dtype", it, names, -1, &e)) != TM_OK)
            return st;
        p->dtype = e == 0 ? TM_DTYPE_FLOAT32 : TM_DTYPE_FLOAT64;
    }

    if ((it = get(f, "coherence")) && (st = parse_coherence(c, p, it)) != TM_OK)
        return st;
    /* Coherence counts the analyzer's unigram tokens (gensim's texts): an
     * n-gram topic word never occurs among them. "vectorizer" is parsed
     * before "model", so its range is known here. */
    if (it && p->coherence && (spec->vectorizer.ngram_min != 1 || spec->vectorizer.ngram_max != 1))
        return fail(c, TM_EINVAL, "model.coherence", it,
                    "needs vectorizer.ngram_range [1, 1]: coherence counts single-word tokens");

    if (p->method == TM_METHOD_TRUNCATED_SVD) {
        if ((it = get(f, "algorithm"))) {
            static const char *const names[] = {"randomized", "lanczos", NULL};
            if ((st = get_enum(c, "model.algorithm", it, names, -1, &e)) != TM_OK)
                return st;
            p->algorithm = e == 0 ? TM_SVD_RANDOMIZED : TM_SVD_LANCZOS;
        }
        if (p->algorithm == TM_SVD_RANDOMIZED) {
            static const char *const lanczos_only[] = {"tol", "max_iter", NULL};
            if ((st = refuse_any(c, obj, lanczos_only, "only used with algorithm \"lanczos\"")) !=
                TM_OK)
                return st;
        } else {
            static const char *const randomized_only[] = {"n_oversamples", "n_iter",
                                                          "power_iteration_normalizer", NULL};
            if ((st = refuse_any(c, obj, randomized_only,
                                 "only used with algorithm \"randomized\"")) != TM_OK)
                return st;
        }
        if ((it = get(f, "n_oversamples")) &&
            (st = get_int(c, "model.n_oversamples", it, 0, INT64_MAX, &p->n_oversamples)))
            return st;
        if ((it = get(f, "n_iter"))) {
            if (cJSON_IsString(it) && !strcmp(it->valuestring, "auto"))
                p->n_iter = -1;
            else if (!is_integer_token(c, it))
                return fail(c, TM_EINVAL, "model.n_iter", it,
                            "must be \"auto\" or an integer >= 0");
            else if ((st = get_int(c, "model.n_iter", it, 0, INT64_MAX, &p->n_iter)))
                return st;
        }
        if ((it = get(f, "power_iteration_normalizer"))) {
            static const char *const names[] = {"auto", "LU", "QR", "none", NULL};
            static const enum tm_power_normalizer pin[] = {TM_PIN_AUTO, TM_PIN_LU, TM_PIN_QR,
                                                           TM_PIN_NONE};
            if ((st = get_enum(c, "model.power_iteration_normalizer", it, names, -1, &e)))
                return st;
            p->power_iteration_normalizer = pin[e];
        }
        if ((it = get(f, "tol")) &&
            (st = get_number(c, "model.tol", it, 0.0, INFINITY, CLOSED, &p->svd_tol)))
            return st;
        if ((it = get(f, "max_iter")) &&
            (st = get_int(c, "model.max_iter", it, 1, INT64_MAX, &p->svd_max_iter)))
            return st;
        return TM_OK;
    }

    if (p->method == TM_METHOD_FULL_SVD) {
        if ((it = get(f, "max_dense_bytes")) &&
            (st = get_int(c, "model.max_dense_bytes", it, 1, INT64_MAX, &p->max_dense_bytes)))
            return st;
        return TM_OK;
    }

    /* nmf */
    if ((it = get(f, "solver"))) {
        static const char *const names[] = {"cd", "mu", "pgd", "hals", "minibatch", NULL};
        static const enum tm_nmf_solver solvers[] = {TM_NMF_CD, TM_NMF_MU, TM_NMF_PGD, TM_NMF_HALS,
                                                     TM_NMF_MINIBATCH};
        if ((st = get_enum(c, "model.solver", it, names, -1, &e)) != TM_OK)
            return st;
        p->solver = solvers[e];
    }
    if (p->solver != TM_NMF_CD && p->solver != TM_NMF_HALS) {
        static const char *const cd_only[] = {"shuffle", NULL};
        if ((st = refuse_any(c, obj, cd_only, "only used with solver \"cd\" or \"hals\"")) != TM_OK)
            return st;
    }
    if (p->solver != TM_NMF_MINIBATCH) { /* MiniBatchNMF's own: NMF has none of them */
        static const char *const minibatch_only[] = {"batch_size",
                                                     "forget_factor",
                                                     "fresh_restarts",
                                                     "fresh_restarts_max_iter",
                                                     "max_no_improvement",
                                                     "transform_max_iter",
                                                     NULL};
        if ((st = refuse_any(c, obj, minibatch_only, "only used with solver \"minibatch\"")) !=
            TM_OK)
            return st;
    }
    if (p->solver != TM_NMF_PGD) {
        static const char *const pgd_only[] = {"learning_rate", "learning_rate_decay", "penalty",
                                               "penalty_mu", NULL};
        if ((st = refuse_any(c, obj, pgd_only, "only used with solver \"pgd\"")) != TM_OK)
            return st;
    } else {
        static const char *const not_pgd[] = {"alpha_W", "alpha_H", "l1_ratio", NULL};
        if ((st = refuse_any(c, obj, not_pgd,
                             "only used with solver \"cd\", \"hals\" or \"mu\"")) != TM_OK)
            return st;
    }
    if ((it = get(f, "init"))) {
        static const char *const names[] = {"nndsvd", "nndsvda", "nndsvdar", "random", NULL};
        static const enum tm_nmf_init inits[] = {TM_NMF_INIT_NNDSVD, TM_NMF_INIT_NNDSVDA,
                                                 TM_NMF_INIT_NNDSVDAR, TM_NMF_INIT_RANDOM,
                                                 TM_NMF_INIT_AUTO};
        if ((st = get_enum(c, "model.init", it, names, 4, &e)) != TM_OK)
            return st;
        p->init = inits[e];
    }
    if ((it = get(f, "beta_loss"))) {
        static const char *const names[] = {"frobenius", "kullback-leibler", NULL};
        if ((st = get_enum(c, "model.beta_loss", it, names, -1, &e)) != TM_OK)
            return st;
        p->beta_loss = e == 0 ? TM_BETA_FROBENIUS : TM_BETA_KL;
        /* scikit-learn: "Invalid beta_loss parameter: solver 'cd' does not
         * handle beta_loss = 1.0. Use solver='mu'." */
        if (p->beta_loss == TM_BETA_KL && p->solver != TM_NMF_MU && p->solver != TM_NMF_MINIBATCH)
            return fail(c, TM_EINVAL, "model.beta_loss", it,
                        "\"kullback-leibler\" needs solver \"mu\" or \"minibatch\" (solver \"%s\" "
                        "handles only "
                        "\"frobenius\")",
                        p->solver == TM_NMF_CD     ? "cd"
                        : p->solver == TM_NMF_HALS ? "hals"
                                                   : "pgd");
    }
    if ((it = get(f, "tol")) &&
        (st = get_number(c, "model.tol", it, 0.0, INFINITY, CLOSED, &p->tol)))
        return st;
    if ((it = get(f, "max_iter")) &&
        (st = get_int(c, "model.max_iter", it, 1, INT64_MAX, &p->max_iter)))
        return st;
    if ((it = get(f, "alpha_W")) &&
        (st = get_number(c, "model.alpha_W", it, 0.0, INFINITY, CLOSED, &p->alpha_W)))
        return st;
    if ((it = get(f, "alpha_H"))) {
        if (cJSON_IsString(it) && !strcmp(it->valuestring, "same"))
            p->alpha_H = -1.0;
        else if (!cJSON_IsNumber(it))
            return fail(c, TM_EINVAL, "model.alpha_H", it, "must be \"same\" or a number >= 0");
        else if ((st = get_number(c, "model.alpha_H", it, 0.0, INFINITY, CLOSED, &p->alpha_H)))
            return st;
    }
    if ((it = get(f, "l1_ratio")) &&
        (st = get_number(c, "model.l1_ratio", it, 0.0, 1.0, CLOSED, &p->l1_ratio)))
        return st;
    if ((it = get(f, "shuffle")) && (st = get_bool(c, "model.shuffle", it, &p->shuffle)))
        return st;
    if ((it = get(f, "batch_size")) &&
        (st = get_int(c, "model.batch_size", it, 1, INT64_MAX, &p->batch_size)))
        return st;
    if ((it = get(f, "forget_factor")) &&
        (st = get_number(c, "model.forget_factor", it, 0.0, 1.0, CLOSED, &p->forget_factor)))
        return st;
    if ((it = get(f, "fresh_restarts")) &&
        (st = get_bool(c, "model.fresh_restarts", it, &p->fresh_restarts)))
        return st;
    if ((it = get(f, "fresh_restarts_max_iter")) &&
        (st = get_int(c, "model.fresh_restarts_max_iter", it, 1, INT64_MAX,
                      &p->fresh_restarts_max_iter)))
        return st;
    /* null: scikit-learn's None (max_no_improvement: off; transform_max_iter: max_iter) */
    if ((it = get(f, "max_no_improvement"))) {
        if (cJSON_IsNull(it))
            p->max_no_improvement = 0;
        else if ((st = get_int(c, "model.max_no_improvement", it, 1, INT64_MAX,
                               &p->max_no_improvement)))
            return st;
    }
    if ((it = get(f, "transform_max_iter"))) {
        if (cJSON_IsNull(it))
            p->transform_max_iter = 0;
        else if ((st = get_int(c, "model.transform_max_iter", it, 1, INT64_MAX,
                               &p->transform_max_iter)))
            return st;
    }
    if ((it = get(f, "learning_rate")) &&
        (st = get_number(c, "model.learning_rate", it, 0.0, INFINITY, OPEN_LOW, &p->learning_rate)))
        return st;
    if ((it = get(f, "learning_rate_decay")) &&
        (st = get_number(c, "model.learning_rate_decay", it, 0.0, INFINITY, CLOSED,
                         &p->learning_rate_decay)))
        return st;
    if ((it = get(f, "penalty")) &&
        (st = get_number(c, "model.penalty", it, 0.0, INFINITY, CLOSED, &p->penalty)))
        return st;
    if ((it = get(f, "penalty_mu")) &&
        (st = get_number(c, "model.penalty_mu", it, 0.0, INFINITY, CLOSED, &p->penalty_mu)))
        return st;
    return TM_OK;
}

/* ---------------------------------------------------------------------- */
/* The whole spec. */

void tm_job_spec_init(struct tm_job_spec *spec)
{
    memset(spec, 0, sizeof(*spec));
    tm_vectorizer_params_init(&spec->vectorizer);
    tm_model_params_init(&spec->model);
    tm_corpus_init(&spec->documents, NULL);
}

void tm_job_spec_release(struct tm_job_spec *spec)
{
    tm_free(spec->stop_words);
    tm_free(spec->corpus_id);
    tm_free(spec->transform_of);
    spec->transform_of = NULL;
    tm_corpus_release(&spec->documents);
    spec->stop_words = NULL;
    spec->vectorizer.stop_words = NULL;
    spec->vectorizer.n_stop_words = 0;
    spec->corpus_id = NULL;
}

static tm_status parse_seed(struct pctx *c, const cJSON *it, uint64_t *out)
{
    const char *want = "must be an integer in [0, 18446744073709551615]";
    if (!is_integer_token(c, it))
        return fail(c, TM_EINVAL, "seed", it, "%s", want);
    size_t len;
    const char *tok = tm_json_number_text(c->doc, it, &len);
    char buf[72];
    if (!tok || len >= sizeof(buf) || tok[0] == '-')
        return fail(c, TM_ERANGE, "seed", it, "%s", want);
    memcpy(buf, tok, len);
    buf[len] = '\0';
    errno = 0;
    unsigned long long v = strtoull(buf, NULL, 10);
    if (errno == ERANGE)
        return fail(c, TM_ERANGE, "seed", it, "%s", want);
    *out = (uint64_t)v;
    return TM_OK;
}

tm_status tm_job_spec_parse(struct tm_job_spec *spec, const char *json, size_t len,
                            const struct tm_corpus_limits *limits, struct tm_api_error *e)
{
    struct tm_json_doc doc;
    struct pctx c = {&doc, e};
    const cJSON *it;
    tm_status st = tm_json_parse(&doc, json, len, e);
    if (st != TM_OK)
        return st;

    struct field f[] = {{"preprocess", NULL}, {"vectorizer", NULL}, {"model", NULL},
                        {"return", NULL},     {"seed", NULL},       {"device", NULL},
                        {"corpus_id", NULL},  {"documents", NULL},  {"transform_of", NULL},
                        {NULL, NULL}};
    if (!cJSON_IsObject(doc.root)) {
        st = fail(&c, TM_EINVAL, NULL, doc.root, "the job spec must be a JSON object");
        goto out;
    }
    if ((st = collect(&c, doc.root, "", f, NULL)) != TM_OK)
        goto out;
    if ((it = get(f, "preprocess")) && (st = parse_preprocess(&c, spec, it)) != TM_OK)
        goto out;
    if ((it = get(f, "vectorizer")) && (st = parse_vectorizer(&c, spec, it)) != TM_OK)
        goto out;
    if ((it = get(f, "model")) && (st = parse_model(&c, spec, it)) != TM_OK)
        goto out;
    if ((it = get(f, "return"))) {
        struct field rf[] = {{"document_topics", NULL}, {NULL, NULL}};
        if ((st = collect(&c, it, "return", rf, NULL)) != TM_OK)
            goto out;
        if (rf[0].item && (st = get_bool(&c, "return.document_topics", rf[0].item,
                                         &spec->return_document_topics)) != TM_OK)
            goto out;
    }
    if ((it = get(f, "seed")) && (st = parse_seed(&c, it, &spec->model.seed)) != TM_OK)
        goto out;
    if ((it = get(f, "device"))) {
        static const char *const names[] = {"auto", "cpu", "gpu", NULL};
        static const enum tm_device devs[] = {TM_DEVICE_AUTO, TM_DEVICE_CPU, TM_DEVICE_GPU};
        int d;
        if ((st = get_enum(&c, "device", it, names, -1, &d)) != TM_OK)
            goto out;
        spec->model.device = devs[d];
    }
    if ((it = get(f, "corpus_id"))) {
        if (!cJSON_IsString(it) || !it->valuestring[0] ||
            (tm_json_flags(&doc, it) & TM_JSON_STR_NUL) ||
            strlen(it->valuestring) > TM_SPEC_MAX_ID_BYTES) {
            st = fail(&c, TM_EINVAL, "corpus_id", it,
                      "must be a non-empty string of at most %d bytes", TM_SPEC_MAX_ID_BYTES);
            goto out;
        }
        spec->corpus_id = tm_strndup(it->valuestring, strlen(it->valuestring));
        if (!spec->corpus_id) {
            st = fail(&c, TM_ENOMEM, "corpus_id", NULL, "out of memory");
            goto out;
        }
    }
    if ((it = get(f, "transform_of"))) {
        if (!cJSON_IsString(it) || !it->valuestring[0] ||
            (tm_json_flags(&doc, it) & TM_JSON_STR_NUL) ||
            strlen(it->valuestring) > TM_SPEC_MAX_ID_BYTES) {
            st = fail(&c, TM_EINVAL, "transform_of", it,
                      "must be a non-empty string of at most %d bytes", TM_SPEC_MAX_ID_BYTES);
            goto out;
        }
        spec->transform_of = tm_strndup(it->valuestring, strlen(it->valuestring));
        if (!spec->transform_of) {
            st = fail(&c, TM_ENOMEM, "transform_of", NULL, "out of memory");
            goto out;
        }
    }
    if ((it = get(f, "documents"))) {
        if (spec->corpus_id) {
            st = fail(&c, TM_EINVAL, "documents", it,
                      "give either corpus_id or documents, not both");
            goto out;
        }
        tm_corpus_release(&spec->documents);
        tm_corpus_init(&spec->documents, limits);
        spec->has_documents = 1;
        st = tm_corpus_add_json_array(&spec->documents, &doc, it, e);
        if (st != TM_OK) {
            tm_api_error_prefix(e, "documents");
            tm_api_error_locate(e, json, len);
            goto out;
        }
    }
out:
    tm_json_release(&doc);
    return st;
}

/* ---------------------------------------------------------------------- */

static void key_df(struct tm_jbuf *b, const char *name, const struct tm_df_bound *d)
{
    tm_jbuf_printf(b, ",\"%s\":", name);
    if (d->is_fraction) {
        tm_jbuf_puts(b, "{\"fraction\":");
        tm_jbuf_double(b, d->value);
        tm_jbuf_puts(b, "}");
    } else {
        tm_jbuf_printf(b, "{\"count\":%" PRId64 "}", (int64_t)d->value);
    }
}

tm_status tm_job_spec_vectorizer_key(const struct tm_job_spec *spec, char **out, size_t *len)
{
    const struct tm_vectorizer_params *v = &spec->vectorizer;
    struct tm_jbuf b;
    tm_status st;
    tm_jbuf_init(&b, 0);
    tm_jbuf_printf(&b, "{\"strip\":%u,\"weighting\":\"%s\",\"lowercase\":%d,\"strip_accents\":%d",
                   v->strip, v->weighting == TM_WEIGHTING_COUNT ? "count" : "tfidf",
                   v->lowercase ? 1 : 0, (int)v->strip_accents);
    tm_jbuf_printf(&b, ",\"english_stop_words\":%d,\"stop_words\":", v->english_stop_words ? 1 : 0);
    if (v->stop_words) {
        tm_jbuf_puts(&b, "[");
        for (size_t i = 0; i < v->n_stop_words; i++) {
            if (i)
                tm_jbuf_puts(&b, ",");
            tm_jbuf_string(&b, v->stop_words[i], strlen(v->stop_words[i]));
        }
        tm_jbuf_puts(&b, "]");
    } else {
        tm_jbuf_puts(&b, "null");
    }
    key_df(&b, "min_df", &v->min_df);
    key_df(&b, "max_df", &v->max_df);
    tm_jbuf_printf(&b,
                   ",\"max_features\":%" PRId64 ",\"binary\":%d,\"use_idf\":%d,\"smooth_idf\":%d,"
                   "\"sublinear_tf\":%d,\"norm\":%d,\"max_terms\":%" PRId64,
                   v->max_features, v->binary ? 1 : 0, v->use_idf ? 1 : 0, v->smooth_idf ? 1 : 0,
                   v->sublinear_tf ? 1 : 0, (int)v->norm, v->max_terms);
    /* Only when not [1, 1], so that unigram keys stay as they were. */
    if (v->ngram_min != 1 || v->ngram_max != 1)
        tm_jbuf_printf(&b, ",\"ngram_range\":[%" PRId64 ",%" PRId64 "]", v->ngram_min,
                       v->ngram_max);
    tm_jbuf_puts(&b, "}");
    *out = tm_jbuf_detach(&b, len, &st);
    return st;
}

const char *tm_method_name(enum tm_method method)
{
    switch (method) {
    case TM_METHOD_NMF:
        return "nmf";
    case TM_METHOD_TRUNCATED_SVD:
        return "truncated_svd";
    case TM_METHOD_FULL_SVD:
        return "full_svd";
    }
    return "unknown";
}

const char *tm_device_name(enum tm_device device)
{
    switch (device) {
    case TM_DEVICE_AUTO:
        return "auto";
    case TM_DEVICE_CPU:
        return "cpu";
    case TM_DEVICE_GPU:
        return "gpu";
    }
    return "unknown";
}
