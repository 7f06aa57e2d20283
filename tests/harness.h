/*
 * harness.h - the tiny test harness. A test is
 *
 *     TM_TEST(csr_transpose) { CHECK(...); }
 *
 * in any tests/unit/test_*.c or tests/integration/test_*.c; the Makefile
 * scans those files for TM_TEST(...) and generates the one table the runner
 * walks (libuv's test-list.h, generated so that no one edits it by hand).
 * A failing CHECK records the failure and the test goes on; REQUIRE returns.
 */
#ifndef TM_TESTS_HARNESS_H
#define TM_TESTS_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <string.h>

struct tm_test_ctx {
    const char *name;
    int failures;
    int skipped;
    char skip_reason[256];
};

void tm_test_fail(struct tm_test_ctx *t, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void tm_test_skip(struct tm_test_ctx *t, const char *reason);
/* Absolute path of a fixture under tests/fixtures (static buffer per call site use). */
const char *tm_test_fixture(const char *name);
/* The build directory holding the topicd binary (for integration tests). */
const char *tm_test_bindir(void);

/* The prototype keeps -Wmissing-prototypes quiet: tests are external so the
 * generated table can reach them. */
#define TM_TEST(name)                                                                              \
    void tm_test_##name(struct tm_test_ctx *t);                                                    \
    void tm_test_##name(struct tm_test_ctx *t)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            tm_test_fail(t, __FILE__, __LINE__, "%s", #cond);                                      \
    } while (0)

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            tm_test_fail(t, __FILE__, __LINE__, "required: %s", #cond);                            \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_INT_EQ(a, b)                                                                         \
    do {                                                                                           \
        long long tm__a = (long long)(a), tm__b = (long long)(b);                                  \
        if (tm__a != tm__b)                                                                        \
            tm_test_fail(t, __FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, tm__a, tm__b);   \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                                         \
    do {                                                                                           \
        const char *tm__a = (a), *tm__b = (b);                                                     \
        if (!tm__a || !tm__b || strcmp(tm__a, tm__b) != 0)                                         \
            tm_test_fail(t, __FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b,              \
                         tm__a ? tm__a : "(null)", tm__b ? tm__b : "(null)");                      \
    } while (0)

/* |a - b| <= tol * max(1, |b|): relative for large values, absolute near 0. */
#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double tm__a = (a), tm__b = (b), tm__s = fabs(tm__b) > 1.0 ? fabs(tm__b) : 1.0;            \
        if (!(fabs(tm__a - tm__b) <= (tol)*tm__s))                                                 \
            tm_test_fail(t, __FILE__, __LINE__, "%s ~= %s: %.17g vs %.17g (tol %g)", #a, #b,       \
                         tm__a, tm__b, (double)(tol));                                             \
    } while (0)

#define SKIP(reason)                                                                               \
    do {                                                                                           \
        tm_test_skip(t, reason);                                                                   \
        return;                                                                                    \
    } while (0)

#endif
