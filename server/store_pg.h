/*
 * store_pg.h - what `topicd store copy` (store_copy.c) needs of the
 * PostgreSQL driver beyond store.h: writing records as another store holds
 * them, with their seqs, keys, specs and results, so that ids, order and
 * cursors survive the move.
 * Thread-safety: as store.h's methods.
 */
#ifndef TM_SERVER_STORE_PG_H
#define TM_SERVER_STORE_PG_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* A document source: fills *doc (borrowed until the next call) and returns
 * 1, 0 at the end, -1 on an error (in err). */
typedef int (*tm_store_doc_fn)(void *ctx, struct tm_store_doc *doc, char *err);

/* A job as a store holds it; every pointer borrowed. */
struct tm_store_job_row {
    struct tm_job_record rec; /* seq included */
    const char *spec;
    size_t spec_len;
    const char *idem_key; /* NULL: none */
    const char *client;
    const char *result; /* NULL: none */
    size_t result_len;
    const char *model; /* the job's model file (store.h, job_model); NULL: none */
    size_t model_len;
    int64_t n_documents, n_topics; /* of the document-topic weights; 0 without */
};

/* The document-topic chunks of the job whose seq is job_seq, in chunk
 * order: the first call for a job starts at its first chunk. Returns 1 with
 * *chunk, *weights and *ids (NULL: none) borrowed until the next call, 0 at
 * the end, -1 on an error (in err). */
typedef int (*tm_store_chunk_fn)(void *ctx, int64_t job_seq, int64_t *chunk, const void **weights,
                                 size_t *weights_len, const void **ids, size_t *ids_len, char *err);

/*
 * Writes the committed corpus c, seq and all, with the documents next
 * gives, in one transaction. When the store holds c already (same id, seq,
 * counts, hidden flag and creation time), nothing is written and *present
 * is 1. TM_EBUSY when it holds a different corpus under c's id or seq.
 */
tm_status tm__store_pg_import_corpus(struct tm_store *s, const struct tm_corpus_record *c,
                                     tm_store_doc_fn next, void *ctx, int *present, char *err);

/*
 * Writes n jobs, seqs and all, with the chunks `chunks` gives for each, in
 * one transaction, and moves the jobs' seq counter past them. A job the
 * store holds already (same id, seq, state, attempts, times, sizes) is
 * skipped and counted in *skipped. TM_EBUSY when the store holds a
 * different job under a job's id, seq or idempotency key.
 */
tm_status tm__store_pg_import_jobs(struct tm_store *s, const struct tm_store_job_row *jobs, int n,
                                   tm_store_chunk_fn chunks, void *ctx, int *skipped, char *err);

/* Up to limit corpora in any state (uploading and hidden included) with
 * seq > after_seq, by seq; *n found. */
tm_status tm__store_pg_corpus_list_all(struct tm_store *s, int64_t after_seq, int limit,
                                       struct tm_corpus_record *out, int *n, char *err);

#endif
