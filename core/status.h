/*
 * status.h - the one status code of topicd, and its messages.
 *
 * Every fallible function in core/, api/ and gpu/ returns a tm_status; detail
 * goes into a caller-provided error buffer of TM_ERR_SIZE bytes (or NULL).
 * Codes are append-only: their numbers are part of logs and stored jobs.
 * Thread-safety: all functions here are reentrant.
 */
#ifndef TM_CORE_STATUS_H
#define TM_CORE_STATUS_H

#include <stddef.h>

#define TM_ERR_SIZE 256

/* X(name, message). Append only. */
#define TM_STATUS_MAP(X)                                                                           \
    X(OK, "success")                                                                               \
    X(ENOMEM, "out of memory")                                                                     \
    X(EINVAL, "invalid argument")                                                                  \
    X(ERANGE, "value out of range")                                                                \
    X(EEMPTY, "empty input")                                                                       \
    X(ENOTERMS, "no terms remain")                                                                 \
    X(ETOOBIG, "input exceeds a size limit")                                                       \
    X(ECANCELLED, "cancelled")                                                                     \
    X(ENOTBUILT, "compiled without this feature")                                                  \
    X(ENODEV, "no usable device")                                                                  \
    X(ENUMERIC, "numerical failure")                                                               \
    X(ELAPACK, "dense linear algebra routine failed")                                              \
    X(EIO, "input/output error")                                                                   \
    X(EPARSE, "malformed input")                                                                   \
    X(ENOTFOUND, "not found")                                                                      \
    X(EBUSY, "resource busy")                                                                      \
    X(EDEVICE, "device failure")                                                                   \
    X(ELOST, "claim lost")                                                                         \
    X(ENOSPC, "no space left on the store's disk")

typedef enum {
#define TM__STATUS_ENUM(name, msg) TM_##name,
    TM_STATUS_MAP(TM__STATUS_ENUM)
#undef TM__STATUS_ENUM
        TM__STATUS_COUNT
} tm_status;

/* A static, human-readable message; never NULL, even for unknown codes. */
const char *tm_strerror(tm_status status);

/* The code's name without the TM_ prefix ("EINVAL"); never NULL. */
const char *tm_status_name(tm_status status);

/*
 * Formats a detail message into err (NULL, or TM_ERR_SIZE bytes) and returns
 * status, so a failing path reads: return tm_errf(err, TM_EINVAL, "...", ...).
 */
tm_status tm_errf(char *err, tm_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * For a function with a tm_status st and one cleanup label out (the goto
 * ladder): st = call, and on failure jump to out, which returns st.
 */
#define TM_TRY(call)                                                                               \
    do {                                                                                           \
        st = (call);                                                                               \
        if (st != TM_OK)                                                                           \
            goto out;                                                                              \
    } while (0)

#endif
