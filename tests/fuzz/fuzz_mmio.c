/*
 * fuzz_mmio.c - libFuzzer target for the Matrix Market reader (api/mmio.h:
 * `topicd fit --matrix-market-in`, and any file a client hands over). The
 * first byte picks a chunk size; the rest is read
 *
 *   - whole (tm_mmio_read) and as a stream of that chunk size with its size
 *     known (tm_mmio_read_file), which must agree exactly: status, message,
 *     line and matrix, as they share one parser;
 *   - as a stream of unknown size (a pipe), which must accept the same
 *     inputs with the same matrix (its errors may differ: it cannot refuse
 *     a declared count before reading the entries);
 *   - and, when accepted, the matrix must be a valid CSR (rows sorted, no
 *     duplicate columns, values finite) that tm_mmio_write writes and
 *     tm_mmio_read reads back bit for bit.
 *
 * `make fuzz` builds and runs it (tests/fuzz/README.md).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/mmio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_csr(const struct tm_csr *a, const struct tm_csr *b)
{
    if (a->n_rows != b->n_rows || a->n_cols != b->n_cols)
        return 0;
    if (!a->indptr || !b->indptr)
        return !a->indptr == !b->indptr;
    int64_t nnz = tm_csr_nnz(a);
    return nnz == tm_csr_nnz(b) &&
           !memcmp(a->indptr, b->indptr, (size_t)(a->n_rows + 1) * sizeof(*a->indptr)) &&
           (!nnz || (!memcmp(a->indices, b->indices, (size_t)nnz * sizeof(*a->indices)) &&
                     !memcmp(a->data, b->data, (size_t)nnz * sizeof(*a->data))));
}

/* What api/mmio.h promises of a matrix it read. */
static int valid_csr(const struct tm_csr *m)
{
    if (m->n_rows < 0 || m->n_cols < 0 || !m->indptr || m->indptr[0] != 0)
        return 0;
    for (int64_t r = 0; r < m->n_rows; r++) {
        if (m->indptr[r + 1] < m->indptr[r])
            return 0;
        for (int64_t k = m->indptr[r]; k < m->indptr[r + 1]; k++)
            if (m->indices[k] < 0 || m->indices[k] >= m->n_cols ||
                (k > m->indptr[r] && m->indices[k] <= m->indices[k - 1]) || !isfinite(m->data[k]))
                return 0;
    }
    return 1;
}

static tm_status read_stream(const char *bytes, size_t len, int64_t size, size_t chunk,
                             struct tm_csr *out, struct tm_api_error *e)
{
    FILE *f = fmemopen((void *)bytes, len, "r");
    if (!f)
        __builtin_trap();
    tm_status st = tm_mmio_read_file(f, size, chunk, out, e);
    fclose(f);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* fmemopen refuses an empty buffer. */
    if (size < 2)
        return 0;
    size_t chunk = (size_t)data[0] + 1;
    const char *bytes = (const char *)data + 1;
    size_t len = size - 1;

    struct tm_csr whole, known, unknown;
    struct tm_api_error ew, ek, eu;
    tm_status sw = tm_mmio_read(bytes, len, &whole, &ew);
    tm_status sk = read_stream(bytes, len, (int64_t)len, chunk, &known, &ek);
    tm_status su = read_stream(bytes, len, -1, chunk, &unknown, &eu);
    if (sw == TM_ENOMEM || sk == TM_ENOMEM || su == TM_ENOMEM)
        __builtin_trap();
    if (sw != sk || strcmp(ew.message, ek.message) || ew.line != ek.line ||
        (sw == TM_OK && !same_csr(&whole, &known)))
        __builtin_trap();
    if ((sw == TM_OK) != (su == TM_OK) || (sw == TM_OK && !same_csr(&whole, &unknown)))
        __builtin_trap();
    if (sw != TM_OK && (!ew.message[0] || ew.line < 1))
        __builtin_trap();

    if (sw == TM_OK) {
        if (!valid_csr(&whole))
            __builtin_trap();
        char *out = NULL;
        size_t out_len = 0;
        char err[256];
        FILE *f = open_memstream(&out, &out_len);
        if (!f || tm_mmio_write(f, &whole, err) != TM_OK || fclose(f))
            __builtin_trap();
        struct tm_csr back;
        struct tm_api_error eb;
        if (tm_mmio_read(out, out_len, &back, &eb) != TM_OK || !same_csr(&whole, &back))
            __builtin_trap();
        tm_csr_release(&back);
        free(out);
    }
    tm_csr_release(&whole);
    tm_csr_release(&known);
    tm_csr_release(&unknown);
    return 0;
}
