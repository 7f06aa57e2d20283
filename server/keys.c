/* keys.c - API keys: making, hashing, checking, and the cache (keys.h). */
#include "keys.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "core/alloc.h"
#include "core/clock.h"

#define ID_HEX 12
#define SECRET_HEX 64
#define CACHE_SLOTS 64

_Static_assert(sizeof(TM_KEY_PREFIX) - 1 + ID_HEX + 1 + SECRET_HEX + 1 == TM_KEY_SIZE,
               "TM_KEY_SIZE");
_Static_assert(ID_HEX < TM_KEY_ID_SIZE, "TM_KEY_ID_SIZE");

int tm_tenant_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= TM_TENANT_SIZE)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = 0;
}

tm_status tm_key_hash(const char *key, size_t len, unsigned char out[TM_KEY_HASH_SIZE])
{
    unsigned int n = 0;
    if (!EVP_Digest(key, len, out, &n, EVP_sha256(), NULL) || n != TM_KEY_HASH_SIZE)
        return TM_EIO;
    return TM_OK;
}

tm_status tm_key_generate(const char *tenant, int admin, double now, char key[TM_KEY_SIZE],
                          struct tm_key_record *rec, char *err)
{
    unsigned char r[ID_HEX / 2 + SECRET_HEX / 2];
    size_t got = 0;
    while (got < sizeof(r)) {
        ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return tm_errf(err, TM_EIO, "getrandom: %s", strerror(errno));
        got += (size_t)n;
    }
    memset(rec, 0, sizeof(*rec));
    hex(r, ID_HEX / 2, rec->id);
    char secret[SECRET_HEX + 1];
    hex(r + ID_HEX / 2, SECRET_HEX / 2, secret);
    const size_t p = sizeof(TM_KEY_PREFIX) - 1;
    memcpy(key, TM_KEY_PREFIX, p);
    memcpy(key + p, rec->id, ID_HEX);
    key[p + ID_HEX] = '_';
    memcpy(key + p + ID_HEX + 1, secret, SECRET_HEX + 1);
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(r, sizeof(r));
    snprintf(rec->tenant, sizeof(rec->tenant), "%s", tenant);
    rec->admin = admin ? 1 : 0;
    rec->created_at = now;
    if (tm_key_hash(key, strlen(key), rec->hash))
        return tm_errf(err, TM_EIO, "SHA-256 failed");
    return TM_OK;
}

/* The id of a key of len bytes into id; -1 when it is not a key's form. */
static int parse_id(const char *key, size_t len, char id[TM_KEY_ID_SIZE])
{
    const size_t p = sizeof(TM_KEY_PREFIX) - 1;
    if (len != TM_KEY_SIZE - 1 || memcmp(key, TM_KEY_PREFIX, p) || key[p + ID_HEX] != '_')
        return -1;
    for (size_t i = p; i < len; i++)
        if (i != p + ID_HEX && !is_hex(key[i]))
            return -1;
    memcpy(id, key + p, ID_HEX);
    id[ID_HEX] = 0;
    return 0;
}

int tm_key_parse(const char *key, char id[TM_KEY_ID_SIZE])
{
    return parse_id(key, strlen(key), id);
}

/* ---------------------------------------------------------------------- */
/* The cache. */

struct slot {
    unsigned char hash[TM_KEY_HASH_SIZE]; /* of the key presented */
    double until;                         /* monotonic; 0: empty */
    int ok;
    struct tm_principal who;
};

struct tm_keys {
    struct tm_store *store;
    double ttl_s;
    pthread_mutex_t lock;
    struct slot slots[CACHE_SLOTS];
    double any_until;
    int any;
};

tm_status tm_keys_new(struct tm_keys **out, struct tm_store *store, double ttl_s, char *err)
{
    struct tm_keys *k = tm_calloc(1, sizeof(*k));
    if (!k)
        return tm_errf(err, TM_ENOMEM, "keys");
    k->store = store;
    k->ttl_s = ttl_s;
    pthread_mutex_init(&k->lock, NULL);
    *out = k;
    return TM_OK;
}

void tm_keys_free(struct tm_keys *k)
{
    if (!k)
        return;
    pthread_mutex_destroy(&k->lock);
    OPENSSL_cleanse(k->slots, sizeof(k->slots));
    tm_free(k);
}

/* The slot holding hash, fresh at now; NULL when none. Caller holds lock. */
static struct slot *cache_find(struct tm_keys *k, const unsigned char *hash, double now)
{
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (k->slots[i].until > now && !CRYPTO_memcmp(k->slots[i].hash, hash, TM_KEY_HASH_SIZE))
            return &k->slots[i];
    return NULL;
}

/* The slot to overwrite: an expired one, else the one that expires first. */
static struct slot *cache_victim(struct tm_keys *k, double now)
{
    struct slot *v = &k->slots[0];
    for (int i = 0; i < CACHE_SLOTS; i++) {
        if (k->slots[i].until <= now)
            return &k->slots[i];
        if (k->slots[i].until < v->until)
            v = &k->slots[i];
    }
    return v;
}

/* What the store says of key id, through the cache under hash (what was
 * presented: the key's hash, or id_hash's); full: the key itself was
 * presented and its hash must match the stored one. */
static tm_status check_cached(struct tm_keys *k, const char *id,
                              const unsigned char hash[TM_KEY_HASH_SIZE], int full, int *ok,
                              struct tm_principal *who, char *err)
{
    double now = tm_clock_monotonic();
    pthread_mutex_lock(&k->lock);
    struct slot *s = cache_find(k, hash, now);
    if (s) {
        *ok = s->ok;
        *who = s->who;
    }
    pthread_mutex_unlock(&k->lock);
    if (s)
        return TM_OK;

    struct tm_key_record rec;
    tm_status st = k->store->m->key_get(k->store->ctx, id, &rec, err);
    if (st && st != TM_ENOTFOUND)
        return st;
    /* The hash is compared in constant time, so that the time taken says
     * nothing of how much of a guessed key was right. */
    if (!st && rec.revoked_at == 0 && (!full || !CRYPTO_memcmp(rec.hash, hash, TM_KEY_HASH_SIZE))) {
        *ok = 1;
        snprintf(who->tenant, sizeof(who->tenant), "%s", rec.tenant);
        who->admin = rec.admin;
        /* last_used_at is a hint: once per key per TTL, and its failure is
         * no reason to refuse the request. */
        char ignored[TM_ERR_SIZE];
        k->store->m->key_touch(k->store->ctx, id, tm_clock_unix(), ignored);
    }
    pthread_mutex_lock(&k->lock);
    s = cache_victim(k, now);
    memcpy(s->hash, hash, TM_KEY_HASH_SIZE);
    s->until = now + k->ttl_s;
    s->ok = *ok;
    s->who = *who;
    pthread_mutex_unlock(&k->lock);
    return TM_OK;
}

tm_status tm_keys_check(struct tm_keys *k, const char *key, size_t len, int *ok,
                        struct tm_principal *who, char *err)
{
    *ok = 0;
    memset(who, 0, sizeof(*who));
    char id[TM_KEY_ID_SIZE];
    if (parse_id(key, len, id))
        return TM_OK;
    unsigned char hash[TM_KEY_HASH_SIZE];
    if (tm_key_hash(key, len, hash))
        return tm_errf(err, TM_EIO, "SHA-256 failed");
    return check_cached(k, id, hash, 1, ok, who, err);
}

tm_status tm_keys_check_id(struct tm_keys *k, const char *id, int *ok, struct tm_principal *who,
                           char *err)
{
    *ok = 0;
    memset(who, 0, sizeof(*who));
    size_t n = strlen(id);
    if (n != ID_HEX)
        return TM_OK;
    for (size_t i = 0; i < n; i++)
        if (!is_hex(id[i]))
            return TM_OK;
    /* Cached under the hash of "id:" + id: no key (82 bytes, "tpk_...")
     * hashes to it, so an id's slot and a key's never meet. */
    char tagged[3 + ID_HEX + 1];
    snprintf(tagged, sizeof(tagged), "id:%s", id);
    unsigned char hash[TM_KEY_HASH_SIZE];
    if (tm_key_hash(tagged, strlen(tagged), hash))
        return tm_errf(err, TM_EIO, "SHA-256 failed");
    return check_cached(k, id, hash, 0, ok, who, err);
}

tm_status tm_keys_any(struct tm_keys *k, int *any, char *err)
{
    double now = tm_clock_monotonic();
    pthread_mutex_lock(&k->lock);
    int fresh = k->any_until > now;
    *any = k->any;
    pthread_mutex_unlock(&k->lock);
    if (fresh)
        return TM_OK;
    int64_t n = 0;
    tm_status st = k->store->m->key_count(k->store->ctx, &n, err);
    if (st)
        return st;
    pthread_mutex_lock(&k->lock);
    k->any = *any = n > 0;
    k->any_until = now + k->ttl_s;
    pthread_mutex_unlock(&k->lock);
    return TM_OK;
}
