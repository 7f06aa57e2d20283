/*
 * strmap.h - a string-interning hash table: byte strings to dense ids
 * 0, 1, 2, ... in order of first insertion, each with one 64-bit word of
 * caller data.
 *
 * Open addressing with linear probing over 8-byte slots (24 bits of hash,
 * the key's length saturated at 255, and the id), with the key's first 8
 * bytes and the caller's word in arrays indexed by id. On 20 Newsgroups the
 * slots of one thread (2 MB) fit in L2 while wider slots did not, and ids come
 * in order of first appearance, so the frequent terms' per-id data stays
 * together in cache. A key of up to 8 bytes is compared without reading the
 * pool. Keys are copied into one growing pool (no allocation per key). The
 * number of keys is capped (curl's dynbuf "toobig"): past max_keys, intern
 * fails with TM_ETOOBIG.
 * Thread-safety: one owner at a time.
 */
#ifndef TM_STRMAP_H
#define TM_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct tm_strmap_slot {
    uint32_t tag; /* hash bits 63..40 << 8 | 0x100 | min(len, 255); 0 = empty slot */
    uint32_t id;
};

struct tm_strmap {
    struct tm_strmap_slot *slots;
    size_t mask; /* number of slots - 1; slots are a power of two */
    char *pool;  /* the keys, back to back, not NUL-terminated */
    size_t pool_len, pool_cap;
    uint64_t *offsets; /* key id is pool[offsets[id] .. offsets[id+1]) */
    uint64_t *heads;   /* per id: the key's first 8 bytes, little-endian, zero-padded */
    uint64_t *user;    /* per id: the caller's word, 0 for a new key */
    int64_t n, ids_cap, max_keys;
};

/* Empty map holding at most max_keys keys (> 0). Release with
 * tm_strmap_release, also after a failure. */
tm_status tm_strmap_init(struct tm_strmap *m, int64_t max_keys);
void tm_strmap_release(struct tm_strmap *m);

/*
 * The id of key s[0..len) in *id, inserting a copy if new (*added = 1, else
 * 0); m->user[*id] is the caller's. TM_ENOMEM or TM_ETOOBIG leave the map as
 * it was.
 */
tm_status tm_strmap_intern(struct tm_strmap *m, const char *s, size_t len, uint32_t *id,
                           int *added);

/* tm_strmap_intern with h == tm_strmap_hash(s, len) computed beforehand. */
tm_status tm_strmap_intern_hashed(struct tm_strmap *m, const char *s, size_t len, uint64_t h,
                                  uint32_t *id, int *added);

/* Starts loading the slot where a key of hash h would be looked up first:
 * the vectorizer hashes a batch of tokens, prefetches, then interns them, so
 * that the cache misses of a batch overlap. */
static inline void tm_strmap_prefetch(const struct tm_strmap *m, uint64_t h)
{
    __builtin_prefetch(&m->slots[h & m->mask]);
}

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
