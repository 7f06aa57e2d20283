/*
 * store.h - where corpora, job specs, job states and results live durably:
 * an interface (a struct of function pointers plus an opaque context, as
 * SQLite's sqlite3_mem_methods) with two drivers, the embedded SQLite one
 * (store_sqlite.c, the default) and PostgreSQL (store_pg.c) for several
 * replicas, chosen by tm_store_open from --store.
 *
 * Corpora are written in steps so an upload streams into the store: create
 * (the corpus is "uploading" and invisible), append batches (each its own
 * transaction, so a 200 MB upload holds one batch in memory), then commit.
 * An upload that dies half-way is deleted by abort, or by a later open.
 * Records are the plain structs of api/responses.h.
 *
 * The job queue is the store's: every process on a store (every replica on
 * one PostgreSQL) takes its jobs from it. A worker claims the next job with
 * one short transaction (FIFO within a client, round-robin across clients:
 * the client that least recently had a job start goes first), which makes
 * the job running under a claim (struct tm_job_claim: the job, its attempt,
 * the replica) with a lease. The replica renews the leases of its running
 * jobs (job_renew); a job whose lease expired (the replica died, froze or
 * lost the store) goes back to the queue (job_rescue). Every later write
 * for the job names the claim and is refused (TM_ELOST) once the job is no
 * longer running under it, so a replica that lost a job can never
 * overwrite what the new owner writes. Leases are timed by the store's
 * clock (PostgreSQL's now(); SQLite, one process, the process's).
 *
 * Both drivers keep a schema version in the store, migrate an older store
 * at open under a lock, and refuse a newer one. A SQLite data directory has
 * one process (an flock); a PostgreSQL store has any number.
 * Thread-safety: every method is thread-safe; a driver serialises
 * internally as it must.
 */
#ifndef TM_SERVER_STORE_H
#define TM_SERVER_STORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "api/responses.h"
#include "core/status.h"

/* One document to store: borrowed bytes; id may be NULL. */
struct tm_store_doc {
    const char *text;
    size_t len;
    const char *id;
    size_t id_len;
};

/* Documents loaded for a job: one pool, owned; release with tm_store_docs_release. */
struct tm_store_docs {
    int64_t n;
    char *pool;       /* texts back to back */
    int64_t *offsets; /* n + 1: text i is pool[offsets[i] .. offsets[i+1]) */
    char **ids;       /* n entries (NULL when a document has none), or NULL */
};

void tm_store_docs_release(struct tm_store_docs *d);

/* A result: the rendered JSON and the n x k document-topic weights
 * (row-major) with the documents' ids; all borrowed by job_finish. */
struct tm_store_result {
    const char *json;
    size_t json_len;
    int64_t n_documents, n_topics;
    const double *doc_topics; /* may be NULL: no per-document weights */
    /* n_documents ids (NULL entries for none), or NULL: stored with the
     * weights for documents that live in no corpus (inline in the spec). */
    char *const *doc_ids;
    /* The fitted model's file (api/model_file.h), kept with the job and
     * counted in its stored bytes; NULL: none (a vectorize-only job). */
    const unsigned char *model;
    size_t model_len;
};

/* Both drivers store a job's document-topic weights (and the documents'
 * ids, packed by tm__store_pack_ids) in chunks of this many rows, so a page
 * reads one or two chunks and `topicd store copy` moves chunks as they are. */
#define TM_STORE_DT_CHUNK 256

/* The most bytes of a job's fairness key (its client), NUL included. */
#define TM_CLIENT_SIZE 72

/* Called by job_scan for each job with its fairness key (borrowed, "" for
 * jobs stored before keys existed); non-zero stops the scan. */
typedef int (*tm_store_job_fn)(void *ctx, const struct tm_job_record *job, const char *client);

/* The bytes of a replica's id (tm_id_generate("r_")), NUL included. */
#define TM_OWNER_SIZE TM_ID_SIZE

/*
 * A worker's claim on a job, its fencing token: the job, the attempt the
 * claim made (the job's attempts right after it) and the replica that made
 * it. A write that names a claim is applied only while the job is running
 * under it (id, attempts, state and owner all match); otherwise it changes
 * nothing and returns TM_ELOST.
 */
struct tm_job_claim {
    char id[TM_ID_SIZE];
    int attempt;
    char owner[TM_OWNER_SIZE];
};

/* What job_claim took: the job as it is now (running), whether a cancel
 * was asked for it already (it was queued again with one pending), and
 * whether other queued jobs remained when it was taken (a hint: wake
 * another worker). */
struct tm_store_claimed {
    struct tm_job_record job;
    int cancel;
    int more;
};

/* One entry of job_renew: the claim (in), whether it is lost and whether a
 * cancel was asked for the job (out). */
struct tm_store_lease {
    struct tm_job_claim claim;
    int lost;
    int cancel;
};

/* One entry of job_progress: the claim and what to write (in), whether the
 * claim is lost (out). */
struct tm_store_progress {
    struct tm_job_claim claim;
    char stage[32];
    double progress;
    int lost;
};

/* The queue caps a submission is checked against (job_submit). */
struct tm_store_caps {
    int64_t max_queued;     /* queued jobs in the store */
    int64_t max_per_client; /* queued jobs of the submitting client */
};

/* job_submit's refusals. STORED_FULL: the spec (inline documents and
 * all) would take the job's tenant past its stored-bytes quota. */
enum tm_store_full {
    TM_STORE_NOT_FULL,
    TM_STORE_QUEUE_FULL,
    TM_STORE_CLIENT_FULL,
    TM_STORE_STORED_FULL
};

/*
 * The per-tenant quotas a store enforces (set_quotas); 0: none.
 * stored_bytes: what a tenant keeps in the store, counted in the store
 * (a table of use per tenant, written in the transaction that changes it):
 * the text of its committed corpora, and its jobs' specs (inline documents
 * live there), results, document-topic weights and models. A corpus's commit or
 * adoption and a job's submission that would take the tenant past it are
 * refused (TM_ETOOBIG; job_submit: TM_STORE_STORED_FULL); the check and
 * the count are one conditional write on the tenant's row, so replicas
 * committing at once are serialised there and the quota is never passed.
 * A batch of an upload in progress is refused once the tenant's use plus
 * the upload so far would pass it (an early no; uploads in progress are
 * not counted, so only the commit is exact). A job's result is counted but
 * never refused: the tenant is over until it deletes, and new uploads and
 * jobs are refused meanwhile.
 * running: jobs of one tenant running at once; job_claim skips a tenant at
 * it, so its further jobs wait queued. Claims by several processes at once
 * are serialised per fairness key (the clients row, see job_claim), which
 * is the tenant when API keys are on: exact then; when jobs of one tenant
 * have several fairness keys (auth off: addresses), concurrent claims may
 * each start one job past it.
 */
struct tm_store_quotas {
    int64_t stored_bytes;
    int64_t running;
};

/* A tenant's use (tenant_use). */
struct tm_store_use {
    int64_t stored_bytes, queued, running;
};

/* The use of the tenants with the most, for /metrics (usage_top): up to
 * TM_STORE_USAGE_TOP tenants by stored bytes and, separately, by queued
 * plus running jobs, each list with the sum of every other tenant's. */
#define TM_STORE_USAGE_TOP 10
struct tm_store_usage {
    struct {
        char tenant[TM_TENANT_SIZE];
        int64_t stored_bytes;
    } stored[TM_STORE_USAGE_TOP];
    int n_stored;
    int64_t stored_other;
    struct {
        char tenant[TM_TENANT_SIZE];
        int64_t queued, running;
    } jobs[TM_STORE_USAGE_TOP];
    int n_jobs;
    int64_t queued_other, running_other;
};

/* What a wake-up says (listen): a job may be waiting to be claimed, or a
 * cancel was asked for a running job (renew now to learn which). */
enum tm_store_wake { TM_STORE_WAKE_JOBS, TM_STORE_WAKE_CANCEL };
typedef void (*tm_store_wake_fn)(void *arg, enum tm_store_wake what);

/* API keys (keys.h): the bytes of a key's id and of its SHA-256, and of a
 * tenant's name, NUL included. */
#define TM_KEY_ID_SIZE 16
#define TM_KEY_HASH_SIZE 32

/* An API key as stored: never the key itself, only its hash. */
struct tm_key_record {
    char id[TM_KEY_ID_SIZE];
    char tenant[TM_TENANT_SIZE];
    int admin;
    unsigned char hash[TM_KEY_HASH_SIZE];
    double created_at, revoked_at, last_used_at; /* Unix seconds, 0 = never */
};

struct tm_store_methods {
    const char *name;
    void (*close)(void *ctx);
    /* A write round trip: the store is up and writable. */
    tm_status (*ping)(void *ctx, char *err);

    /* Corpora. create: a new corpus in the "uploading" state. */
    tm_status (*corpus_create)(void *ctx, const struct tm_corpus_record *c, char *err);
    /* Appends n documents after the existing ones, atomically. */
    tm_status (*corpus_append)(void *ctx, const char *id, const struct tm_store_doc *docs, size_t n,
                               char *err);
    /* Makes an uploaded corpus visible, and counts its bytes for its
     * tenant: TM_ETOOBIG (it stays uploading) when that would pass the
     * tenant's stored-bytes quota. Appends to an uncommitted corpus are
     * refused with TM_ETOOBIG once its bytes alone would. */
    tm_status (*corpus_commit)(void *ctx, const char *id, char *err);
    /* Moves the documents of the uploading corpus staging after those of the
     * committed corpus target and deletes staging, in one transaction: an
     * append becomes visible whole or not at all. Counted for target's
     * tenant: TM_ETOOBIG when that would pass its stored-bytes quota. */
    tm_status (*corpus_adopt)(void *ctx, const char *target, const char *staging, char *err);
    /* Deletes a corpus and its documents (any state). TM_ENOTFOUND. */
    tm_status (*corpus_delete)(void *ctx, const char *id, char *err);
    /* A committed corpus; TM_ENOTFOUND otherwise. */
    tm_status (*corpus_get)(void *ctx, const char *id, struct tm_corpus_record *out, char *err);
    /* Up to limit visible corpora with seq > after_seq, by seq; *n found;
     * only tenant's (NULL: every tenant's). */
    tm_status (*corpus_list)(void *ctx, const char *tenant, int64_t after_seq, int limit,
                             struct tm_corpus_record *out, int *n, char *err);
    /* All documents of a committed corpus, in order. out initialised here. */
    tm_status (*corpus_load)(void *ctx, const char *id, struct tm_store_docs *out, char *err);
    /* Documents [offset, offset + n) of a committed corpus: their ids into
     * ids (NULL entries when none) and their texts into texts, each array
     * of n entries or NULL when not wanted (the text is not read then);
     * entries past the corpus's end stay NULL. Every entry owned, tm_free
     * each (all NULL after a failure). TM_ENOTFOUND: no such corpus. */
    tm_status (*corpus_docs_page)(void *ctx, const char *id, int64_t offset, int64_t n, char **ids,
                                  char **texts, char *err);

    /* Jobs. insert: a new job as the record says (queued, for the queue);
     * job->seq is set. idem_key NULL or a key: TM_EBUSY when the key exists
     * already (a unique index decides, so two replicas racing one key make
     * one job). client: the fairness key (shorter than TM_CLIENT_SIZE). */
    tm_status (*job_insert)(void *ctx, struct tm_job_record *job, const char *spec, size_t spec_len,
                            const char *idem_key, const char *client, char *err);
    /* job_insert of a queued job, refused (*full set, TM_EBUSY) when the
     * store holds caps->max_queued queued jobs, or caps->max_per_client of
     * client's, or when the spec's bytes would pass the tenant's
     * stored-bytes quota (err says its use); the counts are read in the
     * insert's transaction, so
     * replicas submitting at once may overshoot a cap by one job each. A
     * successful submission wakes the listeners. *full: TM_STORE_NOT_FULL
     * unless refused for a cap; an idempotency key in use is TM_EBUSY with
     * *full TM_STORE_NOT_FULL. */
    tm_status (*job_submit)(void *ctx, struct tm_job_record *job, const char *spec, size_t spec_len,
                            const char *idem_key, const char *client,
                            const struct tm_store_caps *caps, enum tm_store_full *full, char *err);
    /* The job an idempotency key names, with its spec (*spec owned, tm_free). */
    tm_status (*job_by_idem)(void *ctx, const char *idem_key, struct tm_job_record *out,
                             char **spec, size_t *spec_len, char *err);
    /* Writes the record's state, stage, progress, attempts, times and error.
     * claim NULL: whatever the job's state (tools, tests); TM_ENOTFOUND.
     * claim set (a worker): only while the job runs under the claim, else
     * TM_ELOST; a state other than running ends the claim (and a queued
     * one wakes the listeners). */
    tm_status (*job_update)(void *ctx, const struct tm_job_claim *claim,
                            const struct tm_job_record *job, char *err);
    /* job_update and the result, in one transaction. */
    tm_status (*job_finish)(void *ctx, const struct tm_job_claim *claim,
                            const struct tm_job_record *job, const struct tm_store_result *result,
                            char *err);
    tm_status (*job_get)(void *ctx, const char *id, struct tm_job_record *out, char *err);
    /* The spec, owned (tm_free). */
    tm_status (*job_spec)(void *ctx, const char *id, char **spec, size_t *len, char *err);
    /* The result JSON, owned (tm_free); TM_ENOTFOUND without one. */
    tm_status (*job_result)(void *ctx, const char *id, char **json, size_t *len, char *err);
    /* The model file job_finish kept, owned (tm_free); TM_ENOTFOUND without
     * the job or a model. */
    tm_status (*job_model)(void *ctx, const char *id, char **bytes, size_t *len, char *err);
    /* Rows [offset, offset + limit) of the document-topic weights: *weights
     * owned (tm_free), *n rows of *k; *n_documents the total. *ids: NULL when
     * the job stored no ids, else *n entries (NULL for none), each and the
     * array owned (tm_free). */
    tm_status (*job_doc_topics)(void *ctx, const char *id, int64_t offset, int64_t limit,
                                double **weights, char ***ids, int64_t *n, int64_t *k,
                                int64_t *n_documents, char *err);
    /* Up to limit jobs with seq > after_seq (state -1: any), by seq; only
     * tenant's (NULL: every tenant's). */
    tm_status (*job_list)(void *ctx, const char *tenant, int state, int64_t after_seq, int limit,
                          struct tm_job_record *out, int *n, char *err);
    /* Every job in state, by seq. */
    tm_status (*job_scan)(void *ctx, enum tm_job_state state, tm_store_job_fn fn, void *fn_ctx,
                          char *err);
    /* Number of queued or running jobs on the corpus. */
    tm_status (*corpus_jobs_active)(void *ctx, const char *id, int64_t *n, char *err);

    /* Deletes a finished job with all it owns: its spec (inline documents
     * live there, never in a corpus of their own), result and document-topic
     * weights. Its Idempotency-Key goes with it, so the key may be used again
     * for a new job. A corpus the job named is left alone. TM_ENOTFOUND;
     * TM_EBUSY while the job is queued or running. */
    tm_status (*job_delete)(void *ctx, const char *id, char *err);
    /* Deletes, as job_delete does and in one transaction, up to limit
     * finished jobs whose finished_at is before `before` (Unix seconds);
     * *n: how many. Queued and running jobs are never touched. Callers loop
     * while *n == limit: a small limit keeps the write lock short. Also
     * forgets the clients with nothing queued or running (job_claim counts
     * them as never served again). */
    tm_status (*job_expire)(void *ctx, double before, int limit, int64_t *n, char *err);

    /* The queue. claim: takes the next queued job (the oldest of the client
     * whose last job started least recently; a client the store has not
     * seen, or has forgotten, first; a tenant at its running quota
     * skipped) and makes it running under owner:
     * attempts + 1, started_at, stage "", progress 0, a lease of lease_s
     * seconds. One short transaction; claims by several processes at once
     * each take a different job. TM_ENOTFOUND: nothing is queued. */
    tm_status (*job_claim)(void *ctx, const char *owner, double started_at, double lease_s,
                           struct tm_store_claimed *out, char *err);
    /* Renews, in one statement, the leases of n claims of one owner to
     * lease_s seconds from now; l[i].lost: the job no longer runs under
     * l[i].claim, l[i].cancel: a cancel was asked for it. Only the claims
     * named are renewed: a job the owner claimed and no worker of its runs
     * (the claim's answer was lost) keeps its lease to expiry. */
    tm_status (*job_renew)(void *ctx, struct tm_store_lease *l, int n, double lease_s, char *err);
    /* Writes stage and progress of n running jobs, each under its claim
     * (p[i].lost set when it is lost), in one transaction. */
    tm_status (*job_progress)(void *ctx, struct tm_store_progress *p, int n, char *err);
    /* Ends the claims whose lease expired, up to limit jobs: a job that
     * was asked to cancel is cancelled, one started max_attempts times
     * fails with worker_crashed, the others are queued again as they were
     * (their attempt counted; listeners woken). fn (may be NULL) is called
     * for each after the store is released, with the job as it is now; *n
     * how many. Processes running this at once each take other jobs. */
    tm_status (*job_rescue)(void *ctx, int max_attempts, double now, int limit, tm_store_job_fn fn,
                            void *fn_ctx, int64_t *n, char *err);
    /* Cancels job id in one statement: a queued one at once (cancelled,
     * finished_at now, *applied 1); a running one is marked so that its
     * owner learns it at its next renewal (listeners woken, *applied 1); a
     * finished one is left alone (*applied 0). *out: the job after.
     * TM_ENOTFOUND. */
    tm_status (*job_cancel)(void *ctx, const char *id, double now, struct tm_job_record *out,
                            int *applied, char *err);
    /* Queued jobs in the store. */
    tm_status (*job_count_queued)(void *ctx, int64_t *n, char *err);
    /* Calls fn(arg, what) from a thread of the driver's own (or the one that
     * committed) when a job may have become claimable or a cancel was asked,
     * by this process or another; never while a store method of the caller's
     * waits. A hint, which may come late or be lost (PostgreSQL: a NOTIFY):
     * callers poll too. unlisten returns once no call of arg's runs. */
    tm_status (*listen)(void *ctx, tm_store_wake_fn fn, void *arg, char *err);
    void (*unlisten)(void *ctx, void *arg);

    /* API keys (keys.h). create: TM_EBUSY when the id exists. get: the key
     * with its hash, revoked or not; TM_ENOTFOUND. list: up to limit keys,
     * revoked ones too, oldest first. revoke: sets revoked_at (once);
     * TM_ENOTFOUND. count: keys not revoked. touch: last_used_at. */
    tm_status (*key_create)(void *ctx, const struct tm_key_record *k, char *err);
    tm_status (*key_get)(void *ctx, const char *id, struct tm_key_record *out, char *err);
    tm_status (*key_list)(void *ctx, struct tm_key_record *out, int limit, int *n, char *err);
    tm_status (*key_revoke)(void *ctx, const char *id, double now, char *err);
    tm_status (*key_count)(void *ctx, int64_t *n, char *err);
    tm_status (*key_touch)(void *ctx, const char *id, double now, char *err);

    /* Quotas (struct tm_store_quotas). set_quotas: the quotas from now on,
     * copied (a store starts with none); a write or claim in progress at
     * the time uses the ones it read. tenant_use: one tenant's use (stored bytes as counted, queued
     * and running jobs); a tenant never seen has none. usage_top: *out
     * filled (see struct tm_store_usage), two reads of indexed tables. */
    void (*set_quotas)(void *ctx, const struct tm_store_quotas *q);
    tm_status (*tenant_use)(void *ctx, const char *tenant, struct tm_store_use *out, char *err);
    tm_status (*usage_top)(void *ctx, struct tm_store_usage *out, char *err);
    /* The server's signing secret named name (session.h): when the store
     * holds none, fresh (TM_STORE_SECRET_SIZE bytes) is stored under it,
     * unless another process stored one first; out gets what the store then
     * holds, so every replica of a store signs with the same secret. */
    tm_status (*secret)(void *ctx, const char *name, const unsigned char *fresh, unsigned char *out,
                        char *err);
};

/* The bytes of a stored secret. */
#define TM_STORE_SECRET_SIZE 32

/* The schema version this binary writes. Both drivers keep the version of
 * a store in the store itself (SQLite: PRAGMA user_version; PostgreSQL: the
 * table topicd_schema) and migrate an older store when they open it. */
#define TM_STORE_SCHEMA_VERSION 6

/* The bytes of a redacted store target, NUL included. */
#define TM_STORE_TARGET_SIZE 512

struct tm_store {
    const struct tm_store_methods *m;
    void *ctx;
    /* Where the store lives, for logs and /v1/info: the data directory, or
     * "host=... port=... dbname=... user=..." for PostgreSQL. Never holds a
     * password. */
    char target[TM_STORE_TARGET_SIZE];
};

/* The driver a --store value names (tm_store_parse). */
enum tm_store_driver { TM_STORE_SQLITE, TM_STORE_PG };

/*
 * Reads a --store value: NULL or "" is the SQLite store in the data
 * directory; "postgresql://...", "postgres://..." or a libpq conninfo string
 * ("host=... dbname=...") is PostgreSQL; anything else is TM_EINVAL with a
 * message saying what is accepted. *has_password (may be NULL): 1 when the
 * value itself holds a password. target (may be NULL, TM_STORE_TARGET_SIZE
 * bytes): the redacted target the value names, data_dir for SQLite.
 * Messages never quote a password.
 */
tm_status tm_store_parse(const char *url_or_null, const char *data_dir,
                         enum tm_store_driver *driver, int *has_password, char *target, char *err);

/* "sqlite" or "postgresql". */
const char *tm_store_driver_name(enum tm_store_driver driver);

/*
 * Opens the store --store names (tm_store_parse): SQLite in data_dir, or
 * PostgreSQL. The PostgreSQL password comes from where libpq looks
 * (PGPASSWORD, PGPASSFILE, ~/.pgpass, the URL) or, when the variable
 * TOPICD_STORE_PASSWORD_FILE names a file, from that file (its first line;
 * it wins over the others). s filled here; close with tm_store_close.
 * Errors: TM_EINVAL (a bad value), TM_EBUSY (another process has the SQLite
 * data directory), TM_EIO (unreachable, or a schema newer than this
 * binary), TM_ENOMEM. Messages never hold a password.
 */
tm_status tm_store_open(struct tm_store *s, const char *url_or_null, const char *data_dir,
                        char *err);

/*
 * The SQLite driver: dir/topicd.db in WAL mode (dir is created if missing).
 * Takes dir/topicd.lock (flock, holding the pid) for the store's life: a
 * second process on the same dir gets TM_EBUSY naming the dir and the pid.
 * Being the one process, it deletes corpora left "uploading" and expires
 * the leases of jobs left running by a previous process. s filled here;
 * close with tm_store_close.
 */
tm_status tm_store_open_sqlite(struct tm_store *s, const char *dir, char *err);

/*
 * The PostgreSQL driver (store_pg.c) on a libpq conninfo string or URL.
 * password: NULL, or one that overrides the URL's and libpq's own sources.
 * Migrates the schema (in the connection's current schema, the first of its
 * search_path); any number of processes share the store. Deletes corpora
 * left "uploading" with no batch for TM_STORE_UPLOAD_IDLE_S seconds (an
 * upload in progress may belong to another replica). s filled here; close
 * with tm_store_close.
 */
tm_status tm_store_open_pg(struct tm_store *s, const char *conninfo, const char *password,
                           char *err);

/* An upload with no batch for this long is dead: a later PostgreSQL open
 * deletes it (HTTP connections idle for --connection-timeout are closed
 * long before). */
#define TM_STORE_UPLOAD_IDLE_S 3600

/* NULL-safe on a zeroed store. */
void tm_store_close(struct tm_store *s);

/* For the drivers: the ids of rows as one blob (per row a flag byte, 1 when
 * the row has an id, the id, NUL; ids never hold NUL, api/corpus.h rejects
 * it). *out owned (tm_free). */
tm_status tm__store_pack_ids(char *const *ids, int64_t rows, char **out, size_t *len, char *err);
/* The inverse, into ids[0 .. rows) (entries owned, tm_free; NULL for none). */
tm_status tm__store_unpack_ids(const char *b, size_t len, char **ids, int64_t rows, char *err);

/* For the drivers: the callbacks listen registered. lock is held while
 * one runs, so that remove returns once none of its runs. */
#define TM__STORE_MAX_LISTENERS 16
struct tm__store_listeners {
    pthread_mutex_t lock;
    struct {
        tm_store_wake_fn fn;
        void *arg;
    } l[TM__STORE_MAX_LISTENERS];
    int n;
};
void tm__store_listeners_init(struct tm__store_listeners *ls);
void tm__store_listeners_release(struct tm__store_listeners *ls);
/* TM_ENOMEM when TM__STORE_MAX_LISTENERS are registered. */
tm_status tm__store_listeners_add(struct tm__store_listeners *ls, tm_store_wake_fn fn, void *arg,
                                  char *err);
void tm__store_listeners_remove(struct tm__store_listeners *ls, void *arg);
/* Calls every listener with what; the caller holds no lock of the store's. */
void tm__store_listeners_wake(struct tm__store_listeners *ls, enum tm_store_wake what);

#endif
