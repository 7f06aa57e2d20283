/*
 * worker.h - what a worker thread does with a job (the tm_job_work_fn the
 * job table calls): parse the stored spec, load the corpus from the store
 * (or its cached matrix), tm_vectorize, a device from the GPU manager (or the
 * CPU), tm_fit, render the result JSON with api/result.h. Nothing here runs on an HTTP thread.
 * Thread-safety: tm_worker_run is reentrant; the context is read-only after
 * set-up (the store and cache are thread-safe).
 */
#ifndef TM_SERVER_WORKER_H
#define TM_SERVER_WORKER_H

#include "gpu_manager.h"
#include "jobs.h"
#include "matrix_cache.h"
#include "store.h"

struct tm_worker_ctx {
    struct tm_store *store;        /* borrowed */
    struct tm_matrix_cache *cache; /* borrowed */
    struct tm_gpu_manager *gpu;    /* borrowed: decides CPU or GPU per job */
    int vectorize_threads;         /* tm_vectorize's and core's n_threads per job */
    int64_t gpu_wait_ms;           /* how long a "gpu" job waits for a device */
};

/* A tm_job_work_fn; ctx is a struct tm_worker_ctx. */
void tm_worker_run(void *ctx, const struct tm_job_run *run, struct tm_job_outcome *out);

#endif
