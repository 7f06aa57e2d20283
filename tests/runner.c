/*
 * runner.c - runs every registered test, or those whose name contains one of
 * the arguments, and ends with "N passed, N failed, N skipped".
 */
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"

#define TM_TEST_DECLARE(name) TM_TEST(name);
#include "test-list.h"
#undef TM_TEST_DECLARE

struct test_entry {
    const char *name;
    void (*fn)(struct tm_test_ctx *);
};

static const struct test_entry tests[] = {
#define TM_TEST_DECLARE(name) {#name, tm_test_##name},
#include "test-list.h"
#undef TM_TEST_DECLARE
};

void tm_test_fail(struct tm_test_ctx *t, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "  %s:%d: %s: ", file, line, t->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    t->failures++;
}

void tm_test_skip(struct tm_test_ctx *t, const char *reason)
{
    t->skipped = 1;
    snprintf(t->skip_reason, sizeof(t->skip_reason), "%s", reason);
}

const char *tm_test_fixture(const char *name)
{
    static _Thread_local char path[4096];
    const char *dir = getenv("TM_FIXTURES");
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/fixtures", name);
    return path;
}

const char *tm_test_bindir(void)
{
    const char *dir = getenv("TM_BINDIR");
    return dir ? dir : "build";
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int selected(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i]))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0, skipped = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (!selected(tests[i].name, argc, argv))
            continue;
        struct tm_test_ctx t = {.name = tests[i].name};
        double started = now_seconds();
        tests[i].fn(&t);
        double took = now_seconds() - started;
        if (t.failures) {
            printf("FAIL %s (%.2f s)\n", t.name, took);
            failed++;
        } else if (t.skipped) {
            printf("skip %s: %s\n", t.name, t.skip_reason);
            skipped++;
        } else {
            printf("ok   %s (%.2f s)\n", t.name, took);
            passed++;
        }
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
