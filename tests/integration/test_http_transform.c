/*
 * test_http_transform.c - POST /v1/jobs/{id}:transform against a real
 * `topicd serve`: a full_svd job's own documents transform to its
 * document-topics (X V = U S, to the kept
 * float32 components' rounding), ids and unknown words, and the errors, each
 * naming its field or the job's state: no such job, a job that is running
 * or failed, bad bodies, another tenant's job. More than the inline limit,
 * or a corpus, become a job: test_http_transform_job.c.
 */
#include <stdio.h>

#include "http_helpers.h"

#define DOCS                                                                                       \
    "[{\"id\":\"a\",\"text\":\"the cat sat on the mat with a dog\"},"                              \
    "{\"id\":\"b\",\"text\":\"dogs and cats are pets\"},"                                          \
    "{\"id\":\"c\",\"text\":\"rockets fly to space and the moon\"},"                               \
    "{\"id\":\"d\",\"text\":\"the moon orbits the earth in space\"},"                              \
    "{\"id\":\"e\",\"text\":\"space rockets need fuel\"},"                                         \
    "{\"id\":\"f\",\"text\":\"a cat and a dog and a pet\"}]"

static long post(const struct th_server *s, const char *jid, const char *key, const char *body,
                 struct th_resp *r)
{
    char path[128], auth[200];
    const char *hs[2] = {NULL, NULL};
    snprintf(path, sizeof(path), "/v1/jobs/%s:transform", jid);
    if (key) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
        hs[0] = auth;
    }
    return th_request_h(s, "POST", path, "application/json", body, strlen(body), hs, r);
}

/* The status, error code and field of a transform. */
static long post_error(const struct th_server *s, const char *jid, const char *body, char *code,
                       char *field)
{
    struct th_resp r;
    long st = post(s, jid, NULL, body, &r);
    cJSON *j = th_json(&r);
    const char *c = j ? th_str(j, "error.code") : NULL, *f = j ? th_str(j, "error.field") : NULL;
    snprintf(code, 64, "%s", c ? c : "");
    snprintf(field, 64, "%s", f ? f : "");
    cJSON_Delete(j);
    th_resp_free(&r);
    return st;
}

TM_TEST(http_transform)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    char jid[40], state[32], code[64], field[64], path[160];
    if (th_tmpdir(&s) || th_start(&s, "--workers", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    CHECK_INT_EQ(th_submit(&s,
                           "{\"documents\":" DOCS ",\"model\":{\"method\":\"full_svd\","
                           "\"n_topics\":3}}",
                           NULL, jid),
                 202);
    REQUIRE(!strcmp(th_wait_job(&s, jid, 60, state), "succeeded"));

    /* The job's own documents: X V, its document-topics U S. */
    struct th_resp r, dt;
    CHECK_INT_EQ(post(&s, jid, NULL, "{\"documents\":" DOCS "}", &r), 200);
    snprintf(path, sizeof(path), "/v1/jobs/%s/document-topics", jid);
    CHECK_INT_EQ(th_get(&s, path, &dt), 200);
    cJSON *a = th_json(&r), *b = th_json(&dt);
    const cJSON *rows = cJSON_GetObjectItem(a, "document_topics");
    const cJSON *ids = cJSON_GetObjectItem(a, "ids");
    const cJSON *docs = cJSON_GetObjectItem(b, "documents");
    CHECK_INT_EQ(cJSON_GetArraySize(rows), 6);
    CHECK_INT_EQ(cJSON_GetArraySize(docs), 6);
    double d = 0, scale = 0;
    for (int i = 0; i < 6; i++) {
        const cJSON *want = cJSON_GetObjectItem(cJSON_GetArrayItem(docs, i), "weights");
        const cJSON *got = cJSON_GetArrayItem(rows, i);
        CHECK_INT_EQ(cJSON_GetArraySize(got), 3);
        for (int q = 0; q < 3; q++) {
            double x = cJSON_GetArrayItem(got, q) ? cJSON_GetArrayItem(got, q)->valuedouble : 1e9;
            double y = cJSON_GetArrayItem(want, q) ? cJSON_GetArrayItem(want, q)->valuedouble : 0;
            d = fmax(d, fabs(x - y));
            scale = fmax(scale, fabs(y));
        }
    }
    /* The job keeps its components as float32 (api/model_file.h): X V is
     * U S to float32's rounding of V. */
    if (!(scale > 0 && d <= 1e-6 * scale))
        tm_test_fail(t, __FILE__, __LINE__, "X V vs U S: %g of %g", d, scale);
    CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetArrayItem(ids, 5)), "f");
    cJSON_Delete(a);
    cJSON_Delete(b);
    th_resp_free(&r);
    th_resp_free(&dt);

    /* Unknown words are ignored; no ids, no "ids". */
    CHECK_INT_EQ(post(&s, jid, NULL, "{\"documents\":[\"zebras quantum xylophones\",\"\"]}", &r),
                 200);
    CHECK(r.body && strstr(r.body, "\"document_topics\":[[0,0,0],[0,0,0]]") &&
          !strstr(r.body, "\"ids\""));
    th_resp_free(&r);
    CHECK_INT_EQ(post(&s, jid, NULL, "{\"documents\":[]}", &r), 200);
    CHECK(r.body && strstr(r.body, "\"document_topics\":[]"));
    th_resp_free(&r);

    /* Errors. */
    CHECK_INT_EQ(post_error(&s, "j_nosuchjob", "{\"documents\":[\"a\"]}", code, field), 404);
    CHECK_STR_EQ(code, "not_found");
    CHECK_INT_EQ(post_error(&s, jid, "{\"documents\":[\"a\",3]}", code, field), 422);
    CHECK_STR_EQ(field, "documents[1]");
    CHECK_INT_EQ(post_error(&s, jid, "{\"documents\":[\"a\"],\"model\":{}}", code, field), 422);
    CHECK_STR_EQ(field, "model");
    CHECK_INT_EQ(post_error(&s, jid, "{\"documents\":[\"a\"", code, field), 400);
    CHECK_INT_EQ(post_error(&s, jid, "{\"documents\":[\"\\u00e9\\udc00\"]}", code, field), 400);
    CHECK_INT_EQ(post_error(&s, jid, "{\"corpus_id\":\"c_x\"}", code, field), 404);
    CHECK_STR_EQ(field, "corpus_id");
    snprintf(path, sizeof(path), "/v1/jobs/%s:transform", jid);
    CHECK_INT_EQ(th_request(&s, "POST", path, "text/plain", "hello", NULL), 415);
    CHECK_INT_EQ(th_request(&s, "GET", path, NULL, NULL, NULL), 405);

    /* A failed job (only stop words): 409 naming its state. */
    char failed[40];
    CHECK_INT_EQ(th_submit(&s,
                           "{\"documents\":[\"the and of\",\"a the\"],\"vectorizer\":"
                           "{\"stop_words\":\"english\"},\"model\":{\"method\":\"nmf\","
                           "\"n_topics\":1}}",
                           NULL, failed),
                 202);
    CHECK_STR_EQ(th_wait_job(&s, failed, 60, state), "failed");
    CHECK_INT_EQ(post(&s, failed, NULL, "{\"documents\":[\"a\"]}", &r), 409);
    CHECK(r.body && strstr(r.body, "job_not_finished") && strstr(r.body, "failed"));
    th_resp_free(&r);
    /* A running job: 409 naming its state, with Retry-After. */
    char running[40], spec[600];
    snprintf(spec, sizeof(spec),
             "{\"documents\":" DOCS ",\"model\":{\"method\":\"nmf\",\"n_topics\":2,\"tol\":0,"
             "\"max_iter\":1000000000}}");
    CHECK_INT_EQ(th_submit(&s, spec, NULL, running), 202);
    CHECK_INT_EQ(th_wait_state(&s, running, "running", 60), 0);
    CHECK_INT_EQ(post(&s, running, NULL, "{\"documents\":[\"a\"]}", &r), 409);
    CHECK(r.body && strstr(r.body, "running") && r.retry_after[0]);
    th_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/jobs/%s", running);
    CHECK_INT_EQ(th_request(&s, "DELETE", path, NULL, NULL, NULL), 202);
    /* A deleted job is gone: 404. */
    CHECK_STR_EQ(th_wait_job(&s, running, 60, state), "cancelled");
    CHECK_INT_EQ(th_request(&s, "DELETE", path, NULL, NULL, NULL), 204);
    CHECK_INT_EQ(post_error(&s, running, "{\"documents\":[\"a\"]}", code, field), 404);
out:
    th_cleanup(&s);
}

/* `topicd keys create --tenant T`: the key into out. */
static int make_key(const char *dir, const char *tenant, char *out, size_t size)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "'%s/topicd' keys create --tenant %s --data-dir '%s' 2>/dev/null",
             tm_test_bindir(), tenant, dir);
    FILE *p = popen(cmd, "r");
    out[0] = 0;
    if (!p)
        return -1;
    if (fgets(out, (int)size, p))
        out[strcspn(out, "\n")] = 0;
    return pclose(p) == 0 && out[0] ? 0 : -1;
}

TM_TEST(http_transform_tenants)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    char a[128], b[128], jid[40], state[32], auth[200], path[128];
    REQUIRE(th_tmpdir(&s) == 0);
    if (make_key(s.dir, "acme", a, sizeof(a)) || make_key(s.dir, "other", b, sizeof(b)) ||
        th_start(&s, "--auth", "on", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "no keys or no server");
        goto out;
    }
    const char *spec = "{\"documents\":" DOCS ",\"model\":{\"method\":\"nmf\",\"n_topics\":2}}";
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", a);
    const char *hs[] = {auth, NULL};
    CHECK_INT_EQ(th_post_for_id(&s, "/v1/jobs", "application/json", spec, strlen(spec), hs, jid),
                 202);
    double end = th_now() + 60;
    struct th_resp r;
    snprintf(path, sizeof(path), "/v1/jobs/%s", jid);
    do {
        th_request_h(&s, "GET", path, NULL, NULL, 0, hs, &r);
        cJSON *j = th_json(&r);
        snprintf(state, sizeof(state), "%s", j && th_str(j, "state") ? th_str(j, "state") : "");
        cJSON_Delete(j);
        th_resp_free(&r);
        th_sleep_ms(20);
    } while (strcmp(state, "succeeded") && strcmp(state, "failed") && th_now() < end);
    CHECK_STR_EQ(state, "succeeded");
    const char *body = "{\"documents\":[\"a cat and a dog\"]}";
    CHECK_INT_EQ(post(&s, jid, NULL, body, NULL), 401);
    CHECK_INT_EQ(post(&s, jid, b, body, NULL), 404);
    CHECK_INT_EQ(post(&s, jid, a, body, &r), 200);
    CHECK(r.body && strstr(r.body, "\"n_documents\":1"));
    th_resp_free(&r);

    /* As a job: another tenant's corpus is no corpus; one's own is. */
    char bauth[200], cb[40], ca[40], cbody[100], tid[40];
    snprintf(bauth, sizeof(bauth), "Authorization: Bearer %s", b);
    const char *bhs[] = {bauth, NULL};
    CHECK_INT_EQ(th_post_for_id(&s, "/v1/corpora", "application/json", DOCS, strlen(DOCS), bhs, cb),
                 201);
    CHECK_INT_EQ(th_post_for_id(&s, "/v1/corpora", "application/json", DOCS, strlen(DOCS), hs, ca),
                 201);
    snprintf(cbody, sizeof(cbody), "{\"corpus_id\":\"%s\"}", cb);
    CHECK_INT_EQ(post(&s, jid, a, cbody, &r), 404);
    CHECK(r.body && strstr(r.body, "\"field\":\"corpus_id\""));
    th_resp_free(&r);
    CHECK_INT_EQ(post(&s, jid, b, cbody, NULL), 404); /* b's corpus, a's job */
    snprintf(cbody, sizeof(cbody), "{\"corpus_id\":\"%s\"}", ca);
    CHECK_INT_EQ(post(&s, jid, b, cbody, NULL), 404);
    snprintf(path, sizeof(path), "/v1/jobs/%s:transform", jid);
    CHECK_INT_EQ(th_post_for_id(&s, path, "application/json", cbody, strlen(cbody), hs, tid), 202);
    snprintf(path, sizeof(path), "/v1/jobs/%s", tid);
    CHECK_INT_EQ(th_request_h(&s, "GET", path, NULL, NULL, 0, bhs, NULL), 404);
    CHECK_INT_EQ(th_request_h(&s, "GET", path, NULL, NULL, 0, hs, NULL), 200);
out:
    th_cleanup(&s);
}
