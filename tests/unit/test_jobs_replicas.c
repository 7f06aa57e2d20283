/* test_jobs_replicas.c - several replicas (tm_jobs instances, each with its
 * own store handle where the driver allows several: PostgreSQL) on one
 * store, as processes behind a load balancer: one queue, fair across the
 * fleet; leases that survive a replica starting and expire when one
 * freezes; fencing of the replica that lost its job; cancels, progress and
 * polls through any replica; drain; idempotency keys raced through two.
 * Each test on SQLite and on PostgreSQL (TM_STORE_TEST), with short leases. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "harness.h"
#include "server/jobs.h"
#include "tmpstore.h"

/* What the fake work of one replica does, by spec: "ok" finishes at once,
 * "hold" and "endless" report progress until released (hold: then
 * succeeds) or stopped. The result names the replica. Starts are recorded
 * in the shared order. */
struct order {
    pthread_mutex_t lock;
    char ids[64][TM_ID_SIZE];
    int n;
};

struct fake {
    const char *name;
    struct order *order;
    atomic_int started; /* hold or endless jobs running */
    atomic_int release;
    atomic_int stopped; /* runs that ended on a stop */
};

static void fake_work(void *ctx, const struct tm_job_run *run, struct tm_job_outcome *out)
{
    struct fake *f = ctx;
    pthread_mutex_lock(&f->order->lock);
    if (f->order->n < 64)
        snprintf(f->order->ids[f->order->n++], TM_ID_SIZE, "%s", run->job->id);
    pthread_mutex_unlock(&f->order->lock);
    int hold = !strncmp(run->spec, "hold", run->spec_len);
    if (hold || !strncmp(run->spec, "endless", run->spec_len)) {
        atomic_fetch_add(&f->started, 1);
        while (!(hold && atomic_load(&f->release))) {
            if (tm_progress_report(&run->progress, f->name, 0.5)) {
                atomic_fetch_add(&f->stopped, 1);
                out->status = TM_ECANCELLED;
                return;
            }
            usleep(2000);
        }
    }
    char json[64];
    int n = snprintf(json, sizeof(json), "{\"by\":\"%s\"}", f->name);
    out->result_json = tm_strndup(json, (size_t)n);
    out->result_len = (size_t)n;
    out->status = TM_OK;
}

/* A fleet of up to 3 replicas on the test's store. */
struct fleet {
    struct tm_tmpstore *ts;
    struct tm_store extra[3]; /* PostgreSQL: each replica's own handle */
    struct tm_store *store[3];
    struct fake fake[3];
    struct order order;
    struct tm_jobs *jobs[3];
    int n;
};

static const char *const names[3] = {"A", "B", "C"};

/* Opens n replicas' stores (PostgreSQL: the first the test's, the others
 * handles of their own, as other processes' would be); 0 or -1. */
static int fleet_open(struct fleet *f, struct tm_tmpstore *ts, int n)
{
    memset(f, 0, sizeof(*f));
    f->ts = ts;
    f->n = n;
    pthread_mutex_init(&f->order.lock, NULL);
    for (int i = 0; i < n; i++) {
        char err[TM_ERR_SIZE];
        f->fake[i].name = names[i];
        f->fake[i].order = &f->order;
        f->store[i] = &ts->store;
        if (i && ts->driver == TM_STORE_PG) {
            if (tm_tmpstore_open_again(ts, &f->extra[i], err)) {
                fprintf(stderr, "replica %s: %s\n", names[i], err);
                return -1;
            }
            f->store[i] = &f->extra[i];
        }
    }
    return tm_tmpstore_add_corpus(ts, "c_1");
}

/* Starts replica i: workers, a lease of lease_s, a short poll. */
static tm_status fleet_start(struct fleet *f, int i, int workers, double lease_s)
{
    char err[TM_ERR_SIZE];
    struct tm_jobs_config c = {.workers = workers,
                               .max_queue = 256,
                               .max_attempts = 3,
                               .work = fake_work,
                               .work_ctx = &f->fake[i],
                               .lease_s = lease_s,
                               .poll_s = 0.3};
    tm_status st = tm_jobs_new(&f->jobs[i], f->store[i], &c, err);
    if (st)
        fprintf(stderr, "replica %s: %s\n", names[i], err);
    return st;
}

static void fleet_close(struct fleet *f)
{
    for (int i = 0; i < f->n; i++) {
        atomic_store(&f->fake[i].release, 1);
        tm_jobs_free(f->jobs[i]);
        f->jobs[i] = NULL;
        if (f->store[i] == &f->extra[i])
            tm_store_close(&f->extra[i]);
    }
    pthread_mutex_destroy(&f->order.lock);
}

static enum tm_jobs_refusal submit(struct tm_jobs *j, const char *what, const char *client,
                                   const char *key, struct tm_job_record *r)
{
    char err[TM_ERR_SIZE];
    return tm_jobs_submit(j, "c_1", what, strlen(what), "nmf", key, client, NULL, r, err);
}

/* The job as replica j reads it, once cond holds (within limit_s); 1 then. */
static int wait_job(struct tm_jobs *j, const char *id, double limit_s, struct tm_job_record *r,
                    int (*cond)(const struct tm_job_record *))
{
    char err[TM_ERR_SIZE];
    for (double end = tm_clock_monotonic() + limit_s; tm_clock_monotonic() < end; usleep(5000))
        if (tm_jobs_get(j, id, r, err) == TM_JOBS_ACCEPTED && cond(r))
            return 1;
    return 0;
}

static int is_final(const struct tm_job_record *r)
{
    return tm_job_state_final(r->state);
}

static int is_running(const struct tm_job_record *r)
{
    return r->state == TM_JOB_RUNNING;
}

static int shows_progress(const struct tm_job_record *r)
{
    return r->state == TM_JOB_RUNNING && r->stage[0] && r->progress > 0.4;
}

static int wait_started(atomic_int *v, int n)
{
    for (double end = tm_clock_monotonic() + 10; tm_clock_monotonic() < end; usleep(2000))
        if (atomic_load(v) >= n)
            return 1;
    return 0;
}

/* The stored result of job id, compared with want. */
static int result_is(struct tm_store *s, const char *id, const char *want)
{
    char err[TM_ERR_SIZE], *json = NULL;
    size_t len = 0;
    int same = s->m->job_result(s->ctx, id, &json, &len, err) == TM_OK && len == strlen(want) &&
               !memcmp(json, want, len);
    tm_free(json);
    return same;
}

/* Jobs submitted through either replica run once each, on both; any
 * replica answers for any job. */
TM_STORE_TEST(jobs_replicas_share_the_queue)
{
    struct fleet f;
    REQUIRE(fleet_open(&f, ts, 2) == 0);
    REQUIRE(fleet_start(&f, 0, 2, 3) == TM_OK);
    REQUIRE(fleet_start(&f, 1, 2, 3) == TM_OK);
    enum { N = 12 };
    struct tm_job_record r[N], got;
    for (int i = 0; i < N; i++)
        CHECK_INT_EQ(submit(f.jobs[i % 2], "ok", i % 3 ? "id:a" : "id:b", NULL, &r[i]),
                     TM_JOBS_ACCEPTED);
    for (int i = 0; i < N; i++) {
        CHECK(wait_job(f.jobs[(i + 1) % 2], r[i].id, 10, &got, is_final));
        CHECK_INT_EQ(got.state, TM_JOB_SUCCEEDED);
        CHECK_INT_EQ(got.attempts, 1);
    }
    CHECK_INT_EQ(f.order.n, N); /* each started once */
    fleet_close(&f);
}

/* Issue #14's fairness, fleet-wide: client A holds 40 queued jobs and
 * client B submits one afterwards; B's job is among the next 3 the fleet
 * starts. */
TM_STORE_TEST(jobs_replicas_fair_backlog)
{
    struct fleet f;
    REQUIRE(fleet_open(&f, ts, 3) == 0);
    struct tm_job_record hold[3], a[40], b;
    for (int i = 0; i < 3; i++)
        REQUIRE(fleet_start(&f, i, 1, 3) == TM_OK);
    /* Every worker busy, then the backlog. */
    for (int i = 0; i < 3; i++)
        REQUIRE(submit(f.jobs[i], "hold", "id:x", NULL, &hold[i]) == TM_JOBS_ACCEPTED);
    int busy = 0;
    for (double end = tm_clock_monotonic() + 10; busy < 3 && tm_clock_monotonic() < end;
         usleep(2000))
        busy = atomic_load(&f.fake[0].started) + atomic_load(&f.fake[1].started) +
               atomic_load(&f.fake[2].started);
    REQUIRE(busy == 3);
    for (int i = 0; i < 40; i++)
        REQUIRE(submit(f.jobs[i % 3], "ok", "id:a", NULL, &a[i]) == TM_JOBS_ACCEPTED);
    REQUIRE(submit(f.jobs[1], "ok", "id:b", NULL, &b) == TM_JOBS_ACCEPTED);
    /* One worker goes on first, so that the order of starts is the order
     * of claims: with all three released at once, a worker's read of the
     * spec between its claim and its start can let the others overtake it
     * on a busy machine. (Claims at once are store_queue_fair_backlog's.) */
    atomic_store(&f.fake[0].release, 1);
    struct tm_job_record got;
    CHECK(wait_job(f.jobs[2], b.id, 20, &got, is_final));
    for (int i = 1; i < 3; i++)
        atomic_store(&f.fake[i].release, 1);
    CHECK(wait_job(f.jobs[2], a[39].id, 20, &got, is_final));
    int at = -1;
    pthread_mutex_lock(&f.order.lock);
    for (int i = 0; i < f.order.n; i++)
        if (!strcmp(f.order.ids[i], b.id))
            at = i;
    pthread_mutex_unlock(&f.order.lock);
    /* Starts 0-2 are the holds; B's is among the next 3 (4th: after A's
     * first, one worker going on). */
    CHECK(at >= 3 && at <= 5);
    if (at < 3 || at > 5)
        fprintf(stderr, "B's job started %dth\n", at);
    fleet_close(&f);
}

/* A replica starting on the store does not touch a live replica's running
 * job (the shared-data-dir bug of issue #14): A keeps it across several of
 * its leases. Its progress shows through B; a cancel through B stops it on
 * A within about 2 s. */
TM_STORE_TEST(jobs_replicas_start_cancel_progress)
{
    struct fleet f;
    REQUIRE(fleet_open(&f, ts, 2) == 0);
    REQUIRE(fleet_start(&f, 0, 1, 1) == TM_OK);
    struct tm_job_record r, got;
    REQUIRE(submit(f.jobs[0], "endless", "id:a", NULL, &r) == TM_JOBS_ACCEPTED);
    REQUIRE(wait_started(&f.fake[0].started, 1));
    REQUIRE(fleet_start(&f, 1, 1, 1) == TM_OK);
    /* Through B, within the progress period: A's stage and progress. */
    CHECK(wait_job(f.jobs[1], r.id, 3, &got, shows_progress));
    CHECK_STR_EQ(got.stage, "A");
    struct timespec leases = {2, 500000000}; /* more than two leases */
    nanosleep(&leases, NULL);
    CHECK_INT_EQ(tm_jobs_get(f.jobs[1], r.id, &got, (char[TM_ERR_SIZE]){0}), TM_JOBS_ACCEPTED);
    CHECK_INT_EQ(got.state, TM_JOB_RUNNING);
    CHECK_INT_EQ(got.attempts, 1);
    CHECK_INT_EQ(atomic_load(&f.fake[1].started), 0);
    char err[TM_ERR_SIZE];
    double t0 = tm_clock_monotonic();
    CHECK_INT_EQ(tm_jobs_cancel(f.jobs[1], r.id, &got, err), TM_JOBS_CANCELLING);
    CHECK(wait_job(f.jobs[1], r.id, 5, &got, is_final));
    double took = tm_clock_monotonic() - t0;
    CHECK_INT_EQ(got.state, TM_JOB_CANCELLED);
    CHECK(took < 2.0);
    if (took >= 2.0)
        fprintf(stderr, "the cancel took %.2f s\n", took);
    CHECK_INT_EQ(atomic_load(&f.fake[0].stopped), 1);
    fleet_close(&f);
}

/* A replica frozen past its lease loses its job: another hands it back and
 * runs it (attempt 2); the frozen one, finishing later, writes nothing (its
 * result is refused), and the job's result is the new owner's. */
TM_STORE_TEST(jobs_replicas_lease_expiry_and_fencing)
{
    struct fleet f;
    REQUIRE(fleet_open(&f, ts, 2) == 0);
    REQUIRE(fleet_start(&f, 0, 1, 1) == TM_OK);
    struct tm_job_record r, got;
    REQUIRE(submit(f.jobs[0], "hold", "id:a", NULL, &r) == TM_JOBS_ACCEPTED);
    REQUIRE(wait_started(&f.fake[0].started, 1));
    tm__jobs_freeze_leases(f.jobs[0], 1);
    REQUIRE(fleet_start(&f, 1, 1, 1) == TM_OK);
    /* A's lease runs out; B hands the job back and claims it. */
    CHECK(wait_started(&f.fake[1].started, 1));
    CHECK_INT_EQ(tm_jobs_get(f.jobs[1], r.id, &got, (char[TM_ERR_SIZE]){0}), TM_JOBS_ACCEPTED);
    CHECK_INT_EQ(got.state, TM_JOB_RUNNING);
    CHECK_INT_EQ(got.attempts, 2);
    /* A's worker finishes its stale run: refused. */
    atomic_store(&f.fake[0].release, 1);
    usleep(300000);
    CHECK_INT_EQ(tm_jobs_get(f.jobs[0], r.id, &got, (char[TM_ERR_SIZE]){0}), TM_JOBS_ACCEPTED);
    CHECK_INT_EQ(got.state, TM_JOB_RUNNING);
    CHECK_INT_EQ(got.attempts, 2);
    CHECK(!result_is(f.store[0], r.id, "{\"by\":\"A\"}"));
    tm__jobs_freeze_leases(f.jobs[0], 0);
    atomic_store(&f.fake[1].release, 1);
    CHECK(wait_job(f.jobs[0], r.id, 10, &got, is_final));
    CHECK_INT_EQ(got.state, TM_JOB_SUCCEEDED);
    CHECK_INT_EQ(got.attempts, 2);
    CHECK(result_is(f.store[0], r.id, "{\"by\":\"B\"}"));
    fleet_close(&f);
}

/* A replica frozen on a job it then loses stops the job at its next
 * renewal, writing nothing; the job was rescued max_attempts times ends
 * failed (worker_crashed). */
TM_STORE_TEST(jobs_replicas_lost_job_stops)
{
    struct fleet f;
    REQUIRE(fleet_open(&f, ts, 2) == 0);
    REQUIRE(fleet_start(&f, 0, 1, 1) == TM_OK);
    struct tm_job_record r, got;
    REQUIRE(submit(f.jobs[0], "endless", "id:a", NULL, &r) == TM_JOBS_ACCEPTED);
    REQUIRE(wait_started(&f.fake[0].started, 1));
    tm__jobs_freeze_leases(f.jobs[0], 1);
    REQUIRE(fleet_start(&f, 1, 1, 1) == TM_OK);
    CHECK(wait_started(&f.fake[1].started, 1));
    tm__jobs_freeze_leases(f.jobs[0], 0);
    /* A learns at its next renewal, and stops: nothing written. */
    for (double end = tm_clock_monotonic() + 5;
         !atomic_load(&f.fake[0].stopped) && tm_clock_monotonic() < end; usleep(2000))
        ;
    CHECK_INT_EQ(atomic_load(&f.fake[0].stopped), 1);
    CHECK_INT_EQ(tm_jobs_get(f.jobs[1], r.id, &got, (char[TM_ERR_SIZE]){0}), TM_JOBS_ACCEPTED);
    CHECK_INT_EQ(got.state, TM_JOB_RUNNING);
    CHECK_INT_EQ(got.attempts, 2);
    /* B freezes too, and A hands the job back a last time: attempt 3 of 3
     * runs on A; frozen again, its end is worker_crashed. */
    tm__jobs_freeze_leases(f.jobs[1], 1);
    CHECK(wait_started(&f.fake[0].started, 2));
    tm__jobs_freeze_leases(f.jobs[0], 1);
    tm__jobs_freeze_leases(f.jobs[1], 0);
    CHECK(wait_job(f.jobs[1], r.id, 10, &got, is_final));
    CHECK_INT_EQ(got.state, TM_JOB_FAILED);
    CHECK_STR_EQ(got.error_code, "worker_crashed");
    CHECK_INT_EQ(got.attempts, 3);
    tm__jobs_freeze_leases(f.jobs[0], 0);
    fleet_close(&f);
}

/* A draining replica puts its running job back without counting the
 * attempt; another replica takes it at once. */
TM_STORE_TEST(jobs_replicas_drain_hands_over)
{
    struct fleet f;
    REQUIRE(fleet_open(&f, ts, 2) == 0);
    REQUIRE(fleet_start(&f, 0, 1, 3) == TM_OK);
    struct tm_job_record r, got;
    REQUIRE(submit(f.jobs[0], "hold", "id:a", NULL, &r) == TM_JOBS_ACCEPTED);
    REQUIRE(wait_started(&f.fake[0].started, 1));
    REQUIRE(fleet_start(&f, 1, 1, 3) == TM_OK);
    CHECK_INT_EQ(tm_jobs_drain(f.jobs[0], 0), 0);
    CHECK(wait_started(&f.fake[1].started, 1));
    CHECK(wait_job(f.jobs[1], r.id, 3, &got, is_running));
    CHECK_INT_EQ(got.attempts, 1); /* the drained run did not count */
    atomic_store(&f.fake[1].release, 1);
    CHECK(wait_job(f.jobs[1], r.id, 5, &got, is_final));
    CHECK_INT_EQ(got.state, TM_JOB_SUCCEEDED);
    CHECK(result_is(f.store[1], r.id, "{\"by\":\"B\"}"));
    fleet_close(&f);
}

struct racer {
    struct tm_jobs *j;
    pthread_barrier_t *go;
    enum tm_jobs_refusal r;
    struct tm_job_record rec;
};

static void *submit_key(void *arg)
{
    struct racer *x = arg;
    pthread_barrier_wait(x->go);
    x->r = submit(x->j, "ok", "id:a", "same-key", &x->rec);
    return NULL;
}

/* The same Idempotency-Key sent through two replicas at once makes one
 * job: both answer with it. */
TM_STORE_TEST(jobs_replicas_idempotency_race)
{
    struct fleet f;
    REQUIRE(fleet_open(&f, ts, 2) == 0);
    REQUIRE(fleet_start(&f, 0, 1, 3) == TM_OK);
    REQUIRE(fleet_start(&f, 1, 1, 3) == TM_OK);
    for (int round = 0; round < 4; round++) {
        char sql[80];
        snprintf(sql, sizeof(sql), "DELETE FROM jobs WHERE idem_key = 'same-key'");
        if (round)
            REQUIRE(tm_tmpstore_sql_exec(ts, sql) == 0);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        struct racer x[2];
        memset(x, 0, sizeof(x));
        for (int i = 0; i < 2; i++) {
            x[i].j = f.jobs[i];
            x[i].go = &go;
        }
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            REQUIRE(pthread_create(&th[i], NULL, submit_key, &x[i]) == 0);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&go);
        CHECK(x[0].r == TM_JOBS_ACCEPTED || x[0].r == TM_JOBS_REPLAYED);
        CHECK(x[1].r == TM_JOBS_ACCEPTED || x[1].r == TM_JOBS_REPLAYED);
        CHECK((x[0].r == TM_JOBS_ACCEPTED) + (x[1].r == TM_JOBS_ACCEPTED) == 1);
        CHECK_STR_EQ(x[0].rec.id, x[1].rec.id);
        CHECK_INT_EQ(
            tm_tmpstore_sql_int(ts, "SELECT count(*) FROM jobs WHERE idem_key = 'same-key'"), 1);
        struct tm_job_record got;
        CHECK(wait_job(f.jobs[0], x[0].rec.id, 5, &got, is_final));
    }
    fleet_close(&f);
}
