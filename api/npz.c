/*
 * npz.c - NumPy .npz archives (see npz.h): the zip container (local
 * headers, central directory, end record; stored or raw-deflated members)
 * and the .npy 1.0 header around each array.
 */
#include "npz.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "core/alloc.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_END 0x06054b50u
#define LOCAL_SIZE 30
#define CENTRAL_SIZE 46
#define END_SIZE 22
/* 1980-01-01 00:00, the first date a zip can hold. */
#define DOS_DATE 0x0021
#define DOS_TIME 0
/* numpy aligns an .npy's data to 64 bytes (numpy.lib.format.ARRAY_ALIGN). */
#define NPY_ALIGN 64
#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* Fixed part of an .npy header: magic, version, header length. */
#define NPY_PREFIX 10
/* The longest .npy header read: numpy's own are about 128 bytes. */
#define NPY_MAX_HEADER 4096
#define ZIP_MAX 0xffffffffu

static const struct {
    const char *descr, *name;
    size_t size;
} dtypes[] = {
    [TM_NPZ_F64] = {"<f8", "float64", 8}, [TM_NPZ_F32] = {"<f4", "float32", 4},
    [TM_NPZ_I64] = {"<i8", "int64", 8},   [TM_NPZ_U8] = {"|u1", "uint8", 1},
    [TM_NPZ_RAW] = {NULL, "bytes", 1},
};

size_t tm_npz_dtype_size(enum tm_npz_dtype dtype)
{
    return (unsigned)dtype <= TM_NPZ_RAW ? dtypes[dtype].size : 0;
}

const char *tm_npz_dtype_name(enum tm_npz_dtype dtype)
{
    return (unsigned)dtype <= TM_NPZ_RAW ? dtypes[dtype].name : "unknown";
}

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)((v >> 8) & 0xff);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)((v >> (8 * i)) & 0xff);
}

static unsigned get16(const unsigned char *p)
{
    return (unsigned)p[0] | ((unsigned)p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Member names: what numpy.savez makes of Python identifiers, and dots. */
static int valid_name(const char *name, size_t max)
{
    size_t n = strlen(name);
    if (n < 1 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/* ---- writing ---- */

struct tm_npz_writer {
    int level;
    size_t cap;
    unsigned char *buf; /* the local headers and data so far */
    size_t len, alloc;
    unsigned char *cd; /* the central directory so far */
    size_t cd_len, cd_alloc;
    int n;
    char names[TM_NPZ_MAX_MEMBERS][TM_NPZ_NAME_SIZE];
    int failed;
};

tm_status tm_npz_writer_new(int level, size_t cap, struct tm_npz_writer **out, char *err)
{
    *out = NULL;
    if (level < 0 || level > 9)
        return tm_errf(err, TM_EINVAL, "npz: compression level %d is not 0 to 9", level);
    struct tm_npz_writer *w = tm_calloc(1, sizeof(*w));
    if (!w)
        return tm_errf(err, TM_ENOMEM, "npz: out of memory");
    w->level = level;
    w->cap = cap && cap < ZIP_MAX ? cap : ZIP_MAX;
    *out = w;
    return TM_OK;
}

void tm_npz_writer_free(struct tm_npz_writer *w)
{
    if (!w)
        return;
    tm_free(w->buf);
    tm_free(w->cd);
    tm_free(w);
}

/* Room for n more bytes in *b (len used of alloc), growing geometrically. */
static int reserve(unsigned char **b, size_t len, size_t *alloc, size_t n)
{
    if (n <= *alloc - len)
        return 1;
    size_t want = *alloc ? *alloc : 4096;
    while (want - len < n) {
        if (want > SIZE_MAX / 2)
            return 0;
        want *= 2;
    }
    unsigned char *p = tm_realloc(*b, want);
    if (!p)
        return 0;
    *b = p;
    *alloc = want;
    return 1;
}

/* One member: its bytes are the concatenation of head (hlen) and body
 * (blen), so an array's header and data need not be copied together. */
static tm_status add_member(struct tm_npz_writer *w, const char *member, const void *head,
                            size_t hlen, const void *body, size_t blen, char *err)
{
    tm_status st = TM_OK;
    size_t nlen = strlen(member);
    if (w->failed)
        return tm_errf(err, TM_EINVAL, "npz: the writer failed before");
    if (w->n >= TM_NPZ_MAX_MEMBERS) {
        st = tm_errf(err, TM_ETOOBIG, "npz: more than %d members", TM_NPZ_MAX_MEMBERS);
        goto out;
    }
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->names[i], member)) {
            st = tm_errf(err, TM_EINVAL, "npz: member %s added twice", member);
            goto out;
        }
    if (blen > ZIP_MAX - hlen) {
        st = tm_errf(err, TM_ETOOBIG, "npz: member %s is 4 GiB or more", member);
        goto out;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    /* zlib's lengths are uInt: feed it in slices. */
    for (size_t o = 0; o < hlen;) {
        uInt s = (uInt)(hlen - o > UINT_MAX ? UINT_MAX : hlen - o);
        crc = crc32(crc, (const Bytef *)head + o, s);
        o += s;
    }
    for (size_t o = 0; o < blen;) {
        uInt s = (uInt)(blen - o > UINT_MAX ? UINT_MAX : blen - o);
        crc = crc32(crc, (const Bytef *)body + o, s);
        o += s;
    }
    size_t usize = hlen + blen, offset = w->len;
    if (!reserve(&w->buf, w->len, &w->alloc, LOCAL_SIZE + nlen)) {
        st = tm_errf(err, TM_ENOMEM, "npz: out of memory");
        goto out;
    }
    unsigned char *h = w->buf + w->len;
    w->len += LOCAL_SIZE + nlen;
    memcpy(h + LOCAL_SIZE, member, nlen);
    size_t csize;
    if (w->level == 0) {
        if (!reserve(&w->buf, w->len, &w->alloc, usize)) {
            st = tm_errf(err, TM_ENOMEM, "npz: out of memory");
            goto out;
        }
        if (hlen)
            memcpy(w->buf + w->len, head, hlen);
        if (blen)
            memcpy(w->buf + w->len + hlen, body, blen);
        csize = usize;
    } else {
        z_stream zs;
        memset(&zs, 0, sizeof(zs));
        if (deflateInit2(&zs, w->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            st = tm_errf(err, TM_ENOMEM, "npz: deflateInit2 failed");
            goto out;
        }
        /* deflateBound is for one call's input; the sum of two bounds
         * covers two slices of any kind. */
        size_t bound = (size_t)deflateBound(&zs, (uLong)usize) + 64;
        if (!reserve(&w->buf, w->len, &w->alloc, bound)) {
            deflateEnd(&zs);
            st = tm_errf(err, TM_ENOMEM, "npz: out of memory");
            goto out;
        }
        zs.next_out = w->buf + w->len;
        const unsigned char *parts[2] = {head, body};
        size_t plen[2] = {hlen, blen};
        size_t written = 0;
        int zr = Z_OK;
        for (int p = 0; p < 2 && zr != Z_STREAM_END; p++) {
            size_t o = 0;
            for (;;) {
                size_t s = plen[p] - o > UINT_MAX ? UINT_MAX : plen[p] - o;
                size_t room = bound - written;
                int flush = p == 1 && o + s == plen[p] ? Z_FINISH : Z_NO_FLUSH;
                zs.next_in = s ? (Bytef *)(parts[p] + o) : Z_NULL;
                zs.avail_in = (uInt)s;
                zs.avail_out = (uInt)(room > UINT_MAX ? UINT_MAX : room);
                unsigned char *before = zs.next_out;
                zr = deflate(&zs, flush);
                written += (size_t)(zs.next_out - before);
                o += s - zs.avail_in;
                if (zr == Z_STREAM_END || (zr != Z_OK && zr != Z_BUF_ERROR))
                    break;
                if (zs.next_out == before && s == zs.avail_in &&
                    !(flush == Z_NO_FLUSH && o == plen[p])) {
                    zr = Z_BUF_ERROR; /* no progress: out of room */
                    break;
                }
                if (flush == Z_NO_FLUSH && o == plen[p])
                    break;
            }
            if (zr != Z_OK && zr != Z_BUF_ERROR && zr != Z_STREAM_END)
                break;
        }
        deflateEnd(&zs);
        if (zr != Z_STREAM_END) {
            st = tm_errf(err, TM_ENOMEM, "npz: deflate failed on %s (%d)", member, zr);
            goto out;
        }
        csize = written;
    }
    if (csize > ZIP_MAX || w->len + csize > w->cap) {
        st = tm_errf(err, TM_ETOOBIG, "npz: the archive passes %zu bytes at member %s", w->cap,
                     member);
        goto out;
    }
    w->len += csize;
    unsigned method = w->level ? 8 : 0;
    h = w->buf + offset;
    put32(h, SIG_LOCAL);
    put16(h + 4, 20);
    put16(h + 6, 0);
    put16(h + 8, method);
    put16(h + 10, DOS_TIME);
    put16(h + 12, DOS_DATE);
    put32(h + 14, (uint32_t)crc);
    put32(h + 18, (uint32_t)csize);
    put32(h + 22, (uint32_t)usize);
    put16(h + 26, (unsigned)nlen);
    put16(h + 28, 0);

    if (!reserve(&w->cd, w->cd_len, &w->cd_alloc, CENTRAL_SIZE + nlen)) {
        st = tm_errf(err, TM_ENOMEM, "npz: out of memory");
        goto out;
    }
    unsigned char *c = w->cd + w->cd_len;
    memset(c, 0, CENTRAL_SIZE);
    put32(c, SIG_CENTRAL);
    put16(c + 4, 20);
    put16(c + 6, 20);
    put16(c + 10, method);
    put16(c + 12, DOS_TIME);
    put16(c + 14, DOS_DATE);
    put32(c + 16, (uint32_t)crc);
    put32(c + 20, (uint32_t)csize);
    put32(c + 24, (uint32_t)usize);
    put16(c + 28, (unsigned)nlen);
    put32(c + 42, (uint32_t)offset);
    memcpy(c + CENTRAL_SIZE, member, nlen);
    w->cd_len += CENTRAL_SIZE + nlen;
    snprintf(w->names[w->n], sizeof(w->names[w->n]), "%s", member);
    w->n++;
out:
    if (st)
        w->failed = 1;
    return st;
}

tm_status tm_npz_writer_add(struct tm_npz_writer *w, const char *name, enum tm_npz_dtype dtype,
                            int ndim, const int64_t *shape, const void *data, char *err)
{
    if (!name || !valid_name(name, TM_NPZ_NAME_SIZE - 5))
        return tm_errf(err, TM_EINVAL, "npz: bad array name");
    if ((unsigned)dtype >= TM_NPZ_RAW)
        return tm_errf(err, TM_EINVAL, "npz: %s: dtype %d cannot be an array", name, (int)dtype);
    if (ndim < 0 || ndim > TM_NPZ_MAX_NDIM)
        return tm_errf(err, TM_EINVAL, "npz: %s: %d dimensions", name, ndim);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] && count > SIZE_MAX / 16 / (size_t)shape[i]))
            return tm_errf(err, TM_EINVAL, "npz: %s: bad shape", name);
        count *= (size_t)shape[i];
    }
    if (count && !data)
        return tm_errf(err, TM_EINVAL, "npz: %s: no data", name);
    /* numpy's header: the dict, spaces, '\n', padded so the data starts at
     * a multiple of NPY_ALIGN. */
    char dict[256];
    int n = snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     dtypes[dtype].descr);
    for (int i = 0; i < ndim; i++)
        n += snprintf(dict + n, sizeof(dict) - (size_t)n, "%s%" PRId64, i ? ", " : "", shape[i]);
    n += snprintf(dict + n, sizeof(dict) - (size_t)n, "%s), }", ndim == 1 ? "," : "");
    unsigned char head[512];
    size_t total = ((size_t)NPY_PREFIX + (size_t)n + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    memcpy(head, NPY_MAGIC, NPY_MAGIC_LEN);
    head[6] = 1;
    head[7] = 0;
    put16(head + 8, (unsigned)(total - NPY_PREFIX));
    memcpy(head + NPY_PREFIX, dict, (size_t)n);
    memset(head + NPY_PREFIX + n, ' ', total - NPY_PREFIX - (size_t)n - 1);
    head[total - 1] = '\n';
    char member[TM_NPZ_NAME_SIZE];
    snprintf(member, sizeof(member), "%s.npy", name);
    return add_member(w, member, head, total, data, count * dtypes[dtype].size, err);
}

tm_status tm_npz_writer_add_raw(struct tm_npz_writer *w, const char *name, const void *bytes,
                                size_t len, char *err)
{
    if (!name || !valid_name(name, TM_NPZ_NAME_SIZE - 1))
        return tm_errf(err, TM_EINVAL, "npz: bad member name");
    size_t nlen = strlen(name);
    if (nlen >= 4 && !strcmp(name + nlen - 4, ".npy"))
        return tm_errf(err, TM_EINVAL, "npz: %s: a plain member named .npy", name);
    if (len && !bytes)
        return tm_errf(err, TM_EINVAL, "npz: %s: no data", name);
    return add_member(w, name, NULL, 0, bytes, len, err);
}

tm_status tm_npz_writer_finish(struct tm_npz_writer *w, unsigned char **out, size_t *len, char *err)
{
    *out = NULL;
    *len = 0;
    if (w->failed)
        return tm_errf(err, TM_EINVAL, "npz: the writer failed before");
    if (w->len + w->cd_len + END_SIZE > w->cap) {
        w->failed = 1;
        return tm_errf(err, TM_ETOOBIG, "npz: the archive passes %zu bytes", w->cap);
    }
    if (!reserve(&w->buf, w->len, &w->alloc, w->cd_len + END_SIZE)) {
        w->failed = 1;
        return tm_errf(err, TM_ENOMEM, "npz: out of memory");
    }
    size_t cd_offset = w->len;
    if (w->cd_len)
        memcpy(w->buf + w->len, w->cd, w->cd_len);
    w->len += w->cd_len;
    unsigned char *e = w->buf + w->len;
    memset(e, 0, END_SIZE);
    put32(e, SIG_END);
    put16(e + 8, (unsigned)w->n);
    put16(e + 10, (unsigned)w->n);
    put32(e + 12, (uint32_t)w->cd_len);
    put32(e + 16, (uint32_t)cd_offset);
    w->len += END_SIZE;
    *out = w->buf;
    *len = w->len;
    w->buf = NULL;
    w->len = w->alloc = 0;
    w->failed = 1;
    return TM_OK;
}

/* ---- reading ---- */

struct tm_npz {
    int n;
    struct tm_npz_member m[TM_NPZ_MAX_MEMBERS];
    void *buf[TM_NPZ_MAX_MEMBERS]; /* each member's inflated bytes */
};

void tm_npz_free(struct tm_npz *z)
{
    if (!z)
        return;
    for (int i = 0; i < z->n; i++)
        tm_free(z->buf[i]);
    tm_free(z);
}

int tm_npz_count(const struct tm_npz *z)
{
    return z->n;
}

const struct tm_npz_member *tm_npz_member_at(const struct tm_npz *z, int i)
{
    return i >= 0 && i < z->n ? &z->m[i] : NULL;
}

const struct tm_npz_member *tm_npz_find(const struct tm_npz *z, const char *name)
{
    for (int i = 0; i < z->n; i++)
        if (!strcmp(z->m[i].name, name))
            return &z->m[i];
    return NULL;
}

static int shape_text(char *buf, size_t size, int ndim, const int64_t *shape)
{
    int n = snprintf(buf, size, "(");
    for (int i = 0; i < ndim && (size_t)n < size; i++) {
        if (shape[i] < 0)
            n += snprintf(buf + n, size - (size_t)n, "%s*", i ? ", " : "");
        else
            n += snprintf(buf + n, size - (size_t)n, "%s%" PRId64, i ? ", " : "", shape[i]);
    }
    if ((size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, "%s)", ndim == 1 ? "," : "");
    return n;
}

tm_status tm_npz_get(const struct tm_npz *z, const char *name, enum tm_npz_dtype dtype, int ndim,
                     const int64_t *shape, const struct tm_npz_member **out, char *err)
{
    *out = NULL;
    const struct tm_npz_member *m = tm_npz_find(z, name);
    if (!m)
        return tm_errf(err, TM_ENOTFOUND, "npz: no member %s", name);
    int ok = m->dtype == dtype && m->ndim == ndim;
    for (int i = 0; ok && shape && i < ndim; i++)
        ok = shape[i] < 0 || shape[i] == m->shape[i];
    if (!ok) {
        char have[128], want[128];
        shape_text(have, sizeof(have), m->ndim, m->shape);
        if (shape)
            shape_text(want, sizeof(want), ndim, shape);
        else
            snprintf(want, sizeof(want), "%d dimensions", ndim);
        return tm_errf(err, TM_EPARSE, "npz: %s: %s of shape %s, expected %s of %s", name,
                       tm_npz_dtype_name(m->dtype), have, tm_npz_dtype_name(dtype), want);
    }
    *out = m;
    return TM_OK;
}

/* A tiny reader of the Python literal numpy writes as an .npy header. */
struct lit {
    const char *p, *end;
};

static void lit_ws(struct lit *l)
{
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t'))
        l->p++;
}

static int lit_char(struct lit *l, char c)
{
    lit_ws(l);
    if (l->p < l->end && *l->p == c) {
        l->p++;
        return 1;
    }
    return 0;
}

/* A quoted string ('...' or "..."), no escapes, into buf (size bytes). */
static int lit_string(struct lit *l, char *buf, size_t size)
{
    lit_ws(l);
    if (l->p >= l->end || (*l->p != '\'' && *l->p != '"'))
        return 0;
    char q = *l->p++;
    size_t n = 0;
    while (l->p < l->end && *l->p != q) {
        if (*l->p == '\\' || n + 1 >= size)
            return 0;
        buf[n++] = *l->p++;
    }
    if (l->p >= l->end)
        return 0;
    l->p++;
    buf[n] = '\0';
    return 1;
}

static int lit_int(struct lit *l, int64_t *v)
{
    lit_ws(l);
    int64_t x = 0;
    const char *start = l->p;
    while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
        if (x > (INT64_MAX - 9) / 10)
            return 0;
        x = x * 10 + (*l->p - '0');
        l->p++;
    }
    /* Python 2's long suffix, which old numpy headers carry. */
    if (l->p > start && l->p < l->end && *l->p == 'L')
        l->p++;
    *v = x;
    return l->p > start;
}

static int lit_word(struct lit *l, const char *w)
{
    lit_ws(l);
    size_t n = strlen(w);
    if ((size_t)(l->end - l->p) >= n && !memcmp(l->p, w, n)) {
        l->p += n;
        return 1;
    }
    return 0;
}

/* Parses an .npy header dict into m's dtype and shape. */
static tm_status parse_npy_header(const char *h, size_t n, struct tm_npz_member *m,
                                  const char *member, char *err)
{
    struct lit l = {h, h + n};
    int have_descr = 0, have_order = 0, have_shape = 0;
    if (!lit_char(&l, '{'))
        goto bad;
    for (;;) {
        if (lit_char(&l, '}'))
            break;
        char key[32];
        if (!lit_string(&l, key, sizeof(key)) || !lit_char(&l, ':'))
            goto bad;
        if (!strcmp(key, "descr")) {
            char descr[16];
            if (have_descr++ || !lit_string(&l, descr, sizeof(descr)))
                goto bad;
            int found = 0;
            for (int d = 0; d < TM_NPZ_RAW; d++)
                if (!strcmp(descr, dtypes[d].descr)) {
                    m->dtype = (enum tm_npz_dtype)d;
                    found = 1;
                }
            if (!found)
                return tm_errf(err, TM_EPARSE,
                               "npz: member %s: dtype '%s' is not read (only <f8, <f4, <i8, |u1)",
                               member, descr);
        } else if (!strcmp(key, "fortran_order")) {
            if (have_order++)
                goto bad;
            if (lit_word(&l, "True"))
                return tm_errf(err, TM_EPARSE, "npz: member %s: fortran_order arrays are not read",
                               member);
            if (!lit_word(&l, "False"))
                goto bad;
        } else if (!strcmp(key, "shape")) {
            if (have_shape++ || !lit_char(&l, '('))
                goto bad;
            m->ndim = 0;
            while (!lit_char(&l, ')')) {
                if (m->ndim >= TM_NPZ_MAX_NDIM)
                    return tm_errf(err, TM_EPARSE, "npz: member %s: more than %d dimensions",
                                   member, TM_NPZ_MAX_NDIM);
                if (!lit_int(&l, &m->shape[m->ndim]))
                    goto bad;
                m->ndim++;
                if (!lit_char(&l, ',')) {
                    if (!lit_char(&l, ')'))
                        goto bad;
                    break;
                }
            }
        } else {
            return tm_errf(err, TM_EPARSE, "npz: member %s: unknown header key '%s'", member, key);
        }
        if (!lit_char(&l, ',')) {
            if (!lit_char(&l, '}'))
                goto bad;
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape)
        return tm_errf(err, TM_EPARSE, "npz: member %s: header lacks %s", member,
                       !have_descr   ? "descr"
                       : !have_order ? "fortran_order"
                                     : "shape");
    /* The rest is padding: spaces up to the final '\n'. */
    lit_ws(&l);
    if (l.p != l.end)
        goto bad;
    return TM_OK;
bad:
    return tm_errf(err, TM_EPARSE, "npz: member %s: malformed .npy header at byte %zu", member,
                   (size_t)(l.p - h) + NPY_PREFIX);
}

/* Turns the inflated bytes of member (in z->buf[i], len bytes) into m. */
static tm_status read_npy(unsigned char *b, size_t len, struct tm_npz_member *m, const char *member,
                          char *err)
{
    if (len < NPY_PREFIX || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN))
        return tm_errf(err, TM_EPARSE, "npz: member %s: not an .npy (no magic)", member);
    if (b[6] != 1 || b[7] != 0)
        return tm_errf(err, TM_EPARSE, "npz: member %s: .npy version %u.%u, only 1.0 is read",
                       member, b[6], b[7]);
    size_t hlen = get16(b + 8);
    if (hlen > len - NPY_PREFIX || hlen > NPY_MAX_HEADER || hlen < 1 ||
        b[NPY_PREFIX + hlen - 1] != '\n')
        return tm_errf(err, TM_EPARSE, "npz: member %s: bad .npy header length %zu", member, hlen);
    for (size_t i = 0; i < hlen - 1; i++)
        if (b[NPY_PREFIX + i] < 0x20 || b[NPY_PREFIX + i] > 0x7e)
            return tm_errf(err, TM_EPARSE, "npz: member %s: .npy header byte %zu is not ASCII",
                           member, NPY_PREFIX + i);
    tm_status st = parse_npy_header((const char *)b + NPY_PREFIX, hlen - 1, m, member, err);
    if (st)
        return st;
    size_t data_len = len - NPY_PREFIX - hlen, size = dtypes[m->dtype].size;
    uint64_t count = 1;
    for (int i = 0; i < m->ndim; i++) {
        uint64_t d = (uint64_t)m->shape[i];
        if (d && count > (uint64_t)data_len / d)
            count = (uint64_t)data_len + 1; /* too many: caught below */
        else
            count *= d;
    }
    if (count > (uint64_t)data_len / size || count * size != (uint64_t)data_len)
        return tm_errf(err, TM_EPARSE,
                       "npz: member %s: %zu data bytes, the shape needs a different size", member,
                       data_len);
    m->count = (int64_t)count;
    /* Data at an offset not a multiple of the element size (old numpy
     * aligned to 16, others may not align at all) moves to the start. */
    size_t off = NPY_PREFIX + hlen;
    if (off % 8) {
        memmove(b, b + off, data_len);
        off = 0;
    }
    m->data = count ? b + off : NULL;
    return TM_OK;
}

/* Inflates csize bytes at src into exactly usize bytes at dst. */
static int inflate_exact(const unsigned char *src, size_t csize, unsigned char *dst, size_t usize)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, -15) != Z_OK)
        return 0;
    size_t in = 0, out = 0;
    int zr = Z_OK;
    while (zr == Z_OK) {
        size_t si = csize - in > UINT_MAX ? UINT_MAX : csize - in;
        size_t so = usize - out > UINT_MAX ? UINT_MAX : usize - out;
        zs.next_in = (Bytef *)(src + in);
        zs.avail_in = (uInt)si;
        /* One spare byte of output would catch a stream longer than
         * stated; dst has none, so a full buffer that is not the end is
         * an error below. */
        zs.next_out = dst + out;
        zs.avail_out = (uInt)so;
        zr = inflate(&zs, Z_NO_FLUSH);
        in += si - zs.avail_in;
        out += so - zs.avail_out;
        if (zr == Z_BUF_ERROR || (zr == Z_OK && si == zs.avail_in && so == zs.avail_out))
            break;
    }
    inflateEnd(&zs);
    return zr == Z_STREAM_END && out == usize && in == csize;
}

tm_status tm_npz_read(const void *bytes, size_t len, size_t max_bytes, struct tm_npz **out,
                      char *err)
{
    const unsigned char *b = bytes;
    tm_status st = TM_OK;
    *out = NULL;
    if (len < END_SIZE)
        return tm_errf(err, TM_EPARSE, "npz: %zu bytes is too short for a zip", len);
    /* The end record: topicd writes no comment, others may (up to 64 KiB). */
    size_t e = len - END_SIZE, lowest = len - END_SIZE > 0xffff ? len - END_SIZE - 0xffff : 0;
    for (;;) {
        if (get32(b + e) == SIG_END && e + END_SIZE + get16(b + e + 20) == len)
            break;
        if (e == lowest)
            return tm_errf(err, TM_EPARSE, "npz: not a zip (no end of central directory)");
        e--;
    }
    unsigned n = get16(b + e + 10);
    uint32_t cd_size = get32(b + e + 12), cd_off = get32(b + e + 16);
    if (get16(b + e + 4) || get16(b + e + 6) || get16(b + e + 8) != n)
        return tm_errf(err, TM_EPARSE, "npz: a zip of several disks is not read");
    if (n == 0xffff || cd_size == ZIP_MAX || cd_off == ZIP_MAX)
        return tm_errf(err, TM_EPARSE, "npz: a zip64 archive is not read");
    if (n > TM_NPZ_MAX_MEMBERS)
        return tm_errf(err, TM_ETOOBIG, "npz: %u members, at most %d are read", n,
                       TM_NPZ_MAX_MEMBERS);
    if ((size_t)cd_off > e || (size_t)cd_size > e - cd_off)
        return tm_errf(err, TM_EPARSE, "npz: the central directory lies outside the file");
    struct tm_npz *z = tm_calloc(1, sizeof(*z));
    if (!z)
        return tm_errf(err, TM_ENOMEM, "npz: out of memory");
    /* First pass: every entry checked and the sizes summed, before any
     * allocation of member data. */
    struct {
        size_t data, csize, usize;
        uint32_t crc;
        unsigned method;
        char name[TM_NPZ_NAME_SIZE];
    } ent[TM_NPZ_MAX_MEMBERS];
    size_t p = cd_off, cd_end = (size_t)cd_off + cd_size, total = 0;
    for (unsigned i = 0; i < n; i++) {
        if (cd_end - p < CENTRAL_SIZE || get32(b + p) != SIG_CENTRAL) {
            st = tm_errf(err, TM_EPARSE, "npz: central directory entry %u is malformed", i);
            goto fail;
        }
        unsigned flags = get16(b + p + 8), method = get16(b + p + 10);
        uint32_t crc = get32(b + p + 16), csize = get32(b + p + 20), usize = get32(b + p + 24);
        size_t nlen = get16(b + p + 28), xlen = get16(b + p + 30), clen = get16(b + p + 32);
        uint32_t loff = get32(b + p + 42);
        if (cd_end - p - CENTRAL_SIZE < nlen + xlen + clen) {
            st = tm_errf(err, TM_EPARSE, "npz: central directory entry %u is malformed", i);
            goto fail;
        }
        if (nlen < 1 || nlen >= TM_NPZ_NAME_SIZE) {
            st = tm_errf(err, TM_EPARSE, "npz: member %u: a name of %zu bytes", i, nlen);
            goto fail;
        }
        memcpy(ent[i].name, b + p + CENTRAL_SIZE, nlen);
        ent[i].name[nlen] = '\0';
        const char *name = ent[i].name;
        if (!valid_name(name, TM_NPZ_NAME_SIZE - 1)) {
            st = tm_errf(err, TM_EPARSE,
                         "npz: member %u: a name with bytes other than"
                         " [A-Za-z0-9_.-]",
                         i);
            goto fail;
        }
        for (unsigned j = 0; j < i; j++)
            if (!strcmp(ent[j].name, name)) {
                st = tm_errf(err, TM_EPARSE, "npz: member %s appears twice", name);
                goto fail;
            }
        if (flags & 1) {
            st = tm_errf(err, TM_EPARSE, "npz: member %s is encrypted", name);
            goto fail;
        }
        if (method != 0 && method != 8) {
            st = tm_errf(err, TM_EPARSE,
                         "npz: member %s: compression method %u (only stored and deflate)", name,
                         method);
            goto fail;
        }
        if (csize == ZIP_MAX || usize == ZIP_MAX || loff == ZIP_MAX) {
            st = tm_errf(err, TM_EPARSE, "npz: member %s: zip64 sizes are not read", name);
            goto fail;
        }
        if (method == 0 && csize != usize) {
            st = tm_errf(err, TM_EPARSE, "npz: member %s: stored with two sizes", name);
            goto fail;
        }
        /* The local header: its name must be the same, and the data lies
         * between it and the central directory. */
        if (loff > cd_off || cd_off - loff < LOCAL_SIZE || get32(b + loff) != SIG_LOCAL) {
            st = tm_errf(err, TM_EPARSE, "npz: member %s: no local header at %" PRIu32, name, loff);
            goto fail;
        }
        /* Its fields agree with the central directory's, unless it left
         * them to a data descriptor (flag 3) or a zip64 extra field (as
         * Python's zipfile does for numpy.savez). */
        unsigned lflags = get16(b + loff + 6);
        uint32_t lcrc = get32(b + loff + 14), lcsize = get32(b + loff + 18),
                 lusize = get32(b + loff + 22);
        if (get16(b + loff + 8) != method || lflags != flags ||
            (!(flags & 8) && lcsize != ZIP_MAX && lusize != ZIP_MAX &&
             (lcrc != crc || lcsize != csize || lusize != usize))) {
            st = tm_errf(err, TM_EPARSE,
                         "npz: member %s: local header disagrees with the"
                         " central directory",
                         name);
            goto fail;
        }
        size_t lnlen = get16(b + loff + 26), lxlen = get16(b + loff + 28);
        size_t data = (size_t)loff + LOCAL_SIZE + lnlen + lxlen;
        if (lnlen != nlen || data > cd_off || memcmp(b + loff + LOCAL_SIZE, name, nlen) ||
            cd_off - data < csize) {
            st = tm_errf(err, TM_EPARSE, "npz: member %s: local header or data out of place", name);
            goto fail;
        }
        /* A size deflate cannot inflate to (it expands at most 1032:1) is
         * refused before it sizes an allocation: a 2.9 GB malloc from 100
         * bytes under make fuzz. (Stored data was checked above.) */
        if (method != 0 && usize / 1032 > (size_t)csize + 1) {
            st = tm_errf(err, TM_EPARSE,
                         "npz: member %s: %zu bytes cannot come from %zu bytes of data", name,
                         (size_t)usize, (size_t)csize);
            goto fail;
        }
        if (usize > max_bytes - total) {
            st = tm_errf(err, TM_ETOOBIG, "npz: members inflate past %zu bytes (at %s)", max_bytes,
                         name);
            goto fail;
        }
        total += usize;
        ent[i].data = data;
        ent[i].csize = csize;
        ent[i].usize = usize;
        ent[i].crc = crc;
        ent[i].method = method;
        p += CENTRAL_SIZE + nlen + xlen + clen;
    }
    for (unsigned i = 0; i < n; i++) {
        const char *name = ent[i].name;
        unsigned char *buf = tm_malloc(ent[i].usize ? ent[i].usize : 1);
        if (!buf) {
            st = tm_errf(err, TM_ENOMEM, "npz: out of memory for %s", name);
            goto fail;
        }
        z->buf[i] = buf;
        z->n = (int)i + 1;
        if (ent[i].method == 0) {
            if (ent[i].usize)
                memcpy(buf, b + ent[i].data, ent[i].usize);
        } else if (!inflate_exact(b + ent[i].data, ent[i].csize, buf, ent[i].usize)) {
            st = tm_errf(err, TM_EPARSE, "npz: member %s: bad deflate data", name);
            goto fail;
        }
        uLong crc = crc32(0L, Z_NULL, 0);
        for (size_t o = 0; o < ent[i].usize;) {
            uInt s = (uInt)(ent[i].usize - o > UINT_MAX ? UINT_MAX : ent[i].usize - o);
            crc = crc32(crc, buf + o, s);
            o += s;
        }
        if ((uint32_t)crc != ent[i].crc) {
            st = tm_errf(err, TM_EPARSE, "npz: member %s: CRC mismatch", name);
            goto fail;
        }
        struct tm_npz_member *m = &z->m[i];
        size_t nlen = strlen(name);
        if (nlen > 4 && !strcmp(name + nlen - 4, ".npy")) {
            snprintf(m->name, sizeof(m->name), "%.*s", (int)(nlen - 4), name);
            st = read_npy(buf, ent[i].usize, m, name, err);
            if (st)
                goto fail;
            for (unsigned j = 0; j < i; j++)
                if (!strcmp(z->m[j].name, m->name)) {
                    st = tm_errf(err, TM_EPARSE, "npz: member %s appears twice", m->name);
                    goto fail;
                }
        } else {
            snprintf(m->name, sizeof(m->name), "%s", name);
            for (unsigned j = 0; j < i; j++)
                if (!strcmp(z->m[j].name, m->name)) {
                    st = tm_errf(err, TM_EPARSE, "npz: member %s appears twice", m->name);
                    goto fail;
                }
            m->dtype = TM_NPZ_RAW;
            m->ndim = 1;
            m->shape[0] = m->count = (int64_t)ent[i].usize;
            m->data = ent[i].usize ? buf : NULL;
        }
    }
    *out = z;
    return TM_OK;
fail:
    tm_npz_free(z);
    return st;
}
