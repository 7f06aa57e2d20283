/*
 * tmpstore.h - a store for a test, on either driver: SQLite in a fresh
 * temporary directory, or PostgreSQL in a fresh schema t_<random> of the
 * throwaway cluster scripts/with-pg.sh starts (TOPICD_TEST_PG), reached with
 * options=-csearch_path=t_<random>; removed (directory, or schema) when
 * done. Optionally with one committed corpus "c_1", for the tests of the
 * job queue and its retention.
 *
 * TM_STORE_TEST(name) { ... } is a store contract test: it runs once per
 * driver, as name_sqlite and name_pg (the Makefile's test list expands it),
 * with `ts` the store of the run; the PostgreSQL run skips, with the
 * reason, when there is no server.
 */
#ifndef TM_TESTS_TMPSTORE_H
#define TM_TESTS_TMPSTORE_H

#include <stddef.h>

#include "harness.h"
#include "server/store.h"

struct tm_tmpstore {
    enum tm_store_driver driver;
    char dir[256];       /* SQLite: the data directory */
    char schema[40];     /* PostgreSQL: the schema */
    char conninfo[1024]; /* PostgreSQL: the conninfo that reaches the schema */
    struct tm_store store;
};

/* A SQLite store under $TMPDIR (or /tmp) in a directory named after name (a
 * word: "jobs", "retention") with the corpus "c_1"; logging is silenced
 * until close. 0, or -1 when the directory or the store cannot be made. */
int tm_tmpstore_open(struct tm_tmpstore *s, const char *name);

/* The same on driver, with c_1 when with_corpus. */
int tm_tmpstore_open_driver(struct tm_tmpstore *s, const char *name, enum tm_store_driver driver,
                            int with_corpus);

/* Creates and commits an empty corpus named id: 0 or -1. */
int tm_tmpstore_add_corpus(struct tm_tmpstore *s, const char *id);

/* Why PostgreSQL tests skip (TOPICD_TEST_PG_SKIP's reason, or that
 * TOPICD_TEST_PG is unset), or NULL when there is a server. */
const char *tm_tmpstore_pg_skip(void);

/* Opens the same store again into *other, as another process would:
 * the store's own status (TM_EBUSY while s->store is open). */
tm_status tm_tmpstore_open_again(struct tm_tmpstore *s, struct tm_store *other, char *err);

/* Closes the store and opens it again: 0, or -1 (err says why). */
int tm_tmpstore_reopen(struct tm_tmpstore *s, char *err);

/* Replaces the store with what the release of schema `version` left
 * (tests/fixtures/store/v<version>_{sqlite,pg}.sql: its schema and rows as
 * that binary made them), checks that it says `version`, then opens it as
 * this binary, which migrates it: 0, or -1 (err says why). */
int tm_tmpstore_open_release(struct tm_tmpstore *s, int version, char *err);

/* One integer from a query on the store, read with a connection of the
 * test's own (what the store left, not what it says); -1 on an error.
 * The tables have the same names in both drivers. */
long long tm_tmpstore_sql_int(struct tm_tmpstore *s, const char *sql);

/* Runs statements on the store with a connection of the test's own: 0 or -1. */
int tm_tmpstore_sql_exec(struct tm_tmpstore *s, const char *sql);

/* Closes the store, removes the directory or schema and turns logging
 * back on. */
void tm_tmpstore_close(struct tm_tmpstore *s);

/* A fresh schema t_<random> in TOPICD_TEST_PG's database, and the conninfo
 * (conninfo_size bytes) that makes it the current schema: 0 or -1. */
int tm_test_pg_schema_new(char schema[40], char *conninfo, size_t conninfo_size);
/* Drops the schema and all in it. */
void tm_test_pg_schema_drop(const char *schema);

void tm__store_test_run(struct tm_test_ctx *t, enum tm_store_driver driver,
                        void (*body)(struct tm_test_ctx *, struct tm_tmpstore *));

#define TM_STORE_TEST(name)                                                                        \
    static void name##_body(struct tm_test_ctx *t, struct tm_tmpstore *ts);                        \
    TM_TEST(name##_sqlite)                                                                         \
    {                                                                                              \
        tm__store_test_run(t, TM_STORE_SQLITE, name##_body);                                       \
    }                                                                                              \
    TM_TEST(name##_pg)                                                                             \
    {                                                                                              \
        tm__store_test_run(t, TM_STORE_PG, name##_body);                                           \
    }                                                                                              \
    static void name##_body(struct tm_test_ctx *t, struct tm_tmpstore *ts)

#endif
