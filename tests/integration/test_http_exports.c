/*
 * test_http_exports.c - GET /v1/jobs/{id}/topic-terms.csv and
 * /document-topics.csv on a real server, read back with tests/csvread.h:
 * topic-terms.csv is the result's topics word for word (same digits),
 * document-topics.csv has a row for every document and topic of a job of
 * 3,000 documents (twelve store chunks), the same weights as the JSON
 * pages, the corpus's ids; inline documents' ids with commas, quotes, line
 * breaks and any Unicode round-trip, and a document without an id is named
 * by its index. Headers (type, attachment name), HEAD, 404 and 409 as the
 * other result routes, and the signed links list both files. On each store
 * driver (PostgreSQL's skips without scripts/with-pg.sh).
 */
#include <sqlite3.h>

#include "csvread.h"
#include "http_helpers.h"
#include "tmpstore.h"

static long get_csv(struct th_server *s, const char *jid, const char *name, struct th_resp *r)
{
    char path[160];
    snprintf(path, sizeof(path), "/v1/jobs/%s/%s.csv", jid, name);
    return th_get(s, path, r);
}

/* topic-terms.csv against the job's /result: each topic's words in order,
 * the weight with the JSON's own digits. */
struct terms_check {
    struct tm_test_ctx *t;
    cJSON *topics;
    const char *json; /* the /result text, for its number tokens */
    int row, bad;
};

static int check_term_row(void *ctx, const struct tm_csvrow *r)
{
    struct terms_check *c = ctx;
    if (c->row++ == 0) {
        c->bad += r->n != 3 || strcmp(r->f[0], "topic") || strcmp(r->f[1], "term") ||
                  strcmp(r->f[2], "weight");
        return 0;
    }
    /* the (row-1)th word over all topics */
    int at = c->row - 2;
    const cJSON *topic;
    cJSON_ArrayForEach(topic, c->topics)
    {
        const cJSON *words = cJSON_GetObjectItemCaseSensitive(topic, "words");
        int nw = cJSON_GetArraySize(words);
        if (at >= nw) {
            at -= nw;
            continue;
        }
        const cJSON *w = cJSON_GetArrayItem(words, at);
        char idx[24], digits[64];
        snprintf(idx, sizeof(idx), "%d", cJSON_GetObjectItem(topic, "index")->valueint);
        /* The weight's token in the JSON text follows its term, in its
         * topic's words. */
        char needle[300];
        snprintf(needle, sizeof(needle),
                 "\"term\":\"%s\",\"index\":%d,\"weight\":", th_str(w, "term"),
                 cJSON_GetObjectItem(w, "index")->valueint);
        char start[64];
        snprintf(start, sizeof(start), "{\"index\":%s,\"words\":[", idx);
        const char *p = strstr(c->json, start);
        p = p ? strstr(p, needle) : NULL;
        snprintf(digits, sizeof(digits), "%.*s", p ? (int)strcspn(p + strlen(needle), "},") : 0,
                 p ? p + strlen(needle) : "");
        if (r->n != 3 || strcmp(r->f[0], idx) || strcmp(r->f[1], th_str(w, "term")) ||
            strcmp(r->f[2], digits)) {
            c->bad++;
            tm_test_fail(c->t, __FILE__, __LINE__, "row %d: %s,%s,%s; want %s,%s,%s", c->row,
                         r->f[0], r->f[1], r->f[2], idx, th_str(w, "term"), digits);
        }
        return 0;
    }
    c->bad++;
    return 0;
}

/* document-topics.csv against the weights the JSON pages gave. */
struct dt_check {
    struct tm_test_ctx *t;
    int64_t n, k;
    double *w;  /* n x k, from the JSON pages */
    char **ids; /* n, the JSON's ids (NULL for null) */
    int64_t row;
    int bad;
};

static int check_dt_row(void *ctx, const struct tm_csvrow *r)
{
    struct dt_check *c = ctx;
    int64_t at = c->row++;
    if (at == 0) {
        c->bad += r->n != 3 || strcmp(r->f[0], "document_id") || strcmp(r->f[1], "topic") ||
                  strcmp(r->f[2], "weight");
        return 0;
    }
    int64_t i = (at - 1) / c->k, t = (at - 1) % c->k;
    char id[64], topic[24];
    if (i < c->n && c->ids[i])
        snprintf(id, sizeof(id), "%s", c->ids[i]);
    else
        snprintf(id, sizeof(id), "%lld", (long long)i);
    snprintf(topic, sizeof(topic), "%lld", (long long)t);
    char *end;
    double v = strtod(r->f[2], &end);
    if (i >= c->n || r->n != 3 || strcmp(r->f[0], id) || strcmp(r->f[1], topic) || *end ||
        v != c->w[i * c->k + t]) {
        if (c->bad++ < 3)
            tm_test_fail(c->t, __FILE__, __LINE__, "row %lld: %s,%s,%s; want %s,%s,%.17g",
                         (long long)at, r->f[0], r->f[1], r->f[2], id, topic,
                         i < c->n ? c->w[i * c->k + t] : 0.0);
    }
    return 0;
}

/* Every page of /document-topics into c (n, k, w, ids): 0 or -1. */
static int json_doc_topics(struct th_server *s, const char *jid, struct dt_check *c)
{
    for (int64_t off = 0;; off += 1000) {
        char path[160];
        snprintf(path, sizeof(path), "/v1/jobs/%s/document-topics?offset=%lld&limit=1000", jid,
                 (long long)off);
        struct th_resp r;
        if (th_get(s, path, &r) != 200) {
            th_resp_free(&r);
            return -1;
        }
        cJSON *j = th_json(&r);
        th_resp_free(&r);
        if (!c->w) {
            c->n = (int64_t)th_num(j, "n_documents");
            c->k = (int64_t)th_num(j, "n_topics");
            c->w = calloc((size_t)(c->n * c->k + 1), sizeof(double));
            c->ids = calloc((size_t)c->n + 1, sizeof(char *));
        }
        const cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItem(j, "documents"))
        {
            int64_t i = (int64_t)th_num(d, "index");
            const char *id = th_str(d, "id");
            if (i < 0 || i >= c->n)
                continue;
            c->ids[i] = id ? strdup(id) : NULL;
            const cJSON *x;
            int64_t t = 0;
            cJSON_ArrayForEach(x, cJSON_GetObjectItem(d, "weights"))
            {
                if (t < c->k)
                    c->w[i * c->k + t] = x->valuedouble;
                t++;
            }
        }
        cJSON_Delete(j);
        if (off + 1000 >= c->n)
            return 0;
    }
}

static void dt_check_free(struct dt_check *c)
{
    for (int64_t i = 0; c->ids && i < c->n; i++)
        free(c->ids[i]);
    free(c->ids);
    free(c->w);
}

/* REQUIRE for exports_checks: the server is stopped on the way out. */
#define NEED(cond)                                                                                 \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            tm_test_fail(t, __FILE__, __LINE__, "required: %s", #cond);                            \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* The checks, on a server started on the store TOPICD_STORE names (or, with
 * sqlite, the data directory's SQLite, which the test also edits). */
static void exports_checks(struct tm_test_ctx *t, int sqlite)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    if (th_tmpdir(&s) || th_start(&s, "--workers", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    /* 3,000 documents: twelve chunks of the store's 256 rows. */
    size_t len;
    char *jl = th_corpus_jsonl(3000, 8, 5, &len);
    char cid[40], jid[40], state[32], code[64], path[200];
    CHECK_INT_EQ(th_upload(&s, "application/x-ndjson", jl, len, cid), 201);
    free(jl);
    CHECK_INT_EQ(th_submit_model(&s, cid, "{\"method\":\"nmf\",\"n_topics\":3}", NULL, jid), 202);
    CHECK_STR_EQ(th_wait_job(&s, jid, 120, state), "succeeded");

    /* topic-terms.csv: the result's words, in order, with its digits. */
    struct th_resp r;
    snprintf(path, sizeof(path), "/v1/jobs/%s/result", jid);
    NEED(th_get(&s, path, &r) == 200);
    cJSON *res = th_json(&r);
    char *result_text = r.body;
    r.body = NULL;
    th_resp_free(&r);
    CHECK_INT_EQ(get_csv(&s, jid, "topic-terms", &r), 200);
    CHECK_STR_EQ(r.content_type, "text/csv; charset=utf-8");
    char want[200];
    snprintf(want, sizeof(want), "attachment; filename=\"%s-topic-terms.csv\"", jid);
    CHECK_STR_EQ(r.content_disposition, want);
    struct terms_check tc = {t, cJSON_GetObjectItem(res, "topics"), result_text, 0, 0};
    int words = 0;
    const cJSON *topic;
    cJSON_ArrayForEach(topic, tc.topics) words +=
        cJSON_GetArraySize(cJSON_GetObjectItem(topic, "words"));
    CHECK(words > 3);
    CHECK_INT_EQ(tm_csvread(r.body, r.len, check_term_row, &tc), 1 + words);
    CHECK_INT_EQ(tc.bad, 0);
    th_resp_free(&r);
    cJSON_Delete(res);
    free(result_text);

    /* document-topics.csv: every row, the JSON pages' weights and ids. */
    struct dt_check dc = {.t = t};
    NEED(json_doc_topics(&s, jid, &dc) == 0);
    CHECK_INT_EQ(dc.n, 3000);
    CHECK_INT_EQ(get_csv(&s, jid, "document-topics", &r), 200);
    CHECK_STR_EQ(r.content_type, "text/csv; charset=utf-8");
    snprintf(want, sizeof(want), "attachment; filename=\"%s-document-topics.csv\"", jid);
    CHECK_STR_EQ(r.content_disposition, want);
    CHECK_INT_EQ(tm_csvread(r.body, r.len, check_dt_row, &dc), 1 + 3000 * 3);
    CHECK_INT_EQ(dc.bad, 0);
    CHECK(r.body && !strncmp(r.body, "document_id,topic,weight\r\nd0,0,", 31));
    th_resp_free(&r);
    dt_check_free(&dc);

    /* HEAD: the headers, no body. */
    snprintf(path, sizeof(path), "/v1/jobs/%s/document-topics.csv", jid);
    CHECK_INT_EQ(th_request(&s, "HEAD", path, NULL, NULL, &r), 200);
    CHECK_STR_EQ(r.content_type, "text/csv; charset=utf-8");
    CHECK(r.len == 0);
    th_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/jobs/%s/topic-terms.csv", jid);
    CHECK_INT_EQ(th_request(&s, "HEAD", path, NULL, NULL, &r), 200);
    th_resp_free(&r);
    CHECK_INT_EQ(th_request(&s, "DELETE", path, NULL, NULL, &r), 405);
    CHECK_STR_EQ(r.allow, "GET, HEAD");
    th_resp_free(&r);

    /* Inline documents: ids that need quoting, and one without an id. */
    static const char inline_spec[] =
        "{\"documents\":[{\"id\":\"a,b\",\"text\":\"cat dog pet fur\"},"
        "{\"id\":\"say \\\"hi\\\"\",\"text\":\"stock bond market yield\"},"
        "{\"id\":\"two\\nlines\",\"text\":\"cat pet vet paw\"},"
        "\"bond yield fund price\","
        "{\"id\":\"na\\u00efve \xe6\x97\xa5\xe6\x9c\xac \xe2\x9c\x93\",\"text\":\"dog fur tail\"}],"
        "\"model\":{\"method\":\"nmf\",\"n_topics\":2},\"seed\":1}";
    char inl[40];
    CHECK_INT_EQ(th_submit(&s, inline_spec, NULL, inl), 202);
    CHECK_STR_EQ(th_wait_job(&s, inl, 60, state), "succeeded");
    struct dt_check ic = {.t = t};
    NEED(json_doc_topics(&s, inl, &ic) == 0);
    CHECK_INT_EQ(ic.n, 5);
    CHECK(ic.ids[3] == NULL);
    CHECK_STR_EQ(ic.ids[4], "naïve 日本 ✓");
    CHECK_INT_EQ(get_csv(&s, inl, "document-topics", &r), 200);
    CHECK_INT_EQ(tm_csvread(r.body, r.len, check_dt_row, &ic), 1 + 5 * 2);
    CHECK_INT_EQ(ic.bad, 0);
    CHECK(r.body && strstr(r.body, "\r\n\"say \"\"hi\"\"\",1,"));
    CHECK(r.body && strstr(r.body, "\r\n3,0,")); /* no id: the index */
    th_resp_free(&r);
    dt_check_free(&ic);

    /* Errors as the other result routes: unknown job, one not finished. */
    CHECK_INT_EQ(get_csv(&s, "j_missing", "topic-terms", &r), 404);
    CHECK_STR_EQ(th_error_code(&r, code, sizeof(code)), "not_found");
    th_resp_free(&r);
    CHECK_INT_EQ(get_csv(&s, "j_missing", "document-topics", &r), 404);
    th_resp_free(&r);
    char endless[40];
    CHECK_INT_EQ(th_submit_model(&s, cid, TH_ENDLESS_MODEL, NULL, endless), 202);
    for (int i = 0; i < 2; i++) {
        CHECK_INT_EQ(get_csv(&s, endless, i ? "document-topics" : "topic-terms", &r), 409);
        CHECK_STR_EQ(th_error_code(&r, code, sizeof(code)), "job_not_finished");
        CHECK(r.body &&
              (strstr(r.body, "the job is queued") || strstr(r.body, "the job is running")));
        CHECK_STR_EQ(r.content_type, "application/json");
        CHECK_STR_EQ(r.content_disposition, "");
        th_resp_free(&r);
    }
    CHECK(th_request_id(&s, "POST", "/v1/jobs/%s:cancel", endless) / 100 == 2);

    /* A job stored without weights (none this release makes: its row is
     * edited, as a job stored by an older one would be) has no file. */
    if (sqlite) {
        sqlite3 *db = NULL;
        char db_path[300], sql[200];
        snprintf(db_path, sizeof(db_path), "%s/topicd.db", s.dir);
        snprintf(sql, sizeof(sql), "UPDATE jobs SET n_topics = 0 WHERE id = '%s'", inl);
        CHECK(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
              sqlite3_busy_timeout(db, 5000) == SQLITE_OK &&
              sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(db);
        CHECK_INT_EQ(get_csv(&s, inl, "document-topics", &r), 404);
        CHECK_STR_EQ(th_error_code(&r, code, sizeof(code)), "no_document_topics");
        CHECK(r.body && strstr(r.body, "return"));
        th_resp_free(&r);
        CHECK_INT_EQ(get_csv(&s, inl, "topic-terms", &r), 200);
        th_resp_free(&r);
    }

    /* The signed links name both files. */
    snprintf(path, sizeof(path), "/v1/jobs/%s/links", jid);
    CHECK_INT_EQ(th_request(&s, "POST", path, NULL, NULL, &r), 200);
    CHECK(r.body && strstr(r.body, "\"topic_terms_csv\":\"/v1/jobs/"));
    CHECK(r.body && strstr(r.body, "/document-topics.csv?expires="));
    th_resp_free(&r);
out:
    th_cleanup(&s);
}

TM_TEST(http_exports_csv_sqlite)
{
    exports_checks(t, 1);
}

TM_TEST(http_exports_csv_pg)
{
    if (tm_tmpstore_pg_skip()) {
        tm_test_skip(t, tm_tmpstore_pg_skip());
        return;
    }
    char schema[40] = "", conninfo[1024];
    REQUIRE(tm_test_pg_schema_new(schema, conninfo, sizeof(conninfo)) == 0);
    setenv("TOPICD_STORE", conninfo, 1);
    exports_checks(t, 0);
    unsetenv("TOPICD_STORE");
    tm_test_pg_schema_drop(schema);
}
