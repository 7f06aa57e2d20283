/*
 * serve.c - `topicd serve`: configuration, start-up, and graceful shutdown
 * of the HTTP job service.
 *
 * Threads: the libmicrohttpd pool (--http-threads) parses and enqueues;
 * --workers threads run jobs; OpenBLAS gets max(1, cpus / workers) threads
 * (--blas-threads), and so does each job's tm_vectorize. With the default
 * workers = cpus, every fit is single-threaded BLAS and the pool as a whole
 * uses every core without oversubscribing them: throughput over many jobs
 * is what a service is for. Fewer workers give each job more cores.
 * One more thread, the retention sweeper, deletes finished jobs older than
 * --job-retention.
 * SIGTERM and SIGINT are turned into bytes on a pipe by an async-signal-safe
 * handler, whatever thread the kernel delivers them to (OpenBLAS starts its
 * threads before main, so they cannot all block them); main reads the
 * first, a helper thread a second one.
 */
#include <arpa/inet.h>
#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/json.h"
#include "cli.h"
#include "config.h"
#include "core/clock.h"
#include "cpus.h"
#include "http.h"
#include "log.h"
#include "routes.h"
#include "server.h"
#include "worker.h"

/* The self-pipe of the signal handler: [0] read here, [1] written there. */
static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t n = write(sig_pipe[1], &b, 1);
    (void)n; /* nothing to do about a full pipe: a signal is pending anyway */
    errno = saved;
}

/* The next signal number from the pipe; 0 is our own wake-up. */
static int next_signal(void)
{
    unsigned char b = 0;
    while (read(sig_pipe[0], &b, 1) < 0 && errno == EINTR)
        ;
    return b;
}

static void *hurry_main(void *arg)
{
    struct tm_jobs *jobs = arg;
    if (next_signal()) {
        TM_LOG(TM_LOG_WARN, "second signal: re-queueing running jobs now", NULL);
        tm_jobs_hurry(jobs);
    }
    return NULL;
}

/* 1 when bind is a loopback address: 127.0.0.0/8, ::1, "localhost". */
static int is_loopback(const char *bind)
{
    unsigned char a[16];
    if (!strcmp(bind, "localhost"))
        return 1;
    if (inet_pton(AF_INET, bind, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, bind, a) == 1) {
        static const unsigned char one[16] = {[15] = 1};
        return !memcmp(a, one, sizeof(one));
    }
    return 0;
}

/*
 * The secure default (--auth auto): with a key in the store, keys are
 * required (routes.c); without one, a server on a loopback address runs
 * open, as a developer's does, but one that others can reach refuses to
 * start rather than serve every tenant's data to whoever connects.
 */
static tm_status check_auth(const struct tm_config *cfg, struct tm_keys *keys, char *err)
{
    if (!strcmp(cfg->auth, "off")) {
        TM_LOG(TM_LOG_WARN, "auth is off: every client may read and delete every corpus and job",
               "s:bind", cfg->bind, NULL);
        return TM_OK;
    }
    int any = 0;
    tm_status st = tm_keys_any(keys, &any, err);
    if (st || any || !strcmp(cfg->auth, "on") || is_loopback(cfg->bind))
        return st;
    /* Under TM_ERR_SIZE bytes with the longest bind. */
    return tm_errf(err, TM_EINVAL,
                   "no API key in the store and %s is not a loopback address: create one"
                   " (topicd keys create --tenant NAME, same --data-dir or --store), or"
                   " serve without keys with --auth off (TOPICD_AUTH=off)",
                   cfg->bind);
}

int tm_cli_serve(int argc, char **argv)
{
    struct tm_config cfg;
    char err[TM_ERR_SIZE] = "";
    tm_config_init(&cfg);
    int rc = tm_config_load(&cfg, argc, argv, stdout, err);
    if (rc == 1)
        return 0;
    if (rc) {
        fprintf(stderr, "topicd serve: %s\n", err);
        fprintf(stderr, "`topicd serve --help` lists the options.\n");
        return 2;
    }
    tm_log_set_level((enum tm_log_level)tm_log_level_parse(cfg.log_level));
    tm_api_init();
    int cpus = tm_cpus_available();
    if (!cfg.workers)
        cfg.workers = cpus;
    int per_job = cpus / cfg.workers > 1 ? cpus / cfg.workers : 1;
    if (!cfg.blas_threads)
        cfg.blas_threads = per_job;
    openblas_set_num_threads(cfg.blas_threads);
    tm_config_log(&cfg);

    /* Before any thread starts, so that all of them inherit the mask. */
    if (pipe2(sig_pipe, O_CLOEXEC)) {
        fprintf(stderr, "topicd serve: pipe: %s\n", strerror(errno));
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: the read of the pipe below must return EINTR, so that
     * ThreadSanitizer, which defers handlers to the next interceptor, runs
     * ours. The threads started from here on block both signals; main
     * unblocks them once it waits, so the kernel hands them to main. */
    sa.sa_flags = 0;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    struct tm_server srv;
    memset(&srv, 0, sizeof(srv));
    srv.cfg = &cfg;
    srv.started_at = tm_clock_unix();
    struct tm_http *http = NULL;
    struct tm_worker_ctx wctx;
    int status = 1;

    tm_status st = tm_store_open(&srv.store, cfg.store, cfg.data_dir, err);
    if (st) {
        TM_LOG(TM_LOG_ERROR, "cannot open the store", "s:error", err, NULL);
        fprintf(stderr, "topicd serve: %s\n", err);
        goto out;
    }
    st = tm_keys_new(&srv.keys, &srv.store, TM_KEYS_TTL_S, err);
    if (!st)
        st = check_auth(&cfg, srv.keys, err);
    if (!st)
        st = cfg.secret_file[0] ? tm_session_secret_file(cfg.secret_file, srv.secret, err)
                                : tm_session_secret_store(&srv.store, srv.secret, err);
    if (st) {
        TM_LOG(TM_LOG_ERROR, "refusing to start", "s:error", err, NULL);
        fprintf(stderr, "topicd serve: %s\n", err);
        goto out;
    }
    if (tm_matrix_cache_new(&srv.cache, cfg.cache_bytes)) {
        TM_LOG(TM_LOG_ERROR, "out of memory", NULL);
        goto out;
    }
    struct tm_gpu_manager_config gc;
    tm_gpu_manager_config_init(&gc);
    gc.slots_per_device = cfg.gpu_slots;
    gc.reserve_bytes = cfg.gpu_reserve_bytes;
    gc.disabled = !strcmp(cfg.gpu, "off");
    st = tm_gpu_manager_new(&gc, NULL, NULL, &srv.gpu, err);
    if (st) {
        TM_LOG(TM_LOG_ERROR, "cannot start the gpu manager", "s:error", err, NULL);
        goto out;
    }
    {
        struct tm_gpu_info gi;
        tm_gpu_manager_info(srv.gpu, &gi);
        TM_LOG(TM_LOG_INFO, "gpu", "b:available", gi.available, "s:backend", gi.backend,
               "i:devices", (long long)gi.n_devices, "i:slots", (long long)gi.slots_total,
               "s:reason", gi.available ? NULL : gi.reason, NULL);
    }
    wctx.store = &srv.store;
    wctx.gpu = srv.gpu;
    wctx.gpu_wait_ms = (int64_t)cfg.gpu_wait_s * 1000;
    wctx.cache = srv.cache;
    wctx.vectorize_threads = cfg.blas_threads;
    struct tm_jobs_config jc = {.workers = cfg.workers,
                                .max_queue = cfg.max_queue,
                                .max_attempts = cfg.max_attempts,
                                .recent_jobs = cfg.recent_jobs,
                                .worker_nice = cfg.worker_nice,
                                .work = tm_worker_run,
                                .work_ctx = &wctx,
                                .max_queue_per_client = cfg.max_queue_per_client,
                                .lease_s = cfg.lease_s,
                                .quota_stored_bytes = cfg.quota_stored,
                                .quota_running = cfg.quota_running};
    st = tm_jobs_new(&srv.jobs, &srv.store, &jc, err);
    if (st) {
        TM_LOG(TM_LOG_ERROR, "cannot start the job queue", "s:error", err, NULL);
        goto out;
    }
    st = tm_jobs_start_retention(srv.jobs, cfg.job_retention_s, err);
    if (st) {
        TM_LOG(TM_LOG_ERROR, "cannot start the retention sweeper", "s:error", err, NULL);
        goto out;
    }
    st = tm_http_start(&http, &srv, &tm_routes, err);
    if (st) {
        TM_LOG(TM_LOG_ERROR, "cannot start the http server", "s:error", err, NULL);
        goto out;
    }
    TM_LOG(TM_LOG_INFO, "listening", "s:bind", cfg.bind, "i:port", (long long)tm_http_port(http),
           "s:store", srv.store.m->name, "s:store_target", srv.store.target, "s:replica",
           tm_jobs_replica(srv.jobs), "i:workers", (long long)cfg.workers, "i:blas_threads",
           (long long)cfg.blas_threads, NULL);

    pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
    int sig = next_signal();
    TM_LOG(TM_LOG_INFO, "shutting down", "s:signal", sig == SIGTERM ? "SIGTERM" : "SIGINT",
           "i:grace_s", (long long)cfg.shutdown_grace_s, NULL);
    /* Keep serving during the grace period: clients go on polling their
     * jobs (and see them finish or go back to the queue), /readyz answers
     * 503 so load balancers stop routing here, new uploads and jobs get 503
     * with Retry-After. The listener closes once the workers are done. */
    atomic_store(&srv.draining, 1);
    /* A second signal ends the grace period at once. */
    pthread_t hurrier;
    int have_hurrier = !pthread_create(&hurrier, NULL, hurry_main, srv.jobs);
    int stuck = tm_jobs_drain(srv.jobs, cfg.shutdown_grace_s);
    if (have_hurrier) {
        unsigned char wake = 0;
        if (write(sig_pipe[1], &wake, 1) == 1)
            pthread_join(hurrier, NULL);
        else
            pthread_detach(hurrier);
    }
    tm_http_stop(http);
    http = NULL;
    if (stuck) {
        /* Its job stays "running" in the store, leased until the process is
         * gone, then handed back; the process must not free what that
         * worker still uses. */
        TM_LOG(TM_LOG_WARN, "exiting with a worker still running", NULL);
        return 0;
    }
    status = 0;
out:
    tm_http_stop(http);
    tm_jobs_free(srv.jobs);
    tm_matrix_cache_free(srv.cache);
    tm_gpu_manager_free(srv.gpu);
    tm_keys_free(srv.keys);
    OPENSSL_cleanse(srv.secret, sizeof(srv.secret));
    tm_store_close(&srv.store);
    if (!status)
        TM_LOG(TM_LOG_INFO, "stopped", NULL);
    return status;
}
