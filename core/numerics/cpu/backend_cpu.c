/*
 * backend_cpu.c - the OpenBLAS + LAPACKE backend (see backend_cpu.h): the
 * context's lifecycle, host memory (which is the backend's, so matrices
 * change hands without copies) and the ops table; the ops themselves live
 * in the other files of core/numerics/cpu/ (cpu_internal.h lists them).
 */
#include "core/numerics/backend_cpu.h"

#include <string.h>

#include "core/alloc.h"
#include "core/numerics/cpu/cpu_internal.h"

/* ---- lifecycle ---- */

static tm_status cpu_create(const struct tm_backend_config *cfg, void **out, char *err)
{
    if (cfg && cfg->dtype != TM_DTYPE_AUTO && cfg->dtype != TM_DTYPE_FLOAT32 &&
        cfg->dtype != TM_DTYPE_FLOAT64)
        return tm_errf(err, TM_EINVAL, "cpu backend: unknown dtype %d", (int)cfg->dtype);
    struct cpu_ctx *c = tm_calloc(1, sizeof(*c));
    if (!c)
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate a context");
    int n_threads = cfg && cfg->n_threads > 1 ? cfg->n_threads : 1;
    c->team = tm_team_new(n_threads < MAX_THREADS ? n_threads : MAX_THREADS);
    if (!c->team) {
        tm_free(c);
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate a thread team");
    }
    c->n_threads = tm_team_size(c->team);
    c->es = cfg && cfg->dtype == TM_DTYPE_FLOAT32 ? sizeof(float) : sizeof(double);
    *out = c;
    return TM_OK;
}

static void cpu_destroy(void *ctx)
{
    struct cpu_ctx *c = ctx;
    if (c)
        tm_team_free(c->team);
    tm_free(ctx);
}

static tm_status cpu_sync(void *ctx, char *err)
{
    (void)ctx;
    (void)err;
    return TM_OK;
}

static size_t cpu_elem_size(void *ctx)
{
    return ((const struct cpu_ctx *)ctx)->es;
}

static size_t dtype_size(enum tm_dtype dtype)
{
    return dtype == TM_DTYPE_FLOAT32 ? sizeof(float) : sizeof(double);
}

static size_t cpu_mat_bytes(enum tm_dtype dtype, int64_t rows, int64_t cols)
{
    return (size_t)rows * (size_t)cols * dtype_size(dtype);
}

static size_t cpu_sparse_bytes(enum tm_dtype dtype, int64_t rows, int64_t cols, int64_t nnz,
                               int64_t k)
{
    const size_t es = dtype_size(dtype);
    /* X itself is borrowed; X^T is built, and spmm packs its dense operand.
     * float32 keeps float copies of X's values too, and X^T's are built as
     * double before they become float; float64 makes a float copy of one
     * orientation's values for gram_spmm_f32 (randomized SVD). */
    size_t values =
        es == sizeof(double) ? sizeof(double) + sizeof(float) : sizeof(double) + 2 * sizeof(float);
    return (size_t)nnz * (values + sizeof(int32_t)) + (size_t)(cols + 1) * sizeof(int64_t) +
           (size_t)(rows > cols ? rows : cols) * (size_t)k * es;
}

/* ---- memory ---- */

tm_status tm__cpu_mat_alloc(void *ctx, int64_t rows, int64_t cols, struct tm_bmat *out, char *err)
{
    const size_t es = ((const struct cpu_ctx *)ctx)->es;
    memset(out, 0, sizeof(*out));
    if (rows < 0 || cols < 0)
        return tm_errf(err, TM_ERANGE, "cpu backend: bad shape %lld x %lld", (long long)rows,
                       (long long)cols);
    out->data = tm_calloc((size_t)rows * (size_t)cols + 1, es);
    if (!out->data)
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate a %lld x %lld matrix",
                       (long long)rows, (long long)cols);
    out->rows = rows;
    out->cols = cols;
    out->ld = rows > 0 ? rows : 1;
    out->elem_size = es;
    return TM_OK;
}

void tm__cpu_mat_free(void *ctx, struct tm_bmat *m)
{
    (void)ctx;
    tm_free(m->data);
    memset(m, 0, sizeof(*m));
}

/* Host memory is the backend's: a buffer changes hands, never copies. A
 * float32 context adopts it converted in place (its floats in the first
 * half of the buffer), and cannot give it back (mat_release returns NULL:
 * the caller downloads). */
static tm_status cpu_mat_adopt(void *ctx, double *host, int64_t rows, int64_t cols,
                               struct tm_bmat *out, char *err)
{
    const size_t es = ((const struct cpu_ctx *)ctx)->es;
    memset(out, 0, sizeof(*out));
    if (rows < 0 || cols < 0 || !host)
        return tm_errf(err, TM_EINVAL, "cpu backend: cannot adopt a %lld x %lld matrix at %p",
                       (long long)rows, (long long)cols, (void *)host);
    if (es == sizeof(float)) {
        /* Element i is read before the floats up to it are written over. */
        float *f = (float *)(void *)host;
        for (size_t i = 0, n = (size_t)rows * (size_t)cols; i < n; i++) {
            float v = (float)host[i];
            f[i] = v;
        }
    }
    out->data = host;
    out->rows = rows;
    out->cols = cols;
    out->ld = rows > 0 ? rows : 1;
    out->elem_size = es;
    return TM_OK;
}

static double *cpu_mat_release(void *ctx, struct tm_bmat *m)
{
    if (cpu_f32(ctx))
        return NULL;
    double *host = m->data;
    memset(m, 0, sizeof(*m));
    return host;
}

static tm_status cpu_upload(void *ctx, const double *src, int64_t ld_src, const struct tm_bmat *dst,
                            char *err)
{
    (void)err;
    for (int64_t j = 0; j < dst->cols; j++) {
        const double *s = src + (size_t)j * ld_src;
        if (cpu_f32(ctx)) {
            float *d = (float *)dst->data + (size_t)j * dst->ld;
            for (int64_t i = 0; i < dst->rows; i++)
                d[i] = (float)s[i];
        } else {
            memcpy((double *)dst->data + (size_t)j * dst->ld, s,
                   (size_t)dst->rows * sizeof(double));
        }
    }
    return TM_OK;
}

static tm_status cpu_download(void *ctx, const struct tm_bmat *src, double *dst, int64_t ld_dst,
                              char *err)
{
    (void)err;
    for (int64_t j = 0; j < src->cols; j++) {
        double *d = dst + (size_t)j * ld_dst;
        if (cpu_f32(ctx)) {
            const float *s = (const float *)src->data + (size_t)j * src->ld;
            for (int64_t i = 0; i < src->rows; i++)
                d[i] = s[i];
        } else {
            memcpy(d, (const double *)src->data + (size_t)j * src->ld,
                   (size_t)src->rows * sizeof(double));
        }
    }
    return TM_OK;
}

const struct tm_backend_ops tm__backend_cpu_ops = {
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .sync = cpu_sync,
    .elem_size = cpu_elem_size,
    .mat_bytes = cpu_mat_bytes,
    .sparse_bytes = cpu_sparse_bytes,
    .mat_alloc = tm__cpu_mat_alloc,
    .mat_free = tm__cpu_mat_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .mat_adopt = cpu_mat_adopt,
    .mat_release = cpu_mat_release,
    .sparse_upload = tm__cpu_sparse_upload,
    .sparse_free = tm__cpu_sparse_free,
    .spmm = tm__cpu_spmm,
    .gram_spmm = tm__cpu_gram_spmm,
    .gram_spmm_f32 = tm__cpu_gram_spmm_f32,
    .mu_update_fused = tm__cpu_mu_update_fused,
    .gemm = tm__cpu_gemm,
    .gram = tm__cpu_gram,
    .orth_qr = tm__cpu_orth_qr,
    .orth_lu = tm__cpu_orth_lu,
    .svd_small = tm__cpu_svd_small,
    .fill = tm__cpu_fill,
    .copy = tm__cpu_copy,
    .scale_cols = tm__cpu_scale_cols,
    .axpy = tm__cpu_axpy,
    .dot = tm__cpu_dot,
    .col_norms = tm__cpu_col_norms,
    .col_sums = tm__cpu_col_sums,
    .hals_sweep = tm__cpu_hals_sweep,
    .hals_sweep_fused = tm__cpu_hals_sweep_fused,
    .hals_inner_fused = tm__cpu_hals_inner_fused,
    .mu_update = tm__cpu_mu_update,
    .pgd_update = tm__cpu_pgd_update,
    .kl_spmm = tm__cpu_kl_spmm,
    .kl_sum = tm__cpu_kl_sum,
};

const struct tm_backend_ops *tm_backend_cpu(void)
{
    return &tm__backend_cpu_ops;
}
