/*
 * bench_pg_insert.c - how server/store_pg.c should write an upload's batch
 * of documents: COPY ... FROM STDIN (FORMAT binary), or multi-row INSERTs
 * with binary parameters. Each line of --corpus (a JSON Lines file, its raw
 * bytes standing in for a document's text) is a row of a table shaped as
 * store_pg.c's documents, in batches of 4 MiB or 4096 rows (server/upload.c's),
 * one transaction each, until --mb MB have gone in; it prints MB/s of text
 * for each method, in turns, --runs rounds.
 *
 * usage: bench_pg_insert CONNINFO [--corpus FILE.jsonl] [--mb M] [--runs N]
 * The table is a temporary one, gone with the connection.
 */
#include <endian.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH_BYTES ((size_t)4 << 20)
#define BATCH_DOCS 4096
#define INSERT_ROWS 256 /* rows per INSERT statement: 4 parameters each */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void check(PGconn *c, PGresult *r, ExecStatusType want, const char *what)
{
    if (PQresultStatus(r) != want) {
        fprintf(stderr, "bench_pg_insert: %s: %s", what, PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
}

struct doc {
    const char *text;
    size_t len;
};

static void put(PGconn *c, char *buf, size_t *n, const void *p, size_t len)
{
    if (*n + len > BATCH_BYTES) {
        if (PQputCopyData(c, buf, (int)*n) != 1)
            check(c, NULL, PGRES_COPY_IN, "copy");
        *n = 0;
    }
    memcpy(buf + *n, p, len);
    *n += len;
}

static void copy_batch(PGconn *c, const struct doc *d, int n, int64_t pos, char *buf)
{
    check(c, PQexec(c, "BEGIN"), PGRES_COMMAND_OK, "begin");
    check(c, PQexec(c, "COPY docs(corpus_seq, pos, doc_id, text) FROM STDIN (FORMAT binary)"),
          PGRES_COPY_IN, "copy");
    size_t len = 0;
    static const char sig[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0";
    put(c, buf, &len, sig, sizeof(sig));
    for (int i = 0; i < n; i++) {
        uint16_t nf = htobe16(4);
        uint32_t l8 = htobe32(8), null = htobe32(UINT32_MAX), lt = htobe32((uint32_t)d[i].len);
        uint64_t seq = htobe64(1), p = htobe64((uint64_t)(pos + i));
        put(c, buf, &len, &nf, 2);
        put(c, buf, &len, &l8, 4);
        put(c, buf, &len, &seq, 8);
        put(c, buf, &len, &l8, 4);
        put(c, buf, &len, &p, 8);
        put(c, buf, &len, &null, 4);
        put(c, buf, &len, &lt, 4);
        put(c, buf, &len, d[i].text, d[i].len);
    }
    uint16_t end = htobe16(UINT16_MAX);
    put(c, buf, &len, &end, 2);
    if (PQputCopyData(c, buf, (int)len) != 1 || PQputCopyEnd(c, NULL) != 1)
        check(c, NULL, PGRES_COMMAND_OK, "copy end");
    check(c, PQgetResult(c), PGRES_COMMAND_OK, "copy");
    check(c, PQexec(c, "COMMIT"), PGRES_COMMAND_OK, "commit");
}

static void insert_batch(PGconn *c, const struct doc *d, int n, int64_t pos)
{
    static char sql[INSERT_ROWS * 40 + 100];
    static const char *values[INSERT_ROWS * 4];
    static int lengths[INSERT_ROWS * 4], formats[INSERT_ROWS * 4];
    static Oid types[INSERT_ROWS * 4];
    static uint64_t nums[INSERT_ROWS * 2];
    check(c, PQexec(c, "BEGIN"), PGRES_COMMAND_OK, "begin");
    for (int at = 0; at < n; at += INSERT_ROWS) {
        int rows = n - at < INSERT_ROWS ? n - at : INSERT_ROWS;
        int o =
            snprintf(sql, sizeof(sql), "INSERT INTO docs(corpus_seq, pos, doc_id, text) VALUES");
        for (int r = 0; r < rows; r++) {
            o += snprintf(sql + o, sizeof(sql) - (size_t)o, "%s($%d, $%d, $%d, $%d)", r ? "," : "",
                          4 * r + 1, 4 * r + 2, 4 * r + 3, 4 * r + 4);
            nums[2 * r] = htobe64(1);
            nums[2 * r + 1] = htobe64((uint64_t)(pos + at + r));
            values[4 * r] = (const char *)&nums[2 * r];
            values[4 * r + 1] = (const char *)&nums[2 * r + 1];
            values[4 * r + 2] = NULL;
            values[4 * r + 3] = d[at + r].text;
            lengths[4 * r] = lengths[4 * r + 1] = 8;
            lengths[4 * r + 2] = 0;
            lengths[4 * r + 3] = (int)d[at + r].len;
            types[4 * r] = types[4 * r + 1] = 20; /* int8 */
            types[4 * r + 2] = 25;                /* text */
            types[4 * r + 3] = 17;                /* bytea */
            formats[4 * r] = formats[4 * r + 1] = formats[4 * r + 2] = formats[4 * r + 3] = 1;
        }
        check(c, PQexecParams(c, sql, 4 * rows, types, values, lengths, formats, 1),
              PGRES_COMMAND_OK, "insert");
    }
    check(c, PQexec(c, "COMMIT"), PGRES_COMMAND_OK, "commit");
}

int main(int argc, char **argv)
{
    const char *corpus = "../shared/corpora/20news/train.jsonl";
    long mb = 200;
    int runs = 3;
    if (argc < 2) {
        fprintf(stderr, "usage: bench_pg_insert CONNINFO [--corpus FILE.jsonl] [--mb M] "
                        "[--runs N]\n");
        return 2;
    }
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--corpus"))
            corpus = argv[i + 1];
        else if (!strcmp(argv[i], "--mb"))
            mb = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs"))
            runs = atoi(argv[i + 1]);
    }
    FILE *f = fopen(corpus, "rb");
    if (!f) {
        perror(corpus);
        return 1;
    }
    struct doc *docs = NULL;
    size_t nd = 0, cap = 0, lcap = 0;
    char *line = NULL;
    ssize_t n;
    while ((n = getline(&line, &lcap, f)) > 0) {
        if (nd == cap) {
            cap = cap ? 2 * cap : 4096;
            struct doc *more = realloc(docs, cap * sizeof(*docs));
            if (!more)
                return 1;
            docs = more;
        }
        docs[nd].text = strndup(line, (size_t)n);
        docs[nd++].len = (size_t)n;
    }
    fclose(f);
    free(line);
    PGconn *c = PQconnectdb(argv[1]);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "bench_pg_insert: %s", PQerrorMessage(c));
        return 1;
    }
    check(c,
          PQexec(c, "CREATE TEMPORARY TABLE docs(corpus_seq bigint NOT NULL, pos bigint NOT NULL,"
                    " doc_id text, text bytea NOT NULL, PRIMARY KEY (corpus_seq, pos))"),
          PGRES_COMMAND_OK, "create");
    char *buf = malloc(BATCH_BYTES);
    struct doc *batch = malloc(BATCH_DOCS * sizeof(*batch));
    printf("%-8s %5s %8s %8s\n", "method", "run", "seconds", "MB/s");
    for (int run = 0; run < runs; run++) {
        for (int m = 0; m < 2; m++) {
            check(c, PQexec(c, "TRUNCATE docs"), PGRES_COMMAND_OK, "truncate");
            double t0 = now();
            long long bytes = 0, want = mb * 1000000LL;
            int64_t pos = 0;
            size_t next = 0;
            while (bytes < want) {
                int k = 0;
                size_t bb = 0;
                while (k < BATCH_DOCS && bb < BATCH_BYTES && bytes + (long long)bb < want) {
                    batch[k] = docs[next];
                    bb += docs[next].len;
                    next = (next + 1) % nd;
                    k++;
                }
                if (m == 0)
                    copy_batch(c, batch, k, pos, buf);
                else
                    insert_batch(c, batch, k, pos);
                pos += k;
                bytes += (long long)bb;
            }
            double s = now() - t0;
            printf("%-8s %5d %8.2f %8.1f\n", m ? "insert" : "copy", run + 1, s, bytes / 1e6 / s);
            fflush(stdout);
        }
    }
    PQfinish(c);
    return 0;
}
