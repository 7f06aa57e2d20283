/*
 * csr.h - the sparse document-term matrix, compressed sparse rows.
 *
 * Rows are documents, columns are terms. Within a row, column indices are
 * strictly increasing (scikit-learn's sort_indices() order). Values are
 * float64, as scikit-learn's TfidfVectorizer produces.
 * The fields are public: the struct crosses into gpu/ and api/ as a view.
 * Thread-safety: one owner at a time; read-only use may be shared.
 */
#ifndef TM_CORE_CSR_H
#define TM_CORE_CSR_H

#include <stdint.h>

#include "core/status.h"

struct tm_csr {
    int64_t n_rows;
    int64_t n_cols;
    int64_t *indptr;  /* n_rows + 1 entries; indptr[0] == 0, indptr[n_rows] == nnz */
    int32_t *indices; /* nnz column indices */
    double *data;     /* nnz values */
};

static inline int64_t tm_csr_nnz(const struct tm_csr *m)
{
    return m->indptr ? m->indptr[m->n_rows] : 0;
}

/* Allocates the arrays of an n_rows x n_cols matrix with room for nnz values;
 * indptr is zeroed. Release with tm_csr_release. */
tm_status tm_csr_init(struct tm_csr *m, int64_t n_rows, int64_t n_cols, int64_t nnz, char *err);
void tm_csr_release(struct tm_csr *m);

/* out = m transposed (so rows of out are terms), indices sorted. out is
 * initialised here; release with tm_csr_release. */
tm_status tm_csr_transpose(const struct tm_csr *m, struct tm_csr *out, char *err);

/* Sum of squared values: ||m||_F^2. */
double tm_csr_frobenius_sq(const struct tm_csr *m);

/* Checks the structural invariants above; TM_EINVAL with detail if broken. */
tm_status tm_csr_validate(const struct tm_csr *m, char *err);

#endif
