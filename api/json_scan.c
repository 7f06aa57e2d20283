/*
 * json_scan.c - the strict JSON scanner and the JSON Lines fast path (see
 * json_scan.h).
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

/* ---------------------------------------------------------------------- */
/* The streaming splitter. */

struct tm__json_split {
    const char *member, *element;
    size_t member_len, elem_max;
    tm__json_element_fn fn;
    void *ctx;
    int64_t pos; /* offset of the next byte */
    int depth;   /* open arrays and objects */
    int in_string, escape;
    int started, done; /* root opened; root closed */
    int root_object;
    int expect_key, in_key, key_member, after_colon;
    char key[32];
    size_t key_len;
    int in_array, array_seen, array_depth; /* the split array */
    int need_comma, had_comma;
    int elem_active, elem_scalar;
    int64_t elem_start, index;
    char *elem; /* '[' and the element's bytes so far */
    size_t elem_len, elem_cap;
};

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

static tm_status split_fail(struct tm__json_split *sp, struct tm_api_error *e, tm_status st,
                            const char *msg)
{
    return tm_api_errorf(e, st, NULL, sp->pos, "%s (byte %lld)", msg, (long long)sp->pos);
}

/* The element is complete: hand "[" element "]" to fn. */
static tm_status split_emit(struct tm__json_split *sp, struct tm_api_error *e)
{
    if (elem_reserve(sp, sp->elem_len + 2))
        return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
    sp->elem[0] = '[';
    sp->elem[sp->elem_len] = ']';
    tm_status st = sp->fn(sp->ctx, sp->index, sp->elem, sp->elem_len + 1, sp->elem_start, e);
    sp->elem_active = sp->elem_scalar = 0;
    sp->elem_len = 1;
    sp->index++;
    sp->need_comma = 1;
    sp->had_comma = 0;
    return st;
}

static tm_status split_start(struct tm__json_split *sp, int scalar, struct tm_api_error *e)
{
    if (sp->need_comma) {
        char msg[96];
        snprintf(msg, sizeof(msg), "expected ',' or ']' between %s", sp->member);
        return split_fail(sp, e, TM_EPARSE, msg);
    }
    sp->elem_active = 1;
    sp->elem_scalar = scalar;
    sp->elem_start = sp->pos;
    sp->elem_len = 1; /* room for the '[' */
    if (elem_reserve(sp, 4096))
        return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
    return TM_OK;
}

static tm_status split_byte(struct tm__json_split *sp, char ch, struct tm_api_error *e)
{
    tm_status st = TM_OK;
    char msg[96];
    int ws = ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
    /* A scalar element ends at whitespace, ',' or a closing bracket. */
    if (sp->elem_active && sp->elem_scalar && !sp->in_string &&
        (ws || ch == ',' || ch == ']' || ch == '}') && (st = split_emit(sp, e)))
        return st;
    if (sp->elem_active) {
        if (sp->elem_len + 2 > sp->elem_max)
            return tm_api_errorf(e, TM_ETOOBIG, NULL, sp->elem_start,
                                 "%s[%lld] exceeds the %s size limit", sp->member,
                                 (long long)sp->index, sp->element);
        if (elem_reserve(sp, sp->elem_len + 2))
            return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
        sp->elem[sp->elem_len++] = ch;
    }
    if (sp->in_string) {
        if (sp->escape) {
            sp->escape = 0;
        } else if (ch == '\\') {
            sp->escape = 1;
        } else if (ch == '"') {
            sp->in_string = 0;
            if (sp->in_key) {
                sp->in_key = 0;
                if (sp->key_len != sp->member_len || memcmp(sp->key, sp->member, sp->key_len)) {
                    snprintf(msg, sizeof(msg), "a large JSON body holds only \"%s\"", sp->member);
                    return split_fail(sp, e, TM_EINVAL, msg);
                }
                if (sp->array_seen) {
                    snprintf(msg, sizeof(msg), "\"%s\" given twice", sp->member);
                    return split_fail(sp, e, TM_EINVAL, msg);
                }
                sp->key_member = 1;
            } else if (sp->elem_active && sp->depth == sp->array_depth) {
                return split_emit(sp, e);
            }
        } else if (sp->in_key && sp->key_len < sizeof(sp->key)) {
            sp->key[sp->key_len++] = ch;
        } else if (sp->in_key) {
            sp->key_len = sizeof(sp->key) + 1; /* too long to be member */
        }
        return TM_OK;
    }
    if (ws)
        return TM_OK;
    if (sp->done)
        return split_fail(sp, e, TM_EPARSE, "unexpected data after the JSON value");
    int at_array = sp->in_array && sp->depth == sp->array_depth;
    switch (ch) {
    case '"':
        sp->in_string = 1;
        if (sp->root_object && sp->depth == 1 && sp->expect_key) {
            sp->in_key = 1;
            sp->key_len = 0;
            sp->expect_key = 0;
        } else if (at_array && !sp->elem_active) {
            if ((st = split_start(sp, 0, e)))
                return st;
            sp->elem[sp->elem_len++] = ch;
        } else if (!sp->started) {
            return split_fail(sp, e, TM_EPARSE, "expected a JSON array or object");
        }
        return TM_OK;
    case '[':
    case '{':
        if (!sp->started) {
            sp->started = 1;
            sp->depth = 1;
            sp->root_object = ch == '{';
            sp->expect_key = sp->root_object;
            if (!sp->root_object) {
                sp->in_array = sp->array_seen = 1;
                sp->array_depth = 1;
            }
            return TM_OK;
        }
        if (at_array && !sp->elem_active) {
            if ((st = split_start(sp, 0, e)))
                return st;
            sp->elem[sp->elem_len++] = ch;
        } else if (sp->root_object && sp->depth == 1 && sp->after_colon) {
            sp->after_colon = 0;
            if (ch != '[' || !sp->key_member) {
                snprintf(msg, sizeof(msg), "\"%s\" must be an array", sp->member);
                return split_fail(sp, e, TM_EINVAL, msg);
            }
            sp->in_array = sp->array_seen = 1;
            sp->array_depth = 2;
        }
        sp->depth++;
        return TM_OK;
    case ']':
    case '}':
        if (!sp->started)
            return split_fail(sp, e, TM_EPARSE, "expected a JSON array or object");
        if (at_array && ch == ']') {
            if (sp->had_comma)
                return split_fail(sp, e, TM_EPARSE, "a ',' before ']'");
            sp->in_array = 0;
        }
        sp->depth--;
        if (sp->elem_active && !sp->elem_scalar && sp->depth == sp->array_depth)
            return split_emit(sp, e);
        if (sp->depth == 0)
            sp->done = 1;
        return TM_OK;
    case ',':
        if (at_array) {
            if (!sp->need_comma) {
                snprintf(msg, sizeof(msg), "a ',' without a %s before it", sp->element);
                return split_fail(sp, e, TM_EPARSE, msg);
            }
            sp->need_comma = 0;
            sp->had_comma = 1;
        } else if (sp->root_object && sp->depth == 1) {
            sp->expect_key = 1;
        }
        return TM_OK;
    case ':':
        if (sp->root_object && sp->depth == 1)
            sp->after_colon = 1;
        return TM_OK;
    default:
        if (!sp->started)
            return split_fail(sp, e, TM_EPARSE, "expected a JSON array or object");
        if (at_array && !sp->elem_active) {
            if ((st = split_start(sp, 1, e)))
                return st;
            sp->elem[sp->elem_len++] = ch;
        } else if (sp->root_object && sp->depth == 1 && sp->after_colon) {
            snprintf(msg, sizeof(msg), "\"%s\" must be an array", sp->member);
            return split_fail(sp, e, TM_EINVAL, msg);
        }
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
    *out = sp;
    return TM_OK;
}

tm_status tm__json_split_feed(struct tm__json_split *sp, const char *data, size_t len,
                              struct tm_api_error *e)
{
    for (size_t i = 0; i < len; i++) {
        tm_status st = split_byte(sp, data[i], e);
        sp->pos++;
        if (st)
            return st;
    }
    return TM_OK;
}

tm_status tm__json_split_finish(struct tm__json_split *sp, struct tm_api_error *e)
{
    if (sp->elem_active && sp->elem_scalar) {
        tm_status st = split_emit(sp, e);
        if (st)
            return st;
    }
    if (!sp->done)
        return split_fail(sp, e, TM_EPARSE, "the JSON body ends before its value does");
    if (!sp->array_seen)
        return tm_api_errorf(e, TM_EINVAL, sp->member, -1, "required");
    return TM_OK;
}

void tm__json_split_free(struct tm__json_split *sp)
{
    if (!sp)
        return;
    tm_free(sp->elem);
    tm_free(sp);
}
