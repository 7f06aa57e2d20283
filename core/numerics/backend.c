/* backend.c - moving host matrices into a backend and back (see backend.h). */
#include "core/numerics/backend.h"

#include "core/alloc.h"

tm_status tm_backend_take(const struct tm_backend_ops *ops, void *ctx, double **host, int64_t rows,
                          int64_t cols, struct tm_bmat *out, char *err)
{
    tm_status st;
    if (ops->mat_adopt) {
        st = ops->mat_adopt(ctx, *host, rows, cols, out, err);
    } else {
        st = ops->mat_alloc(ctx, rows, cols, out, err);
        if (st == TM_OK && (st = ops->upload(ctx, *host, rows, out, err)) != TM_OK)
            ops->mat_free(ctx, out);
        if (st == TM_OK)
            tm_free(*host);
    }
    if (st == TM_OK)
        *host = NULL;
    return st;
}

tm_status tm_backend_give(const struct tm_backend_ops *ops, void *ctx, struct tm_bmat *m,
                          double **host, char *err)
{
    if (ops->mat_release && m->ld == m->rows && (*host = ops->mat_release(ctx, m)))
        return TM_OK;
    double *h = tm_mallocarray((size_t)m->rows * (size_t)m->cols + 1, sizeof(double));
    if (!h)
        return tm_errf(err, TM_ENOMEM, "cannot allocate a %lld x %lld host matrix",
                       (long long)m->rows, (long long)m->cols);
    tm_status st = ops->download(ctx, m, h, m->rows, err);
    if (st != TM_OK) {
        tm_free(h);
        return st;
    }
    ops->mat_free(ctx, m);
    *host = h;
    return TM_OK;
}
