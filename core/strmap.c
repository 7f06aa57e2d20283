/* strmap.c - the interning hash table of strmap.h. */
#include "strmap.h"

#include <string.h>

#include "alloc.h"

#define INITIAL_SLOTS 1024

uint64_t tm_strmap_hash(const char *s, size_t len)
{
    /* Multiply-xorshift over 8-byte words: tokens are short, so the cost
     * per call matters more than the quality on long keys. */
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        s += 8;
        len -= 8;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, s, len);
        h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
        h ^= h >> 29;
    }
    h *= 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 32);
}

tm_status tm_strmap_init(struct tm_strmap *m, int64_t max_keys)
{
    memset(m, 0, sizeof(*m));
    m->max_keys = max_keys > 0 ? max_keys : 1;
    m->slots = tm_calloc(INITIAL_SLOTS, sizeof(*m->slots));
    m->mask = INITIAL_SLOTS - 1;
    m->ids_cap = INITIAL_SLOTS / 2;
    m->offsets = tm_mallocarray((size_t)m->ids_cap + 1, sizeof(*m->offsets));
    m->pool_cap = 8 * INITIAL_SLOTS;
    m->pool = tm_malloc(m->pool_cap);
    if (!m->slots || !m->offsets || !m->pool) {
        tm_strmap_release(m);
        return TM_ENOMEM;
    }
    m->offsets[0] = 0;
    return TM_OK;
}

void tm_strmap_release(struct tm_strmap *m)
{
    tm_free(m->slots);
    tm_free(m->offsets);
    tm_free(m->pool);
    memset(m, 0, sizeof(*m));
}

static int key_equals(const struct tm_strmap *m, int64_t id, const char *s, size_t len)
{
    size_t klen;
    const char *k = tm_strmap_key(m, id, &klen);
    return klen == len && memcmp(k, s, len) == 0;
}

int64_t tm_strmap_find(const struct tm_strmap *m, const char *s, size_t len)
{
    uint64_t h = tm_strmap_hash(s, len);
    uint64_t tag = h & 0xFFFFFFFF00000000ull;
    for (size_t i = (size_t)h & m->mask;; i = (i + 1) & m->mask) {
        uint64_t slot = m->slots[i];
        if (!slot)
            return -1;
        if ((slot & 0xFFFFFFFF00000000ull) == tag) {
            int64_t id = (int64_t)(slot & 0xFFFFFFFFull) - 1;
            if (key_equals(m, id, s, len))
                return id;
        }
    }
}

/* Doubles the slot array; ids and the pool stay where they are. */
static tm_status grow_slots(struct tm_strmap *m)
{
    size_t n = (m->mask + 1) * 2;
    uint64_t *slots = tm_calloc(n, sizeof(*slots));
    if (!slots)
        return TM_ENOMEM;
    for (size_t i = 0; i <= m->mask; i++) {
        uint64_t slot = m->slots[i];
        if (!slot)
            continue;
        int64_t id = (int64_t)(slot & 0xFFFFFFFFull) - 1;
        size_t klen;
        const char *k = tm_strmap_key(m, id, &klen);
        size_t j = (size_t)tm_strmap_hash(k, klen) & (n - 1);
        while (slots[j])
            j = (j + 1) & (n - 1);
        slots[j] = slot;
    }
    tm_free(m->slots);
    m->slots = slots;
    m->mask = n - 1;
    return TM_OK;
}

tm_status tm_strmap_intern(struct tm_strmap *m, const char *s, size_t len, int64_t *id,
                           int *added)
{
    uint64_t h = tm_strmap_hash(s, len);
    uint64_t tag = h & 0xFFFFFFFF00000000ull;
    size_t i;
    for (i = (size_t)h & m->mask;; i = (i + 1) & m->mask) {
        uint64_t slot = m->slots[i];
        if (!slot)
            break;
        if ((slot & 0xFFFFFFFF00000000ull) == tag) {
            int64_t k = (int64_t)(slot & 0xFFFFFFFFull) - 1;
            if (key_equals(m, k, s, len)) {
                *id = k;
                *added = 0;
                return TM_OK;
            }
        }
    }
    /* A new key. Ids must fit the 32 bits of a slot. */
    if (m->n >= m->max_keys || m->n >= (int64_t)UINT32_MAX - 1)
        return TM_ETOOBIG;
    if (m->pool_len + len > m->pool_cap) {
        size_t cap = m->pool_cap * 2;
        while (cap < m->pool_len + len)
            cap *= 2;
        char *pool = tm_realloc(m->pool, cap);
        if (!pool)
            return TM_ENOMEM;
        m->pool = pool;
        m->pool_cap = cap;
    }
    if (m->n + 1 > m->ids_cap) {
        int64_t cap = m->ids_cap * 2;
        uint64_t *offsets = tm_reallocarray(m->offsets, (size_t)cap + 1, sizeof(*offsets));
        if (!offsets)
            return TM_ENOMEM;
        m->offsets = offsets;
        m->ids_cap = cap;
    }
    /* Keep the load factor at or under 1/2. */
    if ((size_t)(m->n + 1) * 2 > m->mask + 1) {
        tm_status st = grow_slots(m);
        if (st != TM_OK)
            return st;
        for (i = (size_t)h & m->mask; m->slots[i]; i = (i + 1) & m->mask)
            ;
    }
    memcpy(m->pool + m->pool_len, s, len);
    m->pool_len += len;
    m->offsets[m->n + 1] = m->pool_len;
    m->slots[i] = tag | (uint64_t)(m->n + 1);
    *id = m->n++;
    *added = 1;
    return TM_OK;
}
