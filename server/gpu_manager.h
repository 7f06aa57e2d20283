/*
 * gpu_manager.h - the one process-wide GPU manager: probes the GPU backend
 * once at start-up, owns the GPU slots (a slot = one worker's stream and
 * cuBLAS/cuSPARSE/cuSOLVER handles on one device, created on first use and
 * reused by every later job), and decides for each job whether it runs on a
 * GPU or on the CPU (admission control).
 *
 * A worker runs a job like this:
 *
 *     struct tm_gpu_job job = {&params, X.n_rows, X.n_cols, tm_csr_nnz(&X)};
 *     struct tm_gpu_lease lease;
 *     st = tm_gpu_manager_acquire(mgr, &job, &wait, &lease, err);
 *     if (st != TM_OK) fail the job with err (ENODEV/ETOOBIG -> 422, EBUSY -> 409);
 *     st = tm_fit(lease.backend, lease.backend_ctx, &X, &params, ...);
 *                                              (both NULL on the CPU)
 *     tm_gpu_manager_release(mgr, &lease, st);
 *     if (st != TM_OK && tm_gpu_manager_retry_on_cpu(mgr, &job, &lease, st))
 *         params.device = TM_DEVICE_CPU, params.dtype = tm_gpu_manager_cpu_dtype(&job, &lease),
 *         st = tm_fit(NULL, NULL, &X, &params, ...) again;
 *
 * Admission: a job fits a device when a slot is free and its estimated device
 * memory is at most min(free - reserve, total - reserve - bytes already
 * promised to running jobs), "free" being cudaMemGetInfo's answer at that
 * moment (so memory other processes hold counts, and memory a running job
 * has not allocated yet is still held back for it).
 *   - "cpu":  always the CPU (an immediate CPU lease).
 *   - "auto": a GPU when one is usable, the job is big enough to gain
 *             (nnz * k >= auto_min_work) and it fits now; else the CPU at
 *             once (never waits).
 *   - "gpu":  TM_ENODEV with the reason when no GPU is usable, TM_ETOOBIG
 *             when the job can never fit a device; else waits until it fits
 *             (up to wait->timeout_ms: TM_EBUSY after; cancellable).
 *   - full_svd is dense LAPACK on the host: "auto" gets the CPU, "gpu"
 *     TM_EINVAL.
 * The estimate is core's tm_fit_device_bytes for the GPU backend. A slot's
 * backend context is made on its first job (CUDA start-up: about a second),
 * under the manager's lock, and kept until tm_gpu_manager_free.
 *
 * The device is reached through struct tm_gpu_device_ops, so tests drive the
 * admission logic with a fake device; tm_gpu_manager_new with ops == NULL
 * uses the real CUDA plugin through gpu/gpu.h (the dlopen loader).
 * Thread-safety: every function is thread-safe once tm_gpu_manager_new has
 * returned; tm_gpu_manager_free must not race with the others.
 */
#ifndef TM_SERVER_GPU_MANAGER_H
#define TM_SERVER_GPU_MANAGER_H

#include <stdint.h>

#include "core/model.h"
#include "core/status.h"

#define TM_GPU_MAX_DEVICES 16

struct tm_backend_ops;

struct tm_gpu_device_info {
    int ordinal;
    char name[96];
    int cc_major, cc_minor;
    int64_t total_bytes;
    int64_t free_bytes;     /* at the last probe or info call */
    int slots;              /* concurrent jobs allowed on this device */
    int slots_busy;         /* GPU jobs running on it now */
    int64_t promised_bytes; /* sum of the estimates of those jobs */
};

/* What the manager needs from a GPU backend. dev is the ops' own state. */
struct tm_gpu_device_ops {
    /* Fills up to max entries of devs (name, cc, memory) and *n. *n == 0
     * means no usable GPU; reason (TM_ERR_SIZE bytes) says why. */
    tm_status (*probe)(void *dev, struct tm_gpu_device_info *devs, int max, int *n, char *reason);
    /* cudaMemGetInfo on one device. */
    tm_status (*mem_info)(void *dev, int ordinal, int64_t *free_bytes, int64_t *total_bytes,
                          char *err);
    /* Device memory a fit of params on an m x n matrix with nnz non-zeros
     * would use at most, in bytes (the real one: tm_fit_device_bytes). */
    int64_t (*estimate)(void *dev, const struct tm_model_params *params, int64_t m, int64_t n,
                        int64_t nnz);
    /* A backend context (stream + cuBLAS/cuSPARSE/cuSOLVER handles) on one
     * device for one element type: returned owned, freed with ctx_free. A
     * slot makes one per dtype it meets, on first use, and keeps it. */
    tm_status (*ctx_new)(void *dev, int ordinal, enum tm_dtype dtype, void **ctx, char *err);
    void (*ctx_free)(void *dev, void *ctx);
    /* The backend the contexts belong to (tm_fit's backend argument);
     * static. */
    const struct tm_backend_ops *(*backend)(void *dev);
    /* The backend's name for results ("cuda"), static. */
    const char *name;
};

struct tm_gpu_manager_config {
    int slots_per_device;  /* concurrent GPU jobs per device; default 2 */
    int64_t reserve_bytes; /* kept free on every device; default 512 MiB */
    double auto_min_work;  /* "auto" picks a GPU only when nnz * k >= this; default 2e6 */
    int disabled;          /* 1: behave as if no GPU were present (--gpu off) */
};

/* The job as the manager sees it. params: borrowed; device, n_topics
 * (k), dtype (AUTO = float32 on a GPU) and the method are read. */
struct tm_gpu_job {
    const struct tm_model_params *params;
    int64_t m, n, nnz; /* the corpus matrix: documents, terms, non-zeros */
};

/* How long "gpu" jobs wait for room. */
struct tm_gpu_wait {
    int64_t timeout_ms;          /* < 0: no limit; 0: do not wait */
    int (*cancelled)(void *ctx); /* polled while waiting; non-zero stops */
    void *ctx;
};

struct tm_gpu_lease {
    int on_gpu;                           /* 0: run on the CPU */
    int ordinal;                          /* device, when on_gpu */
    int slot;                             /* slot index on that device */
    const struct tm_backend_ops *backend; /* for tm_fit's backend; NULL on the CPU */
    void *backend_ctx;       /* for tm_fit's backend_ctx: borrowed, the slot's context */
    const char *device_name; /* static: "cpu" or the backend's name */
    int64_t bytes;           /* promised device memory */
    const char *why_cpu;     /* static: why an "auto" job runs on the CPU, else NULL */
    int gpu_bound;           /* 1: placed on a GPU, or kept off one only because it was busy
                              * or its set-up failed (tm_gpu_manager_cpu_dtype) */
};

struct tm_gpu_info {
    int available;            /* a GPU is usable */
    char reason[TM_ERR_SIZE]; /* why not, when !available */
    const char *backend;      /* "cuda", or "none" */
    int n_devices;
    struct tm_gpu_device_info devices[TM_GPU_MAX_DEVICES];
    int slots_total;
    int jobs_running;        /* GPU jobs running now */
    int jobs_waiting;        /* "gpu" jobs waiting for room */
    uint64_t jobs_started;   /* GPU jobs started since start-up */
    uint64_t jobs_failed;    /* of those, failed on the device */
    uint64_t auto_on_cpu;    /* "auto" jobs sent to the CPU */
    uint64_t auto_fallbacks; /* "auto" jobs retried on the CPU after a GPU failure */
};

struct tm_gpu_manager;

/* Defaults as documented above. */
void tm_gpu_manager_config_init(struct tm_gpu_manager_config *config);

/*
 * Probes the backend. ops: borrowed, must outlive the manager (NULL: the real
 * CUDA plugin); dev: the ops' state, borrowed. *out is returned owned, freed
 * with tm_gpu_manager_free. A missing GPU is not an error: the manager then
 * reports it unavailable with the reason.
 */
tm_status tm_gpu_manager_new(const struct tm_gpu_manager_config *config,
                             const struct tm_gpu_device_ops *ops, void *dev,
                             struct tm_gpu_manager **out, char *err);
/* Frees the slots' contexts. No lease may be outstanding. NULL-safe. */
void tm_gpu_manager_free(struct tm_gpu_manager *mgr);

/* See the top of this file. wait: borrowed, may be NULL (no limit, not
 * cancellable). On success *lease says where to run; release it with
 * tm_gpu_manager_release even when on the CPU. */
tm_status tm_gpu_manager_acquire(struct tm_gpu_manager *mgr, const struct tm_gpu_job *job,
                                 const struct tm_gpu_wait *wait, struct tm_gpu_lease *lease,
                                 char *err);

/* Gives the slot back. job_status is the fit's status: after TM_EDEVICE the
 * slot's contexts are freed (made again on next use), and when the device
 * no longer answers cudaMemGetInfo (a sticky CUDA error) the manager marks
 * the GPU unusable with that reason: later "gpu" jobs get TM_ENODEV and
 * "auto" jobs the CPU, until the server restarts. */
void tm_gpu_manager_release(struct tm_gpu_manager *mgr, struct tm_gpu_lease *lease,
                            tm_status job_status);

/* 1 when an "auto" job that failed on the GPU with status should be run
 * again on the CPU (device failures and device out-of-memory); counts it. */
int tm_gpu_manager_retry_on_cpu(struct tm_gpu_manager *mgr, const struct tm_gpu_job *job,
                                const struct tm_gpu_lease *lease, tm_status status);

/*
 * The dtype to fit a job with on the CPU, after tm_gpu_manager_acquire gave
 * it a CPU lease or tm_gpu_manager_retry_on_cpu said to retry it there: an
 * "auto" job that was bound for a GPU keeps the dtype it would have had
 * there (AUTO: float32), so that where it runs does not change its numbers;
 * any other job keeps its own (AUTO: float64 on the CPU).
 */
enum tm_dtype tm_gpu_manager_cpu_dtype(const struct tm_gpu_job *job,
                                       const struct tm_gpu_lease *lease);

/* A snapshot for GET /v1/info and /metrics; refreshes free memory. */
void tm_gpu_manager_info(struct tm_gpu_manager *mgr, struct tm_gpu_info *out);

#endif
