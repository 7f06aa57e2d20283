/*
 * test_http.c - `topicd serve` end to end over HTTP: health, the contract,
 * corpora, the job flow against `topicd fit`, every error status with its
 * JSON body, hostile bodies and clients, idempotency, pagination.
 * Each test starts its own server on a free port with a temporary data dir.
 */
#include "http_helpers.h"

#define DOCS6                                                                                      \
    "{\"documents\":[\"the cat sat on the mat\",\"dogs and cats are pets\","                       \
    "\"the stock market fell today\",\"investors sold stocks and bonds\","                         \
    "\"cats chase mice\",\"bond yields rose as markets fell\"]}"

static int start(struct tm_test_ctx *t, struct th_server *s)
{
    memset(s, 0, sizeof(*s));
    if (th_tmpdir(s) || th_start(s, "--workers", "2", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start (log %s)", s->log);
        return -1;
    }
    return 0;
}

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

static void expect_error(struct tm_test_ctx *t, int line, const struct th_server *s,
                         const char *method, const char *path, const char *ctype, const char *body,
                         size_t len, long want_status, const char *want_code,
                         const char *want_field)
{
    struct th_resp r;
    long st = th_request_h(s, method, path, ctype, body, len, NULL, &r);
    cJSON *j = th_json(&r);
    const char *code = j ? th_str(j, "error.code") : NULL;
    const char *field = j ? th_str(j, "error.field") : NULL;
    const char *msg = j ? th_str(j, "error.message") : NULL;
    if (st != want_status || !code || (want_code && strcmp(code, want_code)) || !msg ||
        (want_field && (!field || strcmp(field, want_field))))
        tm_test_fail(t, __FILE__, line, "%s %s: got %ld %s, want %ld %s field %s", method, path, st,
                     r.body ? r.body : "(no body)", want_status, want_code ? want_code : "*",
                     want_field ? want_field : "-");
    if (strncmp(r.content_type, "application/json", 16))
        tm_test_fail(t, __FILE__, line, "%s %s: content type '%s'", method, path, r.content_type);
    cJSON_Delete(j);
    th_resp_free(&r);
}

#define EXPECT_ERROR(method, path, ctype, body, status, code, field)                               \
    expect_error(t, __LINE__, &s, method, path, ctype, body, slen(body), status, code, field)

TM_TEST(http_health_and_contract)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    if (th_tmpdir(&s) || th_start(&s, "--workers", "2", "--gpu", "auto", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start (log %s)", s.log);
        goto out;
    }
    struct th_resp r;
    CHECK_INT_EQ(th_get(&s, "/healthz", &r), 200);
    CHECK(r.body && strstr(r.body, "\"ok\""));
    CHECK(r.request_id[0]);
    th_resp_free(&r);
    CHECK_INT_EQ(th_get(&s, "/readyz", &r), 200);
    th_resp_free(&r);
    const char *rid[] = {"X-Request-Id: test-req-42", NULL};
    CHECK_INT_EQ(th_request_h(&s, "GET", "/healthz", NULL, NULL, 0, rid, &r), 200);
    CHECK_STR_EQ(r.request_id, "test-req-42");
    th_resp_free(&r);
    CHECK_INT_EQ(th_get(&s, "/v1/openapi.yaml", &r), 200);
    CHECK(r.body && !strncmp(r.body, "openapi: 3", 10));
    CHECK(r.body && strstr(r.body, "/v1/jobs/{id}/document-topics"));
    th_resp_free(&r);
    CHECK_INT_EQ(th_request(&s, "HEAD", "/healthz", NULL, NULL, NULL), 200);
    CHECK_INT_EQ(th_get(&s, "/metrics", &r), 200);
    CHECK(r.body &&
          strstr(r.body, "topicd_http_requests_total{route=\"/healthz\",status=\"200\"}"));
    CHECK(r.body && strstr(r.body, "topicd_http_request_duration_seconds_bucket"));
    CHECK(r.body && strstr(r.body, "topicd_queue_depth 0"));
    CHECK(r.body && strstr(r.body, "topicd_workers 2"));
    CHECK(r.body && strstr(r.body, "topicd_job_duration_seconds_count{method=\"nmf\"}"));
    CHECK(!strncmp(r.content_type, "text/plain", 10));
    th_resp_free(&r);
    /* /v1/info: workers, store, GPUs; "device": "gpu" without one is 422. */
    CHECK_INT_EQ(th_get(&s, "/v1/info", &r), 200);
    cJSON *info = th_json(&r);
    cJSON *gpu = cJSON_GetObjectItem(info, "gpu");
    CHECK(info && th_num(info, "workers") == 2 && th_str(info, "store"));
    CHECK(cJSON_IsBool(cJSON_GetObjectItem(gpu, "available")));
    CHECK(cJSON_IsArray(cJSON_GetObjectItem(gpu, "devices")));
    if (cJSON_IsFalse(cJSON_GetObjectItem(gpu, "available"))) {
        CHECK(th_str(gpu, "reason") != NULL);
        struct th_resp e;
        CHECK_INT_EQ(th_request(&s, "POST", "/v1/jobs", "application/json",
                                "{\"documents\":[\"a b\",\"c d\"],\"device\":\"gpu\","
                                "\"model\":{\"method\":\"nmf\",\"n_topics\":1}}",
                                &e),
                     422);
        char code[64];
        CHECK_STR_EQ(th_error_code(&e, code, sizeof(code)), "no_device");
        th_resp_free(&e);
    }
    cJSON_Delete(info);
    th_resp_free(&r);
    CHECK_INT_EQ(th_get(&s, "/metrics", &r), 200);
    CHECK(r.body && strstr(r.body, "topicd_gpu_available "));
    th_resp_free(&r);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}

TM_TEST(http_corpora)
{
    struct th_server s;
    if (start(t, &s))
        goto out;
    char id[40], id2[40], id3[40], id4[40];
    struct th_resp r;
    /* JSON, both shapes. */
    CHECK_INT_EQ(th_upload(&s, "application/json", DOCS6, strlen(DOCS6), id), 201);
    const char *arr = "[{\"id\":\"a\",\"text\":\"alpha beta\"},{\"id\":\"b\",\"text\":\"gamma\"}]";
    CHECK_INT_EQ(th_upload(&s, "application/json; charset=utf-8", arr, strlen(arr), id2), 201);
    /* JSON Lines and plain lines stream. */
    size_t len;
    char *jl = th_corpus_jsonl(50, 20, 1, &len);
    CHECK_INT_EQ(th_upload(&s, "application/x-ndjson", jl, len, id3), 201);
    const char *lines = "first line here\r\nsecond line\n\nfourth";
    CHECK_INT_EQ(th_upload(&s, "text/plain", lines, strlen(lines), id4), 201);

    char path[128];
    snprintf(path, sizeof(path), "/v1/corpora/%s", id3);
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    cJSON *j = th_json(&r);
    CHECK(j && th_num(j, "n_documents") == 50);
    cJSON_Delete(j);
    th_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/corpora/%s", id4);
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    j = th_json(&r);
    CHECK(j && th_num(j, "n_documents") == 4);
    cJSON_Delete(j);
    th_resp_free(&r);

    /* Location of a creation. */
    CHECK_INT_EQ(th_request(&s, "POST", "/v1/corpora", "text/plain", "one\ntwo\n", &r), 201);
    CHECK(!strncmp(r.location, "/v1/corpora/c_", 14));
    th_resp_free(&r);

    /* multipart/form-data: a .jsonl file part. */
    {
        CURL *c = curl_easy_init();
        curl_mime *mime = curl_mime_init(c);
        curl_mimepart *part = curl_mime_addpart(mime);
        curl_mime_name(part, "file");
        curl_mime_filename(part, "corpus.jsonl");
        curl_mime_data(part, jl, len);
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/corpora", s.port);
        memset(&r, 0, sizeof(r));
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, th_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
        long code = 0;
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        CHECK_INT_EQ(code, 201);
        j = th_json(&r);
        CHECK(j && th_num(j, "n_documents") == 50);
        cJSON_Delete(j);
        th_resp_free(&r);
        curl_mime_free(mime);
        curl_easy_cleanup(c);
    }
    /* The form field "file" with no file name (a form filled from a string)
     * is the file too; other fields are not. */
    {
        const char *ct = "multipart/form-data; boundary=XyZ";
        const char file[] = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n"
                            "one doc\ntwo docs\n\r\n--XyZ--\r\n";
        CHECK_INT_EQ(th_request(&s, "POST", "/v1/corpora", ct, file, &r), 201);
        j = th_json(&r);
        CHECK(j && th_num(j, "n_documents") == 2);
        cJSON_Delete(j);
        /* Gone again, so that the pages below count the same corpora. */
        CHECK_INT_EQ(th_request(&s, "DELETE", r.location, NULL, NULL, NULL), 204);
        th_resp_free(&r);
        const char other[] = "--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n"
                             "one doc\n\r\n--XyZ--\r\n";
        CHECK_INT_EQ(th_request(&s, "POST", "/v1/corpora", ct, other, &r), 400);
        th_resp_free(&r);
    }

    /* Append: visible as a whole. */
    snprintf(path, sizeof(path), "/v1/corpora/%s/documents", id2);
    CHECK_INT_EQ(th_request(&s, "POST", path, "application/x-ndjson",
                            "{\"text\":\"delta epsilon\"}\n{\"text\":\"zeta\"}\n", &r),
                 200);
    j = th_json(&r);
    CHECK(j && th_num(j, "n_documents") == 4);
    cJSON_Delete(j);
    th_resp_free(&r);
    /* A failed append adds nothing. */
    CHECK_INT_EQ(th_request(&s, "POST", path, "application/x-ndjson",
                            "{\"text\":\"fine\"}\n{\"text\": 3}\n", NULL),
                 422);
    snprintf(path, sizeof(path), "/v1/corpora/%s", id2);
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    j = th_json(&r);
    CHECK(j && th_num(j, "n_documents") == 4);
    cJSON_Delete(j);
    th_resp_free(&r);

    /* Pagination: 6 corpora, pages of 4. */
    CHECK_INT_EQ(th_get(&s, "/v1/corpora?limit=4", &r), 200);
    j = th_json(&r);
    cJSON *list = cJSON_GetObjectItem(j, "corpora");
    CHECK_INT_EQ(cJSON_GetArraySize(list), 4);
    const char *next = th_str(j, "next");
    REQUIRE(next);
    snprintf(path, sizeof(path), "/v1/corpora?limit=4&after=%s", next);
    cJSON_Delete(j);
    th_resp_free(&r);
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    j = th_json(&r);
    CHECK_INT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "corpora")), 2);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "next")));
    cJSON_Delete(j);
    th_resp_free(&r);

    /* Delete, then it is gone. */
    snprintf(path, sizeof(path), "/v1/corpora/%s", id4);
    CHECK_INT_EQ(th_request(&s, "DELETE", path, NULL, NULL, NULL), 204);
    CHECK_INT_EQ(th_get(&s, path, NULL), 404);
    CHECK_INT_EQ(th_request(&s, "DELETE", path, NULL, NULL, NULL), 404);
    free(jl);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}

TM_TEST(http_errors)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    if (th_tmpdir(&s) ||
        th_start(&s, "--workers", "1", "--max-json-bytes", "4096", "--max-body-bytes", "65536",
                 "--max-doc-bytes", "1024", "--max-inline-docs", "3", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    char cid[40];
    REQUIRE(th_upload(&s, "application/json", DOCS6, strlen(DOCS6), cid) == 201);
    char spec[512];

    /* 404 */
    EXPECT_ERROR("GET", "/nope", NULL, NULL, 404, "not_found", NULL);
    EXPECT_ERROR("GET", "/v1/jobs/j_doesnotexist", NULL, NULL, 404, "not_found", NULL);
    EXPECT_ERROR("GET", "/v1/jobs/bad%20id", NULL, NULL, 404, "not_found", NULL);
    EXPECT_ERROR("GET", "/v1/corpora/c_nope", NULL, NULL, 404, "not_found", NULL);
    EXPECT_ERROR("POST", "/v1/corpora/c_nope/documents", "text/plain", "x", 404, "not_found", NULL);
    EXPECT_ERROR("POST", "/v1/jobs", "application/json",
                 "{\"corpus_id\":\"c_nope\",\"model\":{\"method\":\"nmf\",\"n_topics\":2}}", 404,
                 "not_found", "corpus_id");
    /* 405 with Allow */
    struct th_resp r;
    CHECK_INT_EQ(th_request(&s, "PUT", "/v1/jobs", "application/json", "{}", &r), 405);
    CHECK_STR_EQ(r.allow, "GET, HEAD, POST");
    th_resp_free(&r);
    EXPECT_ERROR("PATCH", "/v1/corpora/c_x", "application/json", "{}", 405, "method_not_allowed",
                 NULL);
    EXPECT_ERROR("GET", "/v1/jobs/j_x:cancel", NULL, NULL, 405, "method_not_allowed", NULL);
    /* 415 */
    EXPECT_ERROR("POST", "/v1/corpora", "application/xml", "<a/>", 415, "unsupported_media_type",
                 NULL);
    EXPECT_ERROR("POST", "/v1/corpora", NULL, "abc", 415, "unsupported_media_type", NULL);
    EXPECT_ERROR("POST", "/v1/corpora", "text/plain; charset=latin1", "abc", 415,
                 "unsupported_media_type", NULL);
    EXPECT_ERROR("POST", "/v1/jobs", "text/plain", "{}", 415, "unsupported_media_type", NULL);
    /* 413: by Content-Length, and while streaming */
    char *big = malloc(70000);
    memset(big, 'a', 69999);
    big[69999] = 0;
    for (int i = 100; i < 69999; i += 100)
        big[i] = '\n';
    EXPECT_ERROR("POST", "/v1/jobs", "application/json", big, 413, "too_large", NULL);
    EXPECT_ERROR("POST", "/v1/corpora", "text/plain", big, 413, "too_large", NULL);
    big[2000] = 0;
    for (int i = 0; i < 2000; i++)
        big[i] = 'b';
    EXPECT_ERROR("POST", "/v1/corpora", "text/plain", big, 413, "too_large", "line 1");
    free(big);
    /* 400: malformed JSON with a position, bad UTF-8, bad parameters */
    struct th_resp e;
    CHECK_INT_EQ(th_request(&s, "POST", "/v1/jobs", "application/json", "{\"model\": {,}}", &e),
                 400);
    cJSON *j = th_json(&e);
    CHECK(j && th_str(j, "error.code") && !strcmp(th_str(j, "error.code"), "malformed_input"));
    CHECK(j && cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "offset")));
    cJSON_Delete(j);
    th_resp_free(&e);
    EXPECT_ERROR("POST", "/v1/corpora", "application/json", "{\"documents\": [\"a\",]}", 400,
                 "malformed_input", NULL);
    EXPECT_ERROR("POST", "/v1/corpora", "application/x-ndjson",
                 "{\"text\":\"ok\"}\n{\"text\":\"bad \xff\xfe here\"}\n", 400, "malformed_input",
                 "line 2");
    EXPECT_ERROR("POST", "/v1/corpora", "text/plain", "fine\nbad \xc3\x28\n", 400,
                 "malformed_input", "line 2");
    EXPECT_ERROR("POST", "/v1/jobs", "application/json",
                 "{\"documents\":[\"ok\",\"bad \xe2\x82\"],\"model\":{\"method\":\"nmf\","
                 "\"n_topics\":1}}",
                 400, "malformed_input", "documents[1]");
    EXPECT_ERROR("GET", "/v1/jobs?limit=0", NULL, NULL, 400, "invalid_parameter", "limit");
    EXPECT_ERROR("GET", "/v1/jobs?limit=abc", NULL, NULL, 400, "invalid_parameter", "limit");
    EXPECT_ERROR("GET", "/v1/jobs?state=done", NULL, NULL, 400, "invalid_parameter", "state");
    /* A parameter given empty is a bad value, not an absent one (the spec's
     * schemas say so: schemathesis sends them). */
    EXPECT_ERROR("GET", "/v1/jobs?limit=", NULL, NULL, 400, "invalid_parameter", "limit");
    EXPECT_ERROR("GET", "/v1/jobs?state=", NULL, NULL, 400, "invalid_parameter", "state");
    EXPECT_ERROR("GET", "/v1/jobs?after=", NULL, NULL, 400, "invalid_parameter", "after");
    EXPECT_ERROR("GET", "/v1/corpora?after=c%21x", NULL, NULL, 400, "invalid_parameter", "after");
    /* A well-formed cursor naming no record (deleted since, or never listed). */
    EXPECT_ERROR("GET", "/v1/corpora?after=c_unknown", NULL, NULL, 404, "not_found", "after");
    /* 422: invalid specs name the field */
    snprintf(spec, sizeof(spec),
             "{\"corpus_id\":\"%s\",\"model\":{\"method\":\"nmf\",\"n_topics\":0}}", cid);
    EXPECT_ERROR("POST", "/v1/jobs", "application/json", spec, 422, "invalid_spec",
                 "model.n_topics");
    snprintf(spec, sizeof(spec),
             "{\"corpus_id\":\"%s\",\"model\":{\"method\":\"nmf\",\"n_topics\":7}}", cid);
    EXPECT_ERROR("POST", "/v1/jobs", "application/json", spec, 422, "invalid_spec",
                 "model.n_topics");
    snprintf(spec, sizeof(spec),
             "{\"corpus_id\":\"%s\",\"model\":{\"method\":\"lda\",\"n_topics\":2}}", cid);
    EXPECT_ERROR("POST", "/v1/jobs", "application/json", spec, 422, "invalid_spec", "model.method");
    snprintf(spec, sizeof(spec),
             "{\"corpus_id\":\"%s\",\"vectorizer\":{\"min_df\":5,\"max_df\":2},"
             "\"model\":{\"method\":\"nmf\",\"n_topics\":2}}",
             cid);
    EXPECT_ERROR("POST", "/v1/jobs", "application/json", spec, 422, NULL, NULL);
    snprintf(spec, sizeof(spec),
             "{\"corpus_id\":\"%s\",\"model\":{\"method\":\"nmf\",\"n_topics\":2},"
             "\"colour\":1}",
             cid);
    EXPECT_ERROR("POST", "/v1/jobs", "application/json", spec, 422, "invalid_spec", "colour");
    EXPECT_ERROR("POST", "/v1/jobs", "application/json",
                 "{\"model\":{\"method\":\"nmf\",\"n_topics\":2}}", 422, "invalid_spec",
                 "corpus_id");
    snprintf(spec, sizeof(spec), "{\"corpus_id\":\"%s\"}", cid);
    EXPECT_ERROR("POST", "/v1/jobs", "application/json", spec, 422, "invalid_spec", "model");
    EXPECT_ERROR("POST", "/v1/jobs", "application/json",
                 "{\"documents\":[],\"model\":{\"method\":\"nmf\",\"n_topics\":1}}", 422,
                 "empty_corpus", "documents");
    /* Too many inline documents. */
    EXPECT_ERROR("POST", "/v1/jobs", "application/json",
                 "{\"documents\":[\"a\",\"b\",\"c\",\"d\"],\"model\":{\"method\":\"nmf\","
                 "\"n_topics\":1}}",
                 413, "too_large", NULL);
    /* A corpus of stop words only: accepted, then the job fails saying why. */
    char jid[40], state[32];
    CHECK_INT_EQ(th_submit(&s,
                           "{\"documents\":[\"the and of\",\"a the\"],\"vectorizer\":"
                           "{\"stop_words\":\"english\"},\"model\":{\"method\":\"nmf\","
                           "\"n_topics\":1}}",
                           NULL, jid),
                 202);
    CHECK_STR_EQ(th_wait_job(&s, jid, 60, state), "failed");
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", jid);
    CHECK_INT_EQ(th_get(&s, path, &e), 200);
    j = th_json(&e);
    CHECK(j && th_str(j, "error.code") && !strcmp(th_str(j, "error.code"), "no_terms"));
    cJSON_Delete(j);
    th_resp_free(&e);
    /* 409: the result of a job that failed. */
    snprintf(path, sizeof(path), "/v1/jobs/%s/result", jid);
    EXPECT_ERROR("GET", path, NULL, NULL, 409, "job_not_finished", NULL);
    snprintf(path, sizeof(path), "/v1/jobs/%s:cancel", jid);
    EXPECT_ERROR("POST", path, NULL, NULL, 409, "job_finished", NULL);
    /* Bad Idempotency-Key. */
    const char *badkey[] = {"Idempotency-Key: has space", NULL};
    snprintf(spec, sizeof(spec),
             "{\"corpus_id\":\"%s\",\"model\":{\"method\":\"nmf\",\"n_topics\":2}}", cid);
    CHECK_INT_EQ(
        th_request_h(&s, "POST", "/v1/jobs", "application/json", spec, strlen(spec), badkey, NULL),
        400);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}

/* Bodies cut short, garbage, slow clients: the server answers or drops
 * them, and keeps serving everyone else. */
TM_TEST(http_hostile_clients)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    if (th_tmpdir(&s) || th_start(&s, "--workers", "1", "--connection-timeout", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    char buf[4096];
    /* Truncated: Content-Length says 100, 10 bytes come, then EOF. */
    const char trunc[] = "POST /v1/corpora HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                         "Content-Length: 100\r\n\r\n0123456789";
    th_raw(&s, trunc, sizeof(trunc) - 1, 1, buf, sizeof(buf), 5);
    /* Nothing was created by it. */
    struct th_resp r;
    CHECK_INT_EQ(th_get(&s, "/v1/corpora", &r), 200);
    CHECK(r.body && strstr(r.body, "\"corpora\":[]"));
    th_resp_free(&r);
    /* Garbage request line. */
    const char junk[] = "\x16\x03\x01 not http at all\r\n\r\n";
    th_raw(&s, junk, sizeof(junk) - 1, 0, buf, sizeof(buf), 5);
    CHECK(strncmp(buf, "HTTP/1.1 200", 12));
    /* Slow client: half a request line, then silence; the connection
     * timeout (1 s) closes it while other clients are served at once. */
    double t0 = th_now();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)s.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(send(fd, "GET /healthz HT", 15, MSG_NOSIGNAL) == 15);
    CHECK_INT_EQ(th_get(&s, "/healthz", NULL), 200);
    CHECK(th_now() - t0 < 1.0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    CHECK(n <= 0); /* closed by the server, no response */
    CHECK(th_now() - t0 < 9);
    close(fd);
    /* A body trickling in slower than the timeout is cut off too. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    const char head[] = "POST /v1/corpora HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                        "Content-Length: 1000\r\n\r\nabc";
    CHECK(send(fd, head, sizeof(head) - 1, MSG_NOSIGNAL) > 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    n = recv(fd, buf, sizeof(buf), 0);
    CHECK(n <= 0);
    close(fd);
    CHECK_INT_EQ(th_get(&s, "/v1/corpora", &r), 200);
    CHECK(r.body && strstr(r.body, "\"corpora\":[]"));
    th_resp_free(&r);
    CHECK_INT_EQ(th_get(&s, "/readyz", NULL), 200);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}

/* Sends head, then body in blocking writes of 64 KiB as Python's http.client
 * does, and only then reads the answer until the server closes, into buf.
 * Returns the bytes read, or -1 with errno when a write failed. */
static int send_then_read(const struct th_server *s, const char *head, const char *body, size_t len,
                          char *buf, size_t size)
{
    int fd = th_connect(s);
    if (fd < 0)
        return -1;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int rc = 0;
    if (send(fd, head, strlen(head), MSG_NOSIGNAL) < 0)
        rc = -1;
    for (size_t off = 0; !rc && off < len;) {
        size_t n = len - off < 65536 ? len - off : 65536;
        ssize_t w = send(fd, body + off, n, MSG_NOSIGNAL);
        if (w < 0)
            rc = -1;
        else
            off += (size_t)w;
    }
    size_t got = 0;
    while (!rc && got + 1 < size) {
        ssize_t n = recv(fd, buf + got, size - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc ? -1 : (int)got;
}

/* A client that writes its whole body before it reads (Python's urllib, most
 * clients but curl) must still read an early rejection: the server drains
 * the body it refused instead of closing on it (http.c's lingering). Each
 * upload is 8 times the limit; a server that closes early makes a write fail
 * (EPIPE or ECONNRESET), as Python's urllib reports "Broken pipe". */
TM_TEST(http_rejection_read_by_blocking_client)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    char *body = NULL;
    if (th_tmpdir(&s) || th_start(&s, "--workers", "1", "--max-body-bytes", "1048576", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start (log %s)", s.log);
        goto out;
    }
    const size_t len = (size_t)8 << 20;
    char head[256];
    snprintf(head, sizeof(head),
             "POST /v1/corpora HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
             "Connection: close\r\nContent-Length: %zu\r\n\r\n",
             len);
    body = malloc(len);
    REQUIRE(body);
    memset(body, 'a', len);
    for (size_t i = 80; i < len; i += 80)
        body[i] = '\n';
    int ok = 0;
    char buf[4096], first[512] = "";
    for (int i = 0; i < 50; i++) {
        int n = send_then_read(&s, head, body, len, buf, sizeof(buf));
        const char *json = n > 0 ? strstr(buf, "\r\n\r\n") : NULL;
        if (n > 0 && !strncmp(buf, "HTTP/1.1 413 ", 13) && json &&
            strstr(json, "\"code\":\"too_large\""))
            ok++;
        else if (!first[0])
            snprintf(first, sizeof(first), "upload %d: %.200s", i, n < 0 ? strerror(errno) : buf);
    }
    if (ok != 50)
        tm_test_fail(t, __FILE__, __LINE__, "%d of 50 uploads read their 413; first miss: %s", ok,
                     first);
    CHECK_INT_EQ(th_get(&s, "/readyz", NULL), 200);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    free(body);
    th_cleanup(&s);
}

/* Runs `topicd fit` on a file and returns its stdout (malloc'd). */
static char *run_fit(const char *spec, const char *file)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "%s/topicd fit --spec '%s' '%s' 2>/dev/null", tm_test_bindir(), spec,
             file);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    size_t n;
    while (out && (n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *grown = realloc(out, cap *= 2);
            if (!grown)
                free(out);
            out = grown;
        }
    }
    if (out)
        out[len] = 0;
    if (pclose(p) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* Same topics (terms and weights), errors and shapes; timings differ. */
static void compare_results(struct tm_test_ctx *t, const char *a, const char *b)
{
    cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
    REQUIRE(x && y);
    static const char *const keys[] = {"n_documents", "n_features", "nnz",
                                       "n_topics",    "n_iter",     "reconstruction_error"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        CHECK_NEAR(th_num(x, keys[i]), th_num(y, keys[i]), 1e-9);
    char *tx = cJSON_PrintUnformatted(cJSON_GetObjectItem(x, "topics"));
    char *ty = cJSON_PrintUnformatted(cJSON_GetObjectItem(y, "topics"));
    CHECK(tx && ty && !strcmp(tx, ty));
    free(tx);
    free(ty);
    cJSON_Delete(x);
    cJSON_Delete(y);
}

TM_TEST(http_job_flow)
{
    struct th_server s;
    if (start(t, &s))
        goto out;
    size_t len;
    char *jl = th_corpus_jsonl(200, 30, 7, &len);
    char file[400];
    snprintf(file, sizeof(file), "%s/corpus.jsonl", s.dir);
    FILE *f = fopen(file, "w");
    REQUIRE(f);
    fwrite(jl, 1, len, f);
    fclose(f);
    char cid[40];
    REQUIRE(th_upload(&s, "application/x-ndjson", jl, len, cid) == 201);
    free(jl);

    static const char *const models[] = {
        "{\"method\":\"nmf\",\"n_topics\":4}",
        "{\"method\":\"truncated_svd\",\"n_topics\":3}",
        "{\"method\":\"nmf\",\"n_topics\":3,\"solver\":\"mu\"}",
    };
    char first_job[40] = "";
    for (size_t m = 0; m < sizeof(models) / sizeof(models[0]); m++) {
        char spec[1200], cli_spec[1024], jid[40], state[32], path[128];
        snprintf(cli_spec, sizeof(cli_spec),
                 "{\"vectorizer\":{\"stop_words\":\"english\"},\"model\":%s,\"seed\":3}",
                 models[m]);
        snprintf(spec, sizeof(spec), "{\"corpus_id\":\"%s\",%s", cid, cli_spec + 1);
        struct th_resp r;
        CHECK_INT_EQ(th_request(&s, "POST", "/v1/jobs", "application/json", spec, &r), 202);
        cJSON *j = th_json(&r);
        snprintf(jid, sizeof(jid), "%s", j && th_str(j, "id") ? th_str(j, "id") : "");
        cJSON_Delete(j);
        CHECK(!strncmp(r.location, "/v1/jobs/j_", 11));
        CHECK(r.retry_after[0]);
        th_resp_free(&r);
        if (!m)
            snprintf(first_job, sizeof(first_job), "%s", jid);
        CHECK_STR_EQ(th_wait_job(&s, jid, 60, state), "succeeded");
        snprintf(path, sizeof(path), "/v1/jobs/%s", jid);
        CHECK_INT_EQ(th_get(&s, path, &r), 200);
        j = th_json(&r);
        CHECK(j && th_num(j, "progress") == 1);
        CHECK(j && th_str(j, "finished_at"));
        CHECK(j && th_num(j, "attempts") == 1);
        cJSON_Delete(j);
        th_resp_free(&r);
        snprintf(path, sizeof(path), "/v1/jobs/%s/result", jid);
        CHECK_INT_EQ(th_get(&s, path, &r), 200);
        char *cli = run_fit(cli_spec, file);
        CHECK(cli != NULL);
        if (cli && r.body)
            compare_results(t, r.body, cli);
        free(cli);
        th_resp_free(&r);
    }
    /* Document topics, paginated, with the ids of the upload. */
    char path[160];
    snprintf(path, sizeof(path), "/v1/jobs/%s/document-topics?offset=198&limit=5", first_job);
    struct th_resp r;
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    cJSON *j = th_json(&r);
    cJSON *docs = cJSON_GetObjectItem(j, "documents");
    CHECK_INT_EQ(cJSON_GetArraySize(docs), 2);
    CHECK(th_num(j, "n_documents") == 200 && th_num(j, "n_topics") == 4);
    cJSON *d0 = cJSON_GetArrayItem(docs, 0);
    CHECK(d0 && th_str(d0, "id") && !strcmp(th_str(d0, "id"), "d198"));
    CHECK_INT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(d0, "weights")), 4);
    cJSON_Delete(j);
    th_resp_free(&r);

    /* Inline documents. */
    char jid[40], state[32];
    CHECK_INT_EQ(th_submit(&s,
                           "{\"documents\":[{\"id\":\"first\",\"text\":\"cats and dogs\"},"
                           "{\"text\":\"dogs chase cats\"},\"stocks and bonds\",\"bond markets\"],"
                           "\"model\":{\"method\":\"nmf\",\"n_topics\":2}}",
                           NULL, jid),
                 202);
    CHECK_STR_EQ(th_wait_job(&s, jid, 60, state), "succeeded");
    snprintf(path, sizeof(path), "/v1/jobs/%s/document-topics", jid);
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    j = th_json(&r);
    docs = cJSON_GetObjectItem(j, "documents");
    CHECK_INT_EQ(cJSON_GetArraySize(docs), 4);
    d0 = cJSON_GetArrayItem(docs, 0);
    CHECK(d0 && th_str(d0, "id") && !strcmp(th_str(d0, "id"), "first"));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(docs, 1), "id")));
    cJSON_Delete(j);
    th_resp_free(&r);

    /* Listing with a state filter and a cursor. */
    CHECK_INT_EQ(th_get(&s, "/v1/jobs?state=succeeded&limit=2", &r), 200);
    j = th_json(&r);
    CHECK_INT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "jobs")), 2);
    const char *next = th_str(j, "next");
    CHECK(next != NULL);
    snprintf(path, sizeof(path), "/v1/jobs?state=succeeded&limit=2&after=%s", next ? next : "x");
    cJSON_Delete(j);
    th_resp_free(&r);
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    j = th_json(&r);
    CHECK_INT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "jobs")), 2);
    cJSON_Delete(j);
    th_resp_free(&r);
    CHECK_INT_EQ(th_get(&s, "/v1/jobs?state=queued", &r), 200);
    CHECK(r.body && strstr(r.body, "\"jobs\":[]"));
    th_resp_free(&r);

    /* The second job on the same corpus and vectorizer hit the cache. */
    CHECK_INT_EQ(th_get(&s, "/metrics", &r), 200);
    CHECK(r.body && strstr(r.body, "topicd_matrix_cache_hits_total 2"));
    CHECK(r.body && strstr(r.body, "topicd_jobs_finished_total{state=\"succeeded\"} 4"));
    th_resp_free(&r);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}

TM_TEST(http_idempotency)
{
    struct th_server s;
    if (start(t, &s))
        goto out;
    char cid[40], a[40], b[40], c[40], d[40];
    REQUIRE(th_upload(&s, "application/json", DOCS6, strlen(DOCS6), cid) == 201);
    char spec[256], spec2[256];
    snprintf(spec, sizeof(spec),
             "{\"corpus_id\":\"%s\",\"model\":{\"method\":\"nmf\",\"n_topics\":2}}", cid);
    snprintf(spec2, sizeof(spec2),
             "{\"corpus_id\":\"%s\",\"model\":{\"method\":\"nmf\",\"n_topics\":3}}", cid);
    CHECK_INT_EQ(th_submit(&s, spec, "key-1", a), 202);
    CHECK_INT_EQ(th_submit(&s, spec, "key-1", b), 202);
    CHECK_STR_EQ(a, b);
    CHECK_INT_EQ(th_submit(&s, spec2, "key-1", c), 422);
    CHECK_INT_EQ(th_submit(&s, spec, "key-2", d), 202);
    CHECK(strcmp(a, d));
    CHECK_INT_EQ(th_submit(&s, spec, NULL, c), 202);
    CHECK(strcmp(a, c) && strcmp(d, c));
    char state[32];
    CHECK_STR_EQ(th_wait_job(&s, a, 60, state), "succeeded");
    /* Still the same job after it finished, and after a restart. */
    CHECK_INT_EQ(th_submit(&s, spec, "key-1", b), 202);
    CHECK_STR_EQ(a, b);
    CHECK_INT_EQ(th_stop(&s), 0);
    REQUIRE(th_start(&s, "--workers", "1", NULL) == 0);
    CHECK_INT_EQ(th_submit(&s, spec, "key-1", b), 202);
    CHECK_STR_EQ(a, b);
    CHECK_INT_EQ(th_submit(&s, spec2, "key-1", c), 422);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}

/* A JSON body past --max-json-bytes is split into documents as it arrives,
 * with the same results and errors as a small one. */
TM_TEST(http_large_json_upload)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    if (th_tmpdir(&s) || th_start(&s, "--workers", "1", "--max-json-bytes", "300", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    /* 60 documents, strings and objects, with escapes and brackets inside. */
    size_t cap = 1 << 16, len = 0;
    char *body = malloc(cap);
    int64_t text_bytes = 0;
    len += (size_t)snprintf(body + len, cap - len, " {\"documents\" : [");
    for (int i = 0; i < 60; i++) {
        if (i % 2)
            len += (size_t)snprintf(
                body + len, cap - len,
                "%s{\"id\":\"doc-%d\",\"text\":\"say \\\"hi\\\", [x] {y} \\u00e9 %d\"}",
                i ? ", " : "", i, i);
        else
            len += (size_t)snprintf(body + len, cap - len, "%s\"plain, text \\\\ number %d\"",
                                    i ? ",\n" : "", i);
        /* say "hi", [x] {y} é N  /  plain, text \ number N */
        text_bytes += i % 2 ? (int64_t)strlen("say \"hi\", [x] {y} \xc3\xa9 ") + (i < 10 ? 1 : 2)
                            : (int64_t)strlen("plain, text \\ number ") + (i < 10 ? 1 : 2);
    }
    len += (size_t)snprintf(body + len, cap - len, "] }\n");
    struct th_resp r;
    CHECK_INT_EQ(th_request_h(&s, "POST", "/v1/corpora", "application/json", body, len, NULL, &r),
                 201);
    cJSON *j = th_json(&r);
    CHECK(j && th_num(j, "n_documents") == 60);
    CHECK(j && th_num(j, "bytes") == (double)text_bytes);
    cJSON_Delete(j);
    th_resp_free(&r);
    /* The bare array form. */
    len = 0;
    len += (size_t)snprintf(body + len, cap - len, "[");
    for (int i = 0; i < 40; i++)
        len += (size_t)snprintf(body + len, cap - len, "%s\"document number %d\"", i ? "," : "", i);
    len += (size_t)snprintf(body + len, cap - len, "]");
    char id[40];
    CHECK_INT_EQ(th_upload(&s, "application/json", body, len, id), 201);

    /* Errors name the document and the byte. */
    static const struct {
        const char *tail;
        long status;
        const char *field;
    } bad[] = {
        {", 42]", 422, "documents[40]"},
        {", {\"text\": 1}]", 422, "documents[40].text"},
        {" \"missing comma\"]", 400, NULL},
        {", \"trailing\",]", 400, NULL},
        {", \"bad \xff utf8\"]", 400, "documents[40]"},
        {", \"never closed\"", 400, NULL},
        {"] trailing", 400, NULL},
    };
    for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
        size_t l = len - 1; /* drop the ']' */
        l += (size_t)snprintf(body + l, cap - l, "%s", bad[b].tail);
        CHECK_INT_EQ(th_request_h(&s, "POST", "/v1/corpora", "application/json", body, l, NULL, &r),
                     bad[b].status);
        j = th_json(&r);
        const char *f = j ? th_str(j, "error.field") : NULL;
        if (bad[b].field && (!f || strcmp(f, bad[b].field)))
            tm_test_fail(t, __FILE__, __LINE__, "case %zu: %s", b, r.body ? r.body : "");
        cJSON_Delete(j);
        th_resp_free(&r);
        len = l - strlen(bad[b].tail) + 1;
        body[len - 1] = ']';
    }
    const char *other =
        "{\"documents\": [\"a\"], \"colour\": \"blue\", \"padding\": "
        "\"..........................................................................."
        "...........................................................................\"}";
    CHECK_INT_EQ(th_request(&s, "POST", "/v1/corpora", "application/json", other, NULL), 422);
    /* Nothing from the failed uploads was kept. */
    CHECK_INT_EQ(th_get(&s, "/v1/corpora", &r), 200);
    j = th_json(&r);
    CHECK_INT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "corpora")), 2);
    cJSON_Delete(j);
    th_resp_free(&r);
    free(body);
    CHECK_INT_EQ(th_stop(&s), 0);
out:
    th_cleanup(&s);
}

/* GET /v1/corpora/{id}/documents: pages of the documents as uploaded, with
 * their ids, cut to max_chars characters on request. */
TM_TEST(http_corpus_documents)
{
    struct th_server s;
    if (start(t, &s))
        return;
    static const char body[] = "{\"id\":\"a\",\"text\":\"caf\xc3\xa9 au lait\"}\n"
                               "{\"text\":\"second\"}\n"
                               "{\"id\":\"c\",\"text\":\"third one\"}\n";
    char cid[40], path[200];
    CHECK_INT_EQ(th_upload(&s, "application/x-ndjson", body, strlen(body), cid), 201);
    struct th_resp r;
    snprintf(path, sizeof(path), "/v1/corpora/%s/documents?offset=0&limit=2&max_chars=4", cid);
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    cJSON *j = th_json(&r);
    CHECK(j && th_num(j, "n_documents") == 3 && th_num(j, "limit") == 2);
    cJSON *docs = cJSON_GetObjectItem(j, "documents");
    REQUIRE(cJSON_GetArraySize(docs) == 2);
    cJSON *d0 = cJSON_GetArrayItem(docs, 0), *d1 = cJSON_GetArrayItem(docs, 1);
    CHECK_STR_EQ(th_str(d0, "id"), "a");
    CHECK_STR_EQ(th_str(d0, "text"), "caf\xc3\xa9"); /* four characters, five bytes */
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(d0, "truncated")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(d1, "id")));
    CHECK_STR_EQ(th_str(d1, "text"), "seco");
    cJSON_Delete(j);
    th_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/corpora/%s/documents?offset=2", cid);
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    j = th_json(&r);
    docs = cJSON_GetObjectItem(j, "documents");
    REQUIRE(cJSON_GetArraySize(docs) == 1);
    CHECK_STR_EQ(th_str(cJSON_GetArrayItem(docs, 0), "text"), "third one");
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(docs, 0), "truncated")));
    cJSON_Delete(j);
    th_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/corpora/%s/documents?offset=9", cid); /* past the end */
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    CHECK(r.body && strstr(r.body, "\"documents\":[]"));
    th_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/corpora/%s/documents?limit=101", cid);
    CHECK_INT_EQ(th_request(&s, "GET", path, NULL, NULL, NULL), 400);
    CHECK_INT_EQ(th_request(&s, "GET", "/v1/corpora/c_none/documents", NULL, NULL, NULL), 404);
    th_cleanup(&s);
}
