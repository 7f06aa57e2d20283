/*
 * config.h - the configuration of `topicd serve`: defaults, then environment
 * variables (TOPICD_*), then command-line flags, each overriding the last.
 * The whole table lives in config.c, so --help, the start-up line and the
 * parser cannot drift apart.
 * Thread-safety: filled once in main's thread before any other starts;
 * read-only afterwards.
 */
#ifndef TM_SERVER_CONFIG_H
#define TM_SERVER_CONFIG_H

#include <stdint.h>
#include <stdio.h>

struct tm_config {
    char bind[64];             /* TOPICD_BIND: listen address, "127.0.0.1" */
    int port;                  /* TOPICD_PORT: 8080; 0 picks a free port */
    char data_dir[1024];       /* TOPICD_DATA_DIR: "./data" */
    char store[1024];          /* TOPICD_STORE: "" (SQLite in data_dir) or PostgreSQL's URL */
    int workers;               /* TOPICD_WORKERS: 0 = the CPUs it may use */
    int blas_threads;          /* TOPICD_BLAS_THREADS: 0 = max(1, cpus / workers) */
    int http_threads;          /* TOPICD_HTTP_THREADS: MHD thread pool, 2 */
    int64_t max_body_bytes;    /* TOPICD_MAX_BODY_BYTES: 1 GiB per upload */
    int64_t max_json_bytes;    /* TOPICD_MAX_JSON_BYTES: 16 MiB for job specs etc. */
    int64_t max_doc_bytes;     /* TOPICD_MAX_DOC_BYTES: 8 MiB per document */
    int64_t max_inline_docs;   /* TOPICD_MAX_INLINE_DOCS: 10000 in a job spec */
    int max_queue;             /* TOPICD_MAX_QUEUE: 1024 queued jobs, then 429 */
    int max_queue_per_client;  /* TOPICD_QUOTA_QUEUED: per tenant (client); 0 = max_queue */
    int64_t quota_stored;      /* TOPICD_QUOTA_STORED_BYTES: 10 GiB per tenant; 0 = none */
    int quota_running;         /* TOPICD_QUOTA_RUNNING: per tenant; 0 = no cap */
    int max_connections;       /* TOPICD_MAX_CONNECTIONS: 1024 */
    int per_ip_connections;    /* TOPICD_PER_IP_CONNECTIONS: 256 */
    int connection_timeout_s;  /* TOPICD_CONNECTION_TIMEOUT: 30 s idle */
    int64_t connection_memory; /* TOPICD_CONNECTION_MEMORY: 64 KiB MHD pool */
    int64_t cache_bytes;       /* TOPICD_CACHE_BYTES: 512 MiB of matrices */
    int shutdown_grace_s;      /* TOPICD_SHUTDOWN_GRACE: 30 s */
    int max_attempts;          /* TOPICD_MAX_ATTEMPTS: 3 crashes, then failed */
    int lease_s;               /* TOPICD_LEASE_SECONDS: 30 s a job's claim lasts unrenewed */
    int worker_nice;           /* TOPICD_WORKER_NICE: 10, workers yield to HTTP threads */
    int recent_jobs;           /* TOPICD_RECENT_JOBS: unused since polls read the store */
    int64_t job_retention_s;   /* TOPICD_JOB_RETENTION: finished jobs kept 7 days; 0 = forever */
    char gpu[8];               /* TOPICD_GPU: "auto" (use one when present) or "off" */
    int gpu_slots;             /* TOPICD_GPU_SLOTS: concurrent GPU jobs per device, 2 */
    int64_t gpu_reserve_bytes; /* TOPICD_GPU_RESERVE_BYTES: kept free per device, 512 MiB */
    int gpu_wait_s;            /* TOPICD_GPU_WAIT: how long a "gpu" job waits for room, 600 */
    char log_level[16];        /* TOPICD_LOG_LEVEL: "info" */
    char auth[8];              /* TOPICD_AUTH: "auto" (keys when the store has any), "on", "off" */
    int metrics_auth;          /* TOPICD_METRICS_AUTH: 1 = /metrics needs a key too; 0 */
    char cors_origin[1024];    /* TOPICD_CORS_ORIGIN: exact origins, comma-separated; "" none */
    int secure_cookies;        /* TOPICD_SECURE_COOKIES: 1 = always Secure; 0 = by X-F-Proto */
    int session_ttl_s;         /* TOPICD_SESSION_TTL: 12 h a session cookie lasts */
    char secret_file[1024];    /* TOPICD_SECRET_FILE: signing secret; "" = the store's */
};

void tm_config_init(struct tm_config *c);

/*
 * Applies TOPICD_* variables, then argv (argv[0] is "serve"). Returns 0 on
 * success, 1 when --help was given (help printed to out), 2 on a usage error
 * (message in err, TM_ERR_SIZE bytes). A --store that holds a password is a
 * usage error on the command line, which every user sees (ps), and accepted
 * from TOPICD_STORE.
 */
int tm_config_load(struct tm_config *c, int argc, char **argv, FILE *out, char *err);

/* 1 when the len bytes of origin (an Origin header) are one of
 * --cors-origin's, compared as browsers serialise origins: scheme and host
 * without case. */
int tm_config_cors_allows(const struct tm_config *c, const char *origin, size_t len);

/* Writes every setting as one JSON object line (the start-up record); the
 * store as its driver and redacted target, never a password. */
void tm_config_log(const struct tm_config *c);

/* Prints --help. */
void tm_config_usage(FILE *out);

#endif
