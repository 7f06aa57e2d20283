/*
 * auth_body.h - the JSON bodies of the browser sign-in routes: POST
 * /v1/session's {"key": "tpk_..."} and POST /v1/jobs/{id}/links's
 * {"expires_in": seconds}. Unknown and duplicate fields are errors, as in
 * a job spec; errors name the field and where it is.
 * Thread-safety: reentrant.
 */
#ifndef TM_API_AUTH_BODY_H
#define TM_API_AUTH_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "api/error.h"

/* {"key": "..."} (len bytes of text, borrowed): the key into key (size
 * bytes, NUL-terminated). TM_EPARSE (not JSON), TM_EINVAL (not an object,
 * no key, not a string, a NUL, longer than size - 1 bytes), TM_ENOMEM. */
tm_status tm_session_body_parse(const char *text, size_t len, char *key, size_t size,
                                struct tm_api_error *e);

/* {} or {"expires_in": n}, or no bytes at all: *expires_in n, a number of
 * integral value (600, 600.0, 6e2) in [min, max], or def when absent. TM_EPARSE, TM_EINVAL,
 * TM_ERANGE, TM_ENOMEM. */
tm_status tm_links_body_parse(const char *text, size_t len, int64_t def, int64_t min, int64_t max,
                              int64_t *expires_in, struct tm_api_error *e);

#endif
