/*
 * cpu_sparse_t.h - the sparse products' kernels, written once for both
 * element types (cpu_real.h): X B and X^T B (gathering rows of B, or
 * scattering along the other orientation when op(X) is wide) and the Gram
 * product X X^T V / X^T X V in one pass or two phases. Included by
 * cpu_sparse.c once per type; no include guard.
 */

/* Rows of a product are computed row-major into a tile of TILE rows, then
 * stored column by column, so that C is written in runs, not by stride ld. */
#define TILE 64

struct R(spmm_job) {
    const struct tm_csr *x;
    const int64_t *bounds;
    const real_t *b; /* packed row-major, or B's single column when k == 1 */
    int64_t k;
    real_t alpha, beta;
    const struct tm_bmat *c;
};

HOT_BODY void R(spmm_rows)(const struct R(spmm_job) * j, int chunk, real_t *buf, const int64_t k)
{
    const struct tm_csr *x = j->x;
    const real_t *xv = CSR_VALS(x);
    const real_t *restrict b = j->b;
    const int64_t pend_all = x->indptr[j->bounds[chunk + 1]];
    for (int64_t i0 = j->bounds[chunk]; i0 < j->bounds[chunk + 1]; i0 += TILE) {
        int64_t ni = j->bounds[chunk + 1] - i0 < TILE ? j->bounds[chunk + 1] - i0 : TILE;
        for (int64_t g = 0; g < ni; g++) {
            real_t sums[FIXED_K_MAX];
            real_t *restrict acc = k <= FIXED_K_MAX ? sums : buf + g * k;
            for (int64_t r = 0; r < k; r++)
                acc[r] = 0.0;
            const int64_t pend = x->indptr[i0 + g + 1];
            for (int64_t p = x->indptr[i0 + g]; p < pend; p++) {
                const real_t v = xv[p];
                const real_t *restrict brow = b + (size_t)x->indices[p] * k;
                R(prefetch_row)(b, x->indices, p + PF_DIST, pend_all, k);
                for (int64_t r = 0; r < k; r++)
                    acc[r] += v * brow[r];
            }
            if (k <= FIXED_K_MAX) /* through acc, restrict: not by the name sums */
                memcpy(buf + g * k, acc, (size_t)k * sizeof(real_t));
        }
        for (int64_t r = 0; r < k; r++) {
            real_t *restrict c = (real_t *)j->c->data + i0 + (size_t)r * j->c->ld;
            if (j->beta == 0.0)
                for (int64_t g = 0; g < ni; g++)
                    c[g] = j->alpha * buf[g * k + r];
            else
                for (int64_t g = 0; g < ni; g++)
                    c[g] = j->alpha * buf[g * k + r] + j->beta * c[g];
        }
    }
}

#define SPMM_ROWS_CASE(K)                                                                          \
    case K:                                                                                        \
        R(spmm_rows)(j, chunk, buf, K);                                                            \
        return;

HOT_BODY void R(spmm_chunk_body)(void *arg, int chunk, double *scratch)
{
    const struct R(spmm_job) *j = arg;
    real_t *buf = (real_t *)scratch;
    switch (j->k) {
        FIXED_K_CASES(SPMM_ROWS_CASE)
    default:
        R(spmm_rows)(j, chunk, buf, j->k);
    }
}

HOT_KERNEL(R(spmm_chunk))

/*
 * NEEDSWORK: the sparse products are bound by the latency of the gathered (or
 * scattered) rows; what was tried, what measured no faster and what is
 * untried: bench/NOTES.md, "Sparse products".
 *
 * When op(X) is wide (fewer output rows than B has rows), gathering rows of a
 * big B for each non-zero is bound by memory latency; instead walk the other
 * orientation's rows (columns of op(X)) streaming B once, in tiles, and
 * scatter into SCATTER_PARTS private row-major accumulators of the small
 * output, summed in a fixed order: deterministic for any thread count.
 */
#define SCATTER_PARTS 4

struct R(scatter_job) {
    const struct tm_csr *xo; /* rows = columns of op(X) */
    const int64_t *bounds;   /* SCATTER_PARTS ranges of xo's rows */
    const struct tm_bmat *b;
    int64_t k, r;
    real_t *acc; /* SCATTER_PARTS x r x k, zeroed */
    real_t alpha, beta;
    const struct tm_bmat *c;
    const int64_t *rbounds; /* output row chunks for the reduction */
    const real_t *vp;       /* gram_spmm: V packed row-major, gathered */
};

HOT_BODY void R(scatter_rows)(const struct R(scatter_job) * j, int part, real_t *buf,
                              const int64_t k)
{
    const struct tm_csr *xo = j->xo;
    const real_t *xv = CSR_VALS(xo);
    const int64_t ld = j->b->ld;
    real_t *restrict cp = j->acc + (size_t)part * (size_t)j->r * (size_t)k;
    const int64_t pend_all = xo->indptr[j->bounds[part + 1]];
    for (int64_t j0 = j->bounds[part]; j0 < j->bounds[part + 1]; j0 += TILE) {
        int64_t nj = j->bounds[part + 1] - j0 < TILE ? j->bounds[part + 1] - j0 : TILE;
        for (int64_t c = 0; c < k; c++) {
            const real_t *src = (const real_t *)j->b->data + j0 + (size_t)c * ld;
            for (int64_t g = 0; g < nj; g++)
                buf[g * k + c] = src[g];
        }
        for (int64_t g = 0; g < nj; g++) {
            const real_t *restrict brow = buf + g * k;
            for (int64_t p = xo->indptr[j0 + g]; p < xo->indptr[j0 + g + 1]; p++) {
                const real_t v = xv[p];
                real_t *restrict crow = cp + (size_t)xo->indices[p] * k;
                R(prefetch_row)(cp, xo->indices, p + PF_DIST, pend_all, k);
                R(axpy_row)(crow, v, brow, k);
            }
        }
    }
}

#define SCATTER_ROWS_CASE(K)                                                                       \
    case K:                                                                                        \
        R(scatter_rows)(j, part, buf, K);                                                          \
        return;

HOT_BODY void R(scatter_chunk_body)(void *arg, int part, double *scratch)
{
    const struct R(scatter_job) *j = arg;
    real_t *buf = (real_t *)scratch;
    switch (j->k) {
        FIXED_K_CASES(SCATTER_ROWS_CASE)
    default:
        R(scatter_rows)(j, part, buf, j->k);
    }
}

HOT_KERNEL(R(scatter_chunk))

static void R(reduce_chunk)(void *arg, int chunk, double *scratch)
{
    const struct R(scatter_job) *j = arg;
    const int64_t k = j->k;
    const size_t part = (size_t)j->r * (size_t)k;
    (void)scratch;
    for (int64_t c = 0; c < k; c++) {
        real_t *col = (real_t *)j->c->data + (size_t)c * j->c->ld;
        for (int64_t i = j->rbounds[chunk]; i < j->rbounds[chunk + 1]; i++) {
            const real_t *a = j->acc + (size_t)i * k + c;
            real_t sum = 0.0;
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
HOT_BODY void R(gram_rows)(const struct R(scatter_job) * j, int part, real_t *buf, const int64_t k)
{
    const struct tm_csr *xo = j->xo;
    const real_t *xv = CSR_VALS(xo);
    real_t *cp = j->acc + (size_t)part * (size_t)j->r * (size_t)k;
    const int64_t pend_all = xo->indptr[j->bounds[part + 1]];
    for (int64_t row = j->bounds[part]; row < j->bounds[part + 1]; row++) {
        real_t dots[FIXED_K_MAX];
        real_t *d = k <= FIXED_K_MAX ? dots : buf;
        R(gather_row)(xo, row, j->vp, pend_all, d, k);
        for (int64_t p = xo->indptr[row]; p < xo->indptr[row + 1]; p++)
            R(axpy_row)(cp + (size_t)xo->indices[p] * k, xv[p], d, k);
    }
}

#define GRAM_ROWS_CASE(K)                                                                          \
    case K:                                                                                        \
        R(gram_rows)(j, part, buf, K);                                                             \
        return;

HOT_BODY void R(gram_spmm_chunk_body)(void *arg, int part, double *scratch)
{
    const struct R(scatter_job) *j = arg;
    real_t *buf = (real_t *)scratch;
    switch (j->k) {
        FIXED_K_CASES(GRAM_ROWS_CASE)
    default:
        R(gram_rows)(j, part, buf, j->k);
    }
}

HOT_KERNEL(R(gram_spmm_chunk))

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
struct R(gram_spmm_job) {
    const struct tm_csr *xo;
    const real_t *vp;                /* V packed row-major (xo->n_cols x k) */
    const struct tm_csr *xr;         /* the other orientation: its rows are the output's */
    const struct row_splits *splits; /* of xo, for the team's size, or NULL */
    real_t *d;                       /* block_rows x k */
    real_t *acc;                     /* xo->n_cols x k, row-major, zeroed */
    int64_t k, block_rows;
    struct tm_team *team;
};

/* One member's part of a phase on rows [b0, b1): its args. */
struct R(gram_phase) {
    const struct R(gram_spmm_job) * j;
    int64_t b0, b1;
    int member, size;
};

HOT_BODY void R(gram_gather_k)(const struct R(gram_phase) * ph, const int64_t k)
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
        R(gather_row)(xo, r, ph->j->vp, indptr[hi], ph->j->d + (r - ph->b0) * k, k);
}

HOT_BODY void R(gram_scatter_k)(const struct R(gram_phase) * ph, const int64_t k)
{
    const struct tm_csr *xo = ph->j->xo;
    const real_t *xv = CSR_VALS(xo);
    const int member = ph->member, size = ph->size;
    const int64_t clo = member_first_col(ph->j->xr, member, size);
    const int64_t chi = member_first_col(ph->j->xr, member + 1, size);
    const struct row_splits *sp =
        ph->j->splits && ph->j->splits->size == size ? ph->j->splits : NULL;
    real_t *acc = ph->j->acc;
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
        const real_t *d = ph->j->d + (r - ph->b0) * k;
        for (int64_t p = p0; p < p1; p++) {
            const real_t v = xv[p];
            real_t *row = acc + (size_t)xo->indices[p] * k;
            R(prefetch_row)(acc, xo->indices, p + PF_DIST, p1, k);
            R(axpy_row)(row, v, d, k);
        }
    }
}

#define GRAM_GATHER_CASE(K)                                                                        \
    case K:                                                                                        \
        R(gram_gather_k)(ph, K);                                                                   \
        return;
#define GRAM_SCATTER_CASE(K)                                                                       \
    case K:                                                                                        \
        R(gram_scatter_k)(ph, K);                                                                  \
        return;

HOT_BODY void R(gram_gather_body)(void *arg, int chunk, double *scratch)
{
    const struct R(gram_phase) *ph = arg;
    (void)chunk, (void)scratch;
    switch (ph->j->k) {
        FIXED_K_CASES(GRAM_GATHER_CASE)
    default:
        R(gram_gather_k)(ph, ph->j->k);
    }
}

HOT_BODY void R(gram_scatter_body)(void *arg, int chunk, double *scratch)
{
    const struct R(gram_phase) *ph = arg;
    (void)chunk, (void)scratch;
    switch (ph->j->k) {
        FIXED_K_CASES(GRAM_SCATTER_CASE)
    default:
        R(gram_scatter_k)(ph, ph->j->k);
    }
}

HOT_KERNEL(R(gram_gather))
HOT_KERNEL(R(gram_scatter))

/* Up to this width gram_spmm makes one pass with private accumulators
 * (gram_rows), which are small there; wider, the two phases with one shared
 * accumulator (bench/NOTES.md, "gram_spmm: one pass"). */
#define GRAM_ONE_PASS_MAX_K 8

/* Blocks end at GRAM_BLOCK_DOUBLES of d or at GRAM_BLOCK_NNZ non-zeros,
 * whichever comes first, so that the block's rows of xo are still in L2 when
 * they are walked again to scatter. */
#define GRAM_BLOCK_DOUBLES 65536
#define GRAM_BLOCK_NNZ 32768

static void R(gram_member)(void *arg, int member, int size)
{
    const struct R(gram_spmm_job) *j = arg;
    const int64_t n = j->xo->n_rows;
    for (int64_t b0 = 0, b1; b0 < n; b0 = b1) {
        b1 = n - b0 < j->block_rows ? n : b0 + j->block_rows;
        int64_t by_nnz = row_at_nnz(j->xo->indptr, b0, b1, j->xo->indptr[b0] + GRAM_BLOCK_NNZ);
        if (by_nnz > b0 && by_nnz < b1)
            b1 = by_nnz;
        struct R(gram_phase) ph = {j, b0, b1, member, size};
        R(gram_gather)(&ph, member, NULL);
        tm_team_sync(j->team);
        R(gram_scatter)(&ph, member, NULL);
        tm_team_sync(j->team);
    }
}

/* c = alpha op(X) b + beta c by scattering along the rows of xo (the other
 * orientation), or, with kernel gram_spmm_chunk and vp, c = Xo^T Xo V. */
static tm_status R(scatter_run)(struct cpu_ctx *ctx, const struct tm_csr *xo,
                                void (*kernel)(void *, int, double *), const real_t *vp,
                                real_t alpha, const struct tm_bmat *b, real_t beta,
                                const struct tm_bmat *c, char *err)
{
    int64_t k = b->cols, r = c->rows;
    real_t *acc = tm_calloc((size_t)SCATTER_PARTS * (size_t)r * (size_t)k + 1, sizeof(real_t));
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
    int nrc = tm__cpu_row_chunks(r, rbounds);
    struct R(scatter_job) job = {xo, bounds, b, k, r, acc, alpha, beta, c, rbounds, vp};
    tm_status st = tm__cpu_par_for(ctx, SCATTER_PARTS, (size_t)TILE * (size_t)k, kernel, &job, err);
    if (st == TM_OK)
        st = tm__cpu_par_for(ctx, nrc, 1, R(reduce_chunk), &job, err);
    tm_free(acc);
    return st;
}

static tm_status R(spmm_scatter)(struct cpu_ctx *ctx, const struct tm_csr *xo, real_t alpha,
                                 const struct tm_bmat *b, real_t beta, const struct tm_bmat *c,
                                 char *err)
{
    return R(scatter_run)(ctx, xo, R(scatter_chunk), NULL, alpha, b, beta, c, err);
}

struct R(transpose_job) {
    const real_t *src; /* rows x k, row-major */
    int64_t k;
    const struct tm_bmat *dst;
    const int64_t *bounds;
};

static void R(unpack_chunk)(void *arg, int chunk, double *scratch)
{
    const struct R(transpose_job) *j = arg;
    (void)scratch;
    for (int64_t c = 0; c < j->k; c++) {
        real_t *col = (real_t *)j->dst->data + (size_t)c * j->dst->ld;
        for (int64_t i = j->bounds[chunk]; i < j->bounds[chunk + 1]; i++)
            col[i] = j->src[(size_t)i * j->k + c];
    }
}

static tm_status R(gram_spmm_cols)(struct cpu_ctx *c, const struct tm_bsparse *s, int side,
                                   const struct tm_bmat *v, const struct tm_bmat *av, char *err)
{
    /* X X^T V sums over terms: the rows of X^T; X^T X V over documents.
     * The other orientation's row pointers balance the output ranges. */
    const struct tm_csr *xo = side == TM_NOTRANS ? &s->xt : s->x;
    const struct tm_csr *xr = side == TM_NOTRANS ? s->x : &s->xt;
    const int64_t k = v->cols, r = v->rows;
    if (k <= GRAM_ONE_PASS_MAX_K) {
        real_t *vp = tm_mallocarray((size_t)r * (size_t)k + 1, sizeof(real_t));
        if (!vp)
            return tm_errf(err, TM_ENOMEM, "cpu backend: cannot pack a %lld x %lld operand",
                           (long long)r, (long long)k);
        tm__cpu_pack_rows(v, vp);
        tm_status st = R(scatter_run)(c, xo, R(gram_spmm_chunk), vp, 1.0, v, 0.0, av, err);
        tm_free(vp);
        return st;
    }
    int64_t block_rows = GRAM_BLOCK_DOUBLES / k;
    if (block_rows < 16)
        block_rows = 16;
    real_t *packed = tm_mallocarray((size_t)r * (size_t)k + 1, sizeof(real_t));
    real_t *acc = tm_calloc((size_t)r * (size_t)k + 1, sizeof(real_t));
    real_t *d = tm_mallocarray((size_t)block_rows * (size_t)k + 1, sizeof(real_t));
    if (!packed || !acc || !d) {
        tm_free(packed);
        tm_free(acc);
        tm_free(d);
        return tm_errf(err, TM_ENOMEM,
                       "cpu backend: cannot allocate the %lld x %lld Gram product's workspace",
                       (long long)r, (long long)k);
    }
    tm__cpu_pack_rows(v, packed);
    /* The splits are only a help (without them gram_scatter searches each
     * row), made on first use: narrow products never need them, and a job
     * needs one orientation's (Lanczos up to k = 16 and NMF: neither). The
     * handle has the context's one owner, so filling it here races with
     * nothing; it was allocated writable (tm__cpu_sparse_upload). */
    struct row_splits *sp = (struct row_splits *)(side == TM_NOTRANS ? &s->split_xt : &s->split_x);
    if (!sp->at && c->n_threads > 1)
        make_splits(xo, xr, c->n_threads, sp);
    struct R(gram_spmm_job)
        job = {xo, packed, xr, sp->at ? sp : NULL, d, acc, k, block_rows, c->team};
    tm_team_run(c->team, R(gram_member), &job);
    tm_free(packed);
    tm_free(d);
    int64_t rb[MAX_CHUNKS + 1];
    int nrc = tm__cpu_row_chunks(r, rb);
    struct R(transpose_job) tj = {acc, k, av, rb};
    tm_status st = tm__cpu_par_for(c, nrc, 1, R(unpack_chunk), &tj, err);
    tm_free(acc);
    return st;
}

/*
 * Every column of G V is made from the same column of V alone, so wide V
 * goes GRAM_MAX_COLS columns at a time (the same bits): the packed operand
 * and the accumulator of a narrower pass stay in cache, and its workspace
 * is smaller (bench/NOTES.md, "gram_spmm on wide V").
 */
#define GRAM_MAX_COLS 32

static tm_status R(gram_spmm)(void *ctx, const struct tm_bsparse *s, int side,
                              const struct tm_bmat *v, const struct tm_bmat *av, char *err)
{
    const int64_t k = v->cols, passes = (k + GRAM_MAX_COLS - 1) / GRAM_MAX_COLS;
    tm_status st = TM_OK;
    for (int64_t q = 0; st == TM_OK && q < passes; q++) {
        /* passes of nearly equal width */
        int64_t c0 = k * q / passes, w = k * (q + 1) / passes - c0;
        struct tm_bmat vq = tm_bmat_cols(v, c0, w), aq = tm_bmat_cols(av, c0, w);
        st = R(gram_spmm_cols)(ctx, s, side, &vq, &aq, err);
    }
    return st;
}

static tm_status R(spmm)(void *ctx, const struct tm_bsparse *s, int trans, double alpha,
                         const struct tm_bmat *b, double beta, const struct tm_bmat *c, char *err)
{
    const struct tm_csr *x = trans ? &s->xt : s->x;
    if (b->cols > 1 && x->n_rows < x->n_cols)
        return R(spmm_scatter)(ctx, trans ? s->x : &s->xt, alpha, b, beta, c, err);
    int64_t bounds[MAX_CHUNKS + 1];
    int nc = tm__cpu_csr_chunks(x, bounds);
    real_t *packed = NULL;
    const real_t *bp = b->data;
    if (b->cols > 1) {
        packed = tm_mallocarray((size_t)b->rows * (size_t)b->cols + 1, sizeof(real_t));
        if (!packed)
            return tm_errf(err, TM_ENOMEM, "cpu backend: cannot pack a %lld x %lld operand",
                           (long long)b->rows, (long long)b->cols);
        tm__cpu_pack_rows(b, packed);
        bp = packed;
    }
    struct R(spmm_job) job = {x, bounds, bp, b->cols, alpha, beta, c};
    tm_status st =
        tm__cpu_par_for(ctx, nc, (size_t)TILE * (size_t)b->cols, R(spmm_chunk), &job, err);
    tm_free(packed);
    return st;
}
