/* preprocess.c - scikit-learn's newsgroup header, footer and quote removal. */
#include "core/text/preprocess.h"

#include <string.h>

#include "core/text/utf8.h"
#include "core/text/vectorize.h"

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

/*
 * The regular expression (writes in|writes:|wrote:|says:|said:|^In article|
 * ^Quoted from|^\||^>), searched in each line. The unanchored patterns are
 * found by scanning the whole text, not each line, for the next "writes in"
 * (memmem) and the next ':' that ends "writes", "wrote", "says" or "said"
 * (memchr: colons are rare). None of them holds a "\n", so a hit before the
 * end of the current line lies inside it.
 */
static const char *next_colon_hit(const char *s, size_t len, size_t from)
{
    static const char *const words[] = {"writes", "wrote", "says", "said"};
    for (const char *p = s + from; (p = memchr(p, ':', len - (size_t)(p - s))) != NULL; p++) {
        for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
            size_t n = strlen(words[k]);
            if ((size_t)(p - s) >= n && memcmp(p - n, words[k], n) == 0)
                return p;
        }
        if ((size_t)(p - s) + 1 >= len)
            break;
    }
    return NULL;
}

struct quote_scan {
    const char *writes_in; /* next "writes in", or NULL */
    const char *colon;     /* next qualifying ':', or NULL */
};

static int is_quote_line(const char *s, size_t len, size_t start, size_t end, struct quote_scan *q)
{
    const char *line = s + start;
    size_t n = end - start;
    if (q->writes_in && q->writes_in < line)
        q->writes_in = memmem(line, len - start, "writes in", 9);
    if (q->colon && q->colon < line)
        q->colon = next_colon_hit(s, len, start);
    if (n > 0 && (line[0] == '>' || line[0] == '|'))
        return 1;
    if (n >= 10 && memcmp(line, "In article", 10) == 0)
        return 1;
    if (n >= 11 && memcmp(line, "Quoted from", 11) == 0)
        return 1;
    return (q->writes_in && q->writes_in < s + end) || (q->colon && q->colon < s + end);
}

size_t tm_preprocess_strip_quotes(const char *s, size_t len, char *out)
{
    struct quote_scan q = {memmem(s, len, "writes in", 9), next_colon_hit(s, len, 0)};
    size_t o = 0, start = 0;
    int first = 1;
    for (;;) {
        const char *nl = memchr(s + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - s) : len;
        if (!is_quote_line(s, len, start, end, &q)) {
            if (!first)
                out[o++] = '\n';
            if (end > start)
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

size_t tm_preprocess(unsigned flags, const char *s, size_t len, char *scratch, const char **out)
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
