/* tokenize.c - Python's str.lower(), sklearn's accent stripping, and the
 * (?u)\b\w\w+\b tokens. */
#include "core/text/tokenize.h"

#include <stdint.h>
#include <string.h>
#include <utf8proc.h>

#include "core/alloc.h"
#include "core/text/utf8.h"

tm_status tm_textbuf_reserve(struct tm_textbuf *b, size_t n)
{
    size_t max = b->max ? b->max : SIZE_MAX / 2;
    if (n <= b->cap)
        return TM_OK;
    if (n > max)
        return TM_ETOOBIG;
    /* Grow geometrically so that a long document costs O(log n) reallocs. */
    size_t cap = b->cap ? b->cap : 256;
    while (cap < n)
        cap = cap > max / 2 ? max : cap * 2;
    char *p = tm_realloc(b->data, cap);
    if (!p)
        return TM_ENOMEM;
    b->data = p;
    b->cap = cap;
    return TM_OK;
}

void tm_textbuf_release(struct tm_textbuf *b)
{
    tm_free(b->data);
    b->data = NULL;
    b->cap = 0;
}

/*
 * Unicode's Case_Ignorable: Mn, Me, Cf, Lm, Sk, and Word_Break MidLetter,
 * MidNumLet or Single_Quote (listed: utf8proc has no Word_Break property).
 */
static int is_case_ignorable(int32_t c)
{
    switch (c) {
    case 0x27:
    case 0x2E:
    case 0x3A:
    case 0xB7:
    case 0x387:
    case 0x55F:
    case 0x5F4:
    case 0x2018:
    case 0x2019:
    case 0x2024:
    case 0x2027:
    case 0xFE13:
    case 0xFE52:
    case 0xFE55:
    case 0xFF07:
    case 0xFF0E:
    case 0xFF1A:
        return 1;
    default:
        break;
    }
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK:
        return 1;
    default:
        return 0;
    }
}

/*
 * Unicode's Cased, approximated as Lu, Ll, Lt, or any code point with a case
 * mapping, plus the two Other_Lowercase letters of Latin-1. It misses the
 * few modifier letters with Other_Lowercase and no mapping (U+02B0..); they
 * are Case_Ignorable too, so the Final_Sigma test skips them either way.
 */
static int is_cased(int32_t c)
{
    if (c == 0xAA || c == 0xBA)
        return 1;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
        return 1;
    default:
        return utf8proc_tolower(c) != c || utf8proc_toupper(c) != c;
    }
}

/* Start of the code point that ends just before byte end (> 0). */
static size_t prev_start(const char *s, size_t end)
{
    size_t i = end - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    return i;
}

/* CPython's handle_capital_sigma: U+03A3 at s[at .. after) is final when a
 * cased letter precedes it and none follows, skipping case-ignorables. */
static int final_sigma(const char *s, size_t len, size_t at, size_t after)
{
    int32_t c = 0;
    size_t i = at, n;
    int found = 0;
    while (i > 0) {
        i = prev_start(s, i);
        c = tm_utf8_decode(s + i, len - i, &n);
        if (!is_case_ignorable(c)) {
            found = 1;
            break;
        }
    }
    if (!found || !is_cased(c))
        return 0;
    for (i = after; i < len; i += n) {
        c = tm_utf8_decode(s + i, len - i, &n);
        if (!is_case_ignorable(c))
            return !is_cased(c);
    }
    return 1;
}

/* Appends cp, accent-stripped as asked, at buf[*o]; room for 4 * 32 bytes
 * is reserved by the caller. */
static void put_stripped(char *buf, size_t *o, int32_t cp, enum tm_accents accents)
{
    if (accents == TM_ACCENTS_NONE || cp < 0x80) {
        *o += tm_utf8_encode(cp, buf + *o);
        return;
    }
    utf8proc_int32_t d[32];
    int boundclass = 0;
    utf8proc_ssize_t n =
        utf8proc_decompose_char(cp, d, 32, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, &boundclass);
    if (n < 0 || n > 32) { /* cannot happen: decompositions are at most 18 long */
        d[0] = cp;
        n = 1;
    }
    for (utf8proc_ssize_t k = 0; k < n; k++) {
        if (accents == TM_ACCENTS_ASCII ? d[k] >= 0x80
                                        : utf8proc_get_property(d[k])->combining_class != 0)
            continue;
        *o += tm_utf8_encode(d[k], buf + *o);
    }
}

tm_status tm_tokenize_normalize(int lowercase, enum tm_accents accents, const char *s, size_t len,
                                struct tm_textbuf *buf, const char **out, size_t *out_len)
{
    tm_status st;
    if (tm_utf8_is_ascii(s, len)) {
        /* NFKD leaves ASCII alone, so only case can change. */
        size_t i = 0;
        if (lowercase)
            while (i < len && !(s[i] >= 'A' && s[i] <= 'Z'))
                i++;
        if (!lowercase || i == len) {
            *out = s;
            *out_len = len;
            return TM_OK;
        }
        if ((st = tm_textbuf_reserve(buf, len)) != TM_OK)
            return st;
        memcpy(buf->data, s, i);
        for (; i < len; i++) {
            char c = s[i];
            buf->data[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
        }
        *out = buf->data;
        *out_len = len;
        return TM_OK;
    }
    size_t o = 0, n;
    for (size_t i = 0; i < len; i += n) {
        int32_t c = tm_utf8_decode(s + i, len - i, &n);
        if ((st = tm_textbuf_reserve(buf, o + 2 * 4 * 32)) != TM_OK)
            return st;
        if (!lowercase) {
            put_stripped(buf->data, &o, c, accents);
        } else if (c == 0x130) {
            /* SpecialCasing: the only unconditional multi-character lower
             * case mapping, which Python applies. */
            put_stripped(buf->data, &o, 'i', accents);
            put_stripped(buf->data, &o, 0x307, accents);
        } else if (c == 0x3A3) {
            put_stripped(buf->data, &o, final_sigma(s, len, i, i + n) ? 0x3C2 : 0x3C3, accents);
        } else {
            put_stripped(buf->data, &o, utf8proc_tolower(c), accents);
        }
    }
    *out = buf->data;
    *out_len = o;
    return TM_OK;
}

/* 1 for the ASCII word characters [0-9A-Za-z_], 2 for bytes >= 0x80. */
#define ASCII_CLASS(c)                                                                             \
    ((c) >= 0x80 ? 2                                                                               \
                 : (((c) >= '0' && (c) <= '9') || ((c) >= 'A' && (c) <= 'Z') ||                    \
                    ((c) >= 'a' && (c) <= 'z') || (c) == '_'))
#define C4(b) ASCII_CLASS(b), ASCII_CLASS(b + 1), ASCII_CLASS(b + 2), ASCII_CLASS(b + 3)
#define C16(b) C4(b), C4(b + 4), C4(b + 8), C4(b + 12)
#define C64(b) C16(b), C16(b + 16), C16(b + 32), C16(b + 48)
static const unsigned char byte_class[256] = {C64(0), C64(64), C64(128), C64(192)};

static inline int word_at(const char *s, size_t len, size_t i, size_t *n)
{
    unsigned char k = byte_class[(unsigned char)s[i]];
    if (k < 2) {
        *n = 1;
        return k;
    }
    return tm_unicode_is_word(tm_utf8_decode(s + i, len - i, n));
}

int tm_tokenize_next(const char *s, size_t len, size_t *pos, size_t *start, size_t *tlen)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = *pos, n;
    while (i < len) {
        /* Skip ASCII non-word bytes, the common case, in a tight loop. */
        while (i < len && byte_class[u[i]] == 0)
            i++;
        if (i >= len)
            break;
        if (!word_at(s, len, i, &n)) {
            i += n;
            continue;
        }
        size_t b = i, chars = 0;
        for (;;) {
            i += n;
            chars++;
            while (i < len && byte_class[u[i]] == 1) {
                i++;
                chars++;
            }
            if (i >= len || byte_class[u[i]] == 0 || !word_at(s, len, i, &n))
                break;
        }
        if (chars >= 2) {
            *start = b;
            *tlen = i - b;
            *pos = i;
            return 1;
        }
        /* i is at a non-word character or the end: the loop steps over it */
    }
    *pos = len;
    return 0;
}

#if defined(__SSE2__)
#include <emmintrin.h>

/* Bytes in [lo, hi] of 16 ASCII bytes (signed compares: ASCII is 0..127). */
static inline __m128i bytes_between(__m128i c, char lo, char hi)
{
    return _mm_and_si128(_mm_cmpgt_epi8(c, _mm_set1_epi8((char)(lo - 1))),
                         _mm_cmplt_epi8(c, _mm_set1_epi8((char)(hi + 1))));
}

/*
 * 64 bytes at p: their bytes to out (the letters lower-cased when lower is
 * set), and a mask with bit j set when p[j] is a word character
 * [0-9A-Za-z_]. p and out may be unaligned; bytes >= 0x80 (never here: the
 * text is ASCII) would read as non-word.
 */
static inline uint64_t word_mask64(const char *p, char *out, int lower)
{
    uint64_t m = 0;
    for (int k = 0; k < 4; k++) {
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        __m128i upper = bytes_between(c, 'A', 'Z');
        __m128i letter = bytes_between(_mm_or_si128(c, _mm_set1_epi8(0x20)), 'a', 'z');
        __m128i digit_or_underscore =
            _mm_or_si128(bytes_between(c, '0', '9'), _mm_cmpeq_epi8(c, _mm_set1_epi8('_')));
        __m128i word = _mm_or_si128(letter, digit_or_underscore);
        if (lower)
            c = _mm_add_epi8(c, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
        _mm_storeu_si128((__m128i *)(void *)(out + 16 * k), c);
        m |= (uint64_t)(uint16_t)_mm_movemask_epi8(word) << (16 * k);
    }
    return m;
}

/*
 * 64 bytes at a time: a mask of the word bytes, whose changes (m ^ m << 1,
 * carrying whether the previous block ended inside a word) are the tokens'
 * starts and ends, taken with count-trailing-zeros. The byte loop it
 * replaces took a mispredicted branch at each token's start and end (about
 * one in six bytes on 20 Newsgroups): bench/NOTES.md, "The ASCII tokenizer
 * by masks".
 */
size_t tm_tokenize_ascii(const char *s, size_t len, int lowercase, size_t *pos, char *out,
                         struct tm_token *toks, size_t max)
{
    size_t i = *pos, n = 0, b = 0;
    uint64_t inside = 0; /* 1 while a word runs on from the previous block, from b */
    if (!max)
        return 0;
    while (i < len) {
        size_t span = len - i < 64 ? len - i : 64;
        uint64_t m;
        if (span == 64) {
            m = word_mask64(s + i, out + i, lowercase);
        } else {
            /* The tail: zero bytes past the end are non-word, so a word
             * running to the end shows an edge at bit span. */
            char in[64] = {0}, low[64];
            memcpy(in, s + i, span);
            m = word_mask64(in, low, lowercase);
            memcpy(out + i, low, span);
        }
        uint64_t edges = m ^ (m << 1 | inside);
        while (edges) {
            size_t at = i + (size_t)__builtin_ctzll(edges);
            edges &= edges - 1;
            if (!inside) {
                b = at;
                inside = 1;
                continue;
            }
            inside = 0;
            if (at - b >= 2) {
                toks[n].start = b;
                toks[n++].len = at - b;
                if (n == max) {
                    *pos = at;
                    return n;
                }
            }
        }
        i += span;
    }
    /* A word up to the end of a text whose length is a multiple of 64. */
    if (inside && len - b >= 2) {
        toks[n].start = b;
        toks[n++].len = len - b;
    }
    *pos = len;
    return n;
}

#else /* no SSE2: a byte at a time */

/* ASCII word characters to their lower-case (fold[1]) or own (fold[0])
 * byte; 0 for everything else. */
#define IS_WORD(c)                                                                                 \
    (((c) >= '0' && (c) <= '9') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z') ||     \
     (c) == '_')
#define FOLD(c, lower)                                                                             \
    (unsigned char)((c) < 0x80 && IS_WORD(c)                                                       \
                        ? ((lower) && (c) >= 'A' && (c) <= 'Z' ? (c) + 32 : (c))                   \
                        : 0)
#define F4(b, l) FOLD(b, l), FOLD(b + 1, l), FOLD(b + 2, l), FOLD(b + 3, l)
#define F16(b, l) F4(b, l), F4(b + 4, l), F4(b + 8, l), F4(b + 12, l)
#define F64(b, l) F16(b, l), F16(b + 16, l), F16(b + 32, l), F16(b + 48, l)
static const unsigned char fold[2][256] = {
    {F64(0, 0), F64(64, 0), F64(128, 0), F64(192, 0)},
    {F64(0, 1), F64(64, 1), F64(128, 1), F64(192, 1)},
};

size_t tm_tokenize_ascii(const char *s, size_t len, int lowercase, size_t *pos, char *out,
                         struct tm_token *toks, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    const unsigned char *f = fold[lowercase ? 1 : 0];
    size_t i = *pos, n = 0;
    while (n < max) {
        while (i < len && !f[u[i]])
            i++;
        if (i >= len)
            break;
        size_t b = i;
        unsigned char c;
        while (i < len && (c = f[u[i]]) != 0)
            out[i++] = (char)c;
        if (i - b >= 2) {
            toks[n].start = b;
            toks[n++].len = i - b;
        }
    }
    *pos = i;
    return n;
}

#endif
