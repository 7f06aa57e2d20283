/* matrix_cache.c - LRU of vectorized corpora with holds (see matrix_cache.h). */
#include "matrix_cache.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

struct tm_matrix_ref {
    struct tm_vectorized v;
    char *key;
    size_t key_len;
    int64_t bytes;
    int refs;
    int cached;                        /* in the list; 0 once evicted/invalidated or never kept */
    struct tm_matrix_ref *prev, *next; /* most recently used at head */
};

struct tm_matrix_cache {
    pthread_mutex_t lock;
    int64_t max_bytes, bytes, entries, hits, misses;
    struct tm_matrix_ref *head, *tail;
};

int64_t tm_vectorized_bytes(const struct tm_vectorized *v)
{
    int64_t nnz = tm_csr_nnz(&v->matrix), terms = v->vocab.n_terms;
    return nnz * (int64_t)(sizeof(double) + sizeof(int32_t)) +
           (v->matrix.n_rows + 1) * (int64_t)sizeof(int64_t) +
           (terms ? v->vocab.offsets[terms] : 0) + (terms + 1) * (int64_t)sizeof(int64_t) +
           terms * (int64_t)(sizeof(int64_t) + (v->idf ? sizeof(double) : 0)) +
           (v->term_frequency ? terms * (int64_t)sizeof(double) : 0) +
           (v->doc_lengths ? v->matrix.n_rows * (int64_t)sizeof(int64_t) : 0);
}

tm_status tm_matrix_cache_new(struct tm_matrix_cache **out, int64_t max_bytes)
{
    struct tm_matrix_cache *c = tm_calloc(1, sizeof(*c));
    if (!c)
        return TM_ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    c->max_bytes = max_bytes;
    *out = c;
    return TM_OK;
}

static void destroy(struct tm_matrix_ref *r)
{
    tm_vectorized_release(&r->v);
    tm_free(r->key);
    tm_free(r);
}

/* Lock held. */
static void unlink_entry(struct tm_matrix_cache *c, struct tm_matrix_ref *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        c->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        c->tail = r->prev;
    r->prev = r->next = NULL;
    r->cached = 0;
    c->bytes -= r->bytes;
    c->entries--;
}

static void push_front(struct tm_matrix_cache *c, struct tm_matrix_ref *r)
{
    r->prev = NULL;
    r->next = c->head;
    if (c->head)
        c->head->prev = r;
    c->head = r;
    if (!c->tail)
        c->tail = r;
}

void tm_matrix_cache_free(struct tm_matrix_cache *c)
{
    if (!c)
        return;
    /* Every job has released its hold by now (the workers are joined). */
    while (c->head) {
        struct tm_matrix_ref *r = c->head;
        unlink_entry(c, r);
        destroy(r);
    }
    pthread_mutex_destroy(&c->lock);
    tm_free(c);
}

tm_status tm_matrix_cache_key(const char *corpus_id, int64_t n_documents, const char *vec,
                              size_t vec_len, char **key, size_t *key_len)
{
    *key = NULL;
    size_t id_len = strlen(corpus_id);
    /* id, "\n", at most 20 digits and a sign, "\n", vec, NUL */
    size_t cap = id_len + vec_len + 24;
    char *k = tm_malloc(cap);
    if (!k)
        return TM_ENOMEM;
    int n = snprintf(k, cap, "%s\n%" PRId64 "\n", corpus_id, n_documents);
    memcpy(k + n, vec, vec_len);
    k[(size_t)n + vec_len] = 0;
    *key = k;
    *key_len = (size_t)n + vec_len;
    return TM_OK;
}

/* 1 when key is one of corpus_id's (id_len bytes): its first line. */
static int key_of_corpus(const char *key, size_t key_len, const char *corpus_id, size_t id_len)
{
    return key_len > id_len && key[id_len] == '\n' && !memcmp(key, corpus_id, id_len);
}

const struct tm_vectorized *tm_matrix_cache_get(struct tm_matrix_cache *c, const char *key,
                                                size_t key_len, struct tm_matrix_ref **ref)
{
    *ref = NULL;
    pthread_mutex_lock(&c->lock);
    for (struct tm_matrix_ref *r = c->head; r; r = r->next)
        if (r->key_len == key_len && !memcmp(r->key, key, key_len)) {
            r->refs++;
            c->hits++;
            if (r != c->head) {
                /* Move to the front without touching the byte counts. */
                if (r->prev)
                    r->prev->next = r->next;
                if (r->next)
                    r->next->prev = r->prev;
                else
                    c->tail = r->prev;
                push_front(c, r);
            }
            *ref = r;
            break;
        }
    if (!*ref)
        c->misses++;
    pthread_mutex_unlock(&c->lock);
    return *ref ? &(*ref)->v : NULL;
}

/* Evicts unheld entries from the tail until need more bytes fit. Lock held. */
static void make_room(struct tm_matrix_cache *c, int64_t need)
{
    for (struct tm_matrix_ref *r = c->tail, *prev; r && c->bytes + need > c->max_bytes; r = prev) {
        prev = r->prev;
        if (r->refs)
            continue;
        unlink_entry(c, r);
        destroy(r);
    }
}

const struct tm_vectorized *tm_matrix_cache_put(struct tm_matrix_cache *c, const char *key,
                                                size_t key_len, struct tm_vectorized *v,
                                                struct tm_matrix_ref **ref)
{
    *ref = NULL;
    struct tm_matrix_ref *r = tm_calloc(1, sizeof(*r));
    char *k = tm_malloc(key_len + 1);
    if (!r || !k) {
        tm_free(r);
        tm_free(k);
        tm_vectorized_release(v);
        return NULL;
    }
    memcpy(k, key, key_len);
    k[key_len] = 0;
    r->v = *v;
    memset(v, 0, sizeof(*v));
    r->key = k;
    r->key_len = key_len;
    r->bytes = tm_vectorized_bytes(&r->v);
    r->refs = 1;
    pthread_mutex_lock(&c->lock);
    if (r->bytes <= c->max_bytes) {
        make_room(c, r->bytes);
        if (c->bytes + r->bytes <= c->max_bytes) {
            push_front(c, r);
            r->cached = 1;
            c->bytes += r->bytes;
            c->entries++;
        }
    }
    pthread_mutex_unlock(&c->lock);
    *ref = r;
    return &r->v;
}

void tm_matrix_cache_release(struct tm_matrix_cache *c, struct tm_matrix_ref *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&c->lock);
    int gone = --r->refs == 0 && !r->cached;
    pthread_mutex_unlock(&c->lock);
    if (gone)
        destroy(r);
}

void tm_matrix_cache_invalidate(struct tm_matrix_cache *c, const char *corpus_id)
{
    size_t n = strlen(corpus_id);
    struct tm_matrix_ref *dead = NULL;
    pthread_mutex_lock(&c->lock);
    for (struct tm_matrix_ref *r = c->head, *next; r; r = next) {
        next = r->next;
        if (key_of_corpus(r->key, r->key_len, corpus_id, n)) {
            unlink_entry(c, r);
            if (!r->refs) {
                r->next = dead;
                dead = r;
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
    while (dead) {
        struct tm_matrix_ref *next = dead->next;
        destroy(dead);
        dead = next;
    }
}

void tm_matrix_cache_stats(struct tm_matrix_cache *c, struct tm_matrix_cache_stats *out)
{
    pthread_mutex_lock(&c->lock);
    out->entries = c->entries;
    out->bytes = c->bytes;
    out->hits = c->hits;
    out->misses = c->misses;
    pthread_mutex_unlock(&c->lock);
}
