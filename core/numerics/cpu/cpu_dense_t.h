/*
 * cpu_dense_t.h - the dense products' and factorizations' code, written
 * once for both element types (cpu_real.h): the small GEMM and Gram
 * matrices of the NMF updates in the backend's own loops, Lanczos's tall
 * products cut into one-thread GEMMs, and QR (Cholesky QR twice, or
 * Householder), LU and the small SVD through LAPACKE. Included by
 * cpu_dense.c once per type; no include guard.
 */

/*
 * C = alpha A B + beta C for a tall A (rows x kk) times a small B (kk x nc):
 * the NMF updates' W G. Done here, row tiles in parallel, so that the mu and
 * pgd loops, like cd's, never wake OpenBLAS's threads (see GRAM_MAX_K). Each
 * element is one sum over p in order: the same for any thread count.
 */
#define SMALL_GEMM_MAX 4096 /* kk * kk */
#define GEMM_TILE 256

struct R(small_gemm_job) {
    const struct tm_bmat *a, *b, *c;
    real_t alpha, beta;
    const int64_t *bounds;
};

/* Rows [i0, i0 + 4) x columns [c0, c0 + nc) of C from the packed tile
 * (rows x kk, column-major, leading dimension GEMM_TILE, row r0 first): the
 * nc sums of 4 rows stay in vector registers across p. */
HOT_BODY void R(small_gemm_block)(const struct R(small_gemm_job) * j, const real_t *tile,
                                  int64_t r0, int64_t i0, int64_t c0, const int64_t nc)
{
    const int64_t kk = j->a->cols;
    vreal acc[8], a;
    for (int64_t c = 0; c < nc; c++)
        acc[c] = (vreal){0.0, 0.0, 0.0, 0.0};
    for (int64_t p = 0; p < kk; p++) {
        LOAD4(a, tile + r0 + p * GEMM_TILE);
        for (int64_t c = 0; c < nc; c++)
            acc[c] += a * AT(j->b, p, c0 + c);
    }
    for (int64_t c = 0; c < nc; c++) {
        real_t *cc = &AT(j->c, i0, c0 + c);
        vreal out = j->alpha * acc[c], old;
        if (j->beta != 0.0) {
            LOAD4(old, cc);
            out = j->alpha * acc[c] + j->beta * old;
        }
        STORE4(cc, out);
    }
}

#define SMALL_GEMM_CASE(NC)                                                                        \
    case NC:                                                                                       \
        R(small_gemm_block)(j, tile, r0, i0 + r0, c0, NC);                                         \
        break;

HOT_BODY void R(small_gemm_chunk_body)(void *arg, int chunk, double *scratch)
{
    const struct R(small_gemm_job) *j = arg;
    real_t *tile = (real_t *)scratch;
    const int64_t kk = j->a->cols, ncols = j->c->cols;
    for (int64_t i0 = j->bounds[chunk]; i0 < j->bounds[chunk + 1]; i0 += GEMM_TILE) {
        int64_t ni = j->bounds[chunk + 1] - i0 < GEMM_TILE ? j->bounds[chunk + 1] - i0 : GEMM_TILE;
        /* A's tile column by column: runs the prefetcher follows, where
         * row blocks across kk columns would be kk streams at once. */
        for (int64_t p = 0; p < kk; p++)
            memcpy(tile + p * GEMM_TILE, &AT(j->a, i0, p), (size_t)ni * sizeof(real_t));
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
                real_t t = 0.0;
                for (int64_t p = 0; p < kk; p++)
                    t += tile[r0 + p * GEMM_TILE] * AT(j->b, p, col);
                real_t *cc = &AT(j->c, i0 + r0, col);
                *cc = j->beta == 0.0 ? j->alpha * t : j->alpha * t + j->beta * *cc;
            }
    }
}

HOT_KERNEL(R(small_gemm_chunk))

/*
 * Lanczos's projections, C = alpha A^T B + beta C with A and B tall (d
 * rows) and C small, and C = alpha A B + beta C with A and C tall, on this
 * backend's threads: OpenBLAS runs one thread (server/cli.c), and on its own
 * the dense half of a Lanczos fit would use one core of the two. The d rows
 * are cut into a number of chunks fixed by d alone, each a one-thread dgemm;
 * A^T B's partials are then added in chunk order, so results are the same
 * for any thread count.
 */
struct R(tall_gemm_job) {
    int transa;
    const struct tm_bmat *a, *b, *c;
    real_t alpha, beta;
    const int64_t *bounds;
    real_t *partial; /* transa: n_chunks x (c rows x c cols) */
};

static void R(tall_gemm_chunk)(void *arg, int chunk, double *scratch)
{
    const struct R(tall_gemm_job) *j = arg;
    const struct tm_bmat *a = j->a, *b = j->b, *c = j->c;
    const int64_t lo = j->bounds[chunk], rows = j->bounds[chunk + 1] - lo;
    (void)scratch;
    if (j->transa)
        BLAS(gemm)
    (CblasColMajor, CblasTrans, CblasNoTrans, (blasint)c->rows, (blasint)c->cols, (blasint)rows,
     1.0, &AT(a, lo, 0), (blasint)a->ld, &AT(b, lo, 0), (blasint)b->ld, 0.0,
     j->partial + (size_t)chunk * (size_t)(c->rows * c->cols), (blasint)c->rows);
    else BLAS(gemm)(CblasColMajor, CblasNoTrans, CblasNoTrans, (blasint)rows, (blasint)c->cols,
                    (blasint)a->cols, j->alpha, &AT(a, lo, 0), (blasint)a->ld, b->data,
                    (blasint)b->ld, j->beta, &AT(c, lo, 0), (blasint)c->ld);
}

/* TM_EINVAL (nothing done) where tall_chunks makes no cut. */
static tm_status R(tall_gemm)(struct cpu_ctx *ctx, int transa, double alpha,
                              const struct tm_bmat *a, const struct tm_bmat *b, double beta,
                              const struct tm_bmat *c, char *err)
{
    const int64_t d = transa ? a->rows : c->rows;
    int64_t bounds[TALL_GEMM_CHUNKS + 1];
    int nc = tall_chunks(d, bounds);
    if (nc == 0)
        return TM_EINVAL;
    const size_t cells = (size_t)c->rows * (size_t)c->cols;
    struct R(tall_gemm_job) job = {transa, a, b, c, alpha, beta, bounds, NULL};
    if (transa && !(job.partial = tm_mallocarray((size_t)nc * cells + 1, sizeof(real_t))))
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate %d partial products", nc);
    tm_status st = tm__cpu_par_for(ctx, nc, 1, R(tall_gemm_chunk), &job, err);
    if (st == TM_OK && transa)
        for (int64_t jj = 0; jj < c->cols; jj++)
            for (int64_t i = 0; i < c->rows; i++) {
                double sum = R(chunk_sum)(job.partial, nc, cells, (size_t)(i + jj * c->rows));
                AT(c, i, jj) = beta == 0.0 ? alpha * sum : alpha * sum + beta * AT(c, i, jj);
            }
    tm_free(job.partial);
    return st;
}

static tm_status R(gemm)(void *ctx, int transa, int transb, double alpha, const struct tm_bmat *a,
                         const struct tm_bmat *b, double beta, const struct tm_bmat *c, char *err)
{
    int64_t kk = transa ? a->rows : a->cols;
    if (c->rows == 0 || c->cols == 0)
        return TM_OK;
    /* only the NMF shape (B square, k x k): Lanczos's projections stay BLAS-3 */
    if (!transa && !transb && kk > 0 && kk == c->cols && kk * kk <= SMALL_GEMM_MAX &&
        c->rows >= 16 * kk) {
        int64_t bounds[MAX_CHUNKS + 1];
        int nc = tm__cpu_row_chunks(c->rows, bounds);
        struct R(small_gemm_job) job = {a, b, c, alpha, beta, bounds};
        return tm__cpu_par_for(ctx, nc, GEMM_TILE * (size_t)kk, R(small_gemm_chunk), &job, err);
    }
    if (kk == 0) {
        for (int64_t j = 0; j < c->cols; j++)
            for (int64_t i = 0; i < c->rows; i++)
                AT(c, i, j) = beta == 0.0 ? 0.0 : beta * AT(c, i, j);
        return TM_OK;
    }
    if (!transb) {
        tm_status st = R(tall_gemm)(ctx, transa, alpha, a, b, beta, c, err);
        if (st != TM_EINVAL)
            return st;
    }
    BLAS(gemm)
    (CblasColMajor, transa ? CblasTrans : CblasNoTrans, transb ? CblasTrans : CblasNoTrans,
     (blasint)c->rows, (blasint)c->cols, (blasint)kk, alpha, a->data, (blasint)a->ld, b->data,
     (blasint)b->ld, beta, c->data, (blasint)c->ld);
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

struct R(gram_job) {
    const struct tm_bmat *a, *b; /* dot: a and b; gram: a only */
    const int64_t *bounds;
    double *partial; /* gram: n_chunks x k x k (upper triangle); dot: n_chunks */
};

HOT_BODY void R(gram_chunk_body)(void *arg, int chunk, double *scratch)
{
    const struct R(gram_job) *j = arg;
    const int64_t k = j->a->cols, lo = j->bounds[chunk], hi = j->bounds[chunk + 1];
    double *g = j->partial + (size_t)chunk * (size_t)k * (size_t)k;
    (void)scratch;
    /* Rows in blocks that stay in L1/L2 while every pair of columns is
     * dotted; block partials are added in block order. */
    for (int64_t a = 0; a < k; a++)
        for (int64_t b = a; b < k; b++)
            g[a + b * k] = 0.0;
    for (int64_t i0 = lo; i0 < hi; i0 += 256) {
        int64_t i1 = hi - i0 < 256 ? hi : i0 + 256;
        for (int64_t b = 0; b < k; b++)
            for (int64_t a = 0; a <= b; a++)
                g[a + b * k] += R(dot_range)(&AT(j->a, 0, a), &AT(j->a, 0, b), i0, i1);
    }
}

HOT_KERNEL(R(gram_chunk))

static tm_status R(gram)(void *ctx, const struct tm_bmat *a, const struct tm_bmat *c, char *err)
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
        BLAS(syrk)
        (CblasColMajor, CblasUpper, CblasTrans, (blasint)k, (blasint)a->rows, 1.0, a->data,
         (blasint)a->ld, 0.0, c->data, (blasint)c->ld);
    } else {
        int64_t bounds[MAX_CHUNKS + 1];
        int nc = tm__cpu_row_chunks(a->rows, bounds);
        double *partial = tm_mallocarray((size_t)nc * (size_t)k * (size_t)k, sizeof(double));
        if (!partial)
            return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate Gram partial sums");
        struct R(gram_job) job = {a, NULL, bounds, partial};
        tm_status st = tm__cpu_par_for(ctx, nc, 0, R(gram_chunk), &job, err);
        if (st != TM_OK) {
            tm_free(partial);
            return st;
        }
        for (int64_t j = 0; j < k; j++)
            for (int64_t i = 0; i <= j; i++)
                AT(c, i, j) = f64_chunk_sum(partial, nc, (size_t)(k * k), (size_t)(i + j * k));
        tm_free(partial);
    }
    for (int64_t j = 0; j < k; j++)
        for (int64_t i = j + 1; i < k; i++)
            AT(c, i, j) = AT(c, j, i);
    return TM_OK;
}

/* ---- factorizations ---- */

/* Householder QR: geqrf + orgqr. */
static tm_status R(qr_householder)(const struct tm_bmat *a, char *err)
{
    int64_t m = a->rows, k = a->cols;
    real_t *tau = tm_mallocarray((size_t)k, sizeof(real_t));
    if (!tau)
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate QR workspace");
    lapack_int info = LAPACK(geqrf)(LAPACK_COL_MAJOR, (lapack_int)m, (lapack_int)k, a->data,
                                    (lapack_int)a->ld, tau);
    if (info == 0)
        info = LAPACK(orgqr)(LAPACK_COL_MAJOR, (lapack_int)m, (lapack_int)k, (lapack_int)k, a->data,
                             (lapack_int)a->ld, tau);
    tm_free(tau);
    if (info == LAPACK_WORK_MEMORY_ERROR)
        return tm_errf(err, TM_ENOMEM, "cpu backend: QR workspace");
    if (info != 0)
        return tm_errf(err, TM_ELAPACK, "cpu backend: geqrf/orgqr failed (info %d)", (int)info);
    return TM_OK;
}

/*
 * CholQR's two tall steps on the backend's threads, over R(tall_gemm)'s cut of
 * the rows (the same for any thread count): A^T A as one-thread dsyrks of
 * the chunks, added in chunk order, and A R^-1 as one dtrsm per chunk (each
 * row's solve is its own). For blocks of at least TALL_QR_MIN_COLS columns:
 * OpenBLAS runs one thread, and on its own a tall QR such as randomized
 * SVD's final one would use one core (bench/NOTES.md, "CholQR2").
 */
#define TALL_QR_MIN_COLS 16

struct R(tall_qr_job) {
    const struct tm_bmat *a;
    const int64_t *bounds;
    real_t *partial; /* syrk: n_chunks x k x k */
    const real_t *r; /* trsm: R, k x k upper */
};

static void R(tall_syrk_chunk)(void *arg, int chunk, double *scratch)
{
    const struct R(tall_qr_job) *j = arg;
    const int64_t lo = j->bounds[chunk], k = j->a->cols;
    (void)scratch;
    BLAS(syrk)
    (CblasColMajor, CblasUpper, CblasTrans, (blasint)k, (blasint)(j->bounds[chunk + 1] - lo), 1.0,
     &AT(j->a, lo, 0), (blasint)j->a->ld, 0.0, j->partial + (size_t)chunk * (size_t)(k * k),
     (blasint)k);
}

static void R(tall_trsm_chunk)(void *arg, int chunk, double *scratch)
{
    const struct R(tall_qr_job) *j = arg;
    const int64_t lo = j->bounds[chunk], k = j->a->cols;
    (void)scratch;
    BLAS(trsm)
    (CblasColMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit,
     (blasint)(j->bounds[chunk + 1] - lo), (blasint)k, 1.0, j->r, (blasint)k, &AT(j->a, lo, 0),
     (blasint)j->a->ld);
}

/* g (k x k, upper triangle) = A^T A, over the nc chunks of bounds (nc 0:
 * one dsyrk); 0 when its workspace could not be had. */
static int R(cholqr_gram)(struct cpu_ctx *ctx, const struct tm_bmat *a, int nc,
                          const int64_t *bounds, real_t *g)
{
    int64_t k = a->cols;
    if (nc == 0) {
        BLAS(syrk)
        (CblasColMajor, CblasUpper, CblasTrans, (blasint)k, (blasint)a->rows, 1.0, a->data,
         (blasint)a->ld, 0.0, g, (blasint)k);
        return 1;
    }
    struct R(tall_qr_job)
        job = {a, bounds, tm_mallocarray((size_t)nc * (size_t)(k * k), sizeof(real_t)), NULL};
    if (!job.partial || tm__cpu_par_for(ctx, nc, 1, R(tall_syrk_chunk), &job, NULL) != TM_OK) {
        tm_free(job.partial);
        return 0;
    }
    for (int64_t jj = 0; jj < k; jj++)
        for (int64_t i = 0; i <= jj; i++)
            g[i + jj * k] = R(chunk_sum)(job.partial, nc, (size_t)(k * k), (size_t)(i + jj * k));
    tm_free(job.partial);
    return 1;
}

/* a <- a r^-1, over the same chunks; 0 when it could not be done (a
 * untouched). */
static int R(cholqr_solve)(struct cpu_ctx *ctx, const struct tm_bmat *a, int nc,
                           const int64_t *bounds, const real_t *r)
{
    if (nc == 0) {
        BLAS(trsm)
        (CblasColMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, (blasint)a->rows,
         (blasint)a->cols, 1.0, r, (blasint)a->cols, a->data, (blasint)a->ld);
        return 1;
    }
    struct R(tall_qr_job) job = {a, bounds, NULL, r};
    return tm__cpu_par_for(ctx, nc, 1, R(tall_trsm_chunk), &job, NULL) == TM_OK;
}

/* The smallest R(j,j)^2 / max G(j,j) a pass accepts: a condition number of
 * A up to ~1e6 in float64 and ~3e2 in float32, well inside CholQR2's
 * limit of about eps^-1/2 (6.7e7 and 2.9e3). */
#undef CHOLQR_MIN_PIVOT
#if CPU_REAL == 64
#define CHOLQR_MIN_PIVOT 1e-12
#else
#define CHOLQR_MIN_PIVOT 1e-5
#endif

/*
 * One Cholesky-QR pass: G = A^T A = R^T R, A <- A R^-1. Returns 1 when G is
 * too ill-conditioned for it, or its workspace could not be had (then A is
 * untouched).
 */
static int R(cholqr_pass)(struct cpu_ctx *ctx, const struct tm_bmat *a, real_t *g)
{
    int64_t k = a->cols, bounds[TALL_GEMM_CHUNKS + 1];
    int nc = k >= TALL_QR_MIN_COLS ? tall_chunks(a->rows, bounds) : 0;
    if (!R(cholqr_gram)(ctx, a, nc, bounds, g))
        return 1;
    real_t dmax = 0.0;
    for (int64_t j = 0; j < k; j++)
        dmax = fmax(dmax, g[j + j * k]);
    if (LAPACK(potrf_work)(LAPACK_COL_MAJOR, 'U', (lapack_int)k, g, (lapack_int)k) != 0)
        return 1;
    /* R's diagonal squared bounds G's eigenvalues: refuse a condition
     * number where one more pass could not repair the orthogonality
     * (CHOLQR_MIN_PIVOT). */
    for (int64_t j = 0; j < k; j++)
        if (!(g[j + j * k] * g[j + j * k] > CHOLQR_MIN_PIVOT * dmax))
            return 1;
    return !R(cholqr_solve)(ctx, a, nc, bounds, g);
}

/*
 * Thin Q. Cholesky QR twice (CholQR2: orthogonal to machine precision for
 * condition numbers below ~1e6, and BLAS-3, so much faster than orgqr on
 * tall matrices: bench/NOTES.md, "CholQR2"), falling back to Householder when the Gram matrix is
 * too ill-conditioned. Q differs from orgqr's only in column signs, which the algorithms absorb
 * (svd_flip fixes the final signs).
 */
static tm_status R(orth_qr)(void *ctx, const struct tm_bmat *a, char *err)
{
    int64_t k = a->cols;
    if (k == 0)
        return TM_OK;
    if (a->rows < 4 * k)
        return R(qr_householder)(a, err);
    real_t *g = tm_mallocarray((size_t)k * (size_t)k, sizeof(real_t));
    if (!g)
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate QR workspace");
    int bad = R(cholqr_pass)(ctx, a, g) || R(cholqr_pass)(ctx, a, g);
    tm_free(g);
    return bad ? R(qr_householder)(a, err) : TM_OK;
}

static tm_status R(orth_lu)(void *ctx, const struct tm_bmat *a, char *err)
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
    lapack_int info = LAPACK(getrf_work)(LAPACK_COL_MAJOR, (lapack_int)m, (lapack_int)k, a->data,
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
    LAPACK(laswp_work)
    (LAPACK_COL_MAJOR, (lapack_int)k, a->data, (lapack_int)a->ld, 1, (lapack_int)k, ipiv, -1);
    tm_free(ipiv);
    return TM_OK;
}

static tm_status R(svd_small)(void *ctx, const struct tm_bmat *a, const struct tm_bmat *u,
                              double *s, const struct tm_bmat *vt, char *err)
{
    int64_t r = a->rows, c = a->cols, p = r < c ? r : c;
    struct tm_bmat su = {0}, svt = {0};
    tm_status st = TM_OK;
    if (p == 0)
        return TM_OK;
#if CPU_REAL == 64
    real_t *sv = s;
#else /* the host's s is double */
    real_t *sv = tm_mallocarray((size_t)p, sizeof(real_t));
    if (!sv)
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate %lld singular values",
                       (long long)p);
#endif
    if (!u && (st = tm__cpu_mat_alloc(ctx, r, p, &su, err)) != TM_OK)
        goto out;
    if (!vt && (st = tm__cpu_mat_alloc(ctx, p, c, &svt, err)) != TM_OK)
        goto out;
    const struct tm_bmat *uu = u ? u : &su, *vv = vt ? vt : &svt;
    lapack_int info = LAPACK(gesdd)(LAPACK_COL_MAJOR, 'S', (lapack_int)r, (lapack_int)c, a->data,
                                    (lapack_int)a->ld, sv, uu->data, (lapack_int)uu->ld, vv->data,
                                    (lapack_int)vv->ld);
    if (info == LAPACK_WORK_MEMORY_ERROR)
        st = tm_errf(err, TM_ENOMEM, "cpu backend: gesdd workspace");
    else if (info != 0)
        st = tm_errf(err, TM_ELAPACK, "cpu backend: gesdd failed (info %d)", (int)info);
out:
    tm__cpu_mat_free(ctx, &svt);
    tm__cpu_mat_free(ctx, &su);
#if CPU_REAL == 32
    for (int64_t i = 0; st == TM_OK && i < p; i++)
        s[i] = sv[i];
    tm_free(sv);
#endif
    return st;
}
