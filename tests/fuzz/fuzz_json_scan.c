/*
 * fuzz_json_scan.c - libFuzzer target for api/json_scan.h, the JSON syntax
 * every network body passes (job specs, corpus uploads). The first byte
 * picks a chunk size; the rest is
 *
 *   - scanned by tm__json_scan and parsed by tm_json_parse, which must agree
 *     (status, offset, message), cJSON must build what the scanner accepted,
 *     and every value's offset must lie in the input;
 *   - split by tm__json_split fed whole and in chunks, which must give the
 *     same elements and the same error: the splitter's state carries across
 *     any chunk boundary;
 *   - when the scanner accepts a top-level array, split without error into
 *     exactly its elements, each accepted by the scanner alone.
 *
 * Build and run without the Makefile (from the repository root):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -D_GNU_SOURCE \
 *     $(pkg-config --cflags libcjson) \
 *     tests/fuzz/fuzz_json_scan.c api/error.c api/jbuf.c api/json.c api/json_scan.c \
 *     core/alloc.c core/status.c $(pkg-config --libs libcjson) -o build/fuzz_json_scan
 *   mkdir -p build/fuzz-json-corpus && cp tests/fixtures/api/spec_*.json build/fuzz-json-corpus/
 *   build/fuzz_json_scan -max_len=4096 build/fuzz-json-corpus
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api/json.h"
#include "api/json_scan.h"
#include "core/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct split_log {
    size_t n;
    uint64_t hash; /* of every element's index, offset and bytes */
    int bad;       /* an element the scanner refused */
};

static tm_status log_element(void *ctx, int64_t index, const char *array, size_t len,
                             int64_t offset, struct tm_api_error *e)
{
    struct split_log *l = ctx;
    (void)e;
    l->n++;
    uint64_t h = l->hash ^ (uint64_t)index * 1099511628211u ^ (uint64_t)offset;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)array[i]) * 1099511628211u;
    l->hash = h;
    struct tm__json_val *vals;
    size_t n;
    struct tm_api_error se;
    if (tm__json_scan(array, len, &vals, &n, &se) == TM_OK)
        tm_free(vals);
    else
        l->bad = 1;
    return TM_OK;
}

static tm_status split(const char *bytes, size_t len, size_t chunk, struct split_log *l,
                       struct tm_api_error *e)
{
    struct tm__json_split *sp;
    memset(l, 0, sizeof(*l));
    tm_api_error_clear(e);
    tm_status st = tm__json_split_new(&sp, "documents", "document", 1 << 20, log_element, l);
    if (st != TM_OK)
        return st;
    for (size_t off = 0; off < len && st == TM_OK; off += chunk)
        st = tm__json_split_feed(sp, bytes + off, len - off < chunk ? len - off : chunk, e);
    if (st == TM_OK)
        st = tm__json_split_finish(sp, e);
    tm__json_split_free(sp);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        tm_api_init();
        init = 1;
    }
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] + 1;
    const char *bytes = (const char *)data + 1;
    size_t len = size - 1;

    /* The scanner and the parser built on it agree. */
    struct tm__json_val *vals = NULL;
    size_t n = 0;
    struct tm_api_error e1, e2;
    tm_status st = tm__json_scan(bytes, len, &vals, &n, &e1);
    struct tm_json_doc doc;
    tm_status st2 = tm_json_parse(&doc, bytes, len, &e2);
    if (st != st2 || st == TM_ENOMEM)
        __builtin_trap();
    if (st != TM_OK && (e1.offset != e2.offset || strcmp(e1.message, e2.message) || e1.offset < 0 ||
                        (size_t)e1.offset > len))
        __builtin_trap();
    if (st == TM_OK) {
        if (!doc.root || doc.n_values != n || !n)
            __builtin_trap();
        for (size_t i = 0; i < n; i++)
            if (vals[i].offset < 0 || (size_t)vals[i].offset >= len)
                __builtin_trap();
    }
    tm_free(vals);

    /* The splitter does not care where the chunks end. */
    struct split_log whole, chunked;
    struct tm_api_error ew, ec;
    tm_status sw = split(bytes, len, len ? len : 1, &whole, &ew);
    tm_status sc = split(bytes, len, chunk, &chunked, &ec);
    if (sw != sc || whole.n != chunked.n || whole.hash != chunked.hash ||
        (sw != TM_OK && (ew.offset != ec.offset || strcmp(ew.message, ec.message))))
        __builtin_trap();

    /* A valid top-level array splits into its elements. */
    if (st == TM_OK && cJSON_IsArray(doc.root) &&
        !(len >= 3 && !memcmp(bytes, "\xEF\xBB\xBF", 3))) {
        if (sw != TM_OK || whole.bad || whole.n != (size_t)cJSON_GetArraySize(doc.root))
            __builtin_trap();
    }
    tm_json_release(&doc);
    return 0;
}
