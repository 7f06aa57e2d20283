/* utf8.c - UTF-8 validation and repair, Python's whitespace and \w classes. */
#include "core/text/utf8.h"

#include <string.h>
#include <utf8proc.h>

/*
 * Length of the well-formed sequence starting at s[i] (1..4), or the
 * negated length of its maximal invalid subpart (-1..-3): the longest prefix
 * that could still have begun a valid sequence, which Python (and the
 * Unicode standard's "best practice") replaces by one U+FFFD.
 */
static int seq_len(const unsigned char *s, size_t len, size_t i)
{
    unsigned char c = s[i];
    int need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* <= U+10FFFF */
    } else {
        return -1;
    }
    for (int k = 1; k <= need; k++) {
        if (i + (size_t)k >= len)
            return -k;
        unsigned char d = s[i + (size_t)k];
        if (k == 1 ? (d < lo || d > hi) : (d < 0x80 || d > 0xBF))
            return -k;
    }
    return need + 1;
}

size_t tm_utf8_valid_prefix(const char *s, size_t len)
{
    int ascii;
    return tm_utf8_valid_prefix_ascii(s, len, &ascii);
}

size_t tm_utf8_valid_prefix_ascii(const char *s, size_t len, int *ascii)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    *ascii = 1;
    while (i < len) {
        /* Skip ASCII eight bytes at a time: most text is mostly ASCII. */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, u + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= len)
            break;
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        *ascii = 0;
        int n = seq_len(u, len, i);
        if (n < 0)
            return i;
        i += (size_t)n;
    }
    return len;
}

int tm_utf8_is_ascii(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    uint64_t acc = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, u + i, 8);
        acc |= w;
    }
    for (; i < len; i++)
        acc |= u[i];
    return (acc & 0x8080808080808080ull) == 0;
}

size_t tm_utf8_repair(const char *s, size_t len, char *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        int n = seq_len(u, len, i);
        if (n > 0) {
            memcpy(out + o, u + i, (size_t)n);
            o += (size_t)n;
            i += (size_t)n;
        } else {
            out[o++] = (char)0xEF;
            out[o++] = (char)0xBF;
            out[o++] = (char)0xBD;
            i += (size_t)-n;
        }
    }
    return o;
}

size_t tm_utf8_encode(int32_t cp, char *out)
{
    unsigned char *u = (unsigned char *)out;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | (cp >> 6));
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | (cp >> 12));
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    u[0] = (unsigned char)(0xF0 | (cp >> 18));
    u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

int tm_unicode_is_space(int32_t cp)
{
    /* Python's str.isspace(): bidirectional class WS, B or S, or category
     * Zs. The list is stable across Unicode versions since 6.3 and was
     * checked against Python 3.11 over all code points (see test_utf8.c). */
    if (cp < 0x80)
        return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
    switch (cp) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
        return 1;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

int tm_unicode_is_word(int32_t cp)
{
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
               cp == '_';
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return 1;
    default:
        return 0;
    }
}

size_t tm_utf8_lspace(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            if (!tm_unicode_is_space(c))
                break;
            i++;
            continue;
        }
        size_t n;
        int32_t cp = tm_utf8_decode(s + i, len - i, &n);
        if (!tm_unicode_is_space(cp))
            break;
        i += n;
    }
    return i;
}

size_t tm_utf8_rspace(const char *s, size_t len)
{
    size_t end = len;
    while (end > 0) {
        unsigned char c = (unsigned char)s[end - 1];
        if (c < 0x80) {
            if (!tm_unicode_is_space(c))
                break;
            end--;
            continue;
        }
        size_t start = end - 1; /* back to the lead byte */
        while (start > 0 && ((unsigned char)s[start] & 0xC0) == 0x80)
            start--;
        size_t n;
        int32_t cp = tm_utf8_decode(s + start, end - start, &n);
        if (!tm_unicode_is_space(cp))
            break;
        end = start;
    }
    return len - end;
}
