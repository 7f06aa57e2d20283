/* mmio.c - Matrix Market coordinate read and write (see mmio.h). */
#include "api/mmio.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"

tm_status tm_mmio_write(FILE *f, const struct tm_csr *m, char *err)
{
    int64_t nnz = tm_csr_nnz(m);
    if (fprintf(f,
                "%%%%MatrixMarket matrix coordinate real general\n%% written by topicd\n"
                "%" PRId64 " %" PRId64 " %" PRId64 "\n",
                m->n_rows, m->n_cols, nnz) < 0)
        goto fail;
    for (int64_t r = 0; r < m->n_rows; r++)
        for (int64_t p = m->indptr[r]; p < m->indptr[r + 1]; p++)
            if (fprintf(f, "%" PRId64 " %d %.17g\n", r + 1, m->indices[p] + 1, m->data[p]) < 0)
                goto fail;
    if (fflush(f) != 0)
        goto fail;
    return TM_OK;
fail:
    return tm_errf(err, TM_EIO, "writing the Matrix Market file: %s", strerror(errno));
}

/* ---------------------------------------------------------------------- */

/* A line of the file reader longer than this (without a newline) is refused,
 * so a file without newlines cannot grow the window without bound; comment
 * lines are skipped whatever their length. A valid entry line is ~60 bytes. */
#define MMIO_MAX_LINE ((size_t)1 << 20)
#define MMIO_CHUNK ((size_t)1 << 16)

/*
 * The input seen one line at a time through a window: the whole input when
 * parsing memory (f NULL), else buf, refilled chunk bytes at a time with the
 * partial last line moved to its front.
 */
struct reader {
    const char *p; /* the window; p[0] is byte base of the input */
    size_t len;    /* bytes in the window */
    size_t pos;    /* start of the next line in the window */
    int64_t base;  /* input offset of p[0] */
    FILE *f;       /* borrowed; NULL when p is the whole input */
    char *buf;     /* f's window, owned, cap bytes */
    size_t cap, chunk;
    int eof;
    tm_status st; /* why next_line returned -1 */
    int64_t line;
    struct tm_api_error *e;
};

static tm_status rfail(struct reader *r, tm_status st, const char *msg)
{
    char field[48];
    snprintf(field, sizeof(field), "line %" PRId64, r->line);
    tm_api_errorf(r->e, st, field, r->base + (int64_t)r->pos, "%s", msg);
    if (r->e) {
        r->e->line = r->line;
        r->e->column = 0;
    }
    return st;
}

/* Reads up to chunk more bytes of f after the window's len bytes, growing buf
 * (doubling) when it is full. -1 with r->st on an error. */
static int refill(struct reader *r)
{
    if (r->len == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : r->chunk;
        char *nb = tm_realloc(r->buf, cap);
        if (!nb) {
            r->st = tm_api_errorf(r->e, TM_ENOMEM, NULL, -1, "out of memory");
            return -1;
        }
        r->buf = nb;
        r->p = nb;
        r->cap = cap;
    }
    size_t want = r->cap - r->len < r->chunk ? r->cap - r->len : r->chunk;
    size_t got = fread(r->buf + r->len, 1, want, r->f);
    r->len += got;
    if (got < want) { /* fread stops short only at the end or on an error */
        if (ferror(r->f)) {
            r->st = tm_api_errorf(r->e, TM_EIO, NULL, r->base + (int64_t)r->len, "%s",
                                  strerror(errno ? errno : EIO));
            return -1;
        }
        r->eof = 1;
    }
    return 0;
}

/* The current line as [*s, *s + *n), valid until the next call, advancing
 * past its "\n": 1; 0 at the end of the input; -1 on an error (r->st, e
 * filled). */
static int next_line(struct reader *r, const char **s, size_t *n)
{
    size_t scanned = 0; /* bytes of this line known to hold no "\n" */
    for (;;) {
        const char *start = r->p + r->pos;
        size_t avail = r->len - r->pos;
        const char *nl = avail > scanned ? memchr(start + scanned, '\n', avail - scanned) : NULL;
        if (nl || !r->f || r->eof) {
            if (!avail)
                return 0;
            size_t l = nl ? (size_t)(nl - start) : avail;
            r->pos += l + (nl ? 1 : 0);
            r->line++;
            if (l && start[l - 1] == '\r')
                l--;
            *s = start;
            *n = l;
            return 1;
        }
        scanned = avail;
        if (r->pos) { /* keep only the partial line */
            memmove(r->buf, start, avail);
            r->base += (int64_t)r->pos;
            r->len = avail;
            r->pos = 0;
        }
        if (r->len >= MMIO_MAX_LINE) {
            if (r->line > 0 && r->buf[0] == '%') {
                /* A long comment: keep its "%" and drop the rest read so far. */
                r->base += (int64_t)r->len - 1;
                r->len = scanned = 1;
            } else {
                r->line++;
                r->st = rfail(r, TM_ETOOBIG, "line longer than 1 MiB");
                return -1;
            }
        }
        if (refill(r) < 0)
            return -1;
    }
}

/* Splits [s, s+n) into at most max whitespace-separated tokens (each copied,
 * NUL-terminated, into tok[i] of size 64). Returns the count, or -1 when a
 * token is too long or there are more than max. */
static int split(const char *s, size_t n, char tok[][64], int max)
{
    int k = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i >= n)
            break;
        size_t start = i;
        while (i < n && s[i] != ' ' && s[i] != '\t')
            i++;
        if (k >= max || i - start >= 64)
            return -1;
        memcpy(tok[k], s + start, i - start);
        tok[k][i - start] = '\0';
        k++;
    }
    return k;
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    if (!*s || *s == '-' || *s == '+')
        return 0;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno == ERANGE)
        return 0;
    *out = (int64_t)v;
    return 1;
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return 0;
    return 1;
}

/*
 * The CSR arrays as entries arrive. indptr[row + 1] counts each row's
 * entries. While the rows arrive in order (topicd's and SciPy's writers emit
 * them so) the arrays are already in row order and nothing else is kept;
 * from the first entry out of order on, rowof remembers each entry's row for
 * one in-place bucket pass at the end (4 bytes an entry instead of a COO copy).
 */
struct build {
    int64_t rows, k, cap, limit; /* k entries of cap allocated; never more than limit */
    int64_t last_row;
    int64_t *indptr;
    int32_t *indices;
    double *data;
    int32_t *rowof; /* NULL while the rows are in order */
};

static void build_release(struct build *b)
{
    tm_free(b->indptr);
    tm_free(b->indices);
    tm_free(b->data);
    tm_free(b->rowof);
}

/* Grows the arrays to cap entries (at least 1, so an empty matrix has arrays). */
static int build_reserve(struct build *b, int64_t cap)
{
    size_t c = (size_t)(cap > 0 ? cap : 1);
    int32_t *ni = tm_reallocarray(b->indices, c, sizeof(*ni));
    if (!ni)
        return 0;
    b->indices = ni;
    double *nd = tm_reallocarray(b->data, c, sizeof(*nd));
    if (!nd)
        return 0;
    b->data = nd;
    if (b->rowof) {
        int32_t *nr = tm_reallocarray(b->rowof, c, sizeof(*nr));
        if (!nr)
            return 0;
        b->rowof = nr;
    }
    b->cap = cap;
    return 1;
}

/* Appends one entry; 0 when out of memory. */
static int build_add(struct build *b, int64_t row, int32_t col, double v)
{
    if (b->k == b->cap) {
        int64_t cap = b->cap < 4096 ? 4096 : b->cap * 2;
        if (!build_reserve(b, cap < b->limit ? cap : b->limit))
            return 0;
    }
    if (!b->rowof) {
        if (row < b->last_row) {
            /* The first entry out of order: the k before it are in row order,
             * so their rows follow from the counts. */
            b->rowof = tm_mallocarray((size_t)(b->cap > 0 ? b->cap : 1), sizeof(*b->rowof));
            if (!b->rowof)
                return 0;
            int64_t p = 0;
            for (int64_t r = 0; r <= b->last_row; r++)
                for (int64_t c = 0; c < b->indptr[r + 1]; c++)
                    b->rowof[p++] = (int32_t)r;
        } else {
            b->last_row = row;
        }
    }
    if (b->rowof)
        b->rowof[b->k] = (int32_t)row;
    b->indices[b->k] = col;
    b->data[b->k] = v;
    b->indptr[row + 1]++;
    b->k++;
    return 1;
}

static void swap_entries(int32_t *idx, double *val, int64_t i, int64_t j)
{
    int32_t c = idx[i];
    idx[i] = idx[j];
    idx[j] = c;
    double v = val[i];
    val[i] = val[j];
    val[j] = v;
}

/* Sorts n (column, value) pairs by column: insertion sort when short,
 * heapsort otherwise (in place, n log n at worst). */
static void sort_row(int32_t *idx, double *val, int64_t n)
{
    if (n <= 16) {
        for (int64_t i = 1; i < n; i++) {
            int32_t c = idx[i];
            double v = val[i];
            int64_t j = i;
            for (; j > 0 && idx[j - 1] > c; j--) {
                idx[j] = idx[j - 1];
                val[j] = val[j - 1];
            }
            idx[j] = c;
            val[j] = v;
        }
        return;
    }
    for (int64_t end = n, start = n / 2;;) {
        if (start > 0) {
            start--; /* building the heap */
        } else {
            if (--end == 0)
                return;
            swap_entries(idx, val, 0, end);
        }
        for (int64_t root = start;;) { /* sift down */
            int64_t child = 2 * root + 1;
            if (child >= end)
                break;
            if (child + 1 < end && idx[child + 1] > idx[child])
                child++;
            if (idx[root] >= idx[child])
                break;
            swap_entries(idx, val, root, child);
            root = child;
        }
    }
}

/* Turns the counts into row pointers, brings entries into row order (when
 * they did not arrive so), sorts each row by column and sums duplicates
 * (as SciPy's tocsr()). Moves the arrays into out; 0 when out of memory,
 * -1 (the entry's row and column, 0-based, in *bad) when duplicates sum to
 * a value that is not finite: each was, their sum need not be. */
static int build_finish(struct build *b, int64_t cols, struct tm_csr *out, int64_t bad[2])
{
    int64_t rows = b->rows;
    for (int64_t i = 0; i < rows; i++)
        b->indptr[i + 1] += b->indptr[i];
    if (b->rowof) {
        /* In-place bucket pass: next[r] is the first slot of row r not yet
         * known to hold one of its entries; each swap settles one entry. */
        int64_t *next = tm_mallocarray((size_t)(rows > 0 ? rows : 1), sizeof(*next));
        if (!next)
            return 0;
        memcpy(next, b->indptr, (size_t)rows * sizeof(*next));
        for (int64_t r = 0; r < rows; r++) {
            while (next[r] < b->indptr[r + 1]) {
                int64_t i = next[r];
                int32_t rr = b->rowof[i];
                if (rr == r) {
                    next[r]++;
                    continue;
                }
                int64_t j = next[rr]++;
                swap_entries(b->indices, b->data, i, j);
                b->rowof[i] = b->rowof[j];
                b->rowof[j] = rr;
            }
        }
        tm_free(next);
        tm_free(b->rowof);
        b->rowof = NULL;
    }
    int64_t q = 0, start = 0;
    for (int64_t r = 0; r < rows; r++) {
        int64_t end = b->indptr[r + 1], first = q;
        int sorted = 1;
        for (int64_t p = start + 1; p < end && sorted; p++)
            sorted = b->indices[p - 1] < b->indices[p];
        if (!sorted)
            sort_row(b->indices + start, b->data + start, end - start);
        for (int64_t p = start; p < end; p++) {
            if (q > first && b->indices[q - 1] == b->indices[p]) {
                b->data[q - 1] += b->data[p]; /* duplicates are summed */
                if (!isfinite(b->data[q - 1])) {
                    bad[0] = r;
                    bad[1] = b->indices[p];
                    return -1;
                }
                continue;
            }
            b->indices[q] = b->indices[p];
            b->data[q] = b->data[p];
            q++;
        }
        b->indptr[r + 1] = q;
        start = end;
    }
    /* Give back what duplicates or a symmetric diagonal left unused (a failed
     * shrink is harmless); an empty matrix still gets arrays, as from
     * tm_csr_init. */
    if ((q < b->cap || !b->indices) && !build_reserve(b, q) && (!b->indices || !b->data))
        return 0;
    out->n_rows = rows;
    out->n_cols = cols;
    out->indptr = b->indptr;
    out->indices = b->indices;
    out->data = b->data;
    memset(b, 0, sizeof(*b));
    return 1;
}

/* The parser both entry points share; size: the input's length, or -1. */
static tm_status read_mm(struct reader *r, int64_t size, struct tm_csr *out)
{
    struct tm_api_error *e = r->e;
    struct build b = {0};
    const char *s;
    size_t n;
    char tok[5][64];
    tm_status st;
    int got;
    memset(out, 0, sizeof(*out));
    tm_api_error_clear(e);

    if ((got = next_line(r, &s, &n)) <= 0) {
        if (got < 0)
            return r->st;
        r->line = 1;
        return rfail(r, TM_EPARSE, "empty input, expected a %%MatrixMarket header");
    }
    if (split(s, n, tok, 5) != 5 || strcasecmp(tok[0], "%%MatrixMarket") != 0 ||
        strcasecmp(tok[1], "matrix") != 0)
        return rfail(r, TM_EPARSE,
                     "expected \"%%MatrixMarket matrix coordinate <field> <symmetry>\"");
    if (strcasecmp(tok[2], "coordinate") != 0)
        return rfail(r, TM_EPARSE, "only the coordinate format is supported");
    int pattern = 0, symmetric = 0;
    if (!strcasecmp(tok[3], "pattern"))
        pattern = 1;
    else if (strcasecmp(tok[3], "real") != 0 && strcasecmp(tok[3], "integer") != 0)
        return rfail(r, TM_EPARSE, "field must be real, integer or pattern");
    if (!strcasecmp(tok[4], "symmetric"))
        symmetric = 1;
    else if (strcasecmp(tok[4], "general") != 0)
        return rfail(r, TM_EPARSE, "symmetry must be general or symmetric");

    do {
        if ((got = next_line(r, &s, &n)) <= 0)
            return got < 0 ? r->st
                           : rfail(r, TM_EPARSE, "unexpected end of input, expected the size line");
    } while ((n && s[0] == '%') || blank(s, n));
    int64_t rows, cols, nnz;
    if (split(s, n, tok, 3) != 3 || !parse_i64(tok[0], &rows) || !parse_i64(tok[1], &cols) ||
        !parse_i64(tok[2], &nnz))
        return rfail(r, TM_EPARSE, "expected \"rows columns entries\"");
    /* Before any of them sizes an allocation: a negative row count became
     * a calloc of SIZE_MAX (out of memory) where the input's size was not
     * known up front (tests/fuzz/regressions/fuzz_mmio/negative-rows). */
    if (rows < 0 || cols < 0 || nnz < 0)
        return rfail(r, TM_EPARSE, "rows, columns and entries must be >= 0");
    if (cols > INT32_MAX)
        return rfail(r, TM_ETOOBIG, "more than 2^31 - 1 columns");
    /* Row pointers are allocated up front: a sane bound keeps a tiny input
     * from asking for gigabytes. */
    if (rows > 10000000) /* a corpus's max_documents default (api/corpus.h) */
        return rfail(r, TM_ETOOBIG, "more than 10,000,000 rows");
    if (symmetric && rows != cols)
        return rfail(r, TM_EPARSE, "a symmetric matrix must be square");
    /* An entry takes at least 4 bytes ("1 1\n"): a count the input cannot
     * hold is refused before it sizes an allocation. Of an input of unknown
     * size the arrays grow with what arrives instead. */
    if (size >= 0 && (uint64_t)nnz > (uint64_t)size / 4 + 1)
        return rfail(r, TM_EPARSE, "more entries declared than the input holds");
    b.rows = rows;
    b.limit = !symmetric ? nnz : nnz > INT64_MAX / 2 ? INT64_MAX : nnz * 2;
    b.indptr = tm_calloc((size_t)rows + 1, sizeof(*b.indptr));
    if (!b.indptr || (size >= 0 && !build_reserve(&b, b.limit)))
        goto nomem;
    for (int64_t i = 0; i < nnz; i++) {
        if ((got = next_line(r, &s, &n)) <= 0) {
            st = got < 0 ? r->st : rfail(r, TM_EPARSE, "fewer entries than the size line declares");
            goto fail;
        }
        if ((n && s[0] == '%') || blank(s, n)) {
            i--;
            continue;
        }
        int want = pattern ? 2 : 3;
        int64_t ri, ci;
        double v = 1.0;
        if (split(s, n, tok, want) != want || !parse_i64(tok[0], &ri) || !parse_i64(tok[1], &ci)) {
            st = rfail(r, TM_EPARSE,
                       pattern ? "expected \"row column\"" : "expected \"row column value\"");
            goto fail;
        }
        if (!pattern) {
            char *end;
            v = strtod(tok[2], &end);
            if (*end) {
                st = rfail(r, TM_EPARSE, "invalid value");
                goto fail;
            }
            if (!isfinite(v)) {
                st = rfail(r, TM_ERANGE, "value is not finite");
                goto fail;
            }
        }
        if (ri < 1 || ri > rows || ci < 1 || ci > cols) {
            st = rfail(r, TM_ERANGE, "index outside the declared size");
            goto fail;
        }
        if (!build_add(&b, ri - 1, (int32_t)(ci - 1), v))
            goto nomem;
        if (symmetric && ri != ci && !build_add(&b, ci - 1, (int32_t)(ri - 1), v))
            goto nomem;
    }
    while ((got = next_line(r, &s, &n)) > 0) {
        if (!blank(s, n) && s[0] != '%') {
            st = rfail(r, TM_EPARSE, "more entries than the size line declares");
            goto fail;
        }
    }
    if (got < 0) {
        st = r->st;
        goto fail;
    }
    int64_t bad[2];
    int done = build_finish(&b, cols, out, bad);
    if (done < 0) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "the entries at row %" PRId64 ", column %" PRId64 " sum to a value that is not "
                 "finite",
                 bad[0] + 1, bad[1] + 1);
        st = rfail(r, TM_ERANGE, msg);
        goto fail;
    }
    if (!done)
        goto nomem;
    return TM_OK;
nomem:
    st = tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
fail:
    build_release(&b);
    return st;
}

tm_status tm_mmio_read(const char *bytes, size_t len, struct tm_csr *out, struct tm_api_error *e)
{
    struct reader r = {0};
    r.p = bytes;
    r.len = len;
    r.e = e;
    return read_mm(&r, (int64_t)len, out);
}

tm_status tm_mmio_read_file(FILE *f, int64_t size, size_t chunk, struct tm_csr *out,
                            struct tm_api_error *e)
{
    struct reader r = {0};
    r.f = f;
    r.chunk = chunk ? chunk : MMIO_CHUNK;
    r.e = e;
    r.p = "";
    tm_status st = read_mm(&r, size, out);
    tm_free(r.buf);
    return st;
}
