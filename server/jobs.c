/*
 * jobs.c - the worker pool of one replica over the store's queue (see
 * jobs.h).
 *
 * Memory holds only the jobs this replica runs (`running`): their claim,
 * live stage and progress, and why a worker should stop. Everything else is
 * the store's. Three kinds of threads touch them: workers (claim, run,
 * finish), the lease thread (every tick: writes changed progress; every
 * lease / 3, or at once when a cancel is announced: renews the leases and
 * learns which jobs were cancelled or lost; every few seconds: hands back
 * expired leases, any replica's), and the store's wake-ups (a job may be
 * claimable: wake an idle worker; a cancel: renew now).
 *
 * Locks. `lock` guards the running list, the counters and the flags, and is
 * never held across store I/O (the store's wake-ups take it, from the
 * thread that committed for SQLite), so a poll never waits for an fsync.
 * `submit_lock` serialises submissions with corpus deletions of this
 * process (the "no job uses this corpus" check and the delete must not
 * interleave with a submission on that corpus) and is held across store
 * I/O, but polls never take it.
 *
 * An idle worker claims, and when the queue is empty waits until a
 * wake-up (counted in `wakeups`, so one that comes between its claim and
 * its wait is not lost) or the poll period. A claim that leaves more jobs
 * queued wakes one more worker, so a backlog found by one poll is taken by
 * every idle worker.
 */
#include "jobs.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "log.h"
#include "metrics.h"

/* Why a running job should stop: a cancel was asked, the replica is
 * shutting down, or another replica took the job (its lease expired). */
enum stop_reason { STOP_NONE, STOP_CANCEL, STOP_SHUTDOWN, STOP_LOST };

/* Jobs handed back per rescue statement. */
#define RESCUE_BATCH 100
/* Progress is written at most this often, in seconds. */
#define PROGRESS_PERIOD 1.0
/* The longest a rescue pass waits for the next, in seconds. */
#define RESCUE_PERIOD_MAX 5.0
/* A worker whose last write met a store outage tries again after this
 * many seconds, doubling up to RETRY_MAX. */
#define RETRY_MIN 0.2
#define RETRY_MAX 5.0

/* A job this replica runs. */
struct job {
    struct tm_job_record rec;  /* as claimed, with the live stage and progress */
    struct tm_job_claim claim; /* the fencing token of every write */
    enum stop_reason stop;
    int dirty; /* stage or progress changed since written */
    struct job *prev, *next;
};

struct worker {
    struct tm_jobs *jobs;
    pthread_t thread;
    int started;
    unsigned seed; /* the poll's jitter */
};

struct tm_jobs {
    struct tm_store *store;
    struct tm_jobs_config cfg;
    char replica[TM_OWNER_SIZE];
    pthread_mutex_t lock;
    pthread_cond_t work_cond; /* idle workers wait for a wake-up (CLOCK_MONOTONIC) */
    pthread_cond_t idle_cond; /* drain waits for running jobs and workers */
    pthread_cond_t stop_cond; /* workers pausing for the store wait for stopping (monotonic) */
    pthread_mutex_t submit_lock;

    struct job *running;
    int64_t n_running;
    uint64_t wakeups;  /* store wake-ups and chained claims so far */
    int64_t queued;    /* the store's queued jobs, as last read */
    int claim_failing; /* claims fail: logged once, until one works */
    int listening;     /* registered with the store's listen */

    struct worker *workers;
    int n_alive;
    int draining; /* no new submissions, workers take no new job */
    int stopping; /* workers exit */
    int hurry;    /* the drain's grace period ends now */

    /* The lease thread; lease_cond runs on CLOCK_MONOTONIC. */
    pthread_t leaser;
    int leaser_started;
    int lease_stop;
    int renew_now; /* a cancel was announced: renew at once */
    int frozen;    /* tm__jobs_freeze_leases */
    pthread_cond_t lease_cond;

    /* The retention sweeper, when retention_s > 0. sweep_cond runs on
     * CLOCK_MONOTONIC, so a wall-clock step neither stalls nor rushes it. */
    int64_t retention_s;
    pthread_t sweeper;
    int sweeper_started;
    int sweep_stop; /* under lock: the sweeper exits */
    pthread_cond_t sweep_cond;
};

void tm_id_generate(const char *prefix, char out[TM_ID_SIZE])
{
    unsigned char r[12];
    size_t got = 0;
    while (got < sizeof(r)) {
        ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /* No entropy source: still unique within this process and time. */
            static atomic_ullong counter;
            unsigned long long c = atomic_fetch_add(&counter, 1) ^ (unsigned long long)time(NULL);
            for (; got < sizeof(r); got++)
                r[got] = (unsigned char)(c >> (8 * (got % 8)));
            break;
        }
        got += (size_t)n;
    }
    int len = snprintf(out, TM_ID_SIZE, "%s", prefix);
    for (size_t i = 0; i < sizeof(r) && len + 2 < TM_ID_SIZE; i++)
        len += snprintf(out + len, (size_t)(TM_ID_SIZE - len), "%02x", r[i]);
}

const char *tm_jobs_replica(const struct tm_jobs *j)
{
    return j->replica;
}

/* s seconds from now on clock. */
static void deadline_on(clockid_t clock, struct timespec *ts, double s)
{
    clock_gettime(clock, ts);
    double whole = (double)(long)s;
    ts->tv_sec += (time_t)whole;
    ts->tv_nsec += (long)((s - whole) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* A factor in [0.8, 1.2), so that replicas started together do not poll
 * in step. */
static double jitter(unsigned *seed)
{
    return 0.8 + 0.4 * (double)rand_r(seed) / ((double)RAND_MAX + 1);
}

static void log_transition(const struct tm_job_record *r, const char *from)
{
    TM_LOG(TM_LOG_INFO, "job transition", "s:job_id", r->id, "s:from", from, "s:to",
           tm_job_state_name(r->state), "s:corpus_id", r->corpus_id, "s:method", r->method,
           "i:attempt", (long long)r->attempts, "s:error_code",
           r->error_code[0] ? r->error_code : NULL, "s:error_message",
           r->error_message[0] ? r->error_message : NULL, NULL);
}

static void log_store_failed(const char *job_id, const char *err)
{
    TM_LOG(TM_LOG_ERROR, "store write failed", "s:job_id", job_id, "s:error", err, NULL);
}

static void log_claim_lost(const struct job *e, const char *why)
{
    TM_LOG(TM_LOG_WARN, "job claim lost", "s:job_id", e->rec.id, "i:attempt",
           (long long)e->claim.attempt, "s:replica", e->claim.owner, "s:reason", why, NULL);
    tm_metrics_claim_lost();
}

/* The table's lock is held by the helpers below up to "Workers". */

/* The running job id under attempt (any attempt when attempt < 0), or NULL. */
static struct job *find_running(struct tm_jobs *j, const char *id, int attempt)
{
    for (struct job *e = j->running; e; e = e->next)
        if (!strcmp(e->rec.id, id) && (attempt < 0 || e->claim.attempt == attempt))
            return e;
    return NULL;
}

static void link_running(struct tm_jobs *j, struct job *e)
{
    e->prev = NULL;
    e->next = j->running;
    if (j->running)
        j->running->prev = e;
    j->running = e;
    j->n_running++;
}

static void unlink_running(struct tm_jobs *j, struct job *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        j->running = e->next;
    if (e->next)
        e->next->prev = e->prev;
    j->n_running--;
}

/* Asks e to stop for why, unless it was asked already (a loss overrides:
 * nothing of the job may be written any more). */
static void ask_stop(struct job *e, enum stop_reason why)
{
    if (e->stop == STOP_NONE || why == STOP_LOST)
        e->stop = why;
}

/* r cancelled on request: its state and error. */
static void set_cancelled(struct tm_job_record *r)
{
    r->state = TM_JOB_CANCELLED;
    snprintf(r->error_code, sizeof(r->error_code), "cancelled");
    snprintf(r->error_message, sizeof(r->error_message), "cancelled on request");
}

/* r back in the queue, as it was before it started (attempts aside). */
static void set_requeued(struct tm_job_record *r)
{
    r->state = TM_JOB_QUEUED;
    r->started_at = 0;
    r->stage[0] = 0;
    r->progress = 0;
}

/* The store's wake-ups (store.h's listen). */
static void on_wake(void *arg, enum tm_store_wake what)
{
    struct tm_jobs *j = arg;
    pthread_mutex_lock(&j->lock);
    if (what == TM_STORE_WAKE_JOBS) {
        j->wakeups++;
        pthread_cond_signal(&j->work_cond);
    } else {
        j->renew_now = 1;
        pthread_cond_signal(&j->lease_cond);
    }
    pthread_mutex_unlock(&j->lock);
}

/* ---------------------------------------------------------------------- */
/* Workers. */

struct run_ctx {
    struct tm_jobs *jobs;
    struct job *e;
};

static int run_report(void *ctx, const char *stage, double fraction)
{
    struct run_ctx *rc = ctx;
    pthread_mutex_lock(&rc->jobs->lock);
    if (stage)
        snprintf(rc->e->rec.stage, sizeof(rc->e->rec.stage), "%s", stage);
    if (fraction >= 0 && fraction <= 1)
        rc->e->rec.progress = fraction;
    rc->e->dirty = 1;
    int stop = rc->e->stop != STOP_NONE;
    pthread_mutex_unlock(&rc->jobs->lock);
    return stop;
}

/* Sleeps s seconds, or less once the workers stop; 1 when they do. */
static int pause_unless_stopping(struct tm_jobs *j, double s)
{
    struct timespec until;
    deadline_on(CLOCK_MONOTONIC, &until, s);
    pthread_mutex_lock(&j->lock);
    while (!j->stopping && pthread_cond_timedwait(&j->stop_cond, &j->lock, &until) != ETIMEDOUT)
        ;
    int stopping = j->stopping;
    pthread_mutex_unlock(&j->lock);
    return stopping;
}

/*
 * The last write of a job's run: its end (job_finish, res for a success)
 * or its return to the queue (job_update). While the store is unreachable
 * it is tried again, the lease renewed meanwhile, so that the run is not
 * lost to an outage; once the workers stop the job is left to its lease
 * (handed back after the process is gone). TM_ELOST: another replica has
 * it. *fin may change: a result that cannot be stored fails the job.
 */
static tm_status write_end(struct tm_jobs *j, struct job *e, struct tm_job_record *fin,
                           const struct tm_store_result *res, char *err)
{
    struct tm_store *s = j->store;
    double wait = RETRY_MIN;
    for (;;) {
        tm_status st = fin->state == TM_JOB_QUEUED
                           ? s->m->job_update(s->ctx, &e->claim, fin, err)
                           : s->m->job_finish(s->ctx, &e->claim, fin,
                                              fin->state == TM_JOB_SUCCEEDED ? res : NULL, err);
        if (st && st != TM_EIO && st != TM_ELOST && fin->state == TM_JOB_SUCCEEDED) {
            /* The result could not be stored (too large? disk full?): the
             * job failed, and that can be stored. */
            log_store_failed(fin->id, err);
            fin->state = TM_JOB_FAILED;
            snprintf(fin->error_code, sizeof(fin->error_code), "store_error");
            snprintf(fin->error_message, sizeof(fin->error_message), "storing the result: %s", err);
            continue;
        }
        if (st != TM_EIO)
            return st;
        log_store_failed(fin->id, err);
        if (pause_unless_stopping(j, wait))
            return st;
        wait = wait * 2 < RETRY_MAX ? wait * 2 : RETRY_MAX;
    }
}

/* Runs the job claimed in c with e (allocated, taken here); the lock is
 * held on entry and on return. */
static void run_one(struct tm_jobs *j, struct job *e, const struct tm_store_claimed *c)
{
    char err[TM_ERR_SIZE] = "";
    memset(e, 0, sizeof(*e));
    e->rec = c->job;
    snprintf(e->claim.id, sizeof(e->claim.id), "%s", c->job.id);
    e->claim.attempt = c->job.attempts;
    snprintf(e->claim.owner, sizeof(e->claim.owner), "%s", j->replica);
    /* A cancel asked before it was queued again (a drain or a lost lease
     * put it back), or a drain that began during the claim: it stops at
     * once, and goes back as it should. */
    e->stop = c->cancel ? STOP_CANCEL : j->draining ? STOP_SHUTDOWN : STOP_NONE;
    link_running(j, e);
    struct tm_job_record snap = e->rec;
    pthread_mutex_unlock(&j->lock);
    log_transition(&snap, "queued");

    char *spec = NULL;
    size_t spec_len = 0;
    struct tm_job_outcome out;
    memset(&out, 0, sizeof(out));
    tm_status st = j->store->m->job_spec(j->store->ctx, snap.id, &spec, &spec_len, err);
    int spec_lost = st == TM_EIO; /* the store, not the job: queued again */
    if (st) {
        out.status = st;
        snprintf(out.error_code, sizeof(out.error_code), "store_error");
        snprintf(out.error_message, sizeof(out.error_message), "%s", err);
    } else {
        struct run_ctx rc = {j, e};
        struct tm_job_run run = {&snap, spec, spec_len, {run_report, &rc}};
        if (tm_progress_report(&run.progress, NULL, 0))
            out.status = TM_ECANCELLED;
        else
            j->cfg.work(j->cfg.work_ctx, &run, &out);
    }
    tm_free(spec);

    pthread_mutex_lock(&j->lock);
    enum stop_reason stop = e->stop;
    struct tm_job_record fin = e->rec;
    pthread_mutex_unlock(&j->lock);

    int requeue = 0, lost = stop == STOP_LOST;
    if (out.status == TM_OK) {
        fin.state = TM_JOB_SUCCEEDED;
        fin.progress = 1;
        fin.error_code[0] = fin.error_message[0] = 0;
    } else if ((out.status == TM_ECANCELLED && stop == STOP_SHUTDOWN) || spec_lost) {
        /* Interrupted by our own shutdown, or the store was unreachable:
         * back in the queue, the attempt not counted. */
        requeue = 1;
        set_requeued(&fin);
        fin.attempts--;
    } else if (out.status == TM_ECANCELLED && stop == STOP_CANCEL) {
        set_cancelled(&fin);
    } else {
        fin.state = TM_JOB_FAILED;
        snprintf(fin.error_code, sizeof(fin.error_code), "%s",
                 out.error_code[0] ? out.error_code : "internal_error");
        snprintf(fin.error_message, sizeof(fin.error_message), "%s",
                 out.error_message[0] ? out.error_message : tm_strerror(out.status));
    }
    if (!requeue)
        fin.finished_at = tm_clock_unix();

    /* A lost claim writes nothing: the job is another replica's now. */
    if (!lost) {
        struct tm_store_result res = {out.result_json, out.result_len, out.n_documents,
                                      out.n_topics,    out.doc_topics, out.doc_ids,
                                      out.model,       out.model_len};
        st = write_end(j, e, &fin, &res, err);
        if (st == TM_ELOST)
            lost = 1;
        else if (st)
            log_store_failed(fin.id, err);
    }
    tm_free(out.result_json);
    tm_free(out.model);
    tm_free(out.doc_topics);
    for (int64_t i = 0; out.doc_ids && i < out.n_documents; i++)
        tm_free(out.doc_ids[i]);
    tm_free(out.doc_ids);
    if (lost) {
        log_claim_lost(e, "another replica took the job after its lease expired");
    } else {
        log_transition(&fin, "running");
        if (!requeue)
            tm_metrics_job_finished(fin.method, fin.state, fin.finished_at - fin.started_at);
    }

    pthread_mutex_lock(&j->lock);
    unlink_running(j, e);
    tm_free(e);
    pthread_cond_broadcast(&j->idle_cond);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct tm_jobs *j = w->jobs;
    /* Named so that top, perf and bench_http can tell the workers (and the
     * threads a job starts, which inherit the name) from the HTTP threads. */
    pthread_setname_np(pthread_self(), "tm-worker");
    /* Linux nice values are per thread and inherited by the threads a job
     * starts (tm_vectorize's): a fit yields the CPU to the HTTP threads at
     * once, so status polls stay fast on a machine whose cores it fills. */
    if (j->cfg.worker_nice) {
        pid_t tid = (pid_t)syscall(SYS_gettid);
        errno = 0;
        int cur = getpriority(PRIO_PROCESS, (id_t)tid);
        if (errno || setpriority(PRIO_PROCESS, (id_t)tid, cur + j->cfg.worker_nice))
            TM_LOG(TM_LOG_WARN, "cannot lower the worker priority", "s:error", strerror(errno),
                   NULL);
    }
    struct job *spare = NULL;
    pthread_mutex_lock(&j->lock);
    for (;;) {
        while (!j->stopping && j->draining)
            pthread_cond_wait(&j->work_cond, &j->lock);
        if (j->stopping)
            break;
        uint64_t seen = j->wakeups;
        pthread_mutex_unlock(&j->lock);

        /* The job's memory first: after a claim nothing may fail. */
        if (!spare)
            spare = tm_calloc(1, sizeof(*spare));
        struct tm_store_claimed c;
        char err[TM_ERR_SIZE] = "";
        tm_status st = TM_ENOMEM;
        double t0 = tm_clock_monotonic();
        if (spare)
            st = j->store->m->job_claim(j->store->ctx, j->replica, tm_clock_unix(), j->cfg.lease_s,
                                        &c, err);
        if (spare)
            tm_metrics_claim(st == TM_OK          ? TM_CLAIM_JOB
                             : st == TM_ENOTFOUND ? TM_CLAIM_EMPTY
                                                  : TM_CLAIM_ERROR,
                             tm_clock_monotonic() - t0);

        pthread_mutex_lock(&j->lock);
        if (st == TM_OK) {
            if (j->claim_failing) {
                j->claim_failing = 0;
                TM_LOG(TM_LOG_INFO, "claims work again", NULL);
            }
            if (c.more) {
                j->wakeups++;
                pthread_cond_signal(&j->work_cond);
            }
            struct job *e = spare;
            spare = NULL;
            run_one(j, e, &c); /* returns with the lock held */
            continue;
        }
        if (st != TM_ENOTFOUND && !j->claim_failing) {
            j->claim_failing = 1;
            TM_LOG(TM_LOG_ERROR, "cannot claim jobs", "s:error", spare ? err : "out of memory",
                   NULL);
        }
        /* Nothing to do: wait for a wake-up, or poll again. */
        struct timespec until;
        deadline_on(CLOCK_MONOTONIC, &until, j->cfg.poll_s * jitter(&w->seed));
        while (!j->stopping && !j->draining && j->wakeups == seen)
            if (pthread_cond_timedwait(&j->work_cond, &j->lock, &until) == ETIMEDOUT)
                break;
    }
    j->n_alive--;
    pthread_cond_broadcast(&j->idle_cond);
    pthread_mutex_unlock(&j->lock);
    tm_free(spare);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Leases: progress, renewals, rescue. */

/* Writes the stage and progress of the jobs whose report changed; a job
 * whose claim is lost is asked to stop. */
static void flush_progress(struct tm_jobs *j)
{
    pthread_mutex_lock(&j->lock);
    int n = 0;
    for (struct job *e = j->running; e; e = e->next)
        n += e->dirty && e->stop != STOP_LOST;
    struct tm_store_progress *p = n ? tm_calloc((size_t)n, sizeof(*p)) : NULL;
    int k = 0;
    for (struct job *e = j->running; p && e; e = e->next)
        if (e->dirty && e->stop != STOP_LOST) {
            p[k].claim = e->claim;
            snprintf(p[k].stage, sizeof(p[k].stage), "%s", e->rec.stage);
            p[k].progress = e->rec.progress;
            e->dirty = 0;
            k++;
        }
    pthread_mutex_unlock(&j->lock);
    if (!k) {
        tm_free(p);
        return;
    }
    char err[TM_ERR_SIZE] = "";
    tm_status st = j->store->m->job_progress(j->store->ctx, p, k, err);
    pthread_mutex_lock(&j->lock);
    for (int i = 0; i < k; i++) {
        struct job *e = find_running(j, p[i].claim.id, p[i].claim.attempt);
        if (!e)
            continue;
        if (st)
            e->dirty = 1; /* written next time */
        else if (p[i].lost)
            ask_stop(e, STOP_LOST);
    }
    pthread_mutex_unlock(&j->lock);
    if (st)
        TM_LOG(TM_LOG_WARN, "cannot write progress", "s:error", err, NULL);
    tm_free(p);
}

/* Renews the leases of the running jobs; a job asked to cancel, or taken
 * by another replica, is asked to stop. */
static void renew(struct tm_jobs *j)
{
    pthread_mutex_lock(&j->lock);
    j->renew_now = 0;
    int n = 0;
    for (struct job *e = j->running; e; e = e->next)
        n++;
    struct tm_store_lease *l = n ? tm_calloc((size_t)n, sizeof(*l)) : NULL;
    int k = 0;
    for (struct job *e = j->running; l && e; e = e->next)
        l[k++].claim = e->claim;
    pthread_mutex_unlock(&j->lock);
    if (!k) {
        tm_free(l);
        return;
    }
    char err[TM_ERR_SIZE] = "";
    tm_status st = j->store->m->job_renew(j->store->ctx, l, k, j->cfg.lease_s, err);
    if (st) {
        TM_LOG(TM_LOG_WARN, "cannot renew job leases", "s:error", err, "i:jobs", (long long)k,
               NULL);
        tm_free(l);
        return;
    }
    tm_metrics_lease_renewal();
    pthread_mutex_lock(&j->lock);
    for (int i = 0; i < k; i++) {
        struct job *e = find_running(j, l[i].claim.id, l[i].claim.attempt);
        if (!e)
            continue; /* finished meanwhile */
        if (l[i].lost && e->stop != STOP_LOST) {
            ask_stop(e, STOP_LOST);
            TM_LOG(TM_LOG_WARN, "job lease lost: stopping it", "s:job_id", e->rec.id, "i:attempt",
                   (long long)e->claim.attempt, NULL);
        } else if (l[i].cancel) {
            ask_stop(e, STOP_CANCEL);
        }
    }
    pthread_mutex_unlock(&j->lock);
    tm_free(l);
}

static int log_rescued(void *ctx, const struct tm_job_record *job, const char *client)
{
    (void)ctx;
    (void)client;
    TM_LOG(TM_LOG_WARN, "job lease expired", "s:job_id", job->id, "s:to",
           tm_job_state_name(job->state), "i:attempts", (long long)job->attempts, "s:error_code",
           job->error_code[0] ? job->error_code : NULL, NULL);
    if (tm_job_state_final(job->state))
        tm_metrics_job_finished(job->method, job->state, 0);
    return 0;
}

/* Hands back every job whose lease expired, batch by batch: *n how many. */
static tm_status rescue(struct tm_jobs *j, int64_t *n, char *err)
{
    *n = 0;
    for (;;) {
        int64_t got = 0;
        tm_status st = j->store->m->job_rescue(j->store->ctx, j->cfg.max_attempts, tm_clock_unix(),
                                               RESCUE_BATCH, log_rescued, NULL, &got, err);
        *n += got;
        if (got)
            tm_metrics_lease_expired((uint64_t)got);
        if (st || got < RESCUE_BATCH)
            return st;
    }
}

/* The lease thread (see the top of the file). */
static void *leaser_main(void *arg)
{
    struct tm_jobs *j = arg;
    pthread_setname_np(pthread_self(), "tm-leases");
    unsigned seed = (unsigned)tm_clock_monotonic() ^ (unsigned)(uintptr_t)j;
    double renew_every = j->cfg.lease_s / 3;
    double tick = renew_every < PROGRESS_PERIOD ? renew_every : PROGRESS_PERIOD;
    double rescue_every = renew_every < RESCUE_PERIOD_MAX ? renew_every : RESCUE_PERIOD_MAX;
    double now = tm_clock_monotonic();
    double next_renew = now + renew_every, next_rescue = now + rescue_every * jitter(&seed);
    pthread_mutex_lock(&j->lock);
    while (!j->lease_stop) {
        struct timespec until;
        deadline_on(CLOCK_MONOTONIC, &until, tick);
        while (!j->lease_stop && !j->renew_now &&
               pthread_cond_timedwait(&j->lease_cond, &j->lock, &until) != ETIMEDOUT)
            ;
        if (j->lease_stop)
            break;
        if (j->frozen) {
            j->renew_now = 0;
            continue;
        }
        int renew_now = j->renew_now;
        pthread_mutex_unlock(&j->lock);
        flush_progress(j);
        now = tm_clock_monotonic();
        if (renew_now || now >= next_renew) {
            renew(j);
            next_renew = now + renew_every;
        }
        if (now >= next_rescue) {
            char err[TM_ERR_SIZE] = "";
            int64_t n = 0, queued = 0;
            if (rescue(j, &n, err))
                TM_LOG(TM_LOG_WARN, "cannot hand back expired leases", "s:error", err, NULL);
            else if (!j->store->m->job_count_queued(j->store->ctx, &queued, err)) {
                pthread_mutex_lock(&j->lock);
                j->queued = queued;
                pthread_mutex_unlock(&j->lock);
            }
            next_rescue = now + rescue_every * jitter(&seed);
        }
        pthread_mutex_lock(&j->lock);
    }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

void tm__jobs_freeze_leases(struct tm_jobs *j, int frozen)
{
    pthread_mutex_lock(&j->lock);
    j->frozen = frozen;
    pthread_cond_broadcast(&j->lease_cond);
    pthread_mutex_unlock(&j->lock);
}

static void stop_leaser(struct tm_jobs *j)
{
    pthread_mutex_lock(&j->lock);
    j->lease_stop = 1;
    pthread_cond_broadcast(&j->lease_cond);
    int started = j->leaser_started;
    j->leaser_started = 0;
    pthread_mutex_unlock(&j->lock);
    if (started)
        pthread_join(j->leaser, NULL);
}

/* ---------------------------------------------------------------------- */
/* Start. */

tm_status tm_jobs_new(struct tm_jobs **out, struct tm_store *store,
                      const struct tm_jobs_config *config, char *err)
{
    *out = NULL;
    struct tm_jobs *j = tm_calloc(1, sizeof(*j));
    if (!j)
        return tm_errf(err, TM_ENOMEM, "jobs");
    j->store = store;
    j->cfg = *config;
    if (j->cfg.workers < 1)
        j->cfg.workers = 1;
    if (j->cfg.max_attempts < 1)
        j->cfg.max_attempts = 1;
    if (j->cfg.max_queue_per_client < 1 || j->cfg.max_queue_per_client > j->cfg.max_queue)
        j->cfg.max_queue_per_client = j->cfg.max_queue;
    if (j->cfg.lease_s <= 0)
        j->cfg.lease_s = TM_JOBS_LEASE_S;
    struct tm_store_quotas quotas = {j->cfg.quota_stored_bytes, j->cfg.quota_running};
    store->m->set_quotas(store->ctx, &quotas);
    if (j->cfg.poll_s <= 0)
        j->cfg.poll_s = TM_JOBS_POLL_S;
    tm_id_generate("r_", j->replica);
    pthread_mutex_init(&j->lock, NULL);
    pthread_mutex_init(&j->submit_lock, NULL);
    pthread_cond_init(&j->idle_cond, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->work_cond, &ca);
    pthread_cond_init(&j->stop_cond, &ca);
    pthread_cond_init(&j->lease_cond, &ca);
    pthread_cond_init(&j->sweep_cond, &ca);
    pthread_condattr_destroy(&ca);
    j->workers = tm_calloc((size_t)j->cfg.workers, sizeof(*j->workers));
    if (!j->workers) {
        tm_jobs_free(j);
        return tm_errf(err, TM_ENOMEM, "jobs");
    }
    TM_LOG(TM_LOG_INFO, "replica", "s:replica", j->replica, "f:lease_s", j->cfg.lease_s, NULL);

    /* Recovery: the jobs whose lease expired (their replica is gone), and
     * only those: a live replica's jobs are its own. */
    int64_t n = 0;
    tm_status st = rescue(j, &n, err);
    if (!st)
        st = store->m->job_count_queued(store->ctx, &j->queued, err);
    if (!st)
        st = store->m->listen(store->ctx, on_wake, j, err);
    if (st) {
        tm_jobs_free(j);
        return st;
    }
    j->listening = 1;
    if (n || j->queued)
        TM_LOG(TM_LOG_INFO, "jobs recovered", "i:expired", (long long)n, "i:queued",
               (long long)j->queued, NULL);

    int rc = pthread_create(&j->leaser, NULL, leaser_main, j);
    if (rc) {
        tm_jobs_free(j);
        return tm_errf(err, TM_ENOMEM, "starting the lease thread: %s", strerror(rc));
    }
    j->leaser_started = 1;
    for (int i = 0; i < j->cfg.workers; i++) {
        j->workers[i].jobs = j;
        j->workers[i].seed = (unsigned)i * 2654435761u ^ (unsigned)tm_clock_monotonic();
        pthread_mutex_lock(&j->lock);
        rc = pthread_create(&j->workers[i].thread, NULL, worker_main, &j->workers[i]);
        if (!rc) {
            j->workers[i].started = 1;
            j->n_alive++;
        }
        pthread_mutex_unlock(&j->lock);
        if (rc) {
            tm_jobs_free(j);
            return tm_errf(err, TM_ENOMEM, "starting worker %d: %s", i, strerror(rc));
        }
    }
    *out = j;
    return TM_OK;
}

/* ---------------------------------------------------------------------- */
/* Requests. */

/* The answer to a submission whose idempotency key names job (its spec
 * old): the earlier job when the bodies match. */
static enum tm_jobs_refusal replay(const char *old, size_t old_len, const char *spec,
                                   size_t spec_len, char *err)
{
    if (old_len == spec_len && !memcmp(old, spec, spec_len))
        return TM_JOBS_REPLAYED;
    tm_errf(err, TM_EINVAL, "this Idempotency-Key was used with a different request body");
    return TM_JOBS_KEY_MISMATCH;
}

/* The job idem_key names: TM_JOBS_REPLAYED, TM_JOBS_KEY_MISMATCH,
 * TM_JOBS_NOT_FOUND (no such key) or a store error. */
static enum tm_jobs_refusal by_key(struct tm_jobs *j, const char *idem_key, const char *spec,
                                   size_t spec_len, struct tm_job_record *job, char *err)
{
    struct tm_store *s = j->store;
    char *old = NULL;
    size_t old_len = 0;
    tm_status st = s->m->job_by_idem(s->ctx, idem_key, job, &old, &old_len, err);
    enum tm_jobs_refusal r = st == TM_OK          ? replay(old, old_len, spec, spec_len, err)
                             : st == TM_ENOTFOUND ? TM_JOBS_NOT_FOUND
                                                  : TM_JOBS_STORE_ERROR;
    tm_free(old);
    return r;
}

enum tm_jobs_refusal tm_jobs_submit(struct tm_jobs *j, const char *corpus_id, const char *spec,
                                    size_t spec_len, const char *method, const char *idem_key,
                                    const char *client, const char *tenant,
                                    struct tm_job_record *job, char *err)
{
    enum tm_jobs_refusal r = TM_JOBS_ACCEPTED;
    struct tm_store *s = j->store;
    if (!client)
        client = "";
    if (strlen(client) >= TM_CLIENT_SIZE) {
        tm_errf(err, TM_EINVAL, "client key longer than %d bytes", TM_CLIENT_SIZE - 1);
        return TM_JOBS_STORE_ERROR; /* a caller's bug: routes.c checks the length */
    }
    pthread_mutex_lock(&j->submit_lock);

    if (idem_key) {
        r = by_key(j, idem_key, spec, spec_len, job, err);
        if (r != TM_JOBS_NOT_FOUND)
            goto out;
        r = TM_JOBS_ACCEPTED;
    }
    pthread_mutex_lock(&j->lock);
    int draining = j->draining;
    pthread_mutex_unlock(&j->lock);
    if (draining) {
        tm_errf(err, TM_EBUSY, "the server is shutting down");
        r = TM_JOBS_DRAINING;
        goto out;
    }

    /* "" is a job with inline documents, which carries its corpus in its spec. */
    struct tm_corpus_record c;
    tm_status st = corpus_id[0] ? s->m->corpus_get(s->ctx, corpus_id, &c, err) : TM_OK;
    if (st) {
        r = st == TM_ENOTFOUND ? TM_JOBS_NO_CORPUS : TM_JOBS_STORE_ERROR;
        goto out;
    }

    memset(job, 0, sizeof(*job));
    tm_id_generate("j_", job->id);
    snprintf(job->corpus_id, sizeof(job->corpus_id), "%s", corpus_id);
    snprintf(job->method, sizeof(job->method), "%s", method ? method : "");
    snprintf(job->tenant, sizeof(job->tenant), "%s", tenant ? tenant : "");
    job->state = TM_JOB_QUEUED;
    job->created_at = tm_clock_unix();
    struct tm_store_caps caps = {j->cfg.max_queue, j->cfg.max_queue_per_client};
    enum tm_store_full full = TM_STORE_NOT_FULL;
    st = s->m->job_submit(s->ctx, job, spec, spec_len, idem_key, client, &caps, &full, err);
    if (st == TM_EBUSY && full == TM_STORE_QUEUE_FULL) {
        tm_errf(err, TM_EBUSY, "the job queue is full (%d jobs); retry later", j->cfg.max_queue);
        r = TM_JOBS_QUEUE_FULL;
    } else if (st == TM_EBUSY && full == TM_STORE_CLIENT_FULL) {
        /* "t:" is a tenant (routes.c's client keys). */
        int tenant_key = !strncmp(client, "t:", 2);
        tm_errf(err, TM_EBUSY,
                "%s '%s' already has %d queued jobs, its queued-jobs quota (--quota-queued,"
                " formerly --max-queue-per-client); retry later",
                tenant_key ? "tenant" : "client", tenant_key ? client + 2 : client,
                j->cfg.max_queue_per_client);
        r = TM_JOBS_QUOTA_QUEUED;
    } else if (st == TM_EBUSY && full == TM_STORE_STORED_FULL) {
        r = TM_JOBS_QUOTA_STORED; /* err: the store's message, with the tenant's use */
    } else if (st == TM_EBUSY && idem_key) {
        /* Another replica committed the key first: its job is the answer. */
        r = by_key(j, idem_key, spec, spec_len, job, err);
        if (r == TM_JOBS_NOT_FOUND) {
            tm_errf(err, TM_EBUSY, "this Idempotency-Key is being used; retry");
            r = TM_JOBS_STORE_ERROR;
        }
    } else if (st) {
        r = TM_JOBS_STORE_ERROR;
    }
    if (r == TM_JOBS_ACCEPTED)
        log_transition(job, NULL);
out:
    pthread_mutex_unlock(&j->submit_lock);
    return r;
}

/* job as the store has it, with the live stage and progress when this
 * replica runs it under the attempt the store has. */
static void overlay_live(struct tm_jobs *j, struct tm_job_record *job)
{
    if (job->state != TM_JOB_RUNNING)
        return;
    pthread_mutex_lock(&j->lock);
    struct job *e = find_running(j, job->id, job->attempts);
    if (e && e->stop != STOP_LOST) {
        snprintf(job->stage, sizeof(job->stage), "%s", e->rec.stage);
        job->progress = e->rec.progress;
    }
    pthread_mutex_unlock(&j->lock);
}

enum tm_jobs_refusal tm_jobs_get(struct tm_jobs *j, const char *id, struct tm_job_record *job,
                                 char *err)
{
    tm_status st = j->store->m->job_get(j->store->ctx, id, job, err);
    if (st == TM_OK)
        overlay_live(j, job);
    return st == TM_OK          ? TM_JOBS_ACCEPTED
           : st == TM_ENOTFOUND ? TM_JOBS_NOT_FOUND
                                : TM_JOBS_STORE_ERROR;
}

static enum tm_jobs_refusal already_finished(const struct tm_job_record *job, char *err)
{
    tm_errf(err, TM_EBUSY, "job '%s' has already finished (%s)", job->id,
            tm_job_state_name(job->state));
    return TM_JOBS_FINISHED;
}

enum tm_jobs_refusal tm_jobs_cancel(struct tm_jobs *j, const char *id, struct tm_job_record *job,
                                    char *err)
{
    int applied = 0;
    tm_status st = j->store->m->job_cancel(j->store->ctx, id, tm_clock_unix(), job, &applied, err);
    if (st)
        return st == TM_ENOTFOUND ? TM_JOBS_NOT_FOUND : TM_JOBS_STORE_ERROR;
    if (!applied)
        return already_finished(job, err);
    if (job->state == TM_JOB_CANCELLED) {
        log_transition(job, "queued");
        tm_metrics_job_finished(job->method, TM_JOB_CANCELLED, 0);
        return TM_JOBS_CANCELLED;
    }
    /* Running: here, it stops at its next progress report; elsewhere, its
     * replica learns of the cancel at its next renewal. */
    pthread_mutex_lock(&j->lock);
    struct job *e = find_running(j, job->id, job->attempts);
    if (e)
        ask_stop(e, STOP_CANCEL);
    pthread_mutex_unlock(&j->lock);
    overlay_live(j, job);
    return TM_JOBS_CANCELLING;
}

enum tm_jobs_refusal tm_jobs_delete(struct tm_jobs *j, const char *id, struct tm_job_record *job,
                                    char *err)
{
    enum tm_jobs_refusal r = tm_jobs_cancel(j, id, job, err);
    if (r != TM_JOBS_FINISHED)
        return r;
    tm_status st = j->store->m->job_delete(j->store->ctx, id, err);
    if (st == TM_ENOTFOUND)
        return TM_JOBS_NOT_FOUND; /* a concurrent DELETE or a sweeper won */
    if (st == TM_EBUSY) {
        tm_errf(err, TM_EBUSY, "job '%s' is being cancelled; retry", id);
        return TM_JOBS_CHANGING;
    }
    if (st)
        return TM_JOBS_STORE_ERROR;
    tm_metrics_jobs_deleted(TM_JOB_DELETED_REQUEST, 1);
    TM_LOG(TM_LOG_INFO, "job deleted", "s:job_id", id, "s:state", tm_job_state_name(job->state),
           "s:reason", "request", NULL);
    return TM_JOBS_DELETED;
}

tm_status tm_jobs_expire(struct tm_jobs *j, double before, int64_t *n_deleted, char *err)
{
    *n_deleted = 0;
    for (;;) {
        int64_t n = 0;
        tm_status st =
            j->store->m->job_expire(j->store->ctx, before, TM_JOBS_EXPIRE_BATCH, &n, err);
        if (n) {
            *n_deleted += n;
            tm_metrics_jobs_deleted(TM_JOB_DELETED_EXPIRED, (uint64_t)n);
        }
        if (st || n < TM_JOBS_EXPIRE_BATCH)
            return st;
        /* Between batches other writers get the store, and a shutdown is
         * not held up by a large backlog. */
        pthread_mutex_lock(&j->lock);
        int stop = j->sweep_stop;
        pthread_mutex_unlock(&j->lock);
        if (stop)
            return TM_OK;
    }
}

enum tm_jobs_refusal tm_jobs_delete_corpus(struct tm_jobs *j, const char *corpus_id, char *err)
{
    enum tm_jobs_refusal r = TM_JOBS_ACCEPTED;
    int64_t active = 0;
    /* NEEDSWORK: this serialises with submissions of this process only; a
     * replica submitting on the corpus between the count and the delete
     * makes a job whose corpus is gone (it fails, "corpus not found"). */
    pthread_mutex_lock(&j->submit_lock);
    tm_status st = j->store->m->corpus_jobs_active(j->store->ctx, corpus_id, &active, err);
    if (st) {
        r = TM_JOBS_STORE_ERROR;
    } else if (active) {
        tm_errf(err, TM_EBUSY, "corpus '%s' is used by %lld queued or running job(s)", corpus_id,
                (long long)active);
        r = TM_JOBS_CORPUS_BUSY;
    } else {
        st = j->store->m->corpus_delete(j->store->ctx, corpus_id, err);
        if (st)
            r = st == TM_ENOTFOUND ? TM_JOBS_NO_CORPUS : TM_JOBS_STORE_ERROR;
    }
    pthread_mutex_unlock(&j->submit_lock);
    return r;
}

void tm_jobs_stats(struct tm_jobs *j, struct tm_jobs_stats *out)
{
    int64_t queued = 0;
    char err[TM_ERR_SIZE];
    int fresh = j->store->m->job_count_queued(j->store->ctx, &queued, err) == TM_OK;
    pthread_mutex_lock(&j->lock);
    if (fresh)
        j->queued = queued;
    out->queued = j->queued;
    out->running = j->n_running;
    out->workers = j->cfg.workers;
    out->workers_alive = j->n_alive;
    out->draining = j->draining;
    pthread_mutex_unlock(&j->lock);
}

/* ---------------------------------------------------------------------- */
/* Retention and shutdown. */

/* Deletes what expired every min(retention / 10, 60) seconds: a job
 * outlives its retention by at most a tenth of it, or a minute. */
static void *sweeper_main(void *arg)
{
    struct tm_jobs *j = arg;
    pthread_setname_np(pthread_self(), "tm-sweeper");
    double period = (double)j->retention_s / 10;
    if (period > 60)
        period = 60;
    pthread_mutex_lock(&j->lock);
    while (!j->sweep_stop) {
        struct timespec until;
        deadline_on(CLOCK_MONOTONIC, &until, period);
        while (!j->sweep_stop &&
               pthread_cond_timedwait(&j->sweep_cond, &j->lock, &until) != ETIMEDOUT)
            ;
        if (j->sweep_stop)
            break;
        pthread_mutex_unlock(&j->lock);
        char err[TM_ERR_SIZE] = "";
        int64_t n = 0;
        double before = tm_clock_unix() - (double)j->retention_s;
        if (tm_jobs_expire(j, before, &n, err))
            TM_LOG(TM_LOG_ERROR, "expiring jobs failed", "s:error", err, "i:deleted", (long long)n,
                   NULL);
        else if (n)
            TM_LOG(TM_LOG_INFO, "jobs expired", "i:deleted", (long long)n, "i:retention_s",
                   (long long)j->retention_s, NULL);
        pthread_mutex_lock(&j->lock);
    }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

tm_status tm_jobs_start_retention(struct tm_jobs *j, int64_t retention_s, char *err)
{
    if (retention_s <= 0)
        return TM_OK;
    pthread_mutex_lock(&j->lock);
    int refuse = j->sweeper_started || j->sweep_stop;
    if (!refuse)
        j->retention_s = retention_s;
    pthread_mutex_unlock(&j->lock);
    if (refuse)
        return tm_errf(err, TM_EINVAL, "the retention sweeper was started already");
    int rc = pthread_create(&j->sweeper, NULL, sweeper_main, j);
    if (rc)
        return tm_errf(err, TM_ENOMEM, "starting the retention sweeper: %s", strerror(rc));
    pthread_mutex_lock(&j->lock);
    j->sweeper_started = 1;
    pthread_mutex_unlock(&j->lock);
    return TM_OK;
}

/* Wakes the sweeper and waits for it: at most one batch in flight. */
static void stop_sweeper(struct tm_jobs *j)
{
    pthread_mutex_lock(&j->lock);
    j->sweep_stop = 1;
    pthread_cond_broadcast(&j->sweep_cond);
    int started = j->sweeper_started;
    j->sweeper_started = 0;
    pthread_mutex_unlock(&j->lock);
    if (started)
        pthread_join(j->sweeper, NULL);
}

void tm_jobs_hurry(struct tm_jobs *j)
{
    pthread_mutex_lock(&j->lock);
    j->hurry = 1;
    pthread_cond_broadcast(&j->idle_cond);
    pthread_mutex_unlock(&j->lock);
}

int tm_jobs_drain(struct tm_jobs *j, double grace_s)
{
    struct timespec until;
    stop_sweeper(j);
    pthread_mutex_lock(&j->lock);
    j->draining = 1;
    deadline_on(CLOCK_REALTIME, &until, grace_s);
    while (j->n_running > 0 && !j->hurry)
        if (pthread_cond_timedwait(&j->idle_cond, &j->lock, &until) == ETIMEDOUT)
            break;
    if (j->n_running > 0) {
        /* Grace is over: running jobs stop at their next progress report. */
        for (struct job *e = j->running; e; e = e->next)
            ask_stop(e, STOP_SHUTDOWN);
        TM_LOG(TM_LOG_WARN, "grace period over; re-queueing running jobs", "i:running",
               (long long)j->n_running, NULL);
    }
    j->stopping = 1;
    pthread_cond_broadcast(&j->work_cond);
    pthread_cond_broadcast(&j->stop_cond);
    /* A job stops within one iteration; allow a few seconds for a slow one. */
    deadline_on(CLOCK_REALTIME, &until, 10);
    while (j->n_alive > 0)
        if (pthread_cond_timedwait(&j->idle_cond, &j->lock, &until) == ETIMEDOUT)
            break;
    int stuck = j->n_alive;
    pthread_mutex_unlock(&j->lock);
    if (stuck) {
        /* The lease thread goes on renewing the stuck job's lease for as
         * long as the process lives. */
        TM_LOG(TM_LOG_ERROR, "workers did not stop", "i:workers", (long long)stuck, NULL);
        return -1;
    }
    for (int i = 0; i < j->cfg.workers; i++)
        if (j->workers[i].started) {
            pthread_join(j->workers[i].thread, NULL);
            j->workers[i].started = 0;
        }
    return 0;
}

void tm_jobs_free(struct tm_jobs *j)
{
    if (!j)
        return;
    stop_sweeper(j);
    if (j->workers) {
        int any = 0;
        for (int i = 0; i < j->cfg.workers; i++)
            any |= j->workers[i].started;
        if (any && tm_jobs_drain(j, 0))
            return; /* a worker still runs: leave everything to it */
    }
    stop_leaser(j);
    if (j->listening)
        j->store->m->unlisten(j->store->ctx, j);
    for (struct job *e = j->running, *next; e; e = next) {
        next = e->next;
        tm_free(e);
    }
    tm_free(j->workers);
    pthread_cond_destroy(&j->sweep_cond);
    pthread_cond_destroy(&j->lease_cond);
    pthread_cond_destroy(&j->idle_cond);
    pthread_cond_destroy(&j->stop_cond);
    pthread_cond_destroy(&j->work_cond);
    pthread_mutex_destroy(&j->submit_lock);
    pthread_mutex_destroy(&j->lock);
    tm_free(j);
}
