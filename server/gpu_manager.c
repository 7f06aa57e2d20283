/*
 * gpu_manager.c - the process-wide GPU manager: device probe, slots, and the
 * admission rules described in gpu_manager.h. One mutex guards all state;
 * "gpu" jobs that must wait sleep on one condition variable, woken by every
 * release and re-polled every WAIT_POLL_MS for cancellation, deadlines and
 * memory freed by other processes.
 */
#include "gpu_manager.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/fit.h"
#include "core/numerics/backend.h"
#include "gpu/gpu.h"

#define WAIT_POLL_MS 100

struct slot {
    void *ctx[2]; /* float32, float64: made on first use, dropped after a device failure */
    int busy;
};

struct device {
    struct tm_gpu_device_info info;
    struct slot *slots;
};

struct tm_gpu_manager {
    struct tm_gpu_manager_config config;
    const struct tm_gpu_device_ops *ops;
    void *dev;
    pthread_mutex_t lock;
    pthread_cond_t room; /* signalled when a slot or memory is given back */
    int available;
    char reason[TM_ERR_SIZE];
    int n_devices;
    struct device devices[TM_GPU_MAX_DEVICES];
    int jobs_running, jobs_waiting;
    uint64_t jobs_started, jobs_failed, auto_on_cpu, auto_fallbacks;
};

/* ---- the real device: the CUDA plugin through gpu/gpu.h ---- */

static tm_status real_probe(void *dev, struct tm_gpu_device_info *devs, int max, int *n,
                            char *reason)
{
    struct tm_gpu_device_desc d[TM_GPU_MAX_DEVICES];
    tm_status st;
    (void)dev;
    *n = 0;
    if (!tm_gpu_load(reason))
        return TM_ENODEV;
    if (max > TM_GPU_MAX_DEVICES)
        max = TM_GPU_MAX_DEVICES;
    st = tm_gpu_devices(d, max, n, reason);
    if (st != TM_OK)
        return st;
    for (int i = 0; i < *n; i++) {
        memset(&devs[i], 0, sizeof(devs[i]));
        devs[i].ordinal = d[i].ordinal;
        memcpy(devs[i].name, d[i].name, sizeof(devs[i].name));
        devs[i].name[sizeof(devs[i].name) - 1] = '\0';
        devs[i].cc_major = d[i].cc_major;
        devs[i].cc_minor = d[i].cc_minor;
        devs[i].total_bytes = d[i].total_bytes;
        devs[i].free_bytes = d[i].free_bytes;
    }
    return TM_OK;
}

static tm_status real_mem_info(void *dev, int ordinal, int64_t *free_bytes, int64_t *total_bytes,
                               char *err)
{
    (void)dev;
    return tm_gpu_mem_info(ordinal, free_bytes, total_bytes, err);
}

static int64_t real_estimate(void *dev, const struct tm_model_params *params, int64_t m, int64_t n,
                             int64_t nnz)
{
    const struct tm_backend_ops *ops = tm_gpu_load(NULL);
    (void)dev;
    if (!ops)
        return -1;
    size_t bytes = tm_fit_device_bytes(ops, params, m, n, nnz);
    return bytes > (size_t)INT64_MAX ? -1 : (int64_t)bytes;
}

static tm_status real_ctx_new(void *dev, int ordinal, enum tm_dtype dtype, void **ctx, char *err)
{
    const struct tm_backend_ops *ops = tm_gpu_load(NULL);
    struct tm_backend_config cfg;
    (void)dev;
    if (!ops)
        return tm_errf(err, TM_ENODEV, "no GPU backend");
    memset(&cfg, 0, sizeof(cfg));
    cfg.dtype = dtype;
    cfg.device = ordinal;
    return ops->create(&cfg, ctx, err);
}

static void real_ctx_free(void *dev, void *ctx)
{
    const struct tm_backend_ops *ops = tm_gpu_load(NULL);
    (void)dev;
    if (ops)
        ops->destroy(ctx);
}

static const struct tm_backend_ops *real_backend(void *dev)
{
    (void)dev;
    return tm_gpu_load(NULL);
}

static const struct tm_gpu_device_ops real_ops_table = {
    .probe = real_probe,
    .mem_info = real_mem_info,
    .estimate = real_estimate,
    .ctx_new = real_ctx_new,
    .ctx_free = real_ctx_free,
    .backend = real_backend,
    .name = "cuda",
};

static const struct tm_gpu_device_ops *real_ops(void **dev)
{
    *dev = NULL;
    return &real_ops_table;
}

void tm_gpu_manager_config_init(struct tm_gpu_manager_config *config)
{
    memset(config, 0, sizeof(*config));
    config->slots_per_device = 2;
    config->reserve_bytes = (int64_t)512 << 20;
    config->auto_min_work = 2e6;
}

tm_status tm_gpu_manager_new(const struct tm_gpu_manager_config *config,
                             const struct tm_gpu_device_ops *ops, void *dev,
                             struct tm_gpu_manager **out, char *err)
{
    struct tm_gpu_manager *mgr;
    tm_status st = TM_OK;
    int i, n = 0;

    *out = NULL;
    if (config->slots_per_device < 1 || config->slots_per_device > 1024)
        return tm_errf(err, TM_ERANGE, "gpu slots per device must be in 1..1024, got %d",
                       config->slots_per_device);
    if (config->reserve_bytes < 0)
        return tm_errf(err, TM_ERANGE, "gpu reserve must be >= 0");
    mgr = tm_calloc(1, sizeof(*mgr));
    if (!mgr)
        return tm_errf(err, TM_ENOMEM, "gpu manager: out of memory");
    mgr->config = *config;
    if (!ops)
        ops = real_ops(&dev);
    mgr->ops = ops;
    mgr->dev = dev;
    if (pthread_mutex_init(&mgr->lock, NULL) != 0) {
        st = tm_errf(err, TM_ENOMEM, "gpu manager: cannot create a mutex");
        goto fail_mutex;
    }
    if (pthread_cond_init(&mgr->room, NULL) != 0) {
        st = tm_errf(err, TM_ENOMEM, "gpu manager: cannot create a condition variable");
        goto fail_cond;
    }

    if (config->disabled) {
        snprintf(mgr->reason, sizeof(mgr->reason), "GPU disabled by configuration");
    } else {
        struct tm_gpu_device_info infos[TM_GPU_MAX_DEVICES];
        memset(infos, 0, sizeof(infos));
        mgr->reason[0] = '\0';
        if (ops->probe(dev, infos, TM_GPU_MAX_DEVICES, &n, mgr->reason) != TM_OK || n <= 0) {
            n = 0;
            if (!mgr->reason[0])
                snprintf(mgr->reason, sizeof(mgr->reason), "no GPU found");
        }
        if (n > TM_GPU_MAX_DEVICES)
            n = TM_GPU_MAX_DEVICES;
        for (i = 0; i < n; i++) {
            struct device *d = &mgr->devices[i];
            d->slots = tm_calloc((size_t)config->slots_per_device, sizeof(*d->slots));
            if (!d->slots) {
                st = tm_errf(err, TM_ENOMEM, "gpu manager: out of memory");
                goto fail_slots;
            }
            d->info = infos[i];
            d->info.ordinal = infos[i].ordinal;
            d->info.slots = config->slots_per_device;
            d->info.slots_busy = 0;
            d->info.promised_bytes = 0;
        }
        mgr->n_devices = n;
        mgr->available = n > 0;
    }
    *out = mgr;
    return TM_OK;

fail_slots:
    for (i = 0; i < n && i < TM_GPU_MAX_DEVICES; i++)
        tm_free(mgr->devices[i].slots);
    pthread_cond_destroy(&mgr->room);
fail_cond:
    pthread_mutex_destroy(&mgr->lock);
fail_mutex:
    tm_free(mgr);
    return st;
}

void tm_gpu_manager_free(struct tm_gpu_manager *mgr)
{
    int i, j;
    if (!mgr)
        return;
    for (i = 0; i < mgr->n_devices; i++) {
        struct device *d = &mgr->devices[i];
        for (j = 0; j < mgr->config.slots_per_device; j++)
            for (int t = 0; t < 2; t++)
                if (d->slots[j].ctx[t])
                    mgr->ops->ctx_free(mgr->dev, d->slots[j].ctx[t]);
        tm_free(d->slots);
    }
    pthread_cond_destroy(&mgr->room);
    pthread_mutex_destroy(&mgr->lock);
    tm_free(mgr);
}

/* The backend's own name ("cuda"), else the device ops' name. */
static const char *backend_name(const struct tm_gpu_manager *mgr)
{
    const struct tm_backend_ops *ops = mgr->ops->backend ? mgr->ops->backend(mgr->dev) : NULL;
    if (ops && ops->name)
        return ops->name;
    return mgr->ops->name ? mgr->ops->name : "gpu";
}

static void lease_cpu(struct tm_gpu_lease *lease, const char *why)
{
    memset(lease, 0, sizeof(*lease));
    lease->ordinal = -1;
    lease->slot = -1;
    lease->device_name = "cpu";
    lease->why_cpu = why;
}

/* Bytes device d can promise now, from a fresh cudaMemGetInfo. Locked. */
static int64_t room_on(struct tm_gpu_manager *mgr, struct device *d)
{
    int64_t free_b = 0, total_b = 0, by_free, by_promise;
    if (mgr->ops->mem_info(mgr->dev, d->info.ordinal, &free_b, &total_b, NULL) != TM_OK)
        return -1;
    d->info.free_bytes = free_b;
    if (total_b > 0)
        d->info.total_bytes = total_b;
    by_free = free_b - mgr->config.reserve_bytes;
    by_promise = d->info.total_bytes - mgr->config.reserve_bytes - d->info.promised_bytes;
    return by_free < by_promise ? by_free : by_promise;
}

static int free_slot(const struct tm_gpu_manager *mgr, const struct device *d)
{
    for (int j = 0; j < mgr->config.slots_per_device; j++)
        if (!d->slots[j].busy)
            return j;
    return -1;
}

/*
 * Tries to place the job now. Returns 1 and fills the lease when placed, 0
 * when no device has room, -1 with err when the slot context could not be
 * created. Locked. Picks the device with the most room among those with a
 * free slot, so jobs spread over several GPUs.
 */
static int try_place(struct tm_gpu_manager *mgr, int64_t bytes, enum tm_dtype dtype,
                     struct tm_gpu_lease *lease, tm_status *st, char *err)
{
    int t = dtype == TM_DTYPE_FLOAT64;
    void **ctx;
    struct device *best = NULL;
    int64_t best_room = -1;
    int best_slot = -1, i;

    for (i = 0; i < mgr->n_devices; i++) {
        struct device *d = &mgr->devices[i];
        int j = free_slot(mgr, d);
        int64_t room;
        if (j < 0)
            continue;
        room = room_on(mgr, d);
        if (room >= bytes && room > best_room) {
            best = d;
            best_room = room;
            best_slot = j;
        }
    }
    if (!best)
        return 0;
    ctx = &best->slots[best_slot].ctx[t];
    if (!*ctx) {
        char detail[TM_ERR_SIZE] = "";
        /* Made under the lock: rare (once per slot and dtype), and it keeps
         * the slot from being taken twice meanwhile. */
        *st = mgr->ops->ctx_new(mgr->dev, best->info.ordinal,
                                t ? TM_DTYPE_FLOAT64 : TM_DTYPE_FLOAT32, ctx, detail);
        if (*st != TM_OK) {
            *ctx = NULL;
            tm_errf(err, *st, "cannot set up GPU %d: %.200s", best->info.ordinal, detail);
            return -1;
        }
    }
    best->slots[best_slot].busy = 1;
    best->info.slots_busy++;
    best->info.promised_bytes += bytes;
    mgr->jobs_running++;
    mgr->jobs_started++;
    memset(lease, 0, sizeof(*lease));
    lease->on_gpu = 1;
    lease->ordinal = (int)(best - mgr->devices);
    lease->slot = best_slot;
    lease->backend = mgr->ops->backend(mgr->dev);
    lease->backend_ctx = *ctx;
    lease->device_name = backend_name(mgr);
    lease->bytes = bytes;
    return 1;
}

static int64_t largest_total(const struct tm_gpu_manager *mgr)
{
    int64_t best = 0;
    for (int i = 0; i < mgr->n_devices; i++)
        if (mgr->devices[i].info.total_bytes > best)
            best = mgr->devices[i].info.total_bytes;
    return best;
}

static int64_t now_ms(void)
{
    return (int64_t)(tm_clock_monotonic() * 1000);
}

/* Waits on mgr->room for at most ms milliseconds. Locked. */
static void wait_room(struct tm_gpu_manager *mgr, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    (void)pthread_cond_timedwait(&mgr->room, &mgr->lock, &ts);
}

static double mib(int64_t bytes)
{
    return (double)bytes / (1024.0 * 1024.0);
}

/* An "auto" job goes to the CPU: counts it and says why. Locked. */
static tm_status auto_on_cpu(struct tm_gpu_manager *mgr, struct tm_gpu_lease *lease,
                             const char *why)
{
    lease_cpu(lease, why);
    mgr->auto_on_cpu++;
    return TM_OK;
}

tm_status tm_gpu_manager_acquire(struct tm_gpu_manager *mgr, const struct tm_gpu_job *job,
                                 const struct tm_gpu_wait *wait, struct tm_gpu_lease *lease,
                                 char *err)
{
    const struct tm_model_params *p = job->params;
    int is_auto = p->device == TM_DEVICE_AUTO;
    tm_status st = TM_OK;
    int64_t bytes, deadline = -1, capacity;
    int placed = 0;

    lease_cpu(lease, NULL);
    if (p->device == TM_DEVICE_CPU)
        return TM_OK;
    if (p->method == TM_METHOD_FULL_SVD) {
        /* Dense LAPACK on the host: there is no GPU path. */
        if (!is_auto)
            return tm_errf(err, TM_EINVAL, "full_svd runs on the CPU only");
        pthread_mutex_lock(&mgr->lock);
        auto_on_cpu(mgr, lease, "full_svd runs on the CPU only");
        pthread_mutex_unlock(&mgr->lock);
        return TM_OK;
    }
    /* The estimate calls into core only: no lock needed. */
    bytes = mgr->n_devices > 0 ? mgr->ops->estimate(mgr->dev, p, job->m, job->n, job->nnz) : 0;
    if (!is_auto && wait && wait->timeout_ms >= 0)
        deadline = now_ms() + wait->timeout_ms;

    pthread_mutex_lock(&mgr->lock);
    if (!mgr->available) {
        if (is_auto)
            st = auto_on_cpu(mgr, lease, "no GPU");
        else
            st = tm_errf(err, TM_ENODEV, "device \"gpu\" requested but no GPU is usable: %.200s",
                         mgr->reason);
        goto out;
    }
    if (is_auto && (double)job->nnz * (double)p->n_topics < mgr->config.auto_min_work) {
        st = auto_on_cpu(mgr, lease, "job too small to gain from the GPU");
        goto out;
    }
    capacity = largest_total(mgr) - mgr->config.reserve_bytes;
    if (bytes < 0) {
        if (is_auto)
            st = auto_on_cpu(mgr, lease, "corpus too large for the GPU backend");
        else
            st = tm_errf(err, TM_ETOOBIG,
                         "the GPU backend cannot hold this corpus (%lld x %lld, %lld non-zeros: "
                         "its indices are 32-bit); use device \"cpu\" or \"auto\"",
                         (long long)job->m, (long long)job->n, (long long)job->nnz);
        goto out;
    }
    if (bytes > capacity) {
        if (is_auto)
            st = auto_on_cpu(mgr, lease, "job does not fit in GPU memory");
        else
            st = tm_errf(err, TM_ETOOBIG,
                         "job needs about %.0f MiB of GPU memory; the largest GPU can give "
                         "%.0f MiB",
                         mib(bytes), mib(capacity > 0 ? capacity : 0));
        goto out;
    }

    placed = try_place(mgr, bytes, p->dtype, lease, &st, err);
    if (placed == 0 && is_auto) {
        st = auto_on_cpu(mgr, lease, "GPU busy");
        lease->gpu_bound = 1;
    } else if (placed == 0) {
        mgr->jobs_waiting++;
        for (;;) {
            int64_t left = WAIT_POLL_MS;
            if (wait && wait->cancelled && wait->cancelled(wait->ctx)) {
                st = tm_errf(err, TM_ECANCELLED, "cancelled while waiting for the GPU");
                break;
            }
            if (deadline >= 0) {
                left = deadline - now_ms();
                if (left <= 0) {
                    st = tm_errf(err, TM_EBUSY, "timed out waiting for GPU room (%.0f MiB needed)",
                                 mib(bytes));
                    break;
                }
                if (left > WAIT_POLL_MS)
                    left = WAIT_POLL_MS;
            }
            wait_room(mgr, left);
            if (!mgr->available) {
                st = tm_errf(err, TM_ENODEV, "no GPU is usable: %.200s", mgr->reason);
                break;
            }
            placed = try_place(mgr, bytes, p->dtype, lease, &st, err);
            if (placed != 0)
                break;
        }
        mgr->jobs_waiting--;
    }
    if (placed < 0 && is_auto) {
        /* The slot could not be set up: the CPU still can run the job. */
        if (err)
            err[0] = '\0';
        st = auto_on_cpu(mgr, lease, "GPU set-up failed");
        lease->gpu_bound = 1;
    } else if (placed < 0) {
        lease_cpu(lease, NULL);
    }
out:
    pthread_mutex_unlock(&mgr->lock);
    return st;
}

void tm_gpu_manager_release(struct tm_gpu_manager *mgr, struct tm_gpu_lease *lease,
                            tm_status job_status)
{
    struct device *d;
    struct slot *s;
    void *dead[2] = {NULL, NULL};

    if (!lease->on_gpu || !lease->backend_ctx)
        return;
    pthread_mutex_lock(&mgr->lock);
    d = &mgr->devices[lease->ordinal];
    s = &d->slots[lease->slot];
    if (job_status == TM_EDEVICE) {
        /* The stream or a handle may be in an error state: start afresh. */
        dead[0] = s->ctx[0];
        dead[1] = s->ctx[1];
        s->ctx[0] = s->ctx[1] = NULL;
    }
    if (job_status == TM_EDEVICE || (job_status == TM_ENOMEM && lease->on_gpu))
        mgr->jobs_failed++;
    s->busy = 0;
    d->info.slots_busy--;
    d->info.promised_bytes -= lease->bytes;
    mgr->jobs_running--;
    pthread_cond_broadcast(&mgr->room);
    pthread_mutex_unlock(&mgr->lock);
    /* Freed outside the lock: it synchronises with the device. */
    for (int t = 0; t < 2; t++)
        if (dead[t])
            mgr->ops->ctx_free(mgr->dev, dead[t]);
    if (job_status == TM_EDEVICE) {
        /* A sticky error (an illegal address, say) breaks the process's
         * CUDA context for good: then no later job may use the device. */
        int64_t fr, to;
        char why[TM_ERR_SIZE] = "";
        if (mgr->ops->mem_info(mgr->dev, d->info.ordinal, &fr, &to, why) != TM_OK) {
            pthread_mutex_lock(&mgr->lock);
            mgr->available = 0;
            snprintf(mgr->reason, sizeof(mgr->reason), "GPU %d failed and is disabled: %.200s",
                     d->info.ordinal, why);
            pthread_cond_broadcast(&mgr->room);
            pthread_mutex_unlock(&mgr->lock);
        }
    }
    lease->backend = NULL;
    lease->backend_ctx = NULL;
}

int tm_gpu_manager_retry_on_cpu(struct tm_gpu_manager *mgr, const struct tm_gpu_job *job,
                                const struct tm_gpu_lease *lease, tm_status status)
{
    if (job->params->device != TM_DEVICE_AUTO || !lease->on_gpu)
        return 0;
    if (status != TM_EDEVICE && status != TM_ENOMEM && status != TM_ENODEV)
        return 0;
    pthread_mutex_lock(&mgr->lock);
    mgr->auto_fallbacks++;
    pthread_mutex_unlock(&mgr->lock);
    return 1;
}

enum tm_dtype tm_gpu_manager_cpu_dtype(const struct tm_gpu_job *job,
                                       const struct tm_gpu_lease *lease)
{
    enum tm_dtype d = job->params->dtype;
    int bound = lease->on_gpu || lease->gpu_bound;
    return job->params->device == TM_DEVICE_AUTO && bound && d == TM_DTYPE_AUTO ? TM_DTYPE_FLOAT32
                                                                                : d;
}

void tm_gpu_manager_info(struct tm_gpu_manager *mgr, struct tm_gpu_info *out)
{
    int i;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&mgr->lock);
    out->available = mgr->available;
    snprintf(out->reason, sizeof(out->reason), "%s", mgr->available ? "" : mgr->reason);
    out->backend = mgr->available ? backend_name(mgr) : "none";
    out->n_devices = mgr->n_devices;
    for (i = 0; i < mgr->n_devices; i++) {
        struct device *d = &mgr->devices[i];
        int64_t free_b, total_b;
        if (mgr->ops->mem_info(mgr->dev, d->info.ordinal, &free_b, &total_b, NULL) == TM_OK)
            d->info.free_bytes = free_b;
        out->devices[i] = d->info;
        out->slots_total += d->info.slots;
    }
    out->jobs_running = mgr->jobs_running;
    out->jobs_waiting = mgr->jobs_waiting;
    out->jobs_started = mgr->jobs_started;
    out->jobs_failed = mgr->jobs_failed;
    out->auto_on_cpu = mgr->auto_on_cpu;
    out->auto_fallbacks = mgr->auto_fallbacks;
    pthread_mutex_unlock(&mgr->lock);
}
