/* test_alloc.c - the replaceable allocator and the failing-allocator helper. */
#include <stdint.h>

#include "core/alloc.h"
#include "harness.h"
#include "testalloc.h"

TM_TEST(alloc_overflow_is_refused)
{
    /* Refused sizes: nothing is allocated, so nothing leaks. */
    // cppcheck-suppress leakReturnValNotUsed
    CHECK(tm_mallocarray(SIZE_MAX / 2, 4) == NULL);
    // cppcheck-suppress leakReturnValNotUsed
    CHECK(tm_calloc(SIZE_MAX / 8, 16) == NULL);
    void *p = tm_malloc(8);
    REQUIRE(p != NULL);
    // cppcheck-suppress leakReturnValNotUsed
    CHECK(tm_reallocarray(p, SIZE_MAX / 2, 4) == NULL);
    tm_free(p);
    char *s = tm_strndup("abcdef", 3);
    CHECK_STR_EQ(s, "abc");
    tm_free(s);
}

TM_TEST(alloc_failing_allocator_fails_nth_call)
{
    tm_testalloc_fail_at(2);
    void *a = tm_malloc(16);
    void *b = tm_malloc(16);
    void *c = tm_malloc(16);
    tm_testalloc_reset();
    CHECK(a != NULL);
    CHECK(b == NULL);
    CHECK(c != NULL);
    tm_free(a);
    tm_free(c);
    CHECK_INT_EQ(tm_testalloc_outstanding(), 0);
}
