/* alloc.c - the replaceable allocator (see alloc.h). */
#include "core/alloc.h"

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

/* Under ASan, TSan, MSan and LSan the runtime's malloc replaces glibc's,
 * whose heap stays empty and uninitialised; glibc's malloc_trim (which no
 * sanitizer intercepts) initialises it lazily without a lock, so two threads
 * making the first calls crash (SEGV in mtrim, or an attached_threads
 * assertion at thread exit). In such a build tm_alloc_trim does nothing:
 * there is nothing of ours in glibc's heap. gcc's -fsanitize=leak defines no
 * macro, so the Makefile defines TM_SANITIZER_MALLOC for every SANITIZE
 * build. Evidence: bench/NOTES.md, "malloc_trim under sanitizers". */
#if !defined(TM_SANITIZER_MALLOC)
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TM_SANITIZER_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer) || __has_feature(leak_sanitizer)
#define TM_SANITIZER_MALLOC 1
#endif
#endif
#endif

void tm_alloc_trim(void)
{
#if defined(__GLIBC__) && !defined(TM_SANITIZER_MALLOC)
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
