/*
 * oracle.c - every backend op, one at a time, on backend A against backend B
 * (the CPU backend): float32 and float64, contiguous matrices and views whose
 * ld exceeds their rows (with sentinel rows around them that must survive),
 * at a tiny size, a medium one (a corpus-like 20,000 x 5,000 matrix with
 * about 1e6 non-zeros, more than 32 a row, k = 100) and a size past the CUDA
 * kernels' largest grid (so their grid-stride loops run). Outputs are filled
 * with NaN first; the answers are compared by relative Frobenius error (QR
 * and SVD factors up to the sign of each vector); A runs each case twice and
 * must give the same bits; ops whose contract propagates NaN get a NaN input
 * and must put NaN where B does. Then an out-of-memory-then-reuse case and a
 * float32 Lanczos run (core/numerics/svd.h) against float64.
 *
 * Backend A is the CUDA backend where the plugin loads and sees a device
 * (tests/gpu/run.sh), else the CPU backend: the self-test that `make test`
 * runs, which checks the harness, the NaN fills, the views, determinism and
 * that the tolerances hold where the answers agree. --break OP shifts one
 * output of OP on backend B, so that the oracle can be seen to fail.
 *
 * usage: oracle [--sizes tiny,medium,grid] [--quick] [--op SUBSTR] [--cpu]
 *               [--break OP] [--threads N] [--no-oom]
 *   --quick   medium and grid shrunk to a CPU self-test's budget (the device
 *             run uses the real ones)
 *   --cpu     backend A is the CPU backend even where a GPU is usable
 *   --no-oom  without the out-of-memory case, whose failing cudaMalloc
 *             compute-sanitizer would report as an API error
 * Prints one PASS/FAIL/SKIP line per case with its time, then
 * "oracle: N passed, N failed, N skipped"; exits 1 when any case failed.
 * Thread-safety: a program; one thread (OpenBLAS may use its own).
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/csr.h"
#include "core/numerics/backend.h"
#include "core/numerics/rng.h"
#include "core/numerics/svd.h"
#include "gpu/gpu.h"
#include "planted.h"

/*
 * Tolerances of the relative Frobenius error between the backends, by dtype
 * (the one place they are set). ew: elementwise ops and copies, one or a few
 * roundings per element, which a fused multiply-add on the GPU may change by
 * an ulp or two: 16 eps. prod: products and reductions, summed in another
 * order (cuBLAS/cuSPARSE trees, blocked sums, against the CPU's loops) over
 * up to 20,000 terms of one sign (the inputs are mostly positive, so no
 * cancellation): the statistical sqrt(n) eps of 20,000 terms, about 140 eps,
 * with room: 1e-4 and 1e-11 (~850 and ~45,000 eps; float64's room is for the
 * largest medium sums, 5,000 x 100). fact: QR, LU and SVD factors, whose
 * perturbation is eps times a condition number (1 / the gap between
 * neighbouring singular values, for the singular vectors of a 200 x 100
 * Gaussian matrix a few hundred): 2e-3 and 1e-8.
 */
enum { CLS_EW, CLS_PROD, CLS_FACT };
static const double TOL[2][3] = {
    /* float32 */ {16 * FLT_EPSILON, 1e-4, 2e-3},
    /* float64 */ {16 * DBL_EPSILON, 1e-11, 1e-8},
};
/* float32 Lanczos against float64: README's promise for the GPU. */
#define LANCZOS_TOL 1e-4
#define SENTINEL 7.25 /* the rows around a view: an op must not write them */

/* ------------------------------------------------------------------ sizes */

struct size {
    const char *name;
    int64_t m, n, nnz_row, k; /* the sparse matrix and the factors' width */
    int64_t r, c;             /* the elementwise ops' and reductions' matrices */
};

enum { SZ_TINY, SZ_MEDIUM, SZ_GRID, SZ_COUNT };
/*
 * grid: the CUDA elementwise kernels launch at most 65535 * 8 blocks of 256
 * threads, so r * c passes 65535 * 8 * 256 = 134,215,680; the KL ratio
 * kernel puts a warp on a row with the same cap, so m passes 4,194,240.
 * quick: past the reductions' fixed 256 x 256 threads only.
 */
static const struct size SIZES[2][SZ_COUNT] = {
    {{"tiny", 7, 5, 3, 3, 7, 3},
     {"medium", 20000, 5000, 50, 100, 20000, 100},
     {"grid", 4194245, 64, 2, 4, 131075, 1025}},
    {{"tiny", 7, 5, 3, 3, 7, 3},
     {"medium", 3000, 800, 40, 24, 3000, 24},
     {"grid", 70001, 40, 2, 4, 35003, 2}},
};

/* ------------------------------------------------------------------ sides */

struct side {
    const char *name; /* "A" or "B" */
    const struct tm_backend_ops *ops;
    void *ctx;
    struct tm_bsparse *X; /* the current size's sparse matrix, uploaded */
    int view;             /* matrices as views with ld > rows */
    int broken;           /* B only: shift this case's first output (--break) */
};

/* A matrix on one side: the allocation, and the view the op sees. */
struct dmat {
    struct tm_bmat whole, v;
};

static double *host_new(size_t n)
{
    double *p = malloc((n ? n : 1) * sizeof(double));
    if (!p) {
        fprintf(stderr, "oracle: out of host memory (%zu doubles)\n", n);
        exit(2);
    }
    return p;
}

/* d: rows x cols on s, set from host (column-major, ld rows) or to NaN
 * where host is NULL; in view mode, one sentinel row above and below. */
static tm_status dm_new(struct side *s, int64_t rows, int64_t cols, const double *host,
                        struct dmat *d, char *err)
{
    int64_t pad = s->view ? 2 : 0, ld = rows + pad;
    double *buf;
    tm_status st;
    memset(d, 0, sizeof(*d));
    st = s->ops->mat_alloc(s->ctx, ld, cols, &d->whole, err);
    if (st != TM_OK)
        return st;
    buf = host_new((size_t)(ld * cols));
    for (int64_t j = 0; j < cols; j++)
        for (int64_t i = 0; i < ld; i++) {
            int64_t r = i - pad / 2;
            buf[i + j * ld] = (r < 0 || r >= rows) ? SENTINEL : host ? host[r + j * rows] : NAN;
        }
    st = s->ops->upload(s->ctx, buf, ld, &d->whole, err);
    free(buf);
    d->v = s->view ? tm_bmat_block(&d->whole, 1, rows, 0, cols) : d->whole;
    return st;
}

static void dm_free(struct side *s, struct dmat *d)
{
    s->ops->mat_free(s->ctx, &d->whole);
    memset(d, 0, sizeof(*d));
}

/* out (rows x cols, ld rows) = d's view; *bad_pad set when a sentinel moved. */
static tm_status dm_get(struct side *s, const struct dmat *d, double *out, int *bad_pad, char *err)
{
    int64_t ld = d->whole.rows, rows = d->v.rows, cols = d->v.cols, pad = ld - rows;
    double *buf = host_new((size_t)(ld * cols));
    tm_status st = s->ops->download(s->ctx, &d->whole, buf, ld, err);
    if (st == TM_OK)
        for (int64_t j = 0; j < cols; j++)
            for (int64_t i = 0; i < ld; i++) {
                int64_t r = i - pad / 2;
                if (r < 0 || r >= rows) {
                    if (buf[i + j * ld] != SENTINEL)
                        *bad_pad = 1;
                } else {
                    out[r + j * rows] = buf[i + j * ld];
                }
            }
    free(buf);
    return st;
}

/* ------------------------------------------------------- inputs and results */

#define MAXIO 5

/* Host inputs, generated once per case and handed to every run. */
struct hin {
    int n;
    int64_t rows[MAXIO], cols[MAXIO];
    double *a[MAXIO];
};

/* A run's outputs on the host; sign_free: each column is compared up to sign. */
struct res {
    int n;
    int64_t rows[MAXIO], cols[MAXIO];
    int sign_free[MAXIO];
    double *v[MAXIO];
    int bad_pad;
};

static double *res_add(struct res *r, int64_t rows, int64_t cols, int sign_free)
{
    r->rows[r->n] = rows;
    r->cols[r->n] = cols;
    r->sign_free[r->n] = sign_free;
    r->v[r->n] = host_new((size_t)(rows * cols));
    return r->v[r->n++];
}

static void res_release(struct res *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->v[i]);
    memset(r, 0, sizeof(*r));
}

static void hin_release(struct hin *h)
{
    for (int i = 0; i < h->n; i++)
        free(h->a[i]);
    memset(h, 0, sizeof(*h));
}

/* A run's view of a case: the size, the inputs, the sparse matrix's shape. */
struct run {
    const struct size *sz;
    const struct hin *in;
};

typedef tm_status (*run_fn)(struct side *s, const struct run *u, struct res *r, char *err);

/* ------------------------------------------------------------------- the ops */

/* The inputs' dims: m, n, k, r, c of the size, 1, or p = 2k. */
static int64_t dim(const struct size *sz, char d)
{
    switch (d) {
    case 'm':
        return sz->m;
    case 'n':
        return sz->n;
    case 'k':
        return sz->k;
    case 'r':
        return sz->r;
    case 'c':
        return sz->c;
    case 'p':
        return 2 * sz->k;
    default:
        return 1;
    }
}

/* Uploads input i as a dmat. */
#define IN(i, d) TM_TRY(dm_new(s, u->in->rows[i], u->in->cols[i], u->in->a[i], (d), err))
/* A NaN-filled output of rows x cols. */
#define OUT(rows, cols, d) TM_TRY(dm_new(s, (rows), (cols), NULL, (d), err))
#define GET(d, sf)                                                                                 \
    TM_TRY(dm_get(s, (d), res_add(r, (d)->v.rows, (d)->v.cols, (sf)), &r->bad_pad, err))

static tm_status op_alloc_zero(struct side *s, const struct run *u, struct res *r, char *err)
{
    struct tm_bmat m = {0};
    double *o = res_add(r, u->sz->r, u->sz->c, 0);
    tm_status st = s->ops->mat_alloc(s->ctx, u->sz->r, u->sz->c, &m, err);
    if (st == TM_OK)
        st = s->ops->download(s->ctx, &m, o, m.rows, err);
    s->ops->mat_free(s->ctx, &m);
    return st;
}

static tm_status op_updown(struct side *s, const struct run *u, struct res *r, char *err)
{
    tm_status st = TM_OK;
    struct dmat a = {0};
    IN(0, &a);
    GET(&a, 0);
out:
    dm_free(s, &a);
    return st;
}

static tm_status op_fill(struct side *s, const struct run *u, struct res *r, char *err)
{
    tm_status st = TM_OK;
    struct dmat a = {0};
    OUT(u->sz->r, u->sz->c, &a);
    TM_TRY(s->ops->fill(s->ctx, &a.v, 0.25, err));
    GET(&a, 0);
out:
    dm_free(s, &a);
    return st;
}

static tm_status op_copy(struct side *s, const struct run *u, struct res *r, char *err)
{
    tm_status st = TM_OK;
    struct dmat a = {0}, b = {0};
    IN(0, &a);
    OUT(a.v.rows, a.v.cols, &b);
    TM_TRY(s->ops->copy(s->ctx, &a.v, &b.v, err));
    GET(&b, 0);
out:
    dm_free(s, &b);
    dm_free(s, &a);
    return st;
}

static tm_status op_scale_cols(struct side *s, const struct run *u, struct res *r, char *err)
{
    tm_status st = TM_OK;
    struct dmat a = {0};
    IN(0, &a);
    TM_TRY(s->ops->scale_cols(s->ctx, &a.v, u->in->a[1], err));
    GET(&a, 0);
out:
    dm_free(s, &a);
    return st;
}

static tm_status op_axpy(struct side *s, const struct run *u, struct res *r, char *err)
{
    tm_status st = TM_OK;
    struct dmat x = {0}, y = {0};
    IN(0, &x);
    IN(1, &y);
    TM_TRY(s->ops->axpy(s->ctx, -0.75, &x.v, &y.v, err));
    GET(&y, 0);
out:
    dm_free(s, &y);
    dm_free(s, &x);
    return st;
}

static tm_status op_dot(struct side *s, const struct run *u, struct res *r, char *err)
{
    tm_status st = TM_OK;
    struct dmat a = {0}, b = {0};
    IN(0, &a);
    IN(1, &b);
    TM_TRY(s->ops->dot(s->ctx, &a.v, &b.v, res_add(r, 1, 1, 0), err));
out:
    dm_free(s, &b);
    dm_free(s, &a);
    return st;
}

static tm_status op_col_norms(struct side *s, const struct run *u, struct res *r, char *err)
{
    tm_status st = TM_OK;
    struct dmat a = {0};
    IN(0, &a);
    TM_TRY(s->ops->col_norms(s->ctx, &a.v, res_add(r, 1, a.v.cols, 0), err));
out:
    dm_free(s, &a);
    return st;
}

static tm_status op_col_sums(struct side *s, const struct run *u, struct res *r, char *err)
{
    tm_status st = TM_OK;
    struct dmat a = {0};
    IN(0, &a);
    TM_TRY(s->ops->col_sums(s->ctx, &a.v, res_add(r, 1, a.v.cols, 0), err));
out:
    dm_free(s, &a);
    return st;
}

/* denom as a matrix, l1 and l2 on, a tiny zero_below. */
static tm_status op_mu_update(struct side *s, const struct run *u, struct res *r, char *err)
{
    tm_status st = TM_OK;
    struct dmat m = {0}, num = {0}, den = {0};
    IN(0, &m);
    IN(1, &num);
    IN(2, &den);
    TM_TRY(s->ops->mu_update(s->ctx, &m.v, &num.v, &den.v, NULL, 0.1, 0.2, 1e-12, err));
    GET(&m, 0);
out:
    dm_free(s, &den);
    dm_free(s, &num);
    dm_free(s, &m);
    return st;
}

/* denom_row on the host with a zero in it (the TM_NMF_EPSILON floor). */
static tm_status op_mu_update_row(struct side *s, const struct run *u, struct res *r, char *err)
{
    tm_status st = TM_OK;
    struct dmat m = {0}, num = {0};
    IN(0, &m);
    IN(1, &num);
    TM_TRY(s->ops->mu_update(s->ctx, &m.v, &num.v, NULL, u->in->a[2], 0, 0, 0, err));
    GET(&m, 0);
out:
    dm_free(s, &num);
    dm_free(s, &m);
    return st;
}

static tm_status op_pgd_update(struct side *s, const struct run *u, struct res *r, char *err)
{
    tm_status st = TM_OK;
    struct dmat m = {0}, mg = {0}, xht = {0};
    IN(0, &m);
    IN(1, &mg);
    IN(2, &xht);
    TM_TRY(s->ops->pgd_update(s->ctx, &m.v, &mg.v, &xht.v, 0.1, 0.5, 0.3, err));
    GET(&m, 0);
out:
    dm_free(s, &xht);
    dm_free(s, &mg);
    dm_free(s, &m);
    return st;
}

/* The reversed order of k columns: a perm that is not the identity. */
static int64_t *reversed(int64_t k)
{
    int64_t *perm = malloc((size_t)(k > 0 ? k : 1) * sizeof(*perm));
    if (!perm) {
        fprintf(stderr, "oracle: out of host memory\n");
        exit(2);
    }
    for (int64_t t = 0; t < k; t++)
        perm[t] = k - 1 - t;
    return perm;
}

static tm_status op_hals_sweep(struct side *s, const struct run *u, struct res *r, char *err)
{
    tm_status st = TM_OK;
    struct dmat m = {0}, g = {0}, xht = {0};
    int64_t *perm = reversed(u->in->cols[0]);
    IN(0, &m);
    IN(1, &g);
    IN(2, &xht);
    TM_TRY(
        s->ops->hals_sweep(s->ctx, &m.v, &g.v, &xht.v, 0.01, 0.1, perm, res_add(r, 1, 1, 0), err));
    GET(&m, 0);
out:
    dm_free(s, &xht);
    dm_free(s, &g);
    dm_free(s, &m);
    free(perm);
    return st;
}

/* C = 1.5 op(A) op(B) + beta C; beta 0 over a NaN-filled C. */
static tm_status op_gemm(struct side *s, const struct run *u, struct res *r, int ta, int tb,
                         double beta, char *err)
{
    tm_status st = TM_OK;
    struct dmat a = {0}, b = {0}, c = {0};
    IN(0, &a);
    IN(1, &b);
    if (beta != 0)
        IN(2, &c);
    else
        OUT(ta ? a.v.cols : a.v.rows, tb ? b.v.rows : b.v.cols, &c);
    TM_TRY(s->ops->gemm(s->ctx, ta, tb, 1.5, &a.v, &b.v, beta, &c.v, err));
    GET(&c, 0);
out:
    dm_free(s, &c);
    dm_free(s, &b);
    dm_free(s, &a);
    return st;
}

static tm_status op_gemm_nn(struct side *s, const struct run *u, struct res *r, char *err)
{
    return op_gemm(s, u, r, TM_NOTRANS, TM_NOTRANS, 0, err);
}
static tm_status op_gemm_tn(struct side *s, const struct run *u, struct res *r, char *err)
{
    return op_gemm(s, u, r, TM_TRANS, TM_NOTRANS, 0.5, err);
}
static tm_status op_gemm_nt(struct side *s, const struct run *u, struct res *r, char *err)
{
    return op_gemm(s, u, r, TM_NOTRANS, TM_TRANS, 0, err);
}
static tm_status op_gemm_tt(struct side *s, const struct run *u, struct res *r, char *err)
{
    return op_gemm(s, u, r, TM_TRANS, TM_TRANS, 0, err);
}

static tm_status op_gram(struct side *s, const struct run *u, struct res *r, char *err)
{
    tm_status st = TM_OK;
    struct dmat a = {0}, c = {0};
    IN(0, &a);
    OUT(a.v.cols, a.v.cols, &c);
    TM_TRY(s->ops->gram(s->ctx, &a.v, &c.v, err));
    GET(&c, 0);
out:
    dm_free(s, &c);
    dm_free(s, &a);
    return st;
}

static tm_status op_orth_qr(struct side *s, const struct run *u, struct res *r, char *err)
{
    tm_status st = TM_OK;
    struct dmat a = {0};
    IN(0, &a);
    TM_TRY(s->ops->orth_qr(s->ctx, &a.v, err));
    GET(&a, 1);
out:
    dm_free(s, &a);
    return st;
}

static tm_status op_orth_lu(struct side *s, const struct run *u, struct res *r, char *err)
{
    tm_status st = TM_OK;
    struct dmat a = {0};
    IN(0, &a);
    TM_TRY(s->ops->orth_lu(s->ctx, &a.v, err));
    GET(&a, 0);
out:
    dm_free(s, &a);
    return st;
}

/* U sign-free by columns; Vt comes back transposed, so that its rows are
 * compared sign-free as columns. */
static tm_status op_svd_small(struct side *s, const struct run *u, struct res *r, char *err)
{
    tm_status st = TM_OK;
    struct dmat a = {0}, uu = {0}, vt = {0};
    int64_t rows = u->in->rows[0], cols = u->in->cols[0], p = rows < cols ? rows : cols;
    double *tmp = host_new((size_t)(p * cols)), *s_out = res_add(r, 1, p, 0), *vtt;
    IN(0, &a);
    OUT(rows, p, &uu);
    OUT(p, cols, &vt);
    TM_TRY(s->ops->svd_small(s->ctx, &a.v, &uu.v, s_out, &vt.v, err));
    GET(&uu, 1);
    TM_TRY(dm_get(s, &vt, tmp, &r->bad_pad, err));
    vtt = res_add(r, cols, p, 1);
    for (int64_t i = 0; i < p; i++)
        for (int64_t j = 0; j < cols; j++)
            vtt[j + i * cols] = tmp[i + j * p];
out:
    dm_free(s, &vt);
    dm_free(s, &uu);
    dm_free(s, &a);
    free(tmp);
    return st;
}

/* trans 0: C (m x k) = X B, beta 0 over NaN; trans 1: C (n x k) = 2 X^T B + 0.5 C. */
static tm_status op_spmm(struct side *s, const struct run *u, struct res *r, int trans, char *err)
{
    tm_status st = TM_OK;
    struct dmat b = {0}, c = {0};
    IN(0, &b);
    if (trans)
        IN(1, &c);
    else
        OUT(u->sz->m, b.v.cols, &c);
    TM_TRY(s->ops->spmm(s->ctx, s->X, trans, trans ? 2.0 : 1.0, &b.v, trans ? 0.5 : 0, &c.v, err));
    GET(&c, 0);
out:
    dm_free(s, &c);
    dm_free(s, &b);
    return st;
}
static tm_status op_spmm_n(struct side *s, const struct run *u, struct res *r, char *err)
{
    return op_spmm(s, u, r, TM_NOTRANS, err);
}
static tm_status op_spmm_t(struct side *s, const struct run *u, struct res *r, char *err)
{
    return op_spmm(s, u, r, TM_TRANS, err);
}

static tm_status op_gram_spmm(struct side *s, const struct run *u, struct res *r, int side,
                              char *err)
{
    tm_status st = TM_OK;
    struct dmat v = {0}, av = {0};
    IN(0, &v);
    OUT(v.v.rows, v.v.cols, &av);
    TM_TRY(s->ops->gram_spmm(s->ctx, s->X, side, &v.v, &av.v, err));
    GET(&av, 0);
out:
    dm_free(s, &av);
    dm_free(s, &v);
    return st;
}
static tm_status op_gram_spmm_n(struct side *s, const struct run *u, struct res *r, char *err)
{
    return op_gram_spmm(s, u, r, TM_NOTRANS, err);
}
static tm_status op_gram_spmm_t(struct side *s, const struct run *u, struct res *r, char *err)
{
    return op_gram_spmm(s, u, r, TM_TRANS, err);
}

static tm_status op_kl_spmm(struct side *s, const struct run *u, struct res *r, int trans,
                            char *err)
{
    tm_status st = TM_OK;
    struct dmat p = {0}, q = {0}, c = {0};
    IN(0, &p);
    IN(1, &q);
    OUT(p.v.rows, p.v.cols, &c);
    TM_TRY(s->ops->kl_spmm(s->ctx, s->X, trans, &p.v, &q.v, TM_NMF_EPSILON, &c.v, err));
    GET(&c, 0);
out:
    dm_free(s, &c);
    dm_free(s, &q);
    dm_free(s, &p);
    return st;
}
static tm_status op_kl_spmm_n(struct side *s, const struct run *u, struct res *r, char *err)
{
    return op_kl_spmm(s, u, r, TM_NOTRANS, err);
}
static tm_status op_kl_spmm_t(struct side *s, const struct run *u, struct res *r, char *err)
{
    return op_kl_spmm(s, u, r, TM_TRANS, err);
}

static tm_status op_kl_sum(struct side *s, const struct run *u, struct res *r, char *err)
{
    tm_status st = TM_OK;
    struct dmat w = {0}, ht = {0};
    IN(0, &w);
    IN(1, &ht);
    TM_TRY(s->ops->kl_sum(s->ctx, s->X, &w.v, &ht.v, TM_NMF_EPSILON, res_add(r, 1, 1, 0), err));
out:
    dm_free(s, &ht);
    dm_free(s, &w);
    return st;
}

/* The fused halves take whole matrices (ld k), so they run contiguous only:
 * side TM_TRANS, the H half: Mt = Ht^T (k x n), Ft = W^T (k x m). */
static tm_status op_fused(struct side *s, const struct run *u, struct res *r, int mu, char *err)
{
    tm_status st = TM_OK;
    struct dmat mt = {0}, ft = {0}, g = {0}, gram = {0};
    int64_t k = u->in->rows[0], *perm = reversed(k);
    double *viol = res_add(r, 1, 1, 0), *cross = res_add(r, 1, 1, 0);
    *viol = 0;
    IN(0, &mt);
    IN(1, &ft);
    IN(2, &g);
    OUT(k, k, &gram);
    if (mu)
        TM_TRY(s->ops->mu_update_fused(s->ctx, s->X, TM_TRANS, &mt.v, &ft.v, &g.v, 0.01, 0.1, cross,
                                       &gram.v, err));
    else
        TM_TRY(s->ops->hals_sweep_fused(s->ctx, s->X, TM_TRANS, &mt.v, &ft.v, &g.v, 0.01, 0.1, perm,
                                        viol, cross, &gram.v, err));
    GET(&mt, 0);
    GET(&gram, 0);
out:
    dm_free(s, &gram);
    dm_free(s, &g);
    dm_free(s, &ft);
    dm_free(s, &mt);
    free(perm);
    return st;
}
static tm_status op_hals_fused(struct side *s, const struct run *u, struct res *r, char *err)
{
    return op_fused(s, u, r, 0, err);
}
static tm_status op_mu_fused(struct side *s, const struct run *u, struct res *r, char *err)
{
    return op_fused(s, u, r, 1, err);
}

/* Which sizes an op runs at, and how it is checked. */
/* AT_QGRID: the grid size under --quick only, for the ops whose CUDA
 * kernels run a fixed grid (the reductions, HALS) or none of their own: the
 * medium size already passes their grid, and the full grid size is costly. */
enum { AT_TINY = 1, AT_MEDIUM = 2, AT_GRID = 4, AT_QGRID = 8, AT_ALL = 7, AT_TM = 3 };
enum { F_NAN = 1, F_NOVIEW = 2, F_SPARSE = 4 };

/* Input i: dims (rows, cols) as dim() letters and a distribution: 'u'
 * uniform [0, 1), 'g' standard normal, 'p' uniform [0.5, 1.5), 'z' as 'p'
 * with entry 0 set to 0, 'G' a k x k Gram matrix of uniform columns. */
struct opdesc {
    const char *name;
    run_fn run;
    size_t optional; /* offsetof the op in tm_backend_ops when it may be NULL, else 0 */
    int cls, at, flags;
    const char *in[MAXIO]; /* "rcd": rows letter, cols letter, distribution */
};

#define OPT(f) offsetof(struct tm_backend_ops, f)
static const struct opdesc OPS[] = {
    {"mat_alloc", op_alloc_zero, 0, CLS_EW, AT_ALL, F_NOVIEW, {NULL}},
    {"upload", op_updown, 0, CLS_EW, AT_ALL, 0, {"rcg"}},
    {"fill", op_fill, 0, CLS_EW, AT_ALL, 0, {NULL}},
    {"copy", op_copy, 0, CLS_EW, AT_ALL, F_NAN, {"rcg"}},
    {"scale_cols", op_scale_cols, 0, CLS_EW, AT_ALL, F_NAN, {"rcg", "1cg"}},
    {"axpy", op_axpy, 0, CLS_EW, AT_ALL, F_NAN, {"rcg", "rcg"}},
    {"dot", op_dot, 0, CLS_PROD, AT_TM | AT_QGRID, F_NAN, {"rcu", "rcu"}},
    {"col_norms", op_col_norms, 0, CLS_PROD, AT_TM | AT_QGRID, F_NAN, {"rcg"}},
    {"col_sums", op_col_sums, 0, CLS_PROD, AT_TM | AT_QGRID, F_NAN, {"rcu"}},
    {"mu_update", op_mu_update, 0, CLS_EW, AT_ALL, F_NAN, {"rcu", "rcu", "rcp"}},
    {"mu_update_row", op_mu_update_row, 0, CLS_EW, AT_ALL, F_NAN, {"rcu", "rcu", "1cz"}},
    {"pgd_update", op_pgd_update, 0, CLS_EW, AT_ALL, 0, {"rcu", "rcu", "rcu"}},
    {"hals_sweep", op_hals_sweep, 0, CLS_PROD, AT_TM | AT_QGRID, 0, {"rku", "kkG", "rku"}},
    {"gemm_nn", op_gemm_nn, 0, CLS_PROD, AT_TM, F_NAN, {"mku", "kku"}},
    {"gemm_tn", op_gemm_tn, 0, CLS_PROD, AT_TM, F_NAN, {"mku", "mku", "kku"}},
    {"gemm_nt", op_gemm_nt, 0, CLS_PROD, AT_TM, 0, {"mku", "kku"}},
    {"gemm_tt", op_gemm_tt, 0, CLS_PROD, AT_TM, 0, {"kmu", "kku"}},
    {"gram", op_gram, 0, CLS_PROD, AT_TM, 0, {"mku"}},
    {"orth_qr", op_orth_qr, 0, CLS_FACT, AT_TM, 0, {"mkg"}},
    {"orth_lu", op_orth_lu, 0, CLS_FACT, AT_TM, 0, {"mkg"}},
    {"svd_small", op_svd_small, 0, CLS_FACT, AT_TM, 0, {"pkg"}},
    {"spmm_n", op_spmm_n, 0, CLS_PROD, AT_ALL, F_NAN | F_SPARSE, {"nku"}},
    {"spmm_t", op_spmm_t, 0, CLS_PROD, AT_TM | AT_QGRID, F_SPARSE, {"mku", "nku"}},
    {"gram_spmm_n", op_gram_spmm_n, OPT(gram_spmm), CLS_PROD, AT_TM, F_SPARSE, {"mku"}},
    {"gram_spmm_t", op_gram_spmm_t, OPT(gram_spmm), CLS_PROD, AT_TM, F_SPARSE, {"nku"}},
    {"kl_spmm_n", op_kl_spmm_n, 0, CLS_PROD, AT_ALL, F_NAN | F_SPARSE, {"mkp", "nkp"}},
    {"kl_spmm_t", op_kl_spmm_t, 0, CLS_PROD, AT_TM | AT_QGRID, F_SPARSE, {"nkp", "mkp"}},
    {"kl_sum", op_kl_sum, 0, CLS_PROD, AT_TM | AT_QGRID, F_NAN | F_SPARSE, {"mkp", "nkp"}},
    {"hals_sweep_fused",
     op_hals_fused,
     OPT(hals_sweep_fused),
     CLS_PROD,
     AT_TM,
     F_NOVIEW | F_SPARSE,
     {"knu", "kmu", "kkG"}},
    {"mu_update_fused",
     op_mu_fused,
     OPT(mu_update_fused),
     CLS_PROD,
     AT_TM,
     F_NOVIEW | F_SPARSE,
     {"knu", "kmu", "kkG"}},
};
#define N_OPS (sizeof(OPS) / sizeof(OPS[0]))

static void hin_make(struct hin *h, const struct opdesc *op, const struct size *sz, int nan,
                     uint64_t seed)
{
    struct tm_rng g;
    tm_rng_init(&g, seed);
    memset(h, 0, sizeof(*h));
    for (int i = 0; i < MAXIO && op->in[i]; i++) {
        const char *d = op->in[i];
        int64_t rows = dim(sz, d[0]), cols = dim(sz, d[1]), n = rows * cols;
        double *a = host_new((size_t)n);
        if (d[2] == 'G') {
            /* B^T B of a 3k x k uniform B, plus k on the diagonal: SPD, well
             * conditioned, like HHt + l2 I */
            int64_t k = rows, mm = 3 * k;
            double *b = host_new((size_t)(mm * k));
            for (int64_t e = 0; e < mm * k; e++)
                b[e] = tm_rng_uniform(&g);
            for (int64_t x = 0; x < k; x++)
                for (int64_t y = 0; y < k; y++) {
                    double v = x == y ? (double)k : 0;
                    for (int64_t t = 0; t < mm; t++)
                        v += b[t + x * mm] * b[t + y * mm];
                    a[x + y * k] = v;
                }
            free(b);
        } else {
            for (int64_t e = 0; e < n; e++)
                a[e] = d[2] == 'g'   ? tm_rng_normal(&g)
                       : d[2] == 'u' ? tm_rng_uniform(&g)
                                     : 0.5 + tm_rng_uniform(&g);
            if (d[2] == 'z')
                a[0] = 0;
        }
        h->rows[i] = rows;
        h->cols[i] = cols;
        h->a[i] = a;
        h->n = i + 1;
    }
    if (nan && h->n > 0)
        h->a[0][h->rows[0] / 2 + (h->cols[0] / 2) * h->rows[0]] = NAN;
}

/* The sparse matrix of a size: m x n, about nnz_row non-zeros a row (sorted
 * columns, every 97th row empty), values in [1, 5). x: tm_csr_release. */
static void make_sparse(struct tm_csr *x, const struct size *sz, uint64_t seed)
{
    struct tm_rng g;
    int64_t nnz = 0, cap = sz->m * (sz->nnz_row + 1);
    tm_rng_init(&g, seed);
    if (tm_csr_init(x, sz->m, sz->n, cap, NULL) != TM_OK) {
        fprintf(stderr, "oracle: out of memory for a %lld x %lld sparse matrix\n", (long long)sz->m,
                (long long)sz->n);
        exit(2);
    }
    for (int64_t i = 0; i < sz->m; i++) {
        int64_t want = i % 97 == 5 ? 0 : sz->nnz_row - (i % 3) + 1;
        if (want > sz->n)
            want = sz->n;
        /* Knuth's selection sampling: want of n columns, in order */
        for (int64_t j = 0, left = sz->n; j < sz->n && want > 0; j++, left--)
            if ((double)left * tm_rng_uniform(&g) < (double)want) {
                x->indices[nnz] = (int32_t)j;
                x->data[nnz++] = 1.0 + floor(4.0 * tm_rng_uniform(&g));
                want--;
            }
        x->indptr[i + 1] = nnz;
    }
}

/* -------------------------------------------------------------- comparison */

static int n_pass, n_fail, n_skip;
static const char *label_prefix = ""; /* "oom:" for the reuse after out of memory */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void report(const char *verdict, const char *name, const char *dt, const char *layout,
                   const char *size, double t0, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static void report(const char *verdict, const char *name, const char *dt, const char *layout,
                   const char *size, double t0, const char *fmt, ...)
{
    va_list ap;
    printf("%-4s %-17s %-7s %-10s %-6s %7.3fs  ", verdict, name, dt, layout, size, now_s() - t0);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    if (verdict[0] == 'P')
        n_pass++;
    else if (verdict[0] == 'F')
        n_fail++;
    else
        n_skip++;
}

/* The largest relative Frobenius error of a's outputs against b's, NaN
 * positions excluded; *nan_mismatch counts entries NaN on one side only,
 * *b_nans the NaNs of b. */
static double compare(const struct res *a, const struct res *b, int64_t *nan_mismatch,
                      int64_t *b_nans)
{
    double worst = 0;
    *nan_mismatch = 0;
    *b_nans = 0;
    for (int o = 0; o < b->n; o++) {
        int64_t rows = b->rows[o], cols = b->cols[o];
        double num = 0, den = 0;
        for (int64_t j = 0; j < cols; j++) {
            const double *x = a->v[o] + j * rows, *y = b->v[o] + j * rows;
            double sign = 1;
            if (b->sign_free[o]) {
                double d = 0;
                for (int64_t i = 0; i < rows; i++)
                    if (!isnan(x[i]) && !isnan(y[i]))
                        d += x[i] * y[i];
                sign = d < 0 ? -1 : 1;
            }
            for (int64_t i = 0; i < rows; i++) {
                if (isnan(y[i]))
                    ++*b_nans;
                if (isnan(x[i]) != isnan(y[i])) {
                    ++*nan_mismatch;
                    continue;
                }
                if (isnan(y[i]))
                    continue;
                num += (sign * x[i] - y[i]) * (sign * x[i] - y[i]);
                den += y[i] * y[i];
            }
        }
        {
            double e = den > 0 ? sqrt(num / den) : sqrt(num);
            if (!(e <= worst))
                worst = e; /* NaN or Inf errors win */
        }
    }
    return worst;
}

static int same_bits(const struct res *a, const struct res *b)
{
    for (int o = 0; o < b->n; o++)
        if (memcmp(a->v[o], b->v[o], (size_t)(b->rows[o] * b->cols[o]) * sizeof(double)) != 0)
            return 0;
    return 1;
}

static const char *dt_name(int f64)
{
    return f64 ? "float64" : "float32";
}

/* One case: op at size sz on A (twice) and B, compared. */
static void run_case(const struct opdesc *op, const struct size *sz, int f64, struct side *A,
                     struct side *B, int nan, const char *broken)
{
    char err[TM_ERR_SIZE] = "", label[40];
    const char *layout = A->view ? "view" : "contiguous";
    struct hin h;
    struct res ra1 = {0}, ra2 = {0}, rb = {0};
    struct run u = {sz, &h};
    double t0 = now_s(), tol = TOL[f64][op->cls], e;
    int64_t mism, bnans;
    tm_status st;

    snprintf(label, sizeof(label), "%s%s%s", label_prefix, op->name, nan ? "+nan" : "");
    if (op->optional && (!*(void *const *)((const char *)A->ops + op->optional) ||
                         !*(void *const *)((const char *)B->ops + op->optional))) {
        report("SKIP", label, dt_name(f64), layout, sz->name, t0,
               "optional op absent (A %s, B %s): core runs the unfused ops there", A->ops->name,
               B->ops->name);
        return;
    }
    hin_make(&h, op, sz, nan, 1000 + (uint64_t)(op - OPS));
    B->broken = broken && strcmp(broken, op->name) == 0;
    st = op->run(A, &u, &ra1, err);
    if (st == TM_OK)
        st = op->run(A, &u, &ra2, err);
    if (st != TM_OK) {
        report("FAIL", label, dt_name(f64), layout, sz->name, t0, "backend A (%s): %s: %s",
               A->ops->name, tm_strerror(st), err);
        goto out;
    }
    st = op->run(B, &u, &rb, err);
    if (st != TM_OK) {
        report("FAIL", label, dt_name(f64), layout, sz->name, t0, "backend B (%s): %s: %s",
               B->ops->name, tm_strerror(st), err);
        goto out;
    }
    if (B->broken && rb.n > 0) /* --break: one output entry off by 1% + 1 */
        rb.v[0][0] = rb.v[0][0] * 1.01 + 1;
    e = compare(&ra1, &rb, &mism, &bnans);
    if (ra1.bad_pad || rb.bad_pad)
        report("FAIL", label, dt_name(f64), layout, sz->name, t0,
               "the rows around a view changed (A %d, B %d)", ra1.bad_pad, rb.bad_pad);
    else if (!same_bits(&ra1, &ra2))
        report("FAIL", label, dt_name(f64), layout, sz->name, t0,
               "not deterministic: two runs on A differ (err vs B %.2e)", e);
    else if (mism)
        report("FAIL", label, dt_name(f64), layout, sz->name, t0,
               "%lld entries NaN on one backend only (B has %lld NaNs)", (long long)mism,
               (long long)bnans);
    else if (nan && bnans == 0)
        report("FAIL", label, dt_name(f64), layout, sz->name, t0,
               "a NaN input gave no NaN output (the contract propagates NaN)");
    else if (!nan && bnans)
        report("FAIL", label, dt_name(f64), layout, sz->name, t0,
               "%lld NaNs from finite inputs (an output left unwritten?)", (long long)bnans);
    else if (!(e <= tol))
        report("FAIL", label, dt_name(f64), layout, sz->name, t0, "err %.2e > tol %.0e", e, tol);
    else
        report("PASS", label, dt_name(f64), layout, sz->name, t0, "err %.2e (tol %.0e)%s", e, tol,
               nan ? ", NaN where B has it" : "");
out:
    B->broken = 0;
    res_release(&ra1);
    res_release(&ra2);
    res_release(&rb);
    hin_release(&h);
}

/* ------------------------------------------------- out of memory, Lanczos */

/* The CPU backend's memory limit: tm_malloc fails above it (0: none). The
 * oracle is single-threaded where it sets it. */
static size_t alloc_limit;
static void *lim_malloc(size_t n)
{
    return alloc_limit && n > alloc_limit ? NULL : malloc(n);
}
static void *lim_realloc(void *p, size_t n)
{
    return alloc_limit && n > alloc_limit ? NULL : realloc(p, n);
}
static const struct tm_alloc_methods LIM_METHODS = {lim_malloc, lim_realloc, free};

/*
 * A matrix that cannot fit must fail with TM_ENOMEM (or TM_EDEVICE) and
 * leave the context usable: the reductions, the scratch of svd_small and a
 * product then run on it and still agree with B. On the GPU the request is
 * 2^42 elements; on the CPU a memory limit (through tm_alloc's methods)
 * makes a 64 MiB request fail.
 */
static void oom_case(const struct size *sz, int f64, struct side *A, struct side *B)
{
    char err[TM_ERR_SIZE] = "";
    double t0 = now_s();
    struct tm_bmat huge;
    int cpu = strcmp(A->ops->name, "cpu") == 0;
    tm_status st;
    if (cpu)
        alloc_limit = 1u << 20;
    st = A->ops->mat_alloc(A->ctx, cpu ? 1 << 13 : (int64_t)1 << 22, cpu ? 1 << 10 : 1 << 20, &huge,
                           err);
    alloc_limit = 0;
    if (st == TM_OK) {
        A->ops->mat_free(A->ctx, &huge);
        report("FAIL", "oom_then_reuse", dt_name(f64), "contiguous", sz->name, t0,
               "an allocation past the memory limit succeeded");
        return;
    }
    if (st != TM_ENOMEM && st != TM_EDEVICE) {
        report("FAIL", "oom_then_reuse", dt_name(f64), "contiguous", sz->name, t0,
               "out of memory gave %s: %s", tm_strerror(st), err);
        return;
    }
    if (huge.data) {
        report("FAIL", "oom_then_reuse", dt_name(f64), "contiguous", sz->name, t0,
               "a failed mat_alloc left data set");
        return;
    }
    report("PASS", "oom_then_reuse", dt_name(f64), "contiguous", sz->name, t0,
           "mat_alloc: %s (%s); the context is reused below", tm_strerror(st), err);
    A->view = B->view = 0;
    label_prefix = "oom:";
    for (size_t i = 0; i < N_OPS; i++)
        if (!strcmp(OPS[i].name, "dot") || !strcmp(OPS[i].name, "col_norms") ||
            !strcmp(OPS[i].name, "svd_small") || !strcmp(OPS[i].name, "spmm_n"))
            run_case(&OPS[i], sz, f64, A, B, 0, NULL);
    label_prefix = "";
    st = A->ops->sync(A->ctx, err);
    if (st != TM_OK)
        report("FAIL", "oom_then_reuse", dt_name(f64), "contiguous", sz->name, t0,
               "sync after reuse: %s: %s", tm_strerror(st), err);
}

/* Lanczos in float32 on A against float64 on B (a planted spectrum). */
static void lanczos_case(const struct tm_backend_ops *a_ops, int cpu_threads)
{
    char err[TM_ERR_SIZE] = "";
    double t0 = now_s(), worst = 0;
    struct tm_csr x;
    struct tm_model_params p;
    struct tm_svd_result r32 = {0}, r64 = {0};
    struct tm_backend_config c32 = {TM_DTYPE_FLOAT32, 0, cpu_threads},
                             c64 = {TM_DTYPE_FLOAT64, 0, cpu_threads};
    const struct tm_backend_ops *b_ops = tm_backend_cpu();
    void *ca = NULL, *cb = NULL;
    struct tm_bsparse *xa = NULL, *xb = NULL;
    tm_status st;
    int64_t k = 10;

    tm_test_planted(&x, 1200, 700, 0.05, 0, 7);
    tm_model_params_init(&p);
    p.seed = 3;
    st = a_ops->create(&c32, &ca, err);
    if (st == TM_OK)
        st = a_ops->sparse_upload(ca, &x, &xa, err);
    if (st == TM_OK)
        st = tm_svd_lanczos(a_ops, ca, xa, x.n_rows, x.n_cols, k, &p, NULL, &r32, err);
    if (st != TM_OK) {
        report("FAIL", "lanczos", "float32", "contiguous", "planted", t0, "backend A (%s): %s: %s",
               a_ops->name, tm_strerror(st), err);
        goto out;
    }
    st = b_ops->create(&c64, &cb, err);
    if (st == TM_OK)
        st = b_ops->sparse_upload(cb, &x, &xb, err);
    if (st == TM_OK)
        st = tm_svd_lanczos(b_ops, cb, xb, x.n_rows, x.n_cols, k, &p, NULL, &r64, err);
    if (st != TM_OK) {
        report("FAIL", "lanczos", "float32", "contiguous", "planted", t0, "backend B (cpu): %s: %s",
               tm_strerror(st), err);
        goto out;
    }
    for (int64_t i = 0; i < k; i++) {
        double e = fabs(r32.s[i] - r64.s[i]) / r64.s[i];
        if (!(e <= worst))
            worst = e;
    }
    if (!(worst <= LANCZOS_TOL))
        report("FAIL", "lanczos", "float32", "contiguous", "planted", t0,
               "singular values off by %.2e > %.0e (tol used %.1e, %lld restarts)", worst,
               LANCZOS_TOL, r32.tol, (long long)r32.n_iter);
    else
        report("PASS", "lanczos", "float32", "contiguous", "planted", t0,
               "singular values within %.2e of float64's (tol %.0e; residual tol %.1e, %lld "
               "restarts)",
               worst, LANCZOS_TOL, r32.tol, (long long)r32.n_iter);
out:
    tm_svd_result_release(&r32);
    tm_svd_result_release(&r64);
    if (xa)
        a_ops->sparse_free(ca, xa);
    if (xb)
        b_ops->sparse_free(cb, xb);
    a_ops->destroy(ca);
    b_ops->destroy(cb);
    tm_csr_release(&x);
}

/* ------------------------------------------------------------------- main */

static int usage(void)
{
    fprintf(stderr, "usage: oracle [--sizes tiny,medium,grid] [--quick] [--op SUBSTR] [--cpu]\n"
                    "              [--break OP] [--threads N] [--no-oom]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *sizes = "tiny,medium,grid", *only = NULL, *broken = NULL;
    int quick = 0, force_cpu = 0, threads = 1, oom = 1;
    char reason[TM_ERR_SIZE] = "";
    const struct tm_backend_ops *a_ops, *b_ops = tm_backend_cpu();

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sizes") && i + 1 < argc)
            sizes = argv[++i];
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--cpu"))
            force_cpu = 1;
        else if (!strcmp(argv[i], "--no-oom"))
            oom = 0;
        else if (!strcmp(argv[i], "--op") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--break") && i + 1 < argc)
            broken = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else
            return usage();
    }
    tm_alloc_set_methods(&LIM_METHODS);
    a_ops = force_cpu ? NULL : tm_gpu_load(reason);
    if (!a_ops) {
        a_ops = b_ops;
        printf("oracle: backend A is the CPU backend (self-test): %s\n",
               force_cpu ? "--cpu" : reason);
    } else {
        printf("oracle: backend A is %s (%s), backend B the CPU backend\n", a_ops->name,
               tm_gpu_plugin_path());
    }
    if (broken)
        printf("oracle: --break %s: backend B's answer of %s is shifted\n", broken, broken);

    for (int f64 = 0; f64 < 2; f64++) {
        struct tm_backend_config cfg = {f64 ? TM_DTYPE_FLOAT64 : TM_DTYPE_FLOAT32, 0, threads};
        char err[TM_ERR_SIZE] = "";
        struct side A = {"A", a_ops, NULL, NULL, 0, 0}, B = {"B", b_ops, NULL, NULL, 0, 0};
        tm_status st = a_ops->create(&cfg, &A.ctx, err);
        if (st == TM_OK)
            st = b_ops->create(&cfg, &B.ctx, err);
        if (st != TM_OK) {
            report("FAIL", "create", dt_name(f64), "-", "-", now_s(), "%s: %s", tm_strerror(st),
                   err);
            a_ops->destroy(A.ctx);
            continue;
        }
        for (int z = 0; z < SZ_COUNT; z++) {
            const struct size *sz = &SIZES[quick][z];
            struct tm_csr x;
            double t0 = now_s();
            if (!strstr(sizes, sz->name))
                continue;
            make_sparse(&x, sz, 42 + (uint64_t)z);
            st = a_ops->sparse_upload(A.ctx, &x, &A.X, err);
            if (st == TM_OK)
                st = b_ops->sparse_upload(B.ctx, &x, &B.X, err);
            if (st != TM_OK) {
                report("FAIL", "sparse_upload", dt_name(f64), "-", sz->name, t0, "%s: %s",
                       tm_strerror(st), err);
            } else {
                /* The full grid size (1 GiB a float64 matrix, generated,
                 * copied and compared on the host three times a case) runs
                 * once per op: as a view, in float32, without the NaN
                 * variants, which the other sizes cover; the kernels' grid
                 * loops are the same code for both dtypes and layouts. */
                int lean = z == SZ_GRID && !quick;
                if (lean && f64) {
                    report("SKIP", "grid (all ops)", dt_name(f64), "both", sz->name, t0,
                           "the full grid size runs in float32 views only, to fit the device "
                           "run's time; --quick runs every combination smaller");
                    goto next_size;
                }
                for (int view = lean; view < 2; view++)
                    for (size_t i = 0; i < N_OPS; i++) {
                        const struct opdesc *op = &OPS[i];
                        int at =
                            (op->at & (1 << z)) || (z == SZ_GRID && quick && (op->at & AT_QGRID));
                        if (!at || (view && (op->flags & F_NOVIEW)) ||
                            (only && !strstr(op->name, only)))
                            continue;
                        A.view = B.view = view;
                        run_case(op, sz, f64, &A, &B, 0, broken);
                        if ((op->flags & F_NAN) && !lean)
                            run_case(op, sz, f64, &A, &B, 1, broken);
                    }
                if (z == SZ_TINY && oom && (!only || strstr("oom_then_reuse", only)))
                    oom_case(sz, f64, &A, &B);
            }
        next_size:
            if (A.X)
                a_ops->sparse_free(A.ctx, A.X);
            if (B.X)
                b_ops->sparse_free(B.ctx, B.X);
            A.X = B.X = NULL;
            tm_csr_release(&x);
        }
        a_ops->destroy(A.ctx);
        b_ops->destroy(B.ctx);
    }
    if (!only || strstr("lanczos", only))
        lanczos_case(a_ops, threads);
    printf("oracle: %d passed, %d failed, %d skipped (A %s, B cpu)\n", n_pass, n_fail, n_skip,
           a_ops->name);
    return n_fail ? 1 : 0;
}
