/*
 * cpu_elementwise.c - the CPU backend's elementwise ops and reductions:
 * fill, copy, column scaling, axpy, the Frobenius dot (in its own loops, in
 * fixed chunks, like cpu_dense.c's Gram matrices, so that it does not wake
 * OpenBLAS's threads and sums the same for any thread count) and column
 * norms and sums; the code, in cpu_elementwise_t.h, is compiled here once
 * per element type.
 */
#include "core/numerics/cpu/cpu_internal.h"

#include <cblas.h>
#include <math.h>

#include "core/alloc.h"

#define CPU_TEMPLATE "core/numerics/cpu/cpu_elementwise_t.h"
#include "core/numerics/cpu/cpu_both.h"

tm_status tm__cpu_fill(void *ctx, const struct tm_bmat *a, double value, char *err)
{
    return (cpu_f32(ctx) ? f32_fill : f64_fill)(ctx, a, value, err);
}

tm_status tm__cpu_copy(void *ctx, const struct tm_bmat *src, const struct tm_bmat *dst, char *err)
{
    return (cpu_f32(ctx) ? f32_copy : f64_copy)(ctx, src, dst, err);
}

tm_status tm__cpu_scale_cols(void *ctx, const struct tm_bmat *a, const double *scale, char *err)
{
    return (cpu_f32(ctx) ? f32_scale_cols : f64_scale_cols)(ctx, a, scale, err);
}

tm_status tm__cpu_axpy(void *ctx, double alpha, const struct tm_bmat *x, const struct tm_bmat *y,
                       char *err)
{
    return (cpu_f32(ctx) ? f32_axpy : f64_axpy)(ctx, alpha, x, y, err);
}

tm_status tm__cpu_dot(void *ctx, const struct tm_bmat *a, const struct tm_bmat *b, double *out,
                      char *err)
{
    return (cpu_f32(ctx) ? f32_dot : f64_dot)(ctx, a, b, out, err);
}

tm_status tm__cpu_col_norms(void *ctx, const struct tm_bmat *a, double *out, char *err)
{
    return (cpu_f32(ctx) ? f32_col_norms : f64_col_norms)(ctx, a, out, err);
}

tm_status tm__cpu_col_sums(void *ctx, const struct tm_bmat *a, double *out, char *err)
{
    return (cpu_f32(ctx) ? f32_col_sums : f64_col_sums)(ctx, a, out, err);
}
