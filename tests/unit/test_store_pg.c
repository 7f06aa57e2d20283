/* test_store_pg.c - what is PostgreSQL's own in server/store_pg.c: several
 * processes migrating one fresh store at once, a server restart under an
 * open store, and the sources of the password (which never shows). The
 * contract shared with SQLite is test_store.c's. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "harness.h"
#include "server/store.h"
#include "tmpstore.h"

#define SKIP_WITHOUT_PG()                                                                          \
    do {                                                                                           \
        if (tm_tmpstore_pg_skip()) {                                                               \
            tm_test_skip(t, tm_tmpstore_pg_skip());                                                \
            return;                                                                                \
        }                                                                                          \
    } while (0)

struct opener {
    const char *conninfo;
    pthread_barrier_t *go;
    struct tm_store store;
    tm_status st;
    char err[TM_ERR_SIZE];
};

static void *open_at_once(void *arg)
{
    struct opener *o = arg;
    pthread_barrier_wait(o->go);
    o->st = tm_store_open_pg(&o->store, o->conninfo, NULL, o->err);
    return NULL;
}

/* Three processes (threads here, each with its own connections, which is
 * all the server sees) open one empty store at once: the migration runs
 * once under its lock and none of them fails on another's DDL; all three
 * share the store. */
TM_TEST(store_pg_migrate_race)
{
    SKIP_WITHOUT_PG();
    for (int round = 0; round < 3; round++) {
        char schema[40], conninfo[1024];
        REQUIRE(tm_test_pg_schema_new(schema, conninfo, sizeof(conninfo)) == 0);
        enum { N = 3 };
        struct opener o[N];
        pthread_t th[N];
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, N);
        for (int i = 0; i < N; i++) {
            memset(&o[i], 0, sizeof(o[i]));
            o[i].conninfo = conninfo;
            o[i].go = &go;
            REQUIRE(pthread_create(&th[i], NULL, open_at_once, &o[i]) == 0);
        }
        int opened = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            opened += o[i].st == TM_OK;
            if (o[i].st)
                fprintf(stderr, "open %d: %s\n", i, o[i].err);
        }
        pthread_barrier_destroy(&go);
        CHECK_INT_EQ(opened, N);
        struct tm_tmpstore view = {.driver = TM_STORE_PG};
        snprintf(view.conninfo, sizeof(view.conninfo), "%s", conninfo);
        CHECK_INT_EQ(tm_tmpstore_sql_int(&view, "SELECT count(*) FROM topicd_schema"), 1);
        CHECK_INT_EQ(tm_tmpstore_sql_int(&view, "SELECT max(version) FROM topicd_schema"),
                     TM_STORE_SCHEMA_VERSION);
        CHECK_INT_EQ(tm_tmpstore_sql_int(&view, "SELECT count(*) FROM pg_tables WHERE"
                                                " schemaname = current_schema()"),
                     10); /* corpora, documents, jobs, doc_topics, topicd_schema, clients,
                             api_keys, tenant_usage, secrets, job_models */
        for (int i = 0; i < N; i++)
            tm_store_close(&o[i].store);
        tm_test_pg_schema_drop(schema);
    }
}

struct wakes {
    atomic_int jobs;
};

static void on_wake(void *arg, enum tm_store_wake what)
{
    struct wakes *w = arg;
    if (what == TM_STORE_WAKE_JOBS)
        atomic_fetch_add(&w->jobs, 1);
}

/* Runs `$TOPICD_TEST_PG_CTL what` (stop, start): 0 or -1. */
static int pg_ctl(const char *what)
{
    const char *ctl = getenv("TOPICD_TEST_PG_CTL");
    if (!ctl)
        return -1;
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "%s %s >/dev/null 2>&1", ctl, what);
    return system(cmd) ? -1 : 0;
}

/* The server stops under an open store and comes back: calls during the
 * outage fail with TM_EIO (503 + Retry-After in HTTP) and fast, never hang
 * or crash; afterwards the pool reconnects, the data is there, and the
 * listener hears notifications again (it tells its listeners at once on
 * reconnecting, then of each new job). */
TM_TEST(store_pg_restart)
{
    SKIP_WITHOUT_PG();
    if (!getenv("TOPICD_TEST_PG_CTL")) {
        tm_test_skip(t, "TOPICD_TEST_PG_CTL is unset: no cluster of the suite's own to restart");
        return;
    }
    struct tm_tmpstore ts;
    REQUIRE(tm_tmpstore_open_driver(&ts, "restart", TM_STORE_PG, 1) == 0);
    struct tm_store *s = &ts.store;
    char err[TM_ERR_SIZE];
    struct tm_job_record j, got;
    memset(&j, 0, sizeof(j));
    snprintf(j.id, sizeof(j.id), "j_before");
    snprintf(j.corpus_id, sizeof(j.corpus_id), "c_1");
    CHECK_INT_EQ(s->m->job_insert(s->ctx, &j, "{}", 2, "key-before", "id:a", err), TM_OK);
    j.state = TM_JOB_SUCCEEDED;
    struct tm_store_result res = {"{\"r\":1}", 7, 0, 0, NULL, NULL, NULL, 0};
    CHECK_INT_EQ(s->m->job_finish(s->ctx, NULL, &j, &res, err), TM_OK);
    struct wakes w = {0};
    REQUIRE(s->m->listen(s->ctx, on_wake, &w, err) == TM_OK);

    REQUIRE(pg_ctl("stop -m fast") == 0);
    double t0 = tm_clock_monotonic();
    int eio = 0;
    for (int i = 0; i < 5; i++) {
        eio += s->m->job_get(s->ctx, "j_before", &got, err) == TM_EIO;
        eio += s->m->ping(s->ctx, err) == TM_EIO;
        struct tm_job_record lost = j;
        snprintf(lost.id, sizeof(lost.id), "j_lost%d", i);
        eio += s->m->job_insert(s->ctx, &lost, "{}", 2, NULL, "id:a", err) == TM_EIO;
        struct tm_store_doc d = {"text", 4, NULL, 0};
        eio += s->m->corpus_append(s->ctx, "c_1", &d, 1, err) == TM_EIO;
    }
    CHECK_INT_EQ(eio, 20);
    CHECK(strstr(err, "store:") != NULL);
    CHECK(tm_clock_monotonic() - t0 < 5);
    REQUIRE(pg_ctl("start") == 0);

    /* Within the backoff (at most a few seconds), everything works again. */
    tm_status st = TM_EIO;
    double until = tm_clock_monotonic() + 15;
    while (st && tm_clock_monotonic() < until) {
        st = s->m->job_get(s->ctx, "j_before", &got, err);
        if (st) {
            struct timespec ts100 = {0, 100000000};
            nanosleep(&ts100, NULL);
        }
    }
    CHECK_INT_EQ(st, TM_OK);
    CHECK(got.state == TM_JOB_SUCCEEDED);
    char *json = NULL;
    size_t len = 0;
    CHECK_INT_EQ(s->m->job_result(s->ctx, "j_before", &json, &len, err), TM_OK);
    CHECK(json && len == 7 && !memcmp(json, "{\"r\":1}", 7));
    tm_free(json);
    CHECK_INT_EQ(s->m->ping(s->ctx, err), TM_OK);
    CHECK_INT_EQ(s->m->job_get(s->ctx, "j_lost0", &got, err), TM_ENOTFOUND);
    CHECK_INT_EQ(tm_tmpstore_sql_int(&ts, "SELECT count(*) FROM documents"), 0);
    struct tm_job_record after = j;
    snprintf(after.id, sizeof(after.id), "j_after");
    after.state = TM_JOB_QUEUED;
    int before = atomic_load(&w.jobs);
    CHECK_INT_EQ(s->m->job_insert(s->ctx, &after, "{}", 2, NULL, "id:a", err), TM_OK);
    double wend = tm_clock_monotonic() + 10;
    while (atomic_load(&w.jobs) == before && tm_clock_monotonic() < wend)
        usleep(10000);
    CHECK(atomic_load(&w.jobs) > before);
    s->m->unlisten(s->ctx, &w);
    tm_tmpstore_close(&ts);
}

/* A fresh schema's conninfo for the role that needs a password. */
static int pw_conninfo(char schema[40], char *conninfo, size_t size)
{
    char base[1024];
    if (tm_test_pg_schema_new(schema, base, sizeof(base)))
        return -1;
    snprintf(conninfo, size, "%s user=%s", base, getenv("TOPICD_TEST_PG_PW_USER"));
    return 0;
}

/* 1 when a store opens on conninfo (the password from wherever the
 * environment says); err gets the failure, which must not hold pw. */
static int opens(struct tm_test_ctx *t, const char *conninfo, const char *pw, char *err)
{
    struct tm_store s;
    err[0] = 0;
    tm_status st = tm_store_open(&s, conninfo, NULL, err);
    CHECK(strstr(err, pw) == NULL);
    if (!st) {
        CHECK(strstr(s.target, pw) == NULL);
        CHECK(strstr(s.target, "dbname=") && strstr(s.target, "user="));
    }
    tm_store_close(&s);
    return st == TM_OK;
}

/* libpq's PGPASSWORD and PGPASSFILE, TOPICD_STORE_PASSWORD_FILE, and a
 * password in the URL (TOPICD_STORE's way) each log in; none of them shows
 * in the redacted target or in an error, a wrong port's included. */
TM_TEST(store_pg_passwords)
{
    SKIP_WITHOUT_PG();
    const char *pw = getenv("TOPICD_TEST_PG_PW");
    if (!pw || !getenv("TOPICD_TEST_PG_PW_USER")) {
        tm_test_skip(t, "TOPICD_TEST_PG_PW is unset (scripts/with-pg.sh makes the role)");
        return;
    }
    char schema[40], ci[1200], bad[1300], err[TM_ERR_SIZE], file[300];
    REQUIRE(pw_conninfo(schema, ci, sizeof(ci)) == 0);
    snprintf(bad, sizeof(bad), "%s port=1", ci);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(file, sizeof(file), "%s/topicd-pw-%ld", tmp, (long)getpid());

    /* No password: refused by the server. */
    CHECK(!opens(t, ci, pw, err));
    CHECK(strstr(err, "password") != NULL);

    setenv("PGPASSWORD", pw, 1);
    CHECK(opens(t, ci, pw, err));
    CHECK(!opens(t, bad, pw, err));
    unsetenv("PGPASSWORD");

    FILE *f = fopen(file, "w");
    REQUIRE(f);
    fprintf(f, "*:*:*:%s:%s\n", getenv("TOPICD_TEST_PG_PW_USER"), pw);
    fclose(f);
    chmod(file, 0600);
    setenv("PGPASSFILE", file, 1);
    CHECK(opens(t, ci, pw, err));
    unsetenv("PGPASSFILE");

    /* The secret file of a container: the password and a newline. */
    f = fopen(file, "w");
    REQUIRE(f);
    fprintf(f, "%s\n", pw);
    fclose(f);
    setenv("TOPICD_STORE_PASSWORD_FILE", file, 1);
    CHECK(opens(t, ci, pw, err));
    CHECK(!opens(t, bad, pw, err));
    CHECK(strstr(err, "port") || strstr(err, "connect"));
    setenv("TOPICD_STORE_PASSWORD_FILE", "/nonexistent/topicd-pw", 1);
    CHECK(!opens(t, ci, pw, err));
    CHECK(strstr(err, "TOPICD_STORE_PASSWORD_FILE") != NULL);
    unsetenv("TOPICD_STORE_PASSWORD_FILE");
    unlink(file);

    /* In the value itself (TOPICD_STORE may carry it; the command line may
     * not, test_config.c). */
    char with[1400];
    snprintf(with, sizeof(with), "%s password=%s", ci, pw);
    int has = 0;
    enum tm_store_driver d;
    char target[TM_STORE_TARGET_SIZE];
    CHECK_INT_EQ(tm_store_parse(with, NULL, &d, &has, target, err), TM_OK);
    CHECK(has == 1 && d == TM_STORE_PG && !strstr(target, pw));
    CHECK(opens(t, with, pw, err));
    snprintf(with, sizeof(with), "%s port=1 password=%s", ci, pw);
    CHECK(!opens(t, with, pw, err));
    tm_test_pg_schema_drop(schema);
}
