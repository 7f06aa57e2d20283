/*
 * test_http_coherence.c - model.coherence through the server: a job on an
 * uploaded corpus, the same job again (its matrix then comes from the cache,
 * without the texts, which the worker reads again), and the same documents
 * inline all give the same scores; a bad spec is refused at submission.
 */
#include "fixture.h"
#include "http_helpers.h"

static const char SPEC_TAIL[] =
    "\"vectorizer\":{\"stop_words\":\"english\",\"min_df\":2},"
    "\"model\":{\"method\":\"nmf\",\"n_topics\":3,\"n_top_words\":5,"
    "\"coherence\":[\"c_v\",\"u_mass\",\"c_uci\",\"c_npmi\"]},\"seed\":1}";

/* The result's "coherence" object, printed (owned), or NULL. */
static char *job_coherence(struct tm_test_ctx *t, const struct th_server *s, const char *spec)
{
    char jid[40], state[32], path[128];
    CHECK_INT_EQ(th_submit(s, spec, NULL, jid), 202);
    CHECK_STR_EQ(th_wait_job(s, jid, 60, state), "succeeded");
    snprintf(path, sizeof(path), "/v1/jobs/%s/result", jid);
    struct th_resp r;
    char *out = NULL;
    CHECK_INT_EQ(th_get(s, path, &r), 200);
    cJSON *j = th_json(&r);
    cJSON *c = cJSON_GetObjectItem(j, "coherence");
    if (c)
        out = cJSON_PrintUnformatted(c);
    CHECK(th_num(cJSON_GetObjectItem(j, "timings"), "coherence") >= 0);
    cJSON_Delete(j);
    th_resp_free(&r);
    return out;
}

TM_TEST(http_coherence)
{
    char *text = tm_test_read_fixture("text/coherence.json", NULL);
    REQUIRE(text);
    cJSON *fx = cJSON_Parse(text);
    free(text);
    REQUIRE(fx);
    cJSON *docs = cJSON_GetObjectItem(fx, "documents");
    /* JSON Lines for the upload; a JSON array for the inline job. */
    size_t cap = 1 << 16, n = 0;
    char *jl = malloc(cap);
    for (cJSON *d = docs->child; d; d = d->next) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "text", d->valuestring);
        char *line = cJSON_PrintUnformatted(o);
        n += (size_t)snprintf(jl + n, cap - n, "%s\n", line);
        cJSON_free(line);
        cJSON_Delete(o);
    }
    char *inline_docs = cJSON_PrintUnformatted(docs);

    struct th_server s;
    REQUIRE(th_tmpdir(&s) == 0);
    REQUIRE(th_start(&s, NULL) == 0);
    char cid[40];
    CHECK_INT_EQ(th_upload(&s, "application/x-ndjson", jl, n, cid), 201);

    char spec[8192];
    snprintf(spec, sizeof(spec), "{\"corpus_id\":\"%s\",%s", cid, SPEC_TAIL);
    char *first = job_coherence(t, &s, spec);
    char *cached = job_coherence(t, &s, spec);
    snprintf(spec, sizeof(spec), "{\"documents\":%s,%s", inline_docs, SPEC_TAIL);
    char *inl = job_coherence(t, &s, spec);
    CHECK(first && strstr(first, "\"c_v\":{\"mean\":") && strstr(first, "\"u_mass\":"));
    CHECK(first && cached && !strcmp(first, cached));
    CHECK(first && inl && !strcmp(first, inl));

    /* Refused at submission, naming the field. */
    struct th_resp r;
    char code[64];
    snprintf(spec, sizeof(spec),
             "{\"corpus_id\":\"%s\",\"model\":{\"n_top_words\":1,\"coherence\":\"c_v\"}}", cid);
    CHECK_INT_EQ(th_request(&s, "POST", "/v1/jobs", "application/json", spec, &r), 422);
    cJSON *j = th_json(&r);
    CHECK(j && th_str(j, "error.field") && !strcmp(th_str(j, "error.field"), "model.coherence"));
    CHECK(j && th_str(j, "error.message") &&
          strstr(th_str(j, "error.message"), "n_top_words >= 2"));
    cJSON_Delete(j);
    th_error_code(&r, code, sizeof(code));
    th_resp_free(&r);

    CHECK_INT_EQ(th_stop(&s), 0);
    th_cleanup(&s);
    free(first);
    free(cached);
    free(inl);
    free(inline_docs);
    free(jl);
    cJSON_Delete(fx);
}
