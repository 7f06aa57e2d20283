/*
 * jobs.h - the worker pool of one replica over the store's job queue
 * (libuv's uv_queue_work: HTTP threads submit, workers compute, results are
 * published through the store).
 *
 * The queue is the store's (store.h), shared by every replica on it: a
 * submission is answered 202 only once committed there, any replica
 * answers any poll from it, and an idle worker claims the next job with one
 * short transaction. The queue is fair: each job has a fairness key, its
 * client, and a claim takes the oldest queued job of the client that least
 * recently had a job start (round-robin across clients, FIFO within a
 * client), across the whole fleet, so one client's 500 jobs do not starve
 * the others.
 * A job goes queued -> running -> succeeded | failed | cancelled. A claim
 * makes it running under this replica (its id, random, made at start) with
 * a lease of lease_s seconds that a thread of the replica's renews every
 * lease_s / 3 whatever the job does (a full SVD reports nothing for
 * minutes), along with the stage and progress (at most once a second).
 * Every later write for the job is fenced by the claim: once the lease has
 * expired and the job was handed on, the replica's writes are refused and
 * its worker stops. Every replica hands back the jobs whose lease expired
 * (a replica killed, frozen or cut off): queued again, or failed with
 * worker_crashed once started max_attempts times. At start-up only expired
 * leases are touched, never a live replica's jobs.
 * Idle workers wait for the store's wake-ups (listen), with a slow poll as
 * the backstop.
 * Finished jobs are kept retention_s seconds after they finish, then a
 * sweeper thread deletes them (in batches of TM_JOBS_EXPIRE_BATCH, so the
 * store's write lock is never held long); DELETE deletes one at once.
 * The work itself is a callback (server/worker.c runs the real pipeline;
 * tests plug in a fake), given a tm_progress that records stage and progress
 * and returns non-zero once the job is cancelled, lost, or the server is
 * stopping.
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
    char **doc_ids;       /* taken: n_documents ids (entries may be NULL), or NULL */
    unsigned char *model; /* taken: the model file (api/model_file.h), or NULL */
    size_t model_len;
};

typedef void (*tm_job_work_fn)(void *ctx, const struct tm_job_run *run, struct tm_job_outcome *out);

struct tm_jobs_config {
    int workers;      /* >= 1 */
    int max_queue;    /* queued jobs in the store before submissions are refused */
    int max_attempts; /* runs interrupted by crashes before a job fails */
    int recent_jobs;  /* unused: polls read the store (kept for old callers) */
    int worker_nice;  /* added to the workers' nice value (0: none) */
    tm_job_work_fn work;
    void *work_ctx; /* borrowed */
    /* Queued jobs of one client before its submissions are refused; 0 (or
     * more than max_queue): max_queue. With API keys the client is the
     * tenant: this is the tenant's queued-jobs quota. */
    int max_queue_per_client;
    /* A claim's lease in seconds (0: TM_JOBS_LEASE_S): renewed every third
     * of it; a replica silent for that long loses its jobs. */
    double lease_s;
    /* How often an idle worker looks at the queue without a wake-up, in
     * seconds, jittered by a fifth (0: TM_JOBS_POLL_S). */
    double poll_s;
    /* The store's per-tenant quotas (store.h's struct tm_store_quotas, 0:
     * none), set on the store by tm_jobs_new. */
    int64_t quota_stored_bytes;
    int quota_running;
};

#define TM_JOBS_LEASE_S 30.0
#define TM_JOBS_POLL_S 5.0

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
    TM_JOBS_CHANGING,     /* delete: its cancellation is being written; 409, retry */
    TM_JOBS_QUOTA_QUEUED, /* the client's (tenant's) queued-jobs quota: 429 */
    TM_JOBS_QUOTA_STORED  /* the spec would pass the tenant's stored-bytes quota: 413 */
};

struct tm_jobs;

/*
 * Makes the replica's id, hands back the jobs whose lease expired (see
 * above) and starts the workers and the lease thread. store, config:
 * borrowed; store must outlive the table. *out owned, freed with
 * tm_jobs_free.
 */
tm_status tm_jobs_new(struct tm_jobs **out, struct tm_store *store,
                      const struct tm_jobs_config *config, char *err);

/* Keeps finished jobs retention_s seconds after they finish: starts the
 * sweeper thread, which tm_jobs_drain and tm_jobs_free stop. Call once,
 * after tm_jobs_new. retention_s 0: jobs are kept forever, no thread. */
tm_status tm_jobs_start_retention(struct tm_jobs *j, int64_t retention_s, char *err);

/* The replica's id ("r_" and 24 hex digits), the owner of its claims. */
const char *tm_jobs_replica(const struct tm_jobs *j);

/* A new job on corpus_id (must exist, committed) with its spec (stored as
 * given: the idempotency comparison is on these bytes). method: for metrics
 * and listings. idem_key: NULL or the Idempotency-Key (the same key sent
 * through two replicas at once makes one job). client: the fairness key,
 * shorter than TM_CLIENT_SIZE (NULL: ""). tenant: the job's owner (NULL or
 * "": "default"). TM_JOBS_QUEUE_FULL when the store's queue is full,
 * TM_JOBS_QUOTA_QUEUED when this client's share of it is (both checked in
 * the insert's transaction), TM_JOBS_QUOTA_STORED when the spec's bytes
 * would take the tenant past its stored-bytes quota. *job: the record. */
enum tm_jobs_refusal tm_jobs_submit(struct tm_jobs *j, const char *corpus_id, const char *spec,
                                    size_t spec_len, const char *method, const char *idem_key,
                                    const char *client, const char *tenant,
                                    struct tm_job_record *job, char *err);

/* The record of job id, from the store (with the live progress when this
 * replica runs it): TM_JOBS_ACCEPTED, TM_JOBS_NOT_FOUND or a store error. */
enum tm_jobs_refusal tm_jobs_get(struct tm_jobs *j, const char *id, struct tm_job_record *job,
                                 char *err);

/* Cancels a queued job at once and asks a running one to stop, wherever it
 * runs: its replica learns it at its next renewal (at once on a wake-up). */
enum tm_jobs_refusal tm_jobs_cancel(struct tm_jobs *j, const char *id, struct tm_job_record *job,
                                    char *err);

/* DELETE /v1/jobs/{id}: a queued or running job is cancelled as by
 * tm_jobs_cancel (TM_JOBS_CANCELLED, TM_JOBS_CANCELLING, *job set); a
 * finished one is deleted from the store with all it owns
 * (TM_JOBS_DELETED), and its Idempotency-Key may then name a new job. */
enum tm_jobs_refusal tm_jobs_delete(struct tm_jobs *j, const char *id, struct tm_job_record *job,
                                    char *err);

/* Deletes every finished job whose finished_at is before `before` (Unix
 * seconds), batch by batch; *n_deleted: how many. What the sweeper runs
 * every min(retention_s / 10, 60) seconds; stops early once the sweeper is
 * stopped. Queued and running jobs are never touched. */
tm_status tm_jobs_expire(struct tm_jobs *j, double before, int64_t *n_deleted, char *err);

/* Deletes a corpus unless a queued or running job uses it (atomic with
 * respect to tm_jobs_submit in this process). */
enum tm_jobs_refusal tm_jobs_delete_corpus(struct tm_jobs *j, const char *corpus_id, char *err);

struct tm_jobs_stats {
    int64_t queued;  /* in the store (every replica's), the last count read */
    int64_t running; /* on this replica */
    int workers, workers_alive;
    int draining;
};
void tm_jobs_stats(struct tm_jobs *j, struct tm_jobs_stats *out);

/*
 * Graceful stop: stops the sweeper, refuses new submissions, claims no new
 * job, lets running jobs finish for up to grace_s seconds, then asks them
 * to stop and puts them back in the queue (durably, fenced, without
 * counting the attempt), and joins the workers. Queued jobs stay queued in
 * the store for the other replicas or the next start. Returns 0 when every
 * worker stopped, -1 when one is stuck in a step that cannot be interrupted
 * (its job stays "running" in the store, leased until the process is gone,
 * then handed back).
 */
int tm_jobs_drain(struct tm_jobs *j, double grace_s);

/* Ends the grace period of a drain in progress (or the next one) at once:
 * a second SIGTERM. */
void tm_jobs_hurry(struct tm_jobs *j);

/* Drains with no grace if needed, then frees. A worker that did not stop
 * keeps the table alive (leaked) rather than free it under its feet. */
void tm_jobs_free(struct tm_jobs *j);

/* For tests: frozen 1 stops the lease thread's work (no progress written,
 * no renewal, no rescue), as a replica frozen or cut off from the store
 * would; 0 resumes it. */
void tm__jobs_freeze_leases(struct tm_jobs *j, int frozen);

/* A fresh random id: prefix then 24 hex digits ("j_5f0c..."). */
void tm_id_generate(const char *prefix, char out[TM_ID_SIZE]);

#endif
