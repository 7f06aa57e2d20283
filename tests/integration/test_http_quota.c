/* test_http_quota.c - per-tenant quotas against a real `topicd serve` with
 * API keys: two tenants, one reaches each quota (stored bytes by upload, by
 * a streamed upload and by inline documents; queued jobs; running jobs with
 * two workers), the other is not held back; the answers name the quota and
 * the use, and /metrics shows the use per tenant. */
#include <stdio.h>

#include "http_helpers.h"

/* `topicd keys create --tenant tenant --data-dir dir`: the key into key
 * (128 bytes); 0 or -1. */
static int make_key(const char *dir, const char *tenant, char *key)
{
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "'%s/topicd' keys create --tenant %s --data-dir '%s' 2>/dev/null",
             tm_test_bindir(), tenant, dir);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    key[0] = 0;
    if (fgets(key, 128, p))
        key[strcspn(key, "\n")] = 0;
    int st = pclose(p);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && key[0] ? 0 : -1;
}

/* method path with key's Bearer header and one more header (NULL: none). */
static long req(const struct th_server *s, const char *method, const char *path, const char *key,
                const char *content_type, const char *body, const char *extra, struct th_resp *r)
{
    char auth[200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    const char *hs[3] = {auth, extra, NULL};
    return th_request_h(s, method, path, content_type, body, body ? strlen(body) : 0, hs, r);
}

/* A string or number member of r's JSON body (an "error" member's when
 * under_error) into out; "" when missing. */
static const char *member(const struct th_resp *r, int under_error, const char *name, char *out,
                          size_t size)
{
    out[0] = 0;
    cJSON *j = th_json(r);
    const cJSON *o = j && under_error ? cJSON_GetObjectItemCaseSensitive(j, "error") : j;
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, name) : NULL;
    if (cJSON_IsString(v))
        snprintf(out, size, "%s", v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(out, size, "%.0f", v->valuedouble);
    cJSON_Delete(j);
    return out;
}

/* Uploads body (JSON Lines) as key's tenant: the status, the corpus id and
 * its stored bytes ("bytes") when created. chunked: no Content-Length. */
static long upload(const struct th_server *s, const char *key, const char *body, int chunked,
                   char *id, long long *bytes, struct th_resp *r)
{
    long st = req(s, "POST", "/v1/corpora", key, "application/x-ndjson", body,
                  chunked ? "Transfer-Encoding: chunked" : NULL, r);
    char v[64];
    snprintf(id, 40, "%s", st == 201 ? member(r, 0, "id", v, sizeof(v)) : "");
    *bytes = st == 201 ? atoll(member(r, 0, "bytes", v, sizeof(v))) : 0;
    return st;
}

static long submit(const struct th_server *s, const char *key, const char *spec, char *id,
                   struct th_resp *r)
{
    long st = req(s, "POST", "/v1/jobs", key, "application/json", spec, NULL, r);
    char v[64];
    snprintf(id, 40, "%s", st == 202 ? member(r, 0, "id", v, sizeof(v)) : "");
    return st;
}

/* The state of job id as key's tenant sees it, into state (32 bytes). */
static const char *job_state(const struct th_server *s, const char *key, const char *id,
                             char *state)
{
    char path[96];
    struct th_resp r;
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    req(s, "GET", path, key, NULL, NULL, NULL, &r);
    member(&r, 0, "state", state, 32);
    th_resp_free(&r);
    return state;
}

static int wait_state(const struct th_server *s, const char *key, const char *id, const char *want)
{
    char state[32];
    for (double t0 = th_now(); th_now() - t0 < 60; th_sleep_ms(50))
        if (!strcmp(job_state(s, key, id, state), want))
            return 0;
    return -1;
}

/* The value of series `name` (labels and all) in /metrics, -1 when absent. */
static double series(const struct th_server *s, const char *name)
{
    struct th_resp r;
    double v = -1;
    size_t n = strlen(name);
    if (th_get(s, "/metrics", &r) == 200 && r.body)
        for (const char *line = r.body; *line;) {
            if (!strncmp(line, name, n) && line[n] == ' ')
                v = strtod(line + n + 1, NULL);
            const char *nl = strchr(line, '\n');
            line = nl ? nl + 1 : line + strlen(line);
        }
    th_resp_free(&r);
    return v;
}

#define QUOTA 4000

TM_TEST(http_quota_tenants)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    char alpha[128], beta[128], cid[40], cid_b[40], x[40], v[160], code[64];
    char a1[40], a2[40], a3[40], b1[40];
    struct th_resp r;
    REQUIRE(th_tmpdir(&s) == 0);
    REQUIRE(make_key(s.dir, "alpha", alpha) == 0);
    REQUIRE(make_key(s.dir, "beta", beta) == 0);
    if (th_start(&s, "--workers", "2", "--quota-stored-bytes", "4000", "--quota-queued", "2",
                 "--quota-running", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    /* About 2.4 kB of text: one corpus fits the quota, two do not. */
    size_t len;
    char *docs = th_corpus_big(70, 10, 60, &len);
    REQUIRE(docs != NULL);
    long long bytes = 0, bytes_b = 0, none = 0;
    CHECK_INT_EQ(upload(&s, alpha, docs, 0, cid, &bytes, &r), 201);
    th_resp_free(&r);
    REQUIRE(bytes > QUOTA / 2 && bytes + 800 < QUOTA);

    /* With a Content-Length the second is refused before it is read. */
    CHECK_INT_EQ(upload(&s, alpha, docs, 0, x, &none, &r), 413);
    CHECK_STR_EQ(th_error_code(&r, code, sizeof(code)), "quota_exceeded");
    CHECK_STR_EQ(member(&r, 1, "quota", v, sizeof(v)), "stored_bytes");
    CHECK_STR_EQ(member(&r, 1, "tenant", v, sizeof(v)), "alpha");
    CHECK_INT_EQ(atoll(member(&r, 1, "limit", v, sizeof(v))), QUOTA);
    CHECK_INT_EQ(atoll(member(&r, 1, "used", v, sizeof(v))), bytes);
    CHECK(strstr(member(&r, 1, "message", v, sizeof(v)), "this upload of") != NULL);
    th_resp_free(&r);
    /* Streamed without one, it is refused once read, and nothing of it
     * stays: alpha lists one corpus, and its use has not moved. */
    CHECK_INT_EQ(upload(&s, alpha, docs, 1, x, &none, &r), 413);
    CHECK_STR_EQ(member(&r, 1, "quota", v, sizeof(v)), "stored_bytes");
    CHECK(strstr(member(&r, 1, "message", v, sizeof(v)), "an upload of") != NULL);
    CHECK_INT_EQ(atoll(member(&r, 1, "used", v, sizeof(v))), bytes);
    th_resp_free(&r);
    CHECK_INT_EQ(req(&s, "GET", "/v1/corpora", alpha, NULL, NULL, NULL, &r), 200);
    cJSON *list = th_json(&r);
    CHECK_INT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(list, "corpora")), 1);
    cJSON_Delete(list);
    th_resp_free(&r);
    /* Inline documents count as stored bytes too. */
    size_t ilen = 2000;
    char *inline_spec = malloc(ilen + 200);
    REQUIRE(inline_spec != NULL);
    int off = snprintf(inline_spec, 200,
                       "{\"model\":{\"method\":\"nmf\",\"n_topics\":2},"
                       "\"documents\":[\"");
    memset(inline_spec + off, 'a', ilen);
    snprintf(inline_spec + off + ilen, 200, " b c\",\"d e f\"]}");
    CHECK_INT_EQ(submit(&s, alpha, inline_spec, x, &r), 413);
    CHECK_STR_EQ(member(&r, 1, "quota", v, sizeof(v)), "stored_bytes");
    th_resp_free(&r);
    /* beta is not held back by alpha's use. */
    CHECK_INT_EQ(upload(&s, beta, docs, 0, cid_b, &bytes_b, &r), 201);
    th_resp_free(&r);
    free(docs);

    /* Running: alpha's second job waits with a worker free; beta's runs. */
    char spec[256], state[32];
    snprintf(spec, sizeof(spec), "{\"corpus_id\":\"%s\",\"model\":%s}", cid, TH_ENDLESS_MODEL);
    CHECK_INT_EQ(submit(&s, alpha, spec, a1, &r), 202);
    th_resp_free(&r);
    CHECK_INT_EQ(wait_state(&s, alpha, a1, "running"), 0);
    CHECK_INT_EQ(submit(&s, alpha, spec, a2, &r), 202);
    th_resp_free(&r);
    th_sleep_ms(1500);
    CHECK_STR_EQ(job_state(&s, alpha, a2, state), "queued");
    char spec_b[256];
    snprintf(spec_b, sizeof(spec_b), "{\"corpus_id\":\"%s\",\"model\":%s}", cid_b,
             TH_ENDLESS_MODEL);
    CHECK_INT_EQ(submit(&s, beta, spec_b, b1, &r), 202);
    th_resp_free(&r);
    CHECK_INT_EQ(wait_state(&s, beta, b1, "running"), 0);
    CHECK_STR_EQ(job_state(&s, alpha, a2, state), "queued");

    /* Queued: alpha's second queued job fills its quota of 2; the next is
     * 429 with Retry-After, naming the quota; beta may still queue. */
    CHECK_INT_EQ(submit(&s, alpha, spec, a3, &r), 202);
    th_resp_free(&r);
    CHECK_INT_EQ(submit(&s, alpha, spec, x, &r), 429);
    CHECK(r.retry_after[0] != 0);
    CHECK_STR_EQ(th_error_code(&r, code, sizeof(code)), "quota_exceeded");
    CHECK_STR_EQ(member(&r, 1, "quota", v, sizeof(v)), "queued_jobs");
    CHECK_INT_EQ(atoll(member(&r, 1, "limit", v, sizeof(v))), 2);
    CHECK_INT_EQ(atoll(member(&r, 1, "used", v, sizeof(v))), 2);
    th_resp_free(&r);
    CHECK_INT_EQ(submit(&s, beta, spec_b, x, &r), 202);
    th_resp_free(&r);

    /* /metrics: each tenant's use (read every few seconds: wait for it). */
    double t0 = th_now();
    while (th_now() - t0 < 15 &&
           series(&s, "topicd_tenant_jobs{tenant=\"alpha\",state=\"queued\"}") != 2)
        th_sleep_ms(250);
    CHECK(series(&s, "topicd_tenant_jobs{tenant=\"alpha\",state=\"queued\"}") == 2);
    CHECK(series(&s, "topicd_tenant_jobs{tenant=\"alpha\",state=\"running\"}") == 1);
    CHECK(series(&s, "topicd_tenant_jobs{tenant=\"beta\",state=\"running\"}") == 1);
    CHECK(series(&s, "topicd_tenant_jobs{tenant=\"other\",state=\"queued\"}") == 0);
    double stored_a = series(&s, "topicd_tenant_stored_bytes{tenant=\"alpha\"}");
    CHECK(stored_a > (double)bytes && stored_a < (double)bytes + 800); /* + the 3 specs */
    CHECK(series(&s, "topicd_tenant_stored_bytes{tenant=\"beta\"}") > (double)bytes_b);

    /* Cancelling alpha's running job lets its next one run. */
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s:cancel", a1);
    CHECK(req(&s, "POST", path, alpha, NULL, NULL, NULL, NULL) / 100 == 2);
    CHECK_INT_EQ(wait_state(&s, alpha, a2, "running"), 0);
    CHECK_STR_EQ(job_state(&s, alpha, a3, state), "queued");
    const char *ids[4] = {a2, a3, b1, x};
    const char *keys[4] = {alpha, alpha, beta, beta};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "/v1/jobs/%s:cancel", ids[i]);
        req(&s, "POST", path, keys[i], NULL, NULL, NULL, NULL);
    }
    free(inline_spec);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}
