/* test_keys.c - API keys and tenants (server/keys.h): the form of a key and
 * its hash; the store's keys and tenants on SQLite and PostgreSQL
 * (TM_STORE_TEST); the per-replica cache; and a store written by the
 * release before keys (schema version 2) opening and migrating. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "harness.h"
#include "server/keys.h"
#include "server/store.h"
#include "tmpstore.h"

TM_TEST(keys_generate_parse_hash)
{
    char err[TM_ERR_SIZE], a[TM_KEY_SIZE], b[TM_KEY_SIZE], id[TM_KEY_ID_SIZE];
    struct tm_key_record ra, rb;
    REQUIRE(tm_key_generate("acme", 0, 1.0, a, &ra, err) == TM_OK);
    REQUIRE(tm_key_generate("acme", 1, 2.0, b, &rb, err) == TM_OK);
    CHECK_INT_EQ((long long)strlen(a), TM_KEY_SIZE - 1);
    CHECK(!strncmp(a, TM_KEY_PREFIX, strlen(TM_KEY_PREFIX)));
    CHECK(strcmp(a, b) != 0);
    CHECK(strcmp(ra.id, rb.id) != 0);
    CHECK_INT_EQ(tm_key_parse(a, id), 0);
    CHECK_STR_EQ(id, ra.id);
    CHECK_STR_EQ(ra.tenant, "acme");
    CHECK_INT_EQ(ra.admin, 0);
    CHECK_INT_EQ(rb.admin, 1);
    /* The record holds the key's SHA-256, not the key. */
    unsigned char h[TM_KEY_HASH_SIZE];
    REQUIRE(tm_key_hash(a, strlen(a), h) == TM_OK);
    CHECK(!memcmp(h, ra.hash, sizeof(h)));
    CHECK(memcmp(ra.hash, rb.hash, sizeof(h)) != 0);
    /* SHA-256("abc"), FIPS 180-2's example. */
    static const unsigned char abc[TM_KEY_HASH_SIZE] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
        0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
        0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    REQUIRE(tm_key_hash("abc", 3, h) == TM_OK);
    CHECK(!memcmp(h, abc, sizeof(h)));
    /* Not keys. */
    CHECK_INT_EQ(tm_key_parse("", id), -1);
    CHECK_INT_EQ(tm_key_parse("Bearer x", id), -1);
    a[TM_KEY_SIZE - 2] = 'G';
    CHECK_INT_EQ(tm_key_parse(a, id), -1);
    CHECK_INT_EQ(tm_tenant_valid("acme-1.prod_eu"), 1);
    CHECK_INT_EQ(tm_tenant_valid(""), 0);
    CHECK_INT_EQ(tm_tenant_valid("a b"), 0);
    CHECK_INT_EQ(tm_tenant_valid("a/b"), 0);
}

TM_STORE_TEST(store_keys)
{
    char err[TM_ERR_SIZE], key[TM_KEY_SIZE];
    struct tm_store *s = &ts->store;
    struct tm_key_record r, got, list[8];
    int64_t n = -1;
    CHECK_INT_EQ(s->m->key_count(s->ctx, &n, err), TM_OK);
    CHECK_INT_EQ(n, 0);
    REQUIRE(tm_key_generate("acme", 1, 1700000000.0, key, &r, err) == TM_OK);
    CHECK_INT_EQ(s->m->key_create(s->ctx, &r, err), TM_OK);
    CHECK_INT_EQ(s->m->key_create(s->ctx, &r, err), TM_EBUSY);
    CHECK_INT_EQ(s->m->key_get(s->ctx, r.id, &got, err), TM_OK);
    CHECK_STR_EQ(got.id, r.id);
    CHECK_STR_EQ(got.tenant, "acme");
    CHECK_INT_EQ(got.admin, 1);
    CHECK(!memcmp(got.hash, r.hash, TM_KEY_HASH_SIZE));
    CHECK(got.created_at == 1700000000.0 && got.revoked_at == 0 && got.last_used_at == 0);
    CHECK_INT_EQ(s->m->key_get(s->ctx, "000000000000", &got, err), TM_ENOTFOUND);
    CHECK_INT_EQ(s->m->key_touch(s->ctx, r.id, 1700000005.0, err), TM_OK);
    struct tm_key_record r2;
    REQUIRE(tm_key_generate("other", 0, 1700000001.0, key, &r2, err) == TM_OK);
    CHECK_INT_EQ(s->m->key_create(s->ctx, &r2, err), TM_OK);
    CHECK_INT_EQ(s->m->key_count(s->ctx, &n, err), TM_OK);
    CHECK_INT_EQ(n, 2);
    int m = 0;
    CHECK_INT_EQ(s->m->key_list(s->ctx, list, 8, &m, err), TM_OK);
    CHECK_INT_EQ(m, 2);
    CHECK_STR_EQ(list[0].id, r.id);
    CHECK(list[0].last_used_at == 1700000005.0);
    CHECK_STR_EQ(list[1].tenant, "other");
    CHECK_INT_EQ(list[1].admin, 0);
    CHECK_INT_EQ(s->m->key_revoke(s->ctx, r.id, 1700000010.0, err), TM_OK);
    CHECK_INT_EQ(s->m->key_revoke(s->ctx, r.id, 1700000020.0, err), TM_OK);
    CHECK_INT_EQ(s->m->key_get(s->ctx, r.id, &got, err), TM_OK);
    CHECK(got.revoked_at == 1700000010.0);
    CHECK_INT_EQ(s->m->key_revoke(s->ctx, "000000000000", 1.0, err), TM_ENOTFOUND);
    CHECK_INT_EQ(s->m->key_count(s->ctx, &n, err), TM_OK);
    CHECK_INT_EQ(n, 1);
}

/* The cache answers from the store, then from memory for its TTL: a key
 * revoked elsewhere works until the TTL runs out, and not after. */
TM_STORE_TEST(store_keys_cache)
{
    char err[TM_ERR_SIZE], key[TM_KEY_SIZE], wrong[TM_KEY_SIZE];
    struct tm_store *s = &ts->store;
    struct tm_keys *k = NULL;
    const double ttl = 0.3;
    REQUIRE(tm_keys_new(&k, s, ttl, err) == TM_OK);
    int any = -1, ok = -1;
    struct tm_principal who;
    CHECK_INT_EQ(tm_keys_any(k, &any, err), TM_OK);
    CHECK_INT_EQ(any, 0);
    struct tm_key_record r;
    REQUIRE(tm_key_generate("acme", 0, tm_clock_unix(), key, &r, err) == TM_OK);
    REQUIRE(s->m->key_create(s->ctx, &r, err) == TM_OK);
    /* A key with the right id and a wrong secret. */
    memcpy(wrong, key, sizeof(wrong));
    wrong[TM_KEY_SIZE - 2] = wrong[TM_KEY_SIZE - 2] == '0' ? '1' : '0';
    CHECK_INT_EQ(tm_keys_check(k, wrong, strlen(wrong), &ok, &who, err), TM_OK);
    CHECK_INT_EQ(ok, 0);
    CHECK_INT_EQ(tm_keys_check(k, "tpk_nope", 8, &ok, &who, err), TM_OK);
    CHECK_INT_EQ(ok, 0);
    CHECK_INT_EQ(tm_keys_check(k, key, strlen(key), &ok, &who, err), TM_OK);
    CHECK_INT_EQ(ok, 1);
    CHECK_STR_EQ(who.tenant, "acme");
    CHECK_INT_EQ(who.admin, 0);
    struct tm_key_record got;
    CHECK_INT_EQ(s->m->key_get(s->ctx, r.id, &got, err), TM_OK);
    CHECK(got.last_used_at > 0);
    REQUIRE(s->m->key_revoke(s->ctx, r.id, tm_clock_unix(), err) == TM_OK);
    CHECK_INT_EQ(tm_keys_check(k, key, strlen(key), &ok, &who, err), TM_OK);
    CHECK_INT_EQ(ok, 1); /* cached */
    usleep((useconds_t)(ttl * 1.5e6));
    CHECK_INT_EQ(tm_keys_check(k, key, strlen(key), &ok, &who, err), TM_OK);
    CHECK_INT_EQ(ok, 0);
    CHECK_INT_EQ(tm_keys_any(k, &any, err), TM_OK);
    CHECK_INT_EQ(any, 0);
    tm_keys_free(k);
}

static struct tm_job_record job(const char *id, const char *tenant)
{
    struct tm_job_record j;
    memset(&j, 0, sizeof(j));
    snprintf(j.id, sizeof(j.id), "%s", id);
    snprintf(j.method, sizeof(j.method), "nmf");
    snprintf(j.tenant, sizeof(j.tenant), "%s", tenant);
    j.state = TM_JOB_QUEUED;
    j.created_at = tm_clock_unix();
    return j;
}

static tm_status corpus(struct tm_store *s, const char *id, const char *tenant)
{
    char err[TM_ERR_SIZE];
    struct tm_corpus_record c;
    memset(&c, 0, sizeof(c));
    snprintf(c.id, sizeof(c.id), "%s", id);
    snprintf(c.tenant, sizeof(c.tenant), "%s", tenant);
    c.created_at = tm_clock_unix();
    tm_status st = s->m->corpus_create(s->ctx, &c, err);
    return st ? st : s->m->corpus_commit(s->ctx, id, err);
}

/* Every corpus and job keeps its tenant ("" stores "default"); listings
 * filtered by one show only its records, unfiltered all. */
TM_STORE_TEST(store_tenants)
{
    char err[TM_ERR_SIZE];
    struct tm_store *s = &ts->store;
    REQUIRE(corpus(s, "c_a", "acme") == TM_OK);
    REQUIRE(corpus(s, "c_b", "beta") == TM_OK);
    REQUIRE(corpus(s, "c_d", "") == TM_OK);
    struct tm_corpus_record c, cl[8];
    CHECK_INT_EQ(s->m->corpus_get(s->ctx, "c_a", &c, err), TM_OK);
    CHECK_STR_EQ(c.tenant, "acme");
    CHECK_INT_EQ(s->m->corpus_get(s->ctx, "c_d", &c, err), TM_OK);
    CHECK_STR_EQ(c.tenant, "default");
    int n = 0;
    CHECK_INT_EQ(s->m->corpus_list(s->ctx, "acme", 0, 8, cl, &n, err), TM_OK);
    CHECK_INT_EQ(n, 1);
    CHECK_STR_EQ(cl[0].id, "c_a");
    CHECK_INT_EQ(s->m->corpus_list(s->ctx, NULL, 0, 8, cl, &n, err), TM_OK);
    CHECK_INT_EQ(n, 3);

    struct tm_job_record a = job("j_a", "acme"), b = job("j_b", "beta"), d = job("j_d", "");
    struct tm_store_caps caps = {100, 100};
    enum tm_store_full full;
    CHECK_INT_EQ(s->m->job_insert(s->ctx, &a, "{}", 2, NULL, "t:acme", err), TM_OK);
    CHECK_INT_EQ(s->m->job_submit(s->ctx, &b, "{}", 2, NULL, "t:beta", &caps, &full, err), TM_OK);
    CHECK_INT_EQ(s->m->job_insert(s->ctx, &d, "{}", 2, NULL, NULL, err), TM_OK);
    struct tm_job_record got, jl[8];
    CHECK_INT_EQ(s->m->job_get(s->ctx, "j_b", &got, err), TM_OK);
    CHECK_STR_EQ(got.tenant, "beta");
    CHECK_INT_EQ(s->m->job_get(s->ctx, "j_d", &got, err), TM_OK);
    CHECK_STR_EQ(got.tenant, "default");
    CHECK_INT_EQ(s->m->job_list(s->ctx, "beta", -1, 0, 8, jl, &n, err), TM_OK);
    CHECK_INT_EQ(n, 1);
    CHECK_STR_EQ(jl[0].id, "j_b");
    CHECK_INT_EQ(s->m->job_list(s->ctx, "acme", TM_JOB_QUEUED, 0, 8, jl, &n, err), TM_OK);
    CHECK_INT_EQ(n, 1);
    CHECK_STR_EQ(jl[0].id, "j_a");
    CHECK_INT_EQ(s->m->job_list(s->ctx, "nobody", -1, 0, 8, jl, &n, err), TM_OK);
    CHECK_INT_EQ(n, 0);
    CHECK_INT_EQ(s->m->job_list(s->ctx, NULL, -1, 0, 8, jl, &n, err), TM_OK);
    CHECK_INT_EQ(n, 3);
    /* A claim returns the tenant too. */
    struct tm_store_claimed cl1;
    CHECK_INT_EQ(s->m->job_claim(s->ctx, "r_1", tm_clock_unix(), 30, &cl1, err), TM_OK);
    CHECK(cl1.job.tenant[0] != 0);
}

/* A store the release before keys wrote (tests/fixtures/store/v2_*.sql)
 * opens: it is migrated to this version, what it held belongs to the
 * tenant "default", it has no keys, and keys can be made. */
TM_STORE_TEST(store_keys_migrate_v2)
{
    char err[TM_ERR_SIZE], key[TM_KEY_SIZE];
    int pg = ts->driver == TM_STORE_PG;
    REQUIRE(tm_tmpstore_open_release(ts, 2, err) == 0);
    const char *version = pg ? "SELECT max(version) FROM topicd_schema" : "PRAGMA user_version";
    struct tm_store *s = &ts->store;
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, version), TM_STORE_SCHEMA_VERSION);
    struct tm_corpus_record c;
    CHECK_INT_EQ(s->m->corpus_get(s->ctx, "c_old", &c, err), TM_OK);
    CHECK_STR_EQ(c.tenant, "default");
    struct tm_job_record got, jl[8];
    CHECK_INT_EQ(s->m->job_get(s->ctx, "j_done", &got, err), TM_OK);
    CHECK_STR_EQ(got.tenant, "default");
    CHECK_INT_EQ(got.state, TM_JOB_SUCCEEDED);
    int n = 0;
    CHECK_INT_EQ(s->m->job_list(s->ctx, "default", -1, 0, 8, jl, &n, err), TM_OK);
    CHECK_INT_EQ(n, 3);
    CHECK_INT_EQ(s->m->job_list(s->ctx, "acme", -1, 0, 8, jl, &n, err), TM_OK);
    CHECK_INT_EQ(n, 0);
    int64_t k = -1;
    CHECK_INT_EQ(s->m->key_count(s->ctx, &k, err), TM_OK);
    CHECK_INT_EQ(k, 0);
    struct tm_key_record r;
    REQUIRE(tm_key_generate("acme", 0, tm_clock_unix(), key, &r, err) == TM_OK);
    CHECK_INT_EQ(s->m->key_create(s->ctx, &r, err), TM_OK);
    CHECK_INT_EQ(s->m->key_count(s->ctx, &k, err), TM_OK);
    CHECK_INT_EQ(k, 1);
    /* The old queue still runs: the two queued jobs in their order. */
    struct tm_store_claimed cl;
    CHECK_INT_EQ(s->m->job_claim(s->ctx, "r_1", tm_clock_unix(), 30, &cl, err), TM_OK);
    CHECK_STR_EQ(cl.job.id, "j_queued");
}
