/* test_jobs_retention.c - deleting finished jobs (server/jobs.h: DELETE and
 * the retention sweeper) with a fake work function over a real store, each
 * test on SQLite and on PostgreSQL (TM_STORE_TEST).
 * The --job-retention setting is tested in test_config.c. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "harness.h"
#include "server/jobs.h"
#include "tmpstore.h"

struct fake {
    atomic_int endless_started;
};

/* The spec says what to do: "ok", or "endless" (until stopped). */
static void fake_work(void *ctx, const struct tm_job_run *run, struct tm_job_outcome *out)
{
    struct fake *f = ctx;
    if (!strncmp(run->spec, "endless", run->spec_len)) {
        atomic_store(&f->endless_started, 1);
        for (;;) {
            if (tm_progress_report(&run->progress, "fake", 0.5)) {
                out->status = TM_ECANCELLED;
                return;
            }
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    double *w = tm_mallocarray(4, sizeof(double));
    for (int i = 0; w && i < 4; i++)
        w[i] = i;
    out->doc_topics = w;
    out->n_documents = 2;
    out->n_topics = 2;
    out->result_json = tm_strndup("{\"r\":1}", 7);
    out->result_len = 7;
    out->status = TM_OK;
}

struct env {
    struct tm_tmpstore *ts;
    struct fake fake;
};

/* The env of one test, on the store of the driver the test runs on. */
static int env_open(struct env *e, struct tm_tmpstore *ts)
{
    memset(e, 0, sizeof(*e));
    e->ts = ts;
    return tm_tmpstore_add_corpus(ts, "c_1");
}

/* One worker; recent_jobs 16, so finished jobs stay in memory and a
 * deletion that forgot memory would still be seen by tm_jobs_get. */
static struct tm_jobs_config config(struct env *e)
{
    struct tm_jobs_config c = {1, 16, 3, 16, 0, fake_work, &e->fake, 0, 0, 0, 0, 0};
    return c;
}

static enum tm_job_state wait_final(struct tm_jobs *j, const char *id)
{
    struct tm_job_record r;
    char err[TM_ERR_SIZE];
    for (double end = tm_clock_monotonic() + 10; tm_clock_monotonic() < end; usleep(2000))
        if (tm_jobs_get(j, id, &r, err) == TM_JOBS_ACCEPTED && tm_job_state_final(r.state))
            return r.state;
    return TM_JOB_QUEUED;
}

static enum tm_jobs_refusal submit(struct tm_jobs *j, const char *what, const char *key,
                                   struct tm_job_record *r)
{
    char err[TM_ERR_SIZE];
    return tm_jobs_submit(j, "c_1", what, strlen(what), "nmf", key, NULL, NULL, r, err);
}

TM_STORE_TEST(jobs_delete_finished_or_cancel)
{
    struct env e;
    REQUIRE(env_open(&e, ts) == 0);
    struct tm_jobs_config c = config(&e);
    struct tm_jobs *j;
    char err[TM_ERR_SIZE];
    REQUIRE(tm_jobs_new(&j, &e.ts->store, &c, err) == TM_OK);
    struct tm_job_record done, run, queued, x;
    CHECK_INT_EQ(submit(j, "ok", "key-1", &done), TM_JOBS_ACCEPTED);
    CHECK_INT_EQ(wait_final(j, done.id), TM_JOB_SUCCEEDED);
    CHECK_INT_EQ(submit(j, "endless", NULL, &run), TM_JOBS_ACCEPTED);
    for (double end = tm_clock_monotonic() + 10;
         tm_clock_monotonic() < end && !atomic_load(&e.fake.endless_started);)
        usleep(1000);
    CHECK_INT_EQ(submit(j, "ok", NULL, &queued), TM_JOBS_ACCEPTED);

    /* Not finished: DELETE cancels, as before. */
    CHECK_INT_EQ(tm_jobs_delete(j, queued.id, &x, err), TM_JOBS_CANCELLED);
    CHECK_INT_EQ(x.state, TM_JOB_CANCELLED);
    CHECK_INT_EQ(tm_jobs_delete(j, run.id, &x, err), TM_JOBS_CANCELLING);
    CHECK_INT_EQ(wait_final(j, run.id), TM_JOB_CANCELLED);

    /* Finished: gone from memory and from the store, result and all. */
    CHECK_INT_EQ(tm_jobs_delete(j, done.id, &x, err), TM_JOBS_DELETED);
    CHECK_INT_EQ(tm_jobs_get(j, done.id, &x, err), TM_JOBS_NOT_FOUND);
    CHECK_INT_EQ(e.ts->store.m->job_get(e.ts->store.ctx, done.id, &x, err), TM_ENOTFOUND);
    char *json = NULL;
    size_t len;
    CHECK_INT_EQ(e.ts->store.m->job_result(e.ts->store.ctx, done.id, &json, &len, err),
                 TM_ENOTFOUND);
    CHECK_INT_EQ(tm_jobs_delete(j, done.id, &x, err), TM_JOBS_NOT_FOUND);
    CHECK_INT_EQ(tm_jobs_cancel(j, done.id, &x, err), TM_JOBS_NOT_FOUND);
    /* Its Idempotency-Key now names a new job. */
    CHECK_INT_EQ(submit(j, "ok", "key-1", &x), TM_JOBS_ACCEPTED);
    CHECK(strcmp(x.id, done.id) != 0);
    CHECK_INT_EQ(wait_final(j, x.id), TM_JOB_SUCCEEDED);
    CHECK_INT_EQ(submit(j, "ok", "key-1", &done), TM_JOBS_REPLAYED);
    CHECK_STR_EQ(done.id, x.id);

    /* Cancelled jobs are finished too. */
    CHECK_INT_EQ(tm_jobs_delete(j, queued.id, &x, err), TM_JOBS_DELETED);
    CHECK_INT_EQ(tm_jobs_delete(j, run.id, &x, err), TM_JOBS_DELETED);
    CHECK_INT_EQ(tm_jobs_get(j, run.id, &x, err), TM_JOBS_NOT_FOUND);
    CHECK_INT_EQ(tm_jobs_delete(j, "j_nope", &x, err), TM_JOBS_NOT_FOUND);
    /* The corpus they ran on stays. */
    struct tm_corpus_record corpus;
    CHECK_INT_EQ(e.ts->store.m->corpus_get(e.ts->store.ctx, "c_1", &corpus, err), TM_OK);
    tm_jobs_free(j);
}

TM_STORE_TEST(jobs_expire_batches)
{
    struct env e;
    REQUIRE(env_open(&e, ts) == 0);
    struct tm_jobs_config c = config(&e);
    struct tm_jobs *j;
    char err[TM_ERR_SIZE];
    REQUIRE(tm_jobs_new(&j, &e.ts->store, &c, err) == TM_OK);
    struct tm_job_record ok[3], run, x;
    for (int i = 0; i < 3; i++) {
        CHECK_INT_EQ(submit(j, "ok", NULL, &ok[i]), TM_JOBS_ACCEPTED);
        CHECK_INT_EQ(wait_final(j, ok[i].id), TM_JOB_SUCCEEDED);
    }
    CHECK_INT_EQ(submit(j, "endless", NULL, &run), TM_JOBS_ACCEPTED);
    for (double end = tm_clock_monotonic() + 10;
         tm_clock_monotonic() < end && !atomic_load(&e.fake.endless_started);)
        usleep(1000);
    /* 250 old finished jobs straight in the store: three batches. */
    for (int i = 0; i < 250; i++) {
        struct tm_job_record r;
        memset(&r, 0, sizeof(r));
        snprintf(r.id, sizeof(r.id), "j_old%d", i);
        snprintf(r.corpus_id, sizeof(r.corpus_id), "c_1");
        r.state = TM_JOB_QUEUED;
        REQUIRE(e.ts->store.m->job_insert(e.ts->store.ctx, &r, "{}", 2, NULL, NULL, err) == TM_OK);
        r.state = TM_JOB_FAILED;
        r.finished_at = 1000 + i;
        REQUIRE(e.ts->store.m->job_update(e.ts->store.ctx, NULL, &r, err) == TM_OK);
    }

    int64_t n = -1;
    CHECK_INT_EQ(tm_jobs_expire(j, 2000, &n, err), TM_OK);
    CHECK_INT_EQ(n, 250);
    for (int i = 0; i < 3; i++)
        CHECK_INT_EQ(tm_jobs_get(j, ok[i].id, &x, err), TM_JOBS_ACCEPTED);
    CHECK_INT_EQ(e.ts->store.m->job_get(e.ts->store.ctx, "j_old0", &x, err), TM_ENOTFOUND);
    CHECK_INT_EQ(e.ts->store.m->job_get(e.ts->store.ctx, "j_old249", &x, err), TM_ENOTFOUND);

    /* Everything finished before now: the running job stays. */
    CHECK_INT_EQ(tm_jobs_expire(j, tm_clock_unix() + 1, &n, err), TM_OK);
    CHECK_INT_EQ(n, 3);
    for (int i = 0; i < 3; i++)
        CHECK_INT_EQ(tm_jobs_get(j, ok[i].id, &x, err), TM_JOBS_NOT_FOUND);
    CHECK_INT_EQ(tm_jobs_get(j, run.id, &x, err), TM_JOBS_ACCEPTED);
    CHECK_INT_EQ(x.state, TM_JOB_RUNNING);
    CHECK_INT_EQ(e.ts->store.m->job_get(e.ts->store.ctx, run.id, &x, err), TM_OK);
    CHECK_INT_EQ(tm_jobs_cancel(j, run.id, &x, err), TM_JOBS_CANCELLING);
    CHECK_INT_EQ(wait_final(j, run.id), TM_JOB_CANCELLED);
    tm_jobs_free(j);
}

TM_STORE_TEST(jobs_retention_sweeper)
{
    struct env e;
    REQUIRE(env_open(&e, ts) == 0);
    struct tm_jobs_config c = config(&e);
    struct tm_jobs *j;
    char err[TM_ERR_SIZE];
    REQUIRE(tm_jobs_new(&j, &e.ts->store, &c, err) == TM_OK);
    CHECK_INT_EQ(tm_jobs_start_retention(j, 1, err), TM_OK);
    CHECK_INT_EQ(tm_jobs_start_retention(j, 1, err), TM_EINVAL);
    struct tm_job_record r, x;
    CHECK_INT_EQ(submit(j, "ok", NULL, &r), TM_JOBS_ACCEPTED);
    CHECK_INT_EQ(wait_final(j, r.id), TM_JOB_SUCCEEDED);
    /* Kept for its retention (1 s), then deleted within a sweep (0.1 s). */
    CHECK_INT_EQ(tm_jobs_get(j, r.id, &x, err), TM_JOBS_ACCEPTED);
    double t0 = tm_clock_monotonic();
    while (tm_clock_monotonic() < t0 + 5 && tm_jobs_get(j, r.id, &x, err) == TM_JOBS_ACCEPTED)
        usleep(20000);
    CHECK_INT_EQ(tm_jobs_get(j, r.id, &x, err), TM_JOBS_NOT_FOUND);
    CHECK_INT_EQ(e.ts->store.m->job_get(e.ts->store.ctx, r.id, &x, err), TM_ENOTFOUND);
    CHECK(tm_clock_monotonic() - t0 < 3);
    tm_jobs_free(j);

    /* A week's retention sweeps every minute; stopping wakes the sweeper
     * rather than wait for it. */
    REQUIRE(tm_jobs_new(&j, &e.ts->store, &c, err) == TM_OK);
    CHECK_INT_EQ(tm_jobs_start_retention(j, 604800, err), TM_OK);
    usleep(50000);
    t0 = tm_clock_monotonic();
    CHECK_INT_EQ(tm_jobs_drain(j, 0), 0);
    tm_jobs_free(j);
    CHECK(tm_clock_monotonic() - t0 < 2);
    /* 0: no sweeper. */
    REQUIRE(tm_jobs_new(&j, &e.ts->store, &c, err) == TM_OK);
    CHECK_INT_EQ(tm_jobs_start_retention(j, 0, err), TM_OK);
    tm_jobs_free(j);
}
