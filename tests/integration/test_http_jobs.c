/*
 * test_http_jobs.c - the job service under stress: cancellation, a full
 * queue, corpora in use, restart after kill -9 (nothing accepted is lost;
 * a job that keeps crashing the process fails with a reason), graceful
 * shutdown with a job running, and many clients at once.
 */
#include "http_helpers.h"

static int upload_big(struct tm_test_ctx *t, struct th_server *s, char *cid)
{
    size_t len;
    char *jl = th_corpus_big(300, 40, 400, &len);
    long st = th_upload(s, "application/x-ndjson", jl, len, cid);
    free(jl);
    if (st != 201) {
        tm_test_fail(t, __FILE__, __LINE__, "upload: %ld", st);
        return -1;
    }
    return 0;
}

static int attempts_of(struct th_server *s, const char *jid, char *code)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", jid);
    struct th_resp r;
    th_get(s, path, &r);
    cJSON *j = th_json(&r);
    int a = j ? (int)th_num(j, "attempts") : -1;
    if (code) {
        const char *c = j ? th_str(j, "error.code") : NULL;
        snprintf(code, 32, "%s", c ? c : "");
    }
    cJSON_Delete(j);
    th_resp_free(&r);
    return a;
}

TM_TEST(http_cancel_and_queue)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    if (th_tmpdir(&s) || th_start(&s, "--workers", "1", "--max-queue", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    char cid[40], j1[40], j2[40], j3[40], state[32];
    if (upload_big(t, &s, cid))
        goto out;
    CHECK_INT_EQ(th_submit_model(&s, cid, TH_ENDLESS_MODEL, NULL, j1), 202);
    CHECK_INT_EQ(th_wait_state(&s, j1, "running", 60), 0);
    CHECK_INT_EQ(th_submit_model(&s, cid, "{\"method\":\"nmf\",\"n_topics\":2}", NULL, j2), 202);
    /* The queue (1) is full: 429 with Retry-After. */
    struct th_resp r;
    char spec[256];
    snprintf(spec, sizeof(spec),
             "{\"corpus_id\":\"%s\",\"model\":{\"method\":\"nmf\",\"n_topics\":3}}", cid);
    CHECK_INT_EQ(th_request(&s, "POST", "/v1/jobs", "application/json", spec, &r), 429);
    CHECK(r.retry_after[0] != 0);
    char code[64];
    CHECK_STR_EQ(th_error_code(&r, code, sizeof(code)), "queue_full");
    th_resp_free(&r);
    /* Progress is reported while it runs. */
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", j1);
    double end = th_now() + 30;
    double progress = 0;
    char stage[32] = "";
    while (th_now() < end && strcmp(stage, "nmf")) {
        th_get(&s, path, &r);
        cJSON *j = th_json(&r);
        progress = j ? th_num(j, "progress") : 0;
        snprintf(stage, sizeof(stage), "%s", j && th_str(j, "stage") ? th_str(j, "stage") : "");
        cJSON_Delete(j);
        th_resp_free(&r);
        th_sleep_ms(10);
    }
    /* Vectorizing is the first 20% of a job; the fit the rest. */
    CHECK_STR_EQ(stage, "nmf");
    CHECK(progress >= 0.2 && progress <= 1);
    /* The corpus is in use. */
    snprintf(path, sizeof(path), "/v1/corpora/%s", cid);
    CHECK_INT_EQ(th_request(&s, "DELETE", path, NULL, NULL, &r), 409);
    CHECK_STR_EQ(th_error_code(&r, code, sizeof(code)), "corpus_in_use");
    th_resp_free(&r);
    /* Cancel the queued one: at once, 200. */
    CHECK_INT_EQ(th_request_id(&s, "POST", "/v1/jobs/%s:cancel", j2), 200);
    CHECK_INT_EQ(th_job_state(&s, j2, state), 200);
    CHECK_STR_EQ(state, "cancelled");
    CHECK_INT_EQ(th_request_id(&s, "GET", "/v1/jobs/%s/result", j2), 409);
    /* Cancel the running one: 202, then it stops at its next iteration. */
    CHECK_INT_EQ(th_request_id(&s, "DELETE", "/v1/jobs/%s", j1), 202);
    CHECK_STR_EQ(th_wait_job(&s, j1, 30, state), "cancelled");
    /* Finished: :cancel refuses, DELETE deletes. */
    CHECK_INT_EQ(th_request_id(&s, "POST", "/v1/jobs/%s:cancel", j1), 409);
    CHECK_INT_EQ(th_request_id(&s, "DELETE", "/v1/jobs/%s", j1), 204);
    CHECK_INT_EQ(th_request_id(&s, "GET", "/v1/jobs/%s", j1), 404);
    /* The worker is free again. */
    CHECK_INT_EQ(
        th_submit_model(&s, cid, "{\"method\":\"nmf\",\"n_topics\":2,\"max_iter\":20}", NULL, j3),
        202);
    CHECK_STR_EQ(th_wait_job(&s, j3, 60, state), "succeeded");
    snprintf(path, sizeof(path), "/v1/corpora/%s", cid);
    CHECK_INT_EQ(th_request(&s, "DELETE", path, NULL, NULL, NULL), 204);
    CHECK_INT_EQ(th_get(&s, "/metrics", &r), 200);
    CHECK(r.body && strstr(r.body, "topicd_jobs_finished_total{state=\"cancelled\"} 2"));
    th_resp_free(&r);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}

/* POST /v1/jobs as client (X-Client-Id); the job id into jid; the status. */
static long submit_as(struct th_server *s, const char *client, const char *cid, const char *model,
                      char *jid)
{
    char spec[512], ch[128];
    snprintf(spec, sizeof(spec), "{\"corpus_id\":\"%s\",\"model\":%s}", cid, model);
    snprintf(ch, sizeof(ch), "X-Client-Id: %s", client);
    const char *hs[2] = {ch, NULL};
    return th_post_for_id(s, "/v1/jobs", "application/json", spec, strlen(spec), hs, jid);
}

/* The job's started_at (an ISO 8601 string, so they compare as strings). */
static void started_at(struct th_server *s, const char *jid, char *out)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", jid);
    struct th_resp r;
    th_get(s, path, &r);
    cJSON *j = th_json(&r);
    const char *v = j ? th_str(j, "started_at") : NULL;
    snprintf(out, 40, "%s", v ? v : "");
    cJSON_Delete(j);
    th_resp_free(&r);
}

/* Two clients named by X-Client-Id, one worker: alice's backlog does not
 * hold bob's job back, and alice may queue only --max-queue-per-client. */
TM_TEST(http_fair_queue)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    if (th_tmpdir(&s) || th_start(&s, "--workers", "1", "--max-queue-per-client", "2", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    char cid[40], a0[40], a1[40], a2[40], b[40], x[40], state[32];
    if (upload_big(t, &s, cid))
        goto out;
    const char *small = "{\"method\":\"nmf\",\"n_topics\":2,\"max_iter\":20}";
    CHECK_INT_EQ(submit_as(&s, "alice", cid, TH_ENDLESS_MODEL, a0), 202);
    CHECK_INT_EQ(th_wait_state(&s, a0, "running", 60), 0);
    CHECK_INT_EQ(submit_as(&s, "alice", cid, small, a1), 202);
    CHECK_INT_EQ(submit_as(&s, "alice", cid, small, a2), 202);
    /* alice's share of the queue is full; bob's is not. */
    char spec[256], code[64];
    snprintf(spec, sizeof(spec), "{\"corpus_id\":\"%s\",\"model\":%s}", cid, small);
    const char *alice[2] = {"X-Client-Id: alice", NULL};
    struct th_resp r;
    CHECK_INT_EQ(
        th_request_h(&s, "POST", "/v1/jobs", "application/json", spec, strlen(spec), alice, &r),
        429);
    CHECK(r.retry_after[0] != 0);
    /* The old flag's name still works, and the answer names the quota. */
    CHECK_STR_EQ(th_error_code(&r, code, sizeof(code)), "quota_exceeded");
    CHECK(r.body && strstr(r.body, "\"quota\":\"queued_jobs\"") && strstr(r.body, "\"limit\":2"));
    th_resp_free(&r);
    CHECK_INT_EQ(submit_as(&s, "bob", cid, small, b), 202);
    /* A malformed client id is refused. */
    char longid[80];
    memset(longid, 'x', 65);
    longid[65] = 0;
    CHECK_INT_EQ(submit_as(&s, longid, cid, small, x), 400);
    /* Free the worker: bob's job, submitted last, starts before alice's. */
    CHECK_INT_EQ(th_request_id(&s, "DELETE", "/v1/jobs/%s", a0), 202);
    CHECK_STR_EQ(th_wait_job(&s, a1, 60, state), "succeeded");
    CHECK_STR_EQ(th_wait_job(&s, a2, 60, state), "succeeded");
    CHECK_STR_EQ(th_wait_job(&s, b, 60, state), "succeeded");
    char t_a1[40], t_a2[40], t_b[40];
    started_at(&s, a1, t_a1);
    started_at(&s, a2, t_a2);
    started_at(&s, b, t_b);
    CHECK(t_b[0] && strcmp(t_b, t_a1) < 0);
    CHECK(strcmp(t_a1, t_a2) < 0);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}

TM_TEST(http_restart_after_kill9)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    if (th_tmpdir(&s) || th_start(&s, "--workers", "1", "--max-attempts", "3", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    char cid[40], done[40], endless[40], queued[40], state[32], code[32];
    if (upload_big(t, &s, cid))
        goto out;
    CHECK_INT_EQ(
        th_submit_model(&s, cid, "{\"method\":\"nmf\",\"n_topics\":2,\"max_iter\":20}", NULL, done),
        202);
    CHECK_STR_EQ(th_wait_job(&s, done, 60, state), "succeeded");
    struct th_resp before;
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s/result", done);
    CHECK_INT_EQ(th_get(&s, path, &before), 200);
    CHECK_INT_EQ(th_submit_model(&s, cid, TH_ENDLESS_MODEL, NULL, endless), 202);
    CHECK_INT_EQ(th_wait_state(&s, endless, "running", 60), 0);
    CHECK_INT_EQ(
        th_submit_model(&s, cid, "{\"method\":\"truncated_svd\",\"n_topics\":3}", NULL, queued),
        202);

    th_kill9(&s);
    REQUIRE(th_start(&s, "--workers", "2", "--max-attempts", "3", NULL) == 0);
    /* The finished result is served as before. */
    struct th_resp after;
    CHECK_INT_EQ(th_get(&s, path, &after), 200);
    CHECK(before.body && after.body && !strcmp(before.body, after.body));
    th_resp_free(&before);
    th_resp_free(&after);
    /* The queued job runs; the running one was re-queued and runs again. */
    CHECK_STR_EQ(th_wait_job(&s, queued, 60, state), "succeeded");
    CHECK_INT_EQ(th_wait_state(&s, endless, "running", 60), 0);
    CHECK_INT_EQ(attempts_of(&s, endless, NULL), 2);

    /* Crash it twice more: the third interrupted run fails it, with a reason. */
    th_kill9(&s);
    REQUIRE(th_start(&s, "--workers", "1", "--max-attempts", "3", NULL) == 0);
    CHECK_INT_EQ(th_wait_state(&s, endless, "running", 60), 0);
    CHECK_INT_EQ(attempts_of(&s, endless, NULL), 3);
    th_kill9(&s);
    REQUIRE(th_start(&s, "--workers", "1", "--max-attempts", "3", NULL) == 0);
    CHECK_INT_EQ(th_job_state(&s, endless, state), 200);
    CHECK_STR_EQ(state, "failed");
    attempts_of(&s, endless, code);
    CHECK_STR_EQ(code, "worker_crashed");
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}

TM_TEST(http_graceful_shutdown)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    /* --worker-nice 0: at nice +10 on a loaded machine (other processes,
     * sanitizers) the worker could take longer than drain's 10 s to reach
     * its next progress check after the grace, and the server rightly
     * exits with it still running; this test is about the grace. */
    if (th_tmpdir(&s) ||
        th_start(&s, "--workers", "1", "--worker-nice", "0", "--shutdown-grace", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    char cid[40], endless[40], state[32];
    if (upload_big(t, &s, cid))
        goto out;
    CHECK_INT_EQ(th_submit_model(&s, cid, TH_ENDLESS_MODEL, NULL, endless), 202);
    CHECK_INT_EQ(th_wait_state(&s, endless, "running", 60), 0);

    /* A kept-alive connection sees /readyz turn 503 while draining. */
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", s.port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    struct th_resp r;
    memset(&r, 0, sizeof(r));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, th_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    long code = 0;
    CHECK(curl_easy_perform(c) == CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    CHECK_INT_EQ(code, 200);
    th_resp_free(&r);
    double t0 = th_now();
    kill(s.pid, SIGTERM);
    th_sleep_ms(200);
    memset(&r, 0, sizeof(r));
    code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    CHECK_INT_EQ(code, 503);
    th_resp_free(&r);
    curl_easy_cleanup(c);
    /* Polls still work while draining; new work is refused. */
    CHECK_INT_EQ(th_job_state(&s, endless, state), 200);
    CHECK_STR_EQ(state, "running");
    CHECK_INT_EQ(th_submit_model(&s, cid, "{\"method\":\"nmf\",\"n_topics\":2}", NULL, state), 503);

    CHECK_INT_EQ(th_wait_exit(&s, 30), 0);
    CHECK(th_now() - t0 >= 0.9); /* it used its grace */
    /* The interrupted job was put back, its attempt not counted. */
    REQUIRE(th_start(&s, "--workers", "1", "--worker-nice", "0", "--shutdown-grace", "600", NULL) ==
            0);
    CHECK_INT_EQ(th_wait_state(&s, endless, "running", 60), 0);
    CHECK_INT_EQ(attempts_of(&s, endless, NULL), 1);
    /* A second SIGTERM ends a long grace period at once. */
    t0 = th_now();
    kill(s.pid, SIGTERM);
    th_sleep_ms(200);
    kill(s.pid, SIGTERM);
    CHECK_INT_EQ(th_wait_exit(&s, 30), 0);
    CHECK(th_now() - t0 < 20);
    REQUIRE(th_start(&s, "--workers", "1", NULL) == 0);
    CHECK_INT_EQ(th_wait_state(&s, endless, "running", 60), 0);
    CHECK_INT_EQ(attempts_of(&s, endless, NULL), 1);
    CHECK_INT_EQ(th_request_id(&s, "POST", "/v1/jobs/%s:cancel", endless), 202);
    CHECK_STR_EQ(th_wait_job(&s, endless, 30, state), "cancelled");
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}

/* Many clients at once: uploads, submissions, polls, listings, metrics. */
struct client {
    struct th_server *s;
    int index;
    int ok;
    char why[200];
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    size_t len;
    char *jl = th_corpus_jsonl(40 + c->index * 5, 15, (unsigned)c->index + 1, &len);
    char cid[40], jid[40], state[32], path[128];
    long st = th_upload(c->s, "application/x-ndjson", jl, len, cid);
    free(jl);
    if (st != 201) {
        snprintf(c->why, sizeof(c->why), "upload %ld", st);
        return NULL;
    }
    char spec[256];
    snprintf(spec, sizeof(spec),
             "{\"corpus_id\":\"%s\",\"model\":{\"method\":\"%s\",\"n_topics\":3},\"seed\":%d}", cid,
             c->index % 2 ? "nmf" : "truncated_svd", c->index);
    st = th_submit(c->s, spec, NULL, jid);
    if (st != 202) {
        snprintf(c->why, sizeof(c->why), "submit %ld", st);
        return NULL;
    }
    th_wait_job(c->s, jid, 120, state);
    if (strcmp(state, "succeeded")) {
        snprintf(c->why, sizeof(c->why), "job %s %s", jid, state);
        return NULL;
    }
    snprintf(path, sizeof(path), "/v1/jobs/%s/result", jid);
    struct th_resp r;
    st = th_get(c->s, path, &r);
    cJSON *j = th_json(&r);
    if (st != 200 || !j || th_num(j, "n_topics") != 3) {
        snprintf(c->why, sizeof(c->why), "result %ld", st);
    } else {
        c->ok = 1;
    }
    cJSON_Delete(j);
    th_resp_free(&r);
    return NULL;
}

struct poller {
    struct th_server *s;
    volatile int *stop;
    int requests, failures;
};

static void *poller_main(void *arg)
{
    struct poller *p = arg;
    static const char *const paths[] = {"/v1/jobs?limit=5", "/metrics", "/readyz", "/v1/corpora"};
    for (int i = 0; i < 2000 && !__atomic_load_n(p->stop, __ATOMIC_ACQUIRE); i++) {
        if (th_get(p->s, paths[i % 4], NULL) != 200)
            p->failures++;
        p->requests++;
    }
    return NULL;
}

TM_TEST(http_concurrent_clients)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    if (th_tmpdir(&s) || th_start(&s, "--workers", "2", "--http-threads", "4", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    enum { N_CLIENTS = 8, N_POLLERS = 2 };
    struct client clients[N_CLIENTS];
    struct poller pollers[N_POLLERS];
    pthread_t ct[N_CLIENTS], pt[N_POLLERS];
    volatile int stop = 0;
    for (int i = 0; i < N_POLLERS; i++) {
        pollers[i] = (struct poller){&s, &stop, 0, 0};
        pthread_create(&pt[i], NULL, poller_main, &pollers[i]);
    }
    for (int i = 0; i < N_CLIENTS; i++) {
        clients[i] = (struct client){&s, i, 0, ""};
        pthread_create(&ct[i], NULL, client_main, &clients[i]);
    }
    for (int i = 0; i < N_CLIENTS; i++) {
        pthread_join(ct[i], NULL);
        if (!clients[i].ok)
            tm_test_fail(t, __FILE__, __LINE__, "client %d: %s", i, clients[i].why);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < N_POLLERS; i++) {
        pthread_join(pt[i], NULL);
        CHECK_INT_EQ(pollers[i].failures, 0);
        CHECK(pollers[i].requests > 0);
    }
    struct th_resp r;
    CHECK_INT_EQ(th_get(&s, "/v1/jobs?state=succeeded&limit=100", &r), 200);
    cJSON *j = th_json(&r);
    CHECK_INT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "jobs")), N_CLIENTS);
    cJSON_Delete(j);
    th_resp_free(&r);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}
