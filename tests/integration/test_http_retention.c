/*
 * test_http_retention.c - finished jobs leave the service: DELETE of a
 * finished job (204, then 404 everywhere, its Idempotency-Key free again,
 * its corpus kept), and --job-retention (the sweeper deletes a finished job
 * once it is old enough, never a running one, and does not slow SIGTERM).
 */
#include "http_helpers.h"

#define SMALL_MODEL "{\"method\":\"nmf\",\"n_topics\":2,\"max_iter\":20}"

static int upload_small(struct tm_test_ctx *t, struct th_server *s, char *cid)
{
    size_t len;
    char *jl = th_corpus_jsonl(40, 12, 7, &len);
    long st = th_upload(s, "application/x-ndjson", jl, len, cid);
    free(jl);
    if (st != 201) {
        tm_test_fail(t, __FILE__, __LINE__, "upload: %ld", st);
        return -1;
    }
    return 0;
}

/* The value of one metric line ("name{labels}"), -1 when absent. */
static double metric(struct th_server *s, const char *line)
{
    struct th_resp r;
    double v = -1;
    if (th_get(s, "/metrics", &r) == 200 && r.body) {
        const char *p = strstr(r.body, line);
        if (p)
            v = atof(p + strlen(line));
    }
    th_resp_free(&r);
    return v;
}

TM_TEST(http_delete_finished_job)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    if (th_tmpdir(&s) || th_start(&s, "--workers", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    char cid[40], jid[40], again[40], state[32], code[64];
    if (upload_small(t, &s, cid))
        goto out;
    CHECK_INT_EQ(th_submit_model(&s, cid, SMALL_MODEL, "retention-key", jid), 202);
    CHECK_STR_EQ(th_wait_job(&s, jid, 60, state), "succeeded");
    CHECK_INT_EQ(th_request_id(&s, "GET", "/v1/jobs/%s/result", jid), 200);
    CHECK_INT_EQ(th_request_id(&s, "GET", "/v1/jobs/%s/document-topics", jid), 200);

    struct th_resp r;
    char path[160];
    snprintf(path, sizeof(path), "/v1/jobs/%s", jid);
    CHECK_INT_EQ(th_request(&s, "DELETE", path, NULL, NULL, &r), 204);
    CHECK_INT_EQ(r.len, 0);
    th_resp_free(&r);
    CHECK_INT_EQ(th_get(&s, path, &r), 404);
    CHECK_STR_EQ(th_error_code(&r, code, sizeof(code)), "not_found");
    th_resp_free(&r);
    CHECK_INT_EQ(th_request_id(&s, "GET", "/v1/jobs/%s/result", jid), 404);
    CHECK_INT_EQ(th_request_id(&s, "GET", "/v1/jobs/%s/document-topics", jid), 404);
    CHECK_INT_EQ(th_request_id(&s, "DELETE", "/v1/jobs/%s", jid), 404);
    CHECK_INT_EQ(th_request_id(&s, "POST", "/v1/jobs/%s:cancel", jid), 404);
    CHECK_INT_EQ(th_get(&s, "/v1/jobs", &r), 200);
    CHECK(r.body && !strstr(r.body, jid));
    th_resp_free(&r);
    /* The shared corpus stays. */
    CHECK_INT_EQ(th_request_id(&s, "GET", "/v1/corpora/%s", cid), 200);
    /* The key is free again: the same request makes a new job. */
    CHECK_INT_EQ(th_submit_model(&s, cid, SMALL_MODEL, "retention-key", again), 202);
    CHECK(again[0] && strcmp(again, jid) != 0);
    CHECK_STR_EQ(th_wait_job(&s, again, 60, state), "succeeded");

    /* A job with inline documents goes whole, with its documents' ids. */
    CHECK_INT_EQ(th_submit(&s,
                           "{\"documents\":[{\"id\":\"first\",\"text\":\"cats and dogs\"},"
                           "\"dogs chase cats\",\"stocks and bonds\",\"bond markets\"],"
                           "\"model\":{\"method\":\"nmf\",\"n_topics\":2}}",
                           NULL, jid),
                 202);
    CHECK_STR_EQ(th_wait_job(&s, jid, 60, state), "succeeded");
    CHECK_INT_EQ(th_request_id(&s, "DELETE", "/v1/jobs/%s", jid), 204);
    CHECK_INT_EQ(th_request_id(&s, "GET", "/v1/jobs/%s/document-topics", jid), 404);
    CHECK_INT_EQ(th_request_id(&s, "GET", "/v1/jobs/%s", jid), 404);
    CHECK(metric(&s, "topicd_jobs_deleted_total{reason=\"request\"} ") == 2);
    CHECK(metric(&s, "topicd_jobs_deleted_total{reason=\"expired\"} ") == 0);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}

TM_TEST(http_job_retention)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    if (th_tmpdir(&s) ||
        th_start(&s, "--workers", "2", "--job-retention", "1", "--shutdown-grace", "0", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    char cid[40], run[40], jid[40], state[32];
    /* The effective setting is in the start-up line. */
    FILE *f = fopen(s.log, "r");
    char line[4096];
    int logged = 0;
    while (f && fgets(line, sizeof(line), f))
        logged |=
            strstr(line, "\"msg\":\"configuration\"") && strstr(line, "\"job_retention_s\":1");
    if (f)
        fclose(f);
    CHECK(logged);
    if (upload_small(t, &s, cid))
        goto out;
    /* A job that runs throughout: never expired, whatever its age. */
    CHECK_INT_EQ(th_submit_model(&s, cid, TH_ENDLESS_MODEL, NULL, run), 202);
    CHECK_INT_EQ(th_wait_state(&s, run, "running", 30), 0);
    CHECK_INT_EQ(th_submit_model(&s, cid, SMALL_MODEL, NULL, jid), 202);
    CHECK_STR_EQ(th_wait_job(&s, jid, 60, state), "succeeded");
    double t0 = th_now();
    long st = 200;
    while (th_now() < t0 + 5 && (st = th_request_id(&s, "GET", "/v1/jobs/%s", jid)) == 200)
        th_sleep_ms(50);
    CHECK_INT_EQ(st, 404);
    CHECK(th_now() - t0 < 3); /* 1 s of retention, sweeps every 0.1 s */
    CHECK_INT_EQ(th_request_id(&s, "GET", "/v1/jobs/%s/result", jid), 404);
    CHECK(metric(&s, "topicd_jobs_deleted_total{reason=\"expired\"} ") >= 1);
    CHECK_INT_EQ(th_job_state(&s, run, state), 200);
    CHECK_STR_EQ(state, "running");
    CHECK_INT_EQ(th_request_id(&s, "DELETE", "/v1/jobs/%s", run), 202);
    CHECK_STR_EQ(th_wait_job(&s, run, 30, state), "cancelled");
    CHECK_INT_EQ(th_stop(&s), 0);

    /* The default retention sweeps once a minute: SIGTERM wakes the
     * sweeper instead of waiting for it. */
    if (th_start(&s, "--workers", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not restart");
        goto out;
    }
    t0 = th_now();
    CHECK_INT_EQ(th_stop(&s), 0);
    CHECK(th_now() - t0 < 3);
out:
    th_cleanup(&s);
}
