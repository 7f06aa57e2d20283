/* test_store_queue.c - the job queue of server/store.h: claims (the fairness
 * rule), leases, renewals, rescue, fencing, cancels, caps and wake-ups, each
 * test on SQLite and on PostgreSQL (TM_STORE_TEST); and a store written by
 * the release before claims (schema version 1) opening and migrating. */
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
#include "server/store.h"
#include "tmpstore.h"

static struct tm_job_record job(const char *id)
{
    struct tm_job_record j;
    memset(&j, 0, sizeof(j));
    snprintf(j.id, sizeof(j.id), "%s", id);
    snprintf(j.corpus_id, sizeof(j.corpus_id), "c_1");
    snprintf(j.method, sizeof(j.method), "nmf");
    j.state = TM_JOB_QUEUED;
    j.created_at = tm_clock_unix();
    return j;
}

static tm_status insert(struct tm_store *s, const char *id, const char *client)
{
    char err[TM_ERR_SIZE];
    struct tm_job_record j = job(id);
    return s->m->job_insert(s->ctx, &j, "{}", 2, NULL, client, err);
}

/* Claims the next job for owner with a lease of lease_s: its id in id
 * ("" when nothing is queued), the record in *out when not NULL. */
static tm_status claim(struct tm_store *s, const char *owner, double lease_s, char *id,
                       struct tm_store_claimed *out)
{
    char err[TM_ERR_SIZE];
    struct tm_store_claimed c;
    tm_status st = s->m->job_claim(s->ctx, owner, tm_clock_unix(), lease_s, &c, err);
    snprintf(id, TM_ID_SIZE, "%s", st ? "" : c.job.id);
    if (out)
        *out = c;
    return st;
}

static struct tm_job_claim token(const char *id, int attempt, const char *owner)
{
    struct tm_job_claim c;
    memset(&c, 0, sizeof(c));
    snprintf(c.id, sizeof(c.id), "%s", id);
    c.attempt = attempt;
    snprintf(c.owner, sizeof(c.owner), "%s", owner);
    return c;
}

/* Ends every lease at once, as time would (a test's own connection). */
static int expire_leases(struct tm_tmpstore *ts)
{
    return tm_tmpstore_sql_exec(ts, ts->driver == TM_STORE_PG
                                        ? "UPDATE jobs SET lease_until = now() - interval '1 s'"
                                          " WHERE state = 1"
                                        : "UPDATE jobs SET lease_until = 0 WHERE state = 1");
}

/* Round-robin across clients (the one served least recently first, a new
 * one before any served one), FIFO within a client; each claim makes the
 * job running under its owner with the attempt counted. */
TM_STORE_TEST(store_queue_claim_order)
{
    struct tm_store *s = &ts->store;
    const char *ids[6] = {"j_a1", "j_a2", "j_a3", "j_b1", "j_c1", "j_b2"};
    const char *clients[6] = {"id:a", "id:a", "id:a", "id:b", "ip:10.0.0.1", "id:b"};
    for (int i = 0; i < 6; i++)
        CHECK_INT_EQ(insert(s, ids[i], clients[i]), TM_OK);
    const char *want[6] = {"j_a1", "j_b1", "j_c1", "j_a2", "j_b2", "j_a3"};
    char id[TM_ID_SIZE];
    struct tm_store_claimed c;
    for (int i = 0; i < 6; i++) {
        double before = tm_clock_unix();
        CHECK_INT_EQ(claim(s, "r_1", 30, id, &c), TM_OK);
        CHECK_STR_EQ(id, want[i]);
        CHECK_INT_EQ(c.job.state, TM_JOB_RUNNING);
        CHECK_INT_EQ(c.job.attempts, 1);
        CHECK(c.job.started_at >= before - 1 && c.job.started_at <= tm_clock_unix() + 1);
        CHECK_INT_EQ(c.more, i < 5);
        CHECK_INT_EQ(c.cancel, 0);
    }
    CHECK_INT_EQ(claim(s, "r_1", 30, id, NULL), TM_ENOTFOUND);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM jobs WHERE owner = 'r_1'"), 6);
    /* A client served a while ago still goes before one served since. */
    CHECK_INT_EQ(insert(s, "j_b3", "id:b"), TM_OK);
    CHECK_INT_EQ(insert(s, "j_a4", "id:a"), TM_OK);
    CHECK_INT_EQ(claim(s, "r_1", 30, id, NULL), TM_OK);
    CHECK_STR_EQ(id, "j_b3");
}

/* Issue #14's rule: client A holds 40 queued jobs, client B submits one
 * afterwards; B's job is among the next 3 the fleet starts, with three
 * replicas claiming at once. */
struct claimer {
    struct tm_store *s;
    char owner[TM_OWNER_SIZE];
    pthread_barrier_t *go;
    char got[3][TM_ID_SIZE];
};

static void *claim_one(void *arg)
{
    struct claimer *c = arg;
    pthread_barrier_wait(c->go);
    claim(c->s, c->owner, 30, c->got[0], NULL);
    return NULL;
}

TM_STORE_TEST(store_queue_fair_backlog)
{
    struct tm_store *s = &ts->store;
    char id[TM_ID_SIZE];
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "j_a%d", i);
        REQUIRE(insert(s, id, "id:a") == TM_OK);
    }
    /* A's first job started long ago: A has been served. */
    CHECK_INT_EQ(claim(s, "r_0", 30, id, NULL), TM_OK);
    CHECK_STR_EQ(id, "j_a0");
    REQUIRE(insert(s, "j_b", "id:b") == TM_OK);
    /* PostgreSQL: three replicas' handles. */
    enum { N = 3 };
    struct tm_store other[N];
    int opened = 0;
    for (; ts->driver == TM_STORE_PG && opened < N; opened++)
        REQUIRE(tm_tmpstore_open_again(ts, &other[opened], (char[TM_ERR_SIZE]){0}) == TM_OK);
    pthread_t th[N];
    struct claimer c[N];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N);
    for (int i = 0; i < N; i++) {
        memset(&c[i], 0, sizeof(c[i]));
        c[i].s = opened ? &other[i] : s;
        c[i].go = &go;
        snprintf(c[i].owner, sizeof(c[i].owner), "r_%d", i + 1);
        REQUIRE(pthread_create(&th[i], NULL, claim_one, &c[i]) == 0);
    }
    int b = 0, distinct = 1;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        b += !strcmp(c[i].got[0], "j_b");
        for (int k = 0; k < i; k++)
            distinct &= strcmp(c[i].got[0], c[k].got[0]) != 0 && c[i].got[0][0];
    }
    pthread_barrier_destroy(&go);
    for (int i = 0; i < opened; i++)
        tm_store_close(&other[i]);
    CHECK_INT_EQ(b, 1);
    CHECK(distinct);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM jobs WHERE state = 1"), 4);
}

/* A lease that expires sends the job back to the queue, attempt counted;
 * the next owner's claim is attempt 2, and every write of the first owner's
 * (state, progress, result) is refused: the result is the second's. */
TM_STORE_TEST(store_queue_fencing)
{
    struct tm_store *s = &ts->store;
    char err[TM_ERR_SIZE], id[TM_ID_SIZE];
    REQUIRE(insert(s, "j_1", "id:a") == TM_OK);
    struct tm_store_claimed c1, c2;
    REQUIRE(claim(s, "r_old", 30, id, &c1) == TM_OK);
    int64_t n = 0;
    /* A live lease is not rescued. */
    CHECK_INT_EQ(s->m->job_rescue(s->ctx, 3, tm_clock_unix(), 10, NULL, NULL, &n, err), TM_OK);
    CHECK_INT_EQ(n, 0);
    REQUIRE(expire_leases(ts) == 0);
    CHECK_INT_EQ(s->m->job_rescue(s->ctx, 3, tm_clock_unix(), 10, NULL, NULL, &n, err), TM_OK);
    CHECK_INT_EQ(n, 1);
    struct tm_job_record got;
    CHECK_INT_EQ(s->m->job_get(s->ctx, "j_1", &got, err), TM_OK);
    CHECK_INT_EQ(got.state, TM_JOB_QUEUED);
    CHECK_INT_EQ(got.attempts, 1);
    CHECK(got.started_at == 0);
    REQUIRE(claim(s, "r_new", 30, id, &c2) == TM_OK);
    CHECK_INT_EQ(c2.job.attempts, 2);

    struct tm_job_claim old = token("j_1", 1, "r_old"), cur = token("j_1", 2, "r_new");
    struct tm_job_claim wrong_owner = token("j_1", 2, "r_old");
    struct tm_store_progress p[2] = {{old, "nmf", 0.9, 0}, {cur, "nmf", 0.25, 0}};
    CHECK_INT_EQ(s->m->job_progress(s->ctx, p, 2, err), TM_OK);
    CHECK(p[0].lost && !p[1].lost);
    struct tm_job_record fin = c1.job;
    fin.state = TM_JOB_SUCCEEDED;
    fin.finished_at = tm_clock_unix();
    struct tm_store_result stale = {"{\"by\":\"old\"}", 12, 0, 0, NULL, NULL, NULL, 0};
    CHECK_INT_EQ(s->m->job_finish(s->ctx, &old, &fin, &stale, err), TM_ELOST);
    CHECK_INT_EQ(s->m->job_finish(s->ctx, &wrong_owner, &fin, &stale, err), TM_ELOST);
    CHECK_INT_EQ(s->m->job_update(s->ctx, &old, &fin, err), TM_ELOST);
    CHECK_INT_EQ(s->m->job_get(s->ctx, "j_1", &got, err), TM_OK);
    CHECK_INT_EQ(got.state, TM_JOB_RUNNING);
    CHECK_INT_EQ(got.attempts, 2);
    CHECK_STR_EQ(got.stage, "nmf");
    CHECK_NEAR(got.progress, 0.25, 0);
    char *json = NULL;
    size_t len = 0;
    CHECK_INT_EQ(s->m->job_result(s->ctx, "j_1", &json, &len, err), TM_ENOTFOUND);

    fin = c2.job;
    fin.state = TM_JOB_SUCCEEDED;
    fin.progress = 1;
    fin.finished_at = tm_clock_unix();
    struct tm_store_result mine = {"{\"by\":\"new\"}", 12, 0, 0, NULL, NULL, NULL, 0};
    CHECK_INT_EQ(s->m->job_finish(s->ctx, &cur, &fin, &mine, err), TM_OK);
    /* Finished: the claim is over, for its owner too. */
    CHECK_INT_EQ(s->m->job_finish(s->ctx, &cur, &fin, &mine, err), TM_ELOST);
    CHECK_INT_EQ(s->m->job_finish(s->ctx, &old, &fin, &stale, err), TM_ELOST);
    CHECK_INT_EQ(s->m->job_result(s->ctx, "j_1", &json, &len, err), TM_OK);
    CHECK(json && len == 12 && !memcmp(json, "{\"by\":\"new\"}", 12));
    tm_free(json);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM jobs WHERE owner IS NOT NULL"), 0);
}

struct seen {
    char ids[8][TM_ID_SIZE + TM_CLIENT_SIZE + 16];
    int n;
};

/* Renewal extends the leases of the claims named, and says of each whether
 * it is lost and whether a cancel was asked; a renewed lease is not
 * rescued, a lease of under a second runs out by itself. */
TM_STORE_TEST(store_queue_renew_and_rescue)
{
    struct tm_store *s = &ts->store;
    char err[TM_ERR_SIZE], id[TM_ID_SIZE];
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "j_%d", i);
        REQUIRE(insert(s, id, "id:a") == TM_OK);
    }
    REQUIRE(claim(s, "r_1", 0.8, id, NULL) == TM_OK);
    REQUIRE(claim(s, "r_1", 0.8, id, NULL) == TM_OK);
    REQUIRE(claim(s, "r_2", 0.8, id, NULL) == TM_OK);
    /* j_3: claimed by r_1, but no worker of its knows (the answer was lost). */
    REQUIRE(claim(s, "r_1", 0.8, id, NULL) == TM_OK);
    struct tm_job_record got;
    int applied = 0;
    CHECK_INT_EQ(s->m->job_cancel(s->ctx, "j_1", tm_clock_unix(), &got, &applied, err), TM_OK);
    CHECK(applied && got.state == TM_JOB_RUNNING);
    usleep(400000);
    struct tm_store_lease l[3] = {{token("j_0", 1, "r_1"), 0, 0},
                                  {token("j_1", 1, "r_1"), 0, 0},
                                  {token("j_2", 1, "r_1"), 0, 0}};
    CHECK_INT_EQ(s->m->job_renew(s->ctx, l, 3, 30, err), TM_OK);
    CHECK(!l[0].lost && !l[0].cancel);
    CHECK(!l[1].lost && l[1].cancel);
    CHECK(l[2].lost); /* r_2's */
    usleep(700000);   /* r_2's lease and j_3's are over, the renewed ones are not */
    int64_t n = 0;
    CHECK_INT_EQ(s->m->job_rescue(s->ctx, 3, tm_clock_unix(), 10, NULL, NULL, &n, err), TM_OK);
    CHECK_INT_EQ(n, 2);
    CHECK_INT_EQ(s->m->job_get(s->ctx, "j_2", &got, err), TM_OK);
    CHECK_INT_EQ(got.state, TM_JOB_QUEUED);
    CHECK_INT_EQ(s->m->job_get(s->ctx, "j_3", &got, err), TM_OK);
    CHECK_INT_EQ(got.state, TM_JOB_QUEUED);
    CHECK_INT_EQ(s->m->job_get(s->ctx, "j_0", &got, err), TM_OK);
    CHECK_INT_EQ(got.state, TM_JOB_RUNNING);
    /* Rescued: the claim is lost to its owner's renewals too. */
    struct tm_store_lease gone = {token("j_3", 1, "r_1"), 0, 0};
    CHECK_INT_EQ(s->m->job_renew(s->ctx, &gone, 1, 30, err), TM_OK);
    CHECK(gone.lost);
}

static int collect(void *ctx, const struct tm_job_record *j, const char *client)
{
    struct seen *s = ctx;
    if (s->n < 8) {
        snprintf(s->ids[s->n], sizeof(s->ids[s->n]), "%s:%s:%s", j->id, tm_job_state_name(j->state),
                 client);
        s->n++;
    }
    return 0;
}

/* The rescue ends the claims whose lease expired: queued again while
 * attempts remain, failed (worker_crashed) at max_attempts, cancelled when a
 * cancel was asked; jobs left running by a store from before leases (no
 * lease) count as expired. */
TM_STORE_TEST(store_queue_rescue_outcomes)
{
    struct tm_store *s = &ts->store;
    char err[TM_ERR_SIZE], id[TM_ID_SIZE];
    REQUIRE(insert(s, "j_again", "id:a") == TM_OK);
    REQUIRE(insert(s, "j_doomed", "id:b") == TM_OK);
    REQUIRE(insert(s, "j_stop", "id:c") == TM_OK);
    for (int i = 0; i < 3; i++)
        REQUIRE(claim(s, "r_1", 30, id, NULL) == TM_OK);
    REQUIRE(tm_tmpstore_sql_exec(ts, "UPDATE jobs SET attempts = 2 WHERE id = 'j_doomed'") == 0);
    struct tm_job_record got;
    int applied;
    CHECK_INT_EQ(s->m->job_cancel(s->ctx, "j_stop", tm_clock_unix(), &got, &applied, err), TM_OK);
    REQUIRE(expire_leases(ts) == 0);
    struct seen seen = {0};
    int64_t n = 0;
    double now = tm_clock_unix();
    CHECK_INT_EQ(s->m->job_rescue(s->ctx, 2, now, 10, collect, &seen, &n, err), TM_OK);
    CHECK_INT_EQ(n, 3);
    CHECK_INT_EQ(seen.n, 3);
    CHECK_STR_EQ(seen.ids[0], "j_again:queued:id:a");
    CHECK_STR_EQ(seen.ids[1], "j_doomed:failed:id:b");
    CHECK_STR_EQ(seen.ids[2], "j_stop:cancelled:id:c");
    CHECK_INT_EQ(s->m->job_get(s->ctx, "j_doomed", &got, err), TM_OK);
    CHECK_STR_EQ(got.error_code, "worker_crashed");
    CHECK(strstr(got.error_message, "2 times") != NULL);
    CHECK_NEAR(got.finished_at, now, 1e-6);
    CHECK_INT_EQ(s->m->job_get(s->ctx, "j_stop", &got, err), TM_OK);
    CHECK_STR_EQ(got.error_code, "cancelled");
    CHECK_INT_EQ(s->m->job_get(s->ctx, "j_again", &got, err), TM_OK);
    CHECK_INT_EQ(got.attempts, 1);
    CHECK(got.started_at == 0 && got.finished_at == 0 && !got.error_code[0]);
    /* limit: a batch at a time. */
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "j_b%d", i);
        REQUIRE(insert(s, id, "id:d") == TM_OK);
    }
    for (int i = 0; i < 4; i++)
        REQUIRE(claim(s, "r_1", 30, id, NULL) == TM_OK);
    REQUIRE(expire_leases(ts) == 0);
    CHECK_INT_EQ(s->m->job_rescue(s->ctx, 9, now, 3, NULL, NULL, &n, err), TM_OK);
    CHECK_INT_EQ(n, 3);
    CHECK_INT_EQ(s->m->job_rescue(s->ctx, 9, now, 3, NULL, NULL, &n, err), TM_OK);
    CHECK_INT_EQ(n, 1);
}

/* Cancel: queued at once, running asked (state unchanged), finished left
 * alone; drain (a claimed write back to queued, attempt not counted) ends
 * the claim and queues the job where it was. */
TM_STORE_TEST(store_queue_cancel_and_requeue)
{
    struct tm_store *s = &ts->store;
    char err[TM_ERR_SIZE], id[TM_ID_SIZE];
    REQUIRE(insert(s, "j_run", "id:a") == TM_OK);
    REQUIRE(insert(s, "j_wait", "id:a") == TM_OK);
    REQUIRE(insert(s, "j_later", "id:a") == TM_OK);
    struct tm_store_claimed c;
    REQUIRE(claim(s, "r_1", 30, id, &c) == TM_OK);
    struct tm_job_record got;
    int applied = 0;
    double now = tm_clock_unix();
    CHECK_INT_EQ(s->m->job_cancel(s->ctx, "j_wait", now, &got, &applied, err), TM_OK);
    CHECK(applied && got.state == TM_JOB_CANCELLED && !strcmp(got.error_code, "cancelled"));
    CHECK_NEAR(got.finished_at, now, 1e-6);
    CHECK_INT_EQ(s->m->job_cancel(s->ctx, "j_wait", now, &got, &applied, err), TM_OK);
    CHECK(!applied && got.state == TM_JOB_CANCELLED);
    CHECK_INT_EQ(s->m->job_cancel(s->ctx, "j_run", now, &got, &applied, err), TM_OK);
    CHECK(applied && got.state == TM_JOB_RUNNING);
    CHECK_INT_EQ(s->m->job_cancel(s->ctx, "j_nope", now, &got, &applied, err), TM_ENOTFOUND);

    struct tm_job_claim tok = token("j_run", 1, "r_1");
    struct tm_job_record back = c.job;
    back.state = TM_JOB_QUEUED;
    back.attempts = 0;
    back.started_at = 0;
    CHECK_INT_EQ(s->m->job_update(s->ctx, &tok, &back, err), TM_OK);
    CHECK_INT_EQ(s->m->job_update(s->ctx, &tok, &back, err), TM_ELOST);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM jobs WHERE owner IS NOT NULL"), 0);
    /* Back at the head of its client's queue, the cancel still asked: the
     * next claim says so. */
    REQUIRE(claim(s, "r_2", 30, id, &c) == TM_OK);
    CHECK_STR_EQ(id, "j_run");
    CHECK_INT_EQ(c.job.attempts, 1);
    CHECK_INT_EQ(c.cancel, 1);
}

/* Submissions count the queued jobs in their transaction: the whole queue
 * and the client's share; a used key is TM_EBUSY, not a full queue. */
TM_STORE_TEST(store_queue_submit_caps)
{
    struct tm_store *s = &ts->store;
    char err[TM_ERR_SIZE];
    struct tm_store_caps caps = {3, 2};
    enum tm_store_full full;
    struct tm_job_record j = job("j_1");
    CHECK_INT_EQ(s->m->job_submit(s->ctx, &j, "{}", 2, "k1", "id:a", &caps, &full, err), TM_OK);
    CHECK(j.seq > 0 && full == TM_STORE_NOT_FULL);
    j = job("j_2");
    CHECK_INT_EQ(s->m->job_submit(s->ctx, &j, "{}", 2, NULL, "id:a", &caps, &full, err), TM_OK);
    j = job("j_3");
    CHECK_INT_EQ(s->m->job_submit(s->ctx, &j, "{}", 2, NULL, "id:a", &caps, &full, err), TM_EBUSY);
    CHECK_INT_EQ(full, TM_STORE_CLIENT_FULL);
    CHECK_INT_EQ(s->m->job_submit(s->ctx, &j, "{}", 2, NULL, "id:b", &caps, &full, err), TM_OK);
    j = job("j_4");
    CHECK_INT_EQ(s->m->job_submit(s->ctx, &j, "{}", 2, NULL, "id:c", &caps, &full, err), TM_EBUSY);
    CHECK_INT_EQ(full, TM_STORE_QUEUE_FULL);
    CHECK_INT_EQ(s->m->job_submit(s->ctx, &j, "{}", 2, "k1", "id:c", NULL, &full, err), TM_EBUSY);
    CHECK_INT_EQ(full, TM_STORE_NOT_FULL);
    int64_t n = 0;
    CHECK_INT_EQ(s->m->job_count_queued(s->ctx, &n, err), TM_OK);
    CHECK_INT_EQ(n, 3);
    /* A started job leaves room. */
    char id[TM_ID_SIZE];
    REQUIRE(claim(s, "r_1", 30, id, NULL) == TM_OK);
    CHECK_INT_EQ(s->m->job_submit(s->ctx, &j, "{}", 2, NULL, "id:c", &caps, &full, err), TM_OK);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM jobs"), 4);
}

struct wakes {
    atomic_int jobs, cancel;
};

static void on_wake(void *arg, enum tm_store_wake what)
{
    struct wakes *w = arg;
    atomic_fetch_add(what == TM_STORE_WAKE_JOBS ? &w->jobs : &w->cancel, 1);
}

/* 1 once *v is above base, within 5 s. */
static int wait_above(atomic_int *v, int base)
{
    for (double end = tm_clock_monotonic() + 5; tm_clock_monotonic() < end; usleep(2000))
        if (atomic_load(v) > base)
            return 1;
    return 0;
}

/* Listeners hear of new jobs and of cancels of running ones (PostgreSQL:
 * through LISTEN/NOTIFY, also from another connection), and stop hearing
 * once they unlisten. */
TM_STORE_TEST(store_queue_wakeups)
{
    struct tm_store *s = &ts->store;
    char err[TM_ERR_SIZE], id[TM_ID_SIZE];
    struct wakes w = {0};
    REQUIRE(s->m->listen(s->ctx, on_wake, &w, err) == TM_OK);
    /* PostgreSQL: the listener connects, then tells of both kinds once. */
    int base = 0;
    if (ts->driver == TM_STORE_PG) {
        CHECK(wait_above(&w.jobs, 0));
        usleep(100000);
        base = atomic_load(&w.jobs);
    }
    struct tm_store_caps caps = {100, 100};
    enum tm_store_full full;
    struct tm_job_record j = job("j_1");
    REQUIRE(s->m->job_submit(s->ctx, &j, "{}", 2, NULL, "id:a", &caps, &full, err) == TM_OK);
    CHECK(wait_above(&w.jobs, base));
    REQUIRE(claim(s, "r_1", 30, id, NULL) == TM_OK);
    int cbase = atomic_load(&w.cancel);
    struct tm_job_record got;
    int applied;
    REQUIRE(s->m->job_cancel(s->ctx, "j_1", tm_clock_unix(), &got, &applied, err) == TM_OK);
    CHECK(wait_above(&w.cancel, cbase));
    s->m->unlisten(s->ctx, &w);
    usleep(100000);
    base = atomic_load(&w.jobs);
    j = job("j_2");
    REQUIRE(s->m->job_submit(s->ctx, &j, "{}", 2, NULL, "id:a", &caps, &full, err) == TM_OK);
    usleep(300000);
    CHECK_INT_EQ(atomic_load(&w.jobs), base);
}

/* The sweeper forgets clients with nothing queued or running (they count
 * as never served again); the others keep their turn. */
TM_STORE_TEST(store_queue_forget_clients)
{
    struct tm_store *s = &ts->store;
    char err[TM_ERR_SIZE], id[TM_ID_SIZE];
    REQUIRE(insert(s, "j_a", "id:a") == TM_OK);
    REQUIRE(insert(s, "j_b", "id:b") == TM_OK);
    REQUIRE(insert(s, "j_b2", "id:b") == TM_OK);
    struct tm_store_claimed c;
    REQUIRE(claim(s, "r_1", 30, id, &c) == TM_OK);
    struct tm_job_claim tok = token(c.job.id, 1, "r_1");
    struct tm_job_record fin = c.job;
    fin.state = TM_JOB_SUCCEEDED;
    fin.finished_at = tm_clock_unix();
    REQUIRE(s->m->job_finish(s->ctx, &tok, &fin, NULL, err) == TM_OK);
    REQUIRE(claim(s, "r_1", 30, id, NULL) == TM_OK);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM clients"), 2);
    int64_t n = 0;
    CHECK_INT_EQ(s->m->job_expire(s->ctx, 0, 10, &n, err), TM_OK);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM clients"), 1);
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM clients WHERE client = 'id:b'"), 1);
}

/* A store the release before claims wrote (tests/fixtures/store/: its
 * schema as that binary made it, version 1, with a queued, a running and a
 * finished job) opens: it is migrated to this version, the job left
 * running is queued again (it has no lease), and every job reads back. */
TM_STORE_TEST(store_queue_migrate_v1)
{
    char err[TM_ERR_SIZE], id[TM_ID_SIZE];
    int pg = ts->driver == TM_STORE_PG;
    REQUIRE(tm_tmpstore_open_release(ts, 1, err) == 0);
    const char *version = pg ? "SELECT max(version) FROM topicd_schema" : "PRAGMA user_version";
    struct tm_store *s = &ts->store;
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, version), TM_STORE_SCHEMA_VERSION);

    struct tm_job_record got;
    CHECK_INT_EQ(s->m->job_get(s->ctx, "j_done", &got, err), TM_OK);
    CHECK_INT_EQ(got.state, TM_JOB_SUCCEEDED);
    char *json = NULL;
    size_t len = 0;
    CHECK_INT_EQ(s->m->job_result(s->ctx, "j_done", &json, &len, err), TM_OK);
    CHECK(json && len == 8 && !memcmp(json, "{\"r\":42}", 8));
    tm_free(json);
    int64_t n = 0;
    CHECK_INT_EQ(s->m->job_rescue(s->ctx, 3, tm_clock_unix(), 10, NULL, NULL, &n, err), TM_OK);
    CHECK_INT_EQ(n, 1);
    CHECK_INT_EQ(s->m->job_get(s->ctx, "j_running", &got, err), TM_OK);
    CHECK_INT_EQ(got.state, TM_JOB_QUEUED);
    CHECK_INT_EQ(got.attempts, 1);
    /* The two queued jobs, in the order the old store queued them. */
    struct tm_store_claimed c;
    CHECK_INT_EQ(claim(s, "r_1", 30, id, &c), TM_OK);
    CHECK_STR_EQ(id, "j_queued");
    CHECK_INT_EQ(claim(s, "r_1", 30, id, &c), TM_OK);
    CHECK_STR_EQ(id, "j_running");
    CHECK_INT_EQ(c.job.attempts, 2);
    CHECK_INT_EQ(claim(s, "r_1", 30, id, &c), TM_ENOTFOUND);
    CHECK_INT_EQ(s->m->corpus_get(s->ctx, "c_old", &(struct tm_corpus_record){0}, err), TM_OK);
    /* New jobs get seqs after the old ones. */
    struct tm_job_record j = job("j_new");
    CHECK_INT_EQ(s->m->job_insert(s->ctx, &j, "{}", 2, "old-key", NULL, err), TM_EBUSY);
    CHECK_INT_EQ(s->m->job_insert(s->ctx, &j, "{}", 2, "new-key", NULL, err), TM_OK);
    CHECK(j.seq > 3);
}
