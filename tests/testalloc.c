/* testalloc.c - the counting, failing allocator of testalloc.h. */
#include "testalloc.h"

#include <execinfo.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/alloc.h"

static atomic_long calls, fail_at, outstanding;
static atomic_int marked_only;
static _Thread_local int marked;

/* 1 when this allocation is the one to fail; numbers it when it counts. */
static int fails_now(void)
{
    if (atomic_load(&marked_only) && !marked)
        return 0;
    long n = atomic_fetch_add(&calls, 1) + 1;
    if (n != atomic_load(&fail_at))
        return 0;
    /* TM_TESTALLOC_TRACE=1: where each failed allocation was made, on
     * stderr (addr2line or gdb turn the addresses into lines). */
    if (getenv("TM_TESTALLOC_TRACE")) {
        void *frames[16];
        int depth = backtrace(frames, 16);
        backtrace_symbols_fd(frames, depth, 2);
        if (write(2, "--\n", 3) != 3)
            return 1;
    }
    return 1;
}

static void *counting_malloc(size_t size)
{
    if (fails_now())
        return NULL;
    void *p = malloc(size);
    if (p)
        atomic_fetch_add(&outstanding, 1);
    return p;
}

static void *counting_realloc(void *ptr, size_t size)
{
    if (fails_now())
        return NULL;
    void *p = realloc(ptr, size);
    if (p && !ptr)
        atomic_fetch_add(&outstanding, 1);
    return p;
}

static void counting_free(void *ptr)
{
    if (ptr)
        atomic_fetch_sub(&outstanding, 1);
    free(ptr);
}

static const struct tm_alloc_methods counting = {counting_malloc, counting_realloc, counting_free};

void tm_testalloc_fail_at(long n)
{
    atomic_store(&calls, 0);
    atomic_store(&fail_at, n);
    atomic_store(&outstanding, 0);
    tm_alloc_set_methods(&counting);
}

void tm_testalloc_reset(void)
{
    /* The counting allocator stays installed, failing nothing, so frees of
     * blocks taken under it keep the outstanding count exact. */
    atomic_store(&fail_at, 0);
}

long tm_testalloc_outstanding(void)
{
    return atomic_load(&outstanding);
}

long tm_testalloc_calls(void)
{
    return atomic_load(&calls);
}

void tm_testalloc_arm(long n)
{
    atomic_store(&fail_at, 0);
    atomic_store(&calls, 0);
    atomic_store(&fail_at, n);
}

void tm_testalloc_marked_only(int on)
{
    atomic_store(&marked_only, on);
}

void tm_testalloc_mark_thread(void)
{
    marked = 1;
}
