/* testalloc.c - the counting, failing allocator of testalloc.h. */
#include "testalloc.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "core/alloc.h"

static atomic_long calls, fail_at, outstanding;

static void *counting_malloc(size_t size)
{
    long n = atomic_fetch_add(&calls, 1) + 1;
    if (n == atomic_load(&fail_at))
        return NULL;
    void *p = malloc(size);
    if (p)
        atomic_fetch_add(&outstanding, 1);
    return p;
}

static void *counting_realloc(void *ptr, size_t size)
{
    long n = atomic_fetch_add(&calls, 1) + 1;
    if (n == atomic_load(&fail_at))
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
