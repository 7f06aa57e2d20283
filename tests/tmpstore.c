/* tmpstore.c - see tmpstore.h. */
#include "tmpstore.h"

#include <errno.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "fixture.h"
#include "server/log.h"

const char *tm_tmpstore_pg_skip(void)
{
    const char *why = getenv("TOPICD_TEST_PG_SKIP");
    if (why && *why)
        return why;
    const char *pg = getenv("TOPICD_TEST_PG");
    if (!pg || !*pg)
        return "no PostgreSQL server: TOPICD_TEST_PG is unset (make test runs the suite under"
               " scripts/with-pg.sh)";
    return NULL;
}

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Runs sql with a connection to conninfo of its own: 0 or -1. */
static int pg_exec(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    int ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PQsetNoticeProcessor(c, quiet, NULL); /* "drop cascades to ..." */
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!ok)
            fprintf(stderr, "tmpstore: %s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
    } else {
        fprintf(stderr, "tmpstore: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return ok ? 0 : -1;
}

int tm_test_pg_schema_new(char schema[40], char *conninfo, size_t conninfo_size)
{
    const char *pg = getenv("TOPICD_TEST_PG");
    if (!pg)
        return -1;
    unsigned char r[8];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return -1;
    int n = snprintf(schema, 40, "t_");
    for (size_t i = 0; i < sizeof(r); i++)
        n += snprintf(schema + n, (size_t)(40 - n), "%02x", r[i]);
    snprintf(conninfo, conninfo_size, "%s options=-csearch_path=%s", pg, schema);
    char sql[80];
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
    return pg_exec(pg, sql);
}

void tm_test_pg_schema_drop(const char *schema)
{
    const char *pg = getenv("TOPICD_TEST_PG");
    char sql[80];
    snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    if (pg && schema[0])
        pg_exec(pg, sql);
}

static tm_status open_store(struct tm_tmpstore *s, struct tm_store *out, char *err)
{
    return s->driver == TM_STORE_PG ? tm_store_open_pg(out, s->conninfo, NULL, err)
                                    : tm_store_open_sqlite(out, s->dir, err);
}

int tm_tmpstore_open_driver(struct tm_tmpstore *s, const char *name, enum tm_store_driver driver,
                            int with_corpus)
{
    memset(s, 0, sizeof(*s));
    s->driver = driver;
    tm_log_set_level(TM_LOG_OFF);
    char err[TM_ERR_SIZE];
    if (driver == TM_STORE_PG) {
        if (tm_tmpstore_pg_skip() ||
            tm_test_pg_schema_new(s->schema, s->conninfo, sizeof(s->conninfo)))
            return -1;
    } else {
        const char *base = getenv("TMPDIR");
        snprintf(s->dir, sizeof(s->dir), "%s/topicd-%s-XXXXXX", base ? base : "/tmp", name);
        if (!mkdtemp(s->dir)) {
            s->dir[0] = 0;
            return -1;
        }
    }
    if (open_store(s, &s->store, err)) {
        fprintf(stderr, "tmpstore: %s\n", err);
        return -1;
    }
    return with_corpus ? tm_tmpstore_add_corpus(s, "c_1") : 0;
}

int tm_tmpstore_add_corpus(struct tm_tmpstore *s, const char *id)
{
    char err[TM_ERR_SIZE];
    struct tm_corpus_record c;
    memset(&c, 0, sizeof(c));
    snprintf(c.id, sizeof(c.id), "%s", id);
    if (s->store.m->corpus_create(s->store.ctx, &c, err) ||
        s->store.m->corpus_commit(s->store.ctx, id, err))
        return -1;
    return 0;
}

int tm_tmpstore_open(struct tm_tmpstore *s, const char *name)
{
    return tm_tmpstore_open_driver(s, name, TM_STORE_SQLITE, 1);
}

tm_status tm_tmpstore_open_again(struct tm_tmpstore *s, struct tm_store *other, char *err)
{
    return open_store(s, other, err);
}

int tm_tmpstore_reopen(struct tm_tmpstore *s, char *err)
{
    tm_store_close(&s->store);
    return open_store(s, &s->store, err) ? -1 : 0;
}

int tm_tmpstore_open_release(struct tm_tmpstore *s, int version, char *err)
{
    int pg = s->driver == TM_STORE_PG;
    char name[64], path[300];
    tm_store_close(&s->store);
    if (pg) {
        char sql[160];
        snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE; CREATE SCHEMA %s", s->schema,
                 s->schema);
        if (tm_tmpstore_sql_exec(s, sql))
            return tm_errf(err, TM_EIO, "cannot empty schema %s", s->schema), -1;
    } else {
        static const char *const files[] = {"topicd.db", "topicd.db-wal", "topicd.db-shm"};
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
            snprintf(path, sizeof(path), "%s/%s", s->dir, files[i]);
            if (unlink(path) && errno != ENOENT)
                return tm_errf(err, TM_EIO, "cannot remove %s", path), -1;
        }
    }
    snprintf(name, sizeof(name), "store/v%d_%s.sql", version, pg ? "pg" : "sqlite");
    char *fixture = tm_test_read_fixture(name, NULL);
    if (!fixture)
        return tm_errf(err, TM_EIO, "cannot read fixture %s", name), -1;
    int made = tm_tmpstore_sql_exec(s, fixture);
    free(fixture);
    if (made)
        return tm_errf(err, TM_EIO, "fixture %s does not load", name), -1;
    long long was = tm_tmpstore_sql_int(s, pg ? "SELECT max(version) FROM topicd_schema"
                                              : "PRAGMA user_version");
    if (was != version)
        return tm_errf(err, TM_EINVAL, "fixture %s says version %lld", name, was), -1;
    return tm_tmpstore_reopen(s, err);
}

/* A test's own connection to a live SQLite store waits this long for the
 * store's writers (workers, the lease thread) instead of failing BUSY. */
#define BUSY_MS 5000

long long tm_tmpstore_sql_int(struct tm_tmpstore *s, const char *sql)
{
    long long v = -1;
    if (s->driver == TM_STORE_PG) {
        PGconn *c = PQconnectdb(s->conninfo);
        PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
        return v;
    }
    char path[300];
    snprintf(path, sizeof(path), "%s/topicd.db", s->dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_busy_timeout(db, BUSY_MS) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

int tm_tmpstore_sql_exec(struct tm_tmpstore *s, const char *sql)
{
    if (s->driver == TM_STORE_PG)
        return pg_exec(s->conninfo, sql);
    char path[300];
    snprintf(path, sizeof(path), "%s/topicd.db", s->dir);
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db) == SQLITE_OK &&
                     sqlite3_busy_timeout(db, BUSY_MS) == SQLITE_OK &&
                     sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK
                 ? 0
                 : -1;
    sqlite3_close(db);
    return rc;
}

void tm_tmpstore_close(struct tm_tmpstore *s)
{
    tm_store_close(&s->store);
    if (s->driver == TM_STORE_PG) {
        tm_test_pg_schema_drop(s->schema);
    } else if (s->dir[0]) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
        if (system(cmd))
            fprintf(stderr, "could not remove %s\n", s->dir);
    }
    tm_log_set_level(TM_LOG_INFO);
}

void tm__store_test_run(struct tm_test_ctx *t, enum tm_store_driver driver,
                        void (*body)(struct tm_test_ctx *, struct tm_tmpstore *))
{
    if (driver == TM_STORE_PG && tm_tmpstore_pg_skip()) {
        tm_test_skip(t, tm_tmpstore_pg_skip());
        return;
    }
    struct tm_tmpstore ts;
    if (tm_tmpstore_open_driver(&ts, "store", driver, 0)) {
        tm_test_fail(t, __FILE__, __LINE__, "cannot open a %s store", tm_store_driver_name(driver));
        tm_tmpstore_close(&ts);
        return;
    }
    body(t, &ts);
    tm_tmpstore_close(&ts);
}
