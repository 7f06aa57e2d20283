/*
 * alloc.h - the one replaceable allocator that core/, api/ and server/ use.
 *
 * Tests swap in an allocator that fails the Nth call to check that every
 * failure path releases what it took and reports TM_ENOMEM.
 * Thread-safety: tm_alloc_set_methods must be called before any thread that
 * allocates starts (like cJSON's hooks); the allocation functions themselves
 * are as thread-safe as the installed methods (libc's are).
 */
#ifndef TM_CORE_ALLOC_H
#define TM_CORE_ALLOC_H

#include <stddef.h>

struct tm_alloc_methods {
    void *(*malloc)(size_t size);
    void *(*realloc)(void *ptr, size_t size);
    void (*free)(void *ptr);
};

/* methods: borrowed, must outlive every allocation; NULL restores libc's. */
void tm_alloc_set_methods(const struct tm_alloc_methods *methods);

void *tm_malloc(size_t size);
/* Zeroed n * size bytes; NULL on overflow as well as on exhaustion. */
void *tm_calloc(size_t n, size_t size);
/* n * size bytes, NULL on overflow. */
void *tm_mallocarray(size_t n, size_t size);
void *tm_realloc(void *ptr, size_t size);
/* ptr * n * size bytes, NULL (ptr untouched) on overflow. */
void *tm_reallocarray(void *ptr, size_t n, size_t size);
void tm_free(void *ptr);
/* Gives memory that is free but still held by libc's allocator back to the
 * system (glibc: malloc_trim), between the phases of a long computation:
 * the process's policy (server/main.c) keeps freed blocks of tens of MB for
 * reuse, and those would otherwise add to the next phase's peak. A no-op
 * with other methods, another libc, or a sanitizer's malloc. */
void tm_alloc_trim(void);
/* A tm_malloc'd copy of len bytes plus a terminating NUL; free with tm_free. */
char *tm_strndup(const char *s, size_t len);

#endif
