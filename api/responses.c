/* responses.c - JSON bodies of corpus and job records, lists and errors (see responses.h). */
#include "responses.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"

/* RFC 3339 UTC with milliseconds, or null for 0 (not yet). */
static void put_time(struct tm_jbuf *b, double t)
{
    if (t <= 0 || !isfinite(t)) {
        tm_jbuf_puts(b, "null");
        return;
    }
    time_t s = (time_t)t;
    long ms = (long)((t - (double)s) * 1000.0);
    if (ms > 999)
        ms = 999;
    struct tm tm;
    gmtime_r(&s, &tm);
    char when[40];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    tm_jbuf_printf(b, "\"%s.%03ldZ\"", when, ms);
}

static void put_key(struct tm_jbuf *b, const char *key)
{
    tm_jbuf_string(b, key, strlen(key));
    tm_jbuf_put(b, ":", 1);
}

static void put_str(struct tm_jbuf *b, const char *key, const char *s)
{
    put_key(b, key);
    tm_jbuf_string(b, s, strlen(s));
}

static void corpus_body(struct tm_jbuf *b, const struct tm_corpus_record *c)
{
    tm_jbuf_puts(b, "{");
    put_str(b, "id", c->id);
    tm_jbuf_printf(b, ",\"n_documents\":%lld,\"bytes\":%lld,\"created_at\":",
                   (long long)c->n_documents, (long long)c->bytes);
    put_time(b, c->created_at);
    tm_jbuf_puts(b, "}");
}

static char *finish(struct tm_jbuf *b, size_t *len)
{
    tm_status st;
    size_t n = 0;
    char *out = tm_jbuf_detach(b, &n, &st);
    if (len)
        *len = out ? n : 0;
    return out;
}

char *tm_render_corpus(const struct tm_corpus_record *c, size_t *len)
{
    struct tm_jbuf b;
    tm_jbuf_init(&b, 0);
    corpus_body(&b, c);
    return finish(&b, len);
}

/* The length of what b holds, 0 when it failed. */
static size_t fixed_len(const struct tm_jbuf *b)
{
    return b->status == TM_OK ? b->len : 0;
}

size_t tm_render_corpus_to(const struct tm_corpus_record *c, char *out, size_t size)
{
    struct tm_jbuf b;
    tm_jbuf_init_fixed(&b, out, size);
    corpus_body(&b, c);
    return fixed_len(&b);
}

static void put_next(struct tm_jbuf *b, const char *next)
{
    tm_jbuf_puts(b, "],\"next\":");
    if (next)
        tm_jbuf_string(b, next, strlen(next));
    else
        tm_jbuf_puts(b, "null");
    tm_jbuf_puts(b, "}");
}

char *tm_render_corpus_list(const struct tm_corpus_record *c, int n, const char *next, size_t *len)
{
    struct tm_jbuf b;
    tm_jbuf_init(&b, 0);
    tm_jbuf_puts(&b, "{\"corpora\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            tm_jbuf_puts(&b, ",");
        corpus_body(&b, &c[i]);
    }
    put_next(&b, next);
    return finish(&b, len);
}

static void job_body(struct tm_jbuf *b, const struct tm_job_record *j)
{
    tm_jbuf_puts(b, "{");
    put_str(b, "id", j->id);
    tm_jbuf_puts(b, ",");
    put_str(b, "state", tm_job_state_name(j->state));
    tm_jbuf_puts(b, ",");
    put_str(b, "corpus_id", j->corpus_id);
    tm_jbuf_puts(b, ",");
    put_str(b, "method", j->method);
    tm_jbuf_puts(b, ",\"stage\":");
    if (j->stage[0])
        tm_jbuf_string(b, j->stage, strlen(j->stage));
    else
        tm_jbuf_puts(b, "null");
    double p = isfinite(j->progress) ? j->progress : 0;
    tm_jbuf_printf(b, ",\"progress\":%.4f,\"attempts\":%d,\"created_at\":", p, j->attempts);
    put_time(b, j->created_at);
    tm_jbuf_puts(b, ",\"started_at\":");
    put_time(b, j->started_at);
    tm_jbuf_puts(b, ",\"finished_at\":");
    put_time(b, j->finished_at);
    tm_jbuf_puts(b, ",\"error\":");
    if (j->error_code[0]) {
        tm_jbuf_puts(b, "{");
        put_str(b, "code", j->error_code);
        tm_jbuf_puts(b, ",");
        put_str(b, "message", j->error_message);
        tm_jbuf_puts(b, "}");
    } else {
        tm_jbuf_puts(b, "null");
    }
    tm_jbuf_puts(b, "}");
}

char *tm_render_job(const struct tm_job_record *j, size_t *len)
{
    struct tm_jbuf b;
    tm_jbuf_init(&b, 0);
    job_body(&b, j);
    return finish(&b, len);
}

size_t tm_render_job_to(const struct tm_job_record *j, char *out, size_t size)
{
    struct tm_jbuf b;
    tm_jbuf_init_fixed(&b, out, size);
    job_body(&b, j);
    return fixed_len(&b);
}

char *tm_render_job_list(const struct tm_job_record *j, int n, const char *next, size_t *len)
{
    struct tm_jbuf b;
    tm_jbuf_init(&b, 0);
    tm_jbuf_puts(&b, "{\"jobs\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            tm_jbuf_puts(&b, ",");
        job_body(&b, &j[i]);
    }
    put_next(&b, next);
    return finish(&b, len);
}

char *tm_render_error(const char *code, const char *message, const char *field, size_t *len)
{
    struct tm_jbuf b;
    tm_jbuf_init(&b, 0);
    tm__jbuf_error_open(&b, code, message, field);
    tm_jbuf_puts(&b, "}}");
    return finish(&b, len);
}

/* The bytes of the first max_chars characters of s (UTF-8; a stray byte
 * counts as one, as tm_jbuf_string repairs it to one). */
static size_t chars_prefix(const char *s, size_t len, int64_t max_chars)
{
    size_t i = 0;
    for (int64_t c = 0; i < len && c < max_chars; c++) {
        i++;
        while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
    }
    return i;
}

tm_status tm_render_documents(int64_t n_documents, int64_t offset, int64_t limit, int64_t n,
                              const char *const *ids, const char *const *texts, int64_t max_chars,
                              char **out, size_t *len)
{
    struct tm_jbuf b;
    tm_status st;
    *out = NULL;
    tm_jbuf_init(&b, 0);
    tm_jbuf_printf(&b,
                   "{\"n_documents\":%" PRId64 ",\"offset\":%" PRId64 ",\"limit\":%" PRId64
                   ",\"documents\":[",
                   n_documents, offset, limit);
    for (int64_t i = 0; i < n; i++) {
        tm_jbuf_printf(&b, "%s{\"index\":%" PRId64 ",\"id\":", i ? "," : "", offset + i);
        if (ids && ids[i])
            tm_jbuf_string(&b, ids[i], strlen(ids[i]));
        else
            tm_jbuf_puts(&b, "null");
        const char *t = texts[i] ? texts[i] : "";
        size_t tlen = strlen(t), keep = max_chars > 0 ? chars_prefix(t, tlen, max_chars) : tlen;
        tm_jbuf_puts(&b, ",\"text\":");
        tm_jbuf_string(&b, t, keep);
        tm_jbuf_printf(&b, ",\"truncated\":%s}", keep < tlen ? "true" : "false");
    }
    tm_jbuf_puts(&b, "]}");
    *out = tm_jbuf_detach(&b, len, &st);
    return *out ? TM_OK : st;
}

tm_status tm_render_document_topics(int64_t n_documents, int64_t k, int64_t offset, int64_t limit,
                                    int64_t n, const double *weights, const char *const *ids,
                                    char **out, size_t *len)
{
    struct tm_jbuf b;
    tm_status st;
    *out = NULL;
    tm_jbuf_init(&b, 0);
    tm_jbuf_printf(&b,
                   "{\"n_documents\":%" PRId64 ",\"n_topics\":%" PRId64 ",\"offset\":%" PRId64
                   ",\"limit\":%" PRId64 ",\"documents\":[",
                   n_documents, k, offset, limit);
    for (int64_t i = 0; i < n; i++) {
        tm_jbuf_printf(&b, "%s{\"index\":%" PRId64 ",\"id\":", i ? "," : "", offset + i);
        if (ids && ids[i])
            tm_jbuf_string(&b, ids[i], strlen(ids[i]));
        else
            tm_jbuf_puts(&b, "null");
        tm_jbuf_puts(&b, ",\"weights\":[");
        for (int64_t t = 0; t < k; t++) {
            double w = weights[i * k + t];
            if (!isfinite(w)) {
                tm_jbuf_release(&b);
                return TM_ENUMERIC;
            }
            if (t)
                tm_jbuf_put(&b, ",", 1);
            tm_jbuf_double(&b, w);
        }
        tm_jbuf_puts(&b, "]}");
    }
    tm_jbuf_puts(&b, "]}");
    *out = tm_jbuf_detach(&b, len, &st);
    return *out ? TM_OK : st;
}
