/*
 * jbuf.h - a growable output buffer with a hard cap (curl's dynbuf), and
 * the JSON tokens the renderers write into it: string literals, numbers
 * that read back exactly.
 *
 * Once an append would pass the cap, or an allocation fails, the buffer
 * remembers the failure (TM_ETOOBIG or TM_ENOMEM) and later appends do
 * nothing, so a renderer can append freely and check once at the end.
 * Thread-safety: one owner at a time.
 */
#ifndef TM_API_JBUF_H
#define TM_API_JBUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* The fields may be read (data is NUL-terminated while status is TM_OK);
 * write only through the functions below. */
struct tm_jbuf {
    char *data;
    size_t len, alloc, cap;
    tm_status status;
};

/* An empty buffer that holds at most cap bytes (cap 0: SIZE_MAX / 2). */
void tm_jbuf_init(struct tm_jbuf *b, size_t cap);
/* An empty buffer over the caller's size bytes of buf (size >= 1), which it
 * never reallocates: an append that does not fit fails with TM_ETOOBIG.
 * For text that must be written without allocating; neither released nor
 * detached (buf stays the caller's). */
void tm_jbuf_init_fixed(struct tm_jbuf *b, char *buf, size_t size);
/* Frees the data; b can be appended to again (its cap and status stay). */
void tm_jbuf_release(struct tm_jbuf *b);
/* Returns b's NUL-terminated data, owned (tm_free), and resets b; NULL (and
 * b released) when b failed, with the status in *status. */
char *tm_jbuf_detach(struct tm_jbuf *b, size_t *len, tm_status *status);
/* Appends n bytes of s (borrowed; NULs too), a C string, or printf's output.
 * Each appends all of it or, past the cap or memory, nothing. */
void tm_jbuf_put(struct tm_jbuf *b, const char *s, size_t n);
void tm_jbuf_puts(struct tm_jbuf *b, const char *s);
void tm_jbuf_printf(struct tm_jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal with quotes; valid UTF-8 passes through, an invalid
 * byte becomes \ufffd (the output stays valid UTF-8); control characters,
 * '"' and '\\' are escaped. */
void tm_jbuf_string(struct tm_jbuf *b, const char *s, size_t n);
/* The shortest of %.15g/%.16g/%.17g that reads back to v exactly. v must be
 * finite (the caller checks: NaN and Inf have no JSON form). */
void tm_jbuf_double(struct tm_jbuf *b, double v);
/* The texts of recent tm_jbuf_double values, keyed by their bits (so the
 * same text), for long arrays that repeat a few values (idf is a function of
 * the document frequency): a hit copies the text instead of formatting and
 * reading it back. Zero it before the first use; 10 KiB. */
struct tm_jbuf_dcache {
    struct {
        uint64_t bits;
        unsigned char len; /* 0: empty */
        char text[31];
    } slot[256];
};
/* tm_jbuf_double(b, v) through c (borrowed, one owner at a time). */
void tm_jbuf_double_cached(struct tm_jbuf *b, double v, struct tm_jbuf_dcache *c);
/* v in decimal. */
void tm_jbuf_int(struct tm_jbuf *b, int64_t v);

#endif
