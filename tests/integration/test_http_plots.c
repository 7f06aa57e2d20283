/*
 * test_http_plots.c - GET /v1/jobs/{id}/plots/NAME.svg on a real server:
 * each plot of a finished NMF and SVD job is SVG (image/svg+xml) drawn from
 * that job's own result (its top words appear in the topics plot, its
 * documents' ids in the heat map); a plot the job has no data for is a 404
 * that says so, an unfinished job's a 409, an unknown plot a 404; the
 * report page holds them.
 */
#include "http_helpers.h"

static long get_svg(struct th_server *s, const char *jid, const char *name, struct th_resp *r)
{
    char path[160];
    snprintf(path, sizeof(path), "/v1/jobs/%s/plots/%s.svg", jid, name);
    return th_get(s, path, r);
}

/* 1 when r is an SVG answer. */
static int is_svg(const struct th_resp *r)
{
    return r->status == 200 && !strcmp(r->content_type, "image/svg+xml") && r->body &&
           !strncmp(r->body, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39) &&
           strstr(r->body, "</svg>");
}

TM_TEST(http_plots)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    if (th_tmpdir(&s) || th_start(&s, "--workers", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    size_t len;
    char *jl = th_corpus_jsonl(60, 14, 3, &len);
    char cid[40], nmf[40], svd[40], state[32], code[64];
    CHECK_INT_EQ(th_upload(&s, "application/x-ndjson", jl, len, cid), 201);
    free(jl);
    CHECK_INT_EQ(th_submit_model(&s, cid, "{\"method\":\"nmf\",\"n_topics\":3}", NULL, nmf), 202);
    CHECK_INT_EQ(
        th_submit_model(&s, cid, "{\"method\":\"truncated_svd\",\"n_topics\":3}", NULL, svd), 202);
    CHECK_STR_EQ(th_wait_job(&s, nmf, 60, state), "succeeded");
    CHECK_STR_EQ(th_wait_job(&s, svd, 60, state), "succeeded");

    /* The topics plot names the result's top word of each topic. */
    struct th_resp r;
    char path[160];
    snprintf(path, sizeof(path), "/v1/jobs/%s/result", nmf);
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    cJSON *res = th_json(&r);
    th_resp_free(&r);
    CHECK_INT_EQ(get_svg(&s, nmf, "topics", &r), 200);
    CHECK(is_svg(&r));
    cJSON *topic;
    int checked = 0;
    cJSON_ArrayForEach(topic, cJSON_GetObjectItem(res, "topics"))
    {
        const char *word =
            th_str(cJSON_GetArrayItem(cJSON_GetObjectItem(topic, "words"), 0), "term");
        char text[96];
        snprintf(text, sizeof(text), ">%s</text>", word ? word : "?");
        CHECK(r.body && strstr(r.body, text));
        checked++;
    }
    CHECK_INT_EQ(checked, 3);
    cJSON_Delete(res);
    th_resp_free(&r);

    CHECK_INT_EQ(get_svg(&s, nmf, "error_trace", &r), 200);
    CHECK(is_svg(&r));
    th_resp_free(&r);
    /* The heat map labels rows with the uploaded documents' ids. */
    CHECK_INT_EQ(get_svg(&s, nmf, "document_topics", &r), 200);
    CHECK(is_svg(&r));
    CHECK(r.body && strstr(r.body, ">d0</text>") && strstr(r.body, ">d49</text>"));
    CHECK(r.body && !strstr(r.body, ">d50</text>")); /* the first 50 only */
    th_resp_free(&r);
    CHECK_INT_EQ(get_svg(&s, svd, "singular_values", &r), 200);
    CHECK(is_svg(&r));
    th_resp_free(&r);

    /* The report: one HTML page with the topics and the charts inline. */
    snprintf(path, sizeof(path), "/v1/jobs/%s/report.html", nmf);
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    CHECK_STR_EQ(r.content_type, "text/html; charset=utf-8");
    CHECK(r.body && !strncmp(r.body, "<!DOCTYPE html>", 15));
    CHECK(r.body && strstr(r.body, "<figure>\n<svg xmlns="));
    CHECK(r.body && strstr(r.body, ">d0</text>")); /* the heat map, with the corpus's ids */
    CHECK(r.body && strstr(r.body, "&quot;corpus_id&quot;:"));
    CHECK(r.body && !strstr(r.body, "<script"));
    th_resp_free(&r);

    /* What a job has no data for, and what is no plot. */
    CHECK_INT_EQ(get_svg(&s, nmf, "singular_values", &r), 404);
    CHECK_STR_EQ(th_error_code(&r, code, sizeof(code)), "no_plot_data");
    CHECK(r.body && strstr(r.body, "only SVD jobs"));
    th_resp_free(&r);
    CHECK_INT_EQ(get_svg(&s, nmf, "pie", &r), 404);
    th_resp_free(&r);
    CHECK_INT_EQ(get_svg(&s, "j_missing", "topics", &r), 404);
    th_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/jobs/%s/plots/topics.svg", nmf);
    CHECK_INT_EQ(th_request(&s, "DELETE", path, NULL, NULL, &r), 405);
    th_resp_free(&r);

    /* A job that has not finished has no plots yet. */
    char endless[40];
    CHECK_INT_EQ(th_submit_model(&s, cid, TH_ENDLESS_MODEL, NULL, endless), 202);
    CHECK_INT_EQ(get_svg(&s, endless, "topics", &r), 409);
    CHECK_STR_EQ(th_error_code(&r, code, sizeof(code)), "job_not_finished");
    th_resp_free(&r);
    CHECK(th_request_id(&s, "POST", "/v1/jobs/%s:cancel", endless) / 100 == 2);
out:
    th_cleanup(&s);
}

/* The web page: open (no key needed even with keys on: it holds no data),
 * its files with their types, embedded as they are in api/ui/. */
TM_TEST(http_web_page)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    if (th_tmpdir(&s) || th_start(&s, "--workers", "1", "--auth", "on", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    static const struct {
        const char *path, *type, *has;
    } files[] = {
        {"/", "text/html; charset=utf-8", "<script src=\"/ui/app.js\" defer></script>"},
        {"/ui/app.js", "text/javascript; charset=utf-8", "'use strict';"},
        {"/ui/app.css", "text/css; charset=utf-8", ".topic-card"},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct th_resp r;
        CHECK_INT_EQ(th_get(&s, files[i].path, &r), 200);
        CHECK_STR_EQ(r.content_type, files[i].type);
        CHECK(r.body && strstr(r.body, files[i].has));
        th_resp_free(&r);
    }
    /* The data behind it still needs a key. */
    CHECK_INT_EQ(th_request(&s, "GET", "/v1/jobs", NULL, NULL, NULL), 401);
    CHECK_INT_EQ(th_request(&s, "POST", "/", "text/plain", "x", NULL), 405);
out:
    th_cleanup(&s);
}
