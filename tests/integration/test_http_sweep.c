/*
 * test_http_sweep.c - model.n_topics as a list or a range on a real server
 * (core/sweep.h): the result's sweep and rule, the suggested k's model as
 * the job's (topics, document-topics pages), the sweep plot (404 for a job
 * that is not a sweep), the report; errors at submission naming the field,
 * a k above n_features failing the job by name, cancel mid-sweep.
 */
#include "http_helpers.h"

/* POST /v1/jobs of spec; 422 with error.field field, or fails the test. */
static void expect_422(struct tm_test_ctx *t, int line, const struct th_server *s, const char *spec,
                       const char *field)
{
    struct th_resp r;
    long st = th_request_h(s, "POST", "/v1/jobs", "application/json", spec, strlen(spec), NULL, &r);
    cJSON *j = th_json(&r);
    const char *f = j ? th_str(j, "error.field") : NULL;
    if (st != 422 || !f || strcmp(f, field) != 0)
        tm_test_fail(t, __FILE__, line, "%s: got %ld %s, want 422 field %s", spec, st,
                     r.body ? r.body : "(no body)", field);
    cJSON_Delete(j);
    th_resp_free(&r);
}

TM_TEST(http_sweep)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    if (th_tmpdir(&s) || th_start(&s, "--workers", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    size_t len;
    char *jl = th_corpus_jsonl(60, 14, 3, &len); /* 4 planted topics, 32 words */
    char cid[40], nmf[40], svd[40], plain[40], state[32], code[64], path[200];
    CHECK_INT_EQ(th_upload(&s, "application/x-ndjson", jl, len, cid), 201);
    free(jl);
    CHECK_INT_EQ(
        th_submit_model(&s, cid, "{\"method\":\"nmf\",\"n_topics\":[6,2,3,4,5,8]}", NULL, nmf),
        202);
    CHECK_INT_EQ(th_submit_model(&s, cid,
                                 "{\"method\":\"truncated_svd\",\"algorithm\":\"lanczos\","
                                 "\"n_topics\":{\"start\":2,\"stop\":10,\"step\":2}}",
                                 NULL, svd),
                 202);
    CHECK_INT_EQ(th_submit_model(&s, cid, "{\"method\":\"nmf\",\"n_topics\":3}", NULL, plain), 202);
    CHECK_STR_EQ(th_wait_job(&s, nmf, 60, state), "succeeded");
    CHECK_STR_EQ(th_wait_job(&s, svd, 60, state), "succeeded");
    CHECK_STR_EQ(th_wait_job(&s, plain, 60, state), "succeeded");

    const char *ids[2] = {nmf, svd};
    const int n_points[2] = {6, 4};
    for (int q = 0; q < 2; q++) {
        struct th_resp r;
        snprintf(path, sizeof(path), "/v1/jobs/%s/result", ids[q]);
        CHECK_INT_EQ(th_get(&s, path, &r), 200);
        cJSON *res = th_json(&r);
        th_resp_free(&r);
        REQUIRE(res);
        const cJSON *sweep = cJSON_GetObjectItem(res, "sweep");
        CHECK_INT_EQ(cJSON_GetArraySize(sweep), n_points[q]);
        int k = (int)th_num(res, "n_topics"), found = 0;
        const cJSON *p;
        double last_k = 0;
        cJSON_ArrayForEach(p, sweep)
        {
            CHECK(th_num(p, "n_topics") > last_k); /* increasing */
            last_k = th_num(p, "n_topics");
            CHECK(th_num(p, "reconstruction_error") > 0);
            CHECK((cJSON_GetObjectItem(p, "explained_variance") != NULL) == (q == 1));
            found += (int)th_num(p, "n_topics") == k;
        }
        CHECK_INT_EQ(found, 1);
        CHECK(th_str(res, "sweep_rule") != NULL);
        /* The planted corpus has 4 topics: the knee finds them. */
        CHECK_INT_EQ(k, 4);
        CHECK_STR_EQ(th_str(res, "sweep_rule"), "knee");
        /* The suggested k's model is the job's: its topics and pages. */
        CHECK_INT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(res, "topics")), k);
        cJSON_Delete(res);
        snprintf(path, sizeof(path), "/v1/jobs/%s/document-topics?limit=2", ids[q]);
        CHECK_INT_EQ(th_get(&s, path, &r), 200);
        cJSON *page = th_json(&r);
        th_resp_free(&r);
        const cJSON *docs = page ? cJSON_GetObjectItem(page, "documents") : NULL;
        const cJSON *weights = cJSON_GetObjectItem(cJSON_GetArrayItem(docs, 0), "weights");
        CHECK(weights && cJSON_GetArraySize(weights) == k);
        cJSON_Delete(page);

        /* The sweep plot marks it; the report shows the plot. */
        snprintf(path, sizeof(path), "/v1/jobs/%s/plots/sweep.svg", ids[q]);
        CHECK_INT_EQ(th_get(&s, path, &r), 200);
        CHECK_STR_EQ(r.content_type, "image/svg+xml");
        char mark[48];
        snprintf(mark, sizeof(mark), ">suggested k = %d (knee)</text>", k);
        CHECK(r.body && strstr(r.body, mark));
        th_resp_free(&r);
        snprintf(path, sizeof(path), "/v1/jobs/%s/report.html", ids[q]);
        CHECK_INT_EQ(th_get(&s, path, &r), 200);
        CHECK(r.body && strstr(r.body, "Reconstruction error by number of topics"));
        th_resp_free(&r);
    }
    /* With coherence asked for: each k scored, the best one suggested, and
     * the plot draws the coherence too. */
    char coh[40];
    CHECK_INT_EQ(th_submit_model(&s, cid,
                                 "{\"method\":\"nmf\",\"n_topics\":[2,3,4,5,6],"
                                 "\"coherence\":[\"u_mass\",\"c_v\"]}",
                                 NULL, coh),
                 202);
    CHECK_STR_EQ(th_wait_job(&s, coh, 60, state), "succeeded");
    snprintf(path, sizeof(path), "/v1/jobs/%s/result", coh);
    {
        struct th_resp cr;
        CHECK_INT_EQ(th_get(&s, path, &cr), 200);
        cJSON *res = th_json(&cr);
        th_resp_free(&cr);
        REQUIRE(res);
        CHECK_STR_EQ(th_str(res, "sweep_rule"), "best_coherence");
        CHECK_STR_EQ(th_str(res, "sweep_coherence"), "c_v");
        double best = -1e300;
        int best_k = 0;
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(res, "sweep"))
        {
            const cJSON *c = cJSON_GetObjectItem(p, "coherence");
            CHECK(cJSON_IsNumber(c));
            if (cJSON_IsNumber(c) && c->valuedouble > best) {
                best = c->valuedouble;
                best_k = (int)th_num(p, "n_topics");
            }
        }
        CHECK_INT_EQ((int)th_num(res, "n_topics"), best_k);
        /* The suggested k's own coherence is the point's. */
        const cJSON *cv = cJSON_GetObjectItem(cJSON_GetObjectItem(res, "coherence"), "c_v");
        CHECK(cv && fabs(th_num(cv, "mean") - best) < 1e-12);
        cJSON_Delete(res);
        snprintf(path, sizeof(path), "/v1/jobs/%s/plots/sweep.svg", coh);
        CHECK_INT_EQ(th_get(&s, path, &cr), 200);
        CHECK(cr.body && strstr(cr.body, "mean coherence") && strstr(cr.body, "(best_coherence)"));
        th_resp_free(&cr);
    }

    /* A job that is not a sweep has no sweep plot, and says why. */
    struct th_resp r;
    snprintf(path, sizeof(path), "/v1/jobs/%s/plots/sweep.svg", plain);
    CHECK_INT_EQ(th_get(&s, path, &r), 404);
    CHECK_STR_EQ(th_error_code(&r, code, sizeof(code)), "no_plot_data");
    CHECK(r.body && strstr(r.body, "not a sweep"));
    th_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/jobs/%s/result", plain);
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    CHECK(r.body && !strstr(r.body, "\"sweep\""));
    th_resp_free(&r);

    /* Errors at submission, naming the field. */
    char spec[2400];
    snprintf(spec, sizeof(spec), "{\"corpus_id\":\"%s\",\"model\":{\"n_topics\":[2,61]}}", cid);
    expect_422(t, __LINE__, &s, spec, "model.n_topics"); /* 60 documents */
    int at = snprintf(spec, sizeof(spec), "{\"corpus_id\":\"%s\",\"model\":{\"n_topics\":[", cid);
    for (int k = 1; k <= 200; k++)
        at += snprintf(spec + at, sizeof(spec) - (size_t)at, "%s%d", k > 1 ? "," : "", k);
    snprintf(spec + at, sizeof(spec) - (size_t)at, "]}}");
    expect_422(t, __LINE__, &s, spec, "model.n_topics");
    snprintf(spec, sizeof(spec),
             "{\"corpus_id\":\"%s\",\"model\":{\"n_topics\":{\"start\":3,\"stop\":3}}}", cid);
    expect_422(t, __LINE__, &s, spec, "model.n_topics");
    snprintf(spec, sizeof(spec),
             "{\"corpus_id\":\"%s\",\"model\":{\"n_topics\":{\"start\":3,\"end\":9}}}", cid);
    expect_422(t, __LINE__, &s, spec, "model.n_topics.end");
    snprintf(spec, sizeof(spec), "{\"corpus_id\":\"%s\",\"model\":{\"n_topics\":[0,2]}}", cid);
    expect_422(t, __LINE__, &s, spec, "model.n_topics[0]");

    /* Above n_features (32 words), known only after vectorizing: the job
     * fails naming the field. */
    char wide[40];
    CHECK_INT_EQ(th_submit_model(&s, cid, "{\"n_topics\":[2,40]}", NULL, wide), 202);
    CHECK_STR_EQ(th_wait_job(&s, wide, 60, state), "failed");
    snprintf(path, sizeof(path), "/v1/jobs/%s", wide);
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    CHECK(r.body && strstr(r.body, "model.n_topics"));
    th_resp_free(&r);

    /* Cancel mid-sweep: the first k never ends. */
    char endless[40];
    CHECK_INT_EQ(th_submit_model(&s, cid,
                                 "{\"method\":\"nmf\",\"n_topics\":[2,3],\"tol\":0,"
                                 "\"max_iter\":1000000000}",
                                 NULL, endless),
                 202);
    CHECK_INT_EQ(th_wait_state(&s, endless, "running", 60), 0);
    CHECK(th_request_id(&s, "POST", "/v1/jobs/%s:cancel", endless) / 100 == 2);
    CHECK_STR_EQ(th_wait_job(&s, endless, 60, state), "cancelled");
out:
    th_cleanup(&s);
}
