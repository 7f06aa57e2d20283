/*
 * jsonutil.h - JSON plumbing shared by api/: the error that every api/ call
 * fills (field path, message, byte position), its HTTP error body, a strict
 * JSON parse that keeps each value's byte offset and number token (cJSON
 * keeps neither), and a capped output buffer for rendering.
 *
 * cJSON is used only inside api/. tm_api_init() routes its allocations
 * through tm_malloc/tm_free; call it once, before any thread starts (main,
 * tm_cli_serve); repeated calls are harmless.
 * Thread-safety: after tm_api_init, every function here is reentrant; no
 * function reads or writes cJSON's global error pointer (the strict scanner
 * rejects malformed input before cJSON sees it).
 */
#ifndef TM_API_JSONUTIL_H
#define TM_API_JSONUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Installs cJSON's hooks (tm_malloc/tm_free). Not thread-safe: call first. */
void tm_api_init(void);

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

/* Prefixes e->field with prefix and a '.' (or nothing when prefix ends in
 * ']' and field starts with '['): nests an error found in a sub-document. */
void tm_api_error_prefix(struct tm_api_error *e, const char *prefix);

/*
 * "field: message" (or "message" without a field), with " (line L, column C)"
 * when known; for the CLI's "topicd: ..." line and for logs. Returns buf.
 */
const char *tm_api_error_format(const struct tm_api_error *e, char *buf, size_t size);

/* A stable, snake_case code for the error body: "malformed_json",
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

/* ---------------------------------------------------------------------- */
/* Strict parsing. */

struct cJSON;

/* Per-value facts the scanner records. */
enum {
    TM_JSON_NUM_FRACTION = 1 << 0, /* a number token with '.', 'e' or 'E' */
    TM_JSON_STR_NUL = 1 << 1,      /* a string containing the escape \u0000 */
};

/*
 * A parsed document with a side table from each cJSON value to its position
 * in the text. The text is borrowed and must outlive the document.
 */
struct tm_json_doc {
    struct cJSON *root;
    const char *text;
    size_t len;
    size_t n_values;
    struct tm__json_val *vals; /* n_values, in document (pre-)order */
    struct tm__json_ref *refs; /* n_values, sorted by item address */
};

/* Deepest nesting of arrays/objects accepted (cJSON's own cap is 1000). */
#define TM_JSON_MAX_DEPTH 256

/*
 * Parses len bytes (a UTF-8 BOM is skipped) as exactly one JSON value with
 * optional surrounding whitespace. Strict RFC 8259 grammar except that raw
 * control characters other than NUL are allowed inside strings (as Python's
 * json.loads(strict=False)). Errors: TM_EPARSE with offset/line/column and
 * what was expected; TM_ENOMEM. doc is initialised here; release with
 * tm_json_release (also after a failure).
 */
tm_status tm_json_parse(struct tm_json_doc *doc, const char *text, size_t len,
                        struct tm_api_error *e);
void tm_json_release(struct tm_json_doc *doc);

/* Byte offset of item's value in the text, or -1 for an item not in doc. */
int64_t tm_json_offset(const struct tm_json_doc *doc, const struct cJSON *item);
/* TM_JSON_* flags of item's value; 0 for an item not in doc. */
unsigned tm_json_flags(const struct tm_json_doc *doc, const struct cJSON *item);
/* The number token of item as written (not NUL-terminated), or NULL. */
const char *tm_json_number_text(const struct tm_json_doc *doc, const struct cJSON *item,
                                size_t *len);

/* A member found by tm__json_record_fast. */
struct tm_json_span {
    int present, is_string, is_integer, is_null;
    int has_escapes, has_nul; /* strings: a backslash; the escape \u0000 */
    const char *p;            /* strings: between the quotes, still escaped; else the token */
    size_t len;
    int64_t offset; /* of the value in the text */
};

/*
 * Internal to api/ (the JSON Lines reader's fast path): when text is one
 * valid JSON object whose keys have no escapes and where each of keys[]
 * appears at most once, fills out[k] for keys[k] and returns 1; returns 0
 * otherwise (malformed or unusual: parse it with tm_json_parse instead).
 */
int tm__json_record_fast(const char *text, size_t len, const char *const *keys, size_t n_keys,
                         struct tm_json_span *out);

/* Decodes a JSON string body that the scanner accepted (span p, len) into
 * out, which needs len bytes (decoding never grows); returns the length. */
size_t tm__json_unescape(const char *p, size_t len, char *out);

/* ---------------------------------------------------------------------- */
/* Output. */

/*
 * A growable output buffer with a hard cap (curl's dynbuf): once an append
 * would pass cap, or an allocation fails, the buffer remembers the failure
 * (TM_ETOOBIG or TM_ENOMEM) and later appends do nothing, so a renderer can
 * append freely and check once at the end.
 */
struct tm_jbuf {
    char *data;
    size_t len, alloc, cap;
    tm_status status;
};

void tm_jbuf_init(struct tm_jbuf *b, size_t cap); /* cap 0: SIZE_MAX / 2 */
void tm_jbuf_release(struct tm_jbuf *b);
/* Returns b's NUL-terminated data, owned (tm_free), and resets b; NULL (and
 * b released) when b failed, with the status in *status. */
char *tm_jbuf_detach(struct tm_jbuf *b, size_t *len, tm_status *status);
void tm_jbuf_put(struct tm_jbuf *b, const char *s, size_t n);
void tm_jbuf_puts(struct tm_jbuf *b, const char *s);
void tm_jbuf_printf(struct tm_jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal with quotes; bytes >= 0x80 pass through, control
 * characters, '"' and '\\' are escaped. */
void tm_jbuf_string(struct tm_jbuf *b, const char *s, size_t n);
/* The shortest of %.15g/%.16g/%.17g that reads back to v exactly. v must be
 * finite (the caller checks: NaN and Inf have no JSON form). */
void tm_jbuf_double(struct tm_jbuf *b, double v);
void tm_jbuf_int(struct tm_jbuf *b, int64_t v);

/* The start of every error body, {"error":{"code":..,"message":.. and
 * ,"field":.. unless field is NULL or empty, left open so that the caller
 * can add members before closing it with "}}". Shared by
 * tm_api_error_render and api/responses.h's tm_render_error. */
void tm__jbuf_error_open(struct tm_jbuf *b, const char *code, const char *message,
                         const char *field);

#endif
