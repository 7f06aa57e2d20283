/*
 * tmpstore.h - a SQLite store in a fresh temporary directory, with one
 * committed corpus "c_1", for the tests of the job queue and its retention;
 * removed with the directory when done.
 */
#ifndef TM_TESTS_TMPSTORE_H
#define TM_TESTS_TMPSTORE_H

#include <stddef.h>

#include "server/store.h"

struct tm_tmpstore {
    char dir[256];
    struct tm_store store;
};

/* Opens s under $TMPDIR (or /tmp) in a directory named after name (a word:
 * "jobs", "retention"); logging is silenced until close. 0, or -1 when the
 * directory or the store cannot be made. */
int tm_tmpstore_open(struct tm_tmpstore *s, const char *name);

/* Closes the store, removes the directory and turns logging back on. */
void tm_tmpstore_close(struct tm_tmpstore *s);

#endif
