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
    return tm__errf(err, TM_EIO, "writing the Matrix Market file: %s", strerror(errno));
}

/* ---------------------------------------------------------------------- */

struct reader {
    const char *p;
    size_t len, pos;
    int64_t line;
    struct tm_api_error *e;
};

struct entry {
    int64_t row;
    int32_t col;
    double v;
};

static tm_status rfail(struct reader *r, tm_status st, const char *msg)
{
    char field[48];
    snprintf(field, sizeof(field), "line %" PRId64, r->line);
    tm_api_errorf(r->e, st, field, (int64_t)r->pos, "%s", msg);
    if (r->e) {
        r->e->line = r->line;
        r->e->column = 0;
    }
    return st;
}

/* The current line as [*s, *s + *n), advancing past its "\n"; 0 at the end. */
static int next_line(struct reader *r, const char **s, size_t *n)
{
    if (r->pos >= r->len)
        return 0;
    const char *start = r->p + r->pos;
    const char *nl = memchr(start, '\n', r->len - r->pos);
    size_t l = nl ? (size_t)(nl - start) : r->len - r->pos;
    r->pos += l + (nl ? 1 : 0);
    r->line++;
    if (l && start[l - 1] == '\r')
        l--;
    *s = start;
    *n = l;
    return 1;
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

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->row != y->row)
        return x->row < y->row ? -1 : 1;
    return (x->col > y->col) - (x->col < y->col);
}

tm_status tm_mmio_read(const char *bytes, size_t len, struct tm_csr *out, struct tm_api_error *e)
{
    struct reader r = {bytes, len, 0, 0, e};
    struct entry *ent = NULL;
    const char *s;
    size_t n;
    char tok[5][64];
    tm_status st;
    char err[TM_ERR_SIZE];
    memset(out, 0, sizeof(*out));
    tm_api_error_clear(e);

    if (!next_line(&r, &s, &n)) {
        r.line = 1;
        return rfail(&r, TM_EPARSE, "empty input, expected a %%MatrixMarket header");
    }
    if (split(s, n, tok, 5) != 5 || strcasecmp(tok[0], "%%MatrixMarket") != 0 ||
        strcasecmp(tok[1], "matrix") != 0)
        return rfail(&r, TM_EPARSE,
                     "expected \"%%MatrixMarket matrix coordinate <field> <symmetry>\"");
    if (strcasecmp(tok[2], "coordinate") != 0)
        return rfail(&r, TM_EPARSE, "only the coordinate format is supported");
    int pattern = 0, symmetric = 0;
    if (!strcasecmp(tok[3], "pattern"))
        pattern = 1;
    else if (strcasecmp(tok[3], "real") != 0 && strcasecmp(tok[3], "integer") != 0)
        return rfail(&r, TM_EPARSE, "field must be real, integer or pattern");
    if (!strcasecmp(tok[4], "symmetric"))
        symmetric = 1;
    else if (strcasecmp(tok[4], "general") != 0)
        return rfail(&r, TM_EPARSE, "symmetry must be general or symmetric");

    do {
        if (!next_line(&r, &s, &n))
            return rfail(&r, TM_EPARSE, "unexpected end of input, expected the size line");
    } while ((n && s[0] == '%') || blank(s, n));
    int64_t rows, cols, nnz;
    if (split(s, n, tok, 3) != 3 || !parse_i64(tok[0], &rows) || !parse_i64(tok[1], &cols) ||
        !parse_i64(tok[2], &nnz))
        return rfail(&r, TM_EPARSE, "expected \"rows columns entries\"");
    if (cols > INT32_MAX)
        return rfail(&r, TM_ETOOBIG, "more than 2^31 - 1 columns");
    /* Row pointers are allocated up front: a sane bound keeps a tiny input
     * from asking for gigabytes. */
    if (rows > 100000000)
        return rfail(&r, TM_ETOOBIG, "more than 100,000,000 rows");
    if (symmetric && rows != cols)
        return rfail(&r, TM_EPARSE, "a symmetric matrix must be square");
    /* An entry takes at least 4 bytes ("1 1\n"): a count the input cannot
     * hold is refused before it sizes an allocation. */
    if ((uint64_t)nnz > len / 4 + 1)
        return rfail(&r, TM_EPARSE, "more entries declared than the input holds");
    int64_t cap = symmetric ? nnz * 2 : nnz;
    ent = tm_mallocarray((size_t)(cap ? cap : 1), sizeof(*ent));
    if (!ent)
        return tm_api_errorf(e, TM_ENOMEM, NULL, -1, "out of memory");
    int64_t k = 0;
    for (int64_t i = 0; i < nnz; i++) {
        if (!next_line(&r, &s, &n)) {
            st = rfail(&r, TM_EPARSE, "fewer entries than the size line declares");
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
            st = rfail(&r, TM_EPARSE,
                       pattern ? "expected \"row column\"" : "expected \"row column value\"");
            goto fail;
        }
        if (!pattern) {
            char *end;
            v = strtod(tok[2], &end);
            if (*end) {
                st = rfail(&r, TM_EPARSE, "invalid value");
                goto fail;
            }
            if (!isfinite(v)) {
                st = rfail(&r, TM_ERANGE, "value is not finite");
                goto fail;
            }
        }
        if (ri < 1 || ri > rows || ci < 1 || ci > cols) {
            st = rfail(&r, TM_ERANGE, "index outside the declared size");
            goto fail;
        }
        ent[k++] = (struct entry){ri - 1, (int32_t)(ci - 1), v};
        if (symmetric && ri != ci)
            ent[k++] = (struct entry){ci - 1, (int32_t)(ri - 1), v};
    }
    while (next_line(&r, &s, &n)) {
        if (!blank(s, n) && s[0] != '%') {
            st = rfail(&r, TM_EPARSE, "more entries than the size line declares");
            goto fail;
        }
    }
    qsort(ent, (size_t)k, sizeof(*ent), cmp_entry);
    if ((st = tm_csr_init(out, rows, cols, k, err)) != TM_OK) {
        tm_api_errorf(e, st, NULL, -1, "%s", err);
        goto fail;
    }
    int64_t q = 0;
    for (int64_t i = 0; i < k; i++) {
        if (q > 0 && ent[i].row == ent[i - 1].row && ent[i].col == ent[i - 1].col) {
            out->data[q - 1] += ent[i].v; /* duplicates are summed */
            continue;
        }
        out->indices[q] = ent[i].col;
        out->data[q] = ent[i].v;
        out->indptr[ent[i].row + 1]++;
        q++;
    }
    for (int64_t i = 0; i < rows; i++)
        out->indptr[i + 1] += out->indptr[i];
    tm_free(ent);
    return TM_OK;
fail:
    tm_free(ent);
    tm_csr_release(out);
    return st;
}
