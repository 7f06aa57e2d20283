/* fixture.c - the fixture readers of fixture.h. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

char *tm_test_read_fixture(const char *name, size_t *len)
{
    FILE *f = fopen(tm_test_fixture(name), "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    if (len)
        *len = (size_t)n;
    return buf;
}

static int is_sep(const char *seps, char c)
{
    return c != '\0' && strchr(seps, c) != NULL;
}

char *tm_test_unhex(const char **p, const char *seps, size_t *len)
{
    const char *s = *p;
    while (is_sep(seps, *s))
        s++;
    size_t n = 0;
    while (s[n] != '\0' && s[n] != '\n' && !is_sep(seps, s[n]))
        n++;
    char *out = malloc(n / 2 + 1);
    *len = 0;
    if (!(n == 1 && s[0] == '-'))
        for (size_t i = 0; i + 1 < n; i += 2) {
            char h[3] = {s[i], s[i + 1], 0};
            out[(*len)++] = (char)strtol(h, NULL, 16);
        }
    out[*len] = '\0';
    *p = s + n;
    return out;
}

int tm_test_read_dense_csr(FILE *f, struct tm_csr *x)
{
    long long m, n;
    if (fscanf(f, " X %lld %lld", &m, &n) != 2)
        return 0;
    double *d = malloc((size_t)(m * n) * sizeof(double));
    int64_t nnz = 0;
    for (int64_t i = 0; i < m * n; i++) {
        if (fscanf(f, "%lf", &d[i]) != 1) {
            free(d);
            return 0;
        }
        nnz += d[i] != 0;
    }
    tm_csr_init(x, m, n, nnz, NULL);
    nnz = 0;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++)
            if (d[i * n + j] != 0) {
                x->indices[nnz] = (int32_t)j;
                x->data[nnz++] = d[i * n + j];
            }
        x->indptr[i + 1] = nnz;
    }
    free(d);
    return 1;
}
