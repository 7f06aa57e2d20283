/*
 * cpu_inline_t.h - the always-inline helpers that several files' kernels
 * inline, written once for both element types (cpu_real.h says how):
 * cpu_internal.h includes it for float64 and for float32. No include guard.
 */

/* Software prefetch of the operand row that non-zero p will touch: the rows
 * are gathered (or scattered) in index order, which no hardware prefetcher
 * follows, and the operand outgrows L2. Only a hint: results are unchanged. */
HOT_BODY void R(prefetch_row)(const real_t *base, const int32_t *indices, int64_t p, int64_t pend,
                              int64_t k)
{
    if (p < pend) {
        const char *row = (const char *)(base + (size_t)indices[p] * k);
        for (int64_t o = 0; o < k * (int64_t)sizeof(real_t); o += 64)
            __builtin_prefetch(row + o, 0, 3);
        __builtin_prefetch(row + k * (int64_t)sizeof(real_t) - 1, 0, 3);
    }
}

/* row += v * d (k elements), as explicit 4-wide vectors: GCC keeps the plain
 * loop scalar when it cannot rule out that row and d overlap (it does not
 * trust restrict on locals), and the scatter kernels are those loops. Each
 * element is one fused multiply-add either way. */
HOT_BODY void R(axpy_row)(real_t *row, real_t v, const real_t *d, const int64_t k)
{
    const vreal vv = {v, v, v, v};
    int64_t c = 0;
    for (; c + 4 <= k; c += 4) {
        vreal a, b;
        LOAD4(a, row + c);
        LOAD4(b, d + c);
        a += vv * b;
        STORE4(row + c, a);
    }
    for (; c < k; c++)
        row[c] += v * d[c];
}

/* acc (k) = row i of x times the row-major b, as spmm_rows sums it. */
HOT_BODY void R(gather_row_k)(const struct tm_csr *x, int64_t i, const real_t *restrict b,
                              int64_t pend_all, real_t *restrict acc, const int64_t k)
{
    real_t sums[FIXED_K_MAX];
    real_t *restrict s = k <= FIXED_K_MAX ? sums : acc;
    const real_t *xv = CSR_VALS(x);
    for (int64_t r = 0; r < k; r++)
        s[r] = 0.0;
    const int64_t pend = x->indptr[i + 1];
    for (int64_t p = x->indptr[i]; p < pend; p++) {
        const real_t v = xv[p];
        const real_t *restrict brow = b + (size_t)x->indices[p] * k;
        R(prefetch_row)(b, x->indices, p + PF_DIST, pend_all, k);
        for (int64_t r = 0; r < k; r++)
            s[r] += v * brow[r];
    }
    /* Through s, not by the name sums: s is restrict, so every access to
     * the sums it wrote goes through it. */
    if (k <= FIXED_K_MAX)
        memcpy(acc, s, (size_t)k * sizeof(real_t));
}

#define GATHER_ROW_CASE(K)                                                                         \
    case K:                                                                                        \
        R(gather_row_k)(x, i, b, pend_all, acc, K);                                                \
        return;

HOT_BODY void R(gather_row)(const struct tm_csr *x, int64_t i, const real_t *restrict b,
                            int64_t pend_all, real_t *restrict acc, const int64_t k)
{
    switch (k) {
        FIXED_K_CASES(GATHER_ROW_CASE)
    default:
        R(gather_row_k)(x, i, b, pend_all, acc, k);
    }
}

#undef GATHER_ROW_CASE

/* sum over rows [lo, hi) of x[i] * y[i], 4 lanes then in order; in double
 * for either element type. */
HOT_BODY double R(dot_range)(const real_t *x, const real_t *y, int64_t lo, int64_t hi)
{
    v4d s0 = {0, 0, 0, 0}, s1 = s0;
    vreal a, b;
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        LOAD4(a, x + i);
        LOAD4(b, y + i);
        s0 += TO_V4D(a) * TO_V4D(b);
        LOAD4(a, x + i + 4);
        LOAD4(b, y + i + 4);
        s1 += TO_V4D(a) * TO_V4D(b);
    }
    s0 += s1;
    double sum = ((s0[0] + s0[1]) + (s0[2] + s0[3]));
    for (; i < hi; i++)
        sum += (double)x[i] * y[i];
    return sum;
}

/* Element `at` of n_chunks per-chunk partial matrices (each `stride`
 * elements), added in chunk order, in double: the order that makes a
 * parallel sum the same for any thread count. */
static inline double R(chunk_sum)(const real_t *partial, int n_chunks, size_t stride, size_t at)
{
    double sum = 0.0;
    for (int q = 0; q < n_chunks; q++)
        sum += partial[(size_t)q * stride + at];
    return sum;
}
