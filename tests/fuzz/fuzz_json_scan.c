/*
 * fuzz_json_scan.c - libFuzzer target for api/json_scan.h, the JSON syntax
 * every network body passes (job specs, corpus uploads), and a
 * differential target for the two ways a JSON corpus is read. The first
 * byte picks a chunk size; the rest is
 *
 *   - scanned by tm__json_scan and parsed by tm_json_parse, which must agree
 *     (status, offset, message), cJSON must build what the scanner accepted,
 *     and every value's offset must lie in the input;
 *   - split by tm__json_split fed whole and in chunks, which must give the
 *     same elements and the same error: the splitter's state carries across
 *     any chunk boundary;
 *   - read as a JSON corpus whole (tm_corpus_parse, the server's path up to
 *     --max-json-bytes) and streamed in chunks (tm_doc_stream, past it),
 *     which must accept the same bodies with the same documents and ids,
 *     report malformed JSON at the same offset with the same message when
 *     both do, and give the stream's errors the line and column of their
 *     offset.
 *
 * `make fuzz` builds and runs it (tests/fuzz/README.md).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api/corpus.h"
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

static tm_status add_doc(void *ctx, const struct tm_stream_doc *d, struct tm_api_error *e)
{
    return tm_corpus_add(ctx, d->text, d->text_len, d->id, d->id_len, e);
}

/* The body read by tm_doc_stream in chunks of chunk bytes into c. */
static tm_status stream_corpus(const char *bytes, size_t len, size_t chunk,
                               const struct tm_corpus_limits *lim, struct tm_corpus *c,
                               struct tm_api_error *e)
{
    struct tm_doc_stream *s;
    tm_corpus_init(c, NULL);
    tm_api_error_clear(e);
    tm_status st = tm_doc_stream_new(&s, TM_CORPUS_JSON, lim, add_doc, c);
    if (st != TM_OK)
        return st;
    for (size_t off = 0; off < len && st == TM_OK; off += chunk)
        st = tm_doc_stream_feed(s, bytes + off, len - off < chunk ? len - off : chunk, e);
    if (st == TM_OK)
        st = tm_doc_stream_finish(s, e);
    tm_doc_stream_free(s);
    return st;
}

static int same_documents(const struct tm_corpus *a, const struct tm_corpus *b)
{
    if (a->n_docs != b->n_docs)
        return 0;
    for (int64_t i = 0; i < a->n_docs; i++) {
        const char *ia = a->ids ? a->ids[i] : NULL, *ib = b->ids ? b->ids[i] : NULL;
        if (a->docs[i].len != b->docs[i].len ||
            memcmp(a->docs[i].text, b->docs[i].text, a->docs[i].len) || !ia != !ib ||
            (ia && strcmp(ia, ib)))
            return 0;
    }
    return 1;
}

/* The whole-body and the streamed corpus readers agree. */
static void corpus_agree(const char *bytes, size_t len, size_t chunk)
{
    struct tm_corpus_limits lim;
    tm_corpus_limits_init(&lim);
    lim.max_documents = 8; /* reached now and then */
    lim.max_document_bytes = 64;
    struct tm_corpus whole, streamed;
    struct tm_api_error ew, es;
    tm_corpus_init(&whole, &lim);
    tm_status sw = tm_corpus_parse(&whole, bytes, len, TM_CORPUS_JSON, &ew);
    tm_status ss = stream_corpus(bytes, len, chunk, &lim, &streamed, &es);
    if ((sw == TM_OK) != (ss == TM_OK) || sw == TM_ENOMEM || ss == TM_ENOMEM)
        __builtin_trap();
    if (sw == TM_OK && !same_documents(&whole, &streamed))
        __builtin_trap();
    if (sw == TM_EPARSE && ss == TM_EPARSE &&
        (ew.offset != es.offset || strcmp(ew.message, es.message)))
        __builtin_trap();
    if (ss != TM_OK) {
        struct tm_api_error at = es;
        tm_api_error_locate(&at, bytes, len);
        if (!es.message[0] || es.offset > (int64_t)len ||
            (es.offset >= 0 && (es.line != at.line || es.column != at.column)))
            __builtin_trap();
    }
    tm_corpus_release(&whole);
    tm_corpus_release(&streamed);
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
    if (st == TM_OK && cJSON_IsArray(doc.root)) {
        if (sw != TM_OK || whole.bad || whole.n != (size_t)cJSON_GetArraySize(doc.root))
            __builtin_trap();
    }
    tm_json_release(&doc);

    corpus_agree(bytes, len, chunk);
    return 0;
}
