/*
 * fixture.h - reading the data-driven fixtures under tests/fixtures: a whole
 * file into memory, and the hex words the generated .txt fixtures use for
 * arbitrary bytes (tests/fixtures/text/gen.py writes them), and a small
 * dense matrix as CSR (the NMF fixtures' X).
 * Thread-safety: none needed; each call owns what it returns.
 */
#ifndef TM_TESTS_FIXTURE_H
#define TM_TESTS_FIXTURE_H

#include <stddef.h>
#include <stdio.h>

#include "core/csr.h"

/* Reads the fixture `name` (a path under tests/fixtures, see tm_test_fixture)
 * whole. Returns a NUL-terminated buffer, owned by the caller and freed with
 * free(), or NULL when the file cannot be opened or read. *len, when len is
 * not NULL and the file opened, gets the file's size. */
char *tm_test_read_fixture(const char *name, size_t *len);

/* Decodes the hex word at *p ("-" is the empty word): leading characters of
 * `seps` are skipped, and the word ends at the next one of them, at '\n' or at
 * the end of the string. Returns the bytes NUL-terminated, owned by the caller
 * and freed with free(); *len gets their number, *p moves past the word. */
char *tm_test_unhex(const char **p, const char *seps, size_t *len);

/* Reads " X m n" and then m * n numbers (row-major) from f into x as CSR,
 * zeros dropped (x released with tm_csr_release). 1 on success, 0 when the
 * header or a number is missing. */
int tm_test_read_dense_csr(FILE *f, struct tm_csr *x);

#endif
