/*
 * json_scan.c - the strict JSON scanner, the JSON Lines fast path and the
 * streaming splitter (see json_scan.h).
 *
 * Why a scanner of our own in front of cJSON: cJSON keeps no positions and no
 * number text (so 1 and 1.0 look alike, and validation errors could not say
 * where), accepts some non-JSON ("01", "+1", control characters as
 * whitespace), silently truncates strings at "\u0000", and on failure writes
 * a global error pointer that concurrent request threads would race on. The
 * scanner rejects everything cJSON would fail on, so cJSON then only fails
 * for lack of memory.
 */
#include "api/json_scan.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

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

#define ONES UINT64_C(0x0101010101010101)

/* Non-zero in a byte's top bit when one of the 8 bytes of v is '"', '\\' or
 * NUL, the bytes a string's scan stops at; zero when none is (Mycroft's
 * zero-byte test on v, v ^ '"' and v ^ '\\', which may flag other bytes of
 * a word that holds one, so only zero against non-zero is read). */
static inline uint64_t string_stops(uint64_t v)
{
    uint64_t q = v ^ (ONES * '"'), b = v ^ (ONES * '\\');
    return ((v - ONES) & ~v) | ((q - ONES) & ~q) | ((b - ONES) & ~b);
}

/* Scans a string starting at the opening quote; *flags gets TM_JSON_STR_NUL.
 * Plain bytes are skipped 8 at a time: strings are most of a corpus's bytes. */
static int scan_string(struct scan *s, unsigned *flags)
{
    size_t start = s->pos;
    s->pos++; /* opening quote */
    for (;;) {
        while (s->len - s->pos >= 8) {
            uint64_t v;
            memcpy(&v, s->p + s->pos, 8);
            if (string_stops(v) & (ONES << 7))
                break;
            s->pos += 8;
        }
        unsigned char c = 0;
        while (s->pos < s->len && (c = s->p[s->pos]) != '"' && c != '\\' && c != '\0')
            s->pos++;
        if (s->pos >= s->len)
            return scan_fail(s, start, "unterminated string");
        if (c == '"') {
            s->pos++;
            return 1;
        }
        if (c == '\0')
            return scan_fail(s, s->pos, "NUL byte in string");
        /* c is the backslash of an escape */
        if (s->pos + 1 >= s->len)
            return scan_fail(s, start, "unterminated string");
        unsigned char esc = s->p[s->pos + 1];
        switch (esc) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            s->pos += 2;
            continue;
        case 'u':
            break;
        default:
            return scan_fail(s, s->pos, "invalid escape in string");
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

tm_status tm__json_scan(const char *text, size_t len, struct tm__json_val **vals, size_t *n,
                        struct tm_api_error *e)
{
    struct scan s = {.p = (const unsigned char *)text, .len = len, .e = e, .st = TM_OK};
    *vals = NULL;
    *n = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        s.pos = 3;
    if (!scan_value(&s, 0))
        goto fail;
    skip_ws(&s);
    if (s.pos < s.len) {
        scan_fail(&s, s.pos, "unexpected data after the JSON value");
        goto fail;
    }
    *vals = s.vals;
    *n = s.n;
    return TM_OK;

fail:
    tm_free(s.vals);
    return s.st;
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

/* Writes code point cp (at most U+10FFFF) as UTF-8; returns its length. */
static size_t utf8_put(unsigned long cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
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
            o += utf8_put(cp, out + o);
            break;
        }
        default:
            out[o++] = c;
            break; /* '"', '\\', '/' */
        }
    }
    return o;
}

/* ---------------------------------------------------------------------- */
/* The streaming splitter. */

/* Where the splitter stands in the body's grammar, outside the elements. */
enum split_state {
    SP_BOM,      /* at the start, where a UTF-8 BOM may stand */
    SP_ROOT,     /* before the root value */
    SP_OBJ_OPEN, /* after the root '{': a key or '}' */
    SP_OBJ_KEY,  /* after a ',' in the root object: a key */
    SP_KEY,      /* in a key */
    SP_COLON,    /* after a key */
    SP_VALUE,    /* after a key's ':' */
    SP_OBJ_NEXT, /* after a member: ',' or '}' */
    SP_ARR_OPEN, /* after the split array's '[': an element or ']' */
    SP_ARR_ELEM, /* after a ',' in the split array: an element */
    SP_ELEM,     /* in an element */
    SP_ARR_NEXT, /* after an element: ',' or ']' */
    SP_END       /* after the root value: whitespace only */
};

/* What a key turned out to be. */
enum { KEY_MEMBER, KEY_UNKNOWN, KEY_DUPLICATE };

/* A place in the body, for errors. */
struct split_pos {
    int64_t offset, line, column;
};

struct tm__json_split {
    const char *member, *element;
    size_t member_len, elem_max;
    tm__json_element_fn fn;
    void *ctx;
    enum split_state state;
    int64_t pos; /* offset of the byte being read */
    /* Lines are counted up to lc_pos: line holds it, starting at line_start. */
    int64_t lc_pos, line, line_start;
    const char *chunk; /* the chunk being fed, which starts at chunk_base */
    int64_t chunk_base;
    int bom;         /* BOM bytes read */
    int root_array;  /* the root is the split array (else an object) */
    int member_seen; /* the object's member was read */
    struct split_pos root_at;
    /* The key being read, decoded as cJSON does, and its escape state. */
    char key[sizeof(((struct tm_api_error *)0)->field)];
    size_t key_len;                   /* decoded bytes, which may pass the buffer */
    int key_esc;                      /* 0; 1 after '\\'; 2 to 5 before \u's hex digit 1 to 4 */
    int key_low;                      /* 1 or 2: a high surrogate waits for the low's '\\' or 'u' */
    unsigned key_code;                /* the \u code being read */
    unsigned key_high;                /* a high surrogate waiting for its low half, else 0 */
    int key_nul;                      /* the key holds \u0000 */
    int key_verdict;                  /* KEY_* */
    struct split_pos key_at, esc_pos; /* the key's '"'; the escape's (the high surrogate's) '\\' */
    /* The element being cut out. */
    int elem_scalar, edepth, in_string, escape;
    struct split_pos elem_at;
    int64_t index;
    char *elem; /* '[' and the element's bytes so far */
    size_t elem_len, elem_cap;
};

/* Counts the lines of the chunk up to offset at (from lc_pos on). */
static void split_lines(struct tm__json_split *sp, int64_t at)
{
    if (at <= sp->lc_pos)
        return;
    const char *p = sp->chunk + (sp->lc_pos - sp->chunk_base);
    const char *end = sp->chunk + (at - sp->chunk_base);
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        sp->line++;
        p = nl + 1;
        sp->line_start = sp->chunk_base + (p - sp->chunk);
    }
    sp->lc_pos = at;
}

/* Where the byte being read is. */
static struct split_pos split_here(struct tm__json_split *sp)
{
    split_lines(sp, sp->pos);
    struct split_pos at = {sp->pos, sp->line, sp->pos - sp->line_start + 1};
    return at;
}

static tm_status split_error(struct tm_api_error *e, tm_status st, const char *field,
                             struct split_pos at, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static tm_status split_error(struct tm_api_error *e, tm_status st, const char *field,
                             struct split_pos at, const char *fmt, ...)
{
    char msg[sizeof(e->message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tm_api_errorf(e, st, field, at.offset, "%s", msg);
    if (e) {
        e->line = at.line;
        e->column = at.column;
    }
    return st;
}

/* Malformed JSON, worded as the scanner words it. */
static tm_status split_malformed(struct tm_api_error *e, struct split_pos at, const char *what)
{
    return split_error(e, TM_EPARSE, NULL, at, "malformed JSON: %s", what);
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* c may begin a JSON value (which the scanner may still refuse). */
static int starts_value(unsigned char c)
{
    return c == '"' || c == '[' || c == '{' || c == '-' || is_digit(c) || c == 't' || c == 'f' ||
           c == 'n';
}

/* Room for need bytes in sp->elem; 0, or -1 when out of memory. */
static int elem_reserve(struct tm__json_split *sp, size_t need)
{
    if (need <= sp->elem_cap)
        return 0;
    size_t nc = sp->elem_cap ? sp->elem_cap : 64;
    while (nc < need)
        nc *= 2;
    char *p = tm_realloc(sp->elem, nc);
    if (!p)
        return -1;
    sp->elem = p;
    sp->elem_cap = nc;
    return 0;
}

/* The line and column of an error that fn (or the scanner, on the element's
 * text) placed inside the element, from the element's own bytes. */
static void elem_locate(const struct tm__json_split *sp, struct tm_api_error *e)
{
    if (!e || e->offset < sp->elem_at.offset ||
        e->offset - sp->elem_at.offset >= (int64_t)sp->elem_len)
        return;
    int64_t line = sp->elem_at.line, col = sp->elem_at.column;
    /* elem_at is the element's first byte: count the bytes after it. */
    tm__text_advance(sp->elem + 1, (size_t)(e->offset - sp->elem_at.offset), &line, &col);
    e->line = line;
    e->column = col;
}

/*
 * The scanner's verdict on the element's first sp->elem_len - 1 bytes, as
 * "[" and those bytes: the element is not complete (the body ended, or it
 * nests too deep), so the scanner must fail on them, and it fails where and
 * as it would on the whole body. Returns 1 with e filled when it fails
 * before offset limit (of the body) or at it (a '[' or '{' where no value
 * may start is a syntax error before it is one level too deep, as the
 * whole-body scanner reports it), else 0.
 */
static int elem_rescan(struct tm__json_split *sp, int64_t limit, tm_status *st,
                       struct tm_api_error *e)
{
    struct tm__json_val *vals;
    size_t n;
    struct tm_api_error se;
    *st = tm__json_scan(sp->elem, sp->elem_len, &vals, &n, &se);
    if (*st == TM_OK) {
        tm_free(vals); /* cannot happen: the element is open */
        return 0;
    }
    if (*st == TM_ENOMEM) {
        tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
        return 1;
    }
    int64_t at = se.offset - 1 + sp->elem_at.offset; /* the '[' is not in the body */
    if (at > limit)
        return 0;
    tm_api_errorf(e, TM_EPARSE, NULL, at, "%s", se.message);
    elem_locate(sp, e);
    return 1;
}

/* The element is complete: hand "[" element "]" to fn. */
static tm_status split_emit(struct tm__json_split *sp, struct tm_api_error *e)
{
    sp->elem[sp->elem_len] = ']'; /* room kept by split_elem */
    if (e)
        e->line = e->column = 0;
    tm_status st = sp->fn(sp->ctx, sp->index, sp->elem, sp->elem_len + 1, sp->elem_at.offset, e);
    if (st != TM_OK && e && e->line == 0)
        elem_locate(sp, e);
    sp->index++;
    sp->state = SP_ARR_NEXT;
    return st;
}

/* Begins an element at its first byte c, which is consumed. */
static tm_status elem_start(struct tm__json_split *sp, unsigned char c, struct tm_api_error *e)
{
    sp->elem_at = split_here(sp);
    if (sp->elem_max < 3) /* "[" c "]" */
        return split_error(e, TM_ETOOBIG, NULL, sp->elem_at, "%s[%lld] exceeds the %s size limit",
                           sp->member, (long long)sp->index, sp->element);
    if (elem_reserve(sp, 4096))
        return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
    sp->elem[0] = '[';
    sp->elem[1] = (char)c;
    sp->elem_len = 2;
    sp->elem_scalar = c != '"' && c != '[' && c != '{';
    sp->in_string = c == '"';
    sp->escape = 0;
    sp->edepth = c == '[' || c == '{';
    sp->state = SP_ELEM;
    return TM_OK;
}

/* Whether the string that the bytes p[0, n) are in closes among them: 1
 * with *end just past its closing '"', else 0 (*end = n). *escape carries
 * a backslash that ends one chunk over to the next. Linear in n whatever
 * the number of escapes. */
static int string_end(const unsigned char *p, size_t n, int *escape, size_t *end)
{
    size_t i = 0, quote = SIZE_MAX; /* the next '"' at or after i; n: none */
    *end = n;
    if (*escape) {
        if (n == 0)
            return 0;
        *escape = 0;
        i = 1;
    }
    for (;;) {
        if (quote == SIZE_MAX || quote < i) {
            const unsigned char *q = memchr(p + i, '"', n - i);
            quote = q ? (size_t)(q - p) : n;
        }
        const unsigned char *bs = memchr(p + i, '\\', quote - i);
        if (!bs) {
            if (quote == n)
                return 0;
            *end = quote + 1;
            return 1;
        }
        i = (size_t)(bs - p) + 2; /* the backslash and the byte it escapes */
        if (i > n) {
            *escape = 1;
            return 0;
        }
    }
}

/*
 * Reads the element's bytes from data (len > 0): the run that belongs to it
 * is copied at once, and the element is handed to fn when it ends. A
 * scalar ends before the whitespace, ',', ']' or '}' after it, which is not
 * consumed. Returns the bytes consumed in *used.
 */
static tm_status split_elem(struct tm__json_split *sp, const unsigned char *data, size_t len,
                            size_t *used, struct tm_api_error *e)
{
    size_t i = 0;
    int done = 0;
    if (sp->elem_scalar) {
        while (i < len && !is_ws(data[i]) && data[i] != ',' && data[i] != ']' && data[i] != '}')
            i++;
        done = i < len;
    } else {
        int limit = TM_JSON_MAX_DEPTH - (sp->root_array ? 1 : 2);
        while (i < len && !done) {
            if (sp->in_string) {
                size_t k;
                int closed = string_end(data + i, len - i, &sp->escape, &k);
                i += k;
                if (!closed)
                    break;
                sp->in_string = 0;
                done = sp->edepth == 0;
                continue;
            }
            unsigned char c = data[i++];
            if (c == '"') {
                sp->in_string = 1;
            } else if (c == '[' || c == '{') {
                if (++sp->edepth > limit) {
                    /* The scanner stops here too, unless the element went
                     * wrong before. */
                    tm_status st;
                    sp->pos += (int64_t)i - 1;
                    struct split_pos at = split_here(sp);
                    if (elem_reserve(sp, sp->elem_len + i + 1))
                        return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
                    memcpy(sp->elem + sp->elem_len, data, i);
                    sp->elem_len += i;
                    if (elem_rescan(sp, at.offset, &st, e))
                        return st;
                    return split_error(e, TM_EPARSE, NULL, at,
                                       "malformed JSON: nesting deeper than %d levels",
                                       TM_JSON_MAX_DEPTH);
                }
            } else if (c == ']' || c == '}') {
                done = --sp->edepth == 0;
            }
        }
    }
    /* +1: the ']' that closes the one-element array. */
    if (i > sp->elem_max - 1 - sp->elem_len)
        return split_error(e, TM_ETOOBIG, NULL, sp->elem_at, "%s[%lld] exceeds the %s size limit",
                           sp->member, (long long)sp->index, sp->element);
    if (elem_reserve(sp, sp->elem_len + i + 1))
        return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
    memcpy(sp->elem + sp->elem_len, data, i);
    sp->elem_len += i;
    sp->pos += (int64_t)i;
    *used = i;
    return done ? split_emit(sp, e) : TM_OK;
}

static void key_put(struct tm__json_split *sp, const char *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++, sp->key_len++)
        if (sp->key_len < sizeof(sp->key) - 1)
            sp->key[sp->key_len] = bytes[i];
}

/* Appends code point cp to the decoded key, as UTF-8. */
static void key_put_code(struct tm__json_split *sp, unsigned long cp)
{
    char u[4];
    key_put(sp, u, utf8_put(cp, u));
}

/*
 * One byte of a key: the scanner's string grammar, one byte at a time,
 * decoding as it goes. The key ends at its closing '"', where it is
 * compared with member.
 */
static tm_status split_key(struct tm__json_split *sp, unsigned char c, struct tm_api_error *e)
{
    static const char unpaired[] = "unpaired UTF-16 surrogate in \\u escape";
    if (sp->key_low) {
        /* After a high surrogate, its low half: "\uDC00" to "\uDFFF". */
        if (c != (sp->key_low == 1 ? '\\' : 'u'))
            return split_malformed(e, sp->esc_pos, unpaired);
        if (sp->key_low++ == 2) {
            sp->key_low = 0;
            sp->key_esc = 2;
            sp->key_code = 0;
        }
        return TM_OK;
    }
    if (sp->key_esc == 1) {
        char ch;
        sp->key_esc = 0;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            ch = (char)c;
            break;
        case 'b':
            ch = '\b';
            break;
        case 'f':
            ch = '\f';
            break;
        case 'n':
            ch = '\n';
            break;
        case 'r':
            ch = '\r';
            break;
        case 't':
            ch = '\t';
            break;
        case 'u':
            sp->key_esc = 2;
            sp->key_code = 0;
            return TM_OK;
        default:
            return split_malformed(e, sp->esc_pos, "invalid escape in string");
        }
        key_put(sp, &ch, 1);
        return TM_OK;
    }
    if (sp->key_esc >= 2) {
        int h = hexval(c);
        if (h < 0)
            return split_malformed(e, sp->esc_pos,
                                   sp->key_high ? unpaired : "invalid \\u escape in string");
        sp->key_code = sp->key_code * 16 + (unsigned)h;
        if (sp->key_esc++ < 5)
            return TM_OK;
        sp->key_esc = 0;
        unsigned code = sp->key_code;
        if (sp->key_high) {
            if (code < 0xDC00 || code > 0xDFFF)
                return split_malformed(e, sp->esc_pos, unpaired);
            key_put_code(sp, 0x10000 + ((unsigned long)(sp->key_high - 0xD800) << 10) +
                                 (code - 0xDC00));
            sp->key_high = 0;
        } else if (code >= 0xDC00 && code <= 0xDFFF) {
            return split_malformed(e, sp->esc_pos, unpaired);
        } else if (code >= 0xD800 && code <= 0xDBFF) {
            sp->key_high = code;
            sp->key_low = 1;
        } else {
            sp->key_nul |= code == 0;
            key_put_code(sp, code);
        }
        return TM_OK;
    }
    if (c == '\\') {
        sp->key_esc = 1;
        sp->esc_pos = split_here(sp);
        return TM_OK;
    }
    if (c == '\0')
        return split_malformed(e, split_here(sp), "NUL byte in string");
    if (c != '"') {
        char ch = (char)c;
        key_put(sp, &ch, 1);
        return TM_OK;
    }
    if (sp->key_nul)
        return split_malformed(e, sp->key_at, "\\u0000 in an object key");
    sp->key[sp->key_len < sizeof(sp->key) ? sp->key_len : sizeof(sp->key) - 1] = '\0';
    if (sp->key_len != sp->member_len || memcmp(sp->key, sp->member, sp->key_len))
        sp->key_verdict = KEY_UNKNOWN;
    else
        sp->key_verdict = sp->member_seen ? KEY_DUPLICATE : KEY_MEMBER;
    sp->member_seen |= sp->key_verdict == KEY_MEMBER;
    sp->state = SP_COLON;
    return TM_OK;
}

/* One byte outside the elements (and outside keys' strings). */
static tm_status split_byte(struct tm__json_split *sp, unsigned char c, struct tm_api_error *e)
{
    if (sp->state == SP_KEY)
        return split_key(sp, c, e);
    if (sp->state == SP_BOM) {
        static const unsigned char bom[] = {0xEF, 0xBB, 0xBF};
        if (c == bom[sp->bom]) {
            if (++sp->bom == 3)
                sp->state = SP_ROOT;
            return TM_OK;
        }
        if (sp->bom) {
            struct split_pos start = {0, 1, 1};
            return split_malformed(e, start, "expected a value");
        }
        sp->state = SP_ROOT;
    }
    if (is_ws(c))
        return TM_OK;
    switch (sp->state) {
    case SP_ROOT:
        sp->root_at = split_here(sp);
        if (c == '[') {
            sp->root_array = 1;
            sp->state = SP_ARR_OPEN;
        } else if (c == '{') {
            sp->state = SP_OBJ_OPEN;
        } else if (starts_value(c)) {
            return split_error(e, TM_EINVAL, sp->member, sp->root_at,
                               "must be an array of %ss, or an object holding one as \"%s\"",
                               sp->element, sp->member);
        } else {
            return split_malformed(e, sp->root_at, "expected a value");
        }
        return TM_OK;
    case SP_OBJ_OPEN:
    case SP_OBJ_KEY:
        if (c == '}' && sp->state == SP_OBJ_OPEN) {
            sp->state = SP_END;
        } else if (c == '"') {
            sp->key_at = split_here(sp);
            sp->key_len = 0;
            sp->key_esc = sp->key_low = sp->key_nul = 0;
            sp->key_high = 0;
            sp->state = SP_KEY;
        } else {
            return split_malformed(e, split_here(sp), "expected a string key");
        }
        return TM_OK;
    case SP_COLON:
        if (c != ':')
            return split_malformed(e, split_here(sp), "expected ':'");
        sp->state = SP_VALUE;
        return TM_OK;
    case SP_VALUE:
        if (!starts_value(c))
            return split_malformed(e, split_here(sp), "expected a value");
        if (sp->key_verdict == KEY_UNKNOWN)
            return split_error(e, TM_EINVAL, sp->key, split_here(sp),
                               "unknown field (expected only \"%s\")", sp->member);
        if (sp->key_verdict == KEY_DUPLICATE)
            return split_error(e, TM_EINVAL, sp->member, split_here(sp), "duplicate field");
        if (c != '[')
            return split_error(e, TM_EINVAL, sp->member, split_here(sp), "must be an array of %ss",
                               sp->element);
        sp->state = SP_ARR_OPEN;
        return TM_OK;
    case SP_OBJ_NEXT:
        if (c == ',')
            sp->state = SP_OBJ_KEY;
        else if (c == '}')
            sp->state = SP_END;
        else
            return split_malformed(e, split_here(sp), "expected ',' or '}'");
        return TM_OK;
    case SP_ARR_OPEN:
    case SP_ARR_ELEM:
        if (c == ']' && sp->state == SP_ARR_OPEN)
            sp->state = sp->root_array ? SP_END : SP_OBJ_NEXT;
        else if (c == ']' || c == '}' || c == ',')
            return split_malformed(e, split_here(sp), "expected a value");
        else
            return elem_start(sp, c, e);
        return TM_OK;
    case SP_ARR_NEXT:
        if (c == ',')
            sp->state = SP_ARR_ELEM;
        else if (c == ']')
            sp->state = sp->root_array ? SP_END : SP_OBJ_NEXT;
        else
            return split_malformed(e, split_here(sp), "expected ',' or ']'");
        return TM_OK;
    case SP_END:
        return split_malformed(e, split_here(sp), "unexpected data after the JSON value");
    default: /* SP_BOM, SP_KEY and SP_ELEM are read elsewhere */
        return TM_OK;
    }
}

tm_status tm__json_split_new(struct tm__json_split **out, const char *member, const char *element,
                             size_t max_element, tm__json_element_fn fn, void *ctx)
{
    *out = NULL;
    struct tm__json_split *sp = tm_calloc(1, sizeof(*sp));
    if (!sp)
        return TM_ENOMEM;
    sp->member = member;
    sp->member_len = strlen(member);
    sp->element = element;
    sp->elem_max = max_element;
    sp->fn = fn;
    sp->ctx = ctx;
    sp->state = SP_BOM;
    sp->line = 1;
    *out = sp;
    return TM_OK;
}

tm_status tm__json_split_feed(struct tm__json_split *sp, const char *data, size_t len,
                              struct tm_api_error *e)
{
    const unsigned char *p = (const unsigned char *)data;
    tm_status st = TM_OK;
    sp->chunk = data;
    sp->chunk_base = sp->pos;
    for (size_t i = 0; i < len && st == TM_OK;) {
        if (sp->state == SP_ELEM) {
            size_t used = 0;
            st = split_elem(sp, p + i, len - i, &used, e);
            i += used;
            continue;
        }
        st = split_byte(sp, p[i], e);
        sp->pos++;
        i++;
    }
    if (st == TM_OK)
        split_lines(sp, sp->pos);
    sp->chunk = NULL;
    return st;
}

tm_status tm__json_split_finish(struct tm__json_split *sp, struct tm_api_error *e)
{
    struct split_pos end = {sp->pos, sp->line, sp->pos - sp->line_start + 1};
    struct split_pos start = {0, 1, 1};
    tm_status st;
    switch (sp->state) {
    case SP_END:
        if (!sp->root_array && !sp->member_seen)
            return split_error(e, TM_EINVAL, sp->member, sp->root_at, "missing");
        return TM_OK;
    case SP_BOM:
        if (sp->bom)
            return split_malformed(e, start, "expected a value");
        return split_malformed(e, end, "unexpected end of input, expected a value");
    case SP_ELEM:
        if (elem_rescan(sp, INT64_MAX, &st, e))
            return st;
        return split_malformed(e, end, "unexpected end of input"); /* cannot happen */
    case SP_KEY:
        if (sp->key_low || (sp->key_esc >= 2 && sp->key_high))
            return split_malformed(e, sp->esc_pos, "unpaired UTF-16 surrogate in \\u escape");
        if (sp->key_esc >= 2)
            return split_malformed(e, sp->esc_pos, "invalid \\u escape in string");
        return split_malformed(e, sp->key_at, "unterminated string");
    case SP_OBJ_OPEN:
    case SP_OBJ_KEY:
        return split_malformed(e, end, "unexpected end of input, expected a key");
    case SP_COLON:
        return split_malformed(e, end, "expected ':'");
    case SP_OBJ_NEXT:
        return split_malformed(e, end, "unexpected end of input, expected ',' or '}'");
    case SP_ARR_NEXT:
        return split_malformed(e, end, "unexpected end of input, expected ',' or ']'");
    default: /* SP_ROOT, SP_VALUE, SP_ARR_OPEN, SP_ARR_ELEM */
        return split_malformed(e, end, "unexpected end of input, expected a value");
    }
}

void tm__json_split_free(struct tm__json_split *sp)
{
    if (!sp)
        return;
    tm_free(sp->elem);
    tm_free(sp);
}
