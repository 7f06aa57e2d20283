/* backend_cpu.c - the OpenBLAS + LAPACKE backend (see backend_cpu.h). */
#include "core/numerics/backend_cpu.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core/alloc.h"
#include "core/numerics/team.h"

/*
 * Rows are cut into at most this many chunks of about equal work, the same
 * for any thread count, and per-chunk partial sums are added in chunk order:
 * that is what makes the returned scalars independent of n_threads.
 */
#define MAX_CHUNKS 64
#define MAX_THREADS 64

struct cpu_ctx {
    int n_threads; /* the team's size */
    struct tm_team *team;
};

/* Where each team member's range of output rows starts in every row of a
 * CSR (gram_spmm's scatter phase): splits[r * (size - 1) + t - 1] for
 * members t = 1..size-1; made on first use, for one team size. */
struct row_splits {
    int size;
    int64_t *at;
};

struct tm_bsparse {
    const struct tm_csr *x; /* borrowed */
    struct tm_csr xt;       /* owned */
    struct row_splits split_x, split_xt;
};

/* ---- a tiny parallel-for over chunks, on the context's team ---- */

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

/* Runs fn on chunks 0..n_chunks-1 with per-thread scratch of scratch_len
 * doubles; TM_ENOMEM when the scratch cannot be had. Which member runs a
 * chunk never changes what the chunk computes. */
static tm_status par_for(const struct cpu_ctx *c, int n_chunks, size_t scratch_len,
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

/* Chunk boundaries over rows of a CSR, balanced by non-zeros plus rows. */
static int csr_chunks(const struct tm_csr *x, int64_t *bounds)
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

static int row_chunks(int64_t n, int64_t *bounds)
{
    int nc = n < MAX_CHUNKS ? (int)(n > 0 ? n : 1) : MAX_CHUNKS;
    for (int c = 0; c <= nc; c++)
        bounds[c] = n * c / nc;
    return nc;
}

#define AT(m, i, j) (((double *)(m)->data)[(i) + (size_t)(j) * (m)->ld])

/* Element `at` of n_chunks per-chunk partial matrices (each `stride`
 * doubles), added in chunk order: the order that makes a parallel sum the
 * same for any thread count. */
static double chunk_sum(const double *partial, int n_chunks, size_t stride, size_t at)
{
    double sum = 0.0;
    for (int q = 0; q < n_chunks; q++)
        sum += partial[(size_t)q * stride + at];
    return sum;
}

/*
 * The sparse kernels are the CPU path's hot loops: compiled at -O3 (the
 * build's -O2 does not vectorize loops of unknown trip count), and twice:
 * for AVX2+FMA and for the baseline, picked per call by cpuid
 * (HOT_KERNEL(name) defines name_avx2, name_base and the dispatcher name
 * around an always-inline name_body).
 */
#if defined(__clang__) /* no optimize attribute; clang contracts a*b+c by default */
#define HOT_OPT(...)
#else
#define HOT_OPT(...) __attribute__((optimize(__VA_ARGS__)))
#endif
#define HOT_BODY static inline __attribute__((always_inline))
#define HOT_KERNEL(name)                                                                           \
    HOT_OPT("O3", "fp-contract=fast")                                                              \
    __attribute__((target("avx2,fma"))) static void name##_avx2(void *arg, int chunk, double *buf) \
    {                                                                                              \
        name##_body(arg, chunk, buf);                                                              \
    }                                                                                              \
    HOT_OPT("O3") static void name##_base(void *arg, int chunk, double *buf)                       \
    {                                                                                              \
        name##_body(arg, chunk, buf);                                                              \
    }                                                                                              \
    static void name(void *arg, int chunk, double *buf)                                            \
    {                                                                                              \
        if (have_avx2_fma())                                                                       \
            name##_avx2(arg, chunk, buf);                                                          \
        else                                                                                       \
            name##_base(arg, chunk, buf);                                                          \
    }

static int have_avx2_fma(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* 4 doubles in a vector register (GCC/clang vector extension; on the
 * baseline target it becomes SSE2 pairs). Loads and stores go through memcpy,
 * so nothing needs more than double alignment. */
typedef double v4d __attribute__((vector_size(32)));
typedef int64_t v4i __attribute__((vector_size(32)));

#define LOAD4(v, p) memcpy(&(v), (p), sizeof(v))
#define STORE4(p, v) memcpy((p), &(v), sizeof(v))

#if defined(__clang__)
#define SHUFFLE4(a, b, i, j, k, l) __builtin_shufflevector((a), (b), i, j, k, l)
#else
#define SHUFFLE4(a, b, i, j, k, l) __builtin_shuffle((a), (b), (v4i){i, j, k, l})
#endif

/* Row-major copy of A (rows x k) into dst (rows * k), in tiles of 8 columns
 * so that both sides stream. */
static void pack_rows(const struct tm_bmat *a, double *dst)
{
    int64_t k = a->cols;
    for (int64_t j0 = 0; j0 < k; j0 += 8) {
        int64_t nj = k - j0 < 8 ? k - j0 : 8;
        for (int64_t i = 0; i < a->rows; i++) {
            const double *src = (const double *)a->data + i + (size_t)j0 * a->ld;
            double *d = dst + (size_t)i * k + j0;
            for (int64_t j = 0; j < nj; j++)
                d[j] = src[(size_t)j * a->ld];
        }
    }
}

/* ---- lifecycle ---- */

static tm_status cpu_create(const struct tm_backend_config *cfg, void **out, char *err)
{
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
    (void)ctx;
    return sizeof(double);
}

static size_t cpu_mat_bytes(enum tm_dtype dtype, int64_t rows, int64_t cols)
{
    (void)dtype;
    return (size_t)rows * (size_t)cols * sizeof(double);
}

static size_t cpu_sparse_bytes(enum tm_dtype dtype, int64_t rows, int64_t cols, int64_t nnz,
                               int64_t k)
{
    (void)dtype;
    (void)rows;
    /* X itself is borrowed; X^T is built, and spmm packs its dense operand. */
    return (size_t)nnz * (sizeof(double) + sizeof(int32_t)) + (size_t)(cols + 1) * sizeof(int64_t) +
           (size_t)(rows > cols ? rows : cols) * (size_t)k * sizeof(double);
}

/* ---- memory ---- */

static tm_status cpu_mat_alloc(void *ctx, int64_t rows, int64_t cols, struct tm_bmat *out,
                               char *err)
{
    (void)ctx;
    memset(out, 0, sizeof(*out));
    if (rows < 0 || cols < 0)
        return tm_errf(err, TM_ERANGE, "cpu backend: bad shape %lld x %lld", (long long)rows,
                       (long long)cols);
    out->data = tm_calloc((size_t)rows * (size_t)cols + 1, sizeof(double));
    if (!out->data)
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate a %lld x %lld matrix",
                       (long long)rows, (long long)cols);
    out->rows = rows;
    out->cols = cols;
    out->ld = rows > 0 ? rows : 1;
    out->elem_size = sizeof(double);
    return TM_OK;
}

static void cpu_mat_free(void *ctx, struct tm_bmat *m)
{
    (void)ctx;
    tm_free(m->data);
    memset(m, 0, sizeof(*m));
}

/* Host memory is the backend's: a buffer changes hands, never copies. */
static tm_status cpu_mat_adopt(void *ctx, double *host, int64_t rows, int64_t cols,
                               struct tm_bmat *out, char *err)
{
    (void)ctx;
    memset(out, 0, sizeof(*out));
    if (rows < 0 || cols < 0 || !host)
        return tm_errf(err, TM_EINVAL, "cpu backend: cannot adopt a %lld x %lld matrix at %p",
                       (long long)rows, (long long)cols, (void *)host);
    out->data = host;
    out->rows = rows;
    out->cols = cols;
    out->ld = rows > 0 ? rows : 1;
    out->elem_size = sizeof(double);
    return TM_OK;
}

static double *cpu_mat_release(void *ctx, struct tm_bmat *m)
{
    (void)ctx;
    double *host = m->data;
    memset(m, 0, sizeof(*m));
    return host;
}

static tm_status cpu_upload(void *ctx, const double *src, int64_t ld_src, const struct tm_bmat *dst,
                            char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < dst->cols; j++)
        memcpy(&AT(dst, 0, j), src + (size_t)j * ld_src, (size_t)dst->rows * sizeof(double));
    return TM_OK;
}

static tm_status cpu_download(void *ctx, const struct tm_bmat *src, double *dst, int64_t ld_dst,
                              char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < src->cols; j++)
        memcpy(dst + (size_t)j * ld_dst, &AT(src, 0, j), (size_t)src->rows * sizeof(double));
    return TM_OK;
}

/*
 * X^T by counting sort, as tm_csr_transpose makes it (the same arrays), on
 * the context's threads: each part of X's rows counts its columns, the
 * counts become each part's first slot in every row of X^T, and each part
 * fills its slots, its rows in order after the earlier parts' (make
 * bench-kernels, 20 Newsgroups, 2 threads: sparse_upload 11.8-12.7 ms with
 * the one-thread transpose, 7.2-10.8 with this; part of every fit).
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
    st = par_for(c, parts, 1, transpose_count, &job, err);
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
        st = par_for(c, parts, 1, transpose_fill, &job, err);
    tm_free(job.slot);
    if (st != TM_OK)
        tm_csr_release(t);
    return st;
}

static tm_status cpu_sparse_upload(void *ctx, const struct tm_csr *x, struct tm_bsparse **out,
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
    *out = s;
    return TM_OK;
}

static void cpu_sparse_free(void *ctx, struct tm_bsparse *s)
{
    (void)ctx;
    if (!s)
        return;
    tm_csr_release(&s->xt);
    tm_free(s->split_x.at);
    tm_free(s->split_xt.at);
    tm_free(s);
}

/* Software prefetch of the operand row that non-zero p will touch: the rows
 * are gathered (or scattered) in index order, which no hardware prefetcher
 * follows, and the operand outgrows L2. Only a hint: results are unchanged. */
#define PF_DIST 12
HOT_BODY void prefetch_row(const double *base, const int32_t *indices, int64_t p, int64_t pend,
                           int64_t k)
{
    if (p < pend) {
        const char *row = (const char *)(base + (size_t)indices[p] * k);
        for (int64_t o = 0; o < k * (int64_t)sizeof(double); o += 64)
            __builtin_prefetch(row + o, 0, 3);
        __builtin_prefetch(row + k * (int64_t)sizeof(double) - 1, 0, 3);
    }
}

/* row += v * d (k doubles), as explicit 4-wide vectors: GCC keeps the plain
 * loop scalar when it cannot rule out that row and d overlap (it does not
 * trust restrict on locals), and the scatter kernels are those loops. Each
 * element is one fused multiply-add either way. */
HOT_BODY void axpy_row(double *row, double v, const double *d, const int64_t k)
{
    const v4d vv = {v, v, v, v};
    int64_t c = 0;
    for (; c + 4 <= k; c += 4) {
        v4d a, b;
        LOAD4(a, row + c);
        LOAD4(b, d + c);
        a += vv * b;
        STORE4(row + c, a);
    }
    for (; c < k; c++)
        row[c] += v * d[c];
}

/* ---- sparse products ---- */

/* Rows of a product are computed row-major into a tile of TILE rows, then
 * stored column by column, so that C is written in runs, not by stride ld. */
#define TILE 64

struct spmm_job {
    const struct tm_csr *x;
    const int64_t *bounds;
    const double *b; /* packed row-major, or B's single column when k == 1 */
    int64_t k;
    double alpha, beta;
    const struct tm_bmat *c;
};

/*
 * The kernels below take k as an argument of an always-inline body, and each
 * kernel's dispatcher calls that body with a literal k for every k up to
 * FIXED_K_MAX (the widths the Lanczos blocks, randomized SVD's k + 10 and
 * NMF's topics usually have): with k known, the k sums live in registers
 * and the loop over them unrolls. `make bench-kernels` on 20 Newsgroups, one
 * thread, fastest of 10, against a runtime k: k = 3, X^T B 4.4-6.4 ms
 * against 13.4-14.0 and X B 5.2-8.8 against 13.7-14.5; k = 20, X^T B
 * 21.4-22.3 against 23.0-29.0, X B about the same. Wider products keep a
 * runtime k. Every width computes the same sums in the same order.
 */
#define FIXED_K_MAX 32
/* Kept by hand: clang-format would make a staircase of the cases. */
/* clang-format off */
#define FIXED_K_CASES(CALL)                                                                        \
    CALL(1) CALL(2) CALL(3) CALL(4) CALL(5) CALL(6) CALL(7) CALL(8) CALL(9) CALL(10) CALL(11)      \
    CALL(12) CALL(13) CALL(14) CALL(15) CALL(16) CALL(17) CALL(18) CALL(19) CALL(20) CALL(21)      \
    CALL(22) CALL(23) CALL(24) CALL(25) CALL(26) CALL(27) CALL(28) CALL(29) CALL(30) CALL(31)      \
    CALL(32)
/* clang-format on */

HOT_BODY void spmm_rows(const struct spmm_job *j, int chunk, double *buf, const int64_t k)
{
    const struct tm_csr *x = j->x;
    const double *restrict b = j->b;
    const int64_t pend_all = x->indptr[j->bounds[chunk + 1]];
    for (int64_t i0 = j->bounds[chunk]; i0 < j->bounds[chunk + 1]; i0 += TILE) {
        int64_t ni = j->bounds[chunk + 1] - i0 < TILE ? j->bounds[chunk + 1] - i0 : TILE;
        for (int64_t g = 0; g < ni; g++) {
            double sums[FIXED_K_MAX];
            double *restrict acc = k <= FIXED_K_MAX ? sums : buf + g * k;
            for (int64_t r = 0; r < k; r++)
                acc[r] = 0.0;
            const int64_t pend = x->indptr[i0 + g + 1];
            for (int64_t p = x->indptr[i0 + g]; p < pend; p++) {
                const double v = x->data[p];
                const double *restrict brow = b + (size_t)x->indices[p] * k;
                prefetch_row(b, x->indices, p + PF_DIST, pend_all, k);
                for (int64_t r = 0; r < k; r++)
                    acc[r] += v * brow[r];
            }
            if (k <= FIXED_K_MAX)
                memcpy(buf + g * k, sums, (size_t)k * sizeof(double));
        }
        for (int64_t r = 0; r < k; r++) {
            double *restrict c = (double *)j->c->data + i0 + (size_t)r * j->c->ld;
            if (j->beta == 0.0)
                for (int64_t g = 0; g < ni; g++)
                    c[g] = j->alpha * buf[g * k + r];
            else
                for (int64_t g = 0; g < ni; g++)
                    c[g] = j->alpha * buf[g * k + r] + j->beta * c[g];
        }
    }
}

/* acc (k) = row i of x times the row-major b, as spmm_rows sums it. */
HOT_BODY void gather_row_k(const struct tm_csr *x, int64_t i, const double *restrict b,
                           int64_t pend_all, double *restrict acc, const int64_t k)
{
    double sums[FIXED_K_MAX];
    double *restrict s = k <= FIXED_K_MAX ? sums : acc;
    for (int64_t r = 0; r < k; r++)
        s[r] = 0.0;
    const int64_t pend = x->indptr[i + 1];
    for (int64_t p = x->indptr[i]; p < pend; p++) {
        const double v = x->data[p];
        const double *restrict brow = b + (size_t)x->indices[p] * k;
        prefetch_row(b, x->indices, p + PF_DIST, pend_all, k);
        for (int64_t r = 0; r < k; r++)
            s[r] += v * brow[r];
    }
    if (k <= FIXED_K_MAX)
        memcpy(acc, sums, (size_t)k * sizeof(double));
}

#define GATHER_ROW_CASE(K)                                                                         \
    case K:                                                                                        \
        gather_row_k(x, i, b, pend_all, acc, K);                                                   \
        return;

HOT_BODY void gather_row(const struct tm_csr *x, int64_t i, const double *restrict b,
                         int64_t pend_all, double *restrict acc, const int64_t k)
{
    switch (k) {
        FIXED_K_CASES(GATHER_ROW_CASE)
    default:
        gather_row_k(x, i, b, pend_all, acc, k);
    }
}

#define SPMM_ROWS_CASE(K)                                                                          \
    case K:                                                                                        \
        spmm_rows(j, chunk, buf, K);                                                               \
        return;

HOT_BODY void spmm_chunk_body(void *arg, int chunk, double *buf)
{
    const struct spmm_job *j = arg;
    switch (j->k) {
        FIXED_K_CASES(SPMM_ROWS_CASE)
    default:
        spmm_rows(j, chunk, buf, j->k);
    }
}

HOT_KERNEL(spmm_chunk)

/*
 * NEEDSWORK: the sparse products are bound by the latency of the gathered (or
 * scattered) rows at float64: 20 Newsgroups, k = 20, one core, about 20-25 ms
 * per product, 15-20 ns per non-zero, with the software prefetch above and
 * the k sums in registers (FIXED_K_MAX). Tried and measured no faster on the
 * 2-core VM (2 MiB L2): column panels sized for L2 (one task per panel); X's
 * columns renumbered by descending document frequency so that X * B gathers
 * from a hot, L2-sized top of B (the 10,000 most frequent terms hold 78% of
 * the non-zeros): the gather got 7% faster, but packing B in that order
 * scatters its rows and cost as much, and the scatter path below stayed
 * faster (15-17 ms against 19-32 ms, k = 20, 2 threads); document panels of
 * X^T sized for L2, slower with every panel count (most term rows hold fewer
 * than 10 non-zeros, so the per-row cost of each pass dominates). The scatter
 * loops were scalar until axpy_row (GCC does not trust restrict on locals),
 * and gram_spmm's four private accumulators (66 MB at k = 110) gave way to
 * one shared one (gram_member): both measured faster. Still untried: a
 * float32 copy of the dense operand (30% faster in a standalone gather;
 * changes results beyond float64 rounding); the same owner-computes split
 * (row_splits) for spmm_scatter below, which would drop its accumulators and
 * reduction but make every member stream all of B; NMF's next X Ht made in
 * the H half, each new row of Ht scattered along its row of X^T into one
 * accumulator owned by document ranges (gram_spmm's two phases), which would
 * trade the W half's gather from Ht (21 MB at k = 20) for a scatter into 3
 * MB, the same sums in the same order, at the price of a barrier per block.
 * The fused NMF halves keep both factors transposed, so F's rows are gathered
 * as they lie and M's tile is one run (packing F had been 7% of an mu fit's
 * perf samples). The HALS sweeps in two 8-wide AVX-512 vectors instead of
 * four 4-wide ones gave the same bits and a slower fit (NMF cd k=20: 5.9
 * against 5.3-5.6 s). On a 2-core AMD EPYC VM (2026-12-03, make
 * bench-kernels, 2 threads, fastest of 20, A/B in turns) these were all
 * within its noise: every kernel built for AVX-512 with 512-bit
 * auto-vectorization, prefetching exactly the lines a row spans (a loop of 3
 * or 4) or dropping the prefetch of its last byte, PF_DIST 6 or 24, and
 * TEAM_SPINS 40000; without the prefetch every product took twice as long.
 * So were (2026-12-04, 6 to 10 runs in turns, medians) prefetches into L2
 * only (locality 1 or 2) at PF_DIST 12 or 24, two interleaved sums in
 * gram_rows' gather for k <= 4, and the right column of the fused halves'
 * Gram lanes held in registers.
 *
 * When op(X) is wide (fewer output rows than B has rows), gathering rows of a
 * big B for each non-zero is bound by memory latency; instead walk the other
 * orientation's rows (columns of op(X)) streaming B once, in tiles, and
 * scatter into SCATTER_PARTS private row-major accumulators of the small
 * output, summed in a fixed order: deterministic for any thread count.
 */
#define SCATTER_PARTS 4

struct scatter_job {
    const struct tm_csr *xo; /* rows = columns of op(X) */
    const int64_t *bounds;   /* SCATTER_PARTS ranges of xo's rows */
    const struct tm_bmat *b;
    int64_t k, r;
    double *acc; /* SCATTER_PARTS x r x k, zeroed */
    double alpha, beta;
    const struct tm_bmat *c;
    const int64_t *rbounds; /* output row chunks for the reduction */
    const double *vp;       /* gram_spmm: V packed row-major, gathered */
};

HOT_BODY void scatter_rows(const struct scatter_job *j, int part, double *buf, const int64_t k)
{
    const struct tm_csr *xo = j->xo;
    const int64_t ld = j->b->ld;
    double *restrict cp = j->acc + (size_t)part * (size_t)j->r * (size_t)k;
    const int64_t pend_all = xo->indptr[j->bounds[part + 1]];
    for (int64_t j0 = j->bounds[part]; j0 < j->bounds[part + 1]; j0 += TILE) {
        int64_t nj = j->bounds[part + 1] - j0 < TILE ? j->bounds[part + 1] - j0 : TILE;
        for (int64_t c = 0; c < k; c++) {
            const double *src = (const double *)j->b->data + j0 + (size_t)c * ld;
            for (int64_t g = 0; g < nj; g++)
                buf[g * k + c] = src[g];
        }
        for (int64_t g = 0; g < nj; g++) {
            const double *restrict brow = buf + g * k;
            for (int64_t p = xo->indptr[j0 + g]; p < xo->indptr[j0 + g + 1]; p++) {
                const double v = xo->data[p];
                double *restrict crow = cp + (size_t)xo->indices[p] * k;
                prefetch_row(cp, xo->indices, p + PF_DIST, pend_all, k);
                axpy_row(crow, v, brow, k);
            }
        }
    }
}

#define SCATTER_ROWS_CASE(K)                                                                       \
    case K:                                                                                        \
        scatter_rows(j, part, buf, K);                                                             \
        return;

HOT_BODY void scatter_chunk_body(void *arg, int part, double *buf)
{
    const struct scatter_job *j = arg;
    switch (j->k) {
        FIXED_K_CASES(SCATTER_ROWS_CASE)
    default:
        scatter_rows(j, part, buf, j->k);
    }
}

HOT_KERNEL(scatter_chunk)

static void reduce_chunk(void *arg, int chunk, double *buf)
{
    const struct scatter_job *j = arg;
    const int64_t k = j->k;
    const size_t part = (size_t)j->r * (size_t)k;
    (void)buf;
    for (int64_t c = 0; c < k; c++) {
        double *col = (double *)j->c->data + (size_t)c * j->c->ld;
        for (int64_t i = j->rbounds[chunk]; i < j->rbounds[chunk + 1]; i++) {
            const double *a = j->acc + (size_t)i * k + c;
            double sum = 0.0;
            for (int q = 0; q < SCATTER_PARTS; q++)
                sum += a[q * part];
            col[i] = j->beta == 0.0 ? j->alpha * sum : j->alpha * sum + j->beta * col[i];
        }
    }
}

/*
 * G V for narrow V (k <= GRAM_ONE_PASS_MAX_K) in one pass over Xo's rows:
 * each row's dot products with V (gathered) are scattered back along the
 * same row while it is in L1, into spmm_scatter's private accumulators,
 * which are small at this width.
 */
HOT_BODY void gram_rows(const struct scatter_job *j, int part, double *buf, const int64_t k)
{
    const struct tm_csr *xo = j->xo;
    double *cp = j->acc + (size_t)part * (size_t)j->r * (size_t)k;
    const int64_t pend_all = xo->indptr[j->bounds[part + 1]];
    for (int64_t row = j->bounds[part]; row < j->bounds[part + 1]; row++) {
        double dots[FIXED_K_MAX];
        double *d = k <= FIXED_K_MAX ? dots : buf;
        gather_row(xo, row, j->vp, pend_all, d, k);
        for (int64_t p = xo->indptr[row]; p < xo->indptr[row + 1]; p++)
            axpy_row(cp + (size_t)xo->indices[p] * k, xo->data[p], d, k);
    }
}

#define GRAM_ROWS_CASE(K)                                                                          \
    case K:                                                                                        \
        gram_rows(j, part, buf, K);                                                                \
        return;

HOT_BODY void gram_spmm_chunk_body(void *arg, int part, double *buf)
{
    const struct scatter_job *j = arg;
    switch (j->k) {
        FIXED_K_CASES(GRAM_ROWS_CASE)
    default:
        gram_rows(j, part, buf, j->k);
    }
}

HOT_KERNEL(gram_spmm_chunk)

/*
 * G V for the Gram operator G = Xo^T Xo, the products summed over Xo's rows
 * (terms, for X X^T V): each row's dot products with V, d = Xo[t,:] V, are
 * gathered, then scattered back, out[j,:] += Xo[t,j] d, along the same
 * row; the intermediate Xo V is never stored whole. Done in blocks of rows,
 * in two phases a team meets between: the block's d rows gathered (rows
 * split by non-zeros), then scattered, each member owning a range of output
 * rows, so that no two members add to the same row and one accumulator
 * serves all (a private accumulator per part of the rows, summed after,
 * kept 4 output-sized arrays in cache for k = 110 and cost a reduction
 * pass). Each output row gets its terms' contributions in row order,
 * whatever the team's size: deterministic.
 */
struct gram_spmm_job {
    const struct tm_csr *xo;
    const double *vp;                /* V packed row-major (xo->n_cols x k) */
    const struct tm_csr *xr;         /* the other orientation: its rows are the output's */
    const struct row_splits *splits; /* of xo, for the team's size, or NULL */
    double *d;                       /* block_rows x k */
    double *acc;                     /* xo->n_cols x k, row-major, zeroed */
    int64_t k, block_rows;
    struct tm_team *team;
};

/* One member's part of a phase on rows [b0, b1): its args. */
struct gram_phase {
    const struct gram_spmm_job *j;
    int64_t b0, b1;
    int member, size;
};

HOT_BODY void gram_gather_k(const struct gram_phase *ph, const int64_t k)
{
    const struct tm_csr *xo = ph->j->xo;
    const int64_t *indptr = xo->indptr;
    int64_t n0 = indptr[ph->b0], n1 = indptr[ph->b1];
    int64_t lo = row_at_nnz(indptr, ph->b0, ph->b1, n0 + (n1 - n0) * ph->member / ph->size);
    int64_t hi =
        ph->member + 1 == ph->size
            ? ph->b1
            : row_at_nnz(indptr, ph->b0, ph->b1, n0 + (n1 - n0) * (ph->member + 1) / ph->size);
    for (int64_t r = lo; r < hi; r++)
        gather_row(xo, r, ph->j->vp, indptr[hi], ph->j->d + (r - ph->b0) * k, k);
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

HOT_BODY void gram_scatter_k(const struct gram_phase *ph, const int64_t k)
{
    const struct tm_csr *xo = ph->j->xo;
    const int member = ph->member, size = ph->size;
    const int64_t clo = member_first_col(ph->j->xr, member, size);
    const int64_t chi = member_first_col(ph->j->xr, member + 1, size);
    const struct row_splits *sp =
        ph->j->splits && ph->j->splits->size == size ? ph->j->splits : NULL;
    double *acc = ph->j->acc;
    for (int64_t r = ph->b0; r < ph->b1; r++) {
        int64_t p0, p1;
        if (sp) {
            const int64_t *at = sp->at + (size_t)r * (size_t)(size - 1);
            p0 = member == 0 ? xo->indptr[r] : at[member - 1];
            p1 = member == size - 1 ? xo->indptr[r + 1] : at[member];
        } else {
            p0 = first_at_col(xo->indices, xo->indptr[r], xo->indptr[r + 1], clo);
            p1 = first_at_col(xo->indices, p0, xo->indptr[r + 1], chi);
        }
        const double *d = ph->j->d + (r - ph->b0) * k;
        for (int64_t p = p0; p < p1; p++) {
            const double v = xo->data[p];
            double *row = acc + (size_t)xo->indices[p] * k;
            prefetch_row(acc, xo->indices, p + PF_DIST, p1, k);
            axpy_row(row, v, d, k);
        }
    }
}

#define GRAM_GATHER_CASE(K)                                                                        \
    case K:                                                                                        \
        gram_gather_k(ph, K);                                                                      \
        return;
#define GRAM_SCATTER_CASE(K)                                                                       \
    case K:                                                                                        \
        gram_scatter_k(ph, K);                                                                     \
        return;

HOT_BODY void gram_gather_body(void *arg, int chunk, double *buf)
{
    const struct gram_phase *ph = arg;
    (void)chunk, (void)buf;
    switch (ph->j->k) {
        FIXED_K_CASES(GRAM_GATHER_CASE)
    default:
        gram_gather_k(ph, ph->j->k);
    }
}

HOT_BODY void gram_scatter_body(void *arg, int chunk, double *buf)
{
    const struct gram_phase *ph = arg;
    (void)chunk, (void)buf;
    switch (ph->j->k) {
        FIXED_K_CASES(GRAM_SCATTER_CASE)
    default:
        gram_scatter_k(ph, ph->j->k);
    }
}

HOT_KERNEL(gram_gather)
HOT_KERNEL(gram_scatter)

/* Up to this width gram_spmm makes one pass with private accumulators
 * (gram_rows); wider, the two phases (make bench-kernels, 2 threads,
 * fastest of 3 runs of 10: k = 3, 5.6 against 7.6 ms; k = 16, 17.4 against
 * 22.1 for the one pass; k = 110, 140 against 160). */
#define GRAM_ONE_PASS_MAX_K 8

/* Blocks end at GRAM_BLOCK_DOUBLES of d or at GRAM_BLOCK_NNZ non-zeros,
 * whichever comes first, so that the block's rows of xo are still in L2 when
 * they are walked again to scatter. */
#define GRAM_BLOCK_DOUBLES 65536
#define GRAM_BLOCK_NNZ 32768

static void gram_member(void *arg, int member, int size)
{
    const struct gram_spmm_job *j = arg;
    const int64_t n = j->xo->n_rows;
    for (int64_t b0 = 0, b1; b0 < n; b0 = b1) {
        b1 = n - b0 < j->block_rows ? n : b0 + j->block_rows;
        int64_t by_nnz = row_at_nnz(j->xo->indptr, b0, b1, j->xo->indptr[b0] + GRAM_BLOCK_NNZ);
        if (by_nnz > b0 && by_nnz < b1)
            b1 = by_nnz;
        struct gram_phase ph = {j, b0, b1, member, size};
        gram_gather(&ph, member, NULL);
        tm_team_sync(j->team);
        gram_scatter(&ph, member, NULL);
        tm_team_sync(j->team);
    }
}

/* c = alpha op(X) b + beta c by scattering along the rows of xo (the other
 * orientation), or, with kernel gram_spmm_chunk and vp, c = Xo^T Xo V. */
static tm_status scatter_run(struct cpu_ctx *ctx, const struct tm_csr *xo,
                             void (*kernel)(void *, int, double *), const double *vp, double alpha,
                             const struct tm_bmat *b, double beta, const struct tm_bmat *c,
                             char *err)
{
    int64_t k = b->cols, r = c->rows;
    double *acc = tm_calloc((size_t)SCATTER_PARTS * (size_t)r * (size_t)k + 1, sizeof(double));
    if (!acc)
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate %d x %lld x %lld sums",
                       SCATTER_PARTS, (long long)r, (long long)k);
    /* SCATTER_PARTS ranges of xo's rows balanced by non-zeros. */
    int64_t bounds[SCATTER_PARTS + 1], nnz = tm_csr_nnz(xo);
    bounds[0] = 0;
    for (int q = 1; q < SCATTER_PARTS; q++)
        bounds[q] = row_at_nnz(xo->indptr, 0, xo->n_rows, nnz * q / SCATTER_PARTS);
    bounds[SCATTER_PARTS] = xo->n_rows;
    int64_t rbounds[MAX_CHUNKS + 1];
    int nrc = row_chunks(r, rbounds);
    struct scatter_job job = {xo, bounds, b, k, r, acc, alpha, beta, c, rbounds, vp};
    tm_status st = par_for(ctx, SCATTER_PARTS, (size_t)TILE * (size_t)k, kernel, &job, err);
    if (st == TM_OK)
        st = par_for(ctx, nrc, 1, reduce_chunk, &job, err);
    tm_free(acc);
    return st;
}

static tm_status spmm_scatter(struct cpu_ctx *ctx, const struct tm_csr *xo, double alpha,
                              const struct tm_bmat *b, double beta, const struct tm_bmat *c,
                              char *err)
{
    return scatter_run(ctx, xo, scatter_chunk, NULL, alpha, b, beta, c, err);
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

struct transpose_job {
    const double *src; /* rows x k, row-major */
    int64_t k;
    const struct tm_bmat *dst;
    const int64_t *bounds;
};

static void unpack_chunk(void *arg, int chunk, double *buf)
{
    const struct transpose_job *j = arg;
    (void)buf;
    for (int64_t c = 0; c < j->k; c++) {
        double *col = (double *)j->dst->data + (size_t)c * j->dst->ld;
        for (int64_t i = j->bounds[chunk]; i < j->bounds[chunk + 1]; i++)
            col[i] = j->src[(size_t)i * j->k + c];
    }
}

static tm_status gram_spmm_cols(struct cpu_ctx *c, const struct tm_bsparse *s, int side,
                                const struct tm_bmat *v, const struct tm_bmat *av, char *err)
{
    /* X X^T V sums over terms: the rows of X^T; X^T X V over documents.
     * The other orientation's row pointers balance the output ranges. */
    const struct tm_csr *xo = side == TM_NOTRANS ? &s->xt : s->x;
    const struct tm_csr *xr = side == TM_NOTRANS ? s->x : &s->xt;
    const int64_t k = v->cols, r = v->rows;
    if (k <= GRAM_ONE_PASS_MAX_K) {
        double *vp = tm_mallocarray((size_t)r * (size_t)k + 1, sizeof(double));
        if (!vp)
            return tm_errf(err, TM_ENOMEM, "cpu backend: cannot pack a %lld x %lld operand",
                           (long long)r, (long long)k);
        pack_rows(v, vp);
        tm_status st = scatter_run(c, xo, gram_spmm_chunk, vp, 1.0, v, 0.0, av, err);
        tm_free(vp);
        return st;
    }
    int64_t block_rows = GRAM_BLOCK_DOUBLES / k;
    if (block_rows < 16)
        block_rows = 16;
    double *packed = tm_mallocarray((size_t)r * (size_t)k + 1, sizeof(double));
    double *acc = tm_calloc((size_t)r * (size_t)k + 1, sizeof(double));
    double *d = tm_mallocarray((size_t)block_rows * (size_t)k + 1, sizeof(double));
    if (!packed || !acc || !d) {
        tm_free(packed);
        tm_free(acc);
        tm_free(d);
        return tm_errf(err, TM_ENOMEM,
                       "cpu backend: cannot allocate the %lld x %lld Gram product's workspace",
                       (long long)r, (long long)k);
    }
    pack_rows(v, packed);
    /* The splits are only a help (without them gram_scatter searches each
     * row), made on first use: narrow products never need them, and a job
     * needs one orientation's (Lanczos up to k = 16 and NMF: neither). The
     * handle has the context's one owner, so filling it here races with
     * nothing; it was allocated writable (cpu_sparse_upload). */
    struct row_splits *sp = (struct row_splits *)(side == TM_NOTRANS ? &s->split_xt : &s->split_x);
    if (!sp->at && c->n_threads > 1)
        make_splits(xo, xr, c->n_threads, sp);
    struct gram_spmm_job job = {xo, packed, xr, sp->at ? sp : NULL, d, acc, k, block_rows, c->team};
    tm_team_run(c->team, gram_member, &job);
    tm_free(packed);
    tm_free(d);
    int64_t rb[MAX_CHUNKS + 1];
    int nrc = row_chunks(r, rb);
    struct transpose_job tj = {acc, k, av, rb};
    tm_status st = par_for(c, nrc, 1, unpack_chunk, &tj, err);
    tm_free(acc);
    return st;
}

/*
 * Every column of G V is made from the same column of V alone, so wide V
 * goes GRAM_MAX_COLS columns at a time (the same bits): the packed operand
 * and the accumulator of a narrower pass stay in cache (make bench-kernels,
 * 20 Newsgroups, 2 threads: 1.14 ms a column at 110 columns, 0.42 at 30),
 * and its workspace is smaller.
 */
#define GRAM_MAX_COLS 32

static tm_status cpu_gram_spmm(void *ctx, const struct tm_bsparse *s, int side,
                               const struct tm_bmat *v, const struct tm_bmat *av, char *err)
{
    const int64_t k = v->cols, passes = (k + GRAM_MAX_COLS - 1) / GRAM_MAX_COLS;
    tm_status st = TM_OK;
    for (int64_t q = 0; st == TM_OK && q < passes; q++) {
        /* passes of nearly equal width */
        int64_t c0 = k * q / passes, w = k * (q + 1) / passes - c0;
        struct tm_bmat vq = tm_bmat_cols(v, c0, w), aq = tm_bmat_cols(av, c0, w);
        st = gram_spmm_cols(ctx, s, side, &vq, &aq, err);
    }
    return st;
}

static tm_status cpu_spmm(void *ctx, const struct tm_bsparse *s, int trans, double alpha,
                          const struct tm_bmat *b, double beta, const struct tm_bmat *c, char *err)
{
    const struct tm_csr *x = trans ? &s->xt : s->x;
    if (b->cols > 1 && x->n_rows < x->n_cols)
        return spmm_scatter(ctx, trans ? s->x : &s->xt, alpha, b, beta, c, err);
    int64_t bounds[MAX_CHUNKS + 1];
    int nc = csr_chunks(x, bounds);
    double *packed = NULL;
    const double *bp = b->data;
    if (b->cols > 1) {
        packed = tm_mallocarray((size_t)b->rows * (size_t)b->cols + 1, sizeof(double));
        if (!packed)
            return tm_errf(err, TM_ENOMEM, "cpu backend: cannot pack a %lld x %lld operand",
                           (long long)b->rows, (long long)b->cols);
        pack_rows(b, packed);
        bp = packed;
    }
    struct spmm_job job = {x, bounds, bp, b->cols, alpha, beta, c};
    tm_status st = par_for(ctx, nc, (size_t)TILE * (size_t)b->cols, spmm_chunk, &job, err);
    tm_free(packed);
    return st;
}

/*
 * C = alpha A B + beta C for a tall A (rows x kk) times a small B (kk x nc):
 * the NMF updates' W G. Done here, row tiles in parallel, so that the mu and
 * pgd loops, like cd's, never wake OpenBLAS's threads (see GRAM_MAX_K). Each
 * element is one sum over p in order: the same for any thread count.
 */
#define SMALL_GEMM_MAX 4096 /* kk * kk */
#define GEMM_TILE 256

struct small_gemm_job {
    const struct tm_bmat *a, *b, *c;
    double alpha, beta;
    const int64_t *bounds;
};

/* Rows [i0, i0 + 4) x columns [c0, c0 + nc) of C from the packed tile
 * (rows x kk, column-major, leading dimension GEMM_TILE, row r0 first): the
 * nc sums of 4 rows stay in vector registers across p. */
HOT_BODY void small_gemm_block(const struct small_gemm_job *j, const double *tile, int64_t r0,
                               int64_t i0, int64_t c0, const int64_t nc)
{
    const int64_t kk = j->a->cols;
    v4d acc[8], a;
    for (int64_t c = 0; c < nc; c++)
        acc[c] = (v4d){0.0, 0.0, 0.0, 0.0};
    for (int64_t p = 0; p < kk; p++) {
        LOAD4(a, tile + r0 + p * GEMM_TILE);
        for (int64_t c = 0; c < nc; c++)
            acc[c] += a * AT(j->b, p, c0 + c);
    }
    for (int64_t c = 0; c < nc; c++) {
        double *cc = &AT(j->c, i0, c0 + c);
        v4d out = j->alpha * acc[c], old;
        if (j->beta != 0.0) {
            LOAD4(old, cc);
            out = j->alpha * acc[c] + j->beta * old;
        }
        STORE4(cc, out);
    }
}

#define SMALL_GEMM_CASE(NC)                                                                        \
    case NC:                                                                                       \
        small_gemm_block(j, tile, r0, i0 + r0, c0, NC);                                            \
        break;

HOT_BODY void small_gemm_chunk_body(void *arg, int chunk, double *tile)
{
    const struct small_gemm_job *j = arg;
    const int64_t kk = j->a->cols, ncols = j->c->cols;
    for (int64_t i0 = j->bounds[chunk]; i0 < j->bounds[chunk + 1]; i0 += GEMM_TILE) {
        int64_t ni = j->bounds[chunk + 1] - i0 < GEMM_TILE ? j->bounds[chunk + 1] - i0 : GEMM_TILE;
        /* A's tile column by column: runs the prefetcher follows, where
         * row blocks across kk columns would be kk streams at once. */
        for (int64_t p = 0; p < kk; p++)
            memcpy(tile + p * GEMM_TILE, &AT(j->a, i0, p), (size_t)ni * sizeof(double));
        int64_t r0 = 0;
        for (; r0 + 4 <= ni; r0 += 4)
            for (int64_t c0 = 0; c0 < ncols; c0 += 8) {
                switch (ncols - c0 < 8 ? ncols - c0 : 8) {
                    SMALL_GEMM_CASE(1)
                    SMALL_GEMM_CASE(2)
                    SMALL_GEMM_CASE(3)
                    SMALL_GEMM_CASE(4)
                    SMALL_GEMM_CASE(5)
                    SMALL_GEMM_CASE(6)
                    SMALL_GEMM_CASE(7)
                    SMALL_GEMM_CASE(8)
                }
            }
        for (; r0 < ni; r0++) /* the same sums, one row */
            for (int64_t col = 0; col < ncols; col++) {
                double t = 0.0;
                for (int64_t p = 0; p < kk; p++)
                    t += tile[r0 + p * GEMM_TILE] * AT(j->b, p, col);
                double *cc = &AT(j->c, i0 + r0, col);
                *cc = j->beta == 0.0 ? j->alpha * t : j->alpha * t + j->beta * *cc;
            }
    }
}

HOT_KERNEL(small_gemm_chunk)

/*
 * Lanczos's projections, C = alpha A^T B + beta C with A and B tall (d
 * rows) and C small, and C = alpha A B + beta C with A and C tall, on this
 * backend's threads: OpenBLAS runs one thread (server/cli.c), and on its own
 * the dense half of a Lanczos fit would use one core of the two. The d rows
 * are cut into a number of chunks fixed by d alone, each a one-thread dgemm;
 * A^T B's partials are then added in chunk order, so results are the same
 * for any thread count.
 */
#define TALL_GEMM_ROWS 2048 /* rows of a chunk, at least */
#define TALL_GEMM_CHUNKS 8

struct tall_gemm_job {
    int transa;
    const struct tm_bmat *a, *b, *c;
    double alpha, beta;
    const int64_t *bounds;
    double *partial; /* transa: n_chunks x (c rows x c cols) */
};

static void tall_gemm_chunk(void *arg, int chunk, double *buf)
{
    const struct tall_gemm_job *j = arg;
    const struct tm_bmat *a = j->a, *b = j->b, *c = j->c;
    const int64_t lo = j->bounds[chunk], rows = j->bounds[chunk + 1] - lo;
    (void)buf;
    if (j->transa)
        cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (blasint)c->rows, (blasint)c->cols,
                    (blasint)rows, 1.0, &AT(a, lo, 0), (blasint)a->ld, &AT(b, lo, 0),
                    (blasint)b->ld, 0.0, j->partial + (size_t)chunk * (size_t)(c->rows * c->cols),
                    (blasint)c->rows);
    else
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (blasint)rows, (blasint)c->cols,
                    (blasint)a->cols, j->alpha, &AT(a, lo, 0), (blasint)a->ld, b->data,
                    (blasint)b->ld, j->beta, &AT(c, lo, 0), (blasint)c->ld);
}

/* The cut of d rows into chunks (bounds, n_chunks + 1 entries), fixed by d
 * alone; 0 when d is too short to cut, or when OpenBLAS runs threads of its
 * own (a server with fewer workers than cores): then it spreads the one
 * call itself, and it must not be driven from several threads at once
 * (OpenBLAS's FAQ). */
static int tall_chunks(int64_t d, int64_t *bounds)
{
    if (d < 2 * TALL_GEMM_ROWS || openblas_get_num_threads() > 1)
        return 0;
    int nc = (int)(d / TALL_GEMM_ROWS < TALL_GEMM_CHUNKS ? d / TALL_GEMM_ROWS : TALL_GEMM_CHUNKS);
    for (int q = 0; q <= nc; q++)
        bounds[q] = d * q / nc;
    return nc;
}

/* TM_EINVAL (nothing done) where tall_chunks makes no cut. */
static tm_status tall_gemm(struct cpu_ctx *ctx, int transa, double alpha, const struct tm_bmat *a,
                           const struct tm_bmat *b, double beta, const struct tm_bmat *c, char *err)
{
    const int64_t d = transa ? a->rows : c->rows;
    int64_t bounds[TALL_GEMM_CHUNKS + 1];
    int nc = tall_chunks(d, bounds);
    if (nc == 0)
        return TM_EINVAL;
    const size_t cells = (size_t)c->rows * (size_t)c->cols;
    struct tall_gemm_job job = {transa, a, b, c, alpha, beta, bounds, NULL};
    if (transa && !(job.partial = tm_mallocarray((size_t)nc * cells + 1, sizeof(double))))
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate %d partial products", nc);
    tm_status st = par_for(ctx, nc, 1, tall_gemm_chunk, &job, err);
    if (st == TM_OK && transa)
        for (int64_t jj = 0; jj < c->cols; jj++)
            for (int64_t i = 0; i < c->rows; i++) {
                double sum = chunk_sum(job.partial, nc, cells, (size_t)(i + jj * c->rows));
                AT(c, i, jj) = beta == 0.0 ? alpha * sum : alpha * sum + beta * AT(c, i, jj);
            }
    tm_free(job.partial);
    return st;
}

static tm_status cpu_gemm(void *ctx, int transa, int transb, double alpha, const struct tm_bmat *a,
                          const struct tm_bmat *b, double beta, const struct tm_bmat *c, char *err)
{
    int64_t kk = transa ? a->rows : a->cols;
    if (c->rows == 0 || c->cols == 0)
        return TM_OK;
    /* only the NMF shape (B square, k x k): Lanczos's projections stay BLAS-3 */
    if (!transa && !transb && kk > 0 && kk == c->cols && kk * kk <= SMALL_GEMM_MAX &&
        c->rows >= 16 * kk) {
        int64_t bounds[MAX_CHUNKS + 1];
        int nc = row_chunks(c->rows, bounds);
        struct small_gemm_job job = {a, b, c, alpha, beta, bounds};
        return par_for(ctx, nc, GEMM_TILE * (size_t)kk, small_gemm_chunk, &job, err);
    }
    if (kk == 0) {
        for (int64_t j = 0; j < c->cols; j++)
            for (int64_t i = 0; i < c->rows; i++)
                AT(c, i, j) = beta == 0.0 ? 0.0 : beta * AT(c, i, j);
        return TM_OK;
    }
    if (!transb) {
        tm_status st = tall_gemm(ctx, transa, alpha, a, b, beta, c, err);
        if (st != TM_EINVAL)
            return st;
    }
    cblas_dgemm(CblasColMajor, transa ? CblasTrans : CblasNoTrans,
                transb ? CblasTrans : CblasNoTrans, (blasint)c->rows, (blasint)c->cols, (blasint)kk,
                alpha, a->data, (blasint)a->ld, b->data, (blasint)b->ld, beta, c->data,
                (blasint)c->ld);
    return TM_OK;
}

/*
 * The NMF loop's Gram matrices and Frobenius dots are computed here, not by
 * OpenBLAS: they are small (k x k from a tall matrix), and a BLAS call wakes
 * OpenBLAS's threads, which then spin (sched_yield) beside this backend's
 * own on the same cores. Rows are cut into fixed chunks; each chunk's partial
 * sums (4 vector lanes, then lanes in order) are added in chunk order, so the
 * result is the same for any thread count.
 */
#define GRAM_MAX_K 128

struct gram_job {
    const struct tm_bmat *a, *b; /* dot: a and b; gram: a only */
    const int64_t *bounds;
    double *partial; /* gram: n_chunks x k x k (upper triangle); dot: n_chunks */
};

/* sum over rows [lo, hi) of x[i] * y[i], 4 lanes then in order */
HOT_BODY double dot_range(const double *x, const double *y, int64_t lo, int64_t hi)
{
    v4d s0 = {0, 0, 0, 0}, s1 = s0, a, b;
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        LOAD4(a, x + i);
        LOAD4(b, y + i);
        s0 += a * b;
        LOAD4(a, x + i + 4);
        LOAD4(b, y + i + 4);
        s1 += a * b;
    }
    s0 += s1;
    double sum = ((s0[0] + s0[1]) + (s0[2] + s0[3]));
    for (; i < hi; i++)
        sum += x[i] * y[i];
    return sum;
}

HOT_BODY void gram_chunk_body(void *arg, int chunk, double *buf)
{
    const struct gram_job *j = arg;
    const int64_t k = j->a->cols, lo = j->bounds[chunk], hi = j->bounds[chunk + 1];
    double *g = j->partial + (size_t)chunk * (size_t)k * (size_t)k;
    (void)buf;
    /* Rows in blocks that stay in L1/L2 while every pair of columns is
     * dotted; block partials are added in block order. */
    for (int64_t a = 0; a < k; a++)
        for (int64_t b = a; b < k; b++)
            g[a + b * k] = 0.0;
    for (int64_t i0 = lo; i0 < hi; i0 += 256) {
        int64_t i1 = hi - i0 < 256 ? hi : i0 + 256;
        for (int64_t b = 0; b < k; b++)
            for (int64_t a = 0; a <= b; a++)
                g[a + b * k] += dot_range(&AT(j->a, 0, a), &AT(j->a, 0, b), i0, i1);
    }
}

HOT_KERNEL(gram_chunk)

HOT_BODY void dot_chunk_body(void *arg, int chunk, double *buf)
{
    const struct gram_job *j = arg;
    const int64_t lo = j->bounds[chunk], hi = j->bounds[chunk + 1];
    double sum = 0.0;
    (void)buf;
    for (int64_t c = 0; c < j->a->cols; c++)
        sum += dot_range(&AT(j->a, 0, c), &AT(j->b, 0, c), lo, hi);
    j->partial[chunk] = sum;
}

HOT_KERNEL(dot_chunk)

static tm_status cpu_gram(void *ctx, const struct tm_bmat *a, const struct tm_bmat *c, char *err)
{
    int64_t k = a->cols;
    if (k == 0)
        return TM_OK;
    if (a->rows == 0) {
        for (int64_t j = 0; j < k; j++)
            for (int64_t i = 0; i < k; i++)
                AT(c, i, j) = 0.0;
        return TM_OK;
    }
    if (k > GRAM_MAX_K) {
        /* big k: BLAS-3 pays for itself */
        cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, (blasint)k, (blasint)a->rows, 1.0,
                    a->data, (blasint)a->ld, 0.0, c->data, (blasint)c->ld);
    } else {
        int64_t bounds[MAX_CHUNKS + 1];
        int nc = row_chunks(a->rows, bounds);
        double *partial = tm_mallocarray((size_t)nc * (size_t)k * (size_t)k, sizeof(double));
        if (!partial)
            return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate Gram partial sums");
        struct gram_job job = {a, NULL, bounds, partial};
        tm_status st = par_for(ctx, nc, 0, gram_chunk, &job, err);
        if (st != TM_OK) {
            tm_free(partial);
            return st;
        }
        for (int64_t j = 0; j < k; j++)
            for (int64_t i = 0; i <= j; i++)
                AT(c, i, j) = chunk_sum(partial, nc, (size_t)(k * k), (size_t)(i + j * k));
        tm_free(partial);
    }
    for (int64_t j = 0; j < k; j++)
        for (int64_t i = j + 1; i < k; i++)
            AT(c, i, j) = AT(c, j, i);
    return TM_OK;
}

/* ---- factorizations ---- */

/* Householder QR: geqrf + orgqr. */
static tm_status qr_householder(const struct tm_bmat *a, char *err)
{
    int64_t m = a->rows, k = a->cols;
    double *tau = tm_mallocarray((size_t)k, sizeof(double));
    if (!tau)
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate QR workspace");
    lapack_int info = LAPACKE_dgeqrf(LAPACK_COL_MAJOR, (lapack_int)m, (lapack_int)k, a->data,
                                     (lapack_int)a->ld, tau);
    if (info == 0)
        info = LAPACKE_dorgqr(LAPACK_COL_MAJOR, (lapack_int)m, (lapack_int)k, (lapack_int)k,
                              a->data, (lapack_int)a->ld, tau);
    tm_free(tau);
    if (info == LAPACK_WORK_MEMORY_ERROR)
        return tm_errf(err, TM_ENOMEM, "cpu backend: QR workspace");
    if (info != 0)
        return tm_errf(err, TM_ELAPACK, "cpu backend: geqrf/orgqr failed (info %d)", (int)info);
    return TM_OK;
}

/*
 * CholQR's two tall steps on the backend's threads, over tall_gemm's cut of
 * the rows (the same for any thread count): A^T A as one-thread dsyrks of
 * the chunks, added in chunk order, and A R^-1 as one dtrsm per chunk (each
 * row's solve is its own). For blocks of at least TALL_QR_MIN_COLS columns:
 * OpenBLAS runs one thread, and randomized SVD k = 100's final QR of 18,846
 * x 110 took 35 ms on one core of two.
 */
#define TALL_QR_MIN_COLS 16

struct tall_qr_job {
    const struct tm_bmat *a;
    const int64_t *bounds;
    double *partial; /* syrk: n_chunks x k x k */
    const double *r; /* trsm: R, k x k upper */
};

static void tall_syrk_chunk(void *arg, int chunk, double *buf)
{
    const struct tall_qr_job *j = arg;
    const int64_t lo = j->bounds[chunk], k = j->a->cols;
    (void)buf;
    cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, (blasint)k,
                (blasint)(j->bounds[chunk + 1] - lo), 1.0, &AT(j->a, lo, 0), (blasint)j->a->ld, 0.0,
                j->partial + (size_t)chunk * (size_t)(k * k), (blasint)k);
}

static void tall_trsm_chunk(void *arg, int chunk, double *buf)
{
    const struct tall_qr_job *j = arg;
    const int64_t lo = j->bounds[chunk], k = j->a->cols;
    (void)buf;
    cblas_dtrsm(CblasColMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit,
                (blasint)(j->bounds[chunk + 1] - lo), (blasint)k, 1.0, j->r, (blasint)k,
                &AT(j->a, lo, 0), (blasint)j->a->ld);
}

/* g (k x k, upper triangle) = A^T A, over the nc chunks of bounds (nc 0:
 * one dsyrk); 0 when its workspace could not be had. */
static int cholqr_gram(struct cpu_ctx *ctx, const struct tm_bmat *a, int nc, const int64_t *bounds,
                       double *g)
{
    int64_t k = a->cols;
    if (nc == 0) {
        cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, (blasint)k, (blasint)a->rows, 1.0,
                    a->data, (blasint)a->ld, 0.0, g, (blasint)k);
        return 1;
    }
    struct tall_qr_job job = {a, bounds,
                              tm_mallocarray((size_t)nc * (size_t)(k * k), sizeof(double)), NULL};
    if (!job.partial || par_for(ctx, nc, 1, tall_syrk_chunk, &job, NULL) != TM_OK) {
        tm_free(job.partial);
        return 0;
    }
    for (int64_t jj = 0; jj < k; jj++)
        for (int64_t i = 0; i <= jj; i++)
            g[i + jj * k] = chunk_sum(job.partial, nc, (size_t)(k * k), (size_t)(i + jj * k));
    tm_free(job.partial);
    return 1;
}

/* a <- a r^-1, over the same chunks; 0 when it could not be done (a
 * untouched). */
static int cholqr_solve(struct cpu_ctx *ctx, const struct tm_bmat *a, int nc, const int64_t *bounds,
                        const double *r)
{
    if (nc == 0) {
        cblas_dtrsm(CblasColMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit,
                    (blasint)a->rows, (blasint)a->cols, 1.0, r, (blasint)a->cols, a->data,
                    (blasint)a->ld);
        return 1;
    }
    struct tall_qr_job job = {a, bounds, NULL, r};
    return par_for(ctx, nc, 1, tall_trsm_chunk, &job, NULL) == TM_OK;
}

/*
 * One Cholesky-QR pass: G = A^T A = R^T R, A <- A R^-1. Returns 1 when G is
 * too ill-conditioned for it, or its workspace could not be had (then A is
 * untouched).
 */
static int cholqr_pass(struct cpu_ctx *ctx, const struct tm_bmat *a, double *g)
{
    int64_t k = a->cols, bounds[TALL_GEMM_CHUNKS + 1];
    int nc = k >= TALL_QR_MIN_COLS ? tall_chunks(a->rows, bounds) : 0;
    if (!cholqr_gram(ctx, a, nc, bounds, g))
        return 1;
    double dmax = 0.0;
    for (int64_t j = 0; j < k; j++)
        dmax = fmax(dmax, g[j + j * k]);
    if (LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'U', (lapack_int)k, g, (lapack_int)k) != 0)
        return 1;
    /* R's diagonal squared bounds G's eigenvalues: refuse condition > ~1e6,
     * where one more pass could not repair the orthogonality. */
    for (int64_t j = 0; j < k; j++)
        if (!(g[j + j * k] * g[j + j * k] > 1e-12 * dmax))
            return 1;
    return !cholqr_solve(ctx, a, nc, bounds, g);
}

/*
 * Thin Q. Cholesky QR twice (CholQR2: orthogonal to machine precision for
 * condition numbers below ~1e6, and BLAS-3, 10x faster here than orgqr on
 * tall matrices), falling back to Householder when the Gram matrix is too
 * ill-conditioned. Q differs from orgqr's only in column signs, which the
 * algorithms absorb (svd_flip fixes the final signs).
 */
static tm_status cpu_orth_qr(void *ctx, const struct tm_bmat *a, char *err)
{
    int64_t k = a->cols;
    if (k == 0)
        return TM_OK;
    if (a->rows < 4 * k)
        return qr_householder(a, err);
    double *g = tm_mallocarray((size_t)k * (size_t)k, sizeof(double));
    if (!g)
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate QR workspace");
    int bad = cholqr_pass(ctx, a, g) || cholqr_pass(ctx, a, g);
    tm_free(g);
    return bad ? qr_householder(a, err) : TM_OK;
}

static tm_status cpu_orth_lu(void *ctx, const struct tm_bmat *a, char *err)
{
    (void)ctx;
    int64_t m = a->rows, k = a->cols;
    if (k == 0)
        return TM_OK;
    lapack_int *ipiv = tm_mallocarray((size_t)k, sizeof(*ipiv));
    if (!ipiv)
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate LU pivots");
    /* The _work entry points skip LAPACKE's NaN scan of the whole matrix
     * (a pass over memory per call); NaN propagates to core's checks. */
    lapack_int info = LAPACKE_dgetrf_work(LAPACK_COL_MAJOR, (lapack_int)m, (lapack_int)k, a->data,
                                          (lapack_int)a->ld, ipiv);
    /* info > 0 is an exactly singular U: L is still well defined, as scipy. */
    if (info < 0) {
        tm_free(ipiv);
        return tm_errf(err, TM_ELAPACK, "cpu backend: getrf failed (info %d)", (int)info);
    }
    for (int64_t j = 0; j < k; j++) {
        for (int64_t i = 0; i < j; i++)
            AT(a, i, j) = 0.0;
        AT(a, j, j) = 1.0;
    }
    /* A = P L U with P the product of the interchanges: P L applies them in
     * reverse order (incx = -1). */
    LAPACKE_dlaswp_work(LAPACK_COL_MAJOR, (lapack_int)k, a->data, (lapack_int)a->ld, 1,
                        (lapack_int)k, ipiv, -1);
    tm_free(ipiv);
    return TM_OK;
}

static tm_status cpu_svd_small(void *ctx, const struct tm_bmat *a, const struct tm_bmat *u,
                               double *s, const struct tm_bmat *vt, char *err)
{
    int64_t r = a->rows, c = a->cols, p = r < c ? r : c;
    struct tm_bmat su = {0}, svt = {0};
    tm_status st = TM_OK;
    if (p == 0)
        return TM_OK;
    if (!u && (st = cpu_mat_alloc(ctx, r, p, &su, err)) != TM_OK)
        goto out;
    if (!vt && (st = cpu_mat_alloc(ctx, p, c, &svt, err)) != TM_OK)
        goto out;
    const struct tm_bmat *uu = u ? u : &su, *vv = vt ? vt : &svt;
    lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', (lapack_int)r, (lapack_int)c, a->data,
                                     (lapack_int)a->ld, s, uu->data, (lapack_int)uu->ld, vv->data,
                                     (lapack_int)vv->ld);
    if (info == LAPACK_WORK_MEMORY_ERROR)
        st = tm_errf(err, TM_ENOMEM, "cpu backend: gesdd workspace");
    else if (info != 0)
        st = tm_errf(err, TM_ELAPACK, "cpu backend: gesdd failed (info %d)", (int)info);
out:
    cpu_mat_free(ctx, &svt);
    cpu_mat_free(ctx, &su);
    return st;
}

/* ---- elementwise and reductions ---- */

static tm_status cpu_fill(void *ctx, const struct tm_bmat *a, double value, char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < a->cols; j++)
        for (int64_t i = 0; i < a->rows; i++)
            AT(a, i, j) = value;
    return TM_OK;
}

static tm_status cpu_copy(void *ctx, const struct tm_bmat *src, const struct tm_bmat *dst,
                          char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < src->cols; j++)
        memmove(&AT(dst, 0, j), &AT(src, 0, j), (size_t)src->rows * sizeof(double));
    return TM_OK;
}

static tm_status cpu_scale_cols(void *ctx, const struct tm_bmat *a, const double *scale, char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < a->cols; j++)
        for (int64_t i = 0; i < a->rows; i++)
            AT(a, i, j) *= scale[j];
    return TM_OK;
}

static tm_status cpu_axpy(void *ctx, double alpha, const struct tm_bmat *x, const struct tm_bmat *y,
                          char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < x->cols; j++)
        cblas_daxpy((blasint)x->rows, alpha, &AT(x, 0, j), 1, &AT(y, 0, j), 1);
    return TM_OK;
}

static tm_status cpu_dot(void *ctx, const struct tm_bmat *a, const struct tm_bmat *b, double *out,
                         char *err)
{
    int64_t bounds[MAX_CHUNKS + 1];
    int nc = row_chunks(a->rows, bounds);
    double partial[MAX_CHUNKS];
    struct gram_job job = {a, b, bounds, partial};
    tm_status st = par_for(ctx, nc, 0, dot_chunk, &job, err);
    double sum = 0.0;
    for (int q = 0; q < nc; q++)
        sum += partial[q];
    *out = sum;
    return st;
}

static tm_status cpu_col_norms(void *ctx, const struct tm_bmat *a, double *out, char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < a->cols; j++)
        out[j] = cblas_dnrm2((blasint)a->rows, &AT(a, 0, j), 1);
    return TM_OK;
}

static tm_status cpu_col_sums(void *ctx, const struct tm_bmat *a, double *out, char *err)
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

/* ---- NMF ---- */

struct hals_job {
    const struct tm_bmat *m, *g, *xht;
    double l1, l2;
    const int64_t *perm;
    const int64_t *bounds;
    double partial[MAX_CHUNKS];
};

/*
 * Rows are independent, so HALS_ROWS of them are swept together, stored
 * column-major in a small tile: every step is a 4-wide vector operation over
 * a tile's rows (8 independent FMA chains in the gradient; with 4, `make
 * bench-kernels` K=20 gave hals_sweep on Ht 10.2 ms against 9.4, fastest of
 * 30, one thread, and the fused H half the same), and M and XHt are read in
 * runs. Per element the arithmetic is scikit-learn's, in its
 * order; only the violation's summation order is ours (per lane over the
 * sweep, then lanes in order: fixed, so deterministic).
 */
#define HALS_ROWS 32 /* eight vectors of 4, unrolled by hand below */
#define HALS_VECS 8

/* The projected gradient and the update of 4 rows' M[i, t] (mt) from their
 * gradient, as masks: pg = M == 0 ? min(grad, 0) : grad (a NaN gradient gives
 * 0 where M == 0 and NaN elsewhere, as the scalar form); then, if hess != 0,
 * M = max(M - grad / hess, 0), where NaN and -0 become +0. */
HOT_BODY void hals_update4(double *mt, const v4d *gradp, double hess, v4d *viol)
{
    const v4d grad = *gradp; /* by pointer: a vector argument would change the ABI */
    const v4i abs_mask = {INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX};
    const v4d zero = {0.0, 0.0, 0.0, 0.0};
    v4d mv;
    LOAD4(mv, mt);
    v4i keep = ~(v4i)(mv == zero) | (v4i)(grad < zero);
    *viol += (v4d)((v4i)grad & keep & abs_mask);
    if (hess != 0.0) {
        v4d v = mv - grad / hess;
        v = (v4d)((v4i)v & (v4i)(v > zero));
        STORE4(mt, v);
    }
}

/* One sweep of the HALS update over a tile of HALS_ROWS rows (column-major,
 * tile[r * HALS_ROWS + g] = M[i0 + g, r]), with xt the tile's XHt - l1. */
HOT_BODY void hals_tile_sweep(double *tile, const double *xt, const struct tm_bmat *g, int64_t k,
                              double l2, const int64_t *perm, v4d *viol)
{
    for (int64_t s = 0; s < k; s++) {
        const int64_t t = perm ? perm[s] : s;
        /* G is symmetric: column t is row t, and contiguous. */
        const double *gt = &AT(g, 0, t);
        double *mt = tile + t * HALS_ROWS;
        /* named accumulators: an array here ends up on the stack */
        const double *xtt = xt + t * HALS_ROWS;
        v4d g0, g1, g2, g3, g4, g5, g6, g7, a0, a1, a2, a3;
        LOAD4(g0, mt);
        LOAD4(g1, mt + 4);
        LOAD4(g2, mt + 8);
        LOAD4(g3, mt + 12);
        LOAD4(g4, mt + 16);
        LOAD4(g5, mt + 20);
        LOAD4(g6, mt + 24);
        LOAD4(g7, mt + 28);
        LOAD4(a0, xtt);
        LOAD4(a1, xtt + 4);
        LOAD4(a2, xtt + 8);
        LOAD4(a3, xtt + 12);
        g0 = l2 * g0 - a0;
        g1 = l2 * g1 - a1;
        g2 = l2 * g2 - a2;
        g3 = l2 * g3 - a3;
        LOAD4(a0, xtt + 16);
        LOAD4(a1, xtt + 20);
        LOAD4(a2, xtt + 24);
        LOAD4(a3, xtt + 28);
        g4 = l2 * g4 - a0;
        g5 = l2 * g5 - a1;
        g6 = l2 * g6 - a2;
        g7 = l2 * g7 - a3;
        for (int64_t r = 0; r < k; r++) {
            const double gr = gt[r];
            const double *tr = tile + r * HALS_ROWS;
            LOAD4(a0, tr);
            LOAD4(a1, tr + 4);
            LOAD4(a2, tr + 8);
            LOAD4(a3, tr + 12);
            g0 += gr * a0;
            g1 += gr * a1;
            g2 += gr * a2;
            g3 += gr * a3;
            LOAD4(a0, tr + 16);
            LOAD4(a1, tr + 20);
            LOAD4(a2, tr + 24);
            LOAD4(a3, tr + 28);
            g4 += gr * a0;
            g5 += gr * a1;
            g6 += gr * a2;
            g7 += gr * a3;
        }
        const double hess = gt[t] + l2;
        hals_update4(mt, &g0, hess, &viol[0]);
        hals_update4(mt + 4, &g1, hess, &viol[1]);
        hals_update4(mt + 8, &g2, hess, &viol[2]);
        hals_update4(mt + 12, &g3, hess, &viol[3]);
        hals_update4(mt + 16, &g4, hess, &viol[4]);
        hals_update4(mt + 20, &g5, hess, &viol[5]);
        hals_update4(mt + 24, &g6, hess, &viol[6]);
        hals_update4(mt + 28, &g7, hess, &viol[7]);
    }
}

/* A tile sweep's violation lanes (row g in lane g) summed in row order. */
HOT_BODY double hals_violation(const v4d *viol)
{
    double lanes[HALS_ROWS], violation = 0.0;
    for (int q = 0; q < HALS_VECS; q++)
        STORE4(lanes + 4 * q, viol[q]);
    for (int g = 0; g < HALS_ROWS; g++)
        violation += lanes[g];
    return violation;
}

HOT_BODY void hals_chunk_body(void *arg, int chunk, double *scratch)
{
    struct hals_job *j = arg;
    const int64_t k = j->m->cols;
    const double l1 = j->l1, l2 = j->l2;
    double *tile = scratch, *xt = scratch + HALS_ROWS * k;
    const v4d zero = {0.0, 0.0, 0.0, 0.0};
    /* Padding rows of a last partial tile are zero: their gradient and
     * violation are 0 and they are never stored. */
    v4d viol[HALS_VECS];
    for (int q = 0; q < HALS_VECS; q++)
        viol[q] = zero;
    for (int64_t i0 = j->bounds[chunk]; i0 < j->bounds[chunk + 1]; i0 += HALS_ROWS) {
        int64_t nr = j->bounds[chunk + 1] - i0 < HALS_ROWS ? j->bounds[chunk + 1] - i0 : HALS_ROWS;
        for (int64_t r = 0; r < k; r++) {
            const double *mc = &AT(j->m, i0, r), *xc = &AT(j->xht, i0, r);
            double *td = tile + r * HALS_ROWS, *xd = xt + r * HALS_ROWS;
            if (nr == HALS_ROWS) {
                for (int64_t g = 0; g < HALS_ROWS; g++) {
                    td[g] = mc[g];
                    xd[g] = xc[g] - l1;
                }
            } else {
                for (int64_t g = 0; g < HALS_ROWS; g++) {
                    td[g] = g < nr ? mc[g] : 0.0;
                    xd[g] = g < nr ? xc[g] - l1 : 0.0;
                }
            }
        }
        hals_tile_sweep(tile, xt, j->g, k, l2, j->perm, viol);
        for (int64_t r = 0; r < k; r++) {
            double *mc = &AT(j->m, i0, r);
            const double *td = tile + r * HALS_ROWS;
            for (int64_t g = 0; g < nr; g++)
                mc[g] = td[g];
        }
    }
    j->partial[chunk] = hals_violation(viol);
}

HOT_KERNEL(hals_chunk)

/*
 * Half a cd or Frobenius mu iteration in one pass (hals_sweep_fused and
 * mu_update_fused in backend.h): per tile of HALS_ROWS rows of M, the
 * tile's rows of P (X^T W for Ht, X Ht for W) are gathered as spmm_chunk
 * gathers them (same order, same contraction, so the H half's Ht comes out
 * bit for bit as spmm + hals_sweep leave it), swept (or multiplied by
 * P / (M G)) while in L1, and then dotted with the new rows for <P, M> and
 * with each other for M^T M. P is never stored. The factors are kept
 * transposed (row-major): a tile of M is one run of memory, and F's rows,
 * which the W half gathers where spmm would scatter (spmm_scatter; with the
 * k sums in registers that is the faster way, and it adds each row's terms
 * in X's order, as scipy's X @ H.T does), are contiguous.
 */
enum fused_rule { RULE_HALS, RULE_MU };

struct hals_fused_job {
    const struct tm_csr *xo; /* X or X^T: its rows are M's rows */
    const double *f;         /* F row-major (Ft's data) */
    double *m;               /* M row-major (Mt's data), updated */
    const struct tm_bmat *g;
    int64_t k;
    double l1, l2;
    enum fused_rule rule;
    const int64_t *perm;
    const int64_t *bounds;
    double *gram; /* n_chunks x k x k, upper triangles */
    double violation[MAX_CHUNKS], cross[MAX_CHUNKS];
};

/* acc4 (4 lanes) += the dot product of two tile columns (HALS_ROWS each). */
HOT_BODY void dot_tile_lanes(const double *a, const double *b, double *acc4)
{
    v4d x, y, s;
    LOAD4(s, acc4);
    for (int q = 0; q < HALS_VECS; q++) {
        LOAD4(x, a + 4 * q);
        LOAD4(y, b + 4 * q);
        s += x * y;
    }
    STORE4(acc4, s);
}

static inline double lanes_sum(const double *acc4)
{
    return (acc4[0] + acc4[1]) + (acc4[2] + acc4[3]);
}

/* The multiplicative update of a tile (mu_update_fused): den = M G from the
 * tile as it was, each element's sum over r in order, as small_gemm makes
 * it; then mu_chunk's arithmetic on every element. */
HOT_BODY void mu_tile_update(double *tile, const double *numer, double *den,
                             const struct tm_bmat *g, int64_t k, double l1, double l2)
{
    for (int64_t t = 0; t < k; t++) {
        const double *gt = &AT(g, 0, t); /* G symmetric: column t is row t */
        v4d acc[HALS_VECS];
        for (int q = 0; q < HALS_VECS; q++)
            acc[q] = (v4d){0.0, 0.0, 0.0, 0.0};
        for (int64_t r = 0; r < k; r++) {
            const double gr = gt[r];
            for (int q = 0; q < HALS_VECS; q++) {
                v4d a;
                LOAD4(a, tile + r * HALS_ROWS + 4 * q);
                acc[q] += gr * a;
            }
        }
        for (int q = 0; q < HALS_VECS; q++)
            STORE4(den + t * HALS_ROWS + 4 * q, acc[q]);
    }
    for (int64_t e = 0; e < k * HALS_ROWS; e++) {
        double d = den[e];
        if (l1 > 0)
            d += l1;
        if (l2 > 0)
            d += l2 * tile[e];
        if (d == 0.0)
            d = TM_NMF_EPSILON;
        double v = tile[e] * (numer[e] / d);
        tile[e] = v < 0.0 ? 0.0 : v;
    }
}

/* o_c = (a[c], b[c], c[c], d[c]): four rows of 4 become four columns. A
 * macro: as a function taking vectors by value it would change the ABI
 * (clang warns), and by pointer GCC spilled them (the fused halves 10%
 * slower in make bench-kernels). */
#define TRANSPOSE4(a, b, c, d, o0, o1, o2, o3)                                                     \
    do {                                                                                           \
        v4d t0_ = SHUFFLE4(a, b, 0, 4, 2, 6), t1_ = SHUFFLE4(a, b, 1, 5, 3, 7);                    \
        v4d t2_ = SHUFFLE4(c, d, 0, 4, 2, 6), t3_ = SHUFFLE4(c, d, 1, 5, 3, 7);                    \
        o0 = SHUFFLE4(t0_, t2_, 0, 1, 4, 5);                                                       \
        o1 = SHUFFLE4(t1_, t3_, 0, 1, 4, 5);                                                       \
        o2 = SHUFFLE4(t0_, t2_, 2, 3, 6, 7);                                                       \
        o3 = SHUFFLE4(t1_, t3_, 2, 3, 6, 7);                                                       \
    } while (0)

/* Four row-major rows of k (ld apart) into the column-major tile at row
 * g0 (dst[r * HALS_ROWS + g0 + q] = rows[q * ld + r]), minus sub (0 for a
 * plain copy), and into plain as they are unless it is NULL; k a multiple
 * of 4. */
HOT_BODY void rows4_to_tile(const double *rows, int64_t ld, int64_t k, double sub, double *dst,
                            double *plain)
{
    const v4d subv = {sub, sub, sub, sub};
    for (int64_t r = 0; r < k; r += 4) {
        v4d a, b, c, d, c0, c1, c2, c3;
        LOAD4(a, rows + r);
        LOAD4(b, rows + ld + r);
        LOAD4(c, rows + 2 * ld + r);
        LOAD4(d, rows + 3 * ld + r);
        TRANSPOSE4(a, b, c, d, c0, c1, c2, c3);
        if (plain) {
            STORE4(plain + r * HALS_ROWS, c0);
            STORE4(plain + (r + 1) * HALS_ROWS, c1);
            STORE4(plain + (r + 2) * HALS_ROWS, c2);
            STORE4(plain + (r + 3) * HALS_ROWS, c3);
        }
        c0 -= subv;
        c1 -= subv;
        c2 -= subv;
        c3 -= subv;
        STORE4(dst + r * HALS_ROWS, c0);
        STORE4(dst + (r + 1) * HALS_ROWS, c1);
        STORE4(dst + (r + 2) * HALS_ROWS, c2);
        STORE4(dst + (r + 3) * HALS_ROWS, c3);
    }
}

/* The inverse: four rows of the tile at g0 back into row-major rows. */
HOT_BODY void tile_to_rows4(const double *src, int64_t k, double *rows)
{
    for (int64_t r = 0; r < k; r += 4) {
        v4d a, b, c, d, r0, r1, r2, r3;
        LOAD4(a, src + r * HALS_ROWS);
        LOAD4(b, src + (r + 1) * HALS_ROWS);
        LOAD4(c, src + (r + 2) * HALS_ROWS);
        LOAD4(d, src + (r + 3) * HALS_ROWS);
        TRANSPOSE4(a, b, c, d, r0, r1, r2, r3);
        STORE4(rows + r, r0);
        STORE4(rows + k + r, r1);
        STORE4(rows + 2 * k + r, r2);
        STORE4(rows + 3 * k + r, r3);
    }
}

HOT_BODY void hals_fused_chunk_body(void *arg, int chunk, double *scratch)
{
    struct hals_fused_job *j = arg;
    const struct tm_csr *x = j->xo;
    const int64_t k = j->k;
    const double l1 = j->l1;
    const double *restrict f = j->f;
    double *tile = scratch, *xt = tile + HALS_ROWS * k, *raw = xt + HALS_ROWS * k;
    double *acc = raw + HALS_ROWS * k; /* 4 gathered rows, row-major */
    /* M^T M and <P, M> summed per lane over the chunk's tiles, the lanes
     * added at the end: a horizontal sum per tile and pair cost more than
     * the products (a fifth of the fused mu half). */
    double *gram4 = acc + 4 * k, cross4[4] = {0.0, 0.0, 0.0, 0.0};
    /* The tile goes in and out four rows at a time, by 4 x 4 transposes in
     * registers, where k allows (scalar stores by stride HALS_ROWS were a
     * seventh of the kernel's perf samples, NMF cd k = 20). The HALS sweep
     * only reads xt, so without l1 it is also the raw P <P, M> needs. */
    const int by4 = k % 4 == 0;
    double *rawp = j->rule == RULE_HALS && l1 == 0.0 ? xt : raw;
    double *gram = j->gram + (size_t)chunk * (size_t)k * (size_t)k;
    const v4d zero = {0.0, 0.0, 0.0, 0.0};
    v4d viol[HALS_VECS];
    for (int q = 0; q < HALS_VECS; q++)
        viol[q] = zero;
    for (int64_t b = 0; b < k; b++)
        for (int64_t a = 0; a <= b; a++)
            memset(gram4 + 4 * (a + b * k), 0, 4 * sizeof(double));
    const int64_t lo = j->bounds[chunk], hi = j->bounds[chunk + 1];
    const int64_t pend_all = x->indptr[hi];
    for (int64_t i0 = lo; i0 < hi; i0 += HALS_ROWS) {
        int64_t nr = hi - i0 < HALS_ROWS ? hi - i0 : HALS_ROWS;
        double *mrows = j->m + (size_t)i0 * (size_t)k; /* the tile's rows, one run */
        /* Padding rows are zero, so they add nothing below. */
        int64_t g = 0;
        if (by4)
            for (; g + 4 <= nr; g += 4) {
                for (int q = 0; q < 4; q++)
                    gather_row(x, i0 + g + q, f, pend_all, acc + q * k, k);
                rows4_to_tile(acc, k, k, l1, xt + g, rawp != xt ? raw + g : NULL);
                rows4_to_tile(mrows + g * k, k, k, 0.0, tile + g, NULL);
            }
        for (; g < HALS_ROWS; g++) {
            if (g < nr)
                gather_row(x, i0 + g, f, pend_all, acc, k);
            else
                for (int64_t r = 0; r < k; r++)
                    acc[r] = 0.0;
            for (int64_t r = 0; r < k; r++) {
                raw[r * HALS_ROWS + g] = acc[r];
                xt[r * HALS_ROWS + g] = g < nr ? acc[r] - l1 : 0.0;
                tile[r * HALS_ROWS + g] = g < nr ? mrows[g * k + r] : 0.0;
            }
        }
        if (j->rule == RULE_MU)
            mu_tile_update(tile, raw, xt, j->g, k, l1, j->l2);
        else
            hals_tile_sweep(tile, xt, j->g, k, j->l2, j->perm, viol);
        g = 0;
        if (by4)
            for (; g + 4 <= nr; g += 4)
                tile_to_rows4(tile + g, k, mrows + g * k);
        for (; g < nr; g++)
            for (int64_t r = 0; r < k; r++)
                mrows[g * k + r] = tile[r * HALS_ROWS + g];
        for (int64_t r = 0; r < k; r++) {
            const double *tr = tile + r * HALS_ROWS;
            dot_tile_lanes(rawp + r * HALS_ROWS, tr, cross4);
            for (int64_t a = 0; a <= r; a++)
                dot_tile_lanes(tile + a * HALS_ROWS, tr, gram4 + 4 * (a + r * k));
        }
    }
    j->violation[chunk] = hals_violation(viol);
    j->cross[chunk] = lanes_sum(cross4);
    for (int64_t b = 0; b < k; b++)
        for (int64_t a = 0; a <= b; a++)
            gram[a + b * k] = lanes_sum(gram4 + 4 * (a + b * k));
}

HOT_KERNEL(hals_fused_chunk)

/* A k x rows matrix whose columns are contiguous: rows x k row-major. */
static int whole_rows(const struct tm_bmat *t, int64_t k)
{
    return t->rows == k && (t->ld == k || t->cols <= 1);
}

static tm_status fused_half(void *ctx, const struct tm_bsparse *s, int side, enum fused_rule rule,
                            const struct tm_bmat *mt, const struct tm_bmat *ft,
                            const struct tm_bmat *g, double l1, double l2, const int64_t *perm,
                            double *violation, double *cross, const struct tm_bmat *gram, char *err)
{
    const struct tm_csr *xo = side == TM_TRANS ? &s->xt : s->x;
    const int64_t k = mt->rows;
    if (!whole_rows(mt, k) || !whole_rows(ft, k) || mt->cols != xo->n_rows ||
        ft->cols != xo->n_cols)
        return tm_errf(err, TM_EINVAL,
                       "cpu backend: the fused update needs whole k x rows Mt and Ft");
    int64_t bounds[MAX_CHUNKS + 1];
    int nc = csr_chunks(xo, bounds);
    double *partial = tm_mallocarray((size_t)nc * (size_t)k * (size_t)k + 1, sizeof(double));
    if (!partial)
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate the fused update's workspace");
    struct hals_fused_job job = {xo,   ft->data, mt->data, g,       k,   l1, l2,
                                 rule, perm,     bounds,   partial, {0}, {0}};
    /* tile, xt, raw, acc (4 k), then the lanes of gram4 (4 k^2) */
    size_t scratch = (3 * HALS_ROWS + 4) * (size_t)k + 4 * (size_t)k * (size_t)k;
    tm_status st = par_for(ctx, nc, scratch, hals_fused_chunk, &job, err);
    if (st == TM_OK) {
        double v = 0.0, c = 0.0;
        for (int q = 0; q < nc; q++) {
            v += job.violation[q];
            c += job.cross[q];
        }
        if (violation)
            *violation = v;
        *cross = c;
        for (int64_t b = 0; b < k; b++)
            for (int64_t a = 0; a <= b; a++) {
                double sum = chunk_sum(partial, nc, (size_t)(k * k), (size_t)(a + b * k));
                AT(gram, a, b) = sum;
                AT(gram, b, a) = sum;
            }
    }
    tm_free(partial);
    return st;
}

static tm_status cpu_hals_sweep_fused(void *ctx, const struct tm_bsparse *s, int side,
                                      const struct tm_bmat *mt, const struct tm_bmat *ft,
                                      const struct tm_bmat *g, double l1, double l2,
                                      const int64_t *perm, double *violation, double *cross,
                                      const struct tm_bmat *gram, char *err)
{
    return fused_half(ctx, s, side, RULE_HALS, mt, ft, g, l1, l2, perm, violation, cross, gram,
                      err);
}

static tm_status cpu_mu_update_fused(void *ctx, const struct tm_bsparse *s, int side,
                                     const struct tm_bmat *mt, const struct tm_bmat *ft,
                                     const struct tm_bmat *g, double l1, double l2, double *cross,
                                     const struct tm_bmat *gram, char *err)
{
    return fused_half(ctx, s, side, RULE_MU, mt, ft, g, l1, l2, NULL, NULL, cross, gram, err);
}

static tm_status cpu_hals_sweep(void *ctx, const struct tm_bmat *m, const struct tm_bmat *g,
                                const struct tm_bmat *xht, double l1, double l2,
                                const int64_t *perm, double *violation, char *err)
{
    struct hals_job job = {m, g, xht, l1, l2, perm, NULL, {0}};
    int64_t bounds[MAX_CHUNKS + 1];
    int nc = row_chunks(m->rows, bounds);
    job.bounds = bounds;
    tm_status st = par_for(ctx, nc, 2 * HALS_ROWS * (size_t)m->cols, hals_chunk, &job, err);
    double v = 0.0;
    for (int c = 0; c < nc; c++)
        v += job.partial[c];
    *violation = v;
    return st;
}

struct mu_job {
    const struct tm_bmat *m, *numer, *denom;
    const double *denom_row;
    double l1, l2, zero_below;
    const int64_t *bounds;
};

HOT_BODY void mu_chunk_body(void *arg, int chunk, double *buf)
{
    const struct mu_job *j = arg;
    (void)buf;
    for (int64_t c = 0; c < j->m->cols; c++) {
        double *restrict mc = &AT(j->m, 0, c);
        const double *restrict nc = &AT(j->numer, 0, c);
        const double *restrict dc = j->denom ? &AT(j->denom, 0, c) : NULL;
        for (int64_t i = j->bounds[chunk]; i < j->bounds[chunk + 1]; i++) {
            double d = dc ? dc[i] : j->denom_row[c];
            if (j->l1 > 0)
                d += j->l1;
            if (j->l2 > 0)
                d += j->l2 * mc[i];
            if (d == 0.0)
                d = TM_NMF_EPSILON;
            double v = mc[i] * (nc[i] / d);
            mc[i] = v < j->zero_below ? 0.0 : v;
        }
    }
}

HOT_KERNEL(mu_chunk)

static tm_status cpu_mu_update(void *ctx, const struct tm_bmat *m, const struct tm_bmat *numer,
                               const struct tm_bmat *denom, const double *denom_row, double l1,
                               double l2, double zero_below, char *err)
{
    int64_t bounds[MAX_CHUNKS + 1];
    int nc = row_chunks(m->rows, bounds);
    struct mu_job job = {m, numer, denom, denom_row, l1, l2, zero_below, bounds};
    return par_for(ctx, nc, 0, mu_chunk, &job, err);
}

static tm_status cpu_pgd_update(void *ctx, const struct tm_bmat *m, const struct tm_bmat *mg,
                                const struct tm_bmat *xht, double lr, double penalty, double mu,
                                char *err)
{
    (void)ctx;
    (void)err;
    for (int64_t j = 0; j < m->cols; j++) {
        for (int64_t i = 0; i < m->rows; i++) {
            double v = AT(m, i, j);
            double g = AT(mg, i, j) - AT(xht, i, j) + penalty * (v >= mu ? 0.0 : v - mu);
            v -= lr * g;
            AT(m, i, j) = v > 0.0 ? v : 0.0;
        }
    }
    return TM_OK;
}

struct kl_job {
    const struct tm_csr *x;
    const int64_t *bounds;
    const struct tm_bmat *p;
    const double *q; /* packed row-major */
    int64_t k;
    double eps;
    const struct tm_bmat *c; /* kl_spmm output, or NULL for kl_sum */
    double partial[MAX_CHUNKS];
};

HOT_BODY void kl_chunk_body(void *arg, int chunk, double *scratch)
{
    struct kl_job *j = arg;
    const struct tm_csr *x = j->x;
    int64_t k = j->k;
    double *prow = scratch, *acc = scratch + k;
    double sum = 0.0;
    for (int64_t i = j->bounds[chunk]; i < j->bounds[chunk + 1]; i++) {
        for (int64_t r = 0; r < k; r++) {
            prow[r] = AT(j->p, i, r);
            acc[r] = 0.0;
        }
        for (int64_t p = x->indptr[i]; p < x->indptr[i + 1]; p++) {
            const double *qrow = j->q + (size_t)x->indices[p] * k;
            double wh = 0.0;
            for (int64_t r = 0; r < k; r++)
                wh += prow[r] * qrow[r];
            if (wh < j->eps)
                wh = j->eps;
            double v = x->data[p];
            if (j->c) {
                double ratio = v / wh;
                for (int64_t r = 0; r < k; r++)
                    acc[r] += ratio * qrow[r];
            } else if (v > j->eps) {
                sum += v * log(v / wh) - v;
            }
        }
        if (j->c)
            for (int64_t r = 0; r < k; r++)
                AT(j->c, i, r) = acc[r];
    }
    j->partial[chunk] = sum;
}

HOT_KERNEL(kl_chunk)

static tm_status kl_run(void *ctx, const struct tm_csr *x, const struct tm_bmat *p,
                        const struct tm_bmat *q, double eps, const struct tm_bmat *c, double *out,
                        char *err)
{
    int64_t bounds[MAX_CHUNKS + 1];
    int nc = csr_chunks(x, bounds);
    double *packed = tm_mallocarray((size_t)q->rows * (size_t)q->cols + 1, sizeof(double));
    if (!packed)
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot pack a %lld x %lld operand",
                       (long long)q->rows, (long long)q->cols);
    pack_rows(q, packed);
    struct kl_job job = {x, bounds, p, packed, q->cols, eps, c, {0}};
    tm_status st = par_for(ctx, nc, 2 * (size_t)q->cols, kl_chunk, &job, err);
    tm_free(packed);
    if (out) {
        double s = 0.0;
        for (int i = 0; i < nc; i++)
            s += job.partial[i];
        *out = s;
    }
    return st;
}

static tm_status cpu_kl_spmm(void *ctx, const struct tm_bsparse *s, int trans,
                             const struct tm_bmat *p, const struct tm_bmat *q, double eps,
                             const struct tm_bmat *c, char *err)
{
    return kl_run(ctx, trans ? &s->xt : s->x, p, q, eps, c, NULL, err);
}

static tm_status cpu_kl_sum(void *ctx, const struct tm_bsparse *s, const struct tm_bmat *w,
                            const struct tm_bmat *ht, double eps, double *out, char *err)
{
    return kl_run(ctx, s->x, w, ht, eps, NULL, out, err);
}

const struct tm_backend_ops tm__backend_cpu_ops = {
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .sync = cpu_sync,
    .elem_size = cpu_elem_size,
    .mat_bytes = cpu_mat_bytes,
    .sparse_bytes = cpu_sparse_bytes,
    .mat_alloc = cpu_mat_alloc,
    .mat_free = cpu_mat_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .mat_adopt = cpu_mat_adopt,
    .mat_release = cpu_mat_release,
    .sparse_upload = cpu_sparse_upload,
    .sparse_free = cpu_sparse_free,
    .spmm = cpu_spmm,
    .gram_spmm = cpu_gram_spmm,
    .mu_update_fused = cpu_mu_update_fused,
    .gemm = cpu_gemm,
    .gram = cpu_gram,
    .orth_qr = cpu_orth_qr,
    .orth_lu = cpu_orth_lu,
    .svd_small = cpu_svd_small,
    .fill = cpu_fill,
    .copy = cpu_copy,
    .scale_cols = cpu_scale_cols,
    .axpy = cpu_axpy,
    .dot = cpu_dot,
    .col_norms = cpu_col_norms,
    .col_sums = cpu_col_sums,
    .hals_sweep = cpu_hals_sweep,
    .hals_sweep_fused = cpu_hals_sweep_fused,
    .mu_update = cpu_mu_update,
    .pgd_update = cpu_pgd_update,
    .kl_spmm = cpu_kl_spmm,
    .kl_sum = cpu_kl_sum,
};

const struct tm_backend_ops *tm_backend_cpu(void)
{
    return &tm__backend_cpu_ops;
}
