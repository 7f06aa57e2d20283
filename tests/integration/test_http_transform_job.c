/*
 * test_http_transform_job.c - POST /v1/jobs/{id}:transform as a job (202):
 * 1,001 inline documents, and a corpus, against a real `topicd serve`. The
 * job's document-topics pages must equal the synchronous answers for the
 * same documents (in two halves: 500 and 501); then the errors (a corpus
 * that does not exist, "transform_of" in POST /v1/jobs, a source without a
 * model, a source job not succeeded, a source deleted while the transform
 * waits), cancel and delete.
 * On both store drivers (PostgreSQL's skips without scripts/with-pg.sh).
 */
#include <stdio.h>

#include <sqlite3.h>

#include "http_helpers.h"
#include "tmpstore.h"

#define N_MANY 1001
#define TEXTS_N 6
static const char *const texts[TEXTS_N] = {
    "the cat sat on the mat with a dog", "dogs and cats are pets",
    "rockets fly to space and the moon", "the moon orbits the earth in space",
    "space rockets need fuel",           "a cat and a dog and a pet"};

#define DOCS                                                                                       \
    "[{\"id\":\"a\",\"text\":\"the cat sat on the mat with a dog\"},"                              \
    "{\"id\":\"b\",\"text\":\"dogs and cats are pets\"},"                                          \
    "{\"id\":\"c\",\"text\":\"rockets fly to space and the moon\"},"                               \
    "{\"id\":\"d\",\"text\":\"the moon orbits the earth in space\"},"                              \
    "{\"id\":\"e\",\"text\":\"space rockets need fuel\"},"                                         \
    "{\"id\":\"f\",\"text\":\"a cat and a dog and a pet\"}]"

/* {"documents": [{"id": "d<i>", "text": ...}, i in [from, to)]}, each text
 * one of texts and a word i of its own (outside the vocabulary) plus a
 * word repeated i % 3 times, so the rows differ. malloc'd. */
static char *many_docs(int from, int to)
{
    size_t n = (size_t)(to - from) * 120 + 64, off = 0;
    char *b = malloc(n);
    if (!b)
        return NULL;
    off += (size_t)snprintf(b + off, n - off, "{\"documents\":[");
    for (int i = from; i < to; i++)
        off += (size_t)snprintf(b + off, n - off, "%s{\"id\":\"d%d\",\"text\":\"%s w%d%s\"}",
                                i > from ? "," : "", i, texts[i % TEXTS_N], i,
                                i % 3 == 0 ? "" : (i % 3 == 1 ? " moon" : " cat cat"));
    snprintf(b + off, n - off, "]}");
    return b;
}

static long post(const struct th_server *s, const char *jid, const char *body, struct th_resp *r)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s:transform", jid);
    return th_request_h(s, "POST", path, "application/json", body, strlen(body), NULL, r);
}

/* The transform's 202: the new job's id into tid, and Location checked. */
static long post_job(const struct th_server *s, const char *jid, const char *body, char *tid)
{
    struct th_resp r;
    long st = post(s, jid, body, &r);
    cJSON *j = th_json(&r);
    const char *id = j ? th_str(j, "id") : NULL;
    char want[128];
    snprintf(tid, 40, "%s", id ? id : "");
    snprintf(want, sizeof(want), "/v1/jobs/%s", tid);
    if (st == 202 && strcmp(r.location, want))
        st = -1;
    cJSON_Delete(j);
    th_resp_free(&r);
    return st;
}

/*
 * Compares the job tid's document-topics rows [offset, offset + n) with a
 * synchronous answer (rows and ids): the largest difference, relative to
 * the largest weight, into *rel; -1 when the shapes or ids differ.
 */
static int same_rows(const struct th_server *s, const char *tid, int offset, const cJSON *answer,
                     double *rel)
{
    const cJSON *rows = cJSON_GetObjectItem(answer, "document_topics");
    const cJSON *ids = cJSON_GetObjectItem(answer, "ids");
    int n = cJSON_GetArraySize(rows), bad = 0;
    double d = 0, scale = 0;
    for (int done = 0; done < n && !bad;) {
        char path[200];
        snprintf(path, sizeof(path), "/v1/jobs/%s/document-topics?offset=%d&limit=1000", tid,
                 offset + done);
        struct th_resp r;
        if (th_get(s, path, &r) != 200) {
            th_resp_free(&r);
            return -1;
        }
        cJSON *j = th_json(&r);
        const cJSON *docs = cJSON_GetObjectItem(j, "documents");
        int got = cJSON_GetArraySize(docs);
        if (got == 0)
            bad = 1;
        for (int i = 0; i < got && done + i < n && !bad; i++) {
            const cJSON *doc = cJSON_GetArrayItem(docs, i);
            const cJSON *w = cJSON_GetObjectItem(doc, "weights");
            const cJSON *want = cJSON_GetArrayItem(rows, done + i);
            const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "id"));
            const char *want_id = cJSON_GetStringValue(cJSON_GetArrayItem(ids, done + i));
            if (cJSON_GetArraySize(w) != cJSON_GetArraySize(want) || !id || !want_id ||
                strcmp(id, want_id)) {
                bad = 1;
                break;
            }
            for (int q = 0; q < cJSON_GetArraySize(w); q++) {
                double x = cJSON_GetArrayItem(w, q)->valuedouble;
                double y = cJSON_GetArrayItem(want, q)->valuedouble;
                d = fmax(d, fabs(x - y));
                scale = fmax(scale, fabs(y));
            }
        }
        done += got;
        cJSON_Delete(j);
        th_resp_free(&r);
    }
    *rel = scale > 0 ? d / scale : 1;
    return bad ? -1 : 0;
}

/* The synchronous answer to body, parsed (NULL unless 200). */
static cJSON *sync_answer(const struct th_server *s, const char *jid, const char *body)
{
    struct th_resp r;
    cJSON *j = post(s, jid, body, &r) == 200 ? th_json(&r) : NULL;
    th_resp_free(&r);
    return j;
}

static void job_error(const struct th_server *s, const char *id, char *code, char *message)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    struct th_resp r;
    th_get(s, path, &r);
    cJSON *j = th_json(&r);
    const char *c = j ? th_str(j, "error.code") : NULL, *m = j ? th_str(j, "error.message") : NULL;
    snprintf(code, 64, "%s", c ? c : "");
    snprintf(message, 400, "%s", m ? m : "");
    cJSON_Delete(j);
    th_resp_free(&r);
}

/* sqlite: the store is the data directory's SQLite, which the test edits
 * to take a job's model away. */
static void transform_job_checks(struct tm_test_ctx *t, int sqlite)
{
    struct th_server s;
    memset(&s, 0, sizeof(s));
    char jid[40], tid[40], cid[40], state[32], path[200], code[64], msg[400];
    char *all = NULL, *half1 = NULL, *half2 = NULL;
    cJSON *a1 = NULL, *a2 = NULL, *ac = NULL;
    if (th_tmpdir(&s) || th_start(&s, "--workers", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    CHECK_INT_EQ(th_submit(&s,
                           "{\"documents\":" DOCS ",\"model\":{\"method\":\"nmf\","
                           "\"n_topics\":3}}",
                           NULL, jid),
                 202);
    REQUIRE(!strcmp(th_wait_job(&s, jid, 60, state), "succeeded"));

    /* 1,001 inline documents: a job, whose pages are the two halves'
     * synchronous answers. */
    all = many_docs(0, N_MANY);
    half1 = many_docs(0, 500);
    half2 = many_docs(500, N_MANY);
    REQUIRE(all && half1 && half2);
    CHECK_INT_EQ(post_job(&s, jid, all, tid), 202);
    CHECK_STR_EQ(th_wait_job(&s, tid, 60, state), "succeeded");
    struct th_resp r;
    snprintf(path, sizeof(path), "/v1/jobs/%s/result", tid);
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    cJSON *res = th_json(&r);
    CHECK_STR_EQ(res ? th_str(res, "transform_of") : "", jid);
    CHECK(res && th_num(res, "n_documents") == N_MANY && th_num(res, "n_topics") == 3);
    cJSON_Delete(res);
    th_resp_free(&r);
    a1 = sync_answer(&s, jid, half1);
    a2 = sync_answer(&s, jid, half2);
    REQUIRE(a1 && a2);
    double rel = 1;
    CHECK_INT_EQ(same_rows(&s, tid, 0, a1, &rel), 0);
    if (!(rel <= 1e-9))
        tm_test_fail(t, __FILE__, __LINE__, "first half differs by %g", rel);
    CHECK_INT_EQ(same_rows(&s, tid, 500, a2, &rel), 0);
    if (!(rel <= 1e-9))
        tm_test_fail(t, __FILE__, __LINE__, "second half differs by %g", rel);
    snprintf(path, sizeof(path), "/v1/jobs/%s/document-topics.csv", tid);
    CHECK_INT_EQ(th_get(&s, path, &r), 200);
    int lines = 0;
    for (size_t i = 0; r.body && i < r.len; i++)
        lines += r.body[i] == '\n';
    /* A header, then a row per document and topic. */
    CHECK_INT_EQ(lines, N_MANY * 3 + 1);
    CHECK(r.body && strstr(r.body, "\nd1000,2,"));
    th_resp_free(&r);

    /* What a fit has and a transform job has not: a clear 404, no 5xx
     * (document_topics.svg draws its weights). */
    static const char *const others[] = {"model",
                                         "pyldavis.json",
                                         "plots/singular_values.svg",
                                         "plots/error_trace.svg",
                                         "plots/topics.svg",
                                         "plots/document_topics.svg",
                                         "plots/sweep.svg",
                                         "report.html",
                                         "topic-terms.csv"};
    for (size_t i = 0; i < sizeof(others) / sizeof(*others); i++) {
        snprintf(path, sizeof(path), "/v1/jobs/%s/%s", tid, others[i]);
        long st = th_get(&s, path, &r);
        if (st != (strstr(others[i], "document_topics") ? 200 : 404))
            tm_test_fail(t, __FILE__, __LINE__, "%s: %ld %s", others[i], st, r.body ? r.body : "");
        th_resp_free(&r);
    }

    /* A corpus: its ids come from the corpus. */
    CHECK_INT_EQ(th_upload(&s, "application/json", DOCS, strlen(DOCS), cid), 201);
    char body[200];
    snprintf(body, sizeof(body), "{\"corpus_id\":\"%s\"}", cid);
    CHECK_INT_EQ(post_job(&s, jid, body, tid), 202);
    CHECK_STR_EQ(th_wait_job(&s, tid, 60, state), "succeeded");
    ac = sync_answer(&s, jid, "{\"documents\":" DOCS "}");
    REQUIRE(ac);
    CHECK_INT_EQ(same_rows(&s, tid, 0, ac, &rel), 0);
    if (!(rel <= 1e-9))
        tm_test_fail(t, __FILE__, __LINE__, "corpus transform differs by %g", rel);

    /* Errors. */
    CHECK_INT_EQ(post(&s, jid, "{\"corpus_id\":\"c_nosuchcorpus\"}", &r), 404);
    CHECK(r.body && strstr(r.body, "\"field\":\"corpus_id\""));
    th_resp_free(&r);
    snprintf(body, sizeof(body), "{\"transform_of\":\"%s\",\"corpus_id\":\"%s\"}", jid, cid);
    CHECK_INT_EQ(
        th_request_h(&s, "POST", "/v1/jobs", "application/json", body, strlen(body), NULL, &r),
        422);
    CHECK(r.body && strstr(r.body, "\"field\":\"transform_of\""));
    th_resp_free(&r);

    /* A source that kept no model (its model row deleted, as a job that an
     * older topicd stored has none): 409 no_model at once, for the answer
     * here and for a transform job alike, rather than a job that fails. */
    if (sqlite) {
        char bare[40], sql[200], db_path[300];
        CHECK_INT_EQ(th_submit_model(&s, cid, "{\"method\":\"nmf\",\"n_topics\":2}", NULL, bare),
                     202);
        CHECK_STR_EQ(th_wait_job(&s, bare, 60, state), "succeeded");
        snprintf(sql, sizeof(sql),
                 "DELETE FROM job_models WHERE job_seq = (SELECT seq FROM jobs WHERE id = '%s')",
                 bare);
        snprintf(db_path, sizeof(db_path), "%s/topicd.db", s.dir);
        sqlite3 *db = NULL;
        CHECK(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
              sqlite3_busy_timeout(db, 5000) == SQLITE_OK &&
              sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK && sqlite3_changes(db) == 1);
        sqlite3_close(db);
        char by_corpus[100];
        snprintf(by_corpus, sizeof(by_corpus), "{\"corpus_id\":\"%s\"}", cid);
        const char *bodies[] = {"{\"documents\":[{\"text\":\"a cat\"}]}", by_corpus, all};
        for (int i = 0; i < 3; i++) {
            CHECK_INT_EQ(post(&s, bare, bodies[i], &r), 409);
            CHECK_STR_EQ(th_error_code(&r, code, sizeof(code)), "no_model");
            th_resp_free(&r);
        }
    }

    /* A blocker holds the only worker: a source that is running gets 409;
     * transforms queue behind it, one is cancelled, and the other's source
     * is deleted before it runs. */
    char blocker[40], t1[40], t2[40];
    CHECK_INT_EQ(th_submit_model(&s, cid,
                                 "{\"method\":\"nmf\",\"n_topics\":2,\"tol\":0,"
                                 "\"max_iter\":1000000000}",
                                 NULL, blocker),
                 202);
    CHECK_INT_EQ(th_wait_state(&s, blocker, "running", 60), 0);
    snprintf(body, sizeof(body), "{\"corpus_id\":\"%s\"}", cid);
    CHECK_INT_EQ(post(&s, blocker, body, &r), 409);
    CHECK(r.body && strstr(r.body, "running"));
    th_resp_free(&r);
    CHECK_INT_EQ(post_job(&s, jid, body, t1), 202);
    CHECK_INT_EQ(post_job(&s, jid, body, t2), 202);
    CHECK_INT_EQ(th_job_state(&s, t2, state), 200);
    CHECK_STR_EQ(state, "queued");
    snprintf(path, sizeof(path), "/v1/jobs/%s:cancel", t2);
    CHECK_INT_EQ(th_request(&s, "POST", path, NULL, NULL, NULL), 200);
    CHECK_STR_EQ(th_wait_job(&s, t2, 10, state), "cancelled");
    CHECK_INT_EQ(th_request_id(&s, "DELETE", "/v1/jobs/%s", t2), 204);
    CHECK_INT_EQ(th_request_id(&s, "DELETE", "/v1/jobs/%s", jid), 204);
    CHECK_INT_EQ(th_request_id(&s, "DELETE", "/v1/jobs/%s", blocker), 202);
    CHECK_STR_EQ(th_wait_job(&s, t1, 60, state), "failed");
    job_error(&s, t1, code, msg);
    CHECK(strstr(msg, "transform_of") && strstr(msg, "deleted"));
out:
    cJSON_Delete(a1);
    cJSON_Delete(a2);
    cJSON_Delete(ac);
    free(all);
    free(half1);
    free(half2);
    th_cleanup(&s);
}

TM_TEST(http_transform_job_sqlite)
{
    transform_job_checks(t, 1);
}

TM_TEST(http_transform_job_pg)
{
    if (tm_tmpstore_pg_skip()) {
        tm_test_skip(t, tm_tmpstore_pg_skip());
        return;
    }
    char schema[40] = "", conninfo[1024];
    REQUIRE(tm_test_pg_schema_new(schema, conninfo, sizeof(conninfo)) == 0);
    setenv("TOPICD_STORE", conninfo, 1);
    transform_job_checks(t, 0);
    unsetenv("TOPICD_STORE");
    tm_test_pg_schema_drop(schema);
}
