/*
 * fuzz_npz.c - libFuzzer target for the .npz reader (api/npz.h) and the
 * model file on top of it (api/model_file.h): what GET /v1/jobs/{id}/model
 * serves and `topicd transform --model FILE` reads back, a file a user may
 * have edited. The input is read
 *
 *   - as an archive (tm_npz_read, a cap of 1 MiB): accepted or refused with
 *     a message, never a crash; an accepted archive's members, written
 *     again with tm_npz_writer (stored and deflated), read back the same;
 *   - as a model file (tm_model_file_read): accepted or refused with a
 *     message; an accepted one's vocabulary is in strict order.
 *
 * `make fuzz` builds and runs it (tests/fuzz/README.md).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "api/model_file.h"
#include "api/npz.h"
#include "core/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_archive(const struct tm_npz *a, const unsigned char *bytes, size_t len)
{
    struct tm_npz *b;
    char err[TM_ERR_SIZE];
    if (tm_npz_read(bytes, len, (size_t)1 << 21, &b, err) != TM_OK)
        __builtin_trap();
    if (tm_npz_count(a) != tm_npz_count(b))
        __builtin_trap();
    for (int i = 0; i < tm_npz_count(a); i++) {
        const struct tm_npz_member *x = tm_npz_member_at(a, i), *y = tm_npz_member_at(b, i);
        if (strcmp(x->name, y->name) || x->dtype != y->dtype || x->ndim != y->ndim ||
            x->count != y->count ||
            memcmp(x->shape, y->shape, (size_t)x->ndim * sizeof(x->shape[0])) ||
            (x->count && memcmp(x->data, y->data, (size_t)x->count * tm_npz_dtype_size(x->dtype))))
            __builtin_trap();
    }
    tm_npz_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[TM_ERR_SIZE];
    struct tm_npz *z = NULL;
    err[0] = '\0';
    tm_status st = tm_npz_read(data, size, (size_t)1 << 20, &z, err);
    if (st == TM_ENOMEM)
        __builtin_trap();
    if (st != TM_OK && !err[0])
        __builtin_trap();
    for (int level = 0; st == TM_OK && level <= 6; level += 6) {
        struct tm_npz_writer *w;
        if (tm_npz_writer_new(level, 0, &w, err))
            __builtin_trap();
        tm_status ws = TM_OK;
        for (int i = 0; ws == TM_OK && i < tm_npz_count(z); i++) {
            const struct tm_npz_member *m = tm_npz_member_at(z, i);
            /* Names numpy's writer would refuse to round-trip as written:
             * a plain member named like an array, or the reverse. */
            if (m->dtype == TM_NPZ_RAW)
                ws = tm_npz_writer_add_raw(w, m->name, m->data, (size_t)m->count, err);
            else
                ws = tm_npz_writer_add(w, m->name, m->dtype, m->ndim, m->shape, m->data, err);
        }
        unsigned char *out = NULL;
        size_t len = 0;
        if (ws == TM_OK && tm_npz_writer_finish(w, &out, &len, err) == TM_OK)
            same_archive(z, out, len);
        tm_free(out);
        tm_npz_writer_free(w);
    }
    tm_npz_free(z);

    struct tm_model_file m;
    err[0] = '\0';
    st = tm_model_file_read(data, size, &m, err);
    if (st == TM_ENOMEM || (st != TM_OK && !err[0]))
        __builtin_trap();
    if (st == TM_OK) {
        for (int64_t i = 1; i < m.n_features; i++) {
            size_t la, lb;
            const char *a = tm_vocab_term(&m.vocab, i - 1, &la),
                       *b = tm_vocab_term(&m.vocab, i, &lb);
            int c = memcmp(a, b, la < lb ? la : lb);
            if (c > 0 || (c == 0 && la >= lb))
                __builtin_trap();
        }
    }
    tm_model_file_release(&m);
    return 0;
}
