/*
 * cpu_threads.c - the CPU backend's parallel loop: a tiny parallel-for over
 * chunks on the context's team (team.h), the fixed cuts of rows into chunks
 * that make every parallel sum independent of the thread count, and the
 * row-major packing the products share.
 */
#include "core/numerics/cpu/cpu_internal.h"

#include "core/alloc.h"

struct par {
    void (*fn)(void *arg, int chunk, double *scratch);
    void *arg;
    int n_chunks;
    int n_threads;      /* members that take chunks: at most n_chunks */
    size_t scratch_len; /* doubles per thread */
    double *scratch;    /* n_threads * scratch_len */
};

static void par_member(void *arg, int member, int size)
{
    struct par *p = arg;
    (void)size;
    if (member >= p->n_threads)
        return;
    int lo = (int)((long)p->n_chunks * member / p->n_threads);
    int hi = (int)((long)p->n_chunks * (member + 1) / p->n_threads);
    for (int c = lo; c < hi; c++)
        p->fn(p->arg, c, p->scratch + (size_t)member * p->scratch_len);
}

tm_status tm__cpu_par_for(const struct cpu_ctx *c, int n_chunks, size_t scratch_len,
                          void (*fn)(void *, int, double *), void *arg, char *err)
{
    struct par p = {fn, arg, n_chunks, c->n_threads, scratch_len, NULL};
    if (p.n_threads > n_chunks)
        p.n_threads = n_chunks > 0 ? n_chunks : 1;
    p.scratch =
        tm_mallocarray((size_t)p.n_threads * (scratch_len ? scratch_len : 1), sizeof(double));
    if (!p.scratch)
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate loop scratch");
    if (p.n_threads == 1)
        par_member(&p, 0, 1);
    else
        tm_team_run(c->team, par_member, &p);
    tm_free(p.scratch);
    return TM_OK;
}

int tm__cpu_csr_chunks(const struct tm_csr *x, int64_t *bounds)
{
    int64_t n = x->n_rows, nnz = tm_csr_nnz(x);
    int nc = n < MAX_CHUNKS ? (int)(n > 0 ? n : 1) : MAX_CHUNKS;
    double total = (double)nnz + (double)n;
    bounds[0] = 0;
    int64_t r = 0;
    for (int c = 1; c < nc; c++) {
        double target = total * c / nc;
        while (r < n && (double)x->indptr[r] + (double)r < target)
            r++;
        bounds[c] = r;
    }
    bounds[nc] = n;
    return nc;
}

int tm__cpu_row_chunks(int64_t n, int64_t *bounds)
{
    int nc = n < MAX_CHUNKS ? (int)(n > 0 ? n : 1) : MAX_CHUNKS;
    for (int c = 0; c <= nc; c++)
        bounds[c] = n * c / nc;
    return nc;
}

/* In tiles of 8 columns, so that both sides stream. */
#define PACK_ROWS(T)                                                                               \
    for (int64_t j0 = 0; j0 < k; j0 += 8) {                                                        \
        int64_t nj = k - j0 < 8 ? k - j0 : 8;                                                      \
        for (int64_t i = 0; i < a->rows; i++) {                                                    \
            const T *src = (const T *)a->data + i + (size_t)j0 * a->ld;                            \
            T *d = (T *)dst + (size_t)i * k + j0;                                                  \
            for (int64_t j = 0; j < nj; j++)                                                       \
                d[j] = src[(size_t)j * a->ld];                                                     \
        }                                                                                          \
    }

void tm__cpu_pack_rows(const struct tm_bmat *a, void *dst)
{
    int64_t k = a->cols;
    if (a->elem_size == sizeof(float))
        PACK_ROWS(float)
    else
        PACK_ROWS(double)
}
