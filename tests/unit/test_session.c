/* test_session.c - session tokens, signed links and the signing secret
 * (server/session.h): a genuine token or link passes, a tampered, expired
 * or foreign one (another secret) does not; a session ends when its key is
 * revoked, once the keys cache has forgotten it; the secret is stored once
 * and read back the same by every opener of a store, on SQLite and
 * PostgreSQL (TM_STORE_TEST), also in a store migrated from an old release;
 * and a secret file is read as documented. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "harness.h"
#include "server/keys.h"
#include "server/session.h"
#include "server/store.h"
#include "tmpstore.h"

static void fill(unsigned char key[TM_SESSION_KEY_SIZE], unsigned char v)
{
    for (int i = 0; i < TM_SESSION_KEY_SIZE; i++)
        key[i] = (unsigned char)(v + i);
}

/* tm_session_verify of the NUL-terminated token. */
static enum tm_session_verdict verify(const unsigned char *key, const char *token, int64_t now)
{
    char id[TM_KEY_ID_SIZE];
    int64_t e;
    return tm_session_verify(key, token, strlen(token), now, id, &e);
}

TM_TEST(session_token)
{
    char err[TM_ERR_SIZE], tok[TM_SESSION_TOKEN_SIZE], id[TM_KEY_ID_SIZE];
    char bad[TM_SESSION_TOKEN_SIZE + 16];
    unsigned char k1[TM_SESSION_KEY_SIZE], k2[TM_SESSION_KEY_SIZE];
    fill(k1, 1);
    fill(k2, 2);
    REQUIRE(tm_session_issue(k1, "0123456789ab", 2000, tok, err) == TM_OK);
    CHECK(!strncmp(tok, "v1.0123456789ab.2000.", 21));
    CHECK_INT_EQ((long long)strlen(tok), 21 + 64);
    int64_t e = 0;
    CHECK_INT_EQ(tm_session_verify(k1, tok, strlen(tok), 1999, id, &e), TM_SESSION_OK);
    CHECK_STR_EQ(id, "0123456789ab");
    CHECK_INT_EQ(e, 2000);
    /* Expired: at and after its expiry, and still told from a forgery. */
    CHECK_INT_EQ(verify(k1, tok, 2000), TM_SESSION_EXPIRED);
    CHECK_INT_EQ(verify(k1, tok, 5000), TM_SESSION_EXPIRED);
    /* Another secret (another deployment, a rotated one). */
    CHECK_INT_EQ(verify(k2, tok, 1999), TM_SESSION_FORGED);
    /* Tampered: each part of it. The expiry pushed later is the attack
     * that matters: the token must not outlive what was signed. */
    const size_t at[] = {3, 14, 16, 19, 21, 50, strlen(tok) - 1};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        snprintf(bad, sizeof(bad), "%s", tok);
        bad[at[i]] = bad[at[i]] == '9' ? '8' : bad[at[i]] == 'f' ? 'e' : '9';
        CHECK_INT_EQ(verify(k1, bad, 1000), TM_SESSION_FORGED);
    }
    snprintf(bad, sizeof(bad), "v1.0123456789ab.20000.%s", tok + 21);
    CHECK_INT_EQ(verify(k1, bad, 1000), TM_SESSION_FORGED);
    /* Not tokens. */
    const char *const malformed[] = {
        "", "v1.", "v2.0123456789ab.2000.", "x", "v1.0123456789AB.2000.00", "v1.0123456789ab..0"};
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
        CHECK_INT_EQ(verify(k1, malformed[i], 1000), TM_SESSION_MALFORMED);
    snprintf(bad, sizeof(bad), "%s", tok);
    bad[strlen(bad) - 1] = 'G';
    CHECK_INT_EQ(verify(k1, bad, 1000), TM_SESSION_MALFORMED);
    snprintf(bad, sizeof(bad), "v1.0123456789ab.-200.%s", tok + 21);
    CHECK_INT_EQ(verify(k1, bad, 1000), TM_SESSION_MALFORMED);
    snprintf(bad, sizeof(bad), "%s", tok);
    bad[20] = '/';
    CHECK_INT_EQ(verify(k1, bad, 1000), TM_SESSION_MALFORMED);
    CHECK(tm_session_issue(k1, "not-an-id", 2000, tok, err) == TM_EINVAL);
}

TM_TEST(session_link)
{
    char err[TM_ERR_SIZE], sig[TM_SESSION_SIG_SIZE], bad[TM_SESSION_SIG_SIZE];
    unsigned char k1[TM_SESSION_KEY_SIZE], k2[TM_SESSION_KEY_SIZE];
    fill(k1, 7);
    fill(k2, 8);
    const char *path = "/v1/jobs/j_abc/result";
    REQUIRE(tm_session_link_sign(k1, "acme", path, 3000, sig, err) == TM_OK);
    CHECK_INT_EQ((long long)strlen(sig), 64);
    CHECK_INT_EQ(tm_session_link_verify(k1, "acme", path, "3000", sig, 2999), TM_SESSION_OK);
    CHECK_INT_EQ(tm_session_link_verify(k1, "acme", path, "3000", sig, 3000), TM_SESSION_EXPIRED);
    /* Bound to the secret, the tenant, the path and the expiry. */
    CHECK_INT_EQ(tm_session_link_verify(k2, "acme", path, "3000", sig, 1), TM_SESSION_FORGED);
    CHECK_INT_EQ(tm_session_link_verify(k1, "beta", path, "3000", sig, 1), TM_SESSION_FORGED);
    CHECK_INT_EQ(tm_session_link_verify(k1, "acme", "/v1/jobs/j_abd/result", "3000", sig, 1),
                 TM_SESSION_FORGED);
    CHECK_INT_EQ(tm_session_link_verify(k1, "acme", "/v1/jobs/j_abc", "3000", sig, 1),
                 TM_SESSION_FORGED);
    CHECK_INT_EQ(tm_session_link_verify(k1, "acme", path, "3001", sig, 1), TM_SESSION_FORGED);
    CHECK_INT_EQ(tm_session_link_verify(k1, "acme", path, "03000", sig, 1), TM_SESSION_FORGED);
    snprintf(bad, sizeof(bad), "%s", sig);
    bad[10] = bad[10] == '0' ? '1' : '0';
    CHECK_INT_EQ(tm_session_link_verify(k1, "acme", path, "3000", bad, 1), TM_SESSION_FORGED);
    /* Missing or malformed parameters. */
    CHECK_INT_EQ(tm_session_link_verify(k1, "acme", path, NULL, sig, 1), TM_SESSION_MALFORMED);
    CHECK_INT_EQ(tm_session_link_verify(k1, "acme", path, "3000", NULL, 1), TM_SESSION_MALFORMED);
    CHECK_INT_EQ(tm_session_link_verify(k1, "acme", path, "+3000", sig, 1), TM_SESSION_MALFORMED);
    CHECK_INT_EQ(tm_session_link_verify(k1, "acme", path, "", sig, 1), TM_SESSION_MALFORMED);
    CHECK_INT_EQ(tm_session_link_verify(k1, "acme", path, "99999999999999999999", sig, 1),
                 TM_SESSION_MALFORMED);
    CHECK_INT_EQ(tm_session_link_verify(k1, "acme", path, "3000", "abc", 1), TM_SESSION_MALFORMED);
    snprintf(bad, sizeof(bad), "%s", sig);
    bad[0] = 'Z';
    CHECK_INT_EQ(tm_session_link_verify(k1, "acme", path, "3000", bad, 1), TM_SESSION_MALFORMED);
}

/* A file of len bytes of text under dir; its path into path. */
static int write_file(const char *dir, const char *text, char *path, size_t size)
{
    snprintf(path, size, "%s/secret", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

TM_TEST(session_secret_file)
{
    char err[TM_ERR_SIZE], dir[] = "/tmp/topicd-secret-XXXXXX", path[300];
    unsigned char a[TM_SESSION_KEY_SIZE], b[TM_SESSION_KEY_SIZE];
    REQUIRE(mkdtemp(dir) != NULL);
    const char *s64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    REQUIRE(write_file(dir, s64, path, sizeof(path)) == 0);
    CHECK_INT_EQ(tm_session_secret_file(path, a, err), TM_OK);
    /* A final newline is not part of it. */
    char nl[80];
    snprintf(nl, sizeof(nl), "%s\n", s64);
    REQUIRE(write_file(dir, nl, path, sizeof(path)) == 0);
    CHECK_INT_EQ(tm_session_secret_file(path, b, err), TM_OK);
    CHECK(!memcmp(a, b, sizeof(a)));
    REQUIRE(write_file(dir, "0123456789abcdef0123456789abcdeF", path, sizeof(path)) == 0);
    CHECK_INT_EQ(tm_session_secret_file(path, b, err), TM_OK);
    CHECK(memcmp(a, b, sizeof(a)) != 0);
    /* Too short to be a secret. */
    REQUIRE(write_file(dir, "short\n", path, sizeof(path)) == 0);
    CHECK_INT_EQ(tm_session_secret_file(path, b, err), TM_EINVAL);
    CHECK(strstr(err, "at least 32") != NULL);
    unlink(path);
    CHECK_INT_EQ(tm_session_secret_file(path, b, err), TM_EIO);
    CHECK(strstr(err, path) != NULL);
    rmdir(dir);
}

/* The secret is stored once: later calls, with other fresh bytes, and
 * other openers of the store, get the first. */
TM_STORE_TEST(store_secret)
{
    char err[TM_ERR_SIZE];
    struct tm_store *s = &ts->store;
    unsigned char a[TM_STORE_SECRET_SIZE], b[TM_STORE_SECRET_SIZE], out[TM_STORE_SECRET_SIZE];
    fill(a, 10);
    fill(b, 20);
    CHECK_INT_EQ(s->m->secret(s->ctx, "signing", a, out, err), TM_OK);
    CHECK(!memcmp(out, a, sizeof(a)));
    CHECK_INT_EQ(s->m->secret(s->ctx, "signing", b, out, err), TM_OK);
    CHECK(!memcmp(out, a, sizeof(a)));
    /* Names are separate. */
    CHECK_INT_EQ(s->m->secret(s->ctx, "other", b, out, err), TM_OK);
    CHECK(!memcmp(out, b, sizeof(b)));
    if (ts->driver == TM_STORE_PG) {
        /* Another replica on the same store. */
        struct tm_store other;
        REQUIRE(tm_tmpstore_open_again(ts, &other, err) == TM_OK);
        unsigned char k1[TM_SESSION_KEY_SIZE], k2[TM_SESSION_KEY_SIZE];
        CHECK_INT_EQ(tm_session_secret_store(s, k1, err), TM_OK);
        CHECK_INT_EQ(tm_session_secret_store(&other, k2, err), TM_OK);
        CHECK(!memcmp(k1, k2, sizeof(k1)));
        CHECK(!memcmp(k1, a, sizeof(k1)));
        tm_store_close(&other);
    }
    REQUIRE(tm_tmpstore_reopen(ts, err) == 0);
    s = &ts->store;
    CHECK_INT_EQ(s->m->secret(s->ctx, "signing", b, out, err), TM_OK);
    CHECK(!memcmp(out, a, sizeof(a)));
}

/* A store from the release before keys (schema 2) migrates to one that
 * keeps a secret. */
TM_STORE_TEST(store_secret_migrate_v2)
{
    char err[TM_ERR_SIZE];
    REQUIRE(tm_tmpstore_open_release(ts, 2, err) == 0);
    struct tm_store *s = &ts->store;
    unsigned char k1[TM_SESSION_KEY_SIZE], k2[TM_SESSION_KEY_SIZE];
    CHECK_INT_EQ(tm_session_secret_store(s, k1, err), TM_OK);
    CHECK_INT_EQ(tm_session_secret_store(s, k2, err), TM_OK);
    CHECK(!memcmp(k1, k2, sizeof(k1)));
    CHECK_INT_EQ(tm_tmpstore_sql_int(ts, "SELECT count(*) FROM secrets"), 1);
}

/* A session stands while its key does: revoked, it ends once the keys
 * cache's TTL has passed; a key id the store never held is refused. */
TM_STORE_TEST(session_revoked_key)
{
    char err[TM_ERR_SIZE], key[TM_KEY_SIZE], tok[TM_SESSION_TOKEN_SIZE];
    struct tm_store *s = &ts->store;
    struct tm_key_record rec;
    unsigned char secret[TM_SESSION_KEY_SIZE];
    REQUIRE(tm_session_secret_store(s, secret, err) == TM_OK);
    REQUIRE(tm_key_generate("acme", 1, tm_clock_unix(), key, &rec, err) == TM_OK);
    REQUIRE(s->m->key_create(s->ctx, &rec, err) == TM_OK);
    struct tm_keys *keys = NULL;
    const double ttl = 0.3;
    REQUIRE(tm_keys_new(&keys, s, ttl, err) == TM_OK);
    int64_t now = (int64_t)tm_clock_unix();
    REQUIRE(tm_session_issue(secret, rec.id, now + 600, tok, err) == TM_OK);
    enum tm_session_verdict v;
    struct tm_principal who;
    int64_t exp;
    CHECK_INT_EQ(tm_session_check(secret, keys, tok, strlen(tok), now, &v, &who, &exp, err), TM_OK);
    CHECK_INT_EQ(v, TM_SESSION_OK);
    CHECK_STR_EQ(who.tenant, "acme");
    CHECK_INT_EQ(who.admin, 1);
    CHECK_INT_EQ(exp, now + 600);
    /* The key's id is no key: the cache must not take one for the other. */
    int ok = 1;
    CHECK_INT_EQ(tm_keys_check(keys, rec.id, strlen(rec.id), &ok, &who, err), TM_OK);
    CHECK_INT_EQ(ok, 0);
    REQUIRE(s->m->key_revoke(s->ctx, rec.id, tm_clock_unix(), err) == TM_OK);
    double t0 = tm_clock_monotonic();
    tm_session_check(secret, keys, tok, strlen(tok), now, &v, &who, &exp, err);
    /* Within the TTL the cache may still say yes; past it, no. */
    if (tm_clock_monotonic() - t0 < ttl * 0.5)
        CHECK_INT_EQ(v, TM_SESSION_OK);
    usleep((useconds_t)(ttl * 1.5e6));
    CHECK_INT_EQ(tm_session_check(secret, keys, tok, strlen(tok), now, &v, &who, &exp, err), TM_OK);
    CHECK_INT_EQ(v, TM_SESSION_REVOKED);
    CHECK_STR_EQ(who.tenant, "");
    /* A genuine token for a key id the store never had. */
    REQUIRE(tm_session_issue(secret, "0000000000ff", now + 600, tok, err) == TM_OK);
    CHECK_INT_EQ(tm_session_check(secret, keys, tok, strlen(tok), now, &v, &who, &exp, err), TM_OK);
    CHECK_INT_EQ(v, TM_SESSION_REVOKED);
    /* An expired one is told as such, before any key is looked up. */
    REQUIRE(tm_session_issue(secret, rec.id, now - 1, tok, err) == TM_OK);
    CHECK_INT_EQ(tm_session_check(secret, keys, tok, strlen(tok), now, &v, &who, &exp, err), TM_OK);
    CHECK_INT_EQ(v, TM_SESSION_EXPIRED);
    tm_keys_free(keys);
}
