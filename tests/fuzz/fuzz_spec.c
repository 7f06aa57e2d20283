/*
 * fuzz_spec.c - libFuzzer target for the job spec parser (network bytes:
 * the body of POST /v1/jobs). Any input must give TM_OK or an error with a
 * status, a message and a position inside the input, never a crash, leak or
 * sanitizer report; on success the vectorizer cache key must render as JSON, and a
 * second parse of the same bytes must give the same key (no state leaks
 * from one parse to the next).
 *
 * `make fuzz` builds and runs it (tests/fuzz/README.md).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "api/json.h"
#include "api/spec.h"
#include "core/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        tm_api_init();
        init = 1;
    }
    struct tm_corpus_limits limits;
    struct tm_job_spec spec;
    struct tm_api_error e;
    tm_corpus_limits_init(&limits);
    limits.max_documents = 1000;
    tm_job_spec_init(&spec);
    tm_status st = tm_job_spec_parse(&spec, (const char *)data, size, &limits, &e);
    if (st == TM_OK) {
        char *key, *key2;
        size_t len, len2;
        if (tm_job_spec_vectorizer_key(&spec, &key, &len) != TM_OK)
            __builtin_trap();
        struct tm_job_spec again;
        tm_job_spec_init(&again);
        if (tm_job_spec_parse(&again, (const char *)data, size, &limits, &e) != TM_OK ||
            tm_job_spec_vectorizer_key(&again, &key2, &len2) != TM_OK || len != len2 ||
            memcmp(key, key2, len))
            __builtin_trap();
        /* The key is canonical JSON text. */
        struct tm_json_doc doc;
        if (tm_json_parse(&doc, key, len, &e) != TM_OK)
            __builtin_trap();
        tm_json_release(&doc);
        tm_free(key);
        tm_free(key2);
        tm_job_spec_release(&again);
    } else {
        char *body;
        size_t len;
        /* Nothing fails to allocate here, and cJSON must accept whatever
         * the strict scanner accepted (else this reads as ENOMEM). */
        if (e.status != st || !e.message[0] || st == TM_ENOMEM || strstr(e.message, "internal") ||
            e.offset > (int64_t)size)
            __builtin_trap();
        if (tm_api_error_render(&e, &body, &len) == TM_OK)
            tm_free(body);
    }
    tm_job_spec_release(&spec);
    return 0;
}
