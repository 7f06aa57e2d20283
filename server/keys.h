/*
 * keys.h - API keys and the tenants they name: making a key (`topicd keys
 * create`), checking the key of a request against the store, and a small
 * per-replica cache of what the store said.
 *
 * A key is "tpk_" + its id (12 hex digits) + "_" + a secret (64 hex digits,
 * 256 bits from getrandom). The store keeps the id, the tenant, the admin
 * flag and the key's SHA-256, never the key: it is printed once, when made.
 * A request's key is looked up by its id and its hash compared in constant
 * time (CRYPTO_memcmp). Keys are never logged.
 *
 * The cache remembers, for TM_KEYS_TTL_S seconds, each key it checked
 * (by its hash: a wrong key too, so a client retrying one costs no store
 * reads) and whether the store holds any key at all. So a key revoked on
 * one replica stops working on every replica within TM_KEYS_TTL_S seconds,
 * and so does turning auth on by creating the first key.
 * Thread-safety: tm_keys_check and tm_keys_any are thread-safe (one mutex);
 * the others are reentrant.
 */
#ifndef TM_SERVER_KEYS_H
#define TM_SERVER_KEYS_H

#include <stddef.h>

#include "core/status.h"
#include "store.h"

#define TM_KEY_PREFIX "tpk_"
/* The bytes of a key, NUL included: "tpk_" + 12 + "_" + 64 + NUL. */
#define TM_KEY_SIZE 82
/* How long a replica trusts what the store said about a key. */
#define TM_KEYS_TTL_S 5.0

/* 1 when name is a valid tenant: 1 to TM_TENANT_SIZE - 1 characters of
 * [A-Za-z0-9_.-]. */
int tm_tenant_valid(const char *name);

/* Makes a new key for tenant: key (TM_KEY_SIZE bytes) gets the key, rec its
 * record for key_create (created_at now). TM_EIO when getrandom fails. */
tm_status tm_key_generate(const char *tenant, int admin, double now, char key[TM_KEY_SIZE],
                          struct tm_key_record *rec, char *err);

/* The id in key into id; -1 when key does not have a key's form. */
int tm_key_parse(const char *key, char id[TM_KEY_ID_SIZE]);

/* SHA-256 of the len bytes of key. An API key carries 256 random bits, so
 * a fast hash is enough: a slow KDF (bcrypt, argon2) protects low-entropy
 * passwords from guessing, and no guessing reaches a 2^256 space; it would
 * only slow every request. TM_EIO when libcrypto fails. */
tm_status tm_key_hash(const char *key, size_t len, unsigned char out[TM_KEY_HASH_SIZE]);

/* Who a request is. */
struct tm_principal {
    char tenant[TM_TENANT_SIZE];
    int admin;
};

struct tm_keys;

/* A cache over store (borrowed, must outlive it); ttl_s: TM_KEYS_TTL_S but
 * for tests. *out owned (tm_keys_free). */
tm_status tm_keys_new(struct tm_keys **out, struct tm_store *store, double ttl_s, char *err);
void tm_keys_free(struct tm_keys *k);

/* Checks key (borrowed, len bytes; need not be NUL-terminated): *ok 1 and
 * *who filled when it is a key of the store, not revoked; *ok 0 otherwise.
 * A store failure is its status (the caller answers 503, never 401). */
tm_status tm_keys_check(struct tm_keys *k, const char *key, size_t len, int *ok,
                        struct tm_principal *who, char *err);

/* As tm_keys_check, for the key whose id is id (a session made with it,
 * session.h): *ok 1 while the store holds it, not revoked. Cached as
 * tm_keys_check caches, so revoking a key ends its sessions on every
 * replica within TM_KEYS_TTL_S seconds. */
tm_status tm_keys_check_id(struct tm_keys *k, const char *id, int *ok, struct tm_principal *who,
                           char *err);

/* *any: 1 when the store holds a key that is not revoked. */
tm_status tm_keys_any(struct tm_keys *k, int *any, char *err);

#endif
