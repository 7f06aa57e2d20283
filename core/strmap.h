/*
 * strmap.h - a string-interning hash table: byte strings to dense ids
 * 0, 1, 2, ... in order of first insertion.
 *
 * Open addressing with linear probing; each slot keeps 32 bits of the hash
 * beside the id so that most probes never touch the key bytes. Keys are
 * copied into one growing pool (no allocation per key). The number of keys
 * is capped (curl's dynbuf "toobig"): past max_keys, intern fails with
 * TM_ETOOBIG.
 * Thread-safety: one owner at a time.
 */
#ifndef TM_STRMAP_H
#define TM_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct tm_strmap {
    uint64_t *slots; /* (hash >> 32) << 32 | (id + 1); 0 = empty */
    size_t mask;     /* slots - 1, a power of two minus one */
    char *pool;      /* the keys, back to back, not NUL-terminated */
    size_t pool_len, pool_cap;
    uint64_t *offsets; /* n + 1 used: key id is pool[offsets[id] .. offsets[id+1]) */
    int64_t n, ids_cap, max_keys;
};

/* Empty map holding at most max_keys keys (> 0). Release with
 * tm_strmap_release, also after a failure. */
tm_status tm_strmap_init(struct tm_strmap *m, int64_t max_keys);
void tm_strmap_release(struct tm_strmap *m);

/* The id of key s[0..len), inserting a copy if new (*added = 1, else 0).
 * TM_ENOMEM or TM_ETOOBIG leave the map as it was. */
tm_status tm_strmap_intern(struct tm_strmap *m, const char *s, size_t len, int64_t *id,
                           int *added);

/* The id of s, or -1. */
int64_t tm_strmap_find(const struct tm_strmap *m, const char *s, size_t len);

/* Key id as a pointer into the pool (valid until the next intern) and length. */
static inline const char *tm_strmap_key(const struct tm_strmap *m, int64_t id, size_t *len)
{
    *len = (size_t)(m->offsets[id + 1] - m->offsets[id]);
    return m->pool + m->offsets[id];
}

/* A 64-bit hash of s (exposed for tests). */
uint64_t tm_strmap_hash(const char *s, size_t len);

#endif
