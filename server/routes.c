/*
 * routes.c - the REST API of `topicd serve`: what each route does with its
 * request, and the one route table (at the end) that drives dispatch, 404,
 * 405 with Allow, and the per-route metrics. The contract is
 * api/openapi.yaml. Adding a route is one row and its handlers.
 *
 * HTTP threads only parse, validate, read the store and enqueue: anything
 * that computes (vectorizing, fitting) runs on the workers (jobs.h).
 */
#include "routes.h"

#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/apply.h"
#include "api/auth_body.h"
#include "api/exports.h"
#include "api/model_file.h"
#include "api/plots.h"
#include "api/pyldavis.h"
#include "api/report.h"
#include "api/spec.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/text/utf8.h"
#include "log.h"
#include "metrics.h"
#include "session.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000

static const char JSON[] = "application/json";

/* ---------------------------------------------------------------------- */
/* Matching. */

static int id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static int valid_id(const char *s, size_t n)
{
    if (n == 0 || n >= TM_ID_SIZE)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!id_char(s[i]))
            return 0;
    return 1;
}

/* 1 when path matches pattern, where {id} stands for one valid_id (copied
 * into id); with slash, path may also end in one more "/". */
static int match_pattern(const char *pattern, int slash, const char *path, char id[TM_ID_SIZE])
{
    const char *p = pattern, *u = path;
    while (*p) {
        if (!strncmp(p, "{id}", 4)) {
            size_t n = 0;
            while (id_char(u[n]))
                n++;
            if (!valid_id(u, n))
                return 0;
            memcpy(id, u, n);
            id[n] = 0;
            u += n;
            p += 4;
        } else if (*p++ != *u++) {
            return 0;
        }
    }
    return !*u || (slash && !strcmp(u, "/"));
}

/* The routes' labels for the metrics, from the table at the end. */
static int route_labels(const char *labels[TM_METRICS_MAX_ROUTES]);

/* ---------------------------------------------------------------------- */
/* Helpers. */

/* A query integer in [min, max], def when absent; -1 after answering 400. */
static int query_int(struct tm__req *r, const char *name, long long def, long long min,
                     long long max, long long *out)
{
    const char *v = tm__req_query(r, name);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || !*v || *end || x < min || x > max) {
        char msg[128];
        snprintf(msg, sizeof(msg), "must be an integer in [%lld, %lld]", min, max);
        tm__respond_error(r, 400, "invalid_parameter", msg, name);
        return -1;
    }
    *out = x;
    return 0;
}

/* 1 when r may see a record of tenant: its own, or any for an admin.
 * Another tenant's record is answered 404, as one that does not exist, so
 * that its existence is not revealed. */
static int owns(const struct tm__req *r, const char *tenant)
{
    return r->admin || !strcmp(r->tenant, tenant);
}

/* The tenant whose records r may see: NULL (all) for an admin. */
static const char *visible_tenant(const struct tm__req *r)
{
    return r->admin ? NULL : r->tenant;
}

static void respond_store_error(struct tm__req *r, const char *err)
{
    TM_LOG(TM_LOG_ERROR, "store error", "s:request_id", r->request_id, "s:error", err, NULL);
    r->retry_after = 5;
    tm__respond_error(r, 503, "store_unavailable", err, NULL);
}

static void respond_oom(struct tm__req *r)
{
    r->retry_after = 5;
    tm__respond_error(r, 503, "out_of_memory", "out of memory", NULL);
}

static void respond_body(struct tm__req *r, int status, char *body, size_t len)
{
    if (!body)
        respond_oom(r);
    else
        tm__respond(r, status, JSON, body, len);
}

/* The memory of the answer to a change (TM_RECORD_BODY_SIZE), taken before
 * the change is committed: once it is, the answer must not fail for want
 * of memory, as a 503 would have the client make the change again. NULL
 * after answering 503. */
static char *change_answer(struct tm__req *r)
{
    char *body = tm_malloc(TM_RECORD_BODY_SIZE);
    if (!body)
        respond_oom(r);
    return body;
}

/* Answers with change_answer's body (taken), len bytes of a record
 * rendered into it; 0 cannot happen (the size holds any record). */
static void respond_change(struct tm__req *r, int status, char *body, size_t len)
{
    if (!len) {
        tm_free(body);
        respond_oom(r);
        return;
    }
    tm__respond(r, status, JSON, body, len);
}

/* The media type of the request, lower-cased, without parameters. */
static void media_type(struct tm__req *r, char *out, size_t size, const char **params)
{
    const char *ct = tm__req_header(r, "Content-Type");
    *params = NULL;
    out[0] = 0;
    if (!ct)
        return;
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n >= size)
        n = size - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)((ct[i] >= 'A' && ct[i] <= 'Z') ? ct[i] + 32 : ct[i]);
    out[n] = 0;
    if (ct[strcspn(ct, ";")])
        *params = ct + strcspn(ct, ";") + 1;
}

/* 1 when a charset parameter other than UTF-8 is given. */
static int foreign_charset(const char *params)
{
    if (!params)
        return 0;
    const char *cs = strcasestr(params, "charset=");
    if (!cs)
        return 0;
    cs += 8;
    if (*cs == '"')
        cs++;
    return strncasecmp(cs, "utf-8", 5) && strncasecmp(cs, "utf8", 4) &&
           strncasecmp(cs, "us-ascii", 8);
}

/* 413 at once when Content-Length says the body is over limit. */
static int too_long(struct tm__req *r, int64_t limit)
{
    const char *cl = tm__req_header(r, "Content-Length");
    if (!cl)
        return 0;
    unsigned long long n = strtoull(cl, NULL, 10);
    if (n <= (unsigned long long)limit)
        return 0;
    char msg[160];
    snprintf(msg, sizeof(msg), "the body (%llu bytes) exceeds the limit of %lld bytes", n,
             (long long)limit);
    tm__respond_error(r, 413, "too_large", msg, NULL);
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Quotas (store.h's struct tm_store_quotas). */

/*
 * A tenant's quota reached: 413 (stored bytes) or 429 with Retry-After
 * (queued jobs), {"error":{"code":"quota_exceeded","message":..,"quota":..,
 * "tenant":..,"limit":..,"used":..}}: quota is "stored_bytes" or
 * "queued_jobs", used the tenant's use as the store counts it.
 */
static void respond_quota(struct tm__req *r, int status, const char *quota, const char *tenant,
                          int64_t limit, int64_t used, const char *message)
{
    struct tm_jbuf b;
    tm_jbuf_init(&b, 0);
    tm__jbuf_error_open(&b, "quota_exceeded", message, NULL);
    tm_jbuf_printf(&b, ",\"quota\":\"%s\",\"tenant\":", quota);
    tm_jbuf_string(&b, tenant, strlen(tenant));
    tm_jbuf_printf(&b, ",\"limit\":%lld,\"used\":%lld}}", (long long)limit, (long long)used);
    size_t len;
    tm_status st;
    char *body = tm_jbuf_detach(&b, &len, &st);
    if (status == 429)
        r->retry_after = 5;
    TM_LOG(TM_LOG_INFO, "quota reached", "s:request_id", r->request_id, "s:tenant", tenant,
           "s:quota", quota, "i:limit", (long long)limit, "i:used", (long long)used, NULL);
    respond_body(r, status, body, len);
}

/* The stored-bytes quota refused what tenant would store (message: the
 * store's): 413 with the tenant's use as counted now. */
static void respond_stored_quota(struct tm__req *r, const char *tenant, const char *message)
{
    struct tm_store *st = &r->srv->store;
    struct tm_store_use use;
    char err[TM_ERR_SIZE] = "";
    if (st->m->tenant_use(st->ctx, tenant, &use, err)) {
        respond_store_error(r, err);
        return;
    }
    respond_quota(r, 413, "stored_bytes", tenant, r->srv->cfg->quota_stored, use.stored_bytes,
                  message);
}

/* An upload of a Content-Length known up front that would take tenant
 * past its stored-bytes quota is refused before a byte is read: its
 * documents' text is never larger than the body, and rarely much smaller
 * (the JSON around it), so this refuses little that would fit. 0, or -1
 * after answering. */
static int upload_over_quota(struct tm__req *r, const char *tenant)
{
    int64_t limit = r->srv->cfg->quota_stored;
    const char *cl = tm__req_header(r, "Content-Length");
    if (limit <= 0 || !cl)
        return 0;
    int64_t n = (int64_t)strtoull(cl, NULL, 10);
    struct tm_store *st = &r->srv->store;
    struct tm_store_use use;
    char err[TM_ERR_SIZE] = "";
    if (st->m->tenant_use(st->ctx, tenant, &use, err)) {
        respond_store_error(r, err);
        return -1;
    }
    if (use.stored_bytes + n <= limit)
        return 0;
    char msg[TM_ERR_SIZE + 64];
    snprintf(msg, sizeof(msg),
             "tenant '%s' stores %lld bytes; this upload of %lld bytes would pass its"
             " stored-bytes quota of %lld bytes",
             tenant, (long long)use.stored_bytes, (long long)n, (long long)limit);
    respond_quota(r, 413, "stored_bytes", tenant, limit, use.stored_bytes, msg);
    return -1;
}

/* ---------------------------------------------------------------------- */
/* Health, metrics, contract. */

static void get_healthz(struct tm__req *r)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    tm__respond_static(r, 200, JSON, ok, sizeof(ok) - 1);
}

static void get_readyz(struct tm__req *r)
{
    struct tm_server *s = r->srv;
    if (atomic_load(&s->draining)) {
        r->retry_after = 5;
        tm__respond_error(r, 503, "draining", "the server is shutting down", NULL);
        return;
    }
    char err[TM_ERR_SIZE] = "";
    if (s->store.m->ping(s->store.ctx, err)) {
        respond_store_error(r, err);
        return;
    }
    struct tm_jobs_stats js;
    tm_jobs_stats(s->jobs, &js);
    if (js.workers_alive < js.workers) {
        tm__respond_error(r, 503, "workers_down", "a worker thread has stopped", NULL);
        return;
    }
    static const char ok[] = "{\"status\":\"ready\"}";
    tm__respond_static(r, 200, JSON, ok, sizeof(ok) - 1);
}

static void get_metrics(struct tm__req *r)
{
    struct tm_jobs_stats js;
    struct tm_matrix_cache_stats cs;
    tm_jobs_stats(r->srv->jobs, &js);
    tm_matrix_cache_stats(r->srv->cache, &cs);
    struct tm_metrics_gauges g;
    memset(&g, 0, sizeof(g));
    g.queued = js.queued;
    g.running = js.running;
    g.workers = js.workers;
    g.workers_alive = js.workers_alive;
    g.draining = js.draining;
    g.cache_entries = cs.entries;
    g.cache_bytes = cs.bytes;
    g.cache_hits = cs.hits;
    g.cache_misses = cs.misses;
    if (r->srv->gpu) {
        struct tm_gpu_info gi;
        tm_gpu_manager_info(r->srv->gpu, &gi);
        g.gpu_available = gi.available;
        g.gpu_devices = gi.n_devices < 16 ? gi.n_devices : 16;
        g.gpu_slots = gi.slots_total;
        g.gpu_jobs_running = gi.jobs_running;
        g.gpu_jobs_waiting = gi.jobs_waiting;
        g.gpu_jobs_started = gi.jobs_started;
        g.gpu_jobs_failed = gi.jobs_failed;
        g.gpu_auto_on_cpu = gi.auto_on_cpu;
        g.gpu_auto_fallbacks = gi.auto_fallbacks;
        for (int d = 0; d < g.gpu_devices; d++) {
            g.gpu_total_bytes[d] = gi.devices[d].total_bytes;
            g.gpu_free_bytes[d] = gi.devices[d].free_bytes;
        }
    }
    /* A store that cannot be read leaves the last reading (or none): the
     * rest of the scrape still answers. */
    struct tm_store_usage usage;
    tm_metrics_tenant_usage(&r->srv->store, &usage);
    g.usage = &usage;
    const char *labels[TM_METRICS_MAX_ROUTES];
    int n_routes = route_labels(labels);
    size_t len;
    char *text = tm_metrics_render(&g, labels, n_routes, &len);
    if (!text)
        respond_oom(r);
    else
        tm__respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

/* What this server is and has: workers, store, GPUs (issue 5's /v1/info). */
static void get_info(struct tm__req *r)
{
    struct tm_server *s = r->srv;
    struct tm_jobs_stats js;
    tm_jobs_stats(s->jobs, &js);
    struct tm_jbuf b;
    tm_jbuf_init(&b, 0);
    /* The store's target is redacted (store.h): never a password. */
    tm_jbuf_printf(&b, "{\"service\":\"topicd\",\"api\":\"v1\",\"store\":\"%s\",\"store_target\":",
                   s->store.m->name);
    tm_jbuf_string(&b, s->store.target, strlen(s->store.target));
    tm_jbuf_printf(&b, ",\"replica\":\"%s\"", tm_jobs_replica(s->jobs));
    tm_jbuf_printf(&b,
                   ",\"workers\":%d,\"uptime_s\":%.3f,\"jobs\":{\"queued\":%lld,\"running\":%lld},"
                   "\"gpu\":",
                   js.workers, tm_clock_unix() - s->started_at, (long long)js.queued,
                   (long long)js.running);
    struct tm_gpu_info gi;
    memset(&gi, 0, sizeof(gi));
    if (s->gpu)
        tm_gpu_manager_info(s->gpu, &gi);
    tm_jbuf_printf(&b, "{\"available\":%s,\"backend\":", gi.available ? "true" : "false");
    const char *backend = gi.backend ? gi.backend : "none";
    tm_jbuf_string(&b, backend, strlen(backend));
    if (!gi.available) {
        tm_jbuf_puts(&b, ",\"reason\":");
        tm_jbuf_string(&b, gi.reason, strlen(gi.reason));
    }
    tm_jbuf_printf(&b,
                   ",\"slots\":%d,\"jobs_running\":%d,\"jobs_waiting\":%d,\"jobs_started\":%llu,"
                   "\"jobs_failed\":%llu,\"auto_on_cpu\":%llu,\"auto_fallbacks\":%llu,"
                   "\"devices\":[",
                   gi.slots_total, gi.jobs_running, gi.jobs_waiting,
                   (unsigned long long)gi.jobs_started, (unsigned long long)gi.jobs_failed,
                   (unsigned long long)gi.auto_on_cpu, (unsigned long long)gi.auto_fallbacks);
    for (int d = 0; d < gi.n_devices && d < TM_GPU_MAX_DEVICES; d++) {
        const struct tm_gpu_device_info *dv = &gi.devices[d];
        tm_jbuf_printf(&b, "%s{\"ordinal\":%d,\"name\":", d ? "," : "", dv->ordinal);
        tm_jbuf_string(&b, dv->name, strlen(dv->name));
        tm_jbuf_printf(&b,
                       ",\"compute_capability\":\"%d.%d\",\"total_bytes\":%lld,"
                       "\"free_bytes\":%lld,\"slots\":%d,\"slots_busy\":%d,"
                       "\"promised_bytes\":%lld}",
                       dv->cc_major, dv->cc_minor, (long long)dv->total_bytes,
                       (long long)dv->free_bytes, dv->slots, dv->slots_busy,
                       (long long)dv->promised_bytes);
    }
    tm_jbuf_puts(&b, "]}}");
    size_t len;
    tm_status st;
    char *body = tm_jbuf_detach(&b, &len, &st);
    respond_body(r, 200, body, len);
}

/* The web page (api/ui/): open, as the API's contract is; what it shows
 * comes from the keyed /v1 routes. */
static void get_ui_index(struct tm__req *r)
{
    tm__respond_static(r, 200, "text/html; charset=utf-8", tm_ui_index_html, tm_ui_index_html_len);
}

static void get_ui_js(struct tm__req *r)
{
    tm__respond_static(r, 200, "text/javascript; charset=utf-8", tm_ui_app_js, tm_ui_app_js_len);
}

static void get_ui_css(struct tm__req *r)
{
    tm__respond_static(r, 200, "text/css; charset=utf-8", tm_ui_app_css, tm_ui_app_css_len);
}

static void get_openapi(struct tm__req *r)
{
    tm__respond_static(r, 200, "application/yaml", tm_openapi_yaml, tm_openapi_yaml_len);
}

/* ---------------------------------------------------------------------- */
/* Listings: GET /v1/corpora and /v1/jobs, in pages named by cursors. */

/* The seq of a listed record, the listing cursor: corpus_seq_of, job_seq_of. */
typedef tm_status (*seq_of_fn)(struct tm_store *st, const char *id, int64_t *seq, char *err);

static tm_status corpus_seq_of(struct tm_store *st, const char *id, int64_t *seq, char *err)
{
    struct tm_corpus_record c;
    tm_status s = st->m->corpus_get(st->ctx, id, &c, err);
    if (!s)
        *seq = c.seq;
    return s;
}

static tm_status job_seq_of(struct tm_store *st, const char *id, int64_t *seq, char *err)
{
    struct tm_job_record j;
    tm_status s = st->m->job_get(st->ctx, id, &j, err);
    if (!s)
        *seq = j.seq;
    return s;
}

/* One page: up to limit records listed after the record whose seq is
 * after_seq (0: from the first). */
struct page {
    long long limit;
    int64_t after_seq;
};

/*
 * The page a listing asks for: ?limit= (PAGE_DEFAULT when absent), then
 * ?state= for a listing that has one (state not NULL; -1 when absent), then
 * ?after=, the id of the previous page's last record, read back as its seq
 * with seq_of. A parameter given empty is a bad value, as api/openapi.yaml
 * says. 0, or -1 after answering 400 (a bad value), 404 (a cursor naming no
 * record: deleted since, or never listed) or 503 (the store).
 */
static int page_query(struct tm__req *r, seq_of_fn seq_of, int *state, struct page *p, char *err)
{
    p->after_seq = 0;
    if (query_int(r, "limit", PAGE_DEFAULT, 1, PAGE_MAX, &p->limit))
        return -1;
    if (state) {
        *state = -1;
        const char *sv = tm__req_query(r, "state");
        if (sv && (*state = tm_job_state_parse(sv)) < 0) {
            tm__respond_error(r, 400, "invalid_parameter",
                              "one of queued, running, succeeded, failed, cancelled", "state");
            return -1;
        }
    }
    const char *after = tm__req_query(r, "after");
    if (!after)
        return 0;
    if (!valid_id(after, strlen(after))) {
        tm__respond_error(r, 400, "invalid_parameter", "not an id", "after");
        return -1;
    }
    tm_status s = seq_of(&r->srv->store, after, &p->after_seq, err);
    if (s == TM_ENOTFOUND) {
        tm__respond_error(r, 404, "not_found", "unknown cursor: no record has this id", "after");
        return -1;
    }
    if (s) {
        respond_store_error(r, err);
        return -1;
    }
    return 0;
}

/* The cursor of the next page, given the n records listed and the id of
 * the last (NULL when n is 0): that id when the page is full, as more may
 * follow; NULL when it is not, as the listing ends there. */
static const char *next_cursor(const struct page *p, int n, const char *last_id)
{
    return n == p->limit ? last_id : NULL;
}

/* ---------------------------------------------------------------------- */
/* Corpora. */

static void list_corpora(struct tm__req *r)
{
    struct tm_store *st = &r->srv->store;
    struct page pg;
    char err[TM_ERR_SIZE] = "";
    if (page_query(r, corpus_seq_of, NULL, &pg, err))
        return;
    struct tm_corpus_record *recs = tm_calloc((size_t)pg.limit, sizeof(*recs));
    if (!recs) {
        respond_oom(r);
        return;
    }
    int n = 0;
    if (st->m->corpus_list(st->ctx, visible_tenant(r), pg.after_seq, (int)pg.limit, recs, &n,
                           err)) {
        tm_free(recs);
        respond_store_error(r, err);
        return;
    }
    size_t len;
    char *body =
        tm_render_corpus_list(recs, n, next_cursor(&pg, n, n ? recs[n - 1].id : NULL), &len);
    tm_free(recs);
    respond_body(r, 200, body, len);
}

/* The corpus r->id names, when r may see it: 0, or -1 after answering. */
static int get_corpus_or_respond(struct tm__req *r, struct tm_corpus_record *c)
{
    struct tm_store *st = &r->srv->store;
    char err[TM_ERR_SIZE] = "";
    tm_status s = st->m->corpus_get(st->ctx, r->id, c, err);
    if (!s && !owns(r, c->tenant))
        s = tm_errf(err, TM_ENOTFOUND, "corpus '%s' not found", r->id);
    if (s == TM_ENOTFOUND)
        tm__respond_error(r, 404, "not_found", err, NULL);
    else if (s)
        respond_store_error(r, err);
    return s ? -1 : 0;
}

/* GET /v1/corpora/{id}/documents: a page of the corpus's documents, for a
 * person reading them (the web page's snippets); max_chars cuts each. */
#define DOCS_PAGE_DEFAULT 20
#define DOCS_PAGE_MAX 100

static void get_documents(struct tm__req *r)
{
    struct tm_corpus_record c;
    if (get_corpus_or_respond(r, &c))
        return;
    long long offset, limit, max_chars;
    if (query_int(r, "offset", 0, 0, INT64_MAX / 2, &offset) ||
        query_int(r, "limit", DOCS_PAGE_DEFAULT, 1, DOCS_PAGE_MAX, &limit) ||
        query_int(r, "max_chars", 0, 0, INT32_MAX, &max_chars))
        return;
    int64_t n = offset < c.n_documents ? c.n_documents - offset : 0;
    if (n > limit)
        n = limit;
    char **ids = tm_calloc((size_t)(n ? n : 1), sizeof(char *));
    char **texts = tm_calloc((size_t)(n ? n : 1), sizeof(char *));
    char err[TM_ERR_SIZE] = "";
    struct tm_store *st = &r->srv->store;
    tm_status s = ids && texts ? st->m->corpus_docs_page(st->ctx, c.id, offset, n, ids, texts, err)
                               : TM_ENOMEM;
    char *body = NULL;
    size_t len = 0;
    if (!s)
        s = tm_render_documents(c.n_documents, offset, limit, n, (const char *const *)ids,
                                (const char *const *)texts, max_chars, &body, &len);
    for (int64_t i = 0; ids && texts && i < n; i++) {
        tm_free(ids[i]);
        tm_free(texts[i]);
    }
    tm_free(ids);
    tm_free(texts);
    if (s == TM_ENOTFOUND) /* deleted since it was looked up */
        tm__respond_error(r, 404, "not_found", "no such corpus", NULL);
    else if (s == TM_ENOMEM)
        respond_oom(r);
    else if (s)
        respond_store_error(r, err);
    else
        respond_body(r, 200, body, len);
}

static void get_corpus(struct tm__req *r)
{
    struct tm_corpus_record c;
    if (get_corpus_or_respond(r, &c))
        return;
    size_t len;
    char *body = tm_render_corpus(&c, &len);
    respond_body(r, 200, body, len);
}

static void delete_corpus(struct tm__req *r)
{
    char err[TM_ERR_SIZE] = "";
    struct tm_corpus_record c;
    if (!r->admin && get_corpus_or_respond(r, &c))
        return;
    switch (tm_jobs_delete_corpus(r->srv->jobs, r->id, err)) {
    case TM_JOBS_ACCEPTED:
        tm_matrix_cache_invalidate(r->srv->cache, r->id);
        tm__respond(r, 204, NULL, NULL, 0);
        return;
    case TM_JOBS_NO_CORPUS:
        tm__respond_error(r, 404, "not_found", err, NULL);
        return;
    case TM_JOBS_CORPUS_BUSY:
        tm__respond_error(r, 409, "corpus_in_use", err, NULL);
        return;
    default:
        respond_store_error(r, err);
        return;
    }
}

/* 503 while shutting down: no new work is taken. */
static int refuse_draining(struct tm__req *r)
{
    if (!atomic_load(&r->srv->draining))
        return 0;
    r->retry_after = 5;
    tm__respond_error(r, 503, "draining", "the server is shutting down; retry on another replica",
                      NULL);
    return 1;
}

/* An upload into a new corpus (target NULL) or onto target, stored under
 * tenant (the corpus's: its quota counts it). */
static void begin_upload(struct tm__req *r, const char *target, const char *tenant)
{
    const struct tm_config *cfg = r->srv->cfg;
    if (refuse_draining(r))
        return;
    char mt[96];
    const char *params;
    media_type(r, mt, sizeof(mt), &params);
    enum tm_corpus_format f;
    int multipart = 0;
    if (!strcmp(mt, "application/json"))
        f = TM_CORPUS_JSON;
    else if (!strcmp(mt, "application/x-ndjson") || !strcmp(mt, "application/ndjson") ||
             !strcmp(mt, "application/jsonl") || !strcmp(mt, "application/x-jsonlines") ||
             !strcmp(mt, "application/jsonlines") || !strcmp(mt, "application/json-lines"))
        f = TM_CORPUS_JSONL;
    else if (!strcmp(mt, "text/plain"))
        f = TM_CORPUS_LINES;
    else if (!strcmp(mt, "multipart/form-data")) {
        f = TM_CORPUS_AUTO;
        multipart = 1;
    } else {
        char msg[320];
        snprintf(msg, sizeof(msg),
                 "%s%s%s is not accepted; send application/json, application/x-ndjson, "
                 "text/plain or multipart/form-data",
                 mt[0] ? "Content-Type '" : "a missing Content-Type", mt, mt[0] ? "'" : "");
        tm__respond_error(r, 415, "unsupported_media_type", msg, NULL);
        return;
    }
    if (foreign_charset(params)) {
        tm__respond_error(r, 415, "unsupported_media_type", "only UTF-8 text is accepted", NULL);
        return;
    }
    if (too_long(r, cfg->max_body_bytes) || upload_over_quota(r, tenant))
        return;
    struct tm_upload_limits lim = {cfg->max_body_bytes, cfg->max_json_bytes, cfg->max_doc_bytes};
    struct tm_api_error e;
    tm_api_error_clear(&e);
    if (tm_upload_new(&r->upload, &r->srv->store, target, tenant, f, &lim, &e)) {
        tm__respond_api_error(r, &e);
        return;
    }
    r->body = multipart ? TM__BODY_MULTIPART : TM__BODY_UPLOAD;
}

static void begin_create(struct tm__req *r)
{
    begin_upload(r, NULL, r->tenant);
}

static void begin_append(struct tm__req *r)
{
    struct tm_corpus_record c;
    if (!get_corpus_or_respond(r, &c))
        begin_upload(r, r->id, c.tenant);
}

/* The uploaded corpus's record into c: 0, or -1 after answering the error. */
static int finish_upload(struct tm__req *r, struct tm_corpus_record *c)
{
    struct tm_api_error e;
    tm_api_error_clear(&e);
    if (tm_upload_finish(r->upload, c, &e)) {
        if (tm_upload_over_quota(r->upload))
            respond_stored_quota(r, tm_upload_tenant(r->upload), e.message);
        else
            tm__respond_api_error(r, &e);
        return -1;
    }
    return 0;
}

static void finish_create(struct tm__req *r)
{
    struct tm_corpus_record c;
    char *body = change_answer(r);
    if (!body)
        return;
    if (finish_upload(r, &c)) {
        tm_free(body);
        return;
    }
    size_t len = tm_render_corpus_to(&c, body, TM_RECORD_BODY_SIZE);
    snprintf(r->location, sizeof(r->location), "/v1/corpora/%s", c.id);
    TM_LOG(TM_LOG_INFO, "corpus created", "s:corpus_id", c.id, "i:n_documents",
           (long long)c.n_documents, "i:bytes", (long long)c.bytes, NULL);
    respond_change(r, 201, body, len);
}

static void finish_append(struct tm__req *r)
{
    struct tm_corpus_record c;
    char *body = change_answer(r);
    if (!body)
        return;
    if (finish_upload(r, &c)) {
        tm_free(body);
        return;
    }
    size_t len = tm_render_corpus_to(&c, body, TM_RECORD_BODY_SIZE);
    tm_matrix_cache_invalidate(r->srv->cache, c.id);
    respond_change(r, 200, body, len);
}

/* ---------------------------------------------------------------------- */
/* Jobs. */

static void respond_job(struct tm__req *r, int status, const struct tm_job_record *j)
{
    size_t len;
    char *body = tm_render_job(j, &len);
    respond_body(r, status, body, len);
}

/* A JSON body read whole, up to max_json_bytes; 415 naming what (a job
 * spec, ...) otherwise. */
static void begin_json_body(struct tm__req *r, const char *what)
{
    char mt[96], msg[128];
    const char *params;
    media_type(r, mt, sizeof(mt), &params);
    if (strcmp(mt, "application/json")) {
        snprintf(msg, sizeof(msg), "%s is sent as Content-Type: application/json", what);
        tm__respond_error(r, 415, "unsupported_media_type", msg, NULL);
        return;
    }
    if (too_long(r, r->srv->cfg->max_json_bytes))
        return;
    r->body = TM__BODY_BUFFER;
    r->limit = (size_t)r->srv->cfg->max_json_bytes;
}

static void begin_submit(struct tm__req *r)
{
    if (!refuse_draining(r))
        begin_json_body(r, "a job spec");
}

static int valid_idem_key(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x21 || (unsigned char)k[i] > 0x7e)
            return 0;
    return 1;
}

/*
 * The fairness key of a submission (see jobs.h): with API keys, "t:" and
 * the key's tenant, which the client cannot choose. Without, "id:" and the
 * X-Client-Id header when there is one (a gateway or a web app names its
 * users), else "ip:" and the remote address. The prefixes keep a header
 * from posing as another client's address or a tenant. 0, or -1 after
 * answering 400.
 */
static int client_key(struct tm__req *r, char out[TM_CLIENT_SIZE])
{
    if (r->keyed) {
        snprintf(out, TM_CLIENT_SIZE, "t:%s", r->tenant);
        return 0;
    }
    const char *id = tm__req_header(r, "X-Client-Id");
    if (id) {
        size_t n = strlen(id);
        int ok = n >= 1 && n <= 64;
        for (size_t i = 0; ok && i < n; i++)
            ok = (unsigned char)id[i] >= 0x21 && (unsigned char)id[i] <= 0x7e;
        if (!ok) {
            tm__respond_error(r, 400, "invalid_header",
                              "X-Client-Id must be 1 to 64 visible ASCII characters",
                              "X-Client-Id");
            return -1;
        }
        snprintf(out, TM_CLIENT_SIZE, "id:%s", id);
        return 0;
    }
    char addr[INET6_ADDRSTRLEN];
    tm__req_client_addr(r, addr, sizeof(addr));
    snprintf(out, TM_CLIENT_SIZE, "ip:%s", addr);
    return 0;
}

/*
 * A submission's Idempotency-Key into *key (NULL without one) and its
 * fairness key into client: 0, or -1 after answering 400. scoped: room
 * (SCOPED_SIZE bytes) for the key with its tenant, which *key may point to.
 */
#define SCOPED_SIZE (TM_TENANT_SIZE + 300)
static int submission_keys(struct tm__req *r, const char **key, char client[TM_CLIENT_SIZE],
                           char scoped[SCOPED_SIZE])
{
    *key = tm__req_header(r, "Idempotency-Key");
    if (*key && !valid_idem_key(*key)) {
        tm__respond_error(r, 400, "invalid_header",
                          "Idempotency-Key must be 1 to 255 visible ASCII characters",
                          "Idempotency-Key");
        return -1;
    }
    if (client_key(r, client))
        return -1;
    /* Idempotency keys are the tenant's own: another tenant's same key
     * makes another job, and never answers with this tenant's. */
    if (*key && r->keyed) {
        snprintf(scoped, SCOPED_SIZE, "t/%s/%s", r->tenant, *key);
        *key = scoped;
    }
    return 0;
}

/*
 * Submits spec (len bytes, borrowed) as a job of tenant on corpus_id ("":
 * none) and answers: 202 with the job's record and Location, or why not
 * (429 queue or quota, 503 draining, 422 a reused key, 404 no corpus).
 */
static void submit_and_respond(struct tm__req *r, const char *corpus_id, const char *spec,
                               size_t len, const char *method, const char *key, const char *client,
                               const char *tenant)
{
    struct tm_server *s = r->srv;
    struct tm_job_record job;
    char err[TM_ERR_SIZE] = "";
    char *answer = change_answer(r);
    if (!answer)
        return;
    enum tm_jobs_refusal res =
        tm_jobs_submit(s->jobs, corpus_id, spec, len, method, key, client, tenant, &job, err);
    switch (res) {
    case TM_JOBS_ACCEPTED:
    case TM_JOBS_REPLAYED:
        snprintf(r->location, sizeof(r->location), "/v1/jobs/%s", job.id);
        r->retry_after = 1;
        respond_change(r, 202, answer, tm_render_job_to(&job, answer, TM_RECORD_BODY_SIZE));
        answer = NULL;
        break;
    case TM_JOBS_QUEUE_FULL:
        r->retry_after = 5;
        tm__respond_error(r, 429, "queue_full", err, NULL);
        break;
    case TM_JOBS_QUOTA_QUEUED: {
        /* The per-client cap, which is the tenant's quota with keys on. */
        int limit = s->cfg->max_queue_per_client;
        if (limit <= 0 || limit > s->cfg->max_queue)
            limit = s->cfg->max_queue;
        struct tm_store_use use = {0, limit, 0};
        char uerr[TM_ERR_SIZE];
        if (r->keyed && s->store.m->tenant_use(s->store.ctx, r->tenant, &use, uerr))
            use.queued = limit;
        respond_quota(r, 429, "queued_jobs", r->tenant, limit, use.queued, err);
        break;
    }
    case TM_JOBS_QUOTA_STORED:
        respond_stored_quota(r, r->tenant, err);
        break;
    case TM_JOBS_DRAINING:
        r->retry_after = 5;
        tm__respond_error(r, 503, "draining", err, NULL);
        break;
    case TM_JOBS_KEY_MISMATCH:
        tm__respond_error(r, 422, "idempotency_key_reused", err, "Idempotency-Key");
        break;
    case TM_JOBS_NO_CORPUS:
        tm__respond_error(r, 404, "not_found", "no such corpus", "corpus_id");
        break;
    default:
        respond_store_error(r, err);
        break;
    }
    tm_free(answer);
}

static void finish_submit(struct tm__req *r)
{
    struct tm_server *s = r->srv;
    struct tm_api_error e;
    tm_api_error_clear(&e);
    const char *key;
    char client[TM_CLIENT_SIZE], scoped[SCOPED_SIZE];
    if (submission_keys(r, &key, client, scoped))
        return;
    struct tm_corpus_limits lim;
    tm_corpus_limits_init(&lim);
    lim.max_documents = s->cfg->max_inline_docs;
    lim.max_document_bytes = (size_t)s->cfg->max_doc_bytes;
    struct tm_job_spec spec;
    tm_job_spec_init(&spec);
    const char *body = r->buf ? r->buf : "";
    if (tm_job_spec_parse(&spec, body, r->len, &lim, &e)) {
        tm__respond_api_error(r, &e);
        goto out;
    }
    if (spec.transform_of) {
        tm__respond_error(r, 422, "invalid_spec",
                          "a transform job is made by POST /v1/jobs/{id}:transform, not here",
                          "transform_of");
        goto out;
    }
    if (!spec.has_model) {
        tm__respond_error(r, 422, "invalid_spec", "required: the model to fit", "model");
        goto out;
    }
    if (!!spec.corpus_id == !!spec.has_documents) {
        tm__respond_error(r, 422, "invalid_spec",
                          "give exactly one of corpus_id (an uploaded corpus) or documents",
                          spec.corpus_id ? "documents" : "corpus_id");
        goto out;
    }
    int64_t n_docs = spec.documents.n_docs;
    if (spec.corpus_id) {
        struct tm_corpus_record c;
        char err[TM_ERR_SIZE] = "";
        tm_status st = valid_id(spec.corpus_id, strlen(spec.corpus_id))
                           ? s->store.m->corpus_get(s->store.ctx, spec.corpus_id, &c, err)
                           : TM_ENOTFOUND;
        if (!st && !owns(r, c.tenant))
            st = TM_ENOTFOUND;
        if (st == TM_ENOTFOUND) {
            tm__respond_error(r, 404, "not_found", "no such corpus", "corpus_id");
            goto out;
        }
        if (st) {
            respond_store_error(r, err);
            goto out;
        }
        n_docs = c.n_documents;
    } else {
        for (int64_t i = 0; i < n_docs; i++)
            if (tm_utf8_valid_prefix(spec.documents.docs[i].text, spec.documents.docs[i].len) !=
                spec.documents.docs[i].len) {
                char field[48];
                snprintf(field, sizeof(field), "documents[%lld]", (long long)i);
                tm__respond_error(r, 400, "malformed_input", "text is not valid UTF-8", field);
                goto out;
            }
    }
    if (n_docs == 0) {
        tm__respond_error(r, 422, "empty_corpus", "the corpus has no documents",
                          spec.corpus_id ? "corpus_id" : "documents");
        goto out;
    }
    if (spec.model.device == TM_DEVICE_GPU && s->gpu) {
        struct tm_gpu_info gi;
        tm_gpu_manager_info(s->gpu, &gi);
        if (!gi.available) {
            char msg[TM_ERR_SIZE + 32];
            snprintf(msg, sizeof(msg), "no usable GPU: %s", gi.reason);
            tm__respond_error(r, 422, "no_device", msg, "device");
            goto out;
        }
    }
    if (spec.model.n_topics > n_docs) {
        char msg[160];
        /* A sweep's largest k is model.n_topics (api/spec.h). */
        snprintf(msg, sizeof(msg),
                 "must be <= min(n_documents, n_features); the corpus has %lld "
                 "documents%s",
                 (long long)n_docs, spec.n_sweep ? " (the sweep's largest k is above)" : "");
        tm__respond_error(r, 422, "invalid_spec", msg, "model.n_topics");
        goto out;
    }

    submit_and_respond(r, spec.corpus_id ? spec.corpus_id : "", body, r->len,
                       tm_method_name(spec.model.method), key, client, r->tenant);
out:
    tm_job_spec_release(&spec);
}

static void list_jobs(struct tm__req *r)
{
    struct tm_store *st = &r->srv->store;
    struct page pg;
    int state;
    char err[TM_ERR_SIZE] = "";
    if (page_query(r, job_seq_of, &state, &pg, err))
        return;
    struct tm_job_record *recs = tm_calloc((size_t)pg.limit, sizeof(*recs));
    if (!recs) {
        respond_oom(r);
        return;
    }
    int n = 0;
    if (st->m->job_list(st->ctx, visible_tenant(r), state, pg.after_seq, (int)pg.limit, recs, &n,
                        err)) {
        tm_free(recs);
        respond_store_error(r, err);
        return;
    }
    /* The store has the durable state; memory has the live progress. */
    for (int i = 0; i < n; i++) {
        struct tm_job_record live;
        if (tm_jobs_get(r->srv->jobs, recs[i].id, &live, err) == TM_JOBS_ACCEPTED &&
            live.state == recs[i].state)
            recs[i] = live;
    }
    size_t len;
    char *body = tm_render_job_list(recs, n, next_cursor(&pg, n, n ? recs[n - 1].id : NULL), &len);
    tm_free(recs);
    respond_body(r, 200, body, len);
}

static int get_job_or_respond(struct tm__req *r, struct tm_job_record *j)
{
    char err[TM_ERR_SIZE] = "";
    switch (tm_jobs_get(r->srv->jobs, r->id, j, err)) {
    case TM_JOBS_ACCEPTED:
        if (owns(r, j->tenant))
            return 0;
        tm__respond_error(r, 404, "not_found", "no such job", NULL);
        return -1;
    case TM_JOBS_NOT_FOUND:
        tm__respond_error(r, 404, "not_found", "no such job", NULL);
        return -1;
    default:
        respond_store_error(r, err);
        return -1;
    }
}

static void get_job(struct tm__req *r)
{
    struct tm_job_record j;
    if (get_job_or_respond(r, &j))
        return;
    if (!tm_job_state_final(j.state))
        r->retry_after = 1;
    respond_job(r, 200, &j);
}

/* The answer to a cancel (:cancel or DELETE) or a delete: 200 cancelled, 202
 * cancelling, 204 deleted, 409 finished (cancel only) or changing. */
static void respond_cancel_or_delete(struct tm__req *r, enum tm_jobs_refusal outcome,
                                     const struct tm_job_record *j, const char *err)
{
    switch (outcome) {
    case TM_JOBS_DELETED:
        tm__respond(r, 204, NULL, NULL, 0);
        return;
    case TM_JOBS_CANCELLED:
        respond_job(r, 200, j);
        return;
    case TM_JOBS_CANCELLING:
        r->retry_after = 1;
        respond_job(r, 202, j);
        return;
    case TM_JOBS_FINISHED:
        tm__respond_error(r, 409, "job_finished", err, NULL);
        return;
    case TM_JOBS_CHANGING:
        r->retry_after = 1;
        tm__respond_error(r, 409, "job_changing", err, NULL);
        return;
    case TM_JOBS_NOT_FOUND:
        tm__respond_error(r, 404, "not_found", "no such job", NULL);
        return;
    default:
        respond_store_error(r, err);
        return;
    }
}

static void cancel_job(struct tm__req *r)
{
    struct tm_job_record j;
    char err[TM_ERR_SIZE] = "";
    if (!r->admin && get_job_or_respond(r, &j))
        return;
    enum tm_jobs_refusal outcome = tm_jobs_cancel(r->srv->jobs, r->id, &j, err);
    respond_cancel_or_delete(r, outcome, &j, err);
}

/* DELETE /v1/jobs/{id}: cancels a queued or running job, as :cancel does
 * (200, 202); deletes a finished one (204). */
static void delete_job(struct tm__req *r)
{
    struct tm_job_record j;
    char err[TM_ERR_SIZE] = "";
    if (!r->admin && get_job_or_respond(r, &j))
        return;
    enum tm_jobs_refusal outcome = tm_jobs_delete(r->srv->jobs, r->id, &j, err);
    respond_cancel_or_delete(r, outcome, &j, err);
}

/* 409 unless the job succeeded; 0 when it did. */
static int require_succeeded(struct tm__req *r, const struct tm_job_record *j)
{
    if (j->state == TM_JOB_SUCCEEDED)
        return 0;
    char msg[400];
    if (tm_job_state_final(j->state))
        snprintf(msg, sizeof(msg), "the job %s: %s", tm_job_state_name(j->state), j->error_message);
    else
        snprintf(msg, sizeof(msg), "the job is %s; poll /v1/jobs/%s until it succeeds",
                 tm_job_state_name(j->state), j->id);
    if (!tm_job_state_final(j->state))
        r->retry_after = 1;
    tm__respond_error(r, 409, "job_not_finished", msg, NULL);
    return -1;
}

/* One stored blob of job r->id (its result or its model), read by a store
 * method of job_result's shape. The store has none when the job was deleted
 * since it was looked up, or (a model) finished before topicd kept models:
 * answered missing_status with missing_code. 0 with *bytes owned by the
 * caller (tm_free); -1 when answered. */
typedef tm_status (*job_blob_read)(void *ctx, const char *id, char **bytes, size_t *len, char *err);

static const char NO_MODEL[] =
    "this job has no model: it was deleted, or it finished before topicd kept models";

static int read_job_blob(struct tm__req *r, job_blob_read read, int missing_status,
                         const char *missing_code, const char *missing_message, char **bytes,
                         size_t *len)
{
    char err[TM_ERR_SIZE] = "";
    tm_status s = read(r->srv->store.ctx, r->id, bytes, len, err);
    if (s == TM_ENOTFOUND) {
        tm__respond_error(r, missing_status, missing_code, missing_message, NULL);
        return -1;
    }
    if (s) {
        respond_store_error(r, err);
        return -1;
    }
    return 0;
}

/* The stored result of job r->id into *json (owned, tm_free); answers 404
 * or the store's error itself and returns -1. */
static int read_result(struct tm__req *r, char **json, size_t *len)
{
    return read_job_blob(r, r->srv->store.m->job_result, 404, "not_found", "no such job", json,
                         len);
}

static void get_result(struct tm__req *r)
{
    struct tm_job_record j;
    if (get_job_or_respond(r, &j) || require_succeeded(r, &j))
        return;
    char *json = NULL;
    size_t len = 0;
    if (!read_result(r, &json, &len))
        tm__respond(r, 200, JSON, json, len);
}

/* GET /v1/jobs/{id}/model: the model file kept with a succeeded job
 * (api/model_file.h), an attachment named <job id>.npz. */
static void get_model(struct tm__req *r)
{
    struct tm_job_record j;
    if (get_job_or_respond(r, &j) || require_succeeded(r, &j))
        return;
    char *bytes = NULL;
    size_t len = 0;
    if (read_job_blob(r, r->srv->store.m->job_model, 404, "no_model", NO_MODEL, &bytes, &len))
        return;
    snprintf(r->content_disposition, sizeof(r->content_disposition),
             "attachment; filename=\"%s.npz\"", j.id);
    tm__respond(r, 200, "application/octet-stream", bytes, len);
}

/* A page of job j's document-topic weights as job_doc_topics gives it,
 * with the documents' ids: inline documents' are stored with the weights,
 * an uploaded corpus's are read from it while it exists. A job without
 * weights is an empty page with missing_ok, else answered 404; a store
 * error is answered. -1 when answered; else the caller frees with
 * free_doc_topics. */
struct doc_topics_page {
    double *w;
    char **ids;
    int64_t n, k, total;
};

static int read_doc_topics(struct tm__req *r, const struct tm_job_record *j, int64_t offset,
                           int64_t limit, int missing_ok, struct doc_topics_page *p)
{
    struct tm_store *st = &r->srv->store;
    char err[TM_ERR_SIZE] = "";
    memset(p, 0, sizeof(*p));
    tm_status s = st->m->job_doc_topics(st->ctx, j->id, offset, limit, &p->w, &p->ids, &p->n, &p->k,
                                        &p->total, err);
    if (s == TM_ENOTFOUND && missing_ok) {
        memset(p, 0, sizeof(*p));
        return 0;
    }
    if (s == TM_ENOTFOUND) {
        tm__respond_error(r, 404, "not_found", "this job has no document topics", NULL);
        return -1;
    }
    if (s) {
        respond_store_error(r, err);
        return -1;
    }
    if (!p->ids && p->n && j->corpus_id[0] && (p->ids = tm_calloc((size_t)p->n, sizeof(char *))))
        st->m->corpus_docs_page(st->ctx, j->corpus_id, offset, p->n, p->ids, NULL, err);
    return 0;
}

static void free_doc_topics(struct doc_topics_page *p)
{
    for (int64_t i = 0; p->ids && i < p->n; i++)
        tm_free(p->ids[i]);
    tm_free(p->ids);
    tm_free(p->w);
}

/* GET /v1/jobs/{id}/pyldavis.json: api/pyldavis.h's document, from the
 * job's model and all its document-topic weights. */
static void get_pyldavis(struct tm__req *r)
{
    struct tm_job_record j;
    if (get_job_or_respond(r, &j) || require_succeeded(r, &j))
        return;
    /* A 404 as a plot a job has no data for: the request is valid, the
     * job has no such document (a 422 would say the request was wrong). */
    if (strcmp(j.method, "nmf")) {
        tm__respond_error(r, 404, "not_nmf",
                          "pyLDAvis reads topics as probability distributions: only an NMF job"
                          " has them (an SVD job's components can be negative)",
                          NULL);
        return;
    }
    struct tm_store *st = &r->srv->store;
    char err[TM_ERR_SIZE] = "";
    char *bytes = NULL, *body = NULL;
    size_t len = 0, body_len = 0;
    struct tm_model_file m;
    memset(&m, 0, sizeof(m));
    struct doc_topics_page p = {0};
    if (read_job_blob(r, st->m->job_model, 404, "no_model", NO_MODEL, &bytes, &len))
        goto out;
    tm_status s = tm_model_file_read(bytes, len, &m, err);
    tm_free(bytes);
    bytes = NULL;
    if (s == TM_ENOMEM) {
        respond_oom(r);
        goto out;
    }
    if (s) {
        TM_LOG(TM_LOG_ERROR, "stored model unreadable", "s:job_id", r->id, "s:error", err, NULL);
        tm__respond_error(r, 500, "internal", "the stored model could not be read", NULL);
        goto out;
    }
    if (read_doc_topics(r, &j, 0, m.n_documents, 0, &p))
        goto out;
    struct tm_api_error e;
    s = tm_pyldavis_render(&m, p.w, p.n, p.k, &body, &body_len, &e);
    if (s == TM_ENOMEM)
        respond_oom(r);
    else if (s)
        tm__respond_api_error(r, &e);
    else
        tm__respond(r, 200, JSON, body, body_len);
out:
    free_doc_topics(&p);
    tm_model_file_release(&m);
    tm_free(bytes);
}

static void get_doc_topics(struct tm__req *r)
{
    struct tm_job_record j;
    if (get_job_or_respond(r, &j) || require_succeeded(r, &j))
        return;
    long long offset, limit;
    if (query_int(r, "offset", 0, 0, INT64_MAX / 2, &offset) ||
        query_int(r, "limit", PAGE_DEFAULT, 1, PAGE_MAX, &limit))
        return;
    struct doc_topics_page p;
    if (read_doc_topics(r, &j, offset, limit, 0, &p))
        return;
    char *body = NULL;
    size_t len = 0;
    tm_status s = tm_render_document_topics(p.total, p.k, offset, limit, p.n, p.w,
                                            (const char *const *)p.ids, &body, &len);
    free_doc_topics(&p);
    if (s)
        respond_oom(r);
    else
        tm__respond(r, 200, JSON, body, len);
}

/* POST /v1/jobs/{id}:transform: the job's kept model applied to new
 * documents (api/apply.h). The body is JSON, read whole, as a job spec. */
static void begin_transform(struct tm__req *r)
{
    begin_json_body(r, "a transform");
}

/*
 * The job's model, read back and checked, into *m (released by the caller
 * after 0); -1 after answering: 409 no_model when the job kept none (it
 * finished before models were kept), 409 model_unreadable when this topicd
 * cannot read it (another format version), or the store's error.
 */
static int read_model(struct tm__req *r, struct tm_model_file *m)
{
    char err[TM_ERR_SIZE] = "", msg[TM_ERR_SIZE + 64];
    char *bytes = NULL;
    size_t len = 0;
    if (read_job_blob(r, r->srv->store.m->job_model, 409, "no_model",
                      "the job kept no model to transform with (it finished before this "
                      "topicd kept models); fit it again",
                      &bytes, &len))
        return -1;
    tm_status s = tm_model_file_read(bytes, len, m, err);
    tm_free(bytes);
    if (s == TM_ENOMEM) {
        tm_model_file_release(m);
        respond_oom(r);
        return -1;
    }
    if (s) {
        tm_model_file_release(m);
        snprintf(msg, sizeof(msg), "the job's model cannot be read: %s", err);
        tm__respond_error(r, 409, "model_unreadable", msg, "model");
        return -1;
    }
    return 0;
}

/*
 * A transform past TM_APPLY_MAX_INLINE documents, or of a corpus, becomes a
 * job like a fit (server/worker.c runs it): the spec is the body with
 * "transform_of" (the source job j) added, submitted as POST /v1/jobs
 * submits, so queues, quotas, Idempotency-Key and replicas apply. The job is
 * the source's tenant's (an admin's transform of another tenant's job too).
 */
static void submit_transform(struct tm__req *r, const struct tm_job_record *j,
                             const struct tm_apply_body *body)
{
    struct tm_server *s = r->srv;
    const char *key;
    char client[TM_CLIENT_SIZE], scoped[SCOPED_SIZE];
    if (submission_keys(r, &key, client, scoped))
        return;
    if (body->corpus_id) {
        struct tm_corpus_record c;
        char err[TM_ERR_SIZE] = "";
        tm_status st = valid_id(body->corpus_id, strlen(body->corpus_id))
                           ? s->store.m->corpus_get(s->store.ctx, body->corpus_id, &c, err)
                           : TM_ENOTFOUND;
        if (!st && strcmp(c.tenant, j->tenant))
            st = TM_ENOTFOUND;
        if (st == TM_ENOTFOUND) {
            tm__respond_error(r, 404, "not_found", "no such corpus", "corpus_id");
            return;
        }
        if (st) {
            respond_store_error(r, err);
            return;
        }
    }
    /* The body is one JSON object holding only "documents" or "corpus_id"
     * (tm_apply_body_parse); a job id needs no escaping (valid_id). */
    const char *open = memchr(r->buf, '{', r->len);
    size_t rest = r->len - (size_t)(open + 1 - r->buf);
    char head[TM_ID_SIZE + 32];
    int n = snprintf(head, sizeof(head), "{\"transform_of\":\"%s\",", j->id);
    char *spec = tm_malloc((size_t)n + rest);
    if (!spec) {
        respond_oom(r);
        return;
    }
    memcpy(spec, head, (size_t)n);
    memcpy(spec + n, open + 1, rest);
    submit_and_respond(r, body->corpus_id ? body->corpus_id : "", spec, (size_t)n + rest, j->method,
                       key, client, j->tenant);
    tm_free(spec);
}

/*
 * Up to TM_APPLY_MAX_INLINE inline documents are answered here, on the
 * HTTP thread, against the rule that workers compute: a fixed vocabulary
 * and a solve in k unknowns per document cost far less than reading the
 * model, and the caller waits for the answer as for any read.
 * NEEDSWORK: each call reads and inflates the model; a small cache of
 * parsed models by job would serve repeated calls.
 */
static void finish_transform(struct tm__req *r)
{
    struct tm_job_record j;
    struct tm_api_error e;
    struct tm_apply_body body;
    struct tm_model_file model;
    struct tm_transform_result res;
    int have_model = 0;
    char err[TM_ERR_SIZE] = "";
    memset(&body, 0, sizeof(body));
    memset(&res, 0, sizeof(res));
    if (get_job_or_respond(r, &j) || require_succeeded(r, &j))
        return;
    struct tm_corpus_limits lim;
    tm_corpus_limits_init(&lim);
    lim.max_document_bytes = (size_t)r->srv->cfg->max_doc_bytes;
    /* As many inline documents as a job takes (and at least those answered
     * at once). */
    if (r->srv->cfg->max_inline_docs > TM_APPLY_MAX_INLINE)
        lim.max_documents = r->srv->cfg->max_inline_docs;
    if (tm_apply_body_parse(&body, r->buf ? r->buf : "", r->len, &lim, &e)) {
        tm__respond_api_error(r, &e);
        goto out;
    }
    for (int64_t i = 0; i < body.documents.n_docs; i++)
        if (tm_utf8_valid_prefix(body.documents.docs[i].text, body.documents.docs[i].len) !=
            body.documents.docs[i].len) {
            char field[48];
            snprintf(field, sizeof(field), "documents[%lld]", (long long)i);
            tm__respond_error(r, 400, "malformed_input", "text is not valid UTF-8", field);
            goto out;
        }
    /* Read before a transform job is made too: a source without a usable
     * model is refused now (409), not queued to fail when it runs. */
    if (read_model(r, &model))
        goto out;
    have_model = 1;
    if (body.corpus_id || body.documents.n_docs > TM_APPLY_MAX_INLINE) {
        submit_transform(r, &j, &body);
        goto out;
    }
    tm_status s = tm_apply_run(&model, body.documents.docs, body.documents.n_docs, NULL, NULL, 1,
                               NULL, &res, err);
    if (s == TM_ENOMEM) {
        respond_oom(r);
        goto out;
    }
    if (s) {
        tm_api_errorf(&e, s, "documents", -1, "%s", err);
        tm__respond_api_error(r, &e);
        goto out;
    }
    char *json = NULL;
    size_t len = 0;
    s = tm_apply_render(&res, (const char *const *)body.documents.ids, &json, &len);
    if (s == TM_ENUMERIC) {
        tm__respond_error(r, 500, "numerical_failure", "a topic weight is NaN or Inf", NULL);
        goto out;
    }
    if (s) {
        respond_oom(r);
        goto out;
    }
    tm__respond(r, 200, JSON, json, len);
out:
    tm_transform_result_release(&res);
    if (have_model)
        tm_model_file_release(&model);
    tm_apply_body_release(&body);
}

/* A transform job's result (api/apply.h) has no topics, terms or fit to
 * draw: 404 no_plot_data naming its source, and -1; else 0. */
static int refuse_transform_result(struct tm__req *r, const char *json, size_t len)
{
    if (!tm_apply_is_job_result(json, len))
        return 0;
    tm__respond_error(r, 404, "no_plot_data",
                      "this is a transform job: it has document topics only; the topics and "
                      "the fit are its source job's (the result's transform_of)",
                      NULL);
    return -1;
}

/* Answers what api/plots.h or api/report.h said, or body as content_type. */
static void respond_drawn(struct tm__req *r, const char *what, tm_status s,
                          const struct tm_api_error *e, const char *content_type, char *body,
                          size_t len)
{
    if (s == TM_ENOTFOUND)
        tm__respond_error(r, 404, "no_plot_data", e->message, NULL);
    else if (s == TM_ENOMEM)
        respond_oom(r);
    else if (s) {
        TM_LOG(TM_LOG_ERROR, "stored result unreadable", "s:job_id", r->id, "s:drawing", what,
               "s:error", e->message, NULL);
        tm__respond_error(r, 500, "internal", "the stored result could not be read", NULL);
    } else {
        tm__respond(r, 200, content_type, body, len);
    }
}

/* GET /v1/jobs/{id}/plots/NAME.svg: one row per plot, the name read back
 * from the row's pattern. */
static void get_plot(struct tm__req *r)
{
    struct tm_job_record j;
    if (get_job_or_respond(r, &j) || require_succeeded(r, &j))
        return;
    char name[32];
    const char *slash = strrchr(r->route_label, '/');
    snprintf(name, sizeof(name), "%.*s", (int)strcspn(slash + 1, "."), slash + 1);
    char *json = NULL, *svg = NULL;
    size_t len = 0, svg_len = 0;
    if (read_result(r, &json, &len))
        return;
    struct doc_topics_page p = {0};
    struct tm_plot_doc_topics dt = {0};
    if (strcmp(name, "document_topics") && refuse_transform_result(r, json, len))
        goto out;
    if (!strcmp(name, "document_topics")) {
        if (read_doc_topics(r, &j, 0, TM_PLOT_MAX_DOCUMENTS, 0, &p))
            goto out;
        dt = (struct tm_plot_doc_topics){p.w, (const char *const *)p.ids, p.n, p.k, p.total};
    }
    struct tm_api_error e;
    tm_status s = tm_plot_render(name, json, len, &dt, &svg, &svg_len, &e);
    respond_drawn(r, name, s, &e, "image/svg+xml", svg, svg_len);
out:
    free_doc_topics(&p);
    tm_free(json);
}

/* GET /v1/jobs/{id}/report.html: api/report.h's page. */
static void get_report(struct tm__req *r)
{
    struct tm_job_record j;
    if (get_job_or_respond(r, &j) || require_succeeded(r, &j))
        return;
    char *json = NULL, *spec = NULL, *html = NULL;
    size_t len = 0, spec_len = 0, html_len = 0;
    if (read_result(r, &json, &len))
        return;
    if (refuse_transform_result(r, json, len))
        goto out;
    struct tm_store *st = &r->srv->store;
    char err[TM_ERR_SIZE] = "";
    if (st->m->job_spec(st->ctx, r->id, &spec, &spec_len, err)) {
        respond_store_error(r, err);
        goto out;
    }
    /* A job without document-topic weights still has a report. */
    struct doc_topics_page p;
    if (read_doc_topics(r, &j, 0, TM_PLOT_MAX_DOCUMENTS, 1, &p))
        goto out;
    struct tm_plot_doc_topics dt = {p.w, (const char *const *)p.ids, p.n, p.k, p.total};
    struct tm_api_error e;
    tm_status s =
        tm_report_render(&j, spec, spec_len, json, len, p.n ? &dt : NULL, &html, &html_len, &e);
    respond_drawn(r, "report", s, &e, "text/html; charset=utf-8", html, html_len);
    free_doc_topics(&p);
out:
    tm_free(spec);
    tm_free(json);
}

/* ---------------------------------------------------------------------- */
/* Exports: the CSV files of api/exports.h. */

static const char CSV[] = "text/csv; charset=utf-8";

/* Names the answer a download: <job id>-<name>. */
static void set_download(struct tm__req *r, const char *name)
{
    snprintf(r->content_disposition, sizeof(r->content_disposition),
             "attachment; filename=\"%s-%s\"", r->id, name);
}

/* GET /v1/jobs/{id}/topic-terms.csv: from the stored result, whose size
 * bounds it (n_topics x n_top_words rows). */
static void get_topic_terms_csv(struct tm__req *r)
{
    struct tm_job_record j;
    if (get_job_or_respond(r, &j) || require_succeeded(r, &j))
        return;
    char *json = NULL, *csv = NULL;
    size_t len = 0, csv_len = 0;
    if (read_result(r, &json, &len))
        return;
    if (refuse_transform_result(r, json, len)) {
        tm_free(json);
        return;
    }
    struct tm_api_error e;
    tm_status s = tm_export_topic_terms(json, len, &csv, &csv_len, &e);
    tm_free(json);
    if (!s)
        set_download(r, "topic-terms.csv");
    respond_drawn(r, "topic-terms.csv", s, &e, CSV, csv, csv_len);
}

/* A document-topics.csv being sent: its stream reads the job's weights
 * from the store a chunk (TM_STORE_DT_CHUNK rows) at a time, on the
 * request's thread, as the connection takes the text. */
struct dt_export {
    struct tm_store *store;
    char job[TM_ID_SIZE], corpus[TM_ID_SIZE];
    char request_id[72];
    struct tm_export_dt *csv;
};

/* api/exports.h's page: job_doc_topics, with an uploaded corpus's ids read
 * from it (inline documents' are stored with the weights). A corpus
 * deleted since leaves the documents named by their index, as the JSON
 * pages leave them null. On failure nothing is left owned. */
static tm_status dt_page(void *ctx, int64_t offset, int64_t limit, double **w, char ***ids,
                         int64_t *n, int64_t *k, int64_t *total, char *err)
{
    struct dt_export *x = ctx;
    struct tm_store *st = x->store;
    tm_status s = st->m->job_doc_topics(st->ctx, x->job, offset, limit, w, ids, n, k, total, err);
    if (s || *ids || !*n || !x->corpus[0])
        return s;
    if (!(*ids = tm_calloc((size_t)*n, sizeof(char *))))
        s = tm_errf(err, TM_ENOMEM, "document ids");
    else if ((s = st->m->corpus_docs_page(st->ctx, x->corpus, offset, *n, *ids, NULL, err)) ==
             TM_ENOTFOUND)
        s = TM_OK;
    if (s || !**ids) { /* no ids (or no corpus): by index */
        for (int64_t i = 0; *ids && i < *n; i++)
            tm_free((*ids)[i]);
        tm_free(*ids);
        *ids = NULL;
    }
    if (s) {
        tm_free(*w);
        *w = NULL;
    }
    return s;
}

static tm_status dt_read(void *cls, char *buf, size_t max, size_t *got)
{
    struct dt_export *x = cls;
    char err[TM_ERR_SIZE] = "";
    tm_status s = tm_export_dt_read(x->csv, buf, max, got, err);
    if (s)
        TM_LOG(TM_LOG_ERROR, "document-topics.csv cut short", "s:request_id", x->request_id,
               "s:job_id", x->job, "s:error", err, NULL);
    return s;
}

static void dt_done(void *cls)
{
    struct dt_export *x = cls;
    tm_export_dt_free(x->csv);
    tm_free(x);
}

/* GET /v1/jobs/{id}/document-topics.csv: streamed, so that any number of
 * documents goes out in the memory of one chunk of weights. The first
 * chunk is read before the answer starts, so that a job without weights
 * is a 404 and a store failure a 503; a later failure can only cut the
 * text short (http.h). */
static void get_doc_topics_csv(struct tm__req *r)
{
    struct tm_job_record j;
    if (get_job_or_respond(r, &j) || require_succeeded(r, &j))
        return;
    struct dt_export *x = tm_calloc(1, sizeof(*x));
    if (!x) {
        respond_oom(r);
        return;
    }
    x->store = &r->srv->store;
    snprintf(x->job, sizeof(x->job), "%s", j.id);
    snprintf(x->corpus, sizeof(x->corpus), "%s", j.corpus_id);
    snprintf(x->request_id, sizeof(x->request_id), "%s", r->request_id);
    char err[TM_ERR_SIZE] = "";
    tm_status s = tm_export_dt_new(&x->csv, dt_page, x, TM_STORE_DT_CHUNK, err);
    if (s) {
        tm_free(x);
        if (s == TM_ENOTFOUND)
            tm__respond_error(r, 404, "no_document_topics",
                              "this job stored no document-topic weights to export (a fit "
                              "stores them whatever \"return\" says; \"return\": "
                              "{\"document_topics\": true} adds them to /result as well)",
                              NULL);
        else if (s == TM_ENOMEM)
            respond_oom(r);
        else
            respond_store_error(r, err);
        return;
    }
    set_download(r, "document-topics.csv");
    tm__respond_stream(r, 200, CSV, dt_read, dt_done, x);
}

/* ---------------------------------------------------------------------- */
/* Sessions (the browser's cookie) and signed links (session.h). */

/* authorize() for a KEYED route, from a handler of an OPEN one. */
static int authorize_keyed(struct tm__req *r);

/* The most seconds a signed link lasts, and how long when not asked. */
#define LINK_MAX_S 86400
#define LINK_DEFAULT_S 3600

/* 1 when the request came over HTTPS: --secure-cookies, or the load
 * balancer's X-Forwarded-Proto. The header is trusted though a client can
 * send it: all it can do is mark its own cookie Secure, which its browser
 * then keeps off plain HTTP. */
static int over_tls(struct tm__req *r)
{
    const char *p = tm__req_header(r, "X-Forwarded-Proto");
    return r->srv->cfg->secure_cookies ||
           (p && !strncasecmp(p, "https", 5) && (p[5] == 0 || p[5] == ',' || p[5] == ' '));
}

/* The session cookie for the answer: token, or cleared when NULL. */
static void set_session_cookie(struct tm__req *r, const char *token)
{
    snprintf(r->set_cookie, sizeof(r->set_cookie),
             TM_SESSION_COOKIE "=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s",
             token ? token : "", token ? r->srv->cfg->session_ttl_s : 0,
             over_tls(r) ? "; Secure" : "");
}

/*
 * Cross-site request forgery: a browser sends the cookie with any request
 * to this host, so a request it authenticates that changes something must
 * come from a page of this server's own origin or of --cors-origin's. The
 * cookie is SameSite=Strict, so browsers do not send it from other sites at
 * all; the Origin check covers the sites that share a registrable domain
 * with this one (another subdomain is same-site). Browsers send Origin on
 * every cross-origin request and on every same-origin one but GET and HEAD:
 * a request without one is no cross-origin browser request. 1 when r may
 * go on.
 */
static int origin_trusted(struct tm__req *r)
{
    const char *o = tm__req_header(r, "Origin");
    if (!o || r->cors_origin[0])
        return 1;
    const char *host = tm__req_header(r, "Host"), *p = strstr(o, "://");
    return host && p && !strcasecmp(p + 3, host);
}

static int safe_method(const char *m)
{
    return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS");
}

static void respond_cross_origin(struct tm__req *r)
{
    tm__respond_error(r, 403, "cross_origin_refused",
                      "a request with the session cookie that changes something must come from"
                      " this server's origin or one of --cors-origin's",
                      "Origin");
}

/* Authenticates r by its session cookie: 0, or -1 after answering. */
static int auth_session(struct tm__req *r, const char *token)
{
    char err[TM_ERR_SIZE];
    enum tm_session_verdict v;
    struct tm_principal who;
    int64_t expires;
    if (tm_session_check(r->srv->secret, r->srv->keys, token, strlen(token),
                         (int64_t)tm_clock_unix(), &v, &who, &expires, err)) {
        respond_store_error(r, err);
        return -1;
    }
    if (v != TM_SESSION_OK) {
        static const char *const why[] = {
            [TM_SESSION_MALFORMED] = "the session cookie is not one of this server's",
            [TM_SESSION_FORGED] = "the session cookie is not one of this server's",
            [TM_SESSION_EXPIRED] = "the session has expired",
            [TM_SESSION_REVOKED] = "the API key of this session was revoked",
        };
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "%s: sign in again (POST /v1/session) or send Authorization:"
                 " Bearer KEY",
                 why[v]);
        /* The browser drops what it cannot use. */
        set_session_cookie(r, NULL);
        r->www_authenticate = 1;
        tm__respond_error(r, 401, "unauthorized", msg, NULL);
        return -1;
    }
    if (!safe_method(r->method) && !origin_trusted(r)) {
        respond_cross_origin(r);
        return -1;
    }
    snprintf(r->tenant, sizeof(r->tenant), "%s", who.tenant);
    r->admin = who.admin;
    r->keyed = 1;
    return 0;
}

/* The path of route pattern for id: "/v1/jobs/{id}/result" -> out. */
static void route_path(const char *pattern, const char *id, char *out, size_t size)
{
    const char *at = strstr(pattern, "{id}");
    if (!at)
        snprintf(out, size, "%s", pattern);
    else
        snprintf(out, size, "%.*s%s%s", (int)(at - pattern), pattern, id, at + 4);
}

/* Authenticates r by its signed link (?expires=&sig=) to the job r->id:
 * r sees that path of that job's tenant, as that tenant, and nothing else.
 * A link to a job that is gone is refused as a bad one, so that links
 * tell nothing of which jobs exist. 0, or -1 after answering. */
static int auth_link(struct tm__req *r, const char *pattern)
{
    char err[TM_ERR_SIZE] = "";
    struct tm_job_record j;
    enum tm_session_verdict v = TM_SESSION_FORGED;
    switch (tm_jobs_get(r->srv->jobs, r->id, &j, err)) {
    case TM_JOBS_ACCEPTED: {
        char path[TM_ID_SIZE + 64];
        route_path(pattern, r->id, path, sizeof(path));
        v = tm_session_link_verify(r->srv->secret, j.tenant, path, tm__req_query(r, "expires"),
                                   tm__req_query(r, "sig"), (int64_t)tm_clock_unix());
        break;
    }
    case TM_JOBS_NOT_FOUND:
        break;
    default:
        respond_store_error(r, err);
        return -1;
    }
    if (v == TM_SESSION_EXPIRED) {
        tm__respond_error(r, 403, "link_expired",
                          "this signed link has expired: ask its owner for a new one (POST"
                          " /v1/jobs/{id}/links)",
                          "expires");
        return -1;
    }
    if (v != TM_SESSION_OK) {
        tm__respond_error(r, 403, "link_invalid",
                          "this signed link is not valid: its signature does not match its path"
                          " and expiry, or its job no longer exists",
                          "sig");
        return -1;
    }
    snprintf(r->tenant, sizeof(r->tenant), "%s", j.tenant);
    r->admin = 0;
    r->keyed = 1;
    return 0;
}

/* Signs in with key (len bytes, borrowed): the session cookie and who. */
static void sign_in(struct tm__req *r, const char *key, size_t len)
{
    char err[TM_ERR_SIZE], id[TM_KEY_ID_SIZE], token[TM_SESSION_TOKEN_SIZE];
    int ok = 0;
    struct tm_principal who;
    if (tm_keys_check(r->srv->keys, key, len, &ok, &who, err)) {
        respond_store_error(r, err);
        return;
    }
    char copy[TM_KEY_SIZE];
    if (!ok || len >= sizeof(copy)) {
        r->www_authenticate = 1;
        tm__respond_error(r, 401, "unauthorized",
                          "signing in needs a valid API key: Authorization: Bearer KEY, or"
                          " {\"key\": KEY}",
                          NULL);
        return;
    }
    memcpy(copy, key, len);
    copy[len] = 0;
    int64_t expires = (int64_t)tm_clock_unix() + r->srv->cfg->session_ttl_s;
    int bad = tm_key_parse(copy, id) || tm_session_issue(r->srv->secret, id, expires, token, err);
    OPENSSL_cleanse(copy, sizeof(copy));
    if (bad) {
        tm__respond_error(r, 500, "internal_error", "could not make a session", NULL);
        return;
    }
    set_session_cookie(r, token);
    struct tm_jbuf b;
    tm_jbuf_init(&b, 0);
    tm_jbuf_puts(&b, "{\"tenant\":");
    tm_jbuf_string(&b, who.tenant, strlen(who.tenant));
    tm_jbuf_printf(&b, ",\"admin\":%s,\"expires_at\":%lld}", who.admin ? "true" : "false",
                   (long long)expires);
    size_t blen;
    tm_status st;
    char *body = tm_jbuf_detach(&b, &blen, &st);
    respond_body(r, 200, body, blen);
}

/* The Bearer token of the request into *tok (*len bytes, borrowed); -1
 * when there is none. */
static int bearer(struct tm__req *r, const char **tok, size_t *len);

/* 1 when the request says it has a body. */
static int has_body(struct tm__req *r)
{
    const char *cl = tm__req_header(r, "Content-Length");
    return (cl && strtoull(cl, NULL, 10) > 0) || tm__req_header(r, "Transfer-Encoding");
}

/* 1 when the body holds more than white space. */
static int body_given(const struct tm__req *r)
{
    for (size_t i = 0; r->buf && i < r->len; i++)
        if (r->buf[i] != ' ' && r->buf[i] != '\t' && r->buf[i] != '\r' && r->buf[i] != '\n')
            return 1;
    return 0;
}

/* Signs in with the key of Authorization: Bearer, else body_key (NULL:
 * none, a 401). */
static void sign_in_with(struct tm__req *r, const char *body_key)
{
    const char *tok = "";
    size_t len = 0;
    if (tm__req_header(r, "Authorization")) {
        if (bearer(r, &tok, &len)) {
            tok = "";
            len = 0;
        }
    } else if (body_key) {
        tok = body_key;
        len = strlen(body_key);
    }
    sign_in(r, tok, len);
}

/* POST /v1/session: the key from Authorization: Bearer, else the body. A
 * body, when sent, is read and must be valid either way. */
static void begin_session(struct tm__req *r)
{
    if (!origin_trusted(r)) {
        respond_cross_origin(r);
        return;
    }
    char mt[96];
    const char *params;
    media_type(r, mt, sizeof(mt), &params);
    if (!mt[0] && !has_body(r)) {
        sign_in_with(r, NULL);
        return;
    }
    if (strcmp(mt, "application/json")) {
        tm__respond_error(r, 415, "unsupported_media_type",
                          "send the key as Authorization: Bearer KEY, or as {\"key\": KEY} with"
                          " Content-Type: application/json",
                          NULL);
        return;
    }
    if (too_long(r, 4096))
        return;
    r->body = TM__BODY_BUFFER;
    r->limit = 4096;
}

static void finish_session(struct tm__req *r)
{
    char key[TM_KEY_SIZE + 8];
    struct tm_api_error e;
    tm_api_error_clear(&e);
    int given = body_given(r);
    if (given && tm_session_body_parse(r->buf, r->len, key, sizeof(key), &e)) {
        tm__respond_api_error(r, &e);
        return;
    }
    sign_in_with(r, given ? key : NULL);
    OPENSSL_cleanse(key, sizeof(key));
}

/* GET /v1/session: who the caller is, and how it authenticated. */
static void get_session(struct tm__req *r)
{
    if (authorize_keyed(r))
        return;
    const char *via = "none";
    int64_t expires = 0;
    const char *cookie = tm__req_cookie(r, TM_SESSION_COOKIE);
    if (r->keyed && tm__req_header(r, "Authorization")) {
        via = "key";
    } else if (r->keyed && cookie) {
        char id[TM_KEY_ID_SIZE];
        via = "cookie";
        tm_session_verify(r->srv->secret, cookie, strlen(cookie), (int64_t)tm_clock_unix(), id,
                          &expires);
    }
    struct tm_jbuf b;
    tm_jbuf_init(&b, 0);
    tm_jbuf_puts(&b, "{\"tenant\":");
    tm_jbuf_string(&b, r->tenant, strlen(r->tenant));
    tm_jbuf_printf(&b, ",\"admin\":%s,\"via\":\"%s\",\"expires_at\":", r->admin ? "true" : "false",
                   via);
    if (expires)
        tm_jbuf_printf(&b, "%lld}", (long long)expires);
    else
        tm_jbuf_puts(&b, "null}");
    size_t len;
    tm_status st;
    char *body = tm_jbuf_detach(&b, &len, &st);
    respond_body(r, 200, body, len);
}

/* DELETE /v1/session: signs out (the cookie is cleared; the token itself
 * stays valid until it expires or its key is revoked: it is stateless). */
static void delete_session(struct tm__req *r)
{
    set_session_cookie(r, NULL);
    tm__respond(r, 204, NULL, NULL, 0);
}

/* The most routes with signed links (the route table's .link rows). */
#define LINKED_MAX 16
static int routes_linked(const char *names[], const char *patterns[], int max);

/* The links of the job r->id, valid for expires_in seconds. */
static void make_links(struct tm__req *r, int64_t expires_in)
{
    struct tm_job_record j;
    if (get_job_or_respond(r, &j))
        return;
    const char *names[LINKED_MAX], *patterns[LINKED_MAX];
    int n = routes_linked(names, patterns, LINKED_MAX);
    int64_t expires = (int64_t)tm_clock_unix() + expires_in;
    struct tm_jbuf b;
    tm_jbuf_init(&b, 0);
    tm_jbuf_puts(&b, "{\"job_id\":");
    tm_jbuf_string(&b, j.id, strlen(j.id));
    tm_jbuf_printf(&b, ",\"expires_at\":%lld,\"links\":{", (long long)expires);
    for (int i = 0; i < n; i++) {
        char path[TM_ID_SIZE + 64], sig[TM_SESSION_SIG_SIZE], url[TM_ID_SIZE + 160],
            err[TM_ERR_SIZE];
        route_path(patterns[i], j.id, path, sizeof(path));
        /* The job's tenant, not the caller's: an admin's link is checked
         * as the owner's. */
        if (tm_session_link_sign(r->srv->secret, j.tenant, path, expires, sig, err)) {
            tm_jbuf_release(&b);
            tm__respond_error(r, 500, "internal_error", err, NULL);
            return;
        }
        snprintf(url, sizeof(url), "%s?expires=%lld&sig=%s", path, (long long)expires, sig);
        tm_jbuf_printf(&b, "%s\"%s\":", i ? "," : "", names[i]);
        tm_jbuf_string(&b, url, strlen(url));
    }
    tm_jbuf_puts(&b, "}}");
    size_t len;
    tm_status st;
    char *body = tm_jbuf_detach(&b, &len, &st);
    respond_body(r, 200, body, len);
}

/* POST /v1/jobs/{id}/links: the body is optional ({"expires_in": n}). */
static void begin_links(struct tm__req *r)
{
    char mt[96];
    const char *params;
    media_type(r, mt, sizeof(mt), &params);
    if (!strcmp(mt, "application/json")) {
        if (too_long(r, 4096))
            return;
        r->body = TM__BODY_BUFFER;
        r->limit = 4096;
        return;
    }
    if (has_body(r)) {
        tm__respond_error(r, 415, "unsupported_media_type",
                          "the body, when there is one, is JSON: Content-Type: application/json",
                          NULL);
        return;
    }
    make_links(r, LINK_DEFAULT_S);
}

static void finish_links(struct tm__req *r)
{
    struct tm_api_error e;
    tm_api_error_clear(&e);
    int64_t expires_in;
    if (tm_links_body_parse(r->buf ? r->buf : "", r->len, LINK_DEFAULT_S, 1, LINK_MAX_S,
                            &expires_in, &e)) {
        tm__respond_api_error(r, &e);
        return;
    }
    make_links(r, expires_in);
}

/* ---------------------------------------------------------------------- */
/* The routes. */

typedef void (*handler_fn)(struct tm__req *r);

/*
 * One row per route. pattern: the path, {id} standing for one id; it is
 * also the route's "route" label in the metrics and the log, which
 * dashboards select on. slash: a trailing "/" matches too. get answers GET
 * and HEAD, del DELETE; post has the headers and answers, or takes a body
 * (r->body) that post_body answers once it is in. A method without a
 * handler is answered 405, Allow naming those with one. The metrics list the
 * routes in this order.
 */
/* Who may call a route. KEYED, the default, so that a new route needs a
 * key unless its row says otherwise: an API key when keys are on (auth). */
enum access { KEYED, OPEN, METRICS /* KEYED with --metrics-auth, else OPEN */ };

/* link: the route's name in the signed links of a job (POST
 * /v1/jobs/{id}/links), for a read-only route whose {id} is a job's; a
 * GET of it with a good ?expires=&sig= needs no key. */
struct route {
    const char *pattern;
    int slash;
    handler_fn get, post, post_body, del;
    enum access access;
    const char *link;
};

static const struct route routes[] = {
    {"/healthz", .get = get_healthz, .access = OPEN},
    {"/readyz", .get = get_readyz, .access = OPEN},
    {"/metrics", .get = get_metrics, .access = METRICS},
    /* The public contract. */
    {"/v1/openapi.yaml", .get = get_openapi, .access = OPEN},
    {"/v1/corpora", .slash = 1, .get = list_corpora, .post = begin_create,
     .post_body = finish_create},
    {"/v1/corpora/{id}", .slash = 1, .get = get_corpus, .del = delete_corpus},
    {"/v1/corpora/{id}/documents", .get = get_documents, .post = begin_append,
     .post_body = finish_append},
    {"/v1/jobs", .slash = 1, .get = list_jobs, .post = begin_submit, .post_body = finish_submit},
    {"/v1/jobs/{id}", .slash = 1, .get = get_job, .del = delete_job, .link = "job"},
    {"/v1/jobs/{id}/result", .get = get_result, .link = "result"},
    {"/v1/jobs/{id}/document-topics", .get = get_doc_topics, .link = "document_topics"},
    {"/v1/jobs/{id}/model", .get = get_model, .link = "model"},
    {"/v1/jobs/{id}/pyldavis.json", .get = get_pyldavis, .link = "pyldavis"},
    /* api/plots.h's plots, one row each (get_plot reads the name back). */
    {"/v1/jobs/{id}/plots/singular_values.svg", .get = get_plot, .link = "plot_singular_values"},
    {"/v1/jobs/{id}/plots/error_trace.svg", .get = get_plot, .link = "plot_error_trace"},
    {"/v1/jobs/{id}/plots/topics.svg", .get = get_plot, .link = "plot_topics"},
    {"/v1/jobs/{id}/plots/document_topics.svg", .get = get_plot, .link = "plot_document_topics"},
    {"/v1/jobs/{id}/plots/sweep.svg", .get = get_plot, .link = "plot_sweep"},
    {"/v1/jobs/{id}/report.html", .get = get_report, .link = "report"},
    /* api/exports.h's CSV files. */
    {"/v1/jobs/{id}/topic-terms.csv", .get = get_topic_terms_csv, .link = "topic_terms_csv"},
    {"/v1/jobs/{id}/document-topics.csv", .get = get_doc_topics_csv, .link = "document_topics_csv"},
    {"/v1/jobs/{id}:cancel", .post = cancel_job},
    {"/v1/jobs/{id}:transform", .post = begin_transform, .post_body = finish_transform},
    {"/v1/info", .slash = 1, .get = get_info},
    /* Sessions check the key themselves: signing in takes it from the
     * body too, signing out needs none. */
    {"/v1/session", .get = get_session, .post = begin_session, .post_body = finish_session,
     .del = delete_session, .access = OPEN},
    {"/v1/jobs/{id}/links", .post = begin_links, .post_body = finish_links},
    /* The web page. */
    {"/", .get = get_ui_index, .access = OPEN},
    {"/ui/app.js", .get = get_ui_js, .access = OPEN},
    {"/ui/app.css", .get = get_ui_css, .access = OPEN},
};
#define N_ROUTES ((int)(sizeof(routes) / sizeof(routes[0])))
_Static_assert(sizeof(routes) / sizeof(routes[0]) <= TM_METRICS_MAX_ROUTES,
               "metrics.h: raise TM_METRICS_MAX_ROUTES");

static int route_labels(const char *labels[TM_METRICS_MAX_ROUTES])
{
    for (int i = 0; i < N_ROUTES; i++)
        labels[i] = routes[i].pattern;
    return N_ROUTES;
}

/* The routes with signed links: their names and patterns, up to max. */
static int routes_linked(const char *names[], const char *patterns[], int max)
{
    int n = 0;
    for (int i = 0; i < N_ROUTES && n < max; i++)
        if (routes[i].link) {
            names[n] = routes[i].link;
            patterns[n++] = routes[i].pattern;
        }
    return n;
}

/* The route path names, its {id} into id; NULL when none does. */
static const struct route *route_of(const char *path, char id[TM_ID_SIZE])
{
    for (int i = 0; i < N_ROUTES; i++)
        if (match_pattern(routes[i].pattern, routes[i].slash, path, id))
            return &routes[i];
    return NULL;
}

/* The route's handler of method; NULL when it has none (405). */
static handler_fn handler_of(const struct route *rt, const char *method)
{
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
        return rt->get;
    if (!strcmp(method, "POST"))
        return rt->post;
    if (!strcmp(method, "DELETE"))
        return rt->del;
    return NULL;
}

/* The route's methods as Allow lists them: "GET, HEAD, POST". */
static void allow_of(const struct route *rt, char *out, size_t size)
{
    const char *methods[] = {rt->get ? "GET, HEAD" : NULL, rt->post ? "POST" : NULL,
                             rt->del ? "DELETE" : NULL};
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (methods[i] && n < size)
            n += (size_t)snprintf(out + n, size - n, "%s%s", n ? ", " : "", methods[i]);
}

static int bearer(struct tm__req *r, const char **tok, size_t *len)
{
    const char *h = tm__req_header(r, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7))
        return -1;
    h += 7;
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    *tok = h;
    *len = n;
    return n ? 0 : -1;
}

/*
 * Decides who r is, before its handler runs (and before a body is read).
 * Keys are required on KEYED routes (and METRICS with --metrics-auth)
 * with --auth on, and with --auth auto once the store holds a key (keys.h:
 * known within TM_KEYS_TTL_S on every replica). Without them the caller is
 * the "default" tenant with an admin's view, as before keys existed.
 * Where a key is required, the Authorization header decides when there is
 * one; without, a signed link does on a GET of a route that has them (rt
 * not NULL), else the session cookie (session.h).
 * 0: go on; -1 after answering 401, 403 (a bad link, a cross-origin
 * request with the cookie) or 503 (the store cannot say).
 */
static int authorize(struct tm__req *r, enum access access, const struct route *rt)
{
    const struct tm_config *cfg = r->srv->cfg;
    snprintf(r->tenant, sizeof(r->tenant), "default");
    r->admin = 1;
    r->keyed = 0;
    int open = access == OPEN || (access == METRICS && !cfg->metrics_auth);
    if (open || !strcmp(cfg->auth, "off") || !r->srv->keys)
        return 0;
    char err[TM_ERR_SIZE];
    if (strcmp(cfg->auth, "on")) {
        int any = 0;
        if (tm_keys_any(r->srv->keys, &any, err)) {
            respond_store_error(r, err);
            return -1;
        }
        if (!any)
            return 0;
    }
    const char *authz = tm__req_header(r, "Authorization");
    if (!authz && rt && rt->link && (!strcmp(r->method, "GET") || !strcmp(r->method, "HEAD")) &&
        tm__req_query(r, "sig"))
        return auth_link(r, rt->pattern);
    const char *cookie = authz ? NULL : tm__req_cookie(r, TM_SESSION_COOKIE);
    if (cookie)
        return auth_session(r, cookie);
    const char *tok;
    size_t len;
    int ok = 0;
    struct tm_principal who;
    if (bearer(r, &tok, &len) == 0 && tm_keys_check(r->srv->keys, tok, len, &ok, &who, err)) {
        respond_store_error(r, err);
        return -1;
    }
    if (!ok) {
        /* The key is never logged nor echoed. */
        r->www_authenticate = 1;
        tm__respond_error(r, 401, "unauthorized",
                          "this route needs an API key: Authorization: Bearer KEY", NULL);
        return -1;
    }
    snprintf(r->tenant, sizeof(r->tenant), "%s", who.tenant);
    r->admin = who.admin;
    r->keyed = 1;
    return 0;
}

static int authorize_keyed(struct tm__req *r)
{
    return authorize(r, KEYED, NULL);
}

/* CORS: with --cors-origin set, every answer varies by Origin, and a
 * listed Origin is echoed (http.c adds the headers). */
static void cors(struct tm__req *r)
{
    const struct tm_config *cfg = r->srv->cfg;
    if (!cfg->cors_origin[0])
        return;
    r->cors = 1;
    const char *o = tm__req_header(r, "Origin");
    if (o && strlen(o) < sizeof(r->cors_origin) && tm_config_cors_allows(cfg, o, strlen(o)))
        snprintf(r->cors_origin, sizeof(r->cors_origin), "%s", o);
}

static void routes_begin(struct tm__req *r, const char *url)
{
    cors(r);
    const struct route *rt = route_of(url, r->id);
    if (!rt) {
        char msg[300];
        snprintf(msg, sizeof(msg), "no route for %.256s", r->path);
        tm__respond_error(r, 404, "not_found", msg, NULL);
        return;
    }
    r->route = (int)(rt - routes);
    r->route_label = rt->pattern;
    /* A CORS preflight from a listed origin: answered with no key, as
     * browsers send none with it. Any other OPTIONS (no Origin, another
     * origin, CORS off) is served as any method without a handler: a key
     * where one is required, then 405 with Allow. */
    if (!strcmp(r->method, "OPTIONS") && r->cors_origin[0] &&
        tm__req_header(r, "Access-Control-Request-Method")) {
        allow_of(rt, r->preflight, sizeof(r->preflight));
        tm__respond(r, 204, NULL, NULL, 0);
        return;
    }
    if (authorize(r, rt->access, rt))
        return;
    handler_fn handler = handler_of(rt, r->method);
    if (!handler) {
        allow_of(rt, r->allow, sizeof(r->allow));
        char msg[160];
        snprintf(msg, sizeof(msg), "%.20s is not allowed here; allowed: %s", r->method, r->allow);
        tm__respond_error(r, 405, "method_not_allowed", msg, NULL);
        return;
    }
    handler(r);
}

static void routes_body_done(struct tm__req *r)
{
    if (r->route >= 0 && r->route < N_ROUTES && routes[r->route].post_body)
        routes[r->route].post_body(r);
}

const struct tm_http_router tm_routes = {routes_begin, routes_body_done};
