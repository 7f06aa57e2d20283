/*
 * corpus.h - documents from bytes: JSON Lines, JSON (an array of strings or
 * of {"id","text"} objects, or {"documents": [...]}), or plain lines; all
 * under hard caps. Two ways in:
 *
 *   - tm_corpus_parse: a whole buffer into an in-memory tm_corpus whose
 *     tm_doc array feeds tm_vectorize (the CLI, inline job documents);
 *   - tm_doc_stream: JSON Lines, plain lines or a JSON body fed in chunks of
 *     any size (libmicrohttpd's upload callback), each complete document
 *     handed to a sink callback (the server's store), holding at most one
 *     document's bytes in memory. A JSON body is cut into its documents by
 *     api/json_scan.h's splitter, and each is read as in a whole body.
 *
 * Text is kept as the bytes given (after JSON unescaping); invalid UTF-8 is
 * left for core/ to replace. JSON "\u0000" in a text or id is rejected:
 * documents are NUL-free. Lines end at "\n"; a "\r" before it is dropped.
 * Thread-safety: one owner at a time.
 */
#ifndef TM_API_CORPUS_H
#define TM_API_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "api/json.h"
#include "core/text/vectorize.h"

struct tm_corpus_limits {
    int64_t max_documents;     /* default 10,000,000 */
    size_t max_document_bytes; /* text of one document; default 16 MiB */
    size_t max_total_bytes;    /* input bytes in all; default 2 GiB */
};

void tm_corpus_limits_init(struct tm_corpus_limits *limits);

enum tm_corpus_format {
    TM_CORPUS_AUTO,  /* tm_corpus_parse: leading '[' or '{' -> JSON, else JSONL */
    TM_CORPUS_JSONL, /* one JSON object per line with a string "text" (and
                        optional string or integer "id"); other fields ignored;
                        blank lines skipped */
    TM_CORPUS_JSON,  /* ["...", ...], [{"id","text"}, ...] or {"documents": [...]} */
    TM_CORPUS_LINES  /* one document per line; an empty line is an empty document */
};

/* "jsonl"/"ndjson", "json", "lines"/"text" -> format; -1 when unknown. */
int tm_corpus_format_from_name(const char *name);

/* ---------------------------------------------------------------------- */
/* In-memory corpus. */

struct tm__corpus_block;

struct tm_corpus {
    int64_t n_docs;
    /* n_docs documents over the corpus's own storage: stable until release
     * (never moved by a later add). Pass to tm_vectorize as is. */
    struct tm_doc *docs;
    /* n_docs ids (NUL-terminated, owned) or NULL entries when a document has
     * none; the array itself is NULL while no document has an id. */
    char **ids;
    int64_t total_bytes; /* text bytes held */
    /* private */
    int64_t cap_docs;
    struct tm__corpus_block *blocks;
    struct tm_corpus_limits limits;
};

/* limits: copied; NULL for the defaults. */
void tm_corpus_init(struct tm_corpus *c, const struct tm_corpus_limits *limits);
void tm_corpus_release(struct tm_corpus *c);

/* Appends a copy of text (and of id when id is not NULL). A raw NUL byte in
 * text is kept (core/ treats it as a non-word character). Errors: TM_ETOOBIG
 * past a limit (field "documents[i]"), TM_EINVAL for an id holding a NUL byte
 * or longer than 256 bytes, TM_ENOMEM. */
tm_status tm_corpus_add(struct tm_corpus *c, const char *text, size_t len, const char *id,
                        size_t id_len, struct tm_api_error *e);

/* Appends from's documents (and ids) to c's, in order, moving from's
 * storage into c without copying the text; from is left empty (its limits
 * kept). For a corpus read in parts at once. Errors, with no document
 * moved: TM_ETOOBIG past c's max_documents or max_total_bytes, TM_ENOMEM. */
tm_status tm_corpus_append_take(struct tm_corpus *c, struct tm_corpus *from,
                                struct tm_api_error *e);

/*
 * Appends the documents in bytes (borrowed) to c. Errors name the place:
 * field "line 7" (JSONL, lines) or "documents[3]" / "[3].text" (JSON), with
 * the byte offset; TM_EPARSE for malformed JSON, TM_EINVAL for a wrong shape
 * (no "text", not a string, "\u0000"), TM_ETOOBIG past a limit, TM_ENOMEM.
 * On failure c keeps the documents added before the bad one.
 */
tm_status tm_corpus_parse(struct tm_corpus *c, const char *bytes, size_t len,
                          enum tm_corpus_format format, struct tm_api_error *e);

/*
 * Appends the documents of an already parsed JSON value (an array of strings
 * or of {"id","text"} objects), as found in a job spec's "documents"; field
 * paths in errors are relative ("[3].text"): prefix them. doc supplies the
 * positions. Used by spec.c; exposed for the server's JSON bodies.
 */
tm_status tm_corpus_add_json_array(struct tm_corpus *c, const struct tm_json_doc *doc,
                                   const struct cJSON *array, struct tm_api_error *e);

/* ---------------------------------------------------------------------- */
/* Streaming reader. */

/* One document, borrowed for the duration of the sink call. id is NULL when
 * the document has none; index counts documents from 0. */
struct tm_stream_doc {
    int64_t index;
    const char *text;
    size_t text_len;
    const char *id;
    size_t id_len;
    int64_t line; /* 1-based line of the input it came from; 0 for JSON */
};

/* Returns TM_OK to go on; any other status stops the stream, and feed/finish
 * return it (the sink may fill e to say why). */
typedef tm_status (*tm_doc_sink)(void *ctx, const struct tm_stream_doc *doc,
                                 struct tm_api_error *e);

struct tm_doc_stream;

/*
 * format: TM_CORPUS_JSONL, TM_CORPUS_LINES or TM_CORPUS_JSON (TM_EINVAL
 * otherwise). limits: copied, NULL for defaults; one JSONL line (its JSON
 * text, escapes and all) may be up to 2 * max_document_bytes + 4096 bytes,
 * one element of a JSON body 6 * max_document_bytes + 4096, and a "text"
 * max_document_bytes. sink, ctx: borrowed, called once per document in
 * order. *out is returned owned; free with tm_doc_stream_free.
 * The JSON mode accepts exactly the bodies that tm_corpus_parse accepts
 * (a leading UTF-8 BOM included), with the same documents, except an
 * element longer than its cap; its errors name "documents[i]" or the
 * field, with the body's byte offset, line and column. Malformed JSON is
 * reported where and as tm_corpus_parse reports it, unless the stream
 * refused something before it (a document, another member). JSON Lines and
 * lines do not skip a BOM (tm_corpus_parse does). Past max_documents
 * every mode fails with TM_ETOOBIG, "more than N documents".
 */
tm_status tm_doc_stream_new(struct tm_doc_stream **out, enum tm_corpus_format format,
                            const struct tm_corpus_limits *limits, tm_doc_sink sink, void *ctx);

/* Feeds the next len bytes (borrowed; any split, even inside a UTF-8
 * sequence or "\r\n"). Hands every completed document to the sink. After a
 * failure the stream stays failed and returns the same status. */
tm_status tm_doc_stream_feed(struct tm_doc_stream *s, const char *data, size_t len,
                             struct tm_api_error *e);

/* End of input: hands over a last line without a newline. */
tm_status tm_doc_stream_finish(struct tm_doc_stream *s, struct tm_api_error *e);

/* Documents handed to the sink so far, and input bytes consumed. */
int64_t tm_doc_stream_count(const struct tm_doc_stream *s);
int64_t tm_doc_stream_bytes(const struct tm_doc_stream *s);

void tm_doc_stream_free(struct tm_doc_stream *s);

#endif
