/*
 * store.h - where corpora, job specs, job states and results live durably:
 * an interface (a struct of function pointers plus an opaque context, as
 * SQLite's sqlite3_mem_methods) so that a PostgreSQL driver for several
 * replicas can follow the embedded SQLite one (store_sqlite.c).
 *
 * Corpora are written in steps so an upload streams into the store: create
 * (the corpus is "uploading" and invisible), append batches (each its own
 * transaction, so a 200 MB upload holds one batch in memory), then commit.
 * An upload that dies half-way is deleted by abort, or by the next open.
 * Records are the plain structs of api/responses.h.
 *
 * Two drivers: the embedded SQLite one (store_sqlite.c, the default) and
 * PostgreSQL (store_pg.c), chosen by tm_store_open from --store. Both keep
 * a schema version in the store, migrate an older store at open under a
 * lock, and refuse a newer one. Until jobs are claimed with leases (issue
 * #14's next step), a store has one owner: the process that opened it;
 * another open of the same store is refused (TM_EBUSY) for the owner's life.
 * Thread-safety: every method is thread-safe; a driver serialises
 * internally as it must.
 */
#ifndef TM_SERVER_STORE_H
#define TM_SERVER_STORE_H

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
    /* Makes an uploaded corpus visible. */
    tm_status (*corpus_commit)(void *ctx, const char *id, char *err);
    /* Moves the documents of the uploading corpus staging after those of the
     * committed corpus target and deletes staging, in one transaction: an
     * append becomes visible whole or not at all. */
    tm_status (*corpus_adopt)(void *ctx, const char *target, const char *staging, char *err);
    /* Deletes a corpus and its documents (any state). TM_ENOTFOUND. */
    tm_status (*corpus_delete)(void *ctx, const char *id, char *err);
    /* A committed corpus; TM_ENOTFOUND otherwise. */
    tm_status (*corpus_get)(void *ctx, const char *id, struct tm_corpus_record *out, char *err);
    /* Up to limit visible corpora with seq > after_seq, by seq; *n found. */
    tm_status (*corpus_list)(void *ctx, int64_t after_seq, int limit, struct tm_corpus_record *out,
                             int *n, char *err);
    /* All documents of a committed corpus, in order. out initialised here. */
    tm_status (*corpus_load)(void *ctx, const char *id, struct tm_store_docs *out, char *err);
    /* ids of documents [offset, offset + n) (NULL entries when none): for
     * document-topics pages. ids[i] owned, tm_free each. */
    tm_status (*corpus_doc_ids)(void *ctx, const char *id, int64_t offset, int64_t n, char **ids,
                                char *err);

    /* Jobs. insert: a new queued job; job->seq is set. idem_key NULL or a
     * key: TM_EBUSY when the key exists already. client: the fairness key
     * (shorter than TM_CLIENT_SIZE), kept so that recovery queues the job
     * under the same client. */
    tm_status (*job_insert)(void *ctx, struct tm_job_record *job, const char *spec, size_t spec_len,
                            const char *idem_key, const char *client, char *err);
    /* The job an idempotency key names, with its spec (*spec owned, tm_free). */
    tm_status (*job_by_idem)(void *ctx, const char *idem_key, struct tm_job_record *out,
                             char **spec, size_t *spec_len, char *err);
    /* Writes the record's state, stage, progress, attempts, times and error. */
    tm_status (*job_update)(void *ctx, const struct tm_job_record *job, char *err);
    /* job_update and the result, in one transaction. */
    tm_status (*job_finish)(void *ctx, const struct tm_job_record *job,
                            const struct tm_store_result *result, char *err);
    tm_status (*job_get)(void *ctx, const char *id, struct tm_job_record *out, char *err);
    /* The spec, owned (tm_free). */
    tm_status (*job_spec)(void *ctx, const char *id, char **spec, size_t *len, char *err);
    /* The result JSON, owned (tm_free); TM_ENOTFOUND without one. */
    tm_status (*job_result)(void *ctx, const char *id, char **json, size_t *len, char *err);
    /* Rows [offset, offset + limit) of the document-topic weights: *weights
     * owned (tm_free), *n rows of *k; *n_documents the total. *ids: NULL when
     * the job stored no ids, else *n entries (NULL for none), each and the
     * array owned (tm_free). */
    tm_status (*job_doc_topics)(void *ctx, const char *id, int64_t offset, int64_t limit,
                                double **weights, char ***ids, int64_t *n, int64_t *k,
                                int64_t *n_documents, char *err);
    /* Up to limit jobs with seq > after_seq (state -1: any), by seq. */
    tm_status (*job_list)(void *ctx, int state, int64_t after_seq, int limit,
                          struct tm_job_record *out, int *n, char *err);
    /* Every job in state, by seq (crash recovery). */
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
     * while *n == limit: a small limit keeps the write lock short. */
    tm_status (*job_expire)(void *ctx, double before, int limit, int64_t *n, char *err);
};

/* The schema version this binary writes. Both drivers keep the version of
 * a store in the store itself (SQLite: PRAGMA user_version; PostgreSQL: the
 * table topicd_schema) and migrate an older store when they open it. */
#define TM_STORE_SCHEMA_VERSION 1

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
 * Errors: TM_EINVAL (a bad value), TM_EBUSY (another process owns the
 * store), TM_EIO (unreachable, or a schema newer than this binary),
 * TM_ENOMEM. Messages never hold a password.
 */
tm_status tm_store_open(struct tm_store *s, const char *url_or_null, const char *data_dir,
                        char *err);

/*
 * The SQLite driver: dir/topicd.db in WAL mode (dir is created if missing).
 * Takes dir/topicd.lock (flock, holding the pid) for the store's life: a
 * second process on the same dir gets TM_EBUSY naming the dir and the pid.
 * Deletes corpora left "uploading" by a previous process. s filled here;
 * close with tm_store_close.
 */
tm_status tm_store_open_sqlite(struct tm_store *s, const char *dir, char *err);

/*
 * The PostgreSQL driver (store_pg.c) on a libpq conninfo string or URL.
 * password: NULL, or one that overrides the URL's and libpq's own sources.
 * Migrates the schema (in the connection's current schema, the first of its
 * search_path), then takes the store's ownership lock: another process on
 * the same database and schema gets TM_EBUSY. Deletes corpora left
 * "uploading". s filled here; close with tm_store_close.
 */
tm_status tm_store_open_pg(struct tm_store *s, const char *conninfo, const char *password,
                           char *err);

/* NULL-safe on a zeroed store. */
void tm_store_close(struct tm_store *s);

/* For the drivers: the ids of rows as one blob (per row a flag byte, 1 when
 * the row has an id, the id, NUL; ids never hold NUL, api/corpus.h rejects
 * it). *out owned (tm_free). */
tm_status tm__store_pack_ids(char *const *ids, int64_t rows, char **out, size_t *len, char *err);
/* The inverse, into ids[0 .. rows) (entries owned, tm_free; NULL for none). */
tm_status tm__store_unpack_ids(const char *b, size_t len, char **ids, int64_t rows, char *err);

#endif
