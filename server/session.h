/*
 * session.h - what a browser holds instead of an API key: session tokens
 * (the topicd_session cookie of POST /v1/session) and signed links (POST
 * /v1/jobs/{id}/links), both HMAC-SHA256 under the server's signing secret,
 * and where that secret comes from.
 *
 * Both are self-contained, so that any replica behind a load balancer
 * checks them without shared state but the secret, which lives in the
 * store (made once, by the first replica that needs it) or in a file every
 * replica is given (--secret-file).
 *
 * A session token is "v1.<key id>.<expires>.<mac>": the id of the API key
 * that signed in (never the key), its expiry (Unix seconds) and
 * HMAC(secret, "topicd-session-v1|<key id>|<expires>") in hex. It names a
 * key rather than a tenant so that revoking the key ends its sessions:
 * tm_session_check asks the keys cache whether the key still stands.
 *
 * A link's signature is HMAC(secret, "topicd-link-v1|<tenant>|<path>|
 * <expires>") in hex, carried as ?expires=T&sig=HEX. The tenant is the
 * record's owner, so a link made for one tenant's job cannot be moved to
 * another's path, nor a session token be taken for a link (the labels
 * differ). Signatures are compared in constant time (CRYPTO_memcmp).
 * Thread-safety: reentrant; tm_session_check as thread-safe as keys.h.
 */
#ifndef TM_SERVER_SESSION_H
#define TM_SERVER_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "keys.h"
#include "store.h"

#define TM_SESSION_COOKIE "topicd_session"
/* The bytes of the signing key. */
#define TM_SESSION_KEY_SIZE TM_STORE_SECRET_SIZE
/* The bytes of a session token, NUL included ("v1." 12 "." 20 "." 64). */
#define TM_SESSION_TOKEN_SIZE 104
/* The bytes of a link signature in hex, NUL included. */
#define TM_SESSION_SIG_SIZE 65
/* The shortest secret file accepted, in bytes. */
#define TM_SESSION_SECRET_FILE_MIN 32

/* What a token or link check found. */
enum tm_session_verdict {
    TM_SESSION_OK,
    TM_SESSION_MALFORMED, /* not a token or link of this form */
    TM_SESSION_FORGED,    /* its MAC is wrong: tampered, or another secret */
    TM_SESSION_EXPIRED,   /* genuine, but past its expiry */
    TM_SESSION_REVOKED    /* genuine, but its key is revoked or gone */
};

/* The signing key from the file at path: the SHA-256 of its contents
 * (trailing whitespace removed), which must be at least
 * TM_SESSION_SECRET_FILE_MIN bytes. TM_EINVAL (too short), TM_EIO. */
tm_status tm_session_secret_file(const char *path, unsigned char key[TM_SESSION_KEY_SIZE],
                                 char *err);

/* The signing key from the store: 32 random bytes stored once (the first
 * process to ask stores them; every later one, on any replica, reads the
 * same). The store's status. */
tm_status tm_session_secret_store(struct tm_store *store, unsigned char key[TM_SESSION_KEY_SIZE],
                                  char *err);

/* A session token for the key whose id is key_id, valid until expires
 * (Unix seconds), into out. TM_EINVAL for a bad id, TM_EIO when libcrypto
 * fails. */
tm_status tm_session_issue(const unsigned char key[TM_SESSION_KEY_SIZE], const char *key_id,
                           int64_t expires, char out[TM_SESSION_TOKEN_SIZE], char *err);

/* Checks the len bytes of token (borrowed) against key at now: its key id
 * into key_id and expiry into *expires when genuine (OK or EXPIRED). */
enum tm_session_verdict tm_session_verify(const unsigned char key[TM_SESSION_KEY_SIZE],
                                          const char *token, size_t len, int64_t now,
                                          char key_id[TM_KEY_ID_SIZE], int64_t *expires);

/* tm_session_verify, then whether its key still stands (keys, a cache
 * over the store): *verdict, and *who filled when it is OK. A store
 * failure is its status (the caller answers 503, never 401). */
tm_status tm_session_check(const unsigned char key[TM_SESSION_KEY_SIZE], struct tm_keys *keys,
                           const char *token, size_t len, int64_t now,
                           enum tm_session_verdict *verdict, struct tm_principal *who,
                           int64_t *expires, char *err);

/* The signature of a link to path (borrowed, "/v1/jobs/ID/result") of
 * tenant's record, valid until expires, into sig. TM_EIO when libcrypto
 * fails. */
tm_status tm_session_link_sign(const unsigned char key[TM_SESSION_KEY_SIZE], const char *tenant,
                               const char *path, int64_t expires, char sig[TM_SESSION_SIG_SIZE],
                               char *err);

/* Checks a link's ?expires= and ?sig= (as given, NULL when absent) for
 * path of tenant's record at now. MALFORMED: a parameter missing or not a
 * number or hex of the right length. */
enum tm_session_verdict tm_session_link_verify(const unsigned char key[TM_SESSION_KEY_SIZE],
                                               const char *tenant, const char *path,
                                               const char *expires, const char *sig, int64_t now);

#endif
