/* test_mmio.c - Matrix Market write and read: exact round trip, SciPy's
 * variants (symmetric, pattern, duplicates, comments), errors by line, and
 * truncation at every offset. */
#include <stdlib.h>
#include <string.h>

#include "api/mmio.h"
#include "core/alloc.h"
#include "harness.h"
#include "testalloc.h"

static tm_status read_str(const char *s, struct tm_csr *m, struct tm_api_error *e)
{
    return tm_mmio_read(s, strlen(s), m, e);
}

TM_TEST(mmio_round_trip)
{
    /* 3 x 4 with an empty row and values that need all 17 digits. */
    struct tm_csr m, back;
    char err[TM_ERR_SIZE];
    struct tm_api_error e;
    REQUIRE(tm_csr_init(&m, 3, 4, 4, err) == TM_OK);
    int64_t indptr[] = {0, 2, 2, 4};
    int32_t indices[] = {0, 3, 1, 2};
    double data[] = {0.1, 1.0 / 3.0, 1e-300, 0.30000000000000004};
    memcpy(m.indptr, indptr, sizeof(indptr));
    memcpy(m.indices, indices, sizeof(indices));
    memcpy(m.data, data, sizeof(data));

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    REQUIRE(f);
    REQUIRE(tm_mmio_write(f, &m, err) == TM_OK);
    fclose(f);
    CHECK(strncmp(buf, "%%MatrixMarket matrix coordinate real general\n", 46) == 0);
    CHECK(strstr(buf, "\n3 4 4\n1 1 0.10000000000000001\n") != NULL);

    REQUIRE(tm_mmio_read(buf, len, &back, &e) == TM_OK);
    CHECK_INT_EQ(back.n_rows, 3);
    CHECK_INT_EQ(back.n_cols, 4);
    REQUIRE(tm_csr_nnz(&back) == 4);
    CHECK(memcmp(back.indptr, indptr, sizeof(indptr)) == 0);
    CHECK(memcmp(back.indices, indices, sizeof(indices)) == 0);
    for (int i = 0; i < 4; i++)
        CHECK(back.data[i] == data[i]);
    CHECK_INT_EQ(tm_csr_validate(&back, err), TM_OK);
    free(buf);
    tm_csr_release(&back);
    tm_csr_release(&m);
}

TM_TEST(mmio_read_variants)
{
    struct tm_csr m;
    struct tm_api_error e;
    char err[TM_ERR_SIZE];
    /* Unsorted, duplicates summed, comments and blank lines, CRLF, case. */
    REQUIRE(read_str("%%matrixmarket MATRIX Coordinate Real General\r\n"
                     "% a comment\r\n"
                     "\r\n"
                     "2 3 4\r\n"
                     "2 3 1.5\r\n"
                     "1 2 -1e-3\r\n"
                     "% between entries\n"
                     "2 3 0.5\n"
                     "1 1 7\n",
                     &m, &e) == TM_OK);
    CHECK_INT_EQ(tm_csr_nnz(&m), 3);
    CHECK_INT_EQ(m.indptr[1], 2);
    CHECK(m.indices[0] == 0 && m.data[0] == 7);
    CHECK(m.indices[1] == 1 && m.data[1] == -1e-3);
    CHECK(m.indices[2] == 2 && m.data[2] == 2.0);
    CHECK_INT_EQ(tm_csr_validate(&m, err), TM_OK);
    tm_csr_release(&m);

    REQUIRE(read_str("%%MatrixMarket matrix coordinate integer symmetric\n3 3 3\n1 1 4\n3 1 2\n"
                     "3 2 5\n",
                     &m, &e) == TM_OK);
    CHECK_INT_EQ(tm_csr_nnz(&m), 5);
    CHECK(m.indptr[1] == 2 && m.indices[1] == 2 && m.data[1] == 2); /* mirrored (1,3) */
    CHECK_INT_EQ(tm_csr_validate(&m, err), TM_OK);
    tm_csr_release(&m);

    REQUIRE(read_str("%%MatrixMarket matrix coordinate pattern general\n2 2 2\n1 2\n2 1\n", &m,
                     &e) == TM_OK);
    CHECK(m.data[0] == 1.0 && m.data[1] == 1.0);
    tm_csr_release(&m);

    REQUIRE(read_str("%%MatrixMarket matrix coordinate real general\n0 0 0\n", &m, &e) == TM_OK);
    CHECK_INT_EQ(m.n_rows, 0);
    tm_csr_release(&m);
}

TM_TEST(mmio_read_errors)
{
    static const struct {
        const char *in;
        tm_status status;
        int64_t line;
        const char *message;
    } cases[] = {
        {"", TM_EPARSE, 1, "empty input"},
        {"3 3 1\n1 1 1\n", TM_EPARSE, 1, "expected \"%%MatrixMarket"},
        {"%%MatrixMarket matrix array real general\n", TM_EPARSE, 1, "coordinate"},
        {"%%MatrixMarket matrix coordinate complex general\n", TM_EPARSE, 1, "field"},
        {"%%MatrixMarket matrix coordinate real hermitian\n", TM_EPARSE, 1, "symmetry"},
        {"%%MatrixMarket matrix coordinate real general\n", TM_EPARSE, 1, "size line"},
        {"%%MatrixMarket matrix coordinate real general\n2 2\n", TM_EPARSE, 2, "rows columns"},
        {"%%MatrixMarket matrix coordinate real general\n-2 2 1\n1 1 1\n", TM_EPARSE, 2,
         "rows columns"},
        {"%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1\n", TM_EPARSE, 3, "fewer"},
        {"%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 1\n2 2 2\n", TM_EPARSE, 4,
         "more entries"},
        {"%%MatrixMarket matrix coordinate real general\n2 2 1\n3 1 1\n", TM_ERANGE, 3, "outside"},
        {"%%MatrixMarket matrix coordinate real general\n2 2 1\n1 0 1\n", TM_ERANGE, 3, "outside"},
        {"%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 nan\n", TM_ERANGE, 3,
         "not finite"},
        {"%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 1x\n", TM_EPARSE, 3,
         "invalid value"},
        {"%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1\n", TM_EPARSE, 3,
         "row column value"},
        {"%%MatrixMarket matrix coordinate real symmetric\n2 3 1\n1 1 1\n", TM_EPARSE, 2, "square"},
        {"%%MatrixMarket matrix coordinate real general\n2 3000000000 1\n1 1 1\n", TM_ETOOBIG, 2,
         "columns"},
        {"%%MatrixMarket matrix coordinate real general\n200000000 3 1\n1 1 1\n", TM_ETOOBIG, 2,
         "rows"},
        {"%%MatrixMarket matrix coordinate real general\n2 2 1000000\n1 1 1\n", TM_EPARSE, 2,
         "more entries declared"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tm_csr m;
        struct tm_api_error e;
        tm_status st = read_str(cases[i].in, &m, &e);
        if (st != cases[i].status || e.line != cases[i].line ||
            !strstr(e.message, cases[i].message))
            tm_test_fail(t, __FILE__, __LINE__, "case %zu: %s line %lld \"%s\"", i,
                         tm_status_name(st), (long long)e.line, e.message);
        CHECK(m.indptr == NULL);
        tm_csr_release(&m);
    }
}

TM_TEST(mmio_truncated_and_allocation_failures)
{
    static const char in[] = "%%MatrixMarket matrix coordinate real general\n% c\n3 3 4\n"
                             "1 1 1.5\n3 3 2\n2 1 -4\n1 3 0.25\n";
    size_t len = strlen(in);
    for (size_t n = 0; n <= len; n++) {
        struct tm_csr m;
        struct tm_api_error e;
        char *copy = malloc(n ? n : 1);
        memcpy(copy, in, n);
        tm_status st = tm_mmio_read(copy, n, &m, &e);
        CHECK(st == TM_OK || st == TM_EPARSE || st == TM_ERANGE);
        tm_csr_release(&m);
        free(copy);
    }
    for (long n = 1; n < 100; n++) {
        struct tm_csr m;
        struct tm_api_error e;
        tm_testalloc_fail_at(n);
        tm_status st = tm_mmio_read(in, len, &m, &e);
        tm_csr_release(&m);
        tm_testalloc_reset();
        CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
        if (st == TM_OK)
            break;
        CHECK_INT_EQ(st, TM_ENOMEM);
    }
    tm_alloc_set_methods(NULL);
}
