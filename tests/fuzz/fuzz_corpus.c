/*
 * fuzz_corpus.c - libFuzzer target for the corpus readers (network bytes:
 * POST /v1/corpora bodies). The first byte picks the format; the rest is fed
 * both whole (tm_corpus_parse) and in chunks whose sizes come from the input
 * too (tm_doc_stream, as the server's uploads read them), and the two must
 * agree on the documents: for JSON Lines and plain lines always, for JSON
 * whenever the whole parse succeeds (the stream's splitter is laxer outside
 * the documents: see api/json_scan.h).
 *
 * `make fuzz` builds and runs it (tests/fuzz/README.md).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api/corpus.h"
#include "core/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tm_status sink(void *ctx, const struct tm_stream_doc *d, struct tm_api_error *e)
{
    struct tm_corpus *c = ctx;
    return tm_corpus_add(c, d->text, d->text_len, d->id, d->id ? d->id_len : 0, e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        tm_api_init();
        init = 1;
    }
    if (size < 2)
        return 0;
    enum tm_corpus_format format = (enum tm_corpus_format)(data[0] % 4);
    size_t chunk = (size_t)data[1] + 1;
    const char *bytes = (const char *)data + 2;
    size_t len = size - 2;
    struct tm_corpus_limits limits;
    tm_corpus_limits_init(&limits);
    limits.max_documents = 500;
    limits.max_document_bytes = 1000;

    struct tm_corpus whole, streamed;
    struct tm_api_error e;
    tm_corpus_init(&whole, &limits);
    tm_status st = tm_corpus_parse(&whole, bytes, len, format, &e);
    /* Nothing fails to allocate here, and cJSON must accept whatever the
     * strict scanner accepted (else this reads as ENOMEM). */
    if (st != TM_OK && (!e.message[0] || st == TM_ENOMEM || strstr(e.message, "internal")))
        __builtin_trap();

    if (format != TM_CORPUS_AUTO) {
        struct tm_doc_stream *s;
        tm_corpus_init(&streamed, &limits);
        if (tm_doc_stream_new(&s, format, &limits, sink, &streamed) == TM_OK) {
            tm_status st2 = TM_OK;
            for (size_t off = 0; off < len && st2 == TM_OK; off += chunk)
                st2 = tm_doc_stream_feed(s, bytes + off, len - off < chunk ? len - off : chunk, &e);
            if (st2 == TM_OK)
                st2 = tm_doc_stream_finish(s, &e);
            /* A leading BOM is skipped by tm_corpus_parse only; the JSON
             * splitter reads keys without their escapes ("docu\u006dents"). */
            int bom = len >= 3 && !memcmp(bytes, "\xEF\xBB\xBF", 3);
            int json = format == TM_CORPUS_JSON;
            const char *bracket = memchr(bytes, '[', len);
            int escaped_key =
                json && memchr(bytes, '\\', bracket ? (size_t)(bracket - bytes) : len);
            if (!bom && st != st2 && !(json && st != TM_OK) && !escaped_key)
                __builtin_trap();
            if (!bom && st == TM_OK && st2 == TM_OK) {
                if (whole.n_docs != streamed.n_docs)
                    __builtin_trap();
                for (int64_t i = 0; i < whole.n_docs; i++)
                    if (whole.docs[i].len != streamed.docs[i].len ||
                        memcmp(whole.docs[i].text, streamed.docs[i].text, whole.docs[i].len))
                        __builtin_trap();
            }
            tm_doc_stream_free(s);
        }
        tm_corpus_release(&streamed);
    }
    tm_corpus_release(&whole);

    /* The JSON Lines fast path must decode as cJSON does. */
    static const char *const keys[] = {"text", "id"};
    struct tm_json_span sp[2];
    if (tm__json_record_fast(bytes, len, keys, 2, sp) && sp[0].present && sp[0].is_string &&
        !sp[0].has_nul) {
        struct tm_json_doc doc;
        if (tm_json_parse(&doc, bytes, len, &e) != TM_OK)
            __builtin_trap();
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(doc.root, "text");
        char *buf = tm_malloc(sp[0].len + 1);
        size_t n = tm__json_unescape(sp[0].p, sp[0].len, buf);
        if (!text || !cJSON_IsString(text) || n != strlen(text->valuestring) ||
            memcmp(buf, text->valuestring, n))
            __builtin_trap();
        tm_free(buf);
        tm_json_release(&doc);
    }
    return 0;
}
