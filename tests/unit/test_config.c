/* test_config.c - `topicd serve` settings: defaults, TOPICD_* variables,
 * flags over variables, size suffixes, usage errors, --help and the
 * start-up line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "harness.h"
#include "logcapture.h"
#include "server/config.h"
#include "server/log.h"

TM_TEST(config_sources_and_errors)
{
    struct tm_config c;
    char err[TM_ERR_SIZE];
    FILE *devnull = fopen("/dev/null", "w");
    REQUIRE(devnull);

    tm_config_init(&c);
    char *a0[] = {"serve", NULL};
    CHECK_INT_EQ(tm_config_load(&c, 1, a0, devnull, err), 0);
    CHECK_INT_EQ(c.port, 8080);
    CHECK_STR_EQ(c.data_dir, "./data");
    CHECK_INT_EQ(c.workers, 0);
    CHECK_INT_EQ(c.max_body_bytes, (int64_t)1 << 30);

    setenv("TOPICD_PORT", "9000", 1);
    setenv("TOPICD_MAX_BODY_BYTES", "200m", 1);
    setenv("TOPICD_WORKERS", "3", 1);
    tm_config_init(&c);
    char *a1[] = {"serve", "--workers", "5", "--data-dir=/tmp/x", "--cache-bytes", "1k", NULL};
    CHECK_INT_EQ(tm_config_load(&c, 6, a1, devnull, err), 0);
    CHECK_INT_EQ(c.port, 9000);
    CHECK_INT_EQ(c.max_body_bytes, (int64_t)200 << 20);
    CHECK_INT_EQ(c.workers, 5); /* the flag wins */
    CHECK_STR_EQ(c.data_dir, "/tmp/x");
    CHECK_INT_EQ(c.cache_bytes, 1024);
    unsetenv("TOPICD_PORT");
    unsetenv("TOPICD_MAX_BODY_BYTES");
    unsetenv("TOPICD_WORKERS");

    static char *bad[][3] = {
        {"serve", "--port", "70000"}, {"serve", "--workers", "x"},      {"serve", "--nope", "1"},
        {"serve", "--gpu", "maybe"},  {"serve", "--log-level", "loud"}, {"serve", "stray", "1"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tm_config_init(&c);
        err[0] = 0;
        CHECK_INT_EQ(tm_config_load(&c, 3, bad[i], devnull, err), 2);
        CHECK(err[0] != 0);
    }
    tm_config_init(&c);
    char *a2[] = {"serve", "--port", NULL};
    CHECK_INT_EQ(tm_config_load(&c, 2, a2, devnull, err), 2);
    char *a3[] = {"serve", "--help", NULL};
    CHECK_INT_EQ(tm_config_load(&c, 2, a3, devnull, err), 1);
    setenv("TOPICD_SHUTDOWN_GRACE", "-1", 1);
    tm_config_init(&c);
    CHECK_INT_EQ(tm_config_load(&c, 1, a0, devnull, err), 2);
    CHECK(strstr(err, "TOPICD_SHUTDOWN_GRACE") != NULL);
    unsetenv("TOPICD_SHUTDOWN_GRACE");
    fclose(devnull);

    CHECK_INT_EQ(tm_log_level_parse("warn"), TM_LOG_WARN);
    CHECK_INT_EQ(tm_log_level_parse("verbose"), -1);
}

/* The start-up line names every setting by its field, in the table's
 * order, with its value: here the defaults but two. */
TM_TEST(config_start_up_line)
{
    struct tm_config c;
    struct tm_logcapture cap;
    char out[4096];
    tm_config_init(&c);
    c.workers = 3;
    snprintf(c.data_dir, sizeof(c.data_dir), "/var/lib/\"topicd\"");
    REQUIRE(tm_logcapture_start(&cap, TM_LOG_INFO) == 0);
    tm_config_log(&c);
    tm_logcapture_end(&cap, out, sizeof(out));
    const char *head = strstr(out, ",\"level\"");
    REQUIRE(head != NULL);
    CHECK_STR_EQ(
        head, ",\"level\":\"info\",\"msg\":\"configuration\",\"bind\":\"127.0.0.1\",\"port\":8080,"
              "\"data_dir\":\"/var/lib/\\\"topicd\\\"\",\"store\":\"/var/lib/\\\"topicd\\\"\","
              "\"store_driver\":\"sqlite\",\"workers\":3,\"blas_threads\":0,"
              "\"http_threads\":2,\"max_body_bytes\":1073741824,\"max_json_bytes\":16777216,"
              "\"max_doc_bytes\":8388608,\"max_inline_docs\":10000,\"max_queue\":1024,"
              "\"max_queue_per_client\":0,\"quota_stored\":10737418240,"
              "\"quota_running\":0,\"max_connections\":1024,\"per_ip_connections\":256,"
              "\"connection_timeout_s\":30,\"connection_memory\":65536,"
              "\"cache_bytes\":536870912,\"shutdown_grace_s\":30,\"max_attempts\":3,"
              "\"lease_s\":30,"
              "\"worker_nice\":10,\"recent_jobs\":4096,\"job_retention_s\":604800,"
              "\"gpu\":\"auto\",\"gpu_slots\":2,\"gpu_reserve_bytes\":536870912,"
              "\"gpu_wait_s\":600,\"log_level\":\"info\",\"auth\":\"auto\","
              "\"metrics_auth\":0,\"cors_origin\":\"\",\"secure_cookies\":0,"
              "\"session_ttl_s\":43200,\"secret_file\":\"\"}\n");
}

TM_TEST(config_job_retention)
{
    struct tm_config c;
    char err[TM_ERR_SIZE];
    FILE *devnull = fopen("/dev/null", "w");
    REQUIRE(devnull);
    tm_config_init(&c);
    char *a0[] = {"serve", NULL};
    CHECK_INT_EQ(tm_config_load(&c, 1, a0, devnull, err), 0);
    CHECK_INT_EQ(c.job_retention_s, 604800);
    setenv("TOPICD_JOB_RETENTION", "3600", 1);
    tm_config_init(&c);
    CHECK_INT_EQ(tm_config_load(&c, 1, a0, devnull, err), 0);
    CHECK_INT_EQ(c.job_retention_s, 3600);
    char *a1[] = {"serve", "--job-retention", "0", NULL};
    tm_config_init(&c);
    CHECK_INT_EQ(tm_config_load(&c, 3, a1, devnull, err), 0);
    CHECK_INT_EQ(c.job_retention_s, 0); /* the flag wins */
    unsetenv("TOPICD_JOB_RETENTION");
    char *a2[] = {"serve", "--job-retention", "-5", NULL};
    tm_config_init(&c);
    CHECK_INT_EQ(tm_config_load(&c, 3, a2, devnull, err), 2);
    CHECK(strstr(err, "--job-retention") != NULL);
    fclose(devnull);

    /* --help lists it with its variable and default. */
    char *buf = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&buf, &size);
    REQUIRE(mem);
    tm_config_usage(mem);
    fclose(mem);
    CHECK(buf && strstr(buf, "--job-retention") && strstr(buf, "TOPICD_JOB_RETENTION") &&
          strstr(buf, "(default 604800)"));
    free(buf);
}

/* --store: PostgreSQL URLs and conninfo strings, nothing else; a password
 * in it is refused on the command line (every user sees argv) and taken
 * from TOPICD_STORE; the start-up line and errors never show it. */
TM_TEST(config_store)
{
    static const char pw[] = "s3cret-pw";
    struct tm_config c;
    char err[TM_ERR_SIZE];
    FILE *devnull = fopen("/dev/null", "w");
    REQUIRE(devnull);
    static const char *const with_pw[] = {"postgresql://app:s3cret-pw@db.example:5433/topicd",
                                          "host=db.example dbname=topicd password=s3cret-pw",
                                          "postgres://app@db.example/topicd?password=s3cret-pw"};
    for (size_t i = 0; i < sizeof(with_pw) / sizeof(with_pw[0]); i++) {
        char *a[] = {"serve", "--store", (char *)with_pw[i], NULL};
        tm_config_init(&c);
        err[0] = 0;
        CHECK_INT_EQ(tm_config_load(&c, 3, a, devnull, err), 2);
        CHECK(strstr(err, "TOPICD_STORE_PASSWORD_FILE") && strstr(err, "ps"));
        CHECK(!strstr(err, pw));
    }
    char *ok[] = {"serve", "--store", "postgresql://app@db.example/topicd", NULL};
    tm_config_init(&c);
    CHECK_INT_EQ(tm_config_load(&c, 3, ok, devnull, err), 0);
    CHECK_STR_EQ(c.store, "postgresql://app@db.example/topicd");
    char *bad[] = {"serve", "--store", "./data", NULL};
    tm_config_init(&c);
    CHECK_INT_EQ(tm_config_load(&c, 3, bad, devnull, err), 2);
    CHECK(strstr(err, "postgresql://") != NULL);
    /* A malformed URL's message does not quote it: it may hold a password. */
    char *broken[] = {"serve", "--store", "postgresql://app:s3cret-pw@[db/x", NULL};
    tm_config_init(&c);
    CHECK_INT_EQ(tm_config_load(&c, 3, broken, devnull, err), 2);
    CHECK(!strstr(err, pw));

    /* The environment may carry it; the start-up line shows where, not it. */
    setenv("TOPICD_STORE", with_pw[0], 1);
    char *a0[] = {"serve", NULL};
    tm_config_init(&c);
    CHECK_INT_EQ(tm_config_load(&c, 1, a0, devnull, err), 0);
    unsetenv("TOPICD_STORE");
    struct tm_logcapture cap;
    char out[4096];
    REQUIRE(tm_logcapture_start(&cap, TM_LOG_INFO) == 0);
    tm_config_log(&c);
    tm_logcapture_end(&cap, out, sizeof(out));
    CHECK(!strstr(out, pw));
    CHECK(strstr(out, "\"store\":\"host=db.example port=5433 dbname=topicd user=app\","
                      "\"store_driver\":\"postgresql\"") != NULL);
    fclose(devnull);

    char *buf = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&buf, &size);
    REQUIRE(mem);
    tm_config_usage(mem);
    fclose(mem);
    CHECK(buf && strstr(buf, "--store") && strstr(buf, "TOPICD_STORE\n") &&
          strstr(buf, "TOPICD_STORE_PASSWORD_FILE") && strstr(buf, "PGPASSWORD"));
    free(buf);
}

/* The quotas: defaults, and --quota-queued's former name still accepted
 * (flag and variable), the new name winning when both are set. */
TM_TEST(config_quotas_and_old_names)
{
    struct tm_config c;
    char err[TM_ERR_SIZE];
    FILE *devnull = fopen("/dev/null", "w");
    REQUIRE(devnull);
    tm_config_init(&c);
    char *a0[] = {"serve", NULL};
    CHECK_INT_EQ(tm_config_load(&c, 1, a0, devnull, err), 0);
    CHECK_INT_EQ(c.quota_stored, (int64_t)10 << 30);
    CHECK_INT_EQ(c.quota_running, 0);
    CHECK_INT_EQ(c.max_queue_per_client, 0);

    char *a1[] = {"serve", "--max-queue-per-client", "7", "--quota-stored-bytes",
                  "2g",    "--quota-running=3",      NULL};
    CHECK_INT_EQ(tm_config_load(&c, 6, a1, devnull, err), 0);
    CHECK_INT_EQ(c.max_queue_per_client, 7);
    CHECK_INT_EQ(c.quota_stored, (int64_t)2 << 30);
    CHECK_INT_EQ(c.quota_running, 3);
    char *a2[] = {"serve", "--quota-queued", "9", NULL};
    CHECK_INT_EQ(tm_config_load(&c, 3, a2, devnull, err), 0);
    CHECK_INT_EQ(c.max_queue_per_client, 9);
    /* An old name's bad value is reported under the name given. */
    char *a3[] = {"serve", "--max-queue-per-client", "x", NULL};
    CHECK_INT_EQ(tm_config_load(&c, 3, a3, devnull, err), 2);
    CHECK(strstr(err, "--max-queue-per-client") != NULL);

    setenv("TOPICD_MAX_QUEUE_PER_CLIENT", "4", 1);
    tm_config_init(&c);
    CHECK_INT_EQ(tm_config_load(&c, 1, a0, devnull, err), 0);
    CHECK_INT_EQ(c.max_queue_per_client, 4);
    setenv("TOPICD_QUOTA_QUEUED", "5", 1);
    tm_config_init(&c);
    CHECK_INT_EQ(tm_config_load(&c, 1, a0, devnull, err), 0);
    CHECK_INT_EQ(c.max_queue_per_client, 5);
    unsetenv("TOPICD_QUOTA_QUEUED");
    unsetenv("TOPICD_MAX_QUEUE_PER_CLIENT");

    /* --help lists the quotas with their variables, and the old name. */
    char buf[16384] = "";
    FILE *mem = fmemopen(buf, sizeof(buf) - 1, "w");
    REQUIRE(mem);
    tm_config_usage(mem);
    fclose(mem);
    CHECK(strstr(buf, "--quota-stored-bytes") && strstr(buf, "TOPICD_QUOTA_STORED_BYTES"));
    CHECK(strstr(buf, "--quota-running") && strstr(buf, "TOPICD_QUOTA_RUNNING"));
    CHECK(strstr(buf, "--quota-queued") && strstr(buf, "--max-queue-per-client"));
    fclose(devnull);
}

/* --cors-origin: exact origins, compared as browsers send them; a
 * wildcard, a path or a missing scheme is refused, saying why. */
TM_TEST(config_cors_origin)
{
    struct tm_config c;
    char err[TM_ERR_SIZE];
    FILE *devnull = fopen("/dev/null", "w");
    REQUIRE(devnull != NULL);
    char *ok[] = {"serve", "--cors-origin", "https://app.example.com, http://localhost:3000,"};
    tm_config_init(&c);
    CHECK_INT_EQ(tm_config_load(&c, 3, ok, devnull, err), 0);
    static const struct {
        const char *origin;
        int allowed;
    } cases[] = {{"https://app.example.com", 1},
                 {"HTTPS://APP.example.com", 1},
                 {"http://localhost:3000", 1},
                 {"http://localhost:300", 0},
                 {"https://app.example.com.", 0},
                 {"https://app.example.co", 0},
                 {"http://app.example.com", 0},
                 {"null", 0},
                 {"", 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CHECK_INT_EQ(tm_config_cors_allows(&c, cases[i].origin, strlen(cases[i].origin)),
                     cases[i].allowed);
    tm_config_init(&c);
    CHECK_INT_EQ(tm_config_cors_allows(&c, "https://app.example.com", 23), 0);
    static const struct {
        const char *value, *why;
    } bad[] = {{"*", "wildcard"},
               {"https://a.example, *", "wildcard"},
               {"https://a.example/", "no path"},
               {"https://*.example.com", "no path, query, wildcard"},
               {"a.example", "http:// or https://"},
               {"https://", "http:// or https://"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *argv[] = {"serve", "--cors-origin", (char *)bad[i].value};
        tm_config_init(&c);
        CHECK_INT_EQ(tm_config_load(&c, 3, argv, devnull, err), 2);
        CHECK(strstr(err, "--cors-origin") && strstr(err, bad[i].why));
    }
    fclose(devnull);
}
