/*
 * jobs.c - job table, fair queue and worker pool (see jobs.h).
 *
 * The queue is one FIFO "lane" per fairness key (client). A worker takes the
 * oldest job of the lane whose client least recently started a job (a client
 * with nothing queued or running has a new lane and goes first; ties go to
 * the older head job): round-robin across clients, FIFO within one. A pick
 * scans the lanes, O(keys); a lane lives while its client has queued or
 * running jobs, so there are at most max_queue + workers of them.
 *
 * Two locks. `lock` guards the in-memory table and queue and is only ever
 * held for a few pointer moves and copies, never across store I/O, so status
 * polls never wait for an fsync. `submit_lock` serialises submissions with
 * corpus deletions (the "no job uses this corpus" check and the delete must
 * not interleave with a submission on that corpus) and is held across store
 * I/O, but polls never take it.
 *
 * Deleting a finished job (DELETE, or the retention sweeper) takes neither
 * lock across store I/O: the store checks the state inside its own
 * transaction, and a replay of an Idempotency-Key racing the deletion
 * answers with the job as it was, just as a GET racing it would.
 */
#include "jobs.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
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

enum stop_reason { STOP_NONE, STOP_CANCEL, STOP_SHUTDOWN };

struct lane {
    char client[TM_CLIENT_SIZE];
    struct job *head, *tail; /* queued jobs, oldest first */
    int64_t n_queued, n_running;
    uint64_t last_start; /* tick of the latest start, 0: none */
    struct lane *prev, *next;
};

struct job {
    struct tm_job_record rec;
    struct lane *lane; /* while queued or running */
    enum stop_reason stop;
    int queued;                /* in the queue */
    int claimed;               /* a worker has taken it (running, or about to) */
    struct job *hnext;         /* hash chain */
    struct job *qprev, *qnext; /* the lane's queue */
    struct job *rprev, *rnext; /* recent finished list, newest at head */
    int recent;
};

struct worker {
    struct tm_jobs *jobs;
    pthread_t thread;
    int started;
};

struct tm_jobs {
    struct tm_store *store;
    struct tm_jobs_config cfg;
    pthread_mutex_t lock;
    pthread_cond_t work_cond; /* workers wait for a job */
    pthread_cond_t idle_cond; /* drain waits for running jobs */
    pthread_mutex_t submit_lock;

    struct job **buckets;
    size_t n_buckets, n_jobs;
    struct lane *lanes;
    uint64_t tick; /* counts starts */
    int64_t n_queued, n_running;
    struct job *rhead, *rtail;
    int n_recent;

    struct worker *workers;
    int n_alive;
    int draining; /* no new submissions, workers take no new job */
    int stopping; /* workers exit */
    int hurry;    /* the drain's grace period ends now */

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

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The table's lock is held by every helper below up to "Workers". */

static struct job *find(struct tm_jobs *j, const char *id)
{
    for (struct job *e = j->buckets[hash_id(id) & (j->n_buckets - 1)]; e; e = e->hnext)
        if (!strcmp(e->rec.id, id))
            return e;
    return NULL;
}

static void grow(struct tm_jobs *j)
{
    size_t nb = j->n_buckets * 2;
    struct job **b = tm_calloc(nb, sizeof(*b));
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < j->n_buckets; i++)
        for (struct job *e = j->buckets[i], *next; e; e = next) {
            next = e->hnext;
            size_t h = hash_id(e->rec.id) & (nb - 1);
            e->hnext = b[h];
            b[h] = e;
        }
    tm_free(j->buckets);
    j->buckets = b;
    j->n_buckets = nb;
}

static void insert(struct tm_jobs *j, struct job *e)
{
    if (j->n_jobs >= 2 * j->n_buckets)
        grow(j);
    size_t h = hash_id(e->rec.id) & (j->n_buckets - 1);
    e->hnext = j->buckets[h];
    j->buckets[h] = e;
    j->n_jobs++;
}

static void unlink_hash(struct tm_jobs *j, struct job *e)
{
    struct job **p = &j->buckets[hash_id(e->rec.id) & (j->n_buckets - 1)];
    while (*p && *p != e)
        p = &(*p)->hnext;
    if (*p) {
        *p = e->hnext;
        j->n_jobs--;
    }
}

/* The lane of client, or NULL when it has none and spare is NULL; else
 * spare (a zeroed allocation, taken only when it is used: compare) becomes
 * the client's lane. Allocated by the caller so that this, under the lock,
 * cannot fail. */
static struct lane *lane_get(struct tm_jobs *j, const char *client, struct lane *spare)
{
    for (struct lane *l = j->lanes; l; l = l->next)
        if (!strcmp(l->client, client))
            return l;
    if (!spare)
        return NULL;
    struct lane *l = spare;
    snprintf(l->client, sizeof(l->client), "%s", client);
    l->next = j->lanes;
    if (j->lanes)
        j->lanes->prev = l;
    j->lanes = l;
    return l;
}

/* Frees a lane with nothing queued or running: memory stays bounded. */
static void lane_release(struct tm_jobs *j, struct lane *l)
{
    if (l->n_queued || l->n_running)
        return;
    if (l->prev)
        l->prev->next = l->next;
    else
        j->lanes = l->next;
    if (l->next)
        l->next->prev = l->prev;
    tm_free(l);
}

/* e->lane is set. */
static void enqueue(struct tm_jobs *j, struct job *e)
{
    struct lane *l = e->lane;
    e->qnext = NULL;
    e->qprev = l->tail;
    e->queued = 1;
    if (l->tail)
        l->tail->qnext = e;
    else
        l->head = e;
    l->tail = e;
    l->n_queued++;
    j->n_queued++;
}

/* e, a new job, into the table and at the end of its client's lane; spare
 * as for lane_get. Returns 1 when spare was taken for the lane. */
static int add_queued(struct tm_jobs *j, struct job *e, const char *client, struct lane *spare)
{
    e->lane = lane_get(j, client, spare);
    insert(j, e);
    enqueue(j, e);
    return e->lane == spare;
}

static void remove_queued(struct tm_jobs *j, struct job *e)
{
    struct lane *l = e->lane;
    if (!e->queued)
        return;
    if (e->qprev)
        e->qprev->qnext = e->qnext;
    else
        l->head = e->qnext;
    if (e->qnext)
        e->qnext->qprev = e->qprev;
    else
        l->tail = e->qprev;
    e->qprev = e->qnext = NULL;
    e->queued = 0;
    l->n_queued--;
    j->n_queued--;
}

/* The next job to start (see the top of the file), out of the queue, its
 * lane counted as running it; NULL when the queue is empty. */
static struct job *dequeue(struct tm_jobs *j)
{
    struct lane *best = NULL;
    for (struct lane *l = j->lanes; l; l = l->next)
        if (l->head &&
            (!best || l->last_start < best->last_start ||
             (l->last_start == best->last_start && l->head->rec.seq < best->head->rec.seq)))
            best = l;
    if (!best)
        return NULL;
    struct job *e = best->head;
    remove_queued(j, e);
    best->n_running++;
    best->last_start = ++j->tick;
    return e;
}

/* A job that was dequeued is no longer running. */
static void lane_done(struct tm_jobs *j, struct job *e)
{
    struct lane *l = e->lane;
    e->lane = NULL;
    if (!l)
        return;
    l->n_running--;
    lane_release(j, l);
}

/* A finished job leaves memory (the recent list and the table); polls then
 * read it from the store. */
static void forget(struct tm_jobs *j, struct job *e)
{
    if (e->rprev)
        e->rprev->rnext = e->rnext;
    else
        j->rhead = e->rnext;
    if (e->rnext)
        e->rnext->rprev = e->rprev;
    else
        j->rtail = e->rprev;
    j->n_recent--;
    unlink_hash(j, e);
    tm_free(e);
}

/* A finished job joins the recent list; the oldest ones leave memory. */
static void retire(struct tm_jobs *j, struct job *e)
{
    e->recent = 1;
    e->rprev = NULL;
    e->rnext = j->rhead;
    if (j->rhead)
        j->rhead->rprev = e;
    j->rhead = e;
    if (!j->rtail)
        j->rtail = e;
    j->n_recent++;
    while (j->n_recent > j->cfg.recent_jobs && j->rtail)
        forget(j, j->rtail);
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
    int stop = rc->e->stop != STOP_NONE;
    pthread_mutex_unlock(&rc->jobs->lock);
    return stop;
}

static void run_one(struct tm_jobs *j, struct job *e)
{
    char err[TM_ERR_SIZE] = "";
    struct tm_job_record snap;

    /* The lock is held on entry. The job is claimed (cancellation now asks
     * it to stop) but shown "running" only once the store says so: a client
     * that saw "running" and then a crash will see the attempt counted. */
    e->claimed = 1;
    snap = e->rec;
    snap.state = TM_JOB_RUNNING;
    snap.attempts++;
    snap.started_at = tm_clock_unix();
    snap.stage[0] = 0;
    snap.progress = 0;
    j->n_running++;
    pthread_mutex_unlock(&j->lock);

    if (j->store->m->job_update(j->store->ctx, NULL, &snap, err))
        log_store_failed(snap.id, err);
    pthread_mutex_lock(&j->lock);
    e->rec.state = snap.state;
    e->rec.attempts = snap.attempts;
    e->rec.started_at = snap.started_at;
    pthread_mutex_unlock(&j->lock);
    log_transition(&snap, "queued");

    char *spec = NULL;
    size_t spec_len = 0;
    struct tm_job_outcome out;
    memset(&out, 0, sizeof(out));
    tm_status st = j->store->m->job_spec(j->store->ctx, snap.id, &spec, &spec_len, err);
    if (st) {
        out.status = st;
        snprintf(out.error_code, sizeof(out.error_code), "store_error");
        snprintf(out.error_message, sizeof(out.error_message), "%s", err);
    } else {
        struct run_ctx rc = {j, e};
        struct tm_job_run run = {&snap, spec, spec_len, {run_report, &rc}};
        j->cfg.work(j->cfg.work_ctx, &run, &out);
    }
    tm_free(spec);

    pthread_mutex_lock(&j->lock);
    enum stop_reason stop = e->stop;
    struct tm_job_record fin = e->rec;
    pthread_mutex_unlock(&j->lock);

    int requeue = 0;
    if (out.status == TM_OK) {
        fin.state = TM_JOB_SUCCEEDED;
        fin.progress = 1;
        fin.error_code[0] = fin.error_message[0] = 0;
    } else if (out.status == TM_ECANCELLED && stop == STOP_SHUTDOWN) {
        /* Interrupted by our own shutdown: back in the queue, attempt not counted. */
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

    struct tm_store_result res = {out.result_json, out.result_len, out.n_documents,
                                  out.n_topics,    out.doc_topics, out.doc_ids};
    st = j->store->m->job_finish(j->store->ctx, NULL, &fin,
                                 fin.state == TM_JOB_SUCCEEDED ? &res : NULL, err);
    if (st && fin.state == TM_JOB_SUCCEEDED) {
        /* The result could not be stored (disk full?): the job failed. */
        log_store_failed(fin.id, err);
        fin.state = TM_JOB_FAILED;
        snprintf(fin.error_code, sizeof(fin.error_code), "store_error");
        snprintf(fin.error_message, sizeof(fin.error_message), "storing the result: %s", err);
        j->store->m->job_update(j->store->ctx, NULL, &fin, err);
    } else if (st) {
        log_store_failed(fin.id, err);
    }
    tm_free(out.result_json);
    tm_free(out.doc_topics);
    for (int64_t i = 0; out.doc_ids && i < out.n_documents; i++)
        tm_free(out.doc_ids[i]);
    tm_free(out.doc_ids);
    log_transition(&fin, "running");
    if (!requeue)
        tm_metrics_job_finished(fin.method, fin.state, fin.finished_at - fin.started_at);

    pthread_mutex_lock(&j->lock);
    e->rec = fin;
    j->n_running--;
    lane_done(j, e);
    if (!requeue)
        retire(j, e);
    /* A requeued job stays in memory as "queued" but not in the queue: the
     * workers are stopping; the next process picks it up from the store. */
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
    pthread_mutex_lock(&j->lock);
    for (;;) {
        while (!j->stopping && (j->draining || !j->n_queued))
            pthread_cond_wait(&j->work_cond, &j->lock);
        if (j->stopping)
            break;
        struct job *e = dequeue(j);
        run_one(j, e); /* returns with the lock held */
    }
    j->n_alive--;
    pthread_cond_broadcast(&j->idle_cond);
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Recovery. */

struct recover_ctx {
    struct tm_jobs *j;
    tm_status st;
    char *err;
};

static int recover_running(void *ctx, const struct tm_job_record *job, const char *client)
{
    (void)client; /* kept in the store as it is */
    struct recover_ctx *rc = ctx;
    struct tm_job_record r = *job;
    if (r.attempts >= rc->j->cfg.max_attempts) {
        r.state = TM_JOB_FAILED;
        r.finished_at = tm_clock_unix();
        snprintf(r.error_code, sizeof(r.error_code), "worker_crashed");
        snprintf(r.error_message, sizeof(r.error_message),
                 "the process stopped while running this job %d times (crash, kill or out of "
                 "memory); giving up",
                 r.attempts);
    } else {
        set_requeued(&r);
    }
    rc->st = rc->j->store->m->job_update(rc->j->store->ctx, NULL, &r, rc->err);
    if (!rc->st)
        TM_LOG(TM_LOG_WARN, "job recovered", "s:job_id", r.id, "s:to", tm_job_state_name(r.state),
               "i:attempts", (long long)r.attempts, NULL);
    return rc->st != TM_OK;
}

static int recover_queued(void *ctx, const struct tm_job_record *job, const char *client)
{
    struct recover_ctx *rc = ctx;
    struct job *e = tm_calloc(1, sizeof(*e));
    struct lane *spare = tm_calloc(1, sizeof(*spare));
    if (!e || !spare) {
        tm_free(e);
        tm_free(spare);
        rc->st = tm_errf(rc->err, TM_ENOMEM, "recovering jobs");
        return 1;
    }
    e->rec = *job;
    if (!add_queued(rc->j, e, client, spare))
        tm_free(spare);
    return 0;
}

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
    pthread_mutex_init(&j->lock, NULL);
    pthread_mutex_init(&j->submit_lock, NULL);
    pthread_cond_init(&j->work_cond, NULL);
    pthread_cond_init(&j->idle_cond, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->sweep_cond, &ca);
    pthread_condattr_destroy(&ca);
    j->n_buckets = 1024;
    j->buckets = tm_calloc(j->n_buckets, sizeof(*j->buckets));
    j->workers = tm_calloc((size_t)j->cfg.workers, sizeof(*j->workers));
    if (!j->buckets || !j->workers) {
        tm_jobs_free(j);
        return tm_errf(err, TM_ENOMEM, "jobs");
    }

    /* No thread runs yet: the lock is not needed, but helpers expect it. */
    struct recover_ctx rc = {j, TM_OK, err};
    tm_status st = store->m->job_scan(store->ctx, TM_JOB_RUNNING, recover_running, &rc, err);
    if (!st)
        st = rc.st;
    if (!st) {
        pthread_mutex_lock(&j->lock);
        st = store->m->job_scan(store->ctx, TM_JOB_QUEUED, recover_queued, &rc, err);
        pthread_mutex_unlock(&j->lock);
        if (!st)
            st = rc.st;
    }
    if (st) {
        tm_jobs_free(j);
        return st;
    }
    if (j->n_queued)
        TM_LOG(TM_LOG_INFO, "jobs recovered", "i:queued", (long long)j->n_queued, NULL);

    for (int i = 0; i < j->cfg.workers; i++) {
        j->workers[i].jobs = j;
        pthread_mutex_lock(&j->lock);
        int rc2 = pthread_create(&j->workers[i].thread, NULL, worker_main, &j->workers[i]);
        if (!rc2) {
            j->workers[i].started = 1;
            j->n_alive++;
        }
        pthread_mutex_unlock(&j->lock);
        if (rc2) {
            tm_jobs_free(j);
            return tm_errf(err, TM_ENOMEM, "starting worker %d: %s", i, strerror(rc2));
        }
    }
    *out = j;
    return TM_OK;
}

/* ---------------------------------------------------------------------- */
/* Requests. */

enum tm_jobs_refusal tm_jobs_submit(struct tm_jobs *j, const char *corpus_id, const char *spec,
                                    size_t spec_len, const char *method, const char *idem_key,
                                    const char *client, struct tm_job_record *job, char *err)
{
    enum tm_jobs_refusal r = TM_JOBS_ACCEPTED;
    struct tm_store *s = j->store;
    struct lane *spare = NULL;
    if (!client)
        client = "";
    if (strlen(client) >= TM_CLIENT_SIZE) {
        tm_errf(err, TM_EINVAL, "client key longer than %d bytes", TM_CLIENT_SIZE - 1);
        return TM_JOBS_STORE_ERROR; /* a caller's bug: routes.c checks the length */
    }
    pthread_mutex_lock(&j->submit_lock);

    if (idem_key) {
        char *old = NULL;
        size_t old_len = 0;
        tm_status st = s->m->job_by_idem(s->ctx, idem_key, job, &old, &old_len, err);
        if (st == TM_OK) {
            int same = old_len == spec_len && !memcmp(old, spec, spec_len);
            tm_free(old);
            if (!same) {
                tm_errf(err, TM_EINVAL,
                        "this Idempotency-Key was used with a different request body");
                r = TM_JOBS_KEY_MISMATCH;
                goto out;
            }
            /* The live state, when the job is still in memory. */
            pthread_mutex_lock(&j->lock);
            struct job *e = find(j, job->id);
            if (e)
                *job = e->rec;
            pthread_mutex_unlock(&j->lock);
            r = TM_JOBS_REPLAYED;
            goto out;
        }
        if (st != TM_ENOTFOUND) {
            r = TM_JOBS_STORE_ERROR;
            goto out;
        }
    }

    pthread_mutex_lock(&j->lock);
    int draining = j->draining;
    int full = j->n_queued >= j->cfg.max_queue;
    /* Only submissions add to a lane, and they are serialised by
     * submit_lock: the count cannot grow before this job is queued. */
    struct lane *mine = lane_get(j, client, NULL);
    int client_full = mine && mine->n_queued >= j->cfg.max_queue_per_client;
    pthread_mutex_unlock(&j->lock);
    if (draining) {
        tm_errf(err, TM_EBUSY, "the server is shutting down");
        r = TM_JOBS_DRAINING;
        goto out;
    }
    if (full) {
        tm_errf(err, TM_EBUSY, "the job queue is full (%d jobs); retry later", j->cfg.max_queue);
        r = TM_JOBS_QUEUE_FULL;
        goto out;
    }
    if (client_full) {
        tm_errf(err, TM_EBUSY,
                "client '%s' already has %d queued jobs, the per-client limit "
                "(max-queue-per-client); retry later",
                client, j->cfg.max_queue_per_client);
        r = TM_JOBS_QUEUE_FULL;
        goto out;
    }

    /* "" is a job with inline documents, which carries its corpus in its spec. */
    struct tm_corpus_record c;
    tm_status st = corpus_id[0] ? s->m->corpus_get(s->ctx, corpus_id, &c, err) : TM_OK;
    if (st) {
        r = st == TM_ENOTFOUND ? TM_JOBS_NO_CORPUS : TM_JOBS_STORE_ERROR;
        goto out;
    }

    struct job *e = tm_calloc(1, sizeof(*e));
    spare = tm_calloc(1, sizeof(*spare));
    if (!e || !spare) {
        tm_free(e);
        tm_errf(err, TM_ENOMEM, "out of memory");
        r = TM_JOBS_STORE_ERROR;
        goto out;
    }
    tm_id_generate("j_", e->rec.id);
    snprintf(e->rec.corpus_id, sizeof(e->rec.corpus_id), "%s", corpus_id);
    snprintf(e->rec.method, sizeof(e->rec.method), "%s", method ? method : "");
    e->rec.state = TM_JOB_QUEUED;
    e->rec.created_at = tm_clock_unix();
    st = s->m->job_insert(s->ctx, &e->rec, spec, spec_len, idem_key, client, err);
    if (st) {
        tm_free(e);
        r = TM_JOBS_STORE_ERROR;
        goto out;
    }
    pthread_mutex_lock(&j->lock);
    if (add_queued(j, e, client, spare))
        spare = NULL;
    *job = e->rec;
    pthread_cond_signal(&j->work_cond);
    pthread_mutex_unlock(&j->lock);
    log_transition(job, NULL);
out:
    pthread_mutex_unlock(&j->submit_lock);
    tm_free(spare);
    return r;
}

enum tm_jobs_refusal tm_jobs_get(struct tm_jobs *j, const char *id, struct tm_job_record *job,
                                 char *err)
{
    pthread_mutex_lock(&j->lock);
    struct job *e = find(j, id);
    if (e)
        *job = e->rec;
    pthread_mutex_unlock(&j->lock);
    if (e)
        return TM_JOBS_ACCEPTED;
    tm_status st = j->store->m->job_get(j->store->ctx, id, job, err);
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
    pthread_mutex_lock(&j->lock);
    struct job *e = find(j, id);
    if (!e) {
        pthread_mutex_unlock(&j->lock);
        enum tm_jobs_refusal r = tm_jobs_get(j, id, job, err);
        if (r != TM_JOBS_ACCEPTED)
            return r;
        /* Only finished jobs leave memory. */
        return already_finished(job, err);
    }
    if (tm_job_state_final(e->rec.state)) {
        *job = e->rec;
        pthread_mutex_unlock(&j->lock);
        return already_finished(job, err);
    }
    if (e->claimed && !tm_job_state_final(e->rec.state)) {
        if (e->stop == STOP_NONE)
            e->stop = STOP_CANCEL;
        *job = e->rec;
        pthread_mutex_unlock(&j->lock);
        return TM_JOBS_CANCELLING;
    }
    /* Queued: cancelled at once. */
    if (e->queued) {
        struct lane *l = e->lane;
        remove_queued(j, e);
        e->lane = NULL;
        lane_release(j, l);
    }
    set_cancelled(&e->rec);
    e->rec.finished_at = tm_clock_unix();
    *job = e->rec;
    retire(j, e);
    pthread_mutex_unlock(&j->lock);
    /* NEEDSWORK: a crash between the lines above and this write re-queues
     * the job at the next start; a cancellation is rare enough to accept it
     * rather than hold the table's lock across an fsync. */
    if (j->store->m->job_update(j->store->ctx, NULL, job, err))
        log_store_failed(job->id, err);
    log_transition(job, "queued");
    tm_metrics_job_finished(job->method, TM_JOB_CANCELLED, 0);
    return TM_JOBS_CANCELLED;
}

enum tm_jobs_refusal tm_jobs_delete(struct tm_jobs *j, const char *id, struct tm_job_record *job,
                                    char *err)
{
    enum tm_jobs_refusal r = tm_jobs_cancel(j, id, job, err);
    if (r != TM_JOBS_FINISHED)
        return r;
    /* The store first: should it refuse (a queued job's cancellation is in
     * memory but not yet written, see tm_jobs_cancel), memory still agrees
     * with it. A poll between the two writes sees the job finished, as it
     * was a moment before. */
    tm_status st = j->store->m->job_delete(j->store->ctx, id, err);
    if (st == TM_ENOTFOUND)
        return TM_JOBS_NOT_FOUND; /* a concurrent DELETE or the sweeper won */
    if (st == TM_EBUSY) {
        tm_errf(err, TM_EBUSY, "job '%s' is being cancelled; retry", id);
        return TM_JOBS_CHANGING;
    }
    if (st)
        return TM_JOBS_STORE_ERROR;
    pthread_mutex_lock(&j->lock);
    struct job *e = find(j, id);
    /* Only finished jobs are on the recent list; any other entry belongs
     * to a worker. */
    if (e && e->recent)
        forget(j, e);
    pthread_mutex_unlock(&j->lock);
    tm_metrics_jobs_deleted(TM_JOB_DELETED_REQUEST, 1);
    TM_LOG(TM_LOG_INFO, "job deleted", "s:job_id", id, "s:state", tm_job_state_name(job->state),
           "s:reason", "request", NULL);
    return TM_JOBS_DELETED;
}

/* Jobs retire in finished_at order but for the store write in between
 * (job_finish): a job retired later finished at most this much earlier. So
 * the walk of memory from the oldest end stops at a job finished this long
 * after `before`, instead of visiting every recent job. */
#define RETIRE_SLACK_S 60.0

tm_status tm_jobs_expire(struct tm_jobs *j, double before, int64_t *n_deleted, char *err)
{
    *n_deleted = 0;
    /* Memory first, then the store: a poll that misses memory reads the
     * store, which answers consistently, whereas the other order would let
     * a poll see a job whose result is already gone. */
    pthread_mutex_lock(&j->lock);
    for (struct job *e = j->rtail, *prev; e; e = prev) {
        prev = e->rprev;
        if (e->rec.finished_at < before)
            forget(j, e);
        else if (e->rec.finished_at >= before + RETIRE_SLACK_S)
            break;
    }
    pthread_mutex_unlock(&j->lock);
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
    pthread_mutex_lock(&j->lock);
    out->queued = j->n_queued;
    out->running = j->n_running;
    out->workers = j->cfg.workers;
    out->workers_alive = j->n_alive;
    out->draining = j->draining;
    pthread_mutex_unlock(&j->lock);
}

/* ---------------------------------------------------------------------- */
/* Shutdown. */

/* s seconds from now on clock (CLOCK_REALTIME for the conditions made
 * without attributes). */
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
        for (size_t b = 0; b < j->n_buckets; b++)
            for (struct job *e = j->buckets[b]; e; e = e->hnext)
                if (e->claimed && !tm_job_state_final(e->rec.state) && e->stop == STOP_NONE)
                    e->stop = STOP_SHUTDOWN;
        TM_LOG(TM_LOG_WARN, "grace period over; re-queueing running jobs", "i:running",
               (long long)j->n_running, NULL);
    }
    j->stopping = 1;
    pthread_cond_broadcast(&j->work_cond);
    /* A job stops within one iteration; allow a few seconds for a slow one. */
    deadline_on(CLOCK_REALTIME, &until, 10);
    while (j->n_alive > 0)
        if (pthread_cond_timedwait(&j->idle_cond, &j->lock, &until) == ETIMEDOUT)
            break;
    int stuck = j->n_alive;
    pthread_mutex_unlock(&j->lock);
    if (stuck) {
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
    if (j->buckets)
        for (size_t b = 0; b < j->n_buckets; b++)
            for (struct job *e = j->buckets[b], *next; e; e = next) {
                next = e->hnext;
                tm_free(e);
            }
    for (struct lane *l = j->lanes, *next; l; l = next) {
        next = l->next;
        tm_free(l);
    }
    tm_free(j->buckets);
    tm_free(j->workers);
    pthread_cond_destroy(&j->sweep_cond);
    pthread_cond_destroy(&j->idle_cond);
    pthread_cond_destroy(&j->work_cond);
    pthread_mutex_destroy(&j->submit_lock);
    pthread_mutex_destroy(&j->lock);
    tm_free(j);
}
