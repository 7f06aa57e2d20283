/* strmap.c - the interning hash table of strmap.h. */
#include "core/text/strmap.h"

#include <string.h>

#include "core/alloc.h"

#define INITIAL_SLOTS 1024

tm_status tm_strmap_init(struct tm_strmap *m, int64_t max_keys)
{
    memset(m, 0, sizeof(*m));
    m->max_keys = max_keys > 0 ? max_keys : 1;
    m->slots = tm_calloc(INITIAL_SLOTS, sizeof(*m->slots));
    m->mask = INITIAL_SLOTS - 1;
    m->ids_cap = INITIAL_SLOTS / 2;
    m->offsets = tm_mallocarray((size_t)m->ids_cap + 1, sizeof(*m->offsets));
    m->heads = tm_mallocarray((size_t)m->ids_cap, sizeof(*m->heads));
    m->user = tm_mallocarray((size_t)m->ids_cap, sizeof(*m->user));
    m->pool_cap = 8 * INITIAL_SLOTS;
    m->pool = tm_malloc(m->pool_cap);
    if (!m->slots || !m->offsets || !m->heads || !m->user || !m->pool) {
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
    tm_free(m->heads);
    tm_free(m->user);
    tm_free(m->pool);
    memset(m, 0, sizeof(*m));
}

int64_t tm_strmap_find(const struct tm_strmap *m, const char *s, size_t len)
{
    uint64_t h = tm_strmap_hash(s, len);
    uint32_t tag = tm__strmap_tag(h, len);
    uint64_t head = tm__strmap_head8(s, len);
    for (size_t i = (size_t)h & m->mask;; i = (i + 1) & m->mask) {
        const struct tm_strmap_slot *sl = &m->slots[i];
        if (!sl->tag)
            return -1;
        if (tm__strmap_matches(m, sl, tag, head, s, len))
            return sl->id;
    }
}

/* Doubles the slot array; ids and the pool stay where they are. */
static tm_status grow_slots(struct tm_strmap *m)
{
    size_t n = (m->mask + 1) * 2;
    struct tm_strmap_slot *slots = tm_calloc(n, sizeof(*slots));
    if (!slots)
        return TM_ENOMEM;
    for (size_t i = 0; i <= m->mask; i++) {
        const struct tm_strmap_slot *sl = &m->slots[i];
        if (!sl->tag)
            continue;
        size_t klen;
        const char *k = tm_strmap_key(m, sl->id, &klen);
        size_t j = (size_t)tm_strmap_hash(k, klen) & (n - 1);
        while (slots[j].tag)
            j = (j + 1) & (n - 1);
        slots[j] = *sl;
    }
    tm_free(m->slots);
    m->slots = slots;
    m->mask = n - 1;
    return TM_OK;
}

tm_status tm_strmap_intern(struct tm_strmap *m, const char *s, size_t len, uint32_t *id, int *added)
{
    return tm_strmap_intern_hashed(m, s, len, tm_strmap_hash(s, len), id, added);
}

/* Grows the per-id arrays to cap ids. */
static tm_status grow_ids(struct tm_strmap *m, int64_t cap)
{
    uint64_t *offsets = tm_reallocarray(m->offsets, (size_t)cap + 1, sizeof(*offsets));
    if (!offsets)
        return TM_ENOMEM;
    m->offsets = offsets;
    uint64_t *heads = tm_reallocarray(m->heads, (size_t)cap, sizeof(*heads));
    if (!heads)
        return TM_ENOMEM;
    m->heads = heads;
    uint64_t *user = tm_reallocarray(m->user, (size_t)cap, sizeof(*user));
    if (!user)
        return TM_ENOMEM;
    m->user = user;
    m->ids_cap = cap;
    return TM_OK;
}

tm_status tm__strmap_insert(struct tm_strmap *m, const char *s, size_t len, uint64_t h, size_t i,
                            uint32_t *id, int *added)
{
    uint32_t tag = tm__strmap_tag(h, len);
    /* A new key. Ids must fit the 32 bits of a slot. */
    if (m->n >= m->max_keys || m->n >= (int64_t)UINT32_MAX)
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
    tm_status st;
    if (m->n + 1 > m->ids_cap && (st = grow_ids(m, m->ids_cap * 2)) != TM_OK)
        return st;
    /* Keep the load factor at or under 1/2. */
    if ((size_t)(m->n + 1) * 2 > m->mask + 1) {
        if ((st = grow_slots(m)) != TM_OK)
            return st;
        for (i = (size_t)h & m->mask; m->slots[i].tag; i = (i + 1) & m->mask)
            ;
    }
    memcpy(m->pool + m->pool_len, s, len);
    m->pool_len += len;
    m->offsets[m->n + 1] = m->pool_len;
    m->heads[m->n] = tm__strmap_head8(s, len);
    m->user[m->n] = 0;
    m->slots[i] = (struct tm_strmap_slot){tag, (uint32_t)m->n};
    *id = (uint32_t)m->n++;
    *added = 1;
    return TM_OK;
}
