/*
 * cpu_nmf_t.h - the NMF kernels, written once for both element types
 * (cpu_real.h): the HALS sweep (cd), the multiplicative (mu) and
 * projected-gradient (pgd) updates, the fused halves that gather, update
 * (one HALS sweep, hals's several and its extrapolation, or mu's update) and
 * reduce a tile of rows in one pass, and the Kullback-Leibler products. The
 * updates run in the element type; the violation, <P, M>, M^T M and the KL
 * row dots and sum are accumulated in double, as the CUDA backend does.
 * Included by cpu_nmf.c once per type; no include guard.
 */

struct R(hals_job) {
    const struct tm_bmat *m, *g, *xht;
    real_t l1, l2;
    const int64_t *perm;
    const int64_t *bounds;
    double partial[MAX_CHUNKS];
};

/*
 * Rows are independent, so HALS_ROWS of them are swept together, stored
 * column-major in a small tile: every step is a 4-wide vector operation over
 * a tile's rows (8 independent FMA chains in the gradient, which measured
 * faster than 4: bench/NOTES.md, "HALS"), and M and XHt are read in runs.
 * Per element the arithmetic is scikit-learn's, in its order; only the violation's summation order
 * is ours (per lane over the sweep, then lanes in order: fixed, so deterministic).
 */
#define HALS_ROWS 32 /* eight vectors of 4, unrolled by hand below */
#define HALS_VECS 8

/* The projected gradient and the update of 4 rows' M[i, t] (mt) from their
 * gradient, as masks: pg = M == 0 ? min(grad, 0) : grad (a NaN gradient gives
 * 0 where M == 0 and NaN elsewhere, as the scalar form); then, if hess != 0,
 * M = max(M - grad / hess, 0), where NaN and -0 become +0. */
HOT_BODY void R(hals_update4)(real_t *mt, const vreal *gradp, real_t hess, v4d *viol)
{
    const vreal grad = *gradp; /* by pointer: a vector argument would change the ABI */
    const vmask abs_mask = {VMASK_ABS, VMASK_ABS, VMASK_ABS, VMASK_ABS};
    const vreal zero = {0.0, 0.0, 0.0, 0.0};
    vreal mv;
    LOAD4(mv, mt);
    vmask keep = ~(vmask)(mv == zero) | (vmask)(grad < zero);
    *viol += TO_V4D((vreal)((vmask)grad & keep & abs_mask)); /* in double */
    if (hess != 0.0) {
        vreal v = mv - grad / hess;
        v = (vreal)((vmask)v & (vmask)(v > zero));
        STORE4(mt, v);
    }
}

/* One sweep of the HALS update over a tile of HALS_ROWS rows (column-major,
 * tile[r * HALS_ROWS + g] = M[i0 + g, r]), with xt the tile's XHt - l1. */
HOT_BODY void R(hals_tile_sweep)(real_t *tile, const real_t *xt, const struct tm_bmat *g, int64_t k,
                                 real_t l2, const int64_t *perm, v4d *viol)
{
    for (int64_t s = 0; s < k; s++) {
        const int64_t t = perm ? perm[s] : s;
        /* G is symmetric: column t is row t, and contiguous. */
        const real_t *gt = &AT(g, 0, t);
        real_t *mt = tile + t * HALS_ROWS;
        /* named accumulators: an array here ends up on the stack */
        const real_t *xtt = xt + t * HALS_ROWS;
        vreal g0, g1, g2, g3, g4, g5, g6, g7, a0, a1, a2, a3;
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
            const real_t gr = gt[r];
            const real_t *tr = tile + r * HALS_ROWS;
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
        const real_t hess = gt[t] + l2;
        R(hals_update4)(mt, &g0, hess, &viol[0]);
        R(hals_update4)(mt + 4, &g1, hess, &viol[1]);
        R(hals_update4)(mt + 8, &g2, hess, &viol[2]);
        R(hals_update4)(mt + 12, &g3, hess, &viol[3]);
        R(hals_update4)(mt + 16, &g4, hess, &viol[4]);
        R(hals_update4)(mt + 20, &g5, hess, &viol[5]);
        R(hals_update4)(mt + 24, &g6, hess, &viol[6]);
        R(hals_update4)(mt + 28, &g7, hess, &viol[7]);
    }
}

/* A tile sweep's violation lanes (row g in lane g) summed in row order. */
HOT_BODY double R(hals_violation)(const v4d *viol)
{
    double lanes[HALS_ROWS], violation = 0.0;
    for (int q = 0; q < HALS_VECS; q++)
        STORE4(lanes + 4 * q, viol[q]);
    for (int g = 0; g < HALS_ROWS; g++)
        violation += lanes[g];
    return violation;
}

/*
 * hals_inner_fused's inner loop on a tile: up to cap sweeps, until the
 * tile's violation falls to rho times its first sweep's (backend.h), the
 * first sweep's added to viol. cap 1 is one hals_tile_sweep summing into
 * viol, as cd's fused half has always summed it.
 */
HOT_BODY void R(hals_tile_sweeps)(real_t *tile, const real_t *xt, const struct tm_bmat *g,
                                  int64_t k, real_t l2, const int64_t *perm, int64_t cap,
                                  double rho, v4d *viol)
{
    const v4d zero = {0.0, 0.0, 0.0, 0.0};
    v4d sv[HALS_VECS];
    if (cap <= 1) {
        R(hals_tile_sweep)(tile, xt, g, k, l2, perm, viol);
        return;
    }
    for (int q = 0; q < HALS_VECS; q++)
        sv[q] = zero;
    R(hals_tile_sweep)(tile, xt, g, k, l2, perm, sv);
    for (int q = 0; q < HALS_VECS; q++)
        viol[q] += sv[q];
    const double first = R(hals_violation)(sv);
    if (!(first > 0.0)) /* a fixed point: more sweeps would change nothing */
        return;
    for (int64_t sweep = 1; sweep < cap; sweep++) {
        for (int q = 0; q < HALS_VECS; q++)
            sv[q] = zero;
        R(hals_tile_sweep)(tile, xt, g, k, l2, perm, sv);
        if (!(R(hals_violation)(sv) > rho * first))
            break;
    }
}

HOT_BODY void R(hals_chunk_body)(void *arg, int chunk, double *scratch)
{
    struct R(hals_job) *j = arg;
    const int64_t k = j->m->cols;
    const real_t l1 = j->l1, l2 = j->l2;
    real_t *tile = (real_t *)scratch, *xt = tile + HALS_ROWS * k;
    const v4d zero = {0.0, 0.0, 0.0, 0.0};
    /* Padding rows of a last partial tile are zero: their gradient and
     * violation are 0 and they are never stored. */
    v4d viol[HALS_VECS];
    for (int q = 0; q < HALS_VECS; q++)
        viol[q] = zero;
    for (int64_t i0 = j->bounds[chunk]; i0 < j->bounds[chunk + 1]; i0 += HALS_ROWS) {
        int64_t nr = j->bounds[chunk + 1] - i0 < HALS_ROWS ? j->bounds[chunk + 1] - i0 : HALS_ROWS;
        for (int64_t r = 0; r < k; r++) {
            const real_t *mc = &AT(j->m, i0, r), *xc = &AT(j->xht, i0, r);
            real_t *td = tile + r * HALS_ROWS, *xd = xt + r * HALS_ROWS;
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
        R(hals_tile_sweep)(tile, xt, j->g, k, l2, j->perm, viol);
        for (int64_t r = 0; r < k; r++) {
            real_t *mc = &AT(j->m, i0, r);
            const real_t *td = tile + r * HALS_ROWS;
            for (int64_t g = 0; g < nr; g++)
                mc[g] = td[g];
        }
    }
    j->partial[chunk] = R(hals_violation)(viol);
}

HOT_KERNEL(R(hals_chunk))

/*
 * Half a cd, hals or Frobenius mu iteration in one pass (hals_sweep_fused,
 * hals_inner_fused and mu_update_fused in backend.h): per tile of HALS_ROWS
 * rows of M, the tile's rows of P (X^T W for Ht, X Ht for W) are gathered
 * as spmm_chunk gathers them (same order, same contraction, so the H half's
 * Ht comes out bit for bit as spmm + hals_sweep leave it), swept (as many
 * times as hals's inner loop wants, or multiplied by P / (M G)) while in
 * L1, and then dotted with the new rows for <P, M> and with each other for
 * M^T M; hals's extrapolation then reads the tile's previous rows, writes
 * the swept ones in their place and reduces the extrapolated tile for its
 * Gram matrix. P is never stored. The factors are kept
 * transposed (row-major): a tile of M is one run of memory, and F's rows,
 * which the W half gathers where spmm would scatter (spmm_scatter; with the
 * k sums in registers that is the faster way, and it adds each row's terms
 * in X's order, as scipy's X @ H.T does), are contiguous.
 */
struct R(hals_fused_job) {
    const struct tm_csr *xo; /* X or X^T: its rows are M's rows */
    const real_t *f;         /* F row-major (Ft's data) */
    real_t *m;               /* M row-major (Mt's data), updated */
    const struct tm_bmat *g;
    int64_t k;
    real_t l1, l2;
    enum fused_rule rule;
    const int64_t *perm;
    int64_t cap;    /* hals's sweeps at most (1: cd) */
    double rho;     /* and its rows' stop rule */
    real_t *prev;   /* hals's previous iterate, row-major, or NULL */
    real_t beta;    /* its extrapolation's step */
    int want_cross; /* <P, M> wanted */
    const int64_t *bounds;
    double *gram;     /* n_chunks x k x k, upper triangles, or NULL */
    double *gram_hat; /* the same of the extrapolated M, or NULL */
    double violation[MAX_CHUNKS], cross[MAX_CHUNKS];
};

/* acc4 (4 lanes) += the dot product of two tile columns (HALS_ROWS each). */
HOT_BODY void R(dot_tile_lanes)(const real_t *a, const real_t *b, double *acc4)
{
    vreal x, y;
    v4d s;
    LOAD4(s, acc4);
    for (int q = 0; q < HALS_VECS; q++) {
        LOAD4(x, a + 4 * q);
        LOAD4(y, b + 4 * q);
        s += TO_V4D(x) * TO_V4D(y);
    }
    STORE4(acc4, s);
}

static inline double R(lanes_sum)(const double *acc4)
{
    return (acc4[0] + acc4[1]) + (acc4[2] + acc4[3]);
}

/* The multiplicative update of a tile (mu_update_fused): den = M G from the
 * tile as it was, each element's sum over r in order, as small_gemm makes
 * it; then R(mu_chunk)'s arithmetic on every element. */
HOT_BODY void R(mu_tile_update)(real_t *tile, const real_t *numer, real_t *den,
                                const struct tm_bmat *g, int64_t k, real_t l1, real_t l2)
{
    for (int64_t t = 0; t < k; t++) {
        const real_t *gt = &AT(g, 0, t); /* G symmetric: column t is row t */
        vreal acc[HALS_VECS];
        for (int q = 0; q < HALS_VECS; q++)
            acc[q] = (vreal){0.0, 0.0, 0.0, 0.0};
        for (int64_t r = 0; r < k; r++) {
            const real_t gr = gt[r];
            for (int q = 0; q < HALS_VECS; q++) {
                vreal a;
                LOAD4(a, tile + r * HALS_ROWS + 4 * q);
                acc[q] += gr * a;
            }
        }
        for (int q = 0; q < HALS_VECS; q++)
            STORE4(den + t * HALS_ROWS + 4 * q, acc[q]);
    }
    for (int64_t e = 0; e < k * HALS_ROWS; e++) {
        real_t d = den[e];
        if (l1 > 0)
            d += l1;
        if (l2 > 0)
            d += l2 * tile[e];
        if (d == 0.0)
            d = TM_NMF_EPSILON;
        real_t v = tile[e] * (numer[e] / d);
        tile[e] = v < 0.0 ? 0.0 : v;
    }
}

/* o_c = (a[c], b[c], c[c], d[c]): four rows of 4 become four columns. A
 * macro: as a function taking vectors by value it would change the ABI
 * (clang warns), and by pointer GCC spilled them, slowing the fused halves
 * (bench/NOTES.md, "TRANSPOSE4"). */
#define TRANSPOSE4(a, b, c, d, o0, o1, o2, o3)                                                     \
    do {                                                                                           \
        vreal t0_ = SHUFFLE4(a, b, 0, 4, 2, 6), t1_ = SHUFFLE4(a, b, 1, 5, 3, 7);                  \
        vreal t2_ = SHUFFLE4(c, d, 0, 4, 2, 6), t3_ = SHUFFLE4(c, d, 1, 5, 3, 7);                  \
        o0 = SHUFFLE4(t0_, t2_, 0, 1, 4, 5);                                                       \
        o1 = SHUFFLE4(t1_, t3_, 0, 1, 4, 5);                                                       \
        o2 = SHUFFLE4(t0_, t2_, 2, 3, 6, 7);                                                       \
        o3 = SHUFFLE4(t1_, t3_, 2, 3, 6, 7);                                                       \
    } while (0)

/* Four row-major rows of k (ld apart) into the column-major tile at row
 * g0 (dst[r * HALS_ROWS + g0 + q] = rows[q * ld + r]), minus sub (0 for a
 * plain copy), and into plain as they are unless it is NULL: the columns
 * by 4 x 4 transposes, the last k % 4 one element at a time. */
HOT_BODY void R(rows4_to_tile)(const real_t *rows, int64_t ld, int64_t k, real_t sub, real_t *dst,
                               real_t *plain)
{
    const vreal subv = {sub, sub, sub, sub};
    const int64_t k4 = k & ~(int64_t)3;
    for (int64_t r = k4; r < k; r++)
        for (int64_t q = 0; q < 4; q++) {
            if (plain)
                plain[r * HALS_ROWS + q] = rows[q * ld + r];
            dst[r * HALS_ROWS + q] = rows[q * ld + r] - sub;
        }
    for (int64_t r = 0; r < k4; r += 4) {
        vreal a, b, c, d, c0, c1, c2, c3;
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
HOT_BODY void R(tile_to_rows4)(const real_t *src, int64_t k, real_t *rows);

/* nr (<= HALS_ROWS) row-major rows of k into the column-major tile, zero
 * below them; four rows at a time by rows4_to_tile. */
HOT_BODY void R(rows_to_tile)(const real_t *rows, int64_t nr, int64_t k, real_t *tile)
{
    int64_t g = 0;
    for (; g + 4 <= nr; g += 4)
        R(rows4_to_tile)(rows + g * k, k, k, 0.0, tile + g, NULL);
    for (; g < HALS_ROWS; g++)
        for (int64_t r = 0; r < k; r++)
            tile[r * HALS_ROWS + g] = g < nr ? rows[g * k + r] : 0.0;
}

/* The tile's first nr rows back into row-major rows. */
HOT_BODY void R(tile_to_rows)(const real_t *tile, int64_t nr, int64_t k, real_t *rows)
{
    int64_t g = 0;
    for (; g + 4 <= nr; g += 4)
        R(tile_to_rows4)(tile + g, k, rows + g * k);
    for (; g < nr; g++)
        for (int64_t r = 0; r < k; r++)
            rows[g * k + r] = tile[r * HALS_ROWS + g];
}

/* Pair (a, r)'s lanes (at g) plus the dot product of tile column c with
 * column r, held in y0..y7: dot_tile_lanes's sums in its order, so the same
 * bits. */
#define GRAM_PAIR(g, c)                                                                            \
    do {                                                                                           \
        v4d s_;                                                                                    \
        vreal x_;                                                                                  \
        LOAD4(s_, g);                                                                              \
        LOAD4(x_, (c));                                                                            \
        s_ += TO_V4D(x_) * y0;                                                                     \
        LOAD4(x_, (c) + 4);                                                                        \
        s_ += TO_V4D(x_) * y1;                                                                     \
        LOAD4(x_, (c) + 8);                                                                        \
        s_ += TO_V4D(x_) * y2;                                                                     \
        LOAD4(x_, (c) + 12);                                                                       \
        s_ += TO_V4D(x_) * y3;                                                                     \
        LOAD4(x_, (c) + 16);                                                                       \
        s_ += TO_V4D(x_) * y4;                                                                     \
        LOAD4(x_, (c) + 20);                                                                       \
        s_ += TO_V4D(x_) * y5;                                                                     \
        LOAD4(x_, (c) + 24);                                                                       \
        s_ += TO_V4D(x_) * y6;                                                                     \
        LOAD4(x_, (c) + 28);                                                                       \
        s_ += TO_V4D(x_) * y7;                                                                     \
        STORE4(g, s_);                                                                             \
    } while (0)

/* The upper triangle of a tile's Gram matrix (k x k) added to gram4's lanes.
 * Column r stays in registers (named, as hals_tile_sweep's accumulators
 * are) while each column a <= r is dotted with it: one column's loads per
 * pair instead of two (bench/NOTES.md, "The tile's Gram matrix"). */
HOT_BODY void R(tile_gram_lanes)(const real_t *tile, int64_t k, double *gram4)
{
    for (int64_t r = 0; r < k; r++) {
        const real_t *cr = tile + r * HALS_ROWS;
        vreal v0, v1, v2, v3, v4, v5, v6, v7;
        LOAD4(v0, cr);
        LOAD4(v1, cr + 4);
        LOAD4(v2, cr + 8);
        LOAD4(v3, cr + 12);
        LOAD4(v4, cr + 16);
        LOAD4(v5, cr + 20);
        LOAD4(v6, cr + 24);
        LOAD4(v7, cr + 28);
        const v4d y0 = TO_V4D(v0), y1 = TO_V4D(v1), y2 = TO_V4D(v2), y3 = TO_V4D(v3);
        const v4d y4 = TO_V4D(v4), y5 = TO_V4D(v5), y6 = TO_V4D(v6), y7 = TO_V4D(v7);
        for (int64_t a = 0; a <= r; a++)
            GRAM_PAIR(gram4 + 4 * (a + r * k), tile + a * HALS_ROWS);
    }
}

#undef GRAM_PAIR

/* Ang & Gillis's extrapolation of a tile (k columns) from the previous
 * iterate's (pt): tile = max(tile + beta (tile - pt), 0), NaN and -0 to +0
 * as pgd_update's projection. */
HOT_BODY void R(extrapolate_tile)(real_t *tile, const real_t *pt, int64_t k, real_t beta)
{
    const vreal zero = {0.0, 0.0, 0.0, 0.0};
    for (int64_t e = 0; e < k * HALS_ROWS; e += 4) {
        vreal t, p;
        LOAD4(t, tile + e);
        LOAD4(p, pt + e);
        t = t + beta * (t - p);
        t = (vreal)((vmask)t & (vmask)(t > zero));
        STORE4(tile + e, t);
    }
}

HOT_BODY void R(tile_to_rows4)(const real_t *src, int64_t k, real_t *rows)
{
    const int64_t k4 = k & ~(int64_t)3;
    for (int64_t r = k4; r < k; r++)
        for (int64_t q = 0; q < 4; q++)
            rows[q * k + r] = src[r * HALS_ROWS + q];
    for (int64_t r = 0; r < k4; r += 4) {
        vreal a, b, c, d, r0, r1, r2, r3;
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

HOT_BODY void R(hals_fused_chunk_body)(void *arg, int chunk, double *scratch)
{
    struct R(hals_fused_job) *j = arg;
    const struct tm_csr *x = j->xo;
    const int64_t k = j->k;
    const real_t l1 = j->l1;
    const real_t *restrict f = j->f;
    real_t *tile = (real_t *)scratch, *xt = tile + HALS_ROWS * k, *raw = xt + HALS_ROWS * k;
    real_t *acc = raw + HALS_ROWS * k; /* 4 gathered rows, row-major */
    /* M^T M and <P, M> summed per lane over the chunk's tiles, the lanes
     * added at the end: a horizontal sum per tile and pair cost more than
     * the products (bench/NOTES.md, "Fused halves: lanes"). */
    double *gram4 = (double *)(void *)(acc + 4 * k), cross4[4] = {0.0, 0.0, 0.0, 0.0};
    double *gramhat4 = gram4 + 4 * k * k;
    /* The tile goes in and out four rows at a time, by 4 x 4 transposes in
     * registers (k % 4 columns element by element): scalar stores by stride
     * HALS_ROWS were a large share of the kernel (bench/NOTES.md, "Fused
     * halves: the tile").
     * The HALS sweep only reads xt, so without l1 it is also the raw P
     * <P, M> needs. */
    real_t *rawp = j->rule == RULE_HALS && l1 == 0.0 ? xt : raw;
    const v4d zero = {0.0, 0.0, 0.0, 0.0};
    v4d viol[HALS_VECS];
    for (int q = 0; q < HALS_VECS; q++)
        viol[q] = zero;
    for (int64_t b = 0; b < k; b++)
        for (int64_t a = 0; a <= b; a++) {
            memset(gram4 + 4 * (a + b * k), 0, 4 * sizeof(double));
            memset(gramhat4 + 4 * (a + b * k), 0, 4 * sizeof(double));
        }
    const int64_t lo = j->bounds[chunk], hi = j->bounds[chunk + 1];
    const int64_t pend_all = x->indptr[hi];
    for (int64_t i0 = lo; i0 < hi; i0 += HALS_ROWS) {
        int64_t nr = hi - i0 < HALS_ROWS ? hi - i0 : HALS_ROWS;
        real_t *mrows = j->m + (size_t)i0 * (size_t)k; /* the tile's rows, one run */
        /* Padding rows are zero, so they add nothing below. */
        int64_t g = 0;
        for (; g + 4 <= nr; g += 4) {
            for (int q = 0; q < 4; q++)
                R(gather_row)(x, i0 + g + q, f, pend_all, acc + q * k, k);
            R(rows4_to_tile)(acc, k, k, l1, xt + g, rawp != xt ? raw + g : NULL);
            R(rows4_to_tile)(mrows + g * k, k, k, 0.0, tile + g, NULL);
        }
        for (; g < HALS_ROWS; g++) {
            if (g < nr)
                R(gather_row)(x, i0 + g, f, pend_all, acc, k);
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
            R(mu_tile_update)(tile, raw, xt, j->g, k, l1, j->l2);
        else
            R(hals_tile_sweeps)(tile, xt, j->g, k, j->l2, j->perm, j->cap, j->rho, viol);
        if (j->want_cross)
            for (int64_t r = 0; r < k; r++)
                R(dot_tile_lanes)(rawp + r * HALS_ROWS, tile + r * HALS_ROWS, cross4);
        if (j->gram)
            R(tile_gram_lanes)(tile, k, gram4);
        if (j->prev) { /* P is spent: raw holds the previous rows */
            real_t *prows = j->prev + (size_t)i0 * (size_t)k;
            R(rows_to_tile)(prows, nr, k, raw);
            R(tile_to_rows)(tile, nr, k, prows);
            R(extrapolate_tile)(tile, raw, k, j->beta);
            if (j->gram_hat)
                R(tile_gram_lanes)(tile, k, gramhat4);
        }
        R(tile_to_rows)(tile, nr, k, mrows);
    }
    j->violation[chunk] = R(hals_violation)(viol);
    j->cross[chunk] = R(lanes_sum)(cross4);
    for (int pass = 0; pass < 2; pass++) {
        double *out = pass ? j->gram_hat : j->gram, *lanes = pass ? gramhat4 : gram4;
        if (!out)
            continue;
        out += (size_t)chunk * (size_t)k * (size_t)k;
        for (int64_t b = 0; b < k; b++)
            for (int64_t a = 0; a <= b; a++)
                out[a + b * k] = R(lanes_sum)(lanes + 4 * (a + b * k));
    }
}

HOT_KERNEL(R(hals_fused_chunk))

/* The fused halves' driver: the job of R(hals_fused_chunk) over xo's row
 * chunks, and the chunks' sums in a fixed order. mpt, gram and gram_hat may
 * be NULL (not wanted), cross too where want_cross is 0. */
static tm_status R(fused_half)(void *ctx, const struct tm_bsparse *s, int side,
                               enum fused_rule rule, const struct tm_bmat *mt,
                               const struct tm_bmat *ft, const struct tm_bmat *g, double l1,
                               double l2, const int64_t *perm, int64_t cap, double rho,
                               const struct tm_bmat *mpt, double beta, double *violation,
                               double *cross, const struct tm_bmat *gram,
                               const struct tm_bmat *gram_hat, char *err)
{
    const struct tm_csr *xo = side == TM_TRANS ? &s->xt : s->x;
    const int64_t k = mt->rows;
    if (!whole_rows(mt, k) || !whole_rows(ft, k) || mt->cols != xo->n_rows ||
        ft->cols != xo->n_cols || (mpt && (!whole_rows(mpt, k) || mpt->cols != mt->cols)))
        return tm_errf(err, TM_EINVAL,
                       "cpu backend: the fused update needs whole k x rows Mt, Ft and Mpt");
    if (!mpt)
        gram_hat = NULL;
    int64_t bounds[MAX_CHUNKS + 1];
    int nc = tm__cpu_csr_chunks(xo, bounds);
    size_t per = (size_t)nc * (size_t)k * (size_t)k;
    double *partial = tm_mallocarray(2 * per + 1, sizeof(double));
    if (!partial)
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot allocate the fused update's workspace");
    struct R(hals_fused_job) job = {xo,
                                    ft->data,
                                    mt->data,
                                    g,
                                    k,
                                    l1,
                                    l2,
                                    rule,
                                    perm,
                                    cap < 1 ? 1 : cap,
                                    rho,
                                    mpt ? mpt->data : NULL,
                                    beta,
                                    cross != NULL,
                                    bounds,
                                    gram ? partial : NULL,
                                    gram_hat ? partial + per : NULL,
                                    {0},
                                    {0}};
    /* tile, xt, raw, acc (4 k), then the lanes of gram4 and gramhat4 (4 k^2 each) */
    size_t scratch = (3 * HALS_ROWS + 4) * (size_t)k + 8 * (size_t)k * (size_t)k;
    tm_status st = tm__cpu_par_for(ctx, nc, scratch, R(hals_fused_chunk), &job, err);
    if (st == TM_OK) {
        double v = 0.0, c = 0.0;
        for (int q = 0; q < nc; q++) {
            v += job.violation[q];
            c += job.cross[q];
        }
        if (violation)
            *violation = v;
        if (cross)
            *cross = c;
        for (int pass = 0; pass < 2; pass++) {
            const struct tm_bmat *out = pass ? gram_hat : gram;
            if (!out)
                continue;
            for (int64_t b = 0; b < k; b++)
                for (int64_t a = 0; a <= b; a++) {
                    double sum = f64_chunk_sum(partial + pass * per, nc, (size_t)(k * k),
                                               (size_t)(a + b * k));
                    AT(out, a, b) = sum;
                    AT(out, b, a) = sum;
                }
        }
    }
    tm_free(partial);
    return st;
}

static tm_status R(hals_sweep_fused)(void *ctx, const struct tm_bsparse *s, int side,
                                     const struct tm_bmat *mt, const struct tm_bmat *ft,
                                     const struct tm_bmat *g, double l1, double l2,
                                     const int64_t *perm, double *violation, double *cross,
                                     const struct tm_bmat *gram, char *err)
{
    return R(fused_half)(ctx, s, side, RULE_HALS, mt, ft, g, l1, l2, perm, 1, 0.0, NULL, 0.0,
                         violation, cross, gram, NULL, err);
}

static tm_status R(hals_inner_fused)(void *ctx, const struct tm_bsparse *s, int side,
                                     const struct tm_bmat *mt, const struct tm_bmat *ft,
                                     const struct tm_bmat *g, double l1, double l2,
                                     const int64_t *perm, int64_t cap, double rho,
                                     const struct tm_bmat *mpt, double beta, double *violation,
                                     double *cross, const struct tm_bmat *gram,
                                     const struct tm_bmat *gram_hat, char *err)
{
    return R(fused_half)(ctx, s, side, RULE_HALS, mt, ft, g, l1, l2, perm, cap, rho, mpt, beta,
                         violation, cross, gram, gram_hat, err);
}

static tm_status R(mu_update_fused)(void *ctx, const struct tm_bsparse *s, int side,
                                    const struct tm_bmat *mt, const struct tm_bmat *ft,
                                    const struct tm_bmat *g, double l1, double l2, double *cross,
                                    const struct tm_bmat *gram, char *err)
{
    return R(fused_half)(ctx, s, side, RULE_MU, mt, ft, g, l1, l2, NULL, 1, 0.0, NULL, 0.0, NULL,
                         cross, gram, NULL, err);
}

static tm_status R(hals_sweep)(void *ctx, const struct tm_bmat *m, const struct tm_bmat *g,
                               const struct tm_bmat *xht, double l1, double l2, const int64_t *perm,
                               double *violation, char *err)
{
    struct R(hals_job) job = {m, g, xht, l1, l2, perm, NULL, {0}};
    int64_t bounds[MAX_CHUNKS + 1];
    int nc = tm__cpu_row_chunks(m->rows, bounds);
    job.bounds = bounds;
    tm_status st =
        tm__cpu_par_for(ctx, nc, 2 * HALS_ROWS * (size_t)m->cols, R(hals_chunk), &job, err);
    double v = 0.0;
    for (int c = 0; c < nc; c++)
        v += job.partial[c];
    *violation = v;
    return st;
}

struct R(mu_job) {
    const struct tm_bmat *m, *numer, *denom;
    const double *denom_row; /* host */
    real_t l1, l2, zero_below;
    const int64_t *bounds;
};

HOT_BODY void R(mu_chunk_body)(void *arg, int chunk, double *buf)
{
    const struct R(mu_job) *j = arg;
    (void)buf;
    for (int64_t c = 0; c < j->m->cols; c++) {
        real_t *restrict mc = &AT(j->m, 0, c);
        const real_t *restrict nc = &AT(j->numer, 0, c);
        const real_t *restrict dc = j->denom ? &AT(j->denom, 0, c) : NULL;
        for (int64_t i = j->bounds[chunk]; i < j->bounds[chunk + 1]; i++) {
            real_t d = dc ? dc[i] : j->denom_row[c];
            if (j->l1 > 0)
                d += j->l1;
            if (j->l2 > 0)
                d += j->l2 * mc[i];
            if (d == 0.0)
                d = TM_NMF_EPSILON;
            real_t v = mc[i] * (nc[i] / d);
            mc[i] = v < j->zero_below ? 0.0 : v;
        }
    }
}

HOT_KERNEL(R(mu_chunk))

static tm_status R(mu_update)(void *ctx, const struct tm_bmat *m, const struct tm_bmat *numer,
                              const struct tm_bmat *denom, const double *denom_row, double l1,
                              double l2, double zero_below, char *err)
{
    int64_t bounds[MAX_CHUNKS + 1];
    int nc = tm__cpu_row_chunks(m->rows, bounds);
    struct R(mu_job) job = {m, numer, denom, denom_row, l1, l2, zero_below, bounds};
    return tm__cpu_par_for(ctx, nc, 0, R(mu_chunk), &job, err);
}

static tm_status R(pgd_update)(void *ctx, const struct tm_bmat *m, const struct tm_bmat *mg,
                               const struct tm_bmat *xht, double lr, double penalty, double mu,
                               char *err)
{
    (void)ctx;
    (void)err;
    if (lr == 0.0) { /* the projection M = max(M, 0) (backend.h): mg and xht unread */
        for (int64_t j = 0; j < m->cols; j++) {
            real_t *restrict mc = &AT(m, 0, j);
            for (int64_t i = 0; i < m->rows; i++)
                mc[i] = mc[i] > 0.0 ? mc[i] : 0.0;
        }
        return TM_OK;
    }
    for (int64_t j = 0; j < m->cols; j++) {
        for (int64_t i = 0; i < m->rows; i++) {
            real_t v = AT(m, i, j);
            real_t g = AT(mg, i, j) - AT(xht, i, j) + penalty * (v >= mu ? 0.0 : v - mu);
            v -= lr * g;
            AT(m, i, j) = v > 0.0 ? v : 0.0;
        }
    }
    return TM_OK;
}

struct R(kl_job) {
    const struct tm_csr *x;
    const int64_t *bounds;
    const struct tm_bmat *p;
    const real_t *q; /* packed row-major */
    int64_t k;
    double eps;
    const struct tm_bmat *c; /* kl_spmm output, or NULL for kl_sum */
    double partial[MAX_CHUNKS];
};

HOT_BODY void R(kl_chunk_body)(void *arg, int chunk, double *scratch)
{
    struct R(kl_job) *j = arg;
    const struct tm_csr *x = j->x;
    const real_t *xv = CSR_VALS(x);
    int64_t k = j->k;
    real_t *prow = (real_t *)scratch, *acc = prow + k;
    double sum = 0.0;
    for (int64_t i = j->bounds[chunk]; i < j->bounds[chunk + 1]; i++) {
        for (int64_t r = 0; r < k; r++) {
            prow[r] = AT(j->p, i, r);
            acc[r] = 0.0;
        }
        for (int64_t p = x->indptr[i]; p < x->indptr[i + 1]; p++) {
            const real_t *qrow = j->q + (size_t)x->indices[p] * k;
            double wh = 0.0; /* in double, as the CUDA backend's row_dot */
            for (int64_t r = 0; r < k; r++)
                wh += (double)prow[r] * qrow[r];
            if (wh < j->eps)
                wh = j->eps;
            double v = xv[p];
            if (j->c) {
                real_t ratio = (real_t)(v / wh);
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

HOT_KERNEL(R(kl_chunk))

static tm_status R(kl_run)(void *ctx, const struct tm_csr *x, const struct tm_bmat *p,
                           const struct tm_bmat *q, double eps, const struct tm_bmat *c,
                           double *out, char *err)
{
    int64_t bounds[MAX_CHUNKS + 1];
    int nc = tm__cpu_csr_chunks(x, bounds);
    real_t *packed = tm_mallocarray((size_t)q->rows * (size_t)q->cols + 1, sizeof(real_t));
    if (!packed)
        return tm_errf(err, TM_ENOMEM, "cpu backend: cannot pack a %lld x %lld operand",
                       (long long)q->rows, (long long)q->cols);
    tm__cpu_pack_rows(q, packed);
    struct R(kl_job) job = {x, bounds, p, packed, q->cols, eps, c, {0}};
    tm_status st = tm__cpu_par_for(ctx, nc, 2 * (size_t)q->cols, R(kl_chunk), &job, err);
    tm_free(packed);
    if (out) {
        double s = 0.0;
        for (int i = 0; i < nc; i++)
            s += job.partial[i];
        *out = s;
    }
    return st;
}

static tm_status R(kl_spmm)(void *ctx, const struct tm_bsparse *s, int trans,
                            const struct tm_bmat *p, const struct tm_bmat *q, double eps,
                            const struct tm_bmat *c, char *err)
{
    return R(kl_run)(ctx, trans ? &s->xt : s->x, p, q, eps, c, NULL, err);
}

static tm_status R(kl_sum)(void *ctx, const struct tm_bsparse *s, const struct tm_bmat *w,
                           const struct tm_bmat *ht, double eps, double *out, char *err)
{
    return R(kl_run)(ctx, s->x, w, ht, eps, NULL, out, err);
}
