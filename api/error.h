/*
 * error.h - the error every api/ call fills: a status, the field it is
 * about, a message, and where in the input (byte offset, line, column);
 * with its one-line form for the CLI and logs, and its HTTP status, code
 * and JSON body for the service.
 *
 * Errors go into a caller-provided struct, never into global state.
 * Thread-safety: reentrant.
 */
#ifndef TM_API_ERROR_H
#define TM_API_ERROR_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/*
 * What went wrong, for a person and for a program. field is a dotted path
 * into the input ("vectorizer.min_df", "documents[3].text", "line 12") or
 * empty; offset is a byte offset into the input or -1, with line/column
 * (1-based) when known, else 0.
 */
struct tm_api_error {
    tm_status status;
    char field[128];
    char message[256];
    int64_t offset;
    int64_t line, column;
};

/* Resets e (NULL-safe) to TM_OK with no field or position. */
void tm_api_error_clear(struct tm_api_error *e);

/* Fills e (NULL-safe) and returns status. field may be NULL; offset -1 when
 * unknown (line/column are left 0: tm_api_error_locate fills them). */
tm_status tm_api_errorf(struct tm_api_error *e, tm_status status, const char *field, int64_t offset,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Computes e->line and e->column from e->offset over text (the parsed input). */
void tm_api_error_locate(struct tm_api_error *e, const char *text, size_t len);

/* Advances a 1-based (*line, *column) over the n bytes of text: a '\n'
 * starts the next line, any other byte is one column. For api/'s readers,
 * which place errors by line and column as tm_api_error_locate does. */
void tm__text_advance(const char *text, size_t n, int64_t *line, int64_t *column);

/* Prefixes e->field with prefix and a '.' (or nothing when prefix ends in
 * ']' and field starts with '['): nests an error found in a sub-document. */
void tm_api_error_prefix(struct tm_api_error *e, const char *prefix);

/*
 * "field: message" (or "message" without a field), with " (line L, column C)"
 * when known; for the CLI's "topicd: ..." line and for logs. Returns buf.
 */
const char *tm_api_error_format(const struct tm_api_error *e, char *buf, size_t size);

/* A stable, snake_case code for the error body: "malformed_input",
 * "invalid_spec", "too_large", "out_of_memory", "numerical_failure", ... */
const char *tm_api_error_code(tm_status status);

/* The HTTP status the server should answer with: 400 malformed input, 413
 * too large, 422 invalid spec or data, 503 out of memory, 500 otherwise. */
int tm_api_error_http_status(tm_status status);

/*
 * The body {"error":{"code":..,"message":..,"field":..}} (field omitted when
 * empty; "offset", "line", "column" added when the position is known).
 * *out is returned owned, NUL-terminated, freed with tm_free; *len its length.
 * TM_ENOMEM is the only failure.
 */
tm_status tm_api_error_render(const struct tm_api_error *e, char **out, size_t *len);

struct tm_jbuf;

/* The start of every error body, {"error":{"code":..,"message":.. and
 * ,"field":.. unless field is NULL or empty, left open so that the caller
 * can add members before closing it with "}}". Shared by
 * tm_api_error_render and api/responses.h's tm_render_error. */
void tm__jbuf_error_open(struct tm_jbuf *b, const char *code, const char *message,
                         const char *field);

#endif
