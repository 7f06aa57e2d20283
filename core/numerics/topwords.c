/* topwords.c - see topwords.h. */
#include "core/numerics/topwords.h"

#include <stddef.h>

/* Puts v (term j) into a topic's list of *have entries (at most n_top), by
 * decreasing weight, after entries of equal weight. */
static void top_insert(int64_t *terms, double *weights, int64_t *have, int64_t n_top, int64_t j,
                       double v)
{
    int64_t pos = *have < n_top ? (*have)++ : n_top - 1;
    while (pos > 0 && weights[pos - 1] < v) {
        weights[pos] = weights[pos - 1];
        terms[pos] = terms[pos - 1];
        pos--;
    }
    weights[pos] = v;
    terms[pos] = j;
}

/*
 * Once a list is full, an entry must exceed its last weight to get in, and
 * almost none does: a block of entries is looked at one by one only when its
 * largest does, found with four independent max chains.
 */
#define TOP_BLOCK 16

static double block_max(const double *x)
{
    double m0 = x[0], m1 = x[1], m2 = x[2], m3 = x[3];
    for (int b = 4; b < TOP_BLOCK; b += 4) {
        m0 = x[b] > m0 ? x[b] : m0;
        m1 = x[b + 1] > m1 ? x[b + 1] : m1;
        m2 = x[b + 2] > m2 ? x[b + 2] : m2;
        m3 = x[b + 3] > m3 ? x[b + 3] : m3;
    }
    m0 = m1 > m0 ? m1 : m0;
    m2 = m3 > m2 ? m3 : m2;
    return m2 > m0 ? m2 : m0;
}

static void column_top(const double *col, int64_t n, int64_t n_top, int64_t *terms, double *weights)
{
    int64_t have = 0;
    for (int64_t j0 = 0; j0 < n; j0 += TOP_BLOCK) {
        int64_t j1 = n - j0 < TOP_BLOCK ? n : j0 + TOP_BLOCK;
        if (have == n_top && j1 - j0 == TOP_BLOCK && block_max(col + j0) <= weights[n_top - 1])
            continue;
        for (int64_t j = j0; j < j1; j++) {
            double v = col[j];
            if (v != 0.0 && (have < n_top || v > weights[n_top - 1]))
                top_insert(terms, weights, &have, n_top, j, v);
        }
    }
    for (int64_t i = have; i < n_top; i++) {
        terms[i] = -1;
        weights[i] = 0.0;
    }
}

void tm_top_words(const double *comp, int64_t k, int64_t n, int64_t n_top, int64_t *terms,
                  double *weights)
{
    if (n_top <= 0)
        return;
    for (int64_t t = 0; t < k; t++)
        column_top(comp + (size_t)t * (size_t)n, n, n_top, terms + t * n_top, weights + t * n_top);
}
