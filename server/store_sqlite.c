/*
 * store_sqlite.c - the embedded store: SQLite in WAL mode in --data-dir.
 *
 * Two connections: one writer and one reader, each behind its own mutex, so
 * that loading a large corpus for a job never waits for an upload's batch and
 * the reverse (WAL lets one writer and readers run at once). synchronous=FULL
 * because a job answered with 202 must survive a power cut as well as kill -9.
 * Documents are rows (corpus, position, id, text) so an upload appends in
 * batches and a job reads them back in order with one scan. Document-topic
 * weights are stored as blobs of TM_STORE_DT_CHUNK rows so a page reads one
 * or two.
 * The schema version is PRAGMA user_version (0 in stores from before
 * versions: those are brought up to date by the same idempotent DDL). One
 * process owns a data directory: an flock on dir/topicd.lock, held while the
 * store is open, keeps a second one out. So the queue's claims, leases and
 * fences (store.h) serve the process's own workers here, and its clock times
 * the leases; at open every lease left by a previous process has expired.
 * Wake-ups (listen) are calls from the committing thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "metrics.h"
#include "store.h"

#define TM_DT_CHUNK TM_STORE_DT_CHUNK

struct sq {
    sqlite3 *w, *r;
    pthread_mutex_t wlock, rlock;
    /* job_get's statement on r, prepared once (under rlock): a status poll
     * is this one read, and preparing it each time took most of the poll's
     * store time (bench/NOTES.md, "Claims and leases"). */
    sqlite3_stmt *get_job;
    int lock_fd; /* dir/topicd.lock, flock'ed; -1 when not open */
    struct tm__store_listeners listeners;
    /* store.h's quotas (0: none): set_quotas may run while workers claim
     * (tm_jobs_new of a second replica on one store), hence atomics. */
    atomic_llong quota_stored, quota_running;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS corpora("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,"
    " ready INTEGER NOT NULL, hidden INTEGER NOT NULL, n_documents INTEGER NOT NULL,"
    " bytes INTEGER NOT NULL, created_at REAL NOT NULL);"
    "CREATE TABLE IF NOT EXISTS documents("
    " corpus_seq INTEGER NOT NULL, pos INTEGER NOT NULL, doc_id TEXT, text BLOB NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS documents_pos ON documents(corpus_seq, pos);"
    "CREATE TABLE IF NOT EXISTS jobs("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, corpus_id TEXT NOT NULL,"
    " spec BLOB NOT NULL, idem_key TEXT UNIQUE, state INTEGER NOT NULL, stage TEXT NOT NULL,"
    " progress REAL NOT NULL, attempts INTEGER NOT NULL, created_at REAL NOT NULL,"
    " started_at REAL NOT NULL, finished_at REAL NOT NULL, method TEXT NOT NULL,"
    " error_code TEXT NOT NULL, error_message TEXT NOT NULL, result BLOB,"
    " n_documents INTEGER NOT NULL DEFAULT 0, n_topics INTEGER NOT NULL DEFAULT 0,"
    " client TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);"
    "CREATE INDEX IF NOT EXISTS jobs_corpus ON jobs(corpus_id, state);"
    /* Finished jobs by age, for job_expire. IF NOT EXISTS adds it to stores
     * made before retention too: the columns were there from the start. */
    "CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(state, finished_at);"
    "CREATE TABLE IF NOT EXISTS doc_topics("
    " job_seq INTEGER NOT NULL, chunk INTEGER NOT NULL, weights BLOB NOT NULL, ids BLOB,"
    " PRIMARY KEY(job_seq, chunk));";

/* Version 2: the queue's claims. A running job's owner (the replica's id)
 * and lease (Unix seconds); a cancel asked while it runs; per client, the
 * tick of the last job that started (absent: never, or forgotten). */
static const char schema_v2[] = "ALTER TABLE jobs ADD COLUMN owner TEXT;"
                                "ALTER TABLE jobs ADD COLUMN lease_until REAL NOT NULL DEFAULT 0;"
                                "ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL"
                                " DEFAULT 0;"
                                "CREATE TABLE clients(client TEXT PRIMARY KEY,"
                                " last_served INTEGER NOT NULL);";

/* Version 3: tenants and API keys (keys.h). What was stored before belongs
 * to the tenant "default". A key's hash is its SHA-256, never the key. */
static const char schema_v3[] =
    "ALTER TABLE corpora ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';"
    "ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';"
    "CREATE INDEX corpora_tenant ON corpora(tenant, seq);"
    "CREATE INDEX jobs_tenant ON jobs(tenant, seq);"
    "CREATE TABLE api_keys(id TEXT PRIMARY KEY, tenant TEXT NOT NULL, admin INTEGER NOT NULL,"
    " hash BLOB NOT NULL, created_at REAL NOT NULL, revoked_at REAL NOT NULL DEFAULT 0,"
    " last_used_at REAL NOT NULL DEFAULT 0);";

/* Version 4: per-tenant quotas (store.h's struct tm_store_quotas). What a
 * job keeps (spec, result, weights) in bytes, and each tenant's stored
 * bytes as counted: its committed corpora and its jobs' stored_bytes. Both
 * are computed here from what the store holds already. */
static const char schema_v4[] =
    "ALTER TABLE jobs ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;"
    "UPDATE jobs SET stored_bytes = length(spec) + coalesce(length(result), 0)"
    " + coalesce((SELECT sum(length(weights) + coalesce(length(ids), 0)) FROM doc_topics"
    " WHERE job_seq = jobs.seq), 0);"
    "CREATE TABLE tenant_usage(tenant TEXT PRIMARY KEY, stored_bytes INTEGER NOT NULL);"
    "INSERT INTO tenant_usage(tenant, stored_bytes) SELECT tenant, sum(b) FROM"
    " (SELECT tenant, bytes AS b FROM corpora WHERE ready = 1"
    " UNION ALL SELECT tenant, stored_bytes FROM jobs) GROUP BY tenant;";

/* Version 5: the server's signing secrets (session.h), one row per name. */
static const char schema_v5[] = "CREATE TABLE secrets(name TEXT PRIMARY KEY, value BLOB NOT NULL,"
                                " created_at REAL NOT NULL);";

/* Version 6: a succeeded job's model file (api/model_file.h), one row per
 * job, deleted with it and counted in its stored_bytes. */
static const char schema_v6[] = "CREATE TABLE job_models(job_seq INTEGER PRIMARY KEY,"
                                " model BLOB NOT NULL);";

/* The tenant a record to be stored names: "" is "default". */
static const char *tenant_of(const char *t)
{
    return t && *t ? t : "default";
}

/* What to do about a damaged store file (README, "A damaged store"). It
 * comes before the detail of the damage in the messages, which TM_ERR_SIZE
 * may cut. */
#define DAMAGED_HINT                                                                               \
    "restore it from a backup, save what is left with sqlite3's .dump (see the README), or move"   \
    " it aside to start empty"

static tm_status sqerr(sqlite3 *db, char *err, const char *what)
{
    int rc = sqlite3_extended_errcode(db) & 0xff;
    tm_metrics_store_error();
    /* A full disk is the client's 507 (SQLite rolls the statement back);
     * a damaged file (SQLite's "malformed", "not a database") is this
     * server's 503, said plainly, and logged where it is answered. */
    if (rc == SQLITE_FULL)
        return tm_errf(err, TM_ENOSPC,
                       "store: %s: the disk of the data directory is full: free space there and"
                       " retry",
                       what);
    if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB)
        return tm_errf(err, TM_EIO, "store: %s: the store's file is damaged: " DAMAGED_HINT " (%s)",
                       what, sqlite3_errmsg(db));
    tm_status st = rc == SQLITE_NOMEM ? TM_ENOMEM : rc == SQLITE_BUSY ? TM_EBUSY : TM_EIO;
    return tm_errf(err, st, "store: %s: %s", what, sqlite3_errmsg(db));
}

static tm_status exec(sqlite3 *db, const char *sql, char *err)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sqerr(db, err, sql);
    return TM_OK;
}

static tm_status prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return sqerr(db, err, "prepare");
    return TM_OK;
}

static void copy_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    snprintf(dst, size, "%s", s ? (const char *)s : "");
}

/* Prepares sql, whose one parameter is the text key, on db and steps it once;
 * the caller holds db's lock and finalizes *s whatever the outcome. On TM_OK,
 * *row says whether *s stands on a row (0: there is none); a failure is
 * reported in err as `what`. */
static tm_status select_by_key(sqlite3 *db, const char *sql, const char *key, const char *what,
                               sqlite3_stmt **s, int *row, char *err)
{
    *row = 0;
    tm_status st = prep(db, sql, s, err);
    if (st)
        return st;
    sqlite3_bind_text(*s, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(*s);
    if (rc == SQLITE_ROW)
        *row = 1;
    else if (rc != SQLITE_DONE)
        return sqerr(db, err, what);
    return TM_OK;
}

/* ---------------------------------------------------------------------- */

static void sq_close(void *ctx)
{
    struct sq *q = ctx;
    if (!q)
        return;
    sqlite3_finalize(q->get_job);
    sqlite3_close(q->r);
    sqlite3_close(q->w);
    if (q->lock_fd >= 0)
        close(q->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&q->wlock);
    pthread_mutex_destroy(&q->rlock);
    tm__store_listeners_release(&q->listeners);
    tm_free(q);
}

static tm_status sq_ping(void *ctx, char *err)
{
    struct sq *q = ctx;
    pthread_mutex_lock(&q->wlock);
    /* A real write round trip: BEGIN IMMEDIATE takes the write lock. */
    tm_status st = exec(q->w, "BEGIN IMMEDIATE; COMMIT;", err);
    if (st)
        sqlite3_exec(q->w, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&q->wlock);
    return st;
}

/* Ends a write transaction on q->w: COMMIT when st is TM_OK, and ROLLBACK
 * when st or the COMMIT failed. Returns the final status. */
static tm_status end_write(struct sq *q, tm_status st, char *err)
{
    if (!st)
        st = exec(q->w, "COMMIT", err);
    if (st)
        sqlite3_exec(q->w, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

/* ---------------------------------------------------------------------- */
/* Stored bytes per tenant (store.h's quotas). The caller holds wlock and a
 * write transaction on q->w, so a read and the write after it are atomic:
 * the one process's writes are serialised by the transaction. */

/* The stored bytes counted for tenant on db (0: never counted). */
static tm_status stored_of(sqlite3 *db, const char *tenant, int64_t *used, char *err)
{
    sqlite3_stmt *s = NULL;
    int row;
    *used = 0;
    tm_status st = select_by_key(db, "SELECT stored_bytes FROM tenant_usage WHERE tenant = ?",
                                 tenant, "read tenant use", &s, &row, err);
    if (!st && row)
        *used = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return st;
}

/* TM_ETOOBIG when tenant's stored bytes plus more would pass the quota
 * (a message saying so, naming what), else TM_OK. */
static tm_status check_stored(struct sq *q, const char *tenant, int64_t more, const char *what,
                              char *err)
{
    int64_t limit = atomic_load_explicit(&q->quota_stored, memory_order_relaxed), used = 0;
    if (limit <= 0 || more <= 0)
        return TM_OK;
    tm_status st = stored_of(q->w, tenant, &used, err);
    if (!st && used + more > limit)
        st = tm_errf(err, TM_ETOOBIG,
                     "tenant '%s' stores %lld bytes; %s of %lld bytes would pass its"
                     " stored-bytes quota of %lld bytes",
                     tenant, (long long)used, what, (long long)more, (long long)limit);
    return st;
}

/* Adds delta (may be negative) to tenant's stored bytes. */
static tm_status charge(struct sq *q, const char *tenant, int64_t delta, char *err)
{
    if (!delta)
        return TM_OK;
    sqlite3_stmt *s = NULL;
    tm_status st = prep(q->w,
                        "INSERT INTO tenant_usage(tenant, stored_bytes) VALUES(?1, ?2)"
                        " ON CONFLICT(tenant) DO UPDATE SET stored_bytes = stored_bytes + ?2",
                        &s, err);
    if (!st) {
        sqlite3_bind_text(s, 1, tenant, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, delta);
        if (sqlite3_step(s) != SQLITE_DONE)
            st = sqerr(q->w, err, "count stored bytes");
    }
    sqlite3_finalize(s);
    return st;
}

/* A corpus's readiness and tenant, by seq, on q->w. */
static tm_status corpus_owner(struct sq *q, int64_t seq, int *ready, char *tenant, char *err)
{
    sqlite3_stmt *s = NULL;
    tm_status st = prep(q->w, "SELECT ready, tenant FROM corpora WHERE seq = ?", &s, err);
    if (!st) {
        sqlite3_bind_int64(s, 1, seq);
        if (sqlite3_step(s) == SQLITE_ROW) {
            *ready = sqlite3_column_int(s, 0);
            copy_text(tenant, TM_TENANT_SIZE, s, 1);
        } else {
            st = sqerr(q->w, err, "find corpus");
        }
    }
    sqlite3_finalize(s);
    return st;
}

static tm_status sq_corpus_create(void *ctx, const struct tm_corpus_record *c, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    pthread_mutex_lock(&q->wlock);
    tm_status st = prep(q->w,
                        "INSERT INTO corpora(id, ready, hidden, n_documents, bytes, created_at,"
                        " tenant) VALUES(?, 0, ?, 0, 0, ?, ?)",
                        &s, err);
    if (!st) {
        sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, c->hidden);
        sqlite3_bind_double(s, 3, c->created_at);
        sqlite3_bind_text(s, 4, tenant_of(c->tenant), -1, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE)
            st = sqerr(q->w, err, "create corpus");
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->wlock);
    return st;
}

/* seq of a corpus (any state) on db; TM_ENOTFOUND. */
static tm_status corpus_seq(sqlite3 *db, const char *id, int ready_only, int64_t *seq,
                            int64_t *n_docs, int64_t *bytes, char *err)
{
    sqlite3_stmt *s = NULL;
    int row;
    tm_status st =
        select_by_key(db, "SELECT seq, ready, n_documents, bytes FROM corpora WHERE id = ?", id,
                      "find corpus", &s, &row, err);
    if (!st && row && (!ready_only || sqlite3_column_int(s, 1))) {
        *seq = sqlite3_column_int64(s, 0);
        if (n_docs)
            *n_docs = sqlite3_column_int64(s, 2);
        if (bytes)
            *bytes = sqlite3_column_int64(s, 3);
    } else if (!st) {
        st = tm_errf(err, TM_ENOTFOUND, "corpus '%s' not found", id);
    }
    sqlite3_finalize(s);
    return st;
}

static tm_status sq_corpus_append(void *ctx, const char *id, const struct tm_store_doc *docs,
                                  size_t n, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *ins = NULL, *upd = NULL;
    int64_t seq = 0, n_docs = 0, bytes = 0;
    pthread_mutex_lock(&q->wlock);
    tm_status st = exec(q->w, "BEGIN IMMEDIATE", err);
    if (st)
        goto out;
    st = corpus_seq(q->w, id, 0, &seq, &n_docs, &bytes, err);
    if (st)
        goto end;
    int64_t old_bytes = bytes;
    st = prep(q->w, "INSERT INTO documents(corpus_seq, pos, doc_id, text) VALUES(?, ?, ?, ?)", &ins,
              err);
    if (st)
        goto end;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, seq);
        sqlite3_bind_int64(ins, 2, n_docs + (int64_t)i);
        if (docs[i].id)
            sqlite3_bind_text(ins, 3, docs[i].id, (int)docs[i].id_len, SQLITE_STATIC);
        else
            sqlite3_bind_null(ins, 3);
        sqlite3_bind_blob64(ins, 4, docs[i].len ? docs[i].text : "", docs[i].len, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            st = sqerr(q->w, err, "insert document");
            goto end;
        }
        bytes += (int64_t)docs[i].len;
    }
    /* An upload in progress is not counted, only checked (an early no); a
     * committed corpus's new documents are counted at once. */
    int ready = 0;
    char tenant[TM_TENANT_SIZE];
    st = corpus_owner(q, seq, &ready, tenant, err);
    if (!st && !ready)
        st = check_stored(q, tenant, bytes, "an upload", err);
    else if (!st)
        st = charge(q, tenant, bytes - old_bytes, err);
    if (st)
        goto end;
    st = prep(q->w, "UPDATE corpora SET n_documents = ?, bytes = ? WHERE seq = ?", &upd, err);
    if (st)
        goto end;
    sqlite3_bind_int64(upd, 1, n_docs + (int64_t)n);
    sqlite3_bind_int64(upd, 2, bytes);
    sqlite3_bind_int64(upd, 3, seq);
    if (sqlite3_step(upd) != SQLITE_DONE) {
        st = sqerr(q->w, err, "update corpus");
        goto end;
    }
end:
    st = end_write(q, st, err);
out:
    sqlite3_finalize(upd);
    sqlite3_finalize(ins);
    pthread_mutex_unlock(&q->wlock);
    return st;
}

static tm_status sq_corpus_commit(void *ctx, const char *id, char *err)
{
    struct sq *q = ctx;
    int64_t seq, bytes;
    int ready = 0;
    char tenant[TM_TENANT_SIZE];
    pthread_mutex_lock(&q->wlock);
    tm_status st = exec(q->w, "BEGIN IMMEDIATE", err);
    if (st)
        goto out;
    st = corpus_seq(q->w, id, 0, &seq, NULL, &bytes, err);
    if (!st)
        st = corpus_owner(q, seq, &ready, tenant, err);
    if (st || ready) /* committed already: counted then */
        goto end;
    st = check_stored(q, tenant, bytes, "this corpus", err);
    if (!st)
        st = charge(q, tenant, bytes, err);
    if (!st) {
        char sql[80];
        snprintf(sql, sizeof(sql), "UPDATE corpora SET ready = 1 WHERE seq = %lld", (long long)seq);
        st = exec(q->w, sql, err);
    }
end:
    st = end_write(q, st, err);
out:
    pthread_mutex_unlock(&q->wlock);
    return st;
}

static tm_status sq_corpus_adopt(void *ctx, const char *target, const char *staging, char *err)
{
    struct sq *q = ctx;
    int64_t tseq, tn, tbytes, sseq, sn, sbytes;
    pthread_mutex_lock(&q->wlock);
    tm_status st = exec(q->w, "BEGIN IMMEDIATE", err);
    if (st)
        goto out;
    st = corpus_seq(q->w, target, 1, &tseq, &tn, &tbytes, err);
    if (!st)
        st = corpus_seq(q->w, staging, 0, &sseq, &sn, &sbytes, err);
    /* The documents join the target's tenant's count. */
    int ready = 0;
    char tenant[TM_TENANT_SIZE];
    if (!st)
        st = corpus_owner(q, tseq, &ready, tenant, err);
    if (!st)
        st = check_stored(q, tenant, sbytes, "this append", err);
    if (!st)
        st = charge(q, tenant, sbytes, err);
    if (st)
        goto end;
    char sql[400];
    snprintf(sql, sizeof(sql),
             "UPDATE documents SET corpus_seq = %lld, pos = pos + %lld WHERE corpus_seq = %lld;"
             "UPDATE corpora SET n_documents = %lld, bytes = %lld WHERE seq = %lld;"
             "DELETE FROM corpora WHERE seq = %lld;",
             (long long)tseq, (long long)tn, (long long)sseq, (long long)(tn + sn),
             (long long)(tbytes + sbytes), (long long)tseq, (long long)sseq);
    st = exec(q->w, sql, err);
end:
    st = end_write(q, st, err);
out:
    pthread_mutex_unlock(&q->wlock);
    return st;
}

static tm_status sq_corpus_delete(void *ctx, const char *id, char *err)
{
    struct sq *q = ctx;
    int64_t seq;
    pthread_mutex_lock(&q->wlock);
    tm_status st = exec(q->w, "BEGIN IMMEDIATE", err);
    if (st)
        goto out;
    int64_t bytes = 0;
    int ready = 0;
    char tenant[TM_TENANT_SIZE];
    st = corpus_seq(q->w, id, 0, &seq, NULL, &bytes, err);
    if (!st)
        st = corpus_owner(q, seq, &ready, tenant, err);
    if (!st && ready)
        st = charge(q, tenant, -bytes, err);
    if (st)
        goto end;
    char sql[160];
    snprintf(sql, sizeof(sql),
             "DELETE FROM documents WHERE corpus_seq = %lld;"
             "DELETE FROM corpora WHERE seq = %lld;",
             (long long)seq, (long long)seq);
    st = exec(q->w, sql, err);
end:
    st = end_write(q, st, err);
out:
    pthread_mutex_unlock(&q->wlock);
    return st;
}

static void read_corpus(sqlite3_stmt *s, struct tm_corpus_record *c)
{
    memset(c, 0, sizeof(*c));
    c->seq = sqlite3_column_int64(s, 0);
    copy_text(c->id, sizeof(c->id), s, 1);
    c->hidden = sqlite3_column_int(s, 2);
    c->n_documents = sqlite3_column_int64(s, 3);
    c->bytes = sqlite3_column_int64(s, 4);
    c->created_at = sqlite3_column_double(s, 5);
    copy_text(c->tenant, sizeof(c->tenant), s, 6);
}

#define CORPUS_COLS "seq, id, hidden, n_documents, bytes, created_at, tenant"

static tm_status sq_corpus_get(void *ctx, const char *id, struct tm_corpus_record *out, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    int row;
    pthread_mutex_lock(&q->rlock);
    tm_status st =
        select_by_key(q->r, "SELECT " CORPUS_COLS " FROM corpora WHERE id = ? AND ready = 1", id,
                      "get corpus", &s, &row, err);
    if (!st && row)
        read_corpus(s, out);
    else if (!st)
        st = tm_errf(err, TM_ENOTFOUND, "corpus '%s' not found", id);
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->rlock);
    return st;
}

static tm_status sq_corpus_list(void *ctx, const char *tenant, int64_t after_seq, int limit,
                                struct tm_corpus_record *out, int *n, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    *n = 0;
    pthread_mutex_lock(&q->rlock);
    tm_status st = prep(q->r,
                        "SELECT " CORPUS_COLS " FROM corpora WHERE ready = 1 AND hidden = 0"
                        " AND seq > ?1 AND (?3 IS NULL OR tenant = ?3) ORDER BY seq LIMIT ?2",
                        &s, err);
    if (!st) {
        sqlite3_bind_int64(s, 1, after_seq);
        sqlite3_bind_int(s, 2, limit);
        sqlite3_bind_text(s, 3, tenant, -1, SQLITE_STATIC);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < limit)
            read_corpus(s, &out[(*n)++]);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
            st = sqerr(q->r, err, "list corpora");
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->rlock);
    return st;
}

static tm_status sq_corpus_load(void *ctx, const char *id, struct tm_store_docs *out, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    int64_t seq = 0, n_docs = 0, bytes = 0, i = 0, off = 0;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&q->rlock);
    /* One read transaction so the counts and the rows agree. */
    tm_status st = exec(q->r, "BEGIN", err);
    if (st)
        goto out;
    st = corpus_seq(q->r, id, 1, &seq, &n_docs, &bytes, err);
    if (st)
        goto end;
    out->pool = tm_malloc((size_t)bytes + 1);
    out->offsets = tm_calloc((size_t)n_docs + 1, sizeof(*out->offsets));
    if (!out->pool || !out->offsets) {
        st = tm_errf(err, TM_ENOMEM, "loading corpus '%s' (%lld bytes)", id, (long long)bytes);
        goto end;
    }
    st =
        prep(q->r, "SELECT doc_id, text FROM documents WHERE corpus_seq = ? ORDER BY pos", &s, err);
    if (st)
        goto end;
    sqlite3_bind_int64(s, 1, seq);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t len = sqlite3_column_bytes(s, 1);
        if (i >= n_docs || off + len > bytes) {
            st = tm_errf(err, TM_EIO, "store: corpus '%s' changed while loading", id);
            goto end;
        }
        if (sqlite3_column_type(s, 0) != SQLITE_NULL) {
            if (!out->ids && !(out->ids = tm_calloc((size_t)n_docs, sizeof(char *)))) {
                st = tm_errf(err, TM_ENOMEM, "loading document ids");
                goto end;
            }
            const char *did = (const char *)sqlite3_column_text(s, 0);
            if (!(out->ids[i] = tm_strndup(did, (size_t)sqlite3_column_bytes(s, 0)))) {
                st = tm_errf(err, TM_ENOMEM, "loading document ids");
                goto end;
            }
        }
        if (len)
            memcpy(out->pool + off, sqlite3_column_blob(s, 1), (size_t)len);
        off += len;
        out->offsets[++i] = off;
    }
    if (rc != SQLITE_DONE)
        st = sqerr(q->r, err, "load corpus");
    out->n = i;
end:
    sqlite3_finalize(s);
    sqlite3_exec(q->r, "COMMIT", NULL, NULL, NULL);
out:
    pthread_mutex_unlock(&q->rlock);
    if (st)
        tm_store_docs_release(out);
    return st;
}

static tm_status sq_corpus_docs_page(void *ctx, const char *id, int64_t offset, int64_t n,
                                     char **ids, char **texts, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    int64_t seq;
    for (int64_t i = 0; i < n; i++) {
        if (ids)
            ids[i] = NULL;
        if (texts)
            texts[i] = NULL;
    }
    pthread_mutex_lock(&q->rlock);
    tm_status st = corpus_seq(q->r, id, 0, &seq, NULL, NULL, err);
    if (st)
        goto out;
    /* The text only when asked: a document-topics page wants the ids. */
    st = prep(
        q->r,
        texts ? "SELECT pos, doc_id, text FROM documents WHERE corpus_seq = ? AND pos >= ?"
                " AND pos < ?"
              : "SELECT pos, doc_id FROM documents WHERE corpus_seq = ? AND pos >= ? AND pos < ?"
                " AND doc_id IS NOT NULL",
        &s, err);
    if (st)
        goto out;
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_int64(s, 2, offset);
    sqlite3_bind_int64(s, 3, offset + n);
    int rc;
    while (!st && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t pos = sqlite3_column_int64(s, 0) - offset;
        if (pos < 0 || pos >= n)
            continue;
        if (ids && !ids[pos] && sqlite3_column_type(s, 1) != SQLITE_NULL &&
            !(ids[pos] = tm_strndup((const char *)sqlite3_column_text(s, 1),
                                    (size_t)sqlite3_column_bytes(s, 1))))
            st = tm_errf(err, TM_ENOMEM, "document ids");
        if (texts && !st && !texts[pos] &&
            !(texts[pos] = tm_strndup((const char *)sqlite3_column_text(s, 2),
                                      (size_t)sqlite3_column_bytes(s, 2))))
            st = tm_errf(err, TM_ENOMEM, "document texts");
    }
    if (!st && rc != SQLITE_DONE)
        st = sqerr(q->r, err, "documents");
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->rlock);
    for (int64_t i = 0; st && i < n; i++) {
        if (ids) {
            tm_free(ids[i]);
            ids[i] = NULL;
        }
        if (texts) {
            tm_free(texts[i]);
            texts[i] = NULL;
        }
    }
    return st;
}

/* ---------------------------------------------------------------------- */
/* Jobs. */

#define JOB_COLS                                                                                   \
    "seq, id, corpus_id, state, stage, progress, attempts, created_at, started_at,"                \
    " finished_at, method, error_code, error_message, tenant"
#define N_JOB_COLS 14

static void read_job(sqlite3_stmt *s, struct tm_job_record *j)
{
    memset(j, 0, sizeof(*j));
    j->seq = sqlite3_column_int64(s, 0);
    copy_text(j->id, sizeof(j->id), s, 1);
    copy_text(j->corpus_id, sizeof(j->corpus_id), s, 2);
    j->state = (enum tm_job_state)sqlite3_column_int(s, 3);
    copy_text(j->stage, sizeof(j->stage), s, 4);
    j->progress = sqlite3_column_double(s, 5);
    j->attempts = sqlite3_column_int(s, 6);
    j->created_at = sqlite3_column_double(s, 7);
    j->started_at = sqlite3_column_double(s, 8);
    j->finished_at = sqlite3_column_double(s, 9);
    copy_text(j->method, sizeof(j->method), s, 10);
    copy_text(j->error_code, sizeof(j->error_code), s, 11);
    copy_text(j->error_message, sizeof(j->error_message), s, 12);
    copy_text(j->tenant, sizeof(j->tenant), s, 13);
}

/* The index of the parameter called name (":id"), 0 when s has none:
 * sqlite3_bind_* on index 0 binds nothing. */
static int param(sqlite3_stmt *s, const char *name)
{
    return sqlite3_bind_parameter_index(s, name);
}

/* Binds the fields of j to the parameters named after them (":id",
 * ":state", ...): each statement names the fields it writes, and this is
 * the one place that says which field goes into which column; a field the
 * statement does not name is skipped. Borrowed: s must be stepped while j
 * lives. */
static void bind_job(sqlite3_stmt *s, const struct tm_job_record *j)
{
    sqlite3_bind_text(s, param(s, ":id"), j->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, param(s, ":corpus_id"), j->corpus_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, param(s, ":state"), (int)j->state);
    sqlite3_bind_text(s, param(s, ":stage"), j->stage, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, param(s, ":progress"), j->progress);
    sqlite3_bind_int(s, param(s, ":attempts"), j->attempts);
    sqlite3_bind_double(s, param(s, ":created_at"), j->created_at);
    sqlite3_bind_double(s, param(s, ":started_at"), j->started_at);
    sqlite3_bind_double(s, param(s, ":finished_at"), j->finished_at);
    sqlite3_bind_text(s, param(s, ":method"), j->method, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, param(s, ":error_code"), j->error_code, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, param(s, ":error_message"), j->error_message, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, param(s, ":tenant"), tenant_of(j->tenant), -1, SQLITE_STATIC);
}

/* Inserts job j and counts its spec's bytes; the caller holds wlock and a
 * write transaction. */
static tm_status insert_locked(struct sq *q, struct tm_job_record *j, const char *spec,
                               size_t spec_len, const char *idem_key, const char *client, char *err)
{
    sqlite3_stmt *s = NULL;
    tm_status st = prep(q->w,
                        "INSERT INTO jobs(id, corpus_id, spec, idem_key, state, stage, progress,"
                        " attempts, created_at, started_at, finished_at, method, error_code,"
                        " error_message, client, tenant, stored_bytes) VALUES(:id, :corpus_id,"
                        " :spec, :idem_key, :state, :stage, :progress, :attempts, :created_at,"
                        " :started_at, :finished_at, :method, :error_code, :error_message, :client,"
                        " :tenant, :stored_bytes)",
                        &s, err);
    if (!st) {
        bind_job(s, j);
        sqlite3_bind_blob64(s, param(s, ":spec"), spec_len ? spec : "", spec_len, SQLITE_STATIC);
        /* A NULL idem_key binds NULL: UNIQUE lets any number of those in. */
        sqlite3_bind_text(s, param(s, ":idem_key"), idem_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, param(s, ":client"), client ? client : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, param(s, ":stored_bytes"), (int64_t)spec_len);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
            j->seq = sqlite3_last_insert_rowid(q->w);
        else if (sqlite3_extended_errcode(q->w) == SQLITE_CONSTRAINT_UNIQUE && idem_key)
            st = tm_errf(err, TM_EBUSY, "idempotency key already used");
        else
            st = sqerr(q->w, err, "insert job");
    }
    sqlite3_finalize(s);
    if (!st)
        st = charge(q, tenant_of(j->tenant), (int64_t)spec_len, err);
    return st;
}

static tm_status sq_job_insert(void *ctx, struct tm_job_record *j, const char *spec,
                               size_t spec_len, const char *idem_key, const char *client, char *err)
{
    struct sq *q = ctx;
    pthread_mutex_lock(&q->wlock);
    tm_status st = exec(q->w, "BEGIN IMMEDIATE", err);
    if (!st) {
        st = insert_locked(q, j, spec, spec_len, idem_key, client, err);
        st = end_write(q, st, err);
    }
    pthread_mutex_unlock(&q->wlock);
    if (!st && j->state == TM_JOB_QUEUED)
        tm__store_listeners_wake(&q->listeners, TM_STORE_WAKE_JOBS);
    return st;
}

/* Queued jobs, all and client's, read on db (the caller holds its lock). */
static tm_status count_queued(sqlite3 *db, const char *client, int64_t *all, int64_t *mine,
                              char *err)
{
    sqlite3_stmt *s = NULL;
    tm_status st = prep(db,
                        "SELECT count(*), coalesce(sum(client = ?2), 0) FROM jobs"
                        " WHERE state = ?1",
                        &s, err);
    if (!st) {
        sqlite3_bind_int(s, 1, TM_JOB_QUEUED);
        sqlite3_bind_text(s, 2, client ? client : "", -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW) {
            *all = sqlite3_column_int64(s, 0);
            if (mine)
                *mine = sqlite3_column_int64(s, 1);
        } else {
            st = sqerr(db, err, "count jobs");
        }
    }
    sqlite3_finalize(s);
    return st;
}

static tm_status sq_job_submit(void *ctx, struct tm_job_record *j, const char *spec,
                               size_t spec_len, const char *idem_key, const char *client,
                               const struct tm_store_caps *caps, enum tm_store_full *full,
                               char *err)
{
    struct sq *q = ctx;
    int64_t all = 0, mine = 0;
    *full = TM_STORE_NOT_FULL;
    pthread_mutex_lock(&q->wlock);
    tm_status st = exec(q->w, "BEGIN IMMEDIATE", err);
    if (st)
        goto out;
    if (caps) {
        st = count_queued(q->w, client, &all, &mine, err);
        if (!st && all >= caps->max_queued)
            *full = TM_STORE_QUEUE_FULL;
        else if (!st && mine >= caps->max_per_client)
            *full = TM_STORE_CLIENT_FULL;
        if (*full)
            st = tm_errf(err, TM_EBUSY, "the queue is full");
    }
    if (!st && (st = check_stored(q, tenant_of(j->tenant), (int64_t)spec_len, "this job's spec",
                                  err)) == TM_ETOOBIG) {
        *full = TM_STORE_STORED_FULL;
        st = TM_EBUSY;
    }
    if (!st)
        st = insert_locked(q, j, spec, spec_len, idem_key, client, err);
    st = end_write(q, st, err);
out:
    pthread_mutex_unlock(&q->wlock);
    if (!st)
        tm__store_listeners_wake(&q->listeners, TM_STORE_WAKE_JOBS);
    return st;
}

static tm_status get_blob(sqlite3_stmt *s, int col, char **out, size_t *len, char *err)
{
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    const void *p = sqlite3_column_blob(s, col);
    *out = tm_malloc(n + 1);
    if (!*out)
        return tm_errf(err, TM_ENOMEM, "store: reading %zu bytes", n);
    if (n)
        memcpy(*out, p, n);
    (*out)[n] = 0;
    *len = n;
    return TM_OK;
}

static tm_status sq_job_by_idem(void *ctx, const char *key, struct tm_job_record *out, char **spec,
                                size_t *spec_len, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    *spec = NULL;
    int row;
    pthread_mutex_lock(&q->rlock);
    tm_status st = select_by_key(q->r, "SELECT " JOB_COLS ", spec FROM jobs WHERE idem_key = ?",
                                 key, "find idempotency key", &s, &row, err);
    if (!st && row) {
        read_job(s, out);
        st = get_blob(s, N_JOB_COLS, spec, spec_len, err);
    } else if (!st) {
        st = tm_errf(err, TM_ENOTFOUND, "no job with this idempotency key");
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->rlock);
    return st;
}

/* Writes j's fields, under claim c when not NULL (store.h's job_update);
 * the caller holds wlock. */
static tm_status update_locked(struct sq *q, const struct tm_job_claim *c,
                               const struct tm_job_record *j, char *err)
{
    sqlite3_stmt *s = NULL;
    tm_status st = prep(q->w,
                        c ? "UPDATE jobs SET state = :state, stage = :stage, progress = :progress,"
                            " attempts = :attempts, started_at = :started_at,"
                            " finished_at = :finished_at, error_code = :error_code,"
                            " error_message = :error_message,"
                            " owner = CASE WHEN :state = :running THEN owner END,"
                            " lease_until = CASE WHEN :state = :running THEN lease_until ELSE 0 END"
                            " WHERE id = :id AND attempts = :claim_attempt AND owner = :owner"
                            " AND state = :running"
                          : "UPDATE jobs SET state = :state, stage = :stage, progress = :progress,"
                            " attempts = :attempts, started_at = :started_at,"
                            " finished_at = :finished_at, error_code = :error_code,"
                            " error_message = :error_message WHERE id = :id",
                        &s, err);
    if (st)
        return st;
    bind_job(s, j);
    if (c) {
        sqlite3_bind_int(s, param(s, ":running"), TM_JOB_RUNNING);
        sqlite3_bind_int(s, param(s, ":claim_attempt"), c->attempt);
        sqlite3_bind_text(s, param(s, ":owner"), c->owner, -1, SQLITE_STATIC);
    }
    if (sqlite3_step(s) != SQLITE_DONE)
        st = sqerr(q->w, err, "update job");
    else if (!sqlite3_changes(q->w) && c)
        st = tm_errf(err, TM_ELOST, "job '%s': attempt %d of %s is no longer running", j->id,
                     c->attempt, c->owner);
    else if (!sqlite3_changes(q->w))
        st = tm_errf(err, TM_ENOTFOUND, "job '%s' not found", j->id);
    sqlite3_finalize(s);
    return st;
}

static tm_status sq_job_update(void *ctx, const struct tm_job_claim *c,
                               const struct tm_job_record *j, char *err)
{
    struct sq *q = ctx;
    pthread_mutex_lock(&q->wlock);
    tm_status st = update_locked(q, c, j, err);
    pthread_mutex_unlock(&q->wlock);
    if (!st && c && j->state == TM_JOB_QUEUED)
        tm__store_listeners_wake(&q->listeners, TM_STORE_WAKE_JOBS);
    return st;
}

/* Counts a job's result of kept bytes (never refused: the result of a job
 * accepted under the quota is kept, see store.h): the job's stored bytes
 * become its spec's and kept, and its tenant's count moves by the
 * difference (a result written again replaces the first). */
static tm_status count_result(struct sq *q, const char *id, int64_t kept, char *err)
{
    sqlite3_stmt *s = NULL;
    int row;
    tm_status st = select_by_key(q->w,
                                 "SELECT tenant, stored_bytes, length(spec) FROM jobs"
                                 " WHERE id = ?",
                                 id, "find job", &s, &row, err);
    if (st || !row) {
        sqlite3_finalize(s);
        return st;
    }
    char tenant[TM_TENANT_SIZE];
    copy_text(tenant, sizeof(tenant), s, 0);
    int64_t old = sqlite3_column_int64(s, 1), now = sqlite3_column_int64(s, 2) + kept;
    sqlite3_finalize(s);
    st = prep(q->w, "UPDATE jobs SET stored_bytes = ? WHERE id = ?", &s, err);
    if (!st) {
        sqlite3_bind_int64(s, 1, now);
        sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE)
            st = sqerr(q->w, err, "count result");
    }
    sqlite3_finalize(s);
    if (!st)
        st = charge(q, tenant, now - old, err);
    return st;
}

static tm_status sq_job_finish(void *ctx, const struct tm_job_claim *c,
                               const struct tm_job_record *j, const struct tm_store_result *r,
                               char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    pthread_mutex_lock(&q->wlock);
    tm_status st = exec(q->w, "BEGIN IMMEDIATE", err);
    if (st)
        goto out;
    st = update_locked(q, c, j, err);
    if (st || !r)
        goto commit;
    st = prep(q->w, "UPDATE jobs SET result = ?, n_documents = ?, n_topics = ? WHERE id = ?", &s,
              err);
    if (st)
        goto commit;
    sqlite3_bind_blob64(s, 1, r->json_len ? r->json : "", r->json_len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, r->doc_topics ? r->n_documents : 0);
    sqlite3_bind_int64(s, 3, r->doc_topics ? r->n_topics : 0);
    sqlite3_bind_text(s, 4, j->id, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE) {
        st = sqerr(q->w, err, "store result");
        goto commit;
    }
    sqlite3_finalize(s);
    s = NULL;
    int64_t kept = (int64_t)r->json_len; /* the result's bytes, weights and ids included */
    if (r->doc_topics && r->n_documents > 0 && r->n_topics > 0) {
        st = prep(q->w,
                  "INSERT OR REPLACE INTO doc_topics(job_seq, chunk, weights, ids)"
                  " VALUES(?, ?, ?, ?)",
                  &s, err);
        if (st)
            goto commit;
        size_t row_bytes = (size_t)r->n_topics * sizeof(double);
        for (int64_t ch = 0; ch * TM_DT_CHUNK < r->n_documents; ch++) {
            int64_t rows = r->n_documents - ch * TM_DT_CHUNK;
            if (rows > TM_DT_CHUNK)
                rows = TM_DT_CHUNK;
            sqlite3_reset(s);
            sqlite3_bind_int64(s, 1, j->seq);
            sqlite3_bind_int64(s, 2, ch);
            sqlite3_bind_blob64(s, 3, r->doc_topics + ch * TM_DT_CHUNK * r->n_topics,
                                (sqlite3_uint64)rows * row_bytes, SQLITE_STATIC);
            char *ids = NULL;
            size_t ids_len = 0;
            if (r->doc_ids &&
                (st = tm__store_pack_ids(r->doc_ids + ch * TM_DT_CHUNK, rows, &ids, &ids_len, err)))
                break;
            kept += rows * (int64_t)row_bytes + (int64_t)ids_len;
            if (ids)
                sqlite3_bind_blob64(s, 4, ids, ids_len, tm_free);
            else
                sqlite3_bind_null(s, 4);
            if (sqlite3_step(s) != SQLITE_DONE) {
                st = sqerr(q->w, err, "store document topics");
                break;
            }
        }
    }
    sqlite3_finalize(s);
    s = NULL;
    /* The model, replacing any a previous finish left. */
    if (!st)
        st = prep(q->w, "DELETE FROM job_models WHERE job_seq = ?", &s, err);
    if (!st) {
        sqlite3_bind_int64(s, 1, j->seq);
        if (sqlite3_step(s) != SQLITE_DONE)
            st = sqerr(q->w, err, "store model");
        sqlite3_finalize(s);
        s = NULL;
    }
    if (!st && r->model) {
        st = prep(q->w, "INSERT INTO job_models(job_seq, model) VALUES(?, ?)", &s, err);
        if (!st) {
            sqlite3_bind_int64(s, 1, j->seq);
            sqlite3_bind_blob64(s, 2, r->model_len ? (const void *)r->model : "", r->model_len,
                                SQLITE_STATIC);
            if (sqlite3_step(s) != SQLITE_DONE)
                st = sqerr(q->w, err, "store model");
            kept += (int64_t)r->model_len;
        }
    }
    if (!st)
        st = count_result(q, j->id, kept, err);
commit:
    /* A failed COMMIT must roll back too, or the open transaction would make
     * every later BEGIN on this connection fail. */
    st = end_write(q, st, err);
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->wlock);
    if (!st && c && j->state == TM_JOB_QUEUED)
        tm__store_listeners_wake(&q->listeners, TM_STORE_WAKE_JOBS);
    return st;
}

static tm_status sq_job_get(void *ctx, const char *id, struct tm_job_record *out, char *err)
{
    struct sq *q = ctx;
    tm_status st = TM_OK;
    pthread_mutex_lock(&q->rlock);
    if (!q->get_job &&
        sqlite3_prepare_v3(q->r, "SELECT " JOB_COLS " FROM jobs WHERE id = ?", -1,
                           SQLITE_PREPARE_PERSISTENT, &q->get_job, NULL) != SQLITE_OK)
        st = sqerr(q->r, err, "prepare");
    if (!st) {
        sqlite3_bind_text(q->get_job, 1, id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(q->get_job);
        if (rc == SQLITE_ROW)
            read_job(q->get_job, out);
        else if (rc == SQLITE_DONE)
            st = tm_errf(err, TM_ENOTFOUND, "job '%s' not found", id);
        else
            st = sqerr(q->r, err, "get job");
        sqlite3_reset(q->get_job);
        sqlite3_clear_bindings(q->get_job);
    }
    pthread_mutex_unlock(&q->rlock);
    return st;
}

/* One blob column of one job. */
static tm_status job_blob(struct sq *q, const char *sql, const char *id, char **out, size_t *len,
                          char *err)
{
    sqlite3_stmt *s = NULL;
    *out = NULL;
    int row;
    pthread_mutex_lock(&q->rlock);
    tm_status st = select_by_key(q->r, sql, id, "read job", &s, &row, err);
    if (!st && row && sqlite3_column_type(s, 0) != SQLITE_NULL)
        st = get_blob(s, 0, out, len, err);
    else if (!st)
        st = tm_errf(err, TM_ENOTFOUND, "job '%s' has none", id);
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->rlock);
    return st;
}

static tm_status sq_job_spec(void *ctx, const char *id, char **spec, size_t *len, char *err)
{
    return job_blob(ctx, "SELECT spec FROM jobs WHERE id = ?", id, spec, len, err);
}

static tm_status sq_job_result(void *ctx, const char *id, char **json, size_t *len, char *err)
{
    return job_blob(ctx, "SELECT result FROM jobs WHERE id = ?", id, json, len, err);
}

static tm_status sq_job_model(void *ctx, const char *id, char **bytes, size_t *len, char *err)
{
    return job_blob(ctx,
                    "SELECT m.model FROM jobs j JOIN job_models m ON m.job_seq = j.seq"
                    " WHERE j.id = ?",
                    id, bytes, len, err);
}

static tm_status sq_job_doc_topics(void *ctx, const char *id, int64_t offset, int64_t limit,
                                   double **weights, char ***ids, int64_t *n, int64_t *k,
                                   int64_t *n_documents, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    int64_t seq = 0;
    *weights = NULL;
    *ids = NULL;
    *n = *k = *n_documents = 0;
    int64_t rows = 0;
    pthread_mutex_lock(&q->rlock);
    tm_status st = exec(q->r, "BEGIN", err);
    if (st)
        goto out;
    st = prep(q->r, "SELECT seq, n_documents, n_topics FROM jobs WHERE id = ?", &s, err);
    if (st)
        goto end;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_ROW) {
        st = tm_errf(err, TM_ENOTFOUND, "job '%s' not found", id);
        goto end;
    }
    seq = sqlite3_column_int64(s, 0);
    *n_documents = sqlite3_column_int64(s, 1);
    *k = sqlite3_column_int64(s, 2);
    sqlite3_finalize(s);
    s = NULL;
    if (*k <= 0) {
        st = tm_errf(err, TM_ENOTFOUND, "job '%s' has no document topics", id);
        goto end;
    }
    if (offset >= *n_documents || limit <= 0)
        goto end;
    rows = *n_documents - offset < limit ? *n_documents - offset : limit;
    *weights = tm_mallocarray((size_t)(rows * *k), sizeof(double));
    if (!*weights) {
        st = tm_errf(err, TM_ENOMEM, "document topics page");
        goto end;
    }
    st = prep(q->r,
              "SELECT chunk, weights, ids FROM doc_topics WHERE job_seq = ? AND chunk >= ? AND"
              " chunk <= ? ORDER BY chunk",
              &s, err);
    if (st)
        goto end;
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_int64(s, 2, offset / TM_DT_CHUNK);
    sqlite3_bind_int64(s, 3, (offset + rows - 1) / TM_DT_CHUNK);
    while (sqlite3_step(s) == SQLITE_ROW) {
        int64_t c = sqlite3_column_int64(s, 0);
        int64_t first = c * TM_DT_CHUNK;
        int64_t have = sqlite3_column_bytes(s, 1) / (int64_t)sizeof(double) / *k;
        const double *w = sqlite3_column_blob(s, 1);
        for (int64_t r = 0; r < have; r++) {
            int64_t row = first + r;
            if (row < offset || row >= offset + rows)
                continue;
            memcpy(*weights + (row - offset) * *k, w + r * *k, (size_t)*k * sizeof(double));
        }
        if (sqlite3_column_type(s, 2) == SQLITE_NULL)
            continue;
        char *chunk_ids[TM_DT_CHUNK] = {NULL};
        if (!*ids && !(*ids = tm_calloc((size_t)rows, sizeof(char *)))) {
            st = tm_errf(err, TM_ENOMEM, "document ids");
            goto end;
        }
        st = tm__store_unpack_ids(sqlite3_column_blob(s, 2), (size_t)sqlite3_column_bytes(s, 2),
                                  chunk_ids, have < TM_DT_CHUNK ? have : TM_DT_CHUNK, err);
        for (int64_t r = 0; r < TM_DT_CHUNK; r++) {
            int64_t row = first + r;
            if (row >= offset && row < offset + rows)
                (*ids)[row - offset] = chunk_ids[r];
            else
                tm_free(chunk_ids[r]);
        }
        if (st)
            goto end;
    }
    *n = rows;
end:
    sqlite3_finalize(s);
    sqlite3_exec(q->r, "COMMIT", NULL, NULL, NULL);
out:
    pthread_mutex_unlock(&q->rlock);
    if (st) {
        tm_free(*weights);
        *weights = NULL;
        for (int64_t i = 0; *ids && i < rows; i++)
            tm_free((*ids)[i]);
        tm_free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return st;
}

/* sq_job_list, and each job's fairness key into clients[i] when clients is not NULL. */
static tm_status list_jobs(struct sq *q, const char *tenant, int state, int64_t after_seq,
                           int limit, struct tm_job_record *out, char (*clients)[TM_CLIENT_SIZE],
                           int *n, char *err)
{
    sqlite3_stmt *s = NULL;
    *n = 0;
    pthread_mutex_lock(&q->rlock);
    tm_status st =
        prep(q->r,
             state < 0 ? "SELECT " JOB_COLS ", client FROM jobs WHERE seq > ?1"
                         " AND (?4 IS NULL OR tenant = ?4) ORDER BY seq LIMIT ?2"
                       : "SELECT " JOB_COLS ", client FROM jobs WHERE seq > ?1 AND state = ?3"
                         " AND (?4 IS NULL OR tenant = ?4) ORDER BY seq LIMIT ?2",
             &s, err);
    if (!st) {
        sqlite3_bind_int64(s, 1, after_seq);
        sqlite3_bind_int(s, 2, limit);
        if (state >= 0)
            sqlite3_bind_int(s, 3, state);
        sqlite3_bind_text(s, 4, tenant, -1, SQLITE_STATIC);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < limit) {
            if (clients)
                copy_text(clients[*n], TM_CLIENT_SIZE, s, N_JOB_COLS);
            read_job(s, &out[(*n)++]);
        }
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
            st = sqerr(q->r, err, "list jobs");
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->rlock);
    return st;
}

static tm_status sq_job_list(void *ctx, const char *tenant, int state, int64_t after_seq, int limit,
                             struct tm_job_record *out, int *n, char *err)
{
    return list_jobs(ctx, tenant, state, after_seq, limit, out, NULL, n, err);
}

static tm_status sq_job_scan(void *ctx, enum tm_job_state state, tm_store_job_fn fn, void *fn_ctx,
                             char *err)
{
    /* In pages, without holding the lock across calls to fn (which may write). */
    struct tm_job_record page[64];
    char clients[64][TM_CLIENT_SIZE];
    int64_t after = 0;
    for (;;) {
        int n = 0;
        tm_status st = list_jobs(ctx, NULL, (int)state, after, 64, page, clients, &n, err);
        if (st)
            return st;
        for (int i = 0; i < n; i++)
            if (fn(fn_ctx, &page[i], clients[i]))
                return TM_OK;
        if (n < 64)
            return TM_OK;
        after = page[n - 1].seq;
    }
}

static tm_status sq_corpus_jobs_active(void *ctx, const char *id, int64_t *n, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    *n = 0;
    pthread_mutex_lock(&q->rlock);
    tm_status st =
        prep(q->r, "SELECT count(*) FROM jobs WHERE corpus_id = ? AND state IN (?, ?)", &s, err);
    if (!st) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, TM_JOB_QUEUED);
        sqlite3_bind_int(s, 3, TM_JOB_RUNNING);
        if (sqlite3_step(s) == SQLITE_ROW)
            *n = sqlite3_column_int64(s, 0);
        else
            st = sqerr(q->r, err, "count jobs");
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->rlock);
    return st;
}

/* The statements of a job's deletion. */
#define DEL_STMTS 4

/* Deletes job seq and its document-topic weights, and takes its stored
 * bytes off its tenant's count: the caller holds a write transaction and
 * passes the DEL_STMTS statements of job_delete_stmts, which are reset
 * here. */
static tm_status delete_job_seq(struct sq *q, sqlite3_stmt *const del[DEL_STMTS], int64_t seq,
                                char *err)
{
    for (int i = 0; i < DEL_STMTS; i++) {
        sqlite3_reset(del[i]);
        sqlite3_bind_int64(del[i], 1, seq);
        if (sqlite3_step(del[i]) != SQLITE_DONE)
            return sqerr(q->w, err, "delete job");
    }
    return TM_OK;
}

/* Prepares del[0 .. DEL_STMTS) for delete_job_seq; the caller finalizes them. */
static tm_status job_delete_stmts(struct sq *q, sqlite3_stmt *del[DEL_STMTS], char *err)
{
    tm_status st = prep(q->w,
                        "UPDATE tenant_usage SET stored_bytes = stored_bytes - (SELECT stored_bytes"
                        " FROM jobs WHERE seq = ?1) WHERE tenant = (SELECT tenant FROM jobs"
                        " WHERE seq = ?1)",
                        &del[0], err);
    if (!st)
        st = prep(q->w, "DELETE FROM doc_topics WHERE job_seq = ?", &del[1], err);
    if (!st)
        st = prep(q->w, "DELETE FROM job_models WHERE job_seq = ?", &del[2], err);
    if (!st)
        st = prep(q->w, "DELETE FROM jobs WHERE seq = ?", &del[3], err);
    return st;
}

static tm_status sq_job_delete(void *ctx, const char *id, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL, *del[DEL_STMTS] = {NULL};
    int row;
    pthread_mutex_lock(&q->wlock);
    tm_status st = exec(q->w, "BEGIN IMMEDIATE", err);
    if (st)
        goto out;
    /* The state is checked inside the transaction: a worker's job_finish
     * cannot slip in between, and a running job is never deleted from under
     * it. */
    st = select_by_key(q->w, "SELECT seq, state FROM jobs WHERE id = ?", id, "find job", &s, &row,
                       err);
    if (st)
        goto end;
    if (!row) {
        st = tm_errf(err, TM_ENOTFOUND, "job '%s' not found", id);
        goto end;
    }
    enum tm_job_state state = (enum tm_job_state)sqlite3_column_int(s, 1);
    if (!tm_job_state_final(state)) {
        st = tm_errf(err, TM_EBUSY, "job '%s' is %s", id, tm_job_state_name(state));
        goto end;
    }
    int64_t seq = sqlite3_column_int64(s, 0);
    st = job_delete_stmts(q, del, err);
    if (!st)
        st = delete_job_seq(q, del, seq, err);
end:
    st = end_write(q, st, err);
out:
    for (int i = 0; i < DEL_STMTS; i++)
        sqlite3_finalize(del[i]);
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->wlock);
    return st;
}

static tm_status sq_job_expire(void *ctx, double before, int limit, int64_t *n, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *sel = NULL, *del[DEL_STMTS] = {NULL};
    int64_t *seqs = NULL, found = 0;
    *n = 0;
    if (limit <= 0)
        return TM_OK;
    seqs = tm_mallocarray((size_t)limit, sizeof(*seqs));
    if (!seqs)
        return tm_errf(err, TM_ENOMEM, "store: expiring jobs");
    pthread_mutex_lock(&q->wlock);
    tm_status st = exec(q->w, "BEGIN IMMEDIATE", err);
    if (st)
        goto out;
    /* The seqs first, then the deletes: SQLite leaves undefined what a
     * pending SELECT sees of rows deleted under it. The state terms let the
     * jobs_finished index skip queued and running jobs (finished_at 0). */
    st =
        prep(q->w, "SELECT seq FROM jobs WHERE state IN (?1, ?2, ?3) AND finished_at < ?4 LIMIT ?5",
             &sel, err);
    if (st)
        goto end;
    sqlite3_bind_int(sel, 1, TM_JOB_SUCCEEDED);
    sqlite3_bind_int(sel, 2, TM_JOB_FAILED);
    sqlite3_bind_int(sel, 3, TM_JOB_CANCELLED);
    sqlite3_bind_double(sel, 4, before);
    sqlite3_bind_int(sel, 5, limit);
    int rc = SQLITE_DONE;
    while (found < limit && (rc = sqlite3_step(sel)) == SQLITE_ROW)
        seqs[found++] = sqlite3_column_int64(sel, 0);
    if (found < limit && rc != SQLITE_DONE) {
        st = sqerr(q->w, err, "find expired jobs");
        goto end;
    }
    sqlite3_finalize(sel);
    sel = NULL;
    if (found)
        st = job_delete_stmts(q, del, err);
    for (int64_t i = 0; !st && i < found; i++)
        st = delete_job_seq(q, del, seqs[i], err);
    if (!st) {
        /* Clients with nothing queued or running are forgotten: they count
         * as never served, as a client with nothing queued always has. */
        char forget[160];
        snprintf(forget, sizeof(forget),
                 "DELETE FROM clients WHERE client NOT IN (SELECT client FROM jobs"
                 " WHERE state IN (%d, %d))",
                 (int)TM_JOB_QUEUED, (int)TM_JOB_RUNNING);
        st = exec(q->w, forget, err);
    }
end:
    st = end_write(q, st, err);
    if (!st)
        *n = found;
out:
    for (int i = 0; i < DEL_STMTS; i++)
        sqlite3_finalize(del[i]);
    sqlite3_finalize(sel);
    pthread_mutex_unlock(&q->wlock);
    tm_free(seqs);
    return st;
}

/* ---------------------------------------------------------------------- */
/* The queue (store.h). */

static tm_status sq_job_claim(void *ctx, const char *owner, double started_at, double lease_s,
                              struct tm_store_claimed *out, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *pick = NULL, *upd = NULL, *served = NULL;
    char client[TM_CLIENT_SIZE];
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&q->wlock);
    tm_status st = exec(q->w, "BEGIN IMMEDIATE", err);
    if (st)
        goto out;
    /* A client absent from clients (never served, or forgotten) counts as
     * served at tick 0: first, and the older head job first among those.
     * A tenant with quota_running jobs running is skipped (its jobs wait);
     * the tenants at the cap are found once, from the running jobs, and
     * not at all without a cap (?2 <= 0 short-circuits). */
    st = prep(q->w,
              "SELECT j.seq, j.client FROM jobs j LEFT JOIN clients c ON c.client = j.client"
              " WHERE j.state = ?1 AND (?2 <= 0 OR j.tenant NOT IN (SELECT tenant FROM jobs"
              " WHERE state = ?3 GROUP BY tenant HAVING count(*) >= ?2))"
              " ORDER BY coalesce(c.last_served, 0), j.seq LIMIT 2",
              &pick, err);
    if (st)
        goto end;
    sqlite3_bind_int(pick, 1, TM_JOB_QUEUED);
    sqlite3_bind_int64(pick, 2, atomic_load_explicit(&q->quota_running, memory_order_relaxed));
    sqlite3_bind_int(pick, 3, TM_JOB_RUNNING);
    int rc = sqlite3_step(pick);
    if (rc == SQLITE_DONE) {
        st = tm_errf(err, TM_ENOTFOUND, "no queued job");
        goto end;
    }
    if (rc != SQLITE_ROW) {
        st = sqerr(q->w, err, "claim job");
        goto end;
    }
    int64_t seq = sqlite3_column_int64(pick, 0);
    copy_text(client, sizeof(client), pick, 1);
    out->more = sqlite3_step(pick) == SQLITE_ROW;
    sqlite3_finalize(pick);
    pick = NULL;
    st = prep(q->w,
              "UPDATE jobs SET state = ?1, attempts = attempts + 1, started_at = ?2, stage = '',"
              " progress = 0, owner = ?3, lease_until = ?4 WHERE seq = ?5"
              " RETURNING " JOB_COLS ", cancel_requested",
              &upd, err);
    if (st)
        goto end;
    sqlite3_bind_int(upd, 1, TM_JOB_RUNNING);
    sqlite3_bind_double(upd, 2, started_at);
    sqlite3_bind_text(upd, 3, owner, -1, SQLITE_STATIC);
    sqlite3_bind_double(upd, 4, tm_clock_unix() + lease_s);
    sqlite3_bind_int64(upd, 5, seq);
    if (sqlite3_step(upd) != SQLITE_ROW) {
        st = sqerr(q->w, err, "claim job");
        goto end;
    }
    read_job(upd, &out->job);
    out->cancel = sqlite3_column_int(upd, N_JOB_COLS);
    while ((rc = sqlite3_step(upd)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE) {
        st = sqerr(q->w, err, "claim job");
        goto end;
    }
    st = prep(q->w,
              "INSERT INTO clients(client, last_served) VALUES(?1, (SELECT coalesce(max("
              "last_served), 0) + 1 FROM clients)) ON CONFLICT(client) DO UPDATE SET"
              " last_served = excluded.last_served",
              &served, err);
    if (st)
        goto end;
    sqlite3_bind_text(served, 1, client, -1, SQLITE_STATIC);
    if (sqlite3_step(served) != SQLITE_DONE)
        st = sqerr(q->w, err, "claim job");
end:
    st = end_write(q, st, err);
out:
    sqlite3_finalize(served);
    sqlite3_finalize(upd);
    sqlite3_finalize(pick);
    pthread_mutex_unlock(&q->wlock);
    if (st)
        memset(out, 0, sizeof(*out));
    return st;
}

static tm_status sq_job_renew(void *ctx, struct tm_store_lease *l, int n, double lease_s, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    if (n <= 0)
        return TM_OK;
    pthread_mutex_lock(&q->wlock);
    tm_status st = exec(q->w, "BEGIN IMMEDIATE", err);
    if (st)
        goto out;
    st = prep(q->w,
              "UPDATE jobs SET lease_until = ?1 WHERE id = ?2 AND attempts = ?3 AND owner = ?4"
              " AND state = ?5 RETURNING cancel_requested",
              &s, err);
    double until = tm_clock_unix() + lease_s;
    for (int i = 0; !st && i < n; i++) {
        sqlite3_reset(s);
        sqlite3_bind_double(s, 1, until);
        sqlite3_bind_text(s, 2, l[i].claim.id, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 3, l[i].claim.attempt);
        sqlite3_bind_text(s, 4, l[i].claim.owner, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 5, TM_JOB_RUNNING);
        int rc = sqlite3_step(s);
        l[i].lost = rc != SQLITE_ROW;
        l[i].cancel = rc == SQLITE_ROW && sqlite3_column_int(s, 0);
        while (rc == SQLITE_ROW)
            rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
            st = sqerr(q->w, err, "renew leases");
    }
    st = end_write(q, st, err);
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->wlock);
    return st;
}

static tm_status sq_job_progress(void *ctx, struct tm_store_progress *p, int n, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    if (n <= 0)
        return TM_OK;
    pthread_mutex_lock(&q->wlock);
    tm_status st = exec(q->w, "BEGIN IMMEDIATE", err);
    if (st)
        goto out;
    st = prep(q->w,
              "UPDATE jobs SET stage = ?1, progress = ?2 WHERE id = ?3 AND attempts = ?4"
              " AND owner = ?5 AND state = ?6",
              &s, err);
    for (int i = 0; !st && i < n; i++) {
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, p[i].stage, -1, SQLITE_STATIC);
        sqlite3_bind_double(s, 2, p[i].progress);
        sqlite3_bind_text(s, 3, p[i].claim.id, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 4, p[i].claim.attempt);
        sqlite3_bind_text(s, 5, p[i].claim.owner, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 6, TM_JOB_RUNNING);
        if (sqlite3_step(s) != SQLITE_DONE)
            st = sqerr(q->w, err, "write progress");
        else
            p[i].lost = sqlite3_changes(q->w) == 0;
    }
    st = end_write(q, st, err);
out:
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->wlock);
    return st;
}

/* The message of a job failed for its crashes, before and after the count. */
#define CRASHED_PRE "the process stopped or lost the store while running this job "
#define CRASHED_POST " times (crash, kill, out of memory or cut off); giving up"
#define CANCELLED_MSG "cancelled on request"

static tm_status sq_job_rescue(void *ctx, int max_attempts, double now, int limit,
                               tm_store_job_fn fn, void *fn_ctx, int64_t *n, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    struct tm_job_record *got = NULL;
    char(*clients)[TM_CLIENT_SIZE] = NULL;
    int64_t found = 0, requeued = 0;
    *n = 0;
    if (limit <= 0)
        return TM_OK;
    got = tm_mallocarray((size_t)limit, sizeof(*got));
    clients = tm_mallocarray((size_t)limit, sizeof(*clients));
    if (!got || !clients) {
        tm_free(got);
        tm_free(clients);
        return tm_errf(err, TM_ENOMEM, "store: rescuing jobs");
    }
    pthread_mutex_lock(&q->wlock);
    /* Every SET term reads the row as it was: "ended" is a cancel asked,
     * or the last attempt allowed. */
    tm_status st = prep(
        q->w,
        "UPDATE jobs SET"
        " state = CASE WHEN cancel_requested THEN :cancelled WHEN attempts >= :max THEN :failed"
        " ELSE :queued END,"
        " finished_at = CASE WHEN cancel_requested OR attempts >= :max THEN :now ELSE 0 END,"
        " started_at = CASE WHEN cancel_requested OR attempts >= :max THEN started_at ELSE 0 END,"
        " stage = CASE WHEN cancel_requested OR attempts >= :max THEN stage ELSE '' END,"
        " progress = CASE WHEN cancel_requested OR attempts >= :max THEN progress ELSE 0 END,"
        " error_code = CASE WHEN cancel_requested THEN 'cancelled' WHEN attempts >= :max"
        " THEN 'worker_crashed' ELSE '' END,"
        " error_message = CASE WHEN cancel_requested THEN :cmsg WHEN attempts >= :max"
        " THEN :pre || attempts || :post ELSE '' END,"
        " owner = NULL, lease_until = 0"
        " WHERE seq IN (SELECT seq FROM jobs WHERE state = :running AND lease_until < :lease_now"
        " ORDER BY seq LIMIT :limit)"
        " RETURNING " JOB_COLS ", client",
        &s, err);
    if (!st) {
        sqlite3_bind_int(s, param(s, ":cancelled"), TM_JOB_CANCELLED);
        sqlite3_bind_int(s, param(s, ":failed"), TM_JOB_FAILED);
        sqlite3_bind_int(s, param(s, ":queued"), TM_JOB_QUEUED);
        sqlite3_bind_int(s, param(s, ":running"), TM_JOB_RUNNING);
        sqlite3_bind_int(s, param(s, ":max"), max_attempts);
        sqlite3_bind_double(s, param(s, ":now"), now);
        sqlite3_bind_double(s, param(s, ":lease_now"), tm_clock_unix());
        sqlite3_bind_int(s, param(s, ":limit"), limit);
        sqlite3_bind_text(s, param(s, ":cmsg"), CANCELLED_MSG, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, param(s, ":pre"), CRASHED_PRE, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, param(s, ":post"), CRASHED_POST, -1, SQLITE_STATIC);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
            if (found < limit) {
                read_job(s, &got[found]);
                copy_text(clients[found], TM_CLIENT_SIZE, s, N_JOB_COLS);
                requeued += got[found].state == TM_JOB_QUEUED;
                found++;
            }
        if (rc != SQLITE_DONE)
            st = sqerr(q->w, err, "rescue jobs");
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->wlock);
    if (!st) {
        *n = found;
        /* RETURNING's order is SQLite's choice: the callbacks go by seq. */
        for (int64_t i = 1; i < found; i++)
            for (int64_t k = i; k > 0 && got[k].seq < got[k - 1].seq; k--) {
                struct tm_job_record tj = got[k];
                got[k] = got[k - 1];
                got[k - 1] = tj;
                char tc[TM_CLIENT_SIZE];
                memcpy(tc, clients[k], sizeof(tc));
                memcpy(clients[k], clients[k - 1], sizeof(tc));
                memcpy(clients[k - 1], tc, sizeof(tc));
            }
        for (int64_t i = 0; fn && i < found; i++)
            fn(fn_ctx, &got[i], clients[i]);
        if (requeued)
            tm__store_listeners_wake(&q->listeners, TM_STORE_WAKE_JOBS);
    }
    tm_free(got);
    tm_free(clients);
    return st;
}

static tm_status sq_job_cancel(void *ctx, const char *id, double now, struct tm_job_record *out,
                               int *applied, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    int row = 0;
    *applied = 0;
    pthread_mutex_lock(&q->wlock);
    tm_status st = prep(q->w,
                        "UPDATE jobs SET"
                        " cancel_requested = CASE WHEN state = :running THEN 1"
                        " ELSE cancel_requested END,"
                        " finished_at = CASE WHEN state = :queued THEN :now ELSE finished_at END,"
                        " error_code = CASE WHEN state = :queued THEN 'cancelled'"
                        " ELSE error_code END,"
                        " error_message = CASE WHEN state = :queued THEN :msg"
                        " ELSE error_message END,"
                        " state = CASE WHEN state = :queued THEN :cancelled ELSE state END"
                        " WHERE id = :id AND state IN (:queued, :running) RETURNING " JOB_COLS,
                        &s, err);
    if (!st) {
        sqlite3_bind_int(s, param(s, ":running"), TM_JOB_RUNNING);
        sqlite3_bind_int(s, param(s, ":queued"), TM_JOB_QUEUED);
        sqlite3_bind_int(s, param(s, ":cancelled"), TM_JOB_CANCELLED);
        sqlite3_bind_double(s, param(s, ":now"), now);
        sqlite3_bind_text(s, param(s, ":msg"), CANCELLED_MSG, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, param(s, ":id"), id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            read_job(s, out);
            *applied = 1;
            while ((rc = sqlite3_step(s)) == SQLITE_ROW)
                ;
        }
        if (rc != SQLITE_DONE)
            st = sqerr(q->w, err, "cancel job");
    }
    sqlite3_finalize(s);
    s = NULL;
    if (!st && !*applied) {
        st = select_by_key(q->w, "SELECT " JOB_COLS " FROM jobs WHERE id = ?", id, "get job", &s,
                           &row, err);
        if (!st && row)
            read_job(s, out);
        else if (!st)
            st = tm_errf(err, TM_ENOTFOUND, "job '%s' not found", id);
        sqlite3_finalize(s);
    }
    pthread_mutex_unlock(&q->wlock);
    if (!st && *applied && out->state == TM_JOB_RUNNING)
        tm__store_listeners_wake(&q->listeners, TM_STORE_WAKE_CANCEL);
    return st;
}

static tm_status sq_job_count_queued(void *ctx, int64_t *n, char *err)
{
    struct sq *q = ctx;
    pthread_mutex_lock(&q->rlock);
    tm_status st = count_queued(q->r, NULL, n, NULL, err);
    pthread_mutex_unlock(&q->rlock);
    return st;
}

static tm_status sq_listen(void *ctx, tm_store_wake_fn fn, void *arg, char *err)
{
    struct sq *q = ctx;
    return tm__store_listeners_add(&q->listeners, fn, arg, err);
}

static void sq_unlisten(void *ctx, void *arg)
{
    struct sq *q = ctx;
    tm__store_listeners_remove(&q->listeners, arg);
}

/* ---------------------------------------------------------------------- */
/* API keys. */

#define KEY_COLS "id, tenant, admin, hash, created_at, revoked_at, last_used_at"

static void read_key(sqlite3_stmt *s, struct tm_key_record *k)
{
    memset(k, 0, sizeof(*k));
    copy_text(k->id, sizeof(k->id), s, 0);
    copy_text(k->tenant, sizeof(k->tenant), s, 1);
    k->admin = sqlite3_column_int(s, 2);
    const void *h = sqlite3_column_blob(s, 3);
    if (h && sqlite3_column_bytes(s, 3) == TM_KEY_HASH_SIZE)
        memcpy(k->hash, h, TM_KEY_HASH_SIZE);
    k->created_at = sqlite3_column_double(s, 4);
    k->revoked_at = sqlite3_column_double(s, 5);
    k->last_used_at = sqlite3_column_double(s, 6);
}

static tm_status sq_key_create(void *ctx, const struct tm_key_record *k, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    pthread_mutex_lock(&q->wlock);
    tm_status st = prep(q->w,
                        "INSERT INTO api_keys(id, tenant, admin, hash, created_at)"
                        " VALUES(?, ?, ?, ?, ?)",
                        &s, err);
    if (!st) {
        sqlite3_bind_text(s, 1, k->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, k->tenant, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 3, k->admin);
        sqlite3_bind_blob(s, 4, k->hash, TM_KEY_HASH_SIZE, SQLITE_STATIC);
        sqlite3_bind_double(s, 5, k->created_at);
        if (sqlite3_step(s) != SQLITE_DONE)
            st = sqlite3_extended_errcode(q->w) == SQLITE_CONSTRAINT_PRIMARYKEY
                     ? tm_errf(err, TM_EBUSY, "key id '%s' exists", k->id)
                     : sqerr(q->w, err, "create key");
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->wlock);
    return st;
}

static tm_status sq_key_get(void *ctx, const char *id, struct tm_key_record *out, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    int row;
    pthread_mutex_lock(&q->rlock);
    tm_status st = select_by_key(q->r, "SELECT " KEY_COLS " FROM api_keys WHERE id = ?", id,
                                 "get key", &s, &row, err);
    if (!st && row)
        read_key(s, out);
    else if (!st)
        st = tm_errf(err, TM_ENOTFOUND, "key '%s' not found", id);
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->rlock);
    return st;
}

static tm_status sq_key_list(void *ctx, struct tm_key_record *out, int limit, int *n, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    *n = 0;
    pthread_mutex_lock(&q->rlock);
    tm_status st =
        prep(q->r, "SELECT " KEY_COLS " FROM api_keys ORDER BY created_at, id LIMIT ?", &s, err);
    if (!st) {
        sqlite3_bind_int(s, 1, limit);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < limit)
            read_key(s, &out[(*n)++]);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
            st = sqerr(q->r, err, "list keys");
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->rlock);
    return st;
}

/* UPDATE api_keys SET <set> WHERE id; TM_ENOTFOUND when no key has id. */
static tm_status key_write(struct sq *q, const char *sql, const char *id, double now, char *err)
{
    sqlite3_stmt *s = NULL;
    pthread_mutex_lock(&q->wlock);
    tm_status st = prep(q->w, sql, &s, err);
    if (!st) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_double(s, 2, now);
        if (sqlite3_step(s) != SQLITE_DONE)
            st = sqerr(q->w, err, "update key");
        else if (sqlite3_changes(q->w) == 0)
            st = tm_errf(err, TM_ENOTFOUND, "key '%s' not found", id);
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->wlock);
    return st;
}

static tm_status sq_key_revoke(void *ctx, const char *id, double now, char *err)
{
    /* A key revoked twice keeps its first revocation time. */
    return key_write(ctx,
                     "UPDATE api_keys SET revoked_at = CASE WHEN revoked_at > 0 THEN revoked_at"
                     " ELSE ?2 END WHERE id = ?1",
                     id, now, err);
}

static tm_status sq_key_touch(void *ctx, const char *id, double now, char *err)
{
    return key_write(ctx, "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1", id, now, err);
}

static tm_status sq_key_count(void *ctx, int64_t *n, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    *n = 0;
    pthread_mutex_lock(&q->rlock);
    tm_status st = prep(q->r, "SELECT count(*) FROM api_keys WHERE revoked_at = 0", &s, err);
    if (!st) {
        if (sqlite3_step(s) == SQLITE_ROW)
            *n = sqlite3_column_int64(s, 0);
        else
            st = sqerr(q->r, err, "count keys");
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->rlock);
    return st;
}

/* ---------------------------------------------------------------------- */
/* Quotas (store.h). */

static void sq_set_quotas(void *ctx, const struct tm_store_quotas *qs)
{
    struct sq *q = ctx;
    atomic_store_explicit(&q->quota_stored, qs->stored_bytes, memory_order_relaxed);
    atomic_store_explicit(&q->quota_running, qs->running, memory_order_relaxed);
}

static tm_status sq_tenant_use(void *ctx, const char *tenant, struct tm_store_use *out, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&q->rlock);
    tm_status st = stored_of(q->r, tenant, &out->stored_bytes, err);
    if (!st)
        st = prep(q->r,
                  "SELECT coalesce(sum(state = ?2), 0), coalesce(sum(state = ?3), 0) FROM jobs"
                  " WHERE tenant = ?1 AND state IN (?2, ?3)",
                  &s, err);
    if (!st) {
        sqlite3_bind_text(s, 1, tenant, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, TM_JOB_QUEUED);
        sqlite3_bind_int(s, 3, TM_JOB_RUNNING);
        if (sqlite3_step(s) == SQLITE_ROW) {
            out->queued = sqlite3_column_int64(s, 0);
            out->running = sqlite3_column_int64(s, 1);
        } else {
            st = sqerr(q->r, err, "count jobs");
        }
    }
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->rlock);
    return st;
}

static tm_status sq_usage_top(void *ctx, struct tm_store_usage *out, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&q->rlock);
    /* One read transaction: both lists from one snapshot. */
    tm_status st = exec(q->r, "BEGIN", err);
    if (st)
        goto out;
    st = prep(q->r, "SELECT tenant, stored_bytes FROM tenant_usage ORDER BY stored_bytes DESC", &s,
              err);
    int rc = SQLITE_DONE;
    while (!st && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t v = sqlite3_column_int64(s, 1);
        if (out->n_stored < TM_STORE_USAGE_TOP) {
            copy_text(out->stored[out->n_stored].tenant, TM_TENANT_SIZE, s, 0);
            out->stored[out->n_stored++].stored_bytes = v;
        } else {
            out->stored_other += v;
        }
    }
    if (!st && rc != SQLITE_DONE)
        st = sqerr(q->r, err, "read tenant use");
    sqlite3_finalize(s);
    s = NULL;
    if (!st)
        st = prep(q->r,
                  "SELECT tenant, sum(state = ?1), sum(state = ?2) FROM jobs"
                  " WHERE state IN (?1, ?2) GROUP BY tenant ORDER BY count(*) DESC, tenant",
                  &s, err);
    if (!st) {
        sqlite3_bind_int(s, 1, TM_JOB_QUEUED);
        sqlite3_bind_int(s, 2, TM_JOB_RUNNING);
    }
    while (!st && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t qd = sqlite3_column_int64(s, 1), rn = sqlite3_column_int64(s, 2);
        if (out->n_jobs < TM_STORE_USAGE_TOP) {
            copy_text(out->jobs[out->n_jobs].tenant, TM_TENANT_SIZE, s, 0);
            out->jobs[out->n_jobs].queued = qd;
            out->jobs[out->n_jobs++].running = rn;
        } else {
            out->queued_other += qd;
            out->running_other += rn;
        }
    }
    if (!st && rc != SQLITE_DONE)
        st = sqerr(q->r, err, "count jobs");
    sqlite3_finalize(s);
    sqlite3_exec(q->r, "COMMIT", NULL, NULL, NULL);
out:
    pthread_mutex_unlock(&q->rlock);
    return st;
}

/* ---------------------------------------------------------------------- */
/* Secrets. */

/* INSERT OR IGNORE then read back, both under the write lock: the one
 * process of a data directory decides alone. */
static tm_status sq_secret(void *ctx, const char *name, const unsigned char *fresh,
                           unsigned char *out, char *err)
{
    struct sq *q = ctx;
    sqlite3_stmt *s = NULL;
    pthread_mutex_lock(&q->wlock);
    tm_status st = prep(
        q->w, "INSERT OR IGNORE INTO secrets(name, value, created_at) VALUES(?, ?, ?)", &s, err);
    if (!st) {
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 2, fresh, TM_STORE_SECRET_SIZE, SQLITE_STATIC);
        sqlite3_bind_double(s, 3, tm_clock_unix());
        if (sqlite3_step(s) != SQLITE_DONE)
            st = sqerr(q->w, err, "store secret");
    }
    sqlite3_finalize(s);
    s = NULL;
    int row = 0;
    if (!st)
        st = select_by_key(q->w, "SELECT value FROM secrets WHERE name = ?", name, "read secret",
                           &s, &row, err);
    if (!st && (!row || sqlite3_column_bytes(s, 0) != TM_STORE_SECRET_SIZE))
        st = tm_errf(err, TM_EIO, "store: the secret '%s' is missing or damaged", name);
    if (!st)
        memcpy(out, sqlite3_column_blob(s, 0), TM_STORE_SECRET_SIZE);
    sqlite3_finalize(s);
    pthread_mutex_unlock(&q->wlock);
    return st;
}

static const struct tm_store_methods sqlite_methods = {
    .name = "sqlite",
    .close = sq_close,
    .ping = sq_ping,
    .corpus_create = sq_corpus_create,
    .corpus_append = sq_corpus_append,
    .corpus_commit = sq_corpus_commit,
    .corpus_adopt = sq_corpus_adopt,
    .corpus_delete = sq_corpus_delete,
    .corpus_get = sq_corpus_get,
    .corpus_list = sq_corpus_list,
    .corpus_load = sq_corpus_load,
    .corpus_docs_page = sq_corpus_docs_page,
    .job_insert = sq_job_insert,
    .job_by_idem = sq_job_by_idem,
    .job_update = sq_job_update,
    .job_finish = sq_job_finish,
    .job_get = sq_job_get,
    .job_spec = sq_job_spec,
    .job_result = sq_job_result,
    .job_doc_topics = sq_job_doc_topics,
    .job_model = sq_job_model,
    .job_list = sq_job_list,
    .job_scan = sq_job_scan,
    .corpus_jobs_active = sq_corpus_jobs_active,
    .job_delete = sq_job_delete,
    .job_expire = sq_job_expire,
    .job_submit = sq_job_submit,
    .job_claim = sq_job_claim,
    .job_renew = sq_job_renew,
    .job_progress = sq_job_progress,
    .job_rescue = sq_job_rescue,
    .job_cancel = sq_job_cancel,
    .job_count_queued = sq_job_count_queued,
    .listen = sq_listen,
    .unlisten = sq_unlisten,
    .key_create = sq_key_create,
    .key_get = sq_key_get,
    .key_list = sq_key_list,
    .key_revoke = sq_key_revoke,
    .key_count = sq_key_count,
    .key_touch = sq_key_touch,
    .set_quotas = sq_set_quotas,
    .tenant_use = sq_tenant_use,
    .usage_top = sq_usage_top,
    .secret = sq_secret,
};

static tm_status open_db(const char *path, sqlite3 **db, char *err)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, db, flags, NULL) != SQLITE_OK) {
        tm_status st = tm_errf(err, TM_EIO, "store: cannot open %s: %s", path,
                               *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return st;
    }
    sqlite3_busy_timeout(*db, 10000);
    /* The first read of the file: a damaged one fails here, named. */
    if (sqlite3_exec(*db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL))
        return sqerr(*db, err, path);
    return TM_OK;
}

/*
 * Start-up checks of an existing store file, so that a damaged one stops
 * the server with a message that says what to do, and is never answered
 * with errors request after request, nor replaced by an empty store.
 * check_header, before SQLite opens the file: SQLite's magic string, and
 * a file shorter than the page count its header states (truncated; only
 * without a WAL file, as a checkpoint a crash interrupted may have written
 * page 1 before the pages that extend the file, which the WAL still
 * holds). Then quick_check, once SQLite has opened the file: SQLite's
 * PRAGMA quick_check over every page, O(file size), so only up to
 * QUICK_CHECK_MAX_BYTES (seconds from a cold disk); a larger store is
 * checked by its header and schema only, and damage found later is
 * answered 503 with DAMAGED_HINT. Both run before the migration, which
 * writes.
 */
#define QUICK_CHECK_MAX_BYTES ((int64_t)256 << 20)

static tm_status damaged(char *err, const char *path, const char *why)
{
    return tm_errf(err, TM_EIO, "store: %s is damaged: " DAMAGED_HINT " (%s)", path, why);
}

static tm_status check_header(const char *path, int64_t *size, char *err)
{
    struct stat sb;
    *size = 0;
    if (stat(path, &sb) || sb.st_size == 0)
        return TM_OK; /* a new store; an empty file is one SQLite never wrote to */
    *size = (int64_t)sb.st_size;
    unsigned char h[100];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tm_errf(err, TM_EIO, "store: cannot open %s: %s", path, strerror(errno));
    ssize_t n = pread(fd, h, sizeof(h), 0);
    close(fd);
    if (n != (ssize_t)sizeof(h) || memcmp(h, "SQLite format 3", 16))
        return damaged(err, path, "its header is not an SQLite database's");
    int64_t page = h[16] << 8 | h[17];
    if (page == 1)
        page = 65536;
    uint32_t change = (uint32_t)h[24] << 24 | (uint32_t)h[25] << 16 | (uint32_t)h[26] << 8 | h[27];
    uint32_t pages = (uint32_t)h[28] << 24 | (uint32_t)h[29] << 16 | (uint32_t)h[30] << 8 | h[31];
    uint32_t valid_for =
        (uint32_t)h[92] << 24 | (uint32_t)h[93] << 16 | (uint32_t)h[94] << 8 | h[95];
    if (page < 512 || (page & (page - 1)))
        return damaged(err, path, "its header states no valid page size");
    char wal[4200];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    int has_wal = !stat(wal, &sb) && sb.st_size > 0;
    if (!has_wal && change == valid_for && (int64_t)pages * page > *size) {
        char why[128];
        snprintf(why, sizeof(why), "truncated: %lld of the %lld bytes its header states",
                 (long long)*size, (long long)pages * page);
        return damaged(err, path, why);
    }
    return TM_OK;
}

static tm_status quick_check(struct sq *q, const char *path, int64_t size, char *err)
{
    if (size > QUICK_CHECK_MAX_BYTES)
        return TM_OK;
    sqlite3_stmt *s = NULL;
    tm_status st = prep(q->w, "PRAGMA quick_check(1)", &s, err);
    if (st)
        return st;
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        st = sqerr(q->w, err, "quick_check");
    } else {
        const char *res = (const char *)sqlite3_column_text(s, 0);
        if (!res || strcmp(res, "ok")) {
            char why[160];
            const char *banner = "*** in database main ***\n";
            if (res && !strncmp(res, banner, strlen(banner)))
                res += strlen(banner);
            snprintf(why, sizeof(why), "PRAGMA quick_check: %s", res ? res : "no answer");
            for (char *c = why; *c; c++)
                if (*c == '\n')
                    *c = ' ';
            st = damaged(err, path, why);
        }
    }
    sqlite3_finalize(s);
    return st;
}

/* Takes dir/topicd.lock for q (see store.h); the pid of the holder goes in
 * the file so that a refused process can name it. */
static tm_status take_dir_lock(struct sq *q, const char *dir, char *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/topicd.lock", dir) >= sizeof(path))
        return tm_errf(err, TM_EINVAL, "store: data directory path too long");
    q->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (q->lock_fd < 0)
        return tm_errf(err, TM_EIO, "store: cannot open %s: %s", path, strerror(errno));
    if (flock(q->lock_fd, LOCK_EX | LOCK_NB)) {
        int e = errno;
        if (e != EWOULDBLOCK)
            return tm_errf(err, TM_EIO, "store: cannot lock %s: %s", path, strerror(e));
        char pid[32] = "";
        ssize_t n = pread(q->lock_fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        return tm_errf(err, TM_EBUSY,
                       "data dir %s is in use by another topicd (pid %s): run one process per"
                       " data dir, or share a PostgreSQL store (--store postgresql://...)",
                       dir, pid[0] ? pid : "unknown");
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(q->lock_fd, 0) || pwrite(q->lock_fd, pid, (size_t)len, 0) != len)
        return tm_errf(err, TM_EIO, "store: cannot write %s: %s", path, strerror(errno));
    return TM_OK;
}

/* Brings the schema up to TM_STORE_SCHEMA_VERSION, expires the leases of
 * jobs left running and deletes the uploads a crash interrupted (their
 * documents would otherwise leak), in one write transaction on q->w: BEGIN
 * IMMEDIATE takes the write lock first, so two opens never migrate at once. */
static tm_status migrate(struct sq *q, const char *dir, char *err)
{
    sqlite3_stmt *s = NULL;
    tm_status st = exec(q->w, "BEGIN IMMEDIATE", err);
    if (st)
        return st;
    st = prep(q->w, "PRAGMA user_version", &s, err);
    if (st)
        goto end;
    int version = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    sqlite3_finalize(s);
    if (version > TM_STORE_SCHEMA_VERSION) {
        st = tm_errf(err, TM_EIO,
                     "store: %s/topicd.db has schema version %d, newer than this topicd knows"
                     " (%d): run the newer topicd that wrote it",
                     dir, version, TM_STORE_SCHEMA_VERSION);
        goto end;
    }
    if (version < 1) {
        /* Version 0: a new file, or a store from before versions. The DDL
         * is idempotent, and the columns added since the first stores are
         * added here (an error just means a column is there already). */
        st = exec(q->w, schema, err);
        if (st)
            goto end;
        sqlite3_exec(q->w, "ALTER TABLE doc_topics ADD COLUMN ids BLOB", NULL, NULL, NULL);
        /* Older jobs all share the fairness key "". */
        sqlite3_exec(q->w, "ALTER TABLE jobs ADD COLUMN client TEXT NOT NULL DEFAULT ''", NULL,
                     NULL, NULL);
    }
    if (version < 2) {
        st = exec(q->w, schema_v2, err);
        if (st)
            goto end;
    }
    if (version < 3) {
        st = exec(q->w, schema_v3, err);
        if (st)
            goto end;
    }
    if (version < 4) {
        st = exec(q->w, schema_v4, err);
        if (st)
            goto end;
    }
    if (version < 5) {
        st = exec(q->w, schema_v5, err);
        if (st)
            goto end;
    }
    if (version < 6) {
        st = exec(q->w, schema_v6, err);
        if (st)
            goto end;
    }
    if (version < TM_STORE_SCHEMA_VERSION) {
        char set[64];
        snprintf(set, sizeof(set), "PRAGMA user_version = %d", TM_STORE_SCHEMA_VERSION);
        st = exec(q->w, set, err);
        if (st)
            goto end;
    }
    /* This process holds the data directory: whoever left jobs running
     * is gone, and their leases are over. */
    char expire[96];
    snprintf(expire, sizeof(expire), "UPDATE jobs SET lease_until = 0 WHERE state = %d",
             (int)TM_JOB_RUNNING);
    st = exec(q->w, expire, err);
    if (!st)
        st = exec(q->w,
                  "DELETE FROM documents WHERE corpus_seq IN (SELECT seq FROM corpora WHERE"
                  " ready = 0);"
                  "DELETE FROM corpora WHERE ready = 0;",
                  err);
end:
    return end_write(q, st, err);
}

tm_status tm_store_open_sqlite(struct tm_store *s, const char *dir, char *err)
{
    memset(s, 0, sizeof(*s));
    if (mkdir(dir, 0755) && errno != EEXIST)
        return tm_errf(err, TM_EIO, "store: cannot create %s: %s", dir, strerror(errno));
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/topicd.db", dir) >= sizeof(path))
        return tm_errf(err, TM_EINVAL, "store: data directory path too long");
    struct sq *q = tm_calloc(1, sizeof(*q));
    if (!q)
        return tm_errf(err, TM_ENOMEM, "store");
    q->lock_fd = -1;
    pthread_mutex_init(&q->wlock, NULL);
    pthread_mutex_init(&q->rlock, NULL);
    tm__store_listeners_init(&q->listeners);
    int64_t size = 0;
    tm_status st = take_dir_lock(q, dir, err);
    if (!st)
        st = check_header(path, &size, err);
    if (!st)
        st = open_db(path, &q->w, err);
    if (!st)
        st = quick_check(q, path, size, err);
    if (!st)
        st = migrate(q, dir, err);
    if (!st)
        st = open_db(path, &q->r, err);
    if (st) {
        sq_close(q);
        return st;
    }
    s->m = &sqlite_methods;
    s->ctx = q;
    snprintf(s->target, sizeof(s->target), "%s", dir);
    return TM_OK;
}
