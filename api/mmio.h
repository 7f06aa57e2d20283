/*
 * mmio.h - Matrix Market exchange of the document-term matrix, so anyone can
 * check topicd's matrix with SciPy (scipy.io.mmread) and so conformance
 * scripts can factorize exactly the matrix scikit-learn built
 * (`topicd fit --matrix-market-in`).
 *
 * Written: "%%MatrixMarket matrix coordinate real general", 1-based indices,
 * values with %.17g (they read back bit for bit).
 * Read: coordinate format, field real, integer or pattern (values 1),
 * symmetry general or symmetric (mirrored); entries in any order, duplicates
 * summed (as SciPy's tocsr()), explicit zeros kept.
 * Thread-safety: reentrant.
 */
#ifndef TM_API_MMIO_H
#define TM_API_MMIO_H

#include <stddef.h>
#include <stdio.h>

#include "api/jsonutil.h"
#include "core/csr.h"

/* m: borrowed; f: borrowed, open for writing. TM_EIO on a write error (err
 * says which, from errno). */
tm_status tm_mmio_write(FILE *f, const struct tm_csr *m, char *err);

/*
 * Parses len bytes (borrowed, need not be NUL-terminated). out is
 * initialised here (release with tm_csr_release, also after a failure).
 * Errors: TM_EPARSE with the line in e->line and field "line N"; TM_ERANGE for
 * an index outside the declared size or a non-finite value; TM_ETOOBIG for
 * more than 2^31 - 1 columns or 10^8 rows; TM_ENOMEM.
 */
tm_status tm_mmio_read(const char *bytes, size_t len, struct tm_csr *out, struct tm_api_error *e);

#endif
