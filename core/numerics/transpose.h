/*
 * transpose.h - transposing a dense host matrix in its own memory.
 *
 * The NMF factors are tens of MB; the fit keeps them transposed (each row
 * contiguous, the layout its products read) and hands them back column-major,
 * and a second copy for the turn would add a factor's size to the fit's peak.
 * Thread-safety: none needed; the caller owns the matrix.
 */
#ifndef TM_CORE_NUMERICS_TRANSPOSE_H
#define TM_CORE_NUMERICS_TRANSPOSE_H

#include <stdint.h>

#include "core/status.h"

/*
 * a (rows x cols, column-major, ld rows) becomes its transpose (cols x rows,
 * column-major, ld cols) in place. Takes O(min(rows, cols) * 256) doubles of
 * workspace; TM_ENOMEM (a unchanged) when that cannot be had.
 */
tm_status tm_transpose_inplace(double *a, int64_t rows, int64_t cols, char *err);

#endif
