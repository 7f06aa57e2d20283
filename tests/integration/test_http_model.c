/*
 * test_http_model.c - a job's kept model on a real server: GET
 * /v1/jobs/{id}/model is the .npz of api/model_file.h (an attachment named
 * after the job) that reads back to the job's own sizes and vocabulary,
 * its size is the result's model_bytes; a failed job's is a 409 and an
 * unknown job's a 404, each a JSON error.
 */
#include "api/model_file.h"
#include "http_helpers.h"

TM_TEST(http_model_download)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    if (th_tmpdir(&s) || th_start(&s, "--workers", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    size_t len;
    char *jl = th_corpus_jsonl(60, 14, 3, &len);
    char cid[40], nmf[40], svd[40], bad[40], state[32];
    CHECK_INT_EQ(th_upload(&s, "application/x-ndjson", jl, len, cid), 201);
    free(jl);
    CHECK_INT_EQ(th_submit_model(&s, cid, "{\"method\":\"nmf\",\"n_topics\":3}", NULL, nmf), 202);
    CHECK_INT_EQ(
        th_submit_model(&s, cid, "{\"method\":\"truncated_svd\",\"n_topics\":3}", NULL, svd), 202);
    /* A min_df above the corpus's size: the job fails when it runs. */
    char spec[256];
    snprintf(spec, sizeof(spec),
             "{\"corpus_id\":\"%s\",\"vectorizer\":{\"min_df\":1000},\"model\":{}}", cid);
    CHECK_INT_EQ(th_submit(&s, spec, NULL, bad), 202);
    CHECK_STR_EQ(th_wait_job(&s, nmf, 60, state), "succeeded");
    CHECK_STR_EQ(th_wait_job(&s, svd, 60, state), "succeeded");
    CHECK_STR_EQ(th_wait_job(&s, bad, 60, state), "failed");

    const char *ids[2] = {nmf, svd};
    for (int i = 0; i < 2; i++) {
        struct th_resp r;
        char path[160], want[160];
        snprintf(path, sizeof(path), "/v1/jobs/%s/result", ids[i]);
        CHECK_INT_EQ(th_get(&s, path, &r), 200);
        cJSON *res = th_json(&r);
        th_resp_free(&r);
        REQUIRE(res);
        snprintf(path, sizeof(path), "/v1/jobs/%s/model", ids[i]);
        CHECK_INT_EQ(th_get(&s, path, &r), 200);
        CHECK_STR_EQ(r.content_type, "application/octet-stream");
        snprintf(want, sizeof(want), "attachment; filename=\"%s.npz\"", ids[i]);
        CHECK_STR_EQ(r.content_disposition, want);
        const cJSON *mb = cJSON_GetObjectItem(res, "model_bytes");
        CHECK(cJSON_IsNumber(mb) && mb->valuedouble == (double)r.len);
        struct tm_model_file m;
        char err[TM_ERR_SIZE];
        tm_status st = tm_model_file_read(r.body, r.len, &m, err);
        if (st)
            fprintf(stderr, "model: %s\n", err);
        CHECK(st == TM_OK);
        if (!st) {
            CHECK_INT_EQ(m.n_topics, 3);
            CHECK_INT_EQ(m.n_documents, 60);
            CHECK_INT_EQ(m.method, i ? TM_METHOD_TRUNCATED_SVD : TM_METHOD_NMF);
            CHECK((m.singular_values != NULL) == (i == 1));
            CHECK(cJSON_GetObjectItem(res, "n_features")->valuedouble == (double)m.n_features);
            /* The top word of topic 0 is a term of the model's vocabulary,
             * at the index the result gives. */
            const cJSON *w0 = cJSON_GetArrayItem(
                cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(res, "topics"), 0),
                                    "words"),
                0);
            const char *term = th_str(w0, "term");
            int64_t at = (int64_t)cJSON_GetObjectItem(w0, "index")->valuedouble;
            REQUIRE(term && at >= 0 && at < m.n_features);
            size_t tl;
            const char *got = tm_vocab_term(&m.vocab, at, &tl);
            CHECK(tl == strlen(term) && !memcmp(got, term, tl));
        }
        tm_model_file_release(&m);
        th_resp_free(&r);
        cJSON_Delete(res);
    }

    /* pyldavis.json: pyLDAvis.prepare's arguments, rows summing to 1 and
     * sizes agreeing; an SVD job's is a 404. */
    struct th_resp r;
    char path[160];
    snprintf(path, sizeof(path), "/v1/jobs/%s/pyldavis.json", nmf);
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    cJSON *lda = th_json(&r);
    th_resp_free(&r);
    REQUIRE(lda);
    const cJSON *ttd = cJSON_GetObjectItem(lda, "topic_term_dists"),
                *dtd = cJSON_GetObjectItem(lda, "doc_topic_dists"),
                *dl = cJSON_GetObjectItem(lda, "doc_lengths"),
                *vocab = cJSON_GetObjectItem(lda, "vocab"),
                *tf = cJSON_GetObjectItem(lda, "term_frequency");
    CHECK_INT_EQ(cJSON_GetArraySize(ttd), 3);
    CHECK_INT_EQ(cJSON_GetArraySize(dtd), 60);
    CHECK_INT_EQ(cJSON_GetArraySize(dl), 60);
    int n_vocab = cJSON_GetArraySize(vocab);
    CHECK(n_vocab > 10);
    CHECK_INT_EQ(cJSON_GetArraySize(tf), n_vocab);
    const cJSON *row;
    int rows_ok = 1;
    cJSON_ArrayForEach(row, ttd)
    {
        double sum = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, row) sum += x->valuedouble;
        rows_ok &= cJSON_GetArraySize(row) == n_vocab && fabs(sum - 1) < 1e-9;
    }
    cJSON_ArrayForEach(row, dtd)
    {
        double sum = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, row) sum += x->valuedouble;
        rows_ok &= cJSON_GetArraySize(row) == 3 && fabs(sum - 1) < 1e-9;
    }
    CHECK(rows_ok);
    /* Each document's length is at least its number of distinct terms:
     * the corpus's documents have 14 words each. */
    const cJSON *x;
    double total = 0, total_tf = 0;
    cJSON_ArrayForEach(x, dl) total += x->valuedouble;
    cJSON_ArrayForEach(x, tf) total_tf += x->valuedouble;
    CHECK(total > 0 && total == total_tf);
    cJSON_Delete(lda);
    snprintf(path, sizeof(path), "/v1/jobs/%s/pyldavis.json", svd);
    CHECK_INT_EQ(th_get(&s, path, &r), 404);
    CHECK(r.body && strstr(r.body, "\"not_nmf\"") && strstr(r.body, "negative"));
    th_resp_free(&r);

    /* A failed job has none: 409; an unknown job 404, both JSON. */
    snprintf(path, sizeof(path), "/v1/jobs/%s/model", bad);
    CHECK_INT_EQ(th_get(&s, path, &r), 409);
    CHECK(r.body && strstr(r.body, "\"job_not_finished\""));
    th_resp_free(&r);
    CHECK_INT_EQ(th_get(&s, "/v1/jobs/j_nosuchjob/model", &r), 404);
    CHECK(r.body && strstr(r.body, "\"error\""));
    th_resp_free(&r);
    /* Deleted with its job. */
    snprintf(path, sizeof(path), "/v1/jobs/%s", nmf);
    CHECK_INT_EQ(th_request_h(&s, "DELETE", path, NULL, NULL, 0, NULL, NULL), 204);
    snprintf(path, sizeof(path), "/v1/jobs/%s/model", nmf);
    CHECK_INT_EQ(th_get(&s, path, &r), 404);
    th_resp_free(&r);
out:
    th_cleanup(&s);
}
