/*
 * responses.h - the JSON bodies of the HTTP service that are not a job spec
 * or a job result: corpus and job records, their paginated lists, error
 * bodies, and the document-topics page. The records are plain data so that
 * server/ (its store and job table) and the renderers share one definition.
 *
 * Every renderer returns a NUL-terminated body owned by the caller (tm_free)
 * and its length, or NULL on allocation failure.
 * Thread-safety: reentrant.
 */
#ifndef TM_API_RESPONSES_H
#define TM_API_RESPONSES_H

#include <stddef.h>
#include <stdint.h>

#include "api/error.h"
#include "api/jbuf.h"
#include "api/job_state.h"

#define TM_ID_SIZE 40

/* The bytes of a tenant's name (server/keys.h), NUL included. The tenant
 * owns a corpus or job; "" in a record to be stored means "default". It is
 * not rendered. */
#define TM_TENANT_SIZE 64

struct tm_corpus_record {
    char id[TM_ID_SIZE];
    int64_t seq; /* creation order, the listing cursor */
    int64_t n_documents;
    int64_t bytes;     /* text bytes stored */
    double created_at; /* Unix seconds */
    int hidden;        /* 1: inline documents of one job, not listed */
    char tenant[TM_TENANT_SIZE];
};

struct tm_job_record {
    char id[TM_ID_SIZE];
    int64_t seq; /* submission order: FIFO and the listing cursor */
    char corpus_id[TM_ID_SIZE];
    enum tm_job_state state;
    char stage[32];  /* core's last reported stage ("tokenize", "nmf"), or "" */
    double progress; /* fraction of the whole job in [0, 1] */
    int attempts;    /* runs started, including those a crash interrupted */
    double created_at, started_at, finished_at; /* Unix seconds, 0 = not yet */
    char method[24];                            /* "nmf", ...: for metrics and listings */
    char error_code[32];                        /* when failed or cancelled */
    char error_message[320];
    char tenant[TM_TENANT_SIZE];
};

char *tm_render_corpus(const struct tm_corpus_record *c, size_t *len);
/* A record's body rendered into out (size bytes, borrowed) without
 * allocating, for the answer to a change already committed, which must not
 * fail for want of memory: its length, 0 when it does not fit.
 * TM_RECORD_BODY_SIZE holds any corpus record and any job record. */
#define TM_RECORD_BODY_SIZE 4096
size_t tm_render_corpus_to(const struct tm_corpus_record *c, char *out, size_t size);
size_t tm_render_job_to(const struct tm_job_record *j, char *out, size_t size);
/* next: the cursor of the next page, NULL on the last one. */
char *tm_render_corpus_list(const struct tm_corpus_record *c, int n, const char *next, size_t *len);
char *tm_render_job(const struct tm_job_record *j, size_t *len);
char *tm_render_job_list(const struct tm_job_record *j, int n, const char *next, size_t *len);

/* {"error":{"code","message","field"}}, field omitted when NULL or empty. */
char *tm_render_error(const char *code, const char *message, const char *field, size_t *len);

/*
 * One page of GET /v1/corpora/{id}/documents, documents offset .. offset +
 * n - 1 of n_documents: {"n_documents","offset","limit","documents":
 * [{"index","id","text","truncated"}]}. ids: NULL, or n entries (NULL for
 * none: "id":null); texts: n entries (borrowed). max_chars > 0 keeps the
 * first max_chars characters of each text ("truncated": true when that
 * cut it). *out is returned owned (tm_free), *len bytes. TM_ENOMEM only.
 */
tm_status tm_render_documents(int64_t n_documents, int64_t offset, int64_t limit, int64_t n,
                              const char *const *ids, const char *const *texts, int64_t max_chars,
                              char **out, size_t *len);

/*
 * One page of GET /v1/jobs/{id}/document-topics, documents offset ..
 * offset + n - 1 of n_documents: {"n_documents","n_topics","offset",
 * "limit","documents":[{"index","id","weights":[...]}]}. weights: n rows of
 * k values each (row-major, borrowed); ids: NULL, or n entries (borrowed);
 * a document without one gets "id":null. *out is returned owned (tm_free),
 * *len bytes. Errors: TM_ENUMERIC (a non-finite weight: no JSON form),
 * TM_ENOMEM.
 */
tm_status tm_render_document_topics(int64_t n_documents, int64_t k, int64_t offset, int64_t limit,
                                    int64_t n, const double *weights, const char *const *ids,
                                    char **out, size_t *len);

#endif
