/* test_jobs.c - the job table, queue and workers (server/jobs.h) with a fake
 * work function over a real store, each test on SQLite and on PostgreSQL
 * (TM_STORE_TEST). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "harness.h"
#include "server/jobs.h"
#include "server/log.h"
#include "tmpstore.h"

struct fake {
    pthread_mutex_t lock;
    char order[16][TM_ID_SIZE]; /* jobs in the order they started */
    int n;
    atomic_int endless_started;
};

/* The spec says what to do: "ok", "fail", or "endless" (until stopped). */
static void fake_work(void *ctx, const struct tm_job_run *run, struct tm_job_outcome *out)
{
    struct fake *f = ctx;
    pthread_mutex_lock(&f->lock);
    if (f->n < 16)
        snprintf(f->order[f->n++], TM_ID_SIZE, "%s", run->job->id);
    pthread_mutex_unlock(&f->lock);
    if (!strncmp(run->spec, "endless", run->spec_len)) {
        atomic_store(&f->endless_started, 1);
        for (int i = 0; i < 100000; i++) {
            if (tm_progress_report(&run->progress, "fake", 0.5)) {
                out->status = TM_ECANCELLED;
                return;
            }
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (!strncmp(run->spec, "fail", run->spec_len)) {
        out->status = TM_ENUMERIC;
        snprintf(out->error_code, sizeof(out->error_code), "numerical_failure");
        snprintf(out->error_message, sizeof(out->error_message), "model: NaN");
        return;
    }
    tm_progress_report(&run->progress, "fake", 1.0);
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
    pthread_mutex_init(&e->fake.lock, NULL);
    return tm_tmpstore_add_corpus(ts, "c_1");
}

static void env_close(struct env *e)
{
    pthread_mutex_destroy(&e->fake.lock);
}

static struct tm_jobs_config config(struct env *e, int workers, int max_queue, int max_attempts)
{
    struct tm_jobs_config c = {workers, max_queue, max_attempts, 2, 5, fake_work, &e->fake, 0, 0, 0,
                               0,       0};
    return c;
}

static enum tm_job_state wait_final(struct tm_jobs *j, const char *id)
{
    struct tm_job_record r;
    char err[TM_ERR_SIZE];
    for (int i = 0; i < 5000; i++) {
        if (tm_jobs_get(j, id, &r, err) == TM_JOBS_ACCEPTED && tm_job_state_final(r.state))
            return r.state;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    return TM_JOB_QUEUED;
}

static enum tm_jobs_refusal submit_as(struct tm_jobs *j, const char *client, const char *what,
                                      const char *key, struct tm_job_record *r, char *err)
{
    return tm_jobs_submit(j, "c_1", what, strlen(what), "nmf", key, client, NULL, r, err);
}

static enum tm_jobs_refusal submit(struct tm_jobs *j, const char *what, const char *key,
                                   struct tm_job_record *r)
{
    char err[TM_ERR_SIZE];
    return submit_as(j, NULL, what, key, r, err);
}

static void wait_started(struct env *e)
{
    for (int i = 0; i < 5000 && !atomic_load(&e->fake.endless_started); i++)
        usleep(1000);
}

TM_STORE_TEST(jobs_run_fifo_and_results)
{
    struct env e;
    REQUIRE(env_open(&e, ts) == 0);
    struct tm_jobs_config c = config(&e, 1, 16, 3);
    struct tm_jobs *j;
    char err[TM_ERR_SIZE];
    REQUIRE(tm_jobs_new(&j, &e.ts->store, &c, err) == TM_OK);
    struct tm_job_record r[5];
    const char *what[5] = {"ok", "fail", "ok", "ok", "ok"};
    for (int i = 0; i < 5; i++)
        CHECK_INT_EQ(submit(j, what[i], NULL, &r[i]), TM_JOBS_ACCEPTED);
    for (int i = 0; i < 5; i++)
        CHECK_INT_EQ(wait_final(j, r[i].id), i == 1 ? TM_JOB_FAILED : TM_JOB_SUCCEEDED);
    /* One worker: first in, first out. */
    CHECK_INT_EQ(e.fake.n, 5);
    for (int i = 0; i < 5 && i < e.fake.n; i++)
        CHECK_STR_EQ(e.fake.order[i], r[i].id);
    /* Results and errors are in the store; old jobs are read from it once
     * they leave memory (recent_jobs is 2 here). */
    char *json;
    size_t len;
    CHECK_INT_EQ(e.ts->store.m->job_result(e.ts->store.ctx, r[0].id, &json, &len, err), TM_OK);
    CHECK(len == 7);
    tm_free(json);
    struct tm_job_record got;
    CHECK_INT_EQ(tm_jobs_get(j, r[1].id, &got, err), TM_JOBS_ACCEPTED);
    CHECK_STR_EQ(got.error_code, "numerical_failure");
    CHECK_INT_EQ(got.attempts, 1);
    CHECK(got.finished_at >= got.started_at && got.started_at >= got.created_at);
    CHECK_INT_EQ(tm_jobs_get(j, "j_nope", &got, err), TM_JOBS_NOT_FOUND);
    /* Unknown corpus. */
    CHECK_INT_EQ(tm_jobs_submit(j, "c_nope", "ok", 2, "nmf", NULL, NULL, NULL, &got, err),
                 TM_JOBS_NO_CORPUS);
    tm_jobs_free(j);
    env_close(&e);
}

TM_STORE_TEST(jobs_idempotency_queue_and_cancel)
{
    struct env e;
    REQUIRE(env_open(&e, ts) == 0);
    struct tm_jobs_config c = config(&e, 1, 1, 3);
    struct tm_jobs *j;
    char err[TM_ERR_SIZE];
    REQUIRE(tm_jobs_new(&j, &e.ts->store, &c, err) == TM_OK);
    struct tm_job_record a, b, x;
    CHECK_INT_EQ(submit(j, "endless", "k", &a), TM_JOBS_ACCEPTED);
    CHECK_INT_EQ(submit(j, "endless", "k", &x), TM_JOBS_REPLAYED);
    CHECK_STR_EQ(a.id, x.id);
    CHECK_INT_EQ(submit(j, "ok", "k", &x), TM_JOBS_KEY_MISMATCH);
    for (int i = 0; i < 5000 && !atomic_load(&e.fake.endless_started); i++)
        usleep(1000);
    CHECK_INT_EQ(submit(j, "ok", NULL, &b), TM_JOBS_ACCEPTED);
    CHECK_INT_EQ(submit(j, "ok", NULL, &x), TM_JOBS_QUEUE_FULL);
    struct tm_jobs_stats st;
    tm_jobs_stats(j, &st);
    CHECK(st.queued == 1 && st.running == 1 && st.workers_alive == 1);
    CHECK_INT_EQ(tm_jobs_delete_corpus(j, "c_1", err), TM_JOBS_CORPUS_BUSY);
    CHECK_INT_EQ(tm_jobs_cancel(j, b.id, &x, err), TM_JOBS_CANCELLED);
    CHECK_INT_EQ(x.state, TM_JOB_CANCELLED);
    CHECK_INT_EQ(tm_jobs_cancel(j, a.id, &x, err), TM_JOBS_CANCELLING);
    CHECK_INT_EQ(wait_final(j, a.id), TM_JOB_CANCELLED);
    CHECK_INT_EQ(tm_jobs_cancel(j, a.id, &x, err), TM_JOBS_FINISHED);
    CHECK_INT_EQ(tm_jobs_cancel(j, "j_nope", &x, err), TM_JOBS_NOT_FOUND);
    CHECK_INT_EQ(tm_jobs_delete_corpus(j, "c_1", err), TM_JOBS_ACCEPTED);
    CHECK_INT_EQ(tm_jobs_delete_corpus(j, "c_1", err), TM_JOBS_NO_CORPUS);
    /* The cancellation of the queued job is durable. */
    struct tm_job_record stored;
    CHECK_INT_EQ(e.ts->store.m->job_get(e.ts->store.ctx, b.id, &stored, err), TM_OK);
    CHECK_INT_EQ(stored.state, TM_JOB_CANCELLED);
    tm_jobs_free(j);
    env_close(&e);
}

/* Jobs a crash left "running" are re-queued, until max_attempts; a drain
 * puts the running job back without counting the attempt. */
TM_STORE_TEST(jobs_recovery_and_drain)
{
    struct env e;
    REQUIRE(env_open(&e, ts) == 0);
    char err[TM_ERR_SIZE];
    struct tm_job_record crashed, doomed, queued;
    memset(&crashed, 0, sizeof(crashed));
    snprintf(crashed.id, sizeof(crashed.id), "j_crashed");
    snprintf(crashed.corpus_id, sizeof(crashed.corpus_id), "c_1");
    crashed.state = TM_JOB_RUNNING;
    crashed.attempts = 1;
    doomed = crashed;
    snprintf(doomed.id, sizeof(doomed.id), "j_doomed");
    doomed.attempts = 2;
    queued = crashed;
    snprintf(queued.id, sizeof(queued.id), "j_queued");
    queued.state = TM_JOB_QUEUED;
    queued.attempts = 0;
    CHECK_INT_EQ(e.ts->store.m->job_insert(e.ts->store.ctx, &queued, "ok", 2, NULL, NULL, err),
                 TM_OK);
    CHECK_INT_EQ(e.ts->store.m->job_insert(e.ts->store.ctx, &crashed, "ok", 2, NULL, NULL, err),
                 TM_OK);
    CHECK_INT_EQ(e.ts->store.m->job_insert(e.ts->store.ctx, &doomed, "ok", 2, NULL, NULL, err),
                 TM_OK);

    struct tm_jobs_config c = config(&e, 1, 4, 2);
    struct tm_jobs *j;
    REQUIRE(tm_jobs_new(&j, &e.ts->store, &c, err) == TM_OK);
    CHECK_INT_EQ(wait_final(j, "j_queued"), TM_JOB_SUCCEEDED);
    CHECK_INT_EQ(wait_final(j, "j_crashed"), TM_JOB_SUCCEEDED);
    struct tm_job_record got;
    CHECK_INT_EQ(tm_jobs_get(j, "j_doomed", &got, err), TM_JOBS_ACCEPTED);
    CHECK_INT_EQ(got.state, TM_JOB_FAILED);
    CHECK_STR_EQ(got.error_code, "worker_crashed");
    CHECK_INT_EQ(tm_jobs_get(j, "j_crashed", &got, err), TM_JOBS_ACCEPTED);
    CHECK_INT_EQ(got.attempts, 2);

    /* Drain with no grace while a job runs. */
    struct tm_job_record a;
    CHECK_INT_EQ(submit(j, "endless", NULL, &a), TM_JOBS_ACCEPTED);
    for (int i = 0; i < 5000 && !atomic_load(&e.fake.endless_started); i++)
        usleep(1000);
    CHECK_INT_EQ(tm_jobs_drain(j, 0), 0);
    CHECK_INT_EQ(submit(j, "ok", NULL, &got), TM_JOBS_DRAINING);
    tm_jobs_free(j);
    CHECK_INT_EQ(e.ts->store.m->job_get(e.ts->store.ctx, a.id, &got, err), TM_OK);
    CHECK_INT_EQ(got.state, TM_JOB_QUEUED);
    CHECK_INT_EQ(got.attempts, 0);
    env_close(&e);
}

/* One client's backlog does not starve another: with one worker busy on
 * a's first job and three more of a's queued, b's job submitted last starts
 * next; each client's jobs start in submission order; a client may queue
 * only max_queue_per_client jobs. */
TM_STORE_TEST(jobs_fair_across_clients)
{
    struct env e;
    REQUIRE(env_open(&e, ts) == 0);
    struct tm_jobs_config c = config(&e, 1, 16, 3);
    c.max_queue_per_client = 3;
    struct tm_jobs *j;
    char err[TM_ERR_SIZE];
    REQUIRE(tm_jobs_new(&j, &e.ts->store, &c, err) == TM_OK);
    struct tm_job_record a[4], b, x;
    CHECK_INT_EQ(submit_as(j, "id:a", "endless", NULL, &a[0], err), TM_JOBS_ACCEPTED);
    wait_started(&e);
    for (int i = 1; i < 4; i++)
        CHECK_INT_EQ(submit_as(j, "id:a", "ok", NULL, &a[i], err), TM_JOBS_ACCEPTED);
    CHECK_INT_EQ(submit_as(j, "id:a", "ok", NULL, &x, err), TM_JOBS_QUOTA_QUEUED);
    CHECK(strstr(err, "queued-jobs quota") && strstr(err, "id:a"));
    CHECK_INT_EQ(submit_as(j, "id:b", "ok", NULL, &b, err), TM_JOBS_ACCEPTED);
    CHECK_INT_EQ(tm_jobs_cancel(j, a[0].id, &x, err), TM_JOBS_CANCELLING);
    for (int i = 1; i < 4; i++)
        CHECK_INT_EQ(wait_final(j, a[i].id), TM_JOB_SUCCEEDED);
    CHECK_INT_EQ(wait_final(j, b.id), TM_JOB_SUCCEEDED);
    const char *want[5] = {a[0].id, b.id, a[1].id, a[2].id, a[3].id};
    CHECK_INT_EQ(e.fake.n, 5);
    for (int i = 0; i < 5 && i < e.fake.n; i++)
        CHECK_STR_EQ(e.fake.order[i], want[i]);
    /* The lanes are gone once their jobs are: a can queue again. */
    CHECK_INT_EQ(submit_as(j, "id:a", "ok", NULL, &x, err), TM_JOBS_ACCEPTED);
    CHECK_INT_EQ(wait_final(j, x.id), TM_JOB_SUCCEEDED);
    tm_jobs_free(j);
    env_close(&e);
}

/* Recovery queues each job under the client stored with it: a's backlog,
 * inserted first, still takes turns with b and c after a restart. */
TM_STORE_TEST(jobs_recovery_keeps_clients)
{
    struct env e;
    REQUIRE(env_open(&e, ts) == 0);
    char err[TM_ERR_SIZE];
    const char *ids[8] = {"j_a1", "j_a2", "j_a3", "j_b1", "j_a4", "j_c1", "j_b2", "j_old"};
    const char *clients[8] = {"id:a", "id:a", "id:a", "id:b", "id:a", "ip:10.0.0.1", "id:b", ""};
    for (int i = 0; i < 8; i++) {
        struct tm_job_record r;
        memset(&r, 0, sizeof(r));
        snprintf(r.id, sizeof(r.id), "%s", ids[i]);
        snprintf(r.corpus_id, sizeof(r.corpus_id), "c_1");
        r.state = i == 0 ? TM_JOB_RUNNING : TM_JOB_QUEUED; /* a1 was running at the crash */
        CHECK_INT_EQ(e.ts->store.m->job_insert(e.ts->store.ctx, &r, "ok", 2, NULL, clients[i], err),
                     TM_OK);
    }
    struct tm_jobs_config c = config(&e, 1, 16, 3);
    struct tm_jobs *j;
    REQUIRE(tm_jobs_new(&j, &e.ts->store, &c, err) == TM_OK);
    for (int i = 0; i < 8; i++)
        CHECK_INT_EQ(wait_final(j, ids[i]), TM_JOB_SUCCEEDED);
    /* Round-robin in order of each client's oldest job, FIFO within one. */
    const char *want[8] = {"j_a1", "j_b1", "j_c1", "j_old", "j_a2", "j_b2", "j_a3", "j_a4"};
    CHECK_INT_EQ(e.fake.n, 8);
    for (int i = 0; i < 8 && i < e.fake.n; i++)
        CHECK_STR_EQ(e.fake.order[i], want[i]);
    tm_jobs_free(j);
    env_close(&e);
}
