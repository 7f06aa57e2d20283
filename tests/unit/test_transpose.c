/* test_transpose.c - in-place transposition against the plain definition. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/numerics/transpose.h"
#include "harness.h"
#include "testalloc.h"

/* Distinct values, so that any misplaced element shows. */
static double *numbered(int64_t count)
{
    double *a = malloc((size_t)count * sizeof(double) + 1);
    for (int64_t i = 0; i < count; i++)
        a[i] = (double)i + 0.5;
    return a;
}

TM_TEST(transpose_inplace_matches_definition)
{
    /* Tall and wide, below, at and past a whole number of the 256-row runs,
     * with and without a remainder, and degenerate shapes. */
    static const int64_t shapes[][2] = {{0, 3},     {3, 0},     {1, 7},     {7, 1},     {3, 3},
                                        {5, 2},     {256, 2},   {257, 3},   {1000, 20}, {20, 1000},
                                        {255, 300}, {300, 255}, {513, 256}, {4096, 7},  {7, 4096}};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        int64_t rows = shapes[s][0], cols = shapes[s][1];
        double *a = numbered(rows * cols),
               *want = malloc((size_t)(rows * cols) * sizeof(double) + 1);
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++)
                want[j + i * cols] = a[i + j * rows];
        char err[TM_ERR_SIZE] = "";
        CHECK_INT_EQ(tm_transpose_inplace(a, rows, cols, err), TM_OK);
        CHECK(memcmp(a, want, (size_t)(rows * cols) * sizeof(double)) == 0);
        /* and back */
        CHECK_INT_EQ(tm_transpose_inplace(a, cols, rows, err), TM_OK);
        for (int64_t q = 0; q < rows * cols; q++)
            if (a[q] != (double)q + 0.5) {
                CHECK(a[q] == (double)q + 0.5);
                break;
            }
        free(a);
        free(want);
    }
}

TM_TEST(transpose_inplace_reports_enomem_unchanged)
{
    int64_t rows = 600, cols = 5;
    double *a = numbered(rows * cols);
    char err[TM_ERR_SIZE] = "";
    for (long n = 1;; n++) {
        tm_testalloc_fail_at(n);
        tm_status st = tm_transpose_inplace(a, rows, cols, err);
        long calls = tm_testalloc_calls();
        tm_testalloc_reset();
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (st == TM_OK) {
            CHECK(n > calls); /* succeeded only once no allocation failed */
            break;
        }
        CHECK_INT_EQ(st, TM_ENOMEM);
        for (int64_t q = 0; q < rows * cols; q++)
            if (a[q] != (double)q + 0.5) {
                CHECK(a[q] == (double)q + 0.5);
                break;
            }
    }
    CHECK(a[1] == (double)rows + 0.5); /* a[0, 1] of the transpose */
    free(a);
}
