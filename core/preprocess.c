/* preprocess.c - scikit-learn's newsgroup header, footer and quote removal. */
#include "preprocess.h"

#include <string.h>

#include "utf8.h"
#include "vectorize.h"

size_t tm_preprocess_strip_header(const char *s, size_t len, const char **out)
{
    const char *p = len >= 2 ? memmem(s, len, "\n\n", 2) : NULL;
    if (!p) {
        *out = s + len;
        return 0;
    }
    *out = p + 2;
    return len - (size_t)(p + 2 - s);
}

/* line.strip().strip("-") == "" */
static int is_separator_line(const char *s, size_t len)
{
    size_t l = tm_utf8_lspace(s, len);
    size_t r = l < len ? tm_utf8_rspace(s + l, len - l) : 0;
    for (size_t i = l; i < len - r; i++)
        if (s[i] != '-')
            return 0;
    return 1;
}

size_t tm_preprocess_strip_footer(const char *s, size_t len, const char **out)
{
    size_t l = tm_utf8_lspace(s, len);
    size_t r = l < len ? tm_utf8_rspace(s + l, len - l) : 0;
    const char *t = s + l;
    size_t tlen = len - l - r;
    /* Walk the lines of the stripped text from the last one backwards. */
    size_t end = tlen;
    for (;;) {
        const char *nl = end ? memrchr(t, '\n', end) : NULL;
        size_t start = nl ? (size_t)(nl - t) + 1 : 0;
        if (start == 0)
            break; /* line 0: separator or not, the text is kept whole */
        if (is_separator_line(t + start, end - start)) {
            *out = t;
            return start - 1; /* lines before it, without the joining "\n" */
        }
        end = start - 1;
    }
    *out = s;
    return len;
}

/* The regular expression (writes in|writes:|wrote:|says:|said:|^In article|
 * ^Quoted from|^\||^>), searched in each line. The unanchored patterns are
 * found with one memmem scan of the whole text each, not one per line: next[k]
 * is the next occurrence of pattern k at or after the current line (none of
 * them holds a "\n", so an occurrence before the line's end is inside it). */
static const char *const anywhere[] = {"writes in", "writes:", "wrote:", "says:", "said:"};
#define N_ANYWHERE (sizeof(anywhere) / sizeof(anywhere[0]))

static int is_quote_line(const char *s, size_t len, size_t start, size_t end,
                         const char **next)
{
    const char *line = s + start;
    size_t n = end - start;
    int hit = 0;
    if (n > 0 && (line[0] == '>' || line[0] == '|'))
        hit = 1;
    else if (n >= 10 && memcmp(line, "In article", 10) == 0)
        hit = 1;
    else if (n >= 11 && memcmp(line, "Quoted from", 11) == 0)
        hit = 1;
    for (size_t k = 0; k < N_ANYWHERE; k++) {
        if (next[k] && next[k] < line) {
            size_t plen = strlen(anywhere[k]);
            next[k] = memmem(line, len - start, anywhere[k], plen);
        }
        if (next[k] && next[k] < s + end)
            hit = 1;
    }
    return hit;
}

size_t tm_preprocess_strip_quotes(const char *s, size_t len, char *out)
{
    const char *next[N_ANYWHERE];
    size_t o = 0, start = 0;
    int first = 1;
    for (size_t k = 0; k < N_ANYWHERE; k++)
        next[k] = memmem(s, len, anywhere[k], strlen(anywhere[k]));
    for (;;) {
        const char *nl = memchr(s + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - s) : len;
        if (!is_quote_line(s, len, start, end, next)) {
            if (!first)
                out[o++] = '\n';
            memcpy(out + o, s + start, end - start);
            o += end - start;
            first = 0;
        }
        if (!nl)
            break;
        start = end + 1;
    }
    return o;
}

size_t tm_preprocess(unsigned flags, const char *s, size_t len, char *scratch,
                     const char **out)
{
    if (flags & TM_STRIP_HEADERS)
        len = tm_preprocess_strip_header(s, len, &s);
    if (flags & TM_STRIP_FOOTERS)
        len = tm_preprocess_strip_footer(s, len, &s);
    if (flags & TM_STRIP_QUOTES) {
        len = tm_preprocess_strip_quotes(s, len, scratch);
        s = scratch;
    }
    *out = s;
    return len;
}
