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
        /* Each finite, their sum not (found by tests/fuzz/fuzz_mmio.c). */
        {"%%MatrixMarket matrix coordinate real general\n2 2 3\n1 2 1e308\n2 1 1\n1 2 1e308\n",
         TM_ERANGE, 5, "row 1, column 2 sum to a value that is not finite"},
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

/* ---- the streaming reader (tm_mmio_read_file) ---- */

/* A stream over in[0, n): fmemopen, or a temporary file when n is 0. */
static FILE *stream_of(const char *in, size_t n)
{
    if (n)
        return fmemopen((void *)in, n, "r");
    return tmpfile();
}

static int same_csr(const struct tm_csr *a, const struct tm_csr *b)
{
    if (a->n_rows != b->n_rows || a->n_cols != b->n_cols || tm_csr_nnz(a) != tm_csr_nnz(b))
        return 0;
    int64_t nnz = tm_csr_nnz(a);
    return memcmp(a->indptr, b->indptr, (size_t)(a->n_rows + 1) * sizeof(int64_t)) == 0 &&
           memcmp(a->indices, b->indices, (size_t)nnz * sizeof(int32_t)) == 0 &&
           memcmp(a->data, b->data, (size_t)nnz * sizeof(double)) == 0;
}

/* Reads in[0, n) through a stream, chunk bytes at a time, and checks that the
 * result (matrix, or status, line, offset and message) is tm_mmio_read's. */
static int file_agrees(const char *in, size_t n, int64_t size, size_t chunk)
{
    struct tm_csr want, got;
    struct tm_api_error we, ge;
    tm_status ws = tm_mmio_read(in, n, &want, &we);
    FILE *f = stream_of(in, n);
    if (!f)
        return 0;
    tm_status gs = tm_mmio_read_file(f, size, chunk, &got, &ge);
    fclose(f);
    int ok = gs == ws && (ws == TM_OK ? same_csr(&want, &got)
                                      : ge.line == we.line && ge.offset == we.offset &&
                                            !strcmp(ge.message, we.message) &&
                                            !strcmp(ge.field, we.field) && got.indptr == NULL);
    tm_csr_release(&want);
    tm_csr_release(&got);
    return ok;
}

static const char *const stream_inputs[] = {
    /* Comments, blank lines, CRLF, rows out of order, duplicates. */
    "%%matrixmarket MATRIX Coordinate Real General\r\n% a comment\r\n\r\n3 4 6\r\n"
    "2 3 1.5\r\n1 2 -1e-3\r\n% between entries\n2 3 0.5\n1 1 7\n3 4 2.25\n1 4 0.125",
    /* In row order, as topicd and SciPy write. */
    "%%MatrixMarket matrix coordinate real general\n%\n3 3 4\n1 1 0.10000000000000001\n"
    "1 3 0.33333333333333331\n3 2 1e-300\n3 3 4\n",
    "%%MatrixMarket matrix coordinate integer symmetric\n3 3 3\n1 1 4\n3 1 2\n3 2 5\n",
    "%%MatrixMarket matrix coordinate pattern general\n2 2 2\n1 2\n2 1\n\n%\n",
    "%%MatrixMarket matrix coordinate real general\n0 0 0\n",
};

/* Every chunk size from 1 byte (a line split after every byte) to past the
 * end, with and without the input's size. */
TM_TEST(mmio_file_chunk_boundaries)
{
    for (size_t i = 0; i < sizeof(stream_inputs) / sizeof(stream_inputs[0]); i++) {
        const char *in = stream_inputs[i];
        size_t len = strlen(in);
        for (size_t chunk = 1; chunk <= len + 1; chunk++) {
            if (!file_agrees(in, len, (int64_t)len, chunk))
                tm_test_fail(t, __FILE__, __LINE__, "input %zu, chunk %zu", i, chunk);
            if (!file_agrees(in, len, -1, chunk))
                tm_test_fail(t, __FILE__, __LINE__, "input %zu, chunk %zu, no size", i, chunk);
        }
    }
}

/* Each prefix of each input, at a few chunk sizes: the same answer as the
 * in-memory reader (with the size known; without it a count the input cannot
 * hold shows as "fewer entries" at the end). */
TM_TEST(mmio_file_truncated)
{
    static const size_t chunks[] = {1, 2, 3, 7, 64};
    for (size_t i = 0; i < sizeof(stream_inputs) / sizeof(stream_inputs[0]); i++) {
        const char *in = stream_inputs[i];
        size_t len = strlen(in);
        for (size_t n = 0; n <= len; n++) {
            for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
                if (!file_agrees(in, n, (int64_t)n, chunks[c]))
                    tm_test_fail(t, __FILE__, __LINE__, "input %zu cut at %zu, chunk %zu", i, n,
                                 chunks[c]);
                struct tm_csr m;
                struct tm_api_error e;
                FILE *f = stream_of(in, n);
                REQUIRE(f);
                tm_status st = tm_mmio_read_file(f, -1, chunks[c], &m, &e);
                fclose(f);
                CHECK(st == TM_OK || st == TM_EPARSE || st == TM_ERANGE);
                if (st != TM_OK)
                    CHECK(m.indptr == NULL && e.line >= 1);
                tm_csr_release(&m);
            }
        }
    }
    /* The last entry cut: named by the last line read, as tm_mmio_read does. */
    static const char cut[] = "%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1\n";
    struct tm_csr m;
    struct tm_api_error e;
    FILE *f = stream_of(cut, strlen(cut));
    REQUIRE(f);
    CHECK_INT_EQ(tm_mmio_read_file(f, -1, 5, &m, &e), TM_EPARSE);
    fclose(f);
    CHECK_INT_EQ(e.line, 3);
    CHECK(strstr(e.message, "fewer entries") != NULL);
    tm_csr_release(&m);
}

/* Many entries in random order with duplicates and long rows: the bucket
 * pass and the row sorts, against a dense sum. */
TM_TEST(mmio_file_unordered)
{
    enum { ROWS = 37, COLS = 53, N = 4000 };
    static double dense[ROWS][COLS];
    static char text[N * 40 + 128];
    memset(dense, 0, sizeof(dense));
    size_t len = (size_t)snprintf(text, sizeof(text),
                                  "%%%%MatrixMarket matrix coordinate real general\n%d %d %d\n",
                                  ROWS, COLS, N);
    unsigned s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 1103515245u + 12345u;
        int r = (int)((s >> 8) % ROWS), c;
        s = s * 1103515245u + 12345u;
        c = (int)((s >> 8) % (i % 3 ? COLS : 5)); /* many duplicates in the first columns */
        int v = (int)(s % 7) + 1;                 /* integers: any summation order is exact */
        dense[r][c] += v;
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%d %d %d\n", r + 1, c + 1, v);
    }
    for (int sized = 0; sized < 2; sized++) {
        struct tm_csr m;
        struct tm_api_error e;
        char err[TM_ERR_SIZE];
        FILE *f = fmemopen(text, len, "r");
        REQUIRE(f);
        REQUIRE(tm_mmio_read_file(f, sized ? (int64_t)len : -1, 100, &m, &e) == TM_OK);
        fclose(f);
        CHECK_INT_EQ(tm_csr_validate(&m, err), TM_OK);
        int64_t want = 0, bad = 0;
        for (int r = 0; r < ROWS; r++)
            for (int c = 0; c < COLS; c++)
                want += dense[r][c] != 0;
        CHECK_INT_EQ(tm_csr_nnz(&m), want);
        for (int r = 0; r < ROWS; r++)
            for (int64_t p = m.indptr[r]; p < m.indptr[r + 1]; p++)
                bad += m.data[p] != dense[r][m.indices[p]];
        CHECK_INT_EQ(bad, 0);
        tm_csr_release(&m);
    }
}

/* The error table of mmio_read_errors, through a stream in 2-byte chunks. */
TM_TEST(mmio_file_errors)
{
    static const char *const cases[] = {
        "",
        "3 3 1\n1 1 1\n",
        "%%MatrixMarket matrix coordinate complex general\n",
        "%%MatrixMarket matrix coordinate real general\n",
        "%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1\n",
        "%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 1\n2 2 2\n",
        "%%MatrixMarket matrix coordinate real general\n2 2 1\n3 1 1\n",
        "%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 nan\n",
        "%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 1x\n",
        "%%MatrixMarket matrix coordinate real symmetric\n2 3 1\n1 1 1\n",
        "%%MatrixMarket matrix coordinate real general\n2 3000000000 1\n1 1 1\n",
        "%%MatrixMarket matrix coordinate real general\n200000000 3 1\n1 1 1\n",
        "%%MatrixMarket matrix coordinate real general\n2 2 1000000\n1 1 1\n",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (!file_agrees(cases[i], strlen(cases[i]), (int64_t)strlen(cases[i]), 2))
            tm_test_fail(t, __FILE__, __LINE__, "case %zu", i);
}

/* Lines longer than the window's 1 MiB: a comment is skipped, an entry line is
 * refused with its number; a read error is TM_EIO. */
TM_TEST(mmio_file_long_lines_and_read_errors)
{
    struct tm_csr m;
    struct tm_api_error e;
    FILE *f = tmpfile();
    REQUIRE(f);
    fputs("%%MatrixMarket matrix coordinate real general\n%", f);
    for (int i = 0; i < (3 << 20) / 8; i++)
        fputs("comment ", f);
    fputs("\n2 2 1\n2 1 0.5\n", f);
    rewind(f);
    REQUIRE(tm_mmio_read_file(f, -1, 0, &m, &e) == TM_OK);
    CHECK(tm_csr_nnz(&m) == 1 && m.indptr[1] == 0 && m.data[0] == 0.5);
    tm_csr_release(&m);
    fclose(f);

    f = tmpfile();
    REQUIRE(f);
    fputs("%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1", f);
    for (int i = 0; i < (2 << 20) / 8; i++)
        fputs("        ", f);
    fputs("1\n", f);
    rewind(f);
    CHECK_INT_EQ(tm_mmio_read_file(f, -1, 0, &m, &e), TM_ETOOBIG);
    CHECK_INT_EQ(e.line, 3);
    CHECK(strstr(e.message, "longer than 1 MiB") != NULL);
    CHECK(m.indptr == NULL);
    fclose(f);

    f = fopen("/dev/null", "w"); /* reading a stream open for writing fails */
    REQUIRE(f);
    CHECK_INT_EQ(tm_mmio_read_file(f, -1, 0, &m, &e), TM_EIO);
    CHECK(m.indptr == NULL);
    fclose(f);
}

TM_TEST(mmio_file_allocation_failures)
{
    const char *in = stream_inputs[0];
    size_t len = strlen(in);
    for (int sized = 0; sized < 2; sized++) {
        for (long n = 1; n < 200; n++) {
            struct tm_csr m;
            struct tm_api_error e;
            FILE *f = fmemopen((void *)in, len, "r");
            REQUIRE(f);
            tm_testalloc_fail_at(n);
            tm_status st = tm_mmio_read_file(f, sized ? (int64_t)len : -1, 3, &m, &e);
            tm_csr_release(&m);
            tm_testalloc_reset();
            fclose(f);
            CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
            if (st == TM_OK)
                break;
            CHECK_INT_EQ(st, TM_ENOMEM);
        }
    }
    tm_alloc_set_methods(NULL);
}
