/*
 * bench_claims.c - `make bench-claims`: the job queue's claims on one store
 * (server/store.h), without HTTP or fits.
 *
 *   1. claims/s: J queued jobs of C clients; W workers (threads sharing one
 *      store handle, as one replica's workers do, or R handles as R
 *      replicas) claim and finish them (a fenced job_finish with a tiny
 *      result) as fast as they can: claims/s, claim+finish/s, and the
 *      claim latency percentiles while all W compete.
 *   2. idle workers: R replicas (tm_jobs, each its own handle) of W / R
 *      workers wait on an empty queue; N jobs are submitted one at a time,
 *      ms apart: the latency from the submission's return to the job's
 *      start (the wake-up: NOTIFY on PostgreSQL, the committing thread on
 *      SQLite) and the claim latency (the jobs' own histogram).
 *
 * usage: bench_claims (--store CONNINFO | --data-dir DIR) [--workers W]
 *                     [--replicas R] [--jobs J] [--clients C] [--submits N]
 *                     [--quota-running Q]
 * Q: the stores' per-tenant running cap (store.h's quotas; 0: none): with
 * one far above W, the claims pay for the cap's check without being held
 * by it.
 * Each run uses a fresh PostgreSQL schema (CONNINFO's database must let
 * the user create one) or a fresh SQLite directory under DIR.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "server/jobs.h"
#include "server/log.h"
#include "server/store.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
    return n ? v[(size_t)((double)(n - 1) * p)] : 0;
}

static const char *pg_base, *sqlite_base;
static char schema[40], conninfo[1200], dir[300];

static int pg_exec(const char *sql)
{
    PGconn *c = PQconnectdb(pg_base);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "%s: %s", sql, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

/* A fresh store location: a schema, or a directory. */
static int fresh(void)
{
    unsigned char r[6];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return -1;
    if (pg_base) {
        snprintf(schema, sizeof(schema), "bench_%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
                 r[4], r[5]);
        snprintf(conninfo, sizeof(conninfo), "%s options=-csearch_path=%s", pg_base, schema);
        char sql[80];
        snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
        return pg_exec(sql);
    }
    snprintf(dir, sizeof(dir), "%s/claims-%02x%02x%02x", sqlite_base, r[0], r[1], r[2]);
    return 0;
}

static void drop(void)
{
    if (pg_base) {
        char sql[80];
        snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", schema);
        pg_exec(sql);
    } else {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd))
            fprintf(stderr, "could not remove %s\n", dir);
    }
}

static int64_t quota_running;

static tm_status open_store(struct tm_store *s, char *err)
{
    tm_status st =
        pg_base ? tm_store_open_pg(s, conninfo, NULL, err) : tm_store_open_sqlite(s, dir, err);
    struct tm_store_quotas q = {0, quota_running};
    if (!st)
        s->m->set_quotas(s->ctx, &q);
    return st;
}

/* ---------------------------------------------------------------------- */
/* 1. claims/s. */

struct claimer {
    struct tm_store *s;
    char owner[TM_OWNER_SIZE];
    double *lat;
    size_t n, cap;
    int finish;
    long errors;
};

static void *claim_loop(void *arg)
{
    struct claimer *c = arg;
    char err[TM_ERR_SIZE];
    for (;;) {
        struct tm_store_claimed got;
        double t0 = tm_clock_monotonic();
        tm_status st = c->s->m->job_claim(c->s->ctx, c->owner, tm_clock_unix(), 30, &got, err);
        double t = tm_clock_monotonic() - t0;
        if (st == TM_ENOTFOUND)
            return NULL;
        if (st) {
            if (!c->errors++)
                fprintf(stderr, "claim: %s\n", err);
            if (c->errors > 100)
                return NULL;
            continue;
        }
        if (c->n < c->cap)
            c->lat[c->n++] = t;
        if (!c->finish)
            continue;
        struct tm_job_claim k;
        snprintf(k.id, sizeof(k.id), "%s", got.job.id);
        k.attempt = got.job.attempts;
        snprintf(k.owner, sizeof(k.owner), "%s", c->owner);
        got.job.state = TM_JOB_SUCCEEDED;
        got.job.progress = 1;
        got.job.finished_at = tm_clock_unix();
        struct tm_store_result res = {"{\"ok\":1}", 8, 0, 0, NULL, NULL};
        if (c->s->m->job_finish(c->s->ctx, &k, &got.job, &res, err) && !c->errors++)
            fprintf(stderr, "finish: %s\n", err);
    }
}

static int bench_claims(int workers, int replicas, int jobs, int clients, int finish)
{
    char err[TM_ERR_SIZE];
    if (fresh())
        return -1;
    struct tm_store stores[64] = {0};
    int n_stores = replicas < 1 ? 1 : replicas > 64 ? 64 : replicas;
    if (!pg_base)
        n_stores = 1; /* one process per SQLite data dir */
    for (int i = 0; i < n_stores; i++)
        if (open_store(&stores[i], err)) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
    struct tm_store *s = &stores[0];
    char client[32];
    double t0 = tm_clock_monotonic();
    for (int i = 0; i < jobs; i++) {
        struct tm_job_record j;
        memset(&j, 0, sizeof(j));
        tm_id_generate("j_", j.id);
        snprintf(j.corpus_id, sizeof(j.corpus_id), "c_1");
        snprintf(j.method, sizeof(j.method), "nmf");
        j.created_at = tm_clock_unix();
        snprintf(client, sizeof(client), "id:client%d", i % clients);
        if (s->m->job_insert(s->ctx, &j, "{}", 2, NULL, client, err)) {
            fprintf(stderr, "insert: %s\n", err);
            return -1;
        }
    }
    double insert_s = tm_clock_monotonic() - t0;
    struct claimer *c = calloc((size_t)workers, sizeof(*c));
    pthread_t *th = calloc((size_t)workers, sizeof(*th));
    for (int i = 0; i < workers; i++) {
        c[i].s = &stores[i % n_stores];
        snprintf(c[i].owner, sizeof(c[i].owner), "r_bench%d", i % n_stores);
        c[i].cap = (size_t)jobs;
        c[i].lat = calloc((size_t)jobs, sizeof(double));
        c[i].finish = finish;
    }
    t0 = tm_clock_monotonic();
    for (int i = 0; i < workers; i++)
        pthread_create(&th[i], NULL, claim_loop, &c[i]);
    size_t total = 0;
    long errors = 0;
    for (int i = 0; i < workers; i++) {
        pthread_join(th[i], NULL);
        total += c[i].n;
        errors += c[i].errors;
    }
    double wall = tm_clock_monotonic() - t0;
    double *all = calloc(total ? total : 1, sizeof(double));
    size_t k = 0;
    for (int i = 0; i < workers; i++) {
        memcpy(all + k, c[i].lat, c[i].n * sizeof(double));
        k += c[i].n;
        free(c[i].lat);
    }
    qsort(all, total, sizeof(double), cmp_double);
    printf("%s: %d jobs of %d clients (inserted at %.0f/s); %d workers on %d handle(s)\n",
           finish ? "claim + finish" : "claim only", jobs, clients, jobs / insert_s, workers,
           n_stores);
    printf("  %.0f %s/s   claim p50 %.2f ms   p90 %.2f ms   p99 %.2f ms   max %.2f ms   "
           "errors %ld\n",
           (double)total / wall, finish ? "jobs" : "claims", pct(all, total, 0.5) * 1e3,
           pct(all, total, 0.9) * 1e3, pct(all, total, 0.99) * 1e3, pct(all, total, 1) * 1e3,
           errors);
    free(all);
    free(c);
    free(th);
    for (int i = 0; i < n_stores; i++)
        tm_store_close(&stores[i]);
    drop();
    return total == (size_t)jobs ? 0 : -1;
}

/* ---------------------------------------------------------------------- */
/* 2. idle workers woken by submissions. */

/* Submissions and starts, matched by id at the end: a job may start
 * before its submission returns. */
struct idle {
    pthread_mutex_t lock;
    double submitted[4096], started[4096];
    char ids[4096][TM_ID_SIZE], started_ids[4096][TM_ID_SIZE];
    int n, n_started;
};

static struct idle idle;

static void note_start(void *ctx, const struct tm_job_run *run, struct tm_job_outcome *out)
{
    (void)ctx;
    double t = tm_clock_monotonic();
    pthread_mutex_lock(&idle.lock);
    if (idle.n_started < 4096) {
        snprintf(idle.started_ids[idle.n_started], TM_ID_SIZE, "%s", run->job->id);
        idle.started[idle.n_started++] = t;
    }
    pthread_mutex_unlock(&idle.lock);
    out->status = TM_OK;
    out->result_json = tm_strndup("{}", 2);
    out->result_len = 2;
}

static int bench_idle(int workers, int replicas, int submits)
{
    char err[TM_ERR_SIZE];
    if (fresh())
        return -1;
    if (!pg_base)
        replicas = 1;
    struct tm_store stores[16] = {0};
    struct tm_jobs *jobs[16];
    if (replicas > 16)
        replicas = 16;
    pthread_mutex_init(&idle.lock, NULL);
    for (int i = 0; i < replicas; i++) {
        if (open_store(&stores[i], err)) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
        struct tm_jobs_config cfg = {.workers = workers / replicas,
                                     .max_queue = 100000,
                                     .max_attempts = 3,
                                     .work = note_start,
                                     .lease_s = 30,
                                     .quota_running = (int)quota_running};
        if (tm_jobs_new(&jobs[i], &stores[i], &cfg, err)) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
    }
    struct tm_corpus_record c;
    memset(&c, 0, sizeof(c));
    snprintf(c.id, sizeof(c.id), "c_1");
    stores[0].m->corpus_create(stores[0].ctx, &c, err);
    stores[0].m->corpus_commit(stores[0].ctx, "c_1", err);
    usleep(300000); /* every worker idle, every listener listening */
    if (submits > 4096)
        submits = 4096;
    for (int i = 0; i < submits; i++) {
        struct tm_job_record r;
        double t = tm_clock_monotonic();
        if (tm_jobs_submit(jobs[i % replicas], "c_1", "{}", 2, "nmf", NULL, "id:bench", NULL, &r,
                           err) != TM_JOBS_ACCEPTED) {
            fprintf(stderr, "submit: %s\n", err);
            return -1;
        }
        pthread_mutex_lock(&idle.lock);
        snprintf(idle.ids[idle.n], TM_ID_SIZE, "%s", r.id);
        idle.submitted[idle.n++] = t;
        pthread_mutex_unlock(&idle.lock);
        usleep(20000);
    }
    usleep(500000);
    double *lat = calloc((size_t)submits, sizeof(double));
    int n = 0, missed = 0;
    pthread_mutex_lock(&idle.lock);
    for (int i = 0; i < idle.n; i++) {
        int k = 0;
        while (k < idle.n_started && strcmp(idle.started_ids[k], idle.ids[i]))
            k++;
        if (k < idle.n_started)
            lat[n++] = idle.started[k] - idle.submitted[i];
        else
            missed++;
    }
    pthread_mutex_unlock(&idle.lock);
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    printf("idle workers: %d replica(s) x %d workers, %d jobs submitted 20 ms apart\n", replicas,
           workers / replicas, submits);
    printf("  submit -> start p50 %.2f ms   p90 %.2f ms   p99 %.2f ms   max %.2f ms   "
           "never started: %d\n",
           pct(lat, (size_t)n, 0.5) * 1e3, pct(lat, (size_t)n, 0.9) * 1e3,
           pct(lat, (size_t)n, 0.99) * 1e3, pct(lat, (size_t)n, 1) * 1e3, missed);
    free(lat);
    for (int i = 0; i < replicas; i++) {
        tm_jobs_free(jobs[i]);
        tm_store_close(&stores[i]);
    }
    drop();
    return 0;
}

int main(int argc, char **argv)
{
    int workers = 16, replicas = 1, jobs = 4000, clients = 8, submits = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--store"))
            pg_base = argv[i + 1];
        else if (!strcmp(argv[i], "--data-dir"))
            sqlite_base = argv[i + 1];
        else if (!strcmp(argv[i], "--workers"))
            workers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--replicas"))
            replicas = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--jobs"))
            jobs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--clients"))
            clients = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--submits"))
            submits = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--quota-running"))
            quota_running = atoll(argv[i + 1]);
    }
    if (!pg_base == !sqlite_base || workers < 1 || jobs < 1 || clients < 1 || replicas < 1) {
        fprintf(stderr, "usage: bench_claims (--store CONNINFO | --data-dir DIR) [--workers W]"
                        " [--replicas R] [--jobs J] [--clients C] [--submits N]"
                        " [--quota-running Q]\n");
        return 2;
    }
    tm_log_set_level(TM_LOG_WARN);
    int rc = 0;
    rc |= bench_claims(workers, replicas, jobs, clients, 0);
    rc |= bench_claims(workers, replicas, jobs, clients, 1);
    rc |= bench_idle(workers, replicas, submits);
    return rc ? 1 : 0;
}
