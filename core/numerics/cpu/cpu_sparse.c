/*
 * cpu_sparse.c - the CPU backend's sparse products: X^T built at upload (a
 * parallel counting sort; in a float32 context, with float copies of the
 * values), and the products X B, X^T B and X X^T V / X^T X V, whose kernels
 * (cpu_sparse_t.h) are compiled here once per element type. The hottest
 * loops of every fit: each kernel is HOT_KERNEL-compiled for AVX2+FMA and
 * the baseline.
 */
#include "core/numerics/cpu/cpu_internal.h"

#include "core/alloc.h"

/* The first row r in [lo, hi] with indptr[r] >= target. */
static int64_t row_at_nnz(const int64_t *indptr, int64_t lo, int64_t hi, int64_t target)
{
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (indptr[mid] < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/*
 * X^T by counting sort, as tm_csr_transpose makes it (the same arrays), on
 * the context's threads: each part of X's rows counts its columns, the
 * counts become each part's first slot in every row of X^T, and each part
 * fills its slots, its rows in order after the earlier parts'. Part of
 * every fit, and faster than tm_csr_transpose from 2 threads (bench/NOTES.md,
 * "X^T at upload").
 */
struct csr_transpose_job {
    const struct tm_csr *x;
    struct tm_csr *t;
    int64_t bounds[MAX_THREADS + 1];
    int64_t *slot; /* parts x x->n_cols: counts, then next free slots */
};

static void transpose_count(void *arg, int part, double *buf)
{
    struct csr_transpose_job *j = arg;
    int64_t *count = j->slot + (size_t)part * (size_t)j->x->n_cols;
    (void)buf;
    for (int64_t p = j->x->indptr[j->bounds[part]]; p < j->x->indptr[j->bounds[part + 1]]; p++)
        count[j->x->indices[p]]++;
}

static void transpose_fill(void *arg, int part, double *buf)
{
    struct csr_transpose_job *j = arg;
    const struct tm_csr *x = j->x;
    int64_t *next = j->slot + (size_t)part * (size_t)x->n_cols;
    (void)buf;
    for (int64_t r = j->bounds[part]; r < j->bounds[part + 1]; r++)
        for (int64_t p = x->indptr[r]; p < x->indptr[r + 1]; p++) {
            int64_t dst = next[x->indices[p]]++;
            j->t->indices[dst] = (int32_t)r;
            j->t->data[dst] = x->data[p];
        }
}

static tm_status csr_transpose_par(const struct cpu_ctx *c, const struct tm_csr *x,
                                   struct tm_csr *t, char *err)
{
    int parts = c->n_threads > 1 ? c->n_threads : 1;
    if (parts == 1 || x->n_rows > INT32_MAX)
        return tm_csr_transpose(x, t, err);
    const int64_t nnz = tm_csr_nnz(x), cols = x->n_cols;
    struct csr_transpose_job job = {x, t, {0}, NULL};
    for (int q = 0; q <= parts; q++)
        job.bounds[q] = row_at_nnz(x->indptr, 0, x->n_rows, nnz * q / parts);
    job.bounds[parts] = x->n_rows;
    tm_status st = tm_csr_init(t, cols, x->n_rows, nnz, err);
    if (st != TM_OK)
        return st;
    job.slot = tm_calloc((size_t)parts * (size_t)cols + 1, sizeof(int64_t));
    if (!job.slot) {
        tm_csr_release(t);
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate the transpose's counts");
    }
    st = tm__cpu_par_for(c, parts, 1, transpose_count, &job, err);
    for (int64_t col = 0; st == TM_OK && col < cols; col++) {
        int64_t at = t->indptr[col];
        for (int q = 0; q < parts; q++) {
            int64_t *slot = job.slot + (size_t)q * (size_t)cols + (size_t)col, n = *slot;
            *slot = at;
            at += n;
        }
        t->indptr[col + 1] = at;
    }
    if (st == TM_OK)
        st = tm__cpu_par_for(c, parts, 1, transpose_fill, &job, err);
    tm_free(job.slot);
    if (st != TM_OK)
        tm_csr_release(t);
    return st;
}

/* A float copy of n values, returned owned (tm_free); NULL when it cannot
 * be had. Held as a tm_csr's data (see struct tm_bsparse). */
static double *floats_of(const double *v, int64_t n)
{
    float *f = tm_mallocarray((size_t)n + 1, sizeof(float));
    if (f)
        for (int64_t i = 0; i < n; i++)
            f[i] = (float)v[i];
    return (double *)(void *)f;
}

tm_status tm__cpu_sparse_upload(void *ctx, const struct tm_csr *x, struct tm_bsparse **out,
                                char *err)
{
    const struct cpu_ctx *c = ctx;
    *out = NULL;
    struct tm_bsparse *s = tm_calloc(1, sizeof(*s));
    if (!s)
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate a sparse handle");
    s->x = x;
    tm_status st = csr_transpose_par(c, x, &s->xt, err);
    if (st != TM_OK) {
        tm_free(s);
        return st;
    }
    if (cpu_f32(ctx)) {
        const int64_t nnz = tm_csr_nnz(x);
        double *xt32 = floats_of(s->xt.data, nnz);
        s->x32 = *x;
        s->x32.data = floats_of(x->data, nnz);
        if (!xt32 || !s->x32.data) {
            tm_free(xt32);
            s->x32.data = NULL;
            tm__cpu_sparse_free(ctx, s);
            return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate float32 values");
        }
        tm_free(s->xt.data);
        s->xt.data = xt32;
        s->x = &s->x32;
    }
    *out = s;
    return TM_OK;
}

void tm__cpu_sparse_free(void *ctx, struct tm_bsparse *s)
{
    (void)ctx;
    if (!s)
        return;
    tm_csr_release(&s->xt);
    tm_free(s->x32.data); /* only its values are its own */
    tm_free(s->x_f32);
    tm_free(s->xt_f32);
    tm_free(s->split_x.at);
    tm_free(s->split_xt.at);
    tm_free(s);
}

/* The first p in [lo, hi) with indices[p] >= col (indices sorted). */
static inline int64_t first_at_col(const int32_t *indices, int64_t lo, int64_t hi, int64_t col)
{
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (indices[mid] < col)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The first column of member t's range of output rows: output rows split
 * by their non-zeros (the rows of xr). */
static int64_t member_first_col(const struct tm_csr *xr, int member, int size)
{
    if (member == size)
        return xr->n_rows;
    return row_at_nnz(xr->indptr, 0, xr->n_rows, tm_csr_nnz(xr) * member / size);
}

/* The team members' splits of every row of xo, as gram_scatter_k would
 * search them; sp->at stays NULL when it cannot be had. */
static void make_splits(const struct tm_csr *xo, const struct tm_csr *xr, int size,
                        struct row_splits *sp)
{
    int64_t first[MAX_THREADS];
    for (int t = 1; t < size; t++)
        first[t] = member_first_col(xr, t, size);
    sp->at = tm_mallocarray((size_t)xo->n_rows * (size_t)(size - 1) + 1, sizeof(int64_t));
    if (!sp->at)
        return;
    for (int64_t r = 0; r < xo->n_rows; r++) {
        int64_t p = xo->indptr[r];
        for (int t = 1; t < size; t++) {
            p = first_at_col(xo->indices, p, xo->indptr[r + 1], first[t]);
            sp->at[(size_t)r * (size_t)(size - 1) + (size_t)(t - 1)] = p;
        }
    }
    sp->size = size;
}

#define CPU_TEMPLATE "core/numerics/cpu/cpu_sparse_t.h"
#include "core/numerics/cpu/cpu_both.h"

tm_status tm__cpu_spmm(void *ctx, const struct tm_bsparse *s, int trans, double alpha,
                       const struct tm_bmat *b, double beta, const struct tm_bmat *c, char *err)
{
    return (cpu_f32(ctx) ? f32_spmm : f64_spmm)(ctx, s, trans, alpha, b, beta, c, err);
}

tm_status tm__cpu_gram_spmm(void *ctx, const struct tm_bsparse *s, int side,
                            const struct tm_bmat *v, const struct tm_bmat *av, char *err)
{
    return (cpu_f32(ctx) ? f32_gram_spmm : f64_gram_spmm)(ctx, s, side, v, av, err);
}

/*
 * In a float64 context: V rounded to float32, the float32 kernels run on a
 * handle that shares X's and X^T's arrays but reads float copies of the
 * summed orientation's values (made on first use and kept with the handle,
 * 4 bytes a non-zero), and the product widened back. The dense operand the
 * gathers and scatters wait on is then half as wide (bench/NOTES.md,
 * "Randomized SVD k = 10 (svdspeed)"). In a float32 context, gram_spmm.
 */
tm_status tm__cpu_gram_spmm_f32(void *ctx, const struct tm_bsparse *s, int side,
                                const struct tm_bmat *v, const struct tm_bmat *av, char *err)
{
    if (cpu_f32(ctx))
        return f32_gram_spmm(ctx, s, side, v, av, err);
    /* The handle has the context's one owner (see gram_spmm_cols). */
    struct tm_bsparse *own = (struct tm_bsparse *)s;
    const struct tm_csr *xo = side == TM_NOTRANS ? &s->xt : s->x;
    float **copy = side == TM_NOTRANS ? &own->xt_f32 : &own->x_f32;
    const int64_t rows = v->rows, k = v->cols;
    float *v32 = NULL, *av32 = NULL;
    tm_status st = TM_OK;
    if (!*copy && !(*copy = (float *)(void *)floats_of(xo->data, tm_csr_nnz(xo))))
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate float32 values");
    v32 = tm_mallocarray((size_t)rows * (size_t)k + 1, sizeof(float));
    av32 = tm_mallocarray((size_t)av->rows * (size_t)k + 1, sizeof(float));
    if (!v32 || !av32) {
        st = tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate a %lld x %lld float32 operand",
                     (long long)rows, (long long)k);
        goto out;
    }
    for (int64_t j = 0; j < k; j++)
        for (int64_t i = 0; i < rows; i++)
            v32[i + (size_t)j * rows] = (float)((const double *)v->data)[i + (size_t)j * v->ld];
    struct tm_bsparse h = *s;
    if (side == TM_NOTRANS) {
        h.xt.data = (double *)(void *)*copy;
    } else {
        h.x32 = *s->x;
        h.x32.data = (double *)(void *)*copy;
        h.x = &h.x32;
    }
    struct tm_bmat vm = {rows, k, rows, sizeof(float), v32};
    struct tm_bmat am = {av->rows, k, av->rows, sizeof(float), av32};
    st = f32_gram_spmm(ctx, &h, side, &vm, &am, err);
    /* splits made on this call belong to the handle */
    if (!own->split_x.at)
        own->split_x = h.split_x;
    if (!own->split_xt.at)
        own->split_xt = h.split_xt;
    if (st == TM_OK)
        for (int64_t j = 0; j < k; j++)
            for (int64_t i = 0; i < av->rows; i++)
                ((double *)av->data)[i + (size_t)j * av->ld] = av32[i + (size_t)j * av->rows];
out:
    tm_free(av32);
    tm_free(v32);
    return st;
}
