/*
 * utf8.h - UTF-8 decoding and repair with Python's semantics, and the few
 * Unicode character classes the text pipeline needs (Python's str.isspace
 * and the regular-expression class \w), answered through utf8proc.
 *
 * Thread-safety: all functions are reentrant; they touch no state.
 */
#ifndef TM_CORE_TEXT_UTF8_H
#define TM_CORE_TEXT_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define TM_UTF8_REPLACEMENT 0xFFFD

/*
 * Length of the valid prefix of s (== len when s is valid UTF-8). Overlong
 * forms, surrogates and code points above U+10FFFF are invalid, as in
 * Python's strict decoder.
 */
size_t tm_utf8_valid_prefix(const char *s, size_t len);

/* tm_utf8_valid_prefix that also sets *ascii to 1 when every byte of the
 * valid prefix is below 0x80 (one pass for both questions). */
size_t tm_utf8_valid_prefix_ascii(const char *s, size_t len, int *ascii);

/* 1 when every byte of s is below 0x80. */
int tm_utf8_is_ascii(const char *s, size_t len);

/*
 * Copies s to out, replacing each maximal invalid subpart by U+FFFD (EF BF
 * BD), which is what Python's bytes.decode("utf-8", errors="replace") does.
 * out: caller's, at least tm_utf8_repair_bound(len) bytes. Returns the
 * number of bytes written.
 */
size_t tm_utf8_repair(const char *s, size_t len, char *out);
static inline size_t tm_utf8_repair_bound(size_t len)
{
    return 3 * len;
}

/*
 * Decodes the code point at s[0..len), len >= 1, which must be valid UTF-8
 * (see tm_utf8_repair); *n receives its length in bytes.
 */
static inline int32_t tm_utf8_decode(const char *s, size_t len, size_t *n)
{
    const unsigned char *u = (const unsigned char *)s;
    (void)len;
    if (u[0] < 0x80) {
        *n = 1;
        return u[0];
    }
    if (u[0] < 0xE0) {
        *n = 2;
        return ((int32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
    }
    if (u[0] < 0xF0) {
        *n = 3;
        return ((int32_t)(u[0] & 0x0F) << 12) | ((int32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    }
    *n = 4;
    return ((int32_t)(u[0] & 0x07) << 18) | ((int32_t)(u[1] & 0x3F) << 12) |
           ((int32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
}

/* Writes code point cp (a valid scalar value) to out (4 bytes of room);
 * returns its length. */
size_t tm_utf8_encode(int32_t cp, char *out);

/* Python's str.isspace() for one code point (Unicode 14, as Python 3.11). */
int tm_unicode_is_space(int32_t cp);

/*
 * Python's re \w for str patterns: str.isalnum() (letters Lu Ll Lt Lm Lo and
 * numbers Nd Nl No) or '_'. Combining marks (Mn, Mc) are not word
 * characters. Answered from utf8proc's tables, so code points assigned after
 * utf8proc's Unicode version count as unassigned (see test_utf8.c).
 */
int tm_unicode_is_word(int32_t cp);

/*
 * The length of the Unicode-whitespace run at the start (or end) of s, as
 * Python's str.strip() would remove it. s must be valid UTF-8.
 */
size_t tm_utf8_lspace(const char *s, size_t len);
size_t tm_utf8_rspace(const char *s, size_t len);

#endif
