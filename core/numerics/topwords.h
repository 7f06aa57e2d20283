/*
 * topwords.h - the words of a topic: the largest entries of each column of
 * a components matrix (n terms x k topics), as a result's `topics` lists
 * them.
 */
#ifndef TM_CORE_NUMERICS_TOPWORDS_H
#define TM_CORE_NUMERICS_TOPWORDS_H

#include <stdint.h>

/*
 * For each topic t, terms[t * n_top ..] and weights[t * n_top ..] receive
 * the n_top largest non-zero entries of column t of comp (column-major,
 * ld n), by decreasing weight, ties in increasing term order (what a stable
 * sort of the column would give); zeros are never top words, and lists
 * shorter than n_top are padded with term -1, weight 0. comp must be free
 * of NaN (the fits refuse NaN before this runs).
 */
void tm_top_words(const double *comp, int64_t k, int64_t n, int64_t n_top, int64_t *terms,
                  double *weights);

#endif
