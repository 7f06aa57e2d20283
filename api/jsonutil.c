/*
 * jsonutil.c - api/'s JSON plumbing: errors and their HTTP bodies, a strict
 * scanner in front of cJSON that records where each value is, and the capped
 * output buffer renderers write into (see jsonutil.h).
 *
 * Why a scanner of our own in front of cJSON: cJSON keeps no positions and no
 * number text (so 1 and 1.0 look alike, and validation errors could not say
 * where), accepts some non-JSON ("01", "+1", control characters as
 * whitespace), silently truncates strings at "\u0000", and on failure writes
 * a global error pointer that concurrent request threads would race on. The
 * scanner rejects everything cJSON would fail on, so cJSON then only fails
 * for lack of memory.
 */
#include "api/jsonutil.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

void tm_api_init(void)
{
    static cJSON_Hooks hooks = {tm_malloc, tm_free};
    cJSON_InitHooks(&hooks);
}

/* ---------------------------------------------------------------------- */
/* Errors. */

static void copy_trunc(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void tm_api_error_clear(struct tm_api_error *e)
{
    if (!e)
        return;
    memset(e, 0, sizeof(*e));
    e->status = TM_OK;
    e->offset = -1;
}

tm_status tm_api_errorf(struct tm_api_error *e, tm_status status, const char *field, int64_t offset,
                        const char *fmt, ...)
{
    if (!e)
        return status;
    tm_api_error_clear(e);
    e->status = status;
    e->offset = offset;
    if (field)
        copy_trunc(e->field, sizeof(e->field), field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return status;
}

void tm_api_error_locate(struct tm_api_error *e, const char *text, size_t len)
{
    if (!e || e->offset < 0 || !text)
        return;
    size_t end = (size_t)e->offset < len ? (size_t)e->offset : len;
    int64_t line = 1, col = 1;
    for (size_t i = 0; i < end; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    e->line = line;
    e->column = col;
}

void tm_api_error_prefix(struct tm_api_error *e, const char *prefix)
{
    if (!e || !prefix || !*prefix)
        return;
    char buf[sizeof(e->field)];
    const char *parts[3] = {prefix, e->field[0] && e->field[0] != '[' ? "." : "", e->field};
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(parts[i]);
        if (l > sizeof(buf) - 1 - n)
            l = sizeof(buf) - 1 - n; /* truncated: the field is for people */
        memcpy(buf + n, parts[i], l);
        n += l;
    }
    buf[n] = '\0';
    memcpy(e->field, buf, n + 1);
}

const char *tm_api_error_format(const struct tm_api_error *e, char *buf, size_t size)
{
    if (!size)
        return buf;
    int n;
    if (e->field[0])
        n = snprintf(buf, size, "%s: %s", e->field, e->message);
    else
        n = snprintf(buf, size, "%s", e->message[0] ? e->message : tm_strerror(e->status));
    if (n < 0 || (size_t)n >= size || e->line <= 0)
        return buf;
    /* A field that already names the line ("line 7: text") gets only the
     * column, and a column of 0 (unknown) is left out. */
    if (!strncmp(e->field, "line ", 5)) {
        if (e->column > 0)
            snprintf(buf + n, size - (size_t)n, " (column %lld)", (long long)e->column);
    } else if (e->column > 0) {
        snprintf(buf + n, size - (size_t)n, " (line %lld, column %lld)", (long long)e->line,
                 (long long)e->column);
    } else {
        snprintf(buf + n, size - (size_t)n, " (line %lld)", (long long)e->line);
    }
    return buf;
}

const char *tm_api_error_code(tm_status status)
{
    switch (status) {
    case TM_OK:
        return "ok";
    case TM_ENOMEM:
        return "out_of_memory";
    case TM_EINVAL:
    case TM_ERANGE:
        return "invalid_spec";
    case TM_EEMPTY:
        return "empty_corpus";
    case TM_ENOTERMS:
        return "no_terms";
    case TM_ETOOBIG:
        return "too_large";
    case TM_ECANCELLED:
        return "cancelled";
    case TM_ENOTBUILT:
        return "not_built";
    case TM_ENODEV:
        return "no_device";
    case TM_ENUMERIC:
        return "numerical_failure";
    case TM_ELAPACK:
        return "linear_algebra_failure";
    case TM_EIO:
        return "io_error";
    case TM_EPARSE:
        return "malformed_input";
    case TM_ENOTFOUND:
        return "not_found";
    case TM_EBUSY:
        return "busy";
    case TM_EDEVICE:
        return "device_failure";
    default:
        return "internal_error";
    }
}

int tm_api_error_http_status(tm_status status)
{
    switch (status) {
    case TM_OK:
        return 200;
    case TM_EPARSE:
        return 400;
    case TM_ETOOBIG:
        return 413;
    case TM_EINVAL:
    case TM_ERANGE:
    case TM_EEMPTY:
    case TM_ENOTERMS:
    case TM_ENOTBUILT:
    case TM_ENODEV:
    case TM_ENUMERIC:
        return 422;
    case TM_ENOTFOUND:
        return 404;
    case TM_EBUSY:
        return 409;
    case TM_ENOMEM:
        return 503;
    default:
        return 500;
    }
}

void tm__jbuf_error_open(struct tm_jbuf *b, const char *code, const char *message,
                         const char *field)
{
    tm_jbuf_puts(b, "{\"error\":{\"code\":");
    tm_jbuf_string(b, code, strlen(code));
    tm_jbuf_puts(b, ",\"message\":");
    tm_jbuf_string(b, message, strlen(message));
    if (field && field[0]) {
        tm_jbuf_puts(b, ",\"field\":");
        tm_jbuf_string(b, field, strlen(field));
    }
}

tm_status tm_api_error_render(const struct tm_api_error *e, char **out, size_t *len)
{
    struct tm_jbuf b;
    tm_status st;
    tm_jbuf_init(&b, 0);
    tm__jbuf_error_open(&b, tm_api_error_code(e->status),
                        e->message[0] ? e->message : tm_strerror(e->status), e->field);
    if (e->offset >= 0) {
        tm_jbuf_puts(&b, ",\"offset\":");
        tm_jbuf_int(&b, e->offset);
        if (e->line > 0) {
            tm_jbuf_printf(&b, ",\"line\":%lld,\"column\":%lld", (long long)e->line,
                           (long long)e->column);
        }
    }
    tm_jbuf_puts(&b, "}}");
    *out = tm_jbuf_detach(&b, len, &st);
    return st;
}

/* ---------------------------------------------------------------------- */
/* The strict scanner. */

struct tm__json_val {
    int64_t offset;
    uint32_t len; /* token length for numbers, else 0 */
    unsigned flags;
};

struct tm__json_ref {
    const cJSON *item;
    size_t index;
};

struct scan {
    const unsigned char *p;
    size_t len, pos;
    struct tm__json_val *vals;
    size_t n, cap;
    struct tm_api_error *e;
    tm_status st;
    int norecord; /* validate only (the JSON Lines fast path) */
    struct tm__json_val dummy;
};

/* cJSON copies a number into a 64-byte buffer; longer tokens would be cut. */
#define MAX_NUMBER_LEN 63

static int scan_fail(struct scan *s, size_t at, const char *msg)
{
    if (s->st == TM_OK)
        s->st = tm_api_errorf(s->e, TM_EPARSE, NULL, (int64_t)at, "malformed JSON: %s", msg);
    return 0;
}

static int push_val(struct scan *s, size_t offset, size_t *index)
{
    if (s->norecord) {
        *index = SIZE_MAX;
        return 1;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct tm__json_val *v = tm_reallocarray(s->vals, cap, sizeof(*v));
        if (!v) {
            if (s->st == TM_OK)
                s->st = tm_api_errorf(s->e, TM_ENOMEM, NULL, -1, "out of memory parsing JSON");
            return 0;
        }
        s->vals = v;
        s->cap = cap;
    }
    *index = s->n;
    s->vals[s->n].offset = (int64_t)offset;
    s->vals[s->n].len = 0;
    s->vals[s->n].flags = 0;
    s->n++;
    return 1;
}

static struct tm__json_val *val_at(struct scan *s, size_t index)
{
    return index == SIZE_MAX ? &s->dummy : &s->vals[index];
}

static void skip_ws(struct scan *s)
{
    while (s->pos < s->len) {
        unsigned char c = s->p[s->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        s->pos++;
    }
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads "\uXXXX" at s->pos (the backslash); returns the code or -1. */
static long read_u_escape(struct scan *s, size_t at)
{
    if (at + 6 > s->len || s->p[at] != '\\' || s->p[at + 1] != 'u')
        return -1;
    long code = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s->p[at + 2 + (size_t)i]);
        if (h < 0)
            return -1;
        code = code * 16 + h;
    }
    return code;
}

/* Scans a string starting at the opening quote; *flags gets TM_JSON_STR_NUL. */
static int scan_string(struct scan *s, unsigned *flags)
{
    size_t start = s->pos;
    s->pos++; /* opening quote */
    for (;;) {
        if (s->pos >= s->len)
            return scan_fail(s, start, "unterminated string");
        unsigned char c = s->p[s->pos];
        if (c == '"') {
            s->pos++;
            return 1;
        }
        if (c == '\0')
            return scan_fail(s, s->pos, "NUL byte in string");
        if (c != '\\') {
            s->pos++;
            continue;
        }
        if (s->pos + 1 >= s->len)
            return scan_fail(s, start, "unterminated string");
        unsigned char esc = s->p[s->pos + 1];
        if (esc != 'u') {
            if (!strchr("\"\\/bfnrt", esc) || esc == '\0')
                return scan_fail(s, s->pos, "invalid escape in string");
            s->pos += 2;
            continue;
        }
        long code = read_u_escape(s, s->pos);
        if (code < 0)
            return scan_fail(s, s->pos, "invalid \\u escape in string");
        if (code >= 0xDC00 && code <= 0xDFFF)
            return scan_fail(s, s->pos, "unpaired UTF-16 surrogate in \\u escape");
        if (code >= 0xD800 && code <= 0xDBFF) {
            long low = read_u_escape(s, s->pos + 6);
            if (low < 0xDC00 || low > 0xDFFF)
                return scan_fail(s, s->pos, "unpaired UTF-16 surrogate in \\u escape");
            s->pos += 12;
            continue;
        }
        if (code == 0)
            *flags |= TM_JSON_STR_NUL;
        s->pos += 6;
    }
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int scan_number(struct scan *s, uint32_t *len, unsigned *flags)
{
    size_t start = s->pos, i = s->pos;
    if (i < s->len && s->p[i] == '-')
        i++;
    if (i >= s->len || !is_digit(s->p[i]))
        return scan_fail(s, start, "invalid number");
    if (s->p[i] == '0') {
        i++;
    } else {
        while (i < s->len && is_digit(s->p[i]))
            i++;
    }
    if (i < s->len && s->p[i] == '.') {
        *flags |= TM_JSON_NUM_FRACTION;
        i++;
        if (i >= s->len || !is_digit(s->p[i]))
            return scan_fail(s, start, "invalid number");
        while (i < s->len && is_digit(s->p[i]))
            i++;
    }
    if (i < s->len && (s->p[i] == 'e' || s->p[i] == 'E')) {
        *flags |= TM_JSON_NUM_FRACTION;
        i++;
        if (i < s->len && (s->p[i] == '+' || s->p[i] == '-'))
            i++;
        if (i >= s->len || !is_digit(s->p[i]))
            return scan_fail(s, start, "invalid number");
        while (i < s->len && is_digit(s->p[i]))
            i++;
    }
    if (i - start > MAX_NUMBER_LEN)
        return scan_fail(s, start, "number longer than 63 characters");
    /* "01", "1x": a number must end at a delimiter. */
    if (i < s->len && (is_digit(s->p[i]) || s->p[i] == '.' || s->p[i] == '+' || s->p[i] == '-' ||
                       s->p[i] == 'e' || s->p[i] == 'E'))
        return scan_fail(s, start, "invalid number");
    *len = (uint32_t)(i - start);
    s->pos = i;
    return 1;
}

static int scan_literal(struct scan *s, const char *word)
{
    size_t n = strlen(word);
    if (s->len - s->pos < n || memcmp(s->p + s->pos, word, n) != 0)
        return scan_fail(s, s->pos, "expected a value");
    s->pos += n;
    return 1;
}

static int scan_value(struct scan *s, int depth)
{
    skip_ws(s);
    if (s->pos >= s->len)
        return scan_fail(s, s->pos, "unexpected end of input, expected a value");
    size_t idx;
    if (!push_val(s, s->pos, &idx))
        return 0;
    unsigned char c = s->p[s->pos];
    switch (c) {
    case '"': {
        unsigned flags = 0;
        if (!scan_string(s, &flags))
            return 0;
        val_at(s, idx)->flags = flags;
        return 1;
    }
    case '{':
    case '[': {
        char close = c == '{' ? '}' : ']';
        if (depth >= TM_JSON_MAX_DEPTH)
            return scan_fail(s, s->pos, "nesting deeper than 256 levels");
        s->pos++;
        skip_ws(s);
        if (s->pos < s->len && s->p[s->pos] == close) {
            s->pos++;
            return 1;
        }
        for (;;) {
            if (c == '{') {
                skip_ws(s);
                if (s->pos >= s->len)
                    return scan_fail(s, s->pos, "unexpected end of input, expected a key");
                if (s->p[s->pos] != '"')
                    return scan_fail(s, s->pos, "expected a string key");
                unsigned kflags = 0;
                size_t kpos = s->pos;
                if (!scan_string(s, &kflags))
                    return 0;
                if (kflags & TM_JSON_STR_NUL)
                    return scan_fail(s, kpos, "\\u0000 in an object key");
                skip_ws(s);
                if (s->pos >= s->len || s->p[s->pos] != ':')
                    return scan_fail(s, s->pos, "expected ':'");
                s->pos++;
            }
            if (!scan_value(s, depth + 1))
                return 0;
            skip_ws(s);
            if (s->pos >= s->len)
                return scan_fail(s, s->pos,
                                 c == '{' ? "unexpected end of input, expected ',' or '}'"
                                          : "unexpected end of input, expected ',' or ']'");
            if (s->p[s->pos] == ',') {
                s->pos++;
                continue;
            }
            if (s->p[s->pos] == close) {
                s->pos++;
                return 1;
            }
            return scan_fail(s, s->pos, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    case 't':
        return scan_literal(s, "true");
    case 'f':
        return scan_literal(s, "false");
    case 'n':
        return scan_literal(s, "null");
    default:
        if (c == '-' || is_digit(c)) {
            uint32_t len = 0;
            unsigned flags = 0;
            if (!scan_number(s, &len, &flags))
                return 0;
            val_at(s, idx)->len = len;
            val_at(s, idx)->flags = flags;
            return 1;
        }
        return scan_fail(s, s->pos, "expected a value");
    }
}

/*
 * The JSON Lines fast path: most records are {"text": "...", ...} with plain
 * keys. They are validated by the same scanner and their strings decoded in
 * place, without building a cJSON tree; anything unusual returns 0 and the
 * caller takes the general path, which also words the error.
 */
int tm__json_record_fast(const char *text, size_t len, const char *const *keys, size_t n_keys,
                         struct tm_json_span *out)
{
    struct scan s = {.p = (const unsigned char *)text, .len = len, .norecord = 1, .st = TM_OK};
    for (size_t k = 0; k < n_keys; k++)
        memset(&out[k], 0, sizeof(out[k]));
    skip_ws(&s);
    if (s.pos >= s.len || s.p[s.pos] != '{')
        return 0;
    s.pos++;
    skip_ws(&s);
    if (s.pos < s.len && s.p[s.pos] == '}') {
        s.pos++;
    } else {
        for (;;) {
            skip_ws(&s);
            if (s.pos >= s.len || s.p[s.pos] != '"')
                return 0;
            size_t kstart = s.pos + 1;
            unsigned kflags = 0;
            if (!scan_string(&s, &kflags))
                return 0;
            size_t klen = s.pos - 1 - kstart;
            if (memchr(text + kstart, '\\', klen))
                return 0; /* escaped keys: rare, leave them to cJSON */
            size_t which = n_keys;
            for (size_t k = 0; k < n_keys; k++)
                if (strlen(keys[k]) == klen && !memcmp(keys[k], text + kstart, klen))
                    which = k;
            skip_ws(&s);
            if (s.pos >= s.len || s.p[s.pos] != ':')
                return 0;
            s.pos++;
            skip_ws(&s);
            size_t vstart = s.pos;
            s.dummy.flags = 0;
            if (!scan_value(&s, 1))
                return 0;
            if (which < n_keys) {
                struct tm_json_span *o = &out[which];
                if (o->present)
                    return 0; /* duplicate */
                o->present = 1;
                o->offset = (int64_t)vstart;
                if (s.p[vstart] == '"') {
                    o->is_string = 1;
                    o->p = text + vstart + 1;
                    o->len = s.pos - vstart - 2;
                    o->has_escapes = memchr(o->p, '\\', o->len) != NULL;
                    o->has_nul = (s.dummy.flags & TM_JSON_STR_NUL) != 0;
                } else {
                    o->p = text + vstart;
                    o->len = s.pos - vstart;
                    o->is_integer = s.p[vstart] == '-' || is_digit(s.p[vstart]);
                    o->is_integer = o->is_integer && !(s.dummy.flags & TM_JSON_NUM_FRACTION);
                    o->is_null = s.p[vstart] == 'n';
                }
            }
            skip_ws(&s);
            if (s.pos >= s.len)
                return 0;
            if (s.p[s.pos] == ',') {
                s.pos++;
                continue;
            }
            if (s.p[s.pos] != '}')
                return 0;
            s.pos++;
            break;
        }
    }
    skip_ws(&s);
    return s.pos == s.len;
}

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++)
        v = v * 16 + (unsigned)hexval((unsigned char)p[i]);
    return v;
}

size_t tm__json_unescape(const char *p, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        const char *bs = memchr(p + i, '\\', len - i);
        size_t run = bs ? (size_t)(bs - (p + i)) : len - i;
        memmove(out + o, p + i, run);
        o += run;
        i += run;
        if (i >= len)
            break;
        char c = p[i + 1];
        i += 2;
        switch (c) {
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u': {
            unsigned long cp = hex4(p + i);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) { /* the scanner checked the pair */
                cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(p + i + 2) - 0xDC00);
                i += 6;
            }
            if (cp < 0x80) {
                out[o++] = (char)cp;
            } else if (cp < 0x800) {
                out[o++] = (char)(0xC0 | (cp >> 6));
                out[o++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                out[o++] = (char)(0xE0 | (cp >> 12));
                out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[o++] = (char)(0x80 | (cp & 0x3F));
            } else {
                out[o++] = (char)(0xF0 | (cp >> 18));
                out[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[o++] = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            out[o++] = c;
            break; /* '"', '\\', '/' */
        }
    }
    return o;
}

static int cmp_ref(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct tm__json_ref *)a)->item;
    uintptr_t y = (uintptr_t)((const struct tm__json_ref *)b)->item;
    return x < y ? -1 : x > y;
}

/* Pre-order numbering of cJSON's tree, which matches the scanner's order. */
static size_t number_items(const cJSON *item, struct tm__json_ref *refs, size_t n, size_t cap)
{
    for (; item; item = item->next) {
        if (n < cap) {
            refs[n].item = item;
            refs[n].index = n;
        }
        n++;
        if (item->child)
            n = number_items(item->child, refs, n, cap);
    }
    return n;
}

tm_status tm_json_parse(struct tm_json_doc *doc, const char *text, size_t len,
                        struct tm_api_error *e)
{
    struct scan s = {.p = (const unsigned char *)text, .len = len, .e = e, .st = TM_OK};
    memset(doc, 0, sizeof(*doc));
    doc->text = text;
    doc->len = len;
    tm_api_error_clear(e);

    size_t base = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        base = 3;
    s.pos = base;
    if (!scan_value(&s, 0))
        goto fail;
    skip_ws(&s);
    if (s.pos < s.len) {
        scan_fail(&s, s.pos, "unexpected data after the JSON value");
        goto fail;
    }
    doc->vals = s.vals;
    doc->n_values = s.n;
    s.vals = NULL;

    /* The scanner accepted it, so cJSON can fail only for lack of memory. */
    doc->root = cJSON_ParseWithLengthOpts(text + base, len - base, NULL, 0);
    if (!doc->root) {
        s.st = tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory parsing JSON");
        goto fail;
    }
    doc->refs = tm_mallocarray(doc->n_values, sizeof(*doc->refs));
    if (!doc->refs) {
        s.st = tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory parsing JSON");
        goto fail;
    }
    size_t counted = number_items(doc->root, doc->refs, 0, doc->n_values);
    if (counted != doc->n_values) {
        /* A scanner/cJSON disagreement: a bug, but never a crash. */
        s.st = tm_api_errorf(e, TM_EPARSE, NULL, -1, "malformed JSON: internal mismatch");
        goto fail;
    }
    qsort(doc->refs, doc->n_values, sizeof(*doc->refs), cmp_ref);
    return TM_OK;

fail:
    tm_free(s.vals);
    tm_json_release(doc);
    doc->text = text;
    doc->len = len;
    if (e && e->status == TM_EPARSE)
        tm_api_error_locate(e, text, len);
    return s.st;
}

void tm_json_release(struct tm_json_doc *doc)
{
    if (!doc)
        return;
    if (doc->root)
        cJSON_Delete(doc->root);
    tm_free(doc->vals);
    tm_free(doc->refs);
    memset(doc, 0, sizeof(*doc));
}

static const struct tm__json_val *find_val(const struct tm_json_doc *doc, const cJSON *item)
{
    if (!doc->refs || !item)
        return NULL;
    struct tm__json_ref key = {item, 0};
    const struct tm__json_ref *r =
        bsearch(&key, doc->refs, doc->n_values, sizeof(*doc->refs), cmp_ref);
    return r ? &doc->vals[r->index] : NULL;
}

int64_t tm_json_offset(const struct tm_json_doc *doc, const cJSON *item)
{
    const struct tm__json_val *v = find_val(doc, item);
    return v ? v->offset : -1;
}

unsigned tm_json_flags(const struct tm_json_doc *doc, const cJSON *item)
{
    const struct tm__json_val *v = find_val(doc, item);
    return v ? v->flags : 0;
}

const char *tm_json_number_text(const struct tm_json_doc *doc, const cJSON *item, size_t *len)
{
    const struct tm__json_val *v = find_val(doc, item);
    if (!v || !v->len)
        return NULL;
    *len = v->len;
    return doc->text + v->offset;
}

/* ---------------------------------------------------------------------- */
/* Output buffer. */

void tm_jbuf_init(struct tm_jbuf *b, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->cap = cap ? cap : SIZE_MAX / 2;
    b->status = TM_OK;
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

void tm_jbuf_int(struct tm_jbuf *b, int64_t v)
{
    tm_jbuf_printf(b, "%lld", (long long)v);
}
