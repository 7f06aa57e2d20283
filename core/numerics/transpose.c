/* transpose.c - in-place transposition of a dense host matrix (see transpose.h). */
#include "core/numerics/transpose.h"

#include <string.h>

#include "core/alloc.h"

/*
 * Following the cycles of the transposition element by element jumps around
 * the whole matrix once per element. Here the long side is cut into runs of
 * TRANSPOSE_BLOCK: whole runs move along the cycles (a copy each), and each
 * run's short side is then turned in a small tile, so that memory is walked
 * in runs either way (bench/NOTES.md, "In-place transpose").
 */
#define TRANSPOSE_BLOCK 256

/* a holds r x c blocks of blk doubles, column-major (block (i, j) at
 * i + j * r); rearranges them into the c x r transpose by cycle following.
 * buf: blk doubles; seen: r * c bits, zeroed. */
static void transpose_blocks(double *a, int64_t r, int64_t c, int64_t blk, double *buf,
                             uint64_t *seen)
{
    const int64_t last = r * c - 1; /* blocks 0 and last stay where they are */
    const size_t bytes = (size_t)blk * sizeof(double);
    for (int64_t s = 1; s < last; s++) {
        if (seen[s >> 6] >> (s & 63) & 1)
            continue;
        memcpy(buf, a + s * blk, bytes);
        /* Block q of the transpose is block q * r mod last of the original. */
        for (int64_t q = s;;) {
            seen[q >> 6] |= UINT64_C(1) << (q & 63);
            int64_t p = q * r % last;
            if (p == s) {
                memcpy(a + q * blk, buf, bytes);
                break;
            }
            memcpy(a + q * blk, a + p * blk, bytes);
            q = p;
        }
    }
}

/* The n x k column-major runs [b * blk, (b + 1) * blk) x all columns, laid
 * out as blk x k column-major tiles one after the other, to k x blk tiles
 * (to_rows) or back. tile: blk * k doubles. */
static void turn_tiles(double *a, int64_t tiles, int64_t blk, int64_t k, int to_rows, double *tile)
{
    const size_t bytes = (size_t)(blk * k) * sizeof(double);
    for (int64_t b = 0; b < tiles; b++) {
        double *t = a + b * blk * k;
        memcpy(tile, t, bytes);
        for (int64_t i = 0; i < blk; i++)
            for (int64_t j = 0; j < k; j++) {
                if (to_rows)
                    t[j + i * k] = tile[i + j * blk];
                else
                    t[i + j * blk] = tile[j + i * k];
            }
    }
}

tm_status tm_transpose_inplace(double *a, int64_t rows, int64_t cols, char *err)
{
    /* Tall: n x k column-major to its rows one after the other; wide: back. */
    const int to_rows = rows >= cols;
    const int64_t n = to_rows ? rows : cols, k = to_rows ? cols : rows;
    if (k <= 1)
        return TM_OK; /* a vector or nothing: the same memory either way */
    const int64_t blk = TRANSPOSE_BLOCK, nb = n / blk, body = nb * blk, rem = n - body;
    double *tail = tm_mallocarray((size_t)(rem * k) + 1, sizeof(double));
    double *tile = tm_mallocarray((size_t)(blk * k) + 1, sizeof(double));
    uint64_t *seen = tm_calloc((size_t)(nb * k + 63) / 64 + 1, sizeof(uint64_t));
    if (!tail || !tile || !seen) {
        tm_free(tail);
        tm_free(tile);
        tm_free(seen);
        return tm_errf(err, TM_ENOMEM, "cannot allocate the workspace to transpose %lld x %lld",
                       (long long)rows, (long long)cols);
    }
    /* The last rem rows (fewer than a run) wait in tail; the runs of the
     * columns close up to a body x k matrix in front, which turns by runs. */
    if (to_rows) {
        for (int64_t j = 0; j < k; j++)
            memcpy(tail + j * rem, a + j * n + body, (size_t)rem * sizeof(double));
        for (int64_t j = 1; j < k; j++)
            memmove(a + j * body, a + j * n, (size_t)body * sizeof(double));
        transpose_blocks(a, nb, k, blk, tile, seen);
        turn_tiles(a, nb, blk, k, 1, tile);
        for (int64_t i = 0; i < rem; i++)
            for (int64_t j = 0; j < k; j++)
                a[(body + i) * k + j] = tail[j * rem + i];
    } else {
        for (int64_t i = 0; i < rem; i++)
            for (int64_t j = 0; j < k; j++)
                tail[j * rem + i] = a[(body + i) * k + j];
        turn_tiles(a, nb, blk, k, 0, tile);
        transpose_blocks(a, k, nb, blk, tile, seen);
        for (int64_t j = k - 1; j >= 1; j--)
            memmove(a + j * n, a + j * body, (size_t)body * sizeof(double));
        for (int64_t j = 0; j < k; j++)
            memcpy(a + j * n + body, tail + j * rem, (size_t)rem * sizeof(double));
    }
    tm_free(tail);
    tm_free(tile);
    tm_free(seen);
    return TM_OK;
}
