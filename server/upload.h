/*
 * upload.h - a corpus upload streaming into the store: bytes arrive in
 * chunks of any size (libmicrohttpd's upload callback), documents are cut
 * out by api/corpus.h's stream reader and written in batches, so memory per
 * upload is one batch plus one document, whatever the body's size. A JSON
 * body up to max_json_bytes is parsed whole (api/'s rules and positions
 * exactly); a larger one goes to the same stream reader in its JSON mode,
 * which cuts it into its documents as they arrive and reads each alone,
 * with errors naming "documents[i]": both accept the same bodies (see
 * tm_doc_stream_new).
 *
 * The documents go to a staging corpus that nobody sees: a new corpus is
 * committed by tm_upload_finish, an append is adopted by its target in one
 * transaction, and an upload that fails or is abandoned is deleted, so a
 * half-received body never becomes visible.
 * Text must be valid UTF-8 (RFC 8259 requires it of JSON, and an API should
 * refuse rather than silently replace): TM_EPARSE naming the document.
 * Thread-safety: one owner at a time.
 */
#ifndef TM_SERVER_UPLOAD_H
#define TM_SERVER_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "api/corpus.h"
#include "store.h"

struct tm_upload_limits {
    int64_t max_body_bytes; /* the whole body, every format */
    int64_t max_json_bytes; /* a JSON body up to this is parsed whole, past it split */
    int64_t max_doc_bytes;  /* the text of one document */
};

struct tm_upload;

/*
 * Creates the staging corpus. target: NULL for a new corpus, else the
 * committed corpus to append to (checked at finish: TM_ENOTFOUND). tenant:
 * the new corpus's owner (NULL or "": "default"). format:
 * JSONL, LINES or JSON; AUTO defers the choice to tm_upload_set_format
 * (multipart parts). store: borrowed for the upload's life; limits: copied.
 * *out owned (tm_upload_free). Errors: the store's (TM_EIO), TM_ENOMEM.
 */
tm_status tm_upload_new(struct tm_upload **out, struct tm_store *store, const char *target,
                        const char *tenant, enum tm_corpus_format format,
                        const struct tm_upload_limits *limits, struct tm_api_error *e);

/* Chooses the format before the first feed, when created with AUTO. */
tm_status tm_upload_set_format(struct tm_upload *u, enum tm_corpus_format format,
                               struct tm_api_error *e);

/*
 * The next len bytes of the body (borrowed; any split). Complete documents
 * are written to the staging corpus in batches. Errors: TM_ETOOBIG past
 * max_body_bytes or a document limit; TM_EPARSE (malformed input, invalid
 * UTF-8) and TM_EINVAL (a wrong shape, or no format chosen), with the field
 * naming the line or "documents[i]"; the store's; TM_ENOMEM. After an error
 * the upload can only be freed.
 */
tm_status tm_upload_feed(struct tm_upload *u, const char *data, size_t len, struct tm_api_error *e);

/* End of body: reads what is left (a whole small JSON body, a last line),
 * flushes, commits or adopts; *out the corpus as it now is. Errors as
 * tm_upload_feed's, and TM_EINVAL when no format was ever chosen. */
tm_status tm_upload_finish(struct tm_upload *u, struct tm_corpus_record *out,
                           struct tm_api_error *e);

/* 1 when the store refused the upload for its tenant's stored-bytes quota
 * (store.h): a batch, then the rest of the body is read and dropped, or
 * the commit; tm_upload_finish then fails with TM_ETOOBIG and the store's
 * message, and nothing of the upload stays stored. */
int tm_upload_over_quota(const struct tm_upload *u);

/* The tenant the upload is stored under ("default" for none given). */
const char *tm_upload_tenant(const struct tm_upload *u);

/* Deletes the staging corpus unless finished. NULL-safe. */
void tm_upload_free(struct tm_upload *u);

#endif
