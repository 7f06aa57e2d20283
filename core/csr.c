/* csr.c - allocation, transpose and norms of CSR matrices. */
#include "core/csr.h"

#include <string.h>

#include "core/alloc.h"

tm_status tm_csr_init(struct tm_csr *m, int64_t n_rows, int64_t n_cols, int64_t nnz, char *err)
{
    memset(m, 0, sizeof(*m));
    if (n_rows < 0 || n_cols < 0 || nnz < 0 || n_cols > INT32_MAX)
        return tm_errf(err, TM_ERANGE, "csr: bad shape %lld x %lld with %lld non-zeros",
                       (long long)n_rows, (long long)n_cols, (long long)nnz);
    m->n_rows = n_rows;
    m->n_cols = n_cols;
    m->indptr = tm_calloc((size_t)n_rows + 1, sizeof(*m->indptr));
    m->indices = tm_mallocarray((size_t)nnz, sizeof(*m->indices));
    m->data = tm_mallocarray((size_t)nnz, sizeof(*m->data));
    if (!m->indptr || !m->indices || !m->data) {
        tm_csr_release(m);
        return tm_errf(err, TM_ENOMEM, "csr: cannot allocate %lld non-zeros", (long long)nnz);
    }
    return TM_OK;
}

void tm_csr_release(struct tm_csr *m)
{
    tm_free(m->indptr);
    tm_free(m->indices);
    tm_free(m->data);
    memset(m, 0, sizeof(*m));
}

tm_status tm_csr_transpose(const struct tm_csr *m, struct tm_csr *out, char *err)
{
    int64_t nnz = tm_csr_nnz(m);
    tm_status st = tm_csr_init(out, m->n_cols, m->n_rows, nnz, err);
    if (st != TM_OK)
        return st;
    if (m->n_rows > INT32_MAX) {
        tm_csr_release(out);
        return tm_errf(err, TM_ERANGE, "csr: %lld rows do not fit column indices",
                       (long long)m->n_rows);
    }
    for (int64_t k = 0; k < nnz; k++)
        out->indptr[m->indices[k] + 1]++;
    for (int64_t c = 0; c < m->n_cols; c++)
        out->indptr[c + 1] += out->indptr[c];
    /* Walking rows in order fills each output row with increasing indices. */
    int64_t *next = tm_mallocarray((size_t)m->n_cols + 1, sizeof(*next));
    if (!next) {
        tm_csr_release(out);
        return tm_errf(err, TM_ENOMEM, "csr: cannot allocate transpose cursor");
    }
    memcpy(next, out->indptr, ((size_t)m->n_cols + 1) * sizeof(*next));
    for (int64_t r = 0; r < m->n_rows; r++) {
        for (int64_t k = m->indptr[r]; k < m->indptr[r + 1]; k++) {
            int64_t dst = next[m->indices[k]]++;
            out->indices[dst] = (int32_t)r;
            out->data[dst] = m->data[k];
        }
    }
    tm_free(next);
    return TM_OK;
}

double tm_csr_frobenius_sq(const struct tm_csr *m)
{
    double sum = 0.0;
    int64_t nnz = tm_csr_nnz(m);
    for (int64_t k = 0; k < nnz; k++)
        sum += m->data[k] * m->data[k];
    return sum;
}

tm_status tm_csr_validate(const struct tm_csr *m, char *err)
{
    if (!m->indptr || m->indptr[0] != 0)
        return tm_errf(err, TM_EINVAL, "csr: indptr must start at 0");
    for (int64_t r = 0; r < m->n_rows; r++) {
        if (m->indptr[r + 1] < m->indptr[r])
            return tm_errf(err, TM_EINVAL, "csr: indptr decreases at row %lld", (long long)r);
        for (int64_t k = m->indptr[r]; k < m->indptr[r + 1]; k++) {
            if (m->indices[k] < 0 || m->indices[k] >= m->n_cols)
                return tm_errf(err, TM_EINVAL, "csr: column %d out of range in row %lld",
                               m->indices[k], (long long)r);
            if (k > m->indptr[r] && m->indices[k] <= m->indices[k - 1])
                return tm_errf(err, TM_EINVAL, "csr: columns not increasing in row %lld",
                               (long long)r);
        }
    }
    return TM_OK;
}
