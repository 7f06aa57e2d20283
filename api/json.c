/*
 * json.c - cJSON behind the strict scanner (see json.h): the scanner's
 * value table is matched to cJSON's tree by pre-order position, and looked
 * up by item address.
 */
#include "api/json.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

void tm_api_init(void)
{
    static cJSON_Hooks hooks = {tm_malloc, tm_free};
    cJSON_InitHooks(&hooks);
}

struct tm__json_ref {
    const cJSON *item;
    size_t index;
};

static int cmp_ref(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct tm__json_ref *)a)->item;
    uintptr_t y = (uintptr_t)((const struct tm__json_ref *)b)->item;
    return x < y ? -1 : x > y;
}

/* Pre-order numbering of cJSON's tree, which matches the scanner's order. */
static size_t number_items(const cJSON *item, struct tm__json_ref *refs, size_t n, size_t cap)
{
    for (; item; item = item->next) {
        if (n < cap) {
            refs[n].item = item;
            refs[n].index = n;
        }
        n++;
        if (item->child)
            n = number_items(item->child, refs, n, cap);
    }
    return n;
}

tm_status tm_json_parse(struct tm_json_doc *doc, const char *text, size_t len,
                        struct tm_api_error *e)
{
    tm_status st;
    memset(doc, 0, sizeof(*doc));
    doc->text = text;
    doc->len = len;
    tm_api_error_clear(e);

    st = tm__json_scan(text, len, &doc->vals, &doc->n_values, e);
    if (st != TM_OK)
        goto fail;

    /* The scanner accepted it, so cJSON can fail only for lack of memory. */
    size_t base = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        base = 3;
    doc->root = cJSON_ParseWithLengthOpts(text + base, len - base, NULL, 0);
    if (!doc->root) {
        st = tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory parsing JSON");
        goto fail;
    }
    doc->refs = tm_mallocarray(doc->n_values, sizeof(*doc->refs));
    if (!doc->refs) {
        st = tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory parsing JSON");
        goto fail;
    }
    size_t counted = number_items(doc->root, doc->refs, 0, doc->n_values);
    if (counted != doc->n_values) {
        /* A scanner/cJSON disagreement: a bug, but never a crash. */
        st = tm_api_errorf(e, TM_EPARSE, NULL, -1, "malformed JSON: internal mismatch");
        goto fail;
    }
    qsort(doc->refs, doc->n_values, sizeof(*doc->refs), cmp_ref);
    return TM_OK;

fail:
    tm_json_release(doc);
    doc->text = text;
    doc->len = len;
    if (e && e->status == TM_EPARSE)
        tm_api_error_locate(e, text, len);
    return st;
}

void tm_json_release(struct tm_json_doc *doc)
{
    if (!doc)
        return;
    if (doc->root)
        cJSON_Delete(doc->root);
    tm_free(doc->vals);
    tm_free(doc->refs);
    memset(doc, 0, sizeof(*doc));
}

static const struct tm__json_val *find_val(const struct tm_json_doc *doc, const cJSON *item)
{
    if (!doc->refs || !item)
        return NULL;
    struct tm__json_ref key = {item, 0};
    const struct tm__json_ref *r =
        bsearch(&key, doc->refs, doc->n_values, sizeof(*doc->refs), cmp_ref);
    return r ? &doc->vals[r->index] : NULL;
}

int64_t tm_json_offset(const struct tm_json_doc *doc, const cJSON *item)
{
    const struct tm__json_val *v = find_val(doc, item);
    return v ? v->offset : -1;
}

unsigned tm_json_flags(const struct tm_json_doc *doc, const cJSON *item)
{
    const struct tm__json_val *v = find_val(doc, item);
    return v ? v->flags : 0;
}

const char *tm_json_number_text(const struct tm_json_doc *doc, const cJSON *item, size_t *len)
{
    const struct tm__json_val *v = find_val(doc, item);
    if (!v || !v->len)
        return NULL;
    *len = v->len;
    return doc->text + v->offset;
}

tm_status tm_json_parse_stored_object(struct tm_json_doc *doc, const char *text, size_t len,
                                      const char *name, struct tm_api_error *e)
{
    tm_status s = tm_json_parse(doc, text, len, e);
    if (!s && !cJSON_IsObject(doc->root))
        s = tm_api_errorf(e, TM_EPARSE, NULL, -1, "the stored %s is not a JSON object", name);
    if (s)
        tm_json_release(doc);
    return s;
}
