/*
 * json.h - a parsed JSON document: cJSON's tree, built only after the
 * strict scanner (api/json_scan.h) accepted the text, plus a side table
 * giving each value's byte offset, flags and number token, so that
 * validation errors can say where and 1 is told from 1.0.
 *
 * cJSON is used only inside api/. tm_api_init() routes its allocations
 * through tm_malloc/tm_free; call it once, before any thread starts (main,
 * tm_cli_serve); repeated calls are harmless.
 * Thread-safety: after tm_api_init, every function here is reentrant; no
 * function reads or writes cJSON's global error pointer (the strict scanner
 * rejects malformed input before cJSON sees it). A document has one owner
 * at a time.
 */
#ifndef TM_API_JSON_H
#define TM_API_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "api/error.h"
#include "api/json_scan.h"

/* Installs cJSON's hooks (tm_malloc/tm_free). Not thread-safe: call first. */
void tm_api_init(void);

struct cJSON;

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

/*
 * Parses len bytes (a UTF-8 BOM is skipped) as exactly one JSON value, with
 * tm__json_scan's grammar. Errors: TM_EPARSE with offset/line/column and
 * what was expected; TM_ENOMEM. doc is initialised here; release with
 * tm_json_release (also after a failure).
 */
tm_status tm_json_parse(struct tm_json_doc *doc, const char *text, size_t len,
                        struct tm_api_error *e);
/* tm_json_parse of a document topicd stored itself (a result, a spec),
 * which must be an object: TM_EPARSE "the stored NAME is not a JSON
 * object" otherwise. doc is released on failure, so the caller releases
 * it only after TM_OK. */
tm_status tm_json_parse_stored_object(struct tm_json_doc *doc, const char *text, size_t len,
                                      const char *name, struct tm_api_error *e);
/* Frees the tree and the side table (NULL-safe); the text stays the caller's. */
void tm_json_release(struct tm_json_doc *doc);

/* Byte offset of item's value in the text, or -1 for an item not in doc. */
int64_t tm_json_offset(const struct tm_json_doc *doc, const struct cJSON *item);
/* TM_JSON_* flags of item's value; 0 for an item not in doc. */
unsigned tm_json_flags(const struct tm_json_doc *doc, const struct cJSON *item);
/* The number token of item as written (not NUL-terminated, borrowed from
 * the text), or NULL. */
const char *tm_json_number_text(const struct tm_json_doc *doc, const struct cJSON *item,
                                size_t *len);

#endif
