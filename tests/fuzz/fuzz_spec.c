/*
 * fuzz_spec.c - libFuzzer target for the job spec parser (network bytes:
 * the body of POST /v1/jobs). Any input must give TM_OK or an error with a
 * status and message, never a crash, leak or sanitizer report; on success the
 * vectorizer cache key must render too.
 *
 * Build and run without the Makefile (from the repository root):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -D_GNU_SOURCE \
 *     $(pkg-config --cflags libcjson libutf8proc openblas lapacke) \
 *     tests/fuzz/fuzz_spec.c $(find api core -name '*.c') \
 *     $(pkg-config --libs libcjson libutf8proc openblas lapacke) -lm -lpthread \
 *     -o build/fuzz_spec
 *   mkdir -p build/fuzz-spec-corpus && cp tests/fixtures/api/spec_*.json build/fuzz-spec-corpus/
 *   build/fuzz_spec -max_len=4096 build/fuzz-spec-corpus
 *
 * (core/ too because the parser fills defaults with tm_vectorizer_params_init
 * and tm_model_params_init.)
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
        char *key;
        size_t len;
        if (tm_job_spec_vectorizer_key(&spec, &key, &len) == TM_OK)
            tm_free(key);
    } else {
        char *body;
        size_t len;
        /* Nothing fails to allocate here, and cJSON must accept whatever
         * the strict scanner accepted (else this reads as ENOMEM). */
        if (e.status != st || !e.message[0] || st == TM_ENOMEM || strstr(e.message, "internal"))
            __builtin_trap();
        if (tm_api_error_render(&e, &body, &len) == TM_OK)
            tm_free(body);
    }
    tm_job_spec_release(&spec);
    return 0;
}
