/*
 * exports.h - a job's result as the CSV files the managed topic-modeling
 * services deliver (Amazon Comprehend's topic-terms.csv and doc-topics.csv),
 * for GET /v1/jobs/{id}/topic-terms.csv and /document-topics.csv and for
 * `topicd fit --csv-dir`.
 *
 * The text is RFC 4180: a header row, CRLF after every row, a field quoted
 * when it holds a comma, a double quote, CR or LF (its quotes doubled), any
 * other byte as stored (UTF-8). Numbers read back as the value they print
 * (the shortest of %.15g/%.16g/%.17g that does, as the JSON's); a weight
 * that is not finite, which the JSON cannot carry, is written nan, inf or
 * -inf, as pandas and Python's float() read them.
 *
 * topic-terms.csv is topic,term,weight: each topic's top n_top_words terms,
 * in the order and with the weights of the result's "topics".
 * document-topics.csv is document_id,topic,weight, long (tidy) format: one
 * row per document and topic, zeros included, documents in corpus order,
 * topics by index; a document without an id is named by its 0-based index.
 * It is produced page by page (struct tm_export_dt), so any number of
 * documents streams through bounded memory: one page of weights and ids,
 * and about one read's worth of text.
 * Thread-safety: reentrant; a stream has one owner at a time.
 */
#ifndef TM_API_EXPORTS_H
#define TM_API_EXPORTS_H

#include <stddef.h>
#include <stdint.h>

#include "api/error.h"
#include "api/jbuf.h"

/* The header rows, CRLF included. */
#define TM_EXPORT_TOPIC_TERMS_HEADER "topic,term,weight\r\n"
#define TM_EXPORT_DOC_TOPICS_HEADER "document_id,topic,weight\r\n"

/* Appends n bytes of s (borrowed) as one CSV field, quoted when it must be. */
void tm_csv_field(struct tm_jbuf *b, const char *s, size_t n);
/* Appends v as a field that reads back as v (nan, inf, -inf when not finite). */
void tm_csv_double(struct tm_jbuf *b, double v);

/*
 * topic-terms.csv of a stored result's JSON (len bytes, borrowed): a row per
 * word of each topic, its "term" (a word without one, from a matrix given
 * without a vocabulary, is named by its column index) and its "weight" as
 * the JSON writes it. *out is returned owned (tm_free), *out_len bytes.
 * Errors: TM_EPARSE (not a result: e names what is missing), TM_ENOMEM.
 */
tm_status tm_export_topic_terms(const char *json, size_t len, char **out, size_t *out_len,
                                struct tm_api_error *e);

/*
 * Where document-topics.csv reads its weights from, one page at a time:
 * rows [offset, offset + limit) of the n_documents x k weights, as the
 * store's job_doc_topics gives them (server/store.h): *weights (*n rows of
 * *k, row-major) and *ids (NULL, or *n entries, NULL for a document without
 * an id) returned owned, tm_free'd by the stream; *n_documents the total.
 * TM_ENOTFOUND: there are no weights. err: TM_ERR_SIZE bytes.
 */
typedef tm_status (*tm_export_page_fn)(void *ctx, int64_t offset, int64_t limit, double **weights,
                                       char ***ids, int64_t *n, int64_t *k, int64_t *n_documents,
                                       char *err);

struct tm_export_dt;

/*
 * A document-topics.csv stream over page(ctx, ...) (both borrowed, for the
 * stream's life), which it asks for page_rows rows at a time, in order. The
 * first page is read here, so that a job without weights is known before
 * anything is sent: its status is returned (TM_ENOTFOUND: no weights; err
 * says why). *out returned owned, tm_export_dt_free.
 */
tm_status tm_export_dt_new(struct tm_export_dt **out, tm_export_page_fn page, void *ctx,
                           int64_t page_rows, char *err);
/*
 * The next bytes of the CSV into buf (max >= 1 bytes): *got of them, 0 at
 * the end. A page that cannot be read, or weights whose shape changed
 * since the first page, end it with that status (err says why): the text
 * so far is then incomplete, and the caller must make that visible (close
 * the connection, fail the file).
 */
tm_status tm_export_dt_read(struct tm_export_dt *s, char *buf, size_t max, size_t *got, char *err);
/* Pages read so far (the first one included): for tests and logs. */
int64_t tm_export_dt_pages(const struct tm_export_dt *s);
/* NULL-safe. */
void tm_export_dt_free(struct tm_export_dt *s);

#endif
