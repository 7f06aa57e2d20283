/*
 * tokenize.h - scikit-learn's default analyzer: str.lower(), accent
 * stripping, then the tokens of (?u)\b\w\w+\b.
 *
 * Normalisation follows sklearn's _preprocess order: lower-case first, then
 * strip accents.
 * - Lower-casing is Python's str.lower(): utf8proc's simple lower-case
 *   mapping, plus U+0130 (I with dot above) -> "i" U+0307 and the Final_Sigma
 *   rule for U+03A3, whose Cased / Case_Ignorable context is approximated
 *   from general categories and case mappings (see tokenize.c).
 * - "unicode" accents: NFKD, then every code point of non-zero canonical
 *   combining class goes (strip_accents_unicode); "ascii": NFKD, then every
 *   non-ASCII code point goes (strip_accents_ascii).
 * Tokens are maximal runs of at least two word characters (utf8.h's
 * tm_unicode_is_word), counted in code points.
 * Thread-safety: reentrant; a tm_textbuf has one owner at a time.
 */
#ifndef TM_CORE_TEXT_TOKENIZE_H
#define TM_CORE_TEXT_TOKENIZE_H

#include <stddef.h>

#include "core/status.h"
#include "core/text/vectorize.h"

/* A growable byte buffer, capped at max bytes (0: no cap but SIZE_MAX/2). */
struct tm_textbuf {
    char *data;
    size_t cap;
    size_t max;
};

/* Room for at least n bytes, keeping the contents. TM_ENOMEM, TM_ETOOBIG. */
tm_status tm_textbuf_reserve(struct tm_textbuf *b, size_t n);
void tm_textbuf_release(struct tm_textbuf *b);

/*
 * Lower-cases (when lowercase) and strips accents from s, valid UTF-8.
 * *out receives either s itself (nothing to change) or buf->data, and
 * *out_len its length. buf: caller's, grown here.
 */
tm_status tm_tokenize_normalize(int lowercase, enum tm_accents accents, const char *s, size_t len,
                                struct tm_textbuf *buf, const char **out, size_t *out_len);

/*
 * The next token of s (valid UTF-8) at or after *pos: returns 1 with the token
 * at s[*start .. *start + *tlen) and *pos moved past it, or 0 at the end.
 */
int tm_tokenize_next(const char *s, size_t len, size_t *pos, size_t *start, size_t *tlen);

/* A token found by tm_tokenize_ascii: out[start .. start + len). */
struct tm_token {
    size_t start, len;
};

/*
 * The fast path for pure-ASCII text (where NFKD changes nothing and \w is
 * [0-9A-Za-z_]): scans s from *pos in one pass, copying at least each
 * token's bytes (the SSE2 path copies them all), lower-cased when asked, to
 * out at the same offsets (out: caller's, len bytes; only the tokens' bytes
 * are to be read there), and stores up to max tokens in toks. Returns how
 * many; fewer than max means s is done. The same tokens as
 * tm_tokenize_normalize followed by tm_tokenize_next, for ASCII s.
 */
size_t tm_tokenize_ascii(const char *s, size_t len, int lowercase, size_t *pos, char *out,
                         struct tm_token *toks, size_t max);

#endif
