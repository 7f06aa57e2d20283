/*
 * store_copy.c - `topicd store copy` (see store_copy.h).
 *
 * The source is read with a read-only SQLite connection of its own, in one
 * read transaction, after tm_store_open_sqlite has taken the directory's
 * lock and brought the schema to TM_STORE_SCHEMA_VERSION: the SELECTs below
 * read that version of store_sqlite.c's tables. The target is written
 * through store_pg.h, which keeps the PostgreSQL SQL in store_pg.c.
 */
#include "store_copy.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "store.h"
#include "store_pg.h"

#define COPY_BATCH_JOBS 64
#define COPY_BATCH_BYTES ((size_t)32 << 20)

struct src {
    sqlite3 *db;
    sqlite3_stmt *docs;   /* a corpus's documents */
    sqlite3_stmt *chunks; /* a job's document-topic chunks */
    int64_t chunks_seq;   /* the job chunks is bound to; 0: none */
};

static tm_status sqerr(struct src *s, const char *what, char *err)
{
    return tm_errf(err, TM_EIO, "store copy: %s: %s", what, sqlite3_errmsg(s->db));
}

static const char *col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}

static void copy_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    snprintf(dst, size, "%s", col_text(st, col));
}

/* tm_store_doc_fn over src->docs. */
static int next_doc(void *ctx, struct tm_store_doc *d, char *err)
{
    struct src *s = ctx;
    int rc = sqlite3_step(s->docs);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW) {
        sqerr(s, "read documents", err);
        return -1;
    }
    memset(d, 0, sizeof(*d));
    if (sqlite3_column_type(s->docs, 0) != SQLITE_NULL) {
        d->id = col_text(s->docs, 0);
        d->id_len = (size_t)sqlite3_column_bytes(s->docs, 0);
    }
    d->text = sqlite3_column_blob(s->docs, 1);
    d->len = (size_t)sqlite3_column_bytes(s->docs, 1);
    if (!d->text)
        d->text = "";
    return 1;
}

/* tm_store_chunk_fn over src->chunks. */
static int next_chunk(void *ctx, int64_t job_seq, int64_t *chunk, const void **weights,
                      size_t *weights_len, const void **ids, size_t *ids_len, char *err)
{
    struct src *s = ctx;
    if (s->chunks_seq != job_seq) {
        sqlite3_reset(s->chunks);
        sqlite3_bind_int64(s->chunks, 1, job_seq);
        s->chunks_seq = job_seq;
    }
    int rc = sqlite3_step(s->chunks);
    if (rc == SQLITE_DONE) {
        s->chunks_seq = 0;
        return 0;
    }
    if (rc != SQLITE_ROW) {
        sqerr(s, "read document topics", err);
        return -1;
    }
    *chunk = sqlite3_column_int64(s->chunks, 0);
    *weights = sqlite3_column_blob(s->chunks, 1);
    *weights_len = (size_t)sqlite3_column_bytes(s->chunks, 1);
    int has_ids = sqlite3_column_type(s->chunks, 2) != SQLITE_NULL;
    *ids = has_ids ? sqlite3_column_blob(s->chunks, 2) : NULL;
    *ids_len = has_ids ? (size_t)sqlite3_column_bytes(s->chunks, 2) : 0;
    if (has_ids && !*ids)
        *ids = "";
    return 1;
}

/* 1 when the source holds a committed corpus (table "corpora") or a job
 * ("jobs") with this id and seq; -1 on an error. */
static int in_source(struct src *s, const char *table, const char *id, int64_t seq)
{
    char q[160];
    snprintf(q, sizeof(q), "SELECT count(*) FROM %s WHERE id = ? AND seq = ?%s", table,
             strcmp(table, "corpora") ? "" : " AND ready = 1");
    sqlite3_stmt *st = NULL;
    int found = -1;
    if (sqlite3_prepare_v2(s->db, q, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, seq);
        if (sqlite3_step(st) == SQLITE_ROW)
            found = sqlite3_column_int(st, 0) > 0;
    }
    sqlite3_finalize(st);
    return found;
}

/* The target may hold only records of the source (a copy run before):
 * anything else means it is not the empty store a copy is for. */
static tm_status check_target(struct src *s, struct tm_store *dst, char *err)
{
    struct tm_corpus_record cs[64];
    int64_t after = 0;
    for (int n = 64; n == 64;) {
        tm_status st = tm__store_pg_corpus_list_all(dst, after, 64, cs, &n, err);
        if (st)
            return st;
        for (int i = 0; i < n; i++) {
            int in = in_source(s, "corpora", cs[i].id, cs[i].seq);
            if (in < 0)
                return sqerr(s, "find corpus", err);
            if (!in)
                return tm_errf(err, TM_EBUSY,
                               "the target holds corpus '%s' (seq %lld), which the source does"
                               " not: copy into an empty store, or into one an earlier copy of"
                               " this source filled",
                               cs[i].id, (long long)cs[i].seq);
        }
        after = n ? cs[n - 1].seq : after;
    }
    struct tm_job_record js[64];
    after = 0;
    for (int n = 64; n == 64;) {
        tm_status st = dst->m->job_list(dst->ctx, NULL, -1, after, 64, js, &n, err);
        if (st)
            return st;
        for (int i = 0; i < n; i++) {
            int in = in_source(s, "jobs", js[i].id, js[i].seq);
            if (in < 0)
                return sqerr(s, "find job", err);
            if (!in)
                return tm_errf(err, TM_EBUSY,
                               "the target holds job '%s' (seq %lld), which the source does"
                               " not: copy into an empty store, or into one an earlier copy of"
                               " this source filled",
                               js[i].id, (long long)js[i].seq);
        }
        after = n ? js[n - 1].seq : after;
    }
    return TM_OK;
}

static tm_status copy_corpora(struct src *s, struct tm_store *dst,
                              struct tm_store_copy_stats *stats, char *err)
{
    sqlite3_stmt *list = NULL;
    tm_status st = TM_OK;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT seq, id, hidden, n_documents, bytes, created_at, tenant"
                           " FROM corpora WHERE ready = 1 ORDER BY seq",
                           -1, &list, NULL) != SQLITE_OK)
        return sqerr(s, "list corpora", err);
    int rc;
    while (!st && (rc = sqlite3_step(list)) == SQLITE_ROW) {
        struct tm_corpus_record c;
        memset(&c, 0, sizeof(c));
        c.seq = sqlite3_column_int64(list, 0);
        copy_text(c.id, sizeof(c.id), list, 1);
        c.hidden = sqlite3_column_int(list, 2);
        c.n_documents = sqlite3_column_int64(list, 3);
        c.bytes = sqlite3_column_int64(list, 4);
        c.created_at = sqlite3_column_double(list, 5);
        copy_text(c.tenant, sizeof(c.tenant), list, 6);
        sqlite3_reset(s->docs);
        sqlite3_bind_int64(s->docs, 1, c.seq);
        int present = 0;
        st = tm__store_pg_import_corpus(dst, &c, next_doc, s, &present, err);
        if (!st && present) {
            stats->corpora_present++;
        } else if (!st) {
            stats->corpora++;
            stats->documents += c.n_documents;
        }
    }
    if (!st && rc != SQLITE_DONE)
        st = sqerr(s, "list corpora", err);
    sqlite3_finalize(list);
    return st;
}

/* One batch of jobs, owning the bytes its rows point to. */
struct batch {
    struct tm_store_job_row rows[COPY_BATCH_JOBS];
    char *owned[COPY_BATCH_JOBS][5]; /* spec, result, idem_key, client, model */
    int n;
    size_t bytes;
};

static void batch_clear(struct batch *b)
{
    for (int i = 0; i < b->n; i++)
        for (int j = 0; j < 5; j++)
            tm_free(b->owned[i][j]);
    b->n = 0;
    b->bytes = 0;
}

/* A copy of column col (NULL stays NULL) into *out, owned; *len its bytes. */
static tm_status dup_col(sqlite3_stmt *st, int col, char **out, size_t *len, char *err)
{
    *out = NULL;
    if (len)
        *len = 0;
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return TM_OK;
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    const void *p = sqlite3_column_blob(st, col);
    if (!(*out = tm_malloc(n + 1)))
        return tm_errf(err, TM_ENOMEM, "store copy: %zu bytes", n);
    if (n)
        memcpy(*out, p, n);
    (*out)[n] = 0;
    if (len)
        *len = n;
    return TM_OK;
}

static tm_status flush_jobs(struct src *s, struct tm_store *dst, struct batch *b,
                            struct tm_store_copy_stats *stats, char *err)
{
    if (!b->n)
        return TM_OK;
    int skipped = 0;
    tm_status st = tm__store_pg_import_jobs(dst, b->rows, b->n, next_chunk, s, &skipped, err);
    if (!st) {
        stats->jobs += b->n - skipped;
        stats->jobs_present += skipped;
    }
    batch_clear(b);
    return st;
}

static tm_status copy_jobs(struct src *s, struct tm_store *dst, struct tm_store_copy_stats *stats,
                           char *err)
{
    sqlite3_stmt *list = NULL;
    struct batch *b = tm_calloc(1, sizeof(*b));
    if (!b)
        return tm_errf(err, TM_ENOMEM, "store copy");
    tm_status st = TM_OK;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT seq, id, corpus_id, state, stage, progress, attempts,"
                           " created_at, started_at, finished_at, method, error_code,"
                           " error_message, spec, result, idem_key, client, n_documents,"
                           " n_topics, tenant, (SELECT model FROM job_models"
                           " WHERE job_seq = jobs.seq) FROM jobs ORDER BY seq",
                           -1, &list, NULL) != SQLITE_OK) {
        st = sqerr(s, "list jobs", err);
        goto out;
    }
    int rc;
    while (!st && (rc = sqlite3_step(list)) == SQLITE_ROW) {
        struct tm_store_job_row *r = &b->rows[b->n];
        char **own = b->owned[b->n];
        memset(r, 0, sizeof(*r));
        memset(own, 0, 5 * sizeof(*own));
        struct tm_job_record *j = &r->rec;
        j->seq = sqlite3_column_int64(list, 0);
        copy_text(j->id, sizeof(j->id), list, 1);
        copy_text(j->corpus_id, sizeof(j->corpus_id), list, 2);
        j->state = (enum tm_job_state)sqlite3_column_int(list, 3);
        copy_text(j->stage, sizeof(j->stage), list, 4);
        j->progress = sqlite3_column_double(list, 5);
        j->attempts = sqlite3_column_int(list, 6);
        j->created_at = sqlite3_column_double(list, 7);
        j->started_at = sqlite3_column_double(list, 8);
        j->finished_at = sqlite3_column_double(list, 9);
        copy_text(j->method, sizeof(j->method), list, 10);
        copy_text(j->error_code, sizeof(j->error_code), list, 11);
        copy_text(j->error_message, sizeof(j->error_message), list, 12);
        copy_text(j->tenant, sizeof(j->tenant), list, 19);
        if (j->state == TM_JOB_RUNNING) {
            /* Its process is gone (the lock says so): back in the queue, as
             * a server's start-up recovery puts it, the attempt counted. */
            j->state = TM_JOB_QUEUED;
            j->started_at = 0;
            j->stage[0] = 0;
            j->progress = 0;
            stats->requeued++;
        }
        size_t spec_len = 0, result_len = 0, model_len = 0;
        st = dup_col(list, 13, &own[0], &spec_len, err);
        if (!st)
            st = dup_col(list, 14, &own[1], &result_len, err);
        if (!st)
            st = dup_col(list, 15, &own[2], NULL, err);
        if (!st)
            st = dup_col(list, 16, &own[3], NULL, err);
        if (!st)
            st = dup_col(list, 20, &own[4], &model_len, err);
        b->n++;
        if (st)
            break;
        r->spec = own[0] ? own[0] : "";
        r->spec_len = spec_len;
        r->result = own[1];
        r->result_len = result_len;
        r->idem_key = own[2];
        r->client = own[3] ? own[3] : "";
        r->n_documents = sqlite3_column_int64(list, 17);
        r->n_topics = sqlite3_column_int64(list, 18);
        r->model = own[4];
        r->model_len = model_len;
        b->bytes += spec_len + result_len + model_len;
        if (b->n == COPY_BATCH_JOBS || b->bytes >= COPY_BATCH_BYTES)
            st = flush_jobs(s, dst, b, stats, err);
    }
    if (!st && rc != SQLITE_DONE)
        st = sqerr(s, "list jobs", err);
    if (!st)
        st = flush_jobs(s, dst, b, stats, err);
out:
    batch_clear(b);
    tm_free(b);
    sqlite3_finalize(list);
    return st;
}

/* The API keys (their hashes; revoked ones too, as revoked): a key the
 * target holds already, by id, is skipped. */
static tm_status copy_keys(struct tm_store *src, struct tm_store *dst,
                           struct tm_store_copy_stats *stats, char *err)
{
    enum { MAX_KEYS = 4096 };
    struct tm_key_record *k = tm_calloc(MAX_KEYS, sizeof(*k));
    if (!k)
        return tm_errf(err, TM_ENOMEM, "store copy");
    int n = 0;
    tm_status st = src->m->key_list(src->ctx, k, MAX_KEYS, &n, err);
    if (!st && n == MAX_KEYS)
        st = tm_errf(err, TM_ETOOBIG, "store copy: more than %d API keys", MAX_KEYS);
    for (int i = 0; !st && i < n; i++) {
        struct tm_key_record have;
        st = dst->m->key_get(dst->ctx, k[i].id, &have, err);
        if (!st) {
            stats->keys_present++;
            continue;
        }
        if (st != TM_ENOTFOUND)
            break;
        st = dst->m->key_create(dst->ctx, &k[i], err);
        if (!st && k[i].revoked_at > 0)
            st = dst->m->key_revoke(dst->ctx, k[i].id, k[i].revoked_at, err);
        if (!st && k[i].last_used_at > 0)
            st = dst->m->key_touch(dst->ctx, k[i].id, k[i].last_used_at, err);
        if (!st)
            stats->keys++;
    }
    tm_free(k);
    return st;
}

tm_status tm_store_copy(const char *data_dir, const char *url, struct tm_store_copy_stats *stats,
                        char *err)
{
    struct tm_store_copy_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof(*stats));
    struct tm_store src_store, dst;
    struct src s;
    memset(&s, 0, sizeof(s));
    memset(&dst, 0, sizeof(dst));
    enum tm_store_driver driver;
    tm_status st = tm_store_parse(url, NULL, &driver, NULL, NULL, err);
    if (!st && driver != TM_STORE_PG)
        st = tm_errf(err, TM_EINVAL, "store copy: --to must name a PostgreSQL store");
    if (st)
        return st;
    /* The lock (a server on the directory makes this TM_EBUSY) and the
     * schema's current version. */
    st = tm_store_open_sqlite(&src_store, data_dir, err);
    if (st)
        return st;
    char path[4096];
    snprintf(path, sizeof(path), "%s/topicd.db", data_dir);
    if (sqlite3_open_v2(path, &s.db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        st = sqerr(&s, "open", err);
        goto out;
    }
    /* One read transaction: one snapshot of the whole source. */
    if (sqlite3_exec(s.db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s.db,
                           "SELECT doc_id, text FROM documents WHERE corpus_seq = ?"
                           " ORDER BY pos",
                           -1, &s.docs, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s.db,
                           "SELECT chunk, weights, ids FROM doc_topics WHERE job_seq = ?"
                           " ORDER BY chunk",
                           -1, &s.chunks, NULL) != SQLITE_OK) {
        st = sqerr(&s, "read", err);
        goto out;
    }
    st = tm_store_open(&dst, url, NULL, err);
    if (!st)
        st = check_target(&s, &dst, err);
    if (!st)
        st = copy_corpora(&s, &dst, stats, err);
    if (!st)
        st = copy_jobs(&s, &dst, stats, err);
    if (!st)
        st = copy_keys(&src_store, &dst, stats, err);
out:
    tm_store_close(&dst);
    sqlite3_finalize(s.docs);
    sqlite3_finalize(s.chunks);
    sqlite3_close(s.db);
    tm_store_close(&src_store);
    return st;
}
