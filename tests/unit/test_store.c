/* test_store.c - the contract of server/store.h: each TM_STORE_TEST runs on
 * the SQLite and on the PostgreSQL driver (tests/tmpstore.h); the TM_TESTs
 * are SQLite's own (stores from before schema versions, allocation
 * failures, query plans). test_store_pg.c has PostgreSQL's own. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "harness.h"
#include "server/store.h"
#include "testalloc.h"
#include "tmpstore.h"

static int tmpdir(char *dir, size_t size)
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, size, "%s/topicd-store-XXXXXX", base ? base : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static void rmdir_all(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd))
        fprintf(stderr, "could not remove %s\n", dir);
}

/* One integer from a query on dir's SQLite file, read with a connection of
 * its own; -1 on an error. */
static long long sqlite_int(const char *dir, const char *sql)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/topicd.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static struct tm_corpus_record corpus(const char *id, int hidden)
{
    struct tm_corpus_record c;
    memset(&c, 0, sizeof(c));
    snprintf(c.id, sizeof(c.id), "%s", id);
    c.hidden = hidden;
    c.created_at = 1700000000.5;
    return c;
}

TM_STORE_TEST(store_corpora)
{
    char err[TM_ERR_SIZE];
    struct tm_store s = ts->store;
    struct tm_corpus_record c = corpus("c_a", 0), got;
    CHECK_INT_EQ(s.m->corpus_create(s.ctx, &c, err), TM_OK);
    struct tm_store_doc docs[3] = {
        {"hello world", 11, "x1", 2}, {"", 0, NULL, 0}, {"second batch", 12, NULL, 0}};
    CHECK_INT_EQ(s.m->corpus_append(s.ctx, "c_a", docs, 2, err), TM_OK);
    /* Not visible while uploading. */
    CHECK_INT_EQ(s.m->corpus_get(s.ctx, "c_a", &got, err), TM_ENOTFOUND);
    CHECK_INT_EQ(s.m->corpus_append(s.ctx, "c_a", docs + 2, 1, err), TM_OK);
    CHECK_INT_EQ(s.m->corpus_commit(s.ctx, "c_a", err), TM_OK);
    CHECK_INT_EQ(s.m->corpus_get(s.ctx, "c_a", &got, err), TM_OK);
    CHECK_INT_EQ(got.n_documents, 3);
    CHECK_INT_EQ(got.bytes, 23);
    CHECK_NEAR(got.created_at, 1700000000.5, 1e-9);

    struct tm_store_docs d;
    CHECK_INT_EQ(s.m->corpus_load(s.ctx, "c_a", &d, err), TM_OK);
    CHECK_INT_EQ(d.n, 3);
    CHECK(d.offsets[1] == 11 && d.offsets[2] == 11 && d.offsets[3] == 23);
    CHECK(!memcmp(d.pool, "hello worldsecond batch", 23));
    CHECK(d.ids && d.ids[0] && !strcmp(d.ids[0], "x1") && !d.ids[1] && !d.ids[2]);
    tm_store_docs_release(&d);
    char *ids[4], *texts[4];
    CHECK_INT_EQ(s.m->corpus_docs_page(s.ctx, "c_a", 0, 2, ids, NULL, err), TM_OK);
    CHECK(ids[0] && !strcmp(ids[0], "x1") && !ids[1]);
    tm_free(ids[0]);
    /* With the texts, from an offset, past the end. */
    CHECK_INT_EQ(s.m->corpus_docs_page(s.ctx, "c_a", 1, 4, ids, texts, err), TM_OK);
    CHECK(!ids[0] && !ids[1] && !ids[2] && !ids[3]);
    CHECK(texts[0] && !strcmp(texts[0], ""));
    CHECK(texts[1] && !strcmp(texts[1], "second batch"));
    CHECK(!texts[2] && !texts[3]);
    for (int i = 0; i < 4; i++)
        tm_free(texts[i]);
    CHECK_INT_EQ(s.m->corpus_docs_page(s.ctx, "c_none", 0, 1, NULL, texts, err), TM_ENOTFOUND);

    /* An append staged in a hidden corpus, adopted in one step. */
    struct tm_corpus_record st = corpus("c_stage", 1);
    CHECK_INT_EQ(s.m->corpus_create(s.ctx, &st, err), TM_OK);
    CHECK_INT_EQ(s.m->corpus_append(s.ctx, "c_stage", docs, 1, err), TM_OK);
    CHECK_INT_EQ(s.m->corpus_adopt(s.ctx, "c_a", "c_stage", err), TM_OK);
    CHECK_INT_EQ(s.m->corpus_get(s.ctx, "c_a", &got, err), TM_OK);
    CHECK_INT_EQ(got.n_documents, 4);
    CHECK_INT_EQ(s.m->corpus_get(s.ctx, "c_stage", &got, err), TM_ENOTFOUND);
    CHECK_INT_EQ(s.m->corpus_load(s.ctx, "c_a", &d, err), TM_OK);
    CHECK_INT_EQ(d.n, 4);
    CHECK(d.offsets[4] - d.offsets[3] == 11 && d.ids[3] && !strcmp(d.ids[3], "x1"));
    tm_store_docs_release(&d);

    /* Listing: visible corpora by seq, with a cursor. */
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "c_l%d", i);
        struct tm_corpus_record l = corpus(id, 0);
        CHECK_INT_EQ(s.m->corpus_create(s.ctx, &l, err), TM_OK);
        CHECK_INT_EQ(s.m->corpus_commit(s.ctx, id, err), TM_OK);
    }
    struct tm_corpus_record hid = corpus("c_hidden", 1);
    s.m->corpus_create(s.ctx, &hid, err);
    s.m->corpus_commit(s.ctx, "c_hidden", err);
    struct tm_corpus_record page[10];
    int n = 0;
    CHECK_INT_EQ(s.m->corpus_list(s.ctx, NULL, 0, 2, page, &n, err), TM_OK);
    CHECK_INT_EQ(n, 2);
    CHECK_STR_EQ(page[0].id, "c_a");
    CHECK_STR_EQ(page[1].id, "c_l0");
    CHECK_INT_EQ(s.m->corpus_list(s.ctx, NULL, page[1].seq, 10, page, &n, err), TM_OK);
    CHECK_INT_EQ(n, 2); /* c_l1, c_l2; not the hidden one */

    /* An upload left half-way is gone after a reopen: at once for SQLite
     * (the one process); for PostgreSQL once it has had no batch for
     * TM_STORE_UPLOAD_IDLE_S (another replica may be receiving it). */
    struct tm_corpus_record half = corpus("c_half", 0);
    CHECK_INT_EQ(s.m->corpus_create(s.ctx, &half, err), TM_OK);
    CHECK_INT_EQ(s.m->corpus_append(s.ctx, "c_half", docs, 1, err), TM_OK);
    if (ts->driver == TM_STORE_PG) {
        REQUIRE(tm_tmpstore_reopen(ts, err) == 0);
        s = ts->store;
        CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM documents"), 5);
        char idle[160];
        snprintf(idle, sizeof(idle), "UPDATE corpora SET touched_at = touched_at - %d - 1",
                 TM_STORE_UPLOAD_IDLE_S);
        REQUIRE(tm_tmpstore_sql_exec(ts, idle) == 0);
    }
    REQUIRE(tm_tmpstore_reopen(ts, err) == 0);
    s = ts->store;
    CHECK_INT_EQ(s.m->corpus_commit(s.ctx, "c_half", err), TM_ENOTFOUND);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM documents"), 4);
    CHECK_INT_EQ(s.m->corpus_get(s.ctx, "c_a", &got, err), TM_OK);

    CHECK_INT_EQ(s.m->corpus_delete(s.ctx, "c_a", err), TM_OK);
    CHECK_INT_EQ(s.m->corpus_get(s.ctx, "c_a", &got, err), TM_ENOTFOUND);
    CHECK_INT_EQ(s.m->corpus_delete(s.ctx, "c_a", err), TM_ENOTFOUND);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM documents"), 0);
    CHECK_INT_EQ(s.m->ping(s.ctx, err), TM_OK);
}

static struct tm_job_record job(const char *id, const char *corpus_id)
{
    struct tm_job_record j;
    memset(&j, 0, sizeof(j));
    snprintf(j.id, sizeof(j.id), "%s", id);
    snprintf(j.corpus_id, sizeof(j.corpus_id), "%s", corpus_id);
    snprintf(j.method, sizeof(j.method), "nmf");
    j.state = TM_JOB_QUEUED;
    j.created_at = 1700000001;
    return j;
}

static int count_fn(void *ctx, const struct tm_job_record *j, const char *client)
{
    (void)j;
    (void)client;
    ++*(int *)ctx;
    return 0;
}

/* Collects "id=client;" for each job scanned. */
static int clients_fn(void *ctx, const struct tm_job_record *j, const char *client)
{
    char *buf = ctx;
    size_t n = strlen(buf);
    snprintf(buf + n, 256 - n, "%s=%s;", j->id, client);
    return 0;
}

TM_STORE_TEST(store_jobs)
{
    char err[TM_ERR_SIZE];
    struct tm_store s = ts->store;
    const char spec[] = "{\"model\":{\"method\":\"nmf\"}}";
    struct tm_job_record a = job("j_a", "c_1"), b = job("j_b", "c_1"), c = job("j_c", "c_2"), got;
    CHECK_INT_EQ(s.m->job_insert(s.ctx, &a, spec, sizeof(spec) - 1, "key1", "id:a", err), TM_OK);
    CHECK_INT_EQ(s.m->job_insert(s.ctx, &b, spec, sizeof(spec) - 1, NULL, "id:a", err), TM_OK);
    CHECK(b.seq > a.seq);
    /* A used idempotency key. */
    CHECK_INT_EQ(s.m->job_insert(s.ctx, &c, "{}", 2, "key1", "id:a", err), TM_EBUSY);
    CHECK_INT_EQ(s.m->job_insert(s.ctx, &c, "{}", 2, NULL, NULL, err), TM_OK);
    char *sp = NULL;
    size_t len = 0;
    CHECK_INT_EQ(s.m->job_by_idem(s.ctx, "key1", &got, &sp, &len, err), TM_OK);
    CHECK_STR_EQ(got.id, "j_a");
    CHECK(sp && len == sizeof(spec) - 1 && !memcmp(sp, spec, len));
    tm_free(sp);
    CHECK_INT_EQ(s.m->job_by_idem(s.ctx, "nokey", &got, &sp, &len, err), TM_ENOTFOUND);
    CHECK_INT_EQ(s.m->job_spec(s.ctx, "j_c", &sp, &len, err), TM_OK);
    CHECK(len == 2 && !strcmp(sp, "{}"));
    tm_free(sp);

    int64_t active = 0;
    CHECK_INT_EQ(s.m->corpus_jobs_active(s.ctx, "c_1", &active, err), TM_OK);
    CHECK_INT_EQ(active, 2);

    /* Running, then finished with a result and per-document weights. */
    a.state = TM_JOB_RUNNING;
    a.attempts = 1;
    snprintf(a.stage, sizeof(a.stage), "nmf");
    a.progress = 0.5;
    CHECK_INT_EQ(s.m->job_update(s.ctx, NULL, &a, err), TM_OK);
    CHECK_INT_EQ(s.m->job_get(s.ctx, "j_a", &got, err), TM_OK);
    CHECK(got.state == TM_JOB_RUNNING && got.attempts == 1 && !strcmp(got.stage, "nmf"));
    CHECK_NEAR(got.progress, 0.5, 0);
    CHECK_INT_EQ(s.m->job_result(s.ctx, "j_a", &sp, &len, err), TM_ENOTFOUND);
    enum { N = 600, K = 3 };
    double *w = malloc(sizeof(double) * N * K);
    for (int i = 0; i < N * K; i++)
        w[i] = i * 0.5;
    a.state = TM_JOB_SUCCEEDED;
    a.finished_at = 1700000009;
    char *dids[N];
    char idbuf[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(idbuf[i], sizeof(idbuf[i]), "d%d", i);
        dids[i] = i % 3 ? idbuf[i] : NULL;
    }
    CHECK_INT_EQ(s.m->job_model(s.ctx, "j_a", &sp, &len, err), TM_ENOTFOUND);
    /* A model with a NUL and high bytes: a blob, not text. */
    static const unsigned char model[6] = {'P', 'K', 0, 0xff, 0x80, 'z'};
    struct tm_store_result res = {"{\"ok\":1}", 8, N, K, w, dids, model, sizeof(model)};
    CHECK_INT_EQ(s.m->job_finish(s.ctx, NULL, &a, &res, err), TM_OK);
    CHECK_INT_EQ(s.m->job_model(s.ctx, "j_a", &sp, &len, err), TM_OK);
    CHECK(len == sizeof(model) && !memcmp(sp, model, len));
    tm_free(sp);
    CHECK_INT_EQ(s.m->job_model(s.ctx, "j_b", &sp, &len, err), TM_ENOTFOUND);
    CHECK_INT_EQ(s.m->job_model(s.ctx, "j_none", &sp, &len, err), TM_ENOTFOUND);
    CHECK_INT_EQ(s.m->job_result(s.ctx, "j_a", &sp, &len, err), TM_OK);
    CHECK(len == 8 && !strcmp(sp, "{\"ok\":1}"));
    tm_free(sp);
    double *page = NULL;
    char **pids = NULL;
    int64_t n = 0, k = 0, total = 0;
    /* A page across the 256-row chunks. */
    CHECK_INT_EQ(s.m->job_doc_topics(s.ctx, "j_a", 250, 300, &page, &pids, &n, &k, &total, err),
                 TM_OK);
    CHECK(n == 300 && k == K && total == N);
    int good = 1;
    for (int64_t i = 0; page && i < n * k; i++)
        good &= page[i] == (250 * K + i) * 0.5;
    CHECK(good);
    tm_free(page);
    /* Ids come back with their rows; NULL where a document had none. */
    REQUIRE(pids);
    CHECK(pids[0] && !strcmp(pids[0], "d250") && pids[1] && !strcmp(pids[1], "d251"));
    CHECK(pids[2] == NULL && pids[299] == NULL);
    CHECK(pids[298] && !strcmp(pids[298], "d548"));
    for (int64_t i = 0; i < n; i++)
        tm_free(pids[i]);
    tm_free(pids);
    CHECK_INT_EQ(s.m->job_doc_topics(s.ctx, "j_a", 590, 100, &page, &pids, &n, &k, &total, err),
                 TM_OK);
    CHECK_INT_EQ(n, 10);
    tm_free(page);
    for (int64_t i = 0; pids && i < n; i++)
        tm_free(pids[i]);
    tm_free(pids);
    CHECK_INT_EQ(s.m->job_doc_topics(s.ctx, "j_a", 600, 100, &page, &pids, &n, &k, &total, err),
                 TM_OK);
    CHECK_INT_EQ(n, 0);
    CHECK_INT_EQ(s.m->job_doc_topics(s.ctx, "j_b", 0, 10, &page, &pids, &n, &k, &total, err),
                 TM_ENOTFOUND);
    free(w);

    CHECK_INT_EQ(s.m->corpus_jobs_active(s.ctx, "c_1", &active, err), TM_OK);
    CHECK_INT_EQ(active, 1);
    struct tm_job_record list[10];
    int m = 0;
    CHECK_INT_EQ(s.m->job_list(s.ctx, NULL, -1, 0, 10, list, &m, err), TM_OK);
    CHECK_INT_EQ(m, 3);
    CHECK_INT_EQ(s.m->job_list(s.ctx, NULL, TM_JOB_QUEUED, 0, 10, list, &m, err), TM_OK);
    CHECK_INT_EQ(m, 2);
    CHECK_INT_EQ(s.m->job_list(s.ctx, NULL, TM_JOB_QUEUED, b.seq, 10, list, &m, err), TM_OK);
    CHECK_INT_EQ(m, 1);
    CHECK_STR_EQ(list[0].id, "j_c");
    int count = 0;
    CHECK_INT_EQ(s.m->job_scan(s.ctx, TM_JOB_QUEUED, count_fn, &count, err), TM_OK);
    CHECK_INT_EQ(count, 2);
    struct tm_job_record ghost = job("j_ghost", "c_1");
    CHECK_INT_EQ(s.m->job_update(s.ctx, NULL, &ghost, err), TM_ENOTFOUND);

    /* Durable across a reopen. */
    REQUIRE(tm_tmpstore_reopen(ts, err) == 0);
    s = ts->store;
    CHECK_INT_EQ(s.m->job_get(s.ctx, "j_a", &got, err), TM_OK);
    CHECK(got.state == TM_JOB_SUCCEEDED);
    CHECK_INT_EQ(s.m->job_result(s.ctx, "j_a", &sp, &len, err), TM_OK);
    CHECK(len == 8 && !strcmp(sp, "{\"ok\":1}"));
    tm_free(sp);
}

/* Every field of a job record goes to its own column and comes back: an
 * insert writes them all, an update the state and its times and error, and
 * leaves the corpus, method and creation time as they were. Distinct
 * values, so that two swapped columns show. */
static int same_job(const struct tm_job_record *a, const struct tm_job_record *b)
{
    return !strcmp(a->id, b->id) && a->seq == b->seq && !strcmp(a->corpus_id, b->corpus_id) &&
           a->state == b->state && !strcmp(a->stage, b->stage) && a->progress == b->progress &&
           a->attempts == b->attempts && a->created_at == b->created_at &&
           a->started_at == b->started_at && a->finished_at == b->finished_at &&
           !strcmp(a->method, b->method) && !strcmp(a->error_code, b->error_code) &&
           !strcmp(a->error_message, b->error_message);
}

TM_STORE_TEST(store_job_record_round_trip)
{
    char err[TM_ERR_SIZE];
    struct tm_store s = ts->store;
    struct tm_job_record a = job("j_a", "c_1"), got;
    a.state = TM_JOB_RUNNING;
    snprintf(a.stage, sizeof(a.stage), "tokenize");
    a.progress = 0.25;
    a.attempts = 2;
    a.created_at = 1700000001.5;
    a.started_at = 1700000002.5;
    a.finished_at = 1700000003.5;
    snprintf(a.error_code, sizeof(a.error_code), "code_a");
    snprintf(a.error_message, sizeof(a.error_message), "message a");
    CHECK_INT_EQ(s.m->job_insert(s.ctx, &a, "{}", 2, NULL, "id:a", err), TM_OK);
    CHECK_INT_EQ(s.m->job_get(s.ctx, "j_a", &got, err), TM_OK);
    CHECK(same_job(&got, &a));

    struct tm_job_record u = a;
    u.state = TM_JOB_FAILED;
    snprintf(u.stage, sizeof(u.stage), "nmf");
    u.progress = 0.75;
    u.attempts = 3;
    u.started_at = 1700000012.5;
    u.finished_at = 1700000013.5;
    snprintf(u.error_code, sizeof(u.error_code), "code_u");
    snprintf(u.error_message, sizeof(u.error_message), "message u");
    /* Not the update's to change. */
    snprintf(u.corpus_id, sizeof(u.corpus_id), "c_9");
    snprintf(u.method, sizeof(u.method), "lsa");
    u.created_at = 1700000099;
    CHECK_INT_EQ(s.m->job_update(s.ctx, NULL, &u, err), TM_OK);
    CHECK_INT_EQ(s.m->job_get(s.ctx, "j_a", &got, err), TM_OK);
    snprintf(u.corpus_id, sizeof(u.corpus_id), "%s", a.corpus_id);
    snprintf(u.method, sizeof(u.method), "%s", a.method);
    u.created_at = a.created_at;
    CHECK(same_job(&got, &u));
    /* A message cut inside a character (its buffer's end) is stored as
     * valid text, with its valid prefix intact. */
    memset(u.error_message, 'x', sizeof(u.error_message) - 2);
    u.error_message[sizeof(u.error_message) - 2] = (char)0xc3; /* half of an e-acute */
    u.error_message[sizeof(u.error_message) - 1] = 0;
    CHECK_INT_EQ(s.m->job_update(s.ctx, NULL, &u, err), TM_OK);
    CHECK_INT_EQ(s.m->job_get(s.ctx, "j_a", &got, err), TM_OK);
    CHECK(!strncmp(got.error_message, u.error_message, sizeof(u.error_message) - 2));
}

/* The jobs table of a store from before fairness keys and retention. */
#define OLD_JOBS_TABLE                                                                             \
    "CREATE TABLE jobs(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,"            \
    " corpus_id TEXT NOT NULL, spec BLOB NOT NULL, idem_key TEXT UNIQUE, state INTEGER NOT NULL,"  \
    " stage TEXT NOT NULL, progress REAL NOT NULL, attempts INTEGER NOT NULL,"                     \
    " created_at REAL NOT NULL, started_at REAL NOT NULL, finished_at REAL NOT NULL,"              \
    " method TEXT NOT NULL, error_code TEXT NOT NULL, error_message TEXT NOT NULL, result BLOB,"   \
    " n_documents INTEGER NOT NULL DEFAULT 0, n_topics INTEGER NOT NULL DEFAULT 0);"

/* Each job keeps its fairness key; a store from before keys existed opens,
 * gains the column, and its jobs get the key "". */
TM_TEST(store_job_client_keys)
{
    char dir[256], err[TM_ERR_SIZE], path[300], seen[256] = "";
    REQUIRE(tmpdir(dir, sizeof(dir)) == 0);
    snprintf(path, sizeof(path), "%s/topicd.db", dir);
    sqlite3 *db = NULL;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK_INT_EQ(
        sqlite3_exec(db,
                     OLD_JOBS_TABLE
                     "INSERT INTO jobs(id, corpus_id, spec, state, stage, progress, attempts,"
                     " created_at, started_at, finished_at, method, error_code, error_message)"
                     " VALUES('j_old', 'c_1', '{}', 0, '', 0, 0, 1, 0, 0, 'nmf', '', '');",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    CHECK_INT_EQ(sqlite_int(dir, "PRAGMA user_version"), 0);
    struct tm_store s;
    REQUIRE(tm_store_open_sqlite(&s, dir, err) == TM_OK);
    /* Stamped with the current version, in the start-up transaction. */
    CHECK_INT_EQ(sqlite_int(dir, "PRAGMA user_version"), TM_STORE_SCHEMA_VERSION);
    struct tm_job_record a = job("j_a", "c_1"), b = job("j_b", "c_1");
    CHECK_INT_EQ(s.m->job_insert(s.ctx, &a, "{}", 2, NULL, "id:alice", err), TM_OK);
    CHECK_INT_EQ(s.m->job_insert(s.ctx, &b, "{}", 2, NULL, "ip:10.0.0.7", err), TM_OK);
    tm_store_close(&s);
    /* A reopen does not trip over the column it added. */
    REQUIRE(tm_store_open_sqlite(&s, dir, err) == TM_OK);
    CHECK_INT_EQ(s.m->job_scan(s.ctx, TM_JOB_QUEUED, clients_fn, seen, err), TM_OK);
    CHECK_STR_EQ(seen, "j_old=;j_a=id:alice;j_b=ip:10.0.0.7;");
    tm_store_close(&s);
    rmdir_all(dir);
}

TM_TEST(store_open_failures)
{
    char err[TM_ERR_SIZE];
    struct tm_store s;
    CHECK_INT_EQ(tm_store_open_sqlite(&s, "/proc/no/such/dir", err), TM_EIO);
    CHECK(s.m == NULL);
    tm_store_close(&s);
    char dir[256];
    REQUIRE(tmpdir(dir, sizeof(dir)) == 0);
    /* Every failing allocation of ours is reported and leaks nothing. */
    for (long i = 1; i < 10; i++) {
        tm_testalloc_fail_at(i);
        tm_status st = tm_store_open_sqlite(&s, dir, err);
        tm_testalloc_reset();
        if (st == TM_OK) {
            tm_store_close(&s);
            break;
        }
        CHECK_INT_EQ(st, TM_ENOMEM);
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
    }
    rmdir_all(dir);
}

/* A job finished at `at` with a result, n x 2 document-topic weights and
 * a model. */
static tm_status finish_job(struct tm_store *s, struct tm_job_record *j, enum tm_job_state state,
                            double at, int n, char *err)
{
    double w[600 * 2];
    for (int i = 0; i < 2 * n; i++)
        w[i] = i;
    j->state = state;
    j->finished_at = at;
    static const unsigned char model[3] = {'n', 'p', 'z'};
    struct tm_store_result res = {"{}", 2, n, 2, w, NULL, model, sizeof(model)};
    return s->m->job_finish(s->ctx, NULL, j, state == TM_JOB_SUCCEEDED ? &res : NULL, err);
}

TM_STORE_TEST(store_job_delete)
{
    char err[TM_ERR_SIZE];
    struct tm_store s = ts->store;
    struct tm_corpus_record c = corpus("c_1", 0), gotc;
    struct tm_store_doc doc = {"some text", 9, NULL, 0};
    CHECK_INT_EQ(s.m->corpus_create(s.ctx, &c, err), TM_OK);
    CHECK_INT_EQ(s.m->corpus_append(s.ctx, "c_1", &doc, 1, err), TM_OK);
    CHECK_INT_EQ(s.m->corpus_commit(s.ctx, "c_1", err), TM_OK);

    struct tm_job_record a = job("j_a", "c_1"), b = job("j_b", "c_1"), q = job("j_q", ""), got;
    struct tm_job_record other = job("j_other", "c_1");
    CHECK_INT_EQ(s.m->job_insert(s.ctx, &a, "{\"a\":1}", 7, "key1", "id:a", err), TM_OK);
    CHECK_INT_EQ(s.m->job_insert(s.ctx, &b, "{}", 2, "key2", "id:a", err), TM_OK);
    CHECK_INT_EQ(s.m->job_insert(s.ctx, &q, "{}", 2, NULL, "id:a", err), TM_OK);
    CHECK_INT_EQ(s.m->job_insert(s.ctx, &other, "{}", 2, NULL, "id:a", err), TM_OK);
    /* 600 rows: three chunks of weights, all of which must go. */
    CHECK_INT_EQ(finish_job(&s, &a, TM_JOB_SUCCEEDED, 1700000100, 600, err), TM_OK);
    CHECK_INT_EQ(finish_job(&s, &other, TM_JOB_SUCCEEDED, 1700000100, 10, err), TM_OK);
    b.state = TM_JOB_RUNNING;
    CHECK_INT_EQ(s.m->job_update(s.ctx, NULL, &b, err), TM_OK);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM doc_topics"), 4);

    /* Queued and running jobs are refused: cancel first. */
    CHECK_INT_EQ(s.m->job_delete(s.ctx, "j_b", err), TM_EBUSY);
    CHECK(strstr(err, "running") != NULL);
    CHECK_INT_EQ(s.m->job_delete(s.ctx, "j_q", err), TM_EBUSY);
    CHECK_INT_EQ(s.m->job_get(s.ctx, "j_b", &got, err), TM_OK);
    CHECK_INT_EQ(s.m->job_delete(s.ctx, "j_none", err), TM_ENOTFOUND);

    CHECK_INT_EQ(s.m->job_delete(s.ctx, "j_a", err), TM_OK);
    CHECK_INT_EQ(s.m->job_get(s.ctx, "j_a", &got, err), TM_ENOTFOUND);
    char *sp = NULL;
    size_t len = 0;
    CHECK_INT_EQ(s.m->job_spec(s.ctx, "j_a", &sp, &len, err), TM_ENOTFOUND);
    CHECK_INT_EQ(s.m->job_result(s.ctx, "j_a", &sp, &len, err), TM_ENOTFOUND);
    double *w = NULL;
    char **ids = NULL;
    int64_t n, k, total;
    CHECK_INT_EQ(s.m->job_doc_topics(s.ctx, "j_a", 0, 10, &w, &ids, &n, &k, &total, err),
                 TM_ENOTFOUND);
    /* The weights and the model went with it; the other job's stayed. */
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM doc_topics"), 1);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM job_models"), 1);
    CHECK_INT_EQ(s.m->job_model(s.ctx, "j_a", &sp, &len, err), TM_ENOTFOUND);
    CHECK_INT_EQ(s.m->job_model(s.ctx, "j_other", &sp, &len, err), TM_OK);
    tm_free(sp);
    CHECK_INT_EQ(s.m->job_doc_topics(s.ctx, "j_other", 0, 10, &w, &ids, &n, &k, &total, err),
                 TM_OK);
    CHECK_INT_EQ(n, 10);
    tm_free(w);
    /* The shared corpus stays. */
    CHECK_INT_EQ(s.m->corpus_get(s.ctx, "c_1", &gotc, err), TM_OK);
    CHECK_INT_EQ(gotc.n_documents, 1);
    /* The key is free again: a new job, not the deleted one. */
    CHECK_INT_EQ(s.m->job_by_idem(s.ctx, "key1", &got, &sp, &len, err), TM_ENOTFOUND);
    struct tm_job_record a2 = job("j_a2", "c_1");
    CHECK_INT_EQ(s.m->job_insert(s.ctx, &a2, "{}", 2, "key1", "id:a", err), TM_OK);
    CHECK_INT_EQ(s.m->job_by_idem(s.ctx, "key1", &got, &sp, &len, err), TM_OK);
    CHECK_STR_EQ(got.id, "j_a2");
    tm_free(sp);
    /* A running job's key still holds. */
    struct tm_job_record b2 = job("j_b2", "c_1");
    CHECK_INT_EQ(s.m->job_insert(s.ctx, &b2, "{}", 2, "key2", "id:a", err), TM_EBUSY);
    CHECK_INT_EQ(s.m->job_delete(s.ctx, "j_a", err), TM_ENOTFOUND);

    /* Failed and cancelled jobs are finished too. */
    CHECK_INT_EQ(finish_job(&s, &b, TM_JOB_FAILED, 1700000200, 0, err), TM_OK);
    CHECK_INT_EQ(s.m->job_delete(s.ctx, "j_b", err), TM_OK);
    q.state = TM_JOB_CANCELLED;
    CHECK_INT_EQ(s.m->job_update(s.ctx, NULL, &q, err), TM_OK);
    CHECK_INT_EQ(s.m->job_delete(s.ctx, "j_q", err), TM_OK);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM jobs"), 2);
}

TM_STORE_TEST(store_job_expire)
{
    char err[TM_ERR_SIZE];
    struct tm_store s = ts->store;
    static const enum tm_job_state states[] = {TM_JOB_SUCCEEDED, TM_JOB_FAILED, TM_JOB_CANCELLED,
                                               TM_JOB_SUCCEEDED, TM_JOB_SUCCEEDED};
    /* Five jobs finished at 100 .. 104, one at 1000 (young). */
    for (int i = 0; i < 6; i++) {
        char id[16];
        snprintf(id, sizeof(id), "j_old%d", i);
        struct tm_job_record j = job(id, "c_1");
        CHECK_INT_EQ(s.m->job_insert(s.ctx, &j, "{}", 2, NULL, NULL, err), TM_OK);
        CHECK_INT_EQ(finish_job(&s, &j, i < 5 ? states[i] : TM_JOB_SUCCEEDED,
                                i < 5 ? 100 + i : 1000, 300, err),
                     TM_OK);
    }
    /* Running and queued jobs, even one whose finished_at is old (a run
     * from before a restart), are never touched. */
    struct tm_job_record r = job("j_run", "c_1"), q = job("j_queued", "c_1"), got;
    CHECK_INT_EQ(s.m->job_insert(s.ctx, &r, "{}", 2, NULL, NULL, err), TM_OK);
    CHECK_INT_EQ(s.m->job_insert(s.ctx, &q, "{}", 2, NULL, NULL, err), TM_OK);
    r.state = TM_JOB_RUNNING;
    r.finished_at = 50;
    CHECK_INT_EQ(s.m->job_update(s.ctx, NULL, &r, err), TM_OK);

    int64_t n = -1;
    CHECK_INT_EQ(s.m->job_expire(s.ctx, 500, 0, &n, err), TM_OK);
    CHECK_INT_EQ(n, 0);
    /* Batches of at most limit. */
    CHECK_INT_EQ(s.m->job_expire(s.ctx, 500, 2, &n, err), TM_OK);
    CHECK_INT_EQ(n, 2);
    CHECK_INT_EQ(s.m->job_expire(s.ctx, 500, 2, &n, err), TM_OK);
    CHECK_INT_EQ(n, 2);
    CHECK_INT_EQ(s.m->job_expire(s.ctx, 500, 2, &n, err), TM_OK);
    CHECK_INT_EQ(n, 1);
    CHECK_INT_EQ(s.m->job_expire(s.ctx, 500, 2, &n, err), TM_OK);
    CHECK_INT_EQ(n, 0);
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof(id), "j_old%d", i);
        CHECK_INT_EQ(s.m->job_get(s.ctx, id, &got, err), TM_ENOTFOUND);
    }
    CHECK_INT_EQ(s.m->job_get(s.ctx, "j_old5", &got, err), TM_OK);
    CHECK_INT_EQ(s.m->job_get(s.ctx, "j_run", &got, err), TM_OK);
    CHECK_INT_EQ(s.m->job_get(s.ctx, "j_queued", &got, err), TM_OK);
    /* Two chunks of weights per job: only the young job's are left. */
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM doc_topics"), 2);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM job_models"), 1);
    /* finished_at exactly at the cut-off is not before it. */
    CHECK_INT_EQ(s.m->job_expire(s.ctx, 1000, 100, &n, err), TM_OK);
    CHECK_INT_EQ(n, 0);
    CHECK_INT_EQ(s.m->job_expire(s.ctx, 1e12, 100, &n, err), TM_OK);
    CHECK_INT_EQ(n, 1);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM jobs"), 2);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM doc_topics"), 0);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM job_models"), 0);
}

/* A store from before retention gains the index, and the expiry query
 * uses it rather than scanning every job. */
TM_TEST(store_job_expire_index)
{
    char dir[256], err[TM_ERR_SIZE], path[300];
    REQUIRE(tmpdir(dir, sizeof(dir)) == 0);
    snprintf(path, sizeof(path), "%s/topicd.db", dir);
    sqlite3 *db = NULL;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK_INT_EQ(sqlite3_exec(db, OLD_JOBS_TABLE "CREATE INDEX jobs_state ON jobs(state, seq);",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
    struct tm_store s;
    REQUIRE(tm_store_open_sqlite(&s, dir, err) == TM_OK);
    tm_store_close(&s);
    CHECK_INT_EQ(sqlite_int(dir, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND"
                                 " name = 'jobs_finished'"),
                 1);
    /* The plan of sq_job_expire's SELECT. */
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    REQUIRE(sqlite3_prepare_v2(db,
                               "EXPLAIN QUERY PLAN SELECT seq FROM jobs WHERE state IN (2, 3, 4)"
                               " AND finished_at < 5 LIMIT 100",
                               -1, &st, NULL) == SQLITE_OK);
    char plan[512] = "";
    while (sqlite3_step(st) == SQLITE_ROW) {
        size_t l = strlen(plan);
        snprintf(plan + l, sizeof(plan) - l, "%s;", (const char *)sqlite3_column_text(st, 3));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    CHECK(strstr(plan, "jobs_finished (state=? AND finished_at<?)") != NULL);
    if (!strstr(plan, "jobs_finished"))
        fprintf(stderr, "plan: %s\n", plan);
    rmdir_all(dir);
}

/* A SQLite data directory has one process: a second open is refused while
 * the first holds it, with a message that says why and what to do; after a
 * close it opens. A PostgreSQL store has any number: a second open works
 * beside the first, as another replica's. */
TM_STORE_TEST(store_open_twice)
{
    char err[TM_ERR_SIZE] = "";
    struct tm_store other;
    if (ts->driver == TM_STORE_PG) {
        REQUIRE(tm_tmpstore_open_again(ts, &other, err) == TM_OK);
        struct tm_job_record j = job("j_1", "c_1"), got;
        CHECK_INT_EQ(other.m->job_insert(other.ctx, &j, "{}", 2, NULL, NULL, err), TM_OK);
        CHECK_INT_EQ(ts->store.m->job_get(ts->store.ctx, "j_1", &got, err), TM_OK);
        CHECK_INT_EQ(other.m->ping(other.ctx, err), TM_OK);
        tm_store_close(&other);
        CHECK_INT_EQ(ts->store.m->ping(ts->store.ctx, err), TM_OK);
        return;
    }
    CHECK_INT_EQ(tm_tmpstore_open_again(ts, &other, err), TM_EBUSY);
    CHECK(other.m == NULL);
    char want[64];
    snprintf(want, sizeof(want), "(pid %ld)", (long)getpid());
    CHECK(strstr(err, ts->dir) && strstr(err, "in use by another topicd") && strstr(err, want) &&
          strstr(err, "--store postgresql://"));
    if (!strstr(err, "topicd"))
        fprintf(stderr, "err: %s\n", err);
    /* The first is unharmed. */
    CHECK_INT_EQ(ts->store.m->ping(ts->store.ctx, err), TM_OK);
    tm_store_close(&ts->store);
    REQUIRE(tm_tmpstore_open_again(ts, &other, err) == TM_OK);
    tm_store_close(&other);
    REQUIRE(tm_tmpstore_reopen(ts, err) == 0);
}

/* The store keeps its schema version; one newer than this binary knows is
 * refused, saying so. */
TM_STORE_TEST(store_schema_version)
{
    char err[TM_ERR_SIZE] = "";
    int pg = ts->driver == TM_STORE_PG;
    const char *get = pg ? "SELECT max(version) FROM topicd_schema" : "PRAGMA user_version";
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, get), TM_STORE_SCHEMA_VERSION);
    if (pg)
        CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM topicd_schema"), 1);
    tm_store_close(&ts->store);
    REQUIRE(tm_tmpstore_sql_exec(ts, pg ? "UPDATE topicd_schema SET version = 99"
                                        : "PRAGMA user_version = 99") == 0);
    struct tm_store other;
    CHECK_INT_EQ(tm_tmpstore_open_again(ts, &other, err), TM_EIO);
    CHECK(strstr(err, "schema version 99") && strstr(err, "newer than this topicd"));
    /* Refused before anything was touched. */
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, get), 99);
    char set[64];
    snprintf(set, sizeof(set), "%s = %d",
             pg ? "UPDATE topicd_schema SET version" : "PRAGMA user_version",
             TM_STORE_SCHEMA_VERSION);
    REQUIRE(tm_tmpstore_sql_exec(ts, set) == 0);
    REQUIRE(tm_tmpstore_reopen(ts, err) == 0);
}

/* Each job keeps its fairness key across a reopen. */
TM_STORE_TEST(store_job_clients)
{
    char err[TM_ERR_SIZE], seen[256] = "";
    struct tm_job_record a = job("j_a", "c_1"), b = job("j_b", "c_1"), c = job("j_c", "c_1");
    struct tm_store *s = &ts->store;
    CHECK_INT_EQ(s->m->job_insert(s->ctx, &a, "{}", 2, NULL, "id:alice", err), TM_OK);
    CHECK_INT_EQ(s->m->job_insert(s->ctx, &b, "{}", 2, NULL, "ip:10.0.0.7", err), TM_OK);
    CHECK_INT_EQ(s->m->job_insert(s->ctx, &c, "{}", 2, NULL, NULL, err), TM_OK);
    REQUIRE(tm_tmpstore_reopen(ts, err) == 0);
    CHECK_INT_EQ(s->m->job_scan(s->ctx, TM_JOB_QUEUED, clients_fn, seen, err), TM_OK);
    CHECK_STR_EQ(seen, "j_a=id:alice;j_b=ip:10.0.0.7;j_c=;");
}

struct race {
    struct tm_store *s;
    pthread_barrier_t *go;
    int i;
    tm_status st;
    int64_t n;
};

static void *insert_same_key(void *arg)
{
    struct race *r = arg;
    char id[32], err[TM_ERR_SIZE];
    snprintf(id, sizeof(id), "j_race%d", r->i);
    struct tm_job_record j = job(id, "c_1");
    pthread_barrier_wait(r->go);
    r->st = r->s->m->job_insert(r->s->ctx, &j, "{}", 2, "race-key", "id:a", err);
    return NULL;
}

/* The same Idempotency-Key inserted by many threads at once makes one job:
 * the store's unique index decides, not a read before the write. */
TM_STORE_TEST(store_idem_race)
{
    enum { N = 8 };
    pthread_t th[N];
    struct race r[N];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N);
    for (int i = 0; i < N; i++) {
        r[i] = (struct race){&ts->store, &go, i, TM_OK, 0};
        REQUIRE(pthread_create(&th[i], NULL, insert_same_key, &r[i]) == 0);
    }
    int ok = 0, busy = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += r[i].st == TM_OK;
        busy += r[i].st == TM_EBUSY;
    }
    pthread_barrier_destroy(&go);
    CHECK_INT_EQ(ok, 1);
    CHECK_INT_EQ(busy, N - 1);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM jobs"), 1);
}

static void *expire_all(void *arg)
{
    struct race *r = arg;
    char err[TM_ERR_SIZE];
    pthread_barrier_wait(r->go);
    for (;;) {
        int64_t n = 0;
        r->st = r->s->m->job_expire(r->s->ctx, 1e12, 4, &n, err);
        r->n += n;
        if (r->st || n == 0)
            return NULL;
    }
}

/* Sweepers running at once (several replicas' in PostgreSQL) delete each
 * job once, and none fails on another's. */
TM_STORE_TEST(store_expire_race)
{
    enum { JOBS = 40, N = 3 };
    char err[TM_ERR_SIZE];
    struct tm_store *s = &ts->store;
    for (int i = 0; i < JOBS; i++) {
        char id[32];
        snprintf(id, sizeof(id), "j_x%d", i);
        struct tm_job_record j = job(id, "c_1");
        CHECK_INT_EQ(s->m->job_insert(s->ctx, &j, "{}", 2, NULL, NULL, err), TM_OK);
        CHECK_INT_EQ(finish_job(s, &j, TM_JOB_SUCCEEDED, 100 + i, 300, err), TM_OK);
    }
    pthread_t th[N];
    struct race r[N];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N);
    for (int i = 0; i < N; i++) {
        r[i] = (struct race){s, &go, i, TM_OK, 0};
        REQUIRE(pthread_create(&th[i], NULL, expire_all, &r[i]) == 0);
    }
    int64_t total = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT_EQ(r[i].st, TM_OK);
        total += r[i].n;
    }
    pthread_barrier_destroy(&go);
    CHECK_INT_EQ(total, JOBS);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM jobs"), 0);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM doc_topics"), 0);
}
