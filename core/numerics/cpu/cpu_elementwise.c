/*
 * cpu_elementwise.c - the CPU backend's elementwise ops and reductions:
 * fill, copy, column scaling, axpy, the Frobenius dot (in its own loops, in
 * fixed chunks, like cpu_dense.c's Gram matrices, so that it does not wake
 * OpenBLAS's threads and sums the same for any thread count) and column
 * norms and sums.
 */
#include "core/numerics/cpu/cpu_internal.h"

#include <cblas.h>

#include "core/alloc.h"

tm_status tm__cpu_fill(void *ctx, const struct tm_bmat *a, double value, char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < a->cols; j++)
        for (int64_t i = 0; i < a->rows; i++)
            AT(a, i, j) = value;
    return TM_OK;
}

tm_status tm__cpu_copy(void *ctx, const struct tm_bmat *src, const struct tm_bmat *dst, char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < src->cols; j++)
        memmove(&AT(dst, 0, j), &AT(src, 0, j), (size_t)src->rows * sizeof(double));
    return TM_OK;
}

tm_status tm__cpu_scale_cols(void *ctx, const struct tm_bmat *a, const double *scale, char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < a->cols; j++)
        for (int64_t i = 0; i < a->rows; i++)
            AT(a, i, j) *= scale[j];
    return TM_OK;
}

tm_status tm__cpu_axpy(void *ctx, double alpha, const struct tm_bmat *x, const struct tm_bmat *y,
                       char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < x->cols; j++)
        cblas_daxpy((blasint)x->rows, alpha, &AT(x, 0, j), 1, &AT(y, 0, j), 1);
    return TM_OK;
}

struct dot_job {
    const struct tm_bmat *a, *b;
    const int64_t *bounds;
    double *partial; /* n_chunks */
};

HOT_BODY void dot_chunk_body(void *arg, int chunk, double *buf)
{
    const struct dot_job *j = arg;
    const int64_t lo = j->bounds[chunk], hi = j->bounds[chunk + 1];
    double sum = 0.0;
    (void)buf;
    for (int64_t c = 0; c < j->a->cols; c++)
        sum += dot_range(&AT(j->a, 0, c), &AT(j->b, 0, c), lo, hi);
    j->partial[chunk] = sum;
}

HOT_KERNEL(dot_chunk)

tm_status tm__cpu_dot(void *ctx, const struct tm_bmat *a, const struct tm_bmat *b, double *out,
                      char *err)
{
    int64_t bounds[MAX_CHUNKS + 1];
    int nc = tm__cpu_row_chunks(a->rows, bounds);
    double partial[MAX_CHUNKS];
    struct dot_job job = {a, b, bounds, partial};
    tm_status st = tm__cpu_par_for(ctx, nc, 0, dot_chunk, &job, err);
    double sum = 0.0;
    for (int q = 0; q < nc; q++)
        sum += partial[q];
    *out = sum;
    return st;
}

tm_status tm__cpu_col_norms(void *ctx, const struct tm_bmat *a, double *out, char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < a->cols; j++)
        out[j] = cblas_dnrm2((blasint)a->rows, &AT(a, 0, j), 1);
    return TM_OK;
}

tm_status tm__cpu_col_sums(void *ctx, const struct tm_bmat *a, double *out, char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < a->cols; j++) {
        double s = 0.0;
        for (int64_t i = 0; i < a->rows; i++)
            s += AT(a, i, j);
        out[j] = s;
    }
    return TM_OK;
}
