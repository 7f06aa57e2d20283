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
 * summed (as SciPy's tocsr()), explicit zeros kept. Files are read as a
 * stream (tm_mmio_read_file): peak memory is the matrix, not the file.
 * Thread-safety: reentrant.
 */
#ifndef TM_API_MMIO_H
#define TM_API_MMIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "api/error.h"
#include "core/csr.h"

/* m: borrowed; f: borrowed, open for writing. TM_EIO on a write error (err
 * says which, from errno). */
tm_status tm_mmio_write(FILE *f, const struct tm_csr *m, char *err);

/*
 * Parses len bytes (borrowed, need not be NUL-terminated). out is
 * initialised here (release with tm_csr_release, also after a failure).
 * Errors: TM_EPARSE with the line in e->line and field "line N"; TM_ERANGE for
 * an index outside the declared size or a non-finite value (or duplicates
 * that sum to one: then the line is the last); TM_ETOOBIG for
 * more than 2^31 - 1 columns or 10^7 rows (a corpus's max_documents default); TM_ENOMEM.
 */
tm_status tm_mmio_read(const char *bytes, size_t len, struct tm_csr *out, struct tm_api_error *e);

/*
 * The same, reading f (borrowed, open for reading; read up to its end or the
 * first error, not closed) chunk bytes at a time (0: 64 KiB) and parsing the
 * entries straight into out's arrays: no copy of the file and no list of
 * entries is held, only one window of at least a line (for topicd's and
 * SciPy's files, written in row order, nothing but the matrix; entries out of
 * row order cost 4 more bytes each until the end).
 * size: the input's length in bytes when known (a regular file's st_size):
 * the arrays are then allocated once, for the declared count, which is
 * checked against it as above; -1 when unknown (a pipe): they grow with the
 * entries that arrive, so a count the input cannot hold is found at its end
 * ("fewer entries than the size line declares").
 * Errors: as tm_mmio_read, plus TM_EIO (message strerror's) on a read error
 * and TM_ETOOBIG for a line longer than 1 MiB (comment lines may be longer).
 */
tm_status tm_mmio_read_file(FILE *f, int64_t size, size_t chunk, struct tm_csr *out,
                            struct tm_api_error *e);

#endif
