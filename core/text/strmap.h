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
#ifndef TM_CORE_TEXT_STRMAP_H
#define TM_CORE_TEXT_STRMAP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/status.h"

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

/* Key id as a pointer into the pool (valid until the next intern) and length. */
static inline const char *tm_strmap_key(const struct tm_strmap *m, int64_t id, size_t *len)
{
    *len = (size_t)(m->offsets[id + 1] - m->offsets[id]);
    return m->pool + m->offsets[id];
}

/* The hash, tags and key heads: inline, because the vectorizer calls them
 * for every token. */
/* The first 8 bytes of s, zero-padded, with at most two (overlapping) loads:
 * no byte loop and no variable-length memcpy (a library call) per token. */
static inline uint64_t tm__strmap_head8(const char *s, size_t len)
{
    if (len >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        return w;
    }
    if (len >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + len - 4, 4);
        return (uint64_t)a | (uint64_t)b << (8 * (len - 4));
    }
    if (len >= 2) {
        uint16_t a, b;
        memcpy(&a, s, 2);
        memcpy(&b, s + len - 2, 2);
        return (uint64_t)a | (uint64_t)b << (8 * (len - 2));
    }
    return len ? (unsigned char)s[0] : 0;
}

/*
 * tm__strmap_head8 where 8 bytes from s may be read, whatever len (a
 * caller's buffer padded past its text): one load and a mask, with no
 * branch on the length, which varies from token to token unpredictably.
 * The same value as tm__strmap_head8 (the load is little-endian's order;
 * elsewhere it is tm__strmap_head8).
 */
static inline uint64_t tm__strmap_head8_padded(const char *s, size_t len)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t w;
    memcpy(&w, s, 8);
    return w & (len >= 8 ? ~0ull : (1ull << (8 * len)) - 1);
#else
    return tm__strmap_head8(s, len);
#endif
}

/* The hash; padded picks tm__strmap_head8_padded (a constant, folded). */
static inline __attribute__((always_inline)) uint64_t tm__strmap_hash(const char *s, size_t len,
                                                                      int padded)
{
    /* Multiply-xorshift over 8-byte words: tokens are short, so the cost
     * per call matters more than the quality on long keys. */
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)len;
    while (len > 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        s += 8;
        len -= 8;
    }
    uint64_t head = padded ? tm__strmap_head8_padded(s, len) : tm__strmap_head8(s, len);
    h = (h ^ head) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    h *= 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 32);
}

static inline uint64_t tm_strmap_hash(const char *s, size_t len)
{
    return tm__strmap_hash(s, len, 0);
}

/* tm_strmap_hash of s where 8 bytes past s + len may be read: the same
 * value, without tm__strmap_head8's branches on the length. */
static inline uint64_t tm_strmap_hash_padded(const char *s, size_t len)
{
    return tm__strmap_hash(s, len, 1);
}

static inline uint32_t tm__strmap_tag(uint64_t h, size_t len)
{
    /* Never 0: the length byte of an empty key is 0, so set a hash bit. */
    return (uint32_t)((h >> 40) << 8 | 0x100) | (uint32_t)(len < 255 ? len : 255);
}

static inline int tm__strmap_matches(const struct tm_strmap *m, const struct tm_strmap_slot *sl,
                                     uint32_t tag, uint64_t head, const char *s, size_t len)
{
    if (sl->tag != tag || m->heads[sl->id] != head)
        return 0;
    if (len <= 8)
        return 1; /* length and zero-padded bytes are all of the key */
    size_t klen;
    const char *k = tm_strmap_key(m, sl->id, &klen);
    return klen == len && memcmp(k + 8, s + 8, len - 8) == 0;
}

/* Inserts s (not present; h its hash, i the empty slot that ended the probe). */
tm_status tm__strmap_insert(struct tm_strmap *m, const char *s, size_t len, uint64_t h, size_t i,
                            uint32_t *id, int *added);

/* The lookup of the two below, with the key's head given. */
static inline __attribute__((always_inline)) tm_status
tm__strmap_intern_head(struct tm_strmap *m, const char *s, size_t len, uint64_t h, uint64_t head,
                       uint32_t *id, int *added)
{
    uint32_t tag = tm__strmap_tag(h, len);
    size_t i;
    for (i = (size_t)h & m->mask;; i = (i + 1) & m->mask) {
        const struct tm_strmap_slot *sl = &m->slots[i];
        if (!sl->tag)
            break;
        if (tm__strmap_matches(m, sl, tag, head, s, len)) {
            *id = sl->id;
            *added = 0;
            return TM_OK;
        }
    }
    return tm__strmap_insert(m, s, len, h, i, id, added);
}

/* tm_strmap_intern with h == tm_strmap_hash(s, len) computed beforehand;
 * the lookup is inline, an insertion is a call. Always inlined: GCC's
 * heuristics gave up on it in the vectorizer's token loop once that grew a
 * little (5% more instructions per token). */
static inline __attribute__((always_inline)) tm_status
tm_strmap_intern_hashed(struct tm_strmap *m, const char *s, size_t len, uint64_t h, uint32_t *id,
                        int *added)
{
    return tm__strmap_intern_head(m, s, len, h, tm__strmap_head8(s, len), id, added);
}

/* tm_strmap_intern_hashed where 8 bytes past s + len may be read, with
 * h == tm_strmap_hash_padded(s, len). */
static inline __attribute__((always_inline)) tm_status
tm_strmap_intern_padded(struct tm_strmap *m, const char *s, size_t len, uint64_t h, uint32_t *id,
                        int *added)
{
    return tm__strmap_intern_head(m, s, len, h, tm__strmap_head8_padded(s, len), id, added);
}

/*
 * Prefetching, in two stages, for a caller that hashes a batch of keys and
 * then interns them: TM_STRMAP_PREFETCH starts loading the first slot where
 * a key of hash h is looked up; TM_STRMAP_PREFETCH_ID, a while later, reads
 * that slot and, when it holds a key with h's tag (usually the key itself),
 * starts loading the id's head and user word, which the lookup reads next.
 * So the cache misses of a whole batch overlap. Macros, not inline
 * functions: GCC 12 deems a function whose only effect is a prefetch pure,
 * and deletes the call before inlining it.
 */
#define TM_STRMAP_PREFETCH(m, h) __builtin_prefetch(&(m)->slots[(h) & (m)->mask])
#define TM_STRMAP_PREFETCH_ID(m, h)                                                                \
    do {                                                                                           \
        const struct tm_strmap_slot *tm__sl = &(m)->slots[(h) & (m)->mask];                        \
        if ((tm__sl->tag ^ (uint32_t)(((h) >> 40) << 8)) < 0x200) {                                \
            __builtin_prefetch(&(m)->heads[tm__sl->id]);                                           \
            __builtin_prefetch(&(m)->user[tm__sl->id]);                                            \
        }                                                                                          \
    } while (0)

/* The id of s, or -1. */
int64_t tm_strmap_find(const struct tm_strmap *m, const char *s, size_t len);

#endif
