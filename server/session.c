/* session.c - session tokens, signed links and the signing secret (session.h). */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define MAC_SIZE 32
#define ID_HEX 12
/* The most digits of an expiry: Unix seconds fit 19 digits of int64. */
#define EXPIRES_DIGITS 19
/* The most bytes of a secret file read; more is refused, not cut. */
#define SECRET_FILE_MAX 4096

static const char SESSION_LABEL[] = "topicd-session-v1";
static const char LINK_LABEL[] = "topicd-link-v1";

static void hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The 2n lower-case hex digits at s into b; -1 when they are not. */
static int unhex(const char *s, size_t n, unsigned char *b)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        b[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* The len bytes at s as a decimal expiry: 1 to EXPIRES_DIGITS digits, no
 * sign; -1 when they are not. */
static int parse_expires(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > EXPIRES_DIGITS)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (INT64_MAX - (s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* HMAC-SHA256 under key of the n parts joined by '|'. -1 when libcrypto
 * fails. */
static int mac(const unsigned char key[TM_SESSION_KEY_SIZE], const char *const *parts, int n,
               unsigned char out[MAC_SIZE])
{
    char msg[512];
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        size_t pl = strlen(parts[i]);
        if (len + pl + 1 > sizeof(msg))
            return -1;
        if (i)
            msg[len++] = '|';
        memcpy(msg + len, parts[i], pl);
        len += pl;
    }
    unsigned int got = 0;
    if (!HMAC(EVP_sha256(), key, TM_SESSION_KEY_SIZE, (const unsigned char *)msg, len, out, &got) ||
        got != MAC_SIZE)
        return -1;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* The secret. */

tm_status tm_session_secret_file(const char *path, unsigned char key[TM_SESSION_KEY_SIZE],
                                 char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tm_errf(err, TM_EIO, "--secret-file: cannot open %s: %s", path, strerror(errno));
    unsigned char buf[SECRET_FILE_MAX + 1];
    size_t len = 0;
    tm_status st = TM_OK;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            st = tm_errf(err, TM_EIO, "--secret-file: cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > SECRET_FILE_MAX) {
            st = tm_errf(err, TM_EINVAL, "--secret-file: %s is longer than %d bytes", path,
                         SECRET_FILE_MAX);
            goto out;
        }
    }
    /* An editor's or echo's final newline is not part of the secret. */
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
                   buf[len - 1] == '\t'))
        len--;
    if (len < TM_SESSION_SECRET_FILE_MIN) {
        st = tm_errf(err, TM_EINVAL,
                     "--secret-file: %s holds %zu bytes; a secret needs at least %d (e.g. the"
                     " output of `openssl rand -hex 32`)",
                     path, len, TM_SESSION_SECRET_FILE_MIN);
        goto out;
    }
    unsigned int got = 0;
    if (!EVP_Digest(buf, len, key, &got, EVP_sha256(), NULL) || got != TM_SESSION_KEY_SIZE)
        st = tm_errf(err, TM_EIO, "--secret-file: SHA-256 failed");
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return st;
}

tm_status tm_session_secret_store(struct tm_store *store, unsigned char key[TM_SESSION_KEY_SIZE],
                                  char *err)
{
    unsigned char fresh[TM_SESSION_KEY_SIZE];
    size_t got = 0;
    while (got < sizeof(fresh)) {
        ssize_t n = getrandom(fresh + got, sizeof(fresh) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return tm_errf(err, TM_EIO, "getrandom: %s", strerror(errno));
        got += (size_t)n;
    }
    tm_status st = store->m->secret(store->ctx, "signing", fresh, key, err);
    OPENSSL_cleanse(fresh, sizeof(fresh));
    return st;
}

/* ---------------------------------------------------------------------- */
/* Sessions. */

static int valid_key_id(const char *id, size_t n)
{
    if (n != ID_HEX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (hex_value(id[i]) < 0)
            return 0;
    return 1;
}

tm_status tm_session_issue(const unsigned char key[TM_SESSION_KEY_SIZE], const char *key_id,
                           int64_t expires, char out[TM_SESSION_TOKEN_SIZE], char *err)
{
    if (!valid_key_id(key_id, strlen(key_id)) || expires < 0)
        return tm_errf(err, TM_EINVAL, "session: bad key id or expiry");
    char exp[EXPIRES_DIGITS + 2];
    snprintf(exp, sizeof(exp), "%lld", (long long)expires);
    const char *parts[] = {SESSION_LABEL, key_id, exp};
    unsigned char m[MAC_SIZE];
    if (mac(key, parts, 3, m))
        return tm_errf(err, TM_EIO, "session: HMAC-SHA256 failed");
    char mh[2 * MAC_SIZE + 1];
    hex(m, MAC_SIZE, mh);
    snprintf(out, TM_SESSION_TOKEN_SIZE, "v1.%s.%s.%s", key_id, exp, mh);
    return TM_OK;
}

enum tm_session_verdict tm_session_verify(const unsigned char key[TM_SESSION_KEY_SIZE],
                                          const char *token, size_t len, int64_t now,
                                          char key_id[TM_KEY_ID_SIZE], int64_t *expires)
{
    /* v1.<12 hex>.<digits>.<64 hex> */
    if (len < 3 + ID_HEX + 1 + 1 + 1 + 2 * MAC_SIZE || len >= TM_SESSION_TOKEN_SIZE ||
        memcmp(token, "v1.", 3) || token[3 + ID_HEX] != '.' || !valid_key_id(token + 3, ID_HEX))
        return TM_SESSION_MALFORMED;
    const char *exp = token + 3 + ID_HEX + 1;
    const char *mh = token + len - 2 * MAC_SIZE;
    if (mh[-1] != '.')
        return TM_SESSION_MALFORMED;
    size_t exp_len = (size_t)(mh - 1 - exp);
    int64_t e;
    unsigned char given[MAC_SIZE], want[MAC_SIZE];
    if (parse_expires(exp, exp_len, &e) || unhex(mh, MAC_SIZE, given))
        return TM_SESSION_MALFORMED;
    char id[ID_HEX + 1], exps[EXPIRES_DIGITS + 1];
    memcpy(id, token + 3, ID_HEX);
    id[ID_HEX] = 0;
    memcpy(exps, exp, exp_len);
    exps[exp_len] = 0;
    const char *parts[] = {SESSION_LABEL, id, exps};
    if (mac(key, parts, 3, want) || CRYPTO_memcmp(given, want, MAC_SIZE))
        return TM_SESSION_FORGED;
    snprintf(key_id, TM_KEY_ID_SIZE, "%s", id);
    *expires = e;
    return e > now ? TM_SESSION_OK : TM_SESSION_EXPIRED;
}

tm_status tm_session_check(const unsigned char key[TM_SESSION_KEY_SIZE], struct tm_keys *keys,
                           const char *token, size_t len, int64_t now,
                           enum tm_session_verdict *verdict, struct tm_principal *who,
                           int64_t *expires, char *err)
{
    char id[TM_KEY_ID_SIZE];
    memset(who, 0, sizeof(*who));
    *expires = 0;
    *verdict = tm_session_verify(key, token, len, now, id, expires);
    if (*verdict != TM_SESSION_OK)
        return TM_OK;
    int ok = 0;
    tm_status st = tm_keys_check_id(keys, id, &ok, who, err);
    if (st)
        return st;
    if (!ok)
        *verdict = TM_SESSION_REVOKED;
    return TM_OK;
}

/* ---------------------------------------------------------------------- */
/* Links. */

tm_status tm_session_link_sign(const unsigned char key[TM_SESSION_KEY_SIZE], const char *tenant,
                               const char *path, int64_t expires, char sig[TM_SESSION_SIG_SIZE],
                               char *err)
{
    char exp[EXPIRES_DIGITS + 2];
    snprintf(exp, sizeof(exp), "%lld", (long long)expires);
    const char *parts[] = {LINK_LABEL, tenant, path, exp};
    unsigned char m[MAC_SIZE];
    if (expires < 0 || mac(key, parts, 4, m))
        return tm_errf(err, TM_EIO, "link: HMAC-SHA256 failed");
    hex(m, MAC_SIZE, sig);
    return TM_OK;
}

enum tm_session_verdict tm_session_link_verify(const unsigned char key[TM_SESSION_KEY_SIZE],
                                               const char *tenant, const char *path,
                                               const char *expires, const char *sig, int64_t now)
{
    int64_t e;
    unsigned char given[MAC_SIZE], want[MAC_SIZE];
    if (!expires || !sig || parse_expires(expires, strlen(expires), &e) ||
        strlen(sig) != 2 * MAC_SIZE || unhex(sig, MAC_SIZE, given))
        return TM_SESSION_MALFORMED;
    /* The MAC is over the expiry as given: leading zeros make another
     * text, which the signer never wrote, so it fails as forged. */
    const char *parts[] = {LINK_LABEL, tenant, path, expires};
    if (mac(key, parts, 4, want) || CRYPTO_memcmp(given, want, MAC_SIZE))
        return TM_SESSION_FORGED;
    return e > now ? TM_SESSION_OK : TM_SESSION_EXPIRED;
}
