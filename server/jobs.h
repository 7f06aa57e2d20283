/*
 * jobs.h - the job table, the bounded FIFO queue and the worker pool
 * (libuv's uv_queue_work: HTTP threads submit, workers compute, results are
 * published under a lock).
 *
 * The queue is fair: each job has a fairness key, its client, and a worker
 * takes the oldest queued job of the client that least recently started
 * one (round-robin across clients, FIFO within a client), so one client's
 * 500 jobs do not starve the others. The key is stored with the job and
 * survives a restart.
 * A job goes queued -> running -> succeeded | failed | cancelled. Every
 * transition is written to the store before it is published in memory, so a
 * client that sees "succeeded" can read the result, and a job answered with
 * 202 survives kill -9: at start-up jobs left "running" are re-queued, or
 * failed with a clear reason once they have been started max_attempts times
 * (a job that crashes the process each time must not crash it forever).
 * Status polls are answered from memory (active jobs and the most recent
 * finished ones), falling back to the store for older jobs.
 * Finished jobs are kept retention_s seconds after they finish, then a
 * sweeper thread deletes them (in batches of TM_JOBS_EXPIRE_BATCH, so the
 * store's write lock is never held long); DELETE deletes one at once.
 * The work itself is a callback (server/worker.c runs the real pipeline;
 * tests plug in a fake), given a tm_progress that records stage and progress
 * and returns non-zero once the job is cancelled or the server is stopping.
 * Thread-safety: every function is thread-safe once tm_jobs_new returned,
 * except tm_jobs_free.
 */
#ifndef TM_SERVER_JOBS_H
#define TM_SERVER_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "core/progress.h"
#include "store.h"

/* What the work callback is given; all borrowed for the call. */
struct tm_job_run {
    const struct tm_job_record *job; /* a snapshot at start */
    const char *spec;
    size_t spec_len;
    struct tm_progress progress; /* report(stage, job fraction); non-zero: stop now */
};

/* What it gives back. status TM_OK: result_json set (and doc_topics maybe);
 * else error_code/error_message say why (TM_ECANCELLED when it stopped on
 * request). result_json and doc_topics are taken (tm_free). */
struct tm_job_outcome {
    tm_status status;
    char error_code[32];
    char error_message[320];
    char *result_json;
    size_t result_len;
    double *doc_topics; /* n_documents x n_topics, row-major */
    int64_t n_documents, n_topics;
    char **doc_ids; /* taken: n_documents ids (entries may be NULL), or NULL */
};

typedef void (*tm_job_work_fn)(void *ctx, const struct tm_job_run *run, struct tm_job_outcome *out);

struct tm_jobs_config {
    int workers;      /* >= 1 */
    int max_queue;    /* queued jobs before submissions are refused */
    int max_attempts; /* runs interrupted by crashes before a job fails */
    int recent_jobs;  /* finished jobs kept in memory */
    int worker_nice;  /* added to the workers' nice value (0: none) */
    tm_job_work_fn work;
    void *work_ctx; /* borrowed */
    /* Queued jobs of one client before its submissions are refused; 0 (or
     * more than max_queue): max_queue. */
    int max_queue_per_client;
};

/* Jobs deleted per store transaction when expiring. */
#define TM_JOBS_EXPIRE_BATCH 100

/* Why a submission or a cancellation was refused. */
enum tm_jobs_refusal {
    TM_JOBS_ACCEPTED,
    TM_JOBS_REPLAYED,     /* same idempotency key and body: the earlier job */
    TM_JOBS_QUEUE_FULL,   /* 429 */
    TM_JOBS_DRAINING,     /* 503 */
    TM_JOBS_KEY_MISMATCH, /* same key, other body: 422 */
    TM_JOBS_NO_CORPUS,    /* 404 */
    TM_JOBS_NOT_FOUND,    /* 404 */
    TM_JOBS_FINISHED,     /* cancel: already finished, 409 */
    TM_JOBS_CANCELLING,   /* cancel: running, asked to stop (202) */
    TM_JOBS_CANCELLED,    /* cancel: was queued, now cancelled (200) */
    TM_JOBS_CORPUS_BUSY,  /* corpus delete: a job uses it, 409 */
    TM_JOBS_STORE_ERROR,  /* 500/503 with err */
    TM_JOBS_DELETED,      /* delete: was finished, now deleted (204) */
    TM_JOBS_CHANGING      /* delete: its cancellation is being written; 409, retry */
};

struct tm_jobs;

/*
 * Recovers the store's queued and running jobs (see above) and starts the
 * workers. store, config: borrowed; store must outlive the table. *out owned,
 * freed with tm_jobs_free.
 */
tm_status tm_jobs_new(struct tm_jobs **out, struct tm_store *store,
                      const struct tm_jobs_config *config, char *err);

/* Keeps finished jobs retention_s seconds after they finish: starts the
 * sweeper thread, which tm_jobs_drain and tm_jobs_free stop. Call once,
 * after tm_jobs_new. retention_s 0: jobs are kept forever, no thread. */
tm_status tm_jobs_start_retention(struct tm_jobs *j, int64_t retention_s, char *err);

/* A new job on corpus_id (must exist, committed) with its spec (stored as
 * given: the idempotency comparison is on these bytes). method: for metrics
 * and listings. idem_key: NULL or the Idempotency-Key. client: the fairness
 * key, shorter than TM_CLIENT_SIZE (NULL: ""); TM_JOBS_QUEUE_FULL when the
 * queue, or this client's share of it, is full. *job: the record. */
enum tm_jobs_refusal tm_jobs_submit(struct tm_jobs *j, const char *corpus_id, const char *spec,
                                    size_t spec_len, const char *method, const char *idem_key,
                                    const char *client, struct tm_job_record *job, char *err);

/* The record of job id: TM_JOBS_ACCEPTED, TM_JOBS_NOT_FOUND or a store error. */
enum tm_jobs_refusal tm_jobs_get(struct tm_jobs *j, const char *id, struct tm_job_record *job,
                                 char *err);

/* Cancels a queued job at once and asks a running one to stop. */
enum tm_jobs_refusal tm_jobs_cancel(struct tm_jobs *j, const char *id, struct tm_job_record *job,
                                    char *err);

/* DELETE /v1/jobs/{id}: a queued or running job is cancelled as by
 * tm_jobs_cancel (TM_JOBS_CANCELLED, TM_JOBS_CANCELLING, *job set); a
 * finished one is deleted from memory and the store with all it owns
 * (TM_JOBS_DELETED), and its Idempotency-Key may then name a new job. */
enum tm_jobs_refusal tm_jobs_delete(struct tm_jobs *j, const char *id, struct tm_job_record *job,
                                    char *err);

/* Deletes every finished job whose finished_at is before `before` (Unix
 * seconds), batch by batch; *n_deleted: how many. What the sweeper runs
 * every min(retention_s / 10, 60) seconds; stops early once the sweeper is
 * stopped. Queued and running jobs are never touched. */
tm_status tm_jobs_expire(struct tm_jobs *j, double before, int64_t *n_deleted, char *err);

/* Deletes a corpus unless a queued or running job uses it (atomic with
 * respect to tm_jobs_submit). */
enum tm_jobs_refusal tm_jobs_delete_corpus(struct tm_jobs *j, const char *corpus_id, char *err);

struct tm_jobs_stats {
    int64_t queued, running; /* now */
    int workers, workers_alive;
    int draining;
};
void tm_jobs_stats(struct tm_jobs *j, struct tm_jobs_stats *out);

/*
 * Graceful stop: stops the sweeper, refuses new submissions, lets running jobs finish for up to
 * grace_s seconds, then asks them to stop and puts them back in the queue
 * (durably, without counting the attempt), and joins the workers. Queued jobs
 * stay queued in the store for the next start. Returns 0 when every worker
 * stopped, -1 when one is stuck in a step that cannot be interrupted (its job
 * stays "running" in the store and is re-queued at the next start).
 */
int tm_jobs_drain(struct tm_jobs *j, double grace_s);

/* Ends the grace period of a drain in progress (or the next one) at once:
 * a second SIGTERM. */
void tm_jobs_hurry(struct tm_jobs *j);

/* Drains with no grace if needed, then frees. A worker that did not stop
 * keeps the table alive (leaked) rather than free it under its feet. */
void tm_jobs_free(struct tm_jobs *j);

/* A fresh random id: prefix then 24 hex digits ("j_5f0c..."). */
void tm_id_generate(const char *prefix, char out[TM_ID_SIZE]);

#endif
