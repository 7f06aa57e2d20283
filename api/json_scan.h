/*
 * json_scan.h - JSON syntax for api/'s readers, in one place: the strict
 * RFC 8259 scanner that every JSON input passes before cJSON sees it,
 * recording where each value is and its number text (cJSON keeps neither);
 * the JSON Lines fast path that reads a plain record with the same scanner
 * and no cJSON tree; and the splitter that cuts a JSON body arriving in
 * chunks into its array's elements, each then read by the scanner.
 *
 * Internal to api/ (the tm__ names): request parsers reach the scanner
 * through api/json.h's tm_json_parse, uploads through api/corpus.h's
 * tm_doc_stream.
 * Thread-safety: reentrant; a splitter has one owner at a time.
 */
#ifndef TM_API_JSON_SCAN_H
#define TM_API_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "api/error.h"

/* Per-value facts the scanner records. */
enum {
    TM_JSON_NUM_FRACTION = 1 << 0, /* a number token with '.', 'e' or 'E' */
    TM_JSON_STR_NUL = 1 << 1,      /* a string containing the escape \u0000 */
};

/* Deepest nesting of arrays/objects accepted (cJSON's own cap is 1000). */
#define TM_JSON_MAX_DEPTH 256

/* One value of a scanned text. */
struct tm__json_val {
    int64_t offset; /* of its first byte in the text */
    uint32_t len;   /* token length for numbers, else 0 */
    unsigned flags; /* TM_JSON_* */
};

/*
 * Scans len bytes (borrowed; a UTF-8 BOM is skipped) as exactly one JSON
 * value with optional surrounding whitespace. Strict RFC 8259 grammar except
 * that raw control characters other than NUL are allowed inside strings (as
 * Python's json.loads(strict=False)); numbers are at most 63 characters
 * (cJSON would cut longer ones); nesting at most TM_JSON_MAX_DEPTH.
 * On success *vals (returned owned, tm_free) holds *n values in document
 * pre-order, cJSON's order. Errors: TM_EPARSE, with e's offset and a message
 * saying what was expected (line/column are left to the caller); TM_ENOMEM.
 */
tm_status tm__json_scan(const char *text, size_t len, struct tm__json_val **vals, size_t *n,
                        struct tm_api_error *e);

/* A member found by tm__json_record_fast. */
struct tm_json_span {
    int present, is_string, is_integer, is_null;
    int has_escapes, has_nul; /* strings: a backslash; the escape \u0000 */
    const char *p;            /* strings: between the quotes, still escaped; else the token */
    size_t len;
    int64_t offset; /* of the value in the text */
};

/*
 * The JSON Lines reader's fast path: when text is one valid JSON object
 * whose keys have no escapes and where each of keys[] appears at most once,
 * fills out[k] for keys[k] (spans borrow text) and returns 1; returns 0
 * otherwise (malformed or unusual: parse it with tm_json_parse instead,
 * which also words the error).
 */
int tm__json_record_fast(const char *text, size_t len, const char *const *keys, size_t n_keys,
                         struct tm_json_span *out);

/* Decodes a JSON string body that the scanner accepted (span p, len) into
 * out, which needs len bytes (decoding never grows); returns the length. */
size_t tm__json_unescape(const char *p, size_t len, char *out);

/* ---------------------------------------------------------------------- */
/* The streaming splitter. */

/*
 * Called with each element of the split array, in order: array holds len
 * bytes, "[" element "]" (a one-element JSON array, so that a reader of the
 * whole array reads it alone unchanged; borrowed for the call); index counts
 * elements from 0 and offset is the element's first byte in the stream.
 * Returns TM_OK to go on; any other status (with e filled) stops the split.
 */
typedef tm_status (*tm__json_element_fn)(void *ctx, int64_t index, const char *array, size_t len,
                                         int64_t offset, struct tm_api_error *e);

struct tm__json_split;

/*
 * A splitter for a JSON body too large to hold whole, arriving in chunks of
 * any size: it cuts out each element of the body's array -- the top-level
 * array, or the array that is the one member named member of a top-level
 * object ({"documents": [...]}) -- and hands it, alone, to fn, which reads
 * it with tm_json_parse. Together they accept exactly what tm__json_scan
 * accepts of the whole body, in the same shapes as api/corpus.c's
 * whole-body reader: outside the elements the splitter reads the
 * scanner's grammar itself (a UTF-8 BOM, then "[" elements "]" or an
 * object, then whitespace), keys decoded as cJSON decodes them; the
 * object's only member is member, once, and its value an array; the
 * scanner's nesting limit counts from the root. An element is everything
 * from its first byte to its end (a string's closing quote, the bracket
 * that balances its first, or before the delimiter after a scalar), so fn
 * sees any malformed text inside it. member (under 32 bytes) and element
 * ("document") name the array and one of its elements in errors. member,
 * element, fn and ctx are borrowed for the splitter's life. "[" element
 * "]" may be up to max_element bytes. Memory: one element. *out is
 * returned owned (tm__json_split_free); TM_ENOMEM is the only failure.
 */
tm_status tm__json_split_new(struct tm__json_split **out, const char *member, const char *element,
                             size_t max_element, tm__json_element_fn fn, void *ctx);

/*
 * Feeds the next len bytes (borrowed; any split). Errors carry the byte
 * offset, line and column (1-based, counted in bytes as
 * tm_api_error_locate does): TM_EPARSE for malformed JSON, worded as the
 * scanner words it ("malformed JSON: expected ',' or ']'"), where it
 * would stop on the whole body; TM_EINVAL for another shape (field
 * member: not an array, "duplicate field"; field the key: "unknown
 * field"), at the value; TM_ETOOBIG for an element past max_element, at
 * its start; TM_ENOMEM; or what fn returned, with the line and column
 * added when fn's offset lies in the element. After an error the
 * splitter can only be freed.
 */
tm_status tm__json_split_feed(struct tm__json_split *sp, const char *data, size_t len,
                              struct tm_api_error *e);

/* End of input: TM_OK when the body's value is complete; else TM_EPARSE as
 * the scanner says it at the end of the text ("unexpected end of input,
 * expected ..."), or TM_EINVAL (field member, "missing") for an object
 * without it. Elements are all handed over by then. */
tm_status tm__json_split_finish(struct tm__json_split *sp, struct tm_api_error *e);

/* NULL-safe. */
void tm__json_split_free(struct tm__json_split *sp);

#endif
