/*
 * json_scan.h - JSON syntax for api/'s readers: the strict RFC 8259 scanner
 * that every JSON input passes before cJSON sees it, recording where each
 * value is and its number text (cJSON keeps neither), and the JSON Lines
 * fast path that reads a plain record without building a cJSON tree.
 *
 * Internal to api/ (the tm__ names): request parsers reach the scanner
 * through api/json.h's tm_json_parse.
 * Thread-safety: reentrant.
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

#endif
