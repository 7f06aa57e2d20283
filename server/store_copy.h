/*
 * store_copy.h - `topicd store copy`: moves a SQLite store (a data
 * directory) into a PostgreSQL store, so that a single-process deployment
 * can grow without losing its corpora, jobs and results.
 * Thread-safety: one call at a time per data directory (it takes the
 * directory's lock).
 */
#ifndef TM_SERVER_STORE_COPY_H
#define TM_SERVER_STORE_COPY_H

#include <stdint.h>

#include "core/status.h"

struct tm_store_copy_stats {
    int64_t corpora, documents, jobs;      /* copied by this run */
    int64_t corpora_present, jobs_present; /* in the target already, identical */
    int64_t requeued;                      /* running jobs copied as queued */
    int64_t keys, keys_present;            /* API keys copied, in the target already */
};

/*
 * Copies every committed corpus (documents in order) and every job (spec,
 * state, times, result, document-topic chunks, idempotency key, fairness
 * key, tenant) and every API key (its hash, revoked or not) of the SQLite
 * store in data_dir into the PostgreSQL store url names,
 * keeping ids, seqs and timestamps; a running job is copied as queued (its
 * process is gone). Takes data_dir's lock, so a server running on it makes
 * this TM_EBUSY, as does a server running on the target.
 *
 * Memory is bounded: documents and chunks stream through; jobs go in
 * batches of at most COPY_BATCH_JOBS jobs or COPY_BATCH_BYTES of specs and
 * results. Each corpus and each batch of jobs is one transaction, and a
 * record the target holds already, identical, is skipped: a copy that was
 * interrupted is finished by running it again. A target that holds
 * anything else is refused (TM_EBUSY) before anything is written.
 * stats (may be NULL) filled in. Errors: the stores' (TM_EIO, TM_EBUSY),
 * TM_EINVAL (url is not PostgreSQL), TM_ENOMEM.
 */
tm_status tm_store_copy(const char *data_dir, const char *url, struct tm_store_copy_stats *stats,
                        char *err);

#endif
