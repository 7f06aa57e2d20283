/*
 * cpu_elementwise_t.h - the elementwise ops and reductions, written once for
 * both element types (cpu_real.h); host scalars and every sum are double.
 * Included by cpu_elementwise.c once per type; no include guard.
 */

static tm_status R(fill)(void *ctx, const struct tm_bmat *a, double value, char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < a->cols; j++)
        for (int64_t i = 0; i < a->rows; i++)
            AT(a, i, j) = (real_t)value;
    return TM_OK;
}

static tm_status R(copy)(void *ctx, const struct tm_bmat *src, const struct tm_bmat *dst, char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < src->cols; j++)
        memmove(&AT(dst, 0, j), &AT(src, 0, j), (size_t)src->rows * sizeof(real_t));
    return TM_OK;
}

/* Each product in double, rounded once to the element type. */
static tm_status R(scale_cols)(void *ctx, const struct tm_bmat *a, const double *scale, char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < a->cols; j++)
        for (int64_t i = 0; i < a->rows; i++)
            AT(a, i, j) *= scale[j];
    return TM_OK;
}

static tm_status R(axpy)(void *ctx, double alpha, const struct tm_bmat *x, const struct tm_bmat *y,
                         char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < x->cols; j++)
        BLAS(axpy)((blasint)x->rows, (real_t)alpha, &AT(x, 0, j), 1, &AT(y, 0, j), 1);
    return TM_OK;
}

struct R(dot_job) {
    const struct tm_bmat *a, *b;
    const int64_t *bounds;
    double *partial; /* n_chunks */
};

HOT_BODY void R(dot_chunk_body)(void *arg, int chunk, double *buf)
{
    const struct R(dot_job) *j = arg;
    const int64_t lo = j->bounds[chunk], hi = j->bounds[chunk + 1];
    double sum = 0.0;
    (void)buf;
    for (int64_t c = 0; c < j->a->cols; c++)
        sum += R(dot_range)(&AT(j->a, 0, c), &AT(j->b, 0, c), lo, hi);
    j->partial[chunk] = sum;
}

HOT_KERNEL(R(dot_chunk))

static tm_status R(dot)(void *ctx, const struct tm_bmat *a, const struct tm_bmat *b, double *out,
                        char *err)
{
    int64_t bounds[MAX_CHUNKS + 1];
    int nc = tm__cpu_row_chunks(a->rows, bounds);
    double partial[MAX_CHUNKS];
    struct R(dot_job) job = {a, b, bounds, partial};
    tm_status st = tm__cpu_par_for(ctx, nc, 0, R(dot_chunk), &job, err);
    double sum = 0.0;
    for (int q = 0; q < nc; q++)
        sum += partial[q];
    *out = sum;
    return st;
}

static tm_status R(col_norms)(void *ctx, const struct tm_bmat *a, double *out, char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < a->cols; j++) {
#if CPU_REAL == 64
        out[j] = cblas_dnrm2((blasint)a->rows, &AT(a, 0, j), 1);
#else /* squares summed in double, as the CUDA backend does */
        double s = 0.0;
        for (int64_t i = 0; i < a->rows; i++)
            s += (double)AT(a, i, j) * AT(a, i, j);
        out[j] = sqrt(s);
#endif
    }
    return TM_OK;
}

static tm_status R(col_sums)(void *ctx, const struct tm_bmat *a, double *out, char *err)
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
