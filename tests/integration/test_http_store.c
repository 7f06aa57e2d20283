/*
 * test_http_store.c - `topicd serve` on its stores as processes see them:
 * a second server on one SQLite data dir is refused (exit status and
 * message); `topicd store copy` moves a served SQLite store into
 * PostgreSQL and a server on --store serves the same job and result; a
 * job end to end on PostgreSQL across a restart of topicd and an outage of
 * PostgreSQL (503 + Retry-After, then 200); and the password, from each of
 * its sources, never in the configuration line, /v1/info or an error.
 */
#include "http_helpers.h"
#include "tmpstore.h"

/* Runs topicd with args (NULL-terminated, after "topicd"), its stdout and
 * stderr into log; its exit status (128 + signal), or -1. */
static int run_topicd(const char *log, ...)
{
    char bin[1024];
    snprintf(bin, sizeof(bin), "%s/topicd", tm_test_bindir());
    const char *argv[32];
    int n = 0;
    argv[n++] = bin;
    va_list ap;
    va_start(ap, log);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 31)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    struct th_server w = {.pid = pid};
    int rc = th_wait_exit(&w, 60);
    if (rc < 0)
        th_kill9(&w);
    return rc;
}

/* The whole of a small file (malloc'd, NUL-terminated), or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *b = calloc(1, 1 << 20);
    if (b)
        fread(b, 1, (1 << 20) - 1, f);
    fclose(f);
    return b;
}

/* 1 when the file holds s. */
static int file_has(const char *path, const char *s)
{
    char *b = slurp(path);
    int has = b && strstr(b, s);
    free(b);
    return has;
}

/* GET path's body holds s: 1, 0, or -1 when the status is not 200. */
static int body_has(const struct th_server *s, const char *path, const char *what)
{
    struct th_resp r;
    long st = th_get(s, path, &r);
    int has = st != 200 ? -1 : (r.body && strstr(r.body, what)) ? 1 : 0;
    th_resp_free(&r);
    return has;
}

/* Uploads a small corpus and fits 2 topics on it with the Idempotency-Key
 * key: the corpus id in cid, the job's in jid. */
static int run_job(struct tm_test_ctx *t, struct th_server *s, const char *key, char *cid,
                   char *jid)
{
    size_t len;
    char state[32];
    char *jl = th_corpus_jsonl(40, 12, 7, &len);
    long st = th_upload(s, "application/x-ndjson", jl, len, cid);
    free(jl);
    CHECK_INT_EQ(st, 201);
    if (st != 201)
        return -1;
    CHECK_INT_EQ(th_submit_model(s, cid, "{\"method\":\"nmf\",\"n_topics\":2}", key, jid), 202);
    CHECK_STR_EQ(th_wait_job(s, jid, 60, state), "succeeded");
    return strcmp(state, "succeeded") ? -1 : 0;
}

/* GET path's body into *out (malloc'd): the status. */
static long get_body(const struct th_server *s, const char *fmt, const char *id, char **out)
{
    char path[160];
    snprintf(path, sizeof(path), fmt, id);
    struct th_resp r;
    long st = th_get(s, path, &r);
    *out = r.body;
    r.body = NULL;
    th_resp_free(&r);
    return st;
}

#define SKIP_WITHOUT_PG()                                                                          \
    do {                                                                                           \
        if (tm_tmpstore_pg_skip()) {                                                               \
            tm_test_skip(t, tm_tmpstore_pg_skip());                                                \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Issue #14's shared data dir: a second server on it refuses to start,
 * naming the dir and the owner's pid; the first goes on. Then the served
 * store moves into PostgreSQL with `topicd store copy` (refused while the
 * server runs), and a server on the copy serves the same job and result. */
TM_TEST(http_store_owner_and_copy)
{
    struct th_server a;
    memset(&a, 0, sizeof(a));
    char log2[300], cid[40], jid[40], again[40], want[64], schema[40] = "", conninfo[1024];
    if (th_tmpdir(&a) || th_start(&a, "--workers", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    snprintf(log2, sizeof(log2), "%s/second.log", a.dir);
    CHECK_INT_EQ(
        run_topicd(log2, "serve", "--port", "0", "--gpu", "off", "--data-dir", a.dir, NULL), 1);
    snprintf(want, sizeof(want), "(pid %ld)", (long)a.pid);
    CHECK(file_has(log2, "is in use by another topicd") && file_has(log2, want) &&
          file_has(log2, a.dir));
    CHECK_INT_EQ(th_get(&a, "/readyz", NULL), 200);
    if (run_job(t, &a, "copy-key", cid, jid))
        goto out;
    char *result = NULL, *page = NULL;
    CHECK_INT_EQ(get_body(&a, "/v1/jobs/%s/result", jid, &result), 200);
    CHECK_INT_EQ(get_body(&a, "/v1/jobs/%s/document-topics?offset=3&limit=5", jid, &page), 200);

    if (tm_tmpstore_pg_skip()) {
        free(result);
        free(page);
        goto out;
    }
    REQUIRE(tm_test_pg_schema_new(schema, conninfo, sizeof(conninfo)) == 0);
    char with_pw[1200];
    snprintf(with_pw, sizeof(with_pw), "%s password=never-here", conninfo);
    CHECK_INT_EQ(run_topicd(log2, "store", "copy", "--from", a.dir, "--to", with_pw, NULL), 2);
    CHECK(file_has(log2, "TOPICD_STORE_PASSWORD_FILE") && !file_has(log2, "never-here"));
    CHECK_INT_EQ(run_topicd(log2, "store", "copy", "--from", a.dir, "--to", conninfo, NULL), 1);
    CHECK(file_has(log2, "Stop the server on"));
    CHECK_INT_EQ(th_stop(&a), 0);
    CHECK_INT_EQ(run_topicd(log2, "store", "copy", "--from", a.dir, "--to", conninfo, NULL), 0);
    CHECK(file_has(log2, "copied") && file_has(log2, "1 jobs"));

    setenv("TOPICD_STORE", conninfo, 1);
    int started = th_start(&a, "--workers", "1", NULL);
    unsetenv("TOPICD_STORE");
    CHECK_INT_EQ(started, 0);
    if (!started) {
        char *r2 = NULL, *p2 = NULL, state[32];
        CHECK_INT_EQ(body_has(&a, "/v1/info", "\"store\":\"postgresql\""), 1);
        CHECK_STR_EQ(th_wait_job(&a, jid, 1, state), "succeeded");
        CHECK_INT_EQ(get_body(&a, "/v1/jobs/%s/result", jid, &r2), 200);
        CHECK_INT_EQ(get_body(&a, "/v1/jobs/%s/document-topics?offset=3&limit=5", jid, &p2), 200);
        CHECK(result && r2 && !strcmp(result, r2));
        CHECK(page && p2 && !strcmp(page, p2));
        /* The key came along: a replay answers with the copied job. */
        CHECK_INT_EQ(
            th_submit_model(&a, cid, "{\"method\":\"nmf\",\"n_topics\":2}", "copy-key", again),
            202);
        CHECK_STR_EQ(again, jid);
        free(r2);
        free(p2);
    }
    free(result);
    free(page);
out:
    th_cleanup(&a);
    if (schema[0])
        tm_test_pg_schema_drop(schema);
}

/* One server on PostgreSQL: a job end to end, a second server (replica)
 * on the same store answering for that job and its key, a restart of
 * topicd (the job, its result and its key are still there), and
 * PostgreSQL stopped under it: 503 with Retry-After and /readyz 503, then,
 * once it is back, 200. */
TM_TEST(http_pg_store)
{
    SKIP_WITHOUT_PG();
    struct th_server s;
    memset(&s, 0, sizeof(s));
    char schema[40] = "", conninfo[1024], cid[40], jid[40], again[40];
    char *result = NULL, *r2 = NULL;
    struct th_server s2;
    memset(&s2, 0, sizeof(s2));
    REQUIRE(tm_test_pg_schema_new(schema, conninfo, sizeof(conninfo)) == 0);
    setenv("TOPICD_STORE", conninfo, 1);
    if (th_tmpdir(&s) || th_start(&s, "--workers", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not start");
        goto out;
    }
    CHECK_INT_EQ(body_has(&s, "/v1/info", "\"store\":\"postgresql\""), 1);
    CHECK_INT_EQ(body_has(&s, "/v1/info", "dbname=topicd_test"), 1);
    if (run_job(t, &s, "pg-key", cid, jid))
        goto out;
    CHECK_INT_EQ(get_body(&s, "/v1/jobs/%s/result", jid, &result), 200);

    memset(&s2, 0, sizeof(s2));
    if (th_tmpdir(&s2) || th_start(&s2, "--workers", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "the second replica did not start");
        goto out;
    }
    CHECK_INT_EQ(get_body(&s2, "/v1/jobs/%s/result", jid, &r2), 200);
    CHECK(result && r2 && !strcmp(result, r2));
    free(r2);
    r2 = NULL;
    CHECK_INT_EQ(th_submit_model(&s2, cid, "{\"method\":\"nmf\",\"n_topics\":2}", "pg-key", again),
                 202);
    CHECK_STR_EQ(again, jid);
    CHECK_INT_EQ(body_has(&s2, "/v1/info", "\"replica\":\"r_"), 1);
    CHECK_INT_EQ(th_stop(&s2), 0);

    CHECK_INT_EQ(th_stop(&s), 0);
    if (th_start(&s, "--workers", "1", NULL)) {
        tm_test_fail(t, __FILE__, __LINE__, "server did not restart");
        goto out;
    }
    CHECK_INT_EQ(get_body(&s, "/v1/jobs/%s/result", jid, &r2), 200);
    CHECK(result && r2 && !strcmp(result, r2));
    CHECK_INT_EQ(th_submit_model(&s, cid, "{\"method\":\"nmf\",\"n_topics\":2}", "pg-key", again),
                 202);
    CHECK_STR_EQ(again, jid);

    const char *ctl = getenv("TOPICD_TEST_PG_CTL");
    if (ctl) {
        char cmd[2048];
        snprintf(cmd, sizeof(cmd), "%s stop -m fast >/dev/null 2>&1", ctl);
        REQUIRE(system(cmd) == 0);
        struct th_resp r;
        char path[80];
        snprintf(path, sizeof(path), "/v1/jobs/%s", jid);
        CHECK_INT_EQ(th_get(&s, "/v1/jobs?limit=5", &r), 503);
        CHECK(r.retry_after[0] != 0);
        th_resp_free(&r);
        CHECK_INT_EQ(th_get(&s, "/readyz", &r), 503);
        th_resp_free(&r);
        size_t len;
        char *jl = th_corpus_jsonl(4, 5, 1, &len), cid2[40];
        CHECK_INT_EQ(th_upload(&s, "application/x-ndjson", jl, len, cid2), 503);
        free(jl);
        snprintf(cmd, sizeof(cmd), "%s start >/dev/null 2>&1", ctl);
        REQUIRE(system(cmd) == 0);
        long st = 0;
        double end = th_now() + 15;
        while (th_now() < end && (st = th_get(&s, "/readyz", NULL)) != 200)
            th_sleep_ms(100);
        CHECK_INT_EQ(st, 200);
        CHECK_INT_EQ(th_get(&s, path, NULL), 200);
    }
out:
    unsetenv("TOPICD_STORE");
    free(result);
    free(r2);
    th_cleanup(&s2);
    th_cleanup(&s);
    tm_test_pg_schema_drop(schema);
}

/* Starts a server with the environment as set, checks that it runs (or,
 * when bad_port, that it exits 1), and that pw shows neither in its log
 * (the configuration line, errors) nor in /v1/info. */
static void password_case(struct tm_test_ctx *t, struct th_server *s, const char *pw, int fails)
{
    if (fails) {
        char log[300];
        snprintf(log, sizeof(log), "%s/fail.log", s->dir);
        CHECK_INT_EQ(
            run_topicd(log, "serve", "--port", "0", "--gpu", "off", "--data-dir", s->dir, NULL), 1);
        CHECK(file_has(log, "cannot connect") && file_has(log, "configuration"));
        CHECK(!file_has(log, pw));
        return;
    }
    CHECK_INT_EQ(th_start(s, "--workers", "1", NULL), 0);
    CHECK_INT_EQ(th_get(s, "/readyz", NULL), 200);
    CHECK_INT_EQ(body_has(s, "/v1/info", "\"store\":\"postgresql\""), 1);
    CHECK_INT_EQ(body_has(s, "/v1/info", pw), 0);
    CHECK_INT_EQ(th_stop(s), 0);
    CHECK(file_has(s->log, "\"store_driver\":\"postgresql\""));
    CHECK(!file_has(s->log, pw));
}

TM_TEST(http_store_password_hidden)
{
    SKIP_WITHOUT_PG();
    const char *pw = getenv("TOPICD_TEST_PG_PW"), *user = getenv("TOPICD_TEST_PG_PW_USER");
    if (!pw || !user) {
        tm_test_skip(t, "TOPICD_TEST_PG_PW is unset (scripts/with-pg.sh makes the role)");
        return;
    }
    struct th_server s;
    memset(&s, 0, sizeof(s));
    char schema[40] = "", base[1024], ci[1200], v[1400], file[300], log[300];
    REQUIRE(tm_test_pg_schema_new(schema, base, sizeof(base)) == 0);
    snprintf(ci, sizeof(ci), "%s user=%s", base, user);
    if (th_tmpdir(&s))
        goto out;
    snprintf(file, sizeof(file), "%s/pw", s.dir);
    FILE *f = fopen(file, "w");
    REQUIRE(f);
    fprintf(f, "%s\n", pw);
    fclose(f);

    /* In TOPICD_STORE itself (conninfo and URL forms). */
    snprintf(v, sizeof(v), "%s password=%s", ci, pw);
    setenv("TOPICD_STORE", v, 1);
    password_case(t, &s, pw, 0);
    snprintf(v, sizeof(v), "%s port=1 password=%s", ci, pw);
    setenv("TOPICD_STORE", v, 1);
    password_case(t, &s, pw, 1);
    /* TOPICD_STORE_PASSWORD_FILE, then PGPASSWORD. */
    setenv("TOPICD_STORE", ci, 1);
    setenv("TOPICD_STORE_PASSWORD_FILE", file, 1);
    password_case(t, &s, pw, 0);
    snprintf(v, sizeof(v), "%s port=1", ci);
    setenv("TOPICD_STORE", v, 1);
    password_case(t, &s, pw, 1);
    unsetenv("TOPICD_STORE_PASSWORD_FILE");
    setenv("TOPICD_STORE", ci, 1);
    setenv("PGPASSWORD", pw, 1);
    password_case(t, &s, pw, 0);
    unsetenv("PGPASSWORD");
    unsetenv("TOPICD_STORE");
    /* On the command line: refused before anything starts. */
    snprintf(v, sizeof(v), "postgresql://%s:%s@localhost/db", user, pw);
    snprintf(log, sizeof(log), "%s/argv.log", s.dir);
    CHECK_INT_EQ(run_topicd(log, "serve", "--port", "0", "--store", v, NULL), 2);
    CHECK(file_has(log, "TOPICD_STORE_PASSWORD_FILE") && !file_has(log, pw));
out:
    unsetenv("TOPICD_STORE");
    unsetenv("TOPICD_STORE_PASSWORD_FILE");
    unsetenv("PGPASSWORD");
    th_cleanup(&s);
    tm_test_pg_schema_drop(schema);
}
