/* jbuf.c - the capped output buffer and its JSON tokens (see jbuf.h). */
#include "api/jbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

void tm_jbuf_init(struct tm_jbuf *b, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->cap = cap ? cap : SIZE_MAX / 2;
    b->status = TM_OK;
}

void tm_jbuf_init_fixed(struct tm_jbuf *b, char *buf, size_t size)
{
    memset(b, 0, sizeof(*b));
    /* alloc == cap + 1: jbuf_reserve refuses before it would grow. */
    b->data = buf;
    b->alloc = size;
    b->cap = size - 1;
    b->status = TM_OK;
    buf[0] = '\0';
}

void tm_jbuf_release(struct tm_jbuf *b)
{
    tm_free(b->data);
    b->data = NULL;
    b->len = b->alloc = 0;
}

char *tm_jbuf_detach(struct tm_jbuf *b, size_t *len, tm_status *status)
{
    char *out = NULL;
    if (b->status == TM_OK && !b->data)
        tm_jbuf_put(b, "", 0); /* an empty but allocated string */
    if (b->status == TM_OK) {
        out = b->data;
        if (len)
            *len = b->len;
        b->data = NULL;
    }
    if (status)
        *status = b->status;
    tm_jbuf_release(b);
    return out;
}

static int jbuf_reserve(struct tm_jbuf *b, size_t n)
{
    if (b->status != TM_OK)
        return 0;
    if (n > b->cap - b->len) {
        b->status = TM_ETOOBIG;
        return 0;
    }
    size_t need = b->len + n + 1;
    if (need <= b->alloc)
        return 1;
    size_t alloc = b->alloc ? b->alloc : 256;
    while (alloc < need)
        alloc = alloc > SIZE_MAX / 4 ? need : alloc * 2;
    char *d = tm_realloc(b->data, alloc);
    if (!d) {
        b->status = TM_ENOMEM;
        return 0;
    }
    b->data = d;
    b->alloc = alloc;
    return 1;
}

void tm_jbuf_put(struct tm_jbuf *b, const char *s, size_t n)
{
    if (!jbuf_reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void tm_jbuf_puts(struct tm_jbuf *b, const char *s)
{
    tm_jbuf_put(b, s, strlen(s));
}

void tm_jbuf_printf(struct tm_jbuf *b, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        tm_jbuf_put(b, small, (size_t)n);
        return;
    }
    if (!jbuf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid. */
static size_t utf8_valid_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned long cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

void tm_jbuf_string(struct tm_jbuf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    tm_jbuf_put(b, "\"", 1);
    size_t run = 0; /* bytes from p[i - run] to copy as they are */
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        const char *esc = NULL;
        char ubuf[8];
        size_t adv = 1;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            run++;
            i++;
            continue;
        }
        if (c >= 0x80) {
            adv = utf8_valid_len(p + i, n - i);
            if (adv) {
                run += adv;
                i += adv;
                continue;
            }
            adv = 1;
            esc = "\\ufffd"; /* keep the output valid UTF-8 */
        } else if (c == '"') {
            esc = "\\\"";
        } else if (c == '\\') {
            esc = "\\\\";
        } else if (c == '\n') {
            esc = "\\n";
        } else if (c == '\r') {
            esc = "\\r";
        } else if (c == '\t') {
            esc = "\\t";
        } else if (c == '\b') {
            esc = "\\b";
        } else if (c == '\f') {
            esc = "\\f";
        } else {
            snprintf(ubuf, sizeof(ubuf), "\\u%04x", c);
            esc = ubuf;
        }
        tm_jbuf_put(b, (const char *)p + i - run, run);
        run = 0;
        tm_jbuf_puts(b, esc);
        i += adv;
    }
    tm_jbuf_put(b, (const char *)p + n - run, run);
    tm_jbuf_put(b, "\"", 1);
}

void tm_jbuf_double(struct tm_jbuf *b, double v)
{
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (prec == 17 || strtod(buf, NULL) == v)
            break;
    }
    tm_jbuf_puts(b, buf);
}

void tm_jbuf_double_cached(struct tm_jbuf *b, double v, struct tm_jbuf_dcache *c)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    size_t h = (size_t)((bits * UINT64_C(0x9E3779B97F4A7C15)) >> 56);
    if (c->slot[h].len && c->slot[h].bits == bits) {
        tm_jbuf_put(b, c->slot[h].text, c->slot[h].len);
        return;
    }
    size_t at = b->len;
    tm_jbuf_double(b, v);
    size_t n = b->len - at;
    if (b->status != TM_OK || n == 0 || n >= sizeof(c->slot[h].text))
        return;
    memcpy(c->slot[h].text, b->data + at, n);
    c->slot[h].len = (unsigned char)n;
    c->slot[h].bits = bits;
}

/* By hand rather than through printf: document frequencies and lengths come
 * by the hundred thousand. */
void tm_jbuf_int(struct tm_jbuf *b, int64_t v)
{
    char buf[24];
    char *p = buf + sizeof(buf);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    tm_jbuf_put(b, p, (size_t)(buf + sizeof(buf) - p));
}
