/* alloc.c - the replaceable allocator (see alloc.h). */
#include "alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

static const struct tm_alloc_methods libc_methods = {malloc, realloc, free};

/*
 * The one global in core/: set once before threads start, read-only after,
 * as SQLite's sqlite3_config(SQLITE_CONFIG_MALLOC) is.
 */
static const struct tm_alloc_methods *methods = &libc_methods;

void tm_alloc_set_methods(const struct tm_alloc_methods *m)
{
    methods = m ? m : &libc_methods;
}

void *tm_malloc(size_t size)
{
    return methods->malloc(size ? size : 1);
}

void *tm_mallocarray(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    return tm_malloc(n * size);
}

void *tm_calloc(size_t n, size_t size)
{
    void *p = tm_mallocarray(n, size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *tm_realloc(void *ptr, size_t size)
{
    return methods->realloc(ptr, size ? size : 1);
}

void *tm_reallocarray(void *ptr, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    return tm_realloc(ptr, n * size);
}

void tm_free(void *ptr)
{
    if (ptr)
        methods->free(ptr);
}

void tm_alloc_trim(void)
{
#ifdef __GLIBC__
    if (methods == &libc_methods)
        malloc_trim(0);
#endif
}

char *tm_strndup(const char *s, size_t len)
{
    char *copy = tm_malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}
