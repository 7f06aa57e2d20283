/*
 * test_http_torture.c - allocation-failure torture over the HTTP request
 * paths (issue 16): for each request of a representative set, topicd's own
 * allocations made while serving it (through core/alloc.h) fail one at a
 * time, n = 1, 2, ... until the request makes fewer than n allocations.
 * Every failed try must answer success or an error with a JSON body (5xx
 * for out of memory, never a 4xx that blames the client), leak nothing
 * (tm_testalloc_outstanding back to where it was), and leave the store as
 * it was (no half-made corpus or job).
 *
 * The server runs in this process (serve.c's start-up, less signals and
 * the GPU manager) so that the counting allocator of tests/testalloc.h sees
 * its allocations. It has one HTTP thread, marked by a router that wraps
 * tm_routes; only that thread's allocations are numbered and failed
 * (testalloc's marked_only): the scope is the request paths, and
 * the worker that fits a submitted job would otherwise make the numbering
 * depend on timing. Blocks are counted on every thread, so a block taken by
 * the request and freed by a worker balances.
 */
#include <sqlite3.h>

#include "api/json.h"
#include "http_helpers.h"
#include "server/http.h"
#include "server/log.h"
#include "server/routes.h"
#include "server/server.h"
#include "server/worker.h"
#include "testalloc.h"

struct torture {
    struct tm_config cfg;
    struct tm_server srv;
    struct tm_worker_ctx wctx;
    struct tm_http *http;
    struct th_server s; /* port and data dir, for http_helpers.h */
    sqlite3 *db;        /* a reader of the store, for snapshots */
    char corpus[40];    /* a ready corpus */
    char job[40];       /* a succeeded NMF job on it */
    char victim[40];    /* what the delete requests delete, made afresh */
    long failed;        /* allocations failed in all */
    long requests;      /* requests tried */
};

static void mark_begin(struct tm__req *r, const char *url)
{
    tm_testalloc_mark_thread();
    tm_routes.begin(r, url);
}

static void mark_body_done(struct tm__req *r)
{
    tm_routes.body_done(r);
}

static const struct tm_http_router marking_router = {mark_begin, mark_body_done};

static int torture_start(struct torture *T)
{
    char err[TM_ERR_SIZE] = "";
    memset(T, 0, sizeof(*T));
    if (th_tmpdir(&T->s))
        return -1;
    pthread_once(&th_curl_once, th_curl_init);
    tm_config_init(&T->cfg);
    T->cfg.port = 0;
    snprintf(T->cfg.bind, sizeof(T->cfg.bind), "127.0.0.1");
    snprintf(T->cfg.data_dir, sizeof(T->cfg.data_dir), "%s", T->s.dir);
    T->cfg.http_threads = 1;
    T->cfg.workers = 1;
    T->cfg.blas_threads = 1;
    tm_api_init();
    /* Installed before any thread of the server starts (alloc.h). */
    tm_testalloc_fail_at(0);
    tm_testalloc_marked_only(1);
    T->srv.cfg = &T->cfg;
    if (tm_store_open(&T->srv.store, NULL, T->s.dir, err) ||
        tm_matrix_cache_new(&T->srv.cache, T->cfg.cache_bytes)) {
        fprintf(stderr, "torture: %s\n", err);
        return -1;
    }
    T->wctx.store = &T->srv.store;
    T->wctx.cache = T->srv.cache;
    T->wctx.vectorize_threads = 1;
    /* No idle polls nor lease renewals while requests are tortured: the
     * workers wake on submissions only. */
    struct tm_jobs_config jc = {.workers = 1,
                                .max_queue = 1024,
                                .max_attempts = 3,
                                .work = tm_worker_run,
                                .work_ctx = &T->wctx,
                                .lease_s = 3600,
                                .poll_s = 3600};
    if (tm_jobs_new(&T->srv.jobs, &T->srv.store, &jc, err) ||
        tm_http_start(&T->http, &T->srv, &marking_router, err)) {
        fprintf(stderr, "torture: %s\n", err);
        return -1;
    }
    T->s.port = tm_http_port(T->http);
    char path[1100];
    snprintf(path, sizeof(path), "%s/topicd.db", T->s.dir);
    if (sqlite3_open_v2(path, &T->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return -1;
    sqlite3_busy_timeout(T->db, 10000);
    return 0;
}

static void torture_stop(struct torture *T)
{
    tm_http_stop(T->http);
    tm_jobs_free(T->srv.jobs);
    tm_matrix_cache_free(T->srv.cache);
    if (T->srv.store.m)
        tm_store_close(&T->srv.store);
    sqlite3_close(T->db);
    tm_testalloc_marked_only(0);
    tm_testalloc_reset();
    th_cleanup(&T->s);
}

/* What a client could see of the store, and what it could not (documents
 * and weights of half-made records), as one string. */
static void snapshot(struct torture *T, char *out, size_t size)
{
    static const char sql[] =
        "SELECT (SELECT count(*) FROM documents) || '/' || (SELECT count(*) FROM doc_topics)"
        " || '/' || coalesce((SELECT group_concat(id || ':' || ready || ':' || hidden || ':'"
        " || n_documents, ',') FROM corpora), '') || '/' || coalesce((SELECT"
        " group_concat(id || ':' || state, ',') FROM jobs), '')";
    sqlite3_stmt *st = NULL;
    snprintf(out, size, "(unreadable)");
    if (sqlite3_prepare_v2(T->db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

/*
 * The outstanding blocks once the server is idle: the previous request's
 * completion callback frees its blocks just after the answer went out, so
 * the count is read until it holds still.
 */
static long settled_outstanding(void)
{
    long v = tm_testalloc_outstanding();
    for (int still = 0; still < 3;) {
        th_sleep_ms(1);
        long w = tm_testalloc_outstanding();
        still = w == v ? still + 1 : 0;
        v = w;
    }
    return v;
}

/* Waits for the outstanding count to come back to base or below (a leak
 * never does; below: a block of another thread's, such as the job queue's
 * periodic rescue pass, was held when base was read); the last count. */
static long back_to(long base)
{
    double end = th_now() + 2.0;
    long v;
    while ((v = tm_testalloc_outstanding()) > base && th_now() < end)
        th_sleep_ms(1);
    return v;
}

/* Waits until no job is queued or running, so that no worker allocates. */
static void wait_jobs_idle(struct torture *T)
{
    double end = th_now() + 60;
    struct tm_jobs_stats js;
    do {
        tm_jobs_stats(T->srv.jobs, &js);
        if (!js.queued && !js.running)
            return;
        th_sleep_ms(5);
    } while (th_now() < end);
}

struct treq {
    const char *name;
    const char *method;
    const char *path; /* "%s": T->corpus, then T->job (or T->victim with victim) */
    const char *ctype;
    const char *body;
    long want; /* the answer when no allocation fails */
    /* 'c': the path names T->victim, a corpus made afresh for each try;
     * 'j': a finished job made afresh. */
    char victim;
};

static const char SMALL_JSON[] = "{\"documents\":[\"the cat sat on the mat\","
                                 "{\"id\":\"d2\",\"text\":\"dogs and cats are pets\"},"
                                 "\"stocks and bonds fell\",\"the market rallied today\"]}";
static const char SMALL_JSONL[] = "{\"id\":\"a\",\"text\":\"rockets and planets\"}\n"
                                  "{\"text\":\"the moon orbit\"}\n";

/* Makes T->victim: a corpus ('c') or a finished job ('j'). */
static int make_victim(struct torture *T, char kind)
{
    if (T->victim[0])
        return 0;
    char state[32];
    if (kind == 'c')
        return th_upload(&T->s, "application/x-ndjson", SMALL_JSONL, strlen(SMALL_JSONL),
                         T->victim) == 201
                   ? 0
                   : -1;
    if (th_submit_model(&T->s, T->corpus, "{\"method\":\"nmf\",\"n_topics\":2}", NULL, T->victim) !=
        202)
        return -1;
    th_wait_job(&T->s, T->victim, 60, state);
    wait_jobs_idle(T);
    return strcmp(state, "succeeded") ? -1 : 0;
}

/* One request, its path made from q. */
static long send_req(struct torture *T, const struct treq *q, struct th_resp *r)
{
    char path[256];
    const char *a = q->victim ? T->victim : T->corpus;
    const char *b = q->victim ? T->victim : T->job;
    if (strstr(q->path, "%s") && strstr(strstr(q->path, "%s") + 2, "%s"))
        snprintf(path, sizeof(path), q->path, a, b);
    else if (strstr(q->path, "{job}"))
        snprintf(path, sizeof(path), "/v1/jobs/%s%s", b, q->path + strlen("{job}"));
    else
        snprintf(path, sizeof(path), q->path, a);
    return th_request_h(&T->s, q->method, path, q->ctype, q->body, q->body ? strlen(q->body) : 0,
                        NULL, r);
}

/* After a success: a submitted job is left to finish, a deleted victim
 * is made again on the next try. */
static void after_success(struct torture *T, const struct treq *q, const struct th_resp *r)
{
    if (q->victim)
        T->victim[0] = 0;
    if (!strcmp(q->method, "POST") && !strcmp(q->path, "/v1/jobs")) {
        char id[40] = "", state[32];
        cJSON *j = th_json(r);
        const char *v = j ? th_str(j, "id") : NULL;
        snprintf(id, sizeof(id), "%s", v ? v : "");
        cJSON_Delete(j);
        if (id[0])
            th_wait_job(&T->s, id, 60, state);
    }
    wait_jobs_idle(T);
}

/* 1 when r is an error answer with a JSON body naming a code and a message. */
static int json_error(const struct th_resp *r)
{
    cJSON *j = th_json(r);
    int ok = j && th_str(j, "error.code") && th_str(j, "error.message");
    cJSON_Delete(j);
    return ok;
}

/* Fails each allocation of q's request once; see the file's comment. */
static void torture_req(struct tm_test_ctx *t, struct torture *T, const struct treq *q)
{
    for (long n = 1;; n++) {
        if (q->victim && make_victim(T, q->victim)) {
            tm_test_fail(t, __FILE__, __LINE__, "%s: cannot make what it deletes", q->name);
            return;
        }
        char before[8192], after[8192];
        snapshot(T, before, sizeof(before));
        long base = settled_outstanding();
        struct th_resp r;
        tm_testalloc_arm(n);
        long st = send_req(T, q, &r);
        long calls = tm_testalloc_calls();
        tm_testalloc_arm(0);
        T->requests++;
        if (calls < n) {
            /* The nth allocation was never made: the request ran clean. */
            if (st != q->want)
                tm_test_fail(t, __FILE__, __LINE__, "%s: %ld without a failure, want %ld: %s",
                             q->name, st, q->want, r.body ? r.body : "");
            else
                after_success(T, q, &r);
            th_resp_free(&r);
            return;
        }
        T->failed++;
        if (st == q->want) {
            after_success(T, q, &r);
            th_resp_free(&r);
            continue;
        }
        if (!(st >= 500 && st <= 507) || !json_error(&r))
            tm_test_fail(t, __FILE__, __LINE__,
                         "%s: allocation %ld of %ld failed: answered %ld, want %ld or a 5xx with "
                         "a JSON error: %.300s",
                         q->name, n, calls, st, q->want, r.body ? r.body : "(no body)");
        th_resp_free(&r);
        long left = back_to(base);
        if (left > base)
            tm_test_fail(t, __FILE__, __LINE__, "%s: allocation %ld failed: %ld blocks leaked",
                         q->name, n, left - base);
        snapshot(T, after, sizeof(after));
        if (strcmp(before, after))
            tm_test_fail(t, __FILE__, __LINE__,
                         "%s: allocation %ld failed: the store changed:\n  %s\n  %s", q->name, n,
                         before, after);
        if (t->failures > 20)
            return;
    }
}

TM_TEST(http_torture_allocations)
{
    static const struct treq reqs[] = {
        {"upload JSON", "POST", "/v1/corpora", "application/json", SMALL_JSON, 201, 0},
        {"upload JSON Lines", "POST", "/v1/corpora", "application/x-ndjson", SMALL_JSONL, 201, 0},
        {"upload multipart", "POST", "/v1/corpora", "multipart/form-data; boundary=XyZ",
         "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.txt\"\r\n"
         "Content-Type: text/plain\r\n\r\nfirst line document\nsecond line document\r\n"
         "--XyZ--\r\n",
         201, 0},
        {"append JSON Lines", "POST", "/v1/corpora/%s/documents", "application/x-ndjson",
         SMALL_JSONL, 200, 0},
        {"submit NMF", "POST", "/v1/jobs", "application/json",
         "{\"corpus_id\":\"%CID%\",\"model\":{\"method\":\"nmf\",\"n_topics\":2}}", 202, 0},
        {"submit SVD inline", "POST", "/v1/jobs", "application/json",
         "{\"documents\":[\"a b c\",\"b c d\",\"c d e\"],"
         "\"model\":{\"method\":\"truncated_svd\",\"n_topics\":2}}",
         202, 0},
        {"job status", "GET", "{job}", NULL, NULL, 200, 0},
        {"job result", "GET", "{job}/result", NULL, NULL, 200, 0},
        {"document topics", "GET", "{job}/document-topics?offset=1&limit=3", NULL, NULL, 200, 0},
        /* document-topics.csv is left out: a failure once its status line
         * is out can only cut the stream short (http.h), which
         * test_exports.c's allocation test covers. */
        {"topic terms CSV", "GET", "{job}/topic-terms.csv", NULL, NULL, 200, 0},
        {"list corpora", "GET", "/v1/corpora?limit=2", NULL, NULL, 200, 0},
        {"list jobs", "GET", "/v1/jobs?state=succeeded", NULL, NULL, 200, 0},
        {"get corpus", "GET", "/v1/corpora/%s", NULL, NULL, 200, 0},
        {"info", "GET", "/v1/info", NULL, NULL, 200, 0},
        {"metrics", "GET", "/metrics", NULL, NULL, 200, 0},
        {"delete job", "DELETE", "/v1/jobs/%s", NULL, NULL, 204, 'j'},
        {"delete corpus", "DELETE", "/v1/corpora/%s", NULL, NULL, 204, 'c'},
        {"bad JSON body", "POST", "/v1/jobs", "application/json", "{\"model\": [1,", 400, 0},
        {"bad spec", "POST", "/v1/jobs", "application/json",
         "{\"documents\":[\"a b\"],\"model\":{\"method\":\"nmf\",\"n_topics\":0}}", 422, 0},
        {"bad JSON Lines", "POST", "/v1/corpora", "application/x-ndjson",
         "{\"text\":\"ok\"}\n{\"text\": 3}\n", 422, 0},
        {"bad query", "GET", "/v1/jobs?limit=0", NULL, NULL, 400, 0},
        {"unknown job", "GET", "/v1/jobs/nope", NULL, NULL, 404, 0},
        {"unknown route", "GET", "/v1/nothing", NULL, NULL, 404, 0},
        {"wrong method", "PUT", "/v1/jobs", "application/json", "{}", 405, 0},
    };
    struct torture T;
    /* Set before the server's threads start (log.h). */
    enum tm_log_level saved = tm__log_level;
    tm_log_set_level(TM_LOG_OFF);
    if (torture_start(&T)) {
        torture_stop(&T);
        tm_log_set_level(saved);
        REQUIRE(!"the in-process server started");
    }
    char state[32];
    /* The records the reads read, made without failures. */
    size_t len;
    char *docs = th_corpus_jsonl(40, 12, 7, &len);
    int ready = docs && th_upload(&T.s, "application/x-ndjson", docs, len, T.corpus) == 201 &&
                th_submit_model(&T.s, T.corpus, "{\"method\":\"nmf\",\"n_topics\":3}", NULL,
                                T.job) == 202 &&
                !strcmp(th_wait_job(&T.s, T.job, 60, state), "succeeded");
    free(docs);
    wait_jobs_idle(&T);
    if (ready) {
        for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]) && t->failures <= 20; i++) {
            struct treq q = reqs[i];
            char body[256];
            const char *cid = q.body ? strstr(q.body, "%CID%") : NULL;
            if (cid) {
                snprintf(body, sizeof(body), "%.*s%s%s", (int)(cid - q.body), q.body, T.corpus,
                         cid + 5);
                q.body = body;
            }
            torture_req(t, &T, &q);
        }
        printf("  torture: %ld allocations failed over %ld requests\n", T.failed, T.requests);
    }
    torture_stop(&T);
    tm_log_set_level(saved);
    CHECK(ready);
    /* Every request allocates: a figure of 0 would mean the allocator was
     * not in the path at all. */
    CHECK(T.failed > 100);
}
